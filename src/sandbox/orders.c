/*
 * orders.c: the REST operations on orders: create, change, read, list,
 * and the promocode check.
 *
 * A change request is checked in two rounds. First its shape (types,
 * lengths) without the lock, by order_request.c; then, locked, the
 * business rules in the order of spec §5.9. The reservation is applied
 * first because promocodes and `done` depend on the tickets; if a later
 * rule refuses the request, the previous ticket list is put back, which
 * always succeeds because the lock was held throughout. So a 400 never
 * leaves a half-applied change.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "order_request.h"
#include "pricing.h"
#include "render.h"
#include "store.h"
#include "util.h"

#define NOT_ENOUGH_MONEY "Not enough money, \xd1\x81ontact to TicketsCloud manager"

static struct order *find_order(struct sandbox *sb, const char *id)
{
    json_t *v = json_object_get(sb->order_ix, id);
    return v ? sb->orders[json_integer_value(v)] : NULL;
}

static bool reserve_tickets(struct order *o, size_t n)
{
    if (n <= o->cap) return true;
    size_t cap = o->cap ? o->cap : 8;
    while (cap < n) cap *= 2;
    uint32_t *t = realloc(o->tickets, cap * sizeof *t);
    if (!t) return false;
    o->tickets = t;
    o->cap = cap;
    return true;
}

static struct order *order_new(struct sandbox *sb, uint32_t ev, int64_t now)
{
    if (sb->norders >= HOLDER_SOLD - 1) return NULL; /* holder values are 1 + an index */
    if (sb->norders == sb->orders_cap) {
        size_t cap = sb->orders_cap ? sb->orders_cap * 2 : 64;
        struct order **a = realloc(sb->orders, cap * sizeof *a);
        if (!a) return NULL;
        sb->orders = a;
        sb->orders_cap = cap;
    }
    struct order *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->vendor_data = json_object();
    if (!o->vendor_data) {
        free(o);
        return NULL;
    }
    do {
        uint64_t a = store_random(sb), b = store_random(sb);
        snprintf(o->id, sizeof o->id, "%016" PRIx64 "%08" PRIx32, a, (uint32_t)b);
    } while (json_object_get(sb->order_ix, o->id));
    if (json_object_set_new(sb->order_ix, o->id, json_integer((json_int_t)sb->norders)) != 0) {
        json_decref(o->vendor_data);
        free(o);
        return NULL;
    }
    o->number = sb->next_number++;
    o->event = ev;
    o->status = ORDER_EXECUTED;
    o->created_at = now / 1000;
    o->expired_after = o->created_at + sb->expire;
    /* Orders expire in creation order, even if the clock steps back. */
    o->expire_ms = now + sb->expire * 1000;
    if (o->expire_ms < sb->last_expire_ms) o->expire_ms = sb->last_expire_ms;
    sb->last_expire_ms = o->expire_ms;
    o->priced_at = o->created_at;
    sb->orders[sb->norders++] = o;
    return o;
}

/* Undoes order_new() for an order that was refused; it holds no tickets. */
static void order_drop(struct sandbox *sb, struct order *o)
{
    json_object_del(sb->order_ix, o->id);
    sb->norders--;
    sb->next_number--;
    free(o->tickets);
    free(o->promos);
    json_decref(o->customer);
    json_decref(o->vendor_data);
    free(o);
}

/* Makes list[0..n) the order's tickets: releases what it no longer lists
 * and takes the rest, which the caller checked are free. The caller
 * reserved room for n tickets. */
static void set_held(struct sandbox *sb, struct order *o, const uint32_t *list, size_t n)
{
    uint32_t oi = store_order_index(sb, o);
    for (size_t i = 0; i < n; i++) sb->mark[list[i]] = 1;
    for (size_t i = 0; i < o->ntickets; i++)
        if (!sb->mark[o->tickets[i]]) store_release(sb, o->tickets[i]);
    for (size_t i = 0; i < n; i++) {
        sb->mark[list[i]] = 0;
        if (sb->holder[list[i]] != oi + 1) store_hold(sb, oi, list[i]);
    }
    if (n) memmove(o->tickets, list, n * sizeof *list);
    o->ntickets = n;
}

/* Desired state from `tickets` (spec §5.9): kept tickets in their old
 * order, then the free requested ones in request order. ids were checked
 * to be tickets of the event. Returns the number of requested tickets that
 * could not be had. */
