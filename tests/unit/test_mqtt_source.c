/*
 * sensors/mqtt: topic filters, JSON paths and value conversion, base64,
 * ChirpStack v4 uplink events, and the router on configs loaded
 * from text (JSON sensors, ChirpStack object / data, shared wildcards,
 * dev_eui matching, garbage and hostile payloads).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mqtt/mqtt_source.h"
#include "mqtt/mqtt_topic.h"

#define assert_near(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-9)

/* ---- topic filters ------------------------------------------------------ */

static void test_filter_problem(void **state)
{
    (void)state;
    static const struct {
        const char *filter;
        const char *problem; /* NULL: fine */
        bool wildcard;
    } cases[] = {
        {"a/b", NULL, false},
        {"zigbee2mqtt/door 3", NULL, false}, /* spaces are legal in topics */
        {"/", NULL, false},
        {"a//b", NULL, false},
        {"application/+/device/+/event/up", NULL, true},
        {"+", NULL, true},
        {"#", NULL, true},
        {"a/#", NULL, true},
        {"+/+/#", NULL, true},
        {"", "is empty", false},
        {"a/b+", "has a wildcard (+ or #) that is not a whole level", true},
        {"a/+b", "has a wildcard (+ or #) that is not a whole level", true},
        {"a#", "has a wildcard (+ or #) that is not a whole level", true},
        {"a/#/b", "has # before its last level", true},
        {"#/", "has # before its last level", true},
        {"a/\tb", "holds a control character", false},
        {"a/\x7f", "holds a control character", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool wild = !cases[i].wildcard;
        const char *got = gw_mqtt_filter_problem(cases[i].filter, &wild);
        if (cases[i].problem) {
            assert_non_null(got);
            assert_string_equal(got, cases[i].problem);
        } else {
            if (got) {
                print_error("case %zu: %s\n", i, got);
            }
            assert_null(got);
            assert_int_equal(wild, cases[i].wildcard);
        }
    }
    char longest[GW_MQTT_TOPIC_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    longest[GW_MQTT_TOPIC_MAX] = '\0';
    bool wild;
    assert_null(gw_mqtt_filter_problem(longest, &wild));
    longest[GW_MQTT_TOPIC_MAX] = 'a';
    longest[GW_MQTT_TOPIC_MAX + 1] = '\0';
    assert_string_equal(gw_mqtt_filter_problem(longest, &wild), "is longer than 512 bytes");
}

static void test_topic_matches(void **state)
{
    (void)state;
    static const struct {
        const char *filter, *topic;
        bool match;
    } cases[] = {
        {"a/b", "a/b", true},
        {"a/b", "a/c", false},
        {"a/b", "a/b/c", false},
        {"a/b/c", "a/b", false},
        {"a/b", "a/bc", false},
        {"a/bc", "a/b", false},
        {"a/b", "A/b", false}, /* case matters */
        {"+", "a", true},
        {"+", "a/b", false},
        {"+", "", true},
        {"+/+", "/x", true},
        {"+/+", "x/", true},
        {"a/+", "a/", true},
        {"a/+/c", "a/b/c", true},
        {"a/+/c", "a/b/d", false},
        {"a/+/c", "a//c", true},
        {"#", "a/b/c", true},
        {"#", "/", true},
        {"a/#", "a", true}, /* the parent level too */
        {"a/#", "a/b/c", true},
        {"a/#", "ab", false},
        {"a/#", "b/a", false},
        {"application/+/device/+/event/up", "application/7/device/0004a30b001c0530/event/up", true},
        {"application/+/device/+/event/up", "application/7/device/0004a30b001c0530/event/join",
         false},
        {"application/+/device/+/event/up", "application/7/device/x/event/up/more", false},
        {"#", "$SYS/broker/uptime", false}, /* wildcards never match $ topics at level 1 */
        {"+/broker/uptime", "$SYS/broker/uptime", false},
        {"$SYS/#", "$SYS/broker/uptime", true},
        {"", "a", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (gw_mqtt_topic_matches(cases[i].filter, cases[i].topic) != cases[i].match) {
            print_error("case %zu: %s vs %s\n", i, cases[i].filter, cases[i].topic);
        }
        assert_int_equal(gw_mqtt_topic_matches(cases[i].filter, cases[i].topic), cases[i].match);
    }
    assert_false(gw_mqtt_topic_matches(NULL, "a"));
    assert_false(gw_mqtt_topic_matches("a", NULL));
}

/* ---- JSON paths and values ------------------------------------------------ */

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY, &e);
    if (!j) {
        fail_msg("bad fixture %s: %s", text, e.text);
    }
    return j;
}

static void test_json_path(void **state)
{
    (void)state;
    json_t *root = parse("{\"contact\":true,\"sensors\":{\"t\":21.5,\"deep\":{\"x\":\"y\"}},"
                         "\"list\":[{\"name\":\"first\"},{\"name\":\"second\"}],"
                         "\"0\":\"key zero\",\"n\":null,\"s\":\"str\"}");
    assert_true(json_is_true(gw_json_path_get(root, "contact")));
    assert_near(json_number_value(gw_json_path_get(root, "sensors.t")), 21.5);
    assert_string_equal(json_string_value(gw_json_path_get(root, "sensors.deep.x")), "y");
    assert_string_equal(json_string_value(gw_json_path_get(root, "list.1.name")), "second");
    assert_string_equal(json_string_value(gw_json_path_get(root, "0")), "key zero");
    assert_true(json_is_null(gw_json_path_get(root, "n")));
    assert_true(json_is_object(gw_json_path_get(root, "sensors")));
    /* absent */
    assert_null(gw_json_path_get(root, "missing"));
    assert_null(gw_json_path_get(root, "sensors.missing"));
    assert_null(gw_json_path_get(root, "sensors.t.below")); /* through a number */
    assert_null(gw_json_path_get(root, "s.x"));             /* through a string */
    assert_null(gw_json_path_get(root, "n.x"));             /* through null */
    assert_null(gw_json_path_get(root, "list.2.name"));     /* index out of range */
    assert_null(gw_json_path_get(root, "list.name"));       /* a key on an array */
    assert_null(gw_json_path_get(root, "list.-1"));
    assert_null(gw_json_path_get(root, "list.1x"));
    assert_null(gw_json_path_get(root, "list.9999999999")); /* too many digits */
    assert_null(gw_json_path_get(root, "list."));
    assert_null(gw_json_path_get(NULL, "a"));
    assert_null(gw_json_path_get(root, NULL));
    char longkey[400];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_null(gw_json_path_get(root, longkey));
    json_decref(root);
}

struct conv_case {
    enum gw_json_type type;
    double scale, offset;
    int nenum;
    const char *json; /* NULL: the node is absent */
    enum gw_value_type want_type;
    double want_num;
    const char *want_str;
};

static void test_json_convert(void **state)
{
    (void)state;
    char *labels[] = {"open", "closed", "locked"};
    const struct conv_case cases[] = {
        /* any: what the payload holds */
        {GW_JSON_ANY, 1, 0, 0, "21.5", GW_VALUE_NUMBER, 21.5, NULL},
        {GW_JSON_ANY, 1, 0, 0, "-3", GW_VALUE_NUMBER, -3, NULL},
        {GW_JSON_ANY, 1, 0, 0, "true", GW_VALUE_BOOL, 1, NULL},
        {GW_JSON_ANY, 1, 0, 0, "false", GW_VALUE_BOOL, 0, NULL},
        {GW_JSON_ANY, 1, 0, 0, "\"ON\"", GW_VALUE_STRING, 0, "ON"},
        {GW_JSON_ANY, 1, 0, 0, "\"0123456789012345678901234567890\"", GW_VALUE_STRING, 0,
         "0123456789012345678901234567890"},
        {GW_JSON_ANY, 1, 0, 0, "\"01234567890123456789012345678901\"", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 0, 0, "null", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 0, 0, "{}", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 0, 0, "[1]", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 0, 0, NULL, GW_VALUE_NONE, 0, NULL},
        /* any with scale/offset: numbers only */
        {GW_JSON_ANY, 0.1, -40, 0, "650", GW_VALUE_NUMBER, 25, NULL},
        {GW_JSON_ANY, 2, 0, 0, "true", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 1, 0, "\"5\"", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 10, 0, 0, "1e308", GW_VALUE_NONE, 0, NULL}, /* overflows to inf */
        /* number: also a numeric string */
        {GW_JSON_NUMBER, 1, 0, 0, "7", GW_VALUE_NUMBER, 7, NULL},
        {GW_JSON_NUMBER, 1, 0, 0, "\"21.5\"", GW_VALUE_NUMBER, 21.5, NULL},
        {GW_JSON_NUMBER, 2, 1, 0, "\"-2\"", GW_VALUE_NUMBER, -3, NULL},
        {GW_JSON_NUMBER, 1, 0, 0, "\"21.5 \"", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_NUMBER, 1, 0, 0, "\"\"", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_NUMBER, 1, 0, 0, "\"abc\"", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_NUMBER, 1, 0, 0, "\"1e999\"", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_NUMBER, 1, 0, 0, "\"nan\"", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_NUMBER, 1, 0, 0, "true", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_NUMBER, 1, 0, 0, "{\"v\":1}", GW_VALUE_NONE, 0, NULL},
        /* bool: true/false, 0/1, and the usual words */
        {GW_JSON_BOOL, 1, 0, 0, "true", GW_VALUE_BOOL, 1, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "0", GW_VALUE_BOOL, 0, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "1", GW_VALUE_BOOL, 1, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "2", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "0.5", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "\"ON\"", GW_VALUE_BOOL, 1, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "\"off\"", GW_VALUE_BOOL, 0, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "\"Yes\"", GW_VALUE_BOOL, 1, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "\"false\"", GW_VALUE_BOOL, 0, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "\"1\"", GW_VALUE_BOOL, 1, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "\"maybe\"", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_BOOL, 1, 0, 0, "null", GW_VALUE_NONE, 0, NULL},
        /* string: strings only */
        {GW_JSON_STRING, 1, 0, 0, "\"idle\"", GW_VALUE_STRING, 0, "idle"},
        {GW_JSON_STRING, 1, 0, 0, "\"\"", GW_VALUE_STRING, 0, ""},
        {GW_JSON_STRING, 1, 0, 0, "12", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_STRING, 1, 0, 0, "false", GW_VALUE_NONE, 0, NULL},
        /* enum: index, false/true as 0/1, or a label */
        {GW_JSON_ANY, 1, 0, 3, "false", GW_VALUE_STRING, 0, "open"},
        {GW_JSON_ANY, 1, 0, 3, "true", GW_VALUE_STRING, 0, "closed"},
        {GW_JSON_ANY, 1, 0, 3, "2", GW_VALUE_STRING, 0, "locked"},
        {GW_JSON_ANY, 1, 0, 3, "3", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 0, 3, "-1", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 0, 3, "1.5", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 0, 3, "\"closed\"", GW_VALUE_STRING, 0, "closed"},
        {GW_JSON_ANY, 1, 0, 3, "\"CLOSED\"", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 0, 3, "null", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 0, 3, "[0]", GW_VALUE_NONE, 0, NULL},
        {GW_JSON_ANY, 1, 0, 1, "true", GW_VALUE_NONE, 0, NULL}, /* only "open": no index 1 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct conv_case *c = &cases[i];
        struct gw_json_value_cfg v = {.name = "v",
                                      .path = "v",
                                      .type = c->type,
                                      .scale = c->scale,
                                      .offset = c->offset,
                                      .nenum = c->nenum,
                                      .enum_labels = c->nenum ? labels : NULL};
        json_t *node = c->json ? parse(c->json) : NULL;
        struct gw_value out;
        enum gw_point_fault f = gw_json_convert(&v, node, &out);
        json_decref(node);
        if (out.type != c->want_type) {
            print_error("case %zu (%s): type %d, want %d\n", i, c->json ? c->json : "absent",
                        out.type, c->want_type);
        }
        assert_int_equal(out.type, c->want_type);
        assert_int_equal(f, c->want_type == GW_VALUE_NONE ? GW_FAULT_INVALID : GW_FAULT_NONE);
        if (c->want_type == GW_VALUE_NUMBER) {
            assert_near(out.num, c->want_num);
        } else if (c->want_type == GW_VALUE_BOOL) {
            assert_int_equal(out.b, c->want_num != 0);
            assert_near(out.num, c->want_num);
        } else if (c->want_type == GW_VALUE_STRING) {
            assert_string_equal(out.str, c->want_str);
        }
    }
    struct gw_value out;
    assert_int_equal(gw_json_convert(NULL, NULL, &out), GW_FAULT_INVALID);
}

static void test_json_extract(void **state)
{
    (void)state;
    char *labels[] = {"open", "closed"};
    struct gw_json_value_cfg values[] = {
        {.name = "state", .path = "contact", .scale = 1, .nenum = 2, .enum_labels = labels},
        {.name = "battery", .path = "battery", .scale = 1, .type = GW_JSON_NUMBER},
        {.name = "temp", .path = "sensors.t", .scale = 1},
        {.name = "gone", .path = "not.there", .scale = 1},
        {.name = "tamper", .path = "tamper", .scale = 1, .type = GW_JSON_BOOL},
    };
    json_t *root = parse("{\"contact\":false,\"battery\":\"87\",\"sensors\":{\"t\":21.5},"
                         "\"tamper\":\"maybe\",\"linkquality\":120}");
    struct gw_reading r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(gw_json_extract(values, 5, root, &r), 0);
    assert_int_equal(r.npoints, 5);
    assert_string_equal(r.points[0].name, "state");
    assert_int_equal(r.points[0].fault, GW_FAULT_NONE);
    assert_string_equal(r.points[0].value.str, "open");
    assert_string_equal(r.points[1].name, "battery");
    assert_near(r.points[1].value.num, 87);
    assert_near(r.points[2].value.num, 21.5);
    assert_string_equal(r.points[3].name, "gone");
    assert_int_equal(r.points[3].fault, GW_FAULT_INVALID);
    assert_int_equal(r.points[3].value.type, GW_VALUE_NONE);
    assert_int_equal(r.points[4].fault, GW_FAULT_INVALID);
    assert_int_equal(r.points[4].value.type, GW_VALUE_NONE);

    /* a full reading takes no more */
    r.npoints = GW_MAX_POINTS - 1;
    assert_int_equal(gw_json_extract(values, 2, root, &r), -E2BIG);
    assert_int_equal(r.npoints, GW_MAX_POINTS);
    json_decref(root);
}

/* ---- base64 --------------------------------------------------------------- */

static void test_base64(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } good[] = {
        {"", ""},
        {"Zg==", "f"},
        {"Zm8=", "fo"},
        {"Zm9v", "foo"},
        {"Zm9vYg==", "foob"},
        {"Zm9vYmE=", "fooba"},
        {"Zm9vYmFy", "foobar"},
        {"Zg", "f"}, /* unpadded */
        {"Zm8", "fo"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint8_t buf[16];
        size_t n = 99;
        assert_int_equal(gw_base64_decode(good[i].in, buf, sizeof(buf), &n), 0);
        assert_int_equal(n, strlen(good[i].out));
        assert_memory_equal(buf, good[i].out, n);
    }
    uint8_t buf[8];
    size_t n;
    assert_int_equal(gw_base64_decode("AQID/+7/", buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 6);
    static const uint8_t want[] = {1, 2, 3, 0xff, 0xee, 0xff};
    assert_memory_equal(buf, want, 6);
    static const char *const bad[] = {"Z",     "Zg===",  "Zg=",  "Z===", "Zg==Zg==", "Zm9v!",
                                      "Zm 9v", "Zm9v\n", "Zm-_", "====", "Zg=a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gw_base64_decode(bad[i], buf, sizeof(buf), &n) != -EINVAL) {
            print_error("bad case %zu: %s\n", i, bad[i]);
        }
        assert_int_equal(gw_base64_decode(bad[i], buf, sizeof(buf), &n), -EINVAL);
    }
    /* exactly the room there is, and one byte more */
    assert_int_equal(gw_base64_decode("AAAAAAAAAAA=", buf, 8, &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(gw_base64_decode("AAAAAAAAAAAA", buf, 8, &n), -E2BIG);
}

/* ---- ChirpStack v4 uplink events ------------------------------------------- */

/* A v4 uplink event as the MQTT integration publishes it (JSON encoding). */
#define CS_EVENT(extra)                                                                            \
    "{\"deduplicationId\":\"3ac7e3c4-4401-4b8d-9386-a5c902f9202d\","                               \
    "\"time\":\"2024-03-01T08:15:30.123Z\","                                                       \
    "\"deviceInfo\":{\"tenantId\":\"52f14cd4-c6f1-4fbd-8f87-4025e1d49242\","                       \
    "\"tenantName\":\"ChirpStack\",\"applicationId\":\"17c82e96-be03-4f38-aef3-f83d48582d97\","    \
    "\"applicationName\":\"school\",\"deviceProfileName\":\"door\",\"deviceName\":\"door-4\","     \
    "\"devEui\":\"0004A30B001C0530\",\"tags\":{}},"                                                \
    "\"devAddr\":\"00189440\",\"adr\":true,\"dr\":1,\"fCnt\":10,\"fPort\":2,"                      \
    "\"confirmed\":false,\"data\":\"AQI=\",\"object\":{\"contact\":true,\"battery\":91},"          \
    "\"rxInfo\":[{\"gatewayId\":\"0016c001f153a14c\",\"rssi\":-97,\"snr\":4.5},"                   \
    "{\"gatewayId\":\"0016c001f153a14d\",\"rssi\":-60,\"snr\":-2.0},"                              \
    "{\"gatewayId\":\"0016c001f153a14e\",\"rssi\":-110,\"snr\":9.25},"                             \
    "\"not an object\",{\"gatewayId\":\"x\",\"rssi\":\"-1\"}],"                                    \
    "\"txInfo\":{\"frequency\":868100000,\"modulation\":{\"lora\":{\"bandwidth\":125000,"          \
    "\"spreadingFactor\":11,\"codeRate\":\"CR_4_5\"}}}" extra "}"

#define NOT_V4                                                                                     \
    "no deviceInfo.devEui: not a ChirpStack v4 uplink event (the MQTT integration must send "      \
    "JSON, not Protobuf)"

static void test_chirpstack_parse(void **state)
{
    (void)state;
    json_t *root = parse(CS_EVENT(""));
    struct gw_chirpstack_up up;
    char err[GW_ERR_MAX];
    assert_int_equal(gw_chirpstack_parse_up(root, &up, err, sizeof(err)), 0);
    assert_string_equal(up.dev_eui, "0004a30b001c0530");
    assert_int_equal(up.fport, 2);
    assert_true(up.has_fcnt);
    assert_int_equal(up.fcnt, 10);
    assert_true(up.has_time);
    assert_int_equal(up.time_ms, 1709280930123);
    assert_int_equal(up.gateways, 4); /* the string entry is skipped */
    assert_true(up.has_rssi);
    assert_near(up.rssi, -60); /* the best of each, not of one gateway */
    assert_true(up.has_snr);
    assert_near(up.snr, 9.25);
    assert_true(up.has_data);
    assert_int_equal(up.data_len, 2);
    assert_int_equal(up.data[0], 1);
    assert_int_equal(up.data[1], 2);
    assert_non_null(up.object);
    assert_true(json_is_true(json_object_get(up.object, "contact")));
    json_decref(root);

    /* the minimum: a devEui; everything else optional */
    root = parse("{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"}}");
    assert_int_equal(gw_chirpstack_parse_up(root, &up, err, sizeof(err)), 0);
    assert_int_equal(up.fport, -1);
    assert_false(up.has_fcnt);
    assert_false(up.has_time);
    assert_false(up.has_rssi);
    assert_false(up.has_snr);
    assert_false(up.has_data);
    assert_int_equal(up.gateways, 0);
    assert_null(up.object);
    json_decref(root);

    /* tolerated oddities: null fields, an empty data, a bad time, a non-object object */
    root = parse("{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"fPort\":null,"
                 "\"fCnt\":null,\"data\":\"\",\"time\":\"yesterday\",\"object\":[1],"
                 "\"rxInfo\":{\"rssi\":-1}}");
    assert_int_equal(gw_chirpstack_parse_up(root, &up, err, sizeof(err)), 0);
    assert_false(up.has_data);
    assert_false(up.has_time);
    assert_null(up.object);
    assert_int_equal(up.gateways, 0);
    json_decref(root);

    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{}", NOT_V4},
        {"{\"deviceInfo\":{\"devEui\":16}}", NOT_V4},
        {"{\"deviceInfo\":\"x\"}", NOT_V4},
        {"{\"devEUI\":\"AASjCwAcBTA=\",\"fPort\":2}", NOT_V4}, /* a v3 event */
        {"{\"deviceInfo\":{\"devEui\":\"0004a30b001c053\"}}",
         "deviceInfo.devEui \"0004a30b001c053\" is not 16 hex digits"},
        {"{\"deviceInfo\":{\"devEui\":\"0004a30b001c053z\"}}",
         "deviceInfo.devEui \"0004a30b001c053z\" is not 16 hex digits"},
        {"{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"fPort\":256}",
         "fPort is not an integer 0..255"},
        {"{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"fPort\":\"2\"}",
         "fPort is not an integer 0..255"},
        {"{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"fPort\":1.5}",
         "fPort is not an integer 0..255"},
        {"{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"fCnt\":-1}",
         "fCnt is not an integer 0..4294967295"},
        {"{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"fCnt\":4294967296}",
         "fCnt is not an integer 0..4294967295"},
        {"{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"data\":[1,2]}",
         "data is not a base64 string"},
        {"{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"data\":\"AQ!=\"}",
         "data is not valid base64"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        root = parse(bad[i].json);
        err[0] = '\0';
        assert_int_equal(gw_chirpstack_parse_up(root, &up, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, bad[i].err);
        json_decref(root);
    }
    /* data longer than any LoRaWAN payload: 300 bytes of zeros */
    char big[600] = "{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"data\":\"";
    size_t l = strlen(big);
    memset(big + l, 'A', 400);
    strcpy(big + l + 400, "\"}");
    root = parse(big);
    assert_int_equal(gw_chirpstack_parse_up(root, &up, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "data is longer than a LoRaWAN payload (242 bytes)");
    json_decref(root);
}

static void test_chirpstack_other_event(void **state)
{
    (void)state;
    assert_false(gw_chirpstack_other_event("application/1/device/0004a30b001c0530/event/up"));
    assert_false(gw_chirpstack_other_event("custom/uplinks"));
    assert_false(gw_chirpstack_other_event("up"));
    static const char *const others[] = {"join",   "ack",      "txack",      "log",
                                         "status", "location", "integration"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        char topic[128];
        snprintf(topic, sizeof(topic), "application/1/device/0004a30b001c0530/event/%s", others[i]);
        assert_true(gw_chirpstack_other_event(topic));
    }
}

/* ---- the router -------------------------------------------------------------- */

#define NOW_MS 1709280935000 /* 4.877 s after the events' time */

static const char router_cfg[] =
    "site = { district = \"d1\"; school = \"s1\"; name = \"T\"; };\n"
    "state_dir = \"/tmp/x\";\n"
    "profiles = {\n"
    "  z2m = { codec = \"json\"; values = (\n"
    "    { name = \"state\"; path = \"contact\"; enum = [ \"open\", \"closed\" ]; },\n"
    "    { name = \"battery\"; path = \"battery\"; type = \"number\"; },\n"
    "    { name = \"temp\"; path = \"sensors.t\"; scale = 0.1; } ); };\n"
    "  smoke_x = { codec = \"layout\"; fields = (\n"
    "    { name = \"smoke\"; byte = 0; bit = 0; type = \"bool\"; },\n"
    "    { name = \"battery\"; byte = 1; type = \"u8\"; } ); };\n"
    "  lpp = { codec = \"cayenne_lpp\"; };\n"
    "};\n"
    "sensors = (\n"
    "  { id = \"door-3\"; kind = \"door\"; profile = \"z2m\"; expect_every_s = 60;\n"
    "    mqtt = { topic = \"zigbee2mqtt/door-3\"; }; },\n"
    "  { id = \"door-4\"; kind = \"door\"; profile = \"z2m\"; expect_every_s = 60;\n"
    "    mqtt = { topic = \"application/+/device/+/event/up\"; format = \"chirpstack\"; "
    "dev_eui = \"0004A30B001C0530\"; }; },\n"
    "  { id = \"smoke-1\"; kind = \"smoke\"; profile = \"smoke_x\"; expect_every_s = 60;\n"
    "    mqtt = { topic = \"application/+/device/+/event/up\"; format = \"chirpstack\"; "
    "dev_eui = \"0004a30b001c0531\"; }; },\n"
    "  { id = \"smoke-2\"; kind = \"smoke\"; profile = \"smoke_x\"; expect_every_s = 60;\n"
    "    mqtt = { topic = \"application/7/device/0004a30b001c0532/event/up\"; format = "
    "\"chirpstack\"; }; },\n"
    "  { id = \"smoke-3\"; kind = \"smoke\"; profile = \"smoke_x\"; expect_every_s = 60;\n"
    "    mqtt = { topic = \"application/8/device/0004a30b001c0533/event/up\"; format = "
    "\"chirpstack\"; dev_eui = \"0004a30b001c0533\"; }; },\n"
    "  { id = \"lpp-1\"; kind = \"climate\"; profile = \"lpp\"; expect_every_s = 60;\n"
    "    mqtt = { topic = \"application/+/device/+/event/up\"; format = \"chirpstack\"; "
    "dev_eui = \"0004a30b001c0534\"; }; }\n"
    ");\n";

struct captured {
    int nreadings;
    struct gw_reading readings[8];
    int sources[8];
    int nrejected;
    int reject_source, reject_filter;
    char reject_topic[256];
    char reject_why[GW_ERR_MAX];
};

static void on_reading(void *ctx, int source, const struct gw_reading *r)
{
    struct captured *c = ctx;
    assert_true(c->nreadings < 8);
    c->sources[c->nreadings] = source;
    c->readings[c->nreadings++] = *r;
}

static void on_rejected(void *ctx, int source, int filter, const char *topic, const char *why)
{
    struct captured *c = ctx;
    c->nrejected++;
    c->reject_source = source;
    c->reject_filter = filter;
    snprintf(c->reject_topic, sizeof(c->reject_topic), "%s", topic);
    snprintf(c->reject_why, sizeof(c->reject_why), "%s", why);
}

struct fixture {
    char path[64];
    struct gw_config *cfg;
    struct gw_mqtt_router *router;
};

static int setup_router(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->path, sizeof(fx->path), "/tmp/gw-test-mqtt-XXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, router_cfg, strlen(router_cfg)), (ssize_t)strlen(router_cfg));
    close(fd);
    char *msgs = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&msgs, &len);
    fx->cfg = gw_config_load(fx->path, f);
    fclose(f);
    if (!fx->cfg) {
        fail_msg("config: %s", msgs);
    }
    assert_string_equal(msgs, "");
    free(msgs);
    char err[256];
    fx->router = gw_mqtt_router_new(fx->cfg, err, sizeof(err));
    assert_non_null(fx->router);
    *state = fx;
    return 0;
}

static int teardown_router(void **state)
{
    struct fixture *fx = *state;
    gw_mqtt_router_free(fx->router);
    gw_config_free(fx->cfg);
    unlink(fx->path);
    free(fx);
    return 0;
}

/* One message through the router; the result, with what the handler saw in c. */
static struct gw_mqtt_result handle(struct fixture *fx, const char *topic, const char *payload,
                                    struct captured *c)
{
    memset(c, 0, sizeof(*c));
    c->reject_source = -2;
    struct gw_mqtt_handler h = {.reading = on_reading, .rejected = on_rejected, .ctx = c};
    struct gw_mqtt_result res;
    gw_mqtt_router_handle(fx->router, topic, payload, payload ? strlen(payload) : 0, NOW_MS, &h,
                          &res);
    assert_int_equal(res.readings, c->nreadings);
    assert_int_equal(res.rejected, c->nrejected);
    assert_int_equal(res.ignored, c->nreadings == 0 && c->nrejected == 0);
    return res;
}

static const struct gw_point_value *point(const struct gw_reading *r, const char *name)
{
    for (int i = 0; i < r->npoints; i++) {
        if (strcmp(r->points[i].name, name) == 0) {
            return &r->points[i];
        }
    }
    fail_msg("no point %s", name);
    return NULL;
}

static void test_router_subscriptions(void **state)
{
    struct fixture *fx = *state;
    /* one subscription per distinct filter: the wildcard is shared by three sensors */
    assert_int_equal(gw_mqtt_router_nsources(fx->router), 6);
    assert_int_equal(gw_mqtt_router_nfilters(fx->router), 4);
    assert_string_equal(gw_mqtt_router_filter(fx->router, 0), "zigbee2mqtt/door-3");
    assert_string_equal(gw_mqtt_router_filter(fx->router, 1), "application/+/device/+/event/up");
    assert_string_equal(gw_mqtt_router_filter(fx->router, 2),
                        "application/7/device/0004a30b001c0532/event/up");
    assert_string_equal(gw_mqtt_router_filter(fx->router, 3),
                        "application/8/device/0004a30b001c0533/event/up");
    assert_null(gw_mqtt_router_filter(fx->router, 4));
    assert_null(gw_mqtt_router_filter(fx->router, -1));
    assert_string_equal(gw_mqtt_router_sensor(fx->router, 0), "door-3");
    assert_string_equal(gw_mqtt_router_sensor(fx->router, 5), "lpp-1");
    assert_null(gw_mqtt_router_sensor(fx->router, 6));
}

static void test_router_json(void **state)
{
    struct fixture *fx = *state;
    struct captured c;
    handle(fx, "zigbee2mqtt/door-3",
           "{\"contact\":true,\"battery\":87,\"sensors\":{\"t\":215},\"linkquality\":120}", &c);
    assert_int_equal(c.nreadings, 1);
    const struct gw_reading *r = &c.readings[0];
    assert_int_equal(c.sources[0], 0);
    assert_int_equal(r->sensor_index, 0);
    assert_string_equal(r->sensor, "door-3");
    assert_int_equal(r->status, GW_READING_OK);
    assert_int_equal(r->ts_ms, NOW_MS);
    assert_false(r->has_rssi);
    assert_false(r->has_snr);
    assert_false(r->has_fcnt);
    assert_int_equal(r->npoints, 3);
    assert_string_equal(point(r, "state")->value.str, "closed");
    assert_near(point(r, "battery")->value.num, 87);
    assert_near(point(r, "temp")->value.num, 21.5);

    /* an empty object still shows the device alive: every point a fault */
    handle(fx, "zigbee2mqtt/door-3", "{}", &c);
    assert_int_equal(c.nreadings, 1);
    for (int i = 0; i < c.readings[0].npoints; i++) {
        assert_int_equal(c.readings[0].points[i].fault, GW_FAULT_INVALID);
    }
    /* wrong types per point */
    handle(fx, "zigbee2mqtt/door-3",
           "{\"contact\":\"ajar\",\"battery\":\"full\",\"sensors\":{\"t\":[1]}}", &c);
    assert_int_equal(c.nreadings, 1);
    assert_int_equal(point(&c.readings[0], "state")->fault, GW_FAULT_INVALID);
    assert_int_equal(point(&c.readings[0], "battery")->fault, GW_FAULT_INVALID);
    assert_int_equal(point(&c.readings[0], "temp")->fault, GW_FAULT_INVALID);
}

static void test_router_garbage(void **state)
{
    struct fixture *fx = *state;
    struct captured c;
    struct gw_mqtt_result res;

    handle(fx, "zigbee2mqtt/door-3", "contact=true", &c);
    assert_int_equal(c.nrejected, 1);
    assert_int_equal(c.reject_source, 0); /* the topic names one sensor */
    assert_int_equal(c.reject_filter, 0);
    assert_string_equal(c.reject_topic, "zigbee2mqtt/door-3");
    assert_non_null(strstr(c.reject_why, "not JSON: "));

    handle(fx, "zigbee2mqtt/door-3", "[1,2,3]", &c);
    assert_int_equal(c.nrejected, 1);
    assert_string_equal(c.reject_why, "not a JSON object");
    handle(fx, "zigbee2mqtt/door-3", "\"online\"", &c);
    assert_string_equal(c.reject_why, "not a JSON object");
    handle(fx, "zigbee2mqtt/door-3", "42", &c);
    assert_string_equal(c.reject_why, "not a JSON object");
    handle(fx, "zigbee2mqtt/door-3", "", &c);
    assert_string_equal(c.reject_why, "empty payload");
    handle(fx, "zigbee2mqtt/door-3", "{\"contact\":true", &c); /* truncated */
    assert_int_equal(c.nrejected, 1);
    handle(fx, "zigbee2mqtt/door-3", "{\"a\":1}trailing", &c);
    assert_int_equal(c.nrejected, 1);
    handle(fx, "zigbee2mqtt/door-3", "{\"a\":\"\\u0000\"}", &c); /* NUL in a string */
    assert_int_equal(c.nrejected, 1);
    handle(fx, "zigbee2mqtt/door-3", "{\"a\":1e999}", &c); /* out of range */
    assert_int_equal(c.nrejected, 1);

    /* binary payload with a NUL byte in it */
    memset(&c, 0, sizeof(c));
    struct gw_mqtt_handler h = {.reading = on_reading, .rejected = on_rejected, .ctx = &c};
    static const char bin[] = {'{', '\0', '}', (char)0xff, (char)0xfe};
    gw_mqtt_router_handle(fx->router, "zigbee2mqtt/door-3", bin, sizeof(bin), NOW_MS, &h, &res);
    assert_int_equal(res.rejected, 1);

    /* too large: refused before parsing */
    size_t big = GW_MQTT_MAX_PAYLOAD + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    memset(&c, 0, sizeof(c));
    gw_mqtt_router_handle(fx->router, "zigbee2mqtt/door-3", huge, big, NOW_MS, &h, &res);
    assert_int_equal(res.rejected, 1);
    assert_string_equal(c.reject_why, "payload of 65537 bytes is larger than 65536");
    /* ...and just below the limit it parses */
    memset(&c, 0, sizeof(c));
    gw_mqtt_router_handle(fx->router, "zigbee2mqtt/door-3", huge, big - 1 - 1, NOW_MS, &h, &res);
    assert_int_equal(res.rejected, 1); /* no closing brace: still garbage, but parsed */
    assert_non_null(strstr(c.reject_why, "not JSON"));
    huge[big - 2] = '}';
    memset(&c, 0, sizeof(c));
    gw_mqtt_router_handle(fx->router, "zigbee2mqtt/door-3", huge, big - 1, NOW_MS, &h, &res);
    assert_int_equal(res.readings, 1);
    free(huge);

    /* deep nesting: jansson's depth limit refuses it, no stack overflow */
    size_t depth = 30000; /* ~60 KB: under the size limit, far over the depth limit */
    char *deep = malloc(2 * depth + 16);
    assert_non_null(deep);
    size_t w = 0;
    deep[w++] = '{';
    deep[w++] = '"';
    deep[w++] = 'a';
    deep[w++] = '"';
    deep[w++] = ':';
    for (size_t i = 0; i < depth - 10; i++) {
        deep[w++] = '[';
    }
    for (size_t i = 0; i < depth - 10; i++) {
        deep[w++] = ']';
    }
    deep[w++] = '}';
    memset(&c, 0, sizeof(c));
    gw_mqtt_router_handle(fx->router, "zigbee2mqtt/door-3", deep, w, NOW_MS, &h, &res);
    assert_int_equal(res.rejected, 1);
    free(deep);

    /* a topic nobody reads */
    res = handle(fx, "zigbee2mqtt/door-9", "{}", &c);
    assert_true(res.ignored);
    assert_string_equal(res.ignored_why, "no sensor reads this topic");
    res = handle(fx, "zigbee2mqtt/door-3/set", "{}", &c);
    assert_true(res.ignored);
}

static void test_router_chirpstack_object(void **state)
{
    struct fixture *fx = *state;
    struct captured c;
    handle(fx, "application/7/device/0004a30b001c0530/event/up", CS_EVENT(""), &c);
    assert_int_equal(c.nreadings, 1);
    const struct gw_reading *r = &c.readings[0];
    assert_string_equal(r->sensor, "door-4");
    assert_int_equal(r->sensor_index, 1);
    assert_int_equal(r->ts_ms, 1709280930123); /* the event's time: within the skew */
    assert_true(r->has_rssi);
    assert_near(r->rssi, -60);
    assert_true(r->has_snr);
    assert_near(r->snr, 9.25);
    assert_int_equal(r->forwarders, 4);
    assert_true(r->has_fcnt);
    assert_int_equal(r->fcnt, 10);
    assert_string_equal(point(r, "state")->value.str, "closed");
    assert_near(point(r, "battery")->value.num, 91);
    assert_int_equal(point(r, "temp")->fault, GW_FAULT_INVALID); /* not in the object */

    /* no decoded object: that is a misconfigured ChirpStack, worth saying */
    const char *noobj =
        "{\"time\":\"2024-03-01T08:15:30.123Z\",\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},"
        "\"fPort\":2,\"data\":\"AQI=\"}";
    handle(fx, "application/7/device/0004a30b001c0530/event/up", noobj, &c);
    assert_int_equal(c.nrejected, 1);
    assert_int_equal(c.reject_source, 1);
    assert_non_null(strstr(c.reject_why, "the event has no decoded object"));
}

static void test_router_chirpstack_data(void **state)
{
    struct fixture *fx = *state;
    struct captured c;
    /* smoke-1 decodes data with its layout profile; the object is not used */
    const char *up =
        "{\"time\":\"2024-03-01T08:15:30.123Z\",\"deviceInfo\":{\"devEui\":\"0004A30B001C0531\"},"
        "\"fCnt\":77,\"fPort\":1,\"data\":\"AVo=\",\"object\":{\"smoke\":false},"
        "\"rxInfo\":[{\"rssi\":-80,\"snr\":7}]}";
    handle(fx, "application/7/device/0004a30b001c0531/event/up", up, &c);
    assert_int_equal(c.nreadings, 1);
    const struct gw_reading *r = &c.readings[0];
    assert_string_equal(r->sensor, "smoke-1");
    assert_int_equal(r->npoints, 2);
    assert_int_equal(point(r, "smoke")->value.type, GW_VALUE_BOOL);
    assert_true(point(r, "smoke")->value.b); /* 0x01 bit 0 */
    assert_near(point(r, "battery")->value.num, 90);
    assert_near(r->rssi, -80);
    assert_near(r->snr, 7);
    assert_int_equal(r->forwarders, 1);
    assert_int_equal(r->fcnt, 77);

    /* a frame too short for the layout: faulted points, still a reading */
    const char *shortup = "{\"deviceInfo\":{\"devEui\":\"0004a30b001c0531\"},\"fPort\":1,"
                          "\"data\":\"AQ==\"}";
    handle(fx, "application/7/device/0004a30b001c0531/event/up", shortup, &c);
    assert_int_equal(c.nreadings, 1);
    assert_int_equal(point(&c.readings[0], "battery")->fault, GW_FAULT_INVALID);
    assert_int_equal(c.readings[0].ts_ms, NOW_MS); /* no time in the event */

    /* no application payload (MAC commands only): nothing to decode, not an error */
    const char *empty = "{\"deviceInfo\":{\"devEui\":\"0004a30b001c0531\"},\"fCnt\":78}";
    struct gw_mqtt_result res =
        handle(fx, "application/7/device/0004a30b001c0531/event/up", empty, &c);
    assert_true(res.ignored);
    assert_string_equal(res.ignored_why, "an uplink without application payload");

    /* Cayenne LPP that does not decode (type 0xEE is unknown) */
    const char *badlpp = "{\"deviceInfo\":{\"devEui\":\"0004a30b001c0534\"},\"fPort\":1,"
                         "\"data\":\"Ae4B\"}";
    handle(fx, "application/7/device/0004a30b001c0534/event/up", badlpp, &c);
    assert_int_equal(c.nrejected, 1);
    assert_int_equal(c.reject_source, 5);
    assert_non_null(strstr(c.reject_why, "data does not decode: "));
    /* and a good one: temperature_1 = 27.2 */
    const char *lpp = "{\"deviceInfo\":{\"devEui\":\"0004a30b001c0534\"},\"fPort\":1,"
                      "\"data\":\"AWcBEA==\"}";
    handle(fx, "application/7/device/0004a30b001c0534/event/up", lpp, &c);
    assert_int_equal(c.nreadings, 1);
    assert_near(point(&c.readings[0], "temperature_1")->value.num, 27.2);

    /* time far from now (a ChirpStack server with a wrong clock): the receive time */
    const char *old = "{\"time\":\"2020-01-01T00:00:00Z\",\"deviceInfo\":{\"devEui\":"
                      "\"0004a30b001c0531\"},\"fPort\":1,\"data\":\"AVo=\"}";
    handle(fx, "application/7/device/0004a30b001c0531/event/up", old, &c);
    assert_int_equal(c.readings[0].ts_ms, NOW_MS);
    const char *future = "{\"time\":\"2024-03-01T08:25:35Z\",\"deviceInfo\":{\"devEui\":"
                         "\"0004a30b001c0531\"},\"fPort\":1,\"data\":\"AVo=\"}";
    handle(fx, "application/7/device/0004a30b001c0531/event/up", future, &c);
    assert_int_equal(c.readings[0].ts_ms, NOW_MS);
}

static void test_router_chirpstack_matching(void **state)
{
    struct fixture *fx = *state;
    struct captured c;
    struct gw_mqtt_result res;
    char ev[512];

    /* another device of the application on the shared wildcard: not ours */
    snprintf(ev, sizeof(ev),
             "{\"deviceInfo\":{\"devEui\":\"0004a30b001c05ff\"},\"fPort\":1,\"data\":\"AVo=\"}");
    res = handle(fx, "application/7/device/0004a30b001c05ff/event/up", ev, &c);
    assert_true(res.ignored);
    assert_string_equal(res.ignored_why, "an uplink of a device no sensor has as dev_eui");

    /* an event without devEui on the shared wildcard: whose it was cannot be told */
    res = handle(fx, "application/7/device/x/event/up", "{\"fPort\":1}", &c);
    assert_int_equal(c.nrejected, 1);
    assert_int_equal(c.reject_source, -1);
    assert_int_equal(c.reject_filter, 1);
    /* garbage on the wildcard: the same */
    handle(fx, "application/7/device/x/event/up", "\x08\x01\x12\x04", &c);
    assert_int_equal(c.nrejected, 1);
    assert_int_equal(c.reject_source, -1);

    /* other ChirpStack events are not uplinks */
    res = handle(fx, "application/7/device/0004a30b001c0530/event/join",
                 "{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"devAddr\":\"00189440\"}", &c);
    assert_true(res.ignored); /* the wildcard does not even match .../join */
    res = handle(fx, "application/7/device/0004a30b001c0530/event/status", "{}", &c);
    assert_true(res.ignored);

    /* smoke-2's exact topic takes any device */
    snprintf(ev, sizeof(ev),
             "{\"deviceInfo\":{\"devEui\":\"1111111111111111\"},\"fPort\":1,\"data\":\"AAE=\"}");
    handle(fx, "application/7/device/0004a30b001c0532/event/up", ev, &c);
    assert_int_equal(c.nreadings, 1);
    assert_string_equal(c.readings[0].sensor, "smoke-2");
    assert_false(point(&c.readings[0], "smoke")->value.b);

    /* ...but a device that has its own sensor goes to that one (the topic matches both) */
    snprintf(ev, sizeof(ev),
             "{\"deviceInfo\":{\"devEui\":\"0004a30b001c0531\"},\"fPort\":1,\"data\":\"AAE=\"}");
    handle(fx, "application/7/device/0004a30b001c0532/event/up", ev, &c);
    assert_int_equal(c.nreadings, 1);
    assert_string_equal(c.readings[0].sensor, "smoke-1");

    /* smoke-3: exact topic and dev_eui; another devEui there is a misconfigured bridge */
    snprintf(ev, sizeof(ev),
             "{\"deviceInfo\":{\"devEui\":\"2222222222222222\"},\"fPort\":1,\"data\":\"AAE=\"}");
    handle(fx, "application/8/device/0004a30b001c0533/event/up", ev, &c);
    assert_int_equal(c.nreadings, 0);
    assert_int_equal(c.nrejected, 1);
    assert_int_equal(c.reject_source, 4);
    assert_string_equal(c.reject_why,
                        "devEui 2222222222222222 is not the configured 0004a30b001c0533");
    snprintf(ev, sizeof(ev),
             "{\"deviceInfo\":{\"devEui\":\"0004A30B001C0533\"},\"fPort\":1,\"data\":\"AAE=\"}");
    handle(fx, "application/8/device/0004a30b001c0533/event/up", ev, &c);
    assert_int_equal(c.nreadings, 1);
    assert_string_equal(c.readings[0].sensor, "smoke-3");

    /* a bad field in an event of a known device */
    handle(fx, "application/7/device/0004a30b001c0530/event/up",
           "{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"fPort\":300}", &c);
    assert_int_equal(c.nrejected, 1);
    assert_int_equal(c.reject_source, 1); /* its devEui names door-4 on the shared wildcard */
    assert_string_equal(c.reject_why, "fPort is not an integer 0..255");
}

/* Hostile input: random bytes and mutated events never crash (run under ASan/valgrind). */
static void test_router_fuzz(void **state)
{
    struct fixture *fx = *state;
    struct gw_mqtt_handler h = {.reading = NULL, .rejected = NULL, .ctx = NULL};
    struct gw_mqtt_result res;
    uint32_t seed = 12345;
    char buf[1024];
    const char *topics[] = {"zigbee2mqtt/door-3", "application/7/device/0004a30b001c0530/event/up",
                            "application/8/device/0004a30b001c0533/event/up"};
    const char *base = CS_EVENT("");
    size_t blen = strlen(base);
    assert_true(blen < sizeof(buf));
    int outcomes[3] = {0, 0, 0};
    for (int i = 0; i < 3000; i++) {
        size_t n;
        if (i % 2 == 0) {
            n = (size_t)(seed % sizeof(buf));
            for (size_t k = 0; k < n; k++) {
                seed = seed * 1103515245u + 12345u;
                buf[k] = (char)(seed >> 16);
            }
        } else {
            memcpy(buf, base, blen);
            n = blen;
            for (int k = 0; k < 1 + i % 4; k++) {
                seed = seed * 1103515245u + 12345u;
                buf[(seed >> 8) % blen] = (char)(seed >> 20);
            }
        }
        seed = seed * 1103515245u + 12345u;
        gw_mqtt_router_handle(fx->router, topics[i % 3], buf, n, NOW_MS, &h, &res);
        outcomes[res.readings > 0 ? 0 : res.rejected > 0 ? 1 : 2]++;
    }
    /* mutations keep some events valid: the run exercised both paths */
    assert_true(outcomes[0] > 0);
    assert_true(outcomes[1] > 0);
}

/* A js decoder that no longer compiles fails the router, with the sensor named. */
static void test_router_bad_decoder(void **state)
{
    (void)state;
    char dir[] = "/tmp/gw-test-mqtt-js-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char js[128], cfgp[128];
    snprintf(js, sizeof(js), "%s/dec.js", dir);
    snprintf(cfgp, sizeof(cfgp), "%s/c.cfg", dir);
    FILE *f = fopen(js, "w");
    assert_non_null(f);
    fputs("function decodeUplink(input) { return { data: { v: input.bytes[0] } }; }\n", f);
    fclose(f);
    f = fopen(cfgp, "w");
    assert_non_null(f);
    fprintf(f, "site = { district = \"d1\"; school = \"s1\"; name = \"T\"; };\n"
               "state_dir = \"/tmp/x\";\n"
               "profiles = { v = { codec = \"js\"; script = \"dec.js\"; }; };\n"
               "sensors = ( { id = \"v1\"; kind = \"k\"; profile = \"v\"; expect_every_s = 60;\n"
               "  mqtt = { topic = \"a/b\"; format = \"chirpstack\"; }; } );\n");
    fclose(f);
    struct gw_config *cfg = gw_config_load(cfgp, NULL);
    assert_non_null(cfg);
    char err[256];
    struct gw_mqtt_router *r = gw_mqtt_router_new(cfg, err, sizeof(err));
    assert_non_null(r);
    /* the js decoder runs on data */
    struct captured c;
    memset(&c, 0, sizeof(c));
    struct gw_mqtt_handler h = {.reading = on_reading, .rejected = on_rejected, .ctx = &c};
    struct gw_mqtt_result res;
    const char *ev = "{\"deviceInfo\":{\"devEui\":\"0004a30b001c0530\"},\"fPort\":3,"
                     "\"data\":\"KgE=\"}";
    gw_mqtt_router_handle(r, "a/b", ev, strlen(ev), NOW_MS, &h, &res);
    assert_int_equal(res.readings, 1);
    assert_near(point(&c.readings[0], "v")->value.num, 42);
    gw_mqtt_router_free(r);

    /* the script is broken after the config was read */
    f = fopen(js, "w");
    assert_non_null(f);
    fputs("function decodeUplink(input) { return ( }\n", f);
    fclose(f);
    err[0] = '\0';
    assert_null(gw_mqtt_router_new(cfg, err, sizeof(err)));
    assert_memory_equal(err, "sensor v1: ", strlen("sensor v1: "));
    gw_config_free(cfg);
    unlink(js);
    unlink(cfgp);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_problem),
        cmocka_unit_test(test_topic_matches),
        cmocka_unit_test(test_json_path),
        cmocka_unit_test(test_json_convert),
        cmocka_unit_test(test_json_extract),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_chirpstack_parse),
        cmocka_unit_test(test_chirpstack_other_event),
        cmocka_unit_test_setup_teardown(test_router_subscriptions, setup_router, teardown_router),
        cmocka_unit_test_setup_teardown(test_router_json, setup_router, teardown_router),
        cmocka_unit_test_setup_teardown(test_router_garbage, setup_router, teardown_router),
        cmocka_unit_test_setup_teardown(test_router_chirpstack_object, setup_router,
                                        teardown_router),
        cmocka_unit_test_setup_teardown(test_router_chirpstack_data, setup_router, teardown_router),
        cmocka_unit_test_setup_teardown(test_router_chirpstack_matching, setup_router,
                                        teardown_router),
        cmocka_unit_test_setup_teardown(test_router_fuzz, setup_router, teardown_router),
        cmocka_unit_test(test_router_bad_decoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
