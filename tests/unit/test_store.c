/*
 * The durable store on a real SQLite file in a temp dir: group commit, alarm
 * commit-before-return, streams and cursors, trimming, restart, capacity,
 * alarm state, dead letters, a failing disk, key/value state, the append-only hazard_log and
 * the migration to it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "store_sql.h"

struct fx {
    char dir[64];
    struct gw_store_cfg cfg;
    struct gw_store *st;
    uint64_t seq;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/gw-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->cfg = (struct gw_store_cfg){.commit_ms = 1000, .commit_records = 1000, .max_mb = 512};
    f->st = gw_store_open(f->dir, &f->cfg);
    assert_non_null(f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_store_close(f->st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void reopen(struct fx *f)
{
    gw_store_close(f->st);
    f->st = gw_store_open(f->dir, &f->cfg);
    assert_non_null(f->st);
}

static uint64_t add(struct fx *f, enum gw_record_type type, const char *topic, const char *payload)
{
    uint64_t seq = ++f->seq;
    assert_int_equal(gw_store_append(f->st, seq, type, 1000 + (int64_t)seq, topic, payload), 0);
    return seq;
}

/* Rows in the outbox table as another connection sees them: what is on disk. */
static int rows_on_disk(struct fx *f)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM outbox", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static void telemetry_waits_for_group_commit_alarm_does_not(void **state)
{
    struct fx *f = *state;
    add(f, GW_REC_TELEMETRY, "telemetry/h1", "{\"v\":1}");
    add(f, GW_REC_TELEMETRY, "telemetry/h1", "{\"v\":2}");
    assert_int_equal(rows_on_disk(f), 0);
    assert_false(gw_store_commit_wanted(f->st));
    /* An alarm commits before append returns, and takes the pending telemetry with it. */
    add(f, GW_REC_EVENT, "events", "{\"transition\":\"raise\"}");
    assert_int_equal(rows_on_disk(f), 3);
    add(f, GW_REC_TELEMETRY, "telemetry/h1", "{\"v\":3}");
    assert_int_equal(rows_on_disk(f), 3);
    assert_int_equal(gw_store_commit(f->st), 0);
    assert_int_equal(rows_on_disk(f), 4);
    struct gw_store_stats s;
    gw_store_stats(f->st, &s);
    assert_int_equal(s.outbox, 4);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.commits, 2);
}

static void a_batch_commits_its_alarms_once(void **state)
{
    struct fx *f = *state;
    gw_store_begin_batch(f->st);
    add(f, GW_REC_EVENT, "events", "raise");
    add(f, GW_REC_ALARM, "alarms/h1/low", "{}");
    assert_int_equal(rows_on_disk(f), 0);
    /* Not on disk yet, so not served to any sink yet either. */
    struct gw_record r[4];
    assert_int_equal(gw_store_read(f->st, GW_STREAM_ALARM, 0, 4, r), 0);
    assert_int_equal(gw_store_end_batch(f->st), 0);
    int n = gw_store_read(f->st, GW_STREAM_ALARM, 0, 4, r);
    assert_int_equal(n, 2);
    gw_store_records_free(r, n);
    assert_int_equal(rows_on_disk(f), 2);
    struct gw_store_stats s;
    gw_store_stats(f->st, &s);
    assert_int_equal(s.commits, 1);
    /* A batch with only telemetry leaves it to the group commit. */
    gw_store_begin_batch(f->st);
    add(f, GW_REC_TELEMETRY, "t", "1");
    assert_int_equal(gw_store_end_batch(f->st), 0);
    assert_int_equal(rows_on_disk(f), 2);
}

static void commit_wanted_after_commit_records(void **state)
{
    struct fx *f = *state;
    f->cfg.commit_records = 3;
    reopen(f);
    add(f, GW_REC_TELEMETRY, "t", "1");
    add(f, GW_REC_TELEMETRY, "t", "2");
    assert_false(gw_store_commit_wanted(f->st));
    add(f, GW_REC_TELEMETRY, "t", "3");
    assert_true(gw_store_commit_wanted(f->st));
}

static void streams_read_in_order_committed_then_pending(void **state)
{
    struct fx *f = *state;
    uint64_t t1 = add(f, GW_REC_TELEMETRY, "telemetry/a", "a1");
    uint64_t e1 = add(f, GW_REC_EVENT, "events", "e1"); /* commits t1, e1 */
    uint64_t h1 = add(f, GW_REC_HEALTH, "health/a", "h1");
    uint64_t a1 = add(f, GW_REC_ALARM, "alarms/a/low", "{\"state\":\"unacked\"}");
    uint64_t t2 = add(f, GW_REC_TELEMETRY, "telemetry/a", "a2"); /* pending */
    struct gw_record r[10];
    int n = gw_store_read(f->st, GW_STREAM_ALARM, 0, 10, r);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].seq, e1);
    assert_int_equal(r[1].seq, a1);
    assert_string_equal(r[1].topic, "alarms/a/low");
    gw_store_records_free(r, n);
    n = gw_store_read(f->st, GW_STREAM_DATA, 0, 10, r);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].seq, t1);
    assert_int_equal(r[1].seq, h1);
    assert_int_equal(r[2].seq, t2); /* served from memory before its commit */
    assert_string_equal(r[2].payload, "a2");
    assert_int_equal(r[2].payload_len, 2);
    assert_int_equal(r[0].type, GW_REC_TELEMETRY);
    assert_int_equal(r[0].ts_ms, 1000 + (int64_t)t1);
    gw_store_records_free(r, n);
    n = gw_store_read(f->st, GW_STREAM_DATA, h1, 10, r);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].seq, t2);
    gw_store_records_free(r, n);
    n = gw_store_read(f->st, GW_STREAM_DATA, 0, 2, r); /* max respected */
    assert_int_equal(n, 2);
    gw_store_records_free(r, n);
}

