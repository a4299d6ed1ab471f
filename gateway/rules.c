/*
 * Rule engine. Pure: no I/O, no clock reads (now_ms comes from the caller);
 * the only outside input is the process time zone, used by schedules.
 *
 * Semantics:
 * - Instances: one per (rule, sensor) where rule->sensor is NULL or the
 *   sensor's id, and rule->kind is NULL or the sensor's kind. Offline rules
 *   only get sensors with a period: a polled sensor (bus_index >= 0) uses
 *   interval_s (else expect_every_s), a pushed one only expect_every_s
 *   (config.c gives every sensor interval_s = 10 by default, which is no
 *   report period for a LoRa sensor). Instances are stored grouped by sensor,
 *   so a reading touches only its sensor's instances.
 * - The condition is computed from the instance's point (rule->point). An
 *   absent point, one with a fault, or one of the wrong type (string for
 *   above/below/rate) leaves the instance untouched.
 *   above: true when v > threshold, false when v <= threshold - deadband,
 *   unchanged in between (hysteresis; starts false). below mirrors it.
 *   equals: number == number, bool == bool, a numeric 0/1 point == bool,
 *   string == string; any other pair is "not equal".
 *   rate_above/rate_below: (v - prev_v) per minute from the previous
 *   reading's ts_ms, with the same hysteresis; needs two readings; a reading
 *   not newer than the previous one is ignored.
 *   offline: true when now - last OK reading of the sensor (any points) >
 *   offline_after * period; the clock starts at gw_rules_new's now_ms.
 * - during: outside the schedule's window the condition is false.
 * - on_delay_s / off_delay_s: the (windowed) condition must stay true/false
 *   from the first call that saw it change until now >= start + delay; a
 *   change back before that cancels. Reading and tick both check it.
 * - latch is not the rules' business: they report the condition's edges, and
 *   the alarm lifecycle (alarms.c) holds a latched alarm until reset.
 * - Transition values: the point value (above/below/equals), the rate
 *   (rate_*), the age in seconds (offline): the quantity that decided it.
 *   Time-driven transitions (tick) carry the last one.
 * - A full `out` never loses a transition: the instance's state changes,
 *   the transition is queued on the instance, and the instance is frozen
 *   (its value still tracked, no new decision) until a later call emits the
 *   queued transitions first, oldest first. gw_rules_is_active already
 *   reports the new state.
 */
#include "rules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct inst {
    int rule_index;
    int sensor_index;
    int64_t offline_ms; /* offline rules: offline_after * period */
    bool cond;          /* raise-side truth with hysteresis, before the schedule */
    struct gw_value last;
    bool has_prev; /* rate rules: the previous point value */
    double prev_num;
    int64_t prev_ts;
    bool active;
    int64_t raise_since; /* -1: no on-delay running */
    int64_t clear_since; /* -1: no off-delay running */
    bool owed;           /* owed_tr waits for room in an out[] */
    struct gw_alarm_transition owed_tr;
};

struct gw_rules {
    const struct gw_config *cfg;
    int ninst;
    struct inst *inst;
    int *first;         /* nsensors + 1: instances of sensor s are first[s]..first[s+1]-1 */
    int64_t *last_seen; /* per sensor */
    int *owed_q;        /* ring of instance indices, oldest first */
    int owed_head, owed_len;
    uint64_t gen; /* per public call, so schedules are resolved once per call */
    uint64_t *sched_gen;
    bool *sched_open;
};

static bool str_eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int64_t sensor_period_s(const struct gw_sensor_cfg *s)
{
    if (s->bus_index >= 0) {
        return s->interval_s > 0 ? s->interval_s : s->expect_every_s;
    }
    return s->expect_every_s; /* interval_s holds only the poll default here */
}

static bool applies(const struct gw_rule_cfg *r, const struct gw_sensor_cfg *s)
{
    if (r->sensor != NULL && !str_eq(r->sensor, s->id)) {
        return false;
    }
    if (r->kind != NULL && !str_eq(r->kind, s->kind)) {
        return false;
    }
    if (r->cond == GW_COND_OFFLINE && sensor_period_s(s) <= 0) {
        return false;
    }
    return true;
}

