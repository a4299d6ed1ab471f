/*
 * Hazard register tests: lifecycle (every command in every status), default
 * deadlines, ids by the site's day, auto-open once per alarm, overdue at the
 * exact deadline, the hash chain (tampering of every kind), JSON round trips
 * and restore. Time is an argument; every entry any call writes is appended
 * to the fixture's log, so the chain tests run on what the register wrote.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hazards.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define T0 1764336000000LL             /* 2025-11-28T13:20:00Z, 21:20 in Asia/Shanghai */
#define LOCAL_MIDNIGHT 1764345600000LL /* 2025-11-29T00:00 +08:00 */
#define LOG_MAX 256
/* See test_hash_known_answer. */
#define KNOWN_HASH "b4aa633d801ad2278cb35a2a9cb8e3fb747be31c83f93d858a8cb927bc99bee0"

#define RULE_HYD "hydrant pressure low"
#define RULE_EXIT "exit locked during school hours"
#define K_HYD "A-1F-hydrant-01/hydrant-pressure-low"
#define K_EXIT "A-1F-exit-east/exit-locked"

static const int days[GW_HZ_NCATEGORIES] = {3, 1, 7, 30, 14, 10};

struct fx {
    struct gw_hazards *hz;
    struct gw_hazard_entry log[LOG_MAX];
    int n;
    char err[200];
};

static struct gw_hazards_settings settings(void)
{
    static const char *const auto_open[] = {RULE_HYD, RULE_EXIT};
    struct gw_hazards_settings s = {.auto_open = auto_open, .nauto_open = 2, .utc_offset_min = 480};
    memcpy(s.deadline_days, days, sizeof(days));
    return s;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct gw_hazards_settings s = settings();
    f->hz = gw_hazards_new(&s);
    assert_non_null(f->hz);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_hazards_free(f->hz);
    free(f);
    return 0;
}

/* Run a command; a written entry goes to the log. */
static int cmd(struct fx *f, struct gw_hazard_command c, int64_t now)
{
    struct gw_hazard_entry e;
    f->err[0] = '\0';
    uint64_t before = gw_hazards_last_seq(f->hz, NULL);
    int rc = gw_hazards_command(f->hz, &c, now, &e, f->err, sizeof(f->err));
    if (rc == 1) {
        assert_true(f->n < LOG_MAX);
        f->log[f->n++] = e;
        assert_int_equal(gw_hazards_last_seq(f->hz, NULL), before + 1);
    } else {
        assert_int_equal(gw_hazards_last_seq(f->hz, NULL), before); /* nothing changed */
        if (rc < 0) {
            assert_true(f->err[0] != '\0');
        }
    }
    return rc;
}

static struct gw_hazard_command open_cmd(const char *category)
{
    return (struct gw_hazard_command){.type = GW_HZ_CMD_OPEN,
                                      .by = "li",
                                      .category = category,
                                      .building = "A",
                                      .floor = "1F",
                                      .zone = "east stair",
                                      .description = "extinguisher missing",
                                      .responsible = "zhang"};
}

/* Open one (fire_equipment) at `now`: its id. */
static const char *open_one(struct fx *f, int64_t now)
{
    assert_int_equal(cmd(f, open_cmd("fire_equipment"), now), 1);
    return f->log[f->n - 1].hazard.id;
}

static int simple(struct fx *f, enum gw_hazard_cmd_type type, const char *id, int64_t now)
{
    return cmd(f,
               (struct gw_hazard_command){
                   .type = type, .id = id, .by = "wang", .note = "fixed", .verifier = "chen"},
               now);
}

static int alarm(struct fx *f, const char *rule, const char *key, int64_t now)
{
    struct gw_hazard_alarm a = {.rule_name = rule,
                                .key = key,
                                .category = GW_HZ_FIRE_EQUIPMENT,
                                .building = "A",
                                .floor = "1F",
                                .description = "hydrant pressure low: 0.02 MPa"};
    struct gw_hazard_entry e;
    int rc = gw_hazards_on_alarm(f->hz, &a, now, &e, f->err, sizeof(f->err));
    if (rc == 1) {
        f->log[f->n++] = e;
    }
    return rc;
}

static int tick(struct fx *f, int64_t now, int max)
{
    struct gw_hazard_entry out[8];
    assert_true(max <= 8);
    int rc = gw_hazards_tick(f->hz, now, out, max);
    for (int i = 0; i < rc; i++) {
        f->log[f->n++] = out[i];
    }
    return rc;
}

/* ---- open ---- */

static void test_open_by_person(void **state)
{
    struct fx *f = *state;
    struct gw_hazard_command c = open_cmd("electrical");
    c.note = "seen on inspection";
    assert_int_equal(cmd(f, c, T0), 1);
    const struct gw_hazard_entry *e = &f->log[0];
    assert_int_equal(e->seq, 1);
    assert_string_equal(e->action, "open");
    assert_string_equal(e->by, "li");
    assert_string_equal(e->note, "seen on inspection");
    assert_int_equal(e->fields, GW_HZF_ALL);
    assert_string_equal(e->prev_hash,
                        "0000000000000000000000000000000000000000000000000000000000000000");
    assert_string_equal(e->hazard.id, "HZ-20251128-001");
    const struct gw_hazard *h = gw_hazards_find(f->hz, "HZ-20251128-001");
    assert_non_null(h);
    assert_int_equal(h->category, GW_HZ_ELECTRICAL);
    assert_string_equal(h->building, "A");
    assert_string_equal(h->floor, "1F");
    assert_string_equal(h->zone, "east stair");
    assert_string_equal(h->description, "extinguisher missing");
    assert_int_equal(h->found_at_ms, T0);
    assert_string_equal(h->found_by, "li");
    assert_string_equal(h->source_alarm, "");
    assert_string_equal(h->responsible, "zhang");
    assert_int_equal(h->deadline_ms, T0 + 7 * DAY);
    assert_int_equal(h->status, GW_HZ_OPEN);
    assert_false(h->overdue);
    char head[GW_HZ_HASH_HEX];
    assert_int_equal(gw_hazards_last_seq(f->hz, head), 1);
    assert_string_equal(head, e->hash);
}

