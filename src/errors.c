/*
 * errors.c: the error table every failing call returns as `nil, err`.
 *
 * An error is a plain table { kind = ..., status = ..., messages = {...} }
 * with a shared metatable whose __tostring reads well. Lua code makes its
 * own errors with core.error{...}, so C and Lua errors look the same.
 */
#include "private.h"

#include <stdarg.h>
#include <stdio.h>

/* "ticketscloud: api error (400): Deal not found; Event ... not found"
 *
 * While a luaL_Buffer is in use nothing may be pushed above it but the value
 * being added (the buffer keeps its storage on the stack and moves it when it
 * grows), so the fields are read onto the stack before the buffer starts. */
int core_error_tostring(lua_State *L)
{
    luaL_Buffer b;
    size_t n = 0;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "kind");     /* 2 */
    lua_getfield(L, 1, "status");   /* 3 */
    lua_getfield(L, 1, "messages"); /* 4 */
    if (lua_istable(L, 4))
        n = lua_rawlen(L, 4);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "ticketscloud: ");
    luaL_addstring(&b, lua_isstring(L, 2) ? lua_tostring(L, 2) : "unknown");
    luaL_addstring(&b, " error");
    if (lua_isstring(L, 3)) { /* a number or a string */
        luaL_addstring(&b, " (");
        luaL_addstring(&b, lua_tostring(L, 3));
        luaL_addstring(&b, ")");
    }
    for (size_t i = 1; i <= n; i++) {
        luaL_addstring(&b, i == 1 ? ": " : "; ");
        lua_rawgeti(L, 4, (int)i); /* ..., buffer, message */
        if (lua_istable(L, -1)) {
            /* promocode failures come as { code = ..., msg = ... } */
            lua_getfield(L, -1, "msg");
            lua_remove(L, -2); /* ..., buffer, msg */
            if (!lua_isstring(L, -1)) {
                lua_pop(L, 1);
                lua_pushliteral(L, "?");
            }
        } else if (!lua_isstring(L, -1)) {
            const char *type = luaL_typename(L, -1);
            lua_pop(L, 1);
            lua_pushstring(L, type);
        }
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return 1;
}

/* core.error(t): gives t the error metatable and returns it. */
int core_error(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "kind");
    if (!lua_isstring(L, -1))
        return luaL_argerror(L, 1, "field 'kind' must be a string");
    lua_pop(L, 1);
    lua_getfield(L, 1, "messages");
    if (lua_isnil(L, -1)) {
        lua_newtable(L);
        lua_setfield(L, 1, "messages");
    }
    lua_pop(L, 1);
    lua_settop(L, 1);
    luaL_getmetatable(L, TC_ERROR_MT);
    lua_setmetatable(L, 1);
    return 1;
}

/* core.fail(kind, message [, status]) -> nil, err: the one way Lua code
 * makes an error to return. */
int core_fail(lua_State *L)
{
    const char *kind = luaL_checkstring(L, 1);
    const char *message = luaL_checkstring(L, 2);
    lua_Integer status = luaL_optinteger(L, 3, -1);

    lua_pushnil(L);
    tc_push_error(L, kind, status >= 0 && status <= 999 ? (int)status : -1, message);
    return 2;
}

void tc_push_error(lua_State *L, const char *kind, int status, const char *message)
{
    lua_createtable(L, 0, 3);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    if (status >= 0) {
        lua_pushinteger(L, status);
        lua_setfield(L, -2, "status");
    }
    lua_createtable(L, 1, 0);
    if (message) {
        lua_pushstring(L, message);
        lua_rawseti(L, -2, 1);
    }
    lua_setfield(L, -2, "messages");
    luaL_getmetatable(L, TC_ERROR_MT);
    lua_setmetatable(L, -2);
}

int tc_fail(lua_State *L, const char *kind, int status, const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    lua_pushnil(L);
    tc_push_error(L, kind, status, message);
    return 2;
}
