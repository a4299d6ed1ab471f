/*
 * InfluxDB line protocol.
 *
 * Escaping follows the parser InfluxDB 1.x and 2.x OSS run (models/points.go):
 *   - measurement: `,` and space get a backslash;
 *   - tag keys, tag values, field keys: `,`, `=` and space get a backslash;
 *   - string field values: `"` and `\` get a backslash.
 * Any other backslash is written as it is: the parser's unescape only removes
 * the backslash of the pairs above, so `a\,b` written as `a\\,b` reads back as
 * `a\,b`. A backslash at the very end of a measurement, key or tag value cannot
 * be written at all (it would escape the separator after it), so trailing
 * backslashes are dropped there; what is left empty is then omitted like an
 * empty value. The docs say a newline is supported nowhere, not even in a
 * string field, so `\n` and `\r` become a space everywhere (then escaped like
 * any space). Other bytes, UTF-8 included, pass through unchanged.
 *
 * Floats are written in the shortest of %.15g/%.16g/%.17g that reads back as
 * the same double (`1`, `0.1`, `1e+300`); InfluxDB takes `1` without `i` as a
 * float. Whole numbers and short decimals get the same text without
 * snprintf/strtod (the unit test holds both paths to the definition).
 * snprintf/strtod follow LC_NUMERIC, which the gateway leaves at "C".
 */
#include "lineproto.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

#define INITIAL_CAP 4096
#define MAX_TAGS 64      /* per line; ours have at most 6 */
#define STACK_FIELDS 32  /* more than this costs one malloc per record */
#define NUM_MAX 32       /* longest number we print, sign and suffix included */
#define CACHE_SLOTS 4096 /* sensor lookup cache; a power of two */
#define CACHE_PROBES 8

enum esc_class { ESC_MEAS = 1, ESC_TAG = 2, ESC_STR = 4 };

/* Which bytes get a backslash, per class; newlines are mapped to a space first. */
static const unsigned char esc_table[256] = {
    [','] = ESC_MEAS | ESC_TAG, [' '] = ESC_MEAS | ESC_TAG, ['='] = ESC_TAG, ['"'] = ESC_STR,
    ['\\'] = ESC_STR,
};

void gw_lp_buf_init(struct gw_lp_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->lines = 0;
}

void gw_lp_buf_reset(struct gw_lp_buf *b)
{
    b->len = 0;
    b->lines = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

void gw_lp_buf_free(struct gw_lp_buf *b)
{
    if (!b) {
        return;
    }
    free(b->data);
    gw_lp_buf_init(b);
}

/* Room for n more bytes and the NUL; doubles so appends stay amortised O(1). */
static int reserve(struct gw_lp_buf *b, size_t n)
{
    if (b->cap > b->len && b->cap - b->len > n) {
        return 0;
    }
    if (n > SIZE_MAX - b->len - 1) {
        return -ENOMEM;
    }
    size_t need = b->len + n + 1;
    size_t cap = b->cap ? b->cap : INITIAL_CAP;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    char *data = realloc(b->data, cap);
    if (!data) {
        return -ENOMEM;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

/* Length without trailing backslashes (they would escape the separator after them). */
static size_t trimmed_len(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '\\') {
        n--;
    }
    return n;
}

static char *put_escaped(char *p, const char *s, size_t n, enum esc_class cls)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\r') {
            c = ' ';
        }
        if (esc_table[c] & cls) {
            *p++ = '\\';
        }
        *p++ = (char)c;
    }
    return p;
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Decimal digits of an int64, INT64_MIN included. */
static char *put_int(char *p, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        *p++ = '-';
    }
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

/*
 * v as r / 10^d with d in 1..9 and r < 1e15, the smallest such d; 0 when there
 * is none. If the double quotient r / 10^d equals v, the decimal r / 10^d reads
 * back as v (both are the correctly rounded value of the same number) and, with
 * at most 15 digits, it is also what %.15g prints.
 */
static int short_decimal(double a, int64_t *r)
{
    static const double pow10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    for (int d = 1; d <= 9; d++) {
        double scaled = a * pow10[d];
        if (scaled >= 1e15) {
            return 0;
        }
        int64_t n = (int64_t)(scaled + 0.5);
        if ((double)n / pow10[d] == a) {
            *r = n;
            return d;
        }
    }
    return 0;
}

