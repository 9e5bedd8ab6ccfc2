/*
 * http.c: the REST transport, one reused libcurl handle per client.
 *
 *   local http = core.http{ api = "https://ticketscloud.com", key = KEY,
 *                           timeout = 10, ca_file = nil, insecure = false,
 *                           language = "ru", max_body = 32 MiB }
 *   local status, body = http:request("PATCH", "/v2/resources/orders/ID", json,
 *                                     { headers = { ["X-Name"] = "v" }, timeout = 2 })
 *   http:stats()  -> { requests = n, connects = n }
 *   http:close()  -- also __gc and, on Lua 5.4, __close
 *
 * Transport only: any HTTP status is a normal return; failures to talk to
 * the server are `nil, err` with kind "transport" or "timeout", and a field
 * `sent` that tells whether the request can have reached the service (see
 * "Sent" below). What the status and the body mean is decided in Lua
 * (lua/ticketscloud/answers.lua). What a URL, a key or a timeout may be is
 * options.c's to say.
 *
 * Keep-alive: the easy handle is kept for the life of the object, with its
 * connection cache, so the second request to the same host reuses the
 * connection (stats() proves it). The handle's fixed options are set once
 * (set_fixed_options); a request sets only what it changes: its URL, method,
 * body, timeout and headers.
 *
 * No silent re-send: when a reused connection closes before any byte of an
 * answer, libcurl takes it for a connection the server had closed while
 * idle and sends the request again on a new one. That is right only when
 * the first copy cannot have been applied; otherwise (a dropped answer) an
 * order would be created twice. So the body goes out through on_read, and
 * libcurl may send it again only if it needs no rewind: on_seek refuses to
 * rewind a body of which a byte was handed out (libcurl then fails with
 * CURLE_SEND_FAIL_REWIND), and on_prereq refuses a second attempt of a
 * request other than GET once a byte of its body, or of a bodiless one's
 * head, was sent. A GET, or a request whose head went out without any of
 * its body (the service cannot act on half a request), may still be sent
 * again. Whether to repeat the rest is the caller's decision, told by
 * err.sent.
 *
 * Sent: err.sent is true when any byte of the request may have left this
 * machine: libcurl wrote part of the head (CURLINFO_REQUEST_SIZE > 0) or
 * on_read handed out body bytes. A refused connection, a DNS or TLS
 * handshake failure, a connect timeout, or a request refused before
 * libcurl ran give false: the service cannot have seen the request.
 *
 * Proxy: only the proxy option's (CURLOPT_PROXY); without it requests go
 * direct even when http_proxy or https_proxy is set in the environment.
 *
 * Security: TLS peers are always verified (system CA store or ca_file);
 * plaintext http:// is accepted only for loopback unless insecure = true;
 * redirects are never followed (a 301 from plain HTTP must not be chased
 * with the key, spec §1.4). The key lives only in the header list, in C
 * memory; it is never returned, logged or put into an error message, and it
 * is wiped when the object is closed.
 *
 * libcurl counts curl_global_init() calls: each object holds one from its
 * creation to its close, so nothing is initialised by require (nginx forks
 * its workers after loading modules) and no global state is kept here.
 *
 * Fork: an object belongs to the process that made it. In a child made by
 * fork() (an nginx worker, when a client was made in init_by_lua) its
 * connection is the parent's socket, so a request there is refused (kind
 * "invalid") instead of sharing one TCP or TLS stream between processes,
 * and closing it frees the memory without closing the parent's connection.
 */
#include "private.h"
#include "bytes.h"
#include "validate.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

#define DEFAULT_MAX_BODY ((size_t)32 << 20)

/* The methods the API uses; http:request takes one by name. */
static const char *const METHODS[] = { "GET", "POST", "PUT", "PATCH", "DELETE", NULL };

