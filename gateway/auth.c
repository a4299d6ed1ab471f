/*
 * Users, sessions, CSRF tokens, bearer tokens and login rate limiting. See
 * auth.h. Session ids and tokens are never stored: the tables hold keyed
 * BLAKE2b hashes of them (a per-process random key), compared in constant
 * time, so a memory dump or a timing difference gives nothing to replay.
 */
#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HASH_LEN crypto_generichash_BYTES /* 32 */
#define PWHASH_LEN crypto_pwhash_STRBYTES /* 128, with the NUL */
#define ID_BYTES 32                       /* session ids and CSRF tokens: 256 bits */

struct user {
    char name[GW_NAME_MAX];
    enum gw_http_role role;
    char password_hash[PWHASH_LEN];
    char token_hash[PWHASH_LEN]; /* "" when the user has no token */
};

struct session {
    bool used;
    uint8_t id_hash[HASH_LEN];
    char csrf[GW_AUTH_CSRF_HEX + 1];
    char name[GW_NAME_MAX];
    enum gw_http_role role;
    int64_t last_ms; /* last use: the session ends session_ms after it */
};

struct cached_token {
    bool used;
    uint8_t hash[HASH_LEN];
    char name[GW_NAME_MAX];
    int64_t expires_ms;
};

/* One client address (an IPv6 /64) in the rate limiter. */
struct addr_entry {
    bool used;
    uint8_t key[16];
    int64_t failures[GW_AUTH_MAX_FAILURES]; /* times of the latest failures, a ring */
    int nfailures;                          /* entries in the ring, up to MAX_FAILURES */
    int next;                               /* ring position of the next failure */
    int64_t last_failure_ms;
    int64_t locked_until_ms;
    int lockouts; /* lockouts so far: the next one lasts LOCKOUT_MS << lockouts */
    int pending;  /* checks in flight */
    int64_t last_ms;
};

struct gw_auth {
    int nusers;
    struct user *users;
    int64_t session_ms;
    int verifying; /* jobs started and not finished */
    uint8_t key[crypto_generichash_KEYBYTES];
    struct session sessions[GW_AUTH_SESSIONS];
    struct cached_token tokens[GW_AUTH_TOKEN_CACHE];
    struct addr_entry addrs[GW_AUTH_ADDRS];
};

enum job_kind { JOB_LOGIN, JOB_TOKEN };

struct gw_auth_job {
    enum job_kind kind;
    uint8_t addr[16];
    bool known; /* login: the name is a user's (else hashes[0] is only for the timing) */
    char name[GW_NAME_MAX];
    char secret[GW_AUTH_PASSWORD_MAX + 1]; /* the password or token; wiped */
    int nhashes;
    char (*hashes)[PWHASH_LEN];   /* login: 1; token: every user's token_hash */
    char (*owners)[GW_NAME_MAX];  /* token: whose each hash is */
    uint8_t token_hash[HASH_LEN]; /* token: the cache key once it verifies */
    int match;                    /* set by run: the hash that verified, or -1 */
    bool ran;
};

/* ---- helpers ----------------------------------------------------------- */

static void keyed_hash(const struct gw_auth *a, const char *s, size_t n, uint8_t out[HASH_LEN])
{
    crypto_generichash(out, HASH_LEN, (const unsigned char *)s, n, a->key, sizeof(a->key));
}

static void random_hex(char *out, size_t hexlen)
{
    uint8_t b[ID_BYTES];
    randombytes_buf(b, sizeof(b));
    sodium_bin2hex(out, hexlen + 1, b, hexlen / 2);
    sodium_memzero(b, sizeof(b));
}

