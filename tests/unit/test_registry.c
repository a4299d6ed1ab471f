/* Sensor health: offline after N failed polls, back on the first answer, faults, battery. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"

static struct gw_bus_cfg bus = {.name = "plc", .fail_threshold = 3};
static struct gw_sensor_cfg sensors[2] = {
    {.id = "h1", .kind = "hydrant_pressure", .bus_index = 0, .interval_s = 10},
    {.id = "d1", .kind = "exit_door", .bus_index = 0, .interval_s = 10},
};
static struct gw_config cfg = {.nbuses = 1, .buses = &bus, .nsensors = 2, .sensors = sensors};

static struct gw_reading ok_reading(int idx, int64_t ts, double pressure)
{
    struct gw_reading r = {.sensor_index = idx, .ts_ms = ts, .status = GW_READING_OK, .npoints = 1};
    strcpy(r.points[0].name, "pressure");
    r.points[0].value = (struct gw_value){.type = GW_VALUE_NUMBER, .num = pressure};
    return r;
}

static struct gw_reading failed(int idx, int64_t ts)
{
    struct gw_reading r = {.sensor_index = idx, .ts_ms = ts, .status = GW_READING_ERROR};
    strcpy(r.error, "timeout after 500 ms");
    return r;
}

static void offline_after_threshold_and_back(void **state)
{
    (void)state;
    struct gw_registry *reg = gw_registry_new(&cfg);
    struct gw_reading r = ok_reading(0, 1000, 0.4);
    assert_true(gw_registry_update(reg, &r));  /* unknown -> online */
    assert_false(gw_registry_update(reg, &r)); /* nothing changed */
    r = failed(0, 2000);
    assert_false(gw_registry_update(reg, &r));
    assert_false(gw_registry_update(reg, &r));
    const struct gw_sensor_health *h = gw_registry_get(reg, 0);
    assert_true(h->online);
    assert_int_equal(h->consecutive_errors, 2);
    assert_true(gw_registry_update(reg, &r)); /* third failure: offline */
    assert_false(h->online);
    assert_string_equal(h->fault, "timeout after 500 ms");
    assert_int_equal(h->errors, 3);
    assert_int_equal(h->last_seen_ms, 1000);
    r = ok_reading(0, 5000, 0.41);
    assert_true(gw_registry_update(reg, &r)); /* back online at once */
    assert_true(h->online);
    assert_string_equal(h->fault, "");
    assert_int_equal(h->consecutive_errors, 0);
    assert_int_equal(h->last_seen_ms, 5000);
    assert_float_equal(h->points[0].value.num, 0.41, 0);
    int on, off, bad;
    gw_registry_counts(reg, &on, &off, &bad);
    assert_int_equal(on, 1);
    assert_int_equal(off, 1); /* d1 never answered */
    assert_int_equal(bad, 0);
    gw_registry_free(reg);
}

static void point_fault_and_battery_are_health_changes(void **state)
{
    (void)state;
    struct gw_registry *reg = gw_registry_new(&cfg);
    struct gw_reading r = ok_reading(1, 1000, 0.4);
    gw_registry_update(reg, &r);
    r.points[0].fault = GW_FAULT_WIRE_BREAK;
    r.points[0].value.type = GW_VALUE_NONE;
    assert_true(gw_registry_update(reg, &r));
    assert_string_equal(gw_registry_get(reg, 1)->fault, "pressure: wire_break");
    r.npoints = 2;
    strcpy(r.points[1].name, "battery");
    r.points[1].value = (struct gw_value){.type = GW_VALUE_NUMBER, .num = 90};
    assert_true(gw_registry_update(reg, &r));
    assert_false(gw_registry_update(reg, &r));
    r.points[1].value.num = 89;
    assert_true(gw_registry_update(reg, &r));
    assert_float_equal(gw_registry_get(reg, 1)->battery, 89, 0);
    int on, off, bad;
    gw_registry_counts(reg, &on, &off, &bad);
    assert_int_equal(bad, 1);
    gw_registry_free(reg);
}

static void out_of_range_index_is_ignored(void **state)
{
    (void)state;
    struct gw_registry *reg = gw_registry_new(&cfg);
    struct gw_reading r = ok_reading(2, 1, 0);
    assert_false(gw_registry_update(reg, &r));
    r.sensor_index = -1;
    assert_false(gw_registry_update(reg, &r));
    assert_null(gw_registry_get(reg, 2));
    gw_registry_free(reg);
}

static void carry_over_by_id(void **state)
{
    (void)state;
    struct gw_registry *old = gw_registry_new(&cfg);
    struct gw_reading r = ok_reading(1, 777, 0.3);
    gw_registry_update(old, &r);
    /* New config: d1 first, h1 removed, a new sensor. */
    struct gw_sensor_cfg s2[2] = {{.id = "d1", .bus_index = 0}, {.id = "new", .bus_index = 0}};
    struct gw_config cfg2 = {.nbuses = 1, .buses = &bus, .nsensors = 2, .sensors = s2};
    struct gw_registry *reg = gw_registry_new(&cfg2);
    gw_registry_carry_over(reg, old);
    assert_int_equal(gw_registry_get(reg, 0)->last_seen_ms, 777);
    assert_true(gw_registry_get(reg, 0)->online);
    assert_false(gw_registry_get(reg, 1)->ever_seen);
    gw_registry_free(old);
    gw_registry_free(reg);
    gw_registry_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(offline_after_threshold_and_back),
        cmocka_unit_test(point_fault_and_battery_are_health_changes),
        cmocka_unit_test(out_of_range_index_is_ignored),
        cmocka_unit_test(carry_over_by_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
