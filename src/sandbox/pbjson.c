/*
 * pbjson.c: protobuf-c messages from their proto3 JSON form.
 *
 * A generic walk over protobuf-c message descriptors: for each JSON key that
 * names a field, the value is converted to the field's type and stored the
 * way protobuf-c lays the field out (plain member, has_ flag, oneof case,
 * or count + array). Everything is allocated with malloc, so a message is
 * freed with protobuf_c_message_free_unpacked(msg, NULL), also when it was
 * left half built by an error.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "pbjson.h"
#include "util.h"

#define TIMESTAMP_NAME "google.protobuf.Timestamp"
#define ANY_NAME "google.protobuf.Any"

/* The state of one decode: where we are (for messages) and the error. */
struct ctx {
    char path[256];
    size_t pathlen;
    char *err;
    size_t errlen;
};

static bool fail(struct ctx *x, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(x->err, x->errlen, "%s: %s", x->pathlen ? x->path : "(top)", msg);
    return false;
}

/* Appends ".name" or "[i]" to the path; returns the length to restore. */
static size_t path_push(struct ctx *x, const char *fmt, ...)
{
    size_t saved = x->pathlen;
    if (x->pathlen < sizeof x->path - 1) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(x->path + x->pathlen, sizeof x->path - x->pathlen, fmt, ap);
        va_end(ap);
        if (n > 0) {
            x->pathlen += (size_t)n;
            if (x->pathlen > sizeof x->path - 1) x->pathlen = sizeof x->path - 1;
        }
    }
    return saved;
}

static void path_pop(struct ctx *x, size_t saved)
{
    x->pathlen = saved;
    x->path[saved] = '\0';
}


/* ---- scalars ------------------------------------------------------------- */

/* A signed integer from a JSON integer, an integral real or a decimal string. */
static bool get_signed(struct ctx *x, const json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t n;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || d < -9.2233720368547758e18 || d >= 9.2233720368547758e18)
            return fail(x, "not an integer");
        n = (int64_t)d;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long ll = strtoll(s, &end, 10);
        if (*s == '\0' || isspace((unsigned char)*s) || *end != '\0' || errno)
            return fail(x, "\"%s\" is not an integer", s);
        n = ll;
    } else {
        return fail(x, "expected an integer");
    }
    if (n < lo || n > hi) return fail(x, "%" PRId64 " is out of range", n);
    *out = n;
    return true;
}

static bool get_unsigned(struct ctx *x, const json_t *v, uint64_t hi, uint64_t *out)
{
    uint64_t n;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        unsigned long long ull = strtoull(s, &end, 10);
        if (!isdigit((unsigned char)*s) || *end != '\0' || errno)
            return fail(x, "\"%s\" is not an unsigned integer", s);
        n = ull;
    } else {
        int64_t i;
        if (!get_signed(x, v, 0, INT64_MAX, &i)) return false;
        n = (uint64_t)i;
    }
    if (n > hi) return fail(x, "%" PRIu64 " is out of range", n);
    *out = n;
    return true;
}

static bool get_double(struct ctx *x, const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "NaN") == 0) {
            *out = NAN;
            return true;
        }
        if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) {
            *out = *s == '-' ? -INFINITY : INFINITY;
            return true;
        }
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (*s != '\0' && *end == '\0' && !errno) {
            *out = d;
            return true;
        }
    }
    return fail(x, "expected a number");
}

static bool get_bool(struct ctx *x, const json_t *v, protobuf_c_boolean *out)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    /* Map keys are strings in JSON, bool keys included. */
    if (json_is_string(v) && strcmp(json_string_value(v), "true") == 0) {
        *out = 1;
        return true;
    }
    if (json_is_string(v) && strcmp(json_string_value(v), "false") == 0) {
        *out = 0;
        return true;
    }
    return fail(x, "expected true or false");
}

