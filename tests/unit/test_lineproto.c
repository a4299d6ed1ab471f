/* InfluxDB line protocol: escaping, number forms, tags, buffer, and every record type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <float.h>
#include <math.h>

#include "lineproto.h"

/* One line into a fresh buffer; returns gw_lp_line's result, text in *out (caller frees). */
static int one_line(const char *m, const struct gw_lp_tag *tags, int ntags,
                    const struct gw_lp_field *fields, int nfields, int64_t ts, char **out)
{
    struct gw_lp_buf b;
    gw_lp_buf_init(&b);
    int rc = gw_lp_line(&b, m, tags, ntags, fields, nfields, ts);
    *out = strdup(b.data ? b.data : "");
    assert_non_null(*out);
    if (rc == 1) {
        assert_int_equal(b.lines, 1);
        assert_int_equal(b.len, strlen(b.data));
    } else {
        assert_int_equal(b.lines, 0);
        assert_int_equal(b.len, 0);
    }
    gw_lp_buf_free(&b);
    return rc;
}

static void expect_line(const char *m, const struct gw_lp_tag *tags, int ntags,
                        const struct gw_lp_field *fields, int nfields, int64_t ts,
                        const char *expected)
{
    char *got;
    int rc = one_line(m, tags, ntags, fields, nfields, ts, &got);
    if (rc != 1 || strcmp(got, expected) != 0) {
        print_error("expected rc 1 and [%s]\n     got rc %d and [%s]\n", expected, rc, got);
    }
    assert_int_equal(rc, 1);
    assert_string_equal(got, expected);
    free(got);
}

/* ---- escaping ---------------------------------------------------------------------------- */

struct esc_case {
    const char *name;
    const char *meas, *tkey, *tval, *fkey, *sval;
    const char *expected;
};

static const struct esc_case esc_cases[] = {
    {"plain", "m", "k", "v", "f", "s", "m,k=v f=\"s\" 1\n"},
    {"meas comma", "a,b", "k", "v", "f", "s", "a\\,b,k=v f=\"s\" 1\n"},
    {"meas space", "a b", "k", "v", "f", "s", "a\\ b,k=v f=\"s\" 1\n"},
    {"meas equals kept", "a=b", "k", "v", "f", "s", "a=b,k=v f=\"s\" 1\n"},
    {"meas quote kept", "a\"b", "k", "v", "f", "s", "a\"b,k=v f=\"s\" 1\n"},
    {"tag key comma", "m", "k,1", "v", "f", "s", "m,k\\,1=v f=\"s\" 1\n"},
    {"tag key space", "m", "k 1", "v", "f", "s", "m,k\\ 1=v f=\"s\" 1\n"},
    {"tag key equals", "m", "k=1", "v", "f", "s", "m,k\\=1=v f=\"s\" 1\n"},
    {"tag value comma", "m", "k", "a,b", "f", "s", "m,k=a\\,b f=\"s\" 1\n"},
    {"tag value space", "m", "k", "a b", "f", "s", "m,k=a\\ b f=\"s\" 1\n"},
    {"tag value equals", "m", "k", "a=b", "f", "s", "m,k=a\\=b f=\"s\" 1\n"},
    {"tag value quote kept", "m", "k", "a\"b", "f", "s", "m,k=a\"b f=\"s\" 1\n"},
    {"tag value all three", "m", "k", " ,=", "f", "s", "m,k=\\ \\,\\= f=\"s\" 1\n"},
    {"field key comma", "m", "k", "v", "f,1", "s", "m,k=v f\\,1=\"s\" 1\n"},
    {"field key space", "m", "k", "v", "f 1", "s", "m,k=v f\\ 1=\"s\" 1\n"},
    {"field key equals", "m", "k", "v", "f=1", "s", "m,k=v f\\=1=\"s\" 1\n"},
    {"string quote", "m", "k", "v", "f", "say \"hi\"", "m,k=v f=\"say \\\"hi\\\"\" 1\n"},
    {"string backslash", "m", "k", "v", "f", "C:\\dir", "m,k=v f=\"C:\\\\dir\" 1\n"},
    {"string backslash at end", "m", "k", "v", "f", "a\\", "m,k=v f=\"a\\\\\" 1\n"},
    {"string backslash quote", "m", "k", "v", "f", "\\\"", "m,k=v f=\"\\\\\\\"\" 1\n"},
    {"string comma space equals kept", "m", "k", "v", "f", "a, b=c", "m,k=v f=\"a, b=c\" 1\n"},
    {"string newline", "m", "k", "v", "f", "l1\nl2\r\n", "m,k=v f=\"l1 l2  \" 1\n"},
    {"string empty", "m", "k", "v", "f", "", "m,k=v f=\"\" 1\n"},
    /* A backslash is data except at the end, where it would escape the separator. */
    {"meas backslash inside", "a\\b", "k", "v", "f", "s", "a\\b,k=v f=\"s\" 1\n"},
    {"meas backslash at end dropped", "ab\\\\", "k", "v", "f", "s", "ab,k=v f=\"s\" 1\n"},
    {"tag value backslash inside", "m", "k", "C:\\dir", "f", "s", "m,k=C:\\dir f=\"s\" 1\n"},
    {"tag value backslash before comma", "m", "k", "a\\,b", "f", "s", "m,k=a\\\\,b f=\"s\" 1\n"},
    {"tag value backslash at end dropped", "m", "k", "a\\", "f", "s", "m,k=a f=\"s\" 1\n"},
    {"tag value only backslashes omitted", "m", "k", "\\\\", "f", "s", "m f=\"s\" 1\n"},
    {"tag key backslash at end dropped", "m", "k\\", "v", "f", "s", "m,k=v f=\"s\" 1\n"},
    {"field key backslash at end dropped", "m", "k", "v", "f\\", "s", "m,k=v f=\"s\" 1\n"},
    {"utf8 everywhere", "教学楼", "楼栋", "教学楼A栋", "温度", "三楼 东侧",
     "教学楼,楼栋=教学楼A栋 温度=\"三楼 东侧\" 1\n"},
    {"utf8 with space", "m", "building", "教学楼 A栋", "f", "s",
     "m,building=教学楼\\ A栋 f=\"s\" 1\n"},
    {"meas newline", "a\nb", "k", "v", "f", "s", "a\\ b,k=v f=\"s\" 1\n"},
    {"tag key newline", "m", "k\r1", "v", "f", "s", "m,k\\ 1=v f=\"s\" 1\n"},
    {"tag value newline", "m", "k", "a\r\nb", "f", "s", "m,k=a\\ \\ b f=\"s\" 1\n"},
    {"field key newline", "m", "k", "v", "f\n", "s", "m,k=v f\\ =\"s\" 1\n"},
    {"tab kept", "m", "k", "a\tb", "f", "s", "m,k=a\tb f=\"s\" 1\n"},
};

