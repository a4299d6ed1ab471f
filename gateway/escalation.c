#include "escalation.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Bounds for times read back from the store: Unix ms up to year ~33658. */
#define MAX_TIME_MS 1000000000000000LL
#define SAVE_VERSION 1

struct esc_alarm {
    char key[GW_KEY_MAX];
    enum gw_alarm_class cls;
    bool test;
    bool stopped;
    bool storm; /* started in a storm: level 1 goes into summaries */
    bool dirty; /* changed since the last flush */
    int64_t raised_at_ms;
    int level;           /* levels told so far = index of the next level */
    int64_t next_due_ms; /* GW_ESC_NEVER when nothing more */
    int repeats;
    uint64_t order; /* start order, to break ties */
    uint8_t *told;  /* bitset over contacts: told of this raise */
    uint8_t *held;  /* bitset: waiting in that contact's storm summary */
};

struct gw_escalation {
    const struct gw_config *cfg;
    int ncontacts;
    size_t nbytes; /* of each bitset */
    struct esc_alarm **alarms;
    int nalarms, cap;
    uint64_t next_order;
    /* storm detection: the last storm_count + 1 start times, a ring */
    int64_t *starts;
    int starts_cap, starts_n, starts_head;
    /* per contact: held keys (total and by class), summary timing, last summary */
    int *nheld;
    int *nheld_class; /* [contact * GW_NCLASSES + class] */
    int64_t *summary_due;
    int64_t *last_summary;
    struct gw_esc_summary *summaries;
    /* keys cleared since the last flush */
    char (*gone)[GW_KEY_MAX];
    int ngone, gone_cap;
};

static const char *const class_names[GW_NCLASSES] = {"alarm", "supervisory", "trouble"};

const char *gw_esc_kind_name(enum gw_esc_kind kind)
{
    switch (kind) {
    case GW_ESC_RAISE:
        return "raise";
    case GW_ESC_REPEAT:
        return "repeat";
    case GW_ESC_CLEAR:
        return "clear";
    case GW_ESC_SUMMARY:
        return "summary";
    }
    return "unknown";
}

static bool bit_get(const uint8_t *set, int i)
{
    return (set[i / 8] >> (i % 8)) & 1u;
}

static void bit_set(uint8_t *set, int i)
{
    set[i / 8] = (uint8_t)(set[i / 8] | (1u << (i % 8)));
}

static void bit_clear(uint8_t *set, int i)
{
    set[i / 8] = (uint8_t)(set[i / 8] & ~(1u << (i % 8)));
}

/* a + b without overflow: the sum saturates at the int64 range. */
static int64_t add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) {
        return INT64_MAX;
    }
    if (b < 0 && a < INT64_MIN - b) {
        return INT64_MIN;
    }
    return a + b;
}

static bool class_ok(int cls)
{
    return cls >= 0 && cls < GW_NCLASSES;
}

static int nlevels(const struct gw_escalation *esc, enum gw_alarm_class cls)
{
    const struct gw_escalation_cfg *e = &esc->cfg->escalation;
    if (!class_ok((int)cls) || e->levels[cls] == NULL || e->nlevels[cls] < 0) {
        return 0;
    }
    return e->nlevels[cls];
}

static const struct gw_escalation_level_cfg *level_cfg(const struct gw_escalation *esc,
                                                       enum gw_alarm_class cls, int i)
{
    return &esc->cfg->escalation.levels[cls][i];
}

static int64_t level_due(const struct gw_escalation *esc, const struct esc_alarm *a, int i)
{
    return add_sat(a->raised_at_ms, (int64_t)level_cfg(esc, a->cls, i)->after_s * 1000);
}

/* The first instant of from + k * period (k >= 1) after now. */
static int64_t next_after(int64_t from, int64_t period, int64_t now)
{
    int64_t next = add_sat(from, period);
    if (next <= now && next != INT64_MAX) {
        int64_t k = (now - next) / period + 1;
        next = (k > (INT64_MAX - next) / period) ? INT64_MAX : next + k * period;
    }
    return next;
}

