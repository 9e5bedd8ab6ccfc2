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
 * Decoding reads the wire format straight into the tables (see "Decoding");
 * encoding fills a protobuf-c message and packs it. Memory: a message being
 * built hangs from a small "box" userdata whose __gc frees it, so a Lua
 * memory error in the middle leaks nothing (see "The box" below).
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
/* The box: owner of a protobuf-c message tree being built from a table, so  */
/* that it is freed if Lua raises midway (out of memory, or an error of the  */
/* caller's metamethods while the tables are read). Decoding needs none: it  */
/* makes nothing but Lua values.                                              */

struct box {
    ProtobufCMessage *msg; /* malloc'd tree, freed with free_unpacked */
};

static void box_free(struct box *b)
{
    if (b->msg) {
        protobuf_c_message_free_unpacked(b->msg, NULL);
        b->msg = NULL;
    }
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
/* Names and defaults, made once per message type and Lua state.              */

/* lua_rawget, and the type of what it pushed (LuaJIT's returns nothing). */
static int rawget_type(lua_State *L, int t)
{
    lua_rawget(L, t);
    return lua_type(L, -1);
}

/* Whether an absent singular field of this kind reads as its default: it
 * has no presence of its own (no oneof, no proto2 `optional` number) and is
 * not a message (an absent message reads as nil). */
static int has_default(const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
        f->type == PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    return f->label != PROTOBUF_C_LABEL_OPTIONAL || f->type == PROTOBUF_C_TYPE_STRING;
}

/* Pushes the name of an enum value, kept in the names table at names. */
static void push_enum_name(lua_State *L, int names, const ProtobufCEnumValue *ev)
{
    lua_pushlightuserdata(L, (void *)ev);
    if (rawget_type(L, names) == LUA_TNIL) {
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

/* Pushes the value of a scalar field f stored at p in a protobuf-c message
 * (an element, for repeated fields); names is the index of a names table. */
static void push_stored(lua_State *L, const ProtobufCFieldDescriptor *f, const void *p, int names)
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
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        if (ev)
            push_enum_name(L, names, ev);
        else
            lua_pushinteger(L, *(const int *)p);
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
    default:
        lua_pushnil(L);
        break;
    }
}

/* The size of one element of a repeated field of this type in protobuf-c. */
static size_t element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
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
    default:
        return 4; /* the 32-bit numbers and float */
    }
}

/* Pushes the names table of message type d and returns its index: the field
 * names at 1..n_fields; at n_fields + i, the default of field i where it
 * has one (has_default): the value protobuf-c's initialiser gives it; at
 * 2 * n_fields + i, the last string decoded for field i (read_value). Made
 * once per Lua state and kept in its registry, keyed by the descriptor's
 * address (one lookup per message), so that a decoded message's keys are
 * Lua strings already, set with lua_rawset. The names of enum values go
 * into it too, keyed by their ProtobufCEnumValue, as they are first met. */
static int push_names(lua_State *L, const ProtobufCMessageDescriptor *d)
{
    int n = d->n_fields > INT32_MAX / 3 ? 0 : (int)d->n_fields;

    lua_pushlightuserdata(L, (void *)d);
    if (rawget_type(L, LUA_REGISTRYINDEX) != LUA_TNIL)
        return lua_gettop(L);
    lua_pop(L, 1);
    lua_createtable(L, 3 * n, 0);
    int names = lua_gettop(L);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, d->fields[i].name);
        lua_rawseti(L, names, i + 1);
    }
    void *init = lua_newuserdata(L, d->sizeof_message);
    protobuf_c_message_init(d, init);
    for (int i = 0; i < n; i++) {
        if (!has_default(&d->fields[i]))
            continue;
        push_stored(L, &d->fields[i], member(init, d->fields[i].offset), names);
        lua_rawseti(L, names, n + i + 1);
    }
    lua_pop(L, 1); /* init */
    lua_pushlightuserdata(L, (void *)d);
    lua_pushvalue(L, names);
    lua_rawset(L, LUA_REGISTRYINDEX);
    return names;
}