/* Shortest of %.15g..%.17g that round-trips; v is finite. */
static char *put_float(char *p, double v)
{
    /* Whole numbers below 1e15 print as %.15g would, without snprintf/strtod. */
    double a = fabs(v);
    if (a < 1e15 && v == (double)(int64_t)v) {
        if (v == 0 && signbit(v)) {
            *p++ = '-';
        }
        return put_int(p, (int64_t)v);
    }
    /* So do short decimals in the range %g writes without an exponent (most sensor values). */
    int64_t r;
    int d = a >= 1e-4 ? short_decimal(a, &r) : 0;
    if (d > 0) {
        char digits[24];
        char *e = put_int(digits, r);
        int n = (int)(e - digits);
        if (v < 0) {
            *p++ = '-';
        }
        if (n <= d) {
            *p++ = '0';
            *p++ = '.';
            for (int i = n; i < d; i++) {
                *p++ = '0';
            }
            memcpy(p, digits, (size_t)n);
            return p + n;
        }
        memcpy(p, digits, (size_t)(n - d));
        p += n - d;
        *p++ = '.';
        memcpy(p, digits + n - d, (size_t)d);
        return p + d;
    }
    char tmp[NUM_MAX];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v) {
            break;
        }
    }
    memcpy(p, tmp, (size_t)n);
    return p + n;
}

static bool field_usable(const struct gw_lp_field *f, size_t *keylen)
{
    if (!f->key) {
        return false;
    }
    *keylen = trimmed_len(f->key);
    if (*keylen == 0) {
        return false;
    }
    switch (f->type) {
    case GW_LP_FLOAT:
        return isfinite(f->f);
    case GW_LP_STRING:
        return f->s != NULL;
    case GW_LP_INT:
    case GW_LP_BOOL:
        return true;
    }
    return false;
}

/*
 * Beyond the header: a NULL or empty tag key, a duplicate tag key (InfluxDB
 * rejects the point) or more than MAX_TAGS tags is -EINVAL; a field with a
 * NULL or empty key, or a NULL string, is skipped like a non-finite float.
 * Tags are sorted by their raw key bytes; a key with escaped characters may
 * then sit out of InfluxDB's (escaped) order, which only costs it a re-sort.
 * Nothing is appended unless the whole line is.
 */
int gw_lp_line(struct gw_lp_buf *b, const char *measurement, const struct gw_lp_tag *tags,
               int ntags, const struct gw_lp_field *fields, int nfields, int64_t ts_ns)
{
    if (!b || !measurement || ntags < 0 || nfields < 0 || ntags > MAX_TAGS ||
        (ntags > 0 && !tags) || (nfields > 0 && !fields)) {
        return -EINVAL;
    }
    size_t mlen = trimmed_len(measurement);
    if (mlen == 0) {
        return -EINVAL;
    }
    /* Worst case: every byte escaped (2x), plus separators and numbers. */
    size_t need = 2 * mlen + NUM_MAX + 2;

    /* Tags with a value, sorted by key (insertion sort: a handful of tags). */
    int order[MAX_TAGS];
    size_t klen[MAX_TAGS], vlen[MAX_TAGS];
    int nt = 0;
    for (int i = 0; i < ntags; i++) {
        if (!tags[i].key) {
            return -EINVAL;
        }
        size_t kl = trimmed_len(tags[i].key);
        if (kl == 0) {
            return -EINVAL;
        }
        size_t vl = tags[i].value ? trimmed_len(tags[i].value) : 0;
        if (vl == 0) {
            continue;
        }
        int j = nt++;
        int cmp = 1;
        while (j > 0 && (cmp = strcmp(tags[order[j - 1]].key, tags[i].key)) > 0) {
            order[j] = order[j - 1];
            klen[j] = klen[j - 1];
            vlen[j] = vlen[j - 1];
            j--;
        }
        if (cmp == 0) {
            return -EINVAL; /* InfluxDB rejects duplicate tags */
        }
        order[j] = i;
        klen[j] = kl;
        vlen[j] = vl;
        need += 2 * (kl + vl) + 2;
    }

    int nf = 0;
    for (int i = 0; i < nfields; i++) {
        size_t kl;
        if (!field_usable(&fields[i], &kl)) {
            continue;
        }
        nf++;
        need += 2 * kl + 2 + NUM_MAX;
        if (fields[i].type == GW_LP_STRING) {
            need += 2 * strlen(fields[i].s) + 2;
        }
    }
    if (nf == 0) {
        return 0;
    }
    int rc = reserve(b, need);
    if (rc < 0) {
        return rc;
    }

    char *p = b->data + b->len;
    p = put_escaped(p, measurement, mlen, ESC_MEAS);
    for (int j = 0; j < nt; j++) {
        const struct gw_lp_tag *t = &tags[order[j]];
        *p++ = ',';
        p = put_escaped(p, t->key, klen[j], ESC_TAG);
        *p++ = '=';
        p = put_escaped(p, t->value, vlen[j], ESC_TAG);
    }
    char sep = ' ';
    for (int i = 0; i < nfields; i++) {
        const struct gw_lp_field *f = &fields[i];
        size_t kl;
        if (!field_usable(f, &kl)) {
            continue;
        }
        *p++ = sep;
        sep = ',';
        p = put_escaped(p, f->key, kl, ESC_TAG);
        *p++ = '=';
        switch (f->type) {
        case GW_LP_FLOAT:
            p = put_float(p, f->f);
            break;
        case GW_LP_INT:
            p = put_int(p, f->i);
            *p++ = 'i';
            break;
        case GW_LP_BOOL:
            p = put_str(p, f->b ? "true" : "false");
            break;
        case GW_LP_STRING:
            *p++ = '"';
            p = put_escaped(p, f->s, strlen(f->s), ESC_STR);
            *p++ = '"';
            break;
        }
    }
    *p++ = ' ';
    p = put_int(p, ts_ns);
    *p++ = '\n';
    *p = '\0';
    b->len = (size_t)(p - b->data);
    b->lines++;
    return 1;
}

