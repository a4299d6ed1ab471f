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
#include "timefmt.h"

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
        if (strchr("\\`*_[]<>|#~", *s)) {
            gw_sb_addn(b, "\\", 1);
        }
        gw_sb_addn(b, s, 1);
    }
}

/*
 * One RFC 4180 field. A text that starts like a formula (= + - @, tab, CR) gets a leading
 * apostrophe, so that a name typed into a command cannot run as one in Excel.
 */
static void sb_csv(struct gw_sb *b, const char *s, bool text)
{
    if (s == NULL) {
        s = "";
    }
    bool formula = text && s[0] && strchr("=+-@\t\r", s[0]);
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
    const struct gw_daily_hazard **hz; /* the day's hazard entries, in time order */
    int nhz;
    int hz_opened, hz_closed, hz_overdue;
    int hz_cmds; /* entries by a person: commands */
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
    return gw_parse_rfc3339(str_of(o, name), &ms) == 0 ? ms : 0;
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
    /* The first acknowledgement is the time to acknowledge (as kpi.c counts it). */
    int64_t acked = time_of(rec, "acked_at");
    if (acked && !o->acked) {
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
    /* alarms.c keeps an occurrence a test only while every raise of it was one: its latest
     * record says which (a real raise during a test press makes it real). */
    o->test = json_is_true(json_object_get(rec, "test"));
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
    free(d->hz);
}

/* ---- hazard entries ---- */

static int hazard_ptr_by_time(const void *a, const void *b)
{
    const struct gw_hazard_entry *x = &(*(const struct gw_daily_hazard *const *)a)->entry;
    const struct gw_hazard_entry *y = &(*(const struct gw_daily_hazard *const *)b)->entry;
    if (x->at_ms != y->at_ms) {
        return x->at_ms < y->at_ms ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The day's entries into d->hz (time order) and their counts. 0 or -ENOMEM. */
static int collect_hazards(struct day *d)
{
    const struct gw_daily_input *in = d->in;
    d->hz = malloc((size_t)(in->nhazards ? in->nhazards : 1) * sizeof(*d->hz));
    if (d->hz == NULL) {
        return -ENOMEM;
    }
    for (int i = 0; i < in->nhazards; i++) {
        const struct gw_daily_hazard *h = &in->hazards[i];
        const char *action = h->entry.action;
        if (h->entry.at_ms < in->start_ms || h->entry.at_ms >= in->end_ms) {
            continue; /* another day's */
        }
        d->hz[d->nhz++] = h;
        d->hz_opened += strcmp(action, "open") == 0;
        d->hz_closed += strcmp(action, "close") == 0;
        d->hz_overdue += strcmp(action, "overdue") == 0;
        d->hz_cmds += h->entry.by[0] != '\0';
    }
    if (d->nhz > 1) {
        qsort(d->hz, (size_t)d->nhz, sizeof(*d->hz), hazard_ptr_by_time);
    }
    return 0;
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

/* Where the day's figures stop: its end, or now for a day not over yet. */
static int64_t day_limit(const struct gw_daily_input *in)
{
    return in->as_of_ms > in->start_ms && in->as_of_ms < in->end_ms ? in->as_of_ms : in->end_ms;
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
        f->outage_ms += clipped_ms(&out[i], d->in->start_ms, day_limit(d->in));
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

/* ---- hazard entries in words ---- */

static const char *const category_zh[GW_HZ_NCATEGORIES] = {"消防设施", "疏散通道", "电气",
                                                           "建筑结构", "周边环境", "其他"};
static const char *const category_en[GW_HZ_NCATEGORIES] = {
    "fire equipment", "evacuation route", "electrical", "structure", "surroundings", "other"};

/* The page's words (gateway/www/app.js) for the same actions; short: in the command list. */
static const struct {
    const char *action, *zh, *en, *en_short;
} hz_verbs[] = {
    {"open", "登记隐患", "opened", "opened hazard"},
    {"update", "修改隐患", "updated", "updated hazard"},
    {"rectifying", "开始整改", "started fixing", "started fixing hazard"},
    {"close", "销号", "closed", "closed hazard"},
    {"reopen", "重新打开", "reopened", "reopened hazard"},
    {"overdue", "标记逾期", "reported overdue", "reported overdue hazard"},
};

static const char *hz_verb(const char *action, bool zh, bool in_short)
{
    for (size_t i = 0; i < sizeof(hz_verbs) / sizeof(hz_verbs[0]); i++) {
        if (strcmp(hz_verbs[i].action, action) == 0) {
            return zh ? hz_verbs[i].zh : in_short ? hz_verbs[i].en_short : hz_verbs[i].en;
        }
    }
    return action;
}

static bool is_action(const struct gw_hazard_entry *e, const char *action)
{
    return strcmp(e->action, action) == 0;
}

/* A deadline: local date and minute, always in full. */
static void sb_deadline(struct gw_sb *b, int64_t ms)
{
    char t[40];
    time_t secs = to_secs(ms);
    struct tm tm;
    if (ms == 0 || localtime_r(&secs, &tm) == NULL ||
        strftime(t, sizeof(t), "%Y-%m-%d %H:%M", &tm) == 0) {
        snprintf(t, sizeof(t), "?");
    }
    gw_sb_add(b, t);
}

static void sb_person(struct gw_sb *b, const char *name, bool zh)
{
    if (name[0]) {
        sb_md(b, name);
    } else {
        gw_sb_add(b, zh ? "尚未指定" : "not named yet");
    }
}

/* "**HZ-..** (category, B / 1 / zone): description" */
static void md_hazard_subject(struct gw_sb *b, const struct gw_daily_hazard *x, bool zh)
{
    const struct gw_hazard *h = &x->entry.hazard;
    gw_sb_add(b, "**");
    sb_md(b, h->id);
    gw_sb_add(b, "**");
    if (x->known) {
        unsigned c = (unsigned)h->category;
        gw_sb_add(b, zh ? "（" : " (");
        gw_sb_add(b, c < GW_HZ_NCATEGORIES ? (zh ? category_zh[c] : category_en[c]) : "?");
        const char *place[] = {h->building, h->floor, h->zone};
        bool first = true;
        for (int i = 0; i < 3; i++) {
            if (place[i][0]) {
                gw_sb_add(b, first ? (zh ? "，" : ", ") : " / ");
                sb_md(b, place[i]);
                first = false;
            }
        }
        gw_sb_add(b, zh ? "）" : ")");
    }
    if (h->description[0]) {
        gw_sb_add(b, zh ? "：" : ": ");
        sb_md(b, h->description);
    }
}

/* Details after the subject, separated by "，" / ", ", introduced by "；" / "; ". */
struct details {
    struct gw_sb *b;
    bool zh, any;
};

static void detail(struct details *t)
{
    gw_sb_add(t->b, t->any ? (t->zh ? "，" : ", ") : (t->zh ? "；" : "; "));
    t->any = true;
}

static void md_hazard(struct gw_sb *b, const struct day *d, const struct gw_daily_hazard *x)
{
    const struct gw_hazard_entry *e = &x->entry;
    const struct gw_hazard *h = &e->hazard, *was = &x->before;
    bool zh = d->zh;
    bool gateway = e->by[0] == '\0';
    char t[40];
    fmt_local(e->at_ms, d->in->start_ms, d->in->end_ms, t, sizeof(t));
    gw_sb_printf(b, "- %s ", t);
    if (gateway) {
        gw_sb_add(b, zh ? "系统" : "the gateway");
    } else {
        sb_md(b, e->by);
    }
    gw_sb_add(b, " ");
    gw_sb_add(b, zh && gateway && is_action(e, "open") ? "自动登记隐患"
                                                       : hz_verb(e->action, zh, false));
    gw_sb_add(b, " ");
    md_hazard_subject(b, x, zh);

    struct details det = {b, zh, false};
    if (is_action(e, "open") || is_action(e, "reopen")) {
        if (h->source_alarm[0] && is_action(e, "open")) {
            detail(&det);
            gw_sb_add(b, zh ? "来源报警 " : "from alarm ");
            sb_md(b, h->source_alarm);
        }
        detail(&det);
        gw_sb_add(b, zh ? "责任人 " : "responsible ");
        sb_person(b, h->responsible, zh);
        detail(&det);
        gw_sb_add(b, zh ? "整改期限 " : "deadline ");
        sb_deadline(b, h->deadline_ms);
    } else if (is_action(e, "update")) {
        if (e->fields & GW_HZF_RESPONSIBLE) {
            detail(&det);
            gw_sb_add(b, zh ? "责任人 " : "responsible ");
            sb_person(b, h->responsible, zh);
            if (x->known && was->responsible[0]) {
                gw_sb_add(b, zh ? "（原 " : " (was ");
                sb_md(b, was->responsible);
                gw_sb_add(b, zh ? "）" : ")");
            } else if (x->known) {
                gw_sb_add(b, zh ? "（原 尚未指定）" : " (none named before)");
            }
        }
        if (e->fields & GW_HZF_DEADLINE) {
            detail(&det);
            gw_sb_add(b, zh ? "整改期限 " : "deadline ");
            sb_deadline(b, h->deadline_ms);
            if (x->known) {
                gw_sb_add(b, zh ? "（原 " : " (was ");
                sb_deadline(b, was->deadline_ms);
                gw_sb_add(b, zh ? "）" : ")");
            }
        }
        if (e->fields & GW_HZF_DESCRIPTION) {
            detail(&det);
            gw_sb_add(b, zh ? "描述已修改" : "description changed");
            if (x->known) {
                gw_sb_add(b, zh ? "（原：" : " (was: ");
                sb_md(b, was->description);
                gw_sb_add(b, zh ? "）" : ")");
            }
        }
    } else if (is_action(e, "close")) {
        detail(&det);
        gw_sb_add(b, zh ? "验收人 " : "verified by ");
        sb_person(b, h->verified_by, zh);
    } else if (is_action(e, "overdue")) {
        detail(&det);
        gw_sb_add(b, zh ? "整改期限 " : "deadline ");
        sb_deadline(b, h->deadline_ms);
        gw_sb_add(b, zh ? " 已过" : " passed");
        detail(&det);
        gw_sb_add(b, zh ? "责任人 " : "responsible ");
        sb_person(b, h->responsible, zh);
    }
    if (e->note[0]) {
        detail(&det);
        gw_sb_add(b, zh ? "备注：" : "note: ");
        sb_md(b, e->note);
    }
    gw_sb_add(b, "\n");
}

/* In the command list: "- 09:30:00 李老师 opened hazard HZ-20261128-001". */
static void md_hazard_command(struct gw_sb *b, const struct day *d, const struct gw_daily_hazard *x)
{
    char t[40];
    fmt_local(x->entry.at_ms, d->in->start_ms, d->in->end_ms, t, sizeof(t));
    gw_sb_printf(b, "- %s ", t);
    sb_md(b, x->entry.by);
    gw_sb_printf(b, " %s ", hz_verb(x->entry.action, d->zh, true));
    sb_md(b, x->entry.hazard.id);
    gw_sb_add(b, "\n");
}

static void md_command(struct gw_sb *b, const struct day *d, const struct cmd *c)
{
    const struct gw_daily_input *in = d->in;
    bool zh = d->zh;
    char t1[40], t2[40];
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

static void build_markdown(struct gw_sb *b, const struct day *d, const struct occ *sorted,
                           const struct outage *out, int nout, const struct figures *f)
{
    const struct gw_daily_input *in = d->in;
    bool zh = d->zh;
    char t1[40], t2[40];

    gw_sb_add(b, zh ? "# 安全日志 " : "# Safety log ");
    sb_md(b, in->date);
    gw_sb_add(b, " ");
    sb_md(b, in->school_name ? in->school_name : in->school);
    gw_sb_add(b, "\n");
    if (in->as_of_ms) {
        fmt_local(in->as_of_ms, in->start_ms, in->end_ms, t1, sizeof(t1));
        gw_sb_printf(b,
                     zh ? "\n> 本日尚未结束：本日志只记录到 %s。\n"
                        : "\n> The day is not over: this log covers it up to %s.\n",
                     t1);
    }
    gw_sb_add(b, zh ? "\n## 报警\n" : "\n## Alarms\n");
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
        sb_duration(b, clipped_ms(&out[i], in->start_ms, day_limit(in)) / 1000, zh);
        gw_sb_add(b, zh ? "\n" : " this day\n");
    }
    if (nout == 0) {
        gw_sb_add(b, zh ? "- 无\n" : "- none\n");
    }

    gw_sb_add(b, zh ? "\n## 隐患\n\n" : "\n## Hazards\n\n");
    gw_sb_printf(b,
                 zh ? "- 新增 %d 项，整改关闭 %d 项，逾期 %d 项\n"
                    : "- opened %d, closed %d, overdue %d\n",
                 d->hz_opened, d->hz_closed, d->hz_overdue);
    gw_sb_printf(b, zh ? "\n### 台账记录（%d）\n\n" : "\n### Register entries (%d)\n\n", d->nhz);
    for (int i = 0; i < d->nhz; i++) {
        md_hazard(b, d, d->hz[i]);
    }
    if (d->nhz == 0) {
        gw_sb_add(b, zh ? "- 无\n" : "- none\n");
    }

    /* Alarm commands in the order recorded, people's hazard entries merged in by time (an
     * alarm command of unknown time keeps its place). */
    gw_sb_add(b, zh ? "\n## 操作记录\n\n" : "\n## Commands\n\n");
    int ci = 0, hi = 0;
    while (ci < d->ncmd || hi < d->nhz) {
        if (hi < d->nhz && d->hz[hi]->entry.by[0] == '\0') {
            hi++; /* the gateway's: not a command */
            continue;
        }
        bool hazard_next =
            hi < d->nhz &&
            (ci == d->ncmd || (d->cmd[ci].ts != 0 && d->hz[hi]->entry.at_ms < d->cmd[ci].ts));
        if (hazard_next) {
            md_hazard_command(b, d, d->hz[hi++]);
        } else {
            md_command(b, d, &d->cmd[ci++]);
        }
    }
    if (d->ncmd + d->hz_cmds == 0) {
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
                 d->hz_opened, d->hz_closed, d->hz_overdue);
    md_row_n(b, zh ? "操作命令" : "Commands", d->ncmd + d->hz_cmds);
}

/* ---- CSV ---- */

/*
 * One table a spreadsheet can filter: the alarm columns first (as before hazards were listed),
 * then "record" (alarm | hazard) and the hazard columns. An alarm row leaves the hazard
 * columns empty; a hazard row has date, key (the hazard id) and the hazard columns.
 */
#define CSV_ALARM_COLUMNS                                                                          \
    "date,key,sensor,rule,class,raised_at,acked_at,acked_by,ack_after_s,cleared_at,level,test"
#define CSV_HAZARD_COLUMNS                                                                         \
    "record,at,action,by,category,building,floor,zone,description,responsible,deadline,status,"    \
    "verified_by,source_alarm,overdue,note"
#define CSV_ALARM_ONLY 10  /* sensor .. test: empty on a hazard row */
#define CSV_HAZARD_ONLY 15 /* at .. note: empty on an alarm row */

static void csv_empty(struct gw_sb *b, int n)
{
    for (int i = 0; i < n; i++) {
        gw_sb_add(b, ",");
    }
}

static void csv_hazard(struct gw_sb *b, const struct day *d, const struct gw_daily_hazard *x)
{
    const struct gw_hazard_entry *e = &x->entry;
    const struct gw_hazard *h = &e->hazard;
    char t[40];
    sb_csv(b, d->in->date, false);
    gw_sb_add(b, ",");
    sb_csv(b, h->id, true);
    csv_empty(b, CSV_ALARM_ONLY);
    gw_sb_add(b, ",hazard,");
    fmt_local_full(e->at_ms, t, sizeof(t));
    sb_csv(b, t, false);
    gw_sb_add(b, ",");
    sb_csv(b, e->action, false);
    gw_sb_add(b, ",");
    sb_csv(b, e->by, true);
    gw_sb_add(b, ",");
    if (x->known) {
        sb_csv(b, gw_hazard_category_name(h->category), false);
    }
    const char *text[] = {h->building, h->floor, h->zone, h->description, h->responsible};
    for (int i = 0; i < 5; i++) {
        gw_sb_add(b, ",");
        sb_csv(b, text[i], true);
    }
    gw_sb_add(b, ",");
    if (x->known) {
        fmt_local_full(h->deadline_ms, t, sizeof(t));
        sb_csv(b, t, false);
    }
    gw_sb_add(b, ",");
    if (x->known) {
        sb_csv(b, gw_hazard_status_name(h->status), false);
    }
    gw_sb_add(b, ",");
    sb_csv(b, h->verified_by, true);
    gw_sb_add(b, ",");
    sb_csv(b, h->source_alarm, true);
    gw_sb_add(b, ",");
    if (x->known) {
        gw_sb_add(b, h->overdue ? "true" : "false");
    }
    gw_sb_add(b, ",");
    sb_csv(b, e->note, true);
    gw_sb_add(b, "\r\n");
}

static void build_csv(struct gw_sb *b, const struct day *d, const struct occ *sorted)
{
    /* The BOM makes Excel (zh-CN Windows defaults to GBK) read the file as UTF-8. */
    gw_sb_add(b, "\xEF\xBB\xBF" CSV_ALARM_COLUMNS "," CSV_HAZARD_COLUMNS "\r\n");
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
        gw_sb_printf(b, ",%d,%s,alarm", o->level, o->test ? "true" : "false");
        csv_empty(b, CSV_HAZARD_ONLY);
        gw_sb_add(b, "\r\n");
    }
    for (int i = 0; i < d->nhz; i++) {
        csv_hazard(b, d, d->hz[i]);
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
        "outage_minutes", (json_int_t)outage_minutes(f), "hazards", "opened", d->hz_opened,
        "closed", d->hz_closed, "overdue", d->hz_overdue, "commands", d->ncmd + d->hz_cmds);
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
        (in->nhazards < 0 || (in->nhazards > 0 && in->hazards == NULL)) ||
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
    for (int i = 0; i < in->nhazards; i++) {
        if (in->hazards[i].entry.action == NULL) {
            return fail(err, errlen, "a hazard entry without an action");
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
        int64_t ts = in->events[i].ts_ms;
        if (ts != 0 && (ts < in->start_ms || ts >= in->end_ms)) {
            continue; /* another day's: the caller's scan may overlap midnight */
        }
        take(&d, in->events[i].payload, ts, false);
    }
    if (d.oom || collect_hazards(&d) != 0) {
        goto out;
    }
    int nout = collect_outages(&d, &outages);
    if (nout < 0) {
        goto out;
    }
    struct figures f;
    figure(&d, outages, nout, &f);

    /* Zeroed: gcc -O2 cannot tell that an empty day's array is never read. */
    sorted = calloc((size_t)(d.nocc ? d.nocc : 1), sizeof(*sorted));
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
    int y, m, dd;
    if (gw_parse_date(date, &y, &m, &dd) != 0) {
        return -EINVAL;
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

int gw_daily_log_due_day(int64_t now_ms, char date[11], int64_t *start_ms, int64_t *end_ms)
{
    if (gw_daily_log_previous_day(now_ms, date, start_ms, end_ms) != 0) {
        return -EINVAL;
    }
    /* Yesterday's log is due at the first 00:05 after yesterday ended. */
    if (gw_daily_log_next_run_ms(*end_ms - 1) <= now_ms) {
        return 0;
    }
    return gw_daily_log_previous_day(*start_ms, date, start_ms, end_ms);
}

int gw_daily_log_date(int64_t ms, char out[11])
{
    time_t t = to_secs(ms);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(out, 11, "%Y-%m-%d", &tm) != 10) {
        return -EINVAL;
    }
    return 0;
}

int gw_daily_log_next_due(const char *done, int64_t now_ms, int max_days, char day[11],
                          char skipped_from[11])
{
    char due[11], oldest[11];
    int64_t start, end;
    skipped_from[0] = '\0';
    if (now_ms < GW_DAILY_CLOCK_SET_MS) {
        return -EAGAIN;
    }
    if (gw_daily_log_due_day(now_ms, due, &start, &end) != 0) {
        return -EINVAL;
    }
    if (done == NULL || done[0] == '\0') {
        memcpy(day, due, 11);
        return 1;
    }
    if (strcmp(done, due) >= 0) {
        return 0;
    }
    memcpy(oldest, due, sizeof(oldest));
    for (int i = 1; i < max_days; i++) {
        if (gw_daily_log_prev_day(oldest, oldest) != 0) {
            return -EINVAL;
        }
    }
    if (gw_daily_log_next_day(done, day) != 0) {
        return -EINVAL;
    }
    if (strcmp(day, oldest) < 0) {
        memcpy(skipped_from, day, 11);
        memcpy(day, oldest, 11);
    }
    return 1;
}

int gw_daily_log_next_day(const char *date, char next[11])
{
    int64_t start, end;
    if (gw_daily_log_day_bounds(date, &start, &end) != 0) {
        return -EINVAL;
    }
    return gw_daily_log_date(end, next);
}

int gw_daily_log_prev_day(const char *date, char prev[11])
{
    int64_t start, end;
    if (gw_daily_log_day_bounds(date, &start, &end) != 0) {
        return -EINVAL;
    }
    return gw_daily_log_date(start - 1, prev);
}

/* ---- the day's hazard entries out of hazard_log ---- */

struct hz_state {
    bool known; /* an entry of it was applied */
    struct gw_hazard h;
};

struct gw_daily_hazards {
    int64_t start, end;
    struct hz_state *st; /* the wanted hazards */
    int nst, capst;
    int *slot; /* open addressing over st by id: index + 1, 0 empty */
    size_t nslot;
    struct gw_daily_hazard *items;
    int nitems, capitems;
    int skipped;
};

struct gw_daily_hazards *gw_daily_hazards_new(int64_t start_ms, int64_t end_ms)
{
    struct gw_daily_hazards *d = calloc(1, sizeof(*d));
    if (d) {
        d->start = start_ms;
        d->end = end_ms;
    }
    return d;
}

void gw_daily_hazards_free(struct gw_daily_hazards *d)
{
    if (d == NULL) {
        return;
    }
    free(d->st);
    free(d->slot);
    free(d->items);
    free(d);
}

static size_t hash_id(const char *id)
{
    size_t h = 2166136261u; /* FNV-1a */
    for (; *id; id++) {
        h = (h ^ (unsigned char)*id) * 16777619u;
    }
    return h;
}

/* The slot of id: its state's, or the empty one where it would go. */
static size_t find_slot(const struct gw_daily_hazards *d, const char *id)
{
    size_t i = hash_id(id) & (d->nslot - 1);
    while (d->slot[i] && strcmp(d->st[d->slot[i] - 1].h.id, id) != 0) {
        i = (i + 1) & (d->nslot - 1);
    }
    return i;
}

static struct hz_state *find_state(const struct gw_daily_hazards *d, const char *id)
{
    if (d->nslot == 0) {
        return NULL;
    }
    size_t i = find_slot(d, id);
    return d->slot[i] ? &d->st[d->slot[i] - 1] : NULL;
}

static int grow_slots(struct gw_daily_hazards *d)
{
    size_t n = d->nslot ? d->nslot * 2 : 64;
    int *old = d->slot;
    size_t nold = d->nslot;
    d->slot = calloc(n, sizeof(*d->slot));
    if (d->slot == NULL) {
        d->slot = old;
        return -ENOMEM;
    }
    d->nslot = n;
    for (size_t i = 0; i < nold; i++) {
        if (old[i]) {
            d->slot[find_slot(d, d->st[old[i] - 1].h.id)] = old[i];
        }
    }
    free(old);
    return 0;
}

int gw_daily_hazards_mark(struct gw_daily_hazards *d, const char *hazard, int64_t at_ms)
{
    if (hazard == NULL || at_ms < d->start || at_ms >= d->end || hazard[0] == '\0' ||
        strlen(hazard) >= GW_HZ_ID_MAX || find_state(d, hazard)) {
        return 0; /* not the day's, not a register id, or wanted already */
    }
    if ((size_t)(d->nst + 1) * 2 > d->nslot && grow_slots(d) != 0) {
        return -ENOMEM;
    }
    if (d->nst == d->capst) {
        int cap = d->capst ? d->capst * 2 : 16;
        struct hz_state *p = realloc(d->st, (size_t)cap * sizeof(*p));
        if (p == NULL) {
            return -ENOMEM;
        }
        d->st = p;
        d->capst = cap;
    }
    struct hz_state *s = &d->st[d->nst];
    memset(s, 0, sizeof(*s));
    memcpy(s->h.id, hazard, strlen(hazard) + 1);
    d->slot[find_slot(d, hazard)] = ++d->nst;
    return 0;
}

/* The fields an entry set, onto the hazard (as gw_hazards_restore applies them). */
static void apply_fields(struct gw_hazard *h, const struct gw_hazard_entry *e)
{
    const struct gw_hazard *n = &e->hazard;
#define TAKE(bit, member)                                                                          \
    if (e->fields & (bit)) {                                                                       \
        memcpy(h->member, n->member, sizeof(h->member));                                           \
    }
    TAKE(GW_HZF_BUILDING, building)
    TAKE(GW_HZF_FLOOR, floor)
    TAKE(GW_HZF_ZONE, zone)
    TAKE(GW_HZF_DESCRIPTION, description)
    TAKE(GW_HZF_FOUND_BY, found_by)
    TAKE(GW_HZF_SOURCE_ALARM, source_alarm)
    TAKE(GW_HZF_RESPONSIBLE, responsible)
    TAKE(GW_HZF_VERIFIED_BY, verified_by)
#undef TAKE
    if (e->fields & GW_HZF_CATEGORY) {
        h->category = n->category;
    }
    if (e->fields & GW_HZF_FOUND_AT) {
        h->found_at_ms = n->found_at_ms;
    }
    if (e->fields & GW_HZF_DEADLINE) {
        h->deadline_ms = n->deadline_ms;
    }
    if (e->fields & GW_HZF_STATUS) {
        h->status = n->status;
    }
    if (e->fields & GW_HZF_OVERDUE) {
        h->overdue = n->overdue;
    }
}

int gw_daily_hazards_add(struct gw_daily_hazards *d, const char *hazard, const char *entry)
{
    struct hz_state *s = hazard ? find_state(d, hazard) : NULL;
    if (s == NULL) {
        return 0; /* no entry in the day: its history does not matter */
    }
    struct gw_hazard_entry e;
    if (gw_hazard_entry_from_json(entry, &e, NULL, 0) != 0 || strcmp(e.hazard.id, hazard) != 0) {
        d->skipped++;
        return 0;
    }
    bool opens = strcmp(e.action, "open") == 0;
    struct gw_hazard before = s->h;
    if (opens) {
        memset(&s->h, 0, sizeof(s->h));
        memcpy(s->h.id, e.hazard.id, sizeof(s->h.id));
    }
    apply_fields(&s->h, &e);
    bool known = s->known || opens;
    s->known = known;
    if (e.at_ms < d->start || e.at_ms >= d->end) {
        return 0;
    }
    if (d->nitems == GW_DAILY_MAX_HAZARD_ENTRIES) {
        return -E2BIG;
    }
    if (d->nitems == d->capitems) {
        int cap = d->capitems ? d->capitems * 2 : 16;
        struct gw_daily_hazard *p = realloc(d->items, (size_t)cap * sizeof(*p));
        if (p == NULL) {
            return -ENOMEM;
        }
        d->items = p;
        d->capitems = cap;
    }
    struct gw_daily_hazard *it = &d->items[d->nitems++];
    it->entry = e;
    it->entry.hazard = s->h;
    if (opens || !known) {
        memset(&it->before, 0, sizeof(it->before));
    } else {
        it->before = before;
    }
    it->known = known;
    return 0;
}

int gw_daily_hazards_skipped(const struct gw_daily_hazards *d)
{
    return d->skipped;
}

static int hazard_by_time(const void *a, const void *b)
{
    const struct gw_hazard_entry *x = &((const struct gw_daily_hazard *)a)->entry;
    const struct gw_hazard_entry *y = &((const struct gw_daily_hazard *)b)->entry;
    if (x->at_ms != y->at_ms) {
        return x->at_ms < y->at_ms ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void gw_daily_hazards_input(struct gw_daily_hazards *d, struct gw_daily_input *in)
{
    if (d->nitems > 1) {
        qsort(d->items, (size_t)d->nitems, sizeof(*d->items), hazard_by_time);
    }
    in->hazards = d->items;
    in->nhazards = d->nitems;
}

/* ---- a day out of an alarm_history scan ---- */

struct carried {
    char *key;
    char *payload; /* the key's last alarm record before the day */
    bool later;    /* a row of the key from start_ms on */
    bool live;     /* live when it was kept */
};

struct gw_daily_history {
    int64_t start, end;
    gw_daily_live_fn live;
    void *ctx;
    struct carried *kept;
    int nkept, capkept;
    int unresolved; /* kept, neither seen later nor live */
    struct gw_daily_event *ev;
    int nev, capev;
    const char **open; /* for gw_daily_history_input */
};

struct gw_daily_history *gw_daily_history_new(int64_t start_ms, int64_t end_ms,
                                              gw_daily_live_fn live, void *ctx)
{
    struct gw_daily_history *h = calloc(1, sizeof(*h));
    if (h) {
        *h = (struct gw_daily_history){.start = start_ms, .end = end_ms, .live = live, .ctx = ctx};
    }
    return h;
}

void gw_daily_history_free(struct gw_daily_history *h)
{
    if (h == NULL) {
        return;
    }
    for (int i = 0; i < h->nkept; i++) {
        free(h->kept[i].key);
        free(h->kept[i].payload);
    }
    free(h->kept);
    for (int i = 0; i < h->nev; i++) {
        free((char *)h->ev[i].payload);
    }
    free(h->ev);
    free(h->open);
    free(h);
}

static struct carried *find_kept(struct gw_daily_history *h, const char *key)
{
    for (int i = 0; i < h->nkept; i++) {
        if (strcmp(h->kept[i].key, key) == 0) {
            return &h->kept[i];
        }
    }
    return NULL;
}

static bool unresolved(const struct carried *c)
{
    return !c->later && !c->live;
}

static void drop_kept(struct gw_daily_history *h, struct carried *c)
{
    h->unresolved -= unresolved(c);
    free(c->key);
    free(c->payload);
    *c = h->kept[--h->nkept]; /* the order does not matter: the log sorts by time */
}

/* A row before the day: the key's alarm record now, or back to normal. */
static int fold_before(struct gw_daily_history *h, const char *payload)
{
    json_t *rec = json_loads(payload, 0, NULL);
    const char *key = str_of(rec, "key");
    const char *state = str_of(rec, "state"); /* notifications have none */
    int rc = 0;
    if (key == NULL || state == NULL || class_of(str_of(rec, "class")) < 0) {
        goto out;
    }
    struct carried *c = find_kept(h, key);
    if (strcmp(state, "normal") == 0) {
        if (c) {
            drop_kept(h, c);
        }
        goto out;
    }
    char *copy = strdup(payload);
    if (copy == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (c) {
        free(c->payload);
        c->payload = copy;
        goto out;
    }
    if (h->nkept == h->capkept) {
        int cap = h->capkept ? h->capkept * 2 : 16;
        struct carried *p = realloc(h->kept, (size_t)cap * sizeof(*p));
        if (p == NULL) {
            free(copy);
            rc = -ENOMEM;
            goto out;
        }
        h->kept = p;
        h->capkept = cap;
    }
    char *k = strdup(key);
    if (k == NULL) {
        free(copy);
        rc = -ENOMEM;
        goto out;
    }
    c = &h->kept[h->nkept++];
    *c = (struct carried){.key = k, .payload = copy, .live = h->live && h->live(h->ctx, key)};
    h->unresolved += unresolved(c);
out:
    json_decref(rec);
    return rc;
}

/* A row from the day's start on: its key went on after the day began. */
static void mark_later(struct gw_daily_history *h, const char *payload)
{
    if (h->unresolved == 0) {
        return; /* nothing to learn: skip the parse */
    }
    json_t *rec = json_loads(payload, 0, NULL);
    const char *key = str_of(rec, "key");
    struct carried *c = key ? find_kept(h, key) : NULL;
    if (c && !c->later) {
        h->unresolved -= unresolved(c);
        c->later = true;
    }
    json_decref(rec);
}

int gw_daily_history_add(struct gw_daily_history *h, int64_t ts_ms, const char *payload)
{
    if (payload == NULL) {
        return 0;
    }
    if (ts_ms < h->start) {
        return fold_before(h, payload);
    }
    mark_later(h, payload);
    if (ts_ms >= h->end) {
        return 0;
    }
    if (h->nev == GW_DAILY_MAX_EVENTS) {
        return -E2BIG;
    }
    if (h->nev == h->capev) {
        int cap = h->capev ? h->capev * 2 : 64;
        struct gw_daily_event *p = realloc(h->ev, (size_t)cap * sizeof(*p));
        if (p == NULL) {
            return -ENOMEM;
        }
        h->ev = p;
        h->capev = cap;
    }
    char *copy = strdup(payload);
    if (copy == NULL) {
        return -ENOMEM;
    }
    h->ev[h->nev++] = (struct gw_daily_event){ts_ms, copy};
    return 0;
}

bool gw_daily_history_enough(const struct gw_daily_history *h, int64_t ts_ms)
{
    return ts_ms >= h->end + GW_DAILY_SLACK_MS && h->unresolved == 0;
}

int gw_daily_history_input(struct gw_daily_history *h, struct gw_daily_input *in)
{
    free(h->open);
    h->open = malloc((size_t)(h->nkept ? h->nkept : 1) * sizeof(*h->open));
    if (h->open == NULL) {
        return -ENOMEM;
    }
    int n = 0;
    for (int i = 0; i < h->nkept; i++) {
        if (!unresolved(&h->kept[i])) {
            h->open[n++] = h->kept[i].payload;
        }
    }
    in->open_before = h->open;
    in->nopen_before = n;
    in->events = h->ev;
    in->nevents = h->nev;
    return 0;
}
