/*
 * seats.c: the bare C peer of the module's catalogue stream, for
 * bench/peers.lua. One tc-simple Seats call over a plaintext channel (gRPC
 * C core, pluck completion queue, one RECV_MESSAGE batch per message), each
 * message unpacked with protobuf-c (the code generated into build/gen) and
 * checked (a ticket id), then freed. A first call of one seat opens the
 * connection; the second walks the event and is timed, from the start of
 * the call to its status, and the program prints
 *
 *   n=SEATS wall=SECONDS cpu=SECONDS hwm0=KB hwm=KB
 *
 *   seats HOST:PORT KEY EVENT [LIMIT]
 *
 * With LIMIT the timed walk stops after LIMIT seats and cancels the call
 * (for the instruction counts of bench/peers.lua, at two sizes of a walk).
 */
#define _POSIX_C_SOURCE 200809L
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <protobuf-c/protobuf-c.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "seats.pb-c.h"

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the process (all threads) and its peak RSS so far in kB. */
static double cpu(long *maxrss)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    *maxrss = ru.ru_maxrss;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int pluck(grpc_completion_queue *cq, void *tag)
{
    grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* One Seats call: counts the seats into *n, at most limit (< 0: all of
 * them). Returns 0 when every seat was good and the call ended OK (or was
 * cancelled at the limit). */
static int walk(grpc_channel *ch, grpc_completion_queue *cq, const char *key,
                const uint8_t *req, size_t req_len, long limit, long *n)
{
    grpc_slice method = grpc_slice_from_static_string("/v3.Simple/Seats");
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_seconds(600, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                               deadline, NULL);
    if (!call)
        return -1;

    grpc_metadata md;
    memset(&md, 0, sizeof md);
    md.key = grpc_slice_from_static_string("authorization");
    md.value = grpc_slice_from_copied_string(key);
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)req, req_len);
    grpc_byte_buffer *request = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    int bad = 0;

    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 1;
    ops[0].data.send_initial_metadata.metadata = &md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    if (grpc_call_start_batch(call, ops, 4, (void *)1, NULL) != GRPC_CALL_OK)
        bad = 1;
    else
        pluck(cq, (void *)1);

    *n = 0;
    while (!bad) {
        if (limit >= 0 && *n >= limit) {
            grpc_call_cancel(call, NULL);
            break;
        }
        grpc_byte_buffer *response = NULL;
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &response;
        if (grpc_call_start_batch(call, &op, 1, (void *)2, NULL) != GRPC_CALL_OK) {
            bad = 1;
            break;
        }
        if (!pluck(cq, (void *)2) || !response)
            break; /* the end of the stream, or a failure the status tells */
        grpc_byte_buffer_reader reader;
        if (!grpc_byte_buffer_reader_init(&reader, response)) {
            grpc_byte_buffer_destroy(response);
            bad = 1;
            break;
        }
        grpc_slice payload = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
        grpc_byte_buffer_destroy(response);
        V3__Seat *seat = v3__seat__unpack(NULL, GRPC_SLICE_LENGTH(payload),
                                          GRPC_SLICE_START_PTR(payload));
        grpc_slice_unref(payload);
        if (!seat || !seat->ticket || strlen(seat->ticket) != 24)
            bad = 1;
        if (seat)
            v3__seat__free_unpacked(seat, NULL);
        if (!bad)
            ++*n;
    }

    grpc_op status_op;
    memset(&status_op, 0, sizeof status_op);
    status_op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    status_op.data.recv_status_on_client.trailing_metadata = &trailing_md;
    status_op.data.recv_status_on_client.status = &status;
    status_op.data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, &status_op, 1, (void *)3, NULL) == GRPC_CALL_OK)
        pluck(cq, (void *)3);
    if (bad)
        fprintf(stderr, "seats: a malformed seat after %ld seats\n", *n);
    else if (status != GRPC_STATUS_OK && !(limit >= 0 && *n >= limit))
        fprintf(stderr, "seats: the call failed after %ld seats (gRPC status %d)\n", *n,
                (int)status);
    int failed = bad || (status != GRPC_STATUS_OK && !(limit >= 0 && *n >= limit));

    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_slice_unref(details);
    grpc_slice_unref(md.value);
    grpc_byte_buffer_destroy(request);
    grpc_call_unref(call);
    return failed ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: seats HOST:PORT KEY EVENT [LIMIT]\n");
        return 2;
    }
    const char *target = argv[1], *key = argv[2];
    long limit = argc == 5 ? strtol(argv[4], NULL, 10) : -1;

    /* The request: every seat of the event. */
    V3__SeatsRequest req = V3__SEATS_REQUEST__INIT;
    req.event = argv[3];
    size_t req_len = v3__seats_request__get_packed_size(&req);
    uint8_t *req_bytes = malloc(req_len ? req_len : 1);
    if (!req_bytes)
        return 1;
    v3__seats_request__pack(&req, req_bytes);

    grpc_init();
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    if (!ch || !cq)
        return 1;

    long n, hwm0, hwm;
    int rc = walk(ch, cq, key, req_bytes, req_len, 1, &n); /* opens the connection */
    double cpu0 = cpu(&hwm0), t0 = now();
    if (rc == 0)
        rc = walk(ch, cq, key, req_bytes, req_len, limit, &n);
    double wall = now() - t0, used = cpu(&hwm) - cpu0;
    if (rc == 0)
        printf("n=%ld wall=%.6f cpu=%.6f hwm0=%ld hwm=%ld\n", n, wall, used, hwm0, hwm);

    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    grpc_shutdown_blocking();
    free(req_bytes);
    return rc == 0 ? 0 : 1;
}