static bool get_enum(struct ctx *x, const ProtobufCEnumDescriptor *ed, const json_t *v,
                     int32_t *out)
{
    if (json_is_string(v)) {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
        if (!ev) return fail(x, "\"%s\" is not a value of %s", json_string_value(v), ed->name);
        *out = ev->value;
        return true;
    }
    /* Proto3 enums are open: any number is kept. */
    int64_t n;
    if (!json_is_integer(v)) return fail(x, "expected a name of %s", ed->name);
    if (!get_signed(x, v, INT32_MIN, INT32_MAX, &n)) return false;
    *out = (int32_t)n;
    return true;
}

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Standard or URL-safe base64, padding optional. */
static bool get_bytes(struct ctx *x, const json_t *v, ProtobufCBinaryData *out)
{
    if (!json_is_string(v)) return fail(x, "expected a base64 string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    while (len > 0 && s[len - 1] == '=') len--;
    if (len % 4 == 1) return fail(x, "bad base64");
    uint8_t *data = malloc(len * 3 / 4 + 1);
    if (!data) return fail(x, "out of memory");
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int d = b64_value((unsigned char)s[i]);
        if (d < 0) {
            free(data);
            return fail(x, "bad base64");
        }
        acc = (acc << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            data[n++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = data;
    out->len = n;
    return true;
}

/* ---- messages ------------------------------------------------------------ */

static bool decode_message(struct ctx *x, const ProtobufCMessageDescriptor *desc, const json_t *v,
                           ProtobufCMessage **out);

static ProtobufCMessage *message_new(struct ctx *x, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = malloc(desc->sizeof_message);
    if (!m) {
        fail(x, "out of memory");
        return NULL;
    }
    desc->message_init(m);
    return m;
}

static bool decode_timestamp(struct ctx *x, const json_t *v, ProtobufCMessage **out)
{
    int64_t seconds;
    int32_t nanos;
    if (!json_is_string(v) || !parse_datetime_ns(json_string_value(v), &seconds, &nanos))
        return fail(x, "expected an RFC 3339 date-time");
    Google__Protobuf__Timestamp *ts =
        (Google__Protobuf__Timestamp *)message_new(x, &google__protobuf__timestamp__descriptor);
    if (!ts) return false;
    ts->seconds = seconds;
    ts->nanos = nanos;
    *out = &ts->base;
    return true;
}

static size_t value_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default: /* 32-bit integers and enums */
        return sizeof(int32_t);
    }
}

/* Converts one value of field f's type and stores it at dst. Nothing is
 * stored when it fails. */
static bool decode_value(struct ctx *x, const ProtobufCFieldDescriptor *f, const json_t *v,
                         void *dst)
{
    int64_t i;
    uint64_t u;
    double d;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!get_signed(x, v, INT32_MIN, INT32_MAX, &i)) return false;
        *(int32_t *)dst = (int32_t)i;
        return true;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!get_unsigned(x, v, UINT32_MAX, &u)) return false;
        *(uint32_t *)dst = (uint32_t)u;
        return true;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!get_signed(x, v, INT64_MIN, INT64_MAX, &i)) return false;
        *(int64_t *)dst = i;
        return true;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!get_unsigned(x, v, UINT64_MAX, &u)) return false;
        *(uint64_t *)dst = u;
        return true;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!get_double(x, v, &d)) return false;
        *(double *)dst = d;
        return true;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!get_double(x, v, &d)) return false;
        *(float *)dst = (float)d;
        return true;
    case PROTOBUF_C_TYPE_BOOL:
        return get_bool(x, v, dst);
    case PROTOBUF_C_TYPE_ENUM:
        return get_enum(x, f->descriptor, v, dst);
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v)) return fail(x, "expected a string");
        char *s = strdup(json_string_value(v));
        if (!s) return fail(x, "out of memory");
        *(char **)dst = s;
        return true;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return get_bytes(x, v, dst);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *md = f->descriptor;
        if (strcmp(md->name, TIMESTAMP_NAME) == 0) return decode_timestamp(x, v, dst);
        return decode_message(x, md, v, dst);
    }
    }
    return fail(x, "unsupported field type");
}

/* A map<K,V> field is a repeated KEntry { key = 1; value = 2; }. */
static bool is_map_entry(const ProtobufCMessageDescriptor *md)
{
    return md->n_fields == 2 && md->fields[0].id == 1 && md->fields[1].id == 2 &&
           strcmp(md->fields[0].name, "key") == 0 && strcmp(md->fields[1].name, "value") == 0;
}

static bool decode_map_entry(struct ctx *x, const ProtobufCMessageDescriptor *md,
                             const char *key, const json_t *value, ProtobufCMessage **out)
{
    ProtobufCMessage *entry = message_new(x, md);
    if (!entry) return false;
    json_t *jkey = json_string(key);
    bool ok = jkey && decode_value(x, &md->fields[0], jkey, (char *)entry + md->fields[0].offset) &&
              decode_value(x, &md->fields[1], value, (char *)entry + md->fields[1].offset);
    if (!jkey) fail(x, "out of memory");
    json_decref(jkey);
    if (!ok) {
        protobuf_c_message_free_unpacked(entry, NULL);
        return false;
    }
    *out = entry;
    return true;
}

