/*
 * The hazard register; semantics and the hash-chain format in hazards.h.
 * Pure: no I/O, no clock.
 *
 * Hazards live in one array in creation order (a school has hundreds, a scan
 * is cheap). Every change goes through one path: build the hazard after the
 * change and its entry, hash the entry (the only step that can fail), then
 * commit both, so a failed call changes nothing and the chain never skips.
 * One table (steps[]) says what each action may do; restore checks stored
 * entries against it, and the commands only ever write what it allows.
 */
#include "hazards.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include "text.h"

struct gw_hazards {
    int deadline_days[GW_HZ_NCATEGORIES];
    char **auto_open;
    int nauto_open;
    int utc_offset_min;
    struct gw_hazard *list;
    int n, cap;
    uint64_t seq;              /* the last entry's; 0: empty chain */
    char head[GW_HZ_HASH_HEX]; /* the last entry's hash; zeros when empty */
};

static const char zero_hash[GW_HZ_HASH_HEX] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static const char *const category_names[GW_HZ_NCATEGORIES] = {
    [GW_HZ_FIRE_EQUIPMENT] = "fire_equipment", [GW_HZ_EVACUATION_ROUTE] = "evacuation_route",
    [GW_HZ_ELECTRICAL] = "electrical",         [GW_HZ_STRUCTURE] = "structure",
    [GW_HZ_SURROUNDINGS] = "surroundings",     [GW_HZ_OTHER] = "other",
};
static const char *const status_names[GW_HZ_NSTATUS] = {
    [GW_HZ_OPEN] = "open", [GW_HZ_RECTIFYING] = "rectifying", [GW_HZ_CLOSED] = "closed"};
static const char *const cmd_names[] = {
    [GW_HZ_CMD_OPEN] = "open",
    [GW_HZ_CMD_UPDATE] = "update",
    [GW_HZ_CMD_RECTIFYING] = "rectifying",
    [GW_HZ_CMD_CLOSE] = "close",
    [GW_HZ_CMD_REOPEN] = "reopen",
};
#define NCMDS ((int)(sizeof(cmd_names) / sizeof(cmd_names[0])))

