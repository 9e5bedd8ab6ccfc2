/*
 * http.c: the REST transport, one reused libcurl handle per client.
 *
 *   local http = core.http{ base = "https://ticketscloud.com", key = KEY,
 *                           timeout = 10, ca_file = nil, insecure = false,
 *                           language = "ru", max_body = 32 MiB }
 *   local status, body = http:request("PATCH", "/v2/resources/orders/ID", json,
 *                                     { headers = { ["X-Name"] = "v" }, timeout = 2 })
 *   http:stats()  -> { requests = n, connects = n }
 *   http:close()  -- also __gc and, on Lua 5.4, __close
 *
 * Transport only: any HTTP status is a normal return; failures to talk to
 * the server are `nil, err` with kind "transport" or "timeout". What the
 * status and the body mean is decided in Lua (lua/ticketscloud/rest.lua).
 *
 * Keep-alive: the easy handle is kept for the life of the object, and
 * curl_easy_reset() between requests keeps its connection cache, so the
 * second request to the same host reuses the connection (stats() proves it).
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
#include "validate.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define TC_HTTP_MT "ticketscloud.Http"
#define DEFAULT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_BODY ((size_t)32 << 20)
#define USER_AGENT "lua-ticketscloud/" TC_VERSION

struct http {
    CURL *curl;
    int global;                 /* holds one curl_global_init */
    struct curl_slist *headers; /* Authorization (the key), Accept, ... */
    struct curl_slist *extra;   /* one request's own headers, linked in front */
    struct curl_slist *extra_tail;
    pid_t pid;                  /* the process that made it: see "Fork" above */
    char *base;    /* "https://host[:port][/prefix]", no trailing '/' */
    char *ca_file; /* NULL: the system store */
    char *url;     /* the current request's URL */
    const char *protocols;
    long timeout_ms;
    size_t max_body;
    char *body; /* the current response */
    size_t len, cap;
    int too_large;
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
        explicit_bzero(s->data, strlen(s->data));
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
    int own = h->pid == getpid();

    if (h->curl && own)
        curl_easy_cleanup(h->curl);
    drop_extra(h);
    wipe_slist(h->headers);
    free(h->base);
    free(h->ca_file);
    free(h->url);
    free(h->body);
    if (h->global && own)
        curl_global_cleanup();
    explicit_bzero(h, sizeof *h);
    free(h);
}

static struct http *check_http(lua_State *L, int idx)
{
    http_ud *ud = luaL_checkudata(L, idx, TC_HTTP_MT);
    return ud->h;
}

/* close(), __gc and __close: frees once, then does nothing. */
static int http_close(lua_State *L)
{
    http_ud *ud = luaL_checkudata(L, 1, TC_HTTP_MT);

    if (ud->h) {
        http_free(ud->h);
        ud->h = NULL;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int http_tostring(lua_State *L)
{
    http_ud *ud = luaL_checkudata(L, 1, TC_HTTP_MT);

    lua_pushfstring(L, "%s: %p%s", TC_HTTP_MT, (void *)ud, ud->h ? "" : " (closed)");
    return 1;
}

/* 127.0.0.0/8, ::1 and localhost. host is as curl gives it ("[::1]"). */
static int is_loopback(const char *host)
{
    unsigned char addr[16];
    char buf[64];
    size_t len = strlen(host);

    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, addr) == 1)
        return addr[0] == 127;
    if (len > 2 && len < sizeof buf && host[0] == '[' && host[len - 1] == ']') {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        if (inet_pton(AF_INET6, buf, addr) == 1)
            return memcmp(addr, &in6addr_loopback, 16) == 0;
    }
    return 0;
}

/*
 * Checks the base URL: http or https, a host, no credentials, query or
 * fragment; plaintext only to loopback unless insecure. Returns NULL when it
 * is acceptable (and sets *plain), else the problem.
 */
static const char *check_base(const char *base, int insecure, int *plain)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *part = NULL;
    const char *problem = NULL;

    if (!u)
        return "out of memory";
    if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        problem = "is not a URL";
        goto done;
    }
    if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
        problem = "must be an http:// or https:// URL";
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
        problem = "must not carry credentials, a query or a fragment";
        goto done;
    }
    *plain = strcmp(scheme, "http") == 0;
    if (*plain && !insecure && !is_loopback(host))
        problem = "is plaintext http:// to a host that is not loopback "
                  "(use https://, or insecure = true)";
