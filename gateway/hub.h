/*
 * The local hub: the school's Mosquitto. Topics are <topic_prefix>/<district>/<school>/...
 * The retained P/status carries a last will {"online":false}.
 */
#ifndef GW_HUB_H
#define GW_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

struct gw_hub;

struct gw_hub_stats {
    uint64_t published;
    uint64_t not_connected; /* publishes skipped while the broker was unreachable */
    uint64_t failed;
};

struct gw_hub *gw_hub_new(uv_loop_t *loop, const struct gw_config *cfg,
                          void (*on_connect)(void *ctx), void *ctx);
int gw_hub_start(struct gw_hub *hub);
bool gw_hub_connected(const struct gw_hub *hub);
/* Same hub settings (so a reload can keep the connection)? */
bool gw_hub_same_settings(const struct gw_config *a, const struct gw_config *b);
/* `suffix` is the part after P/ ("telemetry/A-1F-hydrant-01"). 0 or -errno (-ENOTCONN). */
int gw_hub_publish(struct gw_hub *hub, const char *suffix, const char *payload, size_t len, int qos,
                   bool retain);
const char *gw_hub_prefix(const struct gw_hub *hub);
void gw_hub_stats(const struct gw_hub *hub, struct gw_hub_stats *out);
/* Publish final_status retained on P/status (if connected), flush, disconnect; then done. */
void gw_hub_close(struct gw_hub *hub, const char *final_status, void (*done)(void *ctx), void *ctx);

#endif