static int index_of(const char *const *names, int n, const char *name)
{
    for (int i = 0; name != NULL && i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

const char *gw_hazard_category_name(enum gw_hazard_category c)
{
    return (int)c >= 0 && (int)c < GW_HZ_NCATEGORIES ? category_names[c] : "unknown";
}

int gw_hazard_category_from_name(const char *name)
{
    return index_of(category_names, GW_HZ_NCATEGORIES, name);
}

const char *gw_hazard_status_name(enum gw_hazard_status s)
{
    return (int)s >= 0 && (int)s < GW_HZ_NSTATUS ? status_names[s] : "unknown";
}

int gw_hazard_status_from_name(const char *name)
{
    return index_of(status_names, GW_HZ_NSTATUS, name);
}

const char *gw_hazard_cmd_name(enum gw_hazard_cmd_type type)
{
    return (int)type >= 0 && (int)type < NCMDS ? cmd_names[type] : "unknown";
}

int gw_hazard_cmd_from_name(const char *name)
{
    return index_of(cmd_names, NCMDS, name);
}

/* ---- what each action may do ---- */

#define S_OPEN (1u << GW_HZ_OPEN)
#define S_RECT (1u << GW_HZ_RECTIFYING)
#define S_CLOSED (1u << GW_HZ_CLOSED)

struct step {
    const char *action;
    unsigned from;     /* status bits it applies to; 0: a new hazard */
    unsigned required; /* fields it must set */
    unsigned allowed;  /* fields it may set */
    int to;            /* the status after; -1: unchanged */
};

static const struct step steps[] = {
    {"open", 0, GW_HZF_ALL, GW_HZF_ALL, GW_HZ_OPEN},
    {"update", S_OPEN | S_RECT, 0,
     GW_HZF_RESPONSIBLE | GW_HZF_DEADLINE | GW_HZF_DESCRIPTION | GW_HZF_OVERDUE, -1},
    {"rectifying", S_OPEN, GW_HZF_STATUS, GW_HZF_STATUS, GW_HZ_RECTIFYING},
    {"close", S_OPEN | S_RECT, GW_HZF_STATUS | GW_HZF_VERIFIED_BY,
     GW_HZF_STATUS | GW_HZF_VERIFIED_BY, GW_HZ_CLOSED},
    {"reopen", S_CLOSED, GW_HZF_STATUS | GW_HZF_VERIFIED_BY | GW_HZF_DEADLINE | GW_HZF_OVERDUE,
     GW_HZF_STATUS | GW_HZF_VERIFIED_BY | GW_HZF_DEADLINE | GW_HZF_OVERDUE, GW_HZ_OPEN},
    {"overdue", S_OPEN | S_RECT, GW_HZF_OVERDUE, GW_HZF_OVERDUE, -1},
};
#define NSTEPS ((int)(sizeof(steps) / sizeof(steps[0])))

static const struct step *find_step(const char *action)
{
    for (int i = 0; action != NULL && i < NSTEPS; i++) {
        if (strcmp(steps[i].action, action) == 0) {
            return &steps[i];
        }
    }
    return NULL;
}

/* ---- helpers ---- */

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

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* A text input: UTF-8, shorter than size, non-empty when required. */
static int check_text(const char *what, const char *value, size_t size, bool required, char *err,
                      size_t errlen)
{
    if (value == NULL || value[0] == '\0') {
        return required ? fail(err, errlen, -EINVAL, "%s is required", what) : 0;
    }
    if (strlen(value) >= size) {
        return fail(err, errlen, -EINVAL, "%s is too long (at most %zu bytes)", what, size - 1);
    }
    if (!gw_utf8_valid(value)) {
        return fail(err, errlen, -EINVAL, "%s is not valid UTF-8", what);
    }
    return 0;
}

static int hazard_index(const struct gw_hazards *hz, const char *id)
{
    for (int i = 0; id != NULL && i < hz->n; i++) {
        if (strcmp(hz->list[i].id, id) == 0) {
            return i;
        }
    }
    return -1;
}

/* Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* "HZ-YYYYMMDD-NNN" for the site's date of now_ms: one more than that day's highest. */
static void next_id(const struct gw_hazards *hz, int64_t now_ms, char id[GW_HZ_ID_MAX])
{
    int64_t local = now_ms + (int64_t)hz->utc_offset_min * 60000;
    int64_t days = local >= 0 ? local / GW_HZ_DAY_MS : -((-local - 1) / GW_HZ_DAY_MS) - 1;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    char prefix[48], full[80];
    int plen = snprintf(prefix, sizeof(prefix), "HZ-%04d%02d%02d-", y, m, d);
    long top = 0;
    for (int i = 0; i < hz->n; i++) {
        if (strncmp(hz->list[i].id, prefix, (size_t)plen) == 0) {
            long k = strtol(hz->list[i].id + plen, NULL, 10);
            top = k > top ? k : top;
        }
    }
    snprintf(full, sizeof(full), "%s%03ld", prefix, top + 1);
    /* fits: years 0..9999, under 10^9 a day; cut explicitly all the same */
    size_t n = strnlen(full, GW_HZ_ID_MAX - 1);
    memcpy(id, full, n);
    id[n] = '\0';
}

/* ---- settings, new, free ---- */

int gw_hazards_settings_check(const struct gw_hazards_settings *s, char *err, size_t errlen)
{
    if (s == NULL) {
        return fail(err, errlen, -EINVAL, "no settings");
    }
    for (int c = 0; c < GW_HZ_NCATEGORIES; c++) {
        if (s->deadline_days[c] < 1 || s->deadline_days[c] > GW_HZ_DEADLINE_DAYS_MAX) {
            return fail(err, errlen, -EINVAL, "deadline days of %s must be 1..%d",
                        category_names[c], GW_HZ_DEADLINE_DAYS_MAX);
        }
    }
    if (s->nauto_open < 0 || (s->nauto_open > 0 && s->auto_open == NULL)) {
        return fail(err, errlen, -EINVAL, "auto_open: bad count");
    }
    for (int i = 0; i < s->nauto_open; i++) {
        if (s->auto_open[i] == NULL || s->auto_open[i][0] == '\0') {
            return fail(err, errlen, -EINVAL, "auto_open[%d] is empty", i);
        }
    }
    if (s->utc_offset_min < -840 || s->utc_offset_min > 840) {
        return fail(err, errlen, -EINVAL, "utc_offset_min must be -840..840");
    }
    return 0;
}

void gw_hazards_free(struct gw_hazards *hz)
{
    if (hz == NULL) {
        return;
    }
    for (int i = 0; hz->auto_open != NULL && i < hz->nauto_open; i++) {
        free(hz->auto_open[i]);
    }
    free(hz->auto_open);
    free(hz->list);
    free(hz);
}

struct gw_hazards *gw_hazards_new(const struct gw_hazards_settings *s)
{
    if (gw_hazards_settings_check(s, NULL, 0) != 0) {
        return NULL;
    }
    struct gw_hazards *hz = calloc(1, sizeof(*hz));
    if (hz == NULL) {
        return NULL;
    }
    memcpy(hz->deadline_days, s->deadline_days, sizeof(hz->deadline_days));
    hz->utc_offset_min = s->utc_offset_min;
    memcpy(hz->head, zero_hash, sizeof(hz->head));
    if (s->nauto_open > 0) {
        hz->auto_open = calloc((size_t)s->nauto_open, sizeof(*hz->auto_open));
        if (hz->auto_open == NULL) {
            gw_hazards_free(hz);
            return NULL;
        }
        hz->nauto_open = s->nauto_open;
        for (int i = 0; i < s->nauto_open; i++) {
            hz->auto_open[i] = strdup(s->auto_open[i]);
            if (hz->auto_open[i] == NULL) {
                gw_hazards_free(hz);
                return NULL;
            }
        }
    }
    return hz;
}

/* ---- JSON and hashing ---- */

static const struct {
    unsigned bit;
    const char *name;
} field_names[] = {
    {GW_HZF_CATEGORY, "category"},
    {GW_HZF_BUILDING, "building"},
    {GW_HZF_FLOOR, "floor"},
    {GW_HZF_ZONE, "zone"},
    {GW_HZF_DESCRIPTION, "description"},
    {GW_HZF_FOUND_AT, "found_at"},
    {GW_HZF_FOUND_BY, "found_by"},
    {GW_HZF_SOURCE_ALARM, "source_alarm"},
    {GW_HZF_RESPONSIBLE, "responsible"},
    {GW_HZF_DEADLINE, "deadline"},
    {GW_HZF_STATUS, "status"},
    {GW_HZF_VERIFIED_BY, "verified_by"},
    {GW_HZF_OVERDUE, "overdue"},
};
#define NFIELDS ((int)(sizeof(field_names) / sizeof(field_names[0])))

/* The string field of bit in h, with its size; NULL for a non-string field. */
static char *text_field(struct gw_hazard *h, unsigned bit, size_t *size)
{
    switch (bit) {
    case GW_HZF_BUILDING:
        *size = sizeof(h->building);
        return h->building;
    case GW_HZF_FLOOR:
        *size = sizeof(h->floor);
        return h->floor;
    case GW_HZF_ZONE:
        *size = sizeof(h->zone);
        return h->zone;
    case GW_HZF_DESCRIPTION:
        *size = sizeof(h->description);
        return h->description;
    case GW_HZF_FOUND_BY:
        *size = sizeof(h->found_by);
        return h->found_by;
    case GW_HZF_SOURCE_ALARM:
        *size = sizeof(h->source_alarm);
        return h->source_alarm;
    case GW_HZF_RESPONSIBLE:
        *size = sizeof(h->responsible);
        return h->responsible;
    case GW_HZF_VERIFIED_BY:
        *size = sizeof(h->verified_by);
        return h->verified_by;
    default:
        return NULL;
    }
}

static json_t *field_value(const struct gw_hazard *h, unsigned bit)
{
    size_t size;
    const char *text = text_field((struct gw_hazard *)h, bit, &size);
    if (text != NULL) {
        return json_string(text);
    }
    switch (bit) {
    case GW_HZF_CATEGORY:
        return json_string(gw_hazard_category_name(h->category));
    case GW_HZF_FOUND_AT:
        return json_integer(h->found_at_ms);
    case GW_HZF_DEADLINE:
        return json_integer(h->deadline_ms);
    case GW_HZF_STATUS:
        return json_string(gw_hazard_status_name(h->status));
    case GW_HZF_OVERDUE:
        return json_boolean(h->overdue);
    default:
        return NULL;
    }
}

static json_t *entry_object(const struct gw_hazard_entry *e, bool with_hash)
{
    json_t *fields = json_object();
    json_t *o = json_object();
    if (fields == NULL || o == NULL) {
        goto fail;
    }
    for (int i = 0; i < NFIELDS; i++) {
        if ((e->fields & field_names[i].bit) &&
            json_object_set_new(fields, field_names[i].name,
                                field_value(&e->hazard, field_names[i].bit)) != 0) {
            goto fail;
        }
    }
    int rc = json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
    rc |= json_object_set_new(o, "hazard", json_string(e->hazard.id));
    rc |= json_object_set_new(o, "at", json_integer(e->at_ms));
    rc |= json_object_set_new(o, "by", json_string(e->by));
    rc |= json_object_set_new(o, "action", json_string(e->action ? e->action : ""));
    rc |= json_object_set(o, "fields", fields);
    rc |= json_object_set_new(o, "note", json_string(e->note));
    rc |= json_object_set_new(o, "prev_hash", json_string(e->prev_hash));
    if (with_hash) {
        rc |= json_object_set_new(o, "hash", json_string(e->hash));
    }
    if (rc != 0) {
        goto fail;
    }
    json_decref(fields);
    return o;
fail:
    json_decref(fields);
    json_decref(o);
    return NULL;
}

/* Every string of e is UTF-8 (JSON cannot carry anything else). */
static bool entry_utf8(const struct gw_hazard_entry *e)
{
    if (!gw_utf8_valid(e->hazard.id) || !gw_utf8_valid(e->by) || !gw_utf8_valid(e->note) ||
        !gw_utf8_valid(e->prev_hash) || !gw_utf8_valid(e->hash)) {
        return false;
    }
    for (int i = 0; i < NFIELDS; i++) {
        size_t size;
        const char *text = text_field((struct gw_hazard *)&e->hazard, field_names[i].bit, &size);
        if ((e->fields & field_names[i].bit) && text != NULL && !gw_utf8_valid(text)) {
            return false;
        }
    }
    return true;
}

int gw_hazard_entry_hash(const struct gw_hazard_entry *e, char hash[GW_HZ_HASH_HEX])
{
    if (!entry_utf8(e)) {
        return -EINVAL;
    }
    json_t *o = entry_object(e, false);
    char *canon = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (canon == NULL) {
        return -ENOMEM;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL);
    free(canon);
    if (!ok || mdlen != 32) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < mdlen; i++) {
        snprintf(hash + 2 * i, 3, "%02x", md[i]);
    }
    return 0;
}

char *gw_hazard_entry_to_json(const struct gw_hazard_entry *e)
{
    json_t *o = entry_utf8(e) ? entry_object(e, true) : NULL;
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return s;
}

static bool is_hash_hex(const char *s)
{
    size_t n = strlen(s);
    if (n != GW_HZ_HASH_HEX - 1) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static int get_text(json_t *v, const char *what, char *dst, size_t size, char *err, size_t errlen)
{
    if (!json_is_string(v)) {
        return fail(err, errlen, -EINVAL, "%s: not a string", what);
    }
    if (json_string_length(v) >= size || strlen(json_string_value(v)) != json_string_length(v)) {
        return fail(err, errlen, -EINVAL, "%s: too long or contains NUL", what);
    }
    copy_str(dst, size, json_string_value(v));
    return 0;
}

static int parse_field(json_t *v, unsigned bit, const char *name, struct gw_hazard *h, char *err,
                       size_t errlen)
{
    size_t size;
    char *text = text_field(h, bit, &size);
    if (text != NULL) {
        return get_text(v, name, text, size, err, errlen);
    }
    switch (bit) {
    case GW_HZF_CATEGORY: {
        int c = gw_hazard_category_from_name(json_string_value(v));
        if (c < 0) {
            return fail(err, errlen, -EINVAL, "category: unknown");
        }
        h->category = (enum gw_hazard_category)c;
        return 0;
    }
    case GW_HZF_STATUS: {
        int s = gw_hazard_status_from_name(json_string_value(v));
        if (s < 0) {
            return fail(err, errlen, -EINVAL, "status: unknown");
        }
        h->status = (enum gw_hazard_status)s;
        return 0;
    }
    case GW_HZF_FOUND_AT:
    case GW_HZF_DEADLINE:
        if (!json_is_integer(v)) {
            return fail(err, errlen, -EINVAL, "%s: not an integer", name);
        }
        *(bit == GW_HZF_FOUND_AT ? &h->found_at_ms : &h->deadline_ms) = json_integer_value(v);
        return 0;
    case GW_HZF_OVERDUE:
        if (!json_is_boolean(v)) {
            return fail(err, errlen, -EINVAL, "overdue: not a boolean");
        }
        h->overdue = json_is_true(v);
        return 0;
    default:
        return fail(err, errlen, -EINVAL, "%s: unknown field", name);
    }
}

static int parse_entry(json_t *o, struct gw_hazard_entry *e, char *err, size_t errlen)
{
    static const char *const keys[] = {"seq",    "hazard", "at",        "by",  "action",
                                       "fields", "note",   "prev_hash", "hash"};
    if (!json_is_object(o)) {
        return fail(err, errlen, -EINVAL, "not a JSON object");
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (index_of(keys, (int)(sizeof(keys) / sizeof(keys[0])), key) < 0) {
            return fail(err, errlen, -EINVAL, "unknown key \"%s\"", key);
        }
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (json_object_get(o, keys[i]) == NULL) {
            return fail(err, errlen, -EINVAL, "missing \"%s\"", keys[i]);
        }
    }
    json_t *seq = json_object_get(o, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 1) {
        return fail(err, errlen, -EINVAL, "seq: not a positive integer");
    }
    e->seq = (uint64_t)json_integer_value(seq);
    json_t *at = json_object_get(o, "at");
    if (!json_is_integer(at)) {
        return fail(err, errlen, -EINVAL, "at: not an integer");
    }
    e->at_ms = json_integer_value(at);
    int rc;
    if ((rc = get_text(json_object_get(o, "hazard"), "hazard", e->hazard.id, sizeof(e->hazard.id),
                       err, errlen)) != 0 ||
        (rc = get_text(json_object_get(o, "by"), "by", e->by, sizeof(e->by), err, errlen)) != 0 ||
        (rc = get_text(json_object_get(o, "note"), "note", e->note, sizeof(e->note), err,
                       errlen)) != 0 ||
        (rc = get_text(json_object_get(o, "prev_hash"), "prev_hash", e->prev_hash,
                       sizeof(e->prev_hash), err, errlen)) != 0 ||
        (rc = get_text(json_object_get(o, "hash"), "hash", e->hash, sizeof(e->hash), err,
                       errlen)) != 0) {
        return rc;
    }
    if (e->hazard.id[0] == '\0') {
        return fail(err, errlen, -EINVAL, "hazard: empty id");
    }
    if (!is_hash_hex(e->prev_hash) || !is_hash_hex(e->hash)) {
        return fail(err, errlen, -EINVAL, "prev_hash / hash: not 64 lowercase hex digits");
    }
    const struct step *st = find_step(json_string_value(json_object_get(o, "action")));
    if (st == NULL) {
        return fail(err, errlen, -EINVAL, "action: unknown");
    }
    e->action = st->action;
    json_t *fields = json_object_get(o, "fields");
    if (!json_is_object(fields)) {
        return fail(err, errlen, -EINVAL, "fields: not an object");
    }
    json_object_foreach(fields, key, v)
    {
        int i = 0;
        while (i < NFIELDS && strcmp(field_names[i].name, key) != 0) {
            i++;
        }
        if (i == NFIELDS) {
            return fail(err, errlen, -EINVAL, "fields: unknown \"%s\"", key);
        }
        if ((rc = parse_field(v, field_names[i].bit, key, &e->hazard, err, errlen)) != 0) {
            return rc;
        }
        e->fields |= field_names[i].bit;
    }
    return 0;
}

int gw_hazard_entry_from_json(const char *json, struct gw_hazard_entry *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof(*e));
    if (json == NULL) {
        return fail(err, errlen, -EINVAL, "no JSON");
    }
    json_error_t jerr;
    json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        return fail(err, errlen, -EINVAL, "bad JSON: %s", jerr.text);
    }
    int rc = parse_entry(o, e, err, errlen);
    json_decref(o);
    if (rc != 0) {
        memset(e, 0, sizeof(*e));
    }
    return rc;
}