static bool is_lower_hex(const char *s, size_t n)
{
    if (!s || strlen(s) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* A numeric address -> the limiter's key: IPv4 as ::ffff:a.b.c.d, IPv6 cut to its /64 (one
 * host owns a whole /64, so counting single IPv6 addresses would count nothing). */
static bool addr_key(const char *addr, uint8_t key[16], bool *loopback)
{
    uint8_t b[16];
    if (!addr) {
        return false;
    }
    if (inet_pton(AF_INET, addr, b) == 1) {
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, b, 4);
        *loopback = b[0] == 127;
        return true;
    }
    if (inet_pton(AF_INET6, addr, b) != 1) {
        return false;
    }
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (memcmp(b, v4mapped, 12) == 0) {
        memcpy(key, b, 16);
        *loopback = b[12] == 127;
        return true;
    }
    *loopback = memcmp(b, one, 16) == 0;
    memcpy(key, b, 8);
    memset(key + 8, 0, 8);
    return true;
}

static const struct user *find_user(const struct gw_auth *a, const char *name)
{
    for (int i = 0; i < a->nusers; i++) {
        if (strcmp(a->users[i].name, name) == 0) {
            return &a->users[i];
        }
    }
    return NULL;
}

static void fill_who(struct gw_auth_identity *who, enum gw_auth_via via, const char *name,
                     enum gw_http_role role)
{
    memset(who, 0, sizeof(*who));
    who->via = via;
    snprintf(who->name, sizeof(who->name), "%s", name);
    who->role = role;
}

/* ---- users ------------------------------------------------------------- */

/* Copies of the configured users: the config may be freed by a reload. */
static struct user *copy_users(const struct gw_http_cfg *http, int *n)
{
    *n = 0;
    if (!http || http->nusers <= 0) {
        return NULL;
    }
    struct user *u = sodium_allocarray((size_t)http->nusers, sizeof(*u));
    if (!u) {
        return NULL;
    }
    memset(u, 0, (size_t)http->nusers * sizeof(*u));
    for (int i = 0; i < http->nusers; i++) {
        const struct gw_http_user_cfg *c = &http->users[i];
        bool ok = c->name && c->password_hash && strlen(c->name) < sizeof(u[i].name) &&
                  strlen(c->password_hash) < PWHASH_LEN &&
                  (!c->token_hash || strlen(c->token_hash) < PWHASH_LEN);
        if (!ok) {
            sodium_free(u); /* the config checked these: only a hand-made cfg gets here */
            errno = EINVAL;
            return NULL;
        }
        strcpy(u[i].name, c->name);
        u[i].role = c->role;
        strcpy(u[i].password_hash, c->password_hash);
        if (c->token_hash) {
            strcpy(u[i].token_hash, c->token_hash);
        }
    }
    *n = http->nusers;
    return u;
}

struct gw_auth *gw_auth_new(const struct gw_http_cfg *http)
{
    if (sodium_init() < 0) {
        return NULL;
    }
    struct gw_auth *a = sodium_malloc(sizeof(*a));
    if (!a) {
        return NULL;
    }
    memset(a, 0, sizeof(*a));
    randombytes_buf(a->key, sizeof(a->key));
    a->session_ms =
        (int64_t)(http && http->session_minutes > 0 ? http->session_minutes : 480) * 60 * 1000;
    if (http && http->nusers > 0) {
        a->users = copy_users(http, &a->nusers);
        if (!a->users) {
            sodium_free(a);
            return NULL;
        }
    }
    return a;
}

void gw_auth_free(struct gw_auth *a)
{
    if (!a) {
        return;
    }
    sodium_free(a->users); /* sodium_free wipes */
    sodium_free(a);
}

int gw_auth_reload(struct gw_auth *a, const struct gw_http_cfg *http)
{
    int n = 0;
    struct user *users = NULL;
    if (http && http->nusers > 0) {
        users = copy_users(http, &n);
        if (!users) {
            return -ENOMEM;
        }
    }
    for (int i = 0; i < GW_AUTH_SESSIONS; i++) {
        struct session *s = &a->sessions[i];
        if (!s->used) {
            continue;
        }
        const struct user *old = find_user(a, s->name);
        const struct user *now = NULL;
        for (int j = 0; j < n && !now; j++) {
            now = strcmp(users[j].name, s->name) == 0 ? &users[j] : NULL;
        }
        if (!now || !old || strcmp(old->password_hash, now->password_hash) != 0) {
            sodium_memzero(s, sizeof(*s)); /* gone, or a new password: log in again */
        } else {
            s->role = now->role;
        }
    }
    sodium_memzero(a->tokens, sizeof(a->tokens));
    sodium_free(a->users);
    a->users = users;
    a->nusers = n;
    a->session_ms =
        (int64_t)(http && http->session_minutes > 0 ? http->session_minutes : 480) * 60 * 1000;
    return 0;
}