static void init_inst(struct inst *in, const struct gw_config *cfg, int r, int s)
{
    memset(in, 0, sizeof(*in));
    in->rule_index = r;
    in->sensor_index = s;
    if (cfg->rules[r].cond == GW_COND_OFFLINE) {
        in->offline_ms =
            (int64_t)cfg->rules[r].offline_after * sensor_period_s(&cfg->sensors[s]) * 1000;
    }
    in->raise_since = -1;
    in->clear_since = -1;
}

struct gw_rules *gw_rules_new(const struct gw_config *cfg, int64_t now_ms)
{
    if (cfg == NULL || cfg->nsensors < 0 || cfg->nrules < 0 || cfg->nschedules < 0) {
        gw_error("rules", "no configuration");
        return NULL;
    }
    struct gw_rules *rules = calloc(1, sizeof(*rules));
    if (rules == NULL) {
        goto fail;
    }
    rules->cfg = cfg;
    int n = 0;
    for (int s = 0; s < cfg->nsensors; s++) {
        for (int r = 0; r < cfg->nrules; r++) {
            n += applies(&cfg->rules[r], &cfg->sensors[s]);
        }
    }
    /* +1 everywhere so an empty config still gets valid pointers. */
    rules->inst = calloc((size_t)n + 1, sizeof(*rules->inst));
    rules->owed_q = calloc((size_t)n + 1, sizeof(*rules->owed_q));
    rules->first = calloc((size_t)cfg->nsensors + 1, sizeof(*rules->first));
    rules->last_seen = calloc((size_t)cfg->nsensors + 1, sizeof(*rules->last_seen));
    rules->sched_gen = calloc((size_t)cfg->nschedules + 1, sizeof(*rules->sched_gen));
    rules->sched_open = calloc((size_t)cfg->nschedules + 1, sizeof(*rules->sched_open));
    if (rules->inst == NULL || rules->owed_q == NULL || rules->first == NULL ||
        rules->last_seen == NULL || rules->sched_gen == NULL || rules->sched_open == NULL) {
        goto fail;
    }
    for (int s = 0; s < cfg->nsensors; s++) {
        rules->first[s] = rules->ninst;
        rules->last_seen[s] = now_ms;
        for (int r = 0; r < cfg->nrules; r++) {
            if (applies(&cfg->rules[r], &cfg->sensors[s])) {
                init_inst(&rules->inst[rules->ninst++], cfg, r, s);
            }
        }
    }
    rules->first[cfg->nsensors] = rules->ninst;
    return rules;
fail:
    gw_error("rules", "out of memory err=%d", ENOMEM);
    gw_rules_free(rules);
    return NULL;
}

void gw_rules_free(struct gw_rules *rules)
{
    if (rules == NULL) {
        return;
    }
    free(rules->inst);
    free(rules->owed_q);
    free(rules->first);
    free(rules->last_seen);
    free(rules->sched_gen);
    free(rules->sched_open);
    free(rules);
}

void gw_rules_shift_time(struct gw_rules *rules, int64_t delta_ms)
{
    for (int s = 0; s < rules->cfg->nsensors; s++) {
        rules->last_seen[s] += delta_ms;
    }
    for (int i = 0; i < rules->ninst; i++) {
        struct inst *in = &rules->inst[i];
        if (in->has_prev) {
            in->prev_ts += delta_ms;
        }
        if (in->raise_since >= 0) {
            in->raise_since += delta_ms;
        }
        if (in->clear_since >= 0) {
            in->clear_since += delta_ms;
        }
    }
}

bool gw_schedule_is_open(const struct gw_schedule_cfg *schedule, int64_t now_ms)
{
    if (schedule == NULL) {
        return true;
    }
    int64_t secs = now_ms / 1000;
    if (now_ms % 1000 < 0) {
        secs--; /* floor, so the second before the epoch is not the epoch */
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL) {
        return false;
    }
    int minute = tm.tm_hour * 60 + tm.tm_min;
    bool today = schedule->days & (1u << tm.tm_wday);
    bool yesterday = schedule->days & (1u << ((tm.tm_wday + 6) % 7));
    if (schedule->from_min == schedule->to_min) {
        return today;
    }
    if (schedule->from_min < schedule->to_min) {
        return today && minute >= schedule->from_min && minute < schedule->to_min;
    }
    /* Crosses midnight: the early-morning part belongs to yesterday's window. */
    return (today && minute >= schedule->from_min) || (yesterday && minute < schedule->to_min);
}