/* ---- the chain ---- */

/* Does e continue a chain whose last entry had seq and hash prev? */
static int check_link(uint64_t seq, const char *prev, const struct gw_hazard_entry *e, char *err,
                      size_t errlen)
{
    if (e->seq != seq + 1) {
        return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": expected seq %" PRIu64, e->seq,
                    seq + 1);
    }
    if (strcmp(e->prev_hash, prev) != 0) {
        return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": prev_hash is not the previous hash",
                    e->seq);
    }
    char hash[GW_HZ_HASH_HEX];
    int rc = gw_hazard_entry_hash(e, hash);
    if (rc == -EINVAL) {
        return fail(err, errlen, rc, "seq %" PRIu64 ": a text is not valid UTF-8", e->seq);
    }
    if (rc != 0) {
        return fail(err, errlen, rc, "seq %" PRIu64 ": out of memory", e->seq);
    }
    if (strcmp(hash, e->hash) != 0) {
        return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": hash mismatch (entry changed)", e->seq);
    }
    return 0;
}

int gw_hazard_chain_verify(const struct gw_hazard_entry *entries, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        const char *prev = i == 0 ? zero_hash : entries[i - 1].hash;
        if (check_link((uint64_t)i, prev, &entries[i], err, errlen) != 0) {
            return i;
        }
    }
    fail(err, errlen, 0, "%d entries, chain intact", n);
    return -1;
}

