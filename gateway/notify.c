#include "notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "curl_loop.h"
#include "influx_policy.h"
#include "log.h"

#define MOD "notify"
#define RESP_MAX 16384        /* a robot's reply is a few dozen bytes; an error page more */
#define ERR_MAX 256           /* what done() gets */
#define EXCERPT_MAX 120       /* of a reply body, in an error text */
#define RETRY_AFTER_CAP 60000 /* a person is waiting: never honour a longer Retry-After */
#define ROBOT_TEXT_MAX 2048   /* WeCom takes at most 2048 bytes of content */
#define SUBJECT_MAX 200       /* bytes of a subject taken from the text */

static const char *const kind_names[] = {"mqtt", "webhook", "email"};

struct job {
    uv_timer_t timer; /* first attempt, backoff, deferred mqtt; job freed in its close cb */
    struct gw_notifier *n;
    struct job *prev, *next;
    enum gw_channel_kind kind;
    enum gw_webhook_format format;
    char *target;
    int timeout_ms;
    int retries;
    char *payload; /* mqtt: our JSON; webhook: the POST body; email: the whole message */
    size_t payload_len;
    size_t read_off; /* email: upload position of this attempt */
    CURL *easy;
    struct curl_slist *list; /* webhook: headers; email: recipients */
    bool running;            /* submitted to gw_curl */
    char *resp;
    size_t resp_len, resp_cap;
    char retry_after[64];
    char curl_err[CURL_ERROR_SIZE];
    char err[ERR_MAX];
    int attempts;
    gw_notify_done_fn done;
    void *ctx;
};

/* The notifier's own copy of the smtp section: a reload may free the config. */
struct smtp {
    char *url;
    char *username;
    char *password;
    char *from;      /* as configured, for the From header */
    char *mail_from; /* the bare address, for MAIL FROM */
    char *ca_file;
    bool insecure;
    const char *error; /* why email cannot be sent; NULL when it can */
};

struct gw_notifier {
    uv_loop_t *loop;
    struct smtp smtp;
    gw_notify_mqtt_fn mqtt_publish;
    void *core;
    struct gw_curl *curl;
    struct job *jobs;
    int njobs; /* not finished */
    int open;  /* job timers not closed yet, plus the curl loop */
    bool closing;
    uint32_t rng;
    uint64_t unique;
    struct gw_notify_counters counters[3];
    void (*closed)(void *ctx);
    void *closed_ctx;
};

/* ---- small helpers ---- */

static uint32_t next_rand(struct gw_notifier *n)
{
    /* xorshift32: jitter only, no secrecy needed */
    uint32_t x = n->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    n->rng = x;
    return x;
}

/* Length of the longest prefix of s[0..len) that does not cut a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len)
{
    size_t k = len;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) {
        k--;
    }
    return k;
}

/* A printable one-line excerpt of a reply body for error texts. */
static void excerpt(const char *body, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < size; i++) {
        unsigned char c = (unsigned char)body[i];
        out[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    n = n < len ? utf8_cut(out, n) : n;
    while (n > 0 && out[n - 1] == ' ') {
        n--;
    }
    out[n] = '\0';
}

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof(tmp)) {
        b->oom = true; /* only short fixed texts go through here */
        return;
    }
    put(b, tmp, (size_t)k);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(struct buf *b, const unsigned char *in, size_t len)
{
    char q[4];
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (i + 2 < len) {
            v |= in[i + 2];
        }
        q[0] = b64chars[(v >> 18) & 63];
        q[1] = b64chars[(v >> 12) & 63];
        q[2] = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
        q[3] = i + 2 < len ? b64chars[v & 63] : '=';
        put(b, q, 4);
    }
}

static bool is_plain_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e) {
            return false;
        }
    }
    /* "=?" in a raw header would be read as the start of an encoded word. */
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] == '=' && s[i + 1] == '?') {
            return false;
        }
    }
    return true;
}

/*
 * RFC 2047 B encoding: encoded words of at most 45 bytes of text each (75
 * characters with the wrapper), never splitting a UTF-8 sequence, folded onto
 * continuation lines.
 */
static void put_encoded_words(struct buf *b, const char *s, size_t len)
{
    size_t off = 0;
    bool first = true;
    while (off < len) {
        size_t take = len - off > 45 ? utf8_cut(s + off, 45) : len - off;
        if (take == 0) {
            take = len - off > 45 ? 45 : len - off; /* not UTF-8 at all: cut anywhere */
        }
        if (!first) {
            puts_(b, "\r\n ");
        }
        puts_(b, "=?UTF-8?B?");
        put_base64(b, (const unsigned char *)s + off, take);
        puts_(b, "?=");
        off += take;
        first = false;
    }
}

