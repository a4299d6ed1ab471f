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
    {DEVS("{ name = \"D\"; unit_id = 1; type = \"smoke\"; }"), "type must be one of"},
    {DEVS("{ name = \"D\"; unit_id = 1; type = \"smoke\"; bogus = 1; }"),
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
    {SCRIPT("{ at_s = 1; device = \"H\"; state = \"open\"; }"), "state applies to door devices"},
    {SCRIPT("{ at_s = 1; device = \"R\"; battery = 5; }"), "battery applies to door devices"},
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
    const char *data = getenv("GW_TEST_DATA");
    if (data != NULL) {
        snprintf(demo, sizeof(demo), "%s/../../../config/demo-scenario.cfg", data);
    } else {
        snprintf(demo, sizeof(demo), "%s", __FILE__);
        char *slash = strstr(demo, "tests/unit/test_scenario.c");
        assert_non_null(slash);
        strcpy(slash, "config/demo-scenario.cfg");
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),       cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad),        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_files),      cmocka_unit_test(test_timeline),
        cmocka_unit_test(test_run_once),   cmocka_unit_test(test_hydrant_raw),
        cmocka_unit_test(test_requests),   cmocka_unit_test(test_noise),
        cmocka_unit_test(test_garbage),    cmocka_unit_test(test_tcp_frame),
        cmocka_unit_test(test_pdu_length), cmocka_unit_test(test_listen),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
