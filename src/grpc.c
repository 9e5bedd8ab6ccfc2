/* grpc.c: placeholder until its implementation lands; registers nothing. */
#include "private.h"

void tc_grpc_register(lua_State *L)
{
    (void)L;
}
