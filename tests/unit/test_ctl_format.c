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
#include "hazards.h"

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

/* ---------------------------------------------------------------- the hazard register */

static void parses_hazard_commands(void **state)
{
    (void)state;
    struct gw_ctl_args a;
    char err[512];
    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "hazard", "open",
                           "--category", "fire_equipment", "--building", "A栋", "--floor", "3",
                           "--zone", "301", "--description", "灭火器过期", "--responsible", "李工",
                           "--deadline", "2024-05-08", "--by", "王老师", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_HAZARD_OPEN);
    assert_true(gw_ctl_is_command(a.cmd));
    assert_true(gw_ctl_is_hazard_command(a.cmd));
    assert_string_equal(gw_ctl_cmd_topic(a.cmd), "hazard/open");
    assert_string_equal(gw_ctl_cmd_name(a.cmd), "hazard open");
    assert_null(a.target);
    /* a day means its end, local time (UTC here) */
    assert_int_equal(a.deadline_ms, 1715212799000LL); /* 2024-05-08T23:59:59Z */
    char *p = gw_ctl_command_payload(&a, "i1");
    assert_string_equal(p,
                        "{\"by\":\"王老师\",\"category\":\"fire_equipment\",\"building\":\"A栋\","
                        "\"floor\":\"3\",\"zone\":\"301\",\"description\":\"灭火器过期\","
                        "\"responsible\":\"李工\",\"deadline\":1715212799000,\"id\":\"i1\"}");
    free(p);

    /* Without --by the payload waits for the caller's login name. */
    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "hazard", "open",
                           "--category", "other", "--building", "B", "--description", "d",
                           "--responsible", "r", NULL),
                     0);
    assert_null(a.by);
    assert_null(gw_ctl_command_payload(&a, "i"));
    a.by = "ops";
    p = gw_ctl_command_payload(&a, "i");
    assert_string_equal(p, "{\"by\":\"ops\",\"category\":\"other\",\"building\":\"B\","
                           "\"description\":\"d\",\"responsible\":\"r\",\"id\":\"i\"}");
    free(p);

    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "hazard", "update",
                           "HZ-20240501-001", "--responsible", "赵工", "--deadline",
                           "2024-05-10T17:00:00+08:00", "--note", "换人", "--by", "w", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_HAZARD_UPDATE);
    assert_string_equal(a.target, "HZ-20240501-001");
    p = gw_ctl_command_payload(&a, "i");
    assert_string_equal(p, "{\"hazard\":\"HZ-20240501-001\",\"by\":\"w\",\"responsible\":\"赵工\","
                           "\"deadline\":1715331600000,\"note\":\"换人\",\"id\":\"i\"}");
    free(p);

    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "hazard", "rectifying",
                           "HZ-20240501-1000", "--by", "w", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_HAZARD_RECTIFYING);
    p = gw_ctl_command_payload(&a, "i");
    assert_string_equal(p, "{\"hazard\":\"HZ-20240501-1000\",\"by\":\"w\",\"id\":\"i\"}");
    free(p);

    assert_int_equal(parse(&a, err, sizeof(err), "hazard", "close", "HZ-20240501-001", "--note",
                           "replaced", "--verifier", "zhao", "--by", "w", "-c", "/gw.cfg", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_HAZARD_CLOSE);
    p = gw_ctl_command_payload(&a, "i");
    assert_string_equal(p, "{\"hazard\":\"HZ-20240501-001\",\"by\":\"w\",\"verifier\":\"zhao\","
                           "\"note\":\"replaced\",\"id\":\"i\"}");
    free(p);

    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "hazard", "reopen",
                           "HZ-20240501-001", "--by", "w", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_HAZARD_REOPEN);
    p = gw_ctl_command_payload(&a, "i");
    assert_string_equal(p, "{\"hazard\":\"HZ-20240501-001\",\"by\":\"w\",\"id\":\"i\"}");
    free(p);

    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "hazards", "--all", NULL), 0);
    assert_int_equal(a.cmd, GW_CTL_HAZARDS);
    assert_true(a.all);
    assert_false(gw_ctl_is_command(a.cmd));

    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "report", "--day",
                           "2024-04-30", "--csv", NULL),
                     0);
    assert_int_equal(a.cmd, GW_CTL_REPORT);
    assert_true(gw_ctl_is_command(a.cmd));
    assert_false(gw_ctl_is_hazard_command(a.cmd));
    p = gw_ctl_command_payload(&a, "i");
    assert_string_equal(p, "{\"day\":\"2024-04-30\",\"format\":\"csv\",\"id\":\"i\"}");
    free(p);
    /* No --day: the caller fills in yesterday. */
    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "report", NULL), 0);
    assert_null(a.target);

    /* verify needs no hub, so no prefix. */
    assert_int_equal(parse(&a, err, sizeof(err), "verify", NULL), 0);
    assert_int_equal(a.cmd, GW_CTL_VERIFY);
    assert_false(gw_ctl_needs_hub(a.cmd));
    assert_int_equal(parse(&a, err, sizeof(err), "verify", "--state-dir", "/var/lib/x", NULL), 0);
    assert_string_equal(a.state_dir, "/var/lib/x");
    assert_int_equal(parse(&a, err, sizeof(err), "verify", "--db=/tmp/s.db", NULL), 0);
    assert_string_equal(a.db_path, "/tmp/s.db");
}

