/*
 * The daily safety log, wired (the text itself is daily_log.c's).
 *
 * At 00:05 site time (the process TZ is site.timezone) the previous day's log
 * is written to state_dir/logs/YYYY-MM-DD.md and .csv (atomically: a temp
 * file, fsync, rename, fsync of the directory; mode 0640, the directory
 * 0750) and its summary goes out as P/log (GW_REC_DAILY_LOG, retained) with a
 * "seq" in front. At start the newest due day is written if its files are
 * missing (the gateway was down at 00:05); older days only on demand. A day
 * whose two files are there is never written again, so a clock stepped back
 * does not write twice; one stepped forward writes each day passed (at most
 * a week). The wall clock is looked at least once a minute. A failed write
 * (disk full, the directory not writable) is logged and retried every hour.
 *
 * P/cmd/report {"day","format":"md"|"csv","id"?} -> P/cmd/result with the
 * whole text ("text"), from the file when it was written, else built from the
 * store; today is allowed (the Markdown says up to when, "complete": false).
 *
 * A build (the nightly write, a report, gw_daylog_render_async) holds the loop
 * a few milliseconds at a time at most, so an alarm arriving meanwhile is not
 * held up by it: the alarm history is read a page of rows per loop turn, the
 * hazard register and the input assembled in one more turn, then the Markdown
 * and CSV (the JSON of every row parsed) are built on libuv's thread pool from
 * copies the job owns. The result is delivered back on the loop: the report
 * answered, done called, or the nightly files written (write and fsync on the
 * loop: their size is the day's). One build at a time. Loop thread only.
 *
 * What was open at the day's start is rebuilt from the history of the year
 * before it (daily_log.h, gw_daily_history). The day's hazard register entries
 * come from hazard_log, each with the hazard as it was then: the register's
 * history of those hazards is replayed from its first entry (gw_daily_hazards).
 */
#ifndef GW_DAYLOG_H
#define GW_DAYLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "alarm_desk.h"
#include "config.h"
#include "store.h"

#define GW_DAYLOG_MAX_RESULT (1024 * 1024) /* a P/cmd/result payload, bytes */

struct gw_daylog;

/* Starts the timer (its first look, with the catch-up, on the next loop turn). NULL after
 * logging why. cfg, store and desk must outlive it (see gw_daylog_reload). */
struct gw_daylog *gw_daylog_new(uv_loop_t *loop, const struct gw_config *cfg,
                                struct gw_store *store, struct gw_desk *desk,
                                const struct gw_desk_host *host);
/* A new config (site name, language, state_dir, offline rules): used from the next log. */
void gw_daylog_reload(struct gw_daylog *dl, const struct gw_config *cfg);

/* The log of DAY (the file if written, else built now on the calling thread, holding the loop
 * meanwhile: about 8 ms per 1,000 history rows of the day on x86): malloc'd text, or NULL with
 * the reason in err. For scripts/bench/daylog; the gateway itself (reports, downloads) uses the
 * async form. */
char *gw_daylog_render(struct gw_daylog *dl, const char *day, bool csv, char *err, size_t errlen);

/*
 * The same without holding the loop: a day not written is read a page of history rows per
 * loop turn and its text built on the thread pool (one build at a time, at most 8 queued).
 * done(ctx, text or NULL, error) runs once on the loop, maybe before this returns (a written
 * file); text is the callee's to free. Returns 0, or -errno with the reason in err (then done
 * is not called): a bad or future day, -EBUSY, -ECANCELED once closing.
 */
typedef void (*gw_daylog_render_fn)(void *ctx, char *text, const char *error);
int gw_daylog_render_async(struct gw_daylog *dl, const char *day, bool csv,
                           gw_daylog_render_fn done, void *ctx, char *err, size_t errlen);

/* P/cmd/report: parse, then answer on P/cmd/result (at once, or when built). */
void gw_daylog_command(struct gw_daylog *dl, const void *payload, size_t len, int64_t now_ms);

/* Stops the timers, drops builds not finished (a render's done hears "the gateway is stopping"
 * before this returns; a build in the thread pool is cancelled, or when already running waited
 * for); closed(ctx) once, after the handles are closed and everything is freed. */
void gw_daylog_close(struct gw_daylog *dl, void (*closed)(void *), void *ctx);

/* What the queued builds did, for scripts/bench/daylog and its ctest (daylog_paging). */
struct gw_daylog_stats {
    uint64_t pages;       /* alarm_history pages read by queued builds, each in its own turn */
    uint64_t pool_builds; /* queued builds whose texts were built on the thread pool */
    uint64_t loop_builds; /* texts built on the calling thread (gw_daylog_render) */
    uint64_t failed;      /* queued builds that ended with an error (answered or logged) */
    bool in_pool;         /* a build's texts are in the thread pool now */
    /* The last queued build that read the store: */
    uint64_t last_rows; /* alarm_history rows read */
    int last_pages;     /* pages read (the last one short or empty: that ends the scan) */
};
void gw_daylog_stats(const struct gw_daylog *dl, struct gw_daylog_stats *out);

#endif
