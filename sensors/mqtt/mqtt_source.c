/*
 * MQTT sources, the pure part (see mqtt_source.h). Hostile input is the
 * normal case here: anything may be published on a hub topic, so every
 * payload is size-checked, parsed by jansson (its depth limit guards the
 * stack), and every node is type-checked before use.
 */
#include "mqtt/mqtt_source.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codecs/codec.h"
#include "mqtt/mqtt_topic.h"
#include "timefmt.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

/* ---- JSON paths and values ---------------------------------------------- */

const json_t *gw_json_path_get(const json_t *root, const char *path)
{
    if (!root || !path) {
        return NULL;
    }
    const json_t *node = root;
    const char *p = path;
    for (;;) {
        size_t n = strcspn(p, ".");
        if (json_is_object(node)) {
            char key[256];
            if (n >= sizeof(key)) {
                return NULL;
            }
            memcpy(key, p, n);
            key[n] = '\0';
            node = json_object_get(node, key);
        } else if (json_is_array(node)) {
            if (n == 0 || n > 9 || strspn(p, "0123456789") < n) {
                return NULL;
            }
            size_t idx = 0;
            for (size_t i = 0; i < n; i++) {
                idx = idx * 10 + (size_t)(p[i] - '0');
            }
            node = json_array_get(node, idx);
        } else {
            return NULL; /* a scalar has no levels below it */
        }
        if (!node || p[n] == '\0') {
            return node;
        }
        p += n + 1;
    }
}

static bool set_string(struct gw_value *out, const char *s)
{
    size_t n = strlen(s);
    if (n >= sizeof(out->str)) {
        return false;
    }
    out->type = GW_VALUE_STRING;
    memcpy(out->str, s, n + 1);
    return true;
}

static void set_bool(struct gw_value *out, bool b)
{
    out->type = GW_VALUE_BOOL;
    out->b = b;
    out->num = b ? 1 : 0;
}

/* A whole string that is a finite number ("21.5"), as some bridges send them. */
static bool parse_number(const char *s, double *out)
{
    if (!*s || strlen(s) > 64) {
        return false;
    }
    char *end = NULL;
    errno = 0;
    double d = strtod(s, &end);
    if (errno != 0 || !end || *end != '\0' || !isfinite(d)) {
        return false;
    }
    *out = d;
    return true;
}