/*
 * Sensor id -> index in cfg, without a linear scan per record: a per-thread
 * open-addressed cache of indexes. An entry is only a hint, checked against
 * cfg->sensors before use, so a stale one (after a reload, even one that
 * reuses the same address) costs a scan, never a wrong answer.
 */
struct sensor_cache {
    const struct gw_config *cfg;
    int nsensors;
    int slot[CACHE_SLOTS]; /* index + 1; 0 = empty */
};
static _Thread_local struct sensor_cache cache;

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

static int find_sensor(const struct gw_config *cfg, const char *id)
{
    if (!cfg || !cfg->sensors || cfg->nsensors <= 0) {
        return -1;
    }
    if (cache.cfg != cfg || cache.nsensors != cfg->nsensors) {
        memset(cache.slot, 0, sizeof(cache.slot));
        cache.cfg = cfg;
        cache.nsensors = cfg->nsensors;
    }
    uint32_t h = hash_str(id);
    int free_slot = -1;
    for (uint32_t k = 0; k < CACHE_PROBES; k++) {
        int s = (int)((h + k) & (CACHE_SLOTS - 1));
        int i = cache.slot[s] - 1;
        if (i < 0) {
            free_slot = s;
            break;
        }
        if (i < cfg->nsensors && cfg->sensors[i].id && strcmp(cfg->sensors[i].id, id) == 0) {
            return i;
        }
    }
    for (int i = 0; i < cfg->nsensors; i++) {
        if (cfg->sensors[i].id && strcmp(cfg->sensors[i].id, id) == 0) {
            int s = free_slot >= 0 ? free_slot : (int)(h & (CACHE_SLOTS - 1));
            cache.slot[s] = i + 1;
            return i;
        }
    }
    return -1;
}

static int ts_ns(int64_t ms, int64_t *ns)
{
    if (ms > INT64_MAX / 1000000 || ms < INT64_MIN / 1000000) {
        return -EINVAL;
    }
    *ns = ms * 1000000;
    return 0;
}

static const char *get_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Fields of one record: on the stack unless the record has many values. */
struct field_set {
    struct gw_lp_field stack[STACK_FIELDS];
    struct gw_lp_field *f;
    int n;
};

static int fields_init(struct field_set *fs, size_t max)
{
    fs->n = 0;
    fs->f = fs->stack;
    if (max > STACK_FIELDS) {
        if (max > INT32_MAX) {
            return -EINVAL;
        }
        fs->f = calloc(max, sizeof(*fs->f));
        if (!fs->f) {
            return -ENOMEM;
        }
    }
    return 0;
}

static void fields_free(struct field_set *fs)
{
    if (fs->f != fs->stack) {
        free(fs->f);
    }
}

static void add_float(struct field_set *fs, const char *key, double v)
{
    fs->f[fs->n++] = (struct gw_lp_field){.key = key, .type = GW_LP_FLOAT, .f = v};
}

