/*
 * Rule engine tests. Configs are built by hand (no config.c); time is
 * passed in, schedules use the process TZ (UTC unless a test sets another).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "rules.h"

#define MAX_S 8
#define MAX_R 8
#define MAX_SCHED 4
#define OUT_MAX 32

#define SUN (1u << 0)
#define MON (1u << 1)
#define TUE (1u << 2)
#define WED (1u << 3)
#define THU (1u << 4)
#define FRI (1u << 5)
#define SAT (1u << 6)
#define MON_FRI (MON | TUE | WED | THU | FRI)
#define EVERY_DAY 0x7f

struct fx {
    struct gw_config cfg;
    struct gw_sensor_cfg sensors[MAX_S];
    struct gw_rule_cfg rules[MAX_R];
    struct gw_schedule_cfg sched[MAX_SCHED];
    struct gw_rules *eng;
    struct gw_alarm_transition out[OUT_MAX];
};

/* Unix ms of a UTC wall-clock time. */
static int64_t utc_ms(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000;
}

/* 2026-11-30 is a Monday. */
#define MON0 utc_ms(2026, 11, 30, 0, 0, 0)
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static int add_sensor(struct fx *f, const char *id, const char *kind, int bus_index, int interval_s,
                      int expect_every_s)
{
    int i = f->cfg.nsensors++;
    assert_true(i < MAX_S);
    f->sensors[i] = (struct gw_sensor_cfg){.id = (char *)id,
                                           .kind = (char *)kind,
                                           .bus_index = bus_index,
                                           .interval_s = interval_s,
                                           .expect_every_s = expect_every_s};
    return i;
}

static int add_rule(struct fx *f, const char *slug, const char *kind, const char *point,
                    enum gw_rule_cond cond, double threshold)
{
    int i = f->cfg.nrules++;
    assert_true(i < MAX_R);
    f->rules[i] = (struct gw_rule_cfg){.name = (char *)slug,
                                       .slug = (char *)slug,
                                       .kind = (char *)kind,
                                       .point = (char *)point,
                                       .cond = cond,
                                       .threshold = threshold,
                                       .schedule_index = -1};
    return i;
}

static int add_schedule(struct fx *f, uint8_t days, int from_min, int to_min)
{
    int i = f->cfg.nschedules++;
    assert_true(i < MAX_SCHED);
    f->sched[i] =
        (struct gw_schedule_cfg){.name = "s", .days = days, .from_min = from_min, .to_min = to_min};
    return i;
}

static void start(struct fx *f, int64_t now_ms)
{
    f->cfg.sensors = f->sensors;
    f->cfg.rules = f->rules;
    f->cfg.schedules = f->sched;
    f->eng = gw_rules_new(&f->cfg, now_ms);
    assert_non_null(f->eng);
}

static int setup(void **state)
{
    set_tz("UTC");
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_rules_free(f->eng);
    free(f);
    set_tz("UTC");
    return 0;
}

static struct gw_reading reading(int sensor, int64_t ts_ms)
{
    struct gw_reading r;
    memset(&r, 0, sizeof(r));
    r.sensor_index = sensor;
    r.ts_ms = ts_ms;
    r.status = GW_READING_OK;
    return r;
}

static struct gw_point_value *add_point(struct gw_reading *r, const char *name)
{
    struct gw_point_value *p = &r->points[r->npoints++];
    snprintf(p->name, sizeof(p->name), "%s", name);
    return p;
}

static void point_num(struct gw_reading *r, const char *name, double v)
{
    add_point(r, name)->value = (struct gw_value){.type = GW_VALUE_NUMBER, .num = v};
}

static void point_bool(struct gw_reading *r, const char *name, bool b)
{
    add_point(r, name)->value = (struct gw_value){.type = GW_VALUE_BOOL, .num = b, .b = b};
}

static void point_str(struct gw_reading *r, const char *name, const char *s)
{
    struct gw_point_value *p = add_point(r, name);
    p->value.type = GW_VALUE_STRING;
    snprintf(p->value.str, sizeof(p->value.str), "%s", s);
}

static void point_fault(struct gw_reading *r, const char *name, enum gw_point_fault fault)
{
    add_point(r, name)->fault = fault;
}

/* Feed a single numeric point at now_ms (reading ts = now). */
static int feed_num(struct fx *f, int sensor, const char *point, double v, int64_t now_ms)
{
    struct gw_reading r = reading(sensor, now_ms);
    point_num(&r, point, v);
    return gw_rules_on_reading(f->eng, &r, now_ms, f->out, OUT_MAX);
}

static int feed_str(struct fx *f, int sensor, const char *point, const char *v, int64_t now_ms)
{
    struct gw_reading r = reading(sensor, now_ms);
    point_str(&r, point, v);
    return gw_rules_on_reading(f->eng, &r, now_ms, f->out, OUT_MAX);
}

static int tick(struct fx *f, int64_t now_ms)
{
    return gw_rules_tick(f->eng, now_ms, f->out, OUT_MAX);
}

static void check_tr(const struct gw_alarm_transition *t, enum gw_transition_type type, int rule,
                     int sensor, int64_t ts_ms)
{
    assert_int_equal(t->type, type);
    assert_int_equal(t->rule_index, rule);
    assert_int_equal(t->sensor_index, sensor);
    assert_int_equal(t->ts_ms, ts_ms);
}

/* ---- condition tables: one sensor, one rule, readings in sequence ---- */

enum step_kind { STEP_END, STEP_NUM, STEP_BOOL, STEP_STR };

struct seq_step {
    enum step_kind kind;
    int t_s; /* seconds after MON0 */
    double num;
    const char *str;
    char expect; /* 'R' raise, 'C' clear, '.' nothing */
};

#define N(t, v, e)                                                                                 \
    {                                                                                              \
        STEP_NUM, t, v, NULL, e                                                                    \
    }
#define B(t, v, e)                                                                                 \
    {                                                                                              \
        STEP_BOOL, t, v, NULL, e                                                                   \
    }
#define S(t, v, e)                                                                                 \
    {                                                                                              \
        STEP_STR, t, 0, v, e                                                                       \
    }

struct seq_case {
    const char *name;
    enum gw_rule_cond cond;
    double threshold, deadband;
    struct gw_value equals;
    struct seq_step steps[12];
};

