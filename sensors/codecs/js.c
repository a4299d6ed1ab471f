/*
 * The `js` codec: vendor payload decoders run in Duktape (Debian's
 * libduktape 2.7, ECMAScript 5.1 with a few ES6 additions).
 *
 * Forms, looked up after the script's top level has run, first match wins:
 *  - TTN v3 / ChirpStack v4: decodeUplink(input) with input = { bytes: [..],
 *    fPort, recvTime: Date (the reading's ts_ms, as TTS passes a Date),
 *    variables: {} }, returning { data: {..}, warnings?: [..], errors?: [..] };
 *    a non-empty `errors` fails the frame (-EINVAL, the errors joined by "; ").
 *  - ChirpStack v3: Decode(fPort, bytes, variables) returning the data object.
 *  - TTN v2: Decoder(bytes, fPort) returning the data object.
 * Data -> points: numbers -> NUMBER (NaN/Infinity -> a GW_FAULT_INVALID
 * point), booleans -> BOOL, strings -> STRING (cut to GW_STR_VALUE_MAX-1 bytes
 * on a UTF-8 boundary); objects and arrays are flattened with "_" ({gps:{lat:1}}
 * -> gps_lat, {t:[1,2]} -> t_0, t_1) down to 8 levels; null, undefined and
 * functions are skipped. Names are cut to GW_NAME_MAX-1 bytes. More than
 * GW_MAX_POINTS values: the first ones are kept and -E2BIG is returned.
 *
 * Syntax: Duktape refuses let, arrow functions, template literals, classes,
 * destructuring... with "SyntaxError ... (line N)"; a scan before compiling
 * names them clearly ("file:line: 'let' declaration is ES6 ..."). `const` is
 * refused too although Duktape compiles it: Duktape makes it a reassignable,
 * function-scoped var, so a block-scoped const that shadows another would
 * silently give a different value than on TTN or ChirpStack.
 *
 * Limits. One Duktape heap per decoder, reused across frames. Memory: the heap
 * allocates through a counting allocator that refuses beyond the limit
 * (default 4 MB); the decoder then fails (-ENOMEM) and the heap is rebuilt
 * for the next frame. Time: Debian's libduktape is built without
 * DUK_USE_EXEC_TIMEOUT_CHECK (no interrupt counter, no debugger), so nothing
 * inside Duktape can stop a running script. Instead a POSIX timer sends a
 * real-time signal to the decoding thread after the limit (default 100 ms);
 * the handler siglongjmp()s out of Duktape, the heap is abandoned (every
 * block it owns is on the allocator's list and freed directly, Duktape is
 * never touched again) and rebuilt for the next frame (-ETIME). Jumping out of
 * libc would leave a lock held (gmtime_r's tz lock, malloc's), so the handler
 * jumps only when the interrupted instruction is inside libduktape's own code
 * and our allocator is not running; otherwise it re-arms the timer for 1 ms
 * and tries again (a script spinning in Duktape is almost always there).
 * Duktape's fatal handler takes the same way out. The signal is SIGRTMIN+5
 * (nothing else in campusgw may use it); the timer is per decoder and per
 * thread. A rebuilt heap runs the script's top level again, so a decoder's
 * global state starts over. Costs ~6 us per frame for a 10-line decoder
 * (x86-64), timer and sigsetjmp included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <duktape.h>

#include "codecs/codec.h"
#include "log.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define MAX_SCRIPT_BYTES (1024 * 1024)
#define MAX_DEPTH 8
#define RETRY_NS (1000 * 1000)

enum js_form { FORM_TTN, FORM_CHIRPSTACK, FORM_TTN_V2 };

/* Header in front of every block Duktape gets, so an abandoned heap can be freed. */
union blk {
    struct {
        union blk *prev, *next;
        size_t size;
    } h;
    max_align_t align;
};

struct gw_js {
    char *path;
    char *source;
    size_t srclen;
    enum js_form form;
    duk_context *ctx;
    /* allocator */
    union blk *blocks;
    size_t mem_used, mem_limit;
    bool oom;
    volatile sig_atomic_t in_alloc;
    /* time limit */
    int timeout_ms;
    bool has_timer;
    timer_t timer;
    pid_t timer_tid;
    sigjmp_buf jb;
    const char *fatal_msg;
};

/* ---- allocator ---------------------------------------------------------- */

static void blk_link(struct gw_js *js, union blk *b)
{
    b->h.prev = NULL;
    b->h.next = js->blocks;
    if (js->blocks) {
        js->blocks->h.prev = b;
    }
    js->blocks = b;
}

static void blk_unlink(struct gw_js *js, union blk *b)
{
    if (b->h.prev) {
        b->h.prev->h.next = b->h.next;
    } else {
        js->blocks = b->h.next;
    }
    if (b->h.next) {
        b->h.next->h.prev = b->h.prev;
    }
}

static bool over_limit(struct gw_js *js, size_t add)
{
    return add > js->mem_limit || js->mem_used > js->mem_limit - add;
}

static void *js_alloc(void *udata, duk_size_t size)
{
    struct gw_js *js = udata;
    if (size == 0) {
        return NULL;
    }
    if (over_limit(js, size) || size > SIZE_MAX - sizeof(union blk)) {
        js->oom = true;
        return NULL;
    }
    js->in_alloc = 1;
    atomic_signal_fence(memory_order_seq_cst);
    union blk *b = malloc(sizeof(*b) + size);
    if (b) {
        b->h.size = size;
        blk_link(js, b);
        js->mem_used += size;
    }
    atomic_signal_fence(memory_order_seq_cst);
    js->in_alloc = 0;
    return b ? b + 1 : NULL;
}

