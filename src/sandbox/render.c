/*
 * render.c: builds the REST JSON of an order and its refs (spec §4).
 *
 * Amounts come from pricing.c at the order's pricing moment: now while it
 * is executed, the moment it ended otherwise, so a finished order always
 * shows the same amounts. Keys are sorted when the response is encoded.
 */
#include "render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pricing.h"
#include "util.h"

json_t *render_money(int64_t minor)
{
    char buf[32];
    format_money(minor, buf, sizeof buf);
    return json_string(buf);
}

json_t *render_time(int64_t unix_seconds)
{
    char buf[32];
    format_datetime(unix_seconds, buf, sizeof buf);
    return json_string(buf);
}

json_t *render_refs(void)
{
    return json_pack("{s:{},s:{},s:{},s:{},s:{}}", "events", "partners", "promocodes", "sets",
                     "venues");
}

static const char *order_status_name(enum order_status s)
{
    switch (s) {
    case ORDER_EXECUTED: return "executed";
    case ORDER_DONE: return "done";
    case ORDER_CANCELLED: return "cancelled";
    case ORDER_EXPIRED: return "expired";
    }
    return "executed";
}

static int add_amounts(json_t *obj, const struct amounts *a)
{
    return json_object_set_new(obj, "price", render_money(a->price)) |
           json_object_set_new(obj, "discount", render_money(a->discount)) |
           json_object_set_new(obj, "nominal", render_money(a->nominal)) |
           json_object_set_new(obj, "extra", render_money(a->extra)) |
           json_object_set_new(obj, "full", render_money(a->full));
}

/* {"default": name, "en": name, "ru": name} from a catalog entry's name. */
static json_t *names(const json_t *entry)
{
    const char *name = json_string_value(json_object_get(entry, "name"));
    if (!name) name = "";
    return json_pack("{s:s,s:s,s:s}", "default", name, "en", name, "ru", name);
}

static int ref_partner(const struct sandbox *sb, json_t *refs, const char *id)
{
    json_t *partners = json_object_get(refs, "partners");
    if (json_object_get(partners, id)) return 0;
    const char *name = json_string_value(json_object_get(catalog_partner(sb->cat, id), "name"));
    return json_object_set_new(partners, id, json_pack("{s:s,s:s}", "id", id, "name",
                                                       name ? name : ""));
}

static int ref_venue(const struct sandbox *sb, json_t *refs, const char *id)
{
    json_t *venues = json_object_get(refs, "venues");
    const json_t *v = catalog_venue(sb->cat, id);
    if (!v || json_object_get(venues, id)) return 0;
    const char *name = json_string_value(json_object_get(v, "name"));
    const char *desc = json_string_value(json_object_get(v, "description"));
    const char *addr = json_string_value(json_object_get(v, "address"));
    json_t *out = json_pack("{s:s,s:s,s:s,s:s}", "id", id, "name", name ? name : "", "desc",
                            desc ? desc : "", "address", addr ? addr : "");
    if (!out) return -1;
    const json_t *city = catalog_city(sb->cat, json_integer_value(json_object_get(v, "city")));
    if (city) {
        const char *tz = json_string_value(json_object_get(city, "timezone"));
        json_object_set_new(out, "city", json_pack("{s:O,s:o,s:s}", "_id",
                                                   json_object_get(city, "id"), "name",
                                                   names(city), "timezone", tz ? tz : ""));
        const char *cid = json_string_value(json_object_get(city, "country"));
        const json_t *country = catalog_country(sb->cat, cid);
        if (country)
            json_object_set_new(out, "country", json_pack("{s:s,s:o}", "_id", cid, "name",
                                                          names(country)));
    }
    return json_object_set_new(venues, id, out);
}

static int ref_event(const struct sandbox *sb, json_t *refs, uint32_t ev_index)
{
    const struct cat_event *ev = &sb->cat->events[ev_index];
    json_t *events = json_object_get(refs, "events");
    if (json_object_get(events, ev->id)) return 0;
    json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s},s:i}", "id", ev->id, "org", ev->org,
                          "status", ev->is_public ? "public" : "stand_by", "timezone",
                          ev->timezone ? ev->timezone : "UTC", "title", "text", ev->name,
                          "desc", ev->description ? ev->description : "", "age_rating",
                          ev->age_rating);
    if (!e) return -1;
    if (ev->has_lifetime)
        json_object_set_new(e, "lifetime", json_pack("{s:o,s:o}", "start",
                                                     render_time(ev->start), "finish",
                                                     render_time(ev->finish)));
    if (ev->venue && *ev->venue) {
        json_object_set_new(e, "venue", json_string(ev->venue));
        ref_venue(sb, refs, ev->venue);
    }
    return json_object_set_new(events, ev->id, e);
}

