#include "scenario.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---------------------------------------------------------------------------- */

static const char *const type_names[] = {"hydrant_4_20", "door", "registers"};
static const char *const fault_names[] = {"none",    "silent",     "exception",
                                          "garbage", "wire_break", "short_circuit"};
static const char *const door_names[] = {"closed", "open", "locked"};
static const char *const table_names[] = {"holding", "input", "coils", "discrete"};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *gw_sim_type_name(enum gw_sim_type t)
{
    return (int)t >= 0 && (int)t < NELEM(type_names) ? type_names[t] : "?";
}

const char *gw_sim_fault_name(enum gw_sim_fault f)
{
    return (int)f >= 0 && (int)f < NELEM(fault_names) ? fault_names[f] : "?";
}

const char *gw_sim_door_name(enum gw_sim_door_state s)
{
    return (int)s >= 0 && (int)s < NELEM(door_names) ? door_names[s] : "?";
}

const char *gw_sim_table_name(enum gw_sim_table t)
{
    return (int)t >= 0 && (int)t < NELEM(table_names) ? table_names[t] : "?";
}

static int lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], s) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- values ----------------------------------------------------------------------------- */

static double clamp_mpa(double mpa)
{
    if (!(mpa > 0.0)) { /* also NaN */
        return 0.0;
    }
    return mpa > GW_SIM_HYDRANT_MPA_MAX ? GW_SIM_HYDRANT_MPA_MAX : mpa;
}

uint16_t gw_sim_hydrant_raw(double mpa)
{
    double span = GW_SIM_HYDRANT_RAW_MAX - GW_SIM_HYDRANT_RAW_MIN;
    return (uint16_t)lround(GW_SIM_HYDRANT_RAW_MIN +
                            clamp_mpa(mpa) / GW_SIM_HYDRANT_MPA_MAX * span);
}

/* splitmix64: tiny, seedable with any value, good enough for sensor noise. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

/* Derive a hydrant's or door's registers from its model; noise only when asked. */
static void derive_tables(struct gw_sim_device *d, uint64_t *rng)
{
    uint16_t *h = d->tables.holding;
    if (d->type == GW_SIM_HYDRANT) {
        if (d->cur.fault == GW_SIM_FAULT_WIRE_BREAK) {
            h[0] = 0;
            h[1] = 0;
            return;
        }
        if (d->cur.fault == GW_SIM_FAULT_SHORT_CIRCUIT) {
            h[0] = GW_SIM_HYDRANT_RAW_SHORT;
            h[1] = (uint16_t)lround(GW_SIM_HYDRANT_MPA_MAX * 1000.0);
            return;
        }
        double p = d->cur.pressure;
        if (rng != NULL && d->noise > 0.0) {
            p += d->noise * (2.0 * rng_unit(rng) - 1.0);
        }
        h[0] = gw_sim_hydrant_raw(p);
        h[1] = (uint16_t)lround(clamp_mpa(p) * 1000.0);
    } else if (d->type == GW_SIM_DOOR) {
        h[0] = (uint16_t)d->cur.door;
        h[1] = (uint16_t)d->cur.battery;
    }
}

static uint16_t *table_words(struct gw_sim_tables *t, enum gw_sim_table which, int *n)
{
    *n = which == GW_SIM_HOLDING ? t->n_holding : t->n_input;
    return which == GW_SIM_HOLDING ? t->holding : t->input;
}

static uint8_t *table_bits(struct gw_sim_tables *t, enum gw_sim_table which, int *n)
{
    *n = which == GW_SIM_COILS ? t->n_coils : t->n_discrete;
    return which == GW_SIM_COILS ? t->coils : t->discrete;
}

static int table_len(const struct gw_sim_tables *t, enum gw_sim_table which)
{
    switch (which) {
    case GW_SIM_HOLDING:
        return t->n_holding;
    case GW_SIM_INPUT:
        return t->n_input;
    case GW_SIM_COILS:
        return t->n_coils;
    case GW_SIM_DISCRETE:
        return t->n_discrete;
    }
    return 0;
}

static int tables_alloc(struct gw_sim_tables *t, const int n[GW_SIM_NTABLES])
{
    /* calloc(0) may return NULL; keep one element so NULL always means failure. */
    t->holding = calloc((size_t)n[GW_SIM_HOLDING] + 1, sizeof(uint16_t));
    t->input = calloc((size_t)n[GW_SIM_INPUT] + 1, sizeof(uint16_t));
    t->coils = calloc((size_t)n[GW_SIM_COILS] + 1, 1);
    t->discrete = calloc((size_t)n[GW_SIM_DISCRETE] + 1, 1);
    t->n_holding = n[GW_SIM_HOLDING];
    t->n_input = n[GW_SIM_INPUT];
    t->n_coils = n[GW_SIM_COILS];
    t->n_discrete = n[GW_SIM_DISCRETE];
    if (t->holding == NULL || t->input == NULL || t->coils == NULL || t->discrete == NULL) {
        return -ENOMEM;
    }
    return 0;
}

static void tables_free(struct gw_sim_tables *t)
{
    free(t->holding);
    t->holding = NULL;
    free(t->input);
    t->input = NULL;
    free(t->coils);
    t->coils = NULL;
    free(t->discrete);
    t->discrete = NULL;
}

