/*
 * JSON payloads of the MQTT contract (DESIGN.md). Pure: every builder takes
 * its inputs (seq and times included) and returns a malloc'd NUL-terminated
 * string the caller frees, or NULL when out of memory.
 */
#ifndef GW_PAYLOAD_H
#define GW_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "alarm.h"
#include "config.h"
#include "reading.h"
#include "registry.h"

/* "2026-11-28T13:26:59.123Z" into out (at least 25 bytes). */
void gw_format_rfc3339(int64_t ms, char *out, size_t size);

char *gw_payload_telemetry(uint64_t seq, const struct gw_sensor_cfg *sensor,
                           const struct gw_reading *reading);
char *gw_payload_health(uint64_t seq, const struct gw_sensor_cfg *sensor,
                        const struct gw_sensor_health *health);
/* transition: NULL for P/alarms, "raise"/"clear"/... for P/events. */
char *gw_payload_alarm(uint64_t seq, const struct gw_config *cfg, const struct gw_alarm *alarm,
                       const char *transition);
struct gw_status {
    bool online;
    int64_t started_at_ms;
    uint64_t outbox;  /* records waiting for at least one sink */
    uint64_t dropped; /* telemetry dropped because the outbox was full */
    int sensors_online, sensors_offline;
    const char *store_error; /* NULL, or why the store cannot write (disk full) */
};

char *gw_payload_status(const struct gw_status *status);

struct gw_metric {
    const char *name;
    int64_t value;
};

/* Gateway metrics: {"seq","ts",<name>:<integer>...}; InfluxDB measurement `gateway`. */
char *gw_payload_metrics(uint64_t seq, int64_t ts_ms, const struct gw_metric *metrics, int n);

#endif
