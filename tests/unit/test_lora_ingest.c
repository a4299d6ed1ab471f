/*
 * sensors/lora/lora_ingest.c: from packet-forwarder datagrams to readings, on
 * virtual time. A real config (written to a temp dir and loaded with
 * gw_config_load) holds a Modbus sensor first (so sensor indices are config
 * indices, not device indices), two layout smoke detectors (one with
 * relax_fcnt), a Cayenne LPP tank and a JS device. Frames are built with
 * lw_build_uplink and datagrams with gwmp_build_push_data (or by hand when a
 * test needs a stat report or a broken rxpk).
 *
 * Covered: ACK bytes, every reject reason, deduplication across forwarders
 * and antennas, the dedup window and flush deadlines, FCnt roll-over,
 * restore, replay, gap and relax, frame loss, the forwarder table.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "lora/gwmp.h"
#include "lora/lora_ingest.h"
#include "lora/lorawan.h"

#define assert_near(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-9)

#define T0 1700000000000LL /* virtual Unix ms */
#define DEDUP_MS 200
#define OFFLINE_MS (120 * 1000LL)

#define EUI_A 0xAA555A0000000001ULL
#define EUI_B 0xAA555A0000000002ULL
#define EUI_C 0xAA555A0000000003ULL

/* Config indices of the sensors below. */
#define IDX_SMOKE1 1
#define IDX_SMOKE2 2
#define IDX_TANK 3
#define IDX_VENDOR 4

#define SMOKE1_ADDR 0x26011BDAu
#define SMOKE2_ADDR 0x26011BDBu
#define TANK_ADDR 0x26011BDCu
#define VENDOR_ADDR 0x26011BDDu

/* Every device gets keys of its own: a frame signed with another device's key must fail. */
#define SMOKE1_NWK "000102030405060708090A0B0C0D0E0F"
#define SMOKE1_APP "F0E1D2C3B4A5968778695A4B3C2D1E0F"
#define SMOKE2_NWK "101112131415161718191A1B1C1D1E1F"
#define SMOKE2_APP "202122232425262728292A2B2C2D2E2F"
#define TANK_NWK "303132333435363738393A3B3C3D3E3F"
#define TANK_APP "404142434445464748494A4B4C4D4E4F"
#define VENDOR_NWK "505152535455565758595A5B5C5D5E5F"
#define VENDOR_APP "606162636465666768696A6B6C6D6E6F"

static const char VENDOR_JS[] = "function decodeUplink(input) {\n"
                                "  return { data: { level: input.bytes[0] * 2 } };\n"
                                "}\n";

static const char CONFIG_FMT[] =
    "site = { district = \"d1\"; school = \"s1\"; name = \"LoRa test\"; };\n"
    "state_dir = \"%s\";\n"
    "lora = { listen = \"127.0.0.1:1700\"; dedup_ms = 200; forwarder_offline_s = 120; };\n"
    "modbus = ( { name = \"plc\"; tcp = \"127.0.0.1:1502\"; } );\n"
    "profiles = {\n"
    "  hydrant = { points = ( { name = \"pressure\"; table = \"holding\"; address = 0;\n"
    "                           type = \"u16\"; } ); };\n"
    "  smoke_x = { codec = \"layout\"; fields = (\n"
    "      { name = \"smoke\"; byte = 0; bit = 0; type = \"bool\"; },\n"
    "      { name = \"battery\"; byte = 1; type = \"u8\"; unit = \"%%\"; } ); };\n"
    "  lpp = { codec = \"cayenne_lpp\"; };\n"
    "  vendor = { codec = \"js\"; script = \"vendor.js\"; };\n"
    "};\n"
    "sensors = (\n"
    "  { id = \"hydrant-1\"; kind = \"hydrant_pressure\"; profile = \"hydrant\"; modbus = "
    "\"plc\";\n"
    "    unit_id = 1; },\n"
    "  { id = \"smoke-1\"; kind = \"smoke\"; profile = \"smoke_x\"; expect_every_s = 60;\n"
    "    lora = { dev_addr = \"26011BDA\"; nwk_s_key = \"" SMOKE1_NWK "\";\n"
    "             app_s_key = \"" SMOKE1_APP "\"; relax_fcnt = false; }; },\n"
    "  { id = \"smoke-2\"; kind = \"smoke\"; profile = \"smoke_x\"; expect_every_s = 60;\n"
    "    lora = { dev_addr = \"26011BDB\"; nwk_s_key = \"" SMOKE2_NWK "\";\n"
    "             app_s_key = \"" SMOKE2_APP "\"; relax_fcnt = true; }; },\n"
    "  { id = \"tank-1\"; kind = \"tank\"; profile = \"lpp\"; expect_every_s = 60;\n"
    "    lora = { dev_addr = \"26011BDC\"; nwk_s_key = \"" TANK_NWK "\";\n"
    "             app_s_key = \"" TANK_APP "\"; }; },\n"
    "  { id = \"vendor-1\"; kind = \"tank\"; profile = \"vendor\"; expect_every_s = 60;\n"
    "    lora = { dev_addr = \"26011BDD\"; nwk_s_key = \"" VENDOR_NWK "\";\n"
    "             app_s_key = \"" VENDOR_APP "\"; }; }\n"
    ");\n";

struct dev {
    uint32_t addr;
    uint8_t nwk[LW_KEY_LEN], app[LW_KEY_LEN];
};

#define MAX_SEEN 64

struct fcnt_call {
    uint32_t dev_addr, fcnt;
};

struct fx {
    char dir[64];
    char cfg_path[128];
    char js_path[128];
    struct gw_config *cfg;
    struct lora_ingest *ing;
    struct dev smoke1, smoke2, tank, vendor;
    /* what the callbacks saw (the first MAX_SEEN of each; the counts go on) */
    int nreadings;
    struct gw_reading readings[MAX_SEEN];
    struct gw_reading last;
    int nfcnt;
    struct fcnt_call fcnt[MAX_SEEN];
    int nfwd;
    struct lora_forwarder fwd[MAX_SEEN];
};

/* ---- callbacks ------------------------------------------------------------------------ */

static void on_reading(void *ctx, const struct gw_reading *r)
{
    struct fx *f = ctx;
    if (f->nreadings < MAX_SEEN) {
        f->readings[f->nreadings] = *r;
    }
    f->nreadings++;
    f->last = *r;
}

static void on_fcnt(void *ctx, uint32_t dev_addr, uint32_t fcnt)
{
    struct fx *f = ctx;
    if (f->nfcnt < MAX_SEEN) {
        f->fcnt[f->nfcnt] = (struct fcnt_call){dev_addr, fcnt};
    }
    f->nfcnt++;
}

static void on_forwarder(void *ctx, const struct lora_forwarder *fw)
{
    struct fx *f = ctx;
    if (f->nfwd < MAX_SEEN) {
        f->fwd[f->nfwd] = *fw;
    }
    f->nfwd++;
}

