/* campusgw-sim's pure scenario part (sensors/sim/scenario.c): parsing, script timing, faults. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim/scenario.h"

#define EXPECT_INT(what, got, want)                                                                \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        if (got_ != want_) {                                                                       \
            fail_msg("%s: %s is %lld, want %lld", what, #got, got_, want_);                        \
        }                                                                                          \
    } while (0)

/* Parse text; *errs gets every error line (caller frees). */
static struct gw_scenario *parse(const char *text, char **errs)
{
    size_t size = 0;
    FILE *f = open_memstream(errs, &size);
    assert_non_null(f);
    struct gw_scenario *sc = gw_scenario_parse(text, "test.cfg", f);
    fclose(f);
    return sc;
}

/* ---- a good scenario, every field --------------------------------------------------- */

static const char good[] = "name = \"unit test school\";\n"                            /* 1 */
                           "modbus = { listen = \"127.0.0.2:15020\"; };\n"             /* 2 */
                           "seed = 7;\n"                                               /* 3 */
                           "devices = (\n"                                             /* 4 */
                           "  { name = \"H\"; unit_id = 3; type = \"hydrant_4_20\";\n" /* 5 */
                           "    pressure = 0.45; noise = 0.01; },\n"                   /* 6 */
                           "  { name = \"D\"; unit_id = 5; type = \"door\"; state = \"open\"; "
                           "battery = 80; },\n" /* 7 */
                           "  { name = \"R\"; unit_id = 247; type = \"registers\"; size = 4;\n"
                           "    holding = [1, 0xFFFF]; input = [9]; coils = [true, false, true];\n"
                           "    discrete = (0, true); fault = \"exception\"; }\n" /* 10 */
                           ");\n"
                           "script = (\n"
                           "  { at_s = 20; device = \"H\"; pressure = 0.02; },\n" /* 13 */
                           "  { at_s = 5.5; device = \"D\"; state = \"locked\"; battery = 10; },\n"
                           "  { at_s = 20; device = \"R\"; fault = \"none\";\n"
                           "    holding = { address = 2; values = [0x4120, 0]; };\n"
                           "    coils = { address = 3; value = true; }; },\n"
                           "  { at_s = 0; device = \"H\"; fault = \"wire_break\"; }\n"
                           ");\n"
                           "repeat_s = 60;\n";

static void test_good(void **state)
{
    (void)state;
    char *errs = NULL;
    struct gw_scenario *sc = parse(good, &errs);
    if (sc == NULL) {
        fail_msg("good scenario rejected:\n%s", errs);
    }
    free(errs);
    assert_string_equal(sc->name, "unit test school");
    assert_string_equal(sc->listen_host, "127.0.0.2");
    assert_int_equal(sc->listen_port, 15020);
    assert_int_equal(sc->seed, 7);
    assert_int_equal(sc->repeat_ms, 60000);
    assert_int_equal(sc->ndevices, 3);

    struct gw_sim_device *h = gw_scenario_device(sc, 3);
    assert_non_null(h);
    assert_string_equal(h->name, "H");
    assert_int_equal(h->type, GW_SIM_HYDRANT);
    assert_true(fabs(h->init.pressure - 0.45) < 1e-9);
    assert_true(fabs(h->noise - 0.01) < 1e-9);
    assert_int_equal(h->tables.n_holding, 2);
    assert_int_equal(h->tables.n_input, 0);
    assert_int_equal(h->tables.n_coils, 0);
    assert_int_equal(h->tables.holding[0], 8500); /* no noise until a request */
    assert_int_equal(h->tables.holding[1], 450);
    assert_int_equal(h->line, 5);

    struct gw_sim_device *d = gw_scenario_device(sc, 5);
    assert_non_null(d);
    assert_int_equal(d->type, GW_SIM_DOOR);
    assert_int_equal(d->tables.holding[0], GW_SIM_DOOR_OPEN);
    assert_int_equal(d->tables.holding[1], 80);

    struct gw_sim_device *r = gw_scenario_device(sc, 247);
    assert_non_null(r);
    assert_int_equal(r->type, GW_SIM_REGISTERS);
    assert_int_equal(r->cur.fault, GW_SIM_FAULT_EXCEPTION);
    assert_int_equal(r->tables.n_holding, 4);
    assert_int_equal(r->tables.n_input, 4);
    assert_int_equal(r->tables.n_coils, 4);
    assert_int_equal(r->tables.n_discrete, 4);
    const uint16_t want_h[4] = {1, 0xFFFF, 0, 0};
    const uint8_t want_c[4] = {1, 0, 1, 0};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r->tables.holding[i], want_h[i]);
        assert_int_equal(r->tables.coils[i], want_c[i]);
    }
    assert_int_equal(r->tables.input[0], 9);
    assert_int_equal(r->tables.discrete[1], 1);

    assert_null(gw_scenario_device(sc, 4));
    assert_null(gw_scenario_device(sc, 0));
    assert_null(gw_scenario_device(sc, -1));
    assert_null(gw_scenario_device(sc, 256));

    /* Sorted by time, file order for ties. */
    assert_int_equal(sc->nevents, 4);
    const int64_t want_at[4] = {0, 5500, 20000, 20000};
    const int want_dev[4] = {0, 1, 0, 2};
    for (int i = 0; i < 4; i++) {
        EXPECT_INT("event order", sc->events[i].at_ms, want_at[i]);
        EXPECT_INT("event order", sc->events[i].device, want_dev[i]);
    }
    assert_int_equal(sc->events[3].nwrites, 2);
    assert_int_equal(sc->events[3].writes[0].table, GW_SIM_HOLDING);
    assert_int_equal(sc->events[3].writes[0].count, 2);
    assert_int_equal(sc->events[3].writes[1].table, GW_SIM_COILS);
    gw_scenario_free(sc);
}

static void test_defaults(void **state)
{
    (void)state;
    char *errs = NULL;
    struct gw_scenario *sc =
        parse("devices = ( { name = \"H\"; unit_id = 1; type = \"hydrant_4_20\"; },"
              "{ name = \"D\"; unit_id = 2; type = \"door\"; },"
              "{ name = \"R\"; unit_id = 3; type = \"registers\"; holding = [5]; } );",
              &errs);
    if (sc == NULL) {
        fail_msg("%s", errs);
    }
    free(errs);
    assert_null(sc->name);
    assert_string_equal(sc->listen_host, "127.0.0.1");
    assert_int_equal(sc->listen_port, 1502);
    assert_int_equal(sc->seed, 1);
    assert_int_equal(sc->repeat_ms, 0);
    assert_int_equal(sc->nevents, 0);
    assert_true(fabs(sc->devices[0].init.pressure - 0.4) < 1e-9);
    assert_true(sc->devices[0].noise == 0.0);
    assert_int_equal(sc->devices[1].init.door, GW_SIM_DOOR_CLOSED);
    assert_int_equal(sc->devices[1].init.battery, 100);
    /* Without size, each table is as long as its list; absent tables are empty. */
    assert_int_equal(sc->devices[2].tables.n_holding, 1);
    assert_int_equal(sc->devices[2].tables.n_input, 0);
    assert_int_equal(sc->devices[2].tables.n_coils, 0);
    assert_int_equal(gw_scenario_next_due_ms(sc), -1);
    assert_int_equal(gw_scenario_advance(sc, INT64_MAX / 2, NULL, NULL), 0);
    gw_scenario_free(sc);
}

/* ---- every error, with its line ---------------------------------------------------------- */

#define H(extra) "{ name = \"H\"; unit_id = 1; type = \"hydrant_4_20\"; " extra " }"
#define D(extra) "{ name = \"D\"; unit_id = 2; type = \"door\"; " extra " }"
#define R(extra) "{ name = \"R\"; unit_id = 3; type = \"registers\"; " extra " }"
#define DEVS(...) "devices = (\n" __VA_ARGS__ "\n);\n"
#define STD DEVS(H("") ",\n" D("") ",\n" R("size = 4;"))
/* STD's devices sit on lines 2..4; a script after it starts on line 6. */
#define SCRIPT(...) STD "script = (\n" __VA_ARGS__ "\n);\n"

struct bad_case {
    const char *text;
    const char *want; /* substring of the error output, including file:line */
};

