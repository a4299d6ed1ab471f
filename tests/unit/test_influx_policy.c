/*
 * influx_policy: HTTP outcome classes, Retry-After, backoff, write URLs, error
 * text and which lines an error reply names. Error texts are the ones real
 * servers send (1.x checked against influxd 1.6.7; 2.x/3.x from their sources).
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

#include "influx_policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- classify ---- */

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        bool ok;
        long status;
        enum gw_influx_class want;
    } t[] = {
        {false, 0, GW_INFLUX_RETRY},   /* connection refused, timeout, DNS */
        {false, 204, GW_INFLUX_RETRY}, /* status ignored without a reply */
        {true, 200, GW_INFLUX_OK},     {true, 204, GW_INFLUX_OK},
        {true, 299, GW_INFLUX_OK},     {true, 100, GW_INFLUX_RETRY},
        {true, 199, GW_INFLUX_RETRY},  {true, 301, GW_INFLUX_RETRY},
        {true, 307, GW_INFLUX_RETRY},  {true, 400, GW_INFLUX_REJECT},
        {true, 401, GW_INFLUX_AUTH},   {true, 402, GW_INFLUX_REJECT},
        {true, 403, GW_INFLUX_AUTH},   {true, 404, GW_INFLUX_NOT_FOUND},
        {true, 405, GW_INFLUX_REJECT}, {true, 408, GW_INFLUX_RETRY},
        {true, 413, GW_INFLUX_REJECT}, {true, 422, GW_INFLUX_REJECT},
        {true, 429, GW_INFLUX_RETRY},  {true, 499, GW_INFLUX_REJECT},
        {true, 500, GW_INFLUX_RETRY},  {true, 502, GW_INFLUX_RETRY},
        {true, 503, GW_INFLUX_RETRY},  {true, 504, GW_INFLUX_RETRY},
        {true, 599, GW_INFLUX_RETRY},  {true, 0, GW_INFLUX_RETRY},
    };
    for (size_t i = 0; i < N(t); i++) {
        enum gw_influx_class got = gw_influx_classify(t[i].ok, t[i].status);
        if (got != t[i].want) {
            fail_msg("row %zu: ok=%d status=%ld: got %s want %s", i, t[i].ok, t[i].status,
                     gw_influx_class_name(got), gw_influx_class_name(t[i].want));
        }
    }
    assert_string_equal(gw_influx_class_name(GW_INFLUX_NOT_FOUND), "not_found");
    assert_string_equal(gw_influx_class_name((enum gw_influx_class)99), "?");
}

/* ---- Retry-After ---- */

static int64_t utc_ms(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000;
}

static void test_retry_after(void **state)
{
    (void)state;
    const int64_t now = utc_ms(1994, 11, 6, 8, 49, 7); /* 30 s before the RFC's example */
    static const struct {
        const char *v;
        int want;
    } t[] = {
        {NULL, -1},
        {"", -1},
        {"   ", -1},
        {"0", 0},
        {"1", 1000},
        {"120", 120000},
        {"  7\t", 7000},
        {"3600", 3600000},
        {"3601", GW_INFLUX_RETRY_AFTER_MAX_MS},
        {"99999999999999999999999", GW_INFLUX_RETRY_AFTER_MAX_MS},
        {"-5", -1},
        {"5x", -1},
        {"5 5", -1},
        {"1.5", -1},
        {"abc", -1},
        {"Sun, 06 Nov 1994 08:49:37 GMT", 30000},
        {"Sun, 06 Nov 1994 08:49:37 GMT  ", 30000},
        {"Sun, 06 Nov 1994 08:49:07 GMT", 0},
        {"Sun, 06 Nov 1994 08:48:00 GMT", 0}, /* past */
        {"Mon, 07 Nov 1994 08:49:07 GMT", GW_INFLUX_RETRY_AFTER_MAX_MS},
        {"Sun, 06 Nov 1994 09:49:07 GMT", 3600000},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 30000}, /* RFC 850 */
        {"Sun Nov  6 08:49:37 1994", 30000},       /* asctime */
        {"Sun Nov 06 08:49:37 1994", 30000},
        {"Sun, 06 Nov 1994 08:49:37 UTC", -1},
        {"Sun, 6 Nov 1994 08:49:37 GMT", -1},
        {"Sun, 32 Nov 1994 08:49:37 GMT", -1},
        {"Sun, 00 Nov 1994 08:49:37 GMT", -1},
        {"Sun, 06 Foo 1994 08:49:37 GMT", -1},
        {"Sun, 06 Nov 1994 24:49:37 GMT", -1},
        {"Sun, 06 Nov 1994 08:60:37 GMT", -1},
        {"Sun, 06 Nov 1994 08:49 GMT", -1},
        {"Xyz, 06 Nov 1994 08:49:37 GMT", -1},
        {"Sun, 06 Nov 1994 08:49:37 GMT x", -1},
        {"Sunday, 06-Nov-1994 08:49:37 GMT", -1},
        {"Sun Nov  6 08:49:37", -1},
    };
    for (size_t i = 0; i < N(t); i++) {
        int got = gw_influx_retry_after_ms(t[i].v, now);
        if (got != t[i].want) {
            fail_msg("row %zu: \"%s\": got %d want %d", i, t[i].v ? t[i].v : "(null)", got,
                     t[i].want);
        }
    }
    /* RFC 850 two-digit years: below 70 is 20xx. */
    assert_int_equal(
        gw_influx_retry_after_ms("Monday, 01-Jan-35 00:00:10 GMT", utc_ms(2035, 1, 1, 0, 0, 0)),
        10000);
}

