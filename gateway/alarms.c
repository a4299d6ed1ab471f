/*
 * The ISA-18.2 alarm lifecycle; semantics in alarms.h. Pure: no I/O, no clock.
 *
 * Records live in one array; slot[rule * nsensors + sensor] indexes it (-1:
 * none, i.e. normal without history), so every lookup by (rule, sensor) is
 * O(1). System alarms (system, indexes -1) are in the same array without a
 * slot: they are few, found by a scan of their key. A record is dropped once
 * it is normal with no raise left in the chatter window. Invariants kept by
 * every operation:
 *   normal and rtn_unacked have condition false;
 *   needs_reset == (latched rule && !condition && state in {unacked, acked});
 *   shelved_until_ms / shelved_by are set only in shelved;
 *   out_of_service <=> the sensor is in the out-of-service set (non-normal alarms);
 *   a system alarm is never latched nor out of service;
 *   a rule alarm's alarm_class and name are its rule's.
 */
#include "alarms.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "text.h"

struct oos_entry {
    bool on;
    char by[GW_NAME_MAX];
    int64_t since_ms;
};

struct gw_alarms {
    const struct gw_config *cfg;
    struct gw_alarm *recs;
    int nrecs, cap;
    int *slot;             /* nrules * nsensors */
    struct oos_entry *oos; /* nsensors */
};

#define CHANGES_PER_TICK 3 /* unshelve + chattering end + held-back raise */

const char *gw_notify_action_name(enum gw_notify_action action)
{
    switch (action) {
    case GW_NOTIFY_NONE:
        return "none";
    case GW_NOTIFY_RAISE:
        return "raise";
    case GW_NOTIFY_CLEAR:
        return "clear";
    case GW_NOTIFY_STOP:
        return "stop";
    }
    return "unknown";
}

static const char *const cmd_names[] = {
    [GW_CMD_ACK] = "ack",
    [GW_CMD_RESET] = "reset",
    [GW_CMD_SHELVE] = "shelve",
    [GW_CMD_UNSHELVE] = "unshelve",
    [GW_CMD_OUT_OF_SERVICE] = "out_of_service",
    [GW_CMD_IN_SERVICE] = "in_service",
};
#define NCMDS ((int)(sizeof(cmd_names) / sizeof(cmd_names[0])))

const char *gw_alarm_cmd_name(enum gw_alarm_cmd_type type)
{
    if ((int)type < 0 || (int)type >= NCMDS) {
        return "unknown";
    }
    return cmd_names[type];
}

