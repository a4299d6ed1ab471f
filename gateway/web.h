/*
 * The facilities' web side (issue 6): the JSON API, /healthz, /metrics, and
 * (next) the status page, on http_server.c, with auth.c deciding who may do
 * what. Every handler runs on the loop thread; actions go through
 * gw_desk_execute, the same path as the MQTT commands.
 */
#ifndef GW_WEB_H
#define GW_WEB_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"

struct gw_gateway;
struct gw_web;

/* NULL after logging why (or when cfg has no http section: nothing to serve). */
struct gw_web *gw_web_new(uv_loop_t *loop, struct gw_gateway *gw, const struct gw_config *cfg);
int gw_web_start(struct gw_web *web);
/* Is anyone on the event stream? (Then the core pushes its records; else it saves the work.) */
bool gw_web_listening(const struct gw_web *web);
/* Push a live update to the page's event stream (SSE): "alarm", "health", ... */
void gw_web_push(struct gw_web *web, const char *event, const char *json);
/* A reloaded config: users and roles follow (the listen address needs a restart). */
void gw_web_reload(struct gw_web *web, const struct gw_config *cfg);
void gw_web_close(struct gw_web *web, void (*closed)(void *ctx), void *ctx);

#endif