static void cursors_survive_restart_and_trim_what_all_have(void **state)
{
    struct fx *f = *state;
    assert_int_equal(gw_store_register_sink(f->st, "hub"), 0);
    assert_int_equal(gw_store_register_sink(f->st, "influx"), 0);
    for (int i = 0; i < 10; i++) {
        add(f, GW_REC_TELEMETRY, "t", "x");
    }
    assert_int_equal(gw_store_commit(f->st), 0);
    assert_int_equal(gw_store_set_cursor(f->st, "hub", GW_STREAM_DATA, 8), 0);
    assert_int_equal(gw_store_set_cursor(f->st, "influx", GW_STREAM_DATA, 5), 0);
    assert_int_equal(gw_store_set_cursor(f->st, "influx", GW_STREAM_DATA, 3), 0); /* never back */
    assert_int_equal(gw_store_cursor(f->st, "influx", GW_STREAM_DATA), 5);
    assert_int_equal(gw_store_commit(f->st), 0);
    assert_int_equal(rows_on_disk(f), 5); /* 1..5 delivered everywhere */
    reopen(f);
    assert_int_equal(gw_store_register_sink(f->st, "hub"), 0);
    assert_int_equal(gw_store_register_sink(f->st, "influx"), 0);
    assert_int_equal(gw_store_cursor(f->st, "hub", GW_STREAM_DATA), 8);
    assert_int_equal(gw_store_cursor(f->st, "influx", GW_STREAM_DATA), 5);
    assert_int_equal(gw_store_cursor(f->st, "hub", GW_STREAM_ALARM), 0);
    assert_int_equal(gw_store_cursor(f->st, "nobody", GW_STREAM_ALARM), 0);
    assert_int_equal(gw_store_set_cursor(f->st, "nobody", GW_STREAM_ALARM, 1), -ENOENT);
    /* A sink that is no longer configured stops holding records back. */
    assert_int_equal(gw_store_unregister_sink(f->st, "influx"), 0);
    assert_int_equal(gw_store_set_cursor(f->st, "hub", GW_STREAM_DATA, 10), 0);
    assert_int_equal(gw_store_commit(f->st), 0);
    assert_int_equal(rows_on_disk(f), 0);
    struct gw_store_stats s;
    gw_store_stats(f->st, &s);
    assert_int_equal(s.outbox, 0);
}

static void uncommitted_cursor_moves_are_redelivered_after_a_crash(void **state)
{
    struct fx *f = *state;
    gw_store_register_sink(f->st, "hub");
    add(f, GW_REC_TELEMETRY, "t", "1");
    add(f, GW_REC_TELEMETRY, "t", "2");
    gw_store_commit(f->st);
    gw_store_set_cursor(f->st, "hub", GW_STREAM_DATA, 2);
    /* "Crash": reopen without the commit that would have saved the cursor. Simulate by
     * opening a second store on the same file. */
    struct gw_store *other = gw_store_open(f->dir, &f->cfg);
    gw_store_register_sink(other, "hub");
    assert_int_equal(gw_store_cursor(other, "hub", GW_STREAM_DATA), 0); /* at least once */
    gw_store_close(other);
}

struct seen_alarm {
    int n;
    char key[64];
    char payload[128];
};

static void on_alarm(void *ctx, const char *key, const char *payload)
{
    struct seen_alarm *seen = ctx;
    seen->n++;
    snprintf(seen->key, sizeof(seen->key), "%s", key);
    snprintf(seen->payload, sizeof(seen->payload), "%s", payload);
}

static void alarm_state_follows_alarm_records(void **state)
{
    struct fx *f = *state;
    add(f, GW_REC_ALARM, "alarms/h1/low", "{\"state\":\"unacked\",\"n\":1}");
    add(f, GW_REC_ALARM, "alarms/d1/locked", "{\"state\":\"unacked\",\"n\":2}");
    add(f, GW_REC_ALARM, "alarms/h1/low", "{\"state\":\"unacked\",\"n\":3}");
    add(f, GW_REC_ALARM, "alarms/d1/locked", ""); /* back to normal */
    reopen(f);
    struct seen_alarm seen = {0};
    assert_int_equal(gw_store_load_alarms(f->st, on_alarm, &seen), 1);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.key, "h1/low");
    assert_string_equal(seen.payload, "{\"state\":\"unacked\",\"n\":3}");
}

