/*
 * What a notification says: the human text in the site's language, and the
 * bodies each channel sends (our JSON payload, WeCom and DingTalk group-robot
 * text messages, an email subject and plain-text body). Pure: no I/O; times
 * are shown in the process's local time zone (main sets TZ to site.timezone;
 * tests set TZ themselves), "today" is judged against now_ms.
 *
 * zh-CN (the default; any language not starting with "en"):
 *   【火警】A栋 3层 301室 烟感报警 (A-3F-smoke-301) 10:42:05 起，未确认
 *   第1级通知。确认: campusgw-ctl ack A-3F-smoke-301/smoke-detected --by 姓名
 * en:
 *   [FIRE ALARM] Building A, floor 3, room 301: smoke detected (A-3F-smoke-301)
 *   since 10:42:05, unacknowledged
 *   Level 1. Acknowledge: campusgw-ctl ack A-3F-smoke-301/smoke-detected --by NAME
 * (the en headline is one line). The first line is the headline; the second says
 * the level and how to acknowledge, and is left out when there is nothing to
 * acknowledge. A number shows as "当前 0.08 MPa，低于 0.1 MPa，" / "value 0.08 MPa,
 * below 0.1 MPa, "; an offline rule's value (seconds silent) as "已 62 分钟无数据，"
 * / "silent for 62 min, "; a bool (smoke = true) is not shown: the rule name
 * says it. The time is HH:MM:SS, with the date (YYYY-MM-DD) in front when not
 * today.
 *
 * An overdue hazard (f->hazard set):
 *   【隐患逾期】A栋 1层 东楼梯 消火栓压力低 (HZ-20261128-001) 整改期限 2026-12-05 18:00:00
 *   已过，责任人 王工，未确认
 *   [HAZARD OVERDUE] Building A, floor 1, east stair: hydrant pressure low (HZ-20261128-001)
 *   deadline 2026-12-05 18:00:00 passed, responsible Wang, unacknowledged
 * (each one line), then the level line as for alarms; its clear says "逾期已解除" / "no longer
 * overdue".
 */
#ifndef GW_NOTIFY_TEXT_H
#define GW_NOTIFY_TEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "alarm.h"
#include "config.h"
#include "escalation.h"
#include "reading.h"

/* WeCom's documented limit for a text message's content (UTF-8 bytes); we hold DingTalk to it too.
 */
#define GW_ROBOT_CONTENT_MAX 2048

enum gw_lang { GW_LANG_ZH, GW_LANG_EN };

/* "en", "en-US", ... -> EN; "zh-CN", NULL, anything else -> ZH. */
enum gw_lang gw_notify_text_lang(const char *language);

/* An overdue hazard (the system alarm "<hazard id>/overdue", hazard_desk.h): what its text names.
 * Its place goes in the fields' building, floor and zone. */
struct gw_notify_hazard {
    const char *id;
    const char *description;
    const char *responsible; /* "" or NULL: nobody named yet */
    int64_t deadline_ms;
};

/* Everything a text may show. NULL strings and a NONE value are left out. */
struct gw_notify_fields {
    enum gw_esc_kind kind;
    enum gw_alarm_class alarm_class;
    bool test;
    int level; /* 1-based; 0: not shown */
    const char *key;
    const char *rule;   /* the rule's name */
    const char *sensor; /* the sensor's id */
    const char *building, *floor, *zone;
    struct gw_value value;
    const char *unit; /* of the rule's point; NULL: none */
    enum gw_rule_cond cond;
    bool has_threshold; /* above / below / rate_* rules */
    double threshold;
    int64_t since_ms;   /* raised at; 0: not shown */
    int64_t cleared_ms; /* CLEAR: when; 0: now */
    enum gw_alarm_state state;
    const char *site;                     /* the school's name, for chat and email bodies */
    const struct gw_esc_summary *summary; /* SUMMARY */
    char source[GW_KEY_MAX]; /* a system alarm's source (its key up to '/'); sensor points here */
    /* Set by the caller for an overdue hazard: the text names the hazard, where it is, who is
     * responsible and the deadline that passed (zh "【隐患逾期】", en "[HAZARD OVERDUE]"). */
    const struct gw_notify_hazard *hazard;
};

/*
 * Fill f for notification n about `alarm` (NULL for a SUMMARY) from cfg: rule
 * name, condition and threshold, sensor id and location, the unit of the
 * rule's point (from the sensor's profile), site name. An index out of range
 * leaves those fields NULL. A system alarm (alarm->system) gives its own name
 * as the rule, the source part of its key as the sensor (in f->source), no
 * threshold and no location. Without n, class and test come from the alarm.
 * f points into cfg, alarm, n and itself: they must outlive it, and a copy of
 * f for a system alarm must set sensor = copy.source again.
 */
void gw_notify_text_fields(struct gw_notify_fields *f, const struct gw_config *cfg,
                           const struct gw_alarm *alarm, const struct gw_esc_notification *n);

/* The text (headline, then level and how to acknowledge). malloc'd; NULL when out of memory. */
char *gw_notify_text_message(const struct gw_notify_fields *f, enum gw_lang lang, int64_t now_ms);

/*
 * Our payload for P/notify/<contact> and json webhooks (DESIGN.md):
 * {"seq","key","class","level","text","sensor","location"} plus "kind"
 * (raise|repeat|clear|summary), "test", "state", "raised_at" (RFC 3339 UTC);
 * location is {"building","floor","zone"} (those known) or null; key and
 * sensor are null for a summary, which adds "keys" (the listed ones) and
 * "total". malloc'd; NULL when out of memory or the text is not UTF-8.
 */
char *gw_notify_text_json(uint64_t seq, const struct gw_notify_fields *f, const char *text);

/*
 * Group-robot text messages. WeCom (work.weixin.qq.com group robot
 * "消息类型及数据格式 / 文本类型"): {"msgtype":"text","text":{"content":...}},
 * content at most 2048 bytes of UTF-8. DingTalk (open.dingtalk.com custom
 * robot, text type): {"msgtype":"text","text":{"content":...}}. content is the
 * text with a last line "— campusgw · <site>", so a DingTalk robot secured by
 * a custom keyword can use "campusgw"; cut at a character boundary with "…"
 * to GW_ROBOT_CONTENT_MAX bytes. malloc'd; NULL when out of memory or not UTF-8.
 */
char *gw_notify_text_wecom(const struct gw_notify_fields *f, const char *text);
char *gw_notify_text_dingtalk(const struct gw_notify_fields *f, const char *text);

/* "[campusgw] 【火警】A-3F-smoke-301 烟感报警" (UTF-8, one line; notify.c encodes it). */
char *gw_notify_text_subject(const struct gw_notify_fields *f, enum gw_lang lang);

/* The plain-text body: the text, then one labelled line per detail, full dates. */
char *gw_notify_text_email_body(const struct gw_notify_fields *f, enum gw_lang lang,
                                const char *text);

/* All of the above at once, each malloc'd; gw_notify_text_release frees them. */
struct gw_notify_texts {
    char *text;
    char *json;
    char *wecom;
    char *dingtalk;
    char *subject;
    char *email_body;
};

/* 0, or -ENOMEM / -EINVAL (then every member is NULL). */
int gw_notify_text_build(struct gw_notify_texts *out, const struct gw_notify_fields *f,
                         const char *language, uint64_t seq, int64_t now_ms);
void gw_notify_text_release(struct gw_notify_texts *t);

#endif
