/*
 * render.h: the JSON of orders as the v2 REST API writes it (spec §4).
 */
#ifndef TC_SANDBOX_RENDER_H
#define TC_SANDBOX_RENDER_H

#include <jansson.h>

#include "store.h"

/* An empty refs object: events, partners, promocodes, sets, venues. */
json_t *render_refs(void);

/* The order object (`data`); adds what it refers to into refs. Called with
 * the store locked. NULL when out of memory. */
json_t *render_order(const struct sandbox *sb, const struct order *o, json_t *refs,
                     int64_t now);

/* The text of the answer that reads an order, {"data": order, "refs":
 * refs}, exactly as json_dumps(JSON_SORT_KEYS | JSON_COMPACT) writes what
 * render_order() and render_refs() make, written directly: the keys are
 * put in their sorted places by hand. Called with the store locked. NULL
 * when out of memory; *len is its length. */
char *render_order_text(const struct sandbox *sb, const struct order *o, int64_t now,
                        size_t *len);

/* A money string "5600.00" for minor units. */
json_t *render_money(int64_t minor);

/* A REST date-time "YYYY-MM-DD HH:MM:SS" (UTC). */
json_t *render_time(int64_t unix_seconds);

#endif
