#include "gateway.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef GW_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "alarm.h"
#include "driver.h"
#include "hub.h"
#include "log.h"
#include "payload.h"
#include "registry.h"
#include "rules.h"
#include "seq.h"

#define TICK_MS 1000
#define STATUS_EVERY_MS 60000
#define MAX_TRANSITIONS 64

struct alarm_slot {
    struct gw_alarm alarm;
    bool dirty; /* P/alarms not yet published with the current state */
};

struct gw_gateway {
    uv_loop_t *loop;
    struct gw_config *cfg;
    bool with_drivers;
    struct gw_registry *registry;
    struct gw_rules *rules;
    struct gw_hub *hub;
    struct gw_seq seq;
    void *modbus;

    /* Alarms that are raised, or cleared but not yet published as cleared. */
    struct alarm_slot *alarms;
    int nalarms, alarms_cap;

    uv_timer_t tick;
    int64_t started_at_ms;
    int64_t next_status_ms;
    int64_t last_tick_wall_ms, last_tick_mono_ms; /* to notice clock steps */
    uint64_t watchdog_usec;

    struct gw_gateway_stats stats;
    int closing_handles;
    void (*done)(void *ctx);
    void *done_ctx;
};

int64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- publishing ---- */

static void publish_json(struct gw_gateway *gw, const char *suffix, char *json, int qos,
                         bool retain)
{
    if (!json) {
        gw_error("gateway", "out of memory building payload topic=%s", suffix);
        return;
    }
    gw_hub_publish(gw->hub, suffix, json, strlen(json), qos, retain);
    free(json);
}

static void publish_health(struct gw_gateway *gw, int sensor_index)
{
    const struct gw_sensor_cfg *s = &gw->cfg->sensors[sensor_index];
    const struct gw_sensor_health *h = gw_registry_get(gw->registry, sensor_index);
    if (!gw_hub_connected(gw->hub)) {
        return; /* the whole health table is republished on connect */
    }
    char suffix[GW_NAME_MAX + 16];
    snprintf(suffix, sizeof(suffix), "health/%s", s->id);
    publish_json(gw, suffix, gw_payload_health(gw_seq_next(&gw->seq), s, h), 1, true);
}

static void publish_status(struct gw_gateway *gw)
{
    int online, offline, faulty;
    gw_registry_counts(gw->registry, &online, &offline, &faulty);
    publish_json(gw, "status", gw_payload_status(true, gw->started_at_ms, 0, online, offline), 1,
                 true);
}

/* Retained P/alarms/<key>: the record, or an empty payload once back to normal. */
static void publish_alarm_retained(struct gw_gateway *gw, struct alarm_slot *slot)
{
    char suffix[GW_KEY_MAX + 16];
    snprintf(suffix, sizeof(suffix), "alarms/%s", slot->alarm.key);
    int rc;
    if (slot->alarm.state == GW_ALARM_NORMAL) {
        rc = gw_hub_publish(gw->hub, suffix, "", 0, 1, true);
    } else {
        char *json = gw_payload_alarm(gw_seq_next(&gw->seq), gw->cfg, &slot->alarm, NULL);
        if (!json) {
            return;
        }
        rc = gw_hub_publish(gw->hub, suffix, json, strlen(json), 1, true);
        free(json);
    }
    if (rc == 0) {
        slot->dirty = false;
    }
}

static void drop_clean_normals(struct gw_gateway *gw)
{
    int j = 0;
    for (int i = 0; i < gw->nalarms; i++) {
        struct alarm_slot *s = &gw->alarms[i];
        if (s->alarm.state == GW_ALARM_NORMAL && !s->dirty) {
            continue;
        }
        gw->alarms[j++] = *s;
    }
    gw->nalarms = j;
}

static void on_hub_connect(void *ctx)
{
    struct gw_gateway *gw = ctx;
    publish_status(gw);
    for (int i = 0; i < gw->cfg->nsensors; i++) {
        const struct gw_sensor_health *h = gw_registry_get(gw->registry, i);
        if (h->ever_seen || h->errors > 0) {
            publish_health(gw, i);
        }
    }
    for (int i = 0; i < gw->nalarms; i++) {
        publish_alarm_retained(gw, &gw->alarms[i]);
    }
    drop_clean_normals(gw);
}

