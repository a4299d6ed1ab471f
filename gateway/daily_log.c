#include "daily_log.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "text.h"

#define NCLASSES 3 /* alarm, supervisory, trouble: fire first everywhere */

static const char *const class_key[NCLASSES] = {"alarm", "supervisory", "trouble"};
static const char *const class_zh[NCLASSES] = {"火警", "监管报警", "故障报警"};
static const char *const class_en[NCLASSES] = {"Fire alarms", "Supervisory", "Trouble"};

/* Text from records goes into Markdown as text: no emphasis, links, tables or line breaks. */
static void sb_md(struct gw_sb *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\n' || *s == '\r' || *s == '\t') {
            gw_sb_addn(b, " ", 1);
            continue;
        }
        if (strchr("\\`*_[]<>|#", *s)) {
            gw_sb_addn(b, "\\", 1);
        }
        gw_sb_addn(b, s, 1);
    }
}

/*
 * One RFC 4180 field. A text that starts like a formula (= + - @) gets a leading
 * apostrophe, so that a name typed into a command cannot run as one in Excel.
 */
static void sb_csv(struct gw_sb *b, const char *s, bool text)
{
    if (s == NULL) {
        s = "";
    }
    bool formula = text && s[0] && strchr("=+-@", s[0]);
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote) {
        gw_sb_addn(b, "\"", 1);
    }
    if (formula) {
        gw_sb_addn(b, "'", 1);
    }
    for (; *s; s++) {
        if (*s == '"') {
            gw_sb_addn(b, "\"", 1);
        }
        gw_sb_addn(b, s, 1);
    }
    if (quote) {
        gw_sb_addn(b, "\"", 1);
    }
}

/* ---- times ---- */

/* "2026-11-28T13:26:59.123Z" (milliseconds optional) -> Unix ms; false when malformed. */
static bool parse_utc(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n != 19) {
        return false;
    }
    int ms = 0;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits < 3) {
                ms = ms * 10 + (*p - '0');
            }
        }
        if (digits == 0) {
            return false;
        }
        for (; digits < 3; digits++) {
            ms *= 10;
        }
    }
    if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60) {
        return false;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1) {
        return false;
    }
    *out = (int64_t)t * 1000 + ms;
    return true;
}

static time_t to_secs(int64_t ms)
{
    return (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
}

/* Local "HH:MM:SS" within the day, "YYYY-MM-DD HH:MM:SS" outside it. */
static void fmt_local(int64_t ms, int64_t start, int64_t end, char *out, size_t size)
{
    time_t t = to_secs(ms);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL ||
        strftime(out, size, ms >= start && ms < end ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm) == 0) {
        snprintf(out, size, "?");
    }
}

/* CSV: always the full local time, empty when unknown. */
static void fmt_local_full(int64_t ms, char *out, size_t size)
{
    out[0] = '\0';
    if (ms == 0) {
        return;
    }
    time_t t = to_secs(ms);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm) == 0) {
        out[0] = '\0';
    }
}

/* zh "2 分 30 秒", en "2 min 30 s": the two largest units, a zero second one left out. */
static void sb_duration(struct gw_sb *b, int64_t s, bool zh)
{
    if (s < 0) {
        s = 0;
    }
    static const int64_t unit[] = {86400, 3600, 60, 1};
    static const char *const name_zh[] = {"天", "小时", "分", "秒"};
    static const char *const name_en[] = {"d", "h", "min", "s"};
    int i = 0;
    while (i < 3 && s < unit[i]) {
        i++;
    }
    long long major = (long long)(s / unit[i]);
    gw_sb_printf(b, "%lld %s", major, zh ? name_zh[i] : name_en[i]);
    if (i < 3) {
        long long minor = (long long)(s % unit[i] / unit[i + 1]);
        if (minor > 0) {
            gw_sb_printf(b, " %lld %s", minor, zh ? name_zh[i + 1] : name_en[i + 1]);
        }
    }
}

/* ---- occurrences and commands ---- */

