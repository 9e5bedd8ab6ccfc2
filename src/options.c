/*
 * options.c: the one owner of the client's options policy: which API URL
 * and gRPC target are acceptable (TLS everywhere, plaintext to loopback
 * only unless insecure), what a key, a timeout, a language, a proxy and a
 * user agent are, and the defaults. tc.new (through core.options), core.http and core.channel all
 * read and check their options here, so the two transports cannot disagree.
 */
#include "private.h"
#include "bytes.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_API "https://ticketscloud.com"
#define DEFAULT_SIMPLE "simple.ticketscloud.com:443"
#define DEFAULT_TIMEOUT 10
#define DEFAULT_LANGUAGE "ru"
#define MAX_TIMEOUT 86400
#define MAX_LANGUAGE 35
#define MAX_APP 64
#define OUR_AGENT "lua-ticketscloud/" TC_VERSION

int tc_is_loopback(const char *host)
{
    unsigned char addr[16];
    char buf[64];
    size_t len = strlen(host);

    /* Written as the documentation says: lower-case localhost. */
    if (strcmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, addr) == 1)
        return addr[0] == 127;
    if (len > 2 && len < sizeof buf && host[0] == '[' && host[len - 1] == ']') {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    if (inet_pton(AF_INET6, host, addr) == 1)
        return memcmp(addr, &in6addr_loopback, 16) == 0;
    return 0;
}

const char *tc_timeout_problem(lua_Number seconds)
{
    if (!(seconds > 0 && seconds <= MAX_TIMEOUT))
        return "a number of seconds in (0, 86400] expected";
    return NULL;
}

/* The REST base URL: http or https, a host, no credentials, query or
 * fragment; plaintext only to loopback unless insecure. */
static const char *api_problem(const char *api, int insecure, int *plain)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL, *part = NULL;
    const char *problem = NULL;

    if (tc_text_problem(api, strlen(api)) || strchr(api, ' '))
        return "is not a URL";
    if ((u = curl_url()) == NULL)
        return "out of memory";
    if (curl_url_set(u, CURLUPART_URL, api, 0) != CURLUE_OK ||
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
    if (*plain && !insecure && !tc_is_loopback(host))
        problem = "is plaintext http:// to a host that is not loopback "
                  "(use https://, or insecure = true)";
done:
    curl_free(part);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return problem;
}

/* The REST proxy: an http:// or https:// URL with a host, without spaces
 * or control characters. No loopback rule: TLS to the API is verified
 * through it as without it. */
static const char *proxy_problem(const char *proxy)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL;
    const char *problem = NULL;

    if (!*proxy || tc_text_problem(proxy, strlen(proxy)) || strchr(proxy, ' '))
        return "is not a URL";
    if ((u = curl_url()) == NULL)
        return "out of memory";
    if (curl_url_set(u, CURLUPART_URL, proxy, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        problem = "is not a URL";
    else if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)
        problem = "must be an http:// or https:// URL";
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return problem;
}

/* The gRPC channel's use of the proxy (an accepted one): the gRPC core
 * tunnels through http:// proxies only (CONNECT). It would skip an https://
 * one with a log line and go direct, so that is refused instead. */
const char *tc_grpc_proxy_problem(const char *proxy)
{
    return strncasecmp(proxy, "http://", 7) == 0 ? NULL
        : "the gRPC channel goes through http:// proxies only";
}

/* An application's name for the User-Agent: 1 to 64 printable ASCII
 * characters (spaces allowed: "shop/2.1 (+https://shop.example)"). */
static const char *user_agent_problem(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MAX_APP)
        return "1 to 64 printable ASCII characters expected";
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7E)
            return "1 to 64 printable ASCII characters expected";
    return NULL;
}

void tc_user_agent(const struct tc_options *o, char *buf, size_t len)
{
    if (o->user_agent)
        snprintf(buf, len, "%s %s", o->user_agent, OUR_AGENT);
    else
        snprintf(buf, len, "%s", OUR_AGENT);
}

static int is_host_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '.' || c == '-';
}

