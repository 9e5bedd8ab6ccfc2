/*
 * grpc.c: the tc-simple client, on the gRPC C core.
 *
 *   local ch = core.channel{ simple = "simple.ticketscloud.com:443", key = KEY,
 *                            language = "ru", ca_file = nil, timeout = 10 }
 *   local stream = ch:stream("Seats", { event = ID } [, owner [, trace]])  -- or nil, err
 *   for seat in stream do ... end                        -- one message per call
 *   local err = stream:error()                           -- what ended it, if not the end
 *   local chunks, n = stream:read_all(max_bytes)         -- or the rest at once, undecoded
 *   stream:close(); ch:close()
 *
 * A Channel is one grpc_channel, reused by every call of a client. It holds
 * the API key (C memory only, wiped on close), sent as the bare value of the
 * `authorization` metadata entry, with `preferred-language` when set. TLS
 * verifies the server against the system roots, or against ca_file; when
 * plaintext is allowed is options.c's rule.
 *
 * A Stream is one server-streaming call with its own pluck completion
 * queue. Its deadline (the channel's timeout) covers the whole stream.
 * Each call of the stream reads and decodes one message, so memory stays
 * flat however long the listing is. stream:read_all is the exception, for
 * a caller that cannot wait message by message (ticketscloud.nginx runs it
 * in a thread of nginx's pool): it reads the rest of the stream, undecoded,
 * into a packed listing bounded by the caller's max_bytes. Statuses become error kinds: auth,
 * timeout, transport, not_found, api (status = the gRPC code), with the
 * server's status message, the key scrubbed from it (tc_scrub, errors.c).
 *
 * gRPC is initialised when the first channel is made (never at require
 * time: nginx forks its workers after loading modules) and shut down when
 * each channel is closed. Closing a channel cancels its open streams, which
 * then report "closed".
 *
 * Trace: a stream given a trace function calls it once, when the call is
 * over: trace("GRPC", "/v3.Simple/Seats", nil, status, seconds) at its end
 * or failure in next() (status the gRPC code, 0 at a normal end; nil when
 * the stream failed on this side, a malformed message) and from close()
 * before its end (status nil). A stream collected or cancelled by closing
 * its channel is not traced. seconds runs from the start of the call.
 *
 * Fork: channels and streams belong to the process that made them. gRPC's
 * threads do not survive fork(), so in a child a call on an inherited
 * channel or stream would wait forever: it is refused (kind "invalid"), and
 * closing or collecting the object there frees its memory without a gRPC
 * call (the parent's gRPC objects are left alone).
 */
#include "private.h"
#include "bytes.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <protobuf-c/protobuf-c.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "service.pb-c.h"


/* Largest message accepted from the server (hall maps carry SVG drawings). */
#define MAX_MESSAGE (64 * 1024 * 1024)
/* How much of a packed listing goes in one chunk (stream:read_all). */
#define CHUNK (1024 * 1024)
/* Largest ca_file read. */
#define MAX_CA_FILE (4 * 1024 * 1024)
/* The error of a channel or stream used in a child after fork. */
#define FOREIGN "made in process %d, before a fork: make a client in the process that uses it"

struct stream;

struct channel {
    grpc_channel *ch; /* NULL once closed */
    char *key;        /* the API key: never returned, logged or put in an error */
    char *language;   /* preferred-language, or NULL */
    long timeout_ms;  /* deadline of every stream */
    struct stream *streams; /* open streams, cancelled by close() */
    pid_t pid;        /* the process that made it: see "Fork" above */
};

enum stream_state {
    S_OPEN,   /* the call is running */
    S_DONE,   /* ended with status OK */
    S_FAILED, /* ended with an error, kept in err_* */
    S_CLOSED  /* cancelled: closed before its end, or by closing the channel */
};

struct stream {
    enum stream_state state;
    pid_t pid;  /* the process that made it */
    int closed; /* by the caller: calls report "closed", error() still answers */
    int anchor; /* registry reference to the owner (the client), or LUA_NOREF */
    int trace;  /* registry reference to the trace function, or LUA_NOREF */
    double started; /* tc_now() when the call started */
    const char *method; /* "Seats": the descriptor's, static */
    struct channel *channel; /* NULL once detached */
    struct stream *prev, *next;
    const ProtobufCMessageDescriptor *output;

    grpc_completion_queue *cq;
    grpc_call *call;
    /* The first batch (send the request, receive the headers) and the status
     * batch; each flag is set while its batch is in flight. */
    int start_pending, status_pending;
    struct tc_decoder decoder; /* what decoding learns of the messages (codec.c) */
    grpc_metadata metadata[2];
    size_t n_metadata;
    grpc_byte_buffer *request;
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *response;
    grpc_slice payload; /* the message being decoded, if have_payload */
    int have_payload;
    grpc_status_code status;
    grpc_slice details;
    const char *error_string;

