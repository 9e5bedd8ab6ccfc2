/*
 * core.c: the module entry point, require "ticketscloud.core".
 *
 * The core is transport and data only: HTTP requests (http.c), tc-simple
 * gRPC streams (grpc.c, codec.c), exact money (money.c) and the order's
 * desired-state computation (order.c). Policy lives in lua/ticketscloud.
 * Loading the module opens no socket and starts no thread: libcurl and gRPC
 * are initialised by the first object that needs them.
 */
#include "private.h"

#ifndef TC_VERSION
#error "TC_VERSION must be defined by the build"
#endif

void tc_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close,
                  lua_CFunction tostring)
{
    if (luaL_newmetatable(L, name)) { /* mt */
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__gc");
#if TC_HAVE_CLOSE
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__close");
#endif
        lua_pushcfunction(L, tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
}

int luaopen_ticketscloud_core(lua_State *L)
{
    lua_newtable(L);
    lua_pushliteral(L, TC_VERSION);
    lua_setfield(L, -2, "_VERSION");
    tc_error_register(L);
    tc_money_register(L);
    tc_order_register(L);
    tc_http_register(L);
    tc_grpc_register(L);
    return 1;
}
