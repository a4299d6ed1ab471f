/*
 * campusgw: the school safety-sensor gateway.
 *   campusgw -c FILE                 run
 *   campusgw --check-config -c FILE  validate, print a summary, exit 0 or 1
 *   campusgw --version
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

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
                 "\n"
                 "  -c, --config FILE   configuration file (libconfig syntax)\n"
                 "      --check-config  validate FILE, print a summary, exit 0 (ok) or 1\n"
                 "  -v, --verbose       debug logging\n"
                 "      --version       print the version and exit\n"
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

int main(int argc, char **argv)
{
    enum { OPT_CHECK = 256, OPT_VERSION };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, OPT_CHECK},
        {"verbose", no_argument, NULL, 'v'},      {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool check = false;
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
