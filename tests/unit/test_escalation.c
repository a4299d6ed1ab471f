/*
 * Escalation with a virtual clock (levels, repeats, stop, clear, storms,
 * save/restore) and the notification texts and bodies (exact strings in
 * zh-CN and en, JSON parsed back with jansson). Configs are built by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <errno.h>
#include <jansson.h>

#include "escalation.h"
#include "notify_text.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define OUT_MAX 64
#define MAX_LEVELS 4

enum { FAC, PRI, DIS, NCONTACTS };

struct fx {
    struct gw_config cfg;
    struct gw_contact_cfg contacts[NCONTACTS];
    struct gw_escalation_level_cfg lv[GW_NCLASSES][MAX_LEVELS];
    int lc[GW_NCLASSES][MAX_LEVELS][6];
    struct gw_escalation *esc;
    struct gw_esc_notification out[OUT_MAX];
};

static int64_t utc_ms(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000;
}

/* 2026-11-30 02:42:05 UTC = 10:42:05 in Asia/Shanghai. */
#define T0 utc_ms(2026, 11, 30, 2, 42, 5)

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* Level i of class c: after_s, repeat_s, then n contact indexes. */
static void set_level(struct fx *f, enum gw_alarm_class c, int i, int after_s, int repeat_s, int n,
                      ...)
{
    assert_true(i < MAX_LEVELS && n <= 6);
    va_list ap;
    va_start(ap, n);
    for (int k = 0; k < n; k++) {
        f->lc[c][i][k] = va_arg(ap, int);
    }
    va_end(ap);
    f->lv[c][i] = (struct gw_escalation_level_cfg){
        .after_s = after_s, .ncontacts = n, .contacts = f->lc[c][i], .repeat_s = repeat_s};
    if (f->cfg.escalation.nlevels[c] < i + 1) {
        f->cfg.escalation.nlevels[c] = i + 1;
    }
    f->cfg.escalation.levels[c] = f->lv[c];
}

static void make(struct fx *f)
{
    f->esc = gw_escalation_new(&f->cfg);
    assert_non_null(f->esc);
}

static int setup(void **state)
{
    set_tz("Asia/Shanghai");
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->contacts[FAC].name = "facilities";
    f->contacts[PRI].name = "principal";
    f->contacts[DIS].name = "district";
    f->cfg.contacts = f->contacts;
    f->cfg.ncontacts = NCONTACTS;
    f->cfg.alarms.storm_count = 10;
    f->cfg.site.name = "第一中学";
    /* DESIGN.md's example escalation. */
    set_level(f, GW_CLASS_ALARM, 0, 0, 0, 2, FAC, PRI);
    set_level(f, GW_CLASS_ALARM, 1, 120, 600, 1, DIS);
    set_level(f, GW_CLASS_SUPERVISORY, 0, 0, 0, 1, FAC);
    set_level(f, GW_CLASS_SUPERVISORY, 1, 900, 0, 1, PRI);
    set_level(f, GW_CLASS_TROUBLE, 0, 0, 0, 1, FAC);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gw_escalation_free(f->esc);
    free(f);
    set_tz("UTC");
    return 0;
}

static int due(struct fx *f, int64_t now)
{
    int n = gw_escalation_due(f->esc, now, f->out, OUT_MAX);
    assert_true(n >= 0);
    return n;
}

static void expect(const struct gw_esc_notification *n, enum gw_esc_kind kind, const char *key,
                   int level, int contact)
{
    assert_int_equal(n->kind, kind);
    assert_string_equal(n->key, key);
    assert_int_equal(n->level, level);
    assert_int_equal(n->contact, contact);
}

static void start(struct fx *f, const char *key, enum gw_alarm_class cls, int64_t at, bool test)
{
    assert_int_equal(gw_escalation_start(f->esc, key, cls, at, test, at), 0);
}

/* ---- levels ---- */

static void test_level1_at_once_level2_exactly_at_after_s(void **state)
{
    struct fx *f = *state;
    make(f);
    assert_true(gw_escalation_next_deadline(f->esc) == GW_ESC_NEVER);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_true(gw_escalation_next_deadline(f->esc) == T0);
    assert_int_equal(due(f, T0 - 1), 0);
    assert_int_equal(due(f, T0), 2);
    expect(&f->out[0], GW_ESC_RAISE, "A/smoke", 1, FAC);
    expect(&f->out[1], GW_ESC_RAISE, "A/smoke", 1, PRI);
    assert_int_equal(f->out[0].alarm_class, GW_CLASS_ALARM);
    assert_true(f->out[0].raised_at_ms == T0 && f->out[0].due_ms == T0);
    assert_false(f->out[0].test);
    assert_null(f->out[0].summary);
    assert_int_equal(gw_escalation_level(f->esc, "A/smoke"), 1);
    /* Told once: asking again at the same time gives nothing. */
    assert_int_equal(due(f, T0), 0);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 120 * SEC);
    assert_int_equal(due(f, T0 + 120 * SEC - 1), 0);
    assert_int_equal(due(f, T0 + 120 * SEC), 1);
    expect(&f->out[0], GW_ESC_RAISE, "A/smoke", 2, DIS);
    assert_true(f->out[0].due_ms == T0 + 120 * SEC);
    assert_int_equal(gw_escalation_level(f->esc, "A/smoke"), 2);
}

static void test_level1_after_delay(void **state)
{
    struct fx *f = *state;
    set_level(f, GW_CLASS_SUPERVISORY, 0, 30, 0, 1, FAC);
    make(f);
    start(f, "H/low", GW_CLASS_SUPERVISORY, T0, false);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 30 * SEC);
    assert_int_equal(due(f, T0 + 30 * SEC - 1), 0);
    assert_int_equal(gw_escalation_level(f->esc, "H/low"), 0);
    assert_int_equal(due(f, T0 + 30 * SEC), 1);
    expect(&f->out[0], GW_ESC_RAISE, "H/low", 1, FAC);
    /* The level-2 time counts from the raise, not from level 1. */
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 900 * SEC);
    assert_int_equal(due(f, T0 + 900 * SEC), 1);
    expect(&f->out[0], GW_ESC_RAISE, "H/low", 2, PRI);
    /* Last level, no repeat_s: done. */
    assert_true(gw_escalation_next_deadline(f->esc) == GW_ESC_NEVER);
    assert_int_equal(due(f, T0 + 10 * DAY), 0);
}

static void test_raised_in_the_past_is_due_at_once(void **state)
{
    struct fx *f = *state;
    make(f);
    /* A reading stamped 5 s ago (on_delay, a queue): level 1 is overdue, told now. */
    assert_int_equal(
        gw_escalation_start(f->esc, "A/smoke", GW_CLASS_ALARM, T0 - 5 * SEC, false, T0), 0);
    assert_int_equal(due(f, T0), 2);
    assert_true(f->out[0].due_ms == T0 - 5 * SEC);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 115 * SEC);
}

static void test_repeat_every_repeat_s(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0), 2);
    assert_int_equal(due(f, T0 + 120 * SEC), 1);
    int64_t r1 = T0 + 120 * SEC + 600 * SEC;
    assert_true(gw_escalation_next_deadline(f->esc) == r1);
    assert_int_equal(due(f, r1 - 1), 0);
    assert_int_equal(due(f, r1), 1);
    expect(&f->out[0], GW_ESC_REPEAT, "A/smoke", 2, DIS);
    assert_true(f->out[0].due_ms == r1);
    assert_true(gw_escalation_next_deadline(f->esc) == r1 + 600 * SEC);
    assert_int_equal(due(f, r1 + 600 * SEC), 1);
    expect(&f->out[0], GW_ESC_REPEAT, "A/smoke", 2, DIS);
    /* Repeats do not raise the level. */
    assert_int_equal(gw_escalation_level(f->esc, "A/smoke"), 2);
}

static void test_missed_repeats_collapse_into_one(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0), 2);
    assert_int_equal(due(f, T0 + 120 * SEC), 1);
    int64_t late = T0 + 120 * SEC + 3 * 600 * SEC + 5;
    assert_int_equal(due(f, late), 1);
    expect(&f->out[0], GW_ESC_REPEAT, "A/smoke", 2, DIS);
    /* Back on the schedule. */
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 120 * SEC + 4 * 600 * SEC);
}

static void test_late_levels_all_due_in_order_without_a_repeat(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    int64_t late = T0 + 120 * SEC + 2 * 600 * SEC + 1;
    assert_int_equal(due(f, late), 3);
    expect(&f->out[0], GW_ESC_RAISE, "A/smoke", 1, FAC);
    expect(&f->out[1], GW_ESC_RAISE, "A/smoke", 1, PRI);
    expect(&f->out[2], GW_ESC_RAISE, "A/smoke", 2, DIS);
    assert_true(f->out[2].due_ms == T0 + 120 * SEC);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 120 * SEC + 3 * 600 * SEC);
}

static void test_test_alarm_gets_level1_only(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, true);
    assert_int_equal(due(f, T0 + DAY), 2);
    expect(&f->out[0], GW_ESC_RAISE, "A/smoke", 1, FAC);
    expect(&f->out[1], GW_ESC_RAISE, "A/smoke", 1, PRI);
    assert_true(f->out[0].test && f->out[1].test);
    assert_true(gw_escalation_next_deadline(f->esc) == GW_ESC_NEVER);
    assert_int_equal(due(f, T0 + 30 * DAY), 0);
    assert_int_equal(gw_escalation_clear(f->esc, "A/smoke", T0 + DAY, f->out, OUT_MAX), 2);
    assert_true(f->out[0].test);
}

static void test_stop_midway_then_clear_tells_exactly_the_told(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0), 2);
    assert_int_equal(gw_escalation_stop(f->esc, "A/smoke"), 0);
    assert_int_equal(gw_escalation_stop(f->esc, "A/smoke"), 0); /* idempotent */
    assert_true(gw_escalation_next_deadline(f->esc) == GW_ESC_NEVER);
    assert_int_equal(due(f, T0 + DAY), 0);
    assert_int_equal(gw_escalation_level(f->esc, "A/smoke"), 1);
    int n = gw_escalation_clear(f->esc, "A/smoke", T0 + DAY, f->out, OUT_MAX);
    assert_int_equal(n, 2); /* not the district: it was never told */
    expect(&f->out[0], GW_ESC_CLEAR, "A/smoke", 1, FAC);
    expect(&f->out[1], GW_ESC_CLEAR, "A/smoke", 1, PRI);
    assert_true(f->out[0].due_ms == T0 + DAY);
    assert_int_equal(gw_escalation_count(f->esc), 0);
    assert_int_equal(gw_escalation_clear(f->esc, "A/smoke", T0, f->out, OUT_MAX), -ENOENT);
    assert_int_equal(gw_escalation_stop(f->esc, "A/smoke"), -ENOENT);
    assert_int_equal(gw_escalation_level(f->esc, "A/smoke"), -ENOENT);
}

