#include "ctl_format.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hazards.h"
#include "timefmt.h"

/* ---------------------------------------------------------------- text helpers */

/* A bounded output buffer: appends truncate at a UTF-8 character boundary. */
struct line {
    char *p;
    size_t size;
    size_t len;
    bool cut; /* once something did not fit, nothing after it is added */
};

static void line_put(struct line *l, const char *s, size_t n)
{
    if (l->size == 0 || l->cut) {
        return;
    }
    size_t room = l->size - 1 - l->len;
    if (n > room) {
        l->cut = true;
        n = room;
        /* Never leave half a character behind. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
    l->p[l->len] = '\0';
}

static void line_reset(struct line *l)
{
    l->len = 0;
    l->cut = false;
    if (l->size > 0) {
        l->p[0] = '\0';
    }
}

static void line_printf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_printf(struct line *l, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0) {
        line_put(l, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    }
}

/*
 * Decode one UTF-8 character at s. Returns its length (1 for a bad byte) and
 * the code point in *cp, or UINT32_MAX for a bad byte.
 */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        *cp = UINT32_MAX;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = UINT32_MAX;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and beyond U+10FFFF are not characters. */
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = UINT32_MAX;
        return 1;
    }
    *cp = v;
    return n;
}

static int cp_width(uint32_t cp)
{
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x200B && cp <= 0x200F) ||
        (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE00 && cp <= 0xFE0F)) {
        return 0;
    }
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
        (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
        (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD)) {
        return 2;
    }
    return 1;
}

size_t gw_ctl_display_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        p += utf8_next(p, &cp);
        w += cp == UINT32_MAX ? 1 : (size_t)cp_width(cp);
    }
    return w;
}

/*
 * Copy s to the line with anything a terminal could take as a control
 * sequence (C0, DEL, C1, bad bytes) replaced by '?': payloads come from the
 * network and must not drive the operator's terminal.
 */
static void line_put_safe(struct line *l, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        size_t n = utf8_next(p, &cp);
        if (cp == UINT32_MAX || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            line_put(l, "?", 1);
        } else {
            line_put(l, (const char *)p, n);
        }
        p += n;
    }
}

static char *safe_dup(const char *s)
{
    size_t n = strlen(s) + 1; /* replacing never makes it longer */
    char *out = malloc(n);
    if (!out) {
        return NULL;
    }
    struct line l = {out, n, 0, false};
    out[0] = '\0';
    line_put_safe(&l, s);
    return out;
}

/* ---------------------------------------------------------------- commands */

static const struct {
    enum gw_ctl_cmd cmd;
    const char *name;
    const char *alias;
    const char *topic;
} commands[] = {
    {GW_CTL_STATUS, "status", NULL, NULL},
    {GW_CTL_SENSORS, "sensors", NULL, NULL},
    {GW_CTL_ALARMS, "alarms", NULL, NULL},
    {GW_CTL_TAIL, "tail", NULL, NULL},
    {GW_CTL_HAZARDS, "hazards", NULL, NULL},
    {GW_CTL_VERIFY, "verify", NULL, NULL},
    {GW_CTL_ACK, "ack", NULL, "ack"},
    {GW_CTL_SHELVE, "shelve", NULL, "shelve"},
    {GW_CTL_UNSHELVE, "unshelve", NULL, "unshelve"},
    {GW_CTL_RESET, "reset", NULL, "reset"},
    {GW_CTL_OUT_OF_SERVICE, "out-of-service", "out_of_service", "out_of_service"},
    {GW_CTL_IN_SERVICE, "in-service", "in_service", "in_service"},
    /* "hazard <verb>": two words on the command line */
    {GW_CTL_HAZARD_OPEN, "hazard open", NULL, "hazard/open"},
    {GW_CTL_HAZARD_UPDATE, "hazard update", NULL, "hazard/update"},
    {GW_CTL_HAZARD_RECTIFYING, "hazard rectifying", NULL, "hazard/rectifying"},
    {GW_CTL_HAZARD_CLOSE, "hazard close", NULL, "hazard/close"},
    {GW_CTL_HAZARD_REOPEN, "hazard reopen", NULL, "hazard/reopen"},
    {GW_CTL_REPORT, "report", NULL, "report"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

bool gw_ctl_is_command(enum gw_ctl_cmd cmd)
{
    return cmd >= GW_CTL_ACK && cmd <= GW_CTL_REPORT;
}

bool gw_ctl_is_hazard_command(enum gw_ctl_cmd cmd)
{
    return cmd >= GW_CTL_HAZARD_OPEN && cmd <= GW_CTL_HAZARD_REOPEN;
}

bool gw_ctl_needs_hub(enum gw_ctl_cmd cmd)
{
    return cmd != GW_CTL_VERIFY && cmd != GW_CTL_HELP && cmd != GW_CTL_VERSION &&
           cmd != GW_CTL_NONE;
}

const char *gw_ctl_cmd_name(enum gw_ctl_cmd cmd)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (commands[i].cmd == cmd) {
            return commands[i].name;
        }
    }
    return "?";
}

const char *gw_ctl_cmd_topic(enum gw_ctl_cmd cmd)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (commands[i].cmd == cmd) {
            return commands[i].topic;
        }
    }
    return NULL;
}

static bool takes_sensor(enum gw_ctl_cmd cmd)
{
    return cmd == GW_CTL_OUT_OF_SERVICE || cmd == GW_CTL_IN_SERVICE;
}

/* The result's field that names what a command acted on. */
static const char *target_field(enum gw_ctl_cmd cmd)
{
    if (takes_sensor(cmd)) {
        return "sensor";
    }
    if (gw_ctl_is_hazard_command(cmd)) {
        return "hazard";
    }
    return cmd == GW_CTL_REPORT ? "day" : "key";
}

/* ---------------------------------------------------------------- arguments */

enum opt_id {
    OPT_HOST,
    OPT_PORT,
    OPT_PREFIX,
    OPT_CONFIG,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_USERNAME,
    OPT_PASSWORD_FILE,
    OPT_CAFILE,
    OPT_BY,
    OPT_NOTE,
    OPT_NOTIFY,
    OPT_COUNT,
    OPT_HELP,
    OPT_VERSION,
    OPT_ALL,
    OPT_CATEGORY,
    OPT_BUILDING,
    OPT_FLOOR,
    OPT_ZONE,
    OPT_DESCRIPTION,
    OPT_RESPONSIBLE,
    OPT_DEADLINE,
    OPT_VERIFIER,
    OPT_STATE_DIR,
    OPT_DB,
    OPT_DAY,
    OPT_CSV,
};

static const struct {
    const char *name;
    const char *short_name;
    bool has_value;
    enum opt_id id;
} options[] = {
    {"--host", NULL, true, OPT_HOST},
    {"--port", NULL, true, OPT_PORT},
    {"--prefix", NULL, true, OPT_PREFIX},
    {"--config", "-c", true, OPT_CONFIG},
    {"--json", NULL, false, OPT_JSON},
    {"--timeout", NULL, true, OPT_TIMEOUT},
    {"--username", NULL, true, OPT_USERNAME},
    {"--password-file", NULL, true, OPT_PASSWORD_FILE},
    {"--cafile", NULL, true, OPT_CAFILE},
    {"--by", NULL, true, OPT_BY},
    {"--note", NULL, true, OPT_NOTE},
    {"--notify", NULL, false, OPT_NOTIFY},
    {"--count", NULL, true, OPT_COUNT},
    {"--help", "-h", false, OPT_HELP},
    {"--version", NULL, false, OPT_VERSION},
    {"--all", NULL, false, OPT_ALL},
    {"--category", NULL, true, OPT_CATEGORY},
    {"--building", NULL, true, OPT_BUILDING},
    {"--floor", NULL, true, OPT_FLOOR},
    {"--zone", NULL, true, OPT_ZONE},
    {"--description", NULL, true, OPT_DESCRIPTION},
    {"--responsible", NULL, true, OPT_RESPONSIBLE},
    {"--deadline", NULL, true, OPT_DEADLINE},
    {"--verifier", NULL, true, OPT_VERIFIER},
    {"--state-dir", NULL, true, OPT_STATE_DIR},
    {"--db", NULL, true, OPT_DB},
    {"--day", NULL, true, OPT_DAY},
    {"--csv", NULL, false, OPT_CSV},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static bool cmd_in(enum gw_ctl_cmd cmd, const enum gw_ctl_cmd *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == cmd) {
            return true;
        }
    }
    return false;
}

