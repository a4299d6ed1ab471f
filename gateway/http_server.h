/*
 * The HTTP server: libmicrohttpd (MHD) bridged onto the libuv loop. It knows
 * nothing about what the routes do.
 *
 * MHD runs its own internal polling thread. That thread only parses HTTP,
 * enforces the limits, answers static assets (const data) and routing errors
 * (404, 405, 413, 414) itself, and hands every other request to the loop
 * thread: a locked queue + uv_async_send, with the connection suspended
 * (MHD_suspend_connection). The handler runs on the loop thread and answers,
 * at once or later (gw_http_respond); the answer is stored for the
 * connection, which is resumed (MHD_resume_connection), and MHD's thread sends
 * it. Gateway state is never touched from MHD's thread.
 *
 * Server-Sent Events: an SSE path's on_open handler runs on the loop like any
 * handler and accepts (gw_http_sse_accept) or refuses (gw_http_respond).
 * gw_http_sse_broadcast queues an event for every accepted client; each
 * client has a bounded queue and is dropped (its stream ended, the browser
 * reconnects) when it falls that far behind. A comment line goes to every
 * client every sse_heartbeat_ms so proxies and phones keep the connection.
 *
 * Every response carries X-Content-Type-Options: nosniff, Referrer-Policy:
 * same-origin, X-Frame-Options: DENY and a strict Content-Security-Policy
 * (default-src 'self': no inline script or style, nothing from elsewhere).
 * Dynamic responses get Cache-Control: no-store unless the handler sets one.
 * Methods other than GET, HEAD and POST are answered 405. Routes are strings,
 * never files: no path can reach the file system.
 *
 * Loop thread only, except where said.
 */
#ifndef GW_HTTP_SERVER_H
#define GW_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Zero or NULL in any field means its default. */
struct gw_http_server_options {
    const char *host;      /* numeric IPv4 or IPv6; NULL or "": every address, v4+v6 */
    int port;              /* 0: an ephemeral port (gw_http_port tells which) */
    const char *cert_file; /* PEM certificate (chain) and key: HTTPS when both set */
    const char *key_file;  /* read at gw_http_start; unencrypted PEM */
    /* Open connections, SSE streams included; default 128. At the limit MHD stops
       accepting: newcomers wait in the listen backlog until a connection closes. */
    unsigned max_connections;
    unsigned max_per_address;       /* connections per client address; default 0: no limit */
    size_t connection_memory_bytes; /* MHD's per-connection pool (bounds the headers); 32 KiB */
    size_t max_body_bytes;          /* request bodies beyond this get 413; default 16 KiB */
    size_t max_path_bytes;          /* longer paths get 414; default 512 */
    unsigned timeout_s;             /* an idle connection is closed after this; default 30 */
    unsigned max_sse_clients;       /* more are refused with 503; default 32 */
    size_t sse_queue_bytes;         /* a client this far behind is dropped; default 256 KiB */
    unsigned sse_heartbeat_ms;      /* comment line to every client; default 15000 */
};

struct gw_http_arg {
    const char *key;
    const char *value; /* "" for "?flag" */
};

/*
 * What a handler sees. Read only; valid until the request is answered. MHD has
 * already percent-decoded path and arguments.
 */
struct gw_http_request {
    const char *method;  /* "GET", "HEAD" (answer as for GET) or "POST" */
    const char *path;    /* starts with '/', no query */
    const char *subpath; /* for a prefix route "/api/x/...": what follows "/api/x/"; else "" */
    const struct gw_http_arg *args; /* query arguments, in order */
    size_t nargs;
    /* Selected request headers, NULL when absent. */
    const char *cookie;
    const char *authorization;
    const char *csrf_token; /* X-CSRF-Token */
    const char *content_type;
    const char *accept_language;
    const char *client_addr; /* "192.0.2.1" or "2001:db8::1" (v4-mapped v6 shown as v4) */
    bool client_loopback;    /* 127.0.0.0/8 or ::1 */
    bool https;
    const char *body; /* NUL-terminated (a NUL inside is possible: use body_len) */
    size_t body_len;
};

/*
 * Handles one request on the loop thread. It must answer exactly once, now or
 * later, with gw_http_respond (or gw_http_respond_*, or gw_http_sse_accept on
 * an SSE path). Until then req stays valid, even across gw_http_close.
 */
typedef void (*gw_http_handler_fn)(void *ctx, struct gw_http_request *req);

struct gw_http_server;
struct gw_http_response;

/*
 * Checks the options (and that MHD has TLS when a certificate is given); NULL
 * after logging why. Register routes, then gw_http_start.
 */
struct gw_http_server *gw_http_new(uv_loop_t *loop, const struct gw_http_server_options *opt);