static void test_clear_after_all_levels_and_before_any(void **state)
{
    struct fx *f = *state;
    set_level(f, GW_CLASS_TROUBLE, 0, 30, 0, 1, FAC);
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    start(f, "B/offline", GW_CLASS_TROUBLE, T0, false);
    assert_int_equal(due(f, T0 + 10 * SEC), 2);
    /* B's level 1 is due at +30 s: not told, so its clear tells nobody. */
    assert_int_equal(gw_escalation_clear(f->esc, "B/offline", T0 + 10 * SEC, NULL, 0), 0);
    assert_int_equal(due(f, T0 + 120 * SEC), 1);
    assert_int_equal(gw_escalation_clear(f->esc, "A/smoke", T0 + 200 * SEC, f->out, 2), -ENOSPC);
    assert_int_equal(gw_escalation_count(f->esc), 1); /* unchanged */
    int n = gw_escalation_clear(f->esc, "A/smoke", T0 + 200 * SEC, f->out, OUT_MAX);
    assert_int_equal(n, 3);
    expect(&f->out[0], GW_ESC_CLEAR, "A/smoke", 2, FAC);
    expect(&f->out[1], GW_ESC_CLEAR, "A/smoke", 2, PRI);
    expect(&f->out[2], GW_ESC_CLEAR, "A/smoke", 2, DIS);
    assert_true(gw_escalation_next_deadline(f->esc) == GW_ESC_NEVER);
}

static void test_reraise_starts_at_level1_and_keeps_told(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0 + 120 * SEC), 3);
    assert_int_equal(gw_escalation_stop(f->esc, "A/smoke"), 0); /* shelved */
    int64_t t1 = T0 + HOUR;
    start(f, "A/smoke", GW_CLASS_ALARM, t1, false); /* shelve expired, condition on */
    assert_int_equal(gw_escalation_level(f->esc, "A/smoke"), 0);
    assert_int_equal(due(f, t1), 2);
    expect(&f->out[0], GW_ESC_RAISE, "A/smoke", 1, FAC);
    assert_true(gw_escalation_next_deadline(f->esc) == t1 + 120 * SEC);
    /* Acked before level 2 of the new raise; the district heard of the first one. */
    assert_int_equal(gw_escalation_stop(f->esc, "A/smoke"), 0);
    assert_int_equal(gw_escalation_clear(f->esc, "A/smoke", t1 + MIN, f->out, OUT_MAX), 3);
}

static void test_order_fire_first_then_by_due_time(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "T/offline", GW_CLASS_TROUBLE, T0, false);
    start(f, "S/low", GW_CLASS_SUPERVISORY, T0 + 1, false);
    start(f, "A2/smoke", GW_CLASS_ALARM, T0 + 2, false);
    start(f, "A1/smoke", GW_CLASS_ALARM, T0 + 1, false);
    assert_int_equal(due(f, T0 + 2), 6);
    expect(&f->out[0], GW_ESC_RAISE, "A1/smoke", 1, FAC);
    expect(&f->out[1], GW_ESC_RAISE, "A1/smoke", 1, PRI);
    expect(&f->out[2], GW_ESC_RAISE, "A2/smoke", 1, FAC);
    expect(&f->out[3], GW_ESC_RAISE, "A2/smoke", 1, PRI);
    expect(&f->out[4], GW_ESC_RAISE, "S/low", 1, FAC);
    expect(&f->out[5], GW_ESC_RAISE, "T/offline", 1, FAC);
}

static void test_out_too_small_keeps_the_rest_due(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    start(f, "T/offline", GW_CLASS_TROUBLE, T0, false);
    /* One level is never split: 1 slot cannot hold A's two contacts. */
    assert_int_equal(gw_escalation_due(f->esc, T0, f->out, 1), -ENOSPC);
    assert_int_equal(gw_escalation_due(f->esc, T0, f->out, 3), 3);
    assert_int_equal(gw_escalation_due(f->esc, T0, f->out, 0), 0);
    start(f, "B/smoke", GW_CLASS_ALARM, T0, false);
    start(f, "U/offline", GW_CLASS_TROUBLE, T0, false);
    assert_int_equal(gw_escalation_due(f->esc, T0, f->out, 2), 2);
    expect(&f->out[0], GW_ESC_RAISE, "B/smoke", 1, FAC);
    assert_true(gw_escalation_next_deadline(f->esc) <= T0);
    assert_int_equal(gw_escalation_due(f->esc, T0, f->out, 2), 1);
    expect(&f->out[0], GW_ESC_RAISE, "U/offline", 1, FAC);
    assert_int_equal(gw_escalation_due(f->esc, T0, NULL, 2), -EINVAL);
}

static void test_class_without_levels_and_bad_input(void **state)
{
    struct fx *f = *state;
    f->cfg.escalation.nlevels[GW_CLASS_TROUBLE] = 0;
    f->cfg.escalation.levels[GW_CLASS_TROUBLE] = NULL;
    make(f);
    start(f, "T/offline", GW_CLASS_TROUBLE, T0, false);
    assert_int_equal(due(f, T0 + DAY), 0);
    assert_true(gw_escalation_next_deadline(f->esc) == GW_ESC_NEVER);
    assert_int_equal(gw_escalation_clear(f->esc, "T/offline", T0, f->out, OUT_MAX), 0);

    char longkey[GW_KEY_MAX + 1];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[GW_KEY_MAX] = '\0';
    assert_int_equal(gw_escalation_start(f->esc, longkey, GW_CLASS_ALARM, T0, false, T0), -EINVAL);
    assert_int_equal(gw_escalation_start(f->esc, "", GW_CLASS_ALARM, T0, false, T0), -EINVAL);
    assert_int_equal(gw_escalation_start(f->esc, NULL, GW_CLASS_ALARM, T0, false, T0), -EINVAL);
    assert_int_equal(gw_escalation_start(f->esc, "k", (enum gw_alarm_class)7, T0, false, T0),
                     -EINVAL);
    assert_int_equal(gw_escalation_start(NULL, "k", GW_CLASS_ALARM, T0, false, T0), -EINVAL);
    assert_int_equal(gw_escalation_start(f->esc, "k", GW_CLASS_ALARM, -1, false, T0), -EINVAL);
    assert_int_equal(gw_escalation_count(f->esc), 0);
    assert_null(gw_escalation_save(f->esc, "nope"));
    gw_escalation_free(NULL);
}

static void test_bad_contact_indexes_and_duplicates_are_ignored(void **state)
{
    struct fx *f = *state;
    set_level(f, GW_CLASS_TROUBLE, 0, 0, 0, 4, FAC, 99, FAC, -1);
    make(f);
    start(f, "T/offline", GW_CLASS_TROUBLE, T0, false);
    assert_int_equal(due(f, T0), 1);
    expect(&f->out[0], GW_ESC_RAISE, "T/offline", 1, FAC);
}

/* ---- persistence ---- */

struct saved {
    int n;
    char key[8][GW_KEY_MAX];
    char *json[8]; /* NULL: deleted */
    int fail_at;   /* 1-based call that fails; 0: none */
    int calls;
};

static int on_save(void *ctx, const char *key, const char *json)
{
    struct saved *s = ctx;
    s->calls++;
    if (s->fail_at && s->calls == s->fail_at) {
        return -EIO;
    }
    assert_true(s->n < 8);
    snprintf(s->key[s->n], GW_KEY_MAX, "%s", key);
    s->json[s->n] = json ? strdup(json) : NULL;
    s->n++;
    return 0;
}

static void saved_free(struct saved *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->json[i]);
    }
    memset(s, 0, sizeof(*s));
}

/* The gateway stops: keep only what was saved, start a new escalation from it. */
static void restart_from(struct fx *f, const char *key, const char *json)
{
    gw_escalation_free(f->esc);
    make(f);
    assert_int_equal(gw_escalation_restore(f->esc, key, json), 0);
}

static void test_save_format(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0), 2);
    char *s = gw_escalation_save(f->esc, "A/smoke");
    assert_non_null(s);
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "v")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "class")), "alarm");
    assert_true(json_is_false(json_object_get(j, "test")));
    assert_true(json_integer_value(json_object_get(j, "raised_at")) == T0);
    assert_int_equal(json_integer_value(json_object_get(j, "level")), 1);
    assert_true(json_integer_value(json_object_get(j, "next_due")) == T0 + 120 * SEC);
    json_t *told = json_object_get(j, "told");
    assert_int_equal(json_array_size(told), 2);
    assert_string_equal(json_string_value(json_array_get(told, 0)), "facilities");
    assert_string_equal(json_string_value(json_array_get(told, 1)), "principal");
    assert_int_equal(json_array_size(json_object_get(j, "held")), 0);
    json_decref(j);
    free(s);
    assert_int_equal(gw_escalation_stop(f->esc, "A/smoke"), 0);
    s = gw_escalation_save(f->esc, "A/smoke");
    j = json_loads(s, 0, NULL);
    assert_true(json_is_null(json_object_get(j, "next_due")));
    assert_true(json_is_true(json_object_get(j, "stopped")));
    json_decref(j);
    free(s);
}

static void test_restore_midway_no_repeat_no_skip(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0), 2);
    char *s = gw_escalation_save(f->esc, "A/smoke");
    assert_non_null(s);
    restart_from(f, "A/smoke", s);
    free(s);
    assert_int_equal(gw_escalation_level(f->esc, "A/smoke"), 1);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 120 * SEC);
    assert_int_equal(due(f, T0 + 60 * SEC), 0); /* level 1 not told again */
    assert_int_equal(due(f, T0 + 120 * SEC - 1), 0);
    assert_int_equal(due(f, T0 + 120 * SEC), 1); /* level 2 on time, once */
    expect(&f->out[0], GW_ESC_RAISE, "A/smoke", 2, DIS);
    assert_int_equal(due(f, T0 + 120 * SEC), 0);
    /* The clear after the restart reaches everyone told before and after it. */
    assert_int_equal(gw_escalation_clear(f->esc, "A/smoke", T0 + 200 * SEC, f->out, OUT_MAX), 3);
}

