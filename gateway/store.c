#include "store.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "store_sql.h"

#define MOD "store"
#define MAX_SINKS 8
#define SINK_NAME_MAX 32
/* While commits fail, at most this many telemetry records wait in memory (alarms: no limit). */
#define PENDING_DATA_MAX 50000
/* Drop in chunks so one full outbox does not mean one huge DELETE. */
#define DROP_CHUNK 2000
/* Free this much below max_mb once full, so the next records do not drop again at once. */
#define DROP_HEADROOM_PCT 5

struct pending {
    struct gw_record rec;
    enum gw_stream stream;
};

struct sink_cursor {
    char name[SINK_NAME_MAX];
    uint64_t seq[GW_NSTREAMS];
    bool dirty;
};

struct kv_entry {
    char *key;
    char *value;
};

struct gw_store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_NSTMTS];
    char *path;
    struct gw_store_cfg cfg;

    struct pending *pending;
    int npending, cap_pending;
    int pending_data;

    struct sink_cursor sinks[MAX_SINKS];
    int nsinks;

    int batch_depth;    /* gw_store_begin_batch nesting */
    bool batch_alarms;  /* alarm records appended in the batch */
    uint64_t committed; /* rows in the outbox table */
    uint64_t page_size;
    struct gw_store_stats stats;
    struct gw_complaint write_complaint;
    struct gw_complaint full_complaint;
    uint64_t dropped_since_log;

    struct kv_entry *kv_dirty; /* set since the last commit */
    int nkv_dirty, cap_kv_dirty;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static sqlite3_stmt *stmt(struct gw_store *st, enum store_stmt id)
{
    sqlite3_stmt *s = st->stmt[id];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/* Run a statement that returns no rows. */
static int run(struct gw_store *st, enum store_stmt id)
{
    int rc = sqlite3_step(stmt(st, id));
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Reset before returning: a statement left on a row holds a read snapshot open, and the WAL
 * can then never be checkpointed (it grows without end). */
static int64_t query_int(struct gw_store *st, enum store_stmt id)
{
    sqlite3_stmt *s = stmt(st, id);
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return v;
}

static void note_error(struct gw_store *st, const char *what)
{
    snprintf(st->stats.last_error, sizeof(st->stats.last_error), "%s: %s", what,
             sqlite3_errmsg(st->db));
}

/* ---- open, migrate ---- */

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        gw_error(MOD, "sql failed error=\"%s\"", msg ? msg : sqlite3_errstr(rc));
    }
    sqlite3_free(msg);
    return rc;
}

static int migrate(sqlite3 *db, const char *path)
{
    static const char *const migrations[GW_STORE_SCHEMA_VERSION] = {SQL_SCHEMA_V1, SQL_SCHEMA_V2,
                                                                    SQL_SCHEMA_V3, SQL_SCHEMA_V4};
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK) {
        return -EIO;
    }
    int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    if (version > GW_STORE_SCHEMA_VERSION) {
        gw_error(MOD,
                 "state.db is from a newer campusgw (schema %d, this one knows %d): refusing to "
                 "touch it path=%s",
                 version, GW_STORE_SCHEMA_VERSION, path);
        return -EPROTO;
    }
    for (int v = version; v < GW_STORE_SCHEMA_VERSION; v++) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d;", v + 1);
        if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK) {
            return -EIO;
        }
        if (exec(db, migrations[v]) != SQLITE_OK || exec(db, bump) != SQLITE_OK) {
            exec(db, "ROLLBACK");
            return -EIO;
        }
        if (exec(db, "COMMIT") != SQLITE_OK) {
            return -EIO;
        }
        gw_info(MOD, "schema migrated from=%d to=%d path=%s", v, v + 1, path);
    }
    return 0;
}