static void escaping(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
        const struct esc_case *c = &esc_cases[i];
        print_message("case: %s\n", c->name);
        struct gw_lp_tag tag = {c->tkey, c->tval};
        struct gw_lp_field f = {.key = c->fkey, .type = GW_LP_STRING, .s = c->sval};
        expect_line(c->meas, &tag, 1, &f, 1, 1, c->expected);
    }
}

/* ---- field types and number forms ---------------------------------------------------------- */

struct field_case {
    struct gw_lp_field f;
    const char *expected; /* after "m x=" */
};

#define FLT(v)                                                                                     \
    {                                                                                              \
        .key = "x", .type = GW_LP_FLOAT, .f = (v)                                                  \
    }
#define INT(v)                                                                                     \
    {                                                                                              \
        .key = "x", .type = GW_LP_INT, .i = (v)                                                    \
    }
#define BOOL(v)                                                                                    \
    {                                                                                              \
        .key = "x", .type = GW_LP_BOOL, .b = (v)                                                   \
    }
#define STR(v)                                                                                     \
    {                                                                                              \
        .key = "x", .type = GW_LP_STRING, .s = (v)                                                 \
    }

static void field_types(void **state)
{
    (void)state;
    const struct field_case cases[] = {
        {FLT(0.0), "0"},
        {FLT(-0.0), "-0"},
        {FLT(1.0), "1"},
        {FLT(-42.0), "-42"},
        {FLT(0.1), "0.1"},
        {FLT(1.5), "1.5"},
        {FLT(0.4523), "0.4523"},
        {FLT(-97.25), "-97.25"},
        {FLT(1e-300), "1e-300"},
        {FLT(1e300), "1e+300"},
        {FLT(-1e300), "-1e+300"},
        {FLT(1e-5), "1e-05"},
        {FLT(123456789012345.0), "123456789012345"},
        {FLT(1e15), "1e+15"},
        {FLT(1.0 / 3), "0.3333333333333333"},    /* needs 16 digits */
        {FLT(0.1 + 0.2), "0.30000000000000004"}, /* needs 17 */
        {FLT(9007199254740992.0), "9007199254740992"},
        {FLT(DBL_MAX), "1.7976931348623157e+308"},
        {FLT(DBL_MIN), "2.2250738585072014e-308"},
        {FLT(5e-324), "4.94065645841247e-324"},
        {INT(0), "0i"},
        {INT(-1), "-1i"},
        {INT(1234567), "1234567i"},
        {INT(INT64_MAX), "9223372036854775807i"},
        {INT(INT64_MIN), "-9223372036854775808i"},
        {BOOL(true), "true"},
        {BOOL(false), "false"},
        {STR("text"), "\"text\""},
        {STR(""), "\"\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char expected[128];
        snprintf(expected, sizeof(expected), "m x=%s 1\n", cases[i].expected);
        print_message("case: %s\n", cases[i].expected);
        expect_line("m", NULL, 0, &cases[i].f, 1, 1, expected);
    }
}

/* The definition: the shortest of %.15g, %.16g, %.17g that reads back as v. */
static void reference_float(double v, char *out, size_t size)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v) {
            return;
        }
    }
}

/* Every float we print is the reference form (the fast paths included) and reads back. */
static void floats_round_trip(void **state)
{
    (void)state;
    static const double scale[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e12};
    uint64_t x = 88172645463325252ULL; /* xorshift64: deterministic */
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof(v));
        if (!isfinite(v)) {
            continue;
        }
        if (i % 4 == 1) { /* sensor-like: a few decimals, either sign, any magnitude */
            v = (double)(int64_t)(x % 20000001 - 10000000) / scale[(x >> 40) % 12];
        } else if (i % 4 == 2) { /* around the 1e-4 and 1e15 edges */
            v = (double)(x % 100000) * ((x >> 50) % 2 ? 1e-9 : 1e10) + (double)(x % 7) / 8;
        } else if (i % 4 == 3) { /* arithmetic results with long expansions */
            v = (double)(x % 1000) / 3.0 + 0.1 * (double)(x % 13);
        }
        struct gw_lp_field f = FLT(v);
        char *got, ref[64], expected[96];
        reference_float(v, ref, sizeof(ref));
        snprintf(expected, sizeof(expected), "m x=%s 0\n", ref);
        assert_int_equal(one_line("m", NULL, 0, &f, 1, 0, &got), 1);
        if (strcmp(got, expected) != 0) {
            print_error("v=%.17g: got [%s] expected [%s]\n", v, got, expected);
        }
        assert_string_equal(got, expected);
        double back = strtod(got + strlen("m x="), NULL);
        assert_memory_equal(&back, &v, sizeof(v));
        free(got);
    }
}

static void several_fields_in_order(void **state)
{
    (void)state;
    const struct gw_lp_field f[] = {
        {.key = "f", .type = GW_LP_FLOAT, .f = 1.5},
        {.key = "i", .type = GW_LP_INT, .i = 12},
        {.key = "b", .type = GW_LP_BOOL, .b = true},
        {.key = "s", .type = GW_LP_STRING, .s = "text"},
    };
    const struct gw_lp_tag t[] = {{"tag1", "v1"}, {"tag2", "v2"}};
    expect_line("measurement", t, 2, f, 4, 1764336419123000000LL,
                "measurement,tag1=v1,tag2=v2 f=1.5,i=12i,b=true,s=\"text\" 1764336419123000000\n");
}

