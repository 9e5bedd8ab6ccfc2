/*
 * pbjson.h: protobuf-c messages from their proto3 JSON form.
 *
 * The catalog keeps every entity in the proto3 JSON mapping of its v3
 * message; the gRPC listener turns them into protobuf-c messages with
 * pbjson_decode() and packs those.
 */
#ifndef TC_SANDBOX_PBJSON_H
#define TC_SANDBOX_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Builds a message of type desc from a JSON object. The mapping:
 *   - keys are the field names of the .proto (lowerCamelCase is accepted
 *     too); keys that are not fields are ignored, and so is null;
 *   - 32-bit integers are JSON integers or decimal strings, 64-bit ones too
 *     (strings carry values beyond 2^63); floats are numbers or strings
 *     ("NaN", "Infinity", "-Infinity");
 *   - enums by value name or by number; bytes in base64;
 *   - google.protobuf.Timestamp as an RFC 3339 string; google.protobuf.Any
 *     is left unset (the sandbox has no type registry to resolve it);
 *   - repeated fields as arrays, map fields as objects, at most one member
 *     of each oneof.
 * Returns a message to free with pbjson_free(), or NULL with a message that
 * names the offending field in err.
 */
ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *desc, const json_t *json,
                                char *err, size_t errlen);

/* Frees a message from pbjson_decode(). NULL is allowed. */
void pbjson_free(ProtobufCMessage *msg);

#endif
