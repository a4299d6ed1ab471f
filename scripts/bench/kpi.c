/*
 * School figures benchmark: how long one KPI run (gateway/kpi_report.c) holds the event loop
 * at most, for a last 24 h of N alarm_history rows. Prints a table; exits 1 when a run is
 * wrong, so scripts/test's smoke run and ctest (kpi_report_paging) catch a regression.
 *
 *   gw-bench-kpi [--rows 1000,10000,100000] [--repeat 3] [--old-rows 0]
 *
 * For each N, in a temp dir:
 *  - a child process writes state.db through the gateway's own store (gw_store_append):
 *    N alarm_history rows over the last 24 h, occurrences of four rows each as the alarm
 *    desk writes them (the raise, its notification, the ack, the clear) over 300 sensors
 *    and three rules, and `old-rows` more rows a day or more before the window (a gateway's
 *    older history, which the store skips by its ts);
 *  - a second child opens that store in a gateway (gw_gateway_new, not started: no sinks,
 *    no drivers) and asks its KPI report for the figures `repeat` times, with a uv_prepare
 *    handle timing every loop turn: the longest turn of a run is what an alarm arriving
 *    then would wait at most. Each run is checked: every page of rows had its own loop turn
 *    (a worker that loops inside one turn fails here), a second request while it read was
 *    merged into it, its figures are the ones the generator wrote and exactly those of the
 *    same history read in one go (timed too: that is how long the loop was held before the
 *    reads were paged). Last, a run is stopped half read (gw_kpi_report_close): the child
 *    then exits through exit(), so an ASan build's leak check sees anything it left behind.
 * scripts/bench/kpi builds and runs this.
 */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "bench_common.h"
#include "bench_store.h"
#include "config.h"
#include "gateway.h"
#include "kpi.h"
#include "kpi_report.h"
#include "log.h"
#include "payload.h"
#include "store.h"

#define SENSORS 300
#define ROWS_PER_OCCURRENCE 4
#define HOUR_MS (3600 * 1000LL)
#define MAX_REPEAT 16

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
            "\"Asia/Shanghai\"; };\n"
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
                "  { id = \"%s-%03d\"; kind = \"%s\"; profile = \"%s\"; modbus = \"plc\"; "
                "unit_id = %d; interval_s = 10; location = { building = \"%c\"; floor = \"%d\"; "
                "zone = \"room %d\"; }; }%s\n",
                hydrant ? "hydrant" : "smoke", i, hydrant ? "hydrant_pressure" : "smoke",
                hydrant ? "hydrant" : "smoke", 1 + i % 247, 'A' + i % 4, 1 + i % 5, 100 + i,
                i + 1 < SENSORS ? "," : "");
    }
    fprintf(f, ");\nrules = (\n"
               "  { name = \"smoke detected\"; kind = \"smoke\"; point = \"smoke\"; equals = true; "
               "class = \"alarm\"; },\n"
               "  { name = \"hydrant pressure low\"; kind = \"hydrant_pressure\"; point = "
               "\"pressure\"; below = 0.10; deadband = 0.02; class = \"supervisory\"; },\n"
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
    return cfg;
}

/* ---- the history ---- */

/* What the generator wrote into the window: the figures a run must come to. */
struct expected {
    int alarms[GW_NCLASSES];
    int acked;
    int64_t ack_worst_ms;
};