bool gw_auth_has_users(const struct gw_auth *a)
{
    return a && a->nusers > 0;
}

enum gw_auth_result gw_auth_anonymous(const struct gw_auth *a, const char *addr,
                                      struct gw_auth_identity *who)
{
    uint8_t key[16];
    bool loopback = false;
    if (!a || a->nusers > 0 || !addr_key(addr, key, &loopback) || !loopback) {
        return GW_AUTH_DENIED;
    }
    fill_who(who, GW_AUTH_VIA_LOOPBACK, "", GW_ROLE_VIEWER);
    return GW_AUTH_OK;
}

/* ---- rate limiting ----------------------------------------------------- */

static struct addr_entry *find_addr(struct gw_auth *a, const uint8_t key[16])
{
    for (int i = 0; i < GW_AUTH_ADDRS; i++) {
        if (a->addrs[i].used && memcmp(a->addrs[i].key, key, 16) == 0) {
            return &a->addrs[i];
        }
    }
    return NULL;
}

/* Lockouts over and a day without failures: the address starts over. */
static void maybe_forget(struct addr_entry *e, int64_t now_ms)
{
    int64_t quiet_since =
        e->last_failure_ms > e->locked_until_ms ? e->last_failure_ms : e->locked_until_ms;
    if (e->pending == 0 && e->locked_until_ms <= now_ms &&
        now_ms - quiet_since >= GW_AUTH_FORGET_MS) {
        uint8_t key[16];
        memcpy(key, e->key, 16);
        memset(e, 0, sizeof(*e));
        e->used = true;
        memcpy(e->key, key, 16);
        e->last_ms = now_ms;
    }
}

/*
 * The entry of key, made when absent. When the table is full the entry idle
 * longest goes, preferring one that is neither locked out nor checking.
 */
static struct addr_entry *get_addr(struct gw_auth *a, const uint8_t key[16], int64_t now_ms)
{
    struct addr_entry *e = find_addr(a, key);
    if (e) {
        maybe_forget(e, now_ms);
        return e;
    }
    struct addr_entry *victim = NULL;
    bool victim_busy = true;
    for (int i = 0; i < GW_AUTH_ADDRS; i++) {
        struct addr_entry *c = &a->addrs[i];
        if (!c->used) {
            victim = c;
            break;
        }
        bool busy = c->pending > 0 || c->locked_until_ms > now_ms;
        if (!victim || (victim_busy && !busy) ||
            (busy == victim_busy && c->last_ms < victim->last_ms)) {
            victim = c;
            victim_busy = busy;
        }
    }
    memset(victim, 0, sizeof(*victim));
    victim->used = true;
    memcpy(victim->key, key, 16);
    victim->last_ms = now_ms;
    return victim;
}

/* Failures of e within the window ending at now_ms. */
static int recent_failures(const struct addr_entry *e, int64_t now_ms)
{
    int n = 0;
    for (int i = 0; i < e->nfailures; i++) {
        n += now_ms - e->failures[i] < GW_AUTH_FAILURE_WINDOW_MS;
    }
    return n;
}

static void record_failure(struct gw_auth *a, const uint8_t key[16], int64_t now_ms)
{
    struct addr_entry *e = get_addr(a, key, now_ms);
    e->failures[e->next] = now_ms;
    e->next = (e->next + 1) % GW_AUTH_MAX_FAILURES;
    if (e->nfailures < GW_AUTH_MAX_FAILURES) {
        e->nfailures++;
    }
    e->last_failure_ms = now_ms;
    e->last_ms = now_ms;
    if (recent_failures(e, now_ms) >= GW_AUTH_MAX_FAILURES) {
        int64_t d = GW_AUTH_LOCKOUT_MS;
        for (int i = 0; i < e->lockouts && d < GW_AUTH_LOCKOUT_MAX_MS; i++) {
            d *= 2;
        }
        e->locked_until_ms = now_ms + (d < GW_AUTH_LOCKOUT_MAX_MS ? d : GW_AUTH_LOCKOUT_MAX_MS);
        e->lockouts++;
        e->nfailures = 0; /* after the lockout, a fresh count */
        e->next = 0;
    }
}