static void test_default_deadline_per_category(void **state)
{
    struct fx *f = *state;
    static const char *const names[GW_HZ_NCATEGORIES] = {
        "fire_equipment", "evacuation_route", "electrical", "structure", "surroundings", "other"};
    for (int c = 0; c < GW_HZ_NCATEGORIES; c++) {
        assert_int_equal(gw_hazard_category_from_name(names[c]), c);
        assert_string_equal(gw_hazard_category_name((enum gw_hazard_category)c), names[c]);
        assert_int_equal(cmd(f, open_cmd(names[c]), T0 + c), 1);
        const struct gw_hazard *h = gw_hazards_find(f->hz, f->log[f->n - 1].hazard.id);
        assert_int_equal(h->category, c);
        assert_int_equal(h->deadline_ms, T0 + c + days[c] * DAY);
    }
    /* An explicit deadline wins; one ms after now is the earliest. */
    struct gw_hazard_command c = open_cmd("structure");
    c.deadline_ms = T0 + 1;
    assert_int_equal(cmd(f, c, T0), 1);
    assert_int_equal(gw_hazards_find(f->hz, f->log[f->n - 1].hazard.id)->deadline_ms, T0 + 1);
    c.deadline_ms = T0;
    assert_int_equal(cmd(f, c, T0), -EINVAL);
    assert_non_null(strstr(f->err, "deadline"));
}

static void test_ids_by_site_day(void **state)
{
    struct fx *f = *state;
    assert_string_equal(open_one(f, T0), "HZ-20251128-001");
    assert_string_equal(open_one(f, T0 + 1), "HZ-20251128-002");
    /* The last ms of the site's day, then its midnight (16:00Z). */
    assert_string_equal(open_one(f, LOCAL_MIDNIGHT - 1), "HZ-20251128-003");
    assert_string_equal(open_one(f, LOCAL_MIDNIGHT), "HZ-20251129-001");
    assert_string_equal(open_one(f, LOCAL_MIDNIGHT + HOUR), "HZ-20251129-002");
    /* Closing does not free a number: ids stay unique. */
    assert_int_equal(simple(f, GW_HZ_CMD_CLOSE, "HZ-20251129-002", LOCAL_MIDNIGHT + 2 * HOUR), 1);
    assert_string_equal(open_one(f, LOCAL_MIDNIGHT + 3 * HOUR), "HZ-20251129-003");
    int it = 0, count = 0;
    const struct gw_hazard *h;
    while ((h = gw_hazards_next(f->hz, &it)) != NULL) {
        count++;
    }
    assert_int_equal(count, 6);
}

