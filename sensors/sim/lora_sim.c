/*
 * campusgw-sim's LoRaWAN end devices and packet forwarders, the pure part:
 * which frames go out when, their payload bytes, FCnt, the faults' effects,
 * the radio metadata each forwarder reports, and the GWMP bookkeeping
 * (keepalive and stat timers, acknowledgements). sim_main.c owns the sockets
 * and the clocks. See docs/simulator.md.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sim/scenario.h"

/* CN470 uplink channels 0..7 of the first sub-band: 470.3 + 0.2 * n MHz. */
#define CN470_FIRST_HZ 470300000
#define CN470_STEP_HZ 200000
#define CN470_CHANNELS 8
/* Backhaul skew between two forwarders' copies of one frame. */
#define SKEW_MIN_MS 2
#define SKEW_SPAN_MS 5
#define RSSI_JITTER_DB 1.5
#define SNR_JITTER_DB 1.0

/* splitmix64, as in scenario.c: seedable with anything, plenty for radio jitter. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in -span..span. */
static double jitter(uint64_t *state, double span)
{
    return span * (2.0 * ((double)(rng_next(state) >> 11) * 0x1.0p-53) - 1.0);
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

size_t gw_sim_lora_payload(const struct gw_sim_device *d, bool test, uint8_t out[LW_MAX_PAYLOAD])
{
    switch (d->type) {
    case GW_SIM_SMOKE:
        /* A test-button frame reports smoke as well, as real detectors sound on test. */
        out[0] = (uint8_t)((d->cur.smoke || test ? 0x01 : 0) | (test ? 0x02 : 0));
        out[1] = (uint8_t)d->cur.battery;
        return 2;
    case GW_SIM_DOOR_LORA:
        out[0] = (uint8_t)d->cur.door;
        out[1] = (uint8_t)d->cur.battery;
        return 2;
    case GW_SIM_RAW_LORA:
        memcpy(out, d->cur.payload, d->cur.payload_len);
        return d->cur.payload_len;
    default:
        return 0;
    }
}

/* Radio metadata: one channel for the transmission, each forwarder its own signal. */
static void receive(struct gw_scenario *sc, const struct gw_sim_lora_dev *lo,
                    struct gw_sim_uplink *up)
{
    uint64_t *rng = &sc->lora.rng;
    up->chan = (int)(rng_next(rng) % CN470_CHANNELS);
    up->freq = (double)(CN470_FIRST_HZ + CN470_STEP_HZ * up->chan) / 1e6;
    up->sf = lo->sf;
    int delay = 0;
    for (int f = 0; f < sc->lora.nforwarders; f++) {
        if (!(lo->heard_by & (1u << f))) {
            continue;
        }
        const struct gw_sim_forwarder *fw = &sc->lora.fwd[f];
        struct gw_sim_copy *c = &up->copies[up->ncopies++];
        c->forwarder = f;
        c->delay_ms = delay;
        delay += SKEW_MIN_MS + (int)(rng_next(rng) % SKEW_SPAN_MS);
        /* Forwarders report whole dBm and SNR in tenths. */
        c->rssi = clamp(round(lo->rssi + fw->rssi_offset + jitter(rng, RSSI_JITTER_DB)), -150, 0);
        c->snr = clamp(round((lo->snr + fw->snr_offset + jitter(rng, SNR_JITTER_DB)) * 10) / 10,
                       -30, 20);
    }
}

static int build(struct gw_scenario *sc, int idx, enum gw_sim_uplink_why why,
                 struct gw_sim_uplink *up)
{
    struct gw_sim_device *d = &sc->devices[idx];
    struct gw_sim_lora_dev *lo = &d->lora;
    memset(up, 0, sizeof(*up));
    up->device = idx;
    up->why = why;
    if (why == GW_SIM_UP_REPLAY) {
        memcpy(up->phy, lo->last, lo->last_len);
        up->phy_len = lo->last_len;
        up->fcnt = lo->last_fcnt;
    } else {
        up->test = lo->test;
        up->bad_mic = lo->bad_mic;
        up->payload_len = gw_sim_lora_payload(d, lo->test, up->payload);
        int n =
            lw_build_uplink(up->phy, sizeof(up->phy), false, lo->dev_addr, lo->fcnt, 0, NULL, 0,
                            lo->fport, up->payload, up->payload_len, lo->nwk_s_key, lo->app_s_key);
        if (n < 0) {
            return -EINVAL; /* cannot happen: the payload is at most LW_MAX_PAYLOAD */
        }
        up->phy_len = (size_t)n;
        if (lo->bad_mic) {
            for (size_t k = up->phy_len - 4; k < up->phy_len; k++) {
                up->phy[k] ^= 0xFF; /* every MIC bit wrong: never valid by chance */
            }
        }
        up->fcnt = lo->fcnt++;
        lo->test = false;
        lo->bad_mic = false;
        memcpy(lo->last, up->phy, up->phy_len);
        lo->last_len = up->phy_len;
        lo->last_fcnt = up->fcnt;
    }
    lo->uplinks++;
    receive(sc, lo, up);
    return 1;
}

/* Move the periodic schedule past now_ms; intervals missed while stalled are skipped. */
static void advance_periodic(struct gw_sim_lora_dev *lo, int64_t now_ms)
{
    while (lo->next_ms <= now_ms) {
        lo->next_ms += lo->every_ms;
    }
}

int gw_scenario_lora_next(struct gw_scenario *sc, int64_t now_ms, struct gw_sim_uplink *up)
{
    for (int i = 0; i < sc->ndevices; i++) {
        struct gw_sim_device *d = &sc->devices[i];
        if (!gw_sim_type_is_lora(d->type)) {
            continue;
        }
        struct gw_sim_lora_dev *lo = &d->lora;
        bool silent = d->cur.fault == GW_SIM_FAULT_SILENT;
        if (lo->replay) {
            /* A recorded frame played back: goes out even when the device itself is dead. */
            lo->replay = false;
            return build(sc, i, GW_SIM_UP_REPLAY, up);
        }
        if (lo->send_now) {
            lo->send_now = false;
            if (silent) {
                lo->test = false; /* the press is lost; bad_mic waits for the next frame */
            } else {
                if (lo->next_ms <= now_ms) {
                    advance_periodic(lo, now_ms); /* one frame covers both */
                }
                return build(sc, i, GW_SIM_UP_CHANGE, up);
            }
        }
        if (lo->next_ms <= now_ms) {
            advance_periodic(lo, now_ms);
            if (!silent) {
                return build(sc, i, GW_SIM_UP_PERIODIC, up);
            }
        }
    }
    return 0;
}

int64_t gw_scenario_lora_due_ms(const struct gw_scenario *sc)
{
    int64_t due = -1;
    for (int i = 0; i < sc->ndevices; i++) {
        const struct gw_sim_device *d = &sc->devices[i];
        if (!gw_sim_type_is_lora(d->type)) {
            continue;
        }
        if (d->lora.replay || d->lora.send_now) {
            return INT64_MIN;
        }
        if (due < 0 || d->lora.next_ms < due) {
            due = d->lora.next_ms;
        }
    }
    return due;
}

static bool timer_due(int64_t *next, int64_t interval, int64_t now_ms)
{
    if (*next > now_ms) {
        return false;
    }
    while (*next <= now_ms) {
        *next += interval;
    }
    return true;
}

bool gw_scenario_lora_pull_due(struct gw_scenario *sc, int64_t now_ms)
{
    return sc->lora.present && timer_due(&sc->lora.next_pull_ms, sc->lora.keepalive_ms, now_ms);
}

bool gw_scenario_lora_stat_due(struct gw_scenario *sc, int64_t now_ms)
{
    return sc->lora.present && timer_due(&sc->lora.next_stat_ms, sc->lora.stat_ms, now_ms);
}

int64_t gw_scenario_lora_timer_ms(const struct gw_scenario *sc)
{
    if (!sc->lora.present) {
        return -1;
    }
    return sc->lora.next_pull_ms < sc->lora.next_stat_ms ? sc->lora.next_pull_ms
                                                         : sc->lora.next_stat_ms;
}

void gw_sim_lora_rxpk(const struct gw_sim_uplink *up, int i, uint32_t tmst, const char *time,
                      struct gwmp_rxpk *out)
{
    const struct gw_sim_copy *c = &up->copies[i];
    memset(out, 0, sizeof(*out));
    if (time != NULL) {
        out->has_time = true;
        snprintf(out->time, sizeof(out->time), "%s", time);
    }
    out->tmst = tmst;
    out->freq = up->freq;
    out->chan = up->chan;
    out->rfch = 0;
    out->stat = 1; /* CRC ok */
    snprintf(out->modu, sizeof(out->modu), "LORA");
    snprintf(out->datr, sizeof(out->datr), "SF%dBW125", up->sf);
    snprintf(out->codr, sizeof(out->codr), "4/5");
    out->rssi = c->rssi;
    out->lsnr = c->snr;
    out->has_lsnr = true;
    memcpy(out->data, up->phy, up->phy_len);
    out->size = up->phy_len;
    out->valid = true;
}

static int header(uint8_t out[12], uint8_t version, uint16_t token, uint8_t id, uint64_t eui)
{
    out[0] = version;
    out[1] = (uint8_t)(token >> 8);
    out[2] = (uint8_t)token;
    out[3] = id;
    for (int i = 0; i < 8; i++) {
        out[4 + i] = (uint8_t)(eui >> (56 - 8 * i));
    }
    return 12;
}

int gw_sim_gwmp_pull_data(uint8_t out[12], uint8_t version, uint16_t token, uint64_t eui)
{
    return header(out, version, token, GWMP_PULL_DATA, eui);
}

int gw_sim_gwmp_tx_ack(uint8_t out[12], uint8_t version, uint16_t token, uint64_t eui)
{
    return header(out, version, token, GWMP_TX_ACK, eui);
}

int gw_sim_gwmp_stat(uint8_t *out, size_t size, uint8_t version, uint16_t token, uint64_t eui,
                     const struct gw_sim_fwd_stat *st)
{
    if (size < 12 || !isfinite(st->ackr)) {
        return -1;
    }
    /* Our own time text, but keep the JSON valid whatever it holds. */
    for (const char *c = st->time; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) {
            return -1;
        }
    }
    header(out, version, token, GWMP_PUSH_DATA, eui);
    int n = snprintf((char *)out + 12, size - 12,
                     "{\"stat\":{\"time\":\"%s\",\"rxnb\":%u,\"rxok\":%u,\"rxfw\":%u,\"ackr\":%.1f,"
                     "\"dwnb\":%u,\"txnb\":%u}}",
                     st->time, (unsigned)st->rxnb, (unsigned)st->rxok, (unsigned)st->rxfw, st->ackr,
                     (unsigned)st->dwnb, (unsigned)st->txnb);
    if (n < 0 || (size_t)n >= size - 12) {
        return -1;
    }
    return 12 + n;
}

