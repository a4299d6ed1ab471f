/*
 * MQTT sources, the pure part: messages from the hub -> readings. A sensor
 * bound with `mqtt = { topic; format; dev_eui; }` gets its values either from
 * a JSON object by the paths of a `json` profile (Zigbee2MQTT, Wi-Fi and
 * NB-IoT bridges), or from a ChirpStack v4 uplink event (its decoded `object`
 * by paths, or its raw `data` through the profile's layout / cayenne_lpp / js
 * codec). No sockets, no clock: the caller passes now_ms.
 */
#ifndef GW_MQTT_SOURCE_H
#define GW_MQTT_SOURCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "reading.h"

/* Larger payloads are refused unparsed (a ChirpStack uplink event is a few KB). */
#define GW_MQTT_MAX_PAYLOAD (64 * 1024)
/* A ChirpStack event `time` further than this from now is not trusted: now is used. */
#define GW_MQTT_MAX_CLOCK_SKEW_MS (5 * 60 * 1000)
/* LoRaWAN's largest FRMPayload is 242 bytes; `data` beyond this is refused. */
#define GW_CHIRPSTACK_MAX_DATA 256

/* ---- building blocks ---------------------------------------------------- */

/*
 * The node at a dotted path: each level is an object key, or on an array a
 * decimal index ("rxInfo.0.rssi"). NULL when any level is absent.
 */
const json_t *gw_json_path_get(const json_t *root, const char *path);

/*
 * One configured value from its JSON node (NULL: absent). Returns
 * GW_FAULT_NONE with *out set, or GW_FAULT_INVALID (absent, null, object,
 * array, wrong type for `type`, enum miss, string too long, not finite).
 */
enum gw_point_fault gw_json_convert(const struct gw_json_value_cfg *v, const json_t *node,
                                    struct gw_value *out);

/*
 * Append one point per value to out (a missing or unusable one as a
 * GW_FAULT_INVALID point). 0, or -E2BIG when out has no room left.
 */
int gw_json_extract(const struct gw_json_value_cfg *values, int n, const json_t *root,
                    struct gw_reading *out);

/* RFC 4648 base64, padding optional. 0, -EINVAL (bad character or length), -E2BIG (> cap). */
int gw_base64_decode(const char *in, uint8_t *out, size_t cap, size_t *outlen);

/* What a ChirpStack v4 uplink event says (integration JSON, camelCase). */
struct gw_chirpstack_up {
    char dev_eui[17]; /* deviceInfo.devEui, lower case */
    int fport;        /* -1 when absent */
    bool has_fcnt;
    uint32_t fcnt;
    bool has_time;
    int64_t time_ms;
    int gateways; /* rxInfo entries */
    bool has_rssi, has_snr;
    double rssi, snr;     /* the best (highest) of rxInfo, each on its own */
    const json_t *object; /* decoded by ChirpStack's codec; NULL when absent */
    bool has_data;
    size_t data_len;
    uint8_t data[GW_CHIRPSTACK_MAX_DATA];
};

/* 0, or -EINVAL with a message in err (no deviceInfo.devEui, bad fPort/fCnt/data...). */
int gw_chirpstack_parse_up(const json_t *root, struct gw_chirpstack_up *out, char *err,
                           size_t errlen);

/* A ChirpStack event topic other than an uplink (.../event/join, status, ack, txack, log...). */
bool gw_chirpstack_other_event(const char *topic);

/* ---- the router: every MQTT sensor of a config -------------------------- */

struct gw_mqtt_router;

/*
 * Sources are the config's sensors with an mqtt block; chirpstack sensors
 * with a byte codec get their decoder here. Sensors sharing a topic filter
 * share one subscription. The router points into cfg: free it first. NULL
 * with a message in err on failure (a js decoder that no longer compiles).
 */
struct gw_mqtt_router *gw_mqtt_router_new(const struct gw_config *cfg, char *err, size_t errlen);
void gw_mqtt_router_free(struct gw_mqtt_router *r);

/* Distinct topic filters to subscribe to. */
int gw_mqtt_router_nfilters(const struct gw_mqtt_router *r);
const char *gw_mqtt_router_filter(const struct gw_mqtt_router *r, int i);
int gw_mqtt_router_nsources(const struct gw_mqtt_router *r);
const char *gw_mqtt_router_sensor(const struct gw_mqtt_router *r, int source);

struct gw_mqtt_handler {
    /* One reading of source (valid during the call only). */
    void (*reading)(void *ctx, int source, const struct gw_reading *r);
    /*
     * A message that should have been a reading and is not. source is -1
     * when it cannot be told whose it was (a shared subscription); filter is
     * the index of the first matching subscription.
     */
    void (*rejected)(void *ctx, int source, int filter, const char *topic, const char *why);
    void *ctx;
};

struct gw_mqtt_result {
    int readings;
    int rejected;
    bool ignored; /* for no configured sensor: another device, another event, no payload */
    char ignored_why[96];
};

/* One message from the hub. */
void gw_mqtt_router_handle(struct gw_mqtt_router *r, const char *topic, const void *payload,
                           size_t len, int64_t now_ms, const struct gw_mqtt_handler *h,
                           struct gw_mqtt_result *res);

#endif
