/*
 * LoRa benchmark (issue #4): uplinks per second through GWMP parse, MIC
 * check, decryption, codec and rules to the hub, with 1,000 ABP devices, and
 * the peak RSS. One run prints one table row; scripts/bench/lora runs every
 * codec and path and prints the table. Not a test.
 *
 *   gw-bench-lora --codec layout|cayenne_lpp|js --path pure|e2e [--forwarders 1|2]
 *                 [--devices 1000] [--uplinks N] [--hub-port P] [--js FILE] [--header]
 *
 * Uplinks go round the devices (one per device per round, FCnt = round + 1),
 * each datagram one rxpk; with 2 forwarders every uplink comes in twice (two
 * gateway EUIs, different RSSI) and is deduplicated into one reading.
 *
 * pure: the datagrams of a round are built beforehand (lw_build_uplink and
 *   gwmp_build_push_data, not timed), then fed to lora_ingest_datagram and
 *   lora_ingest_flush on virtual time (1 ms per uplink), as the driver does
 *   after each datagram; readings are counted and checked. One thread, no
 *   I/O: the ceiling of the LoRa path itself.
 * e2e: the real gateway in this process (gw_gateway_new with its drivers: the
 *   LoRa driver on a loopback UDP socket, FCnt persistence, registry, rules,
 *   SQLite outbox with group commit, hub sink to a real mosquitto) gets the
 *   datagrams from a child process over UDP. The child keeps at most WINDOW
 *   datagrams unacknowledged (PUSH_ACK), as the kernel would drop the excess
 *   of a blind burst. Timed from the first datagram until the hub has
 *   acknowledged (PUBACK) every record, so it includes the dedup_ms (200 ms)
 *   wait of the last frames. Peak RSS is the gateway process's alone: the
 *   sender and its pre-built datagrams live in the child.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "bench_common.h"
#include "config.h"
#include "gateway.h"
#include "log.h"
#include "lora/gwmp.h"
#include "lora/lora_ingest.h"
#include "lora/lorawan.h"

#define T0_MS 1700000000000LL /* virtual Unix ms of the pure path */
#define DEV_ADDR_BASE 0x26000000u
#define EUI_BASE 0xAA555A0000000000ULL
#define MAX_DATAGRAM 512 /* one rxpk of a 10-byte payload is ~330 bytes */
#define WINDOW 128       /* datagrams in flight on the e2e path */
#define POINTS_PER_UPLINK 3
#define STALL_S 20.0 /* e2e: no reading for this long is a failure, not a slow run */

enum codec { CODEC_LAYOUT, CODEC_CAYENNE, CODEC_JS };
static const char *const codec_names[] = {"layout", "cayenne_lpp", "js"};

struct opts {
    enum codec codec;
    bool e2e;
    int forwarders;
    int devices;
    long uplinks;
    int hub_port;
    const char *js;
};

/* ---- devices and frames ---- */

static void device_keys(int device, uint8_t nwk[LW_KEY_LEN], uint8_t app[LW_KEY_LEN])
{
    for (int j = 0; j < LW_KEY_LEN; j++) {
        nwk[j] = (uint8_t)(device * 31 + j * 17 + 1);
        app[j] = (uint8_t)(device * 57 + j * 13 + 7);
    }
}

static void hex(const uint8_t *b, int n, char *out)
{
    for (int i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02X", b[i]);
    }
}

/* The same reading in each codec's format: smoke, battery %, temperature in 0.1 C. */
static size_t payload(enum codec codec, int device, long round, uint8_t *out)
{
    /* Every 97th round each detector sees smoke once, so alarms raise and clear; the
     * battery drains slowly, so health is republished now and then, as in the field. */
    uint8_t smoke = round % 97 == 5;
    uint8_t battery = (uint8_t)(100 - (round / 50) % 80);
    int16_t tenths = (int16_t)(210 + device % 10 + round % 7);
    if (codec == CODEC_CAYENNE) {
        const uint8_t lpp[] = {
            1, 0, smoke, 2, 120, battery, 3, 103, (uint8_t)(tenths >> 8), (uint8_t)tenths};
        memcpy(out, lpp, sizeof(lpp));
        return sizeof(lpp);
    }
    const uint8_t layout[] = {smoke, battery, (uint8_t)(tenths >> 8), (uint8_t)tenths};
    memcpy(out, layout, sizeof(layout));
    return sizeof(layout);
}

