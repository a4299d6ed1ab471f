/*
 * ISA-18.2 alarm lifecycle tests. Configs are built by hand; time is an
 * argument. The table covers every (state, event) pair for a latched and an
 * unlatched rule; the other tests cover the edges (exact expiry, chatter
 * window, out-of-service sensors, errors, restore, reload).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alarms.h"

#define NS 3
#define NR 4
#define OUT_MAX 16

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define T0 1764336000000LL /* 2025-11-28T13:20:00Z */

/* Sensor 0 and 2 are smoke detectors, 1 a hydrant. */
#define S_SMOKE 0
#define S_HYD 1
#define S_SMOKE2 2
/* Rule 0 latched (fire), 1 hydrant (unlatched), 2 smoke battery (unlatched), 3 offline (all). */
#define R_SMOKE 0
#define R_HYD 1
#define R_BATT 2
#define R_OFF 3
#define K_SMOKE "A-3F-smoke-301/smoke-detected"
#define K_HYD "A-1F-hydrant-01/hydrant-pressure-low"

struct fx {
    struct gw_config cfg;
    struct gw_sensor_cfg sensors[NS];
    struct gw_rule_cfg rules[NR];
    struct gw_alarms *al;
    struct gw_alarm_change out[OUT_MAX];
    char err[200];
};

static void build_cfg(struct fx *f)
{
    f->sensors[S_SMOKE] = (struct gw_sensor_cfg){.id = "A-3F-smoke-301", .kind = "smoke"};
    f->sensors[S_HYD] = (struct gw_sensor_cfg){.id = "A-1F-hydrant-01", .kind = "hydrant_pressure"};
    f->sensors[S_SMOKE2] = (struct gw_sensor_cfg){.id = "B-2F-smoke-201", .kind = "smoke"};
    f->rules[R_SMOKE] = (struct gw_rule_cfg){.name = "smoke detected",
                                             .slug = "smoke-detected",
                                             .kind = "smoke",
                                             .latch = true,
                                             .alarm_class = GW_CLASS_ALARM};
    f->rules[R_HYD] = (struct gw_rule_cfg){.name = "hydrant pressure low",
                                           .slug = "hydrant-pressure-low",
                                           .kind = "hydrant_pressure",
                                           .alarm_class = GW_CLASS_SUPERVISORY};
    f->rules[R_BATT] = (struct gw_rule_cfg){.name = "smoke battery low",
                                            .slug = "smoke-battery-low",
                                            .kind = "smoke",
                                            .alarm_class = GW_CLASS_TROUBLE};
    f->rules[R_OFF] = (struct gw_rule_cfg){
        .name = "sensor offline", .slug = "sensor-offline", .alarm_class = GW_CLASS_TROUBLE};
    f->cfg.nsensors = NS;
    f->cfg.sensors = f->sensors;
    f->cfg.nrules = NR;
    f->cfg.rules = f->rules;
    f->cfg.alarms.chatter_count = 5;
    f->cfg.alarms.chatter_minutes = 10;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    build_cfg(f);
    f->al = gw_alarms_new(&f->cfg);
    assert_non_null(f->al);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_alarms_free(f->al);
    free(f);
    return 0;
}

static int transition(struct fx *f, int ri, int si, enum gw_transition_type type, int64_t ts)
{
    struct gw_alarm_transition t = {.rule_index = ri,
                                    .sensor_index = si,
                                    .type = type,
                                    .value = {.type = GW_VALUE_NUMBER, .num = (double)ts / SEC},
                                    .ts_ms = ts};
    return gw_alarms_on_transition(f->al, &t, f->out, OUT_MAX);
}

static int on(struct fx *f, int ri, int si, int64_t ts)
{
    return transition(f, ri, si, GW_TRANSITION_RAISE, ts);
}

static int off(struct fx *f, int ri, int si, int64_t ts)
{
    return transition(f, ri, si, GW_TRANSITION_CLEAR, ts);
}

static int command(struct fx *f, enum gw_alarm_cmd_type type, const char *target, const char *by,
                   const char *note, int minutes, int64_t now)
{
    struct gw_alarm_command c = {.type = type, .by = by, .note = note, .minutes = minutes};
    if (type == GW_CMD_OUT_OF_SERVICE || type == GW_CMD_IN_SERVICE) {
        c.sensor = target;
    } else {
        c.key = target;
    }
    f->err[0] = '\0';
    return gw_alarms_command(f->al, &c, now, f->out, OUT_MAX, f->err, sizeof(f->err));
}

static enum gw_alarm_state state_of(struct fx *f, int ri, int si)
{
    const struct gw_alarm *a = gw_alarms_get(f->al, ri, si);
    return a ? a->state : GW_ALARM_NORMAL;
}

/* ---- the (state, event) table ---- */

enum start {
    ST_NORMAL,
    ST_UNACKED,
    ST_UNACKED_OFF, /* latched, condition gone */
    ST_ACKED,
    ST_ACKED_OFF, /* latched, condition gone */
    ST_RTN,
    ST_SHELVED_ON,
    ST_SHELVED_OFF,
    ST_OOS_ON,
    ST_OOS_OFF,
};
static const char *const start_names[] = {
    "normal",      "unacked",     "unacked(off)", "acked",   "acked(off)",
    "rtn_unacked", "shelved(on)", "shelved(off)", "oos(on)", "oos(off)"};

enum event { EV_ON, EV_OFF, EV_ACK, EV_RESET, EV_SHELVE, EV_UNSHELVE, EV_EXPIRY, EV_OOS, EV_INS };
static const char *const event_names[] = {"on",       "off",    "ack", "reset", "shelve",
                                          "unshelve", "expiry", "oos", "ins"};

#define T_SHELVE (T0 + 3 * SEC) /* when setups shelve, for 5 minutes */
#define T_EXPIRY (T_SHELVE + 5 * MIN)
#define T_EVENT (T0 + 10 * SEC)

struct row {
    bool latch;
    enum start start;
    enum event event;
    int rc; /* changes, or -errno */
    enum gw_alarm_state state;
    bool cond;
    bool needs_reset;
    const char *transition; /* of the first change; NULL when none */
    enum gw_notify_action notify;
    const char *err; /* a part of the error message */
};

#define N GW_ALARM_NORMAL
#define U GW_ALARM_UNACKED
#define A GW_ALARM_ACKED
#define R GW_ALARM_RTN_UNACKED
#define SH GW_ALARM_SHELVED
#define OS GW_ALARM_OUT_OF_SERVICE
#define NONE GW_NOTIFY_NONE
#define RAISE GW_NOTIFY_RAISE
#define CLEAR GW_NOTIFY_CLEAR
#define STOP GW_NOTIFY_STOP
/* ok: one change; same: nothing changes (rc 0); bad: an error, nothing changes */
#define OK(l, s, e, st, c, nr, tr, no)                                                             \
    {                                                                                              \
        l, s, e, 1, st, c, nr, tr, no, NULL                                                        \
    }
#define SAME(l, s, e, st, c, nr)                                                                   \
    {                                                                                              \
        l, s, e, 0, st, c, nr, NULL, NONE, NULL                                                    \
    }
#define BAD(l, s, e, st, c, nr, rc, msg)                                                           \
    {                                                                                              \
        l, s, e, rc, st, c, nr, NULL, NONE, msg                                                    \
    }
#define WRONG "wrong state"