/* `occurrences` raise / notify / ack / clear quadruples spread over [start, end). */
static void write_occurrences(struct bench_writer *w, const struct gw_config *cfg, long occurrences,
                              int64_t start, int64_t end, struct expected *exp)
{
    int smoke = bench_rule_of(cfg, "smoke detected", "kpi bench"),
        low = bench_rule_of(cfg, "hydrant pressure low", "kpi bench"),
        offline = bench_rule_of(cfg, "sensor offline", "kpi bench");
    int64_t step = (end - start) / (occurrences ? occurrences : 1);
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
        bench_put(w, GW_REC_EVENT, a.raised_at_ms, "events",
                  gw_payload_alarm(w->seq + 1, cfg, &a, "raise"));

        json_t *n = json_pack("{sI ss ss si ss ss ss}", "seq", (json_int_t)w->seq + 1, "key", a.key,
                              "class", gw_class_name(rule->alarm_class), "level", 1, "text",
                              rule->name, "sensor", sensor->id, "kind", "raise");
        char *note = n ? json_dumps(n, JSON_COMPACT) : NULL;
        json_decref(n);
        bench_put(w, GW_REC_NOTIFY, a.raised_at_ms + 150, "notify/facilities", note);

        int64_t ack_ms = 60000 + (i % 240) * 1000;
        a.state = GW_ALARM_ACKED;
        a.acked_at_ms = a.raised_at_ms + ack_ms;
        snprintf(a.acked_by, sizeof(a.acked_by), "wang");
        bench_put(w, GW_REC_EVENT, a.acked_at_ms, "events",
                  gw_payload_alarm(w->seq + 1, cfg, &a, "ack"));

        a.state = GW_ALARM_NORMAL;
        a.condition = false;
        a.cleared_at_ms = a.acked_at_ms + 120000;
        a.value.num = 0;
        bench_put(w, GW_REC_EVENT, a.cleared_at_ms, "events",
                  gw_payload_alarm(w->seq + 1, cfg, &a, "clear"));
        if (exp) {
            exp->alarms[rule->alarm_class]++;
            exp->acked++;
            if (ack_ms > exp->ack_worst_ms) {
                exp->ack_worst_ms = ack_ms;
            }
        }
    }
}

static int fill(const char *cfg_path, long rows, long old_rows, struct expected *exp)
{
    struct gw_config *cfg = load(cfg_path);
    struct gw_store *st = gw_store_open(cfg->state_dir, &cfg->store);
    if (!st) {
        return 1;
    }
    int64_t now = gw_now_ms();
    struct bench_writer w = {.st = st, .who = "kpi bench"};
    /* Older history first (seq order is time order): from a week back to 26 h ago. */
    write_occurrences(&w, cfg, old_rows / ROWS_PER_OCCURRENCE, now - 7 * 24 * HOUR_MS,
                      now - 26 * HOUR_MS, NULL);
    /* The window's: raised from 23 h 50 min ago, every row recorded by 10 min ago. */
    write_occurrences(&w, cfg, rows / ROWS_PER_OCCURRENCE, now - 24 * HOUR_MS + 600000,
                      now - 20 * 60000, exp);
    bench_flush(&w);
    int rc = gw_store_commit(st);
    gw_store_close(st);
    gw_config_free(cfg);
    return rc == 0 ? 0 : 1;
}

/* ---- the runs ---- */

struct result {
    int ok;
    char error[256];
    int pages, turns; /* of the last run */
    uint64_t rows;
    double worst_first_ms; /* the longest loop turn of the first run */
    double worst_later_ms; /* of the runs after it (they skip the history before the window) */
    double run_ms;         /* median */
    double oneshot_ms;     /* median: the same history read in one go */
    int closed_half_read;  /* the run stopped half read was freed (-1: too few pages to try) */
};

struct bench {
    uv_loop_t *loop;
    struct gw_gateway *gw;
    struct gw_kpi_report *kpi;
    uv_prepare_t turn;
    uv_timer_t kick;
    int repeat, done_runs;
    struct expected exp;
    struct result *res;
    /* the run being timed */
    bool measuring;
    uint64_t t_request, t_last;
    int turns;
    double worst_ms; /* this run's longest turn */
    uint64_t published_before, merged_before;
    double run_ms[MAX_REPEAT], oneshot_ms[MAX_REPEAT];
    bool closing;
};

/* Kept in a static: after exit() the leak check reports only what nothing points to. */
static struct bench the_bench;

