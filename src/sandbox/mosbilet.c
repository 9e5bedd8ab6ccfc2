/*
 * mosbilet.c: PUT /v2/services/orders/mosbilet/user_data of tc-sandbox
 * (spec §3.10): the visitors' names for venues connected to AIS Mosbilet.
 *
 * The sandbox checks the body and the order and answers 202 with no body,
 * as the service does; it keeps nothing, since no call reads the data back.
 * Allowed only while the order is executed. Every message is of the
 * sandbox's choosing (the service documents none); see docs/sandbox.md.
 */
#include <string.h>

#include "store.h"
#include "util.h"

static const char *const status_names[] = { "executed", "done", "cancelled", "expired" };

/* A required (or, with optional, allowed) non-empty string field. */
static void check_text(const json_t *v, size_t i, const char *key, bool optional,
                       json_t *errors)
{
    if (!v || json_is_null(v)) {
        if (!optional) error_add(errors, "user_data[%zu].%s is required", i, key);
    } else if (!json_is_string(v) || tc_utf8_strlen(json_string_value(v)) == 0 ||
               tc_utf8_strlen(json_string_value(v)) > 256) {
        error_add(errors, "user_data[%zu].%s must be a string of 1 to 256 characters", i, key);
    }
}

static void check_visitors(const json_t *list, json_t *errors)
{
    static const char *const fields[] = { "ticket_id", "user_id", "name", "surname",
                                          "middle_name" };
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        const char *key;
        json_t *v;
        if (!json_is_object(item)) {
            error_add(errors, "user_data[%zu] must be an object", i);
            continue;
        }
        json_object_foreach(item, key, v) {
            bool known = false;
            for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
                known |= strcmp(key, fields[k]) == 0;
            if (!known) error_add(errors, "user_data[%zu].%s is not a visitor field", i, key);
        }
        v = json_object_get(item, "ticket_id");
        if (v && !json_is_null(v) && !(json_is_string(v) && is_object_id(json_string_value(v))))
            error_add(errors, "user_data[%zu].ticket_id must be a ticket id", i);
        check_text(json_object_get(item, "user_id"), i, "user_id", false, errors);
        check_text(json_object_get(item, "name"), i, "name", false, errors);
        check_text(json_object_get(item, "surname"), i, "surname", false, errors);
        check_text(json_object_get(item, "middle_name"), i, "middle_name", true, errors);
    }
}

int store_mosbilet_user_data(struct sandbox *sb, const json_t *body, json_t **out)
{
    json_t *order = json_object_get(body, "order"), *list = json_object_get(body, "user_data");
    json_t *errors = json_array();
    if (!errors) {
        *out = error_body("out of memory");
        return 500;
    }
    if (!order || json_is_null(order))
        error_add(errors, "order is required");
    else if (!json_is_string(order))
        error_add(errors, "order must be an id string");
    if (!list || json_is_null(list))
        error_add(errors, "user_data is required");
    else if (!json_is_array(list) || json_array_size(list) == 0)
        error_add(errors, "user_data must be a non-empty list of visitors");
    else
        check_visitors(list, errors);
    if (json_array_size(errors) > 0) {
        *out = json_pack("{s:o}", "errors", errors);
        return 400;
    }
    json_decref(errors);

    const char *id = json_string_value(order);
    int status = 202;
    *out = NULL;
    pthread_mutex_lock(&sb->lock);
    store_expire_due(sb, now_ms());
    json_t *ix = json_object_get(sb->order_ix, id);
    const struct order *o = ix ? sb->orders[json_integer_value(ix)] : NULL;
    if (!o) {
        status = 400;
        *out = error_body("Order %s not found", id);
    } else if (o->status != ORDER_EXECUTED) {
        status = 400;
        *out = error_body("Not allow to update order in status %s", status_names[o->status]);
    } else {
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item) {
            json_t *t = json_object_get(item, "ticket_id");
            if (!json_is_string(t)) continue;
            long ti = catalog_ticket(sb->cat, json_string_value(t));
            bool held = false;
            for (size_t k = 0; ti >= 0 && k < o->ntickets && !held; k++)
                held = o->tickets[k] == (uint32_t)ti;
            if (!held) {
                status = 400;
                *out = error_body("ticket (id = %s) is not in order %s", json_string_value(t),
                                  o->id);
                break;
            }
        }
    }
    pthread_mutex_unlock(&sb->lock);
    return status;
}