static size_t plan_tickets(struct sandbox *sb, const struct order *o, const uint32_t *want,
                           size_t nwant, uint32_t *plan, size_t *nplan)
{
    uint32_t oi = store_order_index(sb, o);
    size_t k = 0, missing = 0;
    for (size_t i = 0; i < nwant; i++) sb->mark[want[i]] = 1;
    for (size_t i = 0; i < o->ntickets; i++)
        if (sb->mark[o->tickets[i]]) plan[k++] = o->tickets[i];
    for (size_t i = 0; i < nwant; i++) {
        uint32_t t = want[i];
        if (sb->mark[t] != 1) continue; /* a duplicate */
        sb->mark[t] = 2;
        if (sb->holder[t] == oi + 1) continue; /* kept above */
        if (sb->holder[t] == 0)
            plan[k++] = t;
        else
            missing++;
    }
    for (size_t i = 0; i < nwant; i++) sb->mark[want[i]] = 0;
    *nplan = k;
    return missing;
}

/* Desired state from `random`: per set of the event, keep the first held
 * tickets up to the wanted count (LIFO release), then top up with free
 * tickets, lowest number first. Returns how many could not be had. */
static size_t plan_random(struct sandbox *sb, const struct order *o, const json_t *random,
                          uint32_t *plan, size_t *nplan, size_t cap)
{
    const struct catalog *cat = sb->cat;
    const struct cat_event *ev = &cat->events[o->event];
    int64_t *want = calloc(ev->nsets + 1, sizeof *want), *have = calloc(ev->nsets + 1, sizeof *have);
    size_t k = 0, missing = 0;
    const char *key;
    json_t *n;
    if (!want || !have) {
        free(want);
        free(have);
        *nplan = SIZE_MAX;
        return 0;
    }
    json_object_foreach((json_t *)random, key, n) {
        long s = catalog_set(cat, key);
        if (s >= 0 && cat->sets[s].event == o->event)
            want[s - ev->first_set] = json_integer_value(n);
    }
    for (size_t i = 0; i < o->ntickets; i++) {
        uint32_t s = cat->tickets[o->tickets[i]].set - ev->first_set;
        if (have[s] < want[s]) {
            plan[k++] = o->tickets[i];
            have[s]++;
        }
    }
    json_object_foreach((json_t *)random, key, n) {
        long s = catalog_set(cat, key);
        if (s < 0 || cat->sets[s].event != o->event) continue;
        const struct cat_set *set = &cat->sets[s];
        uint32_t rel = (uint32_t)s - ev->first_set;
        /* Skip the held tickets at the start of the set once for all. */
        uint32_t i = sb->first_free[s];
        while (i < set->count && sb->holder[set->by_number[i]] != 0) i++;
        sb->first_free[s] = i;
        for (; i < set->count && have[rel] < want[rel] && k < cap; i++) {
            uint32_t t = set->by_number[i];
            if (sb->holder[t] == 0) {
                plan[k++] = t;
                have[rel]++;
            }
        }
        if (have[rel] < want[rel]) missing += (size_t)(want[rel] - have[rel]);
    }
    free(want);
    free(have);
    *nplan = k;
    return missing;
}

/* Resolves the ids of `tickets`; unknown ids and tickets of other events
 * are refused with the documented message. */
static int resolve_tickets(struct sandbox *sb, const struct order *o, const json_t *ids,
                           uint32_t *out, json_t **err)
{
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        long t = catalog_ticket(sb->cat, id);
        if (t < 0 || sb->cat->sets[sb->cat->tickets[t].set].event != o->event) {
            *err = error_body("ticket (id = %s) does not belong to current event", id);
            return 400;
        }
        out[i] = (uint32_t)t;
    }
    return 0;
}

/* Applies `promocodes` (a list of codes: the order's desired promocodes).
 * Codes that cannot be applied are left out and reported as {code, msg}. */