    /* The error that ended the stream (S_FAILED). */
    const char *err_kind;
    int err_status;
    char err_message[256];
};

/* ------------------------------------------------------------------------ */
/* Status -> error                                                            */

static const char *status_name(grpc_status_code code)
{
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if ((unsigned)code < sizeof names / sizeof names[0])
        return names[code];
    return "UNKNOWN";
}

static const char *status_kind(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_UNAUTHENTICATED:
    case GRPC_STATUS_PERMISSION_DENIED:
        return TC_EAUTH;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return TC_ETIMEOUT;
    case GRPC_STATUS_UNAVAILABLE:
        return TC_ETRANSPORT;
    case GRPC_STATUS_NOT_FOUND:
        return TC_ENOTFOUND;
    default:
        return TC_EAPI; /* INVALID_ARGUMENT: the server refused the request */
    }
}

static void stream_set_error(struct stream *s, const char *kind, int status, const char *message)
{
    s->state = S_FAILED;
    s->err_kind = kind;
    s->err_status = status;
    snprintf(s->err_message, sizeof s->err_message, "%s", message);
}

/* nil, { kind, status, messages = { message }, code = "UNAUTHENTICATED" } */
static int push_stream_error(lua_State *L, const struct stream *s)
{
    lua_pushnil(L);
    tc_push_error(L, s->err_kind, s->err_status, s->err_message);
    if (s->err_status >= 0) {
        lua_pushstring(L, status_name((grpc_status_code)s->err_status));
        lua_setfield(L, -2, "code");
    }
    return 2;
}

/* ------------------------------------------------------------------------ */
/* Stream internals                                                           */

static gpr_timespec forever(void)
{
    return gpr_inf_future(GPR_CLOCK_REALTIME);
}

/* Waits for the batch tagged tag. The call's deadline bounds every batch,
 * so this returns by then at the latest. Returns the batch's success. */
