/*
 * libconfig -> validated structs. Every section has one table of its keys and
 * their types; check_members() rejects unknown keys and wrong types in one
 * place, the section parsers then read values, apply defaults and check
 * ranges, and the cross-reference pass (profiles, buses, schedules, sensors,
 * rule points) runs last. Every problem is collected with its file:line and
 * printed sorted by line, so an operator fixes a file in one go.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codecs/codec.h"
#include "lora/lorawan.h"
#include "mqtt/mqtt_topic.h"

#define PATH_LEN 256
#define SECRET_MAX 4096
#define ALARM_MAX_ON_DELAY_S 5
#define DAY_MAX_S 86400

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- messages ---------------------------------------------------------- */

struct msg {
    char *file;
    int included; /* 0: the main file, 1: a file pulled in by @include */
    int line;
    int seq;
    bool warning;
    char *text;
};

struct parser {
    const char *path;
    struct gw_config *cfg;
    struct msg *msgs;
    int nmsgs;
    int cap;
    int nerrors;
};

static char *xvformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *xvformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (s) {
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    }
    return s;
}

static void vreport(struct parser *p, bool warning, const config_setting_t *at, const char *fmt,
                    va_list ap) __attribute__((format(printf, 4, 0)));

/* `at` gives the line; NULL or the root (line 0) means line 1 of the main file. */
static void vreport(struct parser *p, bool warning, const config_setting_t *at, const char *fmt,
                    va_list ap)
{
    if (!warning) {
        p->nerrors++;
    }
    if (p->nmsgs == p->cap) {
        int cap = p->cap ? p->cap * 2 : 16;
        struct msg *m = realloc(p->msgs, (size_t)cap * sizeof(*m));
        if (!m) {
            return; /* nerrors still counts it: the load fails */
        }
        p->msgs = m;
        p->cap = cap;
    }
    const char *file = at ? config_setting_source_file(at) : NULL;
    int line = at ? (int)config_setting_source_line(at) : 0;
    struct msg *m = &p->msgs[p->nmsgs];
    m->file = strdup(file ? file : p->path);
    m->included = file && strcmp(file, p->path) != 0;
    m->line = line > 0 ? line : 1;
    m->seq = p->nmsgs;
    m->warning = warning;
    m->text = xvformat(fmt, ap);
    if (!m->file || !m->text) {
        free(m->file);
        free(m->text);
        return;
    }
    p->nmsgs++;
}

static void err(struct parser *p, const config_setting_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err(struct parser *p, const config_setting_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(p, false, at, fmt, ap);
    va_end(ap);
}

static void warn(struct parser *p, const config_setting_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct parser *p, const config_setting_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(p, true, at, fmt, ap);
    va_end(ap);
}

/* The main file first, then included files; by line, then in the order found. */
static int msg_cmp(const void *a, const void *b)
{
    const struct msg *x = a;
    const struct msg *y = b;
    if (x->included != y->included) {
        return x->included - y->included;
    }
    int c = strcmp(x->file, y->file);
    if (c != 0) {
        return c;
    }
    if (x->line != y->line) {
        return x->line < y->line ? -1 : 1;
    }
    return x->seq - y->seq;
}

static void flush_msgs(struct parser *p, FILE *out)
{
    if (p->nmsgs > 1) {
        qsort(p->msgs, (size_t)p->nmsgs, sizeof(*p->msgs), msg_cmp);
    }
    for (int i = 0; i < p->nmsgs; i++) {
        struct msg *m = &p->msgs[i];
        if (out) {
            fprintf(out, "%s%s:%d: %s\n", m->warning ? "warning: " : "", m->file, m->line, m->text);
        }
        free(m->file);
        free(m->text);
    }
    free(p->msgs);
    p->msgs = NULL;
    p->nmsgs = p->cap = 0;
}

/* ---- key tables and typed getters -------------------------------------- */

enum ktype { K_STRING, K_INT, K_FLOAT, K_BOOL, K_GROUP, K_LIST, K_SCALAR, K_STRINGS, K_STRINGS0 };

struct key {
    const char *name;
    enum ktype type;
};

enum { OPTIONAL = 0, REQUIRED = 1 };

static const char *ktype_name(enum ktype t)
{
    switch (t) {
    case K_STRING:
        return "a string";
    case K_INT:
        return "an integer";
    case K_FLOAT:
        return "a number";
    case K_BOOL:
        return "true or false";
    case K_GROUP:
        return "a group { ... }";
    case K_LIST:
        return "a list ( ... )";
    case K_SCALAR:
        return "a number, true/false or a string";
    case K_STRINGS:
        return "an array of strings [ \"a\", \"b\" ]";
    case K_STRINGS0:
        return "an array of strings [ \"a\", \"b\" ] (or [ ])";
    }
    return "?";
}

static const char *ltype_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array [ ... ]";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "nothing";
    }
}

static bool type_ok(const config_setting_t *s, enum ktype t)
{
    int ty = config_setting_type(s);
    switch (t) {
    case K_STRING:
        return ty == CONFIG_TYPE_STRING;
    case K_INT:
        return ty == CONFIG_TYPE_INT || ty == CONFIG_TYPE_INT64;
    case K_FLOAT:
        return config_setting_is_number(s);
    case K_BOOL:
        return ty == CONFIG_TYPE_BOOL;
    case K_GROUP:
        return ty == CONFIG_TYPE_GROUP;
    case K_LIST:
        /* `()` and an empty `[]` both mean "none" */
        return ty == CONFIG_TYPE_LIST || (ty == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0);
    case K_SCALAR:
        return config_setting_is_scalar(s);
    case K_STRINGS:
        return ty == CONFIG_TYPE_ARRAY && config_setting_length(s) > 0 &&
               config_setting_type(config_setting_get_elem(s, 0)) == CONFIG_TYPE_STRING;
    case K_STRINGS0:
        return ty == CONFIG_TYPE_ARRAY &&
               (config_setting_length(s) == 0 ||
                config_setting_type(config_setting_get_elem(s, 0)) == CONFIG_TYPE_STRING);
    }
    return false;
}

/* Paths only name a place in messages: a truncated one (absurdly long names) is fine. */
static void child_path(char *out, size_t n, const char *path, const char *key)
{
    int w = path && *path ? snprintf(out, n, "%s.%s", path, key) : snprintf(out, n, "%s", key);
    if (w < 0) {
        out[0] = '\0';
    }
}

static void elem_path(char *out, size_t n, const char *path, int i)
{
    int w = snprintf(out, n, "%s[%d]", path, i);
    if (w < 0) {
        out[0] = '\0';
    }
}

static const struct key *find_key(const struct key *keys, size_t nkeys, const char *name)
{
    for (size_t i = 0; i < nkeys; i++) {
        if (strcmp(keys[i].name, name) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

/* Unknown keys and wrong types of group g, reported once here; getters then skip bad members. */
static void check_members(struct parser *p, const config_setting_t *g, const char *path,
                          const struct key *keys, size_t nkeys)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        char cp[PATH_LEN];
        child_path(cp, sizeof(cp), path, config_setting_name(m));
        const struct key *k = find_key(keys, nkeys, config_setting_name(m));
        if (!k) {
            err(p, m, "%s: unknown key", cp);
        } else if (!type_ok(m, k->type)) {
            err(p, m, "%s: expected %s, got %s", cp, ktype_name(k->type), ltype_name(m));
        }
    }
}

static const config_setting_t *get(const config_setting_t *g, const char *key, enum ktype t)
{
    const config_setting_t *m = config_setting_get_member(g, key);
    return m && type_ok(m, t) ? m : NULL;
}

static bool has(const config_setting_t *g, const char *key)
{
    return config_setting_get_member(g, key) != NULL;
}

static void missing(struct parser *p, const config_setting_t *g, const char *path, const char *key)
{
    if (path && *path) {
        err(p, g, "%s: missing required key \"%s\"", path, key);
    } else {
        err(p, g, "missing required key \"%s\"", key);
    }
}

/* Sets *out (replacing a default) and returns the member, or NULL when absent or bad. */
static const config_setting_t *get_str(struct parser *p, const config_setting_t *g,
                                       const char *path, const char *key, int flags, char **out)
{
    const config_setting_t *m = get(g, key, K_STRING);
    if (!m) {
        if ((flags & REQUIRED) && !has(g, key)) {
            missing(p, g, path, key);
        }
        return NULL;
    }
    const char *v = config_setting_get_string(m);
    if (!*v) {
        char cp[PATH_LEN];
        child_path(cp, sizeof(cp), path, key);
        err(p, m, "%s: must not be empty", cp);
        return NULL;
    }
    char *d = strdup(v);
    if (!d) {
        err(p, m, "out of memory");
        return NULL;
    }
    free(*out);
    *out = d;
    return m;
}

static const config_setting_t *get_int(struct parser *p, const config_setting_t *g,
                                       const char *path, const char *key, int flags, long min,
                                       long max, int *out)
{
    const config_setting_t *m = get(g, key, K_INT);
    if (!m) {
        if ((flags & REQUIRED) && !has(g, key)) {
            missing(p, g, path, key);
        }
        return NULL;
    }
    long long v = config_setting_get_int64(m);
    if (v < min || v > max) {
        char cp[PATH_LEN];
        child_path(cp, sizeof(cp), path, key);
        err(p, m, "%s: %lld is out of range %ld..%ld", cp, v, min, max);
        return NULL;
    }
    *out = (int)v;
    return m;
}

static const config_setting_t *get_float(struct parser *p, const config_setting_t *g,
                                         const char *path, const char *key, double *out)
{
    const config_setting_t *m = get(g, key, K_FLOAT);
    if (!m) {
        return NULL;
    }
    /* config_setting_get_float() turns an integer into 0 unless auto-convert is on */
    double v = config_setting_type(m) == CONFIG_TYPE_FLOAT ? config_setting_get_float(m)
                                                           : (double)config_setting_get_int64(m);
    if (!isfinite(v)) {
        char cp[PATH_LEN];
        child_path(cp, sizeof(cp), path, key);
        err(p, m, "%s: must be a finite number", cp);
        return NULL;
    }
    *out = v;
    return m;
}

static const config_setting_t *get_bool(const config_setting_t *g, const char *key, bool *out)
{
    const config_setting_t *m = get(g, key, K_BOOL);
    if (m) {
        *out = config_setting_get_bool(m) != 0;
    }
    return m;
}

/* A string key whose value is one of names[]; *out gets its index. */
static const config_setting_t *get_enum(struct parser *p, const config_setting_t *g,
                                        const char *path, const char *key, const char *const *names,
                                        size_t nnames, int *out)
{
    const config_setting_t *m = get(g, key, K_STRING);
    if (!m) {
        return NULL;
    }
    const char *v = config_setting_get_string(m);
    for (size_t i = 0; i < nnames; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = (int)i;
            return m;
        }
    }
    char cp[PATH_LEN];
    child_path(cp, sizeof(cp), path, key);
    char list[PATH_LEN] = "";
    for (size_t i = 0; i < nnames; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", names[i]);
    }
    err(p, m, "%s: \"%s\" is not one of %s", cp, v, list);
    return NULL;
}

static char *xstrdup(struct parser *p, const char *s)
{
    char *d = strdup(s);
    if (!d) {
        err(p, NULL, "out of memory");
    }
    return d;
}

static void *xcalloc(struct parser *p, size_t n, size_t size)
{
    void *v = calloc(n ? n : 1, size);
    if (!v) {
        err(p, NULL, "out of memory");
    }
    return v;
}

/* ---- character classes ------------------------------------------------- */

static bool is_alnum_ascii(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Every byte is alphanumeric ASCII or one of `extra`. */
static bool chars_ok(const char *s, const char *extra)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (!is_alnum_ascii(*c) && !strchr(extra, *c)) {
            return false;
        }
    }
    return *s != '\0';
}

/* ---- site, state_dir ---------------------------------------------------- */

static const struct key site_keys[] = {
    {"district", K_STRING}, {"school", K_STRING},   {"name", K_STRING},
    {"timezone", K_STRING}, {"language", K_STRING},
};

static bool timezone_exists(const char *tz)
{
    if (tz[0] == '/' || strstr(tz, "..")) {
        return false; /* only names inside the zoneinfo tree */
    }
    const char *dir = getenv("TZDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void parse_site(struct parser *p, const config_setting_t *g)
{
    struct gw_site_cfg *s = &p->cfg->site;
    check_members(p, g, "site", site_keys, N_ELEMS(site_keys));
    const config_setting_t *m;
    static const char *const levels[] = {"district", "school"};
    char **dst[] = {&s->district, &s->school};
    for (size_t i = 0; i < N_ELEMS(levels); i++) {
        m = get_str(p, g, "site", levels[i], REQUIRED, dst[i]);
        if (m && !chars_ok(*dst[i], "_-")) {
            err(p, m, "site.%s: \"%s\" may only hold A-Z a-z 0-9 _ - (it is an MQTT topic level)",
                levels[i], *dst[i]);
        }
    }
    get_str(p, g, "site", "name", REQUIRED, &s->name);
    m = get_str(p, g, "site", "timezone", OPTIONAL, &s->timezone);
    if (m && !timezone_exists(s->timezone)) {
        err(p, m, "site.timezone: \"%s\" is not a time zone under /usr/share/zoneinfo",
            s->timezone);
    }
    static const char *const langs[] = {"zh-CN", "en"};
    int lang = 0;
    if (get_enum(p, g, "site", "language", langs, N_ELEMS(langs), &lang)) {
        free(s->language);
        s->language = xstrdup(p, langs[lang]);
    }
}

/* ---- MQTT brokers: hub, uplink ---------------------------------------- */

static const struct key hub_keys[] = {
    {"host", K_STRING},      {"port", K_INT},        {"topic_prefix", K_STRING},
    {"username", K_STRING},  {"password", K_STRING}, {"password_file", K_STRING},
    {"client_id", K_STRING}, {"keepalive_s", K_INT}, {"tls", K_GROUP},
};

/* The hub's keys plus max_inflight. */
static const struct key uplink_keys[] = {
    {"host", K_STRING},      {"port", K_INT},        {"topic_prefix", K_STRING},
    {"username", K_STRING},  {"password", K_STRING}, {"password_file", K_STRING},
    {"client_id", K_STRING}, {"keepalive_s", K_INT}, {"tls", K_GROUP},
    {"max_inflight", K_INT},
};

static const struct key tls_keys[] = {
    {"ca_file", K_STRING},
    {"cert_file", K_STRING},
    {"key_file", K_STRING},
    {"insecure", K_BOOL},
};

/*
 * Reads a secret file: at most SECRET_MAX bytes, trailing CR/LF stripped.
 * The secret itself is never part of a message.
 */
static char *read_secret(struct parser *p, const config_setting_t *m, const char *cp,
                         const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        err(p, m, "%s: cannot read \"%s\": %s", cp, file, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH))) {
        warn(p, m, "%s: \"%s\" is readable by group or others (mode %04o); chmod 600 it", cp, file,
             (unsigned)(st.st_mode & 07777));
    }
    char *buf = calloc(1, SECRET_MAX + 2);
    if (!buf) {
        fclose(f);
        err(p, m, "out of memory");
        return NULL;
    }
    size_t n = fread(buf, 1, SECRET_MAX + 1, f);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (rerr) {
        err(p, m, "%s: cannot read \"%s\": %s", cp, file, strerror(rerr));
    } else if (n > SECRET_MAX) {
        err(p, m, "%s: \"%s\" is longer than %d bytes", cp, file, SECRET_MAX);
    } else {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
            buf[--n] = '\0';
        }
        if (n == 0) {
            err(p, m, "%s: \"%s\" is empty", cp, file);
        } else if (strlen(buf) != n) {
            err(p, m, "%s: \"%s\" holds a NUL byte", cp, file);
        } else {
            return buf;
        }
    }
    explicit_bzero(buf, SECRET_MAX + 2);
    free(buf);
    return NULL;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/*
 * A secret given inline as `key` or as a file `key`_file, not both. An empty
 * inline value is allowed only where the protocol allows it (MQTT). Returns
 * the member that gave it (even when it was bad), NULL when neither is there.
 */
static const config_setting_t *get_secret(struct parser *p, const config_setting_t *g,
                                          const char *path, const char *key, bool allow_empty,
                                          char **out)
{
    char fkey[64];
    snprintf(fkey, sizeof(fkey), "%s_file", key);
    char cp[PATH_LEN];
    child_path(cp, sizeof(cp), path, fkey);
    const config_setting_t *v = get(g, key, K_STRING);
    const config_setting_t *vf = get(g, fkey, K_STRING);
    if (v && vf) {
        err(p, vf, "%s: give %s or %s, not both", cp, key, fkey);
    } else if (v && allow_empty) {
        *out = xstrdup(p, config_setting_get_string(v));
    } else if (v) {
        get_str(p, g, path, key, OPTIONAL, out);
    } else if (vf) {
        char *file = NULL;
        if (get_str(p, g, path, fkey, OPTIONAL, &file)) {
            *out = read_secret(p, vf, cp, file);
        }
        free(file);
    }
    return v ? v : vf;
}

static void check_readable(struct parser *p, const config_setting_t *m, const char *cp,
                           const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        err(p, m, "%s: cannot read \"%s\": %s", cp, file, strerror(errno));
        return;
    }
    fclose(f);
}

static bool topic_prefix_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && !strpbrk(s, "+#") && s[0] != '/' && s[n - 1] != '/' && !strstr(s, "//");
}

/* `path` is the tls group's own path, e.g. "hub.tls". */
static void parse_tls(struct parser *p, const config_setting_t *g, const char *path,
                      struct gw_tls_cfg *t)
{
    check_members(p, g, path, tls_keys, N_ELEMS(tls_keys));
    const config_setting_t *ca = get_str(p, g, path, "ca_file", REQUIRED, &t->ca_file);
    const config_setting_t *cert = get_str(p, g, path, "cert_file", OPTIONAL, &t->cert_file);
    const config_setting_t *key = get_str(p, g, path, "key_file", OPTIONAL, &t->key_file);
    get_bool(g, "insecure", &t->insecure);
    char cp[PATH_LEN];
    if (ca) {
        child_path(cp, sizeof(cp), path, "ca_file");
        check_readable(p, ca, cp, t->ca_file);
    }
    if (cert) {
        child_path(cp, sizeof(cp), path, "cert_file");
        check_readable(p, cert, cp, t->cert_file);
    }
    if (key) {
        /* a private key is a secret: same rules as password_file */
        child_path(cp, sizeof(cp), path, "key_file");
        wipe_free(read_secret(p, key, cp, t->key_file));
    }
    if (cert && !key && !has(g, "key_file")) {
        err(p, cert, "%s.cert_file: needs key_file too", path);
    }
    if (key && !cert && !has(g, "cert_file")) {
        err(p, key, "%s.key_file: needs cert_file too", path);
    }
}

/* The fields one MQTT broker section fills; hub and uplink share the parsing. */
struct mqtt_fields {
    char **host;
    int *port;
    char **topic_prefix;
    char **username;
    char **password;
    char **client_id;
    int *keepalive_s;
    struct gw_tls_cfg *tls;
};

/* Reads the common broker keys of group g; the caller has checked the members. */
static void parse_mqtt(struct parser *p, const config_setting_t *g, const char *path,
                       int host_flags, const struct mqtt_fields *f)
{
    get_str(p, g, path, "host", host_flags, f->host);
    get_int(p, g, path, "port", OPTIONAL, 1, 65535, f->port);
    const config_setting_t *m = get_str(p, g, path, "topic_prefix", OPTIONAL, f->topic_prefix);
    if (m && !topic_prefix_ok(*f->topic_prefix)) {
        err(p, m, "%s.topic_prefix: \"%s\" must not hold + or # nor start, end or repeat '/'", path,
            *f->topic_prefix);
    }
    const config_setting_t *user = get_str(p, g, path, "username", OPTIONAL, f->username);
    get_str(p, g, path, "client_id", OPTIONAL, f->client_id);
    /* libmosquitto refuses a keepalive below 5 s */
    get_int(p, g, path, "keepalive_s", OPTIONAL, 5, 65535, f->keepalive_s);

    /* may be empty: an empty password is legal MQTT */
    const config_setting_t *pw = get_secret(p, g, path, "password", true, f->password);
    if (pw && !user && !has(g, "username")) {
        /* MQTT 3.1.1 3.1.2.9: no password flag without a user name */
        err(p, pw, "%s.%s: needs username too", path, config_setting_name(pw));
    }
    const config_setting_t *tls = get(g, "tls", K_GROUP);
    if (tls) {
        char cp[PATH_LEN];
        child_path(cp, sizeof(cp), path, "tls");
        parse_tls(p, tls, cp, f->tls);
    }
}

/* Port and client id defaults, once the section (if any) is read. */
static void mqtt_defaults(struct parser *p, const struct mqtt_fields *f)
{
    const struct gw_site_cfg *site = &p->cfg->site;
    if (!*f->port) {
        *f->port = f->tls->ca_file ? 8883 : 1883;
    }
    if (!*f->client_id && site->district && site->school) {
        size_t len = strlen(site->district) + strlen(site->school) + sizeof("campusgw--");
        *f->client_id = malloc(len);
        if (*f->client_id) {
            snprintf(*f->client_id, len, "campusgw-%s-%s", site->district, site->school);
        }
    }
}