/* The datagram by which forwarder `fwd` passes on the uplink of `device` in `round`. */
static int build_datagram(const struct opts *o, int device, long round, int fwd, uint8_t *out)
{
    uint8_t nwk[LW_KEY_LEN], app[LW_KEY_LEN], plain[16];
    device_keys(device, nwk, app);
    size_t n = payload(o->codec, device, round, plain);
    struct gwmp_rxpk rx = {.has_time = true,
                           .tmst = (uint32_t)(round * 1000 + device),
                           .freq = 486.3,
                           .stat = 1,
                           .rssi = -90 - device % 20 + 5 * fwd,
                           .lsnr = 7.5 - fwd,
                           .has_lsnr = true,
                           .valid = true};
    snprintf(rx.time, sizeof(rx.time), "2023-11-14T22:13:20.%06dZ", device);
    snprintf(rx.modu, sizeof(rx.modu), "LORA");
    snprintf(rx.datr, sizeof(rx.datr), "SF7BW125");
    snprintf(rx.codr, sizeof(rx.codr), "4/5");
    int len = lw_build_uplink(rx.data, sizeof(rx.data), false, DEV_ADDR_BASE + (uint32_t)device,
                              (uint32_t)round + 1, 0, NULL, 0, 1, plain, n, nwk, app);
    if (len < 0) {
        return -1;
    }
    rx.size = (size_t)len;
    return gwmp_build_push_data(out, MAX_DATAGRAM, 2, (uint16_t)(round * o->devices + device),
                                EUI_BASE + (uint64_t)fwd, &rx, 1);
}

/* ---- config ---- */

static int write_config(const struct opts *o, const char *dir, int lora_port)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/bench.cfg", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    fprintf(f,
            "site = { district = \"bench\"; school = \"s1\"; name = \"Bench\"; timezone = "
            "\"UTC\"; language = \"en\"; };\n"
            "state_dir = \"%s/state\";\n"
            "hub = { host = \"127.0.0.1\"; port = %d; topic_prefix = \"campus\"; };\n"
            "lora = { listen = \"127.0.0.1:%d\"; dedup_ms = 200; forwarder_offline_s = 120; };\n"
            "profiles = {\n"
            "  smoke_layout = { codec = \"layout\"; fields = (\n"
            "      { name = \"smoke\"; byte = 0; bit = 0; type = \"bool\"; },\n"
            "      { name = \"battery\"; byte = 1; type = \"u8\"; unit = \"%%\"; },\n"
            "      { name = \"temperature\"; byte = 2; type = \"s16be\"; scale = 0.1; unit = "
            "\"C\"; } ); };\n"
            "  smoke_lpp = { codec = \"cayenne_lpp\"; };\n",
            dir, o->hub_port, lora_port);
    if (o->codec == CODEC_JS) {
        fprintf(f, "  smoke_js = { codec = \"js\"; script = \"%s\"; };\n", o->js);
    }
    /* Cayenne LPP names its values <type>_<channel>: the rules follow. */
    const char *profile = o->codec == CODEC_LAYOUT    ? "smoke_layout"
                          : o->codec == CODEC_CAYENNE ? "smoke_lpp"
                                                      : "smoke_js";
    bool lpp = o->codec == CODEC_CAYENNE;
    fprintf(f, "};\nsensors = (\n");
    for (int i = 0; i < o->devices; i++) {
        uint8_t nwk[LW_KEY_LEN], app[LW_KEY_LEN];
        char nwk_hex[33], app_hex[33];
        device_keys(i, nwk, app);
        hex(nwk, LW_KEY_LEN, nwk_hex);
        hex(app, LW_KEY_LEN, app_hex);
        fprintf(f,
                "  { id = \"L-%04d\"; kind = \"smoke\"; profile = \"%s\"; expect_every_s = 60;\n"
                "    location = { building = \"A\"; floor = \"%d\"; zone = \"z%d\"; };\n"
                "    lora = { dev_addr = \"%08" PRIX32 "\"; nwk_s_key = \"%s\"; app_s_key = "
                "\"%s\"; }; }%s\n",
                i, profile, i % 6, i, DEV_ADDR_BASE + (uint32_t)i, nwk_hex, app_hex,
                i + 1 < o->devices ? "," : "");
    }
    fprintf(f,
            ");\nrules = (\n"
            "  { name = \"smoke\"; kind = \"smoke\"; point = \"%s\"; equals = %s; class = "
            "\"alarm\"; },\n"
            "  { name = \"heat\"; kind = \"smoke\"; point = \"%s\"; above = 57.0; deadband = 2.0; "
            "class = \"alarm\"; },\n"
            "  { name = \"battery low\"; kind = \"smoke\"; point = \"%s\"; below = 20.0; "
            "deadband = 5.0; class = \"trouble\"; },\n"
            "  { name = \"sensor offline\"; offline_after = 3; class = \"trouble\"; }\n"
            ");\n",
            lpp ? "digital_in_1" : "smoke", lpp ? "1" : "true",
            lpp ? "temperature_3" : "temperature", lpp ? "percentage_2" : "battery");
    if (fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

/* A free UDP port on loopback, for the gateway's GWMP server. */
static int free_udp_port(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &alen) == 0) {
        port = ntohs(a.sin_port);
    }
    if (s >= 0) {
        close(s);
    }
    return port;
}