/*
 * Options that belong to some commands only: true when `id` may go with cmd,
 * else false with the commands it is for in *what.
 */
static bool option_fits(enum opt_id id, enum gw_ctl_cmd cmd, const char **what)
{
    static const enum gw_ctl_cmd open_only[] = {GW_CTL_HAZARD_OPEN};
    static const enum gw_ctl_cmd open_update[] = {GW_CTL_HAZARD_OPEN, GW_CTL_HAZARD_UPDATE};
    static const enum gw_ctl_cmd with_deadline[] = {GW_CTL_HAZARD_OPEN, GW_CTL_HAZARD_UPDATE,
                                                    GW_CTL_HAZARD_REOPEN};
    static const enum gw_ctl_cmd close_only[] = {GW_CTL_HAZARD_CLOSE};
#define FITS(list) cmd_in(cmd, list, sizeof(list) / sizeof(list[0]))
    switch (id) {
    case OPT_BY:
    case OPT_NOTE:
        *what = "ack, shelve, unshelve, reset, out-of-service, in-service and the hazard commands";
        return gw_ctl_is_command(cmd) && cmd != GW_CTL_REPORT;
    case OPT_NOTIFY:
    case OPT_COUNT:
        *what = "tail";
        return cmd == GW_CTL_TAIL;
    case OPT_ALL:
        *what = "hazards";
        return cmd == GW_CTL_HAZARDS;
    case OPT_CATEGORY:
    case OPT_BUILDING:
    case OPT_FLOOR:
    case OPT_ZONE:
        *what = "hazard open";
        return FITS(open_only);
    case OPT_DESCRIPTION:
    case OPT_RESPONSIBLE:
        *what = "hazard open and hazard update";
        return FITS(open_update);
    case OPT_DEADLINE:
        *what = "hazard open, hazard update and hazard reopen";
        return FITS(with_deadline);
    case OPT_VERIFIER:
        *what = "hazard close";
        return FITS(close_only);
    case OPT_STATE_DIR:
    case OPT_DB:
        *what = "verify";
        return cmd == GW_CTL_VERIFY;
    case OPT_DAY:
    case OPT_CSV:
        *what = "report";
        return cmd == GW_CTL_REPORT;
    default:
        return true;
    }
#undef FITS
}

static int fail(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return -1;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    if (!s || !*s || isspace((unsigned char)*s)) {
        return false;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static bool sensor_id_ok(const char *s, size_t n)
{
    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-') {
            return false;
        }
    }
    return true;
}

/* <sensor>/<rule-slug>: a sensor id, one '/', a slug without topic wildcards or spaces. */
static bool key_ok(const char *key)
{
    const char *slash = strchr(key, '/');
    if (!slash || !sensor_id_ok(key, (size_t)(slash - key)) || slash[1] == '\0') {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)slash + 1; *p; p++) {
        if (*p == '/' || *p == '#' || *p == '+' || *p <= ' ' || *p == 0x7F) {
            return false;
        }
    }
    return true;
}

/* HZ-<YYYYMMDD>-<NNN> (the counter is wider past 999). */
static bool hazard_id_ok(const char *id)
{
    size_t len = strlen(id);
    if (len < 15 || len >= GW_HZ_ID_MAX || strncmp(id, "HZ-", 3) != 0 || id[11] != '-') {
        return false;
    }
    for (size_t i = 3; i < len; i++) {
        if (i != 11 && !isdigit((unsigned char)id[i])) {
            return false;
        }
    }
    return true;
}

int gw_ctl_check_prefix(const char *prefix, char *err, size_t errsize)
{
    if (!prefix || !*prefix) {
        return fail(err, errsize, "--prefix is empty; it is <topic_prefix>/<district>/<school>");
    }
    if (strpbrk(prefix, "#+")) {
        return fail(err, errsize, "--prefix \"%s\" has an MQTT wildcard (# or +)", prefix);
    }
    if (prefix[0] == '/' || prefix[strlen(prefix) - 1] == '/' || strstr(prefix, "//")) {
        return fail(err, errsize,
                    "--prefix \"%s\" has an empty topic level; it is "
                    "<topic_prefix>/<district>/<school>, e.g. campus/haidian/no1-middle",
                    prefix);
    }
    for (const unsigned char *p = (const unsigned char *)prefix; *p; p++) {
        if (*p < ' ' || *p == 0x7F) {
            return fail(err, errsize, "--prefix has a control character");
        }
    }
    return 0;
}

static int find_option(const char *arg, size_t namelen)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        if ((strlen(options[i].name) == namelen && strncmp(options[i].name, arg, namelen) == 0) ||
            (options[i].short_name && strlen(options[i].short_name) == namelen &&
             strncmp(options[i].short_name, arg, namelen) == 0)) {
            return (int)i;
        }
    }
    return -1;
}

/* The command named by the first positional words; how many words it took (0: unknown). */
static int find_command(const char *const *pos, int npos, enum gw_ctl_cmd *cmd, char *err,
                        size_t errsize)
{
    if (strcmp(pos[0], "hazard") == 0) {
        if (npos < 2) {
            fail(err, errsize,
                 "hazard needs what to do: open, update, rectifying, close or "
                 "reopen (campusgw-ctl hazards lists the register)");
            return -1;
        }
        char both[64];
        snprintf(both, sizeof(both), "hazard %s", pos[1]);
        for (size_t i = 0; i < NCOMMANDS; i++) {
            if (strcmp(both, commands[i].name) == 0) {
                *cmd = commands[i].cmd;
                return 2;
            }
        }
        fail(err, errsize,
             "unknown hazard command \"%s\" (open, update, rectifying, close or reopen)", pos[1]);
        return -1;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (!strchr(commands[i].name, ' ') &&
            (strcmp(pos[0], commands[i].name) == 0 ||
             (commands[i].alias && strcmp(pos[0], commands[i].alias) == 0))) {
            *cmd = commands[i].cmd;
            return 1;
        }
    }
    fail(err, errsize, "unknown command \"%s\"", pos[0]);
    return -1;
}

/* What a hazard command needs beyond its id. 0 or -1 with err. */
static int check_hazard_args(const struct gw_ctl_args *args, const char *name, char *err,
                             size_t errsize)
{
    switch (args->cmd) {
    case GW_CTL_HAZARD_OPEN:
        if (!args->category) {
            return fail(err, errsize,
                        "hazard open needs --category C: fire_equipment, evacuation_route, "
                        "electrical, structure, surroundings or other");
        }
        if (gw_hazard_category_from_name(args->category) < 0) {
            return fail(err, errsize,
                        "hazard open: --category \"%s\" is not one of fire_equipment, "
                        "evacuation_route, electrical, structure, surroundings, other",
                        args->category);
        }
        if (!args->building) {
            return fail(err, errsize, "hazard open needs --building B: where it was found");
        }
        if (!args->description) {
            return fail(err, errsize, "hazard open needs --description TEXT: what is wrong");
        }
        if (!args->responsible) {
            return fail(err, errsize,
                        "hazard open needs --responsible NAME: who is to put it right");
        }
        return 0;
    case GW_CTL_HAZARD_UPDATE:
        if (!args->responsible && !args->deadline_ms && !args->description) {
            return fail(err, errsize,
                        "hazard update needs --responsible, --deadline or --description");
        }
        return 0;
    case GW_CTL_HAZARD_CLOSE:
        if (!args->note || !*args->note) {
            return fail(err, errsize, "hazard close needs --note TEXT: what was done to fix it");
        }
        if (!args->verifier) {
            return fail(err, errsize, "hazard close needs --verifier NAME: who checked the fix");
        }
        return 0;
    default:
        (void)name;
        return 0;
    }
}

