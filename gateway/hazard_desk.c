/*
 * The hazard desk (see hazard_desk.h): the pure register (hazards.c) decides,
 * this file restores it from the store, records its entries and drives time.
 *
 * The store's hazard_log is the truth. The register in memory is the disk's
 * chain plus, at most, the entries of the alarm batch now being committed;
 * anything else (a record lost before it reached the disk, a chain the disk
 * no longer holds) is found by comparing the chain heads once a second and
 * repaired by reading the register from the disk again.
 */
#include "hazard_desk.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "log.h"
#include "timefmt.h"

#define MOD "hazard"
#define TICK_BATCH 8
#define MAX_WAITING 32 /* auto-opens held while the store cannot write */

_Static_assert(GW_HAZARD_NCATEGORIES == GW_HZ_NCATEGORIES,
               "config.h's hazard categories follow hazards.h's");

/* What the retained record shows besides the hazard: its entries and last change. */
struct meta {
    char id[GW_HZ_ID_MAX];
    int entries;
    int64_t updated_at_ms;
};

struct meta_list {
    struct meta *items;
    int n, cap;
};

/* An auto-open that waits for the store (strings copied). */
struct waiting_open {
    char rule[GW_NAME_MAX * 2];
    char key[GW_KEY_MAX];
    enum gw_hazard_category category;
    char building[GW_HZ_PLACE_MAX], floor[GW_HZ_PLACE_MAX], zone[GW_HZ_PLACE_MAX];
    char description[GW_HZ_DESC_MAX];
};

struct gw_hazard_desk {
    const struct gw_config *cfg;
    struct gw_store *store;
    struct gw_hazard_desk_host host;
    struct gw_hazards *reg;       /* NULL: the stored chain does not verify */
    char invalid[GW_ERR_MAX];     /* why reg is NULL */
    uint64_t invalid_seq;         /* the first bad seq (0: the store could not be read) */
    struct meta_list meta;        /* per hazard, in reg's order of creation */
    bool settings_stale;          /* a reload's settings wait until the disk matches */
    uint64_t last_log_record;     /* outbox seq of the newest GW_REC_HAZARD_LOG record */
    struct waiting_open *waiting; /* MAX_WAITING */
    int nwaiting;
    struct gw_complaint store_complaint;
};

/* ---- small helpers ---- */

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* src cut to size with anything but printable ASCII as '?': safe in a message and in JSON. */
static void ascii_clip(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[i] = '\0';
}

bool gw_hazard_overdue_key(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    size_t sl = strlen(GW_HAZARD_OVERDUE_SUFFIX);
    return n > sl + 3 && strncmp(key, "HZ-", 3) == 0 &&
           strcmp(key + n - sl, GW_HAZARD_OVERDUE_SUFFIX) == 0 && memchr(key, '/', n - sl) == NULL;
}

static void overdue_key(const char *id, char key[GW_KEY_MAX])
{
    snprintf(key, GW_KEY_MAX, "%s" GW_HAZARD_OVERDUE_SUFFIX, id);
}

enum gw_hazard_category gw_hazard_category_of_kind(const char *kind)
{
    if (!kind) {
        return GW_HZ_OTHER;
    }
    if (strcmp(kind, "hydrant_pressure") == 0 || strcmp(kind, "smoke") == 0 ||
        strcmp(kind, "fire_door") == 0 || strncmp(kind, "extinguisher", 12) == 0) {
        return GW_HZ_FIRE_EQUIPMENT;
    }
    if (strcmp(kind, "exit_door") == 0) {
        return GW_HZ_EVACUATION_ROUTE;
    }
    return GW_HZ_OTHER;
}

/* ---- JSON: the hazard, the request, the result ---- */

static json_t *time_or_empty(int64_t ms)
{
    if (ms == 0) {
        return json_string("");
    }
    char buf[40];
    gw_format_rfc3339(ms, buf, sizeof(buf));
    return json_string(buf);
}