/* The distinct valid contacts of level i of cls, in config order; returns how many. */
static int level_contacts(const struct gw_escalation *esc, enum gw_alarm_class cls, int i, int *out)
{
    const struct gw_escalation_level_cfg *lv = level_cfg(esc, cls, i);
    int n = 0;
    for (int k = 0; k < lv->ncontacts; k++) {
        int c = lv->contacts[k];
        if (c < 0 || c >= esc->ncontacts) {
            continue;
        }
        bool seen = false;
        for (int j = 0; j < n; j++) {
            seen = seen || out[j] == c;
        }
        if (!seen) {
            out[n++] = c;
        }
    }
    return n;
}

/* ---- storage ---- */

static struct esc_alarm *find(const struct gw_escalation *esc, const char *key, int *index)
{
    if (key == NULL) {
        return NULL;
    }
    for (int i = 0; i < esc->nalarms; i++) {
        if (strcmp(esc->alarms[i]->key, key) == 0) {
            if (index) {
                *index = i;
            }
            return esc->alarms[i];
        }
    }
    return NULL;
}

static bool key_ok(const char *key)
{
    return key != NULL && key[0] != '\0' && strlen(key) < GW_KEY_MAX;
}

static struct esc_alarm *add_alarm(struct gw_escalation *esc, const char *key)
{
    if (esc->nalarms == esc->cap) {
        int cap = esc->cap ? esc->cap * 2 : 16;
        struct esc_alarm **grown = realloc(esc->alarms, (size_t)cap * sizeof(*grown));
        if (grown == NULL) {
            return NULL;
        }
        esc->alarms = grown;
        esc->cap = cap;
    }
    /* One block: the record, then its two bitsets. */
    struct esc_alarm *a = calloc(1, sizeof(*a) + 2 * esc->nbytes);
    if (a == NULL) {
        return NULL;
    }
    snprintf(a->key, sizeof(a->key), "%s", key);
    a->told = (uint8_t *)(a + 1);
    a->held = a->told + esc->nbytes;
    a->next_due_ms = GW_ESC_NEVER;
    a->order = esc->next_order++;
    esc->alarms[esc->nalarms++] = a;
    return a;
}

static void set_held(struct gw_escalation *esc, struct esc_alarm *a, int c, int64_t summary_at)
{
    if (bit_get(a->held, c)) {
        return;
    }
    bit_set(a->held, c);
    esc->nheld[c]++;
    esc->nheld_class[c * GW_NCLASSES + a->cls]++;
    if (summary_at < esc->summary_due[c]) {
        esc->summary_due[c] = summary_at;
    }
}

static void unset_held(struct gw_escalation *esc, struct esc_alarm *a, int c)
{
    if (!bit_get(a->held, c)) {
        return;
    }
    bit_clear(a->held, c);
    esc->nheld[c]--;
    esc->nheld_class[c * GW_NCLASSES + a->cls]--;
    if (esc->nheld[c] == 0) {
        esc->summary_due[c] = GW_ESC_NEVER;
    }
}

static void unset_all_held(struct gw_escalation *esc, struct esc_alarm *a)
{
    for (int c = 0; c < esc->ncontacts; c++) {
        unset_held(esc, a, c);
    }
}

static int remember_gone(struct gw_escalation *esc, const char *key)
{
    for (int i = 0; i < esc->ngone; i++) {
        if (strcmp(esc->gone[i], key) == 0) {
            return 0;
        }
    }
    if (esc->ngone == esc->gone_cap) {
        int cap = esc->gone_cap ? esc->gone_cap * 2 : 16;
        char(*grown)[GW_KEY_MAX] = realloc(esc->gone, (size_t)cap * sizeof(*grown));
        if (grown == NULL) {
            return -ENOMEM;
        }
        esc->gone = grown;
        esc->gone_cap = cap;
    }
    snprintf(esc->gone[esc->ngone++], GW_KEY_MAX, "%s", key);
    return 0;
}

static void forget_gone(struct gw_escalation *esc, const char *key)
{
    for (int i = 0; i < esc->ngone; i++) {
        if (strcmp(esc->gone[i], key) == 0) {
            memmove(&esc->gone[i], &esc->gone[i + 1], (size_t)(esc->ngone - i - 1) * GW_KEY_MAX);
            esc->ngone--;
            return;
        }
    }
}

