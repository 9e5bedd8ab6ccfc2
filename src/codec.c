/*
 * codec.c: protobuf messages <-> plain Lua tables, driven by the protobuf-c
 * descriptors generated from proto/ (no per-message code).
 *
 * Decoding (protobuf bytes -> table):
 *   - fields keep their proto names; enums become their names ("VACANT"),
 *     or the number when the value is not in the enum (proto3 enums are open);
 *   - every singular scalar field is present, with its proto3 default when it
 *     was not on the wire (spec §2.3: a vacant seat reads status "VACANT");
 *   - a sub-message that was not sent is nil; a oneof shows its set member only;
 *   - repeated fields are lists (empty when nothing was sent), map fields are
 *     tables keyed by the map key;
 *   - google.protobuf.Timestamp becomes Unix seconds: an integer, or a float
 *     when nanos is not 0;
 *   - 64-bit integers are Lua integers (numbers on LuaJIT); a uint64 above the
 *     largest integer becomes a float.
 * Encoding takes tables of the same shape (enum names or numbers, Timestamps
 * as Unix seconds) and refuses anything that does not fit the message, so a
 * request is either exactly what the caller meant or not sent at all.
 *
 * Both directions are pure: core.encode(type_name, table) -> bytes and
 * core.decode(type_name, bytes) -> table do no I/O, for use by any transport.
 * core.decode_at reads one message of a packed listing (messages each after
 * its length as a varint, what stream:read_all of grpc.c returns): the
 * format has its two ends here, tc_codec_put_length and core.decode_at.
 *
 * Memory: a message being built or decoded hangs from a small "box" userdata
 * whose __gc frees it, so a Lua memory error in the middle leaks nothing
 * (see "The box" below).
 */
#include "private.h"
#include "bytes.h"

#include <protobuf-c/protobuf-c.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "service.pb-c.h"


/* Nesting limit for tables being encoded and types being searched. */
#define MAX_DEPTH 32

/* 2^62, 2^63 and 2^64 as doubles, the bounds of the integer conversions. */
#define TWO_62 4611686018427387904.0
#define TWO_63 9223372036854775808.0
#define TWO_64 18446744073709551616.0

/* ------------------------------------------------------------------------ */
/* The box: owner of a protobuf-c message tree being turned into a table or  */
/* built from one, so that it is freed if Lua raises midway (out of memory). */
/*                                                                            */
/* Encoding gives each message a box of its own (filling it reads the        */
/* caller's tables, which may run Lua code), with malloc'd memory.           */
/* Decoding uses one box per Lua state, kept in the registry and reused: it  */
/* unpacks into an arena, so a decoded message costs no malloc or free once  */
/* the arena has grown to its size, and no userdata. A decoding that starts  */
/* while the state's box is busy (a __gc finalizer run by the collector in   */
/* the middle of another decoding, or after one that raised) takes a box of  */
/* its own, as encoding does.                                                 */

/* Arena memory: chunks of at least ARENA_CHUNK bytes, newest first. After a
 * decoding, the newest chunk is kept when it is at most ARENA_KEEP bytes. */
#define ARENA_CHUNK 4096
#define ARENA_KEEP (64 * 1024)

struct chunk {
    struct chunk *next;
    size_t cap, used;
    size_t pad; /* the data after the header stays 16-byte aligned */
};

struct box {
    ProtobufCMessage *msg; /* encoding: malloc'd tree, freed with free_unpacked */
    int busy;              /* decoding: the arena holds a message in use */
    struct chunk *chunks;  /* decoding: the arena */
};

static void *arena_alloc(void *data, size_t size)
{
    struct box *b = data;
    struct chunk *c = b->chunks;

    size = (size + 15) & ~(size_t)15;
    if (size == 0)
        size = 16;
    if (!c || c->cap - c->used < size) {
        size_t cap = c && c->cap < ARENA_KEEP ? c->cap * 2 : ARENA_CHUNK;
        if (cap < size)
            cap = size;
        struct chunk *more = malloc(sizeof *more + cap);
        if (!more)
            return NULL;
        more->next = c;
        more->cap = cap;
        more->used = 0;
        b->chunks = c = more;
    }
    void *p = (char *)(c + 1) + c->used;
    c->used += size;
    return p;
}