static void hazard_usage_errors(void **state)
{
    (void)state;
    PARSE_FAILS("hazard needs what to do", "--prefix", "p/d/s", "hazard");
    PARSE_FAILS("unknown hazard command \"fix\"", "--prefix", "p/d/s", "hazard", "fix", "HZ-1");
    PARSE_FAILS("hazard open needs --category", "--prefix", "p/d/s", "hazard", "open", "--building",
                "A", "--description", "d", "--responsible", "r");
    PARSE_FAILS("--category \"fire\" is not one of", "--prefix", "p/d/s", "hazard", "open",
                "--category", "fire", "--building", "A", "--description", "d", "--responsible",
                "r");
    PARSE_FAILS("hazard open needs --building", "--prefix", "p/d/s", "hazard", "open", "--category",
                "other", "--description", "d", "--responsible", "r");
    PARSE_FAILS("hazard open needs --description", "--prefix", "p/d/s", "hazard", "open",
                "--category", "other", "--building", "A", "--responsible", "r");
    PARSE_FAILS("hazard open needs --responsible", "--prefix", "p/d/s", "hazard", "open",
                "--category", "other", "--building", "A", "--description", "d");
    PARSE_FAILS("hazard open: unexpected argument \"HZ-20240501-001\"", "--prefix", "p/d/s",
                "hazard", "open", "HZ-20240501-001", "--category", "other");
    PARSE_FAILS("hazard update needs the hazard's ID", "--prefix", "p/d/s", "hazard", "update",
                "--responsible", "r");
    PARSE_FAILS("hazard update needs --responsible, --deadline or --description", "--prefix",
                "p/d/s", "hazard", "update", "HZ-20240501-001");
    PARSE_FAILS("hazard close needs --note", "--prefix", "p/d/s", "hazard", "close",
                "HZ-20240501-001", "--verifier", "v");
    PARSE_FAILS("hazard close needs --note", "--prefix", "p/d/s", "hazard", "close",
                "HZ-20240501-001", "--verifier", "v", "--note=");
    PARSE_FAILS("hazard close needs --verifier", "--prefix", "p/d/s", "hazard", "close",
                "HZ-20240501-001", "--note", "n");
    const char *bad_ids[] = {"HZ-2024050-001",  "HZ-20240501-01",  "hz-20240501-001",
                             "HZ-20240501_001", "HZ-20240501-00a", "HZ-20240501-0000000000001",
                             "A-3F/smoke"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        PARSE_FAILS("is not a hazard id", "--prefix", "p/d/s", "hazard", "rectifying", bad_ids[i]);
    }
    PARSE_FAILS("--verifier is only for hazard close", "--prefix", "p/d/s", "hazard", "reopen",
                "HZ-20240501-001", "--verifier", "v");
    PARSE_FAILS("--category is only for hazard open", "--prefix", "p/d/s", "hazard", "update",
                "HZ-20240501-001", "--category", "other");
    PARSE_FAILS("--responsible is only for hazard open and hazard update", "--prefix", "p/d/s",
                "hazard", "close", "HZ-20240501-001", "--note", "n", "--verifier", "v",
                "--responsible", "r");
    PARSE_FAILS("--deadline is only for hazard open, hazard update and hazard reopen", "--prefix",
                "p/d/s", "hazard", "rectifying", "HZ-20240501-001", "--deadline", "2024-05-09");
    PARSE_FAILS("--all is only for hazards", "--prefix", "p/d/s", "alarms", "--all");
    PARSE_FAILS("--db is only for verify", "--prefix", "p/d/s", "hazards", "--db", "x");
    PARSE_FAILS("--day is only for report", "verify", "--day", "2024-05-01");
    PARSE_FAILS("--by is only for ack", "--prefix", "p/d/s", "report", "--by", "w");
    PARSE_FAILS("not both", "verify", "--db", "x", "--state-dir", "y");
    PARSE_FAILS("--deadline \"2024-02-30\" is not a day", "--prefix", "p/d/s", "hazard", "reopen",
                "HZ-20240501-001", "--deadline", "2024-02-30");
    PARSE_FAILS("--deadline \"tomorrow\"", "--prefix", "p/d/s", "hazard", "reopen",
                "HZ-20240501-001", "--deadline", "tomorrow");
    PARSE_FAILS("--day \"2024-5-1\" is not a day", "--prefix", "p/d/s", "report", "--day",
                "2024-5-1");
    PARSE_FAILS("report: unexpected argument", "--prefix", "p/d/s", "report", "2024-05-01");
    PARSE_FAILS("which gateway?", "hazards");
    PARSE_FAILS("which gateway?", "report", "--day", "2024-05-01");
    PARSE_FAILS("verify: unexpected argument", "verify", "/var/lib/campusgw");
}

