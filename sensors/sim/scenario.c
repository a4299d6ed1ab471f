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

static const char *const type_names[] = {"hydrant_4_20", "door",      "registers",
                                         "smoke",        "door_lora", "raw_lora"};
static const char *const fault_names[] = {"none",    "silent",     "exception",
                                          "garbage", "wire_break", "short_circuit",
                                          "replay",  "bad_mic",    "fcnt_reset"};
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

static bool is_one_shot(int f)
{
    return f == GW_SIM_FAULT_REPLAY || f == GW_SIM_FAULT_BAD_MIC || f == GW_SIM_FAULT_FCNT_RESET;
}

/* initial: a device's starting fault (a one-shot action cannot be a state). */
static bool get_fault(struct parser *p, const config_setting_t *s, enum gw_sim_type type,
                      bool initial, enum gw_sim_fault *out)
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
    if ((f == GW_SIM_FAULT_EXCEPTION || f == GW_SIM_FAULT_GARBAGE) && gw_sim_type_is_lora(type)) {
        perr(p, s,
             "fault '%s' is a Modbus answer; a LoRa device knows none | silent | replay | "
             "bad_mic | fcnt_reset",
             fault_names[f]);
        return false;
    }
    if (is_one_shot(f) && !gw_sim_type_is_lora(type)) {
        perr(p, s, "fault '%s' applies to LoRa devices (smoke | door_lora | raw_lora)",
             fault_names[f]);
        return false;
    }
    if (is_one_shot(f) && initial) {
        perr(p, s, "fault '%s' is a one-shot script action, not a starting state", fault_names[f]);
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
#define LORA_KEYS                                                                                  \
    "name", "type", "fault", "dev_addr", "nwk_s_key", "app_s_key", "every_s", "fport", "fcnt",     \
        "heard_by", "rssi", "snr", "sf"
static const char *const smoke_keys[] = {LORA_KEYS, "battery", "smoke", NULL};
static const char *const door_lora_keys[] = {LORA_KEYS, "battery", "state", NULL};
static const char *const raw_lora_keys[] = {LORA_KEYS, "payload", NULL};
static const char *const any_dev_keys[] = {
    "pressure", "noise",   "state",    "battery", "holding", "input",     "discrete",  "coils",
    "size",     "unit_id", "dev_addr", "smoke",   "payload", "nwk_s_key", "app_s_key", "every_s",
    "fport",    "fcnt",    "heard_by", "rssi",    "snr",     "sf",        NULL};

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

static bool get_bool(struct parser *p, const config_setting_t *s, const char *what, bool *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        perr(p, s, "%s must be true or false", what);
        return false;
    }
    *out = config_setting_get_bool(s) != 0;
    return true;
}

/* payload = "01ff..." for raw_lora devices and their script events. */
static bool get_payload(struct parser *p, const config_setting_t *s, uint8_t *out, size_t *len)
{
    const char *v = get_string(p, s, "payload");
    if (v == NULL) {
        return false;
    }
    if (gw_sim_parse_hex(v, out, LW_MAX_PAYLOAD, len) < 0) {
        perr(p, s, "payload must be hex bytes like \"01ff\", at most %d of them, not '%s'",
             LW_MAX_PAYLOAD, v);
        return false;
    }
    return true;
}

/* A session key: 32 hex digits. Never echo it: keys stay out of logs. */
static void get_key(struct parser *p, const config_setting_t *g, const char *key, const char *dev,
                    uint8_t out[LW_KEY_LEN])
{
    const config_setting_t *s = member(g, key);
    if (s == NULL) {
        perr(p, g, "device %s: %s is required (32 hex digits)", dev, key);
        return;
    }
    const char *v = get_string(p, s, key);
    if (v != NULL && lw_parse_key(v, out) < 0) {
        perr(p, s, "%s must be 32 hex digits", key);
    }
}