static void tables_copy(struct gw_sim_tables *dst, const struct gw_sim_tables *src)
{
    memcpy(dst->holding, src->holding, (size_t)src->n_holding * sizeof(uint16_t));
    memcpy(dst->input, src->input, (size_t)src->n_input * sizeof(uint16_t));
    memcpy(dst->coils, src->coils, (size_t)src->n_coils);
    memcpy(dst->discrete, src->discrete, (size_t)src->n_discrete);
}

static void apply_write(struct gw_sim_tables *t, const struct gw_sim_write *w)
{
    int n;
    if (w->table == GW_SIM_HOLDING || w->table == GW_SIM_INPUT) {
        uint16_t *regs = table_words(t, w->table, &n);
        for (int i = 0; i < w->count && w->address + i < n; i++) {
            regs[w->address + i] = w->values[i];
        }
    } else {
        uint8_t *bits = table_bits(t, w->table, &n);
        for (int i = 0; i < w->count && w->address + i < n; i++) {
            bits[w->address + i] = w->values[i] ? 1 : 0;
        }
    }
}

/* ---- parsing ------------------------------------------------------------------------------ */

struct parser {
    const char *file;
    FILE *errors;
    int nerrors;
};

__attribute__((format(printf, 3, 4))) static void perr(struct parser *p, const config_setting_t *s,
                                                       const char *fmt, ...)
{
    p->nerrors++;
    if (p->errors == NULL) {
        return;
    }
    const char *file = s != NULL ? config_setting_source_file(s) : NULL;
    fprintf(p->errors, "%s:%d: ", file != NULL ? file : p->file,
            s != NULL ? (int)config_setting_source_line(s) : 0);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->errors, fmt, ap);
    va_end(ap);
    fputc('\n', p->errors);
}

static bool in_list(const char *const *names, const char *s)
{
    for (; *names != NULL; names++) {
        if (strcmp(*names, s) == 0) {
            return true;
        }
    }
    return false;
}

/* Unknown keys are errors; keys of another device type get a clearer message. */
static void check_keys(struct parser *p, const config_setting_t *group, const char *what,
                       const char *const *allowed, const char *const *elsewhere)
{
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        if (name == NULL || in_list(allowed, name)) {
            continue;
        }
        if (elsewhere != NULL && in_list(elsewhere, name)) {
            perr(p, s, "%s: '%s' does not apply here", what, name);
        } else {
            perr(p, s, "%s: unknown key '%s'", what, name);
        }
    }
}

static const config_setting_t *member(const config_setting_t *group, const char *key)
{
    return config_setting_get_member(group, key);
}

static bool get_number(struct parser *p, const config_setting_t *s, const char *what, double *out)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        *out = (double)config_setting_get_int64(s);
        return true;
    case CONFIG_TYPE_FLOAT:
        *out = config_setting_get_float(s);
        return true;
    default:
        perr(p, s, "%s must be a number", what);
        return false;
    }
}

static bool get_int(struct parser *p, const config_setting_t *s, const char *what, long long lo,
                    long long hi, long long *out)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        perr(p, s, "%s must be an integer", what);
        return false;
    }
    long long v = config_setting_get_int64(s);
    if (v < lo || v > hi) {
        perr(p, s, "%s must be %lld..%lld, not %lld", what, lo, hi, v);
        return false;
    }
    *out = v;
    return true;
}

static const char *get_string(struct parser *p, const config_setting_t *s, const char *what)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        perr(p, s, "%s must be a string", what);
        return NULL;
    }
    return config_setting_get_string(s);
}

/* A string from `names`; returns its index or -1 after an error. */
static int get_enum(struct parser *p, const config_setting_t *s, const char *what,
                    const char *const *names, int n)
{
    const char *v = get_string(p, s, what);
    if (v == NULL) {
        return -1;
    }
    int i = lookup(names, n, v);
    if (i < 0) {
        char list[160] = "";
        for (int k = 0; k < n; k++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof(list) - len, "%s%s", k > 0 ? " | " : "", names[k]);
        }
        perr(p, s, "%s must be one of %s, not '%s'", what, list, v);
    }
    return i;
}

static bool get_seconds_ms(struct parser *p, const config_setting_t *s, const char *what,
                           int64_t *out)
{
    double v;
    if (!get_number(p, s, what, &v)) {
        return false;
    }
    if (!(v >= 0.0) || v > 1e9) {
        perr(p, s, "%s must be 0..1e9 seconds", what);
        return false;
    }
    *out = (int64_t)llround(v * 1000.0);
    return true;
}

static bool get_pressure(struct parser *p, const config_setting_t *s, double *out)
{
    if (!get_number(p, s, "pressure", out)) {
        return false;
    }
    if (!(*out >= 0.0 && *out <= GW_SIM_HYDRANT_MPA_MAX)) {
        perr(p, s, "pressure must be 0..1.6 MPa (the transmitter's span)");
        return false;
    }
    return true;
}

