/*
 * Payload codecs: layout (every type, endianness, sign, scale/offset, bit,
 * mask, enum, fport, short payloads, NaN), Cayenne LPP (every type with the
 * reference byte sequences, several channels, truncated, unknown) and the
 * Duktape JS decoders (TTN and ChirpStack forms, flattening, throws, time
 * and memory limits, ES6 refused at load, examples.json).
 * JS fixtures live in $GW_TEST_DATA/codecs (CMake sets GW_TEST_DATA).
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
#include <time.h>

#include <cmocka.h>

#include "codecs/codec.h"

/* How late a stopped decoder may return: sanitizers, valgrind and a busy CI machine. */
#define SLACK_MS 300

static char *data_path(const char *name)
{
    const char *dir = getenv("GW_TEST_DATA");
    if (!dir) {
        fail_msg("GW_TEST_DATA is not set (run through ctest)");
    }
    size_t n = strlen(dir) + strlen(name) + 16;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/codecs/%s", dir, name);
    return p;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct gw_point_value *point(const struct gw_reading *r, const char *name)
{
    for (int i = 0; i < r->npoints; i++) {
        if (strcmp(r->points[i].name, name) == 0) {
            return &r->points[i];
        }
    }
    return NULL;
}

static void assert_num(const struct gw_reading *r, const char *name, double want)
{
    const struct gw_point_value *p = point(r, name);
    if (!p) {
        fail_msg("point %s missing", name);
    }
    assert_int_equal(p->fault, GW_FAULT_NONE);
    assert_int_equal(p->value.type, GW_VALUE_NUMBER);
    if (fabs(p->value.num - want) > 1e-9 * fmax(1.0, fabs(want))) {
        fail_msg("%s: got %.17g, want %.17g", name, p->value.num, want);
    }
}

static void assert_str(const struct gw_reading *r, const char *name, const char *want)
{
    const struct gw_point_value *p = point(r, name);
    if (!p) {
        fail_msg("point %s missing", name);
    }
    assert_int_equal(p->value.type, GW_VALUE_STRING);
    assert_string_equal(p->value.str, want);
}

static void assert_bool(const struct gw_reading *r, const char *name, bool want)
{
    const struct gw_point_value *p = point(r, name);
    if (!p) {
        fail_msg("point %s missing", name);
    }
    assert_int_equal(p->value.type, GW_VALUE_BOOL);
    assert_int_equal(p->value.b, want);
    assert_true(p->value.num == (want ? 1 : 0));
}

static void assert_invalid(const struct gw_reading *r, const char *name)
{
    const struct gw_point_value *p = point(r, name);
    if (!p) {
        fail_msg("point %s missing", name);
    }
    assert_int_equal(p->fault, GW_FAULT_INVALID);
    assert_int_equal(p->value.type, GW_VALUE_NONE);
}

/* ---- layout ---------------------------------------------------------------- */

static char *door_labels[] = {"closed", "open", "locked"};
static char *bool_labels[] = {"off", "on"};
/* 13 three-byte characters: too long for a value, cut to 10 whole ones. */
static char *long_labels[] = {"\xe9\x97\xa8\xe5\xb7\xb2\xe7\xbb\x8f\xe5\x85\xb3\xe9\x97\xad"
                              "\xe4\xba\x86\xe8\xaf\xb7\xe6\xb3\xa8\xe6\x84\x8f\xe5\xae\x89"
                              "\xe5\x85\xa8\xe8\xb0\xa2\xe8\xb0\xa2"};

/* FIELD() sets the defaults config.c would; a case then overrides some of them. */
#pragma GCC diagnostic ignored "-Woverride-init"
#define FIELD(t, b) .name = "v", .byte = (b), .bit = -1, .type = (t), .scale = 1, .fport = -1

enum expect { E_NUM, E_BOOL, E_STR, E_INVALID, E_SKIPPED };

struct layout_case {
    const char *label;
    struct gw_layout_field_cfg f;
    uint8_t bytes[8];
    size_t len;
    int fport;
    enum expect expect;
    double num;
    bool b;
    const char *str;
};

static const struct layout_case layout_cases[] = {
    {"u8", {FIELD(GW_FT_U8, 0)}, {0xFE}, 1, 1, E_NUM, 254, 0, NULL},
    {"s8 negative", {FIELD(GW_FT_S8, 0)}, {0xFE}, 1, 1, E_NUM, -2, 0, NULL},
    {"s8 min", {FIELD(GW_FT_S8, 0)}, {0x80}, 1, 1, E_NUM, -128, 0, NULL},
    {"s8 positive", {FIELD(GW_FT_S8, 0)}, {0x7F}, 1, 1, E_NUM, 127, 0, NULL},
    {"u16be", {FIELD(GW_FT_U16BE, 0)}, {0x01, 0x02}, 2, 1, E_NUM, 258, 0, NULL},
    {"u16le", {FIELD(GW_FT_U16LE, 0)}, {0x01, 0x02}, 2, 1, E_NUM, 513, 0, NULL},
    {"u16be max", {FIELD(GW_FT_U16BE, 0)}, {0xFF, 0xFF}, 2, 1, E_NUM, 65535, 0, NULL},
    {"s16be", {FIELD(GW_FT_S16BE, 0)}, {0xFF, 0xFE}, 2, 1, E_NUM, -2, 0, NULL},
    {"s16le", {FIELD(GW_FT_S16LE, 0)}, {0xFE, 0xFF}, 2, 1, E_NUM, -2, 0, NULL},
    {"s16be min", {FIELD(GW_FT_S16BE, 0)}, {0x80, 0x00}, 2, 1, E_NUM, -32768, 0, NULL},
    {"s16le positive", {FIELD(GW_FT_S16LE, 0)}, {0xFF, 0x7F}, 2, 1, E_NUM, 32767, 0, NULL},
    {"u32be", {FIELD(GW_FT_U32BE, 0)}, {1, 2, 3, 4}, 4, 1, E_NUM, 16909060, 0, NULL},
    {"u32le", {FIELD(GW_FT_U32LE, 0)}, {1, 2, 3, 4}, 4, 1, E_NUM, 67305985, 0, NULL},
    {"u32be max",
     {FIELD(GW_FT_U32BE, 0)},
     {0xFF, 0xFF, 0xFF, 0xFF},
     4,
     1,
     E_NUM,
     4294967295.0,
     0,
     NULL},
    {"s32be", {FIELD(GW_FT_S32BE, 0)}, {0xFF, 0xFF, 0xFF, 0xFE}, 4, 1, E_NUM, -2, 0, NULL},
    {"s32le", {FIELD(GW_FT_S32LE, 0)}, {0xFE, 0xFF, 0xFF, 0xFF}, 4, 1, E_NUM, -2, 0, NULL},
    {"s32be min", {FIELD(GW_FT_S32BE, 0)}, {0x80, 0, 0, 0}, 4, 1, E_NUM, -2147483648.0, 0, NULL},
    {"s32le positive", {FIELD(GW_FT_S32LE, 0)}, {1, 2, 3, 4}, 4, 1, E_NUM, 67305985, 0, NULL},
    {"f32be", {FIELD(GW_FT_F32BE, 0)}, {0x41, 0xC8, 0, 0}, 4, 1, E_NUM, 25.0, 0, NULL},
    {"f32le", {FIELD(GW_FT_F32LE, 0)}, {0, 0, 0xC8, 0x41}, 4, 1, E_NUM, 25.0, 0, NULL},
    {"f32be negative", {FIELD(GW_FT_F32BE, 0)}, {0xC0, 0x20, 0, 0}, 4, 1, E_NUM, -2.5, 0, NULL},
    {"f32 NaN", {FIELD(GW_FT_F32BE, 0)}, {0x7F, 0xC0, 0, 0}, 4, 1, E_INVALID, 0, 0, NULL},
    {"f32 +inf", {FIELD(GW_FT_F32BE, 0)}, {0x7F, 0x80, 0, 0}, 4, 1, E_INVALID, 0, 0, NULL},
    {"f32le -inf", {FIELD(GW_FT_F32LE, 0)}, {0, 0, 0x80, 0xFF}, 4, 1, E_INVALID, 0, 0, NULL},
    {"f32 scaled to inf",
     {FIELD(GW_FT_F32BE, 0), .scale = 1e300},
     {0x7F, 0x7F, 0xFF, 0xFF},
     4,
     1,
     E_INVALID,
     0,
     0,
     NULL},
    {"scale offset",
     {FIELD(GW_FT_U16BE, 0), .scale = 0.01, .offset = -40},
     {0x09, 0xC4},
     2,
     1,
     E_NUM,
     -15,
     0,
     NULL},
    {"negative scaled",
     {FIELD(GW_FT_S16BE, 0), .scale = 0.1},
     {0xFF, 0x9C},
     2,
     1,
     E_NUM,
     -10,
     0,
     NULL},
    {"f32 scale offset",
     {FIELD(GW_FT_F32LE, 0), .scale = 2, .offset = 1},
     {0, 0, 0xC8, 0x41},
     4,
     1,
     E_NUM,
     51,
     0,
     NULL},
    {"byte offset", {FIELD(GW_FT_U8, 2)}, {1, 2, 3}, 3, 1, E_NUM, 3, 0, NULL},
    {"u16le at offset", {FIELD(GW_FT_U16LE, 1)}, {9, 0x34, 0x12}, 3, 1, E_NUM, 0x1234, 0, NULL},
    {"bool bit 0 set", {FIELD(GW_FT_BOOL, 0), .bit = 0}, {0x01}, 1, 1, E_BOOL, 0, true, NULL},
    {"bool bit 0 clear", {FIELD(GW_FT_BOOL, 0), .bit = 0}, {0xFE}, 1, 1, E_BOOL, 0, false, NULL},
    {"bool bit 3 set", {FIELD(GW_FT_BOOL, 1), .bit = 3}, {0, 0x08}, 2, 1, E_BOOL, 0, true, NULL},
    {"bool bit 3 clear", {FIELD(GW_FT_BOOL, 0), .bit = 3}, {0xF7}, 1, 1, E_BOOL, 0, false, NULL},
    {"bool bit 7", {FIELD(GW_FT_BOOL, 0), .bit = 7}, {0x80}, 1, 1, E_BOOL, 0, true, NULL},
    {"bool bit 8 invalid", {FIELD(GW_FT_BOOL, 0), .bit = 8}, {0xFF}, 1, 1, E_INVALID, 0, 0, NULL},
    {"bool bit -1 invalid", {FIELD(GW_FT_BOOL, 0)}, {0xFF}, 1, 1, E_INVALID, 0, 0, NULL},
    {"bool enum",
     {FIELD(GW_FT_BOOL, 0), .bit = 1, .nenum = 2, .enum_labels = bool_labels},
     {0x02},
     1,
     1,
     E_STR,
     0,
     0,
     "on"},
    {"mask u8 bits 2..3", {FIELD(GW_FT_U8, 0), .mask = 0x0C}, {0xBE}, 1, 1, E_NUM, 3, 0, NULL},
    {"mask u8 bits 2..3 (1)", {FIELD(GW_FT_U8, 0), .mask = 0x0C}, {0xB6}, 1, 1, E_NUM, 1, 0, NULL},
    {"mask u16be nibble",
     {FIELD(GW_FT_U16BE, 0), .mask = 0xF000},
     {0xAB, 0xCD},
     2,
     1,
     E_NUM,
     10,
     0,
     NULL},
    {"mask u32le byte 2",
     {FIELD(GW_FT_U32LE, 0), .mask = 0x00FF0000},
     {1, 2, 3, 4},
     4,
     1,
     E_NUM,
     3,
     0,
     NULL},
    {"mask then scale",
     {FIELD(GW_FT_U8, 0), .mask = 0xF0, .scale = 2, .offset = 1},
     {0x5A},
     1,
     1,
     E_NUM,
     11,
     0,
     NULL},
    {"mask on signed invalid",
     {FIELD(GW_FT_S8, 0), .mask = 0x0F},
     {0x0F},
     1,
     1,
     E_INVALID,
     0,
     0,
     NULL},
    {"mask on f32 invalid",
     {FIELD(GW_FT_F32BE, 0), .mask = 1},
     {0x41, 0xC8, 0, 0},
     4,
     1,
     E_INVALID,
     0,
     0,
     NULL},
    {"enum in range",
     {FIELD(GW_FT_U8, 0), .nenum = 3, .enum_labels = door_labels},
     {1},
     1,
     1,
     E_STR,
     0,
     0,
     "open"},
    {"enum first",
     {FIELD(GW_FT_U8, 0), .nenum = 3, .enum_labels = door_labels},
     {0},
     1,
     1,
     E_STR,
     0,
     0,
     "closed"},
    {"enum last",
     {FIELD(GW_FT_U16LE, 0), .nenum = 3, .enum_labels = door_labels},
     {2, 0},
     2,
     1,
     E_STR,
     0,
     0,
     "locked"},
    {"enum out of range",
     {FIELD(GW_FT_U8, 0), .nenum = 3, .enum_labels = door_labels},
     {3},
     1,
     1,
     E_INVALID,
     0,
     0,
     NULL},
    {"enum negative",
     {FIELD(GW_FT_S8, 0), .nenum = 3, .enum_labels = door_labels},
     {0xFF},
     1,
     1,
     E_INVALID,
     0,
     0,
     NULL},
    {"enum ignores scale",
     {FIELD(GW_FT_U8, 0), .nenum = 3, .enum_labels = door_labels, .scale = 10},
     {2},
     1,
     1,
     E_STR,
     0,
     0,
     "locked"},
    {"enum after mask",
     {FIELD(GW_FT_U8, 0), .mask = 0x30, .nenum = 3, .enum_labels = door_labels},
     {0xEF},
     1,
     1,
     E_STR,
     0,
     0,
     "locked"},
    {"enum label cut on a character",
     {FIELD(GW_FT_U8, 0), .nenum = 1, .enum_labels = long_labels},
     {0},
     1,
     1,
     E_STR,
     0,
     0,
     "\xe9\x97\xa8\xe5\xb7\xb2\xe7\xbb\x8f\xe5\x85\xb3\xe9\x97\xad\xe4\xba\x86\xe8\xaf\xb7"
     "\xe6\xb3\xa8\xe6\x84\x8f\xe5\xae\x89"},
    {"enum on f32 invalid",
     {FIELD(GW_FT_F32BE, 0), .nenum = 3, .enum_labels = door_labels},
     {0x3F, 0x80, 0, 0},
     4,
     1,
     E_INVALID,
     0,
     0,
     NULL},
    {"fport match", {FIELD(GW_FT_U8, 0), .fport = 2}, {7}, 1, 2, E_NUM, 7, 0, NULL},
    {"fport other skipped", {FIELD(GW_FT_U8, 0), .fport = 2}, {7}, 1, 3, E_SKIPPED, 0, 0, NULL},
    {"fport 0 match", {FIELD(GW_FT_U8, 0), .fport = 0}, {7}, 1, 0, E_NUM, 7, 0, NULL},
    {"short u16", {FIELD(GW_FT_U16BE, 1)}, {1, 2}, 2, 1, E_INVALID, 0, 0, NULL},
    {"short u32", {FIELD(GW_FT_U32LE, 0)}, {1, 2, 3}, 3, 1, E_INVALID, 0, 0, NULL},
    {"short f32", {FIELD(GW_FT_F32BE, 0)}, {0x41, 0xC8, 0}, 3, 1, E_INVALID, 0, 0, NULL},
    {"byte beyond", {FIELD(GW_FT_U8, 5)}, {1, 2, 3}, 3, 1, E_INVALID, 0, 0, NULL},
    {"empty payload", {FIELD(GW_FT_U8, 0)}, {0}, 0, 1, E_INVALID, 0, 0, NULL},
    {"bool short", {FIELD(GW_FT_BOOL, 1), .bit = 0}, {1}, 1, 1, E_INVALID, 0, 0, NULL},
    {"negative byte", {FIELD(GW_FT_U8, -1)}, {1}, 1, 1, E_INVALID, 0, 0, NULL},
};

static void test_layout_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(layout_cases) / sizeof(layout_cases[0]); i++) {
        const struct layout_case *c = &layout_cases[i];
        struct gw_reading r;
        memset(&r, 0, sizeof(r));
        print_message("layout case: %s\n", c->label);
        assert_int_equal(gw_codec_layout(&c->f, 1, c->bytes, c->len, c->fport, &r), 0);
        if (c->expect == E_SKIPPED) {
            assert_int_equal(r.npoints, 0);
            continue;
        }
        assert_int_equal(r.npoints, 1);
        switch (c->expect) {
        case E_NUM:
            assert_num(&r, "v", c->num);
            break;
        case E_BOOL:
            assert_bool(&r, "v", c->b);
            break;
        case E_STR:
            assert_str(&r, "v", c->str);
            break;
        case E_INVALID:
            assert_invalid(&r, "v");
            break;
        case E_SKIPPED:
            break;
        }
    }
}