/* An address has no spaces, controls, quotes, brackets or commas, and one '@' inside. */
static bool valid_address(const char *a, size_t len)
{
    if (len == 0 || len > 254) {
        return false;
    }
    const char *at = NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= 0x20 || c == 0x7f || strchr("<>\"(),;:\\[]", c)) {
            return false;
        }
        if (c == '@') {
            if (at) {
                return false;
            }
            at = a + i;
        }
    }
    return at && at != a && at != a + len - 1;
}

/* Split "Name <addr>" / "addr" into the display name and the address (pointers into from). */
static bool split_from(const char *from, const char **name, size_t *name_len, const char **addr,
                       size_t *addr_len)
{
    const char *lt = strchr(from, '<');
    if (!lt) {
        size_t len = strlen(from);
        while (len > 0 && (from[len - 1] == ' ' || from[len - 1] == '\t')) {
            len--;
        }
        while (len > 0 && (*from == ' ' || *from == '\t')) {
            from++;
            len--;
        }
        *name = from;
        *name_len = 0;
        *addr = from;
        *addr_len = len;
        return valid_address(from, len);
    }
    const char *gt = strchr(lt, '>');
    if (!gt || gt[1 + strspn(gt + 1, " \t")] != '\0') {
        return false;
    }
    *addr = lt + 1;
    *addr_len = (size_t)(gt - lt - 1);
    const char *s = from;
    const char *e = lt;
    while (s < e && (*s == ' ' || *s == '\t')) {
        s++;
    }
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    if (e - s >= 2 && *s == '"' && e[-1] == '"') {
        s++;
        e--;
    }
    for (const char *p = s; p < e; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
    *name = s;
    *name_len = (size_t)(e - s);
    return valid_address(*addr, *addr_len);
}

bool gw_notify_email_address(const char *from, char *out, size_t size)
{
    const char *name, *addr;
    size_t nl, al;
    if (!from || !split_from(from, &name, &nl, &addr, &al) || al + 1 > size) {
        return false;
    }
    memcpy(out, addr, al);
    out[al] = '\0';
    return true;
}

/* A header text (subject, display name) on one line: controls become spaces. */
static char *one_line(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len > max) {
        len = utf8_cut(s, max);
    }
    char *o = malloc(len + 1);
    if (!o) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        o[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    o[len] = '\0';
    return o;
}

/* "Subject: ..." / "From: ..." value: raw when short plain ASCII, else encoded words. */
static void put_header_text(struct buf *b, const char *name, const char *s, size_t len)
{
    if (is_plain_ascii(s, len) && strlen(name) + 2 + len <= 78) {
        put(b, s, len);
    } else {
        put_encoded_words(b, s, len);
    }
}

static void put_date(struct buf *b, int64_t now_s)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)now_s;
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        gmtime_r(&t, &tm);
        tm.tm_gmtoff = 0;
    }
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    off = off < 0 ? -off : off;
    putf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld\r\n", days[tm.tm_wday % 7],
         tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
         sign, off / 60, off % 60);
}

/* The body in canonical form (CRLF line ends), base64 in lines of 76. */
static void put_body(struct buf *b, const char *body)
{
    struct buf canon = {0};
    size_t len = strlen(body);
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '\r') {
            put(&canon, "\r\n", 2);
            if (i + 1 < len && body[i + 1] == '\n') {
                i++;
            }
        } else if (body[i] == '\n') {
            put(&canon, "\r\n", 2);
        } else {
            put(&canon, body + i, 1);
        }
    }
    if (canon.oom) {
        b->oom = true;
        free(canon.p);
        return;
    }
    for (size_t off = 0; off < canon.len; off += 57) {
        size_t take = canon.len - off < 57 ? canon.len - off : 57; /* 57 bytes -> 76 chars */
        put_base64(b, (const unsigned char *)canon.p + off, take);
        puts_(b, "\r\n");
    }
    free(canon.p);
}

