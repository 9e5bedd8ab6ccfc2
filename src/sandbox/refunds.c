/*
 * refunds.c: refund requests of tc-sandbox (spec §3.11): create one for
 * tickets of a done order, approve or reject it, read and list them.
 *
 * A refund request starts `new`; approving it puts its tickets back on
 * sale (the done order still lists them, with their barcodes), rejecting
 * it only ends it. A ticket is in at most one refund request of its order
 * that was not rejected. The amounts are fixed when the request is made:
 * refund_nominal (and delta) is the sum of the tickets' nominal,
 * customer_money the sum of their full amounts, both as the order was
 * priced when it was done. Everything runs under the store lock.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pricing.h"
#include "render.h"
#include "store.h"
#include "util.h"

static const char *const refund_status_names[] = { "new", "in_progress", "approved",
                                                   "rejected" };
static const char *const order_status_names[] = { "executed", "done", "cancelled", "expired" };

static void refund_free(struct refund *r)
{
    if (!r) return;
    free(r->tickets);
    free(r);
}

void store_free_refunds(struct sandbox *sb)
{
    for (size_t i = 0; i < sb->nrefunds; i++) refund_free(sb->refunds[i]);
    free(sb->refunds);
    sb->refunds = NULL;
    sb->nrefunds = sb->refunds_cap = 0;
    json_decref(sb->refund_ix);
    sb->refund_ix = NULL;
}

static struct refund *find_refund(struct sandbox *sb, const char *id)
{
    json_t *v = json_object_get(sb->refund_ix, id);
    return v ? sb->refunds[json_integer_value(v)] : NULL;
}

/* ---- rendering ---------------------------------------------------------- */

/* {events, orders, partners, tickets}, all empty. */
static json_t *refund_refs(void)
{
    return json_pack("{s:{},s:{},s:{},s:{}}", "events", "orders", "partners", "tickets");
}

/* The ticket object of the rendered order, without seat and barcode. */
static json_t *ticket_ref(const json_t *order, const char *id)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(order, "tickets"), i, t) {
        if (strcmp(json_string_value(json_object_get(t, "id")), id) != 0) continue;
        json_t *copy = json_deep_copy(t);
        if (copy) {
            json_object_del(copy, "seat");
            json_object_del(copy, "barcode");
        }
        return copy;
    }
    return NULL;
}

/* Adds the refund's order (with its events and partners) and tickets to
 * refs; returns the refund object, or NULL when out of memory. */
static json_t *render_refund(struct sandbox *sb, const struct refund *r, json_t *refs,
                             int64_t now_s)
{
    const struct order *o = sb->orders[r->order];
    const struct cat_event *ev = &sb->cat->events[o->event];
    json_t *orders = json_object_get(refs, "orders"), *ref_tickets = json_object_get(refs, "tickets");
    json_t *order = json_object_get(orders, o->id);
    if (!order) {
        json_t *scratch = render_refs();
        order = scratch ? render_order(sb, o, scratch, now_s) : NULL;
        if (!order || json_object_set_new(orders, o->id, order) != 0 ||
            json_object_update_missing(json_object_get(refs, "events"),
                                       json_object_get(scratch, "events")) != 0 ||
            json_object_update_missing(json_object_get(refs, "partners"),
                                       json_object_get(scratch, "partners")) != 0) {
            json_decref(scratch);
            return NULL;
        }
        json_decref(scratch);
    }
    json_t *ids = json_array();
    if (!ids) return NULL;
    for (size_t i = 0; i < r->ntickets; i++) {
        const char *id = sb->cat->tickets[r->tickets[i]].id;
        if (json_array_append_new(ids, json_string(id)) != 0) {
            json_decref(ids);
            return NULL;
        }
        if (!json_object_get(ref_tickets, id) &&
            json_object_set_new(ref_tickets, id, ticket_ref(order, id)) != 0) {
            json_decref(ids);
            return NULL;
        }
    }
    json_t *finished = r->finished_at ? render_time(r->finished_at) : json_null();
    return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:s,s:s,s:s,s:s,s:s,s:o}", "id",
                     r->id, "status", refund_status_names[r->status], "culprit",
                     r->culprit_org ? "org" : "user", "created_at", render_time(r->created_at),
                     "finished_at", finished, "requested_at", render_time(r->requested_at),
                     "refund_nominal", render_money(r->nominal), "delta",
                     render_money(r->nominal), "customer_money", render_money(r->full),
                     "event", ev->id, "org", ev->org, "order", o->id, "vendor",
                     sb->cat->distributor, "policy", "general", "tickets", ids);
}

