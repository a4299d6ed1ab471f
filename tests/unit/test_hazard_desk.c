/*
 * The hazard desk: its pure parts (command JSON, deadlines, the hazard and
 * result JSON) table-driven, and the desk itself on a real SQLite store in a
 * temp dir with a host that records what it is given: commands, restart,
 * overdue, auto-open, a tampered chain, a failing disk, a lost record.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "commands.h"
#include "hazard_desk.h"
#include "hazards.h"
#include "notify_text.h"
#include "store.h"

#define DAY GW_HZ_DAY_MS
/* 2026-11-28T02:00:00Z = 10:00 in Asia/Shanghai */
#define T0 1795831200000LL

/* ---- pure parts ---- */

static int parse(const char *name, const char *json, struct gw_hazard_request *r, char *err)
{
    return gw_hazard_request_parse(name, json, strlen(json), r, err, 160);
}

static void request_parse_good(void **state)
{
    (void)state;
    struct gw_hazard_request r;
    char err[160];
    assert_int_equal(parse("open",
                           "{\"by\":\"李\",\"category\":\"electrical\",\"building\":\"A\","
                           "\"floor\":\"2\",\"zone\":\"lab\",\"description\":\"socket burnt\","
                           "\"responsible\":\"王\",\"deadline\":\"2026-12-01T18:00:00+08:00\","
                           "\"note\":\"seen at lunch\",\"id\":\"r1\"}",
                           &r, err),
                     0);
    assert_int_equal(r.cmd.type, GW_HZ_CMD_OPEN);
    assert_string_equal(r.cmd.by, "李");
    assert_string_equal(r.cmd.category, "electrical");
    assert_string_equal(r.cmd.building, "A");
    assert_string_equal(r.cmd.floor, "2");
    assert_string_equal(r.cmd.zone, "lab");
    assert_string_equal(r.cmd.description, "socket burnt");
    assert_string_equal(r.cmd.responsible, "王");
    assert_string_equal(r.cmd.note, "seen at lunch");
    assert_int_equal(r.cmd.deadline_ms, 1796119200000LL);
    assert_null(r.cmd.id);
    assert_null(r.cmd.verifier);
    assert_string_equal(r.request_id, "r1");
    gw_hazard_request_free(&r);

    /* optional keys may be left out: NULL, deadline 0 */
    assert_int_equal(parse("update",
                           "{\"hazard\":\"HZ-20261128-001\",\"by\":\"wang\","
                           "\"deadline\":1796119200000}",
                           &r, err),
                     0);
    assert_int_equal(r.cmd.type, GW_HZ_CMD_UPDATE);
    assert_string_equal(r.cmd.id, "HZ-20261128-001");
    assert_null(r.cmd.responsible);
    assert_null(r.cmd.description);
    assert_null(r.cmd.note);
    assert_int_equal(r.cmd.deadline_ms, 1796119200000LL);
    assert_string_equal(r.request_id, "");
    gw_hazard_request_free(&r);

    assert_int_equal(parse("rectifying", "{\"hazard\":\"HZ-1\",\"by\":\"w\"}", &r, err), 0);
    assert_int_equal(r.cmd.type, GW_HZ_CMD_RECTIFYING);
    assert_int_equal(r.cmd.deadline_ms, 0);
    gw_hazard_request_free(&r);
    assert_int_equal(parse("close",
                           "{\"hazard\":\"HZ-1\",\"by\":\"w\",\"note\":\"n\",\"verifier\":\"v\"}",
                           &r, err),
                     0);
    assert_string_equal(r.cmd.verifier, "v");
    gw_hazard_request_free(&r);
    assert_int_equal(parse("reopen", "{\"hazard\":\"HZ-1\",\"by\":\"w\"}", &r, err), 0);
    assert_int_equal(r.cmd.type, GW_HZ_CMD_REOPEN);
    gw_hazard_request_free(&r);
}

