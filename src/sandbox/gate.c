/*
 * gate.c: the front door of tc-sandbox's plaintext REST listener.
 *
 * libmicrohttpd answers a request head it cannot parse with pages of its
 * own (HTML, one of them with its head sent twice), closes others without
 * a word and waits for a line end that bare CRs or a TLS handshake never
 * send. It has no hook to change that. So the plaintext listener's socket
 * is ours: one thread accepts, polls the new connections with epoll and
 * looks at what they send with MSG_PEEK, which leaves every byte where it
 * is. Once a connection's first request head is whole and well formed
 * (the rules below are RFC 9112's, as strict as the sandbox needs), the
 * connection goes to libmicrohttpd (MHD_add_connection), which reads the
 * same bytes; otherwise it gets the API's JSON error here, and is closed.
 *
 * Only the first request of a connection passes here: the next ones on a
 * kept-alive connection meet libmicrohttpd alone (docs/sandbox.md says
 * what it answers itself). Over TLS the bytes are not readable here, and
 * libmicrohttpd listens itself (rest.c).
 */
#include "gate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

#define MAX_WAITING 2048 /* connections waiting for their head, in all */
#define LINGER_MS 2000   /* reading what a refused client still sends */
#define MAX_CLOSING 1024 /* refused connections read at once; more close at once */
#define LINGER_BYTES GATE_DROP_LIMIT /* what a refused client may still send */
#define ADDR_SLOTS 4096  /* the per-address table: twice MAX_WAITING */

/* A connection whose first head has not arrived whole yet, or (closing)
 * one that was answered and whose remaining bytes are read and dropped. */
struct waiting {
    struct waiting *prev, *next; /* in order of their deadlines */
    int fd;
    struct sockaddr_in addr;
    int64_t since_ms;
    bool closing;
    size_t drained;
};

struct list {
    struct waiting *head, *tail;
};

struct addr_slot {
    uint32_t addr; /* network order */
    uint32_t count; /* 0: free */
};

struct gate {
    int listen_fd, epoll_fd, stop_fd;
    struct MHD_Daemon *daemon;
    pthread_t thread;
    struct list waiting, closing; /* each in deadline order */
    size_t nwaiting, nclosing;
    struct addr_slot addrs[ADDR_SLOTS];
    unsigned char peek[GATE_HEAD_LIMIT + 1];
};

/* ---- answers ------------------------------------------------------------- */

