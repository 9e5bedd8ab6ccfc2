/* grpc.c: tc-simple gRPC client (channel and streams); for now only the codec. */
#include "private.h"

void tc_grpc_register(lua_State *L)
{
    tc_codec_register(L);
}
