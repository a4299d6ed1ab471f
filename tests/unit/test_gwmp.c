/*
 * sensors/lora/gwmp.c: the Semtech UDP packet-forwarder protocol (PROTOCOL.TXT v1/v2).
 * Every packet type, every short length, versions, identifiers, ACK bytes, malformed JSON and
 * malformed rxpk entries, FSK, the 64 KiB limit, and build -> parse round trips.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lora/gwmp.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define BIG 65536

static const uint64_t EUI = 0xAA555A0000000101ULL;
static const uint8_t EUI_BYTES[8] = {0xAA, 0x55, 0x5A, 0x00, 0x00, 0x00, 0x01, 0x01};

/* PHYPayloads of the fixtures and their base64 (checked with Python's base64 module) */
static const uint8_t PHY13[] = {0x40, 0xda, 0x1b, 0x01, 0x26, 0x80, 0x01,
                                0x00, 0x01, 0xa1, 0xb2, 0xc3, 0xd4};
#define PHY13_B64 "QNobASaAAQABobLD1A=="
static const uint8_t PHY16[] = "TEST_PACKET_1234";
#define PHY16_B64 "VEVTVF9QQUNLRVRfMTIzNA=="
#define PHY32_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

/* ---- helpers ----------------------------------------------------------------------- */

/* header + optional JSON into buf; returns the length */
static size_t dgram(uint8_t *buf, uint8_t version, uint16_t token, uint8_t id, bool eui,
                    const char *json)
{
    size_t n = 0;
    buf[n++] = version;
    buf[n++] = (uint8_t)(token >> 8);
    buf[n++] = (uint8_t)token;
    buf[n++] = id;
    if (eui) {
        memcpy(buf + n, EUI_BYTES, 8);
        n += 8;
    }
    if (json) {
        size_t j = strlen(json);
        memcpy(buf + n, json, j);
        n += j;
    }
    return n;
}

static struct gwmp_packet *new_packet(void)
{
    struct gwmp_packet *p = malloc(sizeof(*p));
    assert_non_null(p);
    return p;
}

static enum gwmp_error parse_push(struct gwmp_packet *p, uint8_t version, const char *json)
{
    static uint8_t buf[BIG + 64];
    size_t n = dgram(buf, version, 0x1234, GWMP_PUSH_DATA, true, json);
    return gwmp_parse(buf, n, p);
}

static void check_header(const struct gwmp_packet *p, uint8_t version, uint16_t token, uint8_t id,
                         uint64_t eui)
{
    assert_int_equal(p->version, version);
    assert_int_equal(p->token, token);
    assert_int_equal(p->identifier, id);
    assert_true(p->gateway_eui == eui);
}

static void check_rxpk(const struct gwmp_rxpk *got, const struct gwmp_rxpk *want, const char *what)
{
#define FIELD(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail_msg("%s: %s", what, #cond);                                                       \
        }                                                                                          \
    } while (0)
    FIELD(got->valid == want->valid);
    FIELD(got->has_time == want->has_time);
    FIELD(strcmp(got->time, want->time) == 0);
    FIELD(got->tmst == want->tmst);
    FIELD(got->freq == want->freq);
    FIELD(got->chan == want->chan);
    FIELD(got->rfch == want->rfch);
    FIELD(got->stat == want->stat);
    FIELD(strcmp(got->modu, want->modu) == 0);
    FIELD(strcmp(got->datr, want->datr) == 0);
    FIELD(strcmp(got->codr, want->codr) == 0);
    FIELD(got->rssi == want->rssi);
    FIELD(got->has_lsnr == want->has_lsnr);
    FIELD(got->lsnr == want->lsnr);
    FIELD(got->size == want->size);
    FIELD(memcmp(got->data, want->data, want->size) == 0);
#undef FIELD
}

static struct gwmp_rxpk rx(bool valid, const char *time, uint32_t tmst, double freq, int chan,
                           int rfch, int stat, const char *modu, const char *datr, const char *codr,
                           double rssi, bool has_lsnr, double lsnr, const uint8_t *data,
                           size_t size)
{
    struct gwmp_rxpk r;
    memset(&r, 0, sizeof(r));
    r.valid = valid;
    r.has_time = time != NULL;
    snprintf(r.time, sizeof(r.time), "%s", time ? time : "");
    r.tmst = tmst;
    r.freq = freq;
    r.chan = chan;
    r.rfch = rfch;
    r.stat = stat;
    snprintf(r.modu, sizeof(r.modu), "%s", modu);
    snprintf(r.datr, sizeof(r.datr), "%s", datr);
    snprintf(r.codr, sizeof(r.codr), "%s", codr);
    r.rssi = rssi;
    r.has_lsnr = has_lsnr;
    r.lsnr = lsnr;
    if (size) {
        memcpy(r.data, data, size);
    }
    r.size = size;
    return r;
}

/* ---- PUSH_DATA --------------------------------------------------------------------- */

