/*
 * libFuzzer target for the whole LoRa ingest path (scripts/fuzz):
 * lora_ingest_datagram + lora_ingest_flush on virtual time, with a config
 * loaded by gw_config_load that holds two ABP devices with known keys:
 *   A  26011BDA  layout codec (smoke, battery, temperature on FPort 2), relax_fcnt = false
 *   B  26011BDB  Cayenne LPP, relax_fcnt = true
 * Random datagrams almost never carry a valid MIC, so the input is read as a
 * list of operations, most of which build MIC-valid frames; codecs, dedup,
 * FCnt reconstruction, replay, gap and relax are then reached. Each operation
 * is an opcode byte (taken modulo 5), then its arguments; bytes past the end
 * of the input read as 0.
 *
 *   0 RAW      len (u16 BE), then len bytes (or what is left): one datagram as is
 *   1 UPLINK   dev (u8): bit 0 A/B, bit 1 unknown DevAddr, bit 2 the other device's keys
 *              fcnt (u32 BE), fport (u8; 255: no FPort), fctrl (u8; low nibble: FOpts length)
 *              flags (u8): bits 0-1 copies - 1; bit 2 copies as rxpk of one datagram (antennas
 *                of one forwarder) rather than one datagram per forwarder; bit 3 first copy
 *                with a CRC error; bit 4 GWMP version 1; bit 5 corrupt one byte of the first
 *                datagram (then u16 BE position, u8 xor mask); bit 6 confirmed uplink
 *              eui (u8): the first forwarder (0xAA555A00000000xx; copies take the next ones)
 *              plen (u8), then plen payload bytes
 *   2 TIME     delta (s16 BE) x 16 ms (the clock may step back), then flush
 *   3 FLUSH    flush with force
 *   4 RESTORE  dev (u8), fcnt (u32 BE): lora_ingest_restore_fcnt, before the first datagram only
 *
 * Checked besides memory errors (ASan/UBSan): every datagram is counted once
 * (PUSH_DATA, PULL_DATA, TX_ACK or a datagram-level reject); every rxpk ends
 * as exactly one of frame, duplicate or rxpk-level reject; ACKs echo version
 * and token; the forwarder table stays bounded; callbacks agree with the
 * counters (readings <= frames, and after a forced flush frames == readings +
 * decode rejects, device A's layout never failing); readings are well formed
 * and A's FCnt only grows. For built frames the outcome is predicted from
 * the spec: CRC rejects, unknown device, bad MIC with the wrong keys, and for
 * device A acceptance exactly when the counter is new and within the gap
 * (one frame, the other copies duplicates, heard by as many forwarders).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "lora/gwmp.h"
#include "lora/lora_ingest.h"
#include "lora/lorawan.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_lora_ingest: %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define T0_MS 1700000000000LL
#define EUI_BASE 0xAA555A0000000000ULL
#define MAX_COPIES 4
#define MAX_FORWARDERS 64 /* lora_ingest.c's table */
#define MAX_COPY_EUIS 8   /* forwarders one reading can name */

#define A_ADDR 0x26011BDAu
#define B_ADDR 0x26011BDBu
#define A_NWK "000102030405060708090A0B0C0D0E0F"
#define A_APP "F0E1D2C3B4A5968778695A4B3C2D1E0F"
#define B_NWK "101112131415161718191A1B1C1D1E1F"
#define B_APP "202122232425262728292A2B2C2D2E2F"

static const char CONFIG_FMT[] =
    "site = { district = \"d1\"; school = \"s1\"; name = \"LoRa fuzz\"; };\n"
    "state_dir = \"%s\";\n"
    "lora = { listen = \"127.0.0.1:1700\"; dedup_ms = 200; forwarder_offline_s = 120; };\n"
    "profiles = {\n"
    "  smoke_x = { codec = \"layout\"; fields = (\n"
    "      { name = \"smoke\"; byte = 0; bit = 0; type = \"bool\"; },\n"
    "      { name = \"battery\"; byte = 1; type = \"u8\"; unit = \"%%\"; },\n"
    "      { name = \"temperature\"; byte = 2; type = \"s16be\"; scale = 0.1; fport = 2; } ); };\n"
    "  lpp = { codec = \"cayenne_lpp\"; };\n"
    "};\n"
    "sensors = (\n"
    "  { id = \"smoke-a\"; kind = \"smoke\"; profile = \"smoke_x\"; expect_every_s = 60;\n"
    "    lora = { dev_addr = \"26011BDA\"; nwk_s_key = \"" A_NWK "\"; app_s_key = \"" A_APP "\";\n"
    "             relax_fcnt = false; }; },\n"
    "  { id = \"tank-b\"; kind = \"tank\"; profile = \"lpp\"; expect_every_s = 60;\n"
    "    lora = { dev_addr = \"26011BDB\"; nwk_s_key = \"" B_NWK "\"; app_s_key = \"" B_APP "\";\n"
    "             relax_fcnt = true; }; }\n"
    ");\n";