/* A short payload faults only the fields it cannot fill; names, appending. */
static void test_layout_frame(void **state)
{
    (void)state;
    struct gw_layout_field_cfg f[] = {
        {.name = "smoke", .byte = 0, .bit = 0, .type = GW_FT_BOOL, .scale = 1, .fport = -1},
        {.name = "battery", .byte = 1, .bit = -1, .type = GW_FT_U8, .scale = 1, .fport = -1},
        {.name = "temp", .byte = 2, .bit = -1, .type = GW_FT_S16BE, .scale = 0.1, .fport = -1},
        {.name = "only_port_9", .byte = 0, .bit = -1, .type = GW_FT_U8, .scale = 1, .fport = 9},
        {.name = "a_name_that_is_much_longer_than_the_forty_seven_bytes_a_point_name_holds",
         .byte = 1,
         .bit = -1,
         .type = GW_FT_U8,
         .scale = 1,
         .fport = -1},
    };
    const uint8_t bytes[] = {0x01, 87, 0x00};
    struct gw_reading r;
    memset(&r, 0, sizeof(r));
    r.npoints = 1; /* appends after what the driver put there */
    snprintf(r.points[0].name, sizeof(r.points[0].name), "existing");
    assert_int_equal(gw_codec_layout(f, 5, bytes, sizeof(bytes), 1, &r), 0);
    assert_int_equal(r.npoints, 5);
    assert_string_equal(r.points[0].name, "existing");
    assert_bool(&r, "smoke", true);
    assert_num(&r, "battery", 87);
    assert_invalid(&r, "temp");
    assert_null(point(&r, "only_port_9"));
    assert_int_equal(strlen(r.points[4].name), GW_NAME_MAX - 1);
    assert_int_equal(strncmp(r.points[4].name, f[4].name, GW_NAME_MAX - 1), 0);
    assert_num(&r, r.points[4].name, 87);

    /* Bad arguments. */
    assert_int_equal(gw_codec_layout(f, -1, bytes, 3, 1, &r), -EINVAL);
    assert_int_equal(gw_codec_layout(NULL, 1, bytes, 3, 1, &r), -EINVAL);
    assert_int_equal(gw_codec_layout(f, 1, NULL, 3, 1, &r), -EINVAL);
    assert_int_equal(gw_codec_layout(f, 1, bytes, 3, 1, NULL), -EINVAL);
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_layout(f, 0, NULL, 0, 1, &r), 0);
    assert_int_equal(r.npoints, 0);
}

