/*
 * campusgw-sim: a simulated school for the demo, the integration tests and
 * the benchmarks. This is the I/O shell: one libmodbus server context, one
 * poll() loop over the listening socket, every Modbus client and one UDP
 * socket per simulated LoRa packet forwarder, one mapping per unit id, and
 * the scenario's script applied between requests. The scenario itself
 * (devices, script, faults, which LoRa frames to send when) lives in
 * scenario.c and lora_sim.c; see docs/simulator.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <modbus/modbus.h>

#include "log.h"
#include "sim/scenario.h"

#define MOD "sim"
#define TICK_MS 100         /* longest wait between two looks at the script */
#define MAX_CLIENTS 256     /* beyond this a new connection is closed at once */
#define ACK_TIMEOUT_MS 1000 /* wall time a forwarder waits for a PUSH_ACK / PULL_ACK */
#define LORA_QUEUE 64       /* copies waiting for their forwarder's backhaul delay */
#define DATAGRAM_MAX 1024   /* one rxpk of a 255-byte frame is ~600 bytes of JSON */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct stats {
    uint64_t requests, replies, silent, unknown_unit, exceptions, garbage, bad_frames, closed;
};

/* Bytes of a request received so far; a request never exceeds one TCP ADU. */
struct client {
    uint8_t buf[MODBUS_TCP_MAX_ADU_LENGTH];
    size_t len;
};

/* One simulated packet forwarder: its own socket, counters and token stream. */
struct lora_fwd {
    int fd;
    uint32_t tmst_offset; /* each concentrator's µs counter started at its own moment */
    struct gw_sim_acks acks;
    uint64_t push_sent, pull_sent, stat_sent, pull_resp, send_errors, bad_datagrams;
    /* since the last stat report */
    uint32_t rx, dwn;
    uint64_t acked_mark, missing_mark;
    struct gw_complaint no_ack, send_fail;
};

/* A copy of a frame due on its forwarder's socket a few ms after the first one. */
struct lora_pending {
    int64_t due_wall_ms;
    int fwd;
    struct gwmp_rxpk rxpk;
};

struct lora {
    bool on;
    char *host;
    int port;
    struct sockaddr_in to;
    int nfwd;
    struct lora_fwd fwd[GW_SIM_MAX_FORWARDERS];
    struct lora_pending queue[LORA_QUEUE];
    int nqueue;
    uint64_t rng; /* tokens */
    uint64_t uplinks, replays, changes;
};

struct sim {
    struct gw_scenario *sc;
    modbus_t *ctx;
    struct pollfd fds[MAX_CLIENTS + 1]; /* [0] is the listening socket */
    struct client clients[MAX_CLIENTS + 1];
    int nfds;
    double speed;
    struct timespec start;
    bool verbose;
    struct stats st;
    struct gw_complaint accept_fail;
    struct lora lora;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: campusgw-sim -c SCENARIO.cfg [--listen HOST:PORT] [--lora-forward HOST:PORT]\n"
            "                    [--speed N] [--seed N] [-v]\n"
            "       campusgw-sim --check -c SCENARIO.cfg\n"
            "\n"
            "Simulates a school's Modbus TCP devices (hydrant pressure transmitters, exit\n"
            "doors, raw register devices) and LoRaWAN devices (smoke detectors, door\n"
            "sensors) behind Semtech UDP packet forwarders, and plays the scenario's script\n"
            "of changes and faults. See docs/simulator.md for the scenario format.\n"
            "\n"
            "  -c, --config FILE   scenario file (libconfig syntax)\n"
            "  -l, --listen H:P    listen here instead of the scenario's modbus.listen\n"
            "                      (IPv4 literal; port 0 picks a free port)\n"
            "      --lora-forward H:P  send the LoRa forwarders' datagrams here instead of\n"
            "                      the scenario's lora.forward_to (IPv4 literal)\n"
            "  -s, --speed N       scenario time runs N times faster (e.g. 10 for tests)\n"
            "      --seed N        seed of the pressure noise (default: the scenario's, or 1)\n"
            "      --check         validate the scenario, print a summary, exit\n"
            "  -v, --verbose       print every request and how it was answered, every LoRa\n"
            "                      uplink and every datagram the forwarders receive\n"
            "  -h, --help          this text\n"
            "      --version       print the version\n"
            "\n"
            "Prints 'sim: modbus tcp listening on HOST:PORT' (and, with LoRa devices,\n"
            "'sim: lora forwarding to HOST:PORT from N forwarders') when ready and one line\n"
            "per script event. SIGTERM or SIGINT stops it (exit 0).\n");
}

static int64_t elapsed_ms(const struct sim *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ns =
        (double)(now.tv_sec - s->start.tv_sec) * 1e9 + (double)(now.tv_nsec - s->start.tv_nsec);
    return (int64_t)(ns * s->speed / 1e6);
}