static const struct bad_case bad_cases[] = {
    {"devices = ( ", "test.cfg:1: syntax error"},
    {"x = 1;\n" STD, "test.cfg:1: scenario: unknown key 'x'"},
    {"", "test.cfg:0: devices = ( ... ); is required"},
    {"devices = ();", "test.cfg:1: devices must not be empty"},
    {"devices = { a = 1; };", "test.cfg:1: devices must be a list"},
    {"devices = ( 1 );", "a device must be a group"},
    {"modbus = { listen = \"localhost:1502\"; };\n" STD, "test.cfg:1: listen must be"},
    {"modbus = { listen = \"127.0.0.1\"; };\n" STD, "test.cfg:1: listen must be"},
    {"modbus = { listen = \"127.0.0.1:65536\"; };\n" STD, "test.cfg:1: listen must be"},
    {"modbus = { listen = 1502; };\n" STD, "test.cfg:1: listen must be a string"},
    {"modbus = { port = 1502; };\n" STD, "test.cfg:1: modbus: unknown key 'port'"},
    {"modbus = \"x\";\n" STD, "modbus must be a group"},
    {"seed = -1;\n" STD, "test.cfg:1: seed must be"},
    {"name = 3;\n" STD, "test.cfg:1: name must be a string"},
    {DEVS(H("colour = 1;")), "test.cfg:2: hydrant_4_20: unknown key 'colour'"},
    {DEVS(D("pressure = 0.3;")), "test.cfg:2: door: 'pressure' does not apply here"},
    {DEVS(H("state = \"open\";")), "test.cfg:2: hydrant_4_20: 'state' does not apply here"},
    {DEVS(H("holding = [1];")), "'holding' does not apply here"},
    {DEVS(R("noise = 0.1;")), "registers: 'noise' does not apply here"},
    {DEVS("{ unit_id = 1; type = \"door\"; }"), "test.cfg:2: device: name is required"},
    {DEVS("{ name = \"\"; unit_id = 1; type = \"door\"; }"), "device name must not be empty"},
    {DEVS("{ name = \"D\"; type = \"door\"; }"), "device D: unit_id is required"},
    {DEVS("{ name = \"D\"; unit_id = 1; }"), "device D: type is required"},
    {DEVS("{ name = \"D\"; unit_id = 1; type = \"fire\"; }"), "type must be one of"},
    {DEVS("{ name = \"D\"; unit_id = 1; type = \"fire\"; bogus = 1; }"),
     "device: unknown key 'bogus'"},
    {DEVS("{ name = \"D\"; unit_id = 0; type = \"door\"; }"), "unit_id must be 1..247, not 0"},
    {DEVS("{ name = \"D\"; unit_id = 248; type = \"door\"; }"), "unit_id must be 1..247"},
    {DEVS("{ name = \"D\"; unit_id = \"1\"; type = \"door\"; }"), "unit_id must be an integer"},
    {DEVS(H("") ",\n{ name = \"H\"; unit_id = 9; type = \"door\"; }"),
     "test.cfg:3: device 'H' already defined at line 2"},
    {DEVS(H("") ",\n{ name = \"X\"; unit_id = 1; type = \"door\"; }"),
     "test.cfg:3: unit_id 1 is already used by 'H' (line 2)"},
    {DEVS(H("pressure = 1.7;")), "pressure must be 0..1.6 MPa"},
    {DEVS(H("pressure = -0.1;")), "pressure must be 0..1.6 MPa"},
    {DEVS(H("pressure = \"high\";")), "pressure must be a number"},
    {DEVS(H("noise = 0.6;")), "noise must be 0..0.5 MPa"},
    {DEVS(H("noise = -0.1;")), "noise must be 0..0.5 MPa"},
    {DEVS(D("battery = 101;")), "battery must be 0..100, not 101"},
    {DEVS(D("state = \"ajar\";")), "state must be one of closed | open | locked, not 'ajar'"},
    {DEVS(D("fault = \"wire_break\";")), "fault 'wire_break' needs a 4-20 mA device"},
    {DEVS(R("fault = \"short_circuit\";")), "fault 'short_circuit' needs a 4-20 mA device"},
    {DEVS(H("fault = \"smoke\";")), "fault must be one of none | silent"},
    {DEVS(R("size = 0;")), "size must be 1..65536"},
    {DEVS(R("size = 1; holding = [1, 2];")), "holding has 2 values but size is 1"},
    {DEVS(R("holding = [65536];")), "holding must be 0..65535, not 65536"},
    {DEVS(R("holding = [-1];")), "holding must be 0..65535"},
    {DEVS(R("holding = [1.5];")), "holding must be an integer"},
    {DEVS(R("coils = [2];")), "coils must be 0..1, not 2"},
    {DEVS(R("discrete = 1;")), "discrete must be a list of values"},
    {SCRIPT("{ at_s = 1; device = \"nobody\"; fault = \"none\"; }"),
     "test.cfg:7: no device named 'nobody'"},
    {SCRIPT("{ device = \"H\"; fault = \"none\"; }"), "test.cfg:7: script event: at_s is required"},
    {SCRIPT("{ at_s = 1; fault = \"none\"; }"), "script event: device is required"},
    {SCRIPT("{ at_s = -1; device = \"H\"; fault = \"none\"; }"), "at_s must be 0..1e9 seconds"},
    {SCRIPT("{ at_s = \"soon\"; device = \"H\"; fault = \"none\"; }"), "at_s must be a number"},
    {SCRIPT("{ at_s = 1; device = \"H\"; }"), "test.cfg:7: script event changes nothing"},
    {SCRIPT("{ at_s = 1; device = \"H\"; when = 3; fault = \"none\"; }"),
     "script event: unknown key 'when'"},
    {SCRIPT("1"), "a script event must be a group"},
    {SCRIPT("{ at_s = 1; device = \"D\"; pressure = 0.1; }"),
     "pressure applies to hydrant_4_20 devices; 'D' is a door"},
    {SCRIPT("{ at_s = 1; device = \"H\"; state = \"open\"; }"),
     "state applies to door and door_lora devices; 'H' is a hydrant_4_20"},
    {SCRIPT("{ at_s = 1; device = \"R\"; battery = 5; }"),
     "battery applies to door, smoke and door_lora devices"},
    {SCRIPT("{ at_s = 1; device = \"H\"; fault = \"replay\"; }"),
     "test.cfg:7: fault 'replay' applies to LoRa devices"},
    {SCRIPT("{ at_s = 1; device = \"D\"; smoke = true; }"), "smoke applies to smoke devices"},
    {SCRIPT("{ at_s = 1; device = \"D\"; test = true; }"), "test applies to smoke devices"},
    {SCRIPT("{ at_s = 1; device = \"R\"; payload = \"01\"; }"),
     "payload applies to raw_lora devices"},
    {SCRIPT("{ at_s = 1; device = \"H\"; pressure = 2.0; }"), "pressure must be 0..1.6 MPa"},
    {SCRIPT("{ at_s = 1; device = \"D\"; state = \"ajar\"; }"), "state must be one of"},
    {SCRIPT("{ at_s = 1; device = \"D\"; battery = -1; }"), "battery must be 0..100"},
    {SCRIPT("{ at_s = 1; device = \"D\"; fault = \"wire_break\"; }"), "needs a 4-20 mA device"},
    {SCRIPT("{ at_s = 1; device = \"H\"; holding = { address = 0; value = 1; }; }"),
     "holding writes apply to registers devices only; 'H' is a hydrant_4_20"},
    {SCRIPT("{ at_s = 1; device = \"R\"; holding = { address = 3; values = [1, 2]; }; }"),
     "test.cfg:7: holding[3..4] is outside R's table of 4"},
    {SCRIPT("{ at_s = 1; device = \"R\"; input = { address = 4; value = 1; }; }"),
     "input[4..4] is outside R's table of 4"},
    {SCRIPT("{ at_s = 1; device = \"R\"; holding = { value = 1; }; }"),
     "holding: address is required"},
    {SCRIPT("{ at_s = 1; device = \"R\"; holding = { address = 0; }; }"),
     "holding: give either value or values"},
    {SCRIPT("{ at_s = 1; device = \"R\"; holding = { address = 0; value = 1; values = [1]; }; }"),
     "holding: give either value or values"},
    {SCRIPT("{ at_s = 1; device = \"R\"; holding = { address = 0; values = []; }; }"),
     "values must not be empty"},
    {SCRIPT("{ at_s = 1; device = \"R\"; holding = { address = 0; value = 70000; }; }"),
     "value must be 0..65535"},
    {SCRIPT("{ at_s = 1; device = \"R\"; coils = { address = 0; value = 2; }; }"),
     "value must be 0..1"},
    {SCRIPT("{ at_s = 1; device = \"R\"; holding = { address = -1; value = 1; }; }"),
     "address must be 0..65535"},
    {SCRIPT("{ at_s = 1; device = \"R\"; holding = { address = 0; value = 1; x = 1; }; }"),
     "holding: unknown key 'x'"},
    {SCRIPT("{ at_s = 1; device = \"R\"; holding = [1]; }"), "holding must be a group"},
    {"repeat_s = 10;\n" SCRIPT("{ at_s = 10; device = \"H\"; fault = \"none\"; }"),
     "test.cfg:8: at_s must be below repeat_s (10 s)"},
    {"repeat_s = 0.5;\n" SCRIPT("{ at_s = 0; device = \"H\"; fault = \"none\"; }"),
     "test.cfg:1: repeat_s must be 0 (run once) or at least 1"},
    {"repeat_s = 10;\n" STD, "test.cfg:1: repeat_s without a script"},
    {STD "script = { };\n", "script must be a list"},
};

static void test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        char *errs = NULL;
        struct gw_scenario *sc = parse(c->text, &errs);
        if (sc != NULL) {
            gw_scenario_free(sc);
            fail_msg("case %zu accepted, want '%s':\n%s", i, c->want, c->text);
        }
        if (strstr(errs, c->want) == NULL) {
            fail_msg("case %zu: want '%s' in:\n%s", i, c->want, errs);
        }
        free(errs);
    }
}

/* The good scenario must stay good with NULL errors, and every error must be reported. */
static void test_all_errors_reported(void **state)
{
    (void)state;
    char *errs = NULL;
    struct gw_scenario *sc = parse(
        DEVS(H("pressure = 9;") ",\n" D("battery = 200;") ",\n" R("coils = [3];")) "bogus = 1;\n",
        &errs);
    assert_null(sc);
    int lines = 0;
    for (const char *p = errs; *p; p++) {
        lines += *p == '\n';
    }
    EXPECT_INT("errors", lines, 4);
    assert_non_null(strstr(errs, "test.cfg:2: pressure"));
    assert_non_null(strstr(errs, "test.cfg:3: battery"));
    assert_non_null(strstr(errs, "test.cfg:4: coils"));
    assert_non_null(strstr(errs, "test.cfg:6: scenario: unknown key 'bogus'"));
    free(errs);
    assert_null(gw_scenario_parse("x = 1;", "test.cfg", NULL));
}

/* ---- files ---------------------------------------------------------------------------- */

static void demo_path(char *demo, size_t size)
{
    const char *data = getenv("GW_TEST_DATA");
    if (data != NULL) {
        snprintf(demo, size, "%s/../../../config/demo-scenario.cfg", data);
    } else {
        snprintf(demo, size, "%s", __FILE__);
        char *slash = strstr(demo, "tests/unit/test_scenario.c");
        assert_non_null(slash);
        strcpy(slash, "config/demo-scenario.cfg");
    }
}

static void test_files(void **state)
{
    (void)state;
    char *errs = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&errs, &size);
    assert_null(gw_scenario_load("/nonexistent/scenario.cfg", f));
    fclose(f);
    assert_non_null(strstr(errs, "/nonexistent/scenario.cfg:0: cannot read"));
    free(errs);

    /* Errors in a file name the file. */
    char path[] = "/tmp/test_scenario_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] =
        "devices = (\n { name = \"D\"; unit_id = 2; type = \"door\"; x = 1; }\n);\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    errs = NULL;
    f = open_memstream(&errs, &size);
    assert_null(gw_scenario_load(path, f));
    fclose(f);
    char want[128];
    snprintf(want, sizeof(want), "%s:2: door: unknown key 'x'", path);
    if (strstr(errs, want) == NULL) {
        fail_msg("want '%s' in %s", want, errs);
    }
    free(errs);
    unlink(path);

    /* The demo school shipped in config/ must load and keep its promises. */
    char demo[1024];
    demo_path(demo, sizeof(demo));
    struct gw_scenario *sc = gw_scenario_load(demo, stderr);
    assert_non_null(sc);
    const int units[] = {1, 2, 3, 11, 12};
    const char *names[] = {"A-1F-hydrant-01", "A-2F-hydrant-02", "B-1F-hydrant-03",
                           "A-1F-exit-east", "B-1F-exit-main"};
    for (int i = 0; i < 5; i++) {
        struct gw_sim_device *d = gw_scenario_device(sc, units[i]);
        assert_non_null(d);
        assert_string_equal(d->name, names[i]);
        if (d->type == GW_SIM_HYDRANT) {
            assert_true(d->init.pressure >= 0.3 && d->init.pressure <= 0.5);
        }
    }
    assert_int_equal(sc->repeat_ms, 180000);
    assert_string_equal(sc->listen_host, "127.0.0.1");
    gw_scenario_advance(sc, 45000, NULL, NULL);
    assert_int_equal(gw_scenario_device(sc, 1)->tables.holding[0], 4200); /* 0.02 MPa by 45 s */
    gw_scenario_advance(sc, 55000, NULL, NULL);
    assert_int_equal(gw_scenario_device(sc, 12)->tables.holding[0], GW_SIM_DOOR_LOCKED);
    gw_scenario_advance(sc, 75000, NULL, NULL);
    assert_int_equal(gw_scenario_device(sc, 3)->cur.fault, GW_SIM_FAULT_SILENT);
    gw_scenario_advance(sc, 125000, NULL, NULL);
    assert_int_equal(gw_scenario_device(sc, 3)->cur.fault, GW_SIM_FAULT_NONE);
    gw_scenario_advance(sc, 181000, NULL, NULL);
    assert_int_equal(gw_scenario_device(sc, 1)->tables.holding[0], gw_sim_hydrant_raw(0.45));
    assert_int_equal(gw_scenario_device(sc, 12)->tables.holding[0], GW_SIM_DOOR_CLOSED);
    gw_scenario_free(sc);
}

/* ---- the script over time ---------------------------------------------------------------- */

struct lines {
    char text[4096];
    int n;
};

static void collect(void *ud, const char *line)
{
    struct lines *l = ud;
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof(l->text) - len, "%s\n", line);
    l->n++;
}

struct step {
    int64_t now_ms;
    int want_applied;
    const char *want_lines; /* exactly, in order */
    int64_t want_next;
    uint16_t want_h0; /* H's holding[0] afterwards */
    uint16_t want_r2; /* R's holding[2] afterwards */
    int want_r_fault;
};

