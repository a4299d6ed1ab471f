/*
 * Modbus RTU/TCP driver: one thread per bus polls its devices with libmodbus
 * (blocking) and hands readings to the loop through a locked queue and a
 * uv_async_t. Each thread owns its modbus_t; a context is never shared.
 *
 * Timing rules, so that one dead or slow device never stalls the bus:
 * - a request costs at most the device's timeout: the byte timeout is off, so
 *   the response timeout bounds the whole reply; no immediate retries, and a
 *   poll stops at its first failed request;
 * - after `fails` consecutive failed polls the next one is
 *   gw_modbus_backoff_ms(): interval, 2x, 4x ... capped at max(interval, 60 s),
 *   so a dead device costs the bus about one timeout a minute while the others
 *   keep their intervals; a successful poll restores the normal interval;
 * - fail_threshold consecutive failures mark the device offline (logged once);
 * - a broken TCP connection (or a serial port that went away) is closed and
 *   reopened at most every gw_modbus_reconnect_ms() (1 s doubling to 30 s,
 *   reset by a good poll), and only when a device is due, so nothing spins;
 *   devices due meanwhile give ERROR readings with the connect error at their
 *   normal interval (they cost no I/O) and resume as soon as the link is back;
 * - a link that worked before and is found closed (peers drop idle TCP
 *   connections) is reopened and the poll retried once;
 * - on TCP, three timeouts in a row with no good poll between reopen the
 *   connection (it may be half-open).
 * Logs: each fault once, then spaced by gw_complain; a Modbus exception once
 * until the device answers again; recoveries once.
 */
#include "modbus/modbus_map.h"

#include <errno.h>
#include <inttypes.h>
#include <modbus.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "driver.h"
#include "log.h"

#define MOD "modbus"
#define QUEUE_CAP 4096
#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_INTERVAL_S 10
#define DEFAULT_FAIL_THRESHOLD 3
/* A TCP link where this many requests in a row timed out is reopened: it may be half-open. */
#define TCP_TIMEOUTS_BEFORE_RECONNECT 3

struct md_sensor {
    int index; /* into cfg->sensors */
    const struct gw_sensor_cfg *cfg;
    const struct gw_profile_cfg *profile;
    struct gw_modbus_plan plan;
    int timeout_ms;
    int interval_s;
    int64_t next_due_ms; /* CLOCK_MONOTONIC */
    int fails;           /* consecutive failed polls */
    bool offline;
    bool exception_logged; /* an exception was logged since the last good poll */
    struct gw_complaint complaint;
};

struct md_driver;

struct md_bus {
    struct md_driver *drv;
    const struct gw_bus_cfg *cfg;
    int fail_threshold;
    modbus_t *ctx; /* touched only by the bus thread once it runs */
    bool connected;
    bool ever_connected;
    int connect_fails;
    int64_t reconnect_at_ms;
    int timeouts_in_row;
    char conn_error[GW_ERR_MAX];
    struct gw_complaint conn_complaint;
    bool rs485_warned;
    int nsensors;
    struct md_sensor *sensors;
    pthread_t thread;
    bool thread_started;
};

struct md_driver {
    uv_loop_t *loop;
    uv_async_t async;
    gw_dispatch_fn dispatch;
    void *core;

    /* stop flag and the bus threads' sleep */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    bool stopping;
    bool started;

    /* hand-off: threads append to `queue`, the loop swaps it with `spare` */
    pthread_mutex_t qlock;
    struct gw_reading *queue;
    struct gw_reading *spare;
    int qlen;
    bool dispatch_off; /* loop thread only: set by stop() */

    /* under qlock: 64-bit atomics need libatomic on some 32-bit ARM boards */
    struct gw_driver_stats stats;

    int nbuses;
    struct md_bus *buses;
    bool sync_ready; /* lock, wake and qlock initialised */
};

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static bool is_exception(int e)
{
    return e >= EMBXILFUN && e <= EMBXGTAR;
}

/* Errors after which the connection (or serial port) cannot be used again. */
static bool is_link_broken(int e)
{
    switch (e) {
    case ECONNRESET:
    case EPIPE:
    case EBADF:
    case ENOTCONN:
    case ECONNABORTED:
    case ECONNREFUSED:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EIO:
    case ENXIO:
    case ENODEV:
        return true;
    default:
        return false;
    }
}

