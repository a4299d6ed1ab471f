/*
 * campusgw-sim's scenario: the simulated devices, their register tables and
 * the timed script of changes and faults. Pure: no sockets, no clock reads
 * (scenario time is passed in), so it is unit-tested on its own. The file
 * format is documented in docs/simulator.md.
 */
#ifndef GW_SIM_SCENARIO_H
#define GW_SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GW_SIM_LISTEN_DEFAULT_HOST "127.0.0.1"
#define GW_SIM_LISTEN_DEFAULT_PORT 1502

/* 4-20 mA hydrant transmitter: raw 4000..20000 in holding[0] for 0..1.6 MPa. */
#define GW_SIM_HYDRANT_RAW_MIN 4000
#define GW_SIM_HYDRANT_RAW_MAX 20000
#define GW_SIM_HYDRANT_MPA_MAX 1.6
#define GW_SIM_HYDRANT_RAW_SHORT 22000 /* 22 mA: above NAMUR NE43's 21 mA fault limit */

/* Largest register table of a `registers` device (Modbus addresses 0..65535). */
#define GW_SIM_TABLE_MAX 65536
/* Most words one script write may set at once (a u32/f32 needs 2). */
#define GW_SIM_WRITE_MAX 64

enum gw_sim_type { GW_SIM_HYDRANT, GW_SIM_DOOR, GW_SIM_REGISTERS };

enum gw_sim_fault {
    GW_SIM_FAULT_NONE,
    GW_SIM_FAULT_SILENT,        /* no answer at all, like a dead RS-485 device */
    GW_SIM_FAULT_EXCEPTION,     /* Modbus exception 2 (illegal data address) */
    GW_SIM_FAULT_GARBAGE,       /* a well-framed reply that is not valid Modbus */
    GW_SIM_FAULT_WIRE_BREAK,    /* hydrant only: loop open, 0 mA (raw 0) */
    GW_SIM_FAULT_SHORT_CIRCUIT, /* hydrant only: 22 mA (raw 22000) */
};

enum gw_sim_door_state { GW_SIM_DOOR_CLOSED, GW_SIM_DOOR_OPEN, GW_SIM_DOOR_LOCKED };

enum gw_sim_table { GW_SIM_HOLDING, GW_SIM_INPUT, GW_SIM_COILS, GW_SIM_DISCRETE };
#define GW_SIM_NTABLES 4

/* What a client reads; laid out so the server can point a modbus_mapping_t at it. */
struct gw_sim_tables {
    uint16_t *holding;
    uint16_t *input;
    uint8_t *coils; /* one byte per bit, 0 or 1, as libmodbus keeps them */
    uint8_t *discrete;
    int n_holding, n_input, n_coils, n_discrete;
};

/* The physical state a hydrant or door device models; tables are derived from it. */
struct gw_sim_model {
    double pressure; /* hydrant: MPa, 0..1.6 */
    enum gw_sim_door_state door;
    int battery; /* door: percent, 0..100 */
    enum gw_sim_fault fault;
};

struct gw_sim_device {
    char *name;
    int unit_id; /* 1..247 */
    enum gw_sim_type type;
    double noise; /* hydrant: +- MPa, uniform, drawn anew for every request */
    struct gw_sim_model init, cur;
    struct gw_sim_tables tables;
    struct gw_sim_tables init_tables; /* registers: restored when the script repeats */
    uint64_t requests;                /* requests addressed to this unit */
    int line;
};

struct gw_sim_write {
    enum gw_sim_table table;
    int address;
    int count;
    uint16_t values[GW_SIM_WRITE_MAX]; /* coils/discrete: 0 or 1 */
};

enum {
    GW_SIM_SET_PRESSURE = 1 << 0,
    GW_SIM_SET_DOOR = 1 << 1,
    GW_SIM_SET_BATTERY = 1 << 2,
    GW_SIM_SET_FAULT = 1 << 3,
};

struct gw_sim_event {
    int64_t at_ms; /* scenario time within one cycle of the script */
    int device;    /* index into gw_scenario.devices */
    unsigned set;  /* GW_SIM_SET_* */
    double pressure;
    enum gw_sim_door_state door;
    int battery;
    enum gw_sim_fault fault;
    int nwrites;
    struct gw_sim_write writes[GW_SIM_NTABLES];
    int line;
};