static void test_layout_too_many(void **state)
{
    (void)state;
    struct gw_layout_field_cfg f[GW_MAX_POINTS + 4];
    for (int i = 0; i < GW_MAX_POINTS + 4; i++) {
        f[i] = (struct gw_layout_field_cfg){FIELD(GW_FT_U8, 0)};
    }
    f[0].fport = 5; /* skipped fields do not count */
    const uint8_t b[] = {42};
    struct gw_reading r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_layout(f, GW_MAX_POINTS + 1, b, 1, 1, &r), 0);
    assert_int_equal(r.npoints, GW_MAX_POINTS);
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_layout(f, GW_MAX_POINTS + 4, b, 1, 1, &r), -E2BIG);
    assert_int_equal(r.npoints, GW_MAX_POINTS);
    assert_num(&r, "v", 42);
}

/* ---- Cayenne LPP --------------------------------------------------------- */

struct lpp_value {
    const char *name;
    double num;
};

struct lpp_case {
    const char *label;
    uint8_t bytes[16];
    size_t len;
    struct lpp_value want[3];
};

/* Byte sequences from the myDevices reference (LORA.md) and encoded by hand per its table. */
static const struct lpp_case lpp_cases[] = {
    {"digital input", {0x00, 0x00, 0x01}, 3, {{"digital_in_0", 1}}},
    {"digital output", {0x01, 0x01, 0x00}, 3, {{"digital_out_1", 0}}},
    {"analog input negative", {0x02, 0x02, 0xFF, 0x9C}, 4, {{"analog_in_2", -1.0}}},
    {"analog output", {0x02, 0x03, 0x01, 0x2C}, 4, {{"analog_out_2", 3.0}}},
    {"generic sensor u32", {0x04, 0x64, 0x00, 0x01, 0xE2, 0x40}, 6, {{"generic_4", 123456}}},
    {"generic sensor max", {0x04, 0x64, 0xFF, 0xFF, 0xFF, 0xFF}, 6, {{"generic_4", 4294967295.0}}},
    {"illuminance", {0x05, 0x65, 0x01, 0x2C}, 4, {{"luminosity_5", 300}}},
    {"illuminance unsigned", {0x05, 0x65, 0xFF, 0xFF}, 4, {{"luminosity_5", 65535}}},
    {"presence", {0x06, 0x66, 0x01}, 3, {{"presence_6", 1}}},
    {"temperature (reference 27.2)", {0x03, 0x67, 0x01, 0x10}, 4, {{"temperature_3", 27.2}}},
    {"temperature (reference -4.1)", {0x01, 0x67, 0xFF, 0xD7}, 4, {{"temperature_1", -4.1}}},
    {"humidity", {0x07, 0x68, 0x61}, 3, {{"relative_humidity_7", 48.5}}},
    {"humidity max", {0x07, 0x68, 0xFF}, 3, {{"relative_humidity_7", 127.5}}},
    {"accelerometer (reference)",
     {0x06, 0x71, 0x04, 0xD2, 0xFB, 0x2E, 0x00, 0x00},
     8,
     {{"accelerometer_6_x", 1.234}, {"accelerometer_6_y", -1.234}, {"accelerometer_6_z", 0}}},
    {"barometer", {0x08, 0x73, 0x27, 0x10}, 4, {{"barometric_pressure_8", 1000.0}}},
    {"voltage", {0x09, 0x74, 0x01, 0x4A}, 4, {{"voltage_9", 3.30}}},
    {"current", {0x0A, 0x75, 0x03, 0xE8}, 4, {{"current_10", 1.0}}},
    {"frequency", {0x0B, 0x76, 0x00, 0x00, 0xC3, 0x50}, 6, {{"frequency_11", 50000}}},
    {"percentage", {0x0C, 0x78, 0x64}, 3, {{"percentage_12", 100}}},
    {"altitude negative", {0x0D, 0x79, 0xFF, 0x9C}, 4, {{"altitude_13", -100}}},
    {"concentration", {0x0E, 0x7D, 0x01, 0x90}, 4, {{"concentration_14", 400}}},
    {"power", {0x0F, 0x80, 0x07, 0xD0}, 4, {{"power_15", 2000}}},
    {"distance", {0x10, 0x82, 0x00, 0x00, 0x30, 0x39}, 6, {{"distance_16", 12.345}}},
    {"energy", {0x11, 0x83, 0x00, 0x01, 0xE2, 0x40}, 6, {{"energy_17", 123.456}}},
    {"direction", {0x12, 0x84, 0x01, 0x0E}, 4, {{"direction_18", 270}}},
    {"unix time", {0x13, 0x85, 0x65, 0x5E, 0x0C, 0x80}, 6, {{"time_19", 1700662400}}},
    {"gyrometer",
     {0x14, 0x86, 0x00, 0x64, 0xFF, 0x9C, 0x27, 0x10},
     8,
     {{"gyrometer_20_x", 1.0}, {"gyrometer_20_y", -1.0}, {"gyrometer_20_z", 100.0}}},
    {"colour",
     {0x15, 0x87, 0xFF, 0x80, 0x00},
     5,
     {{"colour_21_r", 255}, {"colour_21_g", 128}, {"colour_21_b", 0}}},
    {"gps (reference)",
     {0x01, 0x88, 0x06, 0x76, 0x5F, 0xF2, 0x96, 0x0A, 0x00, 0x03, 0xE8},
     11,
     {{"gps_1_latitude", 42.3519}, {"gps_1_longitude", -87.9094}, {"gps_1_altitude", 10}}},
    {"gps negative altitude",
     {0x06, 0x88, 0xF9, 0x89, 0xA1, 0x11, 0xC1, 0x3B, 0xFF, 0xFF, 0x9C},
     11,
     {{"gps_6_latitude", -42.3519}, {"gps_6_longitude", 116.3579}, {"gps_6_altitude", -1}}},
    {"switch", {0x16, 0x8E, 0x01}, 3, {{"switch_22", 1}}},
    {"channel 255", {0xFF, 0x67, 0x00, 0x00}, 4, {{"temperature_255", 0}}},
};

