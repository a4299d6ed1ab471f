#include "daylog.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alarms.h"
#include "commands.h"
#include "daily_log.h"
#include "gateway.h"
#include "log.h"

#define MOD "daylog"
#define LOOK_EVERY_MS 60000    /* the wall clock may step: look at it at least this often */
#define RETRY_MS (3600 * 1000) /* after a failed write */
#define MAX_DAYS_AT_ONCE 7     /* a clock stepped forward by more writes the last week only */
#define HISTORY_PAGE 500       /* alarm_history rows per loop turn */
#define MAX_JOBS 8             /* logs queued to be built; more reports are refused */
struct job;

struct gw_daylog {
    uv_loop_t *loop;
    const struct gw_config *cfg;
    struct gw_store *store;
    struct gw_desk *desk;
    struct gw_desk_host host;
    uv_timer_t timer; /* looks at the wall clock */
    /* One page of the current job per loop turn: an idle handle, so the loop polls for I/O
     * between pages (a 0 ms timer restarted from its own callback runs again in the same
     * timer phase on libuv 1.44 and would hold the loop for the whole build). */
    uv_idle_t worker;
    struct job *jobs, *last_job; /* FIFO; the head is being built */
    int njobs;
    /* The head job while libuv's thread pool builds its texts (the worker is stopped meanwhile:
     * one build at a time). */
    struct job *in_pool;
    struct gw_daylog_stats stats;
    bool writing;      /* a JOB_WRITE is queued or running */
    char done[11];     /* the newest day whose files are there; "" before the first look */
    uint64_t retry_at; /* loop time: after a failure, no new try before it */
    struct gw_complaint failing;
    bool clock_unset_said;
    int nclosing;
    void (*closed)(void *);
    void *closed_ctx;
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- one day from the store, a page of rows per loop turn ---- */

enum job_kind { JOB_WRITE, JOB_REPORT, JOB_RENDER };

struct report_req {
    char id[GW_COMMAND_ID_MAX];
    char day[11];
    bool csv;
};

struct job {
    struct job *next;
    enum job_kind kind;
    char day[11];
    bool csv;
    int64_t now_ms; /* when asked: a day not over is built up to then */
    int64_t start, end;
    int64_t until; /* end, or for a day not over the request's time + 1 */
    struct gw_daily_history *h;
    uint64_t after; /* the last alarm_history seq read */
    bool scanned;
    int pages;
    uint64_t rows;
    uint64_t t0;
    /*
     * What the texts are built from, and the result. The pool's thread reads `in` while the loop
     * goes on, so everything it points at is the job's own: the history and hazard copies, and
     * the config's strings (a reload may free that config meanwhile).
     */
    struct gw_daily_hazards *hz;
    char *school, *school_name, *language;
    char **offline; /* the names of the rules with offline_after */
    int noffline;
    struct gw_daily_input in;
    struct gw_daily_log log;
    int rc;
    char err[512];
    uv_work_t work;
    struct gw_daylog *dl;
    bool dropped;             /* closed while in the pool: freed when the pool hands it back */
    struct report_req req;    /* JOB_REPORT */
    gw_daylog_render_fn done; /* JOB_RENDER; NULL once told */
    void *done_ctx;
};

static bool is_live(void *ctx, const char *key)
{
    struct gw_daylog *dl = ctx;
    const struct gw_alarm *a = gw_alarms_find(gw_desk_alarms(dl->desk), key);
    return a && a->state != GW_ALARM_NORMAL;
}

struct scan {
    struct gw_daily_history *h;
    uint64_t last_seq;
    int rc;
    bool stop;
};

static void on_history_row(void *ctx, uint64_t seq, int64_t ts_ms, const char *payload)
{
    struct scan *sc = ctx;
    if (sc->stop || sc->rc) {
        return; /* the rest of this page */
    }
    sc->last_seq = seq;
    if (gw_daily_history_enough(sc->h, ts_ms)) {
        sc->stop = true;
        return;
    }
    sc->rc = gw_daily_history_add(sc->h, ts_ms, payload);
}

/* Reading hazard_log into gw_daily_hazards (store callbacks cannot stop a scan: rc keeps the
 * first error and the rest is ignored). */
struct hazard_scan {
    struct gw_daily_hazards *hz;
    int64_t start, until;
    int in_day; /* rows of the day seen in the first pass */
    int rc;
};

static void on_hazard_mark(void *ctx, uint64_t n, const char *hazard, int64_t at_ms,
                           const char *entry)
{
    (void)n;
    (void)entry;
    struct hazard_scan *sc = ctx;
    sc->in_day += at_ms >= sc->start && at_ms < sc->until;
    if (sc->rc == 0) {
        sc->rc = gw_daily_hazards_mark(sc->hz, hazard, at_ms);
    }
}

static void on_hazard_replay(void *ctx, uint64_t n, const char *hazard, int64_t at_ms,
                             const char *entry)
{
    (void)n;
    (void)at_ms;
    struct hazard_scan *sc = ctx;
    if (sc->rc == 0) {
        sc->rc = gw_daily_hazards_add(sc->hz, hazard, entry);
    }
}

/*
 * The day's hazard register entries, each with the hazard as it was then: the hazards with an
 * entry in [start, until) (the rows from the day's start on), then their whole history from the
 * register's first entry replayed in chain order. A few queries of a small table, at once.
 */
static int read_hazards(struct gw_daylog *dl, const struct job *job, struct gw_daily_hazards **out,
                        char *err, size_t errlen)
{
    struct hazard_scan sc = {.hz = gw_daily_hazards_new(job->start, job->until),
                             .start = job->start,
                             .until = job->until};
    *out = sc.hz;
    if (!sc.hz) {
        return fail(err, errlen, -ENOMEM, "out of memory");
    }
    int n = gw_store_hazard_log(dl->store, NULL, job->start, on_hazard_mark, &sc);
    if (n >= 0 && sc.rc == 0 && sc.in_day > 0) { /* else the register's history is not read */
        n = gw_store_hazard_log(dl->store, NULL, 0, on_hazard_replay, &sc);
    }
    if (n < 0) {
        return fail(err, errlen, n, "cannot read the hazard register: %s", strerror(-n));
    }
    if (sc.rc == -E2BIG) {
        return fail(err, errlen, sc.rc,
                    "more than %d hazard register entries on %s: too many for one log",
                    GW_DAILY_MAX_HAZARD_ENTRIES, job->day);
    }
    if (sc.rc != 0) {
        return fail(err, errlen, sc.rc, "out of memory reading the hazard register");
    }
    int skipped = gw_daily_hazards_skipped(sc.hz);
    if (skipped > 0) {
        gw_warn(MOD, "%d hazard_log rows are not register entries; left out of the log day=%s",
                skipped, job->day);
    }
    return 0;
}

/* 0 and the job set up, or the reason (in job->err). */
static int job_begin(struct gw_daylog *dl, struct job *job)
{
    if (gw_daily_log_day_bounds(job->day, &job->start, &job->end) != 0) {
        return fail(job->err, sizeof(job->err), -EINVAL, "\"%s\" is not a date YYYY-MM-DD",
                    job->day);
    }
    /* A day not over: rows recorded after the request are not in it. */
    job->until = job->now_ms < job->end ? job->now_ms + 1 : job->end;
    job->h = gw_daily_history_new(job->start, job->until, is_live, dl);
    if (!job->h) {
        return fail(job->err, sizeof(job->err), -ENOMEM, "out of memory");
    }
    job->t0 = uv_hrtime();
    return 0;
}

/*
 * One page of alarm_history rows (seq order, from a year before the day: older alarms are
 * not carried over). 0 with job->scanned once the rows that matter are read, or the reason.
 */
static int job_page(struct gw_daylog *dl, struct job *job)
{
    struct scan sc = {.h = job->h, .last_seq = job->after};
    int n = gw_store_history_since(dl->store, job->start - GW_DAILY_LOOKBACK_MS, job->after,
                                   HISTORY_PAGE, on_history_row, &sc);
    if (n < 0) {
        return fail(job->err, sizeof(job->err), n, "cannot read the alarm history: %s",
                    strerror(-n));
    }
    job->pages++;
    job->rows += (uint64_t)n;
    if (sc.rc == -E2BIG) {
        return fail(job->err, sizeof(job->err), sc.rc,
                    "more than %d alarm records on %s: too many for one log", GW_DAILY_MAX_EVENTS,
                    job->day);
    }
    if (sc.rc != 0) {
        return fail(job->err, sizeof(job->err), sc.rc, "out of memory reading the alarm history");
    }
    job->after = sc.last_seq;
    job->scanned = n < HISTORY_PAGE || sc.stop;
    return 0;
}

/* A copy of s (NULL stays NULL) in *out; false when out of memory. */
static bool copy_string(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return !s || *out;
}

/*
 * After the scan, on the loop: the hazard entries, and job->in with everything it points at
 * owned by the job (the config's strings copied), so the texts can be built on another thread.
 * 0 or the reason.
 */
static int job_prepare(struct gw_daylog *dl, struct job *job)
{
    const struct gw_config *cfg = dl->cfg;
    const char *name = cfg->site.name && cfg->site.name[0] ? cfg->site.name : NULL;
    job->offline = calloc((size_t)(cfg->nrules ? cfg->nrules : 1), sizeof(*job->offline));
    if (!job->offline || !copy_string(cfg->site.school, &job->school) ||
        !copy_string(name, &job->school_name) || !copy_string(cfg->site.language, &job->language)) {
        return fail(job->err, sizeof(job->err), -ENOMEM, "out of memory");
    }
    for (int i = 0; i < cfg->nrules; i++) {
        if (cfg->rules[i].offline_after > 0 &&
            !(job->offline[job->noffline++] = strdup(cfg->rules[i].name))) {
            return fail(job->err, sizeof(job->err), -ENOMEM, "out of memory");
        }
    }
    job->in = (struct gw_daily_input){
        .school = job->school,
        .school_name = job->school_name,
        .language = job->language,
        .date = job->day,
        .start_ms = job->start,
        .end_ms = job->end,
        .as_of_ms = job->now_ms < job->end ? job->now_ms : 0,
        .offline_rules = (const char *const *)job->offline,
        .noffline_rules = job->noffline,
    };
    int rc = read_hazards(dl, job, &job->hz, job->err, sizeof(job->err));
    if (rc != 0) {
        return rc;
    }
    if ((rc = gw_daily_history_input(job->h, &job->in)) != 0) {
        return fail(job->err, sizeof(job->err), rc, "out of memory");
    }
    gw_daily_hazards_input(job->hz, &job->in);
    return 0;
}

/* The texts from job->in: pure, no I/O, nothing shared (any thread). */
static void job_texts(struct job *job)
{
    job->rc = gw_daily_log_build(&job->in, &job->log, job->err, sizeof(job->err));
}

/* What a job owns, freed; the job itself is the caller's. */
static void job_clear(struct job *job)
{
    gw_daily_history_free(job->h);
    job->h = NULL;
    gw_daily_hazards_free(job->hz);
    job->hz = NULL;
    for (int i = 0; i < job->noffline; i++) {
        free(job->offline[i]);
    }
    free(job->offline);
    job->offline = NULL;
    job->noffline = 0;
    free(job->school);
    free(job->school_name);
    free(job->language);
    job->school = job->school_name = job->language = NULL;
    gw_daily_log_free(&job->log);
}

static void job_free(struct job *job)
{
    if (job) {
        job_clear(job);
        free(job);
    }
}

/* The whole job at once, on the calling thread (the synchronous render); then job_clear. */
static int build_now(struct gw_daylog *dl, struct job *job)
{
    int rc = job_begin(dl, job);
    while (rc == 0 && !job->scanned) {
        rc = job_page(dl, job);
    }
    if (rc == 0) {
        rc = job_prepare(dl, job);
    }
    if (rc == 0) {
        job_texts(job);
        rc = job->rc;
        dl->stats.loop_builds++;
    }
    return rc;
}

/* ---- files ---- */

static int log_path(const struct gw_daylog *dl, const char *name, char *out, size_t size)
{
    int n =
        snprintf(out, size, "%s/logs%s%s", dl->cfg->state_dir, name ? "/" : "", name ? name : "");
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static bool day_written(const struct gw_daylog *dl, const char *day)
{
    char md[PATH_MAX], csv[PATH_MAX], name[32];
    struct stat st;
    snprintf(name, sizeof(name), "%s.md", day);
    if (log_path(dl, name, md, sizeof(md)) != 0) {
        return false;
    }
    snprintf(name, sizeof(name), "%s.csv", day);
    if (log_path(dl, name, csv, sizeof(csv)) != 0) {
        return false;
    }
    return stat(md, &st) == 0 && S_ISREG(st.st_mode) && stat(csv, &st) == 0 && S_ISREG(st.st_mode);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* dir/name with text: a temp file synced, then renamed over it (the dir is synced after). */
static int write_file(const char *dir, const char *name, const char *text, char *err, size_t errlen)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    int n1 = snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    int n2 = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n1 < 0 || (size_t)n1 >= sizeof(tmp) || n2 < 0 || (size_t)n2 >= sizeof(path)) {
        return fail(err, errlen, -ENAMETOOLONG, "%s/%s: path too long", dir, name);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) {
        int rc = -errno;
        return fail(err, errlen, rc, "%s: %s", tmp, strerror(-rc));
    }
    int rc = 0;
    const char *step = "write";
    if (fchmod(fd, 0640) != 0) { /* whatever the umask */
        rc = -errno;
        step = "chmod";
    }
    if (rc == 0) {
        rc = write_all(fd, text, strlen(text));
    }
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
        step = "fsync";
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
        step = "close";
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
        step = "rename";
    }
    if (rc != 0) {
        unlink(tmp);
        return fail(err, errlen, rc, "%s: %s failed: %s", path, step, strerror(-rc));
    }
    return 0;
}

