/*
 * The school's safety figures: definitions in kpi.h.
 *
 * The history is replayed record by record, keeping only the current
 * occurrence of each key (a few hundred keys at most, however many events a
 * chattering alarm wrote): an occurrence is tallied when it ends or the next
 * one of its key starts; those still going on are counted by gw_kpi_compute,
 * which leaves the history as it is.
 */
#include "kpi.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

static const char *const class_key[GW_NCLASSES] = {"alarm", "supervisory", "trouble"};

static int fail(char *err, size_t errlen, int rc, const char *why)
{
    if (err && errlen > 0) {
        snprintf(err, errlen, "%s", why);
    }
    return rc;
}

/* ---- occurrences ---- */

struct current {
    char *key;
    bool open; /* an occurrence of the key is going on */
    bool test; /* every raise of it so far was a test */
    int cls;
    int64_t raised_ms, acked_ms; /* acked 0: not acknowledged */
};

/* The tallies of occurrences, ended ones so far (and the open ones at compute). */
struct tally {
    int alarms[GW_NCLASSES];
    int acked;
    int64_t ack_sum_ms, ack_worst_ms;
};

struct gw_kpi_history {
    int64_t now_ms;
    struct current *cur; /* one per key seen */
    int ncur, capcur;
    struct tally ended;
    int malformed;
};

struct gw_kpi_history *gw_kpi_history_new(int64_t now_ms)
{
    struct gw_kpi_history *h = calloc(1, sizeof(*h));
    if (h) {
        h->now_ms = now_ms;
    }
    return h;
}

void gw_kpi_history_free(struct gw_kpi_history *h)
{
    if (h == NULL) {
        return;
    }
    for (int i = 0; i < h->ncur; i++) {
        free(h->cur[i].key);
    }
    free(h->cur);
    free(h);
}