static int wait_for(struct stream *s, void *tag)
{
    grpc_event ev = grpc_completion_queue_pluck(s->cq, tag, forever(), NULL);

    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static void unlink_stream(struct stream *s)
{
    struct channel *c = s->channel;

    if (!c)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->channel = NULL;
}

/* Frees everything of a call whose batches have all completed, in reverse
 * order of creation, and detaches the stream from its channel. */
static void stream_release(struct stream *s)
{
    if (s->have_payload) {
        grpc_slice_unref(s->payload);
        s->have_payload = 0;
    }
    if (s->response) {
        grpc_byte_buffer_destroy(s->response);
        s->response = NULL;
    }
    if (s->request) {
        grpc_byte_buffer_destroy(s->request);
        s->request = NULL;
    }
    for (size_t i = 0; i < s->n_metadata; i++)
        grpc_slice_unref(s->metadata[i].value);
    s->n_metadata = 0;
    if (s->call) {
        grpc_metadata_array_destroy(&s->initial_md);
        grpc_metadata_array_destroy(&s->trailing_md);
        grpc_slice_unref(s->details);
        gpr_free((void *)s->error_string);
        s->error_string = NULL;
        grpc_call_unref(s->call);
        s->call = NULL;
    }
    if (s->cq) {
        grpc_completion_queue_shutdown(s->cq);
        while (grpc_completion_queue_pluck(s->cq, NULL, forever(), NULL).type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(s->cq);
        s->cq = NULL;
    }
    unlink_stream(s);
}

/* Waits for the outstanding batches, cancelling the call first if asked. */
static void stream_drain(struct stream *s, int cancel)
{
    if (!s->call)
        return;
    if (cancel && (s->start_pending || s->status_pending))
        grpc_call_cancel(s->call, NULL);
    if (s->start_pending) {
        wait_for(s, &s->start_pending);
        s->start_pending = 0;
    }
    if (s->status_pending) {
        wait_for(s, &s->status_pending);
        s->status_pending = 0;
    }
}

/* The call is over (no more messages, or it failed): takes its status. */
static void stream_finish(struct stream *s)
{
    stream_drain(s, 0);
    if (s->status == GRPC_STATUS_OK) {
        s->state = S_DONE;
    } else {
        char message[256];
        size_t len = GRPC_SLICE_LENGTH(s->details);
        const struct channel *c = s->channel; /* set while the call runs */
        /* The server's text, scrubbed whole before it is cut short, so
         * that no part of an echoed key is left; without its copy (out of
         * memory) or the key to look for, only the status. */
        char *text = len > 0 && c && c->key ? malloc(len) : NULL;
        if (text) {
            memcpy(text, GRPC_SLICE_START_PTR(s->details), len);
            len = tc_scrub(text, len, c->key, strlen(c->key));
            snprintf(message, sizeof message, "%.*s", (int)(len < 240 ? len : 240), text);
            free(text);
        } else {
            snprintf(message, sizeof message, "gRPC status %s", status_name(s->status));
        }
        stream_set_error(s, status_kind(s->status), (int)s->status, message);
    }
    stream_release(s);
}

/* In a child after fork: lets go of the call without a gRPC call (its
 * queue, buffers and gRPC's threads are the parent's; the memory is left). */
static void stream_forget(struct stream *s)
{
    s->have_payload = 0;
    s->response = NULL;
    s->request = NULL;
    s->n_metadata = 0;
    s->call = NULL;
    s->cq = NULL;
    s->start_pending = s->status_pending = 0;
    unlink_stream(s);
    if (s->state == S_OPEN)
        s->state = S_CLOSED;
}

/* Ends the stream at the caller's request (close, __gc, channel close). */
static void stream_close(struct stream *s)
{
    if (s->pid != tc_pid()) {
        stream_forget(s);
    } else if (s->state == S_OPEN) {
        stream_drain(s, 1);
        stream_release(s);
        s->state = S_CLOSED;
    }
    s->closed = 1;
}

static void add_metadata(struct stream *s, const char *key, const char *value)
{
    grpc_metadata *m = &s->metadata[s->n_metadata++];

    memset(m, 0, sizeof *m);
    m->key = grpc_slice_from_static_string(key);
    m->value = grpc_slice_from_copied_string(value);
}

/* Starts the call: sends the request and half-closes, and asks for the
 * status. Returns 0 with an error set when the call could not start. */
static int stream_start(struct stream *s, struct channel *c, const char *method, const char *req,
                        size_t req_len)
{
    char path[128];
    grpc_op ops[4];
    grpc_op status_op;

    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    if (!s->cq) {
        stream_set_error(s, TC_ETRANSPORT, -1, "cannot create a completion queue");
        stream_release(s); /* unlinks it: the channel must not keep a stream that is over */
        return 0;
    }
    snprintf(path, sizeof path, "/%s/%s", v3__simple__descriptor.name, method);
    grpc_slice method_slice = grpc_slice_from_copied_string(path);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
    s->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, method_slice,
                                       NULL, deadline, NULL);
    grpc_slice_unref(method_slice);
    if (!s->call) {
        stream_set_error(s, TC_ETRANSPORT, -1, "cannot create a call");
        stream_release(s);
        return 0;
    }
    grpc_metadata_array_init(&s->initial_md);
    grpc_metadata_array_init(&s->trailing_md);
    s->details = grpc_empty_slice();
    s->status = GRPC_STATUS_UNKNOWN;

    add_metadata(s, "authorization", c->key);
    if (c->language)
        add_metadata(s, "preferred-language", c->language);
    grpc_slice body = grpc_slice_from_copied_buffer(req, req_len);
    s->request = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);

    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = s->n_metadata;
    ops[0].data.send_initial_metadata.metadata = s->metadata;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    if (grpc_call_start_batch(s->call, ops, 4, &s->start_pending, NULL) != GRPC_CALL_OK) {
        stream_set_error(s, TC_ETRANSPORT, -1, "cannot start the call");
        stream_release(s);
        return 0;
    }
    s->start_pending = 1;

    memset(&status_op, 0, sizeof status_op);
    status_op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    status_op.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    status_op.data.recv_status_on_client.status = &s->status;
    status_op.data.recv_status_on_client.status_details = &s->details;
    status_op.data.recv_status_on_client.error_string = &s->error_string;
    if (grpc_call_start_batch(s->call, &status_op, 1, &s->status_pending, NULL) != GRPC_CALL_OK) {
        stream_drain(s, 1);
        stream_set_error(s, TC_ETRANSPORT, -1, "cannot start the call");
        stream_release(s);
        return 0;
    }
    s->status_pending = 1;
    return 1;
}

/* Receives the next message into s->payload. Returns 1 with a message, 0 at
 * the end of the stream or when the call failed. */