static void js_free(void *udata, void *ptr)
{
    struct gw_js *js = udata;
    if (!ptr) {
        return;
    }
    union blk *b = (union blk *)ptr - 1;
    js->in_alloc = 1;
    atomic_signal_fence(memory_order_seq_cst);
    blk_unlink(js, b);
    js->mem_used -= b->h.size;
    free(b);
    atomic_signal_fence(memory_order_seq_cst);
    js->in_alloc = 0;
}

static void *js_realloc(void *udata, void *ptr, duk_size_t size)
{
    struct gw_js *js = udata;
    if (!ptr) {
        return js_alloc(udata, size);
    }
    if (size == 0) {
        js_free(udata, ptr);
        return NULL;
    }
    union blk *b = (union blk *)ptr - 1;
    size_t old = b->h.size;
    if (size > old && (over_limit(js, size - old) || size > SIZE_MAX - sizeof(union blk))) {
        js->oom = true;
        return NULL;
    }
    js->in_alloc = 1;
    atomic_signal_fence(memory_order_seq_cst);
    blk_unlink(js, b);
    union blk *nb = realloc(b, sizeof(*b) + size);
    if (nb) {
        nb->h.size = size;
        js->mem_used = js->mem_used - old + size;
        b = nb;
    }
    blk_link(js, b);
    atomic_signal_fence(memory_order_seq_cst);
    js->in_alloc = 0;
    return nb ? nb + 1 : NULL;
}

/* Free everything an abandoned heap owned without asking Duktape. */
static void blocks_free_all(struct gw_js *js)
{
    union blk *b = js->blocks;
    while (b) {
        union blk *next = b->h.next;
        free(b);
        b = next;
    }
    js->blocks = NULL;
    js->mem_used = 0;
}

/* ---- time limit ---------------------------------------------------------- */

static _Thread_local struct gw_js *volatile active; /* the decoder running on this thread */
static pthread_once_t signal_once = PTHREAD_ONCE_INIT;
static int signal_no;
static int signal_err;
static uintptr_t duk_text_lo, duk_text_hi; /* libduktape's code; 0/0 when unknown */

static uintptr_t interrupted_pc(const void *ucv)
{
    const ucontext_t *uc = ucv;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__i386__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_EIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#elif defined(__arm__)
    return (uintptr_t)uc->uc_mcontext.arm_pc;
#else
    (void)uc;
    return 0;
#endif
}

static bool safe_to_jump(struct gw_js *js, const void *uc)
{
    if (js->in_alloc) {
        return false;
    }
    if (duk_text_lo == 0) {
        return true; /* unknown layout: the allocator guard is all we have */
    }
    uintptr_t pc = interrupted_pc(uc);
    return pc >= duk_text_lo && pc < duk_text_hi;
}

static void on_timeout(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    int saved = errno;
    struct gw_js *js = active;
    if (!js) {
        errno = saved;
        return; /* late signal of a run that already ended */
    }
    if (safe_to_jump(js, uc)) {
        active = NULL;
        siglongjmp(js->jb, 1);
    }
    struct itimerspec its = {.it_value = {.tv_sec = 0, .tv_nsec = RETRY_NS}};
    timer_settime(js->timer, 0, &its, NULL);
    errno = saved;
}

static int find_duktape(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libduktape")) {
        return 0;
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            if (duk_text_lo == 0 || lo < duk_text_lo) {
                duk_text_lo = lo;
            }
            if (lo + ph->p_memsz > duk_text_hi) {
                duk_text_hi = lo + ph->p_memsz;
            }
        }
    }
    return 1;
}

static void signal_setup(void)
{
    signal_no = SIGRTMIN + 5;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_timeout;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(signal_no, &sa, NULL) < 0) {
        signal_err = -errno;
        return;
    }
    dl_iterate_phdr(find_duktape, NULL);
    if (duk_text_lo == 0) {
        gw_warn("codec", "libduktape not found among loaded objects; decoder time limit "
                         "guards only the allocator");
    }
}

