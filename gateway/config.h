/*
 * The validated configuration. Modules see only these structs, never libconfig.
 * All strings are owned by the gw_config and freed by gw_config_free.
 * Every element keeps the line it came from, for messages at run time.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "reading.h"

struct gw_site_cfg {
    char *district; /* required; used in topics, so [A-Za-z0-9_-]+ */
    char *school;   /* required; same rule */
    char *name;     /* required; free text (may be Chinese) */
    char *timezone; /* default "UTC"; must exist under /usr/share/zoneinfo */
    char *language; /* "zh-CN" (default) | "en" */
};

struct gw_tls_cfg {
    char *ca_file;   /* NULL: no TLS */
    char *cert_file; /* optional client certificate */
    char *key_file;
    bool insecure; /* default false: never skip hostname checks unless asked */
};

struct gw_hub_cfg {
    char *host;         /* default "127.0.0.1" */
    int port;           /* default 1883 (8883 with tls) */
    char *topic_prefix; /* default "campus" */
    char *username;     /* optional */
    char *password;     /* optional; from password or password_file */
    char *client_id;    /* default "campusgw-<district>-<school>" */
    int keepalive_s;    /* default 30 */
    struct gw_tls_cfg tls;
};

/* store = { ... }: the durable outbox (state_dir/state.db). */
struct gw_store_cfg {
    int commit_ms;      /* telemetry group commit interval; default 1000, 10..60000 */
    int commit_records; /* ...or this many pending records; default 1000, 1..100000 */
    int max_mb;         /* outbox size limit; default 512, 1..1048576 */
};

/* uplink = { ... }: the district broker. Absent: enabled = false. */
struct gw_uplink_cfg {
    bool enabled;
    char *host;         /* required */
    int port;           /* default 1883, 8883 with tls */
    char *topic_prefix; /* default: hub.topic_prefix */
    char *username;
    char *password;   /* password or password_file */
    char *client_id;  /* default "campusgw-<district>-<school>" */
    int keepalive_s;  /* default 30 */
    int max_inflight; /* QoS 1 messages awaiting PUBACK; default 100, 1..65535 */
    struct gw_tls_cfg tls;
    int line;
};

enum gw_influx_version { GW_INFLUX_V1, GW_INFLUX_V2 };

/* influx = { ... }: InfluxDB 1.x (database) or 2.x (org + bucket + token). Absent: enabled = false.
 */
struct gw_influx_cfg {
    bool enabled;
    enum gw_influx_version version; /* V1 when `database` is given, V2 with org/bucket */
    char *url;                      /* required: "http://127.0.0.1:8086" (no trailing path) */
    char *database;                 /* 1.x */
    char *retention_policy;         /* 1.x, optional (rp=) */
    char *username;                 /* 1.x basic auth, optional */
    char *password;                 /* password or password_file */
    char *org;                      /* 2.x */
    char *bucket;                   /* 2.x */
    char *token;                    /* 2.x: token or token_file */
    int batch_size;                 /* lines per write; default 5000, 1..100000 */
    int flush_ms;                   /* write a partial batch after this; default 1000, 10..60000 */
    bool gzip;                      /* default false */
    int timeout_ms;                 /* per request; default 10000, 100..300000 */
    char *ca_file;                  /* extra CA for https, optional */
    bool insecure;                  /* skip certificate checks; default false */
    int line;
};

/* lora = { ... }: the GWMP (Semtech UDP) server for packet forwarders. Absent: enabled = false. */
struct gw_lora_cfg {
    bool enabled;
    char *listen_host;       /* an IPv4 or IPv6 address (no brackets); default "0.0.0.0" */
    int listen_port;         /* default 1700 */
    char *region;            /* EU868 US915 CN470 AS923 AU915 KR920 IN865; default "CN470" */
    int dedup_ms;            /* one uplink heard by several forwarders within this; default 200 */
    int forwarder_offline_s; /* a forwarder silent this long is offline; default 120 */
    int line;
};

enum gw_bus_type { GW_BUS_RTU, GW_BUS_TCP };

