/*
 * LoRaWAN 1.0.x data frames: parse, FCnt policy, MIC (AES-CMAC) and FRMPayload
 * encryption (AES-128 keystream), LoRaWAN 1.0.2 sections 4.3 and 4.4.
 *
 * Crypto contexts: every call needs an AES-ECB context and a CMAC context.
 * Creating them (and fetching the algorithms from the provider) costs far more
 * than the few blocks of AES a frame needs, so each thread keeps one pair in
 * thread-local storage and only re-keys it per frame. The header's API has no
 * context argument, and the uplink path runs on one thread (the loop), so this
 * keeps callers simple. A thread that exits frees its pair (pthread key
 * destructor); the main thread's pair lives until the process ends.
 */
#include "lora/lorawan.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "log.h"

#define LW_MIN_PHY 12  /* MHDR 1 + FHDR 7 + MIC 4 */
#define LW_MAX_PHY 255 /* a LoRa PHY payload; B0 carries len(msg) in one byte */
#define LW_BLOCK 16
#define LW_CHUNK_BLOCKS 16 /* keystream blocks encrypted per EVP call */

static const char *const error_names[LW_ERR_COUNT] = {
    [LW_OK] = "ok",
    [LW_ERR_MALFORMED] = "malformed",
    [LW_ERR_NOT_DATA_UP] = "not_data_up",
    [LW_ERR_MAJOR] = "major",
    [LW_ERR_UNKNOWN_DEVICE] = "unknown_device",
    [LW_ERR_BAD_MIC] = "bad_mic",
    [LW_ERR_REPLAY] = "replay",
    [LW_ERR_FCNT_GAP] = "fcnt_gap",
};

const char *lw_error_name(enum lw_error e)
{
    if ((unsigned)e >= LW_ERR_COUNT) {
        return "unknown";
    }
    return error_names[e];
}

/* ---- per-thread crypto contexts ---------------------------------------- */

struct lw_crypto {
    EVP_CIPHER *aes_ecb;
    EVP_CIPHER_CTX *ecb;
    EVP_MAC *mac;
    EVP_MAC_CTX *cmac;
};

static _Thread_local struct lw_crypto *tls_crypto;
static _Thread_local bool crypto_complained;
static pthread_key_t crypto_key;
static bool crypto_key_ok;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

static void crypto_free(void *p)
{
    struct lw_crypto *c = p;

    if (c == NULL) {
        return;
    }
    EVP_MAC_CTX_free(c->cmac);
    EVP_MAC_free(c->mac);
    EVP_CIPHER_CTX_free(c->ecb);
    EVP_CIPHER_free(c->aes_ecb);
    free(c);
}

static void crypto_make_key(void)
{
    crypto_key_ok = pthread_key_create(&crypto_key, crypto_free) == 0;
}

static struct lw_crypto *crypto_get(void)
{
    struct lw_crypto *c;
    char cipher_name[] = "AES-128-CBC";
    OSSL_PARAM params[2];

    if (tls_crypto != NULL) {
        return tls_crypto;
    }
    pthread_once(&crypto_once, crypto_make_key);
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        goto fail;
    }
    /* Fetch and set the algorithms once; per frame only the key changes. */
    c->aes_ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
    c->ecb = EVP_CIPHER_CTX_new();
    if (c->aes_ecb == NULL || c->ecb == NULL ||
        EVP_EncryptInit_ex2(c->ecb, c->aes_ecb, NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(c->ecb, 0) != 1) {
        goto fail;
    }
    c->mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    c->cmac = c->mac != NULL ? EVP_MAC_CTX_new(c->mac) : NULL;
    if (c->cmac == NULL) {
        goto fail;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher_name, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(c->cmac, params) != 1) {
        goto fail;
    }
    if (crypto_key_ok) {
        (void)pthread_setspecific(crypto_key, c);
    }
    tls_crypto = c;
    return c;
fail:
    if (!crypto_complained) { /* once per thread: the next frames would only repeat it */
        crypto_complained = true;
        gw_error("lorawan", "cannot set up AES/CMAC contexts (OpenSSL): frames are rejected");
    }
    crypto_free(c);
    return NULL;
}

