/*
 * campusgw-ctl's pure parts: argument parsing, command payloads, matching
 * results, and the readable tables. No I/O besides writing to a FILE, no
 * clock reads: `now_ms` is passed in, so every output is unit-tested.
 */
#ifndef GW_CTL_FORMAT_H
#define GW_CTL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Exit codes scripts can rely on (sysexits.h for usage). */
enum {
    GW_CTL_EXIT_OK = 0,
    GW_CTL_EXIT_FAILURE = 1,   /* out of memory, stdout unwritable */
    GW_CTL_EXIT_CONNECT = 2,   /* cannot connect to the hub, or lost it */
    GW_CTL_EXIT_REFUSED = 3,   /* the gateway answered with an error */
    GW_CTL_EXIT_NO_ANSWER = 4, /* no answer within the timeout; gateway offline */
    GW_CTL_EXIT_USAGE = 64,    /* EX_USAGE: bad arguments or config file */
};

enum gw_ctl_cmd {
    GW_CTL_NONE,
    GW_CTL_HELP,
    GW_CTL_VERSION,
    GW_CTL_STATUS,
    GW_CTL_SENSORS,
    GW_CTL_ALARMS,
    GW_CTL_TAIL,
    GW_CTL_HAZARDS, /* the retained P/hazards/# */
    GW_CTL_VERIFY,  /* the hazard register's hash chain in state.db: no hub */
    /* Commands to the gateway (P/cmd/...), answered on P/cmd/result. */
    GW_CTL_ACK,
    GW_CTL_SHELVE,
    GW_CTL_UNSHELVE,
    GW_CTL_RESET,
    GW_CTL_OUT_OF_SERVICE,
    GW_CTL_IN_SERVICE,
    GW_CTL_HAZARD_OPEN, /* "hazard open": P/cmd/hazard/open */
    GW_CTL_HAZARD_UPDATE,
    GW_CTL_HAZARD_RECTIFYING,
    GW_CTL_HAZARD_CLOSE,
    GW_CTL_HAZARD_REOPEN,
    GW_CTL_REPORT, /* P/cmd/report: the daily log's text */
};

#define GW_CTL_DEFAULT_TIMEOUT_MS 10000
#define GW_CTL_SHELVE_MAX_MINUTES 10080 /* a week */
#define GW_CTL_DEFAULT_STATE_DIR "/var/lib/campusgw"

/* Parsed command line; strings point into argv. NULL / 0 = not given. */
struct gw_ctl_args {
    enum gw_ctl_cmd cmd;
    const char *host;
    int port;
    const char *prefix; /* without a trailing '/' once resolved */
    const char *config_path;
    const char *username;
    const char *password_file;
    const char *cafile; /* TLS to the hub with this CA */
    bool json;
    int timeout_ms;     /* GW_CTL_DEFAULT_TIMEOUT_MS unless --timeout */
    const char *target; /* KEY (alarm commands) or SENSOR (out-of-service, in-service) */
    int minutes;        /* shelve */
    const char *by;
    const char *note;
    bool notify; /* tail: P/notify/# too */
    long count;  /* tail: stop after this many lines; 0 = until Ctrl-C */
    /* hazards: closed ones too */
    bool all;
    /* hazard commands (target = the hazard id, but for open) */
    const char *category, *building, *floor, *zone, *description, *responsible, *verifier;
    int64_t deadline_ms; /* --deadline, 0 = not given */
    /* verify: --db FILE, else --state-dir DIR (/state.db), else -c's state_dir, else the default */
    const char *state_dir;
    const char *db_path;
    /* report */
    const char *day; /* YYYY-MM-DD */
    bool csv;
};

/*
 * Parse argv (argv[0] is the program). Options may come before or after the
 * subcommand; "--opt=value" and "--opt value" both work; "--" ends options.
 * Returns 0, or -1 with a one-line reason in err (a usage error).
 * Does not check that a prefix is known: the caller may take it from --config.
 */
int gw_ctl_parse_args(int argc, char **argv, struct gw_ctl_args *args, char *err, size_t errsize);

/* "--prefix campus/dist/school": no wildcards, no empty levels. 0 or -1 with err. */
int gw_ctl_check_prefix(const char *prefix, char *err, size_t errsize);

bool gw_ctl_is_command(enum gw_ctl_cmd cmd);
bool gw_ctl_is_hazard_command(enum gw_ctl_cmd cmd);
/* Does the command need the hub (and so a prefix)? verify, help and version do not. */
bool gw_ctl_needs_hub(enum gw_ctl_cmd cmd);
/* The name on the command line ("out-of-service", "hazard close") and the topic under P/cmd/
   ("out_of_service", "hazard/close"). */
const char *gw_ctl_cmd_name(enum gw_ctl_cmd cmd);
const char *gw_ctl_cmd_topic(enum gw_ctl_cmd cmd);

/*
 * The JSON for P/cmd/<topic>, with "id" = id. Caller frees; NULL on out of
 * memory, or for a hazard command without args->by (the caller fills in the
 * login name when --by was not given).
 */
char *gw_ctl_command_payload(const struct gw_ctl_args *args, const char *id);

/*
 * A P/cmd/result payload: the parsed object when it is a JSON object whose
 * "id" equals id (caller decrefs), else NULL (someone else's result, or junk).
 */
json_t *gw_ctl_match_result(const char *payload, size_t len, const char *id);

/*
 * Print a result for a person: "ok: ..." on out, or the gateway's error on
 * err. Returns GW_CTL_EXIT_OK or GW_CTL_EXIT_REFUSED (also for a result
 * without a boolean "ok").
 */
