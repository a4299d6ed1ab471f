/*
 * InfluxDB sink: each batch becomes one line-protocol POST (optionally gzip)
 * through the shared curl loop; the reply is classified by influx_policy.
 *
 * A 400/422 that names lines: the named lines' records are rejected. When the
 * server did not store the rest (2.x refuses a whole batch for one bad line;
 * 1.x when every line was bad or a type conflict was not fully matched) the
 * remaining lines are posted again before done runs, so a good record is
 * never reported delivered unless a 2xx covered it. Re-posting lines 1.x
 * already stored is harmless: InfluxDB overwrites by series + timestamp.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "curl_loop.h"
#include "influx_policy.h"
#include "lineproto.h"
#include "log.h"
#include "sink.h"

#define MOD "influx"
#define RESP_MAX (4u << 20) /* error replies naming thousands of lines are long */
#define ERR_MAX 1024
#define LOG_TEXT_MAX 300
#define MAX_ROUNDS 8 /* re-posts after 400s that named lines */

struct influx {
    const struct gw_config *cfg;
    const struct gw_influx_cfg *ic;
    uv_loop_t *loop;
    struct gw_curl *curl;
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    char target[300]; /* "database X" / "bucket X (org Y)" for logs */

    /* the batch */
    bool busy;
    const struct gw_record *recs;
    int n;
    gw_sink_done_fn done;
    void *done_ctx;
    struct gw_lp_buf lp;
    int nlines;
    int line_cap;
    int *line_rec;    /* record index of each line */
    size_t *line_off; /* start of each line in lp.data; [nlines] = lp.len */
    bool *line_dead;  /* refused by the server */
    bool *rec_bad;    /* per record: malformed or refused */
    int rec_cap;
    int nmalformed;
    int rounds;
    int *rejected;
    /* what was sent in this round */
    char *resend;
    size_t resend_len, resend_cap;
    int *sent_map; /* sent line -> batch line; NULL: identity */
    int nsent;
    const char *body;
    size_t body_len;
    unsigned char *gz;
    size_t gz_cap;
    z_stream zs;
    bool zs_ready;
    /* the reply */
    char *resp;
    size_t resp_len, resp_cap;
    char retry_after[64];
    char err[ERR_MAX];

    /* done deferred to the loop (never from inside submit) */
    uv_timer_t *defer;
    enum gw_sink_result pending;
    int pending_retry_ms;

    bool stopping;
    bool closing;
    int open;
    void (*closed)(void *ctx);
    void *closed_ctx;

    struct gw_complaint down, auth, missing, refused;
};

static int64_t now_ms(const struct influx *s)
{
    return (int64_t)uv_now(s->loop);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- curl callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct influx *s = userp;
    size_t n = size * nmemb;
    size_t room = s->resp_len < RESP_MAX ? RESP_MAX - s->resp_len : 0;
    size_t take = n < room ? n : room;
    if (take > 0) {
        if (s->resp_len + take + 1 > s->resp_cap) {
            size_t cap = s->resp_cap ? s->resp_cap : 4096;
            while (cap < s->resp_len + take + 1) {
                cap *= 2;
            }
            char *p = realloc(s->resp, cap);
            if (!p) {
                return n; /* keep what we have; the status still counts */
            }
            s->resp = p;
            s->resp_cap = cap;
        }
        memcpy(s->resp + s->resp_len, data, take);
        s->resp_len += take;
        s->resp[s->resp_len] = '\0';
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct influx *s = userp;
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
        if (vl >= sizeof(s->retry_after)) {
            vl = sizeof(s->retry_after) - 1;
        }
        memcpy(s->retry_after, v, vl);
        s->retry_after[vl] = '\0';
    }
    return n;
}

/* ---- setup ---- */

