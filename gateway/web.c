#include "web.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarm_desk.h"
#include "api.h"
#include "auth.h"
#include "daily_log.h"
#include "daylog.h"
#include "gateway.h"
#include "hazard_desk.h"
#include "http_server.h"
#include "log.h"
#include "store.h"
#include "timefmt.h"

#define MOD "http"
#define COOKIE_NAME "campusgw_session"
#define EVENTS_MAX 2000
#define DAY_MS (24 * 3600 * 1000LL)

struct gw_web {
    uv_loop_t *loop;
    struct gw_gateway *gw;
    const struct gw_config *cfg;
    struct gw_http_server *http;
    struct gw_auth *auth;
    int jobs; /* Argon2 checks on the thread pool */
    bool closing;
    void (*closed)(void *ctx);
    void *closed_ctx;
};

typedef void (*continue_fn)(struct gw_web *web, struct gw_http_request *req,
                            const struct gw_auth_identity *who);

/* An Argon2 check on the thread pool, and what to do with the request after it. */
struct auth_work {
    uv_work_t work;
    struct gw_web *web;
    struct gw_http_request *req;
    struct gw_auth_job *job;
    enum gw_auth_action action;
    continue_fn next;
    bool login; /* a POST /api/login (sets the cookie) rather than a bearer token */
};

static int64_t now_ms(void)
{
    return gw_now_ms();
}

/* ---- answers ---- */

static void respond_json(struct gw_http_request *req, int status, char *json)
{
    if (!json) {
        gw_http_respond_error(req, 500, "out of memory");
        return;
    }
    struct gw_http_response *r = gw_http_response_new(status, "application/json; charset=utf-8");
    if (r) {
        gw_http_response_add_header(r, "Cache-Control", "no-store");
        gw_http_response_take_body(r, json, strlen(json));
    } else {
        free(json);
    }
    gw_http_respond(req, r);
}

static void respond_denied(struct gw_http_request *req, enum gw_auth_result r, int64_t retry_ms)
{
    struct gw_http_response *resp;
    switch (r) {
    case GW_AUTH_RATE_LIMITED:
    case GW_AUTH_BUSY: {
        resp = gw_http_response_new(r == GW_AUTH_BUSY ? 503 : 429, "application/json");
        char retry[24];
        snprintf(retry, sizeof(retry), "%lld", (long long)((retry_ms + 999) / 1000));
        gw_http_response_add_header(resp, "Retry-After", retry);
        const char *msg = r == GW_AUTH_BUSY
                              ? "{\"error\":\"busy checking passwords: try again shortly\"}"
                              : "{\"error\":\"too many failed logins from this address: wait\"}";
        gw_http_response_copy_body(resp, msg, strlen(msg));
        gw_http_respond(req, resp);
        return;
    }
    case GW_AUTH_BAD_REQUEST:
        gw_http_respond_error(req, 400, "name and password are required");
        return;
    case GW_AUTH_NOMEM:
        gw_http_respond_error(req, 500, "out of memory");
        return;
    default:
        gw_http_respond_error(req, 401, "log in first");
        return;
    }
}

/* ---- who is asking ---- */

/* The value of our cookie in a Cookie header; "" when absent. */
static void session_cookie(const char *header, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = header;
    size_t n = strlen(COOKIE_NAME);
    while (p && *p) {
        while (*p == ' ' || *p == ';') {
            p++;
        }
        if (strncmp(p, COOKIE_NAME, n) == 0 && p[n] == '=') {
            p += n + 1;
            size_t len = strcspn(p, ";");
            if (len < size) {
                memcpy(out, p, len);
                out[len] = '\0';
            }
            return;
        }
        p = strchr(p, ';');
    }
}

static void after_auth_work(uv_work_t *w, int status);

static void auth_work_run(uv_work_t *w)
{
    struct auth_work *aw = w->data;
    gw_auth_job_run(aw->job);
}

static bool start_job(struct gw_web *web, struct gw_http_request *req, struct gw_auth_job *job,
                      enum gw_auth_action action, continue_fn next, bool login)
{
    struct auth_work *aw = calloc(1, sizeof(*aw));
    if (!aw) {
        gw_auth_job_finish(web->auth, job, now_ms(), &(struct gw_auth_identity){0});
        gw_http_respond_error(req, 500, "out of memory");
        return false;
    }
    *aw = (struct auth_work){
        .web = web, .req = req, .job = job, .action = action, .next = next, .login = login};
    aw->work.data = aw;
    web->jobs++;
    if (uv_queue_work(web->loop, &aw->work, auth_work_run, after_auth_work) != 0) {
        web->jobs--;
        gw_auth_job_finish(web->auth, job, now_ms(), &(struct gw_auth_identity){0});
        free(aw);
        gw_http_respond_error(req, 500, "cannot check the password now");
        return false;
    }
    return true;
}

