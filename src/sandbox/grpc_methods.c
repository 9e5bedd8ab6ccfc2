/*
 * grpc_methods.c: what the ten tc-simple methods answer.
 *
 * At start every catalog entity becomes a protobuf-c message (pbjson). The
 * reference entities (countries, cities, venues, maps, artists, categories,
 * tags, meta events) never change, so they are packed once and a call only
 * picks the packed bytes that pass its filters. Events and seats carry live
 * inventory: an event's counters are refreshed from the store and the event
 * packed per call, and seats are packed from a snapshot of the store's
 * statuses (sandbox_each_seat), after the store lock is released.
 *
 * Request semantics (spec §2.12, §8 row 22): an empty filter does not
 * filter; unknown ids are simply not streamed; `Seats` needs `event`. A
 * list of ids in a request is put in a hash set first, so a call costs the
 * size of the request plus the entities it walks, never their product.
 *
 * methods_run() runs on several threads at once (grpc.c's workers): the
 * messages built at start are only read; an event is copied for its live
 * counters.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artists.pb-c.h"
#include "events.pb-c.h"
#include "geo.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc_methods.h"
#include "grpc_reflection.h"
#include "meta_events.pb-c.h"
#include "pbjson.h"
#include "sandbox.h"
#include "seats.pb-c.h"
#include "tags.pb-c.h"
#include "util.h"
#include "venues.pb-c.h"

/* One catalog entity: its message and, for reference entities, its bytes. */
struct entity {
    ProtobufCMessage *msg;
    grpc_slice packed;
};

struct entities {
    struct entity *items;
    size_t n;
};

struct methods {
    struct sandbox *sb;
    struct reflection *reflection;
    struct entities artists, categories, cities, countries, events, maps, meta_events, tags,
        venues;
};

/* ---- replies ------------------------------------------------------------- */

void reply_error(struct reply *out, grpc_status_code status, const char *message)
{
    for (size_t i = 0; i < out->n; i++) grpc_slice_unref(out->msgs[i]);
    out->n = 0;
    out->status = status;
    out->message = message;
}

bool reply_push(struct reply *out, grpc_slice s)
{
    if (out->status != GRPC_STATUS_OK) {
        grpc_slice_unref(s);
        return false;
    }
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        grpc_slice *msgs = realloc(out->msgs, cap * sizeof *msgs);
        if (!msgs) {
            grpc_slice_unref(s);
            reply_error(out, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            return false;
        }
        out->msgs = msgs;
        out->cap = cap;
    }
    out->msgs[out->n++] = s;
    return true;
}

grpc_slice reply_pack(const ProtobufCMessage *msg)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(size);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    return s;
}

static void reply_entity(struct reply *out, const struct entity *e)
{
    reply_push(out, grpc_slice_ref(e->packed));
}

void reply_free(struct reply *r)
{
    for (size_t i = 0; i < r->n; i++) grpc_slice_unref(r->msgs[i]);
    free(r->msgs);
    memset(r, 0, sizeof *r);
}

/* ---- filters ------------------------------------------------------------- */

/* The ids of a request's filter, hashed (FNV-1a, open addressing). An empty
 * list does not filter: idset_has() is then always true. */
struct idset {
    const char **slots; /* the request's strings; NULL = free */
    size_t mask;
    size_t n;
};

/* False when out of memory. */
static bool idset_init(struct idset *set, char *const *list, size_t n)
{
    set->slots = NULL;
    set->mask = 0;
    set->n = n;
    if (n == 0) return true;
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    set->slots = calloc(cap, sizeof *set->slots);
    if (!set->slots) return false;
    set->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        size_t h = (size_t)fnv1a64(list[i]) & set->mask;
        while (set->slots[h] && strcmp(set->slots[h], list[i]) != 0) h = (h + 1) & set->mask;
        set->slots[h] = list[i];
    }
    return true;
}

static bool idset_has(const struct idset *set, const char *id)
{
    if (set->n == 0) return true;
    size_t h = (size_t)fnv1a64(id) & set->mask;
    for (; set->slots[h]; h = (h + 1) & set->mask)
        if (strcmp(set->slots[h], id) == 0) return true;
    return false;
}

