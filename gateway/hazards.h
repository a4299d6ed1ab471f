/*
 * The hazard register (隐患台账). Pure: no I/O, no clock reads (time is an
 * argument), no logging; errors come back as a negative errno and a text.
 *
 * A hazard is found by a person (found_by) or opened by a supervisory alarm
 * whose rule name is in the settings' auto_open (source_alarm = the alarm key;
 * at most one not-closed hazard per alarm key). Its id is
 * "HZ-<YYYYMMDD>-<NNN>": the site's date of found_at and a daily counter from
 * 001 (wider past 999), one more than the highest of that date.
 *
 * Status and commands (each success writes one history entry, its action):
 *   open        -> open ("open"); deadline optional: found_at + the category's
 *                  default days
 *   update      open / rectifying: responsible, deadline, description ("update");
 *               a new deadline clears `overdue` (it may escalate again)
 *   rectifying  open -> rectifying ("rectifying")
 *   close       open / rectifying -> closed ("close"); note and verifier required
 *   reopen      closed -> open ("reopen"); deadline optional: now + default days;
 *               clears overdue and verified_by
 *   tick        a not-closed hazard with now >= deadline that is not yet overdue
 *               becomes overdue ("overdue", by ""), once per deadline
 * A deadline given by a command must be later than now.
 *
 * History: one hash chain over every entry of the register, nothing deleted.
 * Entry n (seq n, from 1) carries prev_hash = entry n-1's hash (64 "0" for
 * seq 1) and
 *   hash = lowercase hex SHA-256 of the entry's canonical JSON: the object
 *   gw_hazard_entry_to_json writes, without the "hash" key, dumped by jansson
 *   with JSON_COMPACT | JSON_SORT_KEYS (keys sorted bytewise at every level,
 *   no spaces, UTF-8 unescaped, "/" unescaped). In Python:
 *   json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).
 * The entry JSON:
 *   {"seq":N,"hazard":"HZ-..","at":ms,"by":"..","action":"open",
 *    "fields":{...only the fields this entry set...},"note":"..",
 *    "prev_hash":"<64 hex>","hash":"<64 hex>"}
 * field names: category, building, floor, zone, description, found_at,
 * found_by, source_alarm, responsible, deadline, status, verified_by, overdue
 * (category and status by name, times in ms since the epoch, overdue a bool).
 *
 * Pointers from gw_hazards_find / _next stay valid until the next call that
 * takes a non-const gw_hazards.
 */
#ifndef GW_HAZARDS_H
#define GW_HAZARDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alarm.h"
#include "reading.h"

enum gw_hazard_category {
    GW_HZ_FIRE_EQUIPMENT,
    GW_HZ_EVACUATION_ROUTE,
    GW_HZ_ELECTRICAL,
    GW_HZ_STRUCTURE,
    GW_HZ_SURROUNDINGS,
    GW_HZ_OTHER,
};
#define GW_HZ_NCATEGORIES 6

enum gw_hazard_status { GW_HZ_OPEN, GW_HZ_RECTIFYING, GW_HZ_CLOSED };
#define GW_HZ_NSTATUS 3

/* "fire_equipment", ...; "unknown" out of range. */
const char *gw_hazard_category_name(enum gw_hazard_category c);
/* -1 when unknown. */
int gw_hazard_category_from_name(const char *name);
/* "open", "rectifying", "closed". */
const char *gw_hazard_status_name(enum gw_hazard_status s);
int gw_hazard_status_from_name(const char *name);

#define GW_HZ_ID_MAX 24
#define GW_HZ_PLACE_MAX 64 /* building, floor, zone: UTF-8 with the NUL */
#define GW_HZ_DESC_MAX 1024
#define GW_HZ_HASH_HEX 65 /* 64 hex digits and the NUL */
#define GW_HZ_DEADLINE_DAYS_MAX 365
#define GW_HZ_DAY_MS 86400000LL

