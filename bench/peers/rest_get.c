/*
 * rest_get.c: the bare C peer of the module's REST client, for
 * bench/peers.lua. N GETs of one order over one keep-alive connection
 * (one libcurl easy handle), each answer parsed with cJSON and checked
 * (status 200, data.id is the order asked for). It times its own loop, so
 * start-up is not counted, and prints one line:
 *
 *   n=N wall=SECONDS cpu=SECONDS hwm0=KB hwm=KB
 *
 *   rest_get URL KEY ORDER_ID N
 */
#define _POSIX_C_SOURCE 200809L
#include <cJSON.h>
#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct buffer {
    char *data;
    size_t len, cap;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct buffer *b = userdata;
    size_t n = size * nmemb;

    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the process (all threads) and its peak RSS so far in kB. */
static double cpu(long *maxrss)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    if (maxrss)
        *maxrss = ru.ru_maxrss;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* One GET; returns 0 when the answer is the order asked for. */
static int get(CURL *curl, struct buffer *b, const char *id)
{
    long status = 0;

    b->len = 0;
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        fprintf(stderr, "rest_get: %s\n", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || !b->data) {
        fprintf(stderr, "rest_get: HTTP %ld\n", status);
        return -1;
    }
    cJSON *doc = cJSON_ParseWithLength(b->data, b->len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(data, "id");
    int ok = cJSON_IsString(got) && strcmp(got->valuestring, id) == 0;
    cJSON_Delete(doc);
    if (!ok) {
        fprintf(stderr, "rest_get: the answer is not order %s\n", id);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: rest_get URL KEY ORDER_ID N\n");
        return 2;
    }
    const char *base = argv[1], *key = argv[2], *id = argv[3];
    long n = strtol(argv[4], NULL, 10);
    char url[512], auth[300];
    struct buffer body = { NULL, 0, 0 };
    struct curl_slist *headers = NULL, *h;

    if (n < 1 || snprintf(url, sizeof url, "%s/v2/resources/orders/%s", base, id) >= (int)sizeof url ||
        snprintf(auth, sizeof auth, "Authorization: key %s", key) >= (int)sizeof auth) {
        fprintf(stderr, "rest_get: bad arguments\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    CURL *curl = curl_easy_init();
    if (!curl)
        return 1;
    if (!(h = curl_slist_append(headers, auth)) || !(headers = h) ||
        !(h = curl_slist_append(headers, "Accept: application/json")) || !(headers = h)) {
        fprintf(stderr, "rest_get: out of memory\n");
        return 1;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);

    /* One request first: the connection is opened outside the timing. */
    if (get(curl, &body, id))
        return 1;
    long hwm0, hwm;
    double cpu0 = cpu(&hwm0), t0 = now();
    for (long i = 0; i < n; i++)
        if (get(curl, &body, id))
            return 1;
    double wall = now() - t0, used = cpu(&hwm) - cpu0;
    printf("n=%ld wall=%.6f cpu=%.6f hwm0=%ld hwm=%ld\n", n, wall, used, hwm0, hwm);

    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    free(body.data);
    curl_global_cleanup();
    return 0;
}
