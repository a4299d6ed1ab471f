#include "payload.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Enough digits for any sensor value without printing 0.45000000000000001. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

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
    /* A system alarm (or indexes that are not cfg's) describes itself: its name, its class,
     * and its key's source as "sensor". */
    bool by_rule = !a->system && a->rule_index >= 0 && a->rule_index < cfg->nrules &&
                   a->sensor_index >= 0 && a->sensor_index < cfg->nsensors;
    char source[GW_KEY_MAX];
    const char *slash = strchr(a->key, '/');
    snprintf(source, sizeof(source), "%.*s",
             (int)(slash ? (size_t)(slash - a->key) : strnlen(a->key, sizeof(a->key))), a->key);
    const char *sensor_id = by_rule ? cfg->sensors[a->sensor_index].id : source;
    const char *rule_name = by_rule ? cfg->rules[a->rule_index].name : a->name;
    enum gw_alarm_class cls = by_rule ? cfg->rules[a->rule_index].alarm_class : a->alarm_class;
    json_t *root =
        json_pack("{sI ss ss ss ss ss so so so so so si}", "seq", (json_int_t)seq, "key", a->key,
                  "sensor", sensor_id, "rule", rule_name, "class", gw_class_name(cls), "state",
                  gw_alarm_state_name(a->state), "value", json_value(&a->value), "raised_at",
                  json_time(a->raised_at_ms), "acked_at", json_time(a->acked_at_ms), "acked_by",
                  a->acked_by[0] ? json_string(a->acked_by) : json_null(), "cleared_at",
                  json_time(a->cleared_at_ms), "level", a->level);
    if (root == NULL) {
        return NULL;
    }
    json_object_set_new(root, "condition", json_boolean(a->condition));
    if (a->system) {
        json_object_set_new(root, "system", json_true());
    }
    if (a->test) {
        json_object_set_new(root, "test", json_true());
    }
    if (a->needs_reset) {
        json_object_set_new(root, "needs_reset", json_true());
    }
    if (a->shelved_until_ms != 0) {
        json_object_set_new(root, "shelved_until", json_time(a->shelved_until_ms));
    }
    if (a->shelved_by[0]) {
        json_object_set_new(root, "shelved_by", json_string(a->shelved_by));
    }
    if (a->note[0]) {
        json_object_set_new(root, "note", json_string(a->note));
    }
    if (a->chattering) {
        json_object_set_new(root, "chattering", json_true());
    }
    if (a->suppressed > 0) {
        json_object_set_new(root, "suppressed", json_integer(a->suppressed));
    }
    if (a->nraises > 0) {
        json_t *raises = json_array();
        for (int i = 0; i < a->nraises && i < GW_ALARM_RAISE_RING; i++) {
            json_array_append_new(raises, json_time(a->raises_ms[i]));
        }
        json_object_set_new(root, "raises", raises);
    }
    if (a->notified_at_ms != 0) {
        json_object_set_new(root, "notified_at", json_time(a->notified_at_ms));
    }
    if (a->notify_pending) {
        json_object_set_new(root, "notify_pending", json_true());
    }
    if (transition) {
        json_object_set_new(root, "transition", json_string(transition));
    }
    return finish(root);
}

/* An RFC 3339 time (gw_parse_rfc3339) -> Unix ms; false when v is not one. */
static bool parse_time(json_t *v, int64_t *out)
{
    return gw_parse_rfc3339(json_string_value(v), out) == 0;
}

/* An optional time: absent or null is 0. */
static bool opt_time(json_t *root, const char *name, int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, name);
    *out = 0;
    if (v == NULL || json_is_null(v) || parse_time(v, out)) {
        return true;
    }
    snprintf(err, errlen, "\"%s\" is not an RFC 3339 time", name);
    return false;
}

static void opt_string(json_t *root, const char *name, char *out, size_t size)
{
    const char *s = json_string_value(json_object_get(root, name));
    snprintf(out, size, "%s", s ? s : "");
}

static void parse_value(json_t *v, struct gw_value *out)
{
    memset(out, 0, sizeof(*out));
    if (json_is_number(v)) {
        out->type = GW_VALUE_NUMBER;
        out->num = json_number_value(v);
    } else if (json_is_boolean(v)) {
        out->type = GW_VALUE_BOOL;
        out->b = json_is_true(v);
        out->num = out->b;
    } else if (json_is_string(v)) {
        out->type = GW_VALUE_STRING;
        snprintf(out->str, sizeof(out->str), "%s", json_string_value(v));
    }
}