static void maybe_closed(struct gw_web *web);

/* Then: allowed to do `action`? Else the right refusal. */
static void proceed(struct gw_web *web, struct gw_http_request *req,
                    const struct gw_auth_identity *who, enum gw_auth_action action,
                    continue_fn next)
{
    if (!gw_auth_allows(who, action)) {
        gw_http_respond_error(req, 403,
                              who->via == GW_AUTH_VIA_LOOPBACK
                                  ? "read-only: no users are configured (http.users)"
                                  : "your role may look, not act (an operator may)");
        return;
    }
    if (action == GW_AUTH_ACT && who->via == GW_AUTH_VIA_SESSION &&
        !gw_auth_csrf_ok(who, req->csrf_token)) {
        gw_http_respond_error(req, 403, "missing or wrong CSRF token (X-CSRF-Token)");
        return;
    }
    next(web, req, who);
}

static void after_auth_work(uv_work_t *w, int status)
{
    (void)status;
    struct auth_work *aw = w->data;
    struct gw_web *web = aw->web;
    struct gw_auth_identity who = {0};
    enum gw_auth_result r = gw_auth_job_finish(web->auth, aw->job, now_ms(), &who);
    web->jobs--;
    if (r != GW_AUTH_OK) {
        if (aw->login) {
            gw_warn(MOD, "login refused addr=%s", aw->req->client_addr);
        }
        respond_denied(aw->req, r, 0);
    } else if (aw->login) {
        aw->next(web, aw->req, &who);
    } else {
        proceed(web, aw->req, &who, aw->action, aw->next);
    }
    free(aw);
    maybe_closed(web);
}

/* Identify the client (session cookie, bearer token, or anonymous loopback), then go on. */
static void with_identity(struct gw_web *web, struct gw_http_request *req,
                          enum gw_auth_action action, continue_fn next)
{
    struct gw_auth_identity who = {0};
    int64_t now = now_ms();
    char cookie[GW_AUTH_SESSION_HEX + 8];
    session_cookie(req->cookie, cookie, sizeof(cookie));
    if (cookie[0] && gw_auth_session(web->auth, cookie, now, &who) == GW_AUTH_OK) {
        proceed(web, req, &who, action, next);
        return;
    }
    if (req->authorization) {
        struct gw_auth_job *job = NULL;
        int64_t retry = 0;
        enum gw_auth_result r = gw_auth_bearer_start(web->auth, req->authorization,
                                                     req->client_addr, now, &who, &job, &retry);
        if (r == GW_AUTH_OK) {
            proceed(web, req, &who, action, next);
        } else if (r == GW_AUTH_PENDING) {
            start_job(web, req, job, action, next, false);
        } else {
            respond_denied(req, r, retry);
        }
        return;
    }
    if (gw_auth_anonymous(web->auth, req->client_addr, &who) == GW_AUTH_OK) {
        proceed(web, req, &who, action, next);
        return;
    }
    respond_denied(req, GW_AUTH_DENIED, 0);
}

/* ---- operations ---- */

static void on_healthz(void *ctx, struct gw_http_request *req)
{
    struct gw_web *web = ctx;
    char why[GW_ERR_MAX];
    if (gw_gateway_healthy(web->gw, why, sizeof(why))) {
        gw_http_respond_text(req, 200, "text/plain; charset=utf-8", "ok\n");
    } else {
        char body[GW_ERR_MAX + 8];
        snprintf(body, sizeof(body), "%s\n", why);
        gw_http_respond_text(req, 503, "text/plain; charset=utf-8", body);
    }
}

static void metrics_then(struct gw_web *web, struct gw_http_request *req,
                         const struct gw_auth_identity *who)
{
    (void)who;
    char err[GW_ERR_MAX];
    char *text = gw_gateway_prometheus(web->gw, err, sizeof(err));
    if (!text) {
        gw_http_respond_error(req, 500, err);
        return;
    }
    struct gw_http_response *r =
        gw_http_response_new(200, "text/plain; version=0.0.4; charset=utf-8");
    if (r) {
        gw_http_response_take_body(r, text, strlen(text));
    } else {
        free(text);
    }
    gw_http_respond(req, r);
}