char *gw_notify_email_message(const char *from, const char *to, const char *subject,
                              const char *body, int64_t now_s, uint64_t unique)
{
    const char *name, *addr;
    size_t nl, al;
    if (!from || !to || !split_from(from, &name, &nl, &addr, &al) ||
        !valid_address(to, strlen(to))) {
        return NULL;
    }
    char *subj = one_line(subject ? subject : "", SUBJECT_MAX * 4);
    if (!subj) {
        return NULL;
    }
    const char *domain = memchr(addr, '@', al) + 1;
    int domain_len = (int)(al - (size_t)(domain - addr));
    struct buf b = {0};
    put_date(&b, now_s);
    puts_(&b, "From: ");
    if (nl > 0) {
        if (is_plain_ascii(name, nl)) {
            puts_(&b, "\"");
            for (size_t i = 0; i < nl; i++) {
                if (name[i] == '"' || name[i] == '\\') {
                    puts_(&b, "\\");
                }
                put(&b, name + i, 1);
            }
            puts_(&b, "\" ");
        } else {
            put_encoded_words(&b, name, nl);
            puts_(&b, " ");
        }
        puts_(&b, "<");
        put(&b, addr, al);
        puts_(&b, ">\r\n");
    } else {
        put(&b, addr, al);
        puts_(&b, "\r\n");
    }
    puts_(&b, "To: ");
    puts_(&b, to);
    puts_(&b, "\r\nSubject: ");
    put_header_text(&b, "Subject", subj, strlen(subj));
    putf(&b, "\r\nMessage-ID: <%lld.%016llx@%.*s>\r\n", (long long)now_s,
         (unsigned long long)unique, domain_len, domain);
    puts_(&b, "MIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=UTF-8\r\n"
              "Content-Transfer-Encoding: base64\r\n"
              "\r\n");
    put_body(&b, body ? body : "");
    free(subj);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

char *gw_notify_robot_text_body(const char *text)
{
    if (!text) {
        return NULL;
    }
    size_t len = strlen(text);
    if (len > ROBOT_TEXT_MAX) {
        len = utf8_cut(text, ROBOT_TEXT_MAX);
    }
    json_t *content = json_stringn(text, len);
    if (!content) {
        return NULL; /* not UTF-8 */
    }
    json_t *root = json_pack("{s:s, s:{s:o}}", "msgtype", "text", "text", "content", content);
    if (!root) {
        return NULL;
    }
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

/* ---- jobs ---- */

static void smtp_clear(struct smtp *s);

/* The error text done() gets; a long one is cut (vsnprintf: truncation is intended here). */
static void set_err(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct job *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err, sizeof(j->err), fmt, ap);
    va_end(ap);
}

static void maybe_freed(struct gw_notifier *n)
{
    if (!n->closing || n->open > 0) {
        return;
    }
    void (*closed)(void *) = n->closed;
    void *ctx = n->closed_ctx;
    smtp_clear(&n->smtp);
    free(n);
    if (closed) {
        closed(ctx);
    }
}

static void on_job_closed(uv_handle_t *h)
{
    struct job *j = h->data;
    struct gw_notifier *n = j->n;
    free(j->target);
    free(j->payload);
    free(j->resp);
    free(j);
    n->open--;
    maybe_freed(n);
}

/* The send is over: count it, release its transfer, tell the caller. */
static void finish(struct job *j, bool ok, const char *error)
{
    struct gw_notifier *n = j->n;
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        n->jobs = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    n->njobs--;
    if (ok) {
        n->counters[j->kind].sent++;
    } else {
        n->counters[j->kind].failed++;
        if (error != j->err) {
            set_err(j, "%s", error ? error : "failed");
        }
        if (!n->closing) {
            gw_warn(MOD, "%s send failed target=%s attempts=%d error=\"%s\"", kind_names[j->kind],
                    j->kind == GW_CHANNEL_WEBHOOK ? "(webhook url)" : j->target, j->attempts,
                    j->err);
        }
    }
    if (j->running) {
        gw_curl_cancel(n->curl, j->easy);
        j->running = false;
    }
    if (j->easy) {
        curl_easy_cleanup(j->easy);
        j->easy = NULL;
    }
    curl_slist_free_all(j->list);
    j->list = NULL;
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, on_job_closed);
    /* The job's memory lives until the close callback: j->err stays valid for done. */
    j->done(j->ctx, ok, ok ? NULL : j->err, j->attempts);
}

static void on_transfer(void *ctx, CURL *easy, CURLcode result);

