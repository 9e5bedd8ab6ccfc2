/*
 * grpc.c: the tc-simple gRPC listener of tc-sandbox.
 *
 * A gRPC C core server with one completion queue, driven by one thread of
 * our own, and a few worker threads that build the replies. Calls are
 * generic (grpc_server_request_call); each one is a small state machine on
 * the queue, so many calls progress side by side and a long `Seats` stream
 * does not hold up a short `Events` call:
 *
 *   accepted ──> RECV_MESSAGE ──> (answer built) ──> SEND_MESSAGE ... ──>
 *   SEND_STATUS_FROM_SERVER, with RECV_CLOSE_ON_SERVER pending throughout.
 *
 * A health Watch (SHAPE_WATCH) holds its call open after its message; a
 * reflection stream (SHAPE_BIDI) reads its next request after each answer
 * and sends the status once the client is done (grpc_methods.h).
 *
 * At most one SEND_MESSAGE batch is in flight per call. A call whose last
 * send completed waits on the listener's ready list; the next sends go out
 * in rounds, one message per ready call, each round after a poll that finds
 * the queue empty. Sends to a fast reader complete at once, so without the
 * rounds the queue would never run dry, the thread would never poll, and a
 * new connection would wait for the whole stream to end.
 *
 * Building a reply (grpc_methods.c) is the only work that can take long:
 * a call whose request has arrived goes to the workers' job list, and the
 * queue's thread takes it back from their done list, polling the queue
 * every millisecond while any call is being built. So one heavy call holds
 * one worker, never the queue or the other calls. At most MAX_CALLS calls
 * are open at once; more get RESOURCE_EXHAUSTED.
 *
 * A call is freed when none of its batches is pending (a call being built
 * counts as one), and it is not on the ready list. What a call answers comes from grpc_methods.c; this file owns
 * the transport, the metadata and the status. With --faults, a call asks
 * faults.c for its fault once its reply is built; `unavailable` cuts the
 * reply short (cut_short below).
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults.h"
#include "grpc.h"
#include "grpc_methods.h"
#include "sandbox.h"
#include "tls.h"

/* The limits of docs/sandbox.md ("Limits"). */
#define WORKERS 3                         /* threads building replies */
#define MAX_CALLS 512                     /* open calls, all connections together */
#define MAX_MESSAGE (4 * 1024 * 1024)     /* a request message */
#define MAX_METADATA (16 * 1024)          /* a request's metadata */
#define MAX_STREAMS 100                   /* calls at once on one connection */

/* What a completion on the queue stands for. */
enum tag_kind { TAG_ACCEPT, TAG_READ, TAG_WRITE, TAG_STATUS, TAG_CLOSE, TAG_SHUTDOWN };

struct call;

/* Completion-queue tags are pointers to these, embedded in their owner. */
struct tag {
    enum tag_kind kind;
    struct call *call;
};

struct grpc_listener {
    struct sandbox *sb;
    struct methods *methods;
    struct faults *faults; /* NULL without --faults */
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t thread;
    atomic_bool stopping;
    struct tag shutdown;
    struct call *ready, *ready_tail; /* calls waiting to send their next message */
    unsigned open;                   /* calls accepted and not freed */

    /* The workers: calls to build (jobs) and built (done), under lock;
     * building counts the calls handed over and not yet taken back (the
     * queue's thread alone uses it). */
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct call *jobs, *jobs_tail, *done;
    bool workers_stop;
    pthread_t workers[WORKERS];
    size_t nworkers;
    unsigned building;
};

struct call {
    struct grpc_listener *l;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    grpc_byte_buffer *request;
    grpc_byte_buffer *sending;
    const struct method *method; /* NULL: not one we serve */
    bool client_done;            /* SHAPE_BIDI: the client sent its last message */
    struct reply reply;
    size_t next;           /* index of the next message of reply to send */
    bool metadata_sent;    /* initial metadata goes with the first batch */
    bool dead;             /* failed or cancelled: start no more batches */
    int pending;           /* batches started and not completed yet */
    int cancelled;         /* from RECV_CLOSE_ON_SERVER */
    bool queued;           /* on the listener's ready list */
    bool counted;          /* accepted: counted in open */
    struct call *next_ready;
    struct call *next_job; /* on the jobs or done list */
    grpc_slice status_details;
    struct tag accept, read, write, status, close;
};