/* ---- alarms ---- */

static struct alarm_slot *find_alarm(struct gw_gateway *gw, int rule_index, int sensor_index)
{
    for (int i = 0; i < gw->nalarms; i++) {
        if (gw->alarms[i].alarm.rule_index == rule_index &&
            gw->alarms[i].alarm.sensor_index == sensor_index) {
            return &gw->alarms[i];
        }
    }
    return NULL;
}

static struct alarm_slot *new_alarm(struct gw_gateway *gw, int rule_index, int sensor_index)
{
    if (gw->nalarms == gw->alarms_cap) {
        int cap = gw->alarms_cap ? gw->alarms_cap * 2 : 16;
        struct alarm_slot *a = realloc(gw->alarms, sizeof(*a) * (size_t)cap);
        if (!a) {
            return NULL;
        }
        gw->alarms = a;
        gw->alarms_cap = cap;
    }
    struct alarm_slot *slot = &gw->alarms[gw->nalarms++];
    memset(slot, 0, sizeof(*slot));
    slot->alarm.rule_index = rule_index;
    slot->alarm.sensor_index = sensor_index;
    snprintf(slot->alarm.key, sizeof(slot->alarm.key), "%s/%s", gw->cfg->sensors[sensor_index].id,
             gw->cfg->rules[rule_index].slug);
    return slot;
}

static void format_value(const struct gw_value *v, char *out, size_t size)
{
    switch (v->type) {
    case GW_VALUE_NUMBER:
        snprintf(out, size, "%g", v->num);
        break;
    case GW_VALUE_BOOL:
        snprintf(out, size, "%s", v->b ? "true" : "false");
        break;
    case GW_VALUE_STRING:
        snprintf(out, size, "\"%s\"", v->str);
        break;
    case GW_VALUE_NONE:
        snprintf(out, size, "null");
        break;
    }
}

static void handle_transition(struct gw_gateway *gw, const struct gw_alarm_transition *t)
{
    struct alarm_slot *slot = find_alarm(gw, t->rule_index, t->sensor_index);
    bool raise = t->type == GW_TRANSITION_RAISE;
    if (!slot) {
        if (!raise) {
            return; /* nothing to clear */
        }
        slot = new_alarm(gw, t->rule_index, t->sensor_index);
        if (!slot) {
            gw_error("alarm", "out of memory: alarm not recorded rule=%d sensor=%d", t->rule_index,
                     t->sensor_index);
            return;
        }
    }
    struct gw_alarm *a = &slot->alarm;
    a->value = t->value;
    if (raise) {
        a->state = GW_ALARM_UNACKED;
        a->raised_at_ms = t->ts_ms;
        a->cleared_at_ms = 0;
        a->acked_at_ms = 0;
        a->acked_by[0] = '\0';
    } else {
        a->state = GW_ALARM_NORMAL;
        a->cleared_at_ms = t->ts_ms;
    }
    slot->dirty = true;
    gw->stats.transitions++;

    const struct gw_rule_cfg *rule = &gw->cfg->rules[t->rule_index];
    char value[64];
    format_value(&t->value, value, sizeof(value));
    gw_log(raise ? GW_LOG_WARN : GW_LOG_INFO, "alarm", "%s key=%s class=%s value=%s rule=\"%s\"",
           raise ? "raised" : "cleared", a->key, gw_class_name(rule->alarm_class), value,
           rule->name);

    publish_json(gw, "events",
                 gw_payload_alarm(gw_seq_next(&gw->seq), gw->cfg, a, raise ? "raise" : "clear"), 1,
                 false);
    publish_alarm_retained(gw, slot);
    if (!slot->dirty && a->state == GW_ALARM_NORMAL) {
        drop_clean_normals(gw);
    }
}