static void days_and_deadlines(void **state)
{
    (void)state;
    /* The day and the time are timefmt.h's (test_timefmt has their edges); the wrapper only
     * turns a day into its end. */
    int64_t ms = 0;
    assert_int_equal(gw_ctl_parse_deadline("2024-02-29", &ms), 0);
    const char *bad[] = {"2023-02-29",  "2024-13-01", "2024-04-31",          "2024-04-3",
                         "2024-04-301", "1969-12-31", "2024-05-01T12:00:00", "tomorrow"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = 42;
        if (gw_ctl_parse_deadline(bad[i], &ms) != -1) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_int_equal(ms, 42);
    }
    assert_int_equal(gw_ctl_parse_deadline(NULL, &ms), -1);
    assert_int_equal(gw_ctl_parse_deadline("2024-05-01", &ms), 0);
    assert_int_equal(ms, NOW_MS + 14 * 3600000LL - 1000); /* 23:59:59 UTC */
    assert_int_equal(gw_ctl_parse_deadline("2024-05-01T12:00:00+08:00", &ms), 0);
    assert_int_equal(ms, NOW_MS - 6 * 3600000LL);
    assert_int_equal(gw_ctl_parse_deadline("2024-05-01 12:00", &ms), -1);
    assert_int_equal(gw_ctl_parse_deadline("", &ms), -1);
    /* In another zone the end of the day is that zone's. */
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    assert_int_equal(gw_ctl_parse_deadline("2024-05-01", &ms), 0);
    assert_int_equal(ms, NOW_MS + 6 * 3600000LL - 1000); /* 23:59:59+08:00 */
    setenv("TZ", "UTC", 1);
    tzset();
}

static void truncates_by_columns(void **state)
{
    (void)state;
    char out[64];
    gw_ctl_truncate("short", 10, out, sizeof(out));
    assert_string_equal(out, "short");
    gw_ctl_truncate("exactly10c", 10, out, sizeof(out));
    assert_string_equal(out, "exactly10c");
    gw_ctl_truncate("eleven char", 10, out, sizeof(out));
    assert_string_equal(out, "eleven ch…");
    /* wide characters: 2 columns each, never half of one */
    gw_ctl_truncate("灭火器压力不足需更换", 8, out, sizeof(out));
    assert_string_equal(out, "灭火器…");
    assert_true(gw_ctl_display_width(out) <= 8);
    gw_ctl_truncate("abc", 0, out, sizeof(out));
    assert_string_equal(out, "");
    char tiny[6];
    gw_ctl_truncate("灭火器压力", 4, tiny, sizeof(tiny));
    assert_string_equal(tiny, "灭"); /* the buffer, not the columns, was the limit */
}

