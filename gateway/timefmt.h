/*
 * RFC 3339 times, the one implementation: the gateway's records, sensor
 * payloads (ChirpStack, JSON sources), people's deadlines, the API and
 * campusgw-ctl all print and read them here. Pure: no clock, no locale, no TZ.
 */
#ifndef GW_TIMEFMT_H
#define GW_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* "2026-11-28T13:26:59.123Z" (UTC, always milliseconds) into out: at least 25 bytes, else "". */
void gw_format_rfc3339(int64_t ms, char *out, size_t size);

/*
 * An RFC 3339 date-time -> ms since the epoch. 0, or -EINVAL (*ms untouched).
 *  - "YYYY-MM-DDTHH:MM:SS", then an optional fraction of 1 to 9 digits (truncated to ms),
 *    then "Z" or an offset "+HH:MM" / "-HH:MM" (hours 00..23). Nothing may follow.
 *  - 't', 'z' and a space for the 'T' are taken too (RFC 3339 section 5.6 allows them).
 *  - A real calendar: months 1..12, the month's days (Feb 29 only in leap years), hours
 *    0..23, minutes 0..59, seconds 0..60; a leap second (:60) is held at :59 of its minute.
 *  - Times before 1970-01-01T00:00:00Z are rejected: no reading, record or deadline of this
 *    gateway is older, and 0 already means "none" to most of its callers.
 * s or ms NULL is -EINVAL.
 */
int gw_parse_rfc3339(const char *s, int64_t *ms);

/* "YYYY-MM-DD" exactly, a real day of 1970 or later: 0 with *y, *m (1..12), *d set, or -EINVAL. */
int gw_parse_date(const char *s, int *y, int *m, int *d);

#endif
