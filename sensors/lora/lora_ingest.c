/*
 * Packet-forwarder datagrams to readings (see lora_ingest.h). Pure: the
 * driver owns the socket and the timer and passes the time in.
 */
#include "lora/lora_ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/codec.h"
#include "log.h"
#include "lora/lorawan.h"

#define MOD "lora"
#define MAX_FORWARDERS 64
/* Frame loss is the share of missing counters among the last LOSS_WINDOW. */
#define LOSS_WINDOW 100
#define LOSS_BITS 128
#define MAX_COPIES_EUIS 8

struct lora_device {
    int sensor_index;
    const struct gw_sensor_cfg *sensor;
    uint32_t dev_addr;
    struct gw_decoder *decoder; /* owned by ing->decoders */
    bool has_last;
    uint32_t last_fcnt;
    uint8_t last_mic[4];
    int64_t last_accepted_ms;
    /* Frames received among the counters last_fcnt - i (bit i), since loss_first. */
    uint64_t seen[LOSS_BITS / 64];
    bool loss_started;
    uint32_t loss_first;
    uint64_t pending_id; /* its frame waiting for copies, if still pending */
    bool has_pending;
    struct gw_complaint relax_complaint;
    struct gw_complaint decode_complaint;
};

/* An accepted frame waiting dedup_ms for its copies from other forwarders. */
struct pending_frame {
    int device;
    uint32_t fcnt;
    uint8_t mic[4];
    int64_t first_ms;
    uint64_t euis[MAX_COPIES_EUIS];
    int neuis;
    bool emit; /* false: the frame counts (FCnt), but there is nothing to decode (FPort 0) */
    uint8_t phy[GWMP_MAX_PHY]; /* the verified frame: a byte-identical copy needs no MIC check */
    size_t phy_len;
    struct gw_reading reading;
};

struct lora_ingest {
    const struct gw_config *cfg;
    int dedup_ms;
    int64_t offline_ms;
    struct lora_device *devices; /* sorted by dev_addr */
    int ndevices;
    struct gw_decoder **decoders; /* by profile index; NULL when no LoRa sensor uses it */
    int nprofiles;
    /* Frames waiting for copies, a ring in arrival (= deadline) order; frame ids count up. */
    struct pending_frame *pending;
    int pending_head, npending, cap_pending;
    uint64_t head_id;
    struct lora_forwarder forwarders[MAX_FORWARDERS];
    int nforwarders;
    struct lora_counters counters;
    struct gw_complaint reject_complaints[LORA_REJ_COUNT];
    struct lora_ingest_callbacks cb;
};

static const char *const reject_names[LORA_REJ_COUNT] = {
    [LORA_REJ_SHORT] = "short",
    [LORA_REJ_VERSION] = "version",
    [LORA_REJ_IDENTIFIER] = "identifier",
    [LORA_REJ_JSON] = "json",
    [LORA_REJ_OVERSIZE] = "oversize",
    [LORA_REJ_RXPK] = "rxpk",
    [LORA_REJ_CRC] = "crc",
    [LORA_REJ_MALFORMED] = "malformed",
    [LORA_REJ_NOT_DATA_UP] = "not_data_up",
    [LORA_REJ_MAJOR] = "major",
    [LORA_REJ_UNKNOWN_DEVICE] = "unknown_device",
    [LORA_REJ_BAD_MIC] = "bad_mic",
    [LORA_REJ_REPLAY] = "replay",
    [LORA_REJ_FCNT_GAP] = "fcnt_gap",
    [LORA_REJ_DECODE] = "decode",
};

const char *lora_reject_name(enum lora_reject r)
{
    return (unsigned)r < LORA_REJ_COUNT ? reject_names[r] : "unknown";
}

static int cmp_device(const void *a, const void *b)
{
    uint32_t x = ((const struct lora_device *)a)->dev_addr;
    uint32_t y = ((const struct lora_device *)b)->dev_addr;
    return x < y ? -1 : x > y;
}

