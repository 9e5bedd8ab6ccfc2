/*
 * private.h: declarations shared by the files of the C core.
 *
 * Nothing here is exported from core.so: every function is hidden, only
 * luaopen_ticketscloud_core is visible (see the Makefile's -fvisibility).
 */
#ifndef TC_PRIVATE_H
#define TC_PRIVATE_H

#include "compat.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TC_ERROR_MT "ticketscloud.Error"

/* Error kinds, the `kind` field of every error table. */
#define TC_EINVALID   "invalid"   /* the caller's data, caught before sending */
#define TC_EAUTH      "auth"      /* missing or refused key */
#define TC_ENOTFOUND  "not_found"
#define TC_ECONFLICT  "conflict"  /* 409: another change of the order in flight */
#define TC_EAPI       "api"       /* the service refused the request */
#define TC_ETRANSPORT "transport" /* connection, TLS, protocol */
#define TC_ETIMEOUT   "timeout"
#define TC_EEXPIRED   "expired"   /* the order expired */

/* The one exported symbol (core.c). */
__attribute__((visibility("default"))) int luaopen_ticketscloud_core(lua_State *L);

/* Reads the optional string opts[name] (opts an absolute index); raises on a
 * wrong type. len may be NULL. */
const char *tc_opt_string(lua_State *L, int opts, const char *name, size_t *len);
/* Reads the optional number opts[name] into *out; returns whether it was
 * there; raises on a wrong type. */
int tc_opt_number(lua_State *L, int opts, const char *name, lua_Number *out);

/* options.c: the client's options policy. */
struct tc_options {
    const char *key; /* NULL when missing */
    size_t key_len;
    const char *api, *simple, *language, *ca_file; /* ca_file NULL: system roots */
    const char *proxy;      /* NULL: direct, whatever the environment says */
    const char *user_agent; /* NULL: ours alone */
    size_t language_len;
    lua_Number timeout; /* seconds */
    int insecure;
};
/* Reads the options table at opts with the defaults filled in; raises
 * "bad field 'x' to '<fname>'" on a field of the wrong type. The strings
 * borrow from the table. */
void tc_read_options(lua_State *L, int opts, struct tc_options *o, const char *fname);
/* NULL when the options are acceptable (*plain then tells whether api is
 * http://), else the problem, "<field>: ...", written into buf. */
const char *tc_check_options(const struct tc_options *o, char *buf, size_t len, int *plain);
/* The gRPC target "host:port" of the simple option into target, and
 * whether it uses TLS; NULL, or what is wrong. */
const char *tc_grpc_target(const char *simple, int insecure, char *target, size_t len, int *tls);
/* NULL when the gRPC core can use the (checked) proxy URL, else why not. */
const char *tc_grpc_proxy_problem(const char *proxy);
/* The User-Agent of both transports: "APP lua-ticketscloud/VERSION", or
 * ours alone when user_agent is NULL (the options are checked). */
void tc_user_agent(const struct tc_options *o, char *buf, size_t len);
#define TC_USER_AGENT_MAX 128
/* 127.0.0.0/8, ::1 (bracketed or not) and localhost. */
int tc_is_loopback(const char *host);
/* NULL when seconds is a timeout we accept, (0, 86400], else the problem. */
const char *tc_timeout_problem(lua_Number seconds);
/* NULL for 1 to 35 printable ASCII characters, else the problem. */
const char *tc_language_problem(const char *s, size_t n);

/* Registers the metatable of a typed userdata (auxiliar.c): methods as __index,
 * close as both __gc and (Lua 5.4) __close, so closing is idempotent by
 * contract, and __tostring, which must never show a secret. */
void tc_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close,
                  lua_CFunction tostring);

/* The typed userdata. */
#define TC_HTTP_MT "ticketscloud.Http"
#define TC_CHANNEL_MT "ticketscloud.Channel"
#define TC_STREAM_MT "ticketscloud.Stream"
#define TC_MESSAGE_MT "ticketscloud.Message" /* a decoded message's C memory */

/* The functions of the module table, core.<name> is core_<name> (the list
 * is core.c's), and the methods of each class. */
