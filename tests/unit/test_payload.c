/* MQTT payloads: exact shape of the DESIGN.md contract, parsed back with jansson. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "alarms.h"
#include "payload.h"

static struct gw_sensor_cfg sensor = {
    .id = "A-1F-hydrant-01", .kind = "hydrant_pressure", .bus_index = 0};

static json_t *parse(char *s)
{
    assert_non_null(s);
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    free(s);
    assert_non_null(j);
    return j;
}

static void telemetry_values_faults_and_signal(void **state)
{
    (void)state;
    struct gw_reading r = {.ts_ms = 1764336419123LL, .npoints = 4, .has_rssi = true, .rssi = -97};
    strcpy(r.points[0].name, "pressure");
    r.points[0].value = (struct gw_value){.type = GW_VALUE_NUMBER, .num = 0.4523};
    strcpy(r.points[1].name, "inlet");
    r.points[1].fault = GW_FAULT_WIRE_BREAK;
    strcpy(r.points[2].name, "state");
    r.points[2].value = (struct gw_value){.type = GW_VALUE_STRING, .str = "locked"};
    strcpy(r.points[3].name, "alarm");
    r.points[3].value = (struct gw_value){.type = GW_VALUE_BOOL, .b = true, .num = 1};
    json_t *j = parse(gw_payload_telemetry(42, &sensor, &r));
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "sensor")), "A-1F-hydrant-01");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "hydrant_pressure");
    assert_string_equal(json_string_value(json_object_get(j, "ts")), "2025-11-28T13:26:59.123Z");
    json_t *values = json_object_get(j, "values");
    assert_float_equal(json_real_value(json_object_get(values, "pressure")), 0.4523, 1e-12);
    assert_null(json_object_get(values, "inlet")); /* a faulted point is absent from values */
    assert_string_equal(json_string_value(json_object_get(values, "state")), "locked");
    assert_true(json_is_true(json_object_get(values, "alarm")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "faults"), "inlet")),
                        "wire_break");
    assert_float_equal(json_real_value(json_object_get(j, "rssi")), -97, 0);
    assert_null(json_object_get(j, "snr"));
    json_decref(j);
}

static void telemetry_without_faults_has_no_faults_key(void **state)
{
    (void)state;
    struct gw_reading r = {.ts_ms = 1, .npoints = 1};
    strcpy(r.points[0].name, "pressure");
    r.points[0].value = (struct gw_value){.type = GW_VALUE_NUMBER, .num = 0.1};
    json_t *j = parse(gw_payload_telemetry(1, &sensor, &r));
    assert_null(json_object_get(j, "faults"));
    assert_null(json_object_get(j, "rssi"));
    json_decref(j);
}

static void health_online_and_offline(void **state)
{
    (void)state;
    struct gw_sensor_health h = {.online = false, .last_seen_ms = 0, .errors = 7};
    strcpy(h.fault, "timeout after 500 ms");
    json_t *j = parse(gw_payload_health(9, &sensor, &h));
    assert_false(json_is_true(json_object_get(j, "online")));
    assert_true(json_is_null(json_object_get(j, "last_seen")));
    assert_int_equal(json_integer_value(json_object_get(j, "errors")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "fault")), "timeout after 500 ms");
    assert_null(json_object_get(j, "battery"));
    json_decref(j);

    struct gw_sensor_health ok = {
        .online = true, .last_seen_ms = 1000, .has_battery = true, .battery = 87};
    j = parse(gw_payload_health(10, &sensor, &ok));
    assert_true(json_is_true(json_object_get(j, "online")));
    assert_string_equal(json_string_value(json_object_get(j, "last_seen")),
                        "1970-01-01T00:00:01.000Z");
    assert_null(json_object_get(j, "fault"));
    assert_float_equal(json_real_value(json_object_get(j, "battery")), 87, 0);
    json_decref(j);
}

