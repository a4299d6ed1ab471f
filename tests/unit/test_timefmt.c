/*
 * RFC 3339 times (timefmt.h): the formatter's exact output, the parser's
 * every edge (calendar, leap years, offsets, fractions, the epoch, garbage),
 * the parser against the formatter over a wide span of times, and "YYYY-MM-DD".
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "timefmt.h"

/* 2026-11-28T02:00:00Z = 10:00 in Asia/Shanghai */
#define T0 1795831200000LL
/* 2024-05-01T10:00:00Z */
#define T1 1714557600000LL

/* ---- formatting ---- */

static void format_has_milliseconds_and_z(void **state)
{
    (void)state;
    char buf[40];
    gw_format_rfc3339(1764336419123LL, buf, sizeof(buf));
    assert_string_equal(buf, "2025-11-28T13:26:59.123Z");
    gw_format_rfc3339(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    gw_format_rfc3339(1, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.001Z");
    gw_format_rfc3339(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    gw_format_rfc3339(1835395200050LL, buf, sizeof(buf));
    assert_string_equal(buf, "2028-02-29T00:00:00.050Z");
    gw_format_rfc3339(253402300799999LL, buf, sizeof(buf));
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
}

static void format_needs_room(void **state)
{
    (void)state;
    char buf[25];
    gw_format_rfc3339(T0, buf, sizeof(buf)); /* 24 characters and the NUL: just fits */
    assert_string_equal(buf, "2026-11-28T02:00:00.000Z");
    memset(buf, 'x', sizeof(buf));
    gw_format_rfc3339(T0, buf, 24);
    assert_string_equal(buf, "");
    memset(buf, 'x', sizeof(buf));
    gw_format_rfc3339(T0, buf, 1);
    assert_string_equal(buf, "");
    buf[0] = 'x';
    gw_format_rfc3339(T0, buf, 0); /* writes nothing at all */
    assert_int_equal(buf[0], 'x');
}

/* ---- parsing ---- */

static const struct {
    const char *s;
    int64_t ms;
} good[] = {
    {"1970-01-01T00:00:00Z", 0},
    {"1970-01-01T00:00:00.001Z", 1},
    {"1969-12-31T23:00:00-01:00", 0}, /* the epoch, written west of Greenwich */
    {"2026-11-28T02:00:00Z", T0},
    {"2026-11-28T10:00:00+08:00", T0},
    {"2026-11-27T21:30:00-04:30", T0},
    {"2026-11-28T02:00:00+00:00", T0},
    {"2026-11-28T02:00:00-00:00", T0}, /* RFC 3339's "offset unknown": still UTC */
    {"2026-11-28t02:00:00z", T0},
    {"2026-11-28 02:00:00Z", T0}, /* RFC 3339 5.6 lets applications use a space */
    {"2024-05-01T18:00:00+08:00", T1},
    {"2024-05-01T05:30:00-04:30", T1},
    {"2024-05-01 10:00:00z", T1},
    {"2024-12-31T23:30:00-14:00", 1735738200000LL}, /* a day and a year ahead in UTC */
    {"2025-01-01T09:30:00+23:59", 1735637460000LL},
    /* fractions: 1, 2, 3, 6 and 9 digits, truncated (not rounded) to ms */
    {"2026-11-28T02:00:00.5Z", T0 + 500},
    {"2026-11-28T02:00:00.12+00:00", T0 + 120},
    {"2026-11-28T02:00:00.123Z", T0 + 123},
    {"2026-11-28T02:00:00.000Z", T0},
    {"2026-11-28T02:00:00.123456Z", T0 + 123},
    {"2026-11-28T02:00:00.999999999Z", T0 + 999},
    {"2026-11-28T02:00:00.000000001Z", T0},
    {"2026-11-28T10:00:00.75+08:00", T0 + 750},
    /* the calendar */
    {"1972-02-29T00:00:00Z", 68169600000LL},   /* the first leap day after the epoch */
    {"2000-02-29T00:00:00Z", 951782400000LL},  /* divisible by 400: leap */
    {"2024-02-29T00:00:00Z", 1709164800000LL}, /* divisible by 4: leap */
    {"2028-02-29T00:00:00Z", 1835395200000LL},
    {"2024-02-29T23:59:59Z", 1709251199000LL},
    {"2024-03-01T08:15:30.123Z", 1709280930123LL},
    {"2024-03-01T02:45:30+05:30", 1709241330000LL},
    {"2024-02-29T21:15:30-05:30", 1709261130000LL},
    {"2024-04-30T00:00:00Z", 1714435200000LL},
    {"2024-12-31T00:00:00Z", 1735603200000LL},
    {"2038-01-19T03:14:08Z", 2147483648000LL}, /* past 32-bit time_t */
    {"2100-03-01T00:00:00Z", 4107542400000LL},
    {"9999-12-31T23:59:59.999Z", 253402300799999LL},
    /* a leap second is held at :59 of its minute, fraction kept */
    {"2016-12-31T23:59:60Z", 1483228799000LL},
    {"2016-12-31T23:59:60.5Z", 1483228799500LL},
    {"2024-02-29T23:59:60Z", 1709251199000LL},
};

static void parses_good_times(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = 42;
        int rc = gw_parse_rfc3339(good[i].s, &ms);
        if (rc != 0 || ms != good[i].ms) {
            print_error("good %zu \"%s\": rc %d ms %lld\n", i, good[i].s, rc, (long long)ms);
        }
        assert_int_equal(rc, 0);
        assert_int_equal(ms, good[i].ms);
    }
}

static const char *const bad[] = {
    "",
    "tomorrow",
    "yesterday at noon!!",
    "2024-05-01",
    "2024-05-01T",
    "2024-05-01T10",
    "2024-05-01T10:00",
    "2024-05-01T10:00Z",
    "2024-05-01T10:00:00",             /* no offset: whose 10:00? */
    "2024-05-01T10:00:00.",            /* cut after the dot */
    "2024-05-01T10:00:00.Z",           /* empty fraction */
    "2024-05-01T10:00:00,5Z",          /* ISO 8601's comma, not RFC 3339 */
    "2024-05-01T10:00:00.1234567890Z", /* 10 fraction digits */
    "2024-03-01T08:15:30.1234567890123Z",
    "2024-05-01T10:00:00Zjunk",
    "2024-05-01T10:00:00ZZ",
    "2024-05-01T10:00:00Z ",
    " 2024-05-01T10:00:00Z",
    "2024-05-01T10:00:00+08:00junk",
    "2024-05-01T10:00:00+08:00Z",
    "2024-05-01T10:00:00+0800", /* offset without ':' */
    "2024-05-01T10:00:00+8:00",
    "2024-05-01T10:00:00+08",
    "2024-05-01T10:00:00+08:0",
    "2024-05-01T10:00:00+24:00", /* offset out of range */
    "2024-05-01T10:00:00+08:60",
    "2024-05-01T10:00:00 +08:00",
    "2024-05-01T10:00:00UTC",
    "2024-05-01T10:00:00GMT+8",
    /* fields */
    "2024-13-01T10:00:00Z",
    "2024-00-01T10:00:00Z",
    "2024-01-00T00:00:00Z",
    "2024-01-32T00:00:00Z",
    "2024-04-31T10:00:00Z",
    "2024-06-31T10:00:00Z",
    "2024-09-31T10:00:00Z",
    "2024-11-31T10:00:00Z",
    "2024-02-30T00:00:00Z",
    "2023-02-29T10:00:00Z", /* not a leap year */
    "2100-02-29T00:00:00Z", /* divisible by 100, not 400 */
    "1900-02-29T10:00:00Z",
    "2024-05-01T24:00:00Z",
    "2024-05-01T10:60:00Z",
    "2024-05-01T10:00:61Z",
    "2024-05-01T10:00:99Z",
    /* shapes */
    "2024/05/01T10:00:00Z",
    "2024-05-01X10:00:00Z",
    "2024-05-01_10:00:00Z",
    "2024-5-01T10:00:00Z",
    "2024-05-1T10:00:00Z",
    "24-05-01T10:00:00Z",
    "02024-05-01T10:00:00Z",
    "2024-05-01T1:00:00Z",
    "2024-05-01T10:0:00Z",
    "2024-05-01T10:00:0Z",
    "abcd-01-01T00:00:00Z",
    "+2024-05-01T10:00:00Z",
    "-2024-05-01T10:00:00Z",
    "2024-05-01T10:00:00\n",
    "2024-05-01T10:00:00Z\n",
    "1714557600000", /* Unix ms are the caller's business (web.c's since) */
    /* before the epoch */
    "1969-12-31T23:59:59Z",
    "1969-12-31T23:59:59.999Z",
    "1970-01-01T00:59:59+01:00",
    "1970-01-01T00:00:00+00:01",
    "0000-01-01T00:00:00Z",
    "1900-01-01T00:00:00Z",
};

static void rejects_bad_times(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        int rc = gw_parse_rfc3339(bad[i], &ms);
        if (rc != -EINVAL || ms != 42) {
            print_error("bad %zu \"%s\": rc %d ms %lld\n", i, bad[i], rc, (long long)ms);
        }
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(ms, 42); /* untouched */
    }
    int64_t ms = 42;
    assert_int_equal(gw_parse_rfc3339(NULL, &ms), -EINVAL);
    assert_int_equal(ms, 42);
    assert_int_equal(gw_parse_rfc3339("2024-05-01T10:00:00Z", NULL), -EINVAL);
}

/* Every prefix of a good time is bad, and reading one never goes past its NUL (ASan sees that:
 * each prefix is a heap block of exactly its length). */
static void prefixes_are_rejected(void **state)
{
    (void)state;
    const char *full[] = {"2026-11-28T10:00:00.123456789+08:00", "2026-11-28T02:00:00Z"};
    for (size_t f = 0; f < sizeof(full) / sizeof(full[0]); f++) {
        size_t len = strlen(full[f]);
        for (size_t n = 0; n < len; n++) {
            char *p = malloc(n + 1);
            assert_non_null(p);
            memcpy(p, full[f], n);
            p[n] = '\0';
            int64_t ms = 42;
            if (gw_parse_rfc3339(p, &ms) != -EINVAL) {
                print_error("prefix \"%s\" parsed\n", p);
            }
            assert_int_equal(gw_parse_rfc3339(p, &ms), -EINVAL);
            free(p);
        }
        int64_t ms;
        assert_int_equal(gw_parse_rfc3339(full[f], &ms), 0);
    }
}

/* Whatever the formatter (libc's gmtime) writes, the parser (days_from_civil) reads back: over
 * 1970..9999 in uneven steps, every day boundary of the leap-year edges, and the first ms. */
static void format_then_parse_round_trips(void **state)
{
    (void)state;
    char buf[40];
    int64_t ms;
    const int64_t end = 253402300799999LL;
    int n = 0;
    for (int64_t t = 0; t <= end; t += 997LL * 3600 * 1000 + 12345, n++) {
        gw_format_rfc3339(t, buf, sizeof(buf));
        if (gw_parse_rfc3339(buf, &ms) != 0 || ms != t) {
            print_error("%lld -> \"%s\" -> %lld\n", (long long)t, buf, (long long)ms);
        }
        assert_int_equal(gw_parse_rfc3339(buf, &ms), 0);
        assert_int_equal(ms, t);
    }
    assert_true(n > 70000);
    /* each midnight and the ms before it, 1970-01-01 to 2401-01-01 (four 100-year rules) */
    for (int64_t day = 0; day <= 157420; day++) {
        for (int64_t t = day * 86400000LL - 1; t <= day * 86400000LL; t++) {
            if (t < 0) {
                continue;
            }
            gw_format_rfc3339(t, buf, sizeof(buf));
            assert_int_equal(gw_parse_rfc3339(buf, &ms), 0);
            assert_int_equal(ms, t);
        }
    }
}

/* The parser never asks the C library about time zones: TZ makes no difference. */
static void parse_ignores_tz(void **state)
{
    (void)state;
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    const char *zones[] = {"UTC0", "Asia/Shanghai", "America/New_York",
                           "CET-1CEST,M3.5.0,M10.5.0/3"};
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        setenv("TZ", zones[z], 1);
        tzset();
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            int64_t ms;
            assert_int_equal(gw_parse_rfc3339(good[i].s, &ms), 0);
            assert_int_equal(ms, good[i].ms);
        }
        char buf[40];
        gw_format_rfc3339(T0, buf, sizeof(buf));
        assert_string_equal(buf, "2026-11-28T02:00:00.000Z");
    }
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

