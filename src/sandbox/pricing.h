/*
 * pricing.h: order amounts of tc-sandbox (spec §7.7), in integer minor units.
 *
 *   price    the set's price under its current rule
 *   discount promocode: fix F -> min(F, price); percentage p -> round_half_up(price * p)
 *   nominal  price - discount
 *   extra    round_half_up(nominal * deal.extra)
 *   full     nominal + extra
 */
#ifndef TC_SANDBOX_PRICING_H
#define TC_SANDBOX_PRICING_H

#include <stdint.h>

#include "catalog.h"
#include "store.h"

struct amounts {
    int64_t price, discount, nominal, extra, full;
};

/* True when promocode p gives a discount on set `set` of an order holding
 * `count` tickets, at time now. */
bool pricing_promo_applies(const struct cat_promo *p, uint32_t set, size_t count, int64_t now);

/* The first of the order's promocodes that applies to the set, or NULL. */
const struct cat_promo *pricing_promo_for_set(const struct catalog *cat, const struct order *o,
                                              uint32_t set, int64_t now);

/* Unit amounts of one ticket of the set for this order at time now. */
void pricing_unit(const struct catalog *cat, const struct order *o, uint32_t set, int64_t now,
                  struct amounts *out, const struct cat_promo **promo);

/* Sum of the order's tickets' amounts. */
void pricing_total(const struct catalog *cat, const struct order *o, int64_t now,
                   struct amounts *out);

#endif