struct gw_bus_cfg {
    char *name;
    enum gw_bus_type type;
    /* RTU */
    char *device;  /* rtu = "/dev/ttyUSB0" */
    int baud;      /* default 9600 */
    char parity;   /* 'N' (default), 'E', 'O' */
    int data_bits; /* default 8 */
    int stop_bits; /* default 1 */
    bool rs485;    /* default false: set the port to RS-485 mode (ioctl) */
    /* TCP */
    char *host; /* tcp = "host:port" */
    int port;   /* default 502 */
    /* both */
    int timeout_ms;     /* per request; default 1000 */
    int fail_threshold; /* consecutive failed polls before a device is offline; default 3 */
    int line;
};

enum gw_table { GW_TABLE_HOLDING, GW_TABLE_INPUT, GW_TABLE_COIL, GW_TABLE_DISCRETE };
enum gw_reg_type { GW_REG_U16, GW_REG_S16, GW_REG_U32, GW_REG_S32, GW_REG_F32, GW_REG_BOOL };
enum gw_word_order { GW_WORDS_BIG, GW_WORDS_LITTLE };

struct gw_point_cfg {
    char *name;
    char *unit; /* may be NULL */
    enum gw_table table;
    int address; /* 0-based register or bit number, 0..65535 */
    enum gw_reg_type type;
    enum gw_word_order word_order; /* 32-bit types only */
    double scale;                  /* default 1 */
    double offset;                 /* default 0 */
    bool has_span;                 /* 4-20 mA: raw_min/raw_max -> min/max, NE43 faults */
    double raw_min, raw_max, min, max;
    int nenum;          /* enum = [ "closed", "open", "locked" ]: the raw value is the index */
    char **enum_labels; /* a raw value outside the list is a GW_FAULT_INVALID point */
    int line;
};

enum gw_codec {
    GW_CODEC_MODBUS,
    GW_CODEC_LAYOUT,
    GW_CODEC_CAYENNE_LPP,
    GW_CODEC_JS,
    GW_CODEC_JSON, /* MQTT sources: values read from a JSON payload by path (sensors/mqtt) */
};

/* Layout codec field types (DESIGN.md "Layout codec field keys"). */
enum gw_field_type {
    GW_FT_U8,
    GW_FT_S8,
    GW_FT_U16BE,
    GW_FT_U16LE,
    GW_FT_S16BE,
    GW_FT_S16LE,
    GW_FT_U32BE,
    GW_FT_U32LE,
    GW_FT_S32BE,
    GW_FT_S32LE,
    GW_FT_F32BE,
    GW_FT_F32LE,
    GW_FT_BOOL, /* one bit: `bit` of the byte at `byte` */
};

/* One field of a `layout` codec profile: fields = ( { name; byte; type; ... } ). */
struct gw_layout_field_cfg {
    char *name;
    char *unit;    /* may be NULL */
    int byte;      /* offset in the FRMPayload, 0..241 */
    int bit;       /* 0..7 for bool; -1 otherwise */
    uint32_t mask; /* optional bit mask applied to the raw integer (then shifted down); 0 = none */
    enum gw_field_type type;
    double scale;  /* default 1 */
    double offset; /* default 0 */
    int nenum;     /* enum = [ ... ]: the raw value is the index */
    char **enum_labels;
    int fport; /* only frames on this FPort; -1 = any */
    int line;
};

/* What a JSON value must be (`type`); ANY takes what the payload holds. */
enum gw_json_type { GW_JSON_ANY, GW_JSON_NUMBER, GW_JSON_BOOL, GW_JSON_STRING };

/* One value of a `json` codec profile: values = ( { name; path; ... } ). */
struct gw_json_value_cfg {
    char *name;
    char *path; /* "contact", "sensors.t", "list.0.v": object keys, or array indexes */
    char *unit; /* may be NULL */
    enum gw_json_type type;
    double scale;  /* default 1; numbers only */
    double offset; /* default 0 */
    int nenum;     /* enum = [ ... ]: an integer or false/true (0/1) is the index, a label stays */
    char **enum_labels;
    int line;
};

