/*
 * main.c: the tc-sandbox program: options, start-up and clean shutdown.
 *
 * It loads the catalog, starts the REST listener (rest.c) and the gRPC
 * listener (grpc.c), both over TLS with --tls-cert / --tls-key (tls.c),
 * prints one ready line on stdout and waits for SIGINT or SIGTERM, which
 * stop everything and free it before exiting 0. Bad options or a bad
 * catalog give one message on stderr and exit status 2. --faults makes
 * both listeners fail on purpose (faults.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "faults.h"
#include "grpc.h"
#include "grpc_methods.h"
#include "rest.h"
#include "store.h"
#include "tls.h"
#include "util.h"

#define DEFAULT_HTTP "127.0.0.1:8080"
#define DEFAULT_GRPC "127.0.0.1:50051"
#define DEFAULT_KEY "9bd8359943b545500278875r49c5b96d"
#define DEFAULT_EXPIRE 900
#define MAX_KEYS 64

static const char usage[] =
    "Usage: tc-sandbox [OPTION]...\n"
    "A stateful local Ticketscloud: tc-simple v3 gRPC and the v2 orders REST API\n"
    "on loopback, serving a catalog of events from a JSON file.\n"
    "\n"
    "Options:\n"
    "  --catalog FILE     the catalog to serve (default: examples/catalog.json from\n"
    "                     the current directory or next to the build directory,\n"
    "                     else PREFIX/share/ticketscloud/catalog.json when installed)\n"
    "  --http ADDR:PORT   REST listener (default " DEFAULT_HTTP "); port 0 picks a free port\n"
    "  --grpc ADDR:PORT   gRPC listener (default " DEFAULT_GRPC "); port 0 picks a free\n"
    "                     port\n"
    "  --tls-cert FILE    with --tls-key: both listeners speak TLS (HTTPS and gRPC over\n"
    "                     TLS) with this PEM certificate, the server's own first, then\n"
    "                     any intermediates. Default: plaintext\n"
    "  --tls-key FILE     the certificate's private key (PEM, not encrypted)\n"
    "  --key-file FILE    the API keys to accept, one a line (blank lines and lines\n"
    "                     starting with # are skipped); repeat for several files\n"
    "  --key KEY          an API key to accept; repeat for several. Every local user\n"
    "                     sees a command line (ps): prefer --key-file or\n"
    "                     $TC_SANDBOX_KEY for a key that matters\n"
    "                     The keys are those of --key-file, --key and\n"
    "                     $TC_SANDBOX_KEY together; with none of them, the\n"
    "                     documentation's sample key " DEFAULT_KEY "\n"
    "  --expire SECONDS   lifetime of an executed order before it expires and its\n"
    "                     tickets go back on sale (default 900)\n"
    "  --seed N           seed for order ids, barcodes and codes (default: time based)\n"
    "  --balance MONEY    the distributor's money, e.g. 1000.00: completing an order\n"
    "                     spends its full amount and fails with \"Not enough money\"\n"
    "                     when short (default: unlimited)\n"
    "  --faults SPEC      fail on purpose, for testing clients against a bad network:\n"
    "                     ROUTE:FAULT=PROBABILITY entries separated by commas, e.g.\n"
    "                     'orders.create:drop_after=0.1,*:slow=0.02@1500'. At most\n"
    "                     one fault per request (the first entry whose running total\n"
    "                     of probabilities exceeds one draw); the draws come from\n"
    "                     --seed, so the same requests get the same faults.\n"
    "                     ROUTE: orders.create, orders.patch, orders.get, orders.list,\n"
    "                     refunds.create, refunds.patch, refunds.get, refunds.list,\n"
    "                     promocodes.check, mosbilet, * (all of these REST routes),\n"
    "                     grpc.METHOD (grpc.Seats, grpc.Events...), grpc.* (all ten)\n"
    "                     FAULT on REST routes:\n"
    "                       500, 502, 503   that status with {\"errors\": [...]};\n"
    "                                       the request is not applied\n"
    "                       drop_before     the connection is closed, no answer;\n"
    "                                       the request is not applied\n"
    "                       drop_after      the request is applied, then the\n"
    "                                       connection is closed without the answer\n"
    "                       slow=P@MS       applied, answered MS ms (1..60000) later\n"
    "                     FAULT on gRPC routes:\n"
    "                       unavailable     about half the messages, then the\n"
    "                                       status UNAVAILABLE\n"
    "                     PROBABILITY: 0 to 1, at most 9 digits after the point.\n"
    "                     Each fault is logged on stderr, and counted at exit.\n"
    "  --help             show this help and exit\n"
    "  --version          show the version and exit\n"
    "\n"
    "When both listeners are up it prints one line on stdout:\n"
    "  tc-sandbox ready http=http://127.0.0.1:PORT grpc=http://127.0.0.1:PORT\n"
    "or, with TLS:\n"
    "  tc-sandbox ready http=https://127.0.0.1:PORT grpc=127.0.0.1:PORT tls\n"
    "and logs one line per REST request on stderr. SIGINT or SIGTERM stop it\n"
    "(exit status 0). Bad options or catalog: exit status 2.\n"
    "\n"
    "REST: POST/GET /v2/resources/orders, GET/PATCH /v2/resources/orders/ID,\n"
    "POST /v2/resources/orders/export, POST /v2/services/promocodes/check,\n"
    "POST/GET /v2/resources/refund_requests, GET/PATCH .../refund_requests/ID,\n"
    "PUT /v2/services/orders/mosbilet/user_data, with\n"
    "the header \"Authorization: key KEY\". The header \"X-Sandbox-Delay: MS\"\n"
    "(0..10000) on a PATCH holds the order busy for that long before the change\n"
    "is applied: other changes of that order meanwhile get 409.\n"
    "gRPC: /v3.Simple/<Method> with the bare key in the \"authorization\" metadata;\n"
    "grpc.health.v1.Health (Check, Watch) and server reflection (v1, v1alpha)\n"
    "without a key. The limits on connections, requests and calls are in\n"
    "docs/sandbox.md (\"Limits and timeouts\").\n";

struct options {
    const char *catalog, *http, *grpc;
    const char *tls_cert, *tls_key;
    const char *keys[MAX_KEYS];
    size_t nkeys;
    char *read_keys[MAX_KEYS]; /* the keys of --key-file: ours to wipe and free */
    size_t nread;
    int64_t expire;
    uint64_t seed;
    int64_t balance;
    const char *faults_spec;
    struct faults *faults; /* NULL without --faults */
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "tc-sandbox: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see tc-sandbox --help)\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-' || *s == '+' || *s == ' ') return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* Adds the keys of a --key-file: one a line, surrounding blanks ignored,
 * blank lines and lines starting with '#' skipped. Errors never quote a
 * key. Returns 0, or 2 after a usage message. */