static void test_restore_overdue_levels_due_at_once_in_order(void **state)
{
    struct fx *f = *state;
    set_level(f, GW_CLASS_SUPERVISORY, 1, 300, 0, 1, PRI);
    set_level(f, GW_CLASS_SUPERVISORY, 2, 900, 0, 1, DIS);
    make(f);
    start(f, "H/low", GW_CLASS_SUPERVISORY, T0, false);
    assert_int_equal(due(f, T0), 1);
    char *s = gw_escalation_save(f->esc, "H/low");
    /* Down from T0 + 1 s until well past both later levels. */
    restart_from(f, "H/low", s);
    free(s);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 300 * SEC);
    int64_t back = T0 + HOUR;
    assert_int_equal(due(f, back), 2);
    expect(&f->out[0], GW_ESC_RAISE, "H/low", 2, PRI);
    expect(&f->out[1], GW_ESC_RAISE, "H/low", 3, DIS);
    assert_true(f->out[0].due_ms == T0 + 300 * SEC && f->out[1].due_ms == T0 + 900 * SEC);
    assert_int_equal(due(f, back), 0);
    assert_true(gw_escalation_next_deadline(f->esc) == GW_ESC_NEVER);
}

static void test_restore_keeps_the_repeat_phase(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0 + 120 * SEC), 3);
    int64_t r1 = T0 + 720 * SEC;
    assert_int_equal(due(f, r1), 1); /* first repeat */
    char *s = gw_escalation_save(f->esc, "A/smoke");
    restart_from(f, "A/smoke", s);
    free(s);
    assert_true(gw_escalation_next_deadline(f->esc) == r1 + 600 * SEC);
    assert_int_equal(due(f, r1 + 600 * SEC - 1), 0);
    assert_int_equal(due(f, r1 + 600 * SEC), 1);
    expect(&f->out[0], GW_ESC_REPEAT, "A/smoke", 2, DIS);
    /* Without a saved time, repeats fall on the schedule from the last level. */
    restart_from(f, "A/smoke",
                 "{\"v\":1,\"class\":\"alarm\",\"raised_at\":1000,\"level\":2,"
                 "\"told\":[\"district\"]}");
    assert_true(gw_escalation_next_deadline(f->esc) == 1000 + 720 * SEC);
}

static void test_restore_stopped_and_test(void **state)
{
    struct fx *f = *state;
    make(f);
    assert_int_equal(
        gw_escalation_restore(f->esc, "A/smoke",
                              "{\"v\":1,\"class\":\"alarm\",\"raised_at\":1000,\"level\":1,"
                              "\"stopped\":true,\"told\":[\"facilities\"]}"),
        0);
    assert_int_equal(gw_escalation_restore(f->esc, "B/smoke",
                                           "{\"v\":1,\"class\":\"alarm\",\"test\":true,"
                                           "\"raised_at\":1000,\"level\":1}"),
                     0);
    assert_true(gw_escalation_next_deadline(f->esc) == GW_ESC_NEVER);
    assert_int_equal(due(f, T0), 0);
    assert_int_equal(gw_escalation_clear(f->esc, "A/smoke", T0, f->out, OUT_MAX), 1);
    expect(&f->out[0], GW_ESC_CLEAR, "A/smoke", 1, FAC);
    /* A test alarm saved before its level 1 still gets (only) level 1. */
    assert_int_equal(gw_escalation_restore(f->esc, "C/smoke",
                                           "{\"v\":1,\"class\":\"alarm\",\"test\":true,"
                                           "\"raised_at\":1000,\"level\":0}"),
                     0);
    assert_int_equal(due(f, T0), 2);
    assert_true(f->out[0].test);
    assert_int_equal(due(f, T0 + DAY), 0);
}

static void test_restore_rejects_bad_state(void **state)
{
    struct fx *f = *state;
    make(f);
    const char *bad[] = {
        "not json",
        "[]",
        "{}",
        "{\"v\":2,\"class\":\"alarm\",\"raised_at\":1,\"level\":0}",
        "{\"v\":1,\"class\":\"fire\",\"raised_at\":1,\"level\":0}",
        "{\"v\":1,\"class\":\"alarm\",\"raised_at\":-1,\"level\":0}",
        "{\"v\":1,\"class\":\"alarm\",\"raised_at\":1e3,\"level\":0}",
        "{\"v\":1,\"class\":\"alarm\",\"raised_at\":1,\"level\":\"1\"}",
        "{\"v\":1,\"class\":\"alarm\",\"raised_at\":1,\"level\":-1}",
        "{\"v\":1,\"class\":\"alarm\",\"raised_at\":1,\"level\":0,\"next_due\":\"x\"}",
        "{\"v\":1,\"class\":\"alarm\",\"raised_at\":1,\"level\":0,\"repeats\":-3}",
        "{\"v\":1,\"class\":\"alarm\",\"raised_at\":1,\"level\":0,\"test\":1}",
        "{\"v\":1,\"class\":\"alarm\",\"raised_at\":1,\"level\":0,\"told\":\"facilities\"}",
        "{\"v\":1,\"class\":\"alarm\",\"raised_at\":1,\"level\":0,\"held\":[3]}",
        "{\"v\":1,\"class\":\"alarm\",\"raised_at\":99999999999999999,\"level\":0}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gw_escalation_restore(f->esc, "A/smoke", bad[i]), -EINVAL);
    }
    assert_int_equal(gw_escalation_restore(f->esc, "A/smoke", NULL), -EINVAL);
    assert_int_equal(gw_escalation_restore(f->esc, "", "{}"), -EINVAL);
    assert_int_equal(gw_escalation_count(f->esc), 0);
}

static void test_restore_drops_unknown_contacts_and_clamps_level(void **state)
{
    struct fx *f = *state;
    make(f);
    assert_int_equal(
        gw_escalation_restore(f->esc, "T/offline",
                              "{\"v\":1,\"class\":\"trouble\",\"raised_at\":1000,\"level\":5,"
                              "\"next_due\":null,\"told\":[\"janitor\",\"facilities\"]}"),
        0);
    assert_int_equal(gw_escalation_level(f->esc, "T/offline"), 1);
    assert_true(gw_escalation_next_deadline(f->esc) == GW_ESC_NEVER);
    assert_int_equal(gw_escalation_clear(f->esc, "T/offline", T0, f->out, OUT_MAX), 1);
    expect(&f->out[0], GW_ESC_CLEAR, "T/offline", 1, FAC);
}

static void test_flush_hands_over_changes_and_deletions(void **state)
{
    struct fx *f = *state;
    make(f);
    struct saved s = {0};
    assert_int_equal(gw_escalation_flush(f->esc, on_save, &s), 0);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    start(f, "T/offline", GW_CLASS_TROUBLE, T0, false);
    assert_int_equal(gw_escalation_flush(f->esc, on_save, &s), 2);
    assert_string_equal(s.key[0], "A/smoke");
    assert_string_equal(s.key[1], "T/offline");
    assert_non_null(s.json[0]);
    saved_free(&s);
    assert_int_equal(gw_escalation_flush(f->esc, on_save, &s), 0); /* nothing changed */
    assert_int_equal(due(f, T0), 3);
    assert_int_equal(gw_escalation_flush(f->esc, on_save, &s), 2);
    saved_free(&s);
    assert_int_equal(gw_escalation_clear(f->esc, "T/offline", T0, f->out, OUT_MAX), 1);
    assert_int_equal(gw_escalation_stop(f->esc, "A/smoke"), 0);
    /* The store fails on the first: everything stays pending. */
    s.fail_at = 1;
    assert_int_equal(gw_escalation_flush(f->esc, on_save, &s), -EIO);
    saved_free(&s);
    assert_int_equal(gw_escalation_flush(f->esc, on_save, &s), 2);
    assert_string_equal(s.key[0], "T/offline"); /* deletions first */
    assert_null(s.json[0]);
    assert_string_equal(s.key[1], "A/smoke");
    assert_non_null(strstr(s.json[1], "\"stopped\":true"));
    saved_free(&s);
    assert_int_equal(gw_escalation_flush(f->esc, NULL, NULL), -EINVAL);
}

static void test_shift_time_moves_deadlines(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0), 2);
    /* NTP moves the clock a year ahead: level 2 stays 120 s after the raise. */
    int64_t year = 365 * DAY;
    gw_escalation_shift_time(f->esc, year);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + year + 120 * SEC);
    assert_int_equal(due(f, T0 + year + 60 * SEC), 0);
    assert_int_equal(due(f, T0 + year + 120 * SEC), 1);
}

static void test_reload_matches_contacts_by_name(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0), 2);
    /* The new config lists the contacts in another order and escalates later. */
    struct fx *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    g->contacts[0].name = "district";
    g->contacts[1].name = "principal";
    g->contacts[2].name = "facilities";
    g->cfg.contacts = g->contacts;
    g->cfg.ncontacts = NCONTACTS;
    g->cfg.alarms.storm_count = 10;
    set_level(g, GW_CLASS_ALARM, 0, 0, 0, 2, 2, 1);
    set_level(g, GW_CLASS_ALARM, 1, 300, 0, 1, 0);
    struct gw_escalation *esc = gw_escalation_reload(f->esc, &g->cfg);
    assert_non_null(esc);
    f->esc = esc;
    assert_int_equal(gw_escalation_level(f->esc, "A/smoke"), 1);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 300 * SEC);
    assert_int_equal(due(f, T0 + 300 * SEC), 1);
    expect(&f->out[0], GW_ESC_RAISE, "A/smoke", 2, 0);
    assert_int_equal(gw_escalation_clear(f->esc, "A/smoke", T0, f->out, OUT_MAX), 3);
    expect(&f->out[0], GW_ESC_CLEAR, "A/smoke", 2, 0);
    expect(&f->out[1], GW_ESC_CLEAR, "A/smoke", 2, 1);
    expect(&f->out[2], GW_ESC_CLEAR, "A/smoke", 2, 2);
    gw_escalation_free(f->esc);
    f->esc = NULL;
    free(g);
}

/* ---- storms ---- */

static void key_of(char *out, int i)
{
    snprintf(out, GW_KEY_MAX, "S%02d/offline", i);
}

