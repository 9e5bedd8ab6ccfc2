/*
 * grpc.h: the tc-simple gRPC listener of tc-sandbox.
 *
 * It serves /v3.Simple/<Method> for the ten catalogue methods, the health
 * service and server reflection, on threads of its own, reading the
 * catalog and live inventory through sandbox.h.
 */
#ifndef TC_SANDBOX_GRPC_H
#define TC_SANDBOX_GRPC_H

#include <stddef.h>

struct sandbox;
struct sandbox_tls;
struct methods;
struct faults;
struct grpc_listener;

/* Binds addr ("127.0.0.1:0" picks a free port), stores the bound port in
 * *port and starts serving the answers of methods (from methods_load(),
 * which the caller checked the catalog with): over TLS with tls (copied),
 * plaintext when tls is NULL. Takes ownership of methods, also on failure.
 * faults (--faults, NULL for none) must outlive the listener. On failure
 * returns NULL with a message in err. */
struct grpc_listener *grpc_listener_start(struct sandbox *sb, struct methods *methods,
                                          struct faults *faults, const char *addr,
                                          const struct sandbox_tls *tls, int *port, char *err,
                                          size_t errlen);

/* Stops accepting calls, cancels the ones in flight, joins the thread and
 * frees everything. NULL is allowed. */
void grpc_listener_stop(struct grpc_listener *l);

#endif