char *gw_hazard_json(const struct gw_hazard *h, uint64_t seq, int64_t updated_at_ms, int entries)
{
    if (!h) {
        return NULL;
    }
    json_t *o = json_object();
    if (!o) {
        return NULL;
    }
    struct {
        const char *key;
        json_t *v;
    } members[] = {
        {"seq", json_integer((json_int_t)seq)},
        {"id", json_string(h->id)},
        {"category", json_string(gw_hazard_category_name(h->category))},
        {"building", json_string(h->building)},
        {"floor", json_string(h->floor)},
        {"zone", json_string(h->zone)},
        {"description", json_string(h->description)},
        {"found_at", time_or_empty(h->found_at_ms)},
        {"found_by", json_string(h->found_by)},
        {"source_alarm", json_string(h->source_alarm)},
        {"responsible", json_string(h->responsible)},
        {"deadline", time_or_empty(h->deadline_ms)},
        {"status", json_string(gw_hazard_status_name(h->status))},
        {"verified_by", json_string(h->verified_by)},
        {"overdue", json_boolean(h->overdue)},
        {"updated_at", time_or_empty(updated_at_ms)},
        {"entries", json_integer(entries)},
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        /* json_string is NULL for a string that is not UTF-8: set_new drops it and fails */
        ok = json_object_set_new(o, members[i].key, members[i].v) == 0 && ok;
    }
    char *s = ok ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

char *gw_hazard_result_json(uint64_t seq, const char *name, const char *request_id,
                            const char *hazard, bool ok, const char *error, const char *status)
{
    char sub[48], cmd[64];
    ascii_clip(sub, sizeof(sub), name ? name : "?");
    snprintf(cmd, sizeof(cmd), GW_HAZARD_CMD_PREFIX "%s", sub);
    json_t *o = json_pack("{sI sb ss}", "seq", (json_int_t)seq, "ok", ok, "cmd", cmd);
    if (!o) {
        return NULL;
    }
    if (request_id && request_id[0]) {
        json_object_set_new(o, "id", json_string(request_id));
    }
    if (hazard && hazard[0]) {
        json_object_set_new(o, "hazard", json_string(hazard));
    }
    if (!ok && error) {
        json_object_set_new(o, "error", json_string(error));
    }
    if (ok && status) {
        json_object_set_new(o, "status", json_string(status));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* The keys each command takes (all strings but deadline). */
static const char *const keys_open[] = {"by",   "category",    "building",    "floor",
                                        "zone", "description", "responsible", "deadline",
                                        "note", "id",          NULL};
static const char *const keys_update[] = {"hazard",      "by",   "responsible", "deadline",
                                          "description", "note", "id",          NULL};
static const char *const keys_rectifying[] = {"hazard", "by", "note", "id", NULL};
static const char *const keys_close[] = {"hazard", "by", "note", "verifier", "id", NULL};
static const char *const keys_reopen[] = {"hazard", "by", "deadline", "note", "id", NULL};

static const char *const *keys_of(enum gw_hazard_cmd_type t)
{
    switch (t) {
    case GW_HZ_CMD_OPEN:
        return keys_open;
    case GW_HZ_CMD_UPDATE:
        return keys_update;
    case GW_HZ_CMD_RECTIFYING:
        return keys_rectifying;
    case GW_HZ_CMD_CLOSE:
        return keys_close;
    case GW_HZ_CMD_REOPEN:
        return keys_reopen;
    }
    return keys_rectifying;
}

static bool listed(const char *const *keys, const char *key)
{
    for (int i = 0; keys[i]; i++) {
        if (strcmp(keys[i], key) == 0) {
            return true;
        }
    }
    return false;
}

/* A string member without NUL bytes: its value, or NULL (absent, or an error in err). */
static const char *member_str(json_t *root, const char *key, int *rc, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!v) {
        return NULL;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        *rc = fail(err, errlen, -EINVAL, "\"%s\" must be a string (without NUL)", key);
        return NULL;
    }
    return json_string_value(v);
}

void gw_hazard_request_free(struct gw_hazard_request *req)
{
    if (req) {
        json_decref(req->json);
        req->json = NULL;
    }
}

int gw_hazard_request_parse(const char *name, const void *payload, size_t len,
                            struct gw_hazard_request *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int type = gw_hazard_cmd_from_name(name);
    if (type < 0) {
        char shown[41];
        ascii_clip(shown, sizeof(shown), name);
        return fail(err, errlen, -EINVAL,
                    "unknown hazard command \"%s\" (open, update, rectifying, close, reopen)",
                    shown);
    }
    out->cmd.type = (enum gw_hazard_cmd_type)type;
    if (len > GW_COMMAND_MAX_BYTES) {
        return fail(err, errlen, -EINVAL, "payload too large (at most %d bytes)",
                    GW_COMMAND_MAX_BYTES);
    }
    json_error_t je;
    json_t *root = json_loadb(payload ? payload : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        return fail(err, errlen, -EINVAL, "not JSON: %s", je.text);
    }
    out->json = root;
    if (!json_is_object(root)) {
        return fail(err, errlen, -EINVAL, "not a JSON object");
    }
    int rc = 0;
    /* The request id and the hazard first: the result names them even when the rest is bad. */
    const char *rid = member_str(root, "id", &rc, err, errlen);
    if (rc) {
        return rc;
    }
    if (rid && strlen(rid) >= sizeof(out->request_id)) {
        return fail(err, errlen, -EINVAL, "\"id\" is too long (at most %zu bytes)",
                    sizeof(out->request_id) - 1);
    }
    copy_str(out->request_id, sizeof(out->request_id), rid);
    struct gw_hazard_command *c = &out->cmd;
    if (type != GW_HZ_CMD_OPEN) {
        c->id = member_str(root, "hazard", &rc, err, errlen);
        if (rc) {
            return rc;
        }
    }
    const char *const *keys = keys_of(c->type);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (!listed(keys, key)) {
            char shown[41];
            ascii_clip(shown, sizeof(shown), key);
            return fail(err, errlen, -EINVAL, "unknown key \"%s\" for hazard/%s", shown,
                        gw_hazard_cmd_name(c->type));
        }
    }
    if (type != GW_HZ_CMD_OPEN && !c->id) {
        return fail(err, errlen, -EINVAL, "missing \"hazard\" (the hazard's id, HZ-...)");
    }
    const char **fields[] = {&c->by,   &c->note,        &c->category,    &c->building, &c->floor,
                             &c->zone, &c->description, &c->responsible, &c->verifier};
    static const char *const names[] = {"by",   "note",        "category",    "building", "floor",
                                        "zone", "description", "responsible", "verifier"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *fields[i] = member_str(root, names[i], &rc, err, errlen);
        if (rc) {
            return rc;
        }
    }
    json_t *dl = json_object_get(root, "deadline");
    if (dl) {
        if (json_is_integer(dl) && json_integer_value(dl) > 0) {
            c->deadline_ms = json_integer_value(dl);
        } else if (!json_is_string(dl) ||
                   gw_parse_rfc3339(json_string_value(dl), &c->deadline_ms) != 0) {
            return fail(err, errlen, -EINVAL,
                        "\"deadline\" must be an RFC 3339 time with Z or an offset "
                        "(\"2026-12-05T18:00:00+08:00\") or ms since the epoch");
        }
    }
    return 0;
}

/* ---- metadata ---- */

static struct meta *meta_find(const struct meta_list *l, const char *id)
{
    for (int i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].id, id) == 0) {
            return &l->items[i];
        }
    }
    return NULL;
}