static int setup_easy(struct influx *s)
{
    const struct gw_influx_cfg *ic = s->ic;
    CURL *e = s->easy;
    char ua[64];
    snprintf(ua, sizeof(ua), "campusgw/%s", GW_VERSION);
    s->headers = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    /* No "Expect: 100-continue" round trip for large bodies. */
    s->headers = curl_slist_append(s->headers, "Expect:");
    if (ic->gzip) {
        s->headers = curl_slist_append(s->headers, "Content-Encoding: gzip");
    }
    if (ic->version == GW_INFLUX_V2 && ic->token) {
        size_t len = strlen(ic->token) + 32;
        char *h = malloc(len);
        if (!h) {
            return -ENOMEM;
        }
        snprintf(h, len, "Authorization: Token %s", ic->token);
        s->headers = curl_slist_append(s->headers, h);
        memset(h, 0, len); /* do not leave the token lying around in freed memory */
        free(h);
    }
    if (!s->headers) {
        return -ENOMEM;
    }
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ic->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ic->timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, ic->insecure ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, ic->insecure ? 0L : 2L);
    if (ic->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, ic->ca_file);
    }
    if (ic->version == GW_INFLUX_V1 && ic->username) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, ic->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, ic->password ? ic->password : "");
    }
    return 0;
}

static void on_handle_closed(uv_handle_t *h);

static void influx_destroy(void *state);

static void on_defer(uv_timer_t *t);

static void *influx_init(const struct gw_config *cfg, uv_loop_t *loop)
{
    struct influx *s = calloc(1, sizeof(*s));
    if (!s) {
        gw_error(MOD, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->ic = &cfg->influx;
    s->loop = loop;
    gw_lp_buf_init(&s->lp);
    const struct gw_influx_cfg *ic = s->ic;
    if (ic->version == GW_INFLUX_V1) {
        snprintf(s->target, sizeof(s->target), "database \"%s\"", ic->database ? ic->database : "");
    } else {
        snprintf(s->target, sizeof(s->target), "bucket \"%s\" (org \"%s\")",
                 ic->bucket ? ic->bucket : "", ic->org ? ic->org : "");
    }
    char url[2048];
    int rc = gw_influx_write_url(url, sizeof(url), ic);
    if (rc < 0) {
        gw_error(MOD, "cannot build the write URL: %s", strerror(-rc));
        goto fail;
    }
    s->url = strdup(url);
    s->curl = gw_curl_new(loop);
    s->easy = curl_easy_init();
    s->defer = calloc(1, sizeof(*s->defer));
    if (!s->url || !s->curl || !s->easy || !s->defer) {
        gw_error(MOD, "cannot set up the HTTP client");
        goto fail;
    }
    if (setup_easy(s) < 0) {
        gw_error(MOD, "out of memory");
        goto fail;
    }
    uv_timer_init(loop, s->defer);
    s->defer->data = s;
    s->open = 2; /* defer timer + curl loop */
    gw_info(MOD, "writing to %s url=%s gzip=%s", s->target, s->url, ic->gzip ? "on" : "off");
    return s;
fail:
    if (s->curl) {
        gw_curl_close(s->curl, NULL, NULL);
        s->curl = NULL;
    }
    influx_destroy(s);
    return NULL;
}

static int influx_start(void *state)
{
    (void)state;
    return 0;
}

static bool influx_ready(void *state)
{
    struct influx *s = state;
    return !s->stopping;
}

static bool influx_wants(void *state, enum gw_record_type type)
{
    (void)state;
    return type == GW_REC_TELEMETRY || type == GW_REC_HEALTH || type == GW_REC_EVENT ||
           type == GW_REC_GATEWAY || type == GW_REC_KPI;
}

/* ---- completing a batch ---- */

static void complete(struct influx *s, enum gw_sink_result result, const char *error,
                     int retry_after_ms)
{
    int nrej = 0;
    if (result == GW_SINK_OK || result == GW_SINK_REJECT) {
        for (int k = 0; k < s->nlines; k++) {
            if (s->line_dead[k]) {
                s->rec_bad[s->line_rec[k]] = true;
            }
        }
        for (int i = 0; i < s->n; i++) {
            if (s->rec_bad[i]) {
                s->rejected[nrej++] = i;
            }
        }
        if (nrej > 0) {
            result = GW_SINK_REJECT;
            if (!error || !*error) {
                error = "malformed record";
            }
        } else {
            result = GW_SINK_OK;
        }
    }
    gw_sink_done_fn done = s->done;
    void *ctx = s->done_ctx;
    s->busy = false;
    s->done = NULL;
    s->recs = NULL;
    done(ctx, result, result == GW_SINK_OK ? NULL : error, nrej ? s->rejected : NULL, nrej,
         result == GW_SINK_RETRY ? retry_after_ms : 0);
}

static void begin_close(struct influx *s);

static void on_defer(uv_timer_t *t)
{
    struct influx *s = t->data;
    if (s->busy) {
        complete(s, s->pending, s->err, s->pending_retry_ms);
    }
    if (s->stopping && !s->busy) {
        begin_close(s);
    }
}

static void complete_later(struct influx *s, enum gw_sink_result result, const char *error)
{
    s->pending = result;
    s->pending_retry_ms = 0;
    if (error != s->err) {
        snprintf(s->err, sizeof(s->err), "%s", error ? error : "");
    }
    uv_timer_start(s->defer, on_defer, 0, 0);
}

/* ---- building and sending ---- */

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap) {
        return 0;
    }
    int c = *cap ? *cap : 256;
    while (c < need) {
        c *= 2;
    }
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) {
        return -ENOMEM;
    }
    *p = q;
    *cap = c;
    return 0;
}