/* Wall-clock ms since start: backhaul delays and ack timeouts are not scenario time. */
static int64_t wall_ms(const struct sim *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - s->start.tv_sec) * 1000 +
           (now.tv_nsec - s->start.tv_nsec) / 1000000;
}

static void print_line(void *ud, const char *line)
{
    (void)ud;
    printf("sim: %s\n", line);
}

static void print_summary(const struct gw_scenario *sc)
{
    printf("sim: scenario %s%s%s%s: %d devices", sc->path, sc->name ? " (" : "",
           sc->name ? sc->name : "", sc->name ? ")" : "", sc->ndevices);
    if (sc->lora.ndevices > 0) {
        printf(" (%d LoRa)", sc->lora.ndevices);
    }
    printf(", %d script events", sc->nevents);
    if (sc->repeat_ms > 0) {
        printf(", repeats every %.3g s", (double)sc->repeat_ms / 1000.0);
    }
    printf("\n");
    if (sc->lora.present) {
        printf("sim:   lora: %d devices, GWMP v%d to %s:%d, stat every %.3g s, keepalive %.3g s\n",
               sc->lora.ndevices, sc->lora.version, sc->lora.forward_host, sc->lora.forward_port,
               (double)sc->lora.stat_ms / 1000.0, (double)sc->lora.keepalive_ms / 1000.0);
        for (int i = 0; i < sc->lora.nforwarders; i++) {
            const struct gw_sim_forwarder *f = &sc->lora.fwd[i];
            printf("sim:   forwarder %d eui %016llX rssi_offset=%g snr_offset=%g\n", i,
                   (unsigned long long)f->eui, f->rssi_offset, f->snr_offset);
        }
    }
    for (int i = 0; i < sc->ndevices; i++) {
        const struct gw_sim_device *d = &sc->devices[i];
        if (gw_sim_type_is_lora(d->type)) {
            const struct gw_sim_lora_dev *l = &d->lora;
            printf("sim:   lora %08X %-12s %s every %.3g s fport %d SF%d", (unsigned)l->dev_addr,
                   gw_sim_type_name(d->type), d->name, (double)l->every_ms / 1000.0, l->fport,
                   l->sf);
            if (d->type == GW_SIM_SMOKE) {
                printf(" smoke=%s battery=%d%%", d->init.smoke ? "true" : "false", d->init.battery);
            } else if (d->type == GW_SIM_DOOR_LORA) {
                printf(" state=%s battery=%d%%", gw_sim_door_name(d->init.door), d->init.battery);
            } else {
                printf(" payload=%zu bytes", d->init.payload_len);
            }
            printf(" heard_by=");
            for (int f = 0, first = 1; f < sc->lora.nforwarders; f++) {
                if (l->heard_by & (1u << f)) {
                    printf("%s%d", first ? "" : ",", f);
                    first = 0;
                }
            }
            if (d->init.fault != GW_SIM_FAULT_NONE) {
                printf(" fault=%s", gw_sim_fault_name(d->init.fault));
            }
            printf("\n");
            continue;
        }
        printf("sim:   unit %3d %-12s %s", d->unit_id, gw_sim_type_name(d->type), d->name);
        if (d->type == GW_SIM_HYDRANT) {
            printf(" pressure=%.2f MPa", d->init.pressure);
        } else if (d->type == GW_SIM_DOOR) {
            printf(" state=%s battery=%d%%", gw_sim_door_name(d->init.door), d->init.battery);
        } else {
            printf(" holding=%d input=%d coils=%d discrete=%d", d->tables.n_holding,
                   d->tables.n_input, d->tables.n_coils, d->tables.n_discrete);
        }
        if (d->init.fault != GW_SIM_FAULT_NONE) {
            printf(" fault=%s", gw_sim_fault_name(d->init.fault));
        }
        printf("\n");
    }
}

static void close_client(struct sim *s, int i)
{
    close(s->fds[i].fd);
    s->st.closed++;
    /* The context still names this socket; make sure nothing closes it twice. */
    modbus_set_socket(s->ctx, -1);
    s->nfds--;
    s->fds[i] = s->fds[s->nfds];
    s->clients[i] = s->clients[s->nfds];
}