static void full_outbox_drops_oldest_telemetry_never_alarms(void **state)
{
    struct fx *f = *state;
    f->cfg.max_mb = 1;
    reopen(f);
    gw_store_register_sink(f->st, "hub"); /* never delivers: everything stays */
    char payload[512];
    memset(payload, 'x', sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    uint64_t first_alarm = add(f, GW_REC_EVENT, "events", payload);
    for (int i = 0; i < 6000; i++) { /* ~3 MB of telemetry into a 1 MB outbox */
        add(f, GW_REC_TELEMETRY, "telemetry/h1", payload);
        if (i % 500 == 0) {
            add(f, GW_REC_EVENT, "events", payload);
        }
        if (gw_store_commit_wanted(f->st)) {
            assert_int_equal(gw_store_commit(f->st), 0);
        }
    }
    assert_int_equal(gw_store_commit(f->st), 0);
    struct gw_store_stats s;
    gw_store_stats(f->st, &s);
    assert_true(s.dropped > 3000);
    assert_true(s.outbox < 3000);
    /* Every alarm record is still there, the first one included. */
    struct gw_record r[20];
    int n = gw_store_read(f->st, GW_STREAM_ALARM, 0, 20, r);
    assert_int_equal(n, 13);
    assert_int_equal(r[0].seq, first_alarm);
    gw_store_records_free(r, n);
    /* What is left of the telemetry is the newest, still in order. */
    n = gw_store_read(f->st, GW_STREAM_DATA, 0, 20, r);
    assert_int_equal(n, 20);
    assert_true(r[0].seq > 3000);
    for (int i = 1; i < n; i++) {
        assert_true(r[i].seq > r[i - 1].seq);
    }
    gw_store_records_free(r, n);
}

static void failing_disk_keeps_alarms_in_memory_and_recovers(void **state)
{
    struct fx *f = *state;
    gw_store_register_sink(f->st, "hub");
    add(f, GW_REC_TELEMETRY, "t", "before");
    assert_int_equal(gw_store_commit(f->st), 0);
    /* Make the database read-only underneath: every commit now fails. */
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    uint64_t seq = ++f->seq;
    int rc = gw_store_append(f->st, seq, GW_REC_EVENT, 1, "events", "{\"fire\":true}");
    assert_true(rc < 0);
    struct gw_store_stats s;
    gw_store_stats(f->st, &s);
    assert_true(s.failing);
    assert_int_equal(s.write_errors, 1);
    assert_int_equal(s.pending, 1);
    assert_true(strlen(s.last_error) > 0);
    /* The alarm is still served to sinks from memory. */
    struct gw_record r[4];
    int n = gw_store_read(f->st, GW_STREAM_ALARM, 0, 4, r);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].payload, "{\"fire\":true}");
    gw_store_records_free(r, n);
    /* The disk comes back: the next commit writes it. */
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(gw_store_commit(f->st), 0);
    gw_store_stats(f->st, &s);
    assert_false(s.failing);
    assert_int_equal(s.pending, 0);
    assert_int_equal(rows_on_disk(f), 2);
}

static long file_size(const char *dir, const char *name)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : 0;
}