/* ---- primitives -------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* B0 (MIC) and Ai (keystream) share one layout: tag | 0x00 x4 | dir | DevAddr | FCnt | 0 | n. */
static void make_block(uint8_t b[LW_BLOCK], uint8_t tag, int dir, uint32_t dev_addr, uint32_t fcnt,
                       uint8_t n)
{
    memset(b, 0, LW_BLOCK);
    b[0] = tag;
    b[5] = dir ? 1 : 0;
    put_le32(b + 6, dev_addr);
    put_le32(b + 10, fcnt);
    b[15] = n;
}

/* MIC = aes128_cmac(key, B0 | msg)[0..3]. 0 or -1 (OpenSSL failure). */
static int mic_raw(const uint8_t key[LW_KEY_LEN], int dir, uint32_t dev_addr, uint32_t fcnt,
                   const uint8_t *msg, size_t msg_len, uint8_t mic[4])
{
    struct lw_crypto *c = crypto_get();
    uint8_t b0[LW_BLOCK];
    uint8_t full[LW_BLOCK];
    size_t out_len = 0;

    if (c == NULL || msg_len > 255) {
        return -1;
    }
    make_block(b0, 0x49, dir, dev_addr, fcnt, (uint8_t)msg_len);
    if (EVP_MAC_init(c->cmac, key, LW_KEY_LEN, NULL) != 1 ||
        EVP_MAC_update(c->cmac, b0, sizeof(b0)) != 1 ||
        EVP_MAC_update(c->cmac, msg, msg_len) != 1 ||
        EVP_MAC_final(c->cmac, full, &out_len, sizeof(full)) != 1 || out_len != sizeof(full)) {
        return -1;
    }
    memcpy(mic, full, 4);
    return 0;
}

/* The frame's direction follows from its MType (uplinks: 0). */
static int frame_dir(const struct lw_frame *f)
{
    return f->mtype == LW_UNCONFIRMED_DOWN || f->mtype == LW_CONFIRMED_DOWN;
}

static int frame_mic(const uint8_t key[LW_KEY_LEN], const struct lw_frame *f, uint32_t fcnt,
                     uint8_t mic[4])
{
    if (f->phy == NULL || f->phy_len < LW_MIN_PHY) {
        return -1;
    }
    return mic_raw(key, frame_dir(f), f->dev_addr, fcnt, f->phy, f->phy_len - 4, mic);
}

void lw_compute_mic(const uint8_t nwk_s_key[LW_KEY_LEN], const struct lw_frame *f, uint32_t fcnt,
                    uint8_t mic[4])
{
    if (frame_mic(nwk_s_key, f, fcnt, mic) != 0) {
        memset(mic, 0, 4);
    }
}

bool lw_verify_mic(const uint8_t nwk_s_key[LW_KEY_LEN], const struct lw_frame *f, uint32_t fcnt)
{
    uint8_t mic[4];

    /* A crypto failure must never pass a frame. */
    if (frame_mic(nwk_s_key, f, fcnt, mic) != 0) {
        return false;
    }
    return CRYPTO_memcmp(mic, f->mic, 4) == 0;
}

