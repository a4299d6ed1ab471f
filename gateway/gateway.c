#include "gateway.h"

#include <errno.h>
#include <jansson.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef GW_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "alarm.h"
#include "alarm_desk.h"
#include "alarms.h"
#include "daylog.h"
#include "prom.h"
#include "web.h"
#include "driver.h"
#include "kpi_report.h"
#include "log.h"
#include "outbox.h"
#include "payload.h"
#include "registry.h"
#include "rules.h"
#include "seq.h"
#include "sink_mqtt.h"
#include "store.h"

#define TICK_MS 1000
#define STATUS_EVERY_MS 60000
#define MAX_TRANSITIONS 64
#define MQTT_BATCH 500
/* InfluxDB does not care about the order of writes: convert the next batch while one is
 * on the wire. */
#define INFLUX_LANES 2
#define MAX_RETIRED 16
#define MAX_METRICS 96

/* Every sensor driver; each starts only when the config has something for it. */
static const struct gw_driver_ops *const driver_table[] = {
    &gw_modbus_driver,
    &gw_lora_driver,
    &gw_mqtt_driver,
};
#define GW_NDRIVERS (sizeof(driver_table) / sizeof(driver_table[0]))

struct gw_gateway {
    uv_loop_t *loop;
    struct gw_config *cfg;
    bool with_drivers;
    struct gw_registry *registry;
    struct gw_rules *rules;
    struct gw_seq seq;
    struct gw_store *store;
    struct gw_outbox *outbox;
    void *hub;                  /* the hub sink's state (status, prefix) */
    void *uplink;               /* NULL without an uplink section */
    void *drivers[GW_NDRIVERS]; /* state of each running driver of `driver_table` */

    struct gw_desk *desk; /* alarms, escalation, notifications, commands */
    struct gw_web *web;   /* the page, the JSON API, /metrics (NULL without an http section) */

    /* The daily safety log: state_dir/logs, P/log, P/cmd/report (NULL before start). */
    struct gw_daylog *daylog;
    struct gw_kpi_report *kpi; /* the school's figures: P/kpi, school_kpi */

    uv_timer_t tick;
    uv_timer_t commit_timer;
    uv_check_t alarm_commit; /* commits this iteration's alarm records, once */
    bool alarm_batch_open;
    bool store_failing; /* as last published on P/status */
    int64_t started_at_ms;
    int64_t next_status_ms;
    int64_t last_tick_wall_ms, last_tick_mono_ms; /* to notice clock steps */
    uint64_t watchdog_usec;

    /* Configs replaced by a reload whose sinks may still be closing; freed at the end. */
    struct gw_config *retired[MAX_RETIRED];
    int nretired;

    struct gw_gateway_stats stats;
    int closing;
    void (*done)(void *ctx);
    void *done_ctx;
};

int64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- records ---- */

/* Append one record to the outbox (it owns json) and wake the sinks. */
static void emit(struct gw_gateway *gw, enum gw_record_type type, int64_t ts_ms, const char *topic,
                 char *json, uint64_t seq)
{
    if (!json) {
        gw_error("gateway", "out of memory building a record topic=%s", topic);
        return;
    }
    gw_store_append(gw->store, seq, type, ts_ms, topic, json);
    if (gw_web_listening(gw->web)) {
        /* The page follows live: the same JSON as the hub, by kind of record. */
        static const char *const events[] = {
            [GW_REC_TELEMETRY] = "telemetry", [GW_REC_HEALTH] = "health", [GW_REC_ALARM] = "alarm",
            [GW_REC_EVENT] = "event",         [GW_REC_HAZARD] = "hazard",
        };
        if ((size_t)type < sizeof(events) / sizeof(events[0]) && events[type]) {
            if (type == GW_REC_ALARM && json[0] == '\0') {
                char cleared[GW_KEY_MAX + 32];
                snprintf(cleared, sizeof(cleared), "{\"key\":\"%s\",\"state\":\"normal\"}",
                         strncmp(topic, "alarms/", 7) == 0 ? topic + 7 : topic);
                gw_web_push(gw->web, "alarm", cleared);
            } else {
                gw_web_push(gw->web, events[type], json);
            }
        }
    }
    free(json);
    gw_outbox_kick(gw->outbox);
}

/* ---- what drivers may use (driver.h) ---- */

int gw_core_kv_set(void *core, const char *key, const char *value)
{
    struct gw_gateway *gw = core;
    return gw_store_kv_set(gw->store, key, value);
}

int gw_core_kv_each(void *core, const char *prefix, gw_kv_fn fn, void *ctx)
{
    struct gw_gateway *gw = core;
    return gw_store_kv_each(gw->store, prefix, fn, ctx);
}