int gw_ctl_parse_args(int argc, char **argv, struct gw_ctl_args *args, char *err, size_t errsize)
{
    memset(args, 0, sizeof(*args));
    args->timeout_ms = GW_CTL_DEFAULT_TIMEOUT_MS;
    if (errsize > 0) {
        err[0] = '\0';
    }
    const char *pos[4];
    int npos = 0;
    bool help = false, version = false, end_of_options = false;
    bool given[NOPTIONS] = {false};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!end_of_options && strcmp(a, "--") == 0) {
            end_of_options = true;
            continue;
        }
        if (end_of_options || a[0] != '-' || a[1] == '\0') {
            if (npos == (int)(sizeof(pos) / sizeof(pos[0]))) {
                return fail(err, errsize, "too many arguments (from \"%s\" on)", a);
            }
            pos[npos++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t namelen = eq ? (size_t)(eq - a) : strlen(a);
        int o = find_option(a, namelen);
        if (o < 0) {
            return fail(err, errsize, "unknown option \"%.*s\"", (int)namelen, a);
        }
        given[o] = true;
        const char *value = NULL;
        if (options[o].has_value) {
            if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return fail(err, errsize, "%s needs a value", options[o].name);
            }
            if (*value == '\0' && options[o].id != OPT_NOTE) {
                return fail(err, errsize, "%s needs a value", options[o].name);
            }
        } else if (eq) {
            return fail(err, errsize, "%s takes no value", options[o].name);
        }
        long v;
        switch (options[o].id) {
        case OPT_HOST:
            args->host = value;
            break;
        case OPT_PORT:
            if (!parse_long(value, 1, 65535, &v)) {
                return fail(err, errsize, "--port \"%s\" is not a port number (1..65535)", value);
            }
            args->port = (int)v;
            break;
        case OPT_PREFIX:
            if (gw_ctl_check_prefix(value, err, errsize) < 0) {
                return -1;
            }
            args->prefix = value;
            break;
        case OPT_CONFIG:
            args->config_path = value;
            break;
        case OPT_JSON:
            args->json = true;
            break;
        case OPT_TIMEOUT: {
            char *end;
            errno = 0;
            double s = strtod(value, &end);
            if (errno != 0 || *end != '\0' || !isfinite(s) || s < 0.1 || s > 3600) {
                return fail(err, errsize, "--timeout \"%s\" is not a number of seconds (0.1..3600)",
                            value);
            }
            args->timeout_ms = (int)lround(s * 1000);
            break;
        }
        case OPT_USERNAME:
            args->username = value;
            break;
        case OPT_PASSWORD_FILE:
            args->password_file = value;
            break;
        case OPT_CAFILE:
            args->cafile = value;
            break;
        case OPT_BY:
            args->by = value;
            break;
        case OPT_NOTE:
            args->note = value;
            break;
        case OPT_NOTIFY:
            args->notify = true;
            break;
        case OPT_COUNT:
            if (!parse_long(value, 1, LONG_MAX, &v)) {
                return fail(err, errsize, "--count \"%s\" is not a positive whole number", value);
            }
            args->count = v;
            break;
        case OPT_HELP:
            help = true;
            break;
        case OPT_VERSION:
            version = true;
            break;
        case OPT_ALL:
            args->all = true;
            break;
        case OPT_CATEGORY:
            args->category = value;
            break;
        case OPT_BUILDING:
            args->building = value;
            break;
        case OPT_FLOOR:
            args->floor = value;
            break;
        case OPT_ZONE:
            args->zone = value;
            break;
        case OPT_DESCRIPTION:
            args->description = value;
            break;
        case OPT_RESPONSIBLE:
            args->responsible = value;
            break;
        case OPT_DEADLINE:
            if (gw_ctl_parse_deadline(value, &args->deadline_ms) < 0 || args->deadline_ms <= 0) {
                return fail(err, errsize,
                            "--deadline \"%s\" is not a day (YYYY-MM-DD: the end of that day) or "
                            "an RFC 3339 time (2026-12-05T17:00:00+08:00)",
                            value);
            }
            break;
        case OPT_VERIFIER:
            args->verifier = value;
            break;
        case OPT_STATE_DIR:
            args->state_dir = value;
            break;
        case OPT_DB:
            args->db_path = value;
            break;
        case OPT_DAY: {
            int y, m, d;
            if (gw_parse_date(value, &y, &m, &d) != 0) {
                return fail(err, errsize, "--day \"%s\" is not a day (YYYY-MM-DD)", value);
            }
            args->day = value;
            break;
        }
        case OPT_CSV:
            args->csv = true;
            break;
        }
    }

    if (help) {
        args->cmd = GW_CTL_HELP;
        return 0;
    }
    if (version) {
        args->cmd = GW_CTL_VERSION;
        return 0;
    }
    if (npos == 0) {
        return fail(err, errsize,
                    "no command given: status, sensors, alarms, tail, ack, shelve, unshelve, "
                    "reset, out-of-service, in-service, hazards, hazard, verify or report");
    }
    int used = find_command(pos, npos, &args->cmd, err, errsize);
    if (used < 0) {
        return -1;
    }
    const char *name = gw_ctl_cmd_name(args->cmd);
    int nargs = npos - used; /* the command's own arguments, from pos[used] */

    int want = 0;
    const char *what = "";
    switch (args->cmd) {
    case GW_CTL_ACK:
    case GW_CTL_UNSHELVE:
    case GW_CTL_RESET:
        want = 1;
        what = "KEY";
        break;
    case GW_CTL_SHELVE:
        want = 2;
        what = "KEY MINUTES";
        break;
    case GW_CTL_OUT_OF_SERVICE:
    case GW_CTL_IN_SERVICE:
        want = 1;
        what = "SENSOR";
        break;
    case GW_CTL_HAZARD_UPDATE:
    case GW_CTL_HAZARD_RECTIFYING:
    case GW_CTL_HAZARD_CLOSE:
    case GW_CTL_HAZARD_REOPEN:
        want = 1;
        what = "the hazard's ID (HZ-<YYYYMMDD>-<NNN>)";
        break;
    default:
        break;
    }
    if (nargs < want) {
        return fail(err, errsize, "%s needs %s", name, what);
    }
    if (nargs > want) {
        return fail(err, errsize, "%s: unexpected argument \"%s\"", name, pos[used + want]);
    }
    for (size_t o = 0; o < NOPTIONS; o++) {
        const char *fits = "";
        if (given[o] && !option_fits(options[o].id, args->cmd, &fits)) {
            return fail(err, errsize, "%s is only for %s", options[o].name, fits);
        }
    }

    if (gw_ctl_is_hazard_command(args->cmd)) {
        if (args->cmd != GW_CTL_HAZARD_OPEN) {
            args->target = pos[used];
            if (!hazard_id_ok(args->target)) {
                return fail(err, errsize,
                            "%s: \"%s\" is not a hazard id; an id is HZ-<YYYYMMDD>-<NNN>, e.g. "
                            "HZ-20261128-001 (campusgw-ctl hazards lists them)",
                            name, args->target);
            }
        }
        if (check_hazard_args(args, name, err, errsize) < 0) {
            return -1;
        }
    } else if (args->cmd == GW_CTL_REPORT) {
        args->target = args->day; /* NULL: the caller fills in yesterday */
    } else if (gw_ctl_is_command(args->cmd)) {
        args->target = pos[used];
        if (takes_sensor(args->cmd)) {
            if (!sensor_id_ok(args->target, strlen(args->target))) {
                return fail(err, errsize,
                            "%s: \"%s\" is not a sensor id (letters, digits, _ . -), e.g. "
                            "A-3F-smoke-301",
                            name, args->target);
            }
        } else if (!key_ok(args->target)) {
            return fail(err, errsize,
                        "%s: \"%s\" is not an alarm key; a key is <sensor>/<rule-slug>, e.g. "
                        "A-3F-smoke-301/smoke-detected (campusgw-ctl alarms lists them)",
                        name, args->target);
        }
        if (args->cmd == GW_CTL_SHELVE) {
            long v;
            if (!parse_long(pos[used + 1], 1, GW_CTL_SHELVE_MAX_MINUTES, &v)) {
                return fail(err, errsize, "shelve: MINUTES \"%s\" must be 1..%d (a week at most)",
                            pos[used + 1], GW_CTL_SHELVE_MAX_MINUTES);
            }
            args->minutes = (int)v;
        }
        if (!args->by) {
            return fail(err, errsize,
                        "%s needs --by NAME: who takes responsibility (recorded in the alarm's "
                        "history)",
                        name);
        }
    }
    if (args->cmd == GW_CTL_VERIFY && args->db_path && args->state_dir) {
        return fail(err, errsize, "verify: give --db FILE or --state-dir DIR, not both");
    }
    if (gw_ctl_needs_hub(args->cmd) && !args->prefix && !args->config_path) {
        return fail(err, errsize,
                    "which gateway? give --prefix <topic_prefix>/<district>/<school> (e.g. "
                    "campus/haidian/no1-middle) or --config /etc/campusgw/campusgw.cfg");
    }
    return 0;
}

