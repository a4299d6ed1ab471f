/* Register decoding, request planning and backoff arithmetic of sensors/modbus/modbus_map.c. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "modbus/modbus_map.h"

/* Like assert_int_equal, but names the table case that failed. */
#define EXPECT_INT(what, got, want)                                                                \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        if (got_ != want_) {                                                                       \
            fail_msg("%s: %s is %lld, want %lld", what, #got, got_, want_);                        \
        }                                                                                          \
    } while (0)

/* ---- decoding ---------------------------------------------------------- */

#define BIG GW_WORDS_BIG
#define LITTLE GW_WORDS_LITTLE
#define NUM GW_VALUE_NUMBER
#define BOOL GW_VALUE_BOOL
#define NONE GW_VALUE_NONE

struct decode_case {
    const char *what;
    enum gw_reg_type type;
    enum gw_word_order order;
    uint16_t r0, r1;
    double scale, offset;
    bool has_span;
    double raw_min, raw_max, min, max;
    enum gw_value_type want_type;
    double want_num; /* NUMBER: the value; BOOL: 0/1 */
    enum gw_point_fault want_fault;
};

/* scale 1, offset 0, no span */
#define PLAIN(what, type, order, r0, r1, vt, num, fault)                                           \
    {                                                                                              \
        what, type, order, r0, r1, 1, 0, false, 0, 0, 0, 0, vt, num, fault                         \
    }
#define SCALED(what, type, order, r0, r1, scale, offset, num)                                      \
    {                                                                                              \
        what, type, order, r0, r1, scale, offset, false, 0, 0, 0, 0, NUM, num, GW_FAULT_NONE       \
    }
/* 4-20 mA as raw 4000..20000 mapped to 0..1.6 MPa */
#define MA(what, raw, vt, num, fault)                                                              \
    {                                                                                              \
        what, GW_REG_U16, BIG, raw, 0, 1, 0, true, 4000, 20000, 0, 1.6, vt, num, fault             \
    }

