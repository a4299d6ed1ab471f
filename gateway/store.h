/*
 * The durable store: SQLite in WAL mode at state_dir/state.db.
 *  - outbox: every record to deliver (telemetry, health, alarm state, events,
 *    gateway metrics), by seq; two streams (record.h) with a cursor per sink;
 *  - alarm_state: the current alarm record of every non-normal alarm, kept in
 *    the same transaction as the ALARM record that changes it;
 *  - hazard_log: the hazard register's hash chain (hazards.h), one row per entry, written in the
 *    same transaction as its GW_REC_HAZARD_LOG record and kept after delivery; append-only
 *    (triggers refuse UPDATE and DELETE);
 *  - cursors, dead letters, and key/value state for later modules.
 * Alarm-stream records are committed before gw_store_append returns (so an
 * alarm is on disk before anyone is told); the rest is group-committed by
 * gw_store_commit (the core calls it every commit_ms, or when
 * gw_store_commit_wanted says commit_records are pending).
 * A write error (disk full) never loses an alarm: records stay in memory,
 * are served to sinks from there, and are retried on the next commit.
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "record.h"

struct gw_store;

struct gw_store_stats {
    uint64_t outbox;                /* records in the outbox (committed + pending) */
    uint64_t pending;               /* not yet committed */
    uint64_t dropped;               /* telemetry dropped because the outbox was full */
    uint64_t commits;               /* transactions committed */
    uint64_t fsyncs;                /* commits that synced (all of them: synchronous=FULL) */
    uint64_t write_errors;          /* failed commits */
    uint64_t dead_letters;          /* records refused by a sink for good */
    bool failing;                   /* the last commit failed (disk full, I/O error) */
    uint64_t last_seq[GW_NSTREAMS]; /* newest record appended to each stream (this run) */
    uint64_t committed_seq; /* newest record on disk (this run): the self-test's store hop */
    char last_error[160];
};

/* Opens (creating and migrating) state_dir/state.db. NULL after logging why. */
struct gw_store *gw_store_open(const char *state_dir, const struct gw_store_cfg *cfg);
/* Commits what is pending (best effort) and closes. Accepts NULL. */
void gw_store_close(struct gw_store *st);

/*
 * Append a record (topic and payload are copied). GW_REC_ALARM's topic is
 * "alarms/<key>"; its payload is the alarm's state ("" = back to normal,
 * which removes it from alarm_state). Returns 0, or -errno when an
 * alarm-stream record could not be committed now (it is kept and retried).
 */
int gw_store_append(struct gw_store *st, uint64_t seq, enum gw_record_type type, int64_t ts_ms,
                    const char *topic, const char *payload);
/*
 * Between begin and end, alarm-stream appends wait and end commits them all
 * at once: the transitions of one loop iteration cost one fsync, not one
 * each. Readers do not see them before end (unless commits are failing).
 */
void gw_store_begin_batch(struct gw_store *st);
int gw_store_end_batch(struct gw_store *st);

bool gw_store_commit_wanted(const struct gw_store *st);
/* Commit pending records, enforce max_mb, trim what every sink has. 0 or -errno. */
int gw_store_commit(struct gw_store *st);

/*
 * Up to max records of `stream` with seq > after, in seq order, committed
 * ones first, then pending ones (pending alarm records only while commits
 * fail: otherwise an alarm is never served before it is on disk).
 * out[i].topic/payload are owned by the caller: free with
 * gw_store_records_free. Returns how many, or -errno.
 */
int gw_store_read(struct gw_store *st, enum gw_stream stream, uint64_t after, int max,
                  struct gw_record *out);
void gw_store_records_free(struct gw_record *recs, int n);

/*
 * Sinks' cursors: the last seq each sink has of each stream. A sink seen for
 * the first time starts at 0, so it gets whatever is still buffered.
 */
uint64_t gw_store_cursor(struct gw_store *st, const char *sink, enum gw_stream stream);
int gw_store_set_cursor(struct gw_store *st, const char *sink, enum gw_stream stream, uint64_t seq);
/* Only sinks registered here hold records back from deletion. */
int gw_store_register_sink(struct gw_store *st, const char *sink);
/* Forget a sink that is no longer configured (its cursor stops holding records). */
int gw_store_unregister_sink(struct gw_store *st, const char *sink);

int gw_store_dead_letter(struct gw_store *st, const char *sink, const struct gw_record *rec,
                         const char *error, int64_t now_ms);

/* The current alarm records (payload JSON of P/alarms), for a restart. */
typedef void (*gw_store_alarm_fn)(void *ctx, const char *key, const char *payload);
int gw_store_load_alarms(struct gw_store *st, gw_store_alarm_fn fn, void *ctx);

/*
 * Small persistent state (a LoRa device's last frame counter, ...): set is
 * kept in memory and written with the next commit, in the same transaction
 * as the records appended before it; each serves uncommitted values too.
 */
int gw_store_kv_set(struct gw_store *st, const char *key, const char *value);
/* Remove key (with the next commit). */
int gw_store_kv_delete(struct gw_store *st, const char *key);
typedef void (*gw_store_kv_fn)(void *ctx, const char *key, const char *value);
int gw_store_kv_each(struct gw_store *st, const char *prefix, gw_store_kv_fn fn, void *ctx);

/*
 * An alarm's history: every P/events record of its key (transitions and
 * commands, with who and when), kept after delivery. Calls fn with each
 * payload after seq `after`, oldest first, at most max; returns how many or -errno.
 */
typedef void (*gw_store_history_fn)(void *ctx, const char *payload);
int gw_store_history(struct gw_store *st, const char *key, uint64_t after, int max,
                     gw_store_history_fn fn, void *ctx);

/* Every alarm's history from since_ms on (and after seq `after`), oldest first, at most max:
 * the page's and the API's event list, the daily log. ts_ms: when it was recorded. Committed
 * rows only. Returns how many or -errno. */
typedef void (*gw_store_history_seq_fn)(void *ctx, uint64_t seq, int64_t ts_ms,
                                        const char *payload);
int gw_store_history_since(struct gw_store *st, int64_t since_ms, uint64_t after, int max,
                           gw_store_history_seq_fn fn, void *ctx);

/*
 * The hazard register's history: hazard_log rows of `hazard` (NULL: every hazard) with at >=
 * since_ms, oldest first (by n, the chain seq). entry is the entry's JSON exactly as written
 * (gw_hazard_entry_to_json). Committed rows only. fn must not call the store. Returns how many
 * or -errno.
 */
typedef void (*gw_store_hazard_fn)(void *ctx, uint64_t n, const char *hazard, int64_t at_ms,
                                   const char *entry);
int gw_store_hazard_log(struct gw_store *st, const char *hazard, int64_t since_ms,
                        gw_store_hazard_fn fn, void *ctx);
/* The newest hazard_log row (committed): 1 (fn called once), 0 when empty, or -errno. */
int gw_store_hazard_last(struct gw_store *st, gw_store_hazard_fn fn, void *ctx);

void gw_store_stats(const struct gw_store *st, struct gw_store_stats *out);

#endif