static void non_finite_skipped(void **state)
{
    (void)state;
    const struct gw_lp_field f[] = {
        {.key = "a", .type = GW_LP_FLOAT, .f = NAN},
        {.key = "b", .type = GW_LP_FLOAT, .f = 2.5},
        {.key = "c", .type = GW_LP_FLOAT, .f = INFINITY},
        {.key = "d", .type = GW_LP_FLOAT, .f = -INFINITY},
        {.key = "e", .type = GW_LP_INT, .i = 3},
    };
    expect_line("m", NULL, 0, f, 5, 7, "m b=2.5,e=3i 7\n");
    expect_line("m", NULL, 0, &f[1], 1, 7, "m b=2.5 7\n"); /* first field kept: no comma */
}

/* Lines that have nothing to write leave the buffer as it was. */
static void nothing_to_write(void **state)
{
    (void)state;
    struct gw_lp_buf b;
    gw_lp_buf_init(&b);
    const struct gw_lp_field ok = {.key = "x", .type = GW_LP_INT, .i = 1};
    assert_int_equal(gw_lp_line(&b, "m", NULL, 0, &ok, 1, 5), 1);
    const size_t len = b.len;

    const struct gw_lp_field all_skipped[] = {
        {.key = "a", .type = GW_LP_FLOAT, .f = NAN},
        {.key = "b", .type = GW_LP_FLOAT, .f = INFINITY},
        {.key = "c", .type = GW_LP_STRING, .s = NULL},
        {.key = "", .type = GW_LP_INT, .i = 1},
        {.key = NULL, .type = GW_LP_INT, .i = 1},
        {.key = "\\", .type = GW_LP_INT, .i = 1},
    };
    const struct gw_lp_tag t = {"k", "v"};
    assert_int_equal(gw_lp_line(&b, "m", &t, 1, all_skipped, 6, 5), 0);
    assert_int_equal(gw_lp_line(&b, "m", &t, 1, NULL, 0, 5), 0);
    assert_int_equal(b.len, len);
    assert_int_equal(b.lines, 1);
    assert_string_equal(b.data, "m x=1i 5\n");
    gw_lp_buf_free(&b);
}

static void invalid_arguments(void **state)
{
    (void)state;
    struct gw_lp_buf b;
    gw_lp_buf_init(&b);
    const struct gw_lp_field f = {.key = "x", .type = GW_LP_INT, .i = 1};
    const struct gw_lp_tag dup[] = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
    const struct gw_lp_tag no_key[] = {{"", "1"}};
    const struct gw_lp_tag null_key[] = {{NULL, "1"}};
    assert_int_equal(gw_lp_line(&b, "", NULL, 0, &f, 1, 0), -EINVAL);
    assert_int_equal(gw_lp_line(&b, NULL, NULL, 0, &f, 1, 0), -EINVAL);
    assert_int_equal(gw_lp_line(&b, "\\", NULL, 0, &f, 1, 0), -EINVAL);
    assert_int_equal(gw_lp_line(&b, "m", dup, 3, &f, 1, 0), -EINVAL);
    assert_int_equal(gw_lp_line(&b, "m", no_key, 1, &f, 1, 0), -EINVAL);
    assert_int_equal(gw_lp_line(&b, "m", null_key, 1, &f, 1, 0), -EINVAL);
    assert_int_equal(gw_lp_line(&b, "m", NULL, 1, &f, 1, 0), -EINVAL);
    assert_int_equal(gw_lp_line(&b, "m", NULL, 0, NULL, 1, 0), -EINVAL);
    assert_int_equal(gw_lp_line(&b, "m", NULL, -1, &f, 1, 0), -EINVAL);
    assert_int_equal(gw_lp_line(NULL, "m", NULL, 0, &f, 1, 0), -EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.lines, 0);
    /* A duplicate key whose value is empty is omitted, so it is no duplicate. */
    const struct gw_lp_tag dup_empty[] = {{"a", "1"}, {"a", ""}};
    assert_int_equal(gw_lp_line(&b, "m", dup_empty, 2, &f, 1, 0), 1);
    assert_string_equal(b.data, "m,a=1 x=1i 0\n");
    gw_lp_buf_free(&b);
}

static void empty_tags_omitted(void **state)
{
    (void)state;
    const struct gw_lp_field f = {.key = "x", .type = GW_LP_BOOL, .b = false};
    const struct gw_lp_tag t[] = {{"a", ""}, {"b", "2"}, {"c", NULL}, {"d", "4"}};
    expect_line("m", t, 4, &f, 1, 9, "m,b=2,d=4 x=false 9\n");
    expect_line("m", t, 1, &f, 1, 9, "m x=false 9\n");
}

static void tags_sorted_by_key_bytes(void **state)
{
    (void)state;
    const struct gw_lp_field f = {.key = "x", .type = GW_LP_INT, .i = 1};
    const struct gw_lp_tag t[] = {
        {"zone", "z"}, {"sensor", "s"}, {"building", "b"}, {"district", "d"}, {"Zeta", "Z"},
        {"ab", "2"},   {"a", "1"},      {"é", "e"},        {"floor", "f"},    {"school", "sc"},
    };
    expect_line("m", t, 10, &f, 1, 1,
                "m,Zeta=Z,a=1,ab=2,building=b,district=d,floor=f,school=sc,sensor=s,zone=z,é=e "
                "x=1i 1\n");
}

static void timestamps(void **state)
{
    (void)state;
    const struct gw_lp_field f = {.key = "x", .type = GW_LP_INT, .i = 1};
    expect_line("m", NULL, 0, &f, 1, 0, "m x=1i 0\n");
    expect_line("m", NULL, 0, &f, 1, -1000000, "m x=1i -1000000\n");
    expect_line("m", NULL, 0, &f, 1, 1764336419123000000LL, "m x=1i 1764336419123000000\n");
    expect_line("m", NULL, 0, &f, 1, INT64_MAX, "m x=1i 9223372036854775807\n");
}

