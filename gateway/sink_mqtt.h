/* What the core needs of the MQTT sinks beyond gw_sink_ops: the retained P/status. */
#ifndef GW_SINK_MQTT_H
#define GW_SINK_MQTT_H

#include <stdbool.h>
#include <stddef.h>

/* Publish status_json retained on P/status now (if connected) and after every reconnect. */
void gw_sink_mqtt_set_status(void *state, const char *status_json);
bool gw_sink_mqtt_connected(void *state);

/*
 * Subscribe to P/cmd/+ (QoS 1) on this broker, now and after every reconnect,
 * and hand each command to fn: source "hub" or "uplink", name the last topic
 * level ("ack", "shelve", ...; never "result"), the raw payload.
 */
typedef void (*gw_sink_mqtt_command_fn)(void *ctx, const char *source, const char *name,
                                        const void *payload, size_t len);
void gw_sink_mqtt_set_command_handler(void *state, gw_sink_mqtt_command_fn fn, void *ctx);
const char *gw_sink_mqtt_prefix(void *state);

#endif