static bool get_fault(struct parser *p, const config_setting_t *s, enum gw_sim_type type,
                      enum gw_sim_fault *out)
{
    int f = get_enum(p, s, "fault", fault_names, NELEM(fault_names));
    if (f < 0) {
        return false;
    }
    if ((f == GW_SIM_FAULT_WIRE_BREAK || f == GW_SIM_FAULT_SHORT_CIRCUIT) &&
        type != GW_SIM_HYDRANT) {
        perr(p, s, "fault '%s' needs a 4-20 mA device (type hydrant_4_20)", fault_names[f]);
        return false;
    }
    *out = (enum gw_sim_fault)f;
    return true;
}

int gw_sim_parse_listen(const char *s, char **host, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0') {
        return -EINVAL;
    }
    char buf[INET_ADDRSTRLEN];
    size_t hlen = (size_t)(colon - s);
    if (hlen >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, s, hlen);
    buf[hlen] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1) {
        return -EINVAL; /* libmodbus listens on IPv4 literals only */
    }
    char *end;
    errno = 0;
    long v = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > 65535) {
        return -EINVAL;
    }
    char *h = strdup(buf);
    if (h == NULL) {
        return -ENOMEM;
    }
    *host = h;
    *port = (int)v;
    return 0;
}

/* A list of register or bit values: [1, 2, 0x4120] or, for bits, [true, false, 1]. */
static int get_values(struct parser *p, const config_setting_t *s, enum gw_sim_table table,
                      const char *what, uint16_t *out, int max)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
        perr(p, s, "%s must be a list of values like [1, 2, 3]", what);
        return -1;
    }
    int n = config_setting_length(s);
    if (n > max) {
        perr(p, s, "%s has %d values, at most %d allowed", what, n, max);
        return -1;
    }
    bool bits = table == GW_SIM_COILS || table == GW_SIM_DISCRETE;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        long long v;
        if (bits && config_setting_type(e) == CONFIG_TYPE_BOOL) {
            v = config_setting_get_bool(e);
        } else if (!get_int(p, e, what, 0, bits ? 1 : 65535, &v)) {
            return -1;
        }
        if (out != NULL) {
            out[i] = (uint16_t)v;
        }
    }
    return n;
}

static const char *const common_dev_keys[] = {"name", "unit_id", "type", "fault", NULL};
static const char *const hydrant_keys[] = {"name",     "unit_id", "type", "fault",
                                           "pressure", "noise",   NULL};
static const char *const door_keys[] = {"name",  "unit_id", "type", "fault",
                                        "state", "battery", NULL};
static const char *const registers_keys[] = {"name",  "unit_id", "type",     "fault", "holding",
                                             "input", "coils",   "discrete", "size",  NULL};
static const char *const any_dev_keys[] = {"pressure", "noise",    "state", "battery", "holding",
                                           "input",    "discrete", "coils", "size",    NULL};

static void parse_registers(struct parser *p, const config_setting_t *g, struct gw_sim_device *d)
{
    long long size = -1;
    const config_setting_t *s = member(g, "size");
    if (s != NULL && !get_int(p, s, "size", 1, GW_SIM_TABLE_MAX, &size)) {
        return;
    }
    const config_setting_t *lists[GW_SIM_NTABLES];
    int n[GW_SIM_NTABLES];
    for (int t = 0; t < GW_SIM_NTABLES; t++) {
        lists[t] = member(g, table_names[t]);
        n[t] = 0;
        if (lists[t] != NULL) {
            n[t] = get_values(p, lists[t], (enum gw_sim_table)t, table_names[t], NULL,
                              GW_SIM_TABLE_MAX);
            if (n[t] < 0) {
                return;
            }
            if (size >= 0 && n[t] > size) {
                perr(p, lists[t], "%s has %d values but size is %lld", table_names[t], n[t], size);
                return;
            }
        }
    }
    int len[GW_SIM_NTABLES];
    for (int t = 0; t < GW_SIM_NTABLES; t++) {
        len[t] = size >= 0 ? (int)size : n[t];
    }
    if (tables_alloc(&d->tables, len) < 0 || tables_alloc(&d->init_tables, len) < 0) {
        perr(p, g, "out of memory");
        return;
    }
    for (int t = 0; t < GW_SIM_NTABLES; t++) {
        if (lists[t] == NULL) {
            continue;
        }
        uint16_t *vals = calloc((size_t)n[t] + 1, sizeof(uint16_t));
        if (vals == NULL) {
            perr(p, g, "out of memory");
            return;
        }
        get_values(p, lists[t], (enum gw_sim_table)t, table_names[t], vals, GW_SIM_TABLE_MAX);
        for (int i = 0; i < n[t]; i++) {
            if (t == GW_SIM_HOLDING) {
                d->init_tables.holding[i] = vals[i];
            } else if (t == GW_SIM_INPUT) {
                d->init_tables.input[i] = vals[i];
            } else if (t == GW_SIM_COILS) {
                d->init_tables.coils[i] = (uint8_t)vals[i];
            } else {
                d->init_tables.discrete[i] = (uint8_t)vals[i];
            }
        }
        free(vals);
    }
}