/* 200 {data: refund, refs}, or 500. */
static int refund_response(struct sandbox *sb, const struct refund *r, int64_t now_s,
                           json_t **out)
{
    json_t *refs = refund_refs();
    json_t *data = refs ? render_refund(sb, r, refs, now_s) : NULL;
    *out = data ? json_pack("{s:o,s:o}", "data", data, "refs", refs) : NULL;
    if (!*out) {
        if (!data) json_decref(refs);
        *out = error_body("out of memory");
        return 500;
    }
    return 200;
}

/* ---- create ------------------------------------------------------------- */

/* The body of a create after the shape checks; pointers borrow from it. */
struct refund_args {
    const char *order;
    const json_t *tickets;
    bool culprit_org;
    bool has_requested;
    int64_t requested_at;
};

/* A value as the API's validator quotes it: a string as it is, anything
 * else as JSON. */
static void add_culprit_error(json_t *errors, const json_t *v)
{
    static const char *fmt = "culprit Value '%s' not in list of avaiable values ['user', 'org']";
    if (json_is_string(v)) {
        error_add(errors, fmt, json_string_value(v));
        return;
    }
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    error_add(errors, fmt, text ? text : "?");
    free(text);
}

static void read_refund_args(const json_t *body, struct refund_args *a, json_t *errors)
{
    json_t *v;
    memset(a, 0, sizeof *a);
    v = json_object_get(body, "order");
    if (!v || json_is_null(v))
        error_add(errors, "order is required");
    else if (!json_is_string(v))
        error_add(errors, "order must be an id string");
    else
        a->order = json_string_value(v);

    v = json_object_get(body, "culprit");
    if (!v || json_is_null(v))
        error_add(errors, "culprit is required");
    else if (json_is_string(v) && strcmp(json_string_value(v), "org") == 0)
        a->culprit_org = true;
    else if (!json_is_string(v) || strcmp(json_string_value(v), "user") != 0)
        add_culprit_error(errors, v);

    v = json_object_get(body, "tickets");
    if (!v || json_is_null(v)) {
        error_add(errors, "tickets is required");
    } else if (!json_is_array(v)) {
        error_add(errors, "tickets must be a list of ticket ids");
    } else if (json_array_size(v) == 0) {
        /* The validator's message, then the service's own (spec §3.2). */
        error_add(errors, "tickets list length is less than 1");
        error_add(errors, "Empty tickets for refund");
    } else {
        size_t i;
        json_t *item;
        bool ok = true;
        json_array_foreach(v, i, item) ok = ok && json_is_string(item);
        if (ok)
            a->tickets = v;
        else
            error_add(errors, "tickets must be a list of ticket ids");
    }

    v = json_object_get(body, "requested_at");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || !parse_datetime(json_string_value(v), &a->requested_at))
            error_add(errors, "requested_at must be a date-time such as 2019-12-15T13:01:02");
        else
            a->has_requested = true;
    }
}

/* Resolves the requested tickets into list (no duplicates): each must be
 * one of the order's. Returns the count, or 0 with *err set. */
static size_t resolve_refund_tickets(struct sandbox *sb, const struct order *o,
                                     const json_t *ids, uint32_t *list, json_t **err)
{
    size_t n = 0, i;
    json_t *v;
    bool bad = false;
    for (size_t k = 0; k < o->ntickets; k++) sb->mark[o->tickets[k]] = 1;
    json_array_foreach(ids, i, v) {
        long t = catalog_ticket(sb->cat, json_string_value(v));
        if (t < 0 || sb->mark[t] == 0) {
            bad = true;
            break;
        }
        if (sb->mark[t] == 1) {
            sb->mark[t] = 2;
            list[n++] = (uint32_t)t;
        }
    }
    for (size_t k = 0; k < o->ntickets; k++) sb->mark[o->tickets[k]] = 0;
    if (bad) {
        *err = error_body("bad tickets");
        return 0;
    }
    return n;
}