static void test_lpp_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(lpp_cases) / sizeof(lpp_cases[0]); i++) {
        const struct lpp_case *c = &lpp_cases[i];
        struct gw_reading r;
        memset(&r, 0, sizeof(r));
        char err[GW_ERR_MAX] = "";
        print_message("cayenne case: %s\n", c->label);
        assert_int_equal(gw_codec_cayenne_lpp(c->bytes, c->len, &r, err, sizeof(err)), 0);
        int n = 0;
        for (int k = 0; k < 3 && c->want[k].name; k++) {
            assert_num(&r, c->want[k].name, c->want[k].num);
            n++;
        }
        assert_int_equal(r.npoints, n);
    }
}

static void test_lpp_multi_and_errors(void **state)
{
    (void)state;
    struct gw_reading r;
    char err[GW_ERR_MAX];

    /* Reference example: two temperature sensors. */
    const uint8_t two[] = {0x03, 0x67, 0x01, 0x10, 0x05, 0x67, 0x00, 0xFF};
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_cayenne_lpp(two, sizeof(two), &r, err, sizeof(err)), 0);
    assert_int_equal(r.npoints, 2);
    assert_num(&r, "temperature_3", 27.2);
    assert_num(&r, "temperature_5", 25.5);

    /* Reference example: temperature + accelerometer. */
    const uint8_t mixed[] = {0x01, 0x67, 0xFF, 0xD7, 0x06, 0x71,
                             0x04, 0xD2, 0xFB, 0x2E, 0x00, 0x00};
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_cayenne_lpp(mixed, sizeof(mixed), &r, err, sizeof(err)), 0);
    assert_int_equal(r.npoints, 4);
    assert_num(&r, "temperature_1", -4.1);
    assert_num(&r, "accelerometer_6_y", -1.234);

    /* Empty payload: nothing, no error. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_cayenne_lpp(NULL, 0, &r, err, sizeof(err)), 0);
    assert_int_equal(r.npoints, 0);

    /* Truncated trailing entry: the complete one stays, the error names byte and type. */
    const uint8_t trunc[] = {0x03, 0x67, 0x01, 0x10, 0x05, 0x67, 0x00};
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_cayenne_lpp(trunc, sizeof(trunc), &r, err, sizeof(err)), -EINVAL);
    assert_int_equal(r.npoints, 1);
    assert_num(&r, "temperature_3", 27.2);
    assert_non_null(strstr(err, "byte 4"));
    assert_non_null(strstr(err, "type 103"));

    /* Only a channel byte left. */
    const uint8_t hdr[] = {0x03, 0x67, 0x01, 0x10, 0x05};
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_cayenne_lpp(hdr, sizeof(hdr), &r, err, sizeof(err)), -EINVAL);
    assert_int_equal(r.npoints, 1);
    assert_non_null(strstr(err, "byte 4"));

    /* GPS one byte short. */
    const uint8_t gps[] = {0x01, 0x88, 0x06, 0x76, 0x5F, 0xF2, 0x96, 0x0A, 0x00, 0x03};
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_cayenne_lpp(gps, sizeof(gps), &r, err, sizeof(err)), -EINVAL);
    assert_int_equal(r.npoints, 0);
    assert_non_null(strstr(err, "byte 0"));
    assert_non_null(strstr(err, "type 136"));

    /* Unknown type after a good entry. */
    const uint8_t unk[] = {0x00, 0x00, 0x01, 0x01, 0xFF, 0x00};
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_cayenne_lpp(unk, sizeof(unk), &r, err, sizeof(err)), -EINVAL);
    assert_int_equal(r.npoints, 1);
    assert_non_null(strstr(err, "byte 3"));
    assert_non_null(strstr(err, "unknown type 255"));

    /* Type 4 is not in the table either (some decoders use it as a counter). */
    const uint8_t t4[] = {0x01, 0x04, 0x00, 0x01};
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_cayenne_lpp(t4, sizeof(t4), &r, NULL, 0), -EINVAL);

    /* More values than a reading holds: whole entries that fit stay. */
    uint8_t many[3 * (GW_MAX_POINTS + 1)];
    for (int i = 0; i <= GW_MAX_POINTS; i++) {
        many[3 * i] = (uint8_t)i;
        many[3 * i + 1] = 0;
        many[3 * i + 2] = 1;
    }
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_cayenne_lpp(many, sizeof(many), &r, err, sizeof(err)), -E2BIG);
    assert_int_equal(r.npoints, GW_MAX_POINTS);
    uint8_t acc[3 * 14 + 8];
    for (int i = 0; i < 14; i++) {
        acc[3 * i] = (uint8_t)i;
        acc[3 * i + 1] = 0;
        acc[3 * i + 2] = 1;
    }
    memcpy(acc + 42, (const uint8_t[]){0x06, 0x71, 0x04, 0xD2, 0xFB, 0x2E, 0x00, 0x00}, 8);
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_codec_cayenne_lpp(acc, sizeof(acc), &r, err, sizeof(err)), -E2BIG);
    assert_int_equal(r.npoints, 14);
    assert_null(point(&r, "accelerometer_6_x"));
}