/* ---- backoff ---- */

static void test_backoff_table(void **state)
{
    (void)state;
    static const struct {
        int attempt;
        uint32_t rnd;
        int want;
    } t[] = {
        {0, 0, 800},
        {0, 0x80000000u, 1000},
        {0, 0xFFFFFFFFu, 1200},
        {-3, 0x80000000u, 1000}, /* negative: as the first */
        {1, 0, 1600},
        {1, 0xFFFFFFFFu, 2400},
        {2, 0x80000000u, 4000},
        {5, 0x80000000u, 32000},
        {6, 0, 48000}, /* 64 s capped to 60 s */
        {6, 0xFFFFFFFFu, 72000},
        {1000, 0x80000000u, 60000},
        {0x7fffffff, 0, 48000},
    };
    for (size_t i = 0; i < N(t); i++) {
        int got = gw_retry_backoff_ms(t[i].attempt, t[i].rnd);
        if (got != t[i].want) {
            fail_msg("row %zu: attempt=%d rnd=%u: got %d want %d", i, t[i].attempt, t[i].rnd, got,
                     t[i].want);
        }
    }
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    uint32_t x = 12345;
    for (int attempt = 0; attempt < 40; attempt++) {
        int64_t base = 1000LL << (attempt < 20 ? attempt : 20);
        if (base > 60000) {
            base = 60000;
        }
        int lo = 1 << 30, hi = 0;
        for (int k = 0; k < 2000; k++) {
            x = x * 1664525u + 1013904223u;
            int ms = gw_retry_backoff_ms(attempt, x);
            assert_true(ms >= base * 8 / 10);
            assert_true(ms <= base * 12 / 10);
            lo = ms < lo ? ms : lo;
            hi = ms > hi ? ms : hi;
        }
        /* The jitter really spreads: most of the ±20 % band is used. */
        assert_true(hi - lo >= base * 3 / 10);
    }
}

/* ---- URL ---- */