int gw_alarm_cmd_from_name(const char *name)
{
    for (int i = 0; name != NULL && i < NCMDS; i++) {
        if (strcmp(name, cmd_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- helpers ---- */

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* src into dst[size], cut at a UTF-8 character boundary when too long. */
static void copy_name(char *dst, size_t size, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            n--; /* src[n] continues a character: cut before the character */
        }
    }
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

static bool rule_applies(const struct gw_config *cfg, int ri, int si)
{
    const struct gw_rule_cfg *r = &cfg->rules[ri];
    const struct gw_sensor_cfg *s = &cfg->sensors[si];
    if (r->sensor != NULL && (s->id == NULL || strcmp(r->sensor, s->id) != 0)) {
        return false;
    }
    if (r->kind != NULL && (s->kind == NULL || strcmp(r->kind, s->kind) != 0)) {
        return false;
    }
    return true;
}

static int find_sensor(const struct gw_config *cfg, const char *id, size_t len)
{
    for (int i = 0; i < cfg->nsensors; i++) {
        const char *s = cfg->sensors[i].id;
        if (s != NULL && strlen(s) == len && memcmp(s, id, len) == 0) {
            return i;
        }
    }
    return -1;
}

/* The rule of `slug` that applies to sensor si; -1 when none. */
static int find_rule(const struct gw_config *cfg, const char *slug, int si)
{
    for (int i = 0; i < cfg->nrules; i++) {
        if (cfg->rules[i].slug != NULL && strcmp(cfg->rules[i].slug, slug) == 0 &&
            rule_applies(cfg, i, si)) {
            return i;
        }
    }
    return -1;
}

int gw_alarms_parse_key(const struct gw_alarms *al, const char *key, int *rule_index,
                        int *sensor_index)
{
    const char *slash = key ? strchr(key, '/') : NULL;
    if (slash == NULL) {
        return -ENOENT;
    }
    int si = find_sensor(al->cfg, key, (size_t)(slash - key));
    int ri = si < 0 ? -1 : find_rule(al->cfg, slash + 1, si);
    if (ri < 0) {
        return -ENOENT;
    }
    if (rule_index) {
        *rule_index = ri;
    }
    if (sensor_index) {
        *sensor_index = si;
    }
    return 0;
}

static bool latched(const struct gw_alarms *al, const struct gw_alarm *a)
{
    return !a->system && al->cfg->rules[a->rule_index].latch;
}

static bool source_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static bool slug_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* "<source>/<slug>" as a system alarm's key: [A-Za-z0-9_.-]+/[a-z0-9-]+, < GW_KEY_MAX. */
static bool system_key_shape(const char *key)
{
    if (key == NULL || strnlen(key, GW_KEY_MAX) >= GW_KEY_MAX) {
        return false;
    }
    const char *p = key;
    while (source_char(*p)) {
        p++;
    }
    if (p == key || *p != '/' || p[1] == '\0') {
        return false;
    }
    for (p++; *p; p++) {
        if (!slug_char(*p)) {
            return false;
        }
    }
    return true;
}

/* A system key's source names a configured sensor (the key would be a rule alarm's). */
static bool source_is_sensor(const struct gw_config *cfg, const char *key)
{
    return find_sensor(cfg, key, (size_t)(strchr(key, '/') - key)) >= 0;
}

static bool class_valid(enum gw_alarm_class cls)
{
    return (int)cls >= 0 && (int)cls < GW_NCLASSES;
}

static int64_t chatter_window_ms(const struct gw_alarms *al)
{
    return (int64_t)al->cfg->alarms.chatter_minutes * 60000;
}

static bool chatter_enabled(const struct gw_alarms *al)
{
    return al->cfg->alarms.chatter_count > 0 && al->cfg->alarms.chatter_minutes > 0;
}

/* The ring holds GW_ALARM_RAISE_RING raises, so "more than limit" needs limit < that. */
static int chatter_limit(const struct gw_alarms *al)
{
    int n = al->cfg->alarms.chatter_count;
    return n < GW_ALARM_RAISE_RING - 1 ? n : GW_ALARM_RAISE_RING - 1;
}

/* Forget raises outside the window [now - window, now]: a raise at r counts while now < r + w. */
static void prune_raises(const struct gw_alarms *al, struct gw_alarm *a, int64_t now_ms)
{
    int64_t w = chatter_window_ms(al);
    int k = 0;
    for (int i = 0; i < a->nraises; i++) {
        if (now_ms - a->raises_ms[i] < w) {
            a->raises_ms[k++] = a->raises_ms[i];
        }
    }
    a->nraises = k;
}

/* Count a raise; true when it starts chattering. */
static bool count_raise(const struct gw_alarms *al, struct gw_alarm *a, int64_t now_ms)
{
    if (!chatter_enabled(al)) {
        return false;
    }
    prune_raises(al, a, now_ms);
    if (a->nraises == GW_ALARM_RAISE_RING) {
        memmove(a->raises_ms, a->raises_ms + 1,
                sizeof(a->raises_ms[0]) * (GW_ALARM_RAISE_RING - 1));
        a->nraises--;
    }
    a->raises_ms[a->nraises++] = now_ms;
    if (!a->chattering && a->nraises > chatter_limit(al)) {
        a->chattering = true;
        a->suppressed = 0;
        return true;
    }
    return false;
}

/* ---- records ---- */

static int *slot_of(const struct gw_alarms *al, int ri, int si)
{
    return &al->slot[(size_t)ri * (size_t)al->cfg->nsensors + (size_t)si];
}

static struct gw_alarm *get_rec(const struct gw_alarms *al, int ri, int si)
{
    int i = *slot_of(al, ri, si);
    return i < 0 ? NULL : &al->recs[i];
}

static int reserve(struct gw_alarms *al, int n)
{
    if (n <= al->cap) {
        return 0;
    }
    int cap = al->cap ? al->cap : 16;
    while (cap < n) {
        cap *= 2;
    }
    struct gw_alarm *r = realloc(al->recs, sizeof(*r) * (size_t)cap);
    if (r == NULL) {
        return -ENOMEM;
    }
    al->recs = r;
    al->cap = cap;
    return 0;
}

static struct gw_alarm *new_rec(struct gw_alarms *al, int ri, int si)
{
    if (reserve(al, al->nrecs + 1) < 0) {
        return NULL;
    }
    struct gw_alarm *a = &al->recs[al->nrecs];
    memset(a, 0, sizeof(*a));
    a->rule_index = ri;
    a->sensor_index = si;
    a->alarm_class = al->cfg->rules[ri].alarm_class;
    copy_name(a->name, sizeof(a->name), al->cfg->rules[ri].name);
    snprintf(a->key, sizeof(a->key), "%s/%s", al->cfg->sensors[si].id, al->cfg->rules[ri].slug);
    *slot_of(al, ri, si) = al->nrecs++;
    return a;
}

static struct gw_alarm *find_system(const struct gw_alarms *al, const char *key)
{
    for (int i = 0; key != NULL && i < al->nrecs; i++) {
        if (al->recs[i].system && strcmp(al->recs[i].key, key) == 0) {
            return &al->recs[i];
        }
    }
    return NULL;
}

/* key: system_key_shape already checked. */
static struct gw_alarm *new_system_rec(struct gw_alarms *al, const char *key)
{
    if (reserve(al, al->nrecs + 1) < 0) {
        return NULL;
    }
    struct gw_alarm *a = &al->recs[al->nrecs++];
    memset(a, 0, sizeof(*a));
    a->rule_index = -1;
    a->sensor_index = -1;
    a->system = true;
    copy_str(a->key, sizeof(a->key), key);
    return a;
}

static void drop_rec(struct gw_alarms *al, int i)
{
    struct gw_alarm *a = &al->recs[i];
    if (!a->system) {
        *slot_of(al, a->rule_index, a->sensor_index) = -1;
    }
    if (i != al->nrecs - 1) {
        *a = al->recs[al->nrecs - 1];
        if (!a->system) {
            *slot_of(al, a->rule_index, a->sensor_index) = i;
        }
    }
    al->nrecs--;
}

static void maybe_drop(struct gw_alarms *al, struct gw_alarm *a)
{
    if (a->state == GW_ALARM_NORMAL && a->nraises == 0 && !a->chattering && !a->notify_pending) {
        drop_rec(al, (int)(a - al->recs));
    }
}

struct gw_alarms *gw_alarms_new(const struct gw_config *cfg)
{
    struct gw_alarms *al = calloc(1, sizeof(*al));
    if (al == NULL) {
        return NULL;
    }
    al->cfg = cfg;
    size_t nslots = (size_t)cfg->nrules * (size_t)cfg->nsensors;
    al->slot = malloc(sizeof(int) * (nslots ? nslots : 1));
    al->oos = calloc(cfg->nsensors > 0 ? (size_t)cfg->nsensors : 1, sizeof(*al->oos));
    if (al->slot == NULL || al->oos == NULL) {
        gw_alarms_free(al);
        return NULL;
    }
    for (size_t i = 0; i < nslots; i++) {
        al->slot[i] = -1;
    }
    return al;
}

void gw_alarms_free(struct gw_alarms *al)
{
    if (al == NULL) {
        return;
    }
    free(al->recs);
    free(al->slot);
    free(al->oos);
    free(al);
}

/* ---- changes ---- */

static void put(struct gw_alarm_change *out, int *n, const struct gw_alarm *a,
                const char *transition, const char *by, const char *note,
                enum gw_notify_action notify, int64_t ts_ms)
{
    struct gw_alarm_change *c = &out[(*n)++];
    c->alarm = *a;
    c->transition = transition;
    copy_str(c->by, sizeof(c->by), by);
    copy_str(c->note, sizeof(c->note), note);
    c->notify = notify;
    c->ts_ms = ts_ms;
}

/* A raise that starts over: new time, nobody has acknowledged it, escalation from 0. */
static void fresh_raise(struct gw_alarm *a, int64_t now_ms)
{
    a->raised_at_ms = now_ms;
    a->acked_at_ms = 0;
    a->acked_by[0] = '\0';
    a->cleared_at_ms = 0;
    a->level = 0;
    a->note[0] = '\0';
    a->needs_reset = false;
    a->shelved_until_ms = 0;
    a->shelved_by[0] = '\0';
}

/* A raise notification that chattering may hold back. */
static enum gw_notify_action rate_limit(const struct gw_alarms *al, struct gw_alarm *a,
                                        int64_t now_ms)
{
    if (a->chattering && a->notified_at_ms != 0 &&
        now_ms - a->notified_at_ms < chatter_window_ms(al)) {
        a->notify_pending = true;
        a->suppressed++;
        return GW_NOTIFY_NONE;
    }
    a->notified_at_ms = now_ms;
    a->notify_pending = false;
    return GW_NOTIFY_RAISE;
}

/* A clear is told only to those told of the raise: none when the raise was held back. */
static enum gw_notify_action clear_notify(struct gw_alarm *a)
{
    if (a->notify_pending) {
        a->notify_pending = false;
        return GW_NOTIFY_NONE;
    }
    return GW_NOTIFY_CLEAR;
}

/* unshelve, its expiry, in_service: back to what the condition says. */
static enum gw_notify_action reevaluate(struct gw_alarm *a, int64_t now_ms)
{
    a->shelved_until_ms = 0;
    a->shelved_by[0] = '\0';
    a->notify_pending = false;
    a->needs_reset = false;
    if (a->condition) {
        fresh_raise(a, now_ms);
        a->state = GW_ALARM_UNACKED;
        a->notified_at_ms = now_ms;
        return GW_NOTIFY_RAISE;
    }
    a->state = GW_ALARM_NORMAL;
    return GW_NOTIFY_NONE;
}

static void to_out_of_service(struct gw_alarm *a)
{
    a->state = GW_ALARM_OUT_OF_SERVICE;
    a->shelved_until_ms = 0;
    a->shelved_by[0] = '\0';
    a->needs_reset = false;
    a->notify_pending = false;
}

/* ---- rule transitions ---- */

/* The condition of a (off until now) comes on. */
static int raise_rec(struct gw_alarms *al, struct gw_alarm *a, const struct gw_value *value,
                     bool test, int64_t now, struct gw_alarm_change *out)
{
    a->condition = true;
    a->needs_reset = false;
    if (value != NULL) {
        a->value = *value;
    } else {
        memset(&a->value, 0, sizeof(a->value));
    }
    bool chatter_started = count_raise(al, a, now);
    enum gw_notify_action notify = GW_NOTIFY_NONE;
    switch (a->state) {
    case GW_ALARM_NORMAL:
        fresh_raise(a, now);
        a->test = test;
        if (!a->system && al->oos[a->sensor_index].on) {
            a->state = GW_ALARM_OUT_OF_SERVICE; /* born out of service: nobody is told */
        } else {
            a->state = GW_ALARM_UNACKED;
            notify = rate_limit(al, a, now);
        }
        break;
    case GW_ALARM_RTN_UNACKED:
    case GW_ALARM_ACKED: /* acked with the condition gone (latched): a new occurrence */
        fresh_raise(a, now);
        a->test = test;
        a->state = GW_ALARM_UNACKED;
        notify = rate_limit(al, a, now);
        break;
    case GW_ALARM_UNACKED:         /* latched, condition had gone: still escalating */
        a->test = a->test && test; /* a test press never downgrades an open real alarm */
        break;
    case GW_ALARM_SHELVED:        /* remembered for unshelve */
    case GW_ALARM_OUT_OF_SERVICE: /* remembered for in_service */
        a->test = test;           /* what unshelve / in_service will raise */
        break;
    }
    int n = 0;
    put(out, &n, a, "raise", "", "", notify, now);
    if (chatter_started) {
        put(out, &n, a, "chattering", "", "", GW_NOTIFY_NONE, now);
    }
    return n;
}

static int on_raise(struct gw_alarms *al, const struct gw_alarm_transition *t,
                    struct gw_alarm_change *out)
{
    struct gw_alarm *a = get_rec(al, t->rule_index, t->sensor_index);
    if (a != NULL && a->condition) {
        return 0;
    }
    if (a == NULL && (a = new_rec(al, t->rule_index, t->sensor_index)) == NULL) {
        return -ENOMEM;
    }
    return raise_rec(al, a, &t->value, t->test, t->ts_ms, out);
}

/* The condition of a goes off; value NULL keeps the one it has. */
static int clear_rec(struct gw_alarms *al, struct gw_alarm *a, const struct gw_value *value,
                     int64_t ts_ms, struct gw_alarm_change *out)
{
    if (a == NULL || !a->condition) {
        return 0;
    }
    a->condition = false;
    if (value != NULL) {
        a->value = *value;
    }
    a->cleared_at_ms = ts_ms;
    enum gw_notify_action notify = GW_NOTIFY_NONE;
    switch (a->state) {
    case GW_ALARM_UNACKED:
    case GW_ALARM_ACKED:
        if (latched(al, a)) {
            a->needs_reset = true; /* held until acknowledged and reset */
        } else {
            a->state = a->state == GW_ALARM_UNACKED ? GW_ALARM_RTN_UNACKED : GW_ALARM_NORMAL;
            notify = clear_notify(a);
        }
        break;
    case GW_ALARM_NORMAL:
    case GW_ALARM_RTN_UNACKED:
    case GW_ALARM_SHELVED:
    case GW_ALARM_OUT_OF_SERVICE:
        break;
    }
    int n = 0;
    put(out, &n, a, "clear", "", "", notify, ts_ms);
    maybe_drop(al, a);
    return n;
}

static int on_clear(struct gw_alarms *al, const struct gw_alarm_transition *t,
                    struct gw_alarm_change *out)
{
    return clear_rec(al, get_rec(al, t->rule_index, t->sensor_index), &t->value, t->ts_ms, out);
}

int gw_alarms_on_transition(struct gw_alarms *al, const struct gw_alarm_transition *t,
                            struct gw_alarm_change *out, int max)
{
    if (t == NULL || t->rule_index < 0 || t->rule_index >= al->cfg->nrules || t->sensor_index < 0 ||
        t->sensor_index >= al->cfg->nsensors) {
        return -EINVAL;
    }
    if (out == NULL || max < GW_ALARMS_TRANSITION_CHANGES) {
        return -ENOSPC;
    }
    return t->type == GW_TRANSITION_RAISE ? on_raise(al, t, out) : on_clear(al, t, out);
}

/* ---- system alarms ---- */

static bool system_key_ok(const struct gw_alarms *al, const char *key)
{
    return system_key_shape(key) && !source_is_sensor(al->cfg, key);
}

int gw_alarms_system_raise(struct gw_alarms *al, const char *key, const char *name,
                           enum gw_alarm_class cls, const struct gw_value *value, bool test,
                           int64_t now_ms, struct gw_alarm_change *out, int max)
{
    struct gw_alarm *a = NULL;
    if (!system_key_ok(al, key) || name == NULL || name[0] == '\0' ||
        strlen(name) >= sizeof(a->name) || !gw_utf8_valid(name) || !class_valid(cls)) {
        return -EINVAL;
    }
    if (out == NULL || max < GW_ALARMS_TRANSITION_CHANGES) {
        return -ENOSPC;
    }
    a = find_system(al, key);
    if (a != NULL && a->condition) {
        return 0;
    }
    if (a == NULL && (a = new_system_rec(al, key)) == NULL) {
        return -ENOMEM;
    }
    a->alarm_class = cls;
    copy_str(a->name, sizeof(a->name), name);
    return raise_rec(al, a, value, test, now_ms, out);
}

int gw_alarms_system_clear(struct gw_alarms *al, const char *key, int64_t now_ms,
                           struct gw_alarm_change *out, int max)
{
    if (!system_key_ok(al, key)) {
        return -EINVAL;
    }
    if (out == NULL || max < GW_ALARMS_TRANSITION_CHANGES) {
        return -ENOSPC;
    }
    return clear_rec(al, find_system(al, key), NULL, now_ms, out);
}

/* ---- commands ---- */

static int cmd_ack(struct gw_alarms *al, struct gw_alarm *a, const struct gw_alarm_command *cmd,
                   int64_t now, struct gw_alarm_change *out, char *err, size_t errlen)
{
    enum gw_alarm_state st = a ? a->state : GW_ALARM_NORMAL;
    if (st != GW_ALARM_UNACKED && st != GW_ALARM_RTN_UNACKED) {
        return fail(err, errlen, -EPERM,
                    "wrong state: %s is %s; only unacked or rtn_unacked alarms can be acknowledged",
                    cmd->key, gw_alarm_state_name(st));
    }
    if (st == GW_ALARM_UNACKED) {
        a->state = GW_ALARM_ACKED; /* a latched one with the condition gone keeps needs_reset */
    } else if (latched(al, a)) {
        a->state = GW_ALARM_ACKED; /* rtn_unacked of a rule latched since: waits for reset */
        a->needs_reset = true;
    } else {
        a->state = GW_ALARM_NORMAL;
    }
    a->acked_at_ms = now;
    copy_str(a->acked_by, sizeof(a->acked_by), cmd->by);
    copy_str(a->note, sizeof(a->note), cmd->note);
    a->notify_pending = false;
    int n = 0;
    put(out, &n, a, "ack", cmd->by, cmd->note, GW_NOTIFY_STOP, now);
    maybe_drop(al, a);
    return n;
}

static int cmd_reset(struct gw_alarms *al, struct gw_alarm *a, const struct gw_alarm_command *cmd,
                     int64_t now, struct gw_alarm_change *out, char *err, size_t errlen)
{
    if (a != NULL && a->system) {
        return fail(err, errlen, -EPERM, "not latched: %s is a gateway alarm; it clears by itself",
                    cmd->key);
    }
    enum gw_alarm_state st = a ? a->state : GW_ALARM_NORMAL;
    if (st != GW_ALARM_UNACKED && st != GW_ALARM_ACKED && st != GW_ALARM_RTN_UNACKED) {
        return fail(err, errlen, -EPERM, "wrong state: %s is %s; nothing to reset", cmd->key,
                    gw_alarm_state_name(st));
    }
    if (!latched(al, a)) {
        return fail(err, errlen, -EPERM,
                    "not latched: %s clears by itself; reset is for latched alarms", cmd->key);
    }
    if (a->condition) {
        return fail(err, errlen, -EPERM, "condition still present: %s cannot be reset yet",
                    cmd->key);
    }
    if (st != GW_ALARM_ACKED) {
        return fail(err, errlen, -EPERM, "acknowledge first: %s is %s", cmd->key,
                    gw_alarm_state_name(st));
    }
    a->state = GW_ALARM_NORMAL;
    a->needs_reset = false;
    int n = 0;
    put(out, &n, a, "reset", cmd->by, cmd->note, GW_NOTIFY_CLEAR, now);
    maybe_drop(al, a);
    return n;
}

static int cmd_shelve(struct gw_alarms *al, struct gw_alarm *a, const struct gw_alarm_command *cmd,
                      int64_t now, struct gw_alarm_change *out, char *err, size_t errlen)
{
    (void)al;
    enum gw_alarm_state st = a ? a->state : GW_ALARM_NORMAL;
    if (st != GW_ALARM_UNACKED && st != GW_ALARM_ACKED && st != GW_ALARM_RTN_UNACKED) {
        return fail(err, errlen, -EPERM,
                    "wrong state: %s is %s; only unacked, acked or rtn_unacked alarms can be "
                    "shelved",
                    cmd->key, gw_alarm_state_name(st));
    }
    a->state = GW_ALARM_SHELVED;
    a->shelved_until_ms = now + (int64_t)cmd->minutes * 60000;
    copy_str(a->shelved_by, sizeof(a->shelved_by), cmd->by);
    copy_str(a->note, sizeof(a->note), cmd->note);
    a->needs_reset = false;
    a->notify_pending = false;
    int n = 0;
    put(out, &n, a, "shelve", cmd->by, cmd->note, GW_NOTIFY_STOP, now);
    return n;
}

static int cmd_unshelve(struct gw_alarms *al, struct gw_alarm *a,
                        const struct gw_alarm_command *cmd, int64_t now,
                        struct gw_alarm_change *out, char *err, size_t errlen)
{
    enum gw_alarm_state st = a ? a->state : GW_ALARM_NORMAL;
    if (st != GW_ALARM_SHELVED) {
        return fail(err, errlen, -EPERM, "wrong state: %s is %s, not shelved", cmd->key,
                    gw_alarm_state_name(st));
    }
    enum gw_notify_action notify = reevaluate(a, now);
    int n = 0;
    put(out, &n, a, "unshelve", cmd->by, cmd->note, notify, now);
    maybe_drop(al, a);
    return n;
}

/* How many non-normal (or only out-of-service) alarms sensor si has. */
static int sensor_recs(const struct gw_alarms *al, int si, bool oos_only)
{
    int n = 0;
    for (int i = 0; i < al->nrecs; i++) {
        const struct gw_alarm *a = &al->recs[i];
        if (a->sensor_index == si && a->state != GW_ALARM_NORMAL &&
            (!oos_only || a->state == GW_ALARM_OUT_OF_SERVICE)) {
            n++;
        }
    }
    return n;
}

static int cmd_sensor(struct gw_alarms *al, const struct gw_alarm_command *cmd, int64_t now,
                      struct gw_alarm_change *out, int max, char *err, size_t errlen)
{
    if (cmd->sensor == NULL || cmd->sensor[0] == '\0') {
        return fail(err, errlen, -EINVAL, "missing \"sensor\"");
    }
    int si = find_sensor(al->cfg, cmd->sensor, strlen(cmd->sensor));
    if (si < 0) {
        return fail(err, errlen, -ENOENT, "unknown sensor \"%s\"", cmd->sensor);
    }
    struct oos_entry *o = &al->oos[si];
    bool going_out = cmd->type == GW_CMD_OUT_OF_SERVICE;
    if (going_out && o->on) {
        return fail(err, errlen, -EPERM, "wrong state: sensor %s is already out of service%s%s",
                    cmd->sensor, o->by[0] ? " by " : "", o->by);
    }
    if (!going_out && !o->on) {
        return fail(err, errlen, -EPERM, "wrong state: sensor %s is not out of service",
                    cmd->sensor);
    }
    if (sensor_recs(al, si, !going_out) > max) {
        return fail(err, errlen, -ENOSPC, "internal: room for %d changes is not enough", max);
    }
    o->on = going_out;
    copy_str(o->by, sizeof(o->by), going_out ? cmd->by : "");
    o->since_ms = going_out ? now : 0;
    int n = 0;
    /* Backwards: a record dropped by maybe_drop is replaced by one already seen. */
    for (int i = al->nrecs - 1; i >= 0; i--) {
        struct gw_alarm *a = &al->recs[i];
        if (a->sensor_index != si || a->state == GW_ALARM_NORMAL) {
            continue;
        }
        if (going_out) {
            to_out_of_service(a);
            put(out, &n, a, "out_of_service", cmd->by, cmd->note, GW_NOTIFY_STOP, now);
        } else if (a->state == GW_ALARM_OUT_OF_SERVICE) {
            enum gw_notify_action notify = reevaluate(a, now);
            put(out, &n, a, "in_service", cmd->by, cmd->note, notify, now);
            maybe_drop(al, a);
        }
    }
    return n;
}

int gw_alarms_command(struct gw_alarms *al, const struct gw_alarm_command *cmd, int64_t now_ms,
                      struct gw_alarm_change *out, int max, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (cmd == NULL || (int)cmd->type < 0 || (int)cmd->type >= NCMDS) {
        return fail(err, errlen, -EINVAL, "unknown command");
    }
    if (cmd->by == NULL || cmd->by[0] == '\0') {
        return fail(err, errlen, -EINVAL, "missing \"by\": say who does it");
    }
    if (strlen(cmd->by) >= GW_NAME_MAX) {
        return fail(err, errlen, -EINVAL, "\"by\" is too long (at most %d bytes)", GW_NAME_MAX - 1);
    }
    if (cmd->note != NULL && strlen(cmd->note) >= GW_NOTE_MAX) {
        return fail(err, errlen, -EINVAL, "\"note\" is too long (at most %d bytes)",
                    GW_NOTE_MAX - 1);
    }
    if (cmd->type == GW_CMD_OUT_OF_SERVICE || cmd->type == GW_CMD_IN_SERVICE) {
        return cmd_sensor(al, cmd, now_ms, out, max, err, errlen);
    }
    if (cmd->key == NULL || cmd->key[0] == '\0') {
        return fail(err, errlen, -EINVAL, "missing \"key\" (<sensor>/<rule-slug>)");
    }
    if (cmd->type == GW_CMD_SHELVE && (cmd->minutes < 1 || cmd->minutes > GW_SHELVE_MINUTES_MAX)) {
        return fail(err, errlen, -EINVAL, "\"minutes\" must be 1..%d, got %d",
                    GW_SHELVE_MINUTES_MAX, cmd->minutes);
    }
    int ri, si;
    struct gw_alarm *a = NULL;
    if (gw_alarms_parse_key(al, cmd->key, &ri, &si) == 0) {
        a = get_rec(al, ri, si);
    } else if ((a = find_system(al, cmd->key)) == NULL) {
        return fail(err, errlen, -ENOENT, "unknown alarm \"%s\"", cmd->key);
    }
    if (out == NULL || max < 1) {
        return fail(err, errlen, -ENOSPC, "internal: no room for the change");
    }
    switch (cmd->type) {
    case GW_CMD_ACK:
        return cmd_ack(al, a, cmd, now_ms, out, err, errlen);
    case GW_CMD_RESET:
        return cmd_reset(al, a, cmd, now_ms, out, err, errlen);
    case GW_CMD_SHELVE:
        return cmd_shelve(al, a, cmd, now_ms, out, err, errlen);
    case GW_CMD_UNSHELVE:
        return cmd_unshelve(al, a, cmd, now_ms, out, err, errlen);
    case GW_CMD_OUT_OF_SERVICE:
    case GW_CMD_IN_SERVICE:
        break;
    }
    return fail(err, errlen, -EINVAL, "unknown command");
}

/* ---- time ---- */

int gw_alarms_tick(struct gw_alarms *al, int64_t now_ms, struct gw_alarm_change *out, int max)
{
    int n = 0;
    if (out == NULL || max < CHANGES_PER_TICK) {
        return -ENOSPC;
    }
    int64_t w = chatter_window_ms(al);
    for (int i = al->nrecs - 1; i >= 0 && max - n >= CHANGES_PER_TICK; i--) {
        struct gw_alarm *a = &al->recs[i];
        if (a->state == GW_ALARM_SHELVED && now_ms >= a->shelved_until_ms) {
            enum gw_notify_action notify = reevaluate(a, now_ms);
            put(out, &n, a, "unshelve", "", "shelve expired", notify, now_ms);
        }
        if (chatter_enabled(al)) {
            prune_raises(al, a, now_ms);
        } else {
            a->nraises = 0;
        }
        if (a->chattering && (!chatter_enabled(al) || a->nraises <= chatter_limit(al))) {
            a->chattering = false;
            a->suppressed = 0;
            put(out, &n, a, "chattering", "", "", GW_NOTIFY_NONE, now_ms);
        }
        if (a->notify_pending) {
            if (a->state != GW_ALARM_UNACKED) {
                a->notify_pending = false;
            } else if (!a->chattering || now_ms - a->notified_at_ms >= w) {
                a->notify_pending = false;
                a->notified_at_ms = now_ms;
                put(out, &n, a, "raise", "", "", GW_NOTIFY_RAISE, now_ms);
            }
        }
        maybe_drop(al, a);
    }
    return n;
}

void gw_alarms_shift_time(struct gw_alarms *al, int64_t delta_ms)
{
    for (int i = 0; i < al->nrecs; i++) {
        struct gw_alarm *a = &al->recs[i];
        if (a->shelved_until_ms != 0) {
            a->shelved_until_ms += delta_ms;
        }
        if (a->notified_at_ms != 0) {
            a->notified_at_ms += delta_ms;
        }
        for (int k = 0; k < a->nraises; k++) {
            a->raises_ms[k] += delta_ms;
        }
    }
}

/* ---- queries ---- */

const struct gw_alarm *gw_alarms_get(const struct gw_alarms *al, int rule_index, int sensor_index)
{
    if (rule_index < 0 || rule_index >= al->cfg->nrules || sensor_index < 0 ||
        sensor_index >= al->cfg->nsensors) {
        return NULL;
    }
    return get_rec(al, rule_index, sensor_index);
}

const struct gw_alarm *gw_alarms_find(const struct gw_alarms *al, const char *key)
{
    int ri, si;
    if (gw_alarms_parse_key(al, key, &ri, &si) < 0) {
        return find_system(al, key);
    }
    return get_rec(al, ri, si);
}

const struct gw_alarm *gw_alarms_next(const struct gw_alarms *al, int *iter)
{
    while (*iter >= 0 && *iter < al->nrecs) {
        const struct gw_alarm *a = &al->recs[(*iter)++];
        if (a->state != GW_ALARM_NORMAL) {
            return a;
        }
    }
    return NULL;
}

int gw_alarms_count(const struct gw_alarms *al, int counts[GW_NCLASSES][GW_ALARM_NSTATES])
{
    memset(counts, 0, sizeof(int) * GW_NCLASSES * GW_ALARM_NSTATES);
    int total = 0;
    for (int i = 0; i < al->nrecs; i++) {
        const struct gw_alarm *a = &al->recs[i];
        if (a->state != GW_ALARM_NORMAL) {
            counts[a->alarm_class][a->state]++; /* kept valid: the rule's, or checked at raise */
            total++;
        }
    }
    return total;
}

int gw_alarms_set_level(struct gw_alarms *al, int rule_index, int sensor_index, int level)
{
    if (gw_alarms_get(al, rule_index, sensor_index) == NULL) {
        return -ENOENT;
    }
    struct gw_alarm *a = get_rec(al, rule_index, sensor_index);
    if (a->state == GW_ALARM_NORMAL) {
        return -ENOENT;
    }
    a->level = level;
    return 0;
}

int gw_alarms_set_level_key(struct gw_alarms *al, const char *key, int level)
{
    struct gw_alarm *a = (struct gw_alarm *)gw_alarms_find(al, key); /* al is ours to change */
    if (a == NULL || a->state == GW_ALARM_NORMAL) {
        return -ENOENT;
    }
    a->level = level;
    return 0;
}

bool gw_alarms_sensor_oos(const struct gw_alarms *al, int sensor_index, struct gw_oos_sensor *out)
{
    if (sensor_index < 0 || sensor_index >= al->cfg->nsensors || !al->oos[sensor_index].on) {
        return false;
    }
    if (out != NULL) {
        out->sensor_index = sensor_index;
        copy_str(out->by, sizeof(out->by), al->oos[sensor_index].by);
        out->since_ms = al->oos[sensor_index].since_ms;
    }
    return true;
}

int gw_alarms_oos_sensors(const struct gw_alarms *al, struct gw_oos_sensor *out, int max)
{
    int n = 0;
    for (int i = 0; i < al->cfg->nsensors; i++) {
        if (al->oos[i].on) {
            if (out != NULL && n < max) {
                gw_alarms_sensor_oos(al, i, &out[n]);
            }
            n++;
        }
    }
    return n;
}

/* ---- restore and reload ---- */

/* Make a record from outside (store, old config) obey the invariants. */
static void normalize(struct gw_alarms *al, struct gw_alarm *a)
{
    if (a->nraises < 0) {
        a->nraises = 0;
    }
    if (a->nraises > GW_ALARM_RAISE_RING) {
        a->nraises = GW_ALARM_RAISE_RING;
    }
    if (a->level < 0) {
        a->level = 0;
    }
    if (a->state == GW_ALARM_NORMAL || a->state == GW_ALARM_RTN_UNACKED) {
        a->condition = false;
    }
    if (a->state != GW_ALARM_SHELVED) {
        a->shelved_until_ms = 0;
        a->shelved_by[0] = '\0';
    }
    if (a->state != GW_ALARM_UNACKED) {
        a->notify_pending = false;
    }
    a->name[sizeof(a->name) - 1] = '\0';
    if (a->system) {
        a->rule_index = a->sensor_index = -1;
        a->needs_reset = false;
        return; /* never out of service: the caller refused that state */
    }
    const struct gw_rule_cfg *rule = &al->cfg->rules[a->rule_index];
    a->alarm_class = rule->alarm_class;
    copy_name(a->name, sizeof(a->name), rule->name);
    a->needs_reset = latched(al, a) && !a->condition &&
                     (a->state == GW_ALARM_UNACKED || a->state == GW_ALARM_ACKED);
    struct oos_entry *o = &al->oos[a->sensor_index];
    if (a->state == GW_ALARM_OUT_OF_SERVICE && !o->on) {
        o->on = true; /* by and since come with gw_alarms_restore_oos, if ever */
    } else if (a->state != GW_ALARM_NORMAL && o->on) {
        to_out_of_service(a);
    }
}

static int restore_system(struct gw_alarms *al, const struct gw_alarm *a)
{
    if (!system_key_shape(a->key)) {
        return -EINVAL;
    }
    if (source_is_sensor(al->cfg, a->key)) {
        return -ENOENT; /* the key is a sensor's now: that alarm is over */
    }
    if ((int)a->state < 0 || (int)a->state >= GW_ALARM_NSTATES ||
        a->state == GW_ALARM_OUT_OF_SERVICE || !class_valid(a->alarm_class) ||
        strnlen(a->name, sizeof(a->name)) == 0 ||
        strnlen(a->name, sizeof(a->name)) == sizeof(a->name)) {
        return -EINVAL;
    }
    struct gw_alarm *r = find_system(al, a->key);
    if (r == NULL && (r = new_system_rec(al, a->key)) == NULL) {
        return -ENOMEM;
    }
    *r = *a;
    normalize(al, r);
    return 0;
}

int gw_alarms_restore(struct gw_alarms *al, const struct gw_alarm *a)
{
    int ri, si;
    if (a == NULL) {
        return -ENOENT;
    }
    if (a->system) {
        return restore_system(al, a);
    }
    if (gw_alarms_parse_key(al, a->key, &ri, &si) < 0) {
        return -ENOENT;
    }
    if ((int)a->state < 0 || (int)a->state >= GW_ALARM_NSTATES) {
        return -EINVAL;
    }
    struct gw_alarm *r = get_rec(al, ri, si);
    if (r == NULL && (r = new_rec(al, ri, si)) == NULL) {
        return -ENOMEM;
    }
    char key[GW_KEY_MAX];
    memcpy(key, r->key, sizeof(key));
    *r = *a;
    memcpy(r->key, key, sizeof(key));
    r->rule_index = ri;
    r->sensor_index = si;
    normalize(al, r);
    return 0;
}

int gw_alarms_restore_oos(struct gw_alarms *al, int sensor_index, const char *by, int64_t since_ms)
{
    if (sensor_index < 0 || sensor_index >= al->cfg->nsensors) {
        return -EINVAL;
    }
    struct oos_entry *o = &al->oos[sensor_index];
    o->on = true;
    copy_str(o->by, sizeof(o->by), by);
    o->since_ms = since_ms;
    for (int i = 0; i < al->nrecs; i++) {
        struct gw_alarm *a = &al->recs[i];
        if (a->sensor_index == sensor_index && a->state != GW_ALARM_NORMAL) {
            to_out_of_service(a);
        }
    }
    return 0;
}

/*
 * old's record in al's config: 0 and the indexes (-1 for a system alarm), or
 * -1 when its sensor or rule is gone (a system alarm: its source is a sensor).
 */
static int map_rec(const struct gw_alarms *al, const struct gw_alarms *old,
                   const struct gw_alarm *a, int *ri, int *si)
{
    if (a->system) {
        *ri = *si = -1;
        return source_is_sensor(al->cfg, a->key) ? -1 : 0;
    }
    const char *id = old->cfg->sensors[a->sensor_index].id;
    *si = id ? find_sensor(al->cfg, id, strlen(id)) : -1;
    *ri = *si < 0 ? -1 : find_rule(al->cfg, old->cfg->rules[a->rule_index].slug, *si);
    return *ri < 0 ? -1 : 0;
}

int gw_alarms_carry_over(struct gw_alarms *al, const struct gw_alarms *old, int64_t now_ms,
                         struct gw_alarm_change *out, int max)
{
    int need = 0, ri, si;
    for (int i = 0; i < old->nrecs; i++) {
        const struct gw_alarm *a = &old->recs[i];
        if (map_rec(al, old, a, &ri, &si) < 0) {
            need += a->state != GW_ALARM_NORMAL;
        } else if (!a->system && a->needs_reset && !al->cfg->rules[ri].latch) {
            need++;
        }
    }
    if (need > 0 && (out == NULL || need > max)) {
        return -ENOSPC;
    }
    if (reserve(al, al->nrecs + old->nrecs) < 0) {
        return -ENOMEM;
    }
    for (int i = 0; i < old->cfg->nsensors; i++) {
        const char *id = old->cfg->sensors[i].id;
        int ni = id && old->oos[i].on ? find_sensor(al->cfg, id, strlen(id)) : -1;
        if (ni >= 0) {
            al->oos[ni] = old->oos[i];
        }
    }
    int n = 0;
    for (int i = 0; i < old->nrecs; i++) {
        const struct gw_alarm *a = &old->recs[i];
        if (map_rec(al, old, a, &ri, &si) < 0) {
            if (a->state != GW_ALARM_NORMAL) {
                struct gw_alarm gone = *a;
                enum gw_notify_action notify = clear_notify(&gone);
                if (gone.condition) {
                    gone.cleared_at_ms = now_ms;
                }
                gone.state = GW_ALARM_NORMAL;
                gone.condition = false;
                gone.needs_reset = false;
                gone.shelved_until_ms = 0;
                gone.shelved_by[0] = '\0';
                put(out, &n, &gone, "clear", "",
                    a->system ? "its source is now a sensor id" : "removed from the config", notify,
                    now_ms);
            }
            continue;
        }
        if (a->system) {
            struct gw_alarm *r = find_system(al, a->key);
            if (r == NULL) {
                r = new_system_rec(al, a->key); /* cannot fail: reserved above */
            }
            *r = *a;
            normalize(al, r);
            continue;
        }
        struct gw_alarm *r = get_rec(al, ri, si);
        if (r == NULL) {
            r = new_rec(al, ri, si); /* cannot fail: reserved above */
        }
        bool held = a->needs_reset;
        *r = *a;
        r->rule_index = ri;
        r->sensor_index = si;
        snprintf(r->key, sizeof(r->key), "%s/%s", al->cfg->sensors[si].id, al->cfg->rules[ri].slug);
        if (held && !al->cfg->rules[ri].latch) {
            /* The latch that held it is gone: it clears as it would have. */
            r->state = r->state == GW_ALARM_UNACKED ? GW_ALARM_RTN_UNACKED : GW_ALARM_NORMAL;
            r->needs_reset = false;
            enum gw_notify_action notify = clear_notify(r);
            put(out, &n, r, "clear", "", "latch removed from the config", notify, now_ms);
        }
        normalize(al, r);
    }
    return n;
}