struct gw_store *gw_store_open(const char *state_dir, const struct gw_store_cfg *cfg)
{
    struct gw_store *st = calloc(1, sizeof(*st));
    if (!st) {
        return NULL;
    }
    st->cfg = *cfg;
    if (st->cfg.commit_records <= 0) {
        st->cfg.commit_records = 1000;
    }
    if (st->cfg.max_mb <= 0) {
        st->cfg.max_mb = 512;
    }
    if (mkdir(state_dir, 0750) != 0 && errno != EEXIST) {
        gw_error(MOD, "cannot create state_dir path=%s error=\"%s\"", state_dir, strerror(errno));
        goto fail;
    }
    size_t len = strlen(state_dir) + sizeof("/state.db");
    st->path = malloc(len);
    if (!st->path) {
        goto fail;
    }
    snprintf(st->path, len, "%s/state.db", state_dir);
    if (sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        gw_error(MOD, "cannot open path=%s error=\"%s\"", st->path,
                 st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 1000);
    /*
     * WAL: readers never block the writer. synchronous=FULL: a commit is on the
     * SD card when it returns (alarms depend on it); group commit keeps that to
     * about one fsync a second.
     */
    if (exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "PRAGMA journal_size_limit=4194304; PRAGMA cache_size=-1024;") != SQLITE_OK) {
        goto fail;
    }
    if (migrate(st->db, st->path) != 0) {
        goto fail;
    }
    for (int i = 0; i < ST_NSTMTS; i++) {
        if (sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                               NULL) != SQLITE_OK) {
            gw_error(MOD, "cannot prepare statement=%d error=\"%s\"", i, sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    st->committed = (uint64_t)query_int(st, ST_COUNT);
    st->page_size = (uint64_t)query_int(st, ST_PAGE_SIZE);
    st->stats.dead_letters = (uint64_t)query_int(st, ST_COUNT_DEAD);
    gw_info(MOD, "opened path=%s outbox=%llu", st->path, (unsigned long long)st->committed);
    return st;
fail:
    gw_store_close(st);
    return NULL;
}

static void free_pending(struct gw_store *st)
{
    for (int i = 0; i < st->npending; i++) {
        free(st->pending[i].rec.topic);
        free(st->pending[i].rec.payload);
    }
    free(st->pending);
    st->pending = NULL;
    st->npending = st->cap_pending = st->pending_data = 0;
}

static void free_kv_dirty(struct gw_store *st)
{
    for (int i = 0; i < st->nkv_dirty; i++) {
        free(st->kv_dirty[i].key);
        free(st->kv_dirty[i].value);
    }
    free(st->kv_dirty);
    st->kv_dirty = NULL;
    st->nkv_dirty = st->cap_kv_dirty = 0;
}

void gw_store_close(struct gw_store *st)
{
    if (!st) {
        return;
    }
    if (st->db && st->stmt[ST_COMMIT] &&
        (st->npending > 0 || st->nsinks > 0 || st->nkv_dirty > 0)) {
        gw_store_commit(st);
    }
    if (st->npending > 0) {
        gw_error(MOD, "closing with %d records not committed", st->npending);
    }
    free_pending(st);
    free_kv_dirty(st);
    for (int i = 0; i < ST_NSTMTS; i++) {
        sqlite3_finalize(st->stmt[i]);
    }
    if (st->db) {
        sqlite3_close(st->db);
    }
    free(st->path);
    free(st);
}

/* ---- appending and committing ---- */

static char *dup_or_null(const char *s)
{
    return strdup(s ? s : "");
}

/* While commits fail: drop the oldest waiting telemetry beyond the limit (never alarms). */
static void limit_pending(struct gw_store *st)
{
    if (st->pending_data <= PENDING_DATA_MAX) {
        return;
    }
    int j = 0;
    int excess = st->pending_data - PENDING_DATA_MAX;
    for (int i = 0; i < st->npending; i++) {
        struct pending *p = &st->pending[i];
        if (excess > 0 && p->stream == GW_STREAM_DATA) {
            free(p->rec.topic);
            free(p->rec.payload);
            excess--;
            st->pending_data--;
            st->stats.dropped++;
            st->dropped_since_log++;
            continue;
        }
        st->pending[j++] = *p;
    }
    st->npending = j;
}

int gw_store_append(struct gw_store *st, uint64_t seq, enum gw_record_type type, int64_t ts_ms,
                    const char *topic, const char *payload)
{
    if (st->npending == st->cap_pending) {
        int cap = st->cap_pending ? st->cap_pending * 2 : 256;
        struct pending *p = realloc(st->pending, sizeof(*p) * (size_t)cap);
        if (!p) {
            gw_error(MOD, "out of memory: record seq=%llu lost", (unsigned long long)seq);
            return -ENOMEM;
        }
        st->pending = p;
        st->cap_pending = cap;
    }
    struct pending *p = &st->pending[st->npending];
    p->rec.seq = seq;
    p->rec.type = type;
    p->rec.ts_ms = ts_ms;
    p->rec.topic = dup_or_null(topic);
    p->rec.payload = dup_or_null(payload);
    if (!p->rec.topic || !p->rec.payload) {
        free(p->rec.topic);
        free(p->rec.payload);
        gw_error(MOD, "out of memory: record seq=%llu lost", (unsigned long long)seq);
        return -ENOMEM;
    }
    p->rec.payload_len = strlen(p->rec.payload);
    p->stream = gw_record_stream(type);
    st->stats.last_seq[p->stream] = seq;
    st->npending++;
    if (p->stream == GW_STREAM_DATA) {
        st->pending_data++;
        limit_pending(st);
        return 0;
    }
    if (st->batch_depth > 0) {
        st->batch_alarms = true;
        return 0;
    }
    /* An alarm is on disk before anyone is told of it. */
    return gw_store_commit(st);
}

void gw_store_begin_batch(struct gw_store *st)
{
    st->batch_depth++;
}

int gw_store_end_batch(struct gw_store *st)
{
    if (st->batch_depth > 0 && --st->batch_depth > 0) {
        return 0;
    }
    if (!st->batch_alarms) {
        return 0;
    }
    st->batch_alarms = false;
    return gw_store_commit(st);
}

bool gw_store_commit_wanted(const struct gw_store *st)
{
    return st->npending >= st->cfg.commit_records;
}

static int bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

/* An event (P/events) or a notification (P/notify: who was told) is also the alarm's history,
 * kept after delivery. */
static int keep_history(struct gw_store *st, const struct gw_record *rec)
{
    json_t *root = json_loadb(rec->payload, rec->payload_len, 0, NULL);
    const char *key = json_string_value(json_object_get(root, "key"));
    if (!key) {
        json_decref(root);
        return SQLITE_DONE; /* not an alarm event: nothing to keep */
    }
    sqlite3_stmt *s = stmt(st, ST_HISTORY_PUT);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)rec->seq);
    bind_text(s, 2, key);
    sqlite3_bind_int64(s, 3, rec->ts_ms);
    bind_text(s, 4, rec->payload);
    int rc = sqlite3_step(s);
    json_decref(root);
    return rc;
}