/* PROTOCOL.TXT section 4's example with real base64 (its own "data" strings are not base64) */
static const char FULL_JSON[] =
    "{\"rxpk\":[{\"time\":\"2013-03-31T16:21:17.528002Z\",\"tmst\":3512348611,\"chan\":2,"
    "\"rfch\":0,\"freq\":866.349812,\"stat\":1,\"modu\":\"LORA\",\"datr\":\"SF7BW125\","
    "\"codr\":\"4/6\",\"rssi\":-35,\"lsnr\":5.1,\"size\":13,\"data\":\"" PHY13_B64 "\"},"
    "{\"time\":\"2013-03-31T16:21:17.530974Z\",\"tmst\":3512348514,\"chan\":9,\"rfch\":1,"
    "\"freq\":869.1,\"stat\":1,\"modu\":\"FSK\",\"datr\":50000,\"rssi\":-75,\"size\":16,"
    "\"data\":\"" PHY16_B64 "\"},"
    " {\"time\":\"2013-03-31T16:21:17.532038Z\",\"tmst\":3316387610,\"chan\":0,\"rfch\":0,"
    "\"freq\":863.00981,\"stat\":-1,\"modu\":\"LORA\",\"datr\":\"SF10BW125\",\"codr\":\"4/7\","
    "\"rssi\":-38,\"lsnr\":-5.5,\"size\":13,\"data\":\"" PHY13_B64 "\"}],\n"
    "\"stat\":{\"time\":\"2014-01-12 08:59:28 GMT\",\"lati\":46.24000,\"long\":3.25230,"
    "\"alti\":145,\"rxnb\":2,\"rxok\":3,\"rxfw\":4,\"ackr\":100.0,\"dwnb\":5,\"txnb\":6}}";

static void test_push_data_full(void **state)
{
    (void)state;
    const struct gwmp_rxpk want[] = {
        rx(true, "2013-03-31T16:21:17.528002Z", 3512348611u, 866.349812, 2, 0, 1, "LORA",
           "SF7BW125", "4/6", -35, true, 5.1, PHY13, sizeof(PHY13)),
        rx(true, "2013-03-31T16:21:17.530974Z", 3512348514u, 869.1, 9, 1, 1, "FSK", "50000", "",
           -75, false, 0, PHY16, 16),
        rx(true, "2013-03-31T16:21:17.532038Z", 3316387610u, 863.00981, 0, 0, -1, "LORA",
           "SF10BW125", "4/7", -38, true, -5.5, PHY13, sizeof(PHY13)),
    };
    struct gwmp_packet *p = new_packet();
    for (uint8_t version = 1; version <= 2; version++) {
        assert_int_equal(parse_push(p, version, FULL_JSON), GWMP_OK);
        check_header(p, version, 0x1234, GWMP_PUSH_DATA, EUI);
        assert_int_equal(p->nrxpk, N(want));
        for (size_t i = 0; i < N(want); i++) {
            char what[32];
            snprintf(what, sizeof(what), "v%u rxpk %zu", version, i);
            check_rxpk(&p->rxpk[i], &want[i], what);
        }
        assert_true(p->stat.present);
        assert_string_equal(p->stat.time, "2014-01-12 08:59:28 GMT");
        assert_int_equal(p->stat.rxnb, 2);
        assert_int_equal(p->stat.rxok, 3);
        assert_int_equal(p->stat.rxfw, 4);
        assert_true(p->stat.ackr == 100.0);
        assert_int_equal(p->stat.dwnb, 5);
        assert_int_equal(p->stat.txnb, 6);
    }
    free(p);
}

static void test_stat_only(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        uint32_t rxnb, txnb;
        double ackr;
        const char *time;
    } t[] = {
        {"{\"stat\":{\"time\":\"2014-01-12 08:59:28 GMT\",\"rxnb\":4294967295,\"rxok\":0,"
         "\"rxfw\":0,\"ackr\":33.3,\"dwnb\":0,\"txnb\":7}}",
         4294967295u, 7, 33.3, "2014-01-12 08:59:28 GMT"},
        {"{\"stat\":{}}", 0, 0, 0, ""},
        /* wrong types and ranges are left 0: stat is information only */
        {"{\"stat\":{\"time\":5,\"rxnb\":-1,\"txnb\":4294967296,\"ackr\":\"x\"}}", 0, 0, 0, ""},
        {"{\"stat\":{\"time\":\"0123456789012345678901234567890123456789\",\"rxnb\":1.5}}", 0, 0, 0,
         ""},
    };
    struct gwmp_packet *p = new_packet();
    for (size_t i = 0; i < N(t); i++) {
        assert_int_equal(parse_push(p, 2, t[i].json), GWMP_OK);
        assert_int_equal(p->nrxpk, 0);
        assert_true(p->stat.present);
        assert_int_equal(p->stat.rxnb, t[i].rxnb);
        assert_int_equal(p->stat.txnb, t[i].txnb);
        assert_int_equal(p->stat.rxok, 0);
        assert_true(p->stat.ackr == t[i].ackr);
        assert_string_equal(p->stat.time, t[i].time);
    }
    /* neither rxpk nor stat, and an empty rxpk: nothing to do, but not an error */
    assert_int_equal(parse_push(p, 1, "{}"), GWMP_OK);
    assert_int_equal(p->nrxpk, 0);
    assert_false(p->stat.present);
    assert_int_equal(parse_push(p, 1, "{\"rxpk\":[],\"other\":1}"), GWMP_OK);
    assert_int_equal(p->nrxpk, 0);
    assert_false(p->stat.present);
    free(p);
}