static bool decode_repeated(struct ctx *x, const ProtobufCFieldDescriptor *f, const json_t *v,
                            ProtobufCMessage *msg)
{
    size_t *count = (size_t *)((char *)msg + f->quantifier_offset);
    void **array = (void **)((char *)msg + f->offset);
    bool as_map = json_is_object(v) && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                  is_map_entry(f->descriptor);
    size_t n = as_map ? json_object_size(v) : json_array_size(v);
    size_t size = value_size(f->type);

    if (!as_map && !json_is_array(v)) return fail(x, "expected an array");
    if (*array != NULL) return fail(x, "field given twice");
    if (n == 0) return true;
    char *items = calloc(n, size);
    if (!items) return fail(x, "out of memory");
    /* Store the array first: on failure free_unpacked frees what is counted. */
    *array = items;
    *count = 0;

    if (as_map) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)v, key, value) {
            size_t saved = path_push(x, "[\"%s\"]", key);
            bool ok = decode_map_entry(x, f->descriptor, key, value,
                                       (ProtobufCMessage **)(items + *count * size));
            path_pop(x, saved);
            if (!ok) return false;
            ++*count;
        }
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        size_t saved = path_push(x, "[%zu]", i);
        bool ok = decode_value(x, f, json_array_get(v, i), items + i * size);
        path_pop(x, saved);
        if (!ok) return false;
        ++*count;
    }
    return true;
}

/* True when key is the field's name or its lowerCamelCase JSON name. */
static bool key_names_field(const char *key, const char *name)
{
    if (strcmp(key, name) == 0) return true;
    for (; *name; name++, key++) {
        if (*name == '_' && name[1] != '\0') {
            name++;
            if (*key != toupper((unsigned char)*name)) return false;
        } else if (*key != *name) {
            return false;
        }
    }
    return *key == '\0';
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    if (f) return f;
    for (unsigned i = 0; i < desc->n_fields; i++)
        if (key_names_field(key, desc->fields[i].name)) return &desc->fields[i];
    return NULL;
}

static bool decode_field(struct ctx *x, const ProtobufCFieldDescriptor *f, const json_t *v,
                         ProtobufCMessage *msg)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) return decode_repeated(x, f, v, msg);

    void *dst = (char *)msg + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = (uint32_t *)((char *)msg + f->quantifier_offset);
        if (*which == f->id) return fail(x, "field given twice"); /* would leak the first */
        if (*which != 0) return fail(x, "more than one member of a oneof");
        if (!decode_value(x, f, v, dst)) return false;
        *which = f->id;
        return true;
    }
    /* A second value for the same field would leak the first; JSON objects
     * have unique keys, but a name and its camelCase form could both be
     * present. */
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void **)dst != NULL)
        return fail(x, "field given twice");
    if (f->type == PROTOBUF_C_TYPE_STRING && *(char **)dst != f->default_value &&
        *(char **)dst != NULL)
        return fail(x, "field given twice");
    if (!decode_value(x, f, v, dst)) return false;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
        f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
    return true;
}

static bool decode_message(struct ctx *x, const ProtobufCMessageDescriptor *desc, const json_t *v,
                           ProtobufCMessage **out)
{
    if (!json_is_object(v)) return fail(x, "expected an object for %s", desc->name);
    ProtobufCMessage *msg = message_new(x, desc);
    if (!msg) return false;

    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value) {
        const ProtobufCFieldDescriptor *f = find_field(desc, key);
        if (!f || json_is_null(value)) continue;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
            strcmp(((const ProtobufCMessageDescriptor *)f->descriptor)->name, ANY_NAME) == 0)
            continue;
        size_t saved = path_push(x, x->pathlen ? ".%s" : "%s", f->name);
        bool ok = decode_field(x, f, value, msg);
        path_pop(x, saved);
        if (!ok) {
            protobuf_c_message_free_unpacked(msg, NULL);
            return false;
        }
    }
    *out = msg;
    return true;
}

ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *desc, const json_t *json,
                                char *err, size_t errlen)
{
    struct ctx x = {.err = err, .errlen = errlen};
    ProtobufCMessage *msg = NULL;
    if (!decode_message(&x, desc, json, &msg)) return NULL;
    return msg;
}

void pbjson_free(ProtobufCMessage *msg)
{
    if (msg) protobuf_c_message_free_unpacked(msg, NULL);
}