/* ------------------------------------------------------------------------ */
/*
 * Decoding: the wire format read straight into Lua tables, the descriptors
 * giving names and types (no protobuf-c message in between, as lua-protobuf
 * decodes). It reads what protobuf-c's unpack reads and refuses what it
 * refuses: a value cut short, a known field with the wrong wire type (a bool
 * takes any), a group, a key or a length of over 5 bytes, a first key byte
 * of field number 0. Unknown fields are skipped. Of a singular field sent
 * twice the last value counts, a message field sent twice is merged (a oneof
 * member is replaced), and a repeated number field may come packed or not.
 * Strings keep every byte, a NUL too. The ASan build decodes every message
 * with protobuf-c as well and aborts if the two differ ("The check", below).
 */

enum { WIRE_VARINT = 0, WIRE_64BIT = 1, WIRE_LEN = 2, WIRE_32BIT = 5 };

/* Fields past this index are not in a decoding's bitmap of fields seen. */
#define SEEN_BITS 256

/* The string values kept as their field's last (push_string): from
 * LAST_MIN to LAST_MAX bytes. */
#define LAST_MIN 8
#define LAST_MAX 64
/* The messages of a stream that go without that comparison after a change
 * of their field's value (push_string). */
#define SKIP_AFTER_CHANGE 16

struct wire {
    const uint8_t *p, *end;
};

/* A varint of at most max bytes: 10 for a value, 5 for a key or a length,
 * as protobuf-c reads them. */
static int wire_varint_max(struct wire *w, uint64_t *out, int max)
{
    uint64_t v = 0;

    for (int i = 0; i < max && w->p < w->end; i++) {
        uint8_t byte = *w->p++;
        v |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0; /* cut short, or too long */
}

/* A value's varint; one byte (small numbers) without the loop. */
static inline int wire_varint(struct wire *w, uint64_t *out)
{
    if (w->p < w->end && *w->p < 0x80) {
        *out = *w->p++;
        return 1;
    }
    return wire_varint_max(w, out, 10);
}

/* A field's key (its number << 3 | its wire type), taken as protobuf-c
 * takes one: at most 5 bytes, and a first byte without number bits or a
 * next byte (number 0) is refused. A longer key of number 0 is an unknown
 * field. */
static inline int wire_key(struct wire *w, uint64_t *key)
{
    if (w->p >= w->end || (*w->p & 0xf8) == 0)
        return 0;
    if (*w->p < 0x80) {
        *key = *w->p++;
        return 1;
    }
    return wire_varint_max(w, key, 5);
}

/* A little-endian fixed32 (n = 4) or fixed64 (n = 8). */
static int wire_fixed(struct wire *w, int n, uint64_t *out)
{
    uint64_t v = 0;

    if (w->end - w->p < n)
        return 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | w->p[i];
    w->p += n;
    *out = v;
    return 1;
}

/* A length-delimited value: len bytes at *data. The length takes at most 5
 * bytes, as in protobuf-c. */
static inline int wire_bytes(struct wire *w, const uint8_t **data, size_t *len)
{
    uint64_t n;

    if (w->p < w->end && *w->p < 0x80)
        n = *w->p++;
    else if (!wire_varint_max(w, &n, 5))
        return 0;
    if (n > (uint64_t)(w->end - w->p))
        return 0;
    *data = w->p;
    *len = (size_t)n;
    w->p += n;
    return 1;
}

/* A number of field f of wire type type (varint, 32 or 64 bits). A bool
 * is read as protobuf-c reads one, of any wire type: true (1) when any bit
 * of its bytes is, even past the 64th of a varint or in a length. */
static int wire_number(struct wire *w, int type, const ProtobufCFieldDescriptor *f, uint64_t *v)
{
    const uint8_t *start = w->p, *data;
    size_t len;
    int ok;

    if (type == WIRE_VARINT)
        ok = wire_varint(w, v);
    else if (type == WIRE_LEN) /* a bool's only */
        ok = wire_bytes(w, &data, &len);
    else
        ok = wire_fixed(w, type == WIRE_32BIT ? 4 : 8, v);
    if (ok && f->type == PROTOBUF_C_TYPE_BOOL) {
        *v = 0;
        while (start < w->p)
            *v |= *start++ & 0x7f;
    }
    return ok;
}

/* Steps over a value of an unknown field. Groups (wire types 3 and 4) and the
 * undefined types 6 and 7 are refused, as protobuf-c refuses them. */
static int wire_skip(struct wire *w, int type)
{
    uint64_t v;
    const uint8_t *data;
    size_t len;

    switch (type) {
    case WIRE_VARINT:
        return wire_varint(w, &v);
    case WIRE_64BIT:
        return wire_fixed(w, 8, &v);
    case WIRE_LEN:
        return wire_bytes(w, &data, &len);
    case WIRE_32BIT:
        return wire_fixed(w, 4, &v);
    }
    return 0;
}

static int wire_type_of(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return WIRE_32BIT;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return WIRE_64BIT;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return WIRE_LEN;
    default:
        return WIRE_VARINT;
    }
}