struct device {
    uint32_t addr;
    uint8_t nwk[LW_KEY_LEN], app[LW_KEY_LEN];
    int sensor_index;
};

static struct gw_config *cfg;
static struct device devices[2];

/* What one input has seen through the callbacks. */
struct seen {
    uint64_t readings, fcnt_calls;
    uint64_t frames_a, readings_a;
    bool has_last[2];
    uint32_t last[2];
    bool has_reading_a;
    uint32_t last_reading_fcnt_a;
    /* The last frame of A predicted accepted: its reading must show at least this. */
    bool expect_a;
    uint32_t expect_fcnt;
    int expect_forwarders;
    double expect_rssi;
};

static int device_of(uint32_t addr)
{
    return addr == A_ADDR ? 0 : addr == B_ADDR ? 1 : -1;
}

static void on_reading(void *ctx, const struct gw_reading *r)
{
    struct seen *s = ctx;
    s->readings++;
    CHECK(r->sensor_index == devices[0].sensor_index || r->sensor_index == devices[1].sensor_index);
    CHECK(strcmp(r->sensor, cfg->sensors[r->sensor_index].id) == 0);
    CHECK(r->status == GW_READING_OK);
    CHECK(r->npoints >= 0 && r->npoints <= GW_MAX_POINTS);
    CHECK(r->forwarders >= 1 && r->forwarders <= MAX_COPY_EUIS);
    CHECK(r->has_fcnt && r->has_rssi && r->has_frame_loss);
    CHECK(r->frame_loss >= 0.0 && r->frame_loss <= 100.0);
    for (int i = 0; i < r->npoints; i++) {
        CHECK(strnlen(r->points[i].name, GW_NAME_MAX) < GW_NAME_MAX);
    }
    if (r->sensor_index != devices[0].sensor_index) {
        return;
    }
    s->readings_a++;
    /* relax_fcnt is off: each reading of A has a higher counter than the one before. */
    CHECK(!s->has_reading_a || r->fcnt > s->last_reading_fcnt_a);
    s->has_reading_a = true;
    s->last_reading_fcnt_a = r->fcnt;
    if (s->expect_a && r->fcnt == s->expect_fcnt) {
        /* Raw copies of the same frame may add forwarders and a better RSSI, never remove. */
        CHECK(r->forwarders >= s->expect_forwarders);
        CHECK(r->rssi >= s->expect_rssi);
        s->expect_a = false;
    }
}

static void on_fcnt(void *ctx, uint32_t dev_addr, uint32_t fcnt)
{
    struct seen *s = ctx;
    int d = device_of(dev_addr);
    CHECK(d >= 0);
    s->fcnt_calls++;
    s->frames_a += d == 0;
    s->has_last[d] = true;
    s->last[d] = fcnt;
}