static const struct seq_case seq_cases[] = {
    {"above at threshold is not above",
     GW_COND_ABOVE,
     10,
     0,
     {0},
     {N(0, 10, '.'), N(1, 9.999, '.'), N(2, 10.0001, 'R'), N(3, 10, 'C'), N(4, 11, 'R')}},
    {"above deadband holds inside the band",
     GW_COND_ABOVE,
     10,
     2,
     {0},
     {N(0, 11, 'R'), N(1, 9, '.'), N(2, 8.5, '.'), N(3, 10.5, '.'), N(4, 8, 'C'), N(5, 9, '.'),
      N(6, 10, '.'), N(7, 9.5, '.'), N(8, 10.01, 'R')}},
    {"below at threshold is not below",
     GW_COND_BELOW,
     10,
     0,
     {0},
     {N(0, 10, '.'), N(1, 10.001, '.'), N(2, 9.999, 'R'), N(3, 10, 'C')}},
    {"below deadband holds inside the band",
     GW_COND_BELOW,
     10,
     2,
     {0},
     {N(0, 9.9, 'R'), N(1, 11, '.'), N(2, 11.99, '.'), N(3, 9, '.'), N(4, 12, 'C'), N(5, 11, '.'),
      N(6, 10, '.'), N(7, 9.99, 'R')}},
    {"below with negative values",
     GW_COND_BELOW,
     -5,
     1,
     {0},
     {N(0, -4, '.'), N(1, -5.5, 'R'), N(2, -4.5, '.'), N(3, -4, 'C')}},
    {"above on a bool point uses 0/1",
     GW_COND_ABOVE,
     0.5,
     0,
     {0},
     {B(0, false, '.'), B(1, true, 'R'), B(2, false, 'C')}},
    {"above ignores a string point",
     GW_COND_ABOVE,
     0.5,
     0,
     {0},
     {N(0, 1, 'R'), S(1, "0", '.'), N(2, 0, 'C')}},
    {"equals number is exact",
     GW_COND_EQUALS,
     0,
     0,
     {.type = GW_VALUE_NUMBER, .num = 3},
     {N(0, 2, '.'), N(1, 3, 'R'), N(2, 3, '.'), N(3, 3.0001, 'C'), N(4, 3, 'R'),
      N(5, 2.9999, 'C')}},
    {"equals number vs bool is a mismatch",
     GW_COND_EQUALS,
     0,
     0,
     {.type = GW_VALUE_NUMBER, .num = 1},
     {B(0, true, '.'), N(1, 1, 'R'), B(2, true, 'C')}},
    {"equals bool: bool and numeric 0/1",
     GW_COND_EQUALS,
     0,
     0,
     {.type = GW_VALUE_BOOL, .num = 1, .b = true},
     {B(0, false, '.'), B(1, true, 'R'), B(2, false, 'C'), N(3, 1, 'R'), N(4, 0, 'C'), N(5, 2, '.'),
      S(6, "true", '.'), N(7, 1, 'R')}},
    {"equals bool false",
     GW_COND_EQUALS,
     0,
     0,
     {.type = GW_VALUE_BOOL, .b = false},
     {B(0, true, '.'), B(1, false, 'R'), N(2, 1, 'C'), N(3, 0, 'R')}},
    {"equals string (enum label)",
     GW_COND_EQUALS,
     0,
     0,
     {.type = GW_VALUE_STRING, .str = "locked"},
     {S(0, "open", '.'), S(1, "locked", 'R'), S(2, "closed", 'C'), S(3, "locked", 'R'),
      N(4, 2, 'C'), S(5, "locke", '.'), S(6, "lockedx", '.'), S(7, "Locked", '.')}},
    /* per minute: 60 s apart the rate is the difference itself */
    {"rate_above with deadband",
     GW_COND_RATE_ABOVE,
     1,
     0.5,
     {0},
     {N(0, 0, '.'), N(60, 1, '.'), N(120, 2.5, 'R'), N(180, 3.2, '.'), N(240, 3.6, 'C'),
      N(300, 4.2, '.'), N(330, 5, 'R')}},
    {"rate_below converts to per minute",
     GW_COND_RATE_BELOW,
     -1,
     0.5,
     {0},
     {N(0, 10, '.'), N(60, 9, '.'), N(90, 8.4, 'R'), N(150, 7.6, '.'), N(210, 7.1, 'C'),
      N(270, 5.9, 'R')}},
    {"rate ignores a reading not newer than the previous",
     GW_COND_RATE_ABOVE,
     1,
     0,
     {0},
     {N(60, 0, '.'), N(60, 100, '.'), N(30, 100, '.'), N(120, 0.5, '.'), N(180, 2, 'R')}},
};

static void run_seq_case(const struct seq_case *c)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    int s = add_sensor(f, "A-1F-hydrant-01", "hydrant_pressure", 0, 10, 0);
    int r = add_rule(f, "r", "hydrant_pressure", "p", c->cond, c->threshold);
    f->rules[r].deadband = c->deadband;
    f->rules[r].equals = c->equals;
    start(f, MON0);
    bool active = false;
    for (const struct seq_step *st = c->steps; st->kind != STEP_END; st++) {
        int64_t t = MON0 + st->t_s * SEC;
        struct gw_reading rd = reading(s, t);
        if (st->kind == STEP_NUM) {
            point_num(&rd, "p", st->num);
        } else if (st->kind == STEP_BOOL) {
            point_bool(&rd, "p", st->num != 0);
        } else {
            point_str(&rd, "p", st->str);
        }
        int n = gw_rules_on_reading(f->eng, &rd, t, f->out, OUT_MAX);
        int want = st->expect == '.' ? 0 : 1;
        if (n != want) {
            fail_msg("%s: step %d expected '%c', got %d transitions", c->name, (int)(st - c->steps),
                     st->expect, n);
        }
        if (n == 1) {
            check_tr(&f->out[0], st->expect == 'R' ? GW_TRANSITION_RAISE : GW_TRANSITION_CLEAR, r,
                     s, t);
            active = st->expect == 'R';
        }
        assert_int_equal(gw_rules_is_active(f->eng, r, s), active);
        /* Time alone changes nothing for a value rule without delays. */
        assert_int_equal(tick(f, t + 500), 0);
    }
    gw_rules_free(f->eng);
    free(f);
}

static void test_condition_tables(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(seq_cases) / sizeof(seq_cases[0]); i++) {
        run_seq_case(&seq_cases[i]);
    }
}

static void test_transition_values(void **state)
{
    struct fx *f = *state;
    int s = add_sensor(f, "d1", "exit_door", -1, 0, 0);
    int rs = add_rule(f, "locked", "exit_door", "state", GW_COND_EQUALS, 0);
    f->rules[rs].equals.type = GW_VALUE_STRING;
    snprintf(f->rules[rs].equals.str, sizeof(f->rules[rs].equals.str), "locked");
    int rr = add_rule(f, "drop", "exit_door", "battery", GW_COND_RATE_BELOW, -1);
    start(f, MON0);

    struct gw_reading rd = reading(s, MON0);
    point_str(&rd, "state", "locked");
    point_num(&rd, "battery", 90);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0, f->out, OUT_MAX), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, rs, s, MON0);
    assert_int_equal(f->out[0].value.type, GW_VALUE_STRING);
    assert_string_equal(f->out[0].value.str, "locked");

    rd = reading(s, MON0 + 30 * SEC);
    point_num(&rd, "battery", 88); /* -4 per minute */
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0 + 30 * SEC, f->out, OUT_MAX), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, rr, s, MON0 + 30 * SEC);
    assert_int_equal(f->out[0].value.type, GW_VALUE_NUMBER);
    assert_true(f->out[0].value.num > -4.0001 && f->out[0].value.num < -3.9999);
    /* The door rule kept its state: the reading had no "state" point. */
    assert_true(gw_rules_is_active(f->eng, rs, s));
}

/* The rate uses the readings' own timestamps, not the time of the call. */
static void test_rate_uses_reading_ts(void **state)
{
    struct fx *f = *state;
    int s = add_sensor(f, "h", "hydrant_pressure", 0, 10, 0);
    int r = add_rule(f, "r", "hydrant_pressure", "p", GW_COND_RATE_BELOW, -1);
    start(f, MON0);
    struct gw_reading rd = reading(s, MON0);
    point_num(&rd, "p", 10);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0 + 50 * SEC, f->out, OUT_MAX), 0);
    rd = reading(s, MON0 + 120 * SEC);
    point_num(&rd, "p", 8.5); /* -0.75/min by ts, -21/min by call time */
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0 + 54 * SEC, f->out, OUT_MAX), 0);
    assert_false(gw_rules_is_active(f->eng, r, s));
}