static const struct row table[] = {
    /* ---- unlatched ---- */
    OK(0, ST_NORMAL, EV_ON, U, 1, 0, "raise", RAISE),
    SAME(0, ST_NORMAL, EV_OFF, N, 0, 0),
    BAD(0, ST_NORMAL, EV_ACK, N, 0, 0, -EPERM, WRONG),
    BAD(0, ST_NORMAL, EV_RESET, N, 0, 0, -EPERM, WRONG),
    BAD(0, ST_NORMAL, EV_SHELVE, N, 0, 0, -EPERM, WRONG),
    BAD(0, ST_NORMAL, EV_UNSHELVE, N, 0, 0, -EPERM, WRONG),
    SAME(0, ST_NORMAL, EV_EXPIRY, N, 0, 0),
    SAME(0, ST_NORMAL, EV_OOS, N, 0, 0), /* success without change: later raises born oos */
    BAD(0, ST_NORMAL, EV_INS, N, 0, 0, -EPERM, "not out of service"),

    SAME(0, ST_UNACKED, EV_ON, U, 1, 0),
    OK(0, ST_UNACKED, EV_OFF, R, 0, 0, "clear", CLEAR),
    OK(0, ST_UNACKED, EV_ACK, A, 1, 0, "ack", STOP),
    BAD(0, ST_UNACKED, EV_RESET, U, 1, 0, -EPERM, "not latched"),
    OK(0, ST_UNACKED, EV_SHELVE, SH, 1, 0, "shelve", STOP),
    BAD(0, ST_UNACKED, EV_UNSHELVE, U, 1, 0, -EPERM, WRONG),
    SAME(0, ST_UNACKED, EV_EXPIRY, U, 1, 0),
    OK(0, ST_UNACKED, EV_OOS, OS, 1, 0, "out_of_service", STOP),
    BAD(0, ST_UNACKED, EV_INS, U, 1, 0, -EPERM, "not out of service"),

    SAME(0, ST_ACKED, EV_ON, A, 1, 0),
    OK(0, ST_ACKED, EV_OFF, N, 0, 0, "clear", CLEAR),
    BAD(0, ST_ACKED, EV_ACK, A, 1, 0, -EPERM, WRONG),
    BAD(0, ST_ACKED, EV_RESET, A, 1, 0, -EPERM, "not latched"),
    OK(0, ST_ACKED, EV_SHELVE, SH, 1, 0, "shelve", STOP),
    BAD(0, ST_ACKED, EV_UNSHELVE, A, 1, 0, -EPERM, WRONG),
    SAME(0, ST_ACKED, EV_EXPIRY, A, 1, 0),
    OK(0, ST_ACKED, EV_OOS, OS, 1, 0, "out_of_service", STOP),
    BAD(0, ST_ACKED, EV_INS, A, 1, 0, -EPERM, "not out of service"),

    OK(0, ST_RTN, EV_ON, U, 1, 0, "raise", RAISE),
    SAME(0, ST_RTN, EV_OFF, R, 0, 0),
    OK(0, ST_RTN, EV_ACK, N, 0, 0, "ack", STOP),
    BAD(0, ST_RTN, EV_RESET, R, 0, 0, -EPERM, "not latched"),
    OK(0, ST_RTN, EV_SHELVE, SH, 0, 0, "shelve", STOP),
    BAD(0, ST_RTN, EV_UNSHELVE, R, 0, 0, -EPERM, WRONG),
    SAME(0, ST_RTN, EV_EXPIRY, R, 0, 0),
    OK(0, ST_RTN, EV_OOS, OS, 0, 0, "out_of_service", STOP),
    BAD(0, ST_RTN, EV_INS, R, 0, 0, -EPERM, "not out of service"),

    SAME(0, ST_SHELVED_ON, EV_ON, SH, 1, 0),
    OK(0, ST_SHELVED_ON, EV_OFF, SH, 0, 0, "clear", NONE),
    BAD(0, ST_SHELVED_ON, EV_ACK, SH, 1, 0, -EPERM, WRONG),
    BAD(0, ST_SHELVED_ON, EV_RESET, SH, 1, 0, -EPERM, WRONG),
    BAD(0, ST_SHELVED_ON, EV_SHELVE, SH, 1, 0, -EPERM, WRONG),
    OK(0, ST_SHELVED_ON, EV_UNSHELVE, U, 1, 0, "unshelve", RAISE),
    OK(0, ST_SHELVED_ON, EV_EXPIRY, U, 1, 0, "unshelve", RAISE),
    OK(0, ST_SHELVED_ON, EV_OOS, OS, 1, 0, "out_of_service", STOP),
    BAD(0, ST_SHELVED_ON, EV_INS, SH, 1, 0, -EPERM, "not out of service"),

    OK(0, ST_SHELVED_OFF, EV_ON, SH, 1, 0, "raise", NONE),
    SAME(0, ST_SHELVED_OFF, EV_OFF, SH, 0, 0),
    BAD(0, ST_SHELVED_OFF, EV_ACK, SH, 0, 0, -EPERM, WRONG),
    BAD(0, ST_SHELVED_OFF, EV_RESET, SH, 0, 0, -EPERM, WRONG),
    BAD(0, ST_SHELVED_OFF, EV_SHELVE, SH, 0, 0, -EPERM, WRONG),
    OK(0, ST_SHELVED_OFF, EV_UNSHELVE, N, 0, 0, "unshelve", NONE),
    OK(0, ST_SHELVED_OFF, EV_EXPIRY, N, 0, 0, "unshelve", NONE),
    OK(0, ST_SHELVED_OFF, EV_OOS, OS, 0, 0, "out_of_service", STOP),
    BAD(0, ST_SHELVED_OFF, EV_INS, SH, 0, 0, -EPERM, "not out of service"),

    SAME(0, ST_OOS_ON, EV_ON, OS, 1, 0),
    OK(0, ST_OOS_ON, EV_OFF, OS, 0, 0, "clear", NONE),
    BAD(0, ST_OOS_ON, EV_ACK, OS, 1, 0, -EPERM, WRONG),
    BAD(0, ST_OOS_ON, EV_RESET, OS, 1, 0, -EPERM, WRONG),
    BAD(0, ST_OOS_ON, EV_SHELVE, OS, 1, 0, -EPERM, WRONG),
    BAD(0, ST_OOS_ON, EV_UNSHELVE, OS, 1, 0, -EPERM, WRONG),
    SAME(0, ST_OOS_ON, EV_EXPIRY, OS, 1, 0),
    BAD(0, ST_OOS_ON, EV_OOS, OS, 1, 0, -EPERM, "already out of service by wang"),
    OK(0, ST_OOS_ON, EV_INS, U, 1, 0, "in_service", RAISE),

    OK(0, ST_OOS_OFF, EV_ON, OS, 1, 0, "raise", NONE),
    SAME(0, ST_OOS_OFF, EV_OFF, OS, 0, 0),
    BAD(0, ST_OOS_OFF, EV_ACK, OS, 0, 0, -EPERM, WRONG),
    BAD(0, ST_OOS_OFF, EV_RESET, OS, 0, 0, -EPERM, WRONG),
    BAD(0, ST_OOS_OFF, EV_SHELVE, OS, 0, 0, -EPERM, WRONG),
    BAD(0, ST_OOS_OFF, EV_UNSHELVE, OS, 0, 0, -EPERM, WRONG),
    SAME(0, ST_OOS_OFF, EV_EXPIRY, OS, 0, 0),
    BAD(0, ST_OOS_OFF, EV_OOS, OS, 0, 0, -EPERM, "already out of service"),
    OK(0, ST_OOS_OFF, EV_INS, N, 0, 0, "in_service", NONE),

    /* ---- latched ---- */
    OK(1, ST_NORMAL, EV_ON, U, 1, 0, "raise", RAISE),
    SAME(1, ST_NORMAL, EV_OFF, N, 0, 0),
    BAD(1, ST_NORMAL, EV_ACK, N, 0, 0, -EPERM, WRONG),
    BAD(1, ST_NORMAL, EV_RESET, N, 0, 0, -EPERM, WRONG),
    BAD(1, ST_NORMAL, EV_SHELVE, N, 0, 0, -EPERM, WRONG),
    BAD(1, ST_NORMAL, EV_UNSHELVE, N, 0, 0, -EPERM, WRONG),
    SAME(1, ST_NORMAL, EV_EXPIRY, N, 0, 0),
    SAME(1, ST_NORMAL, EV_OOS, N, 0, 0),
    BAD(1, ST_NORMAL, EV_INS, N, 0, 0, -EPERM, "not out of service"),

    SAME(1, ST_UNACKED, EV_ON, U, 1, 0),
    OK(1, ST_UNACKED, EV_OFF, U, 0, 1, "clear", NONE), /* held: still escalating */
    OK(1, ST_UNACKED, EV_ACK, A, 1, 0, "ack", STOP),
    BAD(1, ST_UNACKED, EV_RESET, U, 1, 0, -EPERM, "condition still present"),
    OK(1, ST_UNACKED, EV_SHELVE, SH, 1, 0, "shelve", STOP),
    BAD(1, ST_UNACKED, EV_UNSHELVE, U, 1, 0, -EPERM, WRONG),
    SAME(1, ST_UNACKED, EV_EXPIRY, U, 1, 0),
    OK(1, ST_UNACKED, EV_OOS, OS, 1, 0, "out_of_service", STOP),
    BAD(1, ST_UNACKED, EV_INS, U, 1, 0, -EPERM, "not out of service"),

    OK(1, ST_UNACKED_OFF, EV_ON, U, 1, 0, "raise", NONE), /* never stopped escalating */
    SAME(1, ST_UNACKED_OFF, EV_OFF, U, 0, 1),
    OK(1, ST_UNACKED_OFF, EV_ACK, A, 0, 1, "ack", STOP),
    BAD(1, ST_UNACKED_OFF, EV_RESET, U, 0, 1, -EPERM, "acknowledge first"),
    OK(1, ST_UNACKED_OFF, EV_SHELVE, SH, 0, 0, "shelve", STOP),
    BAD(1, ST_UNACKED_OFF, EV_UNSHELVE, U, 0, 1, -EPERM, WRONG),
    SAME(1, ST_UNACKED_OFF, EV_EXPIRY, U, 0, 1),
    OK(1, ST_UNACKED_OFF, EV_OOS, OS, 0, 0, "out_of_service", STOP),
    BAD(1, ST_UNACKED_OFF, EV_INS, U, 0, 1, -EPERM, "not out of service"),

    SAME(1, ST_ACKED, EV_ON, A, 1, 0),
    OK(1, ST_ACKED, EV_OFF, A, 0, 1, "clear", NONE),
    BAD(1, ST_ACKED, EV_ACK, A, 1, 0, -EPERM, WRONG),
    BAD(1, ST_ACKED, EV_RESET, A, 1, 0, -EPERM, "condition still present"),
    OK(1, ST_ACKED, EV_SHELVE, SH, 1, 0, "shelve", STOP),
    BAD(1, ST_ACKED, EV_UNSHELVE, A, 1, 0, -EPERM, WRONG),
    SAME(1, ST_ACKED, EV_EXPIRY, A, 1, 0),
    OK(1, ST_ACKED, EV_OOS, OS, 1, 0, "out_of_service", STOP),
    BAD(1, ST_ACKED, EV_INS, A, 1, 0, -EPERM, "not out of service"),

    OK(1, ST_ACKED_OFF, EV_ON, U, 1, 0, "raise", RAISE), /* a new occurrence */
    SAME(1, ST_ACKED_OFF, EV_OFF, A, 0, 1),
    BAD(1, ST_ACKED_OFF, EV_ACK, A, 0, 1, -EPERM, WRONG),
    OK(1, ST_ACKED_OFF, EV_RESET, N, 0, 0, "reset", CLEAR),
    OK(1, ST_ACKED_OFF, EV_SHELVE, SH, 0, 0, "shelve", STOP),
    BAD(1, ST_ACKED_OFF, EV_UNSHELVE, A, 0, 1, -EPERM, WRONG),
    SAME(1, ST_ACKED_OFF, EV_EXPIRY, A, 0, 1),
    OK(1, ST_ACKED_OFF, EV_OOS, OS, 0, 0, "out_of_service", STOP),
    BAD(1, ST_ACKED_OFF, EV_INS, A, 0, 1, -EPERM, "not out of service"),

    /* rtn_unacked of a latched rule: restored (e.g. latch added by a reload) */
    OK(1, ST_RTN, EV_ON, U, 1, 0, "raise", RAISE),
    SAME(1, ST_RTN, EV_OFF, R, 0, 0),
    OK(1, ST_RTN, EV_ACK, A, 0, 1, "ack", STOP),
    BAD(1, ST_RTN, EV_RESET, R, 0, 0, -EPERM, "acknowledge first"),
    OK(1, ST_RTN, EV_SHELVE, SH, 0, 0, "shelve", STOP),
    BAD(1, ST_RTN, EV_UNSHELVE, R, 0, 0, -EPERM, WRONG),
    SAME(1, ST_RTN, EV_EXPIRY, R, 0, 0),
    OK(1, ST_RTN, EV_OOS, OS, 0, 0, "out_of_service", STOP),
    BAD(1, ST_RTN, EV_INS, R, 0, 0, -EPERM, "not out of service"),

    SAME(1, ST_SHELVED_ON, EV_ON, SH, 1, 0),
    OK(1, ST_SHELVED_ON, EV_OFF, SH, 0, 0, "clear", NONE),
    BAD(1, ST_SHELVED_ON, EV_ACK, SH, 1, 0, -EPERM, WRONG),
    BAD(1, ST_SHELVED_ON, EV_RESET, SH, 1, 0, -EPERM, WRONG),
    BAD(1, ST_SHELVED_ON, EV_SHELVE, SH, 1, 0, -EPERM, WRONG),
    OK(1, ST_SHELVED_ON, EV_UNSHELVE, U, 1, 0, "unshelve", RAISE),
    OK(1, ST_SHELVED_ON, EV_EXPIRY, U, 1, 0, "unshelve", RAISE),
    OK(1, ST_SHELVED_ON, EV_OOS, OS, 1, 0, "out_of_service", STOP),
    BAD(1, ST_SHELVED_ON, EV_INS, SH, 1, 0, -EPERM, "not out of service"),

    OK(1, ST_SHELVED_OFF, EV_ON, SH, 1, 0, "raise", NONE),
    SAME(1, ST_SHELVED_OFF, EV_OFF, SH, 0, 0),
    BAD(1, ST_SHELVED_OFF, EV_ACK, SH, 0, 0, -EPERM, WRONG),
    BAD(1, ST_SHELVED_OFF, EV_RESET, SH, 0, 0, -EPERM, WRONG),
    BAD(1, ST_SHELVED_OFF, EV_SHELVE, SH, 0, 0, -EPERM, WRONG),
    OK(1, ST_SHELVED_OFF, EV_UNSHELVE, N, 0, 0, "unshelve", NONE),
    OK(1, ST_SHELVED_OFF, EV_EXPIRY, N, 0, 0, "unshelve", NONE),
    OK(1, ST_SHELVED_OFF, EV_OOS, OS, 0, 0, "out_of_service", STOP),
    BAD(1, ST_SHELVED_OFF, EV_INS, SH, 0, 0, -EPERM, "not out of service"),

    SAME(1, ST_OOS_ON, EV_ON, OS, 1, 0),
    OK(1, ST_OOS_ON, EV_OFF, OS, 0, 0, "clear", NONE),
    BAD(1, ST_OOS_ON, EV_ACK, OS, 1, 0, -EPERM, WRONG),
    BAD(1, ST_OOS_ON, EV_RESET, OS, 1, 0, -EPERM, WRONG),
    BAD(1, ST_OOS_ON, EV_SHELVE, OS, 1, 0, -EPERM, WRONG),
    BAD(1, ST_OOS_ON, EV_UNSHELVE, OS, 1, 0, -EPERM, WRONG),
    SAME(1, ST_OOS_ON, EV_EXPIRY, OS, 1, 0),
    BAD(1, ST_OOS_ON, EV_OOS, OS, 1, 0, -EPERM, "already out of service"),
    OK(1, ST_OOS_ON, EV_INS, U, 1, 0, "in_service", RAISE),

    OK(1, ST_OOS_OFF, EV_ON, OS, 1, 0, "raise", NONE),
    SAME(1, ST_OOS_OFF, EV_OFF, OS, 0, 0),
    BAD(1, ST_OOS_OFF, EV_ACK, OS, 0, 0, -EPERM, WRONG),
    BAD(1, ST_OOS_OFF, EV_RESET, OS, 0, 0, -EPERM, WRONG),
    BAD(1, ST_OOS_OFF, EV_SHELVE, OS, 0, 0, -EPERM, WRONG),
    BAD(1, ST_OOS_OFF, EV_UNSHELVE, OS, 0, 0, -EPERM, WRONG),
    SAME(1, ST_OOS_OFF, EV_EXPIRY, OS, 0, 0),
    BAD(1, ST_OOS_OFF, EV_OOS, OS, 0, 0, -EPERM, "already out of service"),
    OK(1, ST_OOS_OFF, EV_INS, N, 0, 0, "in_service", NONE),
};
#define NROWS ((int)(sizeof(table) / sizeof(table[0])))

/* Drive the subject alarm into `start` by the events that lead there. */
static void reach(struct fx *f, bool latch, enum start start)
{
    int ri = latch ? R_SMOKE : R_HYD, si = latch ? S_SMOKE : S_HYD;
    const char *key = latch ? K_SMOKE : K_HYD;
    const char *sensor = f->sensors[si].id;
    if (start == ST_NORMAL) {
        return;
    }
    if (latch && start == ST_RTN) {
        /* A latched rule never reaches rtn_unacked by itself: restore one. */
        struct gw_alarm a = {.key = K_SMOKE, .state = GW_ALARM_RTN_UNACKED, .raised_at_ms = T0};
        assert_int_equal(gw_alarms_restore(f->al, &a), 0);
        return;
    }
    assert_int_equal(on(f, ri, si, T0), 1);
    switch (start) {
    case ST_UNACKED:
        break;
    case ST_UNACKED_OFF:
        assert_int_equal(off(f, ri, si, T0 + SEC), 1);
        break;
    case ST_ACKED:
        assert_int_equal(command(f, GW_CMD_ACK, key, "li", NULL, 0, T0 + SEC), 1);
        break;
    case ST_ACKED_OFF:
        assert_int_equal(command(f, GW_CMD_ACK, key, "li", NULL, 0, T0 + SEC), 1);
        assert_int_equal(off(f, ri, si, T0 + 2 * SEC), 1);
        break;
    case ST_RTN:
        assert_int_equal(off(f, ri, si, T0 + SEC), 1);
        break;
    case ST_SHELVED_ON:
    case ST_SHELVED_OFF:
        assert_int_equal(command(f, GW_CMD_SHELVE, key, "li", "repair", 5, T_SHELVE), 1);
        if (start == ST_SHELVED_OFF) {
            assert_int_equal(off(f, ri, si, T_SHELVE + SEC), 1);
        }
        break;
    case ST_OOS_ON:
    case ST_OOS_OFF:
        assert_int_equal(command(f, GW_CMD_OUT_OF_SERVICE, sensor, "wang", NULL, 0, T0 + SEC), 1);
        if (start == ST_OOS_OFF) {
            assert_int_equal(off(f, ri, si, T0 + 2 * SEC), 1);
        }
        break;
    case ST_NORMAL:
        break;
    }
}