struct gw_hazard {
    char id[GW_HZ_ID_MAX];
    enum gw_hazard_category category;
    char building[GW_HZ_PLACE_MAX];
    char floor[GW_HZ_PLACE_MAX]; /* "" none */
    char zone[GW_HZ_PLACE_MAX];  /* "" none */
    char description[GW_HZ_DESC_MAX];
    int64_t found_at_ms;
    char found_by[GW_NAME_MAX];    /* a person; "" when opened by an alarm */
    char source_alarm[GW_KEY_MAX]; /* the alarm key; "" when found by a person */
    char responsible[GW_NAME_MAX];
    int64_t deadline_ms;
    enum gw_hazard_status status;
    char verified_by[GW_NAME_MAX]; /* who verified the close; "" unless closed */
    bool overdue;                  /* escalated for the current deadline */
};

/* Bits of gw_hazard_entry.fields: which fields of the hazard an entry set. */
enum gw_hazard_field {
    GW_HZF_CATEGORY = 1u << 0,
    GW_HZF_BUILDING = 1u << 1,
    GW_HZF_FLOOR = 1u << 2,
    GW_HZF_ZONE = 1u << 3,
    GW_HZF_DESCRIPTION = 1u << 4,
    GW_HZF_FOUND_AT = 1u << 5,
    GW_HZF_FOUND_BY = 1u << 6,
    GW_HZF_SOURCE_ALARM = 1u << 7,
    GW_HZF_RESPONSIBLE = 1u << 8,
    GW_HZF_DEADLINE = 1u << 9,
    GW_HZF_STATUS = 1u << 10,
    GW_HZF_VERIFIED_BY = 1u << 11,
    GW_HZF_OVERDUE = 1u << 12,
};
#define GW_HZF_ALL 0x1FFFu

/* One history entry: what the store keeps (one row, its JSON) and P/events-like output. */
struct gw_hazard_entry {
    uint64_t seq; /* 1, 2, ... over the whole register */
    int64_t at_ms;
    char by[GW_NAME_MAX]; /* the person; "" for the gateway (auto-open, overdue) */
    const char *action;   /* static: "open", "update", "rectifying", "close", "reopen",
                             "overdue" */
    unsigned fields;      /* enum gw_hazard_field bits set by this entry */
    /* The hazard after the change (hazard.id always set). From gw_hazard_entry_from_json
       only the `fields` (and id) are set, the rest zero. */
    struct gw_hazard hazard;
    char note[GW_NOTE_MAX];
    char prev_hash[GW_HZ_HASH_HEX];
    char hash[GW_HZ_HASH_HEX];
};

/* The few settings the register needs (the later config section `hazards`). */
struct gw_hazards_settings {
    int deadline_days[GW_HZ_NCATEGORIES]; /* default deadline per category, 1..365 */
    const char *const *auto_open;         /* rule names (gw_rule_cfg.name) */
    int nauto_open;
    int utc_offset_min; /* the site's offset for the date in ids, -840..840 */
};

/* 0 or -EINVAL with the reason in err. */
int gw_hazards_settings_check(const struct gw_hazards_settings *s, char *err, size_t errlen);

struct gw_hazards;

/* An empty register (the settings are copied). NULL: settings invalid, or out of memory. */
struct gw_hazards *gw_hazards_new(const struct gw_hazards_settings *s);
void gw_hazards_free(struct gw_hazards *hz);

enum gw_hazard_cmd_type {
    GW_HZ_CMD_OPEN,
    GW_HZ_CMD_UPDATE,
    GW_HZ_CMD_RECTIFYING,
    GW_HZ_CMD_CLOSE,
    GW_HZ_CMD_REOPEN,
};

/* "open", "update", "rectifying", "close", "reopen"; -1 when unknown. */
const char *gw_hazard_cmd_name(enum gw_hazard_cmd_type type);
int gw_hazard_cmd_from_name(const char *name);

struct gw_hazard_command {
    enum gw_hazard_cmd_type type;
    const char *id;   /* every command but open */
    const char *by;   /* required, 1..GW_NAME_MAX-1 bytes */
    const char *note; /* optional, but required by close; < GW_NOTE_MAX bytes */
    /* open: category (by name), building and description and responsible required */
    const char *category;
    const char *building, *floor, *zone;
    /* open: required; update: NULL keeps, else non-empty */
    const char *description;
    const char *responsible;
    int64_t deadline_ms;  /* open, reopen: 0 = default; update: 0 keeps */
    const char *verifier; /* close: required */
};

