#include "api.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

const char *gw_api_sensor_state(const struct gw_sensor_health *h)
{
    if (!h->online) {
        return "offline";
    }
    return h->fault[0] ? "fault" : "online";
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0) {
        return json_null();
    }
    char buf[40];
    gw_format_rfc3339(ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *value_json(const struct gw_value *v)
{
    switch (v->type) {
    case GW_VALUE_NUMBER:
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

/* The unit of a point, from the sensor's profile (Modbus points, layout fields, JSON values). */
static const char *unit_of(const struct gw_config *cfg, const struct gw_sensor_cfg *s,
                           const char *point)
{
    if (s->profile_index < 0 || s->profile_index >= cfg->nprofiles) {
        return NULL;
    }
    const struct gw_profile_cfg *p = &cfg->profiles[s->profile_index];
    for (int i = 0; i < p->npoints; i++) {
        if (strcmp(p->points[i].name, point) == 0) {
            return p->points[i].unit;
        }
    }
    for (int i = 0; i < p->nfields; i++) {
        if (strcmp(p->fields[i].name, point) == 0) {
            return p->fields[i].unit;
        }
    }
    for (int i = 0; i < p->nvalues; i++) {
        if (strcmp(p->values[i].name, point) == 0) {
            return p->values[i].unit;
        }
    }
    return NULL;
}

static int alarms_of(const struct gw_alarms *alarms, int sensor_index)
{
    int n = 0;
    const struct gw_alarm *a;
    for (int it = 0; (a = gw_alarms_next(alarms, &it));) {
        n += a->sensor_index == sensor_index;
    }
    return n;
}

static json_t *sensor_json(const struct gw_config *cfg, const struct gw_registry *reg,
                           const struct gw_alarms *alarms, int i, int64_t now_ms)
{
    const struct gw_sensor_cfg *s = &cfg->sensors[i];
    const struct gw_sensor_health *h = gw_registry_get(reg, i);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(s->id));
    json_object_set_new(o, "kind", json_string(s->kind));
    if (s->location.building || s->location.floor || s->location.zone) {
        json_t *loc = json_object();
        json_object_set_new(loc, "building",
                            s->location.building ? json_string(s->location.building) : json_null());
        json_object_set_new(loc, "floor",
                            s->location.floor ? json_string(s->location.floor) : json_null());
        json_object_set_new(loc, "zone",
                            s->location.zone ? json_string(s->location.zone) : json_null());
        json_object_set_new(o, "location", loc);
    } else {
        json_object_set_new(o, "location", json_null());
    }
    json_object_set_new(o, "source",
                        json_string(s->bus_index >= 0 ? "modbus"
                                    : s->lora.enabled ? "lora"
                                                      : "mqtt"));
    json_object_set_new(o, "state", json_string(gw_api_sensor_state(h)));
    json_object_set_new(o, "last_seen", time_or_null(h->last_seen_ms));
    json_object_set_new(o, "age_s",
                        h->last_seen_ms > 0 ? json_integer((now_ms - h->last_seen_ms) / 1000)
                                            : json_null());
    json_object_set_new(o, "errors", json_integer((json_int_t)h->errors));
    if (h->fault[0]) {
        json_object_set_new(o, "fault", json_string(h->fault));
    }
    if (h->has_battery) {
        json_object_set_new(o, "battery", json_real(h->battery));
    }
    if (h->has_rssi) {
        json_object_set_new(o, "rssi", json_real(h->rssi));
    }
    if (h->has_snr) {
        json_object_set_new(o, "snr", json_real(h->snr));
    }
    if (h->has_frame_loss) {
        json_object_set_new(o, "frame_loss", json_real(h->frame_loss));
    }
    json_t *values = json_object();
    json_t *units = json_object();
    json_t *faults = NULL;
    for (int k = 0; k < h->npoints; k++) {
        const struct gw_point_value *p = &h->points[k];
        if (p->fault != GW_FAULT_NONE) {
            if (!faults) {
                faults = json_object();
            }
            json_object_set_new(faults, p->name, json_string(gw_fault_name(p->fault)));
        } else {
            json_object_set_new(values, p->name, value_json(&p->value));
        }
        const char *unit = unit_of(cfg, s, p->name);
        if (unit) {
            json_object_set_new(units, p->name, json_string(unit));
        }
    }
    json_object_set_new(o, "values", values);
    json_object_set_new(o, "units", units);
    if (faults) {
        json_object_set_new(o, "faults", faults);
    }
    struct gw_oos_sensor oos;
    if (gw_alarms_sensor_oos(alarms, i, &oos)) {
        json_object_set_new(o, "out_of_service", json_true());
        json_object_set_new(o, "out_of_service_by", json_string(oos.by));
        json_object_set_new(o, "out_of_service_since", time_or_null(oos.since_ms));
    }
    json_object_set_new(o, "alarms", json_integer(alarms_of(alarms, i)));
    return o;
}

static char *dump(json_t *root)
{
    char *s = root ? json_dumps(root, DUMP_FLAGS) : NULL;
    json_decref(root);
    return s;
}

char *gw_api_sensors(const struct gw_config *cfg, const struct gw_registry *reg,
                     const struct gw_alarms *alarms, int64_t now_ms)
{
    json_t *list = json_array();
    for (int i = 0; list && i < cfg->nsensors; i++) {
        json_array_append_new(list, sensor_json(cfg, reg, alarms, i, now_ms));
    }
    return dump(list);
}

/* An alarm record as on P/alarms (without seq: this is a view, not a delivery). */
static json_t *alarm_json(const struct gw_config *cfg, const struct gw_alarm *a)
{
    char *s = gw_payload_alarm(0, cfg, a, NULL);
    json_t *o = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    if (o) {
        json_object_del(o, "seq");
    }
    return o ? o : json_null();
}

static int by_urgency(const void *x, const void *y)
{
    const struct gw_alarm *a = *(const struct gw_alarm *const *)x;
    const struct gw_alarm *b = *(const struct gw_alarm *const *)y;
    if (a->alarm_class != b->alarm_class) {
        return (int)a->alarm_class - (int)b->alarm_class; /* alarm < supervisory < trouble */
    }
    return a->raised_at_ms < b->raised_at_ms ? -1 : a->raised_at_ms > b->raised_at_ms;
}

static json_t *alarm_list(const struct gw_config *cfg, const struct gw_alarms *alarms,
                          int sensor_index)
{
    int n = 0, it = 0;
    const struct gw_alarm *a;
    while ((a = gw_alarms_next(alarms, &it))) {
        n++;
    }
    const struct gw_alarm **sorted = calloc((size_t)(n > 0 ? n : 1), sizeof(*sorted));
    json_t *list = json_array();
    if (!sorted || !list) {
        free(sorted);
        json_decref(list);
        return NULL;
    }
    int m = 0;
    it = 0;
    while ((a = gw_alarms_next(alarms, &it)) && m < n) {
        if (sensor_index < 0 || a->sensor_index == sensor_index) {
            sorted[m++] = a;
        }
    }
    qsort(sorted, (size_t)m, sizeof(*sorted), by_urgency);
    for (int i = 0; i < m; i++) {
        json_array_append_new(list, alarm_json(cfg, sorted[i]));
    }
    free(sorted);
    return list;
}

char *gw_api_sensor(const struct gw_config *cfg, const struct gw_registry *reg,
                    const struct gw_alarms *alarms, int sensor_index, int64_t now_ms)
{
    if (sensor_index < 0 || sensor_index >= cfg->nsensors) {
        return NULL;
    }
    json_t *o = sensor_json(cfg, reg, alarms, sensor_index, now_ms);
    json_t *list = alarm_list(cfg, alarms, sensor_index);
    if (list) {
        json_object_set_new(o, "alarms", list);
    }
    return dump(o);
}

char *gw_api_alarms(const struct gw_config *cfg, const struct gw_alarms *alarms)
{
    return dump(alarm_list(cfg, alarms, -1));
}
