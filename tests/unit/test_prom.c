/* Prometheus text exposition: escaping, names, family grouping, values, the gateway's families. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prom.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static struct gw_prom *gauge(const char *name)
{
    struct gw_prom *p = gw_prom_new();
    assert_non_null(p);
    assert_int_equal(gw_prom_family(p, name, GW_PROM_GAUGE, "h"), 0);
    return p;
}

/* The text after the family's HELP and TYPE lines. */
static const char *samples_of(const struct gw_prom *p)
{
    const char *t = strstr(gw_prom_text(p), " gauge\n");
    if (!t) {
        t = strstr(gw_prom_text(p), " counter\n");
    }
    assert_non_null(t);
    return strchr(t, '\n') + 1;
}

static void empty_builder(void **state)
{
    (void)state;
    struct gw_prom *p = gw_prom_new();
    assert_non_null(p);
    assert_string_equal(gw_prom_text(p), "");
    assert_int_equal(gw_prom_len(p), 0);
    assert_string_equal(gw_prom_error(p), "");
    gw_prom_free(p);
    gw_prom_free(NULL);
}

static void label_value_escaping(void **state)
{
    (void)state;
    static const struct {
        const char *value, *written;
    } cases[] = {
        {"plain", "plain"},
        {"", ""},
        {"a\\b", "a\\\\b"},
        {"say \"hi\"", "say \\\"hi\\\""},
        {"two\nlines", "two\\nlines"},
        {"\\\"\n", "\\\\\\\"\\n"},
        {"cr\r tab\t", "cr\r tab\t"}, /* only backslash, quote and newline are escaped */
        {"三楼 烟感", "三楼 烟感"},
        {"emoji \xF0\x9F\x94\xA5", "emoji \xF0\x9F\x94\xA5"},
        /* Not UTF-8: each bad byte becomes U+FFFD, Prometheus refuses the raw bytes. */
        {"x\xFFy", "x\xEF\xBF\xBDy"},
        {"\xC3\x28", "\xEF\xBF\xBD("},                            /* bad continuation */
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* overlong '/' */
        {"\xE0\x80\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* overlong, 3 bytes */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* a surrogate */
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > U+10FFFF */
        {"end\xE4\xB8", "end\xEF\xBF\xBD\xEF\xBF\xBD"}, /* cut short by the end */
        {"\xE4\xB8\"", "\xEF\xBF\xBD\xEF\xBF\xBD\\\""}, /* cut short by a quote */
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct gw_prom *p = gauge("campusgw_x");
        struct gw_prom_label l = {"v", cases[i].value};
        assert_int_equal(gw_prom_sample_u64(p, &l, 1, 1), 0);
        char want[256];
        snprintf(want, sizeof(want), "campusgw_x{v=\"%s\"} 1\n", cases[i].written);
        assert_string_equal(samples_of(p), want);
        gw_prom_free(p);
    }
}

static void help_escaping(void **state)
{
    (void)state;
    struct gw_prom *p = gw_prom_new();
    assert_int_equal(gw_prom_family(p, "campusgw_x", GW_PROM_GAUGE, "a\\b \"q\"\nnext \xFF 中"), 0);
    /* Quotes stay as they are in HELP; backslash and newline are escaped. */
    assert_string_equal(gw_prom_text(p), "# HELP campusgw_x a\\\\b \"q\"\\nnext \xEF\xBF\xBD 中\n"
                                         "# TYPE campusgw_x gauge\n");
    gw_prom_free(p);
}

static void metric_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum gw_prom_type type;
        int rc;
    } cases[] = {
        {"campusgw_ok", GW_PROM_GAUGE, 0},
        {"campusgw_A_9:x", GW_PROM_GAUGE, 0},
        {"campusgw_ok_total", GW_PROM_COUNTER, 0},
        {"campusgw_", GW_PROM_GAUGE, 0},
        {"campusgw_ok", GW_PROM_COUNTER, -EINVAL},     /* a counter ends in _total */
        {"campusgw_ok_total", GW_PROM_GAUGE, -EINVAL}, /* a gauge does not */
        {"other_ok", GW_PROM_GAUGE, -EINVAL},          /* the prefix */
        {"campusgw", GW_PROM_GAUGE, -EINVAL},
        {"Campusgw_ok", GW_PROM_GAUGE, -EINVAL},
        {"9campusgw_ok", GW_PROM_GAUGE, -EINVAL},
        {"campusgw_a-b", GW_PROM_GAUGE, -EINVAL},
        {"campusgw_a b", GW_PROM_GAUGE, -EINVAL},
        {"campusgw_a.b", GW_PROM_GAUGE, -EINVAL},
        {"campusgw_中", GW_PROM_GAUGE, -EINVAL},
        {"campusgw_a\n", GW_PROM_GAUGE, -EINVAL},
        {"", GW_PROM_GAUGE, -EINVAL},
        {NULL, GW_PROM_GAUGE, -EINVAL},
        {"campusgw_ok", (enum gw_prom_type)7, -EINVAL},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct gw_prom *p = gw_prom_new();
        int rc = gw_prom_family(p, cases[i].name, cases[i].type, "help");
        if (rc != cases[i].rc) {
            fail_msg("%s: rc %d, want %d", cases[i].name ? cases[i].name : "(null)", rc,
                     cases[i].rc);
        }
        if (rc != 0) {
            assert_string_equal(gw_prom_text(p), "");
            assert_true(strlen(gw_prom_error(p)) > 0);
        }
        gw_prom_free(p);
    }
    struct gw_prom *p = gw_prom_new();
    assert_int_equal(gw_prom_family(p, "campusgw_x", GW_PROM_GAUGE, ""), -EINVAL);
    assert_int_equal(gw_prom_family(p, "campusgw_x", GW_PROM_GAUGE, NULL), -EINVAL);
    assert_string_equal(gw_prom_error(p), "metric campusgw_x has no help text");
    gw_prom_free(p);
}