/* ---- pure path ---- */

struct counts {
    long readings;
    long points;
    long merged; /* readings heard by more than one forwarder */
};

static void on_reading(void *ctx, const struct gw_reading *r)
{
    struct counts *c = ctx;
    c->readings++;
    c->points += r->npoints;
    c->merged += r->forwarders > 1;
}

static int run_pure(const struct gw_config *cfg, const struct opts *o, double *seconds)
{
    char err[256];
    struct lora_ingest *ing = lora_ingest_new(cfg, err, sizeof(err));
    if (!ing) {
        fprintf(stderr, "lora_ingest_new: %s\n", err);
        return -1;
    }
    struct counts c = {0};
    struct lora_ingest_callbacks cb = {.reading = on_reading, .ctx = &c};
    lora_ingest_set_callbacks(ing, &cb);
    size_t per_round = (size_t)o->devices * (size_t)o->forwarders;
    uint8_t *buf = malloc(per_round * MAX_DATAGRAM);
    int *len = malloc(per_round * sizeof(int));
    if (!buf || !len) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    int64_t now = T0_MS;
    double elapsed = 0;
    long done = 0;
    for (long round = 0; done < o->uplinks; round++) {
        int n = (int)(o->uplinks - done < o->devices ? o->uplinks - done : o->devices);
        for (int d = 0; d < n; d++) {
            for (int fw = 0; fw < o->forwarders; fw++) {
                size_t k = (size_t)d * (size_t)o->forwarders + (size_t)fw;
                len[k] = build_datagram(o, d, round, fw, buf + k * MAX_DATAGRAM);
                if (len[k] < 0) {
                    fprintf(stderr, "cannot build a datagram\n");
                    return -1;
                }
            }
        }
        double t = bench_now_s();
        for (int d = 0; d < n; d++) {
            for (int fw = 0; fw < o->forwarders; fw++) {
                size_t k = (size_t)d * (size_t)o->forwarders + (size_t)fw;
                uint8_t ack[4];
                int fi;
                lora_ingest_datagram(ing, buf + k * MAX_DATAGRAM, (size_t)len[k], now, ack, &fi);
                lora_ingest_flush(ing, now, false);
            }
            now++;
        }
        elapsed += bench_now_s() - t;
        done += n;
    }
    double t = bench_now_s();
    lora_ingest_flush(ing, now + 1000, true);
    elapsed += bench_now_s() - t;

    const struct lora_counters *lc = lora_ingest_counters(ing);
    int rc = 0;
    long want_merged = o->forwarders > 1 ? o->uplinks : 0;
    if (c.readings != o->uplinks || c.points != o->uplinks * POINTS_PER_UPLINK ||
        c.merged != want_merged || lc->duplicates != (uint64_t)(o->uplinks * (o->forwarders - 1))) {
        fprintf(stderr,
                "pure: expected %ld readings of %d points (%ld merged), got %ld readings, %ld "
                "points, %ld merged, %" PRIu64 " duplicates\n",
                o->uplinks, POINTS_PER_UPLINK, want_merged, c.readings, c.points, c.merged,
                lc->duplicates);
        rc = -1;
    }
    free(buf);
    free(len);
    lora_ingest_free(ing);
    *seconds = elapsed;
    return rc;
}

