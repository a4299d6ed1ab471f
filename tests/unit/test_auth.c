/*
 * gateway/auth.c with virtual time: logins, the per-address rate limiter
 * and its edges, sessions (sliding expiry, logout, eviction), CSRF, roles,
 * bearer tokens and their cache, reloads, the no-users mode, and a job run
 * on another thread as the HTTP server will run it. The hashes are real
 * Argon2id, made with libsodium's minimum cost so the tests stay fast.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "auth.h"

#define MIN_MS (60 * 1000LL)
#define T0 1000000000LL /* any start: the clock is virtual */

#define WANG_PW "correct horse battery"
#define LI_PW "li-password-1"
#define LI_TOKEN "tok-li-0123456789abcdef0123"
#define ZHAO_TOKEN "tok-zhao-fedcba9876543210"
#define ADDR "192.0.2.10"

static char wang_hash[crypto_pwhash_STRBYTES];
static char li_hash[crypto_pwhash_STRBYTES];
static char li_token_hash[crypto_pwhash_STRBYTES];
static char zhao_hash[crypto_pwhash_STRBYTES];
static char zhao_token_hash[crypto_pwhash_STRBYTES];

static void fast_hash(const char *secret, char *out)
{
    assert_int_equal(gw_auth_hash(secret, strlen(secret), crypto_pwhash_OPSLIMIT_MIN,
                                  crypto_pwhash_MEMLIMIT_MIN, out),
                     0);
}

static int setup_hashes(void **state)
{
    (void)state;
    if (sodium_init() < 0) {
        return -1;
    }
    fast_hash(WANG_PW, wang_hash);
    fast_hash(LI_PW, li_hash);
    fast_hash(LI_TOKEN, li_token_hash);
    fast_hash("zhao-password", zhao_hash);
    fast_hash(ZHAO_TOKEN, zhao_token_hash);
    return 0;
}

/* wang: operator; li: viewer with a token; zhao: operator with a token. */
static struct gw_http_user_cfg users3[3];

static struct gw_http_cfg http_cfg(int nusers, int session_minutes)
{
    users3[0] = (struct gw_http_user_cfg){"wang", GW_ROLE_OPERATOR, wang_hash, NULL, 1};
    users3[1] = (struct gw_http_user_cfg){"li", GW_ROLE_VIEWER, li_hash, li_token_hash, 2};
    users3[2] = (struct gw_http_user_cfg){"zhao", GW_ROLE_OPERATOR, zhao_hash, zhao_token_hash, 3};
    struct gw_http_cfg h = {.listen_host = "127.0.0.1",
                            .listen_port = 8080,
                            .loopback = true,
                            .session_minutes = session_minutes,
                            .nusers = nusers,
                            .users = nusers ? users3 : NULL};
    return h;
}

static struct gw_auth *auth3(void)
{
    struct gw_http_cfg h = http_cfg(3, 480);
    struct gw_auth *a = gw_auth_new(&h);
    assert_non_null(a);
    return a;
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64) {
        return false;
    }
    for (const char *c = s; *c; c++) {
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) {
            return false;
        }
    }
    return true;
}

static enum gw_auth_result login(struct gw_auth *a, const char *name, const char *pw,
                                 const char *addr, int64_t now, struct gw_auth_identity *who)
{
    int64_t retry = -1;
    enum gw_auth_result r = gw_auth_login(a, name, pw, addr, now, who, &retry);
    if (r != GW_AUTH_RATE_LIMITED && r != GW_AUTH_BUSY) {
        assert_int_equal(retry, 0);
    }
    return r;
}

/* n failed logins from addr at now. */
static void fail_n(struct gw_auth *a, const char *addr, int n, int64_t now)
{
    struct gw_auth_identity who;
    for (int i = 0; i < n; i++) {
        assert_int_equal(login(a, "wang", "wrong", addr, now, &who), GW_AUTH_DENIED);
    }
}

/* Would a check from addr be admitted now? Asks, then cancels: nothing is counted. */
static bool admitted(struct gw_auth *a, const char *addr, int64_t now)
{
    struct gw_auth_job *job = NULL;
    struct gw_auth_identity who;
    if (gw_auth_login_start(a, "wang", "wrong", addr, now, &job, NULL) != GW_AUTH_PENDING) {
        return false;
    }
    assert_int_equal(gw_auth_job_finish(a, job, now, &who), GW_AUTH_DENIED);
    return true;
}

/* ---- login ------------------------------------------------------------- */

static void test_login_ok(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    assert_true(gw_auth_has_users(a));
    struct gw_auth_identity who;
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, T0, &who), GW_AUTH_OK);
    assert_int_equal(who.via, GW_AUTH_VIA_SESSION);
    assert_string_equal(who.name, "wang");
    assert_int_equal(who.role, GW_ROLE_OPERATOR);
    assert_true(is_hex64(who.session));
    assert_true(is_hex64(who.csrf));
    assert_string_not_equal(who.session, who.csrf);
    assert_int_equal(gw_auth_session_count(a, T0), 1);

    struct gw_auth_identity s;
    assert_int_equal(gw_auth_session(a, who.session, T0 + 1, &s), GW_AUTH_OK);
    assert_int_equal(s.via, GW_AUTH_VIA_SESSION);
    assert_string_equal(s.name, "wang");
    assert_int_equal(s.role, GW_ROLE_OPERATOR);
    assert_string_equal(s.csrf, who.csrf);
    assert_string_equal(s.session, ""); /* only a login hands out the cookie value */

    /* a second login is a second session, with its own id and CSRF token */
    struct gw_auth_identity who2;
    assert_int_equal(login(a, "li", LI_PW, "2001:db8::5", T0 + 2, &who2), GW_AUTH_OK);
    assert_string_equal(who2.name, "li");
    assert_int_equal(who2.role, GW_ROLE_VIEWER);
    assert_string_not_equal(who2.session, who.session);
    assert_string_not_equal(who2.csrf, who.csrf);
    assert_int_equal(gw_auth_session_count(a, T0 + 2), 2);
    assert_int_equal(gw_auth_session(a, who2.session, T0 + 3, &s), GW_AUTH_OK);
    assert_string_equal(s.name, "li");
    gw_auth_free(a);
}