static void parse_heard_by(struct parser *p, const struct gw_scenario *sc,
                           const config_setting_t *s, struct gw_sim_lora_dev *l)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
        perr(p, s, "heard_by must be a list of forwarder indexes like [0, 1]");
        return;
    }
    int n = config_setting_length(s);
    if (n == 0) {
        perr(p, s, "heard_by must not be empty (a device nobody hears: use fault = \"silent\")");
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        long long v;
        if (!get_int(p, e, "heard_by", 0, sc->lora.nforwarders - 1, &v)) {
            return;
        }
        if (l->heard_by & (1u << v)) {
            perr(p, e, "heard_by names forwarder %lld twice", v);
            return;
        }
        l->heard_by |= 1u << v;
    }
}

static void parse_lora_device(struct parser *p, struct gw_scenario *sc, const config_setting_t *g,
                              struct gw_sim_device *d)
{
    struct gw_sim_lora_dev *l = &d->lora;
    const char *name = d->name != NULL ? d->name : "?";
    l->every_ms = 60000;
    l->fport = 1;
    l->rssi = -90.0;
    l->snr = 7.0;
    l->sf = 7;
    d->unit_id = -1;
    sc->lora.ndevices++;
    const config_setting_t *s;
    const char *v;
    if ((s = member(g, "dev_addr")) == NULL) {
        perr(p, g, "device %s: dev_addr is required (8 hex digits like \"26011BDA\")", name);
    } else if ((v = get_string(p, s, "dev_addr")) != NULL) {
        if (lw_parse_dev_addr(v, &l->dev_addr) < 0) {
            perr(p, s, "dev_addr must be 8 hex digits like \"26011BDA\", not '%s'", v);
        } else {
            for (const struct gw_sim_device *o = sc->devices; o < d; o++) {
                if (gw_sim_type_is_lora(o->type) && o->lora.dev_addr == l->dev_addr) {
                    perr(p, s, "dev_addr %08X is already used by '%s' (line %d)",
                         (unsigned)l->dev_addr, o->name ? o->name : "?", o->line);
                }
            }
        }
    }
    get_key(p, g, "nwk_s_key", name, l->nwk_s_key);
    get_key(p, g, "app_s_key", name, l->app_s_key);
    long long n;
    if ((s = member(g, "every_s")) != NULL && get_seconds_ms(p, s, "every_s", &l->every_ms) &&
        l->every_ms < 1000) {
        perr(p, s, "every_s must be at least 1");
    }
    if ((s = member(g, "fport")) != NULL && get_int(p, s, "fport", 1, 223, &n)) {
        l->fport = (int)n;
    }
    if ((s = member(g, "fcnt")) != NULL && get_int(p, s, "fcnt", 0, UINT32_MAX, &n)) {
        l->fcnt_init = (uint32_t)n;
    }
    if ((s = member(g, "sf")) != NULL && get_int(p, s, "sf", 7, 12, &n)) {
        l->sf = (int)n;
    }
    if ((s = member(g, "rssi")) != NULL && get_number(p, s, "rssi", &l->rssi) &&
        !(l->rssi >= -150.0 && l->rssi <= 0.0)) {
        perr(p, s, "rssi must be -150..0 dBm");
    }
    if ((s = member(g, "snr")) != NULL && get_number(p, s, "snr", &l->snr) &&
        !(l->snr >= -30.0 && l->snr <= 20.0)) {
        perr(p, s, "snr must be -30..20 dB");
    }
    if ((s = member(g, "battery")) != NULL && get_int(p, s, "battery", 0, 100, &n)) {
        d->init.battery = (int)n;
    }
    if ((s = member(g, "smoke")) != NULL) {
        get_bool(p, s, "smoke", &d->init.smoke);
    }
    if ((s = member(g, "state")) != NULL) {
        int st = get_enum(p, s, "state", door_names, NELEM(door_names));
        d->init.door = st >= 0 ? (enum gw_sim_door_state)st : GW_SIM_DOOR_CLOSED;
    }
    if ((s = member(g, "payload")) != NULL) {
        get_payload(p, s, d->init.payload, &d->init.payload_len);
    }
    if (!sc->lora.present) {
        perr(p, g,
             "device %s: a LoRa device needs a lora = { forward_to = ...; forwarders = "
             "( ... ); } section",
             name);
    } else if ((s = member(g, "heard_by")) != NULL) {
        parse_heard_by(p, sc, s, l);
    } else {
        l->heard_by = (1u << sc->lora.nforwarders) - 1; /* every forwarder */
    }
}