/*
 * A hazard register entry (P/hazards/log) is also a hazard_log row. A record that is not a
 * readable entry, or a chain seq already holding another entry, is logged and left out rather
 * than failing the commit: that would hold every alarm back. The hazard desk compares the
 * register with hazard_log and rebuilds it from the disk when they differ.
 */
static int keep_hazard_entry(struct gw_store *st, const struct gw_record *rec)
{
    json_t *root = json_loadb(rec->payload, rec->payload_len, 0, NULL);
    json_t *n = json_object_get(root, "seq");
    const char *hazard = json_string_value(json_object_get(root, "hazard"));
    json_t *at = json_object_get(root, "at");
    if (!json_is_integer(n) || json_integer_value(n) < 1 || !hazard || !json_is_integer(at)) {
        gw_error(MOD, "hazard log record seq=%llu is not a register entry; not kept in hazard_log",
                 (unsigned long long)rec->seq);
        json_decref(root);
        return SQLITE_DONE;
    }
    sqlite3_stmt *s = stmt(st, ST_HAZARD_PUT);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)json_integer_value(n));
    bind_text(s, 2, hazard);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)json_integer_value(at));
    bind_text(s, 4, rec->payload);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_CONSTRAINT) {
        s = stmt(st, ST_HAZARD_GET);
        sqlite3_bind_int64(s, 1, (sqlite3_int64)json_integer_value(n));
        const char *held =
            sqlite3_step(s) == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
        bool same = held && strcmp(held, rec->payload) == 0;
        sqlite3_reset(s);
        if (!same) {
            gw_error(MOD,
                     "hazard_log n=%lld already holds another entry; record seq=%llu not kept "
                     "there (two writers?)",
                     (long long)json_integer_value(n), (unsigned long long)rec->seq);
        }
        rc = SQLITE_DONE;
    }
    json_decref(root);
    return rc;
}