/* One more entry of id at at_ms. -ENOMEM. */
static int meta_note(struct meta_list *l, const char *id, int64_t at_ms)
{
    struct meta *m = meta_find(l, id);
    if (!m) {
        if (l->n == l->cap) {
            int cap = l->cap ? l->cap * 2 : 32;
            struct meta *items = realloc(l->items, (size_t)cap * sizeof(*items));
            if (!items) {
                return -ENOMEM;
            }
            l->items = items;
            l->cap = cap;
        }
        m = &l->items[l->n++];
        memset(m, 0, sizeof(*m));
        copy_str(m->id, sizeof(m->id), id);
    }
    m->entries++;
    m->updated_at_ms = at_ms;
    return 0;
}

/* ---- reading the register from the store ---- */

static int utc_offset_min(int64_t now_ms)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        return 0;
    }
    long off = tm.tm_gmtoff / 60;
    return off < -840 ? -840 : off > 840 ? 840 : (int)off;
}

static void settings_of(const struct gw_config *cfg, int64_t now_ms, struct gw_hazards_settings *s)
{
    memset(s, 0, sizeof(*s));
    memcpy(s->deadline_days, cfg->hazards.deadline_days, sizeof(s->deadline_days));
    s->auto_open = (const char *const *)cfg->hazards.auto_open;
    s->nauto_open = cfg->hazards.nauto_open;
    /* The id's date is the site's: the offset now (ids only need to be unique and readable). */
    s->utc_offset_min = utc_offset_min(now_ms);
}

struct load_ctx {
    struct gw_hazards *reg;
    struct meta_list meta;
    int rc;
    uint64_t bad_seq;
    char why[GW_ERR_MAX];
    struct gw_hazard_entry e;
};

