#include "mqtt_loop.h"

#include <errno.h>
#include <mosquitto.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define MAX_INFLIGHT 100

struct gw_mqtt {
    uv_loop_t *loop;
    struct mosquitto *mosq;
    char *name;
    char *host;
    int port;
    int keepalive_s;
    struct gw_mqtt_callbacks cb;
    void *ctx;

    uv_timer_t misc_timer;
    uv_timer_t retry_timer;
    uv_poll_t *poll; /* one per connection; freed in its close callback */
    int poll_events;

    bool connected;
    bool closing;
    int backoff_ms;
    size_t inflight; /* QoS 1 publishes awaiting PUBACK */
    struct gw_complaint down;

    int open_handles;
    int64_t close_deadline_ms;
    void (*done)(void *ctx);
};

static void schedule_retry(struct gw_mqtt *m);
static void watch_socket(struct gw_mqtt *m);

static int64_t loop_ms(const struct gw_mqtt *m)
{
    return (int64_t)uv_now(m->loop);
}

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void drop_poll(struct gw_mqtt *m)
{
    if (m->poll) {
        uv_poll_stop(m->poll);
        uv_close((uv_handle_t *)m->poll, on_poll_closed);
        m->poll = NULL;
        m->poll_events = 0;
    }
}

static void update_events(struct gw_mqtt *m)
{
    if (!m->poll) {
        return;
    }
    int events = UV_READABLE | (mosquitto_want_write(m->mosq) ? UV_WRITABLE : 0);
    if (events != m->poll_events) {
        bool drained = (m->poll_events & UV_WRITABLE) && !(events & UV_WRITABLE);
        m->poll_events = events;
        uv_poll_start(m->poll, events, m->poll->poll_cb);
        if (drained && m->cb.on_drained) {
            m->cb.on_drained(m->ctx);
        }
    }
}

/* The connection is gone (or never came): forget the socket, try again later. */
static void connection_lost(struct gw_mqtt *m, const char *why)
{
    bool was = m->connected;
    m->connected = false;
    m->inflight = 0;
    drop_poll(m);
    if (m->closing) {
        return;
    }
    if (gw_complain(&m->down, loop_ms(m))) {
        gw_warn("mqtt", "%s broker unreachable host=%s port=%d reason=\"%s\" retry_ms=%d", m->name,
                m->host, m->port, why, m->backoff_ms ? m->backoff_ms : BACKOFF_MIN_MS);
    }
    if (was && m->cb.on_disconnect) {
        m->cb.on_disconnect(m->ctx);
    }
    schedule_retry(m);
}

static void after_io(struct gw_mqtt *m, int rc)
{
    if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(m->mosq) < 0) {
        connection_lost(m, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return;
    }
    update_events(m);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct gw_mqtt *m = handle->data;
    if (status < 0) {
        connection_lost(m, uv_strerror(status));
        return;
    }
    int rc = MOSQ_ERR_SUCCESS;
    if (events & UV_READABLE) {
        rc = mosquitto_loop_read(m->mosq, 1);
    }
    if (rc == MOSQ_ERR_SUCCESS && (events & UV_WRITABLE) && m->poll) {
        rc = mosquitto_loop_write(m->mosq, 1);
    }
    if (m->poll == handle) {
        after_io(m, rc);
    }
}

static void watch_socket(struct gw_mqtt *m)
{
    int fd = mosquitto_socket(m->mosq);
    if (fd < 0) {
        connection_lost(m, "no socket");
        return;
    }
    m->poll = malloc(sizeof(*m->poll));
    if (!m->poll || uv_poll_init_socket(m->loop, m->poll, fd) != 0) {
        free(m->poll);
        m->poll = NULL;
        connection_lost(m, "cannot watch socket");
        return;
    }
    m->poll->data = m;
    m->poll->poll_cb = on_poll;
    m->poll_events = 0;
    update_events(m);
}