static void request_parse_bad(void **state)
{
    (void)state;
    static const struct {
        const char *name, *json, *error, *request_id, *hazard;
    } cases[] = {
        {"delete", "{}",
         "unknown hazard command \"delete\" (open, update, rectifying, close, "
         "reopen)",
         "", NULL},
        {"\xe4\xb8\x80", "{}", "unknown hazard command \"???\"", "", NULL},
        {"open", "", "not JSON", "", NULL},
        {"open", "[1]", "not a JSON object", "", NULL},
        {"open", "{\"by\":\"a\",\"by\":\"b\"}", "not JSON", "", NULL},
        {"open", "{\"by\":\"a\",\"colour\":1,\"id\":\"x7\"}",
         "unknown key \"colour\" for hazard/open", "x7", NULL},
        {"open", "{\"hazard\":\"HZ-1\",\"by\":\"a\"}", "unknown key \"hazard\" for hazard/open", "",
         NULL},
        {"rectifying", "{\"hazard\":\"HZ-1\",\"by\":\"a\",\"deadline\":5}",
         "unknown key \"deadline\" for hazard/rectifying", "", "HZ-1"},
        {"close", "{\"hazard\":\"HZ-1\",\"by\":\"a\",\"responsible\":\"x\"}",
         "unknown key \"responsible\" for hazard/close", "", "HZ-1"},
        {"update", "{\"by\":\"a\",\"id\":\"q\"}", "missing \"hazard\" (the hazard's id, HZ-...)",
         "q", NULL},
        {"update", "{\"hazard\":7,\"by\":\"a\"}", "\"hazard\" must be a string (without NUL)", "",
         NULL},
        {"update", "{\"hazard\":\"HZ-1\",\"by\":[\"a\"]}", "\"by\" must be a string (without NUL)",
         "", "HZ-1"},
        {"open", "{\"by\":\"a\\u0000b\"}", "not JSON: \\u0000 is not allowed", "", NULL},
        {"open", "{\"id\":5}", "\"id\" must be a string (without NUL)", "", NULL},
        {"open", "{\"id\":\"0123456789012345678901234567890123456789012345678901234567890123\"}",
         "\"id\" is too long (at most 63 bytes)", "", NULL},
        {"update", "{\"hazard\":\"HZ-1\",\"by\":\"a\",\"deadline\":\"next week\"}",
         "\"deadline\" must be an RFC 3339 time", "", "HZ-1"},
        {"update", "{\"hazard\":\"HZ-1\",\"by\":\"a\",\"deadline\":0}",
         "\"deadline\" must be an RFC 3339 time", "", "HZ-1"},
        {"update", "{\"hazard\":\"HZ-1\",\"by\":\"a\",\"deadline\":-5}",
         "\"deadline\" must be an RFC 3339 time", "", "HZ-1"},
        {"update", "{\"hazard\":\"HZ-1\",\"by\":\"a\",\"deadline\":1.5e12}",
         "\"deadline\" must be an RFC 3339 time", "", "HZ-1"},
        {"reopen", "{\"hazard\":\"HZ-1\",\"by\":\"a\",\"deadline\":null}",
         "\"deadline\" must be an RFC 3339 time", "", "HZ-1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gw_hazard_request r;
        char err[160] = "";
        int rc = parse(cases[i].name, cases[i].json, &r, err);
        if (rc != -EINVAL || strncmp(err, cases[i].error, strlen(cases[i].error)) != 0) {
            print_error("case %zu: rc %d err \"%s\"\n", i, rc, err);
        }
        assert_int_equal(rc, -EINVAL);
        assert_memory_equal(err, cases[i].error, strlen(cases[i].error));
        assert_string_equal(r.request_id, cases[i].request_id);
        if (cases[i].hazard) {
            assert_string_equal(r.cmd.id, cases[i].hazard);
        } else {
            assert_null(r.cmd.id);
        }
        gw_hazard_request_free(&r);
    }
    /* too large: refused before parsing */
    size_t big = GW_COMMAND_MAX_BYTES + 1;
    char *s = malloc(big + 1);
    memset(s, ' ', big);
    s[0] = '{';
    s[big - 1] = '}';
    s[big] = '\0';
    struct gw_hazard_request r;
    char err[160];
    assert_int_equal(parse("open", s, &r, err), -EINVAL);
    assert_non_null(strstr(err, "too large"));
    gw_hazard_request_free(&r);
    free(s);
    /* a payload with no NUL after it is read by length */
    assert_int_equal(gw_hazard_request_parse("reopen", "{\"hazard\":\"H\",\"by\":\"a\"}XXXX", 23,
                                             &r, err, sizeof(err)),
                     0);
    gw_hazard_request_free(&r);
}

static struct gw_hazard sample_hazard(void)
{
    struct gw_hazard h = {.category = GW_HZ_EVACUATION_ROUTE,
                          .found_at_ms = T0,
                          .deadline_ms = T0 + DAY + 1,
                          .status = GW_HZ_RECTIFYING,
                          .overdue = true};
    snprintf(h.id, sizeof(h.id), "HZ-20261128-001");
    snprintf(h.building, sizeof(h.building), "B");
    snprintf(h.description, sizeof(h.description), "exit 2 chained \"shut\"");
    snprintf(h.source_alarm, sizeof(h.source_alarm), "B-exit-01/exit-locked");
    return h;
}

static void hazard_json_shape(void **state)
{
    (void)state;
    struct gw_hazard h = sample_hazard();
    char *s = gw_hazard_json(&h, 42, T0 + 5, 3);
    assert_non_null(s);
    assert_string_equal(
        s, "{\"seq\":42,\"id\":\"HZ-20261128-001\",\"category\":\"evacuation_route\","
           "\"building\":\"B\",\"floor\":\"\",\"zone\":\"\",\"description\":\"exit 2 chained "
           "\\\"shut\\\"\",\"found_at\":\"2026-11-28T02:00:00.000Z\",\"found_by\":\"\","
           "\"source_alarm\":\"B-exit-01/exit-locked\",\"responsible\":\"\","
           "\"deadline\":\"2026-11-29T02:00:00.001Z\",\"status\":\"rectifying\","
           "\"verified_by\":\"\",\"overdue\":true,\"updated_at\":\"2026-11-28T02:00:00.005Z\","
           "\"entries\":3}");
    free(s);
    s = gw_hazard_json(&h, 1, 0, 0);
    assert_non_null(strstr(s, "\"updated_at\":\"\""));
    free(s);
    snprintf(h.zone, sizeof(h.zone), "\xff\xfe");
    assert_null(gw_hazard_json(&h, 1, 0, 1));
    assert_null(gw_hazard_json(NULL, 1, 0, 1));
}

static void result_json_shape(void **state)
{
    (void)state;
    char *s = gw_hazard_result_json(9, "open", "r1", "HZ-20261128-001", true, NULL, "open");
    assert_string_equal(s, "{\"seq\":9,\"ok\":true,\"cmd\":\"hazard/open\",\"id\":\"r1\","
                           "\"hazard\":\"HZ-20261128-001\",\"status\":\"open\"}");
    free(s);
    s = gw_hazard_result_json(10, "close", "", "", false, "close: a note on the fix is required",
                              NULL);
    assert_string_equal(s, "{\"seq\":10,\"ok\":false,\"cmd\":\"hazard/close\","
                           "\"error\":\"close: a note on the fix is required\"}");
    free(s);
    s = gw_hazard_result_json(11, "bad\xe4\xb8", NULL, NULL, false, "x", NULL);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"cmd\":\"hazard/bad??\""));
    free(s);
}

static void kinds_and_keys(void **state)
{
    (void)state;
    assert_int_equal(gw_hazard_category_of_kind("hydrant_pressure"), GW_HZ_FIRE_EQUIPMENT);
    assert_int_equal(gw_hazard_category_of_kind("smoke"), GW_HZ_FIRE_EQUIPMENT);
    assert_int_equal(gw_hazard_category_of_kind("fire_door"), GW_HZ_FIRE_EQUIPMENT);
    assert_int_equal(gw_hazard_category_of_kind("extinguisher"), GW_HZ_FIRE_EQUIPMENT);
    assert_int_equal(gw_hazard_category_of_kind("extinguisher_weight"), GW_HZ_FIRE_EQUIPMENT);
    assert_int_equal(gw_hazard_category_of_kind("exit_door"), GW_HZ_EVACUATION_ROUTE);
    assert_int_equal(gw_hazard_category_of_kind("climate"), GW_HZ_OTHER);
    assert_int_equal(gw_hazard_category_of_kind("smoker"), GW_HZ_OTHER);
    assert_int_equal(gw_hazard_category_of_kind(NULL), GW_HZ_OTHER);
    assert_true(gw_hazard_overdue_key("HZ-20261128-001/overdue"));
    assert_false(gw_hazard_overdue_key("HZ-20261128-001/late"));
    assert_false(gw_hazard_overdue_key("A-1F/overdue"));
    assert_false(gw_hazard_overdue_key("HZ-/x/overdue"));
    assert_false(gw_hazard_overdue_key("/overdue"));
    assert_false(gw_hazard_overdue_key(NULL));
    for (int c = 0; c < GW_HZ_NCATEGORIES; c++) {
        /* config.c's names (hazards.deadline_days keys) are the register's */
        assert_string_equal(gw_config_hazard_category_name(c), gw_hazard_category_name(c));
    }
}

