/*
 * gw-notify-send: send one message to every channel of one contact of a
 * campusgw config, all at once, through gateway/notify.c (a test driver, not
 * installed). mqtt channels are published QoS 1 on the config's hub under
 * P/<target>.
 *
 *   gw-notify-send -c FILE [--subject S] [--key K] [--close-after MS] CONTACT TEXT
 *
 * --close-after closes the notifier MS after the sends started, cancelling
 * those still running (their lines say "notifier closing").
 *
 * Prints one line per channel as it finishes:
 *   <contact> <kind>:<target> ok|failed <error or -> <attempts> <ms since the sends started>
 * Exit 0 when every channel was ok, 1 when one failed, 2 on bad usage or config.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "mqtt_loop.h"
#include "notify.h"

#define CONNECT_TIMEOUT_MS 10000

struct app;

struct send {
    struct app *app;
    const struct gw_channel_cfg *ch;
};

struct app {
    uv_loop_t *loop;
    struct gw_config *cfg;
    const struct gw_contact_cfg *contact;
    struct gw_notifier *notifier;
    struct gw_mqtt *mqtt;
    char prefix[256];
    uv_timer_t connect_timer;
    uv_timer_t close_timer;
    int close_after_ms; /* 0: wait for every send */
    struct gw_message msg;
    struct send *sends;
    uint64_t started_ms;
    int pending;
    int failed;
    bool sent;
};

static const char *const kind_names[] = {"mqtt", "webhook", "email"};

static void usage(FILE *out)
{
    fprintf(out, "usage: gw-notify-send -c FILE [--subject S] [--key K] [--close-after MS] CONTACT "
                 "TEXT\n");
}

/* A webhook URL without its query: WeCom and DingTalk keep the robot's key there. */
static const char *shown_target(const struct gw_channel_cfg *ch)
{
    static char buf[512];
    if (ch->kind != GW_CHANNEL_WEBHOOK) {
        return ch->target;
    }
    snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(ch->target, "?#"), ch->target);
    return buf;
}

static int on_mqtt_publish(void *core, const char *topic_suffix, const char *json)
{
    struct app *app = core;
    if (!app->mqtt) {
        return -ENOTCONN;
    }
    char topic[512];
    snprintf(topic, sizeof(topic), "%s/%s", app->prefix, topic_suffix);
    return gw_mqtt_publish(app->mqtt, topic, json, strlen(json), 1, false, NULL);
}

static void on_mqtt_closed(void *ctx)
{
    (void)ctx;
}

static void on_notifier_closed(void *ctx)
{
    struct app *app = ctx;
    app->notifier = NULL;
    uv_timer_stop(&app->close_timer);
    if (app->mqtt) {
        /* Waits until the QoS 1 publishes are written (at most 5 s). */
        gw_mqtt_close(app->mqtt, 5000, on_mqtt_closed);
        app->mqtt = NULL;
    }
}

static void on_done(void *ctx, bool ok, const char *error, int attempts)
{
    struct send *s = ctx;
    struct app *app = s->app;
    uint64_t ms = uv_now(app->loop) - app->started_ms;
    char err[300];
    snprintf(err, sizeof(err), "%s", ok ? "-" : (error && error[0] ? error : "failed"));
    for (char *p = err; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }
    printf("%s %s:%s %s %s %d %llu\n", app->contact->name, kind_names[s->ch->kind],
           shown_target(s->ch), ok ? "ok" : "failed", err, attempts, (unsigned long long)ms);
    fflush(stdout);
    if (!ok) {
        app->failed++;
    }
    if (--app->pending == 0) {
        gw_notifier_close(app->notifier, on_notifier_closed, app);
    }
}

static void on_close_timer(uv_timer_t *t)
{
    struct app *app = t->data;
    if (app->notifier) {
        gw_notifier_close(app->notifier, on_notifier_closed, app);
    }
}

static void send_all(struct app *app)
{
    if (app->sent) {
        return;
    }
    app->sent = true;
    uv_timer_stop(&app->connect_timer);
    uv_update_time(app->loop);
    app->started_ms = uv_now(app->loop);
    const struct gw_contact_cfg *c = app->contact;
    for (int i = 0; i < c->nchannels; i++) {
        app->sends[i].app = app;
        app->sends[i].ch = &c->channels[i];
        int rc =
            gw_notifier_send(app->notifier, &c->channels[i], &app->msg, on_done, &app->sends[i]);
        if (rc < 0) {
            printf("%s %s:%s failed not-sent:%s 0 0\n", c->name, kind_names[c->channels[i].kind],
                   shown_target(&c->channels[i]), strerror(-rc));
            app->failed++;
            continue;
        }
        app->pending++;
    }
    fflush(stdout);
    if (app->close_after_ms > 0) {
        uv_timer_start(&app->close_timer, on_close_timer, (uint64_t)app->close_after_ms, 0);
    }
    if (app->pending == 0) {
        gw_notifier_close(app->notifier, on_notifier_closed, app);
    }
}