static int sync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int rc = -errno;
        if (fd >= 0) {
            close(fd);
        }
        return fail(err, errlen, rc, "%s: fsync of the directory failed: %s", dir, strerror(-rc));
    }
    close(fd);
    return 0;
}

/* P/log: the summary with a seq in front, like every record. */
static void emit_summary(struct gw_daylog *dl, const char *summary, int64_t now_ms)
{
    uint64_t seq = dl->host.next_seq(dl->host.core);
    json_t *s = json_loads(summary, 0, NULL);
    json_t *root = json_pack("{sI}", "seq", (json_int_t)seq);
    char *json = NULL;
    if (s && root && json_object_update(root, s) == 0) {
        json = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    json_decref(s);
    json_decref(root);
    if (dl->host.open_batch) {
        dl->host.open_batch(dl->host.core);
    }
    dl->host.emit(dl->host.core, GW_REC_DAILY_LOG, now_ms, "log", json, seq);
}

/* The built log into state_dir/logs; 0 or the reason. */
static int write_files(struct gw_daylog *dl, const char *day, const struct gw_daily_log *log,
                       char *dir, size_t dirsize, char *err, size_t errlen)
{
    char name[32];
    int rc = log_path(dl, NULL, dir, dirsize);
    if (rc != 0) {
        return fail(err, errlen, rc, "state_dir too long");
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        rc = -errno;
        return fail(err, errlen, rc, "cannot create %s: %s", dir, strerror(-rc));
    }
    /* The CSV first: the day counts as written once both are there, the Markdown last. */
    snprintf(name, sizeof(name), "%s.csv", day);
    rc = write_file(dir, name, log->csv, err, errlen);
    if (rc == 0) {
        snprintf(name, sizeof(name), "%s.md", day);
        rc = write_file(dir, name, log->markdown, err, errlen);
    }
    if (rc == 0) {
        rc = sync_dir(dir, err, errlen);
    }
    return rc;
}

/* ---- the queue ---- */

static void look(struct gw_daylog *dl);
static void answer_report(struct gw_daylog *dl, const struct report_req *req, char *text,
                          size_t len, bool complete, const char *error, int64_t now_ms);

static void on_work(uv_idle_t *t);

static void enqueue(struct gw_daylog *dl, struct job *job)
{
    job->dl = dl;
    if (dl->last_job) {
        dl->last_job->next = job;
    } else {
        dl->jobs = job;
        uv_idle_start(&dl->worker, on_work);
    }
    dl->last_job = job;
    dl->njobs++;
}

/* The head job, out of the queue. */
static struct job *dequeue(struct gw_daylog *dl)
{
    struct job *job = dl->jobs;
    dl->jobs = job->next;
    if (!dl->jobs) {
        dl->last_job = NULL;
    }
    dl->njobs--;
    job->next = NULL;
    return job;
}

static void write_done(struct gw_daylog *dl, struct job *job)
{
    char dir[PATH_MAX] = "";
    int64_t now = gw_now_ms();
    int rc = job->rc;
    if (rc == 0) {
        rc = write_files(dl, job->day, &job->log, dir, sizeof(dir), job->err, sizeof(job->err));
    }
    dl->writing = false;
    if (rc != 0) {
        job->rc = rc;
        dl->retry_at = uv_now(dl->loop) + RETRY_MS;
        if (gw_complain(&dl->failing, now)) {
            gw_error(MOD, "cannot write the safety log day=%s error=\"%s\"; retrying hourly",
                     job->day, job->err);
        }
        return;
    }
    gw_info(MOD, "wrote the safety log day=%s dir=%s build_ms=%lld summary=%s", job->day, dir,
            (long long)((uv_hrtime() - job->t0) / 1000000), job->log.summary);
    if (gw_release(&dl->failing)) {
        gw_info(MOD, "the safety log is written again day=%s", job->day);
    }
    emit_summary(dl, job->log.summary, now);
    dl->retry_at = 0;
    memcpy(dl->done, job->day, sizeof(dl->done));
}

/*
 * The head job is built (job->rc 0, the texts in job->log) or failed (the reason in job->err):
 * out of the queue first (whoever hears of it may ask for more, or close), handed over, freed;
 * then the next job's pages start.
 */
static void job_finish(struct gw_daylog *dl)
{
    struct job *job = dequeue(dl);
    if (job->rc != 0) {
        dl->stats.failed++;
    }
    if (job->h) {
        dl->stats.last_rows = job->rows;
        dl->stats.last_pages = job->pages;
    }
    char *text = job->rc == 0 ? (job->csv ? job->log.csv : job->log.markdown) : NULL;
    const char *error = job->rc == 0 ? NULL : job->err;
    switch (job->kind) {
    case JOB_WRITE:
        write_done(dl, job);
        break;
    case JOB_REPORT:
        answer_report(dl, &job->req, text, text ? strlen(text) : 0, job->now_ms >= job->end, error,
                      job->now_ms);
        break;
    case JOB_RENDER:
        if (job->csv) {
            job->log.csv = NULL; /* the text is done's */
        } else {
            job->log.markdown = NULL;
        }
        job->done(job->done_ctx, text, error);
        break;
    }
    bool next_day = job->kind == JOB_WRITE && job->rc == 0;
    job_free(job);
    if (dl->closed) {
        return;
    }
    if (dl->jobs) {
        uv_idle_start(&dl->worker, on_work);
    } else {
        uv_idle_stop(&dl->worker);
    }
    if (next_day) {
        look(dl); /* the next day, when the clock jumped over several */
    }
}

static void closing_step(struct gw_daylog *dl);

/* On a thread of libuv's pool. */
static void on_build(uv_work_t *w)
{
    job_texts(w->data);
}

/* Back on the loop. */
static void on_built(uv_work_t *w, int status)
{
    struct job *job = w->data;
    struct gw_daylog *dl = job->dl;
    dl->in_pool = NULL;
    if (job->dropped) { /* closed meanwhile: its done has heard so */
        job_free(job);
        closing_step(dl);
        return;
    }
    if (status == 0) {
        dl->stats.pool_builds++;
    } else if (job->rc == 0) {
        job->rc = fail(job->err, sizeof(job->err), status, "the build was cancelled: %s",
                       uv_strerror(status));
    }
    job_finish(dl);
}

/* The head job's texts to the pool; the worker waits for them. 0 or the reason. */
static int to_pool(struct gw_daylog *dl, struct job *job)
{
    job->work.data = job;
    int rc = uv_queue_work(dl->loop, &job->work, on_build, on_built);
    if (rc != 0) {
        return fail(job->err, sizeof(job->err), rc, "cannot start building the log: %s",
                    uv_strerror(rc));
    }
    dl->in_pool = job;
    uv_idle_stop(&dl->worker);
    return 0;
}

/* One step of the head job per loop turn: a page of history, or (once read) the hazard entries
 * and the input, handed to the pool. */
static void on_work(uv_idle_t *t)
{
    struct gw_daylog *dl = t->data;
    struct job *job = dl->jobs;
    if (!job || dl->in_pool) {
        uv_idle_stop(&dl->worker);
        return;
    }
    int rc = job->h ? 0 : job_begin(dl, job);
    if (rc == 0 && !job->scanned) {
        if ((rc = job_page(dl, job)) == 0) {
            dl->stats.pages++;
            return;
        }
    } else if (rc == 0 && (rc = job_prepare(dl, job)) == 0 && (rc = to_pool(dl, job)) == 0) {
        return;
    }
    job->rc = rc;
    job_finish(dl);
}

void gw_daylog_stats(const struct gw_daylog *dl, struct gw_daylog_stats *out)
{
    *out = dl->stats;
    out->in_pool = dl->in_pool != NULL;
}

/* ---- the timer ---- */

static void start_write(struct gw_daylog *dl, const char *day, int64_t now)
{
    struct job *job = calloc(1, sizeof(*job));
    if (!job) {
        dl->retry_at = uv_now(dl->loop) + RETRY_MS;
        gw_error(MOD, "cannot write the safety log day=%s error=\"out of memory\"", day);
        return;
    }
    job->kind = JOB_WRITE;
    memcpy(job->day, day, sizeof(job->day));
    job->now_ms = now;
    dl->writing = true;
    enqueue(dl, job);
}

/* Starts writing the oldest due day not written yet; after a failure, tries in an hour. */
static void look(struct gw_daylog *dl)
{
    if (dl->writing || dl->closed) {
        return;
    }
    int64_t now = gw_now_ms();
    char day[11], skipped[11];
    int rc = gw_daily_log_next_due(dl->done, now, MAX_DAYS_AT_ONCE, day, skipped);
    if (rc == -EAGAIN && !dl->clock_unset_said) {
        dl->clock_unset_said = true;
        gw_warn(MOD, "the clock is not set yet (before 2025): no safety log is due until it is");
    }
    if (rc <= 0 || (dl->retry_at && uv_now(dl->loop) < dl->retry_at)) {
        return;
    }
    if (skipped[0]) {
        gw_warn(MOD,
                "the clock jumped ahead: safety logs from %s to before %s are not written "
                "(P/cmd/report still builds them)",
                skipped, day);
    }
    /* Days whose files are there count as done (a restart, a clock stepped back). */
    while (day_written(dl, day)) {
        memcpy(dl->done, day, sizeof(dl->done));
        if (gw_daily_log_next_due(dl->done, now, MAX_DAYS_AT_ONCE, day, skipped) <= 0) {
            return;
        }
    }
    start_write(dl, day, now);
}

static void on_timer(uv_timer_t *t)
{
    struct gw_daylog *dl = t->data;
    look(dl);
    /* Again at the next 00:05, or within a minute: the wall clock may step meanwhile. */
    int64_t now = gw_now_ms();
    int64_t wait = gw_daily_log_next_run_ms(now) - now;
    if (wait > LOOK_EVERY_MS || wait < 1) {
        wait = LOOK_EVERY_MS;
    }
    uv_timer_start(&dl->timer, on_timer, (uint64_t)wait, 0);
}

struct gw_daylog *gw_daylog_new(uv_loop_t *loop, const struct gw_config *cfg,
                                struct gw_store *store, struct gw_desk *desk,
                                const struct gw_desk_host *host)
{
    struct gw_daylog *dl = calloc(1, sizeof(*dl));
    if (!dl) {
        gw_error(MOD, "cannot start the daily safety log (out of memory)");
        return NULL;
    }
    dl->loop = loop;
    dl->cfg = cfg;
    dl->store = store;
    dl->desk = desk;
    dl->host = *host;
    uv_timer_init(loop, &dl->timer);
    uv_idle_init(loop, &dl->worker);
    dl->timer.data = dl;
    dl->worker.data = dl;
    uv_timer_start(&dl->timer, on_timer, 0, 0);
    return dl;
}

void gw_daylog_reload(struct gw_daylog *dl, const struct gw_config *cfg)
{
    if (dl) {
        dl->cfg = cfg;
    }
}

/* One of the things close waits for is over (the two handles, a build in the pool): after the
 * last, everything is freed and closed hears of it. */
static void closing_step(struct gw_daylog *dl)
{
    if (--dl->nclosing > 0) {
        return;
    }
    void (*closed)(void *) = dl->closed;
    void *ctx = dl->closed_ctx;
    free(dl);
    closed(ctx);
}

static void on_closed(uv_handle_t *h)
{
    closing_step(h->data);
}

static void no_callback(void *ctx)
{
    (void)ctx;
}

void gw_daylog_close(struct gw_daylog *dl, void (*closed)(void *), void *ctx)
{
    dl->closed = closed ? closed : no_callback;
    dl->closed_ctx = ctx;
    dl->nclosing = 2; /* the handles */
    /* Builds not finished are dropped: reports are not answered, a write is done at the
     * next start (its files are missing). A render's caller hears of it now. */
    while (dl->jobs) {
        struct job *job = dequeue(dl);
        if (job->kind == JOB_RENDER) {
            job->done(job->done_ctx, NULL, "the gateway is stopping");
            job->done = NULL;
        }
        if (job == dl->in_pool) {
            /* Its texts are being built from what it owns: not yet started, the pool drops
             * it; else it runs to the end. Either way on_built hands it back, then it is freed. */
            job->dropped = true;
            dl->nclosing++;
            uv_cancel((uv_req_t *)&job->work);
            continue;
        }
        job_free(job);
    }
    uv_timer_stop(&dl->timer);
    uv_idle_stop(&dl->worker);
    uv_close((uv_handle_t *)&dl->timer, on_closed);
    uv_close((uv_handle_t *)&dl->worker, on_closed);
}

/* ---- on demand ---- */

/* The file's text, NULL when there is none (or it cannot be read: then it is built). */
static char *read_log_file(const struct gw_daylog *dl, const char *name, size_t *len, int *rc)
{
    char path[PATH_MAX];
    *rc = 0;
    if (log_path(dl, name, path, sizeof(path)) != 0) {
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT) {
            gw_warn(MOD, "cannot read %s (%s): building the log from the store", path,
                    strerror(errno));
        }
        return NULL;
    }
    struct stat st;
    char *text = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        goto out;
    }
    if (st.st_size > GW_DAYLOG_MAX_RESULT) {
        *rc = -EFBIG;
        *len = (size_t)st.st_size;
        goto out;
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text) {
        *rc = -ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, text + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            gw_warn(MOD, "cannot read %s: building the log from the store", path);
            free(text);
            text = NULL;
            goto out;
        }
        got += (size_t)r;
    }
    text[got] = '\0';
    *len = got;