static void record_success(struct gw_auth *a, const uint8_t key[16])
{
    struct addr_entry *e = find_addr(a, key);
    if (e) {
        int pending = e->pending;
        memset(e, 0, sizeof(*e));
        if (pending > 0) {
            e->used = true; /* other checks of this address are still in flight */
            memcpy(e->key, key, 16);
            e->pending = pending;
        }
    }
}

/* May this address start another check now? Takes a place in flight when it may. */
static enum gw_auth_result admit(struct gw_auth *a, const uint8_t key[16], int64_t now_ms,
                                 int64_t *retry_after_ms)
{
    int64_t unused;
    int64_t *retry = retry_after_ms ? retry_after_ms : &unused;
    *retry = 0;
    struct addr_entry *e = find_addr(a, key);
    if (e) {
        maybe_forget(e, now_ms);
        if (e->locked_until_ms > now_ms) {
            *retry = e->locked_until_ms - now_ms;
            return GW_AUTH_RATE_LIMITED;
        }
        /* checks in flight count as failures until they are known not to be */
        if (recent_failures(e, now_ms) + e->pending >= GW_AUTH_MAX_FAILURES) {
            *retry = GW_AUTH_BUSY_RETRY_MS;
            return GW_AUTH_BUSY;
        }
    }
    if (a->verifying >= GW_AUTH_MAX_VERIFYING) {
        *retry = GW_AUTH_BUSY_RETRY_MS;
        return GW_AUTH_BUSY;
    }
    e = get_addr(a, key, now_ms);
    e->pending++;
    e->last_ms = now_ms;
    a->verifying++;
    return GW_AUTH_OK;
}

static void release(struct gw_auth *a, const uint8_t key[16])
{
    if (a->verifying > 0) {
        a->verifying--;
    }
    struct addr_entry *e = find_addr(a, key);
    if (e && e->pending > 0) {
        e->pending--;
    }
}

/* ---- jobs -------------------------------------------------------------- */

static struct gw_auth_job *job_new(enum job_kind kind, const uint8_t addr[16], const char *secret,
                                   int nhashes)
{
    struct gw_auth_job *j = sodium_malloc(sizeof(*j));
    if (!j) {
        return NULL;
    }
    memset(j, 0, sizeof(*j));
    j->hashes = sodium_allocarray((size_t)nhashes, sizeof(*j->hashes));
    j->owners = sodium_allocarray((size_t)nhashes, sizeof(*j->owners));
    if (!j->hashes || !j->owners) {
        gw_auth_job_free(j);
        return NULL;
    }
    memset(j->hashes, 0, (size_t)nhashes * sizeof(*j->hashes));
    memset(j->owners, 0, (size_t)nhashes * sizeof(*j->owners));
    j->kind = kind;
    memcpy(j->addr, addr, 16);
    snprintf(j->secret, sizeof(j->secret), "%s", secret);
    j->nhashes = nhashes;
    j->match = -1;
    return j;
}

void gw_auth_job_free(struct gw_auth_job *job)
{
    if (!job) {
        return;
    }
    sodium_free(job->hashes);
    sodium_free(job->owners);
    sodium_free(job); /* wipes the secret */
}

void gw_auth_job_run(struct gw_auth_job *job)
{
    job->match = -1;
    for (int i = 0; i < job->nhashes && job->match < 0; i++) {
        if (crypto_pwhash_str_verify(job->hashes[i], job->secret, strlen(job->secret)) == 0) {
            job->match = i;
        }
    }
    sodium_memzero(job->secret, sizeof(job->secret));
    job->ran = true;
}

