/*
 * order.c: the desired state of an order, and the checks on the answer.
 *
 * Every PATCH of an order states its whole desired contents (spec §5): to add
 * one seated ticket you re-send every ticket id you hold, and to add one
 * unseated ticket you re-send the count of every set you hold, seated sets
 * included (order example, steps 3a and 3b). These functions compute such
 * bodies from the order's tickets as the server last described them, and
 * check the server's answer: that every ticket asked for is held (without
 * all_or_nothing the service skips what it cannot reserve, silently) and
 * that the money adds up (spec §7.6, relations 1-8). They are pure functions
 * of Lua tables, without I/O, so any transport can use them.
 *
 *   core.order_held(tickets)                   -> ids, counts
 *   core.order_tickets_body(tickets, add, remove) -> { id, ... } | nil, err
 *   core.order_random_body(tickets, change, mode) -> { [set] = n, ... }
 *   core.order_verify(tickets, want)           -> true | nil, err
 *   core.order_check_money(data, refs)         -> true | nil, err
 *
 * `tickets` is the order's `tickets` array as decoded from JSON. A malformed
 * order from the server is an "api" error; a malformed request from the
 * caller is "invalid"; wrong argument types raise.
 */
#include "private.h"
#include "money.h"
#include "bytes.h"
#include "validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_MESSAGES 20

static const char *const AMOUNTS[] = { "price", "discount", "nominal", "extra", "full" };
enum { PRICE, DISCOUNT, NOMINAL, EXTRA, FULL, N_AMOUNTS };

/*
 * Reads the held tickets into two new tables pushed on the stack: the list of
 * ids, in the server's order, and the count per set. Returns 0, or pushes
 * nil and an "api" error and returns 2 (nothing else is left pushed).
 */
static int push_held(lua_State *L, int tickets)
{
    tickets = lua_absindex(L, tickets);
    if (!lua_istable(L, tickets))
        return tc_fail(L, TC_EAPI, -1, "the order has no tickets list");
    int n = (int)lua_rawlen(L, tickets);
    lua_createtable(L, n, 0); /* ids */
    lua_newtable(L);          /* ids, counts */
    for (int i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, tickets, i); /* ids, counts, ticket */
        if (!lua_istable(L, -1)) {
            lua_pop(L, 3);
            return tc_fail(L, TC_EAPI, -1, "the order's tickets[%d] is not an object", i);
        }
        lua_getfield(L, -1, "id"); /* ids, counts, ticket, id */
        const char *id = lua_tolstring(L, -1, &len);
        if (lua_type(L, -1) != LUA_TSTRING || !tc_valid_id(id, len)) {
            lua_pop(L, 4);
            return tc_fail(L, TC_EAPI, -1, "the order's tickets[%d] has no valid id", i);
        }
        lua_rawseti(L, -4, i);      /* ids, counts, ticket */
        lua_getfield(L, -1, "set"); /* ids, counts, ticket, set */
        const char *set = lua_tolstring(L, -1, &len);
        if (lua_type(L, -1) != LUA_TSTRING || !tc_valid_id(set, len)) {
            lua_pop(L, 4);
            return tc_fail(L, TC_EAPI, -1, "the order's tickets[%d] has no valid set", i);
        }
        lua_pushvalue(L, -1);
        lua_rawget(L, -4); /* ids, counts, ticket, set, count */
        lua_Integer count = lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_pushinteger(L, count + 1);
        lua_rawset(L, -4); /* ids, counts, ticket */
        lua_pop(L, 1);
    }
    return 0;
}

/* core.order_held(tickets) -> ids, counts | nil, err */
int core_order_held(lua_State *L)
{
    lua_settop(L, 1);
    push_held(L, 1);
    return 2; /* ids, counts  or  nil, err */
}

/* An optional list argument: nil or a table, else a type mistake. */
static void opt_list(lua_State *L, int idx)
{
    if (!lua_isnoneornil(L, idx))
        luaL_checktype(L, idx, LUA_TTABLE);
}

/*
 * Checks that the table at idx is a list (keys 1..n, nothing else) whose
 * every element is an ObjectId; the message names it as name[i]. Returns 0,
 * or pushes nil, err and returns 2.
 */
