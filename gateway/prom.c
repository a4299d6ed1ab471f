#include "prom.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 16

struct gw_prom {
    char *buf; /* always NUL-terminated */
    size_t len, cap;
    bool nomem;      /* an append of the current call failed: the call rolls back */
    char **families; /* every family opened, to refuse a second opening */
    int nfamilies, families_cap;
    bool open; /* a family is open: samples go to families[nfamilies - 1] */
    enum gw_prom_type type;
    size_t family_start; /* offset of the open family's first sample line */
    char err[256];
};

struct gw_prom *gw_prom_new(void)
{
    struct gw_prom *p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->cap = 4096;
    p->buf = malloc(p->cap);
    if (!p->buf) {
        free(p);
        return NULL;
    }
    p->buf[0] = '\0';
    return p;
}

void gw_prom_free(struct gw_prom *p)
{
    if (!p) {
        return;
    }
    for (int i = 0; i < p->nfamilies; i++) {
        free(p->families[i]);
    }
    free(p->families);
    free(p->buf);
    free(p);
}

const char *gw_prom_text(const struct gw_prom *p)
{
    return p->buf;
}

size_t gw_prom_len(const struct gw_prom *p)
{
    return p->len;
}

const char *gw_prom_error(const struct gw_prom *p)
{
    return p->err;
}

__attribute__((format(printf, 3, 4))) static int fail(struct gw_prom *p, int rc, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- the buffer: appends set nomem instead of failing one by one ---- */

static void put(struct gw_prom *p, const char *s, size_t n)
{
    if (p->nomem) {
        return;
    }
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap;
        while (p->len + n + 1 > cap) {
            cap *= 2;
        }
        char *b = realloc(p->buf, cap);
        if (!b) {
            p->nomem = true;
            return;
        }
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void puts_(struct gw_prom *p, const char *s)
{
    put(p, s, strlen(s));
}

/* Start of a call that appends: nothing of it stays unless it completes. */
static size_t begin(struct gw_prom *p)
{
    p->nomem = false;
    p->err[0] = '\0';
    return p->len;
}

static void rollback(struct gw_prom *p, size_t mark)
{
    p->len = mark;
    p->buf[mark] = '\0';
}

/*
 * Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0. Prometheus refuses a label value
 * that is not UTF-8, so one bad byte must not cost the whole scrape.
 */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

/* HELP escapes backslash and newline; a label value double quotes too. */
static void put_escaped(struct gw_prom *p, const char *text, bool label_value)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        size_t n = utf8_len(s);
        if (n == 0) {
            puts_(p, "\xEF\xBF\xBD"); /* U+FFFD REPLACEMENT CHARACTER */
            s++;
        } else if (*s == '\\') {
            puts_(p, "\\\\");
            s++;
        } else if (*s == '\n') {
            puts_(p, "\\n");
            s++;
        } else if (*s == '"' && label_value) {
            puts_(p, "\\\"");
            s++;
        } else {
            put(p, (const char *)s, n);
            s += n;
        }
    }
}

/* ---- names ---- */