static void alarm_record_has_every_field(void **state)
{
    (void)state;
    struct gw_rule_cfg rule = {.name = "hydrant pressure low",
                               .slug = "hydrant-pressure-low",
                               .alarm_class = GW_CLASS_SUPERVISORY};
    struct gw_config cfg = {.nsensors = 1, .sensors = &sensor, .nrules = 1, .rules = &rule};
    struct gw_alarm a = {.key = "A-1F-hydrant-01/hydrant-pressure-low",
                         .state = GW_ALARM_UNACKED,
                         .value = {.type = GW_VALUE_NUMBER, .num = 0.02},
                         .raised_at_ms = 2000};
    json_t *j = parse(gw_payload_alarm(5, &cfg, &a, NULL));
    const char *keys[] = {"seq",   "key",       "sensor",   "rule",     "class",      "state",
                          "value", "raised_at", "acked_at", "acked_by", "cleared_at", "level"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_non_null(json_object_get(j, keys[i]));
    }
    assert_string_equal(json_string_value(json_object_get(j, "class")), "supervisory");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "unacked");
    assert_string_equal(json_string_value(json_object_get(j, "rule")), "hydrant pressure low");
    assert_true(json_is_null(json_object_get(j, "acked_at")));
    assert_true(json_is_null(json_object_get(j, "acked_by")));
    assert_true(json_is_null(json_object_get(j, "cleared_at")));
    assert_int_equal(json_integer_value(json_object_get(j, "level")), 0);
    assert_null(json_object_get(j, "transition"));
    json_decref(j);

    a.state = GW_ALARM_NORMAL;
    a.cleared_at_ms = 3000;
    j = parse(gw_payload_alarm(6, &cfg, &a, "clear"));
    assert_string_equal(json_string_value(json_object_get(j, "transition")), "clear");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "normal");
    assert_string_equal(json_string_value(json_object_get(j, "cleared_at")),
                        "1970-01-01T00:00:03.000Z");
    json_decref(j);
}

static void assert_alarm_equal(const struct gw_alarm *a, const struct gw_alarm *b)
{
    assert_string_equal(a->key, b->key);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->value.type, b->value.type);
    switch (a->value.type) {
    case GW_VALUE_NUMBER:
        assert_float_equal(a->value.num, b->value.num, 0);
        break;
    case GW_VALUE_BOOL:
        assert_int_equal(a->value.b, b->value.b);
        break;
    case GW_VALUE_STRING:
        assert_string_equal(a->value.str, b->value.str);
        break;
    case GW_VALUE_NONE:
        break;
    }
    assert_int_equal(a->raised_at_ms, b->raised_at_ms);
    assert_int_equal(a->acked_at_ms, b->acked_at_ms);
    assert_string_equal(a->acked_by, b->acked_by);
    assert_int_equal(a->cleared_at_ms, b->cleared_at_ms);
    assert_int_equal(a->level, b->level);
    assert_int_equal(a->condition, b->condition);
    assert_int_equal(a->needs_reset, b->needs_reset);
    assert_int_equal(a->shelved_until_ms, b->shelved_until_ms);
    assert_string_equal(a->shelved_by, b->shelved_by);
    assert_string_equal(a->note, b->note);
    assert_int_equal(a->chattering, b->chattering);
    assert_int_equal(a->nraises, b->nraises);
    for (int i = 0; i < a->nraises; i++) {
        assert_int_equal(a->raises_ms[i], b->raises_ms[i]);
    }
    assert_int_equal(a->notified_at_ms, b->notified_at_ms);
    assert_int_equal(a->notify_pending, b->notify_pending);
    assert_int_equal(a->suppressed, b->suppressed);
    assert_int_equal(a->test, b->test);
    assert_int_equal(a->system, b->system);
}