static void describe_error(int e, const struct gw_modbus_request *req, int timeout_ms, char *out,
                           size_t size)
{
    if (e == ETIMEDOUT) {
        snprintf(out, size, "timeout after %d ms", timeout_ms);
    } else if (is_exception(e)) {
        snprintf(out, size, "exception: %s (%s %s %d count %d)", modbus_strerror(e),
                 gw_modbus_table_is_bits(req->table) ? "bit" : "register",
                 gw_modbus_table_name(req->table), req->address, req->count);
    } else if (e == EMBBADCRC) {
        snprintf(out, size, "bad CRC");
    } else if (e == ECONNREFUSED) {
        snprintf(out, size, "connection refused");
    } else if (e == ECONNRESET) {
        snprintf(out, size, "connection reset");
    } else if (e == EMBMDATA) {
        snprintf(out, size, "bad reply: wrong number of values (%s %d count %d)",
                 gw_modbus_table_name(req->table), req->address, req->count);
    } else {
        snprintf(out, size, "bad reply: %s", modbus_strerror(e));
    }
}

static void set_timeout(modbus_t *ctx, int timeout_ms)
{
    modbus_set_response_timeout(ctx, (uint32_t)(timeout_ms / 1000),
                                (uint32_t)(timeout_ms % 1000) * 1000);
}

/* ---- hand-off to the loop ---------------------------------------------- */

static void bump(struct md_driver *drv, uint64_t *counter)
{
    pthread_mutex_lock(&drv->qlock);
    (*counter)++;
    pthread_mutex_unlock(&drv->qlock);
}

static void push_reading(struct md_driver *drv, const struct gw_reading *r)
{
    bool queued = false;
    pthread_mutex_lock(&drv->qlock);
    if (drv->qlen < QUEUE_CAP) {
        drv->queue[drv->qlen++] = *r;
        queued = true;
    } else {
        drv->stats.dropped++;
    }
    pthread_mutex_unlock(&drv->qlock);
    if (queued) {
        uv_async_send(&drv->async);
    }
}

/* Several uv_async_send may coalesce into one call: take everything queued. */
static void on_async(uv_async_t *handle)
{
    struct md_driver *drv = handle->data;
    pthread_mutex_lock(&drv->qlock);
    struct gw_reading *batch = drv->queue;
    int n = drv->qlen;
    drv->queue = drv->spare;
    drv->spare = batch;
    drv->qlen = 0;
    pthread_mutex_unlock(&drv->qlock);
    /* Dispatch without the lock: the core may take its time, threads keep queueing. */
    int done = 0;
    for (; done < n && !drv->dispatch_off; done++) {
        drv->dispatch(drv->core, &batch[done]);
    }
    pthread_mutex_lock(&drv->qlock);
    drv->stats.readings += (uint64_t)done;
    pthread_mutex_unlock(&drv->qlock);
}

/* ---- connection -------------------------------------------------------- */

static void close_link(struct md_bus *bus, int64_t now)
{
    modbus_close(bus->ctx);
    bus->connected = false;
    bus->timeouts_in_row = 0;
    bus->reconnect_at_ms = now; /* the first reconnect is immediate, then backoff */
}

static void describe_connect_error(const struct md_bus *bus, int e, int timeout_ms, char *out,
                                   size_t size)
{
    if (bus->cfg->type == GW_BUS_TCP) {
        if (e == ECONNREFUSED) {
            snprintf(out, size, "connection refused");
        } else if (e == ETIMEDOUT || e == EINPROGRESS) {
            snprintf(out, size, "connect timeout after %d ms", timeout_ms);
        } else {
            snprintf(out, size, "connect failed: %s", modbus_strerror(e));
        }
    } else {
        snprintf(out, size, "cannot open %s: %s", bus->cfg->device, modbus_strerror(e));
    }
}

static const char *bus_where(const struct gw_bus_cfg *b, char *buf, size_t size)
{
    if (b->type == GW_BUS_TCP) {
        snprintf(buf, size, "%s:%d", b->host != NULL ? b->host : "?", b->port);
    } else {
        snprintf(buf, size, "%s", b->device != NULL ? b->device : "?");
    }
    return buf;
}

