/*
 * grpc_reflection.c: gRPC server reflection (grpc.reflection.v1 and
 * v1alpha, whose messages are the same) and the health service
 * (grpc.health.v1), so that tools which know no proto file of ours
 * (grpcurl, a load balancer's health probe) can list, describe, call and
 * probe the sandbox.
 *
 * What reflection describes is the FileDescriptorSet that the Makefile has
 * protoc make from proto/ at build time (descriptors.c): every file the
 * sandbox serves, with its imports. It is read once: each file's bytes are
 * kept as they are, and an index maps file names and fully qualified
 * symbols (services, methods, messages, fields, enums, enum values) to
 * them. Both services answer without an API key: they tell nothing that
 * proto/ does not.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc_methods.h"
#include "grpc_reflection.h"

/* descriptors.c, made by the Makefile. */
extern const unsigned char tc_descriptor_set[];
extern const size_t tc_descriptor_set_len;

/* One file of the set: its serialized FileDescriptorProto, as protoc made
 * it, and the indexes of the files it imports. */
struct ref_file {
    const unsigned char *bytes;
    size_t len;
    size_t *deps;
    size_t ndeps;
};

struct reflection {
    struct ref_file *files;
    size_t nfiles;
    json_t *by_name;   /* file name -> index */
    json_t *by_symbol; /* fully qualified symbol -> index of its file */
    char **services;   /* fully qualified service names, in file order */
    size_t nservices;
};

/* ---- reading the set ----------------------------------------------------- */

/* Reads a varint at *p (< end); false when malformed. */
static bool varint(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static bool add_symbol(struct reflection *r, const char *scope, const char *name, size_t file)
{
    char full[512];
    int n = snprintf(full, sizeof full, "%s%s%s", scope, *scope ? "." : "", name);
    if (n < 0 || (size_t)n >= sizeof full) return true; /* too long to be asked for */
    return json_object_set_new(r->by_symbol, full, json_integer((json_int_t)file)) == 0;
}

static bool add_enum(struct reflection *r, const char *scope,
                     const Google__Protobuf__EnumDescriptorProto *e, size_t file)
{
    if (!add_symbol(r, scope, e->name, file)) return false;
    /* enum values are siblings of their enum, as in C++ */
    for (size_t i = 0; i < e->n_value; i++)
        if (!add_symbol(r, scope, e->value[i]->name, file)) return false;
    return true;
}

static bool add_message(struct reflection *r, const char *scope,
                        const Google__Protobuf__DescriptorProto *m, size_t file)
{
    char inner[512];
    int n = snprintf(inner, sizeof inner, "%s%s%s", scope, *scope ? "." : "", m->name);
    if (n < 0 || (size_t)n >= sizeof inner) return true;
    if (!add_symbol(r, scope, m->name, file)) return false;
    for (size_t i = 0; i < m->n_field; i++)
        if (!add_symbol(r, inner, m->field[i]->name, file)) return false;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (!add_message(r, inner, m->nested_type[i], file)) return false;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (!add_enum(r, inner, m->enum_type[i], file)) return false;
    return true;
}

/* Indexes one file's symbols and services. */
static bool index_file(struct reflection *r, const Google__Protobuf__FileDescriptorProto *f,
                       size_t file)
{
    const char *pkg = f->package ? f->package : "";
    for (size_t i = 0; i < f->n_message_type; i++)
        if (!add_message(r, pkg, f->message_type[i], file)) return false;
    for (size_t i = 0; i < f->n_enum_type; i++)
        if (!add_enum(r, pkg, f->enum_type[i], file)) return false;
    for (size_t i = 0; i < f->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = f->service[i];
        char full[512];
        int n = snprintf(full, sizeof full, "%s%s%s", pkg, *pkg ? "." : "", s->name);
        if (n < 0 || (size_t)n >= sizeof full) continue;
        if (!add_symbol(r, pkg, s->name, file)) return false;
        for (size_t j = 0; j < s->n_method; j++)
            if (!add_symbol(r, full, s->method[j]->name, file)) return false;
        char **more = realloc(r->services, (r->nservices + 1) * sizeof *more);
        if (!more) return false;
        r->services = more;
        if (!(r->services[r->nservices] = strdup(full))) return false;
        r->nservices++;
    }
    return true;
}

void reflection_free(struct reflection *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->nfiles; i++) free(r->files[i].deps);
    free(r->files);
    for (size_t i = 0; i < r->nservices; i++) free(r->services[i]);
    free(r->services);
    json_decref(r->by_name);
    json_decref(r->by_symbol);
    free(r);
}

