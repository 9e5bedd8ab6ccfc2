/*
 * order_request.c: reads the body of an order POST or PATCH into a struct
 * change. It checks the shape (types, lengths, allowed keys) and the few
 * rules that need no state (expired_after, settings flags) and lists what
 * is wrong; it takes no lock and never looks at the store, so orders.c
 * runs it before locking.
 */
#include "order_request.h"

#include <string.h>

#include "store.h" /* error_add */

#define MAX_RANDOM 100000

static void check_customer(const json_t *c, json_t *errors)
{
    static const char *const fields[] = { "name", "email", "phone", "lang" };
    const char *key;
    json_t *v;
    if (!json_is_object(c)) {
        error_add(errors, "settings.customer must be an object");
        return;
    }
    json_object_foreach((json_t *)c, key, v) {
        bool known = false;
        for (size_t i = 0; i < 4; i++) known |= strcmp(key, fields[i]) == 0;
        if (!known) {
            error_add(errors, "settings.customer.%s is not a customer field "
                              "(name, email, phone, lang)", key);
        } else if (!json_is_string(v) || tc_utf8_strlen(json_string_value(v)) > 256) {
            error_add(errors, "settings.customer.%s must be a string of at most 256 characters",
                      key);
        } else if (strcmp(key, "lang") == 0 && strcmp(json_string_value(v), "en") != 0 &&
                   strcmp(json_string_value(v), "ru") != 0) {
            error_add(errors, "settings.customer.lang must be \"en\" or \"ru\"");
        } else if (strcmp(key, "email") == 0 && *json_string_value(v) &&
                   !strchr(json_string_value(v), '@')) {
            error_add(errors, "settings.customer.email must be an e-mail address");
        }
    }
}

/* vendor_data: order_id <= 64 characters; raw <= 20 keys of <= 40
 * characters whose values are strings of <= 128 characters, numbers or
 * booleans (spec §8 row 17). */
static void check_vendor_data(const json_t *vd, json_t *errors)
{
    const char *key;
    json_t *v;
    if (!json_is_object(vd)) {
        error_add(errors, "vendor_data must be an object");
        return;
    }
    json_object_foreach((json_t *)vd, key, v) {
        if (strcmp(key, "order_id") == 0) {
            if (!json_is_null(v) &&
                (!json_is_string(v) || tc_utf8_strlen(json_string_value(v)) > 64))
                error_add(errors, "vendor_data.order_id must be a string of at most 64 "
                                  "characters");
        } else if (strcmp(key, "raw") == 0) {
            const char *rk;
            json_t *rv;
            if (!json_is_object(v)) {
                error_add(errors, "vendor_data.raw must be an object");
                continue;
            }
            if (json_object_size(v) > 20)
                error_add(errors, "vendor_data.raw must have at most 20 keys");
            json_object_foreach(v, rk, rv) {
                if (tc_utf8_strlen(rk) > 40)
                    error_add(errors, "vendor_data.raw key '%s' is longer than 40 characters",
                              rk);
                else if (!(json_is_number(rv) || json_is_boolean(rv) ||
                           (json_is_string(rv) && tc_utf8_strlen(json_string_value(rv)) <= 128)))
                    error_add(errors, "vendor_data.raw.%s must be a string of at most 128 "
                                      "characters, a number or a boolean", rk);
            }
        } else {
            error_add(errors, "vendor_data.%s is not allowed: only order_id and raw", key);
        }
    }
}

static void check_string_list(const json_t *v, const char *name, json_t *errors)
{
    size_t i;
    json_t *item;
    if (!json_is_array(v)) {
        error_add(errors, "%s must be a list of strings", name);
        return;
    }
    json_array_foreach(v, i, item) {
        if (!json_is_string(item)) {
            error_add(errors, "%s must be a list of strings", name);
            return;
        }
    }
}

void order_request_read(const json_t *body, bool post, struct change *ch, json_t *errors,
                        json_t *rule_errors)
{
    json_t *v;
    memset(ch, 0, sizeof *ch);
    if (json_object_get(body, "expired_after"))
        error_add(rule_errors, "expired_after is not changable");
    if (post && (v = json_object_get(body, "event")) && !json_is_null(v)) {
        if (!json_is_string(v))
            error_add(errors, "event must be an id string");
        else
            ch->event = json_string_value(v);
    }
    if ((v = json_object_get(body, "tickets"))) {
        check_string_list(v, "tickets", errors);
        ch->tickets = v;
    }
    if ((v = json_object_get(body, "random"))) {
        const char *key;
        json_t *n;
        if (!json_is_object(v)) error_add(errors, "random must be an object {set id: count}");
        json_object_foreach(v, key, n) {
            if (!json_is_integer(n) || json_integer_value(n) < 0 ||
                json_integer_value(n) > MAX_RANDOM)
                error_add(errors, "random.%s must be a whole number from 0 to 100000", key);
        }
        ch->random = v;
    }
    if ((v = json_object_get(body, "all_or_nothing"))) {
        if (!json_is_boolean(v)) error_add(errors, "all_or_nothing must be true or false");
        ch->has_aon = true;
        ch->all_or_nothing = json_is_true(v);
    }
    if ((v = json_object_get(body, "settings"))) {
        json_t *s;
        if (!json_is_object(v)) error_add(errors, "settings must be an object");
        if ((s = json_object_get(v, "customer"))) {
            check_customer(s, errors);
            ch->customer = s;
        }
        if ((s = json_object_get(v, "send_tickets"))) {
            if (!json_is_boolean(s))
                error_add(errors, "settings.send_tickets must be true or false");
            ch->has_send_tickets = true;
            ch->send_tickets = json_is_true(s);
        }
        if ((s = json_object_get(v, "invitation"))) {
            if (!json_is_boolean(s))
                error_add(errors, "settings.invitation must be true or false");
            else if (json_is_true(s))
                error_add(rule_errors, "only org can send invitations");
        }
        if ((s = json_object_get(v, "courier"))) {
            if (!json_is_boolean(s))
                error_add(errors, "settings.courier must be true or false");
            else if (json_is_true(s))
                error_add(rule_errors, "Courier must set only with salespoint");
        }
        if (json_object_get(v, "smart_tickets"))
            error_add(rule_errors, "Kryptonite integrations is disabled");
    }
    if ((v = json_object_get(body, "vendor_data"))) {
        check_vendor_data(v, errors);
        ch->vendor_data = v;
    }
    if ((v = json_object_get(body, "promocodes"))) {
        check_string_list(v, "promocodes", errors);
        ch->promocodes = v;
    }
    if ((v = json_object_get(body, "status"))) {
        if (!json_is_string(v))
            error_add(errors, "status must be a string");
        else
            ch->status = json_string_value(v);
    }
}
