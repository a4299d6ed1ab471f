/*
 * Cayenne Low Power Payload (myDevices): entries of <channel> <type> <data>,
 * data big endian. Pure.
 *
 * Types and names follow the reference table (myDevices cayenne-docs LORA.md,
 * IPSO id - 3200) and the names of TTN's LPP decoder for the original types
 * (digital_in, analog_in, luminosity, relative_humidity, barometric_pressure,
 * ...) and ElectronicCats/CayenneLPP's for the later ones (generic, voltage,
 * concentration, time, colour, switch...). A point is "<name>_<channel>";
 * types with several values add "_x"/"_y"/"_z", "_latitude"/... or "_r"/...
 * (accelerometer_1_x, gps_6_latitude), as a flattened TTN result would.
 * Values are raw / divisor, as the reference decoders compute them.
 *
 * An unknown type or a truncated entry stops decoding: the complete entries
 * before it stay in `out` and -EINVAL is returned with the byte offset of the
 * bad entry and its type. More values than GW_MAX_POINTS: the whole entries that
 * fit stay and -E2BIG is returned.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codecs/codec.h"

struct lpp_type {
    uint8_t id;
    const char *name;
    uint8_t nvals;      /* values in one entry */
    uint8_t width;      /* bytes per value */
    bool is_signed;     /* two's complement per value */
    double divisor[3];  /* per value */
    const char *sub[3]; /* name suffixes when nvals > 1 */
};

static const struct lpp_type lpp_types[] = {
    {0, "digital_in", 1, 1, false, {1}, {NULL}},
    {1, "digital_out", 1, 1, false, {1}, {NULL}},
    {2, "analog_in", 1, 2, true, {100}, {NULL}},
    {3, "analog_out", 1, 2, true, {100}, {NULL}},
    {100, "generic", 1, 4, false, {1}, {NULL}},
    {101, "luminosity", 1, 2, false, {1}, {NULL}},
    {102, "presence", 1, 1, false, {1}, {NULL}},
    {103, "temperature", 1, 2, true, {10}, {NULL}},
    {104, "relative_humidity", 1, 1, false, {2}, {NULL}},
    {113, "accelerometer", 3, 2, true, {1000, 1000, 1000}, {"x", "y", "z"}},
    {115, "barometric_pressure", 1, 2, false, {10}, {NULL}},
    {116, "voltage", 1, 2, false, {100}, {NULL}},
    {117, "current", 1, 2, false, {1000}, {NULL}},
    {118, "frequency", 1, 4, false, {1}, {NULL}},
    {120, "percentage", 1, 1, false, {1}, {NULL}},
    {121, "altitude", 1, 2, true, {1}, {NULL}},
    {125, "concentration", 1, 2, false, {1}, {NULL}},
    {128, "power", 1, 2, false, {1}, {NULL}},
    {130, "distance", 1, 4, false, {1000}, {NULL}},
    {131, "energy", 1, 4, false, {1000}, {NULL}},
    {132, "direction", 1, 2, false, {1}, {NULL}},
    {133, "time", 1, 4, false, {1}, {NULL}},
    {134, "gyrometer", 3, 2, true, {100, 100, 100}, {"x", "y", "z"}},
    {135, "colour", 3, 1, false, {1, 1, 1}, {"r", "g", "b"}},
    {136, "gps", 3, 3, true, {10000, 10000, 100}, {"latitude", "longitude", "altitude"}},
    {142, "switch", 1, 1, false, {1}, {NULL}},
};

static const struct lpp_type *find_type(uint8_t id)
{
    for (size_t i = 0; i < sizeof(lpp_types) / sizeof(lpp_types[0]); i++) {
        if (lpp_types[i].id == id) {
            return &lpp_types[i];
        }
    }
    return NULL;
}

static double read_value(const uint8_t *p, int width, bool is_signed)
{
    uint32_t raw = 0;
    for (int i = 0; i < width; i++) {
        raw = (raw << 8) | p[i];
    }
    if (!is_signed) {
        return raw;
    }
    uint32_t sign = 1u << (width * 8 - 1);
    return (double)((int64_t)(raw ^ sign) - (int64_t)sign);
}

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

int gw_codec_cayenne_lpp(const uint8_t *bytes, size_t len, struct gw_reading *out, char *err,
                         size_t errlen)
{
    if (!out || (len > 0 && !bytes) || out->npoints < 0 || out->npoints > GW_MAX_POINTS) {
        return -EINVAL;
    }
    size_t i = 0;
    while (i < len) {
        if (len - i < 2) {
            fail(err, errlen, "cayenne_lpp: byte %zu: truncated entry (channel %u, no type byte)",
                 i, (unsigned)bytes[i]);
            return -EINVAL;
        }
        uint8_t channel = bytes[i];
        uint8_t id = bytes[i + 1];
        const struct lpp_type *t = find_type(id);
        if (!t) {
            fail(err, errlen, "cayenne_lpp: byte %zu: unknown type %u (channel %u)", i,
                 (unsigned)id, (unsigned)channel);
            return -EINVAL;
        }
        size_t need = (size_t)t->nvals * t->width;
        if (len - i - 2 < need) {
            fail(err, errlen,
                 "cayenne_lpp: byte %zu: truncated entry of type %u %s (channel %u): needs %zu "
                 "data bytes, %zu left",
                 i, (unsigned)id, t->name, (unsigned)channel, need, len - i - 2);
            return -EINVAL;
        }
        const uint8_t *p = bytes + i + 2;
        /* Whole entries only: never half an accelerometer. */
        if (out->npoints + t->nvals > GW_MAX_POINTS) {
            fail(err, errlen, "cayenne_lpp: byte %zu: type %u: more than %d values in one frame", i,
                 (unsigned)id, GW_MAX_POINTS);
            return -E2BIG;
        }
        for (int v = 0; v < t->nvals; v++) {
            struct gw_point_value *pv = &out->points[out->npoints++];
            memset(pv, 0, sizeof(*pv));
            if (t->nvals > 1) {
                snprintf(pv->name, sizeof(pv->name), "%s_%u_%s", t->name, (unsigned)channel,
                         t->sub[v]);
            } else {
                snprintf(pv->name, sizeof(pv->name), "%s_%u", t->name, (unsigned)channel);
            }
            pv->fault = GW_FAULT_NONE;
            pv->value.type = GW_VALUE_NUMBER;
            pv->value.num = read_value(p + v * t->width, t->width, t->is_signed) / t->divisor[v];
        }
        i += 2 + need;
    }
    return 0;
}
