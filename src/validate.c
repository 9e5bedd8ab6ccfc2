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
 *
 * and the fields of an order whose rules the service documents (spec §3.4):
 *
 *   core.check_customer(v)            -> v | nil, err   settings.customer
 *   core.check_vendor_data(v)         -> v | nil, err   vendor_data
 *   core.check_settings(v)            -> v | nil, err   settings
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
        lua_pushliteral(L, "null"); /* core.json_null, JSON's null */
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
        /* core.json_null is the NULL light userdata */
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

/* The length of the UTF-8 string s in characters: its bytes that do not
 * continue a sequence (malformed UTF-8 is walk_json's to refuse). */
static size_t chars(const char *s, size_t n)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

/* The characters of the string at idx; SIZE_MAX when it is not a string. */
static size_t chars_at(lua_State *L, int idx)
{
    size_t len;

    if (lua_type(L, idx) != LUA_TSTRING)
        return SIZE_MAX;
    const char *s = lua_tolstring(L, idx, &len);
    return chars(s, len);
}

/* The table key at idx named in a message: a string as it is, a number in
 * digits, anything else by its type. Never converts the key in place. */
static const char *key_name(lua_State *L, int idx, char *buf, size_t len)
{
    if (lua_type(L, idx) == LUA_TSTRING)
        return lua_tostring(L, idx);
    if (lua_type(L, idx) != LUA_TNUMBER)
        return luaL_typename(L, idx);
    if (lua_isinteger(L, idx))
        snprintf(buf, len, "%lld", (long long)lua_tointeger(L, idx));
    else
        snprintf(buf, len, "%.14g", (double)lua_tonumber(L, idx));
    return buf;
}

/* Whether the key at idx is the string name. */
static int key_is(lua_State *L, int idx, const char *name)
{
    return lua_type(L, idx) == LUA_TSTRING && strcmp(lua_tostring(L, idx), name) == 0;
}

/* An e-mail address as the service takes it: one '@' with something on
 * either side, no white space. */
static int is_email(const char *s, size_t n)
{
    size_t at = n;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))
            return 0;
        if (s[i] == '@') {
            if (at != n)
                return 0;
            at = i;
        }
    }
    return at > 0 && at + 1 < n;
}

/*
 * settings.customer (spec §3.4.1): a table of name, email, phone and lang,
 * each text; lang "ru" or "en"; email an address. Returns 0, or pushes nil
 * and an "invalid" error and returns 2.
 */
static int check_customer(lua_State *L, int idx)
{
    static const char *const fields[] = { "name", "email", "phone", "lang", NULL };
    char what[32], buf[32];
    const char *problem;
    size_t len;

    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        return tc_fail_value(L, idx, "customer", "is not a table");
    luaL_checkstack(L, 4, "check_customer");
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* ..., key, value */
        int k = 0;
        while (fields[k] && !key_is(L, -2, fields[k]))
            k++;
        if (!fields[k])
            return tc_fail(L, TC_EINVALID, -1, "customer: unknown field %s",
                           key_name(L, -2, buf, sizeof buf));
        snprintf(what, sizeof what, "customer.%s", fields[k]);
        if (lua_type(L, -1) != LUA_TSTRING)
            return tc_fail_value(L, -1, what, "is not a string");
        const char *s = lua_tolstring(L, -1, &len);
        if ((problem = tc_text_problem(s, len)) != NULL)
            return tc_fail(L, TC_EINVALID, -1, "%s: %s", what, problem);
        lua_pop(L, 1);
    }
    lua_getfield(L, idx, "lang");
    const char *lang = lua_tostring(L, -1);
    if (lang && strcmp(lang, "ru") != 0 && strcmp(lang, "en") != 0)
        return tc_fail(L, TC_EINVALID, -1, "customer.lang: \"ru\" or \"en\" expected");
    lua_getfield(L, idx, "email");
    const char *email = lua_tolstring(L, -1, &len);
    if (email && !is_email(email, len))
        return tc_fail(L, TC_EINVALID, -1, "customer.email: not an e-mail address");
    lua_pop(L, 2);
    return 0;
}

