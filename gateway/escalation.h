/*
 * Escalation: who is told of an alarm, and when, until someone takes it.
 * Pure: no I/O, no clock reads; every call that depends on time takes now_ms
 * (Unix ms). The lead runs a timer to gw_escalation_next_deadline(), calls
 * gw_escalation_due() when it fires, and delivers what comes out.
 *
 * Levels (config escalation.<class>, DESIGN.md). An alarm started at
 * raised_at is told to level i (0-based) at raised_at + levels[i].after_s,
 * exactly at that instant (1 ms earlier it is not due). Levels are told in
 * order, each once; none is skipped: when the gateway was down past several
 * levels' times they are all due at once on restore, in order. After the last
 * level, when its repeat_s > 0, the last level is told again (REPEAT) every
 * repeat_s counted from that level's due time. Repeats missed while the
 * gateway was down collapse into one (then back on the schedule, after now);
 * a last level told late is not followed by an immediate repeat: the next one
 * falls on the schedule after now. A `test` alarm is told to
 * level 1 only. stop() ends the telling (ack, shelve, out of service); a
 * later start() of the same key (re-raise, unshelve) begins at level 1 again.
 * clear() tells CLEAR to every contact told of the raise (the union over the
 * levels told) and forgets the key.
 *
 * Order: the notifications of one due() call come fire alarms first, then
 * supervisory, then trouble (DESIGN.md: fire goes out ahead of everything);
 * within a class by due time, then by start order.
 *
 * Alarm storm. A start is "in a storm" when, counting it, more than
 * cfg->alarms.storm_count starts happened in the last 60 s, i.e. in
 * (now - 60000, now] (storm_count <= 0 turns storm handling off; test alarms
 * and re-raises count like any start). The first storm_count alarms of a
 * burst are told one by one as usual. For an alarm started in a storm, its
 * level-1 RAISE is not sent on its own: the key is held for each level-1
 * contact, and each contact gets ONE SUMMARY listing the held keys (the first
 * GW_ESC_SUMMARY_KEYS by raise time, plus the total, so a text can say
 * "and N more"). A contact's summary is due GW_ESC_STORM_HOLD_MS after the
 * first key held for it (to gather the burst, well within the 10 s GB 26875.1
 * gives a fire alarm), but never sooner than GW_ESC_STORM_WINDOW_MS after that
 * contact's previous summary: during a long storm each contact hears one
 * summary a minute. When the summary goes out its keys count as told (a later
 * clear is told to that contact); a key cleared or stopped before its summary
 * went out is dropped from it (nobody heard of it, nobody hears of its clear).
 * Storm alarms still escalate to level 2 and on one by one.
 *
 * Persistence. gw_escalation_save() gives a key's state as a small JSON object
 *   {"v":1,"class":"alarm","test":false,"raised_at":MS,"level":N,
 *    "next_due":MS|null,"repeats":N,"stopped":false,"storm":false,
 *    "told":["facilities",...],"held":[...]}
 * (level = levels told so far; contacts by name, so a config reload that
 * reorders contacts keeps them; a contact no longer configured is dropped).
 * gw_escalation_restore() takes it back: the next level is due at raised_at +
 * its after_s in the config now loaded, levels told are not told again, an
 * overdue level is due at once. gw_escalation_flush() hands over every key
 * changed since the last flush (and every key forgotten), so the lead writes
 * them to SQLite in the same transaction as the alarm change, before it
 * delivers the notifications.
 */
#ifndef GW_ESCALATION_H
#define GW_ESCALATION_H

#include <stdbool.h>
#include <stdint.h>

#include "alarm.h"
#include "config.h"

#define GW_ESC_NEVER INT64_MAX
#define GW_ESC_SUMMARY_KEYS 20
#define GW_ESC_STORM_WINDOW_MS 60000
#define GW_ESC_STORM_HOLD_MS 5000

enum gw_esc_kind {
    GW_ESC_RAISE,   /* a level is told for the first time */
    GW_ESC_REPEAT,  /* the last level again (repeat_s) */
    GW_ESC_CLEAR,   /* the condition is gone: to everyone told of the raise */
    GW_ESC_SUMMARY, /* an alarm storm: many raises in one message */
};

/* The keys one contact is told in a storm summary. */
struct gw_esc_summary {
    int total;                                  /* keys in this summary */
    int nlisted;                                /* keys[] filled: min(total, GW_ESC_SUMMARY_KEYS) */
    int per_class[GW_NCLASSES];                 /* of total, by enum gw_alarm_class */
    int tests;                                  /* of total, test alarms */
    int64_t first_ms, last_ms;                  /* raised_at of the earliest and the latest */
    char keys[GW_ESC_SUMMARY_KEYS][GW_KEY_MAX]; /* by raise time, then start order */
};