static int stream_receive(struct stream *s)
{
    grpc_op op;
    grpc_byte_buffer_reader reader;

    if (s->start_pending) {
        wait_for(s, &s->start_pending); /* a failure shows in the status */
        s->start_pending = 0;
    }
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->response;
    if (grpc_call_start_batch(s->call, &op, 1, &s->response, NULL) != GRPC_CALL_OK) {
        grpc_call_cancel(s->call, NULL); /* so that the status comes at once */
        return 0;
    }
    if (!wait_for(s, &s->response) || !s->response)
        return 0;
    if (!grpc_byte_buffer_reader_init(&reader, s->response)) {
        grpc_byte_buffer_destroy(s->response);
        s->response = NULL;
        return 0;
    }
    /* A message of one slice (a seat, an event: nearly all of them) is
     * decoded where it is, with a reference to the slice; readall would
     * copy it into a new one. Anything else is read whole. */
    grpc_slice *first = NULL, *second = NULL;
    if (grpc_byte_buffer_reader_peek(&reader, &first) &&
        !grpc_byte_buffer_reader_peek(&reader, &second)) {
        s->payload = grpc_slice_ref(*first);
    } else {
        grpc_byte_buffer_reader_destroy(&reader);
        if (!grpc_byte_buffer_reader_init(&reader, s->response)) {
            grpc_byte_buffer_destroy(s->response);
            s->response = NULL;
            return 0;
        }
        s->payload = grpc_byte_buffer_reader_readall(&reader);
    }
    s->have_payload = 1;
    grpc_byte_buffer_reader_destroy(&reader);
    grpc_byte_buffer_destroy(s->response);
    s->response = NULL;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Stream methods                                                             */

static struct stream *check_stream(lua_State *L, int arg)
{
    return luaL_checkudata(L, arg, TC_STREAM_MT);
}

/* While its call runs, a stream keeps its owner alive: in
 * `for seat in tc.new(opts):seats(req) do` nothing else refers to the
 * client, whose collection would close the channel under the loop. */
static void stream_unanchor(lua_State *L, struct stream *s)
{
    if (s->anchor != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, s->anchor);
        s->anchor = LUA_NOREF;
    }
}

static void stream_untrace(lua_State *L, struct stream *s)
{
    if (s->trace != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, s->trace);
        s->trace = LUA_NOREF;
    }
}

/* Calls the stream's trace function, once (see "Trace" above); status < 0
 * is nil. An error of the trace function is raised, as for REST. */
static void stream_trace(lua_State *L, struct stream *s, int status)
{
    char path[128];
    double now;

    if (s->trace == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->trace);
    stream_untrace(L, s);
    if (!tc_now(&now))
        now = s->started;
    snprintf(path, sizeof path, "/%s/%s", v3__simple__descriptor.name, s->method);
    lua_pushliteral(L, "GRPC");
    lua_pushstring(L, path);
    lua_pushnil(L);
    if (status >= 0)
        lua_pushinteger(L, status);
    else
        lua_pushnil(L);
    lua_pushnumber(L, (lua_Number)(now - s->started));
    lua_call(L, 5, 0);
}

/***
 * The catalogue streams of the reference (module ticketscloud), made here.
 * @module ticketscloud
 */

/***
 * The stream of a catalogue call (`ticketscloud.Stream`), returned by @{Client:events},
 * @{Client:seats} and the other catalogue methods: one server-streaming gRPC call.
 *
 * Calling the stream, as a `for` loop does, is @{CatalogueStream:next}: it decodes the next
 * message into a plain table, so memory stays flat however long the listing is. A `for` loop
 * stops at the first `nil` either way, so check @{CatalogueStream:error} after it: a listing
 * is never cut short silently.
 *
 * The client's `timeout` is the stream's one deadline, for the whole listing, including the
 * time the loop spends on each message. Errors carry `code`, the gRPC status name, and the
 * server's status message with the key replaced by `<key>`, cut at 240 bytes. A stream keeps
 * its client alive while its call runs; closing the client closes its streams. After
 * `fork()`, a stream inherited by the child refuses its calls (kind `"invalid"`).
 * @type CatalogueStream
 * @usage
 * local seats = assert(client:seats{ event = EVENT, status = "VACANT" })
 * for seat in seats do print(seat.ticket, seat.sector, seat.row, seat.number) end
 * local err = seats:error()
 * if err then print(err.code, err) end   -- e.g. DEADLINE_EXCEEDED
 */

/***
 * The next message, `nil` at the end, or `nil, err` (then the same error on every call).
 * Calling the stream is the same.
 * @function CatalogueStream:next
 * @treturn table the next message, a plain table (docs/catalogue-client.md, "Messages")
 * @return[2] nil at the end
 * @return[3] nil
 * @treturn[3] Error err: the call's gRPC status (kinds `auth`, `timeout`, `transport`,
 *   `not_found`, `api`), a malformed message (kind `"transport"`), or a closed stream or
 *   client (kind `"invalid"`, `"closed"`)
 * @usage
 * local event, err = events:next()   -- or events()
 */
