/*
 * catalog.c: loads the catalog JSON of tc-sandbox and checks it.
 *
 * Every mistake in the file is reported as one line with the path of the
 * offending entry ("events[0].sets[1].tickets[3].id: ..."), so a user who
 * writes a catalog by hand finds the problem at once. The checks cover what
 * the sandbox itself relies on (ids, references, prices, tickets); other
 * fields are passed through to the gRPC side as they are.
 */
#include "catalog.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Loader state: the catalog being built and where to report errors. */
struct loader {
    struct catalog *cat;
    char *err;
    size_t errlen;
    size_t tickets_cap;
};

static bool fail(struct loader *ld, const char *path, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "%s: %s", path, msg);
    return false;
}

static bool oom(struct loader *ld)
{
    snprintf(ld->err, ld->errlen, "out of memory");
    return false;
}

/* A 64-bit integer written as a JSON integer or as a decimal string. */
static bool get_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        if (!*s || isspace((unsigned char)*s)) return false;
        long long n = strtoll(s, &end, 10);
        if (*end) return false;
        *out = n;
        return true;
    }
    return false;
}

/* The array at key, or an empty array when the key is absent. */
static bool get_array(struct loader *ld, const json_t *obj, const char *key, const char *path,
                      json_t **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) return true;
    if (!json_is_array(v)) return fail(ld, path, "'%s' must be an array", key);
    *out = v;
    return true;
}

/* A required string member. */
static bool get_string(struct loader *ld, const json_t *obj, const char *key, const char *path,
                       const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!json_is_string(v)) return fail(ld, path, "'%s' must be a string", key);
    *out = json_string_value(v);
    return true;
}

/* An optional string member: NULL when absent. */
static bool opt_string(struct loader *ld, const json_t *obj, const char *key, const char *path,
                       const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return true;
    if (!json_is_string(v)) return fail(ld, path, "'%s' must be a string", key);
    *out = json_string_value(v);
    return true;
}

static bool get_id(struct loader *ld, const json_t *obj, const char *path, const char **out)
{
    if (!get_string(ld, obj, "id", path, out)) return false;
    if (!**out) return fail(ld, path, "'id' must not be empty");
    return true;
}

static bool get_timestamp(struct loader *ld, const json_t *v, const char *path, const char *key,
                          int64_t *out)
{
    if (!json_is_string(v) || !parse_datetime(json_string_value(v), out))
        return fail(ld, path, "'%s' must be an RFC 3339 date-time such as "
                              "\"2020-06-12T15:00:00Z\"", key);
    return true;
}

/* {"start": ..., "finish": ...}; absent or null means no lifetime. */
static bool get_lifetime(struct loader *ld, const json_t *obj, const char *path, bool *has,
                         int64_t *start, int64_t *finish)
{
    json_t *lt = json_object_get(obj, "lifetime");
    *has = false;
    if (!lt || json_is_null(lt)) return true;
    if (!json_is_object(lt)) return fail(ld, path, "'lifetime' must be an object");
    if (!get_timestamp(ld, json_object_get(lt, "start"), path, "lifetime.start", start) ||
        !get_timestamp(ld, json_object_get(lt, "finish"), path, "lifetime.finish", finish))
        return false;
    *has = true;
    return true;
}

/* Registers id -> value in an index; duplicates are an error. */
static bool index_add(struct loader *ld, json_t *ix, const char *id, json_t *value,
                      const char *path, const char *what)
{
    if (json_object_get(ix, id)) {
        json_decref(value);
        return fail(ld, path, "duplicate %s id %s", what, id);
    }
    if (!value || json_object_set_new(ix, id, value) != 0) return oom(ld);
    return true;
}