/* What the contact reads of an overdue hazard: which, where, who, by when (zh and en). */
static void overdue_notification_text(void **state)
{
    (void)state;
    struct gw_alarm a = {.key = "HZ-20261128-001/overdue",
                         .rule_index = -1,
                         .sensor_index = -1,
                         .system = true,
                         .alarm_class = GW_CLASS_SUPERVISORY,
                         .name = GW_HAZARD_OVERDUE_NAME,
                         .state = GW_ALARM_UNACKED,
                         .raised_at_ms = T0 + 2 * DAY};
    struct gw_esc_notification n = {.kind = GW_ESC_RAISE,
                                    .key = "HZ-20261128-001/overdue",
                                    .alarm_class = GW_CLASS_SUPERVISORY,
                                    .level = 1,
                                    .raised_at_ms = T0 + 2 * DAY};
    struct gw_config cfg = {.site = {.name = "第一中学"}};
    struct gw_notify_hazard nh = {.id = "HZ-20261128-001",
                                  .description = "消火栓压力低",
                                  .responsible = "王工",
                                  .deadline_ms = T0 + 2 * DAY};
    struct gw_notify_fields f;
    gw_notify_text_fields(&f, &cfg, &a, &n);
    f.hazard = &nh;
    f.building = "A";
    f.floor = "1";
    f.zone = "东楼梯";
    char *t = gw_notify_text_message(&f, GW_LANG_ZH, T0 + 2 * DAY + 1000);
    assert_string_equal(t, "【隐患逾期】A栋 1层 东楼梯 消火栓压力低 (HZ-20261128-001) 整改期限 "
                           "2026-11-30 10:00:00 已过，责任人 王工，未确认\n"
                           "第1级通知。确认: campusgw-ctl ack HZ-20261128-001/overdue --by 姓名");
    free(t);
    nh.description = "hydrant pressure low";
    nh.responsible = "";
    f.zone = "east stair";
    t = gw_notify_text_message(&f, GW_LANG_EN, T0 + 2 * DAY + 1000);
    assert_string_equal(t, "[HAZARD OVERDUE] Building A, floor 1, east stair: hydrant pressure low "
                           "(HZ-20261128-001) deadline 2026-11-30 10:00:00 passed, nobody "
                           "responsible yet, unacknowledged\n"
                           "Level 1. Acknowledge: campusgw-ctl ack HZ-20261128-001/overdue --by "
                           "NAME");
    free(t);
    struct gw_notify_texts all;
    assert_int_equal(gw_notify_text_build(&all, &f, "en", 7, T0 + 2 * DAY), 0);
    assert_string_equal(all.subject,
                        "[campusgw] [HAZARD OVERDUE] HZ-20261128-001 hydrant pressure low");
    assert_non_null(strstr(all.email_body, "Hazard: HZ-20261128-001\n"));
    assert_non_null(strstr(all.email_body, "Responsible: nobody yet\n"));
    assert_non_null(strstr(all.email_body, "Deadline: 2026-11-30 10:00:00\n"));
    assert_non_null(strstr(all.email_body, "Location: Building A, floor 1, east stair\n"));
    json_t *j = json_loads(all.json, 0, NULL);
    json_t *hz = json_object_get(j, "hazard");
    assert_string_equal(json_string_value(json_object_get(hz, "id")), "HZ-20261128-001");
    assert_string_equal(json_string_value(json_object_get(hz, "deadline")),
                        "2026-11-30T02:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "key")), "HZ-20261128-001/overdue");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "location"), "zone")),
                        "east stair");
    json_decref(j);
    assert_non_null(strstr(all.wecom, "HAZARD OVERDUE"));
    gw_notify_text_release(&all);
    /* the clear: no longer overdue */
    n.kind = GW_ESC_CLEAR;
    n.due_ms = T0 + 3 * DAY;
    a.state = GW_ALARM_NORMAL;
    a.cleared_at_ms = T0 + 3 * DAY;
    gw_notify_text_fields(&f, &cfg, &a, &n);
    f.hazard = &nh;
    t = gw_notify_text_message(&f, GW_LANG_ZH, T0 + 3 * DAY);
    assert_string_equal(t,
                        "【隐患逾期】hydrant pressure low (HZ-20261128-001) 10:00:00 逾期已解除");
    free(t);
    char *subject = gw_notify_text_subject(&f, GW_LANG_ZH);
    assert_string_equal(subject,
                        "[campusgw] 【隐患逾期】HZ-20261128-001 hydrant pressure low 逾期已解除");
    free(subject);
}

/* ---- the desk on a real store ---- */

#define MAX_RECS 256

struct rec {
    enum gw_record_type type;
    char topic[64];
    char *payload;
};

struct sysalarm {
    char key[GW_KEY_MAX];
    char name[96];
    char value[32];
    enum gw_alarm_class cls;
    bool on;
    char by[GW_NAME_MAX];
};

struct fx {
    char dir[64];
    char cfg_path[96];
    struct gw_config *cfg;
    struct gw_store *st;
    struct gw_hazard_desk *hd;
    uint64_t seq;
    bool batch;
    int drop_logs; /* lose this many HAZARD_LOG records (as if out of memory) */
    struct rec recs[MAX_RECS];
    int nrecs;
    struct sysalarm alarms[64];
    int nalarms;
};

static uint64_t h_next_seq(void *ctx)
{
    struct fx *f = ctx;
    return ++f->seq;
}

static void h_emit(void *ctx, enum gw_record_type type, int64_t ts, const char *topic, char *json,
                   uint64_t seq)
{
    struct fx *f = ctx;
    assert_non_null(json);
    assert_true(f->batch); /* everything goes out in the alarm batch */
    if (type == GW_REC_HAZARD_LOG && f->drop_logs > 0) {
        f->drop_logs--;
        free(json);
        return;
    }
    gw_store_append(f->st, seq, type, ts, topic, json);
    assert_true(f->nrecs < MAX_RECS);
    struct rec *r = &f->recs[f->nrecs++];
    r->type = type;
    snprintf(r->topic, sizeof(r->topic), "%s", topic);
    r->payload = json;
}

static void h_open_batch(void *ctx)
{
    struct fx *f = ctx;
    if (!f->batch) {
        f->batch = true;
        gw_store_begin_batch(f->st);
    }
}

