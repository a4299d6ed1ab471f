#include "outbox.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "influx_policy.h"
#include "log.h"

#define MOD "outbox"
#define MAX_SINKS 4
#define MAX_LANES 2

/*
 * A lane is one instance of a sink with one batch at a time. A sink whose far
 * side does not care about order (InfluxDB: a point is its series and time)
 * gets two lanes, so the next batch is read and converted while the previous
 * one is on the wire. The cursor still moves strictly in order: only over the
 * oldest batches in flight that were confirmed.
 */
struct lane {
    struct slot *slot;
    void *state;
    struct gw_record *batch;
    int nbatch;
    enum gw_stream stream;
    bool busy;   /* with the sink */
    bool done;   /* came back, waiting for older batches */
    bool failed; /* came back with RETRY */
};

struct slot {
    struct gw_outbox *ob;
    const struct gw_sink_ops *ops;
    struct lane lanes[MAX_LANES];
    int nlanes;
    int queue[MAX_LANES]; /* lanes in flight, oldest first */
    int nqueue;
    int batch_max;
    int flush_ms;
    int64_t last_submit_ms;

    bool waiting; /* the timer holds the next try (backoff or flush) */
    bool failing; /* a batch failed: wait for the others, then back off */
    int retry_after_ms;
    bool removed; /* stopping; freed once closed */
    int attempt;
    uv_timer_t timer;
    int open_handles; /* the timer and the lanes' sinks */

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

static void free_lane_batch(struct lane *l)
{
    gw_store_records_free(l->batch, l->nbatch);
    l->nbatch = 0;
    l->done = l->failed = false;
}

static void pop_queue(struct slot *s)
{
    for (int i = 1; i < s->nqueue; i++) {
        s->queue[i - 1] = s->queue[i];
    }
    s->nqueue--;
}

static void dead_letter(struct slot *s, struct lane *l, const char *error, const int *rejected,
                        int nrejected)
{
    const char *name = s->ops->name;
    int n = rejected ? nrejected : l->nbatch;
    for (int i = 0; i < n; i++) {
        int idx = rejected ? rejected[i] : i;
        if (idx >= 0 && idx < l->nbatch) {
            gw_store_dead_letter(s->ob->store, name, &l->batch[idx], error, now_ms());
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

/* Move the cursor over the confirmed batches at the head of the queue. */
static void advance(struct slot *s)
{
    const char *name = s->ops->name;
    while (s->nqueue > 0) {
        struct lane *l = &s->lanes[s->queue[0]];
        if (!l->done || l->failed) {
            break;
        }
        if (l->nbatch > 0) {
            gw_store_set_cursor(s->ob->store, name, l->stream, l->batch[l->nbatch - 1].seq);
            s->delivered += (uint64_t)l->nbatch;
        }
        free_lane_batch(l);
        pop_queue(s);
        s->attempt = 0;
        if (gw_release(&s->complaint)) {
            gw_info(MOD, "sink %s delivering again", name);
        } else if (!s->confirmed_once) {
            gw_info(MOD, "sink %s delivering", name);
        }
        s->confirmed_once = true;
    }
}

static bool lanes_busy(const struct slot *s)
{
    for (int i = 0; i < s->nlanes; i++) {
        if (s->lanes[i].busy) {
            return true;
        }
    }
    return false;
}

static void on_done(void *ctx, enum gw_sink_result result, const char *error, const int *rejected,
                    int nrejected, int retry_after_ms)
{
    struct lane *l = ctx;
    struct slot *s = l->slot;
    struct gw_outbox *ob = s->ob;
    l->busy = false;
    l->done = true;
    if (result == GW_SINK_RETRY) {
        l->failed = true;
        s->failing = true;
        if (retry_after_ms > s->retry_after_ms) {
            s->retry_after_ms = retry_after_ms;
        }
        if (gw_complain(&s->complaint, now_ms())) {
            gw_warn(MOD, "sink %s failed, will retry error=\"%s\"", s->ops->name,
                    error ? error : "unknown");
        }
    } else if (result == GW_SINK_REJECT) {
        dead_letter(s, l, error, rejected, nrejected);
    }
    advance(s);
    if (!s->failing) {
        if (!s->removed && !ob->stopping) {
            gw_outbox_kick(ob);
        }
        return;
    }
    if (lanes_busy(s)) {
        return; /* the others come back first */
    }
    /* Everything not confirmed goes again, from the cursor, after a pause. */
    for (int i = 0; i < s->nlanes; i++) {
        free_lane_batch(&s->lanes[i]);
    }
    s->nqueue = 0;
    s->failing = false;
    s->retries++;
    s->attempt++;
    if (s->removed || ob->stopping) {
        return;
    }
    uint32_t rnd = ((uint32_t)rand() << 16) ^ (uint32_t)rand(); /* rand() has 31 bits */
    int delay = gw_retry_backoff_ms(s->attempt - 1, rnd);
    if (s->retry_after_ms > delay) {
        delay = s->retry_after_ms;
    }
    s->retry_after_ms = 0;
    wait_then_pump(s, delay);
}

static struct lane *free_lane(struct slot *s)
{
    for (int i = 0; i < s->nlanes; i++) {
        struct lane *l = &s->lanes[i];
        if (!l->busy && !l->done && s->ops->ready(l->state)) {
            return l;
        }
    }
    return NULL;
}

static bool alarms_waiting(struct slot *s)
{
    struct gw_record r;
    uint64_t after = gw_store_cursor(s->ob->store, s->ops->name, GW_STREAM_ALARM);
    int n = gw_store_read(s->ob->store, GW_STREAM_ALARM, after, 1, &r);
    gw_store_records_free(&r, n > 0 ? n : 0);
    return n > 0;
}

static void pump(struct slot *s)
{
    struct gw_outbox *ob = s->ob;
    while (!s->waiting && !s->failing && !s->removed && !ob->stopping) {
        struct lane *l = free_lane(s);
        if (!l) {
            return;
        }
        int first = GW_STREAM_ALARM;
        uint64_t after_in_flight = 0;
        if (s->nqueue > 0) {
            /* Only the data stream runs several batches; it continues after the newest. */
            struct lane *newest = &s->lanes[s->queue[s->nqueue - 1]];
            if (newest->stream != GW_STREAM_DATA || alarms_waiting(s)) {
                return; /* alarms go next, ahead of more backlog */
            }
            first = GW_STREAM_DATA;
            after_in_flight = newest->batch[newest->nbatch - 1].seq;
        }
        bool submitted = false;
        for (int stream = first; stream < GW_NSTREAMS; stream++) {
            uint64_t after = s->nqueue > 0
                                 ? after_in_flight
                                 : gw_store_cursor(ob->store, s->ops->name, (enum gw_stream)stream);
            int n = gw_store_read(ob->store, (enum gw_stream)stream, after, s->batch_max, l->batch);
            if (n <= 0) {
                continue;
            }
            int64_t now = now_ms();
            if (stream == GW_STREAM_DATA && s->flush_ms > 0 && n < s->batch_max &&
                (s->nqueue > 0 || now - s->last_submit_ms < s->flush_ms)) {
                /* A partial batch waits for more, but not past flush_ms. */
                gw_store_records_free(l->batch, n);
                if (s->nqueue == 0) {
                    wait_then_pump(s, s->flush_ms - (now - s->last_submit_ms));
                }
                return;
            }
            l->nbatch = n;
            l->stream = (enum gw_stream)stream;
            l->busy = true;
            s->queue[s->nqueue++] = (int)(l - s->lanes);
            s->last_submit_ms = now;
            s->ops->submit(l->state, l->batch, n, on_done, l);
            submitted = true;
            break;
        }
        if (!submitted) {
            return;
        }
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
                         const struct gw_config *cfg, int batch_max, int flush_ms, int lanes)
{
    if (ob->nslots == MAX_SINKS) {
        return NULL;
    }
    struct slot *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->ob = ob;
    s->ops = ops;
    s->batch_max = batch_max;
    s->flush_ms = flush_ms;
    s->nlanes = lanes < 1 ? 1 : lanes > MAX_LANES ? MAX_LANES : lanes;
    for (int i = 0; i < s->nlanes; i++) {
        struct lane *l = &s->lanes[i];
        l->slot = s;
        l->batch = calloc((size_t)batch_max, sizeof(*l->batch));
        l->state = l->batch ? ops->init(cfg, ob->loop) : NULL;
        if (!l->state) {
            for (int k = 0; k <= i; k++) {
                if (s->lanes[k].state) {
                    ops->destroy(s->lanes[k].state);
                }
                free(s->lanes[k].batch);
            }
            free(s);
            return NULL;
        }
    }
    uv_timer_init(ob->loop, &s->timer);
    s->timer.data = s;
    gw_store_register_sink(ob->store, ops->name);
    ob->slots[ob->nslots++] = s;
    for (int i = 0; i < s->nlanes; i++) {
        ops->start(s->lanes[i].state);
    }
    gw_outbox_kick(ob);
    return s->lanes[0].state;
}

void *gw_outbox_sink(struct gw_outbox *ob, const char *name)
{
    for (int i = 0; i < ob->nslots; i++) {
        if (strcmp(ob->slots[i]->ops->name, name) == 0) {
            return ob->slots[i]->lanes[0].state;
        }
    }
    return NULL;
}

static void slot_free(struct slot *s)
{
    for (int i = 0; i < s->nlanes; i++) {
        s->ops->destroy(s->lanes[i].state);
        free(s->lanes[i].batch);
    }
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
    s->open_handles = 1 + s->nlanes;
    ob->closing++;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    for (int i = 0; i < s->nlanes; i++) {
        /* a batch in flight finishes with RETRY; unconfirmed records go again next start */
        s->ops->stop(s->lanes[i].state, on_sink_closed, s);
    }
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
            .connected = s->ops->ready(s->lanes[0].state),
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
