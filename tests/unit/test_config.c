/*
 * gateway/config.c: the example config and good fixtures land field by field
 * (defaults too); every bad fixture yields exactly the expected
 * "file:line: message" lines; secrets and key files, LoRa (listen, layout
 * fields, js decoders and their examples, ABP keys), slugs, lookups and the summary.
 * Fixtures live in $GW_TEST_DATA/config (CMake sets GW_TEST_DATA).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "config.h"

#define assert_near(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-9)

/* ---- helpers ----------------------------------------------------------- */

static char *data_path(const char *rel)
{
    const char *dir = getenv("GW_TEST_DATA");
    if (!dir) {
        fail_msg("GW_TEST_DATA is not set (run through ctest)");
    }
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

/* Loads path; *out gets everything written to `errors` (caller frees). */
static struct gw_config *load(const char *path, char **out)
{
    size_t len = 0;
    *out = NULL;
    FILE *f = open_memstream(out, &len);
    assert_non_null(f);
    struct gw_config *cfg = gw_config_load(path, f);
    fclose(f);
    return cfg;
}

/* Every '@' of tmpl replaced by path, every '$' by path's directory. */
static char *expand(const char *tmpl, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 1;
    size_t n = strlen(tmpl) + 1;
    for (const char *c = tmpl; *c; c++) {
        n += *c == '@' ? strlen(path) : *c == '$' ? dl : 0;
    }
    char *s = malloc(n);
    assert_non_null(s);
    char *w = s;
    for (const char *c = tmpl; *c; c++) {
        if (*c == '@') {
            w = stpcpy(w, path);
        } else if (*c == '$') {
            memcpy(w, slash ? path : ".", dl);
            w += dl;
        } else {
            *w++ = *c;
        }
    }
    *w = '\0';
    return s;
}

struct tmpdir {
    char dir[64];
    char paths[8][128];
    int n;
};

static void tmp_init(struct tmpdir *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/gw-test-config-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
}

static const char *tmp_write(struct tmpdir *t, const char *name, const char *text, mode_t mode)
{
    assert_true(t->n < 8);
    char *p = t->paths[t->n++];
    size_t dl = strlen(t->dir);
    assert_true(dl + 1 + strlen(name) < sizeof(t->paths[0]));
    memcpy(p, t->dir, dl);
    p[dl] = '/';
    strcpy(p + dl + 1, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(p, mode), 0);
    return p;
}

static void tmp_cleanup(struct tmpdir *t)
{
    for (int i = 0; i < t->n; i++) {
        unlink(t->paths[i]);
    }
    rmdir(t->dir);
}

#define BASE_HEAD                                                                                  \
    "site = { district = \"d1\"; school = \"s1\"; name = \"T\"; };\n"                              \
    "state_dir = \"/tmp/x\";\n"

/* ---- good files -------------------------------------------------------- */

static void test_example_config(void **state)
{
    (void)state;
    char *path = data_path("../../../config/campusgw.cfg");
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_string_equal(out, "");
    assert_non_null(cfg);
    assert_string_equal(cfg->path, path);
    assert_string_equal(cfg->site.district, "haidian");
    assert_string_equal(cfg->site.school, "no1-middle");
    assert_string_equal(cfg->site.name, "No. 1 Middle School");
    assert_string_equal(cfg->site.timezone, "Asia/Shanghai");
    assert_string_equal(cfg->site.language, "zh-CN");
    assert_string_equal(cfg->state_dir, "/var/lib/campusgw");
    assert_string_equal(cfg->hub.host, "127.0.0.1");
    assert_int_equal(cfg->hub.port, 1883);
    assert_string_equal(cfg->hub.topic_prefix, "campus");
    assert_string_equal(cfg->hub.client_id, "campusgw-haidian-no1-middle");
    assert_null(cfg->hub.username);
    assert_null(cfg->hub.password);
    assert_null(cfg->hub.tls.ca_file);
    assert_int_equal(cfg->store.commit_ms, 1000);
    assert_int_equal(cfg->store.commit_records, 1000);
    assert_int_equal(cfg->store.max_mb, 512);
    assert_false(cfg->uplink.enabled); /* commented out in the example */
    assert_false(cfg->influx.enabled);

    assert_int_equal(cfg->nbuses, 2);
    assert_int_equal(cfg->buses[0].type, GW_BUS_RTU);
    assert_string_equal(cfg->buses[0].device, "/dev/ttyUSB0");
    assert_true(cfg->buses[0].rs485);
    assert_int_equal(cfg->buses[0].timeout_ms, 500);
    assert_int_equal(cfg->buses[1].type, GW_BUS_TCP);
    assert_string_equal(cfg->buses[1].host, "127.0.0.1");
    assert_int_equal(cfg->buses[1].port, 502);

    assert_int_equal(cfg->nschedules, 2);
    assert_int_equal(cfg->schedules[0].days, 0x3e); /* mon-fri */
    assert_int_equal(cfg->schedules[1].from_min, 22 * 60);
    assert_int_equal(cfg->schedules[1].to_min, 6 * 60);

    assert_true(cfg->lora.enabled);
    assert_string_equal(cfg->lora.listen_host, "0.0.0.0");
    assert_int_equal(cfg->lora.listen_port, 1700);
    assert_string_equal(cfg->lora.region, "CN470");
    assert_int_equal(cfg->lora.dedup_ms, 200);
    assert_int_equal(cfg->lora.forwarder_offline_s, 120);

    assert_int_equal(cfg->nprofiles, 6);
    const struct gw_point_cfg *pt = &cfg->profiles[0].points[0];
    assert_true(pt->has_span);
    assert_near(pt->raw_min, 4000);
    assert_near(pt->max, 1.6);
    assert_int_equal(cfg->profiles[2].points[0].type, GW_REG_BOOL); /* discrete default */
    const struct gw_profile_cfg *smoke = &cfg->profiles[3];
    assert_string_equal(smoke->name, "smoke_x");
    assert_int_equal(smoke->codec, GW_CODEC_LAYOUT);
    assert_int_equal(smoke->nfields, 2);
    assert_int_equal(smoke->fields[0].type, GW_FT_BOOL);
    assert_int_equal(smoke->fields[0].bit, 0);
    assert_string_equal(smoke->fields[1].unit, "%");
    const struct gw_profile_cfg *door = &cfg->profiles[4];
    assert_string_equal(door->name, "door_x");
    assert_int_equal(door->fields[0].nenum, 3);
    assert_string_equal(door->fields[0].enum_labels[2], "locked");
    assert_int_equal(cfg->profiles[5].codec, GW_CODEC_CAYENNE_LPP);

    assert_int_equal(cfg->nsensors, 4);
    assert_int_equal(gw_config_find_sensor(cfg, "A-1F-hydrant-01"), 0);
    assert_int_equal(cfg->sensors[0].bus_index, 1);
    assert_int_equal(cfg->sensors[0].profile_index, 0);
    assert_int_equal(cfg->sensors[1].bus_index, 0);
    assert_int_equal(cfg->sensors[1].timeout_ms, 800);
    assert_string_equal(cfg->sensors[2].location.zone, "east exit");
    const struct gw_sensor_cfg *s = &cfg->sensors[3];
    assert_string_equal(s->id, "A-3F-smoke-301");
    assert_int_equal(s->profile_index, 3);
    assert_int_equal(s->bus_index, -1);
    assert_int_equal(s->expect_every_s, 3600);
    assert_true(s->lora.enabled);
    assert_int_equal(s->lora.dev_addr, 0x26011BDA);
    static const uint8_t nwk[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const uint8_t app[16] = {15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    assert_memory_equal(s->lora.nwk_s_key, nwk, 16);
    assert_memory_equal(s->lora.app_s_key, app, 16);
    assert_false(s->lora.relax_fcnt);
    assert_false(cfg->sensors[0].lora.enabled);

    assert_int_equal(cfg->nrules, 7);
    assert_string_equal(cfg->rules[0].slug, "hydrant-pressure-low");
    assert_int_equal(cfg->rules[0].cond, GW_COND_BELOW);
    assert_near(cfg->rules[0].threshold, 0.10);
    assert_near(cfg->rules[0].deadband, 0.02);
    assert_int_equal(cfg->rules[3].schedule_index, 0);
    assert_int_equal(cfg->rules[3].equals.type, GW_VALUE_BOOL);
    assert_string_equal(cfg->rules[5].point, "smoke");
    assert_int_equal(cfg->rules[5].alarm_class, GW_CLASS_ALARM);
    assert_int_equal(cfg->rules[6].cond, GW_COND_OFFLINE);
    assert_int_equal(cfg->rules[6].offline_after, 3);
    assert_null(cfg->rules[6].kind);
    assert_null(cfg->rules[6].point);

    /* people: mqtt contacts, the escalation of DESIGN.md; smtp is commented out */
    assert_int_equal(cfg->ncontacts, 3);
    assert_string_equal(cfg->contacts[0].name, "facilities");
    assert_string_equal(cfg->contacts[1].name, "principal");
    assert_string_equal(cfg->contacts[2].name, "district");
    for (int i = 0; i < cfg->ncontacts; i++) {
        assert_int_equal(cfg->contacts[i].nchannels, 1);
        assert_int_equal(cfg->contacts[i].channels[0].kind, GW_CHANNEL_MQTT);
    }
    assert_string_equal(cfg->contacts[2].channels[0].target, "notify/district");
    const struct gw_escalation_cfg *e = &cfg->escalation;
    assert_int_equal(e->nlevels[GW_CLASS_ALARM], 2);
    assert_int_equal(e->levels[GW_CLASS_ALARM][1].after_s, 120);
    assert_int_equal(e->levels[GW_CLASS_ALARM][1].contacts[0], 2);
    assert_int_equal(e->levels[GW_CLASS_ALARM][1].repeat_s, 600);
    assert_int_equal(e->nlevels[GW_CLASS_SUPERVISORY], 2);
    assert_int_equal(e->levels[GW_CLASS_SUPERVISORY][1].after_s, 900);
    assert_int_equal(e->nlevels[GW_CLASS_TROUBLE], 1);
    assert_false(cfg->smtp.enabled);
    assert_int_equal(cfg->alarms.chatter_count, 5);
    assert_int_equal(cfg->alarms.flood_min, 3);
    assert_true(cfg->selftest.enabled);
    assert_int_equal(cfg->selftest.at_min, 180);
    gw_config_free(cfg);
    free(out);
    free(path);
}

/* The demo school reads its exit doors through an enum and watches for "locked". */
static void test_demo_config_enum(void **state)
{
    (void)state;
    char *path = data_path("../../../config/demo.cfg");
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_string_equal(out, "");
    assert_non_null(cfg);
    int door = -1;
    for (int i = 0; i < cfg->nprofiles; i++) {
        if (strcmp(cfg->profiles[i].name, "door_modbus") == 0) {
            door = i;
        }
    }
    assert_true(door >= 0);
    const struct gw_point_cfg *state_point = &cfg->profiles[door].points[0];
    assert_int_equal(state_point->nenum, 3);
    assert_string_equal(state_point->enum_labels[0], "closed");
    assert_string_equal(state_point->enum_labels[2], "locked");
    assert_int_equal(cfg->profiles[door].points[1].nenum, 0);
    assert_int_equal(cfg->rules[1].equals.type, GW_VALUE_STRING);
    assert_string_equal(cfg->rules[1].equals.str, "locked");
    gw_config_free(cfg);
    free(out);
    free(path);
}

static void test_good_full(void **state)
{
    (void)state;
    char *path = data_path("config/good_full.cfg");
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_string_equal(out, "");
    assert_non_null(cfg);

    assert_string_equal(cfg->site.district, "haidian");
    assert_string_equal(cfg->site.school, "no1_middle-2");
    assert_string_equal(cfg->site.name, "北京市海淀区第一中学");
    assert_string_equal(cfg->site.language, "en");
    assert_string_equal(cfg->state_dir, "/var/lib/campusgw-test");

    const struct gw_hub_cfg *h = &cfg->hub;
    assert_string_equal(h->host, "broker.local");
    assert_int_equal(h->port, 1884);
    assert_string_equal(h->topic_prefix, "edu/campus");
    assert_string_equal(h->username, "gw");
    assert_string_equal(h->password, "s3cret");
    assert_string_equal(h->client_id, "gw-1");
    assert_int_equal(h->keepalive_s, 60);
    assert_null(h->tls.ca_file);
    assert_false(h->tls.insecure);

    assert_int_equal(cfg->nbuses, 5);
    const struct gw_bus_cfg *b = &cfg->buses[0];
    assert_string_equal(b->name, "rs485-1");
    assert_int_equal(b->type, GW_BUS_RTU);
    assert_string_equal(b->device, "/dev/ttyUSB0");
    assert_null(b->host);
    assert_int_equal(b->baud, 19200);
    assert_int_equal(b->parity, 'E');
    assert_int_equal(b->data_bits, 7);
    assert_int_equal(b->stop_bits, 2);
    assert_true(b->rs485);
    assert_int_equal(b->timeout_ms, 250);
    assert_int_equal(b->fail_threshold, 5);
    assert_int_equal(b->line, 21);
    b = &cfg->buses[1];
    assert_int_equal(b->type, GW_BUS_TCP);
    assert_string_equal(b->host, "192.0.2.10");
    assert_int_equal(b->port, 1502);
    assert_int_equal(b->timeout_ms, 2000);
    assert_int_equal(b->fail_threshold, 3);
    assert_null(b->device);
    assert_string_equal(cfg->buses[2].host, "plc.local");
    assert_int_equal(cfg->buses[2].port, 502);
    assert_string_equal(cfg->buses[3].host, "::1");
    assert_int_equal(cfg->buses[3].port, 1503);
    b = &cfg->buses[4]; /* RTU defaults */
    assert_int_equal(b->baud, 9600);
    assert_int_equal(b->parity, 'N');
    assert_int_equal(b->data_bits, 8);
    assert_int_equal(b->stop_bits, 1);
    assert_false(b->rs485);
    assert_int_equal(b->timeout_ms, 1000);
    assert_int_equal(b->fail_threshold, 3);

    assert_int_equal(cfg->nschedules, 6);
    static const struct {
        const char *name;
        uint8_t days;
        int from, to;
    } sched[] = {
        {"school_hours", 0x3e, 420, 1080}, {"weekend", 0x41, 0, 1440}, {"night", 0x7f, 1350, 375},
        {"odd", 0x2e, 480, 540},           {"wrap", 0x63, 0, 1440},    {"every", 0x7f, 720, 1440},
    };
    for (size_t i = 0; i < sizeof(sched) / sizeof(sched[0]); i++) {
        assert_string_equal(cfg->schedules[i].name, sched[i].name);
        assert_int_equal(cfg->schedules[i].days, sched[i].days);
        assert_int_equal(cfg->schedules[i].from_min, sched[i].from);
        assert_int_equal(cfg->schedules[i].to_min, sched[i].to);
    }

    assert_int_equal(cfg->nprofiles, 2);
    const struct gw_profile_cfg *pr = &cfg->profiles[0];
    assert_string_equal(pr->name, "hydrant_4_20");
    assert_int_equal(pr->codec, GW_CODEC_MODBUS);
    assert_int_equal(pr->npoints, 1);
    const struct gw_point_cfg *pt = &pr->points[0];
    assert_string_equal(pt->unit, "MPa");
    assert_int_equal(pt->table, GW_TABLE_INPUT);
    assert_int_equal(pt->address, 7);
    assert_true(pt->has_span);
    assert_near(pt->raw_min, 4000);
    assert_near(pt->raw_max, 20000);
    assert_near(pt->min, 0);
    assert_near(pt->max, 1.6);
    assert_near(pt->scale, 1);
    assert_near(pt->offset, 0);
    pr = &cfg->profiles[1];
    assert_int_equal(pr->npoints, 8);
    static const struct {
        const char *name;
        enum gw_table table;
        int address;
        enum gw_reg_type type;
        enum gw_word_order wo;
        double scale, offset;
    } pts[] = {
        {"level", GW_TABLE_HOLDING, 0, GW_REG_U16, GW_WORDS_BIG, 1, 0},
        {"flow", GW_TABLE_HOLDING, 65534, GW_REG_F32, GW_WORDS_LITTLE, 0.5, -3},
        {"count", GW_TABLE_INPUT, 10, GW_REG_U32, GW_WORDS_BIG, 1, 0},
        {"temp", GW_TABLE_HOLDING, 12, GW_REG_S16, GW_WORDS_BIG, 0.1, 0},
        {"total", GW_TABLE_HOLDING, 14, GW_REG_S32, GW_WORDS_BIG, 1, 0},
        {"pump_on", GW_TABLE_COIL, 3, GW_REG_BOOL, GW_WORDS_BIG, 1, 0},
        {"door", GW_TABLE_DISCRETE, 4, GW_REG_BOOL, GW_WORDS_BIG, 1, 0},
        {"alarm_word", GW_TABLE_HOLDING, 20, GW_REG_BOOL, GW_WORDS_BIG, 1, 0},
    };
    for (int i = 0; i < pr->npoints; i++) {
        pt = &pr->points[i];
        assert_string_equal(pt->name, pts[i].name);
        assert_int_equal(pt->table, pts[i].table);
        assert_int_equal(pt->address, pts[i].address);
        assert_int_equal(pt->type, pts[i].type);
        assert_int_equal(pt->word_order, pts[i].wo);
        assert_near(pt->scale, pts[i].scale);
        assert_near(pt->offset, pts[i].offset);
        assert_false(pt->has_span);
    }
    assert_string_equal(pr->points[1].unit, "m3/h");
    assert_null(pr->points[0].unit);

    assert_int_equal(cfg->nsensors, 3);
    const struct gw_sensor_cfg *s = &cfg->sensors[0];
    assert_string_equal(s->id, "A-1F-hydrant-01");
    assert_string_equal(s->kind, "hydrant_pressure");
    assert_string_equal(s->profile, "hydrant_4_20");
    assert_int_equal(s->profile_index, 0);
    assert_string_equal(s->bus, "plc");
    assert_int_equal(s->bus_index, 1);
    assert_int_equal(s->unit_id, 0); /* allowed on TCP */
    assert_int_equal(s->interval_s, 5);
    assert_int_equal(s->expect_every_s, 60);
    assert_int_equal(s->timeout_ms, 300);
    assert_string_equal(s->location.building, "A");
    assert_string_equal(s->location.floor, "1");
    assert_string_equal(s->location.zone, "east stair");
    s = &cfg->sensors[1];
    assert_int_equal(s->bus_index, 0);
    assert_int_equal(s->profile_index, 1);
    assert_int_equal(s->unit_id, 247);
    assert_int_equal(s->interval_s, 10);
    assert_int_equal(s->expect_every_s, 0);
    assert_int_equal(s->timeout_ms, 0);
    assert_null(s->location.building);
    assert_null(s->location.zone);
    assert_int_equal(cfg->sensors[2].bus_index, 4);
    assert_null(cfg->sensors[2].location.floor);
    assert_string_equal(cfg->sensors[2].location.zone, "basement");

    assert_int_equal(cfg->nrules, 10);
    const struct gw_rule_cfg *r = &cfg->rules[0];
    assert_string_equal(r->name, "Hydrant pressure LOW!");
    assert_string_equal(r->slug, "hydrant-pressure-low");
    assert_string_equal(r->kind, "hydrant_pressure");
    assert_null(r->sensor);
    assert_string_equal(r->point, "pressure");
    assert_int_equal(r->cond, GW_COND_BELOW);
    assert_near(r->threshold, 0.1);
    assert_near(r->deadband, 0.02);
    assert_int_equal(r->schedule_index, -1);
    assert_int_equal(r->on_delay_s, 30);
    assert_int_equal(r->off_delay_s, 10);
    assert_false(r->latch);
    assert_int_equal(r->alarm_class, GW_CLASS_SUPERVISORY);
    r = &cfg->rules[1];
    assert_int_equal(r->cond, GW_COND_ABOVE);
    assert_near(r->threshold, 1); /* an integer literal as a threshold */
    assert_near(r->deadband, 0);
    assert_int_equal(r->on_delay_s, 0);
    assert_int_equal(r->off_delay_s, 0);
    assert_int_equal(r->alarm_class, GW_CLASS_TROUBLE);
    r = &cfg->rules[2];
    assert_int_equal(r->cond, GW_COND_RATE_ABOVE);
    assert_string_equal(r->sensor, "C-pump");
    assert_near(r->threshold, 2.5);
    assert_near(r->deadband, 0.5);
    r = &cfg->rules[3];
    assert_int_equal(r->cond, GW_COND_RATE_BELOW);
    assert_near(r->threshold, -1);
    r = &cfg->rules[4];
    assert_int_equal(r->cond, GW_COND_EQUALS);
    assert_int_equal(r->equals.type, GW_VALUE_BOOL);
    assert_true(r->equals.b);
    assert_near(r->equals.num, 1);
    assert_int_equal(r->schedule_index, 2);
    assert_true(r->latch);
    r = &cfg->rules[5];
    assert_null(r->kind);
    assert_int_equal(r->equals.type, GW_VALUE_NUMBER);
    assert_near(r->equals.num, 7);
    assert_near(cfg->rules[6].equals.num, 2.5);
    r = &cfg->rules[7];
    assert_int_equal(r->equals.type, GW_VALUE_BOOL);
    assert_false(r->equals.b);
    assert_near(r->equals.num, 0);
    assert_int_equal(r->alarm_class, GW_CLASS_ALARM);
    assert_int_equal(r->on_delay_s, 5);
    r = &cfg->rules[8];
    assert_int_equal(r->cond, GW_COND_OFFLINE);
    assert_int_equal(r->offline_after, 3);
    assert_int_equal(r->line, 72);
    assert_string_equal(cfg->rules[9].kind, "pump");

    assert_int_equal(cfg->store.commit_ms, 250);
    assert_int_equal(cfg->store.commit_records, 1);
    assert_int_equal(cfg->store.max_mb, 1048576);

    const struct gw_uplink_cfg *u = &cfg->uplink;
    assert_true(u->enabled);
    assert_string_equal(u->host, "district.example");
    assert_int_equal(u->port, 1885);
    assert_string_equal(u->topic_prefix, "district/campus");
    assert_string_equal(u->username, "gw-up");
    assert_string_equal(u->password, ""); /* legal MQTT, like hub.password */
    assert_string_equal(u->client_id, "gw-up-1");
    assert_int_equal(u->keepalive_s, 5);
    assert_int_equal(u->max_inflight, 65535);
    assert_null(u->tls.ca_file);
    assert_false(u->tls.insecure);
    assert_int_equal(u->line, 76);

    const struct gw_influx_cfg *x = &cfg->influx;
    assert_true(x->enabled);
    assert_int_equal(x->version, GW_INFLUX_V1);
    assert_string_equal(x->url, "https://influx.example:8087/proxy"); /* trailing '/' gone */
    assert_string_equal(x->database, "campus");
    assert_string_equal(x->retention_policy, "one_year");
    assert_string_equal(x->username, "writer");
    assert_string_equal(x->password, "infl0x");
    assert_null(x->org);
    assert_null(x->bucket);
    assert_null(x->token);
    assert_int_equal(x->batch_size, 100000);
    assert_int_equal(x->flush_ms, 10);
    assert_true(x->gzip);
    assert_int_equal(x->timeout_ms, 300000);
    assert_null(x->ca_file);
    assert_false(x->insecure);
    assert_int_equal(x->line, 86);
    gw_config_free(cfg);
    free(out);
    free(path);
}

static void test_good_minimal_defaults(void **state)
{
    (void)state;
    char *path = data_path("config/good_minimal.cfg");
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_string_equal(out, "");
    assert_non_null(cfg);
    assert_string_equal(cfg->site.timezone, "UTC");
    assert_string_equal(cfg->site.language, "zh-CN");
    assert_string_equal(cfg->hub.host, "127.0.0.1");
    assert_int_equal(cfg->hub.port, 1883);
    assert_string_equal(cfg->hub.topic_prefix, "campus");
    assert_string_equal(cfg->hub.client_id, "campusgw-d1-s1");
    assert_int_equal(cfg->hub.keepalive_s, 30);
    assert_null(cfg->hub.username);
    assert_null(cfg->hub.password);
    assert_null(cfg->hub.tls.ca_file);
    assert_null(cfg->hub.tls.cert_file);
    assert_null(cfg->hub.tls.key_file);
    assert_false(cfg->hub.tls.insecure);
    /* store defaults hold without a store section */
    assert_int_equal(cfg->store.commit_ms, 1000);
    assert_int_equal(cfg->store.commit_records, 1000);
    assert_int_equal(cfg->store.max_mb, 512);
    /* no uplink, no influx: off and empty */
    assert_false(cfg->uplink.enabled);
    assert_null(cfg->uplink.host);
    assert_null(cfg->uplink.topic_prefix);
    assert_null(cfg->uplink.client_id);
    assert_int_equal(cfg->uplink.port, 0);
    assert_false(cfg->influx.enabled);
    assert_null(cfg->influx.url);
    assert_null(cfg->influx.database);
    assert_null(cfg->influx.token);
    assert_false(cfg->lora.enabled);
    assert_null(cfg->lora.listen_host);
    assert_null(cfg->lora.region);
    assert_int_equal(cfg->lora.listen_port, 0);
    assert_int_equal(cfg->nbuses, 0);
    assert_int_equal(cfg->nschedules, 0);
    assert_int_equal(cfg->nprofiles, 0);
    assert_int_equal(cfg->nsensors, 0);
    assert_int_equal(cfg->nrules, 0);
    /* no contacts, no escalation, no smtp; alarm tuning and the self-test keep their defaults */
    assert_int_equal(cfg->ncontacts, 0);
    assert_null(cfg->contacts);
    for (int c = 0; c < GW_NCLASSES; c++) {
        assert_int_equal(cfg->escalation.nlevels[c], 0);
        assert_null(cfg->escalation.levels[c]);
    }
    assert_false(cfg->smtp.enabled);
    assert_null(cfg->smtp.url);
    assert_null(cfg->smtp.from);
    assert_null(cfg->smtp.password);
    assert_int_equal(cfg->alarms.chatter_count, 5);
    assert_int_equal(cfg->alarms.chatter_minutes, 10);
    assert_int_equal(cfg->alarms.storm_count, 10);
    assert_int_equal(cfg->alarms.flood_min, 3);
    assert_true(cfg->selftest.enabled);
    assert_int_equal(cfg->selftest.at_min, 180);
    assert_int_equal(cfg->selftest.timeout_s, 120);

    char *sum = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sum, &len);
    gw_config_print_summary(cfg, f);
    fclose(f);
    assert_string_equal(
        sum,
        "site: d1/s1 \"Minimal\" (timezone UTC, language zh-CN)\n"
        "state_dir: /tmp/campusgw-minimal\n"
        "store: commit every 1000 ms or 1000 records, max 512 MB\n"
        "hub: 127.0.0.1:1883, topics campus/d1/s1/..., client_id "
        "campusgw-d1-s1, no TLS, anonymous\n"
        "uplink: none\n"
        "influx: none\n"
        "modbus buses: 0\n"
        "lora: none\n"
        "profiles: 0\n"
        "sensors: 0\n"
        "schedules: 0\n"
        "rules: 0\n"
        "contacts: 0\n"
        "escalation: none\n"
        "smtp: none\n"
        "alarms: chattering above 5 raises in 10 min, storm above 10 new "
        "alarms in 60 s, flood from 3 offline sensors\n"
        "selftest: daily at 03:00, timeout 120 s\n"
        "http: listen 127.0.0.1:8080, HTTP, no users (read-only, loopback only)\n"
        "hazards: auto-open none\n"
        "  deadlines (days): fire_equipment 7, evacuation_route 1, electrical 7, structure 30, "
        "surroundings 30, other 14\n"
        "  overdue told: as escalation.supervisory\n"
        "kpi: every 3600 s\n"
        "config OK\n");
    free(sum);
    gw_config_free(cfg);
    free(out);
    free(path);
}

static void test_good_later_sections(void **state)
{
    (void)state;
    char *path = data_path("config/good_later.cfg");
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    /* LoRa (the lora section, codec profiles, a lora sensor) is read now: no warnings */
    char *want =
        expand("warning: @:14: sensors[1]: no expect_every_s; an MQTT sensor that falls silent is "
               "never reported offline\n"
               "warning: @:21: rules[4]: applies to no sensor\n",
               path);
    assert_string_equal(out, want);
    assert_int_equal(cfg->profiles[0].codec, GW_CODEC_LAYOUT);
    assert_int_equal(cfg->profiles[0].nfields, 1);
    assert_int_equal(cfg->profiles[1].codec, GW_CODEC_CAYENNE_LPP);
    assert_int_equal(cfg->profiles[2].codec, GW_CODEC_JS);
    char *script = expand("$/codecs/vendor_y.js", path);
    assert_string_equal(cfg->profiles[2].script, script);
    free(script);
    assert_null(cfg->profiles[2].examples);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cfg->profiles[i].npoints, 0);
        assert_null(cfg->profiles[i].points);
    }
    assert_true(cfg->lora.enabled); /* listen only: the other keys default */
    assert_string_equal(cfg->lora.listen_host, "0.0.0.0");
    assert_int_equal(cfg->lora.listen_port, 1700);
    assert_string_equal(cfg->lora.region, "CN470");
    assert_int_equal(cfg->lora.dedup_ms, 200);
    assert_int_equal(cfg->lora.forwarder_offline_s, 120);
    assert_int_equal(cfg->lora.line, 29);
    assert_int_equal(cfg->nsensors, 2);
    assert_int_equal(cfg->sensors[0].bus_index, -1);
    assert_int_equal(cfg->sensors[0].profile_index, 0);
    assert_int_equal(cfg->sensors[0].expect_every_s, 3600);
    assert_true(cfg->sensors[0].lora.enabled);
    assert_int_equal(cfg->sensors[0].lora.dev_addr, 0x26011BDA);
    assert_false(cfg->sensors[0].lora.relax_fcnt);
    assert_int_equal(cfg->sensors[1].bus_index, -1);
    assert_false(cfg->sensors[1].lora.enabled);
    assert_int_equal(cfg->nrules, 5);
    assert_int_equal(cfg->rules[0].alarm_class, GW_CLASS_ALARM);
    /* a string value is fine where a codec may decode enum labels */
    assert_int_equal(cfg->rules[3].equals.type, GW_VALUE_STRING);
    assert_string_equal(cfg->rules[3].equals.str, "locked");
    assert_null(strstr(out, "'store'"));
    assert_null(strstr(out, "'uplink'"));
    assert_null(strstr(out, "'influx'"));
    /* store, influx and uplink are read now: given keys and defaults */
    assert_int_equal(cfg->store.commit_ms, 1000);
    assert_int_equal(cfg->store.commit_records, 1000);
    assert_int_equal(cfg->store.max_mb, 512);
    const struct gw_influx_cfg *x = &cfg->influx;
    assert_true(x->enabled);
    assert_int_equal(x->version, GW_INFLUX_V1);
    assert_string_equal(x->url, "http://127.0.0.1:8086");
    assert_string_equal(x->database, "campus");
    assert_null(x->retention_policy);
    assert_null(x->username);
    assert_null(x->password);
    assert_int_equal(x->batch_size, 5000);
    assert_int_equal(x->flush_ms, 1000);
    assert_false(x->gzip);
    assert_int_equal(x->timeout_ms, 10000);
    assert_null(x->ca_file);
    assert_false(x->insecure);
    assert_int_equal(x->line, 5);
    const struct gw_uplink_cfg *u = &cfg->uplink;
    assert_true(u->enabled);
    assert_string_equal(u->host, "district.example");
    assert_int_equal(u->port, 1883);
    assert_string_equal(u->topic_prefix, "campus"); /* the hub's */
    assert_string_equal(u->client_id, "campusgw-d1-s1");
    assert_int_equal(u->keepalive_s, 30);
    assert_int_equal(u->max_inflight, 100);
    assert_null(u->username);
    assert_null(u->password);
    assert_null(u->tls.ca_file);
    assert_int_equal(u->line, 28);
    /* contacts, escalation and an empty selftest are read now */
    assert_int_equal(cfg->ncontacts, 1);
    assert_string_equal(cfg->contacts[0].name, "facilities");
    assert_int_equal(cfg->contacts[0].line, 23);
    assert_int_equal(cfg->contacts[0].nchannels, 1);
    assert_int_equal(cfg->contacts[0].channels[0].kind, GW_CHANNEL_MQTT);
    assert_string_equal(cfg->contacts[0].channels[0].target, "notify/facilities");
    assert_int_equal(cfg->escalation.nlevels[GW_CLASS_ALARM], 1);
    assert_int_equal(cfg->escalation.levels[GW_CLASS_ALARM][0].ncontacts, 1);
    assert_int_equal(cfg->escalation.levels[GW_CLASS_ALARM][0].contacts[0], 0);
    assert_int_equal(cfg->escalation.nlevels[GW_CLASS_SUPERVISORY], 0);
    assert_true(cfg->selftest.enabled);
    assert_int_equal(cfg->selftest.at_min, 180);
    free(want);
    gw_config_free(cfg);
    free(out);
    free(path);
}

