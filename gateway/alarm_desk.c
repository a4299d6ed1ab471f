/*
 * The alarm desk (see alarm_desk.h): the pure lifecycle and escalation
 * decide, this file records and delivers.
 *
 * Order of one change: its P/events and P/alarms records are appended to the
 * store (alarm stream: committed at the end of the loop iteration, before
 * any sink reads them), the escalation state is saved with them, then the
 * notifications it makes due go out. So after a crash nobody was told of an
 * alarm that is not on disk, and a restart neither repeats nor skips a level.
 */
#include "alarm_desk.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alarm.h"
#include "alarms.h"
#include "commands.h"
#include "escalation.h"
#include "hazard_desk.h"
#include "log.h"
#include "notify.h"
#include "notify_text.h"
#include "payload.h"

#define MOD "alarm"
#define ESC_KEY_PREFIX "esc."
#define OOS_KEY_PREFIX "oos."
#define MAX_DUE 64
#define SELFTEST_KEY "gateway/path-self-test"
#define SELFTEST_FAILED_KEY "gateway/self-test-failed"
#define SELFTEST_BY "campusgw self-test"

/* One run of the path self-test: when each hop had the test alarm. */
struct selftest {
    bool running;
    int64_t next_at_ms;  /* the next scheduled run; 0 = not scheduled yet */
    int64_t started_ms;  /* wall clock, for the record */
    uint64_t started_ns; /* monotonic, for the hop times */
    uint64_t event_seq;  /* the raise's P/events record */
    uint64_t notify_seq; /* the newest P/notify record of it (0: no mqtt contact told) */
    int64_t store_ms, hub_ms, uplink_ms, notify_ms; /* -1: not yet */
    char *result;                                   /* JSON for P/status */
};

struct gw_desk {
    uv_loop_t *loop;
    const struct gw_config *cfg;
    struct gw_store *store;
    struct gw_desk_host host;
    struct gw_alarms *alarms;
    struct gw_escalation *esc;
    /* Overdue hazards ("<id>/overdue") escalate by hazards.escalation: their own escalation, on
     * a copy of the config whose supervisory levels are those (shallow: it owns nothing). */
    struct gw_escalation *hz_esc;
    struct gw_config *hz_esc_cfg;
    struct gw_hazard_desk *hazards;
    struct gw_notifier *notifier;
    uv_timer_t timer;
    struct gw_alarm_change *changes; /* room for the largest command (every rule of a sensor) */
    int max_changes;
    struct gw_esc_notification *notes; /* room for one due() batch */
    int max_notes;
    uint64_t commands, commands_refused;
    struct selftest st;
    uv_check_t selftest_check; /* looks at the hops after every loop iteration of a self-test */
    uint64_t last_event_seq;   /* of the last P/events record appended */
    bool in_flood_update;
    bool closing;
    int open_handles;
    void (*closed)(void *ctx);
    void *closed_ctx;
};

/* One send in flight: enough to say what failed. */
struct send_ctx {
    struct gw_desk *desk;
    char key[GW_KEY_MAX];
    char contact[GW_NAME_MAX];
    enum gw_channel_kind kind;
    int level;
};

static const char *const kind_names[] = {"mqtt", "webhook", "email"};