static bool try_connect(struct md_bus *bus, int timeout_ms, int64_t now)
{
    char where[128];
    set_timeout(bus->ctx, timeout_ms); /* libmodbus bounds a TCP connect by it */
    if (modbus_connect(bus->ctx) < 0) {
        int e = errno;
        modbus_close(bus->ctx); /* a failed connect may leave a socket behind */
        bus->connect_fails++;
        int64_t delay = gw_modbus_reconnect_ms(bus->connect_fails);
        bus->reconnect_at_ms = now + delay;
        describe_connect_error(bus, e, timeout_ms, bus->conn_error, sizeof(bus->conn_error));
        if (gw_complain(&bus->conn_complaint, now)) {
            gw_warn(MOD, "bus %s %s: %s attempts=%d retry_in_ms=%" PRId64, bus->cfg->name,
                    bus_where(bus->cfg, where, sizeof(where)), bus->conn_error, bus->connect_fails,
                    delay);
        }
        return false;
    }
    if (bus->cfg->type == GW_BUS_RTU) {
        modbus_flush(bus->ctx); /* bytes that arrived while the port was closed are stale */
    }
    if (bus->cfg->type == GW_BUS_RTU && bus->cfg->rs485 &&
        modbus_rtu_set_serial_mode(bus->ctx, MODBUS_RTU_RS485) < 0 && !bus->rs485_warned) {
        bus->rs485_warned = true;
        gw_warn(MOD, "bus %s %s: cannot set RS-485 mode: %s", bus->cfg->name,
                bus_where(bus->cfg, where, sizeof(where)), modbus_strerror(errno));
    }
    if (!bus->ever_connected) {
        gw_info(MOD, "bus %s %s: connected", bus->cfg->name,
                bus_where(bus->cfg, where, sizeof(where)));
    } else {
        /* The recovery line waits for a good poll (on_poll_ok): a peer that
         * accepts and then drops every link must not log on each attempt. */
        gw_debug(MOD, "bus %s %s: reconnected", bus->cfg->name,
                 bus_where(bus->cfg, where, sizeof(where)));
    }
    bus->ever_connected = true;
    bus->connected = true;
    /* connect_fails is reset by a good poll, so a peer that drops every new link backs off */
    bus->timeouts_in_row = 0;
    bus->conn_error[0] = '\0';
    return true;
}

/* ---- polling ----------------------------------------------------------- */

static int read_request(modbus_t *ctx, const struct gw_modbus_request *req, uint16_t *regs,
                        uint8_t *bits)
{
    switch (req->table) {
    case GW_TABLE_HOLDING:
        return modbus_read_registers(ctx, req->address, req->count, regs);
    case GW_TABLE_INPUT:
        return modbus_read_input_registers(ctx, req->address, req->count, regs);
    case GW_TABLE_COIL:
        return modbus_read_bits(ctx, req->address, req->count, bits);
    case GW_TABLE_DISCRETE:
        return modbus_read_input_bits(ctx, req->address, req->count, bits);
    }
    errno = EINVAL;
    return -1;
}

static void on_poll_ok(struct md_bus *bus, struct md_sensor *s, int64_t now)
{
    bool was_failing = gw_release(&s->complaint);
    if (was_failing || s->offline) {
        gw_info(MOD, "sensor %s unit=%d bus=%s recovered after %d failed polls", s->cfg->id,
                s->cfg->unit_id, bus->cfg->name, s->fails);
    }
    s->fails = 0;
    s->offline = false;
    s->exception_logged = false;
    /* Keep the cadence; if the bus fell behind by a whole interval, restart from now. */
    int64_t interval = (int64_t)s->interval_s * 1000;
    s->next_due_ms += interval;
    if (s->next_due_ms <= now) {
        s->next_due_ms = now + interval;
    }
}

