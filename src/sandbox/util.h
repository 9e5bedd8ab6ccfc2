/*
 * util.h: small helpers the parts of tc-sandbox share: time stamps in the
 * formats the API uses, money strings, percentages and lower-case hex ids.
 */
#ifndef TC_SANDBOX_UTIL_H
#define TC_SANDBOX_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h" /* UTF-8, ids and secrets: the rules the module uses too */

/* An ObjectId as the API writes it: 24 characters plus the terminator. */
#define ID_LEN 24
#define ID_SIZE (ID_LEN + 1)

/* Wall-clock time in milliseconds since the epoch. */
int64_t now_ms(void);

/* Parses an RFC 3339 / ISO 8601 date-time: "2020-06-12T15:00:00Z",
 * "2020-06-12T18:00:00+03:00", "2020-06-12 15:00:00" (no zone = UTC), also a
 * bare date or no seconds; a fraction of a second (up to 9 digits) goes to
 * *nanos when nanos is not NULL. Returns false when s is not one. The
 * catalog (both its REST and its gRPC side) and the REST filters all read
 * time through it. */
bool parse_datetime_ns(const char *s, int64_t *unix_seconds, int32_t *nanos);
bool parse_datetime(const char *s, int64_t *unix_seconds);

/* "YYYY-MM-DD HH:MM:SS" in UTC, the format of REST responses. buf >= 20. */
void format_datetime(int64_t unix_seconds, char *buf, size_t len);

/* Money is int64 minor units (kopecks). "5600.00" <-> 560000. Parsing
 * accepts "5600", "5600.5", "5600.00"; at most two fraction digits. */
bool parse_money(const char *s, int64_t *minor);
void format_money(int64_t minor, char *buf, size_t len); /* buf >= 24 */

/* Percent points in billionths ("nanopercent"): "10%" -> 10e9,
 * "4.5%" -> 4.5e9. The '%' sign is optional. */
bool parse_percent(const char *s, int64_t *nanopct);

/* round_half_up(amount * nanopct / 100e9) for non-negative operands,
 * exact in integers. */
int64_t apply_percent(int64_t amount, int64_t nanopct);

/* Splits "ADDR:PORT" (IPv4 address or a host name, port 0..65535). */
bool split_addr(const char *addr, char *host, size_t hostlen, int *port);

/* True when s is exactly 24 characters of [0-9a-zA-Z]. */
bool is_object_id(const char *s);

/* 64-bit FNV-1a of a string, for deterministic derived ids. */
uint64_t fnv1a64(const char *s);

#endif