#define HZ(id, status, deadline, extra)                                                            \
    "{\"seq\":1,\"id\":\"" id "\",\"category\":\"fire_equipment\",\"building\":\"A\","             \
    "\"floor\":\"1\",\"zone\":\"\",\"description\":\"d " id "\",\"status\":\"" status "\","        \
    "\"responsible\":\"li\",\"deadline\":\"" deadline "\",\"overdue\":false" extra "}"

static json_t *hazard_map(void)
{
    json_t *m = json_object();
    const char *items[][2] = {
        {"p/hazards/HZ-20240420-001", HZ("HZ-20240420-001", "closed", "2024-04-25T00:00:00Z", "")},
        {"p/hazards/HZ-20240428-002", HZ("HZ-20240428-002", "open", "2024-05-03T00:00:00Z", "")},
        {"p/hazards/HZ-20240428-001",
         HZ("HZ-20240428-001", "rectifying", "2024-05-02T00:00:00Z", "")},
        /* past its deadline: overdue even before the gateway's tick says so */
        {"p/hazards/HZ-20240427-001", HZ("HZ-20240427-001", "open", "2024-04-30T00:00:00Z", "")},
        /* flagged overdue by the gateway (a deadline in the future after a clock step) */
        {"p/hazards/HZ-20240427-002",
         "{\"id\":\"HZ-20240427-002\",\"status\":\"rectifying\",\"deadline\":\"2024-06-01T00:00:"
         "00Z\",\"overdue\":true,\"description\":\"x\",\"responsible\":\"\",\"building\":\"B\"}"},
        {"p/hazards/log", "{\"seq\":9,\"hazard\":\"HZ-20240428-002\",\"action\":\"open\"}"},
        {"p/hazards/junk", "{\"no\":\"id\"}"},
    };
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        assert_int_equal(gw_ctl_collect(m, items[i][0], items[i][1], strlen(items[i][1])), 0);
    }
    return m;
}

static void hazard_list_overdue_first(void **state)
{
    (void)state;
    json_t *m = hazard_map();
    json_t *list = gw_ctl_hazard_list(m, false, NOW_MS);
    const char *want[] = {"HZ-20240427-001", "HZ-20240427-002", "HZ-20240428-001",
                          "HZ-20240428-002"};
    assert_int_equal(json_array_size(list), 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, i), "id")),
                            want[i]);
    }
    assert_true(gw_ctl_hazard_overdue(json_array_get(list, 0), NOW_MS));
    assert_false(gw_ctl_hazard_overdue(json_array_get(list, 2), NOW_MS));
    /* exactly at the deadline it is overdue */
    assert_true(gw_ctl_hazard_overdue(json_array_get(list, 2), 1714608000000LL));
    assert_false(gw_ctl_hazard_overdue(json_array_get(list, 2), 1714608000000LL - 1));
    json_decref(list);

    list = gw_ctl_hazard_list(m, true, NOW_MS);
    assert_int_equal(json_array_size(list), 5);
    const json_t *last = json_array_get(list, 4);
    assert_string_equal(json_string_value(json_object_get(last, "id")), "HZ-20240420-001");
    assert_false(gw_ctl_hazard_overdue(last, NOW_MS)); /* closed is never overdue */
    json_decref(list);
    json_decref(m);
}