uint64_t gw_hazards_last_seq(const struct gw_hazards *hz, char hash[GW_HZ_HASH_HEX])
{
    if (hash != NULL) {
        memcpy(hash, hz->head, GW_HZ_HASH_HEX);
    }
    return hz->seq;
}

/* ---- changes ---- */

/* Build the entry for `after` (the hazard after the change) and hash it: commit only on success. */
static int make_entry(const struct gw_hazards *hz, const struct gw_hazard *after,
                      const char *action, unsigned fields, const char *by, const char *note,
                      int64_t now_ms, struct gw_hazard_entry *out)
{
    memset(out, 0, sizeof(*out));
    out->seq = hz->seq + 1;
    out->at_ms = now_ms;
    copy_str(out->by, sizeof(out->by), by);
    out->action = find_step(action)->action;
    out->fields = fields;
    out->hazard = *after;
    copy_str(out->note, sizeof(out->note), note);
    memcpy(out->prev_hash, hz->head, GW_HZ_HASH_HEX);
    return gw_hazard_entry_hash(out, out->hash);
}

/* Room for one more hazard, so that committing a new one cannot fail. */
static int reserve(struct gw_hazards *hz)
{
    if (hz->n < hz->cap) {
        return 0;
    }
    int cap = hz->cap ? hz->cap * 2 : 16;
    struct gw_hazard *list = realloc(hz->list, (size_t)cap * sizeof(*list));
    if (list == NULL) {
        return -ENOMEM;
    }
    hz->list = list;
    hz->cap = cap;
    return 0;
}