/* n trouble alarms started at t0 + i * step. */
static void start_many(struct fx *f, int first, int n, int64_t t0, int64_t step,
                       enum gw_alarm_class cls)
{
    for (int i = 0; i < n; i++) {
        char key[GW_KEY_MAX];
        key_of(key, first + i);
        start(f, key, cls, t0 + i * step, false);
    }
}

static void test_storm_threshold_edges(void **state)
{
    struct fx *f = *state;
    f->cfg.alarms.storm_count = 3;
    make(f);
    /* 4 starts with the first exactly 60 s before the 4th: the first is out of the window. */
    start_many(f, 0, 3, T0, 1, GW_CLASS_TROUBLE);
    start(f, "S03/offline", GW_CLASS_TROUBLE, T0 + 60 * SEC, false);
    assert_int_equal(due(f, T0 + 60 * SEC), 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(f->out[i].kind, GW_ESC_RAISE);
    }
    gw_escalation_free(f->esc);
    make(f);
    /* ... 1 ms later inside it: the 4th is more than 3 in 60 s. */
    start_many(f, 0, 3, T0, 1, GW_CLASS_TROUBLE);
    assert_int_equal(due(f, T0 + 2), 3);
    start(f, "S03/offline", GW_CLASS_TROUBLE, T0 + 60 * SEC - 1, false);
    assert_int_equal(due(f, T0 + 60 * SEC - 1), 0); /* held, not told alone */
    assert_int_equal(gw_escalation_level(f->esc, "S03/offline"), 1);
    int64_t at = T0 + 60 * SEC - 1 + GW_ESC_STORM_HOLD_MS;
    assert_true(gw_escalation_next_deadline(f->esc) == at);
    assert_int_equal(due(f, at - 1), 0);
    assert_int_equal(due(f, at), 1);
    assert_int_equal(f->out[0].kind, GW_ESC_SUMMARY);
    assert_int_equal(f->out[0].contact, FAC);
    assert_string_equal(f->out[0].key, "");
    const struct gw_esc_summary *s = f->out[0].summary;
    assert_non_null(s);
    assert_int_equal(s->total, 1);
    assert_string_equal(s->keys[0], "S03/offline");
}

static void test_storm_one_summary_per_contact(void **state)
{
    struct fx *f = *state;
    make(f);                                       /* storm_count 10 */
    start_many(f, 0, 25, T0, 100, GW_CLASS_ALARM); /* 25 fire alarms in 2.4 s */
    int64_t last = T0 + 24 * 100;
    int n = due(f, last);
    /* The first 10 one by one (2 contacts each), the other 15 held. */
    assert_int_equal(n, 20);
    for (int i = 0; i < n; i++) {
        assert_int_equal(f->out[i].kind, GW_ESC_RAISE);
    }
    /* Held from the 11th (at T0 + 1 s): summaries at T0 + 1 s + hold. */
    int64_t at = T0 + 10 * 100 + GW_ESC_STORM_HOLD_MS;
    assert_true(gw_escalation_next_deadline(f->esc) == at);
    assert_int_equal(due(f, at), 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(f->out[i].kind, GW_ESC_SUMMARY);
        assert_int_equal(f->out[i].contact, i == 0 ? FAC : PRI);
        assert_int_equal(f->out[i].alarm_class, GW_CLASS_ALARM);
        const struct gw_esc_summary *s = f->out[i].summary;
        assert_int_equal(s->total, 15);
        assert_int_equal(s->nlisted, 15);
        assert_int_equal(s->per_class[GW_CLASS_ALARM], 15);
        assert_string_equal(s->keys[0], "S10/offline");
        assert_string_equal(s->keys[14], "S24/offline");
        assert_true(s->first_ms == T0 + 1000 && s->last_ms == last);
    }
    /* Storm alarms escalate one by one to level 2. */
    assert_int_equal(due(f, T0 + 120 * SEC + 24 * 100), 25);
    for (int i = 0; i < 25; i++) {
        assert_int_equal(f->out[i].kind, GW_ESC_RAISE);
        assert_int_equal(f->out[i].level, 2);
        assert_int_equal(f->out[i].contact, DIS);
    }
    /* Summary contacts count as told: the clear reaches all three. */
    assert_int_equal(gw_escalation_clear(f->esc, "S20/offline", T0 + HOUR, f->out, OUT_MAX), 3);
}

static void test_storm_summary_lists_20_and_counts_the_rest(void **state)
{
    struct fx *f = *state;
    f->cfg.alarms.storm_count = 2;
    make(f);
    start_many(f, 0, 26, T0, 10, GW_CLASS_TROUBLE);
    start(f, "F/smoke", GW_CLASS_ALARM, T0 + 260, false);
    assert_int_equal(due(f, T0 + 260), 2); /* S00, S01 */
    /* Each contact's summary runs on its own clock: facilities' first held key is S02. */
    assert_int_equal(due(f, T0 + 20 + GW_ESC_STORM_HOLD_MS), 1);
    const struct gw_esc_summary *s = f->out[0].summary;
    assert_int_equal(f->out[0].contact, FAC);
    assert_int_equal(f->out[0].alarm_class, GW_CLASS_ALARM); /* the highest class in it */
    assert_true(f->out[0].raised_at_ms == T0 + 20);
    assert_int_equal(s->total, 25);
    assert_int_equal(s->nlisted, GW_ESC_SUMMARY_KEYS);
    assert_int_equal(s->per_class[GW_CLASS_TROUBLE], 24);
    assert_int_equal(s->per_class[GW_CLASS_ALARM], 1);
    assert_string_equal(s->keys[0], "S02/offline");
    assert_string_equal(s->keys[19], "S21/offline");
    /* The principal hears only of the fire alarm, held since T0 + 260. */
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 260 + GW_ESC_STORM_HOLD_MS);
    assert_int_equal(due(f, T0 + 260 + GW_ESC_STORM_HOLD_MS), 1);
    s = f->out[0].summary;
    assert_int_equal(f->out[0].contact, PRI);
    assert_int_equal(s->total, 1);
    assert_string_equal(s->keys[0], "F/smoke");
}

static void test_storm_next_summary_a_window_later(void **state)
{
    struct fx *f = *state;
    f->cfg.alarms.storm_count = 2;
    make(f);
    start_many(f, 0, 3, T0, 1, GW_CLASS_TROUBLE);
    assert_int_equal(due(f, T0 + 2), 2);
    int64_t first = T0 + 2 + GW_ESC_STORM_HOLD_MS;
    assert_int_equal(due(f, first), 1);
    assert_int_equal(f->out[0].summary->total, 1);
    /* Still storming 10 s later: the next summary waits for the window. */
    start_many(f, 3, 3, T0 + 10 * SEC, 1, GW_CLASS_TROUBLE);
    assert_int_equal(due(f, T0 + 10 * SEC + 2 + GW_ESC_STORM_HOLD_MS), 0);
    int64_t second = first + GW_ESC_STORM_WINDOW_MS;
    assert_true(gw_escalation_next_deadline(f->esc) == second);
    assert_int_equal(due(f, second - 1), 0);
    assert_int_equal(due(f, second), 1);
    assert_int_equal(f->out[0].summary->total, 3);
    /* After a quiet minute, starts are told one by one again. */
    start(f, "Q/offline", GW_CLASS_TROUBLE, T0 + 5 * MIN, false);
    assert_int_equal(due(f, T0 + 5 * MIN), 1);
    expect(&f->out[0], GW_ESC_RAISE, "Q/offline", 1, FAC);
}

static void test_storm_key_cleared_or_stopped_before_summary(void **state)
{
    struct fx *f = *state;
    f->cfg.alarms.storm_count = 1;
    make(f);
    start_many(f, 0, 4, T0, 1, GW_CLASS_TROUBLE);
    assert_int_equal(due(f, T0 + 3), 1); /* S00 alone */
    /* S01 cleared and S02 acked within the hold: not in the summary, no clear for them. */
    assert_int_equal(gw_escalation_clear(f->esc, "S01/offline", T0 + 10, f->out, OUT_MAX), 0);
    assert_int_equal(gw_escalation_stop(f->esc, "S02/offline"), 0);
    assert_int_equal(due(f, T0 + 1 + GW_ESC_STORM_HOLD_MS), 1);
    assert_int_equal(f->out[0].summary->total, 1);
    assert_string_equal(f->out[0].summary->keys[0], "S03/offline");
    assert_int_equal(gw_escalation_clear(f->esc, "S02/offline", T0 + MIN, f->out, OUT_MAX), 0);
    assert_int_equal(gw_escalation_clear(f->esc, "S03/offline", T0 + MIN, f->out, OUT_MAX), 1);
    /* All held keys gone: no empty summary. */
    start_many(f, 10, 3, T0 + HOUR, 1, GW_CLASS_TROUBLE);
    assert_int_equal(due(f, T0 + HOUR + 2), 1);
    assert_int_equal(gw_escalation_clear(f->esc, "S11/offline", T0 + HOUR + 3, NULL, 0), 0);
    assert_int_equal(gw_escalation_clear(f->esc, "S12/offline", T0 + HOUR + 3, NULL, 0), 0);
    assert_true(gw_escalation_next_deadline(f->esc) == GW_ESC_NEVER);
    assert_int_equal(due(f, T0 + 2 * HOUR), 0);
}

static void test_storm_disabled(void **state)
{
    struct fx *f = *state;
    f->cfg.alarms.storm_count = 0;
    make(f);
    start_many(f, 0, 40, T0, 1, GW_CLASS_TROUBLE);
    assert_int_equal(due(f, T0 + 40), 40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(f->out[i].kind, GW_ESC_RAISE);
    }
}

static void test_storm_held_survives_restart(void **state)
{
    struct fx *f = *state;
    f->cfg.alarms.storm_count = 1;
    make(f);
    start_many(f, 0, 2, T0, 1, GW_CLASS_TROUBLE);
    assert_int_equal(due(f, T0 + 1), 1);
    char *s = gw_escalation_save(f->esc, "S01/offline");
    assert_non_null(strstr(s, "\"held\":[\"facilities\"]"));
    assert_non_null(strstr(s, "\"storm\":true"));
    restart_from(f, "S01/offline", s);
    free(s);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 1 + GW_ESC_STORM_HOLD_MS);
    assert_int_equal(due(f, T0 + MIN), 1);
    assert_int_equal(f->out[0].kind, GW_ESC_SUMMARY);
    assert_string_equal(f->out[0].summary->keys[0], "S01/offline");
    s = gw_escalation_save(f->esc, "S01/offline");
    assert_non_null(strstr(s, "\"told\":[\"facilities\"]"));
    assert_non_null(strstr(s, "\"held\":[]"));
    free(s);
}