void gw_ctl_usage(FILE *out)
{
    fputs(
        "usage: campusgw-ctl [options] COMMAND [arguments]\n"
        "\n"
        "Talks to a campusgw gateway through its MQTT hub.\n"
        "\n"
        "commands:\n"
        "  status                          the gateway's status and counts\n"
        "  sensors                         every sensor's health (offline and faulty first)\n"
        "  alarms                          active alarms (fire alarms first)\n"
        "  tail [--notify] [--count N]     follow alarm events (and notifications) until Ctrl-C\n"
        "  ack KEY --by NAME [--note TEXT]             acknowledge an alarm\n"
        "  shelve KEY MINUTES --by NAME [--note TEXT]  shelve an alarm (1..10080 minutes)\n"
        "  unshelve KEY --by NAME                      unshelve it now\n"
        "  reset KEY --by NAME                         reset a latched alarm (after ack)\n"
        "  out-of-service SENSOR --by NAME [--note TEXT]  take a sensor out of service\n"
        "  in-service SENSOR --by NAME                 put it back in service\n"
        "\n"
        "  KEY is <sensor>/<rule-slug>, as `alarms` lists it.\n"
        "\n"
        "hazard register (隐患台账):\n"
        "  hazards [--all]                 hazards not closed (--all: closed too), overdue first\n"
        "  hazard open --category C --building B [--floor F] [--zone Z]\n"
        "              --description TEXT --responsible NAME [--deadline D]\n"
        "                                  record a hazard found on an inspection\n"
        "  hazard update ID [--responsible NAME] [--deadline D] [--description TEXT]\n"
        "  hazard rectifying ID            its fix has started\n"
        "  hazard close ID --note TEXT --verifier NAME   fixed, and checked by the verifier\n"
        "  hazard reopen ID [--deadline D]  the fix did not hold\n"
        "  verify [--state-dir DIR | --db FILE]\n"
        "                                  check the register's hash chain in state.db\n"
        "                                  (read-only; default " GW_CTL_DEFAULT_STATE_DIR
        ", or -c's state_dir);\n"
        "                                  exit 0 intact, 1 the first bad entry and why\n"
        "  report [--day YYYY-MM-DD] [--csv]  the daily safety log (default: yesterday),\n"
        "                                  Markdown or CSV, as the gateway writes it\n"
        "\n"
        "  C is fire_equipment, evacuation_route, electrical, structure, surroundings or\n"
        "  other. D is a day (YYYY-MM-DD, meaning its end, local time) or an RFC 3339 time;\n"
        "  without it the category's default days apply. Every hazard command takes\n"
        "  --by NAME (default: your login name) and --note TEXT. ID is HZ-<YYYYMMDD>-<NNN>,\n"
        "  as `hazards` lists it.\n"
        "\n"
        "options:\n"
        "  -c, --config FILE     take hub host, port, login and topic prefix from the\n"
        "                        gateway's config file\n"
        "  --prefix P            <topic_prefix>/<district>/<school> (without --config)\n"
        "  --host H, --port P    the hub (default 127.0.0.1:1883)\n"
        "  --username U --password-file F   hub login\n"
        "  --cafile F            TLS to the hub, trusting this CA (port 8883 by default)\n"
        "  --json                print JSON for scripts instead of tables\n"
        "  --timeout S           seconds to wait for the hub and the gateway (default 10)\n"
        "  -h, --help, --version\n"
        "\n"
        "exit codes: 0 ok; 1 verify found the register altered (or could not read it);\n"
        "2 cannot connect to the hub; 3 the gateway refused the command;\n"
        "4 no answer from the gateway in time (status: the gateway is offline); 64 usage error.\n",
        out);
}

/* ---------------------------------------------------------------- commands on the wire */

static int set_str(json_t *o, const char *key, const char *value)
{
    return value ? json_object_set_new(o, key, json_string(value)) : 0;
}

static int hazard_payload(json_t *root, const struct gw_ctl_args *args)
{
    int rc = 0;
    if (args->cmd != GW_CTL_HAZARD_OPEN) {
        rc |= set_str(root, "hazard", args->target);
    }
    rc |= set_str(root, "by", args->by);
    switch (args->cmd) {
    case GW_CTL_HAZARD_OPEN:
        rc |= set_str(root, "category", args->category);
        rc |= set_str(root, "building", args->building);
        rc |= set_str(root, "floor", args->floor);
        rc |= set_str(root, "zone", args->zone);
        rc |= set_str(root, "description", args->description);
        rc |= set_str(root, "responsible", args->responsible);
        break;
    case GW_CTL_HAZARD_UPDATE:
        rc |= set_str(root, "responsible", args->responsible);
        rc |= set_str(root, "description", args->description);
        break;
    case GW_CTL_HAZARD_CLOSE:
        rc |= set_str(root, "verifier", args->verifier);
        break;
    default:
        break;
    }
    if (args->deadline_ms) {
        rc |= json_object_set_new(root, "deadline", json_integer((json_int_t)args->deadline_ms));
    }
    return rc;
}

char *gw_ctl_command_payload(const struct gw_ctl_args *args, const char *id)
{
    if (gw_ctl_is_hazard_command(args->cmd) && (!args->by || !*args->by)) {
        return NULL;
    }
    json_t *root = json_object();
    if (!root) {
        return NULL;
    }
    int rc = 0;
    if (args->cmd == GW_CTL_REPORT) {
        rc |= set_str(root, "day", args->target);
        rc |= set_str(root, "format", args->csv ? "csv" : "md");
    } else if (gw_ctl_is_hazard_command(args->cmd)) {
        rc |= hazard_payload(root, args);
    } else {
        rc |= json_object_set_new(root, takes_sensor(args->cmd) ? "sensor" : "key",
                                  json_string(args->target));
        rc |= json_object_set_new(root, "by", json_string(args->by));
    }
    if (args->note && *args->note) {
        rc |= json_object_set_new(root, "note", json_string(args->note));
    }
    if (args->cmd == GW_CTL_SHELVE) {
        rc |= json_object_set_new(root, "minutes", json_integer(args->minutes));
    }
    rc |= json_object_set_new(root, "id", json_string(id));
    char *s = rc == 0 ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return s;
}

json_t *gw_ctl_match_result(const char *payload, size_t len, const char *id)
{
    json_t *root = json_loadb(payload, len, 0, NULL);
    if (!root) {
        return NULL;
    }
    const char *rid = json_string_value(json_object_get(root, "id"));
    if (!json_is_object(root) || !rid || strcmp(rid, id) != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

int gw_ctl_result_exit_code(const json_t *result)
{
    return json_is_true(json_object_get(result, "ok")) ? GW_CTL_EXIT_OK : GW_CTL_EXIT_REFUSED;
}

int gw_ctl_print_result(const json_t *result, const struct gw_ctl_args *args, FILE *out, FILE *err)
{
    char buf[2048];
    struct line l = {buf, sizeof(buf), 0, false};
    buf[0] = '\0';
    const char *target = json_string_value(json_object_get(result, target_field(args->cmd)));
    if (!target || !*target) {
        target = args->target ? args->target : "";
    }
    /* Alarm commands say "state", hazard commands "status". */
    const char *state = json_string_value(json_object_get(result, "state"));
    if (!state) {
        state = json_string_value(json_object_get(result, "status"));
    }
    const json_t *ok = json_object_get(result, "ok");
    if (json_is_true(ok)) {
        line_printf(&l, "ok: %s", gw_ctl_cmd_name(args->cmd));
        if (*target) {
            line_put(&l, " ", 1);
            line_put_safe(&l, target);
        }
        if (state && *state) {
            line_put(&l, ": now ", 6);
            line_put_safe(&l, state);
        }
        fprintf(out, "%s\n", buf);
        return GW_CTL_EXIT_OK;
    }
    line_printf(&l, "campusgw-ctl: the gateway refused %s", gw_ctl_cmd_name(args->cmd));
    if (*target) {
        line_put(&l, " ", 1);
        line_put_safe(&l, target);
    }
    line_put(&l, ": ", 2);
    const char *error = json_string_value(json_object_get(result, "error"));
    if (!json_is_boolean(ok)) {
        line_put(&l, "malformed result (no \"ok\")", 26);
    } else {
        line_put_safe(&l, error && *error ? error : "no reason given");
    }
    if (state && *state) {
        line_put(&l, " (state: ", 9);
        line_put_safe(&l, state);
        line_put(&l, ")", 1);
    }
    fprintf(err, "%s\n", buf);
    return GW_CTL_EXIT_REFUSED;
}

int gw_ctl_print_report(const json_t *result, const struct gw_ctl_args *args, FILE *out, FILE *err)
{
    const char *text = json_string_value(json_object_get(result, "text"));
    if (!json_is_true(json_object_get(result, "ok")) || !text) {
        if (json_is_true(json_object_get(result, "ok"))) {
            fprintf(err, "campusgw-ctl: the gateway's report has no text\n");
            return GW_CTL_EXIT_REFUSED;
        }
        return gw_ctl_print_result(result, args, out, err);
    }
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        uint32_t cp;
        size_t n = utf8_next(p, &cp);
        bool layout = cp == '\t' || cp == '\r' || cp == '\n';
        if (!layout && (cp == UINT32_MAX || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))) {
            fputc('?', out);
        } else {
            fwrite(p, 1, n, out);
        }
        p += n;
    }
    return GW_CTL_EXIT_OK;
}