static int crypt_raw(const uint8_t key[LW_KEY_LEN], uint32_t dev_addr, uint32_t fcnt, int dir,
                     const uint8_t *in, size_t len, uint8_t *out)
{
    struct lw_crypto *c;
    uint8_t a[LW_CHUNK_BLOCKS * LW_BLOCK];
    uint8_t s[LW_CHUNK_BLOCKS * LW_BLOCK];
    size_t done = 0;
    unsigned i = 1; /* Ai counts from 1; one byte, as the spec has it */

    if (len == 0) {
        return 0;
    }
    c = crypto_get();
    if (c == NULL || EVP_EncryptInit_ex2(c->ecb, NULL, key, NULL, NULL) != 1) {
        return -1;
    }
    while (done < len) {
        size_t n = len - done;
        size_t blocks;
        int s_len = 0;

        if (n > sizeof(s)) {
            n = sizeof(s);
        }
        blocks = (n + LW_BLOCK - 1) / LW_BLOCK;
        for (size_t b = 0; b < blocks; b++, i++) {
            make_block(a + b * LW_BLOCK, 0x01, dir, dev_addr, fcnt, (uint8_t)i);
        }
        if (EVP_EncryptUpdate(c->ecb, s, &s_len, a, (int)(blocks * LW_BLOCK)) != 1 ||
            (size_t)s_len != blocks * LW_BLOCK) {
            return -1;
        }
        /* Byte by byte, so in and out may be the same buffer. */
        for (size_t k = 0; k < n; k++) {
            out[done + k] = in[done + k] ^ s[k];
        }
        done += n;
    }
    return 0;
}

void lw_crypt_payload(const uint8_t key[LW_KEY_LEN], uint32_t dev_addr, uint32_t fcnt, int dir,
                      const uint8_t *in, size_t len, uint8_t *out)
{
    /* On a crypto failure hand back zeros, never the ciphertext as if decrypted. */
    if (crypt_raw(key, dev_addr, fcnt, dir, in, len, out) != 0) {
        memset(out, 0, len);
    }
}

/* ---- frames ------------------------------------------------------------ */

enum lw_error lw_parse(const uint8_t *phy, size_t len, struct lw_frame *out)
{
    uint8_t mhdr;
    size_t pos, end;
    struct lw_frame f;

    if (phy == NULL || len < LW_MIN_PHY || len > LW_MAX_PHY) {
        return LW_ERR_MALFORMED;
    }
    mhdr = phy[0];
    if ((mhdr & 0x03) != 0) {
        return LW_ERR_MAJOR;
    }
    memset(&f, 0, sizeof(f));
    f.mtype = (enum lw_mtype)(mhdr >> 5);
    if (f.mtype != LW_UNCONFIRMED_UP && f.mtype != LW_CONFIRMED_UP) {
        return LW_ERR_NOT_DATA_UP;
    }
    f.dev_addr = get_le32(phy + 1);
    f.fctrl = phy[5];
    f.fcnt16 = (uint16_t)(phy[6] | phy[7] << 8);
    f.fopts_len = f.fctrl & 0x0f;
    end = len - 4; /* the MIC */
    pos = 8;
    if (pos + f.fopts_len > end) {
        return LW_ERR_MALFORMED;
    }
    memcpy(f.fopts, phy + pos, f.fopts_len);
    pos += f.fopts_len;
    /* Anything between FHDR and MIC starts with FPort. */
    if (pos < end) {
        f.has_fport = true;
        f.fport = phy[pos++];
        if (f.fport == 0 && f.fopts_len > 0) {
            return LW_ERR_MALFORMED; /* MAC commands go in FOpts or on port 0, never both */
        }
        f.frm_payload = phy + pos;
        f.frm_len = end - pos;
    }
    memcpy(f.mic, phy + end, 4);
    f.phy = phy;
    f.phy_len = len;
    *out = f;
    return LW_OK;
}

/*
 * The spec's reading: the candidate at or above last + 1. When that one is
 * more than half the 16-bit space ahead, the counter far more likely went
 * back (a replayed frame, a device that restarted its counter) than jumped
 * forward by 32768 or more, so the candidate at or below `last` is returned:
 * lw_check_fcnt then says REPLAY (or accepts it with relax) instead of GAP.
 * Frames that pass the gap check are unaffected: their candidate is within
 * LW_MAX_FCNT_GAP above last.
 */
