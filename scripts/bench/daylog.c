/*
 * Daily safety log benchmark: how long the gateway takes to build one day's log from the
 * store (gw_daylog_render: the alarm_history scan, the hazard register replay, the Markdown
 * and the CSV), and the memory it needs, for days of N alarm_history rows. Prints a table;
 * not a test.
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
 *    hazard desk, daylog) and renders the day `repeat` times: its peak RSS is the build's,
 *    not the writer's.
 * scripts/bench/daylog builds and runs this.
 */
#include <getopt.h>
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

static int rule_of(const struct gw_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->nrules; i++) {
        if (strcmp(cfg->rules[i].name, name) == 0) {
            return i;
        }
    }
    fprintf(stderr, "daylog bench: no rule %s\n", name);
    exit(1);
}

struct writer {
    struct gw_store *st;
    uint64_t seq;
    int in_batch;
};

static void put(struct writer *w, enum gw_record_type type, int64_t ts, const char *topic,
                char *payload)
{
    if (!payload) {
        fprintf(stderr, "daylog bench: out of memory\n");
        exit(1);
    }
    if (w->in_batch == 0) {
        gw_store_begin_batch(w->st);
    }
    if (gw_store_append(w->st, ++w->seq, type, ts, topic, payload) != 0) {
        fprintf(stderr, "daylog bench: the store refused a record\n");
        exit(1);
    }
    free(payload);
    if (++w->in_batch == 1000) { /* one commit per 1,000 rows, as a busy gateway would */
        gw_store_end_batch(w->st);
        w->in_batch = 0;
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

static void write_alarms(struct writer *w, const struct gw_config *cfg, long rows, int64_t start,
                         int64_t end)
{
    static const char *const people[] = {"王师傅", "张工", "李老师", "值班员"};
    int smoke = rule_of(cfg, "smoke detected"), low = rule_of(cfg, "hydrant pressure low"),
        offline = rule_of(cfg, "sensor offline");
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
        put(w, GW_REC_EVENT, a.raised_at_ms, "events",
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
        put(w, GW_REC_NOTIFY, a.raised_at_ms + 150, "notify/facilities", note);

        const char *by = people[i % 4];
        a.state = GW_ALARM_ACKED;
        a.acked_at_ms = a.raised_at_ms + 60000 + (i % 240) * 1000;
        snprintf(a.acked_by, sizeof(a.acked_by), "%s", by);
        put(w, GW_REC_EVENT, a.acked_at_ms, "events",
            event(w->seq + 1, cfg, &a, "ack", by, "已到现场查看"));

        a.state = GW_ALARM_NORMAL;
        a.condition = false;
        a.cleared_at_ms = a.acked_at_ms + 120000;
        a.value.num = r == offline ? 0 : hydrant ? 0.35 : 0;
        put(w, GW_REC_EVENT, a.cleared_at_ms, "events",
            event(w->seq + 1, cfg, &a, "clear", NULL, ""));
    }
}

/* `n` entries by the real register over the day: found, given to someone, fixed, closed. */
static void write_hazards(struct writer *w, int n, int64_t start, int64_t end)
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
            put(w, GW_REC_HAZARD_LOG, now, "hazards/log", gw_hazard_entry_to_json(&e));
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
    struct writer w = {.st = st};
    /* The register's entries first: the hazard desk finds their chain whole. */
    write_hazards(&w, hazards, start, end);
    write_alarms(&w, cfg, rows, start, end);
    if (w.in_batch) {
        gw_store_end_batch(st);
    }
    int rc = gw_store_commit(st);
    gw_store_close(st);
    gw_config_free(cfg);
    return rc == 0 ? 0 : 1;
}

/* ---- the build ---- */

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
    int ok;
    double build_ms, first_ms;
    long peak_kb, before_kb;
    size_t md_bytes;
};

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void build(const char *cfg_path, int repeat, int hazards, struct result *res)
{
    struct gw_config *cfg = load(cfg_path);
    struct gw_store *st = gw_store_open(cfg->state_dir, &cfg->store);
    if (!st) {
        return;
    }
    uv_loop_t *loop = uv_default_loop();
    struct gw_desk_host host = {
        .next_seq = next_seq, .emit = emit, .open_batch = no_batch, .status_changed = no_batch};
    struct gw_desk *desk = gw_desk_new(loop, cfg, st, &host);
    struct gw_daylog *dl = desk ? gw_daylog_new(loop, cfg, st, desk, &host) : NULL;
    if (!dl) {
        return;
    }
    char date[11], err[512] = "", want[64];
    int64_t start, end;
    the_day(date, &start, &end);
    /* What the built log must list: every hazard entry of the day. */
    snprintf(want, sizeof(want), "### 台账记录（%d）", hazards);
    double ms[16];
    res->before_kb = bench_current_rss_kb();
    for (int i = 0; i < repeat; i++) {
        double t0 = bench_now_s();
        char *md = gw_daylog_render(dl, date, false, err, sizeof(err));
        ms[i] = (bench_now_s() - t0) * 1000;
        if (!md || !strstr(md, want)) {
            fprintf(stderr, "daylog bench: the log of %s is wrong: %s\n", date, md ? md : err);
            free(md);
            return;
        }
        res->md_bytes = strlen(md);
        free(md);
    }
    res->first_ms = ms[0];
    qsort(ms, (size_t)repeat, sizeof(ms[0]), by_value);
    res->build_ms = ms[repeat / 2];
    res->peak_kb = bench_peak_rss_kb();
    res->ok = 1;
    /* The child exits now: the loop's timers and the store go with the process. */
}

