/*
 * store.h: orders and live inventory of tc-sandbox.
 *
 * struct sandbox (declared in sandbox.h) is defined here: the catalog, the
 * accepted keys, and the mutable state that one mutex guards: every order
 * and who holds which ticket. Invariant, checked by the specs: per set,
 * vacant + reserved + sold = total, and a ticket is in at most one live
 * order. Expiry is applied lazily at the start of every locked operation.
 *
 * The store_* functions implement the REST operations: each returns an HTTP
 * status and sets *out to the JSON body to send (NULL for an empty body).
 */
#ifndef TC_SANDBOX_STORE_H
#define TC_SANDBOX_STORE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "sandbox.h"

struct sandbox_options {
    const char *const *keys; /* accepted API keys */
    size_t nkeys;
    int64_t expire;          /* order lifetime, seconds */
    uint64_t seed;           /* PRNG seed for ids, barcodes and codes */
    int64_t balance;         /* distributor's money in minor units; < 0 = unlimited */
};

/* The holder of a ticket the catalog starts as sold: no order of the
 * sandbox's, so no order index can be equal to it (orders stay below it). */
#define HOLDER_SOLD UINT32_MAX

enum order_status { ORDER_EXECUTED, ORDER_DONE, ORDER_CANCELLED, ORDER_EXPIRED };

struct order {
    char id[ID_SIZE];
    int64_t number;
    uint32_t event;
    enum order_status status;
    int64_t created_at, expired_after, done_at; /* Unix seconds */
    int64_t expire_ms;   /* the exact moment it expires */
    int64_t priced_at;   /* prices of a finished order are those of this moment */
    uint32_t *tickets;   /* ticket indexes, in reservation order */
    size_t ntickets, cap;
    char (*barcodes)[18]; /* per ticket, once done */
    char code[9];
    uint32_t *promos;    /* indexes into the event's promocodes */
    size_t npromos;
    json_t *customer;    /* settings.customer, or NULL */
    bool send_tickets;
    json_t *vendor_data; /* always an object */
    bool busy;           /* a delayed change is in progress */
};

/* A refund request (spec §3.11), kept in refunds.c. in_progress is a real
 * status the sandbox never produces. */
enum refund_status { REFUND_NEW, REFUND_IN_PROGRESS, REFUND_APPROVED, REFUND_REJECTED };

struct refund {
    char id[ID_SIZE];
    uint32_t order;      /* index into orders */
    enum refund_status status;
    bool culprit_org;    /* "org", else "user" */
    int64_t created_at, requested_at, finished_at; /* Unix seconds; finished_at 0 = not yet */
    uint32_t *tickets;   /* ticket indexes, in request order, no duplicates */
    size_t ntickets;
    int64_t nominal, full; /* sums over the tickets, fixed at creation */
};

struct sandbox {
    struct catalog *cat;
    char **keys;
    size_t nkeys;
    int64_t expire;
    int64_t balance;

    pthread_mutex_t lock;
    pthread_cond_t wake; /* signalled on shutdown, ends delayed changes early */
    bool stopping;
    uint64_t prng;
    int64_t next_number;
    int64_t last_expire_ms;
    struct order **orders; /* in creation order */
    size_t norders, orders_cap, expiry_cursor;
    json_t *order_ix;      /* id -> index into orders */
    uint32_t *holder;      /* per ticket: 1 + index of the order holding it, 0 = none,
                              HOLDER_SOLD = sold before start (catalog "status": "SOLD") */
    uint32_t *reserved, *sold; /* per set */
    uint32_t *first_free;  /* per set: every ticket ranked below it is held */
    uint8_t *mark;         /* per ticket scratch space, all zero between operations */
    struct refund **refunds; /* in creation order */
    size_t nrefunds, refunds_cap;
    json_t *refund_ix;     /* id -> index into refunds */
};

/* Takes ownership of cat (also on failure). NULL when out of memory. */
struct sandbox *sandbox_new(struct catalog *cat, const struct sandbox_options *opt);
void sandbox_free(struct sandbox *sb);

/* Wakes delayed changes so that shutdown does not wait for them. */
void sandbox_stop(struct sandbox *sb);

/* The filters of a list, already validated (rest.c). GET
 * /v2/resources/orders and GET /v2/resources/refund_requests share this
 * struct and one paging loop (store_list_page); each kind of item reads
 * only the fields that apply to it. */
struct list_filter {
    bool has_created, has_finished;
    int64_t created_from, created_to;   /* created_at, both lists */
    int64_t finished_from, finished_to; /* finished_at, refund requests only */
    /* Bits (1 << enum order_status) for orders, (1 << enum refund_status)
     * for refund requests; 0 = any. */
    unsigned status_mask;
    const char **events;   /* NULL = any */
    size_t nevents;
    bool only_with_customer; /* orders only */
    int64_t page, page_size;
};

/* True when the filter names no events, or names ev. */
bool list_filter_has_event(const struct list_filter *f, const char *ev);

/* One kind of listed item (orders, refund requests), item i of the store's
 * array for that kind; every function is called with the lock held. */
struct store_list {
    size_t (*count)(const struct sandbox *sb);
    bool (*matches)(const struct sandbox *sb, size_t i, const struct list_filter *f);
    json_t *(*render)(struct sandbox *sb, size_t i, json_t *refs, int64_t now_s);
    json_t *(*new_refs)(void);
};

/* The list envelope {data, refs, pagination} of one page of the items that
 * match f, newest first, built under one lock hold (store.c). */
int store_list_page(struct sandbox *sb, const struct list_filter *f, const struct store_list *l,
                    json_t **out);

int store_create_order(struct sandbox *sb, const json_t *body, json_t **out);
/* delay_ms > 0: mark the order busy, wait that long unlocked, then apply. */
int store_patch_order(struct sandbox *sb, const char *id, const json_t *body, int delay_ms,
                      json_t **out);
int store_get_order(struct sandbox *sb, const char *id, json_t **out);
int store_list_orders(struct sandbox *sb, const struct list_filter *f, json_t **out);
int store_check_promocode(struct sandbox *sb, const json_t *body, json_t **out);
/* PUT /v2/services/orders/mosbilet/user_data (mosbilet.c): 202 with *out
 * NULL, or an error. */
int store_mosbilet_user_data(struct sandbox *sb, const json_t *body, json_t **out);

/* Refund requests (refunds.c, spec §3.11). */
int store_create_refund(struct sandbox *sb, const json_t *body, json_t **out);
int store_patch_refund(struct sandbox *sb, const char *id, const json_t *body, json_t **out);
int store_get_refund(struct sandbox *sb, const char *id, json_t **out);
int store_list_refunds(struct sandbox *sb, const struct list_filter *f, json_t **out);
void store_free_refunds(struct sandbox *sb);

/* Shared by the store's files (store.c, orders.c), lock held. */
uint64_t store_random(struct sandbox *sb);
uint32_t store_order_index(const struct sandbox *sb, const struct order *o);
void store_hold(struct sandbox *sb, uint32_t oi, uint32_t t);
void store_release(struct sandbox *sb, uint32_t t);
void store_finish(struct sandbox *sb, struct order *o, enum order_status status, int64_t now_s);
void store_expire_due(struct sandbox *sb, int64_t now_ms);

/* {"errors": [msg]}, msg formatted like printf. Messages echo what a
 * request sent (ids, statuses, keys) in full; bytes that are not UTF-8 come
 * out as '?'. NULL when out of memory. */
json_t *error_body(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Appends such a message to the array errors; false when out of memory. */
bool error_add(json_t *errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