static void hazards_table(void **state)
{
    (void)state;
    json_t *m = hazard_map();
    json_t *list = gw_ctl_hazard_list(m, false, NOW_MS);
    struct capture c;
    capture_open(&c);
    assert_int_equal(gw_ctl_print_hazards(list, false, NOW_MS, c.f), 0);
    char *s = capture_close(&c);
    assert_string_equal(
        s, "ID               STATUS              CATEGORY        WHERE  RESPONSIBLE  DEADLINE    "
           "                 DESCRIPTION\n"
           "HZ-20240427-001  open OVERDUE        fire_equipment  A / 1  li           2024-04-30 "
           "00:00 (34 h ago)  d HZ-20240427-001\n"
           "HZ-20240427-002  rectifying OVERDUE  -               B      -            2024-06-01 "
           "00:00 (in 30 d)   x\n"
           "HZ-20240428-001  rectifying          fire_equipment  A / 1  li           2024-05-02 "
           "00:00 (in 14 h)   d HZ-20240428-001\n"
           "HZ-20240428-002  open                fire_equipment  A / 1  li           2024-05-03 "
           "00:00 (in 38 h)   d HZ-20240428-002\n"
           "4 hazards not closed: 2 open, 2 rectifying; 2 overdue\n");
    free(s);
    json_decref(list);

    list = gw_ctl_hazard_list(m, true, NOW_MS);
    capture_open(&c);
    assert_int_equal(gw_ctl_print_hazards(list, true, NOW_MS, c.f), 0);
    s = capture_close(&c);
    assert_non_null(strstr(s, "\nHZ-20240420-001  closed "));
    assert_non_null(strstr(s, "5 hazards: 2 open, 2 rectifying, 1 closed; 2 overdue\n"));
    free(s);
    json_decref(list);
    json_decref(m);

    /* Nothing, and a long hostile description: cut, its escape sequence defused. */
    json_t *empty = json_array();
    capture_open(&c);
    gw_ctl_print_hazards(empty, false, NOW_MS, c.f);
    s = capture_close(&c);
    assert_string_equal(s, "no open hazards\n");
    free(s);
    capture_open(&c);
    gw_ctl_print_hazards(empty, true, NOW_MS, c.f);
    s = capture_close(&c);
    assert_string_equal(s, "no hazards recorded\n");
    free(s);
    json_decref(empty);
    json_t *one = load("[{\"id\":\"HZ-20240501-001\",\"status\":\"open\",\"description\":"
                       "\"\\u001b[2Jthe fire door on the third floor is wedged open with a "
                       "chair\"}]");
    capture_open(&c);
    gw_ctl_print_hazards(one, false, NOW_MS, c.f);
    s = capture_close(&c);
    assert_non_null(strstr(s, "?[2Jthe fire door on the third floor is…\n"));
    assert_null(strchr(s, '\x1b'));
    free(s);
    json_decref(one);
}

static void prints_hazard_and_report_results(void **state)
{
    (void)state;
    struct gw_ctl_args a;
    char err[512];
    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "hazard", "open",
                           "--category", "other", "--building", "B", "--description", "d",
                           "--responsible", "r", "--by", "w", NULL),
                     0);
    struct capture out, errc;
    json_t *ok = load("{\"ok\":true,\"cmd\":\"hazard/open\",\"hazard\":\"HZ-20240501-003\","
                      "\"status\":\"open\"}");
    capture_open(&out);
    capture_open(&errc);
    assert_int_equal(gw_ctl_print_result(ok, &a, out.f, errc.f), GW_CTL_EXIT_OK);
    char *o = capture_close(&out), *e = capture_close(&errc);
    assert_string_equal(o, "ok: hazard open HZ-20240501-003: now open\n");
    free(o);
    free(e);
    json_decref(ok);

    assert_int_equal(parse(&a, err, sizeof(err), "--prefix", "p/d/s", "hazard", "close",
                           "HZ-20240501-003", "--note", "n", "--verifier", "v", "--by", "w", NULL),
                     0);
    json_t *bad = load("{\"ok\":false,\"cmd\":\"hazard/close\",\"hazard\":\"HZ-20240501-003\","
                       "\"error\":\"hazard HZ-20240501-003 is closed\",\"status\":\"closed\"}");
    capture_open(&out);
    capture_open(&errc);
    assert_int_equal(gw_ctl_print_result(bad, &a, out.f, errc.f), GW_CTL_EXIT_REFUSED);
    o = capture_close(&out);
    e = capture_close(&errc);
    assert_string_equal(o, "");
    assert_string_equal(e, "campusgw-ctl: the gateway refused hazard close HZ-20240501-003: "
                           "hazard HZ-20240501-003 is closed (state: closed)\n");
    free(o);
    free(e);
    json_decref(bad);

    /* A report: the text as it is (BOM, CRLF and tabs kept), escape sequences defused. */
    assert_int_equal(
        parse(&a, err, sizeof(err), "--prefix", "p/d/s", "report", "--day", "2024-04-30", NULL), 0);
    json_t *rep = load("{\"ok\":true,\"cmd\":\"report\",\"day\":\"2024-04-30\",\"format\":\"md\","
                       "\"text\":\"\\ufeff# 安全日志\\r\\n\\tnote: \\u001b]0;x\\u0007ok\\n\"}");
    capture_open(&out);
    capture_open(&errc);
    assert_int_equal(gw_ctl_print_report(rep, &a, out.f, errc.f), GW_CTL_EXIT_OK);
    o = capture_close(&out);
    e = capture_close(&errc);
    assert_string_equal(o, "\xef\xbb\xbf# 安全日志\r\n\tnote: ?]0;x?ok\n");
    assert_string_equal(e, "");
    free(o);
    free(e);
    json_decref(rep);
    json_t *future = load("{\"ok\":false,\"cmd\":\"report\",\"day\":\"2099-01-01\","
                          "\"error\":\"the day is in the future\"}");
    capture_open(&out);
    capture_open(&errc);
    assert_int_equal(gw_ctl_print_report(future, &a, out.f, errc.f), GW_CTL_EXIT_REFUSED);
    o = capture_close(&out);
    e = capture_close(&errc);
    assert_string_equal(o, "");
    assert_string_equal(
        e, "campusgw-ctl: the gateway refused report 2099-01-01: the day is in the future\n");
    free(o);
    free(e);
    json_decref(future);
    json_t *notext = load("{\"ok\":true,\"cmd\":\"report\"}");
    capture_open(&out);
    capture_open(&errc);
    assert_int_equal(gw_ctl_print_report(notext, &a, out.f, errc.f), GW_CTL_EXIT_REFUSED);
    o = capture_close(&out);
    e = capture_close(&errc);
    assert_non_null(strstr(e, "has no text"));
    free(o);
    free(e);
    json_decref(notext);
}