static void accept_client(struct sim *s)
{
    int server = s->fds[0].fd;
    int fd = modbus_tcp_accept(s->ctx, &server);
    if (fd < 0) {
        if (gw_complain(&s->accept_fail, elapsed_ms(s))) {
            gw_warn(MOD, "accept failed: %s", modbus_strerror(errno));
        }
        return;
    }
    if (gw_release(&s->accept_fail)) {
        gw_info(MOD, "accepting connections again");
    }
    if (s->nfds > MAX_CLIENTS) {
        gw_warn(MOD, "too many clients (%d), closing the new one", MAX_CLIENTS);
        close(fd);
        return;
    }
    /* Non-blocking: a client that never reads its replies cannot stall the others. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        gw_warn(MOD, "fcntl O_NONBLOCK: %s", strerror(errno));
        close(fd);
        return;
    }
    s->fds[s->nfds] = (struct pollfd){.fd = fd, .events = POLLIN};
    s->clients[s->nfds].len = 0;
    s->nfds++;
}

static const char *action_name(enum gw_sim_action a)
{
    switch (a) {
    case GW_SIM_REPLY:
        return "reply";
    case GW_SIM_SILENT:
        return "silent";
    case GW_SIM_EXCEPTION:
        return "exception";
    case GW_SIM_GARBAGE:
        return "garbage";
    }
    return "?";
}

/*
 * Answer one complete request frame. Returns 1 when libmodbus may have flushed
 * the socket (it does after some exceptions), 0 when done, -1 to close.
 */
static int serve_request(struct sim *s, int fd, const uint8_t *frame, int len)
{
    /* modbus_reply may read a little past a short request: give it a zeroed full ADU. */
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH] = {0};
    memcpy(query, frame, (size_t)len);
    int hl = modbus_get_header_length(s->ctx); /* 7: MBAP header up to the unit id */
    int unit = query[hl - 1];
    int function = query[hl];
    s->st.requests++;

    /* Apply what is due first, so a request never sees a stale state. */
    gw_scenario_advance(s->sc, elapsed_ms(s), print_line, NULL);
    struct gw_sim_device *dev = gw_scenario_device(s->sc, unit);
    int exception;
    enum gw_sim_action a = gw_scenario_request(s->sc, dev, function, &exception);
    if (a == GW_SIM_REPLY && !gw_sim_pdu_length_ok(query + hl, (size_t)(len - hl))) {
        a = GW_SIM_EXCEPTION;
        exception = MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
        s->st.bad_frames++;
    }
    modbus_set_socket(s->ctx, fd);
    int rc = 0;
    switch (a) {
    case GW_SIM_REPLY: {
        struct gw_sim_tables *t = &dev->tables;
        modbus_mapping_t m = {
            .nb_bits = t->n_coils,
            .tab_bits = t->coils,
            .nb_input_bits = t->n_discrete,
            .tab_input_bits = t->discrete,
            .nb_input_registers = t->n_input,
            .tab_input_registers = t->input,
            .nb_registers = t->n_holding,
            .tab_registers = t->holding,
        };
        rc = modbus_reply(s->ctx, query, len, &m);
        s->st.replies++;
        /* Only an exception reply is 9 bytes; libmodbus flushes the socket after some. */
        if (rc == hl + 2) {
            rc = 1;
        }
        break;
    }
    case GW_SIM_SILENT:
        if (dev == NULL) {
            s->st.unknown_unit++;
        } else {
            s->st.silent++;
        }
        break;
    case GW_SIM_EXCEPTION:
        rc = modbus_reply_exception(s->ctx, query, (unsigned)exception);
        s->st.exceptions++;
        break;
    case GW_SIM_GARBAGE: {
        uint8_t out[9];
        size_t n = gw_scenario_garbage(s->sc, query, out);
        rc = send(fd, out, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
        s->st.garbage++;
        break;
    }
    }
    if (s->verbose) {
        int addr = len >= hl + 5 ? (query[hl + 1] << 8 | query[hl + 2]) : -1;
        int count = len >= hl + 5 ? (query[hl + 3] << 8 | query[hl + 4]) : -1;
        printf("sim: t=%.3fs request unit=%d fc=%d addr=%d n=%d %s -> %s%s\n",
               (double)elapsed_ms(s) / 1000.0, unit, function, addr, count,
               dev != NULL ? dev->name : "(no such unit)", action_name(a),
               rc < 0 ? " (send failed)" : "");
    }
    return rc < 0 ? -1 : rc > 0 ? 1 : 0;
}

/* Read what client i sent and answer every complete request. -1: close it. */
static int serve_client(struct sim *s, int i)
{
    struct client *c = &s->clients[i];
    int fd = s->fds[i].fd;
    ssize_t n = recv(fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n == 0) {
        return -1; /* the client closed */
    }
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    }
    c->len += (size_t)n;
    for (;;) {
        int flen = gw_sim_tcp_frame(c->buf, c->len);
        if (flen == 0) {
            return 0;
        }
        if (flen < 0) {
            s->st.bad_frames++;
            if (s->verbose) {
                printf("sim: client fd=%d sent something that is not Modbus TCP, closing\n", fd);
            }
            return -1;
        }
        int rc = serve_request(s, fd, c->buf, flen);
        if (rc < 0) {
            return -1;
        }
        if (rc > 0) {
            c->len = 0; /* libmodbus flushed the socket: whatever followed is gone */
            return 0;
        }
        c->len -= (size_t)flen;
        memmove(c->buf, c->buf + flen, c->len);
    }
}