int core_error(lua_State *L);           /* errors.c */
int core_fail(lua_State *L);
int core_scrub(lua_State *L);
int core_check_arg(lua_State *L);       /* auxiliar.c */
int core_check_field(lua_State *L);
int core_request_id(lua_State *L);
int core_copy_fields(lua_State *L);
int core_options(lua_State *L);         /* options.c */
int core_grpc_target(lua_State *L);
int core_check_timeout(lua_State *L);
int core_check_id(lua_State *L);        /* validate.c */
int core_check_text(lua_State *L);
int core_check_count(lua_State *L);
int core_check_json(lua_State *L);
int core_check_customer(lua_State *L);
int core_check_vendor_data(lua_State *L);
int core_check_settings(lua_State *L);
int core_order_held(lua_State *L);      /* order.c */
int core_order_tickets_body(lua_State *L);
int core_order_random_body(lua_State *L);
int core_order_verify(lua_State *L);
int core_order_check_money(lua_State *L);
int core_money_parse(lua_State *L);     /* money.c: core.money.parse, ... */
int core_money_format(lua_State *L);
int core_money_add(lua_State *L);
int core_http(lua_State *L);            /* http.c */
int core_check_request(lua_State *L);
int core_sleep(lua_State *L);
int core_now(lua_State *L);             /* clock.c */
/* core.now()'s monotonic clock, in seconds; 0 when it cannot be read. */
int tc_now(double *seconds);
int core_channel(lua_State *L);         /* grpc.c */
int core_encode(lua_State *L);          /* codec.c: upvalue 1 caches message types */
int core_decode(lua_State *L);
int core_decode_at(lua_State *L);
int core_json_decode(lua_State *L);     /* json.c */
int core_json_encode(lua_State *L);
int core_json_array(lua_State *L);
/* Registers json.c's metatables and sets core.json_null in the module table
 * on top of the stack. */
void tc_json_open(lua_State *L);

int core_error_tostring(lua_State *L);  /* the error tables' __tostring */
extern const luaL_Reg tc_http_methods[];
int tc_http_close(lua_State *L);
int tc_http_tostring(lua_State *L);
extern const luaL_Reg tc_channel_methods[];
int tc_channel_close(lua_State *L);
int tc_channel_tostring(lua_State *L);
extern const luaL_Reg tc_stream_methods[];
int tc_stream_close(lua_State *L);
int tc_stream_tostring(lua_State *L);
int tc_stream_call(lua_State *L);
int tc_message_gc(lua_State *L);

/* errors.c */
/* Pushes an error table { kind, status, messages = { message } }. status < 0
 * leaves the status out. Returns nothing on the stack but the table. */
void tc_push_error(lua_State *L, const char *kind, int status, const char *message);
/* Pushes nil and an error table and returns 2: `return tc_fail(L, ...)`. */
int tc_fail(lua_State *L, const char *kind, int status, const char *fmt, ...);
/* Replaces every occurrence of secret in the n bytes at s with "<key>", in
 * place, until none is left, and returns the new length (never more than
 * n). A secret shorter than TC_SCRUB_MIN bytes is not looked for: so short
 * a text turns up by chance. The one rule for keeping the key out of every
 * error text (core.scrub, grpc.c). */
#define TC_SCRUB_MIN 8
size_t tc_scrub(char *s, size_t n, const char *secret, size_t secret_len);

/* process.c: the current process's pid, as getpid() says, without a
 * system call each time (fork detection, see process.c). */
pid_t tc_pid(void);

/* codec.c and grpc.c (tc-simple): protobuf messages <-> Lua tables. */
struct ProtobufCMessageDescriptor;
/* A message type by full name ("v3.SeatsRequest"), or NULL. */
const struct ProtobufCMessageDescriptor *tc_codec_find(const char *type_name);
/* Encodes the table at idx and pushes the bytes; returns 0 and pushes nothing
 * when the table does not fit the message (the reason is written into err). */
int tc_codec_encode(lua_State *L, int idx, const struct ProtobufCMessageDescriptor *d, char *err,
                    size_t errlen);
/* What a decoder of many messages of one type (a stream) keeps between them
 * (codec.c): per field of the message, how many messages more its string
 * goes without the comparison with its last value (push_string); and, read
 * from the message type once, the index of each field number, which fields
 * take the string path and which get a default when not sent (plan). Zeroed. */
#define TC_DECODER_FIELDS 32
#define TC_DECODER_IDS 64
struct tc_decoder {
    unsigned char skip[TC_DECODER_FIELDS];
    unsigned char field_of[TC_DECODER_IDS]; /* field number -> index + 1, or 0 */
    uint32_t strings, defaults;             /* bit i: field i */
    int planned;                            /* 0 not yet, 1 done, -1 too many fields */
};
/* Decodes a message and pushes it as a table; returns 0 and pushes nothing
 * when the bytes are not a valid message. names is the stack index of d's
 * names table (tc_codec_names), or 0; dec a stream's state, or NULL. */
int tc_codec_decode(lua_State *L, const struct ProtobufCMessageDescriptor *d, const uint8_t *data,
                    size_t len, int names, struct tc_decoder *dec);
/* Pushes the table of d's field names that decoding uses, made once per Lua
 * state; returns its stack index. */
int tc_codec_names(lua_State *L, const struct ProtobufCMessageDescriptor *d);
/* A packed listing (stream:read_all, core.decode_at) is messages one after
 * the other, each after its length as a protobuf varint: writes the length
 * into out (TC_LENGTH_MAX bytes at most) and returns how many bytes it took. */
#define TC_LENGTH_MAX 10
size_t tc_codec_put_length(uint8_t *out, size_t len);

#endif
