/*
 * compat.h: the one place that knows about Lua versions.
 *
 * The core is written against the Lua 5.4 C API. LuaJIT 2.1 (the VM of
 * OpenResty) speaks the 5.1 API plus a few 5.2 additions; this header fills
 * in the rest so that no other file needs a version #ifdef. Include it first.
 */
#ifndef TC_COMPAT_H
#define TC_COMPAT_H

#include <lua.h>
#include <lauxlib.h>
#include <string.h>

#if LUA_VERSION_NUM < 502 /* Lua 5.1 and LuaJIT */

#define lua_rawlen(L, i) lua_objlen((L), (i))
#ifndef luaL_newlib
#define luaL_newlibtable(L, l) lua_createtable((L), 0, sizeof(l) / sizeof((l)[0]) - 1)
#define luaL_newlib(L, l) (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))
#endif

static inline int lua_absindex(lua_State *L, int idx)
{
    return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}

/* An integer-valued number that lua_tointeger returns exactly. LuaJIT has one
 * number type, so this checks the value; the range test comes first because
 * converting a double outside [-2^63, 2^63) to an integer is undefined. */
static inline int lua_isinteger(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    lua_Number n = lua_tonumber(L, idx);
    return n >= -9223372036854775808.0 && n < 9223372036854775808.0 &&
           n == (lua_Number)(lua_Integer)n;
}

/* Pushes the number a numeral reads as and returns strlen(s) + 1, or
 * returns 0 and pushes nothing. LuaJIT's own reader (through a string on
 * the stack) does not depend on the C locale, as strtod would. */
static inline size_t lua_stringtonumber(lua_State *L, const char *s)
{
    lua_pushstring(L, s);
    if (!lua_isnumber(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    lua_Number n = lua_tonumber(L, -1);
    lua_pop(L, 1);
    lua_pushnumber(L, n);
    return strlen(s) + 1;
}

#define TC_HAVE_CLOSE 0

/* A userdata's one Lua value: its environment, which must be a table. */
#define tc_getuservalue(L, i) lua_getfenv((L), (i))
#define tc_setuservalue(L, i) lua_setfenv((L), (i))

#else

#define TC_HAVE_CLOSE (LUA_VERSION_NUM >= 504)

#if LUA_VERSION_NUM >= 504
#define tc_getuservalue(L, i) lua_getiuservalue((L), (i), 1)
#define tc_setuservalue(L, i) lua_setiuservalue((L), (i), 1)
#else
#define tc_getuservalue(L, i) lua_getuservalue((L), (i))
#define tc_setuservalue(L, i) lua_setuservalue((L), (i))
#endif

#endif

#endif