static void label_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int rc;
    } cases[] = {
        {"ok", 0},        {"_x9", 0},      {"A_b", 0},       {"_", 0},
        {"__x", -EINVAL}, {"9x", -EINVAL}, {"a:b", -EINVAL}, {"a-b", -EINVAL},
        {"", -EINVAL},    {NULL, -EINVAL}, {"é", -EINVAL},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct gw_prom *p = gauge("campusgw_x");
        size_t before = gw_prom_len(p);
        struct gw_prom_label l = {cases[i].name, "v"};
        int rc = gw_prom_sample_u64(p, &l, 1, 1);
        if (rc != cases[i].rc) {
            fail_msg("label %s: rc %d, want %d", cases[i].name ? cases[i].name : "(null)", rc,
                     cases[i].rc);
        }
        if (rc != 0) {
            assert_int_equal(gw_prom_len(p), before);
        }
        gw_prom_free(p);
    }
    struct gw_prom *p = gauge("campusgw_x");
    struct gw_prom_label twice[] = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
    assert_int_equal(gw_prom_sample_u64(p, twice, 3, 1), -EINVAL);
    assert_string_equal(gw_prom_error(p), "campusgw_x: label a given twice");
    struct gw_prom_label no_value = {"a", NULL};
    assert_int_equal(gw_prom_sample_u64(p, &no_value, 1, 1), -EINVAL);
    assert_int_equal(gw_prom_sample_u64(p, NULL, 1, 1), -EINVAL);
    assert_int_equal(gw_prom_sample_u64(p, twice, -1, 1), -EINVAL);
    struct gw_prom_label many[17];
    char names[17][4];
    for (int i = 0; i < 17; i++) {
        snprintf(names[i], sizeof(names[i]), "l%d", i);
        many[i] = (struct gw_prom_label){names[i], "v"};
    }
    assert_int_equal(gw_prom_sample_u64(p, many, 17, 1), -EINVAL);
    assert_int_equal(gw_prom_sample_u64(p, many, 16, 1), 0);
    gw_prom_free(p);
}