static const char *str_of(json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

static int class_of(const char *s)
{
    for (int i = 0; s && i < GW_NCLASSES; i++) {
        if (strcmp(s, class_key[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* An optional time member: absent or null is 0; false when present but unreadable. */
static bool opt_time(json_t *rec, const char *name, int64_t *out)
{
    json_t *v = json_object_get(rec, name);
    *out = 0;
    return v == NULL || json_is_null(v) || gw_parse_rfc3339(json_string_value(v), out) == 0;
}

static void count(const struct current *c, int64_t now, struct tally *t)
{
    if (!c->open || c->test || c->raised_ms <= now - GW_KPI_WINDOW_MS || c->raised_ms > now) {
        return;
    }
    t->alarms[c->cls]++;
    if (c->acked_ms != 0) {
        int64_t ms = c->acked_ms > c->raised_ms ? c->acked_ms - c->raised_ms : 0;
        t->acked++;
        t->ack_sum_ms += ms;
        if (ms > t->ack_worst_ms) {
            t->ack_worst_ms = ms;
        }
    }
}

static void end_occurrence(struct gw_kpi_history *h, struct current *c)
{
    count(c, h->now_ms, &h->ended);
    c->open = false;
}

static struct current *find_key(struct gw_kpi_history *h, const char *key)
{
    for (int i = 0; i < h->ncur; i++) {
        if (strcmp(h->cur[i].key, key) == 0) {
            return &h->cur[i];
        }
    }
    return NULL;
}

static struct current *add_key(struct gw_kpi_history *h, const char *key)
{
    if (h->ncur == h->capcur) {
        int cap = h->capcur ? h->capcur * 2 : 16;
        struct current *p = realloc(h->cur, (size_t)cap * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        h->cur = p;
        h->capcur = cap;
    }
    char *copy = strdup(key);
    if (copy == NULL) {
        return NULL;
    }
    struct current *c = &h->cur[h->ncur++];
    *c = (struct current){.key = copy};
    return c;
}

int gw_kpi_history_add(struct gw_kpi_history *h, const char *payload)
{
    if (h == NULL) {
        return -EINVAL;
    }
    json_t *rec = payload ? json_loads(payload, 0, NULL) : NULL;
    const char *transition = str_of(rec, "transition");
    if (transition == NULL) {
        /* Notifications share the history: a "kind" and no transition. Anything else is junk. */
        if (!json_is_object(rec) || json_object_get(rec, "kind") == NULL) {
            h->malformed++;
        }
        json_decref(rec);
        return 0;
    }
    const char *key = str_of(rec, "key");
    int cls = class_of(str_of(rec, "class"));
    int64_t raised, acked;
    bool is_raise = strcmp(transition, "raise") == 0;
    if (key == NULL || cls < 0 || !opt_time(rec, "raised_at", &raised) ||
        !opt_time(rec, "acked_at", &acked) || (is_raise && raised == 0)) {
        h->malformed++;
        json_decref(rec);
        return 0;
    }
    bool test = json_is_true(json_object_get(rec, "test"));
    struct current *c = find_key(h, key);
    int rc = 0;
    if (is_raise) {
        if (c == NULL && (c = add_key(h, key)) == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        if (c->open && c->raised_ms == raised) {
            c->test = c->test && test; /* the same occurrence raised again */
        } else {
            end_occurrence(h, c);
            *c = (struct current){
                .key = c->key, .open = true, .test = test, .cls = cls, .raised_ms = raised};
        }
    }
    if (c == NULL || !c->open) {
        goto out; /* an occurrence raised before the history began */
    }
    if (c->acked_ms == 0 && acked != 0) {
        c->acked_ms = acked;
    }
    const char *state = str_of(rec, "state");
    if (state && strcmp(state, "normal") == 0) {
        end_occurrence(h, c);
    }
out:
    json_decref(rec);
    return rc;
}

/* ---- live alarms ---- */

static bool kind_is(const char *kind, const char *want)
{
    return kind != NULL && strcmp(kind, want) == 0;
}

/* Bit 1: the sensor's hydrant has no pressure; bit 2: the exit is locked. */
enum { NO_PRESSURE = 1, LOCKED = 2 };

static unsigned live_flag(const struct gw_config *cfg, const struct gw_kpi_alarm *a)
{
    if (!a->condition || a->state == GW_ALARM_NORMAL || a->rule_index < 0 ||
        a->rule_index >= cfg->nrules || a->sensor_index < 0 || a->sensor_index >= cfg->nsensors) {
        return 0;
    }
    const struct gw_rule_cfg *rule = &cfg->rules[a->rule_index];
    const char *kind = cfg->sensors[a->sensor_index].kind;
    if (kind_is(kind, "hydrant_pressure") && rule->cond == GW_COND_BELOW &&
        (rule->kind == NULL || kind_is(rule->kind, "hydrant_pressure"))) {
        return NO_PRESSURE;
    }
    if (kind_is(kind, "exit_door") && rule->cond == GW_COND_EQUALS &&
        rule->equals.type == GW_VALUE_STRING && strcmp(rule->equals.str, "locked") == 0 &&
        (rule->kind == NULL || kind_is(rule->kind, "exit_door"))) {
        return LOCKED;
    }
    return 0;
}

static int live_alarms(const struct gw_kpi_input *in, struct gw_kpi *out)
{
    const struct gw_config *cfg = in->cfg;
    unsigned char *flags = cfg->nsensors > 0 ? calloc((size_t)cfg->nsensors, 1) : NULL;
    if (cfg->nsensors > 0 && flags == NULL) {
        return -ENOMEM;
    }
    for (int i = 0; i < in->nalarms; i++) {
        const struct gw_kpi_alarm *a = &in->alarms[i];
        if (!a->test && (a->state == GW_ALARM_UNACKED || a->state == GW_ALARM_RTN_UNACKED)) {
            out->unacknowledged_alarms++;
        }
        unsigned f = live_flag(cfg, a);
        if (f != 0) {
            flags[a->sensor_index] |= (unsigned char)f;
        }
    }
    for (int i = 0; i < cfg->nsensors; i++) {
        out->hydrants_without_pressure += (flags[i] & NO_PRESSURE) != 0;
        out->exits_locked_in_hours += (flags[i] & LOCKED) != 0;
    }
    free(flags);
    return 0;
}

/* ---- the figures ---- */

int gw_kpi_compute(const struct gw_kpi_input *in, struct gw_kpi *out, char *err, size_t errlen)
{
    if (out == NULL || in == NULL || in->cfg == NULL) {
        return fail(err, errlen, -EINVAL, "no input, output or config");
    }
    memset(out, 0, sizeof(*out));
    const struct gw_config *cfg = in->cfg;
    if (cfg->nsensors < 0 || cfg->nrules < 0 || in->nalarms < 0 ||
        (cfg->nsensors > 0 && cfg->sensors == NULL) || (cfg->nrules > 0 && cfg->rules == NULL) ||
        (in->nalarms > 0 && in->alarms == NULL)) {
        return fail(err, errlen, -EINVAL, "a negative count, or a count without its array");
    }
    if (in->history && in->history->now_ms != in->now_ms) {
        return fail(err, errlen, -EINVAL, "the history was replayed for another now_ms");
    }
    out->sensors_total = cfg->nsensors;
    for (int i = 0; in->online && i < cfg->nsensors; i++) {
        out->sensors_online += in->online[i];
    }
    if (cfg->nsensors > 0) {
        out->online_pct_tenths =
            (int)(((int64_t)out->sensors_online * 1000 + cfg->nsensors / 2) / cfg->nsensors);
    }

    if (in->history) {
        const struct gw_kpi_history *h = in->history;
        struct tally t = h->ended;
        for (int i = 0; i < h->ncur; i++) {
            count(&h->cur[i], h->now_ms, &t); /* still going on: counted as they are now */
        }
        memcpy(out->alarms_24h, t.alarms, sizeof(out->alarms_24h));
        out->acked_24h = t.acked;
        out->ack_worst_ms = t.ack_worst_ms;
        if (t.acked > 0) {
            /* Half up in integers: no binary-fraction surprises at x.x5. */
            out->ack_mean_ds = (t.ack_sum_ms + 50LL * t.acked) / (100LL * t.acked);
        }
        out->malformed = h->malformed;
    }

    int rc = live_alarms(in, out);
    if (rc != 0) {
        return fail(err, errlen, rc, "out of memory");
    }
    if (in->hazards) {
        out->open_hazards = in->hazards->open + in->hazards->rectifying;
        out->overdue_hazards = in->hazards->overdue;
    }
    return 0;
}

char *gw_kpi_json(const struct gw_kpi *k, uint64_t seq, int64_t ts_ms, const char *district,
                  const char *school)
{
    if (k == NULL) {
        return NULL;
    }
    char ts[40];
    gw_format_rfc3339(ts_ms, ts, sizeof(ts));
    json_t *alarms =
        json_pack("{si si si}", class_key[GW_CLASS_ALARM], k->alarms_24h[GW_CLASS_ALARM],
                  class_key[GW_CLASS_SUPERVISORY], k->alarms_24h[GW_CLASS_SUPERVISORY],
                  class_key[GW_CLASS_TROUBLE], k->alarms_24h[GW_CLASS_TROUBLE]);
    json_t *mean = k->acked_24h > 0 ? json_real((double)k->ack_mean_ds / 10.0) : json_null();
    json_t *worst = k->acked_24h > 0 ? json_real((double)k->ack_worst_ms / 1000.0) : json_null();
    json_t *root = json_pack(
        "{sI ss ss ss si sf so so so si si si si si}", "seq", (json_int_t)seq, "ts", ts, "district",
        district ? district : "", "school", school ? school : "", "sensors_total", k->sensors_total,
        "sensors_online_pct", (double)k->online_pct_tenths / 10.0, "alarms_24h", alarms,
        "ack_mean_s", mean, "ack_worst_s", worst, "unacknowledged_alarms", k->unacknowledged_alarms,
        "open_hazards", k->open_hazards, "overdue_hazards", k->overdue_hazards,
        "hydrants_without_pressure", k->hydrants_without_pressure, "exits_locked_in_hours",
        k->exits_locked_in_hours);
    if (root == NULL) {
        return NULL; /* json_pack's "o" took the references even on failure */
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(root);
    return s;
}

int64_t gw_kpi_next_run_ms(int64_t now_ms, int interval_s)
{
    int64_t step = (int64_t)(interval_s > 0 ? interval_s : 3600) * 1000;
    int64_t q = now_ms / step;
    if (now_ms % step < 0) {
        q--; /* floor for instants before the epoch */
    }
    return (q + 1) * step;
}

int64_t gw_kpi_grid_point_ms(int64_t now_ms, int interval_s)
{
    int64_t step = (int64_t)(interval_s > 0 ? interval_s : 3600) * 1000;
    int64_t q = now_ms / step;
    if (now_ms % step < 0) {
        q--; /* floor for instants before the epoch */
    }
    return q * step;
}