/* stream() / stream:next() -> message | nil (the end) | nil, err */
static int stream_next_of(lua_State *L, struct stream *s)
{
    if (s->pid != tc_pid())
        return tc_fail(L, TC_EINVALID, -1, FOREIGN, (int)s->pid);
    if (s->have_payload) { /* left over by a decoding that raised */
        grpc_slice_unref(s->payload);
        s->have_payload = 0;
    }
    if (s->closed || s->state != S_OPEN) {
        stream_unanchor(L, s);
        stream_untrace(L, s); /* cancelled with its channel: not traced */
    }
    if (s->closed)
        return tc_fail(L, TC_EINVALID, -1, "closed");
    switch (s->state) {
    case S_CLOSED:
        return tc_fail(L, TC_EINVALID, -1, "closed");
    case S_DONE:
        lua_pushnil(L);
        return 1;
    case S_FAILED:
        return push_stream_error(L, s);
    case S_OPEN:
        break;
    }
    if (!stream_receive(s)) {
        stream_finish(s);
        stream_unanchor(L, s);
        stream_trace(L, s, s->state == S_DONE ? 0 : s->err_status);
        if (s->state == S_DONE) {
            lua_pushnil(L);
            return 1;
        }
        return push_stream_error(L, s);
    }
    /* The names of the messages' fields, kept as the stream's user value:
     * the decoder need not look them up in the registry once per message.
     * What is returned is the top of the stack, the message. */
    tc_getuservalue(L, 1);
    if (!tc_codec_decode(L, s->output, GRPC_SLICE_START_PTR(s->payload),
                         GRPC_SLICE_LENGTH(s->payload), lua_gettop(L), &s->decoder)) {
        grpc_slice_unref(s->payload);
        s->have_payload = 0;
        stream_drain(s, 1);
        stream_release(s);
        stream_unanchor(L, s);
        char message[128];
        snprintf(message, sizeof message, "malformed %s message from the server",
                 s->output->name);
        stream_set_error(s, TC_ETRANSPORT, -1, message);
        stream_trace(L, s, -1);
        return push_stream_error(L, s);
    }
    grpc_slice_unref(s->payload);
    s->have_payload = 0;
    return 1;
}

/***
 * The rest of the stream at once, undecoded: a packed listing for a process or a thread to
 * hand on (ticketscloud.nginx does, from nginx's thread pool); `core.decode_at` reads it.
 * It blocks until the stream is over, within its deadline; how it ended is
 * @{CatalogueStream:error}, as after a loop.
 * @function CatalogueStream:read_all
 * @tparam integer max_bytes the most the whole listing may hold; past it the stream is
 *   closed and nothing is returned
 * @tparam[opt] integer chunk_bytes the size of each chunk (1 MiB by default)
 * @treturn {string,...} the chunks: whole messages, each after its length
 * @treturn integer the number of messages
 * @treturn string their type, such as `"v3.Seat"`
 * @return[2] nil
 * @treturn[2] Error err, kind `"transport"` (a listing larger than `max_bytes`, a failed call)
 * @usage
 * local chunks, n, type_name = assert(client:seats{ event = EVENT }):read_all(32 * 2^20)
 */
/* stream:read_all(max_bytes [, chunk_bytes]) -> chunks, count, type_name | nil, err
 * The rest of the stream, undecoded, as a packed listing: each message's
 * bytes after their length (tc_codec_put_length; core.decode_at reads
 * them), cut into chunks: a list of strings of whole messages, each at
 * most chunk_bytes (default CHUNK) or one message larger than that,
 * so that neither this Lua state nor the one the chunks are copied to needs
 * one block of the listing's size. With them come the number of messages and
 * their type ("v3.Seat"). It blocks until the stream is over, which the
 * deadline bounds; how it ended is stream:error(), as after a loop, and
 * trace is called as next() calls it. A listing that would pass max_bytes
 * in all closes the stream (trace: status nil) and returns nil, err (kind
 * "transport"): none of it is returned. */