static void on_attempt_timer(uv_timer_t *t)
{
    struct job *j = t->data;
    struct gw_notifier *n = j->n;
    j->attempts++;
    if (j->attempts > 1) {
        n->counters[j->kind].retries++;
    }
    j->resp_len = 0;
    j->read_off = 0;
    j->retry_after[0] = '\0';
    j->curl_err[0] = '\0';
    int rc = gw_curl_submit(n->curl, j->easy, on_transfer, j);
    if (rc < 0) {
        /* Nothing went out: a local fault, not the far side's; give up now. */
        set_err(j, "cannot start the transfer: %s", strerror(-rc));
        finish(j, false, j->err);
        return;
    }
    j->running = true;
}

static void on_mqtt_timer(uv_timer_t *t)
{
    struct job *j = t->data;
    struct gw_notifier *n = j->n;
    if (!n->mqtt_publish) {
        finish(j, false, "no MQTT publisher");
        return;
    }
    j->attempts = 1;
    int rc = n->mqtt_publish(n->core, j->target, j->payload);
    if (rc < 0) {
        set_err(j, "MQTT hand-off failed: %s", strerror(-rc));
        finish(j, false, j->err);
        return;
    }
    finish(j, true, NULL);
}

static void on_config_error_timer(uv_timer_t *t)
{
    struct job *j = t->data;
    finish(j, false, j->err);
}

enum outcome { OUT_OK, OUT_RETRY, OUT_FAIL };

/* Transport failures that retrying will not heal. */
static bool curl_permanent(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_LOGIN_DENIED:
    case CURLE_USE_SSL_FAILED:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_REMOTE_ACCESS_DENIED:
        return true;
    default:
        return false;
    }
}

static void transport_error(struct job *j, CURLcode result)
{
    if (result == CURLE_USE_SSL_FAILED) {
        set_err(j, "the server does not offer STARTTLS; refusing to send in clear");
    } else if (j->curl_err[0]) {
        set_err(j, "%s", j->curl_err); /* curl's own words name the host, port and step */
    } else {
        set_err(j, "%s", curl_easy_strerror(result));
    }
}

/* WeCom -1 "system busy", 45009 "api freq out of limit"; DingTalk 130101 "send too fast". */
static bool robot_errcode_transient(long long code)
{
    return code == -1 || code == 45009 || code == 130101;
}

static enum outcome classify_webhook(struct job *j, CURLcode result, long status)
{
    char body[EXCERPT_MAX + 1];
    excerpt(j->resp ? j->resp : "", j->resp_len, body, sizeof(body));
    if (result != CURLE_OK) {
        transport_error(j, result);
        return curl_permanent(result) ? OUT_FAIL : OUT_RETRY;
    }
    if (status >= 200 && status < 300) {
        if (j->format == GW_WEBHOOK_JSON) {
            return OUT_OK;
        }
        json_error_t jerr;
        json_t *root = j->resp ? json_loadb(j->resp, j->resp_len, 0, &jerr) : NULL;
        json_t *code = root ? json_object_get(root, "errcode") : NULL;
        if (!json_is_integer(code)) {
            set_err(j, "HTTP %ld without an errcode: %s", status, body[0] ? body : "(empty reply)");
            json_decref(root);
            return OUT_RETRY;
        }
        long long c = json_integer_value(code);
        if (c == 0) {
            json_decref(root);
            return OUT_OK;
        }
        const char *msg = json_string_value(json_object_get(root, "errmsg"));
        set_err(j, "errcode %lld: %s", c, msg ? msg : "(no errmsg)");
        json_decref(root);
        return robot_errcode_transient(c) ? OUT_RETRY : OUT_FAIL;
    }
    if (status >= 300 && status < 400) {
        set_err(j, "HTTP %ld: redirects are not followed; fix the URL", status);
        return OUT_FAIL;
    }
    set_err(j, "HTTP %ld: %s", status, body[0] ? body : "(empty reply)");
    if (status == 408 || status == 429 || status >= 500 || status < 200) {
        return OUT_RETRY;
    }
    return OUT_FAIL;
}

static enum outcome classify_email(struct job *j, CURLcode result, long code)
{
    if (result == CURLE_OK) {
        return OUT_OK;
    }
    transport_error(j, result);
    /* A 5xx SMTP reply (bad recipient, refused sender, message rejected) is final. */
    if (code >= 500 && code < 600) {
        char tmp[ERR_MAX];
        memcpy(tmp, j->err, sizeof(tmp));
        set_err(j, "SMTP %ld: %s", code, tmp);
        return OUT_FAIL;
    }
    return curl_permanent(result) ? OUT_FAIL : OUT_RETRY;
}