static void test_write_url(void **state)
{
    (void)state;
    static const struct {
        enum gw_influx_version v;
        const char *url, *db, *rp, *org, *bucket;
        size_t size;
        int rc; /* >0: expect `want`, and rc = strlen(want) */
        const char *want;
    } t[] = {
        {GW_INFLUX_V1, "http://127.0.0.1:8086", "campus", NULL, NULL, NULL, 256, 1,
         "http://127.0.0.1:8086/write?db=campus&precision=ns"},
        {GW_INFLUX_V1, "http://127.0.0.1:8086/", "campus", "", NULL, NULL, 256, 1,
         "http://127.0.0.1:8086/write?db=campus&precision=ns"},
        {GW_INFLUX_V1, "https://db.example:8086", "campus", "one_year", NULL, NULL, 256, 1,
         "https://db.example:8086/write?db=campus&rp=one_year&precision=ns"},
        {GW_INFLUX_V1, "http://h", "my db&x=1/é?#+%", "r p", NULL, NULL, 256, 1,
         "http://h/write?db=my%20db%26x%3D1%2F%C3%A9%3F%23%2B%25&rp=r%20p&precision=ns"},
        {GW_INFLUX_V1, "http://h", "A-Za_z.0~9", NULL, NULL, NULL, 256, 1,
         "http://h/write?db=A-Za_z.0~9&precision=ns"},
        {GW_INFLUX_V2, "http://127.0.0.1:8086", NULL, NULL, "haidian edu", "campus/raw", 256, 1,
         "http://127.0.0.1:8086/api/v2/write?org=haidian%20edu&bucket=campus%2Fraw&precision=ns"},
        {GW_INFLUX_V2, "http://h", "ignored", "ignored", "o", "b", 256, 1,
         "http://h/api/v2/write?org=o&bucket=b&precision=ns"},
        {GW_INFLUX_V1, "http://h", NULL, NULL, NULL, NULL, 256, -EINVAL, NULL},
        {GW_INFLUX_V1, "http://h", "", NULL, NULL, NULL, 256, -EINVAL, NULL},
        {GW_INFLUX_V1, NULL, "db", NULL, NULL, NULL, 256, -EINVAL, NULL},
        {GW_INFLUX_V1, "", "db", NULL, NULL, NULL, 256, -EINVAL, NULL},
        {GW_INFLUX_V2, "http://h", NULL, NULL, "o", NULL, 256, -EINVAL, NULL},
        {GW_INFLUX_V2, "http://h", NULL, NULL, NULL, "b", 256, -EINVAL, NULL},
        /* "http://h/write?db=d&precision=ns" is 32 chars: 33 fits, 32 does not. */
        {GW_INFLUX_V1, "http://h", "d", NULL, NULL, NULL, 33, 1,
         "http://h/write?db=d&precision=ns"},
        {GW_INFLUX_V1, "http://h", "d", NULL, NULL, NULL, 32, -ENAMETOOLONG, NULL},
        {GW_INFLUX_V1, "http://h", "d", NULL, NULL, NULL, 1, -ENAMETOOLONG, NULL},
        {GW_INFLUX_V1, "http://h", "d", NULL, NULL, NULL, 0, -ENAMETOOLONG, NULL},
    };
    for (size_t i = 0; i < N(t); i++) {
        struct gw_influx_cfg cfg = {.enabled = true,
                                    .version = t[i].v,
                                    .url = (char *)t[i].url,
                                    .database = (char *)t[i].db,
                                    .retention_policy = (char *)t[i].rp,
                                    .org = (char *)t[i].org,
                                    .bucket = (char *)t[i].bucket};
        char out[256];
        memset(out, 'X', sizeof(out));
        int rc = gw_influx_write_url(out, t[i].size, &cfg);
        if (t[i].rc > 0) {
            if (rc != (int)strlen(t[i].want) || strcmp(out, t[i].want) != 0) {
                fail_msg("row %zu: rc=%d out=\"%.*s\" want \"%s\"", i, rc, 200, out, t[i].want);
            }
        } else if (rc != t[i].rc) {
            fail_msg("row %zu: rc=%d want %d", i, rc, t[i].rc);
        }
        if (t[i].size < sizeof(out)) {
            assert_int_equal(out[t[i].size], 'X'); /* never past size */
        }
    }
}

/* ---- error text ---- */

