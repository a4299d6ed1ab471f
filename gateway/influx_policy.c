#include "influx_policy.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum gw_influx_class gw_influx_classify(bool transport_ok, long status)
{
    if (!transport_ok) {
        return GW_INFLUX_RETRY;
    }
    if (status >= 200 && status <= 299) {
        return GW_INFLUX_OK;
    }
    if (status == 401 || status == 403) {
        return GW_INFLUX_AUTH;
    }
    if (status == 404) {
        return GW_INFLUX_NOT_FOUND;
    }
    /* 408 and 429 say "not now", not "never". */
    if (status == 408 || status == 429) {
        return GW_INFLUX_RETRY;
    }
    if (status >= 400 && status <= 499) {
        return GW_INFLUX_REJECT;
    }
    /* 5xx, and 1xx/3xx (we follow no redirects): nothing is known delivered. */
    return GW_INFLUX_RETRY;
}

const char *gw_influx_class_name(enum gw_influx_class c)
{
    switch (c) {
    case GW_INFLUX_OK:
        return "ok";
    case GW_INFLUX_RETRY:
        return "retry";
    case GW_INFLUX_REJECT:
        return "reject";
    case GW_INFLUX_AUTH:
        return "auth";
    case GW_INFLUX_NOT_FOUND:
        return "not_found";
    }
    return "?";
}

/* ---- Retry-After ---- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

/* Reads exactly n digits. */
static bool digits(const char **pp, int n, int *out)
{
    const char *p = *pp;
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    *pp = p + n;
    return true;
}

static bool lit(const char **pp, const char *s)
{
    size_t n = strlen(s);
    if (strncmp(*pp, s, n) != 0) {
        return false;
    }
    *pp += n;
    return true;
}

static int month_index(const char **pp)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++) {
        if (strncmp(*pp, months[i], 3) == 0) {
            *pp += 3;
            return i;
        }
    }
    return -1;
}

static bool skip_day_name(const char **pp, bool long_form)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const long_days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                            "Thursday", "Friday", "Saturday"};
    for (int i = 0; i < 7; i++) {
        if (lit(pp, long_form ? long_days[i] : days[i])) {
            return true;
        }
    }
    return false;
}

static bool hms(const char **pp, struct tm *tm)
{
    return digits(pp, 2, &tm->tm_hour) && lit(pp, ":") && digits(pp, 2, &tm->tm_min) &&
           lit(pp, ":") && digits(pp, 2, &tm->tm_sec) && tm->tm_hour < 24 && tm->tm_min < 60 &&
           tm->tm_sec <= 60;
}

/* RFC 9110 5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms. */
static bool parse_http_date(const char *p, struct tm *tm)
{
    memset(tm, 0, sizeof(*tm));
    const char *q = p;
    int year;
    if (skip_day_name(&q, false) && lit(&q, ", ")) {
        /* Sun, 06 Nov 1994 08:49:37 GMT */
        if (!digits(&q, 2, &tm->tm_mday) || !lit(&q, " ") || (tm->tm_mon = month_index(&q)) < 0 ||
            !lit(&q, " ") || !digits(&q, 4, &year) || !lit(&q, " ") || !hms(&q, tm) ||
            !lit(&q, " GMT")) {
            return false;
        }
    } else if ((q = p, skip_day_name(&q, true)) && lit(&q, ", ")) {
        /* Sunday, 06-Nov-94 08:49:37 GMT; two-digit years: RFC 9110 says within 50 years. */
        if (!digits(&q, 2, &tm->tm_mday) || !lit(&q, "-") || (tm->tm_mon = month_index(&q)) < 0 ||
            !lit(&q, "-") || !digits(&q, 2, &year) || !lit(&q, " ") || !hms(&q, tm) ||
            !lit(&q, " GMT")) {
            return false;
        }
        year += year < 70 ? 2000 : 1900;
    } else if ((q = p, skip_day_name(&q, false)) && lit(&q, " ")) {
        /* Sun Nov  6 08:49:37 1994 */
        if ((tm->tm_mon = month_index(&q)) < 0 || !lit(&q, " ")) {
            return false;
        }
        if (*q == ' ') {
            q++;
            if (!digits(&q, 1, &tm->tm_mday)) {
                return false;
            }
        } else if (!digits(&q, 2, &tm->tm_mday)) {
            return false;
        }
        if (!lit(&q, " ") || !hms(&q, tm) || !lit(&q, " ") || !digits(&q, 4, &year)) {
            return false;
        }
    } else {
        return false;
    }
    if (*skip_ws(q) != '\0' || tm->tm_mday < 1 || tm->tm_mday > 31) {
        return false;
    }
    tm->tm_year = year - 1900;
    return true;
}