static void handle_transitions(struct gw_gateway *gw, const struct gw_alarm_transition *t, int n)
{
    for (int i = 0; i < n; i++) {
        handle_transition(gw, &t[i]);
    }
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
    if (gw_registry_update(gw->registry, r)) {
        publish_health(gw, r->sensor_index);
    }
    if (r->status != GW_READING_OK) {
        gw->stats.poll_errors++;
        return;
    }
    const struct gw_sensor_cfg *s = &gw->cfg->sensors[r->sensor_index];
    if (gw_hub_connected(gw->hub)) {
        char suffix[GW_NAME_MAX + 16];
        snprintf(suffix, sizeof(suffix), "telemetry/%s", s->id);
        publish_json(gw, suffix, gw_payload_telemetry(gw_seq_next(&gw->seq), s, r), 0, false);
    } else {
        gw->stats.telemetry_lost++;
    }
    /* More transitions than fit (not possible with fewer than 64 rules per sensor) stay
     * pending in the rules and come out on the next tick. */
    struct gw_alarm_transition t[MAX_TRANSITIONS];
    int n = gw_rules_on_reading(gw->rules, r, gw_now_ms(), t, MAX_TRANSITIONS);
    handle_transitions(gw, t, n);
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
        handle_transitions(gw, t, n);
    } while (n == MAX_TRANSITIONS);
    if (now >= gw->next_status_ms) {
        gw->next_status_ms = now + STATUS_EVERY_MS;
        if (gw_hub_connected(gw->hub)) {
            publish_status(gw);
        }
    }
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

/* ---- life cycle ---- */

static int start_drivers(struct gw_gateway *gw)
{
    if (!gw->with_drivers || gw->cfg->nbuses == 0) {
        return 0;
    }
    gw->modbus = gw_modbus_driver.init(gw->cfg, gw->loop, gw_gateway_dispatch, gw);
    if (!gw->modbus) {
        return -EINVAL;
    }
    return gw_modbus_driver.start(gw->modbus);
}

static void stop_drivers(struct gw_gateway *gw)
{
    if (gw->modbus) {
        gw_modbus_driver.stop(gw->modbus);
        gw_modbus_driver.destroy(gw->modbus);
        gw->modbus = NULL;
    }
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
    gw->registry = gw_registry_new(cfg);
    gw->rules = gw_rules_new(cfg, gw->started_at_ms);
    if (!gw->registry || !gw->rules) {
        goto fail;
    }
    gw->hub = gw_hub_new(loop, cfg, on_hub_connect, gw);
    if (!gw->hub) {
        goto fail;
    }
    uv_timer_init(loop, &gw->tick);
    gw->tick.data = gw;
    return gw;
fail:
    gw_error("gateway", "cannot start");
    gw_registry_free(gw->registry);
    gw_rules_free(gw->rules);
    gw_seq_close(&gw->seq);
    free(gw);
    return NULL;
}

int gw_gateway_start(struct gw_gateway *gw)
{
    gw_hub_start(gw->hub);
    int rc = start_drivers(gw);
    if (rc != 0) {
        return rc;
    }
    uv_timer_start(&gw->tick, on_tick, TICK_MS, TICK_MS);
#ifdef GW_HAVE_SYSTEMD
    if (sd_watchdog_enabled(0, &gw->watchdog_usec) <= 0) {
        gw->watchdog_usec = 0;
    }
    sd_notify(0, "READY=1");
#endif
    gw_info("gateway", "started version=%s sensors=%d rules=%d buses=%d hub=%s", GW_VERSION,
            gw->cfg->nsensors, gw->cfg->nrules, gw->cfg->nbuses, gw_hub_prefix(gw->hub));
    return 0;
}