static void test_timeline(void **state)
{
    (void)state;
    char *errs = NULL;
    struct gw_scenario *sc = parse(good, &errs);
    assert_non_null(sc);
    free(errs);
    static const struct step steps[] = {
        {-1, 0, "", 0, 8500, 0, GW_SIM_FAULT_EXCEPTION},
        {0, 1, "t=0s hydrant H unit=3 fault -> wire_break (raw 0)\n", 5500, 0, 0,
         GW_SIM_FAULT_EXCEPTION},
        {5499, 0, "", 5500, 0, 0, GW_SIM_FAULT_EXCEPTION},
        {5500, 1, "t=5.5s door D unit=5 state -> locked, battery -> 10 %\n", 20000, 0, 0,
         GW_SIM_FAULT_EXCEPTION},
        {20000, 2,
         "t=20s hydrant H unit=3 pressure -> 0.02 MPa (raw 4200)\n"
         "t=20s registers R unit=247 fault -> none, holding[2..3] -> 16672 0, coils[3] -> 1\n",
         60000, 0, 16672, GW_SIM_FAULT_NONE},
        {59999, 0, "", 60000, 0, 16672, GW_SIM_FAULT_NONE},
        /* The repeat resets every device, then the t=0 event of cycle 2 runs at once. */
        {60000, 1,
         "t=60s script repeats (cycle 2), devices reset\n"
         "t=60s hydrant H unit=3 fault -> wire_break (raw 0)\n",
         65500, 0, 0, GW_SIM_FAULT_EXCEPTION},
        /* A long jump runs everything in between, in order. */
        {125600, 5,
         "t=65.5s door D unit=5 state -> locked, battery -> 10 %\n"
         "t=80s hydrant H unit=3 pressure -> 0.02 MPa (raw 4200)\n"
         "t=80s registers R unit=247 fault -> none, holding[2..3] -> 16672 0, coils[3] -> 1\n"
         "t=120s script repeats (cycle 3), devices reset\n"
         "t=120s hydrant H unit=3 fault -> wire_break (raw 0)\n"
         "t=125.5s door D unit=5 state -> locked, battery -> 10 %\n",
         140000, 0, 0, GW_SIM_FAULT_EXCEPTION},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const struct step *s = &steps[i];
        struct lines l = {.n = 0};
        int n = gw_scenario_advance(sc, s->now_ms, collect, &l);
        char what[32];
        snprintf(what, sizeof(what), "step %zu", i);
        EXPECT_INT(what, n, s->want_applied);
        if (strcmp(l.text, s->want_lines) != 0) {
            fail_msg("%s: lines\n%s\nwant\n%s", what, l.text, s->want_lines);
        }
        EXPECT_INT(what, gw_scenario_next_due_ms(sc), s->want_next);
        EXPECT_INT(what, gw_scenario_device(sc, 3)->tables.holding[0], s->want_h0);
        EXPECT_INT(what, gw_scenario_device(sc, 247)->tables.holding[2], s->want_r2);
        EXPECT_INT(what, gw_scenario_device(sc, 247)->cur.fault, s->want_r_fault);
    }
    /* Door state after the last step: locked, battery 10. */
    struct gw_sim_device *d = gw_scenario_device(sc, 5);
    assert_int_equal(d->tables.holding[0], GW_SIM_DOOR_LOCKED);
    assert_int_equal(d->tables.holding[1], 10);
    /* start() rewinds everything. */
    gw_scenario_start(sc, 1);
    assert_int_equal(gw_scenario_next_due_ms(sc), 0);
    assert_int_equal(d->tables.holding[0], GW_SIM_DOOR_OPEN);
    assert_int_equal(gw_scenario_device(sc, 3)->tables.holding[0], 8500);
    assert_int_equal(gw_scenario_device(sc, 247)->tables.holding[2], 0);
    assert_int_equal(gw_scenario_device(sc, 247)->tables.coils[3], 0);
    gw_scenario_free(sc);
}

static void test_run_once(void **state)
{
    (void)state;
    char *errs = NULL;
    struct gw_scenario *sc =
        parse(DEVS(H("") ",\n" R("holding = [0];")) "script = (\n"
                                                    "{ at_s = 1; device = \"H\"; fault = "
                                                    "\"short_circuit\"; },\n"
                                                    "{ at_s = 2; device = \"H\"; fault = \"none\"; "
                                                    "pressure = 1.6; },\n"
                                                    "{ at_s = 3; device = \"R\"; holding = { "
                                                    "address = 0; value = 9; }; }\n);\n",
              &errs);
    if (sc == NULL) {
        fail_msg("%s", errs);
    }
    free(errs);
    struct gw_sim_device *h = gw_scenario_device(sc, 1);
    struct lines l = {.n = 0};
    assert_int_equal(gw_scenario_advance(sc, 1000, collect, &l), 1);
    assert_int_equal(h->tables.holding[0], GW_SIM_HYDRANT_RAW_SHORT);
    assert_int_equal(h->tables.holding[1], 1600);
    assert_int_equal(gw_scenario_advance(sc, 2000, collect, &l), 1);
    assert_int_equal(h->tables.holding[0], 20000);
    assert_int_equal(h->tables.holding[1], 1600);
    assert_int_equal(gw_scenario_advance(sc, 3000, collect, &l), 1);
    assert_string_equal(l.text, "t=1s hydrant H unit=1 fault -> short_circuit (raw 22000)\n"
                                "t=2s hydrant H unit=1 fault -> none, pressure -> 1.60 MPa (raw "
                                "20000)\n"
                                "t=3s registers R unit=3 holding[0] -> 9\n");
    assert_int_equal(gw_scenario_next_due_ms(sc), -1);
    assert_int_equal(gw_scenario_advance(sc, INT64_MAX / 2, collect, &l), 0);
    assert_int_equal(l.n, 3);
    gw_scenario_free(sc);
}

/* ---- values, requests, frames --------------------------------------------------------------- */

static void test_hydrant_raw(void **state)
{
    (void)state;
    static const struct {
        double mpa;
        uint16_t raw;
    } cases[] = {
        {0.0, 4000},    {1.6, 20000}, {0.8, 12000}, {0.45, 8500},   {0.02, 4200},
        {0.0001, 4001}, {-1.0, 4000}, {2.0, 20000}, {1e300, 20000}, {-1e300, 4000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EXPECT_INT("raw", gw_sim_hydrant_raw(cases[i].mpa), cases[i].raw);
    }
    EXPECT_INT("raw of NaN", gw_sim_hydrant_raw(NAN), 4000);
}

static void test_requests(void **state)
{
    (void)state;
    char *errs = NULL;
    struct gw_scenario *sc = parse(DEVS(H("") ",\n" D("") ",\n" R("holding = [0];")), &errs);
    assert_non_null(sc);
    free(errs);
    struct gw_sim_device *h = gw_scenario_device(sc, 1);
    struct gw_sim_device *d = gw_scenario_device(sc, 2);
    struct gw_sim_device *r = gw_scenario_device(sc, 3);
    static const struct {
        int dev; /* 0: none, 1: H, 2: D, 3: R */
        enum gw_sim_fault fault;
        int function;
        enum gw_sim_action want;
        int want_exception;
    } cases[] = {
        {0, GW_SIM_FAULT_NONE, 3, GW_SIM_SILENT, 0},
        {1, GW_SIM_FAULT_NONE, 3, GW_SIM_REPLY, 0},
        {1, GW_SIM_FAULT_NONE, 4, GW_SIM_REPLY, 0},
        {1, GW_SIM_FAULT_NONE, 1, GW_SIM_REPLY, 0},    /* libmodbus answers exception 2 itself */
        {1, GW_SIM_FAULT_NONE, 0x2B, GW_SIM_REPLY, 0}, /* unknown: libmodbus says exception 1 */
        {1, GW_SIM_FAULT_NONE, 6, GW_SIM_EXCEPTION, 1},
        {1, GW_SIM_FAULT_NONE, 16, GW_SIM_EXCEPTION, 1},
        {1, GW_SIM_FAULT_NONE, 5, GW_SIM_EXCEPTION, 1},
        {1, GW_SIM_FAULT_NONE, 15, GW_SIM_EXCEPTION, 1},
        {1, GW_SIM_FAULT_NONE, 22, GW_SIM_EXCEPTION, 1},
        {1, GW_SIM_FAULT_NONE, 23, GW_SIM_EXCEPTION, 1},
        {2, GW_SIM_FAULT_NONE, 6, GW_SIM_EXCEPTION, 1},
        {3, GW_SIM_FAULT_NONE, 6, GW_SIM_REPLY, 0},
        {3, GW_SIM_FAULT_NONE, 16, GW_SIM_REPLY, 0},
        {1, GW_SIM_FAULT_WIRE_BREAK, 3, GW_SIM_REPLY, 0},
        {1, GW_SIM_FAULT_SHORT_CIRCUIT, 3, GW_SIM_REPLY, 0},
        {1, GW_SIM_FAULT_SILENT, 3, GW_SIM_SILENT, 0},
        {1, GW_SIM_FAULT_SILENT, 6, GW_SIM_SILENT, 0},
        {2, GW_SIM_FAULT_EXCEPTION, 3, GW_SIM_EXCEPTION, 2},
        {2, GW_SIM_FAULT_EXCEPTION, 6, GW_SIM_EXCEPTION, 2},
        {3, GW_SIM_FAULT_GARBAGE, 3, GW_SIM_GARBAGE, 0},
        {3, GW_SIM_FAULT_EXCEPTION, 16, GW_SIM_EXCEPTION, 2},
    };
    struct gw_sim_device *devs[] = {NULL, h, d, r};
    uint64_t counted[4] = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gw_sim_device *dev = devs[cases[i].dev];
        if (dev != NULL) {
            dev->cur.fault = cases[i].fault;
            counted[cases[i].dev]++;
        }
        int exc = -1;
        char what[32];
        snprintf(what, sizeof(what), "request case %zu", i);
        EXPECT_INT(what, gw_scenario_request(sc, dev, cases[i].function, &exc), cases[i].want);
        EXPECT_INT(what, exc, cases[i].want_exception);
    }
    for (int i = 1; i < 4; i++) {
        EXPECT_INT("requests counted", devs[i]->requests, counted[i]);
    }
    gw_scenario_free(sc);
}

static void test_noise(void **state)
{
    (void)state;
    char *errs = NULL;
    struct gw_scenario *sc = parse(DEVS(H("pressure = 0.5; noise = 0.01;")), &errs);
    assert_non_null(sc);
    free(errs);
    struct gw_sim_device *h = gw_scenario_device(sc, 1);
    uint16_t first[50];
    int exc;
    int distinct = 0;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(gw_scenario_request(sc, h, 3, &exc), GW_SIM_REPLY);
        first[i] = h->tables.holding[0];
        /* +-0.01 MPa is +-100 raw around 9000; kPa follows the same sample */
        assert_true(first[i] >= 8900 && first[i] <= 9100);
        assert_true(h->tables.holding[1] >= 490 && h->tables.holding[1] <= 510);
        distinct += i > 0 && first[i] != first[i - 1];
    }
    assert_true(distinct > 25);
    /* Same seed, same sequence; another seed, another one. */
    gw_scenario_start(sc, 1);
    for (int i = 0; i < 50; i++) {
        gw_scenario_request(sc, h, 3, &exc);
        EXPECT_INT("replay", h->tables.holding[0], first[i]);
    }
    gw_scenario_start(sc, 2);
    int same = 0;
    for (int i = 0; i < 50; i++) {
        gw_scenario_request(sc, h, 3, &exc);
        same += h->tables.holding[0] == first[i];
    }
    assert_true(same < 25);
    /* Noise never leaves the span: at 0 MPa it clamps to raw 4000. */
    h->cur.pressure = 0.0;
    for (int i = 0; i < 50; i++) {
        gw_scenario_request(sc, h, 3, &exc);
        assert_true(h->tables.holding[0] >= 4000 && h->tables.holding[0] <= 4100);
        assert_true(h->tables.holding[1] <= 10);
    }
    /* A wire break is not noisy. */
    h->cur.fault = GW_SIM_FAULT_WIRE_BREAK;
    gw_scenario_request(sc, h, 3, &exc);
    assert_int_equal(h->tables.holding[0], 0);
    gw_scenario_free(sc);
}

