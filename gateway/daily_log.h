/*
 * The daily safety log (安全日志) of one school day: Markdown for people, CSV for
 * spreadsheets, and a summary JSON for P/log. Pure: the caller reads the store
 * and the clock and writes the files; this only turns the day's records into
 * text. Local times use the process time zone (TZ = the site's), so the
 * caller sets it before calling.
 *
 * What counts:
 *  - An alarm occurrence is one raise of a key: a "raise" event starts one
 *    (unless it repeats the current occurrence's raised_at); every later event
 *    of the key updates it from its record (acked_at/by, cleared_at, level).
 *    Records of alarms open before the day (open_before) start occurrences
 *    too, so an alarm raised yesterday and cleared today is listed.
 *  - The summary's "alarms", "acked", "unacked", "mean_ack_s", "worst_ack_s"
 *    count only real (not test) occurrences raised within the day; carried
 *    over and test alarms are listed in the Markdown and the CSV.
 *  - A command is an event with a non-empty "by" (ack, reset, shelve,
 *    unshelve, out_of_service, in_service) whose time is within the day, or a
 *    hazard register entry of the day made by a person (open, update,
 *    rectifying, close, reopen): the summary's "commands" counts both, and the
 *    Markdown's command list has both in time order. Entries by the gateway
 *    (an auto-open, overdue) are not commands.
 *  - Hazards: every register entry of the day is listed in time order with the
 *    hazard as it was then (gw_daily_hazards replays the register's history);
 *    the counts are entries "open" (opened), "close" (closed) and "overdue".
 *  - Notifications (a "kind" and no "transition") and malformed records are
 *    skipped (counted in gw_daily_log.skipped).
 *  - Events recorded outside [start_ms, end_ms) are ignored: the log is of the
 *    day only (an alarm cleared after midnight is "not cleared" in it).
 *
 * gw_daily_history turns an alarm_history scan (rows in seq order) into that
 * input, so the nightly writer and the tests go the same way.
 */
#ifndef GW_DAILY_LOG_H
#define GW_DAILY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hazards.h"

/* One alarm_history row: when it was recorded (0 = unknown) and its payload. */
struct gw_daily_event {
    int64_t ts_ms;
    const char *payload;
};

/*
 * One hazard register entry with the hazard as it was: entry.hazard is the whole hazard
 * after the entry (as the register writes it), not only the fields the entry set; before is
 * the hazard just before it (for "was ..." of an update). known: the hazard's earlier
 * entries were seen (false: an entry whose hazard never opened in the history given; then
 * before is zero and entry.hazard holds only what the entry set).
 */
struct gw_daily_hazard {
    struct gw_hazard_entry entry;
    struct gw_hazard before;
    bool known;
};

/* A sensor without data from from_ms until to_ms (0 = still offline). */
struct gw_daily_outage {
    const char *sensor;
    int64_t from_ms, to_ms;
};

struct gw_daily_input {
    const char *school;      /* the site's id: the summary's "school" */
    const char *school_name; /* the Markdown title's; NULL = school */
    const char *language;    /* "zh-CN" (default: anything not starting with "en") | "en" */
    const char *date;        /* YYYY-MM-DD, local */
    int64_t start_ms;        /* the day is [start_ms, end_ms) */
    int64_t end_ms;
    const struct gw_daily_event *events; /* the day's alarm_history rows, oldest first */
    int nevents;
    const char *const *open_before; /* P/alarms records of alarms open at start_ms */
    int nopen_before;
    /*
     * Outages as the caller knows them; when outages is NULL they are derived
     * from the occurrences of the rules named in offline_rules (the rules with
     * offline_after): from raised_at minus the record's value (the silence in
     * seconds when it was raised) to cleared_at.
     */
    const struct gw_daily_outage *outages;
    int noutages;
    const char *const *offline_rules;
    int noffline_rules;
    /* The day's hazard register entries (any order: listed by time; entries outside the day
     * are ignored), e.g. from gw_daily_hazards_input. */
    const struct gw_daily_hazard *hazards;
    int nhazards;
    /* 0: the day is over. Else the log is of the day so far (a report of today): the
     * Markdown says so under its title, with this time. */
    int64_t as_of_ms;
};

struct gw_daily_log {
    char *markdown; /* state_dir/logs/YYYY-MM-DD.md */
    /* state_dir/logs/YYYY-MM-DD.csv: UTF-8 with BOM, CRLF (RFC 4180); one row per alarm
     * occurrence, then one per hazard entry of the day ("record": alarm | hazard; the columns
     * are in docs/operations.md) */
    char *csv;
    char *summary; /* P/log */
    int skipped;   /* records that were not alarm events (notifications, bad JSON) */
};

/* 0, -EINVAL (bad input, reason in err; may be NULL) or -ENOMEM. Free with gw_daily_log_free. */
int gw_daily_log_build(const struct gw_daily_input *in, struct gw_daily_log *out, char *err,
                       size_t errlen);
/* Frees the texts; accepts NULL and a zeroed or half-built log. */
void gw_daily_log_free(struct gw_daily_log *log);

