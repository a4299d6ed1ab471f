/*
 * campusgw-sim's scenario: the simulated devices (Modbus register tables and
 * LoRaWAN end devices), the timed script of changes and faults, and which
 * LoRaWAN frames to send when (lora_sim.c). Pure: no sockets, no clock reads
 * (scenario time is passed in), so it is unit-tested on its own. The file
 * format is documented in docs/simulator.md.
 */
#ifndef GW_SIM_SCENARIO_H
#define GW_SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lora/gwmp.h"
#include "lora/lorawan.h"

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

/* Modbus types first; every type from GW_SIM_SMOKE on is a LoRaWAN end device. */
enum gw_sim_type {
    GW_SIM_HYDRANT,
    GW_SIM_DOOR,
    GW_SIM_REGISTERS,
    GW_SIM_SMOKE,     /* smoke_x layout: byte 0 bit 0 smoke, bit 1 test; byte 1 battery % */
    GW_SIM_DOOR_LORA, /* door_x layout: byte 0 state 0 closed/1 open/2 locked; byte 1 battery */
    GW_SIM_RAW_LORA,  /* payload bytes as given */
};

static inline bool gw_sim_type_is_lora(enum gw_sim_type t)
{
    return t >= GW_SIM_SMOKE;
}

enum gw_sim_fault {
    GW_SIM_FAULT_NONE,
    GW_SIM_FAULT_SILENT,        /* no answer at all, like a dead RS-485 device */
    GW_SIM_FAULT_EXCEPTION,     /* Modbus exception 2 (illegal data address) */
    GW_SIM_FAULT_GARBAGE,       /* a well-framed reply that is not valid Modbus */
    GW_SIM_FAULT_WIRE_BREAK,    /* hydrant only: loop open, 0 mA (raw 0) */
    GW_SIM_FAULT_SHORT_CIRCUIT, /* hydrant only: 22 mA (raw 22000) */
    /* LoRa only, one-shot script actions (the device's fault state does not change): */
    GW_SIM_FAULT_REPLAY,     /* its last frame is sent again, byte for byte */
    GW_SIM_FAULT_BAD_MIC,    /* a frame now whose MIC is corrupted */
    GW_SIM_FAULT_FCNT_RESET, /* the device restarts: a frame now with FCnt 0, counting on */
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

/* The physical state a device models; tables and LoRa payloads are derived from it. */
struct gw_sim_model {
    double pressure; /* hydrant: MPa, 0..1.6 */
    enum gw_sim_door_state door;
    int battery; /* door, smoke, door_lora: percent, 0..100 */
    bool smoke;  /* smoke */
    enum gw_sim_fault fault;
    uint8_t payload[LW_MAX_PAYLOAD]; /* raw_lora */
    size_t payload_len;
};

#define GW_SIM_MAX_FORWARDERS 8

/* A LoRaWAN end device (ABP: its session keys are given). */
struct gw_sim_lora_dev {
    uint32_t dev_addr;
    uint8_t nwk_s_key[LW_KEY_LEN];
    uint8_t app_s_key[LW_KEY_LEN];
    int64_t every_ms; /* periodic uplink interval, scenario time */
    int fport;        /* 1..223 */
    uint32_t fcnt_init;
    unsigned heard_by; /* bit i: forwarder i receives its frames */
    double rssi, snr;  /* as heard by a forwarder with no offset */
    int sf;            /* spreading factor 7..12, BW125 */
    /* run state */
    uint32_t fcnt;              /* FCnt of the next new frame */
    int64_t next_ms;            /* scenario time of the next periodic uplink */
    bool send_now;              /* a scripted change: send a frame at once */
    bool test;                  /* the next frame is a test-button frame */
    bool bad_mic;               /* the next frame gets a corrupted MIC */
    bool replay;                /* send `last` again */
    uint8_t last[GWMP_MAX_PHY]; /* the last frame sent, for fault = "replay" */
    size_t last_len;
    uint32_t last_fcnt;
    uint64_t uplinks; /* frames sent, replays included */
};

struct gw_sim_device {
    char *name;
    int unit_id; /* 1..247; -1 for a LoRa device */
    enum gw_sim_type type;
    double noise; /* hydrant: +- MPa, uniform, drawn anew for every request */
    struct gw_sim_model init, cur;
    struct gw_sim_tables tables;
    struct gw_sim_tables init_tables; /* registers: restored when the script repeats */
    uint64_t requests;                /* requests addressed to this unit */
    struct gw_sim_lora_dev lora;      /* LoRa types only */
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
    GW_SIM_SET_SMOKE = 1 << 4,
    GW_SIM_SET_TEST = 1 << 5,
    GW_SIM_SET_PAYLOAD = 1 << 6,
};

struct gw_sim_event {
    int64_t at_ms; /* scenario time within one cycle of the script */
    int device;    /* index into gw_scenario.devices */
    unsigned set;  /* GW_SIM_SET_* */
    double pressure;
    enum gw_sim_door_state door;
    int battery;
    enum gw_sim_fault fault;
    bool smoke;
    uint8_t payload[LW_MAX_PAYLOAD];
    size_t payload_len;
    int nwrites;
    struct gw_sim_write writes[GW_SIM_NTABLES];
    int line;
};

/* One simulated packet forwarder (a LoRa gateway's concentrator + lora_pkt_fwd). */
struct gw_sim_forwarder {
    uint64_t eui;
    double rssi_offset; /* dB added to every device's rssi as this forwarder hears it */
    double snr_offset;
    int line;
};

#define GW_SIM_LORA_FORWARD_DEFAULT "127.0.0.1:1700"
#define GW_SIM_LORA_KEEPALIVE_MS 10000 /* PULL_DATA, as lora_pkt_fwd's keepalive_interval */
#define GW_SIM_LORA_STAT_MS 30000

struct gw_sim_lora {
    bool present; /* the file has a lora section */
    char *forward_host;
    int forward_port;
    int version; /* GWMP protocol version 1 or 2 */
    int nforwarders;
    struct gw_sim_forwarder fwd[GW_SIM_MAX_FORWARDERS];
    int64_t stat_ms;      /* scenario time between stat reports */
    int64_t keepalive_ms; /* scenario time between PULL_DATA */
    int ndevices;         /* LoRa devices among gw_scenario.devices */
    /* run state */
    int64_t next_pull_ms, next_stat_ms;
    uint64_t rng; /* channels and signal jitter; apart from the noise so that stays as it was */
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
    struct gw_sim_lora lora;
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

/* ---- LoRaWAN (lora_sim.c) ---------------------------------------------------------------- */

/*
 * The FRMPayload (plain text) a LoRa device sends in its current state: smoke
 * [smoke | test << 1, battery], door_lora [state, battery], raw_lora its
 * payload. test: a test-button frame (smoke only). Returns the length.
 */
size_t gw_sim_lora_payload(const struct gw_sim_device *d, bool test, uint8_t out[LW_MAX_PAYLOAD]);

enum gw_sim_uplink_why {
    GW_SIM_UP_PERIODIC, /* every_s */
    GW_SIM_UP_CHANGE,   /* a scripted change (state, test, bad_mic, fcnt_reset, a repeat) */
    GW_SIM_UP_REPLAY,   /* fault = "replay": the last frame again */
};

/* One forwarder's reception of a frame. */
struct gw_sim_copy {
    int forwarder;
    int delay_ms; /* wall time after the first copy: the forwarders' backhauls differ */
    double rssi, snr;
};

/* One radio transmission and the forwarders that heard it. */
struct gw_sim_uplink {
    int device;
    enum gw_sim_uplink_why why;
    uint32_t fcnt; /* the full 32-bit counter the frame was built with */
    bool test, bad_mic;
    uint8_t payload[LW_MAX_PAYLOAD]; /* plain text, for the log */
    size_t payload_len;
    uint8_t phy[GWMP_MAX_PHY];
    size_t phy_len;
    int chan; /* CN470 uplink channel 0..7: 470.3 + 0.2 * chan MHz */
    double freq;
    int sf;
    int ncopies;
    struct gw_sim_copy copies[GW_SIM_MAX_FORWARDERS];
};

/*
 * The next LoRa transmission due at scenario time now_ms: fills *up and
 * returns 1, or returns 0 when nothing is due. Call until it returns 0.
 * Applies the device's fault (silent sends nothing; bad_mic corrupts the MIC)
 * and counts FCnt.
 */
int gw_scenario_lora_next(struct gw_scenario *sc, int64_t now_ms, struct gw_sim_uplink *up);

/* Scenario time of the next LoRa transmission (INT64_MIN: one is due now), -1 for none. */
int64_t gw_scenario_lora_due_ms(const struct gw_scenario *sc);

/* Whether a PULL_DATA keepalive / a stat report is due; each true once per interval. */
bool gw_scenario_lora_pull_due(struct gw_scenario *sc, int64_t now_ms);
bool gw_scenario_lora_stat_due(struct gw_scenario *sc, int64_t now_ms);
/* Scenario time of the next keepalive or stat, -1 without a lora section. */
int64_t gw_scenario_lora_timer_ms(const struct gw_scenario *sc);

/* The rxpk of copy `i` of `up` as its forwarder reports it. time may be NULL (no GPS/NTP). */
void gw_sim_lora_rxpk(const struct gw_sim_uplink *up, int i, uint32_t tmst, const char *time,
                      struct gwmp_rxpk *out);

/* PULL_DATA: version, token, 0x02, EUI. Returns 12. */
int gw_sim_gwmp_pull_data(uint8_t out[12], uint8_t version, uint16_t token, uint64_t eui);

/* TX_ACK without JSON (no error): version, token, 0x05, EUI. Returns 12. */
int gw_sim_gwmp_tx_ack(uint8_t out[12], uint8_t version, uint16_t token, uint64_t eui);

/* A forwarder's statistics since its last report. */
struct gw_sim_fwd_stat {
    char time[32]; /* "2024-05-01 08:00:00 GMT" */
    uint32_t rxnb, rxok, rxfw, dwnb, txnb;
    double ackr; /* percent of PUSH_DATA acknowledged */
};

/* PUSH_DATA carrying {"stat":{...}}. Length, or -1 when out is too small. */
int gw_sim_gwmp_stat(uint8_t *out, size_t size, uint8_t version, uint16_t token, uint64_t eui,
                     const struct gw_sim_fwd_stat *st);

/*
 * Acknowledgements a forwarder waits for: every PUSH_DATA wants a PUSH_ACK and
 * every PULL_DATA a PULL_ACK with the same token and version.
 */
#define GW_SIM_ACK_SLOTS 64
struct gw_sim_acks {
    struct {
        int64_t sent_ms;
        uint16_t token;
        uint8_t identifier; /* what was sent: GWMP_PUSH_DATA or GWMP_PULL_DATA */
        bool used;
    } slot[GW_SIM_ACK_SLOTS];
    uint64_t push_acked, pull_acked;
    uint64_t missing;    /* never acknowledged within the timeout */
    uint64_t unexpected; /* an ack for nothing we wait for (late, duplicate, wrong version) */
};

/* Remember a sent datagram; when every slot is taken the oldest counts as missing. */
void gw_sim_acks_sent(struct gw_sim_acks *a, uint8_t identifier, uint16_t token, int64_t now_ms);

/*
 * A received, parsed datagram of our version: true when it acknowledges one we
 * sent (PUSH_ACK for a PUSH_DATA, PULL_ACK for a PULL_DATA, same token).
 */
bool gw_sim_acks_received(struct gw_sim_acks *a, uint8_t version, uint8_t want_version,
                          uint8_t identifier, uint16_t token);

/* Datagrams sent before now_ms - timeout_ms and still unacknowledged; they count as missing. */
int gw_sim_acks_expire(struct gw_sim_acks *a, int64_t now_ms, int64_t timeout_ms);

/* "AA555A0000000001" -> EUI-64, or "26011BDA..." hex of an exact length; 0 or -EINVAL. */
int gw_sim_parse_eui(const char *hex, uint64_t *out);
int gw_sim_parse_hex(const char *hex, uint8_t *out, size_t max, size_t *len);

#endif