static void test_garbage(void **state)
{
    (void)state;
    char *errs = NULL;
    struct gw_scenario *sc = parse(DEVS(H("")), &errs);
    assert_non_null(sc);
    free(errs);
    for (int fn = 0; fn < 256; fn++) {
        const uint8_t req[12] = {0xAB, 0xCD, 0, 0, 0, 6, 0x11, (uint8_t)fn, 0, 0, 0, 2};
        uint8_t out[9];
        assert_int_equal(gw_scenario_garbage(sc, req, out), 9);
        assert_int_equal(out[0], 0xAB); /* transaction id echoed */
        assert_int_equal(out[1], 0xCD);
        assert_int_equal(out[2], 0); /* protocol 0 */
        assert_int_equal(out[3], 0);
        assert_int_equal(out[4], 0); /* length = what follows it */
        assert_int_equal(out[5], 3);
        assert_int_equal(out[6], 0x11);
        assert_true(out[7] >= 25 && out[7] <= 42); /* unassigned function codes */
        assert_int_not_equal(out[7], fn);
        assert_int_equal(gw_sim_tcp_frame(out, sizeof(out)), 9);
    }
    gw_scenario_free(sc);
}

static void test_tcp_frame(void **state)
{
    (void)state;
    static const struct {
        uint8_t buf[16];
        size_t len;
        int want;
    } cases[] = {
        {{0}, 0, 0},
        {{0, 1, 0}, 3, 0},
        {{0, 1, 0, 1}, 4, -EPROTO},                           /* protocol id 1 */
        {{0, 1, 1, 0}, 4, -EPROTO},                           /* protocol id 256 */
        {{0, 1, 0, 0, 0}, 5, 0},                              /* length not complete */
        {{0, 1, 0, 0, 0, 6}, 6, 0},                           /* header only */
        {{0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0}, 11, 0},           /* one byte short */
        {{0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2}, 12, 12},       /* exactly one request */
        {{0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2, 0, 2}, 14, 12}, /* and the next one's start */
        {{0, 1, 0, 0, 0, 1}, 6, -EPROTO},                     /* no function code */
        {{0, 1, 0, 0, 0, 0}, 6, -EPROTO},
        {{0, 1, 0, 0, 0, 2, 1, 3}, 8, 8}, /* shortest: unit + function */
        {{0, 1, 0, 0, 0, 255}, 6, -EPROTO},
        {{0, 1, 0, 0, 1, 0}, 6, -EPROTO},
        {{0, 1, 0, 0, 0, 254}, 6, 0}, /* longest allowed: 260 bytes in all */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "frame case %zu", i);
        EXPECT_INT(what, gw_sim_tcp_frame(cases[i].buf, cases[i].len), cases[i].want);
    }
    uint8_t big[260] = {0, 1, 0, 0, 0, 254, 1, 16};
    EXPECT_INT("260-byte frame", gw_sim_tcp_frame(big, sizeof(big)), 260);
}

static void test_pdu_length(void **state)
{
    (void)state;
    static const struct {
        uint8_t pdu[16];
        size_t n;
        bool want;
    } cases[] = {
        {{3}, 0, false},
        {{3, 0, 0, 0, 2}, 5, true},
        {{3, 0, 0, 0}, 4, false},
        {{3, 0, 0, 0, 2, 0}, 6, false},
        {{1, 0, 0, 0, 8}, 5, true},
        {{2, 0, 0, 0, 8}, 5, true},
        {{4, 0, 0, 0, 8}, 5, true},
        {{5, 0, 0, 0xFF, 0}, 5, true},
        {{6, 0, 0, 0, 1}, 5, true},
        {{16, 0, 0, 0, 1, 2, 0, 5}, 8, true},
        {{16, 0, 0, 0, 1, 2, 0}, 7, false},    /* byte count says 2, one given */
        {{16, 0, 0, 0, 1, 4, 0, 5}, 8, false}, /* byte count says 4 */
        {{16, 0, 0, 0, 1}, 5, false},
        {{15, 0, 0, 0, 3, 1, 5}, 7, true},
        {{22, 0, 0, 0xFF, 0, 0, 1}, 7, true},
        {{22, 0, 0, 0xFF, 0, 0}, 6, false},
        {{23, 0, 0, 0, 1, 0, 0, 0, 1, 2, 0, 7}, 12, true},
        {{23, 0, 0, 0, 1, 0, 0, 0, 1, 2, 0}, 11, false},
        {{23, 0, 0, 0, 1, 0, 0, 0, 1}, 9, false},
        {{0x11}, 1, true},             /* report slave id */
        {{0x2B, 0x0E, 1, 0}, 4, true}, /* unknown to the check: passes */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "pdu case %zu", i);
        EXPECT_INT(what, gw_sim_pdu_length_ok(cases[i].pdu, cases[i].n), cases[i].want);
    }
}

