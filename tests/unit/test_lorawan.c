/*
 * LoRaWAN 1.0 frames of sensors/lora/lorawan.c: the public vectors of
 * shared/vectors, vectors that lora-packet (npm, an independent encoder)
 * makes at test time, FCnt policy, malformed frames and hex parsing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "lora/lorawan.h"

#define MAX_PHY 300

#define EXPECT_INT(what, got, want)                                                                \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        if (got_ != want_) {                                                                       \
            fail_msg("%s: %s is %lld, want %lld", what, #got, got_, want_);                        \
        }                                                                                          \
    } while (0)

#define EXPECT_BYTES(what, got, want, n)                                                           \
    do {                                                                                           \
        if (memcmp((got), (want), (n)) != 0) {                                                     \
            char g_[2 * MAX_PHY + 1], w_[2 * MAX_PHY + 1];                                         \
            fail_msg("%s: %s\n  got  %s\n  want %s", what, #got, hex_of(g_, (got), (n)),           \
                     hex_of(w_, (want), (n)));                                                     \
        }                                                                                          \
    } while (0)

static char *hex_of(char *buf, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n && i < MAX_PHY; i++) {
        sprintf(buf + 2 * i, "%02x", b[i]);
    }
    buf[2 * (n < MAX_PHY ? n : MAX_PHY)] = '\0';
    return buf;
}

/* Any-length hex (for payloads); -1 on odd length, non-hex or overflow. */
static long unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);

    if (n % 2 != 0 || n / 2 > cap) {
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        char two[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        char *end;

        v = (unsigned)strtoul(two, &end, 16);
        if (*end != '\0' || two[0] == '+' || two[0] == '-' || two[0] == ' ') {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    return (long)(n / 2);
}

/* ---- one data-up vector, from either source ----------------------------- */

struct vec {
    char id[32];
    uint8_t nwk[LW_KEY_LEN], app[LW_KEY_LEN];
    uint32_t dev_addr;
    uint32_t fcnt;
    bool has_confirmed; /* the public vectors leave MType to the bytes */
    bool confirmed;
    bool has_fctrl;
    uint8_t fctrl;
    bool has_fopts;
    uint8_t fopts[15];
    size_t fopts_len;
    int fport; /* -1: none */
    uint8_t plain[MAX_PHY];
    size_t plain_len;
    uint8_t phy[MAX_PHY];
    size_t phy_len;
};

static const char *jstr(json_t *o, const char *key, const char *id)
{
    const char *s = json_string_value(json_object_get(o, key));

    if (s == NULL) {
        fail_msg("vector %s: no string \"%s\"", id, key);
    }
    return s;
}

static void hex_field(json_t *o, const char *key, const char *id, uint8_t *out, size_t cap,
                      size_t *len)
{
    long n = unhex(jstr(o, key, id), out, cap);

    if (n < 0) {
        fail_msg("vector %s: bad hex in \"%s\"", id, key);
    }
    *len = (size_t)n;
}

/* Reads a vector object of either file; optional keys only when present. */
static void vec_from_json(json_t *o, struct vec *v)
{
    const char *id;
    json_t *j;
    size_t n;

    memset(v, 0, sizeof(*v));
    id = jstr(o, "id", "?");
    snprintf(v->id, sizeof(v->id), "%s", id);
    assert_int_equal(lw_parse_key(jstr(o, "nwk_s_key", id), v->nwk), 0);
    assert_int_equal(lw_parse_key(jstr(o, "app_s_key", id), v->app), 0);
    assert_int_equal(lw_parse_dev_addr(jstr(o, "dev_addr", id), &v->dev_addr), 0);
    j = json_object_get(o, "fcnt");
    if (!json_is_integer(j) || json_integer_value(j) < 0 ||
        json_integer_value(j) > (json_int_t)UINT32_MAX) {
        fail_msg("vector %s: bad fcnt", id);
    }
    v->fcnt = (uint32_t)json_integer_value(j);
    j = json_object_get(o, "fport");
    v->fport = json_is_integer(j) ? (int)json_integer_value(j) : -1;
    if (!json_is_integer(j) && !json_is_null(j)) {
        fail_msg("vector %s: bad fport", id);
    }
    if ((j = json_object_get(o, "confirmed")) != NULL) {
        v->has_confirmed = true;
        v->confirmed = json_is_true(j);
    }
    if ((j = json_object_get(o, "fctrl")) != NULL) {
        v->has_fctrl = true;
        v->fctrl = (uint8_t)json_integer_value(j);
    }
    if (json_object_get(o, "fopts") != NULL) {
        v->has_fopts = true;
        hex_field(o, "fopts", id, v->fopts, sizeof(v->fopts), &v->fopts_len);
    }
    hex_field(o, "plain", id, v->plain, sizeof(v->plain), &v->plain_len);
    hex_field(o, "phy", id, v->phy, sizeof(v->phy), &n);
    v->phy_len = n;
}

/*
 * The whole check of one vector: our parse, MIC and decryption of its bytes,
 * our build from its fields gives its bytes, and a flipped bit is caught:
 * every bit of every byte (all_bits), or one bit of every byte (cheaper, for
 * the hundreds of generated vectors; valgrind runs this too).
 */
static void check_vector(const struct vec *v, bool all_bits)
{
    struct lw_frame f;
    uint8_t plain[LW_MAX_PAYLOAD];
    uint8_t built[MAX_PHY];
    uint8_t tampered[MAX_PHY];
    int len;
    int mic_caught = 0;
    const char *id = v->id;

    EXPECT_INT(id, lw_parse(v->phy, v->phy_len, &f), LW_OK);
    EXPECT_INT(id, f.dev_addr, v->dev_addr);
    EXPECT_INT(id, f.fcnt16, v->fcnt & 0xffff);
    EXPECT_INT(id, f.has_fport, v->fport >= 0);
    if (v->fport >= 0) {
        EXPECT_INT(id, f.fport, v->fport);
    }
    EXPECT_INT(id, f.frm_len, v->plain_len);
    EXPECT_INT(id, f.phy_len, v->phy_len);
    assert_ptr_equal(f.phy, v->phy);
    if (v->has_confirmed) {
        EXPECT_INT(id, f.mtype, v->confirmed ? LW_CONFIRMED_UP : LW_UNCONFIRMED_UP);
    }
    if (v->has_fctrl) {
        EXPECT_INT(id, f.fctrl & 0xf0, v->fctrl);
    }
    if (v->has_fopts) {
        EXPECT_INT(id, f.fopts_len, v->fopts_len);
        EXPECT_BYTES(id, f.fopts, v->fopts, v->fopts_len);
    }
    EXPECT_BYTES(id, f.mic, v->phy + v->phy_len - 4, 4);

    /* The counter the server would reconstruct from the previous one. */
    if (v->fcnt > 0) {
        EXPECT_INT(id, lw_fcnt_full(f.fcnt16, v->fcnt - 1, true), v->fcnt);
    }
    if (!lw_verify_mic(v->nwk, &f, v->fcnt)) {
        fail_msg("%s: MIC does not verify", id);
    }
    if (v->fcnt > 0xffff && lw_verify_mic(v->nwk, &f, v->fcnt & 0xffff)) {
        fail_msg("%s: MIC verifies without the high 16 bits of FCnt", id);
    }
    {
        uint8_t mic[4];
        lw_compute_mic(v->nwk, &f, v->fcnt, mic);
        EXPECT_BYTES(id, mic, f.mic, 4);
    }
    lw_crypt_payload(f.fport == 0 ? v->nwk : v->app, f.dev_addr, v->fcnt, 0, f.frm_payload,
                     f.frm_len, plain);
    EXPECT_BYTES(id, plain, v->plain, v->plain_len);

    len = lw_build_uplink(built, sizeof(built), f.mtype == LW_CONFIRMED_UP, v->dev_addr, v->fcnt,
                          f.fctrl, f.fopts, f.fopts_len, v->fport, v->plain, v->plain_len, v->nwk,
                          v->app);
    EXPECT_INT(id, len, v->phy_len);
    EXPECT_BYTES(id, built, v->phy, v->phy_len);

    /* Every single-bit flip either breaks the structure or the MIC. */
    for (size_t i = 0; i < v->phy_len; i++) {
        for (int bit = all_bits ? 0 : (int)(i % 8); bit < (all_bits ? 8 : (int)(i % 8) + 1);
             bit++) {
            struct lw_frame t;

            memcpy(tampered, v->phy, v->phy_len);
            tampered[i] ^= (uint8_t)(1u << bit);
            if (lw_parse(tampered, v->phy_len, &t) != LW_OK) {
                continue;
            }
            if (lw_verify_mic(v->nwk, &t, v->fcnt)) {
                fail_msg("%s: flipping bit %d of byte %zu still verifies", id, bit, i);
            }
            mic_caught++;
        }
    }
    /* The flips of DevAddr, FCnt and MIC always parse: the MIC must have caught them. */
    if (mic_caught < (all_bits ? 8 : 1) * 10) {
        fail_msg("%s: only %d flips reached the MIC check", id, mic_caught);
    }
}

/* ---- (1) public vectors ------------------------------------------------- */

static void shared_vectors_path(char *buf, size_t size)
{
    const char *dir = getenv("GW_SHARED_VECTORS");
    const char *data = getenv("GW_TEST_DATA");

    if (dir != NULL && *dir != '\0') {
        snprintf(buf, size, "%s/lorawan-1.0-public.json", dir);
    } else if (data != NULL && *data != '\0') {
        /* <repo>/tests/unit/data -> <repo>/../shared/vectors */
        snprintf(buf, size, "%s/../../../../shared/vectors/lorawan-1.0-public.json", data);
    } else {
        fail_msg("set GW_SHARED_VECTORS (or GW_TEST_DATA) to find lorawan-1.0-public.json");
    }
}

static void test_public_vectors(void **state)
{
    char path[4096];
    json_error_t err;
    json_t *root, *arr;
    size_t i, n;
    bool saw_port0 = false, saw_fopts = false, saw_confirmed = false;

    (void)state;
    shared_vectors_path(path, sizeof(path));
    root = json_load_file(path, 0, &err);
    if (root == NULL) {
        fail_msg("cannot read %s: %s (line %d)", path, err.text, err.line);
    }
    arr = json_object_get(root, "vectors");
    assert_true(json_is_array(arr));
    n = json_array_size(arr);
    assert_true(n >= 8);
    for (i = 0; i < n; i++) {
        struct vec v;
        struct lw_frame f;

        vec_from_json(json_array_get(arr, i), &v);
        check_vector(&v, true);
        assert_int_equal(lw_parse(v.phy, v.phy_len, &f), LW_OK);
        saw_port0 |= f.has_fport && f.fport == 0;
        saw_fopts |= f.fopts_len > 0;
        saw_confirmed |= f.mtype == LW_CONFIRMED_UP;
    }
    /* The file must keep covering both keys, FOpts and both MTypes. */
    assert_true(saw_port0 && saw_fopts && saw_confirmed);
    json_decref(root);
}

/* ---- (2) lora-packet vectors made now ----------------------------------- */

static void test_lora_packet_vectors(void **state)
{
    char script[4096], cmd[4200];
    const char *src = getenv("GW_SOURCE_DIR");
    const char *data = getenv("GW_TEST_DATA");
    FILE *p;
    char *line = NULL;
    size_t cap = 0;
    long count = -1, seen = 0;
    int status;
    bool saw_big_fcnt = false, saw_no_port = false, saw_port0 = false, saw_fopts_payload = false;

    (void)state;
    if (src != NULL && *src != '\0') {
        snprintf(script, sizeof(script), "%s/tests/unit/lorawan_vectors.js", src);
    } else if (data != NULL && *data != '\0') {
        snprintf(script, sizeof(script), "%s/../lorawan_vectors.js", data);
    } else {
        fail_msg("set GW_SOURCE_DIR (or GW_TEST_DATA) to find tests/unit/lorawan_vectors.js");
    }
    if (strchr(script, '\'') != NULL) {
        fail_msg("cannot quote the path %s for the shell", script);
    }
    snprintf(cmd, sizeof(cmd), "node '%s'", script);
    p = popen(cmd, "r");
    if (p == NULL) {
        fail_msg("popen(%s): %s", cmd, strerror(errno));
    }
    while (getline(&line, &cap, p) > 0) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        struct vec v;

        if (o == NULL) {
            fail_msg("lorawan_vectors.js printed a line that is not JSON: %s", line);
        }
        if (json_object_get(o, "count") != NULL) {
            count = (long)json_integer_value(json_object_get(o, "count"));
            json_decref(o);
            continue;
        }
        vec_from_json(o, &v);
        json_decref(o);
        check_vector(&v, false);
        seen++;
        saw_big_fcnt |= v.fcnt > 0xffff;
        saw_no_port |= v.fport < 0;
        saw_port0 |= v.fport == 0;
        saw_fopts_payload |= v.fopts_len > 0 && v.plain_len > 0;
    }
    free(line);
    status = pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail_msg("`%s` failed (exit %d): needs nodejs and the npm package lora-packet "
                 "(npm ci --prefix tests/unit; scripts/test installs both)",
                 cmd, status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    if (count < 0 || count != seen) {
        fail_msg("lorawan_vectors.js: read %ld vectors, its count line says %ld", seen, count);
    }
    assert_true(seen >= 400);
    assert_true(saw_big_fcnt && saw_no_port && saw_port0 && saw_fopts_payload);
}

/* ---- (3) FCnt ----------------------------------------------------------- */

struct full_case {
    const char *what;
    uint16_t fcnt16;
    uint32_t last;
    bool has_last;
    uint32_t want;
};

static const struct full_case full_cases[] = {
    {"first frame, no history", 0x1234, 0, false, 0x1234},
    {"first frame ignores last", 7, 0xabcdef, false, 7},
    {"next", 6, 5, true, 6},
    {"skip a few", 10, 5, true, 10},
    {"from zero", 1, 0, true, 1},
    {"roll-over 0xffff -> 0", 0x0000, 0xffff, true, 0x10000},
    {"roll-over across 16 bits", 0x0001, 0x1ffff, true, 0x20001},
    {"roll-over with a lost frame", 0x0002, 0xfffe, true, 0x10002},
    {"high bits kept", 0x5679, 0x12345678, true, 0x12345679},
    {"exactly MAX_GAP ahead", 100 + LW_MAX_FCNT_GAP, 100, true, 100 + LW_MAX_FCNT_GAP},
    {"MAX_GAP ahead across roll-over", (0xfff0 + LW_MAX_FCNT_GAP) & 0xffff, 0xfff0, true,
     0xfff0 + LW_MAX_FCNT_GAP},
    {"half the space ahead, read ahead", 0x8000, 0, true, 0x8000},
    {"no lower candidate, read ahead", 0x9000, 5, true, 0x9000},
    /* more than half the 16-bit space ahead: read as gone back */
    {"replay of the last (same 16 bits)", 0x0005, 0x20005, true, 0x20005},
    {"replay of an older frame", 0x0003, 0x20005, true, 0x20003},
    {"device restarted its counter", 0x0000, 0x301f4, true, 0x30000},
    {"replay just below a roll-over", 0xffff, 0x10001, true, 0xffff},
    {"last at the top of 32 bits", 0xffff, 0xffffffff, true, 0xffffffff},
    {"past the top of 32 bits", 0x0000, 0xffffffff, true, 0xffff0000},
};

static void test_fcnt_full(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(full_cases) / sizeof(full_cases[0]); i++) {
        const struct full_case *c = &full_cases[i];
        EXPECT_INT(c->what, lw_fcnt_full(c->fcnt16, c->last, c->has_last), c->want);
    }
}

struct check_case {
    const char *what;
    uint32_t fcnt, last;
    bool has_last, relax;
    enum lw_error want;
};

static const struct check_case check_cases[] = {
    {"first frame", 0, 0, false, false, LW_OK},
    {"first frame, any value", 0xfffffff0, 12, false, false, LW_OK},
    {"next", 6, 5, true, false, LW_OK},
    {"across roll-over", 0x10000, 0xffff, true, false, LW_OK},
    {"equal: replay", 5, 5, true, false, LW_ERR_REPLAY},
    {"equal: replay even relaxed", 5, 5, true, true, LW_ERR_REPLAY},
    {"lower: replay", 4, 5, true, false, LW_ERR_REPLAY},
    {"zero after counting: replay", 0, 0x30000, true, false, LW_ERR_REPLAY},
    {"lower, relaxed (restart)", 0, 0x30000, true, true, LW_OK},
    {"lower by one, relaxed", 4, 5, true, true, LW_OK},
    {"exactly MAX_GAP", 100 + LW_MAX_FCNT_GAP, 100, true, false, LW_OK},
    {"MAX_GAP + 1", 101 + LW_MAX_FCNT_GAP, 100, true, false, LW_ERR_FCNT_GAP},
    {"MAX_GAP + 1 relaxed is still a gap", 101 + LW_MAX_FCNT_GAP, 100, true, true, LW_ERR_FCNT_GAP},
    {"gap near the top", 0xffffffff, 0xffffffff - LW_MAX_FCNT_GAP - 1, true, false,
     LW_ERR_FCNT_GAP},
    {"MAX_GAP near the top", 0xffffffff, 0xffffffff - LW_MAX_FCNT_GAP, true, false, LW_OK},
};

static void test_check_fcnt(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
        const struct check_case *c = &check_cases[i];
        EXPECT_INT(c->what, lw_check_fcnt(c->fcnt, c->last, c->has_last, c->relax), c->want);
    }
}

