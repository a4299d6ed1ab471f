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
 *    unshelve, out_of_service, in_service) whose time is within the day.
 *  - Notifications (a "kind" and no "transition") and malformed records are
 *    skipped (counted in gw_daily_log.skipped).
 */
#ifndef GW_DAILY_LOG_H
#define GW_DAILY_LOG_H

#include <stddef.h>
#include <stdint.h>

/* One alarm_history row: when it was recorded (0 = unknown) and its payload. */
struct gw_daily_event {
    int64_t ts_ms;
    const char *payload;
};

/* A sensor without data from from_ms until to_ms (0 = still offline). */
struct gw_daily_outage {
    const char *sensor;
    int64_t from_ms, to_ms;
};

struct gw_daily_input {
    const char *school;
    const char *language; /* "zh-CN" (default: anything not starting with "en") | "en" */
    const char *date;     /* YYYY-MM-DD, local */
    int64_t start_ms;     /* the day is [start_ms, end_ms) */
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
    int hazards_opened, hazards_closed, hazards_overdue;
};

struct gw_daily_log {
    char *markdown; /* state_dir/logs/YYYY-MM-DD.md */
    char *csv;      /* state_dir/logs/YYYY-MM-DD.csv: UTF-8 with BOM, CRLF (RFC 4180) */
    char *summary;  /* P/log */
    int skipped;    /* records that were not alarm events (notifications, bad JSON) */
};

/* 0, -EINVAL (bad input, reason in err; may be NULL) or -ENOMEM. Free with gw_daily_log_free. */
int gw_daily_log_build(const struct gw_daily_input *in, struct gw_daily_log *out, char *err,
                       size_t errlen);
/* Frees the texts; accepts NULL and a zeroed or half-built log. */
void gw_daily_log_free(struct gw_daily_log *log);

/* The local day "YYYY-MM-DD" as [start_ms, end_ms) (23 or 25 h across DST). 0 or -EINVAL. */
int gw_daily_log_day_bounds(const char *date, int64_t *start_ms, int64_t *end_ms);
/* The local day before the one containing now_ms: its date (11 bytes) and bounds. 0 or -EINVAL. */
int gw_daily_log_previous_day(int64_t now_ms, char date[11], int64_t *start_ms, int64_t *end_ms);
/* The next 00:05 local strictly after now_ms: when to write the previous day's log. */
int64_t gw_daily_log_next_run_ms(int64_t now_ms);

#endif