static void remove_alarm(struct gw_escalation *esc, int index)
{
    struct esc_alarm *a = esc->alarms[index];
    unset_all_held(esc, a);
    free(a);
    memmove(&esc->alarms[index], &esc->alarms[index + 1],
            (size_t)(esc->nalarms - index - 1) * sizeof(esc->alarms[0]));
    esc->nalarms--;
}

struct gw_escalation *gw_escalation_new(const struct gw_config *cfg)
{
    if (cfg == NULL) {
        return NULL;
    }
    struct gw_escalation *esc = calloc(1, sizeof(*esc));
    if (esc == NULL) {
        return NULL;
    }
    esc->cfg = cfg;
    esc->ncontacts = cfg->ncontacts > 0 ? cfg->ncontacts : 0;
    esc->nbytes = (size_t)(esc->ncontacts + 7) / 8;
    if (esc->nbytes == 0) {
        esc->nbytes = 1;
    }
    size_t nc = (size_t)(esc->ncontacts > 0 ? esc->ncontacts : 1);
    esc->nheld = calloc(nc, sizeof(*esc->nheld));
    esc->nheld_class = calloc(nc * GW_NCLASSES, sizeof(*esc->nheld_class));
    esc->summary_due = calloc(nc, sizeof(*esc->summary_due));
    esc->last_summary = calloc(nc, sizeof(*esc->last_summary));
    esc->summaries = calloc(nc, sizeof(*esc->summaries));
    if (cfg->alarms.storm_count > 0 && cfg->alarms.storm_count < 1000000) {
        esc->starts_cap = cfg->alarms.storm_count + 1;
        esc->starts = calloc((size_t)esc->starts_cap, sizeof(*esc->starts));
    }
    if (!esc->nheld || !esc->nheld_class || !esc->summary_due || !esc->last_summary ||
        !esc->summaries || (esc->starts_cap > 0 && !esc->starts)) {
        gw_escalation_free(esc);
        return NULL;
    }
    for (size_t c = 0; c < nc; c++) {
        esc->summary_due[c] = GW_ESC_NEVER;
        esc->last_summary[c] = INT64_MIN;
    }
    return esc;
}

void gw_escalation_free(struct gw_escalation *esc)
{
    if (esc == NULL) {
        return;
    }
    for (int i = 0; i < esc->nalarms; i++) {
        free(esc->alarms[i]);
    }
    free(esc->alarms);
    free(esc->starts);
    free(esc->nheld);
    free(esc->nheld_class);
    free(esc->summary_due);
    free(esc->last_summary);
    free(esc->summaries);
    free(esc->gone);
    free(esc);
}

/* ---- storm detection ---- */

/* Record a start at now; true when it makes more than storm_count within the window. */
static bool note_start(struct gw_escalation *esc, int64_t now_ms)
{
    if (esc->starts_cap == 0) {
        return false;
    }
    esc->starts[esc->starts_head] = now_ms;
    esc->starts_head = (esc->starts_head + 1) % esc->starts_cap;
    if (esc->starts_n < esc->starts_cap) {
        esc->starts_n++;
        if (esc->starts_n < esc->starts_cap) {
            return false;
        }
    }
    /* The ring is full: its oldest entry is storm_count starts before this one. */
    int64_t oldest = esc->starts[esc->starts_head];
    return oldest > now_ms - GW_ESC_STORM_WINDOW_MS && oldest <= now_ms;
}

/* ---- timing ---- */

/* Where the next step of a falls, from its level, flags and the config (not for repeats). */
static void plan(const struct gw_escalation *esc, struct esc_alarm *a)
{
    int n = nlevels(esc, a->cls);
    if (a->stopped || n == 0 || (a->test && a->level >= 1)) {
        a->next_due_ms = GW_ESC_NEVER;
    } else if (a->level < n) {
        a->next_due_ms = level_due(esc, a, a->level);
    } else if (level_cfg(esc, a->cls, n - 1)->repeat_s <= 0) {
        a->next_due_ms = GW_ESC_NEVER;
    }
    /* else: a repeat, whose time the caller sets (it depends on the last one). */
}