static void test_login_bad(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity who;
    memset(&who, 0x5a, sizeof(who));
    assert_int_equal(login(a, "wang", "wrong", ADDR, T0, &who), GW_AUTH_DENIED);
    assert_int_equal(((unsigned char *)&who)[0], 0x5a); /* untouched on failure */
    assert_int_equal(login(a, "wang", WANG_PW "x", "10.0.0.2", T0, &who), GW_AUTH_DENIED);
    assert_int_equal(login(a, "Wang", WANG_PW, "10.0.0.3", T0, &who), GW_AUTH_DENIED);
    /* an unknown name is checked against a real hash: even that hash's password fails */
    assert_int_equal(login(a, "nobody", WANG_PW, "10.0.0.4", T0, &who), GW_AUTH_DENIED);
    assert_int_equal(login(a, "li", WANG_PW, "10.0.0.5", T0, &who), GW_AUTH_DENIED);
    /* a token is not a password */
    assert_int_equal(login(a, "li", LI_TOKEN, "10.0.0.6", T0, &who), GW_AUTH_DENIED);
    assert_int_equal(gw_auth_session_count(a, T0), 0);

    /* malformed input costs no hashing and counts nothing */
    char big[GW_AUTH_PASSWORD_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(login(a, "wang", big, ADDR, T0, &who), GW_AUTH_BAD_REQUEST);
    big[GW_AUTH_PASSWORD_MAX] = '\0'; /* the longest allowed: checked, and wrong */
    assert_int_equal(login(a, "wang", big, "10.0.0.7", T0, &who), GW_AUTH_DENIED);
    assert_int_equal(login(a, "", WANG_PW, ADDR, T0, &who), GW_AUTH_BAD_REQUEST);
    assert_int_equal(login(a, NULL, WANG_PW, ADDR, T0, &who), GW_AUTH_BAD_REQUEST);
    assert_int_equal(login(a, "wang", "", ADDR, T0, &who), GW_AUTH_BAD_REQUEST);
    assert_int_equal(login(a, "wang", NULL, ADDR, T0, &who), GW_AUTH_BAD_REQUEST);
    assert_int_equal(
        login(a, "a23456789012345678901234567890123456789012345678", WANG_PW, ADDR, T0, &who),
        GW_AUTH_BAD_REQUEST);
    assert_int_equal(login(a, "wang", WANG_PW, "not-an-address", T0, &who), GW_AUTH_BAD_REQUEST);
    assert_int_equal(login(a, "wang", WANG_PW, "192.0.2.10:8080", T0, &who), GW_AUTH_BAD_REQUEST);
    assert_int_equal(login(a, "wang", WANG_PW, NULL, T0, &who), GW_AUTH_BAD_REQUEST);
    /* ADDR failed once above: four more would lock it, so three leave it open */
    fail_n(a, ADDR, 3, T0);
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, T0, &who), GW_AUTH_OK);
    gw_auth_free(a);

    /* no users: nobody logs in */
    struct gw_http_cfg h = http_cfg(0, 480);
    a = gw_auth_new(&h);
    assert_non_null(a);
    assert_false(gw_auth_has_users(a));
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, T0, &who), GW_AUTH_NO_USERS);
    gw_auth_free(a);
}

/* ---- rate limiting ----------------------------------------------------- */

static void test_rate_limit_lockout(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity who;
    int64_t retry = -1;
    /* four failures leave the address open */
    fail_n(a, ADDR, GW_AUTH_MAX_FAILURES - 1, T0);
    /* the fifth locks it for 15 minutes: even the right password is refused, unchecked */
    assert_int_equal(login(a, "wang", "wrong", ADDR, T0 + 1000, &who), GW_AUTH_DENIED);
    int64_t until = T0 + 1000 + GW_AUTH_LOCKOUT_MS;
    assert_int_equal(gw_auth_login(a, "wang", WANG_PW, ADDR, T0 + 2000, &who, &retry),
                     GW_AUTH_RATE_LIMITED);
    assert_int_equal(retry, until - (T0 + 2000));
    assert_int_equal(gw_auth_login(a, "wang", WANG_PW, ADDR, until - 1, &who, &retry),
                     GW_AUTH_RATE_LIMITED);
    assert_int_equal(retry, 1);
    /* refusals while locked are not failures: the lockout does not grow */
    assert_int_equal(gw_auth_login(a, "wang", WANG_PW, ADDR, until - 1, &who, &retry),
                     GW_AUTH_RATE_LIMITED);
    assert_int_equal(retry, 1);
    /* other addresses are not affected */
    assert_int_equal(login(a, "wang", WANG_PW, "192.0.2.11", T0 + 2000, &who), GW_AUTH_OK);
    /* at the end of the lockout it opens; the count starts over */
    assert_int_equal(login(a, "wang", "wrong", ADDR, until, &who), GW_AUTH_DENIED);
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, until + 1, &who), GW_AUTH_OK);
    gw_auth_free(a);
}

