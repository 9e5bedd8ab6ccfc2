/*
 * json.c: JSON text to and from Lua values, through yajl.
 *
 * The REST answers and request bodies of the client pass through here
 * (core.json_decode, core.json_encode). Decoding is event driven: yajl's
 * callbacks build the Lua tables directly, with no tree in between. Numbers
 * are read the way Lua reads a numeral, so 59807 is an integer and 1.5 a
 * float on Lua 5.3+; JSON null is core.json_null (the NULL light userdata,
 * the same value as lua-cjson's cjson.null). Arrays decode as tables marked
 * by core.json_array, and marked tables encode as arrays even when empty,
 * so decoding and encoding again keeps [] as [].
 */
#include "compat.h"
#include "private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#define JSON_ARRAY_MT "ticketscloud.array"
#define JSON_PARSER_MT "ticketscloud.JsonParser"
#define JSON_GEN_MT "ticketscloud.JsonGen"

/* Nesting deeper than this is refused both ways: each level holds a few Lua
 * stack slots, and a cyclic table would recurse for ever. */
#define JSON_MAX_DEPTH 128 /* yajl_gen's own limit, YAJL_MAX_DEPTH */
/* The longest numeral decoded (digits of a JSON number); longer is refused. */
#define JSON_MAX_NUMERAL 127

/* Largest number of values (or object members) of one container kept on
 * the Lua stack before its table is made; see "Decoding" below. */
#define JSON_PENDING_MAX 1024
/* Slots the decoder makes sure of at a time while values pile up. */
#define JSON_STACK_STEP 64

/* The decoder's cache of strings of JSON_CACHE_MIN to JSON_CACHE_MAX bytes
 * (ids, times, barcodes), in JSON_CACHE_SLOTS slots (a power of two); see
 * push_text. */
#define JSON_CACHE_MIN 16
#define JSON_CACHE_MAX 40
#define JSON_CACHE_SLOTS 512

/* yajl handles live in userdata, so a Lua error raised inside a callback (out
 * of memory) leaves them to __gc instead of leaking them. core.json_decode
 * keeps one such userdata as its upvalue and uses it for every decoding but
 * one that starts while another is running (from a finalizer that the
 * decoder's allocations ran), which makes its own: no userdata, and no
 * finalizer, per decoding. */
struct parser {
    yajl_handle h;
    int busy; /* a decoding uses it; left set by one that raised */
};

struct gen {
    yajl_gen g;
};

/*
 * Decoding. yajl calls back for each value; the values of an open
 * container pile up on the Lua stack (for an object, key and value in
 * turn) and its table is made when it ends, with lua_createtable sized for
 * exactly what it holds: a table grown one key at a time is rebuilt at
 * every power of two, which cost more than the parsing. A container with
 * more than JSON_PENDING_MAX values gets its table then, and the rest of
 * its values are stored into it as they come.
 */
struct decoding {
    lua_State *L;
    int depth;
    int array_mt;        /* stack index of core.json_array's metatable */
    int room;            /* the stack is sure to hold slots below this (store) */
    int cache;           /* index of the string cache (push_text) */
    const char *problem; /* why a callback stopped the parse */
    /* Per open container: values (array) or members (object) so far, the
     * stack slot below its first pending one (its table's slot once made),
     * whether it is an array and whether its table is made. */
    lua_Integer items[JSON_MAX_DEPTH + 1];
    int base[JSON_MAX_DEPTH + 1];
    unsigned char in_array[JSON_MAX_DEPTH + 1];
    unsigned char made[JSON_MAX_DEPTH + 1];
};

static int parser_gc(lua_State *L)
{
    struct parser *p = luaL_checkudata(L, 1, JSON_PARSER_MT);
    if (p->h) {
        yajl_free(p->h);
        p->h = NULL;
    }
    return 0;
}

static int gen_gc(lua_State *L)
{
    struct gen *g = luaL_checkudata(L, 1, JSON_GEN_MT);
    if (g->g) {
        yajl_gen_free(g->g);
        g->g = NULL;
    }
    return 0;
}

/* Makes the table of the container at depth from its pending values, which
 * it replaces on the stack. */