static void alarm_lifecycle_fields_only_when_set(void **state)
{
    (void)state;
    struct gw_rule_cfg rule = {
        .name = "smoke detected", .slug = "smoke-detected", .alarm_class = GW_CLASS_ALARM};
    struct gw_config cfg = {.nsensors = 1, .sensors = &sensor, .nrules = 1, .rules = &rule};
    struct gw_alarm a;
    memset(&a, 0, sizeof(a));
    snprintf(a.key, sizeof(a.key), "A-1F-hydrant-01/smoke-detected");
    a.state = GW_ALARM_UNACKED;
    a.raised_at_ms = 2000;
    json_t *j = parse(gw_payload_alarm(1, &cfg, &a, "raise"));
    assert_true(json_is_false(json_object_get(j, "condition")));
    const char *optional[] = {"needs_reset", "shelved_until", "shelved_by",
                              "note",        "chattering",    "suppressed",
                              "raises",      "notified_at",   "notify_pending"};
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
        if (json_object_get(j, optional[i]) != NULL) {
            fail_msg("\"%s\" present although not set", optional[i]);
        }
    }
    json_decref(j);

    a.state = GW_ALARM_SHELVED;
    a.condition = true;
    a.needs_reset = true;
    a.shelved_until_ms = 3600000;
    snprintf(a.shelved_by, sizeof(a.shelved_by), "李老师");
    snprintf(a.note, sizeof(a.note), "换电池 \"soon\"");
    a.chattering = true;
    a.suppressed = 4;
    a.nraises = 2;
    a.raises_ms[0] = 1000;
    a.raises_ms[1] = 2000;
    a.notified_at_ms = 1000;
    a.notify_pending = true;
    j = parse(gw_payload_alarm(2, &cfg, &a, NULL));
    assert_true(json_is_true(json_object_get(j, "condition")));
    assert_true(json_is_true(json_object_get(j, "needs_reset")));
    assert_string_equal(json_string_value(json_object_get(j, "shelved_until")),
                        "1970-01-01T01:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "shelved_by")), "李老师");
    assert_string_equal(json_string_value(json_object_get(j, "note")), "换电池 \"soon\"");
    assert_true(json_is_true(json_object_get(j, "chattering")));
    assert_int_equal(json_integer_value(json_object_get(j, "suppressed")), 4);
    json_t *raises = json_object_get(j, "raises");
    assert_int_equal(json_array_size(raises), 2);
    assert_string_equal(json_string_value(json_array_get(raises, 1)), "1970-01-01T00:00:02.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "notified_at")),
                        "1970-01-01T00:00:01.000Z");
    assert_true(json_is_true(json_object_get(j, "notify_pending")));
    assert_string_equal(json_string_value(json_object_get(j, "state")), "shelved");
    json_decref(j);
}

static void alarm_json_round_trip(void **state)
{
    (void)state;
    struct gw_rule_cfg rule = {
        .name = "door locked", .slug = "door-locked", .alarm_class = GW_CLASS_SUPERVISORY};
    struct gw_config cfg = {.nsensors = 1, .sensors = &sensor, .nrules = 1, .rules = &rule};
    const struct gw_value values[] = {
        {.type = GW_VALUE_NUMBER, .num = 0.0213},
        {.type = GW_VALUE_BOOL, .b = true, .num = 1},
        {.type = GW_VALUE_STRING, .str = "locked"},
        {.type = GW_VALUE_NONE},
    };
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
        struct gw_alarm a;
        memset(&a, 0, sizeof(a));
        snprintf(a.key, sizeof(a.key), "A-1F-hydrant-01/door-locked");
        a.rule_index = 0;
        a.sensor_index = 0;
        a.state = (enum gw_alarm_state)(v % GW_ALARM_NSTATES);
        a.value = values[v];
        a.raised_at_ms = 1764336419123LL;
        a.acked_at_ms = 1764336420001LL;
        snprintf(a.acked_by, sizeof(a.acked_by), "wang");
        a.cleared_at_ms = v ? 1764336421999LL : 0;
        a.level = 2;
        a.condition = v % 2;
        a.needs_reset = v == 1;
        a.shelved_until_ms = v == 2 ? 1764340000000LL : 0;
        snprintf(a.note, sizeof(a.note), "%s", v == 3 ? "" : "门已打开");
        a.chattering = v < 2;
        a.nraises = (int)v + 1;
        for (int i = 0; i < a.nraises; i++) {
            a.raises_ms[i] = 1764336419123LL - 60000 * (a.nraises - i);
        }
        a.notified_at_ms = v ? 1764336300000LL : 0;
        a.notify_pending = v == 0;
        a.suppressed = (int)v;
        char *json = gw_payload_alarm(9, &cfg, &a, v ? NULL : "chattering");
        assert_non_null(json);
        struct gw_alarm b;
        char err[128];
        assert_int_equal(gw_payload_alarm_parse(json, &b, err, sizeof(err)), 0);
        free(json);
        assert_int_equal(b.rule_index, -1);
        assert_int_equal(b.sensor_index, -1);
        assert_alarm_equal(&b, &a);
    }
}