int gw_influx_retry_after_ms(const char *value, int64_t now_ms)
{
    if (!value) {
        return -1;
    }
    const char *p = skip_ws(value);
    if (*p >= '0' && *p <= '9') {
        int64_t s = 0;
        while (*p >= '0' && *p <= '9') {
            if (s < GW_INFLUX_RETRY_AFTER_MAX_MS) { /* stop growing: no overflow */
                s = s * 10 + (*p - '0');
            }
            p++;
        }
        if (*skip_ws(p) != '\0') {
            return -1;
        }
        int64_t ms = s * 1000;
        return ms > GW_INFLUX_RETRY_AFTER_MAX_MS ? GW_INFLUX_RETRY_AFTER_MAX_MS : (int)ms;
    }
    struct tm tm;
    if (!parse_http_date(p, &tm)) {
        return -1;
    }
    int64_t at_ms = (int64_t)timegm(&tm) * 1000;
    int64_t wait = at_ms - now_ms;
    if (wait < 0) {
        return 0;
    }
    return wait > GW_INFLUX_RETRY_AFTER_MAX_MS ? GW_INFLUX_RETRY_AFTER_MAX_MS : (int)wait;
}

/* ---- backoff ---- */

int gw_retry_backoff_ms(int attempt, uint32_t rnd)
{
    int64_t base = GW_INFLUX_BACKOFF_MIN_MS;
    for (int i = 0; i < attempt && base < GW_INFLUX_BACKOFF_MAX_MS; i++) {
        base *= 2;
    }
    if (base > GW_INFLUX_BACKOFF_MAX_MS) {
        base = GW_INFLUX_BACKOFF_MAX_MS;
    }
    /* base * [0.8, 1.2]: rnd picks a point of the 40 % span. */
    int64_t span = base * 2 / 5;
    int64_t jitter = (int64_t)(((uint64_t)rnd * (uint64_t)(span + 1)) >> 32);
    return (int)(base - base / 5 + jitter);
}

/* ---- URL ---- */

struct out {
    char *p;
    size_t size, len;
    bool over;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->over || o->len + n >= o->size) {
        o->over = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_encoded(struct out *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        bool unreserved = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                          (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' ||
                          *c == '~';
        if (unreserved) {
            put(o, (const char *)c, 1);
        } else {
            char e[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            put(o, e, 3);
        }
    }
}

static bool empty(const char *s)
{
    return !s || !*s;
}

int gw_influx_write_url(char *out, size_t size, const struct gw_influx_cfg *cfg)
{
    if (empty(cfg->url)) {
        return -EINVAL;
    }
    if (size == 0) {
        return -ENAMETOOLONG;
    }
    struct out o = {.p = out, .size = size};
    out[0] = '\0';
    size_t ulen = strlen(cfg->url);
    if (cfg->url[ulen - 1] == '/') {
        ulen--;
    }
    put(&o, cfg->url, ulen);
    if (cfg->version == GW_INFLUX_V1) {
        if (empty(cfg->database)) {
            return -EINVAL;
        }
        puts_(&o, "/write?db=");
        put_encoded(&o, cfg->database);
        if (!empty(cfg->retention_policy)) {
            puts_(&o, "&rp=");
            put_encoded(&o, cfg->retention_policy);
        }
    } else {
        if (empty(cfg->org) || empty(cfg->bucket)) {
            return -EINVAL;
        }
        puts_(&o, "/api/v2/write?org=");
        put_encoded(&o, cfg->org);
        puts_(&o, "&bucket=");
        put_encoded(&o, cfg->bucket);
    }
    puts_(&o, "&precision=ns");
    if (o.over) {
        return -ENAMETOOLONG;
    }
    return (int)o.len;
}

/* ---- error text ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool hex4(const char *p, const char *end, unsigned *v)
{
    if (end - p < 4) {
        return false;
    }
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) {
            return false;
        }
        *v = *v << 4 | (unsigned)h;
    }
    return true;
}

static void put_utf8(struct out *o, unsigned cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    put(o, b, n);
}

/* Unescapes the JSON string starting after its opening quote; false if unterminated/bad. */
static bool json_string(const char *p, const char *end, struct out *o)
{
    while (p < end) {
        char c = *p++;
        if (c == '"') {
            return true;
        }
        if (c != '\\') {
            put(o, &c, 1);
            continue;
        }
        if (p >= end) {
            return false;
        }
        c = *p++;
        unsigned cp;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            put(o, &c, 1);
            break;
        case 'b':
            put(o, "\b", 1);
            break;
        case 'f':
            put(o, "\f", 1);
            break;
        case 'n':
            put(o, "\n", 1);
            break;
        case 'r':
            put(o, "\r", 1);
            break;
        case 't':
            put(o, "\t", 1);
            break;
        case 'u':
            if (!hex4(p, end, &cp)) {
                return false;
            }
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, end, &lo) &&
                    lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            put_utf8(o, cp);
            break;
        default:
            return false;
        }
    }
    return false;
}