/* ---- fixture -------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

static void dev_init(struct dev *d, uint32_t addr, const char *nwk, const char *app)
{
    d->addr = addr;
    assert_int_equal(lw_parse_key(nwk, d->nwk), 0);
    assert_int_equal(lw_parse_key(app, d->app), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/gw-test-lora-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cfg_path, sizeof(f->cfg_path), "%s/gw.cfg", f->dir);
    snprintf(f->js_path, sizeof(f->js_path), "%s/vendor.js", f->dir);
    write_file(f->js_path, VENDOR_JS);
    char text[sizeof(CONFIG_FMT) + 128];
    snprintf(text, sizeof(text), CONFIG_FMT, f->dir);
    write_file(f->cfg_path, text);

    char *errors = NULL;
    size_t elen = 0;
    FILE *ef = open_memstream(&errors, &elen);
    assert_non_null(ef);
    f->cfg = gw_config_load(f->cfg_path, ef);
    fclose(ef);
    if (!f->cfg) {
        print_error("%s", errors);
    }
    assert_non_null(f->cfg);
    free(errors);
    assert_true(f->cfg->lora.enabled);
    assert_int_equal(f->cfg->lora.dedup_ms, DEDUP_MS);
    assert_string_equal(f->cfg->sensors[IDX_SMOKE1].id, "smoke-1");
    assert_string_equal(f->cfg->sensors[IDX_VENDOR].id, "vendor-1");

    dev_init(&f->smoke1, SMOKE1_ADDR, SMOKE1_NWK, SMOKE1_APP);
    dev_init(&f->smoke2, SMOKE2_ADDR, SMOKE2_NWK, SMOKE2_APP);
    dev_init(&f->tank, TANK_ADDR, TANK_NWK, TANK_APP);
    dev_init(&f->vendor, VENDOR_ADDR, VENDOR_NWK, VENDOR_APP);

    char err[256] = "";
    f->ing = lora_ingest_new(f->cfg, err, sizeof(err));
    if (!f->ing) {
        print_error("lora_ingest_new: %s\n", err);
    }
    assert_non_null(f->ing);
    struct lora_ingest_callbacks cb = {
        .reading = on_reading, .fcnt = on_fcnt, .forwarder = on_forwarder, .ctx = f};
    lora_ingest_set_callbacks(f->ing, &cb);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lora_ingest_free(f->ing);
    gw_config_free(f->cfg);
    unlink(f->cfg_path);
    unlink(f->js_path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- frames and datagrams ------------------------------------------------------------- */

static size_t uplink(uint8_t *phy, const struct dev *d, uint32_t fcnt, int fport,
                     const uint8_t *payload, size_t len)
{
    int n = lw_build_uplink(phy, GWMP_MAX_PHY, false, d->addr, fcnt, 0, NULL, 0, fport, payload,
                            len, d->nwk, d->app);
    assert_true(n > 0);
    return (size_t)n;
}

/* A smoke detector's uplink: smoke bit and battery percent on FPort 1. */
static size_t smoke_uplink(uint8_t *phy, const struct dev *d, uint32_t fcnt, bool smoke,
                           uint8_t battery)
{
    const uint8_t payload[2] = {smoke ? 0x01 : 0x00, battery};
    return uplink(phy, d, fcnt, 1, payload, sizeof(payload));
}

static struct gwmp_rxpk rxpk_of(const uint8_t *phy, size_t len, double rssi, double snr)
{
    struct gwmp_rxpk r;
    memset(&r, 0, sizeof(r));
    r.tmst = 123456;
    r.freq = 868.1;
    r.stat = 1;
    snprintf(r.modu, sizeof(r.modu), "LORA");
    snprintf(r.datr, sizeof(r.datr), "SF7BW125");
    snprintf(r.codr, sizeof(r.codr), "4/5");
    r.rssi = rssi;
    r.lsnr = snr;
    r.has_lsnr = true;
    assert_true(len <= sizeof(r.data));
    memcpy(r.data, phy, len);
    r.size = len;
    r.valid = true;
    return r;
}

/* One PUSH_DATA (version 2) of n rxpk from eui; returns the ACK length. */
static int push(struct fx *f, uint64_t eui, const struct gwmp_rxpk *rx, int n, int64_t now)
{
    static uint8_t buf[16384];
    int len = gwmp_build_push_data(buf, sizeof(buf), 2, 0x1234, eui, rx, n);
    assert_true(len > 0);
    uint8_t ack[4];
    int idx = -2;
    int rc = lora_ingest_datagram(f->ing, buf, (size_t)len, now, ack, &idx);
    assert_true(idx >= 0);
    return rc;
}

/* One PHYPayload heard by one forwarder. */
static int push_phy(struct fx *f, uint64_t eui, const uint8_t *phy, size_t len, double rssi,
                    double snr, int64_t now)
{
    struct gwmp_rxpk r = rxpk_of(phy, len, rssi, snr);
    return push(f, eui, &r, 1, now);
}

/* A smoke frame heard by one forwarder at -90 dBm / 5 dB. */
static int push_smoke(struct fx *f, const struct dev *d, uint32_t fcnt, uint64_t eui, int64_t now)
{
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, d, fcnt, false, 90);
    return push_phy(f, eui, phy, len, -90, 5, now);
}

/* Header (+ EUI when eui != 0) + text; the datagram goes to the ingest. Returns the ACK length. */
static int raw(struct fx *f, uint8_t version, uint16_t token, uint8_t id, uint64_t eui,
               const char *text, int64_t now, uint8_t ack[4], int *idx)
{
    static uint8_t buf[16384];
    size_t n = 0;
    buf[n++] = version;
    buf[n++] = (uint8_t)(token >> 8);
    buf[n++] = (uint8_t)token;
    buf[n++] = id;
    if (eui) {
        for (int i = 0; i < 8; i++) {
            buf[n++] = (uint8_t)(eui >> (56 - 8 * i));
        }
    }
    if (text) {
        size_t t = strlen(text);
        assert_true(n + t <= sizeof(buf));
        memcpy(buf + n, text, t);
        n += t;
    }
    return lora_ingest_datagram(f->ing, buf, n, now, ack, idx);
}

static const struct lora_counters *counters(struct fx *f)
{
    return lora_ingest_counters(f->ing);
}

/* Every reject counter is zero except `except` (LORA_REJ_COUNT: none) which equals n. */
static void assert_rejects(struct fx *f, enum lora_reject except, uint64_t n)
{
    const struct lora_counters *c = counters(f);
    for (int r = 0; r < LORA_REJ_COUNT; r++) {
        uint64_t want = (enum lora_reject)r == except ? n : 0;
        if (c->rejected[r] != want) {
            fail_msg("rejected[%s] = %llu, want %llu", lora_reject_name((enum lora_reject)r),
                     (unsigned long long)c->rejected[r], (unsigned long long)want);
        }
    }
}

static const struct gw_point_value *point(const struct gw_reading *r, const char *name)
{
    for (int i = 0; i < r->npoints; i++) {
        if (strcmp(r->points[i].name, name) == 0) {
            return &r->points[i];
        }
    }
    fail_msg("reading of %s has no point %s", r->sensor, name);
    return NULL;
}

static void assert_number(const struct gw_reading *r, const char *name, double v)
{
    const struct gw_point_value *p = point(r, name);
    assert_int_equal(p->fault, GW_FAULT_NONE);
    assert_int_equal(p->value.type, GW_VALUE_NUMBER);
    assert_near(p->value.num, v);
}

/* Flush at now; emits whatever is due. */
static int64_t flush(struct fx *f, int64_t now)
{
    return lora_ingest_flush(f->ing, now, false);
}

/* ---- names ---------------------------------------------------------------------------- */