struct http {
    CURL *curl;
    int global;                 /* holds one curl_global_init */
    struct curl_slist *headers; /* Content-Type, Expect, Authorization (the key), ... */
    struct curl_slist *bodiless; /* the same list from Authorization on */
    struct curl_slist *extra;    /* one request's own headers, linked in front */
    struct curl_slist *extra_tail;
    pid_t pid;                  /* the process that made it: see "Fork" above */
    char *base;    /* "https://host[:port][/prefix]", no trailing '/' */
    char *ca_file; /* NULL: the system store */
    char *proxy;   /* NULL: direct; the environment's http_proxy is ignored */
    char *agent;   /* the User-Agent (options.c) */
    char *url;     /* the current request's URL */
    const char *protocols;
    long timeout_ms;
    size_t max_body;
    char *body; /* the current response */
    size_t len, cap;
    int too_large;
    /* The current request's body (a Lua string on the stack for the whole
     * transfer), handed to libcurl by on_read, and what on_seek and
     * on_prereq need to refuse a re-send (see "No silent re-send"). */
    const char *out;
    size_t out_len, out_pos;
    int out_given; /* on_read handed out a byte */
    int safe;      /* GET: libcurl may send it again */
    int attempts;  /* on_prereq calls: more than one is libcurl's re-send */
    int refused;   /* on_seek or on_prereq refused a re-send */
    long requests, connects;
    char errbuf[CURL_ERROR_SIZE];
};

/* The userdata: a pointer to the C object, NULL once closed. */
typedef struct {
    struct http *h;
} http_ud;

/* Overwrites and frees a header list (the key is in one of its strings). */
static void wipe_slist(struct curl_slist *list)
{
    for (struct curl_slist *s = list; s; s = s->next)
        tc_wipe(s->data, strlen(s->data));
    curl_slist_free_all(list);
}

/* Unlinks and frees the extra headers of the last request. */
static void drop_extra(struct http *h)
{
    if (h->extra_tail)
        h->extra_tail->next = NULL;
    curl_slist_free_all(h->extra);
    h->extra = h->extra_tail = NULL;
}

static void http_free(struct http *h)
{
    /* In a child after fork the handle and its connection (and libcurl's
     * global state) are the parent's: cleaning them up could write to the
     * shared socket (a TLS close_notify), so they are left as they are. */
    int own = h->pid == tc_pid();

    if (h->curl && own)
        curl_easy_cleanup(h->curl);
    drop_extra(h);
    wipe_slist(h->headers);
    free(h->base);
    free(h->ca_file);
    if (h->proxy)
        tc_wipe(h->proxy, strlen(h->proxy)); /* it may hold a password */
    free(h->proxy);
    free(h->agent);
    free(h->url);
    free(h->body);
    if (h->global && own)
        curl_global_cleanup();
    tc_wipe(h, sizeof *h);
    free(h);
}

static struct http *check_http(lua_State *L, int idx)
{
    http_ud *ud = luaL_checkudata(L, idx, TC_HTTP_MT);
    return ud->h;
}

/* close(), __gc and __close: frees once, then does nothing. */
int tc_http_close(lua_State *L)
{
    http_ud *ud = luaL_checkudata(L, 1, TC_HTTP_MT);

    if (ud->h) {
        http_free(ud->h);
        ud->h = NULL;
    }
    lua_pushboolean(L, 1);
    return 1;
}

int tc_http_tostring(lua_State *L)
{
    http_ud *ud = luaL_checkudata(L, 1, TC_HTTP_MT);

    lua_pushfstring(L, "%s: %p%s", TC_HTTP_MT, (void *)ud, ud->h ? "" : " (closed)");
    return 1;
}

/* Reads opts.timeout (seconds) into milliseconds; raises on a bad type. */
static long opt_timeout(lua_State *L, int opts, long fallback)
{
    long ms = fallback;

    lua_getfield(L, opts, "timeout");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "bad field 'timeout' (number of seconds expected, got %s)",
                       luaL_typename(L, -1));
        lua_Number s = lua_tonumber(L, -1);
        if (tc_timeout_problem(s))
            luaL_error(L, "bad field 'timeout' (%s)", tc_timeout_problem(s));
        ms = (long)(s * 1000);
        if (ms < 1)
            ms = 1;
    }
    lua_pop(L, 1);
    return ms;
}