static int check_id_list(lua_State *L, int idx, const char *name)
{
    char what[64];
    int n, keys = 0;

    if (lua_isnoneornil(L, idx))
        return 0;
    n = (int)lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        keys++;
    }
    if (keys != n)
        return tc_fail(L, TC_EINVALID, -1, "%s: a list of ids expected", name);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        snprintf(what, sizeof what, "%s[%d]", name, i);
        if (!tc_check_id(L, -1, what)) {
            lua_remove(L, -3); /* the element, under nil, err */
            return 2;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* core.order_tickets_body(tickets, add, remove) -> ids | nil, err
 * The ids held, in order, without those in remove, then those of add that
 * are not held yet, in their order; no id twice. add and remove, when
 * given, must be non-empty lists of ids: anything else would send a body
 * that changes nothing. */
int core_order_tickets_body(lua_State *L)
{
    opt_list(L, 2);
    opt_list(L, 3);
    lua_settop(L, 3);
    if (check_id_list(L, 2, "tickets") || check_id_list(L, 3, "tickets"))
        return 2;
    for (int i = 2; i <= 3; i++)
        if (!lua_isnil(L, i) && lua_rawlen(L, i) == 0)
            return tc_fail(L, TC_EINVALID, -1, "tickets: no ticket given");
    if (push_held(L, 1))
        return 2;
    lua_pop(L, 1); /* tickets, add, remove, held */

    lua_newtable(L); /* 5: ids already in the result (or removed) */
    if (!lua_isnil(L, 3)) {
        int n = (int)lua_rawlen(L, 3);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, 3, i);
            lua_pushboolean(L, 1);
            lua_rawset(L, 5);
        }
    }
    lua_newtable(L); /* 6: the result */
    int out = 0;
    for (int from = 4; from >= 2; from -= 2) { /* held first, then add */
        if (lua_isnil(L, from))
            continue;
        int n = (int)lua_rawlen(L, from);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, from, i); /* ..., id */
            lua_pushvalue(L, -1);
            lua_rawget(L, 5); /* ..., id, seen */
            int seen = lua_toboolean(L, -1);
            lua_pop(L, 1);
            if (seen) {
                lua_pop(L, 1);
                continue;
            }
            lua_pushvalue(L, -1);
            lua_pushboolean(L, 1);
            lua_rawset(L, 5);
            lua_rawseti(L, 6, ++out);
        }
    }
    return 1;
}

/* core.order_random_body(tickets, change, mode) -> counts | nil, err
 * The count held per set (seated sets too), then with mode "add" each count
 * of change added to it, with mode "set" replaced by it (0 allowed). */
int core_order_random_body(lua_State *L)
{
    static const char *const modes[] = { "add", "set", NULL };
    char what[64];

    luaL_checktype(L, 2, LUA_TTABLE);
    int set_mode = luaL_checkoption(L, 3, NULL, modes);
    lua_settop(L, 3);
    if (push_held(L, 1))
        return 2;
    lua_remove(L, 4); /* tickets, change, mode, counts */

    lua_pushnil(L);
    while (lua_next(L, 2)) {
        /* ..., counts, set, n */
        if (!tc_check_id(L, -2, "random: the set id"))
            return 2;
        snprintf(what, sizeof what, "random[%s]", lua_tostring(L, -2)); /* an id: a string */
        lua_Integer n, held;
        if (!tc_to_count(L, -1, &n) || (!set_mode && n == 0))
            return tc_fail(L, TC_EINVALID, -1, "%s: not a %s integer", what,
                           set_mode ? "non-negative" : "positive");
        lua_pushvalue(L, -2);
        lua_rawget(L, 4);
        held = lua_tointeger(L, -1);
        lua_pop(L, 2); /* ..., counts, set */
        if (!set_mode)
            n += held;
        if (n > TC_MAX_COUNT)
            return tc_fail(L, TC_EINVALID, -1, "%s: count too large", what);
        lua_pushvalue(L, -1);
        lua_pushinteger(L, n);
        lua_rawset(L, 4);
    }
    return 1;
}