int gw_escalation_start(struct gw_escalation *esc, const char *key, enum gw_alarm_class cls,
                        int64_t raised_at_ms, bool test, int64_t now_ms)
{
    if (esc == NULL || !key_ok(key) || !class_ok((int)cls) || raised_at_ms < 0 ||
        raised_at_ms > MAX_TIME_MS) {
        return -EINVAL;
    }
    struct esc_alarm *a = find(esc, key, NULL);
    if (a == NULL) {
        a = add_alarm(esc, key);
        if (a == NULL) {
            return -ENOMEM;
        }
    } else {
        /* A re-raise: its held keys belong to its class's counts, which may change. */
        unset_all_held(esc, a);
        a->order = esc->next_order++;
    }
    a->cls = cls;
    a->test = test;
    a->stopped = false;
    a->raised_at_ms = raised_at_ms;
    a->level = 0;
    a->repeats = 0;
    a->storm = note_start(esc, now_ms);
    a->dirty = true;
    plan(esc, a);
    return 0;
}

int gw_escalation_stop(struct gw_escalation *esc, const char *key)
{
    struct esc_alarm *a = esc ? find(esc, key, NULL) : NULL;
    if (a == NULL) {
        return -ENOENT;
    }
    if (!a->stopped) {
        a->stopped = true;
        a->next_due_ms = GW_ESC_NEVER;
        a->dirty = true;
    }
    unset_all_held(esc, a);
    return 0;
}

static void fill(struct gw_esc_notification *n, enum gw_esc_kind kind, const struct esc_alarm *a,
                 int level, int contact, int64_t due_ms)
{
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    snprintf(n->key, sizeof(n->key), "%s", a->key);
    n->alarm_class = a->cls;
    n->level = level;
    n->contact = contact;
    n->test = a->test;
    n->raised_at_ms = a->raised_at_ms;
    n->due_ms = due_ms;
}

int gw_escalation_clear(struct gw_escalation *esc, const char *key, int64_t now_ms,
                        struct gw_esc_notification *out, int max)
{
    int index = -1;
    struct esc_alarm *a = esc ? find(esc, key, &index) : NULL;
    if (a == NULL) {
        return -ENOENT;
    }
    int told = 0;
    for (int c = 0; c < esc->ncontacts; c++) {
        told += bit_get(a->told, c);
    }
    if (told > 0 && (out == NULL || max < told)) {
        return -ENOSPC;
    }
    if (remember_gone(esc, a->key) < 0) {
        return -ENOMEM;
    }
    int n = 0;
    int level = a->level > 0 ? a->level : 1;
    for (int c = 0; c < esc->ncontacts; c++) {
        if (bit_get(a->told, c)) {
            fill(&out[n++], GW_ESC_CLEAR, a, level, c, now_ms);
        }
    }
    remove_alarm(esc, index);
    return n;
}

/* ---- due ---- */

/* What due() may do next: one level or repeat of an alarm, or one contact's summary. */
struct step {
    enum gw_alarm_class cls;
    int64_t due_ms;
    uint64_t order;
    struct esc_alarm *alarm; /* NULL: the summary of `contact` */
    int contact;
};

static bool before(const struct step *x, const struct step *y)
{
    if (x->cls != y->cls) {
        return x->cls < y->cls;
    }
    if (x->due_ms != y->due_ms) {
        return x->due_ms < y->due_ms;
    }
    return x->order < y->order;
}

static bool next_step(const struct gw_escalation *esc, int64_t now_ms, struct step *best)
{
    bool found = false;
    for (int i = 0; i < esc->nalarms; i++) {
        struct esc_alarm *a = esc->alarms[i];
        if (a->stopped || a->next_due_ms > now_ms) {
            continue;
        }
        struct step s = {a->cls, a->next_due_ms, a->order, a, -1};
        if (!found || before(&s, best)) {
            *best = s;
            found = true;
        }
    }
    for (int c = 0; c < esc->ncontacts; c++) {
        if (esc->nheld[c] == 0 || esc->summary_due[c] > now_ms) {
            continue;
        }
        enum gw_alarm_class cls = GW_CLASS_TROUBLE;
        for (int k = GW_NCLASSES - 1; k >= 0; k--) {
            if (esc->nheld_class[c * GW_NCLASSES + k] > 0) {
                cls = (enum gw_alarm_class)k;
            }
        }
        /* After alarm steps of the same class and time, contacts in config order. */
        struct step s = {cls, esc->summary_due[c], UINT64_MAX - (uint64_t)(esc->ncontacts - c),
                         NULL, c};
        if (!found || before(&s, best)) {
            *best = s;
            found = true;
        }
    }
    return found;
}