static int listen_on(struct sim *s, const char *host, int port)
{
    s->ctx = modbus_new_tcp(host, port);
    if (s->ctx == NULL) {
        gw_error(MOD, "modbus_new_tcp %s:%d: %s", host, port, modbus_strerror(errno));
        return -1;
    }
    /* libmodbus sleeps this long before flushing after some exceptions; keep it short. */
    modbus_set_response_timeout(s->ctx, 0, 1000);
    int server = modbus_tcp_listen(s->ctx, 16);
    if (server < 0) {
        gw_error(MOD, "cannot listen on %s:%d: %s", host, port, modbus_strerror(errno));
        return -1;
    }
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    if (getsockname(server, (struct sockaddr *)&sa, &salen) == 0) {
        port = ntohs(sa.sin_port); /* the kernel's choice when asked for port 0 */
    }
    s->fds[0].fd = server;
    s->fds[0].events = POLLIN;
    s->nfds = 1;
    printf("sim: modbus tcp listening on %s:%d\n", host, port);
    return 0;
}

/* ---- LoRa packet forwarders ------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint16_t new_token(struct lora *l)
{
    return (uint16_t)(splitmix(&l->rng) >> 48);
}

static const char *fwd_name(const struct sim *s, int f, char buf[24])
{
    snprintf(buf, 24, "%016llX", (unsigned long long)s->sc->lora.fwd[f].eui);
    return buf;
}

/* One socket per forwarder, connected to forward_to: nothing can go anywhere else. */
static int lora_open(struct sim *s)
{
    struct lora *l = &s->lora;
    memset(&l->to, 0, sizeof(l->to));
    l->to.sin_family = AF_INET;
    l->to.sin_port = htons((uint16_t)l->port);
    if (inet_pton(AF_INET, l->host, &l->to.sin_addr) != 1) {
        gw_error(MOD, "lora forward_to %s is not an IPv4 address", l->host);
        return -1;
    }
    if (getrandom(&l->rng, sizeof(l->rng), GRND_NONBLOCK) != (ssize_t)sizeof(l->rng)) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        l->rng = (uint64_t)t.tv_nsec ^ (uint64_t)t.tv_sec << 20 ^ (uint64_t)getpid() << 40;
    }
    /* Loopback targets get a loopback source; anything else whatever the route picks. */
    bool loopback = (ntohl(l->to.sin_addr.s_addr) >> 24) == 127;
    for (int i = 0; i < s->sc->lora.nforwarders; i++) {
        struct lora_fwd *f = &l->fwd[i];
        f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (f->fd < 0) {
            gw_error(MOD, "lora socket: %s", strerror(errno));
            return -1;
        }
        l->nfwd = i + 1;
        struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = 0};
        me.sin_addr.s_addr = htonl(loopback ? INADDR_LOOPBACK : INADDR_ANY);
        if (bind(f->fd, (struct sockaddr *)&me, sizeof(me)) < 0 ||
            connect(f->fd, (struct sockaddr *)&l->to, sizeof(l->to)) < 0) {
            gw_error(MOD, "lora forwarder %d to %s:%d: %s", i, l->host, l->port, strerror(errno));
            return -1;
        }
        f->tmst_offset = (uint32_t)splitmix(&l->rng);
    }
    return 0;
}

static void lora_send(struct sim *s, int fi, const uint8_t *buf, size_t len, uint8_t identifier,
                      uint16_t token)
{
    struct lora_fwd *f = &s->lora.fwd[fi];
    ssize_t n = send(f->fd, buf, len, 0);
    if (n < 0 && errno == ECONNREFUSED) {
        /*
         * An earlier datagram met a closed port (nobody listens yet): the kernel reports
         * that here instead of sending this one. Try once more; the missing acks tell.
         */
        n = send(f->fd, buf, len, 0);
    }
    int64_t now = wall_ms(s);
    if (n != (ssize_t)len) {
        f->send_errors++;
        char eui[24];
        if (gw_complain(&f->send_fail, now)) {
            gw_warn(MOD, "lora forwarder %s: send to %s:%d failed: %s", fwd_name(s, fi, eui),
                    s->lora.host, s->lora.port, n < 0 ? strerror(errno) : "short write");
        }
        return;
    }
    if (gw_release(&f->send_fail)) {
        char eui[24];
        gw_info(MOD, "lora forwarder %s: sending again", fwd_name(s, fi, eui));
    }
    if (identifier == GWMP_PUSH_DATA) {
        f->push_sent++;
    } else {
        f->pull_sent++;
    }
    gw_sim_acks_sent(&f->acks, identifier, token, now);
}