static int apply_promocodes(struct sandbox *sb, struct order *o, const json_t *codes,
                            int64_t now_s, json_t *promo_errors)
{
    const struct cat_event *ev = &sb->cat->events[o->event];
    size_t n = json_array_size(codes), k = 0, i;
    uint32_t *list = calloc(n + 1, sizeof *list);
    json_t *v;
    if (!list) return 500;
    json_array_foreach(codes, i, v) {
        const struct cat_promo *p = catalog_promo(sb->cat, o->event, json_string_value(v));
        const char *code = NULL, *msg = NULL;
        bool dup = false;
        if (p)
            for (size_t j = 0; j < k; j++) dup |= &ev->promos[list[j]] == p;
        if (!p) {
            code = "promocode_not_found";
            msg = "Promocode not found";
        } else if (dup) {
            code = "promocode_already_used";
            msg = "Promocode already used";
        } else if (p->has_lifetime && (now_s < p->start || now_s > p->finish)) {
            code = "promocode_apply_info";
            msg = "Cant apply promocode by some reason";
        } else if (p->min > 0 && (int64_t)o->ntickets < p->min) {
            code = "promocode_limit_min_tickets";
            msg = "Need more tickets in order for promocode activation";
        }
        if (code)
            json_array_append_new(promo_errors, json_pack("{s:s,s:s}", "code", code, "msg", msg));
        else
            list[k++] = (uint32_t)(p - ev->promos);
    }
    free(o->promos);
    o->promos = list;
    o->npromos = k;
    return 0;
}

static char random_char(struct sandbox *sb, const char *alphabet, size_t n)
{
    return alphabet[store_random(sb) % n];
}