static int append_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);

    if (!l)
        return -1;
    *list = l;
    return 0;
}

/* The header list every request carries; the key goes into it, then the
 * temporary line is wiped. Requests with a body send the whole list, the
 * others (GET, DELETE) only its tail from Authorization on: a message
 * without content has no Content-Type. */
static int build_headers(struct http *h, const char *key, const char *language)
{
    char line[512];
    int rc = 0;

    rc |= append_header(&h->headers, "Content-Type: application/json");
    rc |= append_header(&h->headers, "Expect:"); /* no 100-continue round trip */
    snprintf(line, sizeof line, "Authorization: key %s", key);
    rc |= append_header(&h->headers, line);
    tc_wipe(line, sizeof line);
    if (rc == 0)
        h->bodiless = h->headers->next->next;
    rc |= append_header(&h->headers, "Accept: application/json");
    if (language) {
        snprintf(line, sizeof line, "Accept-Language: %s", language);
        rc |= append_header(&h->headers, line);
    }
    return rc;
}

/* core.http(options) -> http | nil, err: options are the client's (api,
 * key, timeout, ca_file, insecure, language, proxy, user_agent; see
 * options.c) plus max_body. */
static int set_fixed_options(struct http *h);

int core_http(lua_State *L)
{
    struct tc_options o;
    char buf[320];
    const char *problem;
    int plain = 0;
    struct http *h;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    tc_read_options(L, 1, &o, "http");
    size_t max_body = DEFAULT_MAX_BODY;
    lua_getfield(L, 1, "max_body");
    if (!lua_isnil(L, -1)) {
        lua_Integer n;
        if (!tc_to_count(L, -1, &n) || n == 0)
            return luaL_error(L, "bad field 'max_body' (positive integer expected)");
        max_body = (size_t)n;
    }
    lua_pop(L, 1);
    /* Data problems: nil, err. The key is never quoted. */
    if ((problem = tc_check_options(&o, buf, sizeof buf, &plain)) != NULL)
        return tc_fail(L, TC_EINVALID, -1, "%s", problem);
    long timeout_ms = (long)(o.timeout * 1000);
    if (timeout_ms < 1)
        timeout_ms = 1;

    /* The userdata first, so that __gc frees whatever follows if Lua raises. */
    http_ud *ud = lua_newuserdata(L, sizeof *ud);
    ud->h = NULL;
    luaL_setmetatable(L, TC_HTTP_MT);
    h = calloc(1, sizeof *h);
    if (!h)
        return tc_fail(L, TC_ETRANSPORT, -1, "out of memory");
    ud->h = h;
    h->pid = tc_pid();
    h->timeout_ms = timeout_ms;
    h->max_body = max_body;
    h->protocols = plain ? "http" : "https";
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ud->h = NULL;
        http_free(h);
        return tc_fail(L, TC_ETRANSPORT, -1, "libcurl could not be initialised");
    }
    h->global = 1;
    h->curl = curl_easy_init();
    h->base = strdup(o.api);
    h->ca_file = o.ca_file ? strdup(o.ca_file) : NULL;
    h->proxy = o.proxy ? strdup(o.proxy) : NULL;
    char agent[TC_USER_AGENT_MAX];
    tc_user_agent(&o, agent, sizeof agent);
    h->agent = strdup(agent);
    if (!h->curl || !h->base || (o.ca_file && !h->ca_file) || (o.proxy && !h->proxy) ||
        !h->agent || build_headers(h, o.key, o.language) || !set_fixed_options(h)) {
        ud->h = NULL;
        http_free(h);
        return tc_fail(L, TC_ETRANSPORT, -1, "out of memory");
    }
    /* No trailing '/': paths start with one. */
    for (size_t n = strlen(h->base); n > 0 && h->base[n - 1] == '/'; n--)
        h->base[n - 1] = '\0';
    lua_settop(L, 2);
    return 1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct http *h = userdata;
    size_t n = size * nmemb;

    if (n > h->max_body - h->len) {
        h->too_large = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (h->len + n > h->cap) {
        size_t cap = h->cap ? h->cap : 16384;
        while (cap < h->len + n)
            cap *= 2;
        char *p = realloc(h->body, cap);
        if (!p)
            return 0;
        h->body = p;
        h->cap = cap;
    }
    memcpy(h->body + h->len, data, n);
    h->len += n;
    return n;
}