static const struct decode_case decode_cases[] = {
    PLAIN("u16 zero", GW_REG_U16, BIG, 0, 0, NUM, 0, GW_FAULT_NONE),
    PLAIN("u16 max", GW_REG_U16, BIG, 0xFFFF, 0, NUM, 65535, GW_FAULT_NONE),
    PLAIN("u16 ignores little order", GW_REG_U16, LITTLE, 1234, 0xAAAA, NUM, 1234, GW_FAULT_NONE),
    PLAIN("s16 -1", GW_REG_S16, BIG, 0xFFFF, 0, NUM, -1, GW_FAULT_NONE),
    PLAIN("s16 min", GW_REG_S16, BIG, 0x8000, 0, NUM, -32768, GW_FAULT_NONE),
    PLAIN("s16 max", GW_REG_S16, BIG, 0x7FFF, 0, NUM, 32767, GW_FAULT_NONE),
    PLAIN("s16 little -2", GW_REG_S16, LITTLE, 0xFFFE, 0x0001, NUM, -2, GW_FAULT_NONE),
    PLAIN("u32 big", GW_REG_U32, BIG, 0x0001, 0x0002, NUM, 65538, GW_FAULT_NONE),
    PLAIN("u32 little", GW_REG_U32, LITTLE, 0x0001, 0x0002, NUM, 131073, GW_FAULT_NONE),
    PLAIN("u32 max", GW_REG_U32, BIG, 0xFFFF, 0xFFFF, NUM, 4294967295.0, GW_FAULT_NONE),
    PLAIN("s32 big -2", GW_REG_S32, BIG, 0xFFFF, 0xFFFE, NUM, -2, GW_FAULT_NONE),
    PLAIN("s32 little -2", GW_REG_S32, LITTLE, 0xFFFE, 0xFFFF, NUM, -2, GW_FAULT_NONE),
    PLAIN("s32 big min", GW_REG_S32, BIG, 0x8000, 0x0000, NUM, -2147483648.0, GW_FAULT_NONE),
    PLAIN("s32 little min", GW_REG_S32, LITTLE, 0x0000, 0x8000, NUM, -2147483648.0, GW_FAULT_NONE),
    PLAIN("s32 big max", GW_REG_S32, BIG, 0x7FFF, 0xFFFF, NUM, 2147483647.0, GW_FAULT_NONE),
    PLAIN("s32 big 70000", GW_REG_S32, BIG, 0x0001, 0x1170, NUM, 70000, GW_FAULT_NONE),
    PLAIN("f32 big 10.0", GW_REG_F32, BIG, 0x4120, 0x0000, NUM, 10.0, GW_FAULT_NONE),
    PLAIN("f32 little 10.0", GW_REG_F32, LITTLE, 0x0000, 0x4120, NUM, 10.0, GW_FAULT_NONE),
    PLAIN("f32 big -1.0", GW_REG_F32, BIG, 0xBF80, 0x0000, NUM, -1.0, GW_FAULT_NONE),
    PLAIN("f32 big -123.456", GW_REG_F32, BIG, 0xC2F6, 0xE979, NUM, -123.456, GW_FAULT_NONE),
    PLAIN("f32 little -123.456", GW_REG_F32, LITTLE, 0xE979, 0xC2F6, NUM, -123.456, GW_FAULT_NONE),
    PLAIN("f32 big 0.1", GW_REG_F32, BIG, 0x3DCC, 0xCCCD, NUM, 0.1, GW_FAULT_NONE),
    PLAIN("f32 big NaN", GW_REG_F32, BIG, 0x7FC0, 0x0000, NONE, 0, GW_FAULT_INVALID),
    PLAIN("f32 little NaN", GW_REG_F32, LITTLE, 0x0000, 0x7FC0, NONE, 0, GW_FAULT_INVALID),
    PLAIN("f32 +inf", GW_REG_F32, BIG, 0x7F80, 0x0000, NONE, 0, GW_FAULT_INVALID),
    PLAIN("f32 -inf", GW_REG_F32, BIG, 0xFF80, 0x0000, NONE, 0, GW_FAULT_INVALID),
    PLAIN("bool register 0", GW_REG_BOOL, BIG, 0, 0, BOOL, 0, GW_FAULT_NONE),
    PLAIN("bool register 1", GW_REG_BOOL, BIG, 1, 0, BOOL, 1, GW_FAULT_NONE),
    PLAIN("bool register 0xFFFF", GW_REG_BOOL, BIG, 0xFFFF, 0, BOOL, 1, GW_FAULT_NONE),
    {"bool ignores scale", GW_REG_BOOL, BIG, 2, 0, 0, 5, false, 0, 0, 0, 0, BOOL, 1, GW_FAULT_NONE},
    SCALED("u16 hydrant 0.0001", GW_REG_U16, BIG, 5000, 0, 0.0001, 0, 0.5),
    SCALED("u16 scale+offset", GW_REG_U16, BIG, 1234, 0, 0.1, -10, 113.4),
    SCALED("s16 scale+offset", GW_REG_S16, BIG, 0xFF9C /* -100 */, 0, 0.5, 1, -49),
    SCALED("s32 little scaled", GW_REG_S32, LITTLE, 0xFC18, 0xFFFF /* -1000 */, 0.001, 0, -1),
    SCALED("f32 scaled", GW_REG_F32, BIG, 0x4120, 0x0000, 2, 1, 21),
    {"u32 overflow to inf", GW_REG_U32, BIG, 0xFFFF, 0xFFFF, 1e308, 0, false, 0, 0, 0, 0, NONE, 0,
     GW_FAULT_INVALID},
    MA("span at raw_min", 4000, NUM, 0, GW_FAULT_NONE),
    MA("span at raw_max", 20000, NUM, 1.6, GW_FAULT_NONE),
    MA("span middle", 12000, NUM, 0.8, GW_FAULT_NONE),
    MA("span 3.6 mA exactly is a value, not clamped", 3600, NUM, -0.04, GW_FAULT_NONE),
    MA("span just below raw_min", 3999, NUM, -0.0001, GW_FAULT_NONE),
    MA("span just below 3.6 mA is wire break", 3599, NONE, 0, GW_FAULT_WIRE_BREAK),
    MA("span 0 mA is wire break", 0, NONE, 0, GW_FAULT_WIRE_BREAK),
    MA("span above raw_max not clamped", 20500, NUM, 1.65, GW_FAULT_NONE),
    MA("span 21 mA exactly is a value", 21000, NUM, 1.7, GW_FAULT_NONE),
    MA("span just above 21 mA is over range", 21001, NONE, 0, GW_FAULT_OVER_RANGE),
    MA("span max raw is over range", 0xFFFF, NONE, 0, GW_FAULT_OVER_RANGE),
    {"span ignores scale/offset", GW_REG_U16, BIG, 12000, 0, 10, 5, true, 4000, 20000, 0, 1.6, NUM,
     0.8, GW_FAULT_NONE},
    {"span inverted engineering", GW_REG_U16, BIG, 4000, 0, 1, 0, true, 4000, 20000, 100, 0, NUM,
     100, GW_FAULT_NONE},
    {"span inverted engineering top", GW_REG_U16, BIG, 20000, 0, 1, 0, true, 4000, 20000, 100, 0,
     NUM, 0, GW_FAULT_NONE},
    {"span s16 negative raw", GW_REG_S16, BIG, 0xFC18 /* -1000 */, 0, 1, 0, true, -1000, 1000, -50,
     50, NUM, -50, GW_FAULT_NONE},
    {"span s16 at its NE43 limit", GW_REG_S16, BIG, 0xFBE6 /* -1050 */, 0, 1, 0, true, -1000, 1000,
     -50, 50, NUM, -52.5, GW_FAULT_NONE},
    {"span s16 wire break", GW_REG_S16, BIG, 0xFBE5 /* -1051 */, 0, 1, 0, true, -1000, 1000, -50,
     50, NONE, 0, GW_FAULT_WIRE_BREAK},
    {"span f32 mA 12.0", GW_REG_F32, BIG, 0x4140, 0, 1, 0, true, 4, 20, 0, 10, NUM, 5,
     GW_FAULT_NONE},
    {"span f32 mA 3.5 wire break", GW_REG_F32, BIG, 0x4060, 0, 1, 0, true, 4, 20, 0, 10, NONE, 0,
     GW_FAULT_WIRE_BREAK},
    {"span f32 NaN invalid", GW_REG_F32, BIG, 0x7FC0, 0, 1, 0, true, 4, 20, 0, 10, NONE, 0,
     GW_FAULT_INVALID},
    {"span f32 +inf invalid, not over range", GW_REG_F32, BIG, 0x7F80, 0, 1, 0, true, 4, 20, 0, 10,
     NONE, 0, GW_FAULT_INVALID},
    {"span f32 -inf invalid, not wire break", GW_REG_F32, BIG, 0xFF80, 0, 1, 0, true, 4, 20, 0, 10,
     NONE, 0, GW_FAULT_INVALID},
    {"span empty raw range invalid", GW_REG_U16, BIG, 5, 0, 1, 0, true, 4000, 4000, 0, 1, NONE, 0,
     GW_FAULT_INVALID},
    {"span reversed raw range invalid", GW_REG_U16, BIG, 5000, 0, 1, 0, true, 20000, 4000, 0, 1,
     NONE, 0, GW_FAULT_INVALID},
};

