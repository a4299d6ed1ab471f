#include "notify_text.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "text.h"
#include "timefmt.h"

#define ELLIPSIS "\xe2\x80\xa6" /* … */

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 character at s (n bytes left), 0 when malformed. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80) {
        return 1;
    }
    size_t len;
    unsigned min;
    unsigned cp;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2, min = 0x80, cp = s[0] & 0x1fu;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, min = 0x800, cp = s[0] & 0x0fu;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

/* s with each malformed byte replaced by '?' and control characters other than \n by ' '. */
static void sb_add_clean(struct gw_sb *b, const char *s, bool keep_newlines)
{
    if (s == NULL) {
        return;
    }
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char(u + i, n - i);
        if (k == 0) {
            gw_sb_add(b, "?");
            i++;
        } else if (k == 1 && (u[i] < 0x20 || u[i] == 0x7f) && !(keep_newlines && u[i] == '\n')) {
            gw_sb_add(b, " ");
            i++;
        } else {
            gw_sb_addn(b, s + i, k);
            i += k;
        }
    }
}

/* A clean copy (see sb_add_clean); NULL when out of memory. */
static char *clean_dup(const char *s, bool keep_newlines)
{
    struct gw_sb b = {0};
    sb_add_clean(&b, s ? s : "", keep_newlines);
    return gw_sb_finish(&b);
}

/* The longest prefix of s no longer than max bytes that ends on a character boundary. */
static size_t utf8_cut(const char *s, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    while (i < n) {
        size_t k = utf8_char(u + i, n - i);
        if (k == 0) {
            k = 1;
        }
        if (i + k > max) {
            break;
        }
        i += k;
    }
    return i;
}

/* ---- words ---- */

enum gw_lang gw_notify_text_lang(const char *language)
{
    if (language && (language[0] == 'e' || language[0] == 'E') &&
        (language[1] == 'n' || language[1] == 'N') &&
        (language[2] == '\0' || language[2] == '-' || language[2] == '_')) {
        return GW_LANG_EN;
    }
    return GW_LANG_ZH;
}

static const char *const class_key[GW_NCLASSES] = {"alarm", "supervisory", "trouble"};
static const char *const class_zh[GW_NCLASSES] = {"火警", "监管", "故障"};
static const char *const class_en[GW_NCLASSES] = {"FIRE ALARM", "SUPERVISORY", "TROUBLE"};
static const char *const class_zh_short[GW_NCLASSES] = {"火警", "监管", "故障"};
static const char *const class_en_short[GW_NCLASSES] = {"fire", "supervisory", "trouble"};

static int cls_index(enum gw_alarm_class c)
{
    return (int)c >= 0 && (int)c < GW_NCLASSES ? (int)c : GW_CLASS_TROUBLE;
}

static const char *state_label(enum gw_alarm_state s, enum gw_lang lang)
{
    bool zh = lang == GW_LANG_ZH;
    switch (s) {
    case GW_ALARM_NORMAL:
        return zh ? "已恢复" : "cleared";
    case GW_ALARM_UNACKED:
        return zh ? "未确认" : "unacknowledged";
    case GW_ALARM_ACKED:
        return zh ? "已确认" : "acknowledged";
    case GW_ALARM_RTN_UNACKED:
        return zh ? "已恢复，未确认" : "cleared, unacknowledged";
    case GW_ALARM_SHELVED:
        return zh ? "已搁置" : "shelved";
    case GW_ALARM_OUT_OF_SERVICE:
        return zh ? "停用检修中" : "out of service";
    }
    return zh ? "未知" : "unknown";
}

static bool needs_ack(enum gw_alarm_state s)
{
    return s == GW_ALARM_UNACKED || s == GW_ALARM_RTN_UNACKED;
}