/* Take e's hazard and move the chain head on; index < 0: a new hazard (reserve first). */
static void commit(struct gw_hazards *hz, int index, const struct gw_hazard_entry *e)
{
    if (index < 0) {
        index = hz->n++;
    }
    hz->list[index] = e->hazard;
    hz->seq = e->seq;
    memcpy(hz->head, e->hash, GW_HZ_HASH_HEX);
}

static int64_t default_deadline(const struct gw_hazards *hz, enum gw_hazard_category c,
                                int64_t from_ms)
{
    return from_ms + (int64_t)hz->deadline_days[c] * GW_HZ_DAY_MS;
}

static int check_place(const char *building, const char *floor, const char *zone, char *err,
                       size_t errlen)
{
    int rc;
    if ((rc = check_text("building", building, GW_HZ_PLACE_MAX, true, err, errlen)) != 0 ||
        (rc = check_text("floor", floor, GW_HZ_PLACE_MAX, false, err, errlen)) != 0 ||
        (rc = check_text("zone", zone, GW_HZ_PLACE_MAX, false, err, errlen)) != 0) {
        return rc;
    }
    return 0;
}

/* A new hazard from a person or an alarm; 1 with the entry, or an error. */
static int open_new(struct gw_hazards *hz, struct gw_hazard *h, const char *by, const char *note,
                    int64_t now_ms, struct gw_hazard_entry *out, char *err, size_t errlen)
{
    if (reserve(hz) != 0) {
        return fail(err, errlen, -ENOMEM, "out of memory");
    }
    next_id(hz, now_ms, h->id);
    h->found_at_ms = now_ms;
    h->status = GW_HZ_OPEN;
    if (h->deadline_ms == 0) {
        h->deadline_ms = default_deadline(hz, h->category, now_ms);
    }
    if (make_entry(hz, h, "open", GW_HZF_ALL, by, note, now_ms, out) != 0) {
        return fail(err, errlen, -ENOMEM, "out of memory");
    }
    commit(hz, -1, out);
    return 1;
}

