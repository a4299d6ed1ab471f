/*
 * The LoRa driver: a GWMP (Semtech UDP) server on the loop. It owns the
 * socket, the deduplication timer and the persistence of frame counters;
 * everything it decides is in lora_ingest.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "driver.h"
#include "gateway.h"
#include "log.h"
#include "lora/lora_ingest.h"
#include "timefmt.h"

#define MOD "lora"
#define FCNT_KEY_PREFIX "lora.fcnt."
/* Room for bursts while the loop commits to disk; the kernel caps it at net.core.rmem_max. */
#define RECV_BUFFER_BYTES (4 * 1024 * 1024)
#define MAX_ADDRS 64
#define NFIXED_METRICS 7

struct lora_state {
    const struct gw_config *cfg;
    uv_loop_t *loop;
    gw_dispatch_fn dispatch;
    void *core;
    struct lora_ingest *ing;
    uv_udp_t udp;
    uv_timer_t timer;
    int open_handles;
    bool started, destroyed;
    /* Where each forwarder (by ingest index) last sent from, and its PULL_DATA address
     * (downlinks go there). */
    struct sockaddr_storage from[MAX_ADDRS];
    struct sockaddr_storage pull[MAX_ADDRS];
    bool has_pull[MAX_ADDRS];
    uint64_t ack_errors;
    struct gw_complaint recv_complaint;
    char reject_metric[LORA_REJ_COUNT][40];
    uint8_t buf[65536]; /* the largest UDP payload: a datagram is never cut */
};