/* The first failure is the one reported: why, and the detail when there is one. */
static void failed(struct bench *b, const char *why, const char *detail)
{
    if (b->res->ok) {
        snprintf(b->res->error, sizeof(b->res->error), "%s%s%s", why, detail ? ": " : "",
                 detail ? detail : "");
        b->res->ok = 0;
    }
    uv_stop(b->loop);
}

struct oneshot {
    struct gw_kpi_history *h;
    int64_t now;
    int rc;
};

static void on_oneshot_row(void *ctx, uint64_t seq, int64_t ts_ms, const char *payload)
{
    (void)seq;
    struct oneshot *o = ctx;
    if (ts_ms <= o->now && o->rc == 0) {
        o->rc = gw_kpi_history_add(o->h, payload);
    }
}

/* The run's figures against the generator's and against the history read in one go. */
static void check_run(struct bench *b, const struct gw_kpi_report_stats *st)
{
    const struct gw_kpi *k = &st->last;
    char what[200];
    for (int c = 0; c < GW_NCLASSES; c++) {
        if (k->alarms_24h[c] != b->exp.alarms[c]) {
            snprintf(what, sizeof(what), "alarms_24h[%d] %d, written %d", c, k->alarms_24h[c],
                     b->exp.alarms[c]);
            failed(b, "wrong figures", what);
            return;
        }
    }
    if (k->acked_24h != b->exp.acked || k->ack_worst_ms != b->exp.ack_worst_ms ||
        k->malformed != 0) {
        snprintf(what, sizeof(what), "acked %d worst %lld malformed %d, written %d %lld 0",
                 k->acked_24h, (long long)k->ack_worst_ms, k->malformed, b->exp.acked,
                 (long long)b->exp.ack_worst_ms);
        failed(b, "wrong figures", what);
        return;
    }
    struct oneshot o = {.h = gw_kpi_history_new(st->last_now_ms), .now = st->last_now_ms};
    if (!o.h) {
        failed(b, "out of memory", NULL);
        return;
    }
    double t0 = bench_now_s();
    int n = gw_store_history_since(gw_gateway_store(b->gw), o.now - GW_KPI_WINDOW_MS - HOUR_MS, 0,
                                   INT_MAX, on_oneshot_row, &o);
    const struct gw_config *cfg = gw_gateway_config(b->gw);
    struct gw_kpi_input in = {.cfg = cfg, .history = o.h, .now_ms = o.now};
    struct gw_kpi ref;
    int rc = n < 0 ? n : o.rc ? o.rc : gw_kpi_compute(&in, &ref, NULL, 0);
    b->oneshot_ms[b->done_runs] = (bench_now_s() - t0) * 1000;
    gw_kpi_history_free(o.h);
    if (rc != 0) {
        failed(b, "the history read in one go failed", NULL);
        return;
    }
    if (memcmp(ref.alarms_24h, k->alarms_24h, sizeof(ref.alarms_24h)) != 0 ||
        ref.acked_24h != k->acked_24h || ref.ack_mean_ds != k->ack_mean_ds ||
        ref.ack_worst_ms != k->ack_worst_ms || ref.malformed != k->malformed) {
        failed(b, "the figures read page by page differ from those read in one go", NULL);
    }
}

static void on_kpi_closed(void *ctx)
{
    struct bench *b = ctx;
    b->kpi = NULL;
    b->res->closed_half_read = 1;
    uv_stop(b->loop);
}

static void on_kick(uv_timer_t *t)
{
    struct bench *b = t->data;
    struct gw_kpi_report_stats st;
    gw_kpi_report_stats(b->kpi, &st);
    b->published_before = st.published;
    b->merged_before = st.merged;
    b->turns = 0;
    b->worst_ms = 0;
    b->t_request = b->t_last = uv_hrtime();
    b->measuring = true;
    if (gw_kpi_report_now(b->kpi) != 0 || gw_kpi_report_now(b->kpi) != 0) {
        failed(b, "gw_kpi_report_now refused", NULL);
    }
}