/* ---- decoder dispatch ------------------------------------------------------ */

static void test_decoder_dispatch(void **state)
{
    (void)state;
    char err[GW_ERR_MAX];
    struct gw_reading r;

    /* Layout: fields are copied, the profile may go away. */
    char *labels[] = {strdup("closed"), strdup("open"), strdup("locked")};
    struct gw_layout_field_cfg *f = calloc(2, sizeof(*f));
    assert_non_null(f);
    f[0] = (struct gw_layout_field_cfg){.name = strdup("state"),
                                        .byte = 0,
                                        .bit = -1,
                                        .type = GW_FT_U8,
                                        .scale = 1,
                                        .nenum = 3,
                                        .enum_labels = labels,
                                        .fport = -1};
    f[1] = (struct gw_layout_field_cfg){.name = strdup("battery"),
                                        .unit = strdup("%"),
                                        .byte = 1,
                                        .bit = -1,
                                        .type = GW_FT_U8,
                                        .scale = 1,
                                        .fport = -1};
    struct gw_profile_cfg prof = {
        .name = "door_x", .codec = GW_CODEC_LAYOUT, .nfields = 2, .fields = f};
    struct gw_decoder *d = gw_decoder_new(&prof, err, sizeof(err));
    assert_non_null(d);
    free(f[0].name);
    free(f[1].name);
    free(f[1].unit);
    for (int i = 0; i < 3; i++) {
        free(labels[i]);
    }
    free(f);
    const uint8_t door[] = {2, 95};
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, door, sizeof(door), 1, &r, err, sizeof(err)), 0);
    assert_str(&r, "state", "locked");
    assert_num(&r, "battery", 95);
    gw_decoder_set_limits(d, 5, 5); /* no effect on a layout decoder */
    gw_decoder_free(d);

    /* Layout overflow has a message. */
    struct gw_layout_field_cfg many[GW_MAX_POINTS + 1];
    for (int i = 0; i <= GW_MAX_POINTS; i++) {
        many[i] = (struct gw_layout_field_cfg){FIELD(GW_FT_U8, 0)};
    }
    struct gw_profile_cfg big = {
        .name = "big", .codec = GW_CODEC_LAYOUT, .nfields = GW_MAX_POINTS + 1, .fields = many};
    d = gw_decoder_new(&big, err, sizeof(err));
    assert_non_null(d);
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, door, 1, 1, &r, err, sizeof(err)), -E2BIG);
    assert_non_null(strstr(err, "big"));
    gw_decoder_free(d);

    /* Cayenne LPP. */
    struct gw_profile_cfg lpp = {.name = "lpp", .codec = GW_CODEC_CAYENNE_LPP};
    d = gw_decoder_new(&lpp, err, sizeof(err));
    assert_non_null(d);
    const uint8_t t[] = {0x03, 0x67, 0x01, 0x10};
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, t, sizeof(t), 1, &r, err, sizeof(err)), 0);
    assert_num(&r, "temperature_3", 27.2);
    assert_int_equal(gw_decoder_run(d, t, 3, 1, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "byte 0"));
    gw_decoder_free(d);

    /* Not payload codecs / broken profiles. */
    struct gw_profile_cfg modbus = {.name = "hydrant", .codec = GW_CODEC_MODBUS};
    assert_null(gw_decoder_new(&modbus, err, sizeof(err)));
    assert_non_null(strstr(err, "hydrant"));
    struct gw_profile_cfg nojs = {.name = "vendor", .codec = GW_CODEC_JS};
    assert_null(gw_decoder_new(&nojs, err, sizeof(err)));
    assert_non_null(strstr(err, "vendor"));
    struct gw_profile_cfg missing = {
        .name = "vendor", .codec = GW_CODEC_JS, .script = "/nonexistent/decoder.js"};
    assert_null(gw_decoder_new(&missing, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/decoder.js"));
    assert_null(gw_decoder_new(NULL, err, sizeof(err)));
    assert_null(gw_decoder_new(&modbus, NULL, 0));
    gw_decoder_free(NULL);
    assert_int_equal(gw_decoder_run(NULL, t, 4, 1, &r, err, sizeof(err)), -EINVAL);
}

/* ---- JS ------------------------------------------------------------------ */

static struct gw_decoder *js_decoder(const char *file, char *err, size_t errlen)
{
    char *path = data_path(file);
    struct gw_profile_cfg p = {.name = "vendor", .codec = GW_CODEC_JS, .script = path};
    struct gw_decoder *d = gw_decoder_new(&p, err, errlen);
    free(path);
    return d;
}

static void test_js_ttn(void **state)
{
    (void)state;
    char err[GW_ERR_MAX] = "";
    struct gw_decoder *d = js_decoder("ttn_basic.js", err, sizeof(err));
    if (!d) {
        fail_msg("load: %s", err);
    }
    const uint8_t b[] = {0xFF, 0x38, 191, 0x0C, 0xE4}; /* -2.00 C, 95.5 %, 3.3 V */
    struct gw_reading r;
    memset(&r, 0, sizeof(r));
    r.ts_ms = 1700000000000;
    assert_int_equal(gw_decoder_run(d, b, sizeof(b), 3, &r, err, sizeof(err)), 0);
    assert_int_equal(r.npoints, 6);
    assert_num(&r, "temperature", -2.0);
    assert_num(&r, "humidity", 95.5);
    assert_num(&r, "battery", 3.3);
    assert_num(&r, "port", 3);
    assert_str(&r, "status", "wet");
    assert_bool(&r, "alarm", true);
    /* The decoder's errors fail the frame, joined. */
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, b, 2, 3, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "payload too short"));
    assert_int_equal(r.npoints, 0);
    gw_decoder_free(d);

    d = js_decoder("ttn_errors.js", err, sizeof(err));
    assert_non_null(d);
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, b, sizeof(b), 7, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "bad length; unknown port 7"));
    assert_int_equal(r.npoints, 0);
    gw_decoder_free(d);

    /* recvTime is a Date of the reading's time; variables is an object. */
    d = js_decoder("recvtime.js", err, sizeof(err));
    assert_non_null(d);
    memset(&r, 0, sizeof(r));
    r.ts_ms = 1700000000123;
    assert_int_equal(gw_decoder_run(d, b, 1, 1, &r, err, sizeof(err)), 0);
    assert_num(&r, "ms", 1700000000123.0);
    assert_str(&r, "iso", "2023-11-14T22:13:20");
    assert_str(&r, "vars", "object");
    gw_decoder_free(d);
}