uint64_t gw_core_next_seq(void *core)
{
    struct gw_gateway *gw = core;
    return gw_seq_next(&gw->seq);
}

void gw_core_emit(void *core, enum gw_record_type type, int64_t ts_ms, const char *topic,
                  char *json, uint64_t seq)
{
    emit(core, type, ts_ms, topic, json, seq);
}

static void emit_health(struct gw_gateway *gw, int sensor_index, int64_t now)
{
    const struct gw_sensor_cfg *s = &gw->cfg->sensors[sensor_index];
    const struct gw_sensor_health *h = gw_registry_get(gw->registry, sensor_index);
    char topic[GW_NAME_MAX + 16];
    snprintf(topic, sizeof(topic), "health/%s", s->id);
    uint64_t seq = gw_seq_next(&gw->seq);
    emit(gw, GW_REC_HEALTH, now, topic, gw_payload_health(seq, s, h), seq);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) {
            rss = 0;
        }
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void publish_status(struct gw_gateway *gw, bool online)
{
    struct gw_store_stats ss;
    gw_store_stats(gw->store, &ss);
    int on, off, bad;
    gw_registry_counts(gw->registry, &on, &off, &bad);
    struct gw_status st = {
        .online = online,
        .started_at_ms = gw->started_at_ms,
        .outbox = ss.outbox,
        .dropped = ss.dropped,
        .sensors_online = on,
        .sensors_offline = off,
        .store_error = ss.failing ? ss.last_error : NULL,
        .selftest = gw->desk ? gw_desk_selftest_json(gw->desk) : NULL,
    };
    char *json = gw_payload_status(&st);
    if (!json) {
        return;
    }
    gw_sink_mqtt_set_status(gw->hub, json);
    if (gw->uplink) {
        gw_sink_mqtt_set_status(gw->uplink, json);
    }
    free(json);
}

/* Every minute: the `gateway` record (InfluxDB) and P/status. */
static void emit_metrics(struct gw_gateway *gw, int64_t now)
{
    struct gw_store_stats ss;
    gw_store_stats(gw->store, &ss);
    struct gw_outbox_sink_stats sinks[4];
    int nsinks = gw_outbox_sink_stats(gw->outbox, sinks, 4);
    struct gw_metric m[MAX_METRICS];
    int n = 0;
    m[n++] = (struct gw_metric){"outbox", (int64_t)ss.outbox};
    m[n++] = (struct gw_metric){"readings", (int64_t)gw->stats.readings};
    m[n++] = (struct gw_metric){"poll_errors", (int64_t)gw->stats.poll_errors};
    m[n++] = (struct gw_metric){"transitions", (int64_t)gw->stats.transitions};
    m[n++] = (struct gw_metric){"dropped", (int64_t)ss.dropped};
    m[n++] = (struct gw_metric){"write_errors", (int64_t)ss.write_errors};
    m[n++] = (struct gw_metric){"dead_letters", (int64_t)ss.dead_letters};
    m[n++] = (struct gw_metric){"rss_kb", rss_kb()};
    m[n++] = (struct gw_metric){"uptime_s", (now - gw->started_at_ms) / 1000};
    static const char *const lag_names[] = {"lag_hub", "lag_uplink", "lag_influx"};
    for (int i = 0; i < nsinks; i++) {
        for (size_t k = 0; k < sizeof(lag_names) / sizeof(lag_names[0]); k++) {
            if (strcmp(lag_names[k] + 4, sinks[i].name) == 0) {
                m[n++] = (struct gw_metric){lag_names[k],
                                            (int64_t)gw_gateway_sink_lag(gw, sinks[i].name)};
            }
        }
    }
    if (gw->desk) {
        struct gw_desk_stats ds;
        gw_desk_stats(gw->desk, &ds);
        m[n++] = (struct gw_metric){"alarms_active", ds.active};
        m[n++] = (struct gw_metric){"alarms_unacked", ds.unacked};
        m[n++] = (struct gw_metric){"alarms_fire", ds.per_class[GW_CLASS_ALARM]};
        m[n++] = (struct gw_metric){"alarms_supervisory", ds.per_class[GW_CLASS_SUPERVISORY]};
        m[n++] = (struct gw_metric){"alarms_trouble", ds.per_class[GW_CLASS_TROUBLE]};
        m[n++] = (struct gw_metric){"commands", (int64_t)ds.commands};
        m[n++] = (struct gw_metric){"commands_refused", (int64_t)ds.commands_refused};
        m[n++] = (struct gw_metric){"notify_sent", (int64_t)ds.notify_sent};
        m[n++] = (struct gw_metric){"notify_failed", (int64_t)ds.notify_failed};
        m[n++] = (struct gw_metric){"notify_retries", (int64_t)ds.notify_retries};
        m[n++] = (struct gw_metric){"notify_pending", ds.notify_pending};
    }
    for (size_t i = 0; i < GW_NDRIVERS; i++) {
        if (gw->drivers[i] && driver_table[i]->metrics) {
            n += driver_table[i]->metrics(gw->drivers[i], m + n, MAX_METRICS - n);
        }
    }
    uint64_t seq = gw_seq_next(&gw->seq);
    emit(gw, GW_REC_GATEWAY, now, "metrics", gw_payload_metrics(seq, now, m, n), seq);
    publish_status(gw, true);
}