/* The value of top-level-looking key `"key": "..."` in body; false when absent. */
static bool json_field(const char *body, size_t len, const char *key, struct out *o)
{
    const char *end = body + len;
    size_t klen = strlen(key);
    for (const char *p = body; p + klen + 2 <= end; p++) {
        if (*p != '"' || memcmp(p + 1, key, klen) != 0 || p[klen + 1] != '"') {
            continue;
        }
        const char *q = p + klen + 2;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) {
            q++;
        }
        if (q >= end || *q != ':') {
            continue;
        }
        q++;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) {
            q++;
        }
        if (q >= end || *q != '"') {
            continue;
        }
        size_t mark = o->len;
        if (json_string(q + 1, end, o)) {
            return true;
        }
        if (o->over) {
            return true; /* truncated but found */
        }
        o->len = mark;
        o->p[mark] = '\0';
    }
    return false;
}

size_t gw_influx_error_text(const char *body, size_t len, char *out, size_t size)
{
    if (size == 0) {
        return 0;
    }
    out[0] = '\0';
    struct out o = {.p = out, .size = size};
    const char *p = body;
    while (len > 0 && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
        len--;
    }
    if (len > 0 && *p == '{' &&
        (json_field(p, len, "error", &o) || json_field(p, len, "message", &o))) {
        return o.len; /* truncated at a whole character when it did not fit */
    }
    while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == ' ')) {
        len--;
    }
    size_t n = len < size - 1 ? len : size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

bool gw_influx_partial_write(const char *text)
{
    return strstr(text, "partial write") != NULL;
}

int gw_influx_dropped(const char *text)
{
    const char *last = NULL;
    for (const char *p = strstr(text, "dropped="); p; p = strstr(p + 1, "dropped=")) {
        last = p;
    }
    if (!last || last[8] < '0' || last[8] > '9') {
        return -1;
    }
    long n = 0;
    for (const char *p = last + 8; *p >= '0' && *p <= '9'; p++) {
        if (n < 1000000000L) {
            n = n * 10 + (*p - '0');
        }
    }
    return n > 1000000000L ? 1000000000 : (int)n;
}

/* ---- naming bad lines ---- */

struct line {
    const char *p;
    size_t len;
};

/* Line k of batch (0-based) by scanning; lines[] is filled once by the caller. */
static int split_lines(const char *batch, size_t len, struct line *lines, int max)
{
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len && n < max; i++) {
        if (i == len || batch[i] == '\n') {
            if (i > start || i < len) {
                lines[n].p = batch + start;
                lines[n].len = i - start;
                n++;
            }
            start = i + 1;
        }
    }
    return n;
}

