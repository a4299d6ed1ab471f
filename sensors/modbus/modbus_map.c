#include "modbus/modbus_map.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* NAMUR NE43 limits as fractions of the 4-20 mA span (16 mA). */
#define NE43_LOW_FRACTION 0.025   /* 3.6 mA = 4 mA - 0.4 mA */
#define NE43_HIGH_FRACTION 0.0625 /* 21 mA = 20 mA + 1 mA */

#define BACKOFF_CAP_MS 60000
#define RECONNECT_FIRST_MS 1000
#define RECONNECT_CAP_MS 30000

const char *gw_modbus_table_name(enum gw_table table)
{
    switch (table) {
    case GW_TABLE_HOLDING:
        return "holding";
    case GW_TABLE_INPUT:
        return "input";
    case GW_TABLE_COIL:
        return "coil";
    case GW_TABLE_DISCRETE:
        return "discrete";
    }
    return "unknown";
}

bool gw_modbus_table_is_bits(enum gw_table table)
{
    return table == GW_TABLE_COIL || table == GW_TABLE_DISCRETE;
}

int gw_modbus_point_width(const struct gw_point_cfg *point)
{
    if (gw_modbus_table_is_bits(point->table)) {
        return 1;
    }
    switch (point->type) {
    case GW_REG_U32:
    case GW_REG_S32:
    case GW_REG_F32:
        return 2;
    case GW_REG_U16:
    case GW_REG_S16:
    case GW_REG_BOOL:
        return 1;
    }
    return 1;
}

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errsize, const char *fmt,
                                                         ...)
{
    if (err != NULL && errsize > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsize, fmt, ap);
        va_end(ap);
    }
}

static int check_point(const struct gw_point_cfg *p, int index, char *err, size_t errsize)
{
    const char *name = p->name != NULL ? p->name : "?";
    if (p->table < GW_TABLE_HOLDING || p->table > GW_TABLE_DISCRETE) {
        seterr(err, errsize, "point %s (#%d): unknown table", name, index);
        return -EINVAL;
    }
    if (p->type < GW_REG_U16 || p->type > GW_REG_BOOL) {
        seterr(err, errsize, "point %s (#%d): unknown type", name, index);
        return -EINVAL;
    }
    if (gw_modbus_table_is_bits(p->table) && p->type != GW_REG_BOOL) {
        seterr(err, errsize, "point %s (#%d): coil/discrete points must be bool", name, index);
        return -EINVAL;
    }
    if (p->address < 0 || p->address + gw_modbus_point_width(p) > 65536) {
        seterr(err, errsize, "point %s: address %d out of range 0..65535", name, p->address);
        return -EINVAL;
    }
    return 0;
}

/* Order by (table, address), then config order so equal keys plan deterministically. */
static bool before(const struct gw_point_cfg *points, int a, int b)
{
    const struct gw_point_cfg *pa = &points[a];
    const struct gw_point_cfg *pb = &points[b];
    if (pa->table != pb->table) {
        return pa->table < pb->table;
    }
    if (pa->address != pb->address) {
        return pa->address < pb->address;
    }
    return a < b;
}

int gw_modbus_plan_build_limits(const struct gw_profile_cfg *profile, int max_regs, int max_bits,
                                struct gw_modbus_plan *plan, char *err, size_t errsize)
{
    memset(plan, 0, sizeof(*plan));
    if (max_regs < 2 || max_regs > GW_MODBUS_MAX_REGS || max_bits < 1 ||
        max_bits > GW_MODBUS_MAX_BITS) {
        seterr(err, errsize, "bad request limits regs=%d bits=%d", max_regs, max_bits);
        return -EINVAL;
    }
    if (profile->npoints > GW_MAX_POINTS) {
        seterr(err, errsize, "profile %s: %d points, at most %d fit a reading",
               profile->name != NULL ? profile->name : "?", profile->npoints, GW_MAX_POINTS);
        return -E2BIG;
    }
    if (profile->npoints <= 0 || profile->points == NULL) {
        seterr(err, errsize, "profile %s: no Modbus points",
               profile->name != NULL ? profile->name : "?");
        return -EINVAL;
    }