/* ---- end to end ---- */

/* The forwarders, in a child process: build everything, say ready, wait for go, send. */
static int sender(const struct opts *o, int port, int ready_fd, int go_fd)
{
    long total = o->uplinks * o->forwarders;
    uint8_t *buf = malloc((size_t)total * MAX_DATAGRAM);
    int *len = malloc((size_t)total * sizeof(int));
    if (!buf || !len) {
        fprintf(stderr, "sender: out of memory\n");
        return 1;
    }
    for (long u = 0; u < o->uplinks; u++) {
        for (int fw = 0; fw < o->forwarders; fw++) {
            long k = u * o->forwarders + fw;
            len[k] = build_datagram(o, (int)(u % o->devices), u / o->devices, fw,
                                    buf + k * MAX_DATAGRAM);
            if (len[k] < 0) {
                fprintf(stderr, "sender: cannot build a datagram\n");
                return 1;
            }
        }
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 10};
    /* Each queued 4-byte ACK costs the receive buffer ~1 KB: room for a whole window. */
    int rcvbuf = WINDOW * 4096;
    if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof(to)) != 0 ||
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0) {
        perror("sender: socket");
        return 1;
    }
    char c = 'R';
    if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1) {
        return 1; /* the parent gave up */
    }
    long sent = 0, acked = 0;
    while (acked < total) {
        while (sent < total && sent - acked < WINDOW) {
            if (send(s, buf + sent * MAX_DATAGRAM, (size_t)len[sent], 0) != len[sent]) {
                perror("sender: send");
                return 1;
            }
            sent++;
        }
        uint8_t ack[16];
        ssize_t n = recv(s, ack, sizeof(ack), 0);
        if (n < 0) {
            fprintf(stderr, "sender: no PUSH_ACK for 10 s after %ld of %ld datagrams: %s\n", acked,
                    total, strerror(errno));
            return 1;
        }
        if (n == 4 && ack[3] == GWMP_PUSH_ACK) {
            acked++;
        }
    }
    return 0;
}

struct e2e {
    uv_loop_t *loop;
    struct gw_gateway *gw;
    uv_timer_t timer;
    pid_t child;
    int go_fd;
    bool running;
    long expected;
    double t0, elapsed;
    double cpu0, cpu; /* this process's CPU seconds at the start, and used until the end */
    uint64_t last_readings;
    double last_progress;
    int failed;
};

static void finish(struct e2e *b, int failed)
{
    b->failed = failed;
    uv_timer_stop(&b->timer);
    uv_close((uv_handle_t *)&b->timer, NULL);
    gw_gateway_stop(b->gw, NULL, NULL);
}

