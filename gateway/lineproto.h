/*
 * InfluxDB line protocol
 * (https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/). Pure: builds
 * text into a growable buffer; no I/O.
 *
 *   measurement,tag1=v1,tag2=v2 field1=1.5,field2=12i,field3=true,field4="text" 1764336419123000000
 *
 * Escaping: measurement: comma, space; tag keys/values and field keys: comma,
 * equals sign, space; string field values: double quote and backslash.
 * A newline cannot be escaped in any of them: it is replaced (documented).
 * Tags are written sorted by key (InfluxDB's fastest path); empty tag values are
 * omitted (InfluxDB rejects them).
 */
#ifndef GW_LINEPROTO_H
#define GW_LINEPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "record.h"

struct gw_lp_buf {
    char *data; /* NUL-terminated */
    size_t len;
    size_t cap;
    int lines; /* complete lines in data */
};

void gw_lp_buf_init(struct gw_lp_buf *b);
void gw_lp_buf_reset(struct gw_lp_buf *b); /* keeps the memory */
void gw_lp_buf_free(struct gw_lp_buf *b);

struct gw_lp_tag {
    const char *key;
    const char *value; /* NULL or "" = omitted */
};

enum gw_lp_field_type { GW_LP_FLOAT, GW_LP_INT, GW_LP_BOOL, GW_LP_STRING };

struct gw_lp_field {
    const char *key;
    enum gw_lp_field_type type;
    double f;
    int64_t i;
    bool b;
    const char *s;
};

/*
 * Append one line. Tags are sorted here. At least one field is required;
 * non-finite floats are skipped (InfluxDB cannot store them) and a line left
 * with no field is not written. Returns 1 (written), 0 (nothing to write) or
 * -errno (ENOMEM, EINVAL for an empty measurement).
 */
int gw_lp_line(struct gw_lp_buf *b, const char *measurement, const struct gw_lp_tag *tags,
               int ntags, const struct gw_lp_field *fields, int nfields, int64_t ts_ns);

/*
 * The InfluxDB form of one outbox record (DESIGN.md "InfluxDB schema"):
 *   telemetry -> measurement = sensor kind, tags district,school,building,floor,zone,sensor,
 *                fields = values (+ rssi, snr, battery)
 *   health    -> sensor_health: tags as telemetry; online, age_s, errors
 *   event     -> alarm: tags district,school,sensor,rule,class; state, value, level
 *   gateway   -> gateway: tags district,school; outbox, readings, dropped, rss_kb, uptime_s, ...
 *   alarm (retained state) -> nothing (the event carries the transition)
 * Location tags come from cfg (the sensor's location); a sensor no longer in cfg
 * keeps district/school/sensor tags only. Appends 0..1 lines; returns lines
 * appended, or -EINVAL for a record whose JSON is malformed (dead-letter it).
 */
int gw_lp_from_record(struct gw_lp_buf *b, const struct gw_config *cfg,
                      const struct gw_record *rec);

#endif