static void on_poll_failed(struct md_bus *bus, struct md_sensor *s, int e,
                           const struct gw_modbus_request *req, const char *error, bool link_error,
                           int64_t now)
{
    s->fails++;
    /*
     * A device that fails costs the bus a timeout per poll, so it backs off. A
     * bus that is down costs nothing per poll (connects are paced by the bus's
     * own reconnect delay), so its devices keep their interval and come back
     * as soon as the link does.
     */
    int64_t delay =
        link_error ? (int64_t)s->interval_s * 1000 : gw_modbus_backoff_ms(s->interval_s, s->fails);
    s->next_due_ms = now + delay;

    /* The bus already logs its connection faults: no line per sensor for them. */
    bool due = gw_complain(&s->complaint, now);
    if (link_error) {
        /* nothing */
    } else if (is_exception(e)) {
        /* An exception is a configuration mismatch: once until the device answers again. */
        if (!s->exception_logged) {
            s->exception_logged = true;
            gw_warn(MOD, "sensor %s unit=%d exception \"%s\" table=%s register=%d count=%d bus=%s",
                    s->cfg->id, s->cfg->unit_id, modbus_strerror(e),
                    gw_modbus_table_name(req->table), req->address, req->count, bus->cfg->name);
        }
    } else if (due) {
        gw_warn(MOD, "sensor %s unit=%d bus=%s error \"%s\" fails=%d suppressed=%" PRIu64,
                s->cfg->id, s->cfg->unit_id, bus->cfg->name, error, s->fails,
                (uint64_t)s->complaint.suppressed);
    }
    if (!s->offline && s->fails >= bus->fail_threshold) {
        s->offline = true;
        gw_warn(MOD,
                "sensor %s unit=%d bus=%s offline after %d failed polls error=\"%s\" "
                "next_poll_ms=%" PRId64,
                s->cfg->id, s->cfg->unit_id, bus->cfg->name, s->fails, error, delay);
    }
}

/* Run the plan on the open link; 0 or the errno of the first failed request (*failed). */
static int run_requests(struct md_bus *bus, struct md_sensor *s, uint16_t *regs, uint8_t *bits,
                        struct gw_reading *r, const struct gw_modbus_request **failed)
{
    modbus_set_slave(bus->ctx, s->cfg->unit_id);
    set_timeout(bus->ctx, s->timeout_ms);
    for (int i = 0; i < s->plan.nrequests; i++) {
        const struct gw_modbus_request *req = &s->plan.requests[i];
        bump(bus->drv, &bus->drv->stats.polls);
        errno = 0;
        int rc = read_request(bus->ctx, req, regs, bits);
        if (rc != req->count) {
            *failed = req;
            return rc < 0 && errno != 0 ? errno : EMBMDATA;
        }
        gw_modbus_apply(s->profile, req, regs, bits, r);
    }
    return 0;
}

