/*
 * Prometheus text exposition format 0.0.4, for GET /metrics. Pure: a builder
 * that only ever produces text Prometheus parses, and the gateway's metrics
 * rendered from a plain snapshot the core fills on the loop thread.
 *
 * The builder writes one family at a time: gw_prom_family opens it (its HELP
 * and TYPE lines), the samples that follow belong to it, and a family name may
 * be opened only once, so every family is written once with all its samples
 * together. Every call either appends completely or not at all (the text
 * stays valid); a refused call returns a negative errno and says why in
 * gw_prom_error.
 */
#ifndef GW_PROM_H
#define GW_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "alarm.h"
#include "config.h"

/* Every family name starts with this. */
#define GW_PROM_PREFIX "campusgw_"

enum gw_prom_type { GW_PROM_COUNTER, GW_PROM_GAUGE };

struct gw_prom_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved) */
    const char *value; /* any text: escaped, invalid UTF-8 replaced by U+FFFD */
};

struct gw_prom;

/* NULL when out of memory. */
struct gw_prom *gw_prom_new(void);
void gw_prom_free(struct gw_prom *p);

/*
 * Open a family: name [a-zA-Z_:][a-zA-Z0-9_:]* starting with GW_PROM_PREFIX;
 * a counter's name ends in "_total" and a gauge's does not (Prometheus
 * naming, which promtool checks); help is non-empty. 0, -EINVAL (bad name,
 * type or help), -EEXIST (the family was opened before) or -ENOMEM.
 */
int gw_prom_family(struct gw_prom *p, const char *name, enum gw_prom_type type, const char *help);

/*
 * One sample of the open family: its labels (n may be 0, labels then NULL)
 * and value. A counter's value must be finite and >= 0; a gauge's may be
 * anything, NaN and infinities included. 0, -EINVAL (no family open, a bad
 * label name, a label named twice, a bad counter value), -EEXIST (the family
 * already has a sample with these labels) or -ENOMEM.
 */
int gw_prom_sample(struct gw_prom *p, const struct gw_prom_label *labels, int n, double value);
/* The same with an exact integer (counters past 2^53 stay exact in the text). */
int gw_prom_sample_u64(struct gw_prom *p, const struct gw_prom_label *labels, int n,
                       uint64_t value);
int gw_prom_sample_i64(struct gw_prom *p, const struct gw_prom_label *labels, int n, int64_t value);

/* The text so far (NUL-terminated; "" when empty), valid until the next call on p. */
const char *gw_prom_text(const struct gw_prom *p);
size_t gw_prom_len(const struct gw_prom *p);

/* Why the last refused call was refused ("" when none was). */
const char *gw_prom_error(const struct gw_prom *p);

/* A value as the format spells it: "NaN", "+Inf", "-Inf", or %g with the fewest of 15, 16 or
 * 17 digits that reads back as the same double. out needs at least 32 bytes. */
void gw_prom_format_double(double value, char *out, size_t size);

/* ---- the gateway's metrics ---- */

#define GW_PROM_MAX_REASONS 32
#define GW_PROM_MAX_SINKS 8
#define GW_PROM_NCHANNELS 3 /* enum gw_channel_kind: mqtt, webhook, email */

struct gw_prom_count {
    const char *name; /* must outlive the render */
    uint64_t count;
};

/* What /metrics shows, filled by the core on the loop thread. Counters count since start. */
struct gw_prom_snapshot {
    uint64_t readings;    /* readings accepted, all drivers */
    uint64_t poll_errors; /* failed polls, all drivers */
    uint64_t transitions; /* rule alarm transitions */
    int nrejected;        /* LoRa frames rejected, by reason (lora_reject_name) */
    struct gw_prom_count rejected[GW_PROM_MAX_REASONS];
    uint64_t outbox; /* records waiting for at least one sink */
    int nsinks;      /* records each sink is behind */
    struct gw_prom_count sink_lag[GW_PROM_MAX_SINKS];
    uint64_t dropped;      /* telemetry dropped because the outbox was full */
    uint64_t write_errors; /* failed store commits */
    uint64_t dead_letters; /* records a sink refused for good */
    /* Alarms the desk holds, by [enum gw_alarm_class][enum gw_alarm_state]. */
    int alarms[GW_NCLASSES][GW_ALARM_NSTATES];
    /* Notification sends by [enum gw_channel_kind]. */
    struct {
        uint64_t sent, failed, retries;
    } notify[GW_PROM_NCHANNELS];
    int notify_pending;
    uint64_t commands, commands_refused; /* commands counts the refused ones too */
    int sensors_online, sensors_offline;
    int sensors_faulty; /* with a fault, whether online or offline */
    int64_t rss_bytes;
    double uptime_seconds;
};

/*
 * The /metrics body: a malloc'd NUL-terminated string the caller frees, or
 * NULL with the reason in err (out of memory, a NULL or duplicate reason or
 * sink name, a count out of range).
 */
char *gw_prom_render(const struct gw_prom_snapshot *s, char *err, size_t errlen);

#endif
