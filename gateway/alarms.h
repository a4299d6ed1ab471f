/*
 * The ISA-18.2 lifecycle of every alarm. Pure: no I/O, no clock reads (time is
 * an argument), no logging; errors come back as a negative errno and a text.
 *
 * An alarm is one (rule, sensor) pair, keyed "<sensor id>/<rule slug>". Its
 * inputs are the rule engine's raise/clear transitions (condition on / off),
 * operator commands and time (tick). Every call that changes something writes
 * gw_alarm_change records: the alarm after the change, the transition name
 * (P/events "transition"), who did it, and what the escalation must do.
 *
 * States (gw_alarm_state_name) and events:
 *
 *   condition on   normal -> unacked ("raise", NOTIFY_RAISE)
 *                  rtn_unacked -> unacked ("raise", a new raise: NOTIFY_RAISE)
 *                  acked with the condition gone (latched) -> unacked (a new raise)
 *                  unacked with the condition gone (latched): stays unacked
 *                    ("raise", NOTIFY_NONE: it never stopped escalating)
 *                  shelved / out_of_service: stays, condition remembered ("raise", NONE)
 *                  a sensor out of service: normal -> out_of_service ("raise", NONE)
 *   condition off  unacked -> rtn_unacked, acked -> normal ("clear", NOTIFY_CLEAR);
 *                  latched rule: the state stays, needs_reset ("clear", NONE);
 *                  shelved / out_of_service: stays ("clear", NONE)
 *   ack            unacked -> acked; rtn_unacked -> normal, or acked + needs_reset
 *                  when the rule is latched ("ack", NOTIFY_STOP)
 *   reset          latched, acked, condition off -> normal ("reset", NOTIFY_CLEAR)
 *   shelve         unacked / acked / rtn_unacked -> shelved until now + minutes
 *                  ("shelve", NOTIFY_STOP)
 *   unshelve, or   shelved -> unacked when the condition is on (NOTIFY_RAISE, a fresh
 *   its expiry     raise: raised_at = now, ack and level cleared), else -> normal (NONE)
 *                  ("unshelve"; by = "" for the expiry at exactly shelved_until_ms)
 *   out_of_service every non-normal alarm of the sensor -> out_of_service
 *                  ("out_of_service", NOTIFY_STOP); later raises are born out of service
 *   in_service     each alarm of the sensor re-evaluated as by unshelve ("in_service")
 *   duplicates     condition on when already on, off when already off: no change
 *
 * Chattering: a raise is any condition-on edge (every "raise" change). More than
 * cfg->alarms.chatter_count of them within chatter_minutes (a raise at r counts
 * while now < r + window) sets `chattering` (an extra "chattering" change after
 * the raise). While chattering, a raise that would notify does so only when no
 * notification went out in the last window; otherwise it is NOTIFY_NONE,
 * `suppressed` counts it and `notify_pending` keeps it: a clear before it is
 * told is NOTIFY_NONE too (nobody heard of that raise), and tick tells it
 * ("raise", NOTIFY_RAISE, state unchanged) once the window since the last
 * notification has passed or chattering has ended, if it is still unacked.
 * tick ends chattering when the count in the window is <= chatter_count
 * ("chattering" change, chattering false, NONE). A chatter_count or
 * chatter_minutes of 0 turns chattering off. Re-raises by unshelve and
 * in_service are operator actions: always notified, not counted.
 *
 * A normal alarm is not active, but its record is kept while it has raise
 * history inside the window, so chattering spans raise/clear cycles.
 *
 * System alarms (gw_alarms_system_raise / _clear: the gateway's own, e.g.
 * "gateway/path-self-test") follow the same lifecycle as an unlatched rule
 * alarm: ack, shelve, unshelve and chattering work by key; reset answers "not
 * latched"; out_of_service / in_service of a sensor never touch them. They are
 * in gw_alarms_find, _next, _count, restored (gw_alarm.system) and carried
 * over a reload. A rule alarm's `test` follows gw_alarm_transition.test.
 *
 * Pointers into the set (gw_alarms_get, _find, _next) stay valid until the
 * next call that takes a non-const gw_alarms.
 */
#ifndef GW_ALARMS_H
#define GW_ALARMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alarm.h"
#include "config.h"
#include "rules.h"

#define GW_SHELVE_MINUTES_MAX 10080 /* one week */

/* What the escalation does with a change. */
enum gw_notify_action {
    GW_NOTIFY_NONE,
    GW_NOTIFY_RAISE, /* start escalating (level 1 now) */
    GW_NOTIFY_CLEAR, /* tell everyone who was told of the raise; escalation over */
    GW_NOTIFY_STOP,  /* stop escalating (ack, shelve, out of service); nobody told */
};

const char *gw_notify_action_name(enum gw_notify_action action); /* "none", "raise", ... */

