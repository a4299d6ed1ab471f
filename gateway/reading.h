/* What a driver hands the core: one poll or one uplink of one sensor. */
#ifndef GW_READING_H
#define GW_READING_H

#include <stdbool.h>
#include <stdint.h>

#define GW_MAX_POINTS 16
#define GW_NAME_MAX 48
#define GW_STR_VALUE_MAX 32
#define GW_ERR_MAX 160

enum gw_value_type { GW_VALUE_NONE, GW_VALUE_NUMBER, GW_VALUE_BOOL, GW_VALUE_STRING };

struct gw_value {
    enum gw_value_type type;
    double num; /* GW_VALUE_NUMBER; also 0/1 for GW_VALUE_BOOL */
    bool b;
    char str[GW_STR_VALUE_MAX]; /* GW_VALUE_STRING (an enum label) */
};

/* Why a point has no value although the device answered. */
enum gw_point_fault {
    GW_FAULT_NONE,
    GW_FAULT_WIRE_BREAK, /* 4-20 mA below 3.6 mA equivalent (NAMUR NE43) */
    GW_FAULT_OVER_RANGE, /* 4-20 mA above 21 mA equivalent */
    GW_FAULT_INVALID,    /* NaN or a value the codec could not decode */
};

struct gw_point_value {
    char name[GW_NAME_MAX];
    struct gw_value value; /* type NONE when fault != NONE */
    enum gw_point_fault fault;
};

enum gw_reading_status {
    GW_READING_OK,    /* the device answered; points hold values or faults */
    GW_READING_ERROR, /* the poll failed (timeout, exception, bad reply): health only */
};

struct gw_reading {
    int sensor_index;         /* index into gw_config.sensors at the time of the poll */
    char sensor[GW_NAME_MAX]; /* its id, to survive a config reload */
    int64_t ts_ms;            /* wall-clock time of the reading, Unix ms */
    enum gw_reading_status status;
    char error[GW_ERR_MAX]; /* GW_READING_ERROR: what went wrong, for logs and health */
    int npoints;
    struct gw_point_value points[GW_MAX_POINTS];
    bool has_rssi, has_snr;
    double rssi, snr; /* LoRa: the best of the forwarders that heard the frame */
    /* LoRa only: how many forwarders heard it, its 32-bit frame counter, and the
     * percentage of frames lost over the last 100 (from FCnt gaps). */
    int forwarders;
    bool has_fcnt, has_frame_loss;
    uint32_t fcnt;
    double frame_loss;
};

const char *gw_fault_name(enum gw_point_fault fault);

#endif