static int stream_read_all(lua_State *L)
{
    struct stream *s = check_stream(L, 1);
    lua_Integer max = luaL_checkinteger(L, 2);
    lua_Integer chunk = luaL_optinteger(L, 3, CHUNK);
    char *buf = NULL;
    size_t used = 0, size = 0, total = 0;
    lua_Integer count = 0;
    int chunks = 0;

    luaL_argcheck(L, max > 0, 2, "a positive number of bytes expected");
    luaL_argcheck(L, chunk > 0, 3, "a positive number of bytes expected");
    lua_settop(L, 3);
    if (s->pid != tc_pid())
        return tc_fail(L, TC_EINVALID, -1, FOREIGN, (int)s->pid);
    if (s->have_payload) { /* left over by a call that raised */
        grpc_slice_unref(s->payload);
        s->have_payload = 0;
    }
    if (s->closed || s->state == S_CLOSED) {
        stream_unanchor(L, s);
        stream_untrace(L, s);
        return tc_fail(L, TC_EINVALID, -1, "closed");
    }
    lua_newtable(L); /* stream, max, chunk, chunks */
    lua_pushnil(L);  /* stream, max, chunk, chunks, buffer (a userdata: Lua owns it) */
    while (s->state == S_OPEN) {
        if (!stream_receive(s)) {
            stream_finish(s);
            stream_unanchor(L, s);
            stream_trace(L, s, s->state == S_DONE ? 0 : s->err_status);
            break;
        }
        uint8_t head[TC_LENGTH_MAX];
        size_t len = GRPC_SLICE_LENGTH(s->payload);
        size_t head_len = tc_codec_put_length(head, len);
        if (len > (size_t)max - total || head_len > (size_t)max - total - len) {
            /* Past the cap: the call is cancelled, as by close(). */
            grpc_slice_unref(s->payload);
            s->have_payload = 0;
            stream_close(s);
            stream_unanchor(L, s);
            stream_trace(L, s, -1);
            return tc_fail(L, TC_ETRANSPORT, -1,
                           "the %s listing is larger than %lld bytes (%lld messages read)",
                           s->method, (long long)max, (long long)count);
        }
        size_t need = head_len + len;
        if (used > 0 && used + need > (size_t)chunk) { /* the chunk is full */
            lua_pushlstring(L, buf, used);
            lua_rawseti(L, 4, ++chunks);
            used = 0;
        }
        /* If Lua raises below (out of memory), Lua frees its buffers and
         * the next call on the stream the payload. */
        if (need > (size_t)chunk) { /* a message larger than a chunk: one of its own */
            char *one = lua_newuserdata(L, need); /* ..., chunks, buffer, one */
            memcpy(one, head, head_len);
            memcpy(one + head_len, GRPC_SLICE_START_PTR(s->payload), len);
            lua_pushlstring(L, one, need);
            lua_rawseti(L, 4, ++chunks);
            lua_pop(L, 1);
        } else {
            if (used + need > size) { /* grow the buffer, up to a chunk */
                size_t want = size ? size * 2 : 16 * 1024;
                while (want < used + need)
                    want *= 2;
                if (want > (size_t)chunk)
                    want = (size_t)chunk; /* still >= used + need */
                char *bigger = lua_newuserdata(L, want);
                if (used)
                    memcpy(bigger, buf, used);
                lua_replace(L, 5);
                buf = bigger;
                size = want;
            }
            memcpy(buf + used, head, head_len);
            memcpy(buf + used + head_len, GRPC_SLICE_START_PTR(s->payload), len);
            used += need;
        }
        total += need;
        grpc_slice_unref(s->payload);
        s->have_payload = 0;
        count++;
    }
    if (used > 0) {
        lua_pushlstring(L, buf, used);
        lua_rawseti(L, 4, ++chunks);
    }
    lua_pushvalue(L, 4);
    lua_pushinteger(L, count);
    lua_pushstring(L, s->output->name);
    return 3;
}

static int stream_next(lua_State *L)
{
    return stream_next_of(L, check_stream(L, 1));
}

/* The for-loop calls the stream with (state, control): ignore them. The
 * upvalue is the stream metatable (core.c): comparing with it checks the
 * type without luaL_checkudata's lookup by name, once per message. */
int tc_stream_call(lua_State *L)
{
    lua_settop(L, 1);
    if (!lua_getmetatable(L, 1) || !lua_rawequal(L, -1, lua_upvalueindex(1)))
        luaL_checkudata(L, 1, TC_STREAM_MT); /* raises */
    lua_settop(L, 1);
    return stream_next_of(L, lua_touserdata(L, 1));
}

/***
 * The error that ended the stream: `nil` while it runs and after a normal end. After
 * @{CatalogueStream:close} it still reports what ended the stream before.
 * @function CatalogueStream:error
 * @treturn ?Error the error, or `nil`
 * @usage
 * for event in events do print(event.name) end
 * local err = events:error()
 * if err then error(tostring(err)) end
 */
/* stream:error() -> the error that ended the stream, or nil */
static int stream_error(lua_State *L)
{
    struct stream *s = check_stream(L, 1);

    if (s->state != S_FAILED) {
        lua_pushnil(L);
        return 1;
    }
    push_stream_error(L, s);
    return 1;
}

/* __gc and __close (and, after tracing, close). Idempotent. */
int tc_stream_close(lua_State *L)
{
    struct stream *s = check_stream(L, 1);

    if (s->pid != tc_pid())
        stream_forget(s);
    if (s->have_payload) {
        grpc_slice_unref(s->payload);
        s->have_payload = 0;
    }
    stream_close(s);
    stream_unanchor(L, s);
    stream_untrace(L, s);
    lua_pushboolean(L, 1);
    return 1;
}