const char *tc_grpc_target(const char *simple, int insecure, char *target, size_t len, int *tls)
{
    static const char usage[] = "expected host:port, https://host:port or http://host:port";
    const char *p = simple, *host, *end, *port = "";
    size_t host_len;
    int bracket = 0;

    if (!*simple)
        return usage;
    for (const char *s = simple; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7F)
            return usage;
    if (strncmp(p, "https://", 8) == 0) {
        p += 8, *tls = 1;
    } else if (strncmp(p, "http://", 7) == 0) {
        p += 7, *tls = 0;
    } else if (strstr(p, "://")) {
        return "unknown scheme (http:// or https:// expected)";
    } else {
        *tls = !insecure;
    }
    if (*p == '[') {
        host = ++p;
        while (*p && (is_host_char(*p) || *p == ':'))
            p++;
        if (*p != ']')
            return usage;
        host_len = (size_t)(p - host);
        p++;
        bracket = 1;
    } else {
        host = p;
        while (is_host_char(*p))
            p++;
        host_len = (size_t)(p - host);
    }
    if (host_len == 0)
        return usage;
    if (*p == ':') {
        port = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == port || p - port > 5)
            return usage;
    }
    end = p;
    if (*end == '/')
        end++;
    if (*end)
        return usage;
    char hostbuf[256];
    if (host_len >= sizeof hostbuf)
        return usage;
    memcpy(hostbuf, host, host_len);
    hostbuf[host_len] = '\0';
    if (!*tls && !insecure && !tc_is_loopback(hostbuf))
        return "plaintext gRPC is allowed to loopback only (set insecure = true)";
    const char *fmt = bracket || strchr(hostbuf, ':') ? "[%s]:%.*s" : "%s:%.*s";
    int n = *port ? snprintf(target, len, fmt, hostbuf, (int)(p - port), port)
                  : snprintf(target, len, fmt, hostbuf, 3, *tls ? "443" : "80");
    if (n < 0 || (size_t)n >= len)
        return usage;
    return NULL;
}

/* Pushes opts[name] and returns whether it is there; raises when it is
 * there with a type other than t. */
static int get_field(lua_State *L, int opts, const char *name, int t, const char *fname)
{
    lua_getfield(L, opts, name);
    if (lua_isnil(L, -1))
        return 0;
    if (lua_type(L, -1) != t)
        luaL_error(L, "bad field '%s' to '%s' (%s expected, got %s)", name, fname,
                   lua_typename(L, t), luaL_typename(L, -1));
    return 1;
}

void tc_read_options(lua_State *L, int opts, struct tc_options *o, const char *fname)
{
    opts = lua_absindex(L, opts);
    memset(o, 0, sizeof *o);
    o->api = DEFAULT_API;
    o->simple = DEFAULT_SIMPLE;
    o->timeout = DEFAULT_TIMEOUT;
    o->language = DEFAULT_LANGUAGE;
    o->language_len = strlen(DEFAULT_LANGUAGE);
    /* Each value is popped at once: its string stays alive in opts. */
    if (get_field(L, opts, "key", LUA_TSTRING, fname))
        o->key = lua_tolstring(L, -1, &o->key_len);
    lua_pop(L, 1);
    if (get_field(L, opts, "api", LUA_TSTRING, fname))
        o->api = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (get_field(L, opts, "simple", LUA_TSTRING, fname))
        o->simple = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (get_field(L, opts, "timeout", LUA_TNUMBER, fname))
        o->timeout = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (get_field(L, opts, "language", LUA_TSTRING, fname))
        o->language = lua_tolstring(L, -1, &o->language_len);
    lua_pop(L, 1);
    if (get_field(L, opts, "ca_file", LUA_TSTRING, fname))
        o->ca_file = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (get_field(L, opts, "insecure", LUA_TBOOLEAN, fname))
        o->insecure = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (get_field(L, opts, "proxy", LUA_TSTRING, fname))
        o->proxy = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (get_field(L, opts, "user_agent", LUA_TSTRING, fname))
        o->user_agent = lua_tostring(L, -1);
    lua_pop(L, 1);
}