static bool present(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* "A", "12", "B1", "-1": a code, to which 栋 / 层 (or "Building " / "floor ") is added. */
static bool is_code(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 4) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

static bool has_location(const struct gw_notify_fields *f)
{
    return present(f->building) || present(f->floor) || present(f->zone);
}

/* zh "A栋 3层 301室", en "Building A, floor 3, room 301". */
static void add_location(struct gw_sb *b, const struct gw_notify_fields *f, enum gw_lang lang)
{
    const char *sep = lang == GW_LANG_ZH ? " " : ", ";
    bool first = true;
    if (present(f->building)) {
        if (lang == GW_LANG_EN && is_code(f->building)) {
            gw_sb_add(b, "Building ");
        }
        sb_add_clean(b, f->building, false);
        if (lang == GW_LANG_ZH && is_code(f->building)) {
            gw_sb_add(b, "栋");
        }
        first = false;
    }
    if (present(f->floor)) {
        gw_sb_add(b, first ? "" : sep);
        if (lang == GW_LANG_EN && is_code(f->floor)) {
            gw_sb_add(b, "floor ");
        }
        sb_add_clean(b, f->floor, false);
        if (lang == GW_LANG_ZH && is_code(f->floor)) {
            gw_sb_add(b, "层");
        }
        first = false;
    }
    if (present(f->zone)) {
        gw_sb_add(b, first ? "" : sep);
        sb_add_clean(b, f->zone, false);
    }
}

/* Local time: "10:42:05", or "2026-11-28 10:42:05" when not the day of now (or always). */
static void format_local(int64_t ms, int64_t now_ms, bool always_date, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000 - (ms % 1000 < 0));
    time_t now = (time_t)(now_ms / 1000 - (now_ms % 1000 < 0));
    struct tm tm, tn;
    if (localtime_r(&t, &tm) == NULL || localtime_r(&now, &tn) == NULL) {
        snprintf(out, size, "?");
        return;
    }
    bool today = tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday;
    if (strftime(out, size, (today && !always_date) ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm) == 0) {
        snprintf(out, size, "?");
    }
}

static void add_number(struct gw_sb *b, double v)
{
    if (!isfinite(v)) {
        gw_sb_add(b, "?");
        return;
    }
    gw_sb_printf(b, "%.10g", v + 0.0); /* + 0.0: no "-0" */
}

static void add_unit(struct gw_sb *b, const struct gw_notify_fields *f, enum gw_lang lang)
{
    bool rate = f->cond == GW_COND_RATE_ABOVE || f->cond == GW_COND_RATE_BELOW;
    if (present(f->unit)) {
        gw_sb_add(b, " ");
        sb_add_clean(b, f->unit, false);
    }
    if (rate) {
        gw_sb_add(b, lang == GW_LANG_ZH ? "/分钟" : "/min");
    }
}

static void add_duration(struct gw_sb *b, double secs, enum gw_lang lang)
{
    bool zh = lang == GW_LANG_ZH;
    long long s = isfinite(secs) && secs > 0 ? (long long)(secs < 1e12 ? secs : 1e12) : 0;
    if (s < 120) {
        gw_sb_printf(b, zh ? "%lld 秒" : "%lld s", s);
    } else if (s < 7200) {
        gw_sb_printf(b, zh ? "%lld 分钟" : "%lld min", s / 60);
    } else if (s < 172800) {
        gw_sb_printf(b, zh ? "%lld 小时" : "%lld h", s / 3600);
    } else {
        gw_sb_printf(b, zh ? "%lld 天" : "%lld d", s / 86400);
    }
}

static bool shows_value(const struct gw_notify_fields *f)
{
    return f->value.type == GW_VALUE_NUMBER || f->value.type == GW_VALUE_STRING;
}

/*
 * The value phrase, each part followed by the separator:
 * zh "当前 0.08 MPa，低于 0.1 MPa，", en "value 0.08 MPa, below 0.1 MPa, ";
 * offline zh "已 62 分钟无数据，", en "silent for 62 min, ".
 */
static void add_value(struct gw_sb *b, const struct gw_notify_fields *f, enum gw_lang lang)
{
    bool zh = lang == GW_LANG_ZH;
    const char *sep = zh ? "，" : ", ";
    if (!shows_value(f)) {
        return;
    }
    if (f->cond == GW_COND_OFFLINE && f->value.type == GW_VALUE_NUMBER) {
        gw_sb_add(b, zh ? "已 " : "silent for ");
        add_duration(b, f->value.num, lang);
        gw_sb_add(b, zh ? "无数据" : "");
        gw_sb_add(b, sep);
        return;
    }
    bool rate = f->cond == GW_COND_RATE_ABOVE || f->cond == GW_COND_RATE_BELOW;
    gw_sb_add(b, zh ? (rate ? "变化率 " : "当前 ") : (rate ? "rate " : "value "));
    if (f->value.type == GW_VALUE_STRING) {
        sb_add_clean(b, f->value.str, false);
        gw_sb_add(b, sep);
        return;
    }
    add_number(b, f->value.num);
    add_unit(b, f, lang);
    gw_sb_add(b, sep);
    if (f->has_threshold) {
        bool above = f->cond == GW_COND_ABOVE || f->cond == GW_COND_RATE_ABOVE;
        gw_sb_add(b, zh ? (above ? "高于 " : "低于 ") : (above ? "above " : "below "));
        add_number(b, f->threshold);
        add_unit(b, f, lang);
        gw_sb_add(b, sep);
    }
}