static bool name_char(char c, bool first, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

static bool valid_name(const char *s, bool colon)
{
    if (!s || !*s) {
        return false;
    }
    for (size_t i = 0; s[i]; i++) {
        if (!name_char(s[i], i == 0, colon)) {
            return false;
        }
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int gw_prom_family(struct gw_prom *p, const char *name, enum gw_prom_type type, const char *help)
{
    size_t mark = begin(p);
    if (!valid_name(name, true)) {
        return fail(p, -EINVAL, "metric name \"%s\" is not [a-zA-Z_:][a-zA-Z0-9_:]*",
                    name ? name : "(null)");
    }
    if (strncmp(name, GW_PROM_PREFIX, strlen(GW_PROM_PREFIX)) != 0) {
        return fail(p, -EINVAL, "metric name %s does not start with " GW_PROM_PREFIX, name);
    }
    if (type != GW_PROM_COUNTER && type != GW_PROM_GAUGE) {
        return fail(p, -EINVAL, "metric %s: unknown type %d", name, (int)type);
    }
    bool total = ends_with(name, "_total");
    if (type == GW_PROM_COUNTER && !total) {
        return fail(p, -EINVAL, "counter %s must end in _total", name);
    }
    if (type == GW_PROM_GAUGE && total) {
        return fail(p, -EINVAL, "gauge %s must not end in _total", name);
    }
    if (!help || !*help) {
        return fail(p, -EINVAL, "metric %s has no help text", name);
    }
    for (int i = 0; i < p->nfamilies; i++) {
        if (strcmp(p->families[i], name) == 0) {
            return fail(p, -EEXIST, "metric %s was written before", name);
        }
    }
    if (p->nfamilies == p->families_cap) {
        int cap = p->families_cap ? p->families_cap * 2 : 32;
        char **f = realloc(p->families, sizeof(*f) * (size_t)cap);
        if (!f) {
            return fail(p, -ENOMEM, "out of memory");
        }
        p->families = f;
        p->families_cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        return fail(p, -ENOMEM, "out of memory");
    }
    puts_(p, "# HELP ");
    puts_(p, name);
    puts_(p, " ");
    put_escaped(p, help, false);
    puts_(p, "\n# TYPE ");
    puts_(p, name);
    puts_(p, type == GW_PROM_COUNTER ? " counter\n" : " gauge\n");
    if (p->nomem) {
        free(copy);
        rollback(p, mark);
        return fail(p, -ENOMEM, "out of memory");
    }
    p->families[p->nfamilies++] = copy;
    p->open = true;
    p->type = type;
    p->family_start = p->len;
    return 0;
}

/* ---- samples ---- */

/* Does the open family already hold a line starting with the len bytes at prefix? */
static bool sample_exists(const struct gw_prom *p, size_t prefix, size_t len)
{
    size_t pos = p->family_start;
    while (pos < prefix) {
        if (prefix - pos >= len && memcmp(p->buf + pos, p->buf + prefix, len) == 0) {
            return true;
        }
        const char *nl = memchr(p->buf + pos, '\n', prefix - pos);
        pos = nl ? (size_t)(nl - p->buf) + 1 : prefix;
    }
    return false;
}

/*
 * Writes `name{labels} ` (labels sorted by name, as Prometheus's own clients
 * do, so one label set has one spelling and duplicates are found), then
 * `value`. value is already formatted.
 */
static int sample(struct gw_prom *p, const struct gw_prom_label *labels, int n, const char *value)
{
    size_t mark = p->len;
    if (!p->open) {
        return fail(p, -EINVAL, "sample before any metric family");
    }
    const char *family = p->families[p->nfamilies - 1];
    if (n < 0 || n > MAX_LABELS || (n > 0 && !labels)) {
        return fail(p, -EINVAL, "%s: %d labels (at most %d)", family, n, MAX_LABELS);
    }
    int order[MAX_LABELS];
    for (int i = 0; i < n; i++) {
        const char *ln = labels[i].name;
        if (!valid_name(ln, false) || strncmp(ln, "__", 2) == 0) {
            return fail(p, -EINVAL, "%s: label name \"%s\" is not [a-zA-Z_][a-zA-Z0-9_]*", family,
                        ln ? ln : "(null)");
        }
        if (!labels[i].value) {
            return fail(p, -EINVAL, "%s: label %s has no value", family, ln);
        }
        int j = i;
        while (j > 0 && strcmp(labels[order[j - 1]].name, ln) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        if (j > 0 && strcmp(labels[order[j - 1]].name, ln) == 0) {
            return fail(p, -EINVAL, "%s: label %s given twice", family, ln);
        }
        order[j] = i;
    }
    puts_(p, family);
    if (n > 0) {
        puts_(p, "{");
        for (int i = 0; i < n; i++) {
            const struct gw_prom_label *l = &labels[order[i]];
            puts_(p, i ? "," : "");
            puts_(p, l->name);
            puts_(p, "=\"");
            put_escaped(p, l->value, true);
            puts_(p, "\"");
        }
        puts_(p, "}");
    }
    puts_(p, " ");
    if (p->nomem) {
        rollback(p, mark);
        return fail(p, -ENOMEM, "out of memory");
    }
    if (sample_exists(p, mark, p->len - mark)) {
        int len = (int)(p->len - mark - 1);
        int rc = fail(p, -EEXIST, "%s: sample %.*s written twice", family, len, p->buf + mark);
        rollback(p, mark);
        return rc;
    }
    puts_(p, value);
    puts_(p, "\n");
    if (p->nomem) {
        rollback(p, mark);
        return fail(p, -ENOMEM, "out of memory");
    }
    return 0;
}

void gw_prom_format_double(double value, char *out, size_t size)
{
    if (isnan(value)) {
        snprintf(out, size, "NaN");
    } else if (isinf(value)) {
        snprintf(out, size, value > 0 ? "+Inf" : "-Inf");
    } else {
        /* The shortest of these that reads back as the same double (C locale: '.'). */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, size, "%.*g", prec, value);
            if (strtod(out, NULL) == value) {
                break;
            }
        }
    }
}

int gw_prom_sample(struct gw_prom *p, const struct gw_prom_label *labels, int n, double value)
{
    begin(p);
    if (p->open && p->type == GW_PROM_COUNTER) {
        if (!isfinite(value) || value < 0) {
            return fail(p, -EINVAL, "counter %s: value %g is not a finite number >= 0",
                        p->families[p->nfamilies - 1], value);
        }
        value = value == 0 ? 0.0 : value; /* -0 reads oddly for a count */
    }
    char text[32];
    gw_prom_format_double(value, text, sizeof(text));
    return sample(p, labels, n, text);
}

int gw_prom_sample_u64(struct gw_prom *p, const struct gw_prom_label *labels, int n, uint64_t value)
{
    begin(p);
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64, value);
    return sample(p, labels, n, text);
}

int gw_prom_sample_i64(struct gw_prom *p, const struct gw_prom_label *labels, int n, int64_t value)
{
    begin(p);
    if (p->open && p->type == GW_PROM_COUNTER && value < 0) {
        return fail(p, -EINVAL, "counter %s: value %" PRId64 " is negative",
                    p->families[p->nfamilies - 1], value);
    }
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, value);
    return sample(p, labels, n, text);
}