/* Bad rxpk entries between two good ones: the bad one is kept with valid = false. */
static void test_rxpk_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        /* data */
        "{\"size\":13}",
        "{\"data\":13}",
        "{\"data\":null,\"size\":0}",
        "{\"size\":14,\"data\":\"" PHY13_B64 "\"}",
        "{\"size\":12,\"data\":\"" PHY13_B64 "\"}",
        "{\"data\":\"QNobASaAAQABobLD1A=\"}",     /* one '=' short */
        "{\"data\":\"QNobASaAAQABobLD1A===\"}",   /* one '=' too many */
        "{\"data\":\"QNobASaAAQABobLD1A\\n==\"}", /* whitespace */
        "{\"data\":\"QNob ASaAAQABobLD1A==\"}",
        "{\"data\":\"QNob=ASaAAQABobLD1A=\"}", /* padding inside */
        "{\"data\":\"=AAA\"}",
        "{\"data\":\"====\"}",
        "{\"data\":\"A\"}",     /* length % 4 == 1 */
        "{\"data\":\"AAAAA\"}", /* length % 4 == 1 */
        "{\"data\":\"AB==\"}",  /* non-zero unused bits */
        "{\"data\":\"AAB=\"}",
        "{\"data\":\"AAB\"}",
        "{\"data\":\"//-_\"}", /* URL-safe alphabet */
        "{\"data\":\"AA*A\"}",
        "{\"data\":\"\\u00e9AAA\"}",
        /* size */
        "{\"size\":256,\"data\":\"AA==\"}",
        "{\"size\":-1,\"data\":\"AA==\"}",
        "{\"size\":1.0,\"data\":\"AA==\"}",
        "{\"size\":\"1\",\"data\":\"AA==\"}",
        /* every other field: wrong type or range */
        "{\"tmst\":-1,\"data\":\"AA==\"}",
        "{\"tmst\":4294967296,\"data\":\"AA==\"}",
        "{\"tmst\":1.5,\"data\":\"AA==\"}",
        "{\"tmst\":\"1\",\"data\":\"AA==\"}",
        "{\"chan\":-1,\"data\":\"AA==\"}",
        "{\"chan\":\"2\",\"data\":\"AA==\"}",
        "{\"rfch\":-1,\"data\":\"AA==\"}",
        "{\"rfch\":true,\"data\":\"AA==\"}",
        "{\"stat\":2,\"data\":\"AA==\"}",
        "{\"stat\":-2,\"data\":\"AA==\"}",
        "{\"stat\":\"1\",\"data\":\"AA==\"}",
        "{\"freq\":\"868.1\",\"data\":\"AA==\"}",
        "{\"freq\":-868.1,\"data\":\"AA==\"}",
        "{\"rssi\":\"-35\",\"data\":\"AA==\"}",
        "{\"rssi\":null,\"data\":\"AA==\"}",
        "{\"lsnr\":[],\"data\":\"AA==\"}",
        "{\"time\":1,\"data\":\"AA==\"}",
        "{\"time\":\"0123456789012345678901234567890123456789\",\"data\":\"AA==\"}", /* 40 */
        "{\"modu\":\"LORALORA\",\"data\":\"AA==\"}",                                 /* 8 */
        "{\"modu\":7,\"data\":\"AA==\"}",
        "{\"datr\":\"SF12BW500SF12BW5\",\"data\":\"AA==\"}", /* 16 */
        "{\"datr\":-1,\"data\":\"AA==\"}",
        "{\"datr\":4294967296,\"data\":\"AA==\"}",
        "{\"datr\":50000.5,\"data\":\"AA==\"}",
        "{\"datr\":{},\"data\":\"AA==\"}",
        "{\"codr\":45,\"data\":\"AA==\"}",
        "{\"codr\":\"4/5/6/7/\",\"data\":\"AA==\"}", /* 8 */
        /* not an object at all */
        "1",
        "null",
        "\"" PHY13_B64 "\"",
        "[{\"data\":\"AA==\"}]",
    };
    const struct gwmp_rxpk good =
        rx(true, NULL, 7, 0, 0, 0, 0, "", "", "", 0, false, 0, PHY13, sizeof(PHY13));
    struct gwmp_packet *p = new_packet();
    for (size_t i = 0; i < N(bad); i++) {
        char json[1024];
        snprintf(json, sizeof(json),
                 "{\"rxpk\":[{\"tmst\":7,\"data\":\"" PHY13_B64 "\"},%s,"
                 "{\"tmst\":7,\"size\":13,\"data\":\"" PHY13_B64 "\"}]}",
                 bad[i]);
        enum gwmp_error e = parse_push(p, 2, json);
        if (e != GWMP_OK || p->nrxpk != 3 || p->rxpk[1].valid) {
            fail_msg("bad[%zu] %s: error %s nrxpk %d valid %d", i, bad[i], gwmp_error_name(e),
                     p->nrxpk, p->rxpk[1].valid);
        }
        check_rxpk(&p->rxpk[0], &good, bad[i]);
        check_rxpk(&p->rxpk[2], &good, bad[i]);
        assert_true(p->rxpk[1].size <= GWMP_MAX_PHY);
    }
    /* 256 bytes, one past GWMP_MAX_PHY: 344 symbols with "==" (canonical otherwise) */
    char json[1024];
    char b64[345];
    memset(b64, 'A', 344);
    memcpy(b64 + 342, "==", 3);
    snprintf(json, sizeof(json), "{\"rxpk\":[{\"data\":\"%s\"},{\"data\":\"%.340s\"}]}", b64, b64);
    assert_int_equal(parse_push(p, 2, json), GWMP_OK);
    assert_int_equal(p->nrxpk, 2);
    assert_false(p->rxpk[0].valid);
    assert_true(p->rxpk[1].valid); /* the same, 255 bytes long */
    assert_int_equal(p->rxpk[1].size, 255);

    /* a wrong field does not stop the others from being read (they are logged) */
    assert_int_equal(
        parse_push(p, 1, "{\"rxpk\":[{\"tmst\":-5,\"chan\":3,\"rssi\":-99,\"data\":\"AA==\"}]}"),
        GWMP_OK);
    assert_false(p->rxpk[0].valid);
    assert_int_equal(p->rxpk[0].chan, 3);
    assert_true(p->rxpk[0].rssi == -99);
    assert_int_equal(p->rxpk[0].size, 1);
    free(p);
}

