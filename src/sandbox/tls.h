/*
 * tls.h: the certificate and key of --tls-cert / --tls-key, which make both
 * listeners of tc-sandbox (REST and gRPC) speak TLS.
 */
#ifndef TC_SANDBOX_TLS_H
#define TC_SANDBOX_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* PEM text, NUL-terminated, as read from the files. */
struct sandbox_tls {
    char *cert; /* the server's certificate first, then any intermediates */
    char *key;  /* its private key, not encrypted */
};

/* Reads both files and checks that they hold PEM of the right kind. On
 * failure returns false with a message naming the option and the file in
 * err, and tls holds nothing. */
bool tls_load(struct sandbox_tls *tls, const char *cert_path, const char *key_path, char *err,
              size_t errlen);

/* Wipes the key and frees both. */
void tls_free(struct sandbox_tls *tls);

#endif