static void parse_hub(struct parser *p, const config_setting_t *g)
{
    struct gw_hub_cfg *h = &p->cfg->hub;
    const struct mqtt_fields f = {&h->host,     &h->port,      &h->topic_prefix, &h->username,
                                  &h->password, &h->client_id, &h->keepalive_s,  &h->tls};
    if (g) {
        check_members(p, g, "hub", hub_keys, N_ELEMS(hub_keys));
        parse_mqtt(p, g, "hub", OPTIONAL, &f);
    }
    mqtt_defaults(p, &f);
}

/* The district broker: a second, independent connection. Runs after parse_hub. */
static void parse_uplink(struct parser *p, const config_setting_t *g)
{
    struct gw_uplink_cfg *u = &p->cfg->uplink;
    const char *path = "uplink";
    const struct mqtt_fields f = {&u->host,     &u->port,      &u->topic_prefix, &u->username,
                                  &u->password, &u->client_id, &u->keepalive_s,  &u->tls};
    u->enabled = true;
    u->line = (int)config_setting_source_line(g);
    u->keepalive_s = 30;
    u->max_inflight = 100;
    check_members(p, g, path, uplink_keys, N_ELEMS(uplink_keys));
    parse_mqtt(p, g, path, REQUIRED, &f);
    get_int(p, g, path, "max_inflight", OPTIONAL, 1, 65535, &u->max_inflight);
    if (!u->topic_prefix && p->cfg->hub.topic_prefix) {
        /* the district sees the same topic tree as the school */
        u->topic_prefix = xstrdup(p, p->cfg->hub.topic_prefix);
    }
    /* the same client id as the hub's is fine: the uplink is another broker */
    mqtt_defaults(p, &f);
}

/* ---- store ------------------------------------------------------------- */

static const struct key store_keys[] = {
    {"commit_ms", K_INT},
    {"commit_records", K_INT},
    {"max_mb", K_INT},
};

/* Defaults are set in set_defaults: they hold without a store section too. */
static void parse_store(struct parser *p, const config_setting_t *g)
{
    struct gw_store_cfg *s = &p->cfg->store;
    check_members(p, g, "store", store_keys, N_ELEMS(store_keys));
    get_int(p, g, "store", "commit_ms", OPTIONAL, 10, 60000, &s->commit_ms);
    get_int(p, g, "store", "commit_records", OPTIONAL, 1, 100000, &s->commit_records);
    get_int(p, g, "store", "max_mb", OPTIONAL, 1, 1048576, &s->max_mb);
}

/* ---- influx ------------------------------------------------------------ */

static const struct key influx_keys[] = {
    {"url", K_STRING},        {"database", K_STRING}, {"retention_policy", K_STRING},
    {"username", K_STRING},   {"password", K_STRING}, {"password_file", K_STRING},
    {"org", K_STRING},        {"bucket", K_STRING},   {"token", K_STRING},
    {"token_file", K_STRING}, {"batch_size", K_INT},  {"flush_ms", K_INT},
    {"gzip", K_BOOL},         {"timeout_ms", K_INT},  {"ca_file", K_STRING},
    {"insecure", K_BOOL},
};

/* Keys of one InfluxDB flavour, errors with the other. */
static const char *const influx_v1_keys[] = {"database", "retention_policy", "username", "password",
                                             "password_file"};
static const char *const influx_v2_keys[] = {"org", "bucket", "token", "token_file"};

/* "localhost", 127.0.0.0/8 or ::1: credentials to these never cross a wire. */
static bool is_loopback(const char *host, size_t n)
{
    if ((n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
        (n == 3 && memcmp(host, "::1", 3) == 0)) {
        return true;
    }
    if (n < 5 || memcmp(host, "127.", 4) != 0) {
        return false;
    }
    for (size_t i = 4; i < n; i++) {
        if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9'))) {
            return false;
        }
    }
    return true;
}

/*
 * scheme://host[:port][/base/path], nothing else: the sink appends /write or
 * /api/v2/write and its own query. A trailing '/' is stripped in place.
 * Returns true when the url is good; *https and *loopback describe it.
 */
static bool check_influx_url(struct parser *p, const config_setting_t *m, char *url, bool *https,
                             bool *loopback)
{
    const char *cp = "influx.url";
    size_t skip;
    if (strncasecmp(url, "http://", 7) == 0) {
        skip = 7;
        *https = false;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        skip = 8;
        *https = true;
    } else {
        err(p, m, "%s: \"%s\" must start with http:// or https://", cp, url);
        return false;
    }
    for (const unsigned char *c = (const unsigned char *)url; *c; c++) {
        if (*c <= ' ' || *c == 0x7f) {
            err(p, m, "%s: \"%s\" must not hold spaces or control characters", cp, url);
            return false;
        }
    }
    if (strpbrk(url, "?#")) {
        err(p, m,
            "%s: \"%s\" must not hold a query string (?...); give database, org and bucket as "
            "keys",
            cp, url);
        return false;
    }
    const char *auth = url + skip;
    size_t alen = strcspn(auth, "/");
    if (memchr(auth, '@', alen)) {
        /* the summary and logs print the url: no credentials in it */
        err(p, m, "%s: \"%s\" must not hold user:password@; use username and password", cp, url);
        return false;
    }
    const char *host = auth;
    size_t hlen;
    const char *port = NULL;
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close || (close + 1 != auth + alen && close[1] != ':')) {
            err(p, m, "%s: \"%s\" has a bad [IPv6] address", cp, url);
            return false;
        }
        host = auth + 1;
        hlen = (size_t)(close - host);
        port = close + 1 != auth + alen ? close + 2 : NULL;
    } else {
        const char *colon = memchr(auth, ':', alen);
        hlen = colon ? (size_t)(colon - auth) : alen;
        port = colon ? colon + 1 : NULL;
    }
    if (hlen == 0) {
        err(p, m, "%s: \"%s\" has no host", cp, url);
        return false;
    }
    if (port) {
        size_t plen = (size_t)(auth + alen - port);
        long n = 0;
        bool ok = plen > 0 && plen <= 5;
        for (size_t i = 0; ok && i < plen; i++) {
            ok = port[i] >= '0' && port[i] <= '9';
            n = n * 10 + (port[i] - '0');
        }
        if (!ok || n < 1 || n > 65535) {
            err(p, m, "%s: bad port \"%.*s\" in \"%s\" (1..65535)", cp, (int)plen, port, url);
            return false;
        }
    }
    *loopback = is_loopback(host, hlen);
    size_t n = strlen(url);
    while (n > skip + alen && url[n - 1] == '/') {
        url[--n] = '\0';
    }
    return true;
}

/* Every key of names[] present in g is an error: it belongs to the other flavour. */
static void other_flavour(struct parser *p, const config_setting_t *g, const char *const *names,
                          size_t n, const char *why)
{
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_member(g, names[i]);
        if (m) {
            err(p, m, "influx.%s: %s", names[i], why);
        }
    }
}

static void parse_influx(struct parser *p, const config_setting_t *g)
{
    struct gw_influx_cfg *x = &p->cfg->influx;
    const char *path = "influx";
    x->enabled = true;
    x->line = (int)config_setting_source_line(g);
    x->batch_size = 5000;
    x->flush_ms = 1000;
    x->timeout_ms = 10000;
    check_members(p, g, path, influx_keys, N_ELEMS(influx_keys));

    const config_setting_t *url = get_str(p, g, path, "url", REQUIRED, &x->url);
    bool https = false;
    bool loopback = false;
    bool url_ok = url && check_influx_url(p, url, x->url, &https, &loopback);
    get_int(p, g, path, "batch_size", OPTIONAL, 1, 100000, &x->batch_size);
    get_int(p, g, path, "flush_ms", OPTIONAL, 10, 60000, &x->flush_ms);
    get_bool(g, "gzip", &x->gzip);
    get_int(p, g, path, "timeout_ms", OPTIONAL, 100, 300000, &x->timeout_ms);
    const config_setting_t *ca = get_str(p, g, path, "ca_file", OPTIONAL, &x->ca_file);
    if (ca) {
        check_readable(p, ca, "influx.ca_file", x->ca_file);
    }
    const config_setting_t *insecure = get_bool(g, "insecure", &x->insecure);
    if (insecure && x->insecure) {
        warn(p, insecure, "influx.insecure: certificate checks are off; use it only for tests");
    }

    bool v2 = false;
    for (size_t i = 0; i < N_ELEMS(influx_v2_keys); i++) {
        v2 = v2 || has(g, influx_v2_keys[i]);
    }
    const config_setting_t *secret = NULL;
    if (has(g, "database")) {
        x->version = GW_INFLUX_V1;
        other_flavour(p, g, influx_v2_keys, N_ELEMS(influx_v2_keys),
                      "an InfluxDB 2.x key; not with database (1.x)");
        get_str(p, g, path, "database", OPTIONAL, &x->database);
        get_str(p, g, path, "retention_policy", OPTIONAL, &x->retention_policy);
        const config_setting_t *user = get_str(p, g, path, "username", OPTIONAL, &x->username);
        /* basic auth: both or neither */
        secret = get_secret(p, g, path, "password", false, &x->password);
        if (secret && !user && !has(g, "username")) {
            err(p, secret, "influx.%s: needs username too", config_setting_name(secret));
        }
        if (user && !has(g, "password") && !has(g, "password_file")) {
            err(p, user, "influx.username: needs password or password_file too");
        }
    } else if (v2) {
        x->version = GW_INFLUX_V2;
        other_flavour(p, g, influx_v1_keys, N_ELEMS(influx_v1_keys),
                      "an InfluxDB 1.x key; not with org, bucket and token (2.x)");
        get_str(p, g, path, "org", REQUIRED, &x->org);
        get_str(p, g, path, "bucket", REQUIRED, &x->bucket);
        secret = get_secret(p, g, path, "token", false, &x->token);
        if (!has(g, "token") && !has(g, "token_file")) {
            err(p, g, "influx: missing required key \"token\" or \"token_file\"");
        }
    } else {
        err(p, g, "influx: needs database (InfluxDB 1.x) or org, bucket and token (2.x)");
    }
    if (url_ok && !https && !loopback && (x->password || x->token)) {
        warn(p, url,
             "influx.url: \"%s\" is http:// to a host that is not loopback; the %s would cross "
             "the network in clear text (use https://)",
             x->url, x->version == GW_INFLUX_V1 ? "password" : "token");
    }
}

/* ---- lora -------------------------------------------------------------- */

static const struct key lora_keys[] = {
    {"listen", K_STRING},
    {"region", K_STRING},
    {"dedup_ms", K_INT},
    {"forwarder_offline_s", K_INT},
};

static const char *const region_names[] = {"EU868", "US915", "CN470", "AS923",
                                           "AU915", "KR920", "IN865"};

/*
 * "a.b.c.d:port" or "[v6]:port". A server binds an address, so no host
 * names, and the port is always written (1700 is a convention, not a rule).
 * ex4 and ex6 are examples for the messages ("0.0.0.0:1700", "[::]:1700").
 */
static void parse_listen(struct parser *p, const config_setting_t *m, const char *cp,
                         const char *ex4, const char *ex6, char **out_host, int *out_port)
{
    const char *v = config_setting_get_string(m);
    const char *host = v;
    size_t hlen;
    const char *port;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':') {
            err(p, m, "%s: \"%s\" is not address:port (e.g. \"%s\" or \"%s\")", cp, v, ex4, ex6);
            return;
        }
        host = v + 1;
        hlen = (size_t)(close - host);
        port = close + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (!colon || memchr(v, ':', (size_t)(colon - v))) {
            err(p, m,
                "%s: \"%s\" is not address:port (e.g. \"%s\"; an IPv6 address goes in "
                "brackets: \"%s\")",
                cp, v, ex4, ex6);
            return;
        }
        hlen = (size_t)(colon - v);
        port = colon + 1;
    }
    char addr[INET6_ADDRSTRLEN + 1];
    unsigned char buf[sizeof(struct in6_addr)];
    bool ok = hlen > 0 && hlen < sizeof(addr);
    if (ok) {
        memcpy(addr, host, hlen);
        addr[hlen] = '\0';
        ok = inet_pton(v[0] == '[' ? AF_INET6 : AF_INET, addr, buf) == 1;
    }
    if (!ok) {
        err(p, m, "%s: \"%.*s\" in \"%s\" is not an %s address", cp, (int)hlen, host, v,
            v[0] == '[' ? "IPv6" : "IPv4");
        return;
    }
    char *end = NULL;
    errno = 0;
    long n = (*port >= '0' && *port <= '9') ? strtol(port, &end, 10) : -1;
    if (n < 1 || n > 65535 || errno || !end || *end) {
        err(p, m, "%s: bad port \"%s\" in \"%s\" (1..65535)", cp, port, v);
        return;
    }
    char *h = xstrdup(p, addr);
    if (h) {
        free(*out_host);
        *out_host = h;
        *out_port = (int)n;
    }
}

static void parse_lora(struct parser *p, const config_setting_t *g)
{
    struct gw_lora_cfg *l = &p->cfg->lora;
    const char *path = "lora";
    l->enabled = true;
    l->line = (int)config_setting_source_line(g);
    l->listen_host = xstrdup(p, "0.0.0.0");
    l->listen_port = 1700;
    l->region = xstrdup(p, "CN470");
    l->dedup_ms = 200;
    l->forwarder_offline_s = 120;
    check_members(p, g, path, lora_keys, N_ELEMS(lora_keys));
    const config_setting_t *m = get(g, "listen", K_STRING);
    if (m) {
        parse_listen(p, m, "lora.listen", "0.0.0.0:1700", "[::]:1700", &l->listen_host,
                     &l->listen_port);
    }
    int r = 0;
    if (get_enum(p, g, path, "region", region_names, N_ELEMS(region_names), &r)) {
        free(l->region);
        l->region = xstrdup(p, region_names[r]);
    }
    get_int(p, g, path, "dedup_ms", OPTIONAL, 0, 5000, &l->dedup_ms);
    /* forwarders send PULL_DATA every 10 s and stats every 30 s by default */
    get_int(p, g, path, "forwarder_offline_s", OPTIONAL, 10, DAY_MAX_S, &l->forwarder_offline_s);
}

/* ---- modbus buses ------------------------------------------------------ */

static const struct key bus_keys[] = {
    {"name", K_STRING},    {"rtu", K_STRING},         {"tcp", K_STRING},    {"baud", K_INT},
    {"parity", K_STRING},  {"data_bits", K_INT},      {"stop_bits", K_INT}, {"rs485", K_BOOL},
    {"timeout_ms", K_INT}, {"fail_threshold", K_INT},
};

static const int bauds[] = {300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400};

/* "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address. */
static void parse_tcp(struct parser *p, const config_setting_t *m, const char *cp,
                      struct gw_bus_cfg *b)
{
    const char *v = config_setting_get_string(m);
    const char *host = v;
    size_t hlen;
    const char *port = NULL;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || (close[1] != '\0' && close[1] != ':')) {
            err(p, m, "%s: \"%s\" is not host:port", cp, v);
            return;
        }
        host = v + 1;
        hlen = (size_t)(close - host);
        port = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strchr(v, ':');
        if (colon && strchr(colon + 1, ':')) {
            hlen = strlen(v); /* bare IPv6 address, default port */
        } else {
            hlen = colon ? (size_t)(colon - v) : strlen(v);
            port = colon ? colon + 1 : NULL;
        }
    }
    if (hlen == 0) {
        err(p, m, "%s: \"%s\" has no host", cp, v);
        return;
    }
    if (port) {
        char *end = NULL;
        errno = 0;
        long n = (*port >= '0' && *port <= '9') ? strtol(port, &end, 10) : -1;
        if (n < 1 || n > 65535 || errno || !end || *end) {
            err(p, m, "%s: bad port \"%s\" in \"%s\" (1..65535)", cp, port, v);
            return;
        }
        b->port = (int)n;
    }
    b->host = strndup(host, hlen);
    if (!b->host) {
        err(p, m, "out of memory");
    }
}

static void parse_bus(struct parser *p, const config_setting_t *g, const char *path,
                      struct gw_bus_cfg *b)
{
    b->line = (int)config_setting_source_line(g);
    b->baud = 9600;
    b->parity = 'N';
    b->data_bits = 8;
    b->stop_bits = 1;
    b->port = 502;
    b->timeout_ms = 1000;
    b->fail_threshold = 3;
    check_members(p, g, path, bus_keys, N_ELEMS(bus_keys));
    get_str(p, g, path, "name", REQUIRED, &b->name);

    char cp[PATH_LEN];
    const config_setting_t *rtu = get(g, "rtu", K_STRING);
    const config_setting_t *tcp = get(g, "tcp", K_STRING);
    if (rtu && tcp) {
        child_path(cp, sizeof(cp), path, "tcp");
        err(p, tcp, "%s: give rtu or tcp, not both", cp);
    } else if (tcp) {
        b->type = GW_BUS_TCP;
        child_path(cp, sizeof(cp), path, "tcp");
        if (!*config_setting_get_string(tcp)) {
            err(p, tcp, "%s: must not be empty", cp);
        } else {
            parse_tcp(p, tcp, cp, b);
        }
        static const char *const rtu_only[] = {"baud", "parity", "data_bits", "stop_bits", "rs485"};
        for (size_t i = 0; i < N_ELEMS(rtu_only); i++) {
            const config_setting_t *m = config_setting_get_member(g, rtu_only[i]);
            if (m) {
                child_path(cp, sizeof(cp), path, rtu_only[i]);
                err(p, m, "%s: only for rtu buses", cp);
            }
        }
    } else if (rtu) {
        b->type = GW_BUS_RTU;
        get_str(p, g, path, "rtu", OPTIONAL, &b->device);
    } else if (!has(g, "rtu") && !has(g, "tcp")) {
        err(p, g, "%s: needs rtu = \"/dev/...\" or tcp = \"host:port\"", path);
    }

    const config_setting_t *m = get_int(p, g, path, "baud", OPTIONAL, 1, INT_MAX, &b->baud);
    if (m) {
        bool ok = false;
        for (size_t i = 0; i < N_ELEMS(bauds); i++) {
            ok = ok || bauds[i] == b->baud;
        }
        if (!ok) {
            child_path(cp, sizeof(cp), path, "baud");
            err(p, m,
                "%s: %d is not a standard rate (300 600 1200 2400 4800 9600 19200 38400 "
                "57600 115200 230400)",
                cp, b->baud);
        }
    }
    static const char *const parities[] = {"N", "E", "O"};
    int par = 0;
    if (get_enum(p, g, path, "parity", parities, N_ELEMS(parities), &par)) {
        b->parity = parities[par][0];
    }
    get_int(p, g, path, "data_bits", OPTIONAL, 5, 8, &b->data_bits);
    get_int(p, g, path, "stop_bits", OPTIONAL, 1, 2, &b->stop_bits);
    get_bool(g, "rs485", &b->rs485);
    get_int(p, g, path, "timeout_ms", OPTIONAL, 10, 60000, &b->timeout_ms);
    get_int(p, g, path, "fail_threshold", OPTIONAL, 1, 1000, &b->fail_threshold);
}

static void parse_buses(struct parser *p, const config_setting_t *list)
{
    struct gw_config *cfg = p->cfg;
    int n = config_setting_length(list);
    cfg->buses = xcalloc(p, (size_t)n, sizeof(*cfg->buses));
    if (!cfg->buses) {
        return;
    }
    cfg->nbuses = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        char path[PATH_LEN];
        elem_path(path, sizeof(path), "modbus", i);
        if (!config_setting_is_group(g)) {
            err(p, g, "%s: expected a group { ... }, got %s", path, ltype_name(g));
            continue;
        }
        parse_bus(p, g, path, &cfg->buses[i]);
        for (int j = 0; j < i && cfg->buses[i].name; j++) {
            if (cfg->buses[j].name && strcmp(cfg->buses[j].name, cfg->buses[i].name) == 0) {
                err(p, config_setting_get_member(g, "name"),
                    "%s.name: duplicate bus name \"%s\" (first at line %d)", path,
                    cfg->buses[i].name, cfg->buses[j].line);
                break;
            }
        }
    }
}

/* ---- schedules --------------------------------------------------------- */

static const struct key schedule_keys[] = {
    {"days", K_STRING},
    {"from", K_STRING},
    {"to", K_STRING},
};

static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int day_index(const char *s, size_t n)
{
    for (int d = 0; d < 7; d++) {
        if (n == 3 && strncasecmp(s, day_names[d], 3) == 0) {
            return d;
        }
    }
    return -1;
}

/* "mon-fri", "sat,sun", "mon-wed,fri", "fri-mon" (wraps), "daily" or "all". 0 on error. */
static uint8_t parse_days(const char *s)
{
    if (strcasecmp(s, "daily") == 0 || strcasecmp(s, "all") == 0) {
        return 0x7f;
    }
    uint8_t days = 0;
    const char *item = s;
    for (;;) {
        const char *end = strchr(item, ',');
        size_t len = end ? (size_t)(end - item) : strlen(item);
        while (len > 0 && *item == ' ') {
            item++;
            len--;
        }
        while (len > 0 && item[len - 1] == ' ') {
            len--;
        }
        const char *dash = memchr(item, '-', len);
        int a = day_index(item, dash ? (size_t)(dash - item) : len);
        int b = dash ? day_index(dash + 1, len - (size_t)(dash - item) - 1) : a;
        if (a < 0 || b < 0) {
            return 0;
        }
        for (int d = a;; d = (d + 1) % 7) {
            days |= (uint8_t)(1u << d);
            if (d == b) {
                break;
            }
        }
        if (!end) {
            return days;
        }
        item = end + 1;
    }
}

