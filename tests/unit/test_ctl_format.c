/* campusgw-ctl's pure parts: arguments, payloads, results, times, tables, sorting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ctl_format.h"

/* 2024-05-01T10:00:00Z */
#define NOW_MS 1714557600000LL

/* ---------------------------------------------------------------- helpers */

static int parse(struct gw_ctl_args *a, char *err, size_t errsize, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "campusgw-ctl";
    va_list ap;
    va_start(ap, errsize);
    for (char *s = va_arg(ap, char *); s; s = va_arg(ap, char *)) {
        argv[argc++] = s;
    }
    va_end(ap);
    argv[argc] = NULL;
    return gw_ctl_parse_args(argc, argv, a, err, errsize);
}

/* Expect a usage error whose message contains `want`. */
#define PARSE_FAILS(want, ...)                                                                     \
    do {                                                                                           \
        struct gw_ctl_args a_;                                                                     \
        char err_[512];                                                                            \
        assert_int_equal(parse(&a_, err_, sizeof(err_), __VA_ARGS__, NULL), -1);                   \
        if (!strstr(err_, want)) {                                                                 \
            fail_msg("error \"%s\" does not contain \"%s\"", err_, want);                          \
        }                                                                                          \
    } while (0)

struct capture {
    char *buf;
    size_t len;
    FILE *f;
};

static void capture_open(struct capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
}

static char *capture_close(struct capture *c)
{
    fclose(c->f);
    return c->buf;
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) {
        fail_msg("bad test JSON: %s: %s", e.text, text);
    }
    return j;
}

/* ---------------------------------------------------------------- arguments */

static void parses_queries_and_options_anywhere(void **state)
{
    (void)state;
    struct gw_ctl_args a;
    char err[512];
    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "campus/d/s", "alarms", NULL), 0);
    assert_int_equal(a.cmd, GW_CTL_ALARMS);
    assert_string_equal(a.prefix, "campus/d/s");
    assert_null(a.host);
    assert_int_equal(a.port, 0);
    assert_false(a.json);
    assert_int_equal(a.timeout_ms, GW_CTL_DEFAULT_TIMEOUT_MS);

    assert_int_equal(parse(&a, err, sizeof(err), "sensors", "--json", "--host=10.0.0.2", "--port",
                           "1884", "-c", "/etc/gw.cfg", "--timeout", "2.5", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_SENSORS);
    assert_true(a.json);
    assert_string_equal(a.host, "10.0.0.2");
    assert_int_equal(a.port, 1884);
    assert_string_equal(a.config_path, "/etc/gw.cfg");
    assert_null(a.prefix);
    assert_int_equal(a.timeout_ms, 2500);

    assert_int_equal(parse(&a, err, sizeof(err), "--config=/x.cfg", "--username", "ops",
                           "--password-file", "/p", "--cafile", "/ca", "status", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_STATUS);
    assert_string_equal(a.username, "ops");
    assert_string_equal(a.password_file, "/p");
    assert_string_equal(a.cafile, "/ca");

    assert_int_equal(
        parse(&a, err, sizeof(err), "--prefix", "p/d/s", "tail", "--notify", "--count", "2", NULL),
        0);
    assert_int_equal(a.cmd, GW_CTL_TAIL);
    assert_true(a.notify);
    assert_int_equal(a.count, 2);
}

static void parses_commands(void **state)
{
    (void)state;
    struct gw_ctl_args a;
    char err[512];
    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "ack",
                           "A-3F-smoke-301/smoke-detected", "--by", "wang", "--note",
                           "false alarm, cooking", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_ACK);
    assert_string_equal(a.target, "A-3F-smoke-301/smoke-detected");
    assert_string_equal(a.by, "wang");
    assert_string_equal(a.note, "false alarm, cooking");
    assert_string_equal(gw_ctl_cmd_topic(a.cmd), "ack");

    assert_int_equal(parse(&a, err, sizeof(err), "--by=li", "shelve", "A-1F-hydrant-01/low", "60",
                           "--prefix", "p/d/s", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_SHELVE);
    assert_int_equal(a.minutes, 60);

    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "shelve", "s/r", "10080",
                           "--by", "x", NULL),
                     0);
    assert_int_equal(a.minutes, 10080);

    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "out-of-service",
                           "A-3F-smoke-301", "--by", "wang", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_OUT_OF_SERVICE);
    assert_string_equal(gw_ctl_cmd_topic(a.cmd), "out_of_service");
    assert_string_equal(gw_ctl_cmd_name(a.cmd), "out-of-service");
    /* The topic spelling is accepted too. */
    assert_int_equal(
        parse(&a, err, sizeof(err), "--prefix", "p/d/s", "in_service", "s1", "--by", "wang", NULL),
        0);
    assert_int_equal(a.cmd, GW_CTL_IN_SERVICE);

    /* "--" ends options: a note may start with a dash. */
    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "--by", "w", "--note",
                           "-- see log", "reset", "--", "s/r", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_RESET);
    assert_string_equal(a.note, "-- see log");
    assert_string_equal(a.target, "s/r");

    /* An empty note is allowed (and not sent). */
    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "unshelve", "s/r", "--by",
                           "w", "--note=", NULL),
                     0);
    assert_string_equal(a.note, "");
}

