/*
 * campusgw-ctl: talk to a campusgw gateway through its MQTT hub (Paho MQTT C,
 * synchronous client). Reads the retained state (status, health, alarms),
 * sends commands on P/cmd/<name> and waits for the matching P/cmd/result,
 * and follows P/events. Formatting and argument checks are in ctl_format.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <MQTTClient.h>
#include <jansson.h>

#include "config.h"
#include "ctl_format.h"

#define PROG "campusgw-ctl"

/* Where and how to reach the hub, once --config and the options are merged. */
struct hub {
    char host[256];
    int port;
    char prefix[512];
    char *username;
    char *password;
    bool tls;
    char *ca_file;
    char *cert_file;
    char *key_file;
    bool insecure;
    char uri[320];
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char buf[16];
    if (nbytes > sizeof(buf)) {
        nbytes = sizeof(buf);
    }
    if (getentropy(buf, nbytes) != 0) {
        /* Only uniqueness matters (matching our own result), not secrecy. */
        unsigned seed = (unsigned)getpid() ^ (unsigned)now_ms();
        for (size_t i = 0; i < nbytes; i++) {
            buf[i] = (unsigned char)rand_r(&seed);
        }
    }
    for (size_t i = 0; i < nbytes; i++) {
        sprintf(out + 2 * i, "%02x", buf[i]);
    }
}

static void hub_free(struct hub *hub)
{
    free(hub->username);
    free(hub->password);
    free(hub->ca_file);
    free(hub->cert_file);
    free(hub->key_file);
    memset(hub, 0, sizeof(*hub));
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The password: the file's first line. Warn like the gateway does when others can read it. */
static char *read_password_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, PROG ": cannot read --password-file %s: %s\n", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
        fprintf(stderr, PROG ": warning: %s is readable by group or others; chmod 600 it\n", path);
    }
    char buf[1024];
    if (!fgets(buf, sizeof(buf), f)) {
        buf[0] = '\0';
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    char *s = strdup(buf);
    memset(buf, 0, sizeof(buf));
    return s;
}

/* Merge --config (the gateway's own file) and the options. Returns an exit code. */
static int resolve_hub(const struct gw_ctl_args *args, struct hub *hub)
{
    memset(hub, 0, sizeof(*hub));
    snprintf(hub->host, sizeof(hub->host), "127.0.0.1");
    if (args->config_path) {
        char *errs = NULL;
        size_t errs_len = 0;
        FILE *errf = open_memstream(&errs, &errs_len);
        struct gw_config *cfg = gw_config_load(args->config_path, errf);
        if (errf) {
            fclose(errf);
        }
        if (!cfg) {
            fprintf(stderr, PROG ": cannot use the gateway config %s:\n%s", args->config_path,
                    errs && *errs ? errs : "(no reason given)\n");
            free(errs);
            return GW_CTL_EXIT_USAGE;
        }
        free(errs); /* only the gateway's warnings: not ours to show */
        const struct gw_hub_cfg *h = &cfg->hub;
        snprintf(hub->host, sizeof(hub->host), "%s", h->host);
        hub->port = h->port;
        snprintf(hub->prefix, sizeof(hub->prefix), "%s/%s/%s", h->topic_prefix, cfg->site.district,
                 cfg->site.school);
        /* Never the gateway's client_id: the broker would disconnect the gateway. */
        hub->username = dup_or_null(h->username);
        hub->password = dup_or_null(h->password);
        hub->tls = h->tls.ca_file != NULL;
        hub->ca_file = dup_or_null(h->tls.ca_file);
        hub->cert_file = dup_or_null(h->tls.cert_file);
        hub->key_file = dup_or_null(h->tls.key_file);
        hub->insecure = h->tls.insecure;
        gw_config_free(cfg);
    }
    if (args->host) {
        snprintf(hub->host, sizeof(hub->host), "%s", args->host);
    }
    if (args->prefix) {
        snprintf(hub->prefix, sizeof(hub->prefix), "%s", args->prefix);
    }
    if (args->cafile) {
        free(hub->ca_file);
        hub->ca_file = strdup(args->cafile);
        hub->tls = true;
    }
    if (args->port) {
        hub->port = args->port;
    } else if (!hub->port) {
        hub->port = hub->tls ? 8883 : 1883;
    }
    if (args->username) {
        free(hub->username);
        hub->username = strdup(args->username);
    }
    if (args->password_file) {
        free(hub->password);
        hub->password = read_password_file(args->password_file);
        if (!hub->password) {
            return GW_CTL_EXIT_USAGE;
        }
    }
    if (hub->password && !hub->username) {
        fprintf(stderr, PROG ": a password needs --username too\n");
        return GW_CTL_EXIT_USAGE;
    }
    /* An IPv6 literal needs brackets in a URI. */
    bool v6 = strchr(hub->host, ':') != NULL;
    snprintf(hub->uri, sizeof(hub->uri), "%s://%s%s%s:%d", hub->tls ? "ssl" : "tcp", v6 ? "[" : "",
             hub->host, v6 ? "]" : "", hub->port);
    return GW_CTL_EXIT_OK;
}

