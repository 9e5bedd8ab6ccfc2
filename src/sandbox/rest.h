/*
 * rest.h: the REST listener of tc-sandbox (v2 orders API over
 * libmicrohttpd, one thread polling with epoll).
 */
#ifndef TC_SANDBOX_REST_H
#define TC_SANDBOX_REST_H

#include <stddef.h>

struct sandbox;
struct sandbox_tls;
struct faults;
struct rest;

/* Binds addr ("127.0.0.1:0" picks a free port), stores the bound port in
 * *port and starts serving: HTTPS with tls (which must outlive the
 * listener), plain HTTP when tls is NULL. faults (--faults, NULL for none)
 * must outlive the listener too. On failure returns NULL with a message in
 * err. */
struct rest *rest_start(struct sandbox *sb, struct faults *faults, const char *addr,
                        const struct sandbox_tls *tls, int *port, char *err, size_t errlen);

/* Stops listening, waits for the requests in flight and frees everything.
 * NULL is allowed. */
void rest_stop(struct rest *r);

#endif