static int64_t now_ms_of(const struct gw_desk *desk)
{
    (void)desk;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The escalation an alarm belongs to: the overdue hazards' (system alarms "HZ-.../overdue"),
 * or the classes'. */
static struct gw_escalation *esc_of(const struct gw_desk *desk, const struct gw_alarm *a)
{
    return a->system && gw_hazard_overdue_key(a->key) ? desk->hz_esc : desk->esc;
}

/* cfg with hazards.escalation as its supervisory levels (malloc'd; shares cfg's memory). */
static struct gw_config *hazard_escalation_cfg(const struct gw_config *cfg)
{
    struct gw_config *c = malloc(sizeof(*c));
    if (!c) {
        return NULL;
    }
    *c = *cfg;
    if (cfg->hazards.nlevels > 0) {
        c->escalation.nlevels[GW_CLASS_SUPERVISORY] = cfg->hazards.nlevels;
        c->escalation.levels[GW_CLASS_SUPERVISORY] = cfg->hazards.levels;
    }
    return c;
}

/* ---- records ---- */

static char *with_members(const struct gw_desk *desk, const struct gw_config *cfg,
                          const struct gw_alarm *a, char *json);

static void emit(struct gw_desk *desk, enum gw_record_type type, int64_t ts, const char *topic,
                 char *json, uint64_t seq)
{
    desk->host.emit(desk->host.core, type, ts, topic, json, seq);
}

/* The P/events payload of a change: the alarm, the transition, who and why. */
static char *event_payload(struct gw_desk *desk, const struct gw_config *cfg,
                           const struct gw_alarm_change *c, uint64_t seq)
{
    char *base = gw_payload_alarm(seq, cfg, &c->alarm, c->transition);
    if (!base || (!c->by[0] && !c->note[0])) {
        return base;
    }
    (void)desk;
    json_t *root = json_loads(base, 0, NULL);
    free(base);
    if (!root) {
        return NULL;
    }
    if (c->by[0]) {
        json_object_set_new(root, "by", json_string(c->by));
    }
    if (c->note[0]) {
        json_object_set_new(root, "note", json_string(c->note));
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(root);
    return s;
}

static void emit_state(struct gw_desk *desk, const struct gw_config *cfg, const struct gw_alarm *a,
                       int64_t now)
{
    char topic[GW_KEY_MAX + 16];
    snprintf(topic, sizeof(topic), "alarms/%s", a->key);
    uint64_t seq = desk->host.next_seq(desk->host.core);
    char *json = a->state == GW_ALARM_NORMAL ? strdup("") : gw_payload_alarm(seq, cfg, a, NULL);
    emit(desk, GW_REC_ALARM, now, topic, with_members(desk, cfg, a, json), seq);
}

static int save_escalation(void *ctx, const char *key, const char *json)
{
    struct gw_desk *desk = ctx;
    char k[GW_KEY_MAX + 8];
    snprintf(k, sizeof(k), ESC_KEY_PREFIX "%s", key);
    return json ? gw_store_kv_set(desk->store, k, json) : gw_store_kv_delete(desk->store, k);
}

static void save_oos(struct gw_desk *desk, int sensor_index)
{
    const struct gw_sensor_cfg *s = &desk->cfg->sensors[sensor_index];
    char k[GW_NAME_MAX + 8];
    snprintf(k, sizeof(k), OOS_KEY_PREFIX "%s", s->id);
    struct gw_oos_sensor o;
    if (!gw_alarms_sensor_oos(desk->alarms, sensor_index, &o)) {
        gw_store_kv_delete(desk->store, k);
        return;
    }
    json_t *root = json_pack("{ss sI}", "by", o.by, "since", (json_int_t)o.since_ms);
    char *json = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (json) {
        gw_store_kv_set(desk->store, k, json);
    }
    free(json);
}

/* ---- notifications ---- */

static void reschedule(struct gw_desk *desk, int64_t now);
static void selftest_schedule(struct gw_desk *desk, int64_t now_ms);

static void on_sent(void *ctx, bool ok, const char *error, int attempts)
{
    struct send_ctx *sc = ctx;
    if (!ok && !sc->desk->closing) {
        gw_warn("notify",
                "not delivered contact=%s channel=%s key=%s level=%d attempts=%d error=\"%s\"",
                sc->contact, kind_names[sc->kind], sc->key, sc->level, attempts,
                error ? error : "?");
    } else if (ok) {
        gw_debug("notify", "delivered contact=%s channel=%s key=%s level=%d attempts=%d",
                 sc->contact, kind_names[sc->kind], sc->key, sc->level, attempts);
    }
    free(sc);
}

/* P/notify/<contact> through the outbox: a fresh seq for the record, the same in its JSON. */
static int publish_notify(void *core, const char *topic_suffix, const char *json)
{
    struct gw_desk *desk = core;
    json_t *root = json_loads(json, 0, NULL);
    if (!root) {
        return -EINVAL;
    }
    uint64_t seq = desk->host.next_seq(desk->host.core);
    json_object_set_new(root, "seq", json_integer((json_int_t)seq));
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(root);
    if (!s) {
        return -ENOMEM;
    }
    desk->host.open_batch(desk->host.core);
    if (desk->st.running && strstr(s, "\"" SELFTEST_KEY "\"")) {
        desk->st.notify_seq = seq;
    }
    emit(desk, GW_REC_NOTIFY, now_ms_of(desk), topic_suffix, s, seq);
    return 0;
}

static void deliver(struct gw_desk *desk, const struct gw_esc_notification *n,
                    const struct gw_alarm *alarm, int64_t now)
{
    if (n->contact < 0 || n->contact >= desk->cfg->ncontacts) {
        return;
    }
    const struct gw_contact_cfg *contact = &desk->cfg->contacts[n->contact];
    struct gw_notify_fields f;
    gw_notify_text_fields(&f, desk->cfg, alarm, n);
    /* An overdue hazard: the text names the hazard, where it is, who fixes it, by when. */
    const struct gw_hazard *h =
        alarm && alarm->system ? gw_hazard_desk_overdue_hazard(desk->hazards, alarm->key) : NULL;
    struct gw_notify_hazard nh;
    if (h) {
        nh = (struct gw_notify_hazard){.id = h->id,
                                       .description = h->description,
                                       .responsible = h->responsible,
                                       .deadline_ms = h->deadline_ms};
        f.hazard = &nh;
        f.building = h->building;
        f.floor = h->floor;
        f.zone = h->zone;
    }
    struct gw_notify_texts t;
    if (gw_notify_text_build(&t, &f, desk->cfg->site.language, 0, now) != 0) {
        gw_error("notify", "cannot build the message contact=%s key=%s (out of memory)",
                 contact->name, n->key);
        return;
    }
    struct gw_message msg = {
        .json = t.json,
        .text = t.text,
        .wecom = t.wecom,
        .dingtalk = t.dingtalk,
        .subject = t.subject,
        .body = t.email_body,
    };
    for (int i = 0; i < contact->nchannels; i++) {
        struct send_ctx *sc = calloc(1, sizeof(*sc));
        if (!sc) {
            break;
        }
        sc->desk = desk;
        snprintf(sc->key, sizeof(sc->key), "%s", n->key[0] ? n->key : "(summary)");
        snprintf(sc->contact, sizeof(sc->contact), "%s", contact->name);
        sc->kind = contact->channels[i].kind;
        sc->level = n->level;
        int rc = gw_notifier_send(desk->notifier, &contact->channels[i], &msg, on_sent, sc);
        if (rc != 0) {
            gw_warn("notify", "not sent contact=%s channel=%s key=%s error=\"%s\"", contact->name,
                    kind_names[sc->kind], sc->key, strerror(-rc));
            free(sc);
        }
    }
    gw_info("notify", "%s contact=%s key=%s level=%d class=%s%s", gw_esc_kind_name(n->kind),
            contact->name, n->key[0] ? n->key : "(summary)", n->level,
            gw_class_name(n->alarm_class), n->test ? " test" : "");
    gw_notify_text_release(&t);
}

/* Escalation levels reached show in the alarm's record ("level"). */
static void note_level(struct gw_desk *desk, const struct gw_esc_notification *n, int64_t now)
{
    if (n->kind != GW_ESC_RAISE || !n->key[0]) {
        return;
    }
    const struct gw_alarm *a = gw_alarms_find(desk->alarms, n->key);
    if (!a || a->state == GW_ALARM_NORMAL || a->level >= n->level) {
        return;
    }
    if (gw_alarms_set_level_key(desk->alarms, n->key, n->level) == 0) {
        emit_state(desk, desk->cfg, gw_alarms_find(desk->alarms, n->key), now);
    }
}

static void run_due_of(struct gw_desk *desk, struct gw_escalation *esc, int64_t now)
{
    int n;
    do {
        n = gw_escalation_due(esc, now, desk->notes, desk->max_notes);
        if (n <= 0) {
            break;
        }
        desk->host.open_batch(desk->host.core);
        for (int i = 0; i < n; i++) {
            const struct gw_esc_notification *note = &desk->notes[i];
            const struct gw_alarm *a =
                note->key[0] ? gw_alarms_find(desk->alarms, note->key) : NULL;
            deliver(desk, note, a, now);
        }
        for (int i = 0; i < n; i++) {
            note_level(desk, &desk->notes[i], now);
        }
    } while (n == desk->max_notes);
    gw_escalation_flush(esc, save_escalation, desk);
}

static void run_due(struct gw_desk *desk, int64_t now)
{
    run_due_of(desk, desk->esc, now);
    run_due_of(desk, desk->hz_esc, now);
    reschedule(desk, now);
}

static int64_t next_deadline(const struct gw_desk *desk)
{
    int64_t a = gw_escalation_next_deadline(desk->esc);
    int64_t b = gw_escalation_next_deadline(desk->hz_esc);
    return a < b ? a : b;
}

static void on_timer(uv_timer_t *t)
{
    struct gw_desk *desk = t->data;
    run_due(desk, now_ms_of(desk));
}

static void reschedule(struct gw_desk *desk, int64_t now)
{
    if (desk->closing) {
        return;
    }
    int64_t next = next_deadline(desk);
    if (next == GW_ESC_NEVER) {
        uv_timer_stop(&desk->timer);
        return;
    }
    uv_timer_start(&desk->timer, on_timer, next > now ? (uint64_t)(next - now) : 0, 0);
}

/* ---- changes ---- */

static void format_value(const struct gw_value *v, char *out, size_t size)
{
    switch (v->type) {
    case GW_VALUE_NUMBER:
        snprintf(out, size, "%g", v->num);
        break;
    case GW_VALUE_BOOL:
        snprintf(out, size, "%s", v->b ? "true" : "false");
        break;
    case GW_VALUE_STRING:
        snprintf(out, size, "\"%s\"", v->str);
        break;
    case GW_VALUE_NONE:
        snprintf(out, size, "null");
        break;
    }
}

/* One line per change: "raised", "cleared", "acknowledged" ... operators grep for these. */
static void log_change(const struct gw_config *cfg, const struct gw_alarm_change *c)
{
    static const struct {
        const char *transition, *verb;
    } verbs[] = {
        {"raise", "raised"},
        {"clear", "cleared"},
        {"ack", "acknowledged"},
        {"reset", "reset"},
        {"shelve", "shelved"},
        {"unshelve", "unshelved"},
        {"out_of_service", "out of service"},
        {"in_service", "back in service"},
        {"chattering", "chattering"},
    };
    const char *verb = c->transition;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(verbs[i].transition, c->transition) == 0) {
            verb = verbs[i].verb;
        }
    }
    const struct gw_alarm *a = &c->alarm;
    const struct gw_rule_cfg *rule =
        a->rule_index >= 0 && a->rule_index < cfg->nrules ? &cfg->rules[a->rule_index] : NULL;
    char value[64];
    format_value(&a->value, value, sizeof(value));
    bool loud = strcmp(c->transition, "raise") == 0 || strcmp(c->transition, "chattering") == 0;
    gw_log(loud ? GW_LOG_WARN : GW_LOG_INFO, MOD,
           "%s key=%s class=%s value=%s rule=\"%s\" state=%s%s%s", verb, a->key,
           gw_class_name(rule ? rule->alarm_class : a->alarm_class), value,
           rule ? rule->name : a->name, gw_alarm_state_name(a->state), c->by[0] ? " by=" : "",
           c->by);
}