static void call_free(struct call *c)
{
    if (c->counted) c->l->open--;
    if (c->call) grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->request_md);
    if (c->request) grpc_byte_buffer_destroy(c->request);
    if (c->sending) grpc_byte_buffer_destroy(c->sending);
    reply_free(&c->reply);
    grpc_slice_unref(c->status_details);
    free(c);
}

static struct call *call_new(struct grpc_listener *l)
{
    struct call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->l = l;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->request_md);
    c->status_details = grpc_empty_slice();
    c->accept = (struct tag){TAG_ACCEPT, c};
    c->read = (struct tag){TAG_READ, c};
    c->write = (struct tag){TAG_WRITE, c};
    c->status = (struct tag){TAG_STATUS, c};
    c->close = (struct tag){TAG_CLOSE, c};
    return c;
}

/* Asks the server for the next incoming call. */
static void accept_next(struct grpc_listener *l)
{
    if (atomic_load(&l->stopping)) return;
    struct call *c = call_new(l);
    if (!c) {
        fprintf(stderr, "tc-sandbox: grpc: out of memory, not accepting calls\n");
        return;
    }
    c->pending = 1;
    if (grpc_server_request_call(l->server, &c->call, &c->details, &c->request_md, l->cq, l->cq,
                                 &c->accept) != GRPC_CALL_OK) {
        fprintf(stderr, "tc-sandbox: grpc: cannot accept calls\n");
        call_free(c);
    }
}

static void call_fail(struct call *c)
{
    if (!c->dead) grpc_call_cancel(c->call, NULL);
    c->dead = true;
}

static void start_batch(struct call *c, grpc_op *ops, size_t n, struct tag *tag)
{
    if (grpc_call_start_batch(c->call, ops, n, tag, NULL) == GRPC_CALL_OK) {
        c->pending++;
    } else {
        call_fail(c);
    }
}

/* Sends the next message of the reply, or the status after the last one. */
static void send_next(struct call *c)
{
    grpc_op ops[2];
    size_t n = 0;

    if (c->dead) return;
    bool all_sent = c->next >= c->reply.n, ok = c->reply.status == GRPC_STATUS_OK;
    enum method_shape shape = c->method ? c->method->shape : SHAPE_STREAM;
    /* A watch stays open once its messages are out: RECV_CLOSE_ON_SERVER
     * ends it when the client cancels or the server stops. */
    if (all_sent && ok && shape == SHAPE_WATCH) return;
    memset(ops, 0, sizeof ops);
    if (!c->metadata_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->metadata_sent = true;
    }
    if (all_sent && ok && shape == SHAPE_BIDI && !c->client_done) {
        /* This request is answered: read the client's next one. */
        ops[n].op = GRPC_OP_RECV_MESSAGE;
        ops[n++].data.recv_message.recv_message = &c->request;
        start_batch(c, ops, n, &c->read);
        return;
    }
    if (c->next < c->reply.n) {
        /* The byte buffer takes its own reference; drop ours as we go so a
         * long stream frees its memory while it is sent. */
        grpc_slice *msg = &c->reply.msgs[c->next++];
        c->sending = grpc_raw_byte_buffer_create(msg, 1);
        grpc_slice_unref(*msg);
        *msg = grpc_empty_slice();
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->sending;
        start_batch(c, ops, n, &c->write);
        return;
    }
    if (c->reply.message) c->status_details = grpc_slice_from_static_string(c->reply.message);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = c->reply.status;
    ops[n++].data.send_status_from_server.status_details =
        c->reply.message ? &c->status_details : NULL;
    start_batch(c, ops, n, &c->status);
}

/* Puts the call at the end of the ready list: it sends in the next round. */
static void enqueue(struct call *c)
{
    struct grpc_listener *l = c->l;
    c->queued = true;
    c->next_ready = NULL;
    if (l->ready_tail) l->ready_tail->next_ready = c;
    else l->ready = c;
    l->ready_tail = c;
}

static void release_if_done(struct call *c)
{
    if (c->pending == 0 && !c->queued) call_free(c);
}

/* One message (or the status) for every call that was ready when the round
 * began; calls that become ready meanwhile wait for the next round. */
static void send_round(struct grpc_listener *l)
{
    struct call *c = l->ready;
    l->ready = l->ready_tail = NULL;
    while (c) {
        struct call *next = c->next_ready;
        c->queued = false;
        c->next_ready = NULL;
        if (atomic_load(&l->stopping)) call_fail(c);
        send_next(c);
        release_if_done(c);
        c = next;
    }
}

