/*
 * Semtech UDP packet-forwarder protocol (PROTOCOL.TXT of Lora-net/packet_forwarder, v1 and v2).
 *
 * Choices the protocol text leaves open:
 * - The header (version, token, identifier, EUI) is filled in before the JSON is looked at, so
 *   a PUSH_DATA whose JSON is bad (GWMP_ERR_JSON) can still be acknowledged: the forwarder only
 *   uses the PUSH_ACK for its ackr statistic, and an unacknowledged datagram would make the
 *   gateway look offline while it is in fact sending us garbage we want to count.
 * - Bytes after the header of PULL_DATA, PUSH_ACK and PULL_ACK are ignored; the JSON of
 *   PULL_RESP (server -> gateway, only campusgw-sim sees it) is not examined.
 * - Trailing NUL bytes after the JSON are dropped: some forwarders send their C string's
 *   terminator.
 * - Duplicate JSON keys are an error (which "data" would we believe?).
 * - "rxpk" must be an array and "stat" an object when present; an element of "rxpk" that is not
 *   an object, has a field of the wrong type or range, a string too long for its field, no
 *   "data", undecodable base64 or a decoded length other than "size" is kept with valid = false.
 *   Only the first GWMP_MAX_RXPK entries are kept; the rest are ignored (the forwarder never
 *   sends more than 8 per datagram; more is a broken or hostile sender).
 * - A field of "stat" with the wrong type or range is left 0: it is information only.
 * - "datr" is a string for LoRa and a number (bit/s) for FSK; both are stored as text.
 * - "data" is standard base64 (RFC 4648 section 4), padded or not (PROTOCOL.TXT's own
 *   examples are unpadded), no whitespace, no URL-safe alphabet, unused bits zero.
 */
#include "lora/gwmp.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define HEADER_LEN 4
#define EUI_HEADER_LEN 12

const char *gwmp_error_name(enum gwmp_error e)
{
    switch (e) {
    case GWMP_OK:
        return "ok";
    case GWMP_ERR_SHORT:
        return "short";
    case GWMP_ERR_VERSION:
        return "version";
    case GWMP_ERR_IDENTIFIER:
        return "identifier";
    case GWMP_ERR_JSON:
        return "json";
    case GWMP_ERR_COUNT:
        break;
    }
    return "unknown";
}

/* ---- base64 --------------------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

/* Decoded length, or -1 when s is not canonical base64 or decodes to more than cap bytes. */
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    size_t pad = 0;
    if (n >= 4 && n % 4 == 0 && s[n - 1] == '=') {
        pad = s[n - 2] == '=' ? 2 : 1;
    }
    size_t m = n - pad; /* symbols carrying data; a '=' among them fails b64_value */
    if (m % 4 == 1) {
        return -1;
    }
    size_t want = m / 4 * 3 + (m % 4 ? m % 4 - 1 : 0);
    if (want > cap) {
        return -1;
    }
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < m; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) {
        return -1; /* non-zero unused bits: another string decodes to the same bytes */
    }
    return (int)o;
}

/* ---- JSON field helpers: 0 absent, 1 stored, -1 present but wrong -------------------- */

static int get_str(json_t *o, const char *key, char *dst, size_t size)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= size) {
        return -1;
    }
    /* jansson rejects \u0000 by default, so the value has no embedded NUL */
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 1;
}

static int get_int(json_t *o, const char *key, json_int_t min, json_int_t max, json_int_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        return -1;
    }
    *out = json_integer_value(v);
    return 1;
}

static int get_num(json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        return 0;
    }
    if (!json_is_number(v)) {
        return -1;
    }
    *out = json_number_value(v);
    return 1;
}

/* ---- parse ---------------------------------------------------------------------------- */

