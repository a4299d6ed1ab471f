/*
 * Modbus register maps, pure: decoding points from registers/bits, planning
 * the requests that read a profile, scheduling arithmetic. No I/O, no clock.
 */
#ifndef GW_MODBUS_MAP_H
#define GW_MODBUS_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "reading.h"

/* Protocol limits of one read request (Modbus application protocol 1.1b3). */
#define GW_MODBUS_MAX_REGS 125
#define GW_MODBUS_MAX_BITS 2000

/* One read request: `count` registers or bits of `table` from `address`. */
struct gw_modbus_request {
    enum gw_table table;
    int address;
    int count;
    int npoints;
    int points[GW_MAX_POINTS]; /* indexes into the profile's points */
};

/* Every point belongs to exactly one request, so GW_MAX_POINTS bounds both. */
struct gw_modbus_plan {
    int nrequests;
    struct gw_modbus_request requests[GW_MAX_POINTS];
};

const char *gw_modbus_table_name(enum gw_table table);

/* True for coil and discrete (bit tables), false for holding and input. */
bool gw_modbus_table_is_bits(enum gw_table table);

/* Registers (or bits) the point occupies: 2 for 32-bit types, else 1. */
int gw_modbus_point_width(const struct gw_point_cfg *point);

/*
 * Plan the reads of a profile: points sorted by (table, address), merged into
 * one request while the next point starts at or before the current end
 * (contiguous or overlapping) and the request stays within max_regs registers
 * (holding/input) or max_bits bits (coil/discrete). Gaps are never read, even
 * small ones: many devices answer "illegal data address" for an unmapped
 * register inside a read, which would fail every point of the request.
 * Returns 0, -E2BIG (more than GW_MAX_POINTS points) or -EINVAL (a point out
 * of 0..65535, a non-bool type on a bit table, bad limits); on error writes
 * the reason to err (may be NULL).
 */
int gw_modbus_plan_build_limits(const struct gw_profile_cfg *profile, int max_regs, int max_bits,
                                struct gw_modbus_plan *plan, char *err, size_t errsize);
/* The same with the protocol limits (125 registers, 2000 bits). */
int gw_modbus_plan_build(const struct gw_profile_cfg *profile, struct gw_modbus_plan *plan,
                         char *err, size_t errsize);

/*
 * Decode one point. `regs` points at the point's first register (1 or 2 of
 * them); `bit` is the coil/discrete state. Numbers are raw * scale + offset,
 * or with has_span min + (raw - raw_min) * (max - min) / (raw_max - raw_min).
 * With a span, raw below raw_min - 2.5 % of the span is GW_FAULT_WIRE_BREAK
 * and above raw_max + 6.25 % GW_FAULT_OVER_RANGE (NAMUR NE43: 3.6 mA / 21 mA
 * on 4-20 mA); raw values inside that tolerance band but outside
 * raw_min..raw_max are mapped linearly, not clamped, so a value slightly below
 * min or above max is a real (if out-of-spec) measurement the rules can see.
 * A span with raw_max <= raw_min, a NaN/infinite f32 or a non-finite result
 * is GW_FAULT_INVALID. A faulted point has value type NONE. The name is not
 * touched.
 */
void gw_modbus_decode_regs(const struct gw_point_cfg *point, const uint16_t *regs,
                           struct gw_point_value *out);
void gw_modbus_decode_bit(const struct gw_point_cfg *point, uint8_t bit,
                          struct gw_point_value *out);

/*
 * Store the points of one answered request into reading->points at their
 * profile index (names copied from config). `regs` (holding/input) or `bits`
 * (coil/discrete) hold req->count values starting at req->address. Sets
 * reading->npoints to the profile's point count.
 */
void gw_modbus_apply(const struct gw_profile_cfg *profile, const struct gw_modbus_request *req,
                     const uint16_t *regs, const uint8_t *bits, struct gw_reading *reading);

/*
 * Delay before the next poll of a device after `fails` consecutive failed
 * polls (fails >= 1): interval * 2^(fails-1), capped at max(interval, 60 s).
 * So the first failure keeps the normal interval, then 2x, 4x ... up to a
 * minute; a dead device costs the bus at most one timeout per minute and the
 * other devices keep their intervals. fails <= 0 gives the interval.
 */
int64_t gw_modbus_backoff_ms(int interval_s, int fails);

/* Reconnect delay after `attempts` failed connects (>= 1): 1 s doubling to 30 s. */
int64_t gw_modbus_reconnect_ms(int attempts);

#endif
