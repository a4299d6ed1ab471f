/*
 * The hazard desk: the hazard register (hazards.h) in the running gateway.
 * Owned and driven by the alarm desk (alarm_desk.c), loop thread only.
 *
 *  - At start the register is rebuilt from the store's hazard_log, entry by
 *    entry (gw_hazards_restore checks the hash chain). A chain that does not
 *    verify (a row edited or deleted behind the gateway's back) leaves the
 *    desk without a register: the trouble alarm gateway/hazard-register-invalid
 *    names the first bad seq, and every hazard command is refused, so nothing
 *    is ever written over a broken chain.
 *  - Commands (P/cmd/hazard/open|update|rectifying|close|reopen, the API):
 *    each entry goes out as a GW_REC_HAZARD_LOG record (P/hazards/log; the
 *    store keeps it in hazard_log in the same transaction) and the hazard as a
 *    GW_REC_HAZARD record (P/hazards/<id>, retained), in the alarm batch, so
 *    both are on disk before the command's result is published.
 *  - The register never runs ahead of the disk: while the store's commits fail
 *    new entries are refused (commands answer an error; auto-opens wait and
 *    are retried; overdue checks wait), and once a second the register's head
 *    is compared with hazard_log's last row; when they differ (a record lost
 *    before it reached the disk) the register is rebuilt from the store and
 *    every hazard's retained record published again.
 *  - A supervisory alarm of a rule in hazards.auto_open opens a hazard
 *    (category from the sensor's kind, place from its location).
 *  - Time: a hazard past its deadline gets an "overdue" entry and the system
 *    alarm "<hazard id>/overdue" (class supervisory, escalated by
 *    hazards.escalation); closing the hazard or giving it a new deadline
 *    clears that alarm (and acknowledges it for the person who did).
 */
#ifndef GW_HAZARD_DESK_H
#define GW_HAZARD_DESK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alarm.h"
#include "config.h"
#include "hazards.h"
#include "record.h"
#include "store.h"

#define GW_HAZARD_OVERDUE_SUFFIX "/overdue"
#define GW_HAZARD_OVERDUE_NAME "hazard overdue"
#define GW_HAZARD_INVALID_KEY "gateway/hazard-register-invalid"
#define GW_HAZARD_CMD_PREFIX "hazard/"

/* What the hazard desk needs of the alarm desk. */
struct gw_hazard_desk_host {
    void *ctx;
    uint64_t (*next_seq)(void *ctx);
    /* Takes json (malloc'd). */
    void (*emit)(void *ctx, enum gw_record_type type, int64_t ts_ms, const char *topic, char *json,
                 uint64_t seq);
    void (*open_batch)(void *ctx);
    /*
     * The gateway's own alarm `key`: raise it (on; name, class and a short value text) or
     * clear it (off; `by` is who made it go away, "" for the gateway: when the alarm waits
     * for an acknowledgement after the clear, `by` acknowledges it).
     */
    void (*system_alarm)(void *ctx, const char *key, const char *name, enum gw_alarm_class cls,
                         const char *value, bool on, const char *by, int64_t now_ms);
};

struct gw_hazard_desk;

/* Reads the register from the store (see above). NULL when out of memory (logged). cfg and store
 * must outlive it. */
struct gw_hazard_desk *gw_hazard_desk_new(const struct gw_config *cfg, struct gw_store *store,
                                          const struct gw_hazard_desk_host *host, int64_t now_ms);
void gw_hazard_desk_free(struct gw_hazard_desk *hd);

/* After the alarm desk restored its alarms: raise gateway/hazard-register-invalid, or clear it;
 * make the overdue alarms agree with the register. */
void gw_hazard_desk_restore(struct gw_hazard_desk *hd, int64_t now_ms);

/* Config reload: the register is kept; the settings (auto_open, default deadlines) follow cfg.
 * 0 or -ENOMEM (then the old settings stay). */
int gw_hazard_desk_reload(struct gw_hazard_desk *hd, const struct gw_config *cfg);

/* A rule alarm changed with transition "raise" (alarm: after the change; cfg: its indexes). */
void gw_hazard_desk_on_raise(struct gw_hazard_desk *hd, const struct gw_config *cfg,
                             const struct gw_alarm *alarm, int64_t now_ms);

/* About once a second: overdue hazards, the register against the disk, waiting auto-opens. */
void gw_hazard_desk_tick(struct gw_hazard_desk *hd, int64_t now_ms);

