/*
 * The alarm record as published on P/alarms/<sensor>/<rule-slug> and P/events.
 * Shaped for the full ISA-18.2 lifecycle (ack, shelve, escalation level) that
 * a later version adds; today a rule raises (unacked) and clears (normal).
 */
#ifndef GW_ALARM_H
#define GW_ALARM_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "reading.h"

enum gw_alarm_state {
    GW_ALARM_NORMAL,
    GW_ALARM_UNACKED,
    GW_ALARM_ACKED,
    GW_ALARM_RTN_UNACKED,
    GW_ALARM_SHELVED,
    GW_ALARM_OUT_OF_SERVICE,
};

#define GW_KEY_MAX 160

struct gw_alarm {
    char key[GW_KEY_MAX]; /* <sensor>/<rule-slug> */
    int rule_index;
    int sensor_index;
    enum gw_alarm_state state;
    struct gw_value value;
    int64_t raised_at_ms; /* 0 = null */
    int64_t acked_at_ms;
    char acked_by[GW_NAME_MAX];
    int64_t cleared_at_ms;
    int level; /* escalation level reached; 0 = none yet */
};

const char *gw_alarm_state_name(enum gw_alarm_state state);

#endif