static int cmd_open(struct gw_hazards *hz, const struct gw_hazard_command *cmd, int64_t now_ms,
                    struct gw_hazard_entry *out, char *err, size_t errlen)
{
    int c = gw_hazard_category_from_name(cmd->category);
    if (cmd->category == NULL || cmd->category[0] == '\0') {
        return fail(err, errlen, -EINVAL, "category is required");
    }
    if (c < 0) {
        return fail(err, errlen, -EINVAL,
                    "unknown category (fire_equipment, evacuation_route, electrical, structure, "
                    "surroundings, other)");
    }
    int rc;
    if ((rc = check_place(cmd->building, cmd->floor, cmd->zone, err, errlen)) != 0 ||
        (rc = check_text("description", cmd->description, GW_HZ_DESC_MAX, true, err, errlen)) !=
            0 ||
        (rc = check_text("responsible", cmd->responsible, GW_NAME_MAX, true, err, errlen)) != 0) {
        return rc;
    }
    struct gw_hazard h = {.category = (enum gw_hazard_category)c, .deadline_ms = cmd->deadline_ms};
    copy_str(h.building, sizeof(h.building), cmd->building);
    copy_str(h.floor, sizeof(h.floor), cmd->floor);
    copy_str(h.zone, sizeof(h.zone), cmd->zone);
    copy_str(h.description, sizeof(h.description), cmd->description);
    copy_str(h.found_by, sizeof(h.found_by), cmd->by);
    copy_str(h.responsible, sizeof(h.responsible), cmd->responsible);
    return open_new(hz, &h, cmd->by, cmd->note, now_ms, out, err, errlen);
}

