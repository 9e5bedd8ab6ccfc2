/*
 * grpc_reflection.h: server reflection (grpc.reflection.v1, v1alpha) and
 * health checks (grpc.health.v1), the services gRPC tools expect beside
 * v3.Simple (grpc_reflection.c).
 */
#ifndef TC_SANDBOX_GRPC_REFLECTION_H
#define TC_SANDBOX_GRPC_REFLECTION_H

#include <stdbool.h>
#include <stddef.h>

#include "grpc_methods.h"

struct reflection;

/* Reads the descriptor set compiled in at build time. NULL with err when
 * it is malformed or memory is short. */
struct reflection *reflection_load(char *err, size_t errlen);
void reflection_free(struct reflection *r);

/* True when name ("v3.Simple") is a service the sandbox offers. */
bool reflection_has_service(const struct reflection *r, const char *name);

/* The handlers (grpc_methods.c's table). */
handler_fn reflection_info, health_check, health_watch;

#endif