static void make_table(struct decoding *d, int depth)
{
    lua_State *L = d->L;
    int base = d->base[depth];
    int n = lua_gettop(L) - base; /* pending slots */

    if (d->in_array[depth]) {
        lua_createtable(L, n, 0); /* values..., table */
        lua_pushvalue(L, d->array_mt);
        lua_setmetatable(L, -2);
        for (int i = 1; i <= n; i++) {
            lua_pushvalue(L, base + i);
            lua_rawseti(L, -2, i);
        }
    } else {
        lua_createtable(L, 0, n / 2); /* key, value, ..., table */
        for (int i = 1; i < n; i += 2) {
            lua_pushvalue(L, base + i);
            lua_pushvalue(L, base + i + 1);
            lua_rawset(L, -3);
        }
    }
    if (n > 0) {
        lua_replace(L, base + 1);
        lua_settop(L, base + 1); /* table */
    }
    d->made[depth] = 1;
}

/* Stores the value on top into the open container: it stays pending on the
 * stack, or goes into the container's table (container[key] = value for an
 * object, key below the value; the next index for an array). At depth 0
 * the value is the result and stays. */
static int store(struct decoding *d)
{
    int depth = d->depth;

    if (depth == 0)
        return 1;
    d->items[depth]++;
    if (d->made[depth]) {
        if (d->in_array[depth])
            lua_rawseti(d->L, d->base[depth] + 1, d->items[depth]);
        else
            lua_rawset(d->L, d->base[depth] + 1);
        return 1;
    }
    /* Room for the next key and value, else the table now. The stack is
     * grown JSON_STACK_STEP slots at a time; room is the slot below which
     * it was last made sure of. */
    if (d->items[depth] >= JSON_PENDING_MAX)
        make_table(d, depth);
    else if (lua_gettop(d->L) + 4 > d->room) {
        if (lua_checkstack(d->L, JSON_STACK_STEP))
            d->room = lua_gettop(d->L) + JSON_STACK_STEP;
        else if (!lua_checkstack(d->L, 4))
            make_table(d, depth);
    }
    return 1;
}

static int on_null(void *ctx)
{
    struct decoding *d = ctx;
    lua_pushlightuserdata(d->L, NULL);
    return store(d);
}

static int on_boolean(void *ctx, int b)
{
    struct decoding *d = ctx;
    lua_pushboolean(d->L, b);
    return store(d);
}

/* The numeral as Lua reads it: an integer when it has no fraction or
 * exponent and fits, else a float. */