static void on_stored_entry(void *ctx, uint64_t n, const char *hazard, int64_t at_ms,
                            const char *entry)
{
    struct load_ctx *lc = ctx;
    if (lc->rc != 0) {
        return;
    }
    char err[GW_ERR_MAX - 48]; /* room for the seq around it in why */
    memset(&lc->e, 0, sizeof(lc->e));
    if (gw_hazard_entry_from_json(entry, &lc->e, err, sizeof(err)) != 0) {
        lc->rc = -EINVAL;
        lc->bad_seq = n;
        snprintf(lc->why, sizeof(lc->why), "seq %" PRIu64 ": unreadable entry (%s)", n, err);
        return;
    }
    if (lc->e.seq != n || strcmp(lc->e.hazard.id, hazard) != 0 || lc->e.at_ms != at_ms) {
        lc->rc = -EINVAL;
        lc->bad_seq = n;
        snprintf(lc->why, sizeof(lc->why),
                 "seq %" PRIu64 ": the row's n, hazard or at do not match its entry", n);
        return;
    }
    if (gw_hazards_restore(lc->reg, &lc->e, err, sizeof(err)) != 0) {
        lc->rc = -EINVAL;
        lc->bad_seq = n;
        snprintf(lc->why, sizeof(lc->why), "%s", err);
        return;
    }
    if (meta_note(&lc->meta, hazard, at_ms) != 0) {
        lc->rc = -ENOMEM;
        snprintf(lc->why, sizeof(lc->why), "out of memory");
    }
}

/*
 * A register read from the store with cfg's settings. 0 with *reg and *meta set, or -EINVAL
 * (the chain does not verify; why and *bad_seq say where), -EIO (cannot read), -ENOMEM.
 */
static int load_register(const struct gw_config *cfg, struct gw_store *store, int64_t now_ms,
                         struct gw_hazards **reg, struct meta_list *meta, uint64_t *bad_seq,
                         char *why, size_t whylen)
{
    struct gw_hazards_settings s;
    settings_of(cfg, now_ms, &s);
    struct load_ctx *lc = calloc(1, sizeof(*lc));
    if (!lc || !(lc->reg = gw_hazards_new(&s))) {
        free(lc);
        return fail(why, whylen, -ENOMEM, "out of memory");
    }
    int n = gw_store_hazard_log(store, NULL, INT64_MIN, on_stored_entry, lc);
    int rc = lc->rc;
    if (rc == 0 && n < 0) {
        rc = fail(lc->why, sizeof(lc->why), -EIO, "cannot read hazard_log (%s)", strerror(-n));
    }
    *bad_seq = lc->bad_seq;
    if (rc != 0) {
        copy_str(why, whylen, lc->why);
        gw_hazards_free(lc->reg);
        free(lc->meta.items);
        free(lc);
        return rc;
    }
    *reg = lc->reg;
    *meta = lc->meta;
    free(lc);
    return 0;
}

/* The disk's chain head: its last row's n and hash. */
struct head_ctx {
    uint64_t n;
    char hash[GW_HZ_HASH_HEX];
};

static void on_last_entry(void *ctx, uint64_t n, const char *hazard, int64_t at_ms,
                          const char *entry)
{
    (void)hazard;
    (void)at_ms;
    struct head_ctx *h = ctx;
    h->n = n;
    json_t *root = json_loads(entry, 0, NULL);
    copy_str(h->hash, sizeof(h->hash), json_string_value(json_object_get(root, "hash")));
    json_decref(root);
}

/* Does the register end where the disk's chain ends? -errno when the disk cannot be read. */
static int disk_matches(struct gw_hazard_desk *hd)
{
    struct head_ctx disk = {0};
    int rc = gw_store_hazard_last(hd->store, on_last_entry, &disk);
    if (rc < 0) {
        return rc;
    }
    char head[GW_HZ_HASH_HEX];
    uint64_t seq = gw_hazards_last_seq(hd->reg, head);
    return seq == disk.n && (seq == 0 || strcmp(head, disk.hash) == 0);
}

static bool store_failing(struct gw_hazard_desk *hd, char *why, size_t whylen)
{
    struct gw_store_stats ss;
    gw_store_stats(hd->store, &ss);
    if (ss.failing && why) {
        snprintf(why, whylen, "%s", ss.last_error[0] ? ss.last_error : "write error");
    }
    return ss.failing;
}

/* Every entry recorded so far had its turn to reach the disk: none is still in an open batch
 * (an auto-open earlier in this loop iteration). Only then may the disk be compared. */
static bool entries_settled(struct gw_hazard_desk *hd)
{
    struct gw_store_stats ss;
    gw_store_stats(hd->store, &ss);
    return ss.committed_seq >= hd->last_log_record;
}

/* ---- records and alarms ---- */

static void emit_hazard(struct gw_hazard_desk *hd, const struct gw_hazard *h, int64_t ts)
{
    const struct meta *m = meta_find(&hd->meta, h->id);
    char topic[GW_HZ_ID_MAX + 16];
    snprintf(topic, sizeof(topic), "hazards/%s", h->id);
    uint64_t seq = hd->host.next_seq(hd->host.ctx);
    hd->host.emit(hd->host.ctx, GW_REC_HAZARD, ts, topic,
                  gw_hazard_json(h, seq, m ? m->updated_at_ms : 0, m ? m->entries : 0), seq);
}