static void test_faulted_or_absent_point_ignored(void **state)
{
    struct fx *f = *state;
    int s = add_sensor(f, "h", "hydrant_pressure", 0, 10, 0);
    int r = add_rule(f, "low", "hydrant_pressure", "pressure", GW_COND_BELOW, 0.1);
    start(f, MON0);

    struct gw_reading rd = reading(s, MON0);
    point_fault(&rd, "pressure", GW_FAULT_WIRE_BREAK);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0, f->out, OUT_MAX), 0);
    assert_false(gw_rules_is_active(f->eng, r, s));

    assert_int_equal(feed_num(f, s, "pressure", 0.05, MON0 + SEC), 1);
    assert_int_equal(f->out[0].type, GW_TRANSITION_RAISE);

    /* Fault, absent point, other point: the alarm and the last value stay. */
    enum gw_point_fault faults[] = {GW_FAULT_WIRE_BREAK, GW_FAULT_OVER_RANGE, GW_FAULT_INVALID};
    for (size_t i = 0; i < 3; i++) {
        rd = reading(s, MON0 + 2 * SEC);
        point_num(&rd, "battery", 80);
        point_fault(&rd, "pressure", faults[i]);
        rd.points[1].value = (struct gw_value){.type = GW_VALUE_NUMBER, .num = 0.5};
        assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0 + 2 * SEC, f->out, OUT_MAX), 0);
        assert_true(gw_rules_is_active(f->eng, r, s));
    }
    rd = reading(s, MON0 + 3 * SEC);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0 + 3 * SEC, f->out, OUT_MAX), 0);
    assert_true(gw_rules_is_active(f->eng, r, s));

    /* An ERROR reading is ignored even if it carries points. */
    rd = reading(s, MON0 + 4 * SEC);
    rd.status = GW_READING_ERROR;
    point_num(&rd, "pressure", 0.5);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0 + 4 * SEC, f->out, OUT_MAX), 0);
    assert_true(gw_rules_is_active(f->eng, r, s));

    /* Tick carries the last good value (0.05) into a delayed clear... there is none: still active.
     */
    assert_int_equal(tick(f, MON0 + HOUR), 0);
    assert_int_equal(feed_num(f, s, "pressure", 0.5, MON0 + HOUR), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, r, s, MON0 + HOUR);
    assert_true(f->out[0].value.num == 0.5);
}

/* ---- delays ---- */

static int delay_fixture(struct fx *f, int on_delay_s, int off_delay_s, bool latch)
{
    add_sensor(f, "h", "hydrant_pressure", 0, 10, 0);
    int r = add_rule(f, "low", "hydrant_pressure", "p", GW_COND_BELOW, 10);
    f->rules[r].on_delay_s = on_delay_s;
    f->rules[r].off_delay_s = off_delay_s;
    f->rules[r].latch = latch;
    start(f, MON0);
    return r;
}

static void test_on_delay_cancelled(void **state)
{
    struct fx *f = *state;
    int r = delay_fixture(f, 30, 0, false);
    assert_int_equal(feed_num(f, 0, "p", 5, MON0), 0);
    assert_int_equal(tick(f, MON0 + 29 * SEC), 0);
    assert_int_equal(feed_num(f, 0, "p", 11, MON0 + 29500), 0);
    assert_int_equal(tick(f, MON0 + 31 * SEC), 0);
    assert_int_equal(tick(f, MON0 + HOUR), 0);
    assert_false(gw_rules_is_active(f->eng, r, 0));
    /* A new true period starts a fresh delay. */
    assert_int_equal(feed_num(f, 0, "p", 5, MON0 + HOUR), 0);
    assert_int_equal(tick(f, MON0 + HOUR + 29999), 0);
    assert_int_equal(tick(f, MON0 + HOUR + 30 * SEC), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, 0, MON0 + HOUR + 30 * SEC);
}

static void test_on_delay_fires_on_tick_exactly(void **state)
{
    struct fx *f = *state;
    int r = delay_fixture(f, 30, 0, false);
    assert_int_equal(feed_num(f, 0, "p", 5, MON0), 0);
    /* More true readings do not restart the delay. */
    assert_int_equal(feed_num(f, 0, "p", 4, MON0 + 20 * SEC), 0);
    assert_int_equal(tick(f, MON0 + 29999), 0);
    assert_false(gw_rules_is_active(f->eng, r, 0));
    assert_int_equal(tick(f, MON0 + 30 * SEC), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, 0, MON0 + 30 * SEC);
    assert_true(f->out[0].value.num == 4); /* tick carries the last value */
    assert_true(gw_rules_is_active(f->eng, r, 0));
    assert_int_equal(tick(f, MON0 + 31 * SEC), 0);
    assert_int_equal(feed_num(f, 0, "p", 3, MON0 + 32 * SEC), 0);
}

static void test_on_delay_fires_on_reading(void **state)
{
    struct fx *f = *state;
    int r = delay_fixture(f, 30, 0, false);
    assert_int_equal(feed_num(f, 0, "p", 5, MON0), 0);
    assert_int_equal(feed_num(f, 0, "p", 5, MON0 + 31 * SEC), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, 0, MON0 + 31 * SEC);
}

static void test_off_delay(void **state)
{
    struct fx *f = *state;
    int r = delay_fixture(f, 0, 10, false);
    assert_int_equal(feed_num(f, 0, "p", 5, MON0), 1);
    /* False briefly, true again: the clear is cancelled. */
    assert_int_equal(feed_num(f, 0, "p", 12, MON0 + SEC), 0);
    assert_int_equal(feed_num(f, 0, "p", 5, MON0 + 6 * SEC), 0);
    assert_int_equal(tick(f, MON0 + 20 * SEC), 0);
    assert_true(gw_rules_is_active(f->eng, r, 0));
    /* False for good: clears on tick exactly at the delay. */
    int64_t t1 = MON0 + MIN;
    assert_int_equal(feed_num(f, 0, "p", 12, t1), 0);
    assert_int_equal(tick(f, t1 + 9999), 0);
    assert_int_equal(tick(f, t1 + 10 * SEC), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, r, 0, t1 + 10 * SEC);
    assert_true(f->out[0].value.num == 12);
    assert_false(gw_rules_is_active(f->eng, r, 0));
    /* And on a reading after the delay. */
    assert_int_equal(feed_num(f, 0, "p", 5, t1 + MIN), 1);
    assert_int_equal(feed_num(f, 0, "p", 12, t1 + 2 * MIN), 0);
    assert_int_equal(feed_num(f, 0, "p", 13, t1 + 2 * MIN + 11 * SEC), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, r, 0, t1 + 2 * MIN + 11 * SEC);
}

/* ---- latch ---- */

/* The rules report a latched rule's edges like any other: the alarm lifecycle holds it. */
static void test_latch_is_reported_as_edges(void **state)
{
    struct fx *f = *state;
    int r = delay_fixture(f, 0, 0, true);
    assert_int_equal(feed_num(f, 0, "p", 5, MON0), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, 0, MON0);
    assert_int_equal(feed_num(f, 0, "p", 15, MON0 + 2 * SEC), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, r, 0, MON0 + 2 * SEC);
    assert_false(gw_rules_is_active(f->eng, r, 0));
    assert_int_equal(feed_num(f, 0, "p", 5, MON0 + 3 * SEC), 1);
    assert_int_equal(f->out[0].type, GW_TRANSITION_RAISE);
}

/* ---- offline ---- */

