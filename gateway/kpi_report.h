/*
 * The school's figures on a timer (kpi.h says what they are): a GW_REC_KPI
 * record (P/kpi retained, InfluxDB school_kpi) about 5 s after start, so a
 * district sees a new school at once, then at every multiple of
 * kpi.interval_s since the epoch, and on demand (SIGUSR1, with P/metrics).
 *
 * A run reads the alarm history of the last 24 h from the store a page of rows
 * per loop turn (a storm day's 100,000 rows would otherwise hold the loop, and a
 * fire alarm with it, for a second on x86 and several on a Pi), then takes the
 * live inputs as they are at that moment (sensor health from the registry, the
 * desk's live alarms, the hazard register's counts) and publishes. The record's
 * ts, and the instant its history is counted up to, is the run's "now": the grid
 * point it was due for (on the timer), or when it was asked for (the first run,
 * SIGUSR1); rows recorded after it (while the run reads) are not part of it.
 * One run at a time: a request while one reads is answered by that one, except
 * a grid point, whose run follows (one at most waits). Loop thread only.
 */
#ifndef GW_KPI_REPORT_H
#define GW_KPI_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "gateway.h"
#include "kpi.h"

#define GW_KPI_FIRST_DELAY_MS 5000
#define GW_KPI_HISTORY_PAGE 500 /* alarm_history rows read per loop turn */

struct gw_kpi_report;

/* NULL when out of memory (logged). gw must outlive it. */
struct gw_kpi_report *gw_kpi_report_new(uv_loop_t *loop, struct gw_gateway *gw);
/* The first publication in GW_KPI_FIRST_DELAY_MS, then on the interval. */
void gw_kpi_report_start(struct gw_kpi_report *r);
/* Figures for now (the schedule stays), published once the history is read. 0 when a run
 * started or one already reading will answer; -ENOMEM (logged), -ECANCELED after close,
 * -EINVAL for NULL. A run that fails later is logged. */
int gw_kpi_report_now(struct gw_kpi_report *r);
/* After a config reload: follow a new kpi.interval_s from now on. */
void gw_kpi_report_reload(struct gw_kpi_report *r);
/* Stop the timer and drop a run being read; `closed` runs once the handles are closed and
 * everything is freed. Accepts NULL (then closed runs at once). */
void gw_kpi_report_close(struct gw_kpi_report *r, void (*closed)(void *ctx), void *ctx);

/* What the runs did, for scripts/bench/kpi and its test. */
struct gw_kpi_report_stats {
    uint64_t published; /* records emitted */
    uint64_t merged;    /* requests answered by a run already reading */
    uint64_t failed;    /* runs that ended without a record (logged why) */
    bool reading;       /* a run is reading the history now */
    /* The last record published: */
    int64_t last_now_ms;
    uint64_t last_rows; /* alarm_history rows read */
    int last_pages;     /* pages read, one per loop turn */
    struct gw_kpi last;
};
void gw_kpi_report_stats(const struct gw_kpi_report *r, struct gw_kpi_report_stats *out);

#endif
