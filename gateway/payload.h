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
#include "timefmt.h" /* the payloads' times: gw_format_rfc3339 */

char *gw_payload_telemetry(uint64_t seq, const struct gw_sensor_cfg *sensor,
                           const struct gw_reading *reading);
char *gw_payload_health(uint64_t seq, const struct gw_sensor_cfg *sensor,
                        const struct gw_sensor_health *health);
/*
 * transition: NULL for P/alarms, "raise"/"clear"/... for P/events.
 * Besides the DESIGN.md fields, always "condition" (is the hazard still there),
 * and only when set: "needs_reset", "shelved_until", "shelved_by", "note",
 * "chattering", "suppressed", "raises" (raise times in the chatter window),
 * "notified_at", "notify_pending", "test" (raised by a test), "system" (a
 * gateway alarm) — enough to restore the alarm after a restart. A rule alarm's
 * "rule", "class" and "sensor" come from cfg; a system alarm's (or one whose
 * indexes are not cfg's) from the record: its name, its class, and the source
 * part of its key.
 */
char *gw_payload_alarm(uint64_t seq, const struct gw_config *cfg, const struct gw_alarm *alarm,
                       const char *transition);
/*
 * The inverse, for alarms loaded from the store: fills *out from a
 * gw_payload_alarm JSON (rule_index and sensor_index -1: resolve the key with
 * gw_alarms_restore). "key" and "state" are required; absent optional fields
 * stay zero. name and alarm_class come from "rule" and "class" when present
 * and valid; with "system": true both are required. 0, or -EINVAL with the
 * reason in err (may be NULL).
 */
int gw_payload_alarm_parse(const char *json, struct gw_alarm *out, char *err, size_t errlen);
struct gw_status {
    bool online;
    int64_t started_at_ms;
    uint64_t outbox;  /* records waiting for at least one sink */
    uint64_t dropped; /* telemetry dropped because the outbox was full */
    int sensors_online, sensors_offline;
    const char *store_error; /* NULL, or why the store cannot write (disk full) */
    const char *selftest;    /* NULL, or the last path self-test as a JSON object */
};

char *gw_payload_status(const struct gw_status *status);

struct gw_metric {
    const char *name;
    int64_t value;
};

/* Gateway metrics: {"seq","ts",<name>:<integer>...}; InfluxDB measurement `gateway`. */
char *gw_payload_metrics(uint64_t seq, int64_t ts_ms, const struct gw_metric *metrics, int n);

#endif