/* The index of field number id in d->fields (sorted by number), or -1. Fields
 * come in order of their numbers as a rule, so *hint, the index after the
 * last one found, is tried first, then the last one itself (a repeated
 * field's next element). */
static int find_field(const ProtobufCMessageDescriptor *d, uint64_t id, unsigned *hint)
{
    unsigned lo = 0, hi = d->n_fields, i = *hint;

    if (i < hi && d->fields[i].id == id) {
        *hint = i + 1;
        return (int)i;
    }
    if (i > 0 && i <= hi && d->fields[i - 1].id == id)
        return (int)i - 1;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (d->fields[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < d->n_fields && d->fields[lo].id == id) {
        *hint = lo + 1;
        return (int)lo;
    }
    return -1;
}

static void push_enum(lua_State *L, const ProtobufCFieldDescriptor *f, int v, int names)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);

    if (ev)
        push_enum_name(L, names, ev);
    else
        lua_pushinteger(L, v);
}

/* Pushes a number, bool or enum of field f from its wire value v, converted
 * as protobuf-c converts it (int32 and enums keep the low 32 bits). */
static void push_wire_number(lua_State *L, const ProtobufCFieldDescriptor *f, uint64_t v,
                             int names)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        lua_pushinteger(L, (int32_t)(uint32_t)v);
        break;
    case PROTOBUF_C_TYPE_SINT32: {
        uint32_t u = (uint32_t)v;
        lua_pushinteger(L, (int32_t)((u >> 1) ^ (0u - (u & 1))));
        break;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        lua_pushinteger(L, (lua_Integer)(uint32_t)v);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        lua_pushinteger(L, (lua_Integer)(int64_t)v);
        break;
    case PROTOBUF_C_TYPE_SINT64:
        lua_pushinteger(L, (lua_Integer)(int64_t)((v >> 1) ^ (0u - (v & 1))));
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        push_uint64(L, v);
        break;
    case PROTOBUF_C_TYPE_FLOAT: {
        uint32_t u = (uint32_t)v;
        float x;
        memcpy(&x, &u, sizeof x);
        lua_pushnumber(L, x);
        break;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double x;
        memcpy(&x, &v, sizeof x);
        lua_pushnumber(L, x);
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        lua_pushboolean(L, v != 0);
        break;
    case PROTOBUF_C_TYPE_ENUM:
        push_enum(L, f, (int32_t)(uint32_t)v, names);
        break;
    default:
        lua_pushnil(L);
        break;
    }
}