static void labels_sorted_and_duplicates_refused(void **state)
{
    (void)state;
    struct gw_prom *p = gauge("campusgw_x");
    struct gw_prom_label ab[] = {{"state", "s"}, {"class", "c"}};
    struct gw_prom_label ba[] = {{"class", "c"}, {"state", "s"}};
    assert_int_equal(gw_prom_sample_u64(p, ab, 2, 1), 0);
    assert_int_equal(gw_prom_sample_u64(p, ba, 2, 2), -EEXIST);
    assert_string_equal(gw_prom_error(p),
                        "campusgw_x: sample campusgw_x{class=\"c\",state=\"s\"} written twice");
    /* A value that only starts like another is a different sample. */
    struct gw_prom_label longer[] = {{"class", "c"}, {"state", "s2"}};
    assert_int_equal(gw_prom_sample_u64(p, longer, 2, 3), 0);
    /* Escaping is one to one: a quote in a value is not the end of another. */
    struct gw_prom_label quoted[] = {{"class", "c\""}, {"state", "s"}};
    assert_int_equal(gw_prom_sample_u64(p, quoted, 2, 4), 0);
    assert_int_equal(gw_prom_sample_u64(p, NULL, 0, 5), 0);
    assert_int_equal(gw_prom_sample_u64(p, NULL, 0, 6), -EEXIST);
    assert_string_equal(samples_of(p), "campusgw_x{class=\"c\",state=\"s\"} 1\n"
                                       "campusgw_x{class=\"c\",state=\"s2\"} 3\n"
                                       "campusgw_x{class=\"c\\\"\",state=\"s\"} 4\n"
                                       "campusgw_x 5\n");
    gw_prom_free(p);
}

static void family_grouping(void **state)
{
    (void)state;
    struct gw_prom *p = gw_prom_new();
    assert_int_equal(gw_prom_sample_u64(p, NULL, 0, 1), -EINVAL);
    assert_string_equal(gw_prom_error(p), "sample before any metric family");
    assert_int_equal(gw_prom_family(p, "campusgw_a_total", GW_PROM_COUNTER, "A."), 0);
    struct gw_prom_label l1 = {"k", "1"}, l2 = {"k", "2"};
    assert_int_equal(gw_prom_sample_u64(p, &l1, 1, 10), 0);
    assert_int_equal(gw_prom_sample_u64(p, &l2, 1, 20), 0);
    assert_int_equal(gw_prom_family(p, "campusgw_b", GW_PROM_GAUGE, "B."), 0);
    assert_int_equal(gw_prom_sample_i64(p, NULL, 0, -3), 0);
    /* The same label set in another family is no duplicate. */
    assert_int_equal(gw_prom_family(p, "campusgw_c", GW_PROM_GAUGE, "C."), 0);
    assert_int_equal(gw_prom_sample_u64(p, &l1, 1, 1), 0);
    /* A family comes once: its samples cannot be split around another. */
    const char *want = "# HELP campusgw_a_total A.\n"
                       "# TYPE campusgw_a_total counter\n"
                       "campusgw_a_total{k=\"1\"} 10\n"
                       "campusgw_a_total{k=\"2\"} 20\n"
                       "# HELP campusgw_b B.\n"
                       "# TYPE campusgw_b gauge\n"
                       "campusgw_b -3\n"
                       "# HELP campusgw_c C.\n"
                       "# TYPE campusgw_c gauge\n"
                       "campusgw_c{k=\"1\"} 1\n";
    assert_int_equal(gw_prom_family(p, "campusgw_a_total", GW_PROM_COUNTER, "A again."), -EEXIST);
    assert_string_equal(gw_prom_error(p), "metric campusgw_a_total was written before");
    assert_int_equal(gw_prom_family(p, "campusgw_b", GW_PROM_GAUGE, "B."), -EEXIST);
    /* A refused family leaves the open one open. */
    assert_int_equal(gw_prom_family(p, "campusgw_bad name", GW_PROM_GAUGE, "x"), -EINVAL);
    assert_string_equal(gw_prom_text(p), want);
    assert_int_equal(gw_prom_len(p), strlen(want));
    struct gw_prom_label l3 = {"k", "3"};
    assert_int_equal(gw_prom_sample_u64(p, &l3, 1, 3), 0);
    assert_true(strstr(gw_prom_text(p), "campusgw_c{k=\"1\"} 1\ncampusgw_c{k=\"3\"} 3\n") != NULL);
    assert_string_equal(gw_prom_error(p), ""); /* a call that succeeds clears the last error */
    gw_prom_free(p);
}