/* ---- the gateway's metrics ---- */

/* Indexed by enum gw_channel_kind (config.c spells them the same in the config). */
static const char *const channel_names[GW_PROM_NCHANNELS] = {
    [GW_CHANNEL_MQTT] = "mqtt",
    [GW_CHANNEL_WEBHOOK] = "webhook",
    [GW_CHANNEL_EMAIL] = "email",
};
_Static_assert(GW_CHANNEL_EMAIL == GW_PROM_NCHANNELS - 1, "a channel kind without a metric name");

/* The snapshot's own mistakes, before anything is written. */
static bool check_snapshot(const struct gw_prom_snapshot *s, char *err, size_t errlen)
{
    if (s->nrejected < 0 || s->nrejected > GW_PROM_MAX_REASONS) {
        snprintf(err, errlen, "nrejected %d out of 0..%d", s->nrejected, GW_PROM_MAX_REASONS);
        return false;
    }
    if (s->nsinks < 0 || s->nsinks > GW_PROM_MAX_SINKS) {
        snprintf(err, errlen, "nsinks %d out of 0..%d", s->nsinks, GW_PROM_MAX_SINKS);
        return false;
    }
    if (s->commands_refused > s->commands) {
        snprintf(err, errlen, "commands_refused %" PRIu64 " > commands %" PRIu64,
                 s->commands_refused, s->commands);
        return false;
    }
    for (int c = 0; c < GW_NCLASSES; c++) {
        for (int st = 0; st < GW_ALARM_NSTATES; st++) {
            if (s->alarms[c][st] < 0) {
                snprintf(err, errlen, "alarms[%d][%d] is negative", c, st);
                return false;
            }
        }
    }
    if (s->sensors_online < 0 || s->sensors_offline < 0 || s->sensors_faulty < 0 ||
        s->notify_pending < 0) {
        snprintf(err, errlen, "a negative sensor or pending notification count");
        return false;
    }
    return true;
}