static void test_rate_limit_window(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity who;
    int64_t retry = -1;
    /* five failures spread over exactly 15 minutes: the first is out of the window */
    fail_n(a, ADDR, 1, T0);
    fail_n(a, ADDR, 3, T0 + 5 * MIN_MS);
    fail_n(a, ADDR, 1, T0 + GW_AUTH_FAILURE_WINDOW_MS);
    assert_true(admitted(a, ADDR, T0 + GW_AUTH_FAILURE_WINDOW_MS));
    assert_true(admitted(a, ADDR, T0 + GW_AUTH_FAILURE_WINDOW_MS)); /* cancelled: not counted */
    fail_n(a, "192.0.2.12", 1, T0);
    fail_n(a, "192.0.2.12", 3, T0 + 5 * MIN_MS);
    /* ... and one millisecond less: five within the window lock */
    fail_n(a, "192.0.2.12", 1, T0 + GW_AUTH_FAILURE_WINDOW_MS - 1);
    assert_int_equal(gw_auth_login(a, "wang", WANG_PW, "192.0.2.12",
                                   T0 + GW_AUTH_FAILURE_WINDOW_MS - 1, &who, &retry),
                     GW_AUTH_RATE_LIMITED);
    assert_int_equal(retry, GW_AUTH_LOCKOUT_MS);
    /* the first address: four within the window now (5, 5, 5, 15 min) */
    fail_n(a, ADDR, 1, T0 + 19 * MIN_MS);
    assert_int_equal(gw_auth_login(a, "wang", WANG_PW, ADDR, T0 + 19 * MIN_MS, &who, &retry),
                     GW_AUTH_RATE_LIMITED);
    /* a success clears the count: 4 failures, success, 4 failures stay open */
    fail_n(a, "192.0.2.13", 4, T0);
    assert_int_equal(login(a, "wang", WANG_PW, "192.0.2.13", T0, &who), GW_AUTH_OK);
    fail_n(a, "192.0.2.13", 4, T0);
    assert_int_equal(login(a, "wang", WANG_PW, "192.0.2.13", T0, &who), GW_AUTH_OK);
    gw_auth_free(a);
}

static void test_rate_limit_doubling(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity who;
    int64_t retry = -1;
    int64_t now = T0;
    int64_t want = GW_AUTH_LOCKOUT_MS;
    for (int i = 0; i < 10; i++) {
        fail_n(a, ADDR, GW_AUTH_MAX_FAILURES, now);
        assert_int_equal(gw_auth_login(a, "wang", WANG_PW, ADDR, now, &who, &retry),
                         GW_AUTH_RATE_LIMITED);
        assert_int_equal(retry, want); /* 15, 30, 60 ... min, then a day at most */
        now += retry;
        want = want * 2 < GW_AUTH_LOCKOUT_MAX_MS ? want * 2 : GW_AUTH_LOCKOUT_MAX_MS;
    }
    assert_int_equal(retry, GW_AUTH_LOCKOUT_MAX_MS);
    /* a day without failures after the last lockout: the address starts over */
    now += GW_AUTH_FORGET_MS - 1;
    fail_n(a, ADDR, GW_AUTH_MAX_FAILURES, now);
    assert_int_equal(gw_auth_login(a, "wang", WANG_PW, ADDR, now, &who, &retry),
                     GW_AUTH_RATE_LIMITED);
    assert_int_equal(retry, GW_AUTH_LOCKOUT_MAX_MS); /* one ms short of a day: still doubled */
    now += retry + GW_AUTH_FORGET_MS;
    fail_n(a, ADDR, GW_AUTH_MAX_FAILURES, now);
    assert_int_equal(gw_auth_login(a, "wang", WANG_PW, ADDR, now, &who, &retry),
                     GW_AUTH_RATE_LIMITED);
    assert_int_equal(retry, GW_AUTH_LOCKOUT_MS);
    /* a success ends the doubling too */
    now += retry;
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, now, &who), GW_AUTH_OK);
    fail_n(a, ADDR, GW_AUTH_MAX_FAILURES, now);
    assert_int_equal(gw_auth_login(a, "wang", WANG_PW, ADDR, now, &who, &retry),
                     GW_AUTH_RATE_LIMITED);
    assert_int_equal(retry, GW_AUTH_LOCKOUT_MS);
    gw_auth_free(a);
}

/* IPv4 as itself or mapped into IPv6 is one address; IPv6 counts per /64. */
static void test_rate_limit_addresses(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity who;
    fail_n(a, "10.1.2.3", 2, T0);
    fail_n(a, "::ffff:10.1.2.3", 3, T0);
    assert_int_equal(login(a, "wang", WANG_PW, "10.1.2.3", T0, &who), GW_AUTH_RATE_LIMITED);
    assert_int_equal(login(a, "wang", WANG_PW, "10.1.2.4", T0, &who), GW_AUTH_OK);

    fail_n(a, "2001:db8:0:1::1", 2, T0);
    fail_n(a, "2001:db8:0:1:ffff:ffff:ffff:ffff", 3, T0);
    assert_int_equal(login(a, "wang", WANG_PW, "2001:db8:0:1::abcd", T0, &who),
                     GW_AUTH_RATE_LIMITED);
    assert_int_equal(login(a, "wang", WANG_PW, "2001:db8:0:2::1", T0, &who), GW_AUTH_OK);
    gw_auth_free(a);
}

/* Checks in flight: at most GW_AUTH_MAX_VERIFYING, and they count against their address. */
static void test_in_flight(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity who;
    struct gw_auth_job *jobs[GW_AUTH_MAX_VERIFYING];
    int64_t retry = -1;
    char addr[32];
    for (int i = 0; i < GW_AUTH_MAX_VERIFYING; i++) {
        snprintf(addr, sizeof(addr), "10.9.0.%d", i + 1);
        assert_int_equal(gw_auth_login_start(a, "wang", WANG_PW, addr, T0, &jobs[i], &retry),
                         GW_AUTH_PENDING);
        assert_non_null(jobs[i]);
    }
    struct gw_auth_job *job = (struct gw_auth_job *)&who; /* must be reset to NULL */
    assert_int_equal(gw_auth_login_start(a, "wang", WANG_PW, "10.9.1.1", T0, &job, &retry),
                     GW_AUTH_BUSY);
    assert_null(job);
    assert_int_equal(retry, GW_AUTH_BUSY_RETRY_MS);
    assert_int_equal(
        gw_auth_bearer_start(a, "Bearer " LI_TOKEN, "10.9.1.1", T0, &who, &job, &retry),
        GW_AUTH_BUSY);
    /* a job that never ran (cancelled): denied, nothing counted, its place freed */
    assert_int_equal(gw_auth_job_finish(a, jobs[0], T0, &who), GW_AUTH_DENIED);
    assert_int_equal(gw_auth_login_start(a, "wang", WANG_PW, "10.9.1.1", T0, &job, &retry),
                     GW_AUTH_PENDING);
    gw_auth_job_run(job);
    assert_int_equal(gw_auth_job_finish(a, job, T0, &who), GW_AUTH_OK);
    for (int i = 1; i < GW_AUTH_MAX_VERIFYING; i++) {
        gw_auth_job_run(jobs[i]);
        assert_int_equal(gw_auth_job_finish(a, jobs[i], T0, &who), GW_AUTH_OK);
    }
    /* cancelled jobs are not failures: 10.9.0.1 can still fail four times and log in */
    fail_n(a, "10.9.0.1", 4, T0);
    assert_int_equal(login(a, "wang", WANG_PW, "10.9.0.1", T0, &who), GW_AUTH_OK);

    /* one address: four failures and one check in flight leave no room for another */
    fail_n(a, ADDR, 4, T0);
    assert_int_equal(gw_auth_login_start(a, "wang", "wrong", ADDR, T0, &jobs[0], &retry),
                     GW_AUTH_PENDING);
    assert_int_equal(gw_auth_login_start(a, "wang", WANG_PW, ADDR, T0, &job, &retry), GW_AUTH_BUSY);
    assert_int_equal(retry, GW_AUTH_BUSY_RETRY_MS);
    gw_auth_job_run(jobs[0]);
    assert_int_equal(gw_auth_job_finish(a, jobs[0], T0, &who), GW_AUTH_DENIED);
    assert_int_equal(gw_auth_login_start(a, "wang", WANG_PW, ADDR, T0, &job, &retry),
                     GW_AUTH_RATE_LIMITED);
    assert_int_equal(retry, GW_AUTH_LOCKOUT_MS);
    /* shutdown: a started job can be freed without finishing */
    assert_int_equal(gw_auth_login_start(a, "wang", WANG_PW, "10.9.2.1", T0, &job, &retry),
                     GW_AUTH_PENDING);
    gw_auth_job_free(job);
    gw_auth_job_free(NULL);
    gw_auth_free(a);
}