static void help_and_version_win(void **state)
{
    (void)state;
    struct gw_ctl_args a;
    char err[512];
    assert_int_equal(parse(&a, err, sizeof(err), "--help", NULL), 0);
    assert_int_equal(a.cmd, GW_CTL_HELP);
    assert_int_equal(parse(&a, err, sizeof(err), "ack", "-h", NULL), 0);
    assert_int_equal(a.cmd, GW_CTL_HELP);
    assert_int_equal(parse(&a, err, sizeof(err), "--version", NULL), 0);
    assert_int_equal(a.cmd, GW_CTL_VERSION);
}

static void usage_errors(void **state)
{
    (void)state;
    PARSE_FAILS("no command given", "--prefix", "p/d/s");
    PARSE_FAILS("unknown command \"frobnicate\"", "--prefix", "p/d/s", "frobnicate");
    PARSE_FAILS("unknown option \"--frob\"", "--prefix", "p/d/s", "--frob", "alarms");
    PARSE_FAILS("unknown option \"-5\"", "--prefix", "p/d/s", "shelve", "s/r", "-5", "--by", "x");
    PARSE_FAILS("--by needs a value", "--prefix", "p/d/s", "ack", "s/r", "--by");
    PARSE_FAILS("--by needs a value", "--prefix", "p/d/s", "ack", "s/r", "--by=");
    PARSE_FAILS("--json takes no value", "--prefix", "p/d/s", "--json=yes", "alarms");
    PARSE_FAILS("ack needs --by NAME", "--prefix", "p/d/s", "ack", "s/r");
    PARSE_FAILS("reset needs --by NAME", "--prefix", "p/d/s", "reset", "s/r");
    PARSE_FAILS("in-service needs --by NAME", "--prefix", "p/d/s", "in-service", "s1");
    PARSE_FAILS("ack needs KEY", "--prefix", "p/d/s", "ack", "--by", "w");
    PARSE_FAILS("shelve needs KEY MINUTES", "--prefix", "p/d/s", "shelve", "s/r", "--by", "w");
    PARSE_FAILS("unexpected argument \"extra\"", "--prefix", "p/d/s", "ack", "s/r", "extra", "--by",
                "w");
    PARSE_FAILS("unexpected argument \"x\"", "--prefix", "p/d/s", "alarms", "x");
    PARSE_FAILS("too many arguments", "--prefix", "p/d/s", "a", "b", "c", "d", "e");
    PARSE_FAILS("not an alarm key", "--prefix", "p/d/s", "ack", "nokey", "--by", "w");
    PARSE_FAILS("not an alarm key", "--prefix", "p/d/s", "ack", "s/", "--by", "w");
    PARSE_FAILS("not an alarm key", "--prefix", "p/d/s", "ack", "/r", "--by", "w");
    PARSE_FAILS("not an alarm key", "--prefix", "p/d/s", "ack", "s/r/x", "--by", "w");
    PARSE_FAILS("not an alarm key", "--prefix", "p/d/s", "ack", "s/#", "--by", "w");
    PARSE_FAILS("not an alarm key", "--prefix", "p/d/s", "ack", "s+/r", "--by", "w");
    PARSE_FAILS("not an alarm key", "--prefix", "p/d/s", "ack", "s/a b", "--by", "w");
    PARSE_FAILS("not a sensor id", "--prefix", "p/d/s", "out-of-service", "s/r", "--by", "w");
    PARSE_FAILS("MINUTES \"0\" must be 1..10080", "--prefix", "p/d/s", "shelve", "s/r", "0", "--by",
                "w");
    PARSE_FAILS("MINUTES \"10081\"", "--prefix", "p/d/s", "shelve", "s/r", "10081", "--by", "w");
    PARSE_FAILS("MINUTES \"ten\"", "--prefix", "p/d/s", "shelve", "s/r", "ten", "--by", "w");
    PARSE_FAILS("MINUTES \"5m\"", "--prefix", "p/d/s", "shelve", "s/r", "5m", "--by", "w");
    PARSE_FAILS("--port \"0\"", "--prefix", "p/d/s", "--port", "0", "alarms");
    PARSE_FAILS("--port \"65536\"", "--prefix", "p/d/s", "--port", "65536", "alarms");
    PARSE_FAILS("--port \"18x\"", "--prefix", "p/d/s", "--port", "18x", "alarms");
    PARSE_FAILS("--timeout \"0\"", "--prefix", "p/d/s", "--timeout", "0", "alarms");
    PARSE_FAILS("--timeout \"nan\"", "--prefix", "p/d/s", "--timeout", "nan", "alarms");
    PARSE_FAILS("--timeout \"-3\"", "--prefix", "p/d/s", "--timeout=-3", "alarms");
    PARSE_FAILS("--timeout \"3601\"", "--prefix", "p/d/s", "--timeout", "3601", "alarms");
    PARSE_FAILS("--count \"0\"", "--prefix", "p/d/s", "tail", "--count", "0");
    PARSE_FAILS("--by is only for ack", "--prefix", "p/d/s", "alarms", "--by", "w");
    PARSE_FAILS("--note is only for ack", "--prefix", "p/d/s", "tail", "--note", "n");
    PARSE_FAILS("--notify is only for tail", "--prefix", "p/d/s", "alarms", "--notify");
    PARSE_FAILS("--count is only for tail", "--prefix", "p/d/s", "sensors", "--count", "3");
    PARSE_FAILS("which gateway?", "alarms");
    PARSE_FAILS("MQTT wildcard", "--prefix", "campus/#", "alarms");
    PARSE_FAILS("MQTT wildcard", "--prefix", "campus/+/s", "alarms");
    PARSE_FAILS("empty topic level", "--prefix", "campus/d/s/", "alarms");
    PARSE_FAILS("empty topic level", "--prefix", "/campus/d", "alarms");
    PARSE_FAILS("empty topic level", "--prefix", "campus//s", "alarms");
}