static const char *connack_reason(int rc, bool tls)
{
    if (rc == MQTTCLIENT_FAILURE && tls) {
        return "connection refused or unreachable, or the TLS handshake failed (check the CA "
               "file and that the host name is in the hub's certificate)";
    }
    switch (rc) {
    case 1:
        return "the hub refused our MQTT protocol version";
    case 2:
        return "the hub rejected our client id";
    case 3:
        return "the hub says it is unavailable";
    case 4:
        return "bad username or password";
    case 5:
        return "not authorized (check the username and the hub's ACL)";
    case MQTTCLIENT_FAILURE:
        return "connection refused or unreachable (is mosquitto running there?)";
    default:
        return rc < 0 ? MQTTClient_strerror(rc) : "refused";
    }
}

/* say: print why it failed (not on every retry of tail's reconnect). */
static int hub_connect(MQTTClient client, const struct hub *hub, int timeout_ms, bool say)
{
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    opts.keepAliveInterval = 30;
    opts.cleansession = 1;
    opts.connectTimeout = (timeout_ms + 999) / 1000;
    opts.username = hub->username;
    opts.password = hub->password;
    if (hub->tls) {
        ssl.trustStore = hub->ca_file;
        ssl.keyStore = hub->cert_file;
        ssl.privateKey = hub->key_file;
        ssl.enableServerCertAuth = !hub->insecure;
        ssl.verify = !hub->insecure;
        opts.ssl = &ssl;
    }
    int rc = MQTTClient_connect(client, &opts);
    if (rc != MQTTCLIENT_SUCCESS) {
        if (say) {
            fprintf(stderr, PROG ": cannot connect to the hub at %s: %s\n", hub->uri,
                    connack_reason(rc, hub->tls));
        }
        return GW_CTL_EXIT_CONNECT;
    }
    return GW_CTL_EXIT_OK;
}

static int hub_open(MQTTClient *client, const struct hub *hub, int timeout_ms)
{
    char client_id[64], rnd[9];
    random_hex(rnd, 4);
    snprintf(client_id, sizeof(client_id), "campusgw-ctl-%ld-%s", (long)getpid(), rnd);
    int rc = MQTTClient_create(client, hub->uri, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
    if (rc != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, PROG ": cannot use hub address %s: %s\n", hub->uri,
                MQTTClient_strerror(rc));
        return GW_CTL_EXIT_CONNECT;
    }
    rc = hub_connect(*client, hub, timeout_ms, true);
    if (rc != GW_CTL_EXIT_OK) {
        MQTTClient_destroy(client);
    }
    return rc;
}