/* ---- flood control ---- */

/*
 * One cause takes many sensors offline: a Modbus bus (its cable, its gateway)
 * or the LoRa network (the forwarders, their backhaul). Its sensors' offline
 * alarms are still recorded, but once flood_min of them are offline together
 * the group gets one alarm that lists them, and they are not escalated one by
 * one. Group g: a bus index, or nbuses for the LoRa sensors; -1 none.
 */
static int group_of(const struct gw_config *cfg, int sensor_index)
{
    if (sensor_index < 0 || sensor_index >= cfg->nsensors) {
        return -1;
    }
    const struct gw_sensor_cfg *s = &cfg->sensors[sensor_index];
    return s->bus_index >= 0 ? s->bus_index : s->lora.enabled ? cfg->nbuses : -1;
}

static void group_key(const struct gw_config *cfg, int g, char *key, size_t size, char *name,
                      size_t nsize)
{
    if (g < cfg->nbuses) {
        snprintf(key, size, "bus-%s/bus-offline", cfg->buses[g].name);
        snprintf(name, nsize, "Modbus bus %s down", cfg->buses[g].name);
    } else {
        snprintf(key, size, "lora/network-offline");
        snprintf(name, nsize, "LoRa network down");
    }
}

static bool is_offline_alarm(const struct gw_config *cfg, const struct gw_alarm *a)
{
    return !a->system && a->rule_index >= 0 && a->rule_index < cfg->nrules &&
           cfg->rules[a->rule_index].cond == GW_COND_OFFLINE;
}

/* The group whose alarm key this is; -1 when it is not a group's. */
static int group_of_key(const struct gw_config *cfg, const char *key)
{
    char k[GW_KEY_MAX], name[GW_KEY_MAX];
    for (int g = 0; g <= cfg->nbuses; g++) {
        group_key(cfg, g, k, sizeof(k), name, sizeof(name));
        if (strcmp(k, key) == 0) {
            return g;
        }
    }
    return -1;
}

/* Offline sensors of group g now (their offline condition holds). */
static int group_members(const struct gw_desk *desk, int g, const char **ids, int max)
{
    int n = 0;
    const struct gw_alarm *a;
    for (int it = 0; (a = gw_alarms_next(desk->alarms, &it));) {
        if (is_offline_alarm(desk->cfg, a) && a->condition &&
            group_of(desk->cfg, a->sensor_index) == g) {
            if (ids && n < max) {
                ids[n] = desk->cfg->sensors[a->sensor_index].id;
            }
            n++;
        }
    }
    return n;
}

static bool group_flooded(const struct gw_desk *desk, int g)
{
    if (g < 0) {
        return false;
    }
    char key[GW_KEY_MAX], name[GW_KEY_MAX];
    group_key(desk->cfg, g, key, sizeof(key), name, sizeof(name));
    const struct gw_alarm *a = gw_alarms_find(desk->alarms, key);
    return a && a->condition;
}

/* A group alarm's record lists the sensors it explains. */
static char *with_members(const struct gw_desk *desk, const struct gw_config *cfg,
                          const struct gw_alarm *a, char *json)
{
    int g = a->system && json && json[0] ? group_of_key(cfg, a->key) : -1;
    if (g < 0 || cfg != desk->cfg) {
        return json;
    }
    json_t *root = json_loads(json, 0, NULL);
    if (!root) {
        return json;
    }
    const char *ids[256];
    int n = group_members(desk, g, ids, 256);
    json_t *list = json_array();
    for (int i = 0; i < n && i < 256; i++) {
        json_array_append_new(list, json_string(ids[i]));
    }
    json_object_set_new(root, "explains", list);
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(root);
    if (!s) {
        return json;
    }
    free(json);
    return s;
}

static void apply(struct gw_desk *desk, const struct gw_config *cfg,
                  const struct gw_alarm_change *changes, int n, bool test, int64_t now);