/* "HH:MM" (H may be one digit) -> minutes; "24:00" only when allow_24. -1 on error. */
static int parse_hhmm(const char *s, bool allow_24)
{
    int h = 0;
    int i = 0;
    for (; i < 2 && s[i] >= '0' && s[i] <= '9'; i++) {
        h = h * 10 + (s[i] - '0');
    }
    if (i == 0 || s[i] != ':' || !(s[i + 1] >= '0' && s[i + 1] <= '9') ||
        !(s[i + 2] >= '0' && s[i + 2] <= '9') || s[i + 3] != '\0') {
        return -1;
    }
    int m = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24))) {
        return -1;
    }
    return h * 60 + m;
}

static void parse_schedule(struct parser *p, const config_setting_t *g, const char *path,
                           struct gw_schedule_cfg *s)
{
    s->line = (int)config_setting_source_line(g);
    s->from_min = 0;
    s->to_min = 1440;
    check_members(p, g, path, schedule_keys, N_ELEMS(schedule_keys));
    char cp[PATH_LEN];
    const config_setting_t *m = get(g, "days", K_STRING);
    if (m) {
        s->days = parse_days(config_setting_get_string(m));
        if (!s->days) {
            child_path(cp, sizeof(cp), path, "days");
            err(p, m,
                "%s: bad days \"%s\" (use sun..sat, ranges like mon-fri, lists like sat,sun, "
                "or daily)",
                cp, config_setting_get_string(m));
        }
    } else if (!has(g, "days")) {
        missing(p, g, path, "days");
    }
    static const char *const ends[] = {"from", "to"};
    int *dst[] = {&s->from_min, &s->to_min};
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        m = get(g, ends[i], K_STRING);
        if (!m) {
            continue;
        }
        int v = parse_hhmm(config_setting_get_string(m), i == 1);
        if (v < 0) {
            child_path(cp, sizeof(cp), path, ends[i]);
            err(p, m, "%s: bad time \"%s\" (HH:MM, 00:00..23:59%s)", cp,
                config_setting_get_string(m), i == 1 ? ", or 24:00" : "");
            ok = false;
        } else {
            *dst[i] = v;
        }
    }
    if (ok && s->from_min == s->to_min) {
        err(p, g, "%s: from and to are equal, an empty window (use 00:00 to 24:00 for all day)",
            path);
    }
}

static void parse_schedules(struct parser *p, const config_setting_t *grp)
{
    struct gw_config *cfg = p->cfg;
    int n = config_setting_length(grp);
    cfg->schedules = xcalloc(p, (size_t)n, sizeof(*cfg->schedules));
    if (!cfg->schedules) {
        return;
    }
    cfg->nschedules = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(grp, (unsigned)i);
        char path[PATH_LEN];
        child_path(path, sizeof(path), "schedules", config_setting_name(g));
        cfg->schedules[i].name = xstrdup(p, config_setting_name(g));
        cfg->schedules[i].line = (int)config_setting_source_line(g);
        if (!config_setting_is_group(g)) {
            err(p, g, "%s: expected a group { ... }, got %s", path, ltype_name(g));
            continue;
        }
        parse_schedule(p, g, path, &cfg->schedules[i]);
    }
}

/* ---- profiles ---------------------------------------------------------- */

static const struct key point_keys[] = {
    {"name", K_STRING},   {"unit", K_STRING},       {"table", K_STRING}, {"address", K_INT},
    {"type", K_STRING},   {"word_order", K_STRING}, {"scale", K_FLOAT},  {"offset", K_FLOAT},
    {"raw_min", K_FLOAT}, {"raw_max", K_FLOAT},     {"min", K_FLOAT},    {"max", K_FLOAT},
    {"enum", K_STRINGS},
};

static const char *const table_names[] = {"holding", "input", "coil", "discrete"};
static const char *const reg_type_names[] = {"u16", "s16", "u32", "s32", "f32", "bool"};
static const char *const word_order_names[] = {"big", "little"};
static const char *const codec_names[] = {"modbus", "layout", "cayenne_lpp", "js", "json"};

static bool is_32bit(enum gw_reg_type t)
{
    return t == GW_REG_U32 || t == GW_REG_S32 || t == GW_REG_F32;
}

/* enum = [ "closed", "open", "locked" ]: an integer register read as a label. */
static void parse_point_enum(struct parser *p, const config_setting_t *g, const char *path,
                             struct gw_point_cfg *pt, bool scaled)
{
    const config_setting_t *e = get(g, "enum", K_STRINGS);
    if (!e) {
        return;
    }
    char cp[PATH_LEN];
    child_path(cp, sizeof(cp), path, "enum");
    if (pt->type == GW_REG_BOOL || pt->type == GW_REG_F32) {
        err(p, e, "%s: needs an integer type (u16, s16, u32, s32)", cp);
        return;
    }
    if (scaled) {
        err(p, e, "%s: not with scale/offset or a 4-20 mA span", cp);
        return;
    }
    int n = config_setting_length(e);
    pt->enum_labels = xcalloc(p, (size_t)n, sizeof(*pt->enum_labels));
    if (!pt->enum_labels) {
        return;
    }
    pt->nenum = n;
    for (int i = 0; i < n; i++) {
        const char *label = config_setting_get_string_elem(e, i);
        if (!label || !*label || strlen(label) >= GW_STR_VALUE_MAX) {
            err(p, e, "%s[%d]: labels are 1..%d characters", cp, i, GW_STR_VALUE_MAX - 1);
            continue;
        }
        pt->enum_labels[i] = strdup(label);
    }
}

static void parse_point(struct parser *p, const config_setting_t *g, const char *path,
                        struct gw_point_cfg *pt)
{
    pt->line = (int)config_setting_source_line(g);
    pt->scale = 1;
    check_members(p, g, path, point_keys, N_ELEMS(point_keys));
    char cp[PATH_LEN];
    const config_setting_t *m = get_str(p, g, path, "name", REQUIRED, &pt->name);
    if (m && (strlen(pt->name) >= GW_NAME_MAX || !chars_ok(pt->name, "_.-"))) {
        err(p, m, "%s.name: \"%s\" must be 1..%d of A-Z a-z 0-9 _ . -", path, pt->name,
            GW_NAME_MAX - 1);
    }
    get_str(p, g, path, "unit", OPTIONAL, &pt->unit);
    int v = GW_TABLE_HOLDING;
    get_enum(p, g, path, "table", table_names, N_ELEMS(table_names), &v);
    pt->table = (enum gw_table)v;
    bool bit_table = pt->table == GW_TABLE_COIL || pt->table == GW_TABLE_DISCRETE;
    v = bit_table ? GW_REG_BOOL : GW_REG_U16;
    const config_setting_t *type =
        get_enum(p, g, path, "type", reg_type_names, N_ELEMS(reg_type_names), &v);
    pt->type = (enum gw_reg_type)v;
    if (type && bit_table && pt->type != GW_REG_BOOL) {
        err(p, type, "%s.type: a %s table holds bits; type must be bool", path,
            table_names[pt->table]);
    }
    v = GW_WORDS_BIG;
    const config_setting_t *wo =
        get_enum(p, g, path, "word_order", word_order_names, N_ELEMS(word_order_names), &v);
    pt->word_order = (enum gw_word_order)v;
    if (wo && !is_32bit(pt->type)) {
        err(p, wo, "%s.word_order: only for 32-bit types (u32, s32, f32)", path);
    }
    m = get_int(p, g, path, "address", REQUIRED, 0, 65535, &pt->address);
    if (m && is_32bit(pt->type) && pt->address == 65535) {
        err(p, m, "%s.address: a 32-bit value needs two registers; 65535 is the last", path);
    }

    const config_setting_t *scale = get_float(p, g, path, "scale", &pt->scale);
    const config_setting_t *offset = get_float(p, g, path, "offset", &pt->offset);
    if (scale && pt->scale == 0) {
        err(p, scale, "%s.scale: must not be 0", path);
    }
    static const char *const span_keys[] = {"raw_min", "raw_max", "min", "max"};
    double *span[] = {&pt->raw_min, &pt->raw_max, &pt->min, &pt->max};
    int nspan = 0;
    int ngood = 0;
    const config_setting_t *first = NULL;
    for (size_t i = 0; i < N_ELEMS(span_keys); i++) {
        const config_setting_t *s = config_setting_get_member(g, span_keys[i]);
        if (s) {
            nspan++;
            first = first ? first : s;
            ngood += get_float(p, g, path, span_keys[i], span[i]) != NULL;
        }
    }
    if (nspan > 0 && nspan < 4) {
        err(p, first, "%s: a 4-20 mA span needs all of raw_min, raw_max, min, max", path);
    } else if (nspan == 4) {
        if (scale || offset) {
            child_path(cp, sizeof(cp), path, scale ? "scale" : "offset");
            err(p, scale ? scale : offset,
                "%s: not with raw_min/raw_max/min/max (give one or "
                "the other)",
                cp);
        }
        if (pt->type == GW_REG_BOOL) {
            err(p, first, "%s: a 4-20 mA span needs a numeric type, not bool", path);
        }
        if (ngood == 4) {
            const config_setting_t *rmax = config_setting_get_member(g, "raw_max");
            if (pt->raw_min >= pt->raw_max) {
                err(p, rmax, "%s.raw_max: must be above raw_min (%g >= %g)", path, pt->raw_min,
                    pt->raw_max);
            }
            if (pt->min == pt->max) {
                err(p, config_setting_get_member(g, "max"), "%s.max: must differ from min", path);
            }
            pt->has_span = true;
        }
    }
    if ((scale || offset) && pt->type == GW_REG_BOOL) {
        err(p, scale ? scale : offset, "%s: scale/offset make no sense for type bool", path);
    }
    parse_point_enum(p, g, path, pt, scale || offset || nspan > 0);
}

static void parse_points(struct parser *p, const config_setting_t *list, const char *ppath,
                         struct gw_profile_cfg *pr)
{
    char path[PATH_LEN];
    child_path(path, sizeof(path), ppath, "points");
    int n = config_setting_length(list);
    if (n == 0) {
        err(p, list, "%s: a Modbus profile needs at least one point", path);
        return;
    }
    if (n > GW_MAX_POINTS) {
        err(p, list, "%s: %d points, at most %d", path, n, GW_MAX_POINTS);
        return;
    }
    pr->points = xcalloc(p, (size_t)n, sizeof(*pr->points));
    if (!pr->points) {
        return;
    }
    pr->npoints = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        char ep[PATH_LEN];
        elem_path(ep, sizeof(ep), path, i);
        if (!config_setting_is_group(g)) {
            err(p, g, "%s: expected a group { ... }, got %s", ep, ltype_name(g));
            continue;
        }
        parse_point(p, g, ep, &pr->points[i]);
        for (int j = 0; j < i && pr->points[i].name; j++) {
            if (pr->points[j].name && strcmp(pr->points[j].name, pr->points[i].name) == 0) {
                err(p, config_setting_get_member(g, "name"),
                    "%s.name: duplicate point name \"%s\" (first at line %d)", ep,
                    pr->points[i].name, pr->points[j].line);
                break;
            }
        }
    }
}

/* ---- codec profiles: layout fields, cayenne_lpp, js -------------------- */

static const struct key field_keys[] = {
    {"name", K_STRING},  {"byte", K_INT},    {"type", K_STRING},  {"bit", K_INT},
    {"mask", K_INT},     {"scale", K_FLOAT}, {"offset", K_FLOAT}, {"unit", K_STRING},
    {"enum", K_STRINGS}, {"fport", K_INT},
};

/* In gw_field_type order. */
static const char *const field_type_names[] = {"u8",    "s8",    "u16be", "u16le", "s16be",
                                               "s16le", "u32be", "u32le", "s32be", "s32le",
                                               "f32be", "f32le", "bool"};

static bool field_unsigned(enum gw_field_type t)
{
    return t == GW_FT_U8 || t == GW_FT_U16BE || t == GW_FT_U16LE || t == GW_FT_U32BE ||
           t == GW_FT_U32LE;
}

static bool field_integer(enum gw_field_type t)
{
    return t != GW_FT_F32BE && t != GW_FT_F32LE && t != GW_FT_BOOL;
}

/* mask = 0x0C: the bits of the raw integer to keep (then shifted down). */
static void parse_field_mask(struct parser *p, const config_setting_t *g, const char *path,
                             struct gw_layout_field_cfg *f, bool typed)
{
    const config_setting_t *m = get(g, "mask", K_INT);
    if (!m || !typed) {
        return;
    }
    if (!field_unsigned(f->type)) {
        err(p, m, "%s.mask: only with unsigned integer types (u8, u16be, u16le, u32be, u32le)",
            path);
        return;
    }
    long long v = config_setting_get_int64(m);
    if (config_setting_type(m) == CONFIG_TYPE_INT &&
        config_setting_get_format(m) == CONFIG_FORMAT_HEX) {
        v = (long long)(uint32_t)v; /* libconfig keeps 0xFFFFFFFF as a 32-bit -1 */
    }
    int width = gw_field_width(f->type);
    long long max = width == 4 ? 0xFFFFFFFFLL : (1LL << (8 * width)) - 1;
    if (v < 1 || v > max) {
        if (v < 0) {
            err(p, m, "%s.mask: %lld is negative", path, v);
        } else {
            err(p, m, "%s.mask: 0x%llX does not fit a %s (0x1..0x%llX)", path,
                (unsigned long long)v, field_type_names[f->type], (unsigned long long)max);
        }
        return;
    }
    f->mask = (uint32_t)v;
}

static void parse_field_enum(struct parser *p, const config_setting_t *g, const char *path,
                             struct gw_layout_field_cfg *f, bool typed, bool scaled)
{
    const config_setting_t *e = get(g, "enum", K_STRINGS);
    if (!e || !typed) {
        return;
    }
    char cp[PATH_LEN];
    child_path(cp, sizeof(cp), path, "enum");
    if (!field_integer(f->type)) {
        err(p, e, "%s: needs an integer type (u8, s8, u16be, ... s32le), not %s", cp,
            field_type_names[f->type]);
        return;
    }
    if (scaled) {
        err(p, e, "%s: not with scale/offset (the raw value is the index)", cp);
        return;
    }
    int n = config_setting_length(e);
    f->enum_labels = xcalloc(p, (size_t)n, sizeof(*f->enum_labels));
    if (!f->enum_labels) {
        return;
    }
    f->nenum = n;
    for (int i = 0; i < n; i++) {
        const char *label = config_setting_get_string_elem(e, i);
        if (!label || !*label || strlen(label) >= GW_STR_VALUE_MAX) {
            err(p, e, "%s[%d]: labels are 1..%d characters", cp, i, GW_STR_VALUE_MAX - 1);
            continue;
        }
        f->enum_labels[i] = xstrdup(p, label);
    }
}

static void parse_field(struct parser *p, const config_setting_t *g, const char *path,
                        struct gw_layout_field_cfg *f)
{
    f->line = (int)config_setting_source_line(g);
    f->bit = -1;
    f->fport = -1;
    f->scale = 1;
    check_members(p, g, path, field_keys, N_ELEMS(field_keys));
    const config_setting_t *m = get_str(p, g, path, "name", REQUIRED, &f->name);
    if (m && (strlen(f->name) >= GW_NAME_MAX || !chars_ok(f->name, "_.-"))) {
        err(p, m, "%s.name: \"%s\" must be 1..%d of A-Z a-z 0-9 _ . -", path, f->name,
            GW_NAME_MAX - 1);
    }
    get_str(p, g, path, "unit", OPTIONAL, &f->unit);
    int v = 0;
    /* no default type: guessing one would silently misread every frame */
    bool typed = get_enum(p, g, path, "type", field_type_names, N_ELEMS(field_type_names), &v);
    f->type = (enum gw_field_type)v;
    if (!typed && !has(g, "type")) {
        missing(p, g, path, "type");
    }
    const config_setting_t *byte =
        get_int(p, g, path, "byte", REQUIRED, 0, LW_MAX_PAYLOAD - 1, &f->byte);
    if (byte && typed && f->byte + gw_field_width(f->type) > LW_MAX_PAYLOAD) {
        err(p, byte,
            "%s.byte: a %s at byte %d ends past byte %d; a LoRaWAN payload holds at most %d bytes",
            path, field_type_names[f->type], f->byte, LW_MAX_PAYLOAD - 1, LW_MAX_PAYLOAD);
    }
    const config_setting_t *bit = config_setting_get_member(g, "bit");
    if (bit && typed && f->type != GW_FT_BOOL) {
        err(p, bit, "%s.bit: only with type bool", path);
    } else if (bit) {
        get_int(p, g, path, "bit", OPTIONAL, 0, 7, &f->bit);
    } else if (typed && f->type == GW_FT_BOOL) {
        err(p, g, "%s: type bool needs bit (0..7, the bit of the byte)", path);
    }
    parse_field_mask(p, g, path, f, typed);
    const config_setting_t *scale = get_float(p, g, path, "scale", &f->scale);
    const config_setting_t *offset = get_float(p, g, path, "offset", &f->offset);
    if (scale && f->scale == 0) {
        err(p, scale, "%s.scale: must not be 0", path);
    }
    if ((scale || offset) && typed && f->type == GW_FT_BOOL) {
        err(p, scale ? scale : offset, "%s: scale/offset make no sense for type bool", path);
    }
    parse_field_enum(p, g, path, f, typed, has(g, "scale") || has(g, "offset"));
    get_int(p, g, path, "fport", OPTIONAL, 1, 223, &f->fport);
}

/* Two fields may share a name only when they read frames of different ports. */
static bool same_field(const struct gw_layout_field_cfg *a, const struct gw_layout_field_cfg *b)
{
    if (!a->name || !b->name || strcmp(a->name, b->name) != 0) {
        return false;
    }
    return a->fport < 0 || b->fport < 0 || a->fport == b->fport;
}

static void parse_fields(struct parser *p, const config_setting_t *list, const char *ppath,
                         struct gw_profile_cfg *pr)
{
    char path[PATH_LEN];
    child_path(path, sizeof(path), ppath, "fields");
    int n = config_setting_length(list);
    if (n == 0) {
        err(p, list, "%s: a layout profile needs at least one field", path);
        return;
    }
    if (n > GW_MAX_POINTS) {
        err(p, list, "%s: %d fields, at most %d", path, n, GW_MAX_POINTS);
        return;
    }
    pr->fields = xcalloc(p, (size_t)n, sizeof(*pr->fields));
    if (!pr->fields) {
        return;
    }
    pr->nfields = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        char ep[PATH_LEN];
        elem_path(ep, sizeof(ep), path, i);
        pr->fields[i].bit = -1;
        pr->fields[i].fport = -1;
        if (!config_setting_is_group(g)) {
            err(p, g, "%s: expected a group { ... }, got %s", ep, ltype_name(g));
            continue;
        }
        parse_field(p, g, ep, &pr->fields[i]);
        for (int j = 0; j < i; j++) {
            if (same_field(&pr->fields[j], &pr->fields[i])) {
                err(p, config_setting_get_member(g, "name"),
                    "%s.name: duplicate field name \"%s\" (first at line %d; give both an fport "
                    "to read them from different frames)",
                    ep, pr->fields[i].name, pr->fields[j].line);
                break;
            }
        }
    }
}

/* A path in the config relative to the config file's directory (the -c FILE), unless absolute. */
static char *resolve_path(struct parser *p, const char *rel)
{
    const char *slash = strrchr(p->path, '/');
    if (rel[0] == '/' || !slash) {
        return xstrdup(p, rel);
    }
    size_t dl = (size_t)(slash - p->path);
    size_t n = dl + 1 + strlen(rel) + 1;
    char *s = malloc(n);
    if (!s) {
        err(p, NULL, "out of memory");
        return NULL;
    }
    snprintf(s, n, "%.*s/%s", (int)dl, p->path, rel);
    return s;
}

/* A string key naming a file: resolved and checked readable. Returns the member when it is. */
static const config_setting_t *get_file(struct parser *p, const config_setting_t *g,
                                        const char *path, const char *key, int flags, char **out)
{
    char *rel = NULL;
    const config_setting_t *m = get_str(p, g, path, key, flags, &rel);
    if (!m) {
        return NULL;
    }
    *out = resolve_path(p, rel);
    free(rel);
    if (!*out) {
        return NULL;
    }
    char cp[PATH_LEN];
    child_path(cp, sizeof(cp), path, key);
    FILE *f = fopen(*out, "r");
    if (!f) {
        err(p, m, "%s: cannot read \"%s\": %s", cp, *out, strerror(errno));
        return NULL;
    }
    fclose(f);
    return m;
}

/*
 * The decoder is compiled at load, so a script Duktape refuses (ES6, no
 * decodeUplink/Decode, a throwing top level) fails --check-config and a
 * reload instead of every frame later; its examples are run the same way.
 */