static int cmp_raise(const void *x, const void *y)
{
    const struct esc_alarm *a = *(const struct esc_alarm *const *)x;
    const struct esc_alarm *b = *(const struct esc_alarm *const *)y;
    if (a->raised_at_ms != b->raised_at_ms) {
        return a->raised_at_ms < b->raised_at_ms ? -1 : 1;
    }
    return a->order < b->order ? -1 : (a->order > b->order);
}

/* Contact c's summary: every key held for it, which then counts as told. */
static int emit_summary(struct gw_escalation *esc, int c, int64_t due_ms, int64_t now_ms,
                        struct gw_esc_notification *out)
{
    struct esc_alarm **held = malloc((size_t)esc->nheld[c] * sizeof(*held));
    if (held == NULL) {
        return -ENOMEM;
    }
    int n = 0;
    for (int i = 0; i < esc->nalarms && n < esc->nheld[c]; i++) {
        if (bit_get(esc->alarms[i]->held, c)) {
            held[n++] = esc->alarms[i];
        }
    }
    qsort(held, (size_t)n, sizeof(*held), cmp_raise);
    struct gw_esc_summary *s = &esc->summaries[c];
    memset(s, 0, sizeof(*s));
    s->total = n;
    s->first_ms = held[0]->raised_at_ms;
    s->last_ms = held[n - 1]->raised_at_ms;
    enum gw_alarm_class top = GW_CLASS_TROUBLE;
    for (int i = 0; i < n; i++) {
        struct esc_alarm *a = held[i];
        if (i < GW_ESC_SUMMARY_KEYS) {
            snprintf(s->keys[i], GW_KEY_MAX, "%s", a->key);
            s->nlisted++;
        }
        s->per_class[a->cls]++;
        s->tests += a->test;
        if (a->cls < top) {
            top = a->cls;
        }
        unset_held(esc, a, c);
        bit_set(a->told, c);
        a->dirty = true;
    }
    free(held);
    memset(out, 0, sizeof(*out));
    out->kind = GW_ESC_SUMMARY;
    out->alarm_class = top;
    out->level = 1;
    out->contact = c;
    out->raised_at_ms = s->first_ms;
    out->due_ms = due_ms;
    out->summary = s;
    esc->last_summary[c] = now_ms;
    return 1;
}

/* One level or repeat of a; returns notifications written, or -ENOSPC when they do not fit. */
static int emit_level(struct gw_escalation *esc, struct esc_alarm *a, int64_t now_ms,
                      struct gw_esc_notification *out, int room, int *scratch)
{
    int nl = nlevels(esc, a->cls);
    int64_t due = a->next_due_ms;
    bool repeat = a->level >= nl;
    int i = repeat ? nl - 1 : a->level;
    int nc = level_contacts(esc, a->cls, i, scratch);
    bool hold = !repeat && i == 0 && a->storm;
    if (!hold && nc > room) {
        return -ENOSPC;
    }
    int n = 0;
    for (int k = 0; k < nc; k++) {
        int c = scratch[k];
        if (hold) {
            int64_t at = add_sat(due, GW_ESC_STORM_HOLD_MS);
            int64_t spaced = add_sat(esc->last_summary[c], GW_ESC_STORM_WINDOW_MS);
            set_held(esc, a, c, at > spaced ? at : spaced);
        } else {
            fill(&out[n++], repeat ? GW_ESC_REPEAT : GW_ESC_RAISE, a, i + 1, c, due);
            bit_set(a->told, c);
        }
    }
    a->dirty = true;
    int64_t period = (int64_t)level_cfg(esc, a->cls, nl - 1)->repeat_s * 1000;
    if (repeat) {
        a->repeats++;
        a->next_due_ms = next_after(due, period, now_ms);
        return n;
    }
    a->level++;
    plan(esc, a);
    if (a->level == nl && !a->test && period > 0) {
        a->next_due_ms = next_after(due, period, now_ms);
    }
    return n;
}