/* Edges that are accepted. */
static void test_rxpk_edges(void **state)
{
    (void)state;
    static const uint8_t zero[1] = {0}, fffe[2] = {0xff, 0xfe};
    static const uint8_t ff[3] = {0xff, 0xff, 0xff};
    static uint8_t zeros255[255];
    static char max_json[512];
    char max_phy[341]; /* 255 bytes: 340 symbols, no padding */
    memset(max_phy, 'A', 340);
    max_phy[340] = '\0';
    snprintf(max_json, sizeof(max_json), "{\"size\":255,\"data\":\"%s\"}", max_phy);
    const struct {
        const char *rxpk;
        struct gwmp_rxpk want;
    } t[] = {
        {"{\"data\":\"AA==\"}", rx(true, NULL, 0, 0, 0, 0, 0, "", "", "", 0, false, 0, zero, 1)},
        {"{\"data\":\"AA\"}", rx(true, NULL, 0, 0, 0, 0, 0, "", "", "", 0, false, 0, zero, 1)},
        {"{\"data\":\"//4=\",\"size\":2}",
         rx(true, NULL, 0, 0, 0, 0, 0, "", "", "", 0, false, 0, fffe, 2)},
        {"{\"data\":\"//4\"}", rx(true, NULL, 0, 0, 0, 0, 0, "", "", "", 0, false, 0, fffe, 2)},
        {"{\"data\":\"////\"}", rx(true, NULL, 0, 0, 0, 0, 0, "", "", "", 0, false, 0, ff, 3)},
        {"{\"data\":\"\",\"size\":0}",
         rx(true, NULL, 0, 0, 0, 0, 0, "", "", "", 0, false, 0, NULL, 0)},
        {max_json, rx(true, NULL, 0, 0, 0, 0, 0, "", "", "", 0, false, 0, zeros255, 255)},
        {"{\"tmst\":4294967295,\"stat\":-1,\"chan\":2147483647,\"rfch\":1,\"freq\":470,"
         "\"rssi\":-120.5,\"lsnr\":-20,\"data\":\"AA==\","
         "\"time\":\"012345678901234567890123456789012345678\",\"modu\":\"LR-FHSS\","
         "\"datr\":4294967295,\"codr\":\"4/5LI\",\"unknown\":{\"x\":[1]}}",
         rx(true, "012345678901234567890123456789012345678", 4294967295u, 470, 2147483647, 1, -1,
            "LR-FHSS", "4294967295", "4/5LI", -120.5, true, -20, zero, 1)},
        {"{\"modu\":\"FSK\",\"datr\":0,\"data\":\"AA==\"}",
         rx(true, NULL, 0, 0, 0, 0, 0, "FSK", "0", "", 0, false, 0, zero, 1)},
        {"{\"modu\":\"FSK\",\"datr\":\"50000\",\"data\":\"AA==\"}",
         rx(true, NULL, 0, 0, 0, 0, 0, "FSK", "50000", "", 0, false, 0, zero, 1)},
        {"{\"time\":\"\",\"data\":\"AA==\"}",
         rx(true, "", 0, 0, 0, 0, 0, "", "", "", 0, false, 0, zero, 1)},
    };
    struct gwmp_packet *p = new_packet();
    for (size_t i = 0; i < N(t); i++) {
        char json[1024];
        snprintf(json, sizeof(json), "{\"rxpk\":[%s]}", t[i].rxpk);
        if (parse_push(p, 2, json) != GWMP_OK || p->nrxpk != 1) {
            fail_msg("row %zu: %s", i, t[i].rxpk);
        }
        check_rxpk(&p->rxpk[0], &t[i].want, t[i].rxpk);
    }
    free(p);
}

static void test_fsk_numeric_datr(void **state)
{
    (void)state;
    struct gwmp_packet *p = new_packet();
    assert_int_equal(parse_push(p, 1,
                                "{\"rxpk\":[{\"tmst\":1,\"chan\":8,\"rfch\":1,\"freq\":868.8,"
                                "\"stat\":1,\"modu\":\"FSK\",\"datr\":50000,\"rssi\":-75,"
                                "\"size\":16,\"data\":\"" PHY16_B64 "\"}]}"),
                     GWMP_OK);
    assert_int_equal(p->nrxpk, 1);
    assert_true(p->rxpk[0].valid);
    assert_string_equal(p->rxpk[0].modu, "FSK");
    assert_string_equal(p->rxpk[0].datr, "50000");
    assert_string_equal(p->rxpk[0].codr, "");
    assert_false(p->rxpk[0].has_lsnr);
    assert_memory_equal(p->rxpk[0].data, PHY16, 16);
    free(p);
}

/* ---- the other packet types ---------------------------------------------------------- */

static void test_pull_data(void **state)
{
    (void)state;
    static const struct {
        uint8_t version;
        uint16_t token;
        const char *extra;
    } t[] = {
        {1, 0x0000, NULL},
        {2, 0xffff, NULL},
        {2, 0xa55a, NULL},
        {1, 0x0102, "trailing bytes"},
    };
    uint8_t buf[64];
    struct gwmp_packet *p = new_packet();
    for (size_t i = 0; i < N(t); i++) {
        size_t n = dgram(buf, t[i].version, t[i].token, GWMP_PULL_DATA, true, t[i].extra);
        assert_int_equal(gwmp_parse(buf, n, p), GWMP_OK);
        check_header(p, t[i].version, t[i].token, GWMP_PULL_DATA, EUI);
        assert_int_equal(p->nrxpk, 0);
        assert_false(p->stat.present);
    }
    free(p);
}

