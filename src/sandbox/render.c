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