static int complete_order(struct sandbox *sb, struct order *o, int64_t now_s)
{
    char (*barcodes)[18] = calloc(o->ntickets + 1, sizeof *barcodes);
    if (!barcodes) return 500;
    for (size_t i = 0; i < o->ntickets; i++) {
        barcodes[i][0] = random_char(sb, "123456789", 9);
        for (int d = 1; d < 17; d++) barcodes[i][d] = random_char(sb, "0123456789", 10);
        barcodes[i][17] = '\0';
        uint32_t set = sb->cat->tickets[o->tickets[i]].set;
        sb->reserved[set]--;
        sb->sold[set]++;
    }
    for (int i = 0; i < 8; i++)
        o->code[i] = random_char(sb, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
    o->code[8] = '\0';
    free(o->barcodes);
    o->barcodes = barcodes;
    o->status = ORDER_DONE;
    o->done_at = now_s;
    o->priced_at = now_s;
    return 0;
}

/* ---- a change, step by step ---------------------------------------------- */

/* apply_change() runs the steps below in this order, which is that of the
 * business rules in spec §5.9. Each returns 0 to go on; what else it may
 * return is said at the step. When a step refuses the request,
 * apply_change() puts back what the earlier steps changed (struct undo). */

/* True when the change asks for status `done`. */
static bool wants_done(const struct change *ch)
{
    return ch->status && strcmp(ch->status, "done") == 0;
}

/* The rules that need only the request and the order's event. Returns 0,
 * or 400 with *err set; changes nothing. */
static int check_change_rules(const struct cat_event *ev, const struct change *ch,
                              json_t **err)
{
    if (ch->status && strcmp(ch->status, "done") != 0 && strcmp(ch->status, "cancelled") != 0) {
        *err = error_body("Incorrect status %s for this operation", ch->status);
        return 400;
    }
    if (ch->tickets && ch->random) {
        *err = error_body("Only one of tickets or random can be set");
        return 400;
    }
    if (ch->has_aon && !ch->tickets && !ch->random) {
        *err = error_body("'tickets' or 'random' must be");
        return 400;
    }
    if (ch->promocodes && ev->has_promotion) {
        *err = error_body("Cant use promocode when event have promotion");
        return 400;
    }
    return 0;
}

/* What a refused change puts back: the order's tickets as they were, and
 * its promocodes once replace_promocodes() has replaced them. */
struct undo {
    uint32_t *tickets; /* a copy */
    size_t ntickets;
    bool promos_replaced;
    uint32_t *promos;  /* the order's previous list, owned here until restored */
    size_t npromos;
};

/* Copies the order's tickets into u. False when out of memory. */
static bool undo_save(struct undo *u, const struct order *o)
{
    memset(u, 0, sizeof *u);
    u->ntickets = o->ntickets;
    u->tickets = malloc((u->ntickets + 1) * sizeof *u->tickets);
    if (!u->tickets) return false;
    if (u->ntickets) memcpy(u->tickets, o->tickets, u->ntickets * sizeof *u->tickets);
    return true;
}

/* Puts back the order's tickets (still free: the lock has been held since
 * they were released) and, when they were replaced, its promocodes. */
static void undo_restore(struct sandbox *sb, struct order *o, struct undo *u)
{
    set_held(sb, o, u->tickets, u->ntickets);
    if (u->promos_replaced) {
        free(o->promos);
        o->promos = u->promos;
        o->npromos = u->npromos;
        u->promos = NULL;
    }
}

/* Frees what u still owns: the ticket copy and, after an accepted change,
 * the replaced promocode list. */
static void undo_free(struct undo *u)
{
    free(u->tickets);
    free(u->promos);
}

/* Room for the plan of `random`: what the order holds now plus, per set
 * of its event, the count asked for, at most the set's size. */
static size_t random_room(const struct catalog *cat, const struct order *o,
                          const json_t *random)
{
    size_t cap = o->ntickets;
    const char *key;
    json_t *n;
    json_object_foreach((json_t *)random, key, n) {
        long s = catalog_set(cat, key);
        if (s >= 0 && cat->sets[s].event == o->event)
            cap += (size_t)json_integer_value(n) < cat->sets[s].count
                       ? (size_t)json_integer_value(n)
                       : cat->sets[s].count;
    }
    return cap;
}

/* Makes the order hold what `tickets` or `random` asks for (neither:
 * nothing to do). Returns 0 once the order holds the new list. Otherwise
 * its tickets are as they were, and it returns -1 when all_or_nothing
 * could not be met, 400 with *err set for an unknown ticket or one of
 * another event, or 500 when out of memory. */
static int reserve_requested(struct sandbox *sb, struct order *o, const struct change *ch,
                             json_t **err)
{
    size_t nold = o->ntickets, nplan = 0, missing = 0;
    uint32_t *want = NULL, *plan = NULL;
    int status = 0;
    if (ch->tickets) {
        size_t nwant = json_array_size(ch->tickets);
        want = malloc((nwant + 1) * sizeof *want);
        plan = malloc((nwant + nold + 1) * sizeof *plan);
        if (!want || !plan || !reserve_tickets(o, nwant + nold))
            status = 500;
        else if ((status = resolve_tickets(sb, o, ch->tickets, want, err)) == 0)
            missing = plan_tickets(sb, o, want, nwant, plan, &nplan);
    } else if (ch->random) {
        size_t cap = random_room(sb->cat, o, ch->random);
        plan = malloc((cap + 1) * sizeof *plan);
        if (!plan || !reserve_tickets(o, cap)) {
            status = 500;
        } else {
            missing = plan_random(sb, o, ch->random, plan, &nplan, cap);
            if (nplan == SIZE_MAX) status = 500;
        }
    }
    if (status == 0 && missing > 0 && ch->all_or_nothing)
        status = -1;
    else if (status == 0 && plan)
        set_held(sb, o, plan, nplan);
    free(want);
    free(plan);
    return status;
}

/* Makes `promocodes` the order's promocodes (apply_promocodes), keeping
 * the previous list in u. Returns 0, or 500 when out of memory. */
static int replace_promocodes(struct sandbox *sb, struct order *o, const json_t *codes,
                              int64_t now_s, json_t *promo_errors, struct undo *u)
{
    u->promos_replaced = true;
    u->promos = o->promos;
    u->npromos = o->npromos;
    o->promos = NULL;
    return apply_promocodes(sb, o, codes, now_s, promo_errors);
}

/* For status `done`: the order, with its new tickets and promocodes, must
 * hold a ticket, and a limited balance must cover its full amount.
 * Returns 0, or 400 with *err set; changes nothing. */
static int check_done(const struct sandbox *sb, const struct order *o, int64_t now_s,
                      json_t **err)
{
    struct amounts total;
    pricing_total(sb->cat, o, now_s, &total);
    if (o->ntickets == 0) {
        *err = error_body("there is no tickets in order");
        return 400;
    }
    if (sb->balance >= 0 && sb->balance < total.full) {
        *err = error_body(NOT_ENOUGH_MONEY);
        return 400;
    }
    return 0;
}

/* Sets settings.customer, settings.send_tickets and vendor_data (a null
 * value deletes its key). Returns 0, or 500 when the customer cannot be
 * copied, before anything is changed. */
static int apply_settings(struct order *o, const struct change *ch)
{
    if (ch->customer) {
        json_t *c = json_deep_copy(ch->customer);
        if (!c) return 500;
        json_decref(o->customer);
        o->customer = c;
    }
    if (ch->has_send_tickets) o->send_tickets = ch->send_tickets;
    if (ch->vendor_data) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)ch->vendor_data, key, v) {
            if (json_is_null(v))
                json_object_del(o->vendor_data, key);
            else
                json_object_set_new(o->vendor_data, key, json_deep_copy(v));
        }
    }
    return 0;
}

