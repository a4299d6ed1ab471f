/*
 * The outbox pump: moves committed (and waiting) store records to every sink,
 * one batch per sink at a time, alarm stream first, and moves each sink's
 * durable cursor only when the sink confirmed. A sink that fails backs off
 * (1 s doubling to 60 s, with jitter, or what the far side asked for) without
 * holding up the others.
 */
#ifndef GW_OUTBOX_H
#define GW_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "sink.h"
#include "store.h"

struct gw_outbox;

struct gw_outbox_sink_stats {
    const char *name;
    uint64_t delivered; /* records confirmed */
    uint64_t retries;   /* batches that failed and wait to go again */
    uint64_t rejected;  /* records dead-lettered */
    uint64_t cursor[GW_NSTREAMS];
    bool connected; /* ready() */
};

struct gw_outbox *gw_outbox_new(uv_loop_t *loop, struct gw_store *store);
/*
 * Add (and start) a sink. batch_max records per submit; flush_ms > 0 holds a
 * partial data batch back until that long after the previous submit (the
 * InfluxDB batching); alarm records never wait. lanes > 1 (at most 2) runs
 * that many instances of the sink with a data batch each in flight, for a far
 * side where the order of batches does not matter; the cursor still moves in
 * order. Returns the (first) sink's state.
 */
void *gw_outbox_add_sink(struct gw_outbox *ob, const struct gw_sink_ops *ops,
                         const struct gw_config *cfg, int batch_max, int flush_ms, int lanes);
/* The state of the sink called `name`, or NULL. */
void *gw_outbox_sink(struct gw_outbox *ob, const char *name);
/* Stop and drop one sink (a reload removed or changed it). */
void gw_outbox_remove_sink(struct gw_outbox *ob, const char *name);
/* Records were appended (or a sink may have become ready): pump soon, once. */
void gw_outbox_kick(struct gw_outbox *ob);
int gw_outbox_sink_stats(const struct gw_outbox *ob, struct gw_outbox_sink_stats *out, int max);
/* Stop every sink (a batch in flight goes again next start), close handles; then done. */
void gw_outbox_stop(struct gw_outbox *ob, void (*done)(void *ctx), void *ctx);
/* After done ran. */
void gw_outbox_free(struct gw_outbox *ob);

#endif
