/*
 * faults.h: deterministic fault injection for tc-sandbox (--faults SPEC).
 *
 * faults.c parses SPEC and decides, per request, which fault (if any) the
 * request gets; rest.c and grpc.c ask and act. Without --faults there is no
 * struct faults at all, and the listeners only test their pointer.
 */
#ifndef TC_SANDBOX_FAULTS_H
#define TC_SANDBOX_FAULTS_H

#include <stddef.h>
#include <stdint.h>

/* The routes a SPEC names. The ten REST routes come first (`*` means all
 * of them), then one per tc-simple method (`grpc.*` means all of those). */
enum fault_route {
    ROUTE_NONE = -1,
    ROUTE_ORDERS_CREATE,    /* POST /v2/resources/orders */
    ROUTE_ORDERS_PATCH,     /* PATCH /v2/resources/orders/ID */
    ROUTE_ORDERS_GET,       /* GET /v2/resources/orders/ID */
    ROUTE_ORDERS_LIST,      /* GET /v2/resources/orders */
    ROUTE_REFUNDS_CREATE,   /* POST /v2/resources/refund_requests */
    ROUTE_REFUNDS_PATCH,    /* PATCH /v2/resources/refund_requests/ID */
    ROUTE_REFUNDS_GET,      /* GET /v2/resources/refund_requests/ID */
    ROUTE_REFUNDS_LIST,     /* GET /v2/resources/refund_requests */
    ROUTE_PROMOCODES_CHECK, /* POST /v2/services/promocodes/check */
    ROUTE_MOSBILET,         /* PUT /v2/services/orders/mosbilet/user_data */
    ROUTE_GRPC_ARTISTS,     /* /v3.Simple/Artists, and so on */
    ROUTE_GRPC_CATEGORIES,
    ROUTE_GRPC_CITIES,
    ROUTE_GRPC_COUNTRIES,
    ROUTE_GRPC_EVENTS,
    ROUTE_GRPC_MAPS,
    ROUTE_GRPC_META_EVENTS,
    ROUTE_GRPC_SEATS,
    ROUTE_GRPC_TAGS,
    ROUTE_GRPC_VENUES,
    ROUTE_COUNT
};

enum fault_kind {
    FAULT_NONE,
    FAULT_500,         /* REST: answered 500/502/503 with {"errors": [...]}, not applied */
    FAULT_502,
    FAULT_503,
    FAULT_DROP_BEFORE, /* REST: connection closed without an answer, not applied */
    FAULT_DROP_AFTER,  /* REST: applied and committed, then closed without the answer */
    FAULT_SLOW,        /* REST: applied, then the answer waits ms milliseconds */
    FAULT_UNAVAILABLE, /* gRPC: about half the messages, then status UNAVAILABLE */
    FAULT_KINDS
};

/* What one request gets. */
struct fault {
    enum fault_kind kind;
    int ms; /* FAULT_SLOW: the delay */
};

struct faults;

/* Parses SPEC (the grammar is in docs/sandbox.md and --help). The draws
 * come from a PRNG of their own, seeded from seed, so the ids of orders do
 * not change when faults are added. NULL with a message in err when SPEC is
 * bad or memory runs out. */
struct faults *faults_parse(const char *spec, uint64_t seed, char *err, size_t errlen);

/* NULL is allowed. */
void faults_free(struct faults *f);

/* The fault for the next request on route: one draw from the route's own
 * sequence when SPEC names the route, so the n-th request of a route gets
 * the same answer in every run with the same seed and SPEC, whatever other
 * routes see. A fault that fires is counted and logged on stderr as
 * "tc-sandbox: fault KIND METHOD PATH". Safe from any thread. */
struct fault faults_pick(struct faults *f, enum fault_route route, const char *method,
                         const char *path);

/* The route of a tc-simple call from its HTTP/2 path ("/v3.Simple/Seats"),
 * or ROUTE_NONE. */
enum fault_route faults_grpc_route(const char *path, size_t len);

/* The name of a fault as SPEC writes it ("drop_after", "503"). */
const char *fault_name(enum fault_kind kind);

/* Sleeps ms milliseconds, or less once faults_stop() is called. */
void faults_sleep(struct faults *f, int ms);

/* Ends the sleeps in progress and those to come, so that a slow answer
 * does not hold up shutdown. */
void faults_stop(struct faults *f);

/* Prints how many faults fired, per route and fault, on stderr. */
void faults_report(struct faults *f);

#endif