/* The promocode as refs.promocodes shows it. */
static json_t *promo_json(const struct cat_promo *p)
{
    json_t *lt = json_null();
    if (p->has_lifetime)
        lt = json_pack("{s:o,s:o}", "start", render_time(p->start), "finish",
                       render_time(p->finish));
    json_t *discount;
    if (p->kind == PROMO_FIX) {
        discount = json_pack("{s:o}", "fix", render_money(p->value));
    } else {
        discount = json_pack("{s:O}", "percentage",
                             json_object_get(json_object_get(p->json, "discount"), "percentage"));
    }
    return json_pack("{s:s,s:s,s:o,s:o,s:b}", "id", p->id, "code", p->code, "discount", discount,
                     "lifetime", lt, "viral", 0);
}

static json_t *ticket_json(const struct sandbox *sb, const struct order *o, size_t i,
                           const struct amounts *unit)
{
    const struct cat_ticket *t = &sb->cat->tickets[o->tickets[i]];
    json_t *barcode = o->status == ORDER_DONE && o->barcodes ? json_string(o->barcodes[i])
                                                             : json_null();
    json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "id", t->id, "set",
                          sb->cat->sets[t->set].id, "serial", t->serial, "number",
                          (json_int_t)t->number, "status", "reserved", "barcode", barcode);
    if (!j) return NULL;
    if (t->sector)
        json_object_set_new(j, "seat", json_pack("{s:s,s:s,s:s}", "sector", t->sector, "row",
                                                 t->row, "number", t->seat));
    if (add_amounts(j, unit) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *render_order(const struct sandbox *sb, const struct order *o, json_t *refs, int64_t now)
{
    const struct catalog *cat = sb->cat;
    const struct cat_event *ev = &cat->events[o->event];
    int64_t at = o->status == ORDER_EXECUTED ? now : o->priced_at;
    struct amounts *units = calloc(ev->nsets + 1, sizeof *units), total = { 0 };
    const struct cat_promo **promos = calloc(ev->nsets + 1, sizeof *promos);
    json_t *sets_values = json_object(), *tickets = json_array(), *promo_ids = json_array();
    json_t *ref_sets = json_object_get(refs, "sets");
    json_t *ref_promos = json_object_get(refs, "promocodes");
    int rc = (units && promos && sets_values && tickets && promo_ids) ? 0 : -1;

    for (uint32_t k = 0; k < ev->nsets && rc == 0; k++) {
        uint32_t s = ev->first_set + k;
        pricing_unit(cat, o, s, at, &units[k], &promos[k]);
        json_t *sv = json_pack("{s:s,s:o}", "id", cat->sets[s].id, "promocode",
                               promos[k] ? json_string(promos[k]->id) : json_null());
        rc |= sv ? add_amounts(sv, &units[k]) : -1;
        json_object_del(sv, "extra");
        json_object_del(sv, "full");
        rc |= json_object_set_new(sets_values, cat->sets[s].id, sv);
    }
    for (size_t i = 0; i < o->ntickets && rc == 0; i++) {
        uint32_t s = cat->tickets[o->tickets[i]].set;
        const struct amounts *u = &units[s - ev->first_set];
        total.price += u->price;
        total.discount += u->discount;
        total.nominal += u->nominal;
        total.extra += u->extra;
        total.full += u->full;
        rc |= json_array_append_new(tickets, ticket_json(sb, o, i, u));
        if (!json_object_get(ref_sets, cat->sets[s].id))
            rc |= json_object_set_new(ref_sets, cat->sets[s].id,
                                      json_pack("{s:s,s:s,s:o,s:b}", "id", cat->sets[s].id,
                                                "name", cat->sets[s].name, "price",
                                                render_money(u->price), "with_seats",
                                                cat->sets[s].with_seats));
    }
    for (size_t i = 0; i < o->npromos && rc == 0; i++) {
        const struct cat_promo *p = &ev->promos[o->promos[i]];
        rc |= json_array_append_new(promo_ids, json_string(p->id));
        if (!json_object_get(ref_promos, p->id))
            rc |= json_object_set_new(ref_promos, p->id, promo_json(p));
    }
    json_t *values = NULL, *settings = NULL, *data = NULL;
    if (rc == 0) {
        values = json_pack("{s:o,s:[]}", "sets_values", sets_values, "viral_promocodes");
        sets_values = NULL;
        rc = values ? add_amounts(values, &total) : -1;
    }
    if (rc == 0) {
        settings = json_pack("{s:b,s:b,s:b,s:b}", "invitation", 0, "send_tickets",
                             o->send_tickets, "courier", 0, "subscribe_agree", 0);
        if (settings && o->customer) json_object_set(settings, "customer", o->customer);
        data = json_pack("{s:s,s:s,s:o,s:o,s:s,s:I,s:s,s:s,s:o,s:o,s:o,s:o,s:s,s:O}", "id",
                         o->id, "status", order_status_name(o->status), "created_at",
                         render_time(o->created_at), "expired_after",
                         render_time(o->expired_after), "event", ev->id, "number",
                         (json_int_t)o->number, "org", ev->org, "origin", "api", "promocodes",
                         promo_ids, "settings", settings, "tickets", tickets, "values", values,
                         "vendor", cat->distributor, "vendor_data", o->vendor_data);
        promo_ids = tickets = values = settings = NULL;
        if (data && o->status == ORDER_DONE) {
            json_object_set_new(data, "done_at", render_time(o->done_at));
            json_object_set_new(data, "code", json_string(o->code));
        }
        if (data && (ref_event(sb, refs, o->event) != 0 || ref_partner(sb, refs, ev->org) != 0 ||
                     ref_partner(sb, refs, cat->distributor) != 0)) {
            json_decref(data);
            data = NULL;
        }
    }
    json_decref(sets_values);
    json_decref(tickets);
    json_decref(promo_ids);
    json_decref(values);
    json_decref(settings);
    free(units);
    free(promos);
    return data;
}

/* ---- the answer as text -------------------------------------------------- */

/* A growing text; oom once an allocation failed (everything after is a
 * no-op, and the text is dropped). */
struct text {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->oom) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void puts_(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

/* A JSON string, escaped as jansson escapes it without flags: the quote,
 * the backslash and control characters; other bytes as they are. */
static void put_str(struct text *t, const char *s)
{
    put(t, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        put(t, run, (size_t)(s - run));
        run = s + 1;
        char esc[8];
        switch (ch) {
        case '"': puts_(t, "\\\""); break;
        case '\\': puts_(t, "\\\\"); break;
        case '\b': puts_(t, "\\b"); break;
        case '\f': puts_(t, "\\f"); break;
        case '\n': puts_(t, "\\n"); break;
        case '\r': puts_(t, "\\r"); break;
        case '\t': puts_(t, "\\t"); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04X", ch);
            puts_(t, esc);
        }
    }
    put(t, run, (size_t)(s - run));
    put(t, "\"", 1);
}

/* `,"key":` (the comma unless first) */
static void put_key(struct text *t, const char *key, bool first)
{
    if (!first) put(t, ",", 1);
    put_str(t, key);
    put(t, ":", 1);
}

static void put_int(struct text *t, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, (json_int_t)v);
    puts_(t, buf);
}

static void put_money(struct text *t, int64_t minor)
{
    char buf[32];
    format_money(minor, buf, sizeof buf);
    put_str(t, buf);
}

static void put_time(struct text *t, int64_t unix_seconds)
{
    char buf[32];
    format_datetime(unix_seconds, buf, sizeof buf);
    put_str(t, buf);
}

/* A JSON value of the catalog or of a request, as jansson dumps it. */
static void put_json(struct text *t, const json_t *v)
{
    char *s = v ? json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!s) {
        t->oom = true;
        return;
    }
    puts_(t, s);
    free(s);
}