static void test_reject_names_are_the_metric_suffixes(void **state)
{
    (void)state;
    static const char *want[LORA_REJ_COUNT] = {
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
    for (int r = 0; r < LORA_REJ_COUNT; r++) {
        assert_non_null(want[r]);
        assert_string_equal(lora_reject_name((enum lora_reject)r), want[r]);
    }
    /* out of range: a string, never NULL (it ends up in a log line) */
    assert_non_null(lora_reject_name(LORA_REJ_COUNT));
    assert_non_null(lora_reject_name((enum lora_reject) - 1));
}

/* ---- acknowledgements ----------------------------------------------------------------- */

static void test_acks_echo_version_and_token(void **state)
{
    struct fx *f = *state;
    uint8_t ack[4];
    int idx = -2;

    /* PUSH_DATA, v2 and v1: version, the same token bytes, PUSH_ACK */
    memset(ack, 0xEE, sizeof(ack));
    assert_int_equal(raw(f, 2, 0xBEEF, GWMP_PUSH_DATA, EUI_A, "{\"rxpk\":[]}", T0, ack, &idx), 4);
    assert_memory_equal(ack, ((uint8_t[]){2, 0xBE, 0xEF, GWMP_PUSH_ACK}), 4);
    assert_int_equal(idx, 0);
    memset(ack, 0xEE, sizeof(ack));
    assert_int_equal(raw(f, 1, 0x0102, GWMP_PUSH_DATA, EUI_B, "{}", T0, ack, &idx), 4);
    assert_memory_equal(ack, ((uint8_t[]){1, 0x01, 0x02, GWMP_PUSH_ACK}), 4);
    assert_int_equal(idx, 1);

    /* PULL_DATA, v2 and v1: PULL_ACK */
    memset(ack, 0xEE, sizeof(ack));
    assert_int_equal(raw(f, 2, 0x00FF, GWMP_PULL_DATA, EUI_A, NULL, T0 + 1, ack, &idx), 4);
    assert_memory_equal(ack, ((uint8_t[]){2, 0x00, 0xFF, GWMP_PULL_ACK}), 4);
    assert_int_equal(idx, 0);
    memset(ack, 0xEE, sizeof(ack));
    assert_int_equal(raw(f, 1, 0xFF00, GWMP_PULL_DATA, EUI_B, NULL, T0 + 1, ack, &idx), 4);
    assert_memory_equal(ack, ((uint8_t[]){1, 0xFF, 0x00, GWMP_PULL_ACK}), 4);
    assert_int_equal(idx, 1);

    /* TX_ACK, with and without its JSON: nothing to send back */
    assert_int_equal(raw(f, 2, 0x4242, GWMP_TX_ACK, EUI_A, NULL, T0 + 2, ack, &idx), 0);
    assert_int_equal(raw(f, 2, 0x4243, GWMP_TX_ACK, EUI_A, "{\"txpk_ack\":{\"error\":\"NONE\"}}",
                         T0 + 2, ack, &idx),
                     0);

    /* a PUSH_DATA carrying a frame is acknowledged like any other */
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, false, 50);
    assert_int_equal(push_phy(f, EUI_A, phy, len, -80, 9, T0 + 3), 4);

    const struct lora_counters *c = counters(f);
    assert_int_equal(c->datagrams, 7);
    assert_int_equal(c->push_data, 3);
    assert_int_equal(c->pull_data, 2);
    assert_int_equal(c->tx_ack, 2);
    assert_int_equal(c->rxpk, 1);
    assert_rejects(f, LORA_REJ_COUNT, 0);
    assert_int_equal(lora_ingest_nforwarders(f->ing), 2);
}

/* ---- one frame -------------------------------------------------------------------------- */

static void test_one_frame_becomes_one_reading_after_the_window(void **state)
{
    struct fx *f = *state;
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 7, true, 87);
    assert_int_equal(push_phy(f, EUI_A, phy, len, -97.5, 7.25, T0), 4);

    const struct lora_counters *c = counters(f);
    assert_int_equal(c->frames, 1);
    assert_int_equal(c->readings, 0);

    /* still inside the window: nothing out, and the deadline is the window's end */
    assert_int_equal(flush(f, T0), T0 + DEDUP_MS);
    assert_int_equal(flush(f, T0 + DEDUP_MS - 1), T0 + DEDUP_MS);
    assert_int_equal(f->nreadings, 0);

    /* window over: one reading; then only the forwarder's offline deadline is left */
    assert_int_equal(flush(f, T0 + DEDUP_MS), T0 + OFFLINE_MS);
    assert_int_equal(f->nreadings, 1);
    const struct gw_reading *r = &f->readings[0];
    assert_int_equal(r->sensor_index, IDX_SMOKE1);
    assert_string_equal(r->sensor, "smoke-1");
    assert_int_equal(r->status, GW_READING_OK);
    assert_int_equal(r->ts_ms, T0); /* when it was heard, not when the window closed */
    assert_int_equal(r->npoints, 2);
    const struct gw_point_value *smoke = point(r, "smoke");
    assert_int_equal(smoke->fault, GW_FAULT_NONE);
    assert_int_equal(smoke->value.type, GW_VALUE_BOOL);
    assert_true(smoke->value.b);
    assert_number(r, "battery", 87);
    assert_true(r->has_rssi);
    assert_near(r->rssi, -97.5);
    assert_true(r->has_snr);
    assert_near(r->snr, 7.25);
    assert_int_equal(r->forwarders, 1);
    assert_true(r->has_fcnt);
    assert_int_equal(r->fcnt, 7);
    assert_true(r->has_frame_loss);
    assert_near(r->frame_loss, 0);

    assert_int_equal(f->nfcnt, 1);
    assert_int_equal(f->fcnt[0].dev_addr, SMOKE1_ADDR);
    assert_int_equal(f->fcnt[0].fcnt, 7);

    /* flushed once only */
    flush(f, T0 + DEDUP_MS);
    flush(f, T0 + 5000);
    assert_int_equal(f->nreadings, 1);
    assert_int_equal(c->readings, 1);
    assert_int_equal(c->frames, 1);
    assert_int_equal(c->duplicates, 0);
    assert_rejects(f, LORA_REJ_COUNT, 0);
}

static void test_nothing_pending_nothing_online_means_no_deadline(void **state)
{
    struct fx *f = *state;
    assert_int_equal(flush(f, T0), INT64_MAX);
    assert_int_equal(lora_ingest_flush(f->ing, T0, true), INT64_MAX);
    assert_int_equal(f->nreadings, 0);
    assert_int_equal(lora_ingest_nforwarders(f->ing), 0);
    assert_null(lora_ingest_forwarder(f->ing, 0));
    assert_null(lora_ingest_forwarder(f->ing, -1));
}

static void test_force_flushes_before_the_window(void **state)
{
    struct fx *f = *state;
    assert_int_equal(push_smoke(f, &f->smoke1, 1, EUI_A, T0), 4);
    assert_int_equal(push_smoke(f, &f->smoke2, 1, EUI_A, T0 + 10), 4);
    assert_int_equal(lora_ingest_flush(f->ing, T0 + 20, true), T0 + 10 + OFFLINE_MS);
    assert_int_equal(f->nreadings, 2);
    assert_int_equal(f->readings[0].sensor_index, IDX_SMOKE1);
    assert_int_equal(f->readings[1].sensor_index, IDX_SMOKE2);
}