static void buffer_grows_and_resets(void **state)
{
    (void)state;
    struct gw_lp_buf b;
    gw_lp_buf_init(&b);
    assert_null(b.data);
    gw_lp_buf_reset(&b); /* fine before the first line */
    const int n = 20000;
    char expected[128];
    size_t total = 0;
    size_t last_cap = 0;
    int grows = 0;
    for (int i = 0; i < n; i++) {
        const struct gw_lp_tag t = {"sensor", i % 2 ? "A-1F-hydrant-01" : "教学楼"};
        const struct gw_lp_field f = {.key = "n", .type = GW_LP_INT, .i = i};
        assert_int_equal(gw_lp_line(&b, "m", &t, 1, &f, 1, (int64_t)i * 1000), 1);
        total += (size_t)snprintf(expected, sizeof(expected), "m,sensor=%s n=%di %lld\n", t.value,
                                  i, (long long)i * 1000);
        assert_int_equal(b.lines, i + 1);
        assert_int_equal(b.len, total);
        assert_true(b.cap > b.len);
        if (b.cap != last_cap) {
            grows++;
            last_cap = b.cap;
        }
        assert_int_equal(b.data[b.len], '\0');
    }
    /* Geometric growth: ~600 KB of lines in a handful of reallocations. */
    assert_in_range(grows, 1, 12);
    /* Every line is where it should be. */
    const char *p = b.data;
    for (int i = 0; i < n; i++) {
        int len = snprintf(expected, sizeof(expected), "m,sensor=%s n=%di %lld\n",
                           i % 2 ? "A-1F-hydrant-01" : "教学楼", i, (long long)i * 1000);
        assert_memory_equal(p, expected, (size_t)len);
        p += len;
    }
    assert_ptr_equal(p, b.data + b.len);

    char *data = b.data;
    size_t cap = b.cap;
    gw_lp_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.lines, 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "");
    const struct gw_lp_field f = {.key = "x", .type = GW_LP_INT, .i = 1};
    assert_int_equal(gw_lp_line(&b, "m", NULL, 0, &f, 1, 2), 1);
    assert_string_equal(b.data, "m x=1i 2\n");
    assert_ptr_equal(b.data, data);
    gw_lp_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    gw_lp_buf_free(&b); /* twice is fine */
    gw_lp_buf_free(NULL);
}

/* One line far larger than the initial capacity. */
static void long_line(void **state)
{
    (void)state;
    size_t n = 100000;
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        s[i] = i % 2 ? '"' : 'a';
    }
    s[n] = '\0';
    struct gw_lp_buf b;
    gw_lp_buf_init(&b);
    const struct gw_lp_field f = {.key = "x", .type = GW_LP_STRING, .s = s};
    assert_int_equal(gw_lp_line(&b, "m", NULL, 0, &f, 1, 1), 1);
    assert_int_equal(b.len, strlen("m x=\"\" 1\n") + n + n / 2);
    assert_int_equal(b.len, strlen(b.data));
    gw_lp_buf_free(&b);
    free(s);
}

/* ---- records ---------------------------------------------------------------------------- */

static struct gw_sensor_cfg sensors[] = {
    {.id = "A-1F-hydrant-01",
     .kind = "hydrant_pressure",
     .location = {.building = "教学楼A栋", .floor = "1", .zone = "east stair, north=2"}},
    {.id = "A-3F-smoke-301",
     .kind = "smoke",
     .location = {.building = "A", .floor = NULL, .zone = ""}},
};

static struct gw_config cfg = {
    .site = {.district = "d1", .school = "s-01", .name = "第一中学"},
    .nsensors = 2,
    .sensors = sensors,
};

#define TS 1764336419123LL
#define TS_NS "1764336419123000000"
#define HYD_TAGS                                                                                   \
    "building=教学楼A栋,district=d1,floor=1,school=s-01,sensor=A-1F-hydrant-01,"               \
    "zone=east\\ stair\\,\\ north\\=2"

struct rec_case {
    const char *name;
    enum gw_record_type type;
    const char *payload;
    int rc;
    const char *expected; /* with rc 1 */
    int64_t ts_ms;        /* 0: TS */
};

