/*
 * rest.c: the REST listener of tc-sandbox.
 *
 * libmicrohttpd with one thread polling every connection with epoll, and
 * HTTPS (GnuTLS) with --tls-cert / --tls-key. One thread because every
 * request takes the store's one lock: more threads only contended for it
 * (docs/benchmarks.md). A connection costs nothing while it waits for bytes,
 * so slow clients cannot starve the others; what they can hold is bounded
 * by the limits below (per connection, per address, in all) and by the
 * deadlines that reaper() enforces. A request that must wait (a delayed
 * PATCH, a slow fault) is suspended and waits on a thread of its own, so
 * the polling thread never sleeps. Over plaintext, gate.c accepts the
 * connections and checks each one's first head before it hands it over;
 * over TLS libmicrohttpd listens itself. This file is the HTTP edge: the
 * limits and deadlines, routing, the API key, the body limit, JSON decoding
 * of bodies and query strings, the response encoding and one log line per
 * request.
 * What a request does is the store's business (store.h). With --faults, each
 * request asks faults.c for its fault once its route is known, and acts on
 * it here: an error or a closed connection instead of the store's answer,
 * or the store's answer lost or late.
 */
#include "rest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "faults.h"
#include "gate.h"
#include "store.h"
#include "tls.h"
#include "util.h"

#define BODY_LIMIT (1024 * 1024)
#define MAX_DELAY_MS 10000

/* The limits and deadlines of docs/sandbox.md ("Limits"). */
#define MAX_CONNECTIONS 2048   /* in all */
#define MAX_PER_ADDRESS 256    /* from one client address */
#define CONNECTION_MEMORY (64 * 1024) /* libmicrohttpd's buffer per connection */
#define URI_LIMIT GATE_URI_LIMIT      /* the request target, as sent */
#define HEAD_LIMIT GATE_HEAD_LIMIT    /* request line and header fields */
#define MAX_FIELDS GATE_MAX_FIELDS    /* header fields */
#define HEAD_TIMEOUT_MS GATE_HEAD_TIMEOUT_MS /* a head, from the connection (or request line) on */
#define BODY_TIMEOUT_MS 15000  /* for a body, from the end of its head */
#define IDLE_TIMEOUT_S 30      /* a kept-alive connection without a request */
#define MAX_WAITING 256        /* requests suspended at once (delays, slow faults) */
#define ORDERS "/v2/resources/orders"
#define EXPORT "/v2/resources/orders/export"
#define PROMO_CHECK "/v2/services/promocodes/check"
#define REFUNDS "/v2/resources/refund_requests"
#define MOSBILET "/v2/services/orders/mosbilet/user_data"
#define JSON_TYPE "application/json; charset=utf-8"

/* Where a connection is, for the deadlines (reaper()). */
enum conn_state {
    CONN_HEAD,  /* waiting for the head of a request: deadline */
    CONN_BODY,  /* reading a body: deadline */
    CONN_BUSY,  /* being answered, or suspended: no deadline */
    CONN_IDLE,  /* kept alive between requests: libmicrohttpd's idle timeout */
};

/* One open connection (libmicrohttpd's socket context), on rest.conns. */
struct conn {
    struct conn *prev, *next;
    int fd;
    enum conn_state state;
    int64_t deadline_ms;
};

struct rest {
    struct sandbox *sb;
    struct faults *faults; /* NULL without --faults */
    struct MHD_Daemon *daemon;
    struct gate *gate; /* plaintext: the front door (gate.c); NULL with TLS */
    bool tls;
    bool log; /* the log of requests goes somewhere: stderr is not /dev/null */

    /* Open connections and the thread that enforces their deadlines;
     * requests waiting on threads of their own (counted, to stop only
     * once they are done). All under lock. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct conn *conns;
    bool stopping, reaper_started;
    pthread_t reaper;
    unsigned waiting;
};

struct request;

/* What a suspended request's own thread does before the request resumes. */
typedef void wait_fn(struct request *rq);

/* Per-request state, from the request line (uri_logged) to completion. */
struct request {
    int64_t start_ms;
    bool started;   /* the handler has seen the request's headers */
    char *uri;      /* the request target as it came, for the log and routing */
    char *path;     /* its path, percent-decoded: bytes, not a C string */
    size_t path_len;
    char *body;
    size_t len, cap;
    bool too_large;
    size_t dropped; /* bytes of an oversized body read and thrown away */
    struct faults *faults; /* with --faults: what a slow answer sleeps on */
    struct fault fault;    /* what --faults gave this request; FAULT_NONE without */
    bool close;            /* answer with Connection: close (broken framing) */