static void test_restore_replaces_and_after_clear(void **state)
{
    struct fx *f = *state;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0), 2);
    char *saved = gw_escalation_save(f->esc, "A/smoke");
    assert_int_equal(gw_escalation_clear(f->esc, "A/smoke", T0, f->out, OUT_MAX), 2);
    /* Restored after its clear (an undo by the lead): no deletion is flushed for it. */
    assert_int_equal(gw_escalation_restore(f->esc, "A/smoke", saved), 0);
    struct saved sv = {0};
    assert_int_equal(gw_escalation_flush(f->esc, on_save, &sv), 0);
    /* Restoring a key that is held replaces its state: one record, the new level. */
    assert_int_equal(gw_escalation_restore(f->esc, "A/smoke",
                                           "{\"v\":1,\"class\":\"alarm\",\"raised_at\":"
                                           "1000,"
                                           "\"level\":2,\"next_due\":null,\"told\":[]}"),
                     0);
    assert_int_equal(gw_escalation_count(f->esc), 1);
    assert_int_equal(gw_escalation_level(f->esc, "A/smoke"), 2);
    free(saved);
}

static void test_storm_summary_waits_for_room_and_moves_with_the_clock(void **state)
{
    struct fx *f = *state;
    f->cfg.alarms.storm_count = 1;
    make(f);
    start_many(f, 0, 2, T0, 1, GW_CLASS_TROUBLE);
    assert_int_equal(due(f, T0 + 1), 1);
    gw_escalation_shift_time(f->esc, HOUR);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + HOUR + 1 + GW_ESC_STORM_HOLD_MS);
    start(f, "A/smoke", GW_CLASS_ALARM, T0 + HOUR + 10 * SEC, false); /* a storm start */
    /* The fire alarm's level 1 is held too: one summary each for facilities and principal. */
    int64_t t = T0 + HOUR + 10 * SEC + GW_ESC_STORM_HOLD_MS;
    assert_int_equal(gw_escalation_due(f->esc, t, f->out, 2), 2);
    assert_int_equal(f->out[0].kind, GW_ESC_SUMMARY);
    assert_int_equal(f->out[0].contact, FAC);
    assert_int_equal(f->out[0].summary->total, 2); /* S01 and A/smoke */
    assert_int_equal(f->out[1].contact, PRI);
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + HOUR + 130 * SEC); /* A's level 2 */
    /* A full out leaves a summary due. */
    start(f, "B/smoke", GW_CLASS_ALARM, t, false);
    start(f, "C/offline", GW_CLASS_TROUBLE, t, false);
    int64_t t2 = t + GW_ESC_STORM_WINDOW_MS;
    assert_int_equal(gw_escalation_due(f->esc, t2, f->out, 1), 1);
    assert_true(gw_escalation_next_deadline(f->esc) <= t2);
    assert_int_equal(gw_escalation_due(f->esc, t2, f->out, 1), 1);
    assert_int_equal(gw_escalation_due(f->esc, t2, f->out, 1), 0);
}

static void test_reload_keeps_pending_summaries_and_deletions(void **state)
{
    struct fx *f = *state;
    f->cfg.alarms.storm_count = 1;
    make(f);
    start_many(f, 0, 3, T0, 1, GW_CLASS_TROUBLE);
    assert_int_equal(due(f, T0 + 2), 1);
    assert_int_equal(gw_escalation_clear(f->esc, "S00/offline", T0 + 3, f->out, OUT_MAX), 1);
    struct gw_escalation *esc = gw_escalation_reload(f->esc, &f->cfg);
    assert_non_null(esc);
    f->esc = esc;
    assert_true(gw_escalation_next_deadline(f->esc) == T0 + 1 + GW_ESC_STORM_HOLD_MS);
    /* The storm history came along: the next start still storms. */
    start(f, "S09/offline", GW_CLASS_TROUBLE, T0 + 3, false);
    assert_int_equal(due(f, T0 + 1 + GW_ESC_STORM_HOLD_MS), 1);
    assert_int_equal(f->out[0].summary->total, 3);
    struct saved sv = {0};
    assert_int_equal(gw_escalation_flush(f->esc, on_save, &sv), 4);
    assert_string_equal(sv.key[0], "S00/offline");
    assert_null(sv.json[0]);
    saved_free(&sv);
}

static void test_no_contacts_configured(void **state)
{
    struct fx *f = *state;
    f->cfg.ncontacts = 0;
    f->cfg.contacts = NULL;
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0 + DAY), 0);
    assert_int_equal(gw_escalation_clear(f->esc, "A/smoke", T0, NULL, 0), 0);
    assert_true(gw_escalation_next_deadline(NULL) == GW_ESC_NEVER);
    assert_int_equal(gw_escalation_count(NULL), 0);
}

/* ---- texts ---- */

static struct gw_notify_fields smoke_fields(const char *zone, const char *rule)
{
    struct gw_notify_fields nf = {
        .kind = GW_ESC_RAISE,
        .alarm_class = GW_CLASS_ALARM,
        .level = 1,
        .key = "A-3F-smoke-301/smoke-detected",
        .rule = rule,
        .sensor = "A-3F-smoke-301",
        .building = "A",
        .floor = "3",
        .zone = zone,
        .value = {.type = GW_VALUE_BOOL, .b = true, .num = 1},
        .cond = GW_COND_EQUALS,
        .since_ms = T0,
        .state = GW_ALARM_UNACKED,
        .site = "第一中学",
    };
    return nf;
}

static struct gw_notify_fields hydrant_fields(void)
{
    struct gw_notify_fields nf = {
        .kind = GW_ESC_RAISE,
        .alarm_class = GW_CLASS_SUPERVISORY,
        .level = 2,
        .key = "A-1F-hydrant-01/hydrant-pressure-low",
        .rule = "消火栓压力低",
        .sensor = "A-1F-hydrant-01",
        .building = "A",
        .floor = "1",
        .zone = "东楼梯",
        .value = {.type = GW_VALUE_NUMBER, .num = 0.08},
        .unit = "MPa",
        .cond = GW_COND_BELOW,
        .has_threshold = true,
        .threshold = 0.1,
        .since_ms = T0,
        .state = GW_ALARM_UNACKED,
    };
    return nf;
}

static void text_is(const struct gw_notify_fields *nf, enum gw_lang lang, int64_t now,
                    const char *want)
{
    char *t = gw_notify_text_message(nf, lang, now);
    assert_non_null(t);
    assert_string_equal(t, want);
    free(t);
}

static void test_text_issue_example_zh(void **state)
{
    (void)state;
    struct gw_notify_fields nf = smoke_fields("301室", "烟感报警");
    text_is(&nf, GW_LANG_ZH, T0 + 5 * SEC,
            "【火警】A栋 3层 301室 烟感报警 (A-3F-smoke-301) 10:42:05 起，未确认\n"
            "第1级通知。确认: campusgw-ctl ack A-3F-smoke-301/smoke-detected --by 姓名");
}

static void test_text_en(void **state)
{
    (void)state;
    struct gw_notify_fields nf = smoke_fields("room 301", "smoke detected");
    text_is(&nf, GW_LANG_EN, T0 + 5 * SEC,
            "[FIRE ALARM] Building A, floor 3, room 301: smoke detected (A-3F-smoke-301) since "
            "10:42:05, unacknowledged\n"
            "Level 1. Acknowledge: campusgw-ctl ack A-3F-smoke-301/smoke-detected --by NAME");
}

static void test_text_value_threshold_and_date(void **state)
{
    (void)state;
    struct gw_notify_fields nf = hydrant_fields();
    text_is(&nf, GW_LANG_ZH, T0,
            "【监管】A栋 1层 东楼梯 消火栓压力低 (A-1F-hydrant-01) 当前 0.08 MPa，低于 0.1 MPa，"
            "10:42:05 起，未确认\n"
            "第2级通知。确认: campusgw-ctl ack A-1F-hydrant-01/hydrant-pressure-low --by 姓名");
    nf.rule = "hydrant pressure low";
    nf.zone = "east stair";
    nf.kind = GW_ESC_REPEAT;
    /* The next day: the date is shown. */
    text_is(&nf, GW_LANG_EN, T0 + DAY,
            "[SUPERVISORY] Building A, floor 1, east stair: hydrant pressure low (A-1F-hydrant-01) "
            "value 0.08 MPa, below 0.1 MPa, since 2026-11-30 10:42:05, unacknowledged\n"
            "Level 2 reminder. Acknowledge: campusgw-ctl ack A-1F-hydrant-01/hydrant-pressure-low "
            "--by NAME");
    /* Local midnight is the day boundary (Asia/Shanghai), not UTC's. */
    int64_t next_local_midnight = utc_ms(2026, 11, 30, 16, 0, 0);
    char *t = gw_notify_text_message(&nf, GW_LANG_EN, next_local_midnight - 1);
    assert_non_null(strstr(t, "since 10:42:05,"));
    free(t);
    t = gw_notify_text_message(&nf, GW_LANG_EN, next_local_midnight);
    assert_non_null(strstr(t, "since 2026-11-30 10:42:05,"));
    free(t);
}

static void test_text_repeat_clear_test_zh(void **state)
{
    (void)state;
    struct gw_notify_fields nf = smoke_fields("301室", "烟感报警");
    nf.kind = GW_ESC_REPEAT;
    nf.level = 2;
    text_is(&nf, GW_LANG_ZH, T0,
            "【火警】A栋 3层 301室 烟感报警 (A-3F-smoke-301) 10:42:05 起，未确认\n"
            "第2级重复提醒。确认: campusgw-ctl ack A-3F-smoke-301/smoke-detected --by 姓名");
    /* Cleared after an ack: nothing left to do. */
    nf.kind = GW_ESC_CLEAR;
    nf.state = GW_ALARM_NORMAL;
    nf.cleared_ms = T0 + 8 * MIN;
    text_is(&nf, GW_LANG_ZH, T0 + 9 * MIN,
            "【火警】A栋 3层 301室 烟感报警 (A-3F-smoke-301) 10:42:05 起，10:50:05 已恢复");
    text_is(&nf, GW_LANG_EN, T0 + 9 * MIN,
            "[FIRE ALARM] Building A, floor 3, 301室: 烟感报警 (A-3F-smoke-301) since 10:42:05, "
            "cleared 10:50:05");
    /* Cleared before anyone acked: still asks for an ack. */
    nf.state = GW_ALARM_RTN_UNACKED;
    text_is(&nf, GW_LANG_ZH, T0 + 9 * MIN,
            "【火警】A栋 3层 301室 烟感报警 (A-3F-smoke-301) 10:42:05 起，10:50:05 已恢复，未确认\n"
            "确认: campusgw-ctl ack A-3F-smoke-301/smoke-detected --by 姓名");
    /* A detector's test button. */
    nf = smoke_fields("301室", "烟感报警");
    nf.test = true;
    text_is(&nf, GW_LANG_ZH, T0,
            "【火警·测试】A栋 3层 301室 烟感报警 (A-3F-smoke-301) 10:42:05 起，未确认\n"
            "第1级通知。确认: campusgw-ctl ack A-3F-smoke-301/smoke-detected --by 姓名");
    char *t = gw_notify_text_message(&nf, GW_LANG_EN, T0);
    assert_true(strncmp(t, "[FIRE ALARM TEST] ", 18) == 0);
    free(t);
}