/* The two together, as the driver uses them, for a stream of 16-bit counters. */
static void test_fcnt_stream(void **state)
{
    uint32_t last = 0xfff0;
    uint16_t on_air;

    (void)state;
    for (uint32_t want = 0xfff1; want < 0x20010; want += 3) {
        on_air = (uint16_t)want;
        uint32_t full = lw_fcnt_full(on_air, last, true);
        EXPECT_INT("stream", full, want);
        EXPECT_INT("stream", lw_check_fcnt(full, last, true, false), LW_OK);
        /* the same frame once more is a replay */
        EXPECT_INT("stream replay",
                   lw_check_fcnt(lw_fcnt_full(on_air, full, true), full, true, false),
                   LW_ERR_REPLAY);
        last = full;
    }
}

/* ---- (4) malformed and foreign frames ----------------------------------- */

static const uint8_t NWK[LW_KEY_LEN] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                        0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};
static const uint8_t APP[LW_KEY_LEN] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                        0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

static void test_short_frames(void **state)
{
    uint8_t buf[16];
    struct lw_frame f;

    (void)state;
    memset(buf, 0, sizeof(buf));
    buf[0] = 0x40; /* unconfirmed data up */
    for (size_t len = 0; len < 12; len++) {
        char what[32];
        snprintf(what, sizeof(what), "length %zu", len);
        EXPECT_INT(what, lw_parse(buf, len, &f), LW_ERR_MALFORMED);
    }
    EXPECT_INT("length 12", lw_parse(buf, 12, &f), LW_OK);
    EXPECT_INT("length 12", f.has_fport, false);
    EXPECT_INT("length 12", f.frm_len, 0);
    EXPECT_INT("NULL", lw_parse(NULL, 12, &f), LW_ERR_MALFORMED);
}

