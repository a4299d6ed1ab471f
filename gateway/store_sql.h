/* Every SQL statement of the store, by name: prepared once at open and reused. */
#ifndef GW_STORE_SQL_H
#define GW_STORE_SQL_H

/* Bump with a new entry in migrations[] (store.c) whenever the schema changes. */
#define GW_STORE_SCHEMA_VERSION 4

/* Version 0 -> 1. */
#define SQL_SCHEMA_V1                                                                              \
    "CREATE TABLE outbox(seq INTEGER PRIMARY KEY, stream INTEGER NOT NULL, type INTEGER NOT NULL," \
    " ts INTEGER NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL);"                           \
    "CREATE INDEX outbox_by_stream ON outbox(stream, seq);"                                        \
    "CREATE TABLE cursors(sink TEXT NOT NULL, stream INTEGER NOT NULL, seq INTEGER NOT NULL,"      \
    " PRIMARY KEY(sink, stream));"                                                                 \
    "CREATE TABLE alarm_state(key TEXT PRIMARY KEY, payload TEXT NOT NULL, seq INTEGER NOT NULL);" \
    "CREATE TABLE dead_letters(id INTEGER PRIMARY KEY, sink TEXT NOT NULL, seq INTEGER NOT NULL,"  \
    " type INTEGER NOT NULL, ts INTEGER NOT NULL, topic TEXT NOT NULL, payload TEXT NOT NULL,"     \
    " error TEXT NOT NULL, at INTEGER NOT NULL);"                                                  \
    "CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);"

/* Version 1 -> 2: every alarm transition and command, kept (P/events is gone once delivered). */
#define SQL_SCHEMA_V2                                                                              \
    "CREATE TABLE alarm_history(seq INTEGER PRIMARY KEY, key TEXT NOT NULL, ts INTEGER NOT NULL,"  \
    " payload TEXT NOT NULL);"                                                                     \
    "CREATE INDEX alarm_history_by_key ON alarm_history(key, seq);"

/*
 * Version 2 -> 3: the hazard register's history (hazards.h), one row per chain entry, n = the
 * entry's seq. Append-only: the triggers refuse any UPDATE or DELETE (and an INSERT OR REPLACE,
 * which deletes without firing the delete trigger), so not even the gateway
 * can rewrite the history (tampering needs the triggers dropped first, and then the hash chain
 * shows it).
 */
#define SQL_SCHEMA_V3                                                                              \
    "CREATE TABLE hazard_log(n INTEGER PRIMARY KEY, hazard TEXT NOT NULL, at INTEGER NOT NULL,"    \
    " entry TEXT NOT NULL);"                                                                       \
    "CREATE INDEX hazard_log_by_hazard ON hazard_log(hazard, n);"                                  \
    "CREATE TRIGGER hazard_log_no_update BEFORE UPDATE ON hazard_log"                              \
    " BEGIN SELECT RAISE(ABORT, 'hazard_log is append-only'); END;"                                \
    "CREATE TRIGGER hazard_log_no_delete BEFORE DELETE ON hazard_log"                              \
    " BEGIN SELECT RAISE(ABORT, 'hazard_log is append-only'); END;"                                \
    "CREATE TRIGGER hazard_log_no_replace BEFORE INSERT ON hazard_log"                             \
    " WHEN EXISTS (SELECT 1 FROM hazard_log WHERE n = NEW.n)"                                      \
    " BEGIN SELECT RAISE(ABORT, 'hazard_log is append-only'); END;"

/* Version 3 -> 4: the daily log and the school figures look history up by time; without
 * this their first query stepped over every older row (0.24 s per million on x86). */
#define SQL_SCHEMA_V4 "CREATE INDEX alarm_history_by_ts ON alarm_history(ts);"