static void poll_sensor(struct md_bus *bus, struct md_sensor *s, uint16_t *regs, uint8_t *bits)
{
    struct md_driver *drv = bus->drv;
    struct gw_reading r;
    memset(&r, 0, sizeof(r));
    r.sensor_index = s->index;
    snprintf(r.sensor, sizeof(r.sensor), "%s", s->cfg->id);

    int64_t now = mono_ms();
    const struct gw_modbus_request *failed = NULL;
    int e = 0;
    bool link_error = false;
    bool fresh = false; /* the link was opened for this poll */

    if (!bus->connected) {
        if (now < bus->reconnect_at_ms || !try_connect(bus, s->timeout_ms, now)) {
            link_error = true;
        }
        fresh = true;
    }
    if (!link_error) {
        e = run_requests(bus, s, regs, bits, &r, &failed);
        if (e != 0 && is_link_broken(e) && !fresh) {
            /*
             * Devices and gateways close idle TCP connections: when a link that
             * worked before is found dead, reopen it once and retry, or a poll
             * interval above the peer's idle timeout would fail every poll.
             */
            gw_debug(MOD, "bus %s: link found closed (%s), reopening", bus->cfg->name,
                     modbus_strerror(e));
            close_link(bus, now);
            failed = NULL;
            e = 0;
            if (try_connect(bus, s->timeout_ms, mono_ms())) {
                e = run_requests(bus, s, regs, bits, &r, &failed);
            } else {
                link_error = true;
            }
        }
    }
    r.ts_ms = clock_ms(CLOCK_REALTIME);
    now = mono_ms();

    if (!link_error && e == 0) {
        r.status = GW_READING_OK;
        bus->timeouts_in_row = 0;
        bus->connect_fails = 0;
        if (gw_release(&bus->conn_complaint)) {
            char where[128];
            gw_info(MOD, "bus %s %s: link restored", bus->cfg->name,
                    bus_where(bus->cfg, where, sizeof(where)));
        }
        on_poll_ok(bus, s, now);
        push_reading(drv, &r);
        return;
    }

    r.status = GW_READING_ERROR;
    r.npoints = 0;
    if (link_error) {
        snprintf(r.error, sizeof(r.error), "%s",
                 bus->conn_error[0] != '\0' ? bus->conn_error : "not connected");
    } else {
        describe_error(e, failed, s->timeout_ms, r.error, sizeof(r.error));
        if (is_link_broken(e)) {
            link_error = true;
            char where[128];
            snprintf(bus->conn_error, sizeof(bus->conn_error), "%s", r.error);
            if (gw_complain(&bus->conn_complaint, now)) {
                gw_warn(MOD, "bus %s %s: link lost: %s", bus->cfg->name,
                        bus_where(bus->cfg, where, sizeof(where)), r.error);
            }
            close_link(bus, now);
            /* Reopen after the usual delay: a peer that resets every fresh link must not spin. */
            bus->connect_fails++;
            bus->reconnect_at_ms = now + gw_modbus_reconnect_ms(bus->connect_fails);
        } else if (!is_exception(e)) {
            /* Drop a late or garbled reply so the next device starts clean. */
            modbus_flush(bus->ctx);
            if (e == ETIMEDOUT && bus->cfg->type == GW_BUS_TCP &&
                ++bus->timeouts_in_row >= TCP_TIMEOUTS_BEFORE_RECONNECT) {
                gw_debug(MOD, "bus %s: %d timeouts in a row, reopening the connection",
                         bus->cfg->name, bus->timeouts_in_row);
                close_link(bus, now);
            }
        }
    }
    bump(drv, &drv->stats.errors);
    on_poll_failed(bus, s, e, failed, r.error, link_error, now);
    push_reading(drv, &r);
}

static struct timespec mono_deadline(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    return ts;
}

static void *bus_main(void *arg)
{
    struct md_bus *bus = arg;
    struct md_driver *drv = bus->drv;
    uint16_t regs[GW_MODBUS_MAX_REGS];
    uint8_t bits[GW_MODBUS_MAX_BITS];

    pthread_mutex_lock(&drv->lock);
    while (!drv->stopping) {
        struct md_sensor *next = &bus->sensors[0];
        for (int i = 1; i < bus->nsensors; i++) {
            if (bus->sensors[i].next_due_ms < next->next_due_ms) {
                next = &bus->sensors[i];
            }
        }
        if (next->next_due_ms > mono_ms()) {
            struct timespec deadline = mono_deadline(next->next_due_ms);
            pthread_cond_timedwait(&drv->wake, &drv->lock, &deadline);
            continue;
        }
        pthread_mutex_unlock(&drv->lock);
        poll_sensor(bus, next, regs, bits);
        pthread_mutex_lock(&drv->lock);
    }
    pthread_mutex_unlock(&drv->lock);
    if (bus->connected) {
        modbus_close(bus->ctx);
        bus->connected = false;
    }
    return NULL;
}

/* ---- ops --------------------------------------------------------------- */

static void free_buses(struct md_driver *drv)
{
    for (int b = 0; b < drv->nbuses; b++) {
        struct md_bus *bus = &drv->buses[b];
        if (bus->ctx != NULL) {
            modbus_free(bus->ctx);
            bus->ctx = NULL;
        }
        free(bus->sensors);
        bus->sensors = NULL;
    }
    free(drv->buses);
    drv->buses = NULL;
    drv->nbuses = 0;
}