/* Appends a formatted message to the list at idx, up to MAX_MESSAGES. */
static void note(lua_State *L, int list, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    int n = (int)lua_rawlen(L, list);

    if (n > MAX_MESSAGES)
        return;
    if (n == MAX_MESSAGES) {
        lua_pushliteral(L, "... and more");
        lua_rawseti(L, list, n + 1);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    lua_pushstring(L, message);
    lua_rawseti(L, list, n + 1);
}

/* Appends the value on top of the stack to the list at idx; pops it. */
static void append(lua_State *L, int list)
{
    lua_rawseti(L, list, (int)lua_rawlen(L, list) + 1);
}

/*
 * core.order_verify(tickets, want) -> true | nil, err
 *
 * want = { tickets = { id, ... },     -- must be held
 *          released = { id, ... },    -- must not be held
 *          counts = { [set] = n } }   -- exactly n held per set (sets left
 *                                        out must hold none)
 * err (kind "api") names every difference in `messages`, and lists them in
 * err.missing (ids not held), err.unreleased (ids still held) and err.sets
 * ({ [set] = { wanted = n, held = m } }). A want whose lists are not ids, or
 * whose counts are not ids mapped to counts, is an "invalid" error.
 */
/* Drops the k values under the nil, err on top of the stack; returns 2. */
static int under_error(lua_State *L, int k)
{
    while (k-- > 0)
        lua_remove(L, -3);
    return 2;
}

/*
 * Checks want (argument 2 of order_verify) before anything is compared: the
 * lists hold ids, counts maps ids to counts. Returns 0, or pushes nil and an
 * "invalid" error and returns 2.
 */
static int check_want(lua_State *L)
{
    static const char *const lists[] = { "tickets", "released" };
    char what[64];
    lua_Integer n;

    for (int k = 0; k < 2; k++) {
        lua_getfield(L, 2, lists[k]); /* list */
        if (!lua_isnil(L, -1) && !lua_istable(L, -1)) {
            lua_pop(L, 1);
            return tc_fail(L, TC_EINVALID, -1, "want.%s: not a list", lists[k]);
        }
        if (check_id_list(L, lua_gettop(L), lists[k]))
            return under_error(L, 1);
        lua_pop(L, 1);
    }
    lua_getfield(L, 2, "counts"); /* counts */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return tc_fail(L, TC_EINVALID, -1, "want.counts: not a table");
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) { /* counts, set, n */
        if (!tc_check_id(L, -2, "counts: the set id"))
            return under_error(L, 3);
        snprintf(what, sizeof what, "counts[%s]", lua_tostring(L, -2)); /* an id: a string */
        if (!tc_to_count(L, -1, &n)) {
            tc_fail_value(L, -1, what, "is not a non-negative integer");
            return under_error(L, 3);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

int core_order_verify(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    if (check_want(L))
        return 2;
    if (push_held(L, 1))
        return 2;
    /* 1 tickets, 2 want, 3 ids, 4 counts */
    lua_newtable(L); /* 5: held id -> true */
    int n = (int)lua_rawlen(L, 3);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 3, i);
        lua_pushboolean(L, 1);
        lua_rawset(L, 5);
    }
    lua_newtable(L); /* 6: messages */
    lua_newtable(L); /* 7: missing */
    lua_newtable(L); /* 8: unreleased */
    lua_newtable(L); /* 9: sets */
    int differences = 0;

    for (int pass = 0; pass < 2; pass++) {
        lua_getfield(L, 2, pass == 0 ? "tickets" : "released"); /* 10 */
        if (lua_istable(L, 10)) {
            n = (int)lua_rawlen(L, 10);
            for (int i = 1; i <= n; i++) {
                lua_rawgeti(L, 10, i);
                lua_pushvalue(L, -1);
                lua_rawget(L, 5);
                int held = lua_toboolean(L, -1);
                lua_pop(L, 1); /* ..., id */
                if (held == (pass == 0)) {
                    lua_pop(L, 1);
                    continue;
                }
                differences++;
                note(L, 6, pass == 0 ? "ticket %s was requested but is not held"
                                     : "ticket %s should be released but is still held",
                     lua_tostring(L, -1));
                append(L, pass == 0 ? 7 : 8);
            }
        }
        lua_pop(L, 1);
    }

    lua_getfield(L, 2, "counts"); /* 10 */
    if (lua_istable(L, 10)) {
        /* Every set wanted, then every set held but not wanted. */
        for (int pass = 0; pass < 2; pass++) {
            int from = pass == 0 ? 10 : 4;
            lua_pushnil(L);
            while (lua_next(L, from)) {
                /* ..., set, n */
                lua_Integer wanted, held;
                if (pass == 0) {
                    wanted = lua_tointeger(L, -1);
                    lua_pushvalue(L, -2);
                    lua_rawget(L, 4);
                    held = lua_tointeger(L, -1);
                } else {
                    held = lua_tointeger(L, -1);
                    lua_pushvalue(L, -2);
                    lua_rawget(L, 10);
                    if (!lua_isnil(L, -1)) { /* seen in the first pass */
                        lua_pop(L, 2);
                        continue;
                    }
                    wanted = 0;
                }
                lua_pop(L, 2); /* ..., set */
                if (wanted == held)
                    continue;
                differences++;
                note(L, 6, "set %s: %d tickets held, %d requested", lua_tostring(L, -1),
                     (int)held, (int)wanted);
                lua_pushvalue(L, -1);
                lua_createtable(L, 0, 2);
                lua_pushinteger(L, wanted);
                lua_setfield(L, -2, "wanted");
                lua_pushinteger(L, held);
                lua_setfield(L, -2, "held");
                lua_rawset(L, 9);
            }
        }
    }
    lua_pop(L, 1);

    if (differences == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);                      /* 10 */
    tc_push_error(L, TC_EAPI, -1, NULL); /* 11 */
    lua_pushvalue(L, 6);
    lua_setfield(L, 11, "messages");
    lua_pushvalue(L, 7);
    lua_setfield(L, 11, "missing");
    lua_pushvalue(L, 8);
    lua_setfield(L, 11, "unreleased");
    lua_pushvalue(L, 9);
    lua_setfield(L, 11, "sets");
    return 2;
}

/*
 * Reads the money string t[key] strictly ("0.00": two decimals, spec §7.6
 * relation 8). Returns 1 and stores it, or notes a message and returns 0.
 */
static int get_money(lua_State *L, int t, const char *key, int msgs, const char *where,
                     int64_t *out)
{
    size_t len;
    int ok = 0;

    lua_getfield(L, t, key);
    if (lua_type(L, -1) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, -1, &len);
        ok = tc_money_parse(s, len, 1, out) == 0;
    }
    if (!ok)
        note(L, msgs, "%s.%s is not a money string with two decimals", where, key);
    lua_pop(L, 1);
    return ok;
}

