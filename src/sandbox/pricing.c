/*
 * pricing.c: ticket and order amounts of tc-sandbox (spec §7.7).
 *
 * Everything is int64 minor units; the only products (percentages) are
 * rounded half up by apply_percent() in util.c. An order's amounts depend
 * only on its tickets, its promocodes and the moment they are priced at, so
 * the REST rendering and the balance check of `done` always agree.
 */
#include "pricing.h"

bool pricing_promo_applies(const struct cat_promo *p, uint32_t set, size_t count, int64_t now)
{
    if (p->nsets > 0) {
        bool listed = false;
        for (size_t i = 0; i < p->nsets && !listed; i++) listed = p->sets[i] == set;
        if (!listed) return false;
    }
    if (p->min > 0 && (int64_t)count < p->min) return false;
    if (p->max > 0 && (int64_t)count > p->max) return false;
    if (p->has_lifetime && (now < p->start || now > p->finish)) return false;
    return true;
}

const struct cat_promo *pricing_promo_for_set(const struct catalog *cat, const struct order *o,
                                              uint32_t set, int64_t now)
{
    const struct cat_event *ev = &cat->events[o->event];
    for (size_t i = 0; i < o->npromos; i++) {
        const struct cat_promo *p = &ev->promos[o->promos[i]];
        if (pricing_promo_applies(p, set, o->ntickets, now)) return p;
    }
    return NULL;
}

void pricing_unit(const struct catalog *cat, const struct order *o, uint32_t set, int64_t now,
                  struct amounts *out, const struct cat_promo **promo)
{
    const struct cat_promo *p = pricing_promo_for_set(cat, o, set, now);
    out->price = catalog_set_price(cat, set, now);
    out->discount = 0;
    if (p && p->kind == PROMO_FIX) out->discount = p->value < out->price ? p->value : out->price;
    if (p && p->kind == PROMO_PERCENT) out->discount = apply_percent(out->price, p->value);
    out->nominal = out->price - out->discount;
    out->extra = apply_percent(out->nominal, cat->events[o->event].extra);
    out->full = out->nominal + out->extra;
    if (promo) *promo = p;
}

void pricing_total(const struct catalog *cat, const struct order *o, int64_t now,
                   struct amounts *out)
{
    struct amounts sum = { 0 }, unit;
    for (size_t i = 0; i < o->ntickets; i++) {
        pricing_unit(cat, o, cat->tickets[o->tickets[i]].set, now, &unit, NULL);
        sum.price += unit.price;
        sum.discount += unit.discount;
        sum.nominal += unit.nominal;
        sum.extra += unit.extra;
        sum.full += unit.full;
    }
    *out = sum;
}