int gw_escalation_due(struct gw_escalation *esc, int64_t now_ms, struct gw_esc_notification *out,
                      int max)
{
    if (esc == NULL || out == NULL || max < 0) {
        return -EINVAL;
    }
    int *scratch = malloc((size_t)(esc->ncontacts > 0 ? esc->ncontacts : 1) * sizeof(*scratch));
    if (scratch == NULL) {
        return -ENOMEM;
    }
    int n = 0;
    struct step s = {0};
    while (next_step(esc, now_ms, &s)) {
        int r;
        if (s.alarm) {
            r = emit_level(esc, s.alarm, now_ms, &out[n], max - n, scratch);
        } else if (n < max) {
            r = emit_summary(esc, s.contact, s.due_ms, now_ms, &out[n]);
        } else {
            r = -ENOSPC;
        }
        if (r < 0) {
            if (r == -ENOSPC && n > 0) {
                break; /* the rest stays due */
            }
            free(scratch);
            return r;
        }
        n += r;
    }
    free(scratch);
    return n;
}

int64_t gw_escalation_next_deadline(const struct gw_escalation *esc)
{
    int64_t next = GW_ESC_NEVER;
    if (esc == NULL) {
        return next;
    }
    for (int i = 0; i < esc->nalarms; i++) {
        const struct esc_alarm *a = esc->alarms[i];
        if (!a->stopped && a->next_due_ms < next) {
            next = a->next_due_ms;
        }
    }
    for (int c = 0; c < esc->ncontacts; c++) {
        if (esc->nheld[c] > 0 && esc->summary_due[c] < next) {
            next = esc->summary_due[c];
        }
    }
    return next;
}

int gw_escalation_level(const struct gw_escalation *esc, const char *key)
{
    const struct esc_alarm *a = esc ? find(esc, key, NULL) : NULL;
    return a ? a->level : -ENOENT;
}

int gw_escalation_count(const struct gw_escalation *esc)
{
    return esc ? esc->nalarms : 0;
}

void gw_escalation_shift_time(struct gw_escalation *esc, int64_t delta_ms)
{
    if (esc == NULL || delta_ms == 0) {
        return;
    }
    for (int i = 0; i < esc->nalarms; i++) {
        struct esc_alarm *a = esc->alarms[i];
        a->raised_at_ms = add_sat(a->raised_at_ms, delta_ms);
        if (a->next_due_ms != GW_ESC_NEVER) {
            a->next_due_ms = add_sat(a->next_due_ms, delta_ms);
        }
        a->dirty = true;
    }
    for (int i = 0; i < esc->starts_n; i++) {
        esc->starts[i] = add_sat(esc->starts[i], delta_ms);
    }
    for (int c = 0; c < esc->ncontacts; c++) {
        if (esc->summary_due[c] != GW_ESC_NEVER) {
            esc->summary_due[c] = add_sat(esc->summary_due[c], delta_ms);
        }
        if (esc->last_summary[c] != INT64_MIN) {
            esc->last_summary[c] = add_sat(esc->last_summary[c], delta_ms);
        }
    }
}

/* ---- persistence ---- */

static json_t *contact_names(const struct gw_escalation *esc, const uint8_t *set)
{
    json_t *arr = json_array();
    for (int c = 0; arr && c < esc->ncontacts; c++) {
        if (bit_get(set, c)) {
            json_array_append_new(arr, json_string(esc->cfg->contacts[c].name));
        }
    }
    return arr;
}