static void check_js(struct parser *p, const config_setting_t *g, const char *path,
                     struct gw_profile_cfg *pr)
{
    const config_setting_t *script = get_file(p, g, path, "script", REQUIRED, &pr->script);
    const config_setting_t *ex = get_file(p, g, path, "examples", OPTIONAL, &pr->examples);
    if (!script) {
        return;
    }
    char msg[512];
    msg[0] = '\0';
    struct gw_decoder *d = gw_decoder_new(pr, msg, sizeof(msg));
    if (!d) {
        err(p, script, "%s.script: %s", path, msg);
        return;
    }
    if (ex) {
        char *report = calloc(1, 8192);
        if (!report) {
            err(p, ex, "out of memory");
        } else {
            int rc = gw_decoder_check_examples(d, pr->examples, report, 8192);
            int nlines = 0;
            for (char *line = report; rc != 0 && *line;) {
                char *nl = strchr(line, '\n');
                if (nl) {
                    *nl = '\0';
                }
                err(p, ex, "%s.examples: %s", path, line);
                nlines++;
                line = nl ? nl + 1 : line + strlen(line);
            }
            if (rc < 0 && nlines == 0) {
                err(p, ex, "%s.examples: cannot check \"%s\": %s", path, pr->examples,
                    strerror(-rc));
            } else if (rc > 0 && nlines == 0) {
                err(p, ex, "%s.examples: %d example%s do not match", path, rc, rc == 1 ? "" : "s");
            }
            free(report);
        }
    }
    gw_decoder_free(d);
}

/* ---- json codec profiles: values picked from a JSON payload (MQTT sources) ---- */

#define JSON_PATH_MAX 255
#define JSON_PATH_LEVELS 16

static const struct key json_value_keys[] = {
    {"name", K_STRING}, {"path", K_STRING},  {"type", K_STRING},  {"unit", K_STRING},
    {"scale", K_FLOAT}, {"offset", K_FLOAT}, {"enum", K_STRINGS},
};

/* In gw_json_type order. */
static const char *const json_type_names[] = {"any", "number", "bool", "string"};

/* "a.b.0.c": 1..16 non-empty levels separated by dots, no control characters, <= 255 bytes. */
static const char *json_path_problem(const char *path)
{
    size_t n = strlen(path);
    if (n > JSON_PATH_MAX) {
        return "is longer than 255 bytes";
    }
    int levels = 1;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f) {
            return "holds a control character";
        }
        if (path[i] == '.') {
            levels++;
        }
    }
    if (path[0] == '.' || path[n - 1] == '.' || strstr(path, "..")) {
        return "has an empty level (a leading, trailing or doubled '.')";
    }
    if (levels > JSON_PATH_LEVELS) {
        return "has more than 16 levels";
    }
    return NULL;
}

static void parse_json_value_enum(struct parser *p, const config_setting_t *g, const char *path,
                                  struct gw_json_value_cfg *v, bool typed)
{
    const config_setting_t *e = get(g, "enum", K_STRINGS);
    if (!e) {
        return;
    }
    char cp[PATH_LEN];
    child_path(cp, sizeof(cp), path, "enum");
    if (typed) {
        err(p, e, "%s: not with type (an enum takes an index, false/true or one of its labels)",
            cp);
        return;
    }
    if (has(g, "scale") || has(g, "offset")) {
        err(p, e, "%s: not with scale/offset (the raw value is the index)", cp);
        return;
    }
    int n = config_setting_length(e);
    v->enum_labels = xcalloc(p, (size_t)n, sizeof(*v->enum_labels));
    if (!v->enum_labels) {
        return;
    }
    v->nenum = n;
    for (int i = 0; i < n; i++) {
        const char *label = config_setting_get_string_elem(e, i);
        if (!label || !*label || strlen(label) >= GW_STR_VALUE_MAX) {
            err(p, e, "%s[%d]: labels are 1..%d characters", cp, i, GW_STR_VALUE_MAX - 1);
            continue;
        }
        v->enum_labels[i] = xstrdup(p, label);
    }
}

static void parse_json_value(struct parser *p, const config_setting_t *g, const char *path,
                             struct gw_json_value_cfg *v)
{
    v->line = (int)config_setting_source_line(g);
    v->scale = 1;
    check_members(p, g, path, json_value_keys, N_ELEMS(json_value_keys));
    const config_setting_t *m = get_str(p, g, path, "name", REQUIRED, &v->name);
    if (m && (strlen(v->name) >= GW_NAME_MAX || !chars_ok(v->name, "_.-"))) {
        err(p, m, "%s.name: \"%s\" must be 1..%d of A-Z a-z 0-9 _ . -", path, v->name,
            GW_NAME_MAX - 1);
    }
    m = get_str(p, g, path, "path", REQUIRED, &v->path);
    const char *why = m ? json_path_problem(v->path) : NULL;
    if (why) {
        err(p, m, "%s.path: \"%s\" %s", path, v->path, why);
    }
    get_str(p, g, path, "unit", OPTIONAL, &v->unit);
    int t = GW_JSON_ANY;
    get_enum(p, g, path, "type", json_type_names, N_ELEMS(json_type_names), &t);
    v->type = (enum gw_json_type)t;
    const config_setting_t *scale = get_float(p, g, path, "scale", &v->scale);
    const config_setting_t *offset = get_float(p, g, path, "offset", &v->offset);
    if (scale && v->scale == 0) {
        err(p, scale, "%s.scale: must not be 0", path);
    }
    if ((scale || offset) && (v->type == GW_JSON_BOOL || v->type == GW_JSON_STRING)) {
        err(p, scale ? scale : offset, "%s: scale/offset need numbers, not type %s", path,
            json_type_names[v->type]);
    }
    parse_json_value_enum(p, g, path, v, has(g, "type"));
}

static void parse_json_values(struct parser *p, const config_setting_t *list, const char *ppath,
                              struct gw_profile_cfg *pr)
{
    char path[PATH_LEN];
    child_path(path, sizeof(path), ppath, "values");
    int n = config_setting_length(list);
    if (n == 0) {
        err(p, list, "%s: a json profile needs at least one value", path);
        return;
    }
    if (n > GW_MAX_POINTS) {
        err(p, list, "%s: %d values, at most %d", path, n, GW_MAX_POINTS);
        return;
    }
    pr->values = xcalloc(p, (size_t)n, sizeof(*pr->values));
    if (!pr->values) {
        return;
    }
    pr->nvalues = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        char ep[PATH_LEN];
        elem_path(ep, sizeof(ep), path, i);
        pr->values[i].scale = 1;
        if (!config_setting_is_group(g)) {
            err(p, g, "%s: expected a group { ... }, got %s", ep, ltype_name(g));
            continue;
        }
        parse_json_value(p, g, ep, &pr->values[i]);
        for (int j = 0; j < i && pr->values[i].name; j++) {
            if (pr->values[j].name && strcmp(pr->values[j].name, pr->values[i].name) == 0) {
                err(p, config_setting_get_member(g, "name"),
                    "%s.name: duplicate value name \"%s\" (first at line %d)", ep,
                    pr->values[i].name, pr->values[j].line);
                break;
            }
        }
    }
}

static const struct key modbus_profile_keys[] = {{"points", K_LIST}};

/* Keys of codec profiles, and the codec each belongs to (NULL: every codec). */
static const struct {
    const char *name;
    enum ktype type;
    const char *codec;
} codec_keys[] = {
    {"codec", K_STRING, NULL},    {"fields", K_LIST, "layout"}, {"script", K_STRING, "js"},
    {"examples", K_STRING, "js"}, {"values", K_LIST, "json"},
};

/* check_members() for a codec profile: a key of another codec is named as such. */
static void check_codec_members(struct parser *p, const config_setting_t *g, const char *path,
                                const char *codec)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(m);
        char cp[PATH_LEN];
        child_path(cp, sizeof(cp), path, name);
        size_t k = 0;
        while (k < N_ELEMS(codec_keys) && strcmp(codec_keys[k].name, name) != 0) {
            k++;
        }
        if (strcmp(name, "points") == 0) {
            err(p, m, "%s: a codec profile has no Modbus points", cp);
        } else if (k == N_ELEMS(codec_keys)) {
            err(p, m, "%s: unknown key", cp);
        } else if (codec && codec_keys[k].codec && strcmp(codec_keys[k].codec, codec) != 0) {
            err(p, m, "%s: only with codec = \"%s\"", cp, codec_keys[k].codec);
        } else if (!type_ok(m, codec_keys[k].type)) {
            err(p, m, "%s: expected %s, got %s", cp, ktype_name(codec_keys[k].type), ltype_name(m));
        }
    }
}

static void parse_codec_profile(struct parser *p, const config_setting_t *g, const char *path,
                                struct gw_profile_cfg *pr, const config_setting_t *codec)
{
    int c = -1;
    if (type_ok(codec, K_STRING) &&
        !get_enum(p, g, path, "codec", codec_names + 1, N_ELEMS(codec_names) - 1, &c)) {
        c = -1;
    }
    /* an unknown codec: its other keys cannot be judged, but still name unknown ones */
    check_codec_members(p, g, path, c >= 0 ? codec_names[c + 1] : NULL);
    if (c < 0) {
        return;
    }
    pr->codec = (enum gw_codec)(c + 1);
    switch (pr->codec) {
    case GW_CODEC_LAYOUT: {
        const config_setting_t *fields = get(g, "fields", K_LIST);
        if (fields) {
            parse_fields(p, fields, path, pr);
        } else if (!has(g, "fields")) {
            missing(p, g, path, "fields");
        }
        break;
    }
    case GW_CODEC_JS:
        check_js(p, g, path, pr);
        break;
    case GW_CODEC_JSON: {
        const config_setting_t *values = get(g, "values", K_LIST);
        if (values) {
            parse_json_values(p, values, path, pr);
        } else if (!has(g, "values")) {
            missing(p, g, path, "values");
        }
        break;
    }
    case GW_CODEC_CAYENNE_LPP: /* self-describing: nothing to configure */
    case GW_CODEC_MODBUS:
        break;
    }
}

static void parse_profile(struct parser *p, const config_setting_t *g, const char *path,
                          struct gw_profile_cfg *pr)
{
    const config_setting_t *codec = config_setting_get_member(g, "codec");
    if (codec) {
        parse_codec_profile(p, g, path, pr, codec);
        return;
    }
    pr->codec = GW_CODEC_MODBUS;
    check_members(p, g, path, modbus_profile_keys, N_ELEMS(modbus_profile_keys));
    const config_setting_t *points = get(g, "points", K_LIST);
    if (points) {
        parse_points(p, points, path, pr);
    } else if (!has(g, "points")) {
        err(p, g, "%s: needs points (Modbus) or codec (LoRa)", path);
    }
}

static void parse_profiles(struct parser *p, const config_setting_t *grp)
{
    struct gw_config *cfg = p->cfg;
    int n = config_setting_length(grp);
    cfg->profiles = xcalloc(p, (size_t)n, sizeof(*cfg->profiles));
    if (!cfg->profiles) {
        return;
    }
    cfg->nprofiles = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(grp, (unsigned)i);
        char path[PATH_LEN];
        child_path(path, sizeof(path), "profiles", config_setting_name(g));
        struct gw_profile_cfg *pr = &cfg->profiles[i];
        pr->name = xstrdup(p, config_setting_name(g));
        pr->line = (int)config_setting_source_line(g);
        if (!config_setting_is_group(g)) {
            err(p, g, "%s: expected a group { ... }, got %s", path, ltype_name(g));
            continue;
        }
        parse_profile(p, g, path, pr);
    }
}