/* ---- days ---- */

static void parses_days(void **state)
{
    (void)state;
    int y = 0, m = 0, d = 0;
    assert_int_equal(gw_parse_date("2024-02-29", &y, &m, &d), 0);
    assert_int_equal(y, 2024);
    assert_int_equal(m, 2);
    assert_int_equal(d, 29);
    assert_int_equal(gw_parse_date("1970-01-01", &y, &m, &d), 0);
    assert_int_equal(y, 1970);
    assert_int_equal(m, 1);
    assert_int_equal(d, 1);
    assert_int_equal(gw_parse_date("2000-02-29", &y, &m, &d), 0);
    assert_int_equal(gw_parse_date("9999-12-31", &y, &m, &d), 0);
    assert_int_equal(y, 9999);
    assert_int_equal(m, 12);
    assert_int_equal(d, 31);

    const char *bad_days[] = {"",           "2023-02-29",  "2100-02-29",  "2024-13-01",
                              "2024-00-10", "2024-04-31",  "2024-11-00",  "2024-11-32",
                              "2024-04-3",  "2024-04-301", "2024/04/30",  "1969-12-31",
                              "0000-01-01", "2024-04-30T", "2024-04-30 ", " 2024-04-30",
                              "x024-04-30", "2024-4-30",   "+024-04-30",  "2024-04-30Z"};
    for (size_t i = 0; i < sizeof(bad_days) / sizeof(bad_days[0]); i++) {
        y = m = d = 7;
        if (gw_parse_date(bad_days[i], &y, &m, &d) != -EINVAL) {
            print_error("bad day %zu \"%s\" parsed\n", i, bad_days[i]);
        }
        assert_int_equal(gw_parse_date(bad_days[i], &y, &m, &d), -EINVAL);
        assert_int_equal(y, 7); /* untouched */
        assert_int_equal(m, 7);
        assert_int_equal(d, 7);
    }
    assert_int_equal(gw_parse_date(NULL, &y, &m, &d), -EINVAL);
}

/* The day part of the parser and gw_parse_date agree on every day, 1970 to 2401. */
static void days_agree_with_times(void **state)
{
    (void)state;
    char day[16], t[40];
    int64_t ms;
    for (int64_t n = 0; n <= 157420; n++) {
        gw_format_rfc3339(n * 86400000LL, t, sizeof(t));
        memcpy(day, t, 10);
        day[10] = '\0';
        int y, m, d;
        assert_int_equal(gw_parse_date(day, &y, &m, &d), 0);
        snprintf(t, sizeof(t), "%sT00:00:00Z", day);
        assert_int_equal(gw_parse_rfc3339(t, &ms), 0);
        assert_int_equal(ms, n * 86400000LL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_has_milliseconds_and_z),
        cmocka_unit_test(format_needs_room),
        cmocka_unit_test(parses_good_times),
        cmocka_unit_test(rejects_bad_times),
        cmocka_unit_test(prefixes_are_rejected),
        cmocka_unit_test(format_then_parse_round_trips),
        cmocka_unit_test(parse_ignores_tz),
        cmocka_unit_test(parses_days),
        cmocka_unit_test(days_agree_with_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
