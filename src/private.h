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

/* auxiliar.c: core.check_arg and core.check_field. */
extern const luaL_Reg tc_auxiliar_functions[];

/* Reads the optional string opts[name] (opts an absolute index); raises on a
 * wrong type. len may be NULL. */
const char *tc_opt_string(lua_State *L, int opts, const char *name, size_t *len);
/* Reads the optional number opts[name] into *out; returns whether it was
 * there; raises on a wrong type. */
int tc_opt_number(lua_State *L, int opts, const char *name, lua_Number *out);

/* Registers the metatable of a typed userdata (auxiliar.c): methods as __index,
 * close as both __gc and (Lua 5.4) __close, so closing is idempotent by
 * contract, and __tostring, which must never show a secret. */
void tc_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close,
                  lua_CFunction tostring);

/* Each file adds its functions to the module table on top of the stack. */
void tc_money_register(lua_State *L); /* money.c */
void tc_order_register(lua_State *L); /* order.c */
void tc_http_register(lua_State *L);  /* http.c */
void tc_grpc_register(lua_State *L);  /* grpc.c */

/* errors.c */
void tc_error_register(lua_State *L);
/* Pushes an error table { kind, status, messages = { message } }. status < 0
 * leaves the status out. Returns nothing on the stack but the table. */
void tc_push_error(lua_State *L, const char *kind, int status, const char *message);
/* Pushes nil and an error table and returns 2: `return tc_fail(L, ...)`. */
int tc_fail(lua_State *L, const char *kind, int status, const char *fmt, ...);

/* codec.c and grpc.c (tc-simple): protobuf messages <-> Lua tables. */
struct ProtobufCMessageDescriptor;
/* A message type by full name ("v3.SeatsRequest"), or NULL. */
const struct ProtobufCMessageDescriptor *tc_codec_find(const char *type_name);
/* Encodes the table at idx and pushes the bytes; returns 0 and pushes nothing
 * when the table does not fit the message (the reason is written into err). */
int tc_codec_encode(lua_State *L, int idx, const struct ProtobufCMessageDescriptor *d, char *err,
                    size_t errlen);
/* Decodes a message and pushes it as a table; returns 0 and pushes nothing
 * when the bytes are not a valid message. */
int tc_codec_decode(lua_State *L, const struct ProtobufCMessageDescriptor *d, const uint8_t *data,
                    size_t len);
/* Adds core.encode and core.decode (called by tc_grpc_register). */
void tc_codec_register(lua_State *L);

#endif