/* ---- sessions ---------------------------------------------------------- */

static void test_session_expiry(void **state)
{
    (void)state;
    struct gw_http_cfg h = http_cfg(3, 5);
    struct gw_auth *a = gw_auth_new(&h);
    assert_non_null(a);
    const int64_t idle = 5 * MIN_MS;
    struct gw_auth_identity who, s;
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, T0, &who), GW_AUTH_OK);
    /* each use starts the idle time over */
    int64_t t = T0;
    for (int i = 0; i < 3; i++) {
        t += idle - 1;
        assert_int_equal(gw_auth_session(a, who.session, t, &s), GW_AUTH_OK);
        assert_int_equal(gw_auth_session_count(a, t), 1);
    }
    /* idle for exactly session_minutes: gone, and stays gone */
    assert_int_equal(gw_auth_session_count(a, t + idle), 0);
    assert_int_equal(gw_auth_session(a, who.session, t + idle, &s), GW_AUTH_DENIED);
    assert_int_equal(gw_auth_session(a, who.session, t + 1, &s), GW_AUTH_DENIED);
    gw_auth_free(a);
}

static void test_session_lookup_and_logout(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity who, other, s;
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, T0, &who), GW_AUTH_OK);
    assert_int_equal(login(a, "li", LI_PW, ADDR, T0, &other), GW_AUTH_OK);
    /* malformed or unknown cookie values */
    char upper[65];
    for (int i = 0; i < 64; i++) {
        char c = who.session[i];
        upper[i] = (char)(c >= 'a' && c <= 'f' ? c - 'a' + 'A' : c);
    }
    upper[64] = '\0';
    char flipped[65];
    memcpy(flipped, who.session, sizeof(flipped));
    flipped[63] = flipped[63] == '0' ? '1' : '0';
    const char *bad[] = {NULL, "", "abc", upper, flipped, who.csrf};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(gw_auth_session(a, bad[i], T0, &s), GW_AUTH_DENIED);
        assert_false(gw_auth_logout(a, bad[i]));
    }
    char longer[80];
    snprintf(longer, sizeof(longer), "%s00", who.session);
    assert_int_equal(gw_auth_session(a, longer, T0, &s), GW_AUTH_DENIED);
    /* logout ends that session only */
    assert_true(gw_auth_logout(a, who.session));
    assert_false(gw_auth_logout(a, who.session));
    assert_int_equal(gw_auth_session(a, who.session, T0, &s), GW_AUTH_DENIED);
    assert_int_equal(gw_auth_session(a, other.session, T0, &s), GW_AUTH_OK);
    assert_string_equal(s.name, "li");
    assert_int_equal(gw_auth_session_count(a, T0), 1);
    gw_auth_free(a);
}

/* A full table: the session idle longest ends. */
static void test_session_eviction(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    static struct gw_auth_identity who[GW_AUTH_SESSIONS + 2];
    struct gw_auth_identity s;
    for (int i = 0; i < GW_AUTH_SESSIONS; i++) {
        assert_int_equal(login(a, "wang", WANG_PW, ADDR, T0 + i, &who[i]), GW_AUTH_OK);
    }
    assert_int_equal(gw_auth_session_count(a, T0 + GW_AUTH_SESSIONS), GW_AUTH_SESSIONS);
    /* session 0 is used again: session 1 is now the one idle longest */
    assert_int_equal(gw_auth_session(a, who[0].session, T0 + GW_AUTH_SESSIONS, &s), GW_AUTH_OK);
    assert_int_equal(login(a, "li", LI_PW, ADDR, T0 + GW_AUTH_SESSIONS + 1, &who[GW_AUTH_SESSIONS]),
                     GW_AUTH_OK);
    int64_t t = T0 + GW_AUTH_SESSIONS + 2;
    assert_int_equal(gw_auth_session_count(a, t), GW_AUTH_SESSIONS);
    assert_int_equal(gw_auth_session(a, who[1].session, t, &s), GW_AUTH_DENIED);
    assert_int_equal(gw_auth_session(a, who[0].session, t, &s), GW_AUTH_OK);
    assert_int_equal(gw_auth_session(a, who[2].session, t, &s), GW_AUTH_OK);
    assert_int_equal(gw_auth_session(a, who[GW_AUTH_SESSIONS].session, t, &s), GW_AUTH_OK);
    assert_string_equal(s.name, "li");
    /* expired sessions make room before live ones are ended */
    struct gw_http_cfg h = http_cfg(3, 5);
    gw_auth_free(a);
    a = gw_auth_new(&h);
    assert_non_null(a);
    for (int i = 0; i < GW_AUTH_SESSIONS; i++) {
        assert_int_equal(login(a, "wang", WANG_PW, ADDR, T0 + i * 1000, &who[i]), GW_AUTH_OK);
    }
    t = T0 + 5 * MIN_MS + 500; /* sessions 0 (t 0) expired; 1 (t 1000) still alive */
    assert_int_equal(gw_auth_session_count(a, t), GW_AUTH_SESSIONS - 1);
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, t, &who[GW_AUTH_SESSIONS]), GW_AUTH_OK);
    assert_int_equal(gw_auth_session_count(a, t), GW_AUTH_SESSIONS);
    assert_int_equal(gw_auth_session(a, who[1].session, t, &s), GW_AUTH_OK);
    gw_auth_free(a);
}