int gw_hazards_command(struct gw_hazards *hz, const struct gw_hazard_command *cmd, int64_t now_ms,
                       struct gw_hazard_entry *out, char *err, size_t errlen)
{
    if (cmd == NULL || out == NULL) {
        return fail(err, errlen, -EINVAL, "no command");
    }
    const char *name = gw_hazard_cmd_name(cmd->type);
    int rc;
    if ((int)cmd->type < 0 || (int)cmd->type >= NCMDS) {
        return fail(err, errlen, -EINVAL, "unknown command");
    }
    if ((rc = check_text("by", cmd->by, GW_NAME_MAX, true, err, errlen)) != 0 ||
        (rc = check_text("note", cmd->note, GW_NOTE_MAX, false, err, errlen)) != 0) {
        return rc;
    }
    if (cmd->deadline_ms != 0 && cmd->deadline_ms <= now_ms) {
        return fail(err, errlen, -EINVAL, "deadline must be later than now");
    }
    if (cmd->type == GW_HZ_CMD_OPEN) {
        return cmd_open(hz, cmd, now_ms, out, err, errlen);
    }
    if (cmd->id == NULL || cmd->id[0] == '\0') {
        return fail(err, errlen, -EINVAL, "id is required");
    }
    int i = hazard_index(hz, cmd->id);
    if (i < 0) {
        return fail(err, errlen, -ENOENT, "unknown hazard %.*s", GW_HZ_ID_MAX, cmd->id);
    }
    struct gw_hazard h = hz->list[i];
    const struct step *st = find_step(name);
    if (!(st->from & (1u << h.status))) {
        return fail(err, errlen, -EPERM, "%s: not allowed while %s", name,
                    gw_hazard_status_name(h.status));
    }
    unsigned fields = 0;
    switch (cmd->type) {
    case GW_HZ_CMD_UPDATE:
        if (cmd->responsible == NULL && cmd->description == NULL && cmd->deadline_ms == 0) {
            return fail(err, errlen, -EINVAL, "update: give responsible, deadline or description");
        }
        if ((cmd->responsible != NULL && (rc = check_text("responsible", cmd->responsible,
                                                          GW_NAME_MAX, true, err, errlen)) != 0) ||
            (cmd->description != NULL &&
             (rc = check_text("description", cmd->description, GW_HZ_DESC_MAX, true, err,
                              errlen)) != 0)) {
            return rc;
        }
        if (cmd->responsible != NULL && strcmp(cmd->responsible, h.responsible) != 0) {
            copy_str(h.responsible, sizeof(h.responsible), cmd->responsible);
            fields |= GW_HZF_RESPONSIBLE;
        }
        if (cmd->description != NULL && strcmp(cmd->description, h.description) != 0) {
            copy_str(h.description, sizeof(h.description), cmd->description);
            fields |= GW_HZF_DESCRIPTION;
        }
        if (cmd->deadline_ms != 0 && cmd->deadline_ms != h.deadline_ms) {
            h.deadline_ms = cmd->deadline_ms;
            fields |= GW_HZF_DEADLINE;
            if (h.overdue) {
                h.overdue = false; /* a new deadline: it may escalate again */
                fields |= GW_HZF_OVERDUE;
            }
        }
        if (fields == 0) {
            return 0;
        }
        break;
    case GW_HZ_CMD_RECTIFYING:
        h.status = GW_HZ_RECTIFYING;
        fields = GW_HZF_STATUS;
        break;
    case GW_HZ_CMD_CLOSE:
        if (cmd->note == NULL || cmd->note[0] == '\0') {
            return fail(err, errlen, -EINVAL, "close: a note on the fix is required");
        }
        if ((rc = check_text("verifier", cmd->verifier, GW_NAME_MAX, true, err, errlen)) != 0) {
            return rc;
        }
        h.status = GW_HZ_CLOSED;
        copy_str(h.verified_by, sizeof(h.verified_by), cmd->verifier);
        fields = GW_HZF_STATUS | GW_HZF_VERIFIED_BY;
        break;
    case GW_HZ_CMD_REOPEN:
        h.status = GW_HZ_OPEN;
        h.verified_by[0] = '\0';
        h.overdue = false;
        h.deadline_ms =
            cmd->deadline_ms ? cmd->deadline_ms : default_deadline(hz, h.category, now_ms);
        fields = GW_HZF_STATUS | GW_HZF_VERIFIED_BY | GW_HZF_DEADLINE | GW_HZF_OVERDUE;
        break;
    case GW_HZ_CMD_OPEN:
        break; /* handled above */
    }
    if (make_entry(hz, &h, name, fields, cmd->by, cmd->note, now_ms, out) != 0) {
        return fail(err, errlen, -ENOMEM, "out of memory");
    }
    commit(hz, i, out);
    return 1;
}

int gw_hazards_on_alarm(struct gw_hazards *hz, const struct gw_hazard_alarm *alarm, int64_t now_ms,
                        struct gw_hazard_entry *out, char *err, size_t errlen)
{
    if (alarm == NULL || out == NULL) {
        return fail(err, errlen, -EINVAL, "no alarm");
    }
    int rc;
    if ((rc = check_text("alarm key", alarm->key, GW_KEY_MAX, true, err, errlen)) != 0 ||
        (rc = check_text("rule name", alarm->rule_name, GW_HZ_DESC_MAX, true, err, errlen)) != 0) {
        return rc;
    }
    if ((int)alarm->category < 0 || (int)alarm->category >= GW_HZ_NCATEGORIES) {
        return fail(err, errlen, -EINVAL, "unknown category");
    }
    if ((rc = check_place(alarm->building, alarm->floor, alarm->zone, err, errlen)) != 0 ||
        (rc = check_text("description", alarm->description, GW_HZ_DESC_MAX, true, err, errlen)) !=
            0) {
        return rc;
    }
    bool listed = false;
    for (int i = 0; i < hz->nauto_open && !listed; i++) {
        listed = strcmp(hz->auto_open[i], alarm->rule_name) == 0;
    }
    if (!listed) {
        return 0;
    }
    for (int i = 0; i < hz->n; i++) {
        if (hz->list[i].status != GW_HZ_CLOSED &&
            strcmp(hz->list[i].source_alarm, alarm->key) == 0) {
            return 0; /* one not-closed hazard per alarm */
        }
    }
    struct gw_hazard h = {.category = alarm->category};
    copy_str(h.building, sizeof(h.building), alarm->building);
    copy_str(h.floor, sizeof(h.floor), alarm->floor);
    copy_str(h.zone, sizeof(h.zone), alarm->zone);
    copy_str(h.description, sizeof(h.description), alarm->description);
    copy_str(h.source_alarm, sizeof(h.source_alarm), alarm->key);
    /* Nobody is named yet: the school assigns someone with an update. */
    copy_str(h.responsible, sizeof(h.responsible), "");
    return open_new(hz, &h, "", "", now_ms, out, err, errlen);
}