struct reflection *reflection_load(char *err, size_t errlen)
{
    struct reflection *r = calloc(1, sizeof *r);
    if (!r || !(r->by_name = json_object()) || !(r->by_symbol = json_object())) {
        snprintf(err, errlen, "out of memory");
        reflection_free(r);
        return NULL;
    }
    /* FileDescriptorSet: `repeated FileDescriptorProto file = 1`, so the
     * set is a run of (tag 0x0a, length, bytes). */
    const unsigned char *p = tc_descriptor_set, *end = p + tc_descriptor_set_len;
    Google__Protobuf__FileDescriptorProto **parsed = NULL;
    bool ok = true;
    while (ok && p < end) {
        uint64_t len;
        if (*p++ != 0x0a || !varint(&p, end, &len) || len > (uint64_t)(end - p)) {
            snprintf(err, errlen, "the compiled-in descriptor set is malformed");
            ok = false;
            break;
        }
        struct ref_file *files = realloc(r->files, (r->nfiles + 1) * sizeof *files);
        Google__Protobuf__FileDescriptorProto **more =
            realloc(parsed, (r->nfiles + 1) * sizeof *more);
        if (files) r->files = files;
        if (more) parsed = more;
        if (!files || !more) {
            snprintf(err, errlen, "out of memory");
            ok = false;
            break;
        }
        parsed[r->nfiles] = google__protobuf__file_descriptor_proto__unpack(NULL, (size_t)len, p);
        r->files[r->nfiles] = (struct ref_file){ p, (size_t)len, NULL, 0 };
        r->nfiles++;
        if (!parsed[r->nfiles - 1]) {
            snprintf(err, errlen, "the compiled-in descriptor set is malformed");
            ok = false;
            break;
        }
        p += len;
    }
    /* names first, then what each file imports and defines */
    for (size_t i = 0; ok && i < r->nfiles; i++)
        ok = json_object_set_new(r->by_name, parsed[i]->name, json_integer((json_int_t)i)) == 0;
    for (size_t i = 0; ok && i < r->nfiles; i++) {
        const Google__Protobuf__FileDescriptorProto *f = parsed[i];
        if (f->n_dependency > 0 && !(r->files[i].deps = calloc(f->n_dependency, sizeof(size_t))))
            ok = false;
        for (size_t j = 0; ok && j < f->n_dependency; j++) {
            json_t *ix = json_object_get(r->by_name, f->dependency[j]);
            if (ix) r->files[i].deps[r->files[i].ndeps++] = (size_t)json_integer_value(ix);
        }
        if (ok) ok = index_file(r, f, i);
        if (!ok) snprintf(err, errlen, "out of memory");
    }
    for (size_t i = 0; i < r->nfiles; i++)
        if (parsed[i]) google__protobuf__file_descriptor_proto__free_unpacked(parsed[i], NULL);
    free(parsed);
    if (!ok) {
        reflection_free(r);
        return NULL;
    }
    return r;
}

bool reflection_has_service(const struct reflection *r, const char *name)
{
    for (size_t i = 0; i < r->nservices; i++)
        if (strcmp(r->services[i], name) == 0) return true;
    return false;
}

/* ---- answering ----------------------------------------------------------- */

/* Appends file and, depth first, the files it imports, each once (sent
 * marks them). */
static bool collect(const struct reflection *r, size_t file, bool *sent,
                    ProtobufCBinaryData *out, size_t *n)
{
    if (sent[file]) return true;
    sent[file] = true;
    out[(*n)++] = (ProtobufCBinaryData){ r->files[file].len, (uint8_t *)r->files[file].bytes };
    for (size_t i = 0; i < r->files[file].ndeps; i++)
        if (!collect(r, r->files[file].deps[i], sent, out, n)) return false;
    return true;
}

static void answer_files(const struct reflection *r, json_t *ix, const char *what,
                         Grpc__Reflection__V1__ServerReflectionResponse *resp,
                         Grpc__Reflection__V1__FileDescriptorResponse *files,
                         Grpc__Reflection__V1__ErrorResponse *error, bool *sent,
                         ProtobufCBinaryData *blobs)
{
    if (!ix) {
        error->error_code = GRPC_STATUS_NOT_FOUND;
        error->error_message = (char *)what;
        resp->message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp->error_response = error;
        return;
    }
    size_t n = 0;
    collect(r, (size_t)json_integer_value(ix), sent, blobs, &n);
    files->n_file_descriptor_proto = n;
    files->file_descriptor_proto = blobs;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    resp->file_descriptor_response = files;
}