static void lora_send_rxpk(struct sim *s, int fi, const struct gwmp_rxpk *r)
{
    uint8_t buf[DATAGRAM_MAX];
    uint16_t token = new_token(&s->lora);
    int n = gwmp_build_push_data(buf, sizeof(buf), (uint8_t)s->sc->lora.version, token,
                                 s->sc->lora.fwd[fi].eui, r, 1);
    if (n < 0) {
        gw_error(MOD, "lora: cannot build PUSH_DATA (%zu-byte frame)", r->size);
        return;
    }
    s->lora.fwd[fi].rx++;
    lora_send(s, fi, buf, (size_t)n, GWMP_PUSH_DATA, token);
}

/* Send every queued copy whose delay is over (all of them when flushing at exit). */
static void lora_flush(struct sim *s, bool all)
{
    struct lora *l = &s->lora;
    int64_t now = wall_ms(s);
    int kept = 0;
    for (int i = 0; i < l->nqueue; i++) {
        if (all || l->queue[i].due_wall_ms <= now) {
            lora_send_rxpk(s, l->queue[i].fwd, &l->queue[i].rxpk);
        } else {
            l->queue[kept++] = l->queue[i];
        }
    }
    l->nqueue = kept;
}

static void iso_time(char *buf, size_t size, const struct timespec *t, bool stat_style)
{
    struct tm tm;
    gmtime_r(&t->tv_sec, &tm);
    if (stat_style) { /* lora_pkt_fwd's stat: "2014-01-12 08:59:28 GMT" */
        strftime(buf, size, "%Y-%m-%d %H:%M:%S GMT", &tm);
        return;
    }
    char sec[24];
    strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%.19s.%06uZ", sec, (unsigned)(t->tv_nsec / 1000) % 1000000u);
}

static void lora_uplink(struct sim *s, const struct gw_sim_uplink *up)
{
    struct lora *l = &s->lora;
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    uint64_t us = (uint64_t)mono.tv_sec * 1000000u + (uint64_t)mono.tv_nsec / 1000u;
    char time[40];
    iso_time(time, sizeof(time), &real, false);
    int64_t now = wall_ms(s);
    for (int i = 0; i < up->ncopies; i++) {
        int fi = up->copies[i].forwarder;
        struct gwmp_rxpk r;
        /* Both concentrators heard the same transmission: same instant, own counters. */
        gw_sim_lora_rxpk(up, i, (uint32_t)(us + l->fwd[fi].tmst_offset), time, &r);
        if (up->copies[i].delay_ms == 0 || l->nqueue == LORA_QUEUE) {
            lora_send_rxpk(s, fi, &r);
        } else {
            l->queue[l->nqueue++] = (struct lora_pending){
                .due_wall_ms = now + up->copies[i].delay_ms, .fwd = fi, .rxpk = r};
        }
    }
    l->uplinks++;
    l->replays += up->why == GW_SIM_UP_REPLAY;
    l->changes += up->why == GW_SIM_UP_CHANGE;
    if (!s->verbose) {
        return;
    }
    const struct gw_sim_device *d = &s->sc->devices[up->device];
    printf("sim: t=%.3fs lora %s %s dev_addr=%08X fcnt=%u", (double)elapsed_ms(s) / 1000.0,
           gw_sim_type_name(d->type), d->name, (unsigned)d->lora.dev_addr, (unsigned)up->fcnt);
    if (up->why == GW_SIM_UP_REPLAY) {
        printf(" replay of the last frame (%zu bytes)", up->phy_len);
    } else {
        printf(" fport=%d payload=", d->lora.fport);
        for (size_t i = 0; i < up->payload_len; i++) {
            printf("%02x", up->payload[i]);
        }
    }
    printf(" SF%d %.1f MHz ->", up->sf, up->freq);
    for (int i = 0; i < up->ncopies; i++) {
        printf(" %d(%+.0fms rssi=%.0f snr=%.1f)", up->copies[i].forwarder,
               (double)up->copies[i].delay_ms, up->copies[i].rssi, up->copies[i].snr);
    }
    printf(" (%s%s%s)\n",
           up->why == GW_SIM_UP_PERIODIC ? "periodic"
           : up->why == GW_SIM_UP_CHANGE ? "change"
                                         : "replay",
           up->test ? ", test button" : "", up->bad_mic ? ", bad MIC" : "");
}

static void lora_pull(struct sim *s)
{
    for (int i = 0; i < s->lora.nfwd; i++) {
        uint8_t buf[12];
        uint16_t token = new_token(&s->lora);
        gw_sim_gwmp_pull_data(buf, (uint8_t)s->sc->lora.version, token, s->sc->lora.fwd[i].eui);
        lora_send(s, i, buf, sizeof(buf), GWMP_PULL_DATA, token);
    }
}