static void test_tx_ack(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        enum gwmp_error want;
    } t[] = {
        {NULL, GWMP_OK},
        {"{\"txpk_ack\":{\"error\":\"NONE\"}}", GWMP_OK},
        {"{\"txpk_ack\":{\"error\":\"TOO_LATE\"}}", GWMP_OK},
        {"{}", GWMP_OK},
        {"{\"txpk_ack\":", GWMP_ERR_JSON},
        {"[]", GWMP_ERR_JSON},
        {"garbage", GWMP_ERR_JSON},
    };
    uint8_t buf[128];
    struct gwmp_packet *p = new_packet();
    for (size_t i = 0; i < N(t); i++) {
        size_t n = dgram(buf, 2, 0xbeef, GWMP_TX_ACK, true, t[i].json);
        if (gwmp_parse(buf, n, p) != t[i].want) {
            fail_msg("row %zu: %s", i, t[i].json ? t[i].json : "(none)");
        }
        check_header(p, 2, 0xbeef, GWMP_TX_ACK, EUI);
    }
    /* a C string's terminator alone, or after the JSON */
    size_t n = dgram(buf, 2, 1, GWMP_TX_ACK, true, NULL);
    buf[n] = 0;
    assert_int_equal(gwmp_parse(buf, n + 1, p), GWMP_OK);
    n = dgram(buf, 2, 1, GWMP_TX_ACK, true, "{}");
    buf[n] = 0;
    assert_int_equal(gwmp_parse(buf, n + 1, p), GWMP_OK);
    free(p);
}

/* What the server sends (campusgw-sim reads them): header only. */
static void test_server_packets(void **state)
{
    (void)state;
    static const uint8_t ids[] = {GWMP_PUSH_ACK, GWMP_PULL_ACK, GWMP_PULL_RESP};
    uint8_t buf[64];
    struct gwmp_packet *p = new_packet();
    for (size_t i = 0; i < N(ids); i++) {
        size_t n =
            dgram(buf, 2, 0x4321, ids[i], false, ids[i] == GWMP_PULL_RESP ? "{\"txpk\":{}}" : NULL);
        assert_int_equal(gwmp_parse(buf, n, p), GWMP_OK);
        check_header(p, 2, 0x4321, ids[i], 0);
        assert_int_equal(p->nrxpk, 0);
    }
    free(p);
}

static void test_ack_echoes_token(void **state)
{
    (void)state;
    static const uint8_t tokens[][2] = {{0x00, 0x00}, {0xff, 0xff}, {0x12, 0x34},
                                        {0x34, 0x12}, {0x00, 0xff}, {0x80, 0x01}};
    static const struct {
        uint8_t id, ack;
    } pairs[] = {{GWMP_PUSH_DATA, GWMP_PUSH_ACK}, {GWMP_PULL_DATA, GWMP_PULL_ACK}};
    uint8_t buf[64];
    struct gwmp_packet *p = new_packet();
    for (uint8_t version = 1; version <= 2; version++) {
        for (size_t t = 0; t < N(tokens); t++) {
            for (size_t k = 0; k < N(pairs); k++) {
                size_t n = dgram(buf, version, 0, pairs[k].id, true,
                                 pairs[k].id == GWMP_PUSH_DATA ? "{\"rxpk\":[]}" : NULL);
                buf[1] = tokens[t][0];
                buf[2] = tokens[t][1];
                assert_int_equal(gwmp_parse(buf, n, p), GWMP_OK);
                uint8_t ack[4] = {0xee, 0xee, 0xee, 0xee};
                assert_int_equal(gwmp_ack(p, ack), 4);
                const uint8_t want[4] = {version, tokens[t][0], tokens[t][1], pairs[k].ack};
                assert_memory_equal(ack, want, 4);
            }
        }
    }
    /* a PUSH_DATA whose JSON is bad is still acknowledged, with its token */
    size_t n = dgram(buf, 2, 0xabcd, GWMP_PUSH_DATA, true, "{bad");
    assert_int_equal(gwmp_parse(buf, n, p), GWMP_ERR_JSON);
    uint8_t ack[4];
    assert_int_equal(gwmp_ack(p, ack), 4);
    const uint8_t want[4] = {2, 0xab, 0xcd, GWMP_PUSH_ACK};
    assert_memory_equal(ack, want, 4);
    /* nothing to acknowledge for the rest */
    static const uint8_t none[] = {GWMP_TX_ACK, GWMP_PUSH_ACK, GWMP_PULL_ACK, GWMP_PULL_RESP};
    for (size_t i = 0; i < N(none); i++) {
        n = dgram(buf, 2, 1, none[i], true, NULL);
        assert_int_equal(gwmp_parse(buf, n, p), GWMP_OK);
        assert_int_equal(gwmp_ack(p, ack), -EINVAL);
    }
    free(p);
}

/* ---- rejected datagrams ------------------------------------------------------------ */