static const char *reason(unsigned status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

void gate_answer(int fd, unsigned status, const char *msg)
{
    json_t *body = error_body("%s", msg);
    char *text = body ? json_dumps(body, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    json_decref(body);
    char out[1024];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %u %s\r\nConnection: close\r\n"
                     "Content-Type: application/json; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     status, reason(status), text ? strlen(text) : 0, text ? text : "");
    free(text);
    if (n > 0 && (size_t)n < sizeof out &&
        send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the client is gone or not reading: closing is all it gets */
    }
}

/* ---- connections per address ---------------------------------------------- */

static struct addr_slot *addr_find(struct gate *g, uint32_t addr, bool add)
{
    size_t h = (addr * 2654435761u) & (ADDR_SLOTS - 1);
    while (g->addrs[h].count && g->addrs[h].addr != addr) h = (h + 1) & (ADDR_SLOTS - 1);
    if (!g->addrs[h].count && !add) return NULL;
    g->addrs[h].addr = addr;
    return &g->addrs[h];
}

/* Linear probing: a freed slot takes the later entries of its run back. */
static void addr_release(struct gate *g, uint32_t addr)
{
    struct addr_slot *s = addr_find(g, addr, false);
    if (!s || --s->count > 0) return;
    size_t i = (size_t)(s - g->addrs);
    for (size_t j = (i + 1) & (ADDR_SLOTS - 1); g->addrs[j].count; j = (j + 1) & (ADDR_SLOTS - 1)) {
        size_t home = (g->addrs[j].addr * 2654435761u) & (ADDR_SLOTS - 1);
        /* move j back to i when i lies between its home and j */
        if ((i <= j) ? (home <= i || home > j) : (home <= i && home > j)) {
            g->addrs[i] = g->addrs[j];
            g->addrs[j].count = 0;
            i = j;
        }
    }
}

/* ---- the head -------------------------------------------------------------- */

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* What the first n bytes of a connection say. 0: not a whole head yet;
 * -1: a whole head, well formed; else the status to answer, with *msg. */
static int check_head(const unsigned char *b, size_t n, const char **msg)
{
    size_t pos = 0, line = 0, fields = 0;
    bool length_seen = false;
    uint64_t length = 0;
    if (n > 0 && b[0] == 0x16) {
        *msg = "this listener speaks plain HTTP; a TLS handshake is not a request";
        return 400;
    }
    while (pos < n && (b[pos] == '\r' || b[pos] == '\n')) pos++; /* empty lines before */
    for (;; line++) {
        /* one line: its bytes, then CRLF (or a bare LF, which RFC 9112 lets
         * a server accept; libmicrohttpd does) */
        size_t start = pos, end;
        for (end = start; end < n && b[end] != '\n'; end++) {
            if (b[end] == '\r' && end + 1 < n && b[end + 1] != '\n') {
                *msg = "a CR in the request head must be followed by LF";
                return 400;
            }
            if ((b[end] < 0x20 && b[end] != '\t' && b[end] != '\r') || b[end] == 0x7f) {
                *msg = "the request head holds a control character";
                return 400;
            }
        }
        if (end == n) { /* the line is not whole yet */
            if (line == 0 && n - start > GATE_URI_LIMIT + 32) {
                *msg = "the request target is longer than 8 KiB";
                return 414;
            }
            if (n > GATE_HEAD_LIMIT) {
                *msg = "the request head is larger than 16 KiB or has more than 100 fields";
                return 431;
            }
            return 0;
        }
        pos = end + 1;
        if (end > start && b[end - 1] == '\r') end--;
        const unsigned char *l = b + start;
        size_t len = end - start;

        if (line == 0) {
            /* METHOD SP TARGET SP HTTP/1.x */
            size_t m = 0;
            while (m < len && is_tchar(l[m])) m++;
            const unsigned char *sp = memchr(l + m, ' ', len - m);
            const unsigned char *sp2 = sp ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - l)) : NULL;
            if (m == 0 || !sp || sp != l + m || !sp2 || sp2 == sp + 1) {
                *msg = "the request line must be METHOD TARGET HTTP/1.1";
                return 400;
            }
            if ((size_t)(sp2 - sp - 1) > GATE_URI_LIMIT) {
                *msg = "the request target is longer than 8 KiB";
                return 414;
            }
            const unsigned char *v = sp2 + 1;
            size_t vlen = len - (size_t)(v - l);
            if (vlen == 8 && (memcmp(v, "HTTP/1.1", 8) == 0 || memcmp(v, "HTTP/1.0", 8) == 0))
                continue;
            if (vlen == 8 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' &&
                v[6] == '.' && v[7] >= '0' && v[7] <= '9') {
                *msg = "only HTTP/1.0 and HTTP/1.1 are spoken here";
                return 505;
            }
            *msg = "the request line must be METHOD TARGET HTTP/1.1";
            return 400;
        }
        if (len == 0) break; /* the end of the head */
        if (pos > GATE_HEAD_LIMIT || ++fields > GATE_MAX_FIELDS) {
            *msg = "the request head is larger than 16 KiB or has more than 100 fields";
            return 431;
        }
        /* NAME ":" OWS VALUE OWS */
        size_t c = 0;
        while (c < len && is_tchar(l[c])) c++;
        if (c == 0 || c == len || l[c] != ':') {
            *msg = l[0] == ' ' || l[0] == '\t'
                       ? "a header field may not be folded onto the next line"
                       : "a header field must be NAME: VALUE";
            return 400;
        }
        if (c == 14 && strncasecmp((const char *)l, "Content-Length", 14) == 0) {
            size_t i = c + 1, digits = 0;
            uint64_t value = 0;
            while (i < len && (l[i] == ' ' || l[i] == '\t')) i++;
            for (; i < len && l[i] >= '0' && l[i] <= '9'; i++, digits++)
                if (digits < 19) value = value * 10 + (uint64_t)(l[i] - '0');
            while (i < len && (l[i] == ' ' || l[i] == '\t')) i++;
            if (digits == 0 || i != len) {
                *msg = "Content-Length must be a number of bytes";
                return 400;
            }
            if (digits >= 19 || value > GATE_DROP_LIMIT) {
                *msg = "request body is larger than 1 MiB";
                return 413;
            }
            if (length_seen && value != length) {
                *msg = "Content-Length is given twice, with two values";
                return 400;
            }
            length_seen = true;
            length = value;
        }
    }
    return -1;
}