static void parse_device(struct parser *p, struct gw_scenario *sc, const config_setting_t *g,
                         struct gw_sim_device *d)
{
    d->line = (int)config_setting_source_line(g);
    d->unit_id = -1;
    d->init.battery = 100;
    d->init.pressure = 0.4;
    if (!config_setting_is_group(g)) {
        perr(p, g, "a device must be a group { name = ...; unit_id = ...; type = ...; }");
        return;
    }
    const config_setting_t *s;
    const char *name = NULL;
    if ((s = member(g, "name")) == NULL) {
        perr(p, g, "device: name is required");
    } else if ((name = get_string(p, s, "name")) != NULL) {
        if (name[0] == '\0') {
            perr(p, s, "device name must not be empty");
        }
        for (int i = 0; i < sc->ndevices; i++) {
            if (sc->devices[i].name != NULL && strcmp(sc->devices[i].name, name) == 0) {
                perr(p, s, "device '%s' already defined at line %d", name, sc->devices[i].line);
            }
        }
        d->name = strdup(name);
        if (d->name == NULL) {
            perr(p, s, "out of memory");
        }
    }
    long long unit;
    if ((s = member(g, "unit_id")) == NULL) {
        perr(p, g, "device %s: unit_id is required", name ? name : "?");
    } else if (get_int(p, s, "unit_id", 1, 247, &unit)) {
        int other = sc->unit_index[unit];
        if (other >= 0) {
            perr(p, s, "unit_id %lld is already used by '%s' (line %d)", unit,
                 sc->devices[other].name ? sc->devices[other].name : "?", sc->devices[other].line);
        } else {
            d->unit_id = (int)unit;
            sc->unit_index[unit] = (int)(d - sc->devices);
        }
    }
    int type = -1;
    if ((s = member(g, "type")) == NULL) {
        perr(p, g, "device %s: type is required (hydrant_4_20 | door | registers)",
             name ? name : "?");
    } else {
        type = get_enum(p, s, "type", type_names, NELEM(type_names));
    }
    if (type < 0) {
        check_keys(p, g, "device", common_dev_keys, any_dev_keys);
        return;
    }
    d->type = (enum gw_sim_type)type;
    const char *const *keys = d->type == GW_SIM_HYDRANT ? hydrant_keys
                              : d->type == GW_SIM_DOOR  ? door_keys
                                                        : registers_keys;
    check_keys(p, g, type_names[type], keys, any_dev_keys);
    if ((s = member(g, "fault")) != NULL) {
        get_fault(p, s, d->type, &d->init.fault);
    }
    if (d->type == GW_SIM_HYDRANT) {
        if ((s = member(g, "pressure")) != NULL) {
            get_pressure(p, s, &d->init.pressure);
        }
        if ((s = member(g, "noise")) != NULL && get_number(p, s, "noise", &d->noise) &&
            !(d->noise >= 0.0 && d->noise <= 0.5)) {
            perr(p, s, "noise must be 0..0.5 MPa");
        }
    } else if (d->type == GW_SIM_DOOR) {
        if ((s = member(g, "state")) != NULL) {
            int st = get_enum(p, s, "state", door_names, NELEM(door_names));
            d->init.door = st >= 0 ? (enum gw_sim_door_state)st : GW_SIM_DOOR_CLOSED;
        }
        long long b;
        if ((s = member(g, "battery")) != NULL && get_int(p, s, "battery", 0, 100, &b)) {
            d->init.battery = (int)b;
        }
    }
    if (d->type == GW_SIM_REGISTERS) {
        parse_registers(p, g, d);
    } else {
        /* holding[0] = value, holding[1] = kPa or battery; nothing else exists. */
        const int len[GW_SIM_NTABLES] = {2, 0, 0, 0};
        if (tables_alloc(&d->tables, len) < 0) {
            perr(p, g, "out of memory");
        }
    }
}

static void parse_write(struct parser *p, const config_setting_t *s, enum gw_sim_table table,
                        const struct gw_sim_device *d, struct gw_sim_write *w)
{
    static const char *const write_keys[] = {"address", "value", "values", NULL};
    const char *tname = table_names[table];
    if (!config_setting_is_group(s)) {
        perr(p, s,
             "%s must be a group { address = N; value = V; } or { address = N; values = "
             "[...]; }",
             tname);
        return;
    }
    check_keys(p, s, tname, write_keys, NULL);
    w->table = table;
    const config_setting_t *a = member(s, "address");
    const config_setting_t *v1 = member(s, "value");
    const config_setting_t *vn = member(s, "values");
    long long addr;
    if (a == NULL) {
        perr(p, s, "%s: address is required", tname);
        return;
    }
    if (!get_int(p, a, "address", 0, GW_SIM_TABLE_MAX - 1, &addr)) {
        return;
    }
    w->address = (int)addr;
    if ((v1 == NULL) == (vn == NULL)) {
        perr(p, s, "%s: give either value or values", tname);
        return;
    }
    if (v1 != NULL) {
        bool bits = table == GW_SIM_COILS || table == GW_SIM_DISCRETE;
        long long v;
        if (bits && config_setting_type(v1) == CONFIG_TYPE_BOOL) {
            v = config_setting_get_bool(v1);
        } else if (!get_int(p, v1, "value", 0, bits ? 1 : 65535, &v)) {
            return;
        }
        w->values[0] = (uint16_t)v;
        w->count = 1;
    } else {
        int n = get_values(p, vn, table, "values", w->values, GW_SIM_WRITE_MAX);
        if (n < 0) {
            return;
        }
        if (n == 0) {
            perr(p, vn, "values must not be empty");
            return;
        }
        w->count = n;
    }
    if (d->type != GW_SIM_REGISTERS) {
        perr(p, s, "%s writes apply to registers devices only; '%s' is a %s", tname, d->name,
             type_names[d->type]);
        return;
    }
    int len = table_len(&d->init_tables, table);
    if (w->address + w->count > len) {
        perr(p, s, "%s[%d..%d] is outside %s's table of %d", tname, w->address,
             w->address + w->count - 1, d->name, len);
    }
}

