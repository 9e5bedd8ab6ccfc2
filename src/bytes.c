/*
 * bytes.c: the byte-level rules the module and tc-sandbox share (bytes.h).
 * Every check of UTF-8, ids and keys in either program calls these.
 */
#include "bytes.h"

#include <stdlib.h>
#include <string.h>

size_t tc_utf8_next(const char *s, size_t n, unsigned long *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned long c = p[0], min;
    size_t len;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        len = 2, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

size_t tc_utf8_len(const char *s, size_t n)
{
    size_t i = 0, count = 0;
    unsigned long cp;

    while (i < n) {
        if ((unsigned char)s[i] < 0x80) { /* ASCII: most of what we check */
            i++, count++;
            continue;
        }
        size_t len = tc_utf8_next(s + i, n - i, &cp);
        if (len == 0)
            return (size_t)-1;
        i += len;
        count++;
    }
    return count;
}

size_t tc_utf8_strlen(const char *s)
{
    return tc_utf8_len(s, strlen(s));
}

const char *tc_text_problem(const char *s, size_t n)
{
    size_t i = 0;
    unsigned long cp;

    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F) { /* printable ASCII: most of what we check */
            i++;
            continue;
        }
        size_t len = tc_utf8_next(s + i, n - i, &cp);
        if (len == 0)
            return "not valid UTF-8";
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return "contains a control character";
        i += len;
    }
    return NULL;
}

void tc_utf8_scrub(char *s)
{
    size_t n = strlen(s), i = 0;
    unsigned long cp;

    while (i < n) {
        size_t len = tc_utf8_next(s + i, n - i, &cp);
        if (len == 0) {
            s[i++] = '?';
        } else {
            i += len;
        }
    }
}

int tc_valid_id(const char *s, size_t n)
{
    if (n != TC_ID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

const char *tc_key_problem(const char *key, size_t n)
{
    if (n == 0 || n > TC_KEY_MAX)
        return "must be 1 to 256 printable characters without spaces";
    for (size_t i = 0; i < n; i++)
        if (key[i] <= 0x20 || key[i] >= 0x7F)
            return "must be 1 to 256 printable characters without spaces";
    return NULL;
}

void tc_wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

void tc_wipe_free(char *s)
{
    if (s) {
        tc_wipe(s, strlen(s));
        free(s);
    }
}
