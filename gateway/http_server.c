#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/*
 * Threads. MHD's internal polling thread runs on_access, on_completed, the SSE
 * reader and its free callback; the loop thread runs everything public. They
 * share only what `lock` guards: the queue of requests for the loop, each
 * conn's state and answer once it has left MHD's hands, the SSE client list and
 * queues, `stopping` and the counters. Routes are fixed before MHD starts
 * (pthread_create orders those writes before the thread reads them).
 *
 * Suspend/resume. A connection is suspended by MHD's thread, always while
 * holding `lock` and in the same critical section that hands the connection
 * to the loop (queued request, empty SSE queue), so the loop can never see it
 * before it is suspended. The loop resumes it after changing the state under
 * `lock` and releasing `lock`: a suspended connection gets no MHD callbacks
 * and is never freed by MHD (we resume every one before MHD_stop_daemon), so
 * the pointer stays good until the resume. microhttpd.h (0.9.75) on
 * MHD_resume_connection: "It is safe to resume a suspended connection at any
 * time" (it takes the daemon's cleanup mutex and signals the daemon's
 * inter-thread channel, which MHD_ALLOW_SUSPEND_RESUME sets up: "Enable
 * suspend/resume functions, which also implies setting up ITC to signal
 * resume"); on MHD_suspend_connection: "The only safe way to call this
 * function is to call it from the MHD_AccessHandlerCallback or
 * MHD_ContentReaderCallback", which is where we call it. The loop never holds
 * `lock` while calling into MHD, so the only lock order is lock -> MHD's.
 */

#define DEFAULT_MAX_CONNECTIONS 128
#define DEFAULT_CONN_MEMORY (32 * 1024)
#define DEFAULT_MAX_BODY (16 * 1024)
#define DEFAULT_MAX_PATH 512
#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_MAX_SSE 32
#define DEFAULT_SSE_QUEUE (256 * 1024)
#define DEFAULT_HEARTBEAT_MS 15000
#define MAX_ARGS 64
#define SSE_BLOCK 4096
#define CLOSE_GRACE_MS 2000
#define CLOSE_POLL_MS 10
#define LOG_BURST 20 /* MHD log lines per window, then counted */
#define LOG_WINDOW_S 60
#define PEM_MAX (1 << 20)
#define MAX_DISCARD (1 << 20) /* of a chunked body past the limit, before we hang up */

static const char *const security_headers[][2] = {
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "same-origin"},
    {"X-Frame-Options", "DENY"},
    {"Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'; object-src 'none'"},
};

/* Headers MHD or this file set: a handler may not. */
static const char *const reserved_headers[] = {"Content-Type", "Content-Length",
                                               "Transfer-Encoding", "Connection", "Date"};

enum route_kind { ROUTE_HANDLER, ROUTE_STATIC, ROUTE_SSE };

struct route {
    enum route_kind kind;
    char *method; /* NULL: GET, HEAD and POST */
    char *path;   /* exact path, or the prefix (with its final '/') */
    size_t path_len;
    bool prefix;
    gw_http_handler_fn handler;
    void *ctx;
    const void *data; /* static */
    size_t len;
    char *content_type;
    char etag[20];
};

struct hdr {
    char *name;
    char *value;
    struct hdr *next;
};

struct gw_http_response {
    int status;
    char *content_type;
    char *body;
    size_t len;
    struct hdr *headers, *headers_tail;
    bool cache_control;
};

enum conn_state {
    CS_EARLY,      /* MHD's: answered by the server itself once the request is in */
    CS_UPLOADING,  /* MHD's: collecting the body */
    CS_QUEUED,     /* suspended; its req is in the queue */
    CS_DISPATCHED, /* suspended; its req is with a handler */
    CS_ANSWERED,   /* answer set; resumed or about to be */
    CS_SSE,        /* accepted as an SSE stream; resumed or about to be */
    CS_DONE,       /* a response is queued */
};

/* One request, MHD's side (the con_cls). */
struct conn {
    struct gw_http_server *s;
    struct MHD_Connection *mhd;
    const struct route *route;
    enum conn_state state;
    char *body;
    size_t body_len;
    size_t discarded; /* body bytes past the limit (chunked uploads) */
    int early_status; /* CS_EARLY: static route when 0 */
    const char *early_message, *early_allow;
    struct req *req;                 /* CS_QUEUED, CS_DISPATCHED */
    struct gw_http_response *answer; /* CS_ANSWERED */
    struct sse_client *sse;          /* CS_SSE */
};

/* One request, the loop's side: what a handler holds. */
struct req {
    struct gw_http_request pub; /* first: handlers get &pub */
    struct gw_http_server *s;   /* NULL once orphaned by gw_http_close */
    struct conn *conn;          /* NULL once orphaned */
    const struct route *route;
    struct req *prev, *next; /* the queue (under lock), then `outstanding` (loop) */
    char *path;
    struct gw_http_arg *args;
    char *headers[5];
    char *body;
    char addr[INET6_ADDRSTRLEN];
};

struct sse_client {
    struct gw_http_server *s;
    struct MHD_Connection *mhd;
    char *buf; /* bytes [off, len) wait to be sent */
    size_t off, len, cap;
    bool suspended; /* by the reader, on an empty queue */
    bool ending;    /* send what is queued, then end the stream */
    struct sse_client *prev, *next;
};

struct gw_http_server {
    uv_loop_t *loop;
    struct gw_http_server_options opt;
    char *host;
    char *cert_file, *key_file;
    char *cert_pem, *key_pem;
    size_t key_pem_len;
    bool tls;

    struct route *routes;
    size_t nroutes;

    struct MHD_Daemon *daemon;
    int listen_fd; /* after MHD_quiesce_daemon: ours to close after MHD_stop_daemon */
    int port;

    uv_mutex_t lock;
    struct req *queue_head, *queue_tail; /* lock */
    struct sse_client *sse;              /* lock */
    unsigned nsse;                       /* lock */
    unsigned pending;                    /* lock */
    bool stopping;                       /* lock */

    struct req *outstanding;      /* loop: with handlers */
    struct MHD_Connection **wake; /* loop: connections to resume */
    atomic_uint live;             /* struct conn alive */
    atomic_uint_least64_t requests, rejected;
    uint64_t sse_dropped;