out:
    close(fd);
    return text;
}

/*
 * The checks of a request and the written file. Returns 1 with *text set (the file), 0 when
 * the day must be built, -errno with the reason in err.
 */
static int render_start(struct gw_daylog *dl, const char *day, bool csv, int64_t now_ms,
                        char **text, size_t *len, bool *complete, char *err, size_t errlen)
{
    int64_t start, end;
    char today[11];
    *text = NULL;
    *complete = false;
    if (day == NULL || strlen(day) != 10 || gw_daily_log_day_bounds(day, &start, &end) != 0) {
        return fail(err, errlen, -EINVAL, "\"day\" must be a date YYYY-MM-DD");
    }
    if (gw_daily_log_date(now_ms, today) != 0) {
        return fail(err, errlen, -EINVAL, "the clock cannot be read as a local date");
    }
    if (strcmp(day, today) > 0) {
        return fail(err, errlen, -EINVAL, "%s is in the future (today is %s)", day, today);
    }
    *complete = strcmp(day, today) < 0;
    char name[32];
    snprintf(name, sizeof(name), "%s.%s", day, csv ? "csv" : "md");
    int rc;
    *text = read_log_file(dl, name, len, &rc);
    if (rc == -EFBIG) {
        return fail(err, errlen, rc, "logs/%s is %zu bytes, more than an MQTT answer carries (%d)",
                    name, *len, GW_DAYLOG_MAX_RESULT);
    }
    if (rc == -ENOMEM) {
        return fail(err, errlen, rc, "out of memory");
    }
    return *text ? 1 : 0;
}