/*
 * A route for method "GET" (HEAD too), "POST", or NULL (GET, HEAD and POST).
 * path is exact ("/api/alarms"), or a prefix when it ends in "/..."
 * ("/api/alarms/..." matches "/api/alarms/x" and deeper, not "/api/alarms" nor
 * "/api/alarms/").
 * Exact routes win over prefixes, the longest prefix over shorter ones.
 * Before gw_http_start only: 0, -EBUSY (started), -EEXIST, -EINVAL or -ENOMEM.
 */
int gw_http_route(struct gw_http_server *s, const char *method, const char *path,
                  gw_http_handler_fn handler, void *ctx);

/*
 * A GET/HEAD answered on MHD's thread from const data that outlives the
 * server (embedded assets), with a strong ETag (304 on If-None-Match) and
 * Cache-Control: no-cache (revalidate: the assets have no versioned names).
 * Before gw_http_start only; returns like gw_http_route.
 */
int gw_http_static(struct gw_http_server *s, const char *path, const char *content_type,
                   const void *data, size_t len);

/*
 * An SSE stream on GET path (exact). on_open runs on the loop for each client
 * and answers with gw_http_sse_accept (allow) or gw_http_respond (refuse, e.g.
 * 401). Before gw_http_start only; returns like gw_http_route.
 */
int gw_http_sse(struct gw_http_server *s, const char *path, gw_http_handler_fn on_open, void *ctx);

/*
 * Binds and starts MHD's thread. 0 or a negative errno (logged): -EADDRINUSE,
 * -EACCES, -EIO (certificate or key unreadable or refused)...
 */
int gw_http_start(struct gw_http_server *s);

/* The bound port (useful with port 0), or -1 before gw_http_start. */
int gw_http_port(const struct gw_http_server *s);

/* Response builder. NULL only on allocation failure (gw_http_respond then answers 500). */
struct gw_http_response *gw_http_response_new(int status, const char *content_type);
/* Takes body (malloc'd, len bytes) even on error. 0 or -ENOMEM. */
int gw_http_response_take_body(struct gw_http_response *r, char *body, size_t len);
int gw_http_response_copy_body(struct gw_http_response *r, const void *body, size_t len);
/*
 * Adds a header (Set-Cookie may repeat). -EINVAL for names or values with
 * control characters or names that the server sets itself (Content-Type,
 * Content-Length, Transfer-Encoding, Connection, Date).
 */
int gw_http_response_add_header(struct gw_http_response *r, const char *name, const char *value);
void gw_http_response_free(struct gw_http_response *r);

/*
 * Answers req with r (consumed; NULL answers 500) and releases req. Exactly
 * once per request; after gw_http_close it just frees both (the client was
 * already answered 503).
 */
void gw_http_respond(struct gw_http_request *req, struct gw_http_response *r);
/* A copy of text with this content type. */
void gw_http_respond_text(struct gw_http_request *req, int status, const char *content_type,
                          const char *text);
/* {"error":"<message>"} as application/json. */
void gw_http_respond_error(struct gw_http_request *req, int status, const char *message);

/*
 * Accepts an SSE request (from its on_open handler): the stream starts with a
 * retry hint, then gets every broadcast. Answers req (releases it). 0, or
 * -EINVAL (not an SSE request: answered 500), -EMFILE (too many clients:
 * answered 503) or -ESHUTDOWN (closing: answered 503).
 */
int gw_http_sse_accept(struct gw_http_request *req);

/*
 * Queues "event: <event>\ndata: <data>\n\n" for every client (data's lines
 * become one data: line each). Returns how many clients got it (those too far
 * behind are dropped instead), or -EINVAL (event empty or with a newline).
 */
int gw_http_sse_broadcast(struct gw_http_server *s, const char *event, const char *data);

struct gw_http_stats {
    uint64_t requests;    /* requests seen (all answers, static and errors included) */
    uint64_t rejected;    /* answered 4xx/5xx by the server itself (limits, routing) */
    uint64_t sse_dropped; /* clients dropped for falling behind */
    unsigned sse_clients; /* streams open now */
    unsigned pending;     /* requests handed to the loop, not answered yet */
};
void gw_http_stats(const struct gw_http_server *s, struct gw_http_stats *out);

/*
 * Stops accepting, answers every unanswered request 503 (handlers still
 * holding one must still answer it: that only frees it), ends the SSE streams
 * cleanly, waits up to 2 s for those answers to go out, stops MHD, closes the
 * handles; `closed` (may be NULL) runs on the loop once all is freed. Works on
 * a server never started.
 */
void gw_http_close(struct gw_http_server *s, void (*closed)(void *ctx), void *ctx);

#endif