    /* A request that waits: it is suspended while wait_fn runs on a thread
     * of its own, which leaves the answer here; the handler, called again
     * once it resumes, sends it. */
    struct rest *rest;
    struct MHD_Connection *conn;
    const char *method; /* libmicrohttpd's, valid until completion */
    wait_fn *wait;
    bool slept;        /* a slow fault's wait is done */
    bool ready;        /* the answer below is set */
    unsigned status;
    char *text;
    const char *type, *allow;
    /* a delayed PATCH: what the store is given on the waiting thread */
    char *order_id;
    json_t *patch;
    int delay_ms;
};

/* ---- responses --------------------------------------------------------- */

/* The path of a request target for the log (the query left out), as it
 * came, with control characters masked so that a request cannot forge log
 * lines. */
static void log_path(const char *url, char *buf, size_t size)
{
    size_t n = 0;
    for (; n < size - 1 && url[n] && url[n] != '?'; n++)
        buf[n] = ((unsigned char)url[n] < 0x20 || url[n] == 0x7f) ? '?' : url[n];
    buf[n] = '\0';
}

static enum MHD_Result go_wait(struct request *rq, wait_fn *fn);
static void conn_set(struct rest *r, struct MHD_Connection *c, enum conn_state state,
                     int64_t timeout_ms);

static void sleep_slow(struct request *rq)
{
    faults_sleep(rq->faults, rq->fault.ms);
    rq->slept = true;
}

/* Every answer goes out here, which is where the faults that act after the
 * request was applied (drop_after, slow) take the answer away or hold it:
 * a slow answer is kept in rq while the request waits, and sent when the
 * handler is called again. Takes text. */
static enum MHD_Result send_raw(struct MHD_Connection *c, struct request *rq,
                                const char *method, const char *url, unsigned status, char *text,
                                const char *type, const char *allow)
{
    char path[256];
    bool log = rq->rest->log;
    if (log) log_path(url, path, sizeof path);
    if (rq->fault.kind == FAULT_DROP_AFTER) {
        /* The change is committed: the store has returned. MHD_NO with no
         * response queued closes the connection unanswered. */
        free(text);
        if (log)
            fprintf(stderr, "tc-sandbox: %s %s %u %.0f ms, answer dropped\n", method, path,
                    status, (double)(now_ms() - rq->start_ms));
        return MHD_NO;
    }
    if (rq->fault.kind == FAULT_SLOW && !rq->slept) {
        rq->status = status;
        rq->text = text;
        rq->type = type;
        rq->allow = allow;
        return go_wait(rq, sleep_slow);
    }
    size_t len = text ? strlen(text) : 0;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text ? text : (char *)"",
                                        text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (rq->close) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    conn_set(rq->rest, c, CONN_BUSY, 0); /* no deadline can write to it now */
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    if (log)
        fprintf(stderr, "tc-sandbox: %s %s %u %.0f ms\n", method, path, status,
                (double)(now_ms() - rq->start_ms));
    return ret;
}

/* Sends body (consumed) as JSON with sorted keys, like the API's examples. */
static enum MHD_Result send_json(struct MHD_Connection *c, struct request *rq,
                                 const char *method, const char *url, unsigned status,
                                 json_t *body, const char *allow)
{
    char *text = NULL;
    if (body) {
        text = json_dumps(body, JSON_SORT_KEYS | JSON_COMPACT);
        json_decref(body);
        if (!text) status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
    return send_raw(c, rq, method, url, status, text, JSON_TYPE, allow);
}

static enum MHD_Result send_error(struct MHD_Connection *c, struct request *rq,
                                  const char *method, const char *url, unsigned status,
                                  const char *msg, const char *allow)
{
    return send_json(c, rq, method, url, status, error_body("%s", msg), allow);
}

/* ---- request parsing --------------------------------------------------- */

/* The body as a JSON object, or NULL with *err set to an error body. */
static json_t *parse_body(struct request *rq, json_t **err)
{
    json_error_t jerr;
    if (rq->len == 0) {
        *err = error_body("request body must be a JSON object");
        return NULL;
    }
    json_t *body = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        *err = error_body("malformed JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                          jerr.column);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        *err = error_body("request body must be a JSON object");
        return NULL;
    }
    return body;
}

/* Query string of GET /v2/resources/orders (or refund_requests, when
 * `refunds`), read into filter. Strings it keeps (event ids) live in
 * `strings` until the query is done. */
struct query_parse {
    struct list_filter filter;
    json_t *errors;
    json_t *strings;
    bool oom;
    bool refunds;
};

static bool parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = true;
    } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = false;
    } else {
        return false;
    }
    return true;
}

static bool parse_int(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    if (!*v || *v == ' ' || *v == '+') return false;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < lo || n > hi) return false;
    *out = n;
    return true;
}

/* A range "from,to" of created_at or finished_at; either end may be empty. */
static void parse_range(struct query_parse *qp, const char *name, const char *v, bool *has,
                        int64_t *lo, int64_t *hi)
{
    const char *comma = strchr(v, ',');
    char from[64] = "", to[64] = "";
    if (!comma || (size_t)(comma - v) >= sizeof from || strlen(comma + 1) >= sizeof to) {
        error_add(qp->errors, "%s must be two date-times separated by a comma, not '%s'", name,
                  v);
        return;
    }
    memcpy(from, v, (size_t)(comma - v));
    strcpy(to, comma + 1);
    *has = true;
    *lo = INT64_MIN;
    *hi = INT64_MAX;
    if ((*from && !parse_datetime(from, lo)) || (*to && !parse_datetime(to, hi)))
        error_add(qp->errors, "%s must be two date-times separated by a comma, not '%s'", name,
                  v);
}

