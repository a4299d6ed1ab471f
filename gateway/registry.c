#include "registry.h"

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
    } else {
        h->errors++;
        h->consecutive_errors++;
        if (h->consecutive_errors >= (uint32_t)fail_threshold(reg->cfg, idx)) {
            h->online = false;
            snprintf(h->fault, sizeof(h->fault), "%s", r->error);
        }
    }
    return was_online != h->online || strcmp(old_fault, h->fault) != 0 ||
           old_has_battery != h->has_battery || (h->has_battery && old_battery != h->battery);
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