/* Everything but the struct itself, which holds the async handle. */
static void free_state(struct md_driver *drv)
{
    free_buses(drv);
    free(drv->queue);
    drv->queue = NULL;
    free(drv->spare);
    drv->spare = NULL;
    if (drv->sync_ready) {
        pthread_mutex_destroy(&drv->lock);
        pthread_cond_destroy(&drv->wake);
        pthread_mutex_destroy(&drv->qlock);
        drv->sync_ready = false;
    }
}

static int init_sync(struct md_driver *drv)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        return -ENOMEM;
    }
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0) {
        rc = pthread_cond_init(&drv->wake, &attr);
    }
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        return -rc;
    }
    pthread_mutex_init(&drv->lock, NULL);
    pthread_mutex_init(&drv->qlock, NULL);
    drv->sync_ready = true;
    return 0;
}

/* Collect the Modbus sensors of bus b; sensors whose profile cannot be planned are skipped. */
static int build_bus(struct md_driver *drv, const struct gw_config *cfg, int b, struct md_bus *bus)
{
    bus->drv = drv;
    bus->cfg = &cfg->buses[b];
    bus->fail_threshold =
        bus->cfg->fail_threshold > 0 ? bus->cfg->fail_threshold : DEFAULT_FAIL_THRESHOLD;
    bus->sensors = calloc((size_t)cfg->nsensors, sizeof(*bus->sensors));
    if (bus->sensors == NULL) {
        return -ENOMEM;
    }
    int bus_timeout = bus->cfg->timeout_ms > 0 ? bus->cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    for (int i = 0; i < cfg->nsensors; i++) {
        const struct gw_sensor_cfg *sc = &cfg->sensors[i];
        if (sc->bus_index != b) {
            continue;
        }
        if (sc->profile_index < 0 || sc->profile_index >= cfg->nprofiles) {
            gw_warn(MOD, "sensor %s skipped: no profile bus=%s", sc->id, bus->cfg->name);
            continue;
        }
        struct md_sensor *s = &bus->sensors[bus->nsensors];
        s->profile = &cfg->profiles[sc->profile_index];
        char err[160];
        int rc = gw_modbus_plan_build(s->profile, &s->plan, err, sizeof(err));
        if (rc < 0) {
            gw_warn(MOD, "sensor %s skipped: %s bus=%s", sc->id, err, bus->cfg->name);
            continue;
        }
        s->index = i;
        s->cfg = sc;
        s->timeout_ms = sc->timeout_ms > 0 ? sc->timeout_ms : bus_timeout;
        s->interval_s = sc->interval_s > 0 ? sc->interval_s : DEFAULT_INTERVAL_S;
        bus->nsensors++;
    }
    return 0;
}

static void *md_init(const struct gw_config *cfg, uv_loop_t *loop, gw_dispatch_fn dispatch,
                     void *core)
{
    struct md_driver *drv = calloc(1, sizeof(*drv));
    if (drv == NULL) {
        gw_error(MOD, "init: out of memory");
        return NULL;
    }
    drv->loop = loop;
    drv->dispatch = dispatch;
    drv->core = core;

    int rc = init_sync(drv);
    if (rc < 0) {
        gw_error(MOD, "init: %s", strerror(-rc));
        goto fail;
    }
    drv->queue = calloc(QUEUE_CAP, sizeof(*drv->queue));
    drv->spare = calloc(QUEUE_CAP, sizeof(*drv->spare));
    drv->buses = calloc(cfg->nbuses > 0 ? (size_t)cfg->nbuses : 1, sizeof(*drv->buses));
    if (drv->queue == NULL || drv->spare == NULL || drv->buses == NULL) {
        gw_error(MOD, "init: out of memory");
        goto fail;
    }
    for (int b = 0; b < cfg->nbuses; b++) {
        struct md_bus *bus = &drv->buses[drv->nbuses];
        if (build_bus(drv, cfg, b, bus) < 0) {
            gw_error(MOD, "init: out of memory");
            free(bus->sensors);
            bus->sensors = NULL;
            goto fail;
        }
        if (bus->nsensors == 0) {
            free(bus->sensors);
            memset(bus, 0, sizeof(*bus));
            continue; /* a bus without sensors gets no thread */
        }
        drv->nbuses++;
    }
    rc = uv_async_init(loop, &drv->async, on_async);
    if (rc < 0) {
        gw_error(MOD, "init: uv_async_init: %s", uv_strerror(rc));
        goto fail;
    }
    drv->async.data = drv;
    return drv;

fail:
    free_state(drv);
    free(drv);
    return NULL;
}