/* Calls fn for each non-empty item of a comma-separated list. */
static void each_item(struct query_parse *qp, const char *v,
                      void (*fn)(struct query_parse *qp, const char *item, size_t len))
{
    while (*v) {
        size_t n = strcspn(v, ",");
        if (n > 0) fn(qp, v, n);
        v += n + (v[n] == ',');
    }
}

static void add_status(struct query_parse *qp, const char *item, size_t len)
{
    /* in_progress is a real status the sandbox never produces. */
    static const char *const names[] = { "executed", "done", "cancelled", "expired",
                                         "in_progress" };
    static const unsigned bits[] = { 1u << ORDER_EXECUTED, 1u << ORDER_DONE,
                                     1u << ORDER_CANCELLED, 1u << ORDER_EXPIRED, 1u << 8 };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i]) == len && memcmp(item, names[i], len) == 0) {
            qp->filter.status_mask |= bits[i];
            return;
        }
    }
    error_add(qp->errors, "status: unknown order status '%.*s'", (int)len, item);
}

static void add_refund_status(struct query_parse *qp, const char *item, size_t len)
{
    static const char *const names[] = { "new", "in_progress", "approved", "rejected" };
    static const unsigned bits[] = { 1u << REFUND_NEW, 1u << REFUND_IN_PROGRESS,
                                     1u << REFUND_APPROVED, 1u << REFUND_REJECTED };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i]) == len && memcmp(item, names[i], len) == 0) {
            qp->filter.status_mask |= bits[i];
            return;
        }
    }
    error_add(qp->errors, "status: unknown refund request status '%.*s'", (int)len, item);
}

/* An id that is not UTF-8 is kept as it is: it matches no event. */
static void add_event(struct query_parse *qp, const char *item, size_t len)
{
    if (json_array_append_new(qp->strings, json_stringn_nocheck(item, len)) != 0) qp->oom = true;
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size)
{
    struct query_parse *qp = cls;
    const char *v = value ? value : "";
    (void)kind;
    /* A %00 would cut the name or value short: refuse it rather than read
     * a part as the whole. */
    if (memchr(key, '\0', key_size) || (value && memchr(value, '\0', value_size))) {
        error_add(qp->errors, "query parameter %s must not contain a NUL byte (%%00)", key);
        return MHD_YES;
    }
    if (strcmp(key, "created_at") == 0) {
        parse_range(qp, key, v, &qp->filter.has_created, &qp->filter.created_from,
                    &qp->filter.created_to);
    } else if (qp->refunds && strcmp(key, "finished_at") == 0) {
        parse_range(qp, key, v, &qp->filter.has_finished, &qp->filter.finished_from,
                    &qp->filter.finished_to);
    } else if (strcmp(key, "status") == 0) {
        each_item(qp, v, qp->refunds ? add_refund_status : add_status);
    } else if (strcmp(key, "events") == 0) {
        each_item(qp, v, add_event);
    } else if (!qp->refunds && strcmp(key, "only_with_customer") == 0) {
        if (!parse_bool(v, &qp->filter.only_with_customer))
            error_add(qp->errors, "only_with_customer must be true or false, not '%s'", v);
    } else if (strcmp(key, "page") == 0) {
        if (!parse_int(v, 1, 1000000000, &qp->filter.page))
            error_add(qp->errors, "page must be a whole number from 1, not '%s'", v);
    } else if (strcmp(key, "page_size") == 0) {
        if (!parse_int(v, 1, 200, &qp->filter.page_size))
            error_add(qp->errors, "page_size must be a whole number from 1 to 200, not '%s'", v);
    }
    return MHD_YES;
}

/* ---- routes ------------------------------------------------------------ */

/* GET of the order list, or of the refund list when refunds. */
static enum MHD_Result list_orders(struct rest *r, struct MHD_Connection *c,
                                   struct request *rq, const char *method,
                                   const char *url, bool refunds)
{
    struct query_parse qp = { .filter = { .page = 1, .page_size = 50 }, .refunds = refunds };
    qp.errors = json_array();
    qp.strings = json_array();
    const char **events = NULL;
    json_t *out = NULL;
    int status;
    if (!qp.errors || !qp.strings) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        out = NULL;
        goto done;
    }
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, query_arg, &qp);
    if (qp.oom) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        out = error_body("out of memory");
        goto done;
    }
    if (json_array_size(qp.errors) > 0) {
        status = MHD_HTTP_BAD_REQUEST;
        out = json_pack("{s:O}", "errors", qp.errors);
        goto done;
    }
    size_t n = json_array_size(qp.strings);
    if (n > 0) {
        events = calloc(n, sizeof *events);
        if (!events) {
            status = MHD_HTTP_INTERNAL_SERVER_ERROR;
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            events[i] = json_string_value(json_array_get(qp.strings, i));
        qp.filter.events = events;
        qp.filter.nevents = n;
    }
    status = refunds ? store_list_refunds(r->sb, &qp.filter, &out)
                     : store_list_orders(r->sb, &qp.filter, &out);
done:
    free(events);
    json_decref(qp.errors);
    json_decref(qp.strings);
    return send_json(c, rq, method, url, (unsigned)status, out, NULL);
}