/* ---- CSRF and roles ---------------------------------------------------- */

static void test_csrf(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity who, other, s;
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, T0, &who), GW_AUTH_OK);
    assert_int_equal(login(a, "zhao", "zhao-password", ADDR, T0, &other), GW_AUTH_OK);
    assert_int_equal(gw_auth_session(a, who.session, T0, &s), GW_AUTH_OK);
    assert_true(gw_auth_csrf_ok(&s, who.csrf));
    assert_true(gw_auth_csrf_ok(&who, who.csrf));
    char wrong[65];
    memcpy(wrong, who.csrf, sizeof(wrong));
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    assert_false(gw_auth_csrf_ok(&s, wrong));
    memcpy(wrong, who.csrf, sizeof(wrong));
    wrong[63] = wrong[63] == 'a' ? 'b' : 'a';
    assert_false(gw_auth_csrf_ok(&s, wrong));
    wrong[63] = '\0';
    assert_false(gw_auth_csrf_ok(&s, wrong)); /* a prefix */
    char longer[80];
    snprintf(longer, sizeof(longer), "%sa", who.csrf);
    assert_false(gw_auth_csrf_ok(&s, longer));
    assert_false(gw_auth_csrf_ok(&s, other.csrf)); /* another session's */
    assert_false(gw_auth_csrf_ok(&s, who.session));
    assert_false(gw_auth_csrf_ok(&s, ""));
    assert_false(gw_auth_csrf_ok(&s, NULL));
    assert_false(gw_auth_csrf_ok(NULL, who.csrf));
    /* an identity without a CSRF token never passes, even with an empty one */
    struct gw_auth_identity blank = s;
    blank.csrf[0] = '\0';
    assert_false(gw_auth_csrf_ok(&blank, ""));
    /* bearer tokens need none; anonymous clients never pass */
    struct gw_auth_identity tok;
    assert_int_equal(gw_auth_bearer(a, "Bearer " ZHAO_TOKEN, ADDR, T0, &tok, NULL), GW_AUTH_OK);
    assert_true(gw_auth_csrf_ok(&tok, NULL));
    struct gw_auth_identity anon = {.via = GW_AUTH_VIA_LOOPBACK};
    assert_false(gw_auth_csrf_ok(&anon, ""));
    assert_false(gw_auth_csrf_ok(&anon, who.csrf));
    gw_auth_free(a);
}

static void test_roles(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity op, viewer, tok_viewer, tok_op;
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, T0, &op), GW_AUTH_OK);
    assert_int_equal(login(a, "li", LI_PW, ADDR, T0, &viewer), GW_AUTH_OK);
    assert_int_equal(gw_auth_bearer(a, "Bearer " LI_TOKEN, ADDR, T0, &tok_viewer, NULL),
                     GW_AUTH_OK);
    assert_int_equal(gw_auth_bearer(a, "Bearer " ZHAO_TOKEN, ADDR, T0, &tok_op, NULL), GW_AUTH_OK);
    assert_true(gw_auth_allows(&op, GW_AUTH_READ));
    assert_true(gw_auth_allows(&op, GW_AUTH_ACT));
    assert_true(gw_auth_allows(&viewer, GW_AUTH_READ));
    assert_false(gw_auth_allows(&viewer, GW_AUTH_ACT));
    assert_true(gw_auth_allows(&tok_viewer, GW_AUTH_READ));
    assert_false(gw_auth_allows(&tok_viewer, GW_AUTH_ACT));
    assert_true(gw_auth_allows(&tok_op, GW_AUTH_ACT));
    assert_false(gw_auth_allows(NULL, GW_AUTH_READ));
    gw_auth_free(a);

    /* no users: loopback clients read, never act */
    struct gw_http_cfg h = http_cfg(0, 480);
    a = gw_auth_new(&h);
    assert_non_null(a);
    struct gw_auth_identity anon;
    assert_int_equal(gw_auth_anonymous(a, "127.0.0.1", &anon), GW_AUTH_OK);
    assert_int_equal(anon.via, GW_AUTH_VIA_LOOPBACK);
    assert_string_equal(anon.name, "");
    assert_true(gw_auth_allows(&anon, GW_AUTH_READ));
    assert_false(gw_auth_allows(&anon, GW_AUTH_ACT));
    anon.role = GW_ROLE_OPERATOR; /* even if someone sets it */
    assert_false(gw_auth_allows(&anon, GW_AUTH_ACT));
    gw_auth_free(a);
}

/* No users: read-only, and only for loopback clients. With users, never anonymous. */
static void test_anonymous(void **state)
{
    (void)state;
    struct gw_http_cfg h = http_cfg(0, 480);
    struct gw_auth *a = gw_auth_new(&h);
    assert_non_null(a);
    struct gw_auth_identity who;
    const char *loop[] = {"127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"};
    for (size_t i = 0; i < sizeof(loop) / sizeof(loop[0]); i++) {
        assert_int_equal(gw_auth_anonymous(a, loop[i], &who), GW_AUTH_OK);
    }
    const char *away[] = {"10.0.0.1", "128.0.0.1", "::2", "::", "::ffff:10.0.0.1",
                          "fe80::1",  "localhost", "",    NULL};
    for (size_t i = 0; i < sizeof(away) / sizeof(away[0]); i++) {
        assert_int_equal(gw_auth_anonymous(a, away[i], &who), GW_AUTH_DENIED);
    }
    assert_int_equal(gw_auth_bearer(a, "Bearer " LI_TOKEN, "127.0.0.1", T0, &who, NULL),
                     GW_AUTH_DENIED);
    gw_auth_free(a);
    a = auth3();
    assert_int_equal(gw_auth_anonymous(a, "127.0.0.1", &who), GW_AUTH_DENIED);
    gw_auth_free(a);
}