uint32_t lw_fcnt_full(uint16_t fcnt16, uint32_t last, bool has_last)
{
    uint64_t next, up;

    if (!has_last) {
        return fcnt16;
    }
    next = (uint64_t)last + 1;
    up = (next & ~(uint64_t)0xffff) | fcnt16;
    if (up < next) {
        up += 0x10000;
    }
    if (up >= 0x10000 && (up > UINT32_MAX || up - last > 0x8000)) {
        return (uint32_t)(up - 0x10000);
    }
    return (uint32_t)up;
}

enum lw_error lw_check_fcnt(uint32_t fcnt, uint32_t last, bool has_last, bool relax)
{
    if (!has_last) {
        return LW_OK;
    }
    if (fcnt == last) {
        return LW_ERR_REPLAY; /* the same frame again: never new, even with relax */
    }
    if (fcnt < last) {
        return relax ? LW_OK : LW_ERR_REPLAY;
    }
    if (fcnt - last > LW_MAX_FCNT_GAP) {
        return LW_ERR_FCNT_GAP;
    }
    return LW_OK;
}

int lw_build_uplink(uint8_t *out, size_t out_size, bool confirmed, uint32_t dev_addr, uint32_t fcnt,
                    uint8_t fctrl, const uint8_t *fopts, size_t fopts_len, int fport,
                    const uint8_t *payload, size_t payload_len, const uint8_t nwk_s_key[LW_KEY_LEN],
                    const uint8_t app_s_key[LW_KEY_LEN])
{
    size_t need, pos;
    uint8_t mic[4];

    if (out == NULL || fopts_len > 15 || (fopts_len > 0 && fopts == NULL) || fport > 255 ||
        (payload_len > 0 && (payload == NULL || fport < 0)) || (fport == 0 && fopts_len > 0)) {
        return -1;
    }
    need = LW_MIN_PHY + fopts_len + (fport >= 0 ? 1 + payload_len : 0);
    if (need > LW_MAX_PHY || need > out_size) {
        return -1;
    }
    out[0] = (uint8_t)((confirmed ? LW_CONFIRMED_UP : LW_UNCONFIRMED_UP) << 5);
    put_le32(out + 1, dev_addr);
    out[5] = (uint8_t)((fctrl & 0xf0) | fopts_len); /* FOptsLen is what we write */
    out[6] = (uint8_t)fcnt;
    out[7] = (uint8_t)(fcnt >> 8);
    pos = 8;
    if (fopts_len > 0) {
        memcpy(out + pos, fopts, fopts_len);
        pos += fopts_len;
    }
    if (fport >= 0) {
        out[pos++] = (uint8_t)fport;
        if (crypt_raw(fport == 0 ? nwk_s_key : app_s_key, dev_addr, fcnt, 0, payload, payload_len,
                      out + pos) != 0) {
            return -1;
        }
        pos += payload_len;
    }
    if (mic_raw(nwk_s_key, 0, dev_addr, fcnt, out, pos, mic) != 0) {
        return -1;
    }
    memcpy(out + pos, mic, 4);
    return (int)(pos + 4);
}

/* ---- hex --------------------------------------------------------------- */

static int hex_nibble(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* Exactly 2 * n hex digits into n bytes; out is written only on success. */
static int parse_hex(const char *hex, uint8_t *out, size_t n)
{
    uint8_t tmp[LW_KEY_LEN];

    if (hex == NULL || n > sizeof(tmp) || strlen(hex) != 2 * n) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hex_nibble(hex[2 * i]);
        int lo = hex_nibble(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(tmp, sizeof(tmp));
            return -1;
        }
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(out, tmp, n);
    OPENSSL_cleanse(tmp, sizeof(tmp)); /* it may be a session key */
    return 0;
}

int lw_parse_dev_addr(const char *hex, uint32_t *out)
{
    uint8_t b[4];

    /* Written most significant byte first, as devices' labels print it. */
    if (parse_hex(hex, b, sizeof(b)) != 0) {
        return -1;
    }
    *out = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return 0;
}

int lw_parse_key(const char *hex, uint8_t out[LW_KEY_LEN])
{
    return parse_hex(hex, out, LW_KEY_LEN);
}
