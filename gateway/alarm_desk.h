/*
 * The alarm desk: where alarms meet people. It owns the alarm lifecycle
 * (alarms.c), the escalation (escalation.c) and the notifiers (notify.c),
 * turns rule transitions and operator commands into P/alarms, P/events,
 * P/notify and P/cmd/result records, keeps what must survive a restart in the
 * store (alarm records, escalation state, out-of-service sensors), and runs
 * the escalation timer. Loop thread only.
 */
#ifndef GW_ALARM_DESK_H
#define GW_ALARM_DESK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "commands.h"
#include "config.h"
#include "hazard_desk.h"
#include "hazards.h"
#include "record.h"
#include "rules.h"
#include "store.h"

/* What the desk needs of the core. */
struct gw_desk_host {
    void *core;
    uint64_t (*next_seq)(void *core);
    /* Takes json (malloc'd; NULL is logged and dropped). */
    void (*emit)(void *core, enum gw_record_type type, int64_t ts_ms, const char *topic, char *json,
                 uint64_t seq);
    /* Alarm-stream records of this loop iteration are committed together (one fsync). */
    void (*open_batch)(void *core);
    /* Something P/status shows changed (a self-test result): publish it again. May be NULL. */
    void (*status_changed)(void *core);
};

struct gw_desk;

/* NULL after logging why. cfg and store must outlive it (see gw_desk_reload). */
struct gw_desk *gw_desk_new(uv_loop_t *loop, const struct gw_config *cfg, struct gw_store *store,
                            const struct gw_desk_host *host);

/*
 * At start: the alarms, escalation state and out-of-service sensors in the
 * store. Alarms whose condition was on are marked active in `rules` (so the
 * next reading that no longer meets it clears them); those gone from the
 * config are ended (empty retained record). Returns how many were restored.
 */
int gw_desk_restore(struct gw_desk *desk, struct gw_rules *rules, int64_t now_ms);

/* Rule transitions (a test-button reading: test = true, told to level 1 only). */
void gw_desk_on_transitions(struct gw_desk *desk, const struct gw_alarm_transition *t, int n,
                            bool test, int64_t now_ms);

/*
 * A command, whatever brought it: parsed, applied, logged. 0, or the error:
 * -EINVAL bad input (400), -ENOENT unknown alarm or sensor (404), -EPERM wrong
 * state (409), with the message in result->error. Names starting "hazard/"
 * ("hazard/open", "hazard/update", "hazard/rectifying", "hazard/close",
 * "hazard/reopen") go to the hazard desk: then cmd.name is the whole name,
 * cmd.id the request id, hazard the hazard's id ("" when unknown) and state
 * the hazard's status; -EIO (503) when the register is invalid or the store
 * cannot write.
 */
struct gw_desk_result {
    struct gw_command cmd;     /* what was understood of it */
    char error[GW_ERR_MAX];    /* "" when ok */
    const char *state;         /* the alarm's (or sensor's) state after it; NULL on error */
    char hazard[GW_HZ_ID_MAX]; /* hazard commands: the hazard's id; "" otherwise */
};
int gw_desk_execute(struct gw_desk *desk, const char *source, const char *name, const void *payload,
                    size_t len, int64_t now_ms, struct gw_desk_result *result);

/* A command from MQTT (source "hub"/"uplink"): the result goes to P/cmd/result. */
void gw_desk_command(struct gw_desk *desk, const char *source, const char *name,
                     const void *payload, size_t len, int64_t now_ms);

/* About once a second: shelve expiry, chattering, escalation catch-up. */
void gw_desk_tick(struct gw_desk *desk, int64_t now_ms);

/* The wall clock stepped (see gw_rules_shift_time). */
void gw_desk_shift_time(struct gw_desk *desk, int64_t delta_ms);

/* Every active alarm's retained record again (a new broker). */
void gw_desk_snapshot(struct gw_desk *desk, int64_t now_ms);

/* The live alarms (for the API and the page): valid until the next call that changes the desk. */
const struct gw_alarms *gw_desk_alarms(const struct gw_desk *desk);

/* The hazard register's desk (hazard_desk.h): for the API, the page, KPIs and the daily log. */
struct gw_hazard_desk *gw_desk_hazards(struct gw_desk *desk);

/* Is the sensor out of service (its telemetry is marked, its alarms silent)? */
bool gw_desk_sensor_oos(const struct gw_desk *desk, int sensor_index);

/*
 * Config reload: carry alarms and escalation over to cfg (ended alarms are
 * published with the old config, which must still be alive). 0 or -errno
 * (then the desk keeps the old config).
 */
int gw_desk_reload(struct gw_desk *desk, const struct gw_config *cfg, int64_t now_ms);

/*
 * The daily path self-test (selftest.at; or now, SIGUSR2): a test alarm
 * raised through the whole path (store, hub, uplink, the mqtt contacts of
 * level 1), timed hop by hop, then cleared. One that does not complete within
 * selftest.timeout_s raises the trouble alarm gateway/self-test-failed.
 */
void gw_desk_selftest_now(struct gw_desk *desk, int64_t now_ms);
/* The last result as a JSON object for P/status, or NULL before the first. */
const char *gw_desk_selftest_json(const struct gw_desk *desk);

/* Notification counters of one channel kind (enum gw_channel_kind). */
void gw_desk_notify_counters(const struct gw_desk *desk, int kind, uint64_t *sent, uint64_t *failed,
                             uint64_t *retries);

/* Counts for P/metrics and P/status. */
struct gw_desk_stats {
    int active;  /* non-normal alarms */
    int unacked; /* unacked + rtn_unacked */
    int per_class[GW_NCLASSES];
    uint64_t commands, commands_refused;
    uint64_t notify_sent, notify_failed, notify_retries;
    int notify_pending;
};
void gw_desk_stats(const struct gw_desk *desk, struct gw_desk_stats *out);

/* Stop the timer, cancel sends still running; `closed` runs once all is closed and freed. */
void gw_desk_close(struct gw_desk *desk, void (*closed)(void *ctx), void *ctx);

#endif