static void lora_stat(struct sim *s)
{
    struct timespec real;
    clock_gettime(CLOCK_REALTIME, &real);
    for (int i = 0; i < s->lora.nfwd; i++) {
        struct lora_fwd *f = &s->lora.fwd[i];
        struct gw_sim_fwd_stat st = {.rxnb = f->rx, .rxok = f->rx, .rxfw = f->rx, .dwnb = f->dwn};
        iso_time(st.time, sizeof(st.time), &real, true);
        /*
         * ackr: of the datagrams settled this interval (acknowledged or timed out), the share
         * acknowledged. One still in flight counts in the next interval, not as a loss.
         */
        uint64_t acked = f->acks.push_acked + f->acks.pull_acked - f->acked_mark;
        uint64_t missing = f->acks.missing - f->missing_mark;
        st.ackr = acked + missing == 0 ? 0.0 : 100.0 * (double)acked / (double)(acked + missing);
        f->acked_mark = f->acks.push_acked + f->acks.pull_acked;
        f->missing_mark = f->acks.missing;
        f->rx = 0;
        f->dwn = 0;
        uint8_t buf[DATAGRAM_MAX];
        uint16_t token = new_token(&s->lora);
        int n = gw_sim_gwmp_stat(buf, sizeof(buf), (uint8_t)s->sc->lora.version, token,
                                 s->sc->lora.fwd[i].eui, &st);
        if (n > 0) {
            f->stat_sent++;
            lora_send(s, i, buf, (size_t)n, GWMP_PUSH_DATA, token);
        }
    }
}

/* Everything LoRa that is due: frames, keepalives, stats, delayed copies, ack timeouts. */
static void lora_tick(struct sim *s)
{
    if (!s->lora.on) {
        return;
    }
    int64_t now = elapsed_ms(s);
    struct gw_sim_uplink up;
    while (gw_scenario_lora_next(s->sc, now, &up) > 0) {
        lora_uplink(s, &up);
    }
    if (gw_scenario_lora_pull_due(s->sc, now)) {
        lora_pull(s);
    }
    if (gw_scenario_lora_stat_due(s->sc, now)) {
        lora_stat(s);
    }
    lora_flush(s, false);
    int64_t wall = wall_ms(s);
    for (int i = 0; i < s->lora.nfwd; i++) {
        struct lora_fwd *f = &s->lora.fwd[i];
        int missing = gw_sim_acks_expire(&f->acks, wall, ACK_TIMEOUT_MS);
        if (missing > 0 && gw_complain(&f->no_ack, wall)) {
            char eui[24];
            gw_warn(MOD,
                    "lora forwarder %s: no ack from %s:%d within %d ms (%llu missing so far; is "
                    "the gateway listening?)",
                    fwd_name(s, i, eui), s->lora.host, s->lora.port, ACK_TIMEOUT_MS,
                    (unsigned long long)f->acks.missing);
        }
    }
}

/* Datagrams from the gateway: PUSH_ACK, PULL_ACK, and PULL_RESP (downlinks, not sent). */
static void lora_receive(struct sim *s, int fi)
{
    struct lora_fwd *f = &s->lora.fwd[fi];
    uint8_t buf[2048];
    for (;;) {
        ssize_t n = recv(f->fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == ECONNREFUSED) {
                continue; /* the ICMP of an earlier datagram; the next recv goes on */
            }
            return; /* EAGAIN: drained */
        }
        static struct gwmp_packet pkt; /* ~11 KB: not on the stack */
        char eui[24];
        enum gwmp_error e = gwmp_parse(buf, (size_t)n, &pkt);
        if (e != GWMP_OK) {
            f->bad_datagrams++;
            if (s->verbose) {
                printf("sim: lora forwarder %s: received %zd bytes that are not GWMP (%s)\n",
                       fwd_name(s, fi, eui), n, gwmp_error_name(e));
            }
            continue;
        }
        if (pkt.identifier == GWMP_PULL_RESP) {
            f->pull_resp++;
            f->dwn++;
            uint8_t ack[12];
            if (pkt.version == 2) { /* v2 forwarders confirm every PULL_RESP */
                gw_sim_gwmp_tx_ack(ack, 2, pkt.token, s->sc->lora.fwd[fi].eui);
                if (send(f->fd, ack, sizeof(ack), 0) < 0) {
                    f->send_errors++;
                }
            }
            if (s->verbose) {
                printf("sim: lora forwarder %s: PULL_RESP token=%04x (downlinks are not sent)\n",
                       fwd_name(s, fi, eui), pkt.token);
            }
            continue;
        }
        bool ok = gw_sim_acks_received(&f->acks, pkt.version, (uint8_t)s->sc->lora.version,
                                       pkt.identifier, pkt.token);
        if (ok && gw_release(&f->no_ack)) {
            gw_info(MOD, "lora forwarder %s: acknowledged again", fwd_name(s, fi, eui));
        }
        if (s->verbose && !ok) {
            printf("sim: lora forwarder %s: unexpected datagram v%d id=0x%02x token=%04x\n",
                   fwd_name(s, fi, eui), pkt.version, pkt.identifier, pkt.token);
        }
    }
}