static int read_key_file(struct options *o, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tc-sandbox: --key-file %s: %s (see tc-sandbox --help)\n", path,
                strerror(errno));
        return 2;
    }
    char line[TC_KEY_MAX + 64];
    size_t lineno = 0, found = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            fprintf(stderr, "tc-sandbox: --key-file %s: line %zu is too long for a key\n", path,
                    lineno);
            rc = 2;
            break;
        }
        char *start = line;
        while (*start == ' ' || *start == '\t') start++;
        while (len > 0 && strchr(" \t\r\n", line[len - 1])) line[--len] = '\0';
        if (!*start || *start == '#') continue;
        const char *problem = tc_key_problem(start, strlen(start));
        if (problem) {
            fprintf(stderr, "tc-sandbox: --key-file %s: line %zu: %s\n", path, lineno, problem);
            rc = 2;
            break;
        }
        if (o->nkeys == MAX_KEYS) {
            fprintf(stderr, "tc-sandbox: too many keys (at most %d)\n", MAX_KEYS);
            rc = 2;
            break;
        }
        char *key = strdup(start);
        if (!key) {
            fprintf(stderr, "tc-sandbox: out of memory\n");
            rc = 2;
            break;
        }
        o->read_keys[o->nread++] = key;
        o->keys[o->nkeys++] = key;
        found++;
    }
    tc_wipe(line, sizeof line);
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "tc-sandbox: --key-file %s: cannot read it\n", path);
        rc = 2;
    }
    fclose(f);
    if (rc == 0 && found == 0) {
        fprintf(stderr, "tc-sandbox: --key-file %s has no key (see tc-sandbox --help)\n", path);
        rc = 2;
    }
    return rc;
}