static int find_profile(const struct gw_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->nprofiles; i++) {
        if (cfg->profiles[i].name && strcmp(cfg->profiles[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

static int find_schedule(const struct gw_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->nschedules; i++) {
        if (cfg->schedules[i].name && strcmp(cfg->schedules[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- sensors ----------------------------------------------------------- */

static const struct key sensor_keys[] = {
    {"id", K_STRING},      {"kind", K_STRING},    {"profile", K_STRING},     {"modbus", K_STRING},
    {"unit_id", K_INT},    {"interval_s", K_INT}, {"expect_every_s", K_INT}, {"timeout_ms", K_INT},
    {"location", K_GROUP}, {"lora", K_GROUP},     {"mqtt", K_GROUP},
};

static const struct key location_keys[] = {
    {"building", K_STRING},
    {"floor", K_STRING},
    {"zone", K_STRING},
};

static const struct key sensor_lora_keys[] = {
    {"dev_addr", K_STRING},  {"nwk_s_key", K_STRING},      {"nwk_s_key_file", K_STRING},
    {"app_s_key", K_STRING}, {"app_s_key_file", K_STRING}, {"relax_fcnt", K_BOOL},
};

/*
 * A session key inline or in a *_file (same rules as password_file). Messages
 * name the key's length or that it is not hex, never the key.
 */
static void parse_session_key(struct parser *p, const config_setting_t *g, const char *path,
                              const char *key, uint8_t out[LW_KEY_LEN])
{
    char *hex = NULL;
    const config_setting_t *m = get_secret(p, g, path, key, false, &hex);
    if (!m) {
        if (!has(g, key)) {
            err(p, g, "%s: missing required key \"%s\" or \"%s_file\"", path, key, key);
        }
        return;
    }
    if (!hex) {
        return; /* already reported */
    }
    char cp[PATH_LEN];
    child_path(cp, sizeof(cp), path, config_setting_name(m));
    char from[PATH_LEN + 16] = "";
    if (strcmp(config_setting_name(m), key) != 0) {
        snprintf(from, sizeof(from), "\"%s\" ", config_setting_get_string(m));
    }
    size_t n = strlen(hex);
    if (n != 2 * LW_KEY_LEN) {
        err(p, m, "%s: %smust hold 32 hex digits (16 bytes), got %zu characters", cp, from, n);
    } else if (lw_parse_key(hex, out) != 0) {
        err(p, m, "%s: %smust hold 32 hex digits (16 bytes), got a character other than 0-9 A-F",
            cp, from);
    }
    wipe_free(hex);
}

/* lora = { dev_addr; nwk_s_key; app_s_key; relax_fcnt; }: an ABP device. */
static void parse_sensor_lora(struct parser *p, const config_setting_t *g, const char *path,
                              struct gw_sensor_cfg *s, bool *addr_ok)
{
    struct gw_sensor_lora_cfg *l = &s->lora;
    l->enabled = true;
    check_members(p, g, path, sensor_lora_keys, N_ELEMS(sensor_lora_keys));
    const config_setting_t *m = get(g, "dev_addr", K_STRING);
    if (m) {
        const char *v = config_setting_get_string(m);
        if (lw_parse_dev_addr(v, &l->dev_addr) == 0) {
            *addr_ok = true;
        } else {
            err(p, m, "%s.dev_addr: \"%s\" is not 8 hex digits (e.g. \"26011BDA\")", path, v);
        }
    } else if (!has(g, "dev_addr")) {
        missing(p, g, path, "dev_addr");
    }
    parse_session_key(p, g, path, "nwk_s_key", l->nwk_s_key);
    parse_session_key(p, g, path, "app_s_key", l->app_s_key);
    get_bool(g, "relax_fcnt", &l->relax_fcnt);
    if (!p->cfg->lora.enabled) {
        err(p, g, "%s: needs the lora section (listen, region)", path);
    }
}

/* ---- a sensor's mqtt binding: readings from the hub (sensors/mqtt) ----- */

static const struct key sensor_mqtt_keys[] = {
    {"topic", K_STRING},
    {"format", K_STRING},
    {"dev_eui", K_STRING},
};

/* In gw_mqtt_format order. */
static const char *const mqtt_format_names[] = {"json", "chirpstack"};

/* Would the filter hand the gateway its own messages back (telemetry in a loop)? */
static bool mqtt_filter_hits_own(const struct gw_config *cfg, const char *filter, const char *id)
{
    if (!cfg->hub.topic_prefix || !cfg->site.district || !cfg->site.school) {
        return false;
    }
    /* a sample of each subtree the gateway publishes under P (DESIGN.md, MQTT contract) */
    static const char *const own[][2] = {{"telemetry/", ""}, {"health/", ""},  {"alarms/", "/x"},
                                         {"events", NULL},   {"status", NULL}, {"metrics", NULL}};
    for (size_t i = 0; i < N_ELEMS(own); i++) {
        char topic[GW_MQTT_TOPIC_MAX + GW_NAME_MAX + 64];
        snprintf(topic, sizeof(topic), "%s/%s/%s/%s%s%s", cfg->hub.topic_prefix, cfg->site.district,
                 cfg->site.school, own[i][0], own[i][1] ? (id ? id : "x") : "",
                 own[i][1] ? own[i][1] : "");
        if (gw_mqtt_topic_matches(filter, topic)) {
            return true;
        }
    }
    return false;
}

static void parse_mqtt_dev_eui(struct parser *p, const config_setting_t *eui, const char *path,
                               struct gw_sensor_mqtt_cfg *q)
{
    const char *v = config_setting_get_string(eui);
    size_t n = strlen(v);
    bool hex = n == 16;
    for (size_t i = 0; hex && i < n; i++) {
        hex = strchr("0123456789abcdefABCDEF", v[i]) != NULL;
    }
    if (q->format != GW_MQTT_CHIRPSTACK) {
        err(p, eui, "%s.dev_eui: only with format = \"chirpstack\"", path);
    } else if (!hex) {
        err(p, eui, "%s.dev_eui: \"%s\" is not 16 hex digits (e.g. \"0004a30b001c0530\")", path, v);
    } else {
        for (size_t i = 0; i < n; i++) {
            q->dev_eui[i] = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] - 'A' + 'a' : v[i]);
        }
    }
}

/*
 * mqtt = { topic; format; dev_eui; }. A json topic names one device; a
 * chirpstack filter with wildcards carries many, told apart by dev_eui.
 */
static void parse_sensor_mqtt(struct parser *p, const config_setting_t *g, const char *path,
                              struct gw_sensor_cfg *s, const char *spath,
                              const config_setting_t *prof)
{
    struct gw_config *cfg = p->cfg;
    struct gw_sensor_mqtt_cfg *q = &s->mqtt;
    q->enabled = true;
    check_members(p, g, path, sensor_mqtt_keys, N_ELEMS(sensor_mqtt_keys));
    int fmt = GW_MQTT_JSON;
    get_enum(p, g, path, "format", mqtt_format_names, N_ELEMS(mqtt_format_names), &fmt);
    q->format = (enum gw_mqtt_format)fmt;
    const config_setting_t *topic = get_str(p, g, path, "topic", REQUIRED, &q->topic);
    const char *why = topic ? gw_mqtt_filter_problem(q->topic, &q->wildcard) : NULL;
    if (why) {
        err(p, topic, "%s.topic: \"%s\" %s", path, q->topic, why);
    } else if (topic && q->wildcard && q->format == GW_MQTT_JSON) {
        err(p, topic,
            "%s.topic: \"%s\" has a wildcard; a json topic names one device (only "
            "format = \"chirpstack\" tells devices apart, by dev_eui)",
            path, q->topic);
    } else if (topic && mqtt_filter_hits_own(cfg, q->topic, s->id)) {
        err(p, topic,
            "%s.topic: \"%s\" matches the gateway's own topics under %s/%s/%s; it would read "
            "its own messages",
            path, q->topic, cfg->hub.topic_prefix, cfg->site.district, cfg->site.school);
    }
    const config_setting_t *eui = get(g, "dev_eui", K_STRING);
    if (eui) {
        parse_mqtt_dev_eui(p, eui, path, q);
    } else if (topic && !why && q->wildcard && q->format == GW_MQTT_CHIRPSTACK &&
               !has(g, "dev_eui")) {
        err(p, g, "%s: the topic \"%s\" has a wildcard; give dev_eui to pick this device's events",
            path, q->topic);
    }
    const struct gw_profile_cfg *pr =
        s->profile_index >= 0 ? &cfg->profiles[s->profile_index] : NULL;
    if (!pr || (pr->codec == GW_CODEC_MODBUS && pr->npoints == 0)) {
        return; /* the profile already failed */
    }
    if (pr->codec == GW_CODEC_MODBUS) {
        err(p, prof,
            "%s.profile: \"%s\" is a Modbus profile; an MQTT sensor needs a json profile (or, "
            "with format = \"chirpstack\", layout, cayenne_lpp or js)",
            spath, s->profile);
    } else if (q->format == GW_MQTT_JSON && pr->codec != GW_CODEC_JSON) {
        err(p, prof,
            "%s.profile: \"%s\" is a %s codec profile; format = \"json\" needs a json profile "
            "(codec = \"json\"; values = ( { name; path; } ))",
            spath, s->profile, codec_names[pr->codec]);
    }
}

/* Two MQTT sensors must not claim the same messages. */
static void check_mqtt_unique(struct parser *p, const config_setting_t *g, const char *path, int i)
{
    const struct gw_config *cfg = p->cfg;
    const struct gw_sensor_mqtt_cfg *q = &cfg->sensors[i].mqtt;
    if (!q->enabled || !q->topic) {
        return;
    }
    const config_setting_t *mg = config_setting_get_member(g, "mqtt");
    for (int j = 0; j < i; j++) {
        const struct gw_sensor_cfg *o = &cfg->sensors[j];
        if (!o->mqtt.enabled || !o->mqtt.topic) {
            continue;
        }
        const char *other = o->id ? o->id : "?";
        bool both_chirp = q->format == GW_MQTT_CHIRPSTACK && o->mqtt.format == GW_MQTT_CHIRPSTACK;
        if (both_chirp && q->dev_eui[0] && strcmp(q->dev_eui, o->mqtt.dev_eui) == 0) {
            err(p, config_setting_get_member(mg, "dev_eui"),
                "%s.mqtt.dev_eui: duplicate dev_eui %s (sensor \"%s\", line %d)", path, q->dev_eui,
                other, o->line);
            return;
        }
        /* the same topic with nothing to tell the two apart */
        bool tagged = both_chirp && q->dev_eui[0] && o->mqtt.dev_eui[0];
        if (!tagged && strcmp(q->topic, o->mqtt.topic) == 0) {
            err(p, config_setting_get_member(mg, "topic"),
                "%s.mqtt.topic: \"%s\" is already read by sensor \"%s\" (line %d)%s", path,
                q->topic, other, o->line, both_chirp ? "; give both a dev_eui" : "");
            return;
        }
    }
}

static void parse_sensor(struct parser *p, const config_setting_t *g, const char *path,
                         struct gw_sensor_cfg *s, bool *addr_ok)
{
    struct gw_config *cfg = p->cfg;
    s->line = (int)config_setting_source_line(g);
    s->profile_index = -1;
    s->bus_index = -1;
    s->interval_s = 10;
    check_members(p, g, path, sensor_keys, N_ELEMS(sensor_keys));
    char cp[PATH_LEN];
    const config_setting_t *m = get_str(p, g, path, "id", REQUIRED, &s->id);
    if (m && (strlen(s->id) >= GW_NAME_MAX || !chars_ok(s->id, "_.-"))) {
        err(p, m, "%s.id: \"%s\" must be 1..%d of A-Z a-z 0-9 _ . - (it is an MQTT topic level)",
            path, s->id, GW_NAME_MAX - 1);
    }
    m = get_str(p, g, path, "kind", REQUIRED, &s->kind);
    if (m && !chars_ok(s->kind, "_-")) {
        err(p, m, "%s.kind: \"%s\" may only hold A-Z a-z 0-9 _ -", path, s->kind);
    }
    const config_setting_t *prof = get_str(p, g, path, "profile", REQUIRED, &s->profile);
    if (prof) {
        s->profile_index = find_profile(cfg, s->profile);
        if (s->profile_index < 0) {
            err(p, prof, "%s.profile: unknown profile \"%s\"", path, s->profile);
        }
    }
    get_int(p, g, path, "interval_s", OPTIONAL, 1, DAY_MAX_S, &s->interval_s);
    get_int(p, g, path, "expect_every_s", OPTIONAL, 0, 7 * DAY_MAX_S, &s->expect_every_s);
    get_int(p, g, path, "timeout_ms", OPTIONAL, 10, 60000, &s->timeout_ms);

    const config_setting_t *loc = get(g, "location", K_GROUP);
    if (loc) {
        child_path(cp, sizeof(cp), path, "location");
        check_members(p, loc, cp, location_keys, N_ELEMS(location_keys));
        get_str(p, loc, cp, "building", OPTIONAL, &s->location.building);
        get_str(p, loc, cp, "floor", OPTIONAL, &s->location.floor);
        get_str(p, loc, cp, "zone", OPTIONAL, &s->location.zone);
    }

    const config_setting_t *bus = get(g, "modbus", K_STRING);
    const config_setting_t *lora = config_setting_get_member(g, "lora");
    const config_setting_t *mqtt = config_setting_get_member(g, "mqtt");
    int nbind = (has(g, "modbus") ? 1 : 0) + (lora ? 1 : 0) + (mqtt ? 1 : 0);
    if (nbind > 1) {
        err(p, g, "%s: give one of modbus, lora, mqtt", path);
        return;
    }
    if (mqtt && config_setting_is_group(mqtt)) {
        child_path(cp, sizeof(cp), path, "mqtt");
        parse_sensor_mqtt(p, mqtt, cp, s, path, prof);
        /* a pushed sensor: nothing to poll, nothing to time out */
        static const char *const poll_keys[] = {"interval_s", "timeout_ms"};
        for (size_t i = 0; i < N_ELEMS(poll_keys); i++) {
            m = config_setting_get_member(g, poll_keys[i]);
            if (m) {
                child_path(cp, sizeof(cp), path, poll_keys[i]);
                err(p, m, "%s: only for Modbus sensors (an MQTT sensor's period is expect_every_s)",
                    cp);
            }
        }
        if (s->expect_every_s == 0 && !has(g, "expect_every_s")) {
            warn(p, g,
                 "%s: no expect_every_s; an MQTT sensor that falls silent is never reported "
                 "offline",
                 path);
        }
    }
    if (lora && config_setting_is_group(lora)) {
        child_path(cp, sizeof(cp), path, "lora");
        parse_sensor_lora(p, lora, cp, s, addr_ok);
        const struct gw_profile_cfg *pr =
            s->profile_index >= 0 ? &cfg->profiles[s->profile_index] : NULL;
        /* npoints 0: the profile failed already (or its codec was unknown) */
        if (pr && pr->codec == GW_CODEC_MODBUS && pr->npoints > 0) {
            err(p, prof,
                "%s.profile: \"%s\" is a Modbus profile; a LoRa sensor needs a codec profile "
                "(layout, cayenne_lpp or js)",
                path, s->profile);
        } else if (pr && pr->codec == GW_CODEC_JSON) {
            err(p, prof,
                "%s.profile: \"%s\" is a json profile (MQTT sources); a LoRa sensor needs "
                "layout, cayenne_lpp or js",
                path, s->profile);
        }
        /* a LoRa device reports when it wants: nothing to poll, nothing to time out */
        static const char *const poll_keys[] = {"interval_s", "timeout_ms"};
        for (size_t i = 0; i < N_ELEMS(poll_keys); i++) {
            m = config_setting_get_member(g, poll_keys[i]);
            if (m) {
                child_path(cp, sizeof(cp), path, poll_keys[i]);
                err(p, m, "%s: only for Modbus sensors (a LoRa sensor's period is expect_every_s)",
                    cp);
            }
        }
        if (s->expect_every_s == 0 && !has(g, "expect_every_s")) {
            warn(p, g,
                 "%s: no expect_every_s; a LoRa sensor that falls silent is never reported "
                 "offline",
                 path);
        }
    }
    const config_setting_t *unit = config_setting_get_member(g, "unit_id");
    if (bus) {
        get_str(p, g, path, "modbus", OPTIONAL, &s->bus);
        if (s->bus) {
            s->bus_index = gw_config_find_bus(cfg, s->bus);
            if (s->bus_index < 0) {
                err(p, bus, "%s.modbus: unknown bus \"%s\"", path, s->bus);
            }
        }
        if (s->profile_index >= 0 && cfg->profiles[s->profile_index].codec != GW_CODEC_MODBUS) {
            err(p, prof, "%s.profile: \"%s\" is a %s codec profile, not a Modbus profile", path,
                s->profile, codec_names[cfg->profiles[s->profile_index].codec]);
        }
        m = get_int(p, g, path, "unit_id", REQUIRED, 0, 247, &s->unit_id);
        if (m && s->unit_id == 0 && s->bus_index >= 0 &&
            cfg->buses[s->bus_index].type == GW_BUS_RTU) {
            err(p, m, "%s.unit_id: 0 is the RTU broadcast address; use 1..247", path);
        }
    } else if (!has(g, "modbus")) {
        if (!lora && !mqtt) {
            err(p, g, "%s: needs modbus = \"<bus name>\"", path);
        } else if (unit) {
            child_path(cp, sizeof(cp), path, "unit_id");
            err(p, unit, "%s: only for Modbus sensors", cp);
        }
    }
}

static void parse_sensors(struct parser *p, const config_setting_t *list)
{
    struct gw_config *cfg = p->cfg;
    int n = config_setting_length(list);
    cfg->sensors = xcalloc(p, (size_t)n, sizeof(*cfg->sensors));
    bool *addr_ok = xcalloc(p, (size_t)n, sizeof(*addr_ok));
    if (!cfg->sensors || !addr_ok) {
        free(addr_ok);
        return;
    }
    cfg->nsensors = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct gw_sensor_cfg *s = &cfg->sensors[i];
        char path[PATH_LEN];
        elem_path(path, sizeof(path), "sensors", i);
        s->profile_index = -1;
        s->bus_index = -1;
        if (!config_setting_is_group(g)) {
            err(p, g, "%s: expected a group { ... }, got %s", path, ltype_name(g));
            continue;
        }
        parse_sensor(p, g, path, s, &addr_ok[i]);
        for (int j = 0; j < i && s->id; j++) {
            if (cfg->sensors[j].id && strcmp(cfg->sensors[j].id, s->id) == 0) {
                err(p, config_setting_get_member(g, "id"),
                    "%s.id: duplicate sensor id \"%s\" (first at line %d)", path, s->id,
                    cfg->sensors[j].line);
                break;
            }
        }
        check_mqtt_unique(p, g, path, i);
        /* the DevAddr picks the keys of an uplink: it must name one device */
        for (int j = 0; j < i && addr_ok[i]; j++) {
            if (addr_ok[j] && cfg->sensors[j].lora.dev_addr == s->lora.dev_addr) {
                const config_setting_t *lg = config_setting_get_member(g, "lora");
                err(p, config_setting_get_member(lg, "dev_addr"),
                    "%s.lora.dev_addr: duplicate dev_addr %08X (sensor \"%s\", line %d)", path,
                    s->lora.dev_addr, cfg->sensors[j].id ? cfg->sensors[j].id : "?",
                    cfg->sensors[j].line);
                break;
            }
        }
    }
    free(addr_ok);
}

/* ---- rules ------------------------------------------------------------- */

static const struct key rule_keys[] = {
    {"name", K_STRING},      {"kind", K_STRING},       {"sensor", K_STRING},
    {"point", K_STRING},     {"above", K_FLOAT},       {"below", K_FLOAT},
    {"deadband", K_FLOAT},   {"equals", K_SCALAR},     {"rate_above", K_FLOAT},
    {"rate_below", K_FLOAT}, {"offline_after", K_INT}, {"during", K_STRING},
    {"on_delay_s", K_INT},   {"off_delay_s", K_INT},   {"latch", K_BOOL},
    {"class", K_STRING},
};

/* In gw_rule_cond order. */
static const char *const cond_keys[] = {"above",      "below",      "equals",
                                        "rate_above", "rate_below", "offline_after"};

static const char *const class_names[] = {"alarm", "supervisory", "trouble"};

static bool rule_applies(const struct gw_rule_cfg *r, const struct gw_sensor_cfg *s)
{
    if (!s->id || !s->kind) {
        return false;
    }
    if (r->kind && strcmp(r->kind, s->kind) != 0) {
        return false;
    }
    if (r->sensor && strcmp(r->sensor, s->id) != 0) {
        return false;
    }
    /* offline needs a known cadence: a poll interval (Modbus) or an expected report period */
    return r->cond != GW_COND_OFFLINE || s->bus_index >= 0 || s->expect_every_s > 0;
}

static void parse_equals(struct parser *p, const config_setting_t *m, const char *path,
                         struct gw_rule_cfg *r)
{
    switch (config_setting_type(m)) {
    case CONFIG_TYPE_BOOL:
        r->equals.type = GW_VALUE_BOOL;
        r->equals.b = config_setting_get_bool(m) != 0;
        r->equals.num = r->equals.b ? 1 : 0;
        break;
    case CONFIG_TYPE_STRING: {
        const char *v = config_setting_get_string(m);
        if (!*v || strlen(v) >= GW_STR_VALUE_MAX) {
            err(p, m, "%s.equals: a string value must be 1..%d bytes", path, GW_STR_VALUE_MAX - 1);
            return;
        }
        r->equals.type = GW_VALUE_STRING;
        snprintf(r->equals.str, sizeof(r->equals.str), "%s", v);
        break;
    }
    default: {
        double v = 0;
        if (get_float(p, config_setting_parent(m), path, "equals", &v)) {
            r->equals.type = GW_VALUE_NUMBER;
            r->equals.num = v;
        }
        break;
    }
    }
}

static void parse_rule(struct parser *p, const config_setting_t *g, const char *path,
                       struct gw_rule_cfg *r)
{
    struct gw_config *cfg = p->cfg;
    r->line = (int)config_setting_source_line(g);
    r->schedule_index = -1;
    check_members(p, g, path, rule_keys, N_ELEMS(rule_keys));
    char cp[PATH_LEN];
    const config_setting_t *m = get_str(p, g, path, "name", REQUIRED, &r->name);
    if (m) {
        size_t n = strlen(r->name) + 1;
        r->slug = malloc(n);
        if (!r->slug) {
            err(p, m, "out of memory");
        } else {
            gw_slugify(r->name, r->slug, n);
            if (!r->slug[0]) {
                err(p, m, "%s.name: \"%s\" has no letters or digits for a slug", path, r->name);
            }
        }
    }
    int cls = 0;
    bool cls_ok = get_enum(p, g, path, "class", class_names, N_ELEMS(class_names), &cls);
    if (cls_ok) {
        r->alarm_class = (enum gw_alarm_class)cls;
    } else if (!has(g, "class")) {
        missing(p, g, path, "class");
    }
    const config_setting_t *kind = get_str(p, g, path, "kind", OPTIONAL, &r->kind);
    const config_setting_t *sensor = get_str(p, g, path, "sensor", OPTIONAL, &r->sensor);
    const config_setting_t *point = get_str(p, g, path, "point", OPTIONAL, &r->point);

    /* exactly one condition; a conflict is named in file order, at the later key */
    const config_setting_t *conds[N_ELEMS(cond_keys)];
    int ncond = 0;
    int first = -1;
    int second = -1;
    for (size_t i = 0; i < N_ELEMS(cond_keys); i++) {
        conds[i] = config_setting_get_member(g, cond_keys[i]);
        if (!conds[i]) {
            continue;
        }
        ncond++;
        unsigned line = config_setting_source_line(conds[i]);
        if (first < 0 || line < config_setting_source_line(conds[first])) {
            second = first;
            first = (int)i;
        } else if (second < 0 || line < config_setting_source_line(conds[second])) {
            second = (int)i;
        }
    }
    if (ncond == 0) {
        err(p, g,
            "%s: no condition; give one of above, below, equals, rate_above, rate_below, "
            "offline_after",
            path);
    } else if (ncond > 1) {
        err(p, conds[second],
            "%s: %s and %s conflict; a rule has one condition (write one rule per condition)", path,
            cond_keys[first], cond_keys[second]);
    }
    r->cond = (enum gw_rule_cond)(first < 0 ? 0 : first);
    if (ncond == 1) {
        switch (r->cond) {
        case GW_COND_ABOVE:
        case GW_COND_BELOW:
        case GW_COND_RATE_ABOVE:
        case GW_COND_RATE_BELOW:
            get_float(p, g, path, cond_keys[first], &r->threshold);
            break;
        case GW_COND_EQUALS:
            if (type_ok(conds[first], K_SCALAR)) {
                parse_equals(p, conds[first], path, r);
            }
            break;
        case GW_COND_OFFLINE:
            get_int(p, g, path, "offline_after", OPTIONAL, 1, 1000000, &r->offline_after);
            break;
        }
    }
    bool offline = ncond == 1 && r->cond == GW_COND_OFFLINE;
    const config_setting_t *db = get_float(p, g, path, "deadband", &r->deadband);
    if (db && r->deadband < 0) {
        err(p, db, "%s.deadband: %g is negative", path, r->deadband);
    }
    if (db && ncond == 1 && (r->cond == GW_COND_EQUALS || offline)) {
        err(p, db, "%s.deadband: only with above, below, rate_above or rate_below", path);
    }
    if (offline && point) {
        err(p, point, "%s.point: an offline_after rule watches the whole sensor; remove point",
            path);
    }
    if (!offline && ncond == 1 && !point && !has(g, "point")) {
        missing(p, g, path, "point");
    }

    m = get(g, "during", K_STRING);
    if (m) {
        const char *name = config_setting_get_string(m);
        r->schedule_index = find_schedule(cfg, name);
        if (r->schedule_index < 0) {
            err(p, m, "%s.during: unknown schedule \"%s\"", path, name);
        }
    }
    const config_setting_t *on =
        get_int(p, g, path, "on_delay_s", OPTIONAL, 0, DAY_MAX_S, &r->on_delay_s);
    get_int(p, g, path, "off_delay_s", OPTIONAL, 0, DAY_MAX_S, &r->off_delay_s);
    get_bool(g, "latch", &r->latch);
    if (on && cls_ok && r->alarm_class == GW_CLASS_ALARM && r->on_delay_s > ALARM_MAX_ON_DELAY_S) {
        err(p, on,
            "%s.on_delay_s: %d s would delay a fire alarm; GB 26875.1 allows 10 s to pass an "
            "alarm on, so an alarm-class rule may wait at most %d s",
            path, r->on_delay_s, ALARM_MAX_ON_DELAY_S);
    }

    /* references to sensors and points */
    if (kind && !chars_ok(r->kind, "_-")) {
        err(p, kind, "%s.kind: \"%s\" may only hold A-Z a-z 0-9 _ -", path, r->kind);
    }
    if (sensor) {
        int si = gw_config_find_sensor(cfg, r->sensor);
        if (si < 0) {
            err(p, sensor, "%s.sensor: unknown sensor \"%s\"", path, r->sensor);
            return;
        }
        const struct gw_sensor_cfg *s = &cfg->sensors[si];
        if (r->kind && s->kind && strcmp(r->kind, s->kind) != 0) {
            err(p, sensor, "%s.sensor: \"%s\" is of kind \"%s\", not \"%s\"", path, r->sensor,
                s->kind, r->kind);
            return;
        }
    }
    /*
     * The point must exist in the profile of some sensor in scope, unless one of them uses a
     * codec whose names come with the data (cayenne_lpp, js).
     */
    int nscope = 0;
    bool found = false;
    bool fixed = true; /* every profile in scope has fixed numeric/bool points */
    bool layout = false;
    bool modbus = false;
    for (int i = 0; i < cfg->nsensors; i++) {
        const struct gw_sensor_cfg *s = &cfg->sensors[i];
        if (!rule_applies(r, s)) {
            continue;
        }
        nscope++;
        if (s->profile_index < 0) {
            found = true; /* already an error; do not pile on */
            fixed = false;
            continue;
        }
        const struct gw_profile_cfg *pr = &cfg->profiles[s->profile_index];
        bool is_enum = false;
        switch (pr->codec) {
        case GW_CODEC_MODBUS:
            modbus = true;
            if (pr->npoints == 0) {
                found = true; /* the profile already failed */
                fixed = false;
            }
            for (int j = 0; r->point && j < pr->npoints; j++) {
                bool same = pr->points[j].name && strcmp(pr->points[j].name, r->point) == 0;
                found = found || same;
                is_enum = is_enum || (same && pr->points[j].nenum > 0);
            }
            break;
        case GW_CODEC_LAYOUT:
            layout = true;
            if (pr->nfields == 0) {
                found = true;
                fixed = false;
            }
            for (int j = 0; r->point && j < pr->nfields; j++) {
                bool same = pr->fields[j].name && strcmp(pr->fields[j].name, r->point) == 0;
                found = found || same;
                is_enum = is_enum || (same && pr->fields[j].nenum > 0);
            }
            break;
        case GW_CODEC_CAYENNE_LPP:
        case GW_CODEC_JS:
            found = true; /* names come with the data */
            fixed = false;
            break;
        case GW_CODEC_JSON:
            fixed = false; /* the payload decides: numbers, true/false or strings */
            if (pr->nvalues == 0) {
                found = true; /* the profile already failed */
            }
            for (int j = 0; r->point && j < pr->nvalues; j++) {
                found = found || (pr->values[j].name && strcmp(pr->values[j].name, r->point) == 0);
            }
            break;
        }
        if (is_enum) {
            fixed = false; /* an enum point has string values */
        }
    }
    if (nscope == 0) {
        warn(p, g, "%s: applies to no sensor%s", path,
             offline ? " (offline_after needs Modbus sensors or expect_every_s)" : "");
        return;
    }
    if (r->point && !found) {
        child_path(cp, sizeof(cp), path, "point");
        if (r->sensor) {
            err(p, point, "%s: the profile of sensor \"%s\" has no point \"%s\"", cp, r->sensor,
                r->point);
        } else if (r->kind) {
            err(p, point, "%s: no profile of the \"%s\" sensors has a point \"%s\"", cp, r->kind,
                r->point);
        } else {
            err(p, point, "%s: no sensor's profile has a point \"%s\"", cp, r->point);
        }
    }
    if (fixed && ncond == 1 && r->equals.type == GW_VALUE_STRING) {
        const char *what = !layout   ? "Modbus points are"
                           : !modbus ? "layout fields are"
                                     : "Modbus points and layout fields are";
        err(p, conds[first],
            "%s.equals: %s numbers or true/false unless the point has an enum; a string never "
            "matches",
            path, what);
    }
}

static void parse_rules(struct parser *p, const config_setting_t *list)
{
    struct gw_config *cfg = p->cfg;
    int n = config_setting_length(list);
    cfg->rules = xcalloc(p, (size_t)n, sizeof(*cfg->rules));
    if (!cfg->rules) {
        return;
    }
    cfg->nrules = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct gw_rule_cfg *r = &cfg->rules[i];
        char path[PATH_LEN];
        elem_path(path, sizeof(path), "rules", i);
        r->schedule_index = -1;
        if (!config_setting_is_group(g)) {
            err(p, g, "%s: expected a group { ... }, got %s", path, ltype_name(g));
            continue;
        }
        parse_rule(p, g, path, r);
        const config_setting_t *name = config_setting_get_member(g, "name");
        for (int j = 0; j < i && r->name && r->slug && r->slug[0]; j++) {
            const struct gw_rule_cfg *o = &cfg->rules[j];
            if (o->name && strcmp(o->name, r->name) == 0) {
                err(p, name, "%s.name: duplicate rule name \"%s\" (first at line %d)", path,
                    r->name, o->line);
                break;
            }
            if (o->slug && strcmp(o->slug, r->slug) == 0) {
                err(p, name,
                    "%s.name: \"%s\" has the same slug \"%s\" as \"%s\" (line %d); alarm keys "
                    "would collide",
                    path, r->name, r->slug, o->name, o->line);
                break;
            }
        }
    }
}

/* ---- people: smtp, contacts, escalation (who is told, how, when) ------- */

#define WEEK_S 604800

/* Where a URL's host is: scheme://[userinfo@]host[:port][/path][?query]. */
struct url_parts {
    const char *host; /* inside the brackets of an IPv6 literal */
    size_t hlen;
    int port; /* 0: none given */
    bool userinfo;
    const char *rest; /* from the first '/', '?' or '#' after the host; "" when none */
};

/*
 * Splits url (its scheme, `skip` bytes, already checked). NULL when it is
 * well-formed, else why not. The reason never quotes the URL: a webhook's
 * URL holds its key.
 */
static const char *split_url(const char *url, size_t skip, struct url_parts *u)
{
    for (const unsigned char *c = (const unsigned char *)url; *c; c++) {
        if (*c <= ' ' || *c == 0x7f) {
            return "must not hold spaces or control characters";
        }
    }
    const char *auth = url + skip;
    size_t alen = strcspn(auth, "/?#");
    u->rest = auth + alen;
    const char *at = NULL;
    for (const char *c = auth; c < auth + alen; c++) {
        at = *c == '@' ? c : at;
    }
    u->userinfo = at != NULL;
    if (at) {
        alen -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    const char *port = NULL;
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close || (close + 1 != auth + alen && close[1] != ':')) {
            return "has a bad [IPv6] address";
        }
        u->host = auth + 1;
        u->hlen = (size_t)(close - u->host);
        port = close + 1 != auth + alen ? close + 2 : NULL;
    } else {
        const char *colon = memchr(auth, ':', alen);
        u->host = auth;
        u->hlen = colon ? (size_t)(colon - auth) : alen;
        port = colon ? colon + 1 : NULL;
    }
    if (u->hlen == 0) {
        return "has no host";
    }
    u->port = 0;
    if (port) {
        size_t plen = (size_t)(auth + alen - port);
        long n = 0;
        bool ok = plen > 0 && plen <= 5;
        for (size_t i = 0; ok && i < plen; i++) {
            ok = port[i] >= '0' && port[i] <= '9';
            n = n * 10 + (port[i] - '0');
        }
        if (!ok || n < 1 || n > 65535) {
            return "has a bad port (1..65535)";
        }
        u->port = (int)n;
    }
    return NULL;
}

/*
 * name@domain: one '@', something on both sides, nothing that would break an
 * SMTP envelope (RCPT TO:<...>) or a header: no spaces, controls, <>,;"().
 */
static bool address_ok(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at || at == s || at == s + n - 1 || memchr(at + 1, '@', (size_t)(s + n - at - 1))) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || strchr("<>,;\"()[]\\", c)) {
            return false;
        }
    }
    return true;
}