static void parse_event(struct parser *p, struct gw_scenario *sc, const config_setting_t *g,
                        struct gw_sim_event *ev)
{
    static const char *const event_keys[] = {"at_s",    "device",   "pressure", "state",
                                             "battery", "fault",    "holding",  "input",
                                             "coils",   "discrete", NULL};
    ev->line = (int)config_setting_source_line(g);
    ev->device = -1;
    if (!config_setting_is_group(g)) {
        perr(p, g, "a script event must be a group { at_s = ...; device = ...; ... }");
        return;
    }
    check_keys(p, g, "script event", event_keys, NULL);
    const config_setting_t *s;
    if ((s = member(g, "at_s")) == NULL) {
        perr(p, g, "script event: at_s is required");
    } else {
        get_seconds_ms(p, s, "at_s", &ev->at_ms);
    }
    if ((s = member(g, "device")) == NULL) {
        perr(p, g, "script event: device is required");
        return;
    }
    const char *name = get_string(p, s, "device");
    if (name == NULL) {
        return;
    }
    for (int i = 0; i < sc->ndevices; i++) {
        if (sc->devices[i].name != NULL && strcmp(sc->devices[i].name, name) == 0) {
            ev->device = i;
        }
    }
    if (ev->device < 0) {
        perr(p, s, "no device named '%s'", name);
        return;
    }
    const struct gw_sim_device *d = &sc->devices[ev->device];
    if ((s = member(g, "pressure")) != NULL) {
        if (d->type != GW_SIM_HYDRANT) {
            perr(p, s, "pressure applies to hydrant_4_20 devices; '%s' is a %s", d->name,
                 type_names[d->type]);
        } else if (get_pressure(p, s, &ev->pressure)) {
            ev->set |= GW_SIM_SET_PRESSURE;
        }
    }
    if ((s = member(g, "state")) != NULL) {
        if (d->type != GW_SIM_DOOR) {
            perr(p, s, "state applies to door devices; '%s' is a %s", d->name, type_names[d->type]);
        } else {
            int st = get_enum(p, s, "state", door_names, NELEM(door_names));
            if (st >= 0) {
                ev->door = (enum gw_sim_door_state)st;
                ev->set |= GW_SIM_SET_DOOR;
            }
        }
    }
    if ((s = member(g, "battery")) != NULL) {
        long long b;
        if (d->type != GW_SIM_DOOR) {
            perr(p, s, "battery applies to door devices; '%s' is a %s", d->name,
                 type_names[d->type]);
        } else if (get_int(p, s, "battery", 0, 100, &b)) {
            ev->battery = (int)b;
            ev->set |= GW_SIM_SET_BATTERY;
        }
    }
    if ((s = member(g, "fault")) != NULL && get_fault(p, s, d->type, &ev->fault)) {
        ev->set |= GW_SIM_SET_FAULT;
    }
    for (int t = 0; t < GW_SIM_NTABLES; t++) {
        if ((s = member(g, table_names[t])) != NULL) {
            parse_write(p, s, (enum gw_sim_table)t, d, &ev->writes[ev->nwrites++]);
        }
    }
    static const char *const action_keys[] = {"pressure", "state", "battery", "fault",
                                              "holding",  "input", "coils",   "discrete"};
    bool any = false;
    for (int i = 0; i < NELEM(action_keys); i++) {
        any = any || member(g, action_keys[i]) != NULL;
    }
    if (!any) {
        perr(p, g,
             "script event changes nothing (give pressure, state, battery, fault or a "
             "register write)");
    }
}