static void try_connect(struct gw_mqtt *m, bool first)
{
    int rc = first ? mosquitto_connect_async(m->mosq, m->host, m->port, m->keepalive_s)
                   : mosquitto_reconnect_async(m->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        connection_lost(m, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return;
    }
    watch_socket(m);
}

static void on_retry(uv_timer_t *t)
{
    struct gw_mqtt *m = t->data;
    if (!m->closing) {
        try_connect(m, false);
    }
}

static void schedule_retry(struct gw_mqtt *m)
{
    m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (m->backoff_ms > BACKOFF_MAX_MS) {
        m->backoff_ms = BACKOFF_MAX_MS;
    }
    /* Jitter, so 300 gateways do not reconnect to the district in lockstep. */
    uint64_t delay = (uint64_t)m->backoff_ms / 2 + (uint64_t)(rand() % (m->backoff_ms / 2 + 1));
    uv_timer_start(&m->retry_timer, on_retry, delay, 0);
}

static void finish_close(struct gw_mqtt *m);

static void on_misc(uv_timer_t *t)
{
    struct gw_mqtt *m = t->data;
    if (m->closing) {
        bool drained = m->inflight == 0 && !mosquitto_want_write(m->mosq);
        if (!m->connected || drained || loop_ms(m) >= m->close_deadline_ms) {
            finish_close(m);
        }
        return;
    }
    if (m->poll) {
        after_io(m, mosquitto_loop_misc(m->mosq));
    }
}

static void on_connect_cb(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq;
    struct gw_mqtt *m = obj;
    if (rc != 0) {
        /* The broker closes the socket after a refused CONNACK; the read path notices. */
        gw_error("mqtt", "%s broker refused connection host=%s port=%d reason=\"%s\"", m->name,
                 m->host, m->port, mosquitto_connack_string(rc));
        return;
    }
    m->connected = true;
    m->backoff_ms = 0;
    if (gw_release(&m->down)) {
        gw_info("mqtt", "%s broker reachable again host=%s port=%d", m->name, m->host, m->port);
    } else {
        gw_info("mqtt", "%s connected host=%s port=%d", m->name, m->host, m->port);
    }
    if (m->cb.on_connect) {
        m->cb.on_connect(m->ctx);
    }
}

static void on_publish_cb(struct mosquitto *mosq, void *obj, int mid)
{
    (void)mosq;
    struct gw_mqtt *m = obj;
    if (m->inflight > 0) {
        m->inflight--;
    }
    if (m->cb.on_publish) {
        m->cb.on_publish(m->ctx, mid);
    }
}

static void on_message_cb(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
    (void)mosq;
    struct gw_mqtt *m = obj;
    if (m->cb.on_message) {
        m->cb.on_message(m->ctx, msg->topic, msg->payload, (size_t)msg->payloadlen);
    }
}

struct gw_mqtt *gw_mqtt_new(uv_loop_t *loop, const struct gw_mqtt_options *opt,
                            const struct gw_mqtt_callbacks *cb, void *ctx)
{
    static bool lib_ready;
    if (!lib_ready) {
        mosquitto_lib_init();
        lib_ready = true;
    }
    struct gw_mqtt *m = calloc(1, sizeof(*m));
    if (!m) {
        return NULL;
    }
    m->loop = loop;
    m->name = strdup(opt->name);
    m->host = strdup(opt->host);
    m->port = opt->port;
    m->keepalive_s = opt->keepalive_s > 0 ? opt->keepalive_s : 30;
    if (cb) {
        m->cb = *cb;
    }
    m->ctx = ctx;
    m->mosq = mosquitto_new(opt->client_id, true, m);
    if (!m->name || !m->host || !m->mosq) {
        gw_error("mqtt", "cannot create client name=%s", opt->name);
        goto fail;
    }
    mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* An alarm is one small packet: Nagle + delayed ACK would hold it ~40 ms for nothing. */
    mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    /* Beyond the window libmosquitto queues in memory; the core bounds that by its batch size. */
    mosquitto_max_inflight_messages_set(
        m->mosq, (unsigned)(opt->max_inflight > 0 ? opt->max_inflight : MAX_INFLIGHT));
    if (opt->username &&
        mosquitto_username_pw_set(m->mosq, opt->username, opt->password) != MOSQ_ERR_SUCCESS) {
        gw_error("mqtt", "%s: cannot set credentials", opt->name);
        goto fail;
    }
    if (opt->tls && opt->tls->ca_file) {
        int rc = mosquitto_tls_set(m->mosq, opt->tls->ca_file, NULL, opt->tls->cert_file,
                                   opt->tls->key_file, NULL);
        if (rc == MOSQ_ERR_SUCCESS) {
            rc = mosquitto_tls_insecure_set(m->mosq, opt->tls->insecure);
        }
        if (rc != MOSQ_ERR_SUCCESS) {
            gw_error("mqtt", "%s: TLS setup failed reason=\"%s\"", opt->name,
                     mosquitto_strerror(rc));
            goto fail;
        }
    }
    if (opt->will_topic &&
        mosquitto_will_set(m->mosq, opt->will_topic, (int)strlen(opt->will_payload),
                           opt->will_payload, opt->will_qos,
                           opt->will_retain) != MOSQ_ERR_SUCCESS) {
        gw_error("mqtt", "%s: cannot set last will", opt->name);
        goto fail;
    }
    mosquitto_connect_callback_set(m->mosq, on_connect_cb);
    mosquitto_publish_callback_set(m->mosq, on_publish_cb);
    mosquitto_message_callback_set(m->mosq, on_message_cb);
    uv_timer_init(loop, &m->misc_timer);
    uv_timer_init(loop, &m->retry_timer);
    m->misc_timer.data = m;
    m->retry_timer.data = m;
    m->open_handles = 2;
    return m;
fail:
    if (m->mosq) {
        mosquitto_destroy(m->mosq);
    }
    free(m->name);
    free(m->host);
    free(m);
    return NULL;
}

int gw_mqtt_start(struct gw_mqtt *m)
{
    uv_timer_start(&m->misc_timer, on_misc, 1000, 1000);
    try_connect(m, true);
    return 0;
}

bool gw_mqtt_connected(const struct gw_mqtt *m)
{
    return m->connected;
}

int gw_mqtt_publish(struct gw_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                    bool retain, int *mid)
{
    if (!m->connected || !m->poll) {
        return -ENOTCONN;
    }
    int rc = mosquitto_publish(m->mosq, mid, topic, (int)len, payload, qos, retain);
    if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
        connection_lost(m, mosquitto_strerror(rc));
        return -ENOTCONN;
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        return rc == MOSQ_ERR_NOMEM ? -ENOMEM : rc == MOSQ_ERR_ERRNO ? -errno : -EINVAL;
    }
    if (qos > 0) {
        m->inflight++;
    }
    if (mosquitto_socket(m->mosq) < 0) {
        connection_lost(m, "socket closed");
        return 0; /* QoS 1 messages stay queued in libmosquitto and go after reconnect */
    }
    update_events(m);
    return 0;
}

