/*
 * sandbox.h: what the parts of tc-sandbox share.
 *
 * The catalog document is loaded once and never changes afterwards, so the
 * gRPC side reads it without a lock; only the parts that the gRPC answers
 * alone read are let go once those are built, before anything listens. Live inventory (who holds which ticket)
 * belongs to the store and is read only through the functions below, which
 * take the store lock themselves.
 *
 * Catalog entities are written in the proto3 JSON mapping of their v3
 * message (field names as in proto/, enums by name, Timestamps as RFC 3339
 * strings, money in minor units), plus a few sandbox-only keys documented in
 * docs/sandbox-catalog.md.
 */
#ifndef TC_SANDBOX_H
#define TC_SANDBOX_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct sandbox;

/* True when key is one of the API keys the sandbox accepts. */
bool sandbox_key_ok(const struct sandbox *sb, const char *key);

/* The whole catalog document. Immutable after start-up. */
const json_t *sandbox_catalog(const struct sandbox *sb);
/* Lets go of catalog[key], an array that only the gRPC answers read, once
 * they are built from it: a map of 100,000 seats holds over 100 MB as JSON.
 * Start-up only, before any thread reads the document. */
void sandbox_catalog_release(struct sandbox *sb, const char *key);

/* Numbers as in v3.Seat.TicketStatus. */
enum sandbox_ticket_status { SB_VACANT = 0, SB_RESERVED = 1, SB_SOLD = 2 };

struct sandbox_seat {
    const char *ticket, *set, *sector, *row, *number;
    enum sandbox_ticket_status status;
    int64_t reserved_till; /* Unix seconds; meaningful when SB_RESERVED */
};

typedef void (*sandbox_seat_fn)(void *ud, const struct sandbox_seat *seat);

/* What sandbox_each_seat() did. */
enum sandbox_walk { SB_WALK_OK, SB_WALK_NO_EVENT, SB_WALK_NO_MEMORY };

/* Calls fn for every seated ticket of the event, in catalog order. The
 * statuses are one snapshot: due expiries are applied and every status and
 * reserved_till copied in one hold of the store lock; fn runs afterwards,
 * unlocked, so it may take its time (REST is not held up) and may call back
 * into the sandbox. The strings of a seat are catalog data and stay valid.
 * Returns SB_WALK_NO_EVENT (fn never called) when the event is unknown. */
enum sandbox_walk sandbox_each_seat(struct sandbox *sb, const char *event, sandbox_seat_fn fn,
                                    void *ud);

struct sandbox_counts {
    uint32_t amount; /* tickets in the set */
    uint32_t vacant; /* neither held by a live order nor sold */
};

/* Live counters of one ticket set. Returns false when the set is unknown. */
bool sandbox_set_counts(struct sandbox *sb, const char *set, struct sandbox_counts *out);

#endif
