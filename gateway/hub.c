#include "hub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mqtt_loop.h"

#define TOPIC_MAX 512
#define CLOSE_TIMEOUT_MS 2000

static const char offline_status[] = "{\"online\":false}";

struct gw_hub {
    struct gw_mqtt *mqtt;
    char prefix[256];
    char client_id[256];
    char will_topic[TOPIC_MAX];
    void (*on_connect)(void *ctx);
    void *ctx;
    void (*done)(void *ctx);
    void *done_ctx;
    struct gw_hub_stats stats;
};

static void on_mqtt_connect(void *ctx)
{
    struct gw_hub *hub = ctx;
    if (hub->on_connect) {
        hub->on_connect(hub->ctx);
    }
}

struct gw_hub *gw_hub_new(uv_loop_t *loop, const struct gw_config *cfg,
                          void (*on_connect)(void *ctx), void *ctx)
{
    struct gw_hub *hub = calloc(1, sizeof(*hub));
    if (!hub) {
        return NULL;
    }
    const struct gw_hub_cfg *h = &cfg->hub;
    snprintf(hub->prefix, sizeof(hub->prefix), "%s/%s/%s", h->topic_prefix, cfg->site.district,
             cfg->site.school);
    snprintf(hub->will_topic, sizeof(hub->will_topic), "%s/status", hub->prefix);
    if (h->client_id) {
        snprintf(hub->client_id, sizeof(hub->client_id), "%s", h->client_id);
    } else {
        snprintf(hub->client_id, sizeof(hub->client_id), "campusgw-%s-%s", cfg->site.district,
                 cfg->site.school);
    }
    hub->on_connect = on_connect;
    hub->ctx = ctx;
    struct gw_mqtt_options opt = {
        .name = "hub",
        .host = h->host,
        .port = h->port,
        .client_id = hub->client_id,
        .username = h->username,
        .password = h->password,
        .keepalive_s = h->keepalive_s,
        .tls = &h->tls,
        .will_topic = hub->will_topic,
        .will_payload = offline_status,
        .will_qos = 1,
        .will_retain = true,
    };
    struct gw_mqtt_callbacks cb = {.on_connect = on_mqtt_connect};
    hub->mqtt = gw_mqtt_new(loop, &opt, &cb, hub);
    if (!hub->mqtt) {
        free(hub);
        return NULL;
    }
    return hub;
}

int gw_hub_start(struct gw_hub *hub)
{
    return gw_mqtt_start(hub->mqtt);
}

bool gw_hub_connected(const struct gw_hub *hub)
{
    return gw_mqtt_connected(hub->mqtt);
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

bool gw_hub_same_settings(const struct gw_config *a, const struct gw_config *b)
{
    const struct gw_hub_cfg *x = &a->hub, *y = &b->hub;
    return same_str(x->host, y->host) && x->port == y->port &&
           same_str(x->topic_prefix, y->topic_prefix) && same_str(x->username, y->username) &&
           same_str(x->password, y->password) && same_str(x->client_id, y->client_id) &&
           x->keepalive_s == y->keepalive_s && same_str(x->tls.ca_file, y->tls.ca_file) &&
           same_str(x->tls.cert_file, y->tls.cert_file) &&
           same_str(x->tls.key_file, y->tls.key_file) && x->tls.insecure == y->tls.insecure &&
           same_str(a->site.district, b->site.district) && same_str(a->site.school, b->site.school);
}

int gw_hub_publish(struct gw_hub *hub, const char *suffix, const char *payload, size_t len, int qos,
                   bool retain)
{
    if (!gw_mqtt_connected(hub->mqtt)) {
        hub->stats.not_connected++;
        return -ENOTCONN;
    }
    char topic[TOPIC_MAX];
    int n = snprintf(topic, sizeof(topic), "%s/%s", hub->prefix, suffix);
    if (n < 0 || n >= (int)sizeof(topic)) {
        hub->stats.failed++;
        return -ENAMETOOLONG;
    }
    int rc = gw_mqtt_publish(hub->mqtt, topic, payload, len, qos, retain, NULL);
    if (rc == 0) {
        hub->stats.published++;
    } else if (rc == -ENOTCONN) {
        hub->stats.not_connected++;
    } else {
        hub->stats.failed++;
    }
    return rc;
}

const char *gw_hub_prefix(const struct gw_hub *hub)
{
    return hub->prefix;
}

void gw_hub_stats(const struct gw_hub *hub, struct gw_hub_stats *out)
{
    *out = hub->stats;
}

static void on_mqtt_closed(void *ctx)
{
    struct gw_hub *hub = ctx;
    void (*done)(void *) = hub->done;
    void *done_ctx = hub->done_ctx;
    free(hub);
    if (done) {
        done(done_ctx);
    }
}

void gw_hub_close(struct gw_hub *hub, const char *final_status, void (*done)(void *ctx), void *ctx)
{
    hub->done = done;
    hub->done_ctx = ctx;
    if (final_status) {
        gw_hub_publish(hub, "status", final_status, strlen(final_status), 1, true);
    }
    gw_mqtt_close(hub->mqtt, CLOSE_TIMEOUT_MS, on_mqtt_closed);
}