static int ensure_lines(struct influx *s, int need)
{
    if (need <= s->line_cap) {
        return 0;
    }
    int cap = s->line_cap;
    int c1 = cap, c2 = cap, c3 = cap, c4 = cap;
    if (grow((void **)&s->line_rec, &c1, need, sizeof(int)) < 0 ||
        grow((void **)&s->line_off, &c2, need + 1, sizeof(size_t)) < 0 ||
        grow((void **)&s->line_dead, &c3, need, sizeof(bool)) < 0 ||
        grow((void **)&s->sent_map, &c4, need, sizeof(int)) < 0) {
        return -ENOMEM;
    }
    int m = c1;
    m = c2 - 1 < m ? c2 - 1 : m;
    m = c3 < m ? c3 : m;
    m = c4 < m ? c4 : m;
    s->line_cap = m;
    return 0;
}

static int ensure_recs(struct influx *s, int n)
{
    if (n <= s->rec_cap) {
        return 0;
    }
    int c1 = s->rec_cap, c2 = s->rec_cap;
    if (grow((void **)&s->rec_bad, &c1, n, sizeof(bool)) < 0 ||
        grow((void **)&s->rejected, &c2, n, sizeof(int)) < 0) {
        return -ENOMEM;
    }
    s->rec_cap = c1 < c2 ? c1 : c2;
    return 0;
}

static int gzip_body(struct influx *s, const char *in, size_t len, size_t *out_len)
{
    if (!s->zs_ready) {
        /* 15 + 16: a gzip header and trailer; level 1: a Pi has little CPU to spare. */
        if (deflateInit2(&s->zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK) {
            return -ENOMEM;
        }
        s->zs_ready = true;
    } else {
        deflateReset(&s->zs);
    }
    size_t bound = deflateBound(&s->zs, (uLong)len);
    if (bound > s->gz_cap) {
        unsigned char *p = realloc(s->gz, bound);
        if (!p) {
            return -ENOMEM;
        }
        s->gz = p;
        s->gz_cap = bound;
    }
    s->zs.next_in = (Bytef *)in;
    s->zs.avail_in = (uInt)len;
    s->zs.next_out = s->gz;
    s->zs.avail_out = (uInt)s->gz_cap;
    if (deflate(&s->zs, Z_FINISH) != Z_STREAM_END) {
        return -EIO;
    }
    *out_len = s->gz_cap - s->zs.avail_out;
    return 0;
}

static void on_transfer(void *ctx, CURL *easy, CURLcode result);

/* Post the live lines (all of them in round 0). */
static int send_round(struct influx *s)
{
    int dead = 0;
    for (int k = 0; k < s->nlines; k++) {
        dead += s->line_dead[k];
    }
    if (dead == 0) {
        s->body = s->lp.data;
        s->body_len = s->lp.len;
        for (int k = 0; k < s->nlines; k++) {
            s->sent_map[k] = k;
        }
        s->nsent = s->nlines;
    } else {
        size_t need = s->lp.len + 1;
        if (need > s->resend_cap) {
            char *p = realloc(s->resend, need);
            if (!p) {
                return -ENOMEM;
            }
            s->resend = p;
            s->resend_cap = need;
        }
        s->resend_len = 0;
        s->nsent = 0;
        for (int k = 0; k < s->nlines; k++) {
            if (s->line_dead[k]) {
                continue;
            }
            size_t len = s->line_off[k + 1] - s->line_off[k];
            memcpy(s->resend + s->resend_len, s->lp.data + s->line_off[k], len);
            s->resend_len += len;
            s->sent_map[s->nsent++] = k;
        }
        s->resend[s->resend_len] = '\0';
        s->body = s->resend;
        s->body_len = s->resend_len;
    }
    const char *post = s->body;
    size_t post_len = s->body_len;
    if (s->ic->gzip) {
        int rc = gzip_body(s, s->body, s->body_len, &post_len);
        if (rc < 0) {
            return rc;
        }
        post = (const char *)s->gz;
    }
    s->resp_len = 0;
    if (s->resp) {
        s->resp[0] = '\0';
    }
    s->retry_after[0] = '\0';
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, post);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post_len);
    gw_debug(MOD, "posting lines=%d bytes=%zu sent=%zu round=%d", s->nsent, s->body_len, post_len,
             s->rounds);
    return gw_curl_submit(s->curl, s->easy, on_transfer, s);
}