static void test_offline(void **state)
{
    struct fx *f = *state;
    int mb = add_sensor(f, "A-1F-hydrant-01", "hydrant_pressure", 0, 10, 0);
    int lora = add_sensor(f, "A-3F-smoke-301", "smoke", -1, 0, 3600);
    int none = add_sensor(f, "mqtt-1", "smoke", -1, 0, 0);
    /* Pushed, only the poll default in interval_s: no period either. */
    int none2 = add_sensor(f, "mqtt-2", "smoke", -1, 10, 0);
    /* A pushed sensor whose interval_s holds the poll default still uses expect_every_s. */
    int lora2 = add_sensor(f, "A-3F-smoke-302", "smoke", -1, 10, 3600);
    int r = add_rule(f, "sensor-offline", NULL, NULL, GW_COND_OFFLINE, 0);
    f->rules[r].offline_after = 3;
    start(f, MON0);

    /* Never seen: offline strictly after 3 * 10 s from start. */
    assert_int_equal(tick(f, MON0 + 30 * SEC), 0);
    assert_int_equal(tick(f, MON0 + 30 * SEC + 1), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, mb, MON0 + 30 * SEC + 1);
    assert_int_equal(f->out[0].value.type, GW_VALUE_NUMBER);
    assert_true(f->out[0].value.num == 30.001);
    assert_int_equal(tick(f, MON0 + 35 * SEC), 0);

    /* Comes back (any points, even none): CLEAR on that reading, age 0. */
    int64_t t1 = MON0 + 40 * SEC;
    struct gw_reading rd = reading(mb, t1);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, t1, f->out, OUT_MAX), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, r, mb, t1);
    assert_true(f->out[0].value.num == 0);

    /* ERROR readings do not count as seen; a faulted OK reading does. */
    rd = reading(mb, t1 + 20 * SEC);
    rd.status = GW_READING_ERROR;
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, t1 + 20 * SEC, f->out, OUT_MAX), 0);
    assert_int_equal(tick(f, t1 + 30 * SEC), 0);
    assert_int_equal(tick(f, t1 + 30 * SEC + 1), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, mb, t1 + 30 * SEC + 1);
    rd = reading(mb, t1 + 40 * SEC);
    point_fault(&rd, "pressure", GW_FAULT_WIRE_BREAK);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, t1 + 40 * SEC, f->out, OUT_MAX), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, r, mb, t1 + 40 * SEC);

    /* Keep the Modbus sensor alive; the LoRa sensors go offline after 3 h. */
    for (int64_t t = t1 + 50 * SEC; t <= MON0 + 3 * HOUR + SEC; t += 10 * SEC) {
        rd = reading(mb, t);
        assert_int_equal(gw_rules_on_reading(f->eng, &rd, t, f->out, OUT_MAX), 0);
    }
    assert_int_equal(tick(f, MON0 + 3 * HOUR), 0);
    assert_int_equal(tick(f, MON0 + 3 * HOUR + 1), 2);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, lora, MON0 + 3 * HOUR + 1);
    check_tr(&f->out[1], GW_TRANSITION_RAISE, r, lora2, MON0 + 3 * HOUR + 1);

    /* A sensor without a period has no instance: never offline. */
    assert_false(gw_rules_is_active(f->eng, r, none));
    assert_int_equal(tick(f, MON0 + 30 * DAY), 1); /* only the Modbus sensor again */
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, mb, MON0 + 30 * DAY);
    assert_false(gw_rules_is_active(f->eng, r, none));
    assert_false(gw_rules_is_active(f->eng, r, none2));
}

static void test_offline_with_on_delay(void **state)
{
    struct fx *f = *state;
    int s = add_sensor(f, "h", "hydrant_pressure", 0, 10, 0);
    int r = add_rule(f, "sensor-offline", "hydrant_pressure", NULL, GW_COND_OFFLINE, 0);
    f->rules[r].offline_after = 1;
    f->rules[r].on_delay_s = 5;
    start(f, MON0);
    assert_int_equal(tick(f, MON0 + 11 * SEC), 0); /* offline since now: delay starts */
    assert_int_equal(tick(f, MON0 + 15999), 0);
    assert_int_equal(tick(f, MON0 + 16 * SEC), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, s, MON0 + 16 * SEC);
    assert_true(f->out[0].value.num == 16);
}

/* ---- applicability ---- */

static void test_sensor_narrowing(void **state)
{
    struct fx *f = *state;
    int a = add_sensor(f, "A-1F-hydrant-01", "hydrant_pressure", 0, 10, 0);
    int b = add_sensor(f, "A-2F-hydrant-01", "hydrant_pressure", 0, 10, 0);
    int r = add_rule(f, "low", "hydrant_pressure", "p", GW_COND_BELOW, 0.1);
    f->rules[r].sensor = "A-2F-hydrant-01";
    start(f, MON0);
    assert_int_equal(feed_num(f, a, "p", 0, MON0), 0);
    assert_false(gw_rules_is_active(f->eng, r, a));
    assert_int_equal(feed_num(f, b, "p", 0, MON0), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, b, MON0);
    assert_true(gw_rules_is_active(f->eng, r, b));
    /* Out-of-range indices: no instance, no crash. */
    assert_false(gw_rules_is_active(f->eng, r, 2));
    assert_false(gw_rules_is_active(f->eng, r, -1));
    assert_false(gw_rules_is_active(f->eng, 5, b));
    struct gw_reading rd = reading(7, MON0);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0, f->out, OUT_MAX), 0);
    rd.sensor_index = -1;
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0, f->out, OUT_MAX), 0);
}

static void test_kind_matching(void **state)
{
    struct fx *f = *state;
    int h = add_sensor(f, "h", "hydrant_pressure", 0, 10, 0);
    int sm = add_sensor(f, "s", "smoke", -1, 0, 3600);
    int r = add_rule(f, "smoke", "smoke", "v", GW_COND_EQUALS, 0);
    f->rules[r].equals = (struct gw_value){.type = GW_VALUE_BOOL, .num = 1, .b = true};
    int any = add_rule(f, "any-high", NULL, "v", GW_COND_ABOVE, 0.5);
    /* Matches the sensor but not its kind: no instance. */
    int wrong = add_rule(f, "wrong", "smoke", "v", GW_COND_ABOVE, 0.5);
    f->rules[wrong].sensor = "h";
    start(f, MON0);

    struct gw_reading rd = reading(h, MON0);
    point_bool(&rd, "v", true);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0, f->out, OUT_MAX), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, any, h, MON0);
    assert_false(gw_rules_is_active(f->eng, r, h));
    assert_false(gw_rules_is_active(f->eng, wrong, h));

    rd = reading(sm, MON0);
    point_bool(&rd, "v", true);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0, f->out, OUT_MAX), 2);
    /* Instances of one sensor come in rule order. */
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, sm, MON0);
    check_tr(&f->out[1], GW_TRANSITION_RAISE, any, sm, MON0);
}

/* ---- schedules ---- */

struct sched_case {
    const char *what;
    uint8_t days;
    int from_min, to_min;
    int y, mo, d, h, mi, s; /* local (UTC here) */
    bool open;
};

