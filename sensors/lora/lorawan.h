/*
 * LoRaWAN 1.0.x data frames (LoRaWAN 1.0.2/1.0.3 specification, section 4).
 * Pure: no I/O, no clock; AES-128 and AES-CMAC through OpenSSL libcrypto.
 *
 *   PHYPayload = MHDR(1) | MACPayload | MIC(4)
 *   MACPayload = FHDR(DevAddr 4 LE, FCtrl 1, FCnt 2 LE, FOpts 0..15) | [FPort 1 | FRMPayload]
 */
#ifndef GW_LORAWAN_H
#define GW_LORAWAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LW_KEY_LEN 16
#define LW_MAX_PAYLOAD 242 /* the largest FRMPayload any region allows */
#define LW_MAX_FCNT_GAP 16384

enum lw_mtype {
    LW_JOIN_REQUEST = 0,
    LW_JOIN_ACCEPT = 1,
    LW_UNCONFIRMED_UP = 2,
    LW_UNCONFIRMED_DOWN = 3,
    LW_CONFIRMED_UP = 4,
    LW_CONFIRMED_DOWN = 5,
    LW_REJOIN = 6,
    LW_PROPRIETARY = 7,
};

/* Why a frame is not a reading. Counted per reason and exported. */
enum lw_error {
    LW_OK = 0,
    LW_ERR_MALFORMED,   /* too short, bad lengths, FOpts with FPort 0, ... */
    LW_ERR_NOT_DATA_UP, /* join request, downlink, proprietary: not for us */
    LW_ERR_MAJOR,       /* LoRaWAN major version other than R1 */
    LW_ERR_UNKNOWN_DEVICE,
    LW_ERR_BAD_MIC,
    LW_ERR_REPLAY,   /* FCnt not above the last accepted */
    LW_ERR_FCNT_GAP, /* FCnt jumped by more than MAX_FCNT_GAP */
    LW_ERR_COUNT
};

const char *lw_error_name(enum lw_error e);

struct lw_frame {
    enum lw_mtype mtype;
    uint32_t dev_addr;
    uint8_t fctrl; /* ADR, ADRACKReq, ACK, ClassB, FOptsLen (low 4 bits) */
    uint16_t fcnt16;
    uint8_t fopts[15];
    uint8_t fopts_len;
    bool has_fport;
    uint8_t fport;
    const uint8_t *frm_payload; /* points into the parsed buffer (still encrypted) */
    size_t frm_len;
    uint8_t mic[4];
    const uint8_t *phy; /* the whole PHYPayload */
    size_t phy_len;
};

/* Parse a PHYPayload (structure only; no keys needed). */
enum lw_error lw_parse(const uint8_t *phy, size_t len, struct lw_frame *out);

/*
 * The full 32-bit FCnt for the 16 bits on air, given the last accepted full
 * value (has_last false for a device never heard): the candidate closest
 * above `last` (handles 16-bit roll-over).
 */
uint32_t lw_fcnt_full(uint16_t fcnt16, uint32_t last, bool has_last);

/*
 * Replay / gap policy: LW_OK when fcnt is above last (or no last yet), and
 * not more than LW_MAX_FCNT_GAP above. relax: a device that restarts its
 * counter on power-up is accepted when fcnt < last (logged by the caller).
 */
enum lw_error lw_check_fcnt(uint32_t fcnt, uint32_t last, bool has_last, bool relax);

/* MIC over B0 | msg with NwkSKey (uplink: dir 0). */
void lw_compute_mic(const uint8_t nwk_s_key[LW_KEY_LEN], const struct lw_frame *f, uint32_t fcnt,
                    uint8_t mic[4]);
bool lw_verify_mic(const uint8_t nwk_s_key[LW_KEY_LEN], const struct lw_frame *f, uint32_t fcnt);

/*
 * Decrypt (or encrypt: the same operation) FRMPayload with the AppSKey (FPort
 * > 0) or NwkSKey (FPort 0) chosen by the caller. out must hold frm_len bytes.
 */
void lw_crypt_payload(const uint8_t key[LW_KEY_LEN], uint32_t dev_addr, uint32_t fcnt, int dir,
                      const uint8_t *in, size_t len, uint8_t *out);

/*
 * Build an uplink PHYPayload (for campusgw-sim and tests): encrypts payload
 * and appends the MIC. Returns its length, or -1 if out_size is too small.
 */
int lw_build_uplink(uint8_t *out, size_t out_size, bool confirmed, uint32_t dev_addr, uint32_t fcnt,
                    uint8_t fctrl, const uint8_t *fopts, size_t fopts_len, int fport,
                    const uint8_t *payload, size_t payload_len, const uint8_t nwk_s_key[LW_KEY_LEN],
                    const uint8_t app_s_key[LW_KEY_LEN]);

/* "26011BDA" -> 0x26011BDA; 32 hex chars -> 16 bytes. 0 or -1. */
int lw_parse_dev_addr(const char *hex, uint32_t *out);
int lw_parse_key(const char *hex, uint8_t out[LW_KEY_LEN]);

#endif
