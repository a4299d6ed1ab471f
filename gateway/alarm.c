#include "alarm.h"

const char *gw_alarm_state_name(enum gw_alarm_state state)
{
    switch (state) {
    case GW_ALARM_NORMAL:
        return "normal";
    case GW_ALARM_UNACKED:
        return "unacked";
    case GW_ALARM_ACKED:
        return "acked";
    case GW_ALARM_RTN_UNACKED:
        return "rtn_unacked";
    case GW_ALARM_SHELVED:
        return "shelved";
    case GW_ALARM_OUT_OF_SERVICE:
        return "out_of_service";
    }
    return "unknown";
}