static void on_turn(uv_prepare_t *h)
{
    struct bench *b = h->data;
    if (!b->measuring) {
        return;
    }
    uint64_t now = uv_hrtime();
    double ms = (double)(now - b->t_last) / 1e6;
    if (ms > b->worst_ms) {
        b->worst_ms = ms;
    }
    b->t_last = now;
    b->turns++;
    struct gw_kpi_report_stats st;
    gw_kpi_report_stats(b->kpi, &st);
    if (b->closing) {
        /* Stop the run half read, two turns in. */
        if (b->turns == 2) {
            if (!st.reading) {
                failed(b, "the run to stop was not reading any more", NULL);
                return;
            }
            b->measuring = false;
            gw_kpi_report_close(b->kpi, on_kpi_closed, b);
        }
        return;
    }
    if (st.reading) {
        return;
    }
    b->measuring = false;
    b->run_ms[b->done_runs] = (double)(now - b->t_request) / 1e6;
    b->res->pages = st.last_pages;
    b->res->turns = b->turns;
    b->res->rows = st.last_rows;
    if (b->done_runs == 0) {
        b->res->worst_first_ms = b->worst_ms;
    } else if (b->worst_ms > b->res->worst_later_ms) {
        b->res->worst_later_ms = b->worst_ms;
    }
    char what[160];
    if (st.published != b->published_before + 1 || st.merged != b->merged_before + 1) {
        snprintf(what, sizeof(what), "published %llu merged %llu",
                 (unsigned long long)(st.published - b->published_before),
                 (unsigned long long)(st.merged - b->merged_before));
        failed(b, "two requests, one run expected", what);
        return;
    }
    if (b->turns < st.last_pages) {
        snprintf(what, sizeof(what), "%d pages in %d turns", st.last_pages, b->turns);
        failed(b, "pages share a loop turn", what);
        return;
    }
    check_run(b, &st);
    if (!b->res->ok) {
        return;
    }
    if (++b->done_runs < b->repeat) {
        uv_timer_start(&b->kick, on_kick, 0, 0);
    } else if (st.last_pages >= 3) {
        b->closing = true;
        uv_timer_start(&b->kick, on_kick, 0, 0);
    } else {
        b->res->closed_half_read = -1;
        uv_stop(b->loop);
    }
}

static void runs(const char *cfg_path, int repeat, const struct expected *exp, struct result *res)
{
    struct bench *b = &the_bench;
    res->ok = 1;
    b->res = res;
    b->repeat = repeat;
    b->exp = *exp;
    b->loop = uv_default_loop();
    b->gw = gw_gateway_new(b->loop, load(cfg_path), false);
    b->kpi = b->gw ? gw_kpi_report_new(b->loop, b->gw) : NULL;
    if (!b->kpi) {
        failed(b, "cannot open the gateway", NULL);
        return;
    }
    uv_prepare_init(b->loop, &b->turn);
    uv_timer_init(b->loop, &b->kick);
    b->turn.data = b->kick.data = b;
    uv_prepare_start(&b->turn, on_turn);
    uv_timer_start(&b->kick, on_kick, 0, 0);
    uv_run(b->loop, UV_RUN_DEFAULT);
    if (res->ok && res->closed_half_read == 0) {
        failed(b, "the run stopped half read never closed", NULL);
    }
    qsort(b->run_ms, (size_t)b->done_runs, sizeof(double), bench_cmp_double);
    qsort(b->oneshot_ms, (size_t)b->done_runs, sizeof(double), bench_cmp_double);
    if (b->done_runs > 0) {
        res->run_ms = b->run_ms[b->done_runs / 2];
        res->oneshot_ms = b->oneshot_ms[b->done_runs / 2];
    }
}