    uv_async_t async;
    uv_timer_t timer; /* heartbeats; after close, the grace wait */
    int open_handles;
    bool started, closing;
    uint64_t close_deadline;
    void (*closed)(void *ctx);
    void *closed_ctx;

    uv_mutex_t log_lock;
    time_t log_window;
    unsigned log_lines;
    unsigned long log_suppressed;
};

/* ---------------------------------------------------------------- responses */

struct gw_http_response *gw_http_response_new(int status, const char *content_type)
{
    struct gw_http_response *r = calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    r->status = status;
    if (content_type && !(r->content_type = strdup(content_type))) {
        free(r);
        return NULL;
    }
    return r;
}

void gw_http_response_free(struct gw_http_response *r)
{
    if (!r) {
        return;
    }
    while (r->headers) {
        struct hdr *h = r->headers;
        r->headers = h->next;
        free(h->name);
        free(h->value);
        free(h);
    }
    free(r->content_type);
    free(r->body);
    free(r);
}

int gw_http_response_take_body(struct gw_http_response *r, char *body, size_t len)
{
    free(r->body);
    r->body = body;
    r->len = body ? len : 0;
    return 0;
}

int gw_http_response_copy_body(struct gw_http_response *r, const void *body, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        return -ENOMEM;
    }
    if (len) {
        memcpy(copy, body, len);
    }
    return gw_http_response_take_body(r, copy, len);
}

static bool header_token(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?={}", c)) {
            return false;
        }
    }
    return true;
}

static bool header_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 32 && c != '\t') || c == 127) {
            return false;
        }
    }
    return true;
}

int gw_http_response_add_header(struct gw_http_response *r, const char *name, const char *value)
{
    if (!name || !value || !header_token(name) || !header_value(value)) {
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(reserved_headers) / sizeof(reserved_headers[0]); i++) {
        if (strcasecmp(name, reserved_headers[i]) == 0) {
            return -EINVAL;
        }
    }
    struct hdr *h = calloc(1, sizeof(*h));
    if (!h || !(h->name = strdup(name)) || !(h->value = strdup(value))) {
        if (h) {
            free(h->name);
        }
        free(h);
        return -ENOMEM;
    }
    if (r->headers_tail) {
        r->headers_tail->next = h;
    } else {
        r->headers = h;
    }
    r->headers_tail = h;
    if (strcasecmp(name, "Cache-Control") == 0) {
        r->cache_control = true;
    }
    return 0;
}

/* {"error":"..."}: message is ours or a handler's short text; escape it anyway. */
static char *error_json(const char *message, size_t *len)
{
    size_t cap = strlen(message) * 6 + 16;
    char *out = malloc(cap);
    if (!out) {
        return NULL;
    }
    size_t n = (size_t)snprintf(out, cap, "{\"error\":\"");
    for (const unsigned char *p = (const unsigned char *)message; *p; p++) {
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *p);
        } else {
            out[n++] = (char)*p;
        }
    }
    n += (size_t)snprintf(out + n, cap - n, "\"}");
    *len = n;
    return out;
}

static struct gw_http_response *error_response(int status, const char *message)
{
    struct gw_http_response *r = gw_http_response_new(status, "application/json");
    size_t len = 0;
    char *body = error_json(message, &len);
    if (!r || !body) {
        free(body);
        gw_http_response_free(r);
        return NULL;
    }
    gw_http_response_take_body(r, body, len);
    return r;
}

/* ------------------------------------------------------ MHD's thread: replies */

static bool add_security_headers(struct MHD_Response *mr)
{
    for (size_t i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++) {
        if (MHD_add_response_header(mr, security_headers[i][0], security_headers[i][1]) !=
            MHD_YES) {
            return false;
        }
    }
    return true;
}

/* Queues r (consumed; NULL: 500 without a body) on a connection MHD is calling us for. */
static enum MHD_Result send_response(struct MHD_Connection *mhd, struct gw_http_response *r)
{
    struct MHD_Response *mr;
    int status = r ? r->status : MHD_HTTP_INTERNAL_SERVER_ERROR;
    if (r && r->len) {
        mr = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        if (mr) {
            r->body = NULL; /* MHD frees it now */
        }
    } else {
        mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!mr) {
        gw_http_response_free(r);
        return MHD_NO;
    }
    bool ok = add_security_headers(mr);
    if (r) {
        if (r->content_type) {
            ok = ok && MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type) ==
                           MHD_YES;
        }
        if (!r->cache_control) {
            ok = ok &&
                 MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES;
        }
        for (struct hdr *h = r->headers; h; h = h->next) {
            ok = ok && MHD_add_response_header(mr, h->name, h->value) == MHD_YES;
        }
    }
    gw_http_response_free(r);
    enum MHD_Result ret = ok ? MHD_queue_response(mhd, (unsigned)status, mr) : MHD_NO;
    MHD_destroy_response(mr);
    return ret;
}

/* An answer of the server's own (limits, routing): counted as rejected. */
static enum MHD_Result send_error(struct gw_http_server *s, struct MHD_Connection *mhd, int status,
                                  const char *message, const char *allow)
{
    atomic_fetch_add(&s->rejected, 1);
    struct gw_http_response *r = error_response(status, message);
    if (r && allow && gw_http_response_add_header(r, "Allow", allow) < 0) {
        gw_http_response_free(r);
        r = NULL;
    }
    return send_response(mhd, r);
}

static enum MHD_Result send_static(struct MHD_Connection *mhd, const struct route *rt)
{
    const char *inm =
        MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    /* A list of tags or "*"; weak comparison is the rule for If-None-Match. */
    bool not_modified = inm && (strcmp(inm, "*") == 0 || strstr(inm, rt->etag));
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        not_modified ? 0 : rt->len, (void *)(not_modified ? "" : rt->data), MHD_RESPMEM_PERSISTENT);
    if (!mr) {
        return MHD_NO;
    }
    bool ok = add_security_headers(mr) &&
              MHD_add_response_header(mr, MHD_HTTP_HEADER_ETAG, rt->etag) == MHD_YES &&
              MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") == MHD_YES &&
              (not_modified || MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                                                       rt->content_type) == MHD_YES);
    enum MHD_Result ret =
        ok ? MHD_queue_response(mhd, not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, mr)
           : MHD_NO;
    MHD_destroy_response(mr);
    return ret;
}