/* ---- alarms ---- */

static void on_alarm_commit(uv_check_t *h)
{
    struct gw_gateway *gw = h->data;
    uv_check_stop(h);
    gw->alarm_batch_open = false;
    gw_store_end_batch(gw->store);
    gw_outbox_kick(gw->outbox);
}

/*
 * The transitions of one loop iteration (a burst of readings from a bus, a
 * tick) are committed together at the end of it: one fsync for an alarm storm
 * instead of one per alarm, and still on disk before any sink sees them.
 */
static void open_alarm_batch(struct gw_gateway *gw)
{
    if (!gw->alarm_batch_open) {
        gw->alarm_batch_open = true;
        gw_store_begin_batch(gw->store);
        uv_check_start(&gw->alarm_commit, on_alarm_commit);
    }
}

static void desk_open_batch(void *core)
{
    open_alarm_batch(core);
}

static uint64_t desk_next_seq(void *core)
{
    struct gw_gateway *gw = core;
    return gw_seq_next(&gw->seq);
}

static void desk_status_changed(void *core)
{
    publish_status(core, true);
}

static void desk_emit(void *core, enum gw_record_type type, int64_t ts_ms, const char *topic,
                      char *json, uint64_t seq)
{
    emit(core, type, ts_ms, topic, json, seq);
}

static void handle_transitions(struct gw_gateway *gw, const struct gw_alarm_transition *t, int n,
                               bool test, int64_t now)
{
    if (n == 0) {
        return;
    }
    gw->stats.transitions += (uint64_t)n;
    gw_desk_on_transitions(gw->desk, t, n, test, now);
}

/* P/cmd/<name> from the hub or the uplink. */
static void on_command(void *ctx, const char *source, const char *name, const void *payload,
                       size_t len)
{
    struct gw_gateway *gw = ctx;
    if (strcmp(name, "report") == 0 && gw->daylog) {
        gw_daylog_command(gw->daylog, payload, len, gw_now_ms());
        return;
    }
    gw_desk_command(gw->desk, source, name, payload, len, gw_now_ms());
}

/* A detector's test button: the reading says test = true. */
static bool is_test_reading(const struct gw_reading *r)
{
    for (int i = 0; i < r->npoints; i++) {
        if (strcmp(r->points[i].name, "test") == 0 && r->points[i].value.type == GW_VALUE_BOOL) {
            return r->points[i].value.b;
        }
    }
    return false;
}

/* Telemetry of a sensor under maintenance still flows, marked. */
static char *mark_out_of_service(char *json)
{
    json_t *root = json ? json_loads(json, 0, NULL) : NULL;
    if (!root) {
        return json;
    }
    json_object_set_new(root, "out_of_service", json_true());
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(root);
    if (!s) {
        return json;
    }
    free(json);
    return s;
}

/*
 * A sink that starts afresh on a broker (a reload moved the hub or uplink)
 * continues from the shared cursor, so it would never see the retained state
 * already delivered elsewhere: send the current health and alarms once more.
 */
static void emit_snapshot(struct gw_gateway *gw)
{
    int64_t now = gw_now_ms();
    for (int i = 0; i < gw->cfg->nsensors; i++) {
        const struct gw_sensor_health *h = gw_registry_get(gw->registry, i);
        if (h->ever_seen || h->errors > 0) {
            emit_health(gw, i, now);
        }
    }
    gw_desk_snapshot(gw->desk, now);
}

/* ---- readings ---- */

