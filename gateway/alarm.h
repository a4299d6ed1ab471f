/*
 * The alarm record as published on P/alarms/<sensor>/<rule-slug> and P/events,
 * and kept in the store. Its ISA-18.2 lifecycle is gateway/alarms.h.
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
#define GW_ALARM_NSTATES 6

#define GW_KEY_MAX 160
#define GW_NOTE_MAX 256 /* an operator's note, UTF-8, with its NUL */
/* Raise instants remembered for chattering: chatter_count above this - 1 acts as this - 1. */
#define GW_ALARM_RAISE_RING 32

/*
 * A rule alarm is one (rule, sensor) pair, keyed "<sensor id>/<rule slug>". A
 * system alarm is the gateway's own (self-test, a bus or a forwarder offline),
 * keyed "<source>/<slug>" where the source is not a sensor id; it has no rule
 * and no sensor (indexes -1), is never latched and never out of service.
 */
struct gw_alarm {
    char key[GW_KEY_MAX]; /* <sensor>/<rule-slug>, or <source>/<slug> for a system alarm */
    int rule_index;       /* into cfg->rules; -1 for a system alarm */
    int sensor_index;     /* into cfg->sensors; -1 for a system alarm */
    bool system;          /* raised by gw_alarms_system_raise, not by a rule */
    enum gw_alarm_class alarm_class; /* the rule's class, or the system alarm's */
    char name[GW_NAME_MAX * 2];      /* the rule's name (cut at a character), or the system's */
    bool test; /* raised by a test (a detector's test button, the self-test): level 1 only */
    enum gw_alarm_state state;
    struct gw_value value;
    int64_t raised_at_ms; /* 0 = null */
    int64_t acked_at_ms;
    char acked_by[GW_NAME_MAX];
    int64_t cleared_at_ms;
    int level; /* escalation level reached; 0 = none yet */

    /* Lifecycle (alarms.c). Zero = nothing to say. */
    bool condition;           /* the rule's condition holds now (the hazard is still there) */
    bool needs_reset;         /* latched rule whose condition is gone: waits for ack + reset */
    int64_t shelved_until_ms; /* state shelved: automatic unshelve at this instant */
    char shelved_by[GW_NAME_MAX];
    char note[GW_NOTE_MAX]; /* the note of the last ack or shelve; cleared by a new raise */
    bool chattering;        /* more than chatter_count raises within chatter_minutes */
    int nraises;            /* raise instants within the chatter window, oldest first */
    int64_t raises_ms[GW_ALARM_RAISE_RING];
    int64_t notified_at_ms; /* the last change with GW_NOTIFY_RAISE; 0 = none */
    bool notify_pending;    /* a raise whose notification chattering held back */
    int suppressed;         /* raise notifications held back since chattering began */
};

const char *gw_alarm_state_name(enum gw_alarm_state state);

#endif
