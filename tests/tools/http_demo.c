/*
 * gw-http-demo: gateway/http_server.c on a libuv loop with a few routes, for
 * tests/integration/test_http_server.py (a test driver, not installed).
 *
 *   gw-http-demo PORT [CERT KEY]      (PORT 0: any free port)
 *
 * Routes:
 *   GET|HEAD|POST /echo, /echo/...  the request as JSON (method, path, subpath,
 *                                   query, headers, client, body); sets a cookie
 *   POST /post-only                 {"ok":true}
 *   GET /slow                       answers after 300 ms (a uv_timer: asynchronous)
 *   GET /stats                      gw_http_stats as JSON
 *   POST /burst?n=N&size=B          broadcasts N "burst" events of B bytes at once
 *   POST /burst?n=N&text=T          ... or of the text T
 *   GET /static.txt                 const text (ETag, answered on MHD's thread)
 *   GET /events                     SSE; "counter" {"n":N} every 200 ms;
 *                                   ?deny=1 is refused 401
 * Environment (tests): GW_HTTP_HOST (default 127.0.0.1), GW_HTTP_HEARTBEAT_MS,
 * GW_HTTP_MAX_CONNECTIONS, GW_HTTP_SSE_QUEUE, GW_HTTP_MAX_SSE.
 * Prints "listening port=N" on stdout when ready; SIGTERM/SIGINT close the
 * server and exit 0.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http_server.h"
#include "log.h"

#define SLOW_MS 300
#define COUNTER_MS 200

static const char static_text[] = "static text from campusgw\n";

struct slow {
    uv_timer_t timer;
    struct gw_http_request *req; /* NULL once answered */
    struct app *app;
    struct slow *prev, *next;
};

struct app {
    uv_loop_t *loop;
    struct gw_http_server *http;
    uv_signal_t sigterm, sigint;
    uv_timer_t counter;
    struct slow *slows;
    long n;
    bool closing;
};

static unsigned env_uint(const char *name)
{
    const char *v = getenv(name);
    return v ? (unsigned)strtoul(v, NULL, 10) : 0;
}

static void respond_json(struct gw_http_request *req, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text) {
        gw_http_respond(req, NULL);
        return;
    }
    struct gw_http_response *r = gw_http_response_new(status, "application/json");
    if (r) {
        gw_http_response_take_body(r, text, strlen(text));
    } else {
        free(text);
    }
    gw_http_respond(req, r);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static void on_echo(void *ctx, struct gw_http_request *req)
{
    (void)ctx;
    json_t *query = json_array();
    for (size_t i = 0; i < req->nargs; i++) {
        json_array_append_new(query, json_pack("[ss]", req->args[i].key, req->args[i].value));
    }
    json_t *headers = json_pack(
        "{so? so? so? so? so?}", "cookie", str_or_null(req->cookie), "authorization",
        str_or_null(req->authorization), "csrf_token", str_or_null(req->csrf_token), "content_type",
        str_or_null(req->content_type), "accept_language", str_or_null(req->accept_language));
    json_t *body = json_stringn(req->body, req->body_len); /* NULL when not UTF-8 */
    json_t *j = json_pack("{ss ss ss so so ss sb sb so? sI}", "method", req->method, "path",
                          req->path, "subpath", req->subpath, "query", query, "headers", headers,
                          "client", req->client_addr, "loopback", req->client_loopback, "https",
                          req->https, "body", body, "body_len", (json_int_t)req->body_len);
    struct gw_http_response *r = gw_http_response_new(200, "application/json");
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!r || !text) {
        free(text);
        gw_http_response_free(r);
        gw_http_respond(req, NULL);
        return;
    }
    gw_http_response_take_body(r, text, strlen(text));
    gw_http_response_add_header(r, "Set-Cookie", "demo=1; HttpOnly; SameSite=Strict; Path=/");
    gw_http_response_add_header(r, "Set-Cookie", "second=2; Path=/");
    /* Must be refused: a header injection and a header the server owns. */
    if (gw_http_response_add_header(r, "X-Bad", "a\r\nInjected: yes") != -EINVAL ||
        gw_http_response_add_header(r, "Content-Length", "1") != -EINVAL) {
        gw_error("demo", "bad headers were accepted");
        abort();
    }
    gw_http_response_add_header(r, "X-Demo", "yes");
    gw_http_respond(req, r);
}

