/*
 * faults.c: --faults SPEC, deterministic fault injection for tc-sandbox.
 *
 * SPEC is a comma-separated list of ROUTE:FAULT=PROBABILITY[@MS] entries
 * (docs/sandbox.md). Parsing turns it into, per route, the list of faults
 * that apply to it in the order given, each with the running total of
 * their probabilities. A request on a route with faults takes the next
 * number u from that route's own sequence, uniform in [0, 1); the first
 * fault whose running total exceeds u fires, so at most one does.
 *
 * The sequences are counter based (splitmix64 of a per-route key plus the
 * request's index on the route), seeded from --seed but apart from the
 * store's generator: the same seed, SPEC and requests give the same faults,
 * and the ids of orders are the same with or without --faults. Drawing
 * takes no lock: the index is an atomic counter, the rest is read-only.
 */
#include "faults.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Probabilities are whole billionths: "0.05" is 50000000. */
#define ONE 1000000000u
#define MAX_FRACTION_DIGITS 9
#define MAX_SLOW_MS 60000
#define GRPC_PREFIX "/v3.Simple/"

/* As enum fault_route orders them. The gRPC names follow the methods of
 * proto/service.proto (grpc_methods.c serves the same ten). */
static const char *const ROUTE_NAMES[] = {
    "orders.create", "orders.patch", "orders.get", "orders.list",
    "refunds.create", "refunds.patch", "refunds.get", "refunds.list",
    "promocodes.check", "mosbilet",
    "grpc.Artists", "grpc.Categories", "grpc.Cities", "grpc.Countries", "grpc.Events",
    "grpc.Maps", "grpc.MetaEvents", "grpc.Seats", "grpc.Tags", "grpc.Venues",
};

#define FIRST_GRPC ROUTE_GRPC_ARTISTS

_Static_assert(sizeof ROUTE_NAMES / sizeof ROUTE_NAMES[0] == ROUTE_COUNT, "a name per route");
_Static_assert(ROUTE_COUNT < 32, "routes are bits of a uint32_t");

/* As enum fault_kind orders them. */
static const char *const KIND_NAMES[] = {
    "none", "500", "502", "503", "drop_before", "drop_after", "slow", "unavailable",
};

_Static_assert(sizeof KIND_NAMES / sizeof KIND_NAMES[0] == FAULT_KINDS, "a name per fault");

/* One fault of one route, in the order SPEC gives them. */
struct rule {
    enum fault_kind kind;
    int ms;
    uint32_t upto; /* running total of the route's probabilities, at most ONE */
};

struct faults {
    struct rule *rules; /* ROUTE_COUNT rows of `width` rules */
    size_t width;
    size_t nrules[ROUTE_COUNT];
    uint64_t key[ROUTE_COUNT];              /* where each route's sequence starts */
    atomic_uint_fast64_t drawn[ROUTE_COUNT]; /* requests that drew, per route */
    atomic_ulong fired[ROUTE_COUNT][FAULT_KINDS];

    pthread_mutex_t lock; /* for the sleeps of slow answers only */
    pthread_cond_t wake;
    bool stopping;
};

const char *fault_name(enum fault_kind kind)
{
    return (unsigned)kind < FAULT_KINDS ? KIND_NAMES[kind] : "?";
}

/* The splitmix64 finalizer: a good 64-bit mix of a counter. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define GOLDEN 0x9e3779b97f4a7c15ULL
#define SALT 0x6661756c74730000ULL /* "faults": apart from the store's sequence */

/* ---- parsing ------------------------------------------------------------ */

/* One entry of SPEC, for messages. */
struct entry {
    const char *text;
    int len;
};

static bool fail(char *err, size_t errlen, const struct entry *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "--faults: 'ENTRY': why", false. */
static bool fail(char *err, size_t errlen, const struct entry *e, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "--faults: '%.*s': %s", e->len, e->text, why);
    return false;
}

static bool same(const char *s, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(s, name, len) == 0;
}

/* The routes a ROUTE names, as bits (1 << enum fault_route); 0 if none. */
static uint32_t route_bits(const char *s, size_t len)
{
    if (same(s, len, "*")) return (1u << FIRST_GRPC) - 1;
    if (same(s, len, "grpc.*")) return ((1u << ROUTE_COUNT) - 1) & ~((1u << FIRST_GRPC) - 1);
    for (int r = 0; r < ROUTE_COUNT; r++)
        if (same(s, len, ROUTE_NAMES[r])) return 1u << r;
    return 0;
}

static enum fault_kind kind_of(const char *s, size_t len)
{
    for (int k = FAULT_NONE + 1; k < FAULT_KINDS; k++)
        if (same(s, len, KIND_NAMES[k])) return (enum fault_kind)k;
    return FAULT_NONE;
}

