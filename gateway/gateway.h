/*
 * The core: wires drivers -> registry -> rules -> alarms -> hub on one loop.
 * main.c owns the loop, signals and config loading; this owns the rest.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "reading.h"

struct gw_gateway;

struct gw_gateway_stats {
    uint64_t readings;    /* dispatched to the core */
    uint64_t poll_errors; /* readings with status ERROR */
    uint64_t transitions; /* alarm raises and clears */
};

/* Takes ownership of cfg. with_drivers=false leaves sensors to gw_gateway_dispatch (bench). */
struct gw_gateway *gw_gateway_new(uv_loop_t *loop, struct gw_config *cfg, bool with_drivers);
int gw_gateway_start(struct gw_gateway *gw);
/* Swap in a validated config (takes ownership); alarms and health carry over by id. */
int gw_gateway_reload(struct gw_gateway *gw, struct gw_config *cfg);
/* The driver hand-off: one reading, on the loop thread. */
void gw_gateway_dispatch(void *gw, const struct gw_reading *reading);
void gw_gateway_stats(const struct gw_gateway *gw, struct gw_gateway_stats *out);
/* Publish P/metrics and P/kpi now (SIGUSR1), besides their timers. */
void gw_gateway_emit_metrics(struct gw_gateway *gw);
/* For the web side (web.c), on the loop thread. */
struct gw_registry;
struct gw_desk;
struct gw_store;
const struct gw_registry *gw_gateway_registry(const struct gw_gateway *gw);
struct gw_desk *gw_gateway_desk(const struct gw_gateway *gw);
struct gw_store *gw_gateway_store(const struct gw_gateway *gw);
/* The daily safety log (reports, /api/logs); NULL before start. */
struct gw_daylog;
struct gw_daylog *gw_gateway_daylog(const struct gw_gateway *gw);
/* /healthz: the loop runs (we are answering) and the store can write; else false and why. */
bool gw_gateway_healthy(const struct gw_gateway *gw, char *why, size_t size);
/* The /metrics body (Prometheus text); NULL with the reason in err. */
char *gw_gateway_prometheus(struct gw_gateway *gw, char *err, size_t errlen);

/* Run the path self-test now (SIGUSR2), besides daily at selftest.at. */
void gw_gateway_selftest(struct gw_gateway *gw);
const struct gw_config *gw_gateway_config(const struct gw_gateway *gw);
bool gw_gateway_hub_connected(const struct gw_gateway *gw);
/* Records the named sink has not confirmed yet (data stream), for benchmarks and tests. */
uint64_t gw_gateway_sink_lag(const struct gw_gateway *gw, const char *sink);
/* Stop drivers, publish {"online":false}, disconnect, close every handle; then done(ctx). */
void gw_gateway_stop(struct gw_gateway *gw, void (*done)(void *ctx), void *ctx);
/* After done ran. */
void gw_gateway_free(struct gw_gateway *gw);

int64_t gw_now_ms(void);

#endif