static int apply(struct fx *f, bool latch, enum event ev)
{
    int ri = latch ? R_SMOKE : R_HYD, si = latch ? S_SMOKE : S_HYD;
    const char *key = latch ? K_SMOKE : K_HYD;
    const char *sensor = f->sensors[si].id;
    switch (ev) {
    case EV_ON:
        return on(f, ri, si, T_EVENT);
    case EV_OFF:
        return off(f, ri, si, T_EVENT);
    case EV_ACK:
        return command(f, GW_CMD_ACK, key, "zhang", "on my way", 0, T_EVENT);
    case EV_RESET:
        return command(f, GW_CMD_RESET, key, "zhang", NULL, 0, T_EVENT);
    case EV_SHELVE:
        return command(f, GW_CMD_SHELVE, key, "zhang", NULL, 30, T_EVENT);
    case EV_UNSHELVE:
        return command(f, GW_CMD_UNSHELVE, key, "zhang", NULL, 0, T_EVENT);
    case EV_EXPIRY:
        return gw_alarms_tick(f->al, T_EXPIRY, f->out, OUT_MAX);
    case EV_OOS:
        return command(f, GW_CMD_OUT_OF_SERVICE, sensor, "zhang", NULL, 0, T_EVENT);
    case EV_INS:
        return command(f, GW_CMD_IN_SERVICE, sensor, "zhang", NULL, 0, T_EVENT);
    }
    return -999;
}

static void check_row(const struct row *r)
{
    struct fx *f = NULL;
    setup((void **)&f);
    reach(f, r->latch, r->start);
    int ri = r->latch ? R_SMOKE : R_HYD, si = r->latch ? S_SMOKE : S_HYD;

    struct gw_alarm before = {0};
    const struct gw_alarm *a = gw_alarms_get(f->al, ri, si);
    bool had = a != NULL;
    if (had) {
        before = *a;
    }
    bool oos_before = gw_alarms_sensor_oos(f->al, si, NULL);

    int rc = apply(f, r->latch, r->event);
    char what[96];
    snprintf(what, sizeof(what), "%s %s + %s", r->latch ? "latched" : "unlatched",
             start_names[r->start], event_names[r->event]);
    if (rc != r->rc) {
        fail_msg("%s: rc %d, expected %d (%s)", what, rc, r->rc, f->err);
    }
    a = gw_alarms_get(f->al, ri, si);
    enum gw_alarm_state st = a ? a->state : GW_ALARM_NORMAL;
    if (st != r->state || (a ? a->condition : false) != r->cond ||
        (a ? a->needs_reset : false) != r->needs_reset) {
        fail_msg("%s: state %s cond %d needs_reset %d, expected %s %d %d", what,
                 gw_alarm_state_name(st), a ? a->condition : 0, a ? a->needs_reset : 0,
                 gw_alarm_state_name(r->state), r->cond, r->needs_reset);
    }
    if (rc < 0) {
        /* An error changes nothing and says why. */
        if (strstr(f->err, r->err) == NULL) {
            fail_msg("%s: error \"%s\" lacks \"%s\"", what, f->err, r->err);
        }
        assert_int_equal(a != NULL, had);
        if (had) {
            assert_memory_equal(a, &before, sizeof(before));
        }
        assert_int_equal(gw_alarms_sensor_oos(f->al, si, NULL), oos_before);
    } else if (rc == 0 && had && r->event != EV_OOS) {
        assert_memory_equal(a, &before, sizeof(before)); /* a duplicate is nothing */
    }
    if (rc > 0) {
        const struct gw_alarm_change *c = &f->out[0];
        if (strcmp(c->transition, r->transition) != 0 || c->notify != r->notify) {
            fail_msg("%s: change %s/%s, expected %s/%s", what, c->transition,
                     gw_notify_action_name(c->notify), r->transition,
                     gw_notify_action_name(r->notify));
        }
        assert_int_equal(c->alarm.state, r->state);
        assert_int_equal(c->alarm.condition, r->cond);
        assert_int_equal(c->alarm.rule_index, ri);
        assert_int_equal(c->alarm.sensor_index, si);
        assert_string_equal(c->alarm.key, r->latch ? K_SMOKE : K_HYD);
        bool operator= r->event >= EV_ACK && r->event != EV_EXPIRY;
        assert_string_equal(c->by, operator? "zhang" : "");
        assert_int_equal(c->ts_ms, r->event == EV_EXPIRY ? T_EXPIRY : T_EVENT);
        if (a != NULL) {
            assert_int_equal(c->alarm.state, a->state);
        }
    }
    teardown((void **)&f);
}

static void every_state_event_pair(void **state)
{
    (void)state;
    int seen[2][10][9] = {{{0}}};
    for (int i = 0; i < NROWS; i++) {
        check_row(&table[i]);
        seen[table[i].latch][table[i].start][table[i].event]++;
    }
    /* The table is complete: every event from every reachable start, once. */
    for (int l = 0; l < 2; l++) {
        for (int s = 0; s < 10; s++) {
            bool reachable = l == 1 || (s != ST_UNACKED_OFF && s != ST_ACKED_OFF);
            for (int e = 0; e < 9; e++) {
                if (seen[l][s][e] != (reachable ? 1 : 0)) {
                    fail_msg("table: latch %d %s + %s appears %d times", l, start_names[s],
                             event_names[e], seen[l][s][e]);
                }
            }
        }
    }
}

/* ---- latch ---- */

static void latched_alarm_needs_ack_and_reset(void **state)
{
    struct fx *f = *state;
    assert_int_equal(on(f, R_SMOKE, S_SMOKE, T0), 1);
    assert_int_equal(f->out[0].notify, GW_NOTIFY_RAISE);
    assert_int_equal(f->out[0].alarm.raised_at_ms, T0);
    /* The detector clears: still unacked, still escalating, waiting for a person. */
    assert_int_equal(off(f, R_SMOKE, S_SMOKE, T0 + 20 * SEC), 1);
    assert_string_equal(f->out[0].transition, "clear");
    assert_int_equal(f->out[0].notify, GW_NOTIFY_NONE);
    assert_int_equal(f->out[0].alarm.state, GW_ALARM_UNACKED);
    assert_true(f->out[0].alarm.needs_reset);
    assert_int_equal(f->out[0].alarm.cleared_at_ms, T0 + 20 * SEC);
    assert_int_equal(command(f, GW_CMD_RESET, K_SMOKE, "wang", NULL, 0, T0 + 30 * SEC), -EPERM);
    assert_non_null(strstr(f->err, "acknowledge first"));
    assert_int_equal(command(f, GW_CMD_ACK, K_SMOKE, "wang", "false alarm, dust", 0, T0 + MIN), 1);
    const struct gw_alarm *a = gw_alarms_get(f->al, R_SMOKE, S_SMOKE);
    assert_int_equal(a->state, GW_ALARM_ACKED);
    assert_true(a->needs_reset);
    assert_string_equal(a->acked_by, "wang");
    assert_string_equal(a->note, "false alarm, dust");
    assert_int_equal(a->acked_at_ms, T0 + MIN);
    assert_int_equal(command(f, GW_CMD_RESET, K_SMOKE, "wang", NULL, 0, T0 + 2 * MIN), 1);
    assert_string_equal(f->out[0].transition, "reset");
    assert_int_equal(f->out[0].notify, GW_NOTIFY_CLEAR);
    assert_int_equal(f->out[0].alarm.state, GW_ALARM_NORMAL);
    assert_false(f->out[0].alarm.needs_reset);
    assert_int_equal(state_of(f, R_SMOKE, S_SMOKE), GW_ALARM_NORMAL);
    /* Reset again: nothing to reset. */
    assert_int_equal(command(f, GW_CMD_RESET, K_SMOKE, "wang", NULL, 0, T0 + 3 * MIN), -EPERM);
    assert_non_null(strstr(f->err, "wrong state"));
    assert_non_null(strstr(f->err, "normal"));
}

static void latched_condition_back_after_ack_is_a_new_raise(void **state)
{
    struct fx *f = *state;
    on(f, R_SMOKE, S_SMOKE, T0);
    command(f, GW_CMD_ACK, K_SMOKE, "wang", "checking", 0, T0 + SEC);
    off(f, R_SMOKE, S_SMOKE, T0 + 2 * SEC);
    gw_alarms_set_level(f->al, R_SMOKE, S_SMOKE, 2);
    assert_int_equal(on(f, R_SMOKE, S_SMOKE, T0 + 3 * SEC), 1);
    const struct gw_alarm *a = &f->out[0].alarm;
    assert_int_equal(a->state, GW_ALARM_UNACKED);
    assert_int_equal(f->out[0].notify, GW_NOTIFY_RAISE);
    assert_int_equal(a->raised_at_ms, T0 + 3 * SEC);
    assert_int_equal(a->acked_at_ms, 0);
    assert_string_equal(a->acked_by, "");
    assert_string_equal(a->note, "");
    assert_int_equal(a->cleared_at_ms, 0);
    assert_int_equal(a->level, 0);
}

/* ---- shelving ---- */

static void shelve_expires_at_the_exact_millisecond(void **state)
{
    struct fx *f = *state;
    on(f, R_HYD, S_HYD, T0);
    int64_t t = T0 + 1234;
    assert_int_equal(command(f, GW_CMD_SHELVE, K_HYD, "li", "valve work", 1, t), 1);
    assert_int_equal(f->out[0].alarm.shelved_until_ms, t + MIN);
    assert_string_equal(f->out[0].alarm.shelved_by, "li");
    assert_string_equal(f->out[0].alarm.note, "valve work");
    assert_int_equal(f->out[0].notify, GW_NOTIFY_STOP);
    assert_int_equal(gw_alarms_tick(f->al, t + MIN - 1, f->out, OUT_MAX), 0);
    assert_int_equal(state_of(f, R_HYD, S_HYD), GW_ALARM_SHELVED);
    assert_int_equal(gw_alarms_tick(f->al, t + MIN, f->out, OUT_MAX), 1);
    const struct gw_alarm_change *c = &f->out[0];
    assert_string_equal(c->transition, "unshelve");
    assert_string_equal(c->by, "");
    assert_string_equal(c->note, "shelve expired");
    assert_int_equal(c->notify, GW_NOTIFY_RAISE);
    assert_int_equal(c->alarm.state, GW_ALARM_UNACKED);
    assert_int_equal(c->alarm.raised_at_ms, t + MIN); /* raised again */
    assert_int_equal(c->alarm.shelved_until_ms, 0);
    assert_string_equal(c->alarm.shelved_by, "");
    /* Once. */
    assert_int_equal(gw_alarms_tick(f->al, t + 2 * MIN, f->out, OUT_MAX), 0);
}

static void shelve_minutes_bounds(void **state)
{
    struct fx *f = *state;
    on(f, R_HYD, S_HYD, T0);
    const int bad[] = {0, -1, GW_SHELVE_MINUTES_MAX + 1, 1 << 30};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(command(f, GW_CMD_SHELVE, K_HYD, "li", NULL, bad[i], T0), -EINVAL);
        assert_non_null(strstr(f->err, "\"minutes\" must be 1..10080"));
        assert_int_equal(state_of(f, R_HYD, S_HYD), GW_ALARM_UNACKED);
    }
    assert_int_equal(command(f, GW_CMD_SHELVE, K_HYD, "li", NULL, GW_SHELVE_MINUTES_MAX, T0), 1);
    assert_int_equal(f->out[0].alarm.shelved_until_ms, T0 + 10080 * MIN);
}

static void clock_step_moves_shelve_expiry(void **state)
{
    struct fx *f = *state;
    on(f, R_HYD, S_HYD, T0);
    command(f, GW_CMD_SHELVE, K_HYD, "li", NULL, 10, T0);
    gw_alarms_shift_time(f->al, 3600 * SEC);
    assert_int_equal(gw_alarms_tick(f->al, T0 + 10 * MIN, f->out, OUT_MAX), 0);
    assert_int_equal(gw_alarms_tick(f->al, T0 + 3600 * SEC + 10 * MIN - 1, f->out, OUT_MAX), 0);
    assert_int_equal(gw_alarms_tick(f->al, T0 + 3600 * SEC + 10 * MIN, f->out, OUT_MAX), 1);
    /* Recorded times stay what they were. */
    assert_int_equal(f->out[0].alarm.raised_at_ms, T0 + 3600 * SEC + 10 * MIN);
}