static void parse_lora(struct parser *p, struct gw_scenario *sc, const config_setting_t *s)
{
    static const char *const lora_keys[] = {"forward_to",      "forwarders",  "protocol_version",
                                            "stat_interval_s", "keepalive_s", NULL};
    static const char *const fwd_keys[] = {"eui", "rssi_offset", "snr_offset", NULL};
    struct gw_sim_lora *l = &sc->lora;
    if (!config_setting_is_group(s)) {
        perr(p, s,
             "lora must be a group { forward_to = \"127.0.0.1:1700\"; forwarders = ( ... ); }");
        return;
    }
    l->present = true;
    check_keys(p, s, "lora", lora_keys, NULL);
    const config_setting_t *e;
    const char *v;
    if ((e = member(s, "forward_to")) != NULL && (v = get_string(p, e, "forward_to")) != NULL) {
        char *host = NULL;
        int port = 0;
        if (gw_sim_parse_listen(v, &host, &port) < 0 || port == 0) {
            perr(p, e, "forward_to must be \"IPv4:PORT\" like \"127.0.0.1:1700\", not '%s'", v);
            free(host);
        } else {
            free(l->forward_host);
            l->forward_host = host;
            l->forward_port = port;
        }
    }
    long long n;
    if ((e = member(s, "protocol_version")) != NULL &&
        get_int(p, e, "protocol_version", 1, 2, &n)) {
        l->version = (int)n;
    }
    if ((e = member(s, "stat_interval_s")) != NULL &&
        get_seconds_ms(p, e, "stat_interval_s", &l->stat_ms) && l->stat_ms < 1000) {
        perr(p, e, "stat_interval_s must be at least 1");
    }
    if ((e = member(s, "keepalive_s")) != NULL &&
        get_seconds_ms(p, e, "keepalive_s", &l->keepalive_ms) && l->keepalive_ms < 1000) {
        perr(p, e, "keepalive_s must be at least 1");
    }
    if ((e = member(s, "forwarders")) == NULL) {
        perr(p, s, "lora: forwarders = ( { eui = \"AA555A0000000001\"; } ); is required");
        return;
    }
    if (!config_setting_is_list(e)) {
        perr(p, e, "forwarders must be a list ( { eui = ...; }, ... )");
        return;
    }
    int count = config_setting_length(e);
    if (count == 0 || count > GW_SIM_MAX_FORWARDERS) {
        perr(p, e, "forwarders must have 1..%d entries, not %d", GW_SIM_MAX_FORWARDERS, count);
        return;
    }
    for (int i = 0; i < count; i++) {
        const config_setting_t *g = config_setting_get_elem(e, (unsigned)i);
        struct gw_sim_forwarder *f = &l->fwd[i];
        f->line = (int)config_setting_source_line(g);
        if (!config_setting_is_group(g)) {
            perr(p, g, "a forwarder must be a group { eui = \"AA555A0000000001\"; }");
            continue;
        }
        check_keys(p, g, "forwarder", fwd_keys, NULL);
        const config_setting_t *k;
        if ((k = member(g, "eui")) == NULL) {
            perr(p, g, "forwarder %d: eui is required (16 hex digits)", i);
        } else if ((v = get_string(p, k, "eui")) != NULL) {
            if (gw_sim_parse_eui(v, &f->eui) < 0) {
                perr(p, k, "eui must be 16 hex digits like \"AA555A0000000001\", not '%s'", v);
            }
            for (int j = 0; j < i; j++) {
                if (l->fwd[j].eui == f->eui && f->eui != 0) {
                    perr(p, k, "eui %s is already used by forwarder %d (line %d)", v, j,
                         l->fwd[j].line);
                }
            }
        }
        if ((k = member(g, "rssi_offset")) != NULL &&
            get_number(p, k, "rssi_offset", &f->rssi_offset) &&
            !(f->rssi_offset >= -50.0 && f->rssi_offset <= 50.0)) {
            perr(p, k, "rssi_offset must be -50..50 dB");
        }
        if ((k = member(g, "snr_offset")) != NULL &&
            get_number(p, k, "snr_offset", &f->snr_offset) &&
            !(f->snr_offset >= -30.0 && f->snr_offset <= 30.0)) {
            perr(p, k, "snr_offset must be -30..30 dB");
        }
    }
    l->nforwarders = count;
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
    int type = -1;
    if ((s = member(g, "type")) == NULL) {
        perr(p, g,
             "device %s: type is required (hydrant_4_20 | door | registers | smoke | door_lora | "
             "raw_lora)",
             name ? name : "?");
    } else {
        type = get_enum(p, s, "type", type_names, NELEM(type_names));
    }
    long long unit;
    if (type >= 0 && gw_sim_type_is_lora((enum gw_sim_type)type)) {
        /* no unit id: check_keys below says unit_id does not apply */
    } else if ((s = member(g, "unit_id")) == NULL) {
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
    if (type < 0) {
        check_keys(p, g, "device", common_dev_keys, any_dev_keys);
        return;
    }
    d->type = (enum gw_sim_type)type;
    static const char *const *const keys_of[] = {hydrant_keys, door_keys,      registers_keys,
                                                 smoke_keys,   door_lora_keys, raw_lora_keys};
    check_keys(p, g, type_names[type], keys_of[type], any_dev_keys);
    if ((s = member(g, "fault")) != NULL) {
        get_fault(p, s, d->type, true, &d->init.fault);
    }
    if (gw_sim_type_is_lora(d->type)) {
        parse_lora_device(p, sc, g, d);
        return;
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
    static const char *const event_keys[] = {"at_s",  "device",  "pressure", "state",    "battery",
                                             "fault", "holding", "input",    "discrete", "coils",
                                             "smoke", "test",    "payload",  NULL};
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
        if (d->type != GW_SIM_DOOR && d->type != GW_SIM_DOOR_LORA) {
            perr(p, s, "state applies to door and door_lora devices; '%s' is a %s", d->name,
                 type_names[d->type]);
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
        if (d->type != GW_SIM_DOOR && d->type != GW_SIM_DOOR_LORA && d->type != GW_SIM_SMOKE) {
            perr(p, s, "battery applies to door, smoke and door_lora devices; '%s' is a %s",
                 d->name, type_names[d->type]);
        } else if (get_int(p, s, "battery", 0, 100, &b)) {
            ev->battery = (int)b;
            ev->set |= GW_SIM_SET_BATTERY;
        }
    }
    if ((s = member(g, "smoke")) != NULL) {
        if (d->type != GW_SIM_SMOKE) {
            perr(p, s, "smoke applies to smoke devices; '%s' is a %s", d->name,
                 type_names[d->type]);
        } else if (get_bool(p, s, "smoke", &ev->smoke)) {
            ev->set |= GW_SIM_SET_SMOKE;
        }
    }
    if ((s = member(g, "test")) != NULL) {
        bool t = false;
        if (d->type != GW_SIM_SMOKE) {
            perr(p, s, "test applies to smoke devices; '%s' is a %s", d->name, type_names[d->type]);
        } else if (get_bool(p, s, "test", &t) && !t) {
            perr(p, s, "test must be true (it presses the test button once)");
        } else if (t) {
            ev->set |= GW_SIM_SET_TEST;
        }
    }
    if ((s = member(g, "payload")) != NULL) {
        if (d->type != GW_SIM_RAW_LORA) {
            perr(p, s, "payload applies to raw_lora devices; '%s' is a %s", d->name,
                 type_names[d->type]);
        } else if (get_payload(p, s, ev->payload, &ev->payload_len)) {
            ev->set |= GW_SIM_SET_PAYLOAD;
        }
    }
    if ((s = member(g, "fault")) != NULL && get_fault(p, s, d->type, false, &ev->fault)) {
        ev->set |= GW_SIM_SET_FAULT;
    }
    for (int t = 0; t < GW_SIM_NTABLES; t++) {
        if ((s = member(g, table_names[t])) != NULL) {
            parse_write(p, s, (enum gw_sim_table)t, d, &ev->writes[ev->nwrites++]);
        }
    }
    static const char *const action_keys[] = {"pressure", "state", "battery", "fault",
                                              "holding",  "input", "coils",   "discrete",
                                              "smoke",    "test",  "payload"};
    bool any = false;
    for (int i = 0; i < NELEM(action_keys); i++) {
        any = any || member(g, action_keys[i]) != NULL;
    }
    if (!any) {
        perr(p, g,
             "script event changes nothing (give pressure, state, battery, smoke, test, payload, "
             "fault or a register write)");
    }
}

static void parse_root(struct parser *p, struct gw_scenario *sc, const config_setting_t *root)
{
    static const char *const root_keys[] = {"name",     "modbus", "devices", "script",
                                            "repeat_s", "seed",   "lora",    NULL};
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
    if ((s = member(root, "lora")) != NULL) {
        parse_lora(p, sc, s); /* first: LoRa devices name its forwarders */
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
    sc->lora.version = 2;
    sc->lora.stat_ms = GW_SIM_LORA_STAT_MS;
    sc->lora.keepalive_ms = GW_SIM_LORA_KEEPALIVE_MS;
    sc->lora.forward_port = 1700;
    sc->lora.forward_host = strdup("127.0.0.1");
    sc->path = strdup(name);
    sc->listen_host = strdup(GW_SIM_LISTEN_DEFAULT_HOST);
    if (sc->path == NULL || sc->listen_host == NULL || sc->lora.forward_host == NULL) {
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
    free(sc->lora.forward_host);
    free(sc);
}

/* ---- running ----------------------------------------------------------------------------- */

/*
 * Back to the state in `devices`. A LoRa device keeps counting FCnt and its
 * timing (it did not reboot: a gateway would take frames from a lower FCnt
 * as replays); its pending one-shot actions are dropped.
 */
static void reset_device(struct gw_sim_device *d)
{
    d->cur = d->init;
    if (d->type == GW_SIM_REGISTERS) {
        tables_copy(&d->tables, &d->init_tables);
    } else if (gw_sim_type_is_lora(d->type)) {
        d->lora.send_now = false;
        d->lora.test = false;
        d->lora.bad_mic = false;
        d->lora.replay = false;
    } else {
        derive_tables(d, NULL);
    }
}

/* Devices send their first frame shortly after start, one after another. */
#define LORA_FIRST_MS 1000
#define LORA_STAGGER_MS 700

void gw_scenario_start(struct gw_scenario *sc, uint64_t seed)
{
    sc->next_event = 0;
    sc->cycle = 0;
    sc->rng = seed;
    sc->lora.rng = seed ^ 0x4C6F526157414E21ULL; /* "LoRaWAN!" */
    sc->lora.next_pull_ms = 0;                   /* a forwarder pulls at once on start */
    sc->lora.next_stat_ms = sc->lora.stat_ms;
    int k = 0;
    for (int i = 0; i < sc->ndevices; i++) {
        struct gw_sim_device *d = &sc->devices[i];
        reset_device(d);
        d->requests = 0;
        if (gw_sim_type_is_lora(d->type)) {
            d->lora.fcnt = d->lora.fcnt_init;
            d->lora.last_len = 0;
            d->lora.uplinks = 0;
            int64_t first = LORA_FIRST_MS + (int64_t)LORA_STAGGER_MS * k++;
            d->lora.next_ms = first < d->lora.every_ms ? first : d->lora.every_ms;
        }
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

/* What a script event makes a LoRa device send: every change is reported at once. */
static void lora_event(struct gw_sim_device *d, const struct gw_sim_event *ev, struct line *l)
{
    struct gw_sim_lora_dev *lo = &d->lora;
    bool change = (ev->set & (GW_SIM_SET_DOOR | GW_SIM_SET_BATTERY | GW_SIM_SET_SMOKE |
                              GW_SIM_SET_TEST | GW_SIM_SET_PAYLOAD)) != 0;
    if (ev->set & GW_SIM_SET_TEST) {
        lo->test = true;
    }
    if (ev->set & GW_SIM_SET_FAULT) {
        switch (ev->fault) {
        case GW_SIM_FAULT_REPLAY:
            if (lo->last_len == 0) {
                add(l, " (nothing sent yet: nothing to replay)");
            } else {
                lo->replay = true;
            }
            break;
        case GW_SIM_FAULT_BAD_MIC:
            lo->bad_mic = true;
            change = true;
            break;
        case GW_SIM_FAULT_FCNT_RESET:
            lo->fcnt = 0;
            change = true;
            break;
        default:
            break;
        }
    }
    if (change) {
        lo->send_now = true;
    }
    if (change && d->cur.fault == GW_SIM_FAULT_SILENT) {
        add(l, " (silent: not sent)");
    }
}

static void apply_event(struct gw_scenario *sc, const struct gw_sim_event *ev, int64_t at_ms,
                        gw_scenario_line_cb cb, void *ud)
{
    struct gw_sim_device *d = &sc->devices[ev->device];
    struct line l = {.len = 0};
    char t[32];
    fmt_time(t, sizeof(t), at_ms);
    if (gw_sim_type_is_lora(d->type)) {
        add(&l, "t=%s %s %s dev_addr=%08X", t, type_names[d->type], d->name,
            (unsigned)d->lora.dev_addr);
    } else {
        add(&l, "t=%s %s %s unit=%d", t,
            d->type == GW_SIM_HYDRANT ? "hydrant" : type_names[d->type], d->name, d->unit_id);
    }
    if (ev->set & GW_SIM_SET_FAULT) {
        if (!is_one_shot(ev->fault)) {
            d->cur.fault = ev->fault;
        }
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
    if (ev->set & GW_SIM_SET_SMOKE) {
        d->cur.smoke = ev->smoke;
        add_item_sep(&l);
        add(&l, "smoke -> %s", ev->smoke ? "true" : "false");
    }
    if (ev->set & GW_SIM_SET_TEST) {
        add_item_sep(&l);
        add(&l, "test button pressed");
    }
    if (ev->set & GW_SIM_SET_PAYLOAD) {
        memcpy(d->cur.payload, ev->payload, ev->payload_len);
        d->cur.payload_len = ev->payload_len;
        add_item_sep(&l);
        add(&l, "payload -> ");
        for (size_t k = 0; k < ev->payload_len && k < 32; k++) {
            add(&l, "%02x", ev->payload[k]);
        }
        if (ev->payload_len > 32) {
            add(&l, "...");
        }
    }
    if (gw_sim_type_is_lora(d->type)) {
        lora_event(d, ev, &l);
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
            struct gw_sim_device *d = &sc->devices[i];
            if (!gw_sim_type_is_lora(d->type)) {
                reset_device(d);
                continue;
            }
            /* A LoRa device whose state the reset changes reports it, as after any change. */
            uint8_t before[LW_MAX_PAYLOAD], after[LW_MAX_PAYLOAD];
            size_t nb = gw_sim_lora_payload(d, false, before);
            reset_device(d);
            size_t na = gw_sim_lora_payload(d, false, after);
            d->lora.send_now = nb != na || memcmp(before, after, na) != 0;
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