int gw_payload_alarm_parse(const char *json, struct gw_alarm *out, char *err, size_t errlen)
{
    char scratch[GW_ERR_MAX];
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    memset(out, 0, sizeof(*out));
    out->rule_index = -1;
    out->sensor_index = -1;
    json_error_t jerr;
    json_t *root = json ? json_loads(json, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (root == NULL) {
        snprintf(err, errlen, "bad JSON: %s", json ? jerr.text : "none");
        return -EINVAL;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object");
        json_decref(root);
        return -EINVAL;
    }
    int rc = -EINVAL;
    const char *key = json_string_value(json_object_get(root, "key"));
    const char *state = json_string_value(json_object_get(root, "state"));
    if (key == NULL || key[0] == '\0' || strlen(key) >= sizeof(out->key)) {
        snprintf(err, errlen, "missing or too long \"key\"");
        goto out;
    }
    snprintf(out->key, sizeof(out->key), "%s", key);
    int st = -1;
    for (int i = 0; state != NULL && i < GW_ALARM_NSTATES; i++) {
        if (strcmp(state, gw_alarm_state_name((enum gw_alarm_state)i)) == 0) {
            st = i;
        }
    }
    if (st < 0) {
        snprintf(err, errlen, "missing or unknown \"state\"");
        goto out;
    }
    out->state = (enum gw_alarm_state)st;
    parse_value(json_object_get(root, "value"), &out->value);
    if (!opt_time(root, "raised_at", &out->raised_at_ms, err, errlen) ||
        !opt_time(root, "acked_at", &out->acked_at_ms, err, errlen) ||
        !opt_time(root, "cleared_at", &out->cleared_at_ms, err, errlen) ||
        !opt_time(root, "shelved_until", &out->shelved_until_ms, err, errlen) ||
        !opt_time(root, "notified_at", &out->notified_at_ms, err, errlen)) {
        goto out;
    }
    opt_string(root, "acked_by", out->acked_by, sizeof(out->acked_by));
    opt_string(root, "shelved_by", out->shelved_by, sizeof(out->shelved_by));
    opt_string(root, "note", out->note, sizeof(out->note));
    json_int_t level = json_integer_value(json_object_get(root, "level"));
    out->level = level > 0 && level < 1000 ? (int)level : 0;
    json_int_t suppressed = json_integer_value(json_object_get(root, "suppressed"));
    out->suppressed = suppressed > 0 && suppressed < INT32_MAX ? (int)suppressed : 0;
    out->condition = json_is_true(json_object_get(root, "condition"));
    out->needs_reset = json_is_true(json_object_get(root, "needs_reset"));
    out->chattering = json_is_true(json_object_get(root, "chattering"));
    out->notify_pending = json_is_true(json_object_get(root, "notify_pending"));
    out->test = json_is_true(json_object_get(root, "test"));
    out->system = json_is_true(json_object_get(root, "system"));
    /* A rule alarm takes its name and class from the config; a system alarm only has these. */
    const char *rule = json_string_value(json_object_get(root, "rule"));
    const char *cls = json_string_value(json_object_get(root, "class"));
    int c = -1;
    for (int i = 0; cls != NULL && i < GW_NCLASSES; i++) {
        if (strcmp(cls, gw_class_name((enum gw_alarm_class)i)) == 0) {
            c = i;
        }
    }
    if (rule != NULL && strlen(rule) < sizeof(out->name)) {
        snprintf(out->name, sizeof(out->name), "%s", rule);
    }
    if (c >= 0) {
        out->alarm_class = (enum gw_alarm_class)c;
    }
    if (out->system && (out->name[0] == '\0' || c < 0)) {
        snprintf(err, errlen,
                 "system alarm without a \"rule\" name (< %zu bytes) or a known "
                 "\"class\"",
                 sizeof(out->name));
        goto out;
    }
    json_t *raises = json_object_get(root, "raises");
    size_t n = json_array_size(raises);
    /* Keep the newest when there are more than the ring holds. */
    size_t first = n > GW_ALARM_RAISE_RING ? n - GW_ALARM_RAISE_RING : 0;
    for (size_t i = first; i < n; i++) {
        if (!parse_time(json_array_get(raises, i), &out->raises_ms[out->nraises])) {
            snprintf(err, errlen, "\"raises\"[%zu] is not an RFC 3339 time", i);
            goto out;
        }
        out->nraises++;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
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
    json_t *selftest = st->selftest ? json_loads(st->selftest, 0, NULL) : NULL;
    if (root && selftest) {
        json_object_set_new(root, "selftest", selftest);
    } else {
        json_decref(selftest);
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