/* ---- the loop ------------------------------------------------------------- */

static void list_push(struct list *l, struct waiting *w)
{
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail) l->tail->next = w;
    else l->head = w;
    l->tail = w;
}

static void list_remove(struct list *l, struct waiting *w)
{
    if (w->prev) w->prev->next = w->next;
    else l->head = w->next;
    if (w->next) w->next->prev = w->prev;
    else l->tail = w->prev;
}

/* Takes a waiting connection off the books (not its socket). */
static void forget(struct gate *g, struct waiting *w)
{
    list_remove(&g->waiting, w);
    g->nwaiting--;
    addr_release(g, w->addr.sin_addr.s_addr);
}

static void drop(struct gate *g, struct waiting *w)
{
    epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
    close(w->fd);
    free(w);
}

/* Reads and drops what the client sends; true once it is done (or has
 * sent too much, or cannot be read). */
static bool drain(struct waiting *w)
{
    char sink[16384];
    for (;;) {
        ssize_t n = recv(w->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0) {
            w->drained += (size_t)n;
            if (w->drained > LINGER_BYTES) return true;
            continue;
        }
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
}

/* Answers a connection that is still ours, then reads what it still
 * sends, for a while, before closing it: closing a socket with unread
 * bytes resets it, and a client that is still sending (a long head) would
 * lose the answer. w is the connection's record, or NULL when it has none
 * yet (it is then made). */
static void refuse(struct gate *g, int fd, struct waiting *w, unsigned status, const char *msg)
{
    gate_answer(fd, status, msg);
    shutdown(fd, SHUT_WR);
    fprintf(stderr, "tc-sandbox: connection refused at its first head: %u %s\n", status, msg);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET };
    if (!w) {
        w = calloc(1, sizeof *w);
        ev.data.ptr = w;
        if (!w || epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(w);
            close(fd);
            return;
        }
        w->fd = fd;
    }
    w->closing = true;
    w->since_ms = now_ms();
    if (drain(w) || g->nclosing >= MAX_CLOSING) {
        drop(g, w);
        return;
    }
    list_push(&g->closing, w);
    g->nclosing++;
}

static void stop_closing(struct gate *g, struct waiting *w)
{
    list_remove(&g->closing, w);
    g->nclosing--;
    drop(g, w);
}

/* Looks at what w has sent so far; hands it over or answers it once its
 * head says enough. */
static void examine(struct gate *g, struct waiting *w, bool peer_closed)
{
    if (w->closing) {
        if (drain(w) || peer_closed) stop_closing(g, w);
        return;
    }
    ssize_t n = recv(w->fd, g->peek, sizeof g->peek, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !peer_closed) return;
    if (n <= 0) { /* gone before its head was whole */
        forget(g, w);
        drop(g, w);
        return;
    }
    const char *msg = NULL;
    int verdict = check_head(g->peek, (size_t)n, &msg);
    if (verdict == 0 && !peer_closed) return;
    forget(g, w);
    if (verdict > 0) {
        refuse(g, w->fd, w, (unsigned)verdict, msg);
        return;
    }
    if (verdict == 0) { /* half a head, and the client is done sending */
        drop(g, w);
        return;
    }
    epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
    if (MHD_add_connection(g->daemon, w->fd, (struct sockaddr *)&w->addr, sizeof w->addr) !=
        MHD_YES) {
        /* libmicrohttpd has closed it (its own connection limits) */
    }
    free(w);
}