static const struct key smtp_keys[] = {
    {"url", K_STRING},  {"username", K_STRING}, {"password", K_STRING}, {"password_file", K_STRING},
    {"from", K_STRING}, {"ca_file", K_STRING},  {"insecure", K_BOOL},
};

/*
 * smtps://host[:port] (TLS from the start) or smtp://host[:port] (STARTTLS,
 * required). No path, no user:password@. Without a port, 465 or 587 (mail
 * submission, not curl's 25) is written into the url.
 */
static void check_smtp_url(struct parser *p, const config_setting_t *m, char **url)
{
    const char *cp = "smtp.url";
    const char *v = *url;
    size_t skip;
    if (strncasecmp(v, "smtps://", 8) == 0) {
        skip = 8;
    } else if (strncasecmp(v, "smtp://", 7) == 0) {
        skip = 7;
    } else {
        err(p, m, "%s: \"%s\" must start with smtps:// (TLS) or smtp:// (STARTTLS)", cp, v);
        return;
    }
    struct url_parts u;
    const char *why = split_url(v, skip, &u);
    if (why) {
        err(p, m, "%s: \"%s\" %s", cp, v, why);
        return;
    }
    if (u.userinfo) {
        /* the summary prints the url: no credentials in it (not echoed here either) */
        err(p, m, "%s: must not hold user:password@; use username and password", cp);
        return;
    }
    if (u.rest[0] && strcmp(u.rest, "/") != 0) {
        err(p, m, "%s: \"%s\" must be smtps://host[:port] or smtp://host[:port], without a path",
            cp, v);
        return;
    }
    size_t n = (size_t)(u.rest - v);
    char *d = malloc(n + sizeof(":65535"));
    if (!d) {
        err(p, m, "out of memory");
        return;
    }
    memcpy(d, v, n);
    d[n] = '\0';
    if (!u.port) {
        snprintf(d + n, sizeof(":65535"), ":%d", skip == 8 ? 465 : 587);
    }
    free(*url);
    *url = d;
}

/* from = "gw@school.cn" or "Name <gw@school.cn>". */
static bool from_ok(const char *s)
{
    size_t n = strlen(s);
    const char *lt = strchr(s, '<');
    if (!lt) {
        return address_ok(s, n);
    }
    for (const unsigned char *c = (const unsigned char *)s; c < (const unsigned char *)lt; c++) {
        if (*c < ' ' || *c == 0x7f || *c == '>') {
            return false; /* a CR/LF would start a new header */
        }
    }
    return n >= 2 && s[n - 1] == '>' && address_ok(lt + 1, (size_t)(s + n - 1 - lt - 1));
}

static void parse_smtp(struct parser *p, const config_setting_t *g)
{
    struct gw_smtp_cfg *s = &p->cfg->smtp;
    const char *path = "smtp";
    s->enabled = true;
    s->line = (int)config_setting_source_line(g);
    check_members(p, g, path, smtp_keys, N_ELEMS(smtp_keys));
    const config_setting_t *m = get_str(p, g, path, "url", REQUIRED, &s->url);
    if (m) {
        check_smtp_url(p, m, &s->url);
    }
    const config_setting_t *user = get_str(p, g, path, "username", OPTIONAL, &s->username);
    /* SMTP AUTH: both or neither */
    const config_setting_t *secret = get_secret(p, g, path, "password", false, &s->password);
    if (secret && !user && !has(g, "username")) {
        err(p, secret, "smtp.%s: needs username too", config_setting_name(secret));
    }
    if (user && !has(g, "password") && !has(g, "password_file")) {
        err(p, user, "smtp.username: needs password or password_file too");
    }
    m = get_str(p, g, path, "from", REQUIRED, &s->from);
    if (m && !from_ok(s->from)) {
        err(p, m, "smtp.from: \"%s\" is not an address or \"Name <address>\"", s->from);
    }
    const config_setting_t *ca = get_str(p, g, path, "ca_file", OPTIONAL, &s->ca_file);
    if (ca) {
        check_readable(p, ca, "smtp.ca_file", s->ca_file);
    }
    const config_setting_t *insecure = get_bool(g, "insecure", &s->insecure);
    if (insecure && s->insecure) {
        warn(p, insecure, "smtp.insecure: certificate checks are off; use it only for tests");
    }
}

static const struct key channel_keys[] = {
    {"mqtt", K_STRING},   {"webhook", K_STRING}, {"email", K_STRING},
    {"format", K_STRING}, {"timeout_ms", K_INT}, {"retries", K_INT},
};

/* In gw_channel_kind order. */
static const char *const channel_kind_names[] = {"mqtt", "webhook", "email"};
/* In gw_webhook_format order. */
static const char *const webhook_format_names[] = {"json", "wecom", "dingtalk"};

/*
 * A channel's topic, published at P/<topic>. Only under notify/, so that the
 * P/notify/<contact> contract holds and the hub ACL can give a pager or a
 * display `topic read campus/+/+/notify/#` alone; and a notification can then
 * never land on the gateway's own topics (overwrite a retained alarm, forge a
 * command on cmd/).
 */
static const char *notify_topic_problem(const char *t)
{
    size_t n = strlen(t);
    for (const unsigned char *c = (const unsigned char *)t; *c; c++) {
        if (*c < ' ' || *c == 0x7f) {
            return "must not hold control characters";
        }
    }
    if (n > GW_MQTT_TOPIC_MAX) {
        return "is too long (at most 512 bytes)";
    }
    if (strpbrk(t, "+#")) {
        return "must not hold + or # (it is a topic to publish on, not a filter)";
    }
    if (t[0] == '/') {
        return "must not start with '/' (it is a topic under the site prefix)";
    }
    if (strncmp(t, "notify/", 7) != 0) {
        return "must start with notify/ (notifications go to P/notify/...; the hub ACL grants "
               "them apart from the gateway's other topics)";
    }
    if (n == 7 || t[n - 1] == '/' || strstr(t, "//")) {
        return "must name a level after notify/ and have no empty levels (e.g. "
               "\"notify/facilities\")";
    }
    return NULL;
}

/* webhook = "https://...": the URL holds the robot's key, so no message quotes it. */
static void check_webhook_url(struct parser *p, const config_setting_t *m, const char *cp,
                              const char *url)
{
    size_t skip;
    bool https = false;
    if (strncasecmp(url, "https://", 8) == 0) {
        skip = 8;
        https = true;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        skip = 7;
    } else {
        err(p, m, "%s: must start with https:// or http://", cp);
        return;
    }
    struct url_parts u;
    const char *why = split_url(url, skip, &u);
    if (why) {
        err(p, m, "%s: %s", cp, why);
    } else if (!https && !is_loopback(u.host, u.hlen)) {
        warn(p, m,
             "%s: http:// to \"%.*s\", a host that is not loopback; the URL (with any key in it) "
             "and every message would cross the network in clear text (use https://)",
             cp, (int)u.hlen, u.host);
    }
}

static void parse_channel(struct parser *p, const config_setting_t *g, const char *path,
                          struct gw_channel_cfg *c)
{
    c->line = (int)config_setting_source_line(g);
    check_members(p, g, path, channel_keys, N_ELEMS(channel_keys));
    /* exactly one kind; a conflict is named at the later key, as for rule conditions */
    const config_setting_t *kinds[N_ELEMS(channel_kind_names)];
    int nkinds = 0;
    int first = -1;
    int second = -1;
    for (size_t i = 0; i < N_ELEMS(channel_kind_names); i++) {
        kinds[i] = config_setting_get_member(g, channel_kind_names[i]);
        if (!kinds[i]) {
            continue;
        }
        nkinds++;
        unsigned line = config_setting_source_line(kinds[i]);
        if (first < 0 || line < config_setting_source_line(kinds[first])) {
            second = first;
            first = (int)i;
        } else if (second < 0 || line < config_setting_source_line(kinds[second])) {
            second = (int)i;
        }
    }
    if (nkinds == 0) {
        err(p, g, "%s: needs one of mqtt, webhook, email", path);
        return;
    }
    if (nkinds > 1) {
        err(p, kinds[second],
            "%s: %s and %s conflict; a channel is one of mqtt, webhook, email (give each its own "
            "{ ... })",
            path, channel_kind_names[first], channel_kind_names[second]);
        return;
    }
    c->kind = (enum gw_channel_kind)first;
    char cp[PATH_LEN];
    child_path(cp, sizeof(cp), path, channel_kind_names[first]);
    const config_setting_t *m =
        get_str(p, g, path, channel_kind_names[first], OPTIONAL, &c->target);
    if (m) {
        const char *why = NULL;
        switch (c->kind) {
        case GW_CHANNEL_MQTT:
            why = notify_topic_problem(c->target);
            if (why) {
                err(p, m, "%s: \"%s\" %s", cp, c->target, why);
            }
            break;
        case GW_CHANNEL_WEBHOOK:
            check_webhook_url(p, m, cp, c->target);
            break;
        case GW_CHANNEL_EMAIL:
            if (!address_ok(c->target, strlen(c->target))) {
                err(p, m, "%s: \"%s\" is not an email address (name@domain, no spaces)", cp,
                    c->target);
            } else if (!p->cfg->smtp.enabled) {
                err(p, m, "%s: needs the smtp section (url, from) to send through", cp);
            }
            break;
        }
    }
    int fmt = GW_WEBHOOK_JSON;
    const config_setting_t *f =
        get_enum(p, g, path, "format", webhook_format_names, N_ELEMS(webhook_format_names), &fmt);
    c->format = (enum gw_webhook_format)fmt;
    if (f && c->kind != GW_CHANNEL_WEBHOOK) {
        err(p, f, "%s.format: only for webhook channels", path);
    }
    if (c->kind == GW_CHANNEL_MQTT) {
        /* a publish to the hub goes through the outbox: no timeout, no retry count */
        static const char *const delivery[] = {"timeout_ms", "retries"};
        for (size_t i = 0; i < N_ELEMS(delivery); i++) {
            const config_setting_t *d = config_setting_get_member(g, delivery[i]);
            if (d) {
                err(p, d, "%s.%s: only for webhook and email channels", path, delivery[i]);
            }
        }
        return;
    }
    c->timeout_ms = 10000;
    c->retries = 3;
    get_int(p, g, path, "timeout_ms", OPTIONAL, 1000, 120000, &c->timeout_ms);
    get_int(p, g, path, "retries", OPTIONAL, 0, 10, &c->retries);
}

/* contacts = { name = ( channel, ... ); ... }. Runs after parse_smtp. */
static void parse_contacts(struct parser *p, const config_setting_t *grp)
{
    struct gw_config *cfg = p->cfg;
    int n = config_setting_length(grp);
    cfg->contacts = xcalloc(p, (size_t)n, sizeof(*cfg->contacts));
    if (!cfg->contacts) {
        return;
    }
    cfg->ncontacts = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(grp, (unsigned)i);
        struct gw_contact_cfg *c = &cfg->contacts[i];
        const char *name = config_setting_name(m);
        char path[PATH_LEN];
        child_path(path, sizeof(path), "contacts", name);
        c->name = xstrdup(p, name);
        c->line = (int)config_setting_source_line(m);
        if (strlen(name) >= GW_NAME_MAX || !chars_ok(name, "_-")) {
            err(p, m, "%s: \"%s\" must be 1..%d of A-Z a-z 0-9 _ - (it is an MQTT topic level)",
                path, name, GW_NAME_MAX - 1);
        }
        if (!type_ok(m, K_LIST)) {
            err(p, m, "%s: expected %s, got %s", path, ktype_name(K_LIST), ltype_name(m));
            continue;
        }
        int nch = config_setting_length(m);
        if (nch == 0) {
            err(p, m, "%s: needs at least one channel, e.g. ( { mqtt = \"notify/%s\"; } )", path,
                name);
            continue;
        }
        c->channels = xcalloc(p, (size_t)nch, sizeof(*c->channels));
        if (!c->channels) {
            continue;
        }
        c->nchannels = nch;
        for (int j = 0; j < nch; j++) {
            const config_setting_t *g = config_setting_get_elem(m, (unsigned)j);
            char cpath[PATH_LEN];
            elem_path(cpath, sizeof(cpath), path, j);
            if (!config_setting_is_group(g)) {
                err(p, g, "%s: expected a group { ... }, got %s", cpath, ltype_name(g));
                continue;
            }
            parse_channel(p, g, cpath, &c->channels[j]);
        }
    }
}