static bool window_open(struct gw_rules *rules, int idx, int64_t now_ms)
{
    if (idx < 0 || idx >= rules->cfg->nschedules) {
        return true;
    }
    if (rules->sched_gen[idx] != rules->gen) {
        rules->sched_gen[idx] = rules->gen;
        rules->sched_open[idx] = gw_schedule_is_open(&rules->cfg->schedules[idx], now_ms);
    }
    return rules->sched_open[idx];
}

static void begin_call(struct gw_rules *rules)
{
    rules->gen++;
}

static double age_s(const struct gw_rules *rules, const struct inst *in, int64_t now_ms)
{
    return (double)(now_ms - rules->last_seen[in->sensor_index]) / 1000.0;
}

/* The condition as it stands now, schedule included. Offline rules are recomputed here. */
static bool effective(struct gw_rules *rules, struct inst *in, int64_t now_ms)
{
    const struct gw_rule_cfg *r = &rules->cfg->rules[in->rule_index];
    if (r->cond == GW_COND_OFFLINE) {
        in->cond = now_ms - rules->last_seen[in->sensor_index] > in->offline_ms;
        in->last.type = GW_VALUE_NUMBER;
        in->last.num = age_s(rules, in, now_ms);
    }
    return in->cond && window_open(rules, r->schedule_index, now_ms);
}

static void emit(struct gw_rules *rules, struct inst *in, enum gw_transition_type type,
                 int64_t now_ms, struct gw_alarm_transition *out, int max, int *n)
{
    struct gw_alarm_transition tr = {
        .rule_index = in->rule_index,
        .sensor_index = in->sensor_index,
        .type = type,
        .value = in->last,
        .ts_ms = now_ms,
    };
    if (*n < max) {
        out[(*n)++] = tr;
        return;
    }
    in->owed = true;
    in->owed_tr = tr;
    int tail = (rules->owed_head + rules->owed_len) % (rules->ninst + 1);
    rules->owed_q[tail] = (int)(in - rules->inst);
    rules->owed_len++;
}

static int flush_owed(struct gw_rules *rules, struct gw_alarm_transition *out, int max)
{
    int n = 0;
    while (rules->owed_len > 0 && n < max) {
        struct inst *in = &rules->inst[rules->owed_q[rules->owed_head]];
        rules->owed_head = (rules->owed_head + 1) % (rules->ninst + 1);
        rules->owed_len--;
        out[n++] = in->owed_tr;
        in->owed = false;
    }
    return n;
}

/* The delay state machine: decide from the effective condition at now_ms. */
static void step(struct gw_rules *rules, struct inst *in, bool cond, int64_t now_ms,
                 struct gw_alarm_transition *out, int max, int *n)
{
    if (in->owed) {
        return;
    }
    const struct gw_rule_cfg *r = &rules->cfg->rules[in->rule_index];
    if (!in->active) {
        in->clear_since = -1;
        if (!cond) {
            in->raise_since = -1;
            return;
        }
        if (in->raise_since < 0) {
            in->raise_since = now_ms;
        }
        if (now_ms - in->raise_since >= (int64_t)r->on_delay_s * 1000) {
            in->active = true;
            in->raise_since = -1;
            emit(rules, in, GW_TRANSITION_RAISE, now_ms, out, max, n);
        }
        return;
    }
    in->raise_since = -1;
    if (cond) {
        in->clear_since = -1;
        return;
    }
    if (in->clear_since < 0) {
        in->clear_since = now_ms;
    }
    if (now_ms - in->clear_since >= (int64_t)r->off_delay_s * 1000) {
        in->active = false;
        in->clear_since = -1;
        emit(rules, in, GW_TRANSITION_CLEAR, now_ms, out, max, n);
    }
}

static bool hysteresis(bool prev, double v, bool raise_above, double threshold, double deadband)
{
    if (raise_above) {
        if (v > threshold) {
            return true;
        }
        if (v <= threshold - deadband) {
            return false;
        }
        return prev;
    }
    if (v < threshold) {
        return true;
    }
    if (v >= threshold + deadband) {
        return false;
    }
    return prev;
}