static void influx_submit(void *state, const struct gw_record *recs, int n, gw_sink_done_fn done,
                          void *ctx)
{
    struct influx *s = state;
    if (s->busy) {
        gw_error(MOD, "submit while a batch is in flight (ignored)");
        return;
    }
    s->busy = true;
    s->recs = recs;
    s->n = n;
    s->done = done;
    s->done_ctx = ctx;
    s->nlines = 0;
    s->nmalformed = 0;
    s->rounds = 0;
    s->err[0] = '\0';
    if (s->stopping || s->closing) {
        complete_later(s, GW_SINK_RETRY, "sink stopping");
        return;
    }
    gw_lp_buf_reset(&s->lp);
    if (ensure_recs(s, n) < 0) {
        complete_later(s, GW_SINK_RETRY, "out of memory");
        return;
    }
    memset(s->rec_bad, 0, (size_t)n * sizeof(bool));
    for (int i = 0; i < n; i++) {
        size_t len = s->lp.len;
        int lines = s->lp.lines;
        int rc = gw_lp_from_record(&s->lp, s->cfg, &recs[i]);
        if (rc < 0) {
            /* Undo anything half-written so the body stays whole lines. */
            s->lp.len = len;
            s->lp.lines = lines;
            if (s->lp.data) {
                s->lp.data[len] = '\0';
            }
            if (rc == -EINVAL) {
                s->rec_bad[i] = true;
                s->nmalformed++;
                gw_warn(MOD, "malformed record seq=%llu topic=%s: dead-lettered",
                        (unsigned long long)recs[i].seq, recs[i].topic ? recs[i].topic : "");
                continue;
            }
            complete_later(s, GW_SINK_RETRY, "out of memory");
            return;
        }
        if (ensure_lines(s, s->lp.lines) < 0) {
            complete_later(s, GW_SINK_RETRY, "out of memory");
            return;
        }
        for (int k = lines; k < s->lp.lines; k++) {
            s->line_rec[k] = i;
        }
    }
    s->nlines = s->lp.lines;
    /* Line starts, from the text itself (a record may have added several). */
    int k = 0;
    if (s->nlines > 0) {
        s->line_off[k++] = 0;
        for (size_t p = 0; p < s->lp.len && k < s->nlines; p++) {
            if (s->lp.data[p] == '\n') {
                s->line_off[k++] = p + 1;
            }
        }
        s->line_off[s->nlines] = s->lp.len;
    }
    if (s->nlines == 0) {
        complete_later(s, GW_SINK_OK, NULL); /* becomes REJECT if any was malformed */
        return;
    }
    memset(s->line_dead, 0, (size_t)s->nlines * sizeof(bool));
    int rc = send_round(s);
    if (rc < 0) {
        complete_later(s, GW_SINK_RETRY, rc == -ENOMEM ? "out of memory" : "cannot start request");
    }
}

/* Everything still live is refused: the reply named nothing we could match. */
static void kill_live_lines(struct influx *s)
{
    for (int j = 0; j < s->nsent; j++) {
        s->line_dead[s->sent_map[j]] = true;
    }
}

static void log_refused(struct influx *s, long status, const char *text, int nlines)
{
    if (gw_complain(&s->refused, now_ms(s))) {
        gw_warn(MOD, "%s refused lines status=%ld lines=%d error=\"%.*s\"", s->target, status,
                nlines, LOG_TEXT_MAX, text);
    }
}

