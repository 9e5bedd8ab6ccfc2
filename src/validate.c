/*
 * validate.c: request data is checked before anything is sent.
 *
 * ids are ObjectIds (24 hexadecimal digits), counts are integers in range,
 * strings are UTF-8 without control characters, and JSON bodies hold only
 * what JSON can carry. A violation is `nil, err` with kind "invalid", so the
 * caller learns of its mistake without the service ever seeing the request.
 * All functions are pure: they look at Lua values and do no I/O.
 *
 *   core.check_id(v, what)            -> v | nil, err
 *   core.check_text(v, what)          -> v | nil, err
 *   core.check_count(v, what, min)    -> n | nil, err   (integer, min..2^31-1)
 *   core.check_json(v, what)          -> v | nil, err   (tables walked)
 */
#include "private.h"
#include "bytes.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 16
#define PATH_SIZE 200

/* Pushes a short, printable rendering of the value at idx for a message:
 * ids and short printable strings are quoted, anything else is its type. */
static void push_shown(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        int printable = len <= 40;
        for (size_t i = 0; printable && i < len; i++)
            printable = s[i] >= 0x20 && s[i] < 0x7F && s[i] != '"';
        if (printable) {
            lua_pushfstring(L, "\"%s\"", s);
            return;
        }
        lua_pushfstring(L, "a string of %d bytes", (int)len);
        return;
    }
    if (lua_type(L, idx) == LUA_TNUMBER) {
        /* Converts a copy: the value may be a key of a table being walked. */
        lua_pushvalue(L, idx);
        lua_tostring(L, -1);
        return;
    }
    if (lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL) {
        lua_pushliteral(L, "null"); /* cjson.null, JSON's null */
        return;
    }
    lua_pushstring(L, luaL_typename(L, idx));
}

int tc_fail_value(lua_State *L, int idx, const char *what, const char *problem)
{
    char message[320];

    idx = lua_absindex(L, idx);
    push_shown(L, idx);
    snprintf(message, sizeof message, "%s: %s %s", what, lua_tostring(L, -1), problem);
    lua_pop(L, 1);
    return tc_fail(L, TC_EINVALID, -1, "%s", message);
}

const char *tc_check_id(lua_State *L, int idx, const char *what)
{
    size_t len;
    const char *s;

    if (lua_type(L, idx) != LUA_TSTRING) {
        tc_fail_value(L, idx, what, "is not an ObjectId (24 hexadecimal digits)");
        return NULL;
    }
    s = lua_tolstring(L, idx, &len);
    if (!tc_valid_id(s, len)) {
        tc_fail_value(L, idx, what, "is not an ObjectId (24 hexadecimal digits)");
        return NULL;
    }
    return s;
}

int core_check_id(lua_State *L)
{
    const char *what = luaL_optstring(L, 2, "id");

    lua_settop(L, 2);
    if (!tc_check_id(L, 1, what))
        return 2;
    lua_pushvalue(L, 1);
    return 1;
}

int core_check_text(lua_State *L)
{
    const char *what = luaL_optstring(L, 2, "text");
    const char *problem;
    size_t len;

    if (lua_type(L, 1) != LUA_TSTRING)
        return tc_fail_value(L, 1, what, "is not a string");
    const char *s = lua_tolstring(L, 1, &len);
    if ((problem = tc_text_problem(s, len)) != NULL)
        return tc_fail(L, TC_EINVALID, -1, "%s: %s", what, problem);
    lua_pushvalue(L, 1);
    return 1;
}

int tc_to_count(lua_State *L, int idx, lua_Integer *out)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    if (lua_isinteger(L, idx)) {
        lua_Integer v = lua_tointeger(L, idx);
        if (v < 0 || v > TC_MAX_COUNT)
            return 0;
        *out = v;
        return 1;
    }
    /* Lua 5.4: a float with an integral value is still a count. */
    lua_Number d = lua_tonumber(L, idx);
    if (!(d >= 0 && d <= TC_MAX_COUNT) || d != (lua_Number)(lua_Integer)d)
        return 0;
    *out = (lua_Integer)d;
    return 1;
}

int core_check_count(lua_State *L)
{
    const char *what = luaL_optstring(L, 2, "count");
    lua_Integer min = luaL_optinteger(L, 3, 1), v;

    if (!tc_to_count(L, 1, &v) || v < min)
        return tc_fail_value(L, 1, what, min > 0 ? "is not a positive integer"
                                              : "is not a non-negative integer");
    lua_pushinteger(L, v);
    return 1;
}

/* ..., key, value, nil, err -> ..., nil, err: ends a failed lua_next walk. */
static int drop_pair(lua_State *L, int rc)
{
    lua_remove(L, -3);
    lua_remove(L, -3);
    return rc;
}

/*
 * Walks the value at idx as a JSON value. path holds the name of the value
 * (what, then .key or [i]); returns 0 when it is fine, else pushes nil and
 * an error and returns 2.
 */
static int walk_json(lua_State *L, int idx, char *path, size_t plen, int depth)
{
    const char *problem;
    size_t len;

    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TBOOLEAN:
        return 0;
    case LUA_TNUMBER: {
        lua_Number d = lua_tonumber(L, idx);
        if (d != d || d - d != 0) /* NaN or an infinity: JSON has neither */
            return tc_fail_value(L, idx, path, "is not a finite number");
        return 0;
    }
    case LUA_TSTRING: {
        const char *s = lua_tolstring(L, idx, &len);
        if ((problem = tc_text_problem(s, len)) != NULL)
            return tc_fail(L, TC_EINVALID, -1, "%s: %s", path, problem);
        return 0;
    }
    case LUA_TLIGHTUSERDATA:
        /* cjson.null is the NULL light userdata */
        if (lua_touserdata(L, idx) == NULL)
            return 0;
        return tc_fail_value(L, idx, path, "cannot be sent as JSON");
    case LUA_TTABLE:
        break;
    default:
        return tc_fail_value(L, idx, path, "cannot be sent as JSON");
    }
    if (depth >= MAX_DEPTH)
        return tc_fail(L, TC_EINVALID, -1, "%s: nested too deeply", path);
    luaL_checkstack(L, 4, "check_json");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        /* table ..., key, value */
        int rc;
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *key = lua_tolstring(L, -2, &len);
            if ((problem = tc_text_problem(key, len)) != NULL) {
                rc = tc_fail(L, TC_EINVALID, -1, "%s: a key %s", path, problem);
                return drop_pair(L, rc);
            }
            snprintf(path + plen, PATH_SIZE - plen, ".%s", key);
        } else if (lua_isinteger(L, -2) && lua_tointeger(L, -2) > 0) {
            snprintf(path + plen, PATH_SIZE - plen, "[%ld]", (long)lua_tointeger(L, -2));
        } else {
            path[plen] = '\0';
            rc = tc_fail_value(L, -2, path, "is not a JSON key");
            return drop_pair(L, rc);
        }
        rc = walk_json(L, -1, path, strlen(path), depth + 1);
        if (rc) {
            return drop_pair(L, rc);
        }
        path[plen] = '\0';
        lua_pop(L, 1);
    }
    return 0;
}

int core_check_json(lua_State *L)
{
    char path[PATH_SIZE];

    snprintf(path, sizeof path, "%s", luaL_optstring(L, 2, "body"));
    lua_settop(L, 1);
    if (walk_json(L, 1, path, strlen(path), 0))
        return 2;
    return 1;
}