static void test_listen(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        const char *host;
        int port;
    } cases[] = {
        {"127.0.0.1:1502", 0, "127.0.0.1", 1502},
        {"0.0.0.0:502", 0, "0.0.0.0", 502},
        {"127.0.0.1:0", 0, "127.0.0.1", 0},
        {"10.1.2.3:65535", 0, "10.1.2.3", 65535},
        {"127.0.0.1:65536", -EINVAL, NULL, 0},
        {"127.0.0.1:-1", -EINVAL, NULL, 0},
        {"127.0.0.1:", -EINVAL, NULL, 0},
        {"127.0.0.1:15x", -EINVAL, NULL, 0},
        {":1502", -EINVAL, NULL, 0},
        {"127.0.0.1", -EINVAL, NULL, 0},
        {"localhost:1502", -EINVAL, NULL, 0},
        {"[::1]:1502", -EINVAL, NULL, 0},
        {"256.0.0.1:1502", -EINVAL, NULL, 0},
        {"", -EINVAL, NULL, 0},
        {"1111111111111111111111111111:1", -EINVAL, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *host = NULL;
        int port = -7;
        char what[48];
        snprintf(what, sizeof(what), "listen '%s'", cases[i].s);
        EXPECT_INT(what, gw_sim_parse_listen(cases[i].s, &host, &port), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_string_equal(host, cases[i].host);
            EXPECT_INT(what, port, cases[i].port);
        } else {
            assert_null(host);
            EXPECT_INT(what, port, -7);
        }
        free(host);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(gw_sim_type_name(GW_SIM_HYDRANT), "hydrant_4_20");
    assert_string_equal(gw_sim_type_name(GW_SIM_REGISTERS), "registers");
    assert_string_equal(gw_sim_type_name((enum gw_sim_type)9), "?");
    assert_string_equal(gw_sim_fault_name(GW_SIM_FAULT_GARBAGE), "garbage");
    assert_string_equal(gw_sim_fault_name(GW_SIM_FAULT_SHORT_CIRCUIT), "short_circuit");
    assert_string_equal(gw_sim_fault_name((enum gw_sim_fault) - 1), "?");
    assert_string_equal(gw_sim_door_name(GW_SIM_DOOR_LOCKED), "locked");
    assert_string_equal(gw_sim_table_name(GW_SIM_DISCRETE), "discrete");
    gw_scenario_free(NULL);
}

/* ---- LoRaWAN devices and forwarders ------------------------------------------------------ */

#define K1 "\"000102030405060708090A0B0C0D0E0F\""
#define K2 "\"101112131415161718191A1B1C1D1E1F\""
/* One line: a scenario with it puts `devices = (` on line 2 and the first device on line 3. */
#define LORA_SEC                                                                                   \
    "lora = { forward_to = \"127.0.0.1:1799\"; forwarders = ( { eui = \"AA555A0000000001\"; }, { " \
    "eui = \"aa555a0000000002\"; rssi_offset = -8; snr_offset = -2; } ); protocol_version = 1; "   \
    "stat_interval_s = 20; keepalive_s = 5; };\n"
#define LDEV(name, type, addr, extra)                                                              \
    "{ name = \"" name "\"; type = \"" type "\"; dev_addr = \"" addr "\"; nwk_s_key = " K1         \
    "; app_s_key = " K2 "; " extra " }"
#define SMOKE(extra) LDEV("S", "smoke", "26011BDA", extra)
#define DOORL(extra) LDEV("L", "door_lora", "26011BDB", extra)
#define RAWL(extra) LDEV("W", "raw_lora", "26011BDC", extra)
#define LDEVS(...) LORA_SEC DEVS(__VA_ARGS__)
/* LSTD's devices sit on lines 3..5; a script after it starts on line 7, its first event line 8. */
#define LSTD LDEVS(SMOKE("") ",\n" DOORL("") ",\n" H(""))
#define LSCRIPT(...) LSTD "script = (\n" __VA_ARGS__ "\n);\n"

static const uint8_t key1[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t key2[16] = {16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static struct gw_scenario *parse_ok(const char *text)
{
    char *errs = NULL;
    struct gw_scenario *sc = parse(text, &errs);
    if (sc == NULL) {
        fail_msg("rejected:\n%s\n%s", errs, text);
    }
    free(errs);
    return sc;
}

static struct gw_sim_device *by_name(struct gw_scenario *sc, const char *name)
{
    for (int i = 0; i < sc->ndevices; i++) {
        if (strcmp(sc->devices[i].name, name) == 0) {
            return &sc->devices[i];
        }
    }
    fail_msg("no device %s", name);
    return NULL;
}

static void test_lora_parse(void **state)
{
    (void)state;
    struct gw_scenario *sc =
        parse_ok(LDEVS(SMOKE("every_s = 30; fport = 7; fcnt = 65535; heard_by = [1]; "
                             "rssi = -97.5; snr = "
                             "-3; sf = 10; battery = 42; smoke = true; fault = "
                             "\"silent\";") ",\n" DOORL("state = \"locked\"; battery "
                                                        "= 5;") ",\n" RAWL("payload = "
                                                                           "\"00ff10\""
                                                                           ";") ","
                                                                                "\n" H("")));
    const struct gw_sim_lora *l = &sc->lora;
    assert_true(l->present);
    assert_string_equal(l->forward_host, "127.0.0.1");
    assert_int_equal(l->forward_port, 1799);
    assert_int_equal(l->version, 1);
    assert_int_equal(l->stat_ms, 20000);
    assert_int_equal(l->keepalive_ms, 5000);
    assert_int_equal(l->nforwarders, 2);
    assert_int_equal(l->ndevices, 3);
    assert_true(l->fwd[0].eui == 0xAA555A0000000001ULL);
    assert_true(l->fwd[1].eui == 0xAA555A0000000002ULL);
    assert_true(l->fwd[0].rssi_offset == 0.0 && l->fwd[1].rssi_offset == -8.0);
    assert_true(l->fwd[1].snr_offset == -2.0);

    struct gw_sim_device *s = by_name(sc, "S");
    assert_int_equal(s->type, GW_SIM_SMOKE);
    assert_int_equal(s->unit_id, -1);
    assert_int_equal(s->lora.dev_addr, 0x26011BDA);
    assert_memory_equal(s->lora.nwk_s_key, key1, 16);
    assert_memory_equal(s->lora.app_s_key, key2, 16);
    assert_int_equal(s->lora.every_ms, 30000);
    assert_int_equal(s->lora.fport, 7);
    assert_int_equal(s->lora.fcnt_init, 65535);
    assert_int_equal(s->lora.fcnt, 65535);
    assert_int_equal(s->lora.heard_by, 2);
    assert_true(s->lora.rssi == -97.5 && s->lora.snr == -3.0);
    assert_int_equal(s->lora.sf, 10);
    assert_int_equal(s->init.battery, 42);
    assert_true(s->init.smoke);
    assert_int_equal(s->init.fault, GW_SIM_FAULT_SILENT);

    /* Defaults. */
    struct gw_sim_device *d = by_name(sc, "L");
    assert_int_equal(d->init.door, GW_SIM_DOOR_LOCKED);
    assert_int_equal(d->init.battery, 5);
    assert_int_equal(d->lora.every_ms, 60000);
    assert_int_equal(d->lora.fport, 1);
    assert_int_equal(d->lora.fcnt, 0);
    assert_int_equal(d->lora.heard_by, 3); /* every forwarder */
    assert_true(d->lora.rssi == -90.0 && d->lora.snr == 7.0);
    assert_int_equal(d->lora.sf, 7);
    struct gw_sim_device *w = by_name(sc, "W");
    assert_int_equal(w->init.payload_len, 3);
    assert_memory_equal(w->init.payload, "\x00\xff\x10", 3);
    /* A LoRa device has no unit id; the Modbus device still does. */
    assert_non_null(gw_scenario_device(sc, 1));
    assert_null(gw_scenario_device(sc, -1));
    gw_scenario_free(sc);

    /* lora section defaults */
    sc =
        parse_ok("lora = { forwarders = ( { eui = \"0000000000000001\"; } ); };\n" DEVS(SMOKE("")));
    assert_string_equal(sc->lora.forward_host, "127.0.0.1");
    assert_int_equal(sc->lora.forward_port, 1700);
    assert_int_equal(sc->lora.version, 2);
    assert_int_equal(sc->lora.stat_ms, 30000);
    assert_int_equal(sc->lora.keepalive_ms, 10000);
    gw_scenario_free(sc);

    /* A scenario without LoRa has no lora section and no LoRa timers. */
    sc = parse_ok(DEVS(H("")));
    assert_false(sc->lora.present);
    assert_int_equal(gw_scenario_lora_timer_ms(sc), -1);
    assert_false(gw_scenario_lora_pull_due(sc, 1000000));
    assert_int_equal(gw_scenario_lora_due_ms(sc), -1);
    struct gw_sim_uplink up;
    assert_int_equal(gw_scenario_lora_next(sc, 1000000, &up), 0);
    gw_scenario_free(sc);
}

static const struct bad_case lora_bad_cases[] = {
    {DEVS(SMOKE("")), "test.cfg:2: device S: a LoRa device needs a lora = {"},
    {"lora = 1;\n" DEVS(H("")), "test.cfg:1: lora must be a group"},
    {"lora = { forwarders = ( { eui = \"0000000000000001\"; } ); x = 1; };\n" DEVS(H("")),
     "test.cfg:1: lora: unknown key 'x'"},
    {"lora = { };\n" DEVS(H("")), "lora: forwarders = ( { eui"},
    {"lora = { forwarders = ( ); };\n" DEVS(H("")), "forwarders must have 1..8 entries, not 0"},
    {"lora = { forwarders = ( {eui=\"01\";},{eui=\"02\";},{eui=\"03\";},{eui=\"04\";},"
     "{eui=\"05\";},{eui=\"06\";},{eui=\"07\";},{eui=\"08\";},{eui=\"09\";} ); };\n" DEVS(H("")),
     "forwarders must have 1..8 entries, not 9"},
    {"lora = { forwarders = { eui = \"0000000000000001\"; }; };\n" DEVS(H("")),
     "forwarders must be a list"},
    {"lora = { forwarders = ( 1 ); };\n" DEVS(H("")), "a forwarder must be a group"},
    {"lora = { forwarders = ( { } ); };\n" DEVS(H("")), "forwarder 0: eui is required"},
    {"lora = { forwarders = ( { eui = \"AA555A00000000\"; } ); };\n" DEVS(H("")),
     "eui must be 16 hex digits like \"AA555A0000000001\", not 'AA555A00000000'"},
    {"lora = { forwarders = ( { eui = \"AA555A000000000G\"; } ); };\n" DEVS(H("")),
     "eui must be 16 hex digits"},
    {"lora = { forwarders = ( { eui = \"AA555A0000000001\"; }, { eui = \"aa555a0000000001\"; } "
     "); };\n" DEVS(H("")),
     "eui aa555a0000000001 is already used by forwarder 0"},
    {"lora = { forwarders = ( { eui = \"0000000000000001\"; color = 1; } ); };\n" DEVS(H("")),
     "forwarder: unknown key 'color'"},
    {"lora = { forwarders = ( { eui = \"0000000000000001\"; rssi_offset = -51; } ); };\n" DEVS(
         H("")),
     "rssi_offset must be -50..50 dB"},
    {"lora = { forwarders = ( { eui = \"0000000000000001\"; snr_offset = 31; } ); };\n" DEVS(H("")),
     "snr_offset must be -30..30 dB"},
    {"lora = { forward_to = \"127.0.0.1:0\"; forwarders = ( { eui = \"0000000000000001\"; } ); "
     "};\n" DEVS(H("")),
     "forward_to must be \"IPv4:PORT\" like \"127.0.0.1:1700\", not '127.0.0.1:0'"},
    {"lora = { forward_to = \"gw.local:1700\"; forwarders = ( { eui = \"0000000000000001\"; } ); "
     "};\n" DEVS(H("")),
     "forward_to must be"},
    {"lora = { forward_to = 1700; forwarders = ( { eui = \"0000000000000001\"; } ); };\n" DEVS(
         H("")),
     "forward_to must be a string"},
    {"lora = { protocol_version = 3; forwarders = ( { eui = \"0000000000000001\"; } ); };\n" DEVS(
         H("")),
     "protocol_version must be 1..2, not 3"},
    {"lora = { stat_interval_s = 0.5; forwarders = ( { eui = \"0000000000000001\"; } ); };\n" DEVS(
         H("")),
     "stat_interval_s must be at least 1"},
    {"lora = { keepalive_s = 0; forwarders = ( { eui = \"0000000000000001\"; } ); };\n" DEVS(H("")),
     "keepalive_s must be at least 1"},
    {LDEVS("{ name = \"S\"; type = \"smoke\"; nwk_s_key = " K1 "; app_s_key = " K2 "; }"),
     "test.cfg:3: device S: dev_addr is required"},
    {LDEVS(LDEV("S", "smoke", "26011BD", "")), "dev_addr must be 8 hex digits like"},
    {LDEVS(LDEV("S", "smoke", "26011BDAA", "")), "dev_addr must be 8 hex digits"},
    {LDEVS(SMOKE("") ",\n" LDEV("T", "door_lora", "26011bda", "")),
     "test.cfg:4: dev_addr 26011BDA is already used by 'S' (line 3)"},
    {LDEVS("{ name = \"S\"; type = \"smoke\"; dev_addr = \"26011BDA\"; app_s_key = " K2 "; }"),
     "device S: nwk_s_key is required (32 hex digits)"},
    {LDEVS("{ name = \"S\"; type = \"smoke\"; dev_addr = \"26011BDA\"; nwk_s_key = " K1 "; }"),
     "device S: app_s_key is required"},
    {LDEVS("{ name = \"S\"; type = \"smoke\"; dev_addr = \"26011BDA\"; nwk_s_key = " K1
           "; app_s_key = \"0011\"; }"),
     "test.cfg:3: app_s_key must be 32 hex digits"},
    {LDEVS(SMOKE("unit_id = 4;")), "test.cfg:3: smoke: 'unit_id' does not apply here"},
    {LDEVS(SMOKE("state = \"open\";")), "smoke: 'state' does not apply here"},
    {LDEVS(SMOKE("payload = \"00\";")), "smoke: 'payload' does not apply here"},
    {LDEVS(DOORL("smoke = true;")), "door_lora: 'smoke' does not apply here"},
    {LDEVS(RAWL("battery = 1;")), "raw_lora: 'battery' does not apply here"},
    {LDEVS(SMOKE("color = 1;")), "smoke: unknown key 'color'"},
    {DEVS(H("dev_addr = \"26011BDA\";")), "hydrant_4_20: 'dev_addr' does not apply here"},
    {LDEVS(SMOKE("every_s = 0.5;")), "every_s must be at least 1"},
    {LDEVS(SMOKE("fport = 0;")), "fport must be 1..223, not 0"},
    {LDEVS(SMOKE("fport = 224;")), "fport must be 1..223, not 224"},
    {LDEVS(SMOKE("fcnt = -1;")), "fcnt must be 0..4294967295"},
    {LDEVS(SMOKE("fcnt = 4294967296L;")), "fcnt must be 0..4294967295"},
    {LDEVS(SMOKE("sf = 6;")), "sf must be 7..12, not 6"},
    {LDEVS(SMOKE("sf = 13;")), "sf must be 7..12"},
    {LDEVS(SMOKE("rssi = 1;")), "rssi must be -150..0 dBm"},
    {LDEVS(SMOKE("rssi = -151;")), "rssi must be -150..0 dBm"},
    {LDEVS(SMOKE("snr = 21;")), "snr must be -30..20 dB"},
    {LDEVS(SMOKE("battery = 101;")), "battery must be 0..100"},
    {LDEVS(SMOKE("smoke = 1;")), "smoke must be true or false"},
    {LDEVS(DOORL("state = \"ajar\";")), "state must be one of closed | open | locked"},
    {LDEVS(RAWL("payload = \"0\";")), "payload must be hex bytes like \"01ff\""},
    {LDEVS(RAWL("payload = \"0g\";")), "payload must be hex bytes"},
    {LDEVS(RAWL("payload = 1;")), "payload must be a string"},
    {LDEVS(SMOKE("heard_by = [2];")), "test.cfg:3: heard_by must be 0..1, not 2"},
    {LDEVS(SMOKE("heard_by = [-1];")), "heard_by must be 0..1, not -1"},
    {LDEVS(SMOKE("heard_by = [1, 1];")), "heard_by names forwarder 1 twice"},
    {LDEVS(SMOKE("heard_by = [];")), "heard_by must not be empty"},
    {LDEVS(SMOKE("heard_by = 1;")), "heard_by must be a list"},
    {LDEVS(SMOKE("heard_by = [\"0\"];")), "heard_by must be an integer"},
    {LDEVS(SMOKE("fault = \"garbage\";")), "fault 'garbage' is a Modbus answer"},
    {LDEVS(SMOKE("fault = \"wire_break\";")), "needs a 4-20 mA device"},
    {LDEVS(SMOKE("fault = \"replay\";")),
     "fault 'replay' is a one-shot script action, not a starting state"},
    {LDEVS(SMOKE("fault = \"fcnt_reset\";")), "one-shot script action"},
    {LSCRIPT("{ at_s = 1; device = \"S\"; fault = \"exception\"; }"),
     "test.cfg:8: fault 'exception' is a Modbus answer"},
    {LSCRIPT("{ at_s = 1; device = \"S\"; test = false; }"),
     "test.cfg:8: test must be true (it presses the test button once)"},
    {LSCRIPT("{ at_s = 1; device = \"S\"; test = 1; }"), "test must be true or false"},
    {LSCRIPT("{ at_s = 1; device = \"S\"; smoke = \"yes\"; }"), "smoke must be true or false"},
    {LSCRIPT("{ at_s = 1; device = \"L\"; test = true; }"),
     "test applies to smoke devices; 'L' is a door_lora"},
    {LSCRIPT("{ at_s = 1; device = \"L\"; smoke = true; }"), "smoke applies to smoke devices"},
    {LSCRIPT("{ at_s = 1; device = \"S\"; state = \"open\"; }"), "state applies to door and"},
    {LSCRIPT("{ at_s = 1; device = \"S\"; pressure = 0.1; }"), "pressure applies to hydrant_4_20"},
    {LSCRIPT("{ at_s = 1; device = \"S\"; holding = { address = 0; value = 1; }; }"),
     "holding writes apply to registers devices only; 'S' is a smoke"},
    {LSCRIPT("{ at_s = 1; device = \"S\"; battery = 101; }"), "battery must be 0..100"},
    {LSCRIPT("{ at_s = 1; device = \"S\"; }"), "script event changes nothing"},
};

static void test_lora_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(lora_bad_cases) / sizeof(lora_bad_cases[0]); i++) {
        const struct bad_case *c = &lora_bad_cases[i];
        char *errs = NULL;
        struct gw_scenario *sc = parse(c->text, &errs);
        if (sc != NULL) {
            gw_scenario_free(sc);
            fail_msg("lora case %zu accepted, want '%s':\n%s", i, c->want, c->text);
        }
        if (strstr(errs, c->want) == NULL) {
            fail_msg("lora case %zu: want '%s' in:\n%s", i, c->want, errs);
        }
        free(errs);
    }
    /* A wrong key is reported without its value: keys stay out of logs. */
    char *errs = NULL;
    assert_null(parse(LDEVS("{ name = \"S\"; type = \"smoke\"; dev_addr = \"26011BDA\"; nwk_s_key "
                            "= \"SECRETSECRET\"; app_s_key = " K2 "; }"),
                      &errs));
    assert_non_null(strstr(errs, "nwk_s_key must be 32 hex digits"));
    assert_null(strstr(errs, "SECRET"));
    free(errs);
}

static void test_lora_payload(void **state)
{
    (void)state;
    struct gw_scenario *sc =
        parse_ok(LDEVS(SMOKE("battery = 97;") ",\n" DOORL("battery = 88;") ",\n" RAWL("")));
    struct gw_sim_device *s = by_name(sc, "S"), *d = by_name(sc, "L"), *w = by_name(sc, "W");
    static const struct {
        int dev; /* 0 smoke, 1 door_lora, 2 raw_lora */
        bool smoke;
        enum gw_sim_door_state door;
        int battery;
        const char *raw; /* hex */
        bool test;
        size_t want_len;
        uint8_t want[4];
    } cases[] = {
        {0, false, 0, 97, NULL, false, 2, {0x00, 97}},
        {0, true, 0, 97, NULL, false, 2, {0x01, 97}},
        {0, false, 0, 0, NULL, true, 2, {0x03, 0}}, /* test: smoke bit and test bit */
        {0, true, 0, 100, NULL, true, 2, {0x03, 100}},
        {1, false, GW_SIM_DOOR_CLOSED, 88, NULL, false, 2, {0, 88}},
        {1, false, GW_SIM_DOOR_OPEN, 88, NULL, false, 2, {1, 88}},
        {1, false, GW_SIM_DOOR_LOCKED, 7, NULL, true, 2, {2, 7}}, /* test means nothing here */
        {2, false, 0, 0, "", false, 0, {0}},
        {2, false, 0, 0, "deadbeef", false, 4, {0xde, 0xad, 0xbe, 0xef}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gw_sim_device *dev = cases[i].dev == 0 ? s : cases[i].dev == 1 ? d : w;
        dev->cur.smoke = cases[i].smoke;
        dev->cur.door = cases[i].door;
        dev->cur.battery = cases[i].battery;
        if (cases[i].raw != NULL) {
            assert_int_equal(gw_sim_parse_hex(cases[i].raw, dev->cur.payload, LW_MAX_PAYLOAD,
                                              &dev->cur.payload_len),
                             0);
        }
        uint8_t out[LW_MAX_PAYLOAD];
        char what[32];
        snprintf(what, sizeof(what), "payload case %zu", i);
        EXPECT_INT(what, gw_sim_lora_payload(dev, cases[i].test, out), cases[i].want_len);
        if (memcmp(out, cases[i].want, cases[i].want_len) != 0) {
            fail_msg("%s: %02x %02x", what, out[0], out[1]);
        }
    }
    gw_scenario_free(sc);
}

/* Check an uplink as a network server would: structure, MIC, decrypted payload. */
static bool frame_ok(const struct gw_sim_device *d, const struct gw_sim_uplink *up, uint8_t *plain,
                     size_t *plain_len)
{
    struct lw_frame f;
    assert_int_equal(lw_parse(up->phy, up->phy_len, &f), LW_OK);
    assert_int_equal(f.mtype, LW_UNCONFIRMED_UP);
    assert_int_equal(f.dev_addr, d->lora.dev_addr);
    assert_int_equal(f.fcnt16, (uint16_t)up->fcnt);
    assert_true(f.has_fport);
    assert_int_equal(f.fport, d->lora.fport);
    lw_crypt_payload(d->lora.app_s_key, f.dev_addr, up->fcnt, 0, f.frm_payload, f.frm_len, plain);
    *plain_len = f.frm_len;
    return lw_verify_mic(d->lora.nwk_s_key, &f, up->fcnt);
}

/* Every frame due at now_ms; *n gets how many. */
static void drain(struct gw_scenario *sc, int64_t now_ms, struct gw_sim_uplink *ups, int max,
                  int *n)
{
    *n = 0;
    while (*n < max && gw_scenario_lora_next(sc, now_ms, &ups[*n]) > 0) {
        (*n)++;
    }
    assert_int_equal(gw_scenario_lora_next(sc, now_ms, &ups[0]), 0); /* all drained */
}

static void test_lora_schedule(void **state)
{
    (void)state;
    struct gw_scenario *sc =
        parse_ok(LDEVS(SMOKE("every_s = 10; fcnt = 65534; battery = 50;") ",\n" DOORL(
            "every_s = 1.5;") ",\n" RAWL("every_s = 60; fault = \"silent\";")));
    struct gw_sim_device *s = by_name(sc, "S"), *d = by_name(sc, "L");
    struct gw_sim_uplink ups[8];
    int n;
    /* First frames shortly after start, staggered: 1 s, then 700 ms apart, or every_s if
     * that is sooner. The silent raw device sends nothing. */
    EXPECT_INT("first due", gw_scenario_lora_due_ms(sc), 1000);
    drain(sc, 999, ups, 8, &n);
    EXPECT_INT("before 1 s", n, 0);
    drain(sc, 1000, ups, 8, &n);
    EXPECT_INT("at 1 s", n, 1);
    assert_int_equal(ups[0].device, 0);
    assert_int_equal(ups[0].why, GW_SIM_UP_PERIODIC);
    EXPECT_INT("door's first", gw_scenario_lora_due_ms(sc), 1500);
    drain(sc, 1500, ups, 8, &n);
    EXPECT_INT("door at 1.5 s", n, 1);
    assert_int_equal(ups[0].device, 1);
    EXPECT_INT("next", gw_scenario_lora_due_ms(sc), 2400); /* raw at 1000 + 2 * 700 */
    drain(sc, 2400, ups, 8, &n);
    EXPECT_INT("silent raw", n, 0);
    EXPECT_INT("next", gw_scenario_lora_due_ms(sc), 3000);

    /* FCnt counts per device and rolls over 16 bits on air, 32 in the MIC. */
    static const struct {
        int64_t now;
        int want_frames;
        uint32_t want_s_fcnt; /* smoke's FCnt after */
    } steps[] = {
        {3000, 1, 65535},  /* door */
        {11000, 2, 65536}, /* smoke at 11 s; the door once: missed intervals are skipped */
        {12000, 1, 65536}, /* the door, on its own 1.5 s grid */
        {21000, 2, 65537},  {21000, 0, 65537}, /* nothing twice */
        {100000, 2, 65538}, /* a long stall: one frame each, missed intervals skipped */
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "schedule step %zu", i);
        drain(sc, steps[i].now, ups, 8, &n);
        EXPECT_INT(what, n, steps[i].want_frames);
        EXPECT_INT(what, s->lora.fcnt, steps[i].want_s_fcnt);
    }
    EXPECT_INT("after stall", s->lora.next_ms, 101000);
    EXPECT_INT("after stall", d->lora.next_ms, 100500);
    /* The smoke frame with FCnt 65537 (0x10001) says 1 on air and is signed with 65537. */
    uint8_t plain[LW_MAX_PAYLOAD];
    size_t len;
    drain(sc, 101000, ups, 8, &n);
    EXPECT_INT("101 s", n, 2); /* smoke first (file order), then the door due at 100.5 s */
    assert_int_equal(ups[0].device, 0);
    assert_int_equal(ups[1].device, 1);
    EXPECT_INT("fcnt", ups[0].fcnt, 65538);
    assert_true(frame_ok(s, &ups[0], plain, &len));
    EXPECT_INT("payload", len, 2);
    EXPECT_INT("payload", plain[0], 0x00);
    EXPECT_INT("payload", plain[1], 50);
    EXPECT_INT("uplinks", s->lora.uplinks, 5);
    gw_scenario_free(sc);
}

static void test_lora_faults(void **state)
{
    (void)state;
    struct gw_scenario *sc =
        parse_ok(LSCRIPT("{ at_s = 5; device = \"S\"; smoke = true; },\n"        /* 8 */
                         "{ at_s = 6; device = \"S\"; fault = \"replay\"; },\n"  /* 9 */
                         "{ at_s = 7; device = \"S\"; fault = \"bad_mic\"; },\n" /* 10 */
                         "{ at_s = 8; device = \"S\"; test = true; },\n"
                         "{ at_s = 9; device = \"S\"; fault = \"fcnt_reset\"; },\n"
                         "{ at_s = 10; device = \"S\"; fault = \"silent\"; },\n"
                         "{ at_s = 11; device = \"S\"; smoke = false; battery = 20; },\n"
                         "{ at_s = 12; device = \"S\"; test = true; },\n"
                         "{ at_s = 13; device = \"S\"; fault = \"bad_mic\"; },\n"
                         "{ at_s = 14; device = \"S\"; fault = \"replay\"; },\n"
                         "{ at_s = 15; device = \"S\"; fault = \"none\"; },\n"
                         "{ at_s = 16; device = \"L\"; fault = \"replay\"; state = \"open\"; },\n"
                         "{ at_s = 17; device = \"L\"; fault = \"replay\"; }"));
    struct gw_sim_device *s = by_name(sc, "S"), *d = by_name(sc, "L");
    s->lora.every_ms = 1000000; /* keep periodic frames out of the way */
    s->lora.next_ms = 1000000;
    d->lora.every_ms = 1000000;
    d->lora.next_ms = 1000000;
    static const struct {
        int64_t at;
        const char *line;
        int frames;
        int why;      /* of the last frame */
        int64_t fcnt; /* of the last frame */
        int mic_ok;   /* 1, 0, or -1: the same bytes as the frame before */
        int plain0;   /* payload byte 0 of the last frame, -1: do not look */
    } steps[] = {
        {5000, "t=5s smoke S dev_addr=26011BDA smoke -> true", 1, GW_SIM_UP_CHANGE, 0, 1, 0x01},
        {6000, "t=6s smoke S dev_addr=26011BDA fault -> replay", 1, GW_SIM_UP_REPLAY, 0, -1, -1},
        {7000, "t=7s smoke S dev_addr=26011BDA fault -> bad_mic", 1, GW_SIM_UP_CHANGE, 1, 0, 0x01},
        {8000, "t=8s smoke S dev_addr=26011BDA test button pressed", 1, GW_SIM_UP_CHANGE, 2, 1,
         0x03},
        {9000, "t=9s smoke S dev_addr=26011BDA fault -> fcnt_reset", 1, GW_SIM_UP_CHANGE, 0, 1,
         0x01},
        {10000, "t=10s smoke S dev_addr=26011BDA fault -> silent", 0, 0, 0, 0, 0},
        {11000,
         "t=11s smoke S dev_addr=26011BDA battery -> 20 %, smoke -> false (silent: not sent)", 0, 0,
         0, 0, 0},
        {12000, "t=12s smoke S dev_addr=26011BDA test button pressed (silent: not sent)", 0, 0, 0,
         0, 0},
        {13000, "t=13s smoke S dev_addr=26011BDA fault -> bad_mic (silent: not sent)", 0, 0, 0, 0,
         0},
        /* A recorded frame played back goes out even while the device is dead. */
        {14000, "t=14s smoke S dev_addr=26011BDA fault -> replay", 1, GW_SIM_UP_REPLAY, 0, -1, -1},
        {15000, "t=15s smoke S dev_addr=26011BDA fault -> none", 0, 0, 0, 0, 0},
        /* Nothing sent yet: nothing to replay, but the state change goes out. */
        {16000,
         "t=16s door_lora L dev_addr=26011BDB fault -> replay, state -> open (nothing sent yet: "
         "nothing to replay)",
         1, GW_SIM_UP_CHANGE, 0, 1, 0x01},
        {17000, "t=17s door_lora L dev_addr=26011BDB fault -> replay", 1, GW_SIM_UP_REPLAY, 0, -1,
         -1},
    };
    struct gw_sim_uplink prev = {.phy_len = 0};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "fault step %zu", i);
        struct lines l = {.n = 0};
        gw_scenario_advance(sc, steps[i].at, collect, &l);
        char want[256];
        snprintf(want, sizeof(want), "%s\n", steps[i].line);
        if (strcmp(l.text, want) != 0) {
            fail_msg("%s: line\n%swant\n%s", what, l.text, want);
        }
        if (steps[i].frames > 0) {
            EXPECT_INT(what, gw_scenario_lora_due_ms(sc), INT64_MIN); /* at once */
        }
        struct gw_sim_uplink ups[4];
        int n;
        drain(sc, steps[i].at, ups, 4, &n);
        EXPECT_INT(what, gw_scenario_lora_due_ms(sc), 1000000);
        EXPECT_INT(what, n, steps[i].frames);
        if (n == 0) {
            continue;
        }
        struct gw_sim_uplink *up = &ups[n - 1];
        struct gw_sim_device *dev = &sc->devices[up->device];
        EXPECT_INT(what, up->why, steps[i].why);
        EXPECT_INT(what, up->fcnt, steps[i].fcnt);
        EXPECT_INT(what, up->ncopies, 2);
        if (steps[i].mic_ok < 0) {
            /* replay: byte for byte the frame sent before */
            EXPECT_INT(what, up->phy_len, prev.phy_len);
            assert_memory_equal(up->phy, prev.phy, up->phy_len);
        } else {
            uint8_t plain[LW_MAX_PAYLOAD];
            size_t len;
            EXPECT_INT(what, frame_ok(dev, up, plain, &len), steps[i].mic_ok);
            EXPECT_INT(what, plain[0], steps[i].plain0);
            EXPECT_INT(what, up->bad_mic, !steps[i].mic_ok);
            EXPECT_INT(what, up->test, steps[i].plain0 == 0x03);
        }
        prev = *up;
    }
    /* Back from silent: the periodic frame carries the new state, and the bad MIC that was
     * asked for while the device was dead; then frames are good again. */
    struct gw_sim_uplink up;
    uint8_t plain[LW_MAX_PAYLOAD];
    size_t len;
    assert_int_equal(gw_scenario_lora_next(sc, 1000000, &up), 1);
    assert_int_equal(up.device, 0);
    EXPECT_INT("after silent", up.fcnt, 1);
    assert_false(frame_ok(s, &up, plain, &len));
    EXPECT_INT("after silent", plain[0], 0x00); /* no test: that press was lost */
    EXPECT_INT("after silent", plain[1], 20);
    s->lora.send_now = true;
    assert_int_equal(gw_scenario_lora_next(sc, 1000000, &up), 1);
    EXPECT_INT("good again", up.fcnt, 2);
    assert_true(frame_ok(s, &up, plain, &len));
    gw_scenario_free(sc);
}

