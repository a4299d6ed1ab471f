/*
 * Who may use the status page and the JSON API (issue 6): users from
 * http.users, login with Argon2id password hashes, sessions with a CSRF
 * token, bearer tokens for scripts, per-address rate limiting of failed
 * logins, and the read-only mode when no users are configured.
 *
 * Pure apart from libsodium and its random source: no I/O, no clock reads
 * (now_ms is passed in; any monotonic millisecond clock, e.g. uv_now), no
 * threads of its own. Everything runs on the caller's (loop) thread except
 * gw_auth_job_run(), the slow Argon2id check (64 MiB, ~0.1 s on a PC and
 * several times that on a Pi, with the hashes `campusgw --hash-password`
 * makes), which touches only its job and is meant for a worker thread
 * (uv_queue_work):
 *
 *     r = gw_auth_login_start(a, name, password, addr, now, &job, &retry_ms);
 *     if (r == GW_AUTH_PENDING)  -> uv_queue_work: gw_auth_job_run(job)
 *                                -> after_work (loop): r = gw_auth_job_finish(a, job, now, &who)
 *
 * gw_auth_job_finish must be called for every started job, also when the
 * work was cancelled (status UV_ECANCELED) or the client went away: it
 * releases the job's place in the rate limiter.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "reading.h"

#define GW_AUTH_SESSION_HEX 64 /* a session id: 256 random bits as lower-case hex */
#define GW_AUTH_CSRF_HEX 64    /* a CSRF token: 256 random bits as lower-case hex */
#define GW_AUTH_PASSWORD_MAX 1024
#define GW_AUTH_TOKEN_MIN 16 /* bearer tokens: printable ASCII, no spaces */
#define GW_AUTH_TOKEN_MAX 256

/* Failed logins (and failed bearer tokens) from one address: GW_AUTH_MAX_FAILURES within
 * GW_AUTH_FAILURE_WINDOW_MS lock the address out for GW_AUTH_LOCKOUT_MS, doubling with every
 * further lockout up to GW_AUTH_LOCKOUT_MAX_MS. A success, or GW_AUTH_FORGET_MS without a
 * failure once any lockout has ended, starts the address over. IPv6 addresses count per /64. */
#define GW_AUTH_MAX_FAILURES 5
#define GW_AUTH_FAILURE_WINDOW_MS (15 * 60 * 1000LL)
#define GW_AUTH_LOCKOUT_MS (15 * 60 * 1000LL)
#define GW_AUTH_LOCKOUT_MAX_MS (24 * 3600 * 1000LL)
#define GW_AUTH_FORGET_MS (24 * 3600 * 1000LL)
#define GW_AUTH_ADDRS 1024     /* addresses tracked; when full the one idle longest is forgotten */
#define GW_AUTH_SESSIONS 256   /* sessions; when full the one idle longest ends */
#define GW_AUTH_TOKEN_CACHE 64 /* bearer tokens verified recently ... */
#define GW_AUTH_TOKEN_CACHE_MS (60 * 1000LL) /* ... are not verified again for this long */
#define GW_AUTH_MAX_VERIFYING 4              /* Argon2id checks in flight at once (64 MiB each) */
#define GW_AUTH_BUSY_RETRY_MS 1000

enum gw_auth_result {
    GW_AUTH_OK,
    GW_AUTH_PENDING,      /* a job was started: run it, then finish it */
    GW_AUTH_DENIED,       /* wrong name, password or token; no or expired session (401) */
    GW_AUTH_RATE_LIMITED, /* this address failed too often: *retry_after_ms (429) */
    GW_AUTH_BUSY,         /* too many checks in flight: *retry_after_ms (503/429) */
    GW_AUTH_BAD_REQUEST,  /* empty or oversized name, password or address (400) */
    GW_AUTH_NO_USERS,     /* no users configured: nobody logs in (the page is read-only) */
    GW_AUTH_NOMEM,
};

enum gw_auth_via {
    GW_AUTH_VIA_SESSION,  /* a session cookie (browser): state changes need the CSRF token */
    GW_AUTH_VIA_TOKEN,    /* Authorization: Bearer (scripts) */
    GW_AUTH_VIA_LOOPBACK, /* no users configured, a loopback client: read-only */
};

enum gw_auth_action {
    GW_AUTH_READ, /* look: pages, GET /api/..., the event stream */
    GW_AUTH_ACT,  /* ack, shelve, unshelve, reset, out of service, in service */
};

struct gw_auth_identity {
    enum gw_auth_via via;
    char name[GW_NAME_MAX];          /* the user ("by" in the alarm history); "" when anonymous */
    enum gw_http_role role;          /* GW_ROLE_VIEWER when anonymous */
    char csrf[GW_AUTH_CSRF_HEX + 1]; /* sessions: the token state changes must carry */
    char session[GW_AUTH_SESSION_HEX + 1]; /* login only: the new session's cookie value */
};

struct gw_auth;
struct gw_auth_job;