static void hub_close(MQTTClient *client)
{
    if (MQTTClient_isConnected(*client)) {
        MQTTClient_disconnect(*client, 1000);
    }
    MQTTClient_destroy(client);
}

static int subscribe(MQTTClient client, const char *filter, int qos)
{
    int rc = MQTTClient_subscribe(client, filter, qos);
    if (rc == MQTTCLIENT_SUCCESS) {
        return GW_CTL_EXIT_OK;
    }
    if (rc == 0x80) {
        fprintf(stderr, PROG ": the hub refused our subscription to %s (check its ACL)\n", filter);
    } else {
        fprintf(stderr, PROG ": cannot subscribe to %s: %s\n", filter, MQTTClient_strerror(rc));
    }
    return GW_CTL_EXIT_CONNECT;
}

/* Flush stdout; a closed pipe (| head) ends quietly, other errors are said. */
static int finish_output(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno != EPIPE) {
            fprintf(stderr, PROG ": cannot write the output: %s\n", strerror(errno));
        }
        return GW_CTL_EXIT_FAILURE;
    }
    return rc;
}

static int print_json(const json_t *j)
{
    if (!j || json_dumpf(j, stdout, JSON_COMPACT) != 0) {
        return -1;
    }
    fputc('\n', stdout);
    return 0;
}

/* ---------------------------------------------------------------- status, sensors, alarms */

struct retained_set {
    json_t *status; /* map of P/status (one topic) */
    json_t *health; /* P/health/<sensor> -> object */
    json_t *alarms; /* P/alarms/<sensor>/<slug> -> object */
    int unreadable;
};

/*
 * The retained messages under the filters. The hub sends a subscription's
 * retained messages before answering a later packet on the same connection,
 * so after unsubscribing again everything retained is already queued here.
 */
static int read_retained(MQTTClient client, const char *prefix, bool want_status, bool want_health,
                         bool want_alarms, struct retained_set *set)
{
    char status_topic[600], health[600], alarms[600];
    snprintf(status_topic, sizeof(status_topic), "%s/status", prefix);
    snprintf(health, sizeof(health), "%s/health/#", prefix);
    snprintf(alarms, sizeof(alarms), "%s/alarms/#", prefix);
    char *filters[3];
    int qos[3] = {0, 0, 0}; /* QoS 0: no in-flight window to hold retained messages back */
    int n = 0;
    if (want_status) {
        filters[n++] = status_topic;
    }
    if (want_health) {
        filters[n++] = health;
    }
    if (want_alarms) {
        filters[n++] = alarms;
    }
    int rc = MQTTClient_subscribeMany(client, n, filters, qos);
    if (rc == MQTTCLIENT_SUCCESS) {
        for (int i = 0; i < n; i++) {
            if (qos[i] == 0x80) {
                fprintf(stderr, PROG ": the hub refused our subscription to %s (check its ACL)\n",
                        filters[i]);
                return GW_CTL_EXIT_CONNECT;
            }
        }
        rc = MQTTClient_unsubscribeMany(client, n, filters);
    }
    if (rc != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, PROG ": cannot read from the hub: %s\n", MQTTClient_strerror(rc));
        return GW_CTL_EXIT_CONNECT;
    }
    size_t plen = strlen(prefix);
    for (;;) {
        char *topic = NULL;
        int topic_len = 0;
        MQTTClient_message *msg = NULL;
        rc = MQTTClient_receive(client, &topic, &topic_len, &msg, 0);
        if (!msg) {
            MQTTClient_free(topic);
            if (rc != MQTTCLIENT_SUCCESS || !MQTTClient_isConnected(client)) {
                fprintf(stderr, PROG ": lost the connection to the hub while reading\n");
                return GW_CTL_EXIT_CONNECT;
            }
            break;
        }
        const char *rest =
            strncmp(topic, prefix, plen) == 0 && topic[plen] == '/' ? topic + plen + 1 : "";
        json_t *map = strcmp(rest, "status") == 0        ? set->status
                      : strncmp(rest, "health/", 7) == 0 ? set->health
                      : strncmp(rest, "alarms/", 7) == 0 ? set->alarms
                                                         : NULL;
        if (map && gw_ctl_collect(map, topic, msg->payload, (size_t)msg->payloadlen) < 0) {
            set->unreadable++;
        }
        MQTTClient_freeMessage(&msg);
        MQTTClient_free(topic);
    }
    if (set->unreadable > 0) {
        fprintf(stderr, PROG ": warning: ignored %d retained message%s that are not JSON objects\n",
                set->unreadable, set->unreadable == 1 ? "" : "s");
    }
    return GW_CTL_EXIT_OK;
}