struct gw_alarm_change {
    struct gw_alarm alarm;  /* after the change; its indexes are into the gw_alarms' cfg */
    const char *transition; /* static: "raise", "clear", "ack", "reset", "shelve",
                               "unshelve", "out_of_service", "in_service", "chattering" */
    char by[GW_NAME_MAX];   /* the operator; "" for the rules and time */
    char note[GW_NOTE_MAX]; /* the operator's note; "" none */
    enum gw_notify_action notify;
    int64_t ts_ms; /* when (the transition's ts_ms or the call's now_ms) */
};

/* A raise plus the "chattering" it may start: room on_transition needs. */
#define GW_ALARMS_TRANSITION_CHANGES 2

enum gw_alarm_cmd_type {
    GW_CMD_ACK,
    GW_CMD_RESET,
    GW_CMD_SHELVE,
    GW_CMD_UNSHELVE,
    GW_CMD_OUT_OF_SERVICE,
    GW_CMD_IN_SERVICE,
};

/* "ack", "reset", "shelve", "unshelve", "out_of_service", "in_service" (P/cmd/<name>). */
const char *gw_alarm_cmd_name(enum gw_alarm_cmd_type type);
/* The type of a command name; -1 when unknown. */
int gw_alarm_cmd_from_name(const char *name);

struct gw_alarm_command {
    enum gw_alarm_cmd_type type;
    const char *key;    /* ack, reset, shelve, unshelve: "<sensor>/<rule-slug>" */
    const char *sensor; /* out_of_service, in_service: the sensor id */
    const char *by;     /* required, 1..GW_NAME_MAX-1 bytes */
    const char *note;   /* optional (NULL or ""), at most GW_NOTE_MAX-1 bytes */
    int minutes;        /* shelve: 1..GW_SHELVE_MINUTES_MAX */
};

/* One sensor under maintenance. */
struct gw_oos_sensor {
    int sensor_index;
    char by[GW_NAME_MAX];
    int64_t since_ms;
};

struct gw_alarms;

/* Every alarm normal, every sensor in service. cfg must outlive it. NULL: out of memory. */
struct gw_alarms *gw_alarms_new(const struct gw_config *cfg);
void gw_alarms_free(struct gw_alarms *al);

/*
 * A rule's raise (condition on) or clear (condition off). Writes at most `max`
 * changes (GW_ALARMS_TRANSITION_CHANGES is always enough) and returns how many:
 * 0 for a duplicate. -EINVAL for indexes outside cfg, -ENOSPC when max is
 * below GW_ALARMS_TRANSITION_CHANGES, -ENOMEM: nothing changed in those cases.
 */
int gw_alarms_on_transition(struct gw_alarms *al, const struct gw_alarm_transition *t,
                            struct gw_alarm_change *out, int max);

/*
 * A system alarm's condition comes on (raise) or goes off (clear): the same
 * changes as a rule's raise / clear, with rule_index and sensor_index -1.
 * key: "<source>/<slug>", source [A-Za-z0-9_.-]+ and not a configured sensor
 * id, slug [a-z0-9-]+, shorter than GW_KEY_MAX. name: what messages call it
 * ("path self-test"), 1..sizeof(gw_alarm.name)-1 bytes of UTF-8. value may be
 * NULL (none); the clear keeps the raise's value. test: level 1 only (a raise
 * that starts a new occurrence sets it; while an unacknowledged occurrence is
 * still open a test raise does not make it a test). name and class are taken
 * at every raise. Returns the number of changes (0 for a duplicate, or a clear
 * of an alarm that has no record), -EINVAL for a bad key, name or class,
 * -ENOSPC when max < GW_ALARMS_TRANSITION_CHANGES, -ENOMEM; nothing changed on
 * error.
 */
int gw_alarms_system_raise(struct gw_alarms *al, const char *key, const char *name,
                           enum gw_alarm_class cls, const struct gw_value *value, bool test,
                           int64_t now_ms, struct gw_alarm_change *out, int max);
int gw_alarms_system_clear(struct gw_alarms *al, const char *key, int64_t now_ms,
                           struct gw_alarm_change *out, int max);

/*
 * An operator's command. Returns the number of changes written (>= 0; 0 is a
 * success too: out_of_service of a sensor with no active alarm), or a negative
 * errno with a one-line message in err (a P/cmd/result "error") and nothing
 * changed:
 *   -ENOENT  unknown alarm key or sensor id                    (404-like)
 *   -EINVAL  bad input: missing key / sensor / by, bad minutes,
 *            by or note too long, unknown type                 (400-like)
 *   -EPERM   wrong state: not allowed in the alarm's (or sensor's) state,
 *            "not latched", "condition still present", "acknowledge first",
 *            already out of service / not out of service      (409 "wrong state")
 *   -ENOSPC  max too small (max >= cfg->nrules is always enough)
 *   -ENOMEM
 * A key whose sensor and rule exist but which the rule does not apply to
 * (its kind or sensor filter) is unknown; so is a system alarm's key while it
 * has no record (never raised, or normal again with no chatter history).
 */