/* Delivered records are deleted and the write-ahead log is checkpointed: the files stay small. */
static void steady_state_stays_small(void **state)
{
    struct fx *f = *state;
    gw_store_register_sink(f->st, "hub");
    char payload[400];
    memset(payload, 'y', sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    for (int round = 0; round < 300; round++) { /* ~12 MB through the store */
        for (int i = 0; i < 100; i++) {
            add(f, GW_REC_TELEMETRY, "telemetry/h1", payload);
        }
        assert_int_equal(gw_store_commit(f->st), 0);
        assert_int_equal(gw_store_set_cursor(f->st, "hub", GW_STREAM_DATA, f->seq), 0);
    }
    assert_int_equal(gw_store_commit(f->st), 0);
    long wal = file_size(f->dir, "state.db-wal");
    long db = file_size(f->dir, "state.db");
    assert_true(wal < 5L * 1024 * 1024); /* journal_size_limit, plus a checkpoint's worth */
    assert_true(db < 1L * 1024 * 1024);
    struct gw_store_stats s;
    gw_store_stats(f->st, &s);
    assert_int_equal(s.outbox, 0);
}

static void dead_letters_are_kept(void **state)
{
    struct fx *f = *state;
    struct gw_record rec = {
        .seq = 7, .type = GW_REC_TELEMETRY, .ts_ms = 5, .topic = "t", .payload = "bad"};
    assert_int_equal(gw_store_dead_letter(f->st, "influx", &rec, "unable to parse", 9), 0);
    reopen(f);
    struct gw_store_stats s;
    gw_store_stats(f->st, &s);
    assert_int_equal(s.dead_letters, 1);
}

static void newer_schema_is_refused(void **state)
{
    struct fx *f = *state;
    gw_store_close(f->st);
    f->st = NULL;
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(gw_store_open(f->dir, &f->cfg));
}

/* kv: what gw_store_kv_each saw, in the order it called back */
struct kv_seen {
    int n;
    char keys[8][64];
    char values[8][64];
};

static void on_kv(void *ctx, const char *key, const char *value)
{
    struct kv_seen *seen = ctx;
    assert_true(seen->n < 8);
    snprintf(seen->keys[seen->n], sizeof(seen->keys[0]), "%s", key);
    snprintf(seen->values[seen->n], sizeof(seen->values[0]), "%s", value);
    seen->n++;
}

/* The value of key in seen, NULL when absent; fails when a key came twice. */
static const char *kv_value(const struct kv_seen *seen, const char *key)
{
    const char *found = NULL;
    for (int i = 0; i < seen->n; i++) {
        if (strcmp(seen->keys[i], key) == 0) {
            if (found) {
                fail_msg("key %s served twice", key);
            }
            found = seen->values[i];
        }
    }
    return found;
}

static struct kv_seen kv_list(struct fx *f, const char *prefix)
{
    struct kv_seen seen = {0};
    assert_int_equal(gw_store_kv_each(f->st, prefix, on_kv, &seen), 0);
    return seen;
}

/* Rows in the kv table as another connection sees them: what is on disk. */
static int kv_rows_on_disk(struct fx *f)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM kv", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static void kv_serves_uncommitted_values_and_survives_restart(void **state)
{
    struct fx *f = *state;
    struct kv_seen seen = kv_list(f, "");
    assert_int_equal(seen.n, 0);

    assert_int_equal(gw_store_kv_set(f->st, "lora.fcnt.26011BDA", "5"), 0);
    assert_int_equal(gw_store_kv_set(f->st, "lora.fcnt.26011BDB", "70000"), 0);
    assert_int_equal(gw_store_kv_set(f->st, "other.thing", "x"), 0);
    /* LIKE wildcards in a key or a prefix are plain characters */
    assert_int_equal(gw_store_kv_set(f->st, "a_b%c", "1"), 0);
    assert_int_equal(gw_store_kv_set(f->st, "aXbYc", "2"), 0);
    assert_int_equal(kv_rows_on_disk(f), 0); /* kept in memory until the commit */

    /* uncommitted values are served, filtered by prefix */
    seen = kv_list(f, "lora.fcnt.");
    assert_int_equal(seen.n, 2);
    assert_string_equal(kv_value(&seen, "lora.fcnt.26011BDA"), "5");
    assert_string_equal(kv_value(&seen, "lora.fcnt.26011BDB"), "70000");
    seen = kv_list(f, "a_b%");
    assert_int_equal(seen.n, 1);
    assert_string_equal(kv_value(&seen, "a_b%c"), "1");
    assert_int_equal(kv_list(f, "").n, 5);
    assert_int_equal(kv_list(f, "lora.fcnt.26011BDA").n, 1); /* a whole key is a prefix too */
    assert_int_equal(kv_list(f, "lora.fcnt.26011BDAX").n, 0);
    assert_int_equal(kv_list(f, "nothing").n, 0);

    /* overwrite before the commit: the last value wins, once */
    assert_int_equal(gw_store_kv_set(f->st, "lora.fcnt.26011BDA", "6"), 0);
    seen = kv_list(f, "lora.");
    assert_int_equal(seen.n, 2);
    assert_string_equal(kv_value(&seen, "lora.fcnt.26011BDA"), "6");

    /* committed: on disk, still served, once each */
    assert_int_equal(gw_store_commit(f->st), 0);
    assert_int_equal(kv_rows_on_disk(f), 5);
    seen = kv_list(f, "lora.");
    assert_int_equal(seen.n, 2);
    assert_string_equal(kv_value(&seen, "lora.fcnt.26011BDA"), "6");
    assert_string_equal(kv_value(&seen, "lora.fcnt.26011BDB"), "70000");

    /* overwrite after the commit: the new value is served before its own commit, once */
    assert_int_equal(gw_store_kv_set(f->st, "lora.fcnt.26011BDB", "70001"), 0);
    seen = kv_list(f, "lora.");
    assert_int_equal(seen.n, 2);
    assert_string_equal(kv_value(&seen, "lora.fcnt.26011BDB"), "70001");
    assert_int_equal(gw_store_commit(f->st), 0);
    assert_int_equal(kv_rows_on_disk(f), 5);

    /* set without a commit, then close: close commits it */
    assert_int_equal(gw_store_kv_set(f->st, "lora.fcnt.26011BDA", "7"), 0);
    assert_int_equal(gw_store_kv_set(f->st, "lora.fcnt.26011BDC", ""), 0); /* empty is a value */
    reopen(f);
    seen = kv_list(f, "lora.fcnt.");
    assert_int_equal(seen.n, 3);
    assert_string_equal(kv_value(&seen, "lora.fcnt.26011BDA"), "7");
    assert_string_equal(kv_value(&seen, "lora.fcnt.26011BDB"), "70001");
    assert_string_equal(kv_value(&seen, "lora.fcnt.26011BDC"), "");
    seen = kv_list(f, "other.");
    assert_int_equal(seen.n, 1);
    assert_string_equal(kv_value(&seen, "other.thing"), "x");
    assert_int_equal(kv_list(f, "").n, 6);
}

struct history_seen {
    int n;
    char payloads[8][128];
};

static void on_history(void *ctx, const char *payload)
{
    struct history_seen *h = ctx;
    if (h->n < 8) {
        snprintf(h->payloads[h->n], sizeof(h->payloads[0]), "%s", payload);
    }
    h->n++;
}

static void on_history_seq_any(void *ctx, uint64_t seq, int64_t ts_ms, const char *payload)
{
    (void)seq;
    (void)ts_ms;
    on_history(ctx, payload);
}

static void on_history_seq(void *ctx, uint64_t seq, int64_t ts_ms, const char *payload)
{
    assert_int_equal(ts_ms, 1000 + (int64_t)seq); /* the record's time, as add() gave it */
    on_history(ctx, payload);
}

/* Events are the alarms' history: kept per key after delivery, in order; deletes are kept. */
static void alarm_history_outlives_delivery(void **state)
{
    struct fx *f = *state;
    add(f, GW_REC_EVENT, "events", "{\"key\":\"s1/r\",\"transition\":\"raise\"}");
    add(f, GW_REC_EVENT, "events", "{\"key\":\"s2/r\",\"transition\":\"raise\"}");
    uint64_t ack =
        add(f, GW_REC_EVENT, "events", "{\"key\":\"s1/r\",\"transition\":\"ack\",\"by\":\"wang\"}");
    add(f, GW_REC_EVENT, "events", "not json"); /* kept in the outbox, not in any history */
    add(f, GW_REC_TELEMETRY, "telemetry/s1", "{\"key\":\"s1/r\"}"); /* not an event */
    assert_int_equal(gw_store_commit(f->st), 0);
    assert_int_equal(gw_store_register_sink(f->st, "hub"), 0);
    for (int stream = 0; stream < GW_NSTREAMS; stream++) {
        assert_int_equal(gw_store_set_cursor(f->st, "hub", stream, f->seq), 0);
    }
    assert_int_equal(gw_store_commit(f->st), 0); /* delivered: trimmed from the outbox */
    reopen(f);
    struct history_seen h = {0};
    assert_int_equal(gw_store_history(f->st, "s1/r", 0, 10, on_history, &h), 2);
    assert_non_null(strstr(h.payloads[0], "\"raise\""));
    assert_non_null(strstr(h.payloads[1], "\"wang\""));
    memset(&h, 0, sizeof(h));
    assert_int_equal(gw_store_history(f->st, "s1/r", ack - 1, 10, on_history, &h), 1);
    memset(&h, 0, sizeof(h));
    assert_int_equal(gw_store_history(f->st, "s1/r", 0, 1, on_history, &h), 1);
    memset(&h, 0, sizeof(h));
    assert_int_equal(gw_store_history(f->st, "nobody/r", 0, 10, on_history, &h), 0);

    /* the page's event list: by time and after a seq, across keys */
    struct history_seen all = {0};
    assert_int_equal(gw_store_history_since(f->st, 0, 0, 10, on_history_seq, &all), 3);
    memset(&all, 0, sizeof(all));
    assert_int_equal(
        gw_store_history_since(f->st, 1000 + (int64_t)ack, 0, 10, on_history_seq, &all), 1);
    assert_non_null(strstr(all.payloads[0], "wang"));
    memset(&all, 0, sizeof(all));
    assert_int_equal(gw_store_history_since(f->st, 0, ack, 10, on_history_seq, &all), 0);

    /* kv delete: gone once committed, and already hidden before */
    assert_int_equal(gw_store_kv_set(f->st, "esc.s1/r", "{}"), 0);
    assert_int_equal(gw_store_commit(f->st), 0);
    assert_int_equal(gw_store_kv_delete(f->st, "esc.s1/r"), 0);
    assert_int_equal(kv_list(f, "esc.").n, 0);
    assert_int_equal(kv_rows_on_disk(f), 1);
    assert_int_equal(gw_store_commit(f->st), 0);
    assert_int_equal(kv_rows_on_disk(f), 0);
}

/* ---- hazard_log (issue 7) ---- */

struct hazard_row {
    uint64_t n;
    char hazard[32];
    int64_t at;
    char entry[160];
};

struct hazard_seen {
    int n;
    struct hazard_row rows[8];
};

static void on_hazard_row(void *ctx, uint64_t n, const char *hazard, int64_t at_ms,
                          const char *entry)
{
    struct hazard_seen *h = ctx;
    if (h->n < 8) {
        struct hazard_row *r = &h->rows[h->n];
        r->n = n;
        snprintf(r->hazard, sizeof(r->hazard), "%s", hazard);
        r->at = at_ms;
        snprintf(r->entry, sizeof(r->entry), "%s", entry);
    }
    h->n++;
}

/* A register entry as the hazard desk writes it (only the keys the store reads matter here). */
static uint64_t add_entry(struct fx *f, int n, const char *hazard, int64_t at)
{
    char json[160];
    snprintf(json, sizeof(json), "{\"seq\":%d,\"hazard\":\"%s\",\"at\":%lld,\"hash\":\"h%d\"}", n,
             hazard, (long long)at, n);
    return add(f, GW_REC_HAZARD_LOG, "hazards/log", json);
}

/* sqlite3_exec on state.db from another connection (the gateway's own is open too). */
static int exec_other(struct fx *f, const char *sql, char **msg)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    int rc = sqlite3_exec(db, sql, NULL, NULL, msg);
    sqlite3_close(db);
    return rc;
}

