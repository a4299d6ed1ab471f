/*
 * The school's figures (kpi.c) for a scripted day: every figure exact, the
 * P/kpi JSON byte for byte, the window's edges, rounding, an empty config and
 * bad input. History records are built here with jansson in the shape
 * gw_payload_alarm writes, times computed from `now` independently of the
 * code tested.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <errno.h>
#include <jansson.h>

#include "kpi.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
/* 2026-11-28T12:00:00.000Z */
#define NOW 1795867200000LL

static json_t *utc(int64_t ms)
{
    if (ms == 0) {
        return json_null();
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[40];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    snprintf(out, sizeof(out), "%s.%03dZ", buf, (int)(ms % 1000));
    return json_string(out);
}

/* A P/events record as gw_payload_alarm writes it (the fields the figures read, and a few). */
struct ev {
    const char *transition, *key, *cls, *state;
    int64_t raised, acked; /* 0 = null */
    bool test;
};

static char *event(const struct ev *e)
{
    char sensor[128];
    snprintf(sensor, sizeof(sensor), "%.*s", (int)(strchr(e->key, '/') - e->key), e->key);
    json_t *o = json_pack("{sI ss ss ss ss ss so so so so si ss}", "seq", (json_int_t)7, "key",
                          e->key, "sensor", sensor, "rule", "some rule", "class", e->cls, "state",
                          e->state, "value", json_null(), "raised_at", utc(e->raised), "acked_at",
                          utc(e->acked), "acked_by", e->acked ? json_string("wang") : json_null(),
                          "level", 1, "transition", e->transition);
    assert_non_null(o);
    if (e->test) {
        json_object_set_new(o, "test", json_true());
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_non_null(s);
    return s;
}

/* ---- the school ---- */

enum { H1, H2, H3, EXIT1, EXIT2, SMOKE1, SMOKE2, NSENSORS };
enum { R_LOW, R_SMOKE, R_LOCKED, R_OFFLINE, R_HIGH, R_OPEN, R_VERY_LOW, NRULES };

struct school {
    struct gw_sensor_cfg sensors[NSENSORS];
    struct gw_rule_cfg rules[NRULES];
    struct gw_config cfg;
};

static void rule(struct gw_rule_cfg *r, const char *name, const char *kind, enum gw_rule_cond cond,
                 enum gw_alarm_class cls)
{
    *r = (struct gw_rule_cfg){.name = (char *)name,
                              .kind = (char *)kind,
                              .cond = cond,
                              .alarm_class = cls,
                              .schedule_index = -1};
}

static void equals_str(struct gw_rule_cfg *r, const char *s)
{
    r->equals.type = GW_VALUE_STRING;
    snprintf(r->equals.str, sizeof(r->equals.str), "%s", s);
}

static void school_init(struct school *s)
{
    memset(s, 0, sizeof(*s));
    static const struct {
        const char *id, *kind;
    } sensors[NSENSORS] = {
        [H1] = {"h1", "hydrant_pressure"}, [H2] = {"h2", "hydrant_pressure"},
        [H3] = {"h3", "hydrant_pressure"}, [EXIT1] = {"exit1", "exit_door"},
        [EXIT2] = {"exit2", "exit_door"},  [SMOKE1] = {"smoke1", "smoke"},
        [SMOKE2] = {"smoke2", "smoke"},
    };
    for (int i = 0; i < NSENSORS; i++) {
        s->sensors[i].id = (char *)sensors[i].id;
        s->sensors[i].kind = (char *)sensors[i].kind;
        s->sensors[i].bus_index = -1;
    }
    rule(&s->rules[R_LOW], "hydrant pressure low", "hydrant_pressure", GW_COND_BELOW,
         GW_CLASS_SUPERVISORY);
    rule(&s->rules[R_SMOKE], "smoke detected", "smoke", GW_COND_EQUALS, GW_CLASS_ALARM);
    s->rules[R_SMOKE].equals.type = GW_VALUE_BOOL;
    s->rules[R_SMOKE].equals.b = true;
    rule(&s->rules[R_LOCKED], "exit locked during school hours", "exit_door", GW_COND_EQUALS,
         GW_CLASS_SUPERVISORY);
    equals_str(&s->rules[R_LOCKED], "locked");
    rule(&s->rules[R_OFFLINE], "sensor offline", NULL, GW_COND_OFFLINE, GW_CLASS_TROUBLE);
    rule(&s->rules[R_HIGH], "hydrant pressure high", "hydrant_pressure", GW_COND_ABOVE,
         GW_CLASS_TROUBLE);
    rule(&s->rules[R_OPEN], "exit open", "exit_door", GW_COND_EQUALS, GW_CLASS_SUPERVISORY);
    equals_str(&s->rules[R_OPEN], "open");
    rule(&s->rules[R_VERY_LOW], "hydrant pressure very low", "hydrant_pressure", GW_COND_BELOW,
         GW_CLASS_SUPERVISORY);
    s->cfg.site.district = "haidian";
    s->cfg.site.school = "no1-middle";
    s->cfg.nsensors = NSENSORS;
    s->cfg.sensors = s->sensors;
    s->cfg.nrules = NRULES;
    s->cfg.rules = s->rules;
}

#define SMOKE1_KEY "smoke1/smoke-detected"
#define SMOKE2_KEY "smoke2/smoke-detected"
#define H1_LOW "h1/hydrant-pressure-low"
#define H2_LOW "h2/hydrant-pressure-low"
#define H3_LOW "h3/hydrant-pressure-low"
#define EXIT1_KEY "exit1/exit-locked-during-school-hours"
#define EXIT2_KEY "exit2/exit-locked-during-school-hours"
#define SMOKE2_OFF "smoke2/sensor-offline"
#define H3_OFF "h3/sensor-offline"
#define SELFTEST "gateway/path-self-test"

/* The day's history, oldest first (records of different keys interleaved as they happened). */
static const struct ev day[] = {
    /* raised 25 h ago, acked 23 h ago: outside the window, its ack too */
    {"raise", H1_LOW, "supervisory", "unacked", NOW - 25 * HOUR, 0, false},
    /* raised 23 h ago, acked after 30 s; latched: cleared, then reset */
    {"raise", SMOKE1_KEY, "alarm", "unacked", NOW - 23 * HOUR, 0, false},
    {"ack", H1_LOW, "supervisory", "acked", NOW - 25 * HOUR, NOW - 23 * HOUR, false},
    {"ack", SMOKE1_KEY, "alarm", "acked", NOW - 23 * HOUR, NOW - 23 * HOUR + 30 * SEC, false},
    {"clear", H1_LOW, "supervisory", "normal", NOW - 25 * HOUR, NOW - 23 * HOUR, false},
    {"clear", SMOKE1_KEY, "alarm", "acked", NOW - 23 * HOUR, NOW - 23 * HOUR + 30 * SEC, false},
    {"reset", SMOKE1_KEY, "alarm", "normal", NOW - 23 * HOUR, NOW - 23 * HOUR + 30 * SEC, false},
    /* a detector's test button: raised, acked after 1 s, normal again; not counted */
    {"raise", SMOKE2_KEY, "alarm", "unacked", NOW - 10 * HOUR, 0, true},
    {"ack", SMOKE2_KEY, "alarm", "acked", NOW - 10 * HOUR, NOW - 10 * HOUR + 1 * SEC, true},
    {"reset", SMOKE2_KEY, "alarm", "normal", NOW - 10 * HOUR, NOW - 10 * HOUR + 1 * SEC, true},
    /* h3 offline: shelved, normal again when the shelf expired; a record after its end (a
       stray acked_at) changes nothing */
    {"raise", H3_OFF, "trouble", "unacked", NOW - 12 * HOUR, 0, false},
    {"shelve", H3_OFF, "trouble", "shelved", NOW - 12 * HOUR, 0, false},
    {"unshelve", H3_OFF, "trouble", "normal", NOW - 12 * HOUR, 0, false},
    {"chattering", H3_OFF, "trouble", "normal", NOW - 12 * HOUR, NOW - 11 * HOUR, false},
    /* the trouble alarm: back to normal unacknowledged, acked 45.15 s after its raise */
    {"raise", SMOKE2_OFF, "trouble", "unacked", NOW - 8 * HOUR, 0, false},
    {"clear", SMOKE2_OFF, "trouble", "rtn_unacked", NOW - 8 * HOUR, 0, false},
    {"ack", SMOKE2_OFF, "trouble", "normal", NOW - 8 * HOUR, NOW - 8 * HOUR + 45150, false},
    /* h3 low, shelved (not an ack), condition still on */
    {"raise", H3_LOW, "supervisory", "unacked", NOW - 6 * HOUR, 0, false},
    {"shelve", H3_LOW, "supervisory", "shelved", NOW - 6 * HOUR, 0, false},
    /* h2 low acked after 61.2 s, shelved, unshelved (a fresh raise_at), acked again */
    {"raise", H2_LOW, "supervisory", "unacked", NOW - 5 * HOUR, 0, false},
    {"ack", H2_LOW, "supervisory", "acked", NOW - 5 * HOUR, NOW - 5 * HOUR + 61200, false},
    {"shelve", H2_LOW, "supervisory", "shelved", NOW - 5 * HOUR, NOW - 5 * HOUR + 61200, false},
    {"unshelve", H2_LOW, "supervisory", "unacked", NOW - 3 * HOUR, 0, false},
    {"ack", H2_LOW, "supervisory", "acked", NOW - 3 * HOUR, NOW - 3 * HOUR + 100 * SEC, false},
    /* the path self-test: a test alarm */
    {"raise", SELFTEST, "trouble", "unacked", NOW - 4 * HOUR, 0, true},
    {"clear", SELFTEST, "trouble", "normal", NOW - 4 * HOUR, 0, true},
    /* exit1: raised, back to normal unacknowledged, raised again (a new occurrence) */
    {"raise", EXIT1_KEY, "supervisory", "unacked", NOW - 2 * HOUR, 0, false},
    {"clear", EXIT1_KEY, "supervisory", "rtn_unacked", NOW - 2 * HOUR, 0, false},
    {"raise", EXIT1_KEY, "supervisory", "unacked", NOW - 90 * MIN, 0, false},
    /* smoke1 latched: raised, condition gone while unacked, raised again: one occurrence */
    {"raise", SMOKE1_KEY, "alarm", "unacked", NOW - 1 * HOUR, 0, false},
    {"clear", SMOKE1_KEY, "alarm", "unacked", NOW - 1 * HOUR, 0, false},
    {"raise", SMOKE1_KEY, "alarm", "unacked", NOW - 1 * HOUR, 0, false},
    /* smoke2: a test press, then real smoke while it is still open: a real occurrence */
    {"raise", SMOKE2_KEY, "alarm", "unacked", NOW - 30 * MIN, 0, true},
    {"clear", SMOKE2_KEY, "alarm", "unacked", NOW - 30 * MIN, 0, true},
    {"raise", SMOKE2_KEY, "alarm", "unacked", NOW - 30 * MIN, 0, false},
    /* exit2: raised, back to normal, not acknowledged */
    {"raise", EXIT2_KEY, "supervisory", "unacked", NOW - 20 * MIN, 0, false},
    {"clear", EXIT2_KEY, "supervisory", "rtn_unacked", NOW - 20 * MIN, 0, false},
};
#define NDAY (int)(sizeof(day) / sizeof(day[0]))

/* Not alarm events: a notification (ignored), junk and a record without a class (malformed),
 * a clear of an alarm raised before the history began (ignored). */
static const char *const extra[] = {
    "{\"seq\":9,\"key\":\"h3/hydrant-pressure-low\",\"class\":\"supervisory\",\"level\":1,"
    "\"text\":\"...\",\"sensor\":\"h3\",\"kind\":\"raise\"}",
    "not json",
    "{\"key\":\"h1/x\",\"transition\":\"raise\",\"state\":\"unacked\"}",
    "{\"key\":\"h1/x\",\"class\":\"trouble\",\"transition\":\"raise\",\"state\":\"unacked\","
    "\"raised_at\":\"yesterday\"}",
    "{\"key\":\"exit2/exit-open\",\"class\":\"supervisory\",\"transition\":\"clear\","
    "\"state\":\"normal\",\"raised_at\":\"2026-11-26T00:00:00.000Z\","
    "\"acked_at\":\"2026-11-27T12:00:00.000Z\"}",
};
#define NEXTRA (int)(sizeof(extra) / sizeof(extra[0]))

static const struct gw_kpi_alarm live[] = {
    {R_HIGH, H1, GW_ALARM_UNACKED, true, false},           /* unacked; not a `below` rule */
    {R_LOW, H1, GW_ALARM_OUT_OF_SERVICE, false, false},    /* condition off: not counted */
    {R_LOW, H2, GW_ALARM_ACKED, true, false},              /* no pressure */
    {R_LOW, H3, GW_ALARM_SHELVED, true, false},            /* no pressure, shelved */
    {R_VERY_LOW, H2, GW_ALARM_UNACKED, true, false},       /* unacked; h2 once */
    {R_SMOKE, SMOKE1, GW_ALARM_UNACKED, true, false},      /* unacked */
    {R_SMOKE, SMOKE2, GW_ALARM_UNACKED, true, false},      /* unacked */
    {R_LOCKED, EXIT1, GW_ALARM_UNACKED, true, false},      /* unacked, locked */
    {R_LOCKED, EXIT2, GW_ALARM_RTN_UNACKED, false, false}, /* unacked, no longer locked */
    {R_OPEN, EXIT2, GW_ALARM_ACKED, true, false},          /* not equals "locked" */
    {-1, -1, GW_ALARM_UNACKED, true, false},               /* a hazard overdue: unacked */
    {-1, -1, GW_ALARM_UNACKED, true, true},                /* the self-test: test */
    {R_LOCKED, EXIT1, GW_ALARM_ACKED, true, true},         /* test, acked: exit1 once */
    {99, H1, GW_ALARM_ACKED, true, false},                 /* indexes out of range: ignored */
    {R_LOW, 99, GW_ALARM_ACKED, true, false},
};
#define NLIVE (int)(sizeof(live) / sizeof(live[0]))

static const bool online[NSENSORS] = {
    [H1] = true, [H2] = true, [EXIT1] = true, [EXIT2] = true, [SMOKE1] = true,
};

/* The events replayed into a history for now_ms. */
static struct gw_kpi_history *replay(const struct ev *evs, int n, int64_t now_ms)
{
    struct gw_kpi_history *h = gw_kpi_history_new(now_ms);
    assert_non_null(h);
    for (int i = 0; i < n; i++) {
        char *payload = event(&evs[i]);
        assert_int_equal(gw_kpi_history_add(h, payload), 0);
        free(payload);
    }
    return h;
}

static void scripted_day(void **state)
{
    (void)state;
    struct school s;
    school_init(&s);
    struct gw_kpi_history *h = replay(day, NDAY, NOW);
    for (int i = 0; i < NEXTRA; i++) {
        assert_int_equal(gw_kpi_history_add(h, extra[i]), 0);
    }
    struct gw_hazard_counts hz = {.open = 2, .rectifying = 1, .overdue = 1};
    struct gw_kpi_input in = {
        .cfg = &s.cfg,
        .online = online,
        .alarms = live,
        .nalarms = NLIVE,
        .history = h,
        .hazards = &hz,
        .now_ms = NOW,
    };
    struct gw_kpi k;
    char err[128];
    assert_int_equal(gw_kpi_compute(&in, &k, err, sizeof(err)), 0);
    assert_int_equal(k.sensors_total, 7);
    assert_int_equal(k.sensors_online, 5);
    assert_int_equal(k.online_pct_tenths, 714); /* 5/7 = 71.43 % */
    /* smoke1 23 h ago, smoke1 1 h ago (raised twice, one occurrence), smoke2 (test, then real) */
    assert_int_equal(k.alarms_24h[GW_CLASS_ALARM], 3);
    /* h2, h3, exit1 twice, exit2; not h1 (25 h ago) */
    assert_int_equal(k.alarms_24h[GW_CLASS_SUPERVISORY], 5);
    /* smoke2 and h3 offline; not the self-test */
    assert_int_equal(k.alarms_24h[GW_CLASS_TROUBLE], 2);
    /* 30 s, 61.2 s (h2's first ack), 45.15 s: mean 45.45 -> 45.5; worst 61.2 */
    assert_int_equal(k.acked_24h, 3);
    assert_int_equal(k.ack_mean_ds, 455);
    assert_int_equal(k.ack_worst_ms, 61200);
    assert_int_equal(k.unacknowledged_alarms, 7);
    assert_int_equal(k.open_hazards, 3);
    assert_int_equal(k.overdue_hazards, 1);
    assert_int_equal(k.hydrants_without_pressure, 2);
    assert_int_equal(k.exits_locked_in_hours, 1);
    assert_int_equal(k.malformed, 3);

    char *json = gw_kpi_json(&k, 42, NOW, s.cfg.site.district, s.cfg.site.school);
    assert_non_null(json);
    assert_string_equal(json,
                        "{\"seq\":42,\"ts\":\"2026-11-28T12:00:00.000Z\",\"district\":\"haidian\","
                        "\"school\":\"no1-middle\",\"sensors_total\":7,\"sensors_online_pct\":71.4,"
                        "\"alarms_24h\":{\"alarm\":3,\"supervisory\":5,\"trouble\":2},"
                        "\"ack_mean_s\":45.5,\"ack_worst_s\":61.2,\"unacknowledged_alarms\":7,"
                        "\"open_hazards\":3,\"overdue_hazards\":1,\"hydrants_without_pressure\":2,"
                        "\"exits_locked_in_hours\":1}");
    free(json);
    /* Computing is read-only: the same figures again. */
    struct gw_kpi again;
    assert_int_equal(gw_kpi_compute(&in, &again, err, sizeof(err)), 0);
    assert_memory_equal(&k, &again, sizeof(k));
    gw_kpi_history_free(h);
}

/* The same history read an hour later: smoke1's first occurrence (23 h ago) drops out. */
static void window_moves(void **state)
{
    (void)state;
    struct school s;
    school_init(&s);
    struct gw_kpi_history *h = replay(day, NDAY, NOW + HOUR);
    struct gw_kpi_input in = {.cfg = &s.cfg, .history = h, .now_ms = NOW + HOUR};
    struct gw_kpi k;
    assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), 0);
    assert_int_equal(k.alarms_24h[GW_CLASS_ALARM], 2);
    assert_int_equal(k.alarms_24h[GW_CLASS_SUPERVISORY], 5);
    assert_int_equal(k.acked_24h, 2); /* 61.2 and 45.15: mean 53.175 -> 53.2 */
    assert_int_equal(k.ack_mean_ds, 532);
    assert_int_equal(k.ack_worst_ms, 61200);
    assert_int_equal(k.sensors_online, 0); /* online NULL: none */
    assert_int_equal(k.online_pct_tenths, 0);
    assert_int_equal(k.open_hazards, 0); /* no register */
    gw_kpi_history_free(h);
}

