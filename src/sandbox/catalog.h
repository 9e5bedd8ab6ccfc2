/*
 * catalog.h: the catalog of tc-sandbox, loaded once from a JSON file.
 *
 * The JSON document itself is kept (the gRPC listener streams from it); the
 * loader checks it and builds flat arrays of events, sets and tickets with
 * id indexes, which the store and the REST side use. Nothing here changes
 * after catalog_load() returns, so it is read without a lock. The format is
 * described in docs/sandbox-catalog.md.
 */
#ifndef TC_SANDBOX_CATALOG_H
#define TC_SANDBOX_CATALOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* A price rule of a set: the price applies while now is in [start, finish]. */
struct cat_rule {
    bool has_lifetime;
    int64_t start, finish; /* Unix seconds */
    int64_t price;         /* minor units */
};

struct cat_ticket {
    char id[ID_SIZE];
    const char *serial;
    int64_t number;
    const char *sector, *row, *seat; /* NULL for unseated tickets */
    uint32_t set;                    /* index into catalog.sets */
    uint32_t rank;                   /* its position in the set's by_number */
    bool sold;                       /* sold before the sandbox started (by no order of its) */
};

struct cat_set {
    const char *id, *name;
    bool with_seats;
    uint32_t event;       /* index into catalog.events */
    uint32_t first, count; /* its tickets are catalog.tickets[first .. first+count) */
    uint32_t *by_number;  /* ticket indexes sorted by number, then catalog order */
    struct cat_rule *rules;
    size_t nrules;
};

enum promo_kind { PROMO_FIX, PROMO_PERCENT };

struct cat_promo {
    const char *id;
    char *code;           /* lower-cased: codes match ignoring case */
    enum promo_kind kind;
    int64_t value;        /* minor units (fix) or nanopercent (percentage) */
    const json_t *json;   /* the catalog entry, for refs and promocodes/check */
    uint32_t *sets;       /* set indexes it is restricted to; none = every set */
    size_t nsets;
    int64_t min, max;     /* ticket count limits; 0 = none */
    bool has_lifetime;
    int64_t start, finish;
};

struct cat_event {
    const char *id, *org, *name, *description, *timezone, *venue;
    const json_t *json;
    bool is_public;
    bool has_lifetime;
    int64_t start, finish;
    int age_rating;
    bool has_deal;
    int64_t extra;        /* the deal's extra, nanopercent */
    bool has_promotion;   /* a PROMOTION mod: promocodes are refused */
    uint32_t first_set, nsets;
    struct cat_promo *promos;
    size_t npromos;
};

struct catalog {
    json_t *doc;
    const char *distributor;
    struct cat_event *events;
    size_t nevents;
    struct cat_set *sets;
    size_t nsets;
    struct cat_ticket *tickets;
    size_t ntickets;
    /* id -> index (json integer) */
    json_t *event_ix, *set_ix;
    /* ticket id -> index + 1 (0: a free slot), open addressing over a power
     * of two of slots kept at most half full: a few bytes a ticket where a
     * JSON object took about 150 (catalog.c, ticket_slot) */
    uint32_t *ticket_ix;
    size_t ticket_mask; /* the number of slots - 1 */
    /* id -> the catalog entry; cities are keyed by their decimal id */
    json_t *partner_ix, *venue_ix, *city_ix, *country_ix;
};

/* Loads and checks the catalog. On failure returns NULL and writes one
 * line naming the file and the offending entry into err. */
struct catalog *catalog_load(const char *path, char *err, size_t errlen);
void catalog_free(struct catalog *cat);

/* Index of the entity with this id, or -1. */
long catalog_event(const struct catalog *cat, const char *id);
long catalog_set(const struct catalog *cat, const char *id);
long catalog_ticket(const struct catalog *cat, const char *id);

/* The catalog entry of a partner / venue / city / country, or NULL. */
const json_t *catalog_partner(const struct catalog *cat, const char *id);
const json_t *catalog_venue(const struct catalog *cat, const char *id);
const json_t *catalog_city(const struct catalog *cat, json_int_t id);
const json_t *catalog_country(const struct catalog *cat, const char *id);

/* The set's price at time now: the first rule whose lifetime contains now
 * (a rule without lifetime always matches), else the last rule, else 0. */
int64_t catalog_set_price(const struct catalog *cat, uint32_t set, int64_t now);

/* The promocode of event ev whose code matches (ignoring ASCII case), or NULL. */
const struct cat_promo *catalog_promo(const struct catalog *cat, uint32_t ev, const char *code);

#endif