/* Hands the next piece of the request body to libcurl. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct http *h = userdata;
    size_t n = h->out_len - h->out_pos;

    if (n > size * nitems)
        n = size * nitems;
    if (n > 0) {
        memcpy(buf, h->out + h->out_pos, n);
        h->out_pos += n;
        h->out_given = 1;
    }
    return n;
}

/* libcurl rewinds the body only to send the request again: refused once a
 * byte of it was handed out, as that byte may have reached the service. */
static int on_seek(void *userdata, curl_off_t offset, int origin)
{
    struct http *h = userdata;

    if (!h->out_given && offset == 0 && origin == SEEK_SET)
        return CURL_SEEKFUNC_OK; /* nothing read yet: already there */
    h->refused = 1;
    return CURL_SEEKFUNC_CANTSEEK;
}

/* Called before each attempt of a request: a second one is libcurl sending
 * it again on a new connection. Refused for a method other than GET once
 * the service can have acted on the first: a body byte was handed out, or
 * the request has no body and part of its head was written. */
static int on_prereq(void *userdata, char *conn_ip, char *local_ip, int conn_port,
                     int local_port)
{
    struct http *h = userdata;
    long head = 0;

    (void)conn_ip, (void)local_ip, (void)conn_port, (void)local_port;
    if (h->attempts++ == 0 || h->safe)
        return CURL_PREREQFUNC_OK;
    curl_easy_getinfo(h->curl, CURLINFO_REQUEST_SIZE, &head);
    if (h->out_given || (h->out_len == 0 && head > 0)) {
        h->refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* Adds err.sent to the error at the top of the stack (pushed by tc_fail,
 * nil below it) and returns 2. */
static int with_sent(lua_State *L, int sent)
{
    lua_pushboolean(L, sent);
    lua_setfield(L, -2, "sent");
    return 2;
}

/* A header name is an RFC 9110 token. */
static int valid_header_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s)))
            return 0;
    return 1;
}

/* NULL when path can go into the URL as it is (it starts with '/' and is
 * printable ASCII without spaces), else the problem. */
static const char *path_problem(const char *path, size_t len)
{
    if (len == 0 || path[0] != '/')
        return "path: must start with '/'";
    for (size_t i = 0; i < len; i++)
        if (path[i] <= 0x20 || path[i] >= 0x7F)
            return "path: must be printable ASCII without spaces";
    return NULL;
}

#define MAX_HEADER_LINE 1024

/* NULL when the pair at the top of the stack (..., name, value) may be sent
 * as a request's own header, else the problem. */
static const char *header_problem(lua_State *L)
{
    size_t len;

    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return "headers: names and values must be strings";
    const char *name = lua_tostring(L, -2);
    const char *value = lua_tolstring(L, -1, &len);
    if (!valid_header_name(name))
        return "headers: a name is not a token";
    if (strcasecmp(name, "Authorization") == 0)
        return "headers: Authorization is set from the key";
    if (tc_text_problem(value, len) || strlen(name) + len + 3 > MAX_HEADER_LINE)
        return "headers: a value has control characters or is too long";
    return NULL;
}

/* The headers table at idx (or nil): raises when it is not a table,
 * returns NULL or the first problem of its pairs. */
static const char *headers_problem(lua_State *L, int idx)
{
    const char *problem = NULL;

    if (lua_isnil(L, idx))
        return NULL;
    if (!lua_istable(L, idx))
        luaL_error(L, "bad field 'headers' (table expected, got %s)", luaL_typename(L, idx));
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (problem == NULL && lua_next(L, idx)) {
        problem = header_problem(L);
        lua_pop(L, 1);
    }
    if (problem)
        lua_pop(L, 1); /* the key */
    return problem;
}