static void on_forwarder(void *ctx, const struct lora_forwarder *f)
{
    (void)ctx;
    /* Only a parsed PUSH_DATA, PULL_DATA or TX_ACK makes or updates a forwarder. */
    CHECK(f->version == 1 || f->version == 2);
    CHECK(!f->has_stat || strnlen(f->stat.time, sizeof(f->stat.time)) < sizeof(f->stat.time));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gw_log_set_level(GW_LOG_ERROR); /* every input starts afresh: warnings would flood */
    char dir[] = "/tmp/gw-fuzz-lora-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64], text[sizeof(CONFIG_FMT) + 64];
    snprintf(path, sizeof(path), "%s/gw.cfg", dir);
    snprintf(text, sizeof(text), CONFIG_FMT, dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
    cfg = gw_config_load(path, stderr);
    unlink(path);
    rmdir(dir);
    CHECK(cfg != NULL);
    const uint32_t addrs[2] = {A_ADDR, B_ADDR};
    const char *keys[2][2] = {{A_NWK, A_APP}, {B_NWK, B_APP}};
    for (int d = 0; d < 2; d++) {
        devices[d].addr = addrs[d];
        CHECK(lw_parse_key(keys[d][0], devices[d].nwk) == 0);
        CHECK(lw_parse_key(keys[d][1], devices[d].app) == 0);
        devices[d].sensor_index = -1;
        for (int i = 0; i < cfg->nsensors; i++) {
            if (cfg->sensors[i].lora.enabled && cfg->sensors[i].lora.dev_addr == addrs[d]) {
                devices[d].sensor_index = i;
            }
        }
        CHECK(devices[d].sensor_index >= 0);
    }
    return 0;
}

/* ---- reading the input ---- */

struct input {
    const uint8_t *p;
    size_t left;
};

static uint8_t u8(struct input *in)
{
    if (in->left == 0) {
        return 0;
    }
    in->left--;
    return *in->p++;
}

static uint16_t u16(struct input *in)
{
    uint16_t hi = u8(in);
    return (uint16_t)(hi << 8 | u8(in));
}

static uint32_t u32(struct input *in)
{
    uint32_t hi = u16(in);
    return hi << 16 | u16(in);
}

/* ---- one datagram, with the accounting every datagram must satisfy ---- */

static const enum lora_reject datagram_rejects[] = {LORA_REJ_SHORT, LORA_REJ_VERSION,
                                                    LORA_REJ_IDENTIFIER, LORA_REJ_OVERSIZE};
static const enum lora_reject rxpk_rejects[] = {
    LORA_REJ_RXPK,    LORA_REJ_CRC,    LORA_REJ_MALFORMED, LORA_REJ_NOT_DATA_UP,    LORA_REJ_MAJOR,
    LORA_REJ_BAD_MIC, LORA_REJ_REPLAY, LORA_REJ_FCNT_GAP,  LORA_REJ_UNKNOWN_DEVICE,
};

static uint64_t sum(const struct lora_counters *c, const enum lora_reject *r, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += c->rejected[r[i]];
    }
    return total;
}

static void check_counters(const struct lora_ingest *ing, const struct seen *s)
{
    const struct lora_counters *c = lora_ingest_counters(ing);
    CHECK(c->readings == s->readings);
    CHECK(c->frames == s->fcnt_calls);
    CHECK(c->readings <= c->frames);
    CHECK(c->rejected[LORA_REJ_DECODE] <= c->frames);
    CHECK(c->readings + c->rejected[LORA_REJ_DECODE] <= c->frames);
    CHECK(c->relaxed <= c->frames);
    CHECK(s->readings_a <= s->frames_a);
    CHECK(c->datagrams ==
          c->push_data + c->pull_data + c->tx_ack +
              sum(c, datagram_rejects, sizeof(datagram_rejects) / sizeof(datagram_rejects[0])));
    CHECK(c->rejected[LORA_REJ_JSON] <= c->push_data);
    CHECK(c->rxpk == c->frames + c->duplicates +
                         sum(c, rxpk_rejects, sizeof(rxpk_rejects) / sizeof(rxpk_rejects[0])));
    int n = lora_ingest_nforwarders(ing);
    CHECK(n >= 0 && n <= MAX_FORWARDERS);
    CHECK(lora_ingest_forwarder(ing, n) == NULL && lora_ingest_forwarder(ing, -1) == NULL);
}

/* Returns the ACK length; checks it against the datagram. */
static int feed(struct lora_ingest *ing, const struct seen *s, const uint8_t *buf, size_t len,
                int64_t now)
{
    uint8_t ack[4];
    int fi = -2;
    uint64_t before = lora_ingest_counters(ing)->datagrams;
    int acklen = lora_ingest_datagram(ing, buf, len, now, ack, &fi);
    CHECK(lora_ingest_counters(ing)->datagrams == before + 1);
    CHECK(acklen == 0 || acklen == 4);
    CHECK(fi == -1 || (fi >= 0 && fi < lora_ingest_nforwarders(ing)));
    if (fi >= 0) {
        /* Only datagrams that carry an EUI name a forwarder, and it is that EUI. */
        CHECK(len >= 12 &&
              (buf[3] == GWMP_PUSH_DATA || buf[3] == GWMP_PULL_DATA || buf[3] == GWMP_TX_ACK));
        uint64_t eui = 0;
        for (int i = 0; i < 8; i++) {
            eui = eui << 8 | buf[4 + i];
        }
        const struct lora_forwarder *f = lora_ingest_forwarder(ing, fi);
        CHECK(f != NULL && f->eui == eui && f->online && f->last_seen_ms == now);
    }
    if (acklen == 4) {
        CHECK(fi >= 0);
        CHECK(ack[0] == buf[0] && ack[1] == buf[1] && ack[2] == buf[2]);
        CHECK((buf[3] == GWMP_PUSH_DATA && ack[3] == GWMP_PUSH_ACK) ||
              (buf[3] == GWMP_PULL_DATA && ack[3] == GWMP_PULL_ACK));
    }
    check_counters(ing, s);
    return acklen;
}