/* Reads the five amounts of t; returns 1 when all are well-formed. */
static int get_amounts(lua_State *L, int t, int msgs, const char *where, int64_t a[N_AMOUNTS],
                       int count)
{
    int ok = 1;

    for (int k = 0; k < count; k++)
        ok &= get_money(L, t, AMOUNTS[k], msgs, where, &a[k]);
    return ok;
}

/* Notes "where: a = b op c" when it does not hold (sign: +1 or -1). */
static void relation(lua_State *L, int msgs, const char *where, int64_t a[N_AMOUNTS], int lhs,
                     int b, int sign, int c)
{
    char x[TC_MONEY_BUFSIZE], y[TC_MONEY_BUFSIZE], z[TC_MONEY_BUFSIZE];

    if (a[lhs] == a[b] + sign * a[c])
        return;
    tc_money_format(a[lhs], x);
    tc_money_format(a[b], y);
    tc_money_format(a[c], z);
    note(L, msgs, "%s: %s %s is not %s %s %c %s %s", where, AMOUNTS[lhs], x, AMOUNTS[b], y,
         sign > 0 ? '+' : '-', AMOUNTS[c], z);
}

/* Compares amount to the money string tab[set][key] when that entry
 * exists; `what` names the table for the message. */
static void same_as(lua_State *L, int tab, const char *set, const char *key, int64_t amount,
                    int msgs, const char *where, const char *what, int required)
{
    int64_t other;
    char x[TC_MONEY_BUFSIZE], y[TC_MONEY_BUFSIZE];

    if (tab == 0)
        return;
    lua_getfield(L, tab, set);
    if (!lua_istable(L, -1)) {
        if (required)
            note(L, msgs, "%s has no entry for set %s", what, set);
        lua_pop(L, 1);
        return;
    }
    char entry[96];
    snprintf(entry, sizeof entry, "%s[%s]", what, set);
    if (get_money(L, lua_gettop(L), key, msgs, entry, &other) && other != amount) {
        tc_money_format(amount, x);
        tc_money_format(other, y);
        note(L, msgs, "%s: %s %s differs from %s.%s %s", where, key, x, entry, key, y);
    }
    lua_pop(L, 1);
}

/* Pushes t[key] when it is a table (returning its index), else returns 0
 * and pushes nothing. */
static int sub_table(lua_State *L, int t, const char *key)
{
    if (t == 0 || !lua_istable(L, t))
        return 0;
    lua_getfield(L, t, key);
    if (lua_istable(L, -1))
        return lua_gettop(L);
    lua_pop(L, 1);
    return 0;
}