/* Every hazard's retained record again (a new broker). */
void gw_hazard_desk_snapshot(struct gw_hazard_desk *hd, int64_t now_ms);

/*
 * A command: name "open", "update", "rectifying", "close" or "reopen" (without the "hazard/"
 * prefix), payload its JSON. 0, or -EINVAL (bad input), -ENOENT (unknown hazard), -EPERM (wrong
 * state), -EIO (the register is invalid, or the store cannot write) with the message in err.
 * request_id (the payload's "id", "" none), hazard (the hazard's id, "" unknown) and *status
 * (static; NULL on error) are filled as far as they could be read, on error too.
 */
int gw_hazard_desk_execute(struct gw_hazard_desk *hd, const char *name, const void *payload,
                           size_t len, int64_t now_ms, char request_id[64],
                           char hazard[GW_HZ_ID_MAX], const char **status, char *err,
                           size_t errlen);

/* The register; NULL when it could not be restored (tampered or corrupt): then commands fail. */
const struct gw_hazards *gw_hazard_desk_register(const struct gw_hazard_desk *hd);
/* true when the register is usable; else false with the reason in why. */
bool gw_hazard_desk_ok(const struct gw_hazard_desk *hd, char *why, size_t size);

/*
 * A hazard's "entries" (how many history entries) and "updated_at" (its last entry's time), as
 * P/hazards/<id> shows them, from memory: restored with the register from the chain and counted
 * on every entry since (the entries of the batch being committed included). 0, or -ENOENT (an
 * unknown id, or no usable register).
 */
int gw_hazard_desk_meta(const struct gw_hazard_desk *hd, const char *id, int64_t *updated_at_ms,
                        int *entries);

/* Each stored entry's JSON (hazard_id NULL: all), in seq order, from the store. How many or
 * -errno. */
int gw_hazard_desk_entries(struct gw_hazard_desk *hd, const char *hazard_id,
                           void (*fn)(void *ctx, const char *entry_json), void *ctx);

/* The hazard an overdue alarm key "<id>/overdue" is about; NULL when it is not such a key. */
const struct gw_hazard *gw_hazard_desk_overdue_hazard(const struct gw_hazard_desk *hd,
                                                      const char *alarm_key);

/* Is key an overdue-hazard alarm key ("HZ-.../overdue")? */
bool gw_hazard_overdue_key(const char *key);

/* ---- pure parts (unit-tested) ---- */

/*
 * The P/hazards/<id> object: {"seq","id","category","building","floor","zone","description",
 * "found_at","found_by","source_alarm","responsible","deadline","status","verified_by",
 * "overdue","updated_at","entries"} (times RFC 3339 UTC with ms; "" strings when none).
 * malloc'd; NULL when out of memory or a string is not UTF-8.
 */
char *gw_hazard_json(const struct gw_hazard *h, uint64_t seq, int64_t updated_at_ms, int entries);

/* A parsed command payload: cmd points into it. Release with gw_hazard_request_free. */
struct gw_hazard_request {
    struct gw_hazard_command cmd;
    char request_id[64]; /* "id": echoed in the result; "" none */
    void *json;          /* the parsed payload the strings of cmd live in */
};

/*
 * name: "open", ... Unknown keys, wrong types, missing required keys, a bad deadline (an RFC 3339
 * time as gw_parse_rfc3339 reads it, or ms since the epoch > 0) are -EINVAL with a message;
 * contents (lengths, UTF-8, states) are left to gw_hazards_command. On error request_id and cmd.id
 * are still set when they could be read. Always call gw_hazard_request_free.
 */
int gw_hazard_request_parse(const char *name, const void *payload, size_t len,
                            struct gw_hazard_request *out, char *err, size_t errlen);
void gw_hazard_request_free(struct gw_hazard_request *req);

/* P/cmd/result of a hazard command: {"seq","ok","cmd":"hazard/<name>","id"?,"hazard"?,"error"?,
 * "status"?} ("id" and "hazard" when not ""). malloc'd, NULL when out of memory. */
char *gw_hazard_result_json(uint64_t seq, const char *name, const char *request_id,
                            const char *hazard, bool ok, const char *error, const char *status);

/* The category an auto-opened hazard gets from its sensor's kind. */
enum gw_hazard_category gw_hazard_category_of_kind(const char *kind);

#endif