static void double_formatting(void **state)
{
    (void)state;
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {NAN, "NaN"},
        {-NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {0.0, "0"},
        {-0.0, "-0"},
        {1.0, "1"},
        {0.1, "0.1"},
        {3600.25, "3600.25"},
        {-2.5, "-2.5"},
        {1e-300, "1e-300"},
        {1.5e300, "1.5e+300"},
        {9007199254740993.0, "9007199254740992"}, /* 2^53 + 1 is not a double */
        {0.1 + 0.2, "0.30000000000000004"},       /* 17 digits when 15 would not read back */
        {5e-324, "4.94065645841247e-324"},        /* the smallest denormal */
        {1.7976931348623157e308, "1.7976931348623157e+308"},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char out[32];
        gw_prom_format_double(cases[i].value, out, sizeof(out));
        assert_string_equal(out, cases[i].text);
        if (isfinite(cases[i].value)) {
            assert_true(strtod(out, NULL) == cases[i].value);
        }
    }
}

static void sample_values(void **state)
{
    (void)state;
    struct gw_prom *p = gauge("campusgw_g");
    static const double gauge_values[] = {NAN, INFINITY, -INFINITY, -1.5};
    for (size_t i = 0; i < N_ELEMS(gauge_values); i++) {
        char v[4];
        snprintf(v, sizeof(v), "%zu", i);
        struct gw_prom_label l = {"i", v};
        assert_int_equal(gw_prom_sample(p, &l, 1, gauge_values[i]), 0);
    }
    struct gw_prom_label l = {"i", "max"}, m = {"i", "min"};
    assert_int_equal(gw_prom_sample_i64(p, &l, 1, INT64_MAX), 0);
    assert_int_equal(gw_prom_sample_i64(p, &m, 1, INT64_MIN), 0);
    assert_string_equal(samples_of(p), "campusgw_g{i=\"0\"} NaN\n"
                                       "campusgw_g{i=\"1\"} +Inf\n"
                                       "campusgw_g{i=\"2\"} -Inf\n"
                                       "campusgw_g{i=\"3\"} -1.5\n"
                                       "campusgw_g{i=\"max\"} 9223372036854775807\n"
                                       "campusgw_g{i=\"min\"} -9223372036854775808\n");
    gw_prom_free(p);

    /* A counter counts: finite and not negative. */
    p = gw_prom_new();
    assert_int_equal(gw_prom_family(p, "campusgw_c_total", GW_PROM_COUNTER, "c"), 0);
    size_t before = gw_prom_len(p);
    assert_int_equal(gw_prom_sample(p, NULL, 0, -1.0), -EINVAL);
    assert_int_equal(gw_prom_sample(p, NULL, 0, NAN), -EINVAL);
    assert_int_equal(gw_prom_sample(p, NULL, 0, INFINITY), -EINVAL);
    assert_int_equal(gw_prom_sample_i64(p, NULL, 0, -1), -EINVAL);
    assert_string_equal(gw_prom_error(p), "counter campusgw_c_total: value -1 is negative");
    assert_int_equal(gw_prom_len(p), before);
    struct gw_prom_label a = {"k", "a"}, b = {"k", "b"}, c = {"k", "c"};
    assert_int_equal(gw_prom_sample(p, &a, 1, -0.0), 0);
    assert_int_equal(gw_prom_sample_u64(p, &b, 1, UINT64_MAX), 0);
    assert_int_equal(gw_prom_sample(p, &c, 1, 2.5), 0);
    assert_string_equal(samples_of(p), "campusgw_c_total{k=\"a\"} 0\n"
                                       "campusgw_c_total{k=\"b\"} 18446744073709551615\n"
                                       "campusgw_c_total{k=\"c\"} 2.5\n");
    gw_prom_free(p);
}

static void buffer_grows(void **state)
{
    (void)state;
    struct gw_prom *p = gauge("campusgw_many");
    char long_value[3000];
    memset(long_value, '"', sizeof(long_value) - 1); /* doubles when escaped */
    long_value[sizeof(long_value) - 1] = '\0';
    struct gw_prom_label big = {"v", long_value};
    assert_int_equal(gw_prom_sample_u64(p, &big, 1, 1), 0);
    for (int i = 0; i < 2000; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        struct gw_prom_label l = {"i", v};
        assert_int_equal(gw_prom_sample_i64(p, &l, 1, i), 0);
    }
    /* The duplicate scan reaches back over the whole family. */
    struct gw_prom_label first = {"i", "0"};
    assert_int_equal(gw_prom_sample_i64(p, &first, 1, 0), -EEXIST);
    assert_int_equal(gw_prom_sample_u64(p, &big, 1, 1), -EEXIST);
    const char *t = gw_prom_text(p);
    assert_int_equal(strlen(t), gw_prom_len(p));
    size_t n = gw_prom_len(p);
    assert_true(n > 2 * 2999 + 2000 * 20);
    assert_string_equal(t + n - strlen("campusgw_many{i=\"1999\"} 1999\n"),
                        "campusgw_many{i=\"1999\"} 1999\n");
    gw_prom_free(p);
}