/* 400/422: find the refused lines; re-post the rest when the server stored nothing of them. */
static void handle_bad_request(struct influx *s, long status)
{
    gw_influx_error_text(s->resp ? s->resp : "", s->resp_len, s->err, sizeof(s->err));
    const char *text = s->err;
    bool *bad = calloc((size_t)s->nsent + 1, sizeof(bool));
    int marked = 0;
    /* Matching needs the whole text, not the ERR_MAX prefix kept for done(). */
    char *full = NULL;
    if (bad && s->resp_len + 1 > sizeof(s->err)) {
        full = malloc(s->resp_len + 1);
        if (full) {
            gw_influx_error_text(s->resp, s->resp_len, full, s->resp_len + 1);
        }
    }
    const char *match_text = full ? full : text;
    if (bad) {
        marked = gw_influx_bad_lines(match_text, s->body, s->body_len, bad, s->nsent);
    }
    bool partial = gw_influx_partial_write(match_text);
    int dropped = gw_influx_dropped(match_text);
    log_refused(s, status, text, marked ? marked : s->nsent);
    if (marked == 0) {
        kill_live_lines(s);
    } else {
        for (int j = 0; j < s->nsent; j++) {
            if (bad[j]) {
                s->line_dead[s->sent_map[j]] = true;
            }
        }
    }
    free(bad);
    free(full);
    int live = s->nsent - (marked ? marked : s->nsent);
    bool stored_rest = partial && marked >= dropped;
    if (marked == 0 || live == 0 || stored_rest) {
        complete(s, GW_SINK_REJECT, s->err, 0);
        return;
    }
    if (++s->rounds >= MAX_ROUNDS) {
        kill_live_lines(s);
        complete(s, GW_SINK_REJECT, s->err, 0);
        return;
    }
    /* s->err is kept for the final REJECT; a later 400 overwrites it with its own text. */
    char keep[ERR_MAX];
    snprintf(keep, sizeof(keep), "%s", s->err);
    int rc = send_round(s);
    if (rc < 0) {
        snprintf(s->err, sizeof(s->err), "cannot re-post the good lines");
        complete(s, GW_SINK_RETRY, s->err, 0);
        return;
    }
    snprintf(s->err, sizeof(s->err), "%s", keep);
}

static void on_transfer(void *ctx, CURL *easy, CURLcode result)
{
    struct influx *s = ctx;
    long status = 0;
    if (result == CURLE_OK) {
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    }
    if (!s->busy) {
        return;
    }
    long new_conns = 0;
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &new_conns);
    gw_debug(MOD, "reply status=%ld curl=%d new_connections=%ld", status, (int)result, new_conns);
    enum gw_influx_class cls = gw_influx_classify(result == CURLE_OK, status);
    int64_t now = now_ms(s);
    int retry_ms = gw_influx_retry_after_ms(s->retry_after[0] ? s->retry_after : NULL, wall_ms());
    if (retry_ms < 0) {
        retry_ms = 0;
    }
    char text[ERR_MAX / 2];
    gw_influx_error_text(s->resp ? s->resp : "", s->resp_len, text, sizeof(text));
    switch (cls) {
    case GW_INFLUX_OK: {
        bool was_down = gw_release(&s->down);
        bool was_auth = gw_release(&s->auth);
        bool was_missing = gw_release(&s->missing);
        if (was_down || was_auth || was_missing) {
            gw_info(MOD, "%s accepts writes again", s->target);
        }
        /* Refusals are not "over" when a good batch passes (batches of other series
         * alternate with refused ones): they stay rate-limited. */
        complete(s, GW_SINK_OK, s->err[0] ? s->err : NULL, 0);
        return;
    }
    case GW_INFLUX_RETRY:
        if (result != CURLE_OK) {
            snprintf(s->err, sizeof(s->err), "%s", curl_easy_strerror(result));
        } else {
            snprintf(s->err, sizeof(s->err), "HTTP %ld: %s", status, text);
        }
        if (gw_complain(&s->down, now)) {
            gw_warn(MOD, "write failed url=%s error=\"%.*s\" retry_after_ms=%d", s->url,
                    LOG_TEXT_MAX, s->err, retry_ms);
        }
        complete(s, GW_SINK_RETRY, s->err, retry_ms);
        return;
    case GW_INFLUX_AUTH:
        snprintf(s->err, sizeof(s->err), "credentials refused (HTTP %ld): %s", status, text);
        if (gw_complain(&s->auth, now)) {
            gw_error(MOD,
                     "%s refuses our credentials status=%ld error=\"%.*s\": check %s; "
                     "keeping data buffered",
                     s->target, status, LOG_TEXT_MAX, text,
                     s->ic->version == GW_INFLUX_V1 ? "username/password" : "the token");
        }
        complete(s, GW_SINK_RETRY, s->err, retry_ms);
        return;
    case GW_INFLUX_NOT_FOUND:
        snprintf(s->err, sizeof(s->err), "%s does not exist (HTTP 404): %s", s->target, text);
        if (gw_complain(&s->missing, now)) {
            gw_error(MOD, "%s does not exist url=%s error=\"%.*s\"; keeping data buffered",
                     s->target, s->url, LOG_TEXT_MAX, text);
        }
        complete(s, GW_SINK_RETRY, s->err, retry_ms);
        return;
    case GW_INFLUX_REJECT:
        gw_release(&s->down);
        if (status == 400 || status == 422) {
            handle_bad_request(s, status);
            return;
        }
        /* 413 and the rest: no line is named; the records go to dead letters. */
        snprintf(s->err, sizeof(s->err), "HTTP %ld: %s", status, text);
        log_refused(s, status, text, s->nsent);
        kill_live_lines(s);
        complete(s, GW_SINK_REJECT, s->err, 0);
        return;
    }
}