static void arena_free(void *data, void *p)
{
    (void)data, (void)p; /* all of it goes at once, in arena_reset */
}

/* Empties the arena; keep: whether its newest chunk may stay for the next
 * decoding (a small one does). */
static void arena_reset(struct box *b, int keep)
{
    struct chunk *c = b->chunks, *kept = NULL;

    if (keep && c && c->cap <= ARENA_KEEP) {
        kept = c;
        c = c->next;
        kept->next = NULL;
        kept->used = 0;
    }
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    b->chunks = kept;
}

static void box_free(struct box *b)
{
    if (b->msg) {
        protobuf_c_message_free_unpacked(b->msg, NULL);
        b->msg = NULL;
    }
    arena_reset(b, 0);
}

int tc_message_gc(lua_State *L)
{
    box_free(luaL_checkudata(L, 1, TC_MESSAGE_MT));
    return 0;
}

static struct box *push_box(lua_State *L)
{
    struct box *b = lua_newuserdata(L, sizeof *b);

    b->msg = NULL;
    b->busy = 0;
    b->chunks = NULL;
    luaL_getmetatable(L, TC_MESSAGE_MT);
    lua_setmetatable(L, -2);
    return b;
}

/* ------------------------------------------------------------------------ */
/* Type lookup by full name, e.g. "v3.SeatsRequest" or "v3.Event.TicketSet". */

static const ProtobufCMessageDescriptor *find_in(const ProtobufCMessageDescriptor *d,
                                                 const char *name, int depth)
{
    if (strcmp(d->name, name) == 0)
        return d;
    if (depth >= MAX_DEPTH)
        return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->descriptor == d)
            continue;
        const ProtobufCMessageDescriptor *hit = find_in(f->descriptor, name, depth + 1);
        if (hit)
            return hit;
    }
    return NULL;
}

/* Every message reachable from the tc-simple service: the requests, the
 * streamed messages and everything they contain. */
const ProtobufCMessageDescriptor *tc_codec_find(const char *name)
{
    const ProtobufCServiceDescriptor *s = &v3__simple__descriptor;

    for (unsigned i = 0; i < s->n_methods; i++) {
        const ProtobufCMessageDescriptor *hit = find_in(s->methods[i].input, name, 0);
        if (!hit)
            hit = find_in(s->methods[i].output, name, 0);
        if (hit)
            return hit;
    }
    return NULL;
}

static int is_timestamp(const ProtobufCMessageDescriptor *d)
{
    return d == &google__protobuf__timestamp__descriptor;
}

/* map<K,V> fields are repeated XxxEntry { key = 1; value = 2; } messages. */
static int is_map_entry(const ProtobufCMessageDescriptor *d)
{
    size_t n = strlen(d->short_name);

    return n > 5 && strcmp(d->short_name + n - 5, "Entry") == 0 && d->n_fields == 2 &&
           d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0 &&
           d->fields[1].id == 2 && strcmp(d->fields[1].name, "value") == 0;
}

static void *member(const void *msg, unsigned offset)
{
    return (char *)msg + offset;
}

/* ------------------------------------------------------------------------ */
/* Decoding.                                                                  */

static void push_message(lua_State *L, const ProtobufCMessage *m, int cache);

/* Pushes the names table of message type d and returns its index: the field
 * names at 1..n_fields, made once per Lua state and kept in the cache table
 * at index cache, so that a decoded message's keys are set with lua_rawset
 * instead of being looked up as C strings field after field. The names of
 * enum values go into it too, keyed by their ProtobufCEnumValue, as they
 * are first met. */
