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
#include "reading.h"

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
    /* Build state for cfg (kept until destroy). Returns NULL after logging why. */
    void *(*init)(const struct gw_config *cfg, uv_loop_t *loop, gw_dispatch_fn dispatch,
                  void *core);
    int (*start)(void *state); /* 0 or -errno */
    void (*stop)(void *state); /* stop threads/handles; no dispatch after it returns */
    void (*destroy)(void *state);
    void (*stats)(void *state, struct gw_driver_stats *out);
};

extern const struct gw_driver_ops gw_modbus_driver;

#endif
