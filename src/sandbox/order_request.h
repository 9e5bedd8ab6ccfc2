/*
 * order_request.h: the body of an order POST or PATCH, read and checked
 * for shape (order_request.c) before the store is locked.
 */
#ifndef TC_SANDBOX_ORDER_REQUEST_H
#define TC_SANDBOX_ORDER_REQUEST_H

#include <jansson.h>
#include <stdbool.h>

/* A change request (POST or PATCH body) after the shape checks. The
 * pointers borrow from the body. */
struct change {
    const char *event;                /* POST only */
    const json_t *tickets, *random;   /* array of strings / object of counts */
    bool all_or_nothing, has_aon;
    const json_t *customer;           /* settings.customer */
    bool has_send_tickets, send_tickets;
    const json_t *vendor_data;
    const json_t *promocodes;         /* array of strings */
    const char *status;
};

/* Fills ch from body (`event` is read only when post); shape errors go to
 * errors, business rules that need no state (settings flags,
 * expired_after) to rule_errors, both as messages for error_add(). */
void order_request_read(const json_t *body, bool post, struct change *ch, json_t *errors,
                        json_t *rule_errors);

#endif
