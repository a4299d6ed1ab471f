#include "payload.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Enough digits for any sensor value without printing 0.45000000000000001. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

void gw_format_rfc3339(int64_t ms, char *out, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    int millis = (int)(ms % 1000);
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0 || size - n < sizeof(".000Z")) {
        if (size > 0) {
            out[0] = '\0';
        }
        return;
    }
    out[n++] = '.';
    out[n++] = (char)('0' + millis / 100);
    out[n++] = (char)('0' + millis / 10 % 10);
    out[n++] = (char)('0' + millis % 10);
    out[n++] = 'Z';
    out[n] = '\0';
}

static json_t *json_time(int64_t ms)
{
    if (ms == 0) {
        return json_null();
    }
    char buf[40];
    gw_format_rfc3339(ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *json_value(const struct gw_value *v)
{
    switch (v->type) {
    case GW_VALUE_NUMBER:
        if (!isfinite(v->num)) {
            return json_null();
        }
        return json_real(v->num);
    case GW_VALUE_BOOL:
        return json_boolean(v->b);
    case GW_VALUE_STRING:
        return json_string(v->str);
    case GW_VALUE_NONE:
        break;
    }
    return json_null();
}

/* Dump and free; NULL when anything on the way failed. */
static char *finish(json_t *root)
{
    if (!root) {
        return NULL;
    }
    char *s = json_dumps(root, DUMP_FLAGS);
    json_decref(root);
    return s;
}

char *gw_payload_telemetry(uint64_t seq, const struct gw_sensor_cfg *sensor,
                           const struct gw_reading *reading)
{
    json_t *values = json_object();
    json_t *faults = NULL;
    for (int i = 0; i < reading->npoints; i++) {
        const struct gw_point_value *p = &reading->points[i];
        if (p->fault != GW_FAULT_NONE) {
            if (!faults) {
                faults = json_object();
            }
            json_object_set_new(faults, p->name, json_string(gw_fault_name(p->fault)));
        } else {
            json_object_set_new(values, p->name, json_value(&p->value));
        }
    }
    char ts[40];
    gw_format_rfc3339(reading->ts_ms, ts, sizeof(ts));
    json_t *root = json_pack("{sI ss ss ss so}", "seq", (json_int_t)seq, "sensor", sensor->id,
                             "kind", sensor->kind, "ts", ts, "values", values);
    if (root && faults) {
        json_object_set_new(root, "faults", faults);
    } else {
        json_decref(faults);
    }
    if (root && reading->has_rssi) {
        json_object_set_new(root, "rssi", json_real(reading->rssi));
    }
    if (root && reading->has_snr) {
        json_object_set_new(root, "snr", json_real(reading->snr));
    }
    if (root && reading->forwarders > 0) {
        json_object_set_new(root, "forwarders", json_integer(reading->forwarders));
    }
    if (root && reading->has_fcnt) {
        json_object_set_new(root, "fcnt", json_integer((json_int_t)reading->fcnt));
    }
    return finish(root);
}

char *gw_payload_health(uint64_t seq, const struct gw_sensor_cfg *sensor,
                        const struct gw_sensor_health *h)
{
    json_t *root = json_pack("{sI ss sb so sI}", "seq", (json_int_t)seq, "sensor", sensor->id,
                             "online", h->online, "last_seen", json_time(h->last_seen_ms), "errors",
                             (json_int_t)h->errors);
    if (!root) {
        return NULL;
    }
    if (h->fault[0]) {
        json_object_set_new(root, "fault", json_string(h->fault));
    }
    if (h->has_battery) {
        json_object_set_new(root, "battery", json_real(h->battery));
    }
    if (h->has_rssi) {
        json_object_set_new(root, "rssi", json_real(h->rssi));
    }
    if (h->has_snr) {
        json_object_set_new(root, "snr", json_real(h->snr));
    }
    if (h->has_frame_loss) {
        json_object_set_new(root, "frame_loss", json_real(h->frame_loss));
    }
    return finish(root);
}

char *gw_payload_alarm(uint64_t seq, const struct gw_config *cfg, const struct gw_alarm *a,
                       const char *transition)
{
    const struct gw_rule_cfg *rule = &cfg->rules[a->rule_index];
    const struct gw_sensor_cfg *sensor = &cfg->sensors[a->sensor_index];
    json_t *root = json_pack(
        "{sI ss ss ss ss ss so so so so so si}", "seq", (json_int_t)seq, "key", a->key, "sensor",
        sensor->id, "rule", rule->name, "class", gw_class_name(rule->alarm_class), "state",
        gw_alarm_state_name(a->state), "value", json_value(&a->value), "raised_at",
        json_time(a->raised_at_ms), "acked_at", json_time(a->acked_at_ms), "acked_by",
        a->acked_by[0] ? json_string(a->acked_by) : json_null(), "cleared_at",
        json_time(a->cleared_at_ms), "level", a->level);
    if (root && transition) {
        json_object_set_new(root, "transition", json_string(transition));
    }
    return finish(root);
}

char *gw_payload_status(const struct gw_status *st)
{
    json_t *root =
        json_pack("{sb ss so sI sI si si}", "online", st->online, "version", GW_VERSION,
                  "started_at", json_time(st->started_at_ms), "outbox", (json_int_t)st->outbox,
                  "dropped", (json_int_t)st->dropped, "sensors_online", st->sensors_online,
                  "sensors_offline", st->sensors_offline);
    if (root && st->store_error) {
        json_object_set_new(root, "store_error", json_string(st->store_error));
    }
    return finish(root);
}

char *gw_payload_metrics(uint64_t seq, int64_t ts_ms, const struct gw_metric *metrics, int n)
{
    char ts[40];
    gw_format_rfc3339(ts_ms, ts, sizeof(ts));
    json_t *root = json_pack("{sI ss}", "seq", (json_int_t)seq, "ts", ts);
    for (int i = 0; root && i < n; i++) {
        json_object_set_new(root, metrics[i].name, json_integer(metrics[i].value));
    }
    return finish(root);
}