static void add_tag(struct gw_sb *b, enum gw_alarm_class cls, bool test, enum gw_lang lang)
{
    int c = cls_index(cls);
    if (lang == GW_LANG_ZH) {
        gw_sb_printf(b, "【%s%s】", class_zh[c], test ? "·测试" : "");
    } else {
        gw_sb_printf(b, "[%s%s]", class_en[c], test ? " TEST" : "");
    }
}

/* zh "A栋 3层 301室 烟感报警 (A-3F-smoke-301)", en "Building A, ...: smoke detected (A-3F-...)". */
static void add_what(struct gw_sb *b, const struct gw_notify_fields *f, enum gw_lang lang)
{
    bool any = false;
    if (has_location(f)) {
        add_location(b, f, lang);
        gw_sb_add(b, lang == GW_LANG_ZH ? " " : ": ");
    }
    if (present(f->rule)) {
        sb_add_clean(b, f->rule, false);
        any = true;
    }
    const char *id = present(f->sensor) ? f->sensor : f->key;
    if (present(id)) {
        gw_sb_add(b, any ? " (" : "(");
        sb_add_clean(b, id, false);
        gw_sb_add(b, ")");
    }
}

static void add_ack_hint(struct gw_sb *b, const struct gw_notify_fields *f, enum gw_lang lang)
{
    gw_sb_add(b, lang == GW_LANG_ZH ? "确认: campusgw-ctl ack " : "Acknowledge: campusgw-ctl ack ");
    sb_add_clean(b, present(f->key) ? f->key : "KEY", false);
    gw_sb_add(b, lang == GW_LANG_ZH ? " --by 姓名" : " --by NAME");
}

static void add_summary_counts(struct gw_sb *b, const struct gw_esc_summary *s, enum gw_lang lang)
{
    bool zh = lang == GW_LANG_ZH;
    bool first = true;
    gw_sb_add(b, zh ? "（" : " (");
    for (int c = 0; c < GW_NCLASSES; c++) {
        if (s->per_class[c] > 0) {
            gw_sb_printf(b, "%s%s %d", first ? "" : (zh ? "，" : ", "),
                         zh ? class_zh_short[c] : class_en_short[c], s->per_class[c]);
            first = false;
        }
    }
    if (s->tests > 0) {
        gw_sb_printf(b, zh ? "，其中测试 %d" : ", %d test", s->tests);
    }
    gw_sb_add(b, zh ? "）" : ")");
}

static void add_summary_keys(struct gw_sb *b, const struct gw_esc_summary *s, enum gw_lang lang,
                             const char *sep)
{
    for (int i = 0; i < s->nlisted; i++) {
        gw_sb_add(b, i ? sep : "");
        sb_add_clean(b, s->keys[i], false);
    }
    int more = s->total - s->nlisted;
    if (more > 0) {
        gw_sb_printf(b, lang == GW_LANG_ZH ? " 及另外 %d 个" : " and %d more", more);
    }
}

static char *summary_text(const struct gw_notify_fields *f, enum gw_lang lang, int64_t now_ms)
{
    const struct gw_esc_summary *s = f->summary;
    struct gw_sb b = {0};
    char since[40];
    format_local(s->first_ms, now_ms, false, since, sizeof(since));
    if (lang == GW_LANG_ZH) {
        gw_sb_printf(&b, "【报警风暴】%s 起 %d 个新报警", since, s->total);
        add_summary_counts(&b, s, lang);
        gw_sb_add(&b, "：");
        add_summary_keys(&b, s, lang, "、");
        gw_sb_add(&b, "\n逐个查看和确认: campusgw-ctl alarms");
    } else {
        gw_sb_printf(&b, "[ALARM STORM] %d new alarm%s since %s", s->total,
                     s->total == 1 ? "" : "s", since);
        add_summary_counts(&b, s, lang);
        gw_sb_add(&b, ": ");
        add_summary_keys(&b, s, lang, ", ");
        gw_sb_add(&b, "\nSee and acknowledge each: campusgw-ctl alarms");
    }
    return gw_sb_finish(&b);
}

