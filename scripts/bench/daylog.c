/*
 * Daily safety log benchmark: how long the gateway takes to build one day's log from the
 * store (the alarm_history scan, the hazard register replay, the Markdown and the CSV), the
 * memory it needs, and how long it holds the event loop, for days of N alarm_history rows.
 * Prints two tables; exits 1 when a build is wrong, so scripts/test's smoke run catches a
 * regression.
 *
 *   gw-bench-daylog [--rows 1000,10000,100000] [--hazards 100] [--repeat 3]
 *
 * For each N, in a temp dir:
 *  - a child process writes state.db through the gateway's own store (gw_store_append, so the
 *    rows are exactly what the gateway keeps): yesterday (site time, Asia/Shanghai) holds N
 *    alarm_history rows, occurrences of four rows each as the alarm desk writes them (the
 *    raise event, its notification, an ack with who and a note, the clear back to normal)
 *    over 300 sensors and four rules, and the hazard register holds `hazards` entries of that
 *    day made by the real register (hazards.c: opens, updates, fixes, closes, a hash chain);
 *  - a second, fresh child opens that store like the gateway (store, alarm desk with its
 *    hazard desk, daylog) and renders the day `repeat` times with gw_daylog_render (holding
 *    the loop: the first table; its peak RSS is the build's, not the writer's), and its CSV
 * *    once. Then it builds the same day `repeat` times through gw_daylog_render_async on a
 *    real loop, and its CSV once, a uv_prepare handle timing every loop turn (the second
 *    table: what an alarm arriving meanwhile would wait at most; a turn's time is the loop's
 *    own, uv_metrics_idle_time's sleep in the poll taken out, since waiting for the thread
 *    pool does not hold the loop). Each async build fails the run when two of its pages of
 *    alarm_history are read in one loop turn (gw_daylog_stats' page count looked at every
 *    turn: a worker that does not yield, such as a 0 ms uv_timer restarted from its own
 *    callback on libuv 1.44), when its texts were not built on the thread pool
 *    (gw_daylog_stats), when it read other than the day's rows or a day of 10,000 rows in one
 *    page, when it is not answered within two minutes, or when its text is not byte for byte
 *    the sync one. Last, the daylog is closed while a build's texts are in the pool, once
 *    running and once queued behind blocked pool threads (cancelled): the render must hear
 *    "the gateway is stopping" once and closed must run once (and, cancelled, without
 *    waiting for a thread). The child exits through exit(), so an ASan build's leak check
 *    sees what it left behind.
 * scripts/bench/daylog builds and runs this.
 */
#include <getopt.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "alarm_desk.h"
#include "bench_common.h"
#include "bench_store.h"
#include "config.h"
#include "daily_log.h"
#include "daylog.h"
#include "hazards.h"
#include "log.h"
#include "payload.h"
#include "store.h"

#define SENSORS 300
#define ROWS_PER_OCCURRENCE 4

static char *write_config(const char *dir)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/bench.cfg", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f,
            "site = { district = \"bench\"; school = \"s1\"; name = \"Bench School\"; timezone = "
            "\"Asia/Shanghai\"; language = \"zh-CN\"; };\n"
            "state_dir = \"%s/state\";\n"
            "hub = { host = \"127.0.0.1\"; port = 1; topic_prefix = \"campus\"; };\n"
            "modbus = ( { name = \"plc\"; tcp = \"127.0.0.1:1\"; } );\n"
            "profiles = {\n"
            "  hydrant = { points = ( { name = \"pressure\"; unit = \"MPa\"; table = \"holding\"; "
            "address = 0; type = \"u16\"; scale = 0.0001; } ); };\n"
            "  smoke = { points = ( { name = \"smoke\"; table = \"coil\"; address = 0; type = "
            "\"bool\"; } ); };\n"
            "};\n"
            "sensors = (\n",
            dir);
    for (int i = 0; i < SENSORS; i++) {
        bool hydrant = i % 3 == 0;
        fprintf(f,
                "  { id = \"%c-%dF-%s-%03d\"; kind = \"%s\"; profile = \"%s\"; modbus = \"plc\"; "
                "unit_id = %d; interval_s = 10; location = { building = \"%c\"; floor = \"%d\"; "
                "zone = \"room %d\"; }; }%s\n",
                'A' + i % 4, 1 + i % 5, hydrant ? "hydrant" : "smoke", i,
                hydrant ? "hydrant_pressure" : "smoke", hydrant ? "hydrant" : "smoke", 1 + i % 247,
                'A' + i % 4, 1 + i % 5, 100 + i, i + 1 < SENSORS ? "," : "");
    }
    fprintf(f, ");\nrules = (\n"
               "  { name = \"smoke detected\"; kind = \"smoke\"; point = \"smoke\"; equals = true; "
               "class = \"alarm\"; },\n"
               "  { name = \"hydrant pressure low\"; kind = \"hydrant_pressure\"; point = "
               "\"pressure\"; below = 0.10; deadband = 0.02; class = \"supervisory\"; },\n"
               "  { name = \"hydrant pressure high\"; kind = \"hydrant_pressure\"; point = "
               "\"pressure\"; above = 1.2; deadband = 0.05; class = \"supervisory\"; },\n"
               "  { name = \"sensor offline\"; offline_after = 3; class = \"trouble\"; }\n"
               ");\n");
    fclose(f);
    return path;
}

