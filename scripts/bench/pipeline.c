/*
 * Pipeline benchmark: readings per second from the driver hand-off
 * (gw_gateway_dispatch) through registry and rules to hub publish, with N
 * sensors, and the peak RSS. Prints a table; not a test.
 *
 *   gw-bench-pipeline --hub-port PORT [--sensors 1000] [--readings 500000]
 *
 * scripts/bench/pipeline starts a private mosquitto and runs this.
 */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "bench_common.h"
#include "config.h"
#include "gateway.h"
#include "log.h"

struct bench {
    uv_loop_t *loop;
    struct gw_gateway *gw;
    const struct gw_config *cfg;
    int sensors;
    long target;
    long sent;
    double t0;
    double dispatched; /* seconds until every reading was handed over */
    double elapsed;    /* ...until the hub confirmed every record */
    uv_idle_t idle;
    uv_timer_t wait_connect;
    int phase; /* 0 waiting for hub, 1 running */
};

static char *write_config(int sensors, int hub_port, const char *dir)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/bench.cfg", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f,
            "site = { district = \"bench\"; school = \"s1\"; name = \"Bench\"; timezone = "
            "\"UTC\"; language = \"en\"; };\n"
            "state_dir = \"%s/state\";\n"
            "hub = { host = \"127.0.0.1\"; port = %d; topic_prefix = \"campus\"; };\n"
            "modbus = ( { name = \"plc\"; tcp = \"127.0.0.1:1\"; } );\n"
            "schedules = { hours = { days = \"daily\"; from = \"00:00\"; to = \"24:00\"; }; };\n"
            "profiles = { hydrant = { points = ( { name = \"pressure\"; unit = \"MPa\"; table = "
            "\"holding\"; address = 0; type = \"u16\"; raw_min = 4000; raw_max = 20000; min = "
            "0.0; max = 1.6; } ); }; };\n"
            "sensors = (\n",
            dir, hub_port);
    for (int i = 0; i < sensors; i++) {
        fprintf(f,
                "  { id = \"S-%04d\"; kind = \"hydrant_pressure\"; profile = \"hydrant\"; modbus = "
                "\"plc\"; unit_id = %d; interval_s = 10; location = { building = \"A\"; floor = "
                "\"%d\"; zone = \"z%d\"; }; }%s\n",
                i, 1 + i % 247, i % 6, i, i + 1 < sensors ? "," : "");
    }
    fprintf(f, ");\nrules = (\n"
               "  { name = \"pressure low\"; kind = \"hydrant_pressure\"; point = \"pressure\"; "
               "below = 0.10; deadband = 0.02; on_delay_s = 5; class = \"supervisory\"; },\n"
               "  { name = \"pressure high\"; kind = \"hydrant_pressure\"; point = \"pressure\"; "
               "above = 1.2; deadband = 0.05; during = \"hours\"; class = \"supervisory\"; },\n"
               "  { name = \"sensor offline\"; offline_after = 3; class = \"trouble\"; }\n"
               ");\n");
    fclose(f);
    return path;
}

static void fill_reading(struct gw_reading *r, const struct gw_config *cfg, long n)
{
    int idx = (int)(n % cfg->nsensors);
    memset(r, 0, sizeof(*r));
    r->sensor_index = idx;
    snprintf(r->sensor, sizeof(r->sensor), "%s", cfg->sensors[idx].id);
    r->status = GW_READING_OK;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->ts_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    r->npoints = 1;
    strcpy(r->points[0].name, "pressure");
    r->points[0].value.type = GW_VALUE_NUMBER;
    /* Mostly normal; every 97th round each sensor reads high for one reading, so the
     * "pressure high" rule (no delay) raises and clears: alarms and events are published. */
    r->points[0].value.num = (n / cfg->nsensors) % 97 == 5 ? 1.3 : 0.40 + (double)(n % 13) / 100;
}