static const struct rec_case rec_cases[] = {
    {"telemetry", GW_REC_TELEMETRY,
     "{\"seq\":42,\"sensor\":\"A-1F-hydrant-01\",\"kind\":\"hydrant_pressure\","
     "\"ts\":\"2025-11-28T13:26:59.123Z\",\"values\":{\"pressure\":0.4523,\"state\":\"locked\","
     "\"alarm\":true,\"count\":3},\"faults\":{\"inlet\":\"wire_break\"},\"rssi\":-97.0,"
     "\"snr\":7.5}",
     1,
     "hydrant_pressure," HYD_TAGS " pressure=0.4523,state=\"locked\",alarm=true,count=3,"
     "rssi=-97,snr=7.5 " TS_NS "\n",
     0},
    {"telemetry battery is a value", GW_REC_TELEMETRY,
     "{\"seq\":43,\"sensor\":\"A-3F-smoke-301\",\"kind\":\"smoke\",\"ts\":\"x\","
     "\"values\":{\"smoke\":false,\"battery\":87.0}}",
     1,
     "smoke,building=A,district=d1,school=s-01,sensor=A-3F-smoke-301 smoke=false,battery=87 " TS_NS
     "\n",
     0},
    {"telemetry skips null, nested and time", GW_REC_TELEMETRY,
     "{\"seq\":1,\"sensor\":\"A-3F-smoke-301\",\"kind\":\"smoke\",\"values\":{\"a\":null,"
     "\"b\":{\"c\":1},\"d\":[1],\"time\":5,\"e\":1e300},\"rssi\":null}",
     1, "smoke,building=A,district=d1,school=s-01,sensor=A-3F-smoke-301 e=1e+300 " TS_NS "\n", 0},
    {"telemetry nothing usable", GW_REC_TELEMETRY,
     "{\"seq\":1,\"sensor\":\"A-3F-smoke-301\",\"kind\":\"smoke\",\"values\":{\"p\":null},"
     "\"faults\":{\"p\":\"wire_break\"}}",
     0, NULL, 0},
    {"telemetry only rssi", GW_REC_TELEMETRY,
     "{\"seq\":1,\"sensor\":\"A-3F-smoke-301\",\"kind\":\"smoke\",\"values\":{},\"rssi\":-110}", 1,
     "smoke,building=A,district=d1,school=s-01,sensor=A-3F-smoke-301 rssi=-110 " TS_NS "\n", 0},
    {"telemetry sensor not in cfg", GW_REC_TELEMETRY,
     "{\"seq\":1,\"sensor\":\"gone-01\",\"kind\":\"smoke\",\"values\":{\"smoke\":true}}", 1,
     "smoke,district=d1,school=s-01,sensor=gone-01 smoke=true " TS_NS "\n", 0},
    {"telemetry escapes kind and names", GW_REC_TELEMETRY,
     "{\"seq\":1,\"sensor\":\"gone-01\",\"kind\":\"odd kind,x\",\"values\":{\"a "
     "b\":\"q\\\"\\\\\"}}",
     1, "odd\\ kind\\,x,district=d1,school=s-01,sensor=gone-01 a\\ b=\"q\\\"\\\\\" " TS_NS "\n", 0},
    {"telemetry ts from record", GW_REC_TELEMETRY,
     "{\"seq\":1,\"sensor\":\"gone-01\",\"kind\":\"k\",\"values\":{\"v\":1}}", 1,
     "k,district=d1,school=s-01,sensor=gone-01 v=1 -5000000\n", -5},
    {"health", GW_REC_HEALTH,
     "{\"seq\":7,\"sensor\":\"A-1F-hydrant-01\",\"online\":true,"
     "\"last_seen\":\"2025-11-28T13:26:49.123Z\",\"errors\":2,\"battery\":87.0,\"rssi\":-101.5,"
     "\"snr\":-3.25}",
     1,
     "sensor_health," HYD_TAGS
     " online=true,age_s=10,errors=2i,battery=87,rssi=-101.5,snr=-3.25 " TS_NS "\n",
     0},
    {"health never seen", GW_REC_HEALTH,
     "{\"seq\":7,\"sensor\":\"A-3F-smoke-301\",\"online\":false,\"last_seen\":null,\"errors\":0,"
     "\"fault\":\"timeout: no reply\"}",
     1,
     "sensor_health,building=A,district=d1,school=s-01,sensor=A-3F-smoke-301 online=false,"
     "errors=0i,fault=\"timeout: no reply\" " TS_NS "\n",
     0},
    {"health offset and long fraction", GW_REC_HEALTH,
     "{\"seq\":7,\"sensor\":\"gone-01\",\"online\":false,"
     "\"last_seen\":\"2025-11-28T21:26:59.000999+08:00\",\"errors\":5}",
     1,
     "sensor_health,district=d1,school=s-01,sensor=gone-01 "
     "online=false,age_s=0.123,errors=5i " TS_NS "\n",
     0},
    {"health no fraction, leap day", GW_REC_HEALTH,
     "{\"seq\":7,\"sensor\":\"gone-01\",\"online\":true,\"last_seen\":\"2024-02-29T00:00:00Z\","
     "\"errors\":0}",
     1,
     "sensor_health,district=d1,school=s-01,sensor=gone-01 online=true,age_s=-1,errors=0i " /**/
     "1709164799000000000\n",
     1709164799000LL},
    {"health negative offset, short fraction", GW_REC_HEALTH,
     "{\"seq\":7,\"sensor\":\"gone-01\",\"online\":true,"
     "\"last_seen\":\"2025-11-28T07:56:49.5-05:30\",\"errors\":0}",
     1,
     "sensor_health,district=d1,school=s-01,sensor=gone-01 online=true,age_s=9.623,errors=0i " TS_NS
     "\n",
     0},
    {"event number", GW_REC_EVENT,
     "{\"seq\":9,\"key\":\"A-1F-hydrant-01/hydrant-pressure-low\",\"sensor\":\"A-1F-hydrant-01\","
     "\"rule\":\"hydrant pressure low\",\"class\":\"supervisory\",\"state\":\"unacked\","
     "\"value\":0.08,\"raised_at\":\"2025-11-28T13:26:59.123Z\",\"acked_at\":null,"
     "\"acked_by\":null,\"cleared_at\":null,\"level\":1,\"transition\":\"raise\"}",
     1,
     "alarm,class=supervisory,district=d1,rule=hydrant\\ pressure\\ low,school=s-01,"
     "sensor=A-1F-hydrant-01 state=\"unacked\",value=0.08,level=1i,transition=\"raise\" " TS_NS
     "\n",
     0},
    {"event bool", GW_REC_EVENT,
     "{\"seq\":9,\"sensor\":\"A-3F-smoke-301\",\"rule\":\"smoke detected\",\"class\":\"alarm\","
     "\"state\":\"acked\",\"value\":true,\"level\":2,\"transition\":\"ack\"}",
     1,
     "alarm,class=alarm,district=d1,rule=smoke\\ detected,school=s-01,sensor=A-3F-smoke-301 "
     "state=\"acked\",value=1,level=2i,transition=\"ack\" " TS_NS "\n",
     0},
    {"event bool false", GW_REC_EVENT,
     "{\"seq\":9,\"sensor\":\"s\",\"rule\":\"r\",\"class\":\"alarm\",\"state\":\"normal\","
     "\"value\":false,\"level\":0}",
     1,
     "alarm,class=alarm,district=d1,rule=r,school=s-01,sensor=s state=\"normal\",value=0,level=0i "
     "" TS_NS "\n",
     0},
    {"event string", GW_REC_EVENT,
     "{\"seq\":9,\"sensor\":\"B-exit-2\",\"rule\":\"exit locked, hours\",\"class\":\"supervisory\","
     "\"state\":\"unacked\",\"value\":\"locked\",\"level\":1,\"transition\":\"raise\"}",
     1,
     "alarm,class=supervisory,district=d1,rule=exit\\ locked\\,\\ hours,school=s-01,"
     "sensor=B-exit-2 state=\"unacked\",value_text=\"locked\",level=1i,transition=\"raise\" " TS_NS
     "\n",
     0},
    {"event null value", GW_REC_EVENT,
     "{\"seq\":9,\"sensor\":\"s\",\"rule\":\"sensor offline\",\"class\":\"trouble\","
     "\"state\":\"unacked\",\"value\":null,\"level\":1,\"transition\":\"raise\"}",
     1,
     "alarm,class=trouble,district=d1,rule=sensor\\ offline,school=s-01,sensor=s "
     "state=\"unacked\",level=1i,transition=\"raise\" " TS_NS "\n",
     0},
    {"gateway", GW_REC_GATEWAY,
     "{\"seq\":1,\"ts\":\"2025-11-28T13:26:59.123Z\",\"outbox\":12,\"readings\":3456,"
     "\"dropped\":0,\"rss_kb\":5120,\"uptime_s\":3600,\"sink_errors\":-1,\"note\":\"x\","
     "\"nested\":{}}",
     1,
     "gateway,district=d1,school=s-01 outbox=12i,readings=3456i,dropped=0i,rss_kb=5120i,"
     "uptime_s=3600i,sink_errors=-1i " TS_NS "\n",
     0},
    {"gateway nothing", GW_REC_GATEWAY, "{\"seq\":1,\"ts\":\"x\"}", 0, NULL, 0},
    {"alarm retained", GW_REC_ALARM,
     "{\"seq\":9,\"sensor\":\"s\",\"rule\":\"r\",\"class\":\"alarm\",\"state\":\"unacked\","
     "\"value\":1,\"level\":1}",
     0, NULL, 0},
    {"alarm cleared", GW_REC_ALARM, "", 0, NULL, 0},
    /* MQTT-only records of issue 7: nothing for InfluxDB, and not malformed either. */
    {"hazard", GW_REC_HAZARD, "{\"seq\":1,\"id\":\"HZ-20251128-001\"}", 0, NULL, 0},
    {"hazard log", GW_REC_HAZARD_LOG, "{\"seq\":1,\"hazard\":\"HZ-20251128-001\"}", 0, NULL, 0},
    {"daily log", GW_REC_DAILY_LOG, "{\"date\":\"2025-11-27\"}", 0, NULL, 0},
    {"malformed: truncated", GW_REC_TELEMETRY, "{\"seq\":1,\"sensor\":", -EINVAL, NULL, 0},
    {"malformed: empty", GW_REC_TELEMETRY, "", -EINVAL, NULL, 0},
    {"malformed: array", GW_REC_GATEWAY, "[1,2]", -EINVAL, NULL, 0},
    {"malformed: scalar", GW_REC_HEALTH, "null", -EINVAL, NULL, 0},
    {"malformed: trailing garbage", GW_REC_GATEWAY, "{\"outbox\":1} x", -EINVAL, NULL, 0},
    {"telemetry without kind", GW_REC_TELEMETRY, "{\"sensor\":\"s\",\"values\":{\"v\":1}}", -EINVAL,
     NULL, 0},
    {"telemetry without sensor", GW_REC_TELEMETRY, "{\"kind\":\"k\",\"values\":{\"v\":1}}", -EINVAL,
     NULL, 0},
    {"telemetry values not object", GW_REC_TELEMETRY,
     "{\"sensor\":\"s\",\"kind\":\"k\",\"values\":[1]}", -EINVAL, NULL, 0},
    {"telemetry empty kind", GW_REC_TELEMETRY,
     "{\"sensor\":\"s\",\"kind\":\"\",\"values\":{\"v\":1}}", -EINVAL, NULL, 0},
    {"health without errors", GW_REC_HEALTH,
     "{\"sensor\":\"s\",\"online\":true,\"last_seen\":null}", -EINVAL, NULL, 0},
    {"health without last_seen", GW_REC_HEALTH, "{\"sensor\":\"s\",\"online\":true,\"errors\":0}",
     -EINVAL, NULL, 0},
    {"health online not bool", GW_REC_HEALTH,
     "{\"sensor\":\"s\",\"online\":1,\"last_seen\":null,\"errors\":0}", -EINVAL, NULL, 0},
    {"health bad last_seen", GW_REC_HEALTH,
     "{\"sensor\":\"s\",\"online\":true,\"last_seen\":\"yesterday\",\"errors\":0}", -EINVAL, NULL,
     0},
    {"health last_seen month 13", GW_REC_HEALTH,
     "{\"sensor\":\"s\",\"online\":true,\"last_seen\":\"2025-13-01T00:00:00Z\",\"errors\":0}",
     -EINVAL, NULL, 0},
    {"health last_seen no zone", GW_REC_HEALTH,
     "{\"sensor\":\"s\",\"online\":true,\"last_seen\":\"2025-11-28T13:26:59.123\",\"errors\":0}",
     -EINVAL, NULL, 0},
    {"health last_seen trailing junk", GW_REC_HEALTH,
     "{\"sensor\":\"s\",\"online\":true,\"last_seen\":\"2025-11-28T13:26:59.123Zx\",\"errors\":0}",
     -EINVAL, NULL, 0},
    {"health last_seen empty fraction", GW_REC_HEALTH,
     "{\"sensor\":\"s\",\"online\":true,\"last_seen\":\"2025-11-28T13:26:59.Z\",\"errors\":0}",
     -EINVAL, NULL, 0},
    {"event without level", GW_REC_EVENT,
     "{\"sensor\":\"s\",\"rule\":\"r\",\"class\":\"alarm\",\"state\":\"unacked\",\"value\":1}",
     -EINVAL, NULL, 0},
    {"event without value", GW_REC_EVENT,
     "{\"sensor\":\"s\",\"rule\":\"r\",\"class\":\"alarm\",\"state\":\"unacked\",\"level\":1}",
     -EINVAL, NULL, 0},
    {"event level not integer", GW_REC_EVENT,
     "{\"sensor\":\"s\",\"rule\":\"r\",\"class\":\"alarm\",\"state\":\"unacked\",\"value\":1,"
     "\"level\":1.5}",
     -EINVAL, NULL, 0},
    /* The school's figures (P/kpi): the contract's example line, field for field. */
    {"kpi", GW_REC_KPI,
     "{\"seq\":5,\"ts\":\"2025-11-28T13:26:59.123Z\",\"district\":\"d1\",\"school\":\"s-01\","
     "\"sensors_total\":12,\"sensors_online_pct\":91.7,"
     "\"alarms_24h\":{\"alarm\":0,\"supervisory\":2,\"trouble\":1},\"ack_mean_s\":35.5,"
     "\"ack_worst_s\":61.0,\"unacknowledged_alarms\":1,\"open_hazards\":2,"
     "\"overdue_hazards\":0,\"hydrants_without_pressure\":1,\"exits_locked_in_hours\":0}",
     1,
     "school_kpi,district=d1,school=s-01 sensors_total=12i,sensors_online_pct=91.7,"
     "alarms_24h_alarm=0i,alarms_24h_supervisory=2i,alarms_24h_trouble=1i,ack_mean_s=35.5,"
     "ack_worst_s=61,unacknowledged_alarms=1i,open_hazards=2i,overdue_hazards=0i,"
     "hydrants_without_pressure=1i,exits_locked_in_hours=0i " TS_NS "\n",
     0},
    /* Nothing acknowledged: ack_* null, left out; whole percentages stay floats; the record's
     * own site (made before a reload moved it) wins over cfg's. */
    {"kpi no acks", GW_REC_KPI,
     "{\"seq\":5,\"ts\":\"2025-11-28T13:26:59.123Z\",\"district\":\"old d\",\"school\":\"old,s\","
     "\"sensors_total\":0,\"sensors_online_pct\":0.0,"
     "\"alarms_24h\":{\"alarm\":0,\"supervisory\":0,\"trouble\":0},\"ack_mean_s\":null,"
     "\"ack_worst_s\":null,\"unacknowledged_alarms\":0,\"open_hazards\":0,"
     "\"overdue_hazards\":0,\"hydrants_without_pressure\":0,\"exits_locked_in_hours\":0}",
     1,
     "school_kpi,district=old\\ d,school=old\\,s sensors_total=0i,sensors_online_pct=0,"
     "alarms_24h_alarm=0i,alarms_24h_supervisory=0i,alarms_24h_trouble=0i,"
     "unacknowledged_alarms=0i,open_hazards=0i,overdue_hazards=0i,"
     "hydrants_without_pressure=0i,exits_locked_in_hours=0i " TS_NS "\n",
     0},
    {"kpi site from cfg", GW_REC_KPI,
     "{\"sensors_total\":3,\"sensors_online_pct\":100.0,"
     "\"alarms_24h\":{\"alarm\":1,\"supervisory\":0,\"trouble\":0},\"ack_mean_s\":0.4,"
     "\"ack_worst_s\":0.4,\"unacknowledged_alarms\":0,\"open_hazards\":0,"
     "\"overdue_hazards\":0,\"hydrants_without_pressure\":0,\"exits_locked_in_hours\":0}",
     1,
     "school_kpi,district=d1,school=s-01 sensors_total=3i,sensors_online_pct=100,"
     "alarms_24h_alarm=1i,alarms_24h_supervisory=0i,alarms_24h_trouble=0i,ack_mean_s=0.4,"
     "ack_worst_s=0.4,unacknowledged_alarms=0i,open_hazards=0i,overdue_hazards=0i,"
     "hydrants_without_pressure=0i,exits_locked_in_hours=0i " TS_NS "\n",
     0},
    {"kpi count not integer", GW_REC_KPI,
     "{\"sensors_total\":3,\"sensors_online_pct\":100.0,"
     "\"alarms_24h\":{\"alarm\":1,\"supervisory\":0,\"trouble\":0},\"ack_mean_s\":null,"
     "\"ack_worst_s\":null,\"unacknowledged_alarms\":0.5,\"open_hazards\":0,"
     "\"overdue_hazards\":0,\"hydrants_without_pressure\":0,\"exits_locked_in_hours\":0}",
     -EINVAL, NULL, 0},
    {"kpi without a class", GW_REC_KPI,
     "{\"sensors_total\":3,\"sensors_online_pct\":100.0,"
     "\"alarms_24h\":{\"alarm\":1,\"supervisory\":0},\"ack_mean_s\":null,"
     "\"ack_worst_s\":null,\"unacknowledged_alarms\":0,\"open_hazards\":0,"
     "\"overdue_hazards\":0,\"hydrants_without_pressure\":0,\"exits_locked_in_hours\":0}",
     -EINVAL, NULL, 0},
    {"kpi ack as text", GW_REC_KPI,
     "{\"sensors_total\":3,\"sensors_online_pct\":100.0,"
     "\"alarms_24h\":{\"alarm\":1,\"supervisory\":0,\"trouble\":0},\"ack_mean_s\":\"1\","
     "\"ack_worst_s\":null,\"unacknowledged_alarms\":0,\"open_hazards\":0,"
     "\"overdue_hazards\":0,\"hydrants_without_pressure\":0,\"exits_locked_in_hours\":0}",
     -EINVAL, NULL, 0},
    {"kpi without percentage", GW_REC_KPI,
     "{\"sensors_total\":3,\"alarms_24h\":{\"alarm\":1,\"supervisory\":0,\"trouble\":0},"
     "\"unacknowledged_alarms\":0,\"open_hazards\":0,\"overdue_hazards\":0,"
     "\"hydrants_without_pressure\":0,\"exits_locked_in_hours\":0}",
     -EINVAL, NULL, 0},
    {"kpi without a count", GW_REC_KPI,
     "{\"sensors_total\":3,\"sensors_online_pct\":100.0,"
     "\"alarms_24h\":{\"alarm\":1,\"supervisory\":0,\"trouble\":0},"
     "\"unacknowledged_alarms\":0,\"open_hazards\":0,\"overdue_hazards\":0,"
     "\"hydrants_without_pressure\":0}",
     -EINVAL, NULL, 0},
    {"unknown type", (enum gw_record_type)99, "{}", -EINVAL, NULL, 0},
    {"timestamp out of range", GW_REC_GATEWAY, "{\"outbox\":1}", -EINVAL, NULL, INT64_MAX / 1000},
};