/* (now - 24 h, now]: exactly 24 h ago is out, 1 ms later is in, the future is out. */
static void window_edges(void **state)
{
    (void)state;
    struct school s;
    school_init(&s);
    const struct ev evs[] = {
        {"raise", "a/x", "alarm", "unacked", NOW - 24 * HOUR, 0, false},
        {"ack", "a/x", "alarm", "acked", NOW - 24 * HOUR, NOW - 24 * HOUR + SEC, false},
        {"raise", "b/x", "alarm", "unacked", NOW - 24 * HOUR + 1, 0, false},
        {"ack", "b/x", "alarm", "acked", NOW - 24 * HOUR + 1, NOW - 24 * HOUR + 2001, false},
        {"raise", "c/x", "trouble", "unacked", NOW, 0, false},
        {"raise", "d/x", "trouble", "unacked", NOW + 1, 0, false},
    };
    struct gw_kpi_history *h = replay(evs, (int)(sizeof(evs) / sizeof(evs[0])), NOW);
    struct gw_kpi_input in = {.cfg = &s.cfg, .history = h, .now_ms = NOW};
    struct gw_kpi k;
    assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), 0);
    assert_int_equal(k.alarms_24h[GW_CLASS_ALARM], 1);
    assert_int_equal(k.alarms_24h[GW_CLASS_TROUBLE], 1);
    assert_int_equal(k.acked_24h, 1);
    assert_int_equal(k.ack_mean_ds, 20);
    assert_int_equal(k.ack_worst_ms, 2000);
    gw_kpi_history_free(h);
}