struct gw_profile_cfg {
    char *name;
    enum gw_codec codec; /* GW_CODEC_MODBUS when it has `points` */
    int npoints;
    struct gw_point_cfg *points;
    int nfields; /* GW_CODEC_LAYOUT */
    struct gw_layout_field_cfg *fields;
    char *script; /* GW_CODEC_JS: path of the decoder (TTN decodeUplink or ChirpStack Decode) */
    int line;
    /* GW_CODEC_JS: a TTN device-repository examples.json checked at load; NULL when not given.
     * script and examples are resolved against the config file's directory unless absolute. */
    char *examples;
    int nvalues; /* GW_CODEC_JSON */
    struct gw_json_value_cfg *values;
};

struct gw_location_cfg {
    char *building; /* may be NULL */
    char *floor;
    char *zone;
};

/* A sensor's lora = { ... }: an ABP device. The keys are secrets: never printed, wiped on free. */
struct gw_sensor_lora_cfg {
    bool enabled;
    uint32_t dev_addr; /* "26011BDA" -> 0x26011BDA; unique across sensors */
    uint8_t nwk_s_key[16];
    uint8_t app_s_key[16];
    bool relax_fcnt; /* accept a frame counter that starts over (a device that resets it); default
                        false: a replayed or older counter is dropped */
};

enum gw_mqtt_format {
    GW_MQTT_JSON,       /* a JSON object per message; the json profile's paths pick the values */
    GW_MQTT_CHIRPSTACK, /* ChirpStack v4 integration uplink events */
};

/* A sensor's mqtt = { ... }: its readings arrive as messages on the hub (sensors/mqtt). */
struct gw_sensor_mqtt_cfg {
    bool enabled;
    char *topic; /* a topic; with chirpstack also a filter with + and # */
    enum gw_mqtt_format format;
    char dev_eui[17]; /* chirpstack: lower-case hex of deviceInfo.devEui; "" = any */
    bool wildcard;    /* topic holds + or # */
};

struct gw_sensor_cfg {
    char *id;   /* unique; [A-Za-z0-9_.-]+ since it is a topic level */
    char *kind; /* free identifier: hydrant_pressure, smoke, exit_door, ... */
    char *profile;
    int profile_index; /* into gw_config.profiles */
    /* Modbus binding; bus_index -1 when the sensor is not on Modbus */
    char *bus;
    int bus_index;
    int unit_id;        /* 0..247 (0 only for TCP devices that ignore it) */
    int interval_s;     /* poll interval; default 10 */
    int expect_every_s; /* for pushed sensors: how often a report is expected; 0 = none */
    int timeout_ms;     /* 0 = the bus's */
    struct gw_location_cfg location;
    int line;
    struct gw_sensor_lora_cfg lora; /* enabled: a LoRaWAN (ABP) sensor; bus_index is then -1 */
    struct gw_sensor_mqtt_cfg mqtt; /* enabled: readings come from the hub; bus_index is -1 */
};

struct gw_schedule_cfg {
    char *name;
    uint8_t days; /* bit 0 = Sunday .. bit 6 = Saturday (struct tm tm_wday) */
    int from_min; /* minutes after local midnight, 0..1439 */
    int to_min;   /* 0..1440; to < from means the window crosses midnight */
    int line;
};

enum gw_alarm_class { GW_CLASS_ALARM, GW_CLASS_SUPERVISORY, GW_CLASS_TROUBLE };

enum gw_rule_cond {
    GW_COND_ABOVE,
    GW_COND_BELOW,
    GW_COND_EQUALS,
    GW_COND_RATE_ABOVE, /* per minute */
    GW_COND_RATE_BELOW,
    GW_COND_OFFLINE,
};