static void tick_with_little_room_loses_nothing(void **state)
{
    struct fx *f = *state;
    /* Three alarms shelved until the same instant. */
    on(f, R_HYD, S_HYD, T0);
    on(f, R_BATT, S_SMOKE, T0);
    on(f, R_BATT, S_SMOKE2, T0);
    command(f, GW_CMD_SHELVE, K_HYD, "li", NULL, 1, T0);
    command(f, GW_CMD_SHELVE, "A-3F-smoke-301/smoke-battery-low", "li", NULL, 1, T0);
    command(f, GW_CMD_SHELVE, "B-2F-smoke-201/smoke-battery-low", "li", NULL, 1, T0);
    struct gw_alarm_change small[3];
    int total = 0, calls = 0, n;
    while ((n = gw_alarms_tick(f->al, T0 + MIN, small, 3)) > 0) {
        assert_int_equal(n, 1);
        assert_string_equal(small[0].transition, "unshelve");
        total += n;
        calls++;
    }
    assert_int_equal(total, 3);
    assert_int_equal(calls, 3);
    assert_int_equal(gw_alarms_tick(f->al, T0 + MIN, small, 2), -ENOSPC);
    assert_int_equal(gw_alarms_tick(f->al, T0 + MIN, NULL, 3), -ENOSPC);
    int counts[GW_NCLASSES][GW_ALARM_NSTATES];
    assert_int_equal(gw_alarms_count(f->al, counts), 3);
    assert_int_equal(counts[GW_CLASS_TROUBLE][GW_ALARM_UNACKED], 2);
}

/* ---- chattering ---- */

/* Raise and clear the hydrant alarm at t and t + 15 s; returns the raise's notify. */
static enum gw_notify_action flap(struct fx *f, int64_t t, enum gw_notify_action *clear_notify)
{
    int n = on(f, R_HYD, S_HYD, t);
    assert_true(n >= 1);
    enum gw_notify_action raise = f->out[0].notify;
    assert_int_equal(off(f, R_HYD, S_HYD, t + 15 * SEC), 1);
    if (clear_notify) {
        *clear_notify = f->out[0].notify;
    }
    return raise;
}

static void chattering_starts_after_count_raises_in_window(void **state)
{
    struct fx *f = *state;
    /* 5 raises (the limit) in the window: not chattering. */
    for (int k = 0; k < 5; k++) {
        assert_int_equal(flap(f, T0 + k * MIN, NULL), GW_NOTIFY_RAISE);
    }
    const struct gw_alarm *a = gw_alarms_get(f->al, R_HYD, S_HYD);
    assert_non_null(a); /* kept while normal: it has raise history */
    assert_false(a->chattering);
    assert_int_equal(a->nraises, 5);
    /* The 6th exactly one window after the 1st: the 1st no longer counts. */
    assert_int_equal(on(f, R_HYD, S_HYD, T0 + 10 * MIN), 1);
    assert_false(f->out[0].alarm.chattering);
    assert_int_equal(f->out[0].alarm.nraises, 5);
}

static void chattering_starts_one_ms_inside_the_window(void **state)
{
    struct fx *f = *state;
    for (int k = 0; k < 5; k++) {
        flap(f, T0 + k * MIN, NULL);
    }
    assert_int_equal(on(f, R_HYD, S_HYD, T0 + 10 * MIN - 1), 2);
    assert_string_equal(f->out[0].transition, "raise");
    assert_string_equal(f->out[1].transition, "chattering");
    assert_int_equal(f->out[1].notify, GW_NOTIFY_NONE);
    assert_true(f->out[0].alarm.chattering);
    assert_true(f->out[1].alarm.chattering);
    assert_int_equal(f->out[1].alarm.nraises, 6);
    /* The last notification (T0 + 4 min) is within the window: held back, not lost. */
    assert_int_equal(f->out[0].notify, GW_NOTIFY_NONE);
    assert_true(f->out[0].alarm.notify_pending);
    assert_int_equal(f->out[0].alarm.suppressed, 1);
    assert_int_equal(f->out[0].alarm.state, GW_ALARM_UNACKED);
}

static void chattering_rate_limits_and_ends_at_window_edge(void **state)
{
    struct fx *f = *state;
    enum gw_notify_action clr;
    /* Every minute from T0: raises 1..5 notified, the 6th (5 min) starts chattering. */
    for (int k = 0; k < 5; k++) {
        assert_int_equal(flap(f, T0 + k * MIN, &clr), GW_NOTIFY_RAISE);
        assert_int_equal(clr, GW_NOTIFY_CLEAR);
    }
    assert_int_equal(flap(f, T0 + 5 * MIN, &clr), GW_NOTIFY_NONE);
    assert_int_equal(clr, GW_NOTIFY_NONE);                  /* nobody heard of that raise */
    assert_int_equal(on(f, R_HYD, S_HYD, T0 + 6 * MIN), 1); /* 7th: stays raised, held back */
    assert_int_equal(f->out[0].notify, GW_NOTIFY_NONE);
    const struct gw_alarm *a = gw_alarms_get(f->al, R_HYD, S_HYD);
    assert_true(a->chattering);
    assert_true(a->notify_pending);
    assert_int_equal(a->suppressed, 2);
    assert_int_equal(a->notified_at_ms, T0 + 4 * MIN);

    /* Raises at 0..6 min. The window is 10 min: at 10 min the first leaves (6 left > 5). */
    assert_int_equal(gw_alarms_tick(f->al, T0 + 10 * MIN - 1, f->out, OUT_MAX), 0);
    assert_int_equal(gw_alarms_get(f->al, R_HYD, S_HYD)->nraises, 7);
    assert_int_equal(gw_alarms_tick(f->al, T0 + 10 * MIN, f->out, OUT_MAX), 0);
    assert_int_equal(gw_alarms_get(f->al, R_HYD, S_HYD)->nraises, 6);
    assert_int_equal(gw_alarms_tick(f->al, T0 + 11 * MIN - 1, f->out, OUT_MAX), 0);
    assert_true(gw_alarms_get(f->al, R_HYD, S_HYD)->chattering);
    /* At 11 min the second leaves: 5 = the limit, chattering ends, and the raise held
     * back since 6 min is told now (the alarm is still unacked). */
    assert_int_equal(gw_alarms_tick(f->al, T0 + 11 * MIN, f->out, OUT_MAX), 2);
    assert_string_equal(f->out[0].transition, "chattering");
    assert_false(f->out[0].alarm.chattering);
    assert_int_equal(f->out[0].notify, GW_NOTIFY_NONE);
    assert_string_equal(f->out[1].transition, "raise");
    assert_int_equal(f->out[1].notify, GW_NOTIFY_RAISE);
    assert_int_equal(f->out[1].alarm.state, GW_ALARM_UNACKED);
    assert_int_equal(f->out[1].alarm.raised_at_ms, T0 + 6 * MIN);
    assert_false(f->out[1].alarm.notify_pending);
    assert_int_equal(gw_alarms_tick(f->al, T0 + 12 * MIN, f->out, OUT_MAX), 0);
}

static void chattering_tells_one_raise_per_window(void **state)
{
    struct fx *f = *state;
    /* A flap every 30 s for 15 minutes. */
    int told = 0, clears_told = 0;
    for (int k = 0; k < 30; k++) {
        enum gw_notify_action clr;
        enum gw_notify_action r = flap(f, T0 + k * 30 * SEC, &clr);
        bool expect = k < 5 || k == 24; /* 5 before chattering; then 120 s + 600 s = k 24 */
        if ((r == GW_NOTIFY_RAISE) != expect) {
            fail_msg("flap %d: notify %s", k, gw_notify_action_name(r));
        }
        assert_int_equal(clr, expect ? GW_NOTIFY_CLEAR : GW_NOTIFY_NONE);
        told += r == GW_NOTIFY_RAISE;
        clears_told += clr == GW_NOTIFY_CLEAR;
    }
    assert_int_equal(told, 6);
    assert_int_equal(clears_told, 6);
    const struct gw_alarm *a = gw_alarms_get(f->al, R_HYD, S_HYD);
    assert_true(a->chattering);
    assert_int_equal(a->suppressed, 24);
    assert_false(a->notify_pending); /* each held-back raise cleared before being told */
    assert_int_equal(a->state, GW_ALARM_RTN_UNACKED);
    int64_t last = T0 + 29 * 30 * SEC;
    assert_int_equal(command(f, GW_CMD_ACK, K_HYD, "li", NULL, 0, last + MIN), 1);
    assert_int_equal(f->out[0].alarm.state, GW_ALARM_NORMAL);
    /* Quiet: chattering ends once <= 5 raises remain in the window, then the record goes. */
    assert_int_equal(gw_alarms_tick(f->al, last + 10 * MIN - 5 * 30 * SEC - 1, f->out, OUT_MAX), 0);
    assert_int_equal(gw_alarms_tick(f->al, last + 10 * MIN - 5 * 30 * SEC, f->out, OUT_MAX), 1);
    assert_string_equal(f->out[0].transition, "chattering");
    assert_int_equal(f->out[0].alarm.state, GW_ALARM_NORMAL);
    assert_non_null(gw_alarms_get(f->al, R_HYD, S_HYD));
    assert_int_equal(gw_alarms_tick(f->al, last + 10 * MIN, f->out, OUT_MAX), 0);
    assert_null(gw_alarms_get(f->al, R_HYD, S_HYD)); /* nothing left to remember */
}

static void chattering_off_when_configured_zero(void **state)
{
    struct fx *f = *state;
    f->cfg.alarms.chatter_count = 0;
    for (int k = 0; k < 20; k++) {
        assert_int_equal(flap(f, T0 + k * SEC * 20, NULL), GW_NOTIFY_RAISE);
    }
    const struct gw_alarm *a = gw_alarms_get(f->al, R_HYD, S_HYD);
    assert_int_equal(a->state, GW_ALARM_RTN_UNACKED);
    assert_false(a->chattering);
    assert_int_equal(a->nraises, 0);
    command(f, GW_CMD_ACK, K_HYD, "li", NULL, 0, T0 + 10 * MIN);
    assert_null(gw_alarms_get(f->al, R_HYD, S_HYD)); /* normal, no history kept */
}

/* ---- out of service ---- */

static void out_of_service_sensor(void **state)
{
    struct fx *f = *state;
    on(f, R_SMOKE, S_SMOKE, T0);
    on(f, R_BATT, S_SMOKE, T0);
    on(f, R_BATT, S_SMOKE2, T0);
    command(f, GW_CMD_ACK, "A-3F-smoke-301/smoke-battery-low", "li", NULL, 0, T0 + SEC);
    assert_int_equal(
        command(f, GW_CMD_OUT_OF_SERVICE, "A-3F-smoke-301", "wang", "detector swap", 0, T0 + MIN),
        2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(f->out[i].transition, "out_of_service");
        assert_int_equal(f->out[i].notify, GW_NOTIFY_STOP);
        assert_int_equal(f->out[i].alarm.state, GW_ALARM_OUT_OF_SERVICE);
        assert_int_equal(f->out[i].alarm.sensor_index, S_SMOKE);
        assert_string_equal(f->out[i].by, "wang");
        assert_string_equal(f->out[i].note, "detector swap");
    }
    struct gw_oos_sensor o;
    assert_true(gw_alarms_sensor_oos(f->al, S_SMOKE, &o));
    assert_string_equal(o.by, "wang");
    assert_int_equal(o.since_ms, T0 + MIN);
    assert_false(gw_alarms_sensor_oos(f->al, S_SMOKE2, NULL));
    assert_int_equal(gw_alarms_oos_sensors(f->al, &o, 1), 1);
    assert_int_equal(o.sensor_index, S_SMOKE);
    /* Another sensor is untouched. */
    assert_int_equal(state_of(f, R_BATT, S_SMOKE2), GW_ALARM_UNACKED);
    /* A raise for it later is born out of service, nobody told. */
    assert_int_equal(on(f, R_OFF, S_SMOKE, T0 + 2 * MIN), 1);
    assert_int_equal(f->out[0].alarm.state, GW_ALARM_OUT_OF_SERVICE);
    assert_int_equal(f->out[0].notify, GW_NOTIFY_NONE);
    assert_int_equal(f->out[0].alarm.raised_at_ms, T0 + 2 * MIN);
    /* The battery recovers while out of service. */
    assert_int_equal(off(f, R_BATT, S_SMOKE, T0 + 3 * MIN), 1);
    assert_int_equal(f->out[0].notify, GW_NOTIFY_NONE);
    int counts[GW_NCLASSES][GW_ALARM_NSTATES];
    assert_int_equal(gw_alarms_count(f->al, counts), 4);
    assert_int_equal(counts[GW_CLASS_ALARM][GW_ALARM_OUT_OF_SERVICE], 1);
    assert_int_equal(counts[GW_CLASS_TROUBLE][GW_ALARM_OUT_OF_SERVICE], 2);
    assert_int_equal(counts[GW_CLASS_TROUBLE][GW_ALARM_UNACKED], 1);
    /* Back in service: each re-evaluated. */
    assert_int_equal(command(f, GW_CMD_IN_SERVICE, "A-3F-smoke-301", "wang", NULL, 0, T0 + HOUR),
                     3);
    int raised = 0, normal = 0;
    for (int i = 0; i < 3; i++) {
        assert_string_equal(f->out[i].transition, "in_service");
        if (f->out[i].alarm.state == GW_ALARM_UNACKED) {
            assert_int_equal(f->out[i].notify, GW_NOTIFY_RAISE);
            assert_int_equal(f->out[i].alarm.raised_at_ms, T0 + HOUR);
            raised++;
        } else {
            assert_int_equal(f->out[i].alarm.state, GW_ALARM_NORMAL);
            assert_int_equal(f->out[i].alarm.rule_index, R_BATT);
            assert_int_equal(f->out[i].notify, GW_NOTIFY_NONE);
            normal++;
        }
    }
    assert_int_equal(raised, 2);
    assert_int_equal(normal, 1);
    assert_false(gw_alarms_sensor_oos(f->al, S_SMOKE, NULL));
    assert_int_equal(gw_alarms_oos_sensors(f->al, NULL, 0), 0);
    /* A raise now is notified again. */
    assert_int_equal(on(f, R_BATT, S_SMOKE, T0 + HOUR + SEC), 1);
    assert_int_equal(f->out[0].notify, GW_NOTIFY_RAISE);
}

