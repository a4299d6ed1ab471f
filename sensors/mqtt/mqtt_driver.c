/*
 * MQTT sources driver: sensors whose readings arrive as messages on the hub
 * (Zigbee2MQTT / Wi-Fi / NB-IoT bridges, ChirpStack v4 uplink events). It
 * holds its own connection to the hub (client id "<hub client_id>-src", the
 * hub's host, port, credentials and TLS) through the shared libmosquitto
 * loop adapter, subscribes once per distinct topic filter on every connect
 * (clean sessions: a restarted broker forgets subscriptions), and hands
 * the router's readings to the core on the loop thread.
 *
 * Bad payloads are counted and logged per sensor (or per subscription when
 * no sensor can be told) once, then with growing spacing; the recovery once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "driver.h"
#include "gateway.h"
#include "log.h"
#include "mqtt/mqtt_source.h"
#include "mqtt_loop.h"

#define MOD "mqtt_source"
#define SUBSCRIBE_QOS 1

struct ms_driver {
    uv_loop_t *loop;
    gw_dispatch_fn dispatch;
    void *core;
    struct gw_mqtt_router *router;
    struct gw_mqtt *mqtt; /* freed by gw_mqtt_close, which then frees this state */
    char client_id[300];
    bool started;
    bool stopped; /* no dispatch once set */

    int nsources, nfilters;
    struct gw_complaint *source_complaints;
    struct gw_complaint *filter_complaints; /* rejects no sensor could be told for */

    uint64_t messages, readings, rejected, ignored;
};

static int64_t loop_ms(const struct ms_driver *drv)
{
    return (int64_t)uv_now(drv->loop);
}

static void on_reading(void *ctx, int source, const struct gw_reading *r)
{
    struct ms_driver *drv = ctx;
    drv->readings++;
    if (source >= 0 && source < drv->nsources && gw_release(&drv->source_complaints[source])) {
        gw_info(MOD, "sensor %s: messages readable again", r->sensor);
    }
    drv->dispatch(drv->core, r);
}

static void on_rejected(void *ctx, int source, int filter, const char *topic, const char *why)
{
    struct ms_driver *drv = ctx;
    drv->rejected++;
    struct gw_complaint *c = NULL;
    if (source >= 0 && source < drv->nsources) {
        c = &drv->source_complaints[source];
    } else if (filter >= 0 && filter < drv->nfilters) {
        c = &drv->filter_complaints[filter];
    }
    uint64_t suppressed = c ? c->suppressed : 0;
    if (c && !gw_complain(c, loop_ms(drv))) {
        return;
    }
    if (c) {
        c->suppressed = 0; /* "since the last line" (log.h) */
    }
    char more[48] = "";
    if (suppressed > 0) {
        snprintf(more, sizeof(more), " suppressed=%llu", (unsigned long long)suppressed);
    }
    if (source >= 0) {
        gw_warn(MOD, "sensor %s: message rejected topic=%s reason=\"%s\"%s",
                gw_mqtt_router_sensor(drv->router, source), topic, why, more);
    } else {
        gw_warn(MOD, "message rejected topic=%s subscription=%s reason=\"%s\"%s", topic,
                filter >= 0 ? gw_mqtt_router_filter(drv->router, filter) : "?", why, more);
    }
}

static void on_message(void *ctx, const char *topic, const void *payload, size_t len)
{
    struct ms_driver *drv = ctx;
    if (drv->stopped) {
        return;
    }
    drv->messages++;
    struct gw_mqtt_handler h = {.reading = on_reading, .rejected = on_rejected, .ctx = drv};
    struct gw_mqtt_result res;
    gw_mqtt_router_handle(drv->router, topic, payload, len, gw_now_ms(), &h, &res);
    if (res.ignored) {
        drv->ignored++;
        gw_debug(MOD, "message ignored topic=%s reason=\"%s\"", topic, res.ignored_why);
    }
}

static void on_connect(void *ctx)
{
    struct ms_driver *drv = ctx;
    if (drv->stopped) {
        return; /* closing: the router is gone */
    }
    int ok = 0;
    for (int i = 0; i < drv->nfilters; i++) {
        const char *f = gw_mqtt_router_filter(drv->router, i);
        int rc = gw_mqtt_subscribe(drv->mqtt, f, SUBSCRIBE_QOS);
        if (rc < 0) {
            gw_error(MOD, "cannot subscribe topic=%s: %s", f, strerror(-rc));
            continue;
        }
        ok++;
    }
    gw_info(MOD, "subscribed topics=%d sensors=%d client_id=%s", ok, drv->nsources, drv->client_id);
}

static void free_parts(struct ms_driver *drv)
{
    gw_mqtt_router_free(drv->router);
    drv->router = NULL;
    free(drv->source_complaints);
    drv->source_complaints = NULL;
    free(drv->filter_complaints);
    drv->filter_complaints = NULL;
}