/* core.check_request(method, path [, headers]) -> true | nil, err: the
 * rules every transport applies before sending (libcurl's http:request
 * and the nginx transport). */
int core_check_request(lua_State *L)
{
    size_t len;
    const char *method = luaL_checkstring(L, 1);
    const char *path = luaL_checklstring(L, 2, &len);
    const char *problem;
    int known = 0;

    for (int i = 0; METHODS[i]; i++)
        known |= strcmp(method, METHODS[i]) == 0;
    if (!known)
        return tc_fail(L, TC_EINVALID, -1, "method: %s is not one the API uses", method);
    if ((problem = path_problem(path, len)) != NULL ||
        (problem = headers_problem(L, 3)) != NULL)
        return tc_fail(L, TC_EINVALID, -1, "%s", problem);
    lua_pushboolean(L, 1);
    return 1;
}

/* Links the request's own headers, opts.headers, in front of the fixed
 * ones (base). Returns NULL, or the problem. */
static const char *add_extra_headers(lua_State *L, struct http *h, int opts,
                                     struct curl_slist *base)
{
    char line[MAX_HEADER_LINE];
    const char *problem;

    if (opts == 0)
        return NULL;
    lua_getfield(L, opts, "headers");
    if ((problem = headers_problem(L, -1)) != NULL || lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return problem;
    }
    lua_pushnil(L);
    while (problem == NULL && lua_next(L, -2)) {
        /* headers, name, value: checked above */
        snprintf(line, sizeof line, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
        if (append_header(&h->extra, line))
            problem = "out of memory";
        lua_pop(L, 1);
    }
    lua_pop(L, problem ? 2 : 1);
    if (h->extra && !problem) {
        for (h->extra_tail = h->extra; h->extra_tail->next;)
            h->extra_tail = h->extra_tail->next;
        h->extra_tail->next = base;
    }
    return problem;
}

/* http:request(method, path, body?, opts?) -> status, body | nil, err */
/* The options every request of h shares, set once when h is made. The
 * body callbacks stay set: libcurl calls them only for a request with a
 * body (CURLOPT_POST). Returns 0 when libcurl is out of memory. */
static int set_fixed_options(struct http *h)
{
    CURL *c = h->curl;
    unsigned bad = 0; /* the codes OR'ed: any but CURLE_OK is a failure */

    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, h->protocols);
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM in threads or nginx */
    bad |= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file)
        bad |= curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    /* The proxy option or none: "" keeps libcurl from taking one (or a
     * no_proxy list) from the environment behind the caller's back. */
    bad |= curl_easy_setopt(c, CURLOPT_PROXY, h->proxy ? h->proxy : "");
    bad |= curl_easy_setopt(c, CURLOPT_NOPROXY, "");
    bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, h->agent);
    bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    bad |= curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq);
    bad |= curl_easy_setopt(c, CURLOPT_PREREQDATA, h);
    bad |= curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    bad |= curl_easy_setopt(c, CURLOPT_READDATA, h);
    bad |= curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
    bad |= curl_easy_setopt(c, CURLOPT_SEEKDATA, h);
    return bad == CURLE_OK;
}