/*
 * The day's hazard register entries out of hazard_log, each with the hazard as of that entry
 * (a description changed later does not change what the day shows). Two passes, as the
 * nightly writer reads the store:
 *  1. gw_daily_hazards_mark with every row from the day's start on (hazard id and time): the
 *     hazards with an entry within [start_ms, end_ms) are wanted;
 *  2. gw_daily_hazards_add with every row from the first on, in chain order (n): rows of
 *     hazards not wanted are ignored without parsing; the others are replayed, and those
 *     within the day become the day's entries.
 * A row that is not a register entry (gw_hazard_entry_from_json refuses it) is skipped and
 * counted.
 */
#define GW_DAILY_MAX_HAZARD_ENTRIES 5000 /* entries of one day; more is refused (-E2BIG) */
struct gw_daily_hazards;

/* NULL on no memory. */
struct gw_daily_hazards *gw_daily_hazards_new(int64_t start_ms, int64_t end_ms);
/* Pass 1. 0 or -ENOMEM. */
int gw_daily_hazards_mark(struct gw_daily_hazards *d, const char *hazard, int64_t at_ms);
/* Pass 2. 0, -ENOMEM, or -E2BIG past GW_DAILY_MAX_HAZARD_ENTRIES entries in the day. */
int gw_daily_hazards_add(struct gw_daily_hazards *d, const char *hazard, const char *entry);
/* Rows skipped in pass 2 (not register entries). */
int gw_daily_hazards_skipped(const struct gw_daily_hazards *d);
/* Points in->hazards at the day's entries in time order (valid until d is freed). */
void gw_daily_hazards_input(struct gw_daily_hazards *d, struct gw_daily_input *in);
/* Accepts NULL. */
void gw_daily_hazards_free(struct gw_daily_hazards *d);

/*
 * One day's input from an alarm_history scan. Feed every row from some time before the
 * day (see GW_DAILY_LOOKBACK_MS) in seq order:
 *  - a row recorded before start_ms folds into the alarms open at the start: per key, the
 *    last alarm record is kept; one back to normal ("state":"normal") drops the key;
 *  - a row within the day is one of the day's events (copied);
 *  - any row from start_ms on marks its key as having gone on.
 * An alarm kept from before the day that has no row from start_ms on and is not live now
 * (`live`, NULL = never) ended without a record: a restart ends alarms whose sensor or rule
 * left the config and writes no event. It is left out, else it would be carried over for
 * ever.
 */
#define GW_DAILY_LOOKBACK_MS (366 * 86400000LL) /* an alarm silent for longer is not carried */
#define GW_DAILY_SLACK_MS (3600000LL) /* rows after end_ms read anyway: a clock stepped back */
#define GW_DAILY_MAX_EVENTS 200000    /* rows of one day; more is refused (-E2BIG) */

typedef bool (*gw_daily_live_fn)(void *ctx, const char *key);
struct gw_daily_history;

/* NULL on no memory. */
struct gw_daily_history *gw_daily_history_new(int64_t start_ms, int64_t end_ms,
                                              gw_daily_live_fn live, void *ctx);
/* 0, -ENOMEM, or -E2BIG past GW_DAILY_MAX_EVENTS rows in the day. */
int gw_daily_history_add(struct gw_daily_history *h, int64_t ts_ms, const char *payload);
/* True when rows recorded at ts_ms and later cannot change the day any more: a scan stops. */
bool gw_daily_history_enough(const struct gw_daily_history *h, int64_t ts_ms);
/* Points in->events / open_before at the history's copies (valid until it is freed). 0 or
 * -ENOMEM. */
int gw_daily_history_input(struct gw_daily_history *h, struct gw_daily_input *in);
/* Accepts NULL. */
void gw_daily_history_free(struct gw_daily_history *h);

/* The local day "YYYY-MM-DD" as [start_ms, end_ms) (23 or 25 h across DST). 0 or -EINVAL. */
int gw_daily_log_day_bounds(const char *date, int64_t *start_ms, int64_t *end_ms);
/* The local day before the one containing now_ms: its date (11 bytes) and bounds. 0 or -EINVAL. */
int gw_daily_log_previous_day(int64_t now_ms, char date[11], int64_t *start_ms, int64_t *end_ms);
/* The next 00:05 local strictly after now_ms: when to write the previous day's log. */
int64_t gw_daily_log_next_run_ms(int64_t now_ms);
/* The newest day whose log is due at now_ms (its 00:05 has passed): date and bounds. */
int gw_daily_log_due_day(int64_t now_ms, char date[11], int64_t *start_ms, int64_t *end_ms);
/*
 * Which day's log to write next at now_ms, `done` being the newest day already written ("" at
 * start). The days due are those whose next 00:05 has passed. At start only the newest due
 * day; else the day after `done`, but not older than max_days before the newest due day
 * (then *skipped_from is the first day left out, else ""). Returns 1 with day set, 0 when
 * nothing is due (done is the newest due day or later: a clock stepped back never writes a
 * day twice), -EAGAIN before GW_DAILY_CLOCK_SET_MS (a Pi without RTC before NTP), -EINVAL.
 */
#define GW_DAILY_CLOCK_SET_MS 1735689600000LL /* 2025-01-01T00:00:00Z */
int gw_daily_log_next_due(const char *done, int64_t now_ms, int max_days, char day[11],
                          char skipped_from[11]);

/* The local date of ms. 0 or -EINVAL. */
int gw_daily_log_date(int64_t ms, char date[11]);
/* The local day after / before `date`. 0 or -EINVAL. */
int gw_daily_log_next_day(const char *date, char next[11]);
int gw_daily_log_prev_day(const char *date, char prev[11]);

#endif