static pid_t child(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    return pid;
}

static int wait_ok(pid_t pid)
{
    int status;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
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
    if (hazards < 0 || hazards > 2048 || repeat < 1 || repeat > 16) {
        fprintf(stderr, "gw-bench-daylog: --hazards 0..2048, --repeat 1..16\n");
        return 2;
    }
    gw_log_set_level(GW_LOG_ERROR);
    printf("| alarm_history rows | hazard entries | build ms (median of %d) | first build ms | "
           "rows/s | peak RSS MB | RSS before MB | Markdown KB |\n",
           repeat);
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    int failed = 0;
    for (char *save = NULL, *tok = strtok_r(rows_arg, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        long rows = atol(tok);
        if (rows < ROWS_PER_OCCURRENCE || rows > GW_DAILY_MAX_EVENTS) {
            fprintf(stderr, "gw-bench-daylog: rows %s: %d..%d\n", tok, ROWS_PER_OCCURRENCE,
                    GW_DAILY_MAX_EVENTS);
            return 2;
        }
        char dir[] = "/tmp/gw-bench-daylog-XXXXXX";
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        const char *cfg_path = write_config(dir);
        pid_t pid = child();
        if (pid == 0) {
            _exit(fill(cfg_path, rows, hazards));
        }
        if (!wait_ok(pid)) {
            fprintf(stderr, "gw-bench-daylog: writing %ld rows failed\n", rows);
            bench_remove_tree(dir);
            return 1;
        }
        int fds[2];
        if (pipe(fds) != 0) {
            perror("pipe");
            return 1;
        }
        pid = child();
        if (pid == 0) {
            close(fds[0]);
            struct result res = {0};
            build(cfg_path, repeat, hazards, &res);
            _exit(write(fds[1], &res, sizeof(res)) == (ssize_t)sizeof(res) && res.ok ? 0 : 1);
        }
        close(fds[1]);
        struct result res = {0};
        ssize_t got = read(fds[0], &res, sizeof(res));
        close(fds[0]);
        if (!wait_ok(pid) || got != (ssize_t)sizeof(res) || !res.ok) {
            fprintf(stderr, "gw-bench-daylog: building the log of %ld rows failed\n", rows);
            failed = 1;
        } else {
            long day_rows = rows / ROWS_PER_OCCURRENCE * ROWS_PER_OCCURRENCE;
            printf("| %ld | %d | %.1f | %.1f | %.0f | %.1f | %.1f | %.0f |\n", day_rows, hazards,
                   res.build_ms, res.first_ms, (double)day_rows / (res.build_ms / 1000),
                   (double)res.peak_kb / 1024, (double)res.before_kb / 1024,
                   (double)res.md_bytes / 1024);
            fflush(stdout);
        }
        bench_remove_tree(dir);
    }
    return failed;
}