static modbus_t *new_context(const struct gw_bus_cfg *b)
{
    modbus_t *ctx;
    if (b->type == GW_BUS_TCP) {
        /* The _pi variant takes host names and IPv6, not only dotted IPv4. */
        char port[16];
        snprintf(port, sizeof(port), "%d", b->port > 0 ? b->port : 502);
        ctx = modbus_new_tcp_pi(b->host, port);
    } else {
        ctx = modbus_new_rtu(b->device, b->baud > 0 ? b->baud : 9600,
                             b->parity != 0 ? b->parity : 'N', b->data_bits > 0 ? b->data_bits : 8,
                             b->stop_bits > 0 ? b->stop_bits : 1);
    }
    if (ctx == NULL) {
        return NULL;
    }
    /* No byte timeout: the response timeout then bounds the whole reply (libmodbus >= 3.1). */
    modbus_set_byte_timeout(ctx, 0, 0);
    modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE);
    return ctx;
}

static void md_stop(void *state);

static int md_start(void *state)
{
    struct md_driver *drv = state;
    if (drv->started) {
        return -EALREADY;
    }
    drv->started = true;
    int64_t now = mono_ms();
    for (int b = 0; b < drv->nbuses; b++) {
        struct md_bus *bus = &drv->buses[b];
        errno = 0;
        bus->ctx = new_context(bus->cfg);
        if (bus->ctx == NULL) {
            int rc = -(errno != 0 ? errno : EINVAL);
            gw_error(MOD, "bus %s: cannot create context: %s", bus->cfg->name,
                     modbus_strerror(-rc));
            md_stop(drv);
            return rc;
        }
        bus->reconnect_at_ms = now;
        for (int i = 0; i < bus->nsensors; i++) {
            bus->sensors[i].next_due_ms = now;
        }
        int rc = pthread_create(&bus->thread, NULL, bus_main, bus);
        if (rc != 0) {
            gw_error(MOD, "bus %s: cannot start thread: %s", bus->cfg->name, strerror(rc));
            md_stop(drv);
            return -rc;
        }
        bus->thread_started = true;
        gw_info(MOD, "bus %s started sensors=%d timeout_ms=%d", bus->cfg->name, bus->nsensors,
                bus->sensors[0].timeout_ms);
    }
    return 0;
}

static void md_stop(void *state)
{
    struct md_driver *drv = state;
    if (drv == NULL) {
        return;
    }
    pthread_mutex_lock(&drv->lock);
    drv->stopping = true;
    pthread_cond_broadcast(&drv->wake);
    pthread_mutex_unlock(&drv->lock);
    /* A thread inside libmodbus comes back within its timeout. */
    for (int b = 0; b < drv->nbuses; b++) {
        if (drv->buses[b].thread_started) {
            pthread_join(drv->buses[b].thread, NULL);
            drv->buses[b].thread_started = false;
        }
    }
    drv->dispatch_off = true;
    pthread_mutex_lock(&drv->qlock);
    drv->qlen = 0;
    pthread_mutex_unlock(&drv->qlock);
}

static void on_close(uv_handle_t *handle)
{
    free(handle->data);
}

static void md_destroy(void *state)
{
    struct md_driver *drv = state;
    if (drv == NULL) {
        return;
    }
    md_stop(drv);
    free_state(drv);
    uv_close((uv_handle_t *)&drv->async, on_close);
}

static void md_stats(void *state, struct gw_driver_stats *out)
{
    struct md_driver *drv = state;
    pthread_mutex_lock(&drv->qlock);
    *out = drv->stats;
    pthread_mutex_unlock(&drv->qlock);
}

static bool md_wanted(const struct gw_config *cfg)
{
    return cfg->nbuses > 0;
}

const struct gw_driver_ops gw_modbus_driver = {
    .name = "modbus",
    .wanted = md_wanted,
    .init = md_init,
    .start = md_start,
    .stop = md_stop,
    .destroy = md_destroy,
    .stats = md_stats,
};