static void on_post_only(void *ctx, struct gw_http_request *req)
{
    (void)ctx;
    gw_http_respond_text(req, 200, "application/json", "{\"ok\":true}");
}

static void on_slow_closed(uv_handle_t *h)
{
    free(h->data);
}

static void slow_done(struct slow *sl, int status)
{
    struct app *app = sl->app;
    if (sl->prev) {
        sl->prev->next = sl->next;
    } else {
        app->slows = sl->next;
    }
    if (sl->next) {
        sl->next->prev = sl->prev;
    }
    if (status == 200) {
        gw_http_respond_text(sl->req, 200, "application/json", "{\"slow\":true}");
    } else {
        gw_http_respond_error(sl->req, status, "shutting down");
    }
    sl->req = NULL;
    uv_close((uv_handle_t *)&sl->timer, on_slow_closed);
}

static void on_slow_timer(uv_timer_t *t)
{
    slow_done(t->data, 200);
}

static void on_slow(void *ctx, struct gw_http_request *req)
{
    struct app *app = ctx;
    struct slow *sl = calloc(1, sizeof(*sl));
    if (!sl) {
        gw_http_respond_error(req, 503, "out of memory");
        return;
    }
    sl->req = req;
    sl->app = app;
    sl->next = app->slows;
    if (app->slows) {
        app->slows->prev = sl;
    }
    app->slows = sl;
    uv_timer_init(app->loop, &sl->timer);
    sl->timer.data = sl;
    uv_timer_start(&sl->timer, on_slow_timer, SLOW_MS, 0);
}

static void on_stats(void *ctx, struct gw_http_request *req)
{
    struct app *app = ctx;
    struct gw_http_stats st;
    gw_http_stats(app->http, &st);
    respond_json(req, 200,
                 json_pack("{sI sI sI si si}", "requests", (json_int_t)st.requests, "rejected",
                           (json_int_t)st.rejected, "sse_dropped", (json_int_t)st.sse_dropped,
                           "sse_clients", (int)st.sse_clients, "pending", (int)st.pending));
}

static const char *arg(const struct gw_http_request *req, const char *key)
{
    for (size_t i = 0; i < req->nargs; i++) {
        if (strcmp(req->args[i].key, key) == 0) {
            return req->args[i].value;
        }
    }
    return NULL;
}

static void on_burst(void *ctx, struct gw_http_request *req)
{
    struct app *app = ctx;
    const char *n_arg = arg(req, "n"), *size_arg = arg(req, "size"), *text = arg(req, "text");
    long n = n_arg ? strtol(n_arg, NULL, 10) : 0, size = size_arg ? strtol(size_arg, NULL, 10) : 0;
    if (n <= 0 || n > 10000 || (!text && (size <= 0 || size > 1000000))) {
        gw_http_respond_error(req, 400, "n and size or text");
        return;
    }
    char *data = text ? strdup(text) : malloc((size_t)size + 1);
    if (!data) {
        gw_http_respond_error(req, 503, "out of memory");
        return;
    }
    if (!text) {
        memset(data, 'x', (size_t)size);
        data[size] = '\0';
    }
    int reached = 0;
    for (long i = 0; i < n; i++) {
        reached += gw_http_sse_broadcast(app->http, "burst", data);
    }
    free(data);
    respond_json(req, 200, json_pack("{si}", "reached", reached));
}

static void on_events_open(void *ctx, struct gw_http_request *req)
{
    (void)ctx;
    const char *deny = arg(req, "deny");
    if (deny && strcmp(deny, "1") == 0) {
        gw_http_respond_error(req, 401, "not logged in");
        return;
    }
    gw_http_sse_accept(req);
}

static void on_counter(uv_timer_t *t)
{
    struct app *app = t->data;
    char data[64];
    snprintf(data, sizeof(data), "{\"n\":%ld}", ++app->n);
    gw_http_sse_broadcast(app->http, "counter", data);
}