done:
    curl_free(part);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return problem;
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
        if (!(s > 0 && s <= 86400))
            luaL_error(L, "bad field 'timeout' (seconds between 0 and 86400 expected)");
        ms = (long)(s * 1000);
        if (ms < 1)
            ms = 1;
    }
    lua_pop(L, 1);
    return ms;
}

/* Reads the optional string opts[name]; raises on a bad type. */
static const char *opt_string(lua_State *L, int opts, const char *name)
{
    const char *s = NULL;

    lua_getfield(L, opts, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "bad field '%s' (string expected, got %s)", name,
                       luaL_typename(L, -1));
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1); /* the string stays alive in opts */
    return s;
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
 * temporary line is wiped. */
static int build_headers(struct http *h, const char *key, const char *language)
{
    char line[512];
    int rc = 0;

    snprintf(line, sizeof line, "Authorization: key %s", key);
    rc |= append_header(&h->headers, line);
    explicit_bzero(line, sizeof line);
    rc |= append_header(&h->headers, "Accept: application/json");
    rc |= append_header(&h->headers, "Content-Type: application/json");
    rc |= append_header(&h->headers, "Expect:"); /* no 100-continue round trip */
    if (language) {
        snprintf(line, sizeof line, "Accept-Language: %s", language);
        rc |= append_header(&h->headers, line);
    }
    return rc;
}

/* A key is an opaque token: printable ASCII without spaces, as a header needs. */
static int valid_key(const char *key, size_t len)
{
    if (len == 0 || len > 256)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (key[i] <= 0x20 || key[i] >= 0x7F)
            return 0;
    return 1;
}

/* core.http{ base, key, timeout, ca_file, insecure, language, max_body }
 *   -> http | nil, err */