/* Alarm records follow their sensor id and rule slug into the new config. */
static void remap_alarms(struct gw_gateway *gw, const struct gw_config *old,
                         const struct gw_config *cfg)
{
    int j = 0;
    for (int i = 0; i < gw->nalarms; i++) {
        struct alarm_slot *s = &gw->alarms[i];
        int si = gw_config_find_sensor(cfg, old->sensors[s->alarm.sensor_index].id);
        int ri = -1;
        for (int k = 0; si >= 0 && k < cfg->nrules; k++) {
            if (strcmp(cfg->rules[k].slug, old->rules[s->alarm.rule_index].slug) == 0) {
                ri = k;
                break;
            }
        }
        if (si < 0 || ri < 0) {
            /* Its rule or sensor is gone: tell everyone it is over. */
            gw_info("alarm", "cleared key=%s reason=\"removed from config\"", s->alarm.key);
            s->alarm.state = GW_ALARM_NORMAL;
            s->alarm.cleared_at_ms = gw_now_ms();
            publish_json(gw, "events",
                         gw_payload_alarm(gw_seq_next(&gw->seq), old, &s->alarm, "clear"), 1,
                         false);
            char suffix[GW_KEY_MAX + 16];
            snprintf(suffix, sizeof(suffix), "alarms/%s", s->alarm.key);
            gw_hub_publish(gw->hub, suffix, "", 0, 1, true);
            continue;
        }
        s->alarm.sensor_index = si;
        s->alarm.rule_index = ri;
        gw->alarms[j++] = *s;
    }
    gw->nalarms = j;
}

int gw_gateway_reload(struct gw_gateway *gw, struct gw_config *cfg)
{
    struct gw_registry *registry = gw_registry_new(cfg);
    struct gw_rules *rules = gw_rules_new(cfg, gw_now_ms());
    if (!registry || !rules) {
        gw_registry_free(registry);
        gw_rules_free(rules);
        gw_config_free(cfg);
        gw_error("gateway", "reload failed: out of memory; keeping the running config");
        return -ENOMEM;
    }
    struct gw_hub *new_hub = NULL;
    if (!gw_hub_same_settings(gw->cfg, cfg)) {
        struct gw_hub *hub = gw_hub_new(gw->loop, cfg, on_hub_connect, gw);
        if (!hub) {
            gw_registry_free(registry);
            gw_rules_free(rules);
            gw_config_free(cfg);
            gw_error("gateway", "reload failed: cannot set up the new hub; keeping the running "
                                "config");
            return -ENOMEM;
        }
        new_hub = hub;
    }
    /* Bus threads finish their current request (at most its timeout) and stop. */
    stop_drivers(gw);
    gw_registry_carry_over(registry, gw->registry);
    gw_rules_carry_over(rules, gw->rules);
    remap_alarms(gw, gw->cfg, cfg);
    gw_registry_free(gw->registry);
    gw_rules_free(gw->rules);
    gw->registry = registry;
    gw->rules = rules;
    struct gw_config *old = gw->cfg;
    gw->cfg = cfg;
    if (new_hub) {
        struct gw_hub *old_hub = gw->hub;
        gw->hub = new_hub;
        /* The old broker hears we are gone from it; the new one gets the whole state on connect. */
        gw_info("gateway", "hub settings changed: moving to %s", cfg->hub.host);
        char *status = gw_payload_status(false, gw->started_at_ms, 0, 0, 0);
        gw_hub_close(old_hub, status ? status : "{\"online\":false}", NULL, NULL);
        free(status);
        gw_hub_start(gw->hub);
    }
    int rc = start_drivers(gw);
    gw_info("gateway", "config reloaded sensors=%d rules=%d buses=%d", cfg->nsensors, cfg->nrules,
            cfg->nbuses);
    gw_config_free(old);
    return rc;
}

static void on_tick_closed(uv_handle_t *h)
{
    struct gw_gateway *gw = h->data;
    if (--gw->closing_handles == 0 && gw->done) {
        gw->done(gw->done_ctx);
    }
}

static void on_hub_closed(void *ctx)
{
    struct gw_gateway *gw = ctx;
    gw->hub = NULL;
    if (--gw->closing_handles == 0 && gw->done) {
        gw->done(gw->done_ctx);
    }
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
    uv_timer_stop(&gw->tick);
    gw->closing_handles = 2;
    uv_close((uv_handle_t *)&gw->tick, on_tick_closed);
    char *status = gw_payload_status(false, gw->started_at_ms, 0, 0, 0);
    gw_hub_close(gw->hub, status ? status : "{\"online\":false}", on_hub_closed, gw);
    free(status);
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
    gw_registry_free(gw->registry);
    gw_rules_free(gw->rules);
    gw_seq_close(&gw->seq);
    gw_config_free(gw->cfg);
    free(gw->alarms);
    free(gw);
}