/* Deadline in the site's local time for the alarm's value: "2026-12-05 18:00". */
static void local_deadline(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%d %H:%M", &tm) == 0) {
        copy_str(out, size, "?");
    }
}

static void overdue_alarm(struct gw_hazard_desk *hd, const struct gw_hazard *h, bool on,
                          const char *by, int64_t now)
{
    char key[GW_KEY_MAX], value[32];
    overdue_key(h->id, key);
    local_deadline(h->deadline_ms, value, sizeof(value));
    hd->host.system_alarm(hd->host.ctx, key, GW_HAZARD_OVERDUE_NAME, GW_CLASS_SUPERVISORY, value,
                          on, by ? by : "", now);
}

/* One new entry of the register: on its way to the disk, the hazard's record, its alarm. */
static void record_entry(struct gw_hazard_desk *hd, const struct gw_hazard_entry *e, int64_t now)
{
    const struct gw_hazard *h = gw_hazards_find(hd->reg, e->hazard.id);
    if (meta_note(&hd->meta, e->hazard.id, e->at_ms) != 0) {
        gw_error(MOD, "out of memory noting entry seq=%" PRIu64, e->seq);
    }
    hd->host.open_batch(hd->host.ctx);
    uint64_t seq = hd->host.next_seq(hd->host.ctx);
    hd->last_log_record = seq;
    /* NULL (out of memory) is logged and dropped by emit; the disk check then rebuilds. */
    hd->host.emit(hd->host.ctx, GW_REC_HAZARD_LOG, e->at_ms, "hazards/log",
                  gw_hazard_entry_to_json(e), seq);
    if (h) {
        emit_hazard(hd, h, e->at_ms);
    }
    gw_log(strcmp(e->action, "overdue") == 0 ? GW_LOG_WARN : GW_LOG_INFO, MOD,
           "%s id=%s status=%s by=%s seq=%" PRIu64, e->action, e->hazard.id,
           h ? gw_hazard_status_name(h->status) : "?", e->by[0] ? e->by : "(gateway)", e->seq);
    if (!h) {
        return;
    }
    if (strcmp(e->action, "overdue") == 0) {
        overdue_alarm(hd, h, true, "", now);
    } else if (h->status == GW_HZ_CLOSED || ((e->fields & GW_HZF_OVERDUE) && !h->overdue)) {
        /* Closed, or a new deadline: nothing is overdue any more. */
        overdue_alarm(hd, h, false, e->by, now);
    }
}

/* Make the overdue alarms say what the register says. */
static void reconcile_alarms(struct gw_hazard_desk *hd, int64_t now)
{
    const struct gw_hazard *h;
    for (int it = 0; (h = gw_hazards_next(hd->reg, &it));) {
        overdue_alarm(hd, h, h->status != GW_HZ_CLOSED && h->overdue, "", now);
    }
}

static void invalid_alarm(struct gw_hazard_desk *hd, int64_t now)
{
    char name[GW_NAME_MAX * 2], value[32];
    if (hd->reg) {
        hd->host.system_alarm(hd->host.ctx, GW_HAZARD_INVALID_KEY, "hazard register invalid",
                              GW_CLASS_TROUBLE, NULL, false, "", now);
        return;
    }
    if (hd->invalid_seq > 0) {
        snprintf(value, sizeof(value), "seq %" PRIu64, hd->invalid_seq);
        snprintf(name, sizeof(name), "hazard register invalid at seq %" PRIu64, hd->invalid_seq);
    } else {
        snprintf(value, sizeof(value), "unreadable");
        snprintf(name, sizeof(name), "hazard register unreadable");
    }
    hd->host.system_alarm(hd->host.ctx, GW_HAZARD_INVALID_KEY, name, GW_CLASS_TROUBLE, value, true,
                          "", now);
}

static void go_invalid(struct gw_hazard_desk *hd, int rc, uint64_t bad_seq, const char *why)
{
    gw_hazards_free(hd->reg);
    hd->reg = NULL;
    free(hd->meta.items);
    memset(&hd->meta, 0, sizeof(hd->meta));
    hd->invalid_seq = bad_seq;
    copy_str(hd->invalid, sizeof(hd->invalid), why);
    gw_error(MOD,
             "register %s: %s; hazard commands are refused and nothing is written until it is "
             "repaired (docs/hazards.md)",
             rc == -EINVAL ? "invalid" : "unreadable", why);
}

/*
 * Read the register from the disk again (a reload's settings, or a register that ran ahead of
 * the disk). 0, or the error (logged; an invalid chain leaves the desk invalid).
 */