/* Every record is in the hub when the hub sink has confirmed everything. */
static void on_drained(uv_timer_t *t)
{
    struct bench *b = t->data;
    if (gw_gateway_sink_lag(b->gw, "hub") > 0) {
        return;
    }
    b->elapsed = bench_now_s() - b->t0;
    uv_timer_stop(t);
    gw_gateway_stop(b->gw, NULL, NULL);
    uv_close((uv_handle_t *)&b->idle, NULL);
    uv_close((uv_handle_t *)&b->wait_connect, NULL);
}

static void on_idle(uv_idle_t *h)
{
    struct bench *b = h->data;
    struct gw_reading r;
    for (int i = 0; i < 1000 && b->sent < b->target; i++, b->sent++) {
        fill_reading(&r, b->cfg, b->sent);
        gw_gateway_dispatch(b->gw, &r);
    }
    if (b->sent >= b->target) {
        b->dispatched = bench_now_s() - b->t0;
        uv_idle_stop(h);
        uv_timer_start(&b->wait_connect, on_drained, 5, 5);
    }
}

static void on_wait(uv_timer_t *t)
{
    struct bench *b = t->data;
    if (gw_gateway_hub_connected(b->gw)) {
        uv_timer_stop(t);
        b->t0 = bench_now_s();
        uv_idle_start(&b->idle, on_idle);
    }
}

int main(int argc, char **argv)
{
    int sensors = 1000, hub_port = 1883;
    long readings = 500000;
    static const struct option opts[] = {{"sensors", required_argument, NULL, 's'},
                                         {"readings", required_argument, NULL, 'n'},
                                         {"hub-port", required_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "s:n:p:", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            sensors = atoi(optarg);
            break;
        case 'n':
            readings = atol(optarg);
            break;
        case 'p':
            hub_port = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: gw-bench-pipeline --hub-port P [--sensors N] [--readings N]\n");
            return 2;
        }
    }
    gw_log_set_level(GW_LOG_ERROR);
    char dir[] = "/tmp/gw-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    long rss_before = bench_current_rss_kb();
    long private_before = bench_private_kb();
    struct gw_config *cfg = gw_config_load(write_config(sensors, hub_port, dir), stderr);
    if (!cfg) {
        return 1;
    }
    setenv("TZ", "UTC", 1);
    tzset();
    struct bench b = {.loop = uv_default_loop(), .sensors = sensors, .target = readings};
    b.gw = gw_gateway_new(b.loop, cfg, false);
    if (!b.gw) {
        return 1;
    }
    b.cfg = gw_gateway_config(b.gw);
    gw_gateway_start(b.gw);
    uv_idle_init(b.loop, &b.idle);
    b.idle.data = &b;
    uv_timer_init(b.loop, &b.wait_connect);
    b.wait_connect.data = &b;
    uv_timer_start(&b.wait_connect, on_wait, 50, 50);
    uv_run(b.loop, UV_RUN_DEFAULT);

    struct gw_gateway_stats st;
    gw_gateway_stats(b.gw, &st);
    long rss_end = bench_current_rss_kb();
    long private_end = bench_private_kb();
    struct mallinfo2 mi = mallinfo2();
    gw_gateway_free(b.gw);
    uv_loop_close(b.loop);
    bench_remove_tree(dir);

    printf("| sensors | readings | handed over (s) | all in the hub (s) | readings/s end to end "
           "| alarm transitions | peak RSS (kB) | RSS before start (kB) | RSS at end (kB) | "
           "private before "
           "start (kB) | private at end (kB) | heap in use at end (kB) |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    printf("| %d | %ld | %.2f | %.2f | %.0f | %llu | %ld | %ld | %ld | %ld | %ld | %zu |\n",
           sensors, readings, b.dispatched, b.elapsed, (double)readings / b.elapsed,
           (unsigned long long)st.transitions, bench_peak_rss_kb(), rss_before, rss_end,
           private_before, private_end, mi.uordblks / 1024);
    return 0;
}