/* ---- operations ---- */

static void op_uplink(struct lora_ingest *ing, struct seen *s, struct input *in, int64_t now)
{
    static uint8_t dgram[GWMP_MAX_RXPK * 1024];
    uint8_t dev = u8(in);
    uint32_t fcnt = u32(in);
    uint8_t fport_byte = u8(in);
    uint8_t fctrl = u8(in);
    uint8_t flags = u8(in);
    uint16_t corrupt_pos = 0;
    uint8_t corrupt_mask = 0;
    if (flags & 0x20) {
        corrupt_pos = u16(in);
        corrupt_mask = u8(in) | 0x01;
    }
    uint8_t eui_low = u8(in);
    uint8_t payload[LW_MAX_PAYLOAD];
    size_t plen = u8(in);
    for (size_t i = 0; i < plen; i++) {
        payload[i < sizeof(payload) ? i : 0] = u8(in);
    }

    int d = dev & 1;
    bool unknown = dev & 2, wrong_keys = dev & 4;
    const struct device *keys = &devices[wrong_keys ? !d : d];
    uint32_t addr = unknown ? devices[d].addr + 0x100 : devices[d].addr;
    int fport = fport_byte == 255 ? -1 : fport_byte;
    size_t fopts_len = fctrl & 0x0f;
    uint8_t fopts[15] = {0x02, 0x03, 0x06};
    if (fport < 0) {
        plen = 0;
    }
    if (fport == 0) {
        fopts_len = 0; /* MAC commands go in FOpts or on port 0, never both */
    }
    size_t room = LW_MAX_PAYLOAD - fopts_len;
    if (plen > room) {
        plen = room;
    }
    struct gwmp_rxpk rx[MAX_COPIES];
    memset(rx, 0, sizeof(rx));
    int len = lw_build_uplink(rx[0].data, sizeof(rx[0].data), flags & 0x40, addr, fcnt, fctrl,
                              fopts, fopts_len, fport, payload, plen, keys->nwk, keys->app);
    CHECK(len > 0);
    struct lw_frame parsed;
    CHECK(lw_parse(rx[0].data, (size_t)len, &parsed) == LW_OK); /* build and parse agree */
    CHECK(parsed.dev_addr == addr && parsed.fcnt16 == (uint16_t)fcnt);

    int copies = (flags & 3) + 1;
    bool one_datagram = flags & 0x04, crc_error = flags & 0x08;
    uint8_t version = flags & 0x10 ? 1 : 2;
    double best_rssi = -1000;
    for (int i = 0; i < copies; i++) {
        rx[i].tmst = 1000u * (uint32_t)i;
        rx[i].freq = 868.1;
        rx[i].stat = i == 0 && crc_error ? -1 : 1;
        snprintf(rx[i].modu, sizeof(rx[i].modu), "LORA");
        snprintf(rx[i].datr, sizeof(rx[i].datr), "SF%dBW125", 7 + i);
        snprintf(rx[i].codr, sizeof(rx[i].codr), "4/5");
        rx[i].rssi = -110 + 7 * ((i + eui_low) % 5);
        rx[i].lsnr = 5.5 - i;
        rx[i].has_lsnr = true;
        memcpy(rx[i].data, rx[0].data, (size_t)len);
        rx[i].size = (size_t)len;
        rx[i].valid = true;
        if (rx[i].stat == 1 && rx[i].rssi > best_rssi) {
            best_rssi = rx[i].rssi;
        }
    }
    int ok_copies = copies - (crc_error ? 1 : 0);

    /* The outcome the spec gives, for frames no byte of which was touched. */
    const struct lora_counters *c = lora_ingest_counters(ing);
    uint64_t frames0 = c->frames, dup0 = c->duplicates, crc0 = c->rejected[LORA_REJ_CRC];
    uint64_t unknown0 = c->rejected[LORA_REJ_UNKNOWN_DEVICE], mic0 = c->rejected[LORA_REJ_BAD_MIC];
    bool has_last = s->has_last[0];
    uint32_t last = s->last[0];
    bool accept_a = d == 0 && !unknown && !wrong_keys && ok_copies > 0 &&
                    (has_last ? fcnt > last && fcnt - last <= LW_MAX_FCNT_GAP : fcnt <= 0xffff);

    bool corrupted = false;
    if (one_datagram) {
        int n = gwmp_build_push_data(dgram, sizeof(dgram), version, (uint16_t)fcnt,
                                     EUI_BASE | eui_low, rx, copies);
        CHECK(n > 12);
        if (corrupt_mask) {
            dgram[corrupt_pos % (unsigned)n] ^= corrupt_mask;
            corrupted = true;
        }
        int acklen = feed(ing, s, dgram, (size_t)n, now);
        CHECK(corrupted || acklen == 4);
    } else {
        for (int i = 0; i < copies; i++) {
            uint64_t eui = EUI_BASE | (uint8_t)(eui_low + i);
            int n = gwmp_build_push_data(dgram, sizeof(dgram), version, (uint16_t)(fcnt + i), eui,
                                         &rx[i], 1);
            CHECK(n > 12);
            if (i == 0 && corrupt_mask) {
                dgram[corrupt_pos % (unsigned)n] ^= corrupt_mask;
                corrupted = true;
            }
            int acklen = feed(ing, s, dgram, (size_t)n, now);
            CHECK((i == 0 && corrupted) || acklen == 4);
        }
    }
    if (corrupted) {
        return; /* anything may follow from a flipped byte: the general checks held */
    }
    c = lora_ingest_counters(ing);
    CHECK(c->rejected[LORA_REJ_CRC] == crc0 + (crc_error ? 1 : 0));
    if (unknown) {
        CHECK(c->rejected[LORA_REJ_UNKNOWN_DEVICE] == unknown0 + (uint64_t)ok_copies);
        CHECK(c->frames == frames0);
    } else if (wrong_keys) {
        CHECK(c->rejected[LORA_REJ_BAD_MIC] == mic0 + (uint64_t)ok_copies);
        CHECK(c->frames == frames0);
    } else if (d == 0 && accept_a) {
        CHECK(c->frames == frames0 + 1);
        CHECK(c->duplicates == dup0 + (uint64_t)(ok_copies - 1));
        CHECK(s->has_last[0] && s->last[0] == fcnt);
        s->expect_a = true;
        s->expect_fcnt = fcnt;
        s->expect_forwarders = one_datagram ? 1 : ok_copies;
        if (s->expect_forwarders > MAX_COPY_EUIS) {
            s->expect_forwarders = MAX_COPY_EUIS;
        }
        s->expect_rssi = best_rssi;
    } else if (d == 0) {
        CHECK(c->frames == frames0); /* old, replayed, too far ahead, or a copy */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct lora_ingest *ing = lora_ingest_new(cfg, err, sizeof(err));
    CHECK(ing != NULL);
    struct seen s;
    memset(&s, 0, sizeof(s));
    struct lora_ingest_callbacks cb = {
        .reading = on_reading, .fcnt = on_fcnt, .forwarder = on_forwarder, .ctx = &s};
    lora_ingest_set_callbacks(ing, &cb);

    struct input in = {data, size};
    int64_t now = T0_MS;
    while (in.left > 0) {
        switch (u8(&in) % 5) {
        case 0: {
            size_t len = u16(&in);
            if (len > in.left) {
                len = in.left;
            }
            feed(ing, &s, in.p, len, now);
            in.p += len;
            in.left -= len;
            break;
        }
        case 1:
            op_uplink(ing, &s, &in, now);
            break;
        case 2: {
            now += (int16_t)u16(&in) * 16;
            int64_t next = lora_ingest_flush(ing, now, false);
            CHECK(next > now);
            check_counters(ing, &s);
            break;
        }
        case 3: {
            int64_t next = lora_ingest_flush(ing, now, true);
            CHECK(next > now);
            const struct lora_counters *c = lora_ingest_counters(ing);
            /* Nothing is pending any more: every frame became a reading or a decode reject. */
            CHECK(c->frames == c->readings + c->rejected[LORA_REJ_DECODE]);
            CHECK(s.readings_a == s.frames_a); /* the layout codec does not fail a frame */
            check_counters(ing, &s);
            break;
        }
        default: {
            int d = u8(&in) & 1;
            uint32_t fcnt = u32(&in);
            if (lora_ingest_counters(ing)->datagrams == 0) {
                lora_ingest_restore_fcnt(ing, devices[d].addr, fcnt);
                s.has_last[d] = true;
                s.last[d] = fcnt;
            }
            break;
        }
        }
    }
    lora_ingest_flush(ing, now, true);
    const struct lora_counters *c = lora_ingest_counters(ing);
    CHECK(c->frames == c->readings + c->rejected[LORA_REJ_DECODE]);
    CHECK(s.readings_a == s.frames_a);
    CHECK(!s.expect_a); /* the predicted frame came out, with its copies */
    check_counters(ing, &s);
    lora_ingest_free(ing);
    return 0;
}