static void check_prefix_directly(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(gw_ctl_check_prefix("campus/haidian/no1-middle", err, sizeof(err)), 0);
    assert_int_equal(gw_ctl_check_prefix("", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(gw_ctl_check_prefix("a/b\nc", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "control character"));
}

/* ---------------------------------------------------------------- payloads and results */

static void command_payloads(void **state)
{
    (void)state;
    struct gw_ctl_args a;
    char err[512];
    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "ack", "s1/smoke", "--by",
                           "王老师", "--note", "误报", NULL),
                     0);
    char *p = gw_ctl_command_payload(&a, "abc123");
    assert_string_equal(
        p, "{\"key\":\"s1/smoke\",\"by\":\"王老师\",\"note\":\"误报\",\"id\":\"abc123\"}");
    free(p);

    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "shelve", "s1/smoke", "30",
                           "--by", "w", NULL),
                     0);
    p = gw_ctl_command_payload(&a, "i");
    assert_string_equal(p, "{\"key\":\"s1/smoke\",\"by\":\"w\",\"minutes\":30,\"id\":\"i\"}");
    free(p);

    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "out-of-service", "s1",
                           "--by", "w", "--note", "", NULL),
                     0);
    p = gw_ctl_command_payload(&a, "i");
    assert_string_equal(p, "{\"sensor\":\"s1\",\"by\":\"w\",\"id\":\"i\"}");
    free(p);

    /* A quote in a name is escaped, not breaking the JSON. */
    assert_int_equal(
        parse(&a, err, sizeof(err), "--prefix", "p/d/s", "unshelve", "s1/r", "--by", "a\"b", NULL),
        0);
    p = gw_ctl_command_payload(&a, "i");
    assert_string_equal(p, "{\"key\":\"s1/r\",\"by\":\"a\\\"b\",\"id\":\"i\"}");
    free(p);
}

static void matches_only_our_result(void **state)
{
    (void)state;
    const char *ours = "{\"ok\":true,\"cmd\":\"ack\",\"key\":\"s/r\",\"id\":\"abc\"}";
    json_t *r = gw_ctl_match_result(ours, strlen(ours), "abc");
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    assert_null(gw_ctl_match_result(ours, strlen(ours), "abd"));
    assert_null(gw_ctl_match_result(ours, strlen(ours), "ab"));
    const char *noid = "{\"ok\":false,\"error\":\"bad json\"}";
    assert_null(gw_ctl_match_result(noid, strlen(noid), "abc"));
    const char *numid = "{\"ok\":true,\"id\":5}";
    assert_null(gw_ctl_match_result(numid, strlen(numid), "5"));
    assert_null(gw_ctl_match_result("[\"abc\"]", 7, "abc"));
    assert_null(gw_ctl_match_result("{\"id\":\"abc\"", 11, "abc"));
    assert_null(gw_ctl_match_result("", 0, "abc"));
    /* Only len bytes count (MQTT payloads are not NUL-terminated). */
    assert_non_null(r = gw_ctl_match_result("{\"id\":\"abc\"}garbage", 12, "abc"));
    json_decref(r);
}

static void prints_results(void **state)
{
    (void)state;
    struct gw_ctl_args a;
    char err[512];
    assert_int_equal(
        parse(&a, err, sizeof(err), "--prefix", "p/d/s", "ack", "s1/smoke", "--by", "w", NULL), 0);
    struct capture out, errc;

    json_t *ok = load("{\"ok\":true,\"cmd\":\"ack\",\"key\":\"s1/smoke\",\"state\":\"acked\"}");
    capture_open(&out);
    capture_open(&errc);
    assert_int_equal(gw_ctl_print_result(ok, &a, out.f, errc.f), GW_CTL_EXIT_OK);
    char *o = capture_close(&out), *e = capture_close(&errc);
    assert_string_equal(o, "ok: ack s1/smoke: now acked\n");
    assert_string_equal(e, "");
    free(o);
    free(e);
    assert_int_equal(gw_ctl_result_exit_code(ok), GW_CTL_EXIT_OK);
    json_decref(ok);

    json_t *bad = load("{\"ok\":false,\"cmd\":\"ack\",\"key\":\"s1/smoke\",\"error\":\"wrong "
                       "state\",\"state\":\"normal\"}");
    capture_open(&out);
    capture_open(&errc);
    assert_int_equal(gw_ctl_print_result(bad, &a, out.f, errc.f), GW_CTL_EXIT_REFUSED);
    o = capture_close(&out);
    e = capture_close(&errc);
    assert_string_equal(o, "");
    assert_string_equal(
        e, "campusgw-ctl: the gateway refused ack s1/smoke: wrong state (state: normal)\n");
    free(o);
    free(e);
    assert_int_equal(gw_ctl_result_exit_code(bad), GW_CTL_EXIT_REFUSED);
    json_decref(bad);

    /* No key in the result: ours is shown; no error text: said so; escape sequences defused. */
    json_t *bare = load("{\"ok\":false,\"error\":\"\\u001b[31munknown key\"}");
    capture_open(&out);
    capture_open(&errc);
    assert_int_equal(gw_ctl_print_result(bare, &a, out.f, errc.f), GW_CTL_EXIT_REFUSED);
    o = capture_close(&out);
    e = capture_close(&errc);
    assert_string_equal(e, "campusgw-ctl: the gateway refused ack s1/smoke: ?[31munknown key\n");
    free(o);
    free(e);
    json_decref(bare);

    json_t *noreason = load("{\"ok\":false}");
    capture_open(&out);
    capture_open(&errc);
    gw_ctl_print_result(noreason, &a, out.f, errc.f);
    o = capture_close(&out);
    e = capture_close(&errc);
    assert_string_equal(e, "campusgw-ctl: the gateway refused ack s1/smoke: no reason given\n");
    free(o);
    free(e);
    json_decref(noreason);

    json_t *nook = load("{\"state\":\"acked\"}");
    capture_open(&out);
    capture_open(&errc);
    assert_int_equal(gw_ctl_print_result(nook, &a, out.f, errc.f), GW_CTL_EXIT_REFUSED);
    o = capture_close(&out);
    e = capture_close(&errc);
    assert_non_null(strstr(e, "malformed result"));
    free(o);
    free(e);
    assert_int_equal(gw_ctl_result_exit_code(nook), GW_CTL_EXIT_REFUSED);
    json_decref(nook);

    /* out-of-service shows the sensor. */
    assert_int_equal(
        parse(&a, err, sizeof(err), "--prefix", "p/d/s", "out-of-service", "s1", "--by", "w", NULL),
        0);
    json_t *oos = load("{\"ok\":true,\"cmd\":\"out_of_service\",\"sensor\":\"s1\"}");
    capture_open(&out);
    capture_open(&errc);
    gw_ctl_print_result(oos, &a, out.f, errc.f);
    o = capture_close(&out);
    e = capture_close(&errc);
    assert_string_equal(o, "ok: out-of-service s1\n");
    free(o);
    free(e);
    json_decref(oos);
}