void gw_gateway_dispatch(void *core, const struct gw_reading *r)
{
    struct gw_gateway *gw = core;
    if (r->sensor_index < 0 || r->sensor_index >= gw->cfg->nsensors ||
        strcmp(gw->cfg->sensors[r->sensor_index].id, r->sensor) != 0) {
        return; /* from before a reload */
    }
    gw->stats.readings++;
    int64_t now = gw_now_ms();
    if (gw_registry_update(gw->registry, r)) {
        emit_health(gw, r->sensor_index, now);
    }
    if (r->status != GW_READING_OK) {
        gw->stats.poll_errors++;
        return;
    }
    if (r->npoints == 0) {
        return; /* a sign of life without values (a LoRa frame with MAC commands only) */
    }
    const struct gw_sensor_cfg *s = &gw->cfg->sensors[r->sensor_index];
    char topic[GW_NAME_MAX + 16];
    snprintf(topic, sizeof(topic), "telemetry/%s", s->id);
    uint64_t seq = gw_seq_next(&gw->seq);
    char *json = gw_payload_telemetry(seq, s, r);
    if (gw_desk_sensor_oos(gw->desk, r->sensor_index)) {
        json = mark_out_of_service(json);
    }
    emit(gw, GW_REC_TELEMETRY, r->ts_ms, topic, json, seq);
    if (gw_store_commit_wanted(gw->store)) {
        gw_store_commit(gw->store);
    }
    /* More transitions than fit (not possible with fewer than 64 rules per sensor) stay
     * pending in the rules and come out on the next tick. */
    struct gw_alarm_transition t[MAX_TRANSITIONS];
    int n = gw_rules_on_reading(gw->rules, r, now, t, MAX_TRANSITIONS);
    handle_transitions(gw, t, n, is_test_reading(r), now);
}

#define CLOCK_STEP_MS 2000

/*
 * A Pi has no RTC: NTP steps its clock, often by hours, after boot. Elapsed
 * time is what the rules need, so a step moves their remembered instants.
 */
static void follow_clock_steps(struct gw_gateway *gw, int64_t wall_ms)
{
    int64_t mono_ms = (int64_t)(uv_hrtime() / 1000000);
    if (gw->last_tick_wall_ms != 0) {
        int64_t step = (wall_ms - gw->last_tick_wall_ms) - (mono_ms - gw->last_tick_mono_ms);
        if (step > CLOCK_STEP_MS || step < -CLOCK_STEP_MS) {
            gw_warn("gateway", "wall clock stepped step_ms=%lld; alarm timers follow it",
                    (long long)step);
            gw_rules_shift_time(gw->rules, step);
            gw_desk_shift_time(gw->desk, step);
        }
    }
    gw->last_tick_wall_ms = wall_ms;
    gw->last_tick_mono_ms = mono_ms;
}

static void run_tick(struct gw_gateway *gw)
{
    int64_t now = gw_now_ms();
    follow_clock_steps(gw, now);
    struct gw_alarm_transition t[MAX_TRANSITIONS];
    int n;
    do {
        n = gw_rules_tick(gw->rules, now, t, MAX_TRANSITIONS);
        handle_transitions(gw, t, n, false, now);
    } while (n == MAX_TRANSITIONS);
    gw_desk_tick(gw->desk, now);
    int silent[64];
    int nsilent;
    do {
        nsilent = gw_registry_check_silent(gw->registry, now, silent, 64);
        for (int i = 0; i < nsilent; i++) {
            emit_health(gw, silent[i], now);
        }
    } while (nsilent == 64);
    if (now >= gw->next_status_ms) {
        gw->next_status_ms = now + STATUS_EVERY_MS;
        emit_metrics(gw, now);
    }
    /* A sink that became ready (reconnected) picks up where it stopped. */
    gw_outbox_kick(gw->outbox);
}

static void on_tick(uv_timer_t *t)
{
    struct gw_gateway *gw = t->data;
    run_tick(gw);
#ifdef GW_HAVE_SYSTEMD
    /* From the loop itself, so a hung loop stops the pings and systemd restarts us. */
    if (gw->watchdog_usec) {
        sd_notify(0, "WATCHDOG=1");
    }
#endif
}

static void on_commit_timer(uv_timer_t *t)
{
    struct gw_gateway *gw = t->data;
    gw_store_commit(gw->store);
    /* The district learns at once that this school's disk fails, or works again. */
    struct gw_store_stats ss;
    gw_store_stats(gw->store, &ss);
    if (ss.failing != gw->store_failing) {
        gw->store_failing = ss.failing;
        publish_status(gw, true);
    }
#ifdef __GLIBC__
    /* Records come and go by the thousand: hand the freed memory back to a 1 GB Pi. */
    malloc_trim(0);
#endif
}

/* ---- life cycle ---- */