/* ---------------------------------------------------------------- time */

int gw_ctl_parse_deadline(const char *s, int64_t *ms)
{
    if (gw_parse_rfc3339(s, ms) == 0) {
        return 0;
    }
    int y, m, d;
    if (gw_parse_date(s, &y, &m, &d) != 0) {
        return -1;
    }
    /* A day on a form means "by the end of it", in local time like the people who set it. */
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = 23;
    tm.tm_min = 59;
    tm.tm_sec = 59;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1) {
        return -1;
    }
    *ms = (int64_t)t * 1000;
    return 0;
}

void gw_ctl_truncate(const char *s, size_t columns, char *out, size_t size)
{
    if (size == 0) {
        return;
    }
    struct line l = {out, size, 0, false};
    out[0] = '\0';
    if (gw_ctl_display_width(s) <= columns) {
        line_put(&l, s, strlen(s));
        return;
    }
    size_t used = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && columns > 0) {
        uint32_t cp;
        size_t n = utf8_next(p, &cp);
        size_t w = cp == UINT32_MAX ? 1 : (size_t)cp_width(cp);
        if (used + w > columns - 1) { /* one column for the ellipsis */
            break;
        }
        line_put(&l, (const char *)p, n);
        used += w;
        p += n;
    }
    if (columns > 0) {
        line_put(&l, "\xe2\x80\xa6", 3);
    }
}

void gw_ctl_format_age(int64_t now_ms, int64_t then_ms, char *out, size_t size)
{
    int64_t d = now_ms - then_ms;
    /* Clocks of the gateway and this machine differ by a little: that is "now". */
    if (d > -5000 && d < 5000) {
        snprintf(out, size, "just now");
        return;
    }
    bool future = d < 0;
    int64_t s = (future ? -d : d) / 1000;
    int64_t n;
    const char *unit;
    if (s < 60) {
        n = s;
        unit = "s";
    } else if (s < 3600) {
        n = s / 60;
        unit = "min";
    } else if (s < 48 * 3600) {
        n = s / 3600;
        unit = "h";
    } else {
        n = s / 86400;
        unit = "d";
    }
    if (future) {
        snprintf(out, size, "in %" PRId64 " %s", n, unit);
    } else {
        snprintf(out, size, "%" PRId64 " %s ago", n, unit);
    }
}

/* "2024-05-01 10:42:05" in local time. */
static void format_local(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm) == 0) {
        snprintf(out, size, "?");
    }
}

/* ---------------------------------------------------------------- tables */

struct gw_ctl_table {
    int ncols;
    char **headers;
    enum gw_ctl_align *aligns;
    size_t *widths;
    char **cells; /* nrows * ncols */
    size_t nrows;
    size_t cap;
};

struct gw_ctl_table *gw_ctl_table_new(int ncols, const char *const *headers,
                                      const enum gw_ctl_align *aligns)
{
    if (ncols <= 0) {
        return NULL;
    }
    struct gw_ctl_table *t = calloc(1, sizeof(*t));
    if (!t) {
        return NULL;
    }
    t->ncols = ncols;
    t->headers = calloc((size_t)ncols, sizeof(*t->headers));
    t->aligns = calloc((size_t)ncols, sizeof(*t->aligns));
    t->widths = calloc((size_t)ncols, sizeof(*t->widths));
    if (!t->headers || !t->aligns || !t->widths) {
        gw_ctl_table_free(t);
        return NULL;
    }
    for (int c = 0; c < ncols; c++) {
        t->headers[c] = safe_dup(headers[c]);
        if (!t->headers[c]) {
            gw_ctl_table_free(t);
            return NULL;
        }
        t->aligns[c] = aligns ? aligns[c] : GW_CTL_LEFT;
        t->widths[c] = gw_ctl_display_width(t->headers[c]);
    }
    return t;
}

int gw_ctl_table_add(struct gw_ctl_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **grown = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*grown));
        if (!grown) {
            return -1;
        }
        t->cells = grown;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * (size_t)t->ncols;
    for (int c = 0; c < t->ncols; c++) {
        row[c] = safe_dup(cells[c] ? cells[c] : "-");
        if (!row[c]) {
            for (int k = 0; k < c; k++) {
                free(row[k]);
            }
            return -1;
        }
    }
    for (int c = 0; c < t->ncols; c++) {
        size_t w = gw_ctl_display_width(row[c]);
        if (w > t->widths[c]) {
            t->widths[c] = w;
        }
    }
    t->nrows++;
    return 0;
}

static void print_row(const struct gw_ctl_table *t, char *const *row, FILE *out)
{
    for (int c = 0; c < t->ncols; c++) {
        size_t pad = t->widths[c] - gw_ctl_display_width(row[c]);
        bool last = c == t->ncols - 1;
        if (c > 0) {
            fputs("  ", out);
        }
        if (t->aligns[c] == GW_CTL_RIGHT) {
            fprintf(out, "%*s%s", (int)pad, "", row[c]);
        } else if (last) {
            fputs(row[c], out); /* no trailing spaces */
        } else {
            fprintf(out, "%s%*s", row[c], (int)pad, "");
        }
    }
    fputc('\n', out);
}

void gw_ctl_table_print(const struct gw_ctl_table *t, FILE *out)
{
    print_row(t, t->headers, out);
    for (size_t r = 0; r < t->nrows; r++) {
        print_row(t, t->cells + r * (size_t)t->ncols, out);
    }
}

void gw_ctl_table_free(struct gw_ctl_table *t)
{
    if (!t) {
        return;
    }
    if (t->headers) {
        for (int c = 0; c < t->ncols; c++) {
            free(t->headers[c]);
        }
    }
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t->headers);
    free(t->aligns);
    free(t->widths);
    free(t);
}

/* ---------------------------------------------------------------- retained state */

int gw_ctl_collect(json_t *map, const char *topic, const char *payload, size_t len)
{
    if (len == 0) {
        json_object_del(map, topic); /* cleared: back to normal */
        return 0;
    }
    json_t *obj = json_loadb(payload, len, 0, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return -1;
    }
    return json_object_set_new(map, topic, obj);
}

json_t *gw_ctl_map_values(const json_t *map)
{
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v)
    {
        if (arr && json_array_append(arr, v) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Sort a JSON array in place with a comparator over its elements. */
static int sort_array(json_t *arr, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(arr);
    if (n < 2) {
        return 0;
    }
    json_t **items = malloc(n * sizeof(*items));
    if (!items) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        items[i] = json_incref(json_array_get(arr, i));
    }
    qsort(items, n, sizeof(*items), cmp);
    json_array_clear(arr);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(arr, items[i]) < 0) {
            rc = -1;
        }
    }
    free(items);
    return rc;
}

static const char *str_field(const json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s ? s : "";
}

/* 0 offline, 1 online with a fault, 2 fine. */
static int sensor_rank(const json_t *h)
{
    if (!json_is_true(json_object_get(h, "online"))) {
        return 0;
    }
    const char *fault = json_string_value(json_object_get(h, "fault"));
    return fault && *fault ? 1 : 2;
}

static int cmp_sensors(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int rx = sensor_rank(x), ry = sensor_rank(y);
    if (rx != ry) {
        return rx < ry ? -1 : 1;
    }
    return strcmp(str_field(x, "sensor"), str_field(y, "sensor"));
}

int gw_ctl_sort_sensors(json_t *health)
{
    return sort_array(health, cmp_sensors);
}

static int rank_of(const char *s, const char *const *order, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(s, order[i]) == 0) {
            return i;
        }
    }
    return n;
}

static const char *const class_order[] = {"alarm", "supervisory", "trouble"};
static const char *const state_order[] = {"unacked", "rtn_unacked",    "acked",
                                          "shelved", "out_of_service", "normal"};
