/* The complain/release rate limiter: once, then with growing spacing, recovery once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log.h"

static void first_complaint_logs_then_waits(void **state)
{
    (void)state;
    struct gw_complaint c = {0};
    assert_true(gw_complain(&c, 1000));
    assert_false(gw_complain(&c, 1001));
    assert_false(gw_complain(&c, 60999));
    assert_true(gw_complain(&c, 61000)); /* after the first minute */
    assert_false(gw_complain(&c, 61000 + 119999));
    assert_true(gw_complain(&c, 61000 + 120000)); /* spacing doubled */
    assert_int_equal(c.suppressed, 3);
}

static void spacing_caps_at_a_day(void **state)
{
    (void)state;
    struct gw_complaint c = {0};
    int64_t now = 0;
    assert_true(gw_complain(&c, now));
    for (int i = 0; i < 40; i++) {
        now = c.next_ms;
        assert_true(gw_complain(&c, now));
    }
    assert_int_equal(c.interval_ms, 24 * 3600 * 1000LL);
}

static void release_only_after_complaint(void **state)
{
    (void)state;
    struct gw_complaint c = {0};
    assert_false(gw_release(&c));
    assert_true(gw_complain(&c, 5));
    assert_true(gw_release(&c));
    assert_false(gw_release(&c));
    /* A new fault after recovery is logged at once again. */
    assert_true(gw_complain(&c, 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_complaint_logs_then_waits),
        cmocka_unit_test(spacing_caps_at_a_day),
        cmocka_unit_test(release_only_after_complaint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
