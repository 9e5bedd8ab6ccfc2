/*
 * errors.c: the error table every failing call returns as `nil, err`.
 *
 * An error is a plain table { kind = ..., status = ..., messages = {...} }
 * with a shared metatable whose __tostring reads well. Lua code makes its
 * own errors with core.error{...}, so C and Lua errors look the same.
 *
 * It also owns keeping the API key out of error texts: tc_scrub replaces
 * the key wherever a server echoed it, and every path that puts a server's
 * text into an error goes through it (core.scrub for the REST client's
 * errors, grpc.c for gRPC status messages).
 */
#include "private.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* What stands for the key in a scrubbed text. */
#define SCRUBBED "<key>"
/* How deep core.scrub looks into tables of tables of err.messages. */
#define SCRUB_DEPTH 16

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

/* One pass of tc_scrub: replaces each occurrence of secret found left to
 * right, in place (the text only shrinks: the secret is longer than
 * SCRUBBED), and returns the new length; *found tells whether it replaced
 * any. */
static size_t scrub_pass(char *s, size_t n, const char *secret, size_t secret_len, int *found)
{
    size_t r = 0, w = 0; /* read and write offsets, w <= r */
    const char *hit;

    while ((hit = memmem(s + r, n - r, secret, secret_len)) != NULL) {
        size_t plain = (size_t)(hit - (s + r));
        memmove(s + w, s + r, plain);
        w += plain;
        memcpy(s + w, SCRUBBED, sizeof SCRUBBED - 1); /* over the secret, still unread */
        w += sizeof SCRUBBED - 1;
        r += plain + secret_len;
        *found = 1;
    }
    memmove(s + w, s + r, n - r);
    return w + (n - r);
}

size_t tc_scrub(char *s, size_t n, const char *secret, size_t secret_len)
{
    int found = secret_len >= TC_SCRUB_MIN;

    /* Again until none is left: text around a replacement could spell the
     * secret anew (a secret holding "<key>"). Each pass shrinks the text. */
    while (found) {
        found = 0;
        n = scrub_pass(s, n, secret, secret_len, &found);
    }
    return n;
}

/* Scrubs the strings (and numbers, which tostring shows) among the values
 * of the table at t, and of the tables in it down to depth levels. seen
 * holds the tables already done, so that a cycle ends. Keys are left as
 * they are: no error text shows them. */
static void scrub_table(lua_State *L, int t, int seen, const char *secret, size_t secret_len,
                        int depth)
{
    luaL_checkstack(L, 6, "scrubbing an error");
    lua_pushvalue(L, t);
    lua_rawget(L, seen);
    int done = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (done || depth == 0)
        return;
    lua_pushvalue(L, t);
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);

    lua_pushnil(L);
    while (lua_next(L, t)) { /* ..., key, value */
        int type = lua_type(L, -1);
        if (type == LUA_TTABLE) {
            scrub_table(L, lua_gettop(L), seen, secret, secret_len, depth - 1);
        } else if (type == LUA_TSTRING || type == LUA_TNUMBER) {
            size_t n;
            const char *text = lua_tolstring(L, -1, &n); /* a number: the copy on the stack */
            if (memmem(text, n, secret, secret_len)) {
                char *buf = lua_newuserdata(L, n); /* ..., key, value, buf */
                memcpy(buf, text, n);
                n = tc_scrub(buf, n, secret, secret_len);
                lua_pushvalue(L, -3);
                lua_pushlstring(L, buf, n); /* ..., key, value, buf, key, scrubbed */
                lua_rawset(L, t);           /* an existing field: lua_next goes on */
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1); /* ..., key */
    }
}

/* core.scrub(err, secret) -> err: replaces every occurrence of secret in
 * err.messages (its strings, and the string fields of its tables, such as
 * { code =, msg = }, at any depth up to SCRUB_DEPTH) with "<key>". A secret
 * shorter than TC_SCRUB_MIN bytes, or an err that is not a table with a
 * messages table, is left as it is. */
int core_scrub(lua_State *L)
{
    size_t secret_len;
    const char *secret = luaL_checklstring(L, 2, &secret_len);

    lua_settop(L, 2);
    if (lua_istable(L, 1) && secret_len >= TC_SCRUB_MIN)
        lua_getfield(L, 1, "messages"); /* err, secret, messages */
    if (lua_istable(L, 3)) {
        lua_newtable(L); /* err, secret, messages, seen */
        scrub_table(L, 3, 4, secret, secret_len, SCRUB_DEPTH);
    }
    lua_settop(L, 1);
    return 1;
}
