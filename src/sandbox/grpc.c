/*
 * grpc.c: the tc-simple gRPC listener of tc-sandbox.
 *
 * A gRPC C core server on its own completion queue, driven by one thread.
 * This first cut answers every call with UNIMPLEMENTED; it exists so the
 * sandbox links while the catalogue methods are being written.
 */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc.h"
#include "sandbox.h"

struct grpc_listener {
    struct sandbox *sb;
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t thread;
    int shutdown_tag; /* its address is the tag of the server shutdown */
};

/* One accepted call. */
struct call {
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    int cancelled;
    int answered; /* 0 while waiting in request_call, 1 once the reply batch runs */
};

static struct call *call_new(void)
{
    struct call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->request_md);
    return c;
}

static void call_free(struct call *c)
{
    if (c->call) grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->request_md);
    free(c);
}

static int request_next(struct grpc_listener *l)
{
    struct call *c = call_new();
    if (!c) return -1;
    if (grpc_server_request_call(l->server, &c->call, &c->details, &c->request_md, l->cq, l->cq,
                                 c) != GRPC_CALL_OK) {
        call_free(c);
        return -1;
    }
    return 0;
}

static void answer_unimplemented(struct call *c)
{
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
    grpc_slice details = grpc_slice_from_static_string("not implemented yet");
    ops[1].data.send_status_from_server.status_details = &details;
    ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[2].data.recv_close_on_server.cancelled = &c->cancelled;
    c->answered = 1;
    if (grpc_call_start_batch(c->call, ops, 3, c, NULL) != GRPC_CALL_OK) call_free(c);
}

static void *serve(void *arg)
{
    struct grpc_listener *l = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(l->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE) continue;
        if (ev.tag == &l->shutdown_tag) {
            grpc_completion_queue_shutdown(l->cq);
            continue;
        }
        struct call *c = ev.tag;
        if (c->answered || !ev.success) {
            call_free(c);
            continue;
        }
        request_next(l);
        answer_unimplemented(c);
    }
    return NULL;
}

struct grpc_listener *grpc_listener_start(struct sandbox *sb, const char *addr, int *port,
                                          char *err, size_t errlen)
{
    struct grpc_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->sb = sb;
    grpc_init();
    l->cq = grpc_completion_queue_create_for_next(NULL);
    l->server = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(l->server, l->cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    *port = grpc_server_add_http2_port(l->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (*port <= 0) {
        snprintf(err, errlen, "cannot listen on %s", addr);
        grpc_server_destroy(l->server);
        grpc_completion_queue_shutdown(l->cq);
        grpc_completion_queue_destroy(l->cq);
        grpc_shutdown();
        free(l);
        return NULL;
    }
    grpc_server_start(l->server);
    if (request_next(l) != 0 || pthread_create(&l->thread, NULL, serve, l) != 0) {
        snprintf(err, errlen, "cannot start the gRPC listener");
        grpc_server_shutdown_and_notify(l->server, l->cq, &l->shutdown_tag);
        grpc_server_cancel_all_calls(l->server);
        serve(l);
        grpc_server_destroy(l->server);
        grpc_completion_queue_destroy(l->cq);
        grpc_shutdown();
        free(l);
        return NULL;
    }
    return l;
}

void grpc_listener_stop(struct grpc_listener *l)
{
    if (!l) return;
    grpc_server_shutdown_and_notify(l->server, l->cq, &l->shutdown_tag);
    grpc_server_cancel_all_calls(l->server);
    pthread_join(l->thread, NULL);
    grpc_server_destroy(l->server);
    grpc_completion_queue_destroy(l->cq);
    grpc_shutdown();
    free(l);
}
