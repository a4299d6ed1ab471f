#include "curl_loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"

struct xfer {
    CURL *easy;
    gw_curl_done_fn done;
    void *ctx;
    struct xfer *next;
};

/* One watched socket; freed in its close callback. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct gw_curl *c;
    struct sock *next;
};

struct gw_curl {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t *timer; /* curl's timeout; then the teardown kick */
    struct xfer *xfers;
    struct sock *socks;
    int nxfers;
    int open_handles; /* timer + socks not yet closed */
    bool closing;
    bool torn_down;
    void (*closed)(void *ctx);
    void *closed_ctx;
};

static bool global_done;

static void maybe_finish(struct gw_curl *c)
{
    if (!c->closing || !c->torn_down || c->open_handles > 0) {
        return;
    }
    void (*closed)(void *) = c->closed;
    void *ctx = c->closed_ctx;
    free(c);
    if (closed) {
        closed(ctx);
    }
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock *sk = h->data;
    struct gw_curl *c = sk->c;
    free(sk);
    c->open_handles--;
    maybe_finish(c);
}

static void close_sock(struct gw_curl *c, struct sock *sk)
{
    for (struct sock **pp = &c->socks; *pp; pp = &(*pp)->next) {
        if (*pp == sk) {
            *pp = sk->next;
            break;
        }
    }
    uv_poll_stop(&sk->poll);
    uv_close((uv_handle_t *)&sk->poll, on_sock_closed);
}

static struct xfer *unlink_xfer(struct gw_curl *c, CURL *easy)
{
    for (struct xfer **pp = &c->xfers; *pp; pp = &(*pp)->next) {
        if ((*pp)->easy == easy) {
            struct xfer *x = *pp;
            *pp = x->next;
            c->nxfers--;
            return x;
        }
    }
    return NULL;
}

/* Report every finished transfer. A done callback may submit more or close us. */
static void check_info(struct gw_curl *c)
{
    CURLMsg *msg;
    int left;
    while (!c->closing && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        curl_multi_remove_handle(c->multi, easy);
        struct xfer *x = unlink_xfer(c, easy);
        if (!x) {
            continue;
        }
        gw_curl_done_fn done = x->done;
        void *ctx = x->ctx;
        free(x);
        done(ctx, easy, result);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *sk = h->data;
    struct gw_curl *c = sk->c;
    if (c->closing) {
        return;
    }
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        flags |= (events & UV_READABLE) ? CURL_CSELECT_IN : 0;
        flags |= (events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0;
    }
    int running;
    curl_multi_socket_action(c->multi, sk->fd, flags, &running);
    check_info(c);
}

static void on_socket_timer(uv_timer_t *t)
{
    struct gw_curl *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_info(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl wants, or stop watching it. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    struct gw_curl *c = userp;
    struct sock *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            curl_multi_assign(c->multi, s, NULL);
            close_sock(c, sk);
        }
        return 0;
    }
    if (c->torn_down) {
        return 0;
    }
    if (!sk) {
        sk = calloc(1, sizeof(*sk));
        if (!sk) {
            return -1;
        }
        int rc = uv_poll_init_socket(c->loop, &sk->poll, s);
        if (rc < 0) {
            gw_error("curl", "cannot watch socket fd=%d: %s", (int)s, uv_strerror(rc));
            free(sk);
            return -1;
        }
        sk->fd = s;
        sk->c = c;
        sk->poll.data = sk;
        sk->next = c->socks;
        c->socks = sk;
        c->open_handles++;
        curl_multi_assign(c->multi, s, sk);
    }
    int events = 0;
    events |= (what & CURL_POLL_IN) ? UV_READABLE : 0;
    events |= (what & CURL_POLL_OUT) ? UV_WRITABLE : 0;
    uv_poll_start(&sk->poll, events, on_poll);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "as soon as possible" (next loop turn). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct gw_curl *c = userp;
    if (c->closing) {
        return 0;
    }
    if (timeout_ms < 0) {
        uv_timer_stop(c->timer);
    } else {
        uv_timer_start(c->timer, on_socket_timer, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct gw_curl *c = h->data;
    free(h);
    c->open_handles--;
    maybe_finish(c);
}

struct gw_curl *gw_curl_new(uv_loop_t *loop)
{
    if (!global_done) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK) {
            gw_error("curl", "curl_global_init failed: %s", curl_easy_strerror(rc));
            return NULL;
        }
        global_done = true;
    }
    struct gw_curl *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    c->loop = loop;
    c->timer = calloc(1, sizeof(*c->timer));
    c->multi = curl_multi_init();
    if (!c->timer || !c->multi) {
        gw_error("curl", "cannot create a curl multi handle");
        goto fail;
    }
    uv_timer_init(loop, c->timer);
    c->timer->data = c;
    c->open_handles = 1;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
fail:
    if (c->multi) {
        curl_multi_cleanup(c->multi);
    }
    free(c->timer);
    free(c);
    return NULL;
}

int gw_curl_submit(struct gw_curl *c, CURL *easy, gw_curl_done_fn done, void *ctx)
{
    if (c->closing) {
        return -ESHUTDOWN;
    }
    for (struct xfer *x = c->xfers; x; x = x->next) {
        if (x->easy == easy) {
            return -EBUSY;
        }
    }
    struct xfer *x = calloc(1, sizeof(*x));
    if (!x) {
        return -ENOMEM;
    }
    x->easy = easy;
    x->done = done;
    x->ctx = ctx;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    /* Linked before adding: adding calls on_curl_timer, which only arms the timer. */
    x->next = c->xfers;
    c->xfers = x;
    c->nxfers++;
    CURLMcode mc = curl_multi_add_handle(c->multi, easy);
    if (mc != CURLM_OK) {
        gw_error("curl", "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        unlink_xfer(c, easy);
        free(x);
        return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
    }
    return 0;
}

int gw_curl_cancel(struct gw_curl *c, CURL *easy)
{
    struct xfer *x = unlink_xfer(c, easy);
    if (!x) {
        return -ENOENT;
    }
    curl_multi_remove_handle(c->multi, easy);
    free(x);
    return 0;
}

int gw_curl_running(const struct gw_curl *c)
{
    return c->nxfers;
}

/* On the loop after gw_curl_close: safe even when close was called from a done callback. */
static void on_teardown(uv_timer_t *t)
{
    struct gw_curl *c = t->data;
    c->torn_down = true;
    /* Dropping the connection cache calls on_curl_socket(REMOVE) for each socket. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks) {
        close_sock(c, c->socks);
    }
    uv_close((uv_handle_t *)c->timer, on_timer_closed);
    c->timer = NULL;
}

void gw_curl_close(struct gw_curl *c, void (*closed)(void *ctx), void *ctx)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->closed = closed;
    c->closed_ctx = ctx;
    while (c->xfers) {
        struct xfer *x = c->xfers;
        c->xfers = x->next;
        c->nxfers--;
        curl_multi_remove_handle(c->multi, x->easy);
        gw_curl_done_fn done = x->done;
        void *dctx = x->ctx;
        CURL *easy = x->easy;
        free(x);
        done(dctx, easy, CURLE_ABORTED_BY_CALLBACK);
    }
    uv_timer_start(c->timer, on_teardown, 0, 0);
}
