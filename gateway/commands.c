#include "commands.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    enum gw_command_type type;
    bool by_sensor;
} commands[] = {
    {"ack", GW_COMMAND_ACK, false},
    {"shelve", GW_COMMAND_SHELVE, false},
    {"unshelve", GW_COMMAND_UNSHELVE, false},
    {"reset", GW_COMMAND_RESET, false},
    {"out_of_service", GW_COMMAND_OUT_OF_SERVICE, true},
    {"in_service", GW_COMMAND_IN_SERVICE, true},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Printable text only: a name or note ends up in logs, messages and pages. */
static bool printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

/* A string member into dst: 1 copied, 0 absent, -1 wrong (message in err). */
static int get_text(json_t *root, const char *member, char *dst, size_t size, char *err,
                    size_t errlen)
{
    json_t *v = json_object_get(root, member);
    if (!v) {
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s) {
        fail(err, errlen, "\"%s\" must be a string", member);
        return -1;
    }
    size_t n = json_string_length(v);
    if (n >= size) {
        fail(err, errlen, "\"%s\" is too long (%zu bytes, at most %zu)", member, n, size - 1);
        return -1;
    }
    if (strlen(s) != n || !printable(s)) {
        fail(err, errlen, "\"%s\" has control characters", member);
        return -1;
    }
    memcpy(dst, s, n + 1);
    return 1;
}

/* For messages about what the sender wrote: ASCII only, short (a cut UTF-8 sequence or a
 * control character would make the result itself invalid). */
static const char *ascii(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' ? (char)ch : '?';
    }
    buf[i] = '\0';
    return buf;
}

int gw_command_parse(const char *name, const void *payload, size_t len, struct gw_command *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->name = "unknown";
    size_t c = 0;
    while (c < NCOMMANDS && strcmp(commands[c].name, name) != 0) {
        c++;
    }
    char shown[41];
    if (c == NCOMMANDS) {
        /* Still echo its id, so the sender can match the refusal to its request. */
        json_t *root = len <= GW_COMMAND_MAX_BYTES ? json_loadb(payload, len, 0, NULL) : NULL;
        char ignored[GW_ERR_MAX];
        if (json_is_object(root)) {
            get_text(root, "id", out->id, sizeof(out->id), ignored, sizeof(ignored));
        }
        json_decref(root);
        return fail(err, errlen,
                    "unknown command \"%s\" (ack, shelve, unshelve, reset, out_of_service, "
                    "in_service)",
                    ascii(name, shown, sizeof(shown)));
    }
    out->name = commands[c].name;
    out->type = commands[c].type;
    if (len > GW_COMMAND_MAX_BYTES) {
        return fail(err, errlen, "command too large (%zu bytes, at most %d)", len,
                    GW_COMMAND_MAX_BYTES);
    }
    if (len == 0) {
        return fail(err, errlen, "empty command: a JSON object is expected");
    }
    json_error_t jerr;
    json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char text[JSON_ERROR_TEXT_LENGTH];
        return fail(err, errlen, "bad JSON: %s (at byte %d)", ascii(jerr.text, text, sizeof(text)),
                    jerr.position);
    }
    int rc = -EINVAL;
    if (!json_is_object(root)) {
        fail(err, errlen, "the command must be a JSON object");
        goto done;
    }
    /* id and the target first, so that even a refused command's result names them. */
    if (get_text(root, "id", out->id, sizeof(out->id), err, errlen) < 0) {
        goto done;
    }
    bool by_sensor = commands[c].by_sensor;
    const char *target = by_sensor ? "sensor" : "key";
    int got = by_sensor ? get_text(root, "sensor", out->sensor, sizeof(out->sensor), err, errlen)
                        : get_text(root, "key", out->key, sizeof(out->key), err, errlen);
    if (got < 0) {
        goto done;
    }
    const char *member;
    json_t *value;
    json_object_foreach(root, member, value)
    {
        static const char *const allowed[] = {"id", "key", "sensor", "by", "note", "minutes"};
        bool known = false;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
            known = known || strcmp(member, allowed[i]) == 0;
        }
        bool misplaced = (strcmp(member, "key") == 0 && by_sensor) ||
                         (strcmp(member, "sensor") == 0 && !by_sensor) ||
                         (strcmp(member, "minutes") == 0 && out->type != GW_COMMAND_SHELVE);
        if (!known || misplaced) {
            fail(err, errlen, "unknown key \"%s\" for %s", ascii(member, shown, sizeof(shown)),
                 out->name);
            goto done;
        }
    }
    if (got == 0) {
        fail(err, errlen, "missing \"%s\"", target);
        goto done;
    }
    if ((by_sensor ? out->sensor : out->key)[0] == '\0') {
        fail(err, errlen, "\"%s\" is empty", target);
        goto done;
    }
    got = get_text(root, "by", out->by, sizeof(out->by), err, errlen);
    if (got < 0) {
        goto done;
    }
    if (got == 0 || out->by[0] == '\0') {
        fail(err, errlen, "missing \"by\": who does it (a name people recognise)");
        goto done;
    }
    if (get_text(root, "note", out->note, sizeof(out->note), err, errlen) < 0) {
        goto done;
    }
    if (out->type == GW_COMMAND_SHELVE) {
        json_t *m = json_object_get(root, "minutes");
        if (!m) {
            fail(err, errlen, "missing \"minutes\" (1..%d)", GW_SHELVE_MAX_MINUTES);
            goto done;
        }
        if (!json_is_integer(m) || json_integer_value(m) < 1 ||
            json_integer_value(m) > GW_SHELVE_MAX_MINUTES) {
            fail(err, errlen, "\"minutes\" must be a whole number 1..%d", GW_SHELVE_MAX_MINUTES);
            goto done;
        }
        out->minutes = (int)json_integer_value(m);
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

char *gw_command_result(uint64_t seq, const struct gw_command *cmd, bool ok, const char *error,
                        const char *state)
{
    json_t *root = json_pack("{sI sb ss}", "seq", (json_int_t)seq, "ok", ok, "cmd", cmd->name);
    if (!root) {
        return NULL;
    }
    if (cmd->key[0]) {
        json_object_set_new(root, "key", json_string(cmd->key));
    }
    if (cmd->sensor[0]) {
        json_object_set_new(root, "sensor", json_string(cmd->sensor));
    }
    if (cmd->id[0]) {
        json_object_set_new(root, "id", json_string(cmd->id));
    }
    if (error) {
        json_object_set_new(root, "error", json_string(error));
    }
    if (state) {
        json_object_set_new(root, "state", json_string(state));
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}