/* ---- bad fixtures ------------------------------------------------------ */

struct bad_case {
    const char *file;
    const char *want; /* '@' stands for the path as passed */
};

static const struct bad_case bad_cases[] = {
    {"bad_syntax", "@:3: syntax error\n"},
    {"bad_unknown_top", "@:8: colour: unknown key\n"},
    {"bad_unknown_nested", "@:6: sensors[0].colour: unknown key\n"},
    {"bad_unknown_location", "@:6: sensors[0].location.room: unknown key\n"},
    {"bad_type_port", "@:8: hub.port: expected an integer, got a string\n"},
    {"bad_type_float_for_int", "@:6: sensors[0].interval_s: expected an integer, got a float\n"},
    {"bad_type_section", "@:7: rules: expected a list ( ... ), got a group\n"},
    {"bad_missing_school", "@:2: site: missing required key \"school\"\n"},
    {"bad_missing_state_dir", "@:1: missing required key \"state_dir\"\n"},
    {"bad_missing_sensor_kind", "@:6: sensors[0]: missing required key \"kind\"\n"},
    {"bad_empty_string", "@:3: state_dir: must not be empty\n"},
    {"bad_port_range", "@:8: hub.port: 70000 is out of range 1..65535\n"},
    {"bad_unit_id_range", "@:6: sensors[0].unit_id: 248 is out of range 0..247\n"},
    {"bad_unit_id_zero_rtu",
     "@:6: sensors[0].unit_id: 0 is the RTU broadcast address; use 1..247\n"},
    {"bad_baud", "@:4: modbus[0].baud: 9601 is not a standard rate (300 600 1200 2400 4800 9600 "
                 "19200 38400 57600 115200 230400)\n"},
    {"bad_baud_on_tcp", "@:4: modbus[0].baud: only for rtu buses\n"},
    {"bad_parity", "@:4: modbus[0].parity: \"X\" is not one of N, E, O\n"},
    {"bad_interval", "@:6: sensors[0].interval_s: 0 is out of range 1..86400\n"},
    {"bad_timeout", "@:4: modbus[0].timeout_ms: 5 is out of range 10..60000\n"},
    {"bad_address", "@:5: profiles.p.points[0].address: 65536 is out of range 0..65535\n"},
    {"bad_address_32bit", "@:5: profiles.p.points[0].address: a 32-bit value needs two "
                          "registers; 65535 is the last\n"},
    {"bad_off_delay", "@:7: rules[0].off_delay_s: -1 is out of range 0..86400\n"},
    {"bad_dup_sensor", "@:8: sensors[1].id: duplicate sensor id \"h1\" (first at line 7)\n"},
    {"bad_dup_bus", "@:6: modbus[1].name: duplicate bus name \"plc\" (first at line 5)\n"},
    {"bad_dup_rule", "@:9: rules[1].name: duplicate rule name \"low\" (first at line 8)\n"},
    {"bad_dup_slug", "@:9: rules[1].name: \"pressure  LOW!\" has the same slug \"pressure-low\" "
                     "as \"Pressure low\" (line 8); alarm keys would collide\n"},
    {"bad_slug_empty", "@:7: rules[0].name: \"!!!\" has no letters or digits for a slug\n"},
    {"bad_unknown_profile", "@:6: sensors[0].profile: unknown profile \"hydrant_x\"\n"},
    {"bad_unknown_bus", "@:6: sensors[0].modbus: unknown bus \"rs485-9\"\n"},
    {"bad_no_unit_id", "@:6: sensors[0]: missing required key \"unit_id\"\n"},
    {"bad_codec_on_modbus",
     "@:6: sensors[0].profile: \"p\" is a layout codec profile, not a Modbus profile\n"},
    {"bad_no_binding", "@:6: sensors[0]: needs modbus = \"<bus name>\"\n"},
    {"bad_two_bindings", "@:6: sensors[0]: give one of modbus, lora, mqtt\n"},
    {"bad_unknown_schedule", "@:7: rules[0].during: unknown schedule \"lunch\"\n"},
    {"bad_unknown_rule_sensor", "@:7: rules[0].sensor: unknown sensor \"h9\"\n"},
    {"bad_rule_sensor_kind", "@:7: rules[0].sensor: \"h1\" is of kind \"hydrant\", not "
                             "\"smoke\"\n"},
    {"bad_rule_point",
     "@:7: rules[0].point: no profile of the \"hydrant\" sensors has a point \"presure\"\n"},
    {"bad_missing_point", "@:7: rules[0]: missing required key \"point\"\n"},
    {"bad_offline_point", "@:7: rules[0].point: an offline_after rule watches the whole sensor; "
                          "remove point\n"},
    {"bad_no_condition", "@:7: rules[0]: no condition; give one of above, below, equals, "
                         "rate_above, rate_below, offline_after\n"},
    {"bad_two_conditions", "@:7: rules[0]: above and below conflict; a rule has one condition "
                           "(write one rule per condition)\n"},
    {"bad_equals_above", "@:8: rules[0]: equals and above conflict; a rule has one condition "
                         "(write one rule per condition)\n"},
    {"bad_equals_long", "@:7: rules[0].equals: a string value must be 1..31 bytes\n"},
    {"bad_equals_string_modbus",
     "@:7: rules[0].equals: Modbus points are numbers or true/false unless the point has an "
     "enum; a string never matches\n"},
    {"bad_enum_f32",
     "@:5: profiles.p.points[0].enum: needs an integer type (u16, s16, u32, s32)\n"},
    {"bad_enum_scaled",
     "@:5: profiles.p.points[0].enum: not with scale/offset or a 4-20 mA span\n"},
    {"bad_enum_numbers", "@:5: profiles.p.points[0].enum: expected an array of strings [ \"a\", "
                         "\"b\" ], got an array [ ... ]\n"},
    {"bad_deadband", "@:7: rules[0].deadband: -0.02 is negative\n"},
    {"bad_threshold_inf", "@:7: rules[0].above: must be a finite number\n"},
    {"bad_alarm_delay",
     "@:7: rules[0].on_delay_s: 10 s would delay a fire alarm; GB 26875.1 allows 10 s to pass "
     "an alarm on, so an alarm-class rule may wait at most 5 s\n"},
    {"bad_offline_after", "@:7: rules[0].offline_after: 0 is out of range 1..1000000\n"},
    {"bad_missing_class", "@:7: rules[0]: missing required key \"class\"\n"},
    {"bad_bad_class",
     "@:7: rules[0].class: \"critical\" is not one of alarm, supervisory, trouble\n"},
    {"bad_raw_span", "@:5: profiles.p.points[0].raw_max: must be above raw_min (20000 >= 4000)\n"},
    {"bad_partial_span",
     "@:5: profiles.p.points[0]: a 4-20 mA span needs all of raw_min, raw_max, min, max\n"},
    {"bad_span_with_scale", "@:5: profiles.p.points[0].scale: not with raw_min/raw_max/min/max "
                            "(give one or the other)\n"},
    {"bad_coil_type",
     "@:5: profiles.p.points[0].type: a coil table holds bits; type must be bool\n"},
    {"bad_word_order_16bit",
     "@:5: profiles.p.points[0].word_order: only for 32-bit types (u32, s32, f32)\n"},
    {"bad_empty_points", "@:5: profiles.p.points: a Modbus profile needs at least one point\n"},
    {"bad_time", "@:8: schedules.day.from: bad time \"25:00\" (HH:MM, 00:00..23:59)\n"},
    {"bad_time_24_from", "@:8: schedules.day.from: bad time \"24:00\" (HH:MM, 00:00..23:59)\n"},
    {"bad_days", "@:8: schedules.day.days: bad days \"mon,funday\" (use sun..sat, ranges like "
                 "mon-fri, lists like sat,sun, or daily)\n"},
    {"bad_same_from_to", "@:8: schedules.day: from and to are equal, an empty window (use 00:00 "
                         "to 24:00 for all day)\n"},
    {"bad_district", "@:2: site.district: \"hai dian\" may only hold A-Z a-z 0-9 _ - (it is an "
                     "MQTT topic level)\n"},
    {"bad_sensor_id", "@:6: sensors[0].id: \"A/1\" must be 1..47 of A-Z a-z 0-9 _ . - (it is an "
                      "MQTT topic level)\n"},
    {"bad_topic_prefix", "@:8: hub.topic_prefix: \"campus/#\" must not hold + or # nor start, "
                         "end or repeat '/'\n"},
    {"bad_language", "@:2: site.language: \"fr\" is not one of zh-CN, en\n"},
    {"bad_timezone", "@:2: site.timezone: \"Mars/Olympus_Mons\" is not a time zone under "
                     "/usr/share/zoneinfo\n"},
    {"bad_timezone_dotdot", "@:2: site.timezone: \"../zoneinfo/UTC\" is not a time zone under "
                            "/usr/share/zoneinfo\n"},
    {"bad_tcp_port", "@:4: modbus[0].tcp: bad port \"50x2\" in \"127.0.0.1:50x2\" (1..65535)\n"},
    {"bad_rtu_and_tcp", "@:4: modbus[0].tcp: give rtu or tcp, not both\n"},
    {"bad_no_transport", "@:4: modbus[0]: needs rtu = \"/dev/...\" or tcp = \"host:port\"\n"},
    {"bad_password_both", "@:9: hub.password_file: give password or password_file, not both\n"},
    {"bad_password_no_user", "@:8: hub.password: needs username too\n"},
    {"bad_password_file_missing", "@:8: hub.password_file: cannot read \"/nonexistent/secret\": "
                                  "No such file or directory\n"},
    {"bad_hub_tls_ca", "@:8: hub.tls.ca_file: cannot read \"/nonexistent/ca.crt\": No such file "
                       "or directory\n"},
    {"bad_later_section_still_checks_rest",
     "@:9: hazards: expected a group { ... }, got an integer\n"
     "@:10: hub.colour: unknown key\n"},
    /* store */
    {"bad_store_range", "@:4: store.commit_ms: 5 is out of range 10..60000\n"
                        "@:4: store.commit_records: 100001 is out of range 1..100000\n"
                        "@:4: store.max_mb: 0 is out of range 1..1048576\n"},
    {"bad_store_unknown", "@:4: store.max_gb: unknown key\n"},
    {"bad_store_type", "@:4: store: expected a group { ... }, got an integer\n"},
    /* uplink: the hub's parser, named uplink */
    {"bad_uplink_no_host", "@:4: uplink: missing required key \"host\"\n"},
    {"bad_uplink_tls_unknown", "@:5: uplink.tls.colour: unknown key\n"},
    {"bad_uplink_max_inflight", "@:4: uplink.max_inflight: 0 is out of range 1..65535\n"},
    {"bad_uplink_topic_prefix", "@:4: uplink.topic_prefix: \"/campus\" must not hold + or # nor "
                                "start, end or repeat '/'\n"},
    {"bad_uplink_password_no_user", "@:4: uplink.password: needs username too\n"},
    {"bad_uplink_tls_ca", "@:4: uplink.tls.ca_file: cannot read \"/nonexistent/ca.crt\": No "
                          "such file or directory\n"},
    /* influx */
    {"bad_influx_no_url", "@:4: influx: missing required key \"url\"\n"},
    {"bad_influx_url_scheme",
     "@:4: influx.url: \"ftp://127.0.0.1:8086\" must start with http:// or https://\n"},
    {"bad_influx_url_query", "@:4: influx.url: \"http://127.0.0.1:8086/write?db=campus\" must not "
                             "hold a query string (?...); give database, org and bucket as keys\n"},
    {"bad_influx_no_flavour",
     "@:4: influx: needs database (InfluxDB 1.x) or org, bucket and token (2.x)\n"},
    {"bad_influx_db_and_org", "@:5: influx.org: an InfluxDB 2.x key; not with database (1.x)\n"},
    {"bad_influx_v1_key_in_v2",
     "@:5: influx.username: an InfluxDB 1.x key; not with org, bucket and token (2.x)\n"
     "@:6: influx.retention_policy: an InfluxDB 1.x key; not with org, bucket and token (2.x)\n"},
    {"bad_influx_org_no_bucket", "@:4: influx: missing required key \"bucket\"\n"},
    {"bad_influx_no_token", "@:4: influx: missing required key \"token\" or \"token_file\"\n"},
    {"bad_influx_token_both", "@:6: influx.token_file: give token or token_file, not both\n"},
    {"bad_influx_token_file_missing", "@:5: influx.token_file: cannot read \"/nonexistent/token\": "
                                      "No such file or directory\n"},
    {"bad_influx_token_empty", "@:4: influx.token: must not be empty\n"},
    {"bad_influx_user_no_password", "@:4: influx.username: needs password or password_file too\n"},
    {"bad_influx_password_no_user",
     "@:5: influx.password_file: cannot read \"/nonexistent/secret\": "
     "No such file or directory\n"
     "@:5: influx.password_file: needs username too\n"},
    {"bad_influx_batch_zero", "@:4: influx.batch_size: 0 is out of range 1..100000\n"},
    {"bad_influx_flush_range", "@:4: influx.flush_ms: 60001 is out of range 10..60000\n"},
    {"bad_influx_timeout_range", "@:4: influx.timeout_ms: 99 is out of range 100..300000\n"},
    {"bad_influx_unknown_key", "@:5: influx.colour: unknown key\n"},
    {"bad_influx_type", "@:4: influx.batch_size: expected an integer, got a string\n"},
    {"bad_influx_gzip_type", "@:4: influx.gzip: expected true or false, got an integer\n"},
    {"bad_influx_ca_missing", "@:4: influx.ca_file: cannot read \"/nonexistent/ca.crt\": No such "
                              "file or directory\n"},
    /* lora section ('$' is the fixtures' directory) */
    {"bad_lora_region", "@:4: lora.region: \"EU433\" is not one of EU868, US915, CN470, AS923, "
                        "AU915, KR920, IN865\n"},
    {"bad_lora_listen",
     "@:4: lora.listen: \"localhost\" in \"localhost:1700\" is not an IPv4 address\n"},
    {"bad_lora_listen_port",
     "@:4: lora.listen: \"0.0.0.0\" is not address:port (e.g. "
     "\"0.0.0.0:1700\"; an IPv6 address goes in brackets: \"[::]:1700\")\n"},
    {"bad_lora_ranges", "@:4: lora.dedup_ms: 5001 is out of range 0..5000\n"
                        "@:4: lora.forwarder_offline_s: 5 is out of range 10..86400\n"
                        "@:5: lora.colour: unknown key\n"},
    /* LoRa sensors */
    {"bad_dev_addr",
     "@:6: sensors[0].lora.dev_addr: \"26011BD\" is not 8 hex digits (e.g. \"26011BDA\")\n"},
    {"bad_key_short",
     "@:6: sensors[0].lora.nwk_s_key: must hold 32 hex digits (16 bytes), got 30 characters\n"},
    {"bad_key_nonhex", "@:6: sensors[0].lora.app_s_key: must hold 32 hex digits (16 bytes), got a "
                       "character other than 0-9 A-F\n"},
    {"bad_key_missing",
     "@:6: sensors[0].lora: missing required key \"app_s_key\" or \"app_s_key_file\"\n"},
    {"bad_dup_dev_addr", "@:8: sensors[1].lora.dev_addr: duplicate dev_addr 26011BDA (sensor "
                         "\"s1\", line 7)\n"},
    {"bad_lora_modbus_profile",
     "@:6: sensors[0].profile: \"p\" is a Modbus profile; a LoRa sensor needs a codec profile "
     "(layout, cayenne_lpp or js)\n"},
    {"bad_lora_no_section", "@:11: sensors[3].lora: needs the lora section (listen, region)\n"},
    {"bad_lora_poll_keys", "@:6: sensors[0].interval_s: only for Modbus sensors (a LoRa sensor's "
                           "period is expect_every_s)\n"
                           "@:6: sensors[0].timeout_ms: only for Modbus sensors (a LoRa sensor's "
                           "period is expect_every_s)\n"
                           "@:6: sensors[0].unit_id: only for Modbus sensors\n"},
    /* layout fields */
    {"bad_field_bool_no_bit",
     "@:4: profiles.p.fields[0]: type bool needs bit (0..7, the bit of the byte)\n"},
    {"bad_field_bit_u16", "@:5: profiles.p.fields[0].bit: only with type bool\n"},
    {"bad_field_bit_range", "@:4: profiles.p.fields[0].bit: 8 is out of range 0..7\n"},
    {"bad_field_beyond_242", "@:4: profiles.p.fields[0].byte: a u32be at byte 239 ends past byte "
                             "241; a LoRaWAN payload holds at most 242 bytes\n"},
    {"bad_field_byte_range", "@:4: profiles.p.fields[0].byte: 242 is out of range 0..241\n"},
    {"bad_field_mask_signed", "@:4: profiles.p.fields[0].mask: only with unsigned integer types "
                              "(u8, u16be, u16le, u32be, u32le)\n"},
    {"bad_field_mask_range",
     "@:4: profiles.p.fields[0].mask: 0x100 does not fit a u8 (0x1..0xFF)\n"},
    {"bad_field_enum_scale",
     "@:5: profiles.p.fields[0].enum: not with scale/offset (the raw value is the index)\n"},
    {"bad_field_enum_float", "@:4: profiles.p.fields[0].enum: needs an integer type (u8, s8, "
                             "u16be, ... s32le), not f32be\n"},
    {"bad_field_type", "@:4: profiles.p.fields[0].type: \"u24be\" is not one of u8, s8, u16be, "
                       "u16le, s16be, s16le, u32be, u32le, s32be, s32le, f32be, f32le, bool\n"},
    {"bad_field_no_type", "@:4: profiles.p.fields[0]: missing required key \"type\"\n"},
    {"bad_field_dup", "@:5: profiles.p.fields[1].name: duplicate field name \"x\" (first at line "
                      "4; give both an fport to read them from different frames)\n"},
    {"bad_field_name",
     "@:4: profiles.p.fields[0].name: \"bat tery\" must be 1..47 of A-Z a-z 0-9 _ . -\n"},
    {"bad_field_fport", "@:4: profiles.p.fields[0].fport: 224 is out of range 1..223\n"},
    {"bad_fields_empty", "@:4: profiles.p.fields: a layout profile needs at least one field\n"},
    {"bad_fields_missing", "@:4: profiles.p: missing required key \"fields\"\n"},
    {"bad_codec_keys",
     "@:5: profiles.a.fields: only with codec = \"layout\"\n"
     "@:6: profiles.b.script: only with codec = \"js\"\n"
     "@:8: profiles.c.codec: \"lorax\" is not one of layout, cayenne_lpp, js, json\n"
     "@:8: profiles.c.colour: unknown key\n"},
    {"bad_rule_point_layout",
     "@:7: rules[0].point: no profile of the \"smoke\" sensors has a point \"smok\"\n"},
    {"bad_equals_string_layout",
     "@:7: rules[0].equals: layout fields are numbers or true/false unless the point has an "
     "enum; a string never matches\n"},
    /* js codec: compiled and checked at load */
    {"bad_js_missing", "@:4: profiles.v.script: cannot read \"$/codecs/nonexistent.js\": No "
                       "such file or directory\n"},
    {"bad_js_no_script", "@:4: profiles.v: missing required key \"script\"\n"},
    {"bad_js_arrow", "@:4: profiles.v.script: $/js_arrow.js:3: arrow function (=>) is ES6; use "
                     "function (ES5.1 only)\n"},
    {"bad_js_nofunc", "@:4: profiles.v.script: $/js_nofunc.js: ReferenceError: defines neither "
                      "decodeUplink(input) (TTN), Decode(fPort, bytes, variables) (ChirpStack) "
                      "nor Decoder(bytes, fPort)\n"},
    {"bad_js_examples",
     "@:5: profiles.vendor_y.examples: example 2 (vendor says 26 degrees): temperature: "
     "expected 26, got 25\n"
     "@:5: profiles.vendor_y.examples: example 3 (short frame decodes): decode failed: "
     "$/codecs/vendor_y.js: decodeUplink returned errors: payload too short\n"},
};

static void test_bad_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        char rel[128];
        snprintf(rel, sizeof(rel), "config/%s.cfg", bad_cases[i].file);
        char *path = data_path(rel);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        char *want = expand(bad_cases[i].want, path);
        if (cfg || strcmp(out, want) != 0) {
            print_error("case %s:\n got: %s want: %s", bad_cases[i].file, out, want);
        }
        assert_null(cfg);
        assert_string_equal(out, want);
        free(want);
        free(out);
        free(path);
    }
}

/* Every error of a file is reported, sorted by line, not just the first. */
static void test_all_errors_reported(void **state)
{
    (void)state;
    char *path = data_path("config/bad_multi.cfg");
    char *out = NULL;
    assert_null(load(path, &out));
    char *want = expand(
        "@:2: site.district: \"d 1\" may only hold A-Z a-z 0-9 _ - (it is an MQTT topic level)\n"
        "@:2: site.language: \"fr\" is not one of zh-CN, en\n"
        "@:4: modbus[0].tcp: bad port \"0\" in \"127.0.0.1:0\" (1..65535)\n"
        "@:4: modbus[0].timeout_ms: 1 is out of range 10..60000\n"
        "@:6: sensors[0].profile: unknown profile \"nope\"\n"
        "@:6: sensors[0].unit_id: 300 is out of range 0..247\n"
        "@:8: rules[0].colour: unknown key\n"
        "@:9: rules[1].on_delay_s: 30 s would delay a fire alarm; GB 26875.1 allows 10 s to "
        "pass an alarm on, so an alarm-class rule may wait at most 5 s\n"
        "@:11: bogus: unknown key\n",
        path);
    assert_string_equal(out, want);
    free(want);
    free(out);
    free(path);
}

