/* The API's JSON: sensors with state, values, units and alarms; alarms fire first; the hazard
   register newest first with its history; daily log names. */
#include <errno.h>
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
#include "hazards.h"
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

/* ---- the hazard register ---- */

#define DAY_MS (24 * 3600 * 1000LL)

struct reg {
    struct gw_hazards *hz;
    char *entries[16];
    int n;
    char ids[4][GW_HZ_ID_MAX];
    /* per hazard, as the hazard desk keeps them: how many entries, the last one's time */
    int counts[4];
    int64_t updated[4];
};

/* gw_hazard_desk_meta's contract over the test's own register. */
static int reg_meta(const void *ctx, const char *id, int64_t *updated_at_ms, int *entries)
{
    const struct reg *r = ctx;
    for (int i = 0; i < 4; i++) {
        if (r->counts[i] > 0 && strcmp(r->ids[i], id) == 0) {
            *updated_at_ms = r->updated[i];
            *entries = r->counts[i];
            return 0;
        }
    }
    return -ENOENT;
}

static void reg_cmd(struct reg *r, const struct gw_hazard_command *cmd, int64_t now)
{
    struct gw_hazard_entry e;
    char err[256];
    int rc = gw_hazards_command(r->hz, cmd, now, &e, err, sizeof(err));
    if (rc != 1) {
        fail_msg("hazard command failed (%d): %s", rc, err);
    }
    r->entries[r->n] = gw_hazard_entry_to_json(&e);
    assert_non_null(r->entries[r->n]);
    r->n++;
    if (cmd->type == GW_HZ_CMD_OPEN) {
        for (int i = 0; i < 4; i++) {
            if (!r->ids[i][0]) {
                snprintf(r->ids[i], sizeof(r->ids[i]), "%s", e.hazard.id);
                break;
            }
        }
    }
    for (int i = 0; i < 4; i++) {
        if (strcmp(r->ids[i], e.hazard.id) == 0) {
            r->counts[i]++;
            r->updated[i] = e.at_ms;
        }
    }
}

/* Three hazards: [0] found first, now closed; [1] open with a deadline passed at T0 + 2 d;
   [2] found last, rectifying, due T0 + 10 d. */
static void reg_build(struct reg *r)
{
    memset(r, 0, sizeof(*r));
    static const char *const none[] = {NULL};
    struct gw_hazards_settings s = {
        .deadline_days = {7, 1, 7, 30, 30, 14}, .auto_open = none, .utc_offset_min = 480};
    r->hz = gw_hazards_new(&s);
    assert_non_null(r->hz);
    struct gw_hazard_command open = {.type = GW_HZ_CMD_OPEN,
                                     .by = "wang",
                                     .category = "fire_equipment",
                                     .building = "A",
                                     .floor = "3",
                                     .zone = "301",
                                     .description = "extinguisher <script>alert(1)</script>",
                                     .responsible = "li"};
    reg_cmd(r, &open, T0);
    open.category = "evacuation_route";
    open.description = "exit blocked by desks";
    open.deadline_ms = T0 + 2 * DAY_MS;
    reg_cmd(r, &open, T0 + 1000);
    open.category = "electrical";
    open.description = "socket scorched";
    open.deadline_ms = T0 + 10 * DAY_MS;
    reg_cmd(r, &open, T0 + 2000);
    struct gw_hazard_command c = {.type = GW_HZ_CMD_RECTIFYING, .id = r->ids[2], .by = "li"};
    reg_cmd(r, &c, T0 + 3000);
    c = (struct gw_hazard_command){.type = GW_HZ_CMD_CLOSE,
                                   .id = r->ids[0],
                                   .by = "li",
                                   .note = "replaced",
                                   .verifier = "zhao"};
    reg_cmd(r, &c, T0 + 4000);
}

static void reg_free(struct reg *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->entries[i]);
    }
    gw_hazards_free(r->hz);
}

static json_t *hazards_json(struct reg *r, const char *status, int64_t now)
{
    char *s = gw_api_hazards(r->hz, reg_meta, r, status, now);
    assert_non_null(s);
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    assert_true(json_is_array(j));
    return j;
}

static const char *id_at(const json_t *list, size_t i)
{
    return json_string_value(json_object_get(json_array_get(list, i), "id"));
}

static void hazards_list_newest_first(void **state)
{
    (void)state;
    struct reg r;
    reg_build(&r);
    json_t *all = hazards_json(&r, NULL, T0 + 5000);
    assert_int_equal(json_array_size(all), 3);
    assert_string_equal(id_at(all, 0), r.ids[2]);
    assert_string_equal(id_at(all, 1), r.ids[1]);
    assert_string_equal(id_at(all, 2), r.ids[0]);
    const json_t *closed = json_array_get(all, 2);
    /* the P/hazards/<id> shape, without the delivery's seq; counted from the history */
    assert_null(json_object_get(closed, "seq"));
    assert_string_equal(json_string_value(json_object_get(closed, "status")), "closed");
    assert_string_equal(json_string_value(json_object_get(closed, "verified_by")), "zhao");
    assert_string_equal(json_string_value(json_object_get(closed, "description")),
                        "extinguisher <script>alert(1)</script>");
    assert_int_equal(json_integer_value(json_object_get(closed, "entries")), 2);
    assert_string_equal(json_string_value(json_object_get(closed, "updated_at")),
                        "2025-11-24T16:00:04.000Z");
    assert_string_equal(json_string_value(json_object_get(closed, "found_by")), "wang");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 0), "entries")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 1), "entries")), 1);
    json_decref(all);

    /* No counts known (meta NULL, or it has no such hazard): 0 and "". */
    char *s = gw_api_hazards(r.hz, NULL, NULL, NULL, T0);
    json_t *bare = json_loads(s, 0, NULL);
    free(s);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(bare, 0), "entries")), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(bare, 0), "updated_at")),
                        "");
    json_decref(bare);
    r.counts[2] = 0; /* reg_meta no longer knows the newest hazard */
    bare = hazards_json(&r, NULL, T0 + 5000);
    assert_string_equal(id_at(bare, 0), r.ids[2]);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(bare, 0), "entries")), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(bare, 0), "updated_at")),
                        "");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(bare, 1), "entries")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(bare, 1), "updated_at")),
                        "2025-11-24T16:00:01.000Z");
    json_decref(bare);
    reg_free(&r);
}