static const struct sched_case sched_cases[] = {
    {"mon 06:59", MON_FRI, 420, 1080, 2026, 11, 30, 6, 59, 59, false},
    {"mon 07:00", MON_FRI, 420, 1080, 2026, 11, 30, 7, 0, 0, true},
    {"mon 17:59", MON_FRI, 420, 1080, 2026, 11, 30, 17, 59, 59, true},
    {"mon 18:00", MON_FRI, 420, 1080, 2026, 11, 30, 18, 0, 0, false},
    {"fri 12:00", MON_FRI, 420, 1080, 2026, 12, 4, 12, 0, 0, true},
    {"sat 12:00", MON_FRI, 420, 1080, 2026, 12, 5, 12, 0, 0, false},
    {"sun 12:00", MON_FRI, 420, 1080, 2026, 12, 6, 12, 0, 0, false},
    {"fri-night fri 21:59", FRI, 1320, 360, 2026, 12, 4, 21, 59, 0, false},
    {"fri-night fri 22:00", FRI, 1320, 360, 2026, 12, 4, 22, 0, 0, true},
    {"fri-night fri 23:59", FRI, 1320, 360, 2026, 12, 4, 23, 59, 59, true},
    {"fri-night sat 00:00", FRI, 1320, 360, 2026, 12, 5, 0, 0, 0, true},
    {"fri-night sat 05:59", FRI, 1320, 360, 2026, 12, 5, 5, 59, 59, true},
    {"fri-night sat 06:00", FRI, 1320, 360, 2026, 12, 5, 6, 0, 0, false},
    {"fri-night sat 22:00", FRI, 1320, 360, 2026, 12, 5, 22, 0, 0, false},
    {"fri-night thu 23:00", FRI, 1320, 360, 2026, 12, 3, 23, 0, 0, false},
    {"fri-night fri 05:00 (thu's part)", FRI, 1320, 360, 2026, 12, 4, 5, 0, 0, false},
    {"sat-night sun 05:00 wraps to sat", SAT, 1320, 360, 2026, 12, 6, 5, 0, 0, true},
    {"sun-night mon 05:00 (wday 0 -> 1)", SUN, 1320, 360, 2026, 11, 30, 5, 0, 0, true},
    {"all day (from == to) mon 00:00", MON_FRI, 0, 0, 2026, 11, 30, 0, 0, 0, true},
    {"all day (from == to) mon 23:59", MON_FRI, 600, 600, 2026, 11, 30, 23, 59, 59, true},
    {"all day (from == to) sat", MON_FRI, 600, 600, 2026, 12, 5, 12, 0, 0, false},
    {"all day (from == to) mon 05:00", MON_FRI, 600, 600, 2026, 11, 30, 5, 0, 0, true},
    {"all day (from == to) sat 05:00", MON_FRI, 600, 600, 2026, 12, 5, 5, 0, 0, false},
    {"0-1440 every day, sun 23:59", EVERY_DAY, 0, 1440, 2026, 12, 6, 23, 59, 59, true},
    {"no days", 0, 0, 1440, 2026, 12, 6, 12, 0, 0, false},
};

static void test_schedule_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sched_cases) / sizeof(sched_cases[0]); i++) {
        const struct sched_case *c = &sched_cases[i];
        struct gw_schedule_cfg s = {.days = c->days, .from_min = c->from_min, .to_min = c->to_min};
        int64_t t = utc_ms(c->y, c->mo, c->d, c->h, c->mi, c->s);
        if (gw_schedule_is_open(&s, t) != c->open) {
            fail_msg("%s: expected %s", c->what, c->open ? "open" : "closed");
        }
        /* The millisecond before/after stays in the same minute except at the edges checked. */
        if (c->s == 0 && gw_schedule_is_open(&s, t + 999) != c->open) {
            fail_msg("%s +999 ms", c->what);
        }
    }
}

static void test_schedule_timezone_shanghai(void **state)
{
    (void)state;
    set_tz("Asia/Shanghai");
    struct gw_schedule_cfg s = {.days = MON_FRI, .from_min = 7 * 60, .to_min = 18 * 60};
    /* Mon 2026-11-30 23:00 UTC = Tue 07:00 CST (UTC+8). */
    assert_true(gw_schedule_is_open(&s, utc_ms(2026, 11, 30, 23, 0, 0)));
    assert_false(gw_schedule_is_open(&s, utc_ms(2026, 11, 30, 22, 59, 59)));
    /* Mon 10:00 UTC = Mon 18:00 CST: closed, although 10:00 is inside 07-18 in UTC. */
    assert_false(gw_schedule_is_open(&s, utc_ms(2026, 11, 30, 10, 0, 0)));
    assert_true(gw_schedule_is_open(&s, utc_ms(2026, 11, 30, 9, 59, 59)));
    /* Fri 2026-12-04 23:30 UTC = Sat 07:30 CST: weekend, closed. */
    assert_false(gw_schedule_is_open(&s, utc_ms(2026, 12, 4, 23, 30, 0)));
    /* Sun 2026-11-29 23:30 UTC = Mon 07:30 CST: open. */
    assert_true(gw_schedule_is_open(&s, utc_ms(2026, 11, 29, 23, 30, 0)));
}

static void test_schedule_dst(void **state)
{
    (void)state;
    /* New York springs forward on Sun 2026-03-08 02:00 EST -> 03:00 EDT. */
    set_tz("America/New_York");
    struct gw_schedule_cfg day = {.days = EVERY_DAY, .from_min = 7 * 60, .to_min = 18 * 60};
    assert_false(gw_schedule_is_open(&day, utc_ms(2026, 3, 7, 11, 0, 0))); /* 06:00 EST */
    assert_true(gw_schedule_is_open(&day, utc_ms(2026, 3, 7, 12, 0, 0)));  /* 07:00 EST */
    assert_true(gw_schedule_is_open(&day, utc_ms(2026, 3, 8, 11, 0, 0)));  /* 07:00 EDT */
    assert_false(gw_schedule_is_open(&day, utc_ms(2026, 3, 8, 10, 59, 59)));
    assert_false(gw_schedule_is_open(&day, utc_ms(2026, 3, 8, 22, 0, 0))); /* 18:00 EDT */
    /* The skipped hour never opens: 01:59:59 EST is followed by 03:00 EDT. */
    struct gw_schedule_cfg skipped = {.days = EVERY_DAY, .from_min = 120, .to_min = 180};
    assert_false(gw_schedule_is_open(&skipped, utc_ms(2026, 3, 8, 6, 59, 59)));
    assert_false(gw_schedule_is_open(&skipped, utc_ms(2026, 3, 8, 7, 0, 0)));
    assert_true(gw_schedule_is_open(&skipped, utc_ms(2026, 3, 7, 7, 30, 0))); /* day before */

    /* Berlin falls back on Sun 2026-10-25 03:00 CEST -> 02:00 CET: 02:xx happens twice. */
    set_tz("Europe/Berlin");
    struct gw_schedule_cfg twice = {.days = SUN, .from_min = 120, .to_min = 180};
    assert_false(gw_schedule_is_open(&twice, utc_ms(2026, 10, 24, 23, 59, 59))); /* 01:59 CEST */
    assert_true(gw_schedule_is_open(&twice, utc_ms(2026, 10, 25, 0, 30, 0)));    /* 02:30 CEST */
    assert_true(gw_schedule_is_open(&twice, utc_ms(2026, 10, 25, 1, 30, 0)));    /* 02:30 CET */
    assert_false(gw_schedule_is_open(&twice, utc_ms(2026, 10, 25, 2, 0, 0)));    /* 03:00 CET */
}

/* ---- during ---- */

static int during_fixture(struct fx *f, int on_delay_s, int off_delay_s, bool latch)
{
    add_sensor(f, "A-1F-door-01", "exit_door", -1, 0, 3600);
    int sc = add_schedule(f, MON_FRI, 7 * 60, 18 * 60);
    int r = add_rule(f, "exit-locked-during-school-hours", "exit_door", "state", GW_COND_EQUALS, 0);
    f->rules[r].equals.type = GW_VALUE_STRING;
    snprintf(f->rules[r].equals.str, sizeof(f->rules[r].equals.str), "locked");
    f->rules[r].schedule_index = sc;
    f->rules[r].on_delay_s = on_delay_s;
    f->rules[r].off_delay_s = off_delay_s;
    f->rules[r].latch = latch;
    start(f, MON0);
    return r;
}

