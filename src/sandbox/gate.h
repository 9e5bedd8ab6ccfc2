/*
 * gate.h: the front door of tc-sandbox's plaintext REST listener
 * (gate.c), and the one writer of answers that go out without
 * libmicrohttpd.
 */
#ifndef TC_SANDBOX_GATE_H
#define TC_SANDBOX_GATE_H

#include <stddef.h>

struct MHD_Daemon;
struct gate;

/* The limits it checks a first request head against (rest.c's too). */
#define GATE_URI_LIMIT (8 * 1024)   /* the request target, as sent */
#define GATE_HEAD_LIMIT (16 * 1024) /* request line and header fields */
#define GATE_MAX_FIELDS 100         /* header fields */
#define GATE_HEAD_TIMEOUT_MS 5000   /* for a head, from the connection on */
#define GATE_PER_ADDRESS 256        /* connections waiting here, per address */
#define GATE_DROP_LIMIT (16 * 1024 * 1024) /* a body announced over it: 413 at once */

/* Writes a whole answer with the API's error body {"errors": [msg]} and
 * Connection: close to a socket (non-blocking: what does not fit is
 * dropped). Safe from any thread that owns fd at the time. */
void gate_answer(int fd, unsigned status, const char *msg);

/* Takes the listening socket fd and accepts on it, on a thread of its own:
 * a connection is handed to daemon (MHD_add_connection) once its first
 * request head has arrived whole and well formed; anything else gets the
 * API's error and is closed: a head that is not HTTP/1.x (400, 505), a
 * TLS handshake, bare CRs, control bytes, a malformed Content-Length
 * (400), one over GATE_DROP_LIMIT (413), a target or head over the limits
 * above (414, 431), a head that does not arrive within GATE_HEAD_TIMEOUT_MS
 * (408), more than GATE_PER_ADDRESS connections waiting from one address
 * (503). NULL with err on failure (fd is then the caller's still). */
struct gate *gate_start(int fd, struct MHD_Daemon *daemon, char *err, size_t errlen);

/* Stops accepting, closes the connections still waiting, joins the thread
 * and closes the listening socket. NULL is fine. */
void gate_stop(struct gate *g);

#endif