static void test_decode_regs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        const struct decode_case *c = &decode_cases[i];
        struct gw_point_cfg p = {
            .name = "p",
            .table = GW_TABLE_HOLDING,
            .type = c->type,
            .word_order = c->order,
            .scale = c->scale,
            .offset = c->offset,
            .has_span = c->has_span,
            .raw_min = c->raw_min,
            .raw_max = c->raw_max,
            .min = c->min,
            .max = c->max,
        };
        uint16_t regs[2] = {c->r0, c->r1};
        struct gw_point_value out;
        memset(&out, 0x5A, sizeof(out)); /* garbage: decode must set everything it promises */
        gw_modbus_decode_regs(&p, regs, &out);
        EXPECT_INT(c->what, out.value.type, c->want_type);
        EXPECT_INT(c->what, out.fault, c->want_fault);
        if (c->want_type == NUM) {
            double tol = fabs(c->want_num) * 1e-6 + 1e-9;
            if (fabs(out.value.num - c->want_num) > tol) {
                fail_msg("%s: got %.9g want %.9g", c->what, out.value.num, c->want_num);
            }
        } else if (c->want_type == BOOL) {
            EXPECT_INT(c->what, out.value.b, c->want_num != 0);
            EXPECT_INT(c->what, out.value.num, c->want_num);
        }
    }
}