/* Wall ms until scenario time `due` (-1: never), capped at the current wait. */
static int64_t until(const struct sim *s, int64_t due, int64_t now, int64_t wait)
{
    if (due == INT64_MIN) {
        return 0;
    }
    if (due < 0) {
        return wait;
    }
    double w = ceil((double)(due - now) / s->speed);
    return w < (double)wait ? (w < 0 ? 0 : (int64_t)w) : wait;
}

static int poll_timeout_ms(struct sim *s)
{
    int64_t now = elapsed_ms(s);
    int64_t wait = until(s, gw_scenario_next_due_ms(s->sc), now, TICK_MS);
    if (s->lora.on) {
        wait = until(s, gw_scenario_lora_due_ms(s->sc), now, wait);
        wait = until(s, gw_scenario_lora_timer_ms(s->sc), now, wait);
        int64_t wall = wall_ms(s);
        for (int i = 0; i < s->lora.nqueue; i++) {
            int64_t w = s->lora.queue[i].due_wall_ms - wall;
            wait = w < wait ? (w < 0 ? 0 : w) : wait;
        }
    }
    return (int)wait;
}

static void run(struct sim *s)
{
    struct pollfd fds[MAX_CLIENTS + 1 + GW_SIM_MAX_FORWARDERS];
    while (!stop_requested) {
        gw_scenario_advance(s->sc, elapsed_ms(s), print_line, NULL);
        lora_tick(s);
        /* Modbus sockets first, then one per forwarder. */
        int nm = s->nfds;
        memcpy(fds, s->fds, (size_t)nm * sizeof(fds[0]));
        for (int i = 0; i < s->lora.nfwd; i++) {
            fds[nm + i] = (struct pollfd){.fd = s->lora.fwd[i].fd, .events = POLLIN};
        }
        int n = poll(fds, (nfds_t)(nm + s->lora.nfwd), poll_timeout_ms(s));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            gw_error(MOD, "poll: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < nm; i++) {
            s->fds[i].revents = fds[i].revents;
        }
        for (int i = 0; i < s->lora.nfwd; i++) {
            if (fds[nm + i].revents & (POLLIN | POLLERR)) {
                lora_receive(s, i);
            }
        }
        /* Clients first, from the end, so removing one never skips another. */
        for (int i = s->nfds - 1; i >= 1; i--) {
            if (s->fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (serve_client(s, i) < 0) {
                    close_client(s, i);
                }
            }
        }
        if (s->fds[0].revents & POLLIN) {
            accept_client(s);
        }
    }
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v > 0.0) || !isfinite(v)) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_SEED = 256, OPT_CHECK, OPT_VERSION, OPT_LORA_FORWARD };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"lora-forward", required_argument, NULL, OPT_LORA_FORWARD},
        {"speed", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, OPT_SEED},
        {"check", no_argument, NULL, OPT_CHECK},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}};
    const char *path = NULL, *listen = NULL, *seed_arg = NULL, *lora_forward = NULL;
    bool check = false;
    struct sim s = {.speed = 1.0};
    int c;
    while ((c = getopt_long(argc, argv, "c:l:s:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case OPT_LORA_FORWARD:
            lora_forward = optarg;
            break;
        case 's':
            if (parse_double(optarg, &s.speed) < 0) {
                fprintf(stderr, "campusgw-sim: --speed needs a positive number, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_SEED:
            seed_arg = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case 'v':
            s.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("campusgw-sim %s\n", GW_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* tests read our lines through a pipe as they come */

    s.sc = gw_scenario_load(path, stderr);
    if (s.sc == NULL) {
        return 1;
    }
    int rc = 1;
    char *host = NULL;
    int port = s.sc->listen_port;
    if (seed_arg != NULL) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(seed_arg, &end, 0);
        if (errno != 0 || end == seed_arg || *end != '\0') {
            fprintf(stderr, "campusgw-sim: --seed needs an integer, not '%s'\n", seed_arg);
            rc = 2;
            goto out;
        }
        gw_scenario_start(s.sc, v);
    }
    if (listen != NULL) {
        if (gw_sim_parse_listen(listen, &host, &port) < 0) {
            fprintf(stderr,
                    "campusgw-sim: --listen needs IPv4:PORT like 127.0.0.1:1502, not '%s'\n",
                    listen);
            rc = 2;
            goto out;
        }
    } else {
        host = strdup(s.sc->listen_host);
        if (host == NULL) {
            goto out;
        }
    }
    if (lora_forward != NULL) {
        char *lh = NULL;
        int lp = 0;
        if (gw_sim_parse_listen(lora_forward, &lh, &lp) < 0 || lp == 0) {
            fprintf(stderr,
                    "campusgw-sim: --lora-forward needs IPv4:PORT like 127.0.0.1:1700, not '%s'\n",
                    lora_forward);
            free(lh);
            rc = 2;
            goto out;
        }
        if (!s.sc->lora.present) {
            fprintf(stderr, "campusgw-sim: --lora-forward: %s has no lora section; ignored\n",
                    path);
        }
        free(s.sc->lora.forward_host);
        s.sc->lora.forward_host = lh;
        s.sc->lora.forward_port = lp;
    }
    print_summary(s.sc);
    if (check) {
        printf("sim: %s is valid\n", path);
        rc = 0;
        goto out;
    }

    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-reply is an error return, not a death */

    if (s.sc->lora.present) {
        s.lora.on = true;
        s.lora.host = s.sc->lora.forward_host;
        s.lora.port = s.sc->lora.forward_port;
        if (lora_open(&s) < 0) {
            goto out;
        }
    }
    if (listen_on(&s, host, port) < 0) {
        goto out;
    }
    if (s.lora.on) {
        printf("sim: lora forwarding to %s:%d from %d forwarder%s\n", s.lora.host, s.lora.port,
               s.lora.nfwd, s.lora.nfwd == 1 ? "" : "s");
    }
    if (s.speed != 1.0) {
        printf("sim: scenario time runs %g times faster\n", s.speed);
    }
    clock_gettime(CLOCK_MONOTONIC, &s.start);
    run(&s);
    printf(
        "sim: stopping at t=%.1fs: %llu requests (%llu replies, %llu exceptions, %llu "
        "garbage, %llu silent, %llu to unknown units, %llu malformed), %llu connections closed\n",
        (double)elapsed_ms(&s) / 1000.0, (unsigned long long)s.st.requests,
        (unsigned long long)s.st.replies, (unsigned long long)s.st.exceptions,
        (unsigned long long)s.st.garbage, (unsigned long long)s.st.silent,
        (unsigned long long)s.st.unknown_unit, (unsigned long long)s.st.bad_frames,
        (unsigned long long)s.st.closed);
    if (s.lora.on) {
        lora_flush(&s, true);
        struct lora_fwd tot = {.fd = -1};
        for (int i = 0; i < s.lora.nfwd; i++) {
            const struct lora_fwd *f = &s.lora.fwd[i];
            tot.push_sent += f->push_sent;
            tot.pull_sent += f->pull_sent;
            tot.stat_sent += f->stat_sent;
            tot.acks.push_acked += f->acks.push_acked;
            tot.acks.pull_acked += f->acks.pull_acked;
            tot.acks.missing += f->acks.missing;
            tot.acks.unexpected += f->acks.unexpected;
            tot.pull_resp += f->pull_resp;
            tot.send_errors += f->send_errors;
            tot.bad_datagrams += f->bad_datagrams;
        }
        printf("sim: lora: %llu uplinks (%llu on a change, %llu replays); %llu PUSH_DATA (%llu "
               "stat), %llu PULL_DATA; %llu PUSH_ACK, %llu PULL_ACK, %llu missing acks, %llu "
               "unexpected, %llu PULL_RESP, %llu not GWMP; %llu send errors\n",
               (unsigned long long)s.lora.uplinks, (unsigned long long)s.lora.changes,
               (unsigned long long)s.lora.replays, (unsigned long long)tot.push_sent,
               (unsigned long long)tot.stat_sent, (unsigned long long)tot.pull_sent,
               (unsigned long long)tot.acks.push_acked, (unsigned long long)tot.acks.pull_acked,
               (unsigned long long)tot.acks.missing, (unsigned long long)tot.acks.unexpected,
               (unsigned long long)tot.pull_resp, (unsigned long long)tot.bad_datagrams,
               (unsigned long long)tot.send_errors);
    }
    rc = stop_requested ? 0 : 1;
out:
    for (int i = 0; i < s.nfds; i++) {
        close(s.fds[i].fd);
    }
    for (int i = 0; i < s.lora.nfwd; i++) {
        close(s.lora.fwd[i].fd);
    }
    if (s.ctx != NULL) {
        modbus_set_socket(s.ctx, -1);
        modbus_free(s.ctx);
    }
    free(host);
    gw_scenario_free(s.sc);
    return rc;
}