struct bad_case {
    const char *what;
    const char *hex;
    enum lw_error want;
};

static const struct bad_case bad_cases[] = {
    /* MHDR | DevAddr | FCtrl | FCnt | FOpts | FPort | FRMPayload | MIC */
    {"FOptsLen 1, nothing",
     "40"
     "04030201"
     "01"
     "0000"
     ""
     "11223344",
     LW_ERR_MALFORMED},
    {"FOptsLen 15, 14 bytes",
     "40"
     "04030201"
     "0f"
     "0000"
     "0102030405060708090a0b0c0d0e"
     "11223344",
     LW_ERR_MALFORMED},
    {"FOptsLen 3, 2 bytes",
     "40"
     "04030201"
     "03"
     "0000"
     "0203"
     "11223344",
     LW_ERR_MALFORMED},
    {"FOptsLen 2 fits exactly",
     "40"
     "04030201"
     "02"
     "0000"
     "0203"
     "11223344",
     LW_OK},
    {"FPort 0 with FOpts",
     "40"
     "04030201"
     "01"
     "0000"
     "02"
     "00"
     "aa"
     "11223344",
     LW_ERR_MALFORMED},
    {"FPort 0 with FOpts, no payload",
     "40"
     "04030201"
     "01"
     "0000"
     "02"
     "00"
     "11223344",
     LW_ERR_MALFORMED},
    {"FPort 0 without FOpts",
     "40"
     "04030201"
     "00"
     "0000"
     "00"
     "aa"
     "11223344",
     LW_OK},
    {"FOpts and FPort 1",
     "40"
     "04030201"
     "01"
     "0000"
     "02"
     "01"
     "aa"
     "11223344",
     LW_OK},
    {"major 1",
     "41"
     "04030201"
     "00"
     "0000"
     "01"
     "aa"
     "11223344",
     LW_ERR_MAJOR},
    {"major 2",
     "42"
     "04030201"
     "00"
     "0000"
     "01"
     "aa"
     "11223344",
     LW_ERR_MAJOR},
    {"major 3 confirmed",
     "83"
     "04030201"
     "00"
     "0000"
     "01"
     "aa"
     "11223344",
     LW_ERR_MAJOR},
    {"RFU bits are ignored",
     "5c"
     "04030201"
     "00"
     "0000"
     "01"
     "aa"
     "11223344",
     LW_OK},
    {"join request",
     "00"
     "0807060504030201"
     "0807060504030201"
     "0100"
     "11223344",
     LW_ERR_NOT_DATA_UP},
    {"join accept",
     "20"
     "010203040506070809101112131415161718"
     "11223344",
     LW_ERR_NOT_DATA_UP},
    {"unconfirmed down",
     "60"
     "04030201"
     "00"
     "0000"
     "01"
     "aa"
     "11223344",
     LW_ERR_NOT_DATA_UP},
    {"confirmed down",
     "a0"
     "04030201"
     "00"
     "0000"
     "01"
     "aa"
     "11223344",
     LW_ERR_NOT_DATA_UP},
    {"rejoin / RFU",
     "c0"
     "04030201"
     "00"
     "0000"
     "01"
     "aa"
     "11223344",
     LW_ERR_NOT_DATA_UP},
    {"proprietary",
     "e0"
     "04030201"
     "00"
     "0000"
     "01"
     "aa"
     "11223344",
     LW_ERR_NOT_DATA_UP},
};