/* A 16-bit point that ends a request must not read past its register. */
static void test_decode_u16_reads_one_register(void **state)
{
    (void)state;
    static const enum gw_reg_type types[] = {GW_REG_U16, GW_REG_S16, GW_REG_BOOL};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct gw_point_cfg p = {.name = "p", .type = types[i], .scale = 1};
        uint16_t *reg = test_malloc(sizeof(uint16_t)); /* ASan flags a read of reg[1] */
        *reg = 7;
        struct gw_point_value out;
        gw_modbus_decode_regs(&p, reg, &out);
        assert_int_equal(out.fault, GW_FAULT_NONE);
        test_free(reg);
    }
}

static void test_decode_bit(void **state)
{
    (void)state;
    static const struct {
        enum gw_table table;
        uint8_t bit;
        bool want;
    } cases[] = {
        {GW_TABLE_COIL, 0, false},       {GW_TABLE_COIL, 1, true},
        {GW_TABLE_DISCRETE, 0, false},   {GW_TABLE_DISCRETE, 1, true},
        {GW_TABLE_DISCRETE, 0xFF, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gw_point_cfg p = {.name = "b", .table = cases[i].table, .type = GW_REG_BOOL};
        struct gw_point_value out;
        memset(&out, 0x5A, sizeof(out));
        gw_modbus_decode_bit(&p, cases[i].bit, &out);
        assert_int_equal(out.value.type, GW_VALUE_BOOL);
        assert_int_equal(out.value.b, cases[i].want);
        assert_true(out.value.num == (cases[i].want ? 1.0 : 0.0));
        assert_int_equal(out.fault, GW_FAULT_NONE);
    }
}

/* ---- planning ---------------------------------------------------------- */

struct pt {
    enum gw_table table;
    int address;
    enum gw_reg_type type;
};

struct want_req {
    enum gw_table table;
    int address, count, npoints;
    int points[GW_MAX_POINTS];
};

#define MAXP (GW_MAX_POINTS + 2)
#define H GW_TABLE_HOLDING
#define I GW_TABLE_INPUT
#define C GW_TABLE_COIL
#define D GW_TABLE_DISCRETE

struct plan_case {
    const char *what;
    int max_regs, max_bits; /* 0: protocol limits */
    int npoints;
    struct pt pts[MAXP];
    int want_rc;
    int nreq;
    struct want_req req[GW_MAX_POINTS];
};

static const struct plan_case plan_cases[] = {
    {"single point", 0, 0, 1, {{H, 40, GW_REG_U16}}, 0, 1, {{H, 40, 1, 1, {0}}}},
    {"contiguous merged",
     0,
     0,
     3,
     {{H, 0, GW_REG_U16}, {H, 1, GW_REG_S16}, {H, 2, GW_REG_U32}},
     0,
     1,
     {{H, 0, 4, 3, {0, 1, 2}}}},
    {"gap of one register splits",
     0,
     0,
     2,
     {{H, 0, GW_REG_U16}, {H, 2, GW_REG_U16}},
     0,
     2,
     {{H, 0, 1, 1, {0}}, {H, 2, 1, 1, {1}}}},
    {"gap after u32 splits",
     0,
     0,
     2,
     {{I, 0, GW_REG_F32}, {I, 3, GW_REG_U16}},
     0,
     2,
     {{I, 0, 2, 1, {0}}, {I, 3, 1, 1, {1}}}},
    {"unsorted input sorted by address",
     0,
     0,
     3,
     {{H, 5, GW_REG_U16}, {H, 3, GW_REG_U16}, {H, 4, GW_REG_U16}},
     0,
     1,
     {{H, 3, 3, 3, {1, 2, 0}}}},
    {"same register twice",
     0,
     0,
     3,
     {{H, 10, GW_REG_U16}, {H, 10, GW_REG_BOOL}, {H, 10, GW_REG_U32}},
     0,
     1,
     {{H, 10, 2, 3, {0, 1, 2}}}},
    {"u16 inside a u32",
     0,
     0,
     2,
     {{H, 11, GW_REG_U16}, {H, 10, GW_REG_S32}},
     0,
     1,
     {{H, 10, 2, 2, {1, 0}}}},
    {"tables never mixed",
     0,
     0,
     6,
     {{H, 0, GW_REG_U16},
      {I, 0, GW_REG_U16},
      {I, 1, GW_REG_U16},
      {C, 0, GW_REG_BOOL},
      {D, 0, GW_REG_BOOL},
      {H, 1, GW_REG_U16}},
     0,
     4,
     {{H, 0, 2, 2, {0, 5}}, {I, 0, 2, 2, {1, 2}}, {C, 0, 1, 1, {3}}, {D, 0, 1, 1, {4}}}},
    {"register limit splits",
     4,
     0,
     6,
     {{H, 0, GW_REG_U16},
      {H, 1, GW_REG_U16},
      {H, 2, GW_REG_U16},
      {H, 3, GW_REG_U16},
      {H, 4, GW_REG_U16},
      {H, 5, GW_REG_U16}},
     0,
     2,
     {{H, 0, 4, 4, {0, 1, 2, 3}}, {H, 4, 2, 2, {4, 5}}}},
    {"register limit exactly reached",
     4,
     0,
     2,
     {{H, 0, GW_REG_U32}, {H, 2, GW_REG_U32}},
     0,
     1,
     {{H, 0, 4, 2, {0, 1}}}},
    {"u32 straddling the limit starts a new request",
     3,
     0,
     2,
     {{I, 100, GW_REG_U32}, {I, 102, GW_REG_U32}},
     0,
     2,
     {{I, 100, 2, 1, {0}}, {I, 102, 2, 1, {1}}}},
    {"overlap never extends past the limit",
     2,
     0,
     3,
     {{H, 0, GW_REG_U32}, {H, 1, GW_REG_U16}, {H, 1, GW_REG_U32}},
     0,
     2,
     {{H, 0, 2, 2, {0, 1}}, {H, 1, 2, 1, {2}}}},
    {"bit limit splits",
     0,
     3,
     5,
     {{C, 0, GW_REG_BOOL},
      {C, 1, GW_REG_BOOL},
      {C, 2, GW_REG_BOOL},
      {C, 3, GW_REG_BOOL},
      {C, 4, GW_REG_BOOL}},
     0,
     2,
     {{C, 0, 3, 3, {0, 1, 2}}, {C, 3, 2, 2, {3, 4}}}},
    {"bit limit does not apply to registers",
     0,
     1,
     2,
     {{H, 0, GW_REG_U16}, {H, 1, GW_REG_U16}},
     0,
     1,
     {{H, 0, 2, 2, {0, 1}}}},
    {"register limit does not apply to bits",
     2,
     0,
     3,
     {{D, 7, GW_REG_BOOL}, {D, 8, GW_REG_BOOL}, {D, 9, GW_REG_BOOL}},
     0,
     1,
     {{D, 7, 3, 3, {0, 1, 2}}}},
    {"bit gap splits",
     0,
     0,
     2,
     {{D, 0, GW_REG_BOOL}, {D, 2, GW_REG_BOOL}},
     0,
     2,
     {{D, 0, 1, 1, {0}}, {D, 2, 1, 1, {1}}}},
    {"same coil twice",
     0,
     0,
     2,
     {{C, 9, GW_REG_BOOL}, {C, 9, GW_REG_BOOL}},
     0,
     1,
     {{C, 9, 1, 2, {0, 1}}}},
    {"16 contiguous u32 fit one request",
     0,
     0,
     16,
     {{H, 0, GW_REG_U32},
      {H, 2, GW_REG_U32},
      {H, 4, GW_REG_U32},
      {H, 6, GW_REG_U32},
      {H, 8, GW_REG_U32},
      {H, 10, GW_REG_U32},
      {H, 12, GW_REG_U32},
      {H, 14, GW_REG_U32},
      {H, 16, GW_REG_U32},
      {H, 18, GW_REG_U32},
      {H, 20, GW_REG_U32},
      {H, 22, GW_REG_U32},
      {H, 24, GW_REG_U32},
      {H, 26, GW_REG_U32},
      {H, 28, GW_REG_U32},
      {H, 30, GW_REG_U32}},
     0,
     1,
     {{H, 0, 32, 16, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}}},
    {"last register", 0, 0, 1, {{H, 65535, GW_REG_U16}}, 0, 1, {{H, 65535, 1, 1, {0}}}},
    {"u32 past the last register", 0, 0, 1, {{H, 65535, GW_REG_U32}}, -EINVAL, 0, {{0}}},
    {"negative address", 0, 0, 1, {{I, -1, GW_REG_U16}}, -EINVAL, 0, {{0}}},
    {"non-bool on a coil", 0, 0, 1, {{C, 0, GW_REG_U16}}, -EINVAL, 0, {{0}}},
    {"no points", 0, 0, 0, {{0}}, -EINVAL, 0, {{0}}},
    {"17 points", 0, 0, 17, {{0}}, -E2BIG, 0, {{0}}},
    {"register limit above the protocol's", 126, 0, 1, {{H, 0, GW_REG_U16}}, -EINVAL, 0, {{0}}},
    {"bit limit above the protocol's", 0, 2001, 1, {{C, 0, GW_REG_BOOL}}, -EINVAL, 0, {{0}}},
    {"register limit too small for a u32", 1, 0, 1, {{H, 0, GW_REG_U16}}, -EINVAL, 0, {{0}}},
};

static void test_plan(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(plan_cases) / sizeof(plan_cases[0]); i++) {
        const struct plan_case *c = &plan_cases[i];
        struct gw_point_cfg points[MAXP];
        memset(points, 0, sizeof(points));
        for (int k = 0; k < c->npoints; k++) {
            points[k].name = "p";
            points[k].table = c->pts[k].table;
            points[k].address = c->pts[k].address;
            points[k].type = c->pts[k].type;
            points[k].scale = 1;
        }
        struct gw_profile_cfg profile = {
            .name = "prof", .codec = GW_CODEC_MODBUS, .npoints = c->npoints, .points = points};
        struct gw_modbus_plan plan;
        char err[128] = "";
        int rc = gw_modbus_plan_build_limits(
            &profile, c->max_regs ? c->max_regs : GW_MODBUS_MAX_REGS,
            c->max_bits ? c->max_bits : GW_MODBUS_MAX_BITS, &plan, err, sizeof(err));
        EXPECT_INT(c->what, rc, c->want_rc);
        if (rc < 0) {
            EXPECT_INT(c->what, err[0] != '\0', 1);
            continue;
        }
        EXPECT_INT(c->what, plan.nrequests, c->nreq);
        for (int r = 0; r < c->nreq; r++) {
            const struct gw_modbus_request *got = &plan.requests[r];
            const struct want_req *want = &c->req[r];
            EXPECT_INT(c->what, got->table, want->table);
            EXPECT_INT(c->what, got->address, want->address);
            EXPECT_INT(c->what, got->count, want->count);
            EXPECT_INT(c->what, got->npoints, want->npoints);
            for (int k = 0; k < want->npoints; k++) {
                EXPECT_INT(c->what, got->points[k], want->points[k]);
            }
        }
    }
}

