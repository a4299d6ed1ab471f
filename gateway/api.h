/*
 * The JSON API's bodies (GET /api/sensors, /api/sensors/<id>, /api/alarms):
 * built on the loop thread from the gateway's live state. The same shapes
 * feed the status page. No I/O.
 */
#ifndef GW_API_H
#define GW_API_H

#include <stdint.h>

#include "alarms.h"
#include "config.h"
#include "registry.h"

/* A sensor's state for people: "online", "offline", "fault" (answers, but a point is faulted). */
const char *gw_api_sensor_state(const struct gw_sensor_health *h);

/*
 * [{"id","kind","location":{...}|null,"state","last_seen","age_s","battery"?,"rssi"?,"snr"?,
 *   "frame_loss"?,"errors","values":{name:value},"units":{name:unit},"faults"?:{...},
 *   "out_of_service"?:true,"alarms":N}] in config order. malloc'd JSON; NULL when out of memory.
 */
char *gw_api_sensors(const struct gw_config *cfg, const struct gw_registry *reg,
                     const struct gw_alarms *alarms, int64_t now_ms);
/* One sensor as above plus "alarms": [its active alarm records]. */
char *gw_api_sensor(const struct gw_config *cfg, const struct gw_registry *reg,
                    const struct gw_alarms *alarms, int sensor_index, int64_t now_ms);
/* [active alarm records], fire alarms first, then supervisory, trouble; oldest first. */
char *gw_api_alarms(const struct gw_config *cfg, const struct gw_alarms *alarms);

#endif