static void test_missing_file(void **state)
{
    (void)state;
    char *out = NULL;
    assert_null(load("/nonexistent/campusgw.cfg", &out));
    assert_string_equal(out, "/nonexistent/campusgw.cfg: cannot open: No such file or directory\n");
    free(out);
    /* errors may be NULL */
    assert_null(gw_config_load("/nonexistent/campusgw.cfg", NULL));
    char *path = data_path("config/bad_multi.cfg");
    assert_null(gw_config_load(path, NULL));
    free(path);
}

/* ---- table-driven: schedules and tcp addresses through real files ------ */

static void test_schedule_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *days, *from, *to;
        int want_days; /* -1: error expected */
        int from_min, to_min;
        const char *err;
    } cases[] = {
        {"mon-fri", "07:00", "18:00", 0x3e, 420, 1080, NULL},
        {"sat,sun", "00:00", "24:00", 0x41, 0, 1440, NULL},
        {"mon-wed,fri", "7:05", "23:59", 0x2e, 425, 1439, NULL},
        {"daily", "22:00", "06:00", 0x7f, 1320, 360, NULL},
        {"all", "23:59", "00:00", 0x7f, 1439, 0, NULL},
        {"SUN", "00:00", "00:01", 0x01, 0, 1, NULL},
        {"sat-mon", "01:00", "02:00", 0x43, 60, 120, NULL},
        {"mon-mon", "01:00", "02:00", 0x02, 60, 120, NULL},
        {" mon , tue ", "01:00", "02:00", 0x06, 60, 120, NULL},
        {"funday", "07:00", "08:00", -1, 0, 0, "days: bad days \"funday\""},
        {"mon,", "07:00", "08:00", -1, 0, 0, "days: bad days \"mon,\""},
        {"", "07:00", "08:00", -1, 0, 0, "days: bad days \"\""},
        {"mon-", "07:00", "08:00", -1, 0, 0, "days: bad days \"mon-\""},
        {"monday", "07:00", "08:00", -1, 0, 0, "days: bad days \"monday\""},
        {"daily,mon", "07:00", "08:00", -1, 0, 0, "days: bad days \"daily,mon\""},
        {"mon", "25:00", "08:00", -1, 0, 0, "from: bad time \"25:00\""},
        {"mon", "07:60", "08:00", -1, 0, 0, "from: bad time \"07:60\""},
        {"mon", "7:0", "08:00", -1, 0, 0, "from: bad time \"7:0\""},
        {"mon", "07:00:00", "08:00", -1, 0, 0, "from: bad time \"07:00:00\""},
        {"mon", "0700", "08:00", -1, 0, 0, "from: bad time \"0700\""},
        {"mon", "07:00", "24:01", -1, 0, 0, "to: bad time \"24:01\""},
        {"mon", "07:00", "-1:00", -1, 0, 0, "to: bad time \"-1:00\""},
        {"mon", "07:00", "", -1, 0, 0, "to: bad time \"\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpdir t;
        tmp_init(&t);
        char text[512];
        snprintf(text, sizeof(text),
                 BASE_HEAD "schedules = { s = { days = \"%s\"; from = \"%s\"; to = \"%s\"; }; };\n",
                 cases[i].days, cases[i].from, cases[i].to);
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        if (cases[i].want_days >= 0) {
            if (!cfg) {
                print_error("case %zu: %s", i, out);
            }
            assert_non_null(cfg);
            assert_int_equal(cfg->schedules[0].days, cases[i].want_days);
            assert_int_equal(cfg->schedules[0].from_min, cases[i].from_min);
            assert_int_equal(cfg->schedules[0].to_min, cases[i].to_min);
            assert_int_equal(cfg->schedules[0].line, 3);
        } else {
            assert_null(cfg);
            char want[256];
            snprintf(want, sizeof(want), "%s:3: schedules.s.%s", path, cases[i].err);
            if (strncmp(out, want, strlen(want)) != 0) {
                print_error("case %zu: got %s want %s\n", i, out, want);
            }
            assert_memory_equal(out, want, strlen(want));
            assert_non_null(strchr(out, '\n'));
            assert_string_equal(strchr(out, '\n'), "\n"); /* exactly one line */
        }
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

static void test_tcp_address(void **state)
{
    (void)state;
    static const struct {
        const char *tcp;
        const char *host; /* NULL: error */
        int port;
        const char *err;
    } cases[] = {
        {"127.0.0.1:1502", "127.0.0.1", 1502, NULL},
        {"plc.local", "plc.local", 502, NULL},
        {"plc:1", "plc", 1, NULL},
        {"plc:65535", "plc", 65535, NULL},
        {"[::1]:1503", "::1", 1503, NULL},
        {"[fe80::1]", "fe80::1", 502, NULL},
        {"::1", "::1", 502, NULL},
        {"plc:65536", NULL, 0, "bad port \"65536\" in \"plc:65536\" (1..65535)"},
        {"plc:0", NULL, 0, "bad port \"0\" in \"plc:0\" (1..65535)"},
        {"plc:", NULL, 0, "bad port \"\" in \"plc:\" (1..65535)"},
        {"plc:+5", NULL, 0, "bad port \"+5\" in \"plc:+5\" (1..65535)"},
        {"plc: 5", NULL, 0, "bad port \" 5\" in \"plc: 5\" (1..65535)"},
        {"plc:99999999999999999999", NULL, 0,
         "bad port \"99999999999999999999\" in \"plc:99999999999999999999\" (1..65535)"},
        {":502", NULL, 0, "\":502\" has no host"},
        {"[]:502", NULL, 0, "\"[]:502\" has no host"},
        {"[::1]x", NULL, 0, "\"[::1]x\" is not host:port"},
        {"[::1", NULL, 0, "\"[::1\" is not host:port"},
        {"", NULL, 0, "must not be empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpdir t;
        tmp_init(&t);
        char text[512];
        snprintf(text, sizeof(text), BASE_HEAD "modbus = ( { name = \"b\"; tcp = \"%s\"; } );\n",
                 cases[i].tcp);
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        if (cases[i].host) {
            if (!cfg) {
                print_error("case %s: %s", cases[i].tcp, out);
            }
            assert_non_null(cfg);
            assert_string_equal(cfg->buses[0].host, cases[i].host);
            assert_int_equal(cfg->buses[0].port, cases[i].port);
        } else {
            assert_null(cfg);
            char want[256];
            snprintf(want, sizeof(want), "%s:3: modbus[0].tcp: %s\n", path, cases[i].err);
            assert_string_equal(out, want);
        }
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

/* ---- secrets ----------------------------------------------------------- */

static void test_password_file(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    const char *secret = tmp_write(&t, "hub.password", "hunter2\r\n\n", 0644);
    char text[512];
    snprintf(text, sizeof(text),
             BASE_HEAD "hub = { username = \"gw\";\n        password_file = \"%s\"; };\n", secret);
    const char *path = tmp_write(&t, "c.cfg", text, 0600);

    /* group/world readable: loads, with a warning that never shows the secret */
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    assert_string_equal(cfg->hub.password, "hunter2");
    assert_string_equal(cfg->hub.username, "gw");
    char want[512];
    snprintf(want, sizeof(want),
             "warning: %s:4: hub.password_file: \"%s\" is readable by group or others (mode "
             "0644); chmod 600 it\n",
             path, secret);
    assert_string_equal(out, want);
    assert_null(strstr(out, "hunter2"));
    gw_config_free(cfg);
    free(out);

    /* 0600: no warning */
    assert_int_equal(chmod(secret, 0600), 0);
    cfg = load(path, &out);
    assert_non_null(cfg);
    assert_string_equal(out, "");
    assert_string_equal(cfg->hub.password, "hunter2");
    gw_config_free(cfg);
    free(out);

    /* 0640: group-readable is warned about too */
    assert_int_equal(chmod(secret, 0640), 0);
    cfg = load(path, &out);
    assert_non_null(cfg);
    assert_non_null(strstr(out, "(mode 0640)"));
    gw_config_free(cfg);
    free(out);
    tmp_cleanup(&t);
}

static void test_password_file_errors(void **state)
{
    (void)state;
    static const struct {
        const char *content; /* NULL: the path is a directory */
        const char *err;
    } cases[] = {
        {"\n", "is empty"},
        {"", "is empty"},
        {NULL, "cannot read"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpdir t;
        tmp_init(&t);
        const char *secret = cases[i].content ? tmp_write(&t, "pw", cases[i].content, 0600) : t.dir;
        char text[512];
        snprintf(text, sizeof(text),
                 BASE_HEAD "hub = { username = \"gw\"; password_file = \"%s\"; };\n", secret);
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        char *out = NULL;
        assert_null(load(path, &out));
        char want[512];
        if (cases[i].content) {
            snprintf(want, sizeof(want), "%s:3: hub.password_file: \"%s\" is empty\n", path,
                     secret);
        } else {
            snprintf(want, sizeof(want),
                     "%s:3: hub.password_file: cannot read \"%s\": Is a directory\n", path, secret);
        }
        assert_string_equal(out, want);
        free(out);
        tmp_cleanup(&t);
    }

    /* an oversized file is refused without echoing it */
    struct tmpdir t;
    tmp_init(&t);
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'x', 4999);
    big[4999] = '\0';
    const char *secret = tmp_write(&t, "pw", big, 0600);
    free(big);
    char text[512];
    snprintf(text, sizeof(text),
             BASE_HEAD "hub = { username = \"gw\"; password_file = \"%s\"; };\n", secret);
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    char *out = NULL;
    assert_null(load(path, &out));
    char want[512];
    snprintf(want, sizeof(want), "%s:3: hub.password_file: \"%s\" is longer than 4096 bytes\n",
             path, secret);
    assert_string_equal(out, want);
    free(out);
    tmp_cleanup(&t);
}

static void test_tls(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    const char *ca = tmp_write(&t, "ca.crt", "CA\n", 0644);
    const char *cert = tmp_write(&t, "gw.crt", "CERT\n", 0644);
    const char *key = tmp_write(&t, "gw.key", "KEY\n", 0644);
    char text[1024];
    snprintf(text, sizeof(text),
             BASE_HEAD "hub = { tls = { ca_file = \"%s\"; cert_file = \"%s\";\n"
                       "    key_file = \"%s\"; insecure = true; }; };\n",
             ca, cert, key);
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    char want[1024];
    snprintf(want, sizeof(want),
             "warning: %s:4: hub.tls.key_file: \"%s\" is readable by group or others (mode "
             "0644); chmod 600 it\n",
             path, key);
    assert_string_equal(out, want);
    assert_string_equal(cfg->hub.tls.ca_file, ca);
    assert_string_equal(cfg->hub.tls.cert_file, cert);
    assert_string_equal(cfg->hub.tls.key_file, key);
    assert_true(cfg->hub.tls.insecure);
    assert_int_equal(cfg->hub.port, 8883); /* the TLS default */
    gw_config_free(cfg);
    free(out);

    /* cert without key */
    snprintf(text, sizeof(text),
             BASE_HEAD "hub = { tls = { ca_file = \"%s\"; cert_file = \"%s\"; }; };\n", ca, cert);
    path = tmp_write(&t, "c2.cfg", text, 0600);
    assert_null(load(path, &out));
    snprintf(want, sizeof(want), "%s:3: hub.tls.cert_file: needs key_file too\n", path);
    assert_string_equal(out, want);
    free(out);

    /* tls without ca_file */
    path = tmp_write(&t, "c3.cfg", BASE_HEAD "hub = { tls = { insecure = false; }; };\n", 0600);
    assert_null(load(path, &out));
    snprintf(want, sizeof(want), "%s:3: hub.tls: missing required key \"ca_file\"\n", path);
    assert_string_equal(out, want);
    free(out);
    tmp_cleanup(&t);
}

/* ---- store, uplink, influx -------------------------------------------- */

/* The summary of cfg (caller frees). */
static char *summary(const struct gw_config *cfg)
{
    char *sum = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sum, &len);
    assert_non_null(f);
    gw_config_print_summary(cfg, f);
    fclose(f);
    return sum;
}

static void test_influx_url(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        const char *want; /* the stored url; NULL: error */
        const char *err;
    } cases[] = {
        {"http://127.0.0.1:8086", "http://127.0.0.1:8086", NULL},
        {"http://127.0.0.1:8086/", "http://127.0.0.1:8086", NULL},
        {"https://influx.example//", "https://influx.example", NULL},
        {"https://proxy.example/influx/", "https://proxy.example/influx", NULL}, /* base path */
        {"HTTP://db:1", "HTTP://db:1", NULL},
        {"http://db:65535", "http://db:65535", NULL},
        {"http://[::1]:8086/", "http://[::1]:8086", NULL},
        {"http://[fe80::1]", "http://[fe80::1]", NULL},
        {"http://db/a@b", "http://db/a@b", NULL}, /* '@' in the path is not a user */
        {"ftp://db", NULL, "\"ftp://db\" must start with http:// or https://"},
        {"127.0.0.1:8086", NULL, "\"127.0.0.1:8086\" must start with http:// or https://"},
        {"http:/db", NULL, "\"http:/db\" must start with http:// or https://"},
        {"http://", NULL, "\"http://\" has no host"},
        {"http:///write", NULL, "\"http:///write\" has no host"},
        {"http://:8086", NULL, "\"http://:8086\" has no host"},
        {"http://[]:8086", NULL, "\"http://[]:8086\" has no host"},
        {"http://db:0", NULL, "bad port \"0\" in \"http://db:0\" (1..65535)"},
        {"http://db:65536", NULL, "bad port \"65536\" in \"http://db:65536\" (1..65535)"},
        {"http://db:", NULL, "bad port \"\" in \"http://db:\" (1..65535)"},
        {"http://db:80x/", NULL, "bad port \"80x\" in \"http://db:80x/\" (1..65535)"},
        {"http://db:000008086", NULL,
         "bad port \"000008086\" in \"http://db:000008086\" (1..65535)"},
        {"http://[::1", NULL, "\"http://[::1\" has a bad [IPv6] address"},
        {"http://[::1]x", NULL, "\"http://[::1]x\" has a bad [IPv6] address"},
        {"http://db/?db=x", NULL,
         "\"http://db/?db=x\" must not hold a query string (?...); give database, org and "
         "bucket as keys"},
        {"http://db/#x", NULL,
         "\"http://db/#x\" must not hold a query string (?...); give database, org and bucket "
         "as keys"},
        {"http://gw:pw@db", NULL,
         "\"http://gw:pw@db\" must not hold user:password@; use username and password"},
        {"http://db 1", NULL, "\"http://db 1\" must not hold spaces or control characters"},
        {"http://db\t", NULL, "\"http://db\t\" must not hold spaces or control characters"},
        {"", NULL, "must not be empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpdir t;
        tmp_init(&t);
        char text[512];
        snprintf(text, sizeof(text), BASE_HEAD "influx = { url = \"%s\"; database = \"c\"; };\n",
                 cases[i].url);
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        if (cases[i].want) {
            if (!cfg || strcmp(out, "") != 0) {
                print_error("case %s: %s", cases[i].url, out);
            }
            assert_non_null(cfg);
            assert_string_equal(out, "");
            assert_string_equal(cfg->influx.url, cases[i].want);
        } else {
            assert_null(cfg);
            char want[512];
            snprintf(want, sizeof(want), "%s:3: influx.url: %s\n", path, cases[i].err);
            assert_string_equal(out, want);
        }
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

/* Credentials over plain http:// to anything but loopback give a warning. */
static void test_influx_clear_text(void **state)
{
    (void)state;
    static const char v1[] = "database = \"c\"; username = \"gw\"; password = \"pw\";";
    static const char v2[] = "org = \"o\"; bucket = \"b\"; token = \"t0k3n-V2\";";
    static const struct {
        const char *url;
        const char *keys;
        const char *secret; /* NULL: no warning */
    } cases[] = {
        {"http://127.0.0.1:8086", v1, NULL},
        {"http://127.1.2.3:8086", v2, NULL},
        {"http://localhost:8086", v1, NULL},
        {"http://LocalHost", v2, NULL},
        {"http://[::1]:8086", v2, NULL},
        {"https://influx.example", v1, NULL},
        {"https://10.0.0.5:8086", v2, NULL},
        {"http://influx.example", "database = \"c\";", NULL}, /* nothing to leak */
        {"http://influx.example:8086", v1, "password"},
        {"http://10.0.0.5:8086", v2, "token"},
        {"http://127.evil.example", v2, "token"},
        {"http://localhost.example", v1, "password"},
        {"http://[::2]", v1, "password"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpdir t;
        tmp_init(&t);
        char text[512];
        snprintf(text, sizeof(text), BASE_HEAD "influx = { url = \"%s\"; %s };\n", cases[i].url,
                 cases[i].keys);
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        if (!cfg) {
            print_error("case %s: %s", cases[i].url, out);
        }
        assert_non_null(cfg);
        if (cases[i].secret) {
            char want[512];
            snprintf(want, sizeof(want),
                     "warning: %s:3: influx.url: \"%s\" is http:// to a host that is not "
                     "loopback; the %s would cross the network in clear text (use https://)\n",
                     path, cases[i].url, cases[i].secret);
            assert_string_equal(out, want);
        } else {
            if (strcmp(out, "") != 0) {
                print_error("case %s: %s", cases[i].url, out);
            }
            assert_string_equal(out, "");
        }
        assert_null(strstr(out, "\"pw\""));
        assert_null(strstr(out, "t0k3n"));
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

/* 2.x with token_file and ca_file; insecure warns; secrets never printed. */
static void test_influx_v2_files(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    const char *token = tmp_write(&t, "influx.token", "t0k3n-SECRET\r\n", 0644);
    const char *ca = tmp_write(&t, "ca.crt", "CA\n", 0644);
    char text[1024];
    snprintf(text, sizeof(text),
             BASE_HEAD "influx = { url = \"https://influx.example:8086/\";\n"
                       "    org = \"haidian\"; bucket = \"campus\";\n"
                       "    token_file = \"%s\";\n"
                       "    ca_file = \"%s\";\n"
                       "    insecure = true; };\n",
             token, ca);
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    char want[1024];
    snprintf(want, sizeof(want),
             "warning: %s:5: influx.token_file: \"%s\" is readable by group or others (mode "
             "0644); chmod 600 it\n"
             "warning: %s:7: influx.insecure: certificate checks are off; use it only for tests\n",
             path, token, path);
    assert_string_equal(out, want);
    assert_null(strstr(out, "t0k3n"));
    const struct gw_influx_cfg *x = &cfg->influx;
    assert_true(x->enabled);
    assert_int_equal(x->version, GW_INFLUX_V2);
    assert_string_equal(x->url, "https://influx.example:8086");
    assert_string_equal(x->org, "haidian");
    assert_string_equal(x->bucket, "campus");
    assert_string_equal(x->token, "t0k3n-SECRET"); /* CR/LF stripped */
    assert_string_equal(x->ca_file, ca);
    assert_true(x->insecure);
    assert_null(x->database);
    assert_null(x->username);
    assert_null(x->password);
    assert_int_equal(x->line, 3);
    char *sum = summary(cfg);
    assert_non_null(strstr(sum, "\ninflux: https://influx.example:8086, 2.x org=haidian "
                                "bucket=campus, token, batch 5000 lines or 1000 ms, no gzip, "
                                "timeout 10000 ms, insecure\n"));
    assert_null(strstr(sum, "t0k3n"));
    free(sum);
    gw_config_free(cfg);
    free(out);

    /* 0600 and insecure = false: no warning at all */
    assert_int_equal(chmod(token, 0600), 0);
    snprintf(text, sizeof(text),
             BASE_HEAD "influx = { url = \"https://influx.example\"; org = \"o\"; bucket = \"b\";\n"
                       "    token_file = \"%s\"; insecure = false; };\n",
             token);
    path = tmp_write(&t, "c2.cfg", text, 0600);
    cfg = load(path, &out);
    assert_non_null(cfg);
    assert_string_equal(out, "");
    assert_string_equal(cfg->influx.token, "t0k3n-SECRET");
    assert_false(cfg->influx.insecure);
    gw_config_free(cfg);
    free(out);

    /* an empty token file is refused like an empty password file */
    const char *empty = tmp_write(&t, "empty.token", "\n", 0600);
    snprintf(text, sizeof(text),
             BASE_HEAD "influx = { url = \"http://127.0.0.1:8086\"; org = \"o\"; bucket = \"b\";\n"
                       "    token_file = \"%s\"; };\n",
             empty);
    path = tmp_write(&t, "c3.cfg", text, 0600);
    assert_null(load(path, &out));
    snprintf(want, sizeof(want), "%s:4: influx.token_file: \"%s\" is empty\n", path, empty);
    assert_string_equal(out, want);
    free(out);
    tmp_cleanup(&t);
}

/* 1.x with password_file: loaded, warned about when readable, summary without the secret. */
static void test_influx_v1_password_file(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    const char *pw = tmp_write(&t, "influx.password", "s3cr3t-PW\n", 0604);
    char text[1024];
    snprintf(text, sizeof(text),
             BASE_HEAD "influx = { url = \"http://127.0.0.1:8086\"; database = \"campus\";\n"
                       "    retention_policy = \"autogen\"; username = \"gw\";\n"
                       "    password_file = \"%s\"; gzip = true; };\n",
             pw);
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    char want[1024];
    snprintf(want, sizeof(want),
             "warning: %s:5: influx.password_file: \"%s\" is readable by group or others (mode "
             "0604); chmod 600 it\n",
             path, pw);
    assert_string_equal(out, want);
    assert_string_equal(cfg->influx.password, "s3cr3t-PW");
    assert_string_equal(cfg->influx.username, "gw");
    assert_string_equal(cfg->influx.retention_policy, "autogen");
    char *sum = summary(cfg);
    assert_non_null(strstr(sum, "\ninflux: http://127.0.0.1:8086, 1.x db=campus rp=autogen, "
                                "user/password, batch 5000 lines or 1000 ms, gzip, timeout "
                                "10000 ms\n"));
    assert_null(strstr(sum, "s3cr3t"));
    free(sum);
    gw_config_free(cfg);
    free(out);

    /* password and password_file together */
    snprintf(text, sizeof(text),
             BASE_HEAD "influx = { url = \"http://127.0.0.1:8086\"; database = \"campus\";\n"
                       "    username = \"gw\"; password = \"x\"; password_file = \"%s\"; };\n",
             pw);
    path = tmp_write(&t, "c2.cfg", text, 0600);
    assert_null(load(path, &out));
    snprintf(want, sizeof(want),
             "%s:4: influx.password_file: give password or password_file, not both\n", path);
    assert_string_equal(out, want);
    free(out);
    tmp_cleanup(&t);
}

/* uplink with TLS and password_file: the hub's code, the uplink's names and defaults. */
static void test_uplink_tls(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    const char *ca = tmp_write(&t, "ca.crt", "CA\n", 0644);
    const char *cert = tmp_write(&t, "gw.crt", "CERT\n", 0644);
    const char *key = tmp_write(&t, "gw.key", "KEY\n", 0600);
    const char *pw = tmp_write(&t, "uplink.password", "upl1nk-PW\n", 0640);
    char text[1024];
    snprintf(text, sizeof(text),
             BASE_HEAD "hub = { topic_prefix = \"edu/campus\"; client_id = \"hub-only\"; };\n"
                       "uplink = { host = \"district.example\"; username = \"gw\";\n"
                       "    password_file = \"%s\";\n"
                       "    tls = { ca_file = \"%s\"; cert_file = \"%s\"; key_file = \"%s\";\n"
                       "            insecure = true; }; };\n",
             pw, ca, cert, key);
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    char want[1024];
    snprintf(want, sizeof(want),
             "warning: %s:5: uplink.password_file: \"%s\" is readable by group or others (mode "
             "0640); chmod 600 it\n",
             path, pw);
    assert_string_equal(out, want);
    assert_null(strstr(out, "upl1nk"));
    const struct gw_uplink_cfg *u = &cfg->uplink;
    assert_true(u->enabled);
    assert_string_equal(u->host, "district.example");
    assert_int_equal(u->port, 8883);                     /* the TLS default */
    assert_string_equal(u->topic_prefix, "edu/campus");  /* the hub's */
    assert_string_equal(u->client_id, "campusgw-d1-s1"); /* the default, not hub.client_id */
    assert_string_equal(u->username, "gw");
    assert_string_equal(u->password, "upl1nk-PW");
    assert_int_equal(u->keepalive_s, 30);
    assert_int_equal(u->max_inflight, 100);
    assert_string_equal(u->tls.ca_file, ca);
    assert_string_equal(u->tls.cert_file, cert);
    assert_string_equal(u->tls.key_file, key);
    assert_true(u->tls.insecure);
    assert_int_equal(u->line, 4);
    /* the hub is untouched by the uplink */
    assert_int_equal(cfg->hub.port, 1883);
    assert_null(cfg->hub.tls.ca_file);
    assert_null(cfg->hub.username);
    char *sum = summary(cfg);
    assert_non_null(strstr(sum, "\nuplink: district.example:8883, topics edu/campus/d1/s1/..., "
                                "client_id campusgw-d1-s1, TLS (insecure), user/password, 100 in "
                                "flight\n"));
    assert_null(strstr(sum, "upl1nk"));
    free(sum);
    gw_config_free(cfg);
    free(out);

    /* uplink.tls errors carry the uplink's path */
    snprintf(text, sizeof(text),
             BASE_HEAD "uplink = { host = \"d\"; tls = { ca_file = \"%s\"; cert_file = \"%s\"; "
                       "}; };\n",
             ca, cert);
    path = tmp_write(&t, "c2.cfg", text, 0600);
    assert_null(load(path, &out));
    snprintf(want, sizeof(want), "%s:3: uplink.tls.cert_file: needs key_file too\n", path);
    assert_string_equal(out, want);
    free(out);

    /* both password and password_file */
    snprintf(text, sizeof(text),
             BASE_HEAD "uplink = { host = \"d\"; username = \"gw\"; password = \"x\";\n"
                       "    password_file = \"%s\"; };\n",
             pw);
    path = tmp_write(&t, "c3.cfg", text, 0600);
    assert_null(load(path, &out));
    snprintf(want, sizeof(want),
             "%s:4: uplink.password_file: give password or password_file, not both\n", path);
    assert_string_equal(out, want);
    free(out);
    tmp_cleanup(&t);
}

static void test_summary_outbox_sections(void **state)
{
    (void)state;
    char *path = data_path("config/good_full.cfg");
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    char *sum = summary(cfg);
    assert_non_null(strstr(
        sum, "state_dir: /var/lib/campusgw-test\n"
             "store: commit every 250 ms or 1 record, max 1048576 MB\n"
             "hub: broker.local:1884, topics edu/campus/haidian/no1_middle-2/..., client_id "
             "gw-1, no TLS, user/password\n"
             "uplink: district.example:1885, topics district/campus/haidian/no1_middle-2/..., "
             "client_id gw-up-1, no TLS, user/password, 65535 in flight\n"
             "influx: https://influx.example:8087/proxy, 1.x db=campus rp=one_year, "
             "user/password, batch 100000 lines or 10 ms, gzip, timeout 300000 ms\n"
             "modbus buses: 5\n"));
    assert_null(strstr(sum, "infl0x"));
    assert_null(strstr(sum, "s3cret"));
    free(sum);
    gw_config_free(cfg);
    free(out);
    free(path);
}

/* ---- small functions --------------------------------------------------- */

static void test_slugify(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t size;
        const char *want;
    } cases[] = {
        {"Hydrant pressure LOW!", 64, "hydrant-pressure-low"},
        {"hydrant pressure low", 64, "hydrant-pressure-low"},
        {"  leading and trailing  ", 64, "leading-and-trailing"},
        {"a--b__c  d", 64, "a-b-c-d"},
        {"Exit locked (school hours)", 64, "exit-locked-school-hours"},
        {"ABC123", 64, "abc123"},
        {"消火栓 pressure", 64, "pressure"},       /* non-ASCII bytes are separators */
        {"zone 3 烟感 alarm", 64, "zone-3-alarm"}, /* ...and collapse with spaces */
        {"é", 64, ""},
        {"!!!", 64, ""},
        {"", 64, ""},
        {"abc def", 4, "abc"}, /* truncated: never ends with '-' */
        {"abc def", 5, "abc"}, /* room for '-' but not a letter after it */
        {"abc def", 6, "abc-d"},
        {"abcdef", 1, ""},
        {"ab", 3, "ab"},
        {"abc", 3, "ab"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        memset(out, '#', sizeof(out));
        gw_slugify(cases[i].name, out, cases[i].size);
        assert_string_equal(out, cases[i].want);
        assert_true(strlen(out) < cases[i].size);
    }
    char out[8] = "keep";
    gw_slugify("abc", out, 0); /* size 0 writes nothing */
    assert_string_equal(out, "keep");
    gw_slugify(NULL, out, sizeof(out));
    assert_string_equal(out, "");
}

static void test_class_names_and_lookups(void **state)
{
    (void)state;
    assert_string_equal(gw_class_name(GW_CLASS_ALARM), "alarm");
    assert_string_equal(gw_class_name(GW_CLASS_SUPERVISORY), "supervisory");
    assert_string_equal(gw_class_name(GW_CLASS_TROUBLE), "trouble");
    assert_string_equal(gw_class_name((enum gw_alarm_class)42), "unknown");

    char *path = data_path("config/good_full.cfg");
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    assert_int_equal(gw_config_find_sensor(cfg, "A-1F-hydrant-01"), 0);
    assert_int_equal(gw_config_find_sensor(cfg, "C-pump"), 2);
    assert_int_equal(gw_config_find_sensor(cfg, "c-pump"), -1); /* case matters */
    assert_int_equal(gw_config_find_sensor(cfg, ""), -1);
    assert_int_equal(gw_config_find_sensor(cfg, NULL), -1);
    assert_int_equal(gw_config_find_bus(cfg, "rs485-1"), 0);
    assert_int_equal(gw_config_find_bus(cfg, "rtu-defaults"), 4);
    assert_int_equal(gw_config_find_bus(cfg, "nope"), -1);
    assert_int_equal(gw_config_find_bus(cfg, NULL), -1);
    assert_int_equal(gw_config_find_sensor(NULL, "x"), -1);
    assert_int_equal(gw_config_find_bus(NULL, "x"), -1);
    gw_config_free(cfg);
    gw_config_free(NULL);
    free(out);
    free(path);
}

static void test_summary(void **state)
{
    (void)state;
    char *path = data_path("../../../config/campusgw.cfg");
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    char *sum = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sum, &len);
    gw_config_print_summary(cfg, f);
    fclose(f);
    assert_string_equal(
        sum,
        "site: haidian/no1-middle \"No. 1 Middle School\" (timezone Asia/Shanghai, language "
        "zh-CN)\n"
        "state_dir: /var/lib/campusgw\n"
        "store: commit every 1000 ms or 1000 records, max 512 MB\n"
        "hub: 127.0.0.1:1883, topics campus/haidian/no1-middle/..., client_id "
        "campusgw-haidian-no1-middle, no TLS, anonymous\n"
        "uplink: none\n"
        "influx: none\n"
        "modbus buses: 2\n"
        "  rs485-1: rtu /dev/ttyUSB0 9600 8N1 rs485, timeout 500 ms, 2 sensors\n"
        "  plc: tcp 127.0.0.1 port 502, timeout 1000 ms, 1 sensor\n"
        "lora: listen 0.0.0.0:1700, region CN470, dedup 200 ms, forwarder offline after "
        "120 s, 1 sensor\n"
        "profiles: 6\n"
        "  hydrant_4_20: modbus, 1 point\n"
        "  hydrant_digital: modbus, 2 points\n"
        "  exit_door_io: modbus, 2 points\n"
        "  smoke_x: layout, 2 fields\n"
        "  door_x: layout, 2 fields\n"
        "  lpp: cayenne_lpp\n"
        "sensors: 4\n"
        "  hydrant_pressure: 2\n"
        "  exit_door: 1\n"
        "  smoke: 1\n"
        "schedules: 2\n"
        "  school_hours: mon-fri 07:00-18:00\n"
        "  night: daily 22:00-06:00 (crosses midnight)\n"
        "rules: 7\n"
        "  hydrant pressure low [supervisory]: 2 sensors\n"
        "  hydrant pressure high [trouble]: 2 sensors\n"
        "  hydrant pressure falling fast [supervisory]: 1 sensor\n"
        "  exit locked during school hours [supervisory]: 1 sensor, during school_hours\n"
        "  exit door open at night [trouble]: 1 sensor, during night\n"
        "  smoke detected [alarm]: 1 sensor\n"
        "  sensor offline [trouble]: 4 sensors\n"
        "contacts: 3\n"
        "  facilities: mqtt notify/facilities\n"
        "  principal: mqtt notify/principal\n"
        "  district: mqtt notify/district\n"
        "escalation:\n"
        "  alarm: at 0 s facilities, principal; at 120 s district, again every 600 s\n"
        "  supervisory: at 0 s facilities; at 900 s principal\n"
        "  trouble: at 0 s facilities\n"
        "smtp: none\n"
        "alarms: chattering above 5 raises in 10 min, storm above 10 new alarms in 60 s, "
        "flood from 3 offline sensors\n"
        "selftest: daily at 03:00, timeout 120 s\n"
        "http: listen 127.0.0.1:8080, HTTP, no users (read-only, loopback only)\n"
        "hazards: auto-open from \"hydrant pressure low\", \"exit locked during school "
        "hours\"\n"
        "  deadlines (days): fire_equipment 7, evacuation_route 1, electrical 7, structure 30, "
        "surroundings 30, other 14\n"
        "  overdue told: at 0 s principal; at 86400 s district, again every 86400 s\n"
        "kpi: every 3600 s\n"
        "config OK\n");
    free(sum);
    gw_config_free(cfg);
    free(out);
    free(path);

    /* every sensor has a driver (lora, mqtt); offline rules count only sensors with a cadence */
    path = data_path("config/good_later.cfg");
    cfg = load(path, &out);
    assert_non_null(cfg);
    sum = NULL;
    f = open_memstream(&sum, &len);
    gw_config_print_summary(cfg, f);
    fclose(f);
    assert_null(strstr(sum, "without a driver"));
    assert_non_null(strstr(sum, "\nmqtt sources: 1 sensor (0 json, 1 chirpstack) on 1 "
                                "subscription, client_id campusgw-d1-s1-src\n"));
    assert_non_null(strstr(sum, "\nlora: listen 0.0.0.0:1700, region CN470, dedup 200 ms, "
                                "forwarder offline after 120 s, 1 sensor\n"));
    char *js = expand("\n  vendor: js $/codecs/vendor_y.js\n", path);
    assert_non_null(strstr(sum, js));
    free(js);
    assert_non_null(strstr(sum, "  offline [trouble]: 1 sensor\n"));
    assert_non_null(strstr(sum, "\nconfig OK\n"));
    free(sum);
    gw_config_free(cfg);
    free(out);
    free(path);
}

/* ---- LoRa: the lora section, codec profiles, ABP sensors ---------------- */

static void test_good_lora(void **state)
{
    (void)state;
    char *path = data_path("config/good_lora.cfg");
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    if (!cfg) {
        print_error("%s", out);
    }
    assert_non_null(cfg);
    assert_string_equal(out, "");

    const struct gw_lora_cfg *l = &cfg->lora;
    assert_true(l->enabled);
    assert_string_equal(l->listen_host, "::");
    assert_int_equal(l->listen_port, 1701);
    assert_string_equal(l->region, "EU868");
    assert_int_equal(l->dedup_ms, 0);
    assert_int_equal(l->forwarder_offline_s, 300);
    assert_int_equal(l->line, 4);

    assert_int_equal(cfg->nprofiles, 5);
    const struct gw_profile_cfg *pr = &cfg->profiles[0];
    assert_string_equal(pr->name, "smoke_x");
    assert_int_equal(pr->codec, GW_CODEC_LAYOUT);
    assert_int_equal(pr->npoints, 0);
    assert_null(pr->points);
    assert_null(pr->script);
    assert_null(pr->examples);
    assert_int_equal(pr->line, 6);
    static const struct {
        const char *name, *unit;
        int byte, bit;
        enum gw_field_type type;
        uint32_t mask;
        double scale, offset;
        int nenum, fport, line;
    } want[] = {
        {"smoke", NULL, 0, 0, GW_FT_BOOL, 0, 1, 0, 0, -1, 7},
        {"test", NULL, 0, 7, GW_FT_BOOL, 0, 1, 0, 0, 2, 8},
        {"battery", "%", 1, -1, GW_FT_U8, 0, 1, 0, 0, 1, 9},
        {"battery", "V", 3, -1, GW_FT_U16LE, 0, 0.001, 0, 0, 2, 10},
        {"temperature", "C", 5, -1, GW_FT_S16BE, 0, 0.01, -5, 0, -1, 11},
        {"mode", NULL, 7, -1, GW_FT_U8, 0x0C, 1, 0, 3, -1, 12},
        {"count", NULL, 8, -1, GW_FT_U32BE, 0xFFFFFFFFu, 1, 0, 0, -1, 13},
        {"flags", NULL, 12, -1, GW_FT_U16BE, 0x8000, 1, 0, 0, -1, 14},
        {"delta", NULL, 14, -1, GW_FT_S8, 0, 1, 0, 0, -1, 15},
        {"raw_le", NULL, 15, -1, GW_FT_S32LE, 0, 1, 0, 0, -1, 16},
        {"level", NULL, 238, -1, GW_FT_F32LE, 0, 1, 0, 0, -1, 17},
    };
    assert_int_equal(pr->nfields, (int)(sizeof(want) / sizeof(want[0])));
    for (int i = 0; i < pr->nfields; i++) {
        const struct gw_layout_field_cfg *f = &pr->fields[i];
        assert_string_equal(f->name, want[i].name);
        if (want[i].unit) {
            assert_string_equal(f->unit, want[i].unit);
        } else {
            assert_null(f->unit);
        }
        assert_int_equal(f->byte, want[i].byte);
        assert_int_equal(f->bit, want[i].bit);
        assert_int_equal(f->type, want[i].type);
        assert_int_equal(f->mask, want[i].mask);
        assert_near(f->scale, want[i].scale);
        assert_near(f->offset, want[i].offset);
        assert_int_equal(f->nenum, want[i].nenum);
        assert_int_equal(f->fport, want[i].fport);
        assert_int_equal(f->line, want[i].line);
    }
    assert_string_equal(pr->fields[5].enum_labels[0], "off");
    assert_string_equal(pr->fields[5].enum_labels[1], "on");
    assert_string_equal(pr->fields[5].enum_labels[2], "auto");
    assert_null(pr->fields[0].enum_labels);

    pr = &cfg->profiles[1];
    assert_string_equal(pr->name, "door_x");
    assert_int_equal(pr->nfields, 2);
    assert_int_equal(pr->fields[0].nenum, 3);
    assert_string_equal(pr->fields[0].enum_labels[0], "closed");
    assert_string_equal(pr->fields[0].enum_labels[1], "open");
    assert_string_equal(pr->fields[0].enum_labels[2], "locked");
    assert_int_equal(pr->fields[1].type, GW_FT_U8);

    /* script and examples resolved against the config file's directory */
    pr = &cfg->profiles[2];
    assert_string_equal(pr->name, "vendor_y");
    assert_int_equal(pr->codec, GW_CODEC_JS);
    char *p = expand("$/codecs/vendor_y.js", path);
    assert_string_equal(pr->script, p);
    free(p);
    p = expand("$/codecs/vendor_y.examples.json", path);
    assert_string_equal(pr->examples, p);
    free(p);
    assert_int_equal(pr->nfields, 0);
    assert_null(pr->fields);
    pr = &cfg->profiles[3];
    assert_int_equal(pr->codec, GW_CODEC_JS);
    p = expand("$/codecs/chirpstack.js", path);
    assert_string_equal(pr->script, p);
    free(p);
    assert_null(pr->examples);
    pr = &cfg->profiles[4];
    assert_int_equal(pr->codec, GW_CODEC_CAYENNE_LPP);
    assert_int_equal(pr->nfields, 0);
    assert_null(pr->script);

    assert_int_equal(cfg->nsensors, 5);
    static const struct {
        const char *id;
        uint32_t dev_addr;
        uint8_t nwk[16], app[16];
        bool relax;
        int profile;
    } sensors[] = {
        {"A-3F-smoke-301",
         0x26011BDA,
         {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E,
          0x0F},
         {0xF0, 0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96, 0x87, 0x78, 0x69, 0x5A, 0x4B, 0x3C, 0x2D, 0x1E,
          0x0F},
         true,
         0},
        {"A-1F-door-east",
         0x00000000,
         {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
          0xFF},
         {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
         false,
         1},
        {"lab-climate",
         0xFFFFFFFF,
         {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD,
          0xEF},
         {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD,
          0xEF},
         false,
         2},
        {"tank",
         0x26011BDB,
         {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
         {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
         false,
         4},
        {"pump",
         0x26011BDC,
         {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
         {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
         false,
         3},
    };
    for (int i = 0; i < cfg->nsensors; i++) {
        const struct gw_sensor_cfg *s = &cfg->sensors[i];
        assert_string_equal(s->id, sensors[i].id);
        assert_true(s->lora.enabled);
        assert_int_equal(s->lora.dev_addr, sensors[i].dev_addr);
        assert_memory_equal(s->lora.nwk_s_key, sensors[i].nwk, 16);
        assert_memory_equal(s->lora.app_s_key, sensors[i].app, 16);
        assert_int_equal(s->lora.relax_fcnt, sensors[i].relax);
        assert_int_equal(s->profile_index, sensors[i].profile);
        assert_int_equal(s->bus_index, -1);
        assert_null(s->bus);
    }
    assert_int_equal(cfg->sensors[0].expect_every_s, 3600);
    assert_string_equal(cfg->sensors[0].location.zone, "room 301");

    /* rule points: layout field names are checked, enum fields take strings */
    assert_int_equal(cfg->nrules, 6);
    assert_int_equal(cfg->rules[2].equals.type, GW_VALUE_STRING);
    assert_string_equal(cfg->rules[2].equals.str, "locked");

    char *sum = summary(cfg);
    char *wsum = expand(
        "modbus buses: 0\n"
        "lora: listen [::]:1701, region EU868, dedup 0 ms, forwarder offline after 300 s, 5 "
        "sensors\n"
        "profiles: 5\n"
        "  smoke_x: layout, 11 fields\n"
        "  door_x: layout, 2 fields\n"
        "  vendor_y: js $/codecs/vendor_y.js, examples pass\n"
        "  chirp: js $/codecs/chirpstack.js\n"
        "  lpp: cayenne_lpp\n"
        "sensors: 5\n"
        "  smoke: 1\n"
        "  exit_door: 1\n"
        "  climate: 1\n"
        "  tank: 2\n"
        "schedules: 0\n"
        "rules: 6\n"
        "  smoke detected [alarm]: 1 sensor\n"
        "  smoke battery low [trouble]: 1 sensor\n"
        "  exit locked [supervisory]: 1 sensor\n"
        "  lab hot [trouble]: 1 sensor\n"
        "  tank low [supervisory]: 2 sensors\n"
        "  sensor offline [trouble]: 5 sensors\n"
        "contacts: 0\n"
        "escalation: none\n"
        "smtp: none\n"
        "alarms: chattering above 5 raises in 10 min, storm above 10 new alarms in 60 s, "
        "flood from 3 offline sensors\n"
        "selftest: daily at 03:00, timeout 120 s\n"
        "http: listen 127.0.0.1:8080, HTTP, no users (read-only, loopback only)\n"
        "hazards: auto-open none\n"
        "  deadlines (days): fire_equipment 7, evacuation_route 1, electrical 7, structure 30, "
        "surroundings 30, other 14\n"
        "  overdue told: as escalation.supervisory\n"
        "kpi: every 3600 s\n"
        "config OK\n",
        path);
    if (!strstr(sum, wsum)) {
        print_error("summary:\n%s", sum);
    }
    assert_non_null(strstr(sum, wsum));
    assert_null(strstr(sum, "without a driver"));
    /* keys are never printed, in any case */
    assert_null(strstr(sum, "0102030405"));
    assert_null(strstr(sum, "0123456789"));
    assert_null(strstr(sum, "f0e1d2"));
    free(wsum);
    free(sum);
    gw_config_free(cfg);
    free(out);
    free(path);
}

static void test_lora_listen(void **state)
{
    (void)state;
    static const struct {
        const char *listen;
        const char *host; /* NULL: error */
        int port;
        const char *err;
    } cases[] = {
        {"0.0.0.0:1700", "0.0.0.0", 1700, NULL},
        {"127.0.0.1:1", "127.0.0.1", 1, NULL},
        {"192.0.2.7:65535", "192.0.2.7", 65535, NULL},
        {"[::]:1700", "::", 1700, NULL},
        {"[::1]:1680", "::1", 1680, NULL},
        {"[fe80::1:2]:1700", "fe80::1:2", 1700, NULL},
        {"[::ffff:10.0.0.1]:1700", "::ffff:10.0.0.1", 1700, NULL},
        {"0.0.0.0:0", NULL, 0, "bad port \"0\" in \"0.0.0.0:0\" (1..65535)"},
        {"0.0.0.0:65536", NULL, 0, "bad port \"65536\" in \"0.0.0.0:65536\" (1..65535)"},
        {"0.0.0.0:", NULL, 0, "bad port \"\" in \"0.0.0.0:\" (1..65535)"},
        {"0.0.0.0:17x0", NULL, 0, "bad port \"17x0\" in \"0.0.0.0:17x0\" (1..65535)"},
        {"0.0.0.0:+1700", NULL, 0, "bad port \"+1700\" in \"0.0.0.0:+1700\" (1..65535)"},
        {"[::]:", NULL, 0, "bad port \"\" in \"[::]:\" (1..65535)"},
        {"0.0.0.0", NULL, 0,
         "\"0.0.0.0\" is not address:port (e.g. \"0.0.0.0:1700\"; an IPv6 address goes in "
         "brackets: \"[::]:1700\")"},
        {"::1:1700", NULL, 0,
         "\"::1:1700\" is not address:port (e.g. \"0.0.0.0:1700\"; an IPv6 address goes in "
         "brackets: \"[::]:1700\")"},
        {"", NULL, 0,
         "\"\" is not address:port (e.g. \"0.0.0.0:1700\"; an IPv6 address goes in brackets: "
         "\"[::]:1700\")"},
        {"[::]", NULL, 0, "\"[::]\" is not address:port (e.g. \"0.0.0.0:1700\" or \"[::]:1700\")"},
        {"[::]x1700", NULL, 0,
         "\"[::]x1700\" is not address:port (e.g. \"0.0.0.0:1700\" or \"[::]:1700\")"},
        {"[::1", NULL, 0, "\"[::1\" is not address:port (e.g. \"0.0.0.0:1700\" or \"[::]:1700\")"},
        {"gw.local:1700", NULL, 0, "\"gw.local\" in \"gw.local:1700\" is not an IPv4 address"},
        {"256.0.0.1:1700", NULL, 0, "\"256.0.0.1\" in \"256.0.0.1:1700\" is not an IPv4 address"},
        {":1700", NULL, 0, "\"\" in \":1700\" is not an IPv4 address"},
        {"[127.0.0.1]:1700", NULL, 0,
         "\"127.0.0.1\" in \"[127.0.0.1]:1700\" is not an IPv6 address"},
        {"[]:1700", NULL, 0, "\"\" in \"[]:1700\" is not an IPv6 address"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpdir t;
        tmp_init(&t);
        char text[512];
        snprintf(text, sizeof(text), BASE_HEAD "lora = { listen = \"%s\"; };\n", cases[i].listen);
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        if (cases[i].host) {
            if (!cfg) {
                print_error("case %s: %s", cases[i].listen, out);
            }
            assert_non_null(cfg);
            assert_string_equal(out, "");
            assert_string_equal(cfg->lora.listen_host, cases[i].host);
            assert_int_equal(cfg->lora.listen_port, cases[i].port);
            assert_string_equal(cfg->lora.region, "CN470");
        } else {
            assert_null(cfg);
            char want[512];
            snprintf(want, sizeof(want), "%s:3: lora.listen: %s\n", path, cases[i].err);
            if (strcmp(out, want) != 0) {
                print_error("case %s:\n got: %s want: %s", cases[i].listen, out, want);
            }
            assert_string_equal(out, want);
        }
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

static void test_lora_regions(void **state)
{
    (void)state;
    static const char *const regions[] = {"EU868", "US915", "CN470", "AS923",
                                          "AU915", "KR920", "IN865"};
    for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
        struct tmpdir t;
        tmp_init(&t);
        char text[512];
        snprintf(text, sizeof(text), BASE_HEAD "lora = { region = \"%s\"; };\n", regions[i]);
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        assert_non_null(cfg);
        assert_string_equal(cfg->lora.region, regions[i]);
        assert_string_equal(cfg->lora.listen_host, "0.0.0.0");
        assert_int_equal(cfg->lora.listen_port, 1700);
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
    /* names are exact: a lower-case region is refused */
    struct tmpdir t;
    tmp_init(&t);
    const char *path = tmp_write(&t, "c.cfg", BASE_HEAD "lora = { region = \"cn470\"; };\n", 0600);
    char *out = NULL;
    assert_null(load(path, &out));
    char want[512];
    snprintf(want, sizeof(want),
             "%s:3: lora.region: \"cn470\" is not one of EU868, US915, CN470, AS923, AU915, "
             "KR920, IN865\n",
             path);
    assert_string_equal(out, want);
    free(out);
    tmp_cleanup(&t);
}

/* Every field type: its width against the 242-byte payload, bit, mask and enum rules. */
static void test_layout_field_types(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        enum gw_field_type ft;
        int width;
        bool is_unsigned, is_integer;
    } types[] = {
        {"u8", GW_FT_U8, 1, true, true},         {"s8", GW_FT_S8, 1, false, true},
        {"u16be", GW_FT_U16BE, 2, true, true},   {"u16le", GW_FT_U16LE, 2, true, true},
        {"s16be", GW_FT_S16BE, 2, false, true},  {"s16le", GW_FT_S16LE, 2, false, true},
        {"u32be", GW_FT_U32BE, 4, true, true},   {"u32le", GW_FT_U32LE, 4, true, true},
        {"s32be", GW_FT_S32BE, 4, false, true},  {"s32le", GW_FT_S32LE, 4, false, true},
        {"f32be", GW_FT_F32BE, 4, false, false}, {"f32le", GW_FT_F32LE, 4, false, false},
        {"bool", GW_FT_BOOL, 1, false, false},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        bool is_bool = types[i].ft == GW_FT_BOOL;
        const char *bit = is_bool ? " bit = 7;" : "";
        for (int over = 0; over < 2; over++) {
            /* the last byte it fits at, then one further */
            int byte = 242 - types[i].width + over;
            struct tmpdir t;
            tmp_init(&t);
            char text[512];
            snprintf(text, sizeof(text),
                     BASE_HEAD "profiles = { p = { codec = \"layout\"; fields = (\n"
                               "  { name = \"v\"; byte = %d; type = \"%s\";%s } ); }; };\n",
                     byte, types[i].type, bit);
            const char *path = tmp_write(&t, "c.cfg", text, 0600);
            char *out = NULL;
            struct gw_config *cfg = load(path, &out);
            char want[512];
            if (!over) {
                if (!cfg) {
                    print_error("%s: %s", types[i].type, out);
                }
                assert_non_null(cfg);
                const struct gw_layout_field_cfg *f = &cfg->profiles[0].fields[0];
                assert_int_equal(f->type, types[i].ft);
                assert_int_equal(f->byte, byte);
                assert_int_equal(f->bit, is_bool ? 7 : -1);
                assert_int_equal(f->mask, 0);
                assert_int_equal(f->fport, -1);
                assert_near(f->scale, 1);
                assert_near(f->offset, 0);
                assert_int_equal(f->line, 4);
            } else if (byte > 241) {
                assert_null(cfg);
                snprintf(want, sizeof(want),
                         "%s:4: profiles.p.fields[0].byte: 242 is out of range 0..241\n", path);
                assert_string_equal(out, want);
            } else {
                assert_null(cfg);
                snprintf(want, sizeof(want),
                         "%s:4: profiles.p.fields[0].byte: a %s at byte %d ends past byte 241; "
                         "a LoRaWAN payload holds at most 242 bytes\n",
                         path, types[i].type, byte);
                assert_string_equal(out, want);
            }
            gw_config_free(cfg);
            free(out);
            tmp_cleanup(&t);
        }

        /* the widest mask of the type, and one bit more */
        static const char *const masks[] = {"", "0xFF", "0xFFFF", "", "0xFFFFFFFF"};
        static const char *const over_masks[] = {"", "0x1FF", "0x1FFFF", "", "0x1FFFFFFFFL"};
        for (int over = 0; over < 2; over++) {
            struct tmpdir t;
            tmp_init(&t);
            char text[512];
            snprintf(text, sizeof(text),
                     BASE_HEAD "profiles = { p = { codec = \"layout\"; fields = (\n"
                               "  { name = \"v\"; byte = 0; type = \"%s\";%s mask = %s;\n"
                               "    enum = [ \"a\", \"b\" ]; } ); }; };\n",
                     types[i].type, bit, over ? over_masks[types[i].width] : masks[types[i].width]);
            const char *path = tmp_write(&t, "c.cfg", text, 0600);
            char *out = NULL;
            struct gw_config *cfg = load(path, &out);
            char want[1024] = "";
            size_t n = 0;
            if (!types[i].is_unsigned) {
                n += (size_t)snprintf(want + n, sizeof(want) - n,
                                      "%s:4: profiles.p.fields[0].mask: only with unsigned integer "
                                      "types (u8, u16be, u16le, u32be, u32le)\n",
                                      path);
            } else if (over) {
                n += (size_t)snprintf(
                    want + n, sizeof(want) - n,
                    "%s:4: profiles.p.fields[0].mask: %s does not fit a %s "
                    "(0x1..%s)\n",
                    path, over_masks[types[i].width][0] ? over_masks[types[i].width] : "",
                    types[i].type, masks[types[i].width]);
                /* libconfig's L suffix is no part of the value */
                char *l = strstr(want, "FL does");
                if (l) {
                    memmove(l + 1, l + 2, strlen(l + 2) + 1);
                    n--;
                }
            }
            if (!types[i].is_integer) {
                snprintf(want + n, sizeof(want) - n,
                         "%s:5: profiles.p.fields[0].enum: needs an integer type (u8, s8, u16be, "
                         "... s32le), not %s\n",
                         path, types[i].type);
            }
            if (want[0]) {
                if (cfg || strcmp(out, want) != 0) {
                    print_error("%s over %d:\n got: %s want: %s", types[i].type, over, out, want);
                }
                assert_null(cfg);
                assert_string_equal(out, want);
            } else {
                if (!cfg) {
                    print_error("%s: %s", types[i].type, out);
                }
                assert_non_null(cfg);
                const struct gw_layout_field_cfg *f = &cfg->profiles[0].fields[0];
                assert_int_equal(f->mask, (uint32_t)strtoull(masks[types[i].width], NULL, 16));
                assert_int_equal(f->nenum, 2);
            }
            gw_config_free(cfg);
            free(out);
            tmp_cleanup(&t);
        }
    }
}

/* Masks: decimal or hex, never 0 or negative. */
static void test_layout_masks(void **state)
{
    (void)state;
    static const struct {
        const char *mask;
        uint32_t want; /* 0: error */
        const char *err;
    } cases[] = {
        {"12", 12, NULL},
        {"0x0C", 0x0C, NULL},
        {"0x80000000", 0x80000000u, NULL},
        {"4294967295L", 0xFFFFFFFFu, NULL},
        {"0", 0, "0x0 does not fit a u32le (0x1..0xFFFFFFFF)"},
        {"-1", 0, "-1 is negative"},
        {"4294967296L", 0, "0x100000000 does not fit a u32le (0x1..0xFFFFFFFF)"},
        {"\"0x0C\"", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpdir t;
        tmp_init(&t);
        char text[512];
        snprintf(text, sizeof(text),
                 BASE_HEAD "profiles = { p = { codec = \"layout\"; fields = (\n"
                           "  { name = \"v\"; byte = 0; type = \"u32le\"; mask = %s; } ); }; };\n",
                 cases[i].mask);
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        char want[512];
        if (cases[i].want) {
            assert_non_null(cfg);
            assert_int_equal(cfg->profiles[0].fields[0].mask, cases[i].want);
        } else if (cases[i].err) {
            assert_null(cfg);
            snprintf(want, sizeof(want), "%s:4: profiles.p.fields[0].mask: %s\n", path,
                     cases[i].err);
            assert_string_equal(out, want);
        } else {
            assert_null(cfg);
            snprintf(want, sizeof(want),
                     "%s:4: profiles.p.fields[0].mask: expected an integer, got a string\n", path);
            assert_string_equal(out, want);
        }
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

/* At most GW_MAX_POINTS fields: one reading holds that many values. */
static void test_layout_field_count(void **state)
{
    (void)state;
    for (int n = GW_MAX_POINTS; n <= GW_MAX_POINTS + 1; n++) {
        struct tmpdir t;
        tmp_init(&t);
        char text[4096];
        size_t len = (size_t)snprintf(
            text, sizeof(text), BASE_HEAD "profiles = { p = { codec = \"layout\"; fields = (\n");
        for (int i = 0; i < n; i++) {
            len += (size_t)snprintf(text + len, sizeof(text) - len,
                                    "  { name = \"v%d\"; byte = %d; type = \"u8\"; }%s\n", i, i,
                                    i + 1 < n ? "," : "");
        }
        snprintf(text + len, sizeof(text) - len, "); }; };\n");
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        if (n == GW_MAX_POINTS) {
            assert_non_null(cfg);
            assert_int_equal(cfg->profiles[0].nfields, n);
            assert_string_equal(cfg->profiles[0].fields[n - 1].name, "v15");
            assert_int_equal(cfg->profiles[0].fields[n - 1].byte, n - 1);
        } else {
            assert_null(cfg);
            char want[512];
            snprintf(want, sizeof(want), "%s:3: profiles.p.fields: 17 fields, at most 16\n", path);
            assert_string_equal(out, want);
        }
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

#define LORA_HEAD                                                                                  \
    BASE_HEAD "lora = { };\n"                                                                      \
              "profiles = { lpp = { codec = \"cayenne_lpp\"; }; };\n"

/* Keys from files: read like password_file, with its permission warning; never printed. */
static void test_lora_key_files(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    const char *nwk = tmp_write(&t, "s1.nwk", "2B7E151628AED2A6ABF7158809CF4F3C\n", 0644);
    const char *app = tmp_write(&t, "s1.app", "000102030405060708090a0b0c0d0e0f", 0600);
    const char *shortk = tmp_write(&t, "short.key", "2B7E151628AED2A6ABF7158809CF4F\n", 0600);
    const char *hexk = tmp_write(&t, "nothex.key", "2B7E151628AED2A6ABF7158809CF4FXY\n", 0600);
    char text[1024];
    snprintf(text, sizeof(text),
             LORA_HEAD "sensors = ( { id = \"s1\"; kind = \"tank\"; profile = \"lpp\";\n"
                       "  expect_every_s = 60;\n"
                       "  lora = { dev_addr = \"26011BDA\";\n"
                       "    nwk_s_key_file = \"%s\";\n"
                       "    app_s_key_file = \"%s\"; }; } );\n",
             nwk, app);
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    char want[1024];
    snprintf(want, sizeof(want),
             "warning: %s:8: sensors[0].lora.nwk_s_key_file: \"%s\" is readable by group or others "
             "(mode 0644); chmod 600 it\n",
             path, nwk);
    assert_string_equal(out, want);
    static const uint8_t k1[16] = {0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6,
                                   0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C};
    static const uint8_t k2[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    assert_memory_equal(cfg->sensors[0].lora.nwk_s_key, k1, 16);
    assert_memory_equal(cfg->sensors[0].lora.app_s_key, k2, 16);
    char *sum = summary(cfg);
    assert_null(strstr(sum, "2B7E"));
    assert_null(strstr(sum, "s1.nwk"));
    free(sum);
    gw_config_free(cfg);
    free(out);

    /* bad contents, both forms of one key, a missing file: named, the key never shown */
    static const struct {
        const char *lora;
        const char *err; /* '@' the config, '%' the key file */
    } cases[] = {
        {"nwk_s_key_file = \"@short\"; app_s_key = \"000102030405060708090A0B0C0D0E0F\";",
         "sensors[0].lora.nwk_s_key_file: \"%\" must hold 32 hex digits (16 bytes), got 30 "
         "characters"},
        {"nwk_s_key_file = \"@hex\"; app_s_key = \"000102030405060708090A0B0C0D0E0F\";",
         "sensors[0].lora.nwk_s_key_file: \"%\" must hold 32 hex digits (16 bytes), got a "
         "character other than 0-9 A-F"},
        {"nwk_s_key = \"000102030405060708090A0B0C0D0E0F\"; nwk_s_key_file = \"@hex\"; "
         "app_s_key = \"000102030405060708090A0B0C0D0E0F\";",
         "sensors[0].lora.nwk_s_key_file: give nwk_s_key or nwk_s_key_file, not both"},
        {"nwk_s_key = \"000102030405060708090A0B0C0D0E0F\"; app_s_key_file = \"/nonexistent/k\";",
         "sensors[0].lora.app_s_key_file: cannot read \"/nonexistent/k\": No such file or "
         "directory"},
        {"nwk_s_key = \"\"; app_s_key = \"000102030405060708090A0B0C0D0E0F\";",
         "sensors[0].lora.nwk_s_key: must not be empty"},
        {"nwk_s_key = \"000102030405060708090A0B0C0D0E0F0\"; "
         "app_s_key = \"000102030405060708090A0B0C0D0E0F\";",
         "sensors[0].lora.nwk_s_key: must hold 32 hex digits (16 bytes), got 33 characters"},
        {"nwk_s_key = \"00010203 405060708090A0B0C0D0E0F\"; "
         "app_s_key = \"000102030405060708090A0B0C0D0E0F\";",
         "sensors[0].lora.nwk_s_key: must hold 32 hex digits (16 bytes), got a character other "
         "than 0-9 A-F"},
        {"nwk_s_key = 5; app_s_key = \"000102030405060708090A0B0C0D0E0F\";",
         "sensors[0].lora.nwk_s_key: expected a string, got an integer"},
        {"app_s_key = \"000102030405060708090A0B0C0D0E0F\";",
         "sensors[0].lora: missing required key \"nwk_s_key\" or \"nwk_s_key_file\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *kf = strstr(cases[i].lora, "@short") ? shortk : hexk;
        char lora[512];
        size_t n = 0;
        for (const char *c = cases[i].lora; *c && n + 128 < sizeof(lora); c++) {
            if (*c == '@') {
                n += (size_t)snprintf(lora + n, sizeof(lora) - n, "%s", kf);
                c += strncmp(c, "@short", 6) == 0 ? 5 : 3;
            } else {
                lora[n++] = *c;
            }
        }
        lora[n] = '\0';
        snprintf(text, sizeof(text),
                 LORA_HEAD "sensors = ( { id = \"s1\"; kind = \"tank\"; profile = \"lpp\";\n"
                           "  expect_every_s = 60; lora = { dev_addr = \"26011BDA\"; %s }; } );\n",
                 lora);
        path = tmp_write(&t, "bad.cfg", text, 0600);
        assert_null(load(path, &out));
        char werr[512];
        n = 0;
        for (const char *c = cases[i].err; *c && n + 128 < sizeof(werr); c++) {
            if (*c == '%') {
                n += (size_t)snprintf(werr + n, sizeof(werr) - n, "%s", kf);
            } else {
                werr[n++] = *c;
            }
        }
        werr[n] = '\0';
        snprintf(want, sizeof(want), "%s:6: %s\n", path, werr);
        if (strcmp(out, want) != 0) {
            print_error("case %zu:\n got: %s want: %s", i, out, want);
        }
        assert_string_equal(out, want);
        assert_null(strstr(out, "2B7E"));
        assert_null(strstr(out, "405060708")); /* no part of an inline key either */
        free(out);
        t.n--; /* bad.cfg is rewritten by the next case */
        unlink(path);
    }
    tmp_cleanup(&t);
}

/* A LoRa sensor without expect_every_s loads, with a warning: it is never reported offline. */
static void test_lora_expect_every_warning(void **state)
{
    (void)state;
    static const struct {
        const char *expect;
        bool warns;
        int offline_sensors; /* the offline_after rule's scope */
    } cases[] = {
        {"", true, 0},
        {"expect_every_s = 0;", false, 0}, /* said on purpose: no warning */
        {"expect_every_s = 900;", false, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpdir t;
        tmp_init(&t);
        char text[1024];
        snprintf(text, sizeof(text),
                 LORA_HEAD "sensors = ( { id = \"s1\"; kind = \"tank\"; profile = \"lpp\"; %s\n"
                           "  lora = { dev_addr = \"26011BDA\";\n"
                           "    nwk_s_key = \"000102030405060708090A0B0C0D0E0F\";\n"
                           "    app_s_key = \"000102030405060708090A0B0C0D0E0F\"; }; } );\n"
                           "rules = ( { name = \"offline\"; offline_after = 2; class = "
                           "\"trouble\"; } );\n",
                 cases[i].expect);
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        assert_non_null(cfg);
        char want[1024] = "";
        size_t n = 0;
        if (cases[i].warns) {
            n += (size_t)snprintf(want, sizeof(want),
                                  "warning: %s:5: sensors[0]: no expect_every_s; a LoRa sensor "
                                  "that falls silent is never reported offline\n",
                                  path);
        }
        if (cases[i].offline_sensors == 0) {
            snprintf(want + n, sizeof(want) - n,
                     "warning: %s:9: rules[0]: applies to no sensor (offline_after needs Modbus "
                     "sensors or expect_every_s)\n",
                     path);
        }
        assert_string_equal(out, want);
        assert_true(cfg->sensors[0].lora.enabled);
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

/* js scripts: absolute, relative to the config's directory, or to the current one. */
static void test_js_paths(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    const char *js = tmp_write(&t, "dec.js",
                               "function decodeUplink(input) {\n"
                               "  return { data: { v: input.bytes[0] } };\n"
                               "}\n",
                               0644);
    const char *ex = tmp_write(&t, "dec.json",
                               "[ { \"description\": \"one\", \"input\": { \"bytes\": [7], "
                               "\"fPort\": 1 }, \"output\": { \"data\": { \"v\": 7 } } } ]\n",
                               0644);
    char text[1024];
    snprintf(text, sizeof(text),
             BASE_HEAD
             "profiles = { a = { codec = \"js\"; script = \"%s\"; examples = \"%s\"; };\n"
             "  b = { codec = \"js\"; script = \"dec.js\"; examples = \"dec.json\"; }; };\n",
             js, ex);
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    if (!cfg) {
        print_error("%s", out);
    }
    assert_non_null(cfg);
    assert_string_equal(out, "");
    assert_string_equal(cfg->profiles[0].script, js);
    assert_string_equal(cfg->profiles[0].examples, ex);
    assert_string_equal(cfg->profiles[1].script, js); /* resolved to the same file */
    assert_string_equal(cfg->profiles[1].examples, ex);
    gw_config_free(cfg);
    free(out);

    /* a config named without a directory: paths stay relative to the current one */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(t.dir), 0);
    cfg = load("c.cfg", &out);
    assert_int_equal(chdir(cwd), 0);
    assert_non_null(cfg);
    assert_string_equal(cfg->profiles[1].script, "dec.js");
    assert_string_equal(cfg->profiles[1].examples, "dec.json");
    gw_config_free(cfg);
    free(out);

    /* unreadable examples, a bad examples file, and a script that throws at load */
    const char *badjson = tmp_write(&t, "bad.json", "{ not json", 0644);
    const char *throws = tmp_write(&t, "throws.js",
                                   "function decodeUplink(input) { return { data: {} }; }\n"
                                   "undefinedFunction();\n",
                                   0644);
    snprintf(text, sizeof(text),
             BASE_HEAD
             "profiles = { a = { codec = \"js\"; script = \"dec.js\";\n"
             "    examples = \"missing.json\"; };\n"
             "  b = { codec = \"js\"; script = \"dec.js\"; examples = \"bad.json\"; };\n"
             "  c = { codec = \"js\"; script = \"throws.js\"; examples = \"dec.json\"; };\n"
             "};\n");
    path = tmp_write(&t, "c2.cfg", text, 0600);
    assert_null(load(path, &out));
    char want[2048];
    snprintf(want, sizeof(want),
             "%s:4: profiles.a.examples: cannot read \"%s/missing.json\": No such file or "
             "directory\n"
             "%s:5: profiles.b.examples: %s: SyntaxError: ",
             path, t.dir, path, badjson);
    if (strncmp(out, want, strlen(want)) != 0) {
        print_error("got: %s want: %s", out, want);
    }
    assert_memory_equal(out, want, strlen(want));
    snprintf(want, sizeof(want),
             "%s:6: profiles.c.script: %s:2: ReferenceError: identifier 'undefinedFunction' "
             "undefined\n",
             path, throws);
    if (!strstr(out, want)) {
        print_error("got: %s want: %s", out, want);
    }
    assert_non_null(strstr(out, want));
    free(out);
    tmp_cleanup(&t);
}

/* ---- MQTT sources: json profiles and sensors' mqtt bindings ------------- */

#define MQTT_PROFILES                                                                              \
    "profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a.b\"; } ); }; "     \
    "lpp = { codec = \"cayenne_lpp\"; }; m = { points = ( { name = \"p\"; address = 0; } ); }; "   \
    "};\n"

/* Line 3: profiles, line 4: sensors, line 5 on: extra. */
static char *mqtt_config(const char *profiles, const char *sensors, const char *extra)
{
    size_t n = strlen(BASE_HEAD) + strlen(profiles ? profiles : MQTT_PROFILES) + strlen(sensors) +
               strlen(extra ? extra : "") + 32;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, BASE_HEAD "%ssensors = ( %s );\n%s", profiles ? profiles : MQTT_PROFILES,
             sensors, extra ? extra : "");
    return s;
}

static void test_mqtt_good(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    const char *text = BASE_HEAD
        "hub = { client_id = \"gw-7\"; };\n"                                                /* 3 */
        "profiles = {\n"                                                                    /* 4 */
        "  z2m = { codec = \"json\"; values = (\n"                                          /* 5 */
        "    { name = \"state\"; path = \"contact\"; enum = [ \"open\", \"closed\" ]; },\n" /* 6 */
        "    { name = \"battery\"; path = \"battery\"; unit = \"%\"; type = \"number\"; },\n"
        "    { name = \"temp\"; path = \"sensors.t\"; scale = 0.1; offset = -40.0; },\n"
        "    { name = \"label\"; path = \"list.0.name\"; type = \"string\"; },\n"
        "    { name = \"alarm\"; path = \"alarm\"; type = \"bool\"; } ); };\n"
        "  smoke_x = { codec = \"layout\"; fields = ( { name = \"smoke\"; byte = 0; bit = 0; "
        "type = \"bool\"; } ); };\n"
        "};\n"
        "sensors = (\n"
        "  { id = \"door-3\"; kind = \"exit_door\"; profile = \"z2m\"; expect_every_s = 600;\n"
        "    mqtt = { topic = \"zigbee2mqtt/door-3\"; }; },\n"
        "  { id = \"door-4\"; kind = \"exit_door\"; profile = \"z2m\"; expect_every_s = 600;\n"
        "    mqtt = { topic = \"application/+/device/+/event/up\"; format = \"chirpstack\"; "
        "dev_eui = \"0004A30B001C0530\"; }; },\n"
        "  { id = \"smoke-1\"; kind = \"smoke\"; profile = \"smoke_x\"; expect_every_s = 600;\n"
        "    mqtt = { topic = \"application/+/device/+/event/up\"; format = \"chirpstack\"; "
        "dev_eui = \"0004a30b001c0531\"; }; },\n"
        "  { id = \"smoke-2\"; kind = \"smoke\"; profile = \"smoke_x\"; expect_every_s = 600;\n"
        "    mqtt = { topic = \"application/7/device/0004a30b001c0532/event/up\"; format = "
        "\"chirpstack\"; }; }\n"
        ");\n"
        "rules = ( { name = \"door open\"; kind = \"exit_door\"; point = \"state\"; equals = "
        "\"open\"; class = \"supervisory\"; },\n"
        "  { name = \"smoke\"; kind = \"smoke\"; point = \"smoke\"; equals = true; class = "
        "\"alarm\"; },\n"
        "  { name = \"offline\"; offline_after = 3; class = \"trouble\"; } );\n";
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_string_equal(out, "");
    assert_non_null(cfg);

    const struct gw_profile_cfg *pr = &cfg->profiles[0];
    assert_int_equal(pr->codec, GW_CODEC_JSON);
    assert_int_equal(pr->nvalues, 5);
    assert_string_equal(pr->values[0].name, "state");
    assert_string_equal(pr->values[0].path, "contact");
    assert_int_equal(pr->values[0].type, GW_JSON_ANY);
    assert_int_equal(pr->values[0].nenum, 2);
    assert_string_equal(pr->values[0].enum_labels[1], "closed");
    assert_int_equal(pr->values[0].line, 6);
    assert_string_equal(pr->values[1].unit, "%");
    assert_int_equal(pr->values[1].type, GW_JSON_NUMBER);
    assert_near(pr->values[1].scale, 1);
    assert_near(pr->values[1].offset, 0);
    assert_string_equal(pr->values[2].path, "sensors.t");
    assert_near(pr->values[2].scale, 0.1);
    assert_near(pr->values[2].offset, -40);
    assert_null(pr->values[2].unit);
    assert_int_equal(pr->values[3].type, GW_JSON_STRING);
    assert_int_equal(pr->values[4].type, GW_JSON_BOOL);

    const struct gw_sensor_cfg *s = &cfg->sensors[0];
    assert_true(s->mqtt.enabled);
    assert_false(s->lora.enabled);
    assert_int_equal(s->bus_index, -1);
    assert_string_equal(s->mqtt.topic, "zigbee2mqtt/door-3");
    assert_int_equal(s->mqtt.format, GW_MQTT_JSON);
    assert_false(s->mqtt.wildcard);
    assert_string_equal(s->mqtt.dev_eui, "");
    s = &cfg->sensors[1];
    assert_int_equal(s->mqtt.format, GW_MQTT_CHIRPSTACK);
    assert_true(s->mqtt.wildcard);
    assert_string_equal(s->mqtt.dev_eui, "0004a30b001c0530"); /* lower-cased */
    s = &cfg->sensors[3];
    assert_false(s->mqtt.wildcard);
    assert_string_equal(s->mqtt.dev_eui, "");
    assert_false(cfg->sensors[0].lora.enabled);

    char *sum = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sum, &len);
    gw_config_print_summary(cfg, f);
    fclose(f);
    assert_non_null(strstr(sum, "\nmqtt sources: 4 sensors (1 json, 3 chirpstack) on 3 "
                                "subscriptions, client_id gw-7-src\nprofiles: 2\n"
                                "  z2m: json, 5 values\n"));
    assert_null(strstr(sum, "without a driver"));
    assert_non_null(strstr(sum, "  offline [trouble]: 4 sensors\n"));
    free(sum);
    gw_config_free(cfg);
    free(out);

    /* No mqtt sensor: no "mqtt sources" line (configs without them keep their summary). */
    tmp_cleanup(&t);
}

/* An MQTT sensor without expect_every_s warns, like a LoRa one. */
static void test_mqtt_expect_every_warning(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    char *text = mqtt_config(NULL,
                             "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; "
                             "mqtt = { topic = \"bridge/s1\"; }; }",
                             NULL);
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    free(text);
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    char *want = expand("warning: @:4: sensors[0]: no expect_every_s; an MQTT sensor that falls "
                        "silent is never reported offline\n",
                        path);
    assert_string_equal(out, want);
    free(want);
    free(out);
    gw_config_free(cfg);
    tmp_cleanup(&t);
}

static void test_mqtt_bad(void **state)
{
    (void)state;
#define S_JSON(topic)                                                                              \
    "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; "                          \
    "mqtt = { topic = \"" topic "\"; }; }"
#define S_CS(extra)                                                                                \
    "{ id = \"s1\"; kind = \"k\"; profile = \"lpp\"; expect_every_s = 60; "                        \
    "mqtt = { format = \"chirpstack\"; " extra " }; }"
#define WILD "topic = \"application/+/device/+/event/up\";"
    static const struct {
        const char *profiles; /* NULL: MQTT_PROFILES */
        const char *sensors;
        const char *extra;
        const char *want;
    } cases[] = {
        /* the binding */
        {NULL, "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; mqtt = { }; }",
         NULL, "@:4: sensors[0].mqtt: missing required key \"topic\"\n"},
        {NULL,
         "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; mqtt = { topic = "
         "\"a\"; qos = 1; }; }",
         NULL, "@:4: sensors[0].mqtt.qos: unknown key\n"},
        {NULL,
         "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; mqtt = { topic = "
         "\"a\"; format = \"xml\"; }; }",
         NULL, "@:4: sensors[0].mqtt.format: \"xml\" is not one of json, chirpstack\n"},
        {NULL,
         "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; mqtt = \"a/b\"; }",
         NULL, "@:4: sensors[0].mqtt: expected a group { ... }, got a string\n"},
        {NULL, S_JSON("zigbee2mqtt/+"), NULL,
         "@:4: sensors[0].mqtt.topic: \"zigbee2mqtt/+\" has a wildcard; a json topic names one "
         "device (only format = \"chirpstack\" tells devices apart, by dev_eui)\n"},
        {NULL, S_JSON("a/b+"), NULL,
         "@:4: sensors[0].mqtt.topic: \"a/b+\" has a wildcard (+ or #) that is not a whole "
         "level\n"},
        {NULL, S_CS("topic = \"a/#/b\"; dev_eui = \"0004a30b001c0530\";"), NULL,
         "@:4: sensors[0].mqtt.topic: \"a/#/b\" has # before its last level\n"},
        {NULL, S_CS("topic = \"a/b#\"; dev_eui = \"0004a30b001c0530\";"), NULL,
         "@:4: sensors[0].mqtt.topic: \"a/b#\" has a wildcard (+ or #) that is not a whole "
         "level\n"},
        {NULL, S_JSON(""), NULL, "@:4: sensors[0].mqtt.topic: must not be empty\n"},
        {NULL, S_CS(WILD), NULL,
         "@:4: sensors[0].mqtt: the topic \"application/+/device/+/event/up\" has a wildcard; "
         "give dev_eui to pick this device's events\n"},
        {NULL, S_CS(WILD " dev_eui = \"0004a30b001c053\";"), NULL,
         "@:4: sensors[0].mqtt.dev_eui: \"0004a30b001c053\" is not 16 hex digits (e.g. "
         "\"0004a30b001c0530\")\n"},
        {NULL, S_CS(WILD " dev_eui = \"0004a30b001c053g\";"), NULL,
         "@:4: sensors[0].mqtt.dev_eui: \"0004a30b001c053g\" is not 16 hex digits (e.g. "
         "\"0004a30b001c0530\")\n"},
        {NULL,
         "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; mqtt = { topic = "
         "\"a\"; dev_eui = \"0004a30b001c0530\"; }; }",
         NULL, "@:4: sensors[0].mqtt.dev_eui: only with format = \"chirpstack\"\n"},
        {NULL, S_CS("topic = \"campus/#\"; dev_eui = \"0004a30b001c0530\";"), NULL,
         "@:4: sensors[0].mqtt.topic: \"campus/#\" matches the gateway's own topics under "
         "campus/d1/s1; it would read its own messages\n"},
        {NULL, S_JSON("campus/d1/s1/telemetry/s1"), NULL,
         "@:4: sensors[0].mqtt.topic: \"campus/d1/s1/telemetry/s1\" matches the gateway's own "
         "topics under campus/d1/s1; it would read its own messages\n"},
        {NULL, S_CS("topic = \"+/+/+/status\"; dev_eui = \"0004a30b001c0530\";"), NULL,
         "@:4: sensors[0].mqtt.topic: \"+/+/+/status\" matches the gateway's own topics under "
         "campus/d1/s1; it would read its own messages\n"},
        /* which profile */
        {NULL,
         "{ id = \"s1\"; kind = \"k\"; profile = \"m\"; expect_every_s = 60; mqtt = { topic = "
         "\"a\"; }; }",
         NULL,
         "@:4: sensors[0].profile: \"m\" is a Modbus profile; an MQTT sensor needs a json "
         "profile (or, with format = \"chirpstack\", layout, cayenne_lpp or js)\n"},
        {NULL,
         "{ id = \"s1\"; kind = \"k\"; profile = \"lpp\"; expect_every_s = 60; mqtt = { topic = "
         "\"a\"; }; }",
         NULL,
         "@:4: sensors[0].profile: \"lpp\" is a cayenne_lpp codec profile; format = \"json\" "
         "needs a json profile (codec = \"json\"; values = ( { name; path; } ))\n"},
        {NULL, "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; modbus = \"plc\"; unit_id = 1; }",
         "modbus = ( { name = \"plc\"; tcp = \"127.0.0.1:1502\"; } );\n",
         "@:4: sensors[0].profile: \"j\" is a json codec profile, not a Modbus profile\n"},
        {NULL,
         "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; lora = { dev_addr = "
         "\"26011BDA\"; nwk_s_key = \"000102030405060708090A0B0C0D0E0F\"; app_s_key = "
         "\"000102030405060708090A0B0C0D0E0F\"; }; }",
         "lora = { };\n",
         "@:4: sensors[0].profile: \"j\" is a json profile (MQTT sources); a LoRa sensor needs "
         "layout, cayenne_lpp or js\n"},
        /* keys of polled sensors, two bindings */
        {NULL,
         "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; interval_s = 5; "
         "timeout_ms = 100; mqtt = { topic = \"a\"; }; }",
         NULL,
         "@:4: sensors[0].interval_s: only for Modbus sensors (an MQTT sensor's period is "
         "expect_every_s)\n"
         "@:4: sensors[0].timeout_ms: only for Modbus sensors (an MQTT sensor's period is "
         "expect_every_s)\n"},
        {NULL,
         "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; unit_id = 1; mqtt "
         "= { topic = \"a\"; }; }",
         NULL, "@:4: sensors[0].unit_id: only for Modbus sensors\n"},
        {NULL,
         "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; modbus = \"plc\"; unit_id = 1; mqtt = { "
         "topic = \"a\"; }; }",
         "modbus = ( { name = \"plc\"; tcp = \"127.0.0.1:1502\"; } );\n",
         "@:4: sensors[0]: give one of modbus, lora, mqtt\n"},
        /* two sensors claiming the same messages */
        {NULL,
         S_CS(WILD " dev_eui = \"0004a30b001c0530\";") ",\n{ id = \"s2\"; kind = \"k\"; profile "
                                                       "= \"lpp\"; expect_every_s = 60; mqtt = { "
                                                       "format = \"chirpstack\"; " WILD
                                                       " dev_eui = \"0004A30B001C0530\"; }; }",
         NULL,
         "@:5: sensors[1].mqtt.dev_eui: duplicate dev_eui 0004a30b001c0530 (sensor \"s1\", line "
         "4)\n"},
        {NULL,
         S_JSON("bridge/x") ",\n{ id = \"s2\"; kind = \"k\"; profile = \"j\"; expect_every_s = "
                            "60; mqtt = { topic = \"bridge/x\"; }; }",
         NULL,
         "@:5: sensors[1].mqtt.topic: \"bridge/x\" is already read by sensor \"s1\" (line 4)\n"},
        {NULL,
         S_CS("topic = \"app/1/dev/up\";") ",\n{ id = \"s2\"; kind = \"k\"; profile = \"lpp\"; "
                                           "expect_every_s = 60; mqtt = { format = "
                                           "\"chirpstack\"; topic = \"app/1/dev/up\"; }; }",
         NULL,
         "@:5: sensors[1].mqtt.topic: \"app/1/dev/up\" is already read by sensor \"s1\" (line "
         "4); give both a dev_eui\n"},
        /* json profiles */
        {"profiles = { j = { codec = \"json\"; }; };\n", S_JSON("a"), NULL,
         "@:3: profiles.j: missing required key \"values\"\n"},
        {"profiles = { j = { codec = \"json\"; values = ( ); }; };\n", S_JSON("a"), NULL,
         "@:3: profiles.j.values: a json profile needs at least one value\n"},
        {"profiles = { j = { codec = \"json\"; values = ( {n=\"a\";},{n=\"a\";},{n=\"a\";},"
         "{n=\"a\";},{n=\"a\";},{n=\"a\";},{n=\"a\";},{n=\"a\";},{n=\"a\";},{n=\"a\";},"
         "{n=\"a\";},{n=\"a\";},{n=\"a\";},{n=\"a\";},{n=\"a\";},{n=\"a\";},{n=\"a\";} ); }; "
         "};\n",
         S_JSON("a"), NULL, "@:3: profiles.j.values: 17 values, at most 16\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; } ); }; };\n",
         S_JSON("a"), NULL, "@:3: profiles.j.values[0]: missing required key \"path\"\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { path = \"v\"; } ); }; };\n",
         S_JSON("a"), NULL, "@:3: profiles.j.values[0]: missing required key \"name\"\n"},
        {"profiles = { j = { codec = \"json\"; values = ( \"v\" ); }; };\n", S_JSON("a"), NULL,
         "@:3: profiles.j.values[0]: expected a group { ... }, got a string\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"a b\"; path = \"v\"; } ); "
         "}; };\n",
         S_JSON("a"), NULL,
         "@:3: profiles.j.values[0].name: \"a b\" must be 1..47 of A-Z a-z 0-9 _ . -\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a..b\"; } ); "
         "}; };\n",
         S_JSON("a"), NULL,
         "@:3: profiles.j.values[0].path: \"a..b\" has an empty level (a leading, trailing or "
         "doubled '.')\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \".a\"; } ); }; "
         "};\n",
         S_JSON("a"), NULL,
         "@:3: profiles.j.values[0].path: \".a\" has an empty level (a leading, trailing or "
         "doubled '.')\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a.\"; } ); }; "
         "};\n",
         S_JSON("a"), NULL,
         "@:3: profiles.j.values[0].path: \"a.\" has an empty level (a leading, trailing or "
         "doubled '.')\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = "
         "\"1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17\"; } ); }; };\n",
         S_JSON("a"), NULL,
         "@:3: profiles.j.values[0].path: \"1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17\" has more "
         "than 16 levels\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a\"; },\n"
         "  { name = \"v\"; path = \"b\"; } ); }; };\n",
         "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; mqtt = { topic = "
         "\"a\"; }; }",
         NULL, "@:4: profiles.j.values[1].name: duplicate value name \"v\" (first at line 3)\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a\"; type = "
         "\"int\"; } ); }; };\n",
         S_JSON("a"), NULL,
         "@:3: profiles.j.values[0].type: \"int\" is not one of any, number, bool, string\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a\"; scale = "
         "0; } ); }; };\n",
         S_JSON("a"), NULL, "@:3: profiles.j.values[0].scale: must not be 0\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a\"; type = "
         "\"bool\"; offset = 1; } ); }; };\n",
         S_JSON("a"), NULL,
         "@:3: profiles.j.values[0]: scale/offset need numbers, not type bool\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a\"; type = "
         "\"number\"; enum = [ \"x\" ]; } ); }; };\n",
         S_JSON("a"), NULL,
         "@:3: profiles.j.values[0].enum: not with type (an enum takes an index, false/true or "
         "one of its labels)\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a\"; scale = "
         "2.0; enum = [ \"x\" ]; } ); }; };\n",
         S_JSON("a"), NULL,
         "@:3: profiles.j.values[0].enum: not with scale/offset (the raw value is the index)\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a\"; enum = "
         "[ \"x\", \"0123456789012345678901234567890123\" ]; } ); }; };\n",
         S_JSON("a"), NULL, "@:3: profiles.j.values[0].enum[1]: labels are 1..31 characters\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a\"; units = "
         "\"C\"; } ); }; };\n",
         S_JSON("a"), NULL, "@:3: profiles.j.values[0].units: unknown key\n"},
        {"profiles = { j = { codec = \"json\"; fields = ( ); values = ( { name = \"v\"; path = "
         "\"a\"; } ); }; };\n",
         S_JSON("a"), NULL, "@:3: profiles.j.fields: only with codec = \"layout\"\n"},
        {"profiles = { j = { codec = \"json\"; values = ( { name = \"v\"; path = \"a\"; } ); }; "
         "l = { codec = \"layout\"; values = ( ); fields = ( { name = \"x\"; byte = 0; type = "
         "\"u8\"; } ); }; };\n",
         S_JSON("a"), NULL, "@:3: profiles.l.values: only with codec = \"json\"\n"},
        /* rules see the values of json profiles */
        {NULL, S_JSON("a"),
         "rules = ( { name = \"r\"; kind = \"k\"; point = \"nope\"; above = 1; class = "
         "\"trouble\"; } );\n",
         "@:5: rules[0].point: no profile of the \"k\" sensors has a point \"nope\"\n"},
    };
#undef S_JSON
#undef S_CS
#undef WILD
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tmpdir t;
        tmp_init(&t);
        char *text = mqtt_config(cases[i].profiles, cases[i].sensors, cases[i].extra);
        const char *path = tmp_write(&t, "c.cfg", text, 0600);
        free(text);
        char *out = NULL;
        struct gw_config *cfg = load(path, &out);
        char *want = expand(cases[i].want, path);
        if (cfg || strcmp(out, want) != 0) {
            print_error("case %zu:\n got: %s want: %s", i, out, want);
        }
        assert_null(cfg);
        assert_string_equal(out, want);
        free(want);
        free(out);
        tmp_cleanup(&t);
    }
}

/* A rule on a json value that exists loads; a string equals is allowed (enum labels). */
static void test_mqtt_rule_points(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    char *text = mqtt_config(NULL,
                             "{ id = \"s1\"; kind = \"k\"; profile = \"j\"; expect_every_s = 60; "
                             "mqtt = { topic = \"a\"; }; }",
                             "rules = ( { name = \"r\"; kind = \"k\"; point = \"v\"; equals = "
                             "\"open\"; class = \"trouble\"; } );\n");
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    free(text);
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_string_equal(out, "");
    assert_non_null(cfg);
    assert_int_equal(cfg->rules[0].equals.type, GW_VALUE_STRING);
    gw_config_free(cfg);
    free(out);
    tmp_cleanup(&t);
}

/* ---- people: contacts, escalation, smtp, alarms, selftest -------------- */

#define N_CASES(a) (sizeof(a) / sizeof((a)[0]))

/*
 * want with the '@' that opens a line ("@:3: ..." or "warning: @:3: ...") replaced
 * by path; other '@' (in mail addresses) stay.
 */
static char *expand_at(const char *want, const char *path)
{
    size_t n = strlen(want) + 1;
    for (const char *c = want; *c; c++) {
        n += *c == '@' ? strlen(path) : 0;
    }
    char *s = malloc(n);
    assert_non_null(s);
    char *w = s;
    bool bol = true;
    for (const char *c = want; *c; c++) {
        if (bol && strncmp(c, "warning: ", 9) == 0) {
            w = stpcpy(w, "warning: ");
            c += 9;
            if (!*c) {
                break;
            }
        }
        if (bol && c[0] == '@' && c[1] == ':') {
            w = stpcpy(w, path);
        } else {
            *w++ = *c;
        }
        bol = *c == '\n';
    }
    *w = '\0';
    return s;
}

/* BASE_HEAD (lines 1-2) + text (line 3 on) in a fresh temp dir; loads it. */
static struct gw_config *load_people(struct tmpdir *t, const char *text, const char **path,
                                     char **out)
{
    size_t n = strlen(BASE_HEAD) + strlen(text) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, BASE_HEAD "%s", text);
    tmp_init(t);
    *path = tmp_write(t, "c.cfg", s, 0600);
    free(s);
    return load(*path, out);
}

static void test_good_people(void **state)
{
    (void)state;
    char *path = data_path("config/good_people.cfg");
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    if (!cfg) {
        print_error("%s", out);
    }
    assert_non_null(cfg);
    assert_string_equal(out, "");

    const struct gw_smtp_cfg *m = &cfg->smtp;
    assert_true(m->enabled);
    assert_string_equal(m->url, "smtps://smtp.example.cn:465"); /* the port written in */
    assert_string_equal(m->username, "gw@school.cn");
    assert_string_equal(m->password, "s3cret-smtp");
    assert_string_equal(m->from, "campusgw 一中 <gw@school.cn>");
    assert_null(m->ca_file);
    assert_false(m->insecure);
    assert_int_equal(m->line, 4);

    assert_int_equal(cfg->ncontacts, 4);
    const struct gw_contact_cfg *c = &cfg->contacts[0];
    assert_string_equal(c->name, "facilities");
    assert_int_equal(c->line, 7);
    assert_int_equal(c->nchannels, 1);
    assert_int_equal(c->channels[0].kind, GW_CHANNEL_MQTT);
    assert_string_equal(c->channels[0].target, "notify/facilities");
    assert_int_equal(c->channels[0].timeout_ms, 0); /* not used by mqtt */
    assert_int_equal(c->channels[0].retries, 0);
    assert_int_equal(c->channels[0].line, 7);
    c = &cfg->contacts[1];
    assert_string_equal(c->name, "principal");
    assert_int_equal(c->nchannels, 2);
    assert_int_equal(c->channels[0].kind, GW_CHANNEL_WEBHOOK);
    assert_string_equal(c->channels[0].target,
                        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k3y-wecom");
    assert_int_equal(c->channels[0].format, GW_WEBHOOK_WECOM);
    assert_int_equal(c->channels[0].timeout_ms, 1000);
    assert_int_equal(c->channels[0].retries, 0);
    assert_int_equal(c->channels[0].line, 9);
    assert_int_equal(c->channels[1].kind, GW_CHANNEL_EMAIL);
    assert_string_equal(c->channels[1].target, "principal@school.cn");
    assert_int_equal(c->channels[1].timeout_ms, 120000);
    assert_int_equal(c->channels[1].retries, 10);
    assert_int_equal(c->channels[1].line, 11);
    c = &cfg->contacts[2];
    assert_string_equal(c->name, "district_office");
    assert_int_equal(c->nchannels, 3);
    assert_string_equal(c->channels[0].target, "notify/district/safety");
    assert_int_equal(c->channels[1].format, GW_WEBHOOK_DINGTALK);
    assert_int_equal(c->channels[1].timeout_ms, 10000); /* defaults */
    assert_int_equal(c->channels[1].retries, 3);
    assert_int_equal(c->channels[2].kind, GW_CHANNEL_WEBHOOK);
    assert_int_equal(c->channels[2].format, GW_WEBHOOK_JSON);
    c = &cfg->contacts[3];
    assert_string_equal(c->name, "night-guard");
    assert_int_equal(c->channels[0].kind, GW_CHANNEL_EMAIL);
    assert_int_equal(c->channels[0].timeout_ms, 10000);
    assert_int_equal(c->channels[0].retries, 3);

    const struct gw_escalation_cfg *e = &cfg->escalation;
    assert_int_equal(e->nlevels[GW_CLASS_ALARM], 3);
    const struct gw_escalation_level_cfg *lv = e->levels[GW_CLASS_ALARM];
    assert_int_equal(lv[0].after_s, 0);
    assert_int_equal(lv[0].ncontacts, 2);
    assert_int_equal(lv[0].contacts[0], 0);
    assert_int_equal(lv[0].contacts[1], 1);
    assert_int_equal(lv[0].repeat_s, 0);
    assert_int_equal(lv[0].line, 20);
    assert_int_equal(lv[1].after_s, 120);
    assert_int_equal(lv[1].ncontacts, 1);
    assert_int_equal(lv[1].contacts[0], 2);
    assert_int_equal(lv[1].repeat_s, 0);
    assert_int_equal(lv[2].after_s, 604800);
    assert_int_equal(lv[2].ncontacts, 2);
    assert_int_equal(lv[2].contacts[0], 3); /* in the order written */
    assert_int_equal(lv[2].contacts[1], 0);
    assert_int_equal(lv[2].repeat_s, 60);
    assert_int_equal(e->nlevels[GW_CLASS_SUPERVISORY], 2);
    lv = e->levels[GW_CLASS_SUPERVISORY];
    assert_int_equal(lv[1].after_s, 900);
    assert_int_equal(lv[1].contacts[0], 1);
    assert_int_equal(lv[1].repeat_s, 86400);
    assert_int_equal(e->nlevels[GW_CLASS_TROUBLE], 0); /* absent: nobody is told */
    assert_null(e->levels[GW_CLASS_TROUBLE]);

    assert_int_equal(cfg->alarms.chatter_count, 100);
    assert_int_equal(cfg->alarms.chatter_minutes, 1440);
    assert_int_equal(cfg->alarms.storm_count, 1);
    assert_int_equal(cfg->alarms.flood_min, 2);
    assert_false(cfg->selftest.enabled);
    assert_int_equal(cfg->selftest.at_min, 23 * 60 + 59);
    assert_int_equal(cfg->selftest.timeout_s, 3600);

    /* the summary names channels and levels, never a key, a password or an address */
    char *sum = summary(cfg);
    assert_non_null(strstr(
        sum,
        "\nrules: 0\n"
        "contacts: 4\n"
        "  facilities: mqtt notify/facilities\n"
        "  principal: webhook (wecom), email\n"
        "  district_office: mqtt notify/district/safety, webhook (dingtalk), webhook (json)\n"
        "  night-guard: email\n"
        "escalation:\n"
        "  alarm: at 0 s facilities, principal; at 120 s district_office; at 604800 s "
        "night-guard, facilities, again every 60 s\n"
        "  supervisory: at 0 s facilities; at 900 s principal, again every 86400 s\n"
        "  trouble: nobody\n"
        "smtp: smtps://smtp.example.cn:465 (TLS), user/password\n"
        "alarms: chattering above 100 raises in 1440 min, storm above 1 new alarm in 60 s, "
        "flood from 2 offline sensors\n"
        "selftest: off\n"
        "http: listen 127.0.0.1:8080, HTTP, no users (read-only, loopback only)\n"
        "hazards: auto-open none\n"
        "  deadlines (days): fire_equipment 7, evacuation_route 1, electrical 7, structure 30, "
        "surroundings 30, other 14\n"
        "  overdue told: as escalation.supervisory\n"
        "kpi: every 3600 s\n"
        "config OK\n"));
    static const char *const secrets[] = {"k3y-wecom",  "t0ken-ding", "s3cret-smtp",   "qyapi",
                                          "principal@", "guard@",     "127.0.0.1:9000"};
    for (size_t i = 0; i < N_CASES(secrets); i++) {
        assert_null(strstr(sum, secrets[i]));
    }
    free(sum);
    gw_config_free(cfg);
    free(out);
    free(path);
}

/* Keys left out of alarms and selftest keep their defaults. */
static void test_people_partial_defaults(void **state)
{
    (void)state;
    struct tmpdir t;
    const char *path = NULL;
    char *out = NULL;
    struct gw_config *cfg = load_people(&t,
                                        "alarms = { storm_count = 20; };\n"
                                        "selftest = { at = \"4:05\"; };\n"
                                        "smtp = { url = \"smtp://mail.example.cn\"; from = "
                                        "\"gw@school.cn\"; };\n",
                                        &path, &out);
    assert_string_equal(out, "");
    assert_non_null(cfg);
    assert_int_equal(cfg->alarms.chatter_count, 5);
    assert_int_equal(cfg->alarms.chatter_minutes, 10);
    assert_int_equal(cfg->alarms.storm_count, 20);
    assert_int_equal(cfg->alarms.flood_min, 3);
    assert_true(cfg->selftest.enabled);
    assert_int_equal(cfg->selftest.at_min, 4 * 60 + 5);
    assert_int_equal(cfg->selftest.timeout_s, 120);
    /* smtp without login: fine (a relay that trusts the school's address) */
    assert_true(cfg->smtp.enabled);
    assert_string_equal(cfg->smtp.url, "smtp://mail.example.cn:587");
    assert_null(cfg->smtp.username);
    assert_null(cfg->smtp.password);
    assert_false(cfg->smtp.insecure);
    char *sum = summary(cfg);
    assert_non_null(strstr(sum, "\ncontacts: 0\nescalation: none\n"
                                "smtp: smtp://mail.example.cn:587 (STARTTLS), no login\n"
                                "alarms: chattering above 5 raises in 10 min, storm above 20 new "
                                "alarms in 60 s, flood from 3 offline sensors\n"
                                "selftest: daily at 04:05, timeout 120 s\n"));
    free(sum);
    gw_config_free(cfg);
    free(out);
    tmp_cleanup(&t);
}

/* smtp.url: scheme, host and port; the default port is written into the url. */
static void test_smtp_url(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        const char *want; /* the stored url; NULL: error */
        const char *err;
    } cases[] = {
        {"smtps://mail.example.cn", "smtps://mail.example.cn:465", NULL},
        {"smtps://mail.example.cn/", "smtps://mail.example.cn:465", NULL},
        {"smtp://mail.example.cn", "smtp://mail.example.cn:587", NULL},
        {"smtp://mail.example.cn:25", "smtp://mail.example.cn:25", NULL},
        {"SMTPS://Mail.Example.cn:2465/", "SMTPS://Mail.Example.cn:2465", NULL},
        {"smtps://[::1]", "smtps://[::1]:465", NULL},
        {"smtp://[2001:db8::1]:587", "smtp://[2001:db8::1]:587", NULL},
        {"smtp://127.0.0.1:1025", "smtp://127.0.0.1:1025", NULL},
        {"imap://mail.example.cn", NULL,
         "\"imap://mail.example.cn\" must start with smtps:// (TLS) or smtp:// (STARTTLS)"},
        {"mail.example.cn:465", NULL,
         "\"mail.example.cn:465\" must start with smtps:// (TLS) or smtp:// (STARTTLS)"},
        {"smtps://", NULL, "\"smtps://\" has no host"},
        {"smtps://:465", NULL, "\"smtps://:465\" has no host"},
        {"smtps://mail.example.cn:0", NULL,
         "\"smtps://mail.example.cn:0\" has a bad port (1..65535)"},
        {"smtps://mail.example.cn:65536", NULL,
         "\"smtps://mail.example.cn:65536\" has a bad port (1..65535)"},
        {"smtps://mail.example.cn:", NULL,
         "\"smtps://mail.example.cn:\" has a bad port (1..65535)"},
        {"smtps://mail.example.cn:46x", NULL,
         "\"smtps://mail.example.cn:46x\" has a bad port (1..65535)"},
        {"smtps://[::1", NULL, "\"smtps://[::1\" has a bad [IPv6] address"},
        {"smtps://mail example.cn", NULL,
         "\"smtps://mail example.cn\" must not hold spaces or control characters"},
        {"smtps://mail.example.cn/helo", NULL,
         "\"smtps://mail.example.cn/helo\" must be smtps://host[:port] or smtp://host[:port], "
         "without a path"},
        {"smtps://mail.example.cn?x=1", NULL,
         "\"smtps://mail.example.cn?x=1\" must be smtps://host[:port] or smtp://host[:port], "
         "without a path"},
        /* credentials in the url: refused, and not echoed */
        {"smtps://gw:s3cret@mail.example.cn", NULL,
         "must not hold user:password@; use username and password"},
    };
    for (size_t i = 0; i < N_CASES(cases); i++) {
        char text[512];
        snprintf(text, sizeof(text), "smtp = { url = \"%s\"; from = \"gw@school.cn\"; };\n",
                 cases[i].url);
        struct tmpdir t;
        const char *path = NULL;
        char *out = NULL;
        struct gw_config *cfg = load_people(&t, text, &path, &out);
        if (cases[i].want) {
            if (!cfg) {
                print_error("case %s: %s", cases[i].url, out);
            }
            assert_non_null(cfg);
            assert_string_equal(out, "");
            assert_string_equal(cfg->smtp.url, cases[i].want);
        } else {
            char want[512];
            snprintf(want, sizeof(want), "%s:3: smtp.url: %s\n", path, cases[i].err);
            assert_null(cfg);
            assert_string_equal(out, want);
            assert_null(strstr(out, "s3cret"));
        }
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

/* Files: smtp.password_file (like hub.password_file) and smtp.ca_file. */
static void test_smtp_files(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    const char *pw = tmp_write(&t, "smtp.password", "m@il-s3cret\n", 0600);
    const char *ca = tmp_write(&t, "ca.crt", "CA\n", 0644);
    char text[1024];
    snprintf(text, sizeof(text),
             BASE_HEAD "smtp = { url = \"smtps://mail.example.cn\"; username = \"gw\";\n"
                       "  password_file = \"%s\";\n"
                       "  from = \"gw@school.cn\"; ca_file = \"%s\"; insecure = true; };\n",
             pw, ca);
    const char *path = tmp_write(&t, "c.cfg", text, 0600);
    char *out = NULL;
    struct gw_config *cfg = load(path, &out);
    assert_non_null(cfg);
    char want[1024];
    snprintf(want, sizeof(want),
             "warning: %s:5: smtp.insecure: certificate checks are off; use it only for tests\n",
             path);
    assert_string_equal(out, want);
    assert_string_equal(cfg->smtp.password, "m@il-s3cret");
    assert_string_equal(cfg->smtp.ca_file, ca);
    assert_true(cfg->smtp.insecure);
    char *sum = summary(cfg);
    assert_non_null(strstr(sum, "\nsmtp: smtps://mail.example.cn:465 (TLS), user/password, "
                                "insecure\n"));
    assert_null(strstr(sum, "m@il-s3cret"));
    free(sum);
    gw_config_free(cfg);
    free(out);

    /* a group-readable password file warns, and never shows the password */
    assert_int_equal(chmod(pw, 0644), 0);
    snprintf(text, sizeof(text),
             BASE_HEAD "smtp = { url = \"smtps://mail.example.cn\"; username = \"gw\";\n"
                       "  password_file = \"%s\"; from = \"gw@school.cn\"; };\n",
             pw);
    path = tmp_write(&t, "c2.cfg", text, 0600);
    cfg = load(path, &out);
    assert_non_null(cfg);
    snprintf(want, sizeof(want),
             "warning: %s:4: smtp.password_file: \"%s\" is readable by group or others (mode "
             "0644); chmod 600 it\n",
             path, pw);
    assert_string_equal(out, want);
    assert_null(strstr(out, "m@il-s3cret"));
    gw_config_free(cfg);
    free(out);

    /* a missing password file and a missing CA file */
    path = tmp_write(&t, "c3.cfg",
                     BASE_HEAD "smtp = { url = \"smtps://mail.example.cn\"; username = \"gw\";\n"
                               "  password_file = \"/nonexistent/pw\"; from = \"gw@school.cn\";\n"
                               "  ca_file = \"/nonexistent/ca.crt\"; };\n",
                     0600);
    assert_null(load(path, &out));
    snprintf(want, sizeof(want),
             "%s:4: smtp.password_file: cannot read \"/nonexistent/pw\": No such file or "
             "directory\n"
             "%s:5: smtp.ca_file: cannot read \"/nonexistent/ca.crt\": No such file or "
             "directory\n",
             path, path);
    assert_string_equal(out, want);
    free(out);
    tmp_cleanup(&t);
}

/* Loads with a warning: the config is usable, the operator is told. */
static void test_people_warnings(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        /* contacts but nobody for fire alarms */
        {"contacts = { fac = ( { mqtt = \"notify/fac\"; } ); };\n",
         "warning: @:3: escalation: no levels for class alarm; fire alarms would reach nobody\n"},
        {"contacts = { fac = ( { mqtt = \"notify/fac\"; } ); };\n"
         "escalation = { trouble = ( { after_s = 0; notify = [ \"fac\" ]; } ); };\n",
         "warning: @:4: escalation: no levels for class alarm; fire alarms would reach nobody\n"},
        {"contacts = { fac = ( { mqtt = \"notify/fac\"; } ); };\n"
         "escalation = { alarm = ( ); };\n",
         "warning: @:4: escalation: no levels for class alarm; fire alarms would reach nobody\n"},
        /* a webhook in clear text over the network; the warning names the host, not the key */
        {"contacts = { fac = ( { webhook = \"http://10.1.2.3:8080/hook?key=SECRETKEY\"; } ); };\n"
         "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\" ]; } ); };\n",
         "warning: @:3: contacts.fac[0].webhook: http:// to \"10.1.2.3\", a host that is not "
         "loopback; the URL (with any key in it) and every message would cross the network in "
         "clear text (use https://)\n"},
        {"contacts = { fac = ( { webhook = \"HTTP://user:SECRETKEY@hooks.example.cn/x\"; } ); };\n"
         "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\" ]; } ); };\n",
         "warning: @:3: contacts.fac[0].webhook: http:// to \"hooks.example.cn\", a host that is "
         "not loopback; the URL (with any key in it) and every message would cross the network in "
         "clear text (use https://)\n"},
        /* loopback and https: no warning */
        {"contacts = { fac = ( { webhook = \"http://127.0.0.1:9000/h?k=SECRETKEY\"; },\n"
         "  { webhook = \"http://localhost/h\"; }, { webhook = \"http://[::1]:80/h\"; },\n"
         "  { webhook = \"https://10.1.2.3/h?key=SECRETKEY\"; } ); };\n"
         "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\" ]; } ); };\n",
         ""},
    };
    for (size_t i = 0; i < N_CASES(cases); i++) {
        struct tmpdir t;
        const char *path = NULL;
        char *out = NULL;
        struct gw_config *cfg = load_people(&t, cases[i].text, &path, &out);
        char *want = expand_at(cases[i].want, path);
        if (!cfg || strcmp(out, want) != 0) {
            print_error("case %zu:\n got: %s want: %s", i, out, want);
        }
        assert_non_null(cfg);
        assert_string_equal(out, want);
        assert_null(strstr(out, "SECRETKEY"));
        free(want);
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

static void test_people_bad(void **state)
{
    (void)state;
/* one channel of contact fac on line 3; the escalation that names fac on line 4 */
#define CH(ch) "contacts = { fac = ( " ch " ); };\n" ESC_FAC
#define ESC_FAC "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\" ]; } ); };\n"
/* contacts fac and pri on line 3; escalation from line 4 */
#define TWO                                                                                        \
    "contacts = { fac = ( { mqtt = \"notify/fac\"; } ); pri = ( { mqtt = \"notify/p\"; } ); };\n"
#define SMTP(keys) "smtp = { " keys " };\n"
#define NO_ALARM_LEVELS                                                                            \
    "warning: @:3: escalation: no levels for class alarm; fire alarms would reach nobody\n"
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        /* contacts: the section and its names */
        {"contacts = ( );\n", "@:3: contacts: expected a group { ... }, got a list\n"},
        {"contacts = { fac = { mqtt = \"notify/fac\"; }; };\n" ESC_FAC,
         "@:3: contacts.fac: expected a list ( ... ), got a group\n"},
        {"contacts = { fac = ( ); };\n" ESC_FAC,
         "@:3: contacts.fac: needs at least one channel, e.g. ( { mqtt = \"notify/fac\"; } )\n"},
        {"contacts = { fac = ( \"notify/fac\" ); };\n" ESC_FAC,
         "@:3: contacts.fac[0]: expected a group { ... }, got a string\n"},
        {"contacts = { fa*c = ( { mqtt = \"notify/fac\"; } ); };\n",
         "@:3: contacts.fa*c: \"fa*c\" must be 1..47 of A-Z a-z 0-9 _ - (it is an MQTT topic "
         "level)\n" NO_ALARM_LEVELS},
        {"contacts = { a23456789012345678901234567890123456789012345678 = ( { mqtt = "
         "\"notify/x\"; } ); };\n",
         "@:3: contacts.a23456789012345678901234567890123456789012345678: "
         "\"a23456789012345678901234567890123456789012345678\" must be 1..47 of A-Z a-z 0-9 _ - "
         "(it is an MQTT topic level)\n" NO_ALARM_LEVELS},
        /* channels: exactly one kind, keys that fit it */
        {CH("{ }"), "@:3: contacts.fac[0]: needs one of mqtt, webhook, email\n"},
        {CH("{ retries = 1; }"), "@:3: contacts.fac[0]: needs one of mqtt, webhook, email\n"},
        {"contacts = { fac = ( { webhook = \"https://h/x\";\n  mqtt = \"notify/fac\"; } ); };\n"
         "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\" ]; } ); };\n",
         "@:4: contacts.fac[0]: webhook and mqtt conflict; a channel is one of mqtt, webhook, "
         "email (give each its own { ... })\n"},
        {CH("{ mqtt = \"notify/fac\"; email = \"a@b.cn\"; }"),
         "@:3: contacts.fac[0]: mqtt and email conflict; a channel is one of mqtt, webhook, "
         "email (give each its own { ... })\n"},
        {CH("{ mqtt = \"notify/fac\"; qos = 1; }"), "@:3: contacts.fac[0].qos: unknown key\n"},
        {CH("{ mqtt = 5; }"), "@:3: contacts.fac[0].mqtt: expected a string, got an integer\n"},
        {CH("{ mqtt = \"\"; }"), "@:3: contacts.fac[0].mqtt: must not be empty\n"},
        {CH("{ mqtt = \"notify/fac\"; timeout_ms = 1000; retries = 1; }"),
         "@:3: contacts.fac[0].timeout_ms: only for webhook and email channels\n"
         "@:3: contacts.fac[0].retries: only for webhook and email channels\n"},
        {CH("{ mqtt = \"notify/fac\"; format = \"json\"; }"),
         "@:3: contacts.fac[0].format: only for webhook channels\n"},
        {CH("{ email = \"a@b.cn\"; format = \"wecom\"; }")
             SMTP("url = \"smtps://m\"; from = \"gw@b.cn\";"),
         "@:3: contacts.fac[0].format: only for webhook channels\n"},
        /* mqtt topics: under notify/, no filter */
        {CH("{ mqtt = \"notify/+\"; }"),
         "@:3: contacts.fac[0].mqtt: \"notify/+\" must not hold + or # (it is a topic to publish "
         "on, not a filter)\n"},
        {CH("{ mqtt = \"notify/#\"; }"),
         "@:3: contacts.fac[0].mqtt: \"notify/#\" must not hold + or # (it is a topic to publish "
         "on, not a filter)\n"},
        {CH("{ mqtt = \"/notify/fac\"; }"),
         "@:3: contacts.fac[0].mqtt: \"/notify/fac\" must not start with '/' (it is a topic "
         "under the site prefix)\n"},
        {CH("{ mqtt = \"alarms/x/y\"; }"),
         "@:3: contacts.fac[0].mqtt: \"alarms/x/y\" must start with notify/ (notifications go to "
         "P/notify/...; the hub ACL grants them apart from the gateway's other topics)\n"},
        {CH("{ mqtt = \"cmd/ack\"; }"),
         "@:3: contacts.fac[0].mqtt: \"cmd/ack\" must start with notify/ (notifications go to "
         "P/notify/...; the hub ACL grants them apart from the gateway's other topics)\n"},
        {CH("{ mqtt = \"notifyfac\"; }"),
         "@:3: contacts.fac[0].mqtt: \"notifyfac\" must start with notify/ (notifications go to "
         "P/notify/...; the hub ACL grants them apart from the gateway's other topics)\n"},
        {CH("{ mqtt = \"notify/\"; }"),
         "@:3: contacts.fac[0].mqtt: \"notify/\" must name a level after notify/ and have no "
         "empty levels (e.g. \"notify/facilities\")\n"},
        {CH("{ mqtt = \"notify//fac\"; }"),
         "@:3: contacts.fac[0].mqtt: \"notify//fac\" must name a level after notify/ and have no "
         "empty levels (e.g. \"notify/facilities\")\n"},
        {CH("{ mqtt = \"notify/fac/\"; }"),
         "@:3: contacts.fac[0].mqtt: \"notify/fac/\" must name a level after notify/ and have no "
         "empty levels (e.g. \"notify/facilities\")\n"},
        {CH("{ mqtt = \"notify/f\\tac\"; }"),
         "@:3: contacts.fac[0].mqtt: \"notify/f\tac\" must not hold control characters\n"},
        /* webhooks: a URL that is never echoed (it holds the robot's key) */
        {CH("{ webhook = \"ftp://h/x?key=SECRETKEY\"; }"),
         "@:3: contacts.fac[0].webhook: must start with https:// or http://\n"},
        {CH("{ webhook = \"qyapi.weixin.qq.com/send?key=SECRETKEY\"; }"),
         "@:3: contacts.fac[0].webhook: must start with https:// or http://\n"},
        {CH("{ webhook = \"https://\"; }"), "@:3: contacts.fac[0].webhook: has no host\n"},
        {CH("{ webhook = \"https:///send?key=SECRETKEY\"; }"),
         "@:3: contacts.fac[0].webhook: has no host\n"},
        {CH("{ webhook = \"https://h:99999/x?key=SECRETKEY\"; }"),
         "@:3: contacts.fac[0].webhook: has a bad port (1..65535)\n"},
        {CH("{ webhook = \"https://[::1/x\"; }"),
         "@:3: contacts.fac[0].webhook: has a bad [IPv6] address\n"},
        {CH("{ webhook = \"https://h/x?key=SECRET KEY\"; }"),
         "@:3: contacts.fac[0].webhook: must not hold spaces or control characters\n"},
        {CH("{ webhook = \"https://h/x\"; format = \"slack\"; }"),
         "@:3: contacts.fac[0].format: \"slack\" is not one of json, wecom, dingtalk\n"},
        {CH("{ webhook = \"https://h/x\"; timeout_ms = 999; retries = 11; }"),
         "@:3: contacts.fac[0].timeout_ms: 999 is out of range 1000..120000\n"
         "@:3: contacts.fac[0].retries: 11 is out of range 0..10\n"},
        {CH("{ webhook = \"https://h/x\"; timeout_ms = 120001; retries = -1; }"),
         "@:3: contacts.fac[0].timeout_ms: 120001 is out of range 1000..120000\n"
         "@:3: contacts.fac[0].retries: -1 is out of range 0..10\n"},
        {CH("{ webhook = \"https://h/x\"; timeout_ms = 10.5; }"),
         "@:3: contacts.fac[0].timeout_ms: expected an integer, got a float\n"},
        /* email: an address, and an smtp section to send it through */
        {CH("{ email = \"principal@school.cn\"; }"),
         "@:3: contacts.fac[0].email: needs the smtp section (url, from) to send through\n"},
        {CH("{ email = \"a b@school.cn\"; }"),
         "@:3: contacts.fac[0].email: \"a b@school.cn\" is not an email address (name@domain, no "
         "spaces)\n"},
        {CH("{ email = \"a@b@school.cn\"; }"),
         "@:3: contacts.fac[0].email: \"a@b@school.cn\" is not an email address (name@domain, no "
         "spaces)\n"},
        {CH("{ email = \"school.cn\"; }"),
         "@:3: contacts.fac[0].email: \"school.cn\" is not an email address (name@domain, no "
         "spaces)\n"},
        {CH("{ email = \"@school.cn\"; }"),
         "@:3: contacts.fac[0].email: \"@school.cn\" is not an email address (name@domain, no "
         "spaces)\n"},
        {CH("{ email = \"a@\"; }"),
         "@:3: contacts.fac[0].email: \"a@\" is not an email address (name@domain, no "
         "spaces)\n"},
        {CH("{ email = \"Wang <w@school.cn>\"; }"),
         "@:3: contacts.fac[0].email: \"Wang <w@school.cn>\" is not an email address "
         "(name@domain, no spaces)\n"},
        {CH("{ email = \"a@school.cn,b@school.cn\"; }"),
         "@:3: contacts.fac[0].email: \"a@school.cn,b@school.cn\" is not an email address "
         "(name@domain, no spaces)\n"},
        {CH("{ email = \"a@b.cn\"; timeout_ms = 500; }")
             SMTP("url = \"smtps://m\"; from = \"gw@b.cn\";"),
         "@:3: contacts.fac[0].timeout_ms: 500 is out of range 1000..120000\n"},
        /* escalation: classes, levels, contacts */
        {"escalation = 5;\n", "@:3: escalation: expected a group { ... }, got an integer\n"},
        {TWO "escalation = { fire = ( { after_s = 0; notify = [ \"fac\" ]; } );\n"
             "  alarm = ( { after_s = 0; notify = [ \"fac\" ]; } ); };\n",
         "@:4: escalation.fire: unknown key\n"},
        {TWO "escalation = { alarm = { after_s = 0; notify = [ \"fac\" ]; }; };\n",
         "@:4: escalation.alarm: expected a list ( ... ), got a group\n"},
        {TWO "escalation = { alarm = ( 5 ); };\n",
         "@:4: escalation.alarm[0]: expected a group { ... }, got an integer\n"},
        {TWO "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\", \"principl\" ]; } ); "
             "};\n",
         "@:4: escalation.alarm[0].notify: unknown contact \"principl\"\n"},
        {"escalation = { alarm = ( { after_s = 0; notify = [ \"fac\" ]; } ); };\n",
         "@:3: escalation.alarm[0].notify: unknown contact \"fac\"\n"},
        {TWO "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\", \"pri\", \"fac\" ]; } "
             "); };\n",
         "@:4: escalation.alarm[0].notify: \"fac\" is listed twice\n"},
        {TWO "escalation = { alarm = ( { after_s = 0; notify = \"fac\"; } ); };\n",
         "@:4: escalation.alarm[0].notify: expected an array of strings [ \"a\", \"b\" ], got a "
         "string\n"},
        {TWO "escalation = { alarm = ( { after_s = 0; notify = [ ]; } ); };\n",
         "@:4: escalation.alarm[0].notify: expected an array of strings [ \"a\", \"b\" ], got an "
         "array [ ... ]\n"},
        {TWO "escalation = { alarm = ( { after_s = 0; } ); };\n",
         "@:4: escalation.alarm[0]: missing required key \"notify\"\n"},
        {TWO "escalation = { alarm = ( { notify = [ \"fac\" ]; } ); };\n",
         "@:4: escalation.alarm[0]: missing required key \"after_s\"\n"},
        {TWO "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\" ]; level = 1; } ); };\n",
         "@:4: escalation.alarm[0].level: unknown key\n"},
        {TWO "escalation = { alarm = ( { after_s = -1; notify = [ \"fac\" ]; } ); };\n",
         "@:4: escalation.alarm[0].after_s: -1 is out of range 0..604800\n"},
        {TWO "escalation = { alarm = ( { after_s = 604801; notify = [ \"fac\" ]; } ); };\n",
         "@:4: escalation.alarm[0].after_s: 604801 is out of range 0..604800\n"},
        {TWO "escalation = { alarm = (\n"
             "  { after_s = 0; notify = [ \"fac\" ]; },\n"
             "  { after_s = 120; notify = [ \"pri\" ]; },\n"
             "  { after_s = 120; notify = [ \"fac\" ]; } ); };\n",
         "@:7: escalation.alarm[2].after_s: 120 is not after the level before (120); levels go "
         "in time order\n"},
        {TWO "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\" ]; } );\n"
             "  supervisory = ( { after_s = 900; notify = [ \"fac\" ]; },\n"
             "                  { after_s = 60; notify = [ \"pri\" ]; } ); };\n",
         "@:6: escalation.supervisory[1].after_s: 60 is not after the level before (900); levels "
         "go in time order\n"},
        {TWO "escalation = { alarm = (\n"
             "  { after_s = 0; notify = [ \"fac\" ]; repeat_s = 600; },\n"
             "  { after_s = 120; notify = [ \"pri\" ]; } ); };\n",
         "@:5: escalation.alarm[0].repeat_s: only on the last level (it tells the last level "
         "again until someone acknowledges)\n"},
        {TWO "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\" ]; repeat_s = 59; } ); "
             "};\n",
         "@:4: escalation.alarm[0].repeat_s: 59 is out of range 60..86400\n"},
        {TWO "escalation = { alarm = ( { after_s = 0; notify = [ \"fac\" ]; repeat_s = 86401; } "
             "); };\n",
         "@:4: escalation.alarm[0].repeat_s: 86401 is out of range 60..86400\n"},
        /* smtp */
        {"smtp = 1;\n", "@:3: smtp: expected a group { ... }, got an integer\n"},
        {SMTP("from = \"gw@b.cn\";"), "@:3: smtp: missing required key \"url\"\n"},
        {SMTP("url = \"smtps://m\";"), "@:3: smtp: missing required key \"from\"\n"},
        {SMTP("url = \"smtps://m\"; from = \"gw@b.cn\"; port = 465;"),
         "@:3: smtp.port: unknown key\n"},
        {SMTP("url = \"smtps://m\"; from = \"gw\";"),
         "@:3: smtp.from: \"gw\" is not an address or \"Name <address>\"\n"},
        {SMTP("url = \"smtps://m\"; from = \"Gateway <gw@b.cn\";"),
         "@:3: smtp.from: \"Gateway <gw@b.cn\" is not an address or \"Name <address>\"\n"},
        {SMTP("url = \"smtps://m\"; from = \"Gateway <g w@b.cn>\";"),
         "@:3: smtp.from: \"Gateway <g w@b.cn>\" is not an address or \"Name <address>\"\n"},
        {SMTP("url = \"smtps://m\"; from = \"Gate\\nBcc: x@y.cn <gw@b.cn>\";"),
         "@:3: smtp.from: \"Gate\nBcc: x@y.cn <gw@b.cn>\" is not an address or \"Name "
         "<address>\"\n"},
        {SMTP("url = \"smtps://m\"; from = \"gw@b.cn\"; password = \"p\";"),
         "@:3: smtp.password: needs username too\n"},
        {SMTP("url = \"smtps://m\"; from = \"gw@b.cn\"; username = \"gw\";"),
         "@:3: smtp.username: needs password or password_file too\n"},
        {SMTP("url = \"smtps://m\"; from = \"gw@b.cn\"; username = \"gw\"; password = \"\";"),
         "@:3: smtp.password: must not be empty\n"},
        {SMTP("url = \"smtps://m\"; from = \"gw@b.cn\"; username = \"gw\"; password = \"p\";\n"
              "  password_file = \"/nonexistent/pw\";"),
         "@:4: smtp.password_file: give password or password_file, not both\n"},
        {SMTP("url = \"smtps://m\"; from = \"gw@b.cn\"; insecure = 1;"),
         "@:3: smtp.insecure: expected true or false, got an integer\n"},
        /* alarms */
        {"alarms = { chatter_count = 0; chatter_minutes = 0; storm_count = 0; flood_min = 1; "
         "};\n",
         "@:3: alarms.chatter_count: 0 is out of range 1..100\n"
         "@:3: alarms.chatter_minutes: 0 is out of range 1..1440\n"
         "@:3: alarms.storm_count: 0 is out of range 1..1000\n"
         "@:3: alarms.flood_min: 1 is out of range 2..1000\n"},
        {"alarms = { chatter_count = 101; chatter_minutes = 1441; storm_count = 1001; flood_min "
         "= 1001; };\n",
         "@:3: alarms.chatter_count: 101 is out of range 1..100\n"
         "@:3: alarms.chatter_minutes: 1441 is out of range 1..1440\n"
         "@:3: alarms.storm_count: 1001 is out of range 1..1000\n"
         "@:3: alarms.flood_min: 1001 is out of range 2..1000\n"},
        {"alarms = { chatter = 5; };\n", "@:3: alarms.chatter: unknown key\n"},
        {"alarms = { storm_count = \"10\"; };\n",
         "@:3: alarms.storm_count: expected an integer, got a string\n"},
        {"alarms = ( );\n", "@:3: alarms: expected a group { ... }, got a list\n"},
        /* selftest */
        {"selftest = { at = \"24:00\"; };\n",
         "@:3: selftest.at: bad time \"24:00\" (HH:MM, 00:00..23:59)\n"},
        {"selftest = { at = \"03:60\"; };\n",
         "@:3: selftest.at: bad time \"03:60\" (HH:MM, 00:00..23:59)\n"},
        {"selftest = { at = \"3am\"; };\n",
         "@:3: selftest.at: bad time \"3am\" (HH:MM, 00:00..23:59)\n"},
        {"selftest = { at = 300; };\n", "@:3: selftest.at: expected a string, got an integer\n"},
        {"selftest = { timeout_s = 9; };\n",
         "@:3: selftest.timeout_s: 9 is out of range 10..3600\n"},
        {"selftest = { timeout_s = 3601; };\n",
         "@:3: selftest.timeout_s: 3601 is out of range 10..3600\n"},
        {"selftest = { enabled = \"yes\"; };\n",
         "@:3: selftest.enabled: expected true or false, got a string\n"},
        {"selftest = { daily = true; };\n", "@:3: selftest.daily: unknown key\n"},
    };
#undef CH
#undef ESC_FAC
#undef TWO
#undef SMTP
#undef NO_ALARM_LEVELS
    for (size_t i = 0; i < N_CASES(cases); i++) {
        struct tmpdir t;
        const char *path = NULL;
        char *out = NULL;
        struct gw_config *cfg = load_people(&t, cases[i].text, &path, &out);
        char *want = expand_at(cases[i].want, path);
        if (cfg || strcmp(out, want) != 0) {
            print_error("case %zu:\n got: %s want: %s", i, out, want);
        }
        assert_null(cfg);
        assert_string_equal(out, want);
        assert_null(strstr(out, "SECRETKEY"));
        free(want);
        free(out);
        tmp_cleanup(&t);
    }
}

/* ---- hazards, kpi (issue 7) -------------------------------------------- */

/* Rules on line 3, contacts on line 4: what the hazards section names. */
#define HZ_RULES                                                                                   \
    "rules = ( { name = \"hydrant pressure low\"; kind = \"hydrant_pressure\"; point = "           \
    "\"pressure\"; below = 0.1; class = \"supervisory\"; }, { name = \"exit locked\"; kind = "     \
    "\"exit_door\"; point = \"state\"; equals = \"locked\"; class = \"supervisory\"; }, { name = " \
    "\"smoke\"; kind = \"smoke\"; point = \"smoke\"; equals = true; class = \"alarm\"; } );\n"     \
    "contacts = { principal = ( { mqtt = \"notify/principal\"; } ); district = ( { mqtt = "        \
    "\"notify/district\"; } ); };\n"                                                               \
    "escalation = { alarm = ( { after_s = 0; notify = [ \"principal\" ]; } ); };\n"

/* The rules apply to no sensor here: said once each. */
#define HZ_WARN                                                                                    \
    "warning: @:3: rules[0]: applies to no sensor\n"                                               \
    "warning: @:3: rules[1]: applies to no sensor\n"                                               \
    "warning: @:3: rules[2]: applies to no sensor\n"

static void test_hazards_kpi_defaults(void **state)
{
    (void)state;
    struct tmpdir t;
    const char *path;
    char *out = NULL;
    struct gw_config *cfg = load_people(&t, "", &path, &out);
    assert_non_null(cfg);
    assert_int_equal(cfg->hazards.nauto_open, 0);
    assert_null(cfg->hazards.auto_open);
    static const int days[GW_HAZARD_NCATEGORIES] = {7, 1, 7, 30, 30, 14};
    for (int c = 0; c < GW_HAZARD_NCATEGORIES; c++) {
        assert_int_equal(cfg->hazards.deadline_days[c], days[c]);
    }
    assert_int_equal(cfg->hazards.nlevels, 0);
    assert_null(cfg->hazards.levels);
    assert_int_equal(cfg->hazards.line, 0);
    assert_int_equal(cfg->kpi.interval_s, 3600);
    assert_string_equal(gw_config_hazard_category_name(0), "fire_equipment");
    assert_string_equal(gw_config_hazard_category_name(5), "other");
    assert_null(gw_config_hazard_category_name(6));
    assert_null(gw_config_hazard_category_name(-1));
    gw_config_free(cfg);
    free(out);
    tmp_cleanup(&t);
    /* an empty auto_open and empty groups keep the defaults */
    cfg = load_people(&t,
                      HZ_RULES "hazards = { auto_open = [ ]; deadline_days = { }; };\nkpi = { };\n",
                      &path, &out);
    assert_non_null(cfg);
    assert_int_equal(cfg->hazards.nauto_open, 0);
    assert_int_equal(cfg->hazards.deadline_days[GW_HAZARD_NCATEGORIES - 1], 14);
    assert_int_equal(cfg->hazards.line, 6);
    assert_int_equal(cfg->kpi.interval_s, 3600);
    assert_int_equal(gw_config_find_rule(cfg, "exit locked"), 1);
    assert_int_equal(gw_config_find_rule(cfg, "exit"), -1);
    assert_int_equal(gw_config_find_rule(cfg, NULL), -1);
    gw_config_free(cfg);
    free(out);
    tmp_cleanup(&t);
}

static void test_hazards_kpi_good(void **state)
{
    (void)state;
    struct tmpdir t;
    const char *path;
    char *out = NULL;
    struct gw_config *cfg = load_people(
        &t,
        HZ_RULES
        "hazards = { auto_open = [ \"hydrant pressure low\", \"exit locked\" ];\n"
        "  deadline_days = { fire_equipment = 3; other = 365; evacuation_route = 1; };\n"
        "  escalation = ( { after_s = 0; notify = [ \"principal\" ]; },\n"
        "    { after_s = 86400; notify = [ \"district\", \"principal\" ]; repeat_s = 86400; "
        "} ); };\n"
        "kpi = { interval_s = 10; };\n",
        &path, &out);
    if (!cfg) {
        print_error("%s", out);
    }
    assert_non_null(cfg);
    const struct gw_hazards_cfg *h = &cfg->hazards;
    assert_int_equal(h->nauto_open, 2);
    assert_string_equal(h->auto_open[0], "hydrant pressure low");
    assert_string_equal(h->auto_open[1], "exit locked");
    static const int days[GW_HAZARD_NCATEGORIES] = {3, 1, 7, 30, 30, 365};
    for (int c = 0; c < GW_HAZARD_NCATEGORIES; c++) {
        assert_int_equal(h->deadline_days[c], days[c]);
    }
    assert_int_equal(h->nlevels, 2);
    assert_int_equal(h->levels[0].after_s, 0);
    assert_int_equal(h->levels[0].ncontacts, 1);
    assert_int_equal(h->levels[0].contacts[0], 0);
    assert_int_equal(h->levels[0].repeat_s, 0);
    assert_int_equal(h->levels[1].after_s, 86400);
    assert_int_equal(h->levels[1].ncontacts, 2);
    assert_int_equal(h->levels[1].contacts[0], 1);
    assert_int_equal(h->levels[1].contacts[1], 0);
    assert_int_equal(h->levels[1].repeat_s, 86400);
    assert_int_equal(h->levels[1].line, 9);
    assert_int_equal(h->line, 6);
    assert_int_equal(cfg->kpi.interval_s, 10);
    /* the class escalation is untouched */
    assert_int_equal(cfg->escalation.nlevels[GW_CLASS_SUPERVISORY], 0);
    char *sum = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sum, &len);
    gw_config_print_summary(cfg, f);
    fclose(f);
    const char *want =
        "\nhazards: auto-open from \"hydrant pressure low\", \"exit locked\"\n"
        "  deadlines (days): fire_equipment 3, evacuation_route 1, electrical 7, structure 30, "
        "surroundings 30, other 365\n"
        "  overdue told: at 0 s principal; at 86400 s district, principal, again every 86400 s\n"
        "kpi: every 10 s\n"
        "config OK\n";
    if (!strstr(sum, want)) {
        print_error("summary:\n%s", sum);
    }
    assert_non_null(strstr(sum, want));
    free(sum);
    gw_config_free(cfg);
    free(out);
    tmp_cleanup(&t);
    /* the limits themselves */
    cfg = load_people(&t,
                      "hazards = { deadline_days = { fire_equipment = 1; evacuation_route = 365; "
                      "electrical = 1; structure = 1; surroundings = 1; other = 1; }; };\n"
                      "kpi = { interval_s = 86400; };\n",
                      &path, &out);
    assert_non_null(cfg);
    assert_int_equal(cfg->hazards.deadline_days[1], 365);
    assert_int_equal(cfg->kpi.interval_s, 86400);
    gw_config_free(cfg);
    free(out);
    tmp_cleanup(&t);
}

static void test_hazards_kpi_bad(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"hazards = 5;\n", "@:3: hazards: expected a group { ... }, got an integer\n"},
        {"hazards = { colour = 1; };\n", "@:3: hazards.colour: unknown key\n"},
        {HZ_RULES "hazards = { auto_open = [ \"hydrant pressure lo\" ]; };\n",
         HZ_WARN "@:6: hazards.auto_open: unknown rule \"hydrant pressure lo\"\n"},
        {"hazards = { auto_open = [ \"hydrant pressure low\" ]; };\n",
         "@:3: hazards.auto_open: unknown rule \"hydrant pressure low\"\n"},
        {HZ_RULES "hazards = { auto_open = [ \"smoke\" ]; };\n", HZ_WARN
         "@:6: hazards.auto_open: rule \"smoke\" is class alarm (line 3); only supervisory alarms "
         "open hazards\n"},
        {HZ_RULES "hazards = { auto_open = [ \"exit locked\", \"exit locked\" ]; };\n",
         HZ_WARN "@:6: hazards.auto_open: \"exit locked\" is listed twice\n"},
        {HZ_RULES "hazards = { auto_open = \"exit locked\"; };\n", HZ_WARN
         "@:6: hazards.auto_open: expected an array of strings [ \"a\", \"b\" ] (or [ ]), got a "
         "string\n"},
        {HZ_RULES "hazards = { auto_open = [ 1, 2 ]; };\n", HZ_WARN
         "@:6: hazards.auto_open: expected an array of strings [ \"a\", \"b\" ] (or [ ]), got an "
         "array [ ... ]\n"},
        {"hazards = { deadline_days = { fire_equipment = 0; }; };\n",
         "@:3: hazards.deadline_days.fire_equipment: 0 is out of range 1..365\n"},
        {"hazards = { deadline_days = { other = 366; }; };\n",
         "@:3: hazards.deadline_days.other: 366 is out of range 1..365\n"},
        {"hazards = { deadline_days = { fire = 3; }; };\n",
         "@:3: hazards.deadline_days.fire: unknown key\n"},
        {"hazards = { deadline_days = { electrical = \"7\"; }; };\n",
         "@:3: hazards.deadline_days.electrical: expected an integer, got a string\n"},
        {"hazards = { deadline_days = 7; };\n",
         "@:3: hazards.deadline_days: expected a group { ... }, got an integer\n"},
        {HZ_RULES "hazards = { escalation = ( ); };\n",
         HZ_WARN "@:6: hazards.escalation: give at least one level (leave it out to use "
                 "escalation.supervisory's)\n"},
        {HZ_RULES "hazards = { escalation = ( { after_s = 0; notify = [ \"nobody\" ]; } ); };\n",
         HZ_WARN "@:6: hazards.escalation[0].notify: unknown contact \"nobody\"\n"},
        {HZ_RULES "hazards = { escalation = ( { after_s = 60; notify = [ \"principal\" ]; },\n"
                  "  { after_s = 60; notify = [ \"district\" ]; } ); };\n",
         HZ_WARN
         "@:7: hazards.escalation[1].after_s: 60 is not after the level before (60); levels go in "
         "time order\n"},
        {HZ_RULES "hazards = { escalation = ( { after_s = 0; notify = [ \"principal\" ]; "
                  "repeat_s = 600; }, { after_s = 60; notify = [ \"district\" ]; } ); };\n",
         HZ_WARN
         "@:6: hazards.escalation[0].repeat_s: only on the last level (it tells the last level "
         "again until someone acknowledges)\n"},
        {HZ_RULES "hazards = { escalation = ( 5 ); };\n",
         HZ_WARN "@:6: hazards.escalation[0]: expected a group { ... }, got an integer\n"},
        {HZ_RULES "hazards = { escalation = { after_s = 0; }; };\n",
         HZ_WARN "@:6: hazards.escalation: expected a list ( ... ), got a group\n"},
        {"kpi = { interval_s = 9; };\n", "@:3: kpi.interval_s: 9 is out of range 10..86400\n"},
        {"kpi = { interval_s = 86401; };\n",
         "@:3: kpi.interval_s: 86401 is out of range 10..86400\n"},
        {"kpi = { every = 5; };\n", "@:3: kpi.every: unknown key\n"},
        {"kpi = 3600;\n", "@:3: kpi: expected a group { ... }, got an integer\n"},
        {"kpi = { interval_s = 60.5; };\n",
         "@:3: kpi.interval_s: expected an integer, got a float\n"},
    };
    for (size_t i = 0; i < N_CASES(cases); i++) {
        struct tmpdir t;
        const char *path = NULL;
        char *out = NULL;
        struct gw_config *cfg = load_people(&t, cases[i].text, &path, &out);
        char *want = expand_at(cases[i].want, path);
        if (cfg || strcmp(out, want) != 0) {
            print_error("case %zu:\n got: %s want: %s", i, out, want);
        }
        assert_null(cfg);
        assert_string_equal(out, want);
        free(want);
        free(out);
        tmp_cleanup(&t);
    }
}
#undef HZ_RULES
#undef HZ_WARN

/* ---- http (issue 6) ---------------------------------------------------- */

#define HTTP_CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define HTTP_KEY_PEM "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

/* Fast Argon2id hashes: the config checks their form, not their cost. */
static void fast_hash(const char *secret, char out[crypto_pwhash_STRBYTES])
{
    assert_true(sodium_init() >= 0);
    assert_int_equal(crypto_pwhash_str(out, secret, strlen(secret), crypto_pwhash_OPSLIMIT_MIN,
                                       crypto_pwhash_MEMLIMIT_MIN),
                     0);
}

/*
 * BASE_HEAD (lines 1-2) + text (line 3 on) as c.cfg in t (already made); in
 * text "HASH" becomes a real Argon2id hash (of "pw") and "DIR" t's directory.
 */
static struct gw_config *load_http(struct tmpdir *t, const char *text, const char **path,
                                   char **out)
{
    char hash[crypto_pwhash_STRBYTES];
    fast_hash("pw", hash);
    size_t n = strlen(BASE_HEAD) + 1;
    for (const char *c = text; *c; c++) {
        n += strncmp(c, "HASH", 4) == 0  ? strlen(hash)
             : strncmp(c, "DIR", 3) == 0 ? strlen(t->dir)
                                         : 1;
    }
    char *s = malloc(n);
    assert_non_null(s);
    char *w = stpcpy(s, BASE_HEAD);
    for (const char *c = text; *c;) {
        if (strncmp(c, "HASH", 4) == 0) {
            w = stpcpy(w, hash);
            c += 4;
        } else if (strncmp(c, "DIR", 3) == 0) {
            w = stpcpy(w, t->dir);
            c += 3;
        } else {
            *w++ = *c++;
        }
    }
    *w = '\0';
    *path = tmp_write(t, "c.cfg", s, 0600);
    free(s);
    return load(*path, out);
}

static void test_http_defaults(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    const char *path;
    char *out = NULL;
    struct gw_config *cfg = load_http(&t, "", &path, &out);
    assert_non_null(cfg);
    assert_string_equal(out, "");
    const struct gw_http_cfg *h = &cfg->http;
    assert_string_equal(h->listen_host, "127.0.0.1");
    assert_int_equal(h->listen_port, 8080);
    assert_true(h->loopback);
    assert_null(h->cert_file);
    assert_null(h->key_file);
    assert_int_equal(h->session_minutes, 480);
    assert_int_equal(h->nusers, 0);
    assert_null(h->users);
    assert_int_equal(h->line, 0);
    gw_config_free(cfg);
    free(out);

    /* an empty section and an empty user list: the same, with the section's line */
    cfg = load_http(&t, "\nhttp = { users = ( ); };\n", &path, &out);
    assert_non_null(cfg);
    assert_string_equal(out, "");
    assert_int_equal(cfg->http.line, 4);
    assert_int_equal(cfg->http.nusers, 0);
    assert_true(cfg->http.loopback);
    char *sum = summary(cfg);
    assert_non_null(strstr(
        sum,
        "\nhttp: listen 127.0.0.1:8080, HTTP, no users (read-only, loopback only)\n"
        "hazards: auto-open none\n"
        "  deadlines (days): fire_equipment 7, evacuation_route 1, electrical 7, structure 30, "
        "surroundings 30, other 14\n"
        "  overdue told: as escalation.supervisory\n"
        "kpi: every 3600 s\n"
        "config OK\n"));
    free(sum);
    gw_config_free(cfg);
    free(out);
    tmp_cleanup(&t);
}

static void test_http_good(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    tmp_write(&t, "gw.crt", HTTP_CERT_PEM, 0644);
    tmp_write(&t, "gw.key", HTTP_KEY_PEM, 0600);
    const char *path;
    char *out = NULL;
    struct gw_config *cfg =
        load_http(&t,
                  "http = {\n"
                  "  listen = \"[::]:8443\";\n"
                  "  cert_file = \"DIR/gw.crt\"; key_file = \"DIR/gw.key\";\n"
                  "  session_minutes = 5;\n"
                  "  users = (\n"
                  "    { name = \"wang\"; role = \"operator\"; password_hash = "
                  "\"HASH\"; },\n"
                  "    { name = \"li.na_2-b\"; role = \"viewer\"; password_hash "
                  "= \"HASH\";\n"
                  "      token_hash = \"HASH\"; }\n"
                  "  );\n"
                  "};\n",
                  &path, &out);
    assert_string_equal(out, "");
    assert_non_null(cfg);
    const struct gw_http_cfg *h = &cfg->http;
    assert_int_equal(h->line, 3);
    assert_string_equal(h->listen_host, "::");
    assert_int_equal(h->listen_port, 8443);
    assert_false(h->loopback);
    char want[160];
    snprintf(want, sizeof(want), "%s/gw.crt", t.dir);
    assert_string_equal(h->cert_file, want);
    snprintf(want, sizeof(want), "%s/gw.key", t.dir);
    assert_string_equal(h->key_file, want);
    assert_int_equal(h->session_minutes, 5);
    assert_int_equal(h->nusers, 2);
    assert_string_equal(h->users[0].name, "wang");
    assert_int_equal(h->users[0].role, GW_ROLE_OPERATOR);
    assert_int_equal(strncmp(h->users[0].password_hash, "$argon2id$v=19$", 15), 0);
    assert_null(h->users[0].token_hash);
    assert_int_equal(h->users[0].line, 8);
    assert_string_equal(h->users[1].name, "li.na_2-b");
    assert_int_equal(h->users[1].role, GW_ROLE_VIEWER);
    assert_non_null(h->users[1].token_hash);
    assert_int_equal(h->users[1].line, 9);
    /* the summary names users and roles, never a hash */
    char *sum = summary(cfg);
    assert_non_null(strstr(
        sum,
        "\nhttp: listen [::]:8443, HTTPS, sessions end after 5 min idle, "
        "2 users: wang (operator), li.na_2-b (viewer, token)\n"
        "hazards: auto-open none\n"
        "  deadlines (days): fire_equipment 7, evacuation_route 1, electrical 7, structure 30, "
        "surroundings 30, other 14\n"
        "  overdue told: as escalation.supervisory\n"
        "kpi: every 3600 s\n"
        "config OK\n"));
    assert_null(strstr(sum, "argon2"));
    free(sum);
    gw_config_free(cfg);
    free(out);

    /* the largest session time; a loopback IPv6 listen */
    cfg = load_http(&t,
                    "http = { listen = \"[::1]:80\"; session_minutes = 10080;\n"
                    "  users = ( { name = \"a\"; role = \"viewer\"; password_hash = \"HASH\"; } ); "
                    "};\n",
                    &path, &out);
    assert_string_equal(out, "");
    assert_non_null(cfg);
    assert_true(cfg->http.loopback);
    assert_int_equal(cfg->http.session_minutes, 10080);
    sum = summary(cfg);
    assert_non_null(strstr(sum, "\nhttp: listen [::1]:80, HTTP, sessions end after 10080 min "
                                "idle, 1 user: a (viewer)\n"));
    free(sum);
    gw_config_free(cfg);
    free(out);
    tmp_cleanup(&t);
}

/* Without users only a loopback listen loads; which addresses count as loopback. */
static void test_http_loopback(void **state)
{
    (void)state;
    static const struct {
        const char *listen;
        bool loopback;
    } cases[] = {
        {"127.0.0.1:8080", true},
        {"127.255.0.9:1", true},
        {"[::1]:8080", true},
        {"[::ffff:127.0.0.1]:8080", true},
        {"0.0.0.0:8080", false},
        {"192.0.2.1:8080", false},
        {"128.0.0.1:8080", false},
        {"[::]:8080", false},
        {"[::ffff:192.0.2.1]:80", false},
        {"[::2]:8080", false},
        {"[fe80::1]:8080", false},
    };
    for (size_t i = 0; i < N_CASES(cases); i++) {
        struct tmpdir t;
        tmp_init(&t);
        char text[128];
        snprintf(text, sizeof(text), "http = { listen = \"%s\"; };\n", cases[i].listen);
        const char *path;
        char *out = NULL;
        struct gw_config *cfg = load_http(&t, text, &path, &out);
        if (cases[i].loopback) {
            assert_non_null(cfg);
            assert_string_equal(out, "");
            assert_true(cfg->http.loopback);
        } else {
            char want[512];
            snprintf(want, sizeof(want),
                     "%s:3: http.listen: \"%s\" without users: the page would be read-only and "
                     "open to the network; campusgw refuses a listen address other than loopback "
                     "without users (add http.users, or listen on 127.0.0.1)\n",
                     path, cases[i].listen);
            if (cfg || strcmp(out, want) != 0) {
                print_error("case %s: %s", cases[i].listen, out);
            }
            assert_null(cfg);
            assert_string_equal(out, want);
        }
        gw_config_free(cfg);
        free(out);
        tmp_cleanup(&t);
    }
}

/* Loads with these warnings, and nothing else. */
static void test_http_warnings(void **state)
{
    (void)state;
    struct tmpdir t;
    tmp_init(&t);
    tmp_write(&t, "gw.crt", HTTP_CERT_PEM, 0644);
    tmp_write(&t, "open.key", HTTP_KEY_PEM, 0644);
    const char *path;
    char *out = NULL;
    struct gw_config *cfg =
        load_http(&t,
                  "http = { listen = \"0.0.0.0:8080\";\n"
                  "  users = ( { name = \"wang\"; role = \"operator\"; password_hash = \"HASH\"; } "
                  "); };\n",
                  &path, &out);
    assert_non_null(cfg);
    char *want = expand_at("warning: @:3: http.listen: \"0.0.0.0:8080\" is not loopback and "
                           "there is no cert_file/key_file: passwords and session cookies would "
                           "cross the network in clear text (set cert_file and key_file)\n",
                           path);
    assert_string_equal(out, want);
    assert_false(cfg->http.loopback);
    free(want);
    gw_config_free(cfg);
    free(out);

    cfg = load_http(&t,
                    "http = { listen = \"0.0.0.0:8443\";\n"
                    "  cert_file = \"DIR/gw.crt\";\n"
                    "  key_file = \"DIR/open.key\";\n"
                    "  users = ( { name = \"wang\"; role = \"operator\"; password_hash = \"HASH\"; "
                    "} ); };\n",
                    &path, &out);
    assert_non_null(cfg);
    char buf[512];
    snprintf(buf, sizeof(buf),
             "warning: @:5: http.key_file: \"%s/open.key\" is readable by group or others (mode "
             "0644); chmod 600 it\n",
             t.dir);
    want = expand_at(buf, path);
    assert_string_equal(out, want);
    free(want);
    gw_config_free(cfg);
    free(out);
    tmp_cleanup(&t);
}

static void test_http_bad(void **state)
{
    (void)state;
#define USER(keys) "http = { users = ( { " keys " } ); };\n"
#define NOT_ARGON2ID(p)                                                                            \
    "@:3: http.users[0]." p ": not an Argon2id hash (it starts with \"$argon2id$\"; make one "     \
    "with campusgw --hash-password)\n"
#define MALFORMED(p)                                                                               \
    "@:3: http.users[0]." p ": a malformed Argon2id hash that libsodium cannot read (make one "    \
    "with campusgw --hash-password)\n"
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        /* the section and its keys */
        {"http = 5;\n", "@:3: http: expected a group { ... }, got an integer\n"},
        {"http = { port = 8080; };\n", "@:3: http.port: unknown key\n"},
        {"http = { listen = 8080; };\n", "@:3: http.listen: expected a string, got an integer\n"},
        {"http = { listen = \"\"; };\n",
         "@:3: http.listen: \"\" is not address:port (e.g. \"127.0.0.1:8080\"; an IPv6 address "
         "goes in brackets: \"[::1]:8080\")\n"},
        {"http = { listen = \"127.0.0.1\"; };\n",
         "@:3: http.listen: \"127.0.0.1\" is not address:port (e.g. \"127.0.0.1:8080\"; an IPv6 "
         "address goes in brackets: \"[::1]:8080\")\n"},
        {"http = { listen = \"::1:8080\"; };\n",
         "@:3: http.listen: \"::1:8080\" is not address:port (e.g. \"127.0.0.1:8080\"; an IPv6 "
         "address goes in brackets: \"[::1]:8080\")\n"},
        {"http = { listen = \"[::1]8080\"; };\n",
         "@:3: http.listen: \"[::1]8080\" is not address:port (e.g. \"127.0.0.1:8080\" or "
         "\"[::1]:8080\")\n"},
        {"http = { listen = \"localhost:8080\"; };\n",
         "@:3: http.listen: \"localhost\" in \"localhost:8080\" is not an IPv4 address\n"},
        {"http = { listen = \"[127.0.0.1]:8080\"; };\n",
         "@:3: http.listen: \"127.0.0.1\" in \"[127.0.0.1]:8080\" is not an IPv6 address\n"},
        {"http = { listen = \"127.0.0.1:0\"; };\n",
         "@:3: http.listen: bad port \"0\" in \"127.0.0.1:0\" (1..65535)\n"},
        {"http = { listen = \"127.0.0.1:65536\"; };\n",
         "@:3: http.listen: bad port \"65536\" in \"127.0.0.1:65536\" (1..65535)\n"},
        {"http = { listen = \"127.0.0.1:80x\"; };\n",
         "@:3: http.listen: bad port \"80x\" in \"127.0.0.1:80x\" (1..65535)\n"},
        {"http = { session_minutes = 4; };\n",
         "@:3: http.session_minutes: 4 is out of range 5..10080\n"},
        {"http = { session_minutes = 10081; };\n",
         "@:3: http.session_minutes: 10081 is out of range 5..10080\n"},
        {"http = { session_minutes = 60.0; };\n",
         "@:3: http.session_minutes: expected an integer, got a float\n"},
        /* HTTPS: both files or neither, readable, PEM */
        {"http = { cert_file = \"DIR/gw.crt\"; };\n", "@:3: http.cert_file: needs key_file too\n"},
        {"http = { key_file = \"DIR/gw.key\"; };\n", "@:3: http.key_file: needs cert_file too\n"},
        {"http = { cert_file = \"DIR/none.crt\"; key_file = \"DIR/gw.key\"; };\n",
         "@:3: http.cert_file: cannot read \"DIR/none.crt\": No such file or directory\n"},
        {"http = { cert_file = \"DIR/gw.crt\"; key_file = \"DIR/none.key\"; };\n",
         "@:3: http.key_file: cannot read \"DIR/none.key\": No such file or directory\n"},
        {"http = { cert_file = \"DIR/gw.key\"; key_file = \"DIR/gw.key\"; };\n",
         "@:3: http.cert_file: \"DIR/gw.key\" holds no PEM certificate (a line \"-----BEGIN "
         "CERTIFICATE-----...\")\n"},
        {"http = { cert_file = \"DIR/gw.crt\"; key_file = \"DIR/gw.crt\"; };\n",
         "warning: @:3: http.key_file: \"DIR/gw.crt\" is readable by group or others (mode "
         "0644); chmod 600 it\n"
         "@:3: http.key_file: \"DIR/gw.crt\" holds no PEM private key (a line \"PRIVATE "
         "KEY-----...\")\n"},
        {"http = { cert_file = \"DIR/gw.crt\"; key_file = \"DIR/empty.key\"; };\n",
         "@:3: http.key_file: \"DIR/empty.key\" is empty\n"},
        /* no users: loopback only */
        {"http = { listen = \"0.0.0.0:8080\";\n  users = ( ); };\n",
         "@:3: http.listen: \"0.0.0.0:8080\" without users: the page would be read-only and "
         "open to the network; campusgw refuses a listen address other than loopback without "
         "users (add http.users, or listen on 127.0.0.1)\n"},
        {"http = { listen = \"0.0.0.0:8080\";\n  users = 5; };\n",
         "@:4: http.users: expected a list ( ... ), got an integer\n"},
        /* users */
        {"http = { users = { }; };\n", "@:3: http.users: expected a list ( ... ), got a group\n"},
        {"http = { users = ( \"wang\" ); };\n",
         "@:3: http.users[0]: expected a group { ... }, got a string\n"},
        {USER(""), "@:3: http.users[0]: missing required key \"name\"\n"
                   "@:3: http.users[0]: missing required key \"role\"\n"
                   "@:3: http.users[0]: missing required key \"password_hash\"\n"},
        {USER("name = \"wang\"; role = \"admin\"; password_hash = \"HASH\";"),
         "@:3: http.users[0].role: \"admin\" is not one of viewer, operator\n"},
        {USER("name = \"wang\"; role = 1; password_hash = \"HASH\";"),
         "@:3: http.users[0].role: expected a string, got an integer\n"},
        {USER("name = \"wang li\"; role = \"viewer\"; password_hash = \"HASH\";"),
         "@:3: http.users[0].name: \"wang li\" must be 1..47 of A-Z a-z 0-9 _ . -\n"},
        {USER("name = \"a23456789012345678901234567890123456789012345678\"; role = \"viewer\"; "
              "password_hash = \"HASH\";"),
         "@:3: http.users[0].name: \"a23456789012345678901234567890123456789012345678\" must be "
         "1..47 of A-Z a-z 0-9 _ . -\n"},
        {USER("name = \"\"; role = \"viewer\"; password_hash = \"HASH\";"),
         "@:3: http.users[0].name: must not be empty\n"},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = \"HASH\"; email = \"x\";"),
         "@:3: http.users[0].email: unknown key\n"},
        {"http = { users = (\n"
         "  { name = \"wang\"; role = \"viewer\"; password_hash = \"HASH\"; },\n"
         "  { name = \"wang\"; role = \"operator\"; password_hash = \"HASH\"; } ); };\n",
         "@:5: http.users[1].name: duplicate user name \"wang\" (first at line 4)\n"},
        /* hashes: Argon2id that libsodium reads; the value is never echoed */
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = \"hunter2-SECRETKEY\";"),
         NOT_ARGON2ID("password_hash")},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = \"\";"),
         "@:3: http.users[0].password_hash: must not be empty\n"},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = "
              "\"$argon2i$v=19$m=4096,t=3,p=1$SECRETKEY$abc\";"),
         NOT_ARGON2ID("password_hash")},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = "
              "\"$2b$12$SECRETKEYSECRETKEYSECRE\";"),
         NOT_ARGON2ID("password_hash")},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = \"$argon2id$SECRETKEY\";"),
         MALFORMED("password_hash")},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = "
              "\"$argon2id$v=19$m=65536,t=2,p=1$SECRETKEY\";"),
         MALFORMED("password_hash")},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = "
              "\"$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$SECRETKEY!\";"),
         MALFORMED("password_hash")},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = \"HASHHASH\";"),
         MALFORMED("password_hash")},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = \"HASH\"; token_hash = "
              "\"SECRETKEY\";"),
         NOT_ARGON2ID("token_hash")},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = \"HASH\"; token_hash = "
              "\"$argon2id$v=19$m=65536,t=2,p=1$SECRETKEY\";"),
         MALFORMED("token_hash")},
        {USER("name = \"wang\"; role = \"viewer\"; password_hash = \"HASH\"; token_hash = 5;"),
         "@:3: http.users[0].token_hash: expected a string, got an integer\n"},
    };
