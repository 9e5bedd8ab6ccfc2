/*
 * auxiliar.c: the helpers every Lua-facing file of the core shares: typed
 * userdata classes, optional fields of an options table, and the argument
 * checks the Lua files use to raise on a caller's type mistake.
 */
#include "private.h"

#include <string.h>
#include <sys/random.h>

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

const char *tc_opt_string(lua_State *L, int opts, const char *name, size_t *len)
{
    const char *s = NULL;

    lua_getfield(L, opts, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "bad field '%s' (string expected, got %s)", name, luaL_typename(L, -1));
        s = lua_tolstring(L, -1, len);
    }
    lua_pop(L, 1); /* the string stays alive in opts */
    return s;
}

int tc_opt_number(lua_State *L, int opts, const char *name, lua_Number *out)
{
    int found = 0;

    lua_getfield(L, opts, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "bad field '%s' (number expected, got %s)", name, luaL_typename(L, -1));
        *out = lua_tonumber(L, -1);
        found = 1;
    }
    lua_pop(L, 1);
    return found;
}

/* Whether the value at idx has the type `expected` ("table", "string", ...;
 * a trailing '?' also allows nil). "callable" is a function or a value
 * with a __call metamethod. */
static int has_type(lua_State *L, int idx, const char *expected)
{
    size_t len = strlen(expected);
    int t = lua_type(L, idx);

    if (len > 0 && expected[len - 1] == '?') {
        if (t == LUA_TNIL)
            return 1;
        len--;
    }
    if (len == 8 && strncmp(expected, "callable", 8) == 0) {
        if (t == LUA_TFUNCTION)
            return 1;
        if (luaL_getmetafield(L, idx, "__call")) { /* 5.1: 1, 5.4: its type */
            lua_pop(L, 1);
            return 1;
        }
        return 0;
    }
    return strlen(lua_typename(L, t)) == len && strncmp(lua_typename(L, t), expected, len) == 0;
}

/* Raises "<where>bad <what> to '<fname>' (<expected> expected, got <type>)"
 * with the position of the caller of the Lua function that checked. */
static int type_error(lua_State *L, int idx, const char *what, const char *fname,
                      const char *expected)
{
    size_t len = strlen(expected);

    if (len > 0 && expected[len - 1] == '?')
        len--;
    lua_pushlstring(L, expected, len); /* without the '?' */
    luaL_where(L, 2);
    lua_pushfstring(L, "bad %s to '%s' (%s expected, got %s)", what, fname,
                    lua_tostring(L, -2), luaL_typename(L, idx));
    lua_concat(L, 2);
    return lua_error(L);
}

/* core.check_arg(v, expected, fname, n) -> v: raises "bad argument #n to
 * 'fname' (expected expected, got type)" at the caller's caller. */
int core_check_arg(lua_State *L)
{
    const char *expected = luaL_checkstring(L, 2);
    const char *fname = luaL_checkstring(L, 3);
    lua_Integer n = luaL_checkinteger(L, 4);

    lua_settop(L, 4);
    if (!has_type(L, 1, expected)) {
        lua_pushfstring(L, "argument #%d", (int)n);
        return type_error(L, 1, lua_tostring(L, -1), fname, expected);
    }
    lua_pushvalue(L, 1);
    return 1;
}

/* core.check_field(t, name, expected, fname) -> t[name]: raises "bad field
 * 'name' to 'fname' (expected expected, got type)" at the caller's caller. */
int core_check_field(lua_State *L)
{
    const char *name;
    const char *expected = luaL_checkstring(L, 3);
    const char *fname = luaL_checkstring(L, 4);

    luaL_checktype(L, 1, LUA_TTABLE);
    name = luaL_checkstring(L, 2);
    lua_settop(L, 4);
    lua_getfield(L, 1, name); /* 5 */
    if (!has_type(L, 5, expected)) {
        lua_pushfstring(L, "field '%s'", name);
        return type_error(L, 5, lua_tostring(L, -1), fname, expected);
    }
    return 1;
}

/* core.copy_fields(dst, src, skip) -> dst: dst[k] = v for every field k, v
 * of src whose skip[k] is nil (raw reads and writes, no metamethods): an
 * order's fields when it is updated (order.lua). */
int core_copy_fields(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    lua_pushnil(L); /* dst, src, skip, key */
    while (lua_next(L, 2)) { /* ..., key, value */
        lua_pushvalue(L, -2);
        lua_rawget(L, 3); /* ..., key, value, skip[key] */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_insert(L, -2); /* ..., key, key, value */
            lua_rawset(L, 1);  /* ..., key */
        } else {
            lua_pop(L, 2); /* ..., key */
        }
    }
    lua_settop(L, 1);
    return 1;
}

/* core.request_id() -> 32 random hexadecimal characters (128 bits from the
 * kernel), the tag that makes an order's creation recognisable. */
int core_request_id(lua_State *L)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[16];
    char out[32];
    size_t got = 0;

    while (got < sizeof bytes) {
        ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0)
            return luaL_error(L, "no random bytes from the kernel");
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof bytes; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    lua_pushlstring(L, out, sizeof out);
    return 1;
}