static void test_lora_heard_by(void **state)
{
    (void)state;
    struct gw_scenario *sc =
        parse_ok(LDEVS(SMOKE("heard_by = [0, 1]; rssi = -97; snr = 7.5; sf = 10;") ",\n" DOORL(
            "heard_by = [1];") ",\n" RAWL("heard_by = [0]; payload = \"01\";")));
    bool seen_chan[8] = {false};
    for (int rnd = 0; rnd < 50; rnd++) {
        struct gw_sim_uplink ups[4];
        int n;
        drain(sc, 1000 + (int64_t)rnd * 60000, ups, 4, &n);
        for (int k = 0; k < n; k++) {
            const struct gw_sim_uplink *up = &ups[k];
            const struct gw_sim_device *d = &sc->devices[up->device];
            char what[48];
            snprintf(what, sizeof(what), "round %d frame %d", rnd, k);
            /* CN470 uplink channels 0..7 of the first sub-band. */
            assert_true(up->chan >= 0 && up->chan < 8);
            seen_chan[up->chan] = true;
            assert_true(fabs(up->freq - (470.3 + 0.2 * up->chan)) < 1e-9);
            EXPECT_INT(what, up->sf, d->lora.sf);
            EXPECT_INT(what, up->ncopies, __builtin_popcount(d->lora.heard_by));
            int prev_delay = -1;
            for (int c = 0; c < up->ncopies; c++) {
                const struct gw_sim_copy *cp = &up->copies[c];
                assert_true(d->lora.heard_by & (1u << cp->forwarder));
                const struct gw_sim_forwarder *f = &sc->lora.fwd[cp->forwarder];
                /* A few ms apart, first copy at once; signal near the device's plus offsets. */
                if (c == 0) {
                    EXPECT_INT(what, cp->delay_ms, 0);
                } else {
                    assert_true(cp->delay_ms >= prev_delay + 2 && cp->delay_ms <= prev_delay + 6);
                }
                prev_delay = cp->delay_ms;
                assert_true(fabs(cp->rssi - (d->lora.rssi + f->rssi_offset)) <= 2.0);
                assert_true(cp->rssi == round(cp->rssi));
                assert_true(fabs(cp->snr - (d->lora.snr + f->snr_offset)) <= 1.05);
                assert_true(fabs(cp->snr * 10 - round(cp->snr * 10)) < 1e-6);

                /* The rxpk the forwarder sends, through the GWMP builder and parser. */
                struct gwmp_rxpk r;
                gw_sim_lora_rxpk(up, c, 123456789u + (uint32_t)c, "2024-05-01T08:00:00.000001Z",
                                 &r);
                uint8_t buf[1024];
                int len = gwmp_build_push_data(buf, sizeof(buf), 2, 0x1234, f->eui, &r, 1);
                assert_true(len > 12);
                static struct gwmp_packet p;
                assert_int_equal(gwmp_parse(buf, (size_t)len, &p), GWMP_OK);
                assert_true(p.gateway_eui == f->eui);
                assert_int_equal(p.nrxpk, 1);
                assert_true(p.rxpk[0].valid);
                EXPECT_INT(what, p.rxpk[0].size, up->phy_len);
                assert_memory_equal(p.rxpk[0].data, up->phy, up->phy_len);
                EXPECT_INT(what, p.rxpk[0].tmst, 123456789u + (uint32_t)c);
                assert_string_equal(p.rxpk[0].time, "2024-05-01T08:00:00.000001Z");
                assert_true(p.rxpk[0].freq == up->freq);
                assert_string_equal(p.rxpk[0].modu, "LORA");
                assert_string_equal(p.rxpk[0].datr, d->lora.sf == 10 ? "SF10BW125" : "SF7BW125");
                assert_string_equal(p.rxpk[0].codr, "4/5");
                EXPECT_INT(what, p.rxpk[0].stat, 1);
                assert_true(p.rxpk[0].rssi == cp->rssi && p.rxpk[0].lsnr == cp->snr);
            }
        }
    }
    int nchan = 0;
    for (int i = 0; i < 8; i++) {
        nchan += seen_chan[i];
    }
    assert_true(nchan >= 6); /* hops over the channels */
    /* The copies of one frame are the same bytes: duplicates, not two frames. */
    struct gw_sim_uplink up;
    by_name(sc, "S")->lora.send_now = true;
    assert_int_equal(gw_scenario_lora_next(sc, 0, &up), 1);
    struct gwmp_rxpk a, b;
    gw_sim_lora_rxpk(&up, 0, 1, NULL, &a);
    gw_sim_lora_rxpk(&up, 1, 2, NULL, &b);
    assert_false(a.has_time);
    assert_int_equal(a.size, b.size);
    assert_memory_equal(a.data, b.data, a.size);
    gw_scenario_free(sc);
}