static void on_transfer(void *ctx, CURL *easy, CURLcode result)
{
    struct job *j = ctx;
    struct gw_notifier *n = j->n;
    j->running = false;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    enum outcome out = j->kind == GW_CHANNEL_EMAIL ? classify_email(j, result, status)
                                                   : classify_webhook(j, result, status);
    if (out == OUT_OK) {
        gw_debug(MOD, "%s sent attempts=%d", kind_names[j->kind], j->attempts);
        finish(j, true, NULL);
        return;
    }
    if (out == OUT_FAIL || j->attempts > j->retries || n->closing) {
        finish(j, false, j->err);
        return;
    }
    int wait_ms = gw_retry_backoff_ms(j->attempts - 1, next_rand(n));
    if (j->retry_after[0]) {
        int ra = gw_influx_retry_after_ms(j->retry_after, (int64_t)time(NULL) * 1000);
        if (ra > RETRY_AFTER_CAP) {
            ra = RETRY_AFTER_CAP;
        }
        if (ra > wait_ms) {
            wait_ms = ra;
        }
    }
    gw_debug(MOD, "%s attempt=%d failed error=\"%s\" retry_in_ms=%d", kind_names[j->kind],
             j->attempts, j->err, wait_ms);
    uv_timer_start(&j->timer, on_attempt_timer, (uint64_t)wait_ms, 0);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct job *j = userp;
    size_t n = size * nmemb;
    size_t take = j->resp_len < RESP_MAX ? RESP_MAX - j->resp_len : 0;
    take = n < take ? n : take;
    if (take == 0) {
        return n;
    }
    if (j->resp_len + take + 1 > j->resp_cap) {
        size_t cap = j->resp_cap ? j->resp_cap : 512;
        while (cap < j->resp_len + take + 1) {
            cap *= 2;
        }
        char *p = realloc(j->resp, cap);
        if (!p) {
            return n; /* the status still decides */
        }
        j->resp = p;
        j->resp_cap = cap;
    }
    memcpy(j->resp + j->resp_len, data, take);
    j->resp_len += take;
    j->resp[j->resp_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct job *j = userp;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        const char *v = data + sizeof(name) - 1;
        size_t vl = n - (sizeof(name) - 1);
        while (vl > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) {
            vl--;
        }
        vl = vl < sizeof(j->retry_after) ? vl : sizeof(j->retry_after) - 1;
        memcpy(j->retry_after, v, vl);
        j->retry_after[vl] = '\0';
    }
    return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *userp)
{
    struct job *j = userp;
    size_t room = size * nitems;
    size_t left = j->payload_len - j->read_off;
    size_t k = left < room ? left : room;
    memcpy(buf, j->payload + j->read_off, k);
    j->read_off += k;
    return k;
}

static void common_opts(struct job *j)
{
    CURL *e = j->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->curl_err);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
}

static int setup_webhook(struct job *j)
{
    CURL *e = j->easy;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
    struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL;
    if (!h2) {
        curl_slist_free_all(h);
        return -ENOMEM;
    }
    j->list = h2;
    char ua[64];
    snprintf(ua, sizeof(ua), "campusgw/%s", GW_VERSION);
    common_opts(j);
    curl_easy_setopt(e, CURLOPT_URL, j->target);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->list);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->payload);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->payload_len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    return 0;
}

static int setup_email(struct job *j)
{
    const struct smtp *sc = &j->n->smtp;
    CURL *e = j->easy;
    char rcpt[300];
    char from[300];
    snprintf(rcpt, sizeof(rcpt), "<%s>", j->target);
    snprintf(from, sizeof(from), "<%s>", sc->mail_from);
    j->list = curl_slist_append(NULL, rcpt);
    if (!j->list) {
        return -ENOMEM;
    }
    common_opts(j);
    curl_easy_setopt(e, CURLOPT_URL, sc->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    /* smtp:// must upgrade with STARTTLS or fail: mail never goes out in clear. */
    curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (sc->username) {
        curl_easy_setopt(e, CURLOPT_USERNAME, sc->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, sc->password ? sc->password : "");
    }
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, j->list);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, j);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, sc->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, sc->insecure ? 0L : 2L);
    if (sc->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, sc->ca_file);
    }
    return 0;
}