void gw_sim_acks_sent(struct gw_sim_acks *a, uint8_t identifier, uint16_t token, int64_t now_ms)
{
    int slot = -1;
    for (int i = 0; i < GW_SIM_ACK_SLOTS; i++) {
        if (!a->slot[i].used) {
            slot = i;
            break;
        }
        if (slot < 0 || a->slot[i].sent_ms < a->slot[slot].sent_ms) {
            slot = i;
        }
    }
    if (a->slot[slot].used) {
        a->missing++; /* the oldest gives way */
    }
    a->slot[slot].used = true;
    a->slot[slot].sent_ms = now_ms;
    a->slot[slot].token = token;
    a->slot[slot].identifier = identifier;
}

bool gw_sim_acks_received(struct gw_sim_acks *a, uint8_t version, uint8_t want_version,
                          uint8_t identifier, uint16_t token)
{
    uint8_t sent = identifier == GWMP_PUSH_ACK   ? GWMP_PUSH_DATA
                   : identifier == GWMP_PULL_ACK ? GWMP_PULL_DATA
                                                 : 0xFF;
    if (version == want_version && sent != 0xFF) {
        for (int i = 0; i < GW_SIM_ACK_SLOTS; i++) {
            if (a->slot[i].used && a->slot[i].token == token && a->slot[i].identifier == sent) {
                a->slot[i].used = false;
                if (sent == GWMP_PUSH_DATA) {
                    a->push_acked++;
                } else {
                    a->pull_acked++;
                }
                return true;
            }
        }
    }
    a->unexpected++;
    return false;
}

int gw_sim_acks_expire(struct gw_sim_acks *a, int64_t now_ms, int64_t timeout_ms)
{
    int n = 0;
    for (int i = 0; i < GW_SIM_ACK_SLOTS; i++) {
        if (a->slot[i].used && a->slot[i].sent_ms + timeout_ms <= now_ms) {
            a->slot[i].used = false;
            a->missing++;
            n++;
        }
    }
    return n;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int gw_sim_parse_hex(const char *hex, uint8_t *out, size_t max, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > max) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (nibble(hex[i]) < 0) {
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < n / 2; i++) {
        out[i] = (uint8_t)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    }
    *len = n / 2;
    return 0;
}

int gw_sim_parse_eui(const char *hex, uint64_t *out)
{
    uint8_t b[8];
    size_t n;
    if (gw_sim_parse_hex(hex, b, sizeof(b), &n) < 0 || n != sizeof(b)) {
        return -EINVAL;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | b[i];
    }
    *out = v;
    return 0;
}