static struct gw_config *load(const char *path)
{
    struct gw_config *cfg = gw_config_load(path, stderr);
    if (!cfg) {
        exit(1);
    }
    setenv("TZ", cfg->site.timezone, 1); /* as main.c does: the log is in site time */
    tzset();
    return cfg;
}

/* Yesterday in site time: the day every run writes and builds. */
static void the_day(char date[11], int64_t *start, int64_t *end)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (gw_daily_log_previous_day((int64_t)ts.tv_sec * 1000, date, start, end) != 0) {
        fprintf(stderr, "daylog bench: cannot tell yesterday's date\n");
        exit(1);
    }
}

/* An event as the alarm desk writes it: the alarm record, the transition, who and why. */
static char *event(uint64_t seq, const struct gw_config *cfg, const struct gw_alarm *a,
                   const char *transition, const char *by, const char *note)
{
    char *base = gw_payload_alarm(seq, cfg, a, transition);
    if (!base || !by) {
        return base;
    }
    json_t *root = json_loads(base, 0, NULL);
    free(base);
    if (!root) {
        return NULL;
    }
    json_object_set_new(root, "by", json_string(by));
    json_object_set_new(root, "note", json_string(note));
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(root);
    return s;
}

static void write_alarms(struct bench_writer *w, const struct gw_config *cfg, long rows,
                         int64_t start, int64_t end)
{
    static const char *const people[] = {"王师傅", "张工", "李老师", "值班员"};
    int smoke = bench_rule_of(cfg, "smoke detected", "daylog bench"),
        low = bench_rule_of(cfg, "hydrant pressure low", "daylog bench"),
        offline = bench_rule_of(cfg, "sensor offline", "daylog bench");
    long occurrences = rows / ROWS_PER_OCCURRENCE;
    int64_t step = (end - start - 600000) / (occurrences ? occurrences : 1);
    for (long i = 0; i < occurrences; i++) {
        int s = (int)(i % SENSORS);
        const struct gw_sensor_cfg *sensor = &cfg->sensors[s];
        bool hydrant = strcmp(sensor->kind, "hydrant_pressure") == 0;
        int r = i % 7 == 0 ? offline : hydrant ? low : smoke;
        const struct gw_rule_cfg *rule = &cfg->rules[r];
        struct gw_alarm a = {.rule_index = r,
                             .sensor_index = s,
                             .alarm_class = rule->alarm_class,
                             .state = GW_ALARM_UNACKED,
                             .raised_at_ms = start + i * step,
                             .level = 1,
                             .condition = true};
        snprintf(a.key, sizeof(a.key), "%s/%s", sensor->id, rule->slug);
        snprintf(a.name, sizeof(a.name), "%s", rule->name);
        a.value.type = GW_VALUE_NUMBER;
        a.value.num = r == offline ? 45 : hydrant ? 0.06 : 1;
        a.notified_at_ms = a.raised_at_ms;
        bench_put(w, GW_REC_EVENT, a.raised_at_ms, "events",
                  event(w->seq + 1, cfg, &a, "raise", NULL, ""));

        /* Its notification (P/notify), kept in alarm_history too. */
        char text[256], where[160];
        snprintf(text, sizeof(text), "%s %s", rule->name, sensor->id);
        snprintf(where, sizeof(where), "%s %s", sensor->location.building, sensor->location.zone);
        json_t *n = json_pack(
            "{sI ss ss si ss ss ss ss}", "seq", (json_int_t)w->seq + 1, "key", a.key, "class",
            r == smoke ? "alarm"
            : r == low ? "supervisory"
                       : "trouble",
            "level", 1, "text", text, "sensor", sensor->id, "location", where, "kind", "raise");
        char *note = n ? json_dumps(n, JSON_COMPACT) : NULL;
        json_decref(n);
        bench_put(w, GW_REC_NOTIFY, a.raised_at_ms + 150, "notify/facilities", note);

        const char *by = people[i % 4];
        a.state = GW_ALARM_ACKED;
        a.acked_at_ms = a.raised_at_ms + 60000 + (i % 240) * 1000;
        snprintf(a.acked_by, sizeof(a.acked_by), "%s", by);
        bench_put(w, GW_REC_EVENT, a.acked_at_ms, "events",
                  event(w->seq + 1, cfg, &a, "ack", by, "已到现场查看"));

        a.state = GW_ALARM_NORMAL;
        a.condition = false;
        a.cleared_at_ms = a.acked_at_ms + 120000;
        a.value.num = r == offline ? 0 : hydrant ? 0.35 : 0;
        bench_put(w, GW_REC_EVENT, a.cleared_at_ms, "events",
                  event(w->seq + 1, cfg, &a, "clear", NULL, ""));
    }
}