static int insert_pending(struct gw_store *st, const struct pending *p)
{
    sqlite3_stmt *s = stmt(st, ST_INSERT);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)p->rec.seq);
    sqlite3_bind_int(s, 2, p->stream);
    sqlite3_bind_int(s, 3, p->rec.type);
    sqlite3_bind_int64(s, 4, p->rec.ts_ms);
    bind_text(s, 5, p->rec.topic);
    bind_text(s, 6, p->rec.payload);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_CONSTRAINT) {
        /* Already there (a retry after a commit that did land): nothing to do. */
        return SQLITE_OK;
    }
    if (rc != SQLITE_DONE) {
        return rc;
    }
    if (p->rec.type == GW_REC_EVENT || p->rec.type == GW_REC_NOTIFY) {
        rc = keep_history(st, &p->rec);
        if (rc != SQLITE_DONE) {
            return rc;
        }
    }
    if (p->rec.type == GW_REC_HAZARD_LOG) {
        rc = keep_hazard_entry(st, &p->rec);
        if (rc != SQLITE_DONE) {
            return rc;
        }
    }
    if (p->rec.type == GW_REC_ALARM && strncmp(p->rec.topic, "alarms/", 7) == 0) {
        const char *key = p->rec.topic + 7;
        if (p->rec.payload[0]) {
            s = stmt(st, ST_ALARM_PUT);
            bind_text(s, 1, key);
            bind_text(s, 2, p->rec.payload);
            sqlite3_bind_int64(s, 3, (sqlite3_int64)p->rec.seq);
        } else {
            s = stmt(st, ST_ALARM_DEL);
            bind_text(s, 1, key);
        }
        rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) {
            return rc;
        }
    }
    return SQLITE_OK;
}

/* Delete what every registered sink has; persist the cursors that moved. */
static int trim_and_save_cursors(struct gw_store *st, uint64_t *trimmed)
{
    *trimmed = 0;
    if (st->nsinks == 0) {
        return SQLITE_OK;
    }
    for (int k = 0; k < st->nsinks; k++) {
        struct sink_cursor *c = &st->sinks[k];
        if (!c->dirty) {
            continue;
        }
        for (int stream = 0; stream < GW_NSTREAMS; stream++) {
            sqlite3_stmt *s = stmt(st, ST_CURSOR_PUT);
            bind_text(s, 1, c->name);
            sqlite3_bind_int(s, 2, stream);
            sqlite3_bind_int64(s, 3, (sqlite3_int64)c->seq[stream]);
            int rc = sqlite3_step(s);
            if (rc != SQLITE_DONE) {
                return rc;
            }
        }
    }
    for (int stream = 0; stream < GW_NSTREAMS; stream++) {
        uint64_t min = UINT64_MAX;
        for (int k = 0; k < st->nsinks; k++) {
            if (st->sinks[k].seq[stream] < min) {
                min = st->sinks[k].seq[stream];
            }
        }
        if (min == 0) {
            continue;
        }
        sqlite3_stmt *s = stmt(st, ST_TRIM);
        sqlite3_bind_int(s, 1, stream);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)min);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) {
            return rc;
        }
        *trimmed += (uint64_t)sqlite3_changes(st->db);
    }
    return SQLITE_OK;
}

/* Prepared fresh each time: a reused PRAGMA statement can return its first value forever. */
static int64_t pragma_int(struct gw_store *st, const char *sql)
{
    sqlite3_stmt *s;
    int64_t v = 0;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return v;
}