static void on_http_closed(void *ctx)
{
    struct app *app = ctx;
    app->http = NULL;
    /* Requests still held here were answered 503 by the close; answering frees them. */
    while (app->slows) {
        uv_timer_stop(&app->slows->timer);
        slow_done(app->slows, 503);
    }
    uv_close((uv_handle_t *)&app->counter, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *app = h->data;
    if (app->closing) {
        return;
    }
    app->closing = true;
    gw_info("demo", "signal %d: closing", signum);
    uv_timer_stop(&app->counter);
    gw_http_close(app->http, on_http_closed, app);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: gw-http-demo PORT [CERT KEY]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct app app = {.loop = uv_default_loop()};
    struct gw_http_server_options opt = {
        .host = getenv("GW_HTTP_HOST") ? getenv("GW_HTTP_HOST") : "127.0.0.1",
        .port = atoi(argv[1]),
        .cert_file = argc == 4 ? argv[2] : NULL,
        .key_file = argc == 4 ? argv[3] : NULL,
        .max_connections = env_uint("GW_HTTP_MAX_CONNECTIONS"),
        .max_sse_clients = env_uint("GW_HTTP_MAX_SSE"),
        .sse_queue_bytes = env_uint("GW_HTTP_SSE_QUEUE"),
        .sse_heartbeat_ms = env_uint("GW_HTTP_HEARTBEAT_MS"),
    };
    app.http = gw_http_new(app.loop, &opt);
    if (!app.http) {
        return 1;
    }
    int rc = 0;
    rc = rc ? rc : gw_http_route(app.http, NULL, "/echo", on_echo, &app);
    rc = rc ? rc : gw_http_route(app.http, NULL, "/echo/...", on_echo, &app);
    rc = rc ? rc : gw_http_route(app.http, "POST", "/post-only", on_post_only, &app);
    rc = rc ? rc : gw_http_route(app.http, "GET", "/slow", on_slow, &app);
    rc = rc ? rc : gw_http_route(app.http, "GET", "/stats", on_stats, &app);
    rc = rc ? rc : gw_http_route(app.http, "POST", "/burst", on_burst, &app);
    rc = rc ? rc
            : gw_http_static(app.http, "/static.txt", "text/plain; charset=utf-8", static_text,
                             sizeof(static_text) - 1);
    rc = rc ? rc : gw_http_sse(app.http, "/events", on_events_open, &app);
    /* Registration rules: a duplicate and a bad path are refused. */
    if (rc == 0 && (gw_http_route(app.http, "GET", "/echo", on_echo, &app) != -EEXIST ||
                    gw_http_route(app.http, "GET", "no-slash", on_echo, &app) != -EINVAL)) {
        gw_error("demo", "route registration checks failed");
        rc = -EINVAL;
    }
    rc = rc ? rc : gw_http_start(app.http);
    if (rc == 0 && gw_http_route(app.http, "GET", "/late", on_echo, &app) != -EBUSY) {
        gw_error("demo", "a route was accepted after start");
        rc = -EINVAL;
    }
    if (rc < 0) {
        gw_error("demo", "cannot set up the server: %s", strerror(-rc));
        gw_http_close(app.http, NULL, NULL);
        uv_run(app.loop, UV_RUN_DEFAULT);
        uv_loop_close(app.loop);
        return 1;
    }
    uv_signal_init(app.loop, &app.sigterm);
    uv_signal_init(app.loop, &app.sigint);
    app.sigterm.data = app.sigint.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_timer_init(app.loop, &app.counter);
    app.counter.data = &app;
    uv_timer_start(&app.counter, on_counter, COUNTER_MS, COUNTER_MS);
    printf("listening port=%d\n", gw_http_port(app.http));
    uv_run(app.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(app.loop);
    if (rc != 0) {
        gw_error("demo", "handles left open at exit: %s", uv_strerror(rc));
        return 1;
    }
    gw_info("demo", "stopped cleanly");
    return 0;
}