/* After changes: raise or clear each group's alarm, and silence the sensors it explains. */
static void flood_update(struct gw_desk *desk, int64_t now)
{
    const struct gw_config *cfg = desk->cfg;
    int min = cfg->alarms.flood_min > 0 ? cfg->alarms.flood_min : 3;
    for (int g = 0; g <= cfg->nbuses; g++) {
        if (g == cfg->nbuses && cfg->lora.enabled == false) {
            continue;
        }
        char key[GW_KEY_MAX], name[GW_KEY_MAX];
        group_key(cfg, g, key, sizeof(key), name, sizeof(name));
        int count = group_members(desk, g, NULL, 0);
        bool flooded = group_flooded(desk, g);
        struct gw_alarm_change ch[GW_ALARMS_TRANSITION_CHANGES];
        int m = 0;
        if (!flooded && count >= min) {
            struct gw_value v = {.type = GW_VALUE_NUMBER, .num = count};
            m = gw_alarms_system_raise(desk->alarms, key, name, GW_CLASS_TROUBLE, &v, false, now,
                                       ch, GW_ALARMS_TRANSITION_CHANGES);
            gw_warn(MOD, "flood: %d sensors offline together: one alarm %s for them", count, key);
            const struct gw_alarm *a;
            for (int it = 0; (a = gw_alarms_next(desk->alarms, &it));) {
                if (is_offline_alarm(cfg, a) && a->condition &&
                    group_of(cfg, a->sensor_index) == g) {
                    gw_escalation_stop(desk->esc, a->key);
                }
            }
        } else if (flooded && count == 0) {
            m = gw_alarms_system_clear(desk->alarms, key, now, ch, GW_ALARMS_TRANSITION_CHANGES);
        } else if (flooded) {
            /* Members came and went: the list in its record follows. */
            const struct gw_alarm *a = gw_alarms_find(desk->alarms, key);
            if (a) {
                emit_state(desk, cfg, a, now);
            }
        }
        if (m > 0) {
            apply(desk, cfg, ch, m, false, now);
        }
    }
}

/*
 * Record and act on changes computed against cfg (the desk's, or the old one
 * during a reload for alarms that are gone).
 */
static void apply(struct gw_desk *desk, const struct gw_config *cfg,
                  const struct gw_alarm_change *changes, int n, bool test, int64_t now)
{
    if (n <= 0) {
        return;
    }
    desk->host.open_batch(desk->host.core);
    for (int i = 0; i < n; i++) {
        const struct gw_alarm_change *c = &changes[i];
        log_change(cfg, c);
        uint64_t seq = desk->host.next_seq(desk->host.core);
        emit(desk, GW_REC_EVENT, c->ts_ms ? c->ts_ms : now, "events",
             with_members(desk, cfg, &c->alarm, event_payload(desk, cfg, c, seq)), seq);
        desk->last_event_seq = seq;
        emit_state(desk, cfg, &c->alarm, now);
        const struct gw_alarm *a = &c->alarm;
        enum gw_alarm_class cls = a->rule_index >= 0 && a->rule_index < cfg->nrules
                                      ? cfg->rules[a->rule_index].alarm_class
                                      : a->alarm_class;
        switch (c->notify) {
        case GW_NOTIFY_RAISE:
            if (is_offline_alarm(cfg, a) && cfg == desk->cfg &&
                group_flooded(desk, group_of(cfg, a->sensor_index))) {
                gw_info(MOD, "key=%s not escalated on its own: its bus or network is down", a->key);
                break;
            }
            if (gw_escalation_start(esc_of(desk, a), a->key, cls, a->raised_at_ms, test || a->test,
                                    now) != 0) {
                gw_error(MOD, "cannot escalate key=%s (out of memory)", a->key);
            }
            break;
        case GW_NOTIFY_STOP:
            gw_escalation_stop(esc_of(desk, a), a->key);
            break;
        case GW_NOTIFY_CLEAR: {
            int m = gw_escalation_clear(esc_of(desk, a), a->key, now, desk->notes, desk->max_notes);
            for (int k = 0; k < m; k++) {
                deliver(desk, &desk->notes[k], a, now);
            }
            break;
        }
        case GW_NOTIFY_NONE:
            break;
        }
        if (strcmp(c->transition, "raise") == 0 && !a->system && cfg == desk->cfg) {
            gw_hazard_desk_on_raise(desk->hazards, cfg, a, now); /* hazards.auto_open */
        }
    }
    if (!desk->in_flood_update && cfg == desk->cfg) {
        desk->in_flood_update = true;
        flood_update(desk, now);
        desk->in_flood_update = false;
    }
    gw_escalation_flush(desk->esc, save_escalation, desk);
    gw_escalation_flush(desk->hz_esc, save_escalation, desk);
    run_due(desk, now); /* level 1 is usually due at once */
}

void gw_desk_on_transitions(struct gw_desk *desk, const struct gw_alarm_transition *t, int n,
                            bool test, int64_t now_ms)
{
    /* One batch: a bus that dies takes its sensors offline in the same tick, and flood control
     * must see them together before anyone is told. */
    int cap = n * GW_ALARMS_TRANSITION_CHANGES;
    struct gw_alarm_change *all = cap > 0 ? calloc((size_t)cap, sizeof(*all)) : NULL;
    if (!all) {
        return;
    }
    int total = 0;
    for (int i = 0; i < n; i++) {
        struct gw_alarm_transition tr = t[i];
        tr.test = test;
        int m =
            gw_alarms_on_transition(desk->alarms, &tr, all + total, GW_ALARMS_TRANSITION_CHANGES);
        if (m < 0) {
            gw_error(MOD, "transition not recorded rule=%d sensor=%d error=\"%s\"", t[i].rule_index,
                     t[i].sensor_index, strerror(-m));
            continue;
        }
        total += m;
    }
    apply(desk, desk->cfg, all, total, test, now_ms);
    free(all);
}

void gw_desk_tick(struct gw_desk *desk, int64_t now_ms)
{
    int n;
    do {
        n = gw_alarms_tick(desk->alarms, now_ms, desk->changes, desk->max_changes);
        apply(desk, desk->cfg, desk->changes, n, false, now_ms);
    } while (n > 0 && n == desk->max_changes);
    gw_hazard_desk_tick(desk->hazards, now_ms);
    if (next_deadline(desk) <= now_ms) {
        run_due(desk, now_ms); /* a timer that fired late, or a clock that jumped */
    }
    selftest_schedule(desk, now_ms);
}

void gw_desk_shift_time(struct gw_desk *desk, int64_t delta_ms)
{
    gw_alarms_shift_time(desk->alarms, delta_ms);
    gw_escalation_shift_time(desk->esc, delta_ms);
    gw_escalation_shift_time(desk->hz_esc, delta_ms);
    reschedule(desk, now_ms_of(desk));
}

/* ---- the path self-test ---- */

static int64_t ms_since(uint64_t started_ns)
{
    return (int64_t)((uv_hrtime() - started_ns) / 1000000);
}

/* The next selftest.at (local time) after now. */
static int64_t next_selftest_at(const struct gw_config *cfg, int64_t now_ms)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_hour = cfg->selftest.at_min / 60;
    tm.tm_min = cfg->selftest.at_min % 60;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    time_t at = mktime(&tm);
    if ((int64_t)at * 1000 <= now_ms) {
        tm.tm_mday++;
        tm.tm_isdst = -1;
        at = mktime(&tm);
    }
    return (int64_t)at * 1000;
}