enum gw_auth_result gw_auth_login_start(struct gw_auth *a, const char *name, const char *password,
                                        const char *addr, int64_t now_ms, struct gw_auth_job **job,
                                        int64_t *retry_after_ms)
{
    *job = NULL;
    if (retry_after_ms) {
        *retry_after_ms = 0;
    }
    if (a->nusers == 0) {
        return GW_AUTH_NO_USERS;
    }
    uint8_t key[16];
    bool loopback;
    if (!name || !*name || strlen(name) >= GW_NAME_MAX || !password || !*password ||
        strlen(password) > GW_AUTH_PASSWORD_MAX || !addr_key(addr, key, &loopback)) {
        return GW_AUTH_BAD_REQUEST;
    }
    enum gw_auth_result r = admit(a, key, now_ms, retry_after_ms);
    if (r != GW_AUTH_OK) {
        return r;
    }
    struct gw_auth_job *j = job_new(JOB_LOGIN, key, password, 1);
    if (!j) {
        release(a, key);
        return GW_AUTH_NOMEM;
    }
    const struct user *u = find_user(a, name);
    j->known = u != NULL;
    /* an unknown name is checked against a real hash too: the same time, always a failure */
    strcpy(j->hashes[0], (u ? u : &a->users[0])->password_hash);
    snprintf(j->name, sizeof(j->name), "%s", name);
    *job = j;
    return GW_AUTH_PENDING;
}

/* "Bearer <token>" -> the token, or NULL. */
static const char *bearer_token(const char *header)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) {
        return NULL;
    }
    const char *t = header + 7;
    while (*t == ' ') {
        t++;
    }
    size_t n = strlen(t);
    while (n > 0 && t[n - 1] == ' ') {
        n--;
    }
    if (n < GW_AUTH_TOKEN_MIN || n > GW_AUTH_TOKEN_MAX) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i] <= ' ' || t[i] > '~') {
            return NULL;
        }
    }
    return t;
}

enum gw_auth_result gw_auth_bearer_start(struct gw_auth *a, const char *header, const char *addr,
                                         int64_t now_ms, struct gw_auth_identity *who,
                                         struct gw_auth_job **job, int64_t *retry_after_ms)
{
    *job = NULL;
    if (retry_after_ms) {
        *retry_after_ms = 0;
    }
    uint8_t key[16];
    bool loopback;
    if (!addr_key(addr, key, &loopback)) {
        return GW_AUTH_BAD_REQUEST;
    }
    const char *t = bearer_token(header);
    int ntokens = 0;
    for (int i = 0; i < a->nusers; i++) {
        ntokens += a->users[i].token_hash[0] != '\0';
    }
    if (!t || ntokens == 0) {
        return GW_AUTH_DENIED;
    }
    char token[GW_AUTH_TOKEN_MAX + 1];
    size_t n = strcspn(t, " ");
    memcpy(token, t, n);
    token[n] = '\0';
    uint8_t h[HASH_LEN];
    keyed_hash(a, token, n, h);
    for (int i = 0; i < GW_AUTH_TOKEN_CACHE; i++) {
        struct cached_token *c = &a->tokens[i];
        if (!c->used || sodium_memcmp(c->hash, h, HASH_LEN) != 0) {
            continue;
        }
        const struct user *u = c->expires_ms > now_ms ? find_user(a, c->name) : NULL;
        if (!u) {
            sodium_memzero(c, sizeof(*c));
            break;
        }
        fill_who(who, GW_AUTH_VIA_TOKEN, u->name, u->role);
        sodium_memzero(token, sizeof(token));
        return GW_AUTH_OK;
    }
    enum gw_auth_result r = admit(a, key, now_ms, retry_after_ms);
    if (r != GW_AUTH_OK) {
        sodium_memzero(token, sizeof(token));
        return r;
    }
    struct gw_auth_job *j = job_new(JOB_TOKEN, key, token, ntokens);
    sodium_memzero(token, sizeof(token));
    if (!j) {
        release(a, key);
        return GW_AUTH_NOMEM;
    }
    memcpy(j->token_hash, h, HASH_LEN);
    for (int i = 0, k = 0; i < a->nusers; i++) {
        if (a->users[i].token_hash[0]) {
            strcpy(j->hashes[k], a->users[i].token_hash);
            strcpy(j->owners[k], a->users[i].name);
            k++;
        }
    }
    *job = j;
    return GW_AUTH_PENDING;
}