static uint64_t used_bytes(struct gw_store *st)
{
    int64_t pages = pragma_int(st, "PRAGMA page_count") - pragma_int(st, "PRAGMA freelist_count");
    return (uint64_t)(pages > 0 ? pages : 0) * st->page_size;
}

/* Outbox over max_mb: drop the oldest telemetry (never alarms), counted. */
static void enforce_capacity(struct gw_store *st)
{
    uint64_t limit = (uint64_t)st->cfg.max_mb * 1024 * 1024;
    if (used_bytes(st) <= limit) {
        return;
    }
    uint64_t target = limit / 100 * (100 - DROP_HEADROOM_PCT);
    uint64_t dropped = 0;
    uint64_t used;
    while ((used = used_bytes(st)) > target) {
        /* About as many rows as make up the excess, by the average row size. */
        uint64_t per_row = used / (st->committed ? st->committed : 1) + 1;
        uint64_t rows = (used - target) / per_row + 1;
        if (run(st, ST_BEGIN) != SQLITE_OK) {
            break;
        }
        sqlite3_stmt *s = stmt(st, ST_DROP_OLDEST);
        sqlite3_bind_int(s, 1, rows < DROP_CHUNK ? (int)rows : DROP_CHUNK);
        int rc = sqlite3_step(s);
        int n = rc == SQLITE_DONE ? sqlite3_changes(st->db) : 0;
        if (rc != SQLITE_DONE || run(st, ST_COMMIT) != SQLITE_OK) {
            run(st, ST_ROLLBACK);
            break;
        }
        if (n == 0) {
            break; /* only alarms left: they stay */
        }
        dropped += (uint64_t)n;
        st->committed -= (uint64_t)n;
    }
    st->stats.dropped += dropped;
    st->dropped_since_log += dropped;
}

static void log_drops(struct gw_store *st)
{
    if (st->dropped_since_log == 0) {
        return;
    }
    /* At most one line a minute however long the outbox stays full. */
    if (gw_complain(&st->full_complaint, wall_ms())) {
        gw_warn(MOD, "outbox full: dropped oldest telemetry count=%llu total=%llu max_mb=%d",
                (unsigned long long)st->dropped_since_log, (unsigned long long)st->stats.dropped,
                st->cfg.max_mb);
        st->dropped_since_log = 0;
        st->full_complaint.interval_ms = 60000; /* keep it at once a minute, no growth */
    }
}

int gw_store_commit(struct gw_store *st)
{
    bool cursors_dirty = false;
    for (int k = 0; k < st->nsinks; k++) {
        cursors_dirty = cursors_dirty || st->sinks[k].dirty;
    }
    if (st->npending == 0 && !cursors_dirty && st->nkv_dirty == 0) {
        log_drops(st);
        return 0;
    }
    int rc = run(st, ST_BEGIN);
    const char *what = "begin";
    int i = 0;
    for (; rc == SQLITE_OK && i < st->npending; i++) {
        rc = insert_pending(st, &st->pending[i]);
        what = "insert";
    }
    for (int k = 0; rc == SQLITE_OK && k < st->nkv_dirty; k++) {
        sqlite3_stmt *s = stmt(st, st->kv_dirty[k].value ? ST_KV_PUT : ST_KV_DEL);
        bind_text(s, 1, st->kv_dirty[k].key);
        if (st->kv_dirty[k].value) {
            bind_text(s, 2, st->kv_dirty[k].value);
        }
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(st->db);
        what = "kv";
    }
    uint64_t trimmed = 0;
    if (rc == SQLITE_OK) {
        rc = trim_and_save_cursors(st, &trimmed);
        what = "trim";
    }
    if (rc == SQLITE_OK) {
        rc = run(st, ST_COMMIT);
        what = "commit";
    }
    if (rc != SQLITE_OK) {
        note_error(st, what);
        run(st, ST_ROLLBACK);
        st->stats.write_errors++;
        st->stats.failing = true;
        if (gw_complain(&st->write_complaint, wall_ms())) {
            gw_error(MOD, "commit failed; %d records kept in memory and retried error=\"%s\"",
                     st->npending, st->stats.last_error);
        }
        return rc == SQLITE_FULL ? -ENOSPC : -EIO;
    }
    if (st->stats.failing && gw_release(&st->write_complaint)) {
        gw_info(MOD, "commits work again; %d waiting records written", st->npending);
    }
    st->stats.failing = false;
    st->stats.commits++;
    st->stats.fsyncs++;
    st->committed += (uint64_t)st->npending;
    st->committed = st->committed > trimmed ? st->committed - trimmed : 0;
    for (int k = 0; k < st->nsinks; k++) {
        st->sinks[k].dirty = false;
    }
    for (int j = 0; j < st->npending; j++) {
        if (st->pending[j].rec.seq > st->stats.committed_seq) {
            st->stats.committed_seq = st->pending[j].rec.seq;
        }
        free(st->pending[j].rec.topic);
        free(st->pending[j].rec.payload);
    }
    st->npending = 0;
    st->pending_data = 0;
    for (int k = 0; k < st->nkv_dirty; k++) {
        free(st->kv_dirty[k].key);
        free(st->kv_dirty[k].value);
    }
    st->nkv_dirty = 0;
    enforce_capacity(st);
    log_drops(st);
    return 0;
}