/* `n` entries by the real register over the day: found, given to someone, fixed, closed. */
static void write_hazards(struct bench_writer *w, int n, int64_t start, int64_t end)
{
    struct gw_hazards_settings set = {.deadline_days = {7, 1, 7, 30, 14, 7}, .utc_offset_min = 480};
    struct gw_hazards *hz = gw_hazards_new(&set);
    if (!hz) {
        exit(1);
    }
    static const char *const what[] = {"灭火器压力不足", "安全出口指示灯不亮", "疏散通道堆放杂物",
                                       "配电箱门未关", "消火栓箱门损坏"};
    int per_hazard = 4, nhazards = (n + per_hazard - 1) / per_hazard, written = 0;
    int64_t step = (end - start - 60000) / (n ? n : 1);
    char ids[512][GW_HZ_ID_MAX];
    if (nhazards > 512) {
        nhazards = 512;
    }
    char err[200];
    for (int k = 0; k < per_hazard && written < n; k++) {
        for (int h = 0; h < nhazards && written < n; h++) {
            int64_t now = start + (int64_t)written * step;
            struct gw_hazard_command c = {.by = "李老师", .id = ids[h]};
            switch (k) {
            case 0:
                c.type = GW_HZ_CMD_OPEN;
                c.category = gw_hazard_category_name((enum gw_hazard_category)(h % 6));
                c.building = "A";
                c.floor = "2";
                c.zone = "东侧走廊";
                c.description = what[h % 5];
                c.responsible = "张工";
                c.id = NULL;
                break;
            case 1:
                c.type = GW_HZ_CMD_UPDATE;
                c.responsible = "王电工";
                c.deadline_ms = end + 3 * GW_HZ_DAY_MS;
                break;
            case 2:
                c.type = GW_HZ_CMD_RECTIFYING;
                c.by = "王电工";
                break;
            default:
                c.type = GW_HZ_CMD_CLOSE;
                c.by = "王电工";
                c.note = "已更换";
                c.verifier = "赵老师";
                break;
            }
            struct gw_hazard_entry e;
            if (gw_hazards_command(hz, &c, now, &e, err, sizeof(err)) != 1) {
                fprintf(stderr, "daylog bench: hazard command: %s\n", err);
                exit(1);
            }
            if (k == 0) {
                snprintf(ids[h], sizeof(ids[h]), "%s", e.hazard.id);
            }
            bench_put(w, GW_REC_HAZARD_LOG, now, "hazards/log", gw_hazard_entry_to_json(&e));
            written++;
        }
    }
    gw_hazards_free(hz);
}

static int fill(const char *cfg_path, long rows, int hazards)
{
    struct gw_config *cfg = load(cfg_path);
    struct gw_store *st = gw_store_open(cfg->state_dir, &cfg->store);
    if (!st) {
        return 1;
    }
    char date[11];
    int64_t start, end;
    the_day(date, &start, &end);
    struct bench_writer w = {.st = st, .who = "daylog bench"};
    /* The register's entries first: the hazard desk finds their chain whole. */
    write_hazards(&w, hazards, start, end);
    write_alarms(&w, cfg, rows, start, end);
    bench_flush(&w);
    int rc = gw_store_commit(st);
    gw_store_close(st);
    gw_config_free(cfg);
    return rc == 0 ? 0 : 1;
}

/* ---- the build ---- */

#define MAX_REPEAT 16
#define MAX_ROW_COUNTS 32
#define ANSWER_DEADLINE_MS (120 * 1000) /* an async build not answered by then has failed */
#define CLOSE_DEADLINE_MS (10 * 1000)   /* closing with a build not started must not wait for it */
#define POOL_THREADS 4                  /* UV_THREADPOOL_SIZE, set for the children */
#define PAGED_FROM_ROWS 10000           /* a day this long must take more than one page */

static uint64_t next_seq(void *core)
{
    static uint64_t seq = 1u << 30;
    (void)core;
    return seq++;
}

static void emit(void *core, enum gw_record_type type, int64_t ts_ms, const char *topic, char *json,
                 uint64_t seq)
{
    (void)core;
    (void)type;
    (void)ts_ms;
    (void)topic;
    (void)seq;
    free(json);
}

static void no_batch(void *core)
{
    (void)core;
}

struct result {
    int ok, sync_ok; /* sync_ok: the table's first part stands even when the async one failed */
    char error[400];
    /* gw_daylog_render, holding the loop */
    double build_ms, first_ms; /* median, first */
    long peak_kb, before_kb;
    size_t md_bytes;
    /* gw_daylog_render_async on the loop: every Markdown build, then one CSV build. A turn's
     * time is the loop's own: the time between two turns less what it slept in the poll. */
    long pages;            /* a build read (gw_daylog_stats) */
    int turns;             /* a Markdown build took (the most of them) */
    double worst_page_ms;  /* the longest turn that read a page of history */
    double worst_other_ms; /* the longest other turn before the answer: hazards and input */
    double worst_last_ms;  /* the longest answering turn (the text delivered) */
    double async_ms;       /* Markdown, median */
};

