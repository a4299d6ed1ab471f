/*
 * The MQTT sinks: the school hub and the district uplink. Both publish outbox
 * records on P/<topic> (P = <topic_prefix>/<district>/<school>) with a last
 * will {"online":false} on P/status, and report a batch delivered only when
 * every QoS 1 message of it has its PUBACK. The hub sends telemetry at QoS 0
 * (local, loss-tolerant, cheap); the uplink sends everything at QoS 1.
 *
 * Retained topics (health, alarms) are remembered as last published, and
 * republished after every reconnect: a broker restarted without persistence
 * has lost them, and the outbox will not send them again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mqtt_loop.h"
#include "sink.h"
#include "sink_mqtt.h"

#define TOPIC_MAX 512
#define CLOSE_TIMEOUT_MS 2000

static const char offline_status[] = "{\"online\":false}";

/* topic -> last retained payload, chained hash. */
struct retained_entry {
    struct retained_entry *next;
    char *topic;
    char *payload;
};

#define RETAINED_BUCKETS 1024

struct mqtt_sink {
    const char *name;
    bool uplink;
    struct gw_mqtt *mqtt;
    char prefix[256];
    char client_id[256];
    char will_topic[TOPIC_MAX];
    char *status; /* last status payload, republished on connect */

    /* the batch in flight: its QoS 1 message ids awaiting PUBACK */
    gw_sink_done_fn done;
    void *done_ctx;
    int *mids;
    int nmids, cap_mids;
    int unacked;
    bool wait_drain;  /* a QoS 0 batch is done once written to the socket */
    uv_timer_t defer; /* done() never runs inside submit() */
    enum gw_sink_result deferred_result;

    struct retained_entry *retained[RETAINED_BUCKETS];
    gw_sink_mqtt_command_fn on_command; /* P/cmd/<name> messages, NULL: not subscribed */
    void *command_ctx;
    bool stopping;
    void (*closed)(void *ctx);
    void *closed_ctx;
    int open_handles;
};

static unsigned hash(const char *s)
{
    unsigned h = 5381;
    while (*s) {
        h = h * 33 + (unsigned char)*s++;
    }
    return h % RETAINED_BUCKETS;
}

static void remember_retained(struct mqtt_sink *s, const char *topic, const char *payload)
{
    struct retained_entry **pp = &s->retained[hash(topic)];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->topic, topic) == 0) {
            break;
        }
    }
    if (!payload[0]) { /* cleared: nothing to restore */
        if (*pp) {
            struct retained_entry *e = *pp;
            *pp = e->next;
            free(e->topic);
            free(e->payload);
            free(e);
        }
        return;
    }
    char *copy = strdup(payload);
    if (!copy) {
        return;
    }
    if (*pp) {
        free((*pp)->payload);
        (*pp)->payload = copy;
        return;
    }
    struct retained_entry *e = calloc(1, sizeof(*e));
    if (!e || !(e->topic = strdup(topic))) {
        free(e);
        free(copy);
        return;
    }
    e->payload = copy;
    *pp = e;
}

static void free_retained(struct mqtt_sink *s)
{
    for (int b = 0; b < RETAINED_BUCKETS; b++) {
        while (s->retained[b]) {
            struct retained_entry *e = s->retained[b];
            s->retained[b] = e->next;
            free(e->topic);
            free(e->payload);
            free(e);
        }
    }
}

static int publish(struct mqtt_sink *s, const char *suffix, const char *payload, size_t len,
                   int qos, bool retain, int *mid)
{
    char topic[TOPIC_MAX];
    int n = snprintf(topic, sizeof(topic), "%s/%s", s->prefix, suffix);
    if (n < 0 || n >= (int)sizeof(topic)) {
        return -ENAMETOOLONG;
    }
    return gw_mqtt_publish(s->mqtt, topic, payload, len, qos, retain, mid);
}