/* A repeat resets LoRa devices' state but not their counters, and reports what changed. */
static void test_lora_repeat(void **state)
{
    (void)state;
    struct gw_scenario *sc = parse_ok(LORA_SEC DEVS(SMOKE("every_s = 100;") ",\n" DOORL(
        "every_s = 100;")) "script = (\n"
                           "{ at_s = 5; device = \"S\"; smoke = true; },\n"
                           "{ at_s = 6; device = \"L\"; fault = \"silent\"; }\n);\n"
                           "repeat_s = 10;\n");
    struct gw_sim_device *s = by_name(sc, "S"), *d = by_name(sc, "L");
    struct gw_sim_uplink ups[4];
    int n;
    drain(sc, 4000, ups, 4, &n);
    EXPECT_INT("first frames", n, 2);
    gw_scenario_advance(sc, 6000, NULL, NULL);
    drain(sc, 6000, ups, 4, &n);
    EXPECT_INT("smoke", n, 1);
    EXPECT_INT("smoke", s->lora.fcnt, 2);
    struct lines l = {.n = 0};
    gw_scenario_advance(sc, 10000, collect, &l);
    assert_string_equal(l.text, "t=10s script repeats (cycle 2), devices reset\n");
    assert_false(s->cur.smoke);
    assert_int_equal(d->cur.fault, GW_SIM_FAULT_NONE);
    drain(sc, 10000, ups, 4, &n);
    EXPECT_INT("reset reported", n, 1); /* the smoke detector's state changed; the door's not */
    assert_int_equal(ups[0].device, 0);
    assert_int_equal(ups[0].why, GW_SIM_UP_CHANGE);
    EXPECT_INT("fcnt goes on", ups[0].fcnt, 2);
    uint8_t plain[LW_MAX_PAYLOAD];
    size_t len;
    assert_true(frame_ok(s, &ups[0], plain, &len));
    EXPECT_INT("cleared", plain[0], 0);
    /* start() rewinds counters too (a new run is a new device session). */
    gw_scenario_start(sc, 1);
    EXPECT_INT("start", s->lora.fcnt, 0);
    EXPECT_INT("start", s->lora.last_len, 0);
    EXPECT_INT("start", s->lora.next_ms, 1000);
    EXPECT_INT("start", d->lora.next_ms, 1700);
    gw_scenario_free(sc);
}

static void test_lora_timers(void **state)
{
    (void)state;
    struct gw_scenario *sc = parse_ok(LDEVS(SMOKE("")));
    static const struct {
        int64_t now;
        bool pull, stat;
        int64_t next;
    } steps[] = {
        {0, true, false, 5000},      {4999, false, false, 5000},  {5000, true, false, 10000},
        {5000, false, false, 10000}, {19999, true, false, 20000}, {20000, true, true, 25000},
        {61000, true, true, 65000}, /* a stall: once, not once per missed interval */
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "timer step %zu", i);
        EXPECT_INT(what, gw_scenario_lora_pull_due(sc, steps[i].now), steps[i].pull);
        EXPECT_INT(what, gw_scenario_lora_stat_due(sc, steps[i].now), steps[i].stat);
        EXPECT_INT(what, gw_scenario_lora_timer_ms(sc), steps[i].next);
    }
    EXPECT_INT("stat", sc->lora.next_stat_ms, 80000);
    gw_scenario_free(sc);
}