struct occ {
    char *key, *sensor, *rule, *acked_by;
    int cls;
    bool test, ended;
    int64_t raised, acked, cleared;
    int64_t offline_from; /* raised minus the silence it was raised with */
    int level;
    int order;
};

struct cmd {
    int64_t ts;
    char *by, *verb, *key, *note;
    int64_t shelved_until;
};

struct day {
    const struct gw_daily_input *in;
    bool zh;
    struct occ *occ;
    int nocc, capocc;
    struct cmd *cmd;
    int ncmd, capcmd;
    int skipped;
    bool oom;
};

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static const char *str_of(json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

static int64_t time_of(json_t *o, const char *name)
{
    int64_t ms = 0;
    return parse_utc(str_of(o, name), &ms) ? ms : 0;
}

static int class_of(const char *s)
{
    for (int i = 0; s && i < NCLASSES; i++) {
        if (strcmp(s, class_key[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static struct occ *current(struct day *d, const char *key)
{
    for (int i = d->nocc - 1; i >= 0; i--) {
        if (strcmp(d->occ[i].key, key) == 0) {
            return d->occ[i].ended ? NULL : &d->occ[i];
        }
    }
    return NULL;
}

static struct occ *new_occ(struct day *d, json_t *rec, const char *key, int cls)
{
    if (d->nocc == d->capocc) {
        int cap = d->capocc ? d->capocc * 2 : 16;
        struct occ *p = realloc(d->occ, (size_t)cap * sizeof(*p));
        if (p == NULL) {
            d->oom = true;
            return NULL;
        }
        d->occ = p;
        d->capocc = cap;
    }
    struct occ *o = &d->occ[d->nocc];
    *o = (struct occ){.cls = cls, .order = d->nocc};
    o->key = strdup(key);
    o->sensor = dup_or_empty(str_of(rec, "sensor"));
    o->rule = dup_or_empty(str_of(rec, "rule"));
    o->acked_by = strdup("");
    d->nocc++;
    if (!o->key || !o->sensor || !o->rule || !o->acked_by) {
        d->oom = true;
        return NULL;
    }
    o->raised = time_of(rec, "raised_at");
    /* An offline rule's value is the silence in seconds when it was raised. */
    o->offline_from = o->raised;
    json_t *value = json_object_get(rec, "value");
    if (o->raised && json_is_number(value) && json_number_value(value) > 0 &&
        json_number_value(value) < 1e9) {
        o->offline_from = o->raised - (int64_t)(json_number_value(value) * 1000.0);
    }
    return o;
}

static void update_occ(struct day *d, struct occ *o, json_t *rec)
{
    int64_t acked = time_of(rec, "acked_at");
    if (acked) {
        o->acked = acked;
    }
    const char *by = str_of(rec, "acked_by");
    if (by && by[0] && strcmp(by, o->acked_by) != 0) {
        char *copy = strdup(by);
        if (copy == NULL) {
            d->oom = true;
            return;
        }
        free(o->acked_by);
        o->acked_by = copy;
    }
    int64_t cleared = time_of(rec, "cleared_at");
    if (cleared) {
        o->cleared = cleared;
    }
    json_t *level = json_object_get(rec, "level");
    if (json_is_integer(level) && json_integer_value(level) > o->level &&
        json_integer_value(level) < 1000) {
        o->level = (int)json_integer_value(level);
    }
    if (json_is_true(json_object_get(rec, "test"))) {
        o->test = true;
    }
    const char *state = str_of(rec, "state");
    if (state && strcmp(state, "normal") == 0) {
        o->ended = true;
    }
}

static void add_cmd(struct day *d, json_t *rec, int64_t ts, const char *verb, const char *key)
{
    if (d->ncmd == d->capcmd) {
        int cap = d->capcmd ? d->capcmd * 2 : 8;
        struct cmd *p = realloc(d->cmd, (size_t)cap * sizeof(*p));
        if (p == NULL) {
            d->oom = true;
            return;
        }
        d->cmd = p;
        d->capcmd = cap;
    }
    struct cmd *c = &d->cmd[d->ncmd++];
    *c = (struct cmd){.ts = ts};
    c->by = strdup(str_of(rec, "by"));
    c->verb = strdup(verb);
    c->key = strdup(key);
    c->note = dup_or_empty(str_of(rec, "note"));
    if (strcmp(verb, "shelve") == 0) {
        c->shelved_until = time_of(rec, "shelved_until");
    }
    if (!c->by || !c->verb || !c->key || !c->note) {
        d->oom = true;
    }
}

/* One record; open_before records have no transition. */
static void take(struct day *d, const char *payload, int64_t ts, bool before)
{
    json_t *rec = payload ? json_loads(payload, 0, NULL) : NULL;
    const char *key = str_of(rec, "key");
    const char *transition = str_of(rec, "transition");
    int cls = class_of(str_of(rec, "class"));
    if (!json_is_object(rec) || !key || cls < 0 || (!before && !transition)) {
        d->skipped++; /* notifications (a "kind", no "transition") land here too */
        json_decref(rec);
        return;
    }
    struct occ *o = current(d, key);
    if (before) {
        const char *state = str_of(rec, "state");
        if (o == NULL && !(state && strcmp(state, "normal") == 0)) {
            o = new_occ(d, rec, key, cls);
        }
    } else if (strcmp(transition, "raise") == 0) {
        if (o == NULL || o->raised != time_of(rec, "raised_at")) {
            if (o) {
                o->ended = true; /* raised again before it was back to normal */
            }
            o = new_occ(d, rec, key, cls);
        }
    } else if (o == NULL) {
        o = new_occ(d, rec, key, cls); /* an alarm from before the day we were not told of */
    }
    if (o) {
        update_occ(d, o, rec);
    }
    const char *by = str_of(rec, "by");
    if (!before && by && by[0]) {
        if (ts == 0 && strcmp(transition, "ack") == 0) {
            ts = time_of(rec, "acked_at");
        }
        if (ts == 0 || (ts >= d->in->start_ms && ts < d->in->end_ms)) {
            add_cmd(d, rec, ts, transition, key);
        }
    }
    json_decref(rec);
}

static void day_free(struct day *d)
{
    for (int i = 0; i < d->nocc; i++) {
        free(d->occ[i].key);
        free(d->occ[i].sensor);
        free(d->occ[i].rule);
        free(d->occ[i].acked_by);
    }
    free(d->occ);
    for (int i = 0; i < d->ncmd; i++) {
        free(d->cmd[i].by);
        free(d->cmd[i].verb);
        free(d->cmd[i].key);
        free(d->cmd[i].note);
    }
    free(d->cmd);
}

static int by_class_then_time(const void *a, const void *b)
{
    const struct occ *x = a, *y = b;
    if (x->cls != y->cls) {
        return x->cls - y->cls;
    }
    if (x->raised != y->raised) {
        return x->raised < y->raised ? -1 : 1;
    }
    return x->order - y->order;
}

static int by_time(const void *a, const void *b)
{
    const struct occ *x = a, *y = b;
    if (x->raised != y->raised) {
        return x->raised < y->raised ? -1 : 1;
    }
    return x->order - y->order;
}

/* ---- outages ---- */

struct outage {
    const char *sensor;
    int64_t from, to;
};

static bool overlaps(int64_t from, int64_t to, int64_t start, int64_t end)
{
    return from < end && (to == 0 || to > start);
}

static int64_t clipped_ms(const struct outage *o, int64_t start, int64_t end)
{
    int64_t from = o->from > start ? o->from : start;
    int64_t to = o->to == 0 || o->to > end ? end : o->to;
    return to > from ? to - from : 0;
}

static bool is_offline_rule(const struct gw_daily_input *in, const char *rule)
{
    for (int i = 0; i < in->noffline_rules; i++) {
        if (in->offline_rules[i] && strcmp(in->offline_rules[i], rule) == 0) {
            return true;
        }
    }
    return false;
}

/* The day's outages into *out (malloc'd); how many, or -ENOMEM. Occurrences in time order. */
static int collect_outages(const struct day *d, struct outage **out)
{
    const struct gw_daily_input *in = d->in;
    int max = in->outages ? in->noutages : d->nocc;
    *out = NULL;
    if (max == 0) {
        return 0;
    }
    struct outage *v = calloc((size_t)max, sizeof(*v));
    if (v == NULL) {
        return -ENOMEM;
    }
    int n = 0;
    if (in->outages) {
        for (int i = 0; i < in->noutages; i++) {
            const struct gw_daily_outage *g = &in->outages[i];
            if (overlaps(g->from_ms, g->to_ms, in->start_ms, in->end_ms)) {
                v[n++] = (struct outage){g->sensor, g->from_ms, g->to_ms};
            }
        }
    } else {
        for (int i = 0; i < d->nocc; i++) {
            const struct occ *o = &d->occ[i];
            if (o->raised && is_offline_rule(in, o->rule) &&
                overlaps(o->offline_from, o->cleared, in->start_ms, in->end_ms)) {
                v[n++] = (struct outage){o->sensor, o->offline_from, o->cleared};
            }
        }
    }
    *out = v;
    return n;
}

/* ---- figures ---- */

struct figures {
    int alarms[NCLASSES];
    int acked, unacked;
    int64_t ack_sum_s, worst_ack_s;
    int outages;
    int64_t outage_ms;
};

static int64_t ack_after_s(const struct occ *o)
{
    return o->acked > o->raised ? (o->acked - o->raised) / 1000 : 0;
}

static bool counted(const struct occ *o, const struct gw_daily_input *in)
{
    return !o->test && o->raised >= in->start_ms && o->raised < in->end_ms;
}

static void figure(const struct day *d, const struct outage *out, int nout, struct figures *f)
{
    *f = (struct figures){.outages = nout};
    for (int i = 0; i < d->nocc; i++) {
        const struct occ *o = &d->occ[i];
        if (!counted(o, d->in)) {
            continue;
        }
        f->alarms[o->cls]++;
        if (o->acked) {
            f->acked++;
            int64_t s = ack_after_s(o);
            f->ack_sum_s += s;
            if (s > f->worst_ack_s) {
                f->worst_ack_s = s;
            }
        } else {
            f->unacked++;
        }
    }
    for (int i = 0; i < nout; i++) {
        f->outage_ms += clipped_ms(&out[i], d->in->start_ms, d->in->end_ms);
    }
}

static int64_t mean_ack_s(const struct figures *f)
{
    return (f->ack_sum_s * 2 + f->acked) / (2 * (int64_t)f->acked); /* rounded half up */
}

static int64_t outage_minutes(const struct figures *f)
{
    return (f->outage_ms + 30000) / 60000;
}

/* ---- Markdown ---- */

static const char *verb_text(const char *verb, bool zh)
{
    static const struct {
        const char *verb, *zh, *en;
    } verbs[] = {
        {"ack", "确认", "acknowledged"},
        {"reset", "复位", "reset"},
        {"shelve", "搁置", "shelved"},
        {"unshelve", "取消搁置", "unshelved"},
        {"out_of_service", "停用检修", "took out of service"},
        {"in_service", "恢复使用", "returned to service"},
    };
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(verbs[i].verb, verb) == 0) {
            return zh ? verbs[i].zh : verbs[i].en;
        }
    }
    return verb;
}

static void md_alarm(struct gw_sb *b, const struct day *d, const struct occ *o)
{
    const struct gw_daily_input *in = d->in;
    bool zh = d->zh;
    char t[40];
    gw_sb_add(b, "- ");
    if (o->test) {
        gw_sb_add(b, zh ? "[测试] " : "[test] ");
    }
    if (o->raised) {
        fmt_local(o->raised, in->start_ms, in->end_ms, t, sizeof(t));
    } else {
        snprintf(t, sizeof(t), "?");
    }
    gw_sb_printf(b, zh ? "%s 报警 **" : "%s raised **", t);
    sb_md(b, o->key);
    gw_sb_add(b, zh ? "**（" : "** (");
    sb_md(b, o->rule);
    gw_sb_add(b, zh ? "）" : ")");
    if (o->acked) {
        if (zh) {
            gw_sb_add(b, "，");
            sb_duration(b, ack_after_s(o), zh);
            gw_sb_add(b, "后");
            if (o->acked_by[0]) {
                gw_sb_add(b, "由 ");
                sb_md(b, o->acked_by);
                gw_sb_add(b, " ");
            }
            gw_sb_add(b, "确认");
        } else {
            gw_sb_add(b, ", acknowledged ");
            if (o->acked_by[0]) {
                gw_sb_add(b, "by ");
                sb_md(b, o->acked_by);
                gw_sb_add(b, " ");
            }
            gw_sb_add(b, "after ");
            sb_duration(b, ack_after_s(o), zh);
        }
    } else {
        gw_sb_add(b, zh ? "，未确认" : ", not acknowledged");
    }
    if (o->cleared) {
        fmt_local(o->cleared, in->start_ms, in->end_ms, t, sizeof(t));
        gw_sb_printf(b, zh ? "，%s 恢复" : ", cleared %s", t);
    } else {
        gw_sb_add(b, zh ? "，未恢复" : ", not cleared");
    }
    gw_sb_add(b, "\n");
}

static void md_row(struct gw_sb *b, const char *label, const char *value)
{
    gw_sb_printf(b, "| %s | %s |\n", label, value);
}

static void md_row_n(struct gw_sb *b, const char *label, long long n)
{
    gw_sb_printf(b, "| %s | %lld |\n", label, n);
}

static void build_markdown(struct gw_sb *b, const struct day *d, const struct occ *sorted,
                           const struct outage *out, int nout, const struct figures *f)
{
    const struct gw_daily_input *in = d->in;
    bool zh = d->zh;
    char t1[40], t2[40];

    gw_sb_add(b, zh ? "# 安全日志 " : "# Safety log ");
    sb_md(b, in->date);
    gw_sb_add(b, " ");
    sb_md(b, in->school);
    gw_sb_add(b, zh ? "\n\n## 报警\n" : "\n\n## Alarms\n");
    for (int c = 0; c < NCLASSES; c++) {
        int n = 0;
        for (int i = 0; i < d->nocc; i++) {
            n += sorted[i].cls == c;
        }
        gw_sb_printf(b, zh ? "\n### %s（%d）\n\n" : "\n### %s (%d)\n\n",
                     zh ? class_zh[c] : class_en[c], n);
        for (int i = 0; i < d->nocc; i++) {
            if (sorted[i].cls == c) {
                md_alarm(b, d, &sorted[i]);
            }
        }
        if (n == 0) {
            gw_sb_add(b, zh ? "- 无\n" : "- none\n");
        }
    }

    gw_sb_add(b, zh ? "\n## 传感器离线\n\n" : "\n## Sensor outages\n\n");
    for (int i = 0; i < nout; i++) {
        fmt_local(out[i].from, in->start_ms, in->end_ms, t1, sizeof(t1));
        gw_sb_add(b, "- ");
        sb_md(b, out[i].sensor);
        if (out[i].to) {
            fmt_local(out[i].to, in->start_ms, in->end_ms, t2, sizeof(t2));
            gw_sb_printf(b, zh ? " 离线：%s 至 %s，本日 " : " offline %s to %s, ", t1, t2);
        } else {
            gw_sb_printf(
                b, zh ? " 离线：%s 起，仍未恢复，本日 " : " offline since %s, still offline, ", t1);
        }
        sb_duration(b, clipped_ms(&out[i], in->start_ms, in->end_ms) / 1000, zh);
        gw_sb_add(b, zh ? "\n" : " this day\n");
    }
    if (nout == 0) {
        gw_sb_add(b, zh ? "- 无\n" : "- none\n");
    }

    gw_sb_add(b, zh ? "\n## 隐患\n\n" : "\n## Hazards\n\n");
    gw_sb_printf(b,
                 zh ? "- 新增 %d 项，整改关闭 %d 项，逾期 %d 项\n"
                    : "- opened %d, closed %d, overdue %d\n",
                 in->hazards_opened, in->hazards_closed, in->hazards_overdue);

    gw_sb_add(b, zh ? "\n## 操作记录\n\n" : "\n## Commands\n\n");
    for (int i = 0; i < d->ncmd; i++) {
        const struct cmd *c = &d->cmd[i];
        if (c->ts) {
            fmt_local(c->ts, in->start_ms, in->end_ms, t1, sizeof(t1));
        } else {
            snprintf(t1, sizeof(t1), "--:--:--");
        }
        gw_sb_printf(b, "- %s ", t1);
        sb_md(b, c->by);
        gw_sb_printf(b, " %s ", verb_text(c->verb, zh));
        sb_md(b, c->key);
        if (c->shelved_until) {
            fmt_local(c->shelved_until, in->start_ms, in->end_ms, t2, sizeof(t2));
            gw_sb_printf(b, zh ? "，至 %s" : " until %s", t2);
        }
        if (c->note[0]) {
            gw_sb_add(b, zh ? "，备注：" : ", note: ");
            sb_md(b, c->note);
        }
        gw_sb_add(b, "\n");
    }
    if (d->ncmd == 0) {
        gw_sb_add(b, zh ? "- 无\n" : "- none\n");
    }

    gw_sb_add(b, zh ? "\n## 汇总\n\n| 项目 | 数值 |\n|---|---|\n"
                    : "\n## Summary\n\n| Item | Value |\n|---|---|\n");
    for (int c = 0; c < NCLASSES; c++) {
        md_row_n(b, zh ? class_zh[c] : class_en[c], f->alarms[c]);
    }
    md_row_n(b, zh ? "已确认" : "Acknowledged", f->acked);
    md_row_n(b, zh ? "未确认" : "Not acknowledged", f->unacked);
    struct gw_sb dur = {0};
    if (f->acked) {
        sb_duration(&dur, mean_ack_s(f), zh);
    }
    md_row(b, zh ? "平均确认用时" : "Mean time to acknowledge", dur.p ? dur.p : "-");
    dur.len = 0;
    if (f->acked) {
        sb_duration(&dur, f->worst_ack_s, zh);
    }
    md_row(b, zh ? "最长确认用时" : "Worst time to acknowledge", f->acked && dur.p ? dur.p : "-");
    b->oom |= dur.oom;
    free(dur.p);
    gw_sb_printf(
        b, zh ? "| 传感器离线 | %d 次，共 %lld 分钟 |\n" : "| Sensor outages | %d, %lld min |\n",
        f->outages, (long long)outage_minutes(f));
    gw_sb_printf(b,
                 zh ? "| 隐患 新增/关闭/逾期 | %d/%d/%d |\n"
                    : "| Hazards opened/closed/overdue | %d/%d/%d |\n",
                 in->hazards_opened, in->hazards_closed, in->hazards_overdue);
    md_row_n(b, zh ? "操作命令" : "Commands", d->ncmd);
}

/* ---- CSV ---- */

static void build_csv(struct gw_sb *b, const struct day *d, const struct occ *sorted)
{
    /* The BOM makes Excel (zh-CN Windows defaults to GBK) read the file as UTF-8. */
    gw_sb_add(b,
              "\xEF\xBB\xBF"
              "date,key,sensor,rule,class,raised_at,acked_at,acked_by,ack_after_s,cleared_at,level,"
              "test\r\n");
    char t[40];
    for (int i = 0; i < d->nocc; i++) {
        const struct occ *o = &sorted[i];
        sb_csv(b, d->in->date, false);
        gw_sb_add(b, ",");
        sb_csv(b, o->key, true);
        gw_sb_add(b, ",");
        sb_csv(b, o->sensor, true);
        gw_sb_add(b, ",");
        sb_csv(b, o->rule, true);
        gw_sb_add(b, ",");
        sb_csv(b, class_key[o->cls], false);
        gw_sb_add(b, ",");
        fmt_local_full(o->raised, t, sizeof(t));
        sb_csv(b, t, false);
        gw_sb_add(b, ",");
        fmt_local_full(o->acked, t, sizeof(t));
        sb_csv(b, t, false);
        gw_sb_add(b, ",");
        sb_csv(b, o->acked_by, true);
        gw_sb_add(b, ",");
        if (o->acked) {
            gw_sb_printf(b, "%lld", (long long)ack_after_s(o));
        }
        gw_sb_add(b, ",");
        fmt_local_full(o->cleared, t, sizeof(t));
        sb_csv(b, t, false);
        gw_sb_printf(b, ",%d,%s\r\n", o->level, o->test ? "true" : "false");
    }
}

/* ---- summary ---- */

static char *build_summary(const struct day *d, const struct figures *f)
{
    const struct gw_daily_input *in = d->in;
    json_t *root = json_pack(
        "{ss ss s{sisisi} sisi so so sisI s{sisisi} si}", "date", in->date, "school", in->school,
        "alarms", "alarm", f->alarms[0], "supervisory", f->alarms[1], "trouble", f->alarms[2],
        "acked", f->acked, "unacked", f->unacked, "mean_ack_s",
        f->acked ? json_integer(mean_ack_s(f)) : json_null(), "worst_ack_s",
        f->acked ? json_integer(f->worst_ack_s) : json_null(), "outages", f->outages,
        "outage_minutes", (json_int_t)outage_minutes(f), "hazards", "opened", in->hazards_opened,
        "closed", in->hazards_closed, "overdue", in->hazards_overdue, "commands", d->ncmd);
    if (root == NULL) {
        return NULL;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}

/* ---- the whole ---- */

static int fail(char *err, size_t errlen, const char *why)
{
    if (err && errlen) {
        snprintf(err, errlen, "%s", why);
    }
    return -EINVAL;
}

void gw_daily_log_free(struct gw_daily_log *log)
{
    if (log == NULL) {
        return;
    }
    free(log->markdown);
    log->markdown = NULL;
    free(log->csv);
    log->csv = NULL;
    free(log->summary);
    log->summary = NULL;
}

int gw_daily_log_build(const struct gw_daily_input *in, struct gw_daily_log *out, char *err,
                       size_t errlen)
{
    if (out == NULL || in == NULL) {
        return fail(err, errlen, "no input or output");
    }
    *out = (struct gw_daily_log){0};
    if (in->school == NULL || in->date == NULL) {
        return fail(err, errlen, "school and date are required");
    }
    int64_t start, end;
    if (gw_daily_log_day_bounds(in->date, &start, &end) != 0) {
        return fail(err, errlen, "date is not YYYY-MM-DD");
    }
    if (in->start_ms >= in->end_ms) {
        return fail(err, errlen, "the day ends before it starts");
    }
    if ((in->nevents < 0 || (in->nevents > 0 && in->events == NULL)) ||
        (in->nopen_before < 0 || (in->nopen_before > 0 && in->open_before == NULL)) ||
        (in->noutages < 0 || (in->noutages > 0 && in->outages == NULL)) ||
        (in->noffline_rules < 0 || (in->noffline_rules > 0 && in->offline_rules == NULL))) {
        return fail(err, errlen, "a list has a count but no items");
    }
    for (int i = 0; in->outages && i < in->noutages; i++) {
        if (in->outages[i].sensor == NULL) {
            return fail(err, errlen, "an outage without a sensor");
        }
    }

    struct day d = {.in = in};
    const char *lang = in->language ? in->language : "";
    d.zh = strncmp(lang, "en", 2) != 0;
    struct occ *sorted = NULL;
    struct outage *outages = NULL;
    struct gw_sb md = {0}, csv = {0};
    int rc = -ENOMEM;

    for (int i = 0; i < in->nopen_before; i++) {
        take(&d, in->open_before[i], 0, true);
    }
    for (int i = 0; i < in->nevents; i++) {
        take(&d, in->events[i].payload, in->events[i].ts_ms, false);
    }
    if (d.oom) {
        goto out;
    }
    int nout = collect_outages(&d, &outages);
    if (nout < 0) {
        goto out;
    }
    struct figures f;
    figure(&d, outages, nout, &f);

    sorted = malloc((size_t)(d.nocc ? d.nocc : 1) * sizeof(*sorted));
    if (sorted == NULL) {
        goto out;
    }
    if (d.nocc) {
        memcpy(sorted, d.occ, (size_t)d.nocc * sizeof(*sorted));
        qsort(sorted, (size_t)d.nocc, sizeof(*sorted), by_class_then_time);
    }
    build_markdown(&md, &d, sorted, outages, nout, &f);
    if (d.nocc) {
        qsort(sorted, (size_t)d.nocc, sizeof(*sorted), by_time);
    }
    build_csv(&csv, &d, sorted);
    out->summary = build_summary(&d, &f);
    if (md.oom || csv.oom || out->summary == NULL) {
        goto out;
    }
    out->markdown = md.p;
    md.p = NULL;
    out->csv = csv.p;
    csv.p = NULL;
    out->skipped = d.skipped;
    rc = 0;
out:
    if (rc != 0) {
        gw_daily_log_free(out);
        fail(err, errlen, "out of memory");
    }
    free(md.p);
    free(csv.p);
    free(sorted); /* shallow copies: the strings belong to d */
    free(outages);
    day_free(&d);
    return rc;
}

/* ---- the calendar ---- */

static int local_midnight(int y, int mon, int mday, int64_t *ms)
{
    /* tm_isdst -1: mktime decides, so a DST change that day is right; it normalizes mday. */
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mon, .tm_mday = mday, .tm_isdst = -1};
    time_t t = mktime(&tm);
    if (t == (time_t)-1) {
        return -EINVAL;
    }
    *ms = (int64_t)t * 1000;
    return 0;
}

int gw_daily_log_day_bounds(const char *date, int64_t *start_ms, int64_t *end_ms)
{
    int y, m, dd, n = 0;
    if (date == NULL || strlen(date) != 10 || sscanf(date, "%4d-%2d-%2d%n", &y, &m, &dd, &n) != 3 ||
        n != 10 || date[4] != '-' || date[7] != '-' || y < 1970 || m < 1 || m > 12 || dd < 1) {
        return -EINVAL;
    }
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (dd > mdays[m - 1] + (m == 2 && leap)) {
        return -EINVAL;
    }
    for (const char *p = date; *p; p++) {
        if ((*p < '0' || *p > '9') && *p != '-') {
            return -EINVAL;
        }
    }
    if (local_midnight(y, m - 1, dd, start_ms) != 0 ||
        local_midnight(y, m - 1, dd + 1, end_ms) != 0) {
        return -EINVAL;
    }
    return 0;
}

int gw_daily_log_previous_day(int64_t now_ms, char date[11], int64_t *start_ms, int64_t *end_ms)
{
    time_t t = to_secs(now_ms);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL) {
        return -EINVAL;
    }
    struct tm prev = {.tm_year = tm.tm_year,
                      .tm_mon = tm.tm_mon,
                      .tm_mday = tm.tm_mday - 1,
                      .tm_hour = 12, /* noon exists every day, whatever DST does */
                      .tm_isdst = -1};
    if (mktime(&prev) == (time_t)-1 || strftime(date, 11, "%Y-%m-%d", &prev) != 10) {
        return -EINVAL;
    }
    return gw_daily_log_day_bounds(date, start_ms, end_ms);
}

int64_t gw_daily_log_next_run_ms(int64_t now_ms)
{
    time_t t = to_secs(now_ms);
    struct tm now;
    if (localtime_r(&t, &now) == NULL) {
        return now_ms + 24 * 3600 * 1000LL;
    }
    for (int add = 0; add <= 1; add++) {
        struct tm run = {.tm_year = now.tm_year,
                         .tm_mon = now.tm_mon,
                         .tm_mday = now.tm_mday + add,
                         .tm_min = 5,
                         .tm_isdst = -1};
        time_t r = mktime(&run);
        if (r != (time_t)-1 && (int64_t)r * 1000 > now_ms) {
            return (int64_t)r * 1000;
        }
    }
    return now_ms + 24 * 3600 * 1000LL; /* mktime failed: try again in a day */
}