/***
 * Cancels the call early. Calls of the stream after it return `nil, err` (kind `"invalid"`,
 * `"closed"`). Idempotent; it is also the stream's `__gc` and, on Lua 5.4, its `__close`.
 * A stream closed before its end calls the client's `trace` with status `nil`.
 * @function CatalogueStream:close
 * @treturn boolean `true`
 * @usage
 * local events = assert(client:events{ status = "PUBLIC" })
 * local first = events()
 * events:close()   -- the rest is not wanted
 */
/* stream:close() -> true: closes it as __gc does, and a stream closed
 * before its end calls its trace (status nil). */
static int stream_close_method(lua_State *L)
{
    struct stream *s = check_stream(L, 1);
    int ref = s->trace;

    if (s->state != S_OPEN || s->closed || s->pid != tc_pid())
        return tc_stream_close(L);
    s->trace = LUA_NOREF; /* kept from tc_stream_close, which releases it */
    lua_settop(L, 1);
    tc_stream_close(L);
    s->trace = ref;
    stream_trace(L, s, -1);
    lua_pushboolean(L, 1);
    return 1;
}

int tc_stream_tostring(lua_State *L)
{
    lua_pushfstring(L, "%s (%p)", TC_STREAM_MT, (void *)check_stream(L, 1));
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Channel                                                                    */

static struct channel *check_channel(lua_State *L, int arg)
{
    return luaL_checkudata(L, arg, TC_CHANNEL_MT);
}

/* Reads a PEM file into a NUL-terminated buffer, or NULL with errno set. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;

    if (!f)
        return NULL;
    buf = malloc(MAX_CA_FILE + 1);
    if (buf) {
        len = fread(buf, 1, MAX_CA_FILE + 1, f);
        if (ferror(f) || len > MAX_CA_FILE) {
            free(buf);
            buf = NULL;
            errno = ferror(f) ? EIO : EFBIG;
        } else {
            buf[len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static int channel_close_(struct channel *c)
{
    int own = c->pid == tc_pid(); /* else a child after fork: no gRPC call */

    if (!c->ch)
        return 0;
    while (c->streams)
        stream_close(c->streams);
    if (own)
        grpc_channel_destroy(c->ch);
    c->ch = NULL;
    tc_wipe_free(c->key);
    c->key = NULL;
    free(c->language);
    c->language = NULL;
    /* Blocking: when this was the last channel, gRPC's own threads are gone
     * when close returns (plain grpc_shutdown may finish its clean-up in a
     * thread of its own, still running when the process exits). */
    if (own)
        grpc_shutdown_blocking();
    return 1;
}

/* core.channel(options) -> channel | nil, err: options are the client's
 * (simple, insecure, key, language, ca_file, timeout; see options.c). */
int core_channel(lua_State *L)
{
    struct tc_options o;
    char buf[320], target[300];
    const char *problem;
    int plain, tls;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    tc_read_options(L, 1, &o, "channel");
    if ((problem = tc_check_options(&o, buf, sizeof buf, &plain)) != NULL)
        return tc_fail(L, TC_EINVALID, -1, "%s", problem);
    if (o.proxy && (problem = tc_grpc_proxy_problem(o.proxy)) != NULL)
        return tc_fail(L, TC_EINVALID, -1, "proxy: %s", problem);
    tc_grpc_target(o.simple, o.insecure, target, sizeof target, &tls); /* checked above */
    const char *key = o.key, *language = o.language, *ca_file = o.ca_file, *proxy = o.proxy;
    lua_Number timeout = o.timeout;
    char agent[TC_USER_AGENT_MAX];
    tc_user_agent(&o, agent, sizeof agent);

    /* Everything that can raise comes before the C resources. */
    struct channel *c = lua_newuserdata(L, sizeof *c); /* opts, channel */
    memset(c, 0, sizeof *c);
    c->pid = tc_pid();
    luaL_getmetatable(L, TC_CHANNEL_MT);
    lua_setmetatable(L, -2);
    char *pem = NULL;
    if (ca_file) {
        pem = read_file(ca_file);
        if (!pem)
            return tc_fail(L, TC_EINVALID, -1, "ca_file: cannot read %s: %s", ca_file,
                           strerror(errno));
    }
    c->timeout_ms = (long)(timeout * 1000 + 0.5);
    if (c->timeout_ms < 1)
        c->timeout_ms = 1;
    c->key = strdup(key);
    c->language = language ? strdup(language) : NULL;
    if (!c->key || (language && !c->language)) {
        tc_wipe_free(c->key);
        c->key = NULL;
        free(c->language);
        c->language = NULL;
        free(pem);
        return tc_fail(L, TC_ETRANSPORT, -1, "out of memory");
    }

    grpc_init();
    grpc_channel_credentials *creds =
        tls ? grpc_ssl_credentials_create(pem, NULL, NULL, NULL) : grpc_insecure_credentials_create();
    free(pem);
    /* The proxy option, or none: like REST, the channel ignores grpc_proxy,
     * https_proxy and http_proxy in the environment. */
    grpc_arg args[4];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = MAX_MESSAGE;
    args[1].type = GRPC_ARG_STRING;
    args[1].key = GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[1].value.string = agent;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_ENABLE_HTTP_PROXY;
    args[2].value.integer = proxy != NULL;
    args[3].type = GRPC_ARG_STRING;
    args[3].key = GRPC_ARG_HTTP_PROXY;
    args[3].value.string = (char *)proxy;
    grpc_channel_args channel_args = { proxy ? 4 : 3, args };
    c->ch = creds ? grpc_channel_create(target, creds, &channel_args) : NULL;
    if (creds)
        grpc_channel_credentials_release(creds);
    if (!c->ch) {
        tc_wipe_free(c->key);
        c->key = NULL;
        free(c->language);
        c->language = NULL;
        grpc_shutdown_blocking();
        return tc_fail(L, TC_ETRANSPORT, -1, "cannot create a gRPC channel to %s", target);
    }
    return 1;
}