static void alarm_parse_rejects_bad_input(void **state)
{
    (void)state;
    const struct {
        const char *json, *msg;
    } cases[] = {
        {"{", "bad JSON"},
        {"[1]", "not a JSON object"},
        {"{\"state\":\"unacked\"}", "\"key\""},
        {"{\"key\":\"a/b\"}", "\"state\""},
        {"{\"key\":\"a/b\",\"state\":\"on fire\"}", "\"state\""},
        {"{\"key\":\"a/b\",\"state\":\"acked\",\"raised_at\":\"yesterday\"}",
         "\"raised_at\" is not an RFC 3339"},
        {"{\"key\":\"a/b\",\"state\":\"acked\",\"acked_at\":\"2025-13-01T00:00:00Z\"}",
         "\"acked_at\""},
        {"{\"key\":\"a/b\",\"state\":\"acked\",\"raises\":[\"2025-11-28T13:26:59.123Z\",5]}",
         "\"raises\"[1]"},
        {NULL, "bad JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gw_alarm a;
        char err[128] = "";
        int rc = gw_payload_alarm_parse(cases[i].json, &a, err, sizeof(err));
        if (rc != -EINVAL || strstr(err, cases[i].msg) == NULL) {
            fail_msg("case %zu: rc %d err \"%s\", expected \"%s\"", i, rc, err, cases[i].msg);
        }
    }
    /* Minimal, seconds without milliseconds, null times: fine. */
    struct gw_alarm a;
    assert_int_equal(gw_payload_alarm_parse("{\"key\":\"a/b\",\"state\":\"acked\","
                                            "\"raised_at\":\"2025-11-28T13:26:59Z\","
                                            "\"acked_at\":null}",
                                            &a, NULL, 0),
                     0);
    assert_int_equal(a.raised_at_ms, 1764336419000LL);
    assert_int_equal(a.acked_at_ms, 0);
    assert_int_equal(a.state, GW_ALARM_ACKED);
}

/* What the lead does across a restart: P/alarms JSON in the store -> restore. */
static void alarms_survive_a_restart_through_json(void **state)
{
    (void)state;
    struct gw_sensor_cfg sensors[] = {{.id = "A-3F-smoke-301", .kind = "smoke"},
                                      {.id = "A-1F-hydrant-01", .kind = "hydrant_pressure"}};
    struct gw_rule_cfg rules[] = {{.name = "smoke detected",
                                   .slug = "smoke-detected",
                                   .kind = "smoke",
                                   .latch = true,
                                   .alarm_class = GW_CLASS_ALARM},
                                  {.name = "hydrant pressure low",
                                   .slug = "hydrant-pressure-low",
                                   .kind = "hydrant_pressure",
                                   .alarm_class = GW_CLASS_SUPERVISORY}};
    struct gw_config cfg = {.nsensors = 2, .sensors = sensors, .nrules = 2, .rules = rules};
    cfg.alarms.chatter_count = 2;
    cfg.alarms.chatter_minutes = 10;
    struct gw_alarms *al = gw_alarms_new(&cfg);
    assert_non_null(al);
    struct gw_alarm_change out[8];
    const int64_t t0 = 1764336000000LL;
    struct gw_alarm_transition t = {
        .rule_index = 1, .sensor_index = 1, .value = {.type = GW_VALUE_NUMBER, .num = 0.05}};
    for (int k = 0; k < 4; k++) { /* chattering, a raise held back */
        t.type = GW_TRANSITION_RAISE;
        t.ts_ms = t0 + k * 1000;
        assert_true(gw_alarms_on_transition(al, &t, out, 8) >= 1);
        t.type = GW_TRANSITION_CLEAR;
        t.ts_ms = t0 + k * 1000 + 500;
        if (k < 3) {
            assert_int_equal(gw_alarms_on_transition(al, &t, out, 8), 1);
        }
    }
    t = (struct gw_alarm_transition){.rule_index = 0,
                                     .sensor_index = 0,
                                     .type = GW_TRANSITION_RAISE,
                                     .value = {.type = GW_VALUE_BOOL, .b = true, .num = 1},
                                     .ts_ms = t0};
    gw_alarms_on_transition(al, &t, out, 8);
    struct gw_alarm_command c = {
        .type = GW_CMD_ACK, .key = "A-3F-smoke-301/smoke-detected", .by = "王", .note = "查看中"};
    assert_int_equal(gw_alarms_command(al, &c, t0 + 5000, out, 8, NULL, 0), 1);
    t.type = GW_TRANSITION_CLEAR;
    t.ts_ms = t0 + 6000;
    gw_alarms_on_transition(al, &t, out, 8);
    c = (struct gw_alarm_command){
        .type = GW_CMD_OUT_OF_SERVICE, .sensor = "A-3F-smoke-301", .by = "zhao"};
    assert_int_equal(gw_alarms_command(al, &c, t0 + 7000, out, 8, NULL, 0), 1);

    struct gw_alarms *back = gw_alarms_new(&cfg);
    assert_non_null(back);
    int it = 0, n = 0;
    const struct gw_alarm *a;
    while ((a = gw_alarms_next(al, &it)) != NULL) {
        char *json = gw_payload_alarm(1, &cfg, a, NULL);
        struct gw_alarm parsed;
        assert_int_equal(gw_payload_alarm_parse(json, &parsed, NULL, 0), 0);
        free(json);
        assert_int_equal(gw_alarms_restore(back, &parsed), 0);
        assert_alarm_equal(gw_alarms_get(back, a->rule_index, a->sensor_index), a);
        n++;
    }
    assert_int_equal(n, 2);
    struct gw_oos_sensor o;
    assert_true(gw_alarms_sensor_oos(back, 0, &o)); /* implied by its out_of_service alarm */
    assert_int_equal(gw_alarms_restore_oos(back, 0, "zhao", t0 + 7000), 0);
    assert_true(gw_alarms_sensor_oos(back, 0, &o));
    assert_string_equal(o.by, "zhao");
    /* Both go on identically: the held-back raise is told once chattering ends. */
    struct gw_alarm_change o1[8], o2[8];
    int64_t later = t0 + 10 * 60000 + 2000;
    int n1 = gw_alarms_tick(al, later, o1, 8), n2 = gw_alarms_tick(back, later, o2, 8);
    assert_int_equal(n1, 2);
    assert_int_equal(n2, 2);
    for (int i = 0; i < n1; i++) {
        assert_string_equal(o1[i].transition, o2[i].transition);
        assert_int_equal(o1[i].notify, o2[i].notify);
        assert_alarm_equal(&o1[i].alarm, &o2[i].alarm);
    }
    assert_string_equal(o1[1].transition, "raise");
    assert_int_equal(o1[1].notify, GW_NOTIFY_RAISE);
    gw_alarms_free(al);
    gw_alarms_free(back);
}

static void system_alarm_json_round_trip(void **state)
{
    (void)state;
    struct gw_rule_cfg rule = {
        .name = "door locked", .slug = "door-locked", .alarm_class = GW_CLASS_SUPERVISORY};
    struct gw_config cfg = {.nsensors = 1, .sensors = &sensor, .nrules = 1, .rules = &rule};
    struct gw_alarm a;
    memset(&a, 0, sizeof(a));
    snprintf(a.key, sizeof(a.key), "gateway/path-self-test");
    a.rule_index = -1;
    a.sensor_index = -1;
    a.system = true;
    a.test = true;
    a.alarm_class = GW_CLASS_TROUBLE;
    snprintf(a.name, sizeof(a.name), "通路自检");
    a.state = GW_ALARM_SHELVED;
    a.condition = true;
    a.value = (struct gw_value){.type = GW_VALUE_NUMBER, .num = 12.5};
    a.raised_at_ms = 1764336419123LL;
    a.shelved_until_ms = 1764340000000LL;
    snprintf(a.shelved_by, sizeof(a.shelved_by), "wang");
    a.level = 1;
    a.nraises = 1;
    a.raises_ms[0] = 1764336419123LL;
    a.notified_at_ms = 1764336419123LL;
    json_t *j = parse(gw_payload_alarm(3, &cfg, &a, "shelve"));
    assert_string_equal(json_string_value(json_object_get(j, "key")), "gateway/path-self-test");
    assert_string_equal(json_string_value(json_object_get(j, "sensor")), "gateway");
    assert_string_equal(json_string_value(json_object_get(j, "rule")), "通路自检");
    assert_string_equal(json_string_value(json_object_get(j, "class")), "trouble");
    assert_true(json_is_true(json_object_get(j, "test")));
    assert_true(json_is_true(json_object_get(j, "system")));
    assert_string_equal(json_string_value(json_object_get(j, "transition")), "shelve");
    json_decref(j);

    char *json = gw_payload_alarm(3, &cfg, &a, NULL);
    assert_non_null(json);
    struct gw_alarm b;
    char err[128];
    assert_int_equal(gw_payload_alarm_parse(json, &b, err, sizeof(err)), 0);
    free(json);
    assert_alarm_equal(&b, &a);
    assert_true(b.system);
    assert_true(b.test);
    assert_string_equal(b.name, a.name);
    assert_int_equal(b.alarm_class, a.alarm_class);
    assert_int_equal(b.rule_index, -1);

    /* A rule alarm: "rule", "class" and "sensor" from the config; "test" when set. */
    memset(&a, 0, sizeof(a));
    snprintf(a.key, sizeof(a.key), "A-1F-hydrant-01/door-locked");
    snprintf(a.name, sizeof(a.name), "stale");
    a.alarm_class = GW_CLASS_ALARM;
    a.state = GW_ALARM_UNACKED;
    j = parse(gw_payload_alarm(4, &cfg, &a, NULL));
    assert_string_equal(json_string_value(json_object_get(j, "rule")), "door locked");
    assert_string_equal(json_string_value(json_object_get(j, "class")), "supervisory");
    assert_string_equal(json_string_value(json_object_get(j, "sensor")), "A-1F-hydrant-01");
    assert_null(json_object_get(j, "test"));
    assert_null(json_object_get(j, "system"));
    json_decref(j);
    a.test = true;
    json = gw_payload_alarm(4, &cfg, &a, NULL);
    assert_int_equal(gw_payload_alarm_parse(json, &b, NULL, 0), 0);
    free(json);
    assert_true(b.test);
    assert_false(b.system);
    assert_string_equal(b.name, "door locked");
    /* Indexes that are not cfg's never crash: the record describes itself. */
    a.rule_index = 3;
    a.sensor_index = -1;
    j = parse(gw_payload_alarm(5, &cfg, &a, NULL));
    assert_string_equal(json_string_value(json_object_get(j, "rule")), "stale");
    assert_string_equal(json_string_value(json_object_get(j, "class")), "alarm");
    assert_string_equal(json_string_value(json_object_get(j, "sensor")), "A-1F-hydrant-01");
    json_decref(j);
}

static void system_alarm_parse_needs_rule_and_class(void **state)
{
    (void)state;
    char long_rule[200];
    memset(long_rule, 'r', sizeof(long_rule) - 1);
    long_rule[sizeof(long_rule) - 1] = '\0';
    char with_long[400];
    snprintf(with_long, sizeof(with_long),
             "{\"key\":\"gateway/x\",\"state\":\"unacked\",\"system\":true,\"class\":\"trouble\","
             "\"rule\":\"%s\"}",
             long_rule);
    const char *cases[] = {
        "{\"key\":\"gateway/x\",\"state\":\"unacked\",\"system\":true,\"class\":\"trouble\"}",
        "{\"key\":\"gateway/x\",\"state\":\"unacked\",\"system\":true,\"rule\":\"x\"}",
        "{\"key\":\"gateway/x\",\"state\":\"unacked\",\"system\":true,\"rule\":\"x\","
        "\"class\":\"fire\"}",
        "{\"key\":\"gateway/x\",\"state\":\"unacked\",\"system\":true,\"rule\":\"\","
        "\"class\":\"trouble\"}",
        with_long,
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gw_alarm a;
        char err[128] = "";
        int rc = gw_payload_alarm_parse(cases[i], &a, err, sizeof(err));
        if (rc != -EINVAL || strstr(err, "system alarm without") == NULL) {
            fail_msg("case %zu: rc %d err \"%s\"", i, rc, err);
        }
    }
    /* Not a system alarm: a missing or odd class or rule is the config's business. */
    struct gw_alarm a;
    assert_int_equal(
        gw_payload_alarm_parse("{\"key\":\"a/b\",\"state\":\"acked\",\"class\":\"fire\","
                               "\"test\":false}",
                               &a, NULL, 0),
        0);
    assert_false(a.system);
    assert_false(a.test);
    assert_string_equal(a.name, "");
}

/* System alarms across a restart: P/alarms JSON in the store -> restore, next to rule alarms. */
static void system_alarms_survive_a_restart_through_json(void **state)
{
    (void)state;
    struct gw_sensor_cfg sensors[] = {{.id = "A-1F-hydrant-01", .kind = "hydrant_pressure"}};
    struct gw_rule_cfg rules[] = {{.name = "hydrant pressure low",
                                   .slug = "hydrant-pressure-low",
                                   .kind = "hydrant_pressure",
                                   .alarm_class = GW_CLASS_SUPERVISORY}};
    struct gw_config cfg = {.nsensors = 1, .sensors = sensors, .nrules = 1, .rules = rules};
    cfg.alarms.chatter_count = 2;
    cfg.alarms.chatter_minutes = 10;
    struct gw_alarms *al = gw_alarms_new(&cfg);
    assert_non_null(al);
    struct gw_alarm_change out[8];
    const int64_t t0 = 1764336000000LL;
    const struct gw_value age = {.type = GW_VALUE_NUMBER, .num = 120};
    /* chattering, a raise held back */
    for (int k = 0; k < 4; k++) {
        assert_true(gw_alarms_system_raise(al, "bus-rs485_1/bus-offline", "bus rs485_1 offline",
                                           GW_CLASS_TROUBLE, &age, false, t0 + k * 1000, out,
                                           8) >= 1);
        if (k < 3) {
            assert_int_equal(
                gw_alarms_system_clear(al, "bus-rs485_1/bus-offline", t0 + k * 1000 + 500, out, 8),
                1);
        }
    }
    /* a test, shelved */
    assert_int_equal(gw_alarms_system_raise(al, "gateway/path-self-test", "通路自检",
                                            GW_CLASS_TROUBLE, NULL, true, t0, out, 8),
                     1);
    struct gw_alarm_command c = {.type = GW_CMD_SHELVE,
                                 .key = "gateway/path-self-test",
                                 .by = "王",
                                 .note = "路由器更换",
                                 .minutes = 30};
    assert_int_equal(gw_alarms_command(al, &c, t0 + 5000, out, 8, NULL, 0), 1);
    /* a rule alarm, test */
    struct gw_alarm_transition t = {.rule_index = 0,
                                    .sensor_index = 0,
                                    .type = GW_TRANSITION_RAISE,
                                    .value = age,
                                    .ts_ms = t0,
                                    .test = true};
    assert_int_equal(gw_alarms_on_transition(al, &t, out, 8), 1);

    struct gw_alarms *back = gw_alarms_new(&cfg);
    assert_non_null(back);
    int it = 0, n = 0;
    const struct gw_alarm *a;
    while ((a = gw_alarms_next(al, &it)) != NULL) {
        char *json = gw_payload_alarm(1, &cfg, a, NULL);
        struct gw_alarm parsed;
        assert_int_equal(gw_payload_alarm_parse(json, &parsed, NULL, 0), 0);
        free(json);
        assert_int_equal(gw_alarms_restore(back, &parsed), 0);
        const struct gw_alarm *got = gw_alarms_find(back, a->key);
        assert_non_null(got);
        assert_alarm_equal(got, a);
        assert_int_equal(got->system, a->system);
        assert_int_equal(got->test, a->test);
        assert_string_equal(got->name, a->name);
        assert_int_equal(got->alarm_class, a->alarm_class);
        assert_int_equal(got->rule_index, a->rule_index);
        n++;
    }
    assert_int_equal(n, 3);
    int counts[GW_NCLASSES][GW_ALARM_NSTATES];
    assert_int_equal(gw_alarms_count(back, counts), 3);
    assert_int_equal(counts[GW_CLASS_TROUBLE][GW_ALARM_SHELVED], 1);
    assert_int_equal(counts[GW_CLASS_TROUBLE][GW_ALARM_UNACKED], 1);
    assert_int_equal(counts[GW_CLASS_SUPERVISORY][GW_ALARM_UNACKED], 1);
    /* Both go on identically: the held-back raise, then the shelve expiry. */
    const int64_t times[] = {t0 + 10 * 60000 + 2000, t0 + 5000 + 30 * 60000};
    for (size_t k = 0; k < 2; k++) {
        struct gw_alarm_change o1[8], o2[8];
        int n1 = gw_alarms_tick(al, times[k], o1, 8), n2 = gw_alarms_tick(back, times[k], o2, 8);
        assert_int_equal(n1, n2);
        assert_true(n1 >= 1);
        for (int i = 0; i < n1; i++) {
            assert_string_equal(o1[i].transition, o2[i].transition);
            assert_int_equal(o1[i].notify, o2[i].notify);
            assert_alarm_equal(&o1[i].alarm, &o2[i].alarm);
        }
        assert_int_equal(o1[n1 - 1].notify, GW_NOTIFY_RAISE);
    }
    /* A stored rule alarm whose sensor is gone is not mistaken for a system alarm. */
    struct gw_alarm gone;
    assert_int_equal(gw_payload_alarm_parse("{\"key\":\"B-2F-smoke-201/smoke-detected\","
                                            "\"state\":\"unacked\",\"rule\":\"smoke detected\","
                                            "\"class\":\"alarm\",\"sensor\":\"B-2F-smoke-201\"}",
                                            &gone, NULL, 0),
                     0);
    assert_int_equal(gw_alarms_restore(back, &gone), -ENOENT);
    gw_alarms_free(al);
    gw_alarms_free(back);
}

static void status_online_and_will_shape(void **state)
{
    (void)state;
    struct gw_status st = {.online = true,
                           .started_at_ms = 1000,
                           .outbox = 12,
                           .dropped = 3,
                           .sensors_online = 3,
                           .sensors_offline = 1};
    json_t *j = parse(gw_payload_status(&st));
    assert_true(json_is_true(json_object_get(j, "online")));
    assert_string_equal(json_string_value(json_object_get(j, "version")), GW_VERSION);
    assert_string_equal(json_string_value(json_object_get(j, "started_at")),
                        "1970-01-01T00:00:01.000Z");
    assert_int_equal(json_integer_value(json_object_get(j, "outbox")), 12);
    assert_int_equal(json_integer_value(json_object_get(j, "dropped")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "sensors_offline")), 1);
    assert_null(json_object_get(j, "store_error"));
    json_decref(j);
    st.online = false;
    st.store_error = "commit: database or disk is full";
    j = parse(gw_payload_status(&st));
    assert_false(json_is_true(json_object_get(j, "online")));
    assert_string_equal(json_string_value(json_object_get(j, "store_error")),
                        "commit: database or disk is full");
    json_decref(j);
}

