#include "reading.h"

const char *gw_fault_name(enum gw_point_fault fault)
{
    switch (fault) {
    case GW_FAULT_NONE:
        return "none";
    case GW_FAULT_WIRE_BREAK:
        return "wire_break";
    case GW_FAULT_OVER_RANGE:
        return "over_range";
    case GW_FAULT_INVALID:
        return "invalid";
    }
    return "unknown";
}