static int run_query(const struct gw_ctl_args *args, MQTTClient client, const char *prefix)
{
    struct retained_set set = {json_object(), json_object(), json_object(), 0};
    json_t *health = NULL, *alarms = NULL, *summary = NULL;
    int rc = GW_CTL_EXIT_FAILURE;
    if (!set.status || !set.health || !set.alarms) {
        goto out;
    }
    bool status = args->cmd == GW_CTL_STATUS;
    rc = read_retained(client, prefix, status, status || args->cmd == GW_CTL_SENSORS,
                       status || args->cmd == GW_CTL_ALARMS, &set);
    if (rc != GW_CTL_EXIT_OK) {
        goto out;
    }
    rc = GW_CTL_EXIT_FAILURE;
    health = gw_ctl_map_values(set.health);
    alarms = gw_ctl_map_values(set.alarms);
    if (!health || !alarms || gw_ctl_sort_sensors(health) < 0 || gw_ctl_sort_alarms(alarms) < 0) {
        goto out;
    }
    int64_t now = now_ms();
    switch (args->cmd) {
    case GW_CTL_SENSORS:
        if (args->json ? print_json(health) : gw_ctl_print_sensors(health, now, stdout)) {
            goto out;
        }
        rc = GW_CTL_EXIT_OK;
        break;
    case GW_CTL_ALARMS:
        if (args->json ? print_json(alarms) : gw_ctl_print_alarms(alarms, now, stdout)) {
            goto out;
        }
        rc = GW_CTL_EXIT_OK;
        break;
    default: {
        const char *k;
        json_t *v, *st = NULL;
        json_object_foreach(set.status, k, v)
        {
            st = v;
        }
        summary = gw_ctl_status_json(st, health, alarms);
        if (!summary) {
            goto out;
        }
        if (args->json) {
            if (print_json(summary) < 0) {
                goto out;
            }
        } else {
            gw_ctl_print_status(summary, now, stdout);
        }
        rc = gw_ctl_status_exit_code(summary);
        break;
    }
    }
out:
    if (rc == GW_CTL_EXIT_FAILURE) {
        fprintf(stderr, PROG ": out of memory\n");
    }
    json_decref(summary);
    json_decref(health);
    json_decref(alarms);
    json_decref(set.status);
    json_decref(set.health);
    json_decref(set.alarms);
    return rc;
}

/* ---------------------------------------------------------------- commands */

static void print_timeout(int timeout_ms)
{
    if (timeout_ms % 1000 == 0) {
        fprintf(stderr,
                PROG ": no answer from the gateway within %d s: is campusgw running and connected "
                     "to the hub?\n",
                timeout_ms / 1000);
    } else {
        fprintf(stderr,
                PROG ": no answer from the gateway within %.1f s: is campusgw running and "
                     "connected to the hub?\n",
                timeout_ms / 1000.0);
    }
}