/* Returns 0 to run, 1 for --help/--version (exit 0), 2 for a usage error. */
static int parse_options(int argc, char **argv, struct options *o)
{
    enum {
        O_CATALOG = 1, O_HTTP, O_GRPC, O_TLS_CERT, O_TLS_KEY, O_KEY, O_KEY_FILE, O_EXPIRE, O_SEED,
        O_BALANCE,
        O_FAULTS, O_HELP, O_VERSION
    };
    static const struct option longopts[] = {
        { "catalog", required_argument, NULL, O_CATALOG },
        { "http", required_argument, NULL, O_HTTP },
        { "grpc", required_argument, NULL, O_GRPC },
        { "tls-cert", required_argument, NULL, O_TLS_CERT },
        { "tls-key", required_argument, NULL, O_TLS_KEY },
        { "key", required_argument, NULL, O_KEY },
        { "key-file", required_argument, NULL, O_KEY_FILE },
        { "expire", required_argument, NULL, O_EXPIRE },
        { "seed", required_argument, NULL, O_SEED },
        { "balance", required_argument, NULL, O_BALANCE },
        { "faults", required_argument, NULL, O_FAULTS },
        { "help", no_argument, NULL, O_HELP },
        { "version", no_argument, NULL, O_VERSION },
        { NULL, 0, NULL, 0 },
    };
    uint64_t n;
    int c, rc;
    o->http = DEFAULT_HTTP;
    o->grpc = DEFAULT_GRPC;
    o->expire = DEFAULT_EXPIRE;
    o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    o->balance = -1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case O_CATALOG: o->catalog = optarg; break;
        case O_HTTP: o->http = optarg; break;
        case O_GRPC: o->grpc = optarg; break;
        case O_TLS_CERT: o->tls_cert = optarg; break;
        case O_TLS_KEY: o->tls_key = optarg; break;
        case O_KEY:
            if (!*optarg) return usage_error("--key must not be empty%s", "");
            if (o->nkeys == MAX_KEYS) return usage_error("too many --key options%s", "");
            o->keys[o->nkeys++] = optarg;
            break;
        case O_KEY_FILE:
            if ((rc = read_key_file(o, optarg)) != 0) return rc;
            break;
        case O_EXPIRE:
            if (!parse_u64(optarg, &n) || n < 1 || n > 31536000)
                return usage_error("--expire wants whole seconds from 1 to 31536000, not '%s'",
                                   optarg);
            o->expire = (int64_t)n;
            break;
        case O_SEED:
            if (!parse_u64(optarg, &n)) return usage_error("--seed wants a number, not '%s'", optarg);
            o->seed = n;
            break;
        case O_BALANCE:
            if (!parse_money(optarg, &o->balance))
                return usage_error("--balance wants money such as 1000.00, not '%s'", optarg);
            break;
        case O_FAULTS:
            if (o->faults_spec)
                return usage_error("--faults given twice; join its entries with commas%s", "");
            o->faults_spec = optarg;
            break;
        case O_HELP: fputs(usage, stdout); return 1;
        case O_VERSION: printf("tc-sandbox %s\n", TC_VERSION); return 1;
        case ':': return usage_error("%s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->tls_cert != !o->tls_key)
        return usage_error("--tls-cert and --tls-key go together%s", "");
    const char *env_key = getenv("TC_SANDBOX_KEY");
    if (env_key && *env_key) {
        const char *problem = tc_key_problem(env_key, strlen(env_key));
        if (problem) return usage_error("$TC_SANDBOX_KEY: %s", problem);
        if (o->nkeys == MAX_KEYS) return usage_error("too many keys (at most 64)%s", "");
        o->keys[o->nkeys++] = env_key;
    }
    if (o->nkeys == 0) o->keys[o->nkeys++] = DEFAULT_KEY;
    if (o->faults_spec) {
        /* Parsed last: the draws are seeded from --seed, wherever it is. */
        char err[768];
        o->faults = faults_parse(o->faults_spec, o->seed, err, sizeof err);
        if (!o->faults) return usage_error("%s", err);
    }
    return 0;
}

/* The default catalog: examples/catalog.json in the current directory, else
 * in the source tree the binary was built in (build/tc-sandbox or
 * build/<name>/tc-sandbox), else where `make install` puts it
 * (PREFIX/bin/tc-sandbox reads PREFIX/share/ticketscloud/catalog.json). */
static const char *find_default_catalog(char *buf, size_t len)
{
    static const char *const rel[] = { "/../examples/catalog.json",
                                       "/../../examples/catalog.json",
                                       "/../share/ticketscloud/catalog.json" };
    char exe[PATH_MAX];
    if (access("examples/catalog.json", R_OK) == 0) return "examples/catalog.json";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        const char *dir = dirname(exe);
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(buf, len, "%s%s", dir, rel[i]);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    return NULL;
}

/* Waits for SIGINT or SIGTERM, which main() blocked in every thread. */
static void wait_for_stop(const sigset_t *set)
{
    int sig;
    while (sigwait(set, &sig) != 0) continue;
    fprintf(stderr, "tc-sandbox: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
}

/* Everything after the options; returns the exit status. */
static int run(const struct options *opt)
{
    char err[768], pathbuf[PATH_MAX + 64];

    /* Block the stop signals before any thread starts (gRPC starts its own
     * in grpc_init(), called by methods_load()), so every thread inherits
     * the mask and only sigwait() below receives them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    char http_host[64], grpc_host[64];
    int port;
    if (!split_addr(opt->http, http_host, sizeof http_host, &port))
        return usage_error("--http wants ADDR:PORT such as 127.0.0.1:8080, not '%s'", opt->http);
    if (!split_addr(opt->grpc, grpc_host, sizeof grpc_host, &port))
        return usage_error("--grpc wants ADDR:PORT such as 127.0.0.1:50051, not '%s'", opt->grpc);

    const char *catalog_path = opt->catalog;
    if (!catalog_path) catalog_path = find_default_catalog(pathbuf, sizeof pathbuf);
    if (!catalog_path) {
        fprintf(stderr, "tc-sandbox: no catalog: examples/catalog.json not found; "
                        "pass --catalog FILE\n");
        return 2;
    }
    struct catalog *cat = catalog_load(catalog_path, err, sizeof err);
    if (!cat) {
        fprintf(stderr, "tc-sandbox: %s\n", err);
        return 2;
    }
    struct sandbox_options so = {
        .keys = opt->keys, .nkeys = opt->nkeys, .expire = opt->expire,
        .seed = opt->seed, .balance = opt->balance,
    };
    struct sandbox *sb = sandbox_new(cat, &so);
    if (!sb) {
        fprintf(stderr, "tc-sandbox: out of memory\n");
        return 1;
    }
    /* The gRPC answers are built from the catalog before anything listens:
     * an entity that does not fit its v3 message is a catalog error. */
    struct methods *methods = methods_load(sb, err, sizeof err);
    if (!methods) {
        fprintf(stderr, "tc-sandbox: catalog %s: %s\n", catalog_path, err);
        sandbox_free(sb);
        return 2;
    }
    /* The heap's free pages, the catalog's parts let go of among them, go
     * back to the system rather than stay resident until reused. */
    malloc_trim(0);
    /* Kept until exit: libmicrohttpd refers to it. */
    struct sandbox_tls tls_files = { NULL, NULL }, *tls = NULL;
    if (opt->tls_cert) {
        if (!tls_load(&tls_files, opt->tls_cert, opt->tls_key, err, sizeof err)) {
            fprintf(stderr, "tc-sandbox: %s\n", err);
            methods_free(methods);
            sandbox_free(sb);
            return 2;
        }
        tls = &tls_files;
    }

    int http_port = 0, grpc_port = 0;
    struct rest *rest = rest_start(sb, opt->faults, opt->http, tls, &http_port, err, sizeof err);
    if (!rest) {
        fprintf(stderr, "tc-sandbox: --http %s: %s\n", opt->http, err);
        methods_free(methods);
        sandbox_free(sb);
        tls_free(&tls_files);
        return 2;
    }
    struct grpc_listener *grpc = grpc_listener_start(sb, methods, opt->faults, opt->grpc, tls,
                                                     &grpc_port, err, sizeof err);
    if (!grpc) {
        fprintf(stderr, "tc-sandbox: --grpc %s: %s\n", opt->grpc, err);
        sandbox_stop(sb);
        rest_stop(rest);
        sandbox_free(sb);
        tls_free(&tls_files);
        return 2;
    }

    /* Each target works as it is: the http:// of the plaintext gRPC target is
     * what tells a client (simple = ...) not to speak TLS. */
    printf("tc-sandbox ready http=%s://%s:%d grpc=%s%s:%d%s\n", tls ? "https" : "http", http_host,
           http_port, tls ? "" : "http://", grpc_host, grpc_port, tls ? " tls" : "");
    fflush(stdout);
    fprintf(stderr, "tc-sandbox: catalog %s: %zu events, %zu sets, %zu tickets\n", catalog_path,
            cat->nevents, cat->nsets, cat->ntickets);

    wait_for_stop(&stop);

    sandbox_stop(sb);
    if (opt->faults) faults_stop(opt->faults);
    grpc_listener_stop(grpc);
    rest_stop(rest);
    if (opt->faults) faults_report(opt->faults);
    sandbox_free(sb);
    tls_free(&tls_files);
    return 0;
}

int main(int argc, char **argv)
{
    struct options opt = { 0 };
    int rc = parse_options(argc, argv, &opt);
    if (rc == 0) rc = run(&opt);
    else rc = rc == 1 ? 0 : 2;
    faults_free(opt.faults);
    for (size_t i = 0; i < opt.nread; i++) tc_wipe_free(opt.read_keys[i]);
    return rc;
}
