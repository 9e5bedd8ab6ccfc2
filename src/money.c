/* money.c: placeholder until its implementation lands; registers nothing. */
#include "private.h"

void tc_money_register(lua_State *L)
{
    (void)L;
}