/* A real register's history: opened, made rectifying, closed; and a second hazard. */
struct chain {
    char *json[8];
    struct gw_ctl_hazard_row rows[8];
    int n;
};

static void chain_add(struct chain *c, const struct gw_hazard_entry *e)
{
    c->json[c->n] = gw_hazard_entry_to_json(e);
    assert_non_null(c->json[c->n]);
    c->rows[c->n] = (struct gw_ctl_hazard_row){
        .n = (int64_t)e->seq, .hazard = e->hazard.id, .at_ms = e->at_ms, .entry = c->json[c->n]};
    c->n++;
}

static struct gw_hazard_entry *make_chain(struct chain *c)
{
    static const char *const none[] = {NULL};
    struct gw_hazards_settings s = {.deadline_days = {7, 1, 7, 30, 30, 14},
                                    .auto_open = none,
                                    .nauto_open = 0,
                                    .utc_offset_min = 480};
    struct gw_hazards *hz = gw_hazards_new(&s);
    assert_non_null(hz);
    static struct gw_hazard_entry e[4];
    char err[256];
    struct gw_hazard_command open = {.type = GW_HZ_CMD_OPEN,
                                     .by = "wang",
                                     .category = "fire_equipment",
                                     .building = "A",
                                     .floor = "3",
                                     .description = "extinguisher expired",
                                     .responsible = "li"};
    assert_int_equal(gw_hazards_command(hz, &open, NOW_MS, &e[0], err, sizeof(err)), 1);
    struct gw_hazard_command rect = {
        .type = GW_HZ_CMD_RECTIFYING, .id = e[0].hazard.id, .by = "li"};
    assert_int_equal(gw_hazards_command(hz, &rect, NOW_MS + 1000, &e[1], err, sizeof(err)), 1);
    open.description = "exit sign dark";
    open.category = "evacuation_route";
    assert_int_equal(gw_hazards_command(hz, &open, NOW_MS + 2000, &e[2], err, sizeof(err)), 1);
    struct gw_hazard_command close = {.type = GW_HZ_CMD_CLOSE,
                                      .id = e[0].hazard.id,
                                      .by = "li",
                                      .note = "replaced",
                                      .verifier = "zhao"};
    assert_int_equal(gw_hazards_command(hz, &close, NOW_MS + 3000, &e[3], err, sizeof(err)), 1);
    gw_hazards_free(hz);
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < 4; i++) {
        chain_add(c, &e[i]);
    }
    return e;
}

static void chain_free(struct chain *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->json[i]);
    }
}

#define VERIFY_FAILS(c, want)                                                                      \
    do {                                                                                           \
        char v_[1024];                                                                             \
        assert_int_equal(gw_ctl_verify_rows((c)->rows, (c)->n, v_, sizeof(v_)), 1);                \
        if (!strstr(v_, want)) {                                                                   \
            fail_msg("verdict \"%s\" does not contain \"%s\"", v_, want);                          \
        }                                                                                          \
    } while (0)