/* An ack stamped before its raise (the clock stepped back) counts as 0 s, not negative. */
static void ack_before_raise(void **state)
{
    (void)state;
    struct school s;
    school_init(&s);
    const struct ev evs[] = {
        {"raise", "a/x", "alarm", "unacked", NOW - HOUR, 0, false},
        {"ack", "a/x", "alarm", "acked", NOW - HOUR, NOW - HOUR - 5 * SEC, false},
    };
    struct gw_kpi_history *h = replay(evs, 2, NOW);
    struct gw_kpi_input in = {.cfg = &s.cfg, .history = h, .now_ms = NOW};
    struct gw_kpi k;
    assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), 0);
    assert_int_equal(k.acked_24h, 1);
    assert_int_equal(k.ack_mean_ds, 0);
    assert_int_equal(k.ack_worst_ms, 0);
    char *json = gw_kpi_json(&k, 1, NOW, "d", "s");
    assert_non_null(strstr(json, "\"ack_mean_s\":0.0,\"ack_worst_s\":0.0,"));
    free(json);
    gw_kpi_history_free(h);
}

/* Online percentage: half up to 0.1, exact tenths kept. */
static void online_rounding(void **state)
{
    (void)state;
    static const struct {
        int online, total, tenths;
        const char *text;
    } cases[] = {
        {0, 1, 0, "0.0"},   {1, 3, 333, "33.3"},  {2, 3, 667, "66.7"},   {1, 8, 125, "12.5"},
        {1, 16, 63, "6.3"}, {3, 16, 188, "18.8"}, {3, 3, 1000, "100.0"}, {11, 12, 917, "91.7"},
    };
    struct gw_sensor_cfg sensors[16];
    bool flags[16];
    for (int i = 0; i < 16; i++) {
        sensors[i] = (struct gw_sensor_cfg){.id = "s", .kind = "smoke", .bus_index = -1};
    }
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct gw_config cfg = {.nsensors = cases[c].total, .sensors = sensors};
        for (int i = 0; i < 16; i++) {
            flags[i] = i < cases[c].online;
        }
        struct gw_kpi_input in = {.cfg = &cfg, .online = flags, .now_ms = NOW};
        struct gw_kpi k;
        assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), 0);
        assert_int_equal(k.online_pct_tenths, cases[c].tenths);
        char *json = gw_kpi_json(&k, 1, NOW, "d", "s");
        char want[64];
        snprintf(want, sizeof(want), "\"sensors_online_pct\":%s,", cases[c].text);
        if (strstr(json, want) == NULL) {
            fail_msg("%d/%d: want %s in %s", cases[c].online, cases[c].total, want, json);
        }
        free(json);
    }
}