static void on_metrics(void *ctx, struct gw_http_request *req)
{
    with_identity(ctx, req, GW_AUTH_READ, metrics_then);
}

/* ---- reading ---- */

static void sensors_then(struct gw_web *web, struct gw_http_request *req,
                         const struct gw_auth_identity *who)
{
    (void)who;
    respond_json(req, 200,
                 gw_api_sensors(web->cfg, gw_gateway_registry(web->gw),
                                gw_desk_alarms(gw_gateway_desk(web->gw)), now_ms()));
}

static void alarms_then(struct gw_web *web, struct gw_http_request *req,
                        const struct gw_auth_identity *who)
{
    (void)who;
    respond_json(req, 200, gw_api_alarms(web->cfg, gw_desk_alarms(gw_gateway_desk(web->gw))));
}

static const char *arg(const struct gw_http_request *req, const char *key)
{
    for (size_t i = 0; i < req->nargs; i++) {
        if (strcmp(req->args[i].key, key) == 0) {
            return req->args[i].value;
        }
    }
    return NULL;
}

static void collect_event(void *ctx, uint64_t seq, int64_t ts_ms, const char *payload)
{
    (void)ts_ms;
    json_t *list = ctx;
    json_t *o = json_loads(payload, 0, NULL);
    if (o) {
        json_object_set_new(o, "seq", json_integer((json_int_t)seq));
        json_array_append_new(list, o);
    }
}

/* Unix ms or an RFC 3339 time; -1 when neither. */
static int64_t parse_since(const char *s)
{
    int64_t ms;
    if (*s >= '0' && *s <= '9' && strspn(s, "0123456789") == strlen(s)) {
        errno = 0;
        long long n = strtoll(s, NULL, 10);
        return errno == ERANGE ? -1 : n;
    }
    return gw_parse_rfc3339(s, &ms) == 0 ? ms : -1;
}

static void events_then(struct gw_web *web, struct gw_http_request *req,
                        const struct gw_auth_identity *who)
{
    (void)who;
    const char *since_s = arg(req, "since");
    const char *after_s = arg(req, "after");
    int64_t since = since_s ? parse_since(since_s) : now_ms() - DAY_MS;
    char *end = NULL;
    unsigned long long after = after_s ? strtoull(after_s, &end, 10) : 0;
    if (since < 0 || (after_s && (!*after_s || *end))) {
        gw_http_respond_error(req, 400, "since: Unix ms or an RFC 3339 time; after: a seq number");
        return;
    }
    json_t *list = json_array();
    int n = gw_store_history_since(gw_gateway_store(web->gw), since, after, EVENTS_MAX,
                                   collect_event, list);
    if (n < 0) {
        json_decref(list);
        gw_http_respond_error(req, 503, "the store cannot be read now");
        return;
    }
    char *s = json_dumps(list, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(list);
    respond_json(req, 200, s);
}

/* ---- acting ---- */

static bool is_hazard_command(const char *name)
{
    return strncmp(name, GW_HAZARD_CMD_PREFIX, strlen(GW_HAZARD_CMD_PREFIX)) == 0;
}

/*
 * Map the desk's answer to HTTP: 400 bad input, 404 unknown, 409 wrong state,
 * 503 the hazard register is unusable (or the store cannot write). target_key
 * NULL: the command names no target (hazard/open).
 */
static void execute(struct gw_web *web, struct gw_http_request *req,
                    const struct gw_auth_identity *who, const char *name, const char *target_key,
                    const char *target)
{
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : json_object();
    if (!json_is_object(body)) {
        json_decref(body);
        gw_http_respond_error(req, 400, "the body must be a JSON object (or empty)");
        return;
    }
    /* who acts is the logged-in user, never what the body says */
    json_object_set_new(body, "by", json_string(who->name[0] ? who->name : "?"));
    if (target_key) {
        json_object_set_new(body, target_key, json_string(target));
    }
    char *payload = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!payload) {
        gw_http_respond_error(req, 500, "out of memory");
        return;
    }
    struct gw_desk_result res;
    int rc = gw_desk_execute(gw_gateway_desk(web->gw), "http", name, payload, strlen(payload),
                             now_ms(), &res);
    free(payload);
    if (rc != 0) {
        int status = rc == -ENOENT ? 404 : rc == -EPERM ? 409 : rc == -EIO ? 503 : 400;
        gw_http_respond_error(req, status, res.error);
        return;
    }
    json_t *out = is_hazard_command(name)
                      ? json_pack("{sb ss ss ss}", "ok", 1, "cmd", name, "hazard", res.hazard,
                                  "status", res.state ? res.state : "")
                      : json_pack("{sb ss ss ss}", "ok", 1, "cmd", res.cmd.name, target_key, target,
                                  "state", res.state ? res.state : "");
    char *s = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    respond_json(req, 200, s);
}