/* --------------------------------------------------- MHD's thread: SSE reader */

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct sse_client *c = cls;
    ssize_t n;
    uv_mutex_lock(&c->s->lock);
    if (c->off < c->len) {
        size_t k = c->len - c->off;
        if (k > max) {
            k = max;
        }
        memcpy(buf, c->buf + c->off, k);
        c->off += k;
        if (c->off == c->len) {
            c->off = c->len = 0;
        }
        n = (ssize_t)k;
    } else if (c->ending) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing to send: sleep until the loop queues something (returning 0
           without suspending would make MHD's thread spin). */
        c->suspended = true;
        MHD_suspend_connection(c->mhd);
        n = 0;
    }
    uv_mutex_unlock(&c->s->lock);
    return n;
}

/* The stream is over (ended, client gone, or MHD stopping). */
static void sse_free(void *cls)
{
    struct sse_client *c = cls;
    struct gw_http_server *s = c->s;
    uv_mutex_lock(&s->lock);
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        s->sse = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    s->nsse--;
    uv_mutex_unlock(&s->lock);
    free(c->buf);
    free(c);
}

static enum MHD_Result send_sse(struct MHD_Connection *mhd, struct sse_client *c)
{
    struct MHD_Response *mr =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_read, c, sse_free);
    if (!mr) {
        sse_free(c);
        return MHD_NO;
    }
    bool ok =
        add_security_headers(mr) &&
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream") == MHD_YES &&
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
        /* nginx and friends would otherwise buffer the stream */
        MHD_add_response_header(mr, "X-Accel-Buffering", "no") == MHD_YES;
    enum MHD_Result ret = ok ? MHD_queue_response(mhd, MHD_HTTP_OK, mr) : MHD_NO;
    MHD_destroy_response(mr); /* frees c through sse_free when MHD did not take it */
    return ret;
}

/* ------------------------------------------------ MHD's thread: access handler */

static bool method_allowed(const struct route *rt, const char *method)
{
    switch (rt->kind) {
    case ROUTE_STATIC:
        return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    case ROUTE_SSE:
        return strcmp(method, "GET") == 0;
    case ROUTE_HANDLER:
        break;
    }
    if (!rt->method) {
        return true;
    }
    if (strcmp(rt->method, "GET") == 0) {
        return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    }
    return strcmp(rt->method, method) == 0;
}

static bool path_matches(const struct route *rt, const char *path, size_t len)
{
    if (rt->prefix) {
        return len > rt->path_len && memcmp(path, rt->path, rt->path_len) == 0;
    }
    return len == rt->path_len && memcmp(path, rt->path, len) == 0;
}

/*
 * The route for path and method: exact over prefix, longer prefix over
 * shorter. NULL with *allow set to what the path takes (405) or NULL (404).
 */
static const struct route *find_route(const struct gw_http_server *s, const char *path,
                                      const char *method, const char **allow)
{
    static const char *const allows[8] = {NULL,  "POST",      "HEAD",      "HEAD, POST",
                                          "GET", "GET, POST", "GET, HEAD", "GET, HEAD, POST"};
    size_t len = strlen(path);
    const struct route *best = NULL;
    unsigned allowed = 0; /* GET 4, HEAD 2, POST 1 */
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct route *rt = &s->routes[i];
        if (!path_matches(rt, path, len)) {
            continue;
        }
        allowed |= (method_allowed(rt, "GET") ? 4u : 0u) | (method_allowed(rt, "HEAD") ? 2u : 0u) |
                   (method_allowed(rt, "POST") ? 1u : 0u);
        if (!method_allowed(rt, method)) {
            continue;
        }
        if (!best || (best->prefix && (!rt->prefix || rt->path_len > best->path_len))) {
            best = rt;
        }
    }
    *allow = best ? NULL : allows[allowed];
    return best;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t outlen, bool *loopback)
{
    *loopback = false;
    snprintf(out, outlen, "unknown");
    if (!sa) {
        return;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)outlen);
        *loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            struct in_addr v4;
            memcpy(&v4, &in6->sin6_addr.s6_addr[12], sizeof(v4));
            inet_ntop(AF_INET, &v4, out, (socklen_t)outlen);
            *loopback = in6->sin6_addr.s6_addr[12] == 127;
        } else {
            inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)outlen);
            *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
        }
    }
}

static void req_free(struct req *q)
{
    if (!q) {
        return;
    }
    free(q->path);
    if (q->args) {
        for (size_t i = 0; i < q->pub.nargs; i++) {
            free((char *)q->args[i].key);
            free((char *)q->args[i].value);
        }
        free(q->args);
    }
    for (size_t i = 0; i < sizeof(q->headers) / sizeof(q->headers[0]); i++) {
        free(q->headers[i]);
    }
    free(q->body);
    free(q);
}

struct args_walk {
    struct req *q;
    bool failed;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct args_walk *w = cls;
    struct req *q = w->q;
    if (q->pub.nargs == MAX_ARGS) {
        w->failed = true;
        return MHD_NO;
    }
    struct gw_http_arg *a = &q->args[q->pub.nargs];
    a->key = strdup(key ? key : "");
    a->value = strdup(value ? value : "");
    q->pub.nargs++;
    if (!a->key || !a->value) {
        w->failed = true;
        return MHD_NO;
    }
    return MHD_YES;
}