/* `done` completes the order and spends its full amount from a limited
 * balance; `cancelled` ends it. Returns 0, or 500 when out of memory,
 * before the status is changed. */
static int apply_status(struct sandbox *sb, struct order *o, const struct change *ch,
                        int64_t now_s)
{
    if (wants_done(ch)) {
        struct amounts total;
        pricing_total(sb->cat, o, now_s, &total);
        if (complete_order(sb, o, now_s) != 0) return 500;
        if (sb->balance >= 0) sb->balance -= total.full;
    } else if (ch->status) {
        store_finish(sb, o, ORDER_CANCELLED, now_s);
    }
    return 0;
}

/* The part of a change that needs the lock. Returns 0 when it was applied,
 * -1 when all_or_nothing could not be met and the order was left exactly as
 * it was (both answer 200 with the order), or an HTTP status with *err set
 * and nothing applied. */
static int apply_change(struct sandbox *sb, struct order *o, const struct change *ch,
                        int64_t now, json_t *promo_errors, json_t **err)
{
    int64_t now_s = now / 1000;
    struct undo undo;
    int status = check_change_rules(&sb->cat->events[o->event], ch, err);
    if (status != 0) return status;
    if (!undo_save(&undo, o)) return 500;

    /* Promocodes and `done` depend on the tickets, so they come first. */
    if ((status = reserve_requested(sb, o, ch, err)) != 0) goto out;
    if (ch->promocodes &&
        (status = replace_promocodes(sb, o, ch->promocodes, now_s, promo_errors, &undo)) != 0)
        goto rollback;
    if (wants_done(ch) && (status = check_done(sb, o, now_s, err)) != 0) goto rollback;

    /* Everything is accepted: the plain fields, then the status. */
    if ((status = apply_settings(o, ch)) != 0) goto rollback;
    if ((status = apply_status(sb, o, ch, now_s)) != 0) goto rollback;
    goto out;

rollback:
    undo_restore(sb, o, &undo);
out:
    undo_free(&undo);
    if (status == 500 && !*err) *err = error_body("out of memory");
    return status;
}

/* The response of a change: the order, refs and any promocode errors. */
static int order_response(struct sandbox *sb, const struct order *o, int64_t now,
                          json_t *promo_errors, json_t **out)
{
    json_t *refs = render_refs();
    json_t *data = refs ? render_order(sb, o, refs, now / 1000) : NULL;
    if (!data) {
        json_decref(refs);
        *out = error_body("out of memory");
        return 500;
    }
    *out = json_pack("{s:o,s:o}", "data", data, "refs", refs);
    if (*out && promo_errors && json_array_size(promo_errors) > 0)
        json_object_set(*out, "errors", promo_errors);
    if (!*out) {
        *out = error_body("out of memory");
        return 500;
    }
    return 200;
}

/* 400 with the collected shape errors, else with the collected rule errors. */
static int refuse(json_t *errors, json_t *rule_errors, json_t **out)
{
    json_t *list = json_array_size(errors) > 0 ? errors : rule_errors;
    if (json_array_size(list) == 0) return 0;
    *out = json_pack("{s:O}", "errors", list);
    return 400;
}

/* The event of a new order: `event`, else the first known ticket, else the
 * first known set of `random` (spec §5.9 step 2). */