static int rebuild(struct gw_hazard_desk *hd, bool republish, int64_t now)
{
    struct gw_hazards *reg = NULL;
    struct meta_list meta = {0};
    uint64_t bad_seq = 0;
    char why[GW_ERR_MAX];
    int rc = load_register(hd->cfg, hd->store, now, &reg, &meta, &bad_seq, why, sizeof(why));
    if (rc == -ENOMEM) {
        gw_error(MOD, "cannot read the register again (out of memory); keeping the one in memory");
        return rc;
    }
    bool was_valid = hd->reg != NULL;
    if (rc != 0) {
        go_invalid(hd, rc, bad_seq, why);
        invalid_alarm(hd, now);
        return rc;
    }
    gw_hazards_free(hd->reg);
    free(hd->meta.items);
    hd->reg = reg;
    hd->meta = meta;
    hd->settings_stale = false;
    if (!was_valid) {
        gw_info(MOD, "register verifies again: hazard commands accepted");
        invalid_alarm(hd, now);
    }
    if (republish || !was_valid) {
        const struct gw_hazard *h;
        hd->host.open_batch(hd->host.ctx);
        for (int it = 0; (h = gw_hazards_next(hd->reg, &it));) {
            emit_hazard(hd, h, now);
        }
        reconcile_alarms(hd, now);
    }
    return 0;
}

/* ---- public ---- */

struct gw_hazard_desk *gw_hazard_desk_new(const struct gw_config *cfg, struct gw_store *store,
                                          const struct gw_hazard_desk_host *host, int64_t now_ms)
{
    struct gw_hazard_desk *hd = calloc(1, sizeof(*hd));
    if (!hd || !(hd->waiting = calloc(MAX_WAITING, sizeof(*hd->waiting)))) {
        free(hd);
        gw_error(MOD, "cannot start the hazard desk (out of memory)");
        return NULL;
    }
    hd->cfg = cfg;
    hd->store = store;
    hd->host = *host;
    uint64_t bad_seq = 0;
    char why[GW_ERR_MAX];
    int rc = load_register(cfg, store, now_ms, &hd->reg, &hd->meta, &bad_seq, why, sizeof(why));
    if (rc == -ENOMEM) {
        gw_error(MOD, "cannot start the hazard desk (out of memory)");
        gw_hazard_desk_free(hd);
        return NULL;
    }
    if (rc != 0) {
        go_invalid(hd, rc, bad_seq, why);
    } else {
        char head[GW_HZ_HASH_HEX];
        struct gw_hazard_counts c;
        gw_hazards_count(hd->reg, now_ms, &c);
        gw_info(MOD, "register restored entries=%" PRIu64 " open=%d rectifying=%d overdue=%d",
                gw_hazards_last_seq(hd->reg, head), c.open, c.rectifying, c.overdue);
    }
    return hd;
}

void gw_hazard_desk_free(struct gw_hazard_desk *hd)
{
    if (!hd) {
        return;
    }
    gw_hazards_free(hd->reg);
    free(hd->meta.items);
    free(hd->waiting);
    free(hd);
}

void gw_hazard_desk_restore(struct gw_hazard_desk *hd, int64_t now_ms)
{
    hd->host.open_batch(hd->host.ctx);
    invalid_alarm(hd, now_ms);
    if (hd->reg) {
        reconcile_alarms(hd, now_ms);
    }
}

int gw_hazard_desk_reload(struct gw_hazard_desk *hd, const struct gw_config *cfg)
{
    hd->cfg = cfg;
    hd->settings_stale = true;
    /* Entries of this loop iteration may still be on their way to the disk: the tick takes the
     * new settings once the disk holds the whole register. An invalid register is read again
     * now (it may have been repaired). */
    if (!hd->reg) {
        rebuild(hd, false, wall_ms());
    }
    return 0;
}

/* A supervisory alarm's hazard (strings copied into w). */
static void describe_alarm(const struct gw_config *cfg, const struct gw_alarm *a,
                           struct waiting_open *w)
{
    const struct gw_rule_cfg *r = &cfg->rules[a->rule_index];
    const struct gw_sensor_cfg *s = &cfg->sensors[a->sensor_index];
    copy_str(w->rule, sizeof(w->rule), r->name);
    copy_str(w->key, sizeof(w->key), a->key);
    w->category = gw_hazard_category_of_kind(s->kind);
    /* A hazard needs a building: a sensor without a location is named instead. */
    if (s->location.building && s->location.building[0]) {
        copy_str(w->building, sizeof(w->building), s->location.building);
    } else {
        snprintf(w->building, sizeof(w->building), "(sensor %s)", s->id);
    }
    copy_str(w->floor, sizeof(w->floor), s->location.floor);
    copy_str(w->zone, sizeof(w->zone), s->location.zone);
    char value[64] = "";
    switch (a->value.type) {
    case GW_VALUE_NUMBER:
        snprintf(value, sizeof(value), ", value %g", a->value.num);
        break;
    case GW_VALUE_BOOL:
        snprintf(value, sizeof(value), ", value %s", a->value.b ? "true" : "false");
        break;
    case GW_VALUE_STRING:
        snprintf(value, sizeof(value), ", value %s", a->value.str);
        break;
    case GW_VALUE_NONE:
        break;
    }
    snprintf(w->description, sizeof(w->description), "%s (%s)%s", r->name, s->id, value);
}