static void hazards_filters(void **state)
{
    (void)state;
    struct reg r;
    reg_build(&r);
    json_t *j = hazards_json(&r, "open", T0 + 5000);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(id_at(j, 0), r.ids[1]);
    json_decref(j);
    j = hazards_json(&r, "rectifying", T0 + 5000);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(id_at(j, 0), r.ids[2]);
    json_decref(j);
    j = hazards_json(&r, "closed", T0 + 5000);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(id_at(j, 0), r.ids[0]);
    json_decref(j);
    j = hazards_json(&r, "", T0 + 5000);
    assert_int_equal(json_array_size(j), 3);
    json_decref(j);
    /* overdue: not closed and at or past the deadline (before the gateway's tick flags it) */
    j = hazards_json(&r, "overdue", T0 + 2 * DAY_MS - 1);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    j = hazards_json(&r, "overdue", T0 + 2 * DAY_MS);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(id_at(j, 0), r.ids[1]);
    json_decref(j);
    j = hazards_json(&r, "overdue", T0 + 30 * DAY_MS); /* the closed one never is */
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);

    assert_true(gw_api_hazard_filter_ok(NULL));
    assert_true(gw_api_hazard_filter_ok(""));
    assert_true(gw_api_hazard_filter_ok("open"));
    assert_true(gw_api_hazard_filter_ok("rectifying"));
    assert_true(gw_api_hazard_filter_ok("closed"));
    assert_true(gw_api_hazard_filter_ok("overdue"));
    assert_false(gw_api_hazard_filter_ok("Open"));
    assert_false(gw_api_hazard_filter_ok("all"));
    assert_false(gw_api_hazard_filter_ok("open,closed"));
    reg_free(&r);
}

static void hazard_with_history(void **state)
{
    (void)state;
    struct reg r;
    reg_build(&r);
    char *s = gw_api_hazard(r.hz, r.ids[0], (const char *const *)r.entries, r.n);
    assert_non_null(s);
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    json_t *h = json_object_get(j, "hazard");
    assert_string_equal(json_string_value(json_object_get(h, "id")), r.ids[0]);
    assert_int_equal(json_integer_value(json_object_get(h, "entries")), 2);
    json_t *hist = json_object_get(j, "history");
    assert_int_equal(json_array_size(hist), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hist, 0), "action")),
                        "open");
    json_t *close = json_array_get(hist, 1);
    assert_string_equal(json_string_value(json_object_get(close, "action")), "close");
    assert_string_equal(json_string_value(json_object_get(close, "note")), "replaced");
    assert_int_equal(json_integer_value(json_object_get(close, "seq")), 5);
    assert_int_equal(json_integer_value(json_object_get(close, "at")), T0 + 4000);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(close, "fields"), "verified_by")),
        "zhao");
    assert_int_equal(strlen(json_string_value(json_object_get(close, "hash"))), 64);
    json_decref(j);

    /* Entries the store gave that are not JSON are skipped, not fatal. */
    const char *odd[] = {"{not json", r.entries[1]};
    s = gw_api_hazard(r.hz, r.ids[1], odd, 2);
    j = json_loads(s, 0, NULL);
    free(s);
    assert_int_equal(json_array_size(json_object_get(j, "history")), 1);
    json_decref(j);

    assert_null(gw_api_hazard(r.hz, "HZ-20990101-001", (const char *const *)r.entries, r.n));
    assert_null(gw_api_hazard(r.hz, NULL, NULL, 0));
    reg_free(&r);
}

static void log_names(void **state)
{
    (void)state;
    char day[11];
    bool csv = true;
    assert_true(gw_api_log_name("2025-11-27.md", day, &csv));
    assert_string_equal(day, "2025-11-27");
    assert_false(csv);
    assert_true(gw_api_log_name("2025-11-27.csv", day, &csv));
    assert_true(csv);
    assert_true(gw_api_log_name("2024-02-29.md", day, &csv)); /* a real calendar */
    assert_string_equal(day, "2024-02-29");
    const char *bad[] = {"2025-11-27",    "2025-11-27.txt", "2025-11-27.md.md", "2025-1-27.md",
                         "2025-13-01.md", "2025-00-10.md",  "2025-11-00.md",    "2025-11-32.csv",
                         "../state.db",   "2025/11/27.md",  "x025-11-27.md",    "",
                         "2025-11-27.MD", "2025-02-29.md",  "2025-04-31.csv",   "1969-12-31.md"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gw_api_log_name(bad[i], day, &csv)) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sensors_list, setup, teardown),
        cmocka_unit_test_setup_teardown(alarms_fire_first, setup, teardown),
        cmocka_unit_test(hazards_list_newest_first),
        cmocka_unit_test(hazards_filters),
        cmocka_unit_test(hazard_with_history),
        cmocka_unit_test(log_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