static int run_command(const struct gw_ctl_args *args, MQTTClient client, const char *prefix)
{
    char result_topic[600], cmd_topic[600], id[33];
    snprintf(result_topic, sizeof(result_topic), "%s/cmd/result", prefix);
    snprintf(cmd_topic, sizeof(cmd_topic), "%s/cmd/%s", prefix, gw_ctl_cmd_topic(args->cmd));
    random_hex(id, 16);

    /* Subscribe first: the answer may come before the publish call returns. */
    int rc = subscribe(client, result_topic, 1);
    if (rc != GW_CTL_EXIT_OK) {
        return rc;
    }
    char *payload = gw_ctl_command_payload(args, id);
    if (!payload) {
        fprintf(stderr, PROG ": out of memory\n");
        return GW_CTL_EXIT_FAILURE;
    }
    int64_t deadline = mono_ms() + args->timeout_ms;
    MQTTClient_deliveryToken token = 0;
    rc = MQTTClient_publish(client, cmd_topic, (int)strlen(payload), payload, 1, 0, &token);
    free(payload);
    if (rc == MQTTCLIENT_SUCCESS) {
        rc = MQTTClient_waitForCompletion(client, token, (unsigned long)args->timeout_ms);
    }
    if (rc != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, PROG ": could not send %s to the hub: %s\n", cmd_topic,
                MQTTClient_strerror(rc));
        return GW_CTL_EXIT_CONNECT;
    }
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            print_timeout(args->timeout_ms);
            return GW_CTL_EXIT_NO_ANSWER;
        }
        char *topic = NULL;
        int topic_len = 0;
        MQTTClient_message *msg = NULL;
        rc = MQTTClient_receive(client, &topic, &topic_len, &msg, (unsigned long)left);
        if (!msg) {
            MQTTClient_free(topic);
            if (rc != MQTTCLIENT_SUCCESS || !MQTTClient_isConnected(client)) {
                fprintf(stderr, PROG ": lost the connection to the hub while waiting for the "
                                     "answer\n");
                return GW_CTL_EXIT_CONNECT;
            }
            continue;
        }
        json_t *result = NULL;
        if (strcmp(topic, result_topic) == 0) {
            result = gw_ctl_match_result(msg->payload, (size_t)msg->payloadlen, id);
        }
        MQTTClient_freeMessage(&msg);
        MQTTClient_free(topic);
        if (!result) {
            continue; /* someone else's answer */
        }
        if (args->json) {
            print_json(result);
            rc = gw_ctl_result_exit_code(result);
        } else {
            rc = gw_ctl_print_result(result, args, stdout, stderr);
        }
        json_decref(result);
        return rc;
    }
}

/* ---------------------------------------------------------------- tail */

static int tail_subscribe(MQTTClient client, const struct gw_ctl_args *args, const char *prefix)
{
    char events[600], notify[600];
    snprintf(events, sizeof(events), "%s/events", prefix);
    snprintf(notify, sizeof(notify), "%s/notify/#", prefix);
    int rc = subscribe(client, events, 1);
    if (rc == GW_CTL_EXIT_OK && args->notify) {
        rc = subscribe(client, notify, 1);
    }
    return rc;
}

/* Print one message; -1 when stdout is gone. */
static int tail_print(const struct gw_ctl_args *args, const char *topic, const char *suffix,
                      const char *payload, size_t len, long *printed)
{
    if (args->json) {
        json_t *obj = json_loadb(payload, len, 0, NULL);
        if (!json_is_object(obj) || json_object_set_new(obj, "topic", json_string(topic)) < 0) {
            fprintf(stderr, PROG ": ignored a message on %s that is not a JSON object\n", topic);
            json_decref(obj);
            return 0;
        }
        print_json(obj);
        json_decref(obj);
    } else {
        char line[4096];
        if (gw_ctl_format_event(suffix, payload, len, now_ms(), line, sizeof(line)) < 0) {
            fprintf(stderr, PROG ": ignored a message on %s that is not a JSON object\n", topic);
            return 0;
        }
        printf("%s\n", line);
    }
    (*printed)++;
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}

