/*
 * Writing a store the way the gateway does, for the benchmarks that read it back
 * (daylog.c, kpi.c): records appended through gw_store_append, committed a
 * thousand at a time. Exits on any failure: a benchmark cannot go on without it.
 */
#ifndef GW_BENCH_STORE_H
#define GW_BENCH_STORE_H

#include <stdint.h>

#include "config.h"
#include "record.h"
#include "store.h"

struct bench_writer {
    struct gw_store *st;
    uint64_t seq;
    int in_batch;
    const char *who; /* "kpi bench": the prefix of its error messages */
};

/* Appends one record (takes payload; NULL means out of memory). */
void bench_put(struct bench_writer *w, enum gw_record_type type, int64_t ts, const char *topic,
               char *payload);
/* Commits what is pending. */
void bench_flush(struct bench_writer *w);

/* The index of the rule named name in cfg. */
int bench_rule_of(const struct gw_config *cfg, const char *name, const char *who);

#endif