static void records(void **state)
{
    (void)state;
    struct gw_lp_buf b;
    gw_lp_buf_init(&b);
    for (size_t i = 0; i < sizeof(rec_cases) / sizeof(rec_cases[0]); i++) {
        const struct rec_case *c = &rec_cases[i];
        print_message("case: %s\n", c->name);
        gw_lp_buf_reset(&b);
        /* A line already there must survive whatever this record does. */
        const struct gw_lp_field f = {.key = "x", .type = GW_LP_INT, .i = 1};
        assert_int_equal(gw_lp_line(&b, "prev", NULL, 0, &f, 1, 0), 1);
        struct gw_record rec = {.seq = 1,
                                .type = c->type,
                                .ts_ms = c->ts_ms ? c->ts_ms : TS,
                                .topic = "t",
                                .payload = (char *)c->payload,
                                .payload_len = strlen(c->payload)};
        int rc = gw_lp_from_record(&b, &cfg, &rec);
        if (rc != c->rc) {
            print_error("rc %d, expected %d; buffer [%s]\n", rc, c->rc, b.data);
        }
        assert_int_equal(rc, c->rc);
        const char *rest = b.data + strlen("prev x=1i 0\n");
        assert_memory_equal(b.data, "prev x=1i 0\n", strlen("prev x=1i 0\n"));
        if (rc == 1) {
            if (strcmp(rest, c->expected) != 0) {
                print_error("expected [%s]\n     got [%s]\n", c->expected, rest);
            }
            assert_string_equal(rest, c->expected);
            assert_int_equal(b.lines, 2);
        } else {
            assert_string_equal(rest, "");
            assert_int_equal(b.lines, 1);
        }
    }
    gw_lp_buf_free(&b);
}