char *gw_daylog_render(struct gw_daylog *dl, const char *day, bool csv, char *err, size_t errlen)
{
    int64_t now = gw_now_ms();
    char *text;
    size_t len;
    bool complete;
    int rc = render_start(dl, day, csv, now, &text, &len, &complete, err, errlen);
    if (rc != 0) {
        return text;
    }
    struct job job = {.csv = csv, .now_ms = now, .dl = dl};
    memcpy(job.day, day, sizeof(job.day));
    text = NULL;
    rc = build_now(dl, &job);
    if (rc != 0) {
        fail(err, errlen, rc, "%s", job.err);
    } else if (csv) {
        text = job.log.csv;
        job.log.csv = NULL;
    } else {
        text = job.log.markdown;
        job.log.markdown = NULL;
    }
    job_clear(&job);
    return text;
}

int gw_daylog_render_async(struct gw_daylog *dl, const char *day, bool csv,
                           gw_daylog_render_fn done, void *ctx, char *err, size_t errlen)
{
    char *text;
    size_t len;
    bool complete;
    if (dl->closed) {
        return fail(err, errlen, -ECANCELED, "the gateway is stopping");
    }
    int rc = render_start(dl, day, csv, gw_now_ms(), &text, &len, &complete, err, errlen);
    if (rc < 0) {
        return rc;
    }
    if (rc == 1) {
        done(ctx, text, NULL);
        return 0;
    }
    if (dl->njobs >= MAX_JOBS) {
        return fail(err, errlen, -EBUSY, "%d logs are being built: ask again in a moment",
                    dl->njobs);
    }
    struct job *job = calloc(1, sizeof(*job));
    if (!job) {
        return fail(err, errlen, -ENOMEM, "out of memory");
    }
    *job = (struct job){
        .kind = JOB_RENDER, .csv = csv, .now_ms = gw_now_ms(), .done = done, .done_ctx = ctx};
    memcpy(job->day, day, sizeof(job->day));
    enqueue(dl, job);
    return 0;
}