static void test_bad_frames(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        uint8_t buf[MAX_PHY];
        long n = unhex(c->hex, buf, sizeof(buf));
        struct lw_frame f;

        assert_true(n > 0);
        EXPECT_INT(c->what, lw_parse(buf, (size_t)n, &f), c->want);
    }
}

/* A LoRa PHYPayload is at most 255 bytes; B0 holds len(msg) in one byte. */
static void test_too_long(void **state)
{
    uint8_t buf[260];
    struct lw_frame f;

    (void)state;
    memset(buf, 0, sizeof(buf));
    buf[0] = 0x40;
    buf[8] = 1; /* FPort 1 */
    EXPECT_INT("255 bytes", lw_parse(buf, 255, &f), LW_OK);
    EXPECT_INT("255 bytes", f.frm_len, 255 - 13);
    EXPECT_INT("256 bytes", lw_parse(buf, 256, &f), LW_ERR_MALFORMED);
}

/* What lw_parse finds in a frame lw_build_uplink made, for every FOpts length. */
static void test_build_parse_fields(void **state)
{
    uint8_t out[MAX_PHY], fopts[15], payload[LW_MAX_PAYLOAD], plain[LW_MAX_PAYLOAD];
    struct lw_frame f;

    (void)state;
    for (size_t i = 0; i < sizeof(fopts); i++) {
        fopts[i] = (uint8_t)(0xa0 + i);
    }
    for (size_t i = 0; i < sizeof(payload); i++) {
        payload[i] = (uint8_t)(i * 7);
    }
    for (size_t olen = 0; olen <= 15; olen++) {
        int len = lw_build_uplink(out, sizeof(out), olen % 2, 0x26011bda, 0x00012345 + olen, 0xa5,
                                  fopts, olen, 2, payload, 20 + olen, NWK, APP);
        EXPECT_INT("build", len, 12 + olen + 1 + 20 + olen);
        EXPECT_INT("parse", lw_parse(out, (size_t)len, &f), LW_OK);
        EXPECT_INT("mtype", f.mtype, olen % 2 ? LW_CONFIRMED_UP : LW_UNCONFIRMED_UP);
        EXPECT_INT("dev_addr", f.dev_addr, 0x26011bda);
        EXPECT_INT("fctrl", f.fctrl, 0xa0 | olen); /* the caller's FOptsLen bits are replaced */
        EXPECT_INT("fcnt16", f.fcnt16, (0x2345 + olen) & 0xffff);
        EXPECT_INT("fopts_len", f.fopts_len, olen);
        EXPECT_BYTES("fopts", f.fopts, fopts, olen);
        EXPECT_INT("fport", f.fport, 2);
        EXPECT_INT("frm_len", f.frm_len, 20 + olen);
        assert_ptr_equal(f.frm_payload, out + 8 + olen + 1);
        assert_true(lw_verify_mic(NWK, &f, 0x00012345 + olen));
        assert_false(lw_verify_mic(APP, &f, 0x00012345 + olen));
        assert_false(lw_verify_mic(NWK, &f, 0x00012345 + olen + 1));
        lw_crypt_payload(APP, f.dev_addr, 0x00012345 + olen, 0, f.frm_payload, f.frm_len, plain);
        EXPECT_BYTES("plain", plain, payload, f.frm_len);
        /* the ciphertext is not the plaintext */
        assert_true(memcmp(f.frm_payload, payload, f.frm_len) != 0);
    }
}