/* The first failure is the one reported. */
static void failed(struct result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void failed(struct result *res, const char *fmt, ...)
{
    if (!res->ok) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
    res->ok = 0;
}

/* A gateway's parts the log is built with, and the async build being timed. */
struct builder {
    const char *cfg_path;
    struct gw_config *cfg;
    /* A second copy of the config the daylog starts with, freed (a SIGHUP reload) once the
     * build's texts are in the pool: ASan sees the pool's thread read it after. */
    struct gw_config *spare_cfg;
    bool reloaded;
    struct gw_store *st;
    uv_loop_t loop;
    struct gw_desk *desk;
    struct gw_desk_host host;
    char date[11];
    long rows;
    struct result *res;
    struct gw_daylog *dl; /* the one building, while measuring */
    uv_prepare_t turn;    /* runs once per loop turn, after the idle phase the pages are read in */
    uv_timer_t deadline;
    bool measuring, answered, late;
    bool close_in_pool; /* close the daylog once its texts are in the pool: */
    bool close_running; /* once a pool thread has taken them (else at once, still queued) */
    int answers, closings;
    uint64_t t_request, t_last, idle_last, t_answered;
    int turns;
    uint64_t pages_seen; /* gw_daylog_stats' pages at the last turn */
    uint64_t crowded;    /* the most pages read in one turn */
    double worst_page_ms, worst_other_ms, last_ms;
    struct gw_daylog_stats answered_stats;
    char *text;
    char error[256];
    uv_sem_t gate; /* holds the blockers that keep every pool thread busy */
    uv_work_t blockers[POOL_THREADS];
    int blockers_back;
    /* Queued right behind the build: once a pool thread starts it, the build (ahead of it in
     * libuv's FIFO queue) has been taken by a thread, so uv_cancel can no longer drop it. */
    uv_sem_t probe_started;
    uv_work_t probe;
    bool probe_queued;
    int probe_back;
};

/* The loop's own time since the last turn ended: the time passed less what it slept in the poll
 * (waiting for the pool is not holding the loop; an alarm would be read at once). */
static double turn_ms(struct builder *b)
{
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(&b->loop);
    uint64_t span = now - b->t_last, slept = idle - b->idle_last;
    b->t_last = now;
    b->idle_last = idle;
    return (double)(span > slept ? span - slept : 0) / 1e6;
}

static void on_rendered(void *ctx, char *text, const char *error)
{
    struct builder *b = ctx;
    b->answers++;
    free(b->text); /* a second answer is a failure; its text is not kept */
    b->text = text;
    snprintf(b->error, sizeof(b->error), "%s", error ? error : "");
    if (!b->measuring) {
        return;
    }
    /* In the poll phase (the pool's after-work): this turn so far is the answering one. */
    b->last_ms = turn_ms(b);
    b->turns++;
    b->t_answered = uv_hrtime();
    gw_daylog_stats(b->dl, &b->answered_stats);
    b->answered = true;
    b->measuring = false;
    uv_stop(&b->loop);
}

static void on_closed(void *ctx)
{
    *(bool *)ctx = true;
}

static void on_closed_counted(void *ctx)
{
    struct builder *b = ctx;
    b->closings++;
}

static void close_now(struct builder *b)
{
    b->measuring = false;
    gw_daylog_close(b->dl, on_closed_counted, b);
    b->dl = NULL;
    uv_stop(&b->loop);
}

static void on_probe(uv_work_t *w)
{
    struct builder *b = w->data;
    uv_sem_post(&b->probe_started);
}

static void on_probe_back(uv_work_t *w, int status)
{
    struct builder *b = w->data;
    (void)status;
    b->probe_back++;
}

/* Blocks the loop until a pool thread has taken the build: the build cannot be handed back
 * meanwhile (that happens on this thread), so closing next finds it started, not finished.
 * false when no thread took it before the deadline. */
static bool wait_build_started(struct builder *b)
{
    b->probe.data = b;
    if (uv_queue_work(&b->loop, &b->probe, on_probe, on_probe_back) != 0) {
        return false;
    }
    b->probe_queued = true;
    uint64_t give_up = uv_hrtime() + (uint64_t)ANSWER_DEADLINE_MS * 1000000;
    while (uv_sem_trywait(&b->probe_started) != 0) {
        if (uv_hrtime() > give_up) {
            return false;
        }
        uv_sleep(1);
    }
    return true;
}

static void on_turn(uv_prepare_t *h)
{
    struct builder *b = h->data;
    if (!b->measuring) {
        return;
    }
    double ms = turn_ms(b);
    b->turns++;
    struct gw_daylog_stats st;
    gw_daylog_stats(b->dl, &st);
    uint64_t read = st.pages - b->pages_seen;
    b->pages_seen = st.pages;
    if (read > b->crowded) {
        b->crowded = read;
    }
    double *worst = read ? &b->worst_page_ms : &b->worst_other_ms;
    if (ms > *worst) {
        *worst = ms;
    }
    if (b->spare_cfg && st.in_pool) {
        gw_daylog_reload(b->dl, b->cfg);
        gw_config_free(b->spare_cfg);
        b->spare_cfg = NULL;
        b->reloaded = true;
    }
    if (b->close_in_pool && st.in_pool) {
        if (b->close_running && !wait_build_started(b)) {
            failed(b->res, "no pool thread took the build in %d s", ANSWER_DEADLINE_MS / 1000);
        }
        close_now(b); /* the same turn the texts went to the pool, or with the loop held since */
    }
}

static void on_deadline(uv_timer_t *t)
{
    struct builder *b = t->data;
    b->late = true;
    b->measuring = false;
    uv_stop(&b->loop);
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void close_daylog(struct builder *b, struct gw_daylog *dl)
{
    bool closed = false;
    gw_daylog_close(dl, on_closed, &closed);
    while (!closed) {
        uv_run(&b->loop, UV_RUN_ONCE);
    }
}

/* Where two texts first differ, for the error. */
static void differs(struct result *res, const char *what, const char *sync, const char *async)
{
    size_t i = 0;
    while (sync[i] && sync[i] == async[i]) {
        i++;
    }
    if (sync[i] == async[i]) {
        return;
    }
    /* From a little before it, within its line, on a UTF-8 character's first byte. */
    size_t line = i;
    while (line > 0 && line + 30 > i && sync[line - 1] != '\n') {
        line--;
    }
    while (line < i && ((unsigned char)sync[line] & 0xC0) == 0x80) {
        line++;
    }
    failed(res,
           "the %s built through gw_daylog_render_async differs from gw_daylog_render's at byte "
           "%zu (%zu and %zu bytes): sync \"%.60s\", async \"%.60s\"",
           what, i, strlen(sync), strlen(async), sync + line, async + line);
}

/* A fresh daylog and an async render of the day asked of it, measuring from now; NULL (the
 * reason in res) when it could not be asked. */
static struct gw_daylog *ask(struct builder *b, bool csv)
{
    struct gw_daylog *dl =
        gw_daylog_new(&b->loop, b->spare_cfg ? b->spare_cfg : b->cfg, b->st, b->desk, &b->host);
    if (!dl) {
        failed(b->res, "cannot start the daily log");
        return NULL;
    }
    char err[512] = "";
    b->dl = dl;
    b->answered = b->late = b->reloaded = false;
    b->answers = b->closings = 0;
    b->text = NULL;
    b->error[0] = '\0';
    b->turns = 0;
    b->pages_seen = b->crowded = 0;
    b->worst_page_ms = b->worst_other_ms = b->last_ms = 0;
    b->t_request = b->t_last = uv_hrtime();
    b->idle_last = uv_metrics_idle_time(&b->loop);
    b->measuring = true;
    int rc = gw_daylog_render_async(dl, b->date, csv, on_rendered, b, err, sizeof(err));
    if (rc != 0) {
        failed(b->res, "gw_daylog_render_async refused: %s", err);
    } else if (b->answers) {
        failed(b->res, "gw_daylog_render_async answered before the loop ran: not built");
    }
    if (rc != 0 || b->answers) {
        b->measuring = false;
        b->dl = NULL;
        close_daylog(b, dl);
        free(b->text);
        b->text = NULL;
        return NULL;
    }
    return dl;
}

/*
 * One build of the day through gw_daylog_render_async on the loop, every turn timed: the text,
 * or NULL with the reason in res. A fresh daylog each time: its timer's first look queues the
 * write of this same day (yesterday, its files missing) behind the render, and closing the
 * daylog once the render is answered drops that write, so every build reads the store and
 * nothing else runs meanwhile. With reload, the daylog starts with a copy of the config that is
 * reloaded away and freed while the texts are in the pool.
 */
static char *build_async(struct builder *b, bool csv, bool reload, double *ms)
{
    if (reload) {
        b->spare_cfg = load(b->cfg_path);
    }
    struct gw_daylog *dl = ask(b, csv);
    if (!dl) {
        gw_config_free(b->spare_cfg);
        b->spare_cfg = NULL;
        return NULL;
    }
    uv_timer_start(&b->deadline, on_deadline, ANSWER_DEADLINE_MS, 0);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&b->deadline);
    b->measuring = false;
    b->dl = NULL;
    close_daylog(b, dl);
    dl = NULL;
    gw_config_free(b->spare_cfg); /* not reloaded away: the build failed */
    b->spare_cfg = NULL;
    const struct gw_daylog_stats *st = &b->answered_stats;
    if (reload && !b->reloaded) {
        failed(b->res, "the build's texts were never seen in the pool: no reload during it");
    } else if (b->late) {
        failed(b->res, "no answer from gw_daylog_render_async in %d s", ANSWER_DEADLINE_MS / 1000);
    } else if (b->answers != 1) {
        failed(b->res, "gw_daylog_render_async answered %d times", b->answers);
    } else if (!b->text) {
        failed(b->res, "gw_daylog_render_async failed: %s", b->error);
    } else if (b->crowded > 1) {
        failed(b->res,
               "%llu pages of alarm_history were read in one loop turn (gw_daylog_stats): pages "
               "share a turn, the build holds the loop",
               (unsigned long long)b->crowded);
    } else if (st->pool_builds != 1 || st->loop_builds != 0) {
        failed(b->res,
               "the text was not built on the thread pool (gw_daylog_stats: %llu pool builds, "
               "%llu on the loop): the build holds the loop",
               (unsigned long long)st->pool_builds, (unsigned long long)st->loop_builds);
    } else if (st->last_rows != (uint64_t)b->rows) {
        failed(b->res, "the build read %llu alarm_history rows, the day has %ld",
               (unsigned long long)st->last_rows, b->rows);
    } else if (b->rows >= PAGED_FROM_ROWS && st->last_pages < 2) {
        failed(b->res, "the day's %ld alarm_history rows were read in %d page: not paged", b->rows,
               st->last_pages);
    }
    if (!b->res->ok) {
        free(b->text);
        b->text = NULL;
        return NULL;
    }
    *ms = (double)(b->t_answered - b->t_request) / 1e6;
    struct result *res = b->res;
    res->pages = st->last_pages;
    if (b->turns > res->turns) {
        res->turns = b->turns;
    }
    if (b->worst_page_ms > res->worst_page_ms) {
        res->worst_page_ms = b->worst_page_ms;
    }
    if (b->worst_other_ms > res->worst_other_ms) {
        res->worst_other_ms = b->worst_other_ms;
    }
    if (b->last_ms > res->worst_last_ms) {
        res->worst_last_ms = b->last_ms;
    }
    char *text = b->text;
    b->text = NULL;
    return text;
}

static void on_blocker(uv_work_t *w)
{
    struct builder *b = w->data;
    uv_sem_wait(&b->gate);
}

static void on_blocker_back(uv_work_t *w, int status)
{
    struct builder *b = w->data;
    (void)status;
    b->blockers_back++;
}

/*
 * Closing the daylog while the render's texts are in the pool: the render hears "the gateway
 * is stopping" once, closed runs once, after the build is handed back (an ASan build sees a use
 * after free or a leak otherwise). Nothing here depends on timing. Without pool_busy, the loop
 * is held from the turn the texts go to the pool until a probe queued behind them starts on
 * another thread: the build has been taken by a pool thread and not handed back, so uv_cancel
 * cannot drop it and close must wait for it. With pool_busy, every pool thread is held first
 * and closing comes in the turn the texts go to the pool, behind the blockers: closing cancels
 * the build and must not wait for a thread.
 */
static void close_while_in_pool(struct builder *b, bool pool_busy)
{
    struct result *res = b->res;
    const char *how = pool_busy ? "queued in a busy pool" : "running in the pool";
    int close_deadline_ms = pool_busy ? CLOSE_DEADLINE_MS : ANSWER_DEADLINE_MS;
    uv_sem_t *sem = pool_busy ? &b->gate : &b->probe_started;
    if (uv_sem_init(sem, 0) != 0) {
        failed(res, "uv_sem_init failed");
        return;
    }
    b->blockers_back = b->probe_back = 0;
    b->probe_queued = false;
    if (pool_busy) {
        for (int i = 0; i < POOL_THREADS; i++) {
            b->blockers[i].data = b;
            if (uv_queue_work(&b->loop, &b->blockers[i], on_blocker, on_blocker_back) != 0) {
                b->blockers_back++; /* never queued: nothing to wait for */
                failed(res, "cannot queue a job that holds a pool thread");
            }
        }
    }
    b->close_in_pool = true;
    b->close_running = !pool_busy;
    struct gw_daylog *dl = res->ok ? ask(b, false) : NULL;
    if (dl) {
        uv_timer_start(&b->deadline, on_deadline, ANSWER_DEADLINE_MS, 0);
        uv_run(&b->loop, UV_RUN_DEFAULT);
        uv_timer_stop(&b->deadline);
        if (b->dl) { /* not closed: answered or late; closed (counted) is still awaited below */
            failed(res, "the texts never went to the thread pool (%s)",
                   b->late ? "no answer in time" : "answered without it");
            close_now(b);
        }
        b->late = false;
        uv_timer_start(&b->deadline, on_deadline, (uint64_t)close_deadline_ms, 0);
        while (b->closings == 0 && !b->late) {
            uv_run(&b->loop, UV_RUN_ONCE);
        }
        uv_timer_stop(&b->deadline);
        if (b->closings == 0) {
            failed(res, "closing with a build %s: closed did not run in %d s%s", how,
                   close_deadline_ms / 1000,
                   pool_busy ? " (it waits for a build that has not started: not cancelled)" : "");
        }
    }
    b->close_in_pool = b->close_running = false;
    if (pool_busy) {
        for (int i = 0; i < POOL_THREADS; i++) {
            uv_sem_post(&b->gate);
        }
    }
    /* The blockers and the probe back, and closed once the build is (a late one counts too). */
    b->late = false;
    uv_timer_start(&b->deadline, on_deadline, ANSWER_DEADLINE_MS, 0);
    while ((b->blockers_back < (pool_busy ? POOL_THREADS : 0) ||
            b->probe_back < (b->probe_queued ? 1 : 0) || (dl && b->closings == 0)) &&
           !b->late) {
        uv_run(&b->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&b->deadline);
    if (b->late) {
        failed(res, "closing with a build %s: the pool's jobs or closed not back in %d s", how,
               ANSWER_DEADLINE_MS / 1000);
        /* Jobs still in the pool use what would be freed next: out at once. */
        fprintf(stderr, "gw-bench-daylog: %ld rows: %s\n", b->rows, res->error);
        exit(1);
    }
    uv_sem_destroy(sem);
    if (!dl) {
        return;
    }
    uv_run(&b->loop, UV_RUN_NOWAIT); /* a second closed, a late answer would show now */
    if (b->closings != 1) {
        failed(res, "closing with a build %s: closed ran %d times", how, b->closings);
    }
    if (b->answers != 1 || b->text || strcmp(b->error, "the gateway is stopping") != 0) {
        failed(res,
               "closing with a build %s: the render heard %d answer%s, the last %s \"%s\" (want "
               "one error \"the gateway is stopping\")",
               how, b->answers, b->answers == 1 ? "" : "s", b->text ? "a text" : "the error",
               b->error);
    }
    free(b->text);
    b->text = NULL;
}

/* The day built `repeat` times by gw_daylog_render (timed, holding the loop), then its CSV
 * once; then the same through gw_daylog_render_async, each text checked against the sync one;
 * then closing while a build is in the pool, twice. */
static void builds(struct builder *b, int repeat, int hazards)
{
    struct result *res = b->res;
    char err[512] = "", want[64];
    /* What the built log must list: every hazard entry of the day. */
    snprintf(want, sizeof(want), "### 台账记录（%d）", hazards);
    char *sync_md = NULL, *sync_csv = NULL;
    double ms[MAX_REPEAT];
    struct gw_daylog *dl = gw_daylog_new(&b->loop, b->cfg, b->st, b->desk, &b->host);
    if (!dl) {
        failed(res, "cannot start the daily log");
        return;
    }
    res->before_kb = bench_current_rss_kb();
    for (int i = 0; i < repeat && res->ok; i++) {
        free(sync_md);
        double t0 = bench_now_s();
        sync_md = gw_daylog_render(dl, b->date, false, err, sizeof(err));
        ms[i] = (bench_now_s() - t0) * 1000;
        if (!sync_md || !strstr(sync_md, want)) {
            failed(res, "the log of %s is wrong: %.200s", b->date, sync_md ? sync_md : err);
        }
    }
    if (res->ok) {
        res->md_bytes = strlen(sync_md);
        res->first_ms = ms[0];
        qsort(ms, (size_t)repeat, sizeof(ms[0]), bench_cmp_double);
        res->build_ms = ms[repeat / 2];
        res->peak_kb = bench_peak_rss_kb();
        res->sync_ok = 1;
        sync_csv = gw_daylog_render(dl, b->date, true, err, sizeof(err));
        if (!sync_csv) {
            failed(res, "the CSV of %s: %s", b->date, err);
        }
    }
    /* Before the loop runs: its timer would queue the day's write. */
    close_daylog(b, dl);
    for (int i = 0; i < repeat && res->ok; i++) {
        char *md = build_async(b, false, false, &ms[i]);
        if (md) {
            differs(res, "Markdown", sync_md, md);
        }
        free(md);
    }
    if (res->ok) {
        qsort(ms, (size_t)repeat, sizeof(ms[0]), bench_cmp_double);
        res->async_ms = ms[repeat / 2];
        double csv_ms;
        char *csv = build_async(b, true, true, &csv_ms); /* a reload meanwhile */
        if (csv) {
            differs(res, "CSV", sync_csv, csv);
        }
        free(csv);
    }
    if (res->ok) {
        close_while_in_pool(b, false);
    }
    if (res->ok) {
        close_while_in_pool(b, true);
    }
    free(sync_md);
    free(sync_csv);
}

/* Opens the store like the gateway (store, alarm desk with its hazard desk), builds, closes
 * everything: the child exits through exit(), so an ASan build's leak check sees the rest. */
static void build(const char *cfg_path, int repeat, int hazards, long rows, struct result *res)
{
    struct builder b = {.res = res,
                        .cfg_path = cfg_path,
                        .rows = rows,
                        .host = {.next_seq = next_seq,
                                 .emit = emit,
                                 .open_batch = no_batch,
                                 .status_changed = no_batch}};
    res->ok = 1;
    b.cfg = load(cfg_path);
    int64_t start, end;
    the_day(b.date, &start, &end);
    if (uv_loop_init(&b.loop) != 0) {
        failed(res, "uv_loop_init failed");
        gw_config_free(b.cfg);
        return;
    }
    if (uv_loop_configure(&b.loop, UV_METRICS_IDLE_TIME) != 0) {
        failed(res, "uv_loop_configure(UV_METRICS_IDLE_TIME) failed: the turns cannot be timed");
    }
    uv_prepare_init(&b.loop, &b.turn);
    uv_timer_init(&b.loop, &b.deadline);
    b.turn.data = b.deadline.data = &b;
    uv_prepare_start(&b.turn, on_turn);
    b.st = gw_store_open(b.cfg->state_dir, &b.cfg->store);
    b.desk = b.st ? gw_desk_new(&b.loop, b.cfg, b.st, &b.host) : NULL;
    if (!b.desk) {
        failed(res, "cannot open the store and the alarm desk");
    } else if (res->ok) {
        builds(&b, repeat, hazards);
    }
    if (b.desk) {
        bool closed = false;
        gw_desk_close(b.desk, on_closed, &closed);
        while (!closed) {
            uv_run(&b.loop, UV_RUN_NOWAIT);
        }
        b.desk = NULL;
    }
    uv_close((uv_handle_t *)&b.turn, on_handle_closed);
    uv_close((uv_handle_t *)&b.deadline, on_handle_closed);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&b.loop) != 0) {
        failed(res, "handles left open on the loop after the daily log and the desk closed");
    }
    gw_store_close(b.st);
    gw_config_free(b.cfg);
}