static void test_open_errors(void **state)
{
    struct fx *f = *state;
    struct {
        const char *field;
        const char *value;
        const char *expect;
    } bad[] = {
        {"by", NULL, "by is required"},
        {"by", "", "by is required"},
        {"by", "0123456789012345678901234567890123456789012345678", "by is too long"},
        {"category", NULL, "category is required"},
        {"category", "fire", "unknown category"},
        {"building", NULL, "building is required"},
        {"floor", "\xff", "floor is not valid UTF-8"},
        {"zone", "\xc0\xaf", "zone is not valid UTF-8"},
        {"description", "", "description is required"},
        {"responsible", NULL, "responsible is required"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gw_hazard_command c = open_cmd("other");
        const char **slot = strcmp(bad[i].field, "by") == 0            ? &c.by
                            : strcmp(bad[i].field, "category") == 0    ? &c.category
                            : strcmp(bad[i].field, "building") == 0    ? &c.building
                            : strcmp(bad[i].field, "floor") == 0       ? &c.floor
                            : strcmp(bad[i].field, "zone") == 0        ? &c.zone
                            : strcmp(bad[i].field, "description") == 0 ? &c.description
                                                                       : &c.responsible;
        *slot = bad[i].value;
        assert_int_equal(cmd(f, c, T0), -EINVAL);
        assert_non_null(strstr(f->err, bad[i].expect));
    }
    char longdesc[GW_HZ_DESC_MAX + 1];
    memset(longdesc, 'x', sizeof(longdesc) - 1);
    longdesc[GW_HZ_DESC_MAX] = '\0';
    struct gw_hazard_command c = open_cmd("other");
    c.description = longdesc;
    assert_int_equal(cmd(f, c, T0), -EINVAL);
    longdesc[GW_HZ_DESC_MAX - 1] = '\0'; /* exactly the maximum fits */
    assert_int_equal(cmd(f, c, T0), 1);
    char longnote[GW_NOTE_MAX + 1];
    memset(longnote, 'n', GW_NOTE_MAX);
    longnote[GW_NOTE_MAX] = '\0';
    c = open_cmd("other");
    c.note = longnote;
    assert_int_equal(cmd(f, c, T0), -EINVAL);
    c = open_cmd("other");
    c.type = (enum gw_hazard_cmd_type)99;
    assert_int_equal(cmd(f, c, T0), -EINVAL);
    assert_int_equal(gw_hazards_command(f->hz, NULL, T0, &f->log[0], f->err, sizeof(f->err)),
                     -EINVAL);
    assert_int_equal(f->n, 1);
}

/* ---- lifecycle ---- */

/* A fresh hazard in `status`; its id. */
static const char *in_status(struct fx *f, enum gw_hazard_status status, int64_t now)
{
    const char *id = open_one(f, now);
    if (status == GW_HZ_RECTIFYING) {
        assert_int_equal(simple(f, GW_HZ_CMD_RECTIFYING, id, now), 1);
    } else if (status == GW_HZ_CLOSED) {
        assert_int_equal(simple(f, GW_HZ_CMD_CLOSE, id, now), 1);
    }
    assert_int_equal(gw_hazards_find(f->hz, id)->status, status);
    return gw_hazards_find(f->hz, id)->id;
}

static void test_every_command_in_every_status(void **state)
{
    struct fx *f = *state;
    static const struct {
        enum gw_hazard_status from;
        enum gw_hazard_cmd_type type;
        int rc;
        enum gw_hazard_status to;
    } table[] = {
        {GW_HZ_OPEN, GW_HZ_CMD_UPDATE, 1, GW_HZ_OPEN},
        {GW_HZ_OPEN, GW_HZ_CMD_RECTIFYING, 1, GW_HZ_RECTIFYING},
        {GW_HZ_OPEN, GW_HZ_CMD_CLOSE, 1, GW_HZ_CLOSED},
        {GW_HZ_OPEN, GW_HZ_CMD_REOPEN, -EPERM, GW_HZ_OPEN},
        {GW_HZ_RECTIFYING, GW_HZ_CMD_UPDATE, 1, GW_HZ_RECTIFYING},
        {GW_HZ_RECTIFYING, GW_HZ_CMD_RECTIFYING, -EPERM, GW_HZ_RECTIFYING},
        {GW_HZ_RECTIFYING, GW_HZ_CMD_CLOSE, 1, GW_HZ_CLOSED},
        {GW_HZ_RECTIFYING, GW_HZ_CMD_REOPEN, -EPERM, GW_HZ_RECTIFYING},
        {GW_HZ_CLOSED, GW_HZ_CMD_UPDATE, -EPERM, GW_HZ_CLOSED},
        {GW_HZ_CLOSED, GW_HZ_CMD_RECTIFYING, -EPERM, GW_HZ_CLOSED},
        {GW_HZ_CLOSED, GW_HZ_CMD_CLOSE, -EPERM, GW_HZ_CLOSED},
        {GW_HZ_CLOSED, GW_HZ_CMD_REOPEN, 1, GW_HZ_OPEN},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        int64_t now = T0 + (int64_t)i * MIN;
        const char *id = in_status(f, table[i].from, now);
        struct gw_hazard_command c = {.type = table[i].type,
                                      .id = id,
                                      .by = "wang",
                                      .note = "done",
                                      .verifier = "chen",
                                      .responsible = "zhao"};
        int rc = cmd(f, c, now + SEC);
        assert_int_equal(rc, table[i].rc);
        const struct gw_hazard *h = gw_hazards_find(f->hz, id);
        assert_int_equal(h->status, table[i].to);
        if (rc == 1) {
            assert_string_equal(f->log[f->n - 1].action, gw_hazard_cmd_name(table[i].type));
            assert_string_equal(f->log[f->n - 1].by, "wang");
            assert_int_equal(f->log[f->n - 1].at_ms, now + SEC);
        } else {
            assert_non_null(strstr(f->err, gw_hazard_status_name(table[i].from)));
        }
    }
    assert_int_equal(gw_hazard_chain_verify(f->log, f->n, f->err, sizeof(f->err)), -1);
}

static void test_close_needs_note_and_verifier(void **state)
{
    struct fx *f = *state;
    const char *id = open_one(f, T0);
    struct gw_hazard_command c = {
        .type = GW_HZ_CMD_CLOSE, .id = id, .by = "wang", .verifier = "chen"};
    assert_int_equal(cmd(f, c, T0 + 1), -EINVAL);
    assert_non_null(strstr(f->err, "note"));
    c.note = "";
    assert_int_equal(cmd(f, c, T0 + 1), -EINVAL);
    c.note = "replaced the extinguisher";
    c.verifier = NULL;
    assert_int_equal(cmd(f, c, T0 + 1), -EINVAL);
    assert_non_null(strstr(f->err, "verifier"));
    c.verifier = "chen";
    assert_int_equal(cmd(f, c, T0 + 1), 1);
    const struct gw_hazard_entry *e = &f->log[f->n - 1];
    assert_string_equal(e->action, "close");
    assert_string_equal(e->note, "replaced the extinguisher");
    assert_int_equal(e->fields, GW_HZF_STATUS | GW_HZF_VERIFIED_BY);
    const struct gw_hazard *h = gw_hazards_find(f->hz, id);
    assert_int_equal(h->status, GW_HZ_CLOSED);
    assert_string_equal(h->verified_by, "chen");
}

static void test_unknown_and_missing_id(void **state)
{
    struct fx *f = *state;
    open_one(f, T0);
    for (int t = GW_HZ_CMD_UPDATE; t <= GW_HZ_CMD_REOPEN; t++) {
        assert_int_equal(simple(f, (enum gw_hazard_cmd_type)t, "HZ-20251128-009", T0), -ENOENT);
        assert_non_null(strstr(f->err, "unknown hazard"));
        assert_int_equal(simple(f, (enum gw_hazard_cmd_type)t, NULL, T0), -EINVAL);
        assert_int_equal(simple(f, (enum gw_hazard_cmd_type)t, "", T0), -EINVAL);
    }
    assert_int_equal(f->n, 1);
}

static void test_update(void **state)
{
    struct fx *f = *state;
    const char *id = open_one(f, T0);
    struct gw_hazard_command c = {.type = GW_HZ_CMD_UPDATE, .id = id, .by = "wang"};
    assert_int_equal(cmd(f, c, T0), -EINVAL); /* nothing given */
    c.responsible = "";
    assert_int_equal(cmd(f, c, T0), -EINVAL);
    c.responsible = "zhang"; /* the same person: no change, no entry */
    assert_int_equal(cmd(f, c, T0), 0);
    c.responsible = "zhao";
    c.description = "extinguisher missing and sign broken";
    assert_int_equal(cmd(f, c, T0 + SEC), 1);
    assert_int_equal(f->log[f->n - 1].fields, GW_HZF_RESPONSIBLE | GW_HZF_DESCRIPTION);
    c = (struct gw_hazard_command){
        .type = GW_HZ_CMD_UPDATE, .id = id, .by = "wang", .deadline_ms = T0 + 10 * DAY};
    assert_int_equal(cmd(f, c, T0 + 2 * SEC), 1);
    assert_int_equal(f->log[f->n - 1].fields, GW_HZF_DEADLINE);
    const struct gw_hazard *h = gw_hazards_find(f->hz, id);
    assert_string_equal(h->responsible, "zhao");
    assert_string_equal(h->description, "extinguisher missing and sign broken");
    assert_int_equal(h->deadline_ms, T0 + 10 * DAY);
    c.deadline_ms = T0 + 2 * SEC;
    assert_int_equal(cmd(f, c, T0 + 2 * SEC), -EINVAL); /* not after now */
}

static void test_reopen(void **state)
{
    struct fx *f = *state;
    const char *id = open_one(f, T0);
    assert_int_equal(simple(f, GW_HZ_CMD_CLOSE, id, T0 + HOUR), 1);
    assert_int_equal(simple(f, GW_HZ_CMD_REOPEN, id, T0 + 10 * DAY), 1);
    const struct gw_hazard *h = gw_hazards_find(f->hz, id);
    assert_int_equal(h->status, GW_HZ_OPEN);
    assert_string_equal(h->verified_by, "");
    assert_int_equal(h->deadline_ms, T0 + 10 * DAY + 3 * DAY); /* fire_equipment: 3 days */
    assert_int_equal(h->found_at_ms, T0);
    struct gw_hazard_command c = {
        .type = GW_HZ_CMD_CLOSE, .id = id, .by = "wang", .note = "ok", .verifier = "chen"};
    assert_int_equal(cmd(f, c, T0 + 11 * DAY), 1);
    c = (struct gw_hazard_command){
        .type = GW_HZ_CMD_REOPEN, .id = id, .by = "wang", .deadline_ms = T0 + 12 * DAY};
    assert_int_equal(cmd(f, c, T0 + 11 * DAY), 1);
    assert_int_equal(gw_hazards_find(f->hz, id)->deadline_ms, T0 + 12 * DAY);
    /* History: open, close, reopen, close, reopen, nothing lost. */
    const char *actions[] = {"open", "close", "reopen", "close", "reopen"};
    assert_int_equal(f->n, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(f->log[i].action, actions[i]);
        assert_int_equal(f->log[i].seq, (uint64_t)i + 1);
    }
}

/* ---- auto-open ---- */

static void test_auto_open_once_per_alarm(void **state)
{
    struct fx *f = *state;
    assert_int_equal(alarm(f, "smoke detected", "A-3F-smoke-301/smoke-detected", T0), 0);
    assert_int_equal(alarm(f, RULE_HYD, K_HYD, T0), 1);
    const struct gw_hazard_entry *e = &f->log[0];
    assert_string_equal(e->by, "");
    assert_string_equal(e->action, "open");
    const struct gw_hazard *h = gw_hazards_find(f->hz, e->hazard.id);
    assert_string_equal(h->source_alarm, K_HYD);
    assert_string_equal(h->found_by, "");
    assert_int_equal(h->deadline_ms, T0 + 3 * DAY);
    assert_string_equal(h->description, "hydrant pressure low: 0.02 MPa");
    /* The alarm raises again (cleared and back): still one hazard. */
    assert_int_equal(alarm(f, RULE_HYD, K_HYD, T0 + HOUR), 0);
    assert_int_equal(simple(f, GW_HZ_CMD_RECTIFYING, h->id, T0 + 2 * HOUR), 1);
    assert_int_equal(alarm(f, RULE_HYD, K_HYD, T0 + 3 * HOUR), 0);
    /* Another alarm key of a listed rule: its own hazard. */
    assert_int_equal(alarm(f, RULE_EXIT, K_EXIT, T0 + 3 * HOUR), 1);
    /* Once the hazard is closed, a new raise opens a new one. */
    assert_int_equal(simple(f, GW_HZ_CMD_CLOSE, "HZ-20251128-001", T0 + 4 * HOUR), 1);
    assert_int_equal(alarm(f, RULE_HYD, K_HYD, T0 + 5 * HOUR), 1);
    /* The exit's hazard (00:20 local) was the 29th's first. */
    assert_string_equal(f->log[f->n - 1].hazard.id, "HZ-20251129-002");
    assert_int_equal(f->n, 5);
    /* Bad input. */
    assert_int_equal(alarm(f, RULE_HYD, NULL, T0), -EINVAL);
    assert_int_equal(alarm(f, NULL, K_HYD, T0), -EINVAL);
    struct gw_hazard_alarm a = {.rule_name = RULE_HYD,
                                .key = "x/y",
                                .category = (enum gw_hazard_category)9,
                                .building = "A",
                                .description = "d"};
    struct gw_hazard_entry out;
    assert_int_equal(gw_hazards_on_alarm(f->hz, &a, T0, &out, f->err, sizeof(f->err)), -EINVAL);
    a.category = GW_HZ_OTHER;
    a.building = NULL;
    assert_int_equal(gw_hazards_on_alarm(f->hz, &a, T0, &out, f->err, sizeof(f->err)), -EINVAL);
    assert_int_equal(gw_hazards_last_seq(f->hz, NULL), 5);
}

/* ---- overdue ---- */

static void test_overdue_exactly_at_deadline(void **state)
{
    struct fx *f = *state;
    const char *id = open_one(f, T0); /* deadline T0 + 3 days */
    int64_t deadline = T0 + 3 * DAY;
    struct gw_hazard_counts c;
    assert_int_equal(tick(f, deadline - 1, 8), 0);
    gw_hazards_count(f->hz, deadline - 1, &c);
    assert_int_equal(c.open, 1);
    assert_int_equal(c.overdue, 0);
    assert_int_equal(tick(f, deadline, 8), 1);
    const struct gw_hazard_entry *e = &f->log[f->n - 1];
    assert_string_equal(e->action, "overdue");
    assert_string_equal(e->by, "");
    assert_int_equal(e->at_ms, deadline);
    assert_int_equal(e->fields, GW_HZF_OVERDUE);
    assert_true(gw_hazards_find(f->hz, id)->overdue);
    gw_hazards_count(f->hz, deadline, &c);
    assert_int_equal(c.overdue, 1);
    /* Once. */
    assert_int_equal(tick(f, deadline + 1, 8), 0);
    assert_int_equal(tick(f, deadline + DAY, 8), 0);
    /* A new deadline: overdue cleared, escalates again when it passes. */
    struct gw_hazard_command u = {
        .type = GW_HZ_CMD_UPDATE, .id = id, .by = "wang", .deadline_ms = deadline + 2 * DAY};
    assert_int_equal(cmd(f, u, deadline + DAY), 1);
    assert_int_equal(f->log[f->n - 1].fields, GW_HZF_DEADLINE | GW_HZF_OVERDUE);
    assert_false(gw_hazards_find(f->hz, id)->overdue);
    gw_hazards_count(f->hz, deadline + DAY, &c);
    assert_int_equal(c.overdue, 0);
    assert_int_equal(tick(f, deadline + 2 * DAY - 1, 8), 0);
    assert_int_equal(tick(f, deadline + 2 * DAY, 8), 1);
    /* Rectifying still escalates; closed does not. */
    assert_int_equal(simple(f, GW_HZ_CMD_CLOSE, id, deadline + 3 * DAY), 1);
    gw_hazards_count(f->hz, deadline + 3 * DAY, &c);
    assert_int_equal(c.open + c.rectifying + c.overdue, 0);
    assert_int_equal(gw_hazard_chain_verify(f->log, f->n, f->err, sizeof(f->err)), -1);
}

static void test_overdue_counts_and_room(void **state)
{
    struct fx *f = *state;
    const char *a = in_status(f, GW_HZ_OPEN, T0);
    const char *b = in_status(f, GW_HZ_RECTIFYING, T0);
    in_status(f, GW_HZ_CLOSED, T0);
    in_status(f, GW_HZ_OPEN, T0);
    struct gw_hazard_counts c;
    gw_hazards_count(f->hz, T0, &c);
    assert_int_equal(c.open, 2);
    assert_int_equal(c.rectifying, 1);
    assert_int_equal(c.overdue, 0);
    /* Three due at once, room for two: the third comes with the next call. */
    assert_int_equal(tick(f, T0 + 3 * DAY, 2), 2);
    assert_string_equal(f->log[f->n - 2].hazard.id, a);
    assert_string_equal(f->log[f->n - 1].hazard.id, b);
    assert_int_equal(tick(f, T0 + 3 * DAY, 2), 1);
    assert_int_equal(tick(f, T0 + 3 * DAY, 2), 0);
    gw_hazards_count(f->hz, T0 + 3 * DAY, &c);
    assert_int_equal(c.open, 2);
    assert_int_equal(c.rectifying, 1);
    assert_int_equal(c.overdue, 3);
    assert_int_equal(tick(f, T0 + 3 * DAY, 0), 0);
}

/* ---- the chain ---- */

/* A varied history of about a dozen entries. */
static void build_history(struct fx *f)
{
    const char *id = open_one(f, T0);
    assert_int_equal(alarm(f, RULE_HYD, K_HYD, T0 + MIN), 1);
    struct gw_hazard_command u = {.type = GW_HZ_CMD_UPDATE,
                                  .id = id,
                                  .by = "wang",
                                  .responsible = "赵老师",
                                  .description = "灭火器缺失 \"east\" / stair\n2nd line",
                                  .note = "reassigned"};
    assert_int_equal(cmd(f, u, T0 + 2 * MIN), 1);
    assert_int_equal(simple(f, GW_HZ_CMD_RECTIFYING, id, T0 + 3 * MIN), 1);
    assert_int_equal(tick(f, T0 + 3 * DAY + MIN, 8), 2);
    assert_int_equal(simple(f, GW_HZ_CMD_CLOSE, id, T0 + 4 * DAY), 1);
    assert_int_equal(simple(f, GW_HZ_CMD_REOPEN, id, T0 + 5 * DAY), 1);
    assert_string_equal(open_one(f, T0 + 5 * DAY), "HZ-20251203-001");
    assert_int_equal(simple(f, GW_HZ_CMD_CLOSE, "HZ-20251203-001", T0 + 6 * DAY), 1);
    assert_int_equal(f->n, 10);
}

static void test_chain_verifies(void **state)
{
    struct fx *f = *state;
    build_history(f);
    assert_int_equal(gw_hazard_chain_verify(f->log, f->n, f->err, sizeof(f->err)), -1);
    assert_non_null(strstr(f->err, "intact"));
    for (int i = 1; i < f->n; i++) {
        assert_string_equal(f->log[i].prev_hash, f->log[i - 1].hash);
        assert_string_not_equal(f->log[i].hash, f->log[i - 1].hash);
    }
    assert_int_equal(gw_hazard_chain_verify(f->log, 0, f->err, sizeof(f->err)), -1);
}

static void test_chain_detects_changed_field(void **state)
{
    struct fx *f = *state;
    build_history(f);
    struct gw_hazard_entry copy[LOG_MAX];
    memcpy(copy, f->log, sizeof(copy));
    copy[2].hazard.responsible[sizeof("赵老") - 1] = 'X'; /* breaks the last character */
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), 2);
    assert_non_null(strstr(f->err, "not valid UTF-8"));
    memcpy(copy, f->log, sizeof(copy));
    copy[2].hazard.description[strlen(copy[2].hazard.description) - 1] = 'X';
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), 2);
    assert_non_null(strstr(f->err, "hash mismatch"));
    /* Every part of an entry is covered. */
    memcpy(copy, f->log, sizeof(copy));
    copy[5].at_ms++;
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), 5);
    memcpy(copy, f->log, sizeof(copy));
    copy[5].by[0] = 'x';
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), 5);
    memcpy(copy, f->log, sizeof(copy));
    copy[5].note[0] = 'x';
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), 5);
    memcpy(copy, f->log, sizeof(copy));
    copy[5].action = "update";
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), 5);
    memcpy(copy, f->log, sizeof(copy));
    copy[0].hazard.deadline_ms += DAY;
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), 0);
    /* Changed and re-hashed: the next entry's prev_hash no longer matches. */
    memcpy(copy, f->log, sizeof(copy));
    copy[3].hazard.status = GW_HZ_CLOSED;
    assert_int_equal(gw_hazard_entry_hash(&copy[3], copy[3].hash), 0);
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), 4);
    assert_non_null(strstr(f->err, "prev_hash"));
}