static void selftest_finish(struct gw_desk *desk, int64_t now, const char *missing);

static void system_apply(struct gw_desk *desk, int n, bool test, int64_t now)
{
    if (n > 0) {
        apply(desk, desk->cfg, desk->changes, n, test, now);
    }
}

static void on_selftest_poll(uv_check_t *h)
{
    struct gw_desk *desk = h->data;
    struct selftest *st = &desk->st;
    if (!st->running) {
        uv_check_stop(h);
        return;
    }
    int64_t elapsed = ms_since(st->started_ns);
    struct gw_store_stats ss;
    gw_store_stats(desk->store, &ss);
    if (st->store_ms < 0 && ss.committed_seq >= st->event_seq) {
        st->store_ms = elapsed;
    }
    if (st->hub_ms < 0 && gw_store_cursor(desk->store, "hub", GW_STREAM_ALARM) >= st->event_seq) {
        st->hub_ms = elapsed;
    }
    if (desk->cfg->uplink.enabled && st->uplink_ms < 0 &&
        gw_store_cursor(desk->store, "uplink", GW_STREAM_ALARM) >= st->event_seq) {
        st->uplink_ms = elapsed;
    }
    if (st->notify_seq > 0 && st->notify_ms < 0 &&
        gw_store_cursor(desk->store, "hub", GW_STREAM_ALARM) >= st->notify_seq) {
        st->notify_ms = elapsed;
    }
    bool done = st->store_ms >= 0 && st->hub_ms >= 0 &&
                (!desk->cfg->uplink.enabled || st->uplink_ms >= 0) &&
                (st->notify_seq == 0 || st->notify_ms >= 0);
    int64_t now = now_ms_of(desk);
    if (done) {
        selftest_finish(desk, now, NULL);
    } else if (elapsed >= (int64_t)desk->cfg->selftest.timeout_s * 1000) {
        const char *missing = st->store_ms < 0                                   ? "store"
                              : st->hub_ms < 0                                   ? "hub"
                              : (desk->cfg->uplink.enabled && st->uplink_ms < 0) ? "uplink"
                                                                                 : "notify";
        selftest_finish(desk, now, missing);
    }
}

static void selftest_finish(struct gw_desk *desk, int64_t now, const char *missing)
{
    struct selftest *st = &desk->st;
    st->running = false;
    uv_check_stop(&desk->selftest_check);
    /* The test alarm ends by itself: acknowledged by the self-test, then cleared. */
    struct gw_alarm_command ack = {.type = GW_CMD_ACK, .key = SELFTEST_KEY, .by = SELFTEST_BY};
    char err[GW_ERR_MAX];
    int n = gw_alarms_command(desk->alarms, &ack, now, desk->changes, desk->max_changes, err,
                              sizeof(err));
    system_apply(desk, n, true, now);
    n = gw_alarms_system_clear(desk->alarms, SELFTEST_KEY, now, desk->changes, desk->max_changes);
    system_apply(desk, n, true, now);

    json_t *root = json_pack("{so sb}", "at", json_string(""), "ok", missing == NULL);
    char at[40];
    gw_format_rfc3339(st->started_ms, at, sizeof(at));
    json_object_set_new(root, "at", json_string(at));
    static const char *const names[] = {"store_ms", "hub_ms", "uplink_ms", "notify_ms"};
    int64_t values[] = {st->store_ms, st->hub_ms, st->uplink_ms, st->notify_ms};
    for (int i = 0; i < 4; i++) {
        if (values[i] >= 0) {
            json_object_set_new(root, names[i], json_integer(values[i]));
        }
    }
    if (missing) {
        json_object_set_new(root, "failed_at", json_string(missing));
    }
    free(st->result);
    st->result = json_dumps(root, JSON_COMPACT);
    json_decref(root);

    struct gw_value v = {.type = GW_VALUE_STRING};
    if (missing) {
        snprintf(v.str, sizeof(v.str), "%s", missing);
        gw_error(MOD, "path self-test FAILED: the test alarm never reached %s within %d s", missing,
                 desk->cfg->selftest.timeout_s);
        n = gw_alarms_system_raise(desk->alarms, SELFTEST_FAILED_KEY, "path self-test failed",
                                   GW_CLASS_TROUBLE, &v, false, now, desk->changes,
                                   desk->max_changes);
    } else {
        gw_info(MOD, "path self-test ok store_ms=%lld hub_ms=%lld uplink_ms=%lld notify_ms=%lld",
                (long long)st->store_ms, (long long)st->hub_ms, (long long)st->uplink_ms,
                (long long)st->notify_ms);
        n = gw_alarms_system_clear(desk->alarms, SELFTEST_FAILED_KEY, now, desk->changes,
                                   desk->max_changes);
    }
    system_apply(desk, n > 0 ? n : 0, false, now);
    if (desk->host.status_changed) {
        desk->host.status_changed(desk->host.core);
    }
}

void gw_desk_selftest_now(struct gw_desk *desk, int64_t now_ms)
{
    struct selftest *st = &desk->st;
    if (st->running || desk->closing) {
        return;
    }
    st->running = true;
    st->started_ms = now_ms;
    st->started_ns = uv_hrtime();
    st->store_ms = st->hub_ms = st->uplink_ms = st->notify_ms = -1;
    st->notify_seq = 0;
    struct gw_value v = {.type = GW_VALUE_STRING};
    snprintf(v.str, sizeof(v.str), "test");
    gw_info(MOD, "path self-test: raising %s", SELFTEST_KEY);
    int n = gw_alarms_system_raise(desk->alarms, SELFTEST_KEY, "path self-test", GW_CLASS_TROUBLE,
                                   &v, true, now_ms, desk->changes, desk->max_changes);
    if (n <= 0) {
        gw_error(MOD, "path self-test could not raise its alarm (%s)", n < 0 ? strerror(-n) : "?");
        st->running = false;
        return;
    }
    apply(desk, desk->cfg, desk->changes, n, true, now_ms);
    st->event_seq = desk->last_event_seq;
    uv_check_start(&desk->selftest_check, on_selftest_poll);
}

const char *gw_desk_selftest_json(const struct gw_desk *desk)
{
    return desk->st.result;
}

static void selftest_schedule(struct gw_desk *desk, int64_t now_ms)
{
    if (!desk->cfg->selftest.enabled) {
        return;
    }
    if (desk->st.next_at_ms == 0) {
        desk->st.next_at_ms = next_selftest_at(desk->cfg, now_ms);
    } else if (now_ms >= desk->st.next_at_ms) {
        desk->st.next_at_ms = next_selftest_at(desk->cfg, now_ms);
        gw_desk_selftest_now(desk, now_ms);
    }
}