/* Mean: half up in tenths (35.45 -> 35.5, 35.44999 -> 35.4); worst keeps milliseconds. */
static void ack_rounding(void **state)
{
    (void)state;
    struct school s;
    school_init(&s);
    const struct ev evs[] = {
        {"raise", "a/x", "alarm", "unacked", NOW - HOUR, 0, false},
        {"ack", "a/x", "alarm", "acked", NOW - HOUR, NOW - HOUR + 35400, false},
        {"raise", "b/x", "alarm", "unacked", NOW - HOUR, 0, false},
        {"ack", "b/x", "alarm", "acked", NOW - HOUR, NOW - HOUR + 35500, false},
        {"raise", "c/x", "alarm", "unacked", NOW - HOUR, 0, false},
        {"ack", "c/x", "alarm", "acked", NOW - HOUR, NOW - HOUR + 35449, false},
        {"raise", "d/x", "alarm", "unacked", NOW - HOUR, 0, false},
        {"ack", "d/x", "alarm", "acked", NOW - HOUR, NOW - HOUR + 61234, false},
    };
    struct gw_kpi k;
    char *json;
    /* a and b: 35.45 */
    struct gw_kpi_history *h = replay(evs, 4, NOW);
    struct gw_kpi_input in = {.cfg = &s.cfg, .history = h, .now_ms = NOW};
    assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), 0);
    assert_int_equal(k.ack_mean_ds, 355);
    json = gw_kpi_json(&k, 1, NOW, "d", "s");
    assert_non_null(strstr(json, "\"ack_mean_s\":35.5,\"ack_worst_s\":35.5,"));
    free(json);
    gw_kpi_history_free(h);
    /* c alone: 35.449 -> 35.4 */
    in.history = h = replay(evs + 4, 2, NOW);
    assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), 0);
    assert_int_equal(k.ack_mean_ds, 354);
    json = gw_kpi_json(&k, 1, NOW, "d", "s");
    assert_non_null(strstr(json, "\"ack_mean_s\":35.4,\"ack_worst_s\":35.449,"));
    free(json);
    gw_kpi_history_free(h);
    /* d alone: 61.234 */
    in.history = h = replay(evs + 6, 2, NOW);
    assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), 0);
    json = gw_kpi_json(&k, 1, NOW, "d", "s");
    assert_non_null(strstr(json, "\"ack_mean_s\":61.2,\"ack_worst_s\":61.234,"));
    free(json);
    gw_kpi_history_free(h);
}