static int on_number(void *ctx, const char *s, size_t n)
{
    struct decoding *d = ctx;
    char buf[JSON_MAX_NUMERAL + 1];
    if (n > JSON_MAX_NUMERAL) {
        d->problem = "a number has too many digits";
        return 0;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (lua_stringtonumber(d->L, buf) == 0) {
        d->problem = "a number Lua cannot read";
        return 0;
    }
    return store(d);
}

/* The cache slot of a string of at least 8 bytes: its length and its
 * first, middle and last eight bytes, mixed. */
static unsigned cache_slot(const unsigned char *s, size_t n)
{
    uint64_t a, b, c;

    memcpy(&a, s, 8);
    memcpy(&b, s + n - 8, 8);
    memcpy(&c, s + n / 2 - 4, 8);
    uint64_t h = (uint64_t)n * 0x9e3779b97f4a7c15u ^ a * 0xff51afd7ed558ccdu ^
                 b * 0xc4ceb9fe1a85ec53u ^ c;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9u;
    return (unsigned)(h >> 32) & (JSON_CACHE_SLOTS - 1);
}

/* Pushes a key or a string value. One of JSON_CACHE_MIN to JSON_CACHE_MAX
 * bytes is first looked up in the cache, a table of strings by slot
 * (cache_slot) that lives as long as the module: an answer's ids and times
 * repeat within it and from one answer to the next, and a string found in
 * that small table is pushed without Lua hashing it and walking its string
 * table, whose chains are spread over the heap. A string not found takes
 * its slot. Shorter strings, most keys, cost Lua less to intern than the
 * lookup. A GET of an order takes 2 % less CPU so; a list of orders,
 * whose ids differ, the same as without. */
static void push_text(struct decoding *d, const unsigned char *s, size_t n)
{
    lua_State *L = d->L;

    if (n < JSON_CACHE_MIN || n > JSON_CACHE_MAX) {
        lua_pushlstring(L, (const char *)s, n);
        return;
    }
    int slot = (int)cache_slot(s, n) + 1;
    size_t len;
    lua_rawgeti(L, d->cache, slot);
    const char *cached = lua_tolstring(L, -1, &len); /* NULL for nil */
    if (cached && len == n && memcmp(cached, s, n) == 0)
        return;
    lua_pop(L, 1);
    lua_pushlstring(L, (const char *)s, n);
    lua_pushvalue(L, -1);
    lua_rawseti(L, d->cache, slot);
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
    struct decoding *d = ctx;
    push_text(d, s, n);
    return store(d);
}

static int on_key(void *ctx, const unsigned char *s, size_t n)
{
    push_text(ctx, s, n); /* ..., key */
    return 1;
}

static int open_container(struct decoding *d, int array)
{
    if (d->depth >= JSON_MAX_DEPTH || !lua_checkstack(d->L, 8)) {
        d->problem = "nested too deeply";
        return 0;
    }
    d->depth++;
    d->in_array[d->depth] = (unsigned char)array;
    d->made[d->depth] = 0;
    d->items[d->depth] = 0;
    d->base[d->depth] = lua_gettop(d->L);
    return 1;
}

static int on_start_map(void *ctx)
{
    return open_container(ctx, 0);
}

static int on_start_array(void *ctx)
{
    return open_container(ctx, 1);
}

static int on_end(void *ctx)
{
    struct decoding *d = ctx;
    if (!d->made[d->depth])
        make_table(d, d->depth);
    d->depth--;
    return store(d);
}

static const yajl_callbacks decode_callbacks = {
    on_null, on_boolean, NULL, NULL, on_number, on_string,
    on_start_map, on_key, on_end, on_start_array, on_end,
};

/* core.json_decode(text): the value, or nil and a message. The whole text is
 * one JSON value (any type) with nothing after it. */
int core_json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    struct decoding state, *d = &state;
    d->L = L;
    d->depth = 0;
    d->problem = NULL;
    struct parser *p = lua_touserdata(L, lua_upvalueindex(1));
    if (p->busy) { /* another decoding runs, or one raised: a parser of its own */
        p = lua_newuserdata(L, sizeof *p); /* text, parser */
        p->h = NULL;
        p->busy = 0;
        luaL_getmetatable(L, JSON_PARSER_MT);
        lua_setmetatable(L, -2);
    } else {
        lua_pushvalue(L, lua_upvalueindex(1)); /* text, parser */
    }
    p->busy = 1;
    luaL_getmetatable(L, JSON_ARRAY_MT); /* text, parser, array_mt */
    d->array_mt = 3;
    d->room = 0;
    d->cache = lua_upvalueindex(2);
    p->h = yajl_alloc(&decode_callbacks, NULL, d);
    if (!p->h)
        return luaL_error(L, "out of memory");

    yajl_status status = yajl_parse(p->h, (const unsigned char *)text, len);
    if (status == yajl_status_ok)
        status = yajl_complete_parse(p->h);
    if (status == yajl_status_ok) {
        /* text, parser, array_mt, value */
        yajl_free(p->h);
        p->h = NULL;
        p->busy = 0;
        return 1;
    }
    lua_settop(L, 3);
    lua_pushnil(L);
    if (status == yajl_status_client_canceled) {
        lua_pushfstring(L, "JSON text: %s", d->problem);
    } else {
        unsigned char *msg = yajl_get_error(p->h, 0, NULL, 0);
        size_t n = msg ? strcspn((const char *)msg, "\n") : 0;
        lua_pushliteral(L, "JSON text: ");
        lua_pushlstring(L, msg ? (const char *)msg : "cannot be read", msg ? n : 14);
        lua_concat(L, 2);
        if (msg)
            yajl_free_error(p->h, msg);
    }
    yajl_free(p->h);
    p->h = NULL;
    p->busy = 0;
    return 2;
}