static int hazard_rows_on_disk(struct fx *f)
{
    struct hazard_seen h = {0};
    assert_true(gw_store_hazard_log(f->st, NULL, INT64_MIN, on_hazard_row, &h) >= 0);
    return h.n;
}

/* Entries are kept in hazard_log after delivery; read all, by hazard, by time; newest. */
static void hazard_log_outlives_delivery(void **state)
{
    struct fx *f = *state;
    struct hazard_seen h = {0};
    assert_int_equal(gw_store_hazard_last(f->st, on_hazard_row, &h), 0);
    assert_int_equal(h.n, 0);
    gw_store_begin_batch(f->st);
    add_entry(f, 1, "HZ-20261128-001", 5000);
    add(f, GW_REC_HAZARD, "hazards/HZ-20261128-001", "{\"id\":\"HZ-20261128-001\"}");
    add_entry(f, 2, "HZ-20261128-002", 6000);
    add_entry(f, 3, "HZ-20261128-001", 7000);
    /* not committed yet: not read */
    assert_int_equal(hazard_rows_on_disk(f), 0);
    assert_int_equal(gw_store_end_batch(f->st), 0);
    assert_int_equal(hazard_rows_on_disk(f), 3);
    /* every sink has them: gone from the outbox, kept in hazard_log */
    assert_int_equal(gw_store_register_sink(f->st, "hub"), 0);
    assert_int_equal(gw_store_set_cursor(f->st, "hub", GW_STREAM_ALARM, f->seq), 0);
    assert_int_equal(gw_store_commit(f->st), 0);
    assert_int_equal(rows_on_disk(f), 0);
    reopen(f);
    memset(&h, 0, sizeof(h));
    assert_int_equal(gw_store_hazard_log(f->st, NULL, INT64_MIN, on_hazard_row, &h), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(h.rows[i].n, (uint64_t)i + 1);
    }
    assert_string_equal(h.rows[1].hazard, "HZ-20261128-002");
    assert_int_equal(h.rows[1].at, 6000);
    assert_string_equal(h.rows[2].entry,
                        "{\"seq\":3,\"hazard\":\"HZ-20261128-001\",\"at\":7000,\"hash\":\"h3\"}");
    memset(&h, 0, sizeof(h));
    assert_int_equal(gw_store_hazard_log(f->st, "HZ-20261128-001", INT64_MIN, on_hazard_row, &h),
                     2);
    assert_int_equal(h.rows[0].n, 1);
    assert_int_equal(h.rows[1].n, 3);
    memset(&h, 0, sizeof(h));
    assert_int_equal(gw_store_hazard_log(f->st, NULL, 6000, on_hazard_row, &h), 2);
    assert_int_equal(h.rows[0].n, 2);
    memset(&h, 0, sizeof(h));
    assert_int_equal(gw_store_hazard_log(f->st, "HZ-20261128-001", 6001, on_hazard_row, &h), 1);
    memset(&h, 0, sizeof(h));
    assert_int_equal(gw_store_hazard_log(f->st, "HZ-nothing", INT64_MIN, on_hazard_row, &h), 0);
    memset(&h, 0, sizeof(h));
    assert_int_equal(gw_store_hazard_last(f->st, on_hazard_row, &h), 1);
    assert_int_equal(h.rows[0].n, 3);
}