/* Pushes a google.protobuf.Timestamp read from its bytes (push_timestamp). */
static int read_timestamp(lua_State *L, const uint8_t *data, size_t len)
{
    struct wire w = { data, data + len };
    Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    uint64_t key, v;

    while (w.p < w.end) {
        if (!wire_key(&w, &key))
            return 0;
        if (key >> 3 == 1 || key >> 3 == 2) {
            if ((key & 7) != WIRE_VARINT || !wire_varint(&w, &v))
                return 0;
            if (key >> 3 == 1)
                t.seconds = (int64_t)v;
            else
                t.nanos = (int32_t)(uint32_t)v;
        } else if (!wire_skip(&w, (int)(key & 7))) {
            return 0;
        }
    }
    push_timestamp(L, &t);
    return 1;
}

static int fill_table(lua_State *L, const ProtobufCMessageDescriptor *d, const uint8_t *data,
                      size_t len, int t, int fresh, int depth, int names, struct tc_decoder *dec);

/* Pushes a string or bytes value. That of a singular field is first
 * compared with the field's last value, kept in the names table at slot (0:
 * none): in a listing, fields such as a seat's event, set and sector repeat
 * from one message to the next, and the Lua string is then reused rather
 * than hashed and interned again. A string under LAST_MIN bytes (a row, a
 * seat number) costs Lua less to intern than the comparison. In a stream,
 * skip (its count for the field, or NULL) spares the comparison to a field
 * that has just changed, such as a seat's ticket id, which changes every
 * time: SKIP_AFTER_CHANGE messages go without it. */
static inline void push_string(lua_State *L, const uint8_t *data, size_t len, int names,
                               int slot, unsigned char *skip)
{
    if (slot && len >= LAST_MIN && len <= LAST_MAX) {
        if (skip && *skip) {
            --*skip;
            lua_pushlstring(L, (const char *)data, len);
            return;
        }
        size_t last_len;
        lua_rawgeti(L, names, slot);
        const char *last = lua_tolstring(L, -1, &last_len);
        if (last && last_len == len && memcmp(last, data, len) == 0)
            return;
        lua_pop(L, 1);
        lua_pushlstring(L, (const char *)data, len);
        lua_pushvalue(L, -1);
        lua_rawseti(L, names, slot);
        if (skip)
            *skip = SKIP_AFTER_CHANGE;
        return;
    }
    lua_pushlstring(L, (const char *)data, len);
}

/* Pushes one value of the singular or repeated field f, of wire type type,
 * read from w: a number, a string (push_string, with slot), or a new table
 * for a message. */
static int read_value(lua_State *L, const ProtobufCFieldDescriptor *f, int type, struct wire *w,
                      int names, int slot, int depth)
{
    const uint8_t *data;
    size_t len;
    uint64_t v;
    /* A bool takes any wire type but a group's (wire_number); the rest their own. */
    int is_bool = f->type == PROTOBUF_C_TYPE_BOOL;
    int known = type == WIRE_VARINT || type == WIRE_64BIT || type == WIRE_LEN || type == WIRE_32BIT;

    if (is_bool ? !known : type != wire_type_of(f->type))
        return 0;
    if (type != WIRE_LEN || is_bool) {
        if (!wire_number(w, type, f, &v))
            return 0;
        push_wire_number(L, f, v, names);
        return 1;
    }
    if (!wire_bytes(w, &data, &len))
        return 0;
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
        push_string(L, data, len, names, slot, NULL);
        return 1;
    }
    if (is_timestamp(f->descriptor))
        return read_timestamp(L, data, len);
    const ProtobufCMessageDescriptor *md = f->descriptor;
    lua_createtable(L, 0, (int)md->n_fields);
    return fill_table(L, md, data, len, lua_gettop(L), 1, depth + 1, 0, NULL);
}

/* Reads one entry of a map field into the table at map: its key and value
 * take their defaults when not sent; an entry whose message value was not
 * sent adds nothing. */