enum store_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT,
    ST_ALARM_PUT,
    ST_ALARM_DEL,
    ST_ALARM_ALL,
    ST_READ,
    ST_CURSOR_GET,
    ST_CURSOR_PUT,
    ST_CURSOR_DEL,
    ST_TRIM,
    ST_DROP_OLDEST,
    ST_COUNT,
    ST_PAGE_SIZE,
    ST_DEAD_LETTER,
    ST_COUNT_DEAD,
    ST_KV_PUT,
    ST_KV_DEL,
    ST_KV_PREFIX,
    ST_HISTORY_PUT,
    ST_HISTORY_KEY,
    ST_HISTORY_SINCE,
    ST_HISTORY_FIRST,
    ST_HAZARD_PUT,
    ST_HAZARD_GET,
    ST_HAZARD_READ,
    ST_HAZARD_LAST,
    ST_NSTMTS
};

static const char *const store_sql[ST_NSTMTS] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT] = "INSERT INTO outbox(seq, stream, type, ts, topic, payload) VALUES (?,?,?,?,?,?)",
    [ST_ALARM_PUT] = "INSERT OR REPLACE INTO alarm_state(key, payload, seq) VALUES (?,?,?)",
    [ST_ALARM_DEL] = "DELETE FROM alarm_state WHERE key = ?",
    [ST_ALARM_ALL] = "SELECT key, payload FROM alarm_state ORDER BY seq",
    [ST_READ] = "SELECT seq, type, ts, topic, payload FROM outbox WHERE stream = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
    [ST_CURSOR_GET] = "SELECT seq FROM cursors WHERE sink = ? AND stream = ?",
    [ST_CURSOR_PUT] = "INSERT OR REPLACE INTO cursors(sink, stream, seq) VALUES (?,?,?)",
    [ST_CURSOR_DEL] = "DELETE FROM cursors WHERE sink = ?",
    [ST_TRIM] = "DELETE FROM outbox WHERE stream = ? AND seq <= ?",
    /* Only the data stream is ever dropped: alarms are never dropped. */
    [ST_DROP_OLDEST] = "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE stream = 1"
                       " ORDER BY seq LIMIT ?)",
    [ST_COUNT] = "SELECT count(*) FROM outbox",
    [ST_PAGE_SIZE] = "PRAGMA page_size",
    [ST_DEAD_LETTER] = "INSERT INTO dead_letters(sink, seq, type, ts, topic, payload, error, at)"
                       " VALUES (?,?,?,?,?,?,?,?)",
    [ST_COUNT_DEAD] = "SELECT count(*) FROM dead_letters",
    [ST_KV_PUT] = "INSERT OR REPLACE INTO kv(key, value) VALUES (?,?)",
    [ST_KV_DEL] = "DELETE FROM kv WHERE key = ?",
    [ST_HISTORY_PUT] =
        "INSERT OR IGNORE INTO alarm_history(seq, key, ts, payload) VALUES (?,?,?,?)",
    [ST_HISTORY_KEY] = "SELECT payload FROM alarm_history WHERE key = ? AND seq > ? ORDER BY seq"
                       " LIMIT ?",
    /* "+ts": page along the primary key (seq order), not the ts index (which would sort
     * every row of the range again for each page). */
    [ST_HISTORY_SINCE] = "SELECT seq, payload, ts FROM alarm_history WHERE +ts >= ? AND seq > ?"
                         " ORDER BY seq LIMIT ?",
    /* Where a time range starts, by the ts index: no row before this seq is recent enough.
     * "+seq": a plain min(seq) walks the table in seq order from the oldest row instead. */
    [ST_HISTORY_FIRST] = "SELECT min(+seq) FROM alarm_history WHERE ts >= ?",
    /* Plain INSERT: OR REPLACE would delete the old row without firing the delete trigger. */
    [ST_HAZARD_PUT] = "INSERT INTO hazard_log(n, hazard, at, entry) VALUES (?,?,?,?)",
    [ST_HAZARD_GET] = "SELECT entry FROM hazard_log WHERE n = ?",
    [ST_HAZARD_READ] =
        "SELECT n, hazard, at, entry FROM hazard_log WHERE (?1 IS NULL OR hazard = ?1)"
        " AND at >= ?2 ORDER BY n",
    [ST_HAZARD_LAST] = "SELECT n, hazard, at, entry FROM hazard_log ORDER BY n DESC LIMIT 1",
    [ST_KV_PREFIX] = "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key",
};

#endif