static int find_contact(const struct gw_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->ncontacts; i++) {
        if (cfg->contacts[i].name && strcmp(cfg->contacts[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

static const struct key escalation_keys[] = {
    {"alarm", K_LIST},
    {"supervisory", K_LIST},
    {"trouble", K_LIST},
};

static const struct key level_keys[] = {
    {"after_s", K_INT},
    {"notify", K_STRINGS},
    {"repeat_s", K_INT},
};

/* notify = [ "facilities", "principal" ]: names of contacts, each once. */
static void parse_level_notify(struct parser *p, const config_setting_t *g, const char *path,
                               struct gw_escalation_level_cfg *lv)
{
    const config_setting_t *nt = get(g, "notify", K_STRINGS);
    if (!nt) {
        if (!has(g, "notify")) {
            missing(p, g, path, "notify");
        }
        return;
    }
    int n = config_setting_length(nt);
    lv->contacts = xcalloc(p, (size_t)n, sizeof(*lv->contacts));
    if (!lv->contacts) {
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *name = config_setting_get_string_elem(nt, i);
        int c = name ? find_contact(p->cfg, name) : -1;
        if (c < 0) {
            err(p, nt, "%s.notify: unknown contact \"%s\"", path, name ? name : "");
            continue;
        }
        bool dup = false;
        for (int j = 0; j < lv->ncontacts && !dup; j++) {
            dup = lv->contacts[j] == c;
        }
        if (dup) {
            err(p, nt, "%s.notify: \"%s\" is listed twice", path, name);
            continue;
        }
        lv->contacts[lv->ncontacts++] = c;
    }
}

/* *prev: after_s of the level before (-1 for the first); updated when this one is good. */
static void parse_level(struct parser *p, const config_setting_t *g, const char *path,
                        struct gw_escalation_level_cfg *lv, int *prev, bool last)
{
    lv->line = (int)config_setting_source_line(g);
    check_members(p, g, path, level_keys, N_ELEMS(level_keys));
    const config_setting_t *m = get_int(p, g, path, "after_s", REQUIRED, 0, WEEK_S, &lv->after_s);
    if (m && *prev >= 0 && lv->after_s <= *prev) {
        err(p, m, "%s.after_s: %d is not after the level before (%d); levels go in time order",
            path, lv->after_s, *prev);
    } else if (m) {
        *prev = lv->after_s;
    }
    parse_level_notify(p, g, path, lv);
    const config_setting_t *rp = config_setting_get_member(g, "repeat_s");
    if (rp && !last) {
        err(p, rp,
            "%s.repeat_s: only on the last level (it tells the last level again until someone "
            "acknowledges)",
            path);
    } else if (rp) {
        get_int(p, g, path, "repeat_s", OPTIONAL, 60, DAY_MAX_S, &lv->repeat_s);
    }
}

/* escalation = { alarm = ( level, ... ); supervisory = (...); trouble = (...); }. After contacts.
 */
static void parse_escalation(struct parser *p, const config_setting_t *g)
{
    struct gw_escalation_cfg *e = &p->cfg->escalation;
    check_members(p, g, "escalation", escalation_keys, N_ELEMS(escalation_keys));
    for (int c = 0; c < GW_NCLASSES; c++) {
        const config_setting_t *list = get(g, class_names[c], K_LIST);
        if (!list) {
            continue;
        }
        int n = config_setting_length(list);
        e->levels[c] = xcalloc(p, (size_t)n, sizeof(*e->levels[c]));
        if (!e->levels[c]) {
            continue;
        }
        e->nlevels[c] = n;
        int prev = -1;
        for (int i = 0; i < n; i++) {
            const config_setting_t *lg = config_setting_get_elem(list, (unsigned)i);
            char path[PATH_LEN];
            char cpath[PATH_LEN];
            child_path(cpath, sizeof(cpath), "escalation", class_names[c]);
            elem_path(path, sizeof(path), cpath, i);
            if (!config_setting_is_group(lg)) {
                err(p, lg, "%s: expected a group { ... }, got %s", path, ltype_name(lg));
                continue;
            }
            parse_level(p, lg, path, &e->levels[c][i], &prev, i == n - 1);
        }
    }
}

/* ---- alarms, selftest -------------------------------------------------- */

static const struct key alarms_keys[] = {
    {"chatter_count", K_INT},
    {"chatter_minutes", K_INT},
    {"storm_count", K_INT},
    {"flood_min", K_INT},
};

/* Defaults are set in set_defaults: they hold without an alarms section too. */
static void parse_alarms(struct parser *p, const config_setting_t *g)
{
    struct gw_alarms_cfg *a = &p->cfg->alarms;
    const char *path = "alarms";
    check_members(p, g, path, alarms_keys, N_ELEMS(alarms_keys));
    get_int(p, g, path, "chatter_count", OPTIONAL, 1, 100, &a->chatter_count);
    get_int(p, g, path, "chatter_minutes", OPTIONAL, 1, 1440, &a->chatter_minutes);
    get_int(p, g, path, "storm_count", OPTIONAL, 1, 1000, &a->storm_count);
    get_int(p, g, path, "flood_min", OPTIONAL, 2, 1000, &a->flood_min);
}

static const struct key selftest_keys[] = {
    {"at", K_STRING},
    {"enabled", K_BOOL},
    {"timeout_s", K_INT},
};

/* Defaults are set in set_defaults: the daily path test runs without a selftest section. */
static void parse_selftest(struct parser *p, const config_setting_t *g)
{
    struct gw_selftest_cfg *s = &p->cfg->selftest;
    const char *path = "selftest";
    check_members(p, g, path, selftest_keys, N_ELEMS(selftest_keys));
    const config_setting_t *m = get(g, "at", K_STRING);
    if (m) {
        int v = parse_hhmm(config_setting_get_string(m), false);
        if (v < 0) {
            err(p, m, "selftest.at: bad time \"%s\" (HH:MM, 00:00..23:59)",
                config_setting_get_string(m));
        } else {
            s->at_min = v;
        }
    }
    get_bool(g, "enabled", &s->enabled);
    get_int(p, g, path, "timeout_s", OPTIONAL, 10, 3600, &s->timeout_s);
}

/* ---- hazards, kpi ------------------------------------------------------ */

static const struct key hazards_keys[] = {
    {"auto_open", K_STRINGS0},
    {"deadline_days", K_GROUP},
    {"escalation", K_LIST},
};

/* Same order as enum gw_hazard_category (hazards.h); hazard_desk.c checks they agree. */
static const char *const hazard_category_names[GW_HAZARD_NCATEGORIES] = {
    "fire_equipment", "evacuation_route", "electrical", "structure", "surroundings", "other",
};
static const int hazard_default_days[GW_HAZARD_NCATEGORIES] = {7, 1, 7, 30, 30, 14};

const char *gw_config_hazard_category_name(int category)
{
    return category >= 0 && category < GW_HAZARD_NCATEGORIES ? hazard_category_names[category]
                                                             : NULL;
}

int gw_config_find_rule(const struct gw_config *cfg, const char *name)
{
    for (int i = 0; cfg && name && i < cfg->nrules; i++) {
        if (cfg->rules[i].name && strcmp(cfg->rules[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* auto_open = [ "rule name", ... ]: supervisory rules of this config, each once. After rules. */
static void parse_auto_open(struct parser *p, const config_setting_t *m)
{
    struct gw_hazards_cfg *h = &p->cfg->hazards;
    int n = config_setting_length(m);
    h->auto_open = xcalloc(p, (size_t)n, sizeof(*h->auto_open));
    if (!h->auto_open) {
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *name = config_setting_get_string_elem(m, i);
        int ri = name ? gw_config_find_rule(p->cfg, name) : -1;
        if (ri < 0) {
            err(p, m, "hazards.auto_open: unknown rule \"%s\"", name ? name : "");
            continue;
        }
        const struct gw_rule_cfg *r = &p->cfg->rules[ri];
        if (r->alarm_class != GW_CLASS_SUPERVISORY) {
            err(p, m,
                "hazards.auto_open: rule \"%s\" is class %s (line %d); only supervisory alarms "
                "open hazards",
                name, class_names[r->alarm_class], r->line);
            continue;
        }
        bool dup = false;
        for (int j = 0; j < h->nauto_open && !dup; j++) {
            dup = strcmp(h->auto_open[j], name) == 0;
        }
        if (dup) {
            err(p, m, "hazards.auto_open: \"%s\" is listed twice", name);
            continue;
        }
        if (!(h->auto_open[h->nauto_open] = xstrdup(p, name))) {
            return;
        }
        h->nauto_open++;
    }
}

/* hazards.escalation = ( level, ... ): like escalation.<class>. After contacts. */
static void parse_hazard_escalation(struct parser *p, const config_setting_t *list)
{
    struct gw_hazards_cfg *h = &p->cfg->hazards;
    int n = config_setting_length(list);
    if (n == 0) {
        err(p, list,
            "hazards.escalation: give at least one level (leave it out to use "
            "escalation.supervisory's)");
        return;
    }
    h->levels = xcalloc(p, (size_t)n, sizeof(*h->levels));
    if (!h->levels) {
        return;
    }
    h->nlevels = n;
    int prev = -1;
    for (int i = 0; i < n; i++) {
        const config_setting_t *lg = config_setting_get_elem(list, (unsigned)i);
        char path[PATH_LEN];
        elem_path(path, sizeof(path), "hazards.escalation", i);
        if (!config_setting_is_group(lg)) {
            err(p, lg, "%s: expected a group { ... }, got %s", path, ltype_name(lg));
            continue;
        }
        parse_level(p, lg, path, &h->levels[i], &prev, i == n - 1);
    }
}

/* Defaults (deadline days) are set in set_defaults: the register exists without the section. */
static void parse_hazards(struct parser *p, const config_setting_t *g)
{
    struct gw_hazards_cfg *h = &p->cfg->hazards;
    h->line = (int)config_setting_source_line(g);
    check_members(p, g, "hazards", hazards_keys, N_ELEMS(hazards_keys));
    const config_setting_t *m = get(g, "auto_open", K_STRINGS0);
    if (m) {
        parse_auto_open(p, m);
    }
    if ((m = get(g, "deadline_days", K_GROUP))) {
        struct key keys[GW_HAZARD_NCATEGORIES];
        for (int c = 0; c < GW_HAZARD_NCATEGORIES; c++) {
            keys[c] = (struct key){hazard_category_names[c], K_INT};
        }
        check_members(p, m, "hazards.deadline_days", keys, N_ELEMS(keys));
        for (int c = 0; c < GW_HAZARD_NCATEGORIES; c++) {
            get_int(p, m, "hazards.deadline_days", hazard_category_names[c], OPTIONAL, 1, 365,
                    &h->deadline_days[c]);
        }
    }
    if ((m = get(g, "escalation", K_LIST))) {
        parse_hazard_escalation(p, m);
    }
}

static const struct key kpi_keys[] = {
    {"interval_s", K_INT},
};

static void parse_kpi(struct parser *p, const config_setting_t *g)
{
    check_members(p, g, "kpi", kpi_keys, N_ELEMS(kpi_keys));
    get_int(p, g, "kpi", "interval_s", OPTIONAL, 10, DAY_MAX_S, &p->cfg->kpi.interval_s);
}

/* ---- http -------------------------------------------------------------- */

static const struct key http_keys[] = {
    {"listen", K_STRING},       {"cert_file", K_STRING}, {"key_file", K_STRING},
    {"session_minutes", K_INT}, {"users", K_LIST},
};

static const struct key http_user_keys[] = {
    {"name", K_STRING},
    {"role", K_STRING},
    {"password_hash", K_STRING},
    {"token_hash", K_STRING},
};

static const char *const role_names[] = {"viewer", "operator"};

#define PEM_MAX (1024 * 1024)

/* 127.0.0.0/8, ::1 or ::ffff:127.x.y.z: nobody off this machine can reach it. */
static bool listen_is_loopback(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, a) == 1) {
        return a[0] == 127;
    }
    if (inet_pton(AF_INET6, host, a) != 1) {
        return false;
    }
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return memcmp(a, one, sizeof(one)) == 0 || (memcmp(a, v4mapped, 12) == 0 && a[12] == 127);
}

/*
 * The web server takes PEM text: say so now rather than fail at start with
 * a TLS library's message. `text` may be a secret; it is never printed.
 */
static void check_pem(struct parser *p, const config_setting_t *m, const char *cp, const char *file,
                      const char *text, const char *begin, const char *what)
{
    if (!strstr(text, begin)) {
        err(p, m, "%s: \"%s\" holds no PEM %s (a line \"%s...\")", cp, file, what, begin);
    }
}

static void check_cert_file(struct parser *p, const config_setting_t *m, const char *file)
{
    const char *cp = "http.cert_file";
    FILE *f = fopen(file, "r");
    if (!f) {
        err(p, m, "%s: cannot read \"%s\": %s", cp, file, strerror(errno));
        return;
    }
    char *buf = calloc(1, PEM_MAX + 1);
    if (!buf) {
        fclose(f);
        err(p, m, "out of memory");
        return;
    }
    size_t n = fread(buf, 1, PEM_MAX, f);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (rerr) {
        err(p, m, "%s: cannot read \"%s\": %s", cp, file, strerror(rerr));
    } else if (n == PEM_MAX) {
        err(p, m, "%s: \"%s\" is longer than %d bytes", cp, file, PEM_MAX - 1);
    } else {
        check_pem(p, m, cp, file, buf, "-----BEGIN CERTIFICATE-----", "certificate");
    }
    free(buf);
}

/*
 * An Argon2id string that libsodium can verify. The value is never part of a
 * message: a password pasted here by mistake must not end up in a log.
 */
static void check_hash(struct parser *p, const config_setting_t *m, const char *cp,
                       const char *hash)
{
    if (strncmp(hash, "$argon2id$", 10) != 0) {
        err(p, m,
            "%s: not an Argon2id hash (it starts with \"$argon2id$\"; make one with campusgw "
            "--hash-password)",
            cp);
    } else if (crypto_pwhash_str_needs_rehash(hash, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                              crypto_pwhash_MEMLIMIT_INTERACTIVE) == -1) {
        err(p, m,
            "%s: a malformed Argon2id hash that libsodium cannot read (make one with campusgw "
            "--hash-password)",
            cp);
    }
}

static void parse_http_user(struct parser *p, const config_setting_t *g, const char *path,
                            struct gw_http_user_cfg *u)
{
    u->line = (int)config_setting_source_line(g);
    check_members(p, g, path, http_user_keys, N_ELEMS(http_user_keys));
    char cp[PATH_LEN];
    const config_setting_t *m = get_str(p, g, path, "name", REQUIRED, &u->name);
    if (m && (strlen(u->name) >= GW_NAME_MAX || !chars_ok(u->name, "_.-"))) {
        /* the name is "by" in the alarm history and in commands */
        err(p, m, "%s.name: \"%s\" must be 1..%d of A-Z a-z 0-9 _ . -", path, u->name,
            GW_NAME_MAX - 1);
    }
    int role = 0;
    if (!has(g, "role")) {
        missing(p, g, path, "role");
    } else if (get_enum(p, g, path, "role", role_names, N_ELEMS(role_names), &role)) {
        u->role = (enum gw_http_role)role;
    }
    m = get_str(p, g, path, "password_hash", REQUIRED, &u->password_hash);
    if (m) {
        child_path(cp, sizeof(cp), path, "password_hash");
        check_hash(p, m, cp, u->password_hash);
    }
    m = get_str(p, g, path, "token_hash", OPTIONAL, &u->token_hash);
    if (m) {
        child_path(cp, sizeof(cp), path, "token_hash");
        check_hash(p, m, cp, u->token_hash);
    }
}

static void parse_http_users(struct parser *p, const config_setting_t *list)
{
    struct gw_http_cfg *h = &p->cfg->http;
    int n = config_setting_length(list);
    if (n == 0) {
        return;
    }
    h->users = xcalloc(p, (size_t)n, sizeof(*h->users));
    if (!h->users) {
        return;
    }
    h->nusers = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct gw_http_user_cfg *u = &h->users[i];
        char path[PATH_LEN];
        elem_path(path, sizeof(path), "http.users", i);
        if (!config_setting_is_group(g)) {
            err(p, g, "%s: expected a group { ... }, got %s", path, ltype_name(g));
            continue;
        }
        parse_http_user(p, g, path, u);
        for (int j = 0; j < i && u->name; j++) {
            if (h->users[j].name && strcmp(h->users[j].name, u->name) == 0) {
                err(p, config_setting_get_member(g, "name"),
                    "%s.name: duplicate user name \"%s\" (first at line %d)", path, u->name,
                    h->users[j].line);
                break;
            }
        }
    }
}

/* Defaults are set in set_defaults: the page runs on loopback without an http section. */
static void parse_http(struct parser *p, const config_setting_t *g)
{
    struct gw_http_cfg *h = &p->cfg->http;
    const char *path = "http";
    h->line = (int)config_setting_source_line(g);
    check_members(p, g, path, http_keys, N_ELEMS(http_keys));
    if (sodium_init() < 0) {
        err(p, g, "http: libsodium cannot start; password hashes cannot be checked");
        return;
    }
    const config_setting_t *listen = get(g, "listen", K_STRING);
    if (listen) {
        parse_listen(p, listen, "http.listen", "127.0.0.1:8080", "[::1]:8080", &h->listen_host,
                     &h->listen_port);
        h->loopback = listen_is_loopback(h->listen_host);
    }
    const config_setting_t *cert = get_str(p, g, path, "cert_file", OPTIONAL, &h->cert_file);
    const config_setting_t *key = get_str(p, g, path, "key_file", OPTIONAL, &h->key_file);
    if (cert) {
        check_cert_file(p, cert, h->cert_file);
    }
    if (key) {
        /* a private key is a secret: same rules as password_file */
        char *pem = read_secret(p, key, "http.key_file", h->key_file);
        if (pem) {
            check_pem(p, key, "http.key_file", h->key_file, pem, "PRIVATE KEY-----", "private key");
        }
        wipe_free(pem);
    }
    if (cert && !key && !has(g, "key_file")) {
        err(p, cert, "http.cert_file: needs key_file too");
    }
    if (key && !cert && !has(g, "cert_file")) {
        err(p, key, "http.key_file: needs cert_file too");
    }
    get_int(p, g, path, "session_minutes", OPTIONAL, 5, 10080, &h->session_minutes);
    const config_setting_t *users = get(g, "users", K_LIST);
    if (users) {
        parse_http_users(p, users);
    }
    /* a users key of the wrong type is reported already */
    bool users_bad = has(g, "users") && !users;
    if (!h->loopback && !users_bad && h->nusers == 0) {
        err(p, listen,
            "http.listen: \"%s\" without users: the page would be read-only and open to the "
            "network; campusgw refuses a listen address other than loopback without users (add "
            "http.users, or listen on 127.0.0.1)",
            config_setting_get_string(listen));
    } else if (!h->loopback && !users_bad && !has(g, "cert_file") && !has(g, "key_file")) {
        warn(p, listen,
             "http.listen: \"%s\" is not loopback and there is no cert_file/key_file: passwords "
             "and session cookies would cross the network in clear text (set cert_file and "
             "key_file)",
             config_setting_get_string(listen));
    }
}

/* ---- top level --------------------------------------------------------- */

static const struct key root_keys[] = {
    {"site", K_GROUP},      {"state_dir", K_STRING}, {"store", K_GROUP},      {"hub", K_GROUP},
    {"uplink", K_GROUP},    {"influx", K_GROUP},     {"lora", K_GROUP},       {"modbus", K_LIST},
    {"schedules", K_GROUP}, {"profiles", K_GROUP},   {"sensors", K_LIST},     {"rules", K_LIST},
    {"smtp", K_GROUP},      {"contacts", K_GROUP},   {"escalation", K_GROUP}, {"alarms", K_GROUP},
    {"selftest", K_GROUP},  {"http", K_GROUP},       {"hazards", K_GROUP},    {"kpi", K_GROUP},
};

static bool set_defaults(struct parser *p)
{
    struct gw_config *cfg = p->cfg;
    cfg->path = xstrdup(p, p->path);
    cfg->site.timezone = xstrdup(p, "UTC");
    cfg->site.language = xstrdup(p, "zh-CN");
    cfg->hub.host = xstrdup(p, "127.0.0.1");
    cfg->hub.topic_prefix = xstrdup(p, "campus");
    cfg->hub.keepalive_s = 30;
    cfg->store.commit_ms = 1000;
    cfg->store.commit_records = 1000;
    cfg->store.max_mb = 512;
    cfg->alarms.chatter_count = 5;
    cfg->alarms.chatter_minutes = 10;
    cfg->alarms.storm_count = 10;
    cfg->alarms.flood_min = 3;
    cfg->selftest.enabled = true;
    cfg->selftest.at_min = 3 * 60;
    cfg->selftest.timeout_s = 120;
    memcpy(cfg->hazards.deadline_days, hazard_default_days, sizeof(cfg->hazards.deadline_days));
    cfg->kpi.interval_s = 3600;
    cfg->http.listen_host = xstrdup(p, "127.0.0.1");
    cfg->http.listen_port = 8080;
    cfg->http.loopback = true;
    cfg->http.session_minutes = 480;
    return p->nerrors == 0;
}

static void parse_root(struct parser *p, const config_setting_t *root)
{
    struct gw_config *cfg = p->cfg;
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(m);
        const struct key *k = find_key(root_keys, N_ELEMS(root_keys), name);
        if (!k) {
            err(p, m, "%s: unknown key", name);
        } else if (!type_ok(m, k->type)) {
            err(p, m, "%s: expected %s, got %s", name, ktype_name(k->type), ltype_name(m));
        }
    }

    const config_setting_t *g = get(root, "site", K_GROUP);
    if (g) {
        parse_site(p, g);
    } else if (!has(root, "site")) {
        missing(p, root, "", "site");
    }
    get_str(p, root, "", "state_dir", REQUIRED, &cfg->state_dir);
    if ((g = get(root, "store", K_GROUP))) {
        parse_store(p, g);
    }
    parse_hub(p, get(root, "hub", K_GROUP));
    if ((g = get(root, "uplink", K_GROUP))) {
        parse_uplink(p, g);
    }
    if ((g = get(root, "influx", K_GROUP))) {
        parse_influx(p, g);
    }
    if ((g = get(root, "lora", K_GROUP))) {
        parse_lora(p, g); /* before sensors: a LoRa sensor needs it */
    }
    if ((g = get(root, "modbus", K_LIST))) {
        parse_buses(p, g);
    }
    if ((g = get(root, "schedules", K_GROUP))) {
        parse_schedules(p, g);
    }
    if ((g = get(root, "profiles", K_GROUP))) {
        parse_profiles(p, g);
    }
    if ((g = get(root, "sensors", K_LIST))) {
        parse_sensors(p, g);
    }
    if ((g = get(root, "rules", K_LIST))) {
        parse_rules(p, g);
    }
    if ((g = get(root, "smtp", K_GROUP))) {
        parse_smtp(p, g); /* before contacts: an email channel needs it */
    }
    const config_setting_t *contacts = get(root, "contacts", K_GROUP);
    if (contacts) {
        parse_contacts(p, contacts);
    }
    const config_setting_t *esc = get(root, "escalation", K_GROUP);
    if (esc) {
        parse_escalation(p, esc); /* after contacts: levels name them */
    }
    /* an `alarm` of the wrong type is already an error */
    bool alarm_bad = esc && has(esc, "alarm") && !get(esc, "alarm", K_LIST);
    if (cfg->ncontacts > 0 && cfg->escalation.nlevels[GW_CLASS_ALARM] == 0 && !alarm_bad) {
        warn(p, esc ? esc : contacts,
             "escalation: no levels for class alarm; fire alarms would reach nobody");
    }
    if ((g = get(root, "alarms", K_GROUP))) {
        parse_alarms(p, g);
    }
    if ((g = get(root, "selftest", K_GROUP))) {
        parse_selftest(p, g);
    }
    if ((g = get(root, "http", K_GROUP))) {
        parse_http(p, g);
    }
    if ((g = get(root, "hazards", K_GROUP))) {
        parse_hazards(p, g); /* after rules and contacts: it names both */
    }
    if ((g = get(root, "kpi", K_GROUP))) {
        parse_kpi(p, g);
    }
}

struct gw_config *gw_config_load(const char *path, FILE *errors)
{
    struct parser p = {.path = path};
    config_t lc;
    config_init(&lc);

    FILE *f = fopen(path, "r");
    if (!f) {
        if (errors) {
            fprintf(errors, "%s: cannot open: %s\n", path, strerror(errno));
        }
        config_destroy(&lc);
        return NULL;
    }
    fclose(f);
    if (!config_read_file(&lc, path)) {
        if (errors) {
            const char *file = config_error_file(&lc);
            fprintf(errors, "%s:%d: %s\n", file ? file : path, config_error_line(&lc),
                    config_error_text(&lc));
        }
        config_destroy(&lc);
        return NULL;
    }

    p.cfg = calloc(1, sizeof(*p.cfg));
    if (!p.cfg) {
        if (errors) {
            fprintf(errors, "%s: out of memory\n", path);
        }
        config_destroy(&lc);
        return NULL;
    }
    if (set_defaults(&p)) {
        parse_root(&p, config_root_setting(&lc));
    }
    config_destroy(&lc);
    flush_msgs(&p, errors);
    if (p.nerrors > 0) {
        gw_config_free(p.cfg);
        return NULL;
    }
    return p.cfg;
}

static void free_tls(struct gw_tls_cfg *t)
{
    free(t->ca_file);
    free(t->cert_file);
    free(t->key_file);
}

void gw_config_free(struct gw_config *cfg)
{
    if (!cfg) {
        return;
    }
    free(cfg->path);
    free(cfg->site.district);
    free(cfg->site.school);
    free(cfg->site.name);
    free(cfg->site.timezone);
    free(cfg->site.language);
    free(cfg->state_dir);
    free(cfg->hub.host);
    free(cfg->hub.topic_prefix);
    free(cfg->hub.username);
    wipe_free(cfg->hub.password);
    free(cfg->hub.client_id);
    free_tls(&cfg->hub.tls);
    free(cfg->uplink.host);
    free(cfg->uplink.topic_prefix);
    free(cfg->uplink.username);
    wipe_free(cfg->uplink.password);
    free(cfg->uplink.client_id);
    free_tls(&cfg->uplink.tls);
    free(cfg->influx.url);
    free(cfg->influx.database);
    free(cfg->influx.retention_policy);
    free(cfg->influx.username);
    wipe_free(cfg->influx.password);
    free(cfg->influx.org);
    free(cfg->influx.bucket);
    wipe_free(cfg->influx.token);
    free(cfg->influx.ca_file);
    free(cfg->lora.listen_host);
    free(cfg->lora.region);
    for (int i = 0; i < cfg->nbuses && cfg->buses; i++) {
        free(cfg->buses[i].name);
        free(cfg->buses[i].device);
        free(cfg->buses[i].host);
    }
    free(cfg->buses);
    for (int i = 0; i < cfg->nschedules && cfg->schedules; i++) {
        free(cfg->schedules[i].name);
    }
    free(cfg->schedules);
    for (int i = 0; i < cfg->nprofiles && cfg->profiles; i++) {
        struct gw_profile_cfg *pr = &cfg->profiles[i];
        for (int j = 0; j < pr->npoints && pr->points; j++) {
            free(pr->points[j].name);
            free(pr->points[j].unit);
            for (int k = 0; k < pr->points[j].nenum && pr->points[j].enum_labels; k++) {
                free(pr->points[j].enum_labels[k]);
            }
            free(pr->points[j].enum_labels);
        }
        free(pr->points);
        for (int j = 0; j < pr->nfields && pr->fields; j++) {
            free(pr->fields[j].name);
            free(pr->fields[j].unit);
            for (int k = 0; k < pr->fields[j].nenum && pr->fields[j].enum_labels; k++) {
                free(pr->fields[j].enum_labels[k]);
            }
            free(pr->fields[j].enum_labels);
        }
        free(pr->fields);
        for (int j = 0; j < pr->nvalues && pr->values; j++) {
            free(pr->values[j].name);
            free(pr->values[j].path);
            free(pr->values[j].unit);
            for (int k = 0; k < pr->values[j].nenum && pr->values[j].enum_labels; k++) {
                free(pr->values[j].enum_labels[k]);
            }
            free(pr->values[j].enum_labels);
        }
        free(pr->values);
        free(pr->script);
        free(pr->examples);
        free(pr->name);
    }
    free(cfg->profiles);
    for (int i = 0; i < cfg->nsensors && cfg->sensors; i++) {
        struct gw_sensor_cfg *s = &cfg->sensors[i];
        free(s->id);
        free(s->kind);
        free(s->profile);
        free(s->bus);
        free(s->location.building);
        free(s->location.floor);
        free(s->location.zone);
        explicit_bzero(&s->lora, sizeof(s->lora));
        free(s->mqtt.topic);
    }
    free(cfg->sensors);
    for (int i = 0; i < cfg->nrules && cfg->rules; i++) {
        struct gw_rule_cfg *r = &cfg->rules[i];
        free(r->name);
        free(r->slug);
        free(r->kind);
        free(r->sensor);
        free(r->point);
    }
    free(cfg->rules);
    for (int i = 0; i < cfg->ncontacts && cfg->contacts; i++) {
        struct gw_contact_cfg *c = &cfg->contacts[i];
        for (int j = 0; j < c->nchannels && c->channels; j++) {
            wipe_free(c->channels[j].target); /* a webhook URL holds its robot's key */
        }
        free(c->channels);
        free(c->name);
    }
    free(cfg->contacts);
    for (int c = 0; c < GW_NCLASSES; c++) {
        for (int i = 0; i < cfg->escalation.nlevels[c] && cfg->escalation.levels[c]; i++) {
            free(cfg->escalation.levels[c][i].contacts);
        }
        free(cfg->escalation.levels[c]);
    }
    free(cfg->smtp.url);
    free(cfg->smtp.username);
    wipe_free(cfg->smtp.password);
    free(cfg->smtp.from);
    free(cfg->smtp.ca_file);
    free(cfg->http.listen_host);
    free(cfg->http.cert_file);
    free(cfg->http.key_file);
    for (int i = 0; i < cfg->http.nusers && cfg->http.users; i++) {
        free(cfg->http.users[i].name);
        wipe_free(cfg->http.users[i].password_hash);
        wipe_free(cfg->http.users[i].token_hash);
    }
    free(cfg->http.users);
    for (int i = 0; i < cfg->hazards.nauto_open && cfg->hazards.auto_open; i++) {
        free(cfg->hazards.auto_open[i]);
    }
    free(cfg->hazards.auto_open);
    for (int i = 0; i < cfg->hazards.nlevels && cfg->hazards.levels; i++) {
        free(cfg->hazards.levels[i].contacts);
    }
    free(cfg->hazards.levels);
    free(cfg);
}

/* ---- lookups, names, summary ------------------------------------------- */

int gw_config_find_sensor(const struct gw_config *cfg, const char *id)
{
    for (int i = 0; cfg && id && i < cfg->nsensors; i++) {
        if (cfg->sensors[i].id && strcmp(cfg->sensors[i].id, id) == 0) {
            return i;
        }
    }
    return -1;
}

int gw_config_find_bus(const struct gw_config *cfg, const char *name)
{
    for (int i = 0; cfg && name && i < cfg->nbuses; i++) {
        if (cfg->buses[i].name && strcmp(cfg->buses[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

void gw_slugify(const char *name, char *out, size_t size)
{
    if (!out || size == 0) {
        return;
    }
    size_t n = 0;
    bool dash = false;
    for (const unsigned char *c = (const unsigned char *)(name ? name : ""); *c; c++) {
        if (!is_alnum_ascii(*c)) {
            dash = true;
            continue;
        }
        if (dash && n > 0) {
            if (n + 2 >= size) {
                break; /* no room for '-' and a character: never end on '-' */
            }
            out[n++] = '-';
        }
        dash = false;
        if (n + 1 >= size) {
            break;
        }
        out[n++] = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    }
    out[n] = '\0';
}

const char *gw_class_name(enum gw_alarm_class c)
{
    switch (c) {
    case GW_CLASS_ALARM:
        return "alarm";
    case GW_CLASS_SUPERVISORY:
        return "supervisory";
    case GW_CLASS_TROUBLE:
        return "trouble";
    }
    return "unknown";
}

/* Days as runs in Monday-first order: "mon-fri", "sat,sun", "daily". */
static void days_string(uint8_t days, char *out, size_t size)
{
    if ((days & 0x7f) == 0x7f) {
        snprintf(out, size, "daily");
        return;
    }
    out[0] = '\0';
    size_t n = 0;
    for (int i = 0; i < 7;) {
        int d = (i + 1) % 7; /* mon .. sun */
        if (!(days & (1u << d))) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < 7 && (days & (1u << ((j + 2) % 7)))) {
            j++;
        }
        int e = (j + 1) % 7;
        int w;
        if (j == i) {
            w = snprintf(out + n, size - n, "%s%s", n ? "," : "", day_names[d]);
        } else {
            w = snprintf(out + n, size - n, "%s%s%s%s", n ? "," : "", day_names[d],
                         j == i + 1 ? "," : "-", day_names[e]);
        }
        if (w < 0 || (size_t)w >= size - n) {
            return;
        }
        n += (size_t)w;
        i = j + 1;
    }
}

static const char *plural(int n)
{
    return n == 1 ? "" : "s";
}

static const char *tls_name(const struct gw_tls_cfg *t)
{
    return t->ca_file ? (t->insecure ? "TLS (insecure)" : "TLS") : "no TLS";
}

/* Only when some sensor reads the hub: other configs keep their summary. */
static void print_mqtt_sources(const struct gw_config *cfg, FILE *out)
{
    int ns = 0;
    int nfilters = 0;
    int nchirp = 0;
    for (int i = 0; i < cfg->nsensors; i++) {
        const struct gw_sensor_mqtt_cfg *q = &cfg->sensors[i].mqtt;
        if (!q->enabled) {
            continue;
        }
        ns++;
        nchirp += q->format == GW_MQTT_CHIRPSTACK;
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) {
            seen =
                cfg->sensors[j].mqtt.enabled && strcmp(cfg->sensors[j].mqtt.topic, q->topic) == 0;
        }
        nfilters += !seen;
    }
    if (ns == 0) {
        return;
    }
    fprintf(out,
            "mqtt sources: %d sensor%s (%d json, %d chirpstack) on %d subscription%s, client_id "
            "%s-src\n",
            ns, plural(ns), ns - nchirp, nchirp, nfilters, plural(nfilters), cfg->hub.client_id);
}

/* Contacts by channel kind, escalation per class, smtp, alarm tuning, self-test. No secrets:
 * a webhook URL holds its key and is never printed; neither are mail addresses. */
static void print_people(const struct gw_config *cfg, FILE *out)
{
    fprintf(out, "contacts: %d\n", cfg->ncontacts);
    for (int i = 0; i < cfg->ncontacts; i++) {
        const struct gw_contact_cfg *c = &cfg->contacts[i];
        fprintf(out, "  %s:", c->name);
        for (int j = 0; j < c->nchannels; j++) {
            const struct gw_channel_cfg *ch = &c->channels[j];
            fprintf(out, "%s %s", j ? "," : "", channel_kind_names[ch->kind]);
            if (ch->kind == GW_CHANNEL_MQTT) {
                fprintf(out, " %s", ch->target);
            } else if (ch->kind == GW_CHANNEL_WEBHOOK) {
                fprintf(out, " (%s)", webhook_format_names[ch->format]);
            }
        }
        fprintf(out, "\n");
    }
    int nlevels = 0;
    for (int c = 0; c < GW_NCLASSES; c++) {
        nlevels += cfg->escalation.nlevels[c];
    }
    fprintf(out, "escalation:%s\n", nlevels ? "" : " none");
    for (int c = 0; c < GW_NCLASSES && nlevels; c++) {
        fprintf(out, "  %s:", class_names[c]);
        if (cfg->escalation.nlevels[c] == 0) {
            fprintf(out, " nobody\n");
            continue;
        }
        for (int i = 0; i < cfg->escalation.nlevels[c]; i++) {
            const struct gw_escalation_level_cfg *lv = &cfg->escalation.levels[c][i];
            fprintf(out, "%s at %d s", i ? ";" : "", lv->after_s);
            for (int j = 0; j < lv->ncontacts; j++) {
                fprintf(out, "%s %s", j ? "," : "", cfg->contacts[lv->contacts[j]].name);
            }
            if (lv->repeat_s) {
                fprintf(out, ", again every %d s", lv->repeat_s);
            }
        }
        fprintf(out, "\n");
    }
    const struct gw_smtp_cfg *s = &cfg->smtp;
    if (s->enabled) {
        fprintf(out, "smtp: %s (%s), %s%s\n", s->url,
                strncasecmp(s->url, "smtps:", 6) == 0 ? "TLS" : "STARTTLS",
                s->username ? "user/password" : "no login", s->insecure ? ", insecure" : "");
    } else {
        fprintf(out, "smtp: none\n");
    }
    const struct gw_alarms_cfg *a = &cfg->alarms;
    fprintf(out,
            "alarms: chattering above %d raise%s in %d min, storm above %d new alarm%s in 60 s, "
            "flood from %d offline sensors\n",
            a->chatter_count, plural(a->chatter_count), a->chatter_minutes, a->storm_count,
            plural(a->storm_count), a->flood_min);
    const struct gw_selftest_cfg *t = &cfg->selftest;
    if (t->enabled) {
        fprintf(out, "selftest: daily at %02d:%02d, timeout %d s\n", t->at_min / 60, t->at_min % 60,
                t->timeout_s);
    } else {
        fprintf(out, "selftest: off\n");
    }
}

/* Auto-open rules, default deadlines, who hears of an overdue hazard; the KPI interval. */
static void print_hazards(const struct gw_config *cfg, FILE *out)
{
    const struct gw_hazards_cfg *h = &cfg->hazards;
    fprintf(out, "hazards: auto-open %s", h->nauto_open ? "from" : "none");
    for (int i = 0; i < h->nauto_open; i++) {
        fprintf(out, "%s \"%s\"", i ? "," : "", h->auto_open[i]);
    }
    fprintf(out, "\n  deadlines (days):");
    for (int c = 0; c < GW_HAZARD_NCATEGORIES; c++) {
        fprintf(out, "%s %s %d", c ? "," : "", hazard_category_names[c], h->deadline_days[c]);
    }
    fprintf(out, "\n  overdue told:");
    if (h->nlevels == 0) {
        fprintf(out, " as escalation.supervisory\n");
    }
    for (int i = 0; i < h->nlevels; i++) {
        const struct gw_escalation_level_cfg *lv = &h->levels[i];
        fprintf(out, "%s at %d s", i ? ";" : "", lv->after_s);
        for (int j = 0; j < lv->ncontacts; j++) {
            fprintf(out, "%s %s", j ? "," : "", cfg->contacts[lv->contacts[j]].name);
        }
        if (lv->repeat_s) {
            fprintf(out, ", again every %d s", lv->repeat_s);
        }
        fprintf(out, "%s", i == h->nlevels - 1 ? "\n" : "");
    }
    fprintf(out, "kpi: every %d s\n", cfg->kpi.interval_s);
}

/* Listen address, HTTPS, session time, users with roles: never a hash. */
static void print_http(const struct gw_config *cfg, FILE *out)
{
    const struct gw_http_cfg *h = &cfg->http;
    bool v6 = strchr(h->listen_host, ':') != NULL;
    fprintf(out, "http: listen %s%s%s:%d, %s", v6 ? "[" : "", h->listen_host, v6 ? "]" : "",
            h->listen_port, h->cert_file ? "HTTPS" : "HTTP");
    if (h->nusers == 0) {
        fprintf(out, ", no users (read-only, loopback only)\n");
        return;
    }
    fprintf(out, ", sessions end after %d min idle, %d user%s:", h->session_minutes, h->nusers,
            plural(h->nusers));
    for (int i = 0; i < h->nusers; i++) {
        const struct gw_http_user_cfg *u = &h->users[i];
        fprintf(out, "%s %s (%s%s)", i ? "," : "", u->name, role_names[u->role],
                u->token_hash ? ", token" : "");
    }
    fprintf(out, "\n");
}

void gw_config_print_summary(const struct gw_config *cfg, FILE *out)
{
    if (!cfg || !out) {
        return;
    }
    const struct gw_site_cfg *site = &cfg->site;
    fprintf(out, "site: %s/%s \"%s\" (timezone %s, language %s)\n", site->district, site->school,
            site->name, site->timezone, site->language);
    fprintf(out, "state_dir: %s\n", cfg->state_dir);
    const struct gw_store_cfg *st = &cfg->store;
    fprintf(out, "store: commit every %d ms or %d record%s, max %d MB\n", st->commit_ms,
            st->commit_records, plural(st->commit_records), st->max_mb);
    const struct gw_hub_cfg *h = &cfg->hub;
    fprintf(out, "hub: %s:%d, topics %s/%s/%s/..., client_id %s, %s, %s\n", h->host, h->port,
            h->topic_prefix, site->district, site->school, h->client_id, tls_name(&h->tls),
            h->username ? "user/password" : "anonymous");
    const struct gw_uplink_cfg *u = &cfg->uplink;
    if (u->enabled) {
        fprintf(out, "uplink: %s:%d, topics %s/%s/%s/..., client_id %s, %s, %s, %d in flight\n",
                u->host, u->port, u->topic_prefix, site->district, site->school, u->client_id,
                tls_name(&u->tls), u->username ? "user/password" : "anonymous", u->max_inflight);
    } else {
        fprintf(out, "uplink: none\n");
    }
    const struct gw_influx_cfg *x = &cfg->influx;
    if (!x->enabled) {
        fprintf(out, "influx: none\n");
    } else if (x->version == GW_INFLUX_V1) {
        fprintf(out,
                "influx: %s, 1.x db=%s%s%s, %s, batch %d lines or %d ms, %s, timeout %d ms%s\n",
                x->url, x->database, x->retention_policy ? " rp=" : "",
                x->retention_policy ? x->retention_policy : "",
                x->username ? "user/password" : "no auth", x->batch_size, x->flush_ms,
                x->gzip ? "gzip" : "no gzip", x->timeout_ms, x->insecure ? ", insecure" : "");
    } else {
        fprintf(out,
                "influx: %s, 2.x org=%s bucket=%s, token, batch %d lines or %d ms, %s, "
                "timeout %d ms%s\n",
                x->url, x->org, x->bucket, x->batch_size, x->flush_ms, x->gzip ? "gzip" : "no gzip",
                x->timeout_ms, x->insecure ? ", insecure" : "");
    }

    fprintf(out, "modbus buses: %d\n", cfg->nbuses);
    for (int i = 0; i < cfg->nbuses; i++) {
        const struct gw_bus_cfg *b = &cfg->buses[i];
        int ns = 0;
        for (int j = 0; j < cfg->nsensors; j++) {
            ns += cfg->sensors[j].bus_index == i;
        }
        if (b->type == GW_BUS_RTU) {
            fprintf(out, "  %s: rtu %s %d %d%c%d%s, timeout %d ms, %d sensor%s\n", b->name,
                    b->device, b->baud, b->data_bits, b->parity, b->stop_bits,
                    b->rs485 ? " rs485" : "", b->timeout_ms, ns, plural(ns));
        } else {
            fprintf(out, "  %s: tcp %s port %d, timeout %d ms, %d sensor%s\n", b->name, b->host,
                    b->port, b->timeout_ms, ns, plural(ns));
        }
    }

    const struct gw_lora_cfg *l = &cfg->lora;
    if (l->enabled) {
        int ns = 0;
        for (int j = 0; j < cfg->nsensors; j++) {
            ns += cfg->sensors[j].lora.enabled;
        }
        bool v6 = l->listen_host && strchr(l->listen_host, ':');
        fprintf(out,
                "lora: listen %s%s%s:%d, region %s, dedup %d ms, forwarder offline after %d s, "
                "%d sensor%s\n",
                v6 ? "[" : "", l->listen_host, v6 ? "]" : "", l->listen_port, l->region,
                l->dedup_ms, l->forwarder_offline_s, ns, plural(ns));
    } else {
        fprintf(out, "lora: none\n");
    }

    print_mqtt_sources(cfg, out);

    fprintf(out, "profiles: %d\n", cfg->nprofiles);
    for (int i = 0; i < cfg->nprofiles; i++) {
        const struct gw_profile_cfg *pr = &cfg->profiles[i];
        switch (pr->codec) {
        case GW_CODEC_MODBUS:
            fprintf(out, "  %s: modbus, %d point%s\n", pr->name, pr->npoints, plural(pr->npoints));
            break;
        case GW_CODEC_LAYOUT:
            fprintf(out, "  %s: layout, %d field%s\n", pr->name, pr->nfields, plural(pr->nfields));
            break;
        case GW_CODEC_CAYENNE_LPP:
            fprintf(out, "  %s: cayenne_lpp\n", pr->name);
            break;
        case GW_CODEC_JS:
            fprintf(out, "  %s: js %s%s\n", pr->name, pr->script,
                    pr->examples ? ", examples pass" : "");
            break;
        case GW_CODEC_JSON:
            fprintf(out, "  %s: json, %d value%s\n", pr->name, pr->nvalues, plural(pr->nvalues));
            break;
        }
    }

    fprintf(out, "sensors: %d\n", cfg->nsensors);
    for (int i = 0; i < cfg->nsensors; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) {
            seen = strcmp(cfg->sensors[j].kind, cfg->sensors[i].kind) == 0;
        }
        if (seen) {
            continue;
        }
        int nk = 0;
        for (int j = i; j < cfg->nsensors; j++) {
            nk += strcmp(cfg->sensors[j].kind, cfg->sensors[i].kind) == 0;
        }
        fprintf(out, "  %s: %d\n", cfg->sensors[i].kind, nk);
    }
    int nodrv = 0;
    for (int i = 0; i < cfg->nsensors; i++) {
        nodrv += cfg->sensors[i].bus_index < 0 && !cfg->sensors[i].lora.enabled &&
                 !cfg->sensors[i].mqtt.enabled;
    }
    if (nodrv) {
        fprintf(out, "  (%d sensor%s without a driver in this version)\n", nodrv, plural(nodrv));
    }

    fprintf(out, "schedules: %d\n", cfg->nschedules);
    for (int i = 0; i < cfg->nschedules; i++) {
        const struct gw_schedule_cfg *s = &cfg->schedules[i];
        char days[64];
        days_string(s->days, days, sizeof(days));
        fprintf(out, "  %s: %s %02d:%02d-%02d:%02d%s\n", s->name, days, s->from_min / 60,
                s->from_min % 60, s->to_min / 60, s->to_min % 60,
                s->to_min < s->from_min ? " (crosses midnight)" : "");
    }

    fprintf(out, "rules: %d\n", cfg->nrules);
    for (int i = 0; i < cfg->nrules; i++) {
        const struct gw_rule_cfg *r = &cfg->rules[i];
        int ns = 0;
        for (int j = 0; j < cfg->nsensors; j++) {
            ns += rule_applies(r, &cfg->sensors[j]);
        }
        fprintf(out, "  %s [%s]: %d sensor%s%s%s\n", r->name, gw_class_name(r->alarm_class), ns,
                plural(ns), r->schedule_index >= 0 ? ", during " : "",
                r->schedule_index >= 0 ? cfg->schedules[r->schedule_index].name : "");
    }
    print_people(cfg, out);
    print_http(cfg, out);
    print_hazards(cfg, out);
    fprintf(out, "config OK\n");
}