/* POST /api/alarms/<sensor>/<rule-slug>/<action>: the action is the last segment. */
static void alarm_action_then(struct gw_web *web, struct gw_http_request *req,
                              const struct gw_auth_identity *who)
{
    const char *slash = strrchr(req->subpath, '/');
    if (!slash || slash == req->subpath) {
        gw_http_respond_error(req, 404,
                              "POST /api/alarms/<sensor>/<rule>/<ack|shelve|unshelve|reset>");
        return;
    }
    char key[GW_KEY_MAX];
    size_t klen = (size_t)(slash - req->subpath);
    if (klen >= sizeof(key)) {
        gw_http_respond_error(req, 404, "unknown alarm");
        return;
    }
    memcpy(key, req->subpath, klen);
    key[klen] = '\0';
    const char *action = slash + 1;
    static const char *const allowed[] = {"ack", "shelve", "unshelve", "reset"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        if (strcmp(action, allowed[i]) == 0) {
            execute(web, req, who, action, "key", key);
            return;
        }
    }
    gw_http_respond_error(req, 404, "unknown action (ack, shelve, unshelve, reset)");
}

static void sensor_then(struct gw_web *web, struct gw_http_request *req,
                        const struct gw_auth_identity *who)
{
    (void)who;
    int si = gw_config_find_sensor(web->cfg, req->subpath);
    if (si < 0) {
        gw_http_respond_error(req, 404, "unknown sensor");
        return;
    }
    respond_json(req, 200,
                 gw_api_sensor(web->cfg, gw_gateway_registry(web->gw),
                               gw_desk_alarms(gw_gateway_desk(web->gw)), si, now_ms()));
}

/* POST /api/sensors/<id>/out-of-service | in-service */
static void sensor_action_then(struct gw_web *web, struct gw_http_request *req,
                               const struct gw_auth_identity *who)
{
    const char *slash = strrchr(req->subpath, '/');
    char id[GW_NAME_MAX];
    size_t len = slash ? (size_t)(slash - req->subpath) : 0;
    if (!slash || len == 0 || len >= sizeof(id)) {
        gw_http_respond_error(req, 404, "POST /api/sensors/<id>/<out-of-service|in-service>");
        return;
    }
    memcpy(id, req->subpath, len);
    id[len] = '\0';
    const char *name = strcmp(slash + 1, "out-of-service") == 0 ? "out_of_service"
                       : strcmp(slash + 1, "in-service") == 0   ? "in_service"
                                                                : NULL;
    if (!name) {
        gw_http_respond_error(req, 404, "unknown action (out-of-service, in-service)");
        return;
    }
    execute(web, req, who, name, "sensor", id);
}

static void on_sensors(void *ctx, struct gw_http_request *req)
{
    with_identity(ctx, req, GW_AUTH_READ, sensors_then);
}

static void on_sensor(void *ctx, struct gw_http_request *req)
{
    bool post = strcmp(req->method, "POST") == 0;
    with_identity(ctx, req, post ? GW_AUTH_ACT : GW_AUTH_READ,
                  post ? sensor_action_then : sensor_then);
}

static void on_alarms(void *ctx, struct gw_http_request *req)
{
    with_identity(ctx, req, GW_AUTH_READ, alarms_then);
}

static void on_alarm(void *ctx, struct gw_http_request *req)
{
    if (strcmp(req->method, "POST") != 0) {
        gw_http_respond_error(req, 405, "POST an action to /api/alarms/<key>/<action>");
        return;
    }
    with_identity(ctx, req, GW_AUTH_ACT, alarm_action_then);
}

static void on_events(void *ctx, struct gw_http_request *req)
{
    with_identity(ctx, req, GW_AUTH_READ, events_then);
}