int main(int argc, char **argv)
{
    char rows_arg[256] = "1000,10000,100000";
    int hazards = 100, repeat = 3;
    static const struct option opts[] = {{"rows", required_argument, NULL, 'r'},
                                         {"hazards", required_argument, NULL, 'z'},
                                         {"repeat", required_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "r:z:n:", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            snprintf(rows_arg, sizeof(rows_arg), "%s", optarg);
            break;
        case 'z':
            hazards = atoi(optarg);
            break;
        case 'n':
            repeat = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: gw-bench-daylog [--rows 1000,10000,100000] [--hazards 100] "
                            "[--repeat 3]\n");
            return 2;
        }
    }
    if (hazards < 0 || hazards > 2048 || repeat < 1 || repeat > MAX_REPEAT) {
        fprintf(stderr, "gw-bench-daylog: --hazards 0..2048, --repeat 1..%d\n", MAX_REPEAT);
        return 2;
    }
    long counts[MAX_ROW_COUNTS];
    int ncounts = 0;
    for (char *save = NULL, *tok = strtok_r(rows_arg, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *endp;
        long rows = strtol(tok, &endp, 10);
        if (*endp || rows < ROWS_PER_OCCURRENCE || rows > GW_DAILY_MAX_EVENTS ||
            ncounts == MAX_ROW_COUNTS) {
            fprintf(stderr, "gw-bench-daylog: --rows: up to %d counts, each %d..%d (not %s)\n",
                    MAX_ROW_COUNTS, ROWS_PER_OCCURRENCE, GW_DAILY_MAX_EVENTS, tok);
            return 2;
        }
        counts[ncounts++] = rows / ROWS_PER_OCCURRENCE * ROWS_PER_OCCURRENCE;
    }
    gw_log_set_level(GW_LOG_ERROR);
    /* The close check fills every pool thread: know how many there are. */
    char threads[16];
    snprintf(threads, sizeof(threads), "%d", POOL_THREADS);
    setenv("UV_THREADPOOL_SIZE", threads, 1);
    printf("| alarm_history rows | hazard entries | build ms (median of %d) | first build ms | "
           "rows/s | peak RSS MB | RSS before MB | Markdown KB |\n",
           repeat);
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    struct result results[MAX_ROW_COUNTS];
    int failed_any = 0;
    for (int k = 0; k < ncounts; k++) {
        long rows = counts[k];
        struct result *res = &results[k];
        *res = (struct result){0};
        char dir[] = "/tmp/gw-bench-daylog-XXXXXX";
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        const char *cfg_path = write_config(dir);
        pid_t pid = bench_fork();
        if (pid == 0) {
            exit(fill(cfg_path, rows, hazards)); /* exit(): an ASan build's leak check */
        }
        if (!bench_wait_ok(pid)) {
            fprintf(stderr, "gw-bench-daylog: writing %ld rows failed\n", rows);
            bench_remove_tree(dir);
            return 1;
        }
        int fds[2];
        if (pipe(fds) != 0) {
            perror("pipe");
            bench_remove_tree(dir);
            return 1;
        }
        pid = bench_fork();
        if (pid == 0) {
            close(fds[0]);
            build(cfg_path, repeat, hazards, rows, res);
            int ok = write(fds[1], res, sizeof(*res)) == (ssize_t)sizeof(*res) && res->ok;
            close(fds[1]);
            exit(ok ? 0 : 1);
        }
        close(fds[1]);
        ssize_t got = read(fds[0], res, sizeof(*res));
        close(fds[0]);
        int child_ok = bench_wait_ok(pid);
        if (got != (ssize_t)sizeof(*res)) {
            *res = (struct result){0};
        }
        if (!child_ok || !res->ok) {
            fprintf(stderr, "gw-bench-daylog: %ld rows: %s\n", rows,
                    res->error[0] ? res->error : "the build failed (see above)");
            res->ok = 0;
            failed_any = 1;
        }
        if (res->sync_ok) {
            printf("| %ld | %d | %.1f | %.1f | %.0f | %.1f | %.1f | %.0f |\n", rows, hazards,
                   res->build_ms, res->first_ms, (double)rows / (res->build_ms / 1000),
                   (double)res->peak_kb / 1024, (double)res->before_kb / 1024,
                   (double)res->md_bytes / 1024);
            fflush(stdout);
        }
        bench_remove_tree(dir);
    }
    printf("\nthe same day through gw_daylog_render_async on the loop (a page of alarm_history per "
           "turn, the hazard register and the input in one more, the texts on the thread pool; "
           "a turn's time is the loop's own, its sleep in the poll left out):\n\n"
           "| alarm_history rows | pages | loop turns | longest turn ms | longest page turn ms | "
           "hazards and input turn ms | answering turn ms | async build ms (median of %d) | sync "
           "build ms |\n"
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
           repeat);
    for (int k = 0; k < ncounts; k++) {
        const struct result *res = &results[k];
        if (!res->ok) {
            printf("| %ld | failed | | | | | | | |\n", counts[k]);
            continue;
        }
        double longest = res->worst_page_ms;
        if (res->worst_other_ms > longest) {
            longest = res->worst_other_ms;
        }
        if (res->worst_last_ms > longest) {
            longest = res->worst_last_ms;
        }
        printf("| %ld | %ld | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", counts[k],
               res->pages, res->turns, longest, res->worst_page_ms, res->worst_other_ms,
               res->worst_last_ms, res->async_ms, res->build_ms);
    }
    return failed_any;
}