/* ---- errors ---- */

static void command_errors_are_clear_and_change_nothing(void **state)
{
    struct fx *f = *state;
    on(f, R_HYD, S_HYD, T0);
    const struct gw_alarm before = *gw_alarms_get(f->al, R_HYD, S_HYD);
    char long_by[GW_NAME_MAX + 1], long_note[GW_NOTE_MAX + 1];
    memset(long_by, 'b', sizeof(long_by) - 1);
    long_by[sizeof(long_by) - 1] = '\0';
    memset(long_note, 'n', sizeof(long_note) - 1);
    long_note[sizeof(long_note) - 1] = '\0';
    struct {
        enum gw_alarm_cmd_type type;
        const char *target, *by, *note;
        int rc;
        const char *msg;
    } cases[] = {
        {GW_CMD_ACK, K_HYD, NULL, NULL, -EINVAL, "missing \"by\""},
        {GW_CMD_ACK, K_HYD, "", NULL, -EINVAL, "missing \"by\""},
        {GW_CMD_ACK, K_HYD, long_by, NULL, -EINVAL, "\"by\" is too long"},
        {GW_CMD_ACK, K_HYD, "li", long_note, -EINVAL, "\"note\" is too long"},
        {GW_CMD_ACK, NULL, "li", NULL, -EINVAL, "missing \"key\""},
        {GW_CMD_ACK, "", "li", NULL, -EINVAL, "missing \"key\""},
        {GW_CMD_ACK, "no-such-sensor/hydrant-pressure-low", "li", NULL, -ENOENT,
         "unknown alarm \"no-such-sensor/hydrant-pressure-low\""},
        {GW_CMD_ACK, "A-1F-hydrant-01/no-such-rule", "li", NULL, -ENOENT, "unknown alarm"},
        {GW_CMD_ACK, "A-1F-hydrant-01", "li", NULL, -ENOENT, "unknown alarm"},
        {GW_CMD_ACK, "A-1F-hydrant-01/", "li", NULL, -ENOENT, "unknown alarm"},
        {GW_CMD_ACK, "/hydrant-pressure-low", "li", NULL, -ENOENT, "unknown alarm"},
        /* the rule exists but does not apply to that sensor's kind */
        {GW_CMD_ACK, "A-1F-hydrant-01/smoke-detected", "li", NULL, -ENOENT, "unknown alarm"},
        {GW_CMD_UNSHELVE, K_HYD, "li", NULL, -EPERM, "wrong state: " K_HYD " is unacked"},
        {GW_CMD_OUT_OF_SERVICE, NULL, "li", NULL, -EINVAL, "missing \"sensor\""},
        {GW_CMD_OUT_OF_SERVICE, "nope", "li", NULL, -ENOENT, "unknown sensor \"nope\""},
        {GW_CMD_IN_SERVICE, "A-1F-hydrant-01", "li", NULL, -EPERM, "not out of service"},
        {(enum gw_alarm_cmd_type)42, K_HYD, "li", NULL, -EINVAL, "unknown command"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = command(f, cases[i].type, cases[i].target, cases[i].by, cases[i].note, 0, T0);
        if (rc != cases[i].rc || strstr(f->err, cases[i].msg) == NULL) {
            fail_msg("case %zu: rc %d err \"%s\", expected %d \"%s\"", i, rc, f->err, cases[i].rc,
                     cases[i].msg);
        }
        assert_memory_equal(gw_alarms_get(f->al, R_HYD, S_HYD), &before, sizeof(before));
        assert_int_equal(gw_alarms_oos_sensors(f->al, NULL, 0), 0);
    }
    /* A note of exactly the maximum is fine. */
    long_note[GW_NOTE_MAX - 1] = '\0';
    assert_int_equal(command(f, GW_CMD_ACK, K_HYD, "li", long_note, 0, T0), 1);
    assert_int_equal(strlen(f->out[0].note), GW_NOTE_MAX - 1);
    /* No room for the change: an error, nothing changed. */
    struct gw_alarm_command c = {.type = GW_CMD_SHELVE, .key = K_HYD, .by = "li", .minutes = 5};
    assert_int_equal(gw_alarms_command(f->al, &c, T0, f->out, 0, f->err, sizeof(f->err)), -ENOSPC);
    assert_int_equal(state_of(f, R_HYD, S_HYD), GW_ALARM_ACKED);
    /* NULL err is allowed. */
    c.minutes = 0;
    assert_int_equal(gw_alarms_command(f->al, &c, T0, f->out, OUT_MAX, NULL, 0), -EINVAL);
}

static void transition_errors(void **state)
{
    struct fx *f = *state;
    struct gw_alarm_transition t = {.rule_index = NR, .sensor_index = 0, .ts_ms = T0};
    assert_int_equal(gw_alarms_on_transition(f->al, &t, f->out, OUT_MAX), -EINVAL);
    t.rule_index = -1;
    assert_int_equal(gw_alarms_on_transition(f->al, &t, f->out, OUT_MAX), -EINVAL);
    t.rule_index = 0;
    t.sensor_index = NS;
    assert_int_equal(gw_alarms_on_transition(f->al, &t, f->out, OUT_MAX), -EINVAL);
    t.sensor_index = 0;
    assert_int_equal(gw_alarms_on_transition(f->al, &t, f->out, 1), -ENOSPC);
    assert_null(gw_alarms_get(f->al, 0, 0));
    assert_int_equal(gw_alarms_on_transition(f->al, NULL, f->out, OUT_MAX), -EINVAL);
}

/* ---- queries ---- */

static void lookups_iteration_and_names(void **state)
{
    struct fx *f = *state;
    on(f, R_HYD, S_HYD, T0);
    on(f, R_SMOKE, S_SMOKE2, T0);
    on(f, R_BATT, S_SMOKE2, T0);
    off(f, R_BATT, S_SMOKE2, T0 + SEC);
    command(f, GW_CMD_ACK, "B-2F-smoke-201/smoke-battery-low", "li", NULL, 0, T0 + 2 * SEC);
    /* The battery alarm is normal now: kept for its history, but not active. */
    const struct gw_alarm *b = gw_alarms_find(f->al, "B-2F-smoke-201/smoke-battery-low");
    assert_non_null(b);
    assert_int_equal(b->state, GW_ALARM_NORMAL);
    int n = 0, it = 0;
    const struct gw_alarm *a;
    while ((a = gw_alarms_next(f->al, &it)) != NULL) {
        assert_int_not_equal(a->state, GW_ALARM_NORMAL);
        n++;
    }
    assert_int_equal(n, 2);
    a = gw_alarms_find(f->al, "B-2F-smoke-201/smoke-detected");
    assert_non_null(a);
    assert_int_equal(a->rule_index, R_SMOKE);
    assert_int_equal(a->sensor_index, S_SMOKE2);
    assert_string_equal(a->key, "B-2F-smoke-201/smoke-detected");
    assert_null(gw_alarms_find(f->al, "A-3F-smoke-301/smoke-detected"));
    assert_null(gw_alarms_find(f->al, "garbage"));
    assert_null(gw_alarms_get(f->al, -1, 0));
    assert_null(gw_alarms_get(f->al, 0, NS));
    int ri = -1, si = -1;
    assert_int_equal(gw_alarms_parse_key(f->al, "A-3F-smoke-301/sensor-offline", &ri, &si), 0);
    assert_int_equal(ri, R_OFF);
    assert_int_equal(si, S_SMOKE);
    assert_int_equal(gw_alarms_parse_key(f->al, NULL, &ri, &si), -ENOENT);

    assert_int_equal(gw_alarms_set_level(f->al, R_HYD, S_HYD, 2), 0);
    assert_int_equal(gw_alarms_get(f->al, R_HYD, S_HYD)->level, 2);
    assert_int_equal(gw_alarms_set_level(f->al, R_BATT, S_SMOKE2, 1), -ENOENT); /* normal */
    assert_int_equal(gw_alarms_set_level(f->al, R_OFF, S_HYD, 1), -ENOENT);

    int counts[GW_NCLASSES][GW_ALARM_NSTATES];
    assert_int_equal(gw_alarms_count(f->al, counts), 2);
    assert_int_equal(counts[GW_CLASS_ALARM][GW_ALARM_UNACKED], 1);
    assert_int_equal(counts[GW_CLASS_SUPERVISORY][GW_ALARM_UNACKED], 1);
    assert_int_equal(counts[GW_CLASS_TROUBLE][GW_ALARM_NORMAL], 0);

    for (int t = GW_CMD_ACK; t <= GW_CMD_IN_SERVICE; t++) {
        assert_int_equal(gw_alarm_cmd_from_name(gw_alarm_cmd_name(t)), t);
    }
    assert_string_equal(gw_alarm_cmd_name(GW_CMD_OUT_OF_SERVICE), "out_of_service");
    assert_int_equal(gw_alarm_cmd_from_name("acknowledge"), -1);
    assert_int_equal(gw_alarm_cmd_from_name(NULL), -1);
    assert_string_equal(gw_notify_action_name(GW_NOTIFY_STOP), "stop");
}

/* ---- save / restore ---- */

/* The records and out-of-service set of one gw_alarms, as the lead would store them. */
struct saved {
    struct gw_alarm alarms[NR * NS];
    int nalarms;
    struct gw_oos_sensor oos[NS];
    int noos;
};

static void save(const struct gw_alarms *al, struct saved *s)
{
    s->nalarms = 0;
    int it = 0;
    const struct gw_alarm *a;
    while ((a = gw_alarms_next(al, &it)) != NULL) {
        s->alarms[s->nalarms++] = *a;
    }
    s->noos = gw_alarms_oos_sensors(al, s->oos, NS);
}

static struct gw_alarms *restore(const struct gw_config *cfg, const struct saved *s, bool oos_first)
{
    struct gw_alarms *al = gw_alarms_new(cfg);
    assert_non_null(al);
    for (int pass = 0; pass < 2; pass++) {
        if ((pass == 0) == oos_first) {
            for (int i = 0; i < s->noos; i++) {
                assert_int_equal(gw_alarms_restore_oos(al, s->oos[i].sensor_index, s->oos[i].by,
                                                       s->oos[i].since_ms),
                                 0);
            }
        } else {
            for (int i = 0; i < s->nalarms; i++) {
                struct gw_alarm a = s->alarms[i];
                a.rule_index = a.sensor_index = 99; /* ignored: the key decides */
                assert_int_equal(gw_alarms_restore(al, &a), 0);
            }
        }
    }
    return al;
}

static void build_rich_state(struct fx *f)
{
    /* chattering, unacked, with a held-back raise */
    for (int k = 0; k < 6; k++) {
        on(f, R_HYD, S_HYD, T0 + k * MIN);
        if (k < 5) {
            off(f, R_HYD, S_HYD, T0 + k * MIN + 10 * SEC);
        }
    }
    assert_true(gw_alarms_get(f->al, R_HYD, S_HYD)->notify_pending);
    /* latched, acked, condition gone: waits for reset */
    on(f, R_SMOKE, S_SMOKE2, T0);
    command(f, GW_CMD_ACK, "B-2F-smoke-201/smoke-detected", "li", "smoke from a kettle", 0,
            T0 + SEC);
    off(f, R_SMOKE, S_SMOKE2, T0 + 2 * SEC);
    gw_alarms_set_level(f->al, R_SMOKE, S_SMOKE2, 1);
    /* shelved */
    on(f, R_BATT, S_SMOKE2, T0);
    command(f, GW_CMD_SHELVE, "B-2F-smoke-201/smoke-battery-low", "wang", "batteries ordered", 60,
            T0 + 3 * SEC);
    /* out of service, one alarm with its condition gone */
    on(f, R_SMOKE, S_SMOKE, T0);
    on(f, R_OFF, S_SMOKE, T0);
    command(f, GW_CMD_OUT_OF_SERVICE, "A-3F-smoke-301", "zhao", NULL, 0, T0 + 4 * SEC);
    off(f, R_OFF, S_SMOKE, T0 + 5 * SEC);
}

/* Both sets give the same changes for the same inputs from now on. */
static void same_future(struct fx *f, struct gw_alarms *other)
{
    struct gw_alarm_change a[OUT_MAX], b[OUT_MAX];
    const int64_t times[] = {T0 + 9 * MIN, T0 + 11 * MIN, T0 + 14 * MIN, T0 + 63 * MIN};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int na = gw_alarms_tick(f->al, times[i], a, OUT_MAX);
        int nb = gw_alarms_tick(other, times[i], b, OUT_MAX);
        assert_int_equal(na, nb);
        for (int k = 0; k < na; k++) {
            /* Record order may differ; the changes for one tick are one per alarm here. */
            bool found = false;
            for (int j = 0; j < nb && !found; j++) {
                found = strcmp(a[k].alarm.key, b[j].alarm.key) == 0 &&
                        strcmp(a[k].transition, b[j].transition) == 0 &&
                        a[k].notify == b[j].notify && a[k].alarm.state == b[j].alarm.state;
            }
            assert_true(found);
        }
    }
    struct gw_alarm_command c = {
        .type = GW_CMD_IN_SERVICE, .sensor = "A-3F-smoke-301", .by = "zhao"};
    int na = gw_alarms_command(f->al, &c, T0 + 70 * MIN, a, OUT_MAX, NULL, 0);
    int nb = gw_alarms_command(other, &c, T0 + 70 * MIN, b, OUT_MAX, NULL, 0);
    assert_int_equal(na, 2);
    assert_int_equal(nb, 2);
}