/* ---- bearer tokens ----------------------------------------------------- */

static void test_bearer(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity who;
    struct gw_auth_job *job = NULL;
    int64_t retry = -1;
    /* the first use is checked (a job), then cached for a minute */
    assert_int_equal(gw_auth_bearer_start(a, "Bearer " LI_TOKEN, ADDR, T0, &who, &job, &retry),
                     GW_AUTH_PENDING);
    assert_non_null(job);
    gw_auth_job_run(job);
    assert_int_equal(gw_auth_job_finish(a, job, T0, &who), GW_AUTH_OK);
    assert_int_equal(who.via, GW_AUTH_VIA_TOKEN);
    assert_string_equal(who.name, "li");
    assert_int_equal(who.role, GW_ROLE_VIEWER);
    assert_string_equal(who.session, "");
    assert_string_equal(who.csrf, "");
    memset(&who, 0, sizeof(who));
    const int64_t last = T0 + GW_AUTH_TOKEN_CACHE_MS - 1;
    assert_int_equal(gw_auth_bearer_start(a, "Bearer " LI_TOKEN, ADDR, last, &who, &job, &retry),
                     GW_AUTH_OK);
    assert_null(job);
    assert_string_equal(who.name, "li");
    /* the scheme is case-insensitive; spaces around the token are fine */
    assert_int_equal(
        gw_auth_bearer_start(a, "bearer   " LI_TOKEN "  ", ADDR, last, &who, &job, &retry),
        GW_AUTH_OK);
    assert_int_equal(gw_auth_bearer_start(a, "BEARER " LI_TOKEN, ADDR, last, &who, &job, &retry),
                     GW_AUTH_OK);
    /* a minute after the check: checked again */
    assert_int_equal(
        gw_auth_bearer_start(a, "Bearer " LI_TOKEN, ADDR, last + 1, &who, &job, &retry),
        GW_AUTH_PENDING);
    gw_auth_job_run(job);
    assert_int_equal(gw_auth_job_finish(a, job, last + 1, &who), GW_AUTH_OK);
    /* the other user's token names the other user */
    assert_int_equal(gw_auth_bearer(a, "Bearer " ZHAO_TOKEN, ADDR, T0, &who, &retry), GW_AUTH_OK);
    assert_string_equal(who.name, "zhao");
    assert_int_equal(who.role, GW_ROLE_OPERATOR);

    /* malformed: denied at once, no job, nothing counted */
    const char *bad[] = {NULL,
                         "",
                         "Bearer",
                         "Bearer ",
                         "Basic " LI_TOKEN,
                         LI_TOKEN,
                         "Bearer short",
                         "Bearer tok-li-0123 456789abcdef0123",
                         "Bearer tok-li-0123456789abcdef\x7f",
                         "Bearer tok-li-0123456789abcdef\t0123"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        job = (struct gw_auth_job *)&who;
        assert_int_equal(gw_auth_bearer_start(a, bad[i], ADDR, T0, &who, &job, &retry),
                         GW_AUTH_DENIED);
        assert_null(job);
    }
    char huge[GW_AUTH_TOKEN_MAX + 16];
    snprintf(huge, sizeof(huge), "Bearer %0*d", GW_AUTH_TOKEN_MAX + 1, 7);
    assert_int_equal(gw_auth_bearer_start(a, huge, ADDR, T0, &who, &job, &retry), GW_AUTH_DENIED);
    assert_int_equal(gw_auth_bearer_start(a, "Bearer " LI_TOKEN, "nowhere", T0, &who, &job, &retry),
                     GW_AUTH_BAD_REQUEST);
    /* wrong tokens: checked every time (never cached), and rate-limited like logins */
    for (int i = 0; i < GW_AUTH_MAX_FAILURES; i++) {
        assert_int_equal(gw_auth_bearer_start(a, "Bearer " LI_PW "-not-a-token", "10.7.7.7", T0,
                                              &who, &job, &retry),
                         GW_AUTH_PENDING);
        gw_auth_job_run(job);
        assert_int_equal(gw_auth_job_finish(a, job, T0, &who), GW_AUTH_DENIED);
    }
    assert_int_equal(gw_auth_bearer_start(a, "Bearer another-token-0123456789", "10.7.7.7", T0,
                                          &who, &job, &retry),
                     GW_AUTH_RATE_LIMITED);
    assert_int_equal(retry, GW_AUTH_LOCKOUT_MS);
    /* ... but a token checked within the minute (zhao's, above) still works from there */
    assert_int_equal(gw_auth_bearer(a, "Bearer " ZHAO_TOKEN, "10.7.7.7", T0, &who, &retry),
                     GW_AUTH_OK);
    assert_string_equal(who.name, "zhao");
    /* and a login from that address is locked out too */
    assert_int_equal(gw_auth_login(a, "wang", WANG_PW, "10.7.7.7", T0, &who, &retry),
                     GW_AUTH_RATE_LIMITED);
    gw_auth_free(a);

    /* nobody has a token_hash: denied without a check */
    struct gw_http_cfg h = http_cfg(1, 480);
    a = gw_auth_new(&h);
    assert_non_null(a);
    assert_int_equal(gw_auth_bearer_start(a, "Bearer " LI_TOKEN, ADDR, T0, &who, &job, &retry),
                     GW_AUTH_DENIED);
    assert_null(job);
    gw_auth_free(a);
}