static int push_names(lua_State *L, int cache, const ProtobufCMessageDescriptor *d)
{
    lua_pushlightuserdata(L, (void *)d);
    lua_rawget(L, cache);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, d->n_fields > INT32_MAX ? 0 : (int)d->n_fields, 0);
        for (unsigned i = 0; i < d->n_fields; i++) {
            lua_pushstring(L, d->fields[i].name);
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_pushlightuserdata(L, (void *)d);
        lua_pushvalue(L, -2);
        lua_rawset(L, cache);
    }
    return lua_gettop(L);
}

/* Pushes the name of an enum value, kept in the names table at names. */
static void push_enum_name(lua_State *L, int names, const ProtobufCEnumValue *ev)
{
    lua_pushlightuserdata(L, (void *)ev);
    lua_rawget(L, names);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushstring(L, ev->name);
        lua_pushlightuserdata(L, (void *)ev);
        lua_pushvalue(L, -2);
        lua_rawset(L, names);
    }
}

static void push_uint64(lua_State *L, uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, (lua_Number)v);
}

static void push_timestamp(lua_State *L, const Google__Protobuf__Timestamp *t)
{
    if (t->nanos == 0)
        lua_pushinteger(L, (lua_Integer)t->seconds);
    else
        lua_pushnumber(L, (lua_Number)t->seconds + (lua_Number)t->nanos / 1e9);
}

/* Pushes one value of field f stored at p (an element, for repeated fields);
 * names and cache are the indexes of push_names and of the cache table. */
static void push_value(lua_State *L, const ProtobufCFieldDescriptor *f, const void *p, int names,
                       int cache)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        lua_pushinteger(L, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        lua_pushinteger(L, (lua_Integer)*(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        lua_pushinteger(L, (lua_Integer)*(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        push_uint64(L, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        lua_pushnumber(L, *(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        lua_pushnumber(L, *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        lua_pushboolean(L, *(const protobuf_c_boolean *)p);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev)
            push_enum_name(L, names, ev);
        else
            lua_pushinteger(L, v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        lua_pushstring(L, s ? s : "");
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        lua_pushlstring(L, b->data ? (const char *)b->data : "", b->data ? b->len : 0);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (!sub)
            lua_pushnil(L);
        else if (is_timestamp(sub->descriptor))
            push_timestamp(L, (const Google__Protobuf__Timestamp *)sub);
        else
            push_message(L, sub, cache);
        break;
    }
    default:
        lua_pushnil(L);
        break;
    }
}

static size_t element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Pushes a repeated field: a list, or a table keyed by key for map fields. */
static void push_repeated(lua_State *L, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                          int names, int cache)
{
    size_t n = *(const size_t *)member(m, f->quantifier_offset);
    const char *arr = *(char *const *)member(m, f->offset);
    size_t size = element_size(f->type);

    if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor)) {
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        lua_createtable(L, 0, n > INT32_MAX ? 0 : (int)n);
        for (size_t i = 0; i < n; i++) {
            const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[i];
            if (!e)
                continue;
            push_value(L, &ed->fields[0], member(e, ed->fields[0].offset), names,
                       cache); /* map, key */
            push_value(L, &ed->fields[1], member(e, ed->fields[1].offset), names,
                       cache); /* map, key, value */
            lua_rawset(L, -3);
        }
        return;
    }
    lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_value(L, f, arr + i * size, names, cache); /* list, value */
        lua_rawseti(L, -2, (int)(i + 1));
    }
}

/* Whether a singular field has a value to show (see the rules on top). */
static int field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)member(m, f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
        f->type != PROTOBUF_C_TYPE_STRING)
        return *(const protobuf_c_boolean *)member(m, f->quantifier_offset);
    return 1; /* absent messages come out as nil */
}

static void push_message(lua_State *L, const ProtobufCMessage *m, int cache)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    luaL_checkstack(L, 8, "message nested too deeply");
    int names = push_names(L, cache, d); /* names */
    lua_createtable(L, 0, (int)d->n_fields); /* names, table */
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label != PROTOBUF_C_LABEL_REPEATED &&
            (!field_present(m, f) ||
             (f->type == PROTOBUF_C_TYPE_MESSAGE && !*(void *const *)member(m, f->offset))))
            continue; /* absent: nil */
        lua_rawgeti(L, names, (int)i + 1); /* names, table, name */
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            push_repeated(L, m, f, names, cache);
        else
            push_value(L, f, member(m, f->offset), names, cache);
        lua_rawset(L, -3); /* names, table */
    }
    lua_remove(L, names); /* table */
}