/* ---- lw_build_uplink argument checks ------------------------------------ */

static void test_build_errors(void **state)
{
    uint8_t out[MAX_PHY], fopts[16] = {0}, payload[LW_MAX_PAYLOAD + 20] = {0};
    int need;

    (void)state;
    need = lw_build_uplink(out, sizeof(out), false, 1, 1, 0, fopts, 3, 5, payload, 10, NWK, APP);
    EXPECT_INT("need", need, 12 + 3 + 1 + 10);
    for (size_t size = 0; size < (size_t)need; size++) {
        EXPECT_INT("out_size too small",
                   lw_build_uplink(out, size, false, 1, 1, 0, fopts, 3, 5, payload, 10, NWK, APP),
                   -1);
    }
    EXPECT_INT(
        "out_size exact",
        lw_build_uplink(out, (size_t)need, false, 1, 1, 0, fopts, 3, 5, payload, 10, NWK, APP),
        need);
    EXPECT_INT(
        "16 bytes of FOpts",
        lw_build_uplink(out, sizeof(out), false, 1, 1, 0, fopts, 16, 5, payload, 1, NWK, APP), -1);
    EXPECT_INT("FOpts NULL",
               lw_build_uplink(out, sizeof(out), false, 1, 1, 0, NULL, 2, 5, payload, 1, NWK, APP),
               -1);
    EXPECT_INT(
        "FPort 256",
        lw_build_uplink(out, sizeof(out), false, 1, 1, 0, NULL, 0, 256, payload, 1, NWK, APP), -1);
    EXPECT_INT("payload without FPort",
               lw_build_uplink(out, sizeof(out), false, 1, 1, 0, NULL, 0, -1, payload, 1, NWK, APP),
               -1);
    EXPECT_INT("payload NULL",
               lw_build_uplink(out, sizeof(out), false, 1, 1, 0, NULL, 0, 1, NULL, 1, NWK, APP),
               -1);
    EXPECT_INT("FPort 0 with FOpts",
               lw_build_uplink(out, sizeof(out), false, 1, 1, 0, fopts, 1, 0, payload, 1, NWK, APP),
               -1);
    EXPECT_INT("largest payload",
               lw_build_uplink(out, sizeof(out), false, 1, 1, 0, NULL, 0, 1, payload,
                               LW_MAX_PAYLOAD, NWK, APP),
               12 + 1 + LW_MAX_PAYLOAD);
    EXPECT_INT("payload + FOpts over 255 bytes",
               lw_build_uplink(out, sizeof(out), false, 1, 1, 0, fopts, 1, 1, payload,
                               LW_MAX_PAYLOAD, NWK, APP),
               -1);
    EXPECT_INT("payload over LW_MAX_PAYLOAD",
               lw_build_uplink(out, sizeof(out), false, 1, 1, 0, NULL, 0, 1, payload,
                               LW_MAX_PAYLOAD + 1, NWK, APP),
               -1);
    EXPECT_INT("no FPort, no payload",
               lw_build_uplink(out, sizeof(out), false, 1, 1, 0, NULL, 0, -1, NULL, 0, NWK, APP),
               12);
}

