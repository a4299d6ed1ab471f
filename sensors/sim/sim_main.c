/*
 * campusgw-sim: a simulated school for the demo, the integration tests and
 * the benchmarks. This is the Modbus TCP part: one libmodbus server context,
 * one poll() loop over the listening socket and every client, one mapping per
 * unit id, and the scenario's script applied between requests. The scenario
 * itself (devices, script, faults) lives in scenario.c; see docs/simulator.md.
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <modbus/modbus.h>

#include "log.h"
#include "sim/scenario.h"

#define MOD "sim"
#define TICK_MS 100     /* longest wait between two looks at the script */
#define MAX_CLIENTS 256 /* beyond this a new connection is closed at once */

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
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: campusgw-sim -c SCENARIO.cfg [--listen HOST:PORT] [--speed N] [--seed N] [-v]\n"
            "       campusgw-sim --check -c SCENARIO.cfg\n"
            "\n"
            "Simulates a school's Modbus TCP devices (hydrant pressure transmitters, exit\n"
            "doors, raw register devices) and plays the scenario's script of changes and\n"
            "faults. See docs/simulator.md for the scenario format.\n"
            "\n"
            "  -c, --config FILE   scenario file (libconfig syntax)\n"
            "  -l, --listen H:P    listen here instead of the scenario's modbus.listen\n"
            "                      (IPv4 literal; port 0 picks a free port)\n"
            "  -s, --speed N       scenario time runs N times faster (e.g. 10 for tests)\n"
            "      --seed N        seed of the pressure noise (default: the scenario's, or 1)\n"
            "      --check         validate the scenario, print a summary, exit\n"
            "  -v, --verbose       print every request and how it was answered\n"
            "  -h, --help          this text\n"
            "      --version       print the version\n"
            "\n"
            "Prints 'sim: modbus tcp listening on HOST:PORT' when ready and one line per\n"
            "script event. SIGTERM or SIGINT stops it (exit 0).\n");
}

static int64_t elapsed_ms(const struct sim *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ns =
        (double)(now.tv_sec - s->start.tv_sec) * 1e9 + (double)(now.tv_nsec - s->start.tv_nsec);
    return (int64_t)(ns * s->speed / 1e6);
}

static void print_line(void *ud, const char *line)
{
    (void)ud;
    printf("sim: %s\n", line);
}

static void print_summary(const struct gw_scenario *sc)
{
    printf("sim: scenario %s%s%s%s: %d devices, %d script events", sc->path, sc->name ? " (" : "",
           sc->name ? sc->name : "", sc->name ? ")" : "", sc->ndevices, sc->nevents);
    if (sc->repeat_ms > 0) {
        printf(", repeats every %.3g s", (double)sc->repeat_ms / 1000.0);
    }
    printf("\n");
    for (int i = 0; i < sc->ndevices; i++) {
        const struct gw_sim_device *d = &sc->devices[i];
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

static int poll_timeout_ms(struct sim *s)
{
    int64_t due = gw_scenario_next_due_ms(s->sc);
    if (due < 0) {
        return TICK_MS;
    }
    double wait = ceil((double)(due - elapsed_ms(s)) / s->speed);
    if (wait < 0) {
        return 0;
    }
    return wait < TICK_MS ? (int)wait : TICK_MS;
}

static void run(struct sim *s)
{
    while (!stop_requested) {
        gw_scenario_advance(s->sc, elapsed_ms(s), print_line, NULL);
        int n = poll(s->fds, (nfds_t)s->nfds, poll_timeout_ms(s));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            gw_error(MOD, "poll: %s", strerror(errno));
            return;
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
    enum { OPT_SEED = 256, OPT_CHECK, OPT_VERSION };
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"speed", required_argument, NULL, 's'},
                                         {"seed", required_argument, NULL, OPT_SEED},
                                         {"check", no_argument, NULL, OPT_CHECK},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, OPT_VERSION},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *listen = NULL, *seed_arg = NULL;
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

    if (listen_on(&s, host, port) < 0) {
        goto out;
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
    rc = stop_requested ? 0 : 1;
out:
    for (int i = 0; i < s.nfds; i++) {
        close(s.fds[i].fd);
    }
    if (s.ctx != NULL) {
        modbus_set_socket(s.ctx, -1);
        modbus_free(s.ctx);
    }
    free(host);
    gw_scenario_free(s.sc);
    return rc;
}