static void put_names(struct text *t, const json_t *entry)
{
    const char *name = json_string_value(json_object_get(entry, "name"));
    if (!name) name = "";
    puts_(t, "{\"default\":");
    put_str(t, name);
    puts_(t, ",\"en\":");
    put_str(t, name);
    puts_(t, ",\"ru\":");
    put_str(t, name);
    puts_(t, "}");
}

/* The amounts' keys among others, in their sorted places: discount, extra,
 * full, nominal, price (without extra and full when !all). */
static void put_amount(struct text *t, const char *key, int64_t v, bool first)
{
    put_key(t, key, first);
    put_money(t, v);
}

/* Indexes 0..n) ordered by the strings ids[i]. */
static void order_by_id(const char **ids, uint32_t *ix, size_t n)
{
    /* small lists: insertion sort, stable */
    for (size_t i = 0; i < n; i++) ix[i] = (uint32_t)i;
    for (size_t i = 1; i < n; i++) {
        uint32_t v = ix[i];
        size_t j = i;
        while (j > 0 && strcmp(ids[ix[j - 1]], ids[v]) > 0) {
            ix[j] = ix[j - 1];
            j--;
        }
        ix[j] = v;
    }
}

static void put_partner(struct text *t, const struct sandbox *sb, const char *id, bool first)
{
    const char *name = json_string_value(json_object_get(catalog_partner(sb->cat, id), "name"));
    put_key(t, id, first);
    puts_(t, "{\"id\":");
    put_str(t, id);
    puts_(t, ",\"name\":");
    put_str(t, name ? name : "");
    puts_(t, "}");
}

