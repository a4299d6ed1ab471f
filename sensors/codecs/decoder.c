/*
 * One decoder per profile: dispatches a frame to the profile's codec. The
 * layout fields are copied so a decoder outlives a config reload that frees
 * the profile it was built from.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/codec.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

struct gw_decoder {
    enum gw_codec codec;
    char *profile;
    int nfields;
    struct gw_layout_field_cfg *fields; /* owned copies */
    struct gw_js *js;
};

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s) {
        return NULL;
    }
    char *d = strdup(s);
    if (!d) {
        *ok = false;
    }
    return d;
}

static void free_fields(struct gw_layout_field_cfg *fields, int n)
{
    if (!fields) {
        return;
    }
    for (int i = 0; i < n; i++) {
        free(fields[i].name);
        free(fields[i].unit);
        if (fields[i].enum_labels) {
            for (int k = 0; k < fields[i].nenum; k++) {
                free(fields[i].enum_labels[k]);
            }
            free(fields[i].enum_labels);
        }
    }
    free(fields);
}

static struct gw_layout_field_cfg *copy_fields(const struct gw_layout_field_cfg *src, int n)
{
    struct gw_layout_field_cfg *dst = calloc(n > 0 ? (size_t)n : 1, sizeof(*dst));
    if (!dst) {
        return NULL;
    }
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        dst[i] = src[i];
        dst[i].name = dup_or_null(src[i].name, &ok);
        dst[i].unit = dup_or_null(src[i].unit, &ok);
        dst[i].enum_labels = NULL;
        dst[i].nenum = 0;
        if (src[i].nenum > 0 && src[i].enum_labels) {
            dst[i].enum_labels = calloc((size_t)src[i].nenum, sizeof(char *));
            if (!dst[i].enum_labels) {
                ok = false;
                break;
            }
            dst[i].nenum = src[i].nenum;
            for (int k = 0; k < src[i].nenum; k++) {
                dst[i].enum_labels[k] = dup_or_null(src[i].enum_labels[k], &ok);
            }
        }
    }
    if (!ok) {
        free_fields(dst, n);
        return NULL;
    }
    return dst;
}

struct gw_decoder *gw_decoder_new(const struct gw_profile_cfg *profile, char *err, size_t errlen)
{
    if (!profile) {
        seterr(err, errlen, "decoder: no profile");
        return NULL;
    }
    const char *pname = profile->name ? profile->name : "?";
    struct gw_decoder *d = calloc(1, sizeof(*d));
    if (!d) {
        seterr(err, errlen, "profile %s: out of memory", pname);
        return NULL;
    }
    d->codec = profile->codec;
    d->profile = strdup(pname);
    if (!d->profile) {
        seterr(err, errlen, "profile %s: out of memory", pname);
        goto fail;
    }
    switch (profile->codec) {
    case GW_CODEC_LAYOUT:
        if (profile->nfields < 0 || (profile->nfields > 0 && !profile->fields)) {
            seterr(err, errlen, "profile %s: layout codec without fields", pname);
            goto fail;
        }
        d->fields = copy_fields(profile->fields, profile->nfields);
        if (!d->fields) {
            seterr(err, errlen, "profile %s: out of memory", pname);
            goto fail;
        }
        d->nfields = profile->nfields;
        break;
    case GW_CODEC_CAYENNE_LPP:
        break;
    case GW_CODEC_JS:
        if (!profile->script) {
            seterr(err, errlen, "profile %s: js codec without script", pname);
            goto fail;
        }
        d->js = gw_js_new(profile->script, err, errlen);
        if (!d->js) {
            goto fail;
        }
        break;
    case GW_CODEC_MODBUS:
    default:
        seterr(err, errlen, "profile %s: not a payload codec (Modbus points)", pname);
        goto fail;
    }
    return d;
fail:
    gw_decoder_free(d);
    return NULL;
}

void gw_decoder_free(struct gw_decoder *decoder)
{
    if (!decoder) {
        return;
    }
    free_fields(decoder->fields, decoder->nfields);
    decoder->fields = NULL;
    gw_js_free(decoder->js);
    decoder->js = NULL;
    free(decoder->profile);
    free(decoder);
}

void gw_decoder_set_limits(struct gw_decoder *decoder, int timeout_ms, size_t mem_bytes)
{
    if (decoder && decoder->js) {
        gw_js_set_limits(decoder->js, timeout_ms, mem_bytes);
    }
}

int gw_decoder_run(struct gw_decoder *decoder, const uint8_t *bytes, size_t len, int fport,
                   struct gw_reading *out, char *err, size_t errlen)
{
    if (err && errlen > 0) {
        err[0] = '\0';
    }
    if (!decoder || !out) {
        return -EINVAL;
    }
    int rc;
    switch (decoder->codec) {
    case GW_CODEC_LAYOUT:
        rc = gw_codec_layout(decoder->fields, decoder->nfields, bytes, len, fport, out);
        if (rc == -E2BIG) {
            seterr(err, errlen, "profile %s: more than %d values in one frame", decoder->profile,
                   GW_MAX_POINTS);
        } else if (rc < 0) {
            seterr(err, errlen, "profile %s: invalid frame", decoder->profile);
        }
        return rc;
    case GW_CODEC_CAYENNE_LPP:
        return gw_codec_cayenne_lpp(bytes, len, out, err, errlen);
    case GW_CODEC_JS:
        return gw_js_run(decoder->js, bytes, len, fport, out->ts_ms, out, err, errlen);
    case GW_CODEC_MODBUS:
    case GW_CODEC_JSON: /* not byte codecs: gw_decoder_new refuses them */
        break;
    }
    return -EINVAL;
}
