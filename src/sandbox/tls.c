/*
 * tls.c: reads the certificate and key of --tls-cert / --tls-key once, for
 * both listeners. libmicrohttpd (GnuTLS) and gRPC (OpenSSL) take the PEM
 * text from memory and parse it themselves; here the files are only read
 * and checked to hold PEM of the right kind, so that a swapped or wrong
 * file gets a message naming it instead of a failed handshake later.
 */
#include "tls.h"
#include "bytes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Far more than any certificate chain or key. */
#define MAX_PEM (1024 * 1024)

/* The whole file as a NUL-terminated string, or NULL with a message. */
static char *read_pem(const char *option, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", option, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_PEM + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        fclose(f);
        return NULL;
    }
    size_t len = fread(buf, 1, MAX_PEM + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || len > MAX_PEM) {
        snprintf(err, errlen, "%s %s: %s", option, path,
                 failed ? "cannot read it" : "larger than 1 MiB");
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* True when pem has a "-----BEGIN <...kind>-----" line. */
static bool has_block(const char *pem, const char *kind)
{
    const char *p = pem;
    while ((p = strstr(p, "-----BEGIN ")) != NULL) {
        const char *end = strstr(p + 11, "-----");
        size_t klen = strlen(kind);
        if (!end) return false;
        if ((size_t)(end - (p + 11)) >= klen && memcmp(end - klen, kind, klen) == 0) return true;
        p = end;
    }
    return false;
}

bool tls_load(struct sandbox_tls *tls, const char *cert_path, const char *key_path, char *err,
              size_t errlen)
{
    tls->cert = read_pem("--tls-cert", cert_path, err, errlen);
    if (!tls->cert) return false;
    tls->key = read_pem("--tls-key", key_path, err, errlen);
    if (!tls->key) {
        tls_free(tls);
        return false;
    }
    if (!has_block(tls->cert, "CERTIFICATE")) {
        snprintf(err, errlen, "--tls-cert %s: no PEM certificate in it", cert_path);
        tls_free(tls);
        return false;
    }
    if (!has_block(tls->key, "PRIVATE KEY")) {
        snprintf(err, errlen, "--tls-key %s: no PEM private key in it", key_path);
        tls_free(tls);
        return false;
    }
    if (has_block(tls->key, "ENCRYPTED PRIVATE KEY")) {
        snprintf(err, errlen, "--tls-key %s: the key is encrypted; give it unencrypted",
                 key_path);
        tls_free(tls);
        return false;
    }
    return true;
}

void tls_free(struct sandbox_tls *tls)
{
    free(tls->cert);
    tc_wipe_free(tls->key);
    tls->cert = tls->key = NULL;
}