static void test_chain_detects_removed_and_reordered(void **state)
{
    struct fx *f = *state;
    build_history(f);
    struct gw_hazard_entry copy[LOG_MAX];
    /* Removed: entry 3 dropped. */
    memcpy(copy, f->log, sizeof(copy));
    memmove(&copy[3], &copy[4], (size_t)(f->n - 4) * sizeof(copy[0]));
    assert_int_equal(gw_hazard_chain_verify(copy, f->n - 1, f->err, sizeof(f->err)), 3);
    /* Removed and the later seqs renumbered: still caught by prev_hash. */
    for (int i = 3; i < f->n - 1; i++) {
        copy[i].seq--;
    }
    assert_int_equal(gw_hazard_chain_verify(copy, f->n - 1, f->err, sizeof(f->err)), 3);
    /* The first entry removed. */
    assert_int_equal(gw_hazard_chain_verify(f->log + 1, f->n - 1, f->err, sizeof(f->err)), 0);
    /* A reordered pair. */
    memcpy(copy, f->log, sizeof(copy));
    copy[6] = f->log[7];
    copy[7] = f->log[6];
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), 6);
    /* A changed hash (the last one: nothing after it to notice but itself). */
    memcpy(copy, f->log, sizeof(copy));
    copy[f->n - 1].hash[10] = copy[f->n - 1].hash[10] == 'a' ? 'b' : 'a';
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), f->n - 1);
    memcpy(copy, f->log, sizeof(copy));
    copy[4].prev_hash[0] = copy[4].prev_hash[0] == 'a' ? 'b' : 'a';
    assert_int_equal(gw_hazard_chain_verify(copy, f->n, f->err, sizeof(f->err)), 4);
}