/* channel:stream(method, request [, owner [, trace]]) -> stream | nil, err
 * owner (the client; default the channel) is kept alive while the call
 * runs; trace, a function, is called when it is over ("Trace" above). */
static int channel_stream(lua_State *L)
{
    struct channel *c = check_channel(L, 1);
    const char *method = luaL_checkstring(L, 2);
    const ProtobufCMethodDescriptor *m = protobuf_c_service_descriptor_get_method_by_name(
        &v3__simple__descriptor, method);
    char err[256];
    size_t len;

    if (!m)
        return luaL_argerror(L, 2, lua_pushfstring(L, "no method '%s' in tc-simple", method));
    luaL_checktype(L, 3, LUA_TTABLE);
    if (!lua_isnoneornil(L, 5))
        luaL_checktype(L, 5, LUA_TFUNCTION);
    lua_settop(L, 5); /* channel, method, request, owner, trace */
    int traced = !lua_isnil(L, 5);
    lua_insert(L, 4); /* channel, method, request, trace, owner: bytes go at 6 */
    if (lua_isnil(L, 5)) {
        lua_pushvalue(L, 1);
        lua_replace(L, 5);
    }
    if (!c->ch)
        return tc_fail(L, TC_EINVALID, -1, "closed");
    if (c->pid != tc_pid())
        return tc_fail(L, TC_EINVALID, -1, FOREIGN, (int)c->pid);
    if (!tc_codec_encode(L, 3, m->input, err, sizeof err)) /* ..., owner, bytes */
        return tc_fail(L, TC_EINVALID, -1, "%s", err);
    const char *bytes = lua_tolstring(L, 6, &len);

    struct stream *s = lua_newuserdata(L, sizeof *s); /* ..., owner, bytes, stream */
    memset(s, 0, sizeof *s);
    s->pid = tc_pid();
    s->anchor = LUA_NOREF;
    s->trace = LUA_NOREF;
    s->state = S_OPEN;
    s->output = m->output;
    s->method = m->name;
    if (!tc_now(&s->started))
        s->started = 0;
    luaL_getmetatable(L, TC_STREAM_MT);
    lua_setmetatable(L, -2);
    tc_codec_names(L, s->output); /* ..., stream, names (stream_next_of) */
    tc_setuservalue(L, -2);

    /* Link it first: if starting fails, release unlinks it again. */
    s->channel = c;
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
    if (!stream_start(s, c, m->name, bytes, len))
        return push_stream_error(L, s);
    lua_pushvalue(L, 5);
    s->anchor = luaL_ref(L, LUA_REGISTRYINDEX); /* ..., owner, bytes, stream */
    if (traced) {
        lua_pushvalue(L, 4);
        s->trace = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 1;
}

/* channel:close() -> true; also __gc and __close. Idempotent. */
int tc_channel_close(lua_State *L)
{
    channel_close_(check_channel(L, 1));
    lua_pushboolean(L, 1);
    return 1;
}

int tc_channel_tostring(lua_State *L)
{
    lua_pushfstring(L, "%s (%p)", TC_CHANNEL_MT, (void *)check_channel(L, 1));
    return 1;
}

const luaL_Reg tc_channel_methods[] = {
    { "stream", channel_stream },
    { "close", tc_channel_close },
    { NULL, NULL },
};

const luaL_Reg tc_stream_methods[] = {
    { "next", stream_next },
    { "read_all", stream_read_all },
    { "error", stream_error },
    { "close", stream_close_method },
    { NULL, NULL },
};
