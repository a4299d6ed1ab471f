/* Commands from MQTT (and later HTTP): every malformed or hostile input is a clear error. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "commands.h"

static int parse(const char *name, const char *json, struct gw_command *c, char *err)
{
    return gw_command_parse(name, json, strlen(json), c, err, 200);
}

static void good_commands(void **state)
{
    (void)state;
    struct gw_command c;
    char err[200];
    assert_int_equal(parse("ack",
                           "{\"key\":\"A-3F-smoke-301/smoke-detected\",\"by\":\"王师傅\","
                           "\"note\":\"检查过了\",\"id\":\"x1\"}",
                           &c, err),
                     0);
    assert_int_equal(c.type, GW_COMMAND_ACK);
    assert_string_equal(c.name, "ack");
    assert_string_equal(c.key, "A-3F-smoke-301/smoke-detected");
    assert_string_equal(c.by, "王师傅");
    assert_string_equal(c.note, "检查过了");
    assert_string_equal(c.id, "x1");

    assert_int_equal(parse("shelve", "{\"key\":\"s/r\",\"by\":\"li\",\"minutes\":30}", &c, err), 0);
    assert_int_equal(c.type, GW_COMMAND_SHELVE);
    assert_int_equal(c.minutes, 30);
    assert_string_equal(c.note, "");
    assert_string_equal(c.id, "");
    assert_int_equal(parse("shelve", "{\"key\":\"s/r\",\"by\":\"li\",\"minutes\":10080}", &c, err),
                     0);
    assert_int_equal(parse("unshelve", "{\"key\":\"s/r\",\"by\":\"li\"}", &c, err), 0);
    assert_int_equal(c.type, GW_COMMAND_UNSHELVE);
    assert_int_equal(parse("reset", "{\"key\":\"s/r\",\"by\":\"li\"}", &c, err), 0);
    assert_int_equal(c.type, GW_COMMAND_RESET);
    assert_int_equal(
        parse("out_of_service", "{\"sensor\":\"A-1\",\"by\":\"li\",\"note\":\"swap\"}", &c, err),
        0);
    assert_int_equal(c.type, GW_COMMAND_OUT_OF_SERVICE);
    assert_string_equal(c.sensor, "A-1");
    assert_string_equal(c.key, "");
    assert_int_equal(parse("in_service", "{\"sensor\":\"A-1\",\"by\":\"li\"}", &c, err), 0);
    assert_int_equal(c.type, GW_COMMAND_IN_SERVICE);
}

static void bad_commands(void **state)
{
    (void)state;
    static const struct {
        const char *name, *json, *error;
    } cases[] = {
        {"delete", "{}", "unknown command \"delete\""},
        {"result", "{}", "unknown command \"result\""},
        {"ack", "", "empty command"},
        {"ack", "{\"key\":", "bad JSON"},
        {"ack", "[1,2]", "must be a JSON object"},
        {"ack", "\"ack\"", "bad JSON"},
        {"ack", "{\"key\":\"s/r\",\"key\":\"t/r\",\"by\":\"a\"}", "bad JSON"},
        {"ack", "{\"by\":\"a\"}", "missing \"key\""},
        {"ack", "{\"key\":\"\",\"by\":\"a\"}", "\"key\" is empty"},
        {"ack", "{\"key\":7,\"by\":\"a\"}", "\"key\" must be a string"},
        {"ack", "{\"key\":\"s/r\"}", "missing \"by\""},
        {"ack", "{\"key\":\"s/r\",\"by\":\"\"}", "missing \"by\""},
        {"ack", "{\"key\":\"s/r\",\"by\":null}", "\"by\" must be a string"},
        {"ack", "{\"key\":\"s/r\",\"by\":\"a\\nb\"}", "control characters"},
        {"ack", "{\"key\":\"s/r\",\"by\":\"a\\u0000b\"}", "bad JSON"}, /* jansson refuses NUL */
        {"ack", "{\"key\":\"s/r\",\"by\":\"a\\u001bb\"}", "control characters"},
        {"ack", "{\"key\":\"s/r\",\"by\":\"\xff\"}", "bad JSON"},
        {"ack", "{\"key\":\"s/r\",\"by\":\"a\",\"drop\":\"table\"}", "unknown key \"drop\""},
        {"ack", "{\"key\":\"s/r\",\"by\":\"a\",\"minutes\":5}", "unknown key \"minutes\""},
        {"ack", "{\"sensor\":\"s\",\"by\":\"a\"}", "unknown key \"sensor\""},
        {"out_of_service", "{\"key\":\"s/r\",\"by\":\"a\"}", "unknown key \"key\""},
        {"out_of_service", "{\"by\":\"a\"}", "missing \"sensor\""},
        {"shelve", "{\"key\":\"s/r\",\"by\":\"a\"}", "missing \"minutes\""},
        {"shelve", "{\"key\":\"s/r\",\"by\":\"a\",\"minutes\":0}", "1..10080"},
        {"shelve", "{\"key\":\"s/r\",\"by\":\"a\",\"minutes\":10081}", "1..10080"},
        {"shelve", "{\"key\":\"s/r\",\"by\":\"a\",\"minutes\":1.5}", "1..10080"},
        {"shelve", "{\"key\":\"s/r\",\"by\":\"a\",\"minutes\":\"5\"}", "1..10080"},
        {"ack", "{\"key\":\"s/r\",\"by\":\"a\",\"note\":[]}", "\"note\" must be a string"},
        {"ack", "{\"key\":\"s/r\",\"by\":\"a\",\"id\":{}}", "\"id\" must be a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gw_command c;
        char err[200] = "";
        int rc = parse(cases[i].name, cases[i].json, &c, err);
        if (rc != -EINVAL || !strstr(err, cases[i].error)) {
            fail_msg("case %zu (%s %s): rc=%d err=\"%s\", want \"%s\"", i, cases[i].name,
                     cases[i].json, rc, err, cases[i].error);
        }
    }
}

