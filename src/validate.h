/*
 * validate.h: checks on request data before anything is sent (validate.c).
 *
 * Shared by order.c and http.c; the byte-level rules are bytes.h's.
 */
#ifndef TC_VALIDATE_H
#define TC_VALIDATE_H

#include "compat.h"

#include <stddef.h>

/* The largest count of tickets we send. */
#define TC_MAX_COUNT 2147483647

/* Reads an integer-valued number in 0..TC_MAX_COUNT at idx; 0 if not one. */
int tc_to_count(lua_State *L, int idx, lua_Integer *out);

/* Pushes nil and an "invalid" error "<what>: <the value at idx> <problem>",
 * the value shown short and printable; returns 2. */
int tc_fail_value(lua_State *L, int idx, const char *what, const char *problem);

/* The id at idx, checked: returns it, or NULL after pushing nil and an
 * "invalid" error naming `what` (the caller returns 2). */
const char *tc_check_id(lua_State *L, int idx, const char *what);

#endif
