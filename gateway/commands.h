/*
 * Commands from people (P/cmd/<name> on the hub or the uplink, later the
 * HTTP API): parsing and validation of the JSON, and the P/cmd/result
 * payload. Pure. Anything hostile or malformed becomes an error message for
 * P/cmd/result, never a state change.
 *
 *   P/cmd/ack|shelve|unshelve|reset {"key":"<sensor>/<rule-slug>","by","note"?,"minutes"?,"id"?}
 *   P/cmd/out_of_service|in_service     {"sensor":"<id>","by","note"?,"id"?}
 */
#ifndef GW_COMMANDS_H
#define GW_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alarm.h"
#include "reading.h"

enum gw_command_type {
    GW_COMMAND_ACK,
    GW_COMMAND_SHELVE,
    GW_COMMAND_UNSHELVE,
    GW_COMMAND_RESET,
    GW_COMMAND_OUT_OF_SERVICE,
    GW_COMMAND_IN_SERVICE,
};

#define GW_COMMAND_MAX_BYTES 4096
#define GW_COMMAND_NOTE_MAX 256
#define GW_COMMAND_ID_MAX 64
#define GW_SHELVE_MAX_MINUTES 10080 /* a week */

struct gw_command {
    enum gw_command_type type;
    const char *name;         /* "ack", "out_of_service", ... */
    char key[GW_KEY_MAX];     /* alarm commands */
    char sensor[GW_NAME_MAX]; /* out_of_service / in_service */
    char by[GW_NAME_MAX];
    char note[GW_COMMAND_NOTE_MAX]; /* "" when none */
    int minutes;                    /* shelve */
    char id[GW_COMMAND_ID_MAX];     /* echoed in the result; "" when none */
};

/*
 * name: the last topic level. Returns 0, or -EINVAL with a message for
 * P/cmd/result in err. On error, out->name/key/sensor/id hold what could be
 * read (so the result can still name them).
 */
int gw_command_parse(const char *name, const void *payload, size_t len, struct gw_command *out,
                     char *err, size_t errlen);

/* {"seq","ok","cmd","key"?,"sensor"?,"id"?,"error"?,"state"?}; malloc'd, NULL on OOM. */
char *gw_command_result(uint64_t seq, const struct gw_command *cmd, bool ok, const char *error,
                        const char *state);

#endif