static void limits(void **state)
{
    (void)state;
    struct gw_command c;
    char err[200];
    /* too long by and note; a huge payload is refused unparsed */
    char json[6000];
    char by[80];
    memset(by, 'x', sizeof(by) - 1);
    by[sizeof(by) - 1] = '\0';
    snprintf(json, sizeof(json), "{\"key\":\"s/r\",\"by\":\"%s\"}", by);
    assert_int_equal(parse("ack", json, &c, err), -EINVAL);
    assert_non_null(strstr(err, "\"by\" is too long"));
    char big[5000];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse("ack", big, &c, err), -EINVAL);
    assert_non_null(strstr(err, "too large"));
    /* an unknown command still echoes its id */
    assert_int_equal(parse("bogus", "{\"id\":\"r9\",\"key\":\"s/r\"}", &c, err), -EINVAL);
    assert_string_equal(c.id, "r9");
    assert_string_equal(c.name, "unknown");
    /* a topic level with bytes that are not text: the message stays valid UTF-8 */
    assert_int_equal(parse("\xff\xfe\x01", "{}", &c, err), -EINVAL);
    assert_non_null(strstr(err, "unknown command \"???\""));
    /* deep nesting: jansson's own depth limit, an error, no crash */
    char deep[2100];
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"note\":", 7);
    n += 7;
    for (int i = 0; i < 1000; i++) {
        deep[n++] = '[';
    }
    for (int i = 0; i < 1000; i++) {
        deep[n++] = ']';
    }
    deep[n++] = '}';
    deep[n] = '\0';
    assert_int_equal(parse("ack", deep, &c, err), -EINVAL);
}

static void refused_command_still_names_its_target(void **state)
{
    (void)state;
    struct gw_command c;
    char err[200];
    assert_int_equal(parse("shelve", "{\"id\":\"q7\",\"key\":\"s/r\",\"by\":\"a\"}", &c, err),
                     -EINVAL);
    char *r = gw_command_result(42, &c, false, err, NULL);
    json_t *root = json_loads(r, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "seq")), 42);
    assert_true(json_is_false(json_object_get(root, "ok")));
    assert_string_equal(json_string_value(json_object_get(root, "cmd")), "shelve");
    assert_string_equal(json_string_value(json_object_get(root, "key")), "s/r");
    assert_string_equal(json_string_value(json_object_get(root, "id")), "q7");
    assert_non_null(strstr(json_string_value(json_object_get(root, "error")), "minutes"));
    assert_null(json_object_get(root, "state"));
    json_decref(root);
    free(r);

    assert_int_equal(parse("ack", "{\"key\":\"s/r\",\"by\":\"a\"}", &c, err), 0);
    r = gw_command_result(43, &c, true, NULL, "acked");
    root = json_loads(r, 0, NULL);
    assert_true(json_is_true(json_object_get(root, "ok")));
    assert_string_equal(json_string_value(json_object_get(root, "state")), "acked");
    assert_null(json_object_get(root, "error"));
    assert_null(json_object_get(root, "id"));
    json_decref(root);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_commands),
        cmocka_unit_test(bad_commands),
        cmocka_unit_test(limits),
        cmocka_unit_test(refused_command_still_names_its_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