/* More tokens than the cache holds: the oldest check goes first. */
static void test_token_cache_eviction(void **state)
{
    (void)state;
    enum { N = GW_AUTH_TOKEN_CACHE + 1 };
    static struct gw_http_user_cfg users[N];
    static char names[N][16];
    static char tokens[N][40];
    static char hashes[N][crypto_pwhash_STRBYTES];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "script%d", i);
        snprintf(tokens[i], sizeof(tokens[i]), "Bearer token-%04d-abcdefghijkl", i);
        fast_hash(tokens[i] + 7, hashes[i]);
        users[i] = (struct gw_http_user_cfg){names[i], GW_ROLE_VIEWER, wang_hash, hashes[i], i};
    }
    struct gw_http_cfg h = {.session_minutes = 480, .nusers = N, .users = users};
    struct gw_auth *a = gw_auth_new(&h);
    assert_non_null(a);
    struct gw_auth_identity who;
    struct gw_auth_job *job;
    /* tokens 0..N-2 fill the cache, checked 100 ms apart */
    for (int i = 0; i < N - 1; i++) {
        assert_int_equal(gw_auth_bearer(a, tokens[i], ADDR, T0 + i * 100, &who, NULL), GW_AUTH_OK);
        assert_string_equal(who.name, names[i]);
    }
    /* token 0's minute is over: checked again, it is now the newest entry */
    int64_t t = T0 + GW_AUTH_TOKEN_CACHE_MS + 50;
    assert_int_equal(gw_auth_bearer_start(a, tokens[0], ADDR, t, &who, &job, NULL),
                     GW_AUTH_PENDING);
    gw_auth_job_run(job);
    assert_int_equal(gw_auth_job_finish(a, job, t, &who), GW_AUTH_OK);
    /* the last token finds the cache full: token 1, checked longest ago, makes room */
    assert_int_equal(gw_auth_bearer(a, tokens[N - 1], ADDR, t, &who, NULL), GW_AUTH_OK);
    assert_string_equal(who.name, names[N - 1]);
    assert_int_equal(gw_auth_bearer_start(a, tokens[1], ADDR, t, &who, &job, NULL),
                     GW_AUTH_PENDING);
    gw_auth_job_free(job); /* not finished: its place in flight stays taken, fine here */
    for (int i = 0; i < N; i++) {
        if (i != 1) {
            assert_int_equal(gw_auth_bearer_start(a, tokens[i], ADDR, t, &who, &job, NULL),
                             GW_AUTH_OK);
            assert_string_equal(who.name, names[i]);
        }
    }
    gw_auth_free(a);
}

/* ---- the rate limiter's table ------------------------------------------ */

static void test_address_eviction(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity who;
    char addr[32];
    /* one address locked out, one with four failures, both long ago */
    fail_n(a, "10.200.0.1", GW_AUTH_MAX_FAILURES, T0);
    fail_n(a, "10.200.0.2", GW_AUTH_MAX_FAILURES - 1, T0);
    /* then the table fills with other addresses */
    for (int i = 0; i < GW_AUTH_ADDRS; i++) {
        snprintf(addr, sizeof(addr), "10.%d.%d.9", i / 256, i % 256);
        fail_n(a, addr, 1, T0 + 1 + i);
    }
    int64_t t = T0 + GW_AUTH_ADDRS + 1;
    /* the lockout survived; the idle address with four failures was forgotten */
    assert_int_equal(login(a, "wang", WANG_PW, "10.200.0.1", t, &who), GW_AUTH_RATE_LIMITED);
    fail_n(a, "10.200.0.2", 1, t);
    assert_int_equal(login(a, "wang", WANG_PW, "10.200.0.2", t, &who), GW_AUTH_OK);
    /* the earliest of the others went too: 10.0.0.9 starts over, 10.3.255.9 remembers */
    fail_n(a, "10.3.255.9", GW_AUTH_MAX_FAILURES - 1, t);
    assert_int_equal(login(a, "wang", WANG_PW, "10.3.255.9", t, &who), GW_AUTH_RATE_LIMITED);
    fail_n(a, "10.0.0.9", GW_AUTH_MAX_FAILURES - 1, t);
    assert_int_equal(login(a, "wang", WANG_PW, "10.0.0.9", t, &who), GW_AUTH_OK);
    gw_auth_free(a);
}

/* ---- reload ------------------------------------------------------------ */

