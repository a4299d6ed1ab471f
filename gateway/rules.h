/*
 * Rule evaluation. Pure: no I/O, no clock reads; the caller passes now_ms
 * (Unix ms). Schedules are evaluated in the process's local time zone
 * (main sets TZ to site.timezone once at start; tests set it themselves).
 *
 * One instance per (rule, sensor) pair the rule applies to. Each instance
 * remembers the last value of its point, so time alone (tick) can raise or
 * clear: on/off delays running out, a schedule window opening or closing,
 * a sensor missing its intervals.
 */
#ifndef GW_RULES_H
#define GW_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "reading.h"

enum gw_transition_type { GW_TRANSITION_RAISE, GW_TRANSITION_CLEAR };

struct gw_alarm_transition {
    int rule_index;   /* into cfg->rules */
    int sensor_index; /* into cfg->sensors */
    enum gw_transition_type type;
    struct gw_value value; /* the value that decided it; for offline rules the age in s */
    int64_t ts_ms;         /* when it happened (now_ms of the call) */
    bool test; /* a test reading (a detector's test button): the rules leave it false, the
                  caller sets it; it marks the alarm's raise as a test */
};

struct gw_rules;

/* Instances for cfg (which must outlive the rules). now_ms starts the offline clocks. */
struct gw_rules *gw_rules_new(const struct gw_config *cfg, int64_t now_ms);
void gw_rules_free(struct gw_rules *rules);

/*
 * After a reload: take over the state (pending delays, active, last
 * value, last seen) of every instance of `old` whose sensor id and rule slug
 * exist in `rules` too, so a reload neither re-raises nor forgets an alarm.
 */
void gw_rules_carry_over(struct gw_rules *rules, const struct gw_rules *old);

/*
 * Feed one reading (status GW_READING_OK; others are ignored except that they
 * do not count as "seen"). Appends at most `max` transitions to `out` and
 * returns how many. reading->sensor_index must be valid for cfg.
 */
int gw_rules_on_reading(struct gw_rules *rules, const struct gw_reading *reading, int64_t now_ms,
                        struct gw_alarm_transition *out, int max);

/* Time passing: delays, schedules, offline detection. Call about once a second. */
int gw_rules_tick(struct gw_rules *rules, int64_t now_ms, struct gw_alarm_transition *out, int max);

/*
 * After a restart: the alarm of (rule, sensor) was raised when the gateway
 * stopped (the store says so). Mark it active without a transition, so the
 * first reading that no longer meets the condition clears it (the alarm
 * lifecycle holds a latched one). Returns false when the rule does not apply.
 * Restore only alarms whose condition was on (gw_alarm.condition).
 */
bool gw_rules_restore_active(struct gw_rules *rules, int rule_index, int sensor_index);

/* Is the alarm of (rule, sensor) raised now? false when the rule does not apply. */
bool gw_rules_is_active(const struct gw_rules *rules, int rule_index, int sensor_index);

/*
 * The wall clock stepped by delta_ms (NTP setting the clock of a Pi with no
 * RTC, an operator fixing the date): move every remembered instant by the same
 * amount, so durations (on/off delays, offline ages, rates) are unaffected.
 */
void gw_rules_shift_time(struct gw_rules *rules, int64_t delta_ms);

/* Is the schedule's window open at now_ms (local time)? */
bool gw_schedule_is_open(const struct gw_schedule_cfg *schedule, int64_t now_ms);

#endif