static void verifies_the_chain(void **state)
{
    (void)state;
    char v[1024];
    assert_int_equal(gw_ctl_verify_rows(NULL, 0, v, sizeof(v)), 0);
    assert_string_equal(v, "hazard register: 0 entries, chain intact (empty)");

    struct chain c;
    struct gw_hazard_entry *e = make_chain(&c);
    assert_int_equal(gw_ctl_verify_rows(c.rows, c.n, v, sizeof(v)), 0);
    char want[256];
    snprintf(want, sizeof(want), "hazard register: 4 entries, chain intact, head %s", e[3].hash);
    assert_string_equal(v, want);
    assert_int_equal(gw_ctl_verify_rows(c.rows, 1, v, sizeof(v)), 0);
    assert_non_null(strstr(v, "1 entry, chain intact"));

    /* An edited description (hash no longer matches): the entry is named. */
    char *edited = strdup(c.json[2]);
    char *at = strstr(edited, "exit sign dark");
    assert_non_null(at);
    memcpy(at, "exit sign lit!", 14);
    c.rows[2].entry = edited;
    VERIFY_FAILS(&c, "entry n=3 (");
    VERIFY_FAILS(&c, ", open by wang at 2024-05-01 10:00:02): seq 3:");
    c.rows[2].entry = c.json[2];
    free(edited);

    /* A deleted row: the chain has a gap. */
    struct chain gap = c;
    gap.rows[1] = c.rows[2];
    gap.rows[2] = c.rows[3];
    gap.n = 3;
    VERIFY_FAILS(&gap, "entry n=3");

    /* Columns that disagree with the JSON. */
    c.rows[1].n = 7;
    VERIFY_FAILS(&c, "entry n=7 (");
    VERIFY_FAILS(&c, "the row's n disagrees with its JSON's seq 2");
    c.rows[1].n = 2;
    c.rows[1].at_ms++;
    VERIFY_FAILS(&c, "the row's at column");
    c.rows[1].at_ms--;
    c.rows[3].hazard = "HZ-20990101-001";
    VERIFY_FAILS(&c, "entry n=4 (");
    VERIFY_FAILS(&c, "the row's hazard column \"HZ-20990101-001\" disagrees");
    c.rows[3].hazard = NULL;
    VERIFY_FAILS(&c, "hazard column \"NULL\"");
    c.rows[3].hazard = e[3].hazard.id;

    /* Not JSON, or not an entry. */
    c.rows[0].entry = "{not json";
    VERIFY_FAILS(&c, "entry n=1 (HZ-");
    VERIFY_FAILS(&c, "its JSON is not a valid entry");
    c.rows[0].entry = NULL;
    VERIFY_FAILS(&c, "its JSON is not a valid entry");
    c.rows[0].entry = "{\"seq\":1}";
    VERIFY_FAILS(&c, "its JSON is not a valid entry");
    c.rows[0].entry = c.json[0];
    assert_int_equal(gw_ctl_verify_rows(c.rows, c.n, v, sizeof(v)), 0);
    chain_free(&c);
}

static void usage_mentions_every_command(void **state)
{
    (void)state;
    struct capture c;
    capture_open(&c);
    gw_ctl_usage(c.f);
    char *s = capture_close(&c);
    const char *words[] = {"status",
                           "sensors",
                           "alarms",
                           "tail",
                           "ack",
                           "shelve",
                           "unshelve",
                           "reset",
                           "out-of-service",
                           "in-service",
                           "--json",
                           "--config",
                           "--prefix",
                           "64",
                           "hazards",
                           "hazard open",
                           "hazard update",
                           "hazard rectifying",
                           "hazard close",
                           "hazard reopen",
                           "verify",
                           "report",
                           "--verifier",
                           "--state-dir",
                           "--db",
                           "--csv"};
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
        cmocka_unit_test(parses_hazard_commands),
        cmocka_unit_test(hazard_usage_errors),
        cmocka_unit_test(days_and_deadlines),
        cmocka_unit_test(truncates_by_columns),
        cmocka_unit_test(hazard_list_overdue_first),
        cmocka_unit_test(hazards_table),
        cmocka_unit_test(prints_hazard_and_report_results),
        cmocka_unit_test(verifies_the_chain),
        cmocka_unit_test(usage_mentions_every_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
