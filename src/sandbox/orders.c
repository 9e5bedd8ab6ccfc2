/*
 * orders.c: the REST operations on orders (work in progress).
 */
#include "store.h"

int store_create_order(struct sandbox *sb, const json_t *body, json_t **out)
{
    (void)sb; (void)body;
    *out = error_body("not implemented yet");
    return 501;
}

int store_patch_order(struct sandbox *sb, const char *id, const json_t *body, int delay_ms,
                      json_t **out)
{
    (void)sb; (void)id; (void)body; (void)delay_ms;
    *out = error_body("not implemented yet");
    return 501;
}

int store_get_order(struct sandbox *sb, const char *id, json_t **out)
{
    (void)sb; (void)id;
    *out = error_body("not implemented yet");
    return 501;
}

int store_list_orders(struct sandbox *sb, const struct order_query *q, json_t **out)
{
    (void)sb; (void)q;
    *out = error_body("not implemented yet");
    return 501;
}

int store_check_promocode(struct sandbox *sb, const json_t *body, json_t **out)
{
    (void)sb; (void)body;
    *out = error_body("not implemented yet");
    return 501;
}