/* partners, venues, countries, cities: id -> entry maps for REST refs. */
static bool load_reference(struct loader *ld, const char *key, json_t *ix)
{
    json_t *arr, *item;
    size_t i;
    if (!get_array(ld, ld->cat->doc, key, key, &arr)) return false;
    json_array_foreach(arr, i, item) {
        char path[64], idbuf[32];
        const char *id = NULL;
        snprintf(path, sizeof path, "%s[%zu]", key, i);
        if (!json_is_object(item)) return fail(ld, path, "must be an object");
        if (strcmp(key, "cities") == 0) {
            json_t *v = json_object_get(item, "id");
            if (!json_is_integer(v)) return fail(ld, path, "'id' must be an integer");
            snprintf(idbuf, sizeof idbuf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            id = idbuf;
        } else if (!get_id(ld, item, path, &id)) {
            return false;
        }
        if (!index_add(ld, ix, id, json_incref(item), path, key)) return false;
    }
    return true;
}

static bool load_rules(struct loader *ld, const json_t *set_json, const char *path,
                       struct cat_set *set)
{
    json_t *rules, *r;
    size_t i;
    if (!get_array(ld, set_json, "rules", path, &rules)) return false;
    if (!rules || json_array_size(rules) == 0)
        return fail(ld, path, "'rules' must hold at least one price rule");
    set->rules = calloc(json_array_size(rules), sizeof *set->rules);
    if (!set->rules) return oom(ld);
    json_array_foreach(rules, i, r) {
        char rpath[160];
        struct cat_rule *rule = &set->rules[i];
        snprintf(rpath, sizeof rpath, "%s.rules[%zu]", path, i);
        if (!json_is_object(r)) return fail(ld, rpath, "must be an object");
        json_t *simple = json_object_get(r, "simple");
        if (!json_is_object(simple) || !get_int(json_object_get(simple, "price"), &rule->price) ||
            rule->price < 0)
            return fail(ld, rpath, "'simple.price' must be a non-negative integer "
                                   "(minor units: 560000 is 5600.00)");
        if (!get_lifetime(ld, r, rpath, &rule->has_lifetime, &rule->start, &rule->finish))
            return false;
        set->nrules++;
    }
    return true;
}

static struct cat_ticket *ticket_new(struct loader *ld)
{
    struct catalog *cat = ld->cat;
    if (cat->ntickets == ld->tickets_cap) {
        size_t cap = ld->tickets_cap ? ld->tickets_cap * 2 : 256;
        struct cat_ticket *t = realloc(cat->tickets, cap * sizeof *t);
        if (!t) return NULL;
        cat->tickets = t;
        ld->tickets_cap = cap;
    }
    struct cat_ticket *t = &cat->tickets[cat->ntickets];
    memset(t, 0, sizeof *t);
    return t;
}

/* The slot of ticket id in the index: the one holding it, or the free one
 * where it would go. */
static size_t ticket_slot(const struct catalog *cat, const char *id)
{
    size_t i = (size_t)fnv1a64(id) & cat->ticket_mask;
    while (cat->ticket_ix[i] && strcmp(cat->tickets[cat->ticket_ix[i] - 1].id, id) != 0)
        i = (i + 1) & cat->ticket_mask;
    return i;
}

/* Doubles the ticket index once it is half full. */
static bool ticket_ix_grow(struct catalog *cat)
{
    size_t slots = cat->ticket_ix ? (cat->ticket_mask + 1) * 2 : 1024;
    uint32_t *old = cat->ticket_ix;
    size_t old_slots = old ? cat->ticket_mask + 1 : 0;
    if (!(cat->ticket_ix = calloc(slots, sizeof *cat->ticket_ix))) {
        cat->ticket_ix = old;
        return false;
    }
    cat->ticket_mask = slots - 1;
    for (size_t i = 0; i < old_slots; i++)
        if (old[i]) cat->ticket_ix[ticket_slot(cat, cat->tickets[old[i] - 1].id)] = old[i];
    free(old);
    return true;
}

static bool ticket_register(struct loader *ld, const char *path)
{
    struct catalog *cat = ld->cat;
    struct cat_ticket *t = &cat->tickets[cat->ntickets];
    if (cat->ntickets >= UINT32_MAX - 1) return fail(ld, path, "too many tickets");
    if (cat->ntickets + 1 > (cat->ticket_ix ? (cat->ticket_mask + 1) / 2 : 0) &&
        !ticket_ix_grow(cat))
        return oom(ld);
    size_t i = ticket_slot(cat, t->id);
    if (cat->ticket_ix[i]) return fail(ld, path, "duplicate ticket id %s", t->id);
    cat->ticket_ix[i] = (uint32_t)cat->ntickets + 1;
    cat->ntickets++;
    return true;
}

static bool load_explicit_tickets(struct loader *ld, const json_t *set_json, const char *path,
                                  struct cat_set *set, uint32_t set_index)
{
    json_t *arr, *item;
    size_t i;
    if (!get_array(ld, set_json, "tickets", path, &arr)) return false;
    json_array_foreach(arr, i, item) {
        char tpath[192];
        const char *id;
        snprintf(tpath, sizeof tpath, "%s.tickets[%zu]", path, i);
        if (!json_is_object(item)) return fail(ld, tpath, "must be an object");
        if (!get_id(ld, item, tpath, &id)) return false;
        if (!is_object_id(id)) return fail(ld, tpath, "'id' must be 24 hexadecimal digits");
        struct cat_ticket *t = ticket_new(ld);
        if (!t) return oom(ld);
        memcpy(t->id, id, ID_SIZE);
        t->set = set_index;
        if (!get_string(ld, item, "serial", tpath, &t->serial)) return false;
        if (!get_int(json_object_get(item, "number"), &t->number))
            return fail(ld, tpath, "'number' must be an integer");
        json_t *status = json_object_get(item, "status");
        if (status && !json_is_null(status)) {
            const char *s = json_string_value(status);
            if (!s || (strcmp(s, "VACANT") != 0 && strcmp(s, "SOLD") != 0))
                return fail(ld, tpath, "'status' must be \"VACANT\" or \"SOLD\"");
            t->sold = strcmp(s, "SOLD") == 0;
        }
        json_t *seat = json_object_get(item, "seat");
        if (set->with_seats) {
            if (!json_is_object(seat))
                return fail(ld, tpath, "'seat' {sector, row, number} is required in a set "
                                       "with_seats");
            if (!get_string(ld, seat, "sector", tpath, &t->sector) ||
                !get_string(ld, seat, "row", tpath, &t->row) ||
                !get_string(ld, seat, "number", tpath, &t->seat))
                return false;
        } else if (seat && !json_is_null(seat)) {
            return fail(ld, tpath, "'seat' is only allowed in a set with_seats");
        }
        if (!ticket_register(ld, tpath)) return false;
    }
    return true;
}

/* stock: {"count": N, "serial": "ABC", "first_number": K, "sold": S}. The
 * id of the k-th generated ticket (k from 0) is the 16 hex digits of
 * FNV-1a-64 of the set id followed by k as 8 hex digits; the first S are
 * sold before the sandbox starts. */
static bool load_stock(struct loader *ld, const json_t *set_json, const char *path,
                       struct cat_set *set, uint32_t set_index)
{
    json_t *stock = json_object_get(set_json, "stock");
    char spath[192];
    int64_t count, first;
    const char *serial;
    if (!stock || json_is_null(stock)) return true;
    snprintf(spath, sizeof spath, "%s.stock", path);
    if (!json_is_object(stock)) return fail(ld, spath, "must be an object");
    if (set->with_seats) return fail(ld, spath, "a set with_seats lists its tickets one by one");
    if (!get_int(json_object_get(stock, "count"), &count) || count < 0 || count > 10000000)
        return fail(ld, spath, "'count' must be an integer from 0 to 10000000");
    if (!get_string(ld, stock, "serial", spath, &serial)) return false;
    json_t *fn = json_object_get(stock, "first_number");
    first = 1;
    if (fn && !get_int(fn, &first)) return fail(ld, spath, "'first_number' must be an integer");
    json_t *sj = json_object_get(stock, "sold");
    int64_t sold = 0;
    if (sj && (!get_int(sj, &sold) || sold < 0 || sold > count))
        return fail(ld, spath, "'sold' must be an integer from 0 to 'count'");
    uint64_t h = fnv1a64(set->id);
    for (int64_t k = 0; k < count; k++) {
        struct cat_ticket *t = ticket_new(ld);
        if (!t) return oom(ld);
        snprintf(t->id, sizeof t->id, "%016" PRIx64 "%08" PRIx32, h, (uint32_t)k);
        t->serial = serial;
        t->number = first + k;
        t->set = set_index;
        t->sold = k < sold;
        if (!ticket_register(ld, spath)) return false;
    }
    return true;
}

/* Sorting ticket indexes by number, ties in catalog order. */
struct by_number {
    int64_t number;
    uint32_t index;
};

static int cmp_number(const void *a, const void *b)
{
    const struct by_number *x = a, *y = b;
    if (x->number != y->number) return x->number < y->number ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static bool sort_tickets(struct loader *ld, struct cat_set *set)
{
    set->by_number = malloc((set->count ? set->count : 1) * sizeof *set->by_number);
    struct by_number *tmp = malloc((set->count ? set->count : 1) * sizeof *tmp);
    if (!set->by_number || !tmp) {
        free(tmp);
        return oom(ld);
    }
    for (uint32_t i = 0; i < set->count; i++) {
        tmp[i].number = ld->cat->tickets[set->first + i].number;
        tmp[i].index = set->first + i;
    }
    qsort(tmp, set->count, sizeof *tmp, cmp_number);
    for (uint32_t i = 0; i < set->count; i++) {
        set->by_number[i] = tmp[i].index;
        ld->cat->tickets[tmp[i].index].rank = i;
    }
    free(tmp);
    return true;
}

static bool load_sets(struct loader *ld, const json_t *ev_json, const char *path,
                      uint32_t ev_index)
{
    struct catalog *cat = ld->cat;
    json_t *sets, *sj;
    size_t i;
    if (!get_array(ld, ev_json, "sets", path, &sets)) return false;
    cat->events[ev_index].first_set = (uint32_t)cat->nsets;
    json_array_foreach(sets, i, sj) {
        char spath[128];
        snprintf(spath, sizeof spath, "%s.sets[%zu]", path, i);
        if (!json_is_object(sj)) return fail(ld, spath, "must be an object");
        uint32_t si = (uint32_t)cat->nsets;
        struct cat_set *set = &cat->sets[si];
        cat->nsets++;
        set->event = ev_index;
        if (!get_id(ld, sj, spath, &set->id)) return false;
        if (!get_string(ld, sj, "name", spath, &set->name)) return false;
        json_t *ws = json_object_get(sj, "with_seats");
        if (ws && !json_is_boolean(ws)) return fail(ld, spath, "'with_seats' must be a boolean");
        set->with_seats = json_is_true(ws);
        if (!index_add(ld, cat->set_ix, set->id, json_integer(si), spath, "set")) return false;
        if (!load_rules(ld, sj, spath, set)) return false;
        set->first = (uint32_t)cat->ntickets;
        if (!load_explicit_tickets(ld, sj, spath, set, si) || !load_stock(ld, sj, spath, set, si))
            return false;
        set->count = (uint32_t)(cat->ntickets - set->first);
        if (!sort_tickets(ld, set)) return false;
        cat->events[ev_index].nsets++;
    }
    return true;
}

static bool load_promos(struct loader *ld, const json_t *ev_json, const char *path,
                        struct cat_event *ev)
{
    json_t *arr, *pj;
    size_t i;
    if (!get_array(ld, ev_json, "promocodes", path, &arr)) return false;
    if (!arr) return true;
    ev->promos = calloc(json_array_size(arr) + 1, sizeof *ev->promos);
    if (!ev->promos) return oom(ld);
    json_array_foreach(arr, i, pj) {
        char ppath[128];
        const char *code;
        struct cat_promo *p = &ev->promos[i];
        snprintf(ppath, sizeof ppath, "%s.promocodes[%zu]", path, i);
        if (!json_is_object(pj)) return fail(ld, ppath, "must be an object");
        ev->npromos++;
        p->json = pj;
        if (!get_id(ld, pj, ppath, &p->id) || !get_string(ld, pj, "code", ppath, &code))
            return false;
        if (!*code) return fail(ld, ppath, "'code' must not be empty");
        p->code = strdup(code);
        if (!p->code) return oom(ld);
        for (char *c = p->code; *c; c++) *c = (char)tolower((unsigned char)*c);
        for (size_t j = 0; j < i; j++)
            if (strcmp(ev->promos[j].code, p->code) == 0)
                return fail(ld, ppath, "duplicate code '%s' in this event", code);

        json_t *d = json_object_get(pj, "discount");
        json_t *fix = json_object_get(d, "fix"), *pct = json_object_get(d, "percentage");
        if (!json_is_object(d) || json_object_size(d) != 1 || (!fix && !pct))
            return fail(ld, ppath, "'discount' must be {\"fix\": \"100.00\"} or "
                                   "{\"percentage\": \"25%%\"}");
        if (fix) {
            p->kind = PROMO_FIX;
            if (!json_is_string(fix) || !parse_money(json_string_value(fix), &p->value))
                return fail(ld, ppath, "'discount.fix' must be a money string such as \"100.00\"");
        } else {
            p->kind = PROMO_PERCENT;
            if (!json_is_string(pct) || !parse_percent(json_string_value(pct), &p->value) ||
                p->value > (int64_t)100 * 1000000000)
                return fail(ld, ppath, "'discount.percentage' must be a string such as \"25%%\", "
                                       "at most 100%%");
        }

        json_t *sets, *s;
        size_t k;
        if (!get_array(ld, pj, "sets", ppath, &sets)) return false;
        p->sets = calloc(json_array_size(sets) + 1, sizeof *p->sets);
        if (!p->sets) return oom(ld);
        json_array_foreach(sets, k, s) {
            long si = json_is_string(s) ? catalog_set(ld->cat, json_string_value(s)) : -1;
            if (si < 0 || ld->cat->sets[si].event != (uint32_t)(ev - ld->cat->events))
                return fail(ld, ppath, "'sets[%zu]' is not a set of this event", k);
            p->sets[p->nsets++] = (uint32_t)si;
        }

        json_t *tc = json_object_get(pj, "tickets_count");
        if (tc && !json_is_null(tc)) {
            json_t *mn = json_object_get(tc, "min"), *mx = json_object_get(tc, "max");
            if (!json_is_object(tc) || (mn && !json_is_integer(mn)) || (mx && !json_is_integer(mx)))
                return fail(ld, ppath, "'tickets_count' must be {\"min\"?: int, \"max\"?: int}");
            p->min = mn ? json_integer_value(mn) : 0;
            p->max = mx ? json_integer_value(mx) : 0;
            if (p->min < 0 || p->max < 0)
                return fail(ld, ppath, "'tickets_count' limits must not be negative");
        }
        if (!get_lifetime(ld, pj, ppath, &p->has_lifetime, &p->start, &p->finish)) return false;
    }
    return true;
}

/* Percentage {"units": 10, "nanos": 0} in percent points -> nanopercent. */
static bool get_percentage(const json_t *v, int64_t *out)
{
    int64_t units = 0, nanos = 0;
    json_t *u = json_object_get(v, "units"), *n = json_object_get(v, "nanos");
    if (!json_is_object(v)) return false;
    if (u && !get_int(u, &units)) return false;
    if (n && !get_int(n, &nanos)) return false;
    if (units < 0 || units > 1000000 || nanos < 0 || nanos > 999999999) return false;
    *out = units * 1000000000 + nanos;
    return true;
}

static bool load_event(struct loader *ld, json_t *ej, size_t i)
{
    struct catalog *cat = ld->cat;
    struct cat_event *ev = &cat->events[i];
    char path[64];
    snprintf(path, sizeof path, "events[%zu]", i);
    if (!json_is_object(ej)) return fail(ld, path, "must be an object");
    ev->json = ej;
    if (!get_id(ld, ej, path, &ev->id) || !get_string(ld, ej, "name", path, &ev->name) ||
        !get_string(ld, ej, "org", path, &ev->org) ||
        !opt_string(ld, ej, "description", path, &ev->description) ||
        !opt_string(ld, ej, "timezone", path, &ev->timezone) ||
        !opt_string(ld, ej, "venue", path, &ev->venue))
        return false;
    if (!index_add(ld, cat->event_ix, ev->id, json_integer((json_int_t)i), path, "event"))
        return false;
    if (!catalog_partner(cat, ev->org)) return fail(ld, path, "org %s is not in partners", ev->org);
    if (ev->venue && *ev->venue && !catalog_venue(cat, ev->venue))
        return fail(ld, path, "venue %s is not in venues", ev->venue);

    json_t *st = json_object_get(ej, "status");
    if (st && !(json_is_string(st) && (strcmp(json_string_value(st), "PUBLIC") == 0 ||
                                       strcmp(json_string_value(st), "STAND_BY") == 0)) &&
        !(json_is_integer(st) && json_integer_value(st) >= 0 && json_integer_value(st) <= 1))
        return fail(ld, path, "'status' must be \"PUBLIC\" or \"STAND_BY\"");
    ev->is_public = (json_is_string(st) && strcmp(json_string_value(st), "PUBLIC") == 0) ||
                    (json_is_integer(st) && json_integer_value(st) == 1);

    if (!get_lifetime(ld, ej, path, &ev->has_lifetime, &ev->start, &ev->finish)) return false;

    json_t *ar = json_object_get(ej, "age_rating");
    if (ar && !json_is_null(ar)) {
        int64_t n = 0;
        if (!(json_is_string(ar) && !*json_string_value(ar)) && (!get_int(ar, &n) || n < 0 || n > 99))
            return fail(ld, path, "'age_rating' must be a string of digits such as \"16\"");
        ev->age_rating = (int)n;
    }

    json_t *deal = json_object_get(ej, "deal");
    if (deal && !json_is_null(deal)) {
        json_t *extra = json_object_get(deal, "extra");
        ev->has_deal = true;
        if (!json_is_object(deal) || (extra && !get_percentage(extra, &ev->extra)))
            return fail(ld, path, "'deal.extra' must be a Percentage such as "
                                  "{\"units\": 10, \"nanos\": 0}");
    }

    json_t *mods, *m;
    size_t k;
    if (!get_array(ld, ej, "mods", path, &mods)) return false;
    json_array_foreach(mods, k, m) {
        json_t *type = json_object_get(m, "type");
        if ((json_is_string(type) && strcmp(json_string_value(type), "PROMOTION") == 0) ||
            (json_is_integer(type) && json_integer_value(type) == 1))
            ev->has_promotion = true;
    }

    return load_sets(ld, ej, path, (uint32_t)i) && load_promos(ld, ej, path, ev);
}

static bool load_events(struct loader *ld)
{
    struct catalog *cat = ld->cat;
    json_t *events, *ej, *sets;
    size_t i, nsets = 0;
    if (!get_array(ld, cat->doc, "events", "events", &events)) return false;
    if (!events) return true;
    /* Count the sets first so the set array never moves. */
    json_array_foreach(events, i, ej) {
        sets = json_object_get(ej, "sets");
        if (json_is_array(sets)) nsets += json_array_size(sets);
    }
    cat->events = calloc(json_array_size(events) + 1, sizeof *cat->events);
    cat->sets = calloc(nsets + 1, sizeof *cat->sets);
    if (!cat->events || !cat->sets) return oom(ld);
    json_array_foreach(events, i, ej) {
        cat->nevents++;
        if (!load_event(ld, ej, i)) return false;
    }
    return true;
}

struct catalog *catalog_load(const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    struct catalog *cat = calloc(1, sizeof *cat);
    struct loader ld = { .cat = cat, .err = err, .errlen = errlen };
    char prefix[512];
    if (!cat) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cat->doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!cat->doc) {
        if (jerr.line <= 0)
            snprintf(err, errlen, "catalog %s: %s", path, jerr.text);
        else
            snprintf(err, errlen, "catalog %s: line %d column %d: %s", path, jerr.line,
                     jerr.column, jerr.text);
        catalog_free(cat);
        return NULL;
    }
    cat->event_ix = json_object();
    cat->set_ix = json_object();
    cat->partner_ix = json_object();
    cat->venue_ix = json_object();
    cat->city_ix = json_object();
    cat->country_ix = json_object();
    bool ok = cat->event_ix && cat->set_ix && cat->partner_ix &&
              cat->venue_ix && cat->city_ix && cat->country_ix;
    if (!ok) {
        oom(&ld);
    } else if (!json_is_object(cat->doc)) {
        ok = fail(&ld, "(top level)", "the catalog must be a JSON object");
    } else {
        ok = load_reference(&ld, "partners", cat->partner_ix) &&
             load_reference(&ld, "venues", cat->venue_ix) &&
             load_reference(&ld, "cities", cat->city_ix) &&
             load_reference(&ld, "countries", cat->country_ix) &&
             get_string(&ld, cat->doc, "distributor", "(top level)", &cat->distributor);
        if (ok && !catalog_partner(cat, cat->distributor))
            ok = fail(&ld, "distributor", "%s is not in partners", cat->distributor);
        ok = ok && load_events(&ld);
    }
    if (!ok) {
        snprintf(prefix, sizeof prefix, "catalog %s: ", path);
        size_t plen = strlen(prefix), mlen = strlen(err);
        if (plen + mlen + 1 <= errlen) {
            memmove(err + plen, err, mlen + 1);
            memcpy(err, prefix, plen);
        }
        catalog_free(cat);
        return NULL;
    }
    return cat;
}

void catalog_free(struct catalog *cat)
{
    if (!cat) return;
    for (size_t i = 0; i < cat->nevents; i++) {
        struct cat_event *ev = &cat->events[i];
        for (size_t k = 0; k < ev->npromos; k++) {
            free(ev->promos[k].code);
            free(ev->promos[k].sets);
        }
        free(ev->promos);
    }
    for (size_t i = 0; i < cat->nsets; i++) {
        free(cat->sets[i].rules);
        free(cat->sets[i].by_number);
    }
    free(cat->events);
    free(cat->sets);
    free(cat->tickets);
    json_decref(cat->event_ix);
    json_decref(cat->set_ix);
    free(cat->ticket_ix);
    json_decref(cat->partner_ix);
    json_decref(cat->venue_ix);
    json_decref(cat->city_ix);
    json_decref(cat->country_ix);
    json_decref(cat->doc);
    free(cat);
}

static long lookup(const json_t *ix, const char *id)
{
    json_t *v = id ? json_object_get(ix, id) : NULL;
    return v ? (long)json_integer_value(v) : -1;
}

long catalog_event(const struct catalog *cat, const char *id)
{
    return lookup(cat->event_ix, id);
}

long catalog_set(const struct catalog *cat, const char *id)
{
    return lookup(cat->set_ix, id);
}

long catalog_ticket(const struct catalog *cat, const char *id)
{
    if (!id || !cat->ticket_ix) return -1;
    uint32_t v = cat->ticket_ix[ticket_slot(cat, id)];
    return v ? (long)v - 1 : -1;
}

const json_t *catalog_partner(const struct catalog *cat, const char *id)
{
    return id ? json_object_get(cat->partner_ix, id) : NULL;
}

const json_t *catalog_venue(const struct catalog *cat, const char *id)
{
    return id ? json_object_get(cat->venue_ix, id) : NULL;
}

const json_t *catalog_city(const struct catalog *cat, json_int_t id)
{
    char key[32];
    snprintf(key, sizeof key, "%" JSON_INTEGER_FORMAT, id);
    return json_object_get(cat->city_ix, key);
}

const json_t *catalog_country(const struct catalog *cat, const char *id)
{
    return id ? json_object_get(cat->country_ix, id) : NULL;
}

int64_t catalog_set_price(const struct catalog *cat, uint32_t set, int64_t now)
{
    const struct cat_set *s = &cat->sets[set];
    for (size_t i = 0; i < s->nrules; i++) {
        const struct cat_rule *r = &s->rules[i];
        if (!r->has_lifetime || (now >= r->start && now <= r->finish)) return r->price;
    }
    return s->nrules ? s->rules[s->nrules - 1].price : 0;
}

const struct cat_promo *catalog_promo(const struct catalog *cat, uint32_t ev, const char *code)
{
    const struct cat_event *e = &cat->events[ev];
    for (size_t i = 0; i < e->npromos; i++)
        if (strcasecmp(e->promos[i].code, code) == 0) return &e->promos[i];
    return NULL;
}
