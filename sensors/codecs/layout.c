/*
 * The `layout` codec: fixed-position fields of a binary payload (DESIGN.md
 * "Layout codec field keys"). Pure.
 *
 * Per field, in order:
 *  - `fport` >= 0: the field applies only to frames on that port; on others it
 *    is skipped (no point, not a fault).
 *  - the raw value is read at `byte` with `type` (big or little endian); bool
 *    is bit `bit` of that byte. A payload too short for the field gives a
 *    GW_FAULT_INVALID point; the other fields still decode.
 *  - `mask` (unsigned types u8/u16/u32 only): raw = (raw & mask) >> trailing
 *    zeros of mask, e.g. mask 0x0C on u8 gives bits 2..3 as 0..3. A mask on a
 *    signed, float or bool field is a GW_FAULT_INVALID point (config should
 *    refuse it; the codec never guesses where a sign bit would be).
 *  - `enum` labels: the raw integer is the index -> string value; out of range
 *    (or a float field) -> GW_FAULT_INVALID.
 *  - otherwise value = raw * scale + offset (number; bool stays a bool).
 *    NaN or infinite (f32 NaN/inf, or an overflowing scale) -> GW_FAULT_INVALID.
 * At most GW_MAX_POINTS points fit in a reading: the fields that fit are kept
 * and -E2BIG is returned.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "codecs/codec.h"

int gw_field_width(enum gw_field_type t)
{
    switch (t) {
    case GW_FT_U8:
    case GW_FT_S8:
    case GW_FT_BOOL:
        return 1;
    case GW_FT_U16BE:
    case GW_FT_U16LE:
    case GW_FT_S16BE:
    case GW_FT_S16LE:
        return 2;
    case GW_FT_U32BE:
    case GW_FT_U32LE:
    case GW_FT_S32BE:
    case GW_FT_S32LE:
    case GW_FT_F32BE:
    case GW_FT_F32LE:
        return 4;
    }
    return 0;
}

static bool type_little(enum gw_field_type t)
{
    return t == GW_FT_U16LE || t == GW_FT_S16LE || t == GW_FT_U32LE || t == GW_FT_S32LE ||
           t == GW_FT_F32LE;
}

static bool type_signed(enum gw_field_type t)
{
    return t == GW_FT_S8 || t == GW_FT_S16BE || t == GW_FT_S16LE || t == GW_FT_S32BE ||
           t == GW_FT_S32LE;
}

static bool type_unsigned(enum gw_field_type t)
{
    return t == GW_FT_U8 || t == GW_FT_U16BE || t == GW_FT_U16LE || t == GW_FT_U32BE ||
           t == GW_FT_U32LE;
}

static bool type_float(enum gw_field_type t)
{
    return t == GW_FT_F32BE || t == GW_FT_F32LE;
}

static uint32_t read_raw(const uint8_t *p, int width, bool little)
{
    uint32_t v = 0;
    for (int i = 0; i < width; i++) {
        int k = little ? width - 1 - i : i;
        v = (v << 8) | p[k];
    }
    return v;
}

/* Copy at most size-1 bytes without cutting a UTF-8 sequence (labels may be Chinese). */
static void copy_utf8(char *dst, size_t size, const char *src)
{
    size_t len = strlen(src);
    if (len > size - 1) {
        len = size - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80) {
            len--;
        }
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void set_fault(struct gw_point_value *pv)
{
    pv->value.type = GW_VALUE_NONE;
    pv->fault = GW_FAULT_INVALID;
}

static void set_label(struct gw_point_value *pv, const struct gw_layout_field_cfg *f, int64_t idx)
{
    if (idx < 0 || idx >= f->nenum || !f->enum_labels || !f->enum_labels[idx]) {
        set_fault(pv);
        return;
    }
    pv->value.type = GW_VALUE_STRING;
    copy_utf8(pv->value.str, sizeof(pv->value.str), f->enum_labels[idx]);
}

static void set_number(struct gw_point_value *pv, double v)
{
    if (!isfinite(v)) {
        set_fault(pv);
        return;
    }
    pv->value.type = GW_VALUE_NUMBER;
    pv->value.num = v;
}

/* Fill one point from one field; the field's bytes are known to be in the payload. */
static void decode_field(const struct gw_layout_field_cfg *f, const uint8_t *p,
                         struct gw_point_value *pv)
{
    int width = gw_field_width(f->type);
    uint32_t raw = read_raw(p, width, type_little(f->type));

    if (f->mask != 0) {
        if (!type_unsigned(f->type)) {
            set_fault(pv);
            return;
        }
        uint32_t m = f->mask;
        raw &= m;
        while ((m & 1u) == 0) {
            m >>= 1;
            raw >>= 1;
        }
    }

    if (f->type == GW_FT_BOOL) {
        if (f->bit < 0 || f->bit > 7) {
            set_fault(pv);
            return;
        }
        bool b = (raw >> f->bit) & 1u;
        if (f->nenum > 0) {
            set_label(pv, f, b);
            return;
        }
        pv->value.type = GW_VALUE_BOOL;
        pv->value.b = b;
        pv->value.num = b ? 1 : 0;
        return;
    }

    if (type_float(f->type)) {
        float fv;
        memcpy(&fv, &raw, sizeof(fv));
        if (f->nenum > 0 || !isfinite(fv)) {
            set_fault(pv);
            return;
        }
        set_number(pv, (double)fv * f->scale + f->offset);
        return;
    }

    int64_t iv = raw;
    if (type_signed(f->type)) {
        /* Sign-extend from the field's width without shifting into the sign bit. */
        uint32_t sign = 1u << (width * 8 - 1);
        iv = (int64_t)(raw ^ sign) - (int64_t)sign;
    }
    if (f->nenum > 0) {
        set_label(pv, f, iv);
        return;
    }
    set_number(pv, (double)iv * f->scale + f->offset);
}

int gw_codec_layout(const struct gw_layout_field_cfg *fields, int nfields, const uint8_t *bytes,
                    size_t len, int fport, struct gw_reading *out)
{
    if (!out || nfields < 0 || (nfields > 0 && !fields) || (len > 0 && !bytes) ||
        out->npoints < 0 || out->npoints > GW_MAX_POINTS) {
        return -EINVAL;
    }
    for (int i = 0; i < nfields; i++) {
        const struct gw_layout_field_cfg *f = &fields[i];
        if (f->fport >= 0 && f->fport != fport) {
            continue;
        }
        if (out->npoints >= GW_MAX_POINTS) {
            return -E2BIG;
        }
        struct gw_point_value *pv = &out->points[out->npoints++];
        memset(pv, 0, sizeof(*pv));
        copy_utf8(pv->name, sizeof(pv->name), f->name ? f->name : "");
        pv->fault = GW_FAULT_NONE;

        int width = gw_field_width(f->type);
        if (width == 0 || f->byte < 0 || (size_t)f->byte + (size_t)width > len) {
            set_fault(pv);
            continue;
        }
        decode_field(f, bytes + f->byte, pv);
    }
    return 0;
}