static void put_venue(struct text *t, const struct sandbox *sb, const char *id, const json_t *v)
{
    const char *name = json_string_value(json_object_get(v, "name"));
    const char *desc = json_string_value(json_object_get(v, "description"));
    const char *addr = json_string_value(json_object_get(v, "address"));
    const json_t *city = catalog_city(sb->cat, json_integer_value(json_object_get(v, "city")));
    put_key(t, id, true);
    puts_(t, "{\"address\":");
    put_str(t, addr ? addr : "");
    if (city) {
        const json_t *city_id = json_object_get(city, "id");
        if (city_id) {
            const char *tz = json_string_value(json_object_get(city, "timezone"));
            puts_(t, ",\"city\":{\"_id\":");
            put_json(t, city_id);
            puts_(t, ",\"name\":");
            put_names(t, city);
            puts_(t, ",\"timezone\":");
            put_str(t, tz ? tz : "");
            puts_(t, "}");
        }
        const char *cid = json_string_value(json_object_get(city, "country"));
        const json_t *country = catalog_country(sb->cat, cid);
        if (cid && country) {
            puts_(t, ",\"country\":{\"_id\":");
            put_str(t, cid);
            puts_(t, ",\"name\":");
            put_names(t, country);
            puts_(t, "}");
        }
    }
    puts_(t, ",\"desc\":");
    put_str(t, desc ? desc : "");
    puts_(t, ",\"id\":");
    put_str(t, id);
    puts_(t, ",\"name\":");
    put_str(t, name ? name : "");
    puts_(t, "}");
}

static void put_lifetime(struct text *t, int64_t start, int64_t finish)
{
    puts_(t, "{\"finish\":");
    put_time(t, finish);
    puts_(t, ",\"start\":");
    put_time(t, start);
    puts_(t, "}");
}

static void put_event(struct text *t, const struct cat_event *ev)
{
    put_key(t, ev->id, true);
    puts_(t, "{\"age_rating\":");
    put_int(t, ev->age_rating);
    puts_(t, ",\"id\":");
    put_str(t, ev->id);
    if (ev->has_lifetime) {
        puts_(t, ",\"lifetime\":");
        put_lifetime(t, ev->start, ev->finish);
    }
    puts_(t, ",\"org\":");
    put_str(t, ev->org);
    puts_(t, ",\"status\":");
    put_str(t, ev->is_public ? "public" : "stand_by");
    puts_(t, ",\"timezone\":");
    put_str(t, ev->timezone ? ev->timezone : "UTC");
    puts_(t, ",\"title\":{\"desc\":");
    put_str(t, ev->description ? ev->description : "");
    puts_(t, ",\"text\":");
    put_str(t, ev->name);
    puts_(t, "}");
    if (ev->venue && *ev->venue) {
        puts_(t, ",\"venue\":");
        put_str(t, ev->venue);
    }
    puts_(t, "}");
}

static void put_promo(struct text *t, const struct cat_promo *p, bool first)
{
    put_key(t, p->id, first);
    puts_(t, "{\"code\":");
    put_str(t, p->code);
    puts_(t, ",\"discount\":");
    if (p->kind == PROMO_FIX) {
        puts_(t, "{\"fix\":");
        put_money(t, p->value);
    } else {
        puts_(t, "{\"percentage\":");
        put_json(t, json_object_get(json_object_get(p->json, "discount"), "percentage"));
    }
    puts_(t, "},\"id\":");
    put_str(t, p->id);
    puts_(t, ",\"lifetime\":");
    if (p->has_lifetime) put_lifetime(t, p->start, p->finish);
    else puts_(t, "null");
    puts_(t, ",\"viral\":false}");
}