static void record_without_cfg(void **state)
{
    (void)state;
    struct gw_lp_buf b;
    gw_lp_buf_init(&b);
    const char *p = "{\"sensor\":\"A-1F-hydrant-01\",\"kind\":\"k\",\"values\":{\"v\":0.5}}";
    struct gw_record rec = {
        .type = GW_REC_TELEMETRY, .ts_ms = 1, .payload = (char *)p, .payload_len = strlen(p)};
    assert_int_equal(gw_lp_from_record(&b, NULL, &rec), 1);
    assert_string_equal(b.data, "k,sensor=A-1F-hydrant-01 v=0.5 1000000\n");
    rec.payload = NULL;
    assert_int_equal(gw_lp_from_record(&b, NULL, &rec), -EINVAL);
    assert_int_equal(gw_lp_from_record(&b, NULL, NULL), -EINVAL);
    assert_int_equal(gw_lp_from_record(NULL, NULL, &rec), -EINVAL);
    assert_int_equal(b.lines, 1);
    gw_lp_buf_free(&b);
}

/* More values than fit the on-stack field array. */
static void telemetry_many_values(void **state)
{
    (void)state;
    char payload[4096], expected[4096];
    int n = snprintf(payload, sizeof(payload), "{\"sensor\":\"s\",\"kind\":\"k\",\"values\":{");
    int e = snprintf(expected, sizeof(expected), "k,district=d1,school=s-01,sensor=s ");
    for (int i = 0; i < 100; i++) {
        n += snprintf(payload + n, sizeof(payload) - (size_t)n, "%s\"v%d\":%d.5", i ? "," : "", i,
                      i);
        e += snprintf(expected + e, sizeof(expected) - (size_t)e, "%sv%d=%d.5", i ? "," : "", i, i);
    }
    snprintf(payload + n, sizeof(payload) - (size_t)n, "},\"snr\":1.25}");
    snprintf(expected + e, sizeof(expected) - (size_t)e, ",snr=1.25 2000000\n");
    struct gw_lp_buf b;
    gw_lp_buf_init(&b);
    struct gw_record rec = {
        .type = GW_REC_TELEMETRY, .ts_ms = 2, .payload = payload, .payload_len = strlen(payload)};
    assert_int_equal(gw_lp_from_record(&b, &cfg, &rec), 1);
    assert_string_equal(b.data, expected);
    gw_lp_buf_free(&b);
}