int gw_alarms_command(struct gw_alarms *al, const struct gw_alarm_command *cmd, int64_t now_ms,
                      struct gw_alarm_change *out, int max, char *err, size_t errlen);

/*
 * Time passing: shelve expiry (at now_ms >= shelved_until_ms), the end of
 * chattering, held-back notifications. Call about once a second. Returns how
 * many changes it wrote; when out had no room for all (3 per alarm at most),
 * the rest stay for the next call: nothing is lost, and a caller that wants
 * them now calls again until it returns 0. -ENOSPC when max < 3.
 */
int gw_alarms_tick(struct gw_alarms *al, int64_t now_ms, struct gw_alarm_change *out, int max);

/* The record of (rule, sensor), which may be normal; NULL when it has none (normal). */
const struct gw_alarm *gw_alarms_get(const struct gw_alarms *al, int rule_index, int sensor_index);
/* Same by key (rule or system alarm); NULL when unknown or without record. */
const struct gw_alarm *gw_alarms_find(const struct gw_alarms *al, const char *key);
/*
 * key -> indexes into cfg: 0, or -ENOENT (also when the rule does not apply to
 * the sensor, and for a system alarm's key).
 */
int gw_alarms_parse_key(const struct gw_alarms *al, const char *key, int *rule_index,
                        int *sensor_index);

/* The active (non-normal) alarms: for (int it = 0; (a = gw_alarms_next(al, &it));) */
const struct gw_alarm *gw_alarms_next(const struct gw_alarms *al, int *iter);
/* Active alarms by class and state (the normal column stays 0). Returns the total. */
int gw_alarms_count(const struct gw_alarms *al, int counts[GW_NCLASSES][GW_ALARM_NSTATES]);

/*
 * The wall clock stepped by delta_ms (gw_rules_shift_time): move the instants
 * that time durations (shelve expiry, chatter window, last notification) so
 * they are unaffected. Recorded times (raised_at, acked_at, ...) stay.
 */
void gw_alarms_shift_time(struct gw_alarms *al, int64_t delta_ms);

/* The escalation reached `level` (published and persisted with the alarm). 0 or -ENOENT. */
int gw_alarms_set_level(struct gw_alarms *al, int rule_index, int sensor_index, int level);
/* Same by key: also for system alarms. 0, or -ENOENT (unknown, or normal). */
int gw_alarms_set_level_key(struct gw_alarms *al, const char *key, int level);

/* Is the sensor out of service? With out non-NULL, who put it there and when. */
bool gw_alarms_sensor_oos(const struct gw_alarms *al, int sensor_index, struct gw_oos_sensor *out);
/* The out-of-service sensors into out[max]; returns how many there are (may exceed max). */
int gw_alarms_oos_sensors(const struct gw_alarms *al, struct gw_oos_sensor *out, int max);

/*
 * At start, from the store. Neither writes changes nor notifies: the state is
 * taken as it was. gw_alarms_restore resolves a->key against cfg (its indexes
 * are ignored) and returns 0, -ENOENT (key gone from the config: the caller
 * publishes its end), -EINVAL (bad state) or -ENOMEM. A record with
 * a->system (gw_payload_alarm_parse sets it) is a system alarm: its key must
 * have the system shape (-EINVAL), its source must not be a sensor id now
 * (-ENOENT), its name non-empty and its class valid (-EINVAL), and its state
 * not out_of_service (-EINVAL). A rule alarm takes name and class from its rule.
 * The record is made
 * consistent with cfg: needs_reset only for a latched rule in unacked/acked
 * with the condition off; an alarm in out_of_service puts its sensor out of
 * service (by "" until gw_alarms_restore_oos says who), and a sensor restored
 * out of service takes its restored non-normal alarms with it. So the order
 * of the two calls does not matter.
 */
int gw_alarms_restore(struct gw_alarms *al, const struct gw_alarm *a);
int gw_alarms_restore_oos(struct gw_alarms *al, int sensor_index, const char *by, int64_t since_ms);

/*
 * After a reload: `al` is fresh from gw_alarms_new(new cfg); take over every
 * alarm record and out-of-service sensor of `old` whose sensor id and rule
 * slug (the key) still exist and apply, and every system alarm whose source
 * did not become a sensor id. Writes a change for:
 *   - each non-normal alarm that is gone: "clear" to normal, NOTIFY_CLEAR, note
 *     "removed from the config" (a system alarm: "its source is now a sensor
 *     id"). ITS INDEXES ARE INTO old's cfg: serialize it with old's config
 *     (and before freeing old);
 *   - each carried alarm whose rule is no longer latched but was held by the
 *     latch (needs_reset): "clear" as if the condition cleared now.
 * max >= the number of old's active alarms is always enough; otherwise
 * -ENOSPC and nothing carried. -ENOMEM likewise.
 */
int gw_alarms_carry_over(struct gw_alarms *al, const struct gw_alarms *old, int64_t now_ms,
                         struct gw_alarm_change *out, int max);

#endif