/* The loop's copy of everything a handler may read. NULL with *status set. */
static struct req *make_req(struct gw_http_server *s, struct conn *c, const char *url,
                            const char *method, int *status)
{
    static const char *const names[5] = {"Cookie", "Authorization", "X-CSRF-Token", "Content-Type",
                                         "Accept-Language"};
    *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    struct req *q = calloc(1, sizeof(*q));
    if (!q || !(q->path = strdup(url)) || !(q->args = calloc(MAX_ARGS, sizeof(*q->args)))) {
        req_free(q);
        return NULL;
    }
    struct args_walk w = {q, false};
    MHD_get_connection_values(c->mhd, MHD_GET_ARGUMENT_KIND, collect_arg, &w);
    if (w.failed) {
        *status = q->pub.nargs == MAX_ARGS ? MHD_HTTP_BAD_REQUEST : *status;
        req_free(q);
        return NULL;
    }
    for (size_t i = 0; i < 5; i++) {
        const char *v = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, names[i]);
        if (v && !(q->headers[i] = strdup(v))) {
            req_free(q);
            return NULL;
        }
    }
    q->s = s;
    q->conn = c;
    q->route = c->route;
    q->body = c->body;
    c->body = NULL;
    q->pub.method = strcmp(method, "GET") == 0    ? "GET"
                    : strcmp(method, "HEAD") == 0 ? "HEAD"
                                                  : "POST";
    q->pub.path = q->path;
    q->pub.subpath = c->route->prefix ? q->path + c->route->path_len : "";
    q->pub.args = q->args;
    q->pub.cookie = q->headers[0];
    q->pub.authorization = q->headers[1];
    q->pub.csrf_token = q->headers[2];
    q->pub.content_type = q->headers[3];
    q->pub.accept_language = q->headers[4];
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    format_addr(ci ? ci->client_addr : NULL, q->addr, sizeof(q->addr), &q->pub.client_loopback);
    q->pub.client_addr = q->addr;
    q->pub.https = s->tls;
    q->pub.body = q->body ? q->body : "";
    q->pub.body_len = c->body_len;
    return q;
}

/*
 * What the server answers by itself, from the request line and headers: a
 * static asset (*rt set, *status 0) or an error (*status). False when the
 * request goes to the loop (*rt set).
 */
static bool decide(struct gw_http_server *s, struct MHD_Connection *mhd, const char *url,
                   const char *method, const struct route **rt, int *status, const char **message,
                   const char **allow)
{
    *rt = NULL;
    *status = 0;
    *allow = NULL;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && strcmp(method, "POST") != 0) {
        *status = MHD_HTTP_METHOD_NOT_ALLOWED;
        *message = "method not allowed";
        *allow = "GET, HEAD, POST";
        return true;
    }
    if (url[0] != '/') {
        *status = MHD_HTTP_BAD_REQUEST;
        *message = "bad request target";
        return true;
    }
    if (strlen(url) > s->opt.max_path_bytes) {
        *status = MHD_HTTP_URI_TOO_LONG;
        *message = "path too long";
        return true;
    }
    *rt = find_route(s, url, method, allow);
    if (!*rt) {
        *status = *allow ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND;
        *message = *allow ? "method not allowed" : "not found";
        return true;
    }
    if ((*rt)->kind == ROUTE_STATIC) {
        return true;
    }
    const char *cl =
        MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || *end) {
            *status = MHD_HTTP_BAD_REQUEST;
            *message = "bad Content-Length";
            return true;
        }
        if (n > s->opt.max_body_bytes) {
            *status = MHD_HTTP_CONTENT_TOO_LARGE;
            *message = "request body too large";
            return true;
        }
    }
    return false;
}

static enum MHD_Result send_early(struct gw_http_server *s, struct MHD_Connection *mhd,
                                  const struct route *rt, int status, const char *message,
                                  const char *allow)
{
    return status ? send_error(s, mhd, status, message, allow) : send_static(mhd, rt);
}