static void save_restore_round_trip(void **state)
{
    struct fx *f = *state;
    build_rich_state(f);
    struct saved s;
    save(f->al, &s);
    assert_int_equal(s.nalarms, 5);
    assert_int_equal(s.noos, 1);
    for (int order = 0; order < 2; order++) {
        struct gw_alarms *r = restore(&f->cfg, &s, order == 0);
        struct saved s2;
        save(r, &s2);
        assert_int_equal(s2.nalarms, s.nalarms);
        for (int i = 0; i < s.nalarms; i++) {
            const struct gw_alarm *got = gw_alarms_find(r, s.alarms[i].key);
            assert_non_null(got);
            assert_memory_equal(got, &s.alarms[i], sizeof(*got));
        }
        assert_int_equal(s2.noos, 1);
        assert_int_equal(s2.oos[0].sensor_index, S_SMOKE);
        assert_string_equal(s2.oos[0].by, "zhao");
        assert_int_equal(s2.oos[0].since_ms, T0 + 4 * SEC);
        gw_alarms_free(r);
    }
    struct gw_alarms *r = restore(&f->cfg, &s, false);
    same_future(f, r);
    gw_alarms_free(r);
}

static void restore_checks_and_repairs(void **state)
{
    struct fx *f = *state;
    struct gw_alarm a = {.key = "gone-sensor/smoke-detected", .state = GW_ALARM_UNACKED};
    assert_int_equal(gw_alarms_restore(f->al, &a), -ENOENT);
    snprintf(a.key, sizeof(a.key), "%s", K_HYD);
    a.state = (enum gw_alarm_state)17;
    assert_int_equal(gw_alarms_restore(f->al, &a), -EINVAL);
    assert_null(gw_alarms_get(f->al, R_HYD, S_HYD));
    assert_int_equal(gw_alarms_restore(f->al, NULL), -ENOENT);
    /* An out-of-service alarm puts its sensor out of service. */
    a.state = GW_ALARM_OUT_OF_SERVICE;
    a.condition = true;
    assert_int_equal(gw_alarms_restore(f->al, &a), 0);
    assert_true(gw_alarms_sensor_oos(f->al, S_HYD, NULL));
    /* needs_reset follows the rule, shelve fields only when shelved, counts clamped. */
    struct gw_alarm b = {.key = K_SMOKE,
                         .state = GW_ALARM_ACKED,
                         .condition = false,
                         .needs_reset = false,
                         .shelved_until_ms = 5,
                         .nraises = 1000,
                         .level = -3};
    assert_int_equal(gw_alarms_restore(f->al, &b), 0);
    const struct gw_alarm *r = gw_alarms_get(f->al, R_SMOKE, S_SMOKE);
    assert_true(r->needs_reset);
    assert_int_equal(r->shelved_until_ms, 0);
    assert_int_equal(r->nraises, GW_ALARM_RAISE_RING);
    assert_int_equal(r->level, 0);
    /* A sensor restored out of service takes its alarms along. */
    assert_int_equal(gw_alarms_restore_oos(f->al, S_SMOKE, "zhao", T0), 0);
    assert_int_equal(state_of(f, R_SMOKE, S_SMOKE), GW_ALARM_OUT_OF_SERVICE);
    assert_int_equal(gw_alarms_restore_oos(f->al, NS, "zhao", T0), -EINVAL);
}

/* ---- reload ---- */

static void carry_over_by_key(void **state)
{
    struct fx *f = *state;
    build_rich_state(f);
    /* New config: the hydrant sensor is gone, rules reordered, smoke no longer latched. */
    struct fx *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    build_cfg(g);
    g->sensors[0] = f->sensors[S_SMOKE2];
    g->sensors[1] = f->sensors[S_SMOKE];
    g->cfg.nsensors = 2;
    g->rules[0] = f->rules[R_OFF];
    g->rules[1] = f->rules[R_BATT];
    g->rules[2] = f->rules[R_SMOKE];
    g->rules[2].latch = false;
    g->cfg.nrules = 3;
    g->al = gw_alarms_new(&g->cfg);
    assert_non_null(g->al);

    struct gw_alarm_change out[8];
    assert_int_equal(gw_alarms_carry_over(g->al, f->al, T0 + 6 * MIN, out, 1), -ENOSPC);
    int counts[GW_NCLASSES][GW_ALARM_NSTATES];
    assert_int_equal(gw_alarms_count(g->al, counts), 0);
    int n = gw_alarms_carry_over(g->al, f->al, T0 + 6 * MIN, out, 8);
    assert_int_equal(n, 2);
    bool gone = false, unlatched = false;
    for (int i = 0; i < n; i++) {
        assert_string_equal(out[i].transition, "clear");
        if (strcmp(out[i].alarm.key, K_HYD) == 0) {
            /* Indexes into the OLD config, so the caller can still describe it. */
            assert_int_equal(out[i].alarm.rule_index, R_HYD);
            assert_int_equal(out[i].alarm.sensor_index, S_HYD);
            assert_int_equal(out[i].alarm.state, GW_ALARM_NORMAL);
            assert_string_equal(out[i].note, "removed from the config");
            /* its raise was held back by chattering: nobody to tell */
            assert_int_equal(out[i].notify, GW_NOTIFY_NONE);
            gone = true;
        } else {
            assert_string_equal(out[i].alarm.key, "B-2F-smoke-201/smoke-detected");
            assert_int_equal(out[i].alarm.rule_index, 2);
            assert_int_equal(out[i].alarm.sensor_index, 0);
            assert_int_equal(out[i].alarm.state, GW_ALARM_NORMAL); /* acked + cleared */
            assert_int_equal(out[i].notify, GW_NOTIFY_CLEAR);
            unlatched = true;
        }
    }
    assert_true(gone && unlatched);
    const struct gw_alarm *a = gw_alarms_find(g->al, "B-2F-smoke-201/smoke-battery-low");
    assert_non_null(a);
    assert_int_equal(a->state, GW_ALARM_SHELVED);
    assert_int_equal(a->rule_index, 1);
    assert_int_equal(a->sensor_index, 0);
    assert_string_equal(a->note, "batteries ordered");
    a = gw_alarms_find(g->al, "A-3F-smoke-301/smoke-detected");
    assert_non_null(a);
    assert_int_equal(a->state, GW_ALARM_OUT_OF_SERVICE);
    assert_int_equal(a->rule_index, 2);
    assert_int_equal(a->sensor_index, 1);
    struct gw_oos_sensor o;
    assert_true(gw_alarms_sensor_oos(g->al, 1, &o));
    assert_string_equal(o.by, "zhao");
    assert_false(gw_alarms_sensor_oos(g->al, 0, NULL));
    /* The carried alarms live on under the new config. */
    assert_int_equal(gw_alarms_tick(g->al, T0 + 3 * SEC + 60 * MIN, f->out, OUT_MAX), 1);
    assert_string_equal(f->out[0].transition, "unshelve");
    gw_alarms_free(g->al);
    free(g);
}

/* ---- system alarms ---- */

#define K_PATH "gateway/path-self-test"
#define K_FAIL "gateway/self-test-failed"
#define K_BUS "bus-rs485_1/bus-offline"

static int sys_on(struct fx *f, const char *key, const char *name, bool test, int64_t ts)
{
    const struct gw_value v = {.type = GW_VALUE_NUMBER, .num = (double)ts / SEC};
    return gw_alarms_system_raise(f->al, key, name, GW_CLASS_TROUBLE, &v, test, ts, f->out,
                                  OUT_MAX);
}

static int sys_off(struct fx *f, const char *key, int64_t ts)
{
    return gw_alarms_system_clear(f->al, key, ts, f->out, OUT_MAX);
}

static enum gw_alarm_state sys_state(struct fx *f, const char *key)
{
    const struct gw_alarm *a = gw_alarms_find(f->al, key);
    return a ? a->state : GW_ALARM_NORMAL;
}

static void expect_change(const struct gw_alarm_change *c, const char *transition,
                          enum gw_alarm_state st, enum gw_notify_action notify)
{
    assert_string_equal(c->transition, transition);
    assert_int_equal(c->alarm.state, st);
    assert_int_equal(c->notify, notify);
}