static void cache_token(struct gw_auth *a, const uint8_t h[HASH_LEN], const char *name,
                        int64_t now_ms)
{
    struct cached_token *slot = NULL;
    for (int i = 0; i < GW_AUTH_TOKEN_CACHE; i++) {
        struct cached_token *c = &a->tokens[i];
        if (!c->used) {
            slot = c;
            break;
        }
        if (!slot || c->expires_ms < slot->expires_ms) {
            slot = c; /* full: the oldest goes */
        }
    }
    slot->used = true;
    memcpy(slot->hash, h, HASH_LEN);
    snprintf(slot->name, sizeof(slot->name), "%s", name);
    slot->expires_ms = now_ms + GW_AUTH_TOKEN_CACHE_MS;
}

static struct session *new_session(struct gw_auth *a, const struct user *u, int64_t now_ms,
                                   struct gw_auth_identity *who)
{
    struct session *s = NULL;
    for (int i = 0; i < GW_AUTH_SESSIONS; i++) {
        struct session *c = &a->sessions[i];
        if (!c->used) {
            s = c;
            break;
        }
        if (!s || c->last_ms < s->last_ms) {
            s = c; /* full: the one idle longest ends (an expired one, if any) */
        }
    }
    memset(s, 0, sizeof(*s));
    s->used = true;
    fill_who(who, GW_AUTH_VIA_SESSION, u->name, u->role);
    random_hex(who->session, GW_AUTH_SESSION_HEX);
    random_hex(who->csrf, GW_AUTH_CSRF_HEX);
    keyed_hash(a, who->session, GW_AUTH_SESSION_HEX, s->id_hash);
    memcpy(s->csrf, who->csrf, sizeof(s->csrf));
    snprintf(s->name, sizeof(s->name), "%s", u->name);
    s->role = u->role;
    s->last_ms = now_ms;
    return s;
}

enum gw_auth_result gw_auth_job_finish(struct gw_auth *a, struct gw_auth_job *job, int64_t now_ms,
                                       struct gw_auth_identity *who)
{
    release(a, job->addr);
    enum gw_auth_result r = GW_AUTH_DENIED;
    if (!job->ran) {
        gw_auth_job_free(job); /* cancelled before it ran: nothing was tried */
        return r;
    }
    const struct user *u = NULL;
    if (job->match >= 0) {
        const char *owner = job->kind == JOB_LOGIN ? job->name : job->owners[job->match];
        u = find_user(a, owner);
        const char *now_hash = !u                       ? NULL
                               : job->kind == JOB_LOGIN ? u->password_hash
                                                        : u->token_hash;
        /* a reload while the check ran may have removed the user or changed the hash */
        if ((job->kind == JOB_LOGIN && !job->known) || !now_hash ||
            strcmp(now_hash, job->hashes[job->match]) != 0) {
            u = NULL;
        }
    }
    if (!u) {
        record_failure(a, job->addr, now_ms);
    } else {
        record_success(a, job->addr);
        if (job->kind == JOB_LOGIN) {
            new_session(a, u, now_ms, who);
        } else {
            /* the token itself is gone (wiped by run): cache by the hash made at start */
            fill_who(who, GW_AUTH_VIA_TOKEN, u->name, u->role);
        }
        r = GW_AUTH_OK;
    }
    if (r == GW_AUTH_OK && job->kind == JOB_TOKEN) {
        cache_token(a, job->token_hash, u->name, now_ms);
    }
    gw_auth_job_free(job);
    return r;
}