/* ---- the gateway's families ---- */

static void small_snapshot(struct gw_prom_snapshot *s)
{
    memset(s, 0, sizeof(*s));
    s->readings = 1000;
    s->poll_errors = 2;
    s->transitions = 6;
    s->nrejected = 2;
    s->rejected[0] = (struct gw_prom_count){"crc", 4};
    s->rejected[1] = (struct gw_prom_count){"bad_mic", 1};
    s->outbox = 12;
    s->nsinks = 2;
    s->sink_lag[0] = (struct gw_prom_count){"hub", 0};
    s->sink_lag[1] = (struct gw_prom_count){"up\"link", 12};
    s->dropped = 3;
    s->write_errors = 1;
    s->dead_letters = 5;
    s->alarms[GW_CLASS_ALARM][GW_ALARM_UNACKED] = 1;
    s->alarms[GW_CLASS_TROUBLE][GW_ALARM_SHELVED] = 2;
    s->notify[GW_CHANNEL_MQTT].sent = 7;
    s->notify[GW_CHANNEL_WEBHOOK].sent = 3;
    s->notify[GW_CHANNEL_WEBHOOK].failed = 1;
    s->notify[GW_CHANNEL_WEBHOOK].retries = 4;
    s->notify[GW_CHANNEL_EMAIL].failed = 2;
    s->notify_pending = 1;
    s->commands = 5;
    s->commands_refused = 2;
    s->sensors_online = 210;
    s->sensors_offline = 2;
    s->sensors_faulty = 1;
    s->rss_bytes = 12345678;
    s->uptime_seconds = 3600.5;
}