/* The value of a request metadata entry, or NULL. */
static const grpc_slice *metadata_value(const grpc_metadata_array *md, const char *key)
{
    for (size_t i = 0; i < md->count; i++)
        if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0) return &md->metadata[i].value;
    return NULL;
}

/* The `authorization` entry carries the bare API key. It is never logged. */
static bool authorized(struct call *c)
{
    const grpc_slice *v = metadata_value(&c->request_md, "authorization");
    if (!v) return false;
    size_t len = GRPC_SLICE_LENGTH(*v);
    const char *bytes = (const char *)GRPC_SLICE_START_PTR(*v);
    if (len == 0 || memchr(bytes, '\0', len)) return false;
    char *key = grpc_slice_to_c_string(*v);
    bool ok = sandbox_key_ok(c->l->sb, key);
    gpr_free(key);
    return ok;
}

/* --faults: an `unavailable` fault keeps the first half of the reply's
 * messages, rounded down (so none of a reply of one), and ends the stream
 * with UNAVAILABLE, as a server that goes away mid-listing does. Whatever
 * the call would have answered, an error included, is cut the same way. */
static void cut_short(struct call *c)
{
    const grpc_slice *path = &c->details.method;
    enum fault_route route = faults_grpc_route((const char *)GRPC_SLICE_START_PTR(*path),
                                               GRPC_SLICE_LENGTH(*path));
    if (route == ROUTE_NONE) return;
    char logged[64];
    snprintf(logged, sizeof logged, "%.*s", (int)GRPC_SLICE_LENGTH(*path),
             (const char *)GRPC_SLICE_START_PTR(*path));
    if (faults_pick(c->l->faults, route, "gRPC", logged).kind != FAULT_UNAVAILABLE) return;
    size_t keep = c->reply.n / 2;
    for (size_t i = keep; i < c->reply.n; i++) grpc_slice_unref(c->reply.msgs[i]);
    c->reply.n = keep;
    c->reply.status = GRPC_STATUS_UNAVAILABLE;
    c->reply.message = "Unavailable (injected fault)";
}

/* The request has arrived: decide the reply (on a worker, or on the
 * queue's thread when there is none). `preferred-language` is accepted;
 * the catalog has one language. */
static void build_reply(struct call *c)
{
    const struct method *method = c->method;
    reply_free(&c->reply); /* a stream's previous answer is sent */
    c->next = 0;
    c->reply.status = GRPC_STATUS_OK;
    if (!method) {
        c->reply.status = GRPC_STATUS_UNIMPLEMENTED;
        c->reply.message = "unknown method";
    } else if (!method->keyless && !authorized(c)) {
        c->reply.status = GRPC_STATUS_UNAUTHENTICATED;
        c->reply.message = "invalid API key";
    } else if (!c->request) {
        c->reply.status = GRPC_STATUS_INVALID_ARGUMENT;
        c->reply.message = "no request message";
    } else {
        grpc_byte_buffer_reader reader;
        if (!grpc_byte_buffer_reader_init(&reader, c->request)) {
            c->reply.status = GRPC_STATUS_INVALID_ARGUMENT;
            c->reply.message = "cannot read the request";
        } else {
            grpc_slice bytes = grpc_byte_buffer_reader_readall(&reader);
            grpc_byte_buffer_reader_destroy(&reader);
            methods_run(c->l->methods, method, GRPC_SLICE_START_PTR(bytes),
                        GRPC_SLICE_LENGTH(bytes), &c->reply);
            grpc_slice_unref(bytes);
        }
    }
    /* read: a stream's next message goes in its place */
    if (c->request) grpc_byte_buffer_destroy(c->request);
    c->request = NULL;
    if (c->l->faults) cut_short(c);
}

/* Hands the call to the workers; it is back on the done list once built. */
static void submit(struct call *c)
{
    struct grpc_listener *l = c->l;
    if (l->nworkers == 0) {
        build_reply(c);
        enqueue(c);
        return;
    }
    c->pending++;
    l->building++;
    c->next_job = NULL;
    pthread_mutex_lock(&l->lock);
    if (l->jobs_tail) l->jobs_tail->next_job = c;
    else l->jobs = c;
    l->jobs_tail = c;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->lock);
}