/*
 * A person's command. Returns 1 (the entry written to *out), 0 (update that
 * changes nothing: no entry), or a negative errno with a one-line message in
 * err and nothing changed:
 *   -EINVAL  bad input (missing or too long field, bad UTF-8, unknown
 *            category or type, deadline not after now)
 *   -ENOENT  unknown hazard id
 *   -EPERM   wrong state for the command
 *   -ENOMEM
 */
int gw_hazards_command(struct gw_hazards *hz, const struct gw_hazard_command *cmd, int64_t now_ms,
                       struct gw_hazard_entry *out, char *err, size_t errlen);

/* A supervisory alarm was raised: what an auto-opened hazard needs. */
struct gw_hazard_alarm {
    const char *rule_name; /* matched against settings.auto_open */
    const char *key;       /* the alarm key, < GW_KEY_MAX */
    enum gw_hazard_category category;
    const char *building, *floor, *zone;
    const char *description; /* e.g. the alarm's name and value */
};

/*
 * Opens a hazard for the alarm when its rule is listed in auto_open and no
 * not-closed hazard has the same source_alarm. The entry's by is "" (the
 * gateway) and the hazard's responsible "" until an update names someone; the
 * deadline is the category's default. Returns 1 (entry in *out), 0
 * (not listed, or one already open), -EINVAL (bad input, err says), -ENOMEM.
 */
int gw_hazards_on_alarm(struct gw_hazards *hz, const struct gw_hazard_alarm *alarm, int64_t now_ms,
                        struct gw_hazard_entry *out, char *err, size_t errlen);

/*
 * Time passing: every not-closed hazard whose deadline is <= now_ms and that is
 * not yet overdue becomes overdue, one "overdue" entry each (the caller
 * escalates it). Writes at most max entries and returns how many; the rest
 * come with the next call. -ENOMEM.
 */
int gw_hazards_tick(struct gw_hazards *hz, int64_t now_ms, struct gw_hazard_entry *out, int max);

struct gw_hazard_counts {
    int open, rectifying, overdue; /* overdue: not closed and now >= deadline */
};
void gw_hazards_count(const struct gw_hazards *hz, int64_t now_ms, struct gw_hazard_counts *c);

const struct gw_hazard *gw_hazards_find(const struct gw_hazards *hz, const char *id);
/* Every hazard, closed too, in id order of creation: for (int it = 0; (h = _next(hz, &it));) */
const struct gw_hazard *gw_hazards_next(const struct gw_hazards *hz, int *iter);
/* The chain head: the last entry's seq (0 when empty) and hash. */
uint64_t gw_hazards_last_seq(const struct gw_hazards *hz, char hash[GW_HZ_HASH_HEX]);

/*
 * At start: the stored entries, one call each, in seq order, into a register
 * that has had no command yet. Each must continue the chain (seq, prev_hash,
 * its own hash) and be a valid step for its hazard. 0, or -EINVAL with the
 * reason ("seq 7: hash mismatch") and nothing applied; -ENOMEM.
 */
int gw_hazards_restore(struct gw_hazards *hz, const struct gw_hazard_entry *e, char *err,
                       size_t errlen);

/*
 * Compute e's hash (over its canonical JSON, prev_hash included) into hash.
 * 0, -EINVAL (a string of e is not UTF-8: it cannot be JSON) or -ENOMEM.
 */
int gw_hazard_entry_hash(const struct gw_hazard_entry *e, char hash[GW_HZ_HASH_HEX]);

/*
 * The chain check of `campusgw-ctl verify` over the whole register: entries[i]
 * must have seq i+1, prev_hash entries[i-1]'s hash (64 "0" for the first) and
 * its own correct hash. Returns -1 when all are good, else the index of the first bad
 * one with the reason in err.
 */
int gw_hazard_chain_verify(const struct gw_hazard_entry *entries, int n, char *err, size_t errlen);

/* The entry's JSON (with "hash"), malloc'd: the caller frees. NULL: out of memory, or a
   string of e is not UTF-8. */
char *gw_hazard_entry_to_json(const struct gw_hazard_entry *e);
/*
 * Parse one entry's JSON: every key required, none unknown, each typed and in
 * range. 0 or -EINVAL with the reason. The action pointer is static.
 */
int gw_hazard_entry_from_json(const char *json, struct gw_hazard_entry *e, char *err,
                              size_t errlen);

#endif