static void *ms_init(const struct gw_config *cfg, uv_loop_t *loop, gw_dispatch_fn dispatch,
                     void *core)
{
    struct ms_driver *drv = calloc(1, sizeof(*drv));
    if (!drv) {
        gw_error(MOD, "init: out of memory");
        return NULL;
    }
    drv->loop = loop;
    drv->dispatch = dispatch;
    drv->core = core;
    char err[256];
    err[0] = '\0';
    drv->router = gw_mqtt_router_new(cfg, err, sizeof(err));
    if (!drv->router) {
        gw_error(MOD, "init: %s", err);
        goto fail;
    }
    drv->nsources = gw_mqtt_router_nsources(drv->router);
    drv->nfilters = gw_mqtt_router_nfilters(drv->router);
    drv->source_complaints = calloc((size_t)drv->nsources + 1, sizeof(*drv->source_complaints));
    drv->filter_complaints = calloc((size_t)drv->nfilters + 1, sizeof(*drv->filter_complaints));
    if (!drv->source_complaints || !drv->filter_complaints) {
        gw_error(MOD, "init: out of memory");
        goto fail;
    }
    const struct gw_hub_cfg *hub = &cfg->hub;
    if (hub->client_id) {
        snprintf(drv->client_id, sizeof(drv->client_id), "%s-src", hub->client_id);
    } else {
        snprintf(drv->client_id, sizeof(drv->client_id), "campusgw-%s-%s-src", cfg->site.district,
                 cfg->site.school);
    }
    struct gw_mqtt_options opt = {
        .name = "hub-src",
        .host = hub->host ? hub->host : "127.0.0.1",
        .port = hub->port > 0 ? hub->port : (hub->tls.ca_file ? 8883 : 1883),
        .client_id = drv->client_id,
        .username = hub->username,
        .password = hub->password,
        .keepalive_s = hub->keepalive_s,
        .tls = &hub->tls,
    };
    struct gw_mqtt_callbacks cb = {.on_connect = on_connect, .on_message = on_message};
    drv->mqtt = gw_mqtt_new(loop, &opt, &cb, drv);
    if (!drv->mqtt) {
        gw_error(MOD, "init: cannot create the hub client client_id=%s", drv->client_id);
        goto fail;
    }
    return drv;
fail:
    free_parts(drv);
    free(drv);
    return NULL;
}

static int ms_start(void *state)
{
    struct ms_driver *drv = state;
    if (drv->started) {
        return -EALREADY;
    }
    drv->started = true;
    gw_info(MOD, "started sensors=%d topics=%d client_id=%s", drv->nsources, drv->nfilters,
            drv->client_id);
    return gw_mqtt_start(drv->mqtt);
}

static void ms_stop(void *state)
{
    struct ms_driver *drv = state;
    if (drv) {
        drv->stopped = true;
    }
}

static void on_mqtt_closed(void *ctx)
{
    free(ctx);
}

static void ms_destroy(void *state)
{
    struct ms_driver *drv = state;
    if (!drv) {
        return;
    }
    drv->stopped = true;
    free_parts(drv);
    struct gw_mqtt *m = drv->mqtt;
    drv->mqtt = NULL;
    if (m) {
        /* Nothing of ours to flush: disconnect at once; the state goes with the client. */
        gw_mqtt_close(m, 0, on_mqtt_closed);
    } else {
        free(drv);
    }
}

static void ms_stats(void *state, struct gw_driver_stats *out)
{
    struct ms_driver *drv = state;
    *out = (struct gw_driver_stats){
        .polls = drv->messages, .readings = drv->readings, .errors = drv->rejected, .dropped = 0};
}

static int ms_metrics(void *state, struct gw_metric *out, int max)
{
    struct ms_driver *drv = state;
    const struct gw_metric all[] = {
        {"mqtt_source_messages", (int64_t)drv->messages},
        {"mqtt_source_readings", (int64_t)drv->readings},
        {"mqtt_source_rejected", (int64_t)drv->rejected},
        {"mqtt_source_ignored", (int64_t)drv->ignored},
        {"mqtt_source_connected", drv->mqtt && gw_mqtt_connected(drv->mqtt) ? 1 : 0},
    };
    int n = (int)(sizeof(all) / sizeof(all[0]));
    if (n > max) {
        n = max;
    }
    if (n > 0) {
        memcpy(out, all, sizeof(all[0]) * (size_t)n);
    }
    return n;
}

static bool ms_wanted(const struct gw_config *cfg)
{
    for (int i = 0; i < cfg->nsensors; i++) {
        if (cfg->sensors[i].mqtt.enabled) {
            return true;
        }
    }
    return false;
}

const struct gw_driver_ops gw_mqtt_driver = {
    .name = "mqtt",
    .wanted = ms_wanted,
    .init = ms_init,
    .start = ms_start,
    .stop = ms_stop,
    .destroy = ms_destroy,
    .stats = ms_stats,
    .metrics = ms_metrics,
};