static void metrics_are_integers(void **state)
{
    (void)state;
    struct gw_metric m[] = {{"outbox", 5}, {"rss_kb", 9000}, {"dropped", 0}};
    json_t *j = parse(gw_payload_metrics(77, 2000, m, 3));
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 77);
    assert_string_equal(json_string_value(json_object_get(j, "ts")), "1970-01-01T00:00:02.000Z");
    assert_true(json_is_integer(json_object_get(j, "rss_kb")));
    assert_int_equal(json_integer_value(json_object_get(j, "rss_kb")), 9000);
    assert_int_equal(json_object_size(j), 5);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(telemetry_values_faults_and_signal),
        cmocka_unit_test(telemetry_without_faults_has_no_faults_key),
        cmocka_unit_test(health_online_and_offline),
        cmocka_unit_test(alarm_record_has_every_field),
        cmocka_unit_test(alarm_lifecycle_fields_only_when_set),
        cmocka_unit_test(alarm_json_round_trip),
        cmocka_unit_test(alarm_parse_rejects_bad_input),
        cmocka_unit_test(alarms_survive_a_restart_through_json),
        cmocka_unit_test(system_alarm_json_round_trip),
        cmocka_unit_test(system_alarm_parse_needs_rule_and_class),
        cmocka_unit_test(system_alarms_survive_a_restart_through_json),
        cmocka_unit_test(status_online_and_will_shape),
        cmocka_unit_test(metrics_are_integers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