/* ---------------------------------------------------------------- times */

static void parses_rfc3339(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(gw_ctl_parse_time("1970-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(gw_ctl_parse_time("2024-05-01T10:00:00.000Z", &ms), 0);
    assert_int_equal(ms, NOW_MS);
    assert_int_equal(gw_ctl_parse_time("2024-05-01T10:00:00.5Z", &ms), 0);
    assert_int_equal(ms, NOW_MS + 500);
    assert_int_equal(gw_ctl_parse_time("2024-05-01T10:00:00.123456Z", &ms), 0);
    assert_int_equal(ms, NOW_MS + 123);
    assert_int_equal(gw_ctl_parse_time("2024-05-01T18:00:00+08:00", &ms), 0);
    assert_int_equal(ms, NOW_MS);
    assert_int_equal(gw_ctl_parse_time("2024-05-01T05:30:00-04:30", &ms), 0);
    assert_int_equal(ms, NOW_MS);
    assert_int_equal(gw_ctl_parse_time("2024-05-01 10:00:00z", &ms), 0);
    assert_int_equal(ms, NOW_MS);
    assert_int_equal(gw_ctl_parse_time("2024-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 1709164800000LL);
    assert_int_equal(gw_ctl_parse_time("2000-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(gw_ctl_parse_time("1969-12-31T23:59:59Z", &ms), 0);
    assert_int_equal(ms, -1000);

    const char *bad[] = {"",
                         "2024-05-01",
                         "2024-05-01T10:00:00",
                         "2024-05-01T10:00:00.Z",
                         "2024-05-01T10:00:00Zjunk",
                         "2024-13-01T10:00:00Z",
                         "2024-00-01T10:00:00Z",
                         "2023-02-29T10:00:00Z",
                         "1900-02-29T10:00:00Z",
                         "2024-04-31T10:00:00Z",
                         "2024-05-01T24:00:00Z",
                         "2024-05-01T10:60:00Z",
                         "2024-05-01T10:00:61Z",
                         "2024-05-01T10:00:00+8:00",
                         "2024-05-01T10:00:00+24:00",
                         "2024/05/01T10:00:00Z",
                         "yesterday at noon!!"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gw_ctl_parse_time(bad[i], &ms) != -1) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
    assert_int_equal(gw_ctl_parse_time(NULL, &ms), -1);
}

static void formats_ages(void **state)
{
    (void)state;
    static const struct {
        int64_t ago_ms;
        const char *want;
    } cases[] = {
        {0, "just now"},
        {4999, "just now"},
        {-4999, "just now"},
        {5000, "5 s ago"},
        {59999, "59 s ago"},
        {60000, "1 min ago"},
        {3 * 60000 + 59000, "3 min ago"},
        {3599999, "59 min ago"},
        {3600000, "1 h ago"},
        {48LL * 3600000 - 1, "47 h ago"},
        {48LL * 3600000, "2 d ago"},
        {400LL * 86400000, "400 d ago"},
        {-5000, "in 5 s"},
        {-3600000, "in 1 h"},
        {-3LL * 86400000, "in 3 d"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        gw_ctl_format_age(NOW_MS, NOW_MS - cases[i].ago_ms, buf, sizeof(buf));
        if (strcmp(buf, cases[i].want) != 0) {
            fail_msg("%lld ms ago: got \"%s\", want \"%s\"", (long long)cases[i].ago_ms, buf,
                     cases[i].want);
        }
    }
    /* A small buffer is cut, never overrun. */
    char tiny[4];
    gw_ctl_format_age(NOW_MS, NOW_MS - 120000, tiny, sizeof(tiny));
    assert_string_equal(tiny, "2 m");
}

/* ---------------------------------------------------------------- widths and tables */

static void display_widths(void **state)
{
    (void)state;
    assert_int_equal(gw_ctl_display_width(""), 0);
    assert_int_equal(gw_ctl_display_width("abc"), 3);
    assert_int_equal(gw_ctl_display_width("烟感"), 4);
    assert_int_equal(gw_ctl_display_width("【火警】"), 8);
    assert_int_equal(gw_ctl_display_width("A栋 3层"), 7);
    assert_int_equal(gw_ctl_display_width("，"), 2);        /* fullwidth comma */
    assert_int_equal(gw_ctl_display_width("e\xcc\x81"), 1); /* e + combining acute */
    assert_int_equal(gw_ctl_display_width("°C"), 2);
    assert_int_equal(gw_ctl_display_width("\xff"), 1);         /* a bad byte */
    assert_int_equal(gw_ctl_display_width("\xe7\x83"), 2);     /* a cut character: 2 bad bytes */
    assert_int_equal(gw_ctl_display_width("\xc0\xaf"), 2);     /* overlong '/' */
    assert_int_equal(gw_ctl_display_width("\xed\xa0\x80"), 3); /* a surrogate */
    assert_int_equal(gw_ctl_display_width("\xf0\x9f\x94\xa5"), 2); /* fire emoji */
}

static void table_aligns_wide_text(void **state)
{
    (void)state;
    static const char *const headers[] = {"NAME", "N", "NOTE"};
    static const enum gw_ctl_align aligns[] = {GW_CTL_LEFT, GW_CTL_RIGHT, GW_CTL_LEFT};
    struct gw_ctl_table *tb = gw_ctl_table_new(3, headers, aligns);
    assert_non_null(tb);
    const char *r1[] = {"烟感301", "5", "ok"};
    const char *r2[] = {"door", "12345", NULL};
    const char *r3[] = {"bad\x1b[2Jname\n", "1", "x\x7fy"};
    assert_int_equal(gw_ctl_table_add(tb, r1), 0);
    assert_int_equal(gw_ctl_table_add(tb, r2), 0);
    assert_int_equal(gw_ctl_table_add(tb, r3), 0);
    struct capture c;
    capture_open(&c);
    gw_ctl_table_print(tb, c.f);
    char *s = capture_close(&c);
    assert_string_equal(s, "NAME              N  NOTE\n"
                           "烟感301           5  ok\n"
                           "door          12345  -\n"
                           "bad?[2Jname?      1  x?y\n");
    free(s);
    gw_ctl_table_free(tb);
    gw_ctl_table_free(NULL);

    /* Many rows: the table grows. */
    tb = gw_ctl_table_new(1, headers, NULL);
    for (int i = 0; i < 100; i++) {
        const char *r[] = {"x"};
        assert_int_equal(gw_ctl_table_add(tb, r), 0);
    }
    gw_ctl_table_free(tb);
    assert_null(gw_ctl_table_new(0, headers, NULL));
}

/* ---------------------------------------------------------------- retained state, sorting */

static void collects_retained(void **state)
{
    (void)state;
    json_t *map = json_object();
    const char *h1 = "{\"sensor\":\"a\",\"online\":true}";
    const char *h2 = "{\"sensor\":\"b\",\"online\":false}";
    assert_int_equal(gw_ctl_collect(map, "p/health/a", h1, strlen(h1)), 0);
    assert_int_equal(gw_ctl_collect(map, "p/health/b", h2, strlen(h2)), 0);
    assert_int_equal(gw_ctl_collect(map, "p/health/c", "not json", 8), -1);
    assert_int_equal(gw_ctl_collect(map, "p/health/c", "[1]", 3), -1);
    assert_int_equal(gw_ctl_collect(map, "p/health/c", "7", 1), -1);
    assert_int_equal(json_object_size(map), 2);
    /* A newer message for the same topic replaces; an empty one removes. */
    const char *h1b = "{\"sensor\":\"a\",\"online\":false}";
    assert_int_equal(gw_ctl_collect(map, "p/health/a", h1b, strlen(h1b)), 0);
    assert_true(json_is_false(json_object_get(json_object_get(map, "p/health/a"), "online")));
    assert_int_equal(gw_ctl_collect(map, "p/health/b", "", 0), 0);
    assert_int_equal(gw_ctl_collect(map, "p/health/zzz", "", 0), 0);
    json_t *arr = gw_ctl_map_values(map);
    assert_int_equal(json_array_size(arr), 1);
    json_decref(arr);
    json_decref(map);
}

static const char *sensor_at(const json_t *arr, size_t i)
{
    return json_string_value(json_object_get(json_array_get(arr, i), "sensor"));
}

static void sorts_sensors_offline_then_faulty(void **state)
{
    (void)state;
    json_t *arr = load("[{\"sensor\":\"d\",\"online\":true},"
                       "{\"sensor\":\"c\",\"online\":true,\"fault\":\"wire_break\"},"
                       "{\"sensor\":\"b\",\"online\":false},"
                       "{\"sensor\":\"a\",\"online\":true},"
                       "{\"sensor\":\"e\",\"online\":false,\"fault\":\"x\"},"
                       "{\"sensor\":\"f\",\"online\":true,\"fault\":\"\"},"
                       "{\"sensor\":\"g\"}]");
    assert_int_equal(gw_ctl_sort_sensors(arr), 0);
    const char *want[] = {"b", "e", "g", "c", "a", "d", "f"};
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(sensor_at(arr, i), want[i]);
    }
    json_decref(arr);
    json_t *empty = json_array();
    assert_int_equal(gw_ctl_sort_sensors(empty), 0);
    json_decref(empty);
}

static void sorts_alarms_fire_first(void **state)
{
    (void)state;
    json_t *arr =
        load("[{\"key\":\"t1\",\"class\":\"trouble\",\"state\":\"unacked\","
             "\"raised_at\":\"2024-05-01T09:00:00.000Z\"},"
             "{\"key\":\"s2\",\"class\":\"supervisory\",\"state\":\"acked\","
             "\"raised_at\":\"2024-05-01T08:00:00.000Z\"},"
             "{\"key\":\"s1\",\"class\":\"supervisory\",\"state\":\"unacked\","
             "\"raised_at\":\"2024-05-01T09:30:00.000Z\"},"
             "{\"key\":\"f2\",\"class\":\"alarm\",\"state\":\"acked\","
             "\"raised_at\":\"2024-05-01T07:00:00.000Z\"},"
             "{\"key\":\"f1b\",\"class\":\"alarm\",\"state\":\"unacked\","
             "\"raised_at\":\"2024-05-01T09:59:00.000Z\"},"
             "{\"key\":\"f1a\",\"class\":\"alarm\",\"state\":\"unacked\","
             "\"raised_at\":\"2024-05-01T17:58:00+08:00\"},"
             "{\"key\":\"f1c\",\"class\":\"alarm\",\"state\":\"unacked\","
             "\"raised_at\":\"2024-05-01T09:58:00.000Z\"},"
             "{\"key\":\"f3\",\"class\":\"alarm\",\"state\":\"rtn_unacked\",\"raised_at\":null},"
             "{\"key\":\"f4\",\"class\":\"alarm\",\"state\":\"shelved\"},"
             "{\"key\":\"f5\",\"class\":\"alarm\",\"state\":\"out_of_service\"},"
             "{\"key\":\"x1\",\"class\":\"weird\",\"state\":\"unacked\"}]");
    assert_int_equal(gw_ctl_sort_alarms(arr), 0);
    /* f1a and f1c are raised at the same instant: by key. */
    const char *want[] = {"f1a", "f1c", "f1b", "f3", "f2", "f4", "f5", "s1", "s2", "t1", "x1"};
    for (size_t i = 0; i < 11; i++) {
        assert_string_equal(json_string_value(json_object_get(json_array_get(arr, i), "key")),
                            want[i]);
    }
    json_decref(arr);
}

/* ---------------------------------------------------------------- readable output */

static void sensors_table(void **state)
{
    (void)state;
    json_t *arr = load("[{\"seq\":1,\"sensor\":\"A-1F-hydrant-01\",\"online\":true,"
                       "\"last_seen\":\"2024-05-01T09:59:58.000Z\",\"errors\":0},"
                       "{\"seq\":2,\"sensor\":\"A-3F-smoke-301\",\"online\":false,"
                       "\"last_seen\":\"2024-05-01T09:57:00.000Z\",\"errors\":3,"
                       "\"battery\":12.0,\"rssi\":-97.0,\"snr\":7.5},"
                       "{\"seq\":3,\"sensor\":\"B-2F-door-01\",\"online\":true,"
                       "\"last_seen\":\"2024-04-28T10:00:00.000Z\",\"errors\":0,"
                       "\"fault\":\"tamper\",\"rssi\":-110.0},"
                       "{\"seq\":4,\"sensor\":\"C-new\",\"online\":false,\"last_seen\":null,"
                       "\"errors\":0}]");
    assert_int_equal(gw_ctl_sort_sensors(arr), 0);
    struct capture c;
    capture_open(&c);
    assert_int_equal(gw_ctl_print_sensors(arr, NOW_MS, c.f), 0);
    char *s = capture_close(&c);
    assert_string_equal(s,
                        "SENSOR           STATE    LAST SEEN  BATTERY   RSSI/SNR  ERRORS  FAULT\n"
                        "A-3F-smoke-301   OFFLINE  3 min ago      12%  -97 / 7.5       3  -\n"
                        "C-new            OFFLINE  never            -          -       0  -\n"
                        "B-2F-door-01     online   3 d ago          -       -110       0  tamper\n"
                        "A-1F-hydrant-01  online   just now         -          -       0  -\n"
                        "4 sensors: 2 online, 2 offline, 1 with a fault\n");
    free(s);
    json_decref(arr);

    json_t *none = json_array();
    capture_open(&c);
    gw_ctl_print_sensors(none, NOW_MS, c.f);
    s = capture_close(&c);
    assert_non_null(strstr(s, "no sensor health"));
    free(s);
    json_decref(none);
}

static void alarms_table(void **state)
{
    (void)state;
    json_t *arr = load("[{\"seq\":9,\"key\":\"A-1F-hydrant-01/hydrant-pressure-low\","
                       "\"sensor\":\"A-1F-hydrant-01\",\"rule\":\"hydrant pressure low\","
                       "\"class\":\"supervisory\",\"state\":\"acked\",\"value\":0.05,"
                       "\"raised_at\":\"2024-05-01T08:00:00.000Z\",\"acked_at\":"
                       "\"2024-05-01T08:05:00.000Z\",\"acked_by\":\"李工\",\"cleared_at\":null,"
                       "\"level\":1},"
                       "{\"seq\":10,\"key\":\"A-3F-smoke-301/smoke-detected\","
                       "\"sensor\":\"A-3F-smoke-301\",\"rule\":\"smoke detected\","
                       "\"class\":\"alarm\",\"state\":\"unacked\",\"value\":true,"
                       "\"raised_at\":\"2024-05-01T09:58:00.000Z\",\"acked_at\":null,"
                       "\"acked_by\":null,\"cleared_at\":null,\"level\":2,"
                       "\"needs_reset\":true,\"test\":true},"
                       "{\"seq\":11,\"key\":\"B-2F-door-01/exit-locked\",\"class\":\"trouble\","
                       "\"state\":\"rtn_unacked\",\"value\":\"locked\",\"raised_at\":"
                       "\"2024-05-01T09:59:59.000Z\",\"level\":0,\"chattering\":true}]");
    assert_int_equal(gw_ctl_sort_alarms(arr), 0);
    struct capture c;
    capture_open(&c);
    assert_int_equal(gw_ctl_print_alarms(arr, NOW_MS, c.f), 0);
    char *s = capture_close(&c);
    assert_string_equal(
        s, "KEY                                   CLASS         STATE                     SINCE    "
           "  LEVEL   VALUE  ACKED BY\n"
           "A-3F-smoke-301/smoke-detected         alarm (test)  unacked (reset needed)    2 min "
           "ago      2    true  -\n"
           "A-1F-hydrant-01/hydrant-pressure-low  supervisory   acked                     2 h ago "
           "       1    0.05  李工\n"
           "B-2F-door-01/exit-locked              trouble       rtn_unacked (chattering)  just "
           "now       -  locked  -\n"
           "3 alarms, 2 unacknowledged\n");
    free(s);
    json_decref(arr);

    json_t *none = json_array();
    capture_open(&c);
    gw_ctl_print_alarms(none, NOW_MS, c.f);
    s = capture_close(&c);
    assert_string_equal(s, "no active alarms\n");
    free(s);
    json_decref(none);
}

static void status_summary(void **state)
{
    (void)state;
    json_t *status = load("{\"online\":true,\"version\":\"0.1.0\",\"started_at\":"
                          "\"2024-05-01T07:00:00.000Z\",\"outbox\":12,\"dropped\":0,"
                          "\"sensors_online\":2,\"sensors_offline\":1,"
                          "\"selftest\":{\"hub_ms\":12}}");
    json_t *health = load("[{\"sensor\":\"a\",\"online\":true},"
                          "{\"sensor\":\"b\",\"online\":true,\"fault\":\"wire_break\"},"
                          "{\"sensor\":\"c\",\"online\":false}]");
    json_t *alarms = load("[{\"key\":\"a/x\",\"class\":\"trouble\",\"state\":\"acked\"},"
                          "{\"key\":\"b/y\",\"class\":\"alarm\",\"state\":\"unacked\"},"
                          "{\"key\":\"c/z\",\"class\":\"trouble\",\"state\":\"rtn_unacked\"}]");
    json_t *sum = gw_ctl_status_json(status, health, alarms);
    assert_non_null(sum);
    char *js = json_dumps(sum, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        js, "{\"alarms\":{\"by_class\":{\"alarm\":1,\"trouble\":2},\"by_state\":{\"acked\":1,"
            "\"rtn_unacked\":1,\"unacked\":1},\"total\":3,\"unacked\":2},\"sensors\":{\"faulty\":1,"
            "\"offline\":1,\"online\":2,\"total\":3},\"status\":{\"dropped\":0,\"online\":true,"
            "\"outbox\":12,\"selftest\":{\"hub_ms\":12},\"sensors_offline\":1,"
            "\"sensors_online\":2,\"started_at\":\"2024-05-01T07:00:00.000Z\",\"version\":"
            "\"0.1.0\"}}");
    free(js);
    assert_int_equal(gw_ctl_status_exit_code(sum), GW_CTL_EXIT_OK);

    struct capture c;
    capture_open(&c);
    gw_ctl_print_status(sum, NOW_MS, c.f);
    char *s = capture_close(&c);
    assert_string_equal(s,
                        "gateway   online, version 0.1.0, started 2024-05-01 07:00:00 (3 h ago)\n"
                        "outbox    12 records waiting, 0 telemetry dropped\n"
                        "sensors   3: 2 online, 1 offline, 1 with a fault\n"
                        "alarms    3 active (1 alarm, 2 trouble), 2 unacknowledged\n"
                        "selftest  {\"hub_ms\":12}\n");
    free(s);
    json_decref(sum);

    /* Offline (the last will) and never seen: exit 4, said plainly. */
    json_t *lwt = load("{\"online\":false}");
    json_t *empty = json_array();
    sum = gw_ctl_status_json(lwt, empty, empty);
    assert_int_equal(gw_ctl_status_exit_code(sum), GW_CTL_EXIT_NO_ANSWER);
    capture_open(&c);
    gw_ctl_print_status(sum, NOW_MS, c.f);
    s = capture_close(&c);
    assert_string_equal(s, "gateway   OFFLINE (its last will: it stopped or lost the hub "
                           "connection)\n"
                           "sensors   0: 0 online, 0 offline, 0 with a fault\n"
                           "alarms    none active\n");
    free(s);
    json_decref(sum);

    sum = gw_ctl_status_json(NULL, empty, empty);
    assert_true(json_is_null(json_object_get(sum, "status")));
    assert_int_equal(gw_ctl_status_exit_code(sum), GW_CTL_EXIT_NO_ANSWER);
    capture_open(&c);
    gw_ctl_print_status(sum, NOW_MS, c.f);
    s = capture_close(&c);
    assert_non_null(strstr(s, "no status published"));
    free(s);
    json_decref(sum);

    json_t *store = load("{\"online\":true,\"store_error\":\"disk full\"}");
    sum = gw_ctl_status_json(store, empty, empty);
    capture_open(&c);
    gw_ctl_print_status(sum, NOW_MS, c.f);
    s = capture_close(&c);
    assert_non_null(strstr(s, "store     ERROR: disk full\n"));
    free(s);
    json_decref(sum);

    json_decref(store);
    json_decref(lwt);
    json_decref(empty);
    json_decref(status);
    json_decref(health);
    json_decref(alarms);
}

/* ---------------------------------------------------------------- tail */

static void formats_events(void **state)
{
    (void)state;
    char line[512];
    const char *raise = "{\"seq\":5,\"key\":\"A-3F-smoke-301/smoke-detected\",\"class\":\"alarm\","
                        "\"state\":\"unacked\",\"value\":true,\"raised_at\":"
                        "\"2024-05-01T09:58:00.000Z\",\"acked_at\":null,\"acked_by\":null,"
                        "\"level\":0,\"transition\":\"raise\"}";
    assert_int_equal(
        gw_ctl_format_event("events", raise, strlen(raise), NOW_MS, line, sizeof(line)), 0);
    assert_string_equal(line, "2024-05-01 09:58:00  raise           A-3F-smoke-301/smoke-detected  "
                              "alarm  unacked  value=true");

    const char *ack = "{\"key\":\"s/r\",\"class\":\"trouble\",\"state\":\"acked\","
                      "\"raised_at\":\"2024-05-01T09:00:00.000Z\",\"acked_at\":"
                      "\"2024-05-01T09:30:00.000Z\",\"acked_by\":\"王\",\"level\":1,"
                      "\"transition\":\"ack\",\"note\":\"checked\"}";
    assert_int_equal(gw_ctl_format_event("events", ack, strlen(ack), NOW_MS, line, sizeof(line)),
                     0);
    assert_string_equal(line, "2024-05-01 09:30:00  ack             s/r  trouble  acked  level=1  "
                              "by 王  \"checked\"");

    /* A transition with its own "ts" and "by"; value null is left out. */
    const char *shelve = "{\"key\":\"s/r\",\"class\":\"trouble\",\"state\":\"shelved\","
                         "\"value\":null,\"transition\":\"shelve\",\"by\":\"li\","
                         "\"ts\":\"2024-05-01T09:45:00.000Z\"}";
    assert_int_equal(
        gw_ctl_format_event("events", shelve, strlen(shelve), NOW_MS, line, sizeof(line)), 0);
    assert_string_equal(line, "2024-05-01 09:45:00  shelve          s/r  trouble  shelved  by li");

    /* No time at all: now. */
    const char *bare = "{\"key\":\"s/r\"}";
    assert_int_equal(gw_ctl_format_event("events", bare, strlen(bare), NOW_MS, line, sizeof(line)),
                     0);
    assert_string_equal(line, "2024-05-01 10:00:00  ?               s/r");

    const char *notify = "{\"seq\":7,\"key\":\"s/r\",\"class\":\"alarm\",\"level\":1,"
                         "\"text\":\"【火警】A栋 3层\\n烟感报警\"}";
    assert_int_equal(gw_ctl_format_event("notify/facilities", notify, strlen(notify), NOW_MS, line,
                                         sizeof(line)),
                     0);
    assert_string_equal(line, "2024-05-01 10:00:00  notify facilities  s/r  alarm  level 1: "
                              "【火警】A栋 3层?烟感报警");

    assert_int_equal(gw_ctl_format_event("events", "[]", 2, NOW_MS, line, sizeof(line)), -1);
    assert_int_equal(gw_ctl_format_event("events", "{", 1, NOW_MS, line, sizeof(line)), -1);

    /* A short buffer cuts at a character boundary: 7 bytes left hold two 3-byte characters. */
    const char *head = "2024-05-01 10:00:00  notify x  s/r  alarm  level 1: ";
    char small[60];
    assert_int_equal(strlen(head), 52);
    assert_int_equal(
        gw_ctl_format_event("notify/x", notify, strlen(notify), NOW_MS, small, sizeof(small)), 0);
    assert_int_equal(strlen(small), 58);
    assert_int_equal(strncmp(small, head, 52), 0);
    assert_string_equal(small + 52, "【火");
}

static void usage_mentions_every_command(void **state)
{
    (void)state;
    struct capture c;
    capture_open(&c);
    gw_ctl_usage(c.f);
    char *s = capture_close(&c);
    const char *words[] = {
        "status", "sensors",        "alarms",     "tail",   "ack",      "shelve",   "unshelve",
        "reset",  "out-of-service", "in-service", "--json", "--config", "--prefix", "64"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (!strstr(s, words[i])) {
            fail_msg("usage does not mention %s", words[i]);
        }
    }
    free(s);
}

int main(void)
{
    /* Local times in the expected output are UTC. */
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_queries_and_options_anywhere),
        cmocka_unit_test(parses_commands),
        cmocka_unit_test(help_and_version_win),
        cmocka_unit_test(usage_errors),
        cmocka_unit_test(check_prefix_directly),
        cmocka_unit_test(command_payloads),
        cmocka_unit_test(matches_only_our_result),
        cmocka_unit_test(prints_results),
        cmocka_unit_test(parses_rfc3339),
        cmocka_unit_test(formats_ages),
        cmocka_unit_test(display_widths),
        cmocka_unit_test(table_aligns_wide_text),
        cmocka_unit_test(collects_retained),
        cmocka_unit_test(sorts_sensors_offline_then_faulty),
        cmocka_unit_test(sorts_alarms_fire_first),
        cmocka_unit_test(sensors_table),
        cmocka_unit_test(alarms_table),
        cmocka_unit_test(status_summary),
        cmocka_unit_test(formats_events),
        cmocka_unit_test(usage_mentions_every_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