/* True when one of list[0..n) is in a refund request of order oi that was
 * not rejected. */
static bool already_refunded(struct sandbox *sb, uint32_t oi, const uint32_t *list, size_t n)
{
    bool found = false;
    for (size_t i = 0; i < n; i++) sb->mark[list[i]] = 1;
    for (size_t k = 0; k < sb->nrefunds && !found; k++) {
        const struct refund *r = sb->refunds[k];
        if (r->order != oi || r->status == REFUND_REJECTED) continue;
        for (size_t j = 0; j < r->ntickets && !found; j++) found = sb->mark[r->tickets[j]];
    }
    for (size_t i = 0; i < n; i++) sb->mark[list[i]] = 0;
    return found;
}

/* Adds a new refund request that takes list (n tickets, owned on success). */
static struct refund *refund_new(struct sandbox *sb, uint32_t oi, const struct refund_args *a,
                                 uint32_t *list, size_t n, int64_t now_s)
{
    if (sb->nrefunds == sb->refunds_cap) {
        size_t cap = sb->refunds_cap ? sb->refunds_cap * 2 : 16;
        struct refund **v = realloc(sb->refunds, cap * sizeof *v);
        if (!v) return NULL;
        sb->refunds = v;
        sb->refunds_cap = cap;
    }
    struct refund *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    do {
        uint64_t x = store_random(sb), y = store_random(sb);
        snprintf(r->id, sizeof r->id, "%016" PRIx64 "%08" PRIx32, x, (uint32_t)y);
    } while (json_object_get(sb->refund_ix, r->id) || json_object_get(sb->order_ix, r->id));
    if (json_object_set_new(sb->refund_ix, r->id, json_integer((json_int_t)sb->nrefunds)) != 0) {
        free(r);
        return NULL;
    }
    const struct order *o = sb->orders[oi];
    r->order = oi;
    r->status = REFUND_NEW;
    r->culprit_org = a->culprit_org;
    r->created_at = now_s;
    r->requested_at = a->has_requested ? a->requested_at : now_s;
    r->tickets = list;
    r->ntickets = n;
    for (size_t i = 0; i < n; i++) {
        struct amounts unit;
        pricing_unit(sb->cat, o, sb->cat->tickets[list[i]].set, o->priced_at, &unit, NULL);
        r->nominal += unit.nominal;
        r->full += unit.full;
    }
    sb->refunds[sb->nrefunds++] = r;
    return r;
}

int store_create_refund(struct sandbox *sb, const json_t *body, json_t **out)
{
    struct refund_args a;
    json_t *errors = json_array();
    if (!errors) {
        *out = error_body("out of memory");
        return 500;
    }
    read_refund_args(body, &a, errors);
    if (json_array_size(errors) > 0) {
        *out = json_pack("{s:o}", "errors", errors);
        return 400;
    }
    json_decref(errors);

    uint32_t *list = malloc((json_array_size(a.tickets) + 1) * sizeof *list);
    if (!list) {
        *out = error_body("out of memory");
        return 500;
    }
    int64_t now = now_ms();
    int status = 400;
    pthread_mutex_lock(&sb->lock);
    store_expire_due(sb, now);
    json_t *ix = json_object_get(sb->order_ix, a.order);
    const struct order *o = ix ? sb->orders[json_integer_value(ix)] : NULL;
    size_t n = 0;
    if (!o) {
        *out = error_body("Order %s not found", a.order);
    } else if (o->status != ORDER_DONE) {
        *out = error_body("wrong order (id: %s) status: %s", o->id,
                          order_status_names[o->status]);
    } else if ((n = resolve_refund_tickets(sb, o, a.tickets, list, out)) == 0) {
        /* *out is set */
    } else if (already_refunded(sb, (uint32_t)json_integer_value(ix), list, n)) {
        *out = error_body("Some tickets already use in another refund request");
    } else {
        struct refund *r = refund_new(sb, (uint32_t)json_integer_value(ix), &a, list, n,
                                      now / 1000);
        if (!r) {
            status = 500;
            *out = error_body("out of memory");
        } else {
            list = NULL; /* the refund owns it */
            status = refund_response(sb, r, now / 1000, out);
        }
    }
    pthread_mutex_unlock(&sb->lock);
    free(list);
    return status;
}