static void h_system_alarm(void *ctx, const char *key, const char *name, enum gw_alarm_class cls,
                           const char *value, bool on, const char *by, int64_t now)
{
    (void)now;
    struct fx *f = ctx;
    assert_true(f->nalarms < 64);
    struct sysalarm *a = &f->alarms[f->nalarms++];
    snprintf(a->key, sizeof(a->key), "%s", key);
    snprintf(a->name, sizeof(a->name), "%s", name);
    snprintf(a->value, sizeof(a->value), "%s", value ? value : "");
    a->cls = cls;
    a->on = on;
    snprintf(a->by, sizeof(a->by), "%s", by);
}

/* The end of a loop iteration: the batch is committed. rc of the commit. */
static int end_iteration(struct fx *f)
{
    int rc = 0;
    if (f->batch) {
        f->batch = false;
        rc = gw_store_end_batch(f->st);
    }
    return rc;
}

static void clear_recs(struct fx *f)
{
    for (int i = 0; i < f->nrecs; i++) {
        free(f->recs[i].payload);
    }
    f->nrecs = 0;
    f->nalarms = 0;
}

static const struct gw_hazard_desk_host host = {
    .next_seq = h_next_seq,
    .emit = h_emit,
    .open_batch = h_open_batch,
    .system_alarm = h_system_alarm,
};

static void start_desk(struct fx *f, int64_t now)
{
    struct gw_hazard_desk_host h = host;
    h.ctx = f;
    f->hd = gw_hazard_desk_new(f->cfg, f->st, &h, now);
    assert_non_null(f->hd);
    gw_hazard_desk_restore(f->hd, now);
    end_iteration(f);
}

static const char cfg_text[] =
    "site = { district = \"d1\"; school = \"s1\"; name = \"T\"; timezone = \"Asia/Shanghai\"; };\n"
    "state_dir = \"/tmp/unused\";\n"
    "modbus = ( { name = \"plc\"; tcp = \"127.0.0.1:1502\"; } );\n"
    "profiles = { p = { points = ( { name = \"pressure\"; address = 0; } ); }; };\n"
    "sensors = (\n"
    "  { id = \"A-1F-hydrant-01\"; kind = \"hydrant_pressure\"; profile = \"p\"; modbus = \"plc\";"
    "    unit_id = 1; location = { building = \"A\"; floor = \"1\"; zone = \"east stair\"; }; },\n"
    "  { id = \"B-exit-01\"; kind = \"exit_door\"; profile = \"p\"; modbus = \"plc\"; unit_id = 2; "
    "} );\n"
    "rules = (\n"
    "  { name = \"hydrant pressure low\"; kind = \"hydrant_pressure\"; point = \"pressure\";"
    "    below = 0.1; class = \"supervisory\"; },\n"
    "  { name = \"exit locked\"; kind = \"exit_door\"; point = \"pressure\"; below = 0.5;"
    "    class = \"supervisory\"; },\n"
    "  { name = \"hydrant very low\"; kind = \"hydrant_pressure\"; point = \"pressure\";"
    "    below = 0.01; class = \"supervisory\"; } );\n"
    "hazards = { auto_open = [ \"hydrant pressure low\", \"exit locked\" ];"
    "  deadline_days = { fire_equipment = 2; }; };\n";

static struct gw_config *load_cfg(const char *path)
{
    FILE *err = fopen("/dev/null", "w");
    struct gw_config *cfg = gw_config_load(path, err);
    fclose(err);
    assert_non_null(cfg);
    return cfg;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/gw-test-hzdesk-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cfg_path, sizeof(f->cfg_path), "%s/c.cfg", f->dir);
    FILE *c = fopen(f->cfg_path, "w");
    fputs(cfg_text, c);
    fclose(c);
    f->cfg = load_cfg(f->cfg_path);
    struct gw_store_cfg sc = {.commit_ms = 1000, .commit_records = 1000, .max_mb = 64};
    f->st = gw_store_open(f->dir, &sc);
    assert_non_null(f->st);
    start_desk(f, T0);
    *state = f;
    return 0;
}

static void stop_desk(struct fx *f)
{
    end_iteration(f);
    gw_hazard_desk_free(f->hd);
    f->hd = NULL;
}