static void test_lora_gwmp(void **state)
{
    (void)state;
    uint8_t b[12];
    static const uint8_t pull[12] = {2, 0xBE, 0xEF, 2, 0xAA, 0x55, 0x5A, 0, 0, 0, 0, 1};
    assert_int_equal(gw_sim_gwmp_pull_data(b, 2, 0xBEEF, 0xAA555A0000000001ULL), 12);
    assert_memory_equal(b, pull, 12);
    static const uint8_t txack[12] = {1, 0, 7, 5, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(gw_sim_gwmp_tx_ack(b, 1, 7, 0x0102030405060708ULL), 12);
    assert_memory_equal(b, txack, 12);

    struct gw_sim_fwd_stat st = {.time = "2024-05-01 08:00:00 GMT",
                                 .rxnb = 3,
                                 .rxok = 2,
                                 .rxfw = 1,
                                 .dwnb = 4,
                                 .txnb = 5,
                                 .ackr = 66.7};
    uint8_t buf[256];
    int n = gw_sim_gwmp_stat(buf, sizeof(buf), 2, 0x0102, 0xAA555A0000000002ULL, &st);
    assert_true(n > 12);
    static struct gwmp_packet p;
    assert_int_equal(gwmp_parse(buf, (size_t)n, &p), GWMP_OK);
    assert_int_equal(p.version, 2);
    assert_int_equal(p.token, 0x0102);
    assert_int_equal(p.identifier, GWMP_PUSH_DATA);
    assert_true(p.gateway_eui == 0xAA555A0000000002ULL);
    assert_int_equal(p.nrxpk, 0);
    assert_true(p.stat.present);
    assert_string_equal(p.stat.time, "2024-05-01 08:00:00 GMT");
    assert_int_equal(p.stat.rxnb, 3);
    assert_int_equal(p.stat.rxok, 2);
    assert_int_equal(p.stat.rxfw, 1);
    assert_int_equal(p.stat.dwnb, 4);
    assert_int_equal(p.stat.txnb, 5);
    assert_true(fabs(p.stat.ackr - 66.7) < 1e-9);
    /* Too small a buffer, or a time that would break the JSON: -1, never a partial datagram. */
    assert_int_equal(gw_sim_gwmp_stat(buf, (size_t)n, 2, 1, 1, &st), -1);
    assert_int_equal(gw_sim_gwmp_stat(buf, (size_t)n + 1, 2, 1, 1, &st), n);
    assert_int_equal(gw_sim_gwmp_stat(buf, 11, 2, 1, 1, &st), -1);
    snprintf(st.time, sizeof(st.time), "a\"b");
    assert_int_equal(gw_sim_gwmp_stat(buf, sizeof(buf), 2, 1, 1, &st), -1);
    st.time[0] = '\0';
    st.ackr = NAN;
    assert_int_equal(gw_sim_gwmp_stat(buf, sizeof(buf), 2, 1, 1, &st), -1);
}

static void test_lora_acks(void **state)
{
    (void)state;
    struct gw_sim_acks a;
    memset(&a, 0, sizeof(a));
    gw_sim_acks_sent(&a, GWMP_PUSH_DATA, 0x1111, 0);
    gw_sim_acks_sent(&a, GWMP_PULL_DATA, 0x2222, 10);
    gw_sim_acks_sent(&a, GWMP_PUSH_DATA, 0x3333, 20);
    static const struct {
        uint8_t version, identifier;
        uint16_t token;
        bool want;
    } cases[] = {
        {2, GWMP_PULL_ACK, 0x1111, false}, /* a PULL_ACK for a PUSH_DATA token */
        {1, GWMP_PUSH_ACK, 0x1111, false}, /* another protocol version */
        {2, GWMP_PUSH_ACK, 0x1112, false}, /* nobody's token */
        {2, GWMP_PULL_RESP, 0x1111, false}, {2, GWMP_PUSH_ACK, 0x1111, true},
        {2, GWMP_PUSH_ACK, 0x1111, false}, /* a duplicate */
        {2, GWMP_PULL_ACK, 0x2222, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "ack case %zu", i);
        EXPECT_INT(
            what,
            gw_sim_acks_received(&a, cases[i].version, 2, cases[i].identifier, cases[i].token),
            cases[i].want);
    }
    EXPECT_INT("push acked", a.push_acked, 1);
    EXPECT_INT("pull acked", a.pull_acked, 1);
    EXPECT_INT("unexpected", a.unexpected, 5);
    /* 0x3333 times out after 1000 ms, and only once. */
    EXPECT_INT("expire early", gw_sim_acks_expire(&a, 1019, 1000), 0);
    EXPECT_INT("expire", gw_sim_acks_expire(&a, 1020, 1000), 1);
    EXPECT_INT("expire again", gw_sim_acks_expire(&a, 5000, 1000), 0);
    EXPECT_INT("missing", a.missing, 1);
    assert_false(gw_sim_acks_received(&a, 2, 2, GWMP_PUSH_ACK, 0x3333)); /* too late */
    /* More in flight than slots: the oldest counts as missing, the newest are kept. */
    for (int i = 0; i < GW_SIM_ACK_SLOTS + 3; i++) {
        gw_sim_acks_sent(&a, GWMP_PUSH_DATA, (uint16_t)(0x4000 + i), 6000 + i);
    }
    EXPECT_INT("overflow", a.missing, 4);
    assert_false(gw_sim_acks_received(&a, 2, 2, GWMP_PUSH_ACK, 0x4000));
    assert_true(gw_sim_acks_received(&a, 2, 2, GWMP_PUSH_ACK, 0x4003));
    assert_true(gw_sim_acks_received(&a, 2, 2, GWMP_PUSH_ACK, (uint16_t)(0x4000 + 66)));
}

static void test_lora_hex(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int rc;
        size_t len;
    } hex[] = {
        {"", 0, 0},         {"00", 0, 1},       {"aBcD", 0, 2},         {"0", -EINVAL, 0},
        {"0x", -EINVAL, 0}, {"0 ", -EINVAL, 0}, {"123456", -EINVAL, 0}, /* > max 2 */
    };
    for (size_t i = 0; i < sizeof(hex) / sizeof(hex[0]); i++) {
        uint8_t out[2] = {0x77, 0x77};
        size_t len = 99;
        char what[32];
        snprintf(what, sizeof(what), "hex '%s'", hex[i].s);
        EXPECT_INT(what, gw_sim_parse_hex(hex[i].s, out, 2, &len), hex[i].rc);
        EXPECT_INT(what, len, hex[i].rc == 0 ? hex[i].len : 99);
    }
    uint8_t out[2];
    size_t len;
    assert_int_equal(gw_sim_parse_hex("aBcD", out, 2, &len), 0);
    assert_int_equal(out[0], 0xAB);
    assert_int_equal(out[1], 0xCD);
    uint64_t eui = 7;
    assert_int_equal(gw_sim_parse_eui("AA555A0000000001", &eui), 0);
    assert_true(eui == 0xAA555A0000000001ULL);
    assert_int_equal(gw_sim_parse_eui("ffffffffffffffff", &eui), 0);
    assert_true(eui == UINT64_MAX);
    assert_int_equal(gw_sim_parse_eui("AA555A00000000", &eui), -EINVAL);
    assert_int_equal(gw_sim_parse_eui("AA555A000000000100", &eui), -EINVAL);
    assert_true(eui == UINT64_MAX);
    assert_true(gw_sim_type_is_lora(GW_SIM_SMOKE) && gw_sim_type_is_lora(GW_SIM_RAW_LORA));
    assert_false(gw_sim_type_is_lora(GW_SIM_REGISTERS));
    assert_string_equal(gw_sim_type_name(GW_SIM_DOOR_LORA), "door_lora");
    assert_string_equal(gw_sim_fault_name(GW_SIM_FAULT_FCNT_RESET), "fcnt_reset");
}

/* The demo's LoRa part: two smoke detectors and a door heard by two forwarders; smoke at
 * ~90 s, a test press at ~100 s, a replayed frame at ~110 s. */
static void test_lora_demo(void **state)
{
    (void)state;
    char demo[1024];
    demo_path(demo, sizeof(demo));
    struct gw_scenario *sc = gw_scenario_load(demo, stderr);
    assert_non_null(sc);
    assert_true(sc->lora.present);
    assert_string_equal(sc->lora.forward_host, "127.0.0.1");
    assert_int_equal(sc->lora.forward_port, 1700);
    assert_int_equal(sc->lora.nforwarders, 2);
    int types[GW_SIM_RAW_LORA + 1] = {0};
    for (int i = 0; i < sc->ndevices; i++) {
        const struct gw_sim_device *d = &sc->devices[i];
        types[d->type]++;
        if (gw_sim_type_is_lora(d->type)) {
            assert_int_equal(d->lora.heard_by, 3);
        }
    }
    assert_int_equal(types[GW_SIM_SMOKE], 2);
    assert_int_equal(types[GW_SIM_DOOR_LORA], 1);
    int64_t smoke_at = -1, test_at = -1, replay_at = -1;
    static struct gw_sim_uplink prev[16]; /* last frame per device */
    for (int64_t t = 0; t <= 120000; t += 250) {
        gw_scenario_advance(sc, t, NULL, NULL);
        struct gw_sim_uplink up;
        while (gw_scenario_lora_next(sc, t, &up) > 0) {
            const struct gw_sim_device *d = &sc->devices[up.device];
            assert_true(up.device < 16);
            EXPECT_INT("copies", up.ncopies, 2);
            if (up.why == GW_SIM_UP_REPLAY) {
                EXPECT_INT("replay", up.phy_len, prev[up.device].phy_len);
                assert_memory_equal(up.phy, prev[up.device].phy, up.phy_len);
                replay_at = t;
                continue;
            }
            uint8_t plain[LW_MAX_PAYLOAD];
            size_t len;
            assert_true(frame_ok(d, &up, plain, &len));
            if (d->type == GW_SIM_SMOKE && plain[0] == 0x01 && smoke_at < 0) {
                smoke_at = t;
            }
            if (d->type == GW_SIM_SMOKE && plain[0] == 0x03) {
                test_at = t;
            }
            prev[up.device] = up;
        }
    }
    assert_true(smoke_at >= 85000 && smoke_at <= 95000);
    assert_true(test_at >= 95000 && test_at <= 105000);
    assert_true(replay_at >= 105000 && replay_at <= 115000);
    gw_scenario_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),          cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad),           cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_files),         cmocka_unit_test(test_timeline),
        cmocka_unit_test(test_run_once),      cmocka_unit_test(test_hydrant_raw),
        cmocka_unit_test(test_requests),      cmocka_unit_test(test_noise),
        cmocka_unit_test(test_garbage),       cmocka_unit_test(test_tcp_frame),
        cmocka_unit_test(test_pdu_length),    cmocka_unit_test(test_listen),
        cmocka_unit_test(test_names),         cmocka_unit_test(test_lora_parse),
        cmocka_unit_test(test_lora_bad),      cmocka_unit_test(test_lora_payload),
        cmocka_unit_test(test_lora_schedule), cmocka_unit_test(test_lora_faults),
        cmocka_unit_test(test_lora_heard_by), cmocka_unit_test(test_lora_repeat),
        cmocka_unit_test(test_lora_timers),   cmocka_unit_test(test_lora_gwmp),
        cmocka_unit_test(test_lora_acks),     cmocka_unit_test(test_lora_hex),
        cmocka_unit_test(test_lora_demo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