static int read_entry(lua_State *L, const ProtobufCMessageDescriptor *ed, struct wire *w, int map,
                      int names, int depth)
{
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    const uint8_t *data;
    size_t len;
    uint64_t key;

    if (!wire_bytes(w, &data, &len))
        return 0;
    struct wire e = { data, data + len };
    int top = lua_gettop(L);
    int entry_names = push_names(L, ed);
    lua_rawgeti(L, entry_names, 2 + 1); /* the key's default */
    lua_rawgeti(L, entry_names, 2 + 2); /* the value's: nil for a message */
    while (e.p < e.end) {
        if (!wire_key(&e, &key))
            return 0;
        int which = key >> 3 == 1 ? 0 : key >> 3 == 2 ? 1 : -1;
        if (which < 0) {
            if (!wire_skip(&e, (int)(key & 7)))
                return 0;
            continue;
        }
        if (!read_value(L, which ? vf : kf, (int)(key & 7), &e, names, 0, depth))
            return 0;
        lua_replace(L, top + 2 + which);
    }
    if (!lua_isnil(L, top + 3))
        lua_rawset(L, map);
    lua_settop(L, top);
    return 1;
}

/* Clears the members of field i's oneof other than i. */
static void clear_oneof(lua_State *L, const ProtobufCMessageDescriptor *d, unsigned i, int t,
                        int names)
{
    for (unsigned j = 0; j < d->n_fields; j++) {
        const ProtobufCFieldDescriptor *g = &d->fields[j];
        if (j == i || !(g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
            g->quantifier_offset != d->fields[i].quantifier_offset)
            continue;
        lua_rawgeti(L, names, (int)j + 1);
        lua_pushvalue(L, -1);
        if (rawget_type(L, t) == LUA_TNIL) {
            lua_pop(L, 2);
            continue;
        }
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawset(L, t);
    }
}

/* Reads a value of field i of d (all of them, for a packed repeated field)
 * into the table at t. */
static int read_field(lua_State *L, const ProtobufCMessageDescriptor *d, unsigned i, int type,
                      struct wire *w, int t, int names, int depth)
{
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const uint8_t *data;
    size_t len;

    lua_rawgeti(L, names, (int)i + 1); /* name */
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        int want = wire_type_of(f->type);
        lua_pushvalue(L, -1);
        if (rawget_type(L, t) != LUA_TTABLE) { /* name, nil */
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, t); /* name, list */
        }
        int list = lua_gettop(L);
        size_t n = lua_rawlen(L, list);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && type == WIRE_LEN &&
            is_map_entry(f->descriptor)) {
            if (!read_entry(L, f->descriptor, w, list, names, depth))
                return 0;
        } else if (type == WIRE_LEN && want != WIRE_LEN) { /* packed */
            if (!wire_bytes(w, &data, &len))
                return 0;
            struct wire p = { data, data + len };
            while (p.p < p.end) {
                uint64_t v;
                if (!wire_number(&p, want, f, &v))
                    return 0;
                push_wire_number(L, f, v, names);
                lua_rawseti(L, list, (lua_Integer)++n);
            }
        } else {
            if (!read_value(L, f, type, w, names, 0, depth))
                return 0;
            lua_rawseti(L, list, (lua_Integer)n + 1);
        }
        lua_pop(L, 2);
        return 1;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        clear_oneof(L, d, i, t, names);
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE && type == WIRE_LEN &&
               !is_timestamp(f->descriptor)) {
        lua_pushvalue(L, -1);
        if (rawget_type(L, t) == LUA_TTABLE) { /* name, the message sent before */
            if (!wire_bytes(w, &data, &len) ||
                !fill_table(L, f->descriptor, data, len, lua_gettop(L), 0, depth + 1, 0, NULL))
                return 0;
            lua_pop(L, 2);
            return 1;
        }
        lua_pop(L, 1);
    }
    if (!read_value(L, f, type, w, names, 2 * (int)d->n_fields + (int)i + 1, depth)) /* name, value */
        return 0;
    lua_rawset(L, t);
    return 1;
}