static bool values_equal(const struct gw_value *want, const struct gw_value *got)
{
    switch (want->type) {
    case GW_VALUE_NUMBER:
        return got->type == GW_VALUE_NUMBER && got->num == want->num;
    case GW_VALUE_BOOL:
        if (got->type == GW_VALUE_BOOL) {
            return got->b == want->b;
        }
        return got->type == GW_VALUE_NUMBER && got->num == (want->b ? 1.0 : 0.0);
    case GW_VALUE_STRING:
        return got->type == GW_VALUE_STRING && strncmp(got->str, want->str, sizeof(got->str)) == 0;
    case GW_VALUE_NONE:
        break;
    }
    return false;
}

static bool as_number(const struct gw_value *v, double *num)
{
    if (v->type == GW_VALUE_NUMBER) {
        *num = v->num;
        return true;
    }
    if (v->type == GW_VALUE_BOOL) {
        *num = v->b ? 1.0 : 0.0;
        return true;
    }
    return false;
}

static const struct gw_value *find_point(const struct gw_reading *reading, const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    int np = reading->npoints < GW_MAX_POINTS ? reading->npoints : GW_MAX_POINTS;
    for (int i = 0; i < np; i++) {
        const struct gw_point_value *p = &reading->points[i];
        if (strncmp(p->name, name, sizeof(p->name)) == 0) {
            return p->fault == GW_FAULT_NONE ? &p->value : NULL;
        }
    }
    return NULL;
}

/* Update the instance's condition from a reading; leaves it untouched when there is no value. */
static void observe(const struct gw_rule_cfg *r, struct inst *in, const struct gw_reading *reading)
{
    if (r->cond == GW_COND_OFFLINE) {
        return;
    }
    const struct gw_value *v = find_point(reading, r->point);
    if (v == NULL) {
        return;
    }
    double num;
    switch (r->cond) {
    case GW_COND_ABOVE:
    case GW_COND_BELOW:
        if (!as_number(v, &num)) {
            return;
        }
        in->cond = hysteresis(in->cond, num, r->cond == GW_COND_ABOVE, r->threshold, r->deadband);
        in->last = *v;
        return;
    case GW_COND_EQUALS:
        in->cond = values_equal(&r->equals, v);
        in->last = *v;
        return;
    case GW_COND_RATE_ABOVE:
    case GW_COND_RATE_BELOW:
        if (!as_number(v, &num)) {
            return;
        }
        if (in->has_prev) {
            int64_t dt = reading->ts_ms - in->prev_ts;
            if (dt <= 0) {
                return; /* duplicate or out of order: no rate to compute */
            }
            double rate = (num - in->prev_num) / ((double)dt / 60000.0);
            in->cond = hysteresis(in->cond, rate, r->cond == GW_COND_RATE_ABOVE, r->threshold,
                                  r->deadband);
            in->last = (struct gw_value){.type = GW_VALUE_NUMBER, .num = rate};
        }
        in->has_prev = true;
        in->prev_num = num;
        in->prev_ts = reading->ts_ms;
        return;
    case GW_COND_OFFLINE:
        return;
    }
}

int gw_rules_on_reading(struct gw_rules *rules, const struct gw_reading *reading, int64_t now_ms,
                        struct gw_alarm_transition *out, int max)
{
    if (rules == NULL || reading == NULL) {
        return 0;
    }
    if (out == NULL || max < 0) {
        max = 0;
    }
    begin_call(rules);
    int n = flush_owed(rules, out, max);
    int s = reading->sensor_index;
    if (s < 0 || s >= rules->cfg->nsensors || reading->status != GW_READING_OK) {
        return n;
    }
    rules->last_seen[s] = now_ms;
    for (int i = rules->first[s]; i < rules->first[s + 1]; i++) {
        struct inst *in = &rules->inst[i];
        const struct gw_rule_cfg *r = &rules->cfg->rules[in->rule_index];
        observe(r, in, reading);
        step(rules, in, effective(rules, in, now_ms), now_ms, out, max, &n);
    }
    return n;
}

int gw_rules_tick(struct gw_rules *rules, int64_t now_ms, struct gw_alarm_transition *out, int max)
{
    if (rules == NULL) {
        return 0;
    }
    if (out == NULL || max < 0) {
        max = 0;
    }
    begin_call(rules);
    int n = flush_owed(rules, out, max);
    for (int i = 0; i < rules->ninst; i++) {
        struct inst *in = &rules->inst[i];
        step(rules, in, effective(rules, in, now_ms), now_ms, out, max, &n);
    }
    return n;
}