/* The history cannot be rewritten through SQL: UPDATE and DELETE abort, rows stay. */
static void hazard_log_is_append_only(void **state)
{
    struct fx *f = *state;
    add_entry(f, 1, "HZ-20261128-001", 5000);
    add_entry(f, 2, "HZ-20261128-001", 6000);
    char *msg = NULL;
    assert_int_equal(exec_other(f, "UPDATE hazard_log SET entry = 'x' WHERE n = 1", &msg),
                     SQLITE_CONSTRAINT);
    assert_non_null(strstr(msg, "append-only"));
    sqlite3_free(msg);
    msg = NULL;
    assert_int_equal(exec_other(f, "DELETE FROM hazard_log WHERE n = 2", &msg), SQLITE_CONSTRAINT);
    assert_non_null(strstr(msg, "append-only"));
    sqlite3_free(msg);
    msg = NULL;
    assert_int_equal(exec_other(f, "DELETE FROM hazard_log", &msg), SQLITE_CONSTRAINT);
    sqlite3_free(msg);
    msg = NULL;
    /* a replace is a delete too */
    assert_int_equal(
        exec_other(f,
                   "INSERT OR REPLACE INTO hazard_log(n, hazard, at, entry) VALUES (1,'x',1,'x')",
                   &msg),
        SQLITE_CONSTRAINT);
    sqlite3_free(msg);
    struct hazard_seen h = {0};
    assert_int_equal(gw_store_hazard_log(f->st, NULL, INT64_MIN, on_hazard_row, &h), 2);
    assert_non_null(strstr(h.rows[0].entry, "\"seq\":1"));
    /* after a restart every row is still there */
    reopen(f);
    assert_int_equal(hazard_rows_on_disk(f), 2);
}

