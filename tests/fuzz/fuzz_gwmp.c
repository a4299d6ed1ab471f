/*
 * libFuzzer target for gwmp_parse (scripts/fuzz). Besides memory errors (ASan/UBSan) it checks
 * the properties the driver relies on: the result is a known code, the header is exposed
 * whenever the 4 header bytes are there, the ACK echoes version and token, nothing is left
 * unterminated or oversized, and every valid rxpk survives gwmp_build_push_data -> gwmp_parse
 * unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora/gwmp.h"
#include "lora/lorawan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_gwmp: %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_rxpk(const struct gwmp_rxpk *r)
{
    CHECK(r->size <= GWMP_MAX_PHY);
    CHECK(strnlen(r->time, sizeof(r->time)) < sizeof(r->time));
    CHECK(strnlen(r->modu, sizeof(r->modu)) < sizeof(r->modu));
    CHECK(strnlen(r->datr, sizeof(r->datr)) < sizeof(r->datr));
    CHECK(strnlen(r->codr, sizeof(r->codr)) < sizeof(r->codr));
    if (r->valid) {
        CHECK(r->stat >= -1 && r->stat <= 1);
        CHECK(r->chan >= 0 && r->rfch >= 0);
        CHECK(r->freq >= 0);
    }
}

static void check_same(const struct gwmp_rxpk *a, const struct gwmp_rxpk *b)
{
    CHECK(b->valid);
    CHECK(a->has_time == b->has_time && strcmp(a->time, b->time) == 0);
    CHECK(a->tmst == b->tmst && a->chan == b->chan && a->rfch == b->rfch && a->stat == b->stat);
    CHECK(a->freq == b->freq && a->rssi == b->rssi);
    CHECK(a->has_lsnr == b->has_lsnr && a->lsnr == b->lsnr);
    CHECK(strcmp(a->modu, b->modu) == 0 && strcmp(a->datr, b->datr) == 0);
    CHECK(strcmp(a->codr, b->codr) == 0);
    CHECK(a->size == b->size && memcmp(a->data, b->data, a->size) == 0);
}

/* The rest of the uplink path: LoRaWAN parse, FCnt, MIC and decryption of what the
 * forwarder carried, with a fixed key (the MIC almost never matches: both paths run). */
static void check_lorawan(const uint8_t *phy, size_t len)
{
    static const uint8_t key[LW_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    struct lw_frame f;
    enum lw_error e = lw_parse(phy, len, &f);
    CHECK(e >= LW_OK && e < LW_ERR_COUNT);
    if (e != LW_OK) {
        return;
    }
    CHECK(f.phy == phy && f.phy_len == len);
    CHECK(f.fopts_len <= 15 && f.frm_len <= LW_MAX_PAYLOAD);
    CHECK(f.frm_payload == NULL ||
          (f.frm_payload >= phy && f.frm_payload + f.frm_len <= phy + len));
    uint32_t fcnt = lw_fcnt_full(f.fcnt16, 0x0001fff0u, true);
    CHECK((fcnt & 0xffffu) == f.fcnt16);
    (void)lw_verify_mic(key, &f, fcnt);
    uint8_t plain[LW_MAX_PAYLOAD];
    lw_crypt_payload(key, f.dev_addr, fcnt, 0, f.frm_payload, f.frm_len, plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gwmp_packet p, q;
    static struct gwmp_rxpk valid[GWMP_MAX_RXPK];
    static uint8_t buf[65536];

    enum gwmp_error e = gwmp_parse(data, size, &p);
    CHECK(e >= GWMP_OK && e < GWMP_ERR_COUNT);
    CHECK(strcmp(gwmp_error_name(e), "unknown") != 0);
    CHECK(p.nrxpk >= 0 && p.nrxpk <= GWMP_MAX_RXPK);
    if (size < 4) {
        CHECK(e == GWMP_ERR_SHORT);
        return 0;
    }
    CHECK(p.version == data[0] && p.token == (data[1] << 8 | data[2]));
    CHECK(p.identifier == data[3]);

    uint8_t ack[4];
    int rc = gwmp_ack(&p, ack);
    if ((e == GWMP_OK || e == GWMP_ERR_JSON) &&
        (data[3] == GWMP_PUSH_DATA || data[3] == GWMP_PULL_DATA)) {
        CHECK(rc == 4);
        CHECK(ack[0] == data[0] && ack[1] == data[1] && ack[2] == data[2]);
        CHECK(ack[3] == (data[3] == GWMP_PUSH_DATA ? GWMP_PUSH_ACK : GWMP_PULL_ACK));
    }
    if (e != GWMP_OK || data[3] != GWMP_PUSH_DATA) {
        CHECK(p.nrxpk == 0);
        return 0;
    }

    int n = 0;
    for (int i = 0; i < p.nrxpk; i++) {
        check_rxpk(&p.rxpk[i]);
        if (p.rxpk[i].valid) {
            valid[n++] = p.rxpk[i];
            check_lorawan(p.rxpk[i].data, p.rxpk[i].size);
        }
    }
    int len = gwmp_build_push_data(buf, sizeof(buf), p.version, p.token, p.gateway_eui, valid, n);
    CHECK(len >= 12);
    CHECK(gwmp_parse(buf, (size_t)len, &q) == GWMP_OK);
    CHECK(q.version == p.version && q.token == p.token && q.gateway_eui == p.gateway_eui);
    CHECK(q.nrxpk == n);
    for (int i = 0; i < n; i++) {
        check_same(&valid[i], &q.rxpk[i]);
    }
    return 0;
}