static void finish_batch(struct mqtt_sink *s, enum gw_sink_result result)
{
    gw_sink_done_fn done = s->done;
    s->done = NULL;
    s->nmids = 0;
    s->unacked = 0;
    s->wait_drain = false;
    if (done) {
        done(s->done_ctx, result, result == GW_SINK_OK ? NULL : "broker connection lost", NULL, 0,
             0);
    }
}

static void on_defer(uv_timer_t *t)
{
    struct mqtt_sink *s = t->data;
    finish_batch(s, s->deferred_result);
}

static void defer_finish(struct mqtt_sink *s, enum gw_sink_result result)
{
    s->deferred_result = result;
    uv_timer_start(&s->defer, on_defer, 0, 0);
}

static void subscribe_commands(struct mqtt_sink *s)
{
    if (!s->on_command) {
        return;
    }
    /* + matches one level only: the hazard commands (P/cmd/hazard/open, ...) need their own. */
    static const char *const filters[] = {"cmd/+", "cmd/hazard/+"};
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        char topic[TOPIC_MAX];
        snprintf(topic, sizeof(topic), "%s/%s", s->prefix, filters[i]);
        if (gw_mqtt_subscribe(s->mqtt, topic, 1) != 0) {
            gw_error("mqtt", "%s: cannot subscribe to %s: commands from there are not heard",
                     s->name, topic);
        }
    }
}

static void on_connect(void *ctx)
{
    struct mqtt_sink *s = ctx;
    if (s->status) {
        publish(s, "status", s->status, strlen(s->status), 1, true, NULL);
    }
    int n = 0;
    for (int b = 0; b < RETAINED_BUCKETS; b++) {
        for (struct retained_entry *e = s->retained[b]; e; e = e->next) {
            char topic[TOPIC_MAX];
            snprintf(topic, sizeof(topic), "%s/%s", s->prefix, e->topic);
            gw_mqtt_publish(s->mqtt, topic, e->payload, strlen(e->payload), 1, true, NULL);
            n++;
        }
    }
    if (n > 0) {
        gw_info("mqtt", "%s republished retained topics count=%d", s->name, n);
    }
    subscribe_commands(s);
}

/* P/cmd/<name> and P/cmd/hazard/<name> (name "hazard/<name>") only: P/cmd/result is ours (and
 * never subscribed: cmd/+ matches it, skip). */
static void on_message(void *ctx, const char *topic, const void *payload, size_t len)
{
    struct mqtt_sink *s = ctx;
    size_t plen = strlen(s->prefix);
    if (!s->on_command || strncmp(topic, s->prefix, plen) != 0 ||
        strncmp(topic + plen, "/cmd/", 5) != 0) {
        return;
    }
    const char *name = topic + plen + 5;
    if (strcmp(name, "result") == 0) {
        return;
    }
    s->on_command(s->command_ctx, s->name, name, payload, len);
}

static void on_disconnect(void *ctx)
{
    struct mqtt_sink *s = ctx;
    if (s->done) {
        /* Whatever was not acknowledged goes again: at least once. */
        defer_finish(s, GW_SINK_RETRY);
    }
}

static void on_drained(void *ctx)
{
    struct mqtt_sink *s = ctx;
    if (s->done && s->wait_drain && !uv_is_active((uv_handle_t *)&s->defer)) {
        finish_batch(s, GW_SINK_OK);
    }
}

static void on_puback(void *ctx, int mid)
{
    struct mqtt_sink *s = ctx;
    if (!s->done || s->unacked == 0) {
        return;
    }
    for (int i = 0; i < s->nmids; i++) {
        if (s->mids[i] == mid) {
            s->mids[i] = s->mids[--s->nmids];
            if (--s->unacked == 0 && !uv_is_active((uv_handle_t *)&s->defer)) {
                finish_batch(s, GW_SINK_OK);
            }
            return;
        }
    }
}

