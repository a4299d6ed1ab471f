/* What the core needs of the MQTT sinks beyond gw_sink_ops: the retained P/status. */
#ifndef GW_SINK_MQTT_H
#define GW_SINK_MQTT_H

#include <stdbool.h>

/* Publish status_json retained on P/status now (if connected) and after every reconnect. */
void gw_sink_mqtt_set_status(void *state, const char *status_json);
bool gw_sink_mqtt_connected(void *state);
const char *gw_sink_mqtt_prefix(void *state);

#endif
