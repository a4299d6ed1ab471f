/*
 * Semtech UDP packet-forwarder protocol (GWMP, PROTOCOL.TXT of
 * Lora-net/packet_forwarder), versions 1 and 2. Pure: parses datagrams and
 * builds the acknowledgements; the driver owns the socket.
 *
 *   byte 0: version (1 or 2), 1-2: random token, 3: identifier,
 *   PUSH_DATA (0x00): 4-11 gateway EUI, 12-: JSON {"rxpk":[...],"stat":{...}}
 *   PUSH_ACK  (0x01): version, token, 0x01
 *   PULL_DATA (0x02): 4-11 gateway EUI
 *   PULL_ACK  (0x04): version, token, 0x04
 *   TX_ACK    (0x05): 4-11 gateway EUI, optional JSON {"txpk_ack":{...}}
 */
#ifndef GW_GWMP_H
#define GW_GWMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GWMP_PUSH_DATA 0x00
#define GWMP_PUSH_ACK 0x01
#define GWMP_PULL_DATA 0x02
#define GWMP_PULL_RESP 0x03
#define GWMP_PULL_ACK 0x04
#define GWMP_TX_ACK 0x05

#define GWMP_MAX_RXPK 32
#define GWMP_MAX_PHY 255

enum gwmp_error {
    GWMP_OK = 0,
    GWMP_ERR_SHORT,      /* shorter than its header */
    GWMP_ERR_VERSION,    /* not protocol version 1 or 2 */
    GWMP_ERR_IDENTIFIER, /* unknown packet type */
    GWMP_ERR_JSON,       /* PUSH_DATA whose JSON does not parse or is not an object */
    GWMP_ERR_COUNT
};

const char *gwmp_error_name(enum gwmp_error e);

struct gwmp_rxpk {
    bool has_time;
    char time[40]; /* as sent (ISO 8601), when the forwarder has GPS/NTP time */
    uint32_t tmst;
    double freq; /* MHz */
    int chan, rfch;
    int stat;      /* 1 CRC ok, -1 CRC bad, 0 no CRC */
    char modu[8];  /* "LORA" | "FSK" */
    char datr[16]; /* "SF7BW125" */
    char codr[8];  /* "4/5" */
    double rssi;   /* dBm */
    double lsnr;   /* dB */
    bool has_lsnr;
    uint8_t data[GWMP_MAX_PHY]; /* base64-decoded PHYPayload */
    size_t size;
    bool valid; /* false: this rxpk was malformed (bad base64, size mismatch, missing data) */
};

struct gwmp_stat {
    bool present;
    char time[40];
    uint32_t rxnb, rxok, rxfw, dwnb, txnb;
    double ackr;
};

struct gwmp_packet {
    uint8_t version;
    uint16_t token;
    uint8_t identifier;
    uint64_t gateway_eui; /* PUSH_DATA, PULL_DATA, TX_ACK */
    int nrxpk;
    struct gwmp_rxpk rxpk[GWMP_MAX_RXPK];
    struct gwmp_stat stat;
};

/* Parse one datagram. rxpk entries that are malformed are kept with valid = false. */
enum gwmp_error gwmp_parse(const uint8_t *buf, size_t len, struct gwmp_packet *out);

/* The 4-byte PUSH_ACK / PULL_ACK for a parsed PUSH_DATA / PULL_DATA. Returns 4. */
int gwmp_ack(const struct gwmp_packet *p, uint8_t out[4]);

/* Build a PUSH_DATA (campusgw-sim, tests): rxpk of the given PHYPayloads. Length or -1. */
int gwmp_build_push_data(uint8_t *out, size_t out_size, uint8_t version, uint16_t token,
                         uint64_t gateway_eui, const struct gwmp_rxpk *rxpk, int n);

#endif