struct gw_rule_cfg {
    char *name;
    char *slug;   /* name lower-cased, runs of non-alphanumerics -> '-' */
    char *kind;   /* NULL: every kind (offline rules) */
    char *sensor; /* NULL: every sensor of kind */
    char *point;  /* NULL only for offline rules */
    enum gw_rule_cond cond;
    double threshold;       /* above / below / rate_* */
    double deadband;        /* default 0; clears at threshold -/+ deadband */
    struct gw_value equals; /* equals: number, bool or string */
    int offline_after;      /* missed intervals */
    int schedule_index;     /* -1: always */
    int on_delay_s;         /* default 0 */
    int off_delay_s;        /* default 0 */
    bool latch;             /* default false */
    enum gw_alarm_class alarm_class;
    int line;
};

/* ---- people: contacts, escalation, notifications (issue 5) ---- */

enum gw_channel_kind { GW_CHANNEL_MQTT, GW_CHANNEL_WEBHOOK, GW_CHANNEL_EMAIL };
enum gw_webhook_format { GW_WEBHOOK_JSON, GW_WEBHOOK_WECOM, GW_WEBHOOK_DINGTALK };

/* One way to reach a contact: { mqtt = "notify/x"; } | { webhook = "https://..."; format; }
 * | { email = "a@b.cn"; }. */
struct gw_channel_cfg {
    enum gw_channel_kind kind;
    char *target; /* mqtt: topic under P/ ("notify/facilities"); webhook: URL; email: address */
    enum gw_webhook_format format; /* webhook; default json */
    int timeout_ms;                /* webhook and email, per attempt; default 10000 */
    int retries;                   /* webhook and email: attempts after the first; default 3 */
    int line;
};

/* contacts = { name = ( channel, ... ); ... } */
struct gw_contact_cfg {
    char *name; /* [A-Za-z0-9_-]+: also a topic level of P/notify/<name> */
    int nchannels;
    struct gw_channel_cfg *channels;
    int line;
};

/* One level of an escalation = { <class> = ( { after_s; notify = [...]; repeat_s; }, ... ); } */
struct gw_escalation_level_cfg {
    int after_s;   /* since the raise; strictly increasing within a class */
    int ncontacts; /* indexes into gw_config.contacts */
    int *contacts;
    int repeat_s; /* last level only: tell it again every repeat_s until acked; 0 = once */
    int line;
};

#define GW_NCLASSES 3 /* enum gw_alarm_class: alarm, supervisory, trouble */

struct gw_escalation_cfg {
    int nlevels[GW_NCLASSES];
    struct gw_escalation_level_cfg *levels[GW_NCLASSES];
};

/* smtp = { url = "smtps://smtp.example.cn:465"; username; password(_file); from; }:
 * the server email contacts are sent through. Absent: enabled = false (an email
 * channel is then a config error). */
struct gw_smtp_cfg {
    bool enabled;
    char *url; /* smtps://host:465 (TLS) or smtp://host:587 (STARTTLS required) */
    char *username;
    char *password;
    char *from; /* "campusgw <gw@school.cn>" or an address */
    char *ca_file;
    bool insecure; /* skip certificate checks; default false */
    int line;
};

/* alarms = { ... }: lifecycle tuning (ISA-18.2). */
struct gw_alarms_cfg {
    int chatter_count;   /* more raises than this ... (default 5) */
    int chatter_minutes; /* ... within this many minutes: chattering (default 10) */
    int storm_count;     /* more new alarms than this in 60 s: one summary per contact (10) */
    int flood_min;       /* offline sensors of one bus/forwarder that make one alarm (3) */
};

/* selftest = { at = "03:00"; enabled = true; }: the daily path self-test. */
struct gw_selftest_cfg {
    bool enabled;  /* default true */
    int at_min;    /* minutes after local midnight; default 180 (03:00) */
    int timeout_s; /* a hop not done within this is a trouble alarm; default 120 */
};

/* hazards = { ... }: the hazard register (issue 7). Defaults hold without the section. */
#define GW_HAZARD_NCATEGORIES 6 /* enum gw_hazard_category (hazards.h), in its order */
struct gw_hazards_cfg {
    int nauto_open;
    char **auto_open; /* rule names (each a supervisory rule of cfg->rules), each once */
    /* default deadline per category, days 1..365: fire_equipment 7, evacuation_route 1,
     * electrical 7, structure 30, surroundings 30, other 14 */
    int deadline_days[GW_HAZARD_NCATEGORIES];
    /* who is told of an overdue hazard; nlevels 0: escalation.supervisory's levels */
    int nlevels;
    struct gw_escalation_level_cfg *levels;
    int line; /* of the hazards section; 0 when it is absent */
};