/* zh "【隐患逾期】A栋 1层 东楼梯 描述 (HZ-...) 整改期限 ... 已过，责任人 王工，未确认". */
static void add_hazard_headline(struct gw_sb *b, const struct gw_notify_fields *f,
                                enum gw_lang lang, int64_t now_ms)
{
    const struct gw_notify_hazard *h = f->hazard;
    bool zh = lang == GW_LANG_ZH;
    char when[40];
    gw_sb_add(b, zh ? "【隐患逾期】" : "[HAZARD OVERDUE] ");
    if (has_location(f)) {
        add_location(b, f, lang);
        gw_sb_add(b, zh ? " " : ": ");
    }
    sb_add_clean(b, h->description, false);
    gw_sb_add(b, " (");
    sb_add_clean(b, h->id, false);
    gw_sb_add(b, ") ");
    if (f->kind == GW_ESC_CLEAR) {
        format_local(f->cleared_ms ? f->cleared_ms : now_ms, now_ms, false, when, sizeof(when));
        gw_sb_printf(b, zh ? "%s 逾期已解除" : "no longer overdue since %s", when);
        if (needs_ack(f->state)) {
            gw_sb_add(b, zh ? "，未确认" : ", unacknowledged");
        }
        return;
    }
    format_local(h->deadline_ms, now_ms, true, when, sizeof(when));
    gw_sb_printf(b, zh ? "整改期限 %s 已过，" : "deadline %s passed, ", when);
    if (present(h->responsible)) {
        gw_sb_add(b, zh ? "责任人 " : "responsible ");
        sb_add_clean(b, h->responsible, false);
    } else {
        gw_sb_add(b, zh ? "尚未指定责任人" : "nobody responsible yet");
    }
    gw_sb_add(b, zh ? "，" : ", ");
    gw_sb_add(b, state_label(f->state, lang));
}

char *gw_notify_text_message(const struct gw_notify_fields *f, enum gw_lang lang, int64_t now_ms)
{
    if (f == NULL) {
        return NULL;
    }
    if (f->kind == GW_ESC_SUMMARY) {
        if (f->summary == NULL) {
            return NULL;
        }
        return summary_text(f, lang, now_ms);
    }
    bool zh = lang == GW_LANG_ZH;
    bool clear = f->kind == GW_ESC_CLEAR;
    struct gw_sb b = {0};
    char when[40];
    if (f->hazard) {
        add_hazard_headline(&b, f, lang, now_ms);
    } else {
        add_tag(&b, f->alarm_class, f->test, lang);
        if (!zh) {
            gw_sb_add(&b, " ");
        }
        add_what(&b, f, lang);
        gw_sb_add(&b, " ");
        if (!clear) {
            add_value(&b, f, lang);
        }
        if (f->since_ms != 0) {
            format_local(f->since_ms, now_ms, false, when, sizeof(when));
            gw_sb_printf(&b, zh ? "%s 起，" : "since %s, ", when);
        }
        if (clear) {
            format_local(f->cleared_ms ? f->cleared_ms : now_ms, now_ms, false, when, sizeof(when));
            gw_sb_printf(&b, zh ? "%s 已恢复" : "cleared %s", when);
            if (needs_ack(f->state)) {
                gw_sb_add(&b, zh ? "，未确认" : ", unacknowledged");
            }
        } else {
            gw_sb_add(&b, state_label(f->state, lang));
        }
    }

    /* The second line: the level, and how to acknowledge while that is wanted. */
    bool level = !clear && f->level > 0;
    bool ack = needs_ack(f->state);
    if (level || ack) {
        gw_sb_add(&b, "\n");
    }
    if (level) {
        bool repeat = f->kind == GW_ESC_REPEAT;
        if (zh) {
            gw_sb_printf(&b, "第%d级%s", f->level, repeat ? "重复提醒" : "通知");
        } else {
            gw_sb_printf(&b, "Level %d%s", f->level, repeat ? " reminder" : "");
        }
        if (ack) {
            gw_sb_add(&b, zh ? "。" : ". ");
        }
    }
    if (ack) {
        add_ack_hint(&b, f, lang);
    }
    return gw_sb_finish(&b);
}

