/*
 * grpc_methods.h: the ten tc-simple methods, between the catalog and grpc.c.
 *
 * grpc.c owns the server and the calls; grpc_methods.c owns what a call
 * answers: it decodes the request, filters the catalog and packs the
 * messages to stream. methods_run() runs on grpc.c's workers, several at
 * once; the rest on the listener's thread.
 */
#ifndef TC_SANDBOX_GRPC_METHODS_H
#define TC_SANDBOX_GRPC_METHODS_H

#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

struct sandbox;
struct methods;
struct reflection;

/* What a call sends back: packed messages in order, then a status. */
struct reply {
    grpc_slice *msgs;
    size_t n, cap;
    grpc_status_code status;
    const char *message; /* a static string, or NULL with GRPC_STATUS_OK */
};

/* Answers one request message into out. */
typedef void handler_fn(struct methods *m, const ProtobufCMessage *req, struct reply *out);

/* How a method's call runs in grpc.c. */
enum method_shape {
    SHAPE_STREAM, /* one request; its messages, then the status */
    SHAPE_WATCH,  /* one request; its messages, then open until cancelled */
    SHAPE_BIDI,   /* each request its messages; the status once the client is done */
};

struct method {
    const char *path; /* "/v3.Simple/Events" */
    const ProtobufCMessageDescriptor *request;
    handler_fn *run;
    enum method_shape shape;
    bool keyless; /* health and reflection: no API key asked */
};

/* Converts the catalog's entities to messages once, packs the reference
 * entities, indexes what the filters need and loads the descriptors that
 * reflection serves. NULL with err on failure:
 * an entity that does not fit its message ("events[0]: smart_tickets: ...",
 * a catalog error), or "out of memory". Holds a reference to the gRPC
 * library (grpc_init) until methods_free(). */
struct methods *methods_load(struct sandbox *sb, char *err, size_t errlen);
void methods_free(struct methods *m);

/* The method served at an HTTP/2 path ("/v3.Simple/Events"), or NULL. */
const struct method *methods_find(const char *path, size_t len);

/* Answers one request (its serialized bytes) into out, which the caller has
 * zeroed and later releases with reply_free(). */
void methods_run(struct methods *m, const struct method *method, const uint8_t *req,
                 size_t len, struct reply *out);

void reply_free(struct reply *r);

/* For handlers: a message packed into a new slice; appending one (the
 * slice taken over; false once the reply failed); replacing everything
 * with an error status (message static). */
grpc_slice reply_pack(const ProtobufCMessage *msg);
bool reply_push(struct reply *out, grpc_slice s);
void reply_error(struct reply *out, grpc_status_code status, const char *message);

/* The reflection index loaded with the methods. */
const struct reflection *methods_reflection(const struct methods *m);

#endif