/* ---- the hazard register ---- */

struct entry_list {
    char **v;
    int n, cap;
    bool nomem;
};

static void collect_entry(void *ctx, const char *entry_json)
{
    struct entry_list *l = ctx;
    if (l->nomem) {
        return;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        char **grown = realloc(l->v, (size_t)cap * sizeof(*grown));
        if (!grown) {
            l->nomem = true;
            return;
        }
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n] = strdup(entry_json);
    if (!l->v[l->n]) {
        l->nomem = true;
        return;
    }
    l->n++;
}

static void entry_list_free(struct entry_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
}

/* The register, or NULL after answering 503 with why it cannot be used. */
static const struct gw_hazards *usable_register(struct gw_web *web, struct gw_http_request *req,
                                                struct gw_hazard_desk **hd)
{
    *hd = gw_desk_hazards(gw_gateway_desk(web->gw));
    char why[GW_ERR_MAX];
    const struct gw_hazards *reg =
        gw_hazard_desk_ok(*hd, why, sizeof(why)) ? gw_hazard_desk_register(*hd) : NULL;
    if (!reg) {
        char msg[GW_ERR_MAX + 64];
        snprintf(msg, sizeof(msg), "the hazard register cannot be used: %s",
                 why[0] ? why : "not restored");
        gw_http_respond_error(req, 503, msg);
        return NULL;
    }
    return reg;
}

/* gw_api_hazards' counts from the desk's memory: the list never reads the store. */
static int desk_meta(const void *ctx, const char *id, int64_t *updated_at_ms, int *entries)
{
    return gw_hazard_desk_meta(ctx, id, updated_at_ms, entries);
}

/* One hazard's history from the store; false after answering the error. */
static bool read_entries(struct gw_hazard_desk *hd, struct gw_http_request *req, const char *id,
                         struct entry_list *l)
{
    int n = gw_hazard_desk_entries(hd, id, collect_entry, l);
    if (l->nomem) {
        gw_http_respond_error(req, 500, "out of memory");
        return false;
    }
    if (n < 0) {
        gw_http_respond_error(req, 503, "the store cannot be read now");
        return false;
    }
    return true;
}

static void hazards_then(struct gw_web *web, struct gw_http_request *req,
                         const struct gw_auth_identity *who)
{
    (void)who;
    const char *status = arg(req, "status");
    if (!gw_api_hazard_filter_ok(status)) {
        gw_http_respond_error(req, 400, "status: open, rectifying, closed or overdue");
        return;
    }
    struct gw_hazard_desk *hd;
    const struct gw_hazards *reg = usable_register(web, req, &hd);
    if (reg) {
        respond_json(req, 200, gw_api_hazards(reg, desk_meta, hd, status, now_ms()));
    }
}

static void hazard_then(struct gw_web *web, struct gw_http_request *req,
                        const struct gw_auth_identity *who)
{
    (void)who;
    const char *id = req->subpath;
    struct gw_hazard_desk *hd;
    const struct gw_hazards *reg = usable_register(web, req, &hd);
    if (!reg) {
        return;
    }
    if (strchr(id, '/') || !gw_hazards_find(reg, id)) {
        gw_http_respond_error(req, 404, "unknown hazard");
        return;
    }
    struct entry_list l = {0};
    if (read_entries(hd, req, id, &l)) {
        respond_json(req, 200, gw_api_hazard(reg, id, (const char *const *)l.v, l.n));
    }
    entry_list_free(&l);
}

/* POST /api/hazards: record a hazard found on an inspection. */
static void hazard_open_then(struct gw_web *web, struct gw_http_request *req,
                             const struct gw_auth_identity *who)
{
    execute(web, req, who, GW_HAZARD_CMD_PREFIX "open", NULL, NULL);
}

/* POST /api/hazards/<id>/<update|rectifying|close|reopen> */
static void hazard_action_then(struct gw_web *web, struct gw_http_request *req,
                               const struct gw_auth_identity *who)
{
    const char *slash = strrchr(req->subpath, '/');
    char id[GW_HZ_ID_MAX];
    size_t len = slash ? (size_t)(slash - req->subpath) : 0;
    if (!slash || len == 0 || len >= sizeof(id) || memchr(req->subpath, '/', len)) {
        gw_http_respond_error(req, 404, "POST /api/hazards/<id>/<update|rectifying|close|reopen>");
        return;
    }
    memcpy(id, req->subpath, len);
    id[len] = '\0';
    static const char *const verbs[] = {"update", "rectifying", "close", "reopen"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(slash + 1, verbs[i]) == 0) {
            char name[32];
            snprintf(name, sizeof(name), GW_HAZARD_CMD_PREFIX "%s", verbs[i]);
            execute(web, req, who, name, "hazard", id);
            return;
        }
    }
    gw_http_respond_error(req, 404, "unknown action (update, rectifying, close, reopen)");
}