/* Encoding. Each helper returns NULL or why the value cannot be encoded. */

struct encoding {
    lua_State *L;
    yajl_gen g;
    int sorted; /* object keys in byte order, for text meant to be diffed */
};

static const char *encode_value(struct encoding *e, int idx, int depth);

static const char *gen_status(yajl_gen_status s)
{
    switch (s) {
    case yajl_gen_status_ok:
        return NULL;
    case yajl_gen_invalid_string:
        return "a string is not valid UTF-8";
    case yajl_gen_invalid_number:
        return "a number is not finite";
    case yajl_max_depth_exceeded:
        return "nested too deeply (a cycle?)";
    default:
        return "the encoder failed";
    }
}

static const char *encode_number(lua_State *L, yajl_gen g, int idx)
{
    if (lua_isinteger(L, idx))
        return gen_status(yajl_gen_integer(g, (long long)lua_tointeger(L, idx)));
    lua_Number x = lua_tonumber(L, idx);
    if (!isfinite(x))
        return "a number is not finite";
    /* An integral float within 2^53 is written as an integer, so counts made
     * in LuaJIT (where every number is a float) read as integers. */
    if (fabs(x) <= 9007199254740992.0 && x == floor(x))
        return gen_status(yajl_gen_integer(g, (long long)x));
    /* The shortest of 15 or 17 digits that reads back as the same float;
     * the decimal point is '.' whatever the C locale says. */
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%.15g", x);
    if (strtod(buf, NULL) != x)
        n = snprintf(buf, sizeof buf, "%.17g", x);
    for (int i = 0; i < n; i++)
        if (buf[i] != '-' && buf[i] != '+' && buf[i] != 'e' && (buf[i] < '0' || buf[i] > '9'))
            buf[i] = '.';
    return gen_status(yajl_gen_number(g, buf, (size_t)n));
}

/* Whether the table at idx is written as an array: marked by core.json_array,
 * or not empty with keys 1..n only. *n gets the length. */
static const char *table_shape(lua_State *L, int idx, int *array, lua_Integer *n)
{
    *n = (lua_Integer)lua_rawlen(L, idx);
    int marked = 0;
    if (lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, JSON_ARRAY_MT);
        marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    lua_Integer keys = 0, strings = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        keys++;
        if (lua_type(L, -1) == LUA_TSTRING)
            strings++;
    }
    if (marked || (keys > 0 && keys == *n)) {
        *array = 1;
        return keys == *n ? NULL : "an array has keys other than 1..n";
    }
    *array = 0;
    if (strings == keys)
        return NULL;
    return strings ? "a table mixes array items and named fields" : "an array has holes";
}

/* A key of the object being written: the string stays in the table. */
struct key {
    const char *s;
    size_t len;
};