/* A one-sample family without labels. */
static int single(struct gw_prom *p, const char *name, enum gw_prom_type type, const char *help,
                  uint64_t value)
{
    int rc = gw_prom_family(p, name, type, help);
    return rc ? rc : gw_prom_sample_u64(p, NULL, 0, value);
}

/* Families with one label over named counts (rejection reasons, sinks). */
static int by_name(struct gw_prom *p, const char *name, enum gw_prom_type type, const char *help,
                   const char *label, const struct gw_prom_count *counts, int n)
{
    int rc = gw_prom_family(p, name, type, help);
    for (int i = 0; i < n && rc == 0; i++) {
        struct gw_prom_label l = {label, counts[i].name};
        rc = gw_prom_sample_u64(p, &l, 1, counts[i].count);
    }
    return rc;
}

static int render(struct gw_prom *p, const struct gw_prom_snapshot *s)
{
    int rc = single(p, "campusgw_readings_total", GW_PROM_COUNTER,
                    "Readings accepted from all drivers since start.", s->readings);
    if (rc == 0) {
        rc = single(p, "campusgw_poll_errors_total", GW_PROM_COUNTER,
                    "Failed sensor polls since start.", s->poll_errors);
    }
    if (rc == 0) {
        rc = by_name(p, "campusgw_lora_rejected_frames_total", GW_PROM_COUNTER,
                     "LoRa datagrams and frames rejected since start, by reason.", "reason",
                     s->rejected, s->nrejected);
    }
    if (rc == 0) {
        rc = single(p, "campusgw_outbox_records", GW_PROM_GAUGE,
                    "Records in the outbox waiting for at least one sink.", s->outbox);
    }
    if (rc == 0) {
        rc = by_name(p, "campusgw_sink_lag_records", GW_PROM_GAUGE,
                     "Records a sink has not yet delivered.", "sink", s->sink_lag, s->nsinks);
    }
    if (rc == 0) {
        rc = single(p, "campusgw_dropped_records_total", GW_PROM_COUNTER,
                    "Telemetry records dropped because the outbox was full.", s->dropped);
    }
    if (rc == 0) {
        rc = single(p, "campusgw_store_write_errors_total", GW_PROM_COUNTER,
                    "Failed commits to the local store.", s->write_errors);
    }
    if (rc == 0) {
        rc = single(p, "campusgw_dead_letter_records_total", GW_PROM_COUNTER,
                    "Records a sink refused for good (dead-lettered).", s->dead_letters);
    }
    if (rc == 0) {
        rc = gw_prom_family(p, "campusgw_alarms", GW_PROM_GAUGE,
                            "Alarms held by the gateway, by class and ISA-18.2 state.");
    }
    for (int c = 0; c < GW_NCLASSES && rc == 0; c++) {
        for (int st = 0; st < GW_ALARM_NSTATES && rc == 0; st++) {
            struct gw_prom_label l[] = {
                {"class", gw_class_name((enum gw_alarm_class)c)},
                {"state", gw_alarm_state_name((enum gw_alarm_state)st)},
            };
            rc = gw_prom_sample_i64(p, l, 2, s->alarms[c][st]);
        }
    }
    if (rc == 0) {
        rc = single(p, "campusgw_alarm_transitions_total", GW_PROM_COUNTER,
                    "Rule alarm transitions since start.", s->transitions);
    }
    if (rc == 0) {
        rc = gw_prom_family(p, "campusgw_notifications_total", GW_PROM_COUNTER,
                            "Notification sends finished since start, by channel kind and result.");
    }
    for (int k = 0; k < GW_PROM_NCHANNELS && rc == 0; k++) {
        struct gw_prom_label sent[] = {{"channel", channel_names[k]}, {"result", "sent"}};
        struct gw_prom_label failed[] = {{"channel", channel_names[k]}, {"result", "failed"}};
        rc = gw_prom_sample_u64(p, sent, 2, s->notify[k].sent);
        if (rc == 0) {
            rc = gw_prom_sample_u64(p, failed, 2, s->notify[k].failed);
        }
    }
    if (rc == 0) {
        rc = gw_prom_family(p, "campusgw_notification_retries_total", GW_PROM_COUNTER,
                            "Notification attempts after the first, by channel kind.");
    }
    for (int k = 0; k < GW_PROM_NCHANNELS && rc == 0; k++) {
        struct gw_prom_label l = {"channel", channel_names[k]};
        rc = gw_prom_sample_u64(p, &l, 1, s->notify[k].retries);
    }
    if (rc == 0) {
        rc = single(p, "campusgw_notifications_pending", GW_PROM_GAUGE,
                    "Notification sends not finished yet.", (uint64_t)s->notify_pending);
    }
    if (rc == 0) {
        rc = gw_prom_family(p, "campusgw_commands_total", GW_PROM_COUNTER,
                            "Operator commands since start, by result.");
    }
    if (rc == 0) {
        struct gw_prom_label l = {"result", "done"};
        rc = gw_prom_sample_u64(p, &l, 1, s->commands - s->commands_refused);
    }
    if (rc == 0) {
        struct gw_prom_label l = {"result", "refused"};
        rc = gw_prom_sample_u64(p, &l, 1, s->commands_refused);
    }
    if (rc == 0) {
        rc = gw_prom_family(p, "campusgw_sensors", GW_PROM_GAUGE,
                            "Configured sensors, by whether they are online.");
    }
    if (rc == 0) {
        struct gw_prom_label l = {"state", "online"};
        rc = gw_prom_sample_i64(p, &l, 1, s->sensors_online);
    }
    if (rc == 0) {
        struct gw_prom_label l = {"state", "offline"};
        rc = gw_prom_sample_i64(p, &l, 1, s->sensors_offline);
    }
    if (rc == 0) {
        rc = single(p, "campusgw_sensors_faulty", GW_PROM_GAUGE,
                    "Sensors reporting a fault, online or offline.", (uint64_t)s->sensors_faulty);
    }
    if (rc == 0) {
        /* No sample when /proc could not tell: a made-up 0 would look like a measurement. */
        rc = gw_prom_family(p, "campusgw_process_resident_memory_bytes", GW_PROM_GAUGE,
                            "Resident memory of the gateway process.");
        if (rc == 0 && s->rss_bytes > 0) {
            rc = gw_prom_sample_i64(p, NULL, 0, s->rss_bytes);
        }
    }
    if (rc == 0) {
        rc = gw_prom_family(p, "campusgw_uptime_seconds", GW_PROM_GAUGE,
                            "Time since the gateway started.");
    }
    if (rc == 0) {
        rc = gw_prom_sample(p, NULL, 0, s->uptime_seconds);
    }
    return rc;
}

char *gw_prom_render(const struct gw_prom_snapshot *s, char *err, size_t errlen)
{
    char scratch[1];
    if (!err) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    if (!check_snapshot(s, err, errlen)) {
        return NULL;
    }
    struct gw_prom *p = gw_prom_new();
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char *text = NULL;
    if (render(p, s) != 0) {
        snprintf(err, errlen, "%s", gw_prom_error(p));
    } else {
        text = p->buf; /* handed over: the builder goes without its buffer */
        p->buf = NULL;
    }
    gw_prom_free(p);
    return text;
}