static void parse_rxpk(json_t *o, struct gwmp_rxpk *r)
{
    memset(r, 0, sizeof(*r));
    if (!json_is_object(o)) {
        return;
    }
    bool ok = true; /* every field is read even after a bad one: the log shows them all */
    json_int_t i = 0;
    int rc;

    rc = get_str(o, "time", r->time, sizeof(r->time));
    r->has_time = rc > 0;
    ok &= rc >= 0;
    rc = get_int(o, "tmst", 0, UINT32_MAX, &i);
    r->tmst = rc > 0 ? (uint32_t)i : 0;
    ok &= rc >= 0;
    rc = get_int(o, "chan", 0, INT_MAX, &i);
    r->chan = rc > 0 ? (int)i : 0;
    ok &= rc >= 0;
    rc = get_int(o, "rfch", 0, INT_MAX, &i);
    r->rfch = rc > 0 ? (int)i : 0;
    ok &= rc >= 0;
    rc = get_int(o, "stat", -1, 1, &i);
    r->stat = rc > 0 ? (int)i : 0;
    ok &= rc >= 0;
    ok &= get_num(o, "freq", &r->freq) >= 0 && r->freq >= 0;
    ok &= get_str(o, "modu", r->modu, sizeof(r->modu)) >= 0;
    ok &= get_str(o, "codr", r->codr, sizeof(r->codr)) >= 0;
    ok &= get_num(o, "rssi", &r->rssi) >= 0;
    rc = get_num(o, "lsnr", &r->lsnr);
    r->has_lsnr = rc > 0;
    ok &= rc >= 0;

    json_t *datr = json_object_get(o, "datr");
    if (json_is_integer(datr) && json_integer_value(datr) >= 0 &&
        json_integer_value(datr) <= UINT32_MAX) {
        snprintf(r->datr, sizeof(r->datr), "%lld", (long long)json_integer_value(datr));
    } else if (datr) {
        ok &= get_str(o, "datr", r->datr, sizeof(r->datr)) > 0;
    }

    json_int_t size = -1;
    ok &= get_int(o, "size", 0, GWMP_MAX_PHY, &size) >= 0;

    json_t *data = json_object_get(o, "data");
    if (!json_is_string(data)) {
        return; /* missing or not a string: invalid */
    }
    int n = b64_decode(json_string_value(data), json_string_length(data), r->data, sizeof(r->data));
    if (n < 0) {
        memset(r->data, 0, sizeof(r->data));
        return;
    }
    r->size = (size_t)n;
    r->valid = ok && (size < 0 || (size_t)size == r->size);
}

static void parse_stat(json_t *o, struct gwmp_stat *s)
{
    memset(s, 0, sizeof(*s));
    s->present = true;
    if (get_str(o, "time", s->time, sizeof(s->time)) < 0) {
        s->time[0] = '\0';
    }
    const char *keys[] = {"rxnb", "rxok", "rxfw", "dwnb", "txnb"};
    uint32_t *dst[] = {&s->rxnb, &s->rxok, &s->rxfw, &s->dwnb, &s->txnb};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        json_int_t v = 0;
        if (get_int(o, keys[k], 0, UINT32_MAX, &v) > 0) {
            *dst[k] = (uint32_t)v;
        }
    }
    if (get_num(o, "ackr", &s->ackr) < 0) {
        s->ackr = 0;
    }
}