static void restart(struct fx *f, int64_t now)
{
    stop_desk(f);
    gw_store_close(f->st);
    struct gw_store_cfg sc = {.commit_ms = 1000, .commit_records = 1000, .max_mb = 64};
    f->st = gw_store_open(f->dir, &sc);
    assert_non_null(f->st);
    clear_recs(f);
    start_desk(f, now);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    stop_desk(f);
    gw_store_close(f->st);
    gw_config_free(f->cfg);
    clear_recs(f);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

struct result {
    int rc;
    char request_id[64];
    char hazard[GW_HZ_ID_MAX];
    const char *status;
    char err[GW_ERR_MAX];
};

static struct result run(struct fx *f, const char *name, const char *json, int64_t now)
{
    struct result r;
    memset(&r, 0, sizeof(r));
    r.rc = gw_hazard_desk_execute(f->hd, name, json, strlen(json), now, r.request_id, r.hazard,
                                  &r.status, r.err, sizeof(r.err));
    end_iteration(f);
    return r;
}

/* The register's entries as the store has them, each verified with gw_hazard_chain_verify. */
struct chain {
    int n;
    struct gw_hazard_entry *e;
};

static void on_entry(void *ctx, const char *json)
{
    struct chain *c = ctx;
    c->e = realloc(c->e, (size_t)(c->n + 1) * sizeof(*c->e));
    char err[160];
    assert_int_equal(gw_hazard_entry_from_json(json, &c->e[c->n], err, sizeof(err)), 0);
    c->n++;
}

static int verified_entries(struct fx *f, const char *hazard)
{
    struct chain c = {0};
    int n = gw_hazard_desk_entries(f->hd, hazard, on_entry, &c);
    assert_int_equal(n, c.n);
    if (!hazard) {
        char err[160];
        assert_int_equal(gw_hazard_chain_verify(c.e, c.n, err, sizeof(err)), -1);
    }
    free(c.e);
    return n;
}

static const struct rec *last_of(struct fx *f, enum gw_record_type type)
{
    for (int i = f->nrecs - 1; i >= 0; i--) {
        if (f->recs[i].type == type) {
            return &f->recs[i];
        }
    }
    return NULL;
}

static json_t *last_json(struct fx *f, enum gw_record_type type)
{
    const struct rec *r = last_of(f, type);
    assert_non_null(r);
    json_t *j = json_loads(r->payload, 0, NULL);
    assert_non_null(j);
    return j;
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    assert_non_null(s);
    return s;
}

/* gw_hazard_desk_meta's entries, with its updated_at in *updated; -1 when it fails. */
static int meta_entries(struct fx *f, const char *id, int64_t *updated)
{
    int entries = -7;
    *updated = -7;
    int rc = gw_hazard_desk_meta(f->hd, id, updated, &entries);
    if (rc != 0) {
        assert_int_equal(rc, -ENOENT);
        assert_int_equal(entries, -7); /* untouched */
        return -1;
    }
    return entries;
}

#define OPEN_JSON                                                                                  \
    "{\"by\":\"li\",\"category\":\"fire_equipment\",\"building\":\"A\",\"floor\":\"1\","           \
    "\"description\":\"extinguisher missing\",\"responsible\":\"zhang\",\"id\":\"req-1\"}"

static void commands_write_entries_and_hazards(void **state)
{
    struct fx *f = *state;
    int64_t now = T0 + 1000;
    struct result r = run(f, "open", OPEN_JSON, now);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.hazard, "HZ-20261128-001");
    assert_string_equal(r.request_id, "req-1");
    assert_string_equal(r.status, "open");
    /* entry, then the hazard: both in the batch, on disk now */
    assert_int_equal(f->nrecs, 2);
    assert_int_equal(f->recs[0].type, GW_REC_HAZARD_LOG);
    assert_string_equal(f->recs[0].topic, "hazards/log");
    assert_int_equal(f->recs[1].type, GW_REC_HAZARD);
    assert_string_equal(f->recs[1].topic, "hazards/HZ-20261128-001");
    json_t *h = last_json(f, GW_REC_HAZARD);
    assert_string_equal(jstr(h, "status"), "open");
    assert_string_equal(jstr(h, "found_by"), "li");
    /* fire_equipment: 2 days (config) */
    assert_string_equal(jstr(h, "deadline"), "2026-11-30T02:00:01.000Z");
    assert_int_equal(json_integer_value(json_object_get(h, "entries")), 1);
    assert_int_equal(json_integer_value(json_object_get(h, "seq")), 2);
    json_decref(h);
    assert_int_equal(verified_entries(f, NULL), 1);
    /* the entry record is exactly gw_hazard_entry_to_json's */
    struct gw_hazard_entry e;
    char err[160];
    assert_int_equal(gw_hazard_entry_from_json(f->recs[0].payload, &e, err, sizeof(err)), 0);
    assert_int_equal(e.seq, 1);

    clear_recs(f);
    r = run(f, "update", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"wang\",\"responsible\":\"liu\"}",
            now + 1);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.status, "open");
    assert_string_equal(r.request_id, "");
    assert_int_equal(f->nrecs, 2);
    /* the same update again changes nothing: no entry, still ok */
    clear_recs(f);
    r = run(f, "update", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"wang\",\"responsible\":\"liu\"}",
            now + 2);
    assert_int_equal(r.rc, 0);
    assert_int_equal(f->nrecs, 0);
    r = run(f, "rectifying", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"liu\"}", now + 3);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.status, "rectifying");
    r = run(f, "close",
            "{\"hazard\":\"HZ-20261128-001\",\"by\":\"liu\",\"note\":\"new one hung\","
            "\"verifier\":\"chen\"}",
            now + 4);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.status, "closed");
    /* close clears the overdue alarm (none here: a no-op for the alarm desk), by the closer */
    assert_int_equal(f->nalarms, 1);
    assert_string_equal(f->alarms[0].key, "HZ-20261128-001/overdue");
    assert_false(f->alarms[0].on);
    assert_string_equal(f->alarms[0].by, "liu");
    h = last_json(f, GW_REC_HAZARD);
    assert_string_equal(jstr(h, "verified_by"), "chen");
    assert_int_equal(json_integer_value(json_object_get(h, "entries")), 4);
    json_decref(h);
    r = run(f, "reopen", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"chen\"}", now + 5);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.status, "open");
    assert_int_equal(verified_entries(f, NULL), 5);
    assert_int_equal(verified_entries(f, "HZ-20261128-001"), 5);
    assert_int_equal(verified_entries(f, "HZ-nope"), 0);
    /* the counts in memory say what the store says, without reading it */
    int64_t updated;
    assert_int_equal(meta_entries(f, "HZ-20261128-001", &updated), 5);
    assert_int_equal(updated, now + 5);
    assert_int_equal(meta_entries(f, "HZ-nope", &updated), -1);
    assert_int_equal(meta_entries(f, NULL, &updated), -1);

    /* refusals: clear errors, nothing written */
    clear_recs(f);
    static const struct {
        const char *name, *json;
        int rc;
        const char *error;
    } bad[] = {
        {"close", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"x\",\"verifier\":\"v\"}", -EINVAL,
         "close: a note on the fix is required"},
        {"rectifying", "{\"hazard\":\"HZ-20261128-009\",\"by\":\"x\"}", -ENOENT,
         "unknown hazard HZ-20261128-009"},
        {"reopen", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"x\"}", -EPERM,
         "reopen: not allowed while open"},
        {"open",
         "{\"by\":\"li\",\"category\":\"kitchen\",\"building\":\"A\",\"description\":\"d\","
         "\"responsible\":\"z\"}",
         -EINVAL, "unknown category"},
        {"update",
         "{\"hazard\":\"HZ-20261128-001\",\"by\":\"x\",\"deadline\":\"2026-11-28T01:00:00Z\"}",
         -EINVAL, "deadline must be later than now"},
        {"open", "{\"by\":\"li\"}", -EINVAL, "category is required"},
        {"open", "not json", -EINVAL, "not JSON"},
        {"update", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"\"}", -EINVAL, "by is required"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = run(f, bad[i].name, bad[i].json, now + 10);
        if (r.rc != bad[i].rc || !strstr(r.err, bad[i].error)) {
            print_error("bad %zu: rc %d err \"%s\"\n", i, r.rc, r.err);
        }
        assert_int_equal(r.rc, bad[i].rc);
        assert_non_null(strstr(r.err, bad[i].error));
        assert_null(r.status);
    }
    assert_int_equal(f->nrecs, 0);
    assert_int_equal(f->nalarms, 0);
    assert_int_equal(verified_entries(f, NULL), 5);
}