/* ---- payload crypto ----------------------------------------------------- */

static void test_crypt(void **state)
{
    uint8_t plain[LW_MAX_PAYLOAD], enc[LW_MAX_PAYLOAD], buf[LW_MAX_PAYLOAD], down[LW_MAX_PAYLOAD];

    (void)state;
    for (size_t i = 0; i < sizeof(plain); i++) {
        plain[i] = (uint8_t)(i ^ 0x5a);
    }
    lw_crypt_payload(APP, 0x01020304, 77, 0, plain, sizeof(plain), enc);
    /* in place gives the same */
    memcpy(buf, plain, sizeof(buf));
    lw_crypt_payload(APP, 0x01020304, 77, 0, buf, sizeof(buf), buf);
    EXPECT_BYTES("in place", buf, enc, sizeof(buf));
    /* the same operation decrypts */
    lw_crypt_payload(APP, 0x01020304, 77, 0, enc, sizeof(enc), buf);
    EXPECT_BYTES("round trip", buf, plain, sizeof(buf));
    /* a shorter payload is a prefix of the same keystream */
    lw_crypt_payload(APP, 0x01020304, 77, 0, plain, 33, buf);
    EXPECT_BYTES("prefix", buf, enc, 33);
    /* direction, counter, address and key all enter the keystream */
    lw_crypt_payload(APP, 0x01020304, 77, 1, plain, 16, down);
    assert_true(memcmp(down, enc, 16) != 0);
    lw_crypt_payload(APP, 0x01020304, 78, 0, plain, 16, down);
    assert_true(memcmp(down, enc, 16) != 0);
    lw_crypt_payload(APP, 0x01020305, 77, 0, plain, 16, down);
    assert_true(memcmp(down, enc, 16) != 0);
    lw_crypt_payload(NWK, 0x01020304, 77, 0, plain, 16, down);
    assert_true(memcmp(down, enc, 16) != 0);
    /* every 16-byte block has its own keystream (Ai counts up) */
    for (size_t b = 1; (b + 1) * 16 <= sizeof(plain); b++) {
        uint8_t s0[16], sb[16];
        for (int k = 0; k < 16; k++) {
            s0[k] = enc[k] ^ plain[k];
            sb[k] = enc[b * 16 + k] ^ plain[b * 16 + k];
        }
        assert_true(memcmp(s0, sb, 16) != 0);
    }
    /* zero length touches nothing */
    memset(buf, 0xee, sizeof(buf));
    lw_crypt_payload(APP, 1, 1, 0, plain, 0, buf);
    assert_int_equal(buf[0], 0xee);
}

