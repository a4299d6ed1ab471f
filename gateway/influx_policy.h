/*
 * What the InfluxDB sink decides, kept pure (no I/O, no clock reads) so every
 * case is unit-tested: how an HTTP outcome is classified, Retry-After, the
 * retry backoff, the write URL, and which lines of a batch an error reply
 * names.
 *
 * Error replies seen from real servers (checked against influxd 1.6.7 here):
 *   1.x, some lines bad:  400 {"error":"partial write: unable to parse 'LINE': REASON\n
 *                              unable to parse 'LINE2': REASON dropped=0"}
 *   1.x, every line bad:  400 {"error":"unable to parse 'LINE': REASON\nunable to parse ..."}
 *                         (no "partial write:" prefix, no dropped=; nothing was written)
 *   1.x, type conflict:   400 {"error":"partial write: field type conflict: input field \"F\"
 *                              on measurement \"M\" is type T, already exists as type U dropped=N"}
 *                         (names neither the line nor every offending type: only the first)
 *   1.x, reserved key:   400 {"error":"partial write: invalid field name: input field \"time\"
 *                              on measurement \"m\" is invalid dropped=1"} (same for "invalid tag
 *                              key: input tag \"time\" ...")
 *   1.x, no database:     404 {"error":"database not found: \"NAME\""}
 *   2.x OSS parse error:  400 {"code":"invalid","message":"unable to parse 'LINE': REASON"}
 *                         (the whole batch is refused: nothing written)
 *   2.7 type conflict:    422 {"code":"unprocessable entity","message":"failure writing points to
 *                              database: partial write: field type conflict: ... dropped=N"}
 *   3.x / Cloud:          400 {"code":"invalid","line":2,"message":"failed to parse line protocol:
 *                              errors encountered on line(s):\nerror parsing line 2 (1-based):
 * ..."}
 */
#ifndef GW_INFLUX_POLICY_H
#define GW_INFLUX_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum gw_influx_class {
    GW_INFLUX_OK,        /* 2xx: delivered */
    GW_INFLUX_RETRY,     /* transport error, timeout, 5xx, 408, 429, 1xx/3xx: same batch later */
    GW_INFLUX_REJECT,    /* 400, 413, 422 and other 4xx: the server refuses (some of) the data */
    GW_INFLUX_AUTH,      /* 401/403: keep buffering (retry) but log loudly */
    GW_INFLUX_NOT_FOUND, /* 404: database/bucket missing: retry (someone may create it) */
};

/*
 * transport_ok: the request got an HTTP reply at all (CURLE_OK). status: the
 * HTTP status (ignored when !transport_ok).
 */
enum gw_influx_class gw_influx_classify(bool transport_ok, long status);

const char *gw_influx_class_name(enum gw_influx_class c);

/* Retry-After waits longer than this are capped (a bogus header must not stall delivery). */
#define GW_INFLUX_RETRY_AFTER_MAX_MS (3600 * 1000)

/*
 * A Retry-After header value: delta-seconds ("120") or an HTTP-date
 * ("Sun, 06 Nov 1994 08:49:37 GMT"; also the obsolete RFC 850 and asctime
 * forms) taken relative to now_ms (Unix ms). Returns the wait in ms (0 for a
 * date in the past, capped at GW_INFLUX_RETRY_AFTER_MAX_MS), or -1 when value
 * is NULL or not a valid form.
 */
int gw_influx_retry_after_ms(const char *value, int64_t now_ms);

#define GW_INFLUX_BACKOFF_MIN_MS 1000
#define GW_INFLUX_BACKOFF_MAX_MS 60000

/*
 * Wait before retry number `attempt` (0 = the first retry): 1 s doubling to
 * 60 s, each spread by ±20 % with `rnd` (any uniformly random 32-bit value)
 * so that many gateways behind one district server do not retry in step.
 */
int gw_retry_backoff_ms(int attempt, uint32_t rnd);

/*
 * The write URL for cfg, with every query value percent-encoded (RFC 3986):
 *   1.x: <url>/write?db=<database>[&rp=<retention_policy>]&precision=ns
 *   2.x: <url>/api/v2/write?org=<org>&bucket=<bucket>&precision=ns
 * One trailing '/' of url is dropped. Returns the length written (NUL
 * excluded), -EINVAL when a required name is missing, -ENAMETOOLONG when out
 * is too small.
 */
int gw_influx_write_url(char *out, size_t size, const struct gw_influx_cfg *cfg);

/*
 * The human text of an error reply: the JSON string of "error" (1.x) or
 * "message" (2.x/3.x), unescaped; the raw body when it is not such JSON.
 * Writes at most size-1 bytes and a NUL (truncated text stays valid UTF-8 only
 * as far as the input was). Returns the length written.
 */
size_t gw_influx_error_text(const char *body, size_t len, char *out, size_t size);

/* True when the server says it stored the lines it did not name (1.x/2.x "partial write"). */
bool gw_influx_partial_write(const char *text);

/* The N of a trailing "dropped=N" (points the server refused), or -1. */
int gw_influx_dropped(const char *text);

/*
 * Which lines of `batch` (line protocol, '\n'-separated, as sent) the error
 * text names. Marks bad[k] = true for each 0-based line k it finds (bad has one
 * entry per line of batch; entries already true are left so, and a quoted line
 * that occurs twice marks its next unmarked copy). Recognises:
 *   unable to parse 'LINE': ...                 (1.x, 2.x) by content
 *   error parsing line N (1-based) / line N:    (3.x, Cloud) by number
 *   field type conflict: input field "F" on measurement "M" ... already exists as type T
 *       -> every line of measurement M whose field F is not of type T
 *   invalid field name: input field "F" on measurement "M" is invalid   (1.x: F = "time")
 *       -> every line of M with field F
 *   invalid tag key: input tag "T" on measurement "M" is invalid
 *       -> every line of M with tag key T
 * Returns how many lines it newly marked (0: the text names none it can match).
 */
int gw_influx_bad_lines(const char *text, const char *batch, size_t batch_len, bool *bad,
                        int nlines);

#endif
