/*
 * clock.c: a monotonic clock for Lua, to measure how long something ran.
 * os.time() has whole seconds and jumps with the wall clock; paged
 * listings (lua/ticketscloud/pages.lua) measure their deadline with this.
 *
 *   core.now() -> seconds (a float, from an arbitrary start)
 *
 * tc_now() is the same clock for C (grpc.c times a stream for trace).
 */
#include "private.h"

#include <time.h>

int tc_now(double *seconds)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    *seconds = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return 1;
}

int core_now(lua_State *L)
{
    double seconds;

    luaL_argcheck(L, lua_isnone(L, 1), 1, "no argument expected");
    if (!tc_now(&seconds))
        return luaL_error(L, "clock_gettime(CLOCK_MONOTONIC) failed");
    lua_pushnumber(L, (lua_Number)seconds);
    return 1;
}