static void add_int(struct field_set *fs, const char *key, int64_t v)
{
    fs->f[fs->n++] = (struct gw_lp_field){.key = key, .type = GW_LP_INT, .i = v};
}

static void add_bool(struct field_set *fs, const char *key, bool v)
{
    fs->f[fs->n++] = (struct gw_lp_field){.key = key, .type = GW_LP_BOOL, .b = v};
}

static void add_string(struct field_set *fs, const char *key, const char *v)
{
    fs->f[fs->n++] = (struct gw_lp_field){.key = key, .type = GW_LP_STRING, .s = v};
}

/* A number member (integer or real) as a float field; absent or null: nothing. */
static void add_opt_number(struct field_set *fs, json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    if (json_is_number(v)) {
        add_float(fs, key, json_number_value(v));
    }
}

/*
 * district, school, sensor and, for a sensor still in cfg, building, floor,
 * zone. Listed in key order so gw_lp_line's sort has nothing to move.
 */
static int sensor_tags(const struct gw_config *cfg, const char *sensor, struct gw_lp_tag *tags)
{
    const struct gw_location_cfg *loc = NULL;
    int i = find_sensor(cfg, sensor);
    if (i >= 0) {
        loc = &cfg->sensors[i].location;
    }
    int n = 0;
    if (loc) {
        tags[n++] = (struct gw_lp_tag){"building", loc->building};
    }
    if (cfg) {
        tags[n++] = (struct gw_lp_tag){"district", cfg->site.district};
    }
    if (loc) {
        tags[n++] = (struct gw_lp_tag){"floor", loc->floor};
    }
    if (cfg) {
        tags[n++] = (struct gw_lp_tag){"school", cfg->site.school};
    }
    tags[n++] = (struct gw_lp_tag){"sensor", sensor};
    if (loc) {
        tags[n++] = (struct gw_lp_tag){"zone", loc->zone};
    }
    return n;
}

/*
 * Telemetry: every member of `values` is a field: numbers always as floats (a
 * point whose value happens to be whole must not flip the field's type, which
 * InfluxDB would reject), booleans, strings; null (a non-finite number) and
 * nested values are skipped, and so is a point named `time`, which InfluxDB
 * refuses as a field key.
 */
static int from_telemetry(struct gw_lp_buf *b, const struct gw_config *cfg, json_t *root,
                          int64_t ns)
{
    const char *sensor = get_str(root, "sensor");
    const char *kind = get_str(root, "kind");
    json_t *values = json_object_get(root, "values");
    if (!sensor || !kind || !json_is_object(values)) {
        return -EINVAL;
    }
    struct field_set fs;
    int rc = fields_init(&fs, json_object_size(values) + 2);
    if (rc < 0) {
        return rc;
    }
    const char *key;
    json_t *v;
    json_object_foreach(values, key, v)
    {
        if (strcmp(key, "time") == 0) {
            continue;
        }
        if (json_is_number(v)) {
            add_float(&fs, key, json_number_value(v));
        } else if (json_is_boolean(v)) {
            add_bool(&fs, key, json_is_true(v));
        } else if (json_is_string(v)) {
            add_string(&fs, key, json_string_value(v));
        }
    }
    add_opt_number(&fs, root, "rssi");
    add_opt_number(&fs, root, "snr");
    add_opt_number(&fs, root, "forwarders");
    struct gw_lp_tag tags[6];
    int nt = sensor_tags(cfg, sensor, tags);
    rc = gw_lp_line(b, kind, tags, nt, fs.f, fs.n, ns);
    fields_free(&fs);
    return rc;
}

/*
 * Health: online, age_s (seconds since last_seen at the record's time; none
 * while never seen), errors; plus fault, battery, rssi, snr when the payload
 * has them.
 */
