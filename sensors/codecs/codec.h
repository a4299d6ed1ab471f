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

/* Pure parts, exposed for tests and the layout codec of other drivers. */
int gw_codec_layout(const struct gw_layout_field_cfg *fields, int nfields, const uint8_t *bytes,
                    size_t len, int fport, struct gw_reading *out);
/* Cayenne LPP: every IPSO type, multiple channels; names "<type>_<channel>". */
int gw_codec_cayenne_lpp(const uint8_t *bytes, size_t len, struct gw_reading *out, char *err,
                         size_t errlen);

#endif