int gw_mqtt_subscribe(struct gw_mqtt *m, const char *pattern, int qos)
{
    if (!m->connected) {
        return -ENOTCONN;
    }
    int rc = mosquitto_subscribe(m->mosq, NULL, pattern, qos);
    update_events(m);
    return rc == MOSQ_ERR_SUCCESS ? 0 : -EIO;
}

bool gw_mqtt_write_pending(const struct gw_mqtt *m)
{
    return m->poll && mosquitto_want_write(m->mosq);
}

size_t gw_mqtt_pending(const struct gw_mqtt *m)
{
    return m->inflight;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct gw_mqtt *m = h->data;
    if (--m->open_handles > 0) {
        return;
    }
    if (m->done) {
        m->done(m->ctx);
    }
    mosquitto_destroy(m->mosq);
    free(m->name);
    free(m->host);
    free(m);
}

static void finish_close(struct gw_mqtt *m)
{
    if (m->connected) {
        mosquitto_disconnect(m->mosq);
        mosquitto_loop_write(m->mosq, 1);
    }
    m->connected = false;
    drop_poll(m);
    uv_timer_stop(&m->misc_timer);
    uv_timer_stop(&m->retry_timer);
    uv_close((uv_handle_t *)&m->misc_timer, on_handle_closed);
    uv_close((uv_handle_t *)&m->retry_timer, on_handle_closed);
}

void gw_mqtt_close(struct gw_mqtt *m, int timeout_ms, void (*done)(void *ctx))
{
    if (m->closing) {
        return;
    }
    m->closing = true;
    m->done = done;
    m->close_deadline_ms = loop_ms(m) + timeout_ms;
    uv_timer_stop(&m->retry_timer);
    if (!m->connected) {
        finish_close(m);
        return;
    }
    /* Check every 20 ms until everything queued is out or the deadline passes. */
    uv_timer_start(&m->misc_timer, on_misc, 0, 20);
}