static const char *const small_text =
    "# HELP campusgw_readings_total Readings accepted from all drivers since start.\n"
    "# TYPE campusgw_readings_total counter\n"
    "campusgw_readings_total 1000\n"
    "# HELP campusgw_poll_errors_total Failed sensor polls since start.\n"
    "# TYPE campusgw_poll_errors_total counter\n"
    "campusgw_poll_errors_total 2\n"
    "# HELP campusgw_lora_rejected_frames_total LoRa datagrams and frames rejected since start, "
    "by reason.\n"
    "# TYPE campusgw_lora_rejected_frames_total counter\n"
    "campusgw_lora_rejected_frames_total{reason=\"crc\"} 4\n"
    "campusgw_lora_rejected_frames_total{reason=\"bad_mic\"} 1\n"
    "# HELP campusgw_outbox_records Records in the outbox waiting for at least one sink.\n"
    "# TYPE campusgw_outbox_records gauge\n"
    "campusgw_outbox_records 12\n"
    "# HELP campusgw_sink_lag_records Records a sink has not yet delivered.\n"
    "# TYPE campusgw_sink_lag_records gauge\n"
    "campusgw_sink_lag_records{sink=\"hub\"} 0\n"
    "campusgw_sink_lag_records{sink=\"up\\\"link\"} 12\n"
    "# HELP campusgw_dropped_records_total Telemetry records dropped because the outbox was "
    "full.\n"
    "# TYPE campusgw_dropped_records_total counter\n"
    "campusgw_dropped_records_total 3\n"
    "# HELP campusgw_store_write_errors_total Failed commits to the local store.\n"
    "# TYPE campusgw_store_write_errors_total counter\n"
    "campusgw_store_write_errors_total 1\n"
    "# HELP campusgw_dead_letter_records_total Records a sink refused for good (dead-lettered).\n"
    "# TYPE campusgw_dead_letter_records_total counter\n"
    "campusgw_dead_letter_records_total 5\n"
    "# HELP campusgw_alarms Alarms held by the gateway, by class and ISA-18.2 state.\n"
    "# TYPE campusgw_alarms gauge\n"
    "campusgw_alarms{class=\"alarm\",state=\"normal\"} 0\n"
    "campusgw_alarms{class=\"alarm\",state=\"unacked\"} 1\n"
    "campusgw_alarms{class=\"alarm\",state=\"acked\"} 0\n"
    "campusgw_alarms{class=\"alarm\",state=\"rtn_unacked\"} 0\n"
    "campusgw_alarms{class=\"alarm\",state=\"shelved\"} 0\n"
    "campusgw_alarms{class=\"alarm\",state=\"out_of_service\"} 0\n"
    "campusgw_alarms{class=\"supervisory\",state=\"normal\"} 0\n"
    "campusgw_alarms{class=\"supervisory\",state=\"unacked\"} 0\n"
    "campusgw_alarms{class=\"supervisory\",state=\"acked\"} 0\n"
    "campusgw_alarms{class=\"supervisory\",state=\"rtn_unacked\"} 0\n"
    "campusgw_alarms{class=\"supervisory\",state=\"shelved\"} 0\n"
    "campusgw_alarms{class=\"supervisory\",state=\"out_of_service\"} 0\n"
    "campusgw_alarms{class=\"trouble\",state=\"normal\"} 0\n"
    "campusgw_alarms{class=\"trouble\",state=\"unacked\"} 0\n"
    "campusgw_alarms{class=\"trouble\",state=\"acked\"} 0\n"
    "campusgw_alarms{class=\"trouble\",state=\"rtn_unacked\"} 0\n"
    "campusgw_alarms{class=\"trouble\",state=\"shelved\"} 2\n"
    "campusgw_alarms{class=\"trouble\",state=\"out_of_service\"} 0\n"
    "# HELP campusgw_alarm_transitions_total Rule alarm transitions since start.\n"
    "# TYPE campusgw_alarm_transitions_total counter\n"
    "campusgw_alarm_transitions_total 6\n"
    "# HELP campusgw_notifications_total Notification sends finished since start, by channel "
    "kind and result.\n"
    "# TYPE campusgw_notifications_total counter\n"
    "campusgw_notifications_total{channel=\"mqtt\",result=\"sent\"} 7\n"
    "campusgw_notifications_total{channel=\"mqtt\",result=\"failed\"} 0\n"
    "campusgw_notifications_total{channel=\"webhook\",result=\"sent\"} 3\n"
    "campusgw_notifications_total{channel=\"webhook\",result=\"failed\"} 1\n"
    "campusgw_notifications_total{channel=\"email\",result=\"sent\"} 0\n"
    "campusgw_notifications_total{channel=\"email\",result=\"failed\"} 2\n"
    "# HELP campusgw_notification_retries_total Notification attempts after the first, by "
    "channel kind.\n"
    "# TYPE campusgw_notification_retries_total counter\n"
    "campusgw_notification_retries_total{channel=\"mqtt\"} 0\n"
    "campusgw_notification_retries_total{channel=\"webhook\"} 4\n"
    "campusgw_notification_retries_total{channel=\"email\"} 0\n"
    "# HELP campusgw_notifications_pending Notification sends not finished yet.\n"
    "# TYPE campusgw_notifications_pending gauge\n"
    "campusgw_notifications_pending 1\n"
    "# HELP campusgw_commands_total Operator commands since start, by result.\n"
    "# TYPE campusgw_commands_total counter\n"
    "campusgw_commands_total{result=\"done\"} 3\n"
    "campusgw_commands_total{result=\"refused\"} 2\n"
    "# HELP campusgw_sensors Configured sensors, by whether they are online.\n"
    "# TYPE campusgw_sensors gauge\n"
    "campusgw_sensors{state=\"online\"} 210\n"
    "campusgw_sensors{state=\"offline\"} 2\n"
    "# HELP campusgw_sensors_faulty Sensors reporting a fault, online or offline.\n"
    "# TYPE campusgw_sensors_faulty gauge\n"
    "campusgw_sensors_faulty 1\n"
    "# HELP campusgw_process_resident_memory_bytes Resident memory of the gateway process.\n"
    "# TYPE campusgw_process_resident_memory_bytes gauge\n"
    "campusgw_process_resident_memory_bytes 12345678\n"
    "# HELP campusgw_uptime_seconds Time since the gateway started.\n"
    "# TYPE campusgw_uptime_seconds gauge\n"
    "campusgw_uptime_seconds 3600.5\n";

static void render_small_snapshot(void **state)
{
    (void)state;
    struct gw_prom_snapshot s;
    small_snapshot(&s);
    char err[200] = "untouched";
    char *text = gw_prom_render(&s, err, sizeof(err));
    assert_non_null(text);
    assert_string_equal(text, small_text);
    free(text);
}