static void empty_config(void **state)
{
    (void)state;
    struct gw_config cfg = {.site = {.district = "d", .school = "s"}};
    struct gw_kpi_input in = {.cfg = &cfg, .now_ms = NOW};
    struct gw_kpi k;
    memset(&k, 0x5a, sizeof(k));
    assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), 0);
    char *json = gw_kpi_json(&k, 1, NOW + 5, cfg.site.district, cfg.site.school);
    assert_string_equal(
        json, "{\"seq\":1,\"ts\":\"2026-11-28T12:00:00.005Z\",\"district\":\"d\",\"school\":\"s\","
              "\"sensors_total\":0,\"sensors_online_pct\":0.0,"
              "\"alarms_24h\":{\"alarm\":0,\"supervisory\":0,\"trouble\":0},"
              "\"ack_mean_s\":null,\"ack_worst_s\":null,\"unacknowledged_alarms\":0,"
              "\"open_hazards\":0,\"overdue_hazards\":0,\"hydrants_without_pressure\":0,"
              "\"exits_locked_in_hours\":0}");
    free(json);
}

static void bad_input(void **state)
{
    (void)state;
    struct gw_kpi k;
    char err[128];
    assert_int_equal(gw_kpi_compute(NULL, &k, err, sizeof(err)), -EINVAL);
    struct gw_kpi_input in = {.now_ms = NOW};
    assert_int_equal(gw_kpi_compute(&in, &k, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "no input, output or config");
    struct gw_config cfg = {0};
    in.cfg = &cfg;
    assert_int_equal(gw_kpi_compute(&in, NULL, NULL, 0), -EINVAL);
    in.nalarms = 1;
    assert_int_equal(gw_kpi_compute(&in, &k, err, sizeof(err)), -EINVAL);
    in.nalarms = -1;
    assert_int_equal(gw_kpi_compute(&in, &k, err, sizeof(err)), -EINVAL);
    in.nalarms = 0;
    cfg.nsensors = 3;
    assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), -EINVAL);
    cfg.nsensors = 0;
    cfg.nrules = 2;
    assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), -EINVAL);
    cfg.nrules = 0;
    /* A history replayed for another instant would count another window. */
    struct gw_kpi_history *h = gw_kpi_history_new(NOW - 1);
    in.history = h;
    assert_int_equal(gw_kpi_compute(&in, &k, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "the history was replayed for another now_ms");
    gw_kpi_history_free(h);
    assert_int_equal(gw_kpi_history_add(NULL, "{}"), -EINVAL);
    gw_kpi_history_free(NULL);
    /* Junk and NULL payloads are skipped and counted, never a crash. */
    const char *junk[] = {NULL,
                          "",
                          "[]",
                          "{\"transition\":1}",
                          "{\"transition\":\"raise\"}",
                          "{\"key\":\"a/b\",\"class\":\"alarm\",\"transition\":\"raise\"}",
                          "{\"key\":\"a/b\",\"class\":\"fire\",\"transition\":\"raise\","
                          "\"raised_at\":\"2026-11-28T11:00:00.000Z\"}",
                          "{\"key\":\"a/b\",\"class\":\"alarm\",\"transition\":\"ack\","
                          "\"raised_at\":\"2026-11-28T11:00:00.000Z\",\"acked_at\":7}",
                          "{\"key\":\"a/b\",\"class\":\"alarm\",\"transition\":\"raise\","
                          "\"raised_at\":\"2026-11-28T11:00:00.000\"}", /* no zone */
                          "{\"key\":\"a/b\",\"class\":\"alarm\",\"transition\":\"raise\","
                          "\"raised_at\":\"2026-13-28T11:00:00.000Z\"}",
                          "{\"key\":\"a/b\",\"class\":\"alarm\",\"transition\":\"raise\","
                          "\"raised_at\":\"2026-11-28T11:00:00.Z\"}"};
    int njunk = (int)(sizeof(junk) / sizeof(junk[0]));
    in.history = h = gw_kpi_history_new(NOW);
    for (int i = 0; i < njunk; i++) {
        assert_int_equal(gw_kpi_history_add(h, junk[i]), 0);
    }
    assert_int_equal(gw_kpi_compute(&in, &k, NULL, 0), 0);
    assert_int_equal(k.malformed, njunk);
    assert_int_equal(k.alarms_24h[GW_CLASS_ALARM], 0);
    gw_kpi_history_free(h);
    assert_null(gw_kpi_json(NULL, 1, NOW, "d", "s"));
}