/* A timer that signals this thread; rebuilt when the decoder moves to another thread. */
static int timer_for_thread(struct gw_js *js)
{
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (js->has_timer && js->timer_tid == tid) {
        return 0;
    }
    if (js->has_timer) {
        timer_delete(js->timer);
        js->has_timer = false;
    }
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signal_no;
    sev.sigev_notify_thread_id = tid;
    if (timer_create(CLOCK_MONOTONIC, &sev, &js->timer) < 0) {
        return -errno;
    }
    js->has_timer = true;
    js->timer_tid = tid;
    return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

/* Copy at most size-1 bytes without cutting a UTF-8 sequence. */
static void copy_utf8(char *dst, size_t size, const char *src, size_t len)
{
    if (size == 0) {
        return;
    }
    if (len > size - 1) {
        len = size - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80) {
            len--;
        }
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void on_fatal(void *udata, const char *msg)
{
    struct gw_js *js = udata;
    js->fatal_msg = msg;
    if (active == js) {
        active = NULL;
        siglongjmp(js->jb, 2);
    }
    gw_error("codec", "duktape fatal error outside a decoder run: %s", msg ? msg : "?");
    abort();
}

/* ---- ES5 check ------------------------------------------------------------ */

static bool is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' || c >= 0x80;
}

static bool is_ident_char(unsigned char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Keywords after which a '/' starts a regular expression, not a division. */
static bool regex_keyword(const char *w, size_t n)
{
    static const char *const kw[] = {"return", "typeof", "instanceof", "in",    "of",
                                     "new",    "delete", "void",       "throw", "case",
                                     "do",     "else",   "yield",      "await"};
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++) {
        if (strlen(kw[i]) == n && memcmp(kw[i], w, n) == 0) {
            return true;
        }
    }
    return false;
}

enum tok { TK_NONE, TK_VALUE, TK_OPERATOR, TK_DOT };

/*
 * Find ES6 syntax Duktape's messages do not name: let/const declarations,
 * classes, arrow functions, template literals, spread. A small lexer (comments,
 * strings, regular expressions) so that words inside them do not count.
 * Returns the line of the first one (and what it is), or 0.
 */
static int es6_scan(const char *s, size_t n, const char **what)
{
    int line = 1;
    enum tok last = TK_NONE;
    const char *pending = NULL; /* let/const/class waiting for the next token */
    int pending_line = 0;
    size_t i = 0;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        i = 3; /* UTF-8 byte order mark */
    }
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            line++;
            i++;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            i++;
            continue;
        }
        if (c == '/' && i + 1 < n && s[i + 1] == '/') {
            while (i < n && s[i] != '\n') {
                i++;
            }
            continue;
        }
        if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            i += 2;
            while (i < n && !(s[i] == '*' && i + 1 < n && s[i + 1] == '/')) {
                line += s[i] == '\n';
                i++;
            }
            i += 2;
            continue;
        }
        if (c == '`') {
            *what = "template literal (`...`) is ES6";
            return line;
        }
        if (pending) {
            /* `let x`, `const {a}`, `class A`: a declaration, not a name used as such. */
            if (is_ident_start(c) || c == '[' || c == '{') {
                *what = pending;
                return pending_line;
            }
            pending = NULL;
        }
        if (c == '"' || c == '\'') {
            i++;
            while (i < n && (unsigned char)s[i] != c && s[i] != '\n') {
                if (s[i] == '\\' && i + 1 < n) {
                    line += s[i + 1] == '\n';
                    i++;
                }
                i++;
            }
            i++;
            last = TK_VALUE;
            continue;
        }
        if (c == '/' && last != TK_VALUE) {
            bool in_class = false;
            i++;
            while (i < n && s[i] != '\n' && (in_class || s[i] != '/')) {
                if (s[i] == '\\' && i + 1 < n) {
                    i++;
                } else if (s[i] == '[') {
                    in_class = true;
                } else if (s[i] == ']') {
                    in_class = false;
                }
                i++;
            }
            i++;
            while (i < n && is_ident_char((unsigned char)s[i])) {
                i++;
            }
            last = TK_VALUE;
            continue;
        }
        if (is_ident_start(c)) {
            size_t st = i;
            while (i < n && is_ident_char((unsigned char)s[i])) {
                i++;
            }
            size_t len = i - st;
            const char *w = s + st;
            if (last != TK_DOT) {
                if (len == 3 && memcmp(w, "let", 3) == 0) {
                    pending = "'let' declaration is ES6; use var";
                } else if (len == 5 && memcmp(w, "const", 5) == 0) {
                    pending = "'const' is ES6 (Duktape makes it a reassignable var); use var";
                } else if (len == 5 && memcmp(w, "class", 5) == 0) {
                    pending = "'class' is ES6; use a constructor function";
                }
                pending_line = line;
            }
            last = regex_keyword(w, len) ? TK_OPERATOR : TK_VALUE;
            continue;
        }
        if (c >= '0' && c <= '9') {
            while (i < n &&
                   (is_ident_char((unsigned char)s[i]) || s[i] == '.' ||
                    ((s[i] == '+' || s[i] == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E')))) {
                i++;
            }
            last = TK_VALUE;
            continue;
        }
        if (c == '=' && i + 1 < n && s[i + 1] == '>') {
            *what = "arrow function (=>) is ES6; use function";
            return line;
        }
        if (c == '.' && i + 2 < n && s[i + 1] == '.' && s[i + 2] == '.') {
            *what = "spread/rest (...) is ES6";
            return line;
        }
        if (c == '.' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') {
            i++;
            while (i < n && is_ident_char((unsigned char)s[i])) {
                i++;
            }
            last = TK_VALUE;
            continue;
        }
        last = (c == ')' || c == ']') ? TK_VALUE : c == '.' ? TK_DOT : TK_OPERATOR;
        i++;
    }
    return 0;
}

/* ---- errors from Duktape ------------------------------------------------- */

struct errfmt {
    const char *path;
    const char *what; /* "load" | "decodeUplink" ... */
    char *err;
    size_t errlen;
};

/* Safe call: the thrown value at -1 -> "file:line: message". May run JS (toString). */
static duk_ret_t format_error(duk_context *ctx, void *udata)
{
    struct errfmt *f = udata;
    int line = 0;
    if (duk_is_object(ctx, -1)) {
        /* Only a line of the script: errors thrown from C carry a line of js.c. */
        duk_get_prop_string(ctx, -1, "fileName");
        bool ours = duk_is_string(ctx, -1) && strcmp(duk_get_string(ctx, -1), f->path) == 0;
        duk_pop(ctx);
        duk_get_prop_string(ctx, -1, "lineNumber");
        line = ours && duk_is_number(ctx, -1) ? duk_get_int(ctx, -1) : 0;
        duk_pop(ctx);
    }
    bool is_error = duk_is_error(ctx, -1);
    duk_size_t mlen = 0;
    const char *msg = duk_safe_to_lstring(ctx, -1, &mlen);
    /* Compile errors end in " (line N)": the line goes in front instead. */
    const char *tail = msg ? strstr(msg, " (line ") : NULL;
    int tlen = tail ? (int)(tail - msg) : (int)mlen;
    if (tail && line == 0) {
        line = atoi(tail + 7);
    }
    if (is_error && line > 0) {
        seterr(f->err, f->errlen, "%s:%d: %.*s", f->path, line, tlen, msg);
    } else if (is_error) {
        seterr(f->err, f->errlen, "%s: %.*s", f->path, tlen, msg);
    } else {
        seterr(f->err, f->errlen, "%s: %s threw: %.*s", f->path, f->what, (int)mlen,
               msg ? msg : "?");
    }
    return 0;
}

/* ---- guarded execution ---------------------------------------------------- */

static void heap_abandon(struct gw_js *js)
{
    js->ctx = NULL;
    blocks_free_all(js);
}

static void heap_destroy(struct gw_js *js)
{
    if (js->ctx) {
        duk_destroy_heap(js->ctx);
        js->ctx = NULL;
    }
    blocks_free_all(js); /* nothing left normally */
}

/*
 * Run fn(ctx, udata) in a protected call under the time limit. On a throw the
 * message goes to err as "file:line: ...". Returns 0, -EINVAL (threw),
 * -ENOMEM (memory limit; heap destroyed), -ETIME (time limit; heap abandoned),
 * -EFAULT (Duktape fatal error; heap abandoned).
 */
static int guarded(struct gw_js *js, duk_safe_call_function fn, void *udata, const char *what,
                   char *err, size_t errlen)
{
    int rc = timer_for_thread(js);
    if (rc < 0) {
        seterr(err, errlen, "%s: cannot create the decoder timer: %s", js->path, strerror(-rc));
        return rc;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal_no);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    js->oom = false;
    js->fatal_msg = NULL;
    volatile int result = 0;
    struct itimerspec its = {.it_value = {.tv_sec = js->timeout_ms / 1000,
                                          .tv_nsec = (long)(js->timeout_ms % 1000) * 1000000L}};
    struct itimerspec off = {0};
    int jumped = sigsetjmp(js->jb, 1);
    if (jumped == 0) {
        active = js;
        atomic_signal_fence(memory_order_seq_cst);
        timer_settime(js->timer, 0, &its, NULL);
        duk_context *ctx = js->ctx;
        if (duk_safe_call(ctx, fn, udata, 0, 1) != DUK_EXEC_SUCCESS) {
            if (js->oom) {
                result = -ENOMEM;
            } else {
                struct errfmt f = {js->path, what, err, errlen};
                duk_safe_call(ctx, format_error, &f, 1, 1);
                result = -EINVAL;
            }
        }
        duk_pop(ctx);
        atomic_signal_fence(memory_order_seq_cst);
        active = NULL;
        atomic_signal_fence(memory_order_seq_cst);
        timer_settime(js->timer, 0, &off, NULL);
    } else {
        active = NULL;
        timer_settime(js->timer, 0, &off, NULL);
        heap_abandon(js);
        if (jumped == 1) {
            seterr(err, errlen, "%s: %s ran longer than %d ms; stopped", js->path, what,
                   js->timeout_ms);
            return -ETIME;
        }
        seterr(err, errlen, "%s: %s: duktape fatal error: %s", js->path, what,
               js->fatal_msg ? js->fatal_msg : "?");
        return -EFAULT;
    }
    if (result == -ENOMEM) {
        seterr(err, errlen, "%s: %s exceeded the %zu kB memory limit", js->path, what,
               js->mem_limit / 1024);
        heap_destroy(js);
    }
    return result;
}

/* ---- load ----------------------------------------------------------------- */

static duk_ret_t load_call(duk_context *ctx, void *udata)
{
    struct gw_js *js = udata;
    duk_push_string(ctx, js->path);
    duk_compile_lstring_filename(ctx, 0, js->source, js->srclen);
    duk_call(ctx, 0);
    duk_pop(ctx);
    if (duk_get_global_string(ctx, "decodeUplink") && duk_is_function(ctx, -1)) {
        js->form = FORM_TTN;
    } else if (duk_get_global_string(ctx, "Decode") && duk_is_function(ctx, -1)) {
        js->form = FORM_CHIRPSTACK;
    } else if (duk_get_global_string(ctx, "Decoder") && duk_is_function(ctx, -1)) {
        js->form = FORM_TTN_V2;
    } else {
        return duk_error(ctx, DUK_ERR_REFERENCE_ERROR,
                         "defines neither decodeUplink(input) (TTN), Decode(fPort, bytes, "
                         "variables) (ChirpStack) nor Decoder(bytes, fPort)");
    }
    duk_push_true(ctx);
    return 1;
}

static int heap_open(struct gw_js *js, char *err, size_t errlen)
{
    js->ctx = duk_create_heap(js_alloc, js_realloc, js_free, js, on_fatal);
    if (!js->ctx) {
        seterr(err, errlen, "%s: cannot create a Duktape heap (memory limit %zu kB)", js->path,
               js->mem_limit / 1024);
        blocks_free_all(js);
        return -ENOMEM;
    }
    /* A script's top level (its tables, helper functions) runs once per heap, not per frame:
     * give it longer than a frame, so a slow machine (or valgrind) does not refuse a good one;
     * an endless top level is still stopped. */
    int frame_ms = js->timeout_ms;
    if (js->timeout_ms < GW_JS_LOAD_TIMEOUT_MS) {
        js->timeout_ms = GW_JS_LOAD_TIMEOUT_MS;
    }
    int rc = guarded(js, load_call, js, "script", err, errlen);
    js->timeout_ms = frame_ms;
    if (rc < 0) {
        heap_destroy(js);
    }
    return rc;
}

static int read_script(struct gw_js *js, char *err, size_t errlen)
{
    FILE *f = fopen(js->path, "rb");
    if (!f) {
        int e = errno;
        seterr(err, errlen, "%s: cannot read the decoder: %s", js->path, strerror(e));
        return -e;
    }
    js->source = malloc(MAX_SCRIPT_BYTES + 1);
    if (!js->source) {
        fclose(f);
        seterr(err, errlen, "%s: out of memory", js->path);
        return -ENOMEM;
    }
    js->srclen = fread(js->source, 1, MAX_SCRIPT_BYTES + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        seterr(err, errlen, "%s: read error", js->path);
        return -EIO;
    }
    if (js->srclen > MAX_SCRIPT_BYTES) {
        seterr(err, errlen, "%s: decoder larger than %d bytes", js->path, MAX_SCRIPT_BYTES);
        return -EFBIG;
    }
    js->source[js->srclen] = '\0';
    return 0;
}

struct gw_js *gw_js_new(const char *path, char *err, size_t errlen)
{
    pthread_once(&signal_once, signal_setup);
    if (signal_err < 0) {
        seterr(err, errlen, "%s: cannot install the decoder time limit: %s", path,
               strerror(-signal_err));
        return NULL;
    }
    struct gw_js *js = calloc(1, sizeof(*js));
    if (!js) {
        seterr(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    js->timeout_ms = GW_JS_TIMEOUT_MS;
    js->mem_limit = GW_JS_MEM_LIMIT;
    js->path = strdup(path);
    if (!js->path || read_script(js, err, errlen) < 0) {
        if (!js->path) {
            seterr(err, errlen, "%s: out of memory", path);
        }
        goto fail;
    }
    const char *what = NULL;
    int line = es6_scan(js->source, js->srclen, &what);
    if (line > 0) {
        seterr(err, errlen, "%s:%d: %s (ES5.1 only)", js->path, line, what);
        goto fail;
    }
    if (heap_open(js, err, errlen) < 0) {
        goto fail;
    }
    return js;
fail:
    gw_js_free(js);
    return NULL;
}

void gw_js_free(struct gw_js *js)
{
    if (!js) {
        return;
    }
    heap_destroy(js);
    if (js->has_timer) {
        timer_delete(js->timer);
    }
    free(js->source);
    free(js->path);
    free(js);
}

void gw_js_set_limits(struct gw_js *js, int timeout_ms, size_t mem_bytes)
{
    if (!js) {
        return;
    }
    if (timeout_ms > 0) {
        js->timeout_ms = timeout_ms;
    }
    if (mem_bytes > 0) {
        js->mem_limit = mem_bytes;
    }
}

/* ---- one frame -------------------------------------------------------------- */

struct frame {
    struct gw_js *js;
    const uint8_t *bytes;
    size_t len;
    int fport;
    int64_t ts_ms;
    struct gw_reading *out;
    bool overflow;
    int rc; /* decoder-reported failure (TTN errors) */
    char *err;
    size_t errlen;
};

static struct gw_point_value *next_point(struct gw_reading *out, const char *name, bool *overflow)
{
    if (out->npoints >= GW_MAX_POINTS) {
        *overflow = true;
        return NULL;
    }
    struct gw_point_value *pv = &out->points[out->npoints++];
    memset(pv, 0, sizeof(*pv));
    copy_utf8(pv->name, sizeof(pv->name), name, strlen(name));
    pv->fault = GW_FAULT_NONE;
    return pv;
}

/* Flatten the object at the top of the stack into points named prefix_key... */
static void flatten(duk_context *ctx, const char *prefix, int depth, struct gw_reading *out,
                    bool *overflow)
{
    duk_enum(ctx, -1, DUK_ENUM_OWN_PROPERTIES_ONLY);
    while (!*overflow && duk_next(ctx, -1, 1)) {
        duk_size_t klen = 0;
        const char *key = duk_to_lstring(ctx, -2, &klen);
        char name[GW_NAME_MAX * 4];
        if (prefix[0]) {
            snprintf(name, sizeof(name), "%s_%.*s", prefix, (int)klen, key);
        } else {
            snprintf(name, sizeof(name), "%.*s", (int)klen, key);
        }
        struct gw_point_value *pv;
        switch (duk_get_type(ctx, -1)) {
        case DUK_TYPE_NUMBER: {
            double v = duk_get_number(ctx, -1);
            if ((pv = next_point(out, name, overflow)) != NULL) {
                if (isfinite(v)) {
                    pv->value.type = GW_VALUE_NUMBER;
                    pv->value.num = v;
                } else {
                    pv->fault = GW_FAULT_INVALID;
                }
            }
            break;
        }
        case DUK_TYPE_BOOLEAN:
            if ((pv = next_point(out, name, overflow)) != NULL) {
                pv->value.type = GW_VALUE_BOOL;
                pv->value.b = duk_get_boolean(ctx, -1);
                pv->value.num = pv->value.b ? 1 : 0;
            }
            break;
        case DUK_TYPE_STRING: {
            duk_size_t slen = 0;
            const char *str = duk_get_lstring(ctx, -1, &slen);
            if ((pv = next_point(out, name, overflow)) != NULL) {
                pv->value.type = GW_VALUE_STRING;
                copy_utf8(pv->value.str, sizeof(pv->value.str), str, slen);
            }
            break;
        }
        case DUK_TYPE_OBJECT:
            if (!duk_is_function(ctx, -1) && depth < MAX_DEPTH) {
                flatten(ctx, name, depth + 1, out, overflow);
            }
            break;
        default:
            break; /* null, undefined, buffers, pointers */
        }
        duk_pop_2(ctx);
    }
    duk_pop(ctx); /* the enumerator */
}

static void push_bytes(duk_context *ctx, const uint8_t *bytes, size_t len)
{
    duk_push_array(ctx);
    for (size_t i = 0; i < len; i++) {
        duk_push_uint(ctx, bytes[i]);
        duk_put_prop_index(ctx, -2, (duk_uarridx_t)i);
    }
}

/* TTN errors: [..] -> "a; b" in the frame's err. */
static void join_errors(duk_context *ctx, struct frame *fr)
{
    char buf[GW_ERR_MAX * 2];
    size_t used = 0;
    buf[0] = '\0';
    duk_size_t n = duk_get_length(ctx, -1);
    for (duk_size_t i = 0; i < n; i++) {
        duk_get_prop_index(ctx, -1, (duk_uarridx_t)i);
        const char *e = duk_safe_to_string(ctx, -1);
        int w = snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "; " : "", e);
        if (w > 0) {
            used += (size_t)w < sizeof(buf) - used ? (size_t)w : sizeof(buf) - used - 1;
        }
        duk_pop(ctx);
    }
    seterr(fr->err, fr->errlen, "%s: decodeUplink returned errors: %s", fr->js->path, buf);
}

static duk_ret_t frame_call(duk_context *ctx, void *udata)
{
    struct frame *fr = udata;
    switch (fr->js->form) {
    case FORM_TTN:
        duk_get_global_string(ctx, "decodeUplink");
        duk_push_object(ctx);
        push_bytes(ctx, fr->bytes, fr->len);
        duk_put_prop_string(ctx, -2, "bytes");
        duk_push_int(ctx, fr->fport);
        duk_put_prop_string(ctx, -2, "fPort");
        duk_get_global_string(ctx, "Date");
        duk_push_number(ctx, (double)fr->ts_ms);
        duk_new(ctx, 1);
        duk_put_prop_string(ctx, -2, "recvTime");
        duk_push_object(ctx);
        duk_put_prop_string(ctx, -2, "variables");
        duk_call(ctx, 1);
        if (!duk_is_object(ctx, -1)) {
            return duk_error(ctx, DUK_ERR_TYPE_ERROR, "decodeUplink returned no object");
        }
        duk_get_prop_string(ctx, -1, "errors");
        if (duk_is_array(ctx, -1) && duk_get_length(ctx, -1) > 0) {
            join_errors(ctx, fr);
            fr->rc = -EINVAL;
            return 0;
        }
        duk_pop(ctx);
        duk_get_prop_string(ctx, -1, "data");
        if (!duk_is_object(ctx, -1)) {
            return duk_error(ctx, DUK_ERR_TYPE_ERROR, "decodeUplink returned no data object");
        }
        break;
    case FORM_CHIRPSTACK:
        duk_get_global_string(ctx, "Decode");
        duk_push_int(ctx, fr->fport);
        push_bytes(ctx, fr->bytes, fr->len);
        duk_push_object(ctx);
        duk_call(ctx, 3);
        if (!duk_is_object(ctx, -1)) {
            return duk_error(ctx, DUK_ERR_TYPE_ERROR, "Decode returned no object");
        }
        break;
    case FORM_TTN_V2:
        duk_get_global_string(ctx, "Decoder");
        push_bytes(ctx, fr->bytes, fr->len);
        duk_push_int(ctx, fr->fport);
        duk_call(ctx, 2);
        if (!duk_is_object(ctx, -1)) {
            return duk_error(ctx, DUK_ERR_TYPE_ERROR, "Decoder returned no object");
        }
        break;
    }
    flatten(ctx, "", 0, fr->out, &fr->overflow);
    return 0;
}

static const char *form_name(enum js_form f)
{
    return f == FORM_TTN ? "decodeUplink" : f == FORM_CHIRPSTACK ? "Decode" : "Decoder";
}

int gw_js_run(struct gw_js *js, const uint8_t *bytes, size_t len, int fport, int64_t ts_ms,
              struct gw_reading *out, char *err, size_t errlen)
{
    if (!js || !out || (len > 0 && !bytes) || out->npoints < 0 || out->npoints > GW_MAX_POINTS) {
        return -EINVAL;
    }
    if (!js->ctx) {
        /* Rebuilt after a time or memory limit stopped the previous frame. */
        int rc = heap_open(js, err, errlen);
        if (rc < 0) {
            return rc;
        }
    }
    if (ts_ms <= 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ts_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    }
    struct frame fr = {js, bytes, len, fport, ts_ms, out, false, 0, err, errlen};
    int start = out->npoints;
    int rc = guarded(js, frame_call, &fr, form_name(js->form), err, errlen);
    if (rc < 0) {
        out->npoints = start; /* half a result from a failed decoder is no result */
        return rc;
    }
    if (fr.rc < 0) {
        return fr.rc;
    }
    if (fr.overflow) {
        seterr(err, errlen, "%s: decoder returned more than %d values; kept the first ones",
               js->path, GW_MAX_POINTS);
        return -E2BIG;
    }
    return 0;
}

/* ---- examples.json ---------------------------------------------------------- */

struct report {
    char *buf;
    size_t len, used;
};

static void report_add(struct report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report_add(struct report *r, const char *fmt, ...)
{
    if (!r->buf || r->len == 0 || r->used >= r->len - 1) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(r->buf + r->used, r->len - r->used, fmt, ap);
    va_end(ap);
    if (w > 0) {
        r->used += (size_t)w < r->len - r->used ? (size_t)w : r->len - r->used - 1;
    }
}

static void value_text(const struct gw_point_value *p, char *buf, size_t len)
{
    if (p->fault != GW_FAULT_NONE) {
        snprintf(buf, len, "(%s)", gw_fault_name(p->fault));
        return;
    }
    switch (p->value.type) {
    case GW_VALUE_NUMBER:
        snprintf(buf, len, "%.17g", p->value.num);
        break;
    case GW_VALUE_BOOL:
        snprintf(buf, len, "%s", p->value.b ? "true" : "false");
        break;
    case GW_VALUE_STRING:
        snprintf(buf, len, "\"%s\"", p->value.str);
        break;
    default:
        snprintf(buf, len, "(none)");
        break;
    }
}

static bool same_value(const struct gw_point_value *a, const struct gw_point_value *b)
{
    if (a->value.type != b->value.type) {
        return false;
    }
    switch (a->value.type) {
    case GW_VALUE_NUMBER: {
        double d = fabs(a->value.num - b->value.num);
        double m = fmax(1.0, fmax(fabs(a->value.num), fabs(b->value.num)));
        return d <= 1e-9 * m;
    }
    case GW_VALUE_BOOL:
        return a->value.b == b->value.b;
    case GW_VALUE_STRING:
        return strcmp(a->value.str, b->value.str) == 0;
    default:
        return true;
    }
}

static const struct gw_point_value *find_point(const struct gw_reading *r, const char *name)
{
    for (int i = 0; i < r->npoints; i++) {
        if (r->points[i].fault == GW_FAULT_NONE && strcmp(r->points[i].name, name) == 0) {
            return &r->points[i];
        }
    }
    return NULL;
}

/* Compare expected with got (faulted points count as absent); one report line per example. */
static bool compare_points(const struct gw_reading *want, const struct gw_reading *got,
                           struct report *r, int idx, const char *desc)
{
    char a[64], b[64];
    for (int i = 0; i < want->npoints; i++) {
        const struct gw_point_value *w = &want->points[i];
        if (w->fault != GW_FAULT_NONE) {
            continue;
        }
        const struct gw_point_value *g = find_point(got, w->name);
        value_text(w, a, sizeof(a));
        if (!g) {
            report_add(r, "example %d (%s): %s: expected %s, missing\n", idx, desc, w->name, a);
            return false;
        }
        if (!same_value(w, g)) {
            value_text(g, b, sizeof(b));
            report_add(r, "example %d (%s): %s: expected %s, got %s\n", idx, desc, w->name, a, b);
            return false;
        }
    }
    for (int i = 0; i < got->npoints; i++) {
        const struct gw_point_value *g = &got->points[i];
        if (g->fault == GW_FAULT_NONE && !find_point(want, g->name)) {
            value_text(g, b, sizeof(b));
            report_add(r, "example %d (%s): %s: not expected, got %s\n", idx, desc, g->name, b);
            return false;
        }
    }
    return true;
}

struct check {
    struct gw_decoder *d;
    const char *path;
    char *json;
    size_t jsonlen;
    struct report *r;
    int mismatches;
    int examples;
};

/* One example, the example object at -1. */
static void check_one(duk_context *ctx, struct check *c, int idx)
{
    char desc[96];
    duk_get_prop_string(ctx, -1, "description");
    copy_utf8(desc, sizeof(desc), duk_is_string(ctx, -1) ? duk_get_string(ctx, -1) : "",
              duk_is_string(ctx, -1) ? strlen(duk_get_string(ctx, -1)) : 0);
    duk_pop(ctx);

    uint8_t bytes[256];
    size_t len = 0;
    int fport = 1;
    bool ok_input = false;
    if (duk_get_prop_string(ctx, -1, "input") && duk_is_object(ctx, -1)) {
        ok_input = true;
        if (duk_get_prop_string(ctx, -1, "fPort") && duk_is_number(ctx, -1)) {
            fport = duk_get_int(ctx, -1);
        }
        duk_pop(ctx);
        if (duk_get_prop_string(ctx, -1, "bytes") && duk_is_array(ctx, -1)) {
            duk_size_t n = duk_get_length(ctx, -1);
            for (duk_size_t i = 0; i < n && ok_input; i++) {
                duk_get_prop_index(ctx, -1, (duk_uarridx_t)i);
                double v = duk_is_number(ctx, -1) ? duk_get_number(ctx, -1) : -1;
                if (v < 0 || v > 255 || v != floor(v) || len >= sizeof(bytes)) {
                    ok_input = false;
                } else {
                    bytes[len++] = (uint8_t)v;
                }
                duk_pop(ctx);
            }
        } else {
            ok_input = false;
        }
        duk_pop(ctx);
    }
    duk_pop(ctx);
    c->examples++;
    if (!ok_input) {
        report_add(c->r, "example %d (%s): input.bytes is not a list of bytes\n", idx, desc);
        c->mismatches++;
        return;
    }

    struct gw_reading want;
    memset(&want, 0, sizeof(want));
    bool want_overflow = false;
    int nerrors = 0;
    if (duk_get_prop_string(ctx, -1, "output") && duk_is_object(ctx, -1)) {
        if (duk_get_prop_string(ctx, -1, "data") && duk_is_object(ctx, -1)) {
            flatten(ctx, "", 0, &want, &want_overflow);
        }
        duk_pop(ctx);
        duk_get_prop_string(ctx, -1, "errors");
        if (duk_is_array(ctx, -1)) {
            nerrors = (int)duk_get_length(ctx, -1);
        }
        duk_pop(ctx);
    }
    /* leave output at -1 for the error strings */

    struct gw_reading got;
    memset(&got, 0, sizeof(got));
    got.ts_ms = 1;
    char err[GW_ERR_MAX * 2] = "";
    int rc = gw_decoder_run(c->d, bytes, len, fport, &got, err, sizeof(err));
    bool ok = true;
    if (nerrors > 0) {
        if (rc == 0 || rc == -E2BIG) {
            report_add(c->r, "example %d (%s): expected errors, decoded fine\n", idx, desc);
            ok = false;
        } else {
            duk_get_prop_string(ctx, -1, "errors");
            for (int i = 0; i < nerrors && ok; i++) {
                duk_get_prop_index(ctx, -1, (duk_uarridx_t)i);
                const char *e = duk_safe_to_string(ctx, -1);
                if (!strstr(err, e)) {
                    report_add(c->r, "example %d (%s): expected error \"%s\", got: %s\n", idx, desc,
                               e, err);
                    ok = false;
                }
                duk_pop(ctx);
            }
            duk_pop(ctx);
        }
    } else if (rc < 0 && rc != -E2BIG) {
        report_add(c->r, "example %d (%s): decode failed: %s\n", idx, desc, err);
        ok = false;
    } else {
        ok = compare_points(&want, &got, c->r, idx, desc);
    }
    duk_pop(ctx); /* output */
    if (!ok) {
        c->mismatches++;
    }
}

static duk_ret_t check_call(duk_context *ctx, void *udata)
{
    struct check *c = udata;
    duk_push_lstring(ctx, c->json, c->jsonlen);
    duk_json_decode(ctx, -1);
    if (!duk_is_array(ctx, -1)) {
        return duk_error(ctx, DUK_ERR_TYPE_ERROR, "not a list of examples");
    }
    duk_size_t n = duk_get_length(ctx, -1);
    for (duk_size_t i = 0; i < n; i++) {
        duk_get_prop_index(ctx, -1, (duk_uarridx_t)i);
        if (duk_is_object(ctx, -1)) {
            check_one(ctx, c, (int)i + 1);
        } else {
            report_add(c->r, "example %d: not an object\n", (int)i + 1);
            c->mismatches++;
        }
        duk_pop(ctx);
    }
    return 0;
}

int gw_decoder_check_examples(struct gw_decoder *decoder, const char *examples_path, char *report,
                              size_t len)
{
    struct report r = {report, len, 0};
    if (report && len > 0) {
        report[0] = '\0';
    }
    if (!decoder || !examples_path) {
        return -EINVAL;
    }
    /* The examples file goes through its own plain heap: it is config, not a vendor's code. */
    struct check c = {decoder, examples_path, NULL, 0, &r, 0, 0};
    FILE *f = fopen(examples_path, "rb");
    if (!f) {
        int e = errno;
        report_add(&r, "%s: %s\n", examples_path, strerror(e));
        return -e;
    }
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        if (c.jsonlen == cap) {
            if (cap >= 16u * 1024 * 1024) {
                report_add(&r, "%s: too large\n", examples_path);
                rc = -EFBIG;
                break;
            }
            cap = cap ? cap * 2 : 65536;
            char *nj = realloc(c.json, cap);
            if (!nj) {
                rc = -ENOMEM;
                break;
            }
            c.json = nj;
        }
        size_t got = fread(c.json + c.jsonlen, 1, cap - c.jsonlen, f);
        c.jsonlen += got;
        if (got == 0) {
            break;
        }
    }
    fclose(f);
    if (rc < 0) {
        free(c.json);
        return rc;
    }
    duk_context *ctx = duk_create_heap_default();
    if (!ctx) {
        free(c.json);
        return -ENOMEM;
    }
    if (duk_safe_call(ctx, check_call, &c, 0, 1) != DUK_EXEC_SUCCESS) {
        report_add(&r, "%s: %s\n", examples_path, duk_safe_to_string(ctx, -1));
        rc = -EINVAL;
    }
    duk_destroy_heap(ctx);
    free(c.json);
    return rc < 0 ? rc : c.mismatches;
}