static void render_empty_snapshot(void **state)
{
    (void)state;
    struct gw_prom_snapshot s;
    memset(&s, 0, sizeof(s));
    char *text = gw_prom_render(&s, NULL, 0);
    assert_non_null(text);
    /* The families are there without samples to give; every counter is present at 0. */
    assert_non_null(strstr(text, "# TYPE campusgw_lora_rejected_frames_total counter\n"
                                 "# HELP campusgw_outbox_records "));
    assert_non_null(strstr(text, "# TYPE campusgw_sink_lag_records gauge\n"
                                 "# HELP campusgw_dropped_records_total "));
    assert_non_null(strstr(text, "campusgw_readings_total 0\n"));
    /* An unknown RSS is no sample rather than a made-up 0. */
    assert_non_null(strstr(text, "# TYPE campusgw_process_resident_memory_bytes gauge\n"
                                 "# HELP campusgw_uptime_seconds "));
    assert_null(strstr(text, "campusgw_process_resident_memory_bytes 0"));
    assert_non_null(strstr(text, "campusgw_uptime_seconds 0\n"));
    free(text);
}

static void render_refuses_bad_snapshots(void **state)
{
    (void)state;
    static const struct {
        const char *want;
        int what;
    } cases[] = {
        {"nrejected 33 out of 0..32", 0},
        {"nsinks -1 out of 0..8", 1},
        {"campusgw_lora_rejected_frames_total: label reason has no value", 2},
        {"campusgw_sink_lag_records: sample campusgw_sink_lag_records{sink=\"hub\"} written twice",
         3},
        {"commands_refused 3 > commands 2", 4},
        {"alarms[2][5] is negative", 5},
        {"a negative sensor or pending notification count", 6},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct gw_prom_snapshot s;
        small_snapshot(&s);
        switch (cases[i].what) {
        case 0:
            s.nrejected = GW_PROM_MAX_REASONS + 1;
            break;
        case 1:
            s.nsinks = -1;
            break;
        case 2:
            s.rejected[1].name = NULL;
            break;
        case 3:
            s.sink_lag[1].name = "hub";
            break;
        case 4:
            s.commands = 2;
            s.commands_refused = 3;
            break;
        case 5:
            s.alarms[2][5] = -1;
            break;
        case 6:
            s.sensors_offline = -1;
            break;
        }
        char err[200] = "";
        assert_null(gw_prom_render(&s, err, sizeof(err)));
        assert_string_equal(err, cases[i].want);
        assert_null(gw_prom_render(&s, NULL, 0)); /* no err buffer: still refused, no crash */
    }
}

/* The hostile names reach the text escaped, and the counts reach it exact. */
static void render_hostile_names(void **state)
{
    (void)state;
    struct gw_prom_snapshot s;
    small_snapshot(&s);
    s.rejected[0] = (struct gw_prom_count){"a\"b\\c\nd\xFF", UINT64_MAX};
    s.sink_lag[0].name = "数据\"库";
    s.uptime_seconds = NAN;
    char err[200];
    char *text = gw_prom_render(&s, err, sizeof(err));
    assert_non_null(text);
    assert_non_null(strstr(text, "campusgw_lora_rejected_frames_total{reason=\"a\\\"b\\\\c\\nd"
                                 "\xEF\xBF\xBD\"} 18446744073709551615\n"));
    assert_non_null(strstr(text, "campusgw_sink_lag_records{sink=\"数据\\\"库\"} 0\n"));
    assert_non_null(strstr(text, "campusgw_uptime_seconds NaN\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_builder),
        cmocka_unit_test(label_value_escaping),
        cmocka_unit_test(help_escaping),
        cmocka_unit_test(metric_names),
        cmocka_unit_test(label_names),
        cmocka_unit_test(labels_sorted_and_duplicates_refused),
        cmocka_unit_test(family_grouping),
        cmocka_unit_test(double_formatting),
        cmocka_unit_test(sample_values),
        cmocka_unit_test(buffer_grows),
        cmocka_unit_test(render_small_snapshot),
        cmocka_unit_test(render_empty_snapshot),
        cmocka_unit_test(render_refuses_bad_snapshots),
        cmocka_unit_test(render_hostile_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