/* ---- fields from the config ---- */

static const char *point_unit(const struct gw_config *cfg, const struct gw_sensor_cfg *s,
                              const char *point)
{
    if (point == NULL || s->profile_index < 0 || s->profile_index >= cfg->nprofiles ||
        cfg->profiles == NULL) {
        return NULL;
    }
    const struct gw_profile_cfg *p = &cfg->profiles[s->profile_index];
    for (int i = 0; i < p->npoints && p->points; i++) {
        if (p->points[i].name && strcmp(p->points[i].name, point) == 0) {
            return p->points[i].unit;
        }
    }
    for (int i = 0; i < p->nfields && p->fields; i++) {
        if (p->fields[i].name && strcmp(p->fields[i].name, point) == 0) {
            return p->fields[i].unit;
        }
    }
    for (int i = 0; i < p->nvalues && p->values; i++) {
        if (p->values[i].name && strcmp(p->values[i].name, point) == 0) {
            return p->values[i].unit;
        }
    }
    return NULL;
}

void gw_notify_text_fields(struct gw_notify_fields *f, const struct gw_config *cfg,
                           const struct gw_alarm *alarm, const struct gw_esc_notification *n)
{
    memset(f, 0, sizeof(*f));
    f->cond = GW_COND_EQUALS;
    f->state = GW_ALARM_UNACKED;
    if (n) {
        f->kind = n->kind;
        f->alarm_class = n->alarm_class;
        f->test = n->test;
        f->level = n->level;
        f->key = n->key[0] ? n->key : NULL;
        f->since_ms = n->raised_at_ms;
        f->summary = n->kind == GW_ESC_SUMMARY ? n->summary : NULL;
        if (n->kind == GW_ESC_CLEAR) {
            f->cleared_ms = n->due_ms;
        }
    }
    if (cfg) {
        f->site = cfg->site.name;
    }
    if (alarm == NULL) {
        return;
    }
    f->key = alarm->key;
    f->value = alarm->value;
    f->state = alarm->state;
    if (alarm->raised_at_ms) {
        f->since_ms = alarm->raised_at_ms;
    }
    if (alarm->cleared_at_ms) {
        f->cleared_ms = alarm->cleared_at_ms;
    }
    if (n == NULL) {
        f->test = alarm->test;
    }
    if (alarm->system) {
        /* The gateway's own alarm: no rule or sensor in cfg; it names itself. */
        f->rule = alarm->name[0] ? alarm->name : NULL;
        if (n == NULL) {
            f->alarm_class = alarm->alarm_class;
        }
        const char *slash = memchr(alarm->key, '/', strnlen(alarm->key, sizeof(alarm->key)));
        if (slash != NULL && slash > alarm->key) {
            snprintf(f->source, sizeof(f->source), "%.*s", (int)(slash - alarm->key), alarm->key);
            f->sensor = f->source;
        }
        return;
    }
    if (cfg == NULL) {
        return;
    }
    const struct gw_rule_cfg *rule = NULL;
    if (alarm->rule_index >= 0 && alarm->rule_index < cfg->nrules && cfg->rules) {
        rule = &cfg->rules[alarm->rule_index];
        f->rule = rule->name;
        f->cond = rule->cond;
        f->has_threshold = rule->cond == GW_COND_ABOVE || rule->cond == GW_COND_BELOW ||
                           rule->cond == GW_COND_RATE_ABOVE || rule->cond == GW_COND_RATE_BELOW;
        f->threshold = rule->threshold;
        if (n == NULL) {
            f->alarm_class = rule->alarm_class;
        }
    }
    if (alarm->sensor_index >= 0 && alarm->sensor_index < cfg->nsensors && cfg->sensors) {
        const struct gw_sensor_cfg *s = &cfg->sensors[alarm->sensor_index];
        f->sensor = s->id;
        f->building = s->location.building;
        f->floor = s->location.floor;
        f->zone = s->location.zone;
        if (rule) {
            f->unit = point_unit(cfg, s, rule->point);
        }
    }
}