static char *save_alarm(const struct gw_escalation *esc, const struct esc_alarm *a)
{
    json_t *root = json_pack(
        "{si ss sb sI si so sI sb sb so so}", "v", SAVE_VERSION, "class", class_names[a->cls],
        "test", a->test, "raised_at", (json_int_t)a->raised_at_ms, "level", a->level, "next_due",
        a->next_due_ms == GW_ESC_NEVER ? json_null() : json_integer((json_int_t)a->next_due_ms),
        "repeats", (json_int_t)a->repeats, "stopped", a->stopped, "storm", a->storm, "told",
        contact_names(esc, a->told), "held", contact_names(esc, a->held));
    if (root == NULL) {
        return NULL;
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

char *gw_escalation_save(const struct gw_escalation *esc, const char *key)
{
    const struct esc_alarm *a = esc ? find(esc, key, NULL) : NULL;
    return a ? save_alarm(esc, a) : NULL;
}

static int find_contact(const struct gw_escalation *esc, const char *name)
{
    for (int c = 0; c < esc->ncontacts; c++) {
        if (esc->cfg->contacts[c].name && strcmp(esc->cfg->contacts[c].name, name) == 0) {
            return c;
        }
    }
    return -1;
}

static bool read_time(json_t *v, int64_t *out)
{
    if (!json_is_integer(v)) {
        return false;
    }
    json_int_t t = json_integer_value(v);
    if (t < 0 || t > MAX_TIME_MS) {
        return false;
    }
    *out = (int64_t)t;
    return true;
}

static bool read_flag(json_t *root, const char *name, bool *out)
{
    json_t *v = json_object_get(root, name);
    if (v == NULL) {
        *out = false;
        return true;
    }
    if (!json_is_boolean(v)) {
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* A list of contact names into a bitset; unknown names are dropped (no longer configured). */
static bool read_contacts(const struct gw_escalation *esc, json_t *arr, uint8_t *set)
{
    memset(set, 0, esc->nbytes);
    if (arr == NULL) {
        return true;
    }
    if (!json_is_array(arr)) {
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v)) {
            return false;
        }
        int c = find_contact(esc, json_string_value(v));
        if (c >= 0) {
            bit_set(set, c);
        }
    }
    return true;
}

int gw_escalation_restore(struct gw_escalation *esc, const char *key, const char *json)
{
    if (esc == NULL || !key_ok(key) || json == NULL) {
        return -EINVAL;
    }
    json_t *root = json_loads(json, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return -EINVAL;
    }
    int rc = -EINVAL;
    uint8_t *told = calloc(2, esc->nbytes);
    if (told == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    uint8_t *held = told + esc->nbytes;
    json_t *v = json_object_get(root, "v");
    json_t *cls_v = json_object_get(root, "class");
    json_t *level_v = json_object_get(root, "level");
    json_t *next_v = json_object_get(root, "next_due");
    json_t *rep_v = json_object_get(root, "repeats");
    int cls = -1;
    for (int k = 0; k < GW_NCLASSES; k++) {
        if (json_is_string(cls_v) && strcmp(json_string_value(cls_v), class_names[k]) == 0) {
            cls = k;
        }
    }
    int64_t raised_at = 0, next_due = GW_ESC_NEVER;
    bool test, stopped, storm;
    if (!json_is_integer(v) || json_integer_value(v) != SAVE_VERSION || cls < 0 ||
        !read_time(json_object_get(root, "raised_at"), &raised_at) || !json_is_integer(level_v) ||
        json_integer_value(level_v) < 0 || json_integer_value(level_v) > 1000000 ||
        !(next_v == NULL || json_is_null(next_v) || read_time(next_v, &next_due)) ||
        !(rep_v == NULL || (json_is_integer(rep_v) && json_integer_value(rep_v) >= 0 &&
                            json_integer_value(rep_v) <= INT32_MAX)) ||
        !read_flag(root, "test", &test) || !read_flag(root, "stopped", &stopped) ||
        !read_flag(root, "storm", &storm) ||
        !read_contacts(esc, json_object_get(root, "told"), told) ||
        !read_contacts(esc, json_object_get(root, "held"), held)) {
        goto out;
    }
    int index;
    struct esc_alarm *a = find(esc, key, &index);
    if (a) {
        remove_alarm(esc, index);
    }
    a = add_alarm(esc, key);
    if (a == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    forget_gone(esc, key);
    a->cls = (enum gw_alarm_class)cls;
    a->test = test;
    a->stopped = stopped;
    a->storm = storm;
    a->raised_at_ms = raised_at;
    int nl = nlevels(esc, a->cls);
    int level = (int)json_integer_value(level_v);
    a->level = level < nl ? level : nl; /* the config may have lost levels since */
    a->repeats = rep_v ? (int)json_integer_value(rep_v) : 0;
    memcpy(a->told, told, esc->nbytes);
    a->next_due_ms = GW_ESC_NEVER;
    plan(esc, a);
    if (!a->stopped && !a->test && nl > 0 && a->level == nl &&
        level_cfg(esc, a->cls, nl - 1)->repeat_s > 0) {
        /* Repeats keep their phase; without a saved time, on the schedule after the level. */
        int64_t period = (int64_t)level_cfg(esc, a->cls, nl - 1)->repeat_s * 1000;
        a->next_due_ms =
            next_due != GW_ESC_NEVER ? next_due : add_sat(level_due(esc, a, nl - 1), period);
    }
    if (!a->stopped) {
        int64_t at = nl > 0 ? add_sat(level_due(esc, a, 0), GW_ESC_STORM_HOLD_MS) : raised_at;
        for (int c = 0; c < esc->ncontacts; c++) {
            if (bit_get(held, c)) {
                set_held(esc, a, c, at);
            }
        }
    }
    rc = 0;
out:
    free(told);
    json_decref(root);
    return rc;
}

int gw_escalation_flush(struct gw_escalation *esc, gw_esc_save_fn fn, void *ctx)
{
    if (esc == NULL || fn == NULL) {
        return -EINVAL;
    }
    int n = 0;
    while (esc->ngone > 0) {
        int rc = fn(ctx, esc->gone[0], NULL);
        if (rc != 0) {
            return rc;
        }
        memmove(&esc->gone[0], &esc->gone[1], (size_t)(esc->ngone - 1) * GW_KEY_MAX);
        esc->ngone--;
        n++;
    }
    for (int i = 0; i < esc->nalarms; i++) {
        struct esc_alarm *a = esc->alarms[i];
        if (!a->dirty) {
            continue;
        }
        char *json = save_alarm(esc, a);
        if (json == NULL) {
            return -ENOMEM;
        }
        int rc = fn(ctx, a->key, json);
        free(json);
        if (rc != 0) {
            return rc;
        }
        a->dirty = false;
        n++;
    }
    return n;
}

struct gw_escalation *gw_escalation_reload(struct gw_escalation *old, const struct gw_config *cfg)
{
    if (old == NULL) {
        return gw_escalation_new(cfg);
    }
    struct gw_escalation *esc = gw_escalation_new(cfg);
    if (esc == NULL) {
        return NULL;
    }
    for (int i = 0; i < old->nalarms; i++) {
        const struct esc_alarm *a = old->alarms[i];
        char *json = save_alarm(old, a);
        int rc = json ? gw_escalation_restore(esc, a->key, json) : -ENOMEM;
        free(json);
        if (rc < 0) {
            gw_escalation_free(esc);
            return NULL;
        }
        struct esc_alarm *b = esc->alarms[esc->nalarms - 1];
        b->order = a->order;
        b->dirty = a->dirty;
    }
    esc->next_order = old->next_order;
    for (int i = 0; i < old->ngone; i++) {
        if (remember_gone(esc, old->gone[i]) < 0) {
            gw_escalation_free(esc);
            return NULL;
        }
    }
    /* The storm history: the most recent starts, oldest first, as many as the new ring holds. */
    for (int k = old->starts_n - 1; k >= 0 && esc->starts_cap > 0; k--) {
        if (k >= esc->starts_cap) {
            continue;
        }
        int idx =
            ((old->starts_head - 1 - k) % old->starts_cap + old->starts_cap) % old->starts_cap;
        esc->starts[esc->starts_head] = old->starts[idx];
        esc->starts_head = (esc->starts_head + 1) % esc->starts_cap;
        esc->starts_n++;
    }
    for (int c = 0; c < esc->ncontacts; c++) {
        int oc = -1;
        for (int k = 0; k < old->ncontacts; k++) {
            if (old->cfg->contacts[k].name && cfg->contacts[c].name &&
                strcmp(old->cfg->contacts[k].name, cfg->contacts[c].name) == 0) {
                oc = k;
            }
        }
        if (oc >= 0) {
            esc->last_summary[c] = old->last_summary[oc];
            if (esc->nheld[c] > 0 && old->nheld[oc] > 0) {
                esc->summary_due[c] = old->summary_due[oc];
            }
        }
    }
    gw_escalation_free(old);
    return esc;
}