/* Whether a fresh message gets field f when it is not sent: its default, or
 * an empty list for a repeated field. */
static int gets_default(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_REPEATED || has_default(f);
}

/* Whether field f, sent with wire type type, takes fill_table's string
 * path: a singular string or bytes field outside a oneof. */
static int is_plain_string(const ProtobufCFieldDescriptor *f, int type)
{
    return type == WIRE_LEN && f->label != PROTOBUF_C_LABEL_REPEATED &&
           !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES);
}

/* A stream's decoder reads its message type once: the index of each field
 * number under TC_DECODER_IDS, and the fields of the string path and those
 * with a default as bitmaps, for a message of up to TC_DECODER_FIELDS
 * fields. */
static void plan(struct tc_decoder *dec, const ProtobufCMessageDescriptor *d)
{
    dec->planned = -1;
    if (d->n_fields > TC_DECODER_FIELDS)
        return;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (d->fields[i].id < TC_DECODER_IDS)
            dec->field_of[d->fields[i].id] = (unsigned char)(i + 1);
        if (is_plain_string(&d->fields[i], WIRE_LEN))
            dec->strings |= (uint32_t)1 << i;
        if (gets_default(&d->fields[i]))
            dec->defaults |= (uint32_t)1 << i;
    }
    dec->planned = 1;
}

/* Sets field i of a fresh message at t, not sent, to its default (names
 * table, n_fields + i), or to an empty list for a repeated field. */
static void fill_default(lua_State *L, const ProtobufCMessageDescriptor *d, int t, int names,
                         int i)
{
    lua_rawgeti(L, names, i + 1); /* name */
    if (d->fields[i].label == PROTOBUF_C_LABEL_REPEATED)
        lua_newtable(L);
    else
        lua_rawgeti(L, names, (int)d->n_fields + i + 1);
    lua_rawset(L, t);
}

/* After a fresh message's fields: fill_default for each of those not sent.
 * A field past SEEN_BITS is looked up in the table. */
static void fill_defaults(lua_State *L, const ProtobufCMessageDescriptor *d, int t, int names,
                          const uint64_t *seen)
{
    int n = (int)d->n_fields;

    for (int i = 0; i < n; i++) {
        if (!gets_default(&d->fields[i]))
            continue; /* nil when absent */
        if (i < SEEN_BITS) {
            if (seen[i >> 6] >> (i & 63) & 1)
                continue; /* sent */
        } else {
            lua_rawgeti(L, names, i + 1);
            int sent = rawget_type(L, t) != LUA_TNIL;
            lua_pop(L, 1);
            if (sent)
                continue;
        }
        fill_default(L, d, t, names, i);
    }
}

/* Reads the fields of message d from data into the table at t: a new table
 * (fresh), or one decoded before that the bytes are merged into. names is
 * the stack index of d's names table, or 0 to look it up; dec, a stream's
 * state for d, or NULL. */