#define NCLASSES ((int)(sizeof(class_order) / sizeof(class_order[0])))
#define NSTATES ((int)(sizeof(state_order) / sizeof(state_order[0])))

static int64_t time_field(const json_t *o, const char *name)
{
    int64_t ms;
    return gw_parse_rfc3339(json_string_value(json_object_get(o, name)), &ms) == 0 ? ms : INT64_MAX;
}

static int cmp_alarms(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int cx = rank_of(str_field(x, "class"), class_order, NCLASSES);
    int cy = rank_of(str_field(y, "class"), class_order, NCLASSES);
    if (cx != cy) {
        return cx < cy ? -1 : 1;
    }
    int sx = rank_of(str_field(x, "state"), state_order, NSTATES);
    int sy = rank_of(str_field(y, "state"), state_order, NSTATES);
    if (sx != sy) {
        return sx < sy ? -1 : 1;
    }
    int64_t tx = time_field(x, "raised_at"), ty = time_field(y, "raised_at");
    if (tx != ty) {
        return tx < ty ? -1 : 1;
    }
    return strcmp(str_field(x, "key"), str_field(y, "key"));
}

int gw_ctl_sort_alarms(json_t *alarms)
{
    return sort_array(alarms, cmp_alarms);
}

/* A JSON scalar as text: numbers without noise, "-" for absent / null. */
static void scalar_text(const json_t *v, char *out, size_t size)
{
    if (json_is_integer(v)) {
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(out, size, "%.6g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(out, size, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_string(v)) {
        snprintf(out, size, "%s", json_string_value(v));
    } else if (v && !json_is_null(v)) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(out, size, "%s", s ? s : "?");
        free(s);
    } else {
        snprintf(out, size, "-");
    }
}

static void age_text(const json_t *o, const char *name, int64_t now_ms, const char *none, char *out,
                     size_t size)
{
    const json_t *v = json_object_get(o, name);
    int64_t ms;
    if (!v || json_is_null(v)) {
        snprintf(out, size, "%s", none);
    } else if (gw_parse_rfc3339(json_string_value(v), &ms) == 0) {
        gw_ctl_format_age(now_ms, ms, out, size);
    } else {
        snprintf(out, size, "?");
    }
}

int gw_ctl_print_sensors(const json_t *health, int64_t now_ms, FILE *out)
{
    size_t n = json_array_size(health);
    if (n == 0) {
        fprintf(out, "no sensor health published (is the gateway running with sensors?)\n");
        return 0;
    }
    static const char *const headers[] = {"SENSOR",   "STATE",  "LAST SEEN", "BATTERY",
                                          "RSSI/SNR", "ERRORS", "FAULT"};
    static const enum gw_ctl_align aligns[] = {GW_CTL_LEFT,  GW_CTL_LEFT,  GW_CTL_LEFT,
                                               GW_CTL_RIGHT, GW_CTL_RIGHT, GW_CTL_RIGHT,
                                               GW_CTL_LEFT};
    struct gw_ctl_table *t = gw_ctl_table_new(7, headers, aligns);
    if (!t) {
        return -1;
    }
    int offline = 0, faulty = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *h = json_array_get(health, i);
        const json_t *online = json_object_get(h, "online");
        char seen[48], battery[32], radio[64], errors[32], fault[256];
        age_text(h, "last_seen", now_ms, "never", seen, sizeof(seen));
        const json_t *b = json_object_get(h, "battery");
        if (json_is_number(b)) {
            snprintf(battery, sizeof(battery), "%.0f%%", json_number_value(b));
        } else {
            snprintf(battery, sizeof(battery), "-");
        }
        const json_t *rssi = json_object_get(h, "rssi"), *snr = json_object_get(h, "snr");
        if (json_is_number(rssi) && json_is_number(snr)) {
            snprintf(radio, sizeof(radio), "%.0f / %.1f", json_number_value(rssi),
                     json_number_value(snr));
        } else if (json_is_number(rssi)) {
            snprintf(radio, sizeof(radio), "%.0f", json_number_value(rssi));
        } else {
            snprintf(radio, sizeof(radio), "-");
        }
        scalar_text(json_object_get(h, "errors"), errors, sizeof(errors));
        scalar_text(json_object_get(h, "fault"), fault, sizeof(fault));
        const char *state = json_is_true(online)    ? "online"
                            : json_is_false(online) ? "OFFLINE"
                                                    : "?";
        int rank = sensor_rank(h);
        offline += rank == 0;
        faulty += rank == 1 || (rank == 0 && strcmp(fault, "-") != 0);
        const char *row[] = {str_field(h, "sensor"), state, seen, battery, radio, errors, fault};
        if (gw_ctl_table_add(t, row) < 0) {
            gw_ctl_table_free(t);
            return -1;
        }
    }
    gw_ctl_table_print(t, out);
    gw_ctl_table_free(t);
    fprintf(out, "%zu sensor%s: %zu online, %d offline, %d with a fault\n", n, n == 1 ? "" : "s",
            n - (size_t)offline, offline, faulty);
    return 0;
}

int gw_ctl_print_alarms(const json_t *alarms, int64_t now_ms, FILE *out)
{
    size_t n = json_array_size(alarms);
    if (n == 0) {
        fprintf(out, "no active alarms\n");
        return 0;
    }
    static const char *const headers[] = {"KEY",   "CLASS", "STATE",   "SINCE",
                                          "LEVEL", "VALUE", "ACKED BY"};
    static const enum gw_ctl_align aligns[] = {GW_CTL_LEFT,  GW_CTL_LEFT,  GW_CTL_LEFT, GW_CTL_LEFT,
                                               GW_CTL_RIGHT, GW_CTL_RIGHT, GW_CTL_LEFT};
    struct gw_ctl_table *t = gw_ctl_table_new(7, headers, aligns);
    if (!t) {
        return -1;
    }
    int unacked = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(alarms, i);
        char cls[64], state[128], since[48], level[32], value[256], by[256];
        snprintf(cls, sizeof(cls), "%s%s", str_field(a, "class"),
                 json_is_true(json_object_get(a, "test")) ? " (test)" : "");
        const char *st = str_field(a, "state");
        snprintf(state, sizeof(state), "%s%s%s", st,
                 json_is_true(json_object_get(a, "needs_reset")) ? " (reset needed)" : "",
                 json_is_true(json_object_get(a, "chattering")) ? " (chattering)" : "");
        unacked += strcmp(st, "unacked") == 0 || strcmp(st, "rtn_unacked") == 0;
        age_text(a, "raised_at", now_ms, "-", since, sizeof(since));
        const json_t *lv = json_object_get(a, "level");
        if (json_is_integer(lv) && json_integer_value(lv) > 0) {
            scalar_text(lv, level, sizeof(level));
        } else {
            snprintf(level, sizeof(level), "-");
        }
        scalar_text(json_object_get(a, "value"), value, sizeof(value));
        scalar_text(json_object_get(a, "acked_by"), by, sizeof(by));
        const char *row[] = {str_field(a, "key"), cls, state, since, level, value, by};
        if (gw_ctl_table_add(t, row) < 0) {
            gw_ctl_table_free(t);
            return -1;
        }
    }
    gw_ctl_table_print(t, out);
    gw_ctl_table_free(t);
    fprintf(out, "%zu alarm%s, %d unacknowledged\n", n, n == 1 ? "" : "s", unacked);
    return 0;
}

/* ---------------------------------------------------------------- status */

static int bump(json_t *counts, const char *name)
{
    json_int_t v = json_integer_value(json_object_get(counts, name));
    return json_object_set_new(counts, name, json_integer(v + 1));
}

json_t *gw_ctl_status_json(const json_t *status, const json_t *health, const json_t *alarms)
{
    int online = 0, offline = 0, faulty = 0, unacked = 0;
    json_t *by_class = json_object(), *by_state = json_object();
    int rc = by_class && by_state ? 0 : -1;
    for (size_t i = 0; i < json_array_size(health); i++) {
        const json_t *h = json_array_get(health, i);
        int rank = sensor_rank(h);
        online += rank != 0;
        offline += rank == 0;
        const char *fault = json_string_value(json_object_get(h, "fault"));
        faulty += fault && *fault;
    }
    for (size_t i = 0; rc == 0 && i < json_array_size(alarms); i++) {
        const json_t *a = json_array_get(alarms, i);
        const char *st = str_field(a, "state");
        unacked += strcmp(st, "unacked") == 0 || strcmp(st, "rtn_unacked") == 0;
        rc |= bump(by_class, *str_field(a, "class") ? str_field(a, "class") : "unknown");
        rc |= bump(by_state, *st ? st : "unknown");
    }
    json_t *root = NULL;
    if (rc == 0) {
        root = json_pack("{sO s{sisisisi} s{sisiso so}}", "status",
                         status ? (json_t *)status : json_null(), "sensors", "total",
                         online + offline, "online", online, "offline", offline, "faulty", faulty,
                         "alarms", "total", (int)json_array_size(alarms), "unacked", unacked,
                         "by_class", by_class, "by_state", by_state);
        by_class = by_state = NULL; /* "o" took them, even on failure */
    }
    json_decref(by_class);
    json_decref(by_state);
    return root;
}