/* The default wrapper uses the protocol limits: 125 registers and 2000 bits. */
static void test_plan_protocol_limits(void **state)
{
    (void)state;
    struct gw_point_cfg points[2] = {
        {.name = "a", .table = GW_TABLE_HOLDING, .address = 0, .type = GW_REG_U16},
        {.name = "b", .table = GW_TABLE_HOLDING, .address = 1, .type = GW_REG_U16},
    };
    struct gw_profile_cfg profile = {.name = "x", .npoints = 2, .points = points};
    struct gw_modbus_plan plan;
    assert_int_equal(gw_modbus_plan_build(&profile, &plan, NULL, 0), 0);
    assert_int_equal(plan.nrequests, 1);
    assert_int_equal(plan.requests[0].count, 2);
    /* 125 is accepted, and splits exactly there. */
    assert_int_equal(gw_modbus_plan_build_limits(&profile, 125, 2000, &plan, NULL, 0), 0);
    assert_int_equal(gw_modbus_plan_build_limits(&profile, 2, 2000, &plan, NULL, 0), 0);
    assert_int_equal(plan.nrequests, 1);
    assert_int_equal(gw_modbus_plan_build_limits(&profile, 126, 2000, &plan, NULL, 0), -EINVAL);
    assert_int_equal(gw_modbus_plan_build_limits(&profile, 125, 2001, &plan, NULL, 0), -EINVAL);
}

