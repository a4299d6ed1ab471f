/*
 * Notifiers: deliver one message to one channel of a contact, on the loop,
 * never blocking it. Every send is independent: its own curl easy handle and
 * its own timer, all transfers side by side on the shared gw_curl multi, so a
 * webhook that hangs or answers 500 delays no other send.
 *
 *   mqtt     handed to the core (mqtt_publish callback) with the topic under P/
 *            and the JSON payload; the core makes it a durable outbox record, so
 *            there is one attempt and no retry here.
 *   webhook  HTTP(S) POST of JSON: our payload (format json) or a WeCom /
 *            DingTalk group-robot text message. 2xx is success, except that
 *            WeCom and DingTalk answer 200 {"errcode":N,"errmsg":...} and
 *            errcode != 0 is a failure. Transport errors, timeouts, 408, 429 and
 *            5xx are retried with backoff; other 4xx and 3xx are not.
 *   email    SMTP through libcurl on the same multi: smtps:// (implicit TLS) or
 *            smtp:// with STARTTLS required (never in clear), login when a
 *            username is set, a text/plain UTF-8 message (RFC 2047 subject,
 *            base64 body). Retried like webhooks; a 5xx SMTP reply is final.
 *
 * Loop thread only.
 */
#ifndef GW_NOTIFY_H
#define GW_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

/*
 * What to say. Strings are UTF-8 and copied by gw_notifier_send. The core
 * fills it from notify_text.h's gw_notify_texts (text, json, wecom, dingtalk,
 * subject, email_body); a message of text (and json) alone works too.
 */
struct gw_message {
    const char *json;     /* our payload {"seq","key",...}: mqtt channels and json webhooks */
    const char *text;     /* the human text: wecom/dingtalk content, email body and subject */
    const char *wecom;    /* a ready WeCom body; NULL: {"msgtype":"text",...} built from text */
    const char *dingtalk; /* a ready DingTalk body; NULL: built from text */
    const char *subject;  /* email subject; NULL: the first line of text */
    const char *body;     /* email body; NULL: text */
};

/*
 * The core's MQTT hand-off: publish `json` on P/<topic_suffix> (the channel's
 * target, e.g. "notify/facilities"). 0 when accepted (queued durably), else a
 * negative errno. Called on the loop, never from inside gw_notifier_send.
 */
typedef int (*gw_notify_mqtt_fn)(void *core, const char *topic_suffix, const char *json);

/*
 * One send is over: ok, or why not (`error`, a short human text; NULL when
 * ok), after `attempts` attempts. Runs exactly once for every send that
 * gw_notifier_send accepted, on the loop, never from inside gw_notifier_send.
 */
typedef void (*gw_notify_done_fn)(void *ctx, bool ok, const char *error, int attempts);

struct gw_notifier;

/*
 * The smtp section of cfg is copied (cfg need not outlive the notifier); a
 * missing or unusable one makes every email send fail with the reason.
 * mqtt_publish may be NULL when no mqtt channel is ever sent to (such sends
 * then fail). NULL after logging why.
 */
struct gw_notifier *gw_notifier_new(uv_loop_t *loop, const struct gw_config *cfg,
                                    gw_notify_mqtt_fn mqtt_publish, void *core);

/*
 * Config reload: take the smtp section of cfg for the sends started from now
 * on (those running keep what they started with). -EINVAL (logged) when it is
 * configured but unusable.
 */
int gw_notifier_reconfigure(struct gw_notifier *n, const struct gw_config *cfg);

/*
 * Start delivering msg over ch. ch and msg are copied: they need not outlive
 * the call. 0: done will run once. -EINVAL: the message lacks what the channel
 * needs (json for mqtt/json webhooks, text or a ready body otherwise; text
 * that is not UTF-8 for a robot body) or the channel is malformed;
 * -ESHUTDOWN: closing; -ENOMEM. done does not run when an error is returned.
 * Faults of the config rather than the message (no usable smtp section, no
 * mqtt_publish) are reported through done with 0 attempts.
 */
int gw_notifier_send(struct gw_notifier *n, const struct gw_channel_cfg *ch,
                     const struct gw_message *msg, gw_notify_done_fn done, void *ctx);

/* Counters per channel kind, for P/metrics. */
struct gw_notify_counters {
    uint64_t sent;    /* sends that ended ok */
    uint64_t failed;  /* sends that ended failed (after their last attempt, or cancelled) */
    uint64_t retries; /* attempts after the first */
};

void gw_notifier_counters(const struct gw_notifier *n, enum gw_channel_kind kind,
                          struct gw_notify_counters *out);

/* Sends not finished yet. */
int gw_notifier_pending(const struct gw_notifier *n);

/*
 * Cancel every send still running (their done runs now, with ok = false and
 * "notifier closing"), close the handles; `closed` (may be NULL) runs on the
 * loop once all are closed and the notifier is freed.
 */
void gw_notifier_close(struct gw_notifier *n, void (*closed)(void *ctx), void *ctx);

/* ---- pure helpers, exposed for tests and for the text module ---- */

/*
 * {"msgtype":"text","text":{"content":TEXT}}: the WeCom and DingTalk
 * group-robot text message. malloc'd; NULL on bad UTF-8 or no memory.
 */
char *gw_notify_robot_text_body(const char *text);

/*
 * The whole RFC 5322 message, CRLF line endings: Date (now_s in local time),
 * From (`from` as configured: "Name <addr>" or "addr"), To, Subject (RFC 2047
 * B-encoded when not ASCII), Message-ID (unique via `unique`), MIME-Version,
 * Content-Type text/plain; charset=UTF-8, Content-Transfer-Encoding base64.
 * malloc'd; NULL when an address holds a control character or '<' '>' in the
 * wrong place, or no memory.
 */
char *gw_notify_email_message(const char *from, const char *to, const char *subject,
                              const char *body, int64_t now_s, uint64_t unique);

/* The bare address of "Name <addr>" or "addr" into out; false when malformed. */
bool gw_notify_email_address(const char *from, char *out, size_t size);

#endif