/* The next publication: the next multiple of the interval since the epoch, strictly later. */
static void next_run(void **state)
{
    (void)state;
    assert_int_equal(gw_kpi_next_run_ms(NOW, 3600), NOW + HOUR);
    assert_int_equal(gw_kpi_next_run_ms(NOW - 1, 3600), NOW);
    assert_int_equal(gw_kpi_next_run_ms(NOW + 1, 3600), NOW + HOUR);
    assert_int_equal(gw_kpi_next_run_ms(NOW + 4 * SEC, 10), NOW + 10 * SEC);
    assert_int_equal(gw_kpi_next_run_ms(NOW + 10 * SEC, 10), NOW + 20 * SEC);
    /* 7 s does not divide a minute: multiples of 7 s since the epoch, not within the minute */
    assert_int_equal(gw_kpi_next_run_ms(0, 7), 7000);
    assert_int_equal(gw_kpi_next_run_ms(NOW, 7), (NOW / 7000 + 1) * 7000);
    assert_int_equal(gw_kpi_next_run_ms(NOW, 86400), NOW + 12 * HOUR);
    assert_int_equal(gw_kpi_next_run_ms(NOW, 0), NOW + HOUR);
    assert_int_equal(gw_kpi_next_run_ms(-1, 10), 0);
    assert_int_equal(gw_kpi_next_run_ms(-10000, 10), 0);
    assert_int_equal(gw_kpi_next_run_ms(-10001, 10), -10000);
}

