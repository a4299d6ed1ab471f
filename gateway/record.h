/*
 * An outbox record: one thing the gateway has to deliver, in the form it is
 * stored (SQLite) and handed to every sink. Sinks derive their own format
 * from it: MQTT sinks publish `payload` on P/<topic>, the InfluxDB sink turns
 * the JSON into line protocol.
 */
#ifndef GW_RECORD_H
#define GW_RECORD_H

#include <stddef.h>
#include <stdint.h>

enum gw_record_type {
    GW_REC_TELEMETRY = 0,  /* P/telemetry/<sensor>, payload per DESIGN.md */
    GW_REC_HEALTH = 1,     /* P/health/<sensor>, retained */
    GW_REC_ALARM = 2,      /* P/alarms/<key>, retained; payload "" once back to normal */
    GW_REC_EVENT = 3,      /* P/events: an alarm transition */
    GW_REC_GATEWAY = 4,    /* P/metrics: gateway metrics (InfluxDB measurement `gateway`) */
    GW_REC_FORWARDER = 5,  /* P/forwarders/<EUI>: a LoRa packet forwarder's health, retained */
    GW_REC_NOTIFY = 6,     /* P/notify/<contact>: a notification to people */
    GW_REC_CMD_RESULT = 7, /* P/cmd/result: the answer to a command */
    GW_REC_HAZARD = 8,     /* P/hazards/<id>, retained: a hazard as it is now */
    GW_REC_HAZARD_LOG = 9, /* P/hazards/log: one entry of the hazard register's hash chain */
    GW_REC_KPI = 10,       /* P/kpi, retained: the school's figures (InfluxDB `school_kpi`) */
    GW_REC_DAILY_LOG = 11, /* P/log, retained: the summary of yesterday's safety log */
};

/*
 * Two streams with their own cursors, so after an outage alarm records go out
 * ahead of the telemetry backlog: alarms in order among themselves, the rest
 * in order among themselves.
 */
enum gw_stream { GW_STREAM_ALARM = 0, GW_STREAM_DATA = 1 };
#define GW_NSTREAMS 2

static inline enum gw_stream gw_record_stream(enum gw_record_type type)
{
    return type == GW_REC_ALARM || type == GW_REC_EVENT || type == GW_REC_NOTIFY ||
                   type == GW_REC_CMD_RESULT || type == GW_REC_HAZARD ||
                   type == GW_REC_HAZARD_LOG || type == GW_REC_DAILY_LOG
               ? GW_STREAM_ALARM
               : GW_STREAM_DATA;
}

struct gw_record {
    uint64_t seq;
    enum gw_record_type type;
    int64_t ts_ms;      /* when it happened (Unix ms) */
    char *topic;        /* suffix under P/: "telemetry/A-1F-hydrant-01" */
    char *payload;      /* JSON, NUL-terminated; "" for a cleared retained alarm */
    size_t payload_len; /* strlen(payload) */
};

#endif
