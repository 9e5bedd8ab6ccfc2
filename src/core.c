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
    luaL_setfuncs(L, tc_auxiliar_functions, 0);
    return 1;
}