/* A MIC check needs a parsed frame; a frame without bytes never verifies. */
static void test_mic_without_frame(void **state)
{
    struct lw_frame f;
    uint8_t mic[4] = {1, 2, 3, 4};

    (void)state;
    memset(&f, 0, sizeof(f));
    assert_false(lw_verify_mic(NWK, &f, 0));
    lw_compute_mic(NWK, &f, 0, mic);
    assert_int_equal(mic[0] | mic[1] | mic[2] | mic[3], 0);
}

/*
 * Each thread has its own crypto contexts: a second thread gets the same bytes,
 * and the contexts it made are freed when it exits (ASan / valgrind see a leak
 * otherwise).
 */
struct thread_job {
    uint8_t out[64];
    int len;
    bool verified;
};

static void *build_in_thread(void *arg)
{
    struct thread_job *job = arg;
    const uint8_t payload[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
    struct lw_frame f;

    job->len = lw_build_uplink(job->out, sizeof(job->out), true, 0xdeadbeef, 0x10203, 0x80, NULL, 0,
                               9, payload, sizeof(payload), NWK, APP);
    job->verified = job->len > 0 && lw_parse(job->out, (size_t)job->len, &f) == LW_OK &&
                    lw_verify_mic(NWK, &f, 0x10203);
    return NULL;
}

static void test_threads(void **state)
{
    struct thread_job here, there[4];
    pthread_t tid[4];

    (void)state;
    build_in_thread(&here);
    assert_true(here.len > 0 && here.verified);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&tid[i], NULL, build_in_thread, &there[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        EXPECT_INT("thread", there[i].len, here.len);
        assert_true(there[i].verified);
        EXPECT_BYTES("thread", there[i].out, here.out, (size_t)here.len);
    }
}

/* ---- (5) hex ------------------------------------------------------------ */

struct addr_case {
    const char *hex;
    int want_rc;
    uint32_t want;
};

static const struct addr_case addr_cases[] = {
    {"26011BDA", 0, 0x26011bda}, {"26011bda", 0, 0x26011bda}, {"00000000", 0, 0},
    {"FFFFFFFF", 0, 0xffffffff}, {"aBcDeF01", 0, 0xabcdef01}, {"", -1, 0},
    {"2601BDA", -1, 0},    /* odd length */
    {"26011BDA0", -1, 0},  /* odd, too long */
    {"26011B", -1, 0},     /* too short */
    {"26011BDA00", -1, 0}, /* too long */
    {"26011BDG", -1, 0},   /* not hex */
    {"0x26011B", -1, 0},   /* no prefixes */
    {" 26011BD", -1, 0},   /* no spaces */
    {"26011BD ", -1, 0},         {"-6011BDA", -1, 0},         {"+6011BDA", -1, 0},
    {"26011B\xc3\xa9", -1, 0}, /* UTF-8 */
};

static void test_parse_dev_addr(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
        const struct addr_case *c = &addr_cases[i];
        uint32_t got = 0x5a5a5a5a;

        EXPECT_INT(c->hex, lw_parse_dev_addr(c->hex, &got), c->want_rc);
        EXPECT_INT(c->hex, got, c->want_rc == 0 ? c->want : 0x5a5a5a5a); /* untouched on error */
    }
    assert_int_equal(lw_parse_dev_addr(NULL, &(uint32_t){0}), -1);
}