static void put_ticket(struct text *t, const struct sandbox *sb, const struct order *o, size_t i,
                       const struct amounts *u)
{
    const struct cat_ticket *tk = &sb->cat->tickets[o->tickets[i]];
    puts_(t, "{\"barcode\":");
    if (o->status == ORDER_DONE && o->barcodes) put_str(t, o->barcodes[i]);
    else puts_(t, "null");
    put_amount(t, "discount", u->discount, false);
    put_amount(t, "extra", u->extra, false);
    put_amount(t, "full", u->full, false);
    puts_(t, ",\"id\":");
    put_str(t, tk->id);
    put_amount(t, "nominal", u->nominal, false);
    puts_(t, ",\"number\":");
    put_int(t, tk->number);
    put_amount(t, "price", u->price, false);
    if (tk->sector) {
        puts_(t, ",\"seat\":{\"number\":");
        put_str(t, tk->seat);
        puts_(t, ",\"row\":");
        put_str(t, tk->row);
        puts_(t, ",\"sector\":");
        put_str(t, tk->sector);
        puts_(t, "}");
    }
    puts_(t, ",\"serial\":");
    put_str(t, tk->serial);
    puts_(t, ",\"set\":");
    put_str(t, sb->cat->sets[tk->set].id);
    puts_(t, ",\"status\":\"reserved\"}");
}