static void test_during_opens_and_closes(void **state)
{
    struct fx *f = *state;
    int r = during_fixture(f, 0, 0, false);
    int64_t mon = MON0;
    assert_int_equal(feed_str(f, 0, "state", "locked", mon + 6 * HOUR), 0);
    assert_int_equal(tick(f, mon + 7 * HOUR - 1), 0);
    assert_int_equal(tick(f, mon + 7 * HOUR), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, 0, mon + 7 * HOUR);
    assert_string_equal(f->out[0].value.str, "locked");
    assert_int_equal(tick(f, mon + 18 * HOUR - 1), 0);
    assert_int_equal(tick(f, mon + 18 * HOUR), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, r, 0, mon + 18 * HOUR);
    assert_string_equal(f->out[0].value.str, "locked");
    /* Still locked Saturday: window closed all day. */
    int64_t sat = MON0 + 5 * DAY;
    assert_int_equal(feed_str(f, 0, "state", "locked", sat + 8 * HOUR), 0);
    assert_int_equal(tick(f, sat + 12 * HOUR), 0);
    /* Tuesday: reopens with the carried value; unlocking clears. */
    assert_int_equal(tick(f, MON0 + DAY + 7 * HOUR), 1);
    assert_int_equal(f->out[0].type, GW_TRANSITION_RAISE);
    assert_int_equal(feed_str(f, 0, "state", "open", MON0 + DAY + 8 * HOUR), 1);
    assert_int_equal(f->out[0].type, GW_TRANSITION_CLEAR);
}

static void test_during_off_delay_on_close(void **state)
{
    struct fx *f = *state;
    int r = during_fixture(f, 0, 60, false);
    assert_int_equal(feed_str(f, 0, "state", "locked", MON0 + 17 * HOUR), 1);
    assert_int_equal(tick(f, MON0 + 18 * HOUR), 0);
    assert_int_equal(tick(f, MON0 + 18 * HOUR + 59999), 0);
    assert_int_equal(tick(f, MON0 + 18 * HOUR + MIN), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, r, 0, MON0 + 18 * HOUR + MIN);
}

static void test_during_on_delay(void **state)
{
    struct fx *f = *state;
    int r = during_fixture(f, 60, 0, false);
    assert_int_equal(feed_str(f, 0, "state", "locked", MON0 + 6 * HOUR + 30 * MIN), 0);
    /* The delay starts when the window opens, not at the reading. */
    assert_int_equal(tick(f, MON0 + 7 * HOUR), 0);
    assert_int_equal(tick(f, MON0 + 7 * HOUR + 59999), 0);
    assert_int_equal(tick(f, MON0 + 7 * HOUR + MIN), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, r, 0, MON0 + 7 * HOUR + MIN);
    assert_int_equal(tick(f, MON0 + 18 * HOUR), 1);
    /* Locked 30 s before closing: the window closes before the delay ends. */
    assert_int_equal(feed_str(f, 0, "state", "open", MON0 + DAY + 12 * HOUR), 0);
    assert_int_equal(feed_str(f, 0, "state", "locked", MON0 + DAY + 18 * HOUR - 30 * SEC), 0);
    assert_int_equal(tick(f, MON0 + DAY + 18 * HOUR), 0);
    assert_int_equal(tick(f, MON0 + DAY + 18 * HOUR + 30 * SEC), 0);
    assert_int_equal(tick(f, MON0 + DAY + 23 * HOUR), 0);
    assert_false(gw_rules_is_active(f->eng, r, 0));
}

static void test_during_latch_clears_at_close(void **state)
{
    struct fx *f = *state;
    int r = during_fixture(f, 0, 0, true);
    assert_int_equal(feed_str(f, 0, "state", "locked", MON0 + 8 * HOUR), 1);
    /* Still locked, but outside the window the condition is false: a clear edge (the
     * lifecycle keeps the latched alarm until someone resets it). */
    assert_int_equal(tick(f, MON0 + 18 * HOUR), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, r, 0, MON0 + 18 * HOUR);
    assert_false(gw_rules_is_active(f->eng, r, 0));
}

/* ---- reload ---- */

static void test_carry_over(void **state)
{
    struct fx *f = *state; /* old config */
    int o_h1 = add_sensor(f, "h1", "hydrant_pressure", 0, 10, 0);
    add_sensor(f, "h2", "hydrant_pressure", 0, 10, 0);
    int o_low = add_rule(f, "low", "hydrant_pressure", "p", GW_COND_BELOW, 10);
    int o_gone = add_rule(f, "gone", "hydrant_pressure", "p", GW_COND_ABOVE, 100);
    int o_slow = add_rule(f, "slow", "hydrant_pressure", "p", GW_COND_ABOVE, 5000);
    f->rules[o_slow].on_delay_s = 60;
    int o_lat = add_rule(f, "latched", "hydrant_pressure", "p", GW_COND_BELOW, 1);
    f->rules[o_lat].latch = true;
    int o_off = add_rule(f, "sensor-offline", NULL, NULL, GW_COND_OFFLINE, 0);
    f->rules[o_off].offline_after = 3;
    start(f, MON0);

    assert_int_equal(feed_num(f, o_h1, "p", 0.5, MON0), 2); /* low + latched */
    assert_true(gw_rules_is_active(f->eng, o_low, o_h1));
    assert_int_equal(feed_num(f, 1, "p", 6000, MON0 + 10 * SEC), 1); /* gone; slow pending */
    assert_int_equal(feed_num(f, 1, "p", 6000, MON0 + 20 * SEC), 0);
    assert_true(gw_rules_is_active(f->eng, o_gone, 1));
    assert_false(gw_rules_is_active(f->eng, o_slow, 1));

    /* New config: different pointers and order, "gone" removed, one rule and sensor added. */
    struct fx *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    int n_h2 = add_sensor(g, "h2", "hydrant_pressure", 0, 10, 0);
    int n_h1 = add_sensor(g, "h1", "hydrant_pressure", 0, 10, 0);
    int n_h3 = add_sensor(g, "h3", "hydrant_pressure", 0, 10, 0);
    int n_new = add_rule(g, "new", "hydrant_pressure", "p", GW_COND_BELOW, 1000);
    int n_off = add_rule(g, "sensor-offline", NULL, NULL, GW_COND_OFFLINE, 0);
    g->rules[n_off].offline_after = 3;
    int n_lat = add_rule(g, "latched", "hydrant_pressure", "p", GW_COND_BELOW, 1);
    g->rules[n_lat].latch = true;
    int n_slow = add_rule(g, "slow", "hydrant_pressure", "p", GW_COND_ABOVE, 5000);
    g->rules[n_slow].on_delay_s = 60;
    int n_low = add_rule(g, "low", "hydrant_pressure", "p", GW_COND_BELOW, 10);
    start(g, MON0 + 25 * SEC);
    gw_rules_carry_over(g->eng, f->eng);
    gw_rules_free(f->eng);
    f->eng = NULL;

    assert_true(gw_rules_is_active(g->eng, n_low, n_h1));
    assert_true(gw_rules_is_active(g->eng, n_lat, n_h1));
    assert_false(gw_rules_is_active(g->eng, n_low, n_h2));
    assert_false(gw_rules_is_active(g->eng, n_new, n_h1));

    /* Still-true readings do not re-raise; the new rule raises on its own. */
    assert_int_equal(feed_num(g, n_h1, "p", 0.5, MON0 + 26 * SEC), 1);
    check_tr(&g->out[0], GW_TRANSITION_RAISE, n_new, n_h1, MON0 + 26 * SEC);
    /* h1 clears "low" and "latched" under their new indices (edges; the lifecycle latches). */
    assert_int_equal(feed_num(g, n_h1, "p", 2000, MON0 + 27 * SEC), 3);
    check_tr(&g->out[0], GW_TRANSITION_CLEAR, n_new, n_h1, MON0 + 27 * SEC);
    check_tr(&g->out[1], GW_TRANSITION_CLEAR, n_lat, n_h1, MON0 + 27 * SEC);
    check_tr(&g->out[2], GW_TRANSITION_CLEAR, n_low, n_h1, MON0 + 27 * SEC);
    assert_false(gw_rules_is_active(g->eng, n_lat, n_h1));

    /* last_seen carried: h2 was last seen at 20 s, so it is offline after 50 s, not
     * 30 s after the reload; the new sensor h3 counts from the reload (25 s). */
    assert_int_equal(tick(g, MON0 + 50 * SEC), 0);
    assert_int_equal(tick(g, MON0 + 50 * SEC + 1), 1);
    check_tr(&g->out[0], GW_TRANSITION_RAISE, n_off, n_h2, MON0 + 50 * SEC + 1);
    assert_int_equal(tick(g, MON0 + 55 * SEC), 0);
    assert_int_equal(tick(g, MON0 + 55 * SEC + 1), 1);
    check_tr(&g->out[0], GW_TRANSITION_RAISE, n_off, n_h3, MON0 + 55 * SEC + 1);
    assert_int_equal(tick(g, MON0 + 57 * SEC + 1), 1);
    check_tr(&g->out[0], GW_TRANSITION_RAISE, n_off, n_h1, MON0 + 57 * SEC + 1);

    /* The pending on-delay kept its start (10 s, before the reload): fires at 70 s. */
    assert_int_equal(tick(g, MON0 + 70 * SEC - 1), 0);
    assert_int_equal(tick(g, MON0 + 70 * SEC), 1);
    check_tr(&g->out[0], GW_TRANSITION_RAISE, n_slow, n_h2, MON0 + 70 * SEC);

    /* "gone" vanished with its active alarm: h2 is active for exactly slow + offline. */
    for (int r = 0; r < g->cfg.nrules; r++) {
        assert_int_equal(gw_rules_is_active(g->eng, r, n_h2), r == n_slow || r == n_off);
    }
    assert_int_equal(tick(g, MON0 + DAY), 0);
    gw_rules_free(g->eng);
    free(g);
}

