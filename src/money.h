/*
 * money.h: exact money for the files of the C core (money.c).
 *
 * Amounts are integer minor units (kopecks): "5600.00" is 560000. The range
 * is limited to what a double holds exactly, so that Lua 5.4 (64-bit
 * integers) and LuaJIT (doubles) see the same values.
 */
#ifndef TC_MONEY_H
#define TC_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* 2^53 - 1 minor units: about 90 trillion in major units. */
#define TC_MONEY_MAX INT64_C(9007199254740991)

/* Room for the longest formatted amount, "-90071992547409.91" and its NUL. */
#define TC_MONEY_BUFSIZE 32

/*
 * Parses a decimal amount: an optional '-', one or more digits, then
 * optionally '.' and one or two digits ("5600", "5600.5", "-0.25").
 * With strict set, exactly two fraction digits are required, the form the
 * service always uses ("5600.00"). Returns 0 and stores the amount, or -1
 * for anything else (spaces, '+', exponents, out of range).
 */
int tc_money_parse(const char *s, size_t len, int strict, int64_t *out);

/* Writes "5600.00" for 560000 into buf (TC_MONEY_BUFSIZE bytes). */
void tc_money_format(int64_t amount, char *buf);

/* Stores a + b and returns 0, or returns -1 when the sum leaves the range. */
int tc_money_add(int64_t a, int64_t b, int64_t *out);

#endif