/* X-Sandbox-Delay: milliseconds 0..10000, or -1 when malformed. */
static int delay_header(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Sandbox-Delay");
    int64_t ms = 0;
    if (!v) return 0;
    if (!parse_int(v, 0, MAX_DELAY_MS, &ms)) return -1;
    return (int)ms;
}

static bool key_ok(struct rest *r, struct MHD_Connection *c, const char **problem)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || !*auth) {
        *problem = "Authorization header is required: Authorization: key <API key>";
        return false;
    }
    if (strncasecmp(auth, "key ", 4) != 0) {
        *problem = "Authorization header must be: key <API key>";
        return false;
    }
    const char *key = auth + 4;
    while (*key == ' ') key++;
    if (!sandbox_key_ok(r->sb, key)) {
        *problem = "Invalid API key";
        return false;
    }
    return true;
}

enum route { R_NONE, R_ORDERS, R_EXPORT, R_ORDER, R_PROMO_CHECK, R_REFUNDS, R_REFUND,
             R_MOSBILET };

/* True when the path (len bytes) is prefix + "/" + one segment, which is
 * stored (NUL-terminated by the caller's copy) in *id. */
static bool one_segment(const char *path, size_t len, const char *prefix, const char **id)
{
    size_t n = strlen(prefix);
    if (len <= n + 1 || memcmp(path, prefix, n) != 0 || path[n] != '/') return false;
    if (memchr(path + n + 1, '/', len - n - 1)) return false;
    *id = path + n + 1;
    return true;
}

static bool same_path(const char *path, size_t len, const char *route)
{
    return strlen(route) == len && memcmp(path, route, len) == 0;
}

/* The route of a decoded path (len bytes, one trailing slash already
 * taken off). A path matches exactly: a NUL byte or another segment
 * anywhere makes it no route at all. */
static enum route find_route(const char *path, size_t len, const char **id, const char **allow)
{
    if (memchr(path, '\0', len)) return R_NONE;
    if (same_path(path, len, ORDERS)) {
        *allow = "GET, POST";
        return R_ORDERS;
    }
    if (same_path(path, len, EXPORT)) {
        *allow = "POST";
        return R_EXPORT;
    }
    if (one_segment(path, len, ORDERS, id)) {
        *allow = "GET, PATCH";
        return R_ORDER;
    }
    if (same_path(path, len, PROMO_CHECK)) {
        *allow = "POST";
        return R_PROMO_CHECK;
    }
    if (same_path(path, len, MOSBILET)) {
        *allow = "PUT";
        return R_MOSBILET;
    }
    if (same_path(path, len, REFUNDS)) {
        *allow = "GET, POST";
        return R_REFUNDS;
    }
    if (one_segment(path, len, REFUNDS, id)) {
        *allow = "GET, PATCH";
        return R_REFUND;
    }
    return R_NONE;
}

/* The --faults route of a request whose method the route allows. */
static enum fault_route fault_route(enum route route, bool get)
{
    switch (route) {
    case R_ORDERS: return get ? ROUTE_ORDERS_LIST : ROUTE_ORDERS_CREATE;
    case R_ORDER: return get ? ROUTE_ORDERS_GET : ROUTE_ORDERS_PATCH;
    case R_REFUNDS: return get ? ROUTE_REFUNDS_LIST : ROUTE_REFUNDS_CREATE;
    case R_REFUND: return get ? ROUTE_REFUNDS_GET : ROUTE_REFUNDS_PATCH;
    case R_PROMO_CHECK: return ROUTE_PROMOCODES_CHECK;
    case R_MOSBILET: return ROUTE_MOSBILET;
    default: return ROUTE_NONE; /* the export stub */
    }
}

/* ---- requests that wait ------------------------------------------------ */

/* The change of a PATCH with X-Sandbox-Delay, on the request's own thread:
 * the store marks the order busy, waits, then applies it. */
static void delayed_patch(struct request *rq)
{
    json_t *out = NULL;
    char *text = NULL;
    int status = store_patch_order(rq->rest->sb, rq->order_id, rq->patch, rq->delay_ms, &text,
                                   &out);
    json_decref(rq->patch);
    rq->patch = NULL;
    if (!text && out) text = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(out);
    rq->status = text ? (unsigned)status : MHD_HTTP_INTERNAL_SERVER_ERROR;
    rq->text = text;
    rq->type = JSON_TYPE;
    rq->allow = NULL;
}