static void *worker(void *arg)
{
    struct grpc_listener *l = arg;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->jobs && !l->workers_stop) pthread_cond_wait(&l->work, &l->lock);
        struct call *c = l->jobs;
        if (!c) break; /* stopping, and nothing left to build */
        l->jobs = c->next_job;
        if (!l->jobs) l->jobs_tail = NULL;
        bool stop = l->workers_stop;
        pthread_mutex_unlock(&l->lock);
        if (!stop) build_reply(c); /* stopping: the call is failed unbuilt */
        pthread_mutex_lock(&l->lock);
        c->next_job = l->done;
        l->done = c;
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

/* Takes the built calls back: they send in the next round. */
static void take_done(struct grpc_listener *l)
{
    if (l->building == 0) return;
    pthread_mutex_lock(&l->lock);
    struct call *c = l->done;
    l->done = NULL;
    pthread_mutex_unlock(&l->lock);
    while (c) {
        struct call *next = c->next_job;
        c->pending--;
        l->building--;
        if (atomic_load(&l->stopping)) call_fail(c);
        enqueue(c);
        c = next;
    }
}

static void stop_workers(struct grpc_listener *l)
{
    pthread_mutex_lock(&l->lock);
    l->workers_stop = true;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->lock);
    for (size_t i = 0; i < l->nworkers; i++) pthread_join(l->workers[i], NULL);
    l->nworkers = 0;
}

static void on_accept(struct call *c, bool ok)
{
    struct grpc_listener *l = c->l;
    if (!ok) return; /* the server is shutting down; the call is freed */
    c->counted = true;
    l->open++;
    const grpc_slice *path = &c->details.method;
    c->method = methods_find((const char *)GRPC_SLICE_START_PTR(*path), GRPC_SLICE_LENGTH(*path));
    accept_next(l);
    if (atomic_load(&l->stopping)) call_fail(c);

    grpc_op ops[1];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &c->cancelled;
    start_batch(c, ops, 1, &c->close);

    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_MESSAGE;
    ops[0].data.recv_message.recv_message = &c->request;
    start_batch(c, ops, 1, &c->read);
}

/* Handles one completion; frees the call when it was its last batch. */
static void on_event(struct tag *tag, bool ok)
{
    struct call *c = tag->call;
    c->pending--;
    switch (tag->kind) {
    case TAG_ACCEPT:
        on_accept(c, ok);
        break;
    case TAG_READ:
        if (!ok) {
            call_fail(c);
        } else if (!c->request && c->method && c->method->shape == SHAPE_BIDI) {
            /* the client is done: the status, OK */
            c->client_done = true;
            reply_free(&c->reply);
            c->next = 0;
            c->reply.status = GRPC_STATUS_OK;
            enqueue(c);
        } else if (c->l->open > MAX_CALLS) {
            c->reply.status = GRPC_STATUS_RESOURCE_EXHAUSTED;
            c->reply.message = "too many calls at once";
            enqueue(c);
        } else {
            submit(c);
        }
        break;
    case TAG_WRITE:
        grpc_byte_buffer_destroy(c->sending);
        c->sending = NULL;
        if (!ok) call_fail(c);
        else enqueue(c);
        break;
    case TAG_STATUS:
        if (!ok) call_fail(c);
        break;
    case TAG_CLOSE:
        if (c->cancelled) c->dead = true;
        break;
    case TAG_SHUTDOWN:
        break;
    }
    release_if_done(c);
}

static void *serve(void *arg)
{
    struct grpc_listener *l = arg;
    for (;;) {
        /* With calls ready to send, only poll (deadline now): a timeout means
         * the queue is empty and the sockets were polled, so it is their
         * round. Otherwise wait for the next completion. */
        gpr_timespec deadline = l->ready ? gpr_time_0(GPR_CLOCK_MONOTONIC)
                                : l->building ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                             gpr_time_from_millis(
                                                                 1, GPR_TIMESPAN))
                                              : gpr_inf_future(GPR_CLOCK_MONOTONIC);
        grpc_event ev = grpc_completion_queue_next(l->cq, deadline, NULL);
        take_done(l);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            /* Calls still on the ready list have no batch pending any more;
             * stopping, a round only releases them. */
            send_round(l);
            break;
        }
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            send_round(l);
            continue;
        }
        struct tag *tag = ev.tag;
        if (tag->kind == TAG_SHUTDOWN) {
            /* The server is done with its calls, but we may still hold some
             * (their grpc_call keeps the server alive): take back the ones
             * being built (the workers stop) and release the ready ones
             * now; the rest go when their last batch completes, before the
             * queue reports its own shutdown. */
            stop_workers(l);
            take_done(l);
            send_round(l);
            grpc_completion_queue_shutdown(l->cq);
            continue;
        }
        on_event(tag, ev.success != 0);
    }
    return NULL;
}