/* ---- commands ---- */

static bool is_hazard_command(const char *name)
{
    return name && strncmp(name, GW_HAZARD_CMD_PREFIX, strlen(GW_HAZARD_CMD_PREFIX)) == 0;
}

/* "hazard/open", ...: to the hazard desk; the result says which hazard and its status. */
static int execute_hazard(struct gw_desk *desk, const char *source, const char *name,
                          const void *payload, size_t len, int64_t now_ms,
                          struct gw_desk_result *result)
{
    static const char *const names[] = {"hazard/open", "hazard/update", "hazard/rectifying",
                                        "hazard/close", "hazard/reopen"};
    const char *sub = name + strlen(GW_HAZARD_CMD_PREFIX);
    int type = gw_hazard_cmd_from_name(sub);
    struct gw_command *cmd = &result->cmd;
    cmd->name = type >= 0 ? names[type] : "hazard";
    int rc =
        gw_hazard_desk_execute(desk->hazards, sub, payload, len, now_ms, cmd->id, result->hazard,
                               &result->state, result->error, sizeof(result->error));
    if (rc != 0) {
        desk->commands_refused++;
    }
    gw_log(rc == 0 ? GW_LOG_INFO : GW_LOG_WARN, MOD, "command %s %s source=%s hazard=%s%s%s%s",
           cmd->name, rc == 0 ? "done" : "refused", source,
           result->hazard[0] ? result->hazard : "?", rc ? " error=\"" : "", rc ? result->error : "",
           rc ? "\"" : "");
    return rc;
}

int gw_desk_execute(struct gw_desk *desk, const char *source, const char *name, const void *payload,
                    size_t len, int64_t now_ms, struct gw_desk_result *result)
{
    desk->commands++;
    struct gw_command *cmd = &result->cmd;
    char *err = result->error;
    err[0] = '\0';
    result->state = NULL;
    result->hazard[0] = '\0';
    if (is_hazard_command(name)) {
        memset(cmd, 0, sizeof(*cmd));
        return execute_hazard(desk, source, name, payload, len, now_ms, result);
    }
    int rc = gw_command_parse(name, payload, len, cmd, err, sizeof(result->error));
    if (rc == 0) {
        struct gw_alarm_command ac = {
            .type = (enum gw_alarm_cmd_type)gw_alarm_cmd_from_name(cmd->name),
            .key = cmd->key[0] ? cmd->key : NULL,
            .sensor = cmd->sensor[0] ? cmd->sensor : NULL,
            .by = cmd->by,
            .note = cmd->note,
            .minutes = cmd->minutes,
        };
        rc = gw_alarms_command(desk->alarms, &ac, now_ms, desk->changes, desk->max_changes, err,
                               sizeof(result->error));
        if (rc >= 0) {
            apply(desk, desk->cfg, desk->changes, rc, false, now_ms);
            if (ac.type == GW_CMD_OUT_OF_SERVICE || ac.type == GW_CMD_IN_SERVICE) {
                int si = gw_config_find_sensor(desk->cfg, cmd->sensor);
                if (si >= 0) {
                    save_oos(desk, si);
                    result->state = gw_alarms_sensor_oos(desk->alarms, si, NULL) ? "out_of_service"
                                                                                 : "in_service";
                }
            } else {
                const struct gw_alarm *a = gw_alarms_find(desk->alarms, cmd->key);
                result->state = gw_alarm_state_name(a ? a->state : GW_ALARM_NORMAL);
            }
            rc = 0;
        }
    }
    if (rc != 0) {
        desk->commands_refused++;
    }
    gw_log(rc == 0 ? GW_LOG_INFO : GW_LOG_WARN, MOD, "command %s %s source=%s %s=%s by=%s%s%s%s",
           cmd->name, rc == 0 ? "done" : "refused", source, cmd->sensor[0] ? "sensor" : "key",
           cmd->sensor[0] ? cmd->sensor : (cmd->key[0] ? cmd->key : "?"),
           cmd->by[0] ? cmd->by : "?", rc ? " error=\"" : "", rc ? err : "", rc ? "\"" : "");
    return rc;
}

void gw_desk_command(struct gw_desk *desk, const char *source, const char *name,
                     const void *payload, size_t len, int64_t now_ms)
{
    struct gw_desk_result r;
    int rc = gw_desk_execute(desk, source, name, payload, len, now_ms, &r);
    uint64_t seq = desk->host.next_seq(desk->host.core);
    desk->host.open_batch(desk->host.core);
    char *json = is_hazard_command(name)
                     ? gw_hazard_result_json(seq, name + strlen(GW_HAZARD_CMD_PREFIX), r.cmd.id,
                                             r.hazard, rc == 0, rc ? r.error : NULL, r.state)
                     : gw_command_result(seq, &r.cmd, rc == 0, rc ? r.error : NULL, r.state);
    emit(desk, GW_REC_CMD_RESULT, now_ms, "cmd/result", json, seq);
}

/* ---- the hazard desk's host ---- */

static uint64_t hz_next_seq(void *ctx)
{
    struct gw_desk *desk = ctx;
    return desk->host.next_seq(desk->host.core);
}

static void hz_emit(void *ctx, enum gw_record_type type, int64_t ts_ms, const char *topic,
                    char *json, uint64_t seq)
{
    emit(ctx, type, ts_ms, topic, json, seq);
}

static void hz_open_batch(void *ctx)
{
    struct gw_desk *desk = ctx;
    desk->host.open_batch(desk->host.core);
}

/* The hazard desk's system alarms (overdue hazards, an invalid register). Its own change buffer:
 * this runs from inside apply() (auto-open) and from commands that use desk->changes. */
static void hz_system_alarm(void *ctx, const char *key, const char *name, enum gw_alarm_class cls,
                            const char *value, bool on, const char *by, int64_t now)
{
    struct gw_desk *desk = ctx;
    struct gw_alarm_change ch[2 * GW_ALARMS_TRANSITION_CHANGES];
    int n;
    if (on) {
        struct gw_value v = {.type = value ? GW_VALUE_STRING : GW_VALUE_NONE};
        snprintf(v.str, sizeof(v.str), "%s", value ? value : "");
        n = gw_alarms_system_raise(desk->alarms, key, name, cls, &v, false, now, ch,
                                   GW_ALARMS_TRANSITION_CHANGES);
    } else {
        n = gw_alarms_system_clear(desk->alarms, key, now, ch, GW_ALARMS_TRANSITION_CHANGES);
        const struct gw_alarm *a = n > 0 ? gw_alarms_find(desk->alarms, key) : NULL;
        if (a && a->state == GW_ALARM_RTN_UNACKED && by && by[0]) {
            /* Whoever closed the hazard (or gave a new deadline) has dealt with the alarm. */
            struct gw_alarm_command ack = {.type = GW_CMD_ACK, .key = key, .by = by};
            char err[GW_ERR_MAX];
            int m = gw_alarms_command(desk->alarms, &ack, now, ch + n,
                                      (int)(sizeof(ch) / sizeof(ch[0])) - n, err, sizeof(err));
            n += m > 0 ? m : 0;
        }
    }
    if (n < 0) {
        gw_error(MOD, "system alarm %s not %s key=%s error=\"%s\"", name, on ? "raised" : "cleared",
                 key, strerror(-n));
        return;
    }
    apply(desk, desk->cfg, ch, n, false, now);
}