struct gw_scenario {
    char *path;
    char *name; /* optional, free text */
    char *listen_host;
    int listen_port;
    uint64_t seed; /* noise; from the file's `seed`, default 1 */
    int ndevices;
    struct gw_sim_device *devices;
    int nevents;
    struct gw_sim_event *events; /* sorted by at_ms, file order for ties */
    int64_t repeat_ms;           /* 0: run the script once */
    /* run state, reset by gw_scenario_start */
    int next_event;
    int64_t cycle;
    uint64_t rng;
    int unit_index[256]; /* unit id -> device index, -1 when none */
};

/*
 * Parse and validate a scenario file. On failure returns NULL and writes
 * every error, one per line, as "file:line: message" to `errors` (may be
 * NULL). Unknown keys are errors. The result is ready to run (started).
 */
struct gw_scenario *gw_scenario_load(const char *path, FILE *errors);
/* The same from a string; `name` stands for the file name in messages. */
struct gw_scenario *gw_scenario_parse(const char *text, const char *name, FILE *errors);
void gw_scenario_free(struct gw_scenario *sc);

/* Back to time 0: initial device states, script from the top, noise from `seed`. */
void gw_scenario_start(struct gw_scenario *sc, uint64_t seed);

/* Called once per applied script event or repeat with a printable line (no newline). */
typedef void (*gw_scenario_line_cb)(void *ud, const char *line);

/*
 * Apply every event due at or before scenario time now_ms (ms since start),
 * in order, repeating the script every repeat_ms. Returns how many events
 * were applied.
 */
int gw_scenario_advance(struct gw_scenario *sc, int64_t now_ms, gw_scenario_line_cb cb, void *ud);

/* Scenario time of the next event or repeat, or -1 when the script is over. */
int64_t gw_scenario_next_due_ms(const struct gw_scenario *sc);

/* The device answering `unit_id`, or NULL. */
struct gw_sim_device *gw_scenario_device(struct gw_scenario *sc, int unit_id);

/* What the server does with one request. */
enum gw_sim_action {
    GW_SIM_REPLY,     /* modbus_reply from the device's tables */
    GW_SIM_SILENT,    /* send nothing */
    GW_SIM_EXCEPTION, /* modbus_reply_exception with *exception */
    GW_SIM_GARBAGE,   /* gw_scenario_garbage */
};

/*
 * Decide how `dev` (NULL: no such unit) answers a request with Modbus
 * function code `function`. Hydrant and door devices are read-only
 * transmitters: writes get exception 1 (illegal function). Counts the
 * request and, for a REPLY, refreshes noisy values.
 */
enum gw_sim_action gw_scenario_request(struct gw_scenario *sc, struct gw_sim_device *dev,
                                       int function, int *exception);

/*
 * Build the "garbage" answer to the Modbus TCP request `req` (at least the
 * 8 bytes of MBAP header and function code): the request's transaction id and
 * unit id, protocol 0, a consistent length, then a function code no Modbus
 * reply uses and one random byte. Writes 9 bytes to out and returns 9.
 */
size_t gw_scenario_garbage(struct gw_scenario *sc, const uint8_t *req, uint8_t out[9]);

/*
 * Modbus TCP framing by the MBAP header, so a slow or broken client can only
 * stall itself. Returns the length of the complete frame at the start of buf,
 * 0 when more bytes are needed, or -EPROTO when buf does not start with a
 * Modbus TCP request (protocol id not 0, length field outside 2..254).
 */
int gw_sim_tcp_frame(const uint8_t *buf, size_t len);

/*
 * Whether a request PDU (function code first, n bytes) has the length its
 * function code implies; unknown function codes always pass (the server
 * answers them with exception 1).
 */
bool gw_sim_pdu_length_ok(const uint8_t *pdu, size_t n);

/*
 * "127.0.0.1:1502" -> host (malloc'd) and port. IPv4 literals only (libmodbus
 * binds IPv4); port 0 lets the kernel pick a free one. 0 or -EINVAL.
 */
int gw_sim_parse_listen(const char *s, char **host, int *port);

/* Names as written in the scenario file. */
const char *gw_sim_type_name(enum gw_sim_type t);
const char *gw_sim_fault_name(enum gw_sim_fault f);
const char *gw_sim_door_name(enum gw_sim_door_state s);
const char *gw_sim_table_name(enum gw_sim_table t);

/* 4-20 mA encoding of a hydrant pressure (clamped to 0..1.6 MPa). */
uint16_t gw_sim_hydrant_raw(double mpa);

#endif