static int start_drivers(struct gw_gateway *gw)
{
    if (!gw->with_drivers) {
        return 0;
    }
    for (size_t i = 0; i < GW_NDRIVERS; i++) {
        const struct gw_driver_ops *d = driver_table[i];
        if (!d->wanted(gw->cfg)) {
            continue;
        }
        gw->drivers[i] = d->init(gw->cfg, gw->loop, gw_gateway_dispatch, gw);
        if (!gw->drivers[i]) {
            return -EINVAL;
        }
        int rc = d->start(gw->drivers[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void stop_drivers(struct gw_gateway *gw)
{
    for (size_t i = 0; i < GW_NDRIVERS; i++) {
        if (gw->drivers[i]) {
            driver_table[i]->stop(gw->drivers[i]);
            driver_table[i]->destroy(gw->drivers[i]);
            gw->drivers[i] = NULL;
        }
    }
}

static int influx_batch(const struct gw_config *cfg)
{
    return cfg->influx.batch_size > 0 ? cfg->influx.batch_size : 5000;
}

/* The sinks cfg asks for, those not running yet. */
static int add_sinks(struct gw_gateway *gw, const struct gw_config *cfg)
{
    if (!gw_outbox_sink(gw->outbox, "hub")) {
        gw->hub = gw_outbox_add_sink(gw->outbox, &gw_sink_hub, cfg, MQTT_BATCH, 0, 1);
        if (!gw->hub) {
            return -ENOMEM;
        }
        gw_sink_mqtt_set_command_handler(gw->hub, on_command, gw);
    }
    if (cfg->uplink.enabled && !gw_outbox_sink(gw->outbox, "uplink")) {
        gw->uplink = gw_outbox_add_sink(gw->outbox, &gw_sink_uplink, cfg, MQTT_BATCH, 0, 1);
        if (!gw->uplink) {
            return -ENOMEM;
        }
        /* The district can acknowledge too: the uplink's P/cmd/+ (its broker's ACL decides who). */
        gw_sink_mqtt_set_command_handler(gw->uplink, on_command, gw);
    }
    if (cfg->influx.enabled && !gw_outbox_sink(gw->outbox, "influx")) {
        if (!gw_outbox_add_sink(gw->outbox, &gw_sink_influx, cfg, influx_batch(cfg),
                                cfg->influx.flush_ms > 0 ? cfg->influx.flush_ms : 1000,
                                INFLUX_LANES)) {
            return -ENOMEM;
        }
    }
    return 0;
}

struct gw_gateway *gw_gateway_new(uv_loop_t *loop, struct gw_config *cfg, bool with_drivers)
{
    struct gw_gateway *gw = calloc(1, sizeof(*gw));
    if (!gw) {
        return NULL;
    }
    gw->loop = loop;
    gw->cfg = cfg;
    gw->with_drivers = with_drivers;
    gw->started_at_ms = gw_now_ms();
    if (gw_seq_open(&gw->seq, cfg->state_dir) != 0) {
        goto fail;
    }
    gw->store = gw_store_open(cfg->state_dir, &cfg->store);
    gw->registry = gw_registry_new(cfg);
    gw->rules = gw_rules_new(cfg, gw->started_at_ms);
    if (!gw->store || !gw->registry || !gw->rules) {
        goto fail;
    }
    /* Sinks that are no longer configured stop holding records back. */
    if (!cfg->uplink.enabled) {
        gw_store_unregister_sink(gw->store, "uplink");
    }
    if (!cfg->influx.enabled) {
        gw_store_unregister_sink(gw->store, "influx");
    }
    gw->outbox = gw_outbox_new(loop, gw->store);
    if (!gw->outbox) {
        goto fail;
    }
    struct gw_desk_host host = {
        .core = gw,
        .next_seq = desk_next_seq,
        .emit = desk_emit,
        .open_batch = desk_open_batch,
        .status_changed = desk_status_changed,
    };
    gw->desk = gw_desk_new(loop, cfg, gw->store, &host);
    if (!gw->desk) {
        gw_outbox_free(gw->outbox);
        goto fail;
    }
    uv_timer_init(loop, &gw->tick);
    uv_timer_init(loop, &gw->commit_timer);
    uv_check_init(loop, &gw->alarm_commit);
    gw->tick.data = gw;
    gw->commit_timer.data = gw;
    gw->alarm_commit.data = gw;
    return gw;
fail:
    gw_error("gateway", "cannot start");
    gw_registry_free(gw->registry);
    gw_rules_free(gw->rules);
    gw_store_close(gw->store);
    gw_seq_close(&gw->seq);
    free(gw);
    return NULL;
}

int gw_gateway_start(struct gw_gateway *gw)
{
    int rc = add_sinks(gw, gw->cfg);
    if (rc != 0) {
        return rc;
    }
    int restored = gw_desk_restore(gw->desk, gw->rules, gw_now_ms());
    struct gw_desk_host daylog_host = {
        .core = gw,
        .next_seq = desk_next_seq,
        .emit = desk_emit,
        .open_batch = desk_open_batch,
    };
    gw->daylog = gw_daylog_new(gw->loop, gw->cfg, gw->store, gw->desk, &daylog_host);
    gw->web = gw_web_new(gw->loop, gw, gw->cfg);
    if (gw->cfg->http.line > 0 && (!gw->web || gw_web_start(gw->web) != 0)) {
        gw_error("gateway", "the status page and API could not start (see above); running without");
    }
    rc = start_drivers(gw);
    if (rc != 0) {
        return rc;
    }
    int commit_ms = gw->cfg->store.commit_ms > 0 ? gw->cfg->store.commit_ms : 1000;
    uv_timer_start(&gw->tick, on_tick, TICK_MS, TICK_MS);
    uv_timer_start(&gw->commit_timer, on_commit_timer, (uint64_t)commit_ms, (uint64_t)commit_ms);
    publish_status(gw, true);
    gw->kpi = gw_kpi_report_new(gw->loop, gw);
    gw_kpi_report_start(gw->kpi);
#ifdef GW_HAVE_SYSTEMD
    if (sd_watchdog_enabled(0, &gw->watchdog_usec) <= 0) {
        gw->watchdog_usec = 0;
    }
    sd_notify(0, "READY=1");
#endif
    gw_info("gateway",
            "started version=%s sensors=%d rules=%d buses=%d hub=%s uplink=%s influx=%s "
            "alarms_restored=%d",
            GW_VERSION, gw->cfg->nsensors, gw->cfg->nrules, gw->cfg->nbuses,
            gw_sink_mqtt_prefix(gw->hub), gw->cfg->uplink.enabled ? gw->cfg->uplink.host : "off",
            gw->cfg->influx.enabled ? gw->cfg->influx.url : "off", restored > 0 ? restored : 0);
    return 0;
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static bool same_tls(const struct gw_tls_cfg *x, const struct gw_tls_cfg *y)
{
    return same_str(x->ca_file, y->ca_file) && same_str(x->cert_file, y->cert_file) &&
           same_str(x->key_file, y->key_file) && x->insecure == y->insecure;
}

static bool same_site(const struct gw_config *a, const struct gw_config *b)
{
    return same_str(a->site.district, b->site.district) && same_str(a->site.school, b->site.school);
}

static bool same_hub(const struct gw_config *a, const struct gw_config *b)
{
    const struct gw_hub_cfg *x = &a->hub, *y = &b->hub;
    return same_site(a, b) && same_str(x->host, y->host) && x->port == y->port &&
           same_str(x->topic_prefix, y->topic_prefix) && same_str(x->username, y->username) &&
           same_str(x->password, y->password) && same_str(x->client_id, y->client_id) &&
           x->keepalive_s == y->keepalive_s && same_tls(&x->tls, &y->tls);
}

static bool same_uplink(const struct gw_config *a, const struct gw_config *b)
{
    const struct gw_uplink_cfg *x = &a->uplink, *y = &b->uplink;
    return same_site(a, b) && x->enabled == y->enabled && same_str(x->host, y->host) &&
           x->port == y->port && same_str(x->topic_prefix, y->topic_prefix) &&
           same_str(a->hub.topic_prefix, b->hub.topic_prefix) &&
           same_str(x->username, y->username) && same_str(x->password, y->password) &&
           same_str(x->client_id, y->client_id) && x->keepalive_s == y->keepalive_s &&
           x->max_inflight == y->max_inflight && same_tls(&x->tls, &y->tls);
}

/* The InfluxDB sink reads locations from its config: any change restarts it (cheap: HTTP). */
static bool same_influx(const struct gw_config *a, const struct gw_config *b)
{
    (void)a;
    (void)b;
    return false;
}

int gw_gateway_reload(struct gw_gateway *gw, struct gw_config *cfg)
{
    if (gw->nretired == MAX_RETIRED) {
        gw_error("gateway", "reload refused: too many reloads since start; restart campusgw");
        gw_config_free(cfg);
        return -EBUSY;
    }
    struct gw_registry *registry = gw_registry_new(cfg);
    struct gw_rules *rules = gw_rules_new(cfg, gw_now_ms());
    if (!registry || !rules) {
        gw_registry_free(registry);
        gw_rules_free(rules);
        gw_config_free(cfg);
        gw_error("gateway", "reload failed: out of memory; keeping the running config");
        return -ENOMEM;
    }
    /* Bus threads finish their current request (at most its timeout) and stop. */
    stop_drivers(gw);
    gw_registry_carry_over(registry, gw->registry);
    gw_rules_carry_over(rules, gw->rules);
    gw_web_reload(gw->web, cfg);
    if (gw_desk_reload(gw->desk, cfg, gw_now_ms()) != 0) {
        gw_error("gateway", "reload: alarms could not move to the new config (out of memory)");
    }
    gw_registry_free(gw->registry);
    gw_rules_free(gw->rules);
    gw->registry = registry;
    gw->rules = rules;

    /* Sinks whose settings changed are replaced; the old config lives on until exit. */
    struct gw_config *old = gw->cfg;
    if (!same_hub(old, cfg)) {
        gw_info("gateway", "hub settings changed: moving to %s:%d", cfg->hub.host, cfg->hub.port);
        char *offline = gw_payload_status(&(struct gw_status){.started_at_ms = gw->started_at_ms});
        if (offline) {
            gw_sink_mqtt_set_status(gw->hub, offline); /* the old broker hears we left */
        }
        free(offline);
        gw_outbox_remove_sink(gw->outbox, "hub");
        gw->hub = NULL;
    }
    if (gw->uplink && !same_uplink(old, cfg)) {
        gw_outbox_remove_sink(gw->outbox, "uplink");
        gw->uplink = NULL;
    }
    if (!cfg->uplink.enabled) {
        gw_store_unregister_sink(gw->store, "uplink");
    }
    if (gw_outbox_sink(gw->outbox, "influx") && !same_influx(old, cfg)) {
        gw_outbox_remove_sink(gw->outbox, "influx");
    }
    if (!cfg->influx.enabled) {
        gw_store_unregister_sink(gw->store, "influx");
    }
    bool new_broker = !gw->hub || (cfg->uplink.enabled && !gw->uplink);
    gw->cfg = cfg;
    gw->retired[gw->nretired++] = old;
    gw_daylog_reload(gw->daylog, cfg);
    gw_kpi_report_reload(gw->kpi);
    int rc = add_sinks(gw, cfg);
    if (rc == 0) {
        publish_status(gw, true);
        if (new_broker) {
            emit_snapshot(gw);
        }
        rc = start_drivers(gw);
    }
    gw_info("gateway", "config reloaded sensors=%d rules=%d buses=%d", cfg->nsensors, cfg->nrules,
            cfg->nbuses);
    return rc;
}

static void maybe_done(struct gw_gateway *gw)
{
    if (--gw->closing == 0 && gw->done) {
        gw->done(gw->done_ctx);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    maybe_done(h->data);
}

static void on_outbox_stopped(void *ctx)
{
    maybe_done(ctx);
}

static void on_desk_closed(void *ctx)
{
    maybe_done(ctx);
}

static void on_web_closed(void *ctx)
{
    maybe_done(ctx);
}

static void on_daylog_closed(void *ctx)
{
    maybe_done(ctx);
}

static void on_kpi_closed(void *ctx)
{
    maybe_done(ctx);
}

void gw_gateway_stop(struct gw_gateway *gw, void (*done)(void *ctx), void *ctx)
{
#ifdef GW_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    gw_info("gateway", "stopping");
    gw->done = done;
    gw->done_ctx = ctx;
    stop_drivers(gw);
    if (gw->alarm_batch_open) {
        gw->alarm_batch_open = false;
        gw_store_end_batch(gw->store);
    }
    gw_store_commit(gw->store);
    publish_status(gw, false); /* each MQTT sink sends it retained before it disconnects */
    uv_timer_stop(&gw->tick);
    uv_timer_stop(&gw->commit_timer);
    uv_check_stop(&gw->alarm_commit);
    gw->closing = gw->web ? 6 : 5;
    if (gw->daylog) {
        gw->closing++;
        gw_daylog_close(gw->daylog, on_daylog_closed, gw);
        gw->daylog = NULL;
    }
    gw->closing++; /* the KPI timer */
    gw_kpi_report_close(gw->kpi, on_kpi_closed, gw);
    gw->kpi = NULL;
    if (gw->web) {
        gw_web_close(gw->web, on_web_closed, gw);
        gw->web = NULL;
    }
    gw_desk_close(gw->desk, on_desk_closed, gw);
    gw->desk = NULL;
    uv_close((uv_handle_t *)&gw->tick, on_handle_closed);
    uv_close((uv_handle_t *)&gw->commit_timer, on_handle_closed);
    uv_close((uv_handle_t *)&gw->alarm_commit, on_handle_closed);
    gw_outbox_stop(gw->outbox, on_outbox_stopped, gw);
}

bool gw_gateway_hub_connected(const struct gw_gateway *gw)
{
    return gw->hub && gw_sink_mqtt_connected(gw->hub);
}

uint64_t gw_gateway_sink_lag(const struct gw_gateway *gw, const char *sink)
{
    struct gw_store_stats ss;
    gw_store_stats(gw->store, &ss);
    struct gw_outbox_sink_stats st[4];
    int n = gw_outbox_sink_stats(gw->outbox, st, 4);
    for (int i = 0; i < n; i++) {
        if (strcmp(st[i].name, sink) != 0) {
            continue;
        }
        uint64_t lag = 0;
        for (int k = 0; k < GW_NSTREAMS; k++) {
            lag += ss.last_seq[k] > st[i].cursor[k] ? ss.last_seq[k] - st[i].cursor[k] : 0;
        }
        return lag;
    }
    return 0;
}

void gw_gateway_emit_metrics(struct gw_gateway *gw)
{
    emit_metrics(gw, gw_now_ms());
    gw_kpi_report_now(gw->kpi); /* SIGUSR1: the school's figures too */
}

const struct gw_registry *gw_gateway_registry(const struct gw_gateway *gw)
{
    return gw->registry;
}

struct gw_desk *gw_gateway_desk(const struct gw_gateway *gw)
{
    return gw->desk;
}

struct gw_store *gw_gateway_store(const struct gw_gateway *gw)
{
    return gw->store;
}

/* NULL before start and after stop. */
struct gw_daylog *gw_gateway_daylog(const struct gw_gateway *gw)
{
    return gw->daylog;
}

bool gw_gateway_healthy(const struct gw_gateway *gw, char *why, size_t size)
{
    struct gw_store_stats ss;
    gw_store_stats(gw->store, &ss);
    if (ss.failing) {
        snprintf(why, size, "the store cannot write: %s", ss.last_error);
        return false;
    }
    if (gw->closing) {
        snprintf(why, size, "stopping");
        return false;
    }
    why[0] = '\0';
    return true;
}

char *gw_gateway_prometheus(struct gw_gateway *gw, char *err, size_t errlen)
{
    struct gw_prom_snapshot *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct gw_store_stats ss;
    gw_store_stats(gw->store, &ss);
    p->readings = gw->stats.readings;
    p->poll_errors = gw->stats.poll_errors;
    p->transitions = gw->stats.transitions;
    p->outbox = ss.outbox;
    p->dropped = ss.dropped;
    p->write_errors = ss.write_errors;
    p->dead_letters = ss.dead_letters;
    struct gw_outbox_sink_stats sinks[GW_PROM_MAX_SINKS];
    int nsinks = gw_outbox_sink_stats(gw->outbox, sinks, GW_PROM_MAX_SINKS);
    for (int i = 0; i < nsinks; i++) {
        p->sink_lag[p->nsinks++] =
            (struct gw_prom_count){sinks[i].name, gw_gateway_sink_lag(gw, sinks[i].name)};
    }
    /* LoRa rejects: the driver's lora_rejected_<reason> counters. */
    struct gw_metric m[MAX_METRICS];
    for (size_t d = 0; d < GW_NDRIVERS; d++) {
        if (!gw->drivers[d] || !driver_table[d]->metrics) {
            continue;
        }
        int n = driver_table[d]->metrics(gw->drivers[d], m, MAX_METRICS);
        for (int i = 0; i < n && p->nrejected < GW_PROM_MAX_REASONS; i++) {
            if (strncmp(m[i].name, "lora_rejected_", 14) == 0) {
                p->rejected[p->nrejected++] =
                    (struct gw_prom_count){m[i].name + 14, (uint64_t)m[i].value};
            }
        }
    }
    gw_alarms_count(gw_desk_alarms(gw->desk), p->alarms);
    for (int k = GW_CHANNEL_MQTT; k <= GW_CHANNEL_EMAIL; k++) {
        gw_desk_notify_counters(gw->desk, (enum gw_channel_kind)k, &p->notify[k].sent,
                                &p->notify[k].failed, &p->notify[k].retries);
    }
    struct gw_desk_stats ds;
    gw_desk_stats(gw->desk, &ds);
    p->notify_pending = ds.notify_pending;
    p->commands = ds.commands;
    p->commands_refused = ds.commands_refused;
    int faulty;
    gw_registry_counts(gw->registry, &p->sensors_online, &p->sensors_offline, &faulty);
    p->sensors_faulty = faulty;
    long kb = rss_kb();
    p->rss_bytes = kb > 0 ? (int64_t)kb * 1024 : 0;
    p->uptime_seconds = (double)(gw_now_ms() - gw->started_at_ms) / 1000.0;
    char *text = gw_prom_render(p, err, errlen);
    free(p);
    return text;
}

void gw_gateway_selftest(struct gw_gateway *gw)
{
    if (gw->desk) {
        gw_desk_selftest_now(gw->desk, gw_now_ms());
    }
}

void gw_gateway_stats(const struct gw_gateway *gw, struct gw_gateway_stats *out)
{
    *out = gw->stats;
}

const struct gw_config *gw_gateway_config(const struct gw_gateway *gw)
{
    return gw->cfg;
}

void gw_gateway_free(struct gw_gateway *gw)
{
    if (!gw) {
        return;
    }
    gw_outbox_free(gw->outbox);
    gw_store_close(gw->store);
    gw_registry_free(gw->registry);
    gw_rules_free(gw->rules);
    gw_seq_close(&gw->seq);
    gw_config_free(gw->cfg);
    for (int i = 0; i < gw->nretired; i++) {
        gw_config_free(gw->retired[i]);
    }
    free(gw);
}