static void test_wrong_version(void **state)
{
    (void)state;
    static const uint8_t versions[] = {0, 3, 4, 0x7f, 0x80, 0xff};
    uint8_t buf[64];
    struct gwmp_packet *p = new_packet();
    for (size_t v = 0; v < N(versions); v++) {
        for (uint8_t id = 0; id <= GWMP_TX_ACK; id++) {
            size_t n = dgram(buf, versions[v], 0x1111, id, true, "{}");
            assert_int_equal(gwmp_parse(buf, n, p), GWMP_ERR_VERSION);
            assert_int_equal(p->version, versions[v]);
            assert_int_equal(p->nrxpk, 0);
        }
    }
    free(p);
}

static void test_unknown_identifier(void **state)
{
    (void)state;
    uint8_t buf[64];
    struct gwmp_packet *p = new_packet();
    for (unsigned id = GWMP_TX_ACK + 1; id <= 0xff; id++) {
        for (uint8_t version = 1; version <= 2; version++) {
            size_t n = dgram(buf, version, 7, (uint8_t)id, true, "{\"rxpk\":[]}");
            assert_int_equal(gwmp_parse(buf, n, p), GWMP_ERR_IDENTIFIER);
            assert_int_equal(p->identifier, id);
        }
    }
    free(p);
}

static void test_every_short_length(void **state)
{
    (void)state;
    static const struct {
        uint8_t id;
        size_t min;
    } t[] = {
        {GWMP_PUSH_DATA, 12}, {GWMP_PUSH_ACK, 4}, {GWMP_PULL_DATA, 12},
        {GWMP_PULL_RESP, 4},  {GWMP_PULL_ACK, 4}, {GWMP_TX_ACK, 12},
    };
    uint8_t buf[64];
    struct gwmp_packet *p = new_packet();
    for (size_t i = 0; i < N(t); i++) {
        for (uint8_t version = 1; version <= 2; version++) {
            dgram(buf, version, 0x5555, t[i].id, true, "{}");
            for (size_t len = 0; len < t[i].min; len++) {
                memset(p, 0x5a, sizeof(*p));
                if (gwmp_parse(buf, len, p) != GWMP_ERR_SHORT) {
                    fail_msg("id %u len %zu: not short", t[i].id, len);
                }
                assert_int_equal(p->nrxpk, 0);
            }
            /* exactly the header: PUSH_DATA lacks its JSON, the others are complete */
            enum gwmp_error want = t[i].id == GWMP_PUSH_DATA ? GWMP_ERR_JSON : GWMP_OK;
            assert_int_equal(gwmp_parse(buf, t[i].min, p), want);
        }
    }
    assert_int_equal(gwmp_parse(NULL, 12, p), GWMP_ERR_SHORT);
    free(p);
}

static void test_invalid_json(void **state)
{
    (void)state;
    static const char *t[] = {
        "",
        " ",
        "{",
        "}",
        "{\"rxpk\":[}",
        "{\"rxpk\":[{\"data\":\"AA==\"}]",
        "{\"rxpk\":[]}}",
        "{\"rxpk\":[]} x",
        "{\"rxpk\":[]}{}",
        "{'rxpk':[]}",
        "{\"rxpk\":[],}",
        "{rxpk:[]}",
        "[]",
        "[{\"rxpk\":[]}]",
        "null",
        "1",
        "\"rxpk\"",
        "{\"rxpk\":{}}",
        "{\"rxpk\":{\"data\":\"AA==\"}}",
        "{\"rxpk\":\"\"}",
        "{\"rxpk\":null}",
        "{\"stat\":[]}",
        "{\"stat\":1}",
        "{\"stat\":null}",
        "{\"rxpk\":[],\"rxpk\":[]}",                          /* duplicate key */
        "{\"rxpk\":[{\"data\":\"AA==\",\"data\":\"AQ==\"}]}", /* duplicate key */
        "{\"rxpk\":[{\"data\":\"\\u0000\"}]}",                /* NUL inside a string */
        "{\"rxpk\":[{\"data\":\"\xff\"}]}",                   /* not UTF-8 */
        "{\"rxpk\":[{\"tmst\":99999999999999999999999}]}",    /* integer overflow */
        "{\"rxpk\":[{\"rssi\":1e999}]}",                      /* real overflow */
        "{\"rxpk\":[{\"rssi\":NaN}]}",
        "\x00{}",
    };
    struct gwmp_packet *p = new_packet();
    for (size_t i = 0; i < N(t); i++) {
        for (uint8_t version = 1; version <= 2; version++) {
            if (parse_push(p, version, t[i]) != GWMP_ERR_JSON) {
                fail_msg("row %zu: %s: not a JSON error", i, t[i]);
            }
            /* the header is there for the ACK and the log */
            check_header(p, version, 0x1234, GWMP_PUSH_DATA, EUI);
            assert_int_equal(p->nrxpk, 0);
            assert_false(p->stat.present);
        }
    }
    /* embedded NUL after a complete object: not the terminator the forwarder may add */
    uint8_t buf[64];
    size_t n = dgram(buf, 2, 1, GWMP_PUSH_DATA, true, "{}");
    buf[n] = 0;
    buf[n + 1] = ' ';
    assert_int_equal(gwmp_parse(buf, n + 2, p), GWMP_ERR_JSON);
    free(p);
}

static void test_trailing_nul(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct gwmp_packet *p = new_packet();
    for (size_t nuls = 1; nuls <= 3; nuls++) {
        size_t n = dgram(buf, 2, 1, GWMP_PUSH_DATA, true,
                         "{\"rxpk\":[{\"size\":13,\"data\":\"" PHY13_B64 "\"}]}");
        memset(buf + n, 0, nuls);
        assert_int_equal(gwmp_parse(buf, n + nuls, p), GWMP_OK);
        assert_int_equal(p->nrxpk, 1);
        assert_true(p->rxpk[0].valid);
    }
    free(p);
}