struct key_case {
    const char *hex;
    int want_rc;
};

static const struct key_case key_cases[] = {
    {"2b7e151628aed2a6abf7158809cf4f3c", 0},    {"2B7E151628AED2A6ABF7158809CF4F3C", 0},  {"", -1},
    {"2b7e151628aed2a6abf7158809cf4f3", -1},    /* 31: odd */
    {"2b7e151628aed2a6abf7158809cf4f", -1},     /* 30: short */
    {"2b7e151628aed2a6abf7158809cf4f3c0", -1},  /* 33 */
    {"2b7e151628aed2a6abf7158809cf4f3c00", -1}, /* 34: long */
    {"2b7e151628aed2a6abf7158809cf4f3g", -1},   /* not hex at the end */
    {"zb7e151628aed2a6abf7158809cf4f3c", -1},   /* not hex at the start */
    {"2b7e1516 8aed2a6abf7158809cf4f3c", -1},   {"2b:7e:15:16:28:ae:d2:a6:ab:f7:15", -1},
};

static void test_parse_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
        const struct key_case *c = &key_cases[i];
        uint8_t got[LW_KEY_LEN];
        uint8_t untouched[LW_KEY_LEN];

        memset(got, 0x5a, sizeof(got));
        memset(untouched, 0x5a, sizeof(untouched));
        EXPECT_INT(c->hex, lw_parse_key(c->hex, got), c->want_rc);
        EXPECT_BYTES(c->hex, got, c->want_rc == 0 ? NWK : untouched, LW_KEY_LEN);
    }
    assert_int_equal(lw_parse_key(NULL, (uint8_t[LW_KEY_LEN]){0}), -1);
}

static void test_error_names(void **state)
{
    (void)state;
    for (int i = 0; i < LW_ERR_COUNT; i++) {
        const char *name = lw_error_name((enum lw_error)i);
        assert_non_null(name);
        assert_true(strcmp(name, "unknown") != 0);
        for (int j = 0; j < i; j++) {
            assert_true(strcmp(name, lw_error_name((enum lw_error)j)) != 0);
        }
    }
    assert_string_equal(lw_error_name(LW_OK), "ok");
    assert_string_equal(lw_error_name(LW_ERR_BAD_MIC), "bad_mic");
    assert_string_equal(lw_error_name(LW_ERR_COUNT), "unknown");
    assert_string_equal(lw_error_name((enum lw_error) - 1), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_vectors),
        cmocka_unit_test(test_lora_packet_vectors),
        cmocka_unit_test(test_fcnt_full),
        cmocka_unit_test(test_check_fcnt),
        cmocka_unit_test(test_fcnt_stream),
        cmocka_unit_test(test_short_frames),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_build_parse_fields),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_crypt),
        cmocka_unit_test(test_mic_without_frame),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_parse_dev_addr),
        cmocka_unit_test(test_parse_key),
        cmocka_unit_test(test_error_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