/* The first line of text, for a subject. */
static char *first_line(const char *text)
{
    size_t len = strcspn(text, "\r\n");
    if (len > SUBJECT_MAX) {
        len = utf8_cut(text, SUBJECT_MAX);
    }
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, text, len);
        s[len] = '\0';
    }
    return s;
}

/* Build what this channel sends. -EINVAL when msg lacks it. */
static int build_payload(struct job *j, const struct gw_message *msg)
{
    struct gw_notifier *n = j->n;
    switch (j->kind) {
    case GW_CHANNEL_MQTT:
        if (!msg->json) {
            return -EINVAL;
        }
        j->payload = strdup(msg->json);
        break;
    case GW_CHANNEL_WEBHOOK:
        if (j->format == GW_WEBHOOK_JSON) {
            if (!msg->json) {
                return -EINVAL;
            }
            j->payload = strdup(msg->json);
        } else {
            const char *ready = j->format == GW_WEBHOOK_WECOM ? msg->wecom : msg->dingtalk;
            if (ready) {
                j->payload = strdup(ready);
            } else if (msg->text) {
                j->payload = gw_notify_robot_text_body(msg->text);
                if (!j->payload) {
                    return -EINVAL; /* not UTF-8 (or out of memory) */
                }
            } else {
                return -EINVAL;
            }
        }
        break;
    case GW_CHANNEL_EMAIL: {
        const char *body = msg->body ? msg->body : msg->text;
        if (!body) {
            return -EINVAL;
        }
        if (n->smtp.error) {
            return 0; /* reported through done: the config, not the message, is at fault */
        }
        char *subject = msg->subject ? strdup(msg->subject) : first_line(body);
        if (!subject) {
            return -ENOMEM;
        }
        uint64_t unique = (++n->unique << 32) ^ next_rand(n);
        j->payload = gw_notify_email_message(n->smtp.from, j->target, subject, body,
                                             (int64_t)time(NULL), unique);
        free(subject);
        if (!j->payload) {
            return valid_address(j->target, strlen(j->target)) ? -ENOMEM : -EINVAL;
        }
        break;
    }
    default:
        return -EINVAL;
    }
    if (!j->payload) {
        return -ENOMEM;
    }
    j->payload_len = strlen(j->payload);
    return 0;
}

int gw_notifier_send(struct gw_notifier *n, const struct gw_channel_cfg *ch,
                     const struct gw_message *msg, gw_notify_done_fn done, void *ctx)
{
    if (!n || !ch || !msg || !done || !ch->target || (unsigned)ch->kind > GW_CHANNEL_EMAIL ||
        (unsigned)ch->format > GW_WEBHOOK_DINGTALK) {
        return -EINVAL;
    }
    if (n->closing) {
        return -ESHUTDOWN;
    }
    struct job *j = calloc(1, sizeof(*j));
    if (!j) {
        return -ENOMEM;
    }
    j->n = n;
    j->kind = ch->kind;
    j->format = ch->format;
    j->timeout_ms = ch->timeout_ms > 0 ? ch->timeout_ms : 10000;
    j->retries = ch->retries >= 0 ? ch->retries : 0;
    j->done = done;
    j->ctx = ctx;
    j->target = strdup(ch->target);
    int rc = j->target ? build_payload(j, msg) : -ENOMEM;
    if (rc == 0 && j->kind != GW_CHANNEL_MQTT && !(j->kind == GW_CHANNEL_EMAIL && n->smtp.error)) {
        j->easy = curl_easy_init();
        if (!j->easy) {
            rc = -ENOMEM;
        } else {
            rc = j->kind == GW_CHANNEL_WEBHOOK ? setup_webhook(j) : setup_email(j);
        }
    }
    if (rc < 0) {
        if (j->easy) {
            curl_easy_cleanup(j->easy);
        }
        curl_slist_free_all(j->list);
        free(j->target);
        free(j->payload);
        free(j);
        return rc;
    }
    uv_timer_init(n->loop, &j->timer);
    j->timer.data = j;
    n->open++;
    n->njobs++;
    j->next = n->jobs;
    if (n->jobs) {
        n->jobs->prev = j;
    }
    n->jobs = j;
    /* Everything starts on the next loop turn: done never runs inside this call. */
    if (j->kind == GW_CHANNEL_MQTT) {
        uv_timer_start(&j->timer, on_mqtt_timer, 0, 0);
    } else if (j->kind == GW_CHANNEL_EMAIL && n->smtp.error) {
        set_err(j, "%s", n->smtp.error);
        uv_timer_start(&j->timer, on_config_error_timer, 0, 0);
    } else {
        uv_timer_start(&j->timer, on_attempt_timer, 0, 0);
    }
    return 0;
}