/* Runs fn in a child and reads its fixed-size answer back; 0 when both went well. */
static int in_child(void *out, size_t size, int (*fn)(void *out, void *arg), void *arg)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        return -1;
    }
    pid_t pid = bench_fork();
    if (pid == 0) {
        close(fds[0]);
        int rc = fn(out, arg);
        if (write(fds[1], out, size) != (ssize_t)size) {
            rc = 1;
        }
        close(fds[1]);
        /* exit(), not _exit(): an ASan build's leak check runs at exit. */
        exit(rc);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], out, size);
    close(fds[0]);
    return bench_wait_ok(pid) && got == (ssize_t)size ? 0 : -1;
}

struct job {
    const char *cfg_path;
    long rows, old_rows;
    int repeat;
    struct expected exp;
};

static int fill_child(void *out, void *arg)
{
    struct job *j = arg;
    return fill(j->cfg_path, j->rows, j->old_rows, out);
}

static int run_child(void *out, void *arg)
{
    struct job *j = arg;
    struct result *res = out;
    runs(j->cfg_path, j->repeat, &j->exp, res);
    return res->ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    char rows_arg[256] = "1000,10000,100000";
    long old_rows = 0;
    int repeat = 3;
    static const struct option opts[] = {{"rows", required_argument, NULL, 'r'},
                                         {"repeat", required_argument, NULL, 'n'},
                                         {"old-rows", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "r:n:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            snprintf(rows_arg, sizeof(rows_arg), "%s", optarg);
            break;
        case 'n':
            repeat = atoi(optarg);
            break;
        case 'o':
            old_rows = atol(optarg);
            break;
        default:
            fprintf(stderr, "usage: gw-bench-kpi [--rows 1000,10000,100000] [--repeat 3] "
                            "[--old-rows 0]\n");
            return 2;
        }
    }
    if (repeat < 1 || repeat > MAX_REPEAT || old_rows < 0 || old_rows > 10000000) {
        fprintf(stderr, "gw-bench-kpi: --repeat 1..%d, --old-rows 0..10000000\n", MAX_REPEAT);
        return 2;
    }
    gw_log_set_level(GW_LOG_ERROR);
    printf("| alarm_history rows in 24 h | older rows | pages | loop turns | longest turn ms, "
           "first run | longest turn ms, later runs | run ms (median of %d) | one-shot read ms "
           "|\n",
           repeat);
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    int failed_any = 0;
    for (char *save = NULL, *tok = strtok_r(rows_arg, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        long rows = atol(tok);
        if (rows < ROWS_PER_OCCURRENCE || rows > 10000000) {
            fprintf(stderr, "gw-bench-kpi: rows %s: %d..10000000\n", tok, ROWS_PER_OCCURRENCE);
            return 2;
        }
        char dir[] = "/tmp/gw-bench-kpi-XXXXXX";
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        struct job job = {
            .cfg_path = write_config(dir), .rows = rows, .old_rows = old_rows, .repeat = repeat};
        if (in_child(&job.exp, sizeof(job.exp), fill_child, &job) != 0) {
            fprintf(stderr, "gw-bench-kpi: writing %ld rows failed\n", rows);
            bench_remove_tree(dir);
            return 1;
        }
        struct result res = {0};
        if (in_child(&res, sizeof(res), run_child, &job) != 0 || !res.ok) {
            fprintf(stderr, "gw-bench-kpi: %ld rows: %s\n", rows,
                    res.error[0] ? res.error : "the run failed (see above)");
            failed_any = 1;
        } else {
            char later[32] = "-";
            if (repeat > 1) {
                snprintf(later, sizeof(later), "%.1f", res.worst_later_ms);
            }
            printf("| %ld | %ld | %d | %d | %.1f | %s | %.1f | %.1f |\n",
                   rows / ROWS_PER_OCCURRENCE * ROWS_PER_OCCURRENCE,
                   old_rows / ROWS_PER_OCCURRENCE * ROWS_PER_OCCURRENCE, res.pages, res.turns,
                   res.worst_first_ms, later, res.run_ms, res.oneshot_ms);
            fflush(stdout);
        }
        bench_remove_tree(dir);
    }
    return failed_any;
}