static void test_text_values_of_other_rules(void **state)
{
    (void)state;
    struct gw_notify_fields nf = {.kind = GW_ESC_RAISE,
                                  .alarm_class = GW_CLASS_TROUBLE,
                                  .key = "B-2F-door-7/sensor-offline",
                                  .rule = "离线",
                                  .sensor = "B-2F-door-7",
                                  .building = "教学楼",
                                  .floor = "B1",
                                  .value = {.type = GW_VALUE_NUMBER, .num = 3720},
                                  .cond = GW_COND_OFFLINE,
                                  .state = GW_ALARM_ACKED};
    /* No level, no since, acked: one line. A named building is not a code: no 栋. */
    text_is(&nf, GW_LANG_ZH, T0, "【故障】教学楼 B1层 离线 (B-2F-door-7) 已 62 分钟无数据，已确认");
    nf.building = "Library";
    text_is(&nf, GW_LANG_EN, T0,
            "[TROUBLE] Library, floor B1: 离线 (B-2F-door-7) silent for 62 min, acknowledged");
    nf.value.num = 59;
    text_is(&nf, GW_LANG_EN, T0,
            "[TROUBLE] Library, floor B1: 离线 (B-2F-door-7) silent for 59 s, acknowledged");
    nf.value.num = 3 * 86400;
    text_is(&nf, GW_LANG_EN, T0,
            "[TROUBLE] Library, floor B1: 离线 (B-2F-door-7) silent for 3 d, acknowledged");

    struct gw_notify_fields rate = hydrant_fields();
    rate.cond = GW_COND_RATE_BELOW;
    rate.value.num = -0.5;
    rate.threshold = -0.2;
    rate.level = 0;
    rate.state = GW_ALARM_SHELVED;
    text_is(&rate, GW_LANG_ZH, T0,
            "【监管】A栋 1层 东楼梯 消火栓压力低 (A-1F-hydrant-01) 变化率 -0.5 MPa/分钟，低于 "
            "-0.2 MPa/分钟，10:42:05 起，已搁置");

    struct gw_notify_fields door = {.kind = GW_ESC_RAISE,
                                    .alarm_class = GW_CLASS_SUPERVISORY,
                                    .key = "C-1F-exit-2/exit-locked",
                                    .rule = "exit locked during school hours",
                                    .sensor = "C-1F-exit-2",
                                    .value = {.type = GW_VALUE_STRING, .str = "locked"},
                                    .cond = GW_COND_EQUALS,
                                    .since_ms = T0,
                                    .state = GW_ALARM_UNACKED,
                                    .level = 1};
    text_is(&door, GW_LANG_EN, T0,
            "[SUPERVISORY] exit locked during school hours (C-1F-exit-2) value locked, since "
            "10:42:05, unacknowledged\n"
            "Level 1. Acknowledge: campusgw-ctl ack C-1F-exit-2/exit-locked --by NAME");
    /* Nothing but a key (the self-test before the lead names it). */
    struct gw_notify_fields bare = {.kind = GW_ESC_RAISE,
                                    .alarm_class = GW_CLASS_TROUBLE,
                                    .key = "gateway/self-test",
                                    .state = GW_ALARM_OUT_OF_SERVICE};
    text_is(&bare, GW_LANG_ZH, T0, "【故障】(gateway/self-test) 停用检修中");
}

static void test_text_odd_inputs(void **state)
{
    (void)state;
    /* A 4-byte character passes through; hours; the units of layout and json profiles. */
    struct gw_notify_fields nf = {.kind = GW_ESC_RAISE,
                                  .alarm_class = GW_CLASS_TROUBLE,
                                  .key = "k",
                                  .rule = "\xf0\x9f\x94\xa5 offline",
                                  .value = {.type = GW_VALUE_NUMBER, .num = 5 * 3600 + 59},
                                  .cond = GW_COND_OFFLINE,
                                  .state = GW_ALARM_RTN_UNACKED};
    text_is(&nf, GW_LANG_EN, T0,
            "[TROUBLE] \xf0\x9f\x94\xa5 offline (k) silent for 5 h, cleared, unacknowledged\n"
            "Acknowledge: campusgw-ctl ack k --by NAME");
    struct gw_layout_field_cfg fields[] = {{.name = "battery", .unit = "%"}};
    struct gw_json_value_cfg values[] = {{.name = "t", .unit = "C"}};
    struct gw_profile_cfg profiles[] = {{.nfields = 1, .fields = fields},
                                        {.nvalues = 1, .values = values}};
    struct gw_sensor_cfg sensors[] = {{.id = "s0", .profile_index = 0},
                                      {.id = "s1", .profile_index = 1},
                                      {.id = "s2", .profile_index = 9}};
    struct gw_rule_cfg rules[] = {{.name = "low battery",
                                   .point = "battery",
                                   .cond = GW_COND_BELOW,
                                   .threshold = 20,
                                   .alarm_class = GW_CLASS_TROUBLE},
                                  {.name = "hot",
                                   .point = "t",
                                   .cond = GW_COND_ABOVE,
                                   .threshold = 60,
                                   .alarm_class = GW_CLASS_SUPERVISORY}};
    struct gw_config cfg = {.nprofiles = 2,
                            .profiles = profiles,
                            .nsensors = 3,
                            .sensors = sensors,
                            .nrules = 2,
                            .rules = rules};
    struct gw_alarm a = {.key = "s0/low-battery",
                         .rule_index = 0,
                         .sensor_index = 0,
                         .state = GW_ALARM_UNACKED,
                         .cleared_at_ms = T0 + MIN};
    struct gw_notify_fields f;
    gw_notify_text_fields(&f, &cfg, &a, NULL); /* no notification: the class from the rule */
    assert_string_equal(f.unit, "%");
    assert_int_equal(f.alarm_class, GW_CLASS_TROUBLE);
    assert_true(f.cleared_ms == T0 + MIN);
    a.rule_index = 1;
    a.sensor_index = 1;
    gw_notify_text_fields(&f, &cfg, &a, NULL);
    assert_string_equal(f.unit, "C");
    assert_int_equal(f.alarm_class, GW_CLASS_SUPERVISORY);
    a.sensor_index = 2; /* a profile index out of range */
    gw_notify_text_fields(&f, &cfg, &a, NULL);
    assert_null(f.unit);
    assert_string_equal(f.sensor, "s2");
    /* A CLEAR notification with no clear time on the alarm: the time of the notification. */
    struct gw_esc_notification n = {
        .kind = GW_ESC_CLEAR, .key = "s2/hot", .level = 1, .due_ms = T0 + HOUR};
    a.cleared_at_ms = 0;
    gw_notify_text_fields(&f, &cfg, &a, &n);
    assert_true(f.cleared_ms == T0 + HOUR);
    gw_notify_text_fields(&f, NULL, NULL, &n);
    assert_string_equal(f.key, "s2/hot");
    assert_null(f.site);
}

static struct gw_esc_summary storm_summary(void)
{
    struct gw_esc_summary s = {.total = 23, .nlisted = 3, .first_ms = T0, .last_ms = T0 + 9000};
    s.per_class[GW_CLASS_ALARM] = 2;
    s.per_class[GW_CLASS_TROUBLE] = 21;
    strcpy(s.keys[0], "A-3F-smoke-301/smoke");
    strcpy(s.keys[1], "A-3F-smoke-302/smoke");
    strcpy(s.keys[2], "B-1F-door-1/sensor-offline");
    return s;
}

static void test_text_storm_summary(void **state)
{
    (void)state;
    struct gw_esc_summary s = storm_summary();
    struct gw_notify_fields nf = {.kind = GW_ESC_SUMMARY,
                                  .alarm_class = GW_CLASS_ALARM,
                                  .level = 1,
                                  .summary = &s,
                                  .site = "第一中学"};
    text_is(&nf, GW_LANG_ZH, T0 + 10 * SEC,
            "【报警风暴】10:42:05 起 23 个新报警（火警 2，故障 21）：A-3F-smoke-301/smoke、"
            "A-3F-smoke-302/smoke、B-1F-door-1/sensor-offline 及另外 20 个\n"
            "逐个查看和确认: campusgw-ctl alarms");
    s.tests = 1;
    text_is(&nf, GW_LANG_EN, T0 + 10 * SEC,
            "[ALARM STORM] 23 new alarms since 10:42:05 (fire 2, trouble 21, 1 test): "
            "A-3F-smoke-301/smoke, A-3F-smoke-302/smoke, B-1F-door-1/sensor-offline and 20 more\n"
            "See and acknowledge each: campusgw-ctl alarms");
    char *subj = gw_notify_text_subject(&nf, GW_LANG_ZH);
    assert_string_equal(subj, "[campusgw] 【报警风暴】23 个新报警");
    free(subj);
    subj = gw_notify_text_subject(&nf, GW_LANG_EN);
    assert_string_equal(subj, "[campusgw] [ALARM STORM] 23 new alarms");
    free(subj);
    char *body = gw_notify_text_email_body(&nf, GW_LANG_ZH, "T");
    assert_string_equal(body, "T\n\n学校: 第一中学\n报警列表:\n  A-3F-smoke-301/smoke\n"
                              "  A-3F-smoke-302/smoke\n  B-1F-door-1/sensor-offline\n"
                              "  及另外 20 个\n");
    free(body);
    nf.summary = NULL;
    assert_null(gw_notify_text_message(&nf, GW_LANG_ZH, T0));
}