/* A second entry for one seq, or a record that is not an entry,
 * is left out of hazard_log without holding back the other alarm records. */
static void hazard_log_odd_records_never_block_alarms(void **state)
{
    struct fx *f = *state;
    add_entry(f, 1, "HZ-20261128-001", 5000);
    /* the same seq again with another entry (a second writer): not kept, nothing blocked */
    add(f, GW_REC_HAZARD_LOG, "hazards/log",
        "{\"seq\":1,\"hazard\":\"HZ-20261128-009\",\"at\":1,\"hash\":\"other\"}");
    add(f, GW_REC_HAZARD_LOG, "hazards/log", "not json");
    add(f, GW_REC_HAZARD_LOG, "hazards/log", "{\"seq\":0,\"hazard\":\"HZ-1\",\"at\":1}");
    add(f, GW_REC_HAZARD_LOG, "hazards/log", "{\"seq\":5,\"at\":1}");
    uint64_t event = add(f, GW_REC_EVENT, "events", "{\"key\":\"s1/r\"}");
    struct gw_store_stats st;
    gw_store_stats(f->st, &st);
    assert_false(st.failing);
    assert_int_equal(st.committed_seq, event);
    struct hazard_seen h = {0};
    assert_int_equal(gw_store_hazard_log(f->st, NULL, INT64_MIN, on_hazard_row, &h), 1);
    assert_string_equal(h.rows[0].hazard, "HZ-20261128-001");
    /* all records are in the outbox for the sinks all the same */
    assert_int_equal(rows_on_disk(f), 6);
}

/* A version 2 state.db (before hazards) gets hazard_log and keeps everything it had. */
static void migration_from_v2_keeps_rows(void **state)
{
    struct fx *f = *state;
    gw_store_close(f->st);
    f->st = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -f %s/state.db*", f->dir);
    assert_int_equal(system(cmd), 0);
    /* the schema as version 2 left it (store_sql.h at that version) */
    static const char v2[] =
        "CREATE TABLE outbox(seq INTEGER PRIMARY KEY, stream INTEGER NOT NULL, type INTEGER NOT "
        "NULL, ts INTEGER NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL);"
        "CREATE INDEX outbox_by_stream ON outbox(stream, seq);"
        "CREATE TABLE cursors(sink TEXT NOT NULL, stream INTEGER NOT NULL, seq INTEGER NOT NULL,"
        " PRIMARY KEY(sink, stream));"
        "CREATE TABLE alarm_state(key TEXT PRIMARY KEY, payload TEXT NOT NULL, seq INTEGER NOT "
        "NULL);"
        "CREATE TABLE dead_letters(id INTEGER PRIMARY KEY, sink TEXT NOT NULL, seq INTEGER NOT "
        "NULL, type INTEGER NOT NULL, ts INTEGER NOT NULL, topic TEXT NOT NULL, payload TEXT NOT "
        "NULL, error TEXT NOT NULL, at INTEGER NOT NULL);"
        "CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE alarm_history(seq INTEGER PRIMARY KEY, key TEXT NOT NULL, ts INTEGER NOT "
        "NULL, payload TEXT NOT NULL);"
        "CREATE INDEX alarm_history_by_key ON alarm_history(key, seq);"
        "INSERT INTO outbox VALUES (7, 0, 3, 1007, 'events', '{\"key\":\"s1/r\"}');"
        "INSERT INTO alarm_history VALUES (7, 's1/r', 1007, '{\"key\":\"s1/r\"}');"
        "INSERT INTO alarm_state VALUES ('s1/r', '{\"key\":\"s1/r\"}', 7);"
        "INSERT INTO kv VALUES ('esc.s1/r', '{}');"
        "PRAGMA user_version = 2;";
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v2, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    f->st = gw_store_open(f->dir, &f->cfg);
    assert_non_null(f->st);
    assert_int_equal(rows_on_disk(f), 1);
    struct history_seen h = {0};
    assert_int_equal(gw_store_history(f->st, "s1/r", 0, 10, on_history, &h), 1);
    assert_int_equal(kv_list(f, "esc.").n, 1);
    assert_int_equal(hazard_rows_on_disk(f), 0);
    f->seq = 7;
    add_entry(f, 1, "HZ-20261128-001", 5000);
    assert_int_equal(hazard_rows_on_disk(f), 1);
    char *msg = NULL;
    assert_int_equal(exec_other(f, "DELETE FROM hazard_log", &msg), SQLITE_CONSTRAINT);
    sqlite3_free(msg);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 4);
    sqlite3_finalize(s);
    /* v4: history by time */
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                        " AND name = 'alarm_history_by_ts'",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    sqlite3_finalize(s);
    sqlite3_close(db);
    /* opened again: nothing to migrate, nothing lost */
    reopen(f);
    assert_int_equal(hazard_rows_on_disk(f), 1);
    assert_int_equal(rows_on_disk(f), 2);
}