static void *waiter(void *arg)
{
    struct request *rq = arg;
    struct rest *r = rq->rest;
    rq->wait(rq);
    rq->ready = true;
    /* Once resumed the request may complete and be freed at any moment:
     * rq is not touched after this. */
    MHD_resume_connection(rq->conn);
    pthread_mutex_lock(&r->lock);
    r->waiting--;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Suspends the request and runs fn on a thread of its own; the handler is
 * called again once it resumes, with rq->ready set. With MAX_WAITING
 * requests waiting already the answer is a 503 at once. */
static enum MHD_Result go_wait(struct request *rq, wait_fn *fn)
{
    struct rest *r = rq->rest;
    pthread_mutex_lock(&r->lock);
    bool room = r->waiting < MAX_WAITING && !r->stopping;
    if (room) r->waiting++;
    pthread_mutex_unlock(&r->lock);
    if (!room) {
        /* Nothing of it was applied (a delayed PATCH has not reached the
         * store), or it was and only the delay is skipped (slow). */
        free(rq->text);
        rq->text = NULL;
        json_decref(rq->patch);
        rq->patch = NULL;
        rq->slept = true;
        return send_error(rq->conn, rq, rq->method, rq->uri, 503,
                          "too many requests are waiting at once; try again later", NULL);
    }
    rq->wait = fn;
    MHD_suspend_connection(rq->conn);
    pthread_attr_t attr;
    pthread_t thread;
    bool started = false;
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setstacksize(&attr, 1024 * 1024);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&thread, &attr, waiter, rq) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) waiter(rq); /* no thread to spare: wait here */
    return MHD_YES;
}

/* Answers instead of the store, for the faults that act before the request
 * is applied: an error status with the API's error body, or (drop_before)
 * nothing: MHD_NO from the handler closes the connection unanswered. */
static enum MHD_Result answer_fault(struct MHD_Connection *c, struct request *rq,
                                    const char *method, const char *url)
{
    enum fault_kind kind = rq->fault.kind;
    rq->fault.kind = FAULT_NONE; /* the error goes out as usual */
    switch (kind) {
    case FAULT_500:
        return send_error(c, rq, method, url, 500, "Internal Server Error (injected fault)",
                          NULL);
    case FAULT_502:
        return send_error(c, rq, method, url, 502, "Bad Gateway (injected fault)", NULL);
    case FAULT_503:
        return send_error(c, rq, method, url, 503, "Service Unavailable (injected fault)", NULL);
    default:
        return MHD_NO;
    }
}

