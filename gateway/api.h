/*
 * The JSON API's bodies (GET /api/sensors, /api/sensors/<id>, /api/alarms,
 * /api/hazards, /api/hazards/<id>): built on the loop thread from the
 * gateway's live state. The same shapes feed the status page. No I/O.
 */
#ifndef GW_API_H
#define GW_API_H

#include <stdbool.h>
#include <stdint.h>

#include "alarms.h"
#include "config.h"
#include "hazards.h"
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

/* GET /api/hazards?status=: NULL or "" (all), "open", "rectifying", "closed", "overdue". */
bool gw_api_hazard_filter_ok(const char *status);
/* Past its deadline (or flagged overdue) and not closed, at now_ms. */
bool gw_api_hazard_overdue(const struct gw_hazard *h, int64_t now_ms);

/*
 * GET /api/hazards: [the P/hazards/<id> objects (gw_hazard_json) without "seq"], newest first
 * (found_at, then id), those matching status (gw_api_hazard_filter_ok; "overdue" as
 * gw_api_hazard_overdue says). Each hazard's "updated_at" and "entries" are what
 * meta(meta_ctx, id, ...) says (gw_hazard_desk_meta in the gateway: no history is read); when it
 * fails, or meta is NULL, "" and 0. NULL when out of memory.
 */
char *gw_api_hazards(const struct gw_hazards *hz,
                     int (*meta)(const void *ctx, const char *id, int64_t *updated_at_ms,
                                 int *entries),
                     const void *meta_ctx, const char *status, int64_t now_ms);
/*
 * GET /api/hazards/<id>: {"hazard":{...as above},"history":[its entries, oldest first]}; entries
 * are that hazard's (others are skipped). NULL: unknown id, or out of memory.
 */
char *gw_api_hazard(const struct gw_hazards *hz, const char *id, const char *const *entries,
                    int nentries);

/* "YYYY-MM-DD.md" or "YYYY-MM-DD.csv" (GET /api/logs/<name>): the day (11 bytes) and *csv. */
bool gw_api_log_name(const char *name, char day[11], bool *csv);

#endif