struct lora_ingest *lora_ingest_new(const struct gw_config *cfg, char *err, size_t errlen)
{
    struct lora_ingest *ing = calloc(1, sizeof(*ing));
    if (!ing) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ing->cfg = cfg;
    ing->dedup_ms = cfg->lora.dedup_ms > 0 ? cfg->lora.dedup_ms : 0;
    ing->offline_ms =
        (int64_t)(cfg->lora.forwarder_offline_s > 0 ? cfg->lora.forwarder_offline_s : 120) * 1000;
    ing->nprofiles = cfg->nprofiles;
    ing->decoders = calloc((size_t)(cfg->nprofiles > 0 ? cfg->nprofiles : 1), sizeof(void *));
    ing->devices = calloc((size_t)(cfg->nsensors > 0 ? cfg->nsensors : 1), sizeof(*ing->devices));
    if (!ing->decoders || !ing->devices) {
        snprintf(err, errlen, "out of memory");
        lora_ingest_free(ing);
        return NULL;
    }
    for (int i = 0; i < cfg->nsensors; i++) {
        const struct gw_sensor_cfg *s = &cfg->sensors[i];
        if (!s->lora.enabled) {
            continue;
        }
        int p = s->profile_index;
        if (p < 0 || p >= cfg->nprofiles) {
            snprintf(err, errlen, "sensor %s: no profile", s->id);
            lora_ingest_free(ing);
            return NULL;
        }
        if (!ing->decoders[p]) {
            ing->decoders[p] = gw_decoder_new(&cfg->profiles[p], err, errlen);
            if (!ing->decoders[p]) {
                lora_ingest_free(ing);
                return NULL;
            }
        }
        struct lora_device *d = &ing->devices[ing->ndevices++];
        d->sensor_index = i;
        d->sensor = s;
        d->dev_addr = s->lora.dev_addr;
        d->decoder = ing->decoders[p];
    }
    qsort(ing->devices, (size_t)ing->ndevices, sizeof(*ing->devices), cmp_device);
    return ing;
}

void lora_ingest_free(struct lora_ingest *ing)
{
    if (!ing) {
        return;
    }
    for (int i = 0; ing->decoders && i < ing->nprofiles; i++) {
        gw_decoder_free(ing->decoders[i]);
    }
    free(ing->decoders);
    free(ing->devices);
    free(ing->pending);
    free(ing);
}

void lora_ingest_set_callbacks(struct lora_ingest *ing, const struct lora_ingest_callbacks *cb)
{
    ing->cb = *cb;
}

static struct lora_device *find_device(struct lora_ingest *ing, uint32_t dev_addr)
{
    struct lora_device key = {.dev_addr = dev_addr};
    return bsearch(&key, ing->devices, (size_t)ing->ndevices, sizeof(key), cmp_device);
}

void lora_ingest_restore_fcnt(struct lora_ingest *ing, uint32_t dev_addr, uint32_t fcnt)
{
    struct lora_device *d = find_device(ing, dev_addr);
    if (d) {
        d->has_last = true;
        d->last_fcnt = fcnt;
    }
}

/* ---- bookkeeping ---- */