/* ---- the notifier ---- */

static void smtp_clear(struct smtp *s)
{
    if (s->password) {
        memset(s->password, 0, strlen(s->password)); /* no secret left in freed memory */
    }
    free(s->url);
    free(s->username);
    free(s->password);
    free(s->from);
    free(s->mail_from);
    free(s->ca_file);
    memset(s, 0, sizeof(*s));
}

static bool dup_opt(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return !src || *dst;
}

/* Copy sc into s; s->error says why email cannot be sent (logged when smtp is configured). */
static void smtp_load(struct smtp *s, const struct gw_smtp_cfg *sc)
{
    char addr[256];
    if (!sc->enabled) {
        s->error = "no smtp section: email cannot be sent";
        return;
    }
    if (!sc->url ||
        (strncasecmp(sc->url, "smtps://", 8) != 0 && strncasecmp(sc->url, "smtp://", 7) != 0)) {
        s->error = "smtp.url must start with smtps:// or smtp://";
    } else if (!gw_notify_email_address(sc->from, addr, sizeof(addr))) {
        s->error = "smtp.from is not an address";
    } else if (!dup_opt(&s->url, sc->url) || !dup_opt(&s->username, sc->username) ||
               !dup_opt(&s->password, sc->password) || !dup_opt(&s->from, sc->from) ||
               !dup_opt(&s->mail_from, addr) || !dup_opt(&s->ca_file, sc->ca_file)) {
        smtp_clear(s);
        s->error = "out of memory";
    }
    s->insecure = sc->insecure;
    if (s->error) {
        gw_error(MOD, "%s: email contacts will fail", s->error);
    }
}

int gw_notifier_reconfigure(struct gw_notifier *n, const struct gw_config *cfg)
{
    struct smtp fresh = {0};
    smtp_load(&fresh, &cfg->smtp);
    smtp_clear(&n->smtp);
    n->smtp = fresh;
    return n->smtp.error && cfg->smtp.enabled ? -EINVAL : 0;
}

struct gw_notifier *gw_notifier_new(uv_loop_t *loop, const struct gw_config *cfg,
                                    gw_notify_mqtt_fn mqtt_publish, void *core)
{
    struct gw_notifier *n = calloc(1, sizeof(*n));
    if (!n) {
        gw_error(MOD, "out of memory");
        return NULL;
    }
    n->loop = loop;
    n->mqtt_publish = mqtt_publish;
    n->core = core;
    n->rng = (uint32_t)(uv_hrtime() ^ ((uint64_t)getpid() << 16)) | 1u;
    n->curl = gw_curl_new(loop);
    if (!n->curl) {
        free(n);
        return NULL;
    }
    n->open = 1; /* the curl loop */
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    if (!(cv->features & CURL_VERSION_ASYNCHDNS)) {
        /* Then a slow DNS answer for one webhook host would stall the whole loop. */
        gw_warn(MOD,
                "libcurl %s resolves names synchronously: use IP addresses in webhook and "
                "smtp URLs or a libcurl with AsynchDNS",
                cv->version);
    }
    smtp_load(&n->smtp, &cfg->smtp);
    return n;
}

void gw_notifier_counters(const struct gw_notifier *n, enum gw_channel_kind kind,
                          struct gw_notify_counters *out)
{
    if ((unsigned)kind > GW_CHANNEL_EMAIL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = n->counters[kind];
}

int gw_notifier_pending(const struct gw_notifier *n)
{
    return n->njobs;
}

static void on_curl_closed(void *ctx)
{
    struct gw_notifier *n = ctx;
    n->open--;
    maybe_freed(n);
}

void gw_notifier_close(struct gw_notifier *n, void (*closed)(void *ctx), void *ctx)
{
    if (!n || n->closing) {
        return;
    }
    n->closing = true;
    n->closed = closed;
    n->closed_ctx = ctx;
    /* finish() unlinks the head; a done callback cannot add (send refuses while closing). */
    while (n->jobs) {
        finish(n->jobs, false, "notifier closing");
    }
    gw_curl_close(n->curl, on_curl_closed, n);
    n->curl = NULL;
}