static void parse_root(struct parser *p, struct gw_scenario *sc, const config_setting_t *root)
{
    static const char *const root_keys[] = {"name",     "modbus", "devices", "script",
                                            "repeat_s", "seed",   NULL};
    static const char *const modbus_keys[] = {"listen", NULL};
    check_keys(p, root, "scenario", root_keys, NULL);
    const config_setting_t *s;
    if ((s = member(root, "name")) != NULL) {
        const char *v = get_string(p, s, "name");
        if (v != NULL) {
            sc->name = strdup(v);
        }
    }
    if ((s = member(root, "seed")) != NULL) {
        long long v;
        if (get_int(p, s, "seed", 0, LLONG_MAX, &v)) {
            sc->seed = (uint64_t)v;
        }
    }
    if ((s = member(root, "modbus")) != NULL) {
        if (!config_setting_is_group(s)) {
            perr(p, s, "modbus must be a group { listen = \"127.0.0.1:1502\"; }");
        } else {
            check_keys(p, s, "modbus", modbus_keys, NULL);
            const config_setting_t *l = member(s, "listen");
            const char *v = l != NULL ? get_string(p, l, "listen") : NULL;
            if (v != NULL) {
                char *host = NULL;
                if (gw_sim_parse_listen(v, &host, &sc->listen_port) < 0) {
                    perr(p, l, "listen must be \"IPv4:PORT\" like \"127.0.0.1:1502\", not '%s'", v);
                } else {
                    free(sc->listen_host);
                    sc->listen_host = host;
                }
            }
        }
    }
    if ((s = member(root, "devices")) == NULL) {
        perr(p, root, "devices = ( ... ); is required");
    } else if (!config_setting_is_list(s)) {
        perr(p, s, "devices must be a list ( { ... }, { ... } )");
    } else {
        int n = config_setting_length(s);
        sc->devices = calloc((size_t)n + 1, sizeof(*sc->devices));
        if (sc->devices == NULL) {
            perr(p, s, "out of memory");
            return;
        }
        for (int i = 0; i < n; i++) {
            sc->ndevices = i + 1; /* visible for duplicate checks and freeing */
            parse_device(p, sc, config_setting_get_elem(s, (unsigned)i), &sc->devices[i]);
        }
        if (n == 0) {
            perr(p, s, "devices must not be empty");
        }
    }
    if ((s = member(root, "repeat_s")) != NULL &&
        get_seconds_ms(p, s, "repeat_s", &sc->repeat_ms) && sc->repeat_ms != 0 &&
        sc->repeat_ms < 1000) {
        perr(p, s, "repeat_s must be 0 (run once) or at least 1");
    }
    const config_setting_t *repeat = s;
    if ((s = member(root, "script")) != NULL) {
        if (!config_setting_is_list(s)) {
            perr(p, s, "script must be a list ( { at_s = ...; device = ...; ... }, ... )");
            return;
        }
        int n = config_setting_length(s);
        sc->events = calloc((size_t)n + 1, sizeof(*sc->events));
        if (sc->events == NULL) {
            perr(p, s, "out of memory");
            return;
        }
        for (int i = 0; i < n; i++) {
            struct gw_sim_event *ev = &sc->events[i];
            parse_event(p, sc, config_setting_get_elem(s, (unsigned)i), ev);
            if (sc->repeat_ms > 0 && ev->at_ms >= sc->repeat_ms) {
                perr(p, config_setting_get_elem(s, (unsigned)i),
                     "at_s must be below repeat_s (%lld s), or the event would never run",
                     (long long)(sc->repeat_ms / 1000));
            }
        }
        sc->nevents = n;
    } else if (sc->repeat_ms > 0) {
        perr(p, repeat, "repeat_s without a script");
    }
}

/* Stable, so events at the same time run in file order. */
static void sort_events(struct gw_sim_event *ev, int n)
{
    for (int i = 1; i < n; i++) {
        struct gw_sim_event tmp = ev[i];
        int j = i - 1;
        while (j >= 0 && ev[j].at_ms > tmp.at_ms) {
            ev[j + 1] = ev[j];
            j--;
        }
        ev[j + 1] = tmp;
    }
}

static struct gw_scenario *parse_config(config_t *cfg, int read_ok, const char *name, FILE *errors)
{
    struct parser p = {.file = name, .errors = errors};
    if (read_ok != CONFIG_TRUE) {
        if (errors != NULL) {
            const char *f = config_error_file(cfg);
            if (config_error_type(cfg) == CONFIG_ERR_FILE_IO) {
                fprintf(errors, "%s:0: cannot read: %s\n", name, strerror(errno));
            } else {
                fprintf(errors, "%s:%d: %s\n", f != NULL ? f : name, config_error_line(cfg),
                        config_error_text(cfg));
            }
        }
        return NULL;
    }
    struct gw_scenario *sc = calloc(1, sizeof(*sc));
    if (sc == NULL) {
        if (errors != NULL) {
            fprintf(errors, "%s:0: out of memory\n", name);
        }
        return NULL;
    }
    for (int i = 0; i < 256; i++) {
        sc->unit_index[i] = -1;
    }
    sc->seed = 1;
    sc->listen_port = GW_SIM_LISTEN_DEFAULT_PORT;
    sc->path = strdup(name);
    sc->listen_host = strdup(GW_SIM_LISTEN_DEFAULT_HOST);
    if (sc->path == NULL || sc->listen_host == NULL) {
        p.nerrors++;
    } else {
        parse_root(&p, sc, config_root_setting(cfg));
    }
    if (p.nerrors > 0) {
        gw_scenario_free(sc);
        return NULL;
    }
    sort_events(sc->events, sc->nevents);
    gw_scenario_start(sc, sc->seed);
    return sc;
}

struct gw_scenario *gw_scenario_load(const char *path, FILE *errors)
{
    config_t cfg;
    config_init(&cfg);
    errno = 0;
    int ok = config_read_file(&cfg, path);
    struct gw_scenario *sc = parse_config(&cfg, ok, path, errors);
    config_destroy(&cfg);
    return sc;
}

