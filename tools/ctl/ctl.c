/*
 * campusgw-ctl: talk to a campusgw gateway through its MQTT hub (Paho MQTT C,
 * synchronous client). Reads the retained state (status, health, alarms),
 * sends commands on P/cmd/<name> and waits for the matching P/cmd/result,
 * and follows P/events. `verify` reads the hazard register straight from the
 * gateway's state.db (read-only) and checks its hash chain. Formatting and
 * argument checks are in ctl_format.c.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <MQTTClient.h>
#include <jansson.h>
#include <sqlite3.h>

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
    json_t *status;  /* map of P/status (one topic) */
    json_t *health;  /* P/health/<sensor> -> object */
    json_t *alarms;  /* P/alarms/<sensor>/<slug> -> object */
    json_t *hazards; /* P/hazards/<id> -> object */
    int unreadable;
};

struct retained_wanted {
    bool status, health, alarms, hazards;
};

/*
 * The retained messages under the filters. The hub sends a subscription's
 * retained messages before answering a later packet on the same connection,
 * so after unsubscribing again everything retained is already queued here.
 */
static int read_retained(MQTTClient client, const char *prefix, struct retained_wanted want,
                         struct retained_set *set)
{
    char status_topic[600], health[600], alarms[600], hazards[600];
    snprintf(status_topic, sizeof(status_topic), "%s/status", prefix);
    snprintf(health, sizeof(health), "%s/health/#", prefix);
    snprintf(alarms, sizeof(alarms), "%s/alarms/#", prefix);
    snprintf(hazards, sizeof(hazards), "%s/hazards/#", prefix);
    char *filters[4];
    int qos[4] = {0, 0, 0, 0}; /* QoS 0: no in-flight window to hold retained messages back */
    int n = 0;
    if (want.status) {
        filters[n++] = status_topic;
    }
    if (want.health) {
        filters[n++] = health;
    }
    if (want.alarms) {
        filters[n++] = alarms;
    }
    if (want.hazards) {
        filters[n++] = hazards;
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
        json_t *map = strcmp(rest, "status") == 0         ? set->status
                      : strncmp(rest, "health/", 7) == 0  ? set->health
                      : strncmp(rest, "alarms/", 7) == 0  ? set->alarms
                      : strncmp(rest, "hazards/", 8) == 0 ? set->hazards
                                                          : NULL;
        /* P/hazards/log is live history (not retained) that may slip in: not a hazard */
        if (map == set->hazards && strcmp(rest, "hazards/log") == 0) {
            map = NULL;
        }
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
    struct retained_set set = {json_object(), json_object(), json_object(), json_object(), 0};
    json_t *health = NULL, *alarms = NULL, *hazards = NULL, *summary = NULL;
    int rc = GW_CTL_EXIT_FAILURE;
    if (!set.status || !set.health || !set.alarms || !set.hazards) {
        goto out;
    }
    bool status = args->cmd == GW_CTL_STATUS;
    struct retained_wanted want = {
        .status = status,
        .health = status || args->cmd == GW_CTL_SENSORS,
        .alarms = status || args->cmd == GW_CTL_ALARMS,
        .hazards = args->cmd == GW_CTL_HAZARDS,
    };
    rc = read_retained(client, prefix, want, &set);
    if (rc != GW_CTL_EXIT_OK) {
        goto out;
    }
    rc = GW_CTL_EXIT_FAILURE;
    int64_t now = now_ms();
    health = gw_ctl_map_values(set.health);
    alarms = gw_ctl_map_values(set.alarms);
    hazards = gw_ctl_hazard_list(set.hazards, args->all, now);
    if (!health || !alarms || !hazards || gw_ctl_sort_sensors(health) < 0 ||
        gw_ctl_sort_alarms(alarms) < 0) {
        goto out;
    }
    switch (args->cmd) {
    case GW_CTL_HAZARDS:
        if (args->json ? print_json(hazards)
                       : gw_ctl_print_hazards(hazards, args->all, now, stdout)) {
            goto out;
        }
        rc = GW_CTL_EXIT_OK;
        break;
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
    json_decref(hazards);
    json_decref(set.status);
    json_decref(set.health);
    json_decref(set.alarms);
    json_decref(set.hazards);
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
        } else if (args->cmd == GW_CTL_REPORT) {
            rc = gw_ctl_print_report(result, args, stdout, stderr);
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

/* ---------------------------------------------------------------- verify */

/* Which state.db: --db, --state-dir, -c's state_dir, or the default. An exit code. */
static int verify_db_path(const struct gw_ctl_args *args, char *path, size_t size)
{
    if (args->db_path) {
        snprintf(path, size, "%s", args->db_path);
        return GW_CTL_EXIT_OK;
    }
    if (args->state_dir) {
        snprintf(path, size, "%s/state.db", args->state_dir);
        return GW_CTL_EXIT_OK;
    }
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
        free(errs);
        snprintf(path, size, "%s/state.db", cfg->state_dir);
        gw_config_free(cfg);
        return GW_CTL_EXIT_OK;
    }
    snprintf(path, size, "%s/state.db", GW_CTL_DEFAULT_STATE_DIR);
    return GW_CTL_EXIT_OK;
}

struct rows {
    struct gw_ctl_hazard_row *v;
    size_t n, cap;
};

static void rows_free(struct rows *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free((char *)r->v[i].hazard);
        free((char *)r->v[i].entry);
    }
    free(r->v);
}

static char *column_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? strdup((const char *)t) : NULL;
}