static void restart_keeps_register_and_chain(void **state)
{
    struct fx *f = *state;
    int64_t now = T0 + 1000;
    assert_int_equal(run(f, "open", OPEN_JSON, now).rc, 0);
    assert_int_equal(
        run(f, "rectifying", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"z\"}", now + 5).rc, 0);
    restart(f, now + DAY);
    /* the counts /api/hazards shows come back from the chain replayed at start */
    int64_t updated;
    assert_int_equal(meta_entries(f, "HZ-20261128-001", &updated), 2);
    assert_int_equal(updated, now + 5);
    assert_int_equal(meta_entries(f, "HZ-20261129-001", &updated), -1);
    const struct gw_hazards *reg = gw_hazard_desk_register(f->hd);
    assert_non_null(reg);
    char why[64];
    assert_true(gw_hazard_desk_ok(f->hd, why, sizeof(why)));
    assert_string_equal(why, "");
    assert_int_equal(gw_hazards_last_seq(reg, NULL), 2);
    const struct gw_hazard *h = gw_hazards_find(reg, "HZ-20261128-001");
    assert_non_null(h);
    assert_int_equal(h->status, GW_HZ_RECTIFYING);
    /* restore: the invalid alarm is cleared, the overdue one follows the register (off) */
    assert_int_equal(f->nalarms, 2);
    assert_string_equal(f->alarms[0].key, GW_HAZARD_INVALID_KEY);
    assert_false(f->alarms[0].on);
    assert_string_equal(f->alarms[1].key, "HZ-20261128-001/overdue");
    assert_false(f->alarms[1].on);
    /* the chain continues: a new hazard the next day gets that day's first id and seq 3 */
    struct result r = run(f, "open", OPEN_JSON, now + DAY);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.hazard, "HZ-20261129-001");
    assert_int_equal(verified_entries(f, NULL), 3);
    json_t *h2 = last_json(f, GW_REC_HAZARD);
    assert_int_equal(json_integer_value(json_object_get(h2, "entries")), 1);
    json_decref(h2);
    assert_int_equal(meta_entries(f, "HZ-20261129-001", &updated), 1);
    assert_int_equal(updated, now + DAY);
    assert_int_equal(meta_entries(f, "HZ-20261128-001", &updated), 2);
    assert_int_equal(updated, now + 5);
    /* the retained records again (a new broker) */
    clear_recs(f);
    gw_hazard_desk_snapshot(f->hd, now + DAY);
    end_iteration(f);
    assert_int_equal(f->nrecs, 2);
    assert_int_equal(f->recs[0].type, GW_REC_HAZARD);
}

static void overdue_raises_and_new_deadline_clears(void **state)
{
    struct fx *f = *state;
    int64_t now = T0 + 1000;
    assert_int_equal(
        run(f, "open",
            "{\"by\":\"li\",\"category\":\"electrical\",\"building\":\"A\",\"description\":\"d\","
            "\"responsible\":\"zhang\",\"deadline\":\"2026-11-28T10:00:05+08:00\"}",
            now)
            .rc,
        0);
    clear_recs(f);
    gw_hazard_desk_tick(f->hd, T0 + 4999);
    end_iteration(f);
    assert_int_equal(f->nrecs, 0);
    gw_hazard_desk_tick(f->hd, T0 + 5000);
    end_iteration(f);
    assert_int_equal(f->nrecs, 2);
    json_t *e = last_json(f, GW_REC_HAZARD_LOG);
    assert_string_equal(jstr(e, "action"), "overdue");
    assert_string_equal(jstr(e, "by"), "");
    json_decref(e);
    assert_int_equal(f->nalarms, 1);
    assert_string_equal(f->alarms[0].key, "HZ-20261128-001/overdue");
    assert_string_equal(f->alarms[0].name, GW_HAZARD_OVERDUE_NAME);
    assert_int_equal(f->alarms[0].cls, GW_CLASS_SUPERVISORY);
    assert_true(f->alarms[0].on);
    assert_string_equal(f->alarms[0].value, "2026-11-28 10:00"); /* local deadline */
    const struct gw_hazard *h = gw_hazard_desk_overdue_hazard(f->hd, "HZ-20261128-001/overdue");
    assert_non_null(h);
    assert_true(h->overdue);
    assert_null(gw_hazard_desk_overdue_hazard(f->hd, "HZ-20261128-002/overdue"));
    assert_null(gw_hazard_desk_overdue_hazard(f->hd, "A-1F-hydrant-01/overdue"));
    /* once per deadline */
    clear_recs(f);
    gw_hazard_desk_tick(f->hd, T0 + 60000);
    end_iteration(f);
    assert_int_equal(f->nrecs, 0);
    /* a restart raises it again (a duplicate for the alarm desk) */
    restart(f, T0 + 61000);
    assert_int_equal(f->nalarms, 2);
    assert_true(f->alarms[1].on);
    /* a new deadline clears it, acknowledged by whoever gave it */
    clear_recs(f);
    struct result r = run(
        f, "update", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"wang\",\"deadline\":1796119200000}",
        T0 + 62000);
    assert_int_equal(r.rc, 0);
    assert_int_equal(f->nalarms, 1);
    assert_false(f->alarms[0].on);
    assert_string_equal(f->alarms[0].by, "wang");
    assert_false(gw_hazards_find(gw_hazard_desk_register(f->hd), "HZ-20261128-001")->overdue);
    assert_int_equal(verified_entries(f, NULL), 3);
}

static struct gw_alarm rule_alarm(const struct gw_config *cfg, int rule, int sensor, double v)
{
    struct gw_alarm a;
    memset(&a, 0, sizeof(a));
    char slug[64];
    gw_slugify(cfg->rules[rule].name, slug, sizeof(slug));
    snprintf(a.key, sizeof(a.key), "%s/%s", cfg->sensors[sensor].id, slug);
    a.rule_index = rule;
    a.sensor_index = sensor;
    a.alarm_class = GW_CLASS_SUPERVISORY;
    a.state = GW_ALARM_UNACKED;
    a.condition = true;
    a.value = (struct gw_value){.type = GW_VALUE_NUMBER, .num = v};
    return a;
}