/*
 * The documented canonical form, checked independently: this hash was made
 * by Python's hashlib over json.dumps(entry without "hash", sort_keys=True,
 * separators=(",", ":"), ensure_ascii=False).encode().
 */
static void test_hash_known_answer(void **state)
{
    (void)state;
    struct gw_hazard_entry e = {
        .seq = 2,
        .at_ms = T0,
        .by = "王老师",
        .action = "update",
        .fields = GW_HZF_DESCRIPTION | GW_HZF_DEADLINE | GW_HZF_OVERDUE,
        .hazard = {.id = "HZ-20251128-001",
                   .description = "exit \"B\" / 2F\nlocked",
                   .deadline_ms = T0 + DAY,
                   .overdue = false},
        .note = "",
        .prev_hash = "0000000000000000000000000000000000000000000000000000000000000000"};
    char hash[GW_HZ_HASH_HEX];
    assert_int_equal(gw_hazard_entry_hash(&e, hash), 0);
    assert_string_equal(hash, KNOWN_HASH);
}

/* ---- JSON ---- */

static void test_json_round_trip(void **state)
{
    struct fx *f = *state;
    build_history(f);
    struct gw_hazard_entry parsed[LOG_MAX];
    for (int i = 0; i < f->n; i++) {
        char *json = gw_hazard_entry_to_json(&f->log[i]);
        assert_non_null(json);
        assert_int_equal(gw_hazard_entry_from_json(json, &parsed[i], f->err, sizeof(f->err)), 0);
        char *again = gw_hazard_entry_to_json(&parsed[i]);
        assert_string_equal(json, again);
        assert_int_equal(parsed[i].seq, f->log[i].seq);
        assert_int_equal(parsed[i].at_ms, f->log[i].at_ms);
        assert_int_equal(parsed[i].fields, f->log[i].fields);
        assert_ptr_equal(parsed[i].action, f->log[i].action); /* the same static name */
        assert_string_equal(parsed[i].hash, f->log[i].hash);
        free(json);
        free(again);
    }
    assert_string_equal(parsed[2].hazard.responsible, "赵老师");
    assert_string_equal(parsed[2].hazard.description, "灭火器缺失 \"east\" / stair\n2nd line");
    assert_int_equal(gw_hazard_chain_verify(parsed, f->n, f->err, sizeof(f->err)), -1);

    /* Tampering with the stored text is caught after the parse. */
    char *json = gw_hazard_entry_to_json(&f->log[2]);
    char *p = strstr(json, "reassigned");
    assert_non_null(p);
    p[0] = 'R';
    assert_int_equal(gw_hazard_entry_from_json(json, &parsed[2], f->err, sizeof(f->err)), 0);
    assert_int_equal(gw_hazard_chain_verify(parsed, f->n, f->err, sizeof(f->err)), 2);
    free(json);
}