static void test_js_chirpstack(void **state)
{
    (void)state;
    char err[GW_ERR_MAX] = "";
    struct gw_decoder *d = js_decoder("chirpstack_v3.js", err, sizeof(err));
    if (!d) {
        fail_msg("load: %s", err);
    }
    const uint8_t b[] = {0x03, 0xE8, 1};
    struct gw_reading r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, b, sizeof(b), 2, &r, err, sizeof(err)), 0);
    assert_int_equal(r.npoints, 3);
    assert_num(&r, "pressure", 0.1);
    assert_str(&r, "door", "open");
    assert_str(&r, "vars", "object");
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, b, sizeof(b), 5, &r, err, sizeof(err)), 0);
    assert_num(&r, "unknown_port", 5);
    gw_decoder_free(d);

    d = js_decoder("ttn_v2.js", err, sizeof(err));
    assert_non_null(d);
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, b, sizeof(b), 4, &r, err, sizeof(err)), 0);
    assert_num(&r, "first", 3);
    assert_num(&r, "port", 4);
    gw_decoder_free(d);
}

static void test_js_nested(void **state)
{
    (void)state;
    char err[GW_ERR_MAX] = "";
    struct gw_decoder *d = js_decoder("nested.js", err, sizeof(err));
    if (!d) {
        fail_msg("load: %s", err);
    }
    struct gw_reading r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, NULL, 0, 1, &r, err, sizeof(err)), 0);
    assert_num(&r, "gps_lat", 39.9042);
    assert_num(&r, "gps_lon", 116.4074);
    assert_num(&r, "gps_fix_sats", 7);
    assert_bool(&r, "gps_fix_ok", true);
    assert_num(&r, "temps_0", 21.5);
    assert_num(&r, "temps_1", 22.25);
    assert_null(point(&r, "nothing"));
    assert_null(point(&r, "undef"));
    assert_null(point(&r, "fn"));
    assert_invalid(&r, "bad");
    assert_invalid(&r, "inf");
    assert_str(&r, "long_text", "0123456789abcdefghijklmnopqrstu");
    /* 12 three-byte characters: cut at 10 (30 bytes), not inside one. */
    const struct gw_point_value *p = point(&r, "label");
    assert_non_null(p);
    assert_int_equal(strlen(p->value.str), 30);
    assert_int_equal(r.npoints, 10);
    gw_decoder_free(d);

    d = js_decoder("many.js", err, sizeof(err));
    assert_non_null(d);
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, NULL, 0, 1, &r, err, sizeof(err)), -E2BIG);
    assert_int_equal(r.npoints, GW_MAX_POINTS);
    assert_num(&r, "v15", 15);
    gw_decoder_free(d);
}