/* Answers the request for path (url without trailing slashes). */
static enum MHD_Result serve_path(struct rest *r, struct MHD_Connection *c, struct request *rq,
                                  const char *method, const char *url)
{
    const char *id = NULL, *allow = NULL, *problem = NULL;
    enum route route = find_route(rq->path, rq->path_len, &id, &allow);
    if (route == R_NONE) return send_error(c, rq, method, url, 404, "Not found", NULL);
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
         patch = strcmp(method, "PATCH") == 0, put = strcmp(method, "PUT") == 0;
    bool allowed = (route == R_ORDERS && (get || post)) || (route == R_EXPORT && post) ||
                   (route == R_ORDER && (get || patch)) || (route == R_PROMO_CHECK && post) ||
                   (route == R_REFUNDS && (get || post)) || (route == R_REFUND && (get || patch)) ||
                   (route == R_MOSBILET && put);
    if (!allowed) {
        char msg[128];
        snprintf(msg, sizeof msg, "Method %s is not allowed here; allowed: %s", method, allow);
        return send_error(c, rq, method, url, 405, msg, allow);
    }
    if (rq->too_large)
        return send_error(c, rq, method, url, 413, "request body is larger than 1 MiB", NULL);
    if (r->faults) {
        char logged[256];
        log_path(url, logged, sizeof logged);
        rq->faults = r->faults;
        rq->fault = faults_pick(r->faults, fault_route(route, get), method, logged);
        switch (rq->fault.kind) {
        case FAULT_500:
        case FAULT_502:
        case FAULT_503:
        case FAULT_DROP_BEFORE:
            return answer_fault(c, rq, method, url);
        default:
            break; /* none, or one that send_raw applies to the answer */
        }
    }
    if (!key_ok(r, c, &problem)) return send_error(c, rq, method, url, 401, problem, NULL);

    if (route == R_ORDERS && get) return list_orders(r, c, rq, method, url, false);
    if (route == R_REFUNDS && get) return list_orders(r, c, rq, method, url, true);
    if (route == R_EXPORT) {
        char *empty = strdup("");
        return send_raw(c, rq, method, url, 200, empty, "text/html; charset=UTF-8", NULL);
    }

    json_t *out = NULL;
    char *text = NULL; /* the order operations answer in text */
    int status;
    if (route == R_ORDER && !is_object_id(id)) {
        status = 404;
        out = error_body("Order %s not found", id);
    } else if (route == R_ORDER && get) {
        status = store_get_order(r->sb, id, &text, &out);
    } else if (route == R_REFUND && !is_object_id(id)) {
        status = 404;
        out = error_body("RefundRequest %s not found", id);
    } else if (route == R_REFUND && get) {
        status = store_get_refund(r->sb, id, &out);
    } else {
        json_t *body = parse_body(rq, &out);
        if (!body) {
            status = 400;
        } else if (route == R_ORDERS) {
            status = store_create_order(r->sb, body, &text, &out);
        } else if (route == R_PROMO_CHECK) {
            status = store_check_promocode(r->sb, body, &out);
        } else if (route == R_REFUNDS) {
            status = store_create_refund(r->sb, body, &out);
        } else if (route == R_REFUND) {
            status = store_patch_refund(r->sb, id, body, &out);
        } else if (route == R_MOSBILET) {
            status = store_mosbilet_user_data(r->sb, body, &out);
        } else {
            int delay = delay_header(c);
            if (delay < 0) {
                status = 400;
                out = error_body("X-Sandbox-Delay must be milliseconds from 0 to %d",
                                 MAX_DELAY_MS);
            } else if (delay > 0) {
                /* The store holds the order busy while it waits: that is
                 * done on a thread of the request's own. */
                rq->order_id = strdup(id);
                if (!rq->order_id) {
                    json_decref(body);
                    return send_error(c, rq, method, url, 500, "out of memory", NULL);
                }
                rq->patch = body;
                rq->delay_ms = delay;
                return go_wait(rq, delayed_patch);
            } else {
                status = store_patch_order(r->sb, id, body, 0, &text, &out);
            }
        }
        json_decref(body);
    }
    if (status == 202) /* like the service: no body */
        return send_raw(c, rq, method, url, 202, strdup(""), "text/html; charset=UTF-8", NULL);
    if (text)
        return send_raw(c, rq, method, url, (unsigned)status, text, JSON_TYPE, NULL);
    return send_json(c, rq, method, url, (unsigned)status, out, NULL);
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* The path of the request target, percent-decoded into rq->path as bytes
 * (a %00 stays a NUL byte: routes are matched on the whole length), with
 * one trailing slash taken off. A '%' not followed by two hex digits is
 * kept as it is. False when out of memory. */
static bool decode_path(struct request *rq)
{
    const char *uri = rq->uri;
    size_t n = strcspn(uri, "?#");
    char *out = malloc(n + 1);
    if (!out) return false;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (uri[i] == '%' && i + 2 < n && (hi = hex_digit(uri[i + 1])) >= 0 &&
            (lo = hex_digit(uri[i + 2])) >= 0) {
            out[len++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[len++] = uri[i];
        }
    }
    if (len > 1 && out[len - 1] == '/') len--;
    out[len] = '\0';
    rq->path = out;
    rq->path_len = len;
    return true;
}

static enum MHD_Result dispatch(struct rest *r, struct MHD_Connection *c, struct request *rq,
                                const char *method)
{
    if (!decode_path(rq))
        return send_json(c, rq, method, rq->uri, 500, error_body("out of memory"), NULL);
    return serve_path(r, c, rq, method, rq->uri);
}

/* What libmicrohttpd lets through that the sandbox refuses, checked once
 * the head is in: a target or head over its limit, a body framed in a way
 * it cannot read exactly. NULL when the request is fine; else the answer's
 * message, with *status set. */
static const char *bad_head(struct MHD_Connection *c, const struct request *rq,
                            unsigned *status)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (strlen(rq->uri) > URI_LIMIT) {
        *status = 414;
        return "the request target is longer than 8 KiB";
    }
    if ((info && info->header_size > HEAD_LIMIT) ||
        MHD_get_connection_values(c, MHD_HEADER_KIND, NULL, NULL) > MAX_FIELDS) {
        *status = 431;
        return "the request head is larger than 16 KiB or has more than 100 fields";
    }
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    *status = 400;
    if (te && cl) return "a request may have Content-Length or Transfer-Encoding, not both";
    if (te && strcasecmp(te, "chunked") != 0)
        return "Transfer-Encoding must be chunked (or send Content-Length instead)";
    if (cl && strtoull(cl, NULL, 10) > GATE_DROP_LIMIT) {
        *status = 413;
        return "request body is larger than 1 MiB";
    }
    return NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    struct rest *r = cls;
    struct request *rq = *con_cls;
    (void)version;
    (void)url; /* percent-decoded up to its first NUL: routing uses rq->uri */
    if (!rq) return MHD_NO; /* uri_logged() was out of memory */
    url = rq->uri;
    if (!rq->started) {
        rq->started = true;
        rq->method = method;
        conn_set(r, c, CONN_BODY, BODY_TIMEOUT_MS);
        /* Answered before the body is read (a huge one is refused before
         * the client sends it; it may see the connection close while it
         * still sends), and the connection closed: what follows cannot be
         * read as the next request. A body a little over the limit is
         * read and dropped below, so the client sees the 413. */
        unsigned status;
        const char *problem = bad_head(c, rq, &status);
        if (problem) {
            rq->close = true;
            if (status == 413) rq->too_large = true;
            return send_error(c, rq, method, url, status, problem, NULL);
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (rq->too_large || rq->len + n > BODY_LIMIT) {
            /* libmicrohttpd cannot answer in the middle of an upload: read
             * and drop the rest, answer 413 at its end; an upload that goes
             * on and on is cut off by closing the connection. */
            rq->too_large = true;
            rq->dropped += n;
            if (rq->dropped > GATE_DROP_LIMIT) {
                fprintf(stderr, "tc-sandbox: %s %s 413 (body over %d MiB, connection closed)\n",
                        method, url, GATE_DROP_LIMIT >> 20);
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (rq->len + n + 1 > rq->cap) {
            size_t cap = rq->cap ? rq->cap : 4096;
            while (cap < rq->len + n + 1) cap *= 2;
            char *b = realloc(rq->body, cap);
            if (!b) return MHD_NO;
            rq->body = b;
            rq->cap = cap;
        }
        memcpy(rq->body + rq->len, upload, n);
        rq->len += n;
        rq->body[rq->len] = '\0';
        return MHD_YES;
    }
    conn_set(r, c, CONN_BUSY, 0);
    if (rq->ready) {
        /* resumed: the answer its wait made */
        rq->ready = false;
        char *text = rq->text;
        rq->text = NULL;
        return send_raw(c, rq, method, url, rq->status, text, rq->type, rq->allow);
    }
    return dispatch(r, c, rq, method);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct request *rq = *con_cls;
    (void)toe;
    conn_set(cls, c, CONN_IDLE, 0);
    if (rq) {
        free(rq->text);
        free(rq->order_id);
        json_decref(rq->patch);
        free(rq->body);
        free(rq->uri);
        free(rq->path);
        free(rq);
        *con_cls = NULL;
    }
}

/* ---- connections and their deadlines ----------------------------------- */

static struct conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* Moves the connection to state; a deadline of 0 keeps the one it has. */
static void conn_set(struct rest *r, struct MHD_Connection *c, enum conn_state state,
                     int64_t timeout_ms)
{
    struct conn *k = conn_of(c);
    if (!k) return;
    pthread_mutex_lock(&r->lock);
    if (timeout_ms > 0) k->deadline_ms = now_ms() + timeout_ms;
    k->state = state;
    pthread_mutex_unlock(&r->lock);
}

/* libmicrohttpd tells of each connection it opens and closes; the record
 * is gone before it closes the socket, so reaper() never touches a socket
 * that is not this connection's. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct rest *r = cls;
    struct conn *k = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!info || !(k = calloc(1, sizeof *k))) return; /* no deadlines for it */
        k->fd = info->connect_fd;
        k->state = CONN_HEAD;
        k->deadline_ms = now_ms() + HEAD_TIMEOUT_MS;
        pthread_mutex_lock(&r->lock);
        k->next = r->conns;
        if (r->conns) r->conns->prev = k;
        r->conns = k;
        pthread_mutex_unlock(&r->lock);
        *socket_context = k;
    } else if (k) {
        pthread_mutex_lock(&r->lock);
        if (k->prev) k->prev->next = k->next;
        else r->conns = k->next;
        if (k->next) k->next->prev = k->prev;
        pthread_mutex_unlock(&r->lock);
        free(k);
        *socket_context = NULL;
    }
}

/* Ends a connection that missed its deadline: a 408 with the API's error
 * body (not over TLS, where it would corrupt the stream), then a shutdown
 * of the socket, which libmicrohttpd sees as the client going away. Lock
 * held; the polling thread sets CONN_BUSY under it before it answers, so
 * the two never write at once. */
static void expire(struct rest *r, struct conn *k)
{
    const char *what = k->state == CONN_HEAD ? "head" : "body";
    if (!r->tls) {
        char msg[96];
        snprintf(msg, sizeof msg, "the request %s did not arrive within %d s", what,
                 (k->state == CONN_HEAD ? HEAD_TIMEOUT_MS : BODY_TIMEOUT_MS) / 1000);
        gate_answer(k->fd, 408, msg);
    }
    shutdown(k->fd, SHUT_RDWR);
    fprintf(stderr, "tc-sandbox: connection closed: no request %s in time (408)\n", what);
    k->state = CONN_BUSY;
}

/* Four times a second, ends the connections whose head or body is late. */
static void *reaper(void *arg)
{
    struct rest *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->wake, &r->lock, &until);
        int64_t now = now_ms();
        for (struct conn *k = r->conns; k; k = k->next)
            if ((k->state == CONN_HEAD || k->state == CONN_BODY) && k->deadline_ms <= now)
                expire(r, k);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Called with the request target as it came, before libmicrohttpd decodes
 * it (and cuts it at a %00): the request's state starts here, with its own
 * copy of the target. What it returns is the handler's *con_cls. */
static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct rest *r = cls;
    /* A kept-alive connection's next request: its head has HEAD_TIMEOUT_MS
     * from its request line on (the first one's from the connection on). */
    struct conn *k = conn_of(c);
    if (k) {
        pthread_mutex_lock(&r->lock);
        if (k->state == CONN_IDLE) {
            k->state = CONN_HEAD;
            k->deadline_ms = now_ms() + HEAD_TIMEOUT_MS;
        }
        pthread_mutex_unlock(&r->lock);
    }
    struct request *rq = calloc(1, sizeof *rq);
    if (!rq) return NULL;
    rq->start_ms = now_ms();
    rq->uri = strdup(uri);
    if (!rq->uri) {
        free(rq);
        return NULL;
    }
    rq->rest = r;
    rq->conn = c;
    return rq;
}