/* vendor_data.raw, the table at idx: at most 20 keys of at most 40
 * characters; values strings of at most 128 characters, numbers or
 * booleans. Returns 0, or pushes nil and an "invalid" error and returns 2. */
static int check_raw(lua_State *L, int idx)
{
    int n = 0;

    lua_pushnil(L);
    while (lua_next(L, idx)) { /* ..., key, value */
        n++;
        if (chars_at(L, -2) > 40)
            return tc_fail(L, TC_EINVALID, -1,
                           "vendor_data: raw keys must be strings of at most 40 characters");
        const char *key = lua_tostring(L, -2); /* a string: no conversion */
        int t = lua_type(L, -1);
        if (t == LUA_TSTRING && chars_at(L, -1) > 128)
            return tc_fail(L, TC_EINVALID, -1, "vendor_data: raw.%s is longer than 128 characters",
                           key);
        if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN)
            return tc_fail(L, TC_EINVALID, -1,
                           "vendor_data: raw.%s must be a string, a number or a boolean", key);
        lua_pop(L, 1);
    }
    if (n > 20)
        return tc_fail(L, TC_EINVALID, -1, "vendor_data: raw has more than 20 keys");
    return 0;
}

/*
 * vendor_data (spec §3.4.3): only order_id, a string of at most 64
 * characters, and raw (check_raw); then JSON like any body. Returns 0, or
 * pushes nil and an "invalid" error and returns 2.
 */
static int check_vendor_data(lua_State *L, int idx)
{
    char buf[32], path[PATH_SIZE] = "vendor_data";

    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        return tc_fail_value(L, idx, "vendor_data", "is not a table");
    luaL_checkstack(L, 4, "check_vendor_data");
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* ..., key, value */
        if (!key_is(L, -2, "order_id") && !key_is(L, -2, "raw"))
            return tc_fail(L, TC_EINVALID, -1, "vendor_data: unknown field %s",
                           key_name(L, -2, buf, sizeof buf));
        lua_pop(L, 1);
    }
    lua_getfield(L, idx, "order_id");
    if (!lua_isnil(L, -1) && chars_at(L, -1) > 64)
        return tc_fail(L, TC_EINVALID, -1,
                       "vendor_data: order_id must be a string of at most 64 characters");
    lua_getfield(L, idx, "raw");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            return tc_fail(L, TC_EINVALID, -1, "vendor_data: raw must be a table");
        if (check_raw(L, lua_gettop(L)))
            return 2;
    }
    lua_pop(L, 2);
    return walk_json(L, idx, path, strlen(path), 0);
}

/*
 * settings of a new order (spec §3.4.1, §3.4.2): only customer
 * (check_customer) and send_tickets, a boolean. Returns 0, or pushes nil and
 * an "invalid" error and returns 2.
 */
static int check_settings(lua_State *L, int idx)
{
    char buf[32];

    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        return tc_fail_value(L, idx, "settings", "is not a table");
    luaL_checkstack(L, 4, "check_settings");
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* ..., key, value */
        if (key_is(L, -2, "customer")) {
            if (check_customer(L, -1))
                return 2;
        } else if (key_is(L, -2, "send_tickets")) {
            if (!lua_isboolean(L, -1))
                return tc_fail_value(L, -1, "settings.send_tickets", "is not a boolean");
        } else {
            return tc_fail(L, TC_EINVALID, -1, "settings: unknown field %s",
                           key_name(L, -2, buf, sizeof buf));
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* The Lua face of a check: (v) -> v | nil, err; v may be anything. */
static int run_check(lua_State *L, int (*check)(lua_State *, int))
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    if (check(L, 1))
        return 2;
    lua_settop(L, 1);
    return 1;
}

int core_check_customer(lua_State *L)
{
    return run_check(L, check_customer);
}

int core_check_vendor_data(lua_State *L)
{
    return run_check(L, check_vendor_data);
}

int core_check_settings(lua_State *L)
{
    return run_check(L, check_settings);
}