/* 64 KiB, the largest a UDP datagram gets */
static void test_64k_datagrams(void **state)
{
    (void)state;
    uint8_t *buf = malloc(BIG);
    assert_non_null(buf);
    struct gwmp_packet *p = new_packet();

    /* junk after a plausible start: every byte value but NUL (which ends it) */
    size_t n = dgram(buf, 2, 0x0bad, GWMP_PUSH_DATA, true, "{\"rxpk\":[{\"data\":\"");
    uint32_t x = 12345;
    for (; n < BIG; n++) {
        x = x * 1103515245u + 12345u;
        buf[n] = (uint8_t)(x >> 16) | 1;
    }
    assert_int_equal(gwmp_parse(buf, BIG, p), GWMP_ERR_JSON);
    check_header(p, 2, 0x0bad, GWMP_PUSH_DATA, EUI);

    /* deeply nested arrays */
    n = dgram(buf, 2, 1, GWMP_PUSH_DATA, true, "{\"x\":");
    memset(buf + n, '[', BIG - n);
    assert_int_equal(gwmp_parse(buf, BIG, p), GWMP_ERR_JSON);

    /* one valid rxpk padded out to 64 KiB with whitespace */
    n = dgram(buf, 1, 2, GWMP_PUSH_DATA, true,
              "{\"rxpk\":[{\"size\":13,\"data\":\"" PHY13_B64 "\"}]");
    memset(buf + n, ' ', BIG - n - 1);
    buf[BIG - 1] = '}';
    assert_int_equal(gwmp_parse(buf, BIG, p), GWMP_OK);
    assert_int_equal(p->nrxpk, 1);
    assert_true(p->rxpk[0].valid);
    assert_memory_equal(p->rxpk[0].data, PHY13, sizeof(PHY13));

    /* a huge data string decodes to more than GWMP_MAX_PHY: that rxpk only is invalid */
    n = dgram(buf, 1, 2, GWMP_PUSH_DATA, true, "{\"rxpk\":[{\"data\":\"");
    memset(buf + n, 'A', BIG - n - 4);
    memcpy(buf + BIG - 4, "\"}]}", 4);
    assert_int_equal(gwmp_parse(buf, BIG, p), GWMP_OK);
    assert_int_equal(p->nrxpk, 1);
    assert_false(p->rxpk[0].valid);

    /* more rxpk than GWMP_MAX_RXPK: the first ones are kept, the rest ignored */
    static struct gwmp_rxpk many[GWMP_MAX_RXPK + 8];
    for (size_t i = 0; i < N(many); i++) {
        many[i] = rx(true, NULL, (uint32_t)i, 868.1, 0, 0, 1, "LORA", "SF12BW125", "4/5", -100,
                     true, -7.5, PHY13, sizeof(PHY13));
    }
    int len = gwmp_build_push_data(buf, BIG, 2, 3, EUI, many, (int)N(many));
    assert_true(len > 0);
    assert_int_equal(gwmp_parse(buf, (size_t)len, p), GWMP_OK);
    assert_int_equal(p->nrxpk, GWMP_MAX_RXPK);
    for (int i = 0; i < GWMP_MAX_RXPK; i++) {
        check_rxpk(&p->rxpk[i], &many[i], "many");
    }
    free(p);
    free(buf);
}

/* ---- build ------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    static uint8_t phy255[255];
    for (size_t i = 0; i < sizeof(phy255); i++) {
        phy255[i] = (uint8_t)(i * 7 + 3);
    }
    const struct gwmp_rxpk sets[][3] = {
        {rx(true, "2024-05-01T08:00:00.000001Z", 1, 470.3, 0, 0, 1, "LORA", "SF7BW125", "4/5", -35,
            true, 5.1, PHY13, sizeof(PHY13)),
         rx(true, NULL, 4294967295u, 869.1, 9, 1, 1, "FSK", "50000", "", -75, false, 0, PHY16, 16),
         rx(true, NULL, 0, 0, 0, 0, -1, "", "", "", 0, false, 0, NULL, 0)},
        {rx(true, "quote\" backslash\\ tab\t nl\n \x01", 77, 868.123456, 7, 1, 0, "LORA",
            "SF12BW500", "4/8", -119.25, true, -19.75, phy255, 255),
         rx(true, "\xe4\xb8\xad", 1, 1e-300, 100, 2, 1, "FSK", "0123", "x", 1e300, true, -0.0,
            phy255, 1),
         rx(true, NULL, 2, 923.3, 1, 0, 1, "LORA", "SF9BW125", "4/5", -80, true, 0.1, phy255, 2)},
    };
    uint8_t *buf = malloc(BIG);
    assert_non_null(buf);
    struct gwmp_packet *p = new_packet();
    for (size_t s = 0; s < N(sets); s++) {
        for (int n = 0; n <= 3; n++) {
            for (uint8_t version = 1; version <= 2; version++) {
                int len = gwmp_build_push_data(buf, BIG, version, 0xfedc, EUI, sets[s], n);
                assert_true(len > 12);
                const uint8_t head[12] = {version, 0xfe, 0xdc, 0,    0xAA, 0x55,
                                          0x5A,    0,    0,    0x00, 0x01, 0x01};
                assert_memory_equal(buf, head, 12);
                if (gwmp_parse(buf, (size_t)len, p) != GWMP_OK) {
                    fail_msg("set %zu n %d: %.*s", s, n, len - 12, (const char *)buf + 12);
                }
                check_header(p, version, 0xfedc, GWMP_PUSH_DATA, EUI);
                assert_int_equal(p->nrxpk, n);
                for (int i = 0; i < n; i++) {
                    check_rxpk(&p->rxpk[i], &sets[s][i], "round trip");
                }
            }
        }
    }
    /* the forwarder's wire form: FSK datr a number, LoRa a string, data padded */
    int len = gwmp_build_push_data(buf, BIG, 2, 1, EUI, sets[0], 2);
    assert_true(len > 0);
    buf[len] = 0;
    const char *json = (const char *)buf + 12;
    assert_non_null(strstr(json, "\"datr\":50000,"));
    assert_non_null(strstr(json, "\"datr\":\"SF7BW125\""));
    assert_non_null(strstr(json, "\"data\":\"" PHY13_B64 "\""));
    assert_non_null(strstr(json, "\"freq\":470.3,"));
    assert_non_null(strstr(json, "\"rssi\":-35,"));
    /* whole numbers as forwarders write them, never "-9e+01" */
    struct gwmp_rxpk round = sets[0][0];
    round.rssi = -90;
    round.freq = 470;
    len = gwmp_build_push_data(buf, BIG, 2, 1, EUI, &round, 1);
    assert_true(len > 0);
    buf[len] = 0;
    assert_non_null(strstr(json, "\"rssi\":-90,"));
    assert_non_null(strstr(json, "\"freq\":470,"));
    assert_null(strstr(json, "e+"));
    free(p);
    free(buf);
}