static const char CACHE_KEY = 'c';

int tc_codec_decode(lua_State *L, const ProtobufCMessageDescriptor *d, const uint8_t *data,
                    size_t len)
{
    luaL_checkstack(L, 8, "message nested too deeply");
    /* The state's cache table: [1] its box, [descriptor] a names table. */
    lua_pushlightuserdata(L, (void *)&CACHE_KEY);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L); /* cache */
        push_box(L);
        lua_rawseti(L, -2, 1);
        lua_pushlightuserdata(L, (void *)&CACHE_KEY);
        lua_pushvalue(L, -2);
        lua_rawset(L, LUA_REGISTRYINDEX);
    }
    int cache = lua_gettop(L);
    lua_rawgeti(L, cache, 1); /* cache, box */
    struct box *b = lua_touserdata(L, -1);
    if (b->busy) {
        lua_pop(L, 1);
        b = push_box(L); /* cache, a box of its own */
    }
    b->busy = 1;
    ProtobufCAllocator arena = { arena_alloc, arena_free, b };
    const ProtobufCMessage *msg = protobuf_c_message_unpack(d, &arena, len, data);
    if (!msg) {
        arena_reset(b, 1);
        b->busy = 0;
        lua_pop(L, 2);
        return 0;
    }
    if (is_timestamp(d))
        push_timestamp(L, (const Google__Protobuf__Timestamp *)msg);
    else
        push_message(L, msg, cache); /* cache, box, table */
    arena_reset(b, 1);
    b->busy = 0;
    lua_replace(L, cache); /* table, box */
    lua_pop(L, 1);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Encoding.                                                                  */

struct enc {
    lua_State *L;
    char *err;
    size_t errlen;
};

static int fail(struct enc *e, const ProtobufCMessageDescriptor *d, const char *field,
                const char *what)
{
    if (field)
        snprintf(e->err, e->errlen, "%s.%s: %s", d->name, field, what);
    else
        snprintf(e->err, e->errlen, "%s: %s", d->name, what);
    return 0;
}

static int fill_message(struct enc *e, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                        int idx, int depth);

/* Valid UTF-8 without NUL bytes (a proto3 string, storable as a C string). */
static int utf8_ok(const char *s, size_t len)
{
    return memchr(s, '\0', len) == NULL && tc_utf8_len(s, len) != (size_t)-1;
}

/* An integral number within [-2^63, 2^63). Floats with an integral value are
 * accepted (5.0), anything else is not. */
static int get_int64(lua_State *L, int idx, int64_t *out)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    /* A Lua 5.4 integer is taken as it is: through a double, the largest
     * ones would round up to 2^63. On LuaJIT this is an integral double that
     * compat.h has checked to be in range. */
    if (lua_isinteger(L, idx)) {
        *out = (int64_t)lua_tointeger(L, idx);
        return 1;
    }
    lua_Number n = lua_tonumber(L, idx);
    if (!(n >= -TWO_63 && n < TWO_63) || n != floor(n))
        return 0;
    *out = (int64_t)n;
    return 1;
}