/* ---- small persistent state ---- */

static struct kv_entry *find_dirty(struct gw_store *st, const char *key)
{
    for (int i = 0; i < st->nkv_dirty; i++) {
        if (strcmp(st->kv_dirty[i].key, key) == 0) {
            return &st->kv_dirty[i];
        }
    }
    return NULL;
}

int gw_store_kv_set(struct gw_store *st, const char *key, const char *value)
{
    char *v = NULL;
    if (value && !(v = strdup(value))) {
        return -ENOMEM;
    }
    struct kv_entry *e = find_dirty(st, key);
    if (e) {
        free(e->value);
        e->value = v;
        return 0;
    }
    if (st->nkv_dirty == st->cap_kv_dirty) {
        int cap = st->cap_kv_dirty ? st->cap_kv_dirty * 2 : 16;
        struct kv_entry *p = realloc(st->kv_dirty, sizeof(*p) * (size_t)cap);
        if (!p) {
            free(v);
            return -ENOMEM;
        }
        st->kv_dirty = p;
        st->cap_kv_dirty = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return -ENOMEM;
    }
    st->kv_dirty[st->nkv_dirty++] = (struct kv_entry){k, v};
    return 0;
}

int gw_store_kv_delete(struct gw_store *st, const char *key)
{
    return gw_store_kv_set(st, key, NULL);
}

int gw_store_history(struct gw_store *st, const char *key, uint64_t after, int max,
                     gw_store_history_fn fn, void *ctx)
{
    sqlite3_stmt *s = stmt(st, ST_HISTORY_KEY);
    bind_text(s, 1, key);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)after);
    sqlite3_bind_int(s, 3, max);
    int rc, n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *payload = (const char *)sqlite3_column_text(s, 0);
        if (payload) {
            fn(ctx, payload);
            n++;
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        note_error(st, "history read");
        return -EIO;
    }
    return n;
}

int gw_store_history_since(struct gw_store *st, int64_t since_ms, uint64_t after, int max,
                           gw_store_history_seq_fn fn, void *ctx)
{
    if (after == 0) {
        /* The first page: start at the range's first row instead of the table's. */
        sqlite3_stmt *f = stmt(st, ST_HISTORY_FIRST);
        sqlite3_bind_int64(f, 1, since_ms);
        int frc = sqlite3_step(f);
        if (frc == SQLITE_ROW && sqlite3_column_type(f, 0) == SQLITE_INTEGER) {
            after = (uint64_t)sqlite3_column_int64(f, 0) - 1;
        } else if (frc == SQLITE_ROW) {
            sqlite3_reset(f);
            return 0; /* nothing that recent */
        }
        sqlite3_reset(f);
        if (frc != SQLITE_ROW) {
            note_error(st, "history read");
            return -EIO;
        }
    }
    sqlite3_stmt *s = stmt(st, ST_HISTORY_SINCE);
    sqlite3_bind_int64(s, 1, since_ms);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)after);
    sqlite3_bind_int(s, 3, max);
    int rc, n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *payload = (const char *)sqlite3_column_text(s, 1);
        if (payload) {
            fn(ctx, (uint64_t)sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 2), payload);
            n++;
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        note_error(st, "history read");
        return -EIO;
    }
    return n;
}