static int fill_table(lua_State *L, const ProtobufCMessageDescriptor *d, const uint8_t *data,
                      size_t len, int t, int fresh, int depth, int names, struct tc_decoder *dec)
{
    struct wire w = { data, data + len };
    uint64_t seen[SEEN_BITS / 64] = { 0 };
    unsigned hint = 0;
    uint64_t key;

    if (depth > MAX_DEPTH)
        return 0;
    if (depth > 0) /* tc_codec_decode made room for the outermost */
        luaL_checkstack(L, 12, "message nested too deeply");
    if (dec && !dec->planned)
        plan(dec, d);
    int planned = dec && dec->planned > 0;
    int own_names = names == 0;
    if (own_names)
        names = push_names(L, d);
    while (w.p < w.end) {
        if (!wire_key(&w, &key))
            return 0;
        int i = planned && key >> 3 < TC_DECODER_IDS ? dec->field_of[key >> 3] - 1
                                                     : find_field(d, key >> 3, &hint);
        if (i < 0) {
            if (!wire_skip(&w, (int)(key & 7)))
                return 0;
            continue;
        }
        if (i < SEEN_BITS)
            seen[i >> 6] |= (uint64_t)1 << (i & 63);
        if (planned ? (key & 7) == WIRE_LEN && (dec->strings >> i & 1)
                    : is_plain_string(&d->fields[i], (int)(key & 7))) {
            /* The common case, inline: a string field (read_field, read_value). */
            const uint8_t *value;
            size_t value_len;
            if (!wire_bytes(&w, &value, &value_len))
                return 0;
            lua_rawgeti(L, names, i + 1);
            push_string(L, value, value_len, names, 2 * (int)d->n_fields + i + 1,
                        planned ? &dec->skip[i] : NULL);
            lua_rawset(L, t);
            continue;
        }
        if (!read_field(L, d, (unsigned)i, (int)(key & 7), &w, t, names, depth))
            return 0;
    }
    if (fresh && planned) {
        for (uint32_t missing = dec->defaults & ~(uint32_t)seen[0]; missing;
             missing &= missing - 1)
            fill_default(L, d, t, names, __builtin_ctz(missing));
    } else if (fresh) {
        fill_defaults(L, d, t, names, seen);
    }
    if (own_names)
        lua_pop(L, 1);
    return 1;
}

#ifdef TC_CHECK_DECODE
static void check_decode(lua_State *L, const ProtobufCMessageDescriptor *d, const uint8_t *data,
                         size_t len, int got);
#endif

int tc_codec_names(lua_State *L, const ProtobufCMessageDescriptor *d)
{
    return push_names(L, d);
}

int tc_codec_decode(lua_State *L, const ProtobufCMessageDescriptor *d, const uint8_t *data,
                    size_t len, int names, struct tc_decoder *dec)
{
    int base = lua_gettop(L), ok;

    luaL_checkstack(L, 12, "message nested too deeply");
    if (is_timestamp(d)) {
        ok = read_timestamp(L, data, len);
    } else {
        lua_createtable(L, 0, (int)d->n_fields);
        ok = fill_table(L, d, data, len, base + 1, 1, 0, names, dec);
    }
#ifdef TC_CHECK_DECODE
    check_decode(L, d, data, len, ok ? base + 1 : 0);
#endif
    if (!ok) {
        lua_settop(L, base);
        return 0;
    }
    return 1;
}

#ifdef TC_CHECK_DECODE
/* ------------------------------------------------------------------------ */
/* The check (ASan build, -DTC_CHECK_DECODE): each message decoded above is  */
/* unpacked by protobuf-c too, made into a table from protobuf-c's structs,  */
/* and compared with the decoded one; a difference, or one refusing what the */
/* other reads, aborts. Every spec run in that build checks the decoder so.  */

static void ref_message(lua_State *L, const ProtobufCMessage *m);

static void ref_value(lua_State *L, const ProtobufCFieldDescriptor *f, const void *p, int names)
{
    const ProtobufCMessage *sub;

    if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
        push_stored(L, f, p, names);
        return;
    }
    sub = *(ProtobufCMessage *const *)p;
    if (!sub)
        lua_pushnil(L);
    else if (is_timestamp(sub->descriptor))
        push_timestamp(L, (const Google__Protobuf__Timestamp *)sub);
    else
        ref_message(L, sub);
}