/* ---- stop / destroy ---- */

static void maybe_closed(struct influx *s)
{
    if (s->open > 0) {
        return;
    }
    void (*closed)(void *) = s->closed;
    s->closed = NULL;
    if (closed) {
        closed(s->closed_ctx);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct influx *s = h->data;
    free(h);
    if (s) {
        s->open--;
        maybe_closed(s);
    }
}

static void on_curl_closed(void *ctx)
{
    struct influx *s = ctx;
    if (s) {
        s->open--;
        maybe_closed(s);
    }
}

static void begin_close(struct influx *s)
{
    if (s->closing) {
        return;
    }
    s->closing = true;
    gw_curl_close(s->curl, on_curl_closed, s);
    s->curl = NULL;
    uv_close((uv_handle_t *)s->defer, on_handle_closed);
    s->defer = NULL;
}

static void influx_stop(void *state, void (*closed)(void *ctx), void *ctx)
{
    struct influx *s = state;
    s->stopping = true;
    s->closed = closed;
    s->closed_ctx = ctx;
    if (s->busy) {
        /* Abandon the transfer; its done runs from the loop with RETRY, then we close. */
        gw_curl_cancel(s->curl, s->easy);
        if (!uv_is_active((uv_handle_t *)s->defer)) {
            complete_later(s, GW_SINK_RETRY, "sink stopping");
        }
        return;
    }
    begin_close(s);
}

static void influx_destroy(void *state)
{
    struct influx *s = state;
    if (!s) {
        return;
    }
    if (!s->closing) {
        /* Never stopped: let the handles close on their own, then free their memory. */
        if (s->curl) {
            if (s->busy) {
                gw_curl_cancel(s->curl, s->easy);
            }
            gw_curl_close(s->curl, NULL, NULL);
        }
        if (s->defer && s->defer->loop) {
            s->defer->data = NULL;
            uv_close((uv_handle_t *)s->defer, on_handle_closed);
        } else {
            free(s->defer);
        }
    }
    if (s->easy) {
        curl_easy_cleanup(s->easy);
    }
    curl_slist_free_all(s->headers);
    if (s->zs_ready) {
        deflateEnd(&s->zs);
    }
    gw_lp_buf_free(&s->lp);
    free(s->url);
    free(s->line_rec);
    free(s->line_off);
    free(s->line_dead);
    free(s->sent_map);
    free(s->rec_bad);
    free(s->rejected);
    free(s->resend);
    free(s->gz);
    free(s->resp);
    free(s);
}

const struct gw_sink_ops gw_sink_influx = {
    .name = "influx",
    .init = influx_init,
    .start = influx_start,
    .ready = influx_ready,
    .wants = influx_wants,
    .submit = influx_submit,
    .stop = influx_stop,
    .destroy = influx_destroy,
};