/* The location tags follow the cfg passed in, also one that reuses the same address. */
static void sensor_lookup_follows_cfg(void **state)
{
    (void)state;
    enum { N = 3000 };
    struct gw_sensor_cfg *s = calloc(N, sizeof(*s));
    char(*ids)[16] = calloc(N, sizeof(*ids));
    char(*zones)[16] = calloc(N, sizeof(*zones));
    assert_non_null(s);
    assert_non_null(ids);
    assert_non_null(zones);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "S-%04d", i);
        snprintf(zones[i], sizeof(zones[i]), "z%d", i);
        s[i] = (struct gw_sensor_cfg){.id = ids[i], .kind = "k", .location = {.zone = zones[i]}};
    }
    struct gw_config c = {.site = {.district = "d", .school = "s"}, .nsensors = N, .sensors = s};
    struct gw_lp_buf b;
    gw_lp_buf_init(&b);
    char payload[128], expected[128];
    for (int round = 0; round < 3; round++) {
        if (round == 2) {
            /* A reload at the same address with the same count: ids now at other indexes. */
            for (int i = 0; i < N; i++) {
                snprintf(ids[i], sizeof(ids[i]), "S-%04d", N - 1 - i);
            }
        }
        for (int k = 0; k < N; k++) {
            int i = (k * 7919) % N;
            snprintf(payload, sizeof(payload),
                     "{\"sensor\":\"S-%04d\",\"kind\":\"k\",\"values\":{\"v\":1}}", i);
            int idx = round == 2 ? N - 1 - i : i;
            snprintf(expected, sizeof(expected),
                     "k,district=d,school=s,sensor=S-%04d,zone=z%d v=1 0\n", i, idx);
            struct gw_record rec = {
                .type = GW_REC_TELEMETRY, .payload = payload, .payload_len = strlen(payload)};
            gw_lp_buf_reset(&b);
            assert_int_equal(gw_lp_from_record(&b, &c, &rec), 1);
            assert_string_equal(b.data, expected);
        }
    }
    /* A different cfg: that one's locations. */
    gw_lp_buf_reset(&b);
    const char *p = "{\"sensor\":\"A-1F-hydrant-01\",\"kind\":\"k\",\"values\":{\"v\":1}}";
    struct gw_record rec = {
        .type = GW_REC_TELEMETRY, .payload = (char *)p, .payload_len = strlen(p)};
    assert_int_equal(gw_lp_from_record(&b, &cfg, &rec), 1);
    assert_string_equal(b.data, "k," HYD_TAGS " v=1 0\n");
    gw_lp_buf_reset(&b);
    assert_int_equal(gw_lp_from_record(&b, &c, &rec), 1);
    assert_string_equal(b.data, "k,district=d,school=s,sensor=A-1F-hydrant-01 v=1 0\n");
    gw_lp_buf_free(&b);
    free(zones);
    free(ids);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escaping),
        cmocka_unit_test(field_types),
        cmocka_unit_test(floats_round_trip),
        cmocka_unit_test(several_fields_in_order),
        cmocka_unit_test(non_finite_skipped),
        cmocka_unit_test(nothing_to_write),
        cmocka_unit_test(invalid_arguments),
        cmocka_unit_test(empty_tags_omitted),
        cmocka_unit_test(tags_sorted_by_key_bytes),
        cmocka_unit_test(timestamps),
        cmocka_unit_test(buffer_grows_and_resets),
        cmocka_unit_test(long_line),
        cmocka_unit_test(records),
        cmocka_unit_test(record_without_cfg),
        cmocka_unit_test(telemetry_many_values),
        cmocka_unit_test(sensor_lookup_follows_cfg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