int gw_ctl_status_exit_code(const json_t *summary)
{
    const json_t *status = json_object_get(summary, "status");
    return json_is_true(json_object_get(status, "online")) ? GW_CTL_EXIT_OK : GW_CTL_EXIT_NO_ANSWER;
}

static void print_field(FILE *out, const char *name, const char *text)
{
    char buf[1024];
    struct line l = {buf, sizeof(buf), 0, false};
    buf[0] = '\0';
    line_put_safe(&l, text);
    fprintf(out, "%-9s %s\n", name, buf);
}

void gw_ctl_print_status(const json_t *summary, int64_t now_ms, FILE *out)
{
    const json_t *st = json_object_get(summary, "status");
    char buf[1024];
    struct line l = {buf, sizeof(buf), 0, false};
    buf[0] = '\0';
    if (!json_is_object(st)) {
        line_printf(&l, "no status published: has it ever connected to this hub?");
    } else if (!json_is_true(json_object_get(st, "online"))) {
        line_printf(&l, "OFFLINE (its last will: it stopped or lost the hub connection)");
    } else {
        line_printf(&l, "online");
        const char *version = json_string_value(json_object_get(st, "version"));
        if (version) {
            line_printf(&l, ", version %s", version);
        }
        int64_t started;
        if (gw_parse_rfc3339(json_string_value(json_object_get(st, "started_at")), &started) == 0) {
            char when[32], age[48];
            format_local(started, when, sizeof(when));
            gw_ctl_format_age(now_ms, started, age, sizeof(age));
            line_printf(&l, ", started %s (%s)", when, age);
        }
    }
    print_field(out, "gateway", buf);

    if (json_is_object(st) && json_object_get(st, "outbox")) {
        char outbox[64], dropped[64];
        scalar_text(json_object_get(st, "outbox"), outbox, sizeof(outbox));
        scalar_text(json_object_get(st, "dropped"), dropped, sizeof(dropped));
        line_reset(&l);
        line_printf(&l, "%s records waiting, %s telemetry dropped", outbox,
                    strcmp(dropped, "-") == 0 ? "0" : dropped);
        print_field(out, "outbox", buf);
    }

    const json_t *sensors = json_object_get(summary, "sensors");
    line_reset(&l);
    line_printf(&l,
                "%" JSON_INTEGER_FORMAT ": %" JSON_INTEGER_FORMAT " online, %" JSON_INTEGER_FORMAT
                " offline, %" JSON_INTEGER_FORMAT " with a fault",
                json_integer_value(json_object_get(sensors, "total")),
                json_integer_value(json_object_get(sensors, "online")),
                json_integer_value(json_object_get(sensors, "offline")),
                json_integer_value(json_object_get(sensors, "faulty")));
    print_field(out, "sensors", buf);

    const json_t *alarms = json_object_get(summary, "alarms");
    const json_t *by_class = json_object_get(alarms, "by_class");
    line_reset(&l);
    json_int_t total = json_integer_value(json_object_get(alarms, "total"));
    if (total == 0) {
        line_printf(&l, "none active");
    } else {
        line_printf(&l, "%" JSON_INTEGER_FORMAT " active (", total);
        bool first = true;
        /* Known classes in priority order, then any other. */
        for (int c = 0; c <= NCLASSES; c++) {
            const char *k;
            const json_t *v;
            json_object_foreach((json_t *)by_class, k, v)
            {
                int r = rank_of(k, class_order, NCLASSES);
                if ((c < NCLASSES && r == c) || (c == NCLASSES && r == NCLASSES)) {
                    line_printf(&l, "%s%" JSON_INTEGER_FORMAT " ", first ? "" : ", ",
                                json_integer_value(v));
                    line_put_safe(&l, k);
                    first = false;
                }
            }
        }
        line_printf(&l, "), %" JSON_INTEGER_FORMAT " unacknowledged",
                    json_integer_value(json_object_get(alarms, "unacked")));
    }
    print_field(out, "alarms", buf);

    if (!json_is_object(st)) {
        return;
    }
    const char *store_error = json_string_value(json_object_get(st, "store_error"));
    if (store_error) {
        line_reset(&l);
        line_printf(&l, "ERROR: %s", store_error);
        print_field(out, "store", buf);
    }
    /* Anything the gateway adds later (self-test timings, ...) is shown as it is. */
    static const char *const shown[] = {"online",          "version",     "started_at",
                                        "outbox",          "dropped",     "sensors_online",
                                        "sensors_offline", "store_error", "seq"};
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)st, k, v)
    {
        if (rank_of(k, shown, (int)(sizeof(shown) / sizeof(shown[0]))) <
            (int)(sizeof(shown) / sizeof(shown[0]))) {
            continue;
        }
        char text[768];
        scalar_text(v, text, sizeof(text));
        print_field(out, k, text);
    }
}

/* ---------------------------------------------------------------- tail */

int gw_ctl_format_event(const char *topic_suffix, const char *payload, size_t len, int64_t now_ms,
                        char *out, size_t size)
{
    struct line l = {out, size, 0, false};
    if (size > 0) {
        out[0] = '\0';
    }
    json_t *ev = json_loadb(payload, len, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return -1;
    }
    char when[32], text[512];
    if (strncmp(topic_suffix, "notify/", 7) == 0) {
        format_local(now_ms, when, sizeof(when));
        line_printf(&l, "%s  notify ", when);
        line_put_safe(&l, topic_suffix + 7);
        line_put(&l, "  ", 2);
        line_put_safe(&l, str_field(ev, "key"));
        line_put(&l, "  ", 2);
        line_put_safe(&l, str_field(ev, "class"));
        scalar_text(json_object_get(ev, "level"), text, sizeof(text));
        line_printf(&l, "  level %s: ", text);
        line_put_safe(&l, str_field(ev, "text"));
        json_decref(ev);
        return 0;
    }

    const char *transition = json_string_value(json_object_get(ev, "transition"));
    /* The transition's own time, so a backlog after an outage shows when things happened. */
    const char *time_name = "ts";
    if (!json_is_string(json_object_get(ev, "ts")) && transition) {
        time_name = strcmp(transition, "raise") == 0   ? "raised_at"
                    : strcmp(transition, "clear") == 0 ? "cleared_at"
                    : strcmp(transition, "ack") == 0   ? "acked_at"
                                                       : "ts";
    }
    int64_t t;
    if (gw_parse_rfc3339(json_string_value(json_object_get(ev, time_name)), &t) < 0) {
        t = now_ms;
    }
    format_local(t, when, sizeof(when));
    line_printf(&l, "%s  ", when);
    char tr[64];
    struct line tl = {tr, sizeof(tr), 0, false};
    tr[0] = '\0';
    line_put_safe(&tl, transition ? transition : "?");
    line_printf(&l, "%-14s  ", tr);
    line_put_safe(&l, str_field(ev, "key"));
    const char *fields[] = {str_field(ev, "class"), str_field(ev, "state")};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (*fields[i]) {
            line_put(&l, "  ", 2);
            line_put_safe(&l, fields[i]);
        }
    }
    const json_t *value = json_object_get(ev, "value");
    if (value && !json_is_null(value)) {
        scalar_text(value, text, sizeof(text));
        line_put(&l, "  value=", 8);
        line_put_safe(&l, text);
    }
    const json_t *level = json_object_get(ev, "level");
    if (json_is_integer(level) && json_integer_value(level) > 0) {
        line_printf(&l, "  level=%" JSON_INTEGER_FORMAT, json_integer_value(level));
    }
    const char *by = json_string_value(json_object_get(ev, "by"));
    if (!by && transition && strcmp(transition, "ack") == 0) {
        by = json_string_value(json_object_get(ev, "acked_by"));
    }
    if (by && *by) {
        line_put(&l, "  by ", 5);
        line_put_safe(&l, by);
    }
    const char *note = json_string_value(json_object_get(ev, "note"));
    if (note && *note) {
        line_put(&l, "  \"", 3);
        line_put_safe(&l, note);
        line_put(&l, "\"", 1);
    }
    json_decref(ev);
    return 0;
}