enum gw_auth_result gw_auth_login(struct gw_auth *a, const char *name, const char *password,
                                  const char *addr, int64_t now_ms, struct gw_auth_identity *who,
                                  int64_t *retry_after_ms)
{
    struct gw_auth_job *job = NULL;
    enum gw_auth_result r =
        gw_auth_login_start(a, name, password, addr, now_ms, &job, retry_after_ms);
    if (r != GW_AUTH_PENDING) {
        return r;
    }
    gw_auth_job_run(job);
    return gw_auth_job_finish(a, job, now_ms, who);
}

enum gw_auth_result gw_auth_bearer(struct gw_auth *a, const char *header, const char *addr,
                                   int64_t now_ms, struct gw_auth_identity *who,
                                   int64_t *retry_after_ms)
{
    struct gw_auth_job *job = NULL;
    enum gw_auth_result r =
        gw_auth_bearer_start(a, header, addr, now_ms, who, &job, retry_after_ms);
    if (r != GW_AUTH_PENDING) {
        return r;
    }
    gw_auth_job_run(job);
    return gw_auth_job_finish(a, job, now_ms, who);
}

/* ---- sessions, CSRF, roles --------------------------------------------- */

static struct session *find_session(struct gw_auth *a, const char *cookie)
{
    if (!is_lower_hex(cookie, GW_AUTH_SESSION_HEX)) {
        return NULL;
    }
    uint8_t h[HASH_LEN];
    keyed_hash(a, cookie, GW_AUTH_SESSION_HEX, h);
    for (int i = 0; i < GW_AUTH_SESSIONS; i++) {
        struct session *s = &a->sessions[i];
        if (s->used && sodium_memcmp(s->id_hash, h, HASH_LEN) == 0) {
            return s;
        }
    }
    return NULL;
}

enum gw_auth_result gw_auth_session(struct gw_auth *a, const char *cookie, int64_t now_ms,
                                    struct gw_auth_identity *who)
{
    struct session *s = find_session(a, cookie);
    if (!s) {
        return GW_AUTH_DENIED;
    }
    if (now_ms - s->last_ms >= a->session_ms) {
        sodium_memzero(s, sizeof(*s));
        return GW_AUTH_DENIED;
    }
    s->last_ms = now_ms;
    fill_who(who, GW_AUTH_VIA_SESSION, s->name, s->role);
    memcpy(who->csrf, s->csrf, sizeof(who->csrf));
    return GW_AUTH_OK;
}

bool gw_auth_logout(struct gw_auth *a, const char *cookie)
{
    struct session *s = find_session(a, cookie);
    if (!s) {
        return false;
    }
    sodium_memzero(s, sizeof(*s));
    return true;
}

bool gw_auth_csrf_ok(const struct gw_auth_identity *who, const char *token)
{
    if (!who) {
        return false;
    }
    if (who->via == GW_AUTH_VIA_TOKEN) {
        return true;
    }
    if (who->via != GW_AUTH_VIA_SESSION || !token || strlen(token) != GW_AUTH_CSRF_HEX ||
        strlen(who->csrf) != GW_AUTH_CSRF_HEX) {
        return false;
    }
    return sodium_memcmp(who->csrf, token, GW_AUTH_CSRF_HEX) == 0;
}

bool gw_auth_allows(const struct gw_auth_identity *who, enum gw_auth_action action)
{
    if (!who) {
        return false;
    }
    switch (action) {
    case GW_AUTH_READ:
        return true;
    case GW_AUTH_ACT:
        return who->via != GW_AUTH_VIA_LOOPBACK && who->role == GW_ROLE_OPERATOR;
    }
    return false;
}

int gw_auth_session_count(const struct gw_auth *a, int64_t now_ms)
{
    int n = 0;
    for (int i = 0; i < GW_AUTH_SESSIONS; i++) {
        n += a->sessions[i].used && now_ms - a->sessions[i].last_ms < a->session_ms;
    }
    return n;
}

int gw_auth_hash(const char *secret, size_t len, unsigned long long opslimit, size_t memlimit,
                 char *out)
{
    if (sodium_init() < 0) {
        return -1;
    }
    return crypto_pwhash_str(out, secret, len, opslimit, memlimit) == 0 ? 0 : -1;
}