/* DIGITS ["." DIGITS] from 0 to 1, at most 9 digits after the point, in
 * billionths. No signs, exponents or spaces. */
static bool parse_probability(const char *s, size_t len, uint32_t *out)
{
    size_t i = 0;
    uint64_t whole = 0, frac = 0;
    int digits = 0;
    if (len == 0) return false;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        whole = whole * 10 + (uint64_t)(s[i] - '0');
        if (whole > 1) return false;
    }
    if (i == 0) return false;
    if (i < len) {
        if (s[i++] != '.' || i == len) return false;
        for (; i < len; i++) {
            if (s[i] < '0' || s[i] > '9' || ++digits > MAX_FRACTION_DIGITS) return false;
            frac = frac * 10 + (uint64_t)(s[i] - '0');
        }
    }
    for (; digits < MAX_FRACTION_DIGITS; digits++) frac *= 10;
    uint64_t p = whole * ONE + frac;
    if (p > ONE) return false;
    *out = (uint32_t)p;
    return true;
}

static bool parse_ms(const char *s, size_t len, int *out)
{
    long ms = 0;
    if (len == 0 || len > 5) return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        ms = ms * 10 + (s[i] - '0');
    }
    if (ms < 1 || ms > MAX_SLOW_MS) return false;
    *out = (int)ms;
    return true;
}

/* Reads one ROUTE:FAULT=PROBABILITY[@MS] entry and appends its fault to
 * every route it names. */
static bool parse_entry(struct faults *f, const struct entry *e, char *err, size_t errlen)
{
    const char *s = e->text, *end = s + e->len;
    const char *colon = memchr(s, ':', (size_t)e->len);
    const char *eq = colon ? memchr(colon, '=', (size_t)(end - colon)) : NULL;
    if (!eq)
        return fail(err, errlen, e, "not ROUTE:FAULT=PROBABILITY");
    const char *at = memchr(eq, '@', (size_t)(end - eq));
    const char *pend = at ? at : end;

    uint32_t routes = route_bits(s, (size_t)(colon - s));
    if (!routes && strncmp(s, "grpc.", 5) == 0)
        return fail(err, errlen, e,
                    "unknown route '%.*s'; the gRPC routes are grpc.* and grpc.Artists, "
                    "Categories, Cities, Countries, Events, Maps, MetaEvents, Seats, Tags, "
                    "Venues",
                    (int)(colon - s), s);
    if (!routes)
        return fail(err, errlen, e,
                    "unknown route '%.*s'; routes are orders.create, orders.patch, "
                    "orders.get, orders.list, refunds.create, refunds.patch, refunds.get, "
                    "refunds.list, promocodes.check, mosbilet, * (all of those), "
                    "grpc.<Method> and grpc.*",
                    (int)(colon - s), s);
    enum fault_kind kind = kind_of(colon + 1, (size_t)(eq - colon - 1));
    if (kind == FAULT_NONE)
        return fail(err, errlen, e,
                    "unknown fault '%.*s'; faults are 500, 502, 503, drop_before, "
                    "drop_after, slow (REST) and unavailable (gRPC)",
                    (int)(eq - colon - 1), colon + 1);
    bool grpc = (routes >> FIRST_GRPC) != 0;
    if (grpc && kind != FAULT_UNAVAILABLE)
        return fail(err, errlen, e, "%s is a REST fault; gRPC routes take unavailable",
                    fault_name(kind));
    if (!grpc && kind == FAULT_UNAVAILABLE)
        return fail(err, errlen, e, "unavailable is for gRPC routes (grpc.<Method>, grpc.*)");

    uint32_t p;
    if (!parse_probability(eq + 1, (size_t)(pend - eq - 1), &p))
        return fail(err, errlen, e,
                    "the probability must be a decimal from 0 to 1 such as 0.05 (at most 9 "
                    "digits after the point), not '%.*s'",
                    (int)(pend - eq - 1), eq + 1);
    int ms = 0;
    if (kind == FAULT_SLOW) {
        if (!at || !parse_ms(at + 1, (size_t)(end - at - 1), &ms))
            return fail(err, errlen, e,
                        "slow wants its delay: slow=PROBABILITY@MS, MS from 1 to %d",
                        MAX_SLOW_MS);
    } else if (at) {
        return fail(err, errlen, e, "only slow takes @MS");
    }

    for (int r = 0; r < ROUTE_COUNT; r++) {
        if (!(routes & (1u << r))) continue;
        struct rule *row = f->rules + (size_t)r * f->width;
        size_t n = f->nrules[r];
        uint32_t before = n ? row[n - 1].upto : 0;
        row[n] = (struct rule){ kind, ms, before + p > ONE ? ONE : before + p };
        f->nrules[r]++;
    }
    return true;
}