static void open_from_alarm(struct gw_hazard_desk *hd, const struct waiting_open *w, int64_t now)
{
    struct gw_hazard_alarm ha = {
        .rule_name = w->rule,
        .key = w->key,
        .category = w->category,
        .building = w->building,
        .floor = w->floor,
        .zone = w->zone,
        .description = w->description,
    };
    struct gw_hazard_entry *e = calloc(1, sizeof(*e));
    char err[GW_ERR_MAX];
    int rc = e ? gw_hazards_on_alarm(hd->reg, &ha, now, e, err, sizeof(err)) : -ENOMEM;
    if (rc == 1) {
        record_entry(hd, e, now);
    } else if (rc < 0) {
        gw_error(MOD, "no hazard opened for alarm key=%s error=\"%s\"", w->key,
                 rc == -ENOMEM ? "out of memory" : err);
    }
    free(e);
}

void gw_hazard_desk_on_raise(struct gw_hazard_desk *hd, const struct gw_config *cfg,
                             const struct gw_alarm *a, int64_t now_ms)
{
    if (a->system || a->test || !a->condition || a->rule_index < 0 ||
        a->rule_index >= cfg->nrules || a->sensor_index < 0 || a->sensor_index >= cfg->nsensors ||
        cfg->rules[a->rule_index].alarm_class != GW_CLASS_SUPERVISORY) {
        return;
    }
    bool listed_rule = false;
    for (int i = 0; i < cfg->hazards.nauto_open && !listed_rule; i++) {
        listed_rule = strcmp(cfg->hazards.auto_open[i], cfg->rules[a->rule_index].name) == 0;
    }
    if (!listed_rule) {
        return;
    }
    if (!hd->reg) {
        gw_error(MOD, "no hazard opened for alarm key=%s: the register is invalid (%s)", a->key,
                 hd->invalid);
        return;
    }
    struct waiting_open w;
    describe_alarm(cfg, a, &w);
    char why[GW_ERR_MAX];
    if (store_failing(hd, why, sizeof(why))) {
        if (hd->nwaiting == MAX_WAITING) {
            gw_error(MOD, "no hazard opened for alarm key=%s: the store cannot write (%s)", a->key,
                     why);
            return;
        }
        gw_warn(MOD, "hazard for alarm key=%s waits until the store can write (%s)", a->key, why);
        hd->waiting[hd->nwaiting++] = w;
        return;
    }
    open_from_alarm(hd, &w, now_ms);
}

void gw_hazard_desk_tick(struct gw_hazard_desk *hd, int64_t now_ms)
{
    if (!hd->reg) {
        return;
    }
    char why[GW_ERR_MAX];
    if (store_failing(hd, why, sizeof(why))) {
        return; /* the entries waiting in the store go first */
    }
    int m = entries_settled(hd) ? disk_matches(hd) : 1;
    if (m == 0) {
        gw_error(MOD, "the register ran ahead of the disk (an entry was not written): reading it "
                      "from the store again");
        if (rebuild(hd, true, now_ms) != 0) {
            return;
        }
    } else if (m > 0 && hd->settings_stale && entries_settled(hd)) {
        if (rebuild(hd, false, now_ms) != 0) {
            return;
        }
    } else if (m < 0) {
        if (gw_complain(&hd->store_complaint, now_ms)) {
            gw_error(MOD, "cannot read hazard_log to check the register: %s", strerror(-m));
        }
        return;
    }
    if (gw_release(&hd->store_complaint)) {
        gw_info(MOD, "hazard_log readable again");
    }
    for (int i = 0; i < hd->nwaiting; i++) {
        open_from_alarm(hd, &hd->waiting[i], now_ms);
    }
    hd->nwaiting = 0;
    struct gw_hazard_entry *out = calloc(TICK_BATCH, sizeof(*out));
    if (!out) {
        return;
    }
    int n;
    do {
        n = gw_hazards_tick(hd->reg, now_ms, out, TICK_BATCH);
        for (int i = 0; i < n; i++) {
            record_entry(hd, &out[i], now_ms);
        }
    } while (n == TICK_BATCH);
    free(out);
}