static void test_error_text(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        size_t size;
        const char *want;
    } t[] = {
        /* influxd 1.6.7, verbatim */
        {"{\"error\":\"partial write: unable to parse 'bad line here': invalid field format "
         "dropped=0\"}\n",
         512, "partial write: unable to parse 'bad line here': invalid field format dropped=0"},
        {"{\"error\":\"database not found: \\\"nodb\\\"\"}\n", 512, "database not found: \"nodb\""},
        {"{\"error\":\"unable to parse 'bad1': missing fields\\nunable to parse 'bad2 x': invalid "
         "field format\"}",
         512,
         "unable to parse 'bad1': missing fields\nunable to parse 'bad2 x': invalid field format"},
        /* 2.x */
        {"{\"code\":\"invalid\",\"message\":\"unable to parse 'x': missing fields\"}", 512,
         "unable to parse 'x': missing fields"},
        {"{ \"code\" : \"unauthorized\" , \"message\" : \"unauthorized access\" }", 512,
         "unauthorized access"},
        /* 3.x: "line" is a number, "message" the text */
        {"{\"code\":\"invalid\",\"line\":2,\"message\":\"failed to parse line protocol: errors "
         "encountered on line(s):\\nerror parsing line 2 (1-based): Invalid measurement was "
         "provided\"}",
         512,
         "failed to parse line protocol: errors encountered on line(s):\nerror parsing line 2 "
         "(1-based): Invalid measurement was provided"},
        /* escapes */
        {"{\"error\":\"a\\\\b\\/c\\td\\re\\bf\\fg\"}", 512, "a\\b/c\td\re\bf\fg"},
        {"{\"error\":\"caf\\u00e9 \\u6c34 \\ud83d\\ude00 \\udc00 \\ud800x\"}", 512,
         "caf\xc3\xa9 \xe6\xb0\xb4 \xf0\x9f\x98\x80 \xef\xbf\xbd \xef\xbf\xbdx"},
        /* "error" inside another string is not the key */
        {"{\"message\":\"the \\\"error\\\": thing\"}", 512, "the \"error\": thing"},
        /* "error" preferred over "message" */
        {"{\"message\":\"m\",\"error\":\"e\"}", 512, "e"},
        /* a non-string "error" value: fall through to message */
        {"{\"error\":5,\"message\":\"m\"}", 512, "m"},
        /* not JSON, or JSON without those keys: the raw body, trimmed */
        {"  Request Entity Too Large\r\n", 512, "Request Entity Too Large"},
        {"{\"code\":\"x\"}", 512, "{\"code\":\"x\"}"},
        {"{\"error\":\"unterminated", 512, "{\"error\":\"unterminated"},
        {"{\"error\":\"bad \\q escape\"}", 512, "{\"error\":\"bad \\q escape\"}"},
        {"", 512, ""},
        /* truncation keeps the prefix */
        {"{\"error\":\"0123456789\"}", 5, "0123"},
        {"0123456789", 5, "0123"},
        {"{\"error\":\"\\u00e9\\u00e9\\u00e9\"}", 4, "\xc3\xa9"},
    };
    for (size_t i = 0; i < N(t); i++) {
        char out[512];
        size_t n = gw_influx_error_text(t[i].body, strlen(t[i].body), out, t[i].size);
        if (strcmp(out, t[i].want) != 0 || n != strlen(t[i].want)) {
            fail_msg("row %zu: got \"%s\" (%zu) want \"%s\"", i, out, n, t[i].want);
        }
    }
    char one[1] = {'X'};
    assert_int_equal(gw_influx_error_text("abc", 3, one, 1), 0);
    assert_int_equal(one[0], '\0');
    assert_int_equal(gw_influx_error_text("abc", 3, one, 0), 0);
}

static void test_partial_and_dropped(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool partial;
        int dropped;
    } t[] = {
        {"partial write: unable to parse 'x': invalid field format dropped=0", true, 0},
        {"partial write: field type conflict: input field \"v\" on measurement \"m\" is type "
         "integer, already exists as type float dropped=12",
         true, 12},
        {"failure writing points to database: partial write: field type conflict: x dropped=11",
         true, 11},
        {"unable to parse 'bad1': missing fields", false, -1},
        {"dropped=", false, -1},
        {"dropped=x", false, -1},
        {"a dropped=1 b dropped=7", false, 7},
        {"dropped=99999999999999", false, 1000000000},
        {"", false, -1},
    };
    for (size_t i = 0; i < N(t); i++) {
        if (gw_influx_partial_write(t[i].text) != t[i].partial ||
            gw_influx_dropped(t[i].text) != t[i].dropped) {
            fail_msg("row %zu: partial=%d dropped=%d", i, gw_influx_partial_write(t[i].text),
                     gw_influx_dropped(t[i].text));
        }
    }
}

/* ---- bad lines ---- */

struct bad_case {
    const char *name;
    const char *batch;
    const char *text;
    int nlines;
    const char *pre; /* lines marked before: '1' at k */
    int want_rc;
    const char *want; /* marks after: '1' at k */
};