static void *sink_init(const struct gw_config *cfg, uv_loop_t *loop, bool uplink)
{
    struct mqtt_sink *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->uplink = uplink;
    s->name = uplink ? "uplink" : "hub";
    const struct gw_hub_cfg *h = &cfg->hub;
    const struct gw_uplink_cfg *u = &cfg->uplink;
    const char *prefix = uplink && u->topic_prefix ? u->topic_prefix : h->topic_prefix;
    const char *client_id = uplink ? u->client_id : h->client_id;
    snprintf(s->prefix, sizeof(s->prefix), "%s/%s/%s", prefix ? prefix : "campus",
             cfg->site.district, cfg->site.school);
    snprintf(s->will_topic, sizeof(s->will_topic), "%s/status", s->prefix);
    if (client_id) {
        snprintf(s->client_id, sizeof(s->client_id), "%s", client_id);
    } else {
        snprintf(s->client_id, sizeof(s->client_id), "campusgw-%s-%s", cfg->site.district,
                 cfg->site.school);
    }
    struct gw_mqtt_options opt = {
        .name = s->name,
        .host = uplink ? u->host : h->host,
        .port = uplink ? u->port : h->port,
        .client_id = s->client_id,
        .username = uplink ? u->username : h->username,
        .password = uplink ? u->password : h->password,
        .keepalive_s = uplink ? u->keepalive_s : h->keepalive_s,
        .max_inflight = uplink ? u->max_inflight : 0,
        .tls = uplink ? &u->tls : &h->tls,
        .will_topic = s->will_topic,
        .will_payload = offline_status,
        .will_qos = 1,
        .will_retain = true,
    };
    struct gw_mqtt_callbacks cb = {.on_connect = on_connect,
                                   .on_disconnect = on_disconnect,
                                   .on_publish = on_puback,
                                   .on_message = on_message,
                                   .on_drained = on_drained};
    s->mqtt = gw_mqtt_new(loop, &opt, &cb, s);
    if (!s->mqtt) {
        free(s);
        return NULL;
    }
    uv_timer_init(loop, &s->defer);
    s->defer.data = s;
    s->open_handles = 1;
    return s;
}

static void *hub_init(const struct gw_config *cfg, uv_loop_t *loop)
{
    return sink_init(cfg, loop, false);
}

static void *uplink_init(const struct gw_config *cfg, uv_loop_t *loop)
{
    return sink_init(cfg, loop, true);
}

static int sink_start(void *state)
{
    struct mqtt_sink *s = state;
    return gw_mqtt_start(s->mqtt);
}

static bool sink_ready(void *state)
{
    struct mqtt_sink *s = state;
    return !s->stopping && gw_mqtt_connected(s->mqtt);
}

static bool sink_wants(void *state, enum gw_record_type type)
{
    (void)state;
    /* Everything, metrics on P/metrics too: a consumer sees every seq, gap-free. */
    (void)type;
    return true;
}

static int qos_of(const struct mqtt_sink *s, enum gw_record_type type)
{
    return type == GW_REC_TELEMETRY && !s->uplink ? 0 : 1;
}

static void sink_submit(void *state, const struct gw_record *recs, int n, gw_sink_done_fn done,
                        void *ctx)
{
    struct mqtt_sink *s = state;
    s->done = done;
    s->done_ctx = ctx;
    s->nmids = 0;
    s->unacked = 0;
    if (n > s->cap_mids) {
        int *m = realloc(s->mids, sizeof(*m) * (size_t)n);
        if (!m) {
            defer_finish(s, GW_SINK_RETRY);
            return;
        }
        s->mids = m;
        s->cap_mids = n;
    }
    for (int i = 0; i < n; i++) {
        const struct gw_record *r = &recs[i];
        if (!sink_wants(s, r->type)) {
            continue;
        }
        bool retain = r->type == GW_REC_HEALTH || r->type == GW_REC_ALARM ||
                      r->type == GW_REC_FORWARDER || r->type == GW_REC_HAZARD ||
                      r->type == GW_REC_KPI || r->type == GW_REC_DAILY_LOG;
        int qos = qos_of(s, r->type);
        int mid = 0;
        int rc = publish(s, r->topic, r->payload, r->payload_len, qos, retain, &mid);
        if (rc == -ENAMETOOLONG) {
            gw_error("mqtt", "%s topic too long, record skipped seq=%llu", s->name,
                     (unsigned long long)r->seq);
            continue;
        }
        if (rc != 0) {
            /* Lost the connection (on_disconnect finishes with RETRY) or out of memory. */
            if (!uv_is_active((uv_handle_t *)&s->defer)) {
                defer_finish(s, GW_SINK_RETRY);
            }
            return;
        }
        if (retain) {
            remember_retained(s, r->topic, r->payload);
        }
        if (qos > 0) {
            s->mids[s->nmids++] = mid;
            s->unacked++;
        }
    }
    if (s->unacked == 0) {
        /* Only QoS 0: done when written, so a slow broker slows us instead of filling memory. */
        if (gw_mqtt_write_pending(s->mqtt)) {
            s->wait_drain = true;
        } else {
            defer_finish(s, GW_SINK_OK);
        }
    }
}