static int key_order(const void *a, const void *b)
{
    const struct key *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The fields of the object at idx, keys sorted. */
static const char *encode_sorted(struct encoding *e, int idx, int depth)
{
    lua_State *L = e->L;
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        n++;
    }
    struct key *keys = lua_newuserdata(L, (n ? n : 1) * sizeof *keys); /* keys */
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        keys[i].s = lua_tolstring(L, -1, &keys[i].len); /* a string: table_shape checked */
        i++;
    }
    qsort(keys, n, sizeof *keys, key_order);
    const char *problem = NULL;
    for (i = 0; i < n && !problem; i++) {
        problem = gen_status(yajl_gen_string(e->g, (const unsigned char *)keys[i].s, keys[i].len));
        if (problem)
            break;
        lua_pushlstring(L, keys[i].s, keys[i].len);
        lua_rawget(L, idx); /* keys, value */
        problem = encode_value(e, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return problem;
}

static const char *encode_table(struct encoding *e, int idx, int depth)
{
    lua_State *L = e->L;
    yajl_gen g = e->g;
    if (depth >= JSON_MAX_DEPTH || !lua_checkstack(L, 4))
        return "nested too deeply (a cycle?)";
    int array;
    lua_Integer n;
    const char *problem = table_shape(L, idx, &array, &n);
    if (problem)
        return problem;
    if (array) {
        if ((problem = gen_status(yajl_gen_array_open(g))))
            return problem;
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            problem = encode_value(e, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
            if (problem)
                return problem;
        }
        return gen_status(yajl_gen_array_close(g));
    }
    if ((problem = gen_status(yajl_gen_map_open(g))))
        return problem;
    if (e->sorted) {
        if ((problem = encode_sorted(e, idx, depth)))
            return problem;
        return gen_status(yajl_gen_map_close(g));
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* key, value */
        size_t len;
        const char *key = lua_tolstring(L, -2, &len); /* a string: table_shape checked */
        problem = gen_status(yajl_gen_string(g, (const unsigned char *)key, len));
        if (!problem)
            problem = encode_value(e, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        if (problem) {
            lua_pop(L, 1);
            return problem;
        }
    }
    return gen_status(yajl_gen_map_close(g));
}

static const char *encode_value(struct encoding *e, int idx, int depth)
{
    lua_State *L = e->L;
    yajl_gen g = e->g;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return gen_status(yajl_gen_null(g));
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return gen_status(yajl_gen_null(g));
        return "a light userdata other than json_null";
    case LUA_TBOOLEAN:
        return gen_status(yajl_gen_bool(g, lua_toboolean(L, idx)));
    case LUA_TNUMBER:
        return encode_number(L, g, idx);
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return gen_status(yajl_gen_string(g, (const unsigned char *)s, len));
    }
    case LUA_TTABLE:
        return encode_table(e, idx, depth);
    default:
        return "a value of a type JSON does not have";
    }
}

/* core.json_encode(value [, pretty]): the JSON text, or nil and an error
 * (kind invalid) saying what cannot be encoded. pretty: keys sorted and
 * two-space indentation, for files people read and diff. */
int core_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    int pretty = lua_toboolean(L, 2);
    lua_settop(L, 1);
    struct gen *box = lua_newuserdata(L, sizeof *box); /* value, gen */
    box->g = NULL;
    luaL_getmetatable(L, JSON_GEN_MT);
    lua_setmetatable(L, -2);
    box->g = yajl_gen_alloc(NULL);
    if (!box->g || !yajl_gen_config(box->g, yajl_gen_validate_utf8, 1) ||
        (pretty && (!yajl_gen_config(box->g, yajl_gen_beautify, 1) ||
                    !yajl_gen_config(box->g, yajl_gen_indent_string, "  "))))
        return luaL_error(L, "out of memory");
    struct encoding e = { L, box->g, pretty };
    const char *problem = encode_value(&e, 1, 0);
    if (problem) {
        yajl_gen_free(box->g);
        box->g = NULL;
        return tc_fail(L, TC_EINVALID, -1, "the body cannot be encoded as JSON: %s", problem);
    }
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(box->g, &buf, &len);
    lua_pushlstring(L, (const char *)buf, len); /* value, gen, text */
    yajl_gen_free(box->g);
    box->g = NULL;
    return 1;
}

/* core.json_array([t]): t (or a new table) marked to be encoded as an array. */
int core_json_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    luaL_getmetatable(L, JSON_ARRAY_MT);
    lua_setmetatable(L, 1);
    return 1;
}

/* The metatables of json.c, core.json_null and core.json_decode (with its
 * parser and string cache). The module table on top. */
void tc_json_open(lua_State *L)
{
    if (luaL_newmetatable(L, JSON_ARRAY_MT)) {
        lua_pushliteral(L, JSON_ARRAY_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, JSON_PARSER_MT)) {
        lua_pushcfunction(L, parser_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, JSON_GEN_MT)) {
        lua_pushcfunction(L, gen_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "json_null");
    struct parser *p = lua_newuserdata(L, sizeof *p); /* module, parser */
    p->h = NULL;
    p->busy = 0;
    luaL_getmetatable(L, JSON_PARSER_MT);
    lua_setmetatable(L, -2);
    lua_createtable(L, JSON_CACHE_SLOTS, 0); /* module, parser, string cache */
    lua_pushcclosure(L, core_json_decode, 2);
    lua_setfield(L, -2, "json_decode");
}