static int from_health(struct gw_lp_buf *b, const struct gw_config *cfg, json_t *root,
                       int64_t ts_ms, int64_t ns)
{
    const char *sensor = get_str(root, "sensor");
    json_t *online = json_object_get(root, "online");
    json_t *errors = json_object_get(root, "errors");
    json_t *last_seen = json_object_get(root, "last_seen");
    if (!sensor || !json_is_boolean(online) || !json_is_integer(errors) ||
        !(json_is_null(last_seen) || json_is_string(last_seen))) {
        return -EINVAL;
    }
    struct field_set fs;
    fields_init(&fs, 0);
    add_bool(&fs, "online", json_is_true(online));
    if (json_is_string(last_seen)) {
        int64_t seen_ms;
        if (gw_parse_rfc3339(json_string_value(last_seen), &seen_ms) < 0) {
            return -EINVAL;
        }
        add_float(&fs, "age_s", (double)(ts_ms - seen_ms) / 1000.0);
    }
    add_int(&fs, "errors", json_integer_value(errors));
    const char *fault = get_str(root, "fault");
    if (fault) {
        add_string(&fs, "fault", fault);
    }
    add_opt_number(&fs, root, "battery");
    add_opt_number(&fs, root, "rssi");
    add_opt_number(&fs, root, "snr");
    add_opt_number(&fs, root, "frame_loss");
    struct gw_lp_tag tags[6];
    int nt = sensor_tags(cfg, sensor, tags);
    return gw_lp_line(b, "sensor_health", tags, nt, fs.f, fs.n, ns);
}

/*
 * Event: state, value, level, transition. A numeric value is `value`; a
 * boolean one is `value` 1/0 (so rules on booleans still graph); a string one
 * (an enum label) is `value_text`, since a field keeps one type forever.
 */
static int from_event(struct gw_lp_buf *b, const struct gw_config *cfg, json_t *root, int64_t ns)
{
    const char *sensor = get_str(root, "sensor");
    const char *rule = get_str(root, "rule");
    const char *cls = get_str(root, "class");
    const char *state = get_str(root, "state");
    json_t *level = json_object_get(root, "level");
    json_t *value = json_object_get(root, "value");
    if (!sensor || !rule || !cls || !state || !json_is_integer(level) || !value) {
        return -EINVAL;
    }
    struct field_set fs;
    fields_init(&fs, 0);
    add_string(&fs, "state", state);
    if (json_is_number(value)) {
        add_float(&fs, "value", json_number_value(value));
    } else if (json_is_boolean(value)) {
        add_float(&fs, "value", json_is_true(value) ? 1.0 : 0.0);
    } else if (json_is_string(value)) {
        add_string(&fs, "value_text", json_string_value(value));
    }
    add_int(&fs, "level", json_integer_value(level));
    const char *transition = get_str(root, "transition");
    if (transition) {
        add_string(&fs, "transition", transition);
    }
    struct gw_lp_tag tags[] = {
        {"class", cls},     {"district", cfg ? cfg->site.district : NULL},
        {"rule", rule},     {"school", cfg ? cfg->site.school : NULL},
        {"sensor", sensor},
    };
    return gw_lp_line(b, "alarm", tags, 5, fs.f, fs.n, ns);
}

/*
 * Gateway metrics: every member but seq and ts. Integers as integers (the
 * contract); a real, should one appear, as a float and a boolean as a
 * boolean rather than dropping it; strings and the rest are skipped.
 */
static int from_gateway(struct gw_lp_buf *b, const struct gw_config *cfg, json_t *root, int64_t ns)
{
    struct field_set fs;
    int rc = fields_init(&fs, json_object_size(root));
    if (rc < 0) {
        return rc;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "seq") == 0 || strcmp(key, "ts") == 0) {
            continue;
        }
        if (json_is_integer(v)) {
            add_int(&fs, key, json_integer_value(v));
        } else if (json_is_real(v)) {
            add_float(&fs, key, json_real_value(v));
        } else if (json_is_boolean(v)) {
            add_bool(&fs, key, json_is_true(v));
        }
    }
    struct gw_lp_tag tags[] = {
        {"district", cfg ? cfg->site.district : NULL},
        {"school", cfg ? cfg->site.school : NULL},
    };
    rc = gw_lp_line(b, "gateway", tags, 2, fs.f, fs.n, ns);
    fields_free(&fs);
    return rc;
}

/*
 * The school's figures (P/kpi): counts as integers, percentages and seconds as
 * floats, the alarms_24h object flattened to alarms_24h_<class>; ack_mean_s and
 * ack_worst_s left out when null (nothing acknowledged). Tags: the record's
 * district and school (the site it was made for), else cfg's. Every member
 * is required with its type: a record that lacks one is malformed.
 */
