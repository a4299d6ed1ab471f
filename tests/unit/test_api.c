/* The API's JSON: sensors with state, values, units and alarms; alarms fire first. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alarms.h"
#include "api.h"
#include "config.h"
#include "registry.h"

#define T0 1764000000000LL

static const char config_text[] =
    "site = { district = \"d\"; school = \"s\"; name = \"S\"; };\n"
    "state_dir = \"/tmp\";\n"
    "modbus = ( { name = \"plc\"; tcp = \"127.0.0.1:502\"; } );\n"
    "profiles = { p = { points = ( { name = \"pressure\"; unit = \"MPa\"; address = 0; } ); }; };\n"
    "sensors = (\n"
    "  { id = \"h1\"; kind = \"hydrant_pressure\"; profile = \"p\"; modbus = \"plc\"; unit_id = "
    "1;\n"
    "    location = { building = \"A\"; floor = \"1\"; zone = \"east stair\"; }; },\n"
    "  { id = \"h2\"; kind = \"hydrant_pressure\"; profile = \"p\"; modbus = \"plc\"; unit_id = 2; "
    "}\n"
    ");\n"
    "rules = ( { name = \"low\"; kind = \"hydrant_pressure\"; point = \"pressure\"; below = 0.1;\n"
    "            class = \"supervisory\"; },\n"
    "          { name = \"very low\"; kind = \"hydrant_pressure\"; point = \"pressure\";\n"
    "            below = 0.05; class = \"alarm\"; } );\n";

struct fx {
    struct gw_config *cfg;
    struct gw_registry *reg;
    struct gw_alarms *alarms;
};

static int setup(void **state)
{
    char path[] = "/tmp/gw-test-api-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, config_text, sizeof(config_text) - 1),
                     (ssize_t)(sizeof(config_text) - 1));
    close(fd);
    struct fx *f = calloc(1, sizeof(*f));
    f->cfg = gw_config_load(path, stderr);
    unlink(path);
    assert_non_null(f->cfg);
    f->reg = gw_registry_new(f->cfg);
    f->alarms = gw_alarms_new(f->cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_alarms_free(f->alarms);
    gw_registry_free(f->reg);
    gw_config_free(f->cfg);
    free(f);
    return 0;
}

static void reading(struct fx *f, int sensor, double pressure, int64_t ts)
{
    struct gw_reading r = {
        .sensor_index = sensor, .ts_ms = ts, .status = GW_READING_OK, .npoints = 1};
    snprintf(r.sensor, sizeof(r.sensor), "%s", f->cfg->sensors[sensor].id);
    snprintf(r.points[0].name, sizeof(r.points[0].name), "pressure");
    r.points[0].value = (struct gw_value){.type = GW_VALUE_NUMBER, .num = pressure};
    gw_registry_update(f->reg, &r);
}

static void raise_alarm(struct fx *f, int rule, int sensor, int64_t ts)
{
    struct gw_alarm_transition t = {
        .rule_index = rule, .sensor_index = sensor, .type = GW_TRANSITION_RAISE, .ts_ms = ts};
    t.value = (struct gw_value){.type = GW_VALUE_NUMBER, .num = 0.01};
    struct gw_alarm_change ch[GW_ALARMS_TRANSITION_CHANGES];
    assert_true(gw_alarms_on_transition(f->alarms, &t, ch, GW_ALARMS_TRANSITION_CHANGES) > 0);
}

static void sensors_list(void **state)
{
    struct fx *f = *state;
    reading(f, 0, 0.42, T0);
    char *s = gw_api_sensors(f->cfg, f->reg, f->alarms, T0 + 180000);
    json_t *root = json_loads(s, 0, NULL);
    free(s);
    assert_true(json_is_array(root));
    assert_int_equal(json_array_size(root), 2);
    json_t *h1 = json_array_get(root, 0);
    assert_string_equal(json_string_value(json_object_get(h1, "id")), "h1");
    assert_string_equal(json_string_value(json_object_get(h1, "state")), "online");
    assert_string_equal(json_string_value(json_object_get(h1, "source")), "modbus");
    assert_int_equal(json_integer_value(json_object_get(h1, "age_s")), 180);
    json_t *loc = json_object_get(h1, "location");
    assert_string_equal(json_string_value(json_object_get(loc, "zone")), "east stair");
    assert_true(json_real_value(json_object_get(json_object_get(h1, "values"), "pressure")) ==
                0.42);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(h1, "units"), "pressure")), "MPa");
    json_t *h2 = json_array_get(root, 1);
    assert_string_equal(json_string_value(json_object_get(h2, "state")), "offline");
    assert_true(json_is_null(json_object_get(h2, "last_seen")));
    assert_true(json_is_null(json_object_get(h2, "location")));
    json_decref(root);
}

static void alarms_fire_first(void **state)
{
    struct fx *f = *state;
    raise_alarm(f, 0, 0, T0);        /* supervisory, older */
    raise_alarm(f, 1, 1, T0 + 1000); /* fire alarm, newer */
    raise_alarm(f, 0, 1, T0 + 2000);
    char *s = gw_api_alarms(f->cfg, f->alarms);
    json_t *root = json_loads(s, 0, NULL);
    free(s);
    assert_int_equal(json_array_size(root), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(root, 0), "class")),
                        "alarm");
    assert_string_equal(json_string_value(json_object_get(json_array_get(root, 1), "key")),
                        "h1/low");
    assert_string_equal(json_string_value(json_object_get(json_array_get(root, 2), "key")),
                        "h2/low");
    assert_null(json_object_get(json_array_get(root, 0), "seq"));
    json_decref(root);

    s = gw_api_sensor(f->cfg, f->reg, f->alarms, 1, T0);
    root = json_loads(s, 0, NULL);
    free(s);
    assert_int_equal(json_array_size(json_object_get(root, "alarms")), 2);
    json_decref(root);
    assert_null(gw_api_sensor(f->cfg, f->reg, f->alarms, 7, T0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sensors_list, setup, teardown),
        cmocka_unit_test_setup_teardown(alarms_fire_first, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