static void on_mqtt_connect(void *ctx)
{
    send_all(ctx);
}

static void on_connect_timeout(uv_timer_t *t)
{
    struct app *app = t->data;
    fprintf(stderr, "gw-notify-send: hub %s:%d not reachable within %d ms; sending anyway\n",
            app->cfg->hub.host, app->cfg->hub.port, CONNECT_TIMEOUT_MS);
    send_all(app);
}

static int start_mqtt(struct app *app)
{
    const struct gw_config *cfg = app->cfg;
    snprintf(app->prefix, sizeof(app->prefix), "%s/%s/%s", cfg->hub.topic_prefix,
             cfg->site.district, cfg->site.school);
    char client_id[128];
    snprintf(client_id, sizeof(client_id), "gw-notify-send-%d", (int)getpid());
    struct gw_mqtt_options opt = {
        .name = "hub",
        .host = cfg->hub.host,
        .port = cfg->hub.port,
        .client_id = client_id,
        .username = cfg->hub.username,
        .password = cfg->hub.password,
        .keepalive_s = cfg->hub.keepalive_s,
        .tls = &cfg->hub.tls,
    };
    struct gw_mqtt_callbacks cb = {.on_connect = on_mqtt_connect};
    app->mqtt = gw_mqtt_new(app->loop, &opt, &cb, app);
    if (!app->mqtt || gw_mqtt_start(app->mqtt) < 0) {
        return -1;
    }
    return 0;
}

static char *build_json(const struct app *app, const char *key, const char *text)
{
    json_t *root =
        json_pack("{s:i, s:s, s:s, s:i, s:s, s:s, s:{}}", "seq", 1, "key", key, "class", "alarm",
                  "level", 1, "text", text, "sensor", "gw-notify-send", "location");
    (void)app;
    if (!root) {
        return NULL;
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"subject", required_argument, NULL, 's'},
        {"key", required_argument, NULL, 'k'},
        {"close-after", required_argument, NULL, 'x'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *subject = NULL, *key = "gw-notify-send/test";
    int close_after_ms = 0;
    int c;
    while ((c = getopt_long(argc, argv, "c:s:k:vh", options, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 's':
            subject = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'x':
            close_after_ms = atoi(optarg);
            if (close_after_ms <= 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'v':
            gw_log_set_level(GW_LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!path || argc - optind != 2) {
        usage(stderr);
        return 2;
    }
    const char *contact = argv[optind];
    const char *text = argv[optind + 1];

    struct app app = {.loop = uv_default_loop(), .close_after_ms = close_after_ms};
    app.cfg = gw_config_load(path, stderr);
    if (!app.cfg) {
        return 2;
    }
    for (int i = 0; i < app.cfg->ncontacts; i++) {
        if (strcmp(app.cfg->contacts[i].name, contact) == 0) {
            app.contact = &app.cfg->contacts[i];
        }
    }
    if (!app.contact) {
        fprintf(stderr, "gw-notify-send: no contact named \"%s\" in %s\n", contact, path);
        gw_config_free(app.cfg);
        return 2;
    }
    /* The Date header is in the site's time, as in the gateway. */
    setenv("TZ", app.cfg->site.timezone ? app.cfg->site.timezone : "UTC", 1);
    tzset();
    signal(SIGPIPE, SIG_IGN);

    char *json = build_json(&app, key, text);
    app.msg = (struct gw_message){.json = json, .text = text, .subject = subject};
    app.sends = calloc((size_t)app.contact->nchannels + 1, sizeof(*app.sends));
    int rc = 2;
    if (!json || !app.sends) {
        fprintf(stderr, "gw-notify-send: out of memory or TEXT is not UTF-8\n");
        goto out;
    }
    bool has_mqtt = false;
    for (int i = 0; i < app.contact->nchannels; i++) {
        has_mqtt |= app.contact->channels[i].kind == GW_CHANNEL_MQTT;
    }
    app.notifier = gw_notifier_new(app.loop, app.cfg, on_mqtt_publish, &app);
    if (!app.notifier) {
        goto out;
    }
    uv_timer_init(app.loop, &app.connect_timer);
    app.connect_timer.data = &app;
    uv_timer_init(app.loop, &app.close_timer);
    app.close_timer.data = &app;
    if (has_mqtt && start_mqtt(&app) == 0) {
        /* Every send starts together once the hub is connected, so the mqtt channel is real. */
        uv_timer_start(&app.connect_timer, on_connect_timeout, CONNECT_TIMEOUT_MS, 0);
    } else {
        send_all(&app);
    }
    uv_run(app.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&app.connect_timer, NULL);
    uv_close((uv_handle_t *)&app.close_timer, NULL);
    uv_run(app.loop, UV_RUN_DEFAULT);
    rc = app.failed ? 1 : 0;
out:
    uv_loop_close(app.loop);
    free(app.sends);
    free(json);
    gw_config_free(app.cfg);
    return rc;
}
