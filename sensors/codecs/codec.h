/*
 * Payload codecs: turn a LoRaWAN FRMPayload (or any byte payload) into the
 * points of a reading. Chosen per profile with `codec =`. Pure for layout and
 * Cayenne LPP; the JS codec runs vendor decoders in Duktape with a time and
 * memory limit.
 */
#ifndef GW_CODEC_H
#define GW_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "reading.h"

struct gw_decoder;

/*
 * Compile the codec of a profile (layout: nothing to do; js: load the script,
 * check it is ECMAScript 5.1 that Duktape accepts, find decodeUplink or
 * Decode). NULL with a message "file:line: ..." in err on failure.
 */
struct gw_decoder *gw_decoder_new(const struct gw_profile_cfg *profile, char *err, size_t errlen);
void gw_decoder_free(struct gw_decoder *decoder);

/*
 * Decode bytes received on fport into out->points (appends; out->npoints is
 * updated). Returns 0, or -EINVAL/-ERANGE/-ETIME/-ENOMEM with a message in err
 * (short payload, unknown enum, decoder threw, decoder ran too long...).
 * Points that a layout field cannot fill (payload too short for it, enum
 * index out of range) are GW_FAULT_INVALID points, not errors of the frame.
 */
int gw_decoder_run(struct gw_decoder *decoder, const uint8_t *bytes, size_t len, int fport,
                   struct gw_reading *out, char *err, size_t errlen);

/* Bytes a layout field of this type reads (bool: 1). */
int gw_field_width(enum gw_field_type type);

/* Pure parts, exposed for tests and the layout codec of other drivers. */
int gw_codec_layout(const struct gw_layout_field_cfg *fields, int nfields, const uint8_t *bytes,
                    size_t len, int fport, struct gw_reading *out);
/* Cayenne LPP: every IPSO type, multiple channels; names "<type>_<channel>". */
int gw_codec_cayenne_lpp(const uint8_t *bytes, size_t len, struct gw_reading *out, char *err,
                         size_t errlen);

/*
 * gw_decoder_run also returns -E2BIG: more values than GW_MAX_POINTS (the
 * ones that fit are in out, whole Cayenne entries only), and -EFAULT: a
 * Duktape fatal error (the heap is rebuilt). On a failed frame, layout and
 * Cayenne LPP leave the points decoded before the failure in out (Cayenne:
 * the complete entries before a truncated or unknown one); the JS codec
 * leaves none.
 *
 * Limits of the JS codec (defaults GW_JS_TIMEOUT_MS, GW_JS_MEM_LIMIT): a decoder
 * that runs longer is stopped (-ETIME), one that allocates more fails (-ENOMEM);
 * either way its heap is rebuilt for the next frame. No effect on other codecs.
 */
#define GW_JS_TIMEOUT_MS 100
#define GW_JS_LOAD_TIMEOUT_MS 1000 /* the script's top level, once per heap */
#define GW_JS_MEM_LIMIT (4u * 1024 * 1024)
void gw_decoder_set_limits(struct gw_decoder *decoder, int timeout_ms, size_t mem_bytes);

/*
 * Decode every example of a TTN device-repository examples.json (a list of
 * { description, input: { bytes, fPort }, output: { data, errors?, warnings? } })
 * and compare with output.data flattened like decoded values (nested keys joined
 * with "_"; faulted points count as absent). An example with output.errors must
 * fail with each of those strings in its message. Returns the number of
 * mismatches (one line each in report), or -errno when the file cannot be read.
 */
int gw_decoder_check_examples(struct gw_decoder *decoder, const char *examples_path, char *report,
                              size_t len);

/* JS codec internals, used by decoder.c (sensors/codecs/js.c). */
struct gw_js;
struct gw_js *gw_js_new(const char *path, char *err, size_t errlen);
void gw_js_free(struct gw_js *js);
void gw_js_set_limits(struct gw_js *js, int timeout_ms, size_t mem_bytes);
int gw_js_run(struct gw_js *js, const uint8_t *bytes, size_t len, int fport, int64_t ts_ms,
              struct gw_reading *out, char *err, size_t errlen);

#endif