/* A reload that changes the condition kind forgets the old truth. */
static void test_carry_over_changed_rule(void **state)
{
    struct fx *f = *state;
    add_sensor(f, "h1", "hydrant_pressure", 0, 10, 0);
    int a = add_rule(f, "a", "hydrant_pressure", "p", GW_COND_BELOW, 1);
    int b = add_rule(f, "b", "hydrant_pressure", "p", GW_COND_BELOW, 10);
    start(f, MON0);
    assert_int_equal(feed_num(f, 0, "p", 0, MON0), 2);
    assert_int_equal(feed_num(f, 0, "p", 0.5, MON0 + SEC), 0); /* both still true */
    assert_true(gw_rules_is_active(f->eng, a, 0));
    assert_true(gw_rules_is_active(f->eng, b, 0));

    struct fx *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    add_sensor(g, "h1", "hydrant_pressure", 0, 10, 0);
    int na = add_rule(g, "a", "hydrant_pressure", "p", GW_COND_BELOW, 0.1);
    int nb = add_rule(g, "b", "hydrant_pressure", "p", GW_COND_ABOVE, 100);
    start(g, MON0 + 2 * SEC);
    gw_rules_carry_over(g->eng, f->eng);
    gw_rules_carry_over(g->eng, NULL);
    gw_rules_carry_over(g->eng, g->eng);
    assert_true(gw_rules_is_active(g->eng, na, 0));
    assert_true(gw_rules_is_active(g->eng, nb, 0));
    /* b: "below 10" was true for 0.5, but that truth means nothing for "above 100". a keeps
     * its truth until its next reading is judged by the new threshold. */
    assert_int_equal(tick(g, MON0 + 3 * SEC), 1);
    check_tr(&g->out[0], GW_TRANSITION_CLEAR, nb, 0, MON0 + 3 * SEC);
    assert_int_equal(feed_num(g, 0, "p", 500, MON0 + 4 * SEC), 2);
    check_tr(&g->out[0], GW_TRANSITION_CLEAR, na, 0, MON0 + 4 * SEC);
    check_tr(&g->out[1], GW_TRANSITION_RAISE, nb, 0, MON0 + 4 * SEC);
    gw_rules_free(g->eng);
    free(g);
}

/* Transitions still waiting for room survive a reload, re-indexed and oldest first. */
static void test_carry_over_waiting_transitions(void **state)
{
    struct fx *f = *state;
    add_sensor(f, "h1", "hydrant_pressure", 0, 10, 0);
    add_sensor(f, "h2", "hydrant_pressure", 0, 10, 0);
    add_rule(f, "low", "hydrant_pressure", "p", GW_COND_BELOW, 10);
    start(f, MON0);
    struct gw_reading rd = reading(1, MON0 + SEC);
    point_num(&rd, "p", 1);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0 + SEC, f->out, 0), 0);
    rd = reading(0, MON0 + 2 * SEC);
    point_num(&rd, "p", 1);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0 + 2 * SEC, f->out, 0), 0);

    struct fx *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    int n_h1 = add_sensor(g, "h1", "hydrant_pressure", 0, 10, 0);
    int n_h2 = add_sensor(g, "h2", "hydrant_pressure", 0, 10, 0);
    add_rule(g, "other", "hydrant_pressure", "p", GW_COND_ABOVE, 1000);
    int n_low = add_rule(g, "low", "hydrant_pressure", "p", GW_COND_BELOW, 10);
    start(g, MON0 + 3 * SEC);
    gw_rules_carry_over(g->eng, f->eng);
    assert_int_equal(tick(g, MON0 + 4 * SEC), 2);
    check_tr(&g->out[0], GW_TRANSITION_RAISE, n_low, n_h2, MON0 + SEC);
    check_tr(&g->out[1], GW_TRANSITION_RAISE, n_low, n_h1, MON0 + 2 * SEC);
    assert_int_equal(tick(g, MON0 + 5 * SEC), 0);
    gw_rules_free(g->eng);
    free(g);
}

/* ---- out[] full ---- */