struct gw_hazard_desk *gw_desk_hazards(struct gw_desk *desk)
{
    return desk->hazards;
}

/* ---- start, reload, stop ---- */

struct gw_desk *gw_desk_new(uv_loop_t *loop, const struct gw_config *cfg, struct gw_store *store,
                            const struct gw_desk_host *host)
{
    struct gw_desk *desk = calloc(1, sizeof(*desk));
    if (!desk) {
        return NULL;
    }
    desk->loop = loop;
    desk->cfg = cfg;
    desk->store = store;
    desk->host = *host;
    desk->max_changes = 3 * (cfg->nrules > 8 ? cfg->nrules : 8);
    desk->max_notes = MAX_DUE > cfg->ncontacts ? MAX_DUE : cfg->ncontacts;
    desk->changes = calloc((size_t)desk->max_changes, sizeof(*desk->changes));
    desk->notes = calloc((size_t)desk->max_notes, sizeof(*desk->notes));
    desk->alarms = gw_alarms_new(cfg);
    desk->esc = gw_escalation_new(cfg);
    desk->hz_esc_cfg = hazard_escalation_cfg(cfg);
    desk->hz_esc = desk->hz_esc_cfg ? gw_escalation_new(desk->hz_esc_cfg) : NULL;
    desk->notifier = gw_notifier_new(loop, cfg, publish_notify, desk);
    struct gw_hazard_desk_host hz_host = {
        .ctx = desk,
        .next_seq = hz_next_seq,
        .emit = hz_emit,
        .open_batch = hz_open_batch,
        .system_alarm = hz_system_alarm,
    };
    desk->hazards = gw_hazard_desk_new(cfg, store, &hz_host, now_ms_of(desk));
    if (!desk->changes || !desk->notes || !desk->alarms || !desk->esc || !desk->hz_esc ||
        !desk->notifier || !desk->hazards) {
        gw_error(MOD, "cannot start the alarm desk (out of memory)");
        if (desk->notifier) {
            gw_notifier_close(desk->notifier, NULL, NULL);
        }
        gw_hazard_desk_free(desk->hazards);
        gw_escalation_free(desk->hz_esc);
        free(desk->hz_esc_cfg);
        gw_alarms_free(desk->alarms);
        gw_escalation_free(desk->esc);
        free(desk->changes);
        free(desk->notes);
        free(desk);
        return NULL;
    }
    uv_timer_init(loop, &desk->timer);
    desk->timer.data = desk;
    uv_check_init(loop, &desk->selftest_check);
    desk->selftest_check.data = desk;
    return desk;
}

struct restore_ctx {
    struct gw_desk *desk;
    struct gw_rules *rules;
    int64_t now;
    int restored;
};

static void on_stored_alarm(void *ctx, const char *key, const char *payload)
{
    struct restore_ctx *rc = ctx;
    struct gw_desk *desk = rc->desk;
    struct gw_alarm a;
    char err[GW_ERR_MAX];
    int r = gw_payload_alarm_parse(payload, &a, err, sizeof(err));
    if (r == 0) {
        r = gw_alarms_restore(desk->alarms, &a);
    } else {
        gw_warn(MOD, "stored alarm unreadable key=%s error=\"%s\"", key, err);
    }
    if (r == -ENOENT || r == -EINVAL) {
        /* Its sensor or rule is gone from the config (or the record is broken): it is over. */
        gw_info(MOD, "ended key=%s reason=\"%s\"", key,
                r == -ENOENT ? "no longer in the config" : "unreadable record");
        char topic[GW_KEY_MAX + 16];
        snprintf(topic, sizeof(topic), "alarms/%s", key);
        emit(desk, GW_REC_ALARM, rc->now, topic, strdup(""), desk->host.next_seq(desk->host.core));
        return;
    }
    if (r != 0) {
        gw_error(MOD, "cannot restore key=%s (out of memory)", key);
        return;
    }
    int ri, si;
    if (a.condition && gw_alarms_parse_key(desk->alarms, key, &ri, &si) == 0) {
        gw_rules_restore_active(rc->rules, ri, si);
    }
    rc->restored++;
    gw_info(MOD, "restored key=%s state=%s", key, gw_alarm_state_name(a.state));
}

static void on_stored_oos(void *ctx, const char *key, const char *value)
{
    struct restore_ctx *rc = ctx;
    int si = gw_config_find_sensor(rc->desk->cfg, key + strlen(OOS_KEY_PREFIX));
    json_t *root = json_loads(value, 0, NULL);
    const char *by = json_string_value(json_object_get(root, "by"));
    int64_t since = json_integer_value(json_object_get(root, "since"));
    if (si >= 0) {
        gw_alarms_restore_oos(rc->desk->alarms, si, by ? by : "", since);
        gw_info(MOD, "sensor=%s still out of service by=%s", key + strlen(OOS_KEY_PREFIX),
                by ? by : "?");
    } else {
        gw_store_kv_delete(rc->desk->store, key);
    }
    json_decref(root);
}

static void on_stored_escalation(void *ctx, const char *key, const char *value)
{
    struct restore_ctx *rc = ctx;
    const char *akey = key + strlen(ESC_KEY_PREFIX);
    const struct gw_alarm *a = gw_alarms_find(rc->desk->alarms, akey);
    if (!a || gw_escalation_restore(esc_of(rc->desk, a), akey, value) != 0) {
        gw_store_kv_delete(rc->desk->store, key); /* its alarm is over, or unreadable */
    }
}

int gw_desk_restore(struct gw_desk *desk, struct gw_rules *rules, int64_t now_ms)
{
    struct restore_ctx rc = {.desk = desk, .rules = rules, .now = now_ms};
    desk->host.open_batch(desk->host.core);
    gw_store_kv_each(desk->store, OOS_KEY_PREFIX, on_stored_oos, &rc);
    gw_store_load_alarms(desk->store, on_stored_alarm, &rc);
    gw_store_kv_each(desk->store, ESC_KEY_PREFIX, on_stored_escalation, &rc);
    /* The register's alarms (invalid, overdue) once the stored alarms are back. */
    gw_hazard_desk_restore(desk->hazards, now_ms);
    /* Levels that fell due while the gateway was down go out now, in order. */
    run_due(desk, now_ms);
    return rc.restored;
}