struct gw_esc_notification {
    enum gw_esc_kind kind;
    char key[GW_KEY_MAX];            /* "" for SUMMARY */
    enum gw_alarm_class alarm_class; /* SUMMARY: the highest class it holds */
    int level;                       /* 1-based; CLEAR: the highest level told; SUMMARY: 1 */
    int contact;                     /* index into cfg->contacts */
    bool test;
    int64_t raised_at_ms; /* SUMMARY: the earliest raise in it */
    int64_t due_ms;       /* when it fell due (<= now); CLEAR: now */
    /* SUMMARY only: owned by the escalation, valid until the next
     * gw_escalation_due() or gw_escalation_free(). */
    const struct gw_esc_summary *summary;
};

struct gw_escalation;

/* cfg (contacts, escalation, alarms.storm_count) must outlive it. NULL when out of memory. */
struct gw_escalation *gw_escalation_new(const struct gw_config *cfg);
void gw_escalation_free(struct gw_escalation *esc);

/*
 * After a config reload: a new escalation on `cfg` holding every key of `old`
 * (through save/restore, so contacts are matched by name and pending levels
 * re-timed by the new levels), with its storm history and unflushed changes.
 * old's config must still be alive during the call (its contact names are
 * read); `old` is freed on success and left untouched on failure (NULL).
 */
struct gw_escalation *gw_escalation_reload(struct gw_escalation *old, const struct gw_config *cfg);

/*
 * An alarm of `key` was raised at raised_at_ms (it drives the level times);
 * now_ms is when it reached us (it drives storm detection). A key already
 * known starts over at level 1 and keeps the contacts already told. 0, or
 * -EINVAL (empty or too long key, bad class, raised_at_ms < 0), -ENOMEM.
 */
int gw_escalation_start(struct gw_escalation *esc, const char *key, enum gw_alarm_class cls,
                        int64_t raised_at_ms, bool test, int64_t now_ms);

/* Tell no more of it (ack, shelve, out of service). 0, or -ENOENT. */
int gw_escalation_stop(struct gw_escalation *esc, const char *key);

/*
 * The condition is gone: writes a CLEAR for every contact told of it (by
 * contact index) into out and forgets the key. Returns how many, -ENOENT
 * (unknown key) or -ENOSPC (max too small; nothing changed). max >=
 * cfg->ncontacts always suffices.
 */
int gw_escalation_clear(struct gw_escalation *esc, const char *key, int64_t now_ms,
                        struct gw_esc_notification *out, int max);

/*
 * Everything due at now_ms, in order (see above), at most `max`. What does not
 * fit stays due (next_deadline() <= now) for the next call; one alarm level or
 * summary is never split. Returns how many, -ENOSPC when not even the first
 * step fits (max >= cfg->ncontacts always suffices), -EINVAL, -ENOMEM.
 */
int gw_escalation_due(struct gw_escalation *esc, int64_t now_ms, struct gw_esc_notification *out,
                      int max);

/*
 * The wall clock stepped by delta_ms (NTP setting the clock of a Pi with no
 * RTC): move every remembered instant by as much, so a clock jump neither
 * escalates every alarm at once nor delays them (like gw_rules_shift_time).
 */
void gw_escalation_shift_time(struct gw_escalation *esc, int64_t delta_ms);

/* When due() has something next: a level, a repeat or a summary; GW_ESC_NEVER when nothing. */
int64_t gw_escalation_next_deadline(const struct gw_escalation *esc);

/* Levels told so far (0..nlevels), for the alarm record's "level"; -ENOENT when unknown. */
int gw_escalation_level(const struct gw_escalation *esc, const char *key);

/* Keys it holds (started and not cleared). */
int gw_escalation_count(const struct gw_escalation *esc);

/* A key's state as JSON (see above): malloc'd, NULL when unknown or out of memory. */
char *gw_escalation_save(const struct gw_escalation *esc, const char *key);

/*
 * Take back a saved state (replacing any state of key). 0, or -EINVAL (not
 * JSON, a field missing or out of range, unknown class), -ENOMEM. Restoring
 * does not count as a start for storm detection.
 */
int gw_escalation_restore(struct gw_escalation *esc, const char *key, const char *json);

/*
 * Hand over every change since the last flush: fn(ctx, key, json) for each key
 * whose state changed (json: what save() gives) and fn(ctx, key, NULL) for
 * each key cleared since (delete it), deletions first. fn returns 0, or a
 * negative errno to stop: that key and the rest stay pending and flush returns
 * fn's value. Returns the number handed over, or -ENOMEM.
 */
typedef int (*gw_esc_save_fn)(void *ctx, const char *key, const char *json);
int gw_escalation_flush(struct gw_escalation *esc, gw_esc_save_fn fn, void *ctx);

const char *gw_esc_kind_name(enum gw_esc_kind kind);

#endif
