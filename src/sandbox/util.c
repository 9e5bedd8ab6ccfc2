/*
 * util.c: time stamps, money strings, percentages and ids for tc-sandbox.
 *
 * Money never goes through floating point: amounts are int64 minor units,
 * percentages are int64 billionths of a percent point, and the one product
 * of the two is computed in 128-bit integers.
 */
#include "util.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's method). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool parse_datetime_ns(const char *s, int64_t *unix_seconds, int32_t *nanos)
{
    static const int month_days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, mo, d, h = 0, mi = 0, sec = 0;
    int32_t frac = 0;
    const char *p = s;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return false;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi)) return false;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec)) return false;
            if (*p == '.') {
                int scale = 100000000, n = 0;
                p++;
                for (; isdigit((unsigned char)*p); p++, n++) {
                    if (n == 9) return false;
                    frac += (*p - '0') * scale;
                    scale /= 10;
                }
                if (n == 0) return false;
            }
        }
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return false;
        offset = sign * (oh * 3600 + om * 60);
    }
    if (*p != '\0') return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59) return false;
    if (d > month_days[mo - 1] + (mo == 2 && is_leap(y))) return false;
    *unix_seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    if (nanos) *nanos = frac;
    return true;
}

bool parse_datetime(const char *s, int64_t *unix_seconds)
{
    return parse_datetime_ns(s, unix_seconds, NULL);
}

void format_datetime(int64_t unix_seconds, char *buf, size_t len)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, len, "1970-01-01 00:00:00");
}

bool parse_money(const char *s, int64_t *minor)
{
    const char *p = s;
    int64_t units = 0, frac = 0;
    int nd = 0, nf = 0;
    while (isdigit((unsigned char)*p)) {
        if (units > (INT64_MAX / 100 - 9) / 10) return false;
        units = units * 10 + (*p++ - '0');
        nd++;
    }
    if (nd == 0) return false;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p) && nf < 2) {
            frac = frac * 10 + (*p++ - '0');
            nf++;
        }
        if (nf == 0) return false;
        if (nf == 1) frac *= 10;
    }
    if (*p != '\0') return false;
    *minor = units * 100 + frac;
    return true;
}

void format_money(int64_t minor, char *buf, size_t len)
{
    /* By hand, backwards: snprintf was a tenth of writing an order's answer. */
    char tmp[32];
    size_t n = 0, k = 0;
    uint64_t m = minor < 0 ? -(uint64_t)minor : (uint64_t)minor;
    tmp[n++] = (char)('0' + m % 10);
    tmp[n++] = (char)('0' + m / 10 % 10);
    tmp[n++] = '.';
    m /= 100;
    do {
        tmp[n++] = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (minor < 0) tmp[n++] = '-';
    while (n > 0 && k + 1 < len) buf[k++] = tmp[--n];
    if (len > 0) buf[k] = '\0';
}

bool parse_percent(const char *s, int64_t *nanopct)
{
    const char *p = s;
    int64_t whole = 0, frac = 0;
    int nd = 0, nf = 0;
    while (isdigit((unsigned char)*p)) {
        if (whole > 1000000) return false;
        whole = whole * 10 + (*p++ - '0');
        nd++;
    }
    if (nd == 0) return false;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (nf < 9) {
                frac = frac * 10 + (*p - '0');
                nf++;
            }
            p++;
        }
        if (nf == 0) return false;
    }
    for (int i = nf; i < 9; i++) frac *= 10;
    if (*p == '%') p++;
    if (*p != '\0') return false;
    *nanopct = whole * 1000000000 + frac;
    return true;
}

int64_t apply_percent(int64_t amount, int64_t nanopct)
{
    if (amount <= 0 || nanopct <= 0) return 0;
    const unsigned __int128 den = (unsigned __int128)100 * 1000000000;
    unsigned __int128 num = (unsigned __int128)amount * (unsigned __int128)nanopct;
    return (int64_t)((num + den / 2) / den);
}

bool is_object_id(const char *s)
{
    return tc_valid_id(s, strnlen(s, ID_LEN + 1));
}

uint64_t fnv1a64(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

bool split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(addr, ':');
    char *end;
    if (!colon || colon == addr || (size_t)(colon - addr) >= hostlen) return false;
    if (!isdigit((unsigned char)colon[1])) return false;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535) return false;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = (int)p;
    return true;
}
