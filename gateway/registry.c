#include "registry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_registry {
    const struct gw_config *cfg;
    int nsensors;
    struct gw_sensor_health *health;
};

struct gw_registry *gw_registry_new(const struct gw_config *cfg)
{
    struct gw_registry *reg = calloc(1, sizeof(*reg));
    if (!reg) {
        return NULL;
    }
    reg->cfg = cfg;
    reg->nsensors = cfg->nsensors;
    reg->health = calloc(cfg->nsensors > 0 ? (size_t)cfg->nsensors : 1, sizeof(*reg->health));
    if (!reg->health) {
        free(reg);
        return NULL;
    }
    /* Unknown until the first poll answers or the fail threshold is reached. */
    for (int i = 0; i < reg->nsensors; i++) {
        reg->health[i].online = false;
    }
    return reg;
}

void gw_registry_free(struct gw_registry *reg)
{
    if (!reg) {
        return;
    }
    free(reg->health);
    free(reg);
}

void gw_registry_carry_over(struct gw_registry *reg, const struct gw_registry *old)
{
    for (int i = 0; i < reg->nsensors; i++) {
        for (int j = 0; j < old->nsensors; j++) {
            if (strcmp(reg->cfg->sensors[i].id, old->cfg->sensors[j].id) == 0) {
                reg->health[i] = old->health[j];
                break;
            }
        }
    }
}

static int fail_threshold(const struct gw_config *cfg, int sensor_index)
{
    int bus = cfg->sensors[sensor_index].bus_index;
    if (bus >= 0 && bus < cfg->nbuses && cfg->buses[bus].fail_threshold > 0) {
        return cfg->buses[bus].fail_threshold;
    }
    return 3;
}

/* "pressure: wire_break" for the first faulted point, "" when none. */
static void point_fault(const struct gw_reading *r, char *out, size_t size)
{
    out[0] = '\0';
    for (int i = 0; i < r->npoints; i++) {
        if (r->points[i].fault != GW_FAULT_NONE) {
            snprintf(out, size, "%s: %s", r->points[i].name, gw_fault_name(r->points[i].fault));
            return;
        }
    }
}

static bool battery_of(const struct gw_reading *r, double *out)
{
    for (int i = 0; i < r->npoints; i++) {
        if (strcmp(r->points[i].name, "battery") == 0 &&
            r->points[i].value.type == GW_VALUE_NUMBER) {
            *out = r->points[i].value.num;
            return true;
        }
    }
    return false;
}

/* Radio figures wander from frame to frame: republish health only when they move enough
 * to matter to someone looking for a weak sensor. */
#define RSSI_STEP_DB 3.0
#define SNR_STEP_DB 2.0
#define LOSS_STEP_PCT 1.0

static bool moved(bool had, double old, bool has, double now, double step)
{
    return has && (!had || fabs(now - old) >= step);
}

static bool signal_changed(const struct gw_sensor_health *h, const struct gw_reading *r)
{
    if (r->status != GW_READING_OK) {
        return false;
    }
    return moved(h->has_rssi, h->rssi, r->has_rssi, r->rssi, RSSI_STEP_DB) ||
           moved(h->has_snr, h->snr, r->has_snr, r->snr, SNR_STEP_DB) ||
           moved(h->has_frame_loss, h->frame_loss, r->has_frame_loss, r->frame_loss, LOSS_STEP_PCT);
}

bool gw_registry_update(struct gw_registry *reg, const struct gw_reading *r)
{
    int idx = r->sensor_index;
    if (idx < 0 || idx >= reg->nsensors) {
        return false;
    }
    struct gw_sensor_health *h = &reg->health[idx];
    bool was_online = h->online;
    char old_fault[GW_ERR_MAX];
    memcpy(old_fault, h->fault, sizeof(old_fault));
    bool old_has_battery = h->has_battery;
    double old_battery = h->battery;
    bool signal_moved = signal_changed(h, r);

    if (r->status == GW_READING_OK) {
        h->readings++;
        h->online = true;
        h->ever_seen = true;
        h->last_seen_ms = r->ts_ms;
        h->consecutive_errors = 0;
        point_fault(r, h->fault, sizeof(h->fault));
        h->npoints = r->npoints;
        memcpy(h->points, r->points, sizeof(r->points[0]) * (size_t)r->npoints);
        double battery;
        if (battery_of(r, &battery)) {
            h->has_battery = true;
            h->battery = battery;
        }
        if (r->has_rssi) {
            h->has_rssi = true;
            h->rssi = r->rssi;
        }
        if (r->has_snr) {
            h->has_snr = true;
            h->snr = r->snr;
        }
        if (r->has_frame_loss) {
            h->has_frame_loss = true;
            h->frame_loss = r->frame_loss;
        }
    } else {
        h->errors++;
        h->consecutive_errors++;
        if (h->consecutive_errors >= (uint32_t)fail_threshold(reg->cfg, idx)) {
            h->online = false;
            snprintf(h->fault, sizeof(h->fault), "%s", r->error);
        }
    }
    return was_online != h->online || strcmp(old_fault, h->fault) != 0 || signal_moved ||
           old_has_battery != h->has_battery || (h->has_battery && old_battery != h->battery);
}

/* Reports a pushed sensor may miss before it counts as offline. */
#define PUSHED_MISSES_DEFAULT 3

static int pushed_misses(const struct gw_config *cfg, const struct gw_sensor_cfg *s)
{
    int misses = 0;
    for (int r = 0; r < cfg->nrules; r++) {
        const struct gw_rule_cfg *rule = &cfg->rules[r];
        bool applies = rule->cond == GW_COND_OFFLINE &&
                       (!rule->sensor || strcmp(rule->sensor, s->id) == 0) &&
                       (!rule->kind || strcmp(rule->kind, s->kind) == 0);
        if (applies && rule->offline_after > 0 && (misses == 0 || rule->offline_after < misses)) {
            misses = rule->offline_after;
        }
    }
    return misses > 0 ? misses : PUSHED_MISSES_DEFAULT;
}

int gw_registry_check_silent(struct gw_registry *reg, int64_t now_ms, int *changed, int max)
{
    int n = 0;
    for (int i = 0; i < reg->nsensors && n < max; i++) {
        const struct gw_sensor_cfg *s = &reg->cfg->sensors[i];
        struct gw_sensor_health *h = &reg->health[i];
        if (s->bus_index >= 0 || s->expect_every_s <= 0 || !h->online) {
            continue;
        }
        int misses = pushed_misses(reg->cfg, s);
        int64_t silent_ms = now_ms - h->last_seen_ms;
        if (silent_ms >= (int64_t)misses * s->expect_every_s * 1000) {
            h->online = false;
            snprintf(h->fault, sizeof(h->fault), "silent for %lld s (expected every %d s)",
                     (long long)(silent_ms / 1000), s->expect_every_s);
            changed[n++] = i;
        }
    }
    return n;
}

const struct gw_sensor_health *gw_registry_get(const struct gw_registry *reg, int sensor_index)
{
    if (sensor_index < 0 || sensor_index >= reg->nsensors) {
        return NULL;
    }
    return &reg->health[sensor_index];
}

void gw_registry_counts(const struct gw_registry *reg, int *online, int *offline, int *faulty)
{
    int on = 0, off = 0, bad = 0;
    for (int i = 0; i < reg->nsensors; i++) {
        if (reg->health[i].online) {
            on++;
        } else {
            off++;
        }
        if (reg->health[i].fault[0] != '\0') {
            bad++;
        }
    }
    *online = on;
    *offline = off;
    *faulty = bad;
}