static int order_event(struct sandbox *sb, const struct change *ch, uint32_t *ev, json_t **err)
{
    const struct catalog *cat = sb->cat;
    long e = -1;
    if (ch->tickets && ch->random) {
        *err = error_body("Only one of tickets or random can be set");
        return 400;
    }
    if (ch->event) {
        e = catalog_event(cat, ch->event);
        if (e < 0) {
            *err = error_body("Event %s not found", ch->event);
            return 400;
        }
    } else if (ch->tickets && json_array_size(ch->tickets) > 0) {
        size_t i;
        json_t *v;
        json_array_foreach(ch->tickets, i, v) {
            long t = catalog_ticket(cat, json_string_value(v));
            if (t >= 0) {
                e = cat->sets[cat->tickets[t].set].event;
                break;
            }
        }
        if (e < 0) {
            *err = error_body("ticket (id = %s) does not belong to current event",
                              json_string_value(json_array_get(ch->tickets, 0)));
            return 400;
        }
    } else if (ch->random) {
        const char *key;
        json_t *n;
        json_object_foreach((json_t *)ch->random, key, n) {
            long s = catalog_set(cat, key);
            if (s >= 0) {
                e = cat->sets[s].event;
                break;
            }
        }
    }
    if (e < 0) {
        *err = error_body("'tickets' or 'random' must be");
        return 400;
    }
    if (!cat->events[e].has_deal) {
        *err = error_body("Deal not found");
        return 400;
    }
    *ev = (uint32_t)e;
    return 0;
}

int store_create_order(struct sandbox *sb, const json_t *body, json_t **out)
{
    struct change ch;
    json_t *errors = json_array(), *rule_errors = json_array(), *promo_errors = json_array();
    uint32_t ev = 0;
    int status;
    if (!errors || !rule_errors || !promo_errors) {
        status = 500;
        *out = error_body("out of memory");
        goto done;
    }
    order_request_read(body, true, &ch, errors, rule_errors);
    if ((status = refuse(errors, rule_errors, out)) != 0) goto done;

    int64_t now = now_ms();
    pthread_mutex_lock(&sb->lock);
    store_expire_due(sb, now);
    status = order_event(sb, &ch, &ev, out);
    if (status == 0) {
        struct order *o = order_new(sb, ev, now);
        if (!o) {
            status = 500;
            *out = error_body("out of memory");
        } else {
            status = apply_change(sb, o, &ch, now, promo_errors, out);
            if (status > 0) {
                order_drop(sb, o);
            } else {
                status = order_response(sb, o, now, promo_errors, out);
            }
        }
    }
    pthread_mutex_unlock(&sb->lock);
done:
    json_decref(errors);
    json_decref(rule_errors);
    json_decref(promo_errors);
    return status;
}

/* A change of an order that is no longer executed (spec §8 row 10). */
static int refuse_finished(const struct order *o, const struct change *ch, json_t **out)
{
    static const char *const names[] = { "executed", "done", "cancelled", "expired" };
    if (ch->status && strcmp(ch->status, "cancelled") == 0)
        *out = error_body("Order %s is not cancellable", o->id);
    else
        *out = error_body("Not allow to update order in status %s", names[o->status]);
    return 400;
}

/* Waits up to ms unlocked (the caller holds the lock), or until shutdown. */
static void wait_unlocked(struct sandbox *sb, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!sb->stopping) {
        if (pthread_cond_timedwait(&sb->wake, &sb->lock, &until) == ETIMEDOUT) break;
    }
}

int store_patch_order(struct sandbox *sb, const char *id, const json_t *body, int delay_ms,
                      json_t **out)
{
    struct change ch;
    json_t *errors = json_array(), *rule_errors = json_array(), *promo_errors = json_array();
    int status;
    if (!errors || !rule_errors || !promo_errors) {
        status = 500;
        *out = error_body("out of memory");
        goto done;
    }
    order_request_read(body, false, &ch, errors, rule_errors);
    if (json_array_size(errors) > 0) {
        status = refuse(errors, rule_errors, out);
        goto done;
    }

    int64_t now = now_ms();
    pthread_mutex_lock(&sb->lock);
    store_expire_due(sb, now);
    struct order *o = find_order(sb, id);
    if (!o) {
        status = 404;
        *out = error_body("Order %s not found", id);
    } else if (o->busy) {
        status = 409;
        *out = error_body("Order %s is being changed by another request; retry later", id);
    } else if (o->status != ORDER_EXECUTED) {
        status = refuse_finished(o, &ch, out);
    } else {
        if (delay_ms > 0) {
            o->busy = true;
            wait_unlocked(sb, delay_ms);
            o->busy = false;
            now = now_ms();
            store_expire_due(sb, now);
        }
        if (o->status != ORDER_EXECUTED) {
            status = refuse_finished(o, &ch, out);
        } else if ((status = refuse(errors, rule_errors, out)) == 0) {
            status = apply_change(sb, o, &ch, now, promo_errors, out);
            if (status <= 0) status = order_response(sb, o, now, promo_errors, out);
        }
    }
    pthread_mutex_unlock(&sb->lock);
done:
    json_decref(errors);
    json_decref(rule_errors);
    json_decref(promo_errors);
    return status;
}