int gw_ctl_print_result(const json_t *result, const struct gw_ctl_args *args, FILE *out, FILE *err);
int gw_ctl_result_exit_code(const json_t *result);

/*
 * Print a report result: its "text" as it is on out (control characters but
 * tab, CR and LF replaced, so a crafted note cannot drive the terminal), or
 * the error on err. Returns like gw_ctl_print_result.
 */
int gw_ctl_print_report(const json_t *result, const struct gw_ctl_args *args, FILE *out, FILE *err);

/*
 * A deadline: RFC 3339 (gw_parse_rfc3339), or a day "YYYY-MM-DD" (gw_parse_date) meaning the
 * end of that day (23:59:59 local time, the process's TZ). 0 or -1.
 */
int gw_ctl_parse_deadline(const char *s, int64_t *ms);
/* Cut s to at most `columns` terminal columns, ending in "…" when cut. */
void gw_ctl_truncate(const char *s, size_t columns, char *out, size_t size);

/* "just now", "42 s ago", "3 min ago", "5 h ago", "12 d ago"; "in 3 min" for the future. */
void gw_ctl_format_age(int64_t now_ms, int64_t then_ms, char *out, size_t size);

/* Terminal columns a UTF-8 string takes (CJK wide = 2, combining = 0, bad bytes = 1). */
size_t gw_ctl_display_width(const char *s);

/* A table of text cells, printed with aligned columns and no trailing spaces. */
enum gw_ctl_align { GW_CTL_LEFT, GW_CTL_RIGHT };
struct gw_ctl_table;
struct gw_ctl_table *gw_ctl_table_new(int ncols, const char *const *headers,
                                      const enum gw_ctl_align *aligns);
/* Copies the cells (ncols of them; NULL = "-"); control characters become '?'. 0 or -1. */
int gw_ctl_table_add(struct gw_ctl_table *t, const char *const *cells);
void gw_ctl_table_print(const struct gw_ctl_table *t, FILE *out);
void gw_ctl_table_free(struct gw_ctl_table *t);

/*
 * Retained state as a map topic -> object (a JSON object). An empty payload
 * removes the topic (the retained message was cleared). Returns 0, or -1 for
 * a payload that is not a JSON object (ignored; count it).
 */
int gw_ctl_collect(json_t *map, const char *topic, const char *payload, size_t len);
/* The map's objects as a new array, in map order. */
json_t *gw_ctl_map_values(const json_t *map);

/* In place: offline first, then online with a fault, then the rest; by sensor id within. */
int gw_ctl_sort_sensors(json_t *health);
/* In place: class (alarm, supervisory, trouble), then state (unacked first), oldest first, key. */
int gw_ctl_sort_alarms(json_t *alarms);

/* Tables (sorted arrays in, as the sort functions leave them). */
int gw_ctl_print_sensors(const json_t *health, int64_t now_ms, FILE *out);
int gw_ctl_print_alarms(const json_t *alarms, int64_t now_ms, FILE *out);

/*
 * `status`: the gateway's retained P/status (NULL if none) plus counts from
 * the retained health and alarms. The JSON form is
 * {"status":{...}|null,"sensors":{"total","online","offline","faulty"},
 *  "alarms":{"total","unacked","by_class":{...},"by_state":{...}}}.
 */
json_t *gw_ctl_status_json(const json_t *status, const json_t *health, const json_t *alarms);
void gw_ctl_print_status(const json_t *summary, int64_t now_ms, FILE *out);
/* 0 when the gateway says it is online, GW_CTL_EXIT_NO_ANSWER otherwise. */
int gw_ctl_status_exit_code(const json_t *summary);

/*
 * `tail`: one readable line (no newline) for a message on P/events or
 * P/notify/<contact>; topic_suffix is the topic after "P/". The time shown is
 * the transition's own (raised_at for a raise, ...), else now_ms, in local time.
 * Returns 0, or -1 when the payload is not a JSON object.
 */
int gw_ctl_format_event(const char *topic_suffix, const char *payload, size_t len, int64_t now_ms,
                        char *out, size_t size);

/*
 * `hazards`: the retained P/hazards/<id> objects (a map as gw_ctl_collect
 * leaves it; "log" and objects without an "id" are skipped) as an array:
 * not closed ones (all = closed too), overdue first (its "overdue" flag, or
 * not closed and now_ms >= its deadline), then by deadline, then id.
 * NULL on out of memory.
 */
json_t *gw_ctl_hazard_list(const json_t *map, bool all, int64_t now_ms);
bool gw_ctl_hazard_overdue(const json_t *hazard, int64_t now_ms);
int gw_ctl_print_hazards(const json_t *list, bool all, int64_t now_ms, FILE *out);

/* One row of state.db's hazard_log, as read. */
struct gw_ctl_hazard_row {
    int64_t n;
    const char *hazard; /* NULL when the column is NULL */
    int64_t at_ms;
    const char *entry; /* the entry's JSON; NULL when the column is NULL */
};

/*
 * `verify`: every row's JSON parsed (gw_hazard_entry_from_json), its n,
 * hazard and at columns checked against the JSON, and the chain checked
 * (gw_hazard_chain_verify). Returns 0 with "hazard register: N entries,
 * chain intact, head <hash>" in out, or 1 with the first bad entry and why.
 * -1 on out of memory.
 */
int gw_ctl_verify_rows(const struct gw_ctl_hazard_row *rows, int n, char *out, size_t size);

/* Usage text. */
void gw_ctl_usage(FILE *out);

#endif