static int http_request(lua_State *L)
{
    static const char *const *const methods = METHODS;
    struct http *h = check_http(L, 1);
    int method = luaL_checkoption(L, 2, NULL, methods);
    size_t path_len, body_len = 0;
    const char *path = luaL_checklstring(L, 3, &path_len);
    const char *body = luaL_optlstring(L, 4, NULL, &body_len);
    const char *problem;
    int opts = 0;

    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        opts = 5;
    }
    if (!h)
        return tc_fail(L, TC_EINVALID, -1, "closed");
    if (h->pid != tc_pid())
        return tc_fail(L, TC_EINVALID, -1,
                       "made in process %d, before a fork: make a client in the process "
                       "that uses it", (int)h->pid);
    long timeout_ms = opts ? opt_timeout(L, opts, h->timeout_ms) : h->timeout_ms;

    if ((problem = path_problem(path, path_len)) != NULL)
        return tc_fail(L, TC_EINVALID, -1, "%s", problem);

    int with_body = body != NULL || method == 1; /* POST: always a body */
    struct curl_slist *fixed = with_body ? h->headers : h->bodiless;

    drop_extra(h);
    if ((problem = add_extra_headers(L, h, opts, fixed)) != NULL) {
        drop_extra(h);
        return tc_fail(L, TC_EINVALID, -1, "%s", problem);
    }
    size_t url_len = strlen(h->base) + path_len + 1;
    char *url = realloc(h->url, url_len);
    if (!url) {
        drop_extra(h);
        tc_fail(L, TC_ETRANSPORT, -1, "out of memory");
        return with_sent(L, 0);
    }
    h->url = url;
    snprintf(url, url_len, "%s%s", h->base, path);

    CURL *c = h->curl;
    h->len = 0;
    h->too_large = 0;
    h->errbuf[0] = '\0';
    h->out = body ? body : "";
    h->out_len = body_len;
    h->out_pos = 0;
    h->out_given = 0;
    h->safe = method == 0;
    h->attempts = 0;
    h->refused = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->extra ? h->extra : fixed);
    /* GET and POST by name; PUT, PATCH and DELETE as a custom method on one
     * of them. */
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method >= 2 ? methods[method] : NULL);
    if (with_body) {
        /* A POST whose body on_read hands out (Content-Length, and no
         * "Expect: 100-continue": see build_headers); on_seek keeps
         * libcurl from sending it twice. */
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }

    CURLcode rc = curl_easy_perform(c);
    long connects = 0, status = 0, head = 0;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &head);
    h->requests++;
    h->connects += connects;
    h->out = NULL; /* the Lua string is not ours past this call */
    drop_extra(h);
    int sent = head > 0 || h->out_given;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        tc_fail(L, TC_ETIMEOUT, -1, "%s %s: no answer within %ld ms", methods[method], path,
                timeout_ms);
        return with_sent(L, sent);
    }
    if (rc == CURLE_WRITE_ERROR && h->too_large) {
        tc_fail(L, TC_ETRANSPORT, -1, "%s %s: the response is larger than %lu bytes",
                methods[method], path, (unsigned long)h->max_body);
        return with_sent(L, sent);
    }
    if (rc != CURLE_OK && h->refused) {
        tc_fail(L, TC_ETRANSPORT, -1,
                "%s %s: the connection closed before the answer; the request may have "
                "reached the service, so it was not sent again", methods[method], path);
        return with_sent(L, sent);
    }
    if (rc != CURLE_OK) {
        tc_fail(L, TC_ETRANSPORT, -1, "%s %s: %s", methods[method], path,
                h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
        return with_sent(L, sent);
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, status);
    lua_pushlstring(L, h->body ? h->body : "", h->len);
    if (h->cap > ((size_t)1 << 20)) { /* do not keep a huge buffer around */
        free(h->body);
        h->body = NULL;
        h->cap = 0;
    }
    h->len = 0;
    return 2;
}

/* http:stats() -> { requests = n, connects = n } | nil, err */
static int http_stats(lua_State *L)
{
    struct http *h = check_http(L, 1);

    if (!h)
        return tc_fail(L, TC_EINVALID, -1, "closed");
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, h->requests);
    lua_setfield(L, -2, "requests");
    lua_pushinteger(L, h->connects);
    lua_setfield(L, -2, "connects");
    return 1;
}

/* core.sleep(seconds): blocks the calling thread; used between retries. */
int core_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec ts;

    luaL_argcheck(L, s >= 0 && s <= 3600, 1, "seconds between 0 and 3600 expected");
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

const luaL_Reg tc_http_methods[] = {
    { "request", http_request },
    { "stats", http_stats },
    { "close", tc_http_close },
    { NULL, NULL },
};