static void test_out_full_keeps_transitions(void **state)
{
    struct fx *f = *state;
    add_sensor(f, "h1", "hydrant_pressure", 0, 10, 0);
    add_sensor(f, "h2", "hydrant_pressure", 0, 10, 0);
    int r = add_rule(f, "sensor-offline", NULL, NULL, GW_COND_OFFLINE, 0);
    f->rules[r].offline_after = 1;
    int low = add_rule(f, "low", "hydrant_pressure", "p", GW_COND_BELOW, 10);
    int lat = add_rule(f, "lat", "hydrant_pressure", "p", GW_COND_BELOW, 10);
    f->rules[lat].latch = true;
    start(f, MON0);

    /* Three transitions due, room for one. */
    struct gw_reading rd = reading(0, MON0);
    point_num(&rd, "p", 1);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0, f->out, 1), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, low, 0, MON0);
    assert_true(gw_rules_is_active(f->eng, lat, 0)); /* decided, not yet emitted */
    /* Both go offline at 11 s with no room at all; then h1 answers (out == NULL), so
     * its "low" clears and its offline ends while the raises still wait. */
    assert_int_equal(gw_rules_tick(f->eng, MON0 + 11 * SEC, f->out, 0), 0);
    assert_true(gw_rules_is_active(f->eng, r, 1));
    rd = reading(0, MON0 + 11 * SEC);
    point_num(&rd, "p", 50);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0 + 11 * SEC, NULL, 5), 0);
    /* Next call: the waiting ones first, oldest first, then the decisions they held up. */
    assert_int_equal(tick(f, MON0 + 12 * SEC), 6);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, lat, 0, MON0);
    check_tr(&f->out[1], GW_TRANSITION_RAISE, r, 0, MON0 + 11 * SEC);
    check_tr(&f->out[2], GW_TRANSITION_RAISE, r, 1, MON0 + 11 * SEC);
    check_tr(&f->out[3], GW_TRANSITION_CLEAR, low, 0, MON0 + 11 * SEC);
    check_tr(&f->out[4], GW_TRANSITION_CLEAR, r, 0, MON0 + 12 * SEC);
    check_tr(&f->out[5], GW_TRANSITION_CLEAR, lat, 0, MON0 + 12 * SEC);
    assert_int_equal(tick(f, MON0 + 13 * SEC), 0);
    assert_false(gw_rules_is_active(f->eng, lat, 0));
}

/* Many transitions, small out[]: every one comes out exactly once, in order. */
static void test_out_small_drains_all(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < MAX_S; i++) {
        static const char *ids[MAX_S] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"};
        add_sensor(f, ids[i], "smoke", -1, 0, 60);
    }
    int r = add_rule(f, "sensor-offline", NULL, NULL, GW_COND_OFFLINE, 0);
    f->rules[r].offline_after = 1;
    start(f, MON0);
    int seen[MAX_S] = {0};
    int total = 0;
    for (int k = 0; k < 10; k++) {
        int n = gw_rules_tick(f->eng, MON0 + MIN + 1 + k, f->out, 3);
        assert_true(n <= 3);
        for (int i = 0; i < n; i++) {
            assert_int_equal(f->out[i].type, GW_TRANSITION_RAISE);
            assert_int_equal(f->out[i].sensor_index, total + i);
            assert_int_equal(f->out[i].ts_ms, MON0 + MIN + 1);
            seen[f->out[i].sensor_index]++;
        }
        total += n;
    }
    assert_int_equal(total, MAX_S);
    for (int i = 0; i < MAX_S; i++) {
        assert_int_equal(seen[i], 1);
    }
}

static void test_empty_and_null(void **state)
{
    struct fx *f = *state;
    gw_rules_free(NULL);
    assert_null(gw_rules_new(NULL, MON0));
    start(f, MON0); /* no sensors, no rules */
    assert_int_equal(tick(f, MON0 + DAY), 0);
    struct gw_reading rd = reading(0, MON0);
    assert_int_equal(gw_rules_on_reading(f->eng, &rd, MON0, f->out, OUT_MAX), 0);
    assert_false(gw_rules_is_active(f->eng, 0, 0));
    assert_false(gw_rules_is_active(NULL, 0, 0));
    assert_int_equal(gw_rules_tick(NULL, MON0, f->out, OUT_MAX), 0);
    assert_true(gw_schedule_is_open(NULL, MON0));
}

/* A clock step (NTP on a Pi without RTC) must neither raise offline nor cut a delay short. */
static void test_clock_step_is_not_elapsed_time(void **state)
{
    struct fx *f = *state;
    int h = add_sensor(f, "h1", "hydrant", 0, 10, 0);
    int off = add_rule(f, "offline", NULL, NULL, GW_COND_OFFLINE, 0);
    f->rules[off].offline_after = 3;
    int low = add_rule(f, "low", "hydrant", "pressure", GW_COND_BELOW, 0.1);
    f->rules[low].on_delay_s = 30;
    int64_t t = MON0;
    start(f, t);
    assert_int_equal(feed_num(f, h, "pressure", 0.05, t), 0); /* on-delay starts */
    /* 10 s later the clock jumps 5 hours ahead. */
    int64_t step = 5 * HOUR;
    gw_rules_shift_time(f->eng, step);
    t += 10 * SEC + step;
    assert_int_equal(tick(f, t), 0); /* not offline, delay not over */
    assert_int_equal(feed_num(f, h, "pressure", 0.05, t + 19 * SEC), 0);
    assert_int_equal(feed_num(f, h, "pressure", 0.05, t + 20 * SEC), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, low, h, t + 20 * SEC);
    /* Offline is still measured from the last reading, on the new clock. */
    assert_int_equal(tick(f, t + 20 * SEC + 30 * SEC), 0);
    assert_int_equal(tick(f, t + 20 * SEC + 30 * SEC + 1), 1);
    check_tr(&f->out[0], GW_TRANSITION_RAISE, off, h, t + 50 * SEC + 1);
    /* A step backwards too. */
    gw_rules_shift_time(f->eng, -step);
    assert_int_equal(feed_num(f, h, "pressure", 0.5, t - step + 51 * SEC), 2);
}

/* After a restart the store says which alarms were raised: no new raise, a clear when due. */
static void test_restore_active(void **state)
{
    struct fx *f = *state;
    int h = add_sensor(f, "h1", "hydrant", 0, 10, 0);
    int h2 = add_sensor(f, "h2", "hydrant", 0, 10, 0);
    int low = add_rule(f, "low", "hydrant", "pressure", GW_COND_BELOW, 0.1);
    int fire = add_rule(f, "fire", "hydrant", "flag", GW_COND_EQUALS, 0);
    f->rules[fire].equals = (struct gw_value){.type = GW_VALUE_BOOL, .b = true, .num = 1};
    f->rules[fire].latch = true;
    int64_t t = MON0;
    start(f, t);
    assert_false(gw_rules_restore_active(f->eng, low, 7)); /* no such sensor */
    assert_true(gw_rules_restore_active(f->eng, low, h));
    assert_true(gw_rules_restore_active(f->eng, low, h2));
    assert_true(gw_rules_restore_active(f->eng, fire, h));
    assert_true(gw_rules_is_active(f->eng, low, h));
    /* Still low: nothing new. Back to normal: cleared. */
    assert_int_equal(feed_num(f, h, "pressure", 0.05, t + SEC), 0);
    assert_int_equal(feed_num(f, h2, "pressure", 0.5, t + SEC), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, low, h2, t + SEC);
    /* A latched one clears like any other here (the lifecycle holds it until reset). */
    struct gw_reading r = reading(h, t + 2 * SEC);
    point_bool(&r, "flag", false);
    assert_int_equal(gw_rules_on_reading(f->eng, &r, t + 2 * SEC, f->out, OUT_MAX), 1);
    check_tr(&f->out[0], GW_TRANSITION_CLEAR, fire, h, t + 2 * SEC);
    assert_false(gw_rules_is_active(f->eng, fire, h));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restore_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_step_is_not_elapsed_time, setup, teardown),
        cmocka_unit_test(test_condition_tables),
        cmocka_unit_test_setup_teardown(test_transition_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_uses_reading_ts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faulted_or_absent_point_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_delay_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_delay_fires_on_tick_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_delay_fires_on_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latch_is_reported_as_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_with_on_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sensor_narrowing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kind_matching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_timezone_shanghai, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_dst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_during_opens_and_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_during_off_delay_on_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_during_on_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_during_latch_clears_at_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_carry_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_carry_over_changed_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_carry_over_waiting_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_full_keeps_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_small_drains_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_null, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