static int hazard_rows(struct gw_store *st, sqlite3_stmt *s, gw_store_hazard_fn fn, void *ctx)
{
    int rc, n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *hazard = (const char *)sqlite3_column_text(s, 1);
        const char *entry = (const char *)sqlite3_column_text(s, 3);
        if (hazard && entry) {
            fn(ctx, (uint64_t)sqlite3_column_int64(s, 0), hazard, sqlite3_column_int64(s, 2),
               entry);
            n++;
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        note_error(st, "hazard log read");
        return -EIO;
    }
    return n;
}

int gw_store_hazard_log(struct gw_store *st, const char *hazard, int64_t since_ms,
                        gw_store_hazard_fn fn, void *ctx)
{
    sqlite3_stmt *s = stmt(st, ST_HAZARD_READ);
    if (hazard) {
        bind_text(s, 1, hazard);
    }
    sqlite3_bind_int64(s, 2, since_ms);
    return hazard_rows(st, s, fn, ctx);
}

int gw_store_hazard_last(struct gw_store *st, gw_store_hazard_fn fn, void *ctx)
{
    return hazard_rows(st, stmt(st, ST_HAZARD_LAST), fn, ctx);
}

int gw_store_kv_each(struct gw_store *st, const char *prefix, gw_store_kv_fn fn, void *ctx)
{
    size_t plen = strlen(prefix);
    sqlite3_stmt *s = stmt(st, ST_KV_PREFIX);
    sqlite3_bind_int(s, 1, (int)plen);
    bind_text(s, 2, prefix);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(s, 0);
        const char *value = (const char *)sqlite3_column_text(s, 1);
        if (key && value && !find_dirty(st, key)) {
            fn(ctx, key, value);
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        note_error(st, "kv read");
        return -EIO;
    }
    for (int i = 0; i < st->nkv_dirty; i++) {
        if (st->kv_dirty[i].value && strncmp(st->kv_dirty[i].key, prefix, plen) == 0) {
            fn(ctx, st->kv_dirty[i].key, st->kv_dirty[i].value);
        }
    }
    return 0;
}

/* ---- reading ---- */

static int copy_record(struct gw_record *out, uint64_t seq, int type, int64_t ts, const char *topic,
                       const char *payload)
{
    out->seq = seq;
    out->type = (enum gw_record_type)type;
    out->ts_ms = ts;
    out->topic = dup_or_null(topic);
    out->payload = dup_or_null(payload);
    if (!out->topic || !out->payload) {
        free(out->topic);
        free(out->payload);
        return -ENOMEM;
    }
    out->payload_len = strlen(out->payload);
    return 0;
}

int gw_store_read(struct gw_store *st, enum gw_stream stream, uint64_t after, int max,
                  struct gw_record *out)
{
    int n = 0;
    sqlite3_stmt *s = stmt(st, ST_READ);
    sqlite3_bind_int(s, 1, stream);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)after);
    sqlite3_bind_int(s, 3, max);
    int rc;
    while (n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(s, 0);
        if (copy_record(&out[n], seq, sqlite3_column_int(s, 1), sqlite3_column_int64(s, 2),
                        (const char *)sqlite3_column_text(s, 3),
                        (const char *)sqlite3_column_text(s, 4)) != 0) {
            break;
        }
        after = seq;
        n++;
    }
    sqlite3_reset(s);
    /*
     * Then what waits for the next commit: telemetry at once (it may go before its
     * commit), alarms only while the disk fails (they go before their commit only
     * when a commit is not possible).
     */
    if (stream == GW_STREAM_ALARM && !st->stats.failing) {
        return n;
    }
    for (int i = 0; i < st->npending && n < max; i++) {
        const struct pending *p = &st->pending[i];
        if (p->stream != stream || p->rec.seq <= after) {
            continue;
        }
        if (copy_record(&out[n], p->rec.seq, p->rec.type, p->rec.ts_ms, p->rec.topic,
                        p->rec.payload) != 0) {
            break;
        }
        n++;
    }
    return n;
}

