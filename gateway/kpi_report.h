/*
 * The school's figures on a timer (kpi.h says what they are): a GW_REC_KPI
 * record (P/kpi retained, InfluxDB school_kpi) about 5 s after start, so a
 * district sees a new school at once, then at every multiple of
 * kpi.interval_s since the epoch, and on demand (SIGUSR1, with P/metrics).
 * Each time the inputs are gathered from the gateway: sensor health from the
 * registry, the live alarms of the desk, the last 24 h of alarm history from
 * the store, the hazard register's counts. Loop thread only.
 */
#ifndef GW_KPI_REPORT_H
#define GW_KPI_REPORT_H

#include <stdint.h>
#include <uv.h>

#include "gateway.h"

#define GW_KPI_FIRST_DELAY_MS 5000

struct gw_kpi_report;

/* NULL when out of memory (logged). gw must outlive it. */
struct gw_kpi_report *gw_kpi_report_new(uv_loop_t *loop, struct gw_gateway *gw);
/* The first publication in GW_KPI_FIRST_DELAY_MS, then on the interval. */
void gw_kpi_report_start(struct gw_kpi_report *r);
/* Publish now (the schedule stays). 0, or -errno when the figures could not be made (logged). */
int gw_kpi_report_now(struct gw_kpi_report *r);
/* After a config reload: follow a new kpi.interval_s from now on. */
void gw_kpi_report_reload(struct gw_kpi_report *r);
/* Stop the timer; `closed` runs once its handle is closed and r freed. Accepts NULL (then
 * closed runs at once). */
void gw_kpi_report_close(struct gw_kpi_report *r, void (*closed)(void *ctx), void *ctx);

#endif
