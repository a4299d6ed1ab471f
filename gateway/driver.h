/*
 * A sensor driver is a plugin: a small ops struct and its own state
 * (Fluent Bit's input plugins, collectd's read plugins). It hands readings to
 * the core with one call on the loop thread; the core copies what it keeps.
 */
#ifndef GW_DRIVER_H
#define GW_DRIVER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "payload.h"
#include "reading.h"
#include "record.h"

/* Called on the loop thread only. `reading` is valid during the call only. */
typedef void (*gw_dispatch_fn)(void *core, const struct gw_reading *reading);

struct gw_driver_stats {
    uint64_t polls;    /* requests or frames handled */
    uint64_t readings; /* readings handed to the core */
    uint64_t errors;   /* failed polls / rejected frames */
    uint64_t dropped;  /* readings lost because the hand-off queue was full */
};

struct gw_driver_ops {
    const char *name;
    bool (*wanted)(const struct gw_config *cfg); /* false: nothing for it in cfg, not started */
    /* Build state for cfg (kept until destroy). Returns NULL after logging why. */
    void *(*init)(const struct gw_config *cfg, uv_loop_t *loop, gw_dispatch_fn dispatch,
                  void *core);
    int (*start)(void *state); /* 0 or -errno */
    void (*stop)(void *state); /* stop threads/handles; no dispatch after it returns */
    void (*destroy)(void *state);
    void (*stats)(void *state, struct gw_driver_stats *out);
    /* Optional: the driver's own counters for P/metrics (names live as long as state). */
    int (*metrics)(void *state, struct gw_metric *out, int max);
};

extern const struct gw_driver_ops gw_modbus_driver;
extern const struct gw_driver_ops gw_lora_driver;
extern const struct gw_driver_ops gw_mqtt_driver;

/*
 * What the core offers drivers besides dispatch, on the loop thread only
 * (gateway.c). `core` is the pointer given to init.
 */
/* Small persistent state (the store's kv table), written with the next group commit. */
int gw_core_kv_set(void *core, const char *key, const char *value);
typedef void (*gw_kv_fn)(void *ctx, const char *key, const char *value);
/* Every key starting with prefix, committed or not. 0 or -errno. */
int gw_core_kv_each(void *core, const char *prefix, gw_kv_fn fn, void *ctx);
/* A record of the driver's own (e.g. a LoRa forwarder's health): the core takes json. */
uint64_t gw_core_next_seq(void *core);
void gw_core_emit(void *core, enum gw_record_type type, int64_t ts_ms, const char *topic,
                  char *json, uint64_t seq);

#endif