static void test_reload(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_identity wang, li, zhao, s;
    assert_int_equal(login(a, "wang", WANG_PW, ADDR, T0, &wang), GW_AUTH_OK);
    assert_int_equal(login(a, "li", LI_PW, ADDR, T0, &li), GW_AUTH_OK);
    assert_int_equal(login(a, "zhao", "zhao-password", ADDR, T0, &zhao), GW_AUTH_OK);
    assert_int_equal(gw_auth_bearer(a, "Bearer " LI_TOKEN, ADDR, T0, &s, NULL), GW_AUTH_OK);
    /* a job started before the reload, for a password that changes */
    struct gw_auth_job *job;
    assert_int_equal(gw_auth_login_start(a, "zhao", "zhao-password", ADDR, T0, &job, NULL),
                     GW_AUTH_PENDING);
    /* and one for a name that is no user yet, with the hash an unknown name is checked on */
    struct gw_auth_job *unknown;
    assert_int_equal(gw_auth_login_start(a, "newbie", WANG_PW, "10.6.6.6", T0, &unknown, NULL),
                     GW_AUTH_PENDING);

    /* li becomes an operator, zhao gets a new password, wang is removed */
    char zhao_new[crypto_pwhash_STRBYTES];
    fast_hash("zhao-new-password", zhao_new);
    struct gw_http_user_cfg users[3] = {
        {"li", GW_ROLE_OPERATOR, li_hash, li_token_hash, 1},
        {"zhao", GW_ROLE_OPERATOR, zhao_new, NULL, 2},
        {"newbie", GW_ROLE_OPERATOR, wang_hash, NULL, 3},
    };
    struct gw_http_cfg h = {.session_minutes = 60, .nusers = 3, .users = users};
    assert_int_equal(gw_auth_reload(a, &h), 0);
    assert_int_equal(gw_auth_session(a, wang.session, T0 + 1, &s), GW_AUTH_DENIED);
    assert_int_equal(gw_auth_session(a, zhao.session, T0 + 1, &s), GW_AUTH_DENIED);
    assert_int_equal(gw_auth_session(a, li.session, T0 + 1, &s), GW_AUTH_OK);
    assert_int_equal(s.role, GW_ROLE_OPERATOR);
    assert_string_equal(s.csrf, li.csrf);
    /* the old password verified against the old hash, which is gone now */
    gw_auth_job_run(job);
    assert_int_equal(gw_auth_job_finish(a, job, T0 + 1, &s), GW_AUTH_DENIED);
    /* the name was unknown when the check started: denied, though the hash now fits */
    gw_auth_job_run(unknown);
    assert_int_equal(gw_auth_job_finish(a, unknown, T0 + 1, &s), GW_AUTH_DENIED);
    assert_int_equal(login(a, "wang", WANG_PW, "10.5.5.5", T0 + 1, &s), GW_AUTH_DENIED);
    assert_int_equal(login(a, "zhao", "zhao-new-password", "10.5.5.5", T0 + 1, &s), GW_AUTH_OK);
    /* the token cache starts empty: checked again */
    assert_int_equal(gw_auth_bearer_start(a, "Bearer " LI_TOKEN, ADDR, T0 + 2, &s, &job, NULL),
                     GW_AUTH_PENDING);
    gw_auth_job_run(job);
    assert_int_equal(gw_auth_job_finish(a, job, T0 + 2, &s), GW_AUTH_OK);
    assert_int_equal(s.role, GW_ROLE_OPERATOR);
    /* zhao's token is gone with the reload */
    assert_int_equal(gw_auth_bearer(a, "Bearer " ZHAO_TOKEN, ADDR, T0 + 2, &s, NULL),
                     GW_AUTH_DENIED);
    /* the new session time: 60 minutes */
    assert_int_equal(gw_auth_session(a, li.session, T0 + 1 + 60 * MIN_MS - 1, &s), GW_AUTH_OK);
    assert_int_equal(gw_auth_session_count(a, T0 + 1 + 120 * MIN_MS), 0);
    /* reloaded to no users: every session ends */
    struct gw_http_cfg none = {.session_minutes = 480};
    assert_int_equal(gw_auth_reload(a, &none), 0);
    assert_false(gw_auth_has_users(a));
    assert_int_equal(gw_auth_session_count(a, T0), 0);
    assert_int_equal(gw_auth_anonymous(a, "::1", &s), GW_AUTH_OK);
    gw_auth_free(a);
}

/* ---- a job on a worker thread, as the HTTP server runs it -------------- */

static void *run_job(void *arg)
{
    gw_auth_job_run(arg);
    return NULL;
}

static void test_job_on_thread(void **state)
{
    (void)state;
    struct gw_auth *a = auth3();
    struct gw_auth_job *job = NULL;
    assert_int_equal(gw_auth_login_start(a, "wang", WANG_PW, ADDR, T0, &job, NULL),
                     GW_AUTH_PENDING);
    struct gw_auth_job *job2 = NULL;
    assert_int_equal(gw_auth_login_start(a, "li", "nope", ADDR, T0, &job2, NULL), GW_AUTH_PENDING);
    pthread_t th, th2;
    assert_int_equal(pthread_create(&th, NULL, run_job, job), 0);
    assert_int_equal(pthread_create(&th2, NULL, run_job, job2), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(pthread_join(th2, NULL), 0);
    struct gw_auth_identity who, s;
    assert_int_equal(gw_auth_job_finish(a, job2, T0 + 400, &who), GW_AUTH_DENIED);
    assert_int_equal(gw_auth_job_finish(a, job, T0 + 400, &who), GW_AUTH_OK);
    assert_string_equal(who.name, "wang");
    assert_int_equal(gw_auth_session(a, who.session, T0 + 500, &s), GW_AUTH_OK);
    gw_auth_free(a);
}

/* The hashes gw_auth_hash makes verify, and the config takes them. */
static void test_hash(void **state)
{
    (void)state;
    char h1[crypto_pwhash_STRBYTES];
    char h2[crypto_pwhash_STRBYTES];
    fast_hash("pässwörd 密码", h1);
    fast_hash("pässwörd 密码", h2);
    assert_int_equal(strncmp(h1, "$argon2id$v=19$", 15), 0);
    assert_string_not_equal(h1, h2); /* salted */
    assert_int_equal(crypto_pwhash_str_verify(h1, "pässwörd 密码", strlen("pässwörd 密码")), 0);
    assert_int_not_equal(crypto_pwhash_str_verify(h1, "pässwörd", strlen("pässwörd")), 0);
    assert_int_not_equal(crypto_pwhash_str_needs_rehash(h1, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                                        crypto_pwhash_MEMLIMIT_INTERACTIVE),
                         -1);
    /* a user with a Chinese password logs in */
    struct gw_http_user_cfg u = {"wang", GW_ROLE_VIEWER, h1, NULL, 1};
    struct gw_http_cfg h = {.session_minutes = 480, .nusers = 1, .users = &u};
    struct gw_auth *a = gw_auth_new(&h);
    assert_non_null(a);
    struct gw_auth_identity who;
    assert_int_equal(login(a, "wang", "pässwörd 密码", ADDR, T0, &who), GW_AUTH_OK);
    gw_auth_free(a);
    gw_auth_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_ok),
        cmocka_unit_test(test_login_bad),
        cmocka_unit_test(test_rate_limit_lockout),
        cmocka_unit_test(test_rate_limit_window),
        cmocka_unit_test(test_rate_limit_doubling),
        cmocka_unit_test(test_rate_limit_addresses),
        cmocka_unit_test(test_in_flight),
        cmocka_unit_test(test_session_expiry),
        cmocka_unit_test(test_session_lookup_and_logout),
        cmocka_unit_test(test_session_eviction),
        cmocka_unit_test(test_csrf),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_anonymous),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_token_cache_eviction),
        cmocka_unit_test(test_address_eviction),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_job_on_thread),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, setup_hashes, NULL);
}