static int from_kpi(struct gw_lp_buf *b, const struct gw_config *cfg, json_t *root, int64_t ns)
{
    static const char *const counts[] = {
        "sensors_total",   "unacknowledged_alarms",     "open_hazards",
        "overdue_hazards", "hydrants_without_pressure", "exits_locked_in_hours"};
    static const char *const classes[][2] = {{"alarm", "alarms_24h_alarm"},
                                             {"supervisory", "alarms_24h_supervisory"},
                                             {"trouble", "alarms_24h_trouble"}};
    static const char *const seconds[] = {"ack_mean_s", "ack_worst_s"};
    struct field_set fs;
    fields_init(&fs, 0);
    json_t *pct = json_object_get(root, "sensors_online_pct");
    json_t *alarms = json_object_get(root, "alarms_24h");
    if (!json_is_number(pct) || !json_is_object(alarms)) {
        return -EINVAL;
    }
    json_t *v = json_object_get(root, counts[0]);
    if (!json_is_integer(v)) {
        return -EINVAL;
    }
    add_int(&fs, counts[0], json_integer_value(v));
    add_float(&fs, "sensors_online_pct", json_number_value(pct));
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        v = json_object_get(alarms, classes[i][0]);
        if (!json_is_integer(v)) {
            return -EINVAL;
        }
        add_int(&fs, classes[i][1], json_integer_value(v));
    }
    for (size_t i = 0; i < sizeof(seconds) / sizeof(seconds[0]); i++) {
        v = json_object_get(root, seconds[i]);
        if (json_is_number(v)) {
            add_float(&fs, seconds[i], json_number_value(v));
        } else if (v != NULL && !json_is_null(v)) {
            return -EINVAL; /* absent or null: nothing acknowledged */
        }
    }
    for (size_t i = 1; i < sizeof(counts) / sizeof(counts[0]); i++) {
        v = json_object_get(root, counts[i]);
        if (!json_is_integer(v)) {
            return -EINVAL;
        }
        add_int(&fs, counts[i], json_integer_value(v));
    }
    const char *district = get_str(root, "district");
    const char *school = get_str(root, "school");
    if (cfg && !district) {
        district = cfg->site.district;
    }
    if (cfg && !school) {
        school = cfg->site.school;
    }
    struct gw_lp_tag tags[] = {{"district", district}, {"school", school}};
    return gw_lp_line(b, "school_kpi", tags, 2, fs.f, fs.n, ns);
}

int gw_lp_from_record(struct gw_lp_buf *b, const struct gw_config *cfg, const struct gw_record *rec)
{
    if (!b || !rec) {
        return -EINVAL;
    }
    if (rec->type == GW_REC_ALARM || rec->type == GW_REC_FORWARDER || rec->type == GW_REC_NOTIFY ||
        rec->type == GW_REC_CMD_RESULT || rec->type == GW_REC_HAZARD ||
        rec->type == GW_REC_HAZARD_LOG || rec->type == GW_REC_DAILY_LOG) {
        return 0; /* the event carries the transition; the others are MQTT-only */
    }
    if (rec->type != GW_REC_TELEMETRY && rec->type != GW_REC_HEALTH && rec->type != GW_REC_EVENT &&
        rec->type != GW_REC_GATEWAY && rec->type != GW_REC_KPI) {
        return -EINVAL;
    }
    int64_t ns;
    if (!rec->payload || ts_ns(rec->ts_ms, &ns) < 0) {
        return -EINVAL;
    }
    json_error_t err;
    json_t *root = json_loadb(rec->payload, rec->payload_len, 0, &err);
    if (!json_is_object(root)) {
        json_decref(root);
        return -EINVAL;
    }
    int rc = -EINVAL;
    switch (rec->type) {
    case GW_REC_TELEMETRY:
        rc = from_telemetry(b, cfg, root, ns);
        break;
    case GW_REC_HEALTH:
        rc = from_health(b, cfg, root, rec->ts_ms, ns);
        break;
    case GW_REC_EVENT:
        rc = from_event(b, cfg, root, ns);
        break;
    case GW_REC_GATEWAY:
        rc = from_gateway(b, cfg, root, ns);
        break;
    case GW_REC_KPI:
        rc = from_kpi(b, cfg, root, ns);
        break;
    case GW_REC_ALARM:
    case GW_REC_FORWARDER:
    case GW_REC_NOTIFY:
    case GW_REC_CMD_RESULT:
    case GW_REC_HAZARD:
    case GW_REC_HAZARD_LOG:
    case GW_REC_DAILY_LOG:
        break;
    }
    json_decref(root);
    return rc;
}