    int order[GW_MAX_POINTS];
    for (int i = 0; i < profile->npoints; i++) {
        int rc = check_point(&profile->points[i], i, err, errsize);
        if (rc < 0) {
            return rc;
        }
        /* Insertion sort: at most 16 points. */
        int j = i;
        while (j > 0 && before(profile->points, i, order[j - 1])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }

    struct gw_modbus_request *cur = NULL;
    int cur_end = 0; /* one past the last register/bit of cur */
    for (int k = 0; k < profile->npoints; k++) {
        const struct gw_point_cfg *p = &profile->points[order[k]];
        int end = p->address + gw_modbus_point_width(p);
        int limit = gw_modbus_table_is_bits(p->table) ? max_bits : max_regs;
        if (cur != NULL && cur->table == p->table && p->address <= cur_end) {
            int new_end = end > cur_end ? end : cur_end;
            if (new_end - cur->address <= limit) {
                cur_end = new_end;
                cur->count = cur_end - cur->address;
                cur->points[cur->npoints++] = order[k];
                continue;
            }
        }
        cur = &plan->requests[plan->nrequests++];
        cur->table = p->table;
        cur->address = p->address;
        cur_end = end;
        cur->count = end - p->address;
        cur->npoints = 1;
        cur->points[0] = order[k];
    }
    return 0;
}

int gw_modbus_plan_build(const struct gw_profile_cfg *profile, struct gw_modbus_plan *plan,
                         char *err, size_t errsize)
{
    return gw_modbus_plan_build_limits(profile, GW_MODBUS_MAX_REGS, GW_MODBUS_MAX_BITS, plan, err,
                                       errsize);
}

static void set_fault(struct gw_point_value *out, enum gw_point_fault fault)
{
    memset(&out->value, 0, sizeof(out->value));
    out->value.type = GW_VALUE_NONE;
    out->fault = fault;
}

static void set_bool(struct gw_point_value *out, bool b)
{
    memset(&out->value, 0, sizeof(out->value));
    out->value.type = GW_VALUE_BOOL;
    out->value.b = b;
    out->value.num = b ? 1.0 : 0.0;
    out->fault = GW_FAULT_NONE;
}

/* Raw number -> engineering value, with the NE43 checks of a span. */
static void set_number(const struct gw_point_cfg *p, double raw, struct gw_point_value *out)
{
    if (!isfinite(raw)) {
        set_fault(out, GW_FAULT_INVALID);
        return;
    }
    if (p->nenum > 0) {
        /* An enum register is a label; a code outside the list is not a state we know. */
        if (raw < 0 || raw >= p->nenum || raw != (double)(int)raw || !p->enum_labels[(int)raw]) {
            set_fault(out, GW_FAULT_INVALID);
            return;
        }
        memset(&out->value, 0, sizeof(out->value));
        out->value.type = GW_VALUE_STRING;
        snprintf(out->value.str, sizeof(out->value.str), "%s", p->enum_labels[(int)raw]);
        out->fault = GW_FAULT_NONE;
        return;
    }
    double v;
    if (p->has_span) {
        double span = p->raw_max - p->raw_min;
        if (!(span > 0)) {
            set_fault(out, GW_FAULT_INVALID);
            return;
        }
        if (raw < p->raw_min - NE43_LOW_FRACTION * span) {
            set_fault(out, GW_FAULT_WIRE_BREAK);
            return;
        }
        if (raw > p->raw_max + NE43_HIGH_FRACTION * span) {
            set_fault(out, GW_FAULT_OVER_RANGE);
            return;
        }
        v = p->min + (raw - p->raw_min) * (p->max - p->min) / span;
    } else {
        v = raw * p->scale + p->offset;
    }
    if (!isfinite(v)) {
        set_fault(out, GW_FAULT_INVALID);
        return;
    }
    memset(&out->value, 0, sizeof(out->value));
    out->value.type = GW_VALUE_NUMBER;
    out->value.num = v;
    out->fault = GW_FAULT_NONE;
}

void gw_modbus_decode_regs(const struct gw_point_cfg *point, const uint16_t *regs,
                           struct gw_point_value *out)
{
    /* Only 32-bit types may touch regs[1]: a 16-bit point may end the request. */
    uint32_t u32 = 0;
    if (gw_modbus_point_width(point) == 2) {
        if (point->word_order == GW_WORDS_LITTLE) {
            u32 = ((uint32_t)regs[1] << 16) | regs[0];
        } else {
            u32 = ((uint32_t)regs[0] << 16) | regs[1];
        }
    }
    switch (point->type) {
    case GW_REG_U16:
        set_number(point, (double)regs[0], out);
        return;
    case GW_REG_S16:
        set_number(point, (double)(regs[0] >= 0x8000u ? (int32_t)regs[0] - 0x10000 : regs[0]), out);
        return;
    case GW_REG_U32:
        set_number(point, (double)u32, out);
        return;
    case GW_REG_S32:
        set_number(point, (double)(u32 >= 0x80000000u ? (int64_t)u32 - 0x100000000LL : u32), out);
        return;
    case GW_REG_F32: {
        float f;
        memcpy(&f, &u32, sizeof(f));
        set_number(point, (double)f, out);
        return;
    }
    case GW_REG_BOOL:
        set_bool(out, regs[0] != 0);
        return;
    }
    set_fault(out, GW_FAULT_INVALID);
}

void gw_modbus_decode_bit(const struct gw_point_cfg *point, uint8_t bit, struct gw_point_value *out)
{
    (void)point;
    set_bool(out, bit != 0);
}

void gw_modbus_apply(const struct gw_profile_cfg *profile, const struct gw_modbus_request *req,
                     const uint16_t *regs, const uint8_t *bits, struct gw_reading *reading)
{
    for (int i = 0; i < req->npoints; i++) {
        int pi = req->points[i];
        if (pi < 0 || pi >= GW_MAX_POINTS || pi >= profile->npoints) {
            continue;
        }
        const struct gw_point_cfg *p = &profile->points[pi];
        struct gw_point_value *out = &reading->points[pi];
        int off = p->address - req->address;
        if (off < 0 || off + gw_modbus_point_width(p) > req->count) {
            continue; /* not this request's point: a plan from another profile */
        }
        snprintf(out->name, sizeof(out->name), "%s", p->name != NULL ? p->name : "");
        if (gw_modbus_table_is_bits(req->table)) {
            gw_modbus_decode_bit(p, bits[off], out);
        } else {
            gw_modbus_decode_regs(p, regs + off, out);
        }
    }
    reading->npoints = profile->npoints < GW_MAX_POINTS ? profile->npoints : GW_MAX_POINTS;
}

int64_t gw_modbus_backoff_ms(int interval_s, int fails)
{
    int64_t interval = (int64_t)(interval_s > 0 ? interval_s : 1) * 1000;
    int64_t cap = interval > BACKOFF_CAP_MS ? interval : BACKOFF_CAP_MS;
    int64_t d = interval;
    for (int i = 1; i < fails && d < cap; i++) {
        d *= 2;
    }
    return d < cap ? d : cap;
}

int64_t gw_modbus_reconnect_ms(int attempts)
{
    int64_t d = RECONNECT_FIRST_MS;
    for (int i = 1; i < attempts && d < RECONNECT_CAP_MS; i++) {
        d *= 2;
    }
    return d < RECONNECT_CAP_MS ? d : RECONNECT_CAP_MS;
}