/* The JSON after the header: NULL unless it is one object. */
static json_t *load_object(const uint8_t *buf, size_t len)
{
    while (len > 0 && buf[len - 1] == '\0') {
        len--;
    }
    json_error_t err;
    json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &err);
    if (root && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

static enum gwmp_error parse_push_data(const uint8_t *json, size_t len, struct gwmp_packet *out)
{
    json_t *root = load_object(json, len);
    if (!root) {
        return GWMP_ERR_JSON;
    }
    json_t *rxpk = json_object_get(root, "rxpk");
    json_t *stat = json_object_get(root, "stat");
    if ((rxpk && !json_is_array(rxpk)) || (stat && !json_is_object(stat))) {
        json_decref(root);
        return GWMP_ERR_JSON;
    }
    size_t n = json_array_size(rxpk); /* 0 when absent */
    for (size_t i = 0; i < n && i < GWMP_MAX_RXPK; i++) {
        parse_rxpk(json_array_get(rxpk, i), &out->rxpk[i]);
        out->nrxpk++;
    }
    if (stat) {
        parse_stat(stat, &out->stat);
    }
    json_decref(root);
    return GWMP_OK;
}

enum gwmp_error gwmp_parse(const uint8_t *buf, size_t len, struct gwmp_packet *out)
{
    memset(out, 0, sizeof(*out));
    if (!buf || len < HEADER_LEN) {
        return GWMP_ERR_SHORT;
    }
    out->version = buf[0];
    out->token = (uint16_t)(buf[1] << 8 | buf[2]);
    out->identifier = buf[3];
    if (buf[0] != 1 && buf[0] != 2) {
        return GWMP_ERR_VERSION;
    }
    switch (buf[3]) {
    case GWMP_PUSH_ACK:
    case GWMP_PULL_RESP:
    case GWMP_PULL_ACK:
        return GWMP_OK;
    case GWMP_PUSH_DATA:
    case GWMP_PULL_DATA:
    case GWMP_TX_ACK:
        break;
    default:
        return GWMP_ERR_IDENTIFIER;
    }
    if (len < EUI_HEADER_LEN) {
        return GWMP_ERR_SHORT;
    }
    for (int i = 4; i < EUI_HEADER_LEN; i++) {
        out->gateway_eui = out->gateway_eui << 8 | buf[i];
    }
    const uint8_t *json = buf + EUI_HEADER_LEN;
    size_t jlen = len - EUI_HEADER_LEN;
    if (buf[3] == GWMP_PUSH_DATA) {
        return parse_push_data(json, jlen, out);
    }
    if (buf[3] == GWMP_TX_ACK) {
        while (jlen > 0 && json[jlen - 1] == '\0') {
            jlen--;
        }
        if (jlen > 0) { /* {"txpk_ack":{...}} is optional and not kept, but must parse */
            json_t *root = load_object(json, jlen);
            if (!root) {
                return GWMP_ERR_JSON;
            }
            json_decref(root);
        }
    }
    return GWMP_OK;
}

int gwmp_ack(const struct gwmp_packet *p, uint8_t out[4])
{
    uint8_t id;
    if (p->identifier == GWMP_PUSH_DATA) {
        id = GWMP_PUSH_ACK;
    } else if (p->identifier == GWMP_PULL_DATA) {
        id = GWMP_PULL_ACK;
    } else {
        return -EINVAL; /* TX_ACK and the server's own packets get no reply */
    }
    out[0] = p->version;
    out[1] = (uint8_t)(p->token >> 8);
    out[2] = (uint8_t)(p->token & 0xff);
    out[3] = id;
    return 4;
}

/* ---- build ---------------------------------------------------------------------------- */

/* Appends to a fixed buffer; never writes past size and remembers that it ran out. */
struct writer {
    uint8_t *buf;
    size_t size, len;
    bool full;
};

static void put(struct writer *w, const void *p, size_t n)
{
    if (w->full || n > w->size - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void puts_(struct writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static void putf(struct writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct writer *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        w->full = true;
        return;
    }
    put(w, tmp, (size_t)n);
}

/* "key": <the shortest text that reads back as exactly v>; -1 for NaN and infinities. */
static int put_double(struct writer *w, const char *key, double v)
{
    if (!isfinite(v)) {
        return -1;
    }
    char tmp[40];
    if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) { /* range first: no UB cast */
        /* Whole numbers as forwarders write them ("-90", not "-9e+01"). */
        snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
            if (strtod(tmp, NULL) == v) {
                break;
            }
        }
    }
    putf(w, ",\"%s\":%s", key, tmp);
    return 0;
}

/* ,"key":"value" with JSON escapes; -1 when value is not terminated within size. */
static int put_string(struct writer *w, const char *key, const char *value, size_t size)
{
    size_t n = strnlen(value, size);
    if (n == size) {
        return -1;
    }
    putf(w, ",\"%s\":\"", key);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '"' || c == '\\') {
            putf(w, "\\%c", c);
        } else if (c < 0x20) {
            putf(w, "\\u%04x", c);
        } else {
            put(w, &c, 1);
        }
    }
    puts_(w, "\"");
    return 0;
}