/* ---- applying a request ------------------------------------------------ */

static void test_apply(void **state)
{
    (void)state;
    struct gw_point_cfg points[] = {
        {.name = "temp", .table = GW_TABLE_INPUT, .address = 2, .type = GW_REG_S16, .scale = 0.1},
        {.name = "pressure",
         .table = GW_TABLE_HOLDING,
         .address = 0,
         .type = GW_REG_U16,
         .has_span = true,
         .raw_min = 4000,
         .raw_max = 20000,
         .min = 0,
         .max = 1.6},
        {.name = "flow", .table = GW_TABLE_HOLDING, .address = 1, .type = GW_REG_F32, .scale = 1},
        {.name = "door", .table = GW_TABLE_COIL, .address = 5, .type = GW_REG_BOOL},
        {.name = "raw", .table = GW_TABLE_HOLDING, .address = 0, .type = GW_REG_U16, .scale = 1},
        {.name = "tamper", .table = GW_TABLE_COIL, .address = 6, .type = GW_REG_BOOL},
    };
    struct gw_profile_cfg profile = {.name = "mix", .npoints = 6, .points = points};
    struct gw_modbus_plan plan;
    assert_int_equal(gw_modbus_plan_build(&profile, &plan, NULL, 0), 0);
    assert_int_equal(plan.nrequests, 3); /* holding 0..2, input 2, coil 5..6 */

    struct gw_reading reading;
    memset(&reading, 0, sizeof(reading));
    const uint16_t holding[3] = {3000, 0x4120, 0x0000}; /* 3000 = wire break */
    const uint16_t input[1] = {0xFF38};                 /* -200 -> -20.0 */
    const uint8_t coils[2] = {1, 0};
    for (int r = 0; r < plan.nrequests; r++) {
        const struct gw_modbus_request *req = &plan.requests[r];
        switch (req->table) {
        case GW_TABLE_HOLDING:
            assert_int_equal(req->count, 3);
            gw_modbus_apply(&profile, req, holding, NULL, &reading);
            break;
        case GW_TABLE_INPUT:
            gw_modbus_apply(&profile, req, input, NULL, &reading);
            break;
        case GW_TABLE_COIL:
            assert_int_equal(req->count, 2);
            gw_modbus_apply(&profile, req, NULL, coils, &reading);
            break;
        default:
            fail();
        }
    }
    assert_int_equal(reading.npoints, 6);
    for (int k = 0; k < 6; k++) {
        assert_string_equal(reading.points[k].name, points[k].name);
    }
    assert_int_equal(reading.points[0].value.type, GW_VALUE_NUMBER);
    assert_true(fabs(reading.points[0].value.num - -20.0) < 1e-9);
    assert_int_equal(reading.points[1].value.type, GW_VALUE_NONE);
    assert_int_equal(reading.points[1].fault, GW_FAULT_WIRE_BREAK);
    assert_true(reading.points[2].value.num == 10.0);
    assert_int_equal(reading.points[3].value.type, GW_VALUE_BOOL);
    assert_true(reading.points[3].value.b);
    assert_true(reading.points[4].value.num == 3000);
    assert_int_equal(reading.points[4].fault, GW_FAULT_NONE);
    assert_false(reading.points[5].value.b);
}