void gw_store_records_free(struct gw_record *recs, int n)
{
    for (int i = 0; i < n; i++) {
        free(recs[i].topic);
        free(recs[i].payload);
        recs[i].topic = recs[i].payload = NULL;
    }
}

/* ---- cursors ---- */

static struct sink_cursor *find_sink(struct gw_store *st, const char *sink)
{
    for (int k = 0; k < st->nsinks; k++) {
        if (strcmp(st->sinks[k].name, sink) == 0) {
            return &st->sinks[k];
        }
    }
    return NULL;
}

int gw_store_register_sink(struct gw_store *st, const char *sink)
{
    if (find_sink(st, sink)) {
        return 0;
    }
    if (st->nsinks == MAX_SINKS || strlen(sink) >= SINK_NAME_MAX) {
        return -EINVAL;
    }
    struct sink_cursor *c = &st->sinks[st->nsinks++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", sink);
    for (int stream = 0; stream < GW_NSTREAMS; stream++) {
        sqlite3_stmt *s = stmt(st, ST_CURSOR_GET);
        bind_text(s, 1, sink);
        sqlite3_bind_int(s, 2, stream);
        if (sqlite3_step(s) == SQLITE_ROW) {
            c->seq[stream] = (uint64_t)sqlite3_column_int64(s, 0);
        }
        sqlite3_reset(s);
    }
    return 0;
}

int gw_store_unregister_sink(struct gw_store *st, const char *sink)
{
    struct sink_cursor *c = find_sink(st, sink);
    if (c) {
        *c = st->sinks[--st->nsinks];
    }
    sqlite3_stmt *s = stmt(st, ST_CURSOR_DEL);
    bind_text(s, 1, sink);
    return sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
}

uint64_t gw_store_cursor(struct gw_store *st, const char *sink, enum gw_stream stream)
{
    struct sink_cursor *c = find_sink(st, sink);
    return c ? c->seq[stream] : 0;
}

int gw_store_set_cursor(struct gw_store *st, const char *sink, enum gw_stream stream, uint64_t seq)
{
    struct sink_cursor *c = find_sink(st, sink);
    if (!c) {
        return -ENOENT;
    }
    if (seq > c->seq[stream]) {
        c->seq[stream] = seq;
        c->dirty = true; /* saved with the next group commit */
    }
    return 0;
}

/* ---- dead letters, alarms, stats ---- */

int gw_store_dead_letter(struct gw_store *st, const char *sink, const struct gw_record *rec,
                         const char *error, int64_t now_ms)
{
    sqlite3_stmt *s = stmt(st, ST_DEAD_LETTER);
    bind_text(s, 1, sink);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)rec->seq);
    sqlite3_bind_int(s, 3, rec->type);
    sqlite3_bind_int64(s, 4, rec->ts_ms);
    bind_text(s, 5, rec->topic);
    bind_text(s, 6, rec->payload);
    bind_text(s, 7, error ? error : "");
    sqlite3_bind_int64(s, 8, now_ms);
    if (sqlite3_step(s) != SQLITE_DONE) {
        note_error(st, "dead letter");
        return -EIO;
    }
    st->stats.dead_letters++;
    return 0;
}

int gw_store_load_alarms(struct gw_store *st, gw_store_alarm_fn fn, void *ctx)
{
    sqlite3_stmt *s = stmt(st, ST_ALARM_ALL);
    int rc;
    int n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        fn(ctx, (const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1));
        n++;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? n : -EIO;
}

void gw_store_stats(const struct gw_store *st, struct gw_store_stats *out)
{
    *out = st->stats;
    out->pending = (uint64_t)st->npending;
    out->outbox = st->committed + (uint64_t)st->npending;
}