static void test_build_errors(void **state)
{
    (void)state;
    const struct gwmp_rxpk good =
        rx(true, "t", 1, 868.1, 0, 0, 1, "LORA", "SF7BW125", "4/5", -35, true, 5.1, PHY13, 13);
    uint8_t buf[1024];
    int len = gwmp_build_push_data(buf, sizeof(buf), 1, 1, EUI, &good, 1);
    assert_true(len > 12);
    /* every buffer too small fails without writing past its end */
    for (size_t size = 0; size < (size_t)len; size++) {
        uint8_t small[1024];
        memset(small, 0xcc, sizeof(small));
        assert_int_equal(gwmp_build_push_data(small, size, 1, 1, EUI, &good, 1), -1);
        for (size_t i = size; i < sizeof(small); i++) {
            if (small[i] != 0xcc) {
                fail_msg("size %zu: byte %zu written", size, i);
            }
        }
    }
    assert_int_equal(gwmp_build_push_data(buf, (size_t)len, 1, 1, EUI, &good, 1), len);

    assert_int_equal(gwmp_build_push_data(NULL, 10, 1, 1, EUI, &good, 1), -1);
    assert_int_equal(gwmp_build_push_data(buf, sizeof(buf), 0, 1, EUI, &good, 1), -1);
    assert_int_equal(gwmp_build_push_data(buf, sizeof(buf), 3, 1, EUI, &good, 1), -1);
    assert_int_equal(gwmp_build_push_data(buf, sizeof(buf), 1, 1, EUI, &good, -1), -1);
    assert_int_equal(gwmp_build_push_data(buf, sizeof(buf), 1, 1, EUI, NULL, 1), -1);
    assert_int_equal(gwmp_build_push_data(buf, sizeof(buf), 1, 1, EUI, NULL, 0), 12 + 11);

    struct gwmp_rxpk bad[8];
    for (size_t i = 0; i < N(bad); i++) {
        bad[i] = good;
    }
    bad[0].size = GWMP_MAX_PHY + 1;
    bad[1].stat = 2;
    bad[2].chan = -1;
    bad[3].rssi = 0.0 / 0.0;
    bad[4].freq = 1.0 / 0.0;
    bad[5].lsnr = -1.0 / 0.0;
    memset(bad[6].time, 'x', sizeof(bad[6].time)); /* not terminated */
    memset(bad[7].codr, 'x', sizeof(bad[7].codr));
    for (size_t i = 0; i < N(bad); i++) {
        if (gwmp_build_push_data(buf, sizeof(buf), 2, 1, EUI, &bad[i], 1) != -1) {
            fail_msg("bad[%zu] built", i);
        }
    }
}

static void test_error_names(void **state)
{
    (void)state;
    static const struct {
        enum gwmp_error e;
        const char *name;
    } t[] = {
        {GWMP_OK, "ok"},
        {GWMP_ERR_SHORT, "short"},
        {GWMP_ERR_VERSION, "version"},
        {GWMP_ERR_IDENTIFIER, "identifier"},
        {GWMP_ERR_JSON, "json"},
        {GWMP_ERR_COUNT, "unknown"},
        {(enum gwmp_error)99, "unknown"},
    };
    for (size_t i = 0; i < N(t); i++) {
        assert_string_equal(gwmp_error_name(t[i].e), t[i].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_data_full),
        cmocka_unit_test(test_stat_only),
        cmocka_unit_test(test_rxpk_malformed),
        cmocka_unit_test(test_rxpk_edges),
        cmocka_unit_test(test_fsk_numeric_datr),
        cmocka_unit_test(test_pull_data),
        cmocka_unit_test(test_tx_ack),
        cmocka_unit_test(test_server_packets),
        cmocka_unit_test(test_ack_echoes_token),
        cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_unknown_identifier),
        cmocka_unit_test(test_every_short_length),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_trailing_nul),
        cmocka_unit_test(test_64k_datagrams),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_error_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