const char *tc_check_options(const struct tc_options *o, char *buf, size_t len, int *plain)
{
    const char *problem;
    char target[300];
    int tls;

    if (!o->key || o->key_len == 0)
        return "key: the API key is required";
    if ((problem = tc_key_problem(o->key, o->key_len)) != NULL)
        snprintf(buf, len, "key: %s", problem);
    else if ((problem = api_problem(o->api, o->insecure, plain)) != NULL)
        snprintf(buf, len, "api: %s", problem);
    else if ((problem = tc_grpc_target(o->simple, o->insecure, target, sizeof target, &tls)))
        snprintf(buf, len, "simple: %s", problem);
    else if ((problem = tc_timeout_problem(o->timeout)) != NULL)
        snprintf(buf, len, "timeout: %s", problem);
    else if ((problem = tc_language_problem(o->language, o->language_len)) != NULL)
        snprintf(buf, len, "language: %s", problem);
    else if (o->ca_file && access(o->ca_file, R_OK) != 0)
        snprintf(buf, len, "ca_file: cannot read %s", o->ca_file);
    else if (o->proxy && (problem = proxy_problem(o->proxy)) != NULL)
        snprintf(buf, len, "proxy: %s", problem); /* not quoted: it may hold a password */
    else if (o->user_agent && (problem = user_agent_problem(o->user_agent)) != NULL)
        snprintf(buf, len, "user_agent: %s", problem);
    else
        return NULL;
    return buf;
}

const char *tc_language_problem(const char *s, size_t n)
{
    if (n == 0 || n > MAX_LANGUAGE)
        return "not a language tag (1 to 35 printable characters)";
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7E)
            return "not a language tag (1 to 35 printable characters)";
    return NULL;
}

/* core.options(opts) -> options | nil, err: the client's options with the
 * defaults filled in, checked; raises on a field of the wrong type. */
int core_options(lua_State *L)
{
    struct tc_options o;
    char buf[320];
    const char *problem;
    int plain;

    luaL_checktype(L, 1, LUA_TTABLE);
    tc_read_options(L, 1, &o, "new");
    if ((problem = tc_check_options(&o, buf, sizeof buf, &plain)) != NULL)
        return tc_fail(L, TC_EINVALID, -1, "%s", problem);
    lua_createtable(L, 0, 9);
    lua_pushlstring(L, o.key, o.key_len);
    lua_setfield(L, -2, "key");
    lua_pushstring(L, o.api);
    lua_setfield(L, -2, "api");
    lua_pushstring(L, o.simple);
    lua_setfield(L, -2, "simple");
    if (o.timeout == (lua_Number)(lua_Integer)o.timeout)
        lua_pushinteger(L, (lua_Integer)o.timeout);
    else
        lua_pushnumber(L, o.timeout);
    lua_setfield(L, -2, "timeout");
    lua_pushlstring(L, o.language, o.language_len);
    lua_setfield(L, -2, "language");
    if (o.ca_file) {
        lua_pushstring(L, o.ca_file);
        lua_setfield(L, -2, "ca_file");
    }
    lua_pushboolean(L, o.insecure);
    lua_setfield(L, -2, "insecure");
    if (o.proxy) {
        lua_pushstring(L, o.proxy);
        lua_setfield(L, -2, "proxy");
    }
    if (o.user_agent) {
        lua_pushstring(L, o.user_agent);
        lua_setfield(L, -2, "user_agent");
    }
    return 1;
}

/* core.check_timeout(v, name) -> v | nil, err: the one timeout rule, for
 * the timeouts the Lua side keeps (deadline, list_timeout). */
int core_check_timeout(lua_State *L)
{
    const char *name = luaL_checkstring(L, 2);

    if (lua_type(L, 1) != LUA_TNUMBER || tc_timeout_problem(lua_tonumber(L, 1)))
        return tc_fail(L, TC_EINVALID, -1, "%s: a number of seconds in (0, 86400] expected",
                       name);
    lua_settop(L, 1);
    return 1;
}

/* core.grpc_target(simple [, insecure]) -> "host:port", tls | nil, err */
int core_grpc_target(lua_State *L)
{
    const char *simple = luaL_checkstring(L, 1);
    char target[300];
    int tls;
    const char *problem = tc_grpc_target(simple, lua_toboolean(L, 2), target, sizeof target, &tls);

    if (problem)
        return tc_fail(L, TC_EINVALID, -1, "simple: %s", problem);
    lua_pushstring(L, target);
    lua_pushboolean(L, tls);
    return 2;
}