void gw_desk_snapshot(struct gw_desk *desk, int64_t now_ms)
{
    desk->host.open_batch(desk->host.core);
    const struct gw_alarm *a;
    for (int it = 0; (a = gw_alarms_next(desk->alarms, &it));) {
        emit_state(desk, desk->cfg, a, now_ms);
    }
    gw_hazard_desk_snapshot(desk->hazards, now_ms);
}

const struct gw_alarms *gw_desk_alarms(const struct gw_desk *desk)
{
    return desk->alarms;
}

bool gw_desk_sensor_oos(const struct gw_desk *desk, int sensor_index)
{
    return gw_alarms_sensor_oos(desk->alarms, sensor_index, NULL);
}

int gw_desk_reload(struct gw_desk *desk, const struct gw_config *cfg, int64_t now_ms)
{
    struct gw_alarms *alarms = gw_alarms_new(cfg);
    int max = 0;
    const struct gw_alarm *a;
    for (int it = 0; (a = gw_alarms_next(desk->alarms, &it));) {
        max++;
    }
    max += 8;
    struct gw_alarm_change *ch = calloc((size_t)max, sizeof(*ch));
    int max_changes = 3 * (cfg->nrules > 8 ? cfg->nrules : 8);
    struct gw_alarm_change *changes = calloc((size_t)max_changes, sizeof(*changes));
    int max_notes = MAX_DUE > cfg->ncontacts ? MAX_DUE : cfg->ncontacts;
    struct gw_esc_notification *notes = calloc((size_t)max_notes, sizeof(*notes));
    int n = alarms && ch ? gw_alarms_carry_over(alarms, desk->alarms, now_ms, ch, max) : -ENOMEM;
    if (n < 0 || !changes || !notes) {
        gw_alarms_free(alarms);
        free(ch);
        free(changes);
        free(notes);
        return n < 0 ? n : -ENOMEM;
    }
    /* Alarms that are gone end under the old config (their indexes are into it), told to the
     * contacts of the old escalation, before it moves to the new config. */
    apply(desk, desk->cfg, ch, n, false, now_ms);
    /* The overdue hazards' escalation first: when the main one then fails, only these few keys
     * have moved (to the new config, which the gateway keeps alive either way). */
    struct gw_config *hz_cfg = hazard_escalation_cfg(cfg);
    struct gw_escalation *hz_esc = hz_cfg ? gw_escalation_reload(desk->hz_esc, hz_cfg) : NULL;
    if (hz_esc) {
        desk->hz_esc = hz_esc;
        free(desk->hz_esc_cfg);
        desk->hz_esc_cfg = hz_cfg;
    }
    struct gw_escalation *esc = hz_esc ? gw_escalation_reload(desk->esc, cfg) : NULL;
    if (!esc) {
        if (!hz_esc) {
            free(hz_cfg);
        }
        gw_alarms_free(alarms);
        free(ch);
        free(changes);
        free(notes);
        return -ENOMEM;
    }
    gw_alarms_free(desk->alarms);
    desk->alarms = alarms;
    desk->esc = esc;
    desk->cfg = cfg;
    gw_hazard_desk_reload(desk->hazards, cfg);
    free(desk->changes);
    free(desk->notes);
    desk->changes = changes;
    desk->max_changes = max_changes;
    desk->notes = notes;
    desk->max_notes = max_notes;
    free(ch);
    gw_notifier_reconfigure(desk->notifier, cfg);
    reschedule(desk, now_ms);
    return 0;
}

void gw_desk_notify_counters(const struct gw_desk *desk, int kind, uint64_t *sent, uint64_t *failed,
                             uint64_t *retries)
{
    struct gw_notify_counters nc;
    gw_notifier_counters(desk->notifier, (enum gw_channel_kind)kind, &nc);
    *sent = nc.sent;
    *failed = nc.failed;
    *retries = nc.retries;
}

void gw_desk_stats(const struct gw_desk *desk, struct gw_desk_stats *out)
{
    memset(out, 0, sizeof(*out));
    int counts[GW_NCLASSES][GW_ALARM_NSTATES];
    out->active = gw_alarms_count(desk->alarms, counts);
    for (int c = 0; c < GW_NCLASSES; c++) {
        for (int s = 0; s < GW_ALARM_NSTATES; s++) {
            out->per_class[c] += counts[c][s];
        }
        out->unacked += counts[c][GW_ALARM_UNACKED] + counts[c][GW_ALARM_RTN_UNACKED];
    }
    out->commands = desk->commands;
    out->commands_refused = desk->commands_refused;
    for (int k = GW_CHANNEL_MQTT; k <= GW_CHANNEL_EMAIL; k++) {
        struct gw_notify_counters nc;
        gw_notifier_counters(desk->notifier, (enum gw_channel_kind)k, &nc);
        out->notify_sent += nc.sent;
        out->notify_failed += nc.failed;
        out->notify_retries += nc.retries;
    }
    out->notify_pending = gw_notifier_pending(desk->notifier);
}

static void maybe_freed(struct gw_desk *desk)
{
    if (desk->open_handles > 0) {
        return;
    }
    void (*closed)(void *ctx) = desk->closed;
    void *ctx = desk->closed_ctx;
    gw_alarms_free(desk->alarms);
    gw_escalation_free(desk->esc);
    gw_escalation_free(desk->hz_esc);
    free(desk->hz_esc_cfg);
    gw_hazard_desk_free(desk->hazards);
    free(desk->changes);
    free(desk->notes);
    free(desk->st.result);
    free(desk);
    if (closed) {
        closed(ctx);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    struct gw_desk *desk = h->data;
    desk->open_handles--;
    maybe_freed(desk);
}

static void on_notifier_closed(void *ctx)
{
    struct gw_desk *desk = ctx;
    desk->open_handles--;
    maybe_freed(desk);
}

void gw_desk_close(struct gw_desk *desk, void (*closed)(void *ctx), void *ctx)
{
    desk->closing = true;
    desk->closed = closed;
    desk->closed_ctx = ctx;
    gw_escalation_flush(desk->esc, save_escalation, desk);
    gw_escalation_flush(desk->hz_esc, save_escalation, desk);
    desk->open_handles = 3;
    uv_timer_stop(&desk->timer);
    uv_close((uv_handle_t *)&desk->timer, on_timer_closed);
    uv_check_stop(&desk->selftest_check);
    uv_close((uv_handle_t *)&desk->selftest_check, on_timer_closed);
    gw_notifier_close(desk->notifier, on_notifier_closed, desk);
}