int gw_hazards_tick(struct gw_hazards *hz, int64_t now_ms, struct gw_hazard_entry *out, int max)
{
    int n = 0;
    for (int i = 0; i < hz->n && n < max; i++) {
        const struct gw_hazard *cur = &hz->list[i];
        if (cur->status == GW_HZ_CLOSED || cur->overdue || now_ms < cur->deadline_ms) {
            continue;
        }
        struct gw_hazard h = *cur;
        h.overdue = true;
        if (make_entry(hz, &h, "overdue", GW_HZF_OVERDUE, "", "", now_ms, &out[n]) != 0) {
            return n > 0 ? n : -ENOMEM;
        }
        commit(hz, i, &out[n]);
        n++;
    }
    return n;
}

void gw_hazards_count(const struct gw_hazards *hz, int64_t now_ms, struct gw_hazard_counts *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < hz->n; i++) {
        const struct gw_hazard *h = &hz->list[i];
        if (h->status == GW_HZ_CLOSED) {
            continue;
        }
        c->open += h->status == GW_HZ_OPEN;
        c->rectifying += h->status == GW_HZ_RECTIFYING;
        c->overdue += now_ms >= h->deadline_ms;
    }
}

const struct gw_hazard *gw_hazards_find(const struct gw_hazards *hz, const char *id)
{
    int i = hazard_index(hz, id);
    return i < 0 ? NULL : &hz->list[i];
}

const struct gw_hazard *gw_hazards_next(const struct gw_hazards *hz, int *iter)
{
    return *iter >= 0 && *iter < hz->n ? &hz->list[(*iter)++] : NULL;
}

/* ---- restore ---- */

int gw_hazards_restore(struct gw_hazards *hz, const struct gw_hazard_entry *e, char *err,
                       size_t errlen)
{
    if (e == NULL) {
        return fail(err, errlen, -EINVAL, "no entry");
    }
    int rc = check_link(hz->seq, hz->head, e, err, errlen);
    if (rc != 0) {
        return rc;
    }
    const struct step *st = find_step(e->action);
    if (st == NULL) {
        return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": unknown action", e->seq);
    }
    if ((e->fields & st->required) != st->required || (e->fields & ~st->allowed) != 0 ||
        (e->fields == 0)) {
        return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": fields do not fit \"%s\"", e->seq,
                    st->action);
    }
    int i = hazard_index(hz, e->hazard.id);
    struct gw_hazard h;
    if (st->from == 0) {
        if (i >= 0) {
            return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": %s opened twice", e->seq,
                        e->hazard.id);
        }
        memset(&h, 0, sizeof(h));
        copy_str(h.id, sizeof(h.id), e->hazard.id);
    } else {
        if (i < 0) {
            return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": %s never opened", e->seq,
                        e->hazard.id);
        }
        h = hz->list[i];
        if (!(st->from & (1u << h.status))) {
            return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": %s while %s", e->seq, st->action,
                        gw_hazard_status_name(h.status));
        }
    }
    bool was_overdue = h.overdue;
    for (int f = 0; f < NFIELDS; f++) {
        unsigned bit = field_names[f].bit;
        if (!(e->fields & bit)) {
            continue;
        }
        size_t size;
        char *dst = text_field(&h, bit, &size);
        if (dst != NULL) {
            const char *src = text_field((struct gw_hazard *)&e->hazard, bit, &size);
            copy_str(dst, size, src);
            continue;
        }
        switch (bit) {
        case GW_HZF_CATEGORY:
            h.category = e->hazard.category;
            break;
        case GW_HZF_FOUND_AT:
            h.found_at_ms = e->hazard.found_at_ms;
            break;
        case GW_HZF_DEADLINE:
            h.deadline_ms = e->hazard.deadline_ms;
            break;
        case GW_HZF_STATUS:
            h.status = e->hazard.status;
            break;
        case GW_HZF_OVERDUE:
            h.overdue = e->hazard.overdue;
            break;
        default:
            break;
        }
    }
    if (st->to >= 0 && h.status != (enum gw_hazard_status)st->to) {
        return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": %s must leave the hazard %s", e->seq,
                    st->action, status_names[st->to]);
    }
    if (strcmp(st->action, "update") == 0 && (e->fields & GW_HZF_OVERDUE) && h.overdue) {
        return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": update may only clear overdue", e->seq);
    }
    if (strcmp(st->action, "overdue") == 0 && (was_overdue || !h.overdue)) {
        return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": overdue must set overdue once", e->seq);
    }
    if (strcmp(st->action, "close") == 0 && (h.verified_by[0] == '\0' || e->note[0] == '\0')) {
        return fail(err, errlen, -EINVAL, "seq %" PRIu64 ": close without verifier or note",
                    e->seq);
    }
    if (st->from == 0 && reserve(hz) != 0) {
        return fail(err, errlen, -ENOMEM, "out of memory");
    }
    struct gw_hazard_entry applied = *e;
    applied.hazard = h;
    commit(hz, st->from == 0 ? -1 : i, &applied);
    return 0;
}