static int get_uint64(lua_State *L, int idx, uint64_t *out)
{
    int64_t v;

    if (get_int64(L, idx, &v)) {
        if (v < 0)
            return 0;
        *out = (uint64_t)v;
        return 1;
    }
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    lua_Number n = lua_tonumber(L, idx);
    if (!(n >= TWO_63 && n < TWO_64) || n != floor(n))
        return 0;
    *out = (uint64_t)n;
    return 1;
}

static int set_timestamp(struct enc *e, const ProtobufCFieldDescriptor *f,
                         const ProtobufCMessageDescriptor *owner, Google__Protobuf__Timestamp *t,
                         int idx)
{
    lua_State *L = e->L;
    int64_t s;

    if (get_int64(L, idx, &s)) {
        t->seconds = s;
        return 1;
    }
    lua_Number n = lua_tonumber(L, idx);
    if (!(n > -TWO_62 && n < TWO_62)) /* also NaN */
        return fail(e, owner, f->name, "timestamp out of range");
    lua_Number whole = floor(n);
    int32_t nanos = (int32_t)llround((n - whole) * 1e9);
    if (nanos > 999999999)
        nanos = 999999999;
    t->seconds = (int64_t)whole;
    t->nanos = nanos;
    return 1;
}

static char *copy_bytes(const char *s, size_t len)
{
    char *p = malloc(len + 1);

    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* Stores the Lua value at idx into the slot p of field f (an element, for
 * repeated fields). Whatever it allocates is attached to the tree at once. */
static int set_value(struct enc *e, const ProtobufCMessageDescriptor *owner,
                     const ProtobufCFieldDescriptor *f, void *p, int idx, int depth)
{
    lua_State *L = e->L;
    int64_t i;
    uint64_t u;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!get_int64(L, idx, &i) || i < INT32_MIN || i > INT32_MAX)
            return fail(e, owner, f->name, "expected a 32-bit integer");
        *(int32_t *)p = (int32_t)i;
        return 1;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!get_int64(L, idx, &i) || i < 0 || i > UINT32_MAX)
            return fail(e, owner, f->name, "expected an unsigned 32-bit integer");
        *(uint32_t *)p = (uint32_t)i;
        return 1;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!get_int64(L, idx, &i))
            return fail(e, owner, f->name, "expected a 64-bit integer");
        *(int64_t *)p = i;
        return 1;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!get_uint64(L, idx, &u))
            return fail(e, owner, f->name, "expected an unsigned 64-bit integer");
        *(uint64_t *)p = u;
        return 1;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (lua_type(L, idx) != LUA_TNUMBER)
            return fail(e, owner, f->name, "expected a number");
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)p = (float)lua_tonumber(L, idx);
        else
            *(double *)p = (double)lua_tonumber(L, idx);
        return 1;
    case PROTOBUF_C_TYPE_BOOL:
        if (lua_type(L, idx) != LUA_TBOOLEAN)
            return fail(e, owner, f->name, "expected a boolean");
        *(protobuf_c_boolean *)p = lua_toboolean(L, idx);
        return 1;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (lua_type(L, idx) == LUA_TSTRING) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(ed, lua_tostring(L, idx));
            if (!ev)
                return fail(e, owner, f->name, "not a value of the enum");
            *(int *)p = ev->value;
            return 1;
        }
        if (!get_int64(L, idx, &i) || i < INT32_MIN || i > INT32_MAX)
            return fail(e, owner, f->name, "expected an enum name or number");
        *(int *)p = (int)i;
        return 1;
    }
    case PROTOBUF_C_TYPE_STRING: {
        size_t len;
        if (lua_type(L, idx) != LUA_TSTRING)
            return fail(e, owner, f->name, "expected a string");
        const char *s = lua_tolstring(L, idx, &len);
        if (!utf8_ok(s, len))
            return fail(e, owner, f->name, "not valid UTF-8 text");
        char *copy = copy_bytes(s, len);
        if (!copy)
            return fail(e, owner, f->name, "out of memory");
        *(char **)p = copy;
        return 1;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        size_t len;
        ProtobufCBinaryData *b = p;
        if (lua_type(L, idx) != LUA_TSTRING)
            return fail(e, owner, f->name, "expected a string");
        const char *s = lua_tolstring(L, idx, &len);
        if (len > 0) {
            b->data = (uint8_t *)copy_bytes(s, len);
            if (!b->data)
                return fail(e, owner, f->name, "out of memory");
            b->len = len;
        }
        return 1;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        int t = lua_type(L, idx);
        if (!(t == LUA_TTABLE || (t == LUA_TNUMBER && is_timestamp(sd))))
            return fail(e, owner, f->name,
                        is_timestamp(sd) ? "expected Unix seconds" : "expected a table");
        ProtobufCMessage *sub = malloc(sd->sizeof_message);
        if (!sub)
            return fail(e, owner, f->name, "out of memory");
        protobuf_c_message_init(sd, sub);
        *(ProtobufCMessage **)p = sub;
        if (t == LUA_TNUMBER)
            return set_timestamp(e, f, owner, (Google__Protobuf__Timestamp *)sub, idx);
        return fill_message(e, sd, sub, idx, depth + 1);
    }
    }
    return fail(e, owner, f->name, "unsupported field type");
}

