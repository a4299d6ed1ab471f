/*
 * campusgw: the school safety-sensor gateway.
 *   campusgw -c FILE                 run
 *   campusgw --check-config -c FILE  validate, print a summary, exit 0 or 1
 *   campusgw --version
 *   campusgw --hash-password         read a password on stdin, print its Argon2id hash
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "auth.h"
#include "config.h"
#include "gateway.h"
#include "log.h"

struct app {
    uv_loop_t *loop;
    const char *config_path;
    struct gw_gateway *gw;
    uv_signal_t sigterm, sigint, sighup, sigusr1, sigusr2;
    bool stopping;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: campusgw -c FILE [-v]\n"
                 "       campusgw --check-config -c FILE\n"
                 "       campusgw --version\n"
                 "       campusgw --hash-password\n"
                 "\n"
                 "  -c, --config FILE   configuration file (libconfig syntax)\n"
                 "      --check-config  validate FILE, print a summary, exit 0 (ok) or 1\n"
                 "  -v, --verbose       debug logging\n"
                 "      --version       print the version and exit\n"
                 "      --hash-password read a password (or bearer token) on stdin, print its\n"
                 "                      Argon2id hash for http.users (password_hash, token_hash)\n"
                 "\n"
                 "Signals: SIGTERM/SIGINT stop cleanly; SIGHUP reloads FILE (kept if invalid);\n"
                 "         SIGUSR1 publishes P/metrics now; SIGUSR2 runs the path self-test.\n");
}

/* Schedules are evaluated in the site's local time: the whole process uses it. */
static void apply_timezone(const struct gw_config *cfg)
{
    setenv("TZ", cfg->site.timezone ? cfg->site.timezone : "UTC", 1);
    tzset();
}

static void on_stopped(void *ctx)
{
    struct app *app = ctx;
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sighup, NULL);
    uv_close((uv_handle_t *)&app->sigusr1, NULL);
    uv_close((uv_handle_t *)&app->sigusr2, NULL);
}

static void on_selftest_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    struct app *app = h->data;
    if (!app->stopping) {
        gw_gateway_selftest(app->gw);
    }
}

static void on_metrics_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    struct app *app = h->data;
    if (!app->stopping) {
        gw_gateway_emit_metrics(app->gw);
    }
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct app *app = h->data;
    if (app->stopping) {
        return;
    }
    app->stopping = true;
    gw_info("main", "signal=%s: shutting down", signum == SIGTERM ? "TERM" : "INT");
    gw_gateway_stop(app->gw, on_stopped, app);
}

static void on_reload_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    struct app *app = h->data;
    if (app->stopping) {
        return;
    }
    gw_info("main", "signal=HUP: reloading config path=%s", app->config_path);
    struct gw_config *cfg = gw_config_load(app->config_path, stderr);
    if (!cfg) {
        gw_error("main", "config reload failed; still running on the previous config path=%s",
                 app->config_path);
        return;
    }
    apply_timezone(cfg);
    gw_gateway_reload(app->gw, cfg);
}

/* ---- --hash-password --------------------------------------------------- */

/* The terminal as it was, restored on every way out (also Ctrl-C at the prompt). */
static struct termios saved_tty;
static volatile sig_atomic_t tty_quiet;

static void restore_tty(void)
{
    if (tty_quiet) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
        tty_quiet = 0;
    }
}

static void on_prompt_signal(int signum)
{
    restore_tty();
    signal(signum, SIG_DFL);
    raise(signum);
}

/* Prompts on stderr and reads one line with echo off. Returns its length, or -1. */
static int read_hidden_line(const char *prompt, char *buf, size_t size)
{
    if (tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
        struct termios quiet = saved_tty;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        signal(SIGINT, on_prompt_signal);
        signal(SIGTERM, on_prompt_signal);
        signal(SIGHUP, on_prompt_signal);
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0) {
            tty_quiet = 1;
        }
    }
    /* Only now: what is typed after the prompt is neither echoed nor flushed away. */
    fputs(prompt, stderr);
    fflush(stderr);
    char *got = fgets(buf, (int)size, stdin);
    restore_tty();
    if (!got) {
        fputs("\n", stderr);
        return -1;
    }
    size_t n = strlen(buf);
    if (n == 0 || buf[n - 1] != '\n') {
        return -2; /* longer than the buffer */
    }
    buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r') {
        buf[--n] = '\0';
    }
    return (int)n;
}

/* All of stdin: one line, its newline (\n or \r\n) optional. Returns its length, or < 0. */
static int read_piped_secret(char *buf, size_t size)
{
    size_t n = fread(buf, 1, size - 1, stdin);
    if (ferror(stdin)) {
        return -1;
    }
    if (n == size - 1 && fgetc(stdin) != EOF) {
        return -2;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n') {
        buf[--n] = '\0';
        if (n > 0 && buf[n - 1] == '\r') {
            buf[--n] = '\0';
        }
    }
    if (strlen(buf) != n) {
        return -3;
    }
    if (memchr(buf, '\n', n)) {
        return -4;
    }
    return (int)n;
}