/* A point name longer than a reading holds is truncated, never overflowed. */
static void test_apply_long_name(void **state)
{
    (void)state;
    char name[GW_NAME_MAX * 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct gw_point_cfg p = {.name = name, .table = GW_TABLE_HOLDING, .type = GW_REG_U16};
    struct gw_profile_cfg profile = {.name = "x", .npoints = 1, .points = &p};
    struct gw_modbus_plan plan;
    assert_int_equal(gw_modbus_plan_build(&profile, &plan, NULL, 0), 0);
    struct gw_reading reading;
    memset(&reading, 0, sizeof(reading));
    const uint16_t regs[1] = {1};
    gw_modbus_apply(&profile, &plan.requests[0], regs, NULL, &reading);
    assert_int_equal(strlen(reading.points[0].name), GW_NAME_MAX - 1);
}

/* ---- backoff ----------------------------------------------------------- */

static void test_backoff(void **state)
{
    (void)state;
    static const struct {
        int interval_s, fails;
        int64_t want_ms;
    } cases[] = {
        {10, 0, 10000},   {10, 1, 10000},    {10, 2, 20000},  {10, 3, 40000}, {10, 4, 60000},
        {10, 5, 60000},   {10, 1000, 60000}, {45, 1, 45000},  {45, 2, 60000}, {60, 3, 60000},
        {120, 1, 120000}, {120, 9, 120000},  {1, 1, 1000},    {1, 6, 32000},  {1, 7, 60000},
        {0, 1, 1000},     {-5, 3, 4000},     {10, -1, 10000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = gw_modbus_backoff_ms(cases[i].interval_s, cases[i].fails);
        if (got != cases[i].want_ms) {
            fail_msg("interval %d fails %d: got %lld want %lld", cases[i].interval_s,
                     cases[i].fails, (long long)got, (long long)cases[i].want_ms);
        }
    }
    static const struct {
        int attempts;
        int64_t want_ms;
    } rc[] = {{0, 1000}, {1, 1000}, {2, 2000}, {3, 4000}, {5, 16000}, {6, 30000}, {1000, 30000}};
    for (size_t i = 0; i < sizeof(rc) / sizeof(rc[0]); i++) {
        assert_int_equal(gw_modbus_reconnect_ms(rc[i].attempts), rc[i].want_ms);
    }
}

/* enum = [ "closed", "open", "locked" ]: the raw code is the index; others are invalid. */
static void test_decode_enum(void **state)
{
    (void)state;
    char *labels[] = {"closed", "open", "locked"};
    struct gw_point_cfg p = {
        .name = "state", .type = GW_REG_U16, .scale = 1, .nenum = 3, .enum_labels = labels};
    static const struct {
        uint16_t raw;
        const char *label; /* NULL: GW_FAULT_INVALID */
    } cases[] = {{0, "closed"}, {1, "open"}, {2, "locked"}, {3, NULL}, {0xffff, NULL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint16_t regs[2] = {cases[i].raw, 0};
        struct gw_point_value out;
        gw_modbus_decode_regs(&p, regs, &out);
        if (cases[i].label) {
            assert_int_equal(out.fault, GW_FAULT_NONE);
            assert_int_equal(out.value.type, GW_VALUE_STRING);
            assert_string_equal(out.value.str, cases[i].label);
        } else {
            assert_int_equal(out.fault, GW_FAULT_INVALID);
            assert_int_equal(out.value.type, GW_VALUE_NONE);
        }
    }
    /* A signed register with a negative code is not an index. */
    p.type = GW_REG_S16;
    uint16_t neg[2] = {0xffff, 0};
    struct gw_point_value out;
    gw_modbus_decode_regs(&p, neg, &out);
    assert_int_equal(out.fault, GW_FAULT_INVALID);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(gw_modbus_table_name(GW_TABLE_HOLDING), "holding");
    assert_string_equal(gw_modbus_table_name(GW_TABLE_INPUT), "input");
    assert_string_equal(gw_modbus_table_name(GW_TABLE_COIL), "coil");
    assert_string_equal(gw_modbus_table_name(GW_TABLE_DISCRETE), "discrete");
    assert_false(gw_modbus_table_is_bits(GW_TABLE_HOLDING));
    assert_false(gw_modbus_table_is_bits(GW_TABLE_INPUT));
    assert_true(gw_modbus_table_is_bits(GW_TABLE_COIL));
    assert_true(gw_modbus_table_is_bits(GW_TABLE_DISCRETE));
    struct gw_point_cfg p = {.table = GW_TABLE_HOLDING, .type = GW_REG_F32};
    assert_int_equal(gw_modbus_point_width(&p), 2);
    p.type = GW_REG_S16;
    assert_int_equal(gw_modbus_point_width(&p), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_regs),
        cmocka_unit_test(test_decode_u16_reads_one_register),
        cmocka_unit_test(test_decode_bit),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_plan_protocol_limits),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_apply_long_name),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_decode_enum),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