static void on_check(uv_timer_t *t)
{
    struct e2e *b = t->data;
    double now = bench_now_s();
    if (!b->running) {
        if (!gw_gateway_hub_connected(b->gw)) {
            if (now - b->last_progress > STALL_S) {
                fprintf(stderr, "e2e: the gateway did not connect to the hub\n");
                finish(b, 1);
            }
            return;
        }
        char c = 'G';
        if (write(b->go_fd, &c, 1) != 1) {
            perror("e2e: go");
            finish(b, 1);
            return;
        }
        b->running = true;
        b->t0 = b->last_progress = now;
        b->cpu0 = bench_cpu_s();
        uv_timer_start(t, on_check, 5, 5);
        return;
    }
    struct gw_gateway_stats st;
    gw_gateway_stats(b->gw, &st);
    if (st.readings >= (uint64_t)b->expected && gw_gateway_sink_lag(b->gw, "hub") == 0) {
        b->elapsed = now - b->t0;
        b->cpu = bench_cpu_s() - b->cpu0;
        finish(b, 0);
        return;
    }
    if (st.readings != b->last_readings) {
        b->last_readings = st.readings;
        b->last_progress = now;
    }
    int status;
    if (b->child > 0 && waitpid(b->child, &status, WNOHANG) == b->child) {
        b->child = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "e2e: the sender failed\n");
            finish(b, 1);
            return;
        }
    }
    if (now - b->last_progress > STALL_S) {
        fprintf(stderr, "e2e: stalled at %" PRIu64 " of %ld readings, hub lag %" PRIu64 "\n",
                st.readings, b->expected, gw_gateway_sink_lag(b->gw, "hub"));
        finish(b, 1);
    }
}

static int run_e2e(struct gw_config *cfg, const struct opts *o, int port, double *seconds,
                   double *cpu, uint64_t *transitions)
{
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) {
        perror("pipe");
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        _exit(sender(o, port, ready[1], go[0]));
    }
    close(ready[1]);
    close(go[0]);
    char c;
    if (read(ready[0], &c, 1) != 1) {
        fprintf(stderr, "e2e: the sender could not prepare its datagrams\n");
        waitpid(pid, NULL, 0);
        return -1;
    }
    struct e2e b = {
        .loop = uv_default_loop(), .child = pid, .go_fd = go[1], .expected = o->uplinks};
    b.gw = gw_gateway_new(b.loop, cfg, true);
    if (!b.gw || gw_gateway_start(b.gw) != 0) {
        fprintf(stderr, "e2e: the gateway did not start\n");
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return -1;
    }
    uv_timer_init(b.loop, &b.timer);
    b.timer.data = &b;
    b.last_progress = bench_now_s();
    uv_timer_start(&b.timer, on_check, 50, 50);
    uv_run(b.loop, UV_RUN_DEFAULT);
    struct gw_gateway_stats st;
    gw_gateway_stats(b.gw, &st);
    *transitions = st.transitions;
    if (!b.failed && st.readings != (uint64_t)o->uplinks) {
        /* More readings than uplinks: copies that were not merged into one. */
        fprintf(stderr, "e2e: %" PRIu64 " readings for %ld uplinks\n", st.readings, o->uplinks);
        b.failed = 1;
    }
    gw_gateway_free(b.gw);
    uv_loop_close(b.loop);
    close(go[1]);
    close(ready[0]);
    if (b.child > 0) {
        int status;
        if (b.failed) {
            kill(b.child, SIGTERM);
        }
        waitpid(b.child, &status, 0);
        if (!b.failed && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
            fprintf(stderr, "e2e: the sender failed\n");
            b.failed = 1;
        }
    }
    *seconds = b.elapsed;
    *cpu = b.cpu;
    return b.failed ? -1 : 0;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr, "usage: gw-bench-lora --codec layout|cayenne_lpp|js --path pure|e2e "
                    "[--forwarders N] [--devices N] [--uplinks N] [--hub-port P] [--js FILE] "
                    "[--header]\n");
}

