/*
 * validate.h: checks on request data before anything is sent (validate.c).
 *
 * Shared by order.c, whose register function also registers these checks.
 */
#ifndef TC_VALIDATE_H
#define TC_VALIDATE_H

#include "compat.h"

#include <stddef.h>

/* An ObjectId as the service documents it: exactly 24 of [A-Za-z0-9]. */
int tc_valid_id(const char *s, size_t len);

/* NULL when s is valid UTF-8 without control characters, else what is wrong. */
const char *tc_text_problem(const char *s, size_t len);

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

/* core.check_id, check_text, check_count, check_json. */
void tc_validate_register(lua_State *L);

#endif