static bool bool_word(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "on", "yes", "1"};
    static const char *const no[] = {"false", "off", "no", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static enum gw_point_fault convert_enum(const struct gw_json_value_cfg *v, const json_t *node,
                                        struct gw_value *out)
{
    long idx = -1;
    if (json_is_boolean(node)) {
        idx = json_is_true(node) ? 1 : 0;
    } else if (json_is_number(node)) {
        double d = json_number_value(node);
        if (d >= 0 && d < (double)v->nenum && d == floor(d)) {
            idx = (long)d;
        }
    } else if (json_is_string(node)) {
        for (int i = 0; i < v->nenum; i++) {
            if (v->enum_labels[i] && strcmp(v->enum_labels[i], json_string_value(node)) == 0) {
                idx = i;
                break;
            }
        }
    }
    if (idx < 0 || idx >= v->nenum || !v->enum_labels[idx]) {
        return GW_FAULT_INVALID;
    }
    return set_string(out, v->enum_labels[idx]) ? GW_FAULT_NONE : GW_FAULT_INVALID;
}

enum gw_point_fault gw_json_convert(const struct gw_json_value_cfg *v, const json_t *node,
                                    struct gw_value *out)
{
    memset(out, 0, sizeof(*out));
    if (!v || !node || json_is_null(node) || json_is_object(node) || json_is_array(node)) {
        return GW_FAULT_INVALID;
    }
    if (v->nenum > 0) {
        return convert_enum(v, node, out);
    }
    bool scaled = v->scale != 1 || v->offset != 0;
    double d;
    bool b;
    switch (v->type) {
    case GW_JSON_ANY:
        if (json_is_number(node)) {
            d = json_number_value(node);
            break;
        }
        if (scaled) {
            return GW_FAULT_INVALID; /* scale/offset promise a number */
        }
        if (json_is_boolean(node)) {
            set_bool(out, json_is_true(node));
            return GW_FAULT_NONE;
        }
        return set_string(out, json_string_value(node)) ? GW_FAULT_NONE : GW_FAULT_INVALID;
    case GW_JSON_NUMBER:
        if (json_is_number(node)) {
            d = json_number_value(node);
        } else if (!json_is_string(node) || !parse_number(json_string_value(node), &d)) {
            return GW_FAULT_INVALID;
        }
        break;
    case GW_JSON_BOOL:
        if (json_is_boolean(node)) {
            set_bool(out, json_is_true(node));
            return GW_FAULT_NONE;
        }
        if (json_is_number(node) &&
            (json_number_value(node) == 0 || json_number_value(node) == 1)) {
            set_bool(out, json_number_value(node) == 1);
            return GW_FAULT_NONE;
        }
        if (json_is_string(node) && bool_word(json_string_value(node), &b)) {
            set_bool(out, b);
            return GW_FAULT_NONE;
        }
        return GW_FAULT_INVALID;
    case GW_JSON_STRING:
        if (!json_is_string(node)) {
            return GW_FAULT_INVALID;
        }
        return set_string(out, json_string_value(node)) ? GW_FAULT_NONE : GW_FAULT_INVALID;
    default:
        return GW_FAULT_INVALID;
    }
    d = d * v->scale + v->offset;
    if (!isfinite(d)) {
        return GW_FAULT_INVALID;
    }
    out->type = GW_VALUE_NUMBER;
    out->num = d;
    return GW_FAULT_NONE;
}

int gw_json_extract(const struct gw_json_value_cfg *values, int n, const json_t *root,
                    struct gw_reading *out)
{
    for (int i = 0; i < n; i++) {
        if (out->npoints >= GW_MAX_POINTS) {
            return -E2BIG;
        }
        const struct gw_json_value_cfg *v = &values[i];
        struct gw_point_value *pt = &out->points[out->npoints++];
        memset(pt, 0, sizeof(*pt));
        snprintf(pt->name, sizeof(pt->name), "%s", v->name ? v->name : "?");
        pt->fault =
            gw_json_convert(v, v->path ? gw_json_path_get(root, v->path) : NULL, &pt->value);
        if (pt->fault != GW_FAULT_NONE) {
            pt->value.type = GW_VALUE_NONE;
        }
    }
    return 0;
}

/* ---- base64 ------------------------------------------------------------- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

int gw_base64_decode(const char *in, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t total = strlen(in);
    size_t n = total;
    while (n > 0 && in[n - 1] == '=') {
        n--;
    }
    size_t pads = total - n;
    if (pads > 2 || n % 4 == 1 || (pads > 0 && total % 4 != 0)) {
        return -EINVAL;
    }
    size_t len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (len > cap) {
        return -E2BIG;
    }
    uint32_t acc = 0;
    int bits = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            return -EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[w++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *outlen = w;
    return 0;
}

/* ---- ChirpStack v4 uplink events ---------------------------------------- */

/* An integer in [min, max] held as a JSON number (ints arrive as reals). */
static bool json_int_in(const json_t *n, double min, double max, double *out)
{
    if (!json_is_number(n)) {
        return false;
    }
    double d = json_number_value(n);
    if (d < min || d > max || d != floor(d)) {
        return false;
    }
    *out = d;
    return true;
}

int gw_chirpstack_parse_up(const json_t *root, struct gw_chirpstack_up *up, char *err,
                           size_t errlen)
{
    memset(up, 0, sizeof(*up));
    up->fport = -1;
    const json_t *eui = gw_json_path_get(root, "deviceInfo.devEui");
    if (!json_is_string(eui)) {
        seterr(err, errlen,
               "no deviceInfo.devEui: not a ChirpStack v4 uplink event (the MQTT integration "
               "must send JSON, not Protobuf)");
        return -EINVAL;
    }
    const char *e = json_string_value(eui);
    size_t n = strlen(e);
    bool hex = n == 16;
    for (size_t i = 0; hex && i < n; i++) {
        hex = strchr("0123456789abcdefABCDEF", e[i]) != NULL;
    }
    if (!hex) {
        seterr(err, errlen, "deviceInfo.devEui \"%.40s\" is not 16 hex digits", e);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        up->dev_eui[i] = (char)(e[i] >= 'A' && e[i] <= 'F' ? e[i] - 'A' + 'a' : e[i]);
    }
    double d;
    const json_t *fport = json_object_get(root, "fPort");
    if (fport && !json_is_null(fport)) {
        if (!json_int_in(fport, 0, 255, &d)) {
            seterr(err, errlen, "fPort is not an integer 0..255");
            return -EINVAL;
        }
        up->fport = (int)d;
    }
    const json_t *fcnt = json_object_get(root, "fCnt");
    if (fcnt && !json_is_null(fcnt)) {
        if (!json_int_in(fcnt, 0, 4294967295.0, &d)) {
            seterr(err, errlen, "fCnt is not an integer 0..4294967295");
            return -EINVAL;
        }
        up->has_fcnt = true;
        up->fcnt = (uint32_t)d;
    }
    const json_t *t = json_object_get(root, "time");
    if (json_is_string(t) && gw_parse_rfc3339(json_string_value(t), &up->time_ms) == 0) {
        up->has_time = true; /* a bad time is not worth a reading: the caller uses now */
    }
    const json_t *rx = json_object_get(root, "rxInfo");
    if (json_is_array(rx)) {
        size_t i;
        const json_t *g;
        json_array_foreach(rx, i, g)
        {
            if (!json_is_object(g)) {
                continue;
            }
            up->gateways++;
            const json_t *rssi = json_object_get(g, "rssi");
            const json_t *snr = json_object_get(g, "snr");
            if (json_is_number(rssi) && (!up->has_rssi || json_number_value(rssi) > up->rssi)) {
                up->has_rssi = true;
                up->rssi = json_number_value(rssi);
            }
            if (json_is_number(snr) && (!up->has_snr || json_number_value(snr) > up->snr)) {
                up->has_snr = true;
                up->snr = json_number_value(snr);
            }
        }
    }
    const json_t *data = json_object_get(root, "data");
    if (data && !json_is_null(data)) {
        if (!json_is_string(data)) {
            seterr(err, errlen, "data is not a base64 string");
            return -EINVAL;
        }
        int rc =
            gw_base64_decode(json_string_value(data), up->data, sizeof(up->data), &up->data_len);
        if (rc == -E2BIG) {
            seterr(err, errlen, "data is longer than a LoRaWAN payload (242 bytes)");
            return -EINVAL;
        }
        if (rc < 0) {
            seterr(err, errlen, "data is not valid base64");
            return -EINVAL;
        }
        up->has_data = up->data_len > 0;
    }
    const json_t *obj = json_object_get(root, "object");
    if (json_is_object(obj)) {
        up->object = obj;
    }
    return 0;
}

bool gw_chirpstack_other_event(const char *topic)
{
    static const char *const others[] = {"join",   "ack",      "txack",      "log",
                                         "status", "location", "integration"};
    const char *slash = strrchr(topic, '/');
    const char *last = slash ? slash + 1 : topic;
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        if (strcmp(last, others[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- the router ---------------------------------------------------------- */

struct source {
    int sensor_index;
    const struct gw_sensor_cfg *sensor;
    const struct gw_profile_cfg *profile;
    struct gw_decoder *decoder; /* chirpstack with layout / cayenne_lpp / js */
};

struct filter {
    const char *filter;
    int nsources;
    int *sources;
};

struct gw_mqtt_router {
    int nsources;
    struct source *sources;
    int nfilters;
    struct filter *filters;
};

void gw_mqtt_router_free(struct gw_mqtt_router *r)
{
    if (!r) {
        return;
    }
    for (int i = 0; i < r->nsources && r->sources; i++) {
        gw_decoder_free(r->sources[i].decoder);
        r->sources[i].decoder = NULL;
    }
    free(r->sources);
    for (int i = 0; i < r->nfilters && r->filters; i++) {
        free(r->filters[i].sources);
    }
    free(r->filters);
    free(r);
}

static int add_to_filter(struct gw_mqtt_router *r, const char *topic, int source)
{
    struct filter *f = NULL;
    for (int i = 0; i < r->nfilters && !f; i++) {
        if (strcmp(r->filters[i].filter, topic) == 0) {
            f = &r->filters[i];
        }
    }
    if (!f) {
        f = &r->filters[r->nfilters++];
        f->filter = topic;
    }
    int *s = realloc(f->sources, (size_t)(f->nsources + 1) * sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    f->sources = s;
    f->sources[f->nsources++] = source;
    return 0;
}

struct gw_mqtt_router *gw_mqtt_router_new(const struct gw_config *cfg, char *err, size_t errlen)
{
    struct gw_mqtt_router *r = calloc(1, sizeof(*r));
    size_t n = cfg->nsensors > 0 ? (size_t)cfg->nsensors : 1;
    if (!r || !(r->sources = calloc(n, sizeof(*r->sources))) ||
        !(r->filters = calloc(n, sizeof(*r->filters)))) {
        seterr(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < cfg->nsensors; i++) {
        const struct gw_sensor_cfg *s = &cfg->sensors[i];
        if (!s->mqtt.enabled || !s->mqtt.topic || !s->id || s->profile_index < 0 ||
            s->profile_index >= cfg->nprofiles) {
            continue;
        }
        struct source *src = &r->sources[r->nsources];
        src->sensor_index = i;
        src->sensor = s;
        src->profile = &cfg->profiles[s->profile_index];
        if (s->mqtt.format == GW_MQTT_CHIRPSTACK && src->profile->codec != GW_CODEC_JSON) {
            char msg[200];
            msg[0] = '\0';
            src->decoder = gw_decoder_new(src->profile, msg, sizeof(msg));
            if (!src->decoder) {
                seterr(err, errlen, "sensor %s: %s", s->id, msg);
                goto fail;
            }
        }
        r->nsources++;
        if (add_to_filter(r, s->mqtt.topic, r->nsources - 1) < 0) {
            seterr(err, errlen, "out of memory");
            goto fail;
        }
    }
    return r;
fail:
    gw_mqtt_router_free(r);
    return NULL;
}

int gw_mqtt_router_nfilters(const struct gw_mqtt_router *r)
{
    return r->nfilters;
}

const char *gw_mqtt_router_filter(const struct gw_mqtt_router *r, int i)
{
    return i >= 0 && i < r->nfilters ? r->filters[i].filter : NULL;
}

int gw_mqtt_router_nsources(const struct gw_mqtt_router *r)
{
    return r->nsources;
}

const char *gw_mqtt_router_sensor(const struct gw_mqtt_router *r, int source)
{
    return source >= 0 && source < r->nsources ? r->sources[source].sensor->id : NULL;
}

/* One message being handled: who may claim it, and what came of it. */
struct msg {
    struct gw_mqtt_router *r;
    const char *topic;
    int64_t now_ms;
    const struct gw_mqtt_handler *h;
    struct gw_mqtt_result *res;
    int first_filter;
    int ncand;
    int *cand; /* source indexes */
};

static void reject(struct msg *m, int source, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reject(struct msg *m, int source, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    m->res->rejected++;
    if (m->h && m->h->rejected) {
        m->h->rejected(m->h->ctx, source, m->first_filter, m->topic, why);
    }
}

static void ignore(struct msg *m, const char *why)
{
    if (!m->res->ignored_why[0]) {
        snprintf(m->res->ignored_why, sizeof(m->res->ignored_why), "%s", why);
    }
}

static void start_reading(const struct source *src, int64_t ts_ms, struct gw_reading *out)
{
    memset(out, 0, sizeof(*out));
    out->sensor_index = src->sensor_index;
    snprintf(out->sensor, sizeof(out->sensor), "%s", src->sensor->id);
    out->ts_ms = ts_ms;
    out->status = GW_READING_OK;
}

static void emit(struct msg *m, int source, const struct gw_reading *rd)
{
    m->res->readings++;
    if (m->h && m->h->reading) {
        m->h->reading(m->h->ctx, source, rd);
    }
}

static void read_json(struct msg *m, int source, const json_t *root)
{
    const struct source *src = &m->r->sources[source];
    struct gw_reading rd;
    start_reading(src, m->now_ms, &rd);
    gw_json_extract(src->profile->values, src->profile->nvalues, root, &rd);
    emit(m, source, &rd);
}

static void read_chirpstack(struct msg *m, int source, const struct gw_chirpstack_up *up)
{
    const struct source *src = &m->r->sources[source];
    int64_t ts = m->now_ms;
    if (up->has_time && llabs(up->time_ms - m->now_ms) <= GW_MQTT_MAX_CLOCK_SKEW_MS) {
        ts = up->time_ms;
    }
    struct gw_reading rd;
    start_reading(src, ts, &rd);
    rd.has_rssi = up->has_rssi;
    rd.rssi = up->rssi;
    rd.has_snr = up->has_snr;
    rd.snr = up->snr;
    rd.forwarders = up->gateways;
    rd.has_fcnt = up->has_fcnt;
    rd.fcnt = up->fcnt;
    if (!src->decoder) {
        if (!up->object) {
            reject(m, source,
                   "the event has no decoded object (give the device profile a codec in "
                   "ChirpStack, or decode data here with a layout, cayenne_lpp or js profile)");
            return;
        }
        gw_json_extract(src->profile->values, src->profile->nvalues, up->object, &rd);
        emit(m, source, &rd);
        return;
    }
    if (!up->has_data) {
        ignore(m, "an uplink without application payload");
        return;
    }
    char err[GW_ERR_MAX];
    err[0] = '\0';
    int rc = gw_decoder_run(src->decoder, up->data, up->data_len, up->fport < 0 ? 0 : up->fport,
                            &rd, err, sizeof(err));
    if (rc < 0) {
        reject(m, source, "data does not decode: %s", err[0] ? err : strerror(-rc));
        return;
    }
    emit(m, source, &rd);
}

static void route_chirpstack(struct msg *m, const json_t *root, const int *chirp, int nchirp)
{
    if (gw_chirpstack_other_event(m->topic)) {
        ignore(m, "a ChirpStack event other than an uplink");
        return;
    }
    struct gw_chirpstack_up *up = malloc(sizeof(*up));
    if (!up) {
        reject(m, nchirp == 1 ? chirp[0] : -1, "out of memory");
        return;
    }
    char err[GW_ERR_MAX];
    if (gw_chirpstack_parse_up(root, up, err, sizeof(err)) < 0) {
        /* the devEui comes first: a bad event of a known device is that sensor's fault */
        int whose = nchirp == 1 ? chirp[0] : -1;
        for (int i = 0; i < nchirp && up->dev_eui[0]; i++) {
            if (strcmp(m->r->sources[chirp[i]].sensor->mqtt.dev_eui, up->dev_eui) == 0) {
                whose = chirp[i];
            }
        }
        reject(m, whose, "%s", err);
        free(up);
        return;
    }
    /* The device's own sensor first; else one that takes any device on its exact topic. */
    int claimed = 0;
    for (int i = 0; i < nchirp; i++) {
        if (strcmp(m->r->sources[chirp[i]].sensor->mqtt.dev_eui, up->dev_eui) == 0) {
            read_chirpstack(m, chirp[i], up);
            claimed++;
        }
    }
    for (int i = 0; i < nchirp && claimed == 0; i++) {
        if (!m->r->sources[chirp[i]].sensor->mqtt.dev_eui[0]) {
            read_chirpstack(m, chirp[i], up);
            claimed++;
        }
    }
    for (int i = 0; i < nchirp && claimed == 0; i++) {
        const struct gw_sensor_mqtt_cfg *q = &m->r->sources[chirp[i]].sensor->mqtt;
        if (!q->wildcard) {
            /* its own topic, another device: a misconfigured bridge, worth saying */
            reject(m, chirp[i], "devEui %s is not the configured %s", up->dev_eui, q->dev_eui);
            claimed++;
        }
    }
    if (claimed == 0) {
        ignore(m, "an uplink of a device no sensor has as dev_eui");
    }
    free(up);
}

void gw_mqtt_router_handle(struct gw_mqtt_router *r, const char *topic, const void *payload,
                           size_t len, int64_t now_ms, const struct gw_mqtt_handler *h,
                           struct gw_mqtt_result *res)
{
    memset(res, 0, sizeof(*res));
    struct msg m = {.r = r, .topic = topic ? topic : "", .now_ms = now_ms, .h = h, .res = res};
    m.first_filter = -1;
    m.cand = r->nsources > 0 ? calloc((size_t)r->nsources, sizeof(*m.cand)) : NULL;
    if (!m.cand) {
        ignore(&m, r->nsources > 0 ? "out of memory" : "no MQTT sensors");
        res->ignored = true;
        return;
    }
    for (int i = 0; i < r->nfilters; i++) {
        if (!gw_mqtt_topic_matches(r->filters[i].filter, m.topic)) {
            continue;
        }
        if (m.first_filter < 0) {
            m.first_filter = i;
        }
        for (int k = 0; k < r->filters[i].nsources; k++) {
            m.cand[m.ncand++] = r->filters[i].sources[k];
        }
    }
    int sole = m.ncand == 1 ? m.cand[0] : -1;
    json_t *root = NULL;
    if (m.ncand == 0) {
        ignore(&m, "no sensor reads this topic");
    } else if (!payload || len == 0) {
        reject(&m, sole, "empty payload");
    } else if (len > GW_MQTT_MAX_PAYLOAD) {
        reject(&m, sole, "payload of %zu bytes is larger than %d", len, GW_MQTT_MAX_PAYLOAD);
    } else {
        json_error_t e;
        root = json_loadb(payload, len, JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY, &e);
        if (!root) {
            reject(&m, sole, "not JSON: %s (byte %d)", e.text, e.position);
        } else if (!json_is_object(root)) {
            reject(&m, sole, "not a JSON object");
        } else {
            int nchirp = 0;
            for (int i = 0; i < m.ncand; i++) {
                const struct source *src = &r->sources[m.cand[i]];
                if (src->sensor->mqtt.format == GW_MQTT_JSON) {
                    read_json(&m, m.cand[i], root);
                } else {
                    m.cand[nchirp++] = m.cand[i]; /* compacted in place: i >= nchirp */
                }
            }
            if (nchirp > 0) {
                route_chirpstack(&m, root, m.cand, nchirp);
            }
        }
    }
    json_decref(root);
    free(m.cand);
    res->ignored = res->readings == 0 && res->rejected == 0;
    if (!res->ignored) {
        res->ignored_why[0] = '\0';
    }
}