/* The grid point a late (or exactly timed) timer was due for: the last multiple at or before. */
static void grid_point(void **state)
{
    (void)state;
    assert_int_equal(gw_kpi_grid_point_ms(NOW, 3600), NOW);
    assert_int_equal(gw_kpi_grid_point_ms(NOW + 1, 3600), NOW);
    assert_int_equal(gw_kpi_grid_point_ms(NOW + HOUR - 1, 3600), NOW);
    assert_int_equal(gw_kpi_grid_point_ms(NOW - 1, 3600), NOW - HOUR);
    assert_int_equal(gw_kpi_grid_point_ms(NOW + 10 * SEC + 37, 10), NOW + 10 * SEC);
    assert_int_equal(gw_kpi_grid_point_ms(NOW + 3 * SEC, 7), (NOW + 3 * SEC) / 7000 * 7000);
    assert_int_equal(gw_kpi_grid_point_ms(NOW + 30 * MIN, 0), NOW);
    assert_int_equal(gw_kpi_grid_point_ms(NOW + 30 * MIN, -5), NOW);
    assert_int_equal(gw_kpi_grid_point_ms(0, 10), 0);
    assert_int_equal(gw_kpi_grid_point_ms(-1, 10), -10000);
    assert_int_equal(gw_kpi_grid_point_ms(-10000, 10), -10000);
    assert_int_equal(gw_kpi_grid_point_ms(-10001, 10), -20000);
    /* A timer on schedule fires at or after its point: the point is that one, and the next
     * run is the one after it. */
    for (int64_t late = 0; late < 10 * SEC; late += 1234) {
        int64_t due = gw_kpi_next_run_ms(NOW + 2 * SEC, 10);
        assert_int_equal(gw_kpi_grid_point_ms(due + late, 10), due);
        assert_int_equal(gw_kpi_next_run_ms(due + late, 10), due + 10 * SEC);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scripted_day),    cmocka_unit_test(window_moves),
        cmocka_unit_test(window_edges),    cmocka_unit_test(ack_before_raise),
        cmocka_unit_test(online_rounding), cmocka_unit_test(ack_rounding),
        cmocka_unit_test(empty_config),    cmocka_unit_test(bad_input),
        cmocka_unit_test(next_run),        cmocka_unit_test(grid_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