static int set_map(struct enc *e, const ProtobufCMessageDescriptor *owner, ProtobufCMessage *m,
                   const ProtobufCFieldDescriptor *f, int idx, int depth)
{
    lua_State *L = e->L;
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    size_t n = 0, *count = member(m, f->quantifier_offset);
    ProtobufCMessage **arr;

    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
        n++;
    if (n == 0)
        return 1;
    arr = calloc(n, sizeof *arr);
    if (!arr)
        return fail(e, owner, f->name, "out of memory");
    *(ProtobufCMessage ***)member(m, f->offset) = arr;
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* key, value */
        ProtobufCMessage *entry = malloc(ed->sizeof_message);
        if (!entry) {
            lua_pop(L, 2);
            return fail(e, owner, f->name, "out of memory");
        }
        protobuf_c_message_init(ed, entry);
        arr[(*count)++] = entry;
        if (!set_value(e, owner, &ed->fields[0], member(entry, ed->fields[0].offset), -2, depth) ||
            !set_value(e, owner, &ed->fields[1], member(entry, ed->fields[1].offset), -1, depth)) {
            lua_pop(L, 2);
            return 0;
        }
        lua_pop(L, 1); /* key */
    }
    return 1;
}

static int set_repeated(struct enc *e, const ProtobufCMessageDescriptor *owner,
                        ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, int idx, int depth)
{
    lua_State *L = e->L;
    size_t n, keys = 0, size = element_size(f->type);
    size_t *count = member(m, f->quantifier_offset);
    char *arr;

    if (!lua_istable(L, idx))
        return fail(e, owner, f->name, "expected a list");
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor))
        return set_map(e, owner, m, f, idx, depth);
    n = lua_rawlen(L, idx);
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
        keys++;
    if (keys != n)
        return fail(e, owner, f->name, "expected a list");
    if (n == 0)
        return 1;
    arr = calloc(n, size);
    if (!arr)
        return fail(e, owner, f->name, "out of memory");
    *(char **)member(m, f->offset) = arr;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (int)(i + 1)); /* element */
        int ok = set_value(e, owner, f, arr + i * size, -1, depth);
        lua_pop(L, 1);
        *count = i + 1; /* what is in the array is owned by the message now */
        if (!ok)
            return 0;
    }
    return 1;
}