static void format_addr(const struct sockaddr_storage *sa, char *out, size_t size)
{
    char host[64] = "?";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uv_ip4_name(in, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(out, size, "%s:%d", host, port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(out, size, "[%s]:%d", host, port);
    } else {
        snprintf(out, size, "?");
    }
}

/* ---- what ingest tells us ---- */

static void on_reading(void *ctx, const struct gw_reading *r)
{
    struct lora_state *st = ctx;
    st->dispatch(st->core, r);
}

static void on_fcnt(void *ctx, uint32_t dev_addr, uint32_t fcnt)
{
    struct lora_state *st = ctx;
    char key[32], value[16];
    snprintf(key, sizeof(key), FCNT_KEY_PREFIX "%08" PRIX32, dev_addr);
    snprintf(value, sizeof(value), "%" PRIu32, fcnt);
    if (gw_core_kv_set(st->core, key, value) != 0) {
        gw_error(MOD, "cannot keep the frame counter of dev_addr=%08" PRIX32 " (out of memory)",
                 dev_addr);
    }
}

static char *forwarder_json(struct lora_state *st, const struct lora_forwarder *f, int index,
                            uint64_t seq)
{
    char eui[17], last_seen[40];
    snprintf(eui, sizeof(eui), "%016" PRIX64, f->eui);
    gw_format_rfc3339(f->last_seen_ms, last_seen, sizeof(last_seen));
    json_t *root =
        json_pack("{sI ss sb ss sI si}", "seq", (json_int_t)seq, "eui", eui, "online", f->online,
                  "last_seen", last_seen, "rxpk", (json_int_t)f->rxpk, "version", f->version);
    if (!root) {
        return NULL;
    }
    if (index >= 0 && index < MAX_ADDRS && st->has_pull[index]) {
        char addr[80];
        format_addr(&st->pull[index], addr, sizeof(addr));
        json_object_set_new(root, "address", json_string(addr));
    }
    if (f->has_stat) {
        json_t *stat = json_pack("{sI sI sI sf sI sI}", "rxnb", (json_int_t)f->stat.rxnb, "rxok",
                                 (json_int_t)f->stat.rxok, "rxfw", (json_int_t)f->stat.rxfw, "ackr",
                                 f->stat.ackr, "dwnb", (json_int_t)f->stat.dwnb, "txnb",
                                 (json_int_t)f->stat.txnb);
        if (stat) {
            json_object_set_new(root, "stat", stat);
        }
    }
    /* ackr is a percentage: 83.3, not 83.299999999999997. */
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(root);
    return s;
}

static void on_forwarder(void *ctx, const struct lora_forwarder *f)
{
    struct lora_state *st = ctx;
    int index = -1;
    for (int i = 0; i < lora_ingest_nforwarders(st->ing); i++) {
        if (lora_ingest_forwarder(st->ing, i) == f) {
            index = i;
        }
    }
    char topic[40];
    snprintf(topic, sizeof(topic), "forwarders/%016" PRIX64, f->eui);
    uint64_t seq = gw_core_next_seq(st->core);
    gw_core_emit(st->core, GW_REC_FORWARDER, f->last_seen_ms, topic,
                 forwarder_json(st, f, index, seq), seq);
}

/* ---- the socket and the timer ---- */

static void on_timer(uv_timer_t *t);

static void schedule(struct lora_state *st, int64_t next, int64_t now)
{
    if (next == INT64_MAX) {
        uv_timer_stop(&st->timer);
        return;
    }
    uint64_t in = next > now ? (uint64_t)(next - now) : 0;
    if (!uv_is_active((uv_handle_t *)&st->timer) || uv_timer_get_due_in(&st->timer) > in) {
        uv_timer_start(&st->timer, on_timer, in, 0);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct lora_state *st = t->data;
    int64_t now = gw_now_ms();
    int64_t next = lora_ingest_flush(st->ing, now, false);
    schedule(st, next, now);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct lora_state *st = h->data;
    *buf = uv_buf_init((char *)st->buf, sizeof(st->buf));
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    (void)buf;
    struct lora_state *st = h->data;
    int64_t now = gw_now_ms();
    if (nread < 0) {
        if (gw_complain(&st->recv_complaint, now)) {
            gw_error(MOD, "receive failed: %s", uv_strerror((int)nread));
        }
        return;
    }
    if (nread == 0 || !addr) {
        return; /* nothing more to read */
    }
    if (gw_release(&st->recv_complaint)) {
        gw_info(MOD, "receiving again");
    }
    size_t len = (size_t)nread;
    if (flags & UV_UDP_PARTIAL) {
        len = LORA_MAX_DATAGRAM + 1; /* cut by the buffer: larger than anything we accept */
    }
    uint8_t ack[4];
    int fi;
    int acklen = lora_ingest_datagram(st->ing, st->buf, len, now, ack, &fi);
    if (fi >= 0 && fi < MAX_ADDRS) {
        size_t sz =
            addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        memcpy(&st->from[fi], addr, sz);
        if (len >= 4 && st->buf[3] == 0x02) { /* PULL_DATA: the downlink path */
            memcpy(&st->pull[fi], addr, sz);
            st->has_pull[fi] = true;
        }
    }
    if (acklen > 0) {
        uv_buf_t b = uv_buf_init((char *)ack, (unsigned)acklen);
        /* A lost ACK only lowers the forwarder's ackr statistic: never wait for the socket. */
        if (uv_udp_try_send(&st->udp, &b, 1, addr) < 0) {
            st->ack_errors++;
        }
    }
    int64_t next = lora_ingest_flush(st->ing, now, false);
    schedule(st, next, now);
}

/* ---- driver ops ---- */

static bool lora_wanted(const struct gw_config *cfg)
{
    return cfg->lora.enabled;
}

static void restore_fcnt(void *ctx, const char *key, const char *value)
{
    struct lora_state *st = ctx;
    char *end;
    unsigned long addr = strtoul(key + strlen(FCNT_KEY_PREFIX), &end, 16);
    if (*end != '\0') {
        return;
    }
    unsigned long long fcnt = strtoull(value, &end, 10);
    if (*end != '\0' || fcnt > UINT32_MAX) {
        gw_warn(MOD, "ignoring a stored frame counter key=%s value=%s", key, value);
        return;
    }
    lora_ingest_restore_fcnt(st->ing, (uint32_t)addr, (uint32_t)fcnt);
}

static void *lora_init(const struct gw_config *cfg, uv_loop_t *loop, gw_dispatch_fn dispatch,
                       void *core)
{
    struct lora_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(MOD, "out of memory");
        return NULL;
    }
    st->cfg = cfg;
    st->loop = loop;
    st->dispatch = dispatch;
    st->core = core;
    char err[256];
    st->ing = lora_ingest_new(cfg, err, sizeof(err));
    if (!st->ing) {
        gw_error(MOD, "cannot start: %s", err);
        free(st);
        return NULL;
    }
    lora_ingest_set_callbacks(st->ing, &(struct lora_ingest_callbacks){
                                           .reading = on_reading,
                                           .fcnt = on_fcnt,
                                           .forwarder = on_forwarder,
                                           .ctx = st,
                                       });
    if (gw_core_kv_each(core, FCNT_KEY_PREFIX, restore_fcnt, st) != 0) {
        gw_warn(MOD, "stored frame counters could not be read: replays of old frames are "
                     "refused only from each device's next frame on");
    }
    for (int r = 0; r < LORA_REJ_COUNT; r++) {
        snprintf(st->reject_metric[r], sizeof(st->reject_metric[r]), "lora_rejected_%s",
                 lora_reject_name((enum lora_reject)r));
    }
    return st;
}

static void on_closed(uv_handle_t *h)
{
    struct lora_state *st = h->data;
    if (--st->open_handles == 0 && st->destroyed) {
        lora_ingest_free(st->ing);
        free(st);
    }
}

static int lora_start(void *state)
{
    struct lora_state *st = state;
    const struct gw_lora_cfg *lc = &st->cfg->lora;
    struct sockaddr_storage sa;
    int rc = strchr(lc->listen_host, ':')
                 ? uv_ip6_addr(lc->listen_host, lc->listen_port, (struct sockaddr_in6 *)&sa)
                 : uv_ip4_addr(lc->listen_host, lc->listen_port, (struct sockaddr_in *)&sa);
    if (rc != 0) {
        gw_error(MOD, "bad listen address %s: %s", lc->listen_host, uv_strerror(rc));
        return rc;
    }
    uv_udp_init(st->loop, &st->udp);
    uv_timer_init(st->loop, &st->timer);
    st->udp.data = st->timer.data = st;
    st->open_handles = 2;
    st->started = true;
    rc = uv_udp_bind(&st->udp, (const struct sockaddr *)&sa, 0);
    if (rc != 0) {
        gw_error(MOD, "cannot listen on %s port %d (udp): %s%s", lc->listen_host, lc->listen_port,
                 uv_strerror(rc),
                 rc == UV_EADDRINUSE ? " (another packet forwarder server, e.g. ChirpStack's "
                                       "gateway bridge, already has it)"
                                     : "");
        return rc;
    }
    int size = RECV_BUFFER_BYTES;
    uv_recv_buffer_size((uv_handle_t *)&st->udp, &size);
    int actual = 0;
    uv_recv_buffer_size((uv_handle_t *)&st->udp, &actual);
    rc = uv_udp_recv_start(&st->udp, on_alloc, on_recv);
    if (rc != 0) {
        gw_error(MOD, "cannot receive: %s", uv_strerror(rc));
        return rc;
    }
    int ndev = 0;
    for (int i = 0; i < st->cfg->nsensors; i++) {
        ndev += st->cfg->sensors[i].lora.enabled;
    }
    gw_info(MOD, "listening udp=%s:%d devices=%d dedup_ms=%d recv_buffer=%d", lc->listen_host,
            lc->listen_port, ndev, lc->dedup_ms, actual);
    return 0;
}

static void lora_stop(void *state)
{
    struct lora_state *st = state;
    if (!st->started) {
        return;
    }
    uv_udp_recv_stop(&st->udp);
    uv_timer_stop(&st->timer);
    /* Frames still waiting for copies are readings all the same. */
    lora_ingest_flush(st->ing, gw_now_ms(), true);
    /* Closed now (the port is free for a reload), freed in the callbacks. */
    uv_close((uv_handle_t *)&st->udp, on_closed);
    uv_close((uv_handle_t *)&st->timer, on_closed);
    st->started = false;
}

static void lora_destroy(void *state)
{
    struct lora_state *st = state;
    if (!st) {
        return;
    }
    st->destroyed = true;
    if (st->open_handles == 0) {
        lora_ingest_free(st->ing);
        free(st);
    }
}

static void lora_stats(void *state, struct gw_driver_stats *out)
{
    struct lora_state *st = state;
    const struct lora_counters *c = lora_ingest_counters(st->ing);
    uint64_t rejected = 0;
    for (int r = 0; r < LORA_REJ_COUNT; r++) {
        rejected += c->rejected[r];
    }
    *out = (struct gw_driver_stats){
        .polls = c->rxpk, .readings = c->readings, .errors = rejected, .dropped = 0};
}

static int lora_metrics(void *state, struct gw_metric *out, int max)
{
    struct lora_state *st = state;
    const struct lora_counters *c = lora_ingest_counters(st->ing);
    int online = 0;
    for (int i = 0; i < lora_ingest_nforwarders(st->ing); i++) {
        online += lora_ingest_forwarder(st->ing, i)->online;
    }
    struct gw_metric all[NFIXED_METRICS + LORA_REJ_COUNT] = {
        {"lora_datagrams", (int64_t)c->datagrams},    {"lora_frames", (int64_t)c->frames},
        {"lora_duplicates", (int64_t)c->duplicates},  {"lora_readings", (int64_t)c->readings},
        {"lora_relaxed", (int64_t)c->relaxed},        {"lora_forwarders_online", online},
        {"lora_ack_errors", (int64_t)st->ack_errors},
    };
    for (int r = 0; r < LORA_REJ_COUNT; r++) {
        all[NFIXED_METRICS + r] = (struct gw_metric){st->reject_metric[r], (int64_t)c->rejected[r]};
    }
    int n = NFIXED_METRICS + LORA_REJ_COUNT;
    if (n > max) {
        n = max;
    }
    memcpy(out, all, sizeof(all[0]) * (size_t)n);
    return n;
}

const struct gw_driver_ops gw_lora_driver = {
    .name = "lora",
    .wanted = lora_wanted,
    .init = lora_init,
    .start = lora_start,
    .stop = lora_stop,
    .destroy = lora_destroy,
    .stats = lora_stats,
    .metrics = lora_metrics,
};
