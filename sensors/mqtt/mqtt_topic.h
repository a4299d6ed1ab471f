/*
 * MQTT topic filters (MQTT 3.1.1, section 4.7), pure: the config checks
 * them, the MQTT source driver routes messages with them.
 */
#ifndef GW_MQTT_TOPIC_H
#define GW_MQTT_TOPIC_H

#include <stdbool.h>

#define GW_MQTT_TOPIC_MAX 512

/*
 * NULL when filter is usable, else why not ("has # before its last level").
 * '+' and '#' must be whole levels and '#' the last one; no control
 * characters; at most GW_MQTT_TOPIC_MAX bytes. *wildcard: it holds + or #.
 */
const char *gw_mqtt_filter_problem(const char *filter, bool *wildcard);

/*
 * Does topic match filter? '+' is one level (possibly empty), a final '#'
 * any number of levels including none ("a/#" matches "a"); a wildcard at
 * the first level never matches a topic starting with '$'.
 */
bool gw_mqtt_topic_matches(const char *filter, const char *topic);

#endif