static void test_json_rejects(void **state)
{
    struct fx *f = *state;
    open_one(f, T0);
    char *good = gw_hazard_entry_to_json(&f->log[0]);
    struct gw_hazard_entry e;
    assert_int_equal(gw_hazard_entry_from_json(good, &e, f->err, sizeof(f->err)), 0);
    static const struct {
        const char *from, *to, *expect;
    } edits[] = {
        {"\"seq\":1", "\"seq\":0", "seq"},
        {"\"seq\":1", "\"seq\":\"1\"", "seq"},
        {"\"seq\":1", "\"sequence\":1", "unknown key"},
        {",\"seq\":1", "", "missing \"seq\""},
        {"\"action\":\"open\"", "\"action\":\"delete\"", "action"},
        {"\"category\":\"fire_equipment\"", "\"category\":\"fire\"", "category"},
        {"\"status\":\"open\"", "\"status\":\"gone\"", "status"},
        {"\"overdue\":false", "\"overdue\":0", "overdue"},
        {"\"found_at\":", "\"found_at\":\"x\",\"zz\":", "found_at"},
        {"\"floor\":\"1F\"", "\"floor\":\"1F\",\"color\":\"red\"", "unknown \"color\""},
        {"\"floor\":\"1F\"", "\"floor\":\"1F\",\"floor\":\"2F\"", "bad JSON"},
        {"\"prev_hash\":\"0", "\"prev_hash\":\"Z", "hash"},
        {"\"by\":\"li\"", "\"by\":7", "by"},
        {"\"hazard\":\"HZ-20251128-001\"", "\"hazard\":\"\"", "empty id"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        const char *at = strstr(good, edits[i].from);
        assert_non_null(at);
        char bad[8192];
        snprintf(bad, sizeof(bad), "%.*s%s%s", (int)(at - good), good, edits[i].to,
                 at + strlen(edits[i].from));
        f->err[0] = '\0';
        assert_int_equal(gw_hazard_entry_from_json(bad, &e, f->err, sizeof(f->err)), -EINVAL);
        if (strstr(f->err, edits[i].expect) == NULL) {
            fail_msg("edit %zu: \"%s\" does not say \"%s\"", i, f->err, edits[i].expect);
        }
    }
    assert_int_equal(gw_hazard_entry_from_json("[1]", &e, f->err, sizeof(f->err)), -EINVAL);
    assert_int_equal(gw_hazard_entry_from_json("{", &e, f->err, sizeof(f->err)), -EINVAL);
    assert_int_equal(gw_hazard_entry_from_json(NULL, &e, f->err, sizeof(f->err)), -EINVAL);
    free(good);
}

/* ---- restore ---- */

static void assert_same_hazard(const struct gw_hazard *a, const struct gw_hazard *b)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->category, b->category);
    assert_string_equal(a->building, b->building);
    assert_string_equal(a->floor, b->floor);
    assert_string_equal(a->zone, b->zone);
    assert_string_equal(a->description, b->description);
    assert_int_equal(a->found_at_ms, b->found_at_ms);
    assert_string_equal(a->found_by, b->found_by);
    assert_string_equal(a->source_alarm, b->source_alarm);
    assert_string_equal(a->responsible, b->responsible);
    assert_int_equal(a->deadline_ms, b->deadline_ms);
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->verified_by, b->verified_by);
    assert_int_equal(a->overdue, b->overdue);
}