/* Fills message m of type d from the table at idx. */
static int fill_message(struct enc *e, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                        int idx, int depth)
{
    lua_State *L = e->L;

    if (depth > MAX_DEPTH)
        return fail(e, d, NULL, "nested too deeply");
    if (!lua_checkstack(L, 8))
        return fail(e, d, NULL, "nested too deeply");
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* key, value */
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            return fail(e, d, NULL, "field names must be strings");
        }
        const char *name = lua_tostring(L, -2);
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
        if (!f) {
            fail(e, d, name, "no such field");
            lua_pop(L, 2);
            return 0;
        }
        int ok;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            ok = set_repeated(e, d, m, f, lua_gettop(L), depth);
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                uint32_t *which = member(m, f->quantifier_offset);
                if (*which != 0 && *which != f->id) {
                    const ProtobufCFieldDescriptor *other =
                        protobuf_c_message_descriptor_get_field(d, *which);
                    char what[160];
                    snprintf(what, sizeof what, "only one of '%s' and '%s' may be set", f->name,
                             other ? other->name : "?");
                    fail(e, d, NULL, what);
                    lua_pop(L, 2);
                    return 0;
                }
                *which = f->id;
            } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                       f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
                *(protobuf_c_boolean *)member(m, f->quantifier_offset) = 1;
            }
            ok = set_value(e, d, f, member(m, f->offset), lua_gettop(L), depth);
        }
        if (!ok) {
            lua_pop(L, 2);
            return 0;
        }
        lua_pop(L, 1); /* key */
    }
    return 1;
}