/*
 * Prints the Argon2id hash of a password (or a bearer token) for http.users.
 * libsodium's INTERACTIVE limits (2 passes over 64 MiB): one check takes
 * about 0.1 s on a desktop PC and several times that on a Raspberry Pi,
 * cheap for a login and costly for someone guessing; 64 MiB fits a Pi.
 */
static int hash_password(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "campusgw: libsodium cannot start\n");
        return 1;
    }
    /* room for the longest password, its newline and one byte more to notice a longer one */
    char pw[GW_AUTH_PASSWORD_MAX + 3];
    char again[GW_AUTH_PASSWORD_MAX + 3];
    int rc = 1;
    int n;
    bool tty = isatty(STDIN_FILENO);
    if (tty) {
        n = read_hidden_line("Password: ", pw, sizeof(pw));
        if (n > 0) {
            int m = read_hidden_line("Again: ", again, sizeof(again));
            if (m < 0) {
                n = m;
            } else if (m != n || sodium_memcmp(pw, again, (size_t)n) != 0) {
                fprintf(stderr, "campusgw: the two passwords differ; nothing printed\n");
                goto out;
            }
        }
    } else {
        n = read_piped_secret(pw, GW_AUTH_PASSWORD_MAX + 2);
    }
    if (n == -1) {
        fprintf(stderr, "campusgw: no password read (%s)\n",
                tty ? "end of input" : strerror(errno));
        goto out;
    }
    if (n == -2 || n > GW_AUTH_PASSWORD_MAX) {
        fprintf(stderr, "campusgw: the password is longer than %d bytes\n", GW_AUTH_PASSWORD_MAX);
        goto out;
    }
    if (n == -3) {
        fprintf(stderr, "campusgw: the password holds a NUL byte\n");
        goto out;
    }
    if (n == -4) {
        fprintf(stderr, "campusgw: stdin holds more than one line; give the password alone\n");
        goto out;
    }
    if (n == 0) {
        fprintf(stderr, "campusgw: refusing an empty password\n");
        goto out;
    }
    if (n < 8) {
        fprintf(stderr, "warning: a password of fewer than 8 characters is easy to guess\n");
    }
    char hash[crypto_pwhash_STRBYTES];
    if (gw_auth_hash(pw, (size_t)n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                     crypto_pwhash_MEMLIMIT_INTERACTIVE, hash) != 0) {
        fprintf(stderr, "campusgw: hashing failed (out of memory? it needs %zu MiB)\n",
                (size_t)crypto_pwhash_MEMLIMIT_INTERACTIVE >> 20);
        goto out;
    }
    printf("%s\n", hash);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    sodium_memzero(pw, sizeof(pw));
    sodium_memzero(again, sizeof(again));
    return rc;
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK = 256, OPT_VERSION, OPT_HASH };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {"hash-password", no_argument, NULL, OPT_HASH},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool check = false;
    bool hash = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:vh", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'v':
            gw_log_set_level(GW_LOG_DEBUG);
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_HASH:
            hash = true;
            break;
        case OPT_VERSION:
            printf("campusgw %s\n", GW_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (hash) {
        if (path || check || optind != argc) {
            usage(stderr);
            return 2;
        }
        return hash_password();
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }

    struct gw_config *cfg = gw_config_load(path, stderr);
    if (!cfg) {
        fprintf(stderr, "%s: configuration is invalid%s\n", path,
                check ? "" : "; the gateway did not start");
        return 1;
    }
    if (check) {
        gw_config_print_summary(cfg, stdout);
        gw_config_free(cfg);
        return 0;
    }
    apply_timezone(cfg);
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());

    struct app app = {.loop = uv_default_loop(), .config_path = path};
    app.gw = gw_gateway_new(app.loop, cfg, true);
    if (!app.gw) {
        gw_config_free(cfg);
        return 1;
    }
    uv_signal_init(app.loop, &app.sigterm);
    uv_signal_init(app.loop, &app.sigint);
    uv_signal_init(app.loop, &app.sighup);
    uv_signal_init(app.loop, &app.sigusr1);
    uv_signal_init(app.loop, &app.sigusr2);
    app.sigterm.data = app.sigint.data = app.sighup.data = app.sigusr1.data = &app;
    app.sigusr2.data = &app;
    uv_signal_start(&app.sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_stop_signal, SIGINT);
    uv_signal_start(&app.sighup, on_reload_signal, SIGHUP);
    uv_signal_start(&app.sigusr1, on_metrics_signal, SIGUSR1);
    uv_signal_start(&app.sigusr2, on_selftest_signal, SIGUSR2);

    int rc = gw_gateway_start(app.gw);
    if (rc != 0) {
        gw_error("main", "start failed: %s", uv_strerror(rc));
        app.stopping = true;
        gw_gateway_stop(app.gw, on_stopped, &app);
    }
    uv_run(app.loop, UV_RUN_DEFAULT);
    gw_gateway_free(app.gw);
    uv_loop_close(app.loop);
    gw_info("main", "stopped");
    return rc == 0 ? 0 : 1;
}