void gw_hazard_desk_snapshot(struct gw_hazard_desk *hd, int64_t now_ms)
{
    if (!hd->reg) {
        return;
    }
    hd->host.open_batch(hd->host.ctx);
    const struct gw_hazard *h;
    for (int it = 0; (h = gw_hazards_next(hd->reg, &it));) {
        emit_hazard(hd, h, now_ms);
    }
}

int gw_hazard_desk_execute(struct gw_hazard_desk *hd, const char *name, const void *payload,
                           size_t len, int64_t now_ms, char request_id[64],
                           char hazard[GW_HZ_ID_MAX], const char **status, char *err, size_t errlen)
{
    request_id[0] = '\0';
    hazard[0] = '\0';
    *status = NULL;
    struct gw_hazard_request req;
    int rc = gw_hazard_request_parse(name, payload, len, &req, err, errlen);
    copy_str(request_id, 64, req.request_id);
    if (req.cmd.id && strlen(req.cmd.id) < GW_HZ_ID_MAX) {
        copy_str(hazard, GW_HZ_ID_MAX, req.cmd.id);
    }
    struct gw_hazard_entry *e = NULL;
    char why[GW_ERR_MAX];
    if (rc != 0) {
        goto out;
    }
    if (!hd->reg) {
        rc = fail(err, errlen, -EIO,
                  "the hazard register is invalid (%s): nothing is written over a broken chain; "
                  "see docs/hazards.md",
                  hd->invalid);
        goto out;
    }
    if (store_failing(hd, why, sizeof(why))) {
        rc = fail(err, errlen, -EIO,
                  "the store cannot write (%s): hazard commands are refused until it can", why);
        goto out;
    }
    if (!(e = calloc(1, sizeof(*e)))) {
        rc = fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    rc = gw_hazards_command(hd->reg, &req.cmd, now_ms, e, err, errlen);
    if (rc < 0) {
        goto out;
    }
    if (rc == 1) {
        copy_str(hazard, GW_HZ_ID_MAX, e->hazard.id);
        record_entry(hd, e, now_ms);
    }
    const struct gw_hazard *h = gw_hazards_find(hd->reg, hazard);
    *status = h ? gw_hazard_status_name(h->status) : NULL;
    rc = 0;
out:
    free(e);
    gw_hazard_request_free(&req);
    return rc;
}

const struct gw_hazards *gw_hazard_desk_register(const struct gw_hazard_desk *hd)
{
    return hd ? hd->reg : NULL;
}

bool gw_hazard_desk_ok(const struct gw_hazard_desk *hd, char *why, size_t size)
{
    if (hd && hd->reg) {
        if (why && size) {
            why[0] = '\0';
        }
        return true;
    }
    if (why && size) {
        snprintf(why, size, "%s", hd ? hd->invalid : "no hazard desk");
    }
    return false;
}

int gw_hazard_desk_meta(const struct gw_hazard_desk *hd, const char *id, int64_t *updated_at_ms,
                        int *entries)
{
    const struct meta *m = hd && id ? meta_find(&hd->meta, id) : NULL;
    if (!m) {
        return -ENOENT;
    }
    *updated_at_ms = m->updated_at_ms;
    *entries = m->entries;
    return 0;
}

struct entries_ctx {
    void (*fn)(void *ctx, const char *entry_json);
    void *ctx;
};

static void on_entry_row(void *ctx, uint64_t n, const char *hazard, int64_t at_ms,
                         const char *entry)
{
    (void)n;
    (void)hazard;
    (void)at_ms;
    struct entries_ctx *ec = ctx;
    ec->fn(ec->ctx, entry);
}

int gw_hazard_desk_entries(struct gw_hazard_desk *hd, const char *hazard_id,
                           void (*fn)(void *ctx, const char *entry_json), void *ctx)
{
    struct entries_ctx ec = {fn, ctx};
    return gw_store_hazard_log(hd->store, hazard_id, INT64_MIN, on_entry_row, &ec);
}

const struct gw_hazard *gw_hazard_desk_overdue_hazard(const struct gw_hazard_desk *hd,
                                                      const char *alarm_key)
{
    if (!hd || !hd->reg || !gw_hazard_overdue_key(alarm_key)) {
        return NULL;
    }
    char id[GW_HZ_ID_MAX];
    size_t n = strlen(alarm_key) - strlen(GW_HAZARD_OVERDUE_SUFFIX);
    if (n >= sizeof(id)) {
        return NULL;
    }
    memcpy(id, alarm_key, n);
    id[n] = '\0';
    return gw_hazards_find(hd->reg, id);
}
