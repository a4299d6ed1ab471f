#include "outbox.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "influx_policy.h"
#include "log.h"

#define MOD "outbox"
#define MAX_SINKS 4

struct slot {
    struct gw_outbox *ob;
    const struct gw_sink_ops *ops;
    void *state;
    int batch_max;
    int flush_ms;
    int64_t last_submit_ms;

    struct gw_record *batch;
    int nbatch;
    enum gw_stream stream;
    bool busy;    /* a batch is with the sink */
    bool waiting; /* the timer holds the next try (backoff or flush) */
    bool removed; /* stopping; freed once closed */
    int attempt;
    uv_timer_t timer;
    int open_handles; /* the timer and the sink */

    uint64_t delivered, retries, rejected;
    uint64_t rejected_unlogged;
    bool confirmed_once;
    struct gw_complaint complaint;
    struct gw_complaint reject_complaint;
};

struct gw_outbox {
    uv_loop_t *loop;
    struct gw_store *store;
    struct slot *slots[MAX_SINKS];
    int nslots;
    uv_idle_t idle; /* one pump per loop iteration, only when kicked */
    bool stopping;
    int closing;
    void (*done)(void *ctx);
    void *done_ctx;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pump(struct slot *s);

static void on_timer(uv_timer_t *t)
{
    struct slot *s = t->data;
    s->waiting = false;
    pump(s);
}

static void wait_then_pump(struct slot *s, int64_t ms)
{
    s->waiting = true;
    uv_timer_start(&s->timer, on_timer, (uint64_t)(ms > 0 ? ms : 0), 0);
}

static void free_batch(struct slot *s)
{
    gw_store_records_free(s->batch, s->nbatch);
    s->nbatch = 0;
}

static void on_done(void *ctx, enum gw_sink_result result, const char *error, const int *rejected,
                    int nrejected, int retry_after_ms)
{
    struct slot *s = ctx;
    struct gw_outbox *ob = s->ob;
    s->busy = false;
    const char *name = s->ops->name;
    if (result == GW_SINK_RETRY) {
        free_batch(s);
        s->retries++;
        s->attempt++;
        if (s->removed || ob->stopping) {
            return;
        }
        uint32_t rnd = ((uint32_t)rand() << 16) ^ (uint32_t)rand(); /* rand() has 31 bits */
        int delay = gw_retry_backoff_ms(s->attempt - 1, rnd);
        if (retry_after_ms > delay) {
            delay = retry_after_ms;
        }
        if (gw_complain(&s->complaint, now_ms())) {
            gw_warn(MOD, "sink %s failed, will retry error=\"%s\" retry_ms=%d", name,
                    error ? error : "unknown", delay);
        }
        wait_then_pump(s, delay);
        return;
    }
    if (result == GW_SINK_REJECT) {
        int n = rejected ? nrejected : s->nbatch;
        for (int i = 0; i < n; i++) {
            int idx = rejected ? rejected[i] : i;
            if (idx >= 0 && idx < s->nbatch) {
                gw_store_dead_letter(ob->store, name, &s->batch[idx], error, now_ms());
            }
        }
        s->rejected += (uint64_t)n;
        s->rejected_unlogged += (uint64_t)n;
        /* The same refusal comes with every batch of that series: once, then spaced. */
        if (gw_complain(&s->reject_complaint, now_ms())) {
            gw_warn(MOD,
                    "sink %s refused records count=%llu total=%llu error=\"%s\"; kept as dead "
                    "letters",
                    name, (unsigned long long)s->rejected_unlogged, (unsigned long long)s->rejected,
                    error ? error : "");
            s->rejected_unlogged = 0;
        }
    }
    if (s->nbatch > 0) {
        gw_store_set_cursor(ob->store, name, s->stream, s->batch[s->nbatch - 1].seq);
        s->delivered += (uint64_t)s->nbatch;
    }
    free_batch(s);
    s->attempt = 0;
    if (gw_release(&s->complaint)) {
        gw_info(MOD, "sink %s delivering again", name);
    } else if (!s->confirmed_once) {
        gw_info(MOD, "sink %s delivering", name);
    }
    s->confirmed_once = true;
    if (!s->removed && !ob->stopping) {
        gw_outbox_kick(ob);
    }
}

static void pump(struct slot *s)
{
    struct gw_outbox *ob = s->ob;
    if (s->busy || s->waiting || s->removed || ob->stopping || !s->ops->ready(s->state)) {
        return;
    }
    for (int stream = 0; stream < GW_NSTREAMS; stream++) {
        uint64_t after = gw_store_cursor(ob->store, s->ops->name, (enum gw_stream)stream);
        int n = gw_store_read(ob->store, (enum gw_stream)stream, after, s->batch_max, s->batch);
        if (n <= 0) {
            continue;
        }
        int64_t now = now_ms();
        if (stream == GW_STREAM_DATA && s->flush_ms > 0 && n < s->batch_max &&
            now - s->last_submit_ms < s->flush_ms) {
            /* A partial batch waits for more, but not past flush_ms. */
            gw_store_records_free(s->batch, n);
            wait_then_pump(s, s->flush_ms - (now - s->last_submit_ms));
            return;
        }
        s->nbatch = n;
        s->stream = (enum gw_stream)stream;
        s->busy = true;
        s->last_submit_ms = now;
        s->ops->submit(s->state, s->batch, n, on_done, s);
        return;
    }
}

static void on_idle(uv_idle_t *h)
{
    struct gw_outbox *ob = h->data;
    uv_idle_stop(h);
    for (int i = 0; i < ob->nslots; i++) {
        pump(ob->slots[i]);
    }
}

void gw_outbox_kick(struct gw_outbox *ob)
{
    if (!ob->stopping && !uv_is_active((uv_handle_t *)&ob->idle)) {
        uv_idle_start(&ob->idle, on_idle);
    }
}

struct gw_outbox *gw_outbox_new(uv_loop_t *loop, struct gw_store *store)
{
    struct gw_outbox *ob = calloc(1, sizeof(*ob));
    if (!ob) {
        return NULL;
    }
    ob->loop = loop;
    ob->store = store;
    uv_idle_init(loop, &ob->idle);
    ob->idle.data = ob;
    return ob;
}

void *gw_outbox_add_sink(struct gw_outbox *ob, const struct gw_sink_ops *ops,
                         const struct gw_config *cfg, int batch_max, int flush_ms)
{
    if (ob->nslots == MAX_SINKS) {
        return NULL;
    }
    struct slot *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->batch = calloc((size_t)batch_max, sizeof(*s->batch));
    s->state = s->batch ? ops->init(cfg, ob->loop) : NULL;
    if (!s->state) {
        free(s->batch);
        free(s);
        return NULL;
    }
    s->ob = ob;
    s->ops = ops;
    s->batch_max = batch_max;
    s->flush_ms = flush_ms;
    uv_timer_init(ob->loop, &s->timer);
    s->timer.data = s;
    gw_store_register_sink(ob->store, ops->name);
    ob->slots[ob->nslots++] = s;
    ops->start(s->state);
    gw_outbox_kick(ob);
    return s->state;
}

void *gw_outbox_sink(struct gw_outbox *ob, const char *name)
{
    for (int i = 0; i < ob->nslots; i++) {
        if (strcmp(ob->slots[i]->ops->name, name) == 0) {
            return ob->slots[i]->state;
        }
    }
    return NULL;
}

static void slot_free(struct slot *s)
{
    s->ops->destroy(s->state);
    free(s->batch);
    free(s);
}

static void maybe_done(struct gw_outbox *ob)
{
    if (ob->stopping && ob->closing == 0 && ob->done) {
        void (*done)(void *) = ob->done;
        ob->done = NULL;
        done(ob->done_ctx);
    }
}

static void on_slot_part_closed(struct slot *s)
{
    if (--s->open_handles > 0) {
        return;
    }
    struct gw_outbox *ob = s->ob;
    slot_free(s);
    ob->closing--;
    maybe_done(ob);
}

static void on_sink_closed(void *ctx)
{
    on_slot_part_closed(ctx);
}

static void on_timer_closed(uv_handle_t *h)
{
    on_slot_part_closed(h->data);
}

static void close_slot(struct gw_outbox *ob, struct slot *s)
{
    s->removed = true;
    s->open_handles = 2;
    ob->closing++;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    s->ops->stop(s->state, on_sink_closed, s); /* a batch in flight finishes with RETRY */
}

void gw_outbox_remove_sink(struct gw_outbox *ob, const char *name)
{
    for (int i = 0; i < ob->nslots; i++) {
        struct slot *s = ob->slots[i];
        if (strcmp(s->ops->name, name) == 0) {
            ob->slots[i] = ob->slots[--ob->nslots];
            close_slot(ob, s);
            return;
        }
    }
}

int gw_outbox_sink_stats(const struct gw_outbox *ob, struct gw_outbox_sink_stats *out, int max)
{
    int n = 0;
    for (int i = 0; i < ob->nslots && n < max; i++) {
        const struct slot *s = ob->slots[i];
        out[n] = (struct gw_outbox_sink_stats){
            .name = s->ops->name,
            .delivered = s->delivered,
            .retries = s->retries,
            .rejected = s->rejected,
            .connected = s->ops->ready(s->state),
        };
        for (int k = 0; k < GW_NSTREAMS; k++) {
            out[n].cursor[k] = gw_store_cursor(ob->store, s->ops->name, (enum gw_stream)k);
        }
        n++;
    }
    return n;
}

static void on_idle_closed(uv_handle_t *h)
{
    struct gw_outbox *ob = h->data;
    ob->closing--;
    maybe_done(ob);
}

void gw_outbox_stop(struct gw_outbox *ob, void (*done)(void *ctx), void *ctx)
{
    ob->stopping = true;
    ob->done = done;
    ob->done_ctx = ctx;
    ob->closing++;
    uv_idle_stop(&ob->idle);
    uv_close((uv_handle_t *)&ob->idle, on_idle_closed);
    while (ob->nslots > 0) {
        close_slot(ob, ob->slots[--ob->nslots]);
    }
}

void gw_outbox_free(struct gw_outbox *ob)
{
    free(ob);
}