static void system_alarm_lifecycle(void **state)
{
    struct fx *f = *state;
    assert_int_equal(sys_on(f, K_PATH, "path self-test", true, T0), 1);
    expect_change(&f->out[0], "raise", GW_ALARM_UNACKED, GW_NOTIFY_RAISE);
    const struct gw_alarm *a = &f->out[0].alarm;
    assert_string_equal(a->key, K_PATH);
    assert_true(a->system);
    assert_true(a->test);
    assert_true(a->condition);
    assert_int_equal(a->rule_index, -1);
    assert_int_equal(a->sensor_index, -1);
    assert_int_equal(a->alarm_class, GW_CLASS_TROUBLE);
    assert_string_equal(a->name, "path self-test");
    assert_int_equal(a->raised_at_ms, T0);
    assert_float_equal(a->value.num, (double)T0 / SEC, 0);
    assert_string_equal(f->out[0].by, "");
    assert_int_equal(f->out[0].ts_ms, T0);
    /* A duplicate is nothing. */
    assert_int_equal(sys_on(f, K_PATH, "path self-test", true, T0 + SEC), 0);
    assert_int_equal(gw_alarms_find(f->al, K_PATH)->raised_at_ms, T0);
    /* Not a rule alarm: no indexes. */
    int ri, si;
    assert_int_equal(gw_alarms_parse_key(f->al, K_PATH, &ri, &si), -ENOENT);
    /* Listed and counted with the rule alarms. */
    on(f, R_HYD, S_HYD, T0);
    int counts[GW_NCLASSES][GW_ALARM_NSTATES];
    assert_int_equal(gw_alarms_count(f->al, counts), 2);
    assert_int_equal(counts[GW_CLASS_TROUBLE][GW_ALARM_UNACKED], 1);
    assert_int_equal(counts[GW_CLASS_SUPERVISORY][GW_ALARM_UNACKED], 1);
    int it = 0, n = 0, nsys = 0;
    while ((a = gw_alarms_next(f->al, &it)) != NULL) {
        n++;
        nsys += a->system;
    }
    assert_int_equal(n, 2);
    assert_int_equal(nsys, 1);
    /* The escalation level, by key. */
    assert_int_equal(gw_alarms_set_level_key(f->al, K_PATH, 1), 0);
    assert_int_equal(gw_alarms_find(f->al, K_PATH)->level, 1);
    assert_int_equal(gw_alarms_set_level_key(f->al, K_HYD, 2), 0);
    assert_int_equal(gw_alarms_get(f->al, R_HYD, S_HYD)->level, 2);
    assert_int_equal(gw_alarms_set_level_key(f->al, K_FAIL, 1), -ENOENT);
    assert_int_equal(gw_alarms_set_level_key(f->al, NULL, 1), -ENOENT);

    /* Reset: never latched, in any state. */
    assert_int_equal(command(f, GW_CMD_RESET, K_PATH, "li", NULL, 0, T0 + SEC), -EPERM);
    assert_non_null(strstr(f->err, "not latched"));
    assert_int_equal(sys_state(f, K_PATH), GW_ALARM_UNACKED);
    /* ack: unacked -> acked; the clear then ends it. */
    assert_int_equal(command(f, GW_CMD_ACK, K_PATH, "li", "path checked", 0, T0 + 2 * SEC), 1);
    expect_change(&f->out[0], "ack", GW_ALARM_ACKED, GW_NOTIFY_STOP);
    assert_string_equal(f->out[0].alarm.acked_by, "li");
    assert_string_equal(f->out[0].note, "path checked");
    assert_int_equal(command(f, GW_CMD_RESET, K_PATH, "li", NULL, 0, T0 + SEC), -EPERM);
    assert_non_null(strstr(f->err, "not latched"));
    assert_int_equal(sys_off(f, K_PATH, T0 + 3 * SEC), 1);
    expect_change(&f->out[0], "clear", GW_ALARM_NORMAL, GW_NOTIFY_CLEAR);
    assert_false(f->out[0].alarm.condition);
    assert_int_equal(f->out[0].alarm.cleared_at_ms, T0 + 3 * SEC);
    /* The clear keeps the raise's value. */
    assert_float_equal(f->out[0].alarm.value.num, (double)T0 / SEC, 0);
    assert_int_equal(sys_off(f, K_PATH, T0 + 4 * SEC), 0); /* duplicate */
    /* Normal: kept for its chatter history, not active; ack is the wrong state. */
    assert_int_equal(sys_state(f, K_PATH), GW_ALARM_NORMAL);
    assert_int_equal(command(f, GW_CMD_ACK, K_PATH, "li", NULL, 0, T0 + 5 * SEC), -EPERM);
    assert_non_null(strstr(f->err, "wrong state"));
    assert_int_equal(gw_alarms_set_level_key(f->al, K_PATH, 2), -ENOENT);

    /* A real raise this time: test is per occurrence. clear -> rtn_unacked, ack -> normal. */
    assert_int_equal(sys_on(f, K_PATH, "path self-test", false, T0 + MIN), 1);
    expect_change(&f->out[0], "raise", GW_ALARM_UNACKED, GW_NOTIFY_RAISE);
    assert_false(f->out[0].alarm.test);
    assert_int_equal(f->out[0].alarm.level, 0); /* a fresh raise escalates from the start */
    assert_string_equal(f->out[0].alarm.acked_by, "");
    assert_int_equal(sys_off(f, K_PATH, T0 + MIN + SEC), 1);
    expect_change(&f->out[0], "clear", GW_ALARM_RTN_UNACKED, GW_NOTIFY_CLEAR);
    assert_int_equal(command(f, GW_CMD_ACK, K_PATH, "wang", NULL, 0, T0 + MIN + 2 * SEC), 1);
    expect_change(&f->out[0], "ack", GW_ALARM_NORMAL, GW_NOTIFY_STOP);

    /* shelve / unshelve, and the condition coming and going while shelved. */
    assert_int_equal(command(f, GW_CMD_SHELVE, K_PATH, "li", NULL, 5, T0 + 2 * MIN), -EPERM);
    sys_on(f, K_PATH, "path self-test", false, T0 + 2 * MIN);
    assert_int_equal(command(f, GW_CMD_SHELVE, K_PATH, "li", "known", 5, T0 + 2 * MIN), 1);
    expect_change(&f->out[0], "shelve", GW_ALARM_SHELVED, GW_NOTIFY_STOP);
    assert_int_equal(f->out[0].alarm.shelved_until_ms, T0 + 7 * MIN);
    assert_int_equal(sys_off(f, K_PATH, T0 + 3 * MIN), 1);
    expect_change(&f->out[0], "clear", GW_ALARM_SHELVED, GW_NOTIFY_NONE);
    assert_int_equal(sys_on(f, K_PATH, "path self-test", true, T0 + 4 * MIN), 1);
    expect_change(&f->out[0], "raise", GW_ALARM_SHELVED, GW_NOTIFY_NONE);
    assert_int_equal(command(f, GW_CMD_UNSHELVE, K_PATH, "li", NULL, 0, T0 + 5 * MIN), 1);
    expect_change(&f->out[0], "unshelve", GW_ALARM_UNACKED, GW_NOTIFY_RAISE);
    assert_int_equal(f->out[0].alarm.raised_at_ms, T0 + 5 * MIN);
    assert_true(f->out[0].alarm.test); /* the condition that is on now came from a test */
    assert_int_equal(command(f, GW_CMD_UNSHELVE, K_PATH, "li", NULL, 0, T0 + 5 * MIN), -EPERM);
    /* The shelve expiry with the condition gone: back to normal. */
    command(f, GW_CMD_SHELVE, K_PATH, "li", NULL, 1, T0 + 5 * MIN);
    sys_off(f, K_PATH, T0 + 5 * MIN + SEC);
    assert_int_equal(gw_alarms_tick(f->al, T0 + 6 * MIN - 1, f->out, OUT_MAX), 0);
    assert_int_equal(gw_alarms_tick(f->al, T0 + 6 * MIN, f->out, OUT_MAX), 1);
    expect_change(&f->out[0], "unshelve", GW_ALARM_NORMAL, GW_NOTIFY_NONE);
    assert_string_equal(f->out[0].alarm.key, K_PATH);

    /* A sensor's out_of_service / in_service never touches a system alarm. */
    sys_on(f, K_FAIL, "self-test failed", false, T0 + 7 * MIN);
    assert_int_equal(
        command(f, GW_CMD_OUT_OF_SERVICE, "A-1F-hydrant-01", "zhao", NULL, 0, T0 + 8 * MIN), 1);
    assert_string_equal(f->out[0].alarm.key, K_HYD);
    assert_int_equal(sys_state(f, K_FAIL), GW_ALARM_UNACKED);
    assert_int_equal(
        command(f, GW_CMD_IN_SERVICE, "A-1F-hydrant-01", "zhao", NULL, 0, T0 + 9 * MIN), 1);
    assert_string_equal(f->out[0].alarm.key, K_HYD);
    assert_int_equal(sys_state(f, K_FAIL), GW_ALARM_UNACKED);
    /* Name and class are taken at every raise. */
    sys_off(f, K_FAIL, T0 + 10 * MIN);
    struct gw_value none = {.type = GW_VALUE_NONE};
    assert_int_equal(gw_alarms_system_raise(f->al, K_FAIL, "自检失败", GW_CLASS_SUPERVISORY, NULL,
                                            false, T0 + 11 * MIN, f->out, OUT_MAX),
                     1);
    assert_string_equal(f->out[0].alarm.name, "自检失败");
    assert_int_equal(f->out[0].alarm.alarm_class, GW_CLASS_SUPERVISORY);
    assert_int_equal(f->out[0].alarm.value.type, none.type); /* NULL value: none */
    assert_int_equal(f->out[0].alarm.state, GW_ALARM_UNACKED);
}

static void system_alarm_chatters_like_a_rule(void **state)
{
    struct fx *f = *state;
    /* 5 raises within the window: the limit, not chattering. */
    for (int k = 0; k < 5; k++) {
        assert_int_equal(sys_on(f, K_BUS, "bus rs485_1 offline", false, T0 + k * MIN), 1);
        assert_int_equal(f->out[0].notify, GW_NOTIFY_RAISE);
        assert_int_equal(sys_off(f, K_BUS, T0 + k * MIN + SEC), 1);
    }
    assert_int_equal(sys_on(f, K_BUS, "bus rs485_1 offline", false, T0 + 5 * MIN), 2);
    assert_string_equal(f->out[1].transition, "chattering");
    assert_true(f->out[1].alarm.chattering);
    assert_int_equal(f->out[0].notify, GW_NOTIFY_NONE); /* held back: told at most once a window */
    assert_true(f->out[0].alarm.notify_pending);
    /* Told when chattering ends: the first raise leaves the window at T0 + 10 min. */
    assert_int_equal(gw_alarms_tick(f->al, T0 + 10 * MIN - 1, f->out, OUT_MAX), 0);
    assert_int_equal(gw_alarms_tick(f->al, T0 + 10 * MIN, f->out, OUT_MAX), 2);
    expect_change(&f->out[0], "chattering", GW_ALARM_UNACKED, GW_NOTIFY_NONE);
    assert_false(f->out[0].alarm.chattering);
    expect_change(&f->out[1], "raise", GW_ALARM_UNACKED, GW_NOTIFY_RAISE);
    assert_string_equal(f->out[1].alarm.key, K_BUS);
}

static void system_alarm_errors_change_nothing(void **state)
{
    struct fx *f = *state;
    char long_key[GW_KEY_MAX + 1];
    memset(long_key, 'a', sizeof(long_key) - 1);
    long_key[7] = '/';
    long_key[GW_KEY_MAX] = '\0'; /* GW_KEY_MAX bytes: one too many */
    const char *bad_keys[] = {
        NULL,
        "",
        "gateway",
        "gateway/",
        "/path-self-test",
        "gate way/path-self-test",
        "gateway/Path-Self-Test",
        "gateway/path_self_test",
        "gateway/a/b",
        "网关/path-self-test",
        "A-3F-smoke-301/path-self-test", /* a sensor's id: the rules' namespace */
        "A-3F-smoke-301/smoke-detected",
        long_key,
    };
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        if (sys_on(f, bad_keys[i], "x", false, T0) != -EINVAL ||
            sys_off(f, bad_keys[i], T0) != -EINVAL) {
            fail_msg("key %zu \"%s\" accepted", i, bad_keys[i] ? bad_keys[i] : "(null)");
        }
    }
    long_key[GW_KEY_MAX - 1] = '\0'; /* the longest that fits */
    assert_int_equal(sys_on(f, long_key, "x", false, T0), 1);
    assert_int_equal(strlen(f->out[0].alarm.key), GW_KEY_MAX - 1);
    assert_int_equal(sys_on(f, "bus-A.b_9/bus-offline", "x", false, T0), 1);
    char long_name[sizeof(((struct gw_alarm *)0)->name) + 1];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const char *bad_names[] = {
        NULL, "", long_name, "bad \xff utf-8", "\xc0\xaf", "\xed\xa0\x80", "cut \xe7\x81"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        if (sys_on(f, K_PATH, bad_names[i], false, T0) != -EINVAL) {
            fail_msg("name %zu accepted", i);
        }
    }
    long_name[sizeof(long_name) - 2] = '\0'; /* exactly fits */
    assert_int_equal(sys_on(f, K_FAIL, long_name, false, T0), 1);
    assert_int_equal(gw_alarms_system_raise(f->al, K_PATH, "x", (enum gw_alarm_class)GW_NCLASSES,
                                            NULL, false, T0, f->out, OUT_MAX),
                     -EINVAL);
    assert_int_equal(gw_alarms_system_raise(f->al, K_PATH, "x", (enum gw_alarm_class) - 1, NULL,
                                            false, T0, f->out, OUT_MAX),
                     -EINVAL);
    assert_int_equal(gw_alarms_system_raise(f->al, K_PATH, "x", GW_CLASS_TROUBLE, NULL, false, T0,
                                            f->out, GW_ALARMS_TRANSITION_CHANGES - 1),
                     -ENOSPC);
    assert_int_equal(gw_alarms_system_raise(f->al, K_PATH, "x", GW_CLASS_TROUBLE, NULL, false, T0,
                                            NULL, OUT_MAX),
                     -ENOSPC);
    assert_int_equal(gw_alarms_system_clear(f->al, K_FAIL, T0, f->out, 1), -ENOSPC);
    assert_int_equal(sys_state(f, K_FAIL), GW_ALARM_UNACKED); /* the failed clear changed nothing */
    /* Nothing was made by the failures. */
    assert_null(gw_alarms_find(f->al, K_PATH));
    int counts[GW_NCLASSES][GW_ALARM_NSTATES];
    assert_int_equal(gw_alarms_count(f->al, counts), 3);
    /* A clear of an alarm never raised is a duplicate; commands on it: unknown. */
    assert_int_equal(sys_off(f, K_PATH, T0), 0);
    assert_int_equal(command(f, GW_CMD_ACK, K_PATH, "li", NULL, 0, T0), -ENOENT);
    assert_non_null(strstr(f->err, "unknown alarm \"" K_PATH "\""));
    assert_int_equal(command(f, GW_CMD_SHELVE, K_PATH, "li", NULL, 5, T0), -ENOENT);
    assert_int_equal(command(f, GW_CMD_RESET, K_PATH, "li", NULL, 0, T0), -ENOENT);
    /* A system key is not a sensor for out_of_service. */
    assert_int_equal(command(f, GW_CMD_OUT_OF_SERVICE, "gateway", "li", NULL, 0, T0), -ENOENT);
}

static void rule_alarm_test_flag(void **state)
{
    struct fx *f = *state;
    struct gw_alarm_transition t = {.rule_index = R_HYD,
                                    .sensor_index = S_HYD,
                                    .type = GW_TRANSITION_RAISE,
                                    .ts_ms = T0,
                                    .test = true};
    assert_int_equal(gw_alarms_on_transition(f->al, &t, f->out, OUT_MAX), 1);
    assert_true(f->out[0].alarm.test);
    assert_false(f->out[0].alarm.system);
    assert_string_equal(f->out[0].alarm.name, "hydrant pressure low");
    assert_int_equal(f->out[0].alarm.alarm_class, GW_CLASS_SUPERVISORY);
    off(f, R_HYD, S_HYD, T0 + SEC); /* rtn_unacked */
    /* A real raise of a returned test alarm: a new occurrence, real. */
    assert_int_equal(on(f, R_HYD, S_HYD, T0 + 2 * SEC), 1);
    assert_false(f->out[0].alarm.test);
    /* Latched smoke, real and unacked, condition gone: a test press keeps it real. */
    on(f, R_SMOKE, S_SMOKE, T0);
    off(f, R_SMOKE, S_SMOKE, T0 + SEC);
    t = (struct gw_alarm_transition){.rule_index = R_SMOKE,
                                     .sensor_index = S_SMOKE,
                                     .type = GW_TRANSITION_RAISE,
                                     .ts_ms = T0 + 2 * SEC,
                                     .test = true};
    assert_int_equal(gw_alarms_on_transition(f->al, &t, f->out, OUT_MAX), 1);
    expect_change(&f->out[0], "raise", GW_ALARM_UNACKED, GW_NOTIFY_NONE);
    assert_false(f->out[0].alarm.test);
    /* A test alarm that a real one follows while still unacked (latched): real from then on. */
    t.sensor_index = S_SMOKE2;
    gw_alarms_on_transition(f->al, &t, f->out, OUT_MAX);
    assert_true(f->out[0].alarm.test);
    off(f, R_SMOKE, S_SMOKE2, T0 + 3 * SEC);
    on(f, R_SMOKE, S_SMOKE2, T0 + 4 * SEC);
    assert_false(f->out[0].alarm.test);
    /* Born out of service from a test. */
    command(f, GW_CMD_OUT_OF_SERVICE, "A-1F-hydrant-01", "zhao", NULL, 0, T0 + MIN);
    t = (struct gw_alarm_transition){.rule_index = R_OFF,
                                     .sensor_index = S_HYD,
                                     .type = GW_TRANSITION_RAISE,
                                     .ts_ms = T0 + 2 * MIN,
                                     .test = true};
    gw_alarms_on_transition(f->al, &t, f->out, OUT_MAX);
    expect_change(&f->out[0], "raise", GW_ALARM_OUT_OF_SERVICE, GW_NOTIFY_NONE);
    assert_true(f->out[0].alarm.test);
}