/*
 * core.order_check_money(data, refs) -> true | nil, err
 *
 * The exact relations of spec §7.6 on an order (`data`) and its `refs`:
 * 1 nominal = price - discount and 2 full = nominal + extra per ticket;
 * 3 values.X = sum of tickets[].X; 4 the same two relations on values;
 * 5 nominal = price - discount per sets_values entry; 6 a ticket's price is
 * its set's price in refs.sets and in sets_values; 7 its discount is its
 * set's discount in sets_values; 8 every amount has two decimals.
 */
int core_order_check_money(lua_State *L)
{
    char where[64];
    int64_t a[N_AMOUNTS], sum[N_AMOUNTS] = { 0 }, total[N_AMOUNTS];
    int sums_ok = 1;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    lua_newtable(L); /* 3: messages */
    int msgs = 3;
    int values = sub_table(L, 1, "values");         /* 4 */
    int sets_values = sub_table(L, values, "sets_values");
    int refs = lua_istable(L, 2) ? 2 : 0;
    int ref_sets = sub_table(L, refs, "sets");
    int tickets = sub_table(L, 1, "tickets");

    if (!values)
        note(L, msgs, "the order has no values");
    if (values && !sets_values)
        note(L, msgs, "the order's values have no sets_values");
    if (!tickets)
        note(L, msgs, "the order has no tickets list");

    int n = tickets ? (int)lua_rawlen(L, tickets) : 0;
    for (int i = 1; i <= n; i++) {
        snprintf(where, sizeof where, "tickets[%d]", i);
        lua_rawgeti(L, tickets, i);
        int t = lua_gettop(L);
        if (!lua_istable(L, t)) {
            note(L, msgs, "%s is not an object", where);
            sums_ok = 0;
            lua_pop(L, 1);
            continue;
        }
        if (!get_amounts(L, t, msgs, where, a, N_AMOUNTS)) {
            sums_ok = 0;
            lua_pop(L, 1);
            continue;
        }
        relation(L, msgs, where, a, NOMINAL, PRICE, -1, DISCOUNT);
        relation(L, msgs, where, a, FULL, NOMINAL, +1, EXTRA);
        for (int k = 0; k < N_AMOUNTS; k++) {
            if (tc_money_add(sum[k], a[k], &sum[k]) != 0) {
                note(L, msgs, "the sum of tickets[].%s is out of range", AMOUNTS[k]);
                sums_ok = 0;
            }
        }
        lua_getfield(L, t, "set");
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *set = lua_tostring(L, -1);
            same_as(L, ref_sets, set, "price", a[PRICE], msgs, where, "refs.sets", 0);
            same_as(L, sets_values, set, "price", a[PRICE], msgs, where, "values.sets_values", 1);
            same_as(L, sets_values, set, "discount", a[DISCOUNT], msgs, where,
                    "values.sets_values", 1);
        } else {
            note(L, msgs, "%s has no set", where);
        }
        lua_pop(L, 2);
    }

    if (values && get_amounts(L, values, msgs, "values", total, N_AMOUNTS)) {
        relation(L, msgs, "values", total, NOMINAL, PRICE, -1, DISCOUNT);
        relation(L, msgs, "values", total, FULL, NOMINAL, +1, EXTRA);
        for (int k = 0; sums_ok && tickets && k < N_AMOUNTS; k++) {
            if (total[k] != sum[k]) {
                char x[TC_MONEY_BUFSIZE], y[TC_MONEY_BUFSIZE];
                tc_money_format(total[k], x);
                tc_money_format(sum[k], y);
                note(L, msgs, "values.%s %s is not the sum of the tickets' %s, %s", AMOUNTS[k],
                     x, AMOUNTS[k], y);
            }
        }
    }

    if (sets_values) {
        lua_pushnil(L);
        while (lua_next(L, sets_values)) {
            /* ..., set, entry */
            if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
                snprintf(where, sizeof where, "values.sets_values[%s]", lua_tostring(L, -2));
                if (get_amounts(L, lua_gettop(L), msgs, where, a, NOMINAL + 1))
                    relation(L, msgs, where, a, NOMINAL, PRICE, -1, DISCOUNT);
            } else {
                note(L, msgs, "values.sets_values has an entry that is not an object");
            }
            lua_pop(L, 1);
        }
    }

    if (lua_rawlen(L, msgs) == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    tc_push_error(L, TC_EAPI, -1, NULL);
    lua_pushvalue(L, msgs);
    lua_setfield(L, -2, "messages");
    return 2;
}