static void test_js_throws(void **state)
{
    (void)state;
    char err[GW_ERR_MAX] = "";
    struct gw_decoder *d = js_decoder("throws.js", err, sizeof(err));
    assert_non_null(d);
    struct gw_reading r;
    memset(&r, 0, sizeof(r));
    const uint8_t bad[] = {0xFF};
    assert_int_equal(gw_decoder_run(d, bad, 1, 1, &r, err, sizeof(err)), -EINVAL);
    print_message("throw: %s\n", err);
    assert_non_null(strstr(err, "throws.js:5: Error: unsupported frame type"));
    const uint8_t str[] = {0xFE};
    assert_int_equal(gw_decoder_run(d, str, 1, 1, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "throws.js: decodeUplink threw: bare string"));
    assert_int_equal(r.npoints, 0);
    /* Still usable. */
    const uint8_t ok[] = {7};
    assert_int_equal(gw_decoder_run(d, ok, 1, 1, &r, err, sizeof(err)), 0);
    assert_num(&r, "v", 7);
    gw_decoder_free(d);
}

static void test_js_endless_loop(void **state)
{
    (void)state;
    char err[GW_ERR_MAX] = "";
    struct gw_decoder *d = js_decoder("endless.js", err, sizeof(err));
    assert_non_null(d);
    struct gw_reading r;
    const uint8_t loop[] = {1}, ok[] = {2};
    for (int round = 0; round < 3; round++) {
        memset(&r, 0, sizeof(r));
        int64_t t0 = now_ms();
        assert_int_equal(gw_decoder_run(d, loop, 1, 1, &r, err, sizeof(err)), -ETIME);
        int64_t took = now_ms() - t0;
        print_message("endless loop stopped after %lld ms: %s\n", (long long)took, err);
        assert_true(took >= GW_JS_TIMEOUT_MS - 5);
        assert_true(took < GW_JS_TIMEOUT_MS + SLACK_MS);
        assert_non_null(strstr(err, "endless.js"));
        assert_non_null(strstr(err, "100 ms"));
        assert_int_equal(r.npoints, 0);
        /* The heap was rebuilt: the next frame decodes. */
        memset(&r, 0, sizeof(r));
        assert_int_equal(gw_decoder_run(d, ok, 1, 1, &r, err, sizeof(err)), 0);
        assert_num(&r, "v", 2);
    }
    /* A shorter limit is honoured. */
    gw_decoder_set_limits(d, 20, 0);
    int64_t t0 = now_ms();
    assert_int_equal(gw_decoder_run(d, loop, 1, 1, &r, err, sizeof(err)), -ETIME);
    assert_true(now_ms() - t0 < GW_JS_TIMEOUT_MS); /* not the default limit */
    assert_non_null(strstr(err, "20 ms"));
    gw_decoder_free(d);

    /* A loop that spends its time in libc and libm is stopped too, and leaves no lock held:
     * localtime_r (which takes glibc's time zone lock) still works afterwards. */
    d = js_decoder("endless_libc.js", err, sizeof(err));
    assert_non_null(d);
    const uint8_t libc_loop[] = {1}, libc_ok[] = {2};
    for (int round = 0; round < 5; round++) {
        memset(&r, 0, sizeof(r));
        t0 = now_ms();
        assert_int_equal(gw_decoder_run(d, libc_loop, 1, 1, &r, err, sizeof(err)), -ETIME);
        assert_true(now_ms() - t0 < GW_JS_TIMEOUT_MS + SLACK_MS);
        time_t now = time(NULL);
        struct tm tm;
        assert_non_null(localtime_r(&now, &tm));
        memset(&r, 0, sizeof(r));
        assert_int_equal(gw_decoder_run(d, libc_ok, 1, 1, &r, err, sizeof(err)), 0);
        assert_bool(&r, "hour_ok", true);
    }
    gw_decoder_free(d);

    /* A script whose top level never ends is refused at load, in time (the top level gets
     * GW_JS_LOAD_TIMEOUT_MS: it runs once per heap, not per frame). */
    t0 = now_ms();
    assert_null(js_decoder("top_loop.js", err, sizeof(err)));
    assert_true(now_ms() - t0 >= GW_JS_LOAD_TIMEOUT_MS - SLACK_MS);
    assert_true(now_ms() - t0 < GW_JS_LOAD_TIMEOUT_MS + SLACK_MS);
    assert_non_null(strstr(err, "top_loop.js"));
    assert_non_null(strstr(err, "ms; stopped"));
}

static void test_js_memory_hog(void **state)
{
    (void)state;
    char err[GW_ERR_MAX] = "";
    struct gw_decoder *d = js_decoder("hog.js", err, sizeof(err));
    assert_non_null(d);
    struct gw_reading r;
    const uint8_t grow[] = {3}, arrays[] = {1}, ok[] = {2};
    for (int round = 0; round < 2; round++) {
        /* Strings doubling: refused by the allocator long before the time limit. */
        memset(&r, 0, sizeof(r));
        int64_t t0 = now_ms();
        int rc = gw_decoder_run(d, grow, 1, 1, &r, err, sizeof(err));
        print_message("memory hog: %d after %lld ms: %s\n", rc, (long long)(now_ms() - t0), err);
        assert_int_equal(rc, -ENOMEM);
        assert_non_null(strstr(err, "memory limit"));
        assert_int_equal(r.npoints, 0);
        memset(&r, 0, sizeof(r));
        assert_int_equal(gw_decoder_run(d, ok, 1, 1, &r, err, sizeof(err)), 0);
        assert_num(&r, "v", 2);
        /* a.push(new Array(1e6)): Duktape keeps such arrays sparse, so whichever limit
         * comes first stops it. */
        memset(&r, 0, sizeof(r));
        t0 = now_ms();
        rc = gw_decoder_run(d, arrays, 1, 1, &r, err, sizeof(err));
        print_message("array hog: %d after %lld ms: %s\n", rc, (long long)(now_ms() - t0), err);
        assert_true(rc == -ENOMEM || rc == -ETIME);
        assert_true(now_ms() - t0 < GW_JS_TIMEOUT_MS + SLACK_MS);
        memset(&r, 0, sizeof(r));
        assert_int_equal(gw_decoder_run(d, ok, 1, 1, &r, err, sizeof(err)), 0);
        assert_num(&r, "v", 2);
    }
    /* A heap limit too small to build the heap: the decoder cannot load again. */
    gw_decoder_set_limits(d, 0, 1024);
    assert_int_equal(gw_decoder_run(d, grow, 1, 1, &r, err, sizeof(err)), -ENOMEM);
    assert_int_equal(gw_decoder_run(d, ok, 1, 1, &r, err, sizeof(err)), -ENOMEM);
    assert_non_null(strstr(err, "hog.js"));
    gw_decoder_free(d);
}

