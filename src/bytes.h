/*
 * bytes.h: the byte-level rules the module and tc-sandbox share: UTF-8,
 * ObjectIds, API keys, and wiping secrets. Plain C, no Lua (bytes.c).
 */
#ifndef TC_BYTES_H
#define TC_BYTES_H

#include <stddef.h>

/* Length of the UTF-8 sequence at s (at most n bytes, n > 0), or 0 when s
 * does not start a valid one (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF); the code point goes to *cp. */
size_t tc_utf8_next(const char *s, size_t n, unsigned long *cp);

/* The number of code points of s, or (size_t)-1 when s is not valid UTF-8. */
size_t tc_utf8_len(const char *s, size_t n);

/* The same for a C string (jansson's strings are valid UTF-8). */
size_t tc_utf8_strlen(const char *s);

/* NULL when s is valid UTF-8 without control characters (C0, DEL, C1),
 * else what is wrong with it. */
const char *tc_text_problem(const char *s, size_t n);

/* Replaces every byte of the C string s that is not part of valid UTF-8
 * with '?', in place. */
void tc_utf8_scrub(char *s);

/* An ObjectId: exactly 24 hexadecimal digits, [0-9a-fA-F] (MongoDB's, as
 * every id the service gives is). */
#define TC_ID_LEN 24
int tc_valid_id(const char *s, size_t n);

/* An API key is an opaque token sent in a header: 1 to 256 printable ASCII
 * characters without spaces. NULL when key is one, else what is wrong (the
 * text never quotes the key). */
#define TC_KEY_MAX 256
const char *tc_key_problem(const char *key, size_t n);

/* Overwrites n bytes at p in a way the compiler keeps. */
void tc_wipe(void *p, size_t n);
/* Wipes the C string s and frees it; NULL is fine. */
void tc_wipe_free(char *s);

#endif