/* One ServerReflectionResponse for one request (the call is a stream of
 * them, grpc.c's SHAPE_BIDI). What cannot be answered is an ErrorResponse
 * in the stream, as the protocol has it, not an error status. */
void reflection_info(struct methods *m, const ProtobufCMessage *msg, struct reply *out)
{
    const struct reflection *r = methods_reflection(m);
    const Grpc__Reflection__V1__ServerReflectionRequest *req =
        (const Grpc__Reflection__V1__ServerReflectionRequest *)msg;
    Grpc__Reflection__V1__ServerReflectionResponse resp =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1__FileDescriptorResponse files =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ListServiceResponse list = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1__ExtensionNumberResponse numbers =
        GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
    Grpc__Reflection__V1__ErrorResponse error = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    Grpc__Reflection__V1__ServiceResponse *services = NULL, **service_ptrs = NULL;
    bool *sent = calloc(r->nfiles, sizeof *sent);
    ProtobufCBinaryData *blobs = calloc(r->nfiles, sizeof *blobs);
    if (!sent || !blobs) goto oom;

    resp.valid_host = req->host;
    resp.original_request = (Grpc__Reflection__V1__ServerReflectionRequest *)req;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        answer_files(r, json_object_get(r->by_name, req->file_by_filename), "file not found",
                     &resp, &files, &error, sent, blobs);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        answer_files(r, json_object_get(r->by_symbol, req->file_containing_symbol),
                     "symbol not found", &resp, &files, &error, sent, blobs);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        /* no file of ours declares an extension */
        answer_files(r, NULL, "extension not found", &resp, &files, &error, sent, blobs);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        if (!json_object_get(r->by_symbol, req->all_extension_numbers_of_type)) {
            answer_files(r, NULL, "type not found", &resp, &files, &error, sent, blobs);
        } else {
            numbers.base_type_name = req->all_extension_numbers_of_type;
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
            resp.all_extension_numbers_response = &numbers;
        }
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        services = calloc(r->nservices ? r->nservices : 1, sizeof *services);
        service_ptrs = calloc(r->nservices ? r->nservices : 1, sizeof *service_ptrs);
        if (!services || !service_ptrs) goto oom;
        for (size_t i = 0; i < r->nservices; i++) {
            services[i] = (Grpc__Reflection__V1__ServiceResponse)
                GRPC__REFLECTION__V1__SERVICE_RESPONSE__INIT;
            services[i].name = r->services[i];
            service_ptrs[i] = &services[i];
        }
        list.n_service = r->nservices;
        list.service = service_ptrs;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &list;
        break;
    default:
        error.error_code = GRPC_STATUS_INVALID_ARGUMENT;
        error.error_message = (char *)"the request asks for nothing";
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
        resp.error_response = &error;
        break;
    }
    reply_push(out, reply_pack(&resp.base));
    free(services);
    free(service_ptrs);
    free(sent);
    free(blobs);
    return;
oom:
    free(services);
    free(service_ptrs);
    free(sent);
    free(blobs);
    reply_error(out, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

/* ---- health --------------------------------------------------------------- */

/* The status of a service: the server as a whole ("") and every service it
 * offers are SERVING; others are unknown. */
static bool health_known(struct methods *m, const ProtobufCMessage *msg)
{
    const Grpc__Health__V1__HealthCheckRequest *req =
        (const Grpc__Health__V1__HealthCheckRequest *)msg;
    return req->service[0] == '\0' || reflection_has_service(methods_reflection(m), req->service);
}

static void health_reply(struct reply *out, Grpc__Health__V1__HealthCheckResponse__ServingStatus st)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = st;
    reply_push(out, reply_pack(&resp.base));
}

void health_check(struct methods *m, const ProtobufCMessage *msg, struct reply *out)
{
    if (!health_known(m, msg)) {
        reply_error(out, GRPC_STATUS_NOT_FOUND, "unknown service");
        return;
    }
    health_reply(out, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
}

/* The status now; the call then stays open (SHAPE_WATCH) until the client
 * cancels it or the sandbox stops, as nothing here ever changes it. */
void health_watch(struct methods *m, const ProtobufCMessage *msg, struct reply *out)
{
    health_reply(out, health_known(m, msg)
                          ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                          : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN);
}
