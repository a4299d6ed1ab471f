/*
 * A sink takes batches of outbox records and reports back once per batch
 * (Fluent Bit's output plugins). The core keeps a durable cursor per sink
 * and stream and moves it only on GW_SINK_OK or GW_SINK_REJECT.
 */
#ifndef GW_SINK_H
#define GW_SINK_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "record.h"

enum gw_sink_result {
    GW_SINK_OK,     /* every record delivered (and confirmed): advance the cursor */
    GW_SINK_RETRY,  /* nothing (certain) delivered: back off, then the same batch again */
    GW_SINK_REJECT, /* the far side refused some records for good: dead-letter them, advance */
};

/*
 * Called exactly once per submit, on the loop thread, never from inside
 * submit itself. For GW_SINK_REJECT, rejected[] lists the indexes (into the
 * submitted batch) of the refused records, nrejected of them (all of them
 * when the sink cannot tell which); `error` says why (the far side's text).
 * `retry_after_ms` > 0 with GW_SINK_RETRY asks for at least that much wait
 * (HTTP Retry-After).
 */
typedef void (*gw_sink_done_fn)(void *ctx, enum gw_sink_result result, const char *error,
                                const int *rejected, int nrejected, int retry_after_ms);

struct gw_sink_ops {
    const char *name;
    /* Build state for cfg. cfg outlives the sink. NULL after logging why. */
    void *(*init)(const struct gw_config *cfg, uv_loop_t *loop);
    int (*start)(void *state);
    /* Can it take a batch now (connected)? The core does not submit while false. */
    bool (*ready)(void *state);
    /* Does this sink deliver records of this type at all? Others are skipped (cursor moves). */
    bool (*wants)(void *state, enum gw_record_type type);
    /*
     * Deliver recs[0..n). The records stay valid until done runs. One batch at a
     * time per sink. The sink may reorder nothing.
     */
    void (*submit)(void *state, const struct gw_record *recs, int n, gw_sink_done_fn done,
                   void *ctx);
    /*
     * Stop: finish or abandon the batch in flight (its done runs, with RETRY if
     * abandoned), close connections; `closed` runs once every handle is closed,
     * after which destroy frees the state.
     */
    void (*stop)(void *state, void (*closed)(void *ctx), void *ctx);
    void (*destroy)(void *state);
};

extern const struct gw_sink_ops gw_sink_hub;    /* the school hub (hub section) */
extern const struct gw_sink_ops gw_sink_uplink; /* the district broker (uplink section) */
extern const struct gw_sink_ops gw_sink_influx; /* InfluxDB (influx section) */

#endif