struct gw_scenario *gw_scenario_parse(const char *text, const char *name, FILE *errors)
{
    config_t cfg;
    config_init(&cfg);
    int ok = config_read_string(&cfg, text);
    struct gw_scenario *sc = parse_config(&cfg, ok, name, errors);
    config_destroy(&cfg);
    return sc;
}

void gw_scenario_free(struct gw_scenario *sc)
{
    if (sc == NULL) {
        return;
    }
    for (int i = 0; i < sc->ndevices; i++) {
        free(sc->devices[i].name);
        tables_free(&sc->devices[i].tables);
        tables_free(&sc->devices[i].init_tables);
    }
    free(sc->devices);
    free(sc->events);
    free(sc->name);
    free(sc->path);
    free(sc->listen_host);
    free(sc);
}

/* ---- running ----------------------------------------------------------------------------- */

static void reset_device(struct gw_sim_device *d)
{
    d->cur = d->init;
    if (d->type == GW_SIM_REGISTERS) {
        tables_copy(&d->tables, &d->init_tables);
    } else {
        derive_tables(d, NULL);
    }
}

void gw_scenario_start(struct gw_scenario *sc, uint64_t seed)
{
    sc->next_event = 0;
    sc->cycle = 0;
    sc->rng = seed;
    for (int i = 0; i < sc->ndevices; i++) {
        reset_device(&sc->devices[i]);
        sc->devices[i].requests = 0;
    }
}

/* "30s", "30.5s", "0.25s": whole seconds stay short, as in the script. */
static void fmt_time(char *buf, size_t size, int64_t ms)
{
    if (ms % 1000 == 0) {
        snprintf(buf, size, "%llds", (long long)(ms / 1000));
        return;
    }
    snprintf(buf, size, "%lld.%03llds", (long long)(ms / 1000), (long long)(ms % 1000));
    char *end = buf + strlen(buf) - 1; /* the 's' */
    while (end[-1] == '0') {
        end--;
    }
    end[0] = 's';
    end[1] = '\0';
}

struct line {
    char buf[512];
    size_t len;
    int items;
};