static void ref_repeated(lua_State *L, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                         int names)
{
    size_t n = *(const size_t *)member(m, f->quantifier_offset);
    const char *arr = *(char *const *)member(m, f->offset);

    lua_newtable(L);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor)) {
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        for (size_t i = 0; i < n; i++) {
            const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[i];
            ref_value(L, &ed->fields[0], member(e, ed->fields[0].offset), names);
            ref_value(L, &ed->fields[1], member(e, ed->fields[1].offset), names);
            lua_rawset(L, -3);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ref_value(L, f, arr + i * element_size(f->type), names);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static void ref_message(lua_State *L, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    luaL_checkstack(L, 8, NULL);
    int names = push_names(L, d);
    lua_newtable(L);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        lua_rawgeti(L, names, (int)i + 1);
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            ref_repeated(L, m, f, names);
        else if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                 *(const uint32_t *)member(m, f->quantifier_offset) != f->id)
            lua_pushnil(L);
        else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
                 f->type != PROTOBUF_C_TYPE_STRING &&
                 !*(const protobuf_c_boolean *)member(m, f->quantifier_offset))
            lua_pushnil(L);
        else
            ref_value(L, f, member(m, f->offset), names);
        lua_rawset(L, -3);
    }
    lua_remove(L, names);
}

/* Whether the values at a and b are the same, tables key by key. A string
 * with a NUL byte is the same as its part before it (protobuf-c keeps C
 * strings). */
static int same(lua_State *L, int a, int b, int depth)
{
    int type = lua_type(L, a), cut = 0;
    size_t na = 0, nb = 0;

    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    if (type != lua_type(L, b))
        return 0;
    if (type == LUA_TSTRING) {
        const char *sa = lua_tolstring(L, a, &na), *sb = lua_tolstring(L, b, &nb);
        return (na == nb || strlen(sa) == nb) && memcmp(sa, sb, nb) == 0;
    }
    if (type == LUA_TNUMBER) {
        lua_Number x = lua_tonumber(L, a), y = lua_tonumber(L, b);
        return lua_rawequal(L, a, b) || (x != x && y != y);
    }
    if (type != LUA_TTABLE)
        return lua_rawequal(L, a, b);
    if (depth > MAX_DEPTH)
        return 0;
    luaL_checkstack(L, 6, NULL);
    lua_pushnil(L);
    while (lua_next(L, a)) { /* key, value of a */
        na++;
        lua_pushvalue(L, -2);
        if (lua_type(L, -1) == LUA_TSTRING) { /* a key with a NUL byte is cut there in b */
            size_t n;
            const char *key = lua_tolstring(L, -1, &n);
            if (strlen(key) < n) {
                lua_pushstring(L, key);
                lua_replace(L, -2);
                cut = 1;
            }
        }
        lua_rawget(L, b); /* key, value of a, value of b */
        int ok = same(L, -2, -1, depth + 1);
        lua_pop(L, 2);
        if (!ok) {
            lua_pop(L, 1);
            return 0;
        }
    }
    lua_pushnil(L);
    while (lua_next(L, b)) {
        nb++;
        lua_pop(L, 1);
    }
    return na == nb || cut;
}

/* got: the index of the decoded message, or 0 when decoding refused it. */
static void check_decode(lua_State *L, const ProtobufCMessageDescriptor *d, const uint8_t *data,
                         size_t len, int got)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, data);
    int agree = !got == !m;

    if (got && m) {
        if (is_timestamp(d))
            push_timestamp(L, (const Google__Protobuf__Timestamp *)m);
        else
            ref_message(L, m);
        agree = same(L, got, -1, 0);
        lua_pop(L, 1);
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    if (!agree) {
        fprintf(stderr, "codec: %zu bytes of %s decoded unlike protobuf-c (%s)\n", len, d->name,
                got ? (m ? "different" : "protobuf-c refused them") : "refused");
        abort();
    }
}
#endif

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

    if (!tc_codec_decode(L, d, (const uint8_t *)data, len, 0, NULL))
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
    if (!tc_codec_decode(L, d, data + at, (size_t)size, 0, NULL))
        return tc_fail(L, TC_EINVALID, -1, "malformed %s message at byte %d", d->name, (int)pos);
    lua_pushinteger(L, (lua_Integer)(at + size + 1));
    return 2;
}