static void test_subjects(void **state)
{
    (void)state;
    struct gw_notify_fields nf = smoke_fields("301室", "烟感报警");
    struct {
        enum gw_esc_kind kind;
        int level;
        enum gw_lang lang;
        const char *want;
    } cases[] = {
        {GW_ESC_RAISE, 1, GW_LANG_ZH, "[campusgw] 【火警】A-3F-smoke-301 烟感报警"},
        {GW_ESC_RAISE, 2, GW_LANG_ZH, "[campusgw] 【火警】A-3F-smoke-301 烟感报警 第2级"},
        {GW_ESC_REPEAT, 2, GW_LANG_ZH, "[campusgw] 【火警】A-3F-smoke-301 烟感报警 第2级 仍未确认"},
        {GW_ESC_CLEAR, 2, GW_LANG_ZH, "[campusgw] 【火警】A-3F-smoke-301 烟感报警 已恢复"},
        {GW_ESC_RAISE, 1, GW_LANG_EN, "[campusgw] [FIRE ALARM] A-3F-smoke-301 烟感报警"},
        {GW_ESC_RAISE, 3, GW_LANG_EN, "[campusgw] [FIRE ALARM] A-3F-smoke-301 烟感报警 (level 3)"},
        {GW_ESC_REPEAT, 2, GW_LANG_EN,
         "[campusgw] [FIRE ALARM] A-3F-smoke-301 烟感报警 (level 2) still unacknowledged"},
        {GW_ESC_CLEAR, 1, GW_LANG_EN, "[campusgw] [FIRE ALARM] A-3F-smoke-301 烟感报警 cleared"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        nf.kind = cases[i].kind;
        nf.level = cases[i].level;
        char *s = gw_notify_text_subject(&nf, cases[i].lang);
        assert_string_equal(s, cases[i].want);
        free(s);
    }
    /* A newline in a configured name cannot break the header. */
    nf.kind = GW_ESC_RAISE;
    nf.level = 1;
    nf.rule = "evil\r\nBcc: x@y";
    char *s = gw_notify_text_subject(&nf, GW_LANG_EN);
    assert_null(strchr(s, '\n'));
    assert_null(strchr(s, '\r'));
    free(s);
}

static void test_email_body(void **state)
{
    (void)state;
    struct gw_notify_fields nf = hydrant_fields();
    nf.site = "第一中学";
    char *body = gw_notify_text_email_body(&nf, GW_LANG_ZH, "TEXT");
    assert_string_equal(body, "TEXT\n\n"
                              "学校: 第一中学\n"
                              "报警: A-1F-hydrant-01/hydrant-pressure-low\n"
                              "类别: 监管\n"
                              "位置: A栋 1层 东楼梯\n"
                              "传感器: A-1F-hydrant-01\n"
                              "规则: 消火栓压力低\n"
                              "数值: 当前 0.08 MPa，低于 0.1 MPa\n"
                              "起始: 2026-11-30 10:42:05\n"
                              "状态: 未确认\n"
                              "通知级别: 第2级\n");
    free(body);
    nf.kind = GW_ESC_CLEAR;
    nf.cleared_ms = T0 + MIN;
    nf.state = GW_ALARM_NORMAL;
    nf.test = true;
    body = gw_notify_text_email_body(&nf, GW_LANG_EN, "TEXT");
    assert_non_null(strstr(body, "Class: SUPERVISORY (test)\n"));
    assert_non_null(strstr(body, "Location: Building A, floor 1, 东楼梯\n"));
    assert_non_null(strstr(body, "Value: value 0.08 MPa, below 0.1 MPa\n"));
    assert_non_null(strstr(body, "Cleared: 2026-11-30 10:43:05\n"));
    assert_non_null(strstr(body, "State: cleared\n"));
    free(body);
}

static json_t *parse(char *s)
{
    assert_non_null(s);
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    free(s);
    assert_non_null(j);
    return j;
}

static void test_json_payload(void **state)
{
    (void)state;
    struct gw_notify_fields nf = smoke_fields("301室", "烟感报警");
    json_t *j = parse(gw_notify_text_json(42, &nf, "【火警】文本\n第二行"));
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "key")),
                        "A-3F-smoke-301/smoke-detected");
    assert_string_equal(json_string_value(json_object_get(j, "class")), "alarm");
    assert_int_equal(json_integer_value(json_object_get(j, "level")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "text")), "【火警】文本\n第二行");
    assert_string_equal(json_string_value(json_object_get(j, "sensor")), "A-3F-smoke-301");
    json_t *loc = json_object_get(j, "location");
    assert_string_equal(json_string_value(json_object_get(loc, "building")), "A");
    assert_string_equal(json_string_value(json_object_get(loc, "floor")), "3");
    assert_string_equal(json_string_value(json_object_get(loc, "zone")), "301室");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "raise");
    assert_true(json_is_false(json_object_get(j, "test")));
    assert_string_equal(json_string_value(json_object_get(j, "state")), "unacked");
    assert_string_equal(json_string_value(json_object_get(j, "raised_at")),
                        "2026-11-30T02:42:05.000Z");
    json_decref(j);

    /* Summary: no key, sensor or location; the listed keys and the total. */
    struct gw_esc_summary s = storm_summary();
    struct gw_notify_fields sf = {
        .kind = GW_ESC_SUMMARY, .alarm_class = GW_CLASS_ALARM, .level = 1, .summary = &s};
    j = parse(gw_notify_text_json(7, &sf, "storm"));
    assert_true(json_is_null(json_object_get(j, "key")));
    assert_true(json_is_null(json_object_get(j, "sensor")));
    assert_true(json_is_null(json_object_get(j, "location")));
    assert_true(json_is_null(json_object_get(j, "raised_at")));
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "summary");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 23);
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 3);
    json_decref(j);

    /* Bytes that are not UTF-8 in a configured name do not lose the notification. */
    nf.rule = "bad \xff\xfe name";
    nf.zone = "\xc3";
    char *text = gw_notify_text_message(&nf, GW_LANG_ZH, T0);
    assert_non_null(strstr(text, "bad ?? name"));
    j = parse(gw_notify_text_json(1, &nf, text));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "location"), "zone")),
                        "?");
    json_decref(j);
    j = parse(gw_notify_text_wecom(&nf, "raw \xff"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "text"), "content")),
                        "raw ?\n— campusgw · 第一中学");
    json_decref(j);
    free(text);
}

static void test_robot_bodies(void **state)
{
    (void)state;
    struct gw_notify_fields nf = smoke_fields("301室", "烟感报警");
    const char *text = "【火警】A栋 3层 301室 烟感报警 (A-3F-smoke-301) 10:42:05 起，未确认";
    char *wecom = gw_notify_text_wecom(&nf, text);
    char *ding = gw_notify_text_dingtalk(&nf, text);
    assert_string_equal(wecom, ding); /* the same text message shape */
    json_t *j = parse(wecom);
    assert_int_equal(json_object_size(j), 2);
    assert_string_equal(json_string_value(json_object_get(j, "msgtype")), "text");
    json_t *t = json_object_get(j, "text");
    assert_int_equal(json_object_size(t), 1);
    char want[512];
    snprintf(want, sizeof(want), "%s\n— campusgw · 第一中学", text);
    assert_string_equal(json_string_value(json_object_get(t, "content")), want);
    json_decref(j);
    free(ding);

    /* A long summary: cut on a character boundary, the footer kept, within 2048 bytes. */
    char *big = malloc(4000);
    size_t n = 0;
    while (n + 3 < 3000) {
        memcpy(big + n, "警", 3);
        n += 3;
    }
    big[n] = '\0';
    j = parse(gw_notify_text_dingtalk(&nf, big));
    const char *content = json_string_value(json_object_get(json_object_get(j, "text"), "content"));
    assert_true(strlen(content) <= GW_ROBOT_CONTENT_MAX);
    assert_true(strlen(content) > GW_ROBOT_CONTENT_MAX - 8);
    assert_non_null(strstr(content, "…\n— campusgw · 第一中学"));
    size_t clen = strlen(content);
    const char *footer = "\n— campusgw · 第一中学";
    assert_string_equal(content + clen - strlen(footer), footer);
    json_decref(j);
    free(big);
    nf.site = NULL;
    j = parse(gw_notify_text_wecom(&nf, "x"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "text"), "content")),
                        "x\n— campusgw");
    json_decref(j);
    assert_null(gw_notify_text_wecom(&nf, NULL));
}

static void test_fields_from_config(void **state)
{
    (void)state;
    struct gw_point_cfg points[] = {{.name = "pressure", .unit = "MPa"}};
    struct gw_profile_cfg profiles[] = {{.name = "hydrant", .npoints = 1, .points = points}};
    struct gw_sensor_cfg sensors[] = {{.id = "A-1F-hydrant-01",
                                       .profile_index = 0,
                                       .location = {.building = "A", .floor = "1", .zone = "东"}}};
    struct gw_rule_cfg rules[] = {{.name = "消火栓压力低",
                                   .point = "pressure",
                                   .cond = GW_COND_BELOW,
                                   .threshold = 0.1,
                                   .alarm_class = GW_CLASS_SUPERVISORY}};
    struct gw_config cfg = {.site = {.name = "第一中学"},
                            .nprofiles = 1,
                            .profiles = profiles,
                            .nsensors = 1,
                            .sensors = sensors,
                            .nrules = 1,
                            .rules = rules};
    struct gw_alarm a = {.key = "A-1F-hydrant-01/x",
                         .rule_index = 0,
                         .sensor_index = 0,
                         .state = GW_ALARM_UNACKED,
                         .value = {.type = GW_VALUE_NUMBER, .num = 0.08},
                         .raised_at_ms = T0};
    struct gw_esc_notification n = {.kind = GW_ESC_REPEAT,
                                    .key = "A-1F-hydrant-01/x",
                                    .alarm_class = GW_CLASS_SUPERVISORY,
                                    .level = 2,
                                    .contact = 1,
                                    .raised_at_ms = T0};
    struct gw_notify_fields f;
    gw_notify_text_fields(&f, &cfg, &a, &n);
    assert_int_equal(f.kind, GW_ESC_REPEAT);
    assert_int_equal(f.level, 2);
    assert_string_equal(f.rule, "消火栓压力低");
    assert_string_equal(f.sensor, "A-1F-hydrant-01");
    assert_string_equal(f.building, "A");
    assert_string_equal(f.unit, "MPa");
    assert_true(f.has_threshold);
    assert_true(f.since_ms == T0);
    assert_string_equal(f.site, "第一中学");
    text_is(&f, GW_LANG_ZH, T0,
            "【监管】A栋 1层 东 消火栓压力低 (A-1F-hydrant-01) 当前 0.08 MPa，低于 0.1 MPa，"
            "10:42:05 起，未确认\n"
            "第2级重复提醒。确认: campusgw-ctl ack A-1F-hydrant-01/x --by 姓名");
    /* Indexes that are out of range leave the fields empty, never crash. */
    a.rule_index = 5;
    a.sensor_index = -1;
    gw_notify_text_fields(&f, &cfg, &a, &n);
    assert_null(f.rule);
    assert_null(f.sensor);
    assert_null(f.unit);
    text_is(&f, GW_LANG_EN, T0,
            "[SUPERVISORY] (A-1F-hydrant-01/x) value 0.08, since 10:42:05, unacknowledged\n"
            "Level 2 reminder. Acknowledge: campusgw-ctl ack A-1F-hydrant-01/x --by NAME");
    /* A summary has no alarm. */
    struct gw_esc_summary s = storm_summary();
    struct gw_esc_notification sn = {
        .kind = GW_ESC_SUMMARY, .level = 1, .summary = &s, .raised_at_ms = T0};
    gw_notify_text_fields(&f, &cfg, NULL, &sn);
    assert_null(f.key);
    assert_ptr_equal(f.summary, &s);
}