static void print_header(void)
{
    printf("| codec | path | forwarders | uplinks | datagrams | seconds | uplinks/s | CPU of the "
           "process (%% of a core) | alarm transitions | peak RSS (kB) |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

int main(int argc, char **argv)
{
    struct opts o = {.forwarders = 1, .devices = 1000, .uplinks = 200000, .hub_port = 1883};
    bool codec_given = false, path_given = false;
    static const struct option longopts[] = {{"codec", required_argument, NULL, 'c'},
                                             {"path", required_argument, NULL, 'P'},
                                             {"forwarders", required_argument, NULL, 'f'},
                                             {"devices", required_argument, NULL, 'd'},
                                             {"uplinks", required_argument, NULL, 'n'},
                                             {"hub-port", required_argument, NULL, 'p'},
                                             {"js", required_argument, NULL, 'j'},
                                             {"header", no_argument, NULL, 'H'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            codec_given = true;
            if (strcmp(optarg, "layout") == 0) {
                o.codec = CODEC_LAYOUT;
            } else if (strcmp(optarg, "cayenne_lpp") == 0) {
                o.codec = CODEC_CAYENNE;
            } else if (strcmp(optarg, "js") == 0) {
                o.codec = CODEC_JS;
            } else {
                usage();
                return 2;
            }
            break;
        case 'P':
            path_given = true;
            if (strcmp(optarg, "pure") != 0 && strcmp(optarg, "e2e") != 0) {
                usage();
                return 2;
            }
            o.e2e = strcmp(optarg, "e2e") == 0;
            break;
        case 'f':
            o.forwarders = atoi(optarg);
            break;
        case 'd':
            o.devices = atoi(optarg);
            break;
        case 'n':
            o.uplinks = atol(optarg);
            break;
        case 'p':
            o.hub_port = atoi(optarg);
            break;
        case 'j':
            o.js = optarg;
            break;
        case 'H':
            print_header();
            return 0;
        default:
            usage();
            return 2;
        }
    }
    /* FCnt = round + 1 must stay within one 16-bit roll-over of the devices' counters. */
    if (!codec_given || !path_given || o.forwarders < 1 || o.forwarders > 8 || o.devices < 1 ||
        o.devices > 65535 || o.uplinks < 1 || o.uplinks / o.devices > 60000 ||
        (o.codec == CODEC_JS && (!o.js || o.js[0] != '/'))) {
        fprintf(stderr, "bad arguments (js needs --js with an absolute path)\n");
        usage();
        return 2;
    }
    gw_log_set_level(GW_LOG_ERROR);
    setenv("TZ", "UTC", 1);
    tzset();
    char dir[] = "/tmp/gw-bench-lora-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    int port = o.e2e ? free_udp_port() : 1700;
    char path[512];
    snprintf(path, sizeof(path), "%s/bench.cfg", dir);
    struct gw_config *cfg = NULL;
    if (port > 0 && write_config(&o, dir, port) == 0) {
        cfg = gw_config_load(path, stderr);
    }
    double seconds = 0, cpu = 0;
    uint64_t transitions = 0;
    int rc = -1;
    if (cfg && !o.e2e) {
        rc = run_pure(cfg, &o, &seconds);
        cpu = seconds; /* one thread, busy throughout */
        gw_config_free(cfg);
    } else if (cfg) {
        rc = run_e2e(cfg, &o, port, &seconds, &cpu, &transitions); /* the gateway owns cfg */
    }
    bench_remove_tree(dir);
    if (rc != 0) {
        return 1;
    }
    char alarms[32] = "n/a (no rules)";
    if (o.e2e) {
        snprintf(alarms, sizeof(alarms), "%" PRIu64, transitions);
    }
    printf("| %s | %s | %d | %ld | %ld | %.2f | %.0f | %.0f | %s | %ld |\n", codec_names[o.codec],
           o.e2e ? "end to end" : "pure ingest", o.forwarders, o.uplinks, o.uplinks * o.forwarders,
           seconds, (double)o.uplinks / seconds, 100 * cpu / seconds, alarms, bench_peak_rss_kb());
    return 0;
}