static void idset_free(struct idset *set)
{
    free(set->slots);
    set->slots = NULL;
}

/* The id filter of a reference method: false (the call answered
 * RESOURCE_EXHAUSTED) when out of memory. */
static bool ids_filter(struct idset *set, char *const *ids, size_t n, struct reply *out)
{
    if (idset_init(set, ids, n)) return true;
    reply_error(out, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return false;
}

/* An empty string does not filter. */
static bool same(const char *value, const char *filter)
{
    return filter[0] == '\0' || strcmp(value, filter) == 0;
}

/* Next code point of a UTF-8 string, lower-cased for ASCII, Latin-1 and
 * Cyrillic letters (enough for city names). A stray byte stands for itself. */
static unsigned long next_folded(const unsigned char **p)
{
    const unsigned char *s = *p;
    unsigned long cp;
    int extra;
    if (s[0] < 0x80) {
        cp = s[0];
        extra = 0;
    } else if ((s[0] & 0xE0) == 0xC0) {
        cp = s[0] & 0x1F;
        extra = 1;
    } else if ((s[0] & 0xF0) == 0xE0) {
        cp = s[0] & 0x0F;
        extra = 2;
    } else if ((s[0] & 0xF8) == 0xF0) {
        cp = s[0] & 0x07;
        extra = 3;
    } else {
        *p = s + 1;
        return s[0];
    }
    for (int i = 1; i <= extra; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *p = s + 1;
            return s[0];
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *p = s + 1 + extra;

    if (cp >= 'A' && cp <= 'Z') return cp + 0x20;
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50; /* Ѐ..Џ, Ё among them */
    if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20; /* А..Я */
    return cp;
}

/* True when needle matches hay from its start on (the whole of hay when
 * whole is set), ignoring case. */
static bool folded_match_at(const char *hay, const char *needle, bool whole)
{
    const unsigned char *h = (const unsigned char *)hay, *n = (const unsigned char *)needle;
    while (*n) {
        if (!*h || next_folded(&h) != next_folded(&n)) return false;
    }
    return !whole || !*h;
}

static bool folded_equal(const char *a, const char *b)
{
    return folded_match_at(a, b, true);
}

static bool folded_contains(const char *hay, const char *needle)
{
    const unsigned char *h = (const unsigned char *)hay;
    for (;;) {
        if (folded_match_at((const char *)h, needle, false)) return true;
        if (!*h) return false;
        next_folded(&h);
    }
}

static int ts_cmp(const Google__Protobuf__Timestamp *a, const Google__Protobuf__Timestamp *b)
{
    if (a->seconds != b->seconds) return a->seconds < b->seconds ? -1 : 1;
    if (a->nanos != b->nanos) return a->nanos < b->nanos ? -1 : 1;
    return 0;
}

/* An unset bound does not filter; a bound against a missing time fails. */
static bool time_passes(const Google__Protobuf__Timestamp *t, const V3__TimestampFilter *f)
{
    if (!f || !(f->gte || f->gt || f->lte || f->lt)) return true;
    if (!t) return false;
    return (!f->gte || ts_cmp(t, f->gte) >= 0) && (!f->gt || ts_cmp(t, f->gt) > 0) &&
           (!f->lte || ts_cmp(t, f->lte) <= 0) && (!f->lt || ts_cmp(t, f->lt) < 0);
}

/* ---- the reference methods ----------------------------------------------- */

/* The `string id = 1` of a reference entity (Artist, Category, Country,
 * MetaEvent, Tag, Venue all begin so), read through its descriptor. */
static const char *entity_id(const ProtobufCMessage *msg)
{
    const ProtobufCFieldDescriptor *f = &msg->descriptor->fields[0];
    if (f->id != 1 || f->type != PROTOBUF_C_TYPE_STRING || strcmp(f->name, "id") != 0)
        return "";
    return *(char *const *)((const char *)msg + f->offset);
}

/* Streams the packed entities of list whose id passes the request's ids. */
static void by_ids(const struct entities *list, char *const *ids, size_t n, struct reply *out)
{
    struct idset set;
    if (!ids_filter(&set, ids, n, out)) return;
    for (size_t i = 0; i < list->n; i++)
        if (idset_has(&set, entity_id(list->items[i].msg))) reply_entity(out, &list->items[i]);
    idset_free(&set);
}

static void artists(struct methods *m, const ProtobufCMessage *req, struct reply *out)
{
    const V3__ArtistsRequest *r = (const V3__ArtistsRequest *)req;
    by_ids(&m->artists, r->ids, r->n_ids, out);
}

static void categories(struct methods *m, const ProtobufCMessage *req, struct reply *out)
{
    const V3__CategoriesRequest *r = (const V3__CategoriesRequest *)req;
    by_ids(&m->categories, r->ids, r->n_ids, out);
}

static void countries(struct methods *m, const ProtobufCMessage *req, struct reply *out)
{
    const V3__CountriesRequest *r = (const V3__CountriesRequest *)req;
    by_ids(&m->countries, r->ids, r->n_ids, out);
}

static void meta_events(struct methods *m, const ProtobufCMessage *req, struct reply *out)
{
    const V3__MetaEventsRequest *r = (const V3__MetaEventsRequest *)req;
    by_ids(&m->meta_events, r->ids, r->n_ids, out);
}

static void tags(struct methods *m, const ProtobufCMessage *req, struct reply *out)
{
    const V3__TagsRequest *r = (const V3__TagsRequest *)req;
    by_ids(&m->tags, r->ids, r->n_ids, out);
}

static void venues(struct methods *m, const ProtobufCMessage *req, struct reply *out)
{
    const V3__VenuesRequest *r = (const V3__VenuesRequest *)req;
    by_ids(&m->venues, r->ids, r->n_ids, out);
}

static void maps(struct methods *m, const ProtobufCMessage *req, struct reply *out)
{
    const V3__MapsRequest *r = (const V3__MapsRequest *)req;
    struct idset set;
    if (!ids_filter(&set, r->ids, r->n_ids, out)) return;
    for (size_t i = 0; i < m->maps.n; i++) {
        const V3__Map *map = (const V3__Map *)m->maps.items[i].msg;
        if (idset_has(&set, map->id) && same(map->venue, r->venue))
            reply_entity(out, &m->maps.items[i]);
    }
    idset_free(&set);
}

static int int_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* ids: the request's city ids, sorted (NULL when it gives none). */
static bool city_wanted(const V3__City *c, const V3__CitiesRequest *r, const int32_t *ids)
{
    if (ids && !bsearch(&c->id, ids, r->n_ids, sizeof *ids, int_cmp)) return false;
    if (r->name[0] && !folded_equal(c->name, r->name)) return false;
    if (r->suggest[0] && !folded_contains(c->name, r->suggest)) return false;
    return same(c->country, r->country);
}

static void cities(struct methods *m, const ProtobufCMessage *req, struct reply *out)
{
    const V3__CitiesRequest *r = (const V3__CitiesRequest *)req;
    int32_t *ids = NULL;
    if (r->n_ids > 0) {
        ids = malloc(r->n_ids * sizeof *ids);
        if (!ids) {
            reply_error(out, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        memcpy(ids, r->ids, r->n_ids * sizeof *ids);
        qsort(ids, r->n_ids, sizeof *ids, int_cmp);
    }
    for (size_t i = 0; i < m->cities.n; i++) {
        if (city_wanted((const V3__City *)m->cities.items[i].msg, r, ids))
            reply_entity(out, &m->cities.items[i]);
    }
    free(ids);
}

/* ---- events -------------------------------------------------------------- */

static bool event_wanted(const V3__Event *e, const V3__EventsRequest *r,
                         const struct idset *ids)
{
    if (!idset_has(ids, e->id) || !same(e->org, r->org)) return false;

    switch (r->meta_event_case) {
    case V3__EVENTS_REQUEST__META_EVENT_META:
        if (strcmp(e->meta, r->meta) != 0) return false;
        break;
    case V3__EVENTS_REQUEST__META_EVENT_WITHOUT_META:
        if (r->without_meta && e->meta[0] != '\0') return false;
        break;
    default:
        break;
    }

    /* EventsRequest.Status counts from ANY = 0, Event.EventStatus from
     * STAND_BY = 0: they are not the same numbers. */
    switch ((int)r->status) {
    case V3__EVENTS_REQUEST__STATUS__ANY:
        break;
    case V3__EVENTS_REQUEST__STATUS__STAND_BY:
        if (e->status != V3__EVENT__EVENT_STATUS__STAND_BY) return false;
        break;
    case V3__EVENTS_REQUEST__STATUS__PUBLIC:
        if (e->status != V3__EVENT__EVENT_STATUS__PUBLIC) return false;
        break;
    default:
        return false;
    }

    if (r->lifetime) {
        const V3__Lifetime *lt = e->lifetime;
        if (!time_passes(lt ? lt->start : NULL, r->lifetime->start) ||
            !time_passes(lt ? lt->finish : NULL, r->lifetime->finish))
            return false;
    }
    return true;
}

/* Packs the event with the store's counters in its sets and totals. The
 * catalog's message is shared by every call, so the counters go into a
 * shallow copy of it and of its sets. An empty slice when out of memory. */
static grpc_slice pack_live(struct methods *m, const V3__Event *shared, bool *ok)
{
    V3__Event e = *shared;
    V3__Event__TicketSet *sets = NULL, **set_ptrs = NULL;
    *ok = true;
    if (e.n_sets > 0) {
        sets = malloc(e.n_sets * sizeof *sets);
        set_ptrs = malloc(e.n_sets * sizeof *set_ptrs);
        if (!sets || !set_ptrs) {
            free(sets);
            free(set_ptrs);
            *ok = false;
            return grpc_empty_slice();
        }
    }
    uint64_t amount = 0, vacant = 0;
    for (size_t i = 0; i < e.n_sets; i++) {
        sets[i] = *shared->sets[i];
        set_ptrs[i] = &sets[i];
        struct sandbox_counts c = {0, 0};
        sandbox_set_counts(m->sb, sets[i].id, &c);
        sets[i].amount = c.amount;
        sets[i].amount_vacant = c.vacant;
        amount += c.amount;
        vacant += c.vacant;
    }
    e.sets = set_ptrs;
    e.tickets_amount = amount > UINT32_MAX ? UINT32_MAX : (uint32_t)amount;
    e.tickets_amount_vacant = vacant > UINT32_MAX ? UINT32_MAX : (uint32_t)vacant;
    grpc_slice packed = reply_pack(&e.base);
    free(sets);
    free(set_ptrs);
    return packed;
}

static void events(struct methods *m, const ProtobufCMessage *req, struct reply *out)
{
    const V3__EventsRequest *r = (const V3__EventsRequest *)req;
    struct idset ids;
    if (!ids_filter(&ids, r->ids, r->n_ids, out)) return;
    for (size_t i = 0; i < m->events.n; i++) {
        const V3__Event *e = (const V3__Event *)m->events.items[i].msg;
        if (!event_wanted(e, r, &ids)) continue;
        bool ok;
        grpc_slice packed = pack_live(m, e, &ok);
        if (!ok) {
            reply_error(out, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            break;
        }
        if (!reply_push(out, packed)) break;
    }
    idset_free(&ids);
}

/* ---- seats --------------------------------------------------------------- */

struct seats_walk {
    const V3__SeatsRequest *req;
    struct idset sets, tickets;
    struct reply *out;
};

static bool seat_status_passes(enum sandbox_ticket_status st, V3__SeatsRequest__Status filter)
{
    /* SeatsRequest.Status counts from ANY = 0; Seat.TicketStatus (and the
     * store) from VACANT = 0. */
    switch ((int)filter) {
    case V3__SEATS_REQUEST__STATUS__ANY:
        return true;
    case V3__SEATS_REQUEST__STATUS__VACANT:
        return st == SB_VACANT;
    case V3__SEATS_REQUEST__STATUS__RESERVED:
        return st == SB_RESERVED;
    case V3__SEATS_REQUEST__STATUS__SOLD:
        return st == SB_SOLD;
    default:
        return false;
    }
}

/* Filters and packs one seat of the snapshot (the store is not locked). */
static void seat_visit(void *ud, const struct sandbox_seat *s)
{
    struct seats_walk *w = ud;
    const V3__SeatsRequest *r = w->req;

    if (!same(s->sector, r->sector) || !same(s->row, r->row) || !same(s->number, r->number) ||
        !idset_has(&w->sets, s->set) || !idset_has(&w->tickets, s->ticket) ||
        !seat_status_passes(s->status, r->status))
        return;

    V3__Seat seat = V3__SEAT__INIT;
    Google__Protobuf__Timestamp till = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    seat.sector = (char *)s->sector;
    seat.row = (char *)s->row;
    seat.number = (char *)s->number;
    seat.event = r->event;
    seat.set = (char *)s->set;
    seat.ticket = (char *)s->ticket;
    switch (s->status) {
    case SB_RESERVED:
        seat.status = V3__SEAT__TICKET_STATUS__RESERVED;
        till.seconds = s->reserved_till;
        seat.ticket_reserved_till = &till;
        break;
    case SB_SOLD:
        seat.status = V3__SEAT__TICKET_STATUS__SOLD;
        break;
    default:
        seat.status = V3__SEAT__TICKET_STATUS__VACANT;
        break;
    }
    reply_push(w->out, reply_pack(&seat.base));
}

static void seats(struct methods *m, const ProtobufCMessage *req, struct reply *out)
{
    const V3__SeatsRequest *r = (const V3__SeatsRequest *)req;
    if (r->event[0] == '\0') {
        reply_error(out, GRPC_STATUS_INVALID_ARGUMENT, "event is required");
        return;
    }
    struct seats_walk w = { .req = r, .out = out };
    if (!ids_filter(&w.sets, r->sets, r->n_sets, out)) return;
    if (!ids_filter(&w.tickets, r->tickets, r->n_tickets, out)) {
        idset_free(&w.sets);
        return;
    }
    /* An unknown event has no seats: the stream is empty. */
    if (sandbox_each_seat(m->sb, r->event, seat_visit, &w) == SB_WALK_NO_MEMORY)
        reply_error(out, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    idset_free(&w.sets);
    idset_free(&w.tickets);
}

/* ---- the table ----------------------------------------------------------- */

/* Reflection v1alpha has v1's messages: v1's code reads both. */
static const struct method METHODS[] = {
    {"/v3.Simple/Artists", &v3__artists_request__descriptor, artists, SHAPE_STREAM, false},
    {"/v3.Simple/Categories", &v3__categories_request__descriptor, categories, SHAPE_STREAM,
     false},
    {"/v3.Simple/Cities", &v3__cities_request__descriptor, cities, SHAPE_STREAM, false},
    {"/v3.Simple/Countries", &v3__countries_request__descriptor, countries, SHAPE_STREAM, false},
    {"/v3.Simple/Events", &v3__events_request__descriptor, events, SHAPE_STREAM, false},
    {"/v3.Simple/Maps", &v3__maps_request__descriptor, maps, SHAPE_STREAM, false},
    {"/v3.Simple/MetaEvents", &v3__meta_events_request__descriptor, meta_events, SHAPE_STREAM,
     false},
    {"/v3.Simple/Seats", &v3__seats_request__descriptor, seats, SHAPE_STREAM, false},
    {"/v3.Simple/Tags", &v3__tags_request__descriptor, tags, SHAPE_STREAM, false},
    {"/v3.Simple/Venues", &v3__venues_request__descriptor, venues, SHAPE_STREAM, false},
    {"/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor,
     health_check, SHAPE_STREAM, true},
    {"/grpc.health.v1.Health/Watch", &grpc__health__v1__health_check_request__descriptor,
     health_watch, SHAPE_WATCH, true},
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
     &grpc__reflection__v1__server_reflection_request__descriptor, reflection_info, SHAPE_BIDI,
     true},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
     &grpc__reflection__v1__server_reflection_request__descriptor, reflection_info, SHAPE_BIDI,
     true},
};

const struct reflection *methods_reflection(const struct methods *m)
{
    return m->reflection;
}

const struct method *methods_find(const char *path, size_t len)
{
    for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++) {
        if (strlen(METHODS[i].path) == len && memcmp(METHODS[i].path, path, len) == 0)
            return &METHODS[i];
    }
    return NULL;
}

void methods_run(struct methods *m, const struct method *method, const uint8_t *req,
                 size_t len, struct reply *out)
{
    out->status = GRPC_STATUS_OK;
    ProtobufCMessage *r = protobuf_c_message_unpack(method->request, NULL, len, req);
    if (!r) {
        reply_error(out, GRPC_STATUS_INVALID_ARGUMENT, "cannot parse the request");
        return;
    }
    method->run(m, r, out);
    protobuf_c_message_free_unpacked(r, NULL);
}

/* ---- loading ------------------------------------------------------------- */

static void entities_free(struct entities *list)
{
    for (size_t i = 0; i < list->n; i++) {
        pbjson_free(list->items[i].msg);
        grpc_slice_unref(list->items[i].packed);
    }
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

/* Decodes catalog[key]; packs each entity unless it is live (events). */
static bool entities_load(struct entities *list, const json_t *catalog, const char *key,
                          const ProtobufCMessageDescriptor *desc, bool live, char *err,
                          size_t errlen)
{
    const json_t *array = json_object_get(catalog, key);
    if (!array) return true;
    if (!json_is_array(array)) {
        snprintf(err, errlen, "\"%s\" is not an array", key);
        return false;
    }
    size_t n = json_array_size(array);
    if (n == 0) return true;
    list->items = calloc(n, sizeof *list->items);
    if (!list->items) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char why[200];
        ProtobufCMessage *msg = pbjson_decode(desc, json_array_get(array, i), why, sizeof why);
        if (!msg) {
            snprintf(err, errlen, "%s[%zu]: %s", key, i, why);
            return false;
        }
        list->items[i].msg = msg;
        list->items[i].packed = live ? grpc_empty_slice() : reply_pack(msg);
        list->n++;
    }
    return true;
}

void methods_free(struct methods *m)
{
    if (!m) return;
    entities_free(&m->artists);
    entities_free(&m->categories);
    entities_free(&m->cities);
    entities_free(&m->countries);
    entities_free(&m->events);
    entities_free(&m->maps);
    entities_free(&m->meta_events);
    entities_free(&m->tags);
    entities_free(&m->venues);
    reflection_free(m->reflection);
    free(m);
    grpc_shutdown();
}

struct methods *methods_load(struct sandbox *sb, char *err, size_t errlen)
{
    const json_t *cat = sandbox_catalog(sb);
    struct methods *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    grpc_init(); /* for the packed slices; methods_free() gives it back */
    m->sb = sb;
    if (!json_is_object(cat)) {
        snprintf(err, errlen, "not a JSON object");
        methods_free(m);
        return NULL;
    }
    bool ok =
        entities_load(&m->artists, cat, "artists", &v3__artist__descriptor, false, err, errlen) &&
        entities_load(&m->categories, cat, "categories", &v3__category__descriptor, false, err,
                      errlen) &&
        entities_load(&m->cities, cat, "cities", &v3__city__descriptor, false, err, errlen) &&
        entities_load(&m->countries, cat, "countries", &v3__country__descriptor, false, err,
                      errlen) &&
        entities_load(&m->events, cat, "events", &v3__event__descriptor, true, err, errlen) &&
        entities_load(&m->maps, cat, "maps", &v3__map__descriptor, false, err, errlen) &&
        entities_load(&m->meta_events, cat, "meta_events", &v3__meta_event__descriptor, false,
                      err, errlen) &&
        entities_load(&m->tags, cat, "tags", &v3__tag__descriptor, false, err, errlen) &&
        entities_load(&m->venues, cat, "venues", &v3__venue__descriptor, false, err, errlen);
    if (ok) {
        m->reflection = reflection_load(err, errlen);
        ok = m->reflection != NULL;
    }
    if (!ok) {
        methods_free(m);
        return NULL;
    }
    /* Packed above and read by nothing else; the events stay (their answers
     * are built per call) and so do the entities that REST refers to. */
    static const char *const packed_only[] = { "artists", "categories", "maps", "meta_events",
                                               "tags" };
    for (size_t i = 0; i < sizeof packed_only / sizeof *packed_only; i++)
        sandbox_catalog_release(sb, packed_only[i]);
    return m;
}