static void reject(struct lora_ingest *ing, enum lora_reject why, int64_t now_ms, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static void reject(struct lora_ingest *ing, enum lora_reject why, int64_t now_ms, const char *fmt,
                   ...)
{
    ing->counters.rejected[why]++;
    struct gw_complaint *c = &ing->reject_complaints[why];
    uint64_t suppressed = c->suppressed;
    if (!gw_complain(c, now_ms)) {
        return;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gw_warn(MOD, "frame rejected reason=%s %s%s", reject_names[why], msg,
            suppressed ? " (more of these since the last line: see metrics)" : "");
}

static struct lora_forwarder *forwarder_for(struct lora_ingest *ing, uint64_t eui, int64_t now_ms,
                                            int *index)
{
    for (int i = 0; i < ing->nforwarders; i++) {
        if (ing->forwarders[i].eui == eui) {
            *index = i;
            return &ing->forwarders[i];
        }
    }
    int slot = ing->nforwarders;
    if (slot == MAX_FORWARDERS) {
        /* Full (a hostile sender inventing EUIs): reuse the one silent the longest. */
        slot = 0;
        for (int i = 1; i < MAX_FORWARDERS; i++) {
            if (ing->forwarders[i].last_seen_ms < ing->forwarders[slot].last_seen_ms) {
                slot = i;
            }
        }
    } else {
        ing->nforwarders++;
    }
    struct lora_forwarder *f = &ing->forwarders[slot];
    memset(f, 0, sizeof(*f));
    f->eui = eui;
    f->first_seen_ms = now_ms;
    *index = slot;
    return f;
}

/* Counters last_fcnt - i for i < LOSS_BITS: shift the window up to fcnt and mark it. */
static void note_counter(struct lora_device *d, uint32_t fcnt, bool restart)
{
    if (!d->loss_started || restart) {
        memset(d->seen, 0, sizeof(d->seen));
        d->loss_started = true;
        d->loss_first = fcnt;
    } else {
        uint32_t shift = fcnt - d->last_fcnt;
        if (shift >= LOSS_BITS) {
            memset(d->seen, 0, sizeof(d->seen));
        } else if (shift >= 64) {
            d->seen[1] = d->seen[0] << (shift - 64);
            d->seen[0] = 0;
        } else if (shift > 0) {
            d->seen[1] = (d->seen[1] << shift) | (d->seen[0] >> (64 - shift));
            d->seen[0] <<= shift;
        }
    }
    d->seen[0] |= 1;
}

static double frame_loss(const struct lora_device *d, uint32_t fcnt)
{
    uint32_t span = fcnt - d->loss_first + 1;
    int window = span < LOSS_WINDOW ? (int)span : LOSS_WINDOW;
    int received = 0;
    for (int i = 0; i < window; i++) {
        received += (int)((d->seen[i / 64] >> (i % 64)) & 1);
    }
    return 100.0 * (double)(window - received) / (double)window;
}

/* ---- frames ---- */

static struct pending_frame *pending_by_id(struct lora_ingest *ing, uint64_t id)
{
    if (id < ing->head_id || id - ing->head_id >= (uint64_t)ing->npending) {
        return NULL;
    }
    return &ing->pending[(ing->pending_head + (int)(id - ing->head_id)) % ing->cap_pending];
}

/* The frame of this device still waiting for copies, if it is this one. O(1): one per device. */
static struct pending_frame *find_pending(struct lora_ingest *ing, struct lora_device *d,
                                          uint32_t fcnt, const uint8_t mic[4])
{
    if (!d->has_pending) {
        return NULL;
    }
    struct pending_frame *p = pending_by_id(ing, d->pending_id);
    if (!p || p->fcnt != fcnt || memcmp(p->mic, mic, 4) != 0) {
        return NULL;
    }
    return p;
}

static void merge_copy(struct pending_frame *p, const struct gwmp_rxpk *rx, uint64_t eui)
{
    bool known = false;
    for (int i = 0; i < p->neuis; i++) {
        known = known || p->euis[i] == eui;
    }
    if (!known && p->neuis < MAX_COPIES_EUIS) {
        p->euis[p->neuis++] = eui;
    }
    p->reading.forwarders = p->neuis;
    if (rx->rssi > p->reading.rssi) {
        p->reading.rssi = rx->rssi;
    }
    if (rx->has_lsnr && (!p->reading.has_snr || rx->lsnr > p->reading.snr)) {
        p->reading.has_snr = true;
        p->reading.snr = rx->lsnr;
    }
}

static struct pending_frame *add_pending(struct lora_ingest *ing, uint64_t *id)
{
    if (ing->npending == ing->cap_pending) {
        int cap = ing->cap_pending ? ing->cap_pending * 2 : 16;
        struct pending_frame *p = malloc(sizeof(*p) * (size_t)cap);
        if (!p) {
            return NULL;
        }
        for (int i = 0; i < ing->npending; i++) {
            p[i] = ing->pending[(ing->pending_head + i) % ing->cap_pending];
        }
        free(ing->pending);
        ing->pending = p;
        ing->cap_pending = cap;
        ing->pending_head = 0;
    }
    *id = ing->head_id + (uint64_t)ing->npending;
    struct pending_frame *p = &ing->pending[(ing->pending_head + ing->npending) % ing->cap_pending];
    ing->npending++;
    memset(p, 0, sizeof(*p));
    return p;
}

/*
 * The 32-bit counter this frame was signed with: the candidate closest above
 * the last one, else (relax_fcnt) the counter of a device that started over.
 */
static bool find_fcnt(const struct lora_device *d, const struct lw_frame *f, uint32_t *fcnt)
{
    uint32_t c = lw_fcnt_full(f->fcnt16, d->last_fcnt, d->has_last);
    if (lw_verify_mic(d->sensor->lora.nwk_s_key, f, c)) {
        *fcnt = c;
        return true;
    }
    if (d->sensor->lora.relax_fcnt && d->has_last && c != f->fcnt16 &&
        lw_verify_mic(d->sensor->lora.nwk_s_key, f, f->fcnt16)) {
        *fcnt = f->fcnt16;
        return true;
    }
    return false;
}

static void decode(struct lora_ingest *ing, struct lora_device *d, const struct lw_frame *f,
                   uint32_t fcnt, struct pending_frame *p, int64_t now_ms)
{
    struct gw_reading *r = &p->reading;
    if (!f->has_fport || f->fport == 0 || f->frm_len == 0) {
        /* MAC commands only, or an empty frame: a sign of life, no values. */
        return;
    }
    uint8_t plain[LW_MAX_PAYLOAD];
    size_t len = f->frm_len < sizeof(plain) ? f->frm_len : sizeof(plain);
    lw_crypt_payload(d->sensor->lora.app_s_key, d->dev_addr, fcnt, 0, f->frm_payload, len, plain);
    char err[GW_ERR_MAX];
    int rc = gw_decoder_run(d->decoder, plain, len, f->fport, r, err, sizeof(err));
    if (rc == -E2BIG) {
        if (gw_complain(&d->decode_complaint, now_ms)) {
            gw_warn(MOD, "sensor=%s decoder gave more than %d values; the rest are dropped",
                    d->sensor->id, GW_MAX_POINTS);
        }
        return;
    }
    if (rc != 0) {
        p->emit = false;
        reject(ing, LORA_REJ_DECODE, now_ms, "sensor=%s fport=%u fcnt=%" PRIu32 " error=\"%s\"",
               d->sensor->id, f->fport, fcnt, err);
        return;
    }
    if (gw_release(&d->decode_complaint)) {
        gw_info(MOD, "sensor=%s decodes again", d->sensor->id);
    }
}

static void handle_rxpk(struct lora_ingest *ing, const struct gwmp_rxpk *rx, uint64_t eui,
                        int64_t now_ms)
{
    ing->counters.rxpk++;
    if (!rx->valid) {
        reject(ing, LORA_REJ_RXPK, now_ms, "forwarder=%016" PRIX64 " (bad data or size)", eui);
        return;
    }
    if (rx->stat != 1) {
        reject(ing, LORA_REJ_CRC, now_ms, "forwarder=%016" PRIX64 " stat=%d", eui, rx->stat);
        return;
    }
    struct lw_frame f;
    enum lw_error e = lw_parse(rx->data, rx->size, &f);
    if (e != LW_OK) {
        enum lora_reject why = e == LW_ERR_NOT_DATA_UP ? LORA_REJ_NOT_DATA_UP
                               : e == LW_ERR_MAJOR     ? LORA_REJ_MAJOR
                                                       : LORA_REJ_MALFORMED;
        reject(ing, why, now_ms, "forwarder=%016" PRIX64 " size=%zu", eui, rx->size);
        return;
    }
    struct lora_device *d = find_device(ing, f.dev_addr);
    if (!d) {
        reject(ing, LORA_REJ_UNKNOWN_DEVICE, now_ms,
               "dev_addr=%08" PRIX32 " forwarder=%016" PRIX64
               " (not in the config: a neighbour's device, or a sensor missing its lora block)",
               f.dev_addr, eui);
        return;
    }
    int device = (int)(d - ing->devices);
    /* The usual copy from a second forwarder is the very same bytes: merge it without
     * the AES work (any other frame goes through every check). */
    struct pending_frame *p = d->has_pending ? pending_by_id(ing, d->pending_id) : NULL;
    if (p && now_ms < p->first_ms + ing->dedup_ms && p->phy_len == rx->size &&
        memcmp(p->phy, rx->data, rx->size) == 0) {
        ing->counters.duplicates++;
        merge_copy(p, rx, eui);
        return;
    }
    uint32_t fcnt;
    if (!find_fcnt(d, &f, &fcnt)) {
        reject(ing, LORA_REJ_BAD_MIC, now_ms,
               "sensor=%s dev_addr=%08" PRIX32 " fcnt16=%u forwarder=%016" PRIX64
               " (wrong nwk_s_key, or a forged frame)",
               d->sensor->id, f.dev_addr, f.fcnt16, eui);
        return;
    }
    p = find_pending(ing, d, fcnt, f.mic);
    /* Only within the window: how late the caller's timer runs must not change the reading. */
    if (p && now_ms < p->first_ms + ing->dedup_ms) {
        ing->counters.duplicates++;
        merge_copy(p, rx, eui);
        return;
    }
    enum lw_error fc = lw_check_fcnt(fcnt, d->last_fcnt, d->has_last, d->sensor->lora.relax_fcnt);
    if (fc == LW_ERR_REPLAY) {
        bool late_copy = fcnt == d->last_fcnt && memcmp(f.mic, d->last_mic, 4) == 0;
        if (late_copy) {
            reject(ing, LORA_REJ_REPLAY, now_ms,
                   "sensor=%s fcnt=%" PRIu32 " forwarder=%016" PRIX64
                   " (a copy of the last frame %" PRId64 " ms after it: a replay, or a forwarder"
                   " whose backhaul is slower than lora.dedup_ms)",
                   d->sensor->id, fcnt, eui, now_ms - d->last_accepted_ms);
        } else {
            reject(ing, LORA_REJ_REPLAY, now_ms,
                   "sensor=%s fcnt=%" PRIu32 " last=%" PRIu32 " forwarder=%016" PRIX64
                   " (an old frame played back; a device that restarts its counter needs "
                   "relax_fcnt)",
                   d->sensor->id, fcnt, d->last_fcnt, eui);
        }
        return;
    }
    if (fc == LW_ERR_FCNT_GAP) {
        reject(ing, LORA_REJ_FCNT_GAP, now_ms,
               "sensor=%s fcnt=%" PRIu32 " last=%" PRIu32 " (more than %d frames ahead)",
               d->sensor->id, fcnt, d->last_fcnt, LW_MAX_FCNT_GAP);
        return;
    }
    bool restarted = d->has_last && fcnt <= d->last_fcnt;
    if (restarted) {
        ing->counters.relaxed++;
        if (gw_complain(&d->relax_complaint, now_ms)) {
            gw_warn(MOD,
                    "sensor=%s frame counter started over fcnt=%" PRIu32 " last=%" PRIu32
                    "; accepted because of relax_fcnt (a replay would be too)",
                    d->sensor->id, fcnt, d->last_fcnt);
        }
    }
    note_counter(d, fcnt, restarted);
    d->has_last = true;
    d->last_fcnt = fcnt;
    memcpy(d->last_mic, f.mic, 4);
    d->last_accepted_ms = now_ms;
    ing->counters.frames++;
    if (ing->cb.fcnt) {
        ing->cb.fcnt(ing->cb.ctx, d->dev_addr, fcnt);
    }

    uint64_t id;
    p = add_pending(ing, &id);
    if (!p) {
        gw_error(MOD, "out of memory: frame of sensor=%s lost", d->sensor->id);
        return;
    }
    d->has_pending = true;
    d->pending_id = id;
    p->device = device;
    p->fcnt = fcnt;
    memcpy(p->mic, f.mic, 4);
    p->first_ms = now_ms;
    p->emit = true;
    memcpy(p->phy, rx->data, rx->size);
    p->phy_len = rx->size;
    struct gw_reading *r = &p->reading;
    r->sensor_index = d->sensor_index;
    snprintf(r->sensor, sizeof(r->sensor), "%s", d->sensor->id);
    r->ts_ms = now_ms;
    r->status = GW_READING_OK;
    r->has_rssi = true;
    r->rssi = rx->rssi;
    r->has_snr = rx->has_lsnr;
    r->snr = rx->lsnr;
    r->has_fcnt = true;
    r->fcnt = fcnt;
    r->has_frame_loss = true;
    r->frame_loss = frame_loss(d, fcnt);
    p->euis[0] = eui;
    p->neuis = 1;
    r->forwarders = 1;
    decode(ing, d, &f, fcnt, p, now_ms);
}

/* ---- datagrams ---- */

static void forwarder_changed(struct lora_ingest *ing, const struct lora_forwarder *f)
{
    if (ing->cb.forwarder) {
        ing->cb.forwarder(ing->cb.ctx, f);
    }
}

int lora_ingest_datagram(struct lora_ingest *ing, const uint8_t *buf, size_t len, int64_t now_ms,
                         uint8_t ack[4], int *forwarder_index)
{
    *forwarder_index = -1;
    ing->counters.datagrams++;
    if (len > LORA_MAX_DATAGRAM) {
        reject(ing, LORA_REJ_OVERSIZE, now_ms, "len=%zu (limit %d)", len, LORA_MAX_DATAGRAM);
        return 0;
    }
    static _Thread_local struct gwmp_packet pkt; /* ~9 KB: not on the loop thread's stack */
    enum gwmp_error ge = gwmp_parse(buf, len, &pkt);
    switch (ge) {
    case GWMP_OK:
    case GWMP_ERR_JSON:
        break;
    case GWMP_ERR_VERSION:
        reject(ing, LORA_REJ_VERSION, now_ms, "version=%u len=%zu", len > 0 ? buf[0] : 0, len);
        return 0;
    case GWMP_ERR_IDENTIFIER:
        reject(ing, LORA_REJ_IDENTIFIER, now_ms, "identifier=0x%02x len=%zu", len > 3 ? buf[3] : 0,
               len);
        return 0;
    default:
        reject(ing, LORA_REJ_SHORT, now_ms, "len=%zu", len);
        return 0;
    }
    bool has_eui = pkt.identifier == GWMP_PUSH_DATA || pkt.identifier == GWMP_PULL_DATA ||
                   pkt.identifier == GWMP_TX_ACK;
    if (!has_eui) {
        /* PUSH_ACK, PULL_RESP, PULL_ACK go from a server to a forwarder, never to us. */
        reject(ing, LORA_REJ_IDENTIFIER, now_ms, "identifier=0x%02x (server to forwarder)",
               pkt.identifier);
        return 0;
    }
    int fi;
    struct lora_forwarder *f = forwarder_for(ing, pkt.gateway_eui, now_ms, &fi);
    *forwarder_index = fi;
    bool came_online = !f->online;
    f->online = true;
    f->last_seen_ms = now_ms;
    f->version = pkt.version;
    if (came_online) {
        gw_info(MOD, "forwarder=%016" PRIX64 " online version=%u", f->eui, pkt.version);
    }
    int acklen = 0;
    switch (pkt.identifier) {
    case GWMP_PUSH_DATA:
        ing->counters.push_data++;
        acklen = gwmp_ack(&pkt, ack);
        if (ge == GWMP_ERR_JSON) {
            /* Acknowledged all the same: the forwarder only counts ACKs for its ackr. */
            reject(ing, LORA_REJ_JSON, now_ms, "forwarder=%016" PRIX64 " len=%zu", f->eui, len);
            break;
        }
        f->rxpk += (uint64_t)pkt.nrxpk;
        for (int i = 0; i < pkt.nrxpk; i++) {
            handle_rxpk(ing, &pkt.rxpk[i], f->eui, now_ms);
        }
        if (pkt.stat.present) {
            f->has_stat = true;
            f->stat = pkt.stat;
        }
        break;
    case GWMP_PULL_DATA:
        ing->counters.pull_data++;
        f->last_pull_ms = now_ms;
        acklen = gwmp_ack(&pkt, ack);
        break;
    default:
        ing->counters.tx_ack++;
        break;
    }
    if (came_online || pkt.stat.present) {
        forwarder_changed(ing, f);
    }
    return acklen;
}

int64_t lora_ingest_flush(struct lora_ingest *ing, int64_t now_ms, bool force)
{
    int64_t next = INT64_MAX;
    while (ing->npending > 0) {
        struct pending_frame *p = &ing->pending[ing->pending_head];
        int64_t due = p->first_ms + ing->dedup_ms;
        /* first_ms > now: the wall clock stepped back; waiting for it would hold the frame. */
        if (!force && due > now_ms && p->first_ms <= now_ms) {
            next = due;
            break;
        }
        struct lora_device *d = &ing->devices[p->device];
        if (d->has_pending && d->pending_id == ing->head_id) {
            d->has_pending = false;
        }
        if (p->emit) {
            ing->counters.readings++;
            if (ing->cb.reading) {
                ing->cb.reading(ing->cb.ctx, &p->reading);
            }
        }
        ing->pending_head = (ing->pending_head + 1) % ing->cap_pending;
        ing->head_id++;
        ing->npending--;
    }
    for (int i = 0; i < ing->nforwarders; i++) {
        struct lora_forwarder *f = &ing->forwarders[i];
        if (!f->online) {
            continue;
        }
        int64_t due = f->last_seen_ms + ing->offline_ms;
        if (f->last_seen_ms > now_ms) {
            f->last_seen_ms = now_ms; /* the wall clock stepped back */
            due = now_ms + ing->offline_ms;
        }
        if (due <= now_ms) {
            f->online = false;
            gw_warn(MOD, "forwarder=%016" PRIX64 " offline: silent for %" PRId64 " s", f->eui,
                    (now_ms - f->last_seen_ms) / 1000);
            forwarder_changed(ing, f);
        } else if (due < next) {
            next = due;
        }
    }
    return next;
}

const struct lora_counters *lora_ingest_counters(const struct lora_ingest *ing)
{
    return &ing->counters;
}

int lora_ingest_nforwarders(const struct lora_ingest *ing)
{
    return ing->nforwarders;
}

const struct lora_forwarder *lora_ingest_forwarder(const struct lora_ingest *ing, int index)
{
    return index >= 0 && index < ing->nforwarders ? &ing->forwarders[index] : NULL;
}
