/*
 * money.c: exact money, core.money = { parse, format, add }.
 *
 * The service writes money as decimal strings with two fraction digits
 * ("5600.00"). We keep it as integer minor units (560000) and never go
 * through floating point, so sums are exact: 6160.00 + 1089.00 is 7249.00,
 * not 7248.999... The C functions (money.h) are shared with order.c, which
 * checks the totals of an order.
 */
#include "private.h"
#include "money.h"

#include <stdio.h>

int tc_money_parse(const char *s, size_t len, int strict, int64_t *out)
{
    size_t i = 0, digits = 0, fraction = 0;
    int negative = 0;
    int64_t units = 0;

    if (len > 0 && s[0] == '-') {
        negative = 1;
        i++;
    }
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        /* Stop well before overflow; the range check below is exact. */
        if (units > TC_MONEY_MAX / 10)
            return -1;
        units = units * 10 + (s[i] - '0');
    }
    if (digits == 0)
        return -1;
    units *= 100;
    if (i < len && s[i] == '.') {
        i++;
        for (int scale = 10; i < len && s[i] >= '0' && s[i] <= '9'; i++, fraction++) {
            if (fraction == 2)
                return -1; /* a third fraction digit: not money */
            units += (s[i] - '0') * scale;
            scale /= 10;
        }
        if (fraction == 0)
            return -1; /* "5." */
    }
    if (i != len)
        return -1; /* trailing bytes, including an embedded NUL */
    if (strict && fraction != 2)
        return -1;
    if (units > TC_MONEY_MAX)
        return -1;
    *out = negative ? -units : units;
    return 0;
}

void tc_money_format(int64_t amount, char *buf)
{
    /* |amount| <= TC_MONEY_MAX, so negating cannot overflow. */
    int64_t magnitude = amount < 0 ? -amount : amount;

    snprintf(buf, TC_MONEY_BUFSIZE, "%s%lld.%02d", amount < 0 ? "-" : "",
             (long long)(magnitude / 100), (int)(magnitude % 100));
}

int tc_money_add(int64_t a, int64_t b, int64_t *out)
{
    /* Both are within +-2^53, so the C sum cannot overflow int64. */
    int64_t sum = a + b;

    if (sum > TC_MONEY_MAX || sum < -TC_MONEY_MAX)
        return -1;
    *out = sum;
    return 0;
}

/*
 * Reads an amount in minor units at idx: an integer, or a float with an
 * integral value (LuaJIT has only floats). Returns 0 when it is something
 * else or out of range.
 */
static int to_minor(lua_State *L, int idx, int64_t *out)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    if (lua_isinteger(L, idx)) {
        lua_Integer v = lua_tointeger(L, idx);
        if (v > TC_MONEY_MAX || v < -TC_MONEY_MAX)
            return 0;
        *out = (int64_t)v;
        return 1;
    }
    lua_Number d = lua_tonumber(L, idx);
    /* The range test is false for NaN; inside the range the cast is defined. */
    if (!(d <= (lua_Number)TC_MONEY_MAX && d >= -(lua_Number)TC_MONEY_MAX))
        return 0;
    if ((lua_Number)(int64_t)d != d)
        return 0; /* a fraction */
    *out = (int64_t)d;
    return 1;
}

/***
 * Exact money, `tc.money` (the C core's `core.money`), made here.
 * @module ticketscloud
 */

/***
 * The largest amount in minor units, 2^53 - 1: every amount and sum is within
 * `-money.MAX .. money.MAX`, where LuaJIT's numbers are exact too.
 * @field money.MAX
 */

/***
 * Reads a money amount: the service's decimal string to integer minor units (kopecks),
 * without floating point. Digits with at most two decimals, an optional leading `-`; nothing
 * else (no spaces, no `+`, no exponent).
 * @function money.parse
 * @tparam string text the amount, `"5600.00"`, `"5600.5"` or `"5600"`
 * @treturn integer the amount in minor units
 * @return[2] nil
 * @treturn[2] Error err, kind `"invalid"`, for text that is not an amount or is out of range
 * @raise when `text` is not a string
 * @usage
 * tc.money.parse("5600.00")   --> 560000
 * tc.money.parse("5600.5")    --> 560050
 * tc.money.parse("1.234")     --> nil, err (kind "invalid")
 */
/* money.parse("5600.00") -> 560000 | nil, err */
int core_money_parse(lua_State *L)
{
    size_t len;
    const char *s;
    int64_t amount;

    luaL_checktype(L, 1, LUA_TSTRING);
    s = lua_tolstring(L, 1, &len);
    if (tc_money_parse(s, len, 0, &amount) != 0)
        return tc_fail(L, TC_EINVALID, -1,
                       "not a money amount (digits with at most two decimals expected)");
    lua_pushinteger(L, (lua_Integer)amount);
    return 1;
}

/***
 * Writes an amount in minor units as the service does, with two decimals.
 * @function money.format
 * @tparam integer amount minor units, within `money.MAX` (a float with an integral value is
 *   taken too: LuaJIT has only floats)
 * @treturn string the amount, `"5600.00"`
 * @raise when `amount` is not an integral number within `money.MAX`
 * @usage
 * tc.money.format(560000)   --> "5600.00"
 * tc.money.format(-5)       --> "-0.05"
 * tc.money.format(rule.simple.price)   -- catalogue prices are minor units too
 */
/* money.format(560000) -> "5600.00" */
int core_money_format(lua_State *L)
{
    char buf[TC_MONEY_BUFSIZE];
    int64_t amount;

    if (!to_minor(L, 1, &amount))
        return luaL_argerror(L, 1, "integer minor units expected");
    tc_money_format(amount, buf);
    lua_pushstring(L, buf);
    return 1;
}

/***
 * Adds amounts exactly. Each argument is minor units or a money string (as
 * @{money.parse} reads it); the sum is **minor units**, an integer, not a string: format it
 * with @{money.format}. No arguments add up to 0.
 * @function money.add
 * @param ... amounts: integers of minor units or money strings
 * @treturn integer the sum in minor units
 * @return[2] nil
 * @treturn[2] Error err, kind `"invalid"`: a string that is not an amount
 *   (`argument #2 is not a money amount`) or a sum out of range
 * @raise when an argument is neither a string nor an integral number within `money.MAX`
 * @usage
 * local sum = tc.money.add("6160.00", "1089.00")   --> 724900
 * print(tc.money.format(sum))                      --> 7249.00
 * tc.money.add(100, "0.50")                        --> 150
 */
/* money.add(a, b, ...) -> sum in minor units | nil, err. Arguments are
 * minor units or money strings; no arguments add up to 0. */
int core_money_add(lua_State *L)
{
    int n = lua_gettop(L);
    int64_t sum = 0, amount;

    for (int i = 1; i <= n; i++) {
        if (lua_type(L, i) == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, i, &len);
            if (tc_money_parse(s, len, 0, &amount) != 0)
                return tc_fail(L, TC_EINVALID, -1, "argument #%d is not a money amount", i);
        } else if (!to_minor(L, i, &amount)) {
            return luaL_argerror(L, i, "integer minor units or a money string expected");
        }
        if (tc_money_add(sum, amount, &sum) != 0)
            return tc_fail(L, TC_EINVALID, -1, "money sum out of range");
    }
    lua_pushinteger(L, (lua_Integer)sum);
    return 1;
}
