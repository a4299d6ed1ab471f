/*
 * The school's safety figures (P/kpi, InfluxDB measurement school_kpi) at one
 * instant. Pure: no I/O, no clock reads (now_ms is an argument), no logging.
 * The caller (kpi_report.c) gathers the inputs from the registry, the alarm
 * desk, the store and the hazard register.
 *
 * Definitions (at now; the window is (now - 24 h, now]):
 *  - sensors_total: configured sensors; sensors_online_pct: online / total * 100
 *    rounded half up to 0.1 (0.0 with no sensors).
 *  - alarms_24h[class]: alarm occurrences raised within the window, test ones
 *    excluded. An occurrence of a key starts with a "raise" history record whose
 *    raised_at differs from the key's current occurrence (a raise that repeats
 *    it, e.g. a latched alarm whose condition comes back while still unacked,
 *    is the same occurrence); a record in state "normal" ends it. It is a test
 *    occurrence only while every raise of it was a test (a real raise during a
 *    test makes it real). Its class is the one of the raise that started it.
 *    Records of a key before its first raise in the history are ignored (an
 *    occurrence raised before the history began, hence outside the window when
 *    the history covers it).
 *  - ack_mean_s / ack_worst_s: over the counted occurrences that were
 *    acknowledged, acked_at - raised_at (the first acked_at any record of the
 *    occurrence carries: an occurrence acked, shelved, unshelved and acked again
 *    counts its first ack; negative differences from clock steps count as 0).
 *    Mean rounded half up to 0.1 s, worst to the millisecond; none when no
 *    counted occurrence was acknowledged.
 *  - unacknowledged_alarms: live alarms in state unacked or rtn_unacked, test
 *    alarms excluded (system alarms included).
 *  - open_hazards: hazards not closed (open + rectifying); overdue_hazards: not
 *    closed and now >= deadline (gw_hazards_count's figures).
 *  - hydrants_without_pressure: distinct sensors of kind hydrant_pressure with a
 *    live alarm whose condition is on (unacked, acked, or shelved /
 *    out_of_service with the condition on) from a rule with a `below` condition
 *    (and kind hydrant_pressure when the rule names a kind).
 *  - exits_locked_in_hours: distinct sensors of kind exit_door with a live alarm
 *    whose condition is on from a rule with equals = "locked" (its `during`
 *    already limits the alarm to school hours).
 */
#ifndef GW_KPI_H
#define GW_KPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alarm.h"
#include "config.h"
#include "hazards.h"

#define GW_KPI_WINDOW_MS (24LL * 3600 * 1000)

/* One live (non-normal) alarm: what the figures need of a gw_alarm. */
struct gw_kpi_alarm {
    int rule_index;   /* into cfg->rules; -1 for a system alarm */
    int sensor_index; /* into cfg->sensors; -1 for a system alarm */
    enum gw_alarm_state state;
    bool condition; /* the rule's condition holds now */
    bool test;
};

/*
 * The alarm history's occurrences, replayed record by record (the store is read
 * in pages: only the current occurrence of each key is kept, however many
 * events a chattering alarm wrote). Feed it alarm_history payloads (P/events
 * records; notifications, which have no "transition", are ignored), oldest
 * first, covering at least the window (now_ms - 24 h, now_ms]: records from
 * before it are fine, their occurrences are not counted.
 */
struct gw_kpi_history;
/* NULL: out of memory. */
struct gw_kpi_history *gw_kpi_history_new(int64_t now_ms);
/* 0, or -ENOMEM (the record is lost: drop the history). A malformed record is counted, not an
 * error. */
int gw_kpi_history_add(struct gw_kpi_history *h, const char *payload);
void gw_kpi_history_free(struct gw_kpi_history *h); /* accepts NULL */

struct gw_kpi_input {
    const struct gw_config *cfg; /* required: sensors and rules */
    const bool *online;          /* cfg->nsensors flags (registry health); NULL: none online */
    const struct gw_kpi_alarm *alarms;
    int nalarms;
    const struct gw_kpi_history *history;   /* made with the same now_ms; NULL: no history */
    const struct gw_hazard_counts *hazards; /* NULL: the register is unavailable (0, 0) */
    int64_t now_ms;
};

struct gw_kpi {
    int sensors_total;
    int sensors_online;
    int online_pct_tenths; /* sensors_online_pct * 10 */
    int alarms_24h[GW_NCLASSES];
    int acked_24h;        /* counted occurrences acknowledged; ack_* are null when 0 */
    int64_t ack_mean_ds;  /* ack_mean_s * 10 */
    int64_t ack_worst_ms; /* ack_worst_s * 1000 */
    int unacknowledged_alarms;
    int open_hazards;
    int overdue_hazards;
    int hydrants_without_pressure;
    int exits_locked_in_hours;
    int malformed; /* history records with a transition that could not be read (skipped) */
};

/* 0, -EINVAL (no cfg, a negative count or a count without its array, a history made for another
 * now_ms: the reason in err, which may be NULL) or -ENOMEM. */
int gw_kpi_compute(const struct gw_kpi_input *in, struct gw_kpi *out, char *err, size_t errlen);

/*
 * The P/kpi payload (malloc'd; NULL when out of memory):
 * {"seq","ts","district","school","sensors_total","sensors_online_pct",
 *  "alarms_24h":{"alarm","supervisory","trouble"},"ack_mean_s","ack_worst_s",
 *  "unacknowledged_alarms","open_hazards","overdue_hazards",
 *  "hydrants_without_pressure","exits_locked_in_hours"}
 * ts RFC 3339 UTC with milliseconds; ack_* null when nothing was acknowledged.
 */
char *gw_kpi_json(const struct gw_kpi *k, uint64_t seq, int64_t ts_ms, const char *district,
                  const char *school);

/*
 * When the figures are due next: the first multiple of interval_s seconds since
 * the epoch strictly after now_ms (interval_s <= 0: 3600).
 */
int64_t gw_kpi_next_run_ms(int64_t now_ms, int interval_s);

/*
 * The grid point a timer firing at now_ms was due for: the last multiple of interval_s seconds
 * since the epoch at or before now_ms (interval_s <= 0: 3600). The figures made then are for
 * that instant, however late the timer fired.
 */
int64_t gw_kpi_grid_point_ms(int64_t now_ms, int interval_s);

#endif