static int http_new(lua_State *L)
{
    const char *base, *key, *ca_file, *language, *problem;
    size_t key_len, base_len;
    int insecure, plain = 0;
    struct http *h;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "base");
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "bad field 'base' (string expected, got %s)", luaL_typename(L, -1));
    base = lua_tolstring(L, -1, &base_len);
    lua_pop(L, 1);
    lua_getfield(L, 1, "key");
    if (lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "bad field 'key' (string expected, got %s)", luaL_typename(L, -1));
    key = lua_tolstring(L, -1, &key_len);
    lua_pop(L, 1);
    ca_file = opt_string(L, 1, "ca_file");
    language = opt_string(L, 1, "language");
    lua_getfield(L, 1, "insecure");
    insecure = lua_toboolean(L, -1);
    lua_pop(L, 1);
    long timeout_ms = opt_timeout(L, 1, DEFAULT_TIMEOUT_MS);
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
    if (!valid_key(key, key_len))
        return tc_fail(L, TC_EINVALID, -1,
                       "key: must be 1 to 256 printable characters without spaces");
    if (tc_text_problem(base, base_len) || strchr(base, ' '))
        return tc_fail(L, TC_EINVALID, -1, "api: is not a URL");
    if ((problem = check_base(base, insecure, &plain)) != NULL)
        return tc_fail(L, TC_EINVALID, -1, "api: %s", problem);
    if (ca_file && access(ca_file, R_OK) != 0)
        return tc_fail(L, TC_EINVALID, -1, "ca_file: cannot read %s", ca_file);
    if (language && (strlen(language) > 35 || tc_text_problem(language, strlen(language))))
        return tc_fail(L, TC_EINVALID, -1, "language: not a language tag");

    /* The userdata first, so that __gc frees whatever follows if Lua raises. */
    http_ud *ud = lua_newuserdata(L, sizeof *ud);
    ud->h = NULL;
    luaL_setmetatable(L, TC_HTTP_MT);
    h = calloc(1, sizeof *h);
    if (!h)
        return tc_fail(L, TC_ETRANSPORT, -1, "out of memory");
    ud->h = h;
    h->pid = getpid();
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
    h->base = strdup(base);
    h->ca_file = ca_file ? strdup(ca_file) : NULL;
    if (!h->curl || !h->base || (ca_file && !h->ca_file) || build_headers(h, key, language)) {
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

/* Links the request's own headers, opts.headers, in front of the fixed
 * ones. Returns NULL, or the problem. */
static const char *add_extra_headers(lua_State *L, struct http *h, int opts)
{
    char line[1024];
    const char *problem = NULL;

    if (opts == 0)
        return NULL;
    lua_getfield(L, opts, "headers");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "bad field 'headers' (table expected, got %s)", luaL_typename(L, -1));
    lua_pushnil(L);
    while (problem == NULL && lua_next(L, -2)) {
        /* headers, name, value */
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
            problem = "headers: names and values must be strings";
        } else {
            size_t len;
            const char *name = lua_tostring(L, -2);
            const char *value = lua_tolstring(L, -1, &len);
            if (!valid_header_name(name))
                problem = "headers: a name is not a token";
            else if (strcasecmp(name, "Authorization") == 0)
                problem = "headers: Authorization is set from the key";
            else if (tc_text_problem(value, len) || strlen(name) + len + 3 > sizeof line)
                problem = "headers: a value has control characters or is too long";
            else {
                snprintf(line, sizeof line, "%s: %s", name, value);
                if (append_header(&h->extra, line))
                    problem = "out of memory";
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, problem ? 2 : 1);
    if (h->extra && !problem) {
        for (h->extra_tail = h->extra; h->extra_tail->next;)
            h->extra_tail = h->extra_tail->next;
        h->extra_tail->next = h->headers;
    }
    return problem;
}

/* http:request(method, path, body?, opts?) -> status, body | nil, err */
static int http_request(lua_State *L)
{
    static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", NULL };
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
    if (h->pid != getpid())
        return tc_fail(L, TC_EINVALID, -1,
                       "made in process %d, before a fork: make a client in the process "
                       "that uses it", (int)h->pid);
    long timeout_ms = opts ? opt_timeout(L, opts, h->timeout_ms) : h->timeout_ms;

    /* The path goes into the URL as it is: printable ASCII, no spaces. */
    if (path_len == 0 || path[0] != '/')
        return tc_fail(L, TC_EINVALID, -1, "path: must start with '/'");
    for (size_t i = 0; i < path_len; i++)
        if (path[i] <= 0x20 || path[i] >= 0x7F)
            return tc_fail(L, TC_EINVALID, -1, "path: must be printable ASCII without spaces");

    drop_extra(h);
    if ((problem = add_extra_headers(L, h, opts)) != NULL) {
        drop_extra(h);
        return tc_fail(L, TC_EINVALID, -1, "%s", problem);
    }
    size_t url_len = strlen(h->base) + path_len + 1;
    char *url = realloc(h->url, url_len);
    if (!url)
        return tc_fail(L, TC_ETRANSPORT, -1, "out of memory");
    h->url = url;
    snprintf(url, url_len, "%s%s", h->base, path);

    CURL *c = h->curl;
    curl_easy_reset(c); /* keeps the connection cache */
    h->len = 0;
    h->too_large = 0;
    h->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, h->protocols);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM in threads or nginx */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->extra ? h->extra : h->headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    if (method == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        if (method != 1)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, methods[method]);
        if (body || method == 1) {
            /* The Lua string stays on the stack for the whole transfer. */
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        }
    }

    CURLcode rc = curl_easy_perform(c);
    long connects = 0, status = 0;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    h->requests++;
    h->connects += connects;
    drop_extra(h);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return tc_fail(L, TC_ETIMEOUT, -1, "%s %s: no answer within %ld ms", methods[method],
                       path, timeout_ms);
    if (rc == CURLE_WRITE_ERROR && h->too_large)
        return tc_fail(L, TC_ETRANSPORT, -1, "%s %s: the response is larger than %lu bytes",
                       methods[method], path, (unsigned long)h->max_body);
    if (rc != CURLE_OK)
        return tc_fail(L, TC_ETRANSPORT, -1, "%s %s: %s", methods[method], path,
                       h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
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
static int core_sleep(lua_State *L)
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

static const luaL_Reg http_methods[] = {
    { "request", http_request },
    { "stats", http_stats },
    { "close", http_close },
    { NULL, NULL },
};

void tc_http_register(lua_State *L)
{
    /* module */
    tc_new_class(L, TC_HTTP_MT, http_methods, http_close, http_tostring);
    lua_pushcfunction(L, http_new);
    lua_setfield(L, -2, "http");
    lua_pushcfunction(L, core_sleep);
    lua_setfield(L, -2, "sleep");
}
