/*
 * Sensor registry: the live health of every configured sensor (last values,
 * last seen, consecutive errors, online/offline, fault, signal). Pure: the
 * caller passes now_ms and publishes what changed.
 */
#ifndef GW_REGISTRY_H
#define GW_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "reading.h"

struct gw_sensor_health {
    bool online;
    bool ever_seen;
    int64_t last_seen_ms; /* last OK reading; 0 = never */
    uint32_t consecutive_errors;
    uint64_t errors; /* failed polls since start */
    uint64_t readings;
    char
        fault[GW_ERR_MAX]; /* "" = none; a point fault ("pressure: wire_break") or the last error */
    bool has_battery, has_rssi, has_snr, has_frame_loss;
    double battery, rssi, snr;
    double frame_loss; /* LoRa: % of frames lost over the last 100 */
    int npoints;
    struct gw_point_value points[GW_MAX_POINTS]; /* last values */
};

struct gw_registry;

struct gw_registry *gw_registry_new(const struct gw_config *cfg);
void gw_registry_free(struct gw_registry *reg);

/* Take over the health of sensors whose id exists in both (config reload). */
void gw_registry_carry_over(struct gw_registry *reg, const struct gw_registry *old);

/*
 * Record one reading. Returns true when the published health changed
 * (online/offline, fault, battery) so the caller republishes P/health.
 */
bool gw_registry_update(struct gw_registry *reg, const struct gw_reading *reading);

/*
 * Pushed sensors (LoRa, MQTT) with expect_every_s that have been silent for
 * offline_after (of their offline rule; default 3) periods go offline. Writes
 * the indexes whose health changed to `changed` (at most max); returns how many.
 */
int gw_registry_check_silent(struct gw_registry *reg, int64_t now_ms, int *changed, int max);

const struct gw_sensor_health *gw_registry_get(const struct gw_registry *reg, int sensor_index);

/* Counts for the status line and logs. */
void gw_registry_counts(const struct gw_registry *reg, int *online, int *offline, int *faulty);

#endif