/* Users and the session time from http; NULL only when out of memory or libsodium fails. */
struct gw_auth *gw_auth_new(const struct gw_http_cfg *http);
/* Ends every session and wipes what it holds. Finish or free every job first. */
void gw_auth_free(struct gw_auth *a);

/*
 * A reloaded config: the users are replaced. Sessions of a user who is gone,
 * or whose password hash changed, end; a changed role applies at once. The
 * bearer token cache is emptied; the rate limiter keeps its memory.
 * Returns 0 or -ENOMEM (then nothing changed).
 */
int gw_auth_reload(struct gw_auth *a, const struct gw_http_cfg *http);

bool gw_auth_has_users(const struct gw_auth *a);

/*
 * No users configured: a loopback client (127.0.0.0/8, ::1, ::ffff:127.x)
 * may look, read-only. OK with *who filled, else DENIED (users exist: log in;
 * or not loopback). addr is a numeric address as inet_ntop writes it.
 */
enum gw_auth_result gw_auth_anonymous(const struct gw_auth *a, const char *addr,
                                      struct gw_auth_identity *who);

/*
 * Checks the address against the rate limiter and starts a password check:
 * PENDING with *job set, or NO_USERS, BAD_REQUEST, RATE_LIMITED / BUSY (with
 * *retry_after_ms), NOMEM. An unknown name costs the same Argon2id check as a
 * known one, so timing does not tell which names exist.
 */
enum gw_auth_result gw_auth_login_start(struct gw_auth *a, const char *name, const char *password,
                                        const char *addr, int64_t now_ms, struct gw_auth_job **job,
                                        int64_t *retry_after_ms);

/*
 * "Bearer <token>" from an Authorization header: a token verified within the
 * last minute is OK at once (*who filled; the cache is keyed by a keyed
 * BLAKE2b hash of the token, never the token). Otherwise PENDING with *job
 * set, or DENIED (malformed token, no user has a token_hash), RATE_LIMITED /
 * BUSY, NOMEM. `header` is the whole header value; the scheme is
 * case-insensitive.
 */
enum gw_auth_result gw_auth_bearer_start(struct gw_auth *a, const char *header, const char *addr,
                                         int64_t now_ms, struct gw_auth_identity *who,
                                         struct gw_auth_job **job, int64_t *retry_after_ms);

/* The slow part: Argon2id verification. Any thread; touches only the job. */
void gw_auth_job_run(struct gw_auth_job *job);

/*
 * Back on the loop thread: records the outcome and frees the job. A login
 * that verified starts a session: OK with who->session (the cookie value)
 * and who->csrf. A token that verified: OK, cached for a minute. Otherwise
 * DENIED, counted as a failure of the address (not when the job never ran).
 */
enum gw_auth_result gw_auth_job_finish(struct gw_auth *a, struct gw_auth_job *job, int64_t now_ms,
                                       struct gw_auth_identity *who);

/* Frees a job without recording anything (shutdown). NULL is fine. */
void gw_auth_job_free(struct gw_auth_job *job);

/* Convenience for tests and tools: start, run and finish on this thread. */
enum gw_auth_result gw_auth_login(struct gw_auth *a, const char *name, const char *password,
                                  const char *addr, int64_t now_ms, struct gw_auth_identity *who,
                                  int64_t *retry_after_ms);
enum gw_auth_result gw_auth_bearer(struct gw_auth *a, const char *header, const char *addr,
                                   int64_t now_ms, struct gw_auth_identity *who,
                                   int64_t *retry_after_ms);

/*
 * The session of a cookie value: OK with *who filled (no who->session), and
 * its idle time starts over (sliding expiry, http.session_minutes). DENIED
 * for an unknown, malformed or expired session.
 */
enum gw_auth_result gw_auth_session(struct gw_auth *a, const char *cookie, int64_t now_ms,
                                    struct gw_auth_identity *who);

/* Ends the session of a cookie value; false when there was none. */
bool gw_auth_logout(struct gw_auth *a, const char *cookie);

/*
 * A state-changing request's CSRF token (a header or form field) against the
 * session's, in constant time. A bearer identity needs none (a browser never
 * sends the header by itself); an anonymous one never acts.
 */
bool gw_auth_csrf_ok(const struct gw_auth_identity *who, const char *token);

/* Viewers and anonymous loopback clients read; operators read and act. */
bool gw_auth_allows(const struct gw_auth_identity *who, enum gw_auth_action action);

/* Sessions not yet expired at now_ms. */
int gw_auth_session_count(const struct gw_auth *a, int64_t now_ms);

/*
 * An Argon2id hash of secret (password or token) with libsodium's
 * crypto_pwhash_str. opslimit/memlimit: crypto_pwhash_OPSLIMIT_INTERACTIVE
 * and crypto_pwhash_MEMLIMIT_INTERACTIVE (2 passes, 64 MiB) for real use.
 * out holds crypto_pwhash_STRBYTES (128). Returns 0 or -1 (out of memory).
 */
int gw_auth_hash(const char *secret, size_t len, unsigned long long opslimit, size_t memlimit,
                 char *out);

#endif