static void test_restore_rebuilds_and_continues(void **state)
{
    struct fx *f = *state;
    build_history(f);
    struct gw_hazards_settings s = settings();
    struct gw_hazards *r = gw_hazards_new(&s);
    for (int i = 0; i < f->n; i++) {
        /* Through JSON, as from the store. */
        char *json = gw_hazard_entry_to_json(&f->log[i]);
        struct gw_hazard_entry e;
        assert_int_equal(gw_hazard_entry_from_json(json, &e, f->err, sizeof(f->err)), 0);
        free(json);
        assert_int_equal(gw_hazards_restore(r, &e, f->err, sizeof(f->err)), 0);
    }
    int it = 0, count = 0;
    const struct gw_hazard *h;
    while ((h = gw_hazards_next(f->hz, &it)) != NULL) {
        const struct gw_hazard *rh = gw_hazards_find(r, h->id);
        assert_non_null(rh);
        assert_same_hazard(h, rh);
        count++;
    }
    assert_int_equal(count, 3);
    char h1[GW_HZ_HASH_HEX], h2[GW_HZ_HASH_HEX];
    assert_int_equal(gw_hazards_last_seq(r, h1), gw_hazards_last_seq(f->hz, h2));
    assert_string_equal(h1, h2);
    /* The chain and the day's counter go on from the restored head. */
    struct gw_hazard_command c = open_cmd("other");
    struct gw_hazard_entry e;
    assert_int_equal(gw_hazards_command(r, &c, T0 + 7 * DAY, &e, f->err, sizeof(f->err)), 1);
    assert_string_equal(e.prev_hash, h1);
    assert_int_equal(e.seq, (uint64_t)f->n + 1);
    f->log[f->n++] = e;
    assert_int_equal(gw_hazard_chain_verify(f->log, f->n, f->err, sizeof(f->err)), -1);
    c.deadline_ms = 0;
    assert_int_equal(gw_hazards_command(r, &c, T0 + 1, &e, f->err, sizeof(f->err)), 1);
    assert_string_equal(e.hazard.id, "HZ-20251128-003"); /* after 001 and 002 */
    /* An alarm hazard restored open still blocks a second one for its key. */
    assert_int_equal(gw_hazards_on_alarm(r,
                                         &(struct gw_hazard_alarm){.rule_name = RULE_HYD,
                                                                   .key = K_HYD,
                                                                   .building = "A",
                                                                   .description = "again"},
                                         T0 + 8 * DAY, &e, f->err, sizeof(f->err)),
                     0);
    gw_hazards_free(r);
}