/* Tears down what start built, in reverse order. The server, if any, must
 * have been started or never started, and no thread may be running. */
static void teardown(struct grpc_listener *l)
{
    stop_workers(l);
    if (l->server) grpc_server_destroy(l->server);
    if (l->cq) grpc_completion_queue_destroy(l->cq);
    methods_free(l->methods);
    grpc_shutdown();
    pthread_cond_destroy(&l->work);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* Stops accepting, cancels the calls in flight; the thread then drains the
 * queue and returns once it is shut down. */
static void begin_shutdown(struct grpc_listener *l)
{
    atomic_store(&l->stopping, true);
    grpc_server_shutdown_and_notify(l->server, l->cq, &l->shutdown);
    grpc_server_cancel_all_calls(l->server);
}

struct grpc_listener *grpc_listener_start(struct sandbox *sb, struct methods *methods,
                                          struct faults *faults, const char *addr,
                                          const struct sandbox_tls *tls, int *port, char *err,
                                          size_t errlen)
{
    struct grpc_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        methods_free(methods);
        return NULL;
    }
    l->sb = sb;
    l->methods = methods;
    l->faults = faults;
    atomic_init(&l->stopping, false);
    l->shutdown = (struct tag){TAG_SHUTDOWN, NULL};
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->work, NULL);
    grpc_init();

    l->cq = grpc_completion_queue_create_for_next(NULL);
    /* gRPC binds with SO_REUSEPORT by default: a second sandbox on the same
     * port would share it silently instead of failing. */
    /* The size limits are gRPC's defaults, set here so that they are the
     * documented ones whatever the library's. */
    grpc_arg arg_list[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = MAX_MESSAGE},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_METADATA_SIZE,
         .value.integer = MAX_METADATA},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_CONCURRENT_STREAMS,
         .value.integer = MAX_STREAMS},
    };
    /* Not named `args`: cppcheck reads `args = {.args = ...}` as a
     * variable initialised from itself. */
    grpc_channel_args server_args = {.num_args = sizeof arg_list / sizeof arg_list[0],
                                     .args = arg_list};
    l->server = grpc_server_create(&server_args, NULL);
    if (!l->cq || !l->server) {
        snprintf(err, errlen, "cannot create the gRPC server");
        if (l->cq) grpc_completion_queue_shutdown(l->cq);
        teardown(l);
        return NULL;
    }
    grpc_server_register_completion_queue(l->server, l->cq, NULL);

    /* With TLS, no client certificate is asked for: the API key is the
     * client's credential. The PEM text is copied. */
    grpc_server_credentials *creds;
    if (tls) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key, .cert_chain = tls->cert};
        creds = grpc_ssl_server_credentials_create_ex(
            NULL, &pair, 1, GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, NULL);
    } else {
        creds = grpc_insecure_server_credentials_create();
    }
    *port = creds ? grpc_server_add_http2_port(l->server, addr, creds) : 0;
    if (creds) grpc_server_credentials_release(creds);
    if (*port <= 0) {
        snprintf(err, errlen, "gRPC: cannot listen on %s%s", addr,
                 tls ? " with TLS (is --tls-key the key of --tls-cert?)" : "");
        grpc_completion_queue_shutdown(l->cq);
        teardown(l);
        return NULL;
    }

    grpc_server_start(l->server);
    /* Without workers (no thread to spare) replies are built on the
     * queue's thread, as they were before there were workers. */
    while (l->nworkers < WORKERS &&
           pthread_create(&l->workers[l->nworkers], NULL, worker, l) == 0)
        l->nworkers++;
    accept_next(l);
    if (pthread_create(&l->thread, NULL, serve, l) != 0) {
        snprintf(err, errlen, "gRPC: cannot start the listener thread");
        begin_shutdown(l);
        serve(l);
        teardown(l);
        return NULL;
    }
    return l;
}

void grpc_listener_stop(struct grpc_listener *l)
{
    if (!l) return;
    begin_shutdown(l);
    pthread_join(l->thread, NULL);
    teardown(l);
}