static void on_hazards(void *ctx, struct gw_http_request *req)
{
    bool post = strcmp(req->method, "POST") == 0;
    with_identity(ctx, req, post ? GW_AUTH_ACT : GW_AUTH_READ,
                  post ? hazard_open_then : hazards_then);
}

static void on_hazard(void *ctx, struct gw_http_request *req)
{
    bool post = strcmp(req->method, "POST") == 0;
    with_identity(ctx, req, post ? GW_AUTH_ACT : GW_AUTH_READ,
                  post ? hazard_action_then : hazard_then);
}

/* ---- the daily safety log ---- */

/* GET /api/logs/<YYYY-MM-DD>.md|.csv: the day's log as a download. */
/* A daily log download waiting for its build. */
struct log_download {
    struct gw_web *web;
    struct gw_http_request *req;
    char day[11];
    bool csv;
};

static void log_built(void *ctx, char *text, const char *error)
{
    struct log_download *d = ctx;
    struct gw_http_request *req = d->req;
    if (!text) {
        gw_http_respond_error(req, 503, error ? error : "the daily log could not be built");
        free(d);
        return;
    }
    struct gw_http_response *r = gw_http_response_new(200, d->csv ? "text/csv; charset=utf-8"
                                                                  : "text/markdown; charset=utf-8");
    if (!r) {
        free(text);
        free(d);
        gw_http_respond(req, NULL);
        return;
    }
    /* The school's id as a file name: only characters no browser or shell minds. */
    char school[64], disposition[160];
    size_t i = 0;
    for (const char *p = d->web->cfg->site.school; *p && i + 1 < sizeof(school); p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.';
        school[i++] = plain ? *p : '_';
    }
    school[i] = '\0';
    snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s%s%s.%s\"", school,
             i ? "-" : "", d->day, d->csv ? "csv" : "md");
    gw_http_response_add_header(r, "Content-Disposition", disposition);
    gw_http_response_add_header(r, "Cache-Control", "no-store");
    gw_http_response_take_body(r, text, strlen(text));
    gw_http_respond(req, r);
    free(d);
}

static void log_then(struct gw_web *web, struct gw_http_request *req,
                     const struct gw_auth_identity *who)
{
    (void)who;
    char day[11], today[11];
    bool csv;
    int64_t start, end;
    if (!gw_api_log_name(req->subpath, day, &csv) ||
        gw_daily_log_day_bounds(day, &start, &end) != 0) {
        gw_http_respond_error(req, 404, "GET /api/logs/<YYYY-MM-DD>.md or .csv");
        return;
    }
    if (gw_daily_log_date(now_ms(), today) == 0 && strcmp(day, today) > 0) {
        char msg[80];
        snprintf(msg, sizeof(msg), "%s is in the future (today is %s)", day, today);
        gw_http_respond_error(req, 404, msg);
        return;
    }
    struct log_download *d = calloc(1, sizeof(*d));
    if (!d) {
        gw_http_respond(req, NULL);
        return;
    }
    d->web = web;
    d->req = req;
    snprintf(d->day, sizeof(d->day), "%s", day);
    d->csv = csv;
    struct gw_daylog *dl = gw_gateway_daylog(web->gw);
    char err[GW_ERR_MAX] = "the daily log is not running";
    /* The store read a page per loop turn, the texts on the thread pool: a long day never holds
     * up an alarm. */
    if (!dl || gw_daylog_render_async(dl, day, csv, log_built, d, err, sizeof(err)) != 0) {
        free(d);
        gw_http_respond_error(req, 503, err);
    }
}

static void on_log(void *ctx, struct gw_http_request *req)
{
    with_identity(ctx, req, GW_AUTH_READ, log_then);
}

/* ---- live updates ---- */

static void stream_then(struct gw_web *web, struct gw_http_request *req,
                        const struct gw_auth_identity *who)
{
    (void)web;
    (void)who;
    gw_http_sse_accept(req);
}