int tc_codec_encode(lua_State *L, int idx, const ProtobufCMessageDescriptor *d, char *err,
                    size_t errlen)
{
    struct enc e = { L, err, errlen };
    struct box *b;

    idx = lua_absindex(L, idx);
    b = push_box(L); /* box */
    b->msg = malloc(d->sizeof_message);
    if (!b->msg) {
        lua_pop(L, 1);
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    protobuf_c_message_init(d, b->msg);
    if (!fill_message(&e, d, b->msg, idx, 0)) {
        box_free(b);
        lua_pop(L, 1);
        return 0;
    }
    size_t len = protobuf_c_message_get_packed_size(b->msg);
    uint8_t *buf = lua_newuserdata(L, len ? len : 1); /* box, buffer */
    protobuf_c_message_pack(b->msg, buf);
    lua_pushlstring(L, (const char *)buf, len); /* box, buffer, bytes */
    box_free(b);
    lua_replace(L, -3); /* bytes, buffer */
    lua_pop(L, 1);      /* bytes */
    return 1;
}

/* ------------------------------------------------------------------------ */
/* core.encode / core.decode                                                  */

/* The message type named by argument arg. Names already seen are looked up
 * in the cache table of upvalue 1 (name -> descriptor) instead of walking
 * every type of the service again. */
static const ProtobufCMessageDescriptor *check_type(lua_State *L, int arg)
{
    const char *name = luaL_checkstring(L, arg);
    const ProtobufCMessageDescriptor *d;

    lua_pushvalue(L, arg);
    lua_rawget(L, lua_upvalueindex(1)); /* descriptor or nil */
    d = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (d)
        return d;
    d = tc_codec_find(name);
    if (!d)
        luaL_argerror(L, arg, lua_pushfstring(L, "unknown message type '%s'", name));
    lua_pushvalue(L, arg);
    lua_pushlightuserdata(L, (void *)d);
    lua_rawset(L, lua_upvalueindex(1));
    return d;
}

/***
 * The C core, `require "ticketscloud.core"`. Its public part is the tc-simple message
 * conversion below, without I/O, for another transport (OpenResty cosockets speaking gRPC
 * framing themselves, a message store); `core.money` is `tc.money`. The rest of the core is
 * the module's own (docs/architecture.md): use it through `ticketscloud`.
 *
 * Messages are plain tables as the catalogue streams give them (docs/catalogue-client.md,
 * "Messages"): proto field names, enums by name, Timestamps as Unix seconds.
 * @module ticketscloud.core
 */

/***
 * Encodes a table as a tc-simple protobuf message (the bytes, without gRPC's 5-byte frame).
 * @function encode
 * @tparam string type the full proto name: `"v3.SeatsRequest"`, `"v3.Event.TicketSet"`
 * @tparam table message the message
 * @treturn string the encoded bytes
 * @return[2] nil
 * @treturn[2] ticketscloud.Error err, kind `"invalid"`: data that does not fit the message (an
 *   unknown field or enum name, a value of the wrong type, two members of one oneof)
 * @raise for an unknown type name, or when `message` is not a table
 * @usage
 * local core = require "ticketscloud.core"
 * local bytes = assert(core.encode("v3.SeatsRequest", { event = EVENT, status = "VACANT" }))
 */
/* core.encode(type_name, table) -> bytes | nil, err */
int core_encode(lua_State *L)
{
    const ProtobufCMessageDescriptor *d = check_type(L, 1);
    char err[256];

    luaL_checktype(L, 2, LUA_TTABLE);
    if (!tc_codec_encode(L, 2, d, err, sizeof err))
        return tc_fail(L, TC_EINVALID, -1, "%s", err);
    return 1;
}

/***
 * Decodes one tc-simple protobuf message (without gRPC's 5-byte frame) into a plain table, as
 * a catalogue stream does: every scalar field carries its proto3 default when it was not
 * transmitted.
 * @function decode
 * @tparam string type the full proto name: `"v3.Seat"`
 * @tparam string bytes the encoded message
 * @treturn table the message
 * @return[2] nil
 * @treturn[2] ticketscloud.Error err, kind `"invalid"`: `malformed v3.Seat message`
 * @raise for an unknown type name, or when `bytes` is not a string
 * @usage
 * local seat = assert(core.decode("v3.Seat", payload))
 * print(seat.ticket, seat.status)   -- "VACANT" when the status was not sent
 */
/* core.decode(type_name, bytes) -> table | nil, err */
int core_decode(lua_State *L)
{
    const ProtobufCMessageDescriptor *d = check_type(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);

    if (!tc_codec_decode(L, d, (const uint8_t *)data, len))
        return tc_fail(L, TC_EINVALID, -1, "malformed %s message", d->name);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Packed listings                                                            */

size_t tc_codec_put_length(uint8_t *out, size_t len)
{
    size_t n = 0;

    do {
        uint8_t byte = (uint8_t)(len & 0x7f);
        len >>= 7;
        out[n++] = (uint8_t)(byte | (len ? 0x80 : 0));
    } while (len);
    return n;
}

/* core.decode_at(type_name, listing, pos) -> message, next_pos | nil | nil, err
 * The message whose length starts at byte pos (1-based) of a packed listing,
 * and where the next one starts; nil when pos is past the end. A length
 * that runs past the end, or bytes that are not a message, is kind
 * "invalid". */
int core_decode_at(lua_State *L)
{
    const ProtobufCMessageDescriptor *d = check_type(L, 1);
    size_t len, at;
    const uint8_t *data = (const uint8_t *)luaL_checklstring(L, 2, &len);
    lua_Integer pos = luaL_checkinteger(L, 3);
    uint64_t size = 0;

    luaL_argcheck(L, pos >= 1, 3, "a position >= 1 expected");
    if ((uint64_t)(pos - 1) >= len) {
        lua_pushnil(L);
        return 1;
    }
    at = (size_t)(pos - 1);
    for (int shift = 0;; shift += 7) {
        if (at >= len || shift >= 64)
            return tc_fail(L, TC_EINVALID, -1, "truncated %s listing at byte %d", d->name,
                           (int)pos);
        uint8_t byte = data[at++];
        size |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            break;
    }
    if (size > len - at)
        return tc_fail(L, TC_EINVALID, -1, "truncated %s listing at byte %d", d->name, (int)pos);
    if (!tc_codec_decode(L, d, data + at, (size_t)size))
        return tc_fail(L, TC_EINVALID, -1, "malformed %s message at byte %d", d->name, (int)pos);
    lua_pushinteger(L, (lua_Integer)(at + size + 1));
    return 2;
}