#undef USER
#undef NOT_ARGON2ID
#undef MALFORMED
    for (size_t i = 0; i < N_CASES(cases); i++) {
        struct tmpdir t;
        tmp_init(&t);
        tmp_write(&t, "gw.crt", HTTP_CERT_PEM, 0644);
        tmp_write(&t, "gw.key", HTTP_KEY_PEM, 0600);
        tmp_write(&t, "empty.key", "\n", 0600);
        const char *path = NULL;
        char *out = NULL;
        struct gw_config *cfg = load_http(&t, cases[i].text, &path, &out);
        /* DIR in the expected text too: first, so that a temp dir name holding "DIR"
         * (mkdtemp's random letters) is never expanded again */
        const char *w0 = cases[i].want;
        size_t n = strlen(w0) + 1;
        for (const char *c = w0; *c; c++) {
            n += strncmp(c, "DIR", 3) == 0 ? strlen(t.dir) : 0;
        }
        char *w1 = malloc(n);
        assert_non_null(w1);
        char *w = w1;
        for (const char *c = w0; *c;) {
            if (strncmp(c, "DIR", 3) == 0) {
                w = stpcpy(w, t.dir);
                c += 3;
            } else {
                *w++ = *c++;
            }
        }
        *w = '\0';
        char *want = expand_at(w1, path);
        if (cfg || strcmp(out, want) != 0) {
            print_error("case %zu:\n got: %s want: %s", i, out, want);
        }
        assert_null(cfg);
        assert_string_equal(out, want);
        assert_null(strstr(out, "SECRETKEY"));
        assert_null(strstr(out, "argon2id$v=19"));
        free(want);
        free(w1);
        free(out);
        tmp_cleanup(&t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_config),
        cmocka_unit_test(test_good_full),
        cmocka_unit_test(test_demo_config_enum),
        cmocka_unit_test(test_good_minimal_defaults),
        cmocka_unit_test(test_good_later_sections),
        cmocka_unit_test(test_bad_fixtures),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_schedule_syntax),
        cmocka_unit_test(test_tcp_address),
        cmocka_unit_test(test_password_file),
        cmocka_unit_test(test_password_file_errors),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_influx_url),
        cmocka_unit_test(test_influx_clear_text),
        cmocka_unit_test(test_influx_v2_files),
        cmocka_unit_test(test_influx_v1_password_file),
        cmocka_unit_test(test_uplink_tls),
        cmocka_unit_test(test_summary_outbox_sections),
        cmocka_unit_test(test_slugify),
        cmocka_unit_test(test_class_names_and_lookups),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_good_lora),
        cmocka_unit_test(test_lora_listen),
        cmocka_unit_test(test_lora_regions),
        cmocka_unit_test(test_layout_field_types),
        cmocka_unit_test(test_layout_masks),
        cmocka_unit_test(test_layout_field_count),
        cmocka_unit_test(test_lora_key_files),
        cmocka_unit_test(test_lora_expect_every_warning),
        cmocka_unit_test(test_js_paths),
        cmocka_unit_test(test_mqtt_good),
        cmocka_unit_test(test_mqtt_expect_every_warning),
        cmocka_unit_test(test_mqtt_bad),
        cmocka_unit_test(test_mqtt_rule_points),
        cmocka_unit_test(test_good_people),
        cmocka_unit_test(test_people_partial_defaults),
        cmocka_unit_test(test_smtp_url),
        cmocka_unit_test(test_smtp_files),
        cmocka_unit_test(test_people_warnings),
        cmocka_unit_test(test_people_bad),
        cmocka_unit_test(test_http_defaults),
        cmocka_unit_test(test_http_good),
        cmocka_unit_test(test_http_loopback),
        cmocka_unit_test(test_http_warnings),
        cmocka_unit_test(test_http_bad),
        cmocka_unit_test(test_hazards_kpi_defaults),
        cmocka_unit_test(test_hazards_kpi_good),
        cmocka_unit_test(test_hazards_kpi_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