int store_get_order(struct sandbox *sb, const char *id, json_t **out)
{
    int64_t now = now_ms();
    int status;
    pthread_mutex_lock(&sb->lock);
    store_expire_due(sb, now);
    struct order *o = find_order(sb, id);
    if (!o) {
        status = 404;
        *out = error_body("Order %s not found", id);
    } else {
        status = order_response(sb, o, now, NULL, out);
    }
    pthread_mutex_unlock(&sb->lock);
    return status;
}

static size_t order_count(const struct sandbox *sb)
{
    return sb->norders;
}

static bool order_matches(const struct sandbox *sb, size_t i, const struct list_filter *f)
{
    const struct order *o = sb->orders[i];
    if (f->status_mask && !(f->status_mask & (1u << o->status))) return false;
    if (f->has_created && (o->created_at < f->created_from || o->created_at > f->created_to))
        return false;
    if (f->only_with_customer && !o->customer) return false;
    return list_filter_has_event(f, sb->cat->events[o->event].id);
}

static json_t *order_item(struct sandbox *sb, size_t i, json_t *refs, int64_t now_s)
{
    return render_order(sb, sb->orders[i], refs, now_s);
}

int store_list_orders(struct sandbox *sb, const struct list_filter *f, json_t **out)
{
    static const struct store_list orders = { order_count, order_matches, order_item,
                                              render_refs };
    return store_list_page(sb, f, &orders, out);
}

/* POST /v2/services/promocodes/check {event, code} (spec §3.9). The catalog
 * does not change, so no lock is needed. */
int store_check_promocode(struct sandbox *sb, const json_t *body, json_t **out)
{
    const struct catalog *cat = sb->cat;
    json_t *ev_id = json_object_get(body, "event"), *code = json_object_get(body, "code");
    if (!json_is_string(ev_id) || !json_is_string(code)) {
        *out = error_body(!json_is_string(ev_id) ? "event is required" : "code is required");
        return 400;
    }
    long e = catalog_event(cat, json_string_value(ev_id));
    if (e < 0) {
        *out = error_body("Event %s not found", json_string_value(ev_id));
        return 400;
    }
    const struct cat_promo *p = catalog_promo(cat, (uint32_t)e, json_string_value(code));
    if (!p) {
        *out = json_pack("{s:s,s:s}", "error", "HTTPBadRequest", "reason", "Promocode not found");
        return 400;
    }
    int64_t now = now_ms() / 1000;
    json_t *discount = p->kind == PROMO_FIX
                           ? json_pack("{s:o}", "fix", render_money(p->value))
                           : json_pack("{s:O}", "percentage",
                                       json_object_get(json_object_get(p->json, "discount"),
                                                       "percentage"));
    json_t *sets = json_array(), *ref_sets = json_object(), *count = json_object();
    for (size_t i = 0; i < p->nsets; i++) {
        const struct cat_set *s = &cat->sets[p->sets[i]];
        json_array_append_new(sets, json_string(s->id));
        json_object_set_new(ref_sets, s->id,
                            json_pack("{s:s,s:s,s:o}", "id", s->id, "name", s->name, "price",
                                      render_money(catalog_set_price(cat, p->sets[i], now))));
    }
    if (p->min > 0) json_object_set_new(count, "min", json_integer(p->min));
    if (p->max > 0) json_object_set_new(count, "max", json_integer(p->max));
    json_t *data = json_pack("{s:o,s:o,s:o}", "discount", discount, "sets", sets,
                             "tickets_count", count);
    if (data && p->has_lifetime)
        json_object_set_new(data, "lifetime", json_pack("{s:o,s:o}", "start",
                                                        render_time(p->start), "finish",
                                                        render_time(p->finish)));
    *out = json_pack("{s:o,s:{s:o}}", "data", data, "refs", "sets", ref_sets);
    if (!*out) {
        *out = error_body("out of memory");
        return 500;
    }
    return 200;
}