/* GET /api/stream: Server-Sent Events "alarm", "event", "health", "telemetry" (their JSON). */
static void on_stream(void *ctx, struct gw_http_request *req)
{
    with_identity(ctx, req, GW_AUTH_READ, stream_then);
}

/* ---- sessions ---- */

static void me_json(struct gw_web *web, struct gw_http_request *req,
                    const struct gw_auth_identity *who, int status, const char *cookie)
{
    json_t *o = json_pack("{ss ss sb}", "name", who->name, "role",
                          who->role == GW_ROLE_OPERATOR ? "operator" : "viewer", "read_only",
                          who->via == GW_AUTH_VIA_LOOPBACK);
    if (o && who->csrf[0]) {
        json_object_set_new(o, "csrf", json_string(who->csrf));
    }
    json_object_set_new(o, "language", json_string(web->cfg->site.language));
    json_object_set_new(o, "site", json_string(web->cfg->site.name));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) {
        gw_http_respond_error(req, 500, "out of memory");
        return;
    }
    struct gw_http_response *r = gw_http_response_new(status, "application/json; charset=utf-8");
    if (r && cookie) {
        gw_http_response_add_header(r, "Set-Cookie", cookie);
    }
    if (r) {
        gw_http_response_add_header(r, "Cache-Control", "no-store");
        gw_http_response_take_body(r, s, strlen(s));
    } else {
        free(s);
    }
    gw_http_respond(req, r);
}

static void me_then(struct gw_web *web, struct gw_http_request *req,
                    const struct gw_auth_identity *who)
{
    me_json(web, req, who, 200, NULL);
}

static void on_me(void *ctx, struct gw_http_request *req)
{
    with_identity(ctx, req, GW_AUTH_READ, me_then);
}

static void logged_in(struct gw_web *web, struct gw_http_request *req,
                      const struct gw_auth_identity *who)
{
    char cookie[256];
    snprintf(cookie, sizeof(cookie),
             COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", who->session,
             web->cfg->http.session_minutes * 60, req->https ? "; Secure" : "");
    gw_info(MOD, "login user=%s addr=%s", who->name, req->client_addr);
    me_json(web, req, who, 200, cookie);
}

static void on_login(void *ctx, struct gw_http_request *req)
{
    struct gw_web *web = ctx;
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *password = json_string_value(json_object_get(body, "password"));
    struct gw_auth_job *job = NULL;
    int64_t retry = 0;
    enum gw_auth_result r = !name || !password
                                ? GW_AUTH_BAD_REQUEST
                                : gw_auth_login_start(web->auth, name, password, req->client_addr,
                                                      now_ms(), &job, &retry);
    json_decref(body);
    if (r == GW_AUTH_PENDING) {
        start_job(web, req, job, GW_AUTH_READ, logged_in, true);
    } else if (r == GW_AUTH_NO_USERS) {
        gw_http_respond_error(req, 403, "no users are configured: the page is read-only");
    } else {
        respond_denied(req, r, retry);
    }
}

static void on_logout(void *ctx, struct gw_http_request *req)
{
    struct gw_web *web = ctx;
    char cookie[GW_AUTH_SESSION_HEX + 8];
    session_cookie(req->cookie, cookie, sizeof(cookie));
    gw_auth_logout(web->auth, cookie);
    struct gw_http_response *r = gw_http_response_new(200, "application/json");
    gw_http_response_add_header(r, "Set-Cookie",
                                COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    gw_http_response_copy_body(r, "{\"ok\":true}", 11);
    gw_http_respond(req, r);
}

/* ---- the page (gateway/www, embedded by cmake/embed.cmake) ---- */

extern const unsigned char gw_www_index_html[], gw_www_app_js[], gw_www_app_css[],
    gw_www_favicon_svg[];
extern const size_t gw_www_index_html_len, gw_www_app_js_len, gw_www_app_css_len,
    gw_www_favicon_svg_len;

static void add_static_routes(struct gw_http_server *http)
{
    const struct {
        const char *path, *type;
        const unsigned char *data;
        size_t len;
    } assets[] = {
        {"/", "text/html; charset=utf-8", gw_www_index_html, gw_www_index_html_len},
        {"/index.html", "text/html; charset=utf-8", gw_www_index_html, gw_www_index_html_len},
        {"/app.js", "text/javascript; charset=utf-8", gw_www_app_js, gw_www_app_js_len},
        {"/app.css", "text/css; charset=utf-8", gw_www_app_css, gw_www_app_css_len},
        {"/favicon.svg", "image/svg+xml", gw_www_favicon_svg, gw_www_favicon_svg_len},
    };
    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
        if (gw_http_static(http, assets[i].path, assets[i].type, assets[i].data, assets[i].len) !=
            0) {
            gw_error(MOD, "cannot register page asset %s", assets[i].path);
        }
    }
}