static bool has_body(struct MHD_Connection *mhd)
{
    const char *cl =
        MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (cl && strcmp(cl, "0") != 0) ||
           MHD_lookup_connection_value(mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static enum MHD_Result first_call(struct gw_http_server *s, struct MHD_Connection *mhd,
                                  const char *url, const char *method, void **con_cls)
{
    atomic_fetch_add(&s->requests, 1);
    const struct route *rt;
    int status;
    const char *message = NULL, *allow;
    bool early = decide(s, mhd, url, method, &rt, &status, &message, &allow);
    /* An answer queued now makes MHD close the connection after it (it never
       reads the body): right for a refused body, wasteful for a bodiless GET,
       which is answered at the next call and keeps its connection alive. */
    if (early && has_body(mhd)) {
        return send_early(s, mhd, rt, status, message, allow);
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        return early ? send_early(s, mhd, rt, status, message, allow)
                     : send_error(s, mhd, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL);
    }
    c->s = s;
    c->mhd = mhd;
    c->route = rt;
    c->state = early ? CS_EARLY : CS_UPLOADING;
    c->early_status = status;
    c->early_message = message;
    c->early_allow = allow;
    *con_cls = c;
    atomic_fetch_add(&s->live, 1);
    return MHD_YES;
}

static enum MHD_Result take_upload(struct gw_http_server *s, struct conn *c, const char *data,
                                   size_t size)
{
    if (c->discarded || size > s->opt.max_body_bytes - c->body_len) {
        /* A chunked body grew past the limit (a Content-Length one was refused
           before). MHD cannot queue the 413 mid-upload: drop the rest and
           answer at the end, unless there is far too much of it. */
        c->discarded += size;
        return c->discarded > MAX_DISCARD ? MHD_NO : MHD_YES;
    }
    if (!c->body) {
        c->body = malloc(s->opt.max_body_bytes + 1);
        if (!c->body) {
            c->state = CS_DONE;
            return send_error(s, c->mhd, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL);
        }
    }
    memcpy(c->body + c->body_len, data, size);
    c->body_len += size;
    c->body[c->body_len] = '\0';
    return MHD_YES;
}

/* The request is complete: hand it to the loop and sleep until it answers. */
static enum MHD_Result hand_over(struct gw_http_server *s, struct conn *c, const char *url,
                                 const char *method)
{
    int status;
    struct req *q = make_req(s, c, url, method, &status);
    if (!q) {
        c->state = CS_DONE;
        return send_error(
            s, c->mhd, status,
            status == MHD_HTTP_BAD_REQUEST ? "too many query arguments" : "out of memory", NULL);
    }
    uv_mutex_lock(&s->lock);
    if (s->stopping) {
        uv_mutex_unlock(&s->lock);
        req_free(q);
        c->state = CS_DONE;
        return send_error(s, c->mhd, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down", NULL);
    }
    q->prev = s->queue_tail;
    if (s->queue_tail) {
        s->queue_tail->next = q;
    } else {
        s->queue_head = q;
    }
    s->queue_tail = q;
    s->pending++;
    c->req = q;
    c->state = CS_QUEUED;
    MHD_suspend_connection(c->mhd);
    uv_mutex_unlock(&s->lock);
    uv_async_send(&s->async);
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mhd, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct gw_http_server *s = cls;
    struct conn *c = *con_cls;
    if (!c) {
        return first_call(s, mhd, url, method, con_cls);
    }
    uv_mutex_lock(&s->lock);
    enum conn_state state = c->state;
    struct gw_http_response *answer = c->answer;
    struct sse_client *sse = c->sse;
    if (state == CS_ANSWERED || state == CS_SSE) {
        c->answer = NULL;
        c->sse = NULL;
        c->state = CS_DONE;
    }
    uv_mutex_unlock(&s->lock);

    switch (state) {
    case CS_EARLY:
        if (*upload_data_size) { /* none was announced */
            return MHD_NO;
        }
        c->state = CS_DONE;
        return send_early(s, mhd, c->route, c->early_status, c->early_message, c->early_allow);
    case CS_UPLOADING:
        if (*upload_data_size) {
            size_t size = *upload_data_size;
            *upload_data_size = 0;
            return take_upload(s, c, upload_data, size);
        }
        if (c->discarded) {
            c->state = CS_DONE;
            return send_error(s, mhd, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", NULL);
        }
        return hand_over(s, c, url, method);
    case CS_ANSWERED:
        return send_response(mhd, answer);
    case CS_SSE:
        return send_sse(mhd, sse);
    case CS_QUEUED:
    case CS_DISPATCHED:
    case CS_DONE:
        break;
    }
    /* Called again while the loop has it, or after its response: never expected. */
    gw_error("http", "request called back in state %d: closing the connection", (int)state);
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *mhd, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)mhd;
    (void)toe;
    struct gw_http_server *s = cls;
    struct conn *c = *con_cls;
    if (!c) {
        return;
    }
    *con_cls = NULL;
    /* Never in CS_QUEUED/CS_DISPATCHED: those are suspended, and every suspended
       connection is resumed with an answer before MHD_stop_daemon. */
    free(c->body);
    gw_http_response_free(c->answer);
    free(c);
    atomic_fetch_sub(&s->live, 1);
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*
 * Percent-decoding of paths and query arguments, as MHD's own except that
 * "%00" stays as it is: a decoded NUL would cut the C string handlers get
 * ("/static.txt%00.js" would be "/static.txt").
 */
static size_t unescape(void *cls, struct MHD_Connection *mhd, char *s)
{
    (void)cls;
    (void)mhd;
    char *w = s;
    for (const char *r = s; *r;) {
        int hi = r[0] == '%' ? hex_digit(r[1]) : -1;
        int lo = hi >= 0 ? hex_digit(r[2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* MHD's own messages (TLS handshakes, connection limit, clients gone): INFO, as they
   are mostly about clients; rate-limited. Our own lines say what failed for us. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct gw_http_server *s = cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }
    time_t now = time(NULL);
    uv_mutex_lock(&s->log_lock);
    if (now - s->log_window >= LOG_WINDOW_S) {
        if (s->log_suppressed) {
            gw_info("http", "libmicrohttpd: %lu more messages not logged", s->log_suppressed);
        }
        s->log_window = now;
        s->log_lines = 0;
        s->log_suppressed = 0;
    }
    bool print = s->log_lines++ < LOG_BURST;
    if (!print) {
        s->log_suppressed++;
    }
    uv_mutex_unlock(&s->log_lock);
    if (print) {
        gw_info("http", "libmicrohttpd: %s", line);
    }
}

/* ------------------------------------------------------------ the loop's side */

static void outstanding_link(struct gw_http_server *s, struct req *q)
{
    q->prev = NULL;
    q->next = s->outstanding;
    if (s->outstanding) {
        s->outstanding->prev = q;
    }
    s->outstanding = q;
}

static void outstanding_unlink(struct gw_http_server *s, struct req *q)
{
    if (q->prev) {
        q->prev->next = q->next;
    } else {
        s->outstanding = q->next;
    }
    if (q->next) {
        q->next->prev = q->prev;
    }
    q->prev = q->next = NULL;
}

/* Drain the queue (several requests may come with one wake-up). */
static void on_async(uv_async_t *a)
{
    struct gw_http_server *s = a->data;
    while (!s->closing) {
        uv_mutex_lock(&s->lock);
        struct req *q = s->queue_head;
        if (q) {
            s->queue_head = q->next;
            if (s->queue_head) {
                s->queue_head->prev = NULL;
            } else {
                s->queue_tail = NULL;
            }
            q->conn->state = CS_DISPATCHED;
        }
        uv_mutex_unlock(&s->lock);
        if (!q) {
            return;
        }
        outstanding_link(s, q);
        q->route->handler(q->route->ctx, &q->pub);
    }
}

/* Give a suspended connection its answer; the caller resumes it (outside the lock). */
static struct MHD_Connection *set_answer_locked(struct gw_http_server *s, struct conn *c,
                                                struct gw_http_response *r)
{
    c->answer = r;
    c->req = NULL;
    c->state = CS_ANSWERED;
    s->pending--;
    return c->mhd;
}

void gw_http_respond(struct gw_http_request *req, struct gw_http_response *r)
{
    struct req *q = (struct req *)req;
    struct gw_http_server *s = q->s;
    if (!s) { /* orphaned by gw_http_close: the client got its 503 */
        gw_http_response_free(r);
        req_free(q);
        return;
    }
    outstanding_unlink(s, q);
    uv_mutex_lock(&s->lock);
    struct MHD_Connection *mhd = set_answer_locked(s, q->conn, r);
    uv_mutex_unlock(&s->lock);
    MHD_resume_connection(mhd);
    req_free(q);
}

void gw_http_respond_text(struct gw_http_request *req, int status, const char *content_type,
                          const char *text)
{
    struct gw_http_response *r = gw_http_response_new(status, content_type);
    if (r && gw_http_response_copy_body(r, text, strlen(text)) < 0) {
        gw_http_response_free(r);
        r = NULL;
    }
    gw_http_respond(req, r);
}

void gw_http_respond_error(struct gw_http_request *req, int status, const char *message)
{
    gw_http_respond(req, error_response(status, message));
}

static int queue_bytes(struct sse_client *c, const char *data, size_t len)
{
    if (c->len + len > c->cap) {
        if (c->off) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (c->len + len > c->cap) {
            size_t cap = c->cap ? c->cap : 1024;
            while (cap < c->len + len) {
                cap *= 2;
            }
            char *buf = realloc(c->buf, cap);
            if (!buf) {
                return -ENOMEM;
            }
            c->buf = buf;
            c->cap = cap;
        }
    }
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    return 0;
}

int gw_http_sse_accept(struct gw_http_request *req)
{
    static const char hello[] = "retry: 3000\n: connected\n\n";
    struct req *q = (struct req *)req;
    struct gw_http_server *s = q->s;
    if (!s) {
        req_free(q);
        return -ESHUTDOWN;
    }
    if (q->route->kind != ROUTE_SSE) {
        gw_error("http", "gw_http_sse_accept on a route that is not an SSE stream path=%s",
                 q->path);
        gw_http_respond_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error");
        return -EINVAL;
    }
    struct sse_client *c = calloc(1, sizeof(*c));
    if (!c || queue_bytes(c, hello, sizeof(hello) - 1) < 0) {
        free(c);
        gw_http_respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return -ENOMEM;
    }
    c->s = s;
    c->mhd = q->conn->mhd;
    outstanding_unlink(s, q);
    uv_mutex_lock(&s->lock);
    if (s->nsse >= s->opt.max_sse_clients) {
        uv_mutex_unlock(&s->lock);
        outstanding_link(s, q);
        free(c->buf);
        free(c);
        atomic_fetch_add(&s->rejected, 1);
        gw_http_respond_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "too many event streams");
        return -EMFILE;
    }
    c->next = s->sse;
    if (s->sse) {
        s->sse->prev = c;
    }
    s->sse = c;
    s->nsse++;
    struct conn *cn = q->conn;
    cn->sse = c;
    cn->req = NULL;
    cn->state = CS_SSE;
    s->pending--;
    uv_mutex_unlock(&s->lock);
    MHD_resume_connection(c->mhd);
    req_free(q);
    return 0;
}

/*
 * Queue bytes for every client; a client whose queue would pass the limit is
 * dropped (its queue replaced by a last comment, its stream ended). Resumes
 * the clients that were waiting. Returns the clients that got the bytes.
 */
static int push_all(struct gw_http_server *s, const char *data, size_t len)
{
    static const char bye[] = ": dropped: too far behind\n\n";
    int reached = 0, dropped = 0;
    size_t nwake = 0;
    uv_mutex_lock(&s->lock);
    for (struct sse_client *c = s->sse; c; c = c->next) {
        if (c->ending) {
            continue;
        }
        if (c->len - c->off + len > s->opt.sse_queue_bytes || queue_bytes(c, data, len) < 0) {
            c->off = c->len = 0;
            queue_bytes(c, bye, sizeof(bye) - 1); /* fits: the buffer is at least 1 KiB */
            c->ending = true;
            dropped++;
        } else {
            reached++;
        }
        if (c->suspended) {
            c->suspended = false;
            s->wake[nwake++] = c->mhd;
        }
    }
    uv_mutex_unlock(&s->lock);
    for (size_t i = 0; i < nwake; i++) {
        MHD_resume_connection(s->wake[i]);
    }
    if (dropped) {
        s->sse_dropped += (uint64_t)dropped;
        gw_warn("http", "event stream clients dropped for falling behind count=%d", dropped);
    }
    return reached;
}

int gw_http_sse_broadcast(struct gw_http_server *s, const char *event, const char *data)
{
    if (!event || !*event || strpbrk(event, "\r\n") || !data) {
        return -EINVAL;
    }
    if (s->closing || !s->started) {
        return 0;
    }
    /* Every line of data becomes a data: line; "\r\n", "\r" and "\n" all end lines. */
    size_t lines = 1;
    for (const char *p = data; *p; p++) {
        lines += *p == '\n' || *p == '\r';
    }
    size_t cap = strlen(event) + strlen(data) + lines * 7 + 16;
    char *msg = malloc(cap);
    if (!msg) {
        return -ENOMEM;
    }
    size_t n = (size_t)snprintf(msg, cap, "event: %s\n", event);
    const char *p = data;
    for (;;) {
        size_t k = strcspn(p, "\r\n");
        memcpy(msg + n, "data: ", 6);
        n += 6;
        memcpy(msg + n, p, k);
        n += k;
        msg[n++] = '\n';
        p += k;
        if (!*p) {
            break;
        }
        p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
    }
    msg[n++] = '\n';
    int reached = push_all(s, msg, n);
    free(msg);
    return reached;
}

static void heartbeat(uv_timer_t *t)
{
    static const char ping[] = ": keepalive\n\n";
    push_all(t->data, ping, sizeof(ping) - 1);
}

void gw_http_stats(const struct gw_http_server *s, struct gw_http_stats *out)
{
    struct gw_http_server *m = (struct gw_http_server *)s; /* the lock only */
    out->requests = atomic_load(&m->requests);
    out->rejected = atomic_load(&m->rejected);
    out->sse_dropped = s->sse_dropped;
    uv_mutex_lock(&m->lock);
    out->sse_clients = s->nsse;
    out->pending = s->pending;
    uv_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------- construction */

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

struct gw_http_server *gw_http_new(uv_loop_t *loop, const struct gw_http_server_options *opt)
{
    if (opt->port < 0 || opt->port > 65535) {
        gw_error("http", "listen port out of range port=%d", opt->port);
        return NULL;
    }
    bool cert = opt->cert_file && *opt->cert_file, key = opt->key_file && *opt->key_file;
    if (cert != key) {
        gw_error("http", "HTTPS needs both cert_file and key_file");
        return NULL;
    }
    if (cert && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        gw_error("http", "libmicrohttpd was built without TLS: cannot serve HTTPS");
        return NULL;
    }
    if (opt->host && *opt->host) {
        unsigned char probe[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET, opt->host, probe) != 1 &&
            inet_pton(AF_INET6, opt->host, probe) != 1) {
            gw_error("http", "listen host must be a numeric IPv4 or IPv6 address host=%s",
                     opt->host);
            return NULL;
        }
    }
    struct gw_http_server *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->loop = loop;
    s->opt = *opt;
    s->listen_fd = -1;
    s->port = -1;
    s->tls = cert;
#define DEFAULT(field, value)                                                                      \
    if (!s->opt.field) {                                                                           \
        s->opt.field = value;                                                                      \
    }
    DEFAULT(max_connections, DEFAULT_MAX_CONNECTIONS);
    DEFAULT(connection_memory_bytes, DEFAULT_CONN_MEMORY);
    DEFAULT(max_body_bytes, DEFAULT_MAX_BODY);
    DEFAULT(max_path_bytes, DEFAULT_MAX_PATH);
    DEFAULT(timeout_s, DEFAULT_TIMEOUT_S);
    DEFAULT(max_sse_clients, DEFAULT_MAX_SSE);
    DEFAULT(sse_queue_bytes, DEFAULT_SSE_QUEUE);
    DEFAULT(sse_heartbeat_ms, DEFAULT_HEARTBEAT_MS);
#undef DEFAULT
    s->host = dup_or_null(opt->host);
    s->cert_file = dup_or_null(opt->cert_file);
    s->key_file = dup_or_null(opt->key_file);
    s->wake = calloc(s->opt.max_sse_clients, sizeof(*s->wake));
    if ((opt->host && *opt->host && !s->host) || (cert && (!s->cert_file || !s->key_file)) ||
        !s->wake) {
        goto fail;
    }
    s->opt.host = s->host;
    s->opt.cert_file = s->cert_file;
    s->opt.key_file = s->key_file;
    if (uv_mutex_init(&s->lock) != 0) {
        goto fail;
    }
    if (uv_mutex_init(&s->log_lock) != 0) {
        uv_mutex_destroy(&s->lock);
        goto fail;
    }
    uv_async_init(loop, &s->async, on_async);
    s->async.data = s;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->open_handles = 2;
    return s;
fail:
    gw_error("http", "out of memory");
    free(s->wake);
    free(s->host);
    free(s->cert_file);
    free(s->key_file);
    free(s);
    return NULL;
}

static int add_route(struct gw_http_server *s, struct route *proto, const char *method,
                     const char *path)
{
    if (s->started || s->closing) {
        return -EBUSY;
    }
    if (!path || path[0] != '/' || strpbrk(path, "?#") ||
        (method && strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)) {
        return -EINVAL;
    }
    size_t len = strlen(path);
    bool prefix = len >= 4 && strcmp(path + len - 4, "/...") == 0;
    if (prefix) {
        len -= 3; /* keep the '/' */
    }
    if (prefix && proto->kind != ROUTE_HANDLER) {
        return -EINVAL;
    }
    for (size_t i = 0; i < s->nroutes; i++) {
        struct route *rt = &s->routes[i];
        if (rt->prefix == prefix && rt->path_len == len && memcmp(rt->path, path, len) == 0 &&
            (!rt->method || !method || strcmp(rt->method, method) == 0 ||
             rt->kind != ROUTE_HANDLER || proto->kind != ROUTE_HANDLER)) {
            return -EEXIST;
        }
    }
    struct route *routes = realloc(s->routes, (s->nroutes + 1) * sizeof(*routes));
    if (!routes) {
        return -ENOMEM;
    }
    s->routes = routes;
    struct route *rt = &routes[s->nroutes];
    *rt = *proto;
    rt->prefix = prefix;
    rt->path_len = len;
    rt->path = strndup(path, len);
    rt->method = method ? strdup(method) : NULL;
    if (!rt->path || (method && !rt->method)) {
        free(rt->path);
        free(rt->method);
        free(rt->content_type);
        return -ENOMEM;
    }
    s->nroutes++;
    return 0;
}

int gw_http_route(struct gw_http_server *s, const char *method, const char *path,
                  gw_http_handler_fn handler, void *ctx)
{
    if (!handler) {
        return -EINVAL;
    }
    struct route proto = {.kind = ROUTE_HANDLER, .handler = handler, .ctx = ctx};
    return add_route(s, &proto, method, path);
}

int gw_http_sse(struct gw_http_server *s, const char *path, gw_http_handler_fn on_open, void *ctx)
{
    if (!on_open) {
        return -EINVAL;
    }
    struct route proto = {.kind = ROUTE_SSE, .handler = on_open, .ctx = ctx};
    return add_route(s, &proto, "GET", path);
}

int gw_http_static(struct gw_http_server *s, const char *path, const char *content_type,
                   const void *data, size_t len)
{
    if (!content_type || !header_value(content_type) || (!data && len)) {
        return -EINVAL;
    }
    struct route proto = {.kind = ROUTE_STATIC, .data = data ? data : "", .len = len};
    /* FNV-1a 64 of the bytes: a strong validator for const data. */
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ULL;
    }
    snprintf(proto.etag, sizeof(proto.etag), "\"%016" PRIx64 "\"", h);
    if (!(proto.content_type = strdup(content_type))) {
        return -ENOMEM;
    }
    int rc = add_route(s, &proto, "GET", path);
    if (rc < 0 && rc != -ENOMEM) {
        free(proto.content_type);
    }
    return rc;
}

/* A whole PEM file, NUL-terminated (MHD wants C strings). */
static int read_pem(const char *path, char **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > PEM_MAX) {
        close(fd);
        return -EINVAL;
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int err = n < 0 ? -errno : -EIO;
            explicit_bzero(buf, size);
            free(buf);
            close(fd);
            return err;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[size] = '\0';
    *out = buf;
    *outlen = size;
    return 0;
}

static void free_pems(struct gw_http_server *s)
{
    if (s->key_pem) {
        explicit_bzero(s->key_pem, s->key_pem_len);
    }
    free(s->key_pem);
    free(s->cert_pem);
    s->key_pem = s->cert_pem = NULL;
}

int gw_http_start(struct gw_http_server *s)
{
    if (s->started || s->closing) {
        return -EBUSY;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (s->host && inet_pton(AF_INET, s->host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)s->opt.port);
    } else {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)s->opt.port);
        if (s->host) {
            inet_pton(AF_INET6, s->host, &in6->sin6_addr);
            flags |= MHD_USE_IPv6;
        } else {
            in6->sin6_addr = in6addr_any;
            flags |= MHD_USE_DUAL_STACK;
        }
    }
    const char *where = s->host ? s->host : "*";
    if (s->tls) {
        size_t cert_len;
        int rc = read_pem(s->cert_file, &s->cert_pem, &cert_len);
        if (rc < 0) {
            gw_error("http", "cannot read the certificate file=%s: %s", s->cert_file,
                     strerror(-rc));
            return rc;
        }
        rc = read_pem(s->key_file, &s->key_pem, &s->key_pem_len);
        if (rc < 0) {
            gw_error("http", "cannot read the key file=%s: %s", s->key_file, strerror(-rc));
            free_pems(s);
            return rc;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
    errno = 0;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->opt.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)s->opt.max_per_address, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)s->opt.connection_memory_bytes, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->opt.timeout_s, MHD_OPTION_ARRAY, s->tls ? tls_opts : no_opts, MHD_OPTION_END);
    if (!s->daemon) {
        int err = errno ? errno : EIO;
        gw_error("http", "cannot start the HTTP server host=%s port=%d: %s", where, s->opt.port,
                 strerror(err));
        free_pems(s);
        return -err;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? (int)di->port : s->opt.port;
    s->started = true;
    uv_timer_start(&s->timer, heartbeat, s->opt.sse_heartbeat_ms, s->opt.sse_heartbeat_ms);
    gw_info("http", "listening host=%s port=%d tls=%s", where, s->port, s->tls ? "yes" : "no");
    return 0;
}

int gw_http_port(const struct gw_http_server *s)
{
    return s->started ? s->port : -1;
}

/* ----------------------------------------------------------------- shutdown */

static void free_server(struct gw_http_server *s)
{
    for (size_t i = 0; i < s->nroutes; i++) {
        free(s->routes[i].path);
        free(s->routes[i].method);
        free(s->routes[i].content_type);
    }
    free(s->routes);
    free_pems(s);
    free(s->wake);
    free(s->host);
    free(s->cert_file);
    free(s->key_file);
    uv_mutex_destroy(&s->lock);
    uv_mutex_destroy(&s->log_lock);
    void (*closed)(void *) = s->closed;
    void *ctx = s->closed_ctx;
    free(s);
    if (closed) {
        closed(ctx);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct gw_http_server *s = h->data;
    if (--s->open_handles == 0) {
        free_server(s);
    }
}

static void stop_daemon(struct gw_http_server *s)
{
    if (s->daemon) {
        /* Joins MHD's thread; what was still open is closed (completion and
           SSE free callbacks run here, on the loop thread). */
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    uv_close((uv_handle_t *)&s->async, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

/* Wait for the answers and stream ends to go out, up to the deadline. */
static void on_grace(uv_timer_t *t)
{
    struct gw_http_server *s = t->data;
    if (atomic_load(&s->live) == 0 || uv_now(s->loop) >= s->close_deadline) {
        uv_timer_stop(t);
        stop_daemon(s);
    }
}

void gw_http_close(struct gw_http_server *s, void (*closed)(void *ctx), void *ctx)
{
    if (s->closing) {
        return;
    }
    s->closing = true;
    s->closed = closed;
    s->closed_ctx = ctx;
    uv_timer_stop(&s->timer);
    if (!s->daemon) {
        stop_daemon(s);
        return;
    }
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    s->listen_fd = fd == MHD_INVALID_SOCKET ? -1 : (int)fd;

    /* From here MHD's thread answers new requests 503 and suspends nothing. */
    uv_mutex_lock(&s->lock);
    s->stopping = true;
    uv_mutex_unlock(&s->lock);

    /* Queued, never seen by a handler: answer and free. One at a time, so each
       resume happens outside the lock. */
    for (;;) {
        struct gw_http_response *r = error_response(MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down");
        uv_mutex_lock(&s->lock);
        struct req *q = s->queue_head;
        struct MHD_Connection *mhd = NULL;
        if (q) {
            s->queue_head = q->next;
            if (!s->queue_head) {
                s->queue_tail = NULL;
            }
            mhd = set_answer_locked(s, q->conn, r);
        }
        uv_mutex_unlock(&s->lock);
        if (!q) {
            gw_http_response_free(r);
            break;
        }
        MHD_resume_connection(mhd);
        req_free(q);
    }
    /* With handlers: answer the client now; the handler's later answer frees its req. */
    while (s->outstanding) {
        struct req *q = s->outstanding;
        outstanding_unlink(s, q);
        struct gw_http_response *r = error_response(MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down");
        uv_mutex_lock(&s->lock);
        struct MHD_Connection *mhd = set_answer_locked(s, q->conn, r);
        uv_mutex_unlock(&s->lock);
        MHD_resume_connection(mhd);
        q->s = NULL;
        q->conn = NULL;
    }
    /* End the streams: each sends what it has queued, then its end. */
    size_t nwake = 0;
    uv_mutex_lock(&s->lock);
    for (struct sse_client *c = s->sse; c; c = c->next) {
        c->ending = true;
        if (c->suspended) {
            c->suspended = false;
            s->wake[nwake++] = c->mhd;
        }
    }
    uv_mutex_unlock(&s->lock);
    for (size_t i = 0; i < nwake; i++) {
        MHD_resume_connection(s->wake[i]);
    }
    s->close_deadline = uv_now(s->loop) + CLOSE_GRACE_MS;
    uv_timer_start(&s->timer, on_grace, 0, CLOSE_POLL_MS);
}