static struct inst *find_inst(const struct gw_rules *rules, int rule_index, int sensor_index)
{
    if (rules == NULL || sensor_index < 0 || sensor_index >= rules->cfg->nsensors) {
        return NULL;
    }
    for (int i = rules->first[sensor_index]; i < rules->first[sensor_index + 1]; i++) {
        if (rules->inst[i].rule_index == rule_index) {
            return &rules->inst[i];
        }
    }
    return NULL;
}

bool gw_rules_restore_active(struct gw_rules *rules, int rule_index, int sensor_index)
{
    struct inst *in = find_inst(rules, rule_index, sensor_index);
    if (in == NULL) {
        return false;
    }
    in->active = true;
    in->cond = true;
    in->raise_since = -1;
    in->clear_since = -1;
    return true;
}

bool gw_rules_is_active(const struct gw_rules *rules, int rule_index, int sensor_index)
{
    const struct inst *in = find_inst(rules, rule_index, sensor_index);
    return in != NULL && in->active;
}

/* Carried transitions keep their order: oldest first, as the old queue had them. */
static void enqueue_owed_sorted(struct gw_rules *rules, int idx)
{
    int cap = rules->ninst + 1;
    int pos = rules->owed_len++;
    while (pos > 0) {
        int prev = rules->owed_q[(rules->owed_head + pos - 1) % cap];
        if (rules->inst[prev].owed_tr.ts_ms <= rules->inst[idx].owed_tr.ts_ms) {
            break;
        }
        rules->owed_q[(rules->owed_head + pos) % cap] = prev;
        pos--;
    }
    rules->owed_q[(rules->owed_head + pos) % cap] = idx;
}

static int find_sensor(const struct gw_config *cfg, int hint, const char *id)
{
    if (hint < cfg->nsensors && str_eq(cfg->sensors[hint].id, id)) {
        return hint;
    }
    for (int i = 0; i < cfg->nsensors; i++) {
        if (str_eq(cfg->sensors[i].id, id)) {
            return i;
        }
    }
    return -1;
}

static int find_rule(const struct gw_config *cfg, int hint, const char *slug)
{
    if (hint < cfg->nrules && str_eq(cfg->rules[hint].slug, slug)) {
        return hint;
    }
    for (int i = 0; i < cfg->nrules; i++) {
        if (str_eq(cfg->rules[i].slug, slug)) {
            return i;
        }
    }
    return -1;
}

void gw_rules_carry_over(struct gw_rules *rules, const struct gw_rules *old)
{
    if (rules == NULL || old == NULL || rules == old) {
        return;
    }
    const struct gw_config *cfg = rules->cfg;
    for (int s = 0; s < cfg->nsensors; s++) {
        /* Same index first: a reload usually keeps the order, so this stays O(n). */
        int os = find_sensor(old->cfg, s, cfg->sensors[s].id);
        if (os < 0) {
            continue;
        }
        rules->last_seen[s] = old->last_seen[os];
        for (int i = rules->first[s]; i < rules->first[s + 1]; i++) {
            struct inst *in = &rules->inst[i];
            const struct gw_rule_cfg *r = &cfg->rules[in->rule_index];
            int orule = find_rule(old->cfg, in->rule_index, r->slug);
            const struct inst *o = orule < 0 ? NULL : find_inst(old, orule, os);
            if (o == NULL || in->owed) {
                continue; /* in->owed: already queued here; copying would queue it twice */
            }
            int64_t offline_ms = in->offline_ms;
            *in = *o;
            in->rule_index = (int)(r - cfg->rules);
            in->sensor_index = s;
            in->offline_ms = offline_ms;
            if (old->cfg->rules[orule].cond != r->cond) {
                /* The old truth and value mean nothing for another condition. */
                in->cond = false;
                in->last = (struct gw_value){.type = GW_VALUE_NONE};
                in->has_prev = false;
            }
            if (in->owed) {
                in->owed_tr.rule_index = in->rule_index;
                in->owed_tr.sensor_index = s;
                enqueue_owed_sorted(rules, i);
            }
        }
    }
}
