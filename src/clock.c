/*
 * clock.c: a monotonic clock for Lua, to measure how long something ran.
 * os.time() has whole seconds and jumps with the wall clock; paged
 * listings (lua/ticketscloud/pages.lua) measure their deadline with this.
 *
 *   core.now() -> seconds (a float, from an arbitrary start)
 */
#include "private.h"

#include <time.h>

int core_now(lua_State *L)
{
    struct timespec ts;

    luaL_argcheck(L, lua_isnone(L, 1), 1, "no argument expected");
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return luaL_error(L, "clock_gettime(CLOCK_MONOTONIC) failed");
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}