/*
 * Read every hazard_log row in n order, straight from the file and read-only:
 * the gateway may be running (WAL lets a reader in) or stopped. An exit code.
 */
static int read_hazard_log(const char *path, struct rows *rows)
{
    char uri[4200];
    snprintf(uri, sizeof(uri), "file:%s?mode=ro", path);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, PROG ": cannot open %s: %s (give --state-dir DIR or --db FILE)\n", path,
                strerror(errno));
        return GW_CTL_EXIT_FAILURE;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        rc = sqlite3_prepare_v2(db, "SELECT n, hazard, at, entry FROM hazard_log ORDER BY n", -1,
                                &st, NULL);
    }
    if (rc != SQLITE_OK) {
        const char *why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        if (strstr(why, "no such table")) {
            fprintf(stderr,
                    PROG ": %s has no hazard register (no hazard_log table): is it a campusgw "
                         "state.db?\n",
                    path);
        } else {
            fprintf(stderr, PROG ": cannot read %s: %s\n", path, why);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return GW_CTL_EXIT_FAILURE;
    }
    int out = GW_CTL_EXIT_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows->n == rows->cap) {
            size_t cap = rows->cap ? rows->cap * 2 : 256;
            struct gw_ctl_hazard_row *grown = realloc(rows->v, cap * sizeof(*grown));
            if (!grown) {
                fprintf(stderr, PROG ": out of memory\n");
                out = GW_CTL_EXIT_FAILURE;
                break;
            }
            rows->v = grown;
            rows->cap = cap;
        }
        struct gw_ctl_hazard_row *r = &rows->v[rows->n++];
        r->n = sqlite3_column_int64(st, 0);
        r->hazard = column_text(st, 1);
        r->at_ms = sqlite3_column_int64(st, 2);
        r->entry = column_text(st, 3);
    }
    if (out == GW_CTL_EXIT_OK && rc != SQLITE_DONE) {
        fprintf(stderr, PROG ": cannot read %s: %s\n", path, sqlite3_errmsg(db));
        out = GW_CTL_EXIT_FAILURE;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static int run_verify(const struct gw_ctl_args *args)
{
    char path[4096];
    int rc = verify_db_path(args, path, sizeof(path));
    if (rc != GW_CTL_EXIT_OK) {
        return rc;
    }
    struct rows rows = {0};
    rc = read_hazard_log(path, &rows);
    if (rc == GW_CTL_EXIT_OK) {
        char verdict[1024];
        int v = gw_ctl_verify_rows(rows.v, (int)rows.n, verdict, sizeof(verdict));
        if (v < 0) {
            fprintf(stderr, PROG ": out of memory\n");
            rc = GW_CTL_EXIT_FAILURE;
        } else if (v == 0) {
            printf("%s\n", verdict);
        } else {
            fprintf(stderr, PROG ": %s: the hazard register was altered: %s\n", path, verdict);
            rc = GW_CTL_EXIT_FAILURE;
        }
    }
    rows_free(&rows);
    return rc;
}

/* ---------------------------------------------------------------- main */

/* Who a hazard command is recorded as when --by is not given: the login name. */
static const char *login_name(void)
{
    const char *user = getenv("SUDO_USER");
    if (user && *user) {
        return user;
    }
    struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name && *pw->pw_name) {
        return pw->pw_name;
    }
    user = getenv("USER");
    return user && *user ? user : NULL;
}

/* `report` without --day: yesterday, local time. */
static void yesterday(char *day, size_t size)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_mday -= 1;
    tm.tm_hour = 12; /* noon: a DST change cannot move it to another day */
    tm.tm_isdst = -1;
    t = mktime(&tm);
    localtime_r(&t, &tm);
    strftime(day, size, "%Y-%m-%d", &tm);
}

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
    if (args.cmd == GW_CTL_VERIFY) {
        return finish_output(run_verify(&args));
    }
    char day[16];
    if (args.cmd == GW_CTL_REPORT && !args.target) {
        yesterday(day, sizeof(day));
        args.target = args.day = day;
    }
    if (gw_ctl_is_hazard_command(args.cmd) && !args.by) {
        args.by = login_name();
        if (!args.by) {
            fprintf(stderr, PROG ": who is doing this? give --by NAME\n");
            return GW_CTL_EXIT_USAGE;
        }
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