char *render_order_text(const struct sandbox *sb, const struct order *o, int64_t now,
                        size_t *len)
{
    const struct catalog *cat = sb->cat;
    const struct cat_event *ev = &cat->events[o->event];
    int64_t at = o->status == ORDER_EXECUTED ? now : o->priced_at;
    size_t nsets = ev->nsets, nids = nsets > o->npromos ? nsets : o->npromos;
    struct amounts *units = calloc(nsets + 1, sizeof *units), total = { 0 };
    const struct cat_promo **promos = calloc(nsets + 1, sizeof *promos);
    const char **ids = calloc(nids + 1, sizeof *ids);
    uint32_t *ix = calloc(nids + 1, sizeof *ix);
    bool *used = calloc(nsets + 1, sizeof *used);
    struct text t = { 0 };
    if (!units || !promos || !ids || !ix || !used) t.oom = true;

    for (uint32_t k = 0; k < nsets && !t.oom; k++)
        pricing_unit(cat, o, ev->first_set + k, at, &units[k], &promos[k]);
    for (size_t i = 0; i < o->ntickets && !t.oom; i++) {
        uint32_t k = cat->tickets[o->tickets[i]].set - ev->first_set;
        used[k] = true;
        total.price += units[k].price;
        total.discount += units[k].discount;
        total.nominal += units[k].nominal;
        total.extra += units[k].extra;
        total.full += units[k].full;
    }

    /* data, its keys in sorted order */
    puts_(&t, "{\"data\":{");
    bool first = true;
    if (o->status == ORDER_DONE) {
        put_key(&t, "code", first);
        put_str(&t, o->code);
        first = false;
    }
    put_key(&t, "created_at", first);
    put_time(&t, o->created_at);
    if (o->status == ORDER_DONE) {
        puts_(&t, ",\"done_at\":");
        put_time(&t, o->done_at);
    }
    puts_(&t, ",\"event\":");
    put_str(&t, ev->id);
    puts_(&t, ",\"expired_after\":");
    put_time(&t, o->expired_after);
    puts_(&t, ",\"id\":");
    put_str(&t, o->id);
    puts_(&t, ",\"number\":");
    put_int(&t, o->number);
    puts_(&t, ",\"org\":");
    put_str(&t, ev->org);
    puts_(&t, ",\"origin\":\"api\",\"promocodes\":[");
    for (size_t i = 0; i < o->npromos; i++) {
        if (i) puts_(&t, ",");
        put_str(&t, ev->promos[o->promos[i]].id);
    }
    puts_(&t, "],\"settings\":{\"courier\":false");
    if (o->customer) {
        puts_(&t, ",\"customer\":");
        put_json(&t, o->customer);
    }
    puts_(&t, ",\"invitation\":false,\"send_tickets\":");
    puts_(&t, o->send_tickets ? "true" : "false");
    puts_(&t, ",\"subscribe_agree\":false},\"status\":");
    put_str(&t, order_status_name(o->status));
    puts_(&t, ",\"tickets\":[");
    for (size_t i = 0; i < o->ntickets && !t.oom; i++) {
        if (i) puts_(&t, ",");
        put_ticket(&t, sb, o, i, &units[cat->tickets[o->tickets[i]].set - ev->first_set]);
    }
    puts_(&t, "],\"values\":{");
    put_amount(&t, "discount", total.discount, true);
    put_amount(&t, "extra", total.extra, false);
    put_amount(&t, "full", total.full, false);
    put_amount(&t, "nominal", total.nominal, false);
    put_amount(&t, "price", total.price, false);
    puts_(&t, ",\"sets_values\":{");
    for (uint32_t k = 0; k < nsets && !t.oom; k++) ids[k] = cat->sets[ev->first_set + k].id;
    if (!t.oom) order_by_id(ids, ix, nsets);
    for (uint32_t j = 0; j < nsets && !t.oom; j++) {
        uint32_t k = ix[j];
        put_key(&t, ids[k], j == 0);
        puts_(&t, "{");
        put_amount(&t, "discount", units[k].discount, true);
        puts_(&t, ",\"id\":");
        put_str(&t, ids[k]);
        put_amount(&t, "nominal", units[k].nominal, false);
        put_amount(&t, "price", units[k].price, false);
        puts_(&t, ",\"promocode\":");
        if (promos[k]) put_str(&t, promos[k]->id);
        else puts_(&t, "null");
        puts_(&t, "}");
    }
    puts_(&t, "},\"viral_promocodes\":[]},\"vendor\":");
    put_str(&t, cat->distributor);
    puts_(&t, ",\"vendor_data\":");
    put_json(&t, o->vendor_data);

    /* refs: events, partners, promocodes, sets, venues */
    puts_(&t, "},\"refs\":{\"events\":{");
    put_event(&t, ev);
    puts_(&t, "},\"partners\":{");
    int order = strcmp(ev->org, cat->distributor);
    put_partner(&t, sb, order <= 0 ? ev->org : cat->distributor, true);
    if (order != 0) put_partner(&t, sb, order < 0 ? cat->distributor : ev->org, false);
    puts_(&t, "},\"promocodes\":{");
    size_t np = 0;
    for (size_t i = 0; i < o->npromos && !t.oom; i++) {
        const char *id = ev->promos[o->promos[i]].id;
        bool seen = false;
        for (size_t j = 0; j < np && !seen; j++) seen = strcmp(ids[j], id) == 0;
        if (!seen) ix[np] = o->promos[i], ids[np++] = id;
    }
    if (!t.oom && np > 1) {
        /* sort the (id, promo index) pairs by id */
        for (size_t i = 1; i < np; i++) {
            const char *id = ids[i];
            uint32_t p = ix[i];
            size_t j = i;
            while (j > 0 && strcmp(ids[j - 1], id) > 0) {
                ids[j] = ids[j - 1];
                ix[j] = ix[j - 1];
                j--;
            }
            ids[j] = id;
            ix[j] = p;
        }
    }
    for (size_t i = 0; i < np && !t.oom; i++) put_promo(&t, &ev->promos[ix[i]], i == 0);
    puts_(&t, "},\"sets\":{");
    for (uint32_t k = 0; k < nsets && !t.oom; k++) ids[k] = cat->sets[ev->first_set + k].id;
    if (!t.oom) order_by_id(ids, ix, nsets);
    first = true;
    for (uint32_t j = 0; j < nsets && !t.oom; j++) {
        uint32_t k = ix[j];
        if (!used[k]) continue;
        const struct cat_set *s = &cat->sets[ev->first_set + k];
        put_key(&t, s->id, first);
        first = false;
        puts_(&t, "{\"id\":");
        put_str(&t, s->id);
        puts_(&t, ",\"name\":");
        put_str(&t, s->name);
        put_amount(&t, "price", units[k].price, false);
        puts_(&t, s->with_seats ? ",\"with_seats\":true}" : ",\"with_seats\":false}");
    }
    puts_(&t, "},\"venues\":{");
    const json_t *venue = ev->venue && *ev->venue ? catalog_venue(cat, ev->venue) : NULL;
    if (venue) put_venue(&t, sb, ev->venue, venue);
    puts_(&t, "}}}");

    free(units);
    free(promos);
    free(ids);
    free(ix);
    free(used);
    if (t.oom) {
        free(t.p);
        return NULL;
    }
    *len = t.len;
    return t.p;
}