__attribute__((format(printf, 2, 3))) static void add(struct line *l, const char *fmt, ...)
{
    if (l->len >= sizeof(l->buf)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
    va_end(ap);
    if (n > 0) {
        l->len += (size_t)n;
    }
}

static void add_item_sep(struct line *l)
{
    add(l, l->items++ == 0 ? " " : ", ");
}

static void describe_hydrant(struct line *l, const struct gw_sim_device *d)
{
    add(l, "%.2f MPa (raw %u)", d->cur.pressure, (unsigned)gw_sim_hydrant_raw(d->cur.pressure));
}

static void apply_event(struct gw_scenario *sc, const struct gw_sim_event *ev, int64_t at_ms,
                        gw_scenario_line_cb cb, void *ud)
{
    struct gw_sim_device *d = &sc->devices[ev->device];
    struct line l = {.len = 0};
    char t[32];
    fmt_time(t, sizeof(t), at_ms);
    add(&l, "t=%s %s %s unit=%d", t, d->type == GW_SIM_HYDRANT ? "hydrant" : type_names[d->type],
        d->name, d->unit_id);
    if (ev->set & GW_SIM_SET_FAULT) {
        d->cur.fault = ev->fault;
        add_item_sep(&l);
        add(&l, "fault -> %s", fault_names[ev->fault]);
        if (ev->fault == GW_SIM_FAULT_WIRE_BREAK) {
            add(&l, " (raw 0)");
        } else if (ev->fault == GW_SIM_FAULT_SHORT_CIRCUIT) {
            add(&l, " (raw %d)", GW_SIM_HYDRANT_RAW_SHORT);
        }
    }
    if (ev->set & GW_SIM_SET_PRESSURE) {
        d->cur.pressure = ev->pressure;
        add_item_sep(&l);
        add(&l, "pressure -> ");
        describe_hydrant(&l, d);
    }
    if (ev->set & GW_SIM_SET_DOOR) {
        d->cur.door = ev->door;
        add_item_sep(&l);
        add(&l, "state -> %s", door_names[ev->door]);
    }
    if (ev->set & GW_SIM_SET_BATTERY) {
        d->cur.battery = ev->battery;
        add_item_sep(&l);
        add(&l, "battery -> %d %%", ev->battery);
    }
    for (int i = 0; i < ev->nwrites; i++) {
        const struct gw_sim_write *w = &ev->writes[i];
        apply_write(&d->tables, w);
        add_item_sep(&l);
        if (w->count == 1) {
            add(&l, "%s[%d] -> %u", table_names[w->table], w->address, (unsigned)w->values[0]);
        } else {
            add(&l, "%s[%d..%d] ->", table_names[w->table], w->address, w->address + w->count - 1);
            for (int k = 0; k < w->count; k++) {
                add(&l, " %u", (unsigned)w->values[k]);
            }
        }
    }
    if (d->type != GW_SIM_REGISTERS) {
        derive_tables(d, NULL);
    }
    if (l.len >= sizeof(l.buf)) {
        memcpy(l.buf + sizeof(l.buf) - 4, "...", 4);
    }
    if (cb != NULL) {
        cb(ud, l.buf);
    }
}

int gw_scenario_advance(struct gw_scenario *sc, int64_t now_ms, gw_scenario_line_cb cb, void *ud)
{
    int applied = 0;
    for (;;) {
        int64_t base = sc->cycle * sc->repeat_ms;
        if (sc->next_event < sc->nevents) {
            const struct gw_sim_event *ev = &sc->events[sc->next_event];
            if (base + ev->at_ms > now_ms) {
                break;
            }
            sc->next_event++;
            apply_event(sc, ev, base + ev->at_ms, cb, ud);
            applied++;
            continue;
        }
        if (sc->repeat_ms <= 0 || base + sc->repeat_ms > now_ms) {
            break;
        }
        sc->cycle++;
        sc->next_event = 0;
        for (int i = 0; i < sc->ndevices; i++) {
            reset_device(&sc->devices[i]);
        }
        if (cb != NULL) {
            char t[32], line[96];
            fmt_time(t, sizeof(t), base + sc->repeat_ms);
            snprintf(line, sizeof(line), "t=%s script repeats (cycle %lld), devices reset", t,
                     (long long)sc->cycle + 1);
            cb(ud, line);
        }
    }
    return applied;
}

int64_t gw_scenario_next_due_ms(const struct gw_scenario *sc)
{
    int64_t base = sc->cycle * sc->repeat_ms;
    if (sc->next_event < sc->nevents) {
        return base + sc->events[sc->next_event].at_ms;
    }
    return sc->repeat_ms > 0 ? base + sc->repeat_ms : -1;
}

struct gw_sim_device *gw_scenario_device(struct gw_scenario *sc, int unit_id)
{
    if (unit_id < 0 || unit_id > 255 || sc->unit_index[unit_id] < 0) {
        return NULL;
    }
    return &sc->devices[sc->unit_index[unit_id]];
}

static bool is_write(int function)
{
    switch (function) {
    case 0x05: /* write single coil */
    case 0x06: /* write single register */
    case 0x0F: /* write multiple coils */
    case 0x10: /* write multiple registers */
    case 0x16: /* mask write register */
    case 0x17: /* read/write multiple registers */
        return true;
    default:
        return false;
    }
}

enum gw_sim_action gw_scenario_request(struct gw_scenario *sc, struct gw_sim_device *dev,
                                       int function, int *exception)
{
    *exception = 0;
    if (dev == NULL) {
        return GW_SIM_SILENT;
    }
    dev->requests++;
    switch (dev->cur.fault) {
    case GW_SIM_FAULT_SILENT:
        return GW_SIM_SILENT;
    case GW_SIM_FAULT_EXCEPTION:
        *exception = 2; /* MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS */
        return GW_SIM_EXCEPTION;
    case GW_SIM_FAULT_GARBAGE:
        return GW_SIM_GARBAGE;
    default:
        break;
    }
    if (dev->type != GW_SIM_REGISTERS && is_write(function)) {
        *exception = 1; /* MODBUS_EXCEPTION_ILLEGAL_FUNCTION: a transmitter is read-only */
        return GW_SIM_EXCEPTION;
    }
    if (dev->type == GW_SIM_HYDRANT && dev->noise > 0.0) {
        derive_tables(dev, &sc->rng);
    }
    return GW_SIM_REPLY;
}

size_t gw_scenario_garbage(struct gw_scenario *sc, const uint8_t *req, uint8_t out[9])
{
    /* Function codes 25..42 are unassigned, so no client can take this for a reply. */
    uint64_t r = rng_next(&sc->rng);
    uint8_t fn = (uint8_t)(25 + r % 18);
    if (fn == req[7]) {
        fn = fn == 42 ? 25 : (uint8_t)(fn + 1);
    }
    out[0] = req[0]; /* transaction id */
    out[1] = req[1];
    out[2] = 0; /* protocol id */
    out[3] = 0;
    out[4] = 0; /* length: unit id + function + one byte */
    out[5] = 3;
    out[6] = req[6]; /* unit id */
    out[7] = fn;
    out[8] = (uint8_t)(r >> 32);
    return 9;
}

int gw_sim_tcp_frame(const uint8_t *buf, size_t len)
{
    if (len >= 4 && (buf[2] != 0 || buf[3] != 0)) {
        return -EPROTO;
    }
    if (len < 6) {
        return 0;
    }
    int mlen = buf[4] << 8 | buf[5]; /* unit id + PDU */
    if (mlen < 2 || mlen > 254) {
        return -EPROTO;
    }
    return len >= (size_t)(6 + mlen) ? 6 + mlen : 0;
}

bool gw_sim_pdu_length_ok(const uint8_t *pdu, size_t n)
{
    if (n < 1) {
        return false;
    }
    switch (pdu[0]) {
    case 0x01: /* read coils .. write single register: fn, address, quantity or value */
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x05:
    case 0x06:
        return n == 5;
    case 0x0F: /* write multiple coils/registers: fn, address, quantity, byte count, data */
    case 0x10:
        return n >= 6 && n == 6 + (size_t)pdu[5];
    case 0x16: /* mask write register: fn, address, and-mask, or-mask */
        return n == 7;
    case 0x17: /* read/write registers: fn, read addr, read n, write addr, write n, count, data */
        return n >= 10 && n == 10 + (size_t)pdu[9];
    default:
        return true;
    }
}
