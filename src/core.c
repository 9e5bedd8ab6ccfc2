/*
 * core.c: the module entry point, require "ticketscloud.core", and the one
 * list of what the C core offers Lua (docs/architecture.md says which file
 * owns which rule). Loading the module opens no socket and starts no
 * thread: libcurl and gRPC are initialised by the first object that needs
 * them.
 */
#include "private.h"
#include "money.h"

#ifndef TC_VERSION
#error "TC_VERSION must be defined by the build"
#endif

static const luaL_Reg core_functions[] = {
    /* errors and argument checks */
    { "error", core_error },
    { "fail", core_fail },
    { "scrub", core_scrub },
    { "check_arg", core_check_arg },
    { "check_field", core_check_field },
    { "request_id", core_request_id },
    { "copy_fields", core_copy_fields },
    /* the client's options policy */
    { "options", core_options },
    { "grpc_target", core_grpc_target },
    { "check_timeout", core_check_timeout },
    /* request data */
    { "check_id", core_check_id },
    { "check_text", core_check_text },
    { "check_count", core_check_count },
    { "check_json", core_check_json },
    { "check_customer", core_check_customer },
    { "check_vendor_data", core_check_vendor_data },
    { "check_settings", core_check_settings },
    { "check_request", core_check_request },
    /* the order logic: desired-state bodies and the checks of answers */
    { "order_held", core_order_held },
    { "order_tickets_body", core_order_tickets_body },
    { "order_random_body", core_order_random_body },
    { "order_verify", core_order_verify },
    { "order_check_money", core_order_check_money },
    /* transport: REST (libcurl) and tc-simple (gRPC + protobuf-c) */
    { "http", core_http },
    { "channel", core_channel },
    { "encode", core_encode },
    { "decode", core_decode },
    { "decode_at", core_decode_at },
    { "json_encode", core_json_encode },
    { "json_array", core_json_array },
    { "sleep", core_sleep },
    { "now", core_now },
    { NULL, NULL },
};

static const luaL_Reg money_functions[] = {
    { "parse", core_money_parse },
    { "format", core_money_format },
    { "add", core_money_add },
    { NULL, NULL },
};

/* The metatable of error tables (core.error gives it). */
static void error_class(lua_State *L)
{
    if (luaL_newmetatable(L, TC_ERROR_MT)) {
        lua_pushcfunction(L, core_error_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, TC_ERROR_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
}

/* The C memory of a message being encoded, freed with its box (codec.c). */
static void message_class(lua_State *L)
{
    if (luaL_newmetatable(L, TC_MESSAGE_MT)) {
        lua_pushcfunction(L, tc_message_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, TC_MESSAGE_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
}

int luaopen_ticketscloud_core(lua_State *L)
{
    error_class(L);
    message_class(L);
    tc_new_class(L, TC_HTTP_MT, tc_http_methods, tc_http_close, tc_http_tostring);
    tc_new_class(L, TC_CHANNEL_MT, tc_channel_methods, tc_channel_close, tc_channel_tostring);
    tc_new_class(L, TC_STREAM_MT, tc_stream_methods, tc_stream_close, tc_stream_tostring);
    luaL_getmetatable(L, TC_STREAM_MT); /* a stream is called for its next message */
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, tc_stream_call, 1); /* the metatable, for its type check */
    lua_setfield(L, -2, "__call");
    lua_pop(L, 1);

    lua_newtable(L); /* module */
    lua_newtable(L); /* module, the codec's cache of message types */
    luaL_setfuncs(L, core_functions, 1);
    luaL_newlib(L, money_functions); /* module, money */
    lua_pushinteger(L, (lua_Integer)TC_MONEY_MAX);
    lua_setfield(L, -2, "MAX");
    lua_setfield(L, -2, "money");
    tc_json_open(L);
    lua_pushliteral(L, TC_VERSION);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