/* "unable to parse 'LINE': ..." -> the first unmarked line whose text is LINE. */
static int mark_quoted(const char *text, const struct line *lines, bool *bad, int nlines)
{
    static const char marker[] = "unable to parse '";
    int marked = 0;
    for (const char *p = strstr(text, marker); p; p = strstr(p + 1, marker)) {
        const char *q = p + sizeof(marker) - 1;
        for (int k = 0; k < nlines; k++) {
            if (bad[k]) {
                continue;
            }
            if (strncmp(q, lines[k].p, lines[k].len) == 0 && q[lines[k].len] == '\'' &&
                q[lines[k].len + 1] == ':') {
                bad[k] = true;
                marked++;
                break;
            }
        }
    }
    return marked;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "error parsing line N (1-based)" (3.x) and "line N:" (1-based). */
static int mark_numbered(const char *text, bool *bad, int nlines)
{
    int marked = 0;
    for (const char *p = strstr(text, "line "); p; p = strstr(p + 1, "line ")) {
        if (p > text && ((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z'))) {
            continue; /* "online 3:" and the like */
        }
        const char *q = p + 5;
        if (!is_digit(*q)) {
            continue;
        }
        long n = 0;
        while (is_digit(*q)) {
            if (n < 100000000) {
                n = n * 10 + (*q - '0');
            }
            q++;
        }
        if (*q != ':' && strncmp(q, " (1-based)", 10) != 0) {
            continue;
        }
        if (n >= 1 && n <= nlines && !bad[n - 1]) {
            bad[n - 1] = true;
            marked++;
        }
    }
    return marked;
}

enum field_type { FT_FLOAT, FT_INTEGER, FT_UNSIGNED, FT_STRING, FT_BOOLEAN, FT_NONE };

static enum field_type type_named(const char *s, size_t n)
{
    static const struct {
        const char *name;
        enum field_type t;
    } names[] = {{"float", FT_FLOAT},
                 {"integer", FT_INTEGER},
                 {"unsigned", FT_UNSIGNED},
                 {"string", FT_STRING},
                 {"boolean", FT_BOOLEAN}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0) {
            return names[i].t;
        }
    }
    return FT_NONE;
}

/* Compares the escaped text [p, end) with the plain name. */
static bool escaped_equals(const char *p, const char *end, const char *name, size_t nlen)
{
    size_t i = 0;
    while (p < end) {
        char c = *p;
        if (c == '\\' && p + 1 < end) {
            c = p[1];
            p++;
        }
        if (i >= nlen || name[i] != c) {
            return false;
        }
        i++;
        p++;
    }
    return i == nlen;
}

/* End of a key/measurement token: the first unescaped char of `stops`. */
static const char *token_end(const char *p, const char *end, const char *stops)
{
    while (p < end) {
        if (*p == '\\' && p + 1 < end) {
            p += 2;
            continue;
        }
        if (strchr(stops, *p)) {
            return p;
        }
        p++;
    }
    return end;
}

static enum field_type value_type(const char *v, const char *end)
{
    size_t n = (size_t)(end - v);
    if (n == 0) {
        return FT_NONE;
    }
    if (*v == '"') {
        return FT_STRING;
    }
    static const char *const bools[] = {"t", "T", "true",  "True",  "TRUE",
                                        "f", "F", "false", "False", "FALSE"};
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        if (strlen(bools[i]) == n && memcmp(bools[i], v, n) == 0) {
            return FT_BOOLEAN;
        }
    }
    if (end[-1] == 'i') {
        return FT_INTEGER;
    }
    if (end[-1] == 'u') {
        return FT_UNSIGNED;
    }
    return FT_FLOAT;
}

/* The type of field `field` on a line of measurement `meas`; FT_NONE when not such a line. */
static enum field_type line_field_type(const struct line *l, const char *meas, size_t mlen,
                                       const char *field, size_t flen)
{
    const char *p = l->p, *end = l->p + l->len;
    const char *m_end = token_end(p, end, ", ");
    if (!escaped_equals(p, m_end, meas, mlen)) {
        return FT_NONE;
    }
    p = token_end(m_end, end, " "); /* past the tags */
    if (p >= end) {
        return FT_NONE;
    }
    p++;
    while (p < end) {
        const char *k_end = token_end(p, end, "=");
        if (k_end >= end) {
            return FT_NONE;
        }
        const char *v = k_end + 1, *v_end = v;
        if (v < end && *v == '"') {
            v_end = v + 1;
            while (v_end < end && *v_end != '"') {
                v_end += (*v_end == '\\' && v_end + 1 < end) ? 2 : 1;
            }
            if (v_end < end) {
                v_end++;
            }
        } else {
            while (v_end < end && *v_end != ',' && *v_end != ' ') {
                v_end++;
            }
        }
        if (escaped_equals(p, k_end, field, flen)) {
            return value_type(v, v_end);
        }
        if (v_end >= end || *v_end == ' ') {
            return FT_NONE;
        }
        p = v_end + 1;
    }
    return FT_NONE;
}

/*
 * field type conflict: input field "F" on measurement "M" is type T, already exists as type U
 * -> every line of M whose F is not of type U (the reply names only the first offender's type).
 */
static int mark_conflicts(const char *text, const struct line *lines, bool *bad, int nlines)
{
    static const char m1[] = "field type conflict: input field \"";
    static const char m2[] = "\" on measurement \"";
    static const char m3[] = "\" is type ";
    static const char m4[] = "already exists as type ";
    int marked = 0;
    for (const char *p = strstr(text, m1); p; p = strstr(p + 1, m1)) {
        const char *field = p + sizeof(m1) - 1;
        const char *fe = strstr(field, m2);
        if (!fe) {
            continue;
        }
        const char *meas = fe + sizeof(m2) - 1;
        const char *me = strstr(meas, m3);
        const char *ex = me ? strstr(me, m4) : NULL;
        if (!ex) {
            continue;
        }
        ex += sizeof(m4) - 1;
        size_t tlen = 0;
        while (ex[tlen] >= 'a' && ex[tlen] <= 'z') {
            tlen++;
        }
        enum field_type existing = type_named(ex, tlen);
        if (existing == FT_NONE) {
            continue;
        }
        for (int k = 0; k < nlines; k++) {
            if (bad[k]) {
                continue;
            }
            enum field_type t =
                line_field_type(&lines[k], meas, (size_t)(me - meas), field, (size_t)(fe - field));
            if (t != FT_NONE && t != existing) {
                bad[k] = true;
                marked++;
            }
        }
    }
    return marked;
}

/* Does a line of measurement `meas` carry tag key `key`? */
static bool line_has_tag(const struct line *l, const char *meas, size_t mlen, const char *key,
                         size_t klen)
{
    const char *p = l->p, *end = l->p + l->len;
    const char *m_end = token_end(p, end, ", ");
    if (!escaped_equals(p, m_end, meas, mlen) || m_end >= end || *m_end != ',') {
        return false;
    }
    const char *tags_end = token_end(m_end, end, " ");
    p = m_end + 1;
    while (p < tags_end) {
        const char *k_end = token_end(p, tags_end, "=");
        if (escaped_equals(p, k_end, key, klen)) {
            return true;
        }
        const char *next = token_end(k_end, tags_end, ",");
        if (next >= tags_end) {
            break;
        }
        p = next + 1;
    }
    return false;
}

/*
 * invalid field name: input field "F" on measurement "M" is invalid
 * invalid tag key: input tag "T" on measurement "M" is invalid
 * (1.x refuses keys such as "time") -> every line of M with that field / tag.
 */
static int mark_invalid_keys(const char *text, const struct line *lines, bool *bad, int nlines,
                             bool tag)
{
    const char *m1 = tag ? "invalid tag key: input tag \"" : "invalid field name: input field \"";
    static const char m2[] = "\" on measurement \"";
    static const char m3[] = "\" is invalid";
    int marked = 0;
    size_t m1len = strlen(m1);
    for (const char *p = strstr(text, m1); p; p = strstr(p + 1, m1)) {
        const char *key = p + m1len;
        const char *ke = strstr(key, m2);
        if (!ke) {
            continue;
        }
        const char *meas = ke + sizeof(m2) - 1;
        const char *me = strstr(meas, m3);
        if (!me) {
            continue;
        }
        size_t klen = (size_t)(ke - key), mlen = (size_t)(me - meas);
        for (int k = 0; k < nlines; k++) {
            if (bad[k]) {
                continue;
            }
            bool hit = tag ? line_has_tag(&lines[k], meas, mlen, key, klen)
                           : line_field_type(&lines[k], meas, mlen, key, klen) != FT_NONE;
            if (hit) {
                bad[k] = true;
                marked++;
            }
        }
    }
    return marked;
}

int gw_influx_bad_lines(const char *text, const char *batch, size_t batch_len, bool *bad,
                        int nlines)
{
    if (!text || nlines <= 0) {
        return 0;
    }
    struct line stack_lines[64];
    struct line *lines = stack_lines;
    if (nlines > 64) {
        lines = malloc(sizeof(*lines) * (size_t)nlines);
        if (!lines) {
            return 0;
        }
    }
    int n = split_lines(batch, batch_len, lines, nlines);
    int marked = 0;
    if (strstr(text, "unable to parse '")) {
        marked += mark_quoted(text, lines, bad, n);
    } else {
        /* Numbers only when no line is quoted: a quoted line may itself contain "line 2:". */
        marked += mark_numbered(text, bad, n);
    }
    marked += mark_conflicts(text, lines, bad, n);
    marked += mark_invalid_keys(text, lines, bad, n, false);
    marked += mark_invalid_keys(text, lines, bad, n, true);
    if (lines != stack_lines) {
        free(lines);
    }
    return marked;
}