struct faults *faults_parse(const char *spec, uint64_t seed, char *err, size_t errlen)
{
    if (!*spec) {
        snprintf(err, errlen, "--faults wants ROUTE:FAULT=PROBABILITY entries separated by "
                              "commas");
        return NULL;
    }
    size_t entries = 1;
    for (const char *p = spec; *p; p++) entries += *p == ',';

    struct faults *f = calloc(1, sizeof *f);
    if (f) f->rules = calloc(ROUTE_COUNT * entries, sizeof *f->rules);
    if (!f || !f->rules) {
        snprintf(err, errlen, "out of memory");
        faults_free(f);
        return NULL;
    }
    f->width = entries;
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&f->wake, &attr);
    pthread_condattr_destroy(&attr);
    uint64_t base = mix(seed ^ SALT);
    for (int r = 0; r < ROUTE_COUNT; r++) {
        f->key[r] = mix(base + (uint64_t)(r + 1) * GOLDEN);
        atomic_init(&f->drawn[r], 0);
        for (int k = 0; k < FAULT_KINDS; k++) atomic_init(&f->fired[r][k], 0);
    }

    for (const char *p = spec;; p++) {
        size_t n = strcspn(p, ",");
        struct entry e = { p, (int)n };
        if (n == 0) {
            snprintf(err, errlen, "--faults: empty entry in '%s'", spec);
            faults_free(f);
            return NULL;
        }
        if (!parse_entry(f, &e, err, errlen)) {
            faults_free(f);
            return NULL;
        }
        p += n;
        if (!*p) break;
    }
    return f;
}

void faults_free(struct faults *f)
{
    if (!f) return;
    if (f->rules) { /* allocated, then the lock and condition made at once */
        pthread_cond_destroy(&f->wake);
        pthread_mutex_destroy(&f->lock);
    }
    free(f->rules);
    free(f);
}

/* ---- deciding ----------------------------------------------------------- */

struct fault faults_pick(struct faults *f, enum fault_route route, const char *method,
                         const char *path)
{
    struct fault none = { FAULT_NONE, 0 };
    if ((unsigned)route >= ROUTE_COUNT || f->nrules[route] == 0) return none;
    uint64_t n = atomic_fetch_add(&f->drawn[route], 1);
    uint32_t u = (uint32_t)(mix(f->key[route] + (n + 1) * GOLDEN) % ONE);
    const struct rule *row = f->rules + (size_t)route * f->width;
    for (size_t i = 0; i < f->nrules[route]; i++) {
        if (u < row[i].upto) {
            atomic_fetch_add(&f->fired[route][row[i].kind], 1);
            fprintf(stderr, "tc-sandbox: fault %s %s %s\n", fault_name(row[i].kind), method,
                    path);
            return (struct fault){ row[i].kind, row[i].ms };
        }
    }
    return none;
}

enum fault_route faults_grpc_route(const char *path, size_t len)
{
    size_t plen = strlen(GRPC_PREFIX);
    if (len <= plen || memcmp(path, GRPC_PREFIX, plen) != 0) return ROUTE_NONE;
    for (int r = FIRST_GRPC; r < ROUTE_COUNT; r++)
        if (same(path + plen, len - plen, ROUTE_NAMES[r] + strlen("grpc.")))
            return (enum fault_route)r;
    return ROUTE_NONE;
}

/* ---- acting and reporting ----------------------------------------------- */

void faults_sleep(struct faults *f, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->lock);
    while (!f->stopping) {
        if (pthread_cond_timedwait(&f->wake, &f->lock, &until) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&f->lock);
}

void faults_stop(struct faults *f)
{
    pthread_mutex_lock(&f->lock);
    f->stopping = true;
    pthread_cond_broadcast(&f->wake);
    pthread_mutex_unlock(&f->lock);
}

void faults_report(struct faults *f)
{
    unsigned long total = 0;
    for (int r = 0; r < ROUTE_COUNT; r++) {
        for (int k = FAULT_NONE + 1; k < FAULT_KINDS; k++) {
            unsigned long n = atomic_load(&f->fired[r][k]);
            if (n == 0) continue;
            fprintf(stderr, "tc-sandbox: faults injected: %s %s %lu\n", ROUTE_NAMES[r],
                    KIND_NAMES[k], n);
            total += n;
        }
    }
    fprintf(stderr, "tc-sandbox: faults injected: %lu in all\n", total);
}
