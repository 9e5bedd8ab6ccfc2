/*
 * store.c: the state of tc-sandbox: orders, who holds which ticket, expiry,
 * and the reads the gRPC listener makes through sandbox.h.
 *
 * One mutex guards everything mutable. Orders expire in creation order
 * (every order lives --expire seconds), so lazy expiry only has to look at
 * the oldest live orders, from a cursor that moves forward.
 */
#include "store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: small, seedable, good enough for ids and barcodes. */
uint64_t store_random(struct sandbox *sb)
{
    uint64_t z = (sb->prng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct sandbox *sandbox_new(struct catalog *cat, const struct sandbox_options *opt)
{
    struct sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        catalog_free(cat);
        return NULL;
    }
    sb->cat = cat;
    sb->expire = opt->expire;
    sb->balance = opt->balance;
    sb->prng = opt->seed;
    sb->next_number = 59743;
    pthread_mutex_init(&sb->lock, NULL);
    pthread_cond_init(&sb->wake, NULL);
    sb->keys = calloc(opt->nkeys + 1, sizeof *sb->keys);
    sb->order_ix = json_object();
    sb->refund_ix = json_object();
    sb->holder = calloc(cat->ntickets + 1, sizeof *sb->holder);
    sb->mark = calloc(cat->ntickets + 1, 1);
    sb->reserved = calloc(cat->nsets + 1, sizeof *sb->reserved);
    sb->sold = calloc(cat->nsets + 1, sizeof *sb->sold);
    sb->first_free = calloc(cat->nsets + 1, sizeof *sb->first_free);
    if (!sb->keys || !sb->order_ix || !sb->refund_ix || !sb->holder || !sb->mark || !sb->reserved || !sb->sold ||
        !sb->first_free) {
        sandbox_free(sb);
        return NULL;
    }
    for (uint32_t t = 0; t < cat->ntickets; t++) {
        if (!cat->tickets[t].sold) continue;
        sb->holder[t] = HOLDER_SOLD;
        sb->sold[cat->tickets[t].set]++;
    }
    for (size_t i = 0; i < opt->nkeys; i++) {
        sb->keys[i] = strdup(opt->keys[i]);
        if (!sb->keys[i]) {
            sandbox_free(sb);
            return NULL;
        }
        sb->nkeys++;
    }
    return sb;
}

static void order_free(struct order *o)
{
    if (!o) return;
    free(o->tickets);
    free(o->barcodes);
    free(o->promos);
    json_decref(o->customer);
    json_decref(o->vendor_data);
    free(o->answer);
    free(o);
}

void sandbox_free(struct sandbox *sb)
{
    if (!sb) return;
    for (size_t i = 0; i < sb->norders; i++) order_free(sb->orders[i]);
    free(sb->orders);
    for (size_t i = 0; i < sb->nkeys; i++) free(sb->keys[i]);
    free(sb->keys);
    json_decref(sb->order_ix);
    store_free_refunds(sb);
    free(sb->holder);
    free(sb->mark);
    free(sb->reserved);
    free(sb->sold);
    free(sb->first_free);
    pthread_cond_destroy(&sb->wake);
    pthread_mutex_destroy(&sb->lock);
    catalog_free(sb->cat);
    free(sb);
}

void sandbox_stop(struct sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    sb->stopping = true;
    pthread_cond_broadcast(&sb->wake);
    pthread_mutex_unlock(&sb->lock);
}

/* ---- inventory --------------------------------------------------------- */

uint32_t store_order_index(const struct sandbox *sb, const struct order *o)
{
    json_t *v = json_object_get(sb->order_ix, o->id);
    return (uint32_t)json_integer_value(v);
}

/* Puts ticket t into order o (index oi). The caller checked it is free. */
void store_hold(struct sandbox *sb, uint32_t oi, uint32_t t)
{
    sb->holder[t] = oi + 1;
    sb->reserved[sb->cat->tickets[t].set]++;
}

/* Returns a ticket held by a live (executed) order to sale. */
void store_release(struct sandbox *sb, uint32_t t)
{
    const struct cat_ticket *tk = &sb->cat->tickets[t];
    sb->holder[t] = 0;
    sb->reserved[tk->set]--;
    if (tk->rank < sb->first_free[tk->set]) sb->first_free[tk->set] = tk->rank;
}

/* Ends an executed order: its tickets go back on sale; the list is kept so
 * the order still shows what it held. */
void store_finish(struct sandbox *sb, struct order *o, enum order_status status, int64_t now_s)
{
    for (size_t i = 0; i < o->ntickets; i++) store_release(sb, o->tickets[i]);
    store_order_changed(sb, o);
    o->status = status;
    o->priced_at = now_s;
}

void store_order_changed(struct sandbox *sb, struct order *o)
{
    sb->answer_bytes -= o->answer_len;
    free(o->answer);
    o->answer = NULL;
    o->answer_len = 0;
}

/* Applies every expiry that is due. Called with the lock held. */
void store_expire_due(struct sandbox *sb, int64_t now)
{
    while (sb->expiry_cursor < sb->norders) {
        struct order *o = sb->orders[sb->expiry_cursor];
        if (o->status == ORDER_EXECUTED) {
            if (o->expire_ms > now) break;
            store_finish(sb, o, ORDER_EXPIRED, o->expired_after);
        }
        sb->expiry_cursor++;
    }
}

/* ---- sandbox.h --------------------------------------------------------- */

bool sandbox_key_ok(const struct sandbox *sb, const char *key)
{
    if (!key) return false;
    for (size_t i = 0; i < sb->nkeys; i++)
        if (strcmp(sb->keys[i], key) == 0) return true;
    return false;
}

const json_t *sandbox_catalog(const struct sandbox *sb)
{
    return sb->cat->doc;
}

void sandbox_catalog_release(struct sandbox *sb, const char *key)
{
    json_object_del(sb->cat->doc, key);
}

static enum sandbox_ticket_status ticket_status(const struct sandbox *sb, uint32_t t,
                                                int64_t *till)
{
    uint32_t h = sb->holder[t];
    if (h == 0) return SB_VACANT;
    if (h == HOLDER_SOLD) return SB_SOLD;
    const struct order *o = sb->orders[h - 1];
    if (o->status == ORDER_DONE) return SB_SOLD;
    *till = o->expired_after;
    return SB_RESERVED;
}

/* A seat's state at the moment of a snapshot. */
struct seat_state {
    int64_t reserved_till;
    enum sandbox_ticket_status status;
};

/* Both passes of sandbox_each_seat() visit the same tickets in this order. */
static bool is_seat(const struct catalog *cat, const struct cat_set *set, uint32_t t)
{
    return set->with_seats && cat->tickets[t].sector != NULL;
}

enum sandbox_walk sandbox_each_seat(struct sandbox *sb, const char *event, sandbox_seat_fn fn,
                                    void *ud)
{
    const struct catalog *cat = sb->cat;
    long ev = catalog_event(cat, event);
    if (ev < 0) return SB_WALK_NO_EVENT;
    const struct cat_event *e = &cat->events[ev];
    const struct cat_set *first = &cat->sets[e->first_set], *end = first + e->nsets;

    size_t n = 0;
    for (const struct cat_set *set = first; set < end; set++)
        if (set->with_seats) n += set->count;
    if (n == 0) return SB_WALK_OK;
    struct seat_state *snap = malloc(n * sizeof *snap);
    if (!snap) return SB_WALK_NO_MEMORY;

    /* Under the lock only the copy: a few bytes per seat. */
    size_t i = 0;
    pthread_mutex_lock(&sb->lock);
    store_expire_due(sb, now_ms());
    for (const struct cat_set *set = first; set < end; set++) {
        for (uint32_t t = set->first; t < set->first + set->count; t++) {
            if (!is_seat(cat, set, t)) continue;
            snap[i].reserved_till = 0;
            snap[i].status = ticket_status(sb, t, &snap[i].reserved_till);
            i++;
        }
    }
    pthread_mutex_unlock(&sb->lock);

    i = 0;
    for (const struct cat_set *set = first; set < end; set++) {
        for (uint32_t t = set->first; t < set->first + set->count; t++) {
            if (!is_seat(cat, set, t)) continue;
            const struct cat_ticket *tk = &cat->tickets[t];
            struct sandbox_seat seat = {
                .ticket = tk->id, .set = set->id, .sector = tk->sector, .row = tk->row,
                .number = tk->seat, .status = snap[i].status,
                .reserved_till = snap[i].reserved_till,
            };
            i++;
            fn(ud, &seat);
        }
    }
    free(snap);
    return SB_WALK_OK;
}

bool sandbox_set_counts(struct sandbox *sb, const char *set, struct sandbox_counts *out)
{
    long s = catalog_set(sb->cat, set);
    if (s < 0) return false;
    pthread_mutex_lock(&sb->lock);
    store_expire_due(sb, now_ms());
    out->amount = sb->cat->sets[s].count;
    out->vacant = sb->cat->sets[s].count - sb->reserved[s] - sb->sold[s];
    pthread_mutex_unlock(&sb->lock);
    return true;
}

/* The formatted message as a JSON string, whole (an id in it may be long)
 * and valid UTF-8 whatever bytes the arguments held. NULL when out of
 * memory. */
static json_t *message(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return NULL;
    char *msg = malloc((size_t)n + 1);
    if (!msg) return NULL;
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    tc_utf8_scrub(msg); /* jansson needs valid UTF-8; ids in paths are raw bytes */
    json_t *s = json_string(msg);
    free(msg);
    return s;
}

json_t *error_body(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *msg = message(fmt, ap);
    va_end(ap);
    return msg ? json_pack("{s:[o]}", "errors", msg) : NULL;
}

bool error_add(json_t *errors, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *msg = message(fmt, ap);
    va_end(ap);
    return json_array_append_new(errors, msg) == 0;
}

/* ---- lists --------------------------------------------------------------- */

bool list_filter_has_event(const struct list_filter *f, const char *ev)
{
    if (!f->events) return true;
    for (size_t i = 0; i < f->nevents; i++)
        if (strcmp(f->events[i], ev) == 0) return true;
    return false;
}

int store_list_page(struct sandbox *sb, const struct list_filter *f, const struct store_list *l,
                    json_t **out)
{
    int64_t now = now_ms();
    json_t *refs = l->new_refs(), *list = json_array();
    int64_t total = 0, first = (f->page - 1) * f->page_size;
    bool ok = refs && list;
    if (ok) {
        pthread_mutex_lock(&sb->lock);
        store_expire_due(sb, now);
        for (size_t i = l->count(sb); i-- > 0;) { /* newest first */
            if (!l->matches(sb, i, f)) continue;
            if (total >= first && total < first + f->page_size) {
                json_t *data = l->render(sb, i, refs, now / 1000);
                if (!data || json_array_append_new(list, data) != 0) ok = false;
            }
            total++;
        }
        pthread_mutex_unlock(&sb->lock);
    }
    *out = ok ? json_pack("{s:o,s:o,s:{s:I,s:I,s:I}}", "data", list, "refs", refs, "pagination",
                          "page", (json_int_t)f->page, "page_size", (json_int_t)f->page_size,
                          "total", (json_int_t)total)
              : NULL;
    if (!ok) {
        json_decref(refs);
        json_decref(list);
    }
    if (!*out) {
        *out = error_body("out of memory");
        return 500;
    }
    return 200;
}
