/*
 * From packet-forwarder datagrams to readings, the pure part of the LoRa
 * driver: GWMP parse, forwarder bookkeeping, LoRaWAN frame checks (device by
 * DevAddr, 32-bit FCnt, MIC, replay and gap), deduplication of one frame heard
 * by several forwarders, FRMPayload decryption, the profile's codec, frame
 * loss. No sockets, no clock: the caller passes now_ms and sends the ACKs.
 *
 * Order of checks for each rxpk: CRC (stat), LoRaWAN structure, DevAddr, MIC
 * (with the FCnt rebuilt from the device's last accepted one), then
 * duplicate (same DevAddr, FCnt and MIC within dedup_ms: merged, not
 * counted as a reject), then replay / gap. An accepted frame waits dedup_ms
 * for its copies, then comes out of lora_ingest_flush as one reading with the
 * best RSSI/SNR and the number of forwarders that heard it.
 */
#ifndef GW_LORA_INGEST_H
#define GW_LORA_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lora/gwmp.h"
#include "reading.h"

/* Why a datagram or a frame did not become a reading. Exported as lora_rejected_<name>. */
enum lora_reject {
    LORA_REJ_SHORT,          /* datagram shorter than its GWMP header */
    LORA_REJ_VERSION,        /* GWMP protocol version other than 1 or 2 */
    LORA_REJ_IDENTIFIER,     /* unknown GWMP packet type */
    LORA_REJ_JSON,           /* PUSH_DATA whose JSON does not parse */
    LORA_REJ_OVERSIZE,       /* datagram larger than any forwarder sends */
    LORA_REJ_RXPK,           /* an rxpk without valid data/size */
    LORA_REJ_CRC,            /* rxpk stat != 1 */
    LORA_REJ_MALFORMED,      /* LoRaWAN frame too short or inconsistent */
    LORA_REJ_NOT_DATA_UP,    /* join request, downlink, proprietary */
    LORA_REJ_MAJOR,          /* not LoRaWAN R1 */
    LORA_REJ_UNKNOWN_DEVICE, /* DevAddr of no configured sensor */
    LORA_REJ_BAD_MIC,        /* MIC does not verify with the device's NwkSKey */
    LORA_REJ_REPLAY,         /* FCnt not above the last accepted */
    LORA_REJ_FCNT_GAP,       /* FCnt more than LW_MAX_FCNT_GAP ahead */
    LORA_REJ_DECODE,         /* the profile's codec failed on the payload */
    LORA_REJ_COUNT
};

const char *lora_reject_name(enum lora_reject r);

/* Datagrams above this are refused unparsed: a forwarder sends at most GWMP_MAX_RXPK
 * frames of ~540 bytes of JSON each (Semtech lora_pkt_fwd: 8 per datagram). */
#define LORA_MAX_DATAGRAM 32768

struct lora_counters {
    uint64_t datagrams;  /* every datagram received */
    uint64_t push_data;  /* PUSH_DATA datagrams */
    uint64_t pull_data;  /* PULL_DATA keepalives */
    uint64_t tx_ack;     /* TX_ACK */
    uint64_t rxpk;       /* rxpk entries seen */
    uint64_t frames;     /* distinct frames that passed every check (copies not counted) */
    uint64_t duplicates; /* copies merged into an earlier frame */
    uint64_t readings;   /* readings emitted */
    uint64_t relaxed;    /* frames accepted only because of relax_fcnt */
    uint64_t rejected[LORA_REJ_COUNT];
};

/* A packet forwarder, by gateway EUI. */
struct lora_forwarder {
    uint64_t eui;
    bool online;
    int64_t first_seen_ms, last_seen_ms; /* any datagram */
    int64_t last_pull_ms;                /* last PULL_DATA: downlinks go to pull_addr */
    bool has_stat;
    struct gwmp_stat stat; /* the last stat report */
    uint64_t rxpk;         /* rxpk entries received from it */
    uint8_t version;       /* GWMP version it speaks */
};

struct lora_ingest;

/*
 * Devices are the config's sensors with a lora block; each gets its profile's
 * decoder (compiled here). NULL with a message in err on failure (a JS
 * decoder that no longer compiles).
 */
struct lora_ingest *lora_ingest_new(const struct gw_config *cfg, char *err, size_t errlen);
void lora_ingest_free(struct lora_ingest *ing);

/* The last accepted FCnt of a device, from the store, before any datagram. */
void lora_ingest_restore_fcnt(struct lora_ingest *ing, uint32_t dev_addr, uint32_t fcnt);

/*
 * One received datagram. Returns the number of bytes of the acknowledgement
 * to send back to the sender (PUSH_ACK / PULL_ACK; 0: none). *forwarder_index
 * is the forwarder it came from, or -1 (unparseable).
 */
int lora_ingest_datagram(struct lora_ingest *ing, const uint8_t *buf, size_t len, int64_t now_ms,
                         uint8_t ack[4], int *forwarder_index);

/* Called with each reading (sensor_index, points, rssi, snr, frame loss...). */
typedef void (*lora_reading_fn)(void *ctx, const struct gw_reading *r);
/* Called when a device's last accepted FCnt changes (persist it). */
typedef void (*lora_fcnt_fn)(void *ctx, uint32_t dev_addr, uint32_t fcnt);
/* Called when a forwarder comes online, goes offline or sends a stat report. */
typedef void (*lora_forwarder_fn)(void *ctx, const struct lora_forwarder *f);

struct lora_ingest_callbacks {
    lora_reading_fn reading;
    lora_fcnt_fn fcnt;
    lora_forwarder_fn forwarder;
    void *ctx;
};

void lora_ingest_set_callbacks(struct lora_ingest *ing, const struct lora_ingest_callbacks *cb);

/*
 * Emit the frames whose deduplication window has passed (all of them with
 * force), and mark forwarders silent for forwarder_offline_s offline.
 * Returns the next instant (Unix ms) it needs to run again, or INT64_MAX.
 */
int64_t lora_ingest_flush(struct lora_ingest *ing, int64_t now_ms, bool force);

const struct lora_counters *lora_ingest_counters(const struct lora_ingest *ing);
int lora_ingest_nforwarders(const struct lora_ingest *ing);
const struct lora_forwarder *lora_ingest_forwarder(const struct lora_ingest *ing, int index);

#endif
