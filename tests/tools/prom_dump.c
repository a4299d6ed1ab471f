/*
 * gw-prom-dump: print the /metrics text (gateway/prom.c) of a filled-in
 * snapshot whose reason and sink names are hostile (quotes, backslashes,
 * newlines, carriage returns, invalid UTF-8, Chinese), for
 * tests/integration/test_prom_format.py to feed to `promtool check metrics`.
 * A test driver, not installed.
 *
 *   gw-prom-dump [--empty] [--uptime VALUE] [--extra]
 *
 * --empty starts from an all-zero snapshot instead (families without samples,
 * no RSS).
 * --uptime sets the uptime gauge (strtod: "nan", "inf", "-inf" work).
 * --extra appends a family built directly with the builder: a HELP text with
 * a backslash, a newline and invalid UTF-8, and the special float values.
 * Exit 0, 1 when rendering fails (the reason on stderr), 2 on bad usage.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

static void fill(struct gw_prom_snapshot *s)
{
    static const char *const reasons[] = {
        "crc",
        "bad_mic",
        "quote\"in",
        "back\\slash",
        "new\nline",
        "cr\rtab\t",
        "bad utf8 \xC3\x28 \xED\xA0\x80 \xF5\x80",
        "中文原因",
        "",
        "\\\"\n",
    };
    memset(s, 0, sizeof(*s));
    s->readings = 123456;
    s->poll_errors = 7;
    s->transitions = 42;
    s->nrejected = (int)(sizeof(reasons) / sizeof(reasons[0]));
    for (int i = 0; i < s->nrejected; i++) {
        s->rejected[i] = (struct gw_prom_count){reasons[i], (uint64_t)i * 3};
    }
    s->rejected[0].count = UINT64_MAX; /* exact in the text, past what a double holds */
    s->outbox = 17;
    s->nsinks = 3;
    s->sink_lag[0] = (struct gw_prom_count){"hub", 0};
    s->sink_lag[1] = (struct gw_prom_count){"up\"link\\", 5};
    s->sink_lag[2] = (struct gw_prom_count){"influx\n数据库", 12};
    s->dropped = 2;
    s->write_errors = 1;
    s->dead_letters = 3;
    for (int c = 0; c < GW_NCLASSES; c++) {
        for (int st = 0; st < GW_ALARM_NSTATES; st++) {
            s->alarms[c][st] = c * 10 + st;
        }
    }
    for (int k = 0; k < GW_PROM_NCHANNELS; k++) {
        s->notify[k].sent = 100u + (unsigned)k;
        s->notify[k].failed = (unsigned)k;
        s->notify[k].retries = 2u * (unsigned)k;
    }
    s->notify_pending = 1;
    s->commands = 9;
    s->commands_refused = 4;
    s->sensors_online = 209;
    s->sensors_offline = 3;
    s->sensors_faulty = 2;
    s->rss_bytes = 14680064;
    s->uptime_seconds = 3600.25;
}

/* A family exercising HELP escaping and every special value a gauge can take. */
static int extra(void)
{
    struct gw_prom *p = gw_prom_new();
    if (!p) {
        fprintf(stderr, "gw-prom-dump: out of memory\n");
        return 1;
    }
    static const double values[] = {NAN, INFINITY, -INFINITY, -0.0, 1e-300, 1.5e300, 0.1};
    int rc = gw_prom_family(p, "campusgw_test_values", GW_PROM_GAUGE,
                            "Test: back\\slash, new\nline, \"quotes\", bad \xFF byte, 中文.");
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]) && rc == 0; i++) {
        char index[8];
        snprintf(index, sizeof(index), "%zu", i);
        struct gw_prom_label l = {"case", index};
        rc = gw_prom_sample(p, &l, 1, values[i]);
    }
    if (rc != 0) {
        fprintf(stderr, "gw-prom-dump: %s\n", gw_prom_error(p));
    } else {
        fputs(gw_prom_text(p), stdout);
    }
    gw_prom_free(p);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct gw_prom_snapshot s;
    fill(&s);
    int with_extra = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--uptime") == 0 && i + 1 < argc) {
            char *end;
            s.uptime_seconds = strtod(argv[++i], &end);
            if (*end != '\0' || end == argv[i]) {
                fprintf(stderr, "gw-prom-dump: --uptime: not a number: %s\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--empty") == 0) {
            memset(&s, 0, sizeof(s));
        } else if (strcmp(argv[i], "--extra") == 0) {
            with_extra = 1;
        } else {
            fprintf(stderr, "usage: gw-prom-dump [--empty] [--uptime VALUE] [--extra]\n");
            return 2;
        }
    }
    char err[256];
    char *text = gw_prom_render(&s, err, sizeof(err));
    if (!text) {
        fprintf(stderr, "gw-prom-dump: %s\n", err);
        return 1;
    }
    fputs(text, stdout);
    free(text);
    return with_extra ? extra() : 0;
}