/* What the sender wrote, for an error message: ASCII, short. */
static const char *ascii(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' ? (char)ch : '?';
    }
    buf[i] = '\0';
    return buf;
}

/* {"day","format"?,"id"?}: 0 or -EINVAL with the reason (id is read first, for the answer). */
static int parse_report(const void *payload, size_t len, struct report_req *req, char *err,
                        size_t errlen)
{
    *req = (struct report_req){0};
    if (len > GW_COMMAND_MAX_BYTES) {
        return fail(err, errlen, -EINVAL, "command too large (%zu bytes, at most %d)", len,
                    GW_COMMAND_MAX_BYTES);
    }
    if (len == 0) {
        return fail(err, errlen, -EINVAL, "empty command: a JSON object is expected");
    }
    json_error_t jerr;
    json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    char shown[41];
    if (!root) {
        return fail(err, errlen, -EINVAL, "bad JSON: %s (at byte %d)",
                    ascii(jerr.text, shown, sizeof(shown)), jerr.position);
    }
    int rc = -EINVAL;
    if (!json_is_object(root)) {
        fail(err, errlen, rc, "the command must be a JSON object");
        goto out;
    }
    json_t *id = json_object_get(root, "id");
    if (id) {
        const char *s = json_string_value(id);
        if (!s || strlen(s) >= sizeof(req->id) || strlen(s) != json_string_length(id)) {
            fail(err, errlen, rc, "\"id\" must be a string of at most %zu bytes",
                 sizeof(req->id) - 1);
            goto out;
        }
        for (const char *p = s; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                fail(err, errlen, rc, "\"id\" has control characters");
                goto out;
            }
        }
        memcpy(req->id, s, strlen(s) + 1);
    }
    const char *member;
    json_t *value;
    json_object_foreach(root, member, value)
    {
        if (strcmp(member, "id") != 0 && strcmp(member, "day") != 0 &&
            strcmp(member, "format") != 0) {
            fail(err, errlen, rc, "unknown key \"%s\" for report (day, format, id)",
                 ascii(member, shown, sizeof(shown)));
            goto out;
        }
    }
    json_t *day = json_object_get(root, "day");
    if (!day) {
        fail(err, errlen, rc, "missing \"day\" (YYYY-MM-DD)");
        goto out;
    }
    const char *d = json_string_value(day);
    int64_t start, end;
    if (!d || strlen(d) != 10 || gw_daily_log_day_bounds(d, &start, &end) != 0) {
        fail(err, errlen, rc, "\"day\" must be a date YYYY-MM-DD, not %s",
             d ? ascii(d, shown, sizeof(shown)) : "a non-string");
        goto out;
    }
    memcpy(req->day, d, 11);
    json_t *format = json_object_get(root, "format");
    const char *f = format ? json_string_value(format) : "md";
    if (!f || (strcmp(f, "md") != 0 && strcmp(f, "csv") != 0)) {
        fail(err, errlen, rc, "\"format\" must be \"md\" or \"csv\"");
        goto out;
    }
    req->csv = strcmp(f, "csv") == 0;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static char *report_result(uint64_t seq, const struct report_req *req, const char *error,
                           const char *text, size_t len, bool complete)
{
    json_t *root =
        json_pack("{sI sb ss}", "seq", (json_int_t)seq, "ok", error == NULL, "cmd", "report");
    if (!root) {
        return NULL;
    }
    if (req->id[0]) {
        json_object_set_new(root, "id", json_string(req->id));
    }
    if (req->day[0]) {
        json_object_set_new(root, "day", json_string(req->day));
    }
    if (error) {
        json_object_set_new(root, "error", json_string(error));
    } else {
        json_object_set_new(root, "format", json_string(req->csv ? "csv" : "md"));
        json_object_set_new(root, "complete", json_boolean(complete));
        json_t *t = json_stringn(text, len);
        if (!t) {
            json_decref(root);
            return NULL;
        }
        json_object_set_new(root, "text", t);
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}

/* P/cmd/result for a report: the text (not freed here), or the error. */
static void answer_report(struct gw_daylog *dl, const struct report_req *req, char *text,
                          size_t len, bool complete, const char *error, int64_t now_ms)
{
    char why[GW_ERR_MAX + 96];
    snprintf(why, sizeof(why), "%s", error ? error : "");
    uint64_t seq = dl->host.next_seq(dl->host.core);
    if (text && len > GW_DAYLOG_MAX_RESULT) {
        /* Its JSON is longer still: refused without encoding it (66 ms on the loop for the
         * 5.6 MB of a 100,000-row day on x86). */
        snprintf(why, sizeof(why),
                 "the log of %s is %zu bytes, more than an MQTT answer carries (%d): read it in "
                 "state_dir/logs on the gateway",
                 req->day, len, GW_DAYLOG_MAX_RESULT);
        text = NULL;
    }
    char *json = report_result(seq, req, text ? NULL : why, text, len, complete);
    if (text && !json) {
        /* A file that is not UTF-8 (jansson refuses it) or no memory: say so instead. */
        snprintf(why, sizeof(why), "logs/%s.%s could not be sent as JSON (not UTF-8?)", req->day,
                 req->csv ? "csv" : "md");
        json = report_result(seq, req, why, NULL, 0, false);
    } else if (json && strlen(json) > GW_DAYLOG_MAX_RESULT) {
        snprintf(why, sizeof(why),
                 "the log of %s is %zu bytes as JSON, more than an MQTT answer carries (%d): "
                 "read it in state_dir/logs on the gateway",
                 req->day, strlen(json), GW_DAYLOG_MAX_RESULT);
        free(json);
        json = report_result(seq, req, why, NULL, 0, false);
    } else if (text) {
        why[0] = '\0';
    }
    if (why[0] == '\0') {
        gw_info(MOD, "report day=%s format=%s bytes=%zu%s", req->day, req->csv ? "csv" : "md", len,
                complete ? "" : " (today, so far)");
    } else {
        gw_info(MOD, "report refused day=%s error=\"%s\"", req->day[0] ? req->day : "-", why);
    }
    if (dl->host.open_batch) {
        dl->host.open_batch(dl->host.core);
    }
    dl->host.emit(dl->host.core, GW_REC_CMD_RESULT, now_ms, "cmd/result", json, seq);
}

void gw_daylog_command(struct gw_daylog *dl, const void *payload, size_t len, int64_t now_ms)
{
    if (dl->closed) {
        return; /* stopping: not answered, like the reports dropped then */
    }
    struct report_req req;
    char err[GW_ERR_MAX + 64] = "";
    if (parse_report(payload, len, &req, err, sizeof(err)) != 0) {
        answer_report(dl, &req, NULL, 0, false, err, now_ms);
        return;
    }
    char *text;
    size_t tlen;
    bool complete;
    int rc = render_start(dl, req.day, req.csv, now_ms, &text, &tlen, &complete, err, sizeof(err));
    if (rc != 0) {
        /* the file, or the refusal */
        answer_report(dl, &req, text, tlen, complete, rc < 0 ? err : NULL, now_ms);
        free(text);
        return;
    }
    if (dl->njobs >= MAX_JOBS) {
        snprintf(err, sizeof(err), "%d logs are being built: ask again in a moment", dl->njobs);
        answer_report(dl, &req, NULL, 0, false, err, now_ms);
        return;
    }
    struct job *job = calloc(1, sizeof(*job));
    if (!job) {
        answer_report(dl, &req, NULL, 0, false, "out of memory", now_ms);
        return;
    }
    *job = (struct job){.kind = JOB_REPORT, .csv = req.csv, .now_ms = now_ms, .req = req};
    memcpy(job->day, req.day, sizeof(job->day));
    enqueue(dl, job);
}