/* ---- life cycle ---- */

struct gw_web *gw_web_new(uv_loop_t *loop, struct gw_gateway *gw, const struct gw_config *cfg)
{
    if (cfg->http.line == 0) {
        return NULL; /* no http section: no page */
    }
    struct gw_web *web = calloc(1, sizeof(*web));
    if (!web) {
        return NULL;
    }
    web->loop = loop;
    web->gw = gw;
    web->cfg = cfg;
    web->auth = gw_auth_new(&cfg->http);
    struct gw_http_server_options opt = {
        .host = cfg->http.listen_host,
        .port = cfg->http.listen_port,
        .cert_file = cfg->http.cert_file,
        .key_file = cfg->http.key_file,
    };
    web->http = web->auth ? gw_http_new(loop, &opt) : NULL;
    if (!web->http) {
        gw_auth_free(web->auth);
        free(web);
        return NULL;
    }
    struct {
        const char *method, *path;
        gw_http_handler_fn fn;
    } routes[] = {
        {"GET", "/healthz", on_healthz},     {"GET", "/metrics", on_metrics},
        {"GET", "/api/sensors", on_sensors}, {NULL, "/api/sensors/...", on_sensor},
        {"GET", "/api/alarms", on_alarms},   {NULL, "/api/alarms/...", on_alarm},
        {"GET", "/api/events", on_events},   {"GET", "/api/me", on_me},
        {"POST", "/api/login", on_login},    {"POST", "/api/logout", on_logout},
        {NULL, "/api/hazards", on_hazards},  {NULL, "/api/hazards/...", on_hazard},
        {"GET", "/api/logs/...", on_log},
    };
    add_static_routes(web->http);
    if (gw_http_sse(web->http, "/api/stream", on_stream, web) != 0) {
        gw_error(MOD, "cannot register the event stream");
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (gw_http_route(web->http, routes[i].method, routes[i].path, routes[i].fn, web) != 0) {
            gw_error(MOD, "cannot register route %s", routes[i].path);
        }
    }
    return web;
}

int gw_web_start(struct gw_web *web)
{
    int rc = gw_http_start(web->http);
    if (rc == 0) {
        gw_info(MOD, "listening %s://%s:%d users=%d%s", web->cfg->http.cert_file ? "https" : "http",
                web->cfg->http.listen_host, gw_http_port(web->http), web->cfg->http.nusers,
                web->cfg->http.nusers == 0 ? " (read-only, loopback only)" : "");
    }
    return rc;
}

bool gw_web_listening(const struct gw_web *web)
{
    if (!web || web->closing) {
        return false;
    }
    struct gw_http_stats st;
    gw_http_stats(web->http, &st);
    return st.sse_clients > 0;
}

void gw_web_push(struct gw_web *web, const char *event, const char *json)
{
    if (web && !web->closing) {
        gw_http_sse_broadcast(web->http, event, json);
    }
}

void gw_web_reload(struct gw_web *web, const struct gw_config *cfg)
{
    if (!web) {
        return;
    }
    web->cfg = cfg;
    if (gw_auth_reload(web->auth, &cfg->http) != 0) {
        gw_error(MOD, "reload: users unchanged (out of memory)");
    }
}

static void maybe_closed(struct gw_web *web)
{
    if (!web->closing || web->jobs > 0 || web->http) {
        return;
    }
    void (*closed)(void *ctx) = web->closed;
    void *ctx = web->closed_ctx;
    gw_auth_free(web->auth);
    free(web);
    if (closed) {
        closed(ctx);
    }
}

static void on_http_closed(void *ctx)
{
    struct gw_web *web = ctx;
    web->http = NULL;
    maybe_closed(web);
}

void gw_web_close(struct gw_web *web, void (*closed)(void *ctx), void *ctx)
{
    web->closing = true;
    web->closed = closed;
    web->closed_ctx = ctx;
    gw_http_close(web->http, on_http_closed, web);
}