static void test_build_all_and_language(void **state)
{
    (void)state;
    assert_int_equal(gw_notify_text_lang("en"), GW_LANG_EN);
    assert_int_equal(gw_notify_text_lang("en-US"), GW_LANG_EN);
    assert_int_equal(gw_notify_text_lang("zh-CN"), GW_LANG_ZH);
    assert_int_equal(gw_notify_text_lang(NULL), GW_LANG_ZH);
    assert_int_equal(gw_notify_text_lang("eng"), GW_LANG_ZH);
    struct gw_notify_fields nf = smoke_fields("301室", "烟感报警");
    struct gw_notify_texts t;
    assert_int_equal(gw_notify_text_build(&t, &nf, "zh-CN", 9, T0), 0);
    assert_true(strncmp(t.text, "【火警】A栋 3层 301室 烟感报警", 10) == 0);
    assert_string_equal(t.subject, "[campusgw] 【火警】A-3F-smoke-301 烟感报警");
    json_t *j = json_loads(t.json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "text")), t.text);
    json_decref(j);
    assert_true(strncmp(t.email_body, t.text, strlen(t.text)) == 0);
    assert_non_null(t.wecom);
    assert_non_null(t.dingtalk);
    gw_notify_text_release(&t);
    assert_null(t.text);
    gw_notify_text_release(NULL);
    nf.kind = GW_ESC_SUMMARY;
    assert_int_equal(gw_notify_text_build(&t, &nf, "en", 1, T0), -EINVAL);
    assert_null(t.json);
    assert_int_equal(gw_notify_text_build(&t, NULL, "en", 1, T0), -EINVAL);
}

/* An escalation notification all the way to texts, in UTC this time. */
static void test_escalation_to_text(void **state)
{
    struct fx *f = *state;
    set_tz("UTC");
    make(f);
    start(f, "A/smoke", GW_CLASS_ALARM, T0, false);
    assert_int_equal(due(f, T0), 2);
    struct gw_alarm a = {.key = "A/smoke",
                         .rule_index = -1,
                         .sensor_index = -1,
                         .state = GW_ALARM_UNACKED,
                         .raised_at_ms = T0};
    struct gw_notify_fields nf;
    gw_notify_text_fields(&nf, &f->cfg, &a, &f->out[1]);
    nf.rule = "smoke";
    text_is(&nf, GW_LANG_EN, T0,
            "[FIRE ALARM] smoke (A/smoke) since 02:42:05, unacknowledged\n"
            "Level 1. Acknowledge: campusgw-ctl ack A/smoke --by NAME");
}

/* The gateway's own alarm: its name, its source as the sensor, no location or threshold. */
static void test_text_system_alarm(void **state)
{
    (void)state;
    /* A config with rules and sensors: a system alarm must not take index -1 into them. */
    struct gw_sensor_cfg sensors[] = {
        {.id = "A-1F-hydrant-01", .location = {.building = "A", .floor = "1"}}};
    struct gw_rule_cfg rules[] = {
        {.name = "消火栓压力低", .cond = GW_COND_BELOW, .threshold = 0.1}};
    struct gw_config cfg = {.site = {.name = "第一中学"},
                            .nsensors = 1,
                            .sensors = sensors,
                            .nrules = 1,
                            .rules = rules};
    struct gw_alarm a = {.key = "gateway/path-self-test",
                         .rule_index = -1,
                         .sensor_index = -1,
                         .system = true,
                         .alarm_class = GW_CLASS_TROUBLE,
                         .name = "通路自检",
                         .test = true,
                         .state = GW_ALARM_UNACKED,
                         .raised_at_ms = T0};
    struct gw_esc_notification n = {.kind = GW_ESC_RAISE,
                                    .key = "gateway/path-self-test",
                                    .alarm_class = GW_CLASS_TROUBLE,
                                    .test = true,
                                    .level = 1,
                                    .raised_at_ms = T0};
    struct gw_notify_fields f;
    gw_notify_text_fields(&f, &cfg, &a, &n);
    assert_string_equal(f.rule, "通路自检");
    assert_string_equal(f.sensor, "gateway");
    assert_null(f.building);
    assert_null(f.floor);
    assert_null(f.unit);
    assert_false(f.has_threshold);
    assert_string_equal(f.site, "第一中学");
    text_is(&f, GW_LANG_ZH, T0,
            "【故障·测试】通路自检 (gateway) 10:42:05 起，未确认\n"
            "第1级通知。确认: campusgw-ctl ack gateway/path-self-test --by 姓名");
    snprintf(a.name, sizeof(a.name), "path self-test");
    gw_notify_text_fields(&f, &cfg, &a, &n);
    text_is(&f, GW_LANG_EN, T0,
            "[TROUBLE TEST] path self-test (gateway) since 10:42:05, unacknowledged\n"
            "Level 1. Acknowledge: campusgw-ctl ack gateway/path-self-test --by NAME");
    json_t *j = parse(gw_notify_text_json(3, &f, "t"));
    assert_string_equal(json_string_value(json_object_get(j, "sensor")), "gateway");
    assert_true(json_is_null(json_object_get(j, "location")));
    assert_true(json_is_true(json_object_get(j, "test")));
    assert_string_equal(json_string_value(json_object_get(j, "class")), "trouble");
    json_decref(j);
    /* Without a notification, class and test come from the alarm. */
    a.test = false;
    a.alarm_class = GW_CLASS_SUPERVISORY;
    snprintf(a.key, sizeof(a.key), "bus-rs485_1/bus-offline");
    snprintf(a.name, sizeof(a.name), "总线 rs485_1 离线");
    a.state = GW_ALARM_RTN_UNACKED;
    a.cleared_at_ms = T0 + MIN;
    gw_notify_text_fields(&f, &cfg, &a, NULL);
    assert_int_equal(f.alarm_class, GW_CLASS_SUPERVISORY);
    assert_false(f.test);
    text_is(&f, GW_LANG_ZH, T0 + 2 * MIN,
            "【监管】总线 rs485_1 离线 (bus-rs485_1) 10:42:05 起，已恢复，未确认\n"
            "确认: campusgw-ctl ack bus-rs485_1/bus-offline --by 姓名");
    a.test = true;
    gw_notify_text_fields(&f, &cfg, &a, NULL);
    assert_true(f.test);
    /* A rule alarm's test flag too, when there is no notification. */
    struct gw_alarm r = {
        .key = "A-1F-hydrant-01/x", .rule_index = 0, .sensor_index = 0, .test = true};
    gw_notify_text_fields(&f, &cfg, &r, NULL);
    assert_true(f.test);
    assert_string_equal(f.sensor, "A-1F-hydrant-01");
    assert_string_equal(f.rule, "消火栓压力低");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_level1_at_once_level2_exactly_at_after_s),
        T(test_level1_after_delay),
        T(test_raised_in_the_past_is_due_at_once),
        T(test_repeat_every_repeat_s),
        T(test_missed_repeats_collapse_into_one),
        T(test_late_levels_all_due_in_order_without_a_repeat),
        T(test_test_alarm_gets_level1_only),
        T(test_stop_midway_then_clear_tells_exactly_the_told),
        T(test_clear_after_all_levels_and_before_any),
        T(test_reraise_starts_at_level1_and_keeps_told),
        T(test_order_fire_first_then_by_due_time),
        T(test_out_too_small_keeps_the_rest_due),
        T(test_class_without_levels_and_bad_input),
        T(test_bad_contact_indexes_and_duplicates_are_ignored),
        T(test_save_format),
        T(test_restore_midway_no_repeat_no_skip),
        T(test_restore_overdue_levels_due_at_once_in_order),
        T(test_restore_keeps_the_repeat_phase),
        T(test_restore_stopped_and_test),
        T(test_restore_rejects_bad_state),
        T(test_restore_drops_unknown_contacts_and_clamps_level),
        T(test_flush_hands_over_changes_and_deletions),
        T(test_shift_time_moves_deadlines),
        T(test_reload_matches_contacts_by_name),
        T(test_storm_threshold_edges),
        T(test_storm_one_summary_per_contact),
        T(test_storm_summary_lists_20_and_counts_the_rest),
        T(test_storm_next_summary_a_window_later),
        T(test_storm_key_cleared_or_stopped_before_summary),
        T(test_storm_disabled),
        T(test_storm_held_survives_restart),
        T(test_restore_replaces_and_after_clear),
        T(test_storm_summary_waits_for_room_and_moves_with_the_clock),
        T(test_reload_keeps_pending_summaries_and_deletions),
        T(test_no_contacts_configured),
        T(test_text_odd_inputs),
        T(test_text_issue_example_zh),
        T(test_text_en),
        T(test_text_value_threshold_and_date),
        T(test_text_repeat_clear_test_zh),
        T(test_text_values_of_other_rules),
        T(test_text_storm_summary),
        T(test_subjects),
        T(test_email_body),
        T(test_json_payload),
        T(test_robot_bodies),
        T(test_fields_from_config),
        T(test_build_all_and_language),
        T(test_escalation_to_text),
        T(test_text_system_alarm),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