static void test_restore_rejects(void **state)
{
    struct fx *f = *state;
    build_history(f);
    struct gw_hazards_settings s = settings();
    struct gw_hazards *r = gw_hazards_new(&s);
    /* Out of order: entry 2 first. */
    assert_int_equal(gw_hazards_restore(r, &f->log[1], f->err, sizeof(f->err)), -EINVAL);
    assert_non_null(strstr(f->err, "expected seq 1"));
    /* A changed entry. */
    struct gw_hazard_entry bad = f->log[0];
    bad.hazard.deadline_ms++;
    assert_int_equal(gw_hazards_restore(r, &bad, f->err, sizeof(f->err)), -EINVAL);
    assert_non_null(strstr(f->err, "hash mismatch"));
    assert_int_equal(gw_hazards_last_seq(r, NULL), 0);
    assert_null(gw_hazards_find(r, f->log[0].hazard.id));
    assert_int_equal(gw_hazards_restore(r, &f->log[0], f->err, sizeof(f->err)), 0);
    assert_int_equal(gw_hazards_restore(r, &f->log[1], f->err, sizeof(f->err)), 0);
    /* Well hashed but not a valid step: fabricated entries a rewriter might add. */
    struct {
        const char *action;
        unsigned fields;
        enum gw_hazard_status status;
        const char *id;
        const char *expect;
        bool overdue;
    } steps[] = {
        {"reopen", GW_HZF_STATUS | GW_HZF_VERIFIED_BY | GW_HZF_DEADLINE | GW_HZF_OVERDUE,
         GW_HZ_OPEN, "HZ-20251128-001", "reopen while open", false},
        {"rectifying", GW_HZF_STATUS, GW_HZ_CLOSED, "HZ-20251128-001", "must leave", false},
        {"rectifying", GW_HZF_STATUS | GW_HZF_FOUND_BY, GW_HZ_RECTIFYING, "HZ-20251128-001",
         "fields do not fit", false},
        {"close", GW_HZF_STATUS | GW_HZF_VERIFIED_BY, GW_HZ_CLOSED, "HZ-20251128-001",
         "without verifier", false},
        {"update", GW_HZF_RESPONSIBLE, GW_HZ_OPEN, "HZ-20251128-007", "never opened", false},
        {"open", GW_HZF_ALL, GW_HZ_OPEN, "HZ-20251128-001", "opened twice", false},
        {"overdue", GW_HZF_OVERDUE, GW_HZ_OPEN, "HZ-20251128-001", "overdue once", false},
        {"update", GW_HZF_OVERDUE, GW_HZ_OPEN, "HZ-20251128-002", "only clear overdue", true},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct gw_hazard_entry e = {.seq = 3, .at_ms = T0, .action = steps[i].action};
        e.fields = steps[i].fields;
        e.hazard = f->log[0].hazard;
        snprintf(e.hazard.id, sizeof(e.hazard.id), "%s", steps[i].id);
        e.hazard.status = steps[i].status;
        e.hazard.overdue = steps[i].overdue;
        gw_hazards_last_seq(r, e.prev_hash);
        assert_int_equal(gw_hazard_entry_hash(&e, e.hash), 0);
        f->err[0] = '\0';
        assert_int_equal(gw_hazards_restore(r, &e, f->err, sizeof(f->err)), -EINVAL);
        if (strstr(f->err, steps[i].expect) == NULL) {
            fail_msg("step %zu: \"%s\" does not say \"%s\"", i, f->err, steps[i].expect);
        }
        assert_int_equal(gw_hazards_last_seq(r, NULL), 2);
    }
    gw_hazards_free(r);
}

static void test_settings(void **state)
{
    (void)state;
    char err[120];
    struct gw_hazards_settings s = settings();
    assert_int_equal(gw_hazards_settings_check(&s, err, sizeof(err)), 0);
    s.deadline_days[GW_HZ_STRUCTURE] = 0;
    assert_int_equal(gw_hazards_settings_check(&s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "structure"));
    assert_null(gw_hazards_new(&s));
    s = settings();
    s.deadline_days[GW_HZ_OTHER] = GW_HZ_DEADLINE_DAYS_MAX + 1;
    assert_int_equal(gw_hazards_settings_check(&s, err, sizeof(err)), -EINVAL);
    s = settings();
    s.utc_offset_min = 841;
    assert_int_equal(gw_hazards_settings_check(&s, err, sizeof(err)), -EINVAL);
    s = settings();
    s.auto_open = NULL;
    assert_int_equal(gw_hazards_settings_check(&s, err, sizeof(err)), -EINVAL);
    s.nauto_open = 0;
    assert_int_equal(gw_hazards_settings_check(&s, err, sizeof(err)), 0);
    struct gw_hazards *hz = gw_hazards_new(&s);
    assert_non_null(hz);
    gw_hazards_free(hz);
    gw_hazards_free(NULL);
    assert_int_equal(gw_hazards_settings_check(NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(gw_hazard_cmd_from_name("close"), GW_HZ_CMD_CLOSE);
    assert_int_equal(gw_hazard_cmd_from_name("delete"), -1);
    assert_int_equal(gw_hazard_status_from_name("rectifying"), GW_HZ_RECTIFYING);
    assert_string_equal(gw_hazard_status_name((enum gw_hazard_status)7), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_by_person, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_deadline_per_category, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_by_site_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_command_in_every_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_needs_note_and_verifier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_missing_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_open_once_per_alarm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overdue_exactly_at_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overdue_counts_and_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_detects_changed_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_detects_removed_and_reordered, setup, teardown),
        cmocka_unit_test(test_hash_known_answer),
        cmocka_unit_test_setup_teardown(test_json_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_rebuilds_and_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_rejects, setup, teardown),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