/* ---- approve, reject, read, list --------------------------------------- */

/* An approved refund's ticket goes back on sale, if its done order still
 * holds it (it always does: nothing else can take a sold ticket). */
static void return_to_sale(struct sandbox *sb, uint32_t oi, uint32_t t)
{
    const struct cat_ticket *tk = &sb->cat->tickets[t];
    if (sb->holder[t] != oi + 1) return;
    sb->holder[t] = 0;
    sb->sold[tk->set]--;
    if (tk->rank < sb->first_free[tk->set]) sb->first_free[tk->set] = tk->rank;
}

int store_patch_refund(struct sandbox *sb, const char *id, const json_t *body, json_t **out)
{
    json_t *v = json_object_get(body, "status");
    if (!v || json_is_null(v)) {
        *out = error_body("status is required");
        return 400;
    }
    const char *want = json_is_string(v) ? json_string_value(v) : NULL;
    bool approve = want && strcmp(want, "approved") == 0;
    if (!approve && !(want && strcmp(want, "rejected") == 0)) {
        char *text = want ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        *out = error_body("Incorrect status %s for this operation",
                          want ? want : text ? text : "?");
        free(text);
        return 400;
    }

    int64_t now = now_ms();
    int status = 400;
    pthread_mutex_lock(&sb->lock);
    store_expire_due(sb, now);
    struct refund *r = find_refund(sb, id);
    if (!r) {
        status = 404;
        *out = error_body("RefundRequest %s not found", id);
    } else if (approve && r->status != REFUND_NEW) {
        *out = error_body("RefundRequest in wrong status `%s` for approve",
                          refund_status_names[r->status]);
    } else if (!approve && r->status != REFUND_NEW) {
        *out = error_body("Failed to reject refund request %s", r->id);
    } else {
        if (approve) {
            for (size_t i = 0; i < r->ntickets; i++) return_to_sale(sb, r->order, r->tickets[i]);
            if (sb->balance >= 0) sb->balance += r->full;
        }
        r->status = approve ? REFUND_APPROVED : REFUND_REJECTED;
        r->finished_at = now / 1000;
        status = refund_response(sb, r, now / 1000, out);
    }
    pthread_mutex_unlock(&sb->lock);
    return status;
}

int store_get_refund(struct sandbox *sb, const char *id, json_t **out)
{
    int64_t now = now_ms();
    int status;
    pthread_mutex_lock(&sb->lock);
    store_expire_due(sb, now);
    const struct refund *r = find_refund(sb, id);
    if (!r) {
        status = 404;
        *out = error_body("RefundRequest %s not found", id);
    } else {
        status = refund_response(sb, r, now / 1000, out);
    }
    pthread_mutex_unlock(&sb->lock);
    return status;
}

static size_t refund_count(const struct sandbox *sb)
{
    return sb->nrefunds;
}

static bool refund_matches(const struct sandbox *sb, size_t i, const struct list_filter *f)
{
    const struct refund *r = sb->refunds[i];
    if (f->status_mask && !(f->status_mask & (1u << r->status))) return false;
    if (f->has_created && (r->created_at < f->created_from || r->created_at > f->created_to))
        return false;
    if (f->has_finished && (r->finished_at == 0 || r->finished_at < f->finished_from ||
                            r->finished_at > f->finished_to))
        return false;
    return list_filter_has_event(f, sb->cat->events[sb->orders[r->order]->event].id);
}

static json_t *refund_item(struct sandbox *sb, size_t i, json_t *refs, int64_t now_s)
{
    return render_refund(sb, sb->refunds[i], refs, now_s);
}

/* Newest first, like the orders. */
int store_list_refunds(struct sandbox *sb, const struct list_filter *f, json_t **out)
{
    static const struct store_list refunds = { refund_count, refund_matches, refund_item,
                                               refund_refs };
    return store_list_page(sb, f, &refunds, out);
}
