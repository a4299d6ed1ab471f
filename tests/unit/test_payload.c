/* MQTT payloads: exact shape of the DESIGN.md contract, parsed back with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

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

static void rfc3339_has_milliseconds_and_z(void **state)
{
    (void)state;
    char buf[40];
    gw_format_rfc3339(1764336419123LL, buf, sizeof(buf));
    assert_string_equal(buf, "2025-11-28T13:26:59.123Z");
    gw_format_rfc3339(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    gw_format_rfc3339(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
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
        cmocka_unit_test(rfc3339_has_milliseconds_and_z),
        cmocka_unit_test(telemetry_values_faults_and_signal),
        cmocka_unit_test(telemetry_without_faults_has_no_faults_key),
        cmocka_unit_test(health_online_and_offline),
        cmocka_unit_test(alarm_record_has_every_field),
        cmocka_unit_test(status_online_and_will_shape),
        cmocka_unit_test(metrics_are_integers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