/* Every kind of system alarm state, next to rule alarms. */
static void build_system_state(struct fx *f)
{
    /* chattering, with a held-back raise */
    for (int k = 0; k < 6; k++) {
        sys_on(f, K_BUS, "bus rs485_1 offline", false, T0 + k * MIN);
        if (k < 5) {
            sys_off(f, K_BUS, T0 + k * MIN + 10 * SEC);
        }
    }
    assert_true(gw_alarms_find(f->al, K_BUS)->notify_pending);
    /* a test, acked, level reached */
    sys_on(f, K_PATH, "path self-test", true, T0);
    command(f, GW_CMD_ACK, K_PATH, "li", "daily test", 0, T0 + SEC);
    gw_alarms_set_level_key(f->al, K_PATH, 1);
    /* shelved */
    sys_on(f, K_FAIL, "self-test failed", false, T0);
    command(f, GW_CMD_SHELVE, K_FAIL, "wang", "router swap", 60, T0 + 2 * SEC);
    /* rtn_unacked */
    sys_on(f, "forwarder-0016C001FF10A235/forwarder-offline", "forwarder offline", false, T0);
    sys_off(f, "forwarder-0016C001FF10A235/forwarder-offline", T0 + 3 * SEC);
    /* and a rule alarm on a sensor out of service */
    on(f, R_SMOKE, S_SMOKE, T0);
    command(f, GW_CMD_OUT_OF_SERVICE, "A-3F-smoke-301", "zhao", NULL, 0, T0 + 4 * SEC);
}

static void system_alarms_save_restore_round_trip(void **state)
{
    struct fx *f = *state;
    build_system_state(f);
    struct saved s;
    save(f->al, &s);
    assert_int_equal(s.nalarms, 5);
    for (int order = 0; order < 2; order++) {
        struct gw_alarms *r = restore(&f->cfg, &s, order == 0);
        struct saved s2;
        save(r, &s2);
        assert_int_equal(s2.nalarms, s.nalarms);
        for (int i = 0; i < s.nalarms; i++) {
            const struct gw_alarm *got = gw_alarms_find(r, s.alarms[i].key);
            assert_non_null(got);
            assert_memory_equal(got, &s.alarms[i], sizeof(*got));
        }
        gw_alarms_free(r);
    }
    /* Both go on identically. */
    struct gw_alarms *r = restore(&f->cfg, &s, false);
    struct gw_alarm_change a[OUT_MAX], b[OUT_MAX];
    const int64_t times[] = {T0 + 9 * MIN, T0 + 14 * MIN, T0 + 63 * MIN};
    int total = 0;
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int na = gw_alarms_tick(f->al, times[i], a, OUT_MAX);
        int nb = gw_alarms_tick(r, times[i], b, OUT_MAX);
        assert_int_equal(na, nb);
        for (int k = 0; k < na; k++) {
            bool found = false;
            for (int j = 0; j < nb && !found; j++) {
                found = strcmp(a[k].alarm.key, b[j].alarm.key) == 0 &&
                        strcmp(a[k].transition, b[j].transition) == 0 &&
                        a[k].notify == b[j].notify && a[k].alarm.state == b[j].alarm.state;
            }
            assert_true(found);
        }
        total += na;
    }
    assert_true(total >= 2); /* the held-back raise, the shelve expiry */
    struct gw_alarm_command c = {.type = GW_CMD_ACK, .key = K_FAIL, .by = "wang"};
    assert_int_equal(gw_alarms_command(f->al, &c, T0 + 70 * MIN, a, OUT_MAX, NULL, 0), 1);
    assert_int_equal(gw_alarms_command(r, &c, T0 + 70 * MIN, b, OUT_MAX, NULL, 0), 1);
    assert_int_equal(a[0].alarm.state, b[0].alarm.state);
    gw_alarms_free(r);
}

static void system_alarm_restore_checks(void **state)
{
    struct fx *f = *state;
    struct gw_alarm a = {.key = K_PATH,
                         .system = true,
                         .rule_index = 7,
                         .sensor_index = 7,
                         .state = GW_ALARM_ACKED,
                         .alarm_class = GW_CLASS_TROUBLE,
                         .name = "path self-test",
                         .needs_reset = true,
                         .test = true};
    assert_int_equal(gw_alarms_restore(f->al, &a), 0);
    const struct gw_alarm *r = gw_alarms_find(f->al, K_PATH);
    assert_non_null(r);
    assert_true(r->system);
    assert_true(r->test);
    assert_int_equal(r->rule_index, -1);
    assert_int_equal(r->sensor_index, -1);
    assert_false(r->needs_reset); /* never latched */
    assert_int_equal(r->state, GW_ALARM_ACKED);
    /* Restoring it again replaces it. */
    a.state = GW_ALARM_UNACKED;
    assert_int_equal(gw_alarms_restore(f->al, &a), 0);
    assert_int_equal(gw_alarms_find(f->al, K_PATH)->state, GW_ALARM_UNACKED);
    int counts[GW_NCLASSES][GW_ALARM_NSTATES];
    assert_int_equal(gw_alarms_count(f->al, counts), 1);
    /* Refused, nothing made. */
    struct {
        const char *key;
        enum gw_alarm_state state;
        enum gw_alarm_class cls;
        const char *name;
        int rc;
    } cases[] = {
        {"gateway/Bad", GW_ALARM_UNACKED, GW_CLASS_TROUBLE, "x", -EINVAL},
        {"gateway", GW_ALARM_UNACKED, GW_CLASS_TROUBLE, "x", -EINVAL},
        {"A-3F-smoke-301/path-self-test", GW_ALARM_UNACKED, GW_CLASS_TROUBLE, "x", -ENOENT},
        {K_FAIL, GW_ALARM_OUT_OF_SERVICE, GW_CLASS_TROUBLE, "x", -EINVAL},
        {K_FAIL, (enum gw_alarm_state)9, GW_CLASS_TROUBLE, "x", -EINVAL},
        {K_FAIL, GW_ALARM_UNACKED, (enum gw_alarm_class)5, "x", -EINVAL},
        {K_FAIL, GW_ALARM_UNACKED, GW_CLASS_TROUBLE, "", -EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gw_alarm b = {.system = true, .state = cases[i].state, .alarm_class = cases[i].cls};
        snprintf(b.key, sizeof(b.key), "%s", cases[i].key);
        snprintf(b.name, sizeof(b.name), "%s", cases[i].name);
        int rc = gw_alarms_restore(f->al, &b);
        if (rc != cases[i].rc) {
            fail_msg("case %zu: rc %d, expected %d", i, rc, cases[i].rc);
        }
    }
    assert_null(gw_alarms_find(f->al, K_FAIL));
    /* A name without its NUL is refused, not read past. */
    struct gw_alarm c = a;
    snprintf(c.key, sizeof(c.key), "%s", K_FAIL);
    memset(c.name, 'n', sizeof(c.name));
    assert_int_equal(gw_alarms_restore(f->al, &c), -EINVAL);
    /* Without the system flag the same key is a rule alarm whose sensor is gone. */
    a.system = false;
    snprintf(a.key, sizeof(a.key), "%s", K_BUS);
    assert_int_equal(gw_alarms_restore(f->al, &a), -ENOENT);
    assert_int_equal(gw_alarms_count(f->al, counts), 1);
    /* A rule alarm takes name and class from its rule, whatever the record says. */
    struct gw_alarm d = {.key = K_HYD,
                         .state = GW_ALARM_UNACKED,
                         .condition = true,
                         .alarm_class = GW_CLASS_ALARM,
                         .name = "stale name",
                         .test = true};
    assert_int_equal(gw_alarms_restore(f->al, &d), 0);
    r = gw_alarms_get(f->al, R_HYD, S_HYD);
    assert_string_equal(r->name, "hydrant pressure low");
    assert_int_equal(r->alarm_class, GW_CLASS_SUPERVISORY);
    assert_true(r->test);
    assert_false(r->system);
}

static void system_alarms_carried_over(void **state)
{
    struct fx *f = *state;
    build_system_state(f);
    /* The new config has a sensor called "gateway": those keys are a sensor's now. */
    struct fx *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    build_cfg(g);
    g->sensors[S_SMOKE2] = (struct gw_sensor_cfg){.id = "gateway", .kind = "smoke"};
    g->al = gw_alarms_new(&g->cfg);
    assert_non_null(g->al);
    struct gw_alarm_change out[8];
    assert_int_equal(gw_alarms_carry_over(g->al, f->al, T0 + 6 * MIN, out, 1), -ENOSPC);
    int n = gw_alarms_carry_over(g->al, f->al, T0 + 6 * MIN, out, 8);
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++) {
        assert_true(strcmp(out[i].alarm.key, K_PATH) == 0 || strcmp(out[i].alarm.key, K_FAIL) == 0);
        assert_string_equal(out[i].transition, "clear");
        assert_int_equal(out[i].alarm.state, GW_ALARM_NORMAL);
        assert_true(out[i].alarm.system);
        assert_string_equal(out[i].note, "its source is now a sensor id");
        /* the acked test was told; the shelved one was stopped, but its raise was told */
        assert_int_equal(out[i].notify, GW_NOTIFY_CLEAR);
    }
    assert_null(gw_alarms_find(g->al, K_PATH));
    assert_null(gw_alarms_find(g->al, K_FAIL));
    /* The others live on, equal. */
    const char *kept[] = {K_BUS, "forwarder-0016C001FF10A235/forwarder-offline"};
    for (size_t i = 0; i < 2; i++) {
        const struct gw_alarm *a = gw_alarms_find(g->al, kept[i]);
        assert_non_null(a);
        assert_memory_equal(a, gw_alarms_find(f->al, kept[i]), sizeof(*a));
    }
    assert_int_equal(gw_alarms_find(g->al, "A-3F-smoke-301/smoke-detected")->state,
                     GW_ALARM_OUT_OF_SERVICE);
    int counts[GW_NCLASSES][GW_ALARM_NSTATES];
    assert_int_equal(gw_alarms_count(g->al, counts), 3);
    /* Commands work on the carried ones. */
    struct gw_alarm_command c = {
        .type = GW_CMD_ACK, .key = "forwarder-0016C001FF10A235/forwarder-offline", .by = "li"};
    assert_int_equal(gw_alarms_command(g->al, &c, T0 + 7 * MIN, out, 8, NULL, 0), 1);
    assert_int_equal(out[0].alarm.state, GW_ALARM_NORMAL);
    gw_alarms_free(g->al);
    free(g);

    /* Same config again: every system alarm is kept. */
    struct gw_alarms *same = gw_alarms_new(&f->cfg);
    assert_non_null(same);
    assert_int_equal(gw_alarms_carry_over(same, f->al, T0 + 6 * MIN, out, 8), 0);
    assert_int_equal(gw_alarms_count(same, counts), 5);
    assert_int_equal(gw_alarms_find(same, K_FAIL)->state, GW_ALARM_SHELVED);
    gw_alarms_free(same);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_state_event_pair),
        cmocka_unit_test_setup_teardown(latched_alarm_needs_ack_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(latched_condition_back_after_ack_is_a_new_raise, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(shelve_expires_at_the_exact_millisecond, setup, teardown),
        cmocka_unit_test_setup_teardown(shelve_minutes_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(clock_step_moves_shelve_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(tick_with_little_room_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(chattering_starts_after_count_raises_in_window, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(chattering_starts_one_ms_inside_the_window, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(chattering_rate_limits_and_ends_at_window_edge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(chattering_tells_one_raise_per_window, setup, teardown),
        cmocka_unit_test_setup_teardown(chattering_off_when_configured_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(out_of_service_sensor, setup, teardown),
        cmocka_unit_test_setup_teardown(command_errors_are_clear_and_change_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(transition_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(lookups_iteration_and_names, setup, teardown),
        cmocka_unit_test_setup_teardown(save_restore_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(restore_checks_and_repairs, setup, teardown),
        cmocka_unit_test_setup_teardown(carry_over_by_key, setup, teardown),
        cmocka_unit_test_setup_teardown(system_alarm_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(system_alarm_chatters_like_a_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(system_alarm_errors_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(rule_alarm_test_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(system_alarms_save_restore_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(system_alarm_restore_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(system_alarms_carried_over, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
