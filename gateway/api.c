#include "api.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hazard_desk.h"
#include "payload.h"
#include "timefmt.h"

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

/* ---- the hazard register ---- */

bool gw_api_hazard_filter_ok(const char *status)
{
    return !status || !*status || strcmp(status, "overdue") == 0 ||
           gw_hazard_status_from_name(status) >= 0;
}

bool gw_api_hazard_overdue(const struct gw_hazard *h, int64_t now_ms)
{
    return h->status != GW_HZ_CLOSED && (h->overdue || now_ms >= h->deadline_ms);
}

static bool hazard_matches(const struct gw_hazard *h, const char *status, int64_t now_ms)
{
    if (!status || !*status) {
        return true;
    }
    if (strcmp(status, "overdue") == 0) {
        return gw_api_hazard_overdue(h, now_ms);
    }
    return strcmp(gw_hazard_status_name(h->status), status) == 0;
}

/* One hazard's share of the history: how many entries, and when the last one was written. */
struct hazard_history {
    int entries;
    int64_t updated_at_ms;
};

/* The P/hazards/<id> object, as a view: without the delivery's "seq". */
static json_t *hazard_view(const struct gw_hazard *h, struct hazard_history hist)
{
    char *s = gw_hazard_json(h, 0, hist.updated_at_ms, hist.entries);
    json_t *o = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    if (o) {
        json_object_del(o, "seq");
    }
    return o;
}

static int newest_first(const void *x, const void *y)
{
    const struct gw_hazard *a = *(const struct gw_hazard *const *)x;
    const struct gw_hazard *b = *(const struct gw_hazard *const *)y;
    if (a->found_at_ms != b->found_at_ms) {
        return a->found_at_ms > b->found_at_ms ? -1 : 1;
    }
    return -strcmp(a->id, b->id);
}

char *gw_api_hazards(const struct gw_hazards *hz,
                     int (*meta)(const void *ctx, const char *id, int64_t *updated_at_ms,
                                 int *entries),
                     const void *meta_ctx, const char *status, int64_t now_ms)
{
    int n = 0, it = 0;
    const struct gw_hazard *h;
    while ((h = gw_hazards_next(hz, &it))) {
        n++;
    }
    const struct gw_hazard **sorted = calloc((size_t)(n > 0 ? n : 1), sizeof(*sorted));
    json_t *list = json_array();
    if (!sorted || !list) {
        free(sorted);
        json_decref(list);
        return NULL;
    }
    int m = 0;
    it = 0;
    while ((h = gw_hazards_next(hz, &it)) && m < n) {
        if (hazard_matches(h, status, now_ms)) {
            sorted[m++] = h;
        }
    }
    qsort(sorted, (size_t)m, sizeof(*sorted), newest_first);
    for (int i = 0; list && i < m; i++) {
        struct hazard_history hist = {0};
        if (!meta || meta(meta_ctx, sorted[i]->id, &hist.updated_at_ms, &hist.entries) != 0) {
            hist = (struct hazard_history){0};
        }
        json_t *o = hazard_view(sorted[i], hist);
        if (!o || json_array_append_new(list, o) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    free(sorted);
    return dump(list);
}

char *gw_api_hazard(const struct gw_hazards *hz, const char *id, const char *const *entries,
                    int nentries)
{
    const struct gw_hazard *h = id ? gw_hazards_find(hz, id) : NULL;
    if (!h) {
        return NULL;
    }
    json_t *history = json_array();
    struct hazard_history hist = {0};
    for (int i = 0; history && i < nentries; i++) {
        json_t *e = json_loads(entries[i], 0, NULL);
        const char *of = json_string_value(json_object_get(e, "hazard"));
        if (of && strcmp(of, id) == 0) {
            hist.entries++;
            hist.updated_at_ms = json_integer_value(json_object_get(e, "at"));
            json_array_append(history, e);
        }
        json_decref(e);
    }
    json_t *view = history ? hazard_view(h, hist) : NULL;
    if (!view) {
        json_decref(history);
        return NULL;
    }
    return dump(json_pack("{so so}", "hazard", view, "history", history));
}

bool gw_api_log_name(const char *name, char day[11], bool *csv)
{
    size_t len = strlen(name);
    if (len == 13 && strcmp(name + 10, ".md") == 0) {
        *csv = false;
    } else if (len == 14 && strcmp(name + 10, ".csv") == 0) {
        *csv = true;
    } else {
        return false;
    }
    char date[11];
    int y, m, d;
    memcpy(date, name, 10);
    date[10] = '\0';
    if (gw_parse_date(date, &y, &m, &d) != 0) {
        return false;
    }
    memcpy(day, date, sizeof(date));
    return true;
}