static void accept_all(struct gate *g)
{
    for (;;) {
        struct sockaddr_in addr;
        socklen_t len = sizeof addr;
        int fd = accept4(g->listen_fd, (struct sockaddr *)&addr, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "tc-sandbox: http: no file descriptor for a new connection\n");
            return; /* EAGAIN: all taken */
        }
        struct addr_slot *slot = addr_find(g, addr.sin_addr.s_addr, true);
        if (g->nwaiting >= MAX_WAITING || slot->count >= GATE_PER_ADDRESS) {
            if (slot->count == 0) addr_release(g, addr.sin_addr.s_addr); /* not kept */
            refuse(g, fd, NULL, 503,
                   "too many connections wait for their first request; try again later");
            continue;
        }
        struct waiting *w = calloc(1, sizeof *w);
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = w };
        if (!w || (w->fd = fd, epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0)) {
            free(w);
            if (slot->count == 0) addr_release(g, addr.sin_addr.s_addr);
            close(fd);
            continue;
        }
        slot->count++;
        w->addr = addr;
        w->since_ms = now_ms();
        list_push(&g->waiting, w);
        g->nwaiting++;
    }
}

/* Milliseconds until the first deadline of a list, capped at cap. */
static int until_first(const struct list *l, int64_t after_ms, int cap)
{
    if (!l->head) return cap;
    int64_t left = l->head->since_ms + after_ms - now_ms();
    return left < 0 ? 0 : left > cap ? cap : (int)left + 1;
}

static void *serve(void *arg)
{
    struct gate *g = arg;
    struct epoll_event events[64];
    for (;;) {
        int timeout = until_first(&g->waiting, GATE_HEAD_TIMEOUT_MS, 1000);
        int linger = until_first(&g->closing, LINGER_MS, 1000);
        if (linger < timeout) timeout = linger;
        int n = epoll_wait(g->epoll_fd, events, 64, timeout);
        for (int i = 0; i < n; i++) {
            void *p = events[i].data.ptr;
            if (p == &g->stop_fd) return NULL;
            if (p == &g->listen_fd) {
                accept_all(g);
                continue;
            }
            examine(g, p, (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
        }
        int64_t now = now_ms();
        while (g->waiting.head && g->waiting.head->since_ms + GATE_HEAD_TIMEOUT_MS <= now) {
            struct waiting *w = g->waiting.head;
            forget(g, w);
            refuse(g, w->fd, w, 408, "the request head did not arrive within 5 s");
        }
        while (g->closing.head && g->closing.head->since_ms + LINGER_MS <= now)
            stop_closing(g, g->closing.head);
    }
}

struct gate *gate_start(int fd, struct MHD_Daemon *daemon, char *err, size_t errlen)
{
    struct gate *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->listen_fd = fd;
    g->daemon = daemon;
    g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    g->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event on_listen = { .events = EPOLLIN, .data.ptr = &g->listen_fd };
    struct epoll_event on_stop = { .events = EPOLLIN, .data.ptr = &g->stop_fd };
    int flags = fcntl(fd, F_GETFL);
    if (g->epoll_fd < 0 || g->stop_fd < 0 || flags < 0 ||
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, fd, &on_listen) != 0 ||
        epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, g->stop_fd, &on_stop) != 0 ||
        pthread_create(&g->thread, NULL, serve, g) != 0) {
        snprintf(err, errlen, "cannot start the listener: %s", strerror(errno));
        if (g->epoll_fd >= 0) close(g->epoll_fd);
        if (g->stop_fd >= 0) close(g->stop_fd);
        free(g);
        return NULL;
    }
    return g;
}

void gate_stop(struct gate *g)
{
    if (!g) return;
    uint64_t one = 1;
    if (write(g->stop_fd, &one, sizeof one) != (ssize_t)sizeof one)
        fprintf(stderr, "tc-sandbox: http: cannot stop the listener thread\n");
    pthread_join(g->thread, NULL);
    while (g->waiting.head) {
        struct waiting *w = g->waiting.head;
        forget(g, w);
        drop(g, w);
    }
    while (g->closing.head) stop_closing(g, g->closing.head);
    close(g->epoll_fd);
    close(g->stop_fd);
    close(g->listen_fd);
    free(g);
}