static void auto_open_from_supervisory_alarms(void **state)
{
    struct fx *f = *state;
    int64_t now = T0 + 1000;
    struct gw_alarm a = rule_alarm(f->cfg, 0, 0, 0.05);
    gw_hazard_desk_on_raise(f->hd, f->cfg, &a, now);
    /* the gateway's tick in the same loop iteration (a rule's on_delay raised it): the entry is
     * still in the open batch, which is no reason to read the register from the disk again */
    gw_hazard_desk_tick(f->hd, now);
    assert_int_equal(gw_hazards_last_seq(gw_hazard_desk_register(f->hd), NULL), 1);
    end_iteration(f);
    assert_int_equal(f->nrecs, 2);
    json_t *h = last_json(f, GW_REC_HAZARD);
    assert_string_equal(jstr(h, "category"), "fire_equipment");
    assert_string_equal(jstr(h, "building"), "A");
    assert_string_equal(jstr(h, "floor"), "1");
    assert_string_equal(jstr(h, "zone"), "east stair");
    assert_string_equal(jstr(h, "source_alarm"), "A-1F-hydrant-01/hydrant-pressure-low");
    assert_string_equal(jstr(h, "description"),
                        "hydrant pressure low (A-1F-hydrant-01), value 0.05");
    assert_string_equal(jstr(h, "found_by"), "");
    assert_string_equal(jstr(h, "responsible"), "");
    json_decref(h);
    /* raised again while its hazard is open: no second hazard */
    clear_recs(f);
    gw_hazard_desk_on_raise(f->hd, f->cfg, &a, now + 1);
    end_iteration(f);
    assert_int_equal(f->nrecs, 0);
    /* not listed, a test, a cleared condition: nothing */
    struct gw_alarm b = rule_alarm(f->cfg, 2, 0, 0.001);
    gw_hazard_desk_on_raise(f->hd, f->cfg, &b, now);
    struct gw_alarm t = rule_alarm(f->cfg, 1, 1, 0.1);
    t.test = true;
    gw_hazard_desk_on_raise(f->hd, f->cfg, &t, now);
    t.test = false;
    t.condition = false;
    gw_hazard_desk_on_raise(f->hd, f->cfg, &t, now);
    end_iteration(f);
    assert_int_equal(f->nrecs, 0);
    /* an exit without a location: evacuation route, named by its sensor */
    t.condition = true;
    t.value = (struct gw_value){.type = GW_VALUE_STRING};
    snprintf(t.value.str, sizeof(t.value.str), "locked");
    gw_hazard_desk_on_raise(f->hd, f->cfg, &t, now + 2);
    end_iteration(f);
    h = last_json(f, GW_REC_HAZARD);
    assert_string_equal(jstr(h, "id"), "HZ-20261128-002");
    assert_string_equal(jstr(h, "category"), "evacuation_route");
    assert_string_equal(jstr(h, "building"), "(sensor B-exit-01)");
    assert_string_equal(jstr(h, "description"), "exit locked (B-exit-01), value locked");
    /* evacuation_route: 1 day by default */
    assert_string_equal(jstr(h, "deadline"), "2026-11-29T02:00:01.002Z");
    json_decref(h);
    assert_int_equal(verified_entries(f, NULL), 2);
}

/* Drop the append-only triggers and edit a row: what an attacker with sqlite3 would do. */
static void tamper(struct fx *f, const char *sql)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        print_error("%s\n", msg);
    }
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_close(db);
}

static void count_row(void *ctx, uint64_t n, const char *hazard, int64_t at_ms, const char *entry)
{
    (void)n;
    (void)hazard;
    (void)at_ms;
    (void)entry;
    (*(int *)ctx)++;
}

static int hazard_rows(struct fx *f)
{
    int n = 0;
    int rc = gw_store_hazard_log(f->st, NULL, INT64_MIN, count_row, &n);
    assert_int_equal(rc, n);
    return n;
}

static void tampered_chain_refuses_everything(void **state)
{
    struct fx *f = *state;
    int64_t now = T0 + 1000;
    assert_int_equal(run(f, "open", OPEN_JSON, now).rc, 0);
    assert_int_equal(run(f, "open", OPEN_JSON, now + 1).rc, 0);
    assert_int_equal(
        run(f, "rectifying", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"z\"}", now + 2).rc, 0);
    tamper(f, "DROP TRIGGER hazard_log_no_update;"
              "UPDATE hazard_log SET entry = replace(entry, 'extinguisher missing', "
              "'nothing wrong') WHERE n = 2;");
    restart(f, now + 10);
    assert_null(gw_hazard_desk_register(f->hd));
    int64_t updated;
    assert_int_equal(meta_entries(f, "HZ-20261128-001", &updated), -1); /* no register, no counts */
    char why[GW_ERR_MAX];
    assert_false(gw_hazard_desk_ok(f->hd, why, sizeof(why)));
    assert_non_null(strstr(why, "seq 2"));
    /* the trouble alarm names the bad seq */
    assert_int_equal(f->nalarms, 1);
    assert_string_equal(f->alarms[0].key, GW_HAZARD_INVALID_KEY);
    assert_true(f->alarms[0].on);
    assert_int_equal(f->alarms[0].cls, GW_CLASS_TROUBLE);
    assert_string_equal(f->alarms[0].value, "seq 2");
    assert_non_null(strstr(f->alarms[0].name, "seq 2"));
    /* every command refused, nothing written, nothing opened, nothing overdue */
    clear_recs(f);
    struct result r = run(f, "open", OPEN_JSON, now + 20);
    assert_int_equal(r.rc, -EIO);
    assert_non_null(strstr(r.err, "the hazard register is invalid (seq 2"));
    assert_string_equal(r.request_id, "req-1");
    r = run(f, "close",
            "{\"hazard\":\"HZ-20261128-001\",\"by\":\"x\",\"note\":\"n\",\"verifier\":\"v\"}",
            now + 20);
    assert_int_equal(r.rc, -EIO);
    assert_string_equal(r.hazard, "HZ-20261128-001");
    /* a bad payload is still a bad payload */
    assert_int_equal(run(f, "open", "{", now + 20).rc, -EINVAL);
    struct gw_alarm a = rule_alarm(f->cfg, 0, 0, 0.05);
    gw_hazard_desk_on_raise(f->hd, f->cfg, &a, now + 20);
    gw_hazard_desk_tick(f->hd, now + 30 * DAY);
    gw_hazard_desk_snapshot(f->hd, now + 30 * DAY);
    end_iteration(f);
    assert_int_equal(f->nrecs, 0);
    assert_int_equal(hazard_rows(f), 3);
    /* a deleted row (triggers dropped) is caught the same way */
    tamper(f, "UPDATE hazard_log SET entry = replace(entry, 'nothing wrong', "
              "'extinguisher missing') WHERE n = 2;"
              "DROP TRIGGER hazard_log_no_delete; DELETE FROM hazard_log WHERE n = 2;");
    restart(f, now + 40);
    assert_false(gw_hazard_desk_ok(f->hd, why, sizeof(why)));
    assert_non_null(strstr(why, "seq 3"));
    assert_string_equal(f->alarms[0].value, "seq 3");
}