/* FSK's datr goes out as a number, as the forwarder sends it, when it is one canonically. */
static bool datr_is_number(const struct gwmp_rxpk *r)
{
    size_t n = strnlen(r->datr, sizeof(r->datr));
    if (strcmp(r->modu, "FSK") != 0 || n == 0 || n > 10 || (r->datr[0] == '0' && n > 1)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (r->datr[i] < '0' || r->datr[i] > '9') {
            return false;
        }
    }
    return strtoull(r->datr, NULL, 10) <= UINT32_MAX;
}

static int put_rxpk(struct writer *w, const struct gwmp_rxpk *r)
{
    if (r->size > GWMP_MAX_PHY || r->stat < -1 || r->stat > 1 || r->chan < 0 || r->rfch < 0 ||
        strnlen(r->modu, sizeof(r->modu)) == sizeof(r->modu)) {
        return -1;
    }
    /* the same field order as lora_pkt_fwd; the leading comma keeps every put alike */
    putf(w, "{\"tmst\":%u", (unsigned)r->tmst);
    if (r->has_time && put_string(w, "time", r->time, sizeof(r->time)) < 0) {
        return -1;
    }
    putf(w, ",\"chan\":%d,\"rfch\":%d", r->chan, r->rfch);
    if (put_double(w, "freq", r->freq) < 0) {
        return -1;
    }
    putf(w, ",\"stat\":%d", r->stat);
    if (r->modu[0] && put_string(w, "modu", r->modu, sizeof(r->modu)) < 0) {
        return -1;
    }
    if (datr_is_number(r)) {
        putf(w, ",\"datr\":%s", r->datr);
    } else if (r->datr[0] && put_string(w, "datr", r->datr, sizeof(r->datr)) < 0) {
        return -1;
    }
    if (r->codr[0] && put_string(w, "codr", r->codr, sizeof(r->codr)) < 0) {
        return -1;
    }
    if (put_double(w, "rssi", r->rssi) < 0) {
        return -1;
    }
    if (r->has_lsnr && put_double(w, "lsnr", r->lsnr) < 0) {
        return -1;
    }
    putf(w, ",\"size\":%zu,\"data\":\"", r->size);
    for (size_t i = 0; i < r->size; i += 3) {
        uint32_t v = (uint32_t)r->data[i] << 16;
        size_t left = r->size - i;
        if (left > 1) {
            v |= (uint32_t)r->data[i + 1] << 8;
        }
        if (left > 2) {
            v |= r->data[i + 2];
        }
        char q[4] = {b64_alphabet[v >> 18 & 63], b64_alphabet[v >> 12 & 63],
                     left > 1 ? b64_alphabet[v >> 6 & 63] : '=',
                     left > 2 ? b64_alphabet[v & 63] : '='};
        put(w, q, sizeof(q));
    }
    puts_(w, "\"}");
    return 0;
}

int gwmp_build_push_data(uint8_t *out, size_t out_size, uint8_t version, uint16_t token,
                         uint64_t gateway_eui, const struct gwmp_rxpk *rxpk, int n)
{
    if (!out || (version != 1 && version != 2) || n < 0 || (n > 0 && !rxpk)) {
        return -1;
    }
    struct writer w = {.buf = out, .size = out_size > INT_MAX ? INT_MAX : out_size};
    uint8_t head[EUI_HEADER_LEN] = {version, (uint8_t)(token >> 8), (uint8_t)token, GWMP_PUSH_DATA};
    for (int i = 0; i < 8; i++) {
        head[4 + i] = (uint8_t)(gateway_eui >> (56 - 8 * i));
    }
    put(&w, head, sizeof(head));
    puts_(&w, "{\"rxpk\":[");
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            puts_(&w, ",");
        }
        if (put_rxpk(&w, &rxpk[i]) < 0) {
            return -1;
        }
    }
    puts_(&w, "]}");
    return w.full ? -1 : (int)w.len;
}