/* ---------------------------------------------------------------- hazards */

bool gw_ctl_hazard_overdue(const json_t *hazard, int64_t now_ms)
{
    if (strcmp(str_field(hazard, "status"), "closed") == 0) {
        return false;
    }
    if (json_is_true(json_object_get(hazard, "overdue"))) {
        return true;
    }
    int64_t deadline;
    return gw_parse_rfc3339(str_field(hazard, "deadline"), &deadline) == 0 && now_ms >= deadline;
}

struct hazard_item {
    json_t *hazard;
    bool overdue, closed;
    int64_t deadline; /* INT64_MAX when none */
};

static int cmp_hazards(const void *a, const void *b)
{
    const struct hazard_item *x = a, *y = b;
    if (x->overdue != y->overdue) {
        return x->overdue ? -1 : 1;
    }
    if (x->closed != y->closed) {
        return x->closed ? 1 : -1;
    }
    if (x->deadline != y->deadline) {
        return x->deadline < y->deadline ? -1 : 1;
    }
    return strcmp(str_field(x->hazard, "id"), str_field(y->hazard, "id"));
}

json_t *gw_ctl_hazard_list(const json_t *map, bool all, int64_t now_ms)
{
    size_t cap = json_object_size(map), n = 0;
    struct hazard_item *items = calloc(cap ? cap : 1, sizeof(*items));
    json_t *list = json_array();
    if (!items || !list) {
        free(items);
        json_decref(list);
        return NULL;
    }
    const char *topic;
    json_t *h;
    json_object_foreach((json_t *)map, topic, h)
    {
        size_t tl = strlen(topic);
        /* P/hazards/log carries history entries, not hazards */
        if ((tl >= 4 && strcmp(topic + tl - 4, "/log") == 0) || !*str_field(h, "id")) {
            continue;
        }
        bool closed = strcmp(str_field(h, "status"), "closed") == 0;
        if (closed && !all) {
            continue;
        }
        items[n].hazard = h;
        items[n].closed = closed;
        items[n].overdue = gw_ctl_hazard_overdue(h, now_ms);
        items[n].deadline = time_field(h, "deadline");
        n++;
    }
    qsort(items, n, sizeof(*items), cmp_hazards);
    for (size_t i = 0; i < n; i++) {
        if (json_array_append(list, items[i].hazard) < 0) {
            json_decref(list);
            list = NULL;
            break;
        }
    }
    free(items);
    return list;
}

/* "2026-12-05 23:59" in local time. */
static void format_local_minutes(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%d %H:%M", &tm) == 0) {
        snprintf(out, size, "?");
    }
}

#define HAZARD_DESCRIPTION_COLUMNS 40

int gw_ctl_print_hazards(const json_t *list, bool all, int64_t now_ms, FILE *out)
{
    size_t n = json_array_size(list);
    if (n == 0) {
        fprintf(out, all ? "no hazards recorded\n" : "no open hazards\n");
        return 0;
    }
    static const char *const headers[] = {"ID",          "STATUS",   "CATEGORY",   "WHERE",
                                          "RESPONSIBLE", "DEADLINE", "DESCRIPTION"};
    struct gw_ctl_table *t = gw_ctl_table_new(7, headers, NULL);
    if (!t) {
        return -1;
    }
    int open = 0, rectifying = 0, closed = 0, overdue = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *h = json_array_get(list, i);
        const char *st = str_field(h, "status");
        bool late = gw_ctl_hazard_overdue(h, now_ms);
        open += strcmp(st, "open") == 0;
        rectifying += strcmp(st, "rectifying") == 0;
        closed += strcmp(st, "closed") == 0;
        overdue += late;
        char status[64], where[3 * 64 + 8], deadline[96], description[256];
        snprintf(status, sizeof(status), "%s%s", *st ? st : "?", late ? " OVERDUE" : "");
        struct line w = {where, sizeof(where), 0, false};
        where[0] = '\0';
        const char *parts[] = {str_field(h, "building"), str_field(h, "floor"),
                               str_field(h, "zone")};
        for (size_t k = 0; k < 3; k++) {
            if (*parts[k]) {
                if (w.len) {
                    line_put(&w, " / ", 3);
                }
                line_put(&w, parts[k], strlen(parts[k]));
            }
        }
        int64_t dl;
        if (gw_parse_rfc3339(str_field(h, "deadline"), &dl) == 0) {
            char when[32], age[48];
            format_local_minutes(dl, when, sizeof(when));
            gw_ctl_format_age(now_ms, dl, age, sizeof(age));
            snprintf(deadline, sizeof(deadline), "%s (%s)", when, age);
        } else {
            snprintf(deadline, sizeof(deadline), "-");
        }
        gw_ctl_truncate(str_field(h, "description"), HAZARD_DESCRIPTION_COLUMNS, description,
                        sizeof(description));
        const char *responsible = str_field(h, "responsible");
        const char *category = str_field(h, "category");
        const char *row[] = {str_field(h, "id"),
                             status,
                             *category ? category : NULL,
                             *where ? where : NULL,
                             *responsible ? responsible : NULL,
                             deadline,
                             description};
        if (gw_ctl_table_add(t, row) < 0) {
            gw_ctl_table_free(t);
            return -1;
        }
    }
    gw_ctl_table_print(t, out);
    gw_ctl_table_free(t);
    if (all) {
        fprintf(out, "%zu hazard%s: %d open, %d rectifying, %d closed; %d overdue\n", n,
                n == 1 ? "" : "s", open, rectifying, closed, overdue);
    } else {
        fprintf(out, "%zu hazard%s not closed: %d open, %d rectifying; %d overdue\n", n,
                n == 1 ? "" : "s", open, rectifying, overdue);
    }
    return 0;
}

/* ---------------------------------------------------------------- verify */

int gw_ctl_verify_rows(const struct gw_ctl_hazard_row *rows, int n, char *out, size_t size)
{
    if (n <= 0) {
        snprintf(out, size, "hazard register: 0 entries, chain intact (empty)");
        return 0;
    }
    struct gw_hazard_entry *entries = calloc((size_t)n, sizeof(*entries));
    if (!entries) {
        return -1;
    }
    char why[512];
    int rc = 1;
    for (int i = 0; i < n; i++) {
        const struct gw_ctl_hazard_row *r = &rows[i];
        struct gw_hazard_entry *e = &entries[i];
        if (gw_hazard_entry_from_json(r->entry, e, why, sizeof(why)) != 0) {
            snprintf(out, size, "entry n=%" PRId64 " (%s): its JSON is not a valid entry: %s", r->n,
                     r->hazard ? r->hazard : "no hazard", why);
            goto out;
        }
        if ((int64_t)e->seq != r->n) {
            snprintf(out, size,
                     "entry n=%" PRId64 " (%s): the row's n disagrees with its JSON's seq %" PRIu64,
                     r->n, e->hazard.id, e->seq);
            goto out;
        }
        if (!r->hazard || strcmp(r->hazard, e->hazard.id) != 0) {
            snprintf(out, size,
                     "entry n=%" PRId64 " (%s): the row's hazard column \"%s\" disagrees with its "
                     "JSON",
                     r->n, e->hazard.id, r->hazard ? r->hazard : "NULL");
            goto out;
        }
        if (r->at_ms != e->at_ms) {
            snprintf(out, size,
                     "entry n=%" PRId64 " (%s): the row's at column %" PRId64
                     " disagrees with its JSON's at %" PRId64,
                     r->n, e->hazard.id, r->at_ms, e->at_ms);
            goto out;
        }
    }
    int bad = gw_hazard_chain_verify(entries, n, why, sizeof(why));
    if (bad >= 0) {
        char when[32];
        format_local(entries[bad].at_ms, when, sizeof(when));
        snprintf(out, size, "entry n=%" PRId64 " (%s, %s by %s at %s): %s", rows[bad].n,
                 entries[bad].hazard.id, entries[bad].action ? entries[bad].action : "?",
                 *entries[bad].by ? entries[bad].by : "the gateway", when, why);
        goto out;
    }
    snprintf(out, size, "hazard register: %d entr%s, chain intact, head %s", n,
             n == 1 ? "y" : "ies", entries[n - 1].hash);
    rc = 0;
out:
    free(entries);
    return rc;
}