/* kpi = { interval_s = 3600; }: how often the school's figures go out (P/kpi, school_kpi). */
struct gw_kpi_cfg {
    int interval_s; /* default 3600, 10..86400 */
};

/* http = { ... }: the status page and JSON API (issue 6). Defaults hold without the section. */
enum gw_http_role {
    GW_ROLE_VIEWER,   /* may look */
    GW_ROLE_OPERATOR, /* may act: ack, shelve, reset, out of service */
};

/* One http.users entry. The hashes are Argon2id strings ("$argon2id$v=19$m=...") that libsodium
 * accepts; not secrets as such, but wiped on free like them. */
struct gw_http_user_cfg {
    char *name; /* [A-Za-z0-9_.-]+, unique; recorded as "by" in the alarm history */
    enum gw_http_role role;
    char *password_hash;
    char *token_hash; /* NULL: no bearer token for this user */
    int line;
};

struct gw_http_cfg {
    char *listen_host; /* an IPv4 or IPv6 address (no brackets); default "127.0.0.1" */
    int listen_port;   /* default 8080 */
    bool loopback;     /* listen_host is 127.0.0.0/8 or ::1 */
    char *cert_file;   /* both or neither: HTTPS */
    char *key_file;
    int session_minutes; /* idle time after which a session ends; default 480, 5..10080 */
    int nusers;          /* 0: read-only page, and only on a loopback listen */
    struct gw_http_user_cfg *users;
    int line; /* of the http section; 0 when it is absent (defaults) */
};

struct gw_config {
    char *path;
    struct gw_site_cfg site;
    char *state_dir; /* required */
    struct gw_store_cfg store;
    struct gw_hub_cfg hub;
    struct gw_uplink_cfg uplink;
    struct gw_influx_cfg influx;
    struct gw_lora_cfg lora;
    int nbuses;
    struct gw_bus_cfg *buses;
    int nschedules;
    struct gw_schedule_cfg *schedules;
    int nprofiles;
    struct gw_profile_cfg *profiles;
    int nsensors;
    struct gw_sensor_cfg *sensors;
    int nrules;
    struct gw_rule_cfg *rules;
    int ncontacts;
    struct gw_contact_cfg *contacts;
    struct gw_escalation_cfg escalation;
    struct gw_smtp_cfg smtp;
    struct gw_alarms_cfg alarms;
    struct gw_selftest_cfg selftest;
    struct gw_http_cfg http;
    struct gw_hazards_cfg hazards;
    struct gw_kpi_cfg kpi;
};

/*
 * Parse and validate FILE. On success returns the config and *errors is
 * untouched. On failure returns NULL and writes every error found, one per
 * line, as "file:line: message" to `errors` (may be NULL). Warnings
 * (e.g. a world-readable password_file, a section of a later version) go to
 * `errors` too, prefixed "warning: ", and do not fail the parse.
 */
struct gw_config *gw_config_load(const char *path, FILE *errors);
void gw_config_free(struct gw_config *cfg);

/* The --check-config summary: site, hub, sensors per kind and bus, rules. */
void gw_config_print_summary(const struct gw_config *cfg, FILE *out);

/* Lookups; -1 when absent. */
int gw_config_find_sensor(const struct gw_config *cfg, const char *id);
int gw_config_find_rule(const struct gw_config *cfg, const char *name);
int gw_config_find_bus(const struct gw_config *cfg, const char *name);

/* "hydrant pressure low" -> "hydrant-pressure-low"; writes at most size bytes. */
void gw_slugify(const char *name, char *out, size_t size);

const char *gw_class_name(enum gw_alarm_class c);

/* "fire_equipment", ... (hazards.deadline_days keys, in enum gw_hazard_category order); NULL out
 * of range. */
const char *gw_config_hazard_category_name(int category);

#endif