static void test_js_sneaky_results(void **state)
{
    (void)state;
    char err[GW_ERR_MAX] = "";
    struct gw_decoder *d = js_decoder("sneaky.js", err, sizeof(err));
    assert_non_null(d);
    struct gw_reading r;
    const uint8_t getter_loop[] = {1}, tostring_loop[] = {2}, getter_throw[] = {3}, ok[] = {4};
    memset(&r, 0, sizeof(r));
    int64_t t0 = now_ms();
    assert_int_equal(gw_decoder_run(d, getter_loop, 1, 1, &r, err, sizeof(err)), -ETIME);
    assert_int_equal(r.npoints, 0); /* "a" was read before the getter hung: dropped */
    assert_int_equal(gw_decoder_run(d, tostring_loop, 1, 1, &r, err, sizeof(err)), -ETIME);
    assert_true(now_ms() - t0 < 2 * GW_JS_TIMEOUT_MS + 2 * SLACK_MS);
    assert_int_equal(gw_decoder_run(d, getter_throw, 1, 1, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "getter failed"));
    assert_int_equal(r.npoints, 0);
    assert_int_equal(gw_decoder_run(d, ok, 1, 1, &r, err, sizeof(err)), 0);
    assert_num(&r, "ok", 4);
    gw_decoder_free(d);

    d = js_decoder("bom.js", err, sizeof(err));
    if (!d) {
        fail_msg("bom.js: %s", err);
    }
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, NULL, 0, 1, &r, err, sizeof(err)), 0);
    assert_num(&r, "bom", 1);
    gw_decoder_free(d);
}

struct refuse_case {
    const char *file;
    const char *want; /* substring of the message */
};

static const struct refuse_case refuse_cases[] = {
    {"es6_let.js", "es6_let.js:3: 'let'"},
    {"es6_const.js", "es6_const.js:4: 'const'"},
    {"es6_arrow.js", "es6_arrow.js:2: arrow function"},
    {"es6_template.js", "es6_template.js:3: template literal"},
    {"es6_class.js", "es6_class.js:5: 'class'"},
    {"syntax_error.js", "syntax_error.js:4: SyntaxError"},
    {"nofunc.js", "nofunc.js: ReferenceError: defines neither decodeUplink"},
};

static void test_js_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(refuse_cases) / sizeof(refuse_cases[0]); i++) {
        char err[GW_ERR_MAX] = "";
        struct gw_decoder *d = js_decoder(refuse_cases[i].file, err, sizeof(err));
        print_message("%s: %s\n", refuse_cases[i].file, err);
        assert_null(d);
        assert_non_null(strstr(err, refuse_cases[i].want));
    }
    /* The same words inside comments, strings, property names and regexps are fine. */
    char err[GW_ERR_MAX] = "";
    struct gw_decoder *d = js_decoder("es5_tricky.js", err, sizeof(err));
    if (!d) {
        fail_msg("es5_tricky.js refused: %s", err);
    }
    struct gw_reading r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_decoder_run(d, NULL, 0, 1, &r, err, sizeof(err)), 0);
    assert_num(&r, "n", 4);
    assert_num(&r, "m", 1);
    assert_bool(&r, "s", true);
    gw_decoder_free(d);
}

static void test_js_examples(void **state)
{
    (void)state;
    char err[GW_ERR_MAX] = "";
    struct gw_decoder *d = js_decoder("ttn_basic.js", err, sizeof(err));
    assert_non_null(d);
    char report[1024];
    char *path = data_path("examples.json");
    int n = gw_decoder_check_examples(d, path, report, sizeof(report));
    print_message("examples report:\n%s", report);
    assert_int_equal(n, 1);
    assert_non_null(strstr(report, "example 2 (vendor says 26 degrees): temperature: expected 26, "
                                   "got 25"));
    assert_null(strstr(report, "example 1"));
    assert_null(strstr(report, "example 3"));
    free(path);

    /* A missing file and a file that is not JSON. */
    assert_int_equal(
        gw_decoder_check_examples(d, "/nonexistent/examples.json", report, sizeof(report)),
        -ENOENT);
    path = data_path("ttn_basic.js");
    assert_int_equal(gw_decoder_check_examples(d, path, report, sizeof(report)), -EINVAL);
    free(path);
    gw_decoder_free(d);

    /* The same examples against a Cayenne decoder all mismatch. */
    struct gw_profile_cfg lpp = {.name = "lpp", .codec = GW_CODEC_CAYENNE_LPP};
    d = gw_decoder_new(&lpp, err, sizeof(err));
    assert_non_null(d);
    path = data_path("examples.json");
    assert_int_equal(gw_decoder_check_examples(d, path, report, sizeof(report)), 3);
    free(path);
    gw_decoder_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_table),
        cmocka_unit_test(test_layout_frame),
        cmocka_unit_test(test_layout_too_many),
        cmocka_unit_test(test_lpp_table),
        cmocka_unit_test(test_lpp_multi_and_errors),
        cmocka_unit_test(test_decoder_dispatch),
        cmocka_unit_test(test_js_ttn),
        cmocka_unit_test(test_js_chirpstack),
        cmocka_unit_test(test_js_nested),
        cmocka_unit_test(test_js_throws),
        cmocka_unit_test(test_js_endless_loop),
        cmocka_unit_test(test_js_memory_hog),
        cmocka_unit_test(test_js_sneaky_results),
        cmocka_unit_test(test_js_refused),
        cmocka_unit_test(test_js_examples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