/* Frames of two devices, and two frames of one device, in flight at once. */
static void test_frames_in_flight_together_each_get_their_reading(void **state)
{
    struct fx *f = *state;
    assert_int_equal(push_smoke(f, &f->smoke1, 1, EUI_A, T0), 4);
    assert_int_equal(push_smoke(f, &f->smoke2, 40, EUI_A, T0 + 50), 4);
    assert_int_equal(push_smoke(f, &f->smoke1, 2, EUI_A, T0 + 100), 4);
    /* a copy of smoke-1's second frame goes with that frame, not the first */
    assert_int_equal(push_smoke(f, &f->smoke1, 2, EUI_B, T0 + 150), 4);

    assert_int_equal(flush(f, T0 + DEDUP_MS), T0 + 50 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    assert_int_equal(f->readings[0].fcnt, 1);
    assert_int_equal(f->readings[0].forwarders, 1);
    assert_int_equal(flush(f, T0 + 50 + DEDUP_MS), T0 + 100 + DEDUP_MS);
    assert_int_equal(f->nreadings, 2);
    assert_int_equal(f->readings[1].sensor_index, IDX_SMOKE2);
    assert_int_equal(f->readings[1].fcnt, 40);
    flush(f, T0 + 100 + DEDUP_MS);
    assert_int_equal(f->nreadings, 3);
    assert_int_equal(f->readings[2].sensor_index, IDX_SMOKE1);
    assert_int_equal(f->readings[2].fcnt, 2);
    assert_int_equal(f->readings[2].forwarders, 2);
    assert_int_equal(counters(f)->duplicates, 1);
    assert_int_equal(counters(f)->readings, 3);
    assert_rejects(f, LORA_REJ_COUNT, 0);
}

static void test_confirmed_uplink_is_a_data_frame_too(void **state)
{
    struct fx *f = *state;
    const uint8_t payload[2] = {0x00, 33};
    uint8_t phy[GWMP_MAX_PHY];
    int n = lw_build_uplink(phy, sizeof(phy), true, f->smoke1.addr, 3, 0, NULL, 0, 1, payload,
                            sizeof(payload), f->smoke1.nwk, f->smoke1.app);
    assert_true(n > 0);
    assert_int_equal(push_phy(f, EUI_A, phy, (size_t)n, -70, 3, T0), 4);
    flush(f, T0 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    assert_number(&f->readings[0], "battery", 33);
    assert_false(point(&f->readings[0], "smoke")->value.b);
}

static void test_js_device(void **state)
{
    struct fx *f = *state;
    const uint8_t payload[1] = {21};
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = uplink(phy, &f->vendor, 1, 5, payload, sizeof(payload));
    assert_int_equal(push_phy(f, EUI_A, phy, len, -70, 3, T0), 4);
    flush(f, T0 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    assert_int_equal(f->readings[0].sensor_index, IDX_VENDOR);
    assert_number(&f->readings[0], "level", 42);
}

/* ---- deduplication -------------------------------------------------------------------- */

static void test_copies_from_two_forwarders_make_one_reading(void **state)
{
    struct fx *f = *state;
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, false, 60);
    /* best RSSI and best SNR each come from a different copy */
    assert_int_equal(push_phy(f, EUI_A, phy, len, -110, 5.5, T0), 4);
    assert_int_equal(push_phy(f, EUI_B, phy, len, -95, -2, T0 + 50), 4);

    /* the window runs from the first copy */
    assert_int_equal(flush(f, T0 + DEDUP_MS - 1), T0 + DEDUP_MS);
    assert_int_equal(f->nreadings, 0);
    flush(f, T0 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    const struct gw_reading *r = &f->readings[0];
    assert_int_equal(r->forwarders, 2);
    assert_near(r->rssi, -95);
    assert_near(r->snr, 5.5);
    assert_int_equal(r->fcnt, 1);
    assert_number(r, "battery", 60);

    const struct lora_counters *c = counters(f);
    assert_int_equal(c->rxpk, 2);
    assert_int_equal(c->duplicates, 1);
    assert_int_equal(c->readings, 1);
    assert_rejects(f, LORA_REJ_COUNT, 0);
    assert_int_equal(f->nfcnt, 1); /* the counter moved once */
    assert_int_equal(lora_ingest_nforwarders(f->ing), 2);
    assert_int_equal(lora_ingest_forwarder(f->ing, 0)->rxpk, 1);
    assert_int_equal(lora_ingest_forwarder(f->ing, 1)->rxpk, 1);
}

/* Two antennas (two rxpk of one datagram) are one forwarder; a second forwarder makes two. */
static void test_antennas_of_one_forwarder_count_once(void **state)
{
    struct fx *f = *state;
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, false, 60);
    struct gwmp_rxpk two[2] = {rxpk_of(phy, len, -100, 3), rxpk_of(phy, len, -90, 1)};
    two[1].rfch = 1;
    assert_int_equal(push(f, EUI_A, two, 2, T0), 4);
    flush(f, T0 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    assert_int_equal(f->readings[0].forwarders, 1);
    assert_near(f->readings[0].rssi, -90);
    assert_near(f->readings[0].snr, 3);
    assert_int_equal(counters(f)->duplicates, 1);
    assert_int_equal(counters(f)->rxpk, 2);

    /* next frame: two antennas of A and one copy from B */
    len = smoke_uplink(phy, &f->smoke1, 2, false, 61);
    two[0] = rxpk_of(phy, len, -100, 3);
    two[1] = rxpk_of(phy, len, -99, 4);
    assert_int_equal(push(f, EUI_A, two, 2, T0 + 1000), 4);
    assert_int_equal(push_phy(f, EUI_B, phy, len, -120, -10, T0 + 1100), 4);
    flush(f, T0 + 1000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 2);
    assert_int_equal(f->readings[1].forwarders, 2);
    assert_near(f->readings[1].rssi, -99);
    assert_near(f->readings[1].snr, 4);
    assert_int_equal(counters(f)->duplicates, 3);
    assert_int_equal(counters(f)->readings, 2);
    assert_rejects(f, LORA_REJ_COUNT, 0);
}

/* "Within dedup_ms" of the first copy, whenever flush happens to run. */
static void test_a_copy_after_the_window_is_a_replay(void **state)
{
    struct fx *f = *state;
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, false, 60);
    assert_int_equal(push_phy(f, EUI_A, phy, len, -100, 1, T0), 4);
    /* the last millisecond of the window: merged */
    assert_int_equal(push_phy(f, EUI_C, phy, len, -95, 2, T0 + DEDUP_MS - 1), 4);
    /* flush has not run yet (a late timer), but the window is over: not merged, so the result
     * does not depend on when the timer fires */
    assert_int_equal(push_phy(f, EUI_B, phy, len, -80, 9, T0 + DEDUP_MS + 50), 4);
    flush(f, T0 + DEDUP_MS + 60);
    assert_int_equal(f->nreadings, 1);
    assert_int_equal(f->readings[0].forwarders, 2);
    assert_near(f->readings[0].rssi, -95);
    assert_near(f->readings[0].snr, 2);
    assert_rejects(f, LORA_REJ_REPLAY, 1);
    assert_int_equal(counters(f)->duplicates, 1);
}

/* ---- frame counter -------------------------------------------------------------------- */

static void test_replay_after_the_window_is_rejected(void **state)
{
    struct fx *f = *state;
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 5, true, 60);
    assert_int_equal(push_phy(f, EUI_A, phy, len, -100, 1, T0), 4);
    flush(f, T0 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);

    /* the very same bytes later, from the same and from another forwarder */
    assert_int_equal(push_phy(f, EUI_A, phy, len, -100, 1, T0 + 10000), 4);
    assert_int_equal(push_phy(f, EUI_B, phy, len, -100, 1, T0 + 10001), 4);
    /* an older counter, correctly signed */
    assert_int_equal(push_smoke(f, &f->smoke1, 4, EUI_A, T0 + 10002), 4);
    lora_ingest_flush(f->ing, T0 + 20000, true);
    assert_int_equal(f->nreadings, 1);
    assert_rejects(f, LORA_REJ_REPLAY, 3);
    assert_int_equal(f->nfcnt, 1);
    assert_int_equal(counters(f)->frames, 1);

    /* the next counter is fine */
    assert_int_equal(push_smoke(f, &f->smoke1, 6, EUI_A, T0 + 30000), 4);
    flush(f, T0 + 30000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 2);
    assert_int_equal(f->readings[1].fcnt, 6);
}

static void test_fcnt_gap_limit(void **state)
{
    struct fx *f = *state;
    assert_int_equal(push_smoke(f, &f->smoke1, 1, EUI_A, T0), 4);
    flush(f, T0 + DEDUP_MS);
    /* one above the limit: refused, and the counter does not move */
    assert_int_equal(push_smoke(f, &f->smoke1, 1 + LW_MAX_FCNT_GAP + 1, EUI_A, T0 + 1000), 4);
    flush(f, T0 + 1000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    assert_rejects(f, LORA_REJ_FCNT_GAP, 1);
    /* exactly the limit: accepted */
    assert_int_equal(push_smoke(f, &f->smoke1, 1 + LW_MAX_FCNT_GAP, EUI_A, T0 + 2000), 4);
    flush(f, T0 + 2000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 2);
    assert_int_equal(f->readings[1].fcnt, 1 + LW_MAX_FCNT_GAP);
    assert_int_equal(f->nfcnt, 2);
    assert_int_equal(f->fcnt[1].fcnt, 1 + LW_MAX_FCNT_GAP);
}

static void test_relax_fcnt_accepts_a_counter_reset(void **state)
{
    struct fx *f = *state;
    assert_int_equal(push_smoke(f, &f->smoke2, 100, EUI_A, T0), 4);
    flush(f, T0 + DEDUP_MS);
    /* the device restarted: its counter begins again at 1 */
    assert_int_equal(push_smoke(f, &f->smoke2, 1, EUI_A, T0 + 1000), 4);
    flush(f, T0 + 1000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 2);
    assert_int_equal(f->readings[1].sensor_index, IDX_SMOKE2);
    assert_int_equal(f->readings[1].fcnt, 1);
    assert_int_equal(counters(f)->relaxed, 1);
    assert_int_equal(f->nfcnt, 2);
    assert_int_equal(f->fcnt[1].dev_addr, SMOKE2_ADDR);
    assert_int_equal(f->fcnt[1].fcnt, 1);
    /* counting on from the reset is normal again */
    assert_int_equal(push_smoke(f, &f->smoke2, 2, EUI_A, T0 + 2000), 4);
    flush(f, T0 + 2000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 3);
    assert_int_equal(counters(f)->relaxed, 1);
    /* the same counter again is a replay even with relax_fcnt */
    assert_int_equal(push_smoke(f, &f->smoke2, 2, EUI_A, T0 + 3000), 4);
    flush(f, T0 + 3000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 3);
    assert_rejects(f, LORA_REJ_REPLAY, 1);

    /* the same reset on a device without relax_fcnt is a replay */
    assert_int_equal(push_smoke(f, &f->smoke1, 100, EUI_A, T0 + 4000), 4);
    flush(f, T0 + 4000 + DEDUP_MS);
    assert_int_equal(push_smoke(f, &f->smoke1, 1, EUI_A, T0 + 5000), 4);
    flush(f, T0 + 5000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 4);
    assert_rejects(f, LORA_REJ_REPLAY, 2);
    assert_int_equal(counters(f)->relaxed, 1);
}

static void test_fcnt_rolls_over_16_bits(void **state)
{
    struct fx *f = *state;
    lora_ingest_restore_fcnt(f->ing, SMOKE1_ADDR, 65530);
    /* on air: 65541 & 0xFFFF = 5; the MIC is over the full 32-bit counter */
    assert_int_equal(push_smoke(f, &f->smoke1, 65541, EUI_A, T0), 4);
    flush(f, T0 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    assert_int_equal(f->readings[0].fcnt, 65541);
    assert_int_equal(f->nfcnt, 1);
    assert_int_equal(f->fcnt[0].dev_addr, SMOKE1_ADDR);
    assert_int_equal(f->fcnt[0].fcnt, 65541);
    /* frame loss counts from the first frame heard, not from the restored counter */
    assert_near(f->readings[0].frame_loss, 0);
    assert_rejects(f, LORA_REJ_COUNT, 0);
    /* and on: 65542 */
    assert_int_equal(push_smoke(f, &f->smoke1, 65542, EUI_A, T0 + 1000), 4);
    flush(f, T0 + 1000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 2);
    assert_int_equal(f->readings[1].fcnt, 65542);
}

static void test_restored_fcnt_rejects_older_frames(void **state)
{
    struct fx *f = *state;
    lora_ingest_restore_fcnt(f->ing, SMOKE1_ADDR, 100);
    lora_ingest_restore_fcnt(f->ing, 0x01020304, 5); /* no such device: ignored */
    assert_int_equal(push_smoke(f, &f->smoke1, 100, EUI_A, T0), 4);
    assert_int_equal(push_smoke(f, &f->smoke1, 50, EUI_A, T0 + 1), 4);
    flush(f, T0 + DEDUP_MS + 1);
    assert_int_equal(f->nreadings, 0);
    assert_int_equal(f->nfcnt, 0);
    assert_rejects(f, LORA_REJ_REPLAY, 2);
    /* restoring is not "the counter changed": no fcnt callback for it */
    assert_int_equal(push_smoke(f, &f->smoke1, 101, EUI_A, T0 + 1000), 4);
    flush(f, T0 + 1000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    assert_int_equal(f->readings[0].fcnt, 101);
    assert_int_equal(f->nfcnt, 1);
    assert_int_equal(f->fcnt[0].fcnt, 101);
    /* a device that was not restored takes whatever counter it starts with */
    assert_int_equal(push_smoke(f, &f->smoke2, 3000, EUI_A, T0 + 2000), 4);
    flush(f, T0 + 2000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 2);
    assert_int_equal(f->readings[1].fcnt, 3000);
}

/*
 * frame_loss = lost / (last - first + 1) * 100 over the last (up to) 100
 * counter values ending at the newest frame, counting only from the first
 * frame heard.
 */
static void test_frame_loss_counts_gaps(void **state)
{
    struct fx *f = *state;
    static const struct {
        uint32_t fcnt;
        double loss;
    } heard[] = {
        {1, 0},         {2, 0},         {4, 100.0 / 4}, /* 3 lost */
        {6, 200.0 / 6},                                 /* 5 lost */
        {7, 200.0 / 7}, {9, 300.0 / 9},                 /* 8 lost */
        {10, 30},
    };
    for (size_t i = 0; i < sizeof(heard) / sizeof(heard[0]); i++) {
        int64_t now = T0 + (int64_t)i * 60000;
        assert_int_equal(push_smoke(f, &f->smoke1, heard[i].fcnt, EUI_A, now), 4);
        flush(f, now + DEDUP_MS);
        assert_int_equal(f->nreadings, (int)i + 1);
        assert_int_equal(f->last.fcnt, heard[i].fcnt);
        assert_true(f->last.has_frame_loss);
        if (fabs(f->last.frame_loss - heard[i].loss) > 1e-9) {
            fail_msg("fcnt %u: frame_loss %.6f, want %.6f", heard[i].fcnt, f->last.frame_loss,
                     heard[i].loss);
        }
    }
    /* devices are counted apart; long silences (more than 64 and more than 128 counters) */
    static const struct {
        uint32_t fcnt;
        double loss;
    } smoke2[] = {
        {50, 0},
        {120, 69.0 / 71 * 100}, /* 50..120: 2 heard */
        {121, 69.0 / 72 * 100}, /* 50..121: 3 heard */
        {300, 99},              /* 201..300: 1 heard */
        {301, 98},              /* 202..301: 2 heard */
        {365, 97},              /* 266..365: 3 heard */
    };
    for (size_t i = 0; i < sizeof(smoke2) / sizeof(smoke2[0]); i++) {
        int64_t now = T0 + 3600000 + (int64_t)i * 60000;
        assert_int_equal(push_smoke(f, &f->smoke2, smoke2[i].fcnt, EUI_A, now), 4);
        flush(f, now + DEDUP_MS);
        assert_int_equal(f->last.sensor_index, IDX_SMOKE2);
        assert_int_equal(f->last.fcnt, smoke2[i].fcnt);
        if (fabs(f->last.frame_loss - smoke2[i].loss) > 1e-9) {
            fail_msg("smoke-2 fcnt %u: frame_loss %.6f, want %.6f", smoke2[i].fcnt,
                     f->last.frame_loss, smoke2[i].loss);
        }
    }
}

static void test_frame_loss_window_is_the_last_100_counters(void **state)
{
    struct fx *f = *state;
    /* heard 1, lost 2..11, heard 12..111 */
    int64_t now = T0;
    assert_int_equal(push_smoke(f, &f->smoke1, 1, EUI_A, now), 4);
    flush(f, now + DEDUP_MS);
    for (uint32_t fcnt = 12; fcnt <= 111; fcnt++) {
        now += 1000;
        assert_int_equal(push_smoke(f, &f->smoke1, fcnt, EUI_A, now), 4);
        flush(f, now + DEDUP_MS);
        double want;
        if (fcnt <= 100) {
            want = 10.0 / fcnt * 100; /* 1..fcnt, 10 lost */
        } else {
            uint32_t lo = fcnt - 99; /* window lo..fcnt */
            want = lo <= 11 ? (double)(11 - lo + 1) : 0;
        }
        assert_int_equal(f->last.fcnt, fcnt);
        if (fabs(f->last.frame_loss - want) > 1e-9) {
            fail_msg("fcnt %u: frame_loss %.6f, want %.6f", fcnt, f->last.frame_loss, want);
        }
    }
    assert_int_equal(f->nreadings, 101);
    assert_near(f->last.frame_loss, 0);
}

/* ---- rejects ---------------------------------------------------------------------------- */

static void test_unknown_device(void **state)
{
    struct fx *f = *state;
    struct dev stranger = f->smoke1;
    stranger.addr = 0x01020304;
    assert_int_equal(push_smoke(f, &stranger, 1, EUI_A, T0), 4);
    lora_ingest_flush(f->ing, T0 + 1000, true);
    assert_int_equal(f->nreadings, 0);
    assert_int_equal(f->nfcnt, 0);
    assert_rejects(f, LORA_REJ_UNKNOWN_DEVICE, 1);
    assert_int_equal(counters(f)->frames, 0);
}

static void test_bad_mic(void **state)
{
    struct fx *f = *state;
    /* smoke-1's address, smoke-2's keys */
    struct dev forged = f->smoke2;
    forged.addr = SMOKE1_ADDR;
    assert_int_equal(push_smoke(f, &forged, 1, EUI_A, T0), 4);
    /* right key, one payload bit flipped after signing */
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, false, 60);
    phy[9] ^= 0x01;
    assert_int_equal(push_phy(f, EUI_A, phy, len, -90, 1, T0 + 1), 4);
    lora_ingest_flush(f->ing, T0 + 1000, true);
    assert_int_equal(f->nreadings, 0);
    assert_int_equal(f->nfcnt, 0);
    assert_rejects(f, LORA_REJ_BAD_MIC, 2);

    /* the forgeries did not move the counter: the genuine frame 1 is accepted, and a forged copy
     * of it inside the window is not merged */
    assert_int_equal(push_smoke(f, &f->smoke1, 1, EUI_A, T0 + 2000), 4);
    assert_int_equal(push_smoke(f, &forged, 1, EUI_B, T0 + 2050), 4);
    flush(f, T0 + 2000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    assert_int_equal(f->readings[0].forwarders, 1);
    assert_rejects(f, LORA_REJ_BAD_MIC, 3);
    assert_int_equal(counters(f)->duplicates, 0);
}

static void test_crc_not_ok(void **state)
{
    struct fx *f = *state;
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, false, 60);
    struct gwmp_rxpk r = rxpk_of(phy, len, -90, 1);
    r.stat = -1;
    assert_int_equal(push(f, EUI_A, &r, 1, T0), 4);
    r.stat = 0; /* no CRC: not trusted either */
    assert_int_equal(push(f, EUI_A, &r, 1, T0 + 1), 4);
    lora_ingest_flush(f->ing, T0 + 1000, true);
    assert_int_equal(f->nreadings, 0);
    assert_rejects(f, LORA_REJ_CRC, 2);
    /* the good copy afterwards is the frame's first */
    assert_int_equal(push_phy(f, EUI_A, phy, len, -90, 1, T0 + 2000), 4);
    flush(f, T0 + 2000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
}

static void test_malformed_frames(void **state)
{
    struct fx *f = *state;
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, false, 60);
    /* truncated below MHDR + FHDR + MIC */
    assert_int_equal(push_phy(f, EUI_A, phy, 11, -90, 1, T0), 4);
    /* FOptsLen says 15 bytes of FOpts; there are not that many */
    uint8_t bad[GWMP_MAX_PHY];
    memcpy(bad, phy, len);
    bad[5] |= 0x0F;
    assert_int_equal(push_phy(f, EUI_A, bad, len, -90, 1, T0 + 1), 4);
    lora_ingest_flush(f->ing, T0 + 1000, true);
    assert_int_equal(f->nreadings, 0);
    assert_rejects(f, LORA_REJ_MALFORMED, 2);
}

static void test_join_request_and_downlink_are_not_data_up(void **state)
{
    struct fx *f = *state;
    /* MHDR join request | AppEUI | DevEUI | DevNonce | MIC */
    uint8_t join[23] = {0x00};
    for (size_t i = 1; i < sizeof(join); i++) {
        join[i] = (uint8_t)i;
    }
    assert_int_equal(push_phy(f, EUI_A, join, sizeof(join), -90, 1, T0), 4);
    /* an unconfirmed downlink to smoke-1 */
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, false, 60);
    phy[0] = (uint8_t)(LW_UNCONFIRMED_DOWN << 5);
    assert_int_equal(push_phy(f, EUI_A, phy, len, -90, 1, T0 + 1), 4);
    lora_ingest_flush(f->ing, T0 + 1000, true);
    assert_int_equal(f->nreadings, 0);
    assert_rejects(f, LORA_REJ_NOT_DATA_UP, 2);
}

static void test_major_version(void **state)
{
    struct fx *f = *state;
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, false, 60);
    phy[0] |= 0x01; /* Major = 1 */
    assert_int_equal(push_phy(f, EUI_A, phy, len, -90, 1, T0), 4);
    lora_ingest_flush(f->ing, T0 + 1000, true);
    assert_int_equal(f->nreadings, 0);
    assert_rejects(f, LORA_REJ_MAJOR, 1);
}

static void test_bad_datagrams(void **state)
{
    struct fx *f = *state;
    uint8_t ack[4];
    int idx;
    int n = 0;

    idx = -2;
    /* a PUSH_DATA or PULL_DATA without its EUI is short */
    assert_int_equal(raw(f, 2, 1, GWMP_PUSH_DATA, 0, NULL, T0, ack, &idx), 0);
    assert_int_equal(idx, -1);
    assert_rejects(f, LORA_REJ_SHORT, 1);
    n++;

    idx = -2;
    assert_int_equal(lora_ingest_datagram(f->ing, (const uint8_t[]){2, 0, 1}, 3, T0, ack, &idx), 0);
    assert_int_equal(idx, -1);
    assert_int_equal(lora_ingest_datagram(f->ing, (const uint8_t[]){0}, 0, T0, ack, &idx), 0);
    assert_int_equal(idx, -1);
    assert_rejects(f, LORA_REJ_SHORT, 3);
    n += 2;

    idx = -2;
    assert_int_equal(raw(f, 3, 1, GWMP_PUSH_DATA, EUI_A, "{}", T0, ack, &idx), 0);
    assert_int_equal(idx, -1);
    assert_int_equal(raw(f, 0, 1, GWMP_PULL_DATA, EUI_A, NULL, T0, ack, &idx), 0);
    assert_int_equal(counters(f)->rejected[LORA_REJ_VERSION], 2);
    n += 2;

    idx = -2;
    assert_int_equal(raw(f, 2, 1, 0x09, EUI_A, NULL, T0, ack, &idx), 0);
    assert_int_equal(idx, -1);
    assert_int_equal(counters(f)->rejected[LORA_REJ_IDENTIFIER], 1);
    n++;

    /* bad JSON is still a PUSH_DATA from a known EUI: acknowledged (the forwarder's ackr counts
     * ACKs, not what the server made of the datagram), from forwarder 0 */
    assert_int_equal(raw(f, 2, 0x0A0B, GWMP_PUSH_DATA, EUI_A, "{\"rxpk\":[", T0, ack, &idx), 4);
    assert_memory_equal(ack, ((uint8_t[]){2, 0x0A, 0x0B, GWMP_PUSH_ACK}), 4);
    assert_int_equal(idx, 0);
    assert_int_equal(raw(f, 2, 1, GWMP_PUSH_DATA, EUI_A, "[1,2]", T0, ack, &idx), 4);
    assert_int_equal(raw(f, 2, 1, GWMP_PUSH_DATA, EUI_A, "{\"rxpk\":{}}", T0, ack, &idx), 4);
    assert_int_equal(counters(f)->rejected[LORA_REJ_JSON], 3);
    n += 3;

    /* the largest datagram is read; one byte more is refused unread */
    size_t big = (size_t)LORA_MAX_DATAGRAM + 1;
    uint8_t *buf = malloc(big);
    assert_non_null(buf);
    memset(buf, ' ', big);
    const uint8_t head[12] = {2, 0x77, 0x88, GWMP_PUSH_DATA, 0xAA, 0x55, 0x5A, 0, 0, 0, 0, 1};
    memcpy(buf, head, sizeof(head));
    memcpy(buf + sizeof(head), "{}", 2);
    idx = -2;
    assert_int_equal(lora_ingest_datagram(f->ing, buf, big, T0, ack, &idx), 0);
    assert_int_equal(idx, -1);
    assert_int_equal(counters(f)->rejected[LORA_REJ_OVERSIZE], 1);
    n++;
    assert_int_equal(lora_ingest_datagram(f->ing, buf, big - 1, T0, ack, &idx), 4);
    assert_memory_equal(ack, ((uint8_t[]){2, 0x77, 0x88, GWMP_PUSH_ACK}), 4);
    assert_int_equal(idx, 0);
    assert_int_equal(lora_ingest_forwarder(f->ing, idx)->eui, EUI_A);
    n++;
    free(buf);

    const struct lora_counters *c = counters(f);
    assert_int_equal(c->datagrams, (uint64_t)n);
    assert_int_equal(c->rejected[LORA_REJ_SHORT], 3);
    assert_int_equal(c->rejected[LORA_REJ_VERSION], 2);
    uint64_t total = 0;
    for (int r = 0; r < LORA_REJ_COUNT; r++) {
        total += c->rejected[r];
    }
    assert_int_equal(total, 10);
    assert_int_equal(f->nreadings, 0);
}

static void test_bad_rxpk_entries(void **state)
{
    struct fx *f = *state;
    uint8_t ack[4];
    int idx = -2;
    /* bad base64; missing data; size that does not match the data */
    assert_int_equal(
        raw(f, 2, 1, GWMP_PUSH_DATA, EUI_A,
            "{\"rxpk\":[{\"stat\":1,\"rssi\":-80,\"lsnr\":5,\"size\":3,\"data\":\"!!!!\"},"
            "{\"stat\":1,\"rssi\":-80,\"lsnr\":5,\"size\":3},"
            "{\"stat\":1,\"rssi\":-80,\"lsnr\":5,\"size\":4,\"data\":\"AQID\"}]}",
            T0, ack, &idx),
        4);
    assert_int_equal(idx, 0);
    assert_rejects(f, LORA_REJ_RXPK, 3);
    assert_int_equal(counters(f)->rxpk, 3);

    /* a bad rxpk does not spoil a good one in the same datagram: the first copy's base64 is
     * broken after building */
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, false, 60);
    struct gwmp_rxpk two[2] = {rxpk_of(phy, len, -70, 9), rxpk_of(phy, len, -80, 2)};
    uint8_t buf[4096];
    int n = gwmp_build_push_data(buf, sizeof(buf) - 1, 2, 1, EUI_A, two, 2);
    assert_true(n > 0);
    buf[n] = '\0';
    char *data = strstr((char *)buf + 12, "\"data\":\"");
    assert_non_null(data);
    data[8] = '!';
    assert_int_equal(lora_ingest_datagram(f->ing, buf, (size_t)n, T0 + 1000, ack, &idx), 4);
    flush(f, T0 + 1000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    assert_int_equal(f->readings[0].forwarders, 1);
    assert_near(f->readings[0].rssi, -80);
    assert_near(f->readings[0].snr, 2);
    assert_rejects(f, LORA_REJ_RXPK, 4);
    assert_int_equal(counters(f)->rxpk, 5);
}

static void test_codec_failure(void **state)
{
    struct fx *f = *state;
    /* Cayenne LPP: channel 1, unknown type 0xFF */
    const uint8_t unknown[] = {0x01, 0xFF, 0x00};
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = uplink(phy, &f->tank, 1, 1, unknown, sizeof(unknown));
    assert_int_equal(push_phy(f, EUI_A, phy, len, -90, 1, T0), 4);
    lora_ingest_flush(f->ing, T0 + DEDUP_MS, false);
    assert_int_equal(f->nreadings, 0);
    assert_int_equal(counters(f)->readings, 0);
    assert_rejects(f, LORA_REJ_DECODE, 1);

    /* the device's next, decodable frame: analog input 1 = 1.00 */
    const uint8_t good[] = {0x01, 0x02, 0x00, 0x64};
    len = uplink(phy, &f->tank, 2, 1, good, sizeof(good));
    assert_int_equal(push_phy(f, EUI_A, phy, len, -90, 1, T0 + 1000), 4);
    flush(f, T0 + 1000 + DEDUP_MS);
    assert_int_equal(f->nreadings, 1);
    assert_int_equal(f->readings[0].sensor_index, IDX_TANK);
    assert_string_equal(f->readings[0].sensor, "tank-1");
    assert_int_equal(f->readings[0].npoints, 1);
    assert_number(&f->readings[0], "analog_in_1", 1.0);
    assert_int_equal(f->readings[0].fcnt, 2);
}

/* ---- forwarders ----------------------------------------------------------------------- */

#define STAT_JSON                                                                                  \
    "{\"stat\":{\"time\":\"2024-03-01 08:00:00 GMT\",\"rxnb\":12,\"rxok\":10,\"rxfw\":9,"          \
    "\"ackr\":87.5,\"dwnb\":2,\"txnb\":1}}"

static void test_forwarder_table(void **state)
{
    struct fx *f = *state;
    uint8_t ack[4];
    int idx = -2;

    /* first sight: a keepalive */
    assert_int_equal(raw(f, 2, 7, GWMP_PULL_DATA, EUI_A, NULL, T0, ack, &idx), 4);
    assert_int_equal(idx, 0);
    assert_int_equal(lora_ingest_nforwarders(f->ing), 1);
    const struct lora_forwarder *a = lora_ingest_forwarder(f->ing, 0);
    assert_non_null(a);
    assert_int_equal(a->eui, EUI_A);
    assert_true(a->online);
    assert_int_equal(a->first_seen_ms, T0);
    assert_int_equal(a->last_seen_ms, T0);
    assert_int_equal(a->last_pull_ms, T0);
    assert_false(a->has_stat);
    assert_int_equal(a->rxpk, 0);
    assert_int_equal(a->version, 2);
    assert_int_equal(f->nfwd, 1);
    assert_int_equal(f->fwd[0].eui, EUI_A);
    assert_true(f->fwd[0].online);

    /* a stat report: stored, and reported */
    assert_int_equal(raw(f, 2, 8, GWMP_PUSH_DATA, EUI_A, STAT_JSON, T0 + 1000, ack, &idx), 4);
    assert_int_equal(idx, 0);
    a = lora_ingest_forwarder(f->ing, 0);
    assert_true(a->has_stat);
    assert_true(a->stat.present);
    assert_int_equal(a->stat.rxnb, 12);
    assert_int_equal(a->stat.rxok, 10);
    assert_int_equal(a->stat.rxfw, 9);
    assert_near(a->stat.ackr, 87.5);
    assert_int_equal(a->stat.dwnb, 2);
    assert_int_equal(a->stat.txnb, 1);
    assert_string_equal(a->stat.time, "2024-03-01 08:00:00 GMT");
    assert_int_equal(a->last_seen_ms, T0 + 1000);
    assert_int_equal(a->last_pull_ms, T0);
    assert_int_equal(a->first_seen_ms, T0);
    assert_int_equal(f->nfwd, 2);
    assert_true(f->fwd[1].has_stat);
    assert_int_equal(f->fwd[1].stat.rxnb, 12);

    /* uplinks alone are not news about the forwarder */
    assert_int_equal(push_smoke(f, &f->smoke1, 1, EUI_A, T0 + 2000), 4);
    assert_int_equal(f->nfwd, 2);
    a = lora_ingest_forwarder(f->ing, 0);
    assert_int_equal(a->rxpk, 1);
    assert_int_equal(a->last_seen_ms, T0 + 2000);
    assert_true(a->has_stat); /* the last stat is kept */

    /* the reading goes out; A's offline deadline is next */
    assert_int_equal(flush(f, T0 + 2000 + DEDUP_MS), T0 + 2000 + OFFLINE_MS);
    assert_int_equal(f->nreadings, 1);

    /* a second forwarder, speaking v1 */
    assert_int_equal(raw(f, 1, 9, GWMP_PULL_DATA, EUI_B, NULL, T0 + 3000, ack, &idx), 4);
    assert_int_equal(idx, 1);
    assert_int_equal(lora_ingest_nforwarders(f->ing), 2);
    assert_int_equal(lora_ingest_forwarder(f->ing, 1)->eui, EUI_B);
    assert_int_equal(lora_ingest_forwarder(f->ing, 1)->version, 1);
    assert_int_equal(f->nfwd, 3);
    assert_int_equal(f->fwd[2].eui, EUI_B);

    assert_int_equal(flush(f, T0 + 2000 + OFFLINE_MS - 1), T0 + 2000 + OFFLINE_MS);
    assert_true(lora_ingest_forwarder(f->ing, 0)->online);
    assert_int_equal(f->nfwd, 3);

    /* silent forwarder_offline_s: offline, once */
    assert_int_equal(flush(f, T0 + 2000 + OFFLINE_MS), T0 + 3000 + OFFLINE_MS);
    assert_false(lora_ingest_forwarder(f->ing, 0)->online);
    assert_true(lora_ingest_forwarder(f->ing, 1)->online);
    assert_int_equal(f->nfwd, 4);
    assert_int_equal(f->fwd[3].eui, EUI_A);
    assert_false(f->fwd[3].online);
    flush(f, T0 + 2500 + OFFLINE_MS);
    assert_int_equal(f->nfwd, 4);

    assert_int_equal(flush(f, T0 + 3000 + OFFLINE_MS), INT64_MAX);
    assert_false(lora_ingest_forwarder(f->ing, 1)->online);
    assert_int_equal(f->nfwd, 5);
    assert_int_equal(f->fwd[4].eui, EUI_B);
    assert_false(f->fwd[4].online);

    /* back: online again on its next datagram, same slot */
    int64_t back = T0 + 10 * OFFLINE_MS;
    assert_int_equal(raw(f, 2, 10, GWMP_PULL_DATA, EUI_A, NULL, back, ack, &idx), 4);
    assert_int_equal(idx, 0);
    a = lora_ingest_forwarder(f->ing, 0);
    assert_true(a->online);
    assert_int_equal(a->first_seen_ms, T0);
    assert_int_equal(a->last_seen_ms, back);
    assert_int_equal(a->last_pull_ms, back);
    assert_int_equal(f->nfwd, 6);
    assert_int_equal(f->fwd[5].eui, EUI_A);
    assert_true(f->fwd[5].online);
    assert_int_equal(lora_ingest_nforwarders(f->ing), 2);
    assert_int_equal(flush(f, back), back + OFFLINE_MS);
}

/* ---- construction ----------------------------------------------------------------------- */

static void test_no_callbacks_no_crash(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    struct lora_ingest *bare = lora_ingest_new(f->cfg, err, sizeof(err));
    assert_non_null(bare);
    uint8_t phy[GWMP_MAX_PHY];
    size_t len = smoke_uplink(phy, &f->smoke1, 1, true, 10);
    struct gwmp_rxpk r = rxpk_of(phy, len, -90, 1);
    uint8_t buf[2048];
    int n = gwmp_build_push_data(buf, sizeof(buf), 2, 1, EUI_C, &r, 1);
    assert_true(n > 0);
    uint8_t ack[4];
    int idx;
    assert_int_equal(lora_ingest_datagram(bare, buf, (size_t)n, T0, ack, &idx), 4);
    lora_ingest_flush(bare, T0 + OFFLINE_MS, false);
    assert_int_equal(lora_ingest_counters(bare)->readings, 1);
    assert_false(lora_ingest_forwarder(bare, 0)->online);
    lora_ingest_free(bare);
    lora_ingest_free(NULL);
}

static void test_a_js_decoder_that_no_longer_compiles(void **state)
{
    struct fx *f = *state;
    write_file(f->js_path, "function decodeUplink(input) { return { data: ");
    char err[256] = "";
    assert_null(lora_ingest_new(f->cfg, err, sizeof(err)));
    assert_true(strlen(err) > 0);
    assert_non_null(strstr(err, "vendor.js"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_names_are_the_metric_suffixes),
        T(test_acks_echo_version_and_token),
        T(test_one_frame_becomes_one_reading_after_the_window),
        T(test_nothing_pending_nothing_online_means_no_deadline),
        T(test_force_flushes_before_the_window),
        T(test_frames_in_flight_together_each_get_their_reading),
        T(test_confirmed_uplink_is_a_data_frame_too),
        T(test_js_device),
        T(test_copies_from_two_forwarders_make_one_reading),
        T(test_antennas_of_one_forwarder_count_once),
        T(test_a_copy_after_the_window_is_a_replay),
        T(test_replay_after_the_window_is_rejected),
        T(test_fcnt_gap_limit),
        T(test_relax_fcnt_accepts_a_counter_reset),
        T(test_fcnt_rolls_over_16_bits),
        T(test_restored_fcnt_rejects_older_frames),
        T(test_frame_loss_counts_gaps),
        T(test_frame_loss_window_is_the_last_100_counters),
        T(test_unknown_device),
        T(test_bad_mic),
        T(test_crc_not_ok),
        T(test_malformed_frames),
        T(test_join_request_and_downlink_are_not_data_up),
        T(test_major_version),
        T(test_bad_datagrams),
        T(test_bad_rxpk_entries),
        T(test_codec_failure),
        T(test_forwarder_table),
        T(test_no_callbacks_no_crash),
        T(test_a_js_decoder_that_no_longer_compiles),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