/* Wait for the hub to come back; events meanwhile are missed (a clean session). */
static int tail_reconnect(MQTTClient client, const struct hub *hub, const struct gw_ctl_args *args,
                          const char *prefix)
{
    fprintf(stderr, PROG ": lost the connection to the hub; reconnecting (events meanwhile are "
                         "not shown)\n");
    int delay_ms = 500;
    while (!stop_requested) {
        if (hub_connect(client, hub, args->timeout_ms, false) == GW_CTL_EXIT_OK &&
            tail_subscribe(client, args, prefix) == GW_CTL_EXIT_OK) {
            fprintf(stderr, PROG ": reconnected to the hub\n");
            return 0;
        }
        for (int waited = 0; waited < delay_ms && !stop_requested; waited += 100) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        delay_ms = delay_ms * 2 > 10000 ? 10000 : delay_ms * 2;
    }
    return -1;
}

static int run_tail(const struct gw_ctl_args *args, MQTTClient client, const struct hub *hub,
                    const char *prefix)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: a blocked receive returns */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = tail_subscribe(client, args, prefix);
    if (rc != GW_CTL_EXIT_OK) {
        return rc;
    }
    /* On stderr, so it never mixes with the events a script reads. */
    fprintf(stderr, PROG ": following %s/events%s (Ctrl-C stops)\n", prefix,
            args->notify ? " and notify/#" : "");
    size_t plen = strlen(prefix);
    long printed = 0;
    while (!stop_requested && (args->count == 0 || printed < args->count)) {
        char *topic = NULL;
        int topic_len = 0;
        MQTTClient_message *msg = NULL;
        rc = MQTTClient_receive(client, &topic, &topic_len, &msg, 250);
        if (!msg) {
            MQTTClient_free(topic);
            if ((rc != MQTTCLIENT_SUCCESS || !MQTTClient_isConnected(client)) && !stop_requested &&
                tail_reconnect(client, hub, args, prefix) < 0) {
                break;
            }
            continue;
        }
        const char *suffix =
            strncmp(topic, prefix, plen) == 0 && topic[plen] == '/' ? topic + plen + 1 : topic;
        int out = tail_print(args, topic, suffix, msg->payload, (size_t)msg->payloadlen, &printed);
        MQTTClient_freeMessage(&msg);
        MQTTClient_free(topic);
        if (out < 0) {
            return GW_CTL_EXIT_FAILURE; /* stdout is gone; main says why */
        }
    }
    return GW_CTL_EXIT_OK;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    struct gw_ctl_args args;
    char err[512];
    if (gw_ctl_parse_args(argc, argv, &args, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": %s\n(campusgw-ctl --help lists commands and options)\n", err);
        return GW_CTL_EXIT_USAGE;
    }
    if (args.cmd == GW_CTL_HELP) {
        gw_ctl_usage(stdout);
        return finish_output(GW_CTL_EXIT_OK);
    }
    if (args.cmd == GW_CTL_VERSION) {
        printf(PROG " %s\n", GW_VERSION);
        return finish_output(GW_CTL_EXIT_OK);
    }

    struct hub hub;
    int rc = resolve_hub(&args, &hub);
    if (rc != GW_CTL_EXIT_OK) {
        hub_free(&hub);
        return rc;
    }
    if (gw_ctl_check_prefix(hub.prefix, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        hub_free(&hub);
        return GW_CTL_EXIT_USAGE;
    }

    MQTTClient client;
    rc = hub_open(&client, &hub, args.timeout_ms);
    if (rc != GW_CTL_EXIT_OK) {
        hub_free(&hub);
        return rc;
    }
    if (args.cmd == GW_CTL_TAIL) {
        rc = run_tail(&args, client, &hub, hub.prefix);
    } else if (gw_ctl_is_command(args.cmd)) {
        rc = run_command(&args, client, hub.prefix);
    } else {
        rc = run_query(&args, client, hub.prefix);
    }
    hub_close(&client);
    hub_free(&hub);
    return finish_output(rc);
}