static void on_handle_closed(void *ctx);

static void on_mqtt_closed(void *ctx)
{
    on_handle_closed(ctx);
}

static void on_defer_closed(uv_handle_t *h)
{
    on_handle_closed(h->data);
}

static void on_handle_closed(void *ctx)
{
    struct mqtt_sink *s = ctx;
    if (--s->open_handles == 0 && s->closed) {
        s->closed(s->closed_ctx);
    }
}

static void sink_stop(void *state, void (*closed)(void *ctx), void *ctx)
{
    struct mqtt_sink *s = state;
    s->stopping = true;
    s->closed = closed;
    s->closed_ctx = ctx;
    if (s->done) {
        uv_timer_stop(&s->defer);
        finish_batch(s, GW_SINK_RETRY);
    }
    /* The clean goodbye: a retained offline status, then DISCONNECT (no last will). */
    const char *final =
        s->status && strstr(s->status, "\"online\":false") ? s->status : offline_status;
    if (gw_mqtt_connected(s->mqtt)) {
        publish(s, "status", final, strlen(final), 1, true, NULL);
    }
    s->open_handles = 2;
    uv_close((uv_handle_t *)&s->defer, on_defer_closed);
    gw_mqtt_close(s->mqtt, CLOSE_TIMEOUT_MS, on_mqtt_closed);
    s->mqtt = NULL; /* freed by gw_mqtt_close once closed */
}

static void sink_destroy(void *state)
{
    struct mqtt_sink *s = state;
    if (!s) {
        return;
    }
    free_retained(s);
    free(s->mids);
    free(s->status);
    free(s);
}

void gw_sink_mqtt_set_status(void *state, const char *status_json)
{
    struct mqtt_sink *s = state;
    char *copy = strdup(status_json);
    if (!copy) {
        return;
    }
    free(s->status);
    s->status = copy;
    if (!s->stopping && gw_mqtt_connected(s->mqtt)) {
        publish(s, "status", s->status, strlen(s->status), 1, true, NULL);
    }
}

void gw_sink_mqtt_set_command_handler(void *state, gw_sink_mqtt_command_fn fn, void *ctx)
{
    struct mqtt_sink *s = state;
    s->on_command = fn;
    s->command_ctx = ctx;
    if (gw_mqtt_connected(s->mqtt)) {
        subscribe_commands(s);
    }
}

bool gw_sink_mqtt_connected(void *state)
{
    struct mqtt_sink *s = state;
    return s->mqtt && gw_mqtt_connected(s->mqtt);
}

const char *gw_sink_mqtt_prefix(void *state)
{
    struct mqtt_sink *s = state;
    return s->prefix;
}

const struct gw_sink_ops gw_sink_hub = {
    .name = "hub",
    .init = hub_init,
    .start = sink_start,
    .ready = sink_ready,
    .wants = sink_wants,
    .submit = sink_submit,
    .stop = sink_stop,
    .destroy = sink_destroy,
};

const struct gw_sink_ops gw_sink_uplink = {
    .name = "uplink",
    .init = uplink_init,
    .start = sink_start,
    .ready = sink_ready,
    .wants = sink_wants,
    .submit = sink_submit,
    .stop = sink_stop,
    .destroy = sink_destroy,
};
