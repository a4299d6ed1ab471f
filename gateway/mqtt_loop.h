/*
 * libmosquitto on the libuv loop: its socket in a uv_poll (write interest only
 * while it has something to send), a 1 s timer for mosquitto_loop_misc
 * (keepalive), reconnect with backoff. Every MQTT user goes through this.
 * The broker being down never blocks or crashes the caller.
 */
#ifndef GW_MQTT_LOOP_H
#define GW_MQTT_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config.h"

struct gw_mqtt;

struct gw_mqtt_options {
    const char *name; /* for logs: "hub", "uplink" */
    const char *host;
    int port;
    const char *client_id;
    const char *username; /* NULL: none */
    const char *password;
    int keepalive_s;
    int max_inflight;             /* QoS 1 messages on the wire awaiting PUBACK; 0 = 100 */
    const struct gw_tls_cfg *tls; /* NULL or ca_file NULL: plain TCP */
    const char *will_topic;       /* NULL: no last will */
    const char *will_payload;
    int will_qos;
    bool will_retain;
};

struct gw_mqtt_callbacks {
    void (*on_connect)(void *ctx);
    void (*on_disconnect)(void *ctx);
    void (*on_publish)(void *ctx, int mid); /* QoS 1: PUBACK received */
    void (*on_message)(void *ctx, const char *topic, const void *payload, size_t len);
    /* Everything queued so far is written to the socket (QoS 0 back-pressure). */
    void (*on_drained)(void *ctx);
};

struct gw_mqtt *gw_mqtt_new(uv_loop_t *loop, const struct gw_mqtt_options *opt,
                            const struct gw_mqtt_callbacks *cb, void *ctx);
/* Begin connecting; failures are retried with backoff (1 s doubling to 30 s). */
int gw_mqtt_start(struct gw_mqtt *m);
bool gw_mqtt_connected(const struct gw_mqtt *m);
/* 0, or -ENOTCONN when not connected (nothing is queued then), or another -errno. */
int gw_mqtt_publish(struct gw_mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                    bool retain, int *mid);
int gw_mqtt_subscribe(struct gw_mqtt *m, const char *pattern, int qos);
/* Is anything queued in libmosquitto not yet written to the socket? */
bool gw_mqtt_write_pending(const struct gw_mqtt *m);
/* Messages queued in libmosquitto not yet written or acknowledged. */
size_t gw_mqtt_pending(const struct gw_mqtt *m);
/*
 * Disconnect cleanly once everything queued is written (at most timeout_ms),
 * then release the handles; `done` runs on the loop after that. The object is
 * freed after `done` returns.
 */
void gw_mqtt_close(struct gw_mqtt *m, int timeout_ms, void (*done)(void *ctx));

#endif