static void repaired_register_is_taken_on_reload(void **state)
{
    struct fx *f = *state;
    int64_t now = T0 + 1000;
    assert_int_equal(run(f, "open", OPEN_JSON, now).rc, 0);
    tamper(f, "DROP TRIGGER hazard_log_no_update;"
              "UPDATE hazard_log SET at = at + 1 WHERE n = 1;");
    restart(f, now + 10);
    char why[GW_ERR_MAX];
    assert_false(gw_hazard_desk_ok(f->hd, why, sizeof(why)));
    assert_non_null(strstr(why, "seq 1: the row's n, hazard or at do not match its entry"));
    tamper(f, "UPDATE hazard_log SET at = at - 1 WHERE n = 1;");
    clear_recs(f);
    assert_int_equal(gw_hazard_desk_reload(f->hd, f->cfg), 0);
    end_iteration(f);
    assert_true(gw_hazard_desk_ok(f->hd, why, sizeof(why)));
    /* the alarm clears and every hazard is published again */
    assert_string_equal(f->alarms[0].key, GW_HAZARD_INVALID_KEY);
    assert_false(f->alarms[0].on);
    assert_non_null(last_of(f, GW_REC_HAZARD));
    assert_int_equal(
        run(f, "rectifying", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"z\"}", now + 20).rc, 0);
    assert_int_equal(verified_entries(f, NULL), 2);
}

static void failing_store_refuses_then_catches_up(void **state)
{
    struct fx *f = *state;
    int64_t now = T0 + 1000;
    /* Another connection holds the database: the batch's commit fails. */
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    struct gw_hazard_desk *hd = f->hd;
    struct result r;
    memset(&r, 0, sizeof(r));
    r.rc = gw_hazard_desk_execute(hd, "open", OPEN_JSON, strlen(OPEN_JSON), now, r.request_id,
                                  r.hazard, &r.status, r.err, sizeof(r.err));
    assert_int_equal(r.rc, 0);
    assert_true(end_iteration(f) < 0);
    /* the register holds that entry; the store keeps it and retries: no more until then */
    r = run(f, "open", OPEN_JSON, now + 1);
    assert_int_equal(r.rc, -EIO);
    assert_non_null(strstr(r.err, "the store cannot write"));
    struct gw_alarm a = rule_alarm(f->cfg, 0, 0, 0.05);
    clear_recs(f);
    gw_hazard_desk_on_raise(f->hd, f->cfg, &a, now + 2); /* waits */
    gw_hazard_desk_tick(f->hd, now + 3);
    end_iteration(f);
    assert_int_equal(f->nrecs, 0);
    /* the disk is back: the waiting entry lands, the auto-open goes through on the next tick */
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(gw_store_commit(f->st), 0);
    gw_hazard_desk_tick(f->hd, now + 4);
    end_iteration(f);
    assert_int_equal(f->nrecs, 2);
    json_t *h = last_json(f, GW_REC_HAZARD);
    assert_string_equal(jstr(h, "id"), "HZ-20261128-002");
    assert_string_equal(jstr(h, "source_alarm"), "A-1F-hydrant-01/hydrant-pressure-low");
    json_decref(h);
    assert_int_equal(verified_entries(f, NULL), 2);
}

static void lost_record_rebuilds_from_disk(void **state)
{
    struct fx *f = *state;
    int64_t now = T0 + 1000;
    assert_int_equal(run(f, "open", OPEN_JSON, now).rc, 0);
    f->drop_logs = 1;
    assert_int_equal(
        run(f, "rectifying", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"z\"}", now + 1).rc, 0);
    assert_int_equal(gw_hazards_last_seq(gw_hazard_desk_register(f->hd), NULL), 2);
    int64_t updated;
    assert_int_equal(meta_entries(f, "HZ-20261128-001", &updated), 2);
    clear_recs(f);
    gw_hazard_desk_tick(f->hd, now + 2);
    end_iteration(f);
    /* back to what the disk holds, and the hazard published as it is there */
    assert_int_equal(gw_hazards_last_seq(gw_hazard_desk_register(f->hd), NULL), 1);
    assert_int_equal(meta_entries(f, "HZ-20261128-001", &updated), 1);
    assert_int_equal(updated, now);
    json_t *h = last_json(f, GW_REC_HAZARD);
    assert_string_equal(jstr(h, "status"), "open");
    json_decref(h);
    assert_int_equal(
        run(f, "rectifying", "{\"hazard\":\"HZ-20261128-001\",\"by\":\"z\"}", now + 3).rc, 0);
    assert_int_equal(verified_entries(f, NULL), 2);
}

static void reload_takes_new_settings(void **state)
{
    struct fx *f = *state;
    int64_t now = T0 + 1000;
    assert_int_equal(run(f, "open", OPEN_JSON, now).rc, 0);
    FILE *c = fopen(f->cfg_path, "w");
    fputs(cfg_text, c);
    fputs("kpi = { interval_s = 60; };\n", c);
    fclose(c);
    /* fire_equipment back to its default of 7 days, no auto-open */
    char *text = strdup(cfg_text);
    char *p = strstr(text, "hazards = ");
    *p = '\0';
    c = fopen(f->cfg_path, "w");
    fputs(text, c);
    fclose(c);
    free(text);
    struct gw_config *cfg = load_cfg(f->cfg_path);
    assert_int_equal(gw_hazard_desk_reload(f->hd, cfg), 0);
    gw_hazard_desk_tick(f->hd, now + 1);
    end_iteration(f);
    clear_recs(f);
    struct result r = run(f, "open", OPEN_JSON, now + 2);
    assert_int_equal(r.rc, 0);
    json_t *h = last_json(f, GW_REC_HAZARD);
    assert_string_equal(jstr(h, "deadline"), "2026-12-05T02:00:01.002Z");
    json_decref(h);
    clear_recs(f);
    struct gw_alarm a = rule_alarm(cfg, 0, 0, 0.05);
    gw_hazard_desk_on_raise(f->hd, cfg, &a, now + 3);
    end_iteration(f);
    assert_int_equal(f->nrecs, 0);
    assert_int_equal(verified_entries(f, NULL), 2);
    gw_config_free(f->cfg);
    f->cfg = cfg;
}

int main(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_parse_good),
        cmocka_unit_test(request_parse_bad),
        cmocka_unit_test(hazard_json_shape),
        cmocka_unit_test(result_json_shape),
        cmocka_unit_test(kinds_and_keys),
        cmocka_unit_test(overdue_notification_text),
        cmocka_unit_test_setup_teardown(commands_write_entries_and_hazards, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_keeps_register_and_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(overdue_raises_and_new_deadline_clears, setup, teardown),
        cmocka_unit_test_setup_teardown(auto_open_from_supervisory_alarms, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_chain_refuses_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(repaired_register_is_taken_on_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_store_refuses_then_catches_up, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_record_rebuilds_from_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(reload_takes_new_settings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