/* libmicrohttpd's own messages, marked as such in our log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') msg[--n] = '\0';
    fprintf(stderr, "tc-sandbox: http: %s\n", msg);
}

/* Binds the listening socket ourselves, for a precise error message. */
static int listen_on(const char *addr, int *port, char *err, size_t errlen)
{
    char host[64];
    struct sockaddr_in sa = { .sin_family = AF_INET };
    if (!split_addr(addr, host, sizeof host, port)) {
        snprintf(err, errlen, "want ADDR:PORT");
        return -1;
    }
    if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res;
        if (getaddrinfo(host, NULL, &hints, &res) != 0) {
            snprintf(err, errlen, "unknown host %s", host);
            return -1;
        }
        sa.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    sa.sin_port = htons((uint16_t)*port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* True when fd is /dev/null: the log line of every request would be
 * formatted for nothing (as under load, where it is sent there). */
static bool to_dev_null(int fd)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat("/dev/null", &b) == 0 && S_ISCHR(a.st_mode) &&
           a.st_rdev == b.st_rdev;
}

static void rest_free(struct rest *r)
{
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

struct rest *rest_start(struct sandbox *sb, struct faults *faults, const char *addr,
                        const struct sandbox_tls *tls, int *port, char *err, size_t errlen)
{
    struct rest *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->sb = sb;
    r->faults = faults;
    r->tls = tls != NULL;
    r->log = !to_dev_null(STDERR_FILENO);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    int fd = listen_on(addr, port, err, errlen);
    if (fd < 0) {
        rest_free(r);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    /* Plaintext: the gate accepts, and hands libmicrohttpd the connections
     * whose first head it has checked. Over TLS libmicrohttpd listens. */
    if (!tls) flags |= MHD_USE_NO_LISTEN_SOCKET;
    /* With TLS, the certificate and key (libmicrohttpd parses them at start)
     * and the listening socket. */
    struct MHD_OptionItem tls_options[] = {
        { MHD_OPTION_END, 0, NULL },
        { MHD_OPTION_END, 0, NULL },
        { MHD_OPTION_END, 0, NULL },
        { MHD_OPTION_END, 0, NULL },
    };
    if (tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "this libmicrohttpd has no TLS support");
            close(fd);
            rest_free(r);
            return NULL;
        }
        flags |= MHD_USE_TLS;
        tls_options[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, tls->cert };
        tls_options[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key };
        tls_options[2] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd, NULL };
    }
    /* The limits libmicrohttpd enforces itself. Its buffer per connection
     * is well above URI_LIMIT and HEAD_LIMIT, so that bad_head() answers
     * those in JSON; only a head beyond the buffer meets libmicrohttpd's
     * own 414 or 431 (docs/sandbox.md). */
    r->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, r, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, completed, r,
        MHD_OPTION_URI_LOG_CALLBACK, uri_logged, r,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, r,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)MAX_PER_ADDRESS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_ARRAY, tls_options, MHD_OPTION_END);
    if (!r->daemon) {
        snprintf(err, errlen, tls ? "cannot start the HTTPS server (is --tls-key the key of "
                                    "--tls-cert?)"
                                  : "cannot start the HTTP server");
        close(fd);
        rest_free(r);
        return NULL;
    }
    if (!tls && !(r->gate = gate_start(fd, r->daemon, err, errlen))) {
        MHD_stop_daemon(r->daemon);
        close(fd);
        rest_free(r);
        return NULL;
    }
    r->reaper_started = pthread_create(&r->reaper, NULL, reaper, r) == 0;
    if (!r->reaper_started) fprintf(stderr, "tc-sandbox: http: no deadlines (no thread)\n");
    return r;
}

void rest_stop(struct rest *r)
{
    if (!r) return;
    gate_stop(r->gate);
    /* Suspended requests must be resumed before the daemon stops: their
     * waits end early once the store and the faults are stopping. */
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->wake);
    while (r->waiting > 0) pthread_cond_wait(&r->wake, &r->lock);
    pthread_mutex_unlock(&r->lock);
    if (r->reaper_started) pthread_join(r->reaper, NULL);
    MHD_stop_daemon(r->daemon);
    rest_free(r);
}