/* History from a time on: the first page starts at the range (by the ts index), later pages
 * continue after the seq given, rows out of time order are still judged by their own ts. */
static void history_since_starts_at_the_time_range(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 50; i++) {
        add(f, GW_REC_EVENT, "events", "{\"key\":\"s1/r\",\"transition\":\"raise\"}");
    }
    assert_int_equal(gw_store_commit(f->st), 0);
    /* a late row recorded with an old time: never in a range that starts after it */
    char *msg = NULL;
    assert_int_equal(exec_other(f,
                                "INSERT INTO alarm_history(seq, key, ts, payload) VALUES "
                                "(1000, 's9/r', 5, '{\"key\":\"s9/r\"}')",
                                &msg),
                     SQLITE_OK);
    sqlite3_free(msg);
    struct history_seen all = {0};
    /* add() gives row seq the time 1000 + seq: from 1040 on are seqs 40..50 */
    assert_int_equal(gw_store_history_since(f->st, 1040, 0, 100, on_history_seq_any, &all), 11);
    memset(&all, 0, sizeof(all));
    assert_int_equal(gw_store_history_since(f->st, 1040, 45, 100, on_history_seq_any, &all), 5);
    memset(&all, 0, sizeof(all));
    assert_int_equal(gw_store_history_since(f->st, 1040, 0, 4, on_history_seq_any, &all), 4);
    memset(&all, 0, sizeof(all));
    assert_int_equal(gw_store_history_since(f->st, 5000, 0, 100, on_history_seq_any, &all), 0);
    memset(&all, 0, sizeof(all));
    assert_int_equal(gw_store_history_since(f->st, 0, 0, 100, on_history_seq_any, &all), 51);
}

/* The time-range reads use the ts index to find the start and the primary key to page: a
 * planner that walks every older row instead made the first page cost 0.25 s per million. */
static void history_queries_use_their_indexes(void **state)
{
    struct fx *f = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const struct {
        enum store_stmt which;
        const char *plan;
    } want[] = {
        {ST_HISTORY_FIRST, "USING COVERING INDEX alarm_history_by_ts"},
        {ST_HISTORY_SINCE, "USING INTEGER PRIMARY KEY"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char sql[512];
        snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", store_sql[want[i].which]);
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        char plan[512] = "";
        while (sqlite3_step(s) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(s, 3);
            size_t n = strlen(plan);
            snprintf(plan + n, sizeof(plan) - n, "%s; ", detail ? detail : "");
        }
        sqlite3_finalize(s);
        if (!strstr(plan, want[i].plan)) {
            print_error("%s\n plan: %s\n want: %s\n", store_sql[want[i].which], plan, want[i].plan);
        }
        assert_non_null(strstr(plan, want[i].plan));
    }
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(telemetry_waits_for_group_commit_alarm_does_not, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_batch_commits_its_alarms_once, setup, teardown),
        cmocka_unit_test_setup_teardown(commit_wanted_after_commit_records, setup, teardown),
        cmocka_unit_test_setup_teardown(streams_read_in_order_committed_then_pending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cursors_survive_restart_and_trim_what_all_have, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(uncommitted_cursor_moves_are_redelivered_after_a_crash,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(alarm_state_follows_alarm_records, setup, teardown),
        cmocka_unit_test_setup_teardown(history_since_starts_at_the_time_range, setup, teardown),
        cmocka_unit_test_setup_teardown(history_queries_use_their_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(full_outbox_drops_oldest_telemetry_never_alarms, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failing_disk_keeps_alarms_in_memory_and_recovers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(steady_state_stays_small, setup, teardown),
        cmocka_unit_test_setup_teardown(dead_letters_are_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(kv_serves_uncommitted_values_and_survives_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(alarm_history_outlives_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(hazard_log_outlives_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(hazard_log_is_append_only, setup, teardown),
        cmocka_unit_test_setup_teardown(hazard_log_odd_records_never_block_alarms, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_from_v2_keeps_rows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