static void run_bad(const struct bad_case *c, size_t i)
{
    bool bad[16] = {0};
    for (int k = 0; c->pre && c->pre[k]; k++) {
        bad[k] = c->pre[k] == '1';
    }
    int rc = gw_influx_bad_lines(c->text, c->batch, strlen(c->batch), bad, c->nlines);
    char got[17] = {0};
    for (int k = 0; k < c->nlines; k++) {
        got[k] = bad[k] ? '1' : '0';
    }
    if (rc != c->want_rc || strcmp(got, c->want) != 0) {
        fail_msg("row %zu (%s): rc=%d marks=%s, want rc=%d marks=%s", i, c->name, rc, got,
                 c->want_rc, c->want);
    }
}

static void test_bad_lines(void **state)
{
    (void)state;
    static const struct bad_case t[] = {
        {"1.x one bad line", "m v=1 1\nbad line here\nm v=2 2\n",
         "partial write: unable to parse 'bad line here': invalid field format dropped=0", 3, NULL,
         1, "010"},
        {"1.x every line bad", "bad1\nbad2 x\n",
         "unable to parse 'bad1': missing fields\nunable to parse 'bad2 x': invalid field format",
         2, NULL, 2, "11"},
        {"2.x OSS", "a v=1 1\nb v= 2\n", "unable to parse 'b v= 2': missing field value", 2, NULL,
         1, "01"},
        {"no trailing newline", "a v=1 1\nb v= 2", "unable to parse 'b v= 2': missing field value",
         2, NULL, 1, "01"},
        {"same line twice, named twice", "x\nm v=1 1\nx\n",
         "partial write: unable to parse 'x': missing fields\nunable to parse 'x': missing fields "
         "dropped=0",
         3, NULL, 2, "101"},
        {"same line twice, named once", "x\nm v=1 1\nx\n", "unable to parse 'x': missing fields", 3,
         NULL, 1, "100"},
        {"already marked copy skipped", "x\nm v=1 1\nx\n", "unable to parse 'x': missing fields", 3,
         "100", 1, "101"},
        {"prefix of another line", "m v=1\nm v=1 5x\n", "unable to parse 'm v=1 5x': bad timestamp",
         2, NULL, 1, "01"},
        {"quote-colon inside the line", "m s=\"a'b': c\" 7\nm s=\"x': y 8\n",
         "partial write: unable to parse 'm s=\"x': y 8': unbalanced quotes dropped=0", 2, NULL, 1,
         "01"},
        {"quoted text matching no line", "a v=1\n", "unable to parse 'zzz': missing fields", 1,
         NULL, 0, "0"},
        {"3.x numbered", "a\nb\nc\nd\n",
         "failed to parse line protocol: errors encountered on line(s):\nerror parsing line 2 "
         "(1-based): Invalid measurement was provided\nerror parsing line 4 (1-based): Unable to "
         "parse timestamp value '123'",
         4, NULL, 2, "0101"},
        {"line N: form", "a\nb\nc\n", "errors encountered on line(s): line 3: invalid field", 3,
         NULL, 1, "001"},
        {"line number out of range", "a\nb\n", "error parsing line 3 (1-based): x\nline 0: y", 2,
         NULL, 0, "00"},
        {"word ending in line", "a\nb\nc\n", "sensor went offline 2: x; baseline 1 (1-based)", 3,
         NULL, 0, "000"},
        {"line N without colon", "a\nb\n", "see line 2 of the docs", 2, NULL, 0, "00"},
        {"numbers ignored when a line is quoted", "a v=1\nline 2: x\n",
         "unable to parse 'line 2: x': invalid field format", 2, NULL, 1, "01"},
        {"type conflict 1.x", "m v=1 1\nm v=\"s\" 2\nm v=true 3\nn v=\"x\" 4\nm,t=a w=1,v=2i 5\n",
         "partial write: field type conflict: input field \"v\" on measurement \"m\" is type "
         "string, already exists as type float dropped=3",
         5, NULL, 3, "01101"},
        {"type conflict 2.7 (422)", "m v=1i 1\nm v=2 2\nm v=3u 3\n",
         "failure writing points to database: partial write: field type conflict: input field "
         "\"v\" on measurement \"m\" is type float, already exists as type integer dropped=2",
         3, NULL, 2, "011"},
        {"type conflict, escaped names", "my\\ m,t=1 f\\,x=\"s\" 1\nmy\\ m,t=1 f\\,x=1 2\nmy m=1\n",
         "partial write: field type conflict: input field \"f,x\" on measurement \"my m\" is type "
         "string, already exists as type float dropped=1",
         3, NULL, 1, "100"},
        {"type conflict, string with comma space and quote before the field",
         "m s=\"a, b=\\\"c\",v=1i 5\nm s=\"q\",v=1 6\n",
         "partial write: field type conflict: input field \"v\" on measurement \"m\" is type "
         "integer, already exists as type float dropped=1",
         2, NULL, 1, "10"},
        {"type conflict, booleans all spellings", "m b=t\nm b=FALSE\nm b=True\nm b=1\n",
         "field type conflict: input field \"b\" on measurement \"m\" is type float, already "
         "exists as type boolean dropped=1",
         4, NULL, 1, "0001"},
        {"type conflict, unknown type name", "m v=1\n",
         "field type conflict: input field \"v\" on measurement \"m\" is type float, already "
         "exists as type complex dropped=1",
         1, NULL, 0, "0"},
        {"type conflict, cut short", "m v=1\n", "field type conflict: input field \"v\" on mea", 1,
         NULL, 0, "0"},
        {"type conflict, field absent / line malformed", "m w=1\nm\nm v\nm,t=1\n",
         "field type conflict: input field \"v\" on measurement \"m\" is type string, already "
         "exists as type float dropped=1",
         4, NULL, 0, "0000"},
        {"parse error and type conflict together", "m v=1i\nbad\nm v=2\n",
         "partial write: unable to parse 'bad': missing fields\nfield type conflict: input field "
         "\"v\" on measurement \"m\" is type integer, already exists as type float dropped=1",
         3, NULL, 2, "110"},
        {"1.x invalid field name", "m v=1 1\nm time=1 2\nn time=1 3\nm v=3,time=2i 4\n",
         "partial write: invalid field name: input field \"time\" on measurement \"m\" is invalid "
         "dropped=2",
         4, NULL, 2, "0101"},
        {"1.x invalid tag key", "m,time=x v=1 1\nm,a=1,time=y v=3 3\nm,a=time v=1 4\nm v=time 5\n",
         "partial write: invalid tag key: input tag \"time\" on measurement \"m\" is invalid "
         "dropped=2",
         4, NULL, 2, "1100"},
        {"invalid key, cut short", "m time=1\n", "invalid field name: input field \"time\" on", 1,
         NULL, 0, "0"},
        {"invalid key, no 'is invalid'", "m time=1\n",
         "invalid tag key: input tag \"time\" on measurement \"m\" whatever", 1, NULL, 0, "0"},
        {"nothing recognisable", "m v=1\n", "timeout", 1, NULL, 0, "0"},
        {"no lines", "", "unable to parse '': x", 0, NULL, 0, ""},
    };
    for (size_t i = 0; i < N(t); i++) {
        run_bad(&t[i], i);
    }
    bool b = false;
    assert_int_equal(gw_influx_bad_lines(NULL, "x\n", 2, &b, 1), 0);
}

/* More than the 64 lines kept on the stack. */
static void test_bad_lines_large(void **state)
{
    (void)state;
    enum { LINES = 5000 };
    char *batch = malloc(LINES * 32);
    bool *bad = calloc(LINES, sizeof(bool));
    assert_non_null(batch);
    assert_non_null(bad);
    size_t len = 0;
    for (int k = 0; k < LINES; k++) {
        len += (size_t)sprintf(batch + len, "m,k=%d v=%d %d\n", k, k, k + 1);
    }
    const char *text = "partial write: unable to parse 'm,k=4999 v=4999 5000': x\nunable to parse "
                       "'m,k=70 v=70 71': y dropped=0";
    assert_int_equal(gw_influx_bad_lines(text, batch, len, bad, LINES), 2);
    for (int k = 0; k < LINES; k++) {
        assert_int_equal(bad[k], k == 70 || k == 4999);
    }
    free(batch);
    free(bad);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_backoff_table),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_write_url),
        cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_partial_and_dropped),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_bad_lines_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
