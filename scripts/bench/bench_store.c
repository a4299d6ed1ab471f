#include "bench_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_put(struct bench_writer *w, enum gw_record_type type, int64_t ts, const char *topic,
               char *payload)
{
    if (!payload) {
        fprintf(stderr, "%s: out of memory\n", w->who);
        exit(1);
    }
    if (w->in_batch == 0) {
        gw_store_begin_batch(w->st);
    }
    if (gw_store_append(w->st, ++w->seq, type, ts, topic, payload) != 0) {
        fprintf(stderr, "%s: the store refused a record\n", w->who);
        exit(1);
    }
    free(payload);
    if (++w->in_batch == 1000) { /* one commit per 1,000 rows, as a busy gateway would */
        bench_flush(w);
    }
}

void bench_flush(struct bench_writer *w)
{
    if (w->in_batch > 0) {
        gw_store_end_batch(w->st);
        w->in_batch = 0;
    }
}

int bench_rule_of(const struct gw_config *cfg, const char *name, const char *who)
{
    for (int i = 0; i < cfg->nrules; i++) {
        if (strcmp(cfg->rules[i].name, name) == 0) {
            return i;
        }
    }
    fprintf(stderr, "%s: no rule %s\n", who, name);
    exit(1);
}