/* ---- bodies ---- */

static json_t *jstr(const char *s)
{
    if (s == NULL) {
        return json_null();
    }
    char *c = clean_dup(s, true);
    json_t *j = c ? json_string(c) : NULL;
    free(c);
    return j;
}

char *gw_notify_text_json(uint64_t seq, const struct gw_notify_fields *f, const char *text)
{
    if (f == NULL || text == NULL) {
        return NULL;
    }
    bool summary = f->kind == GW_ESC_SUMMARY;
    json_t *location = json_null();
    if (!summary && has_location(f)) {
        location = json_object();
        if (present(f->building)) {
            json_object_set_new(location, "building", jstr(f->building));
        }
        if (present(f->floor)) {
            json_object_set_new(location, "floor", jstr(f->floor));
        }
        if (present(f->zone)) {
            json_object_set_new(location, "zone", jstr(f->zone));
        }
    }
    char raised[40];
    gw_format_rfc3339(f->since_ms, raised, sizeof(raised));
    json_t *root = json_pack(
        "{sI so ss si so so so ss sb so so}", "seq", (json_int_t)seq, "key",
        summary ? json_null() : jstr(f->key), "class", class_key[cls_index(f->alarm_class)],
        "level", f->level, "text", jstr(text), "sensor", summary ? json_null() : jstr(f->sensor),
        "location", location, "kind", gw_esc_kind_name(f->kind), "test", f->test, "state",
        summary ? json_null() : json_string(gw_alarm_state_name(f->state)), "raised_at",
        f->since_ms ? json_string(raised) : json_null());
    if (root && !summary && f->hazard) {
        char deadline[40];
        gw_format_rfc3339(f->hazard->deadline_ms, deadline, sizeof(deadline));
        json_object_set_new(root, "hazard",
                            json_pack("{so so so ss}", "id", jstr(f->hazard->id), "description",
                                      jstr(f->hazard->description), "responsible",
                                      jstr(f->hazard->responsible ? f->hazard->responsible : ""),
                                      "deadline", deadline));
    }
    if (root && summary && f->summary) {
        json_t *keys = json_array();
        for (int i = 0; i < f->summary->nlisted; i++) {
            json_array_append_new(keys, jstr(f->summary->keys[i]));
        }
        json_object_set_new(root, "keys", keys);
        json_object_set_new(root, "total", json_integer(f->summary->total));
    }
    if (root == NULL) {
        return NULL;
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

/* text + "\n— campusgw · <site>", within GW_ROBOT_CONTENT_MAX bytes. */
static char *robot_content(const struct gw_notify_fields *f, const char *text)
{
    struct gw_sb foot = {0};
    gw_sb_add(&foot, "\n— campusgw");
    if (present(f->site)) {
        gw_sb_add(&foot, " · ");
        sb_add_clean(&foot, f->site, false);
    }
    char *footer = gw_sb_finish(&foot);
    char *body = clean_dup(text, true);
    if (footer == NULL || body == NULL) {
        free(footer);
        free(body);
        return NULL;
    }
    size_t flen = utf8_cut(footer, GW_ROBOT_CONTENT_MAX / 2); /* a huge site name yields */
    footer[flen] = '\0';
    size_t room = GW_ROBOT_CONTENT_MAX - flen;
    struct gw_sb b = {0};
    if (strlen(body) <= room) {
        gw_sb_add(&b, body);
    } else {
        gw_sb_addn(&b, body, utf8_cut(body, room - strlen(ELLIPSIS)));
        gw_sb_add(&b, ELLIPSIS);
    }
    gw_sb_add(&b, footer);
    free(footer);
    free(body);
    return gw_sb_finish(&b);
}

static char *robot_text_body(const struct gw_notify_fields *f, const char *text)
{
    if (f == NULL || text == NULL) {
        return NULL;
    }
    char *content = robot_content(f, text);
    if (content == NULL) {
        return NULL;
    }
    json_t *root = json_pack("{ss s{ss}}", "msgtype", "text", "text", "content", content);
    free(content);
    if (root == NULL) {
        return NULL;
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

/*
 * WeCom group robot, text type: {"msgtype":"text","text":{"content":"..."}};
 * content "最长不超过2048个字节，必须是utf8编码" (WeCom 群机器人配置说明). The
 * optional mentioned_list / mentioned_mobile_list are not used.
 */
char *gw_notify_text_wecom(const struct gw_notify_fields *f, const char *text)
{
    return robot_text_body(f, text);
}

/*
 * DingTalk custom robot, text type: {"msgtype":"text","text":{"content":"..."}}
 * (open.dingtalk.com "自定义机器人接入", 消息类型 text; the optional "at" object is
 * not used). A robot secured by a custom keyword drops messages without it:
 * every content ends "— campusgw ...". DingTalk also limits a robot to 20
 * messages a minute, one more reason storms send summaries.
 */
char *gw_notify_text_dingtalk(const struct gw_notify_fields *f, const char *text)
{
    return robot_text_body(f, text);
}

char *gw_notify_text_subject(const struct gw_notify_fields *f, enum gw_lang lang)
{
    if (f == NULL) {
        return NULL;
    }
    bool zh = lang == GW_LANG_ZH;
    struct gw_sb b = {0};
    gw_sb_add(&b, "[campusgw] ");
    if (f->kind == GW_ESC_SUMMARY) {
        int total = f->summary ? f->summary->total : 0;
        if (zh) {
            gw_sb_printf(&b, "【报警风暴】%d 个新报警", total);
        } else {
            gw_sb_printf(&b, "[ALARM STORM] %d new alarm%s", total, total == 1 ? "" : "s");
        }
        return gw_sb_finish(&b);
    }
    if (f->hazard) {
        gw_sb_add(&b, zh ? "【隐患逾期】" : "[HAZARD OVERDUE] ");
        sb_add_clean(&b, f->hazard->id, false);
        gw_sb_add(&b, " ");
        /* a subject is one short line: the description's first 80 bytes */
        char *d = clean_dup(f->hazard->description, false);
        if (d) {
            size_t cut = utf8_cut(d, 80);
            gw_sb_addn(&b, d, cut);
            gw_sb_add(&b, cut < strlen(d) ? ELLIPSIS : "");
        }
        free(d);
        if (f->kind == GW_ESC_CLEAR) {
            gw_sb_add(&b, zh ? " 逾期已解除" : " no longer overdue");
        } else if (f->level > 1) {
            gw_sb_printf(&b, zh ? " 第%d级" : " (level %d)", f->level);
        }
        return gw_sb_finish(&b);
    }
    add_tag(&b, f->alarm_class, f->test, lang);
    gw_sb_add(&b, zh ? "" : " ");
    sb_add_clean(&b, present(f->sensor) ? f->sensor : (f->key ? f->key : ""), false);
    if (present(f->rule)) {
        gw_sb_add(&b, " ");
        sb_add_clean(&b, f->rule, false);
    }
    switch (f->kind) {
    case GW_ESC_RAISE:
        if (f->level > 1) {
            gw_sb_printf(&b, zh ? " 第%d级" : " (level %d)", f->level);
        }
        break;
    case GW_ESC_REPEAT:
        gw_sb_printf(&b, zh ? " 第%d级 仍未确认" : " (level %d) still unacknowledged", f->level);
        break;
    case GW_ESC_CLEAR:
        gw_sb_add(&b, zh ? " 已恢复" : " cleared");
        break;
    case GW_ESC_SUMMARY:
        break;
    }
    return gw_sb_finish(&b);
}

static void detail(struct gw_sb *b, const char *label, const char *value)
{
    if (present(value)) {
        gw_sb_add(b, label);
        sb_add_clean(b, value, false);
        gw_sb_add(b, "\n");
    }
}

char *gw_notify_text_email_body(const struct gw_notify_fields *f, enum gw_lang lang,
                                const char *text)
{
    if (f == NULL || text == NULL) {
        return NULL;
    }
    bool zh = lang == GW_LANG_ZH;
    struct gw_sb b = {0};
    sb_add_clean(&b, text, true);
    gw_sb_add(&b, "\n\n");
    detail(&b, zh ? "学校: " : "School: ", f->site);
    if (f->kind == GW_ESC_SUMMARY && f->summary) {
        gw_sb_add(&b, zh ? "报警列表:\n" : "Alarms:\n");
        for (int i = 0; i < f->summary->nlisted; i++) {
            gw_sb_add(&b, "  ");
            sb_add_clean(&b, f->summary->keys[i], false);
            gw_sb_add(&b, "\n");
        }
        int more = f->summary->total - f->summary->nlisted;
        if (more > 0) {
            gw_sb_printf(&b, zh ? "  及另外 %d 个\n" : "  and %d more\n", more);
        }
        return gw_sb_finish(&b);
    }
    int c = cls_index(f->alarm_class);
    detail(&b, zh ? "报警: " : "Alarm: ", f->key);
    gw_sb_printf(&b, "%s%s%s\n", zh ? "类别: " : "Class: ", zh ? class_zh[c] : class_en[c],
                 f->test ? (zh ? "（测试）" : " (test)") : "");
    if (has_location(f)) {
        gw_sb_add(&b, zh ? "位置: " : "Location: ");
        add_location(&b, f, lang);
        gw_sb_add(&b, "\n");
    }
    if (f->hazard) {
        char deadline[40];
        format_local(f->hazard->deadline_ms, 0, true, deadline, sizeof(deadline));
        detail(&b, zh ? "隐患: " : "Hazard: ", f->hazard->id);
        detail(&b, zh ? "描述: " : "Description: ", f->hazard->description);
        detail(&b, zh ? "责任人: " : "Responsible: ",
               present(f->hazard->responsible) ? f->hazard->responsible
                                               : (zh ? "尚未指定" : "nobody yet"));
        detail(&b, zh ? "整改期限: " : "Deadline: ", deadline);
    } else {
        detail(&b, zh ? "传感器: " : "Sensor: ", f->sensor);
        detail(&b, zh ? "规则: " : "Rule: ", f->rule);
    }
    if (shows_value(f)) {
        struct gw_sb v = {0};
        add_value(&v, f, lang);
        char *vs = gw_sb_finish(&v);
        if (vs) {
            /* Drop the trailing separator of the inline phrase. */
            size_t n = strlen(vs);
            const char *sep = zh ? "，" : ", ";
            if (n >= strlen(sep) && strcmp(vs + n - strlen(sep), sep) == 0) {
                vs[n - strlen(sep)] = '\0';
            }
            detail(&b, zh ? "数值: " : "Value: ", vs);
            free(vs);
        } else {
            b.oom = true;
        }
    }
    char when[40];
    if (f->since_ms) {
        format_local(f->since_ms, 0, true, when, sizeof(when));
        detail(&b, zh ? "起始: " : "Since: ", when);
    }
    if (f->kind == GW_ESC_CLEAR && f->cleared_ms) {
        format_local(f->cleared_ms, 0, true, when, sizeof(when));
        detail(&b, zh ? "恢复: " : "Cleared: ", when);
    }
    detail(&b, zh ? "状态: " : "State: ", state_label(f->state, lang));
    if (f->level > 0) {
        gw_sb_printf(&b, zh ? "通知级别: 第%d级\n" : "Level: %d\n", f->level);
    }
    return gw_sb_finish(&b);
}

void gw_notify_text_release(struct gw_notify_texts *t)
{
    if (t == NULL) {
        return;
    }
    free(t->text);
    free(t->json);
    free(t->wecom);
    free(t->dingtalk);
    free(t->subject);
    free(t->email_body);
    memset(t, 0, sizeof(*t));
}

int gw_notify_text_build(struct gw_notify_texts *out, const struct gw_notify_fields *f,
                         const char *language, uint64_t seq, int64_t now_ms)
{
    if (out == NULL) {
        return -EINVAL;
    }
    memset(out, 0, sizeof(*out));
    if (f == NULL || (f->kind == GW_ESC_SUMMARY && f->summary == NULL)) {
        return -EINVAL;
    }
    enum gw_lang lang = gw_notify_text_lang(language);
    out->text = gw_notify_text_message(f, lang, now_ms);
    if (out->text) {
        out->json = gw_notify_text_json(seq, f, out->text);
        out->wecom = gw_notify_text_wecom(f, out->text);
        out->dingtalk = gw_notify_text_dingtalk(f, out->text);
        out->subject = gw_notify_text_subject(f, lang);
        out->email_body = gw_notify_text_email_body(f, lang, out->text);
    }
    if (!out->text || !out->json || !out->wecom || !out->dingtalk || !out->subject ||
        !out->email_body) {
        gw_notify_text_release(out);
        return -ENOMEM;
    }
    return 0;
}
