#include "kpi_report.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alarm_desk.h"
#include "alarms.h"
#include "driver.h"
#include "hazard_desk.h"
#include "hazards.h"
#include "kpi.h"
#include "log.h"
#include "registry.h"
#include "store.h"

#define MOD "kpi"
/* Rows recorded a little before the window may carry raises inside it (ts vs raised_at). */
#define HISTORY_MARGIN_MS (3600 * 1000LL)
/* A timer that fires a few ms early must not publish twice for one instant. */
#define SCHEDULE_SLACK_MS 500

/* One computation of the figures, its history read a page per loop turn. */
struct run {
    int64_t now;   /* the instant the figures are for: the record's ts */
    int64_t since; /* rows recorded from then on are read */
    struct gw_kpi_history *history;
    uint64_t after;     /* the last alarm_history seq read */
    uint64_t first_seq; /* the first row read (0: none yet) */
    uint64_t rows;
    int pages;
    int rc; /* from feeding the history */
};

struct gw_kpi_report {
    uv_loop_t *loop;
    struct gw_gateway *gw;
    uv_timer_t timer;
    uv_idle_t worker; /* one page of the run per loop turn (an idle handle: the loop polls for
                       * I/O between two calls, where a 0 ms timer restarted from its own
                       * callback runs again in the same turn on libuv < 1.45) */
    struct run *run;  /* being read; NULL when none */
    bool follow_up;   /* a grid point came due while the run read: its run is next */
    int64_t follow_up_now;
    /* Where the window began for the last run that read it: rows before first_seq were all
     * recorded before `since` (seq is given and committed in order on this thread), so a
     * later run, whose since is not earlier, starts after them instead of making SQLite step
     * over the older history again (alarm_history has no index on ts). */
    int64_t hint_since;
    uint64_t hint_after;
    bool first_done; /* the publication shortly after start went out */
    int interval_s;  /* the interval the timer follows */
    int64_t due_ms;  /* the grid point the timer waits for (wall clock); 0 for the first */
    struct gw_complaint store_fault, register_fault, malformed;
    struct gw_kpi_report_stats stats;
    bool closing;
    int nclosing; /* handles not closed yet */
    void (*closed)(void *ctx);
    void *closed_ctx;
};

static void on_history_row(void *ctx, uint64_t seq, int64_t ts_ms, const char *payload)
{
    struct run *run = ctx;
    if (run->first_seq == 0) {
        run->first_seq = seq;
    }
    run->after = seq;
    run->rows++;
    /* Recorded after the instant the figures are for (while the run reads): not theirs. The
     * window itself is about raised_at, read from the payload. */
    if (ts_ms > run->now || run->rc != 0) {
        return;
    }
    run->rc = gw_kpi_history_add(run->history, payload);
}

/* One page of the history since the window began. 1 when it was the last, 0 when more
 * follow, or -errno. */
static int read_page(struct gw_kpi_report *r, struct run *run)
{
    int n = gw_store_history_since(gw_gateway_store(r->gw), run->since, run->after,
                                   GW_KPI_HISTORY_PAGE, on_history_row, run);
    if (n < 0) {
        return n;
    }
    run->pages++;
    if (run->rc != 0) {
        return run->rc;
    }
    return n < GW_KPI_HISTORY_PAGE;
}

/* The desk's live alarms as the figures need them; *out malloc'd (NULL when none). */
static int live_alarms(const struct gw_alarms *al, struct gw_kpi_alarm **out, int *n)
{
    *out = NULL;
    *n = 0;
    int cap = 0;
    const struct gw_alarm *a;
    for (int it = 0; al && (a = gw_alarms_next(al, &it));) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            struct gw_kpi_alarm *p = realloc(*out, (size_t)cap * sizeof(*p));
            if (p == NULL) {
                free(*out);
                *out = NULL;
                return -ENOMEM;
            }
            *out = p;
        }
        (*out)[(*n)++] = (struct gw_kpi_alarm){
            .rule_index = a->system ? -1 : a->rule_index,
            .sensor_index = a->system ? -1 : a->sensor_index,
            .state = a->state,
            .condition = a->condition,
            .test = a->test,
        };
    }
    return 0;
}

/* The history is read: the live inputs as they are now, the figures, the record. */
static int publish(struct gw_kpi_report *r, struct run *run)
{
    struct gw_gateway *gw = r->gw;
    const struct gw_config *cfg = gw_gateway_config(gw);
    const struct gw_registry *reg = gw_gateway_registry(gw);
    struct gw_desk *desk = gw_gateway_desk(gw);
    int64_t now = run->now;
    bool *online = NULL;
    struct gw_kpi_alarm *alarms = NULL;
    int nalarms = 0;
    int rc = -ENOMEM;
    if (cfg->nsensors > 0) {
        online = calloc((size_t)cfg->nsensors, sizeof(*online));
        if (online == NULL) {
            goto out;
        }
        for (int i = 0; i < cfg->nsensors; i++) {
            online[i] = gw_registry_get(reg, i)->online;
        }
    }
    rc = live_alarms(desk ? gw_desk_alarms(desk) : NULL, &alarms, &nalarms);
    if (rc != 0) {
        goto out;
    }
    struct gw_hazard_desk *hd = desk ? gw_desk_hazards(desk) : NULL;
    const struct gw_hazards *hz = hd ? gw_hazard_desk_register(hd) : NULL;
    struct gw_hazard_counts counts;
    if (hz) {
        gw_hazards_count(hz, now, &counts);
        if (gw_release(&r->register_fault)) {
            gw_info(MOD, "the hazard register is readable again: hazards counted");
        }
    } else if (gw_complain(&r->register_fault, now)) {
        gw_warn(MOD, "the hazard register is invalid: open_hazards and overdue_hazards sent as 0");
    }
    struct gw_kpi_input in = {
        .cfg = cfg,
        .online = online,
        .alarms = alarms,
        .nalarms = nalarms,
        .history = run->history,
        .hazards = hz ? &counts : NULL,
        .now_ms = now,
    };
    struct gw_kpi k;
    char err[128];
    rc = gw_kpi_compute(&in, &k, err, sizeof(err));
    if (rc != 0) {
        gw_error(MOD, "figures not computed: %s", err);
        goto out;
    }
    if (k.malformed > 0 && gw_complain(&r->malformed, now)) {
        gw_warn(MOD, "alarm history rows that are not readable events skipped count=%d",
                k.malformed);
    }
    uint64_t seq = gw_core_next_seq(gw);
    char *json = gw_kpi_json(&k, seq, now, cfg->site.district, cfg->site.school);
    if (json == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    gw_core_emit(gw, GW_REC_KPI, now, "kpi", json, seq);
    r->stats.published++;
    r->stats.last_now_ms = now;
    r->stats.last_rows = run->rows;
    r->stats.last_pages = run->pages;
    r->stats.last = k;
    gw_debug(MOD,
             "published seq=%llu sensors=%d online_pct=%d.%d alarms=%d/%d/%d unacked=%d "
             "hazards=%d overdue=%d history_rows=%llu pages=%d",
             (unsigned long long)seq, k.sensors_total, k.online_pct_tenths / 10,
             k.online_pct_tenths % 10, k.alarms_24h[GW_CLASS_ALARM],
             k.alarms_24h[GW_CLASS_SUPERVISORY], k.alarms_24h[GW_CLASS_TROUBLE],
             k.unacknowledged_alarms, k.open_hazards, k.overdue_hazards,
             (unsigned long long)run->rows, run->pages);
out:
    if (rc == -ENOMEM) {
        gw_error(MOD, "figures not published: out of memory");
    }
    free(alarms);
    free(online);
    return rc;
}

static void drop_run(struct gw_kpi_report *r)
{
    if (r->run) {
        gw_kpi_history_free(r->run->history);
        free(r->run);
        r->run = NULL;
    }
    r->stats.reading = false;
    uv_idle_stop(&r->worker);
}

static void on_work(uv_idle_t *h);

static int start_run(struct gw_kpi_report *r, int64_t now)
{
    struct run *run = calloc(1, sizeof(*run));
    if (run == NULL || (run->history = gw_kpi_history_new(now)) == NULL) {
        free(run);
        r->stats.failed++;
        gw_error(MOD, "figures not published: out of memory");
        return -ENOMEM;
    }
    run->now = now;
    run->since = now - GW_KPI_WINDOW_MS - HISTORY_MARGIN_MS;
    /* The clock stepped back (an earlier window): from the start of the history. */
    run->after = run->since >= r->hint_since ? r->hint_after : 0;
    r->run = run;
    r->stats.reading = true;
    uv_idle_start(&r->worker, on_work);
    return 0;
}

/* The run has read its history (rc 0) or failed: publish or say why, then the next run. */
static void finish_run(struct gw_kpi_report *r, int rc)
{
    struct run *run = r->run;
    if (rc != 0 && rc != -ENOMEM) {
        /* Counting no alarms would look like a quiet day: say nothing rather than that. */
        if (gw_complain(&r->store_fault, run->now)) {
            gw_warn(MOD, "figures not published: the alarm history cannot be read (%s)",
                    strerror(-rc));
        }
    } else if (rc == -ENOMEM) {
        gw_error(MOD, "figures not published: out of memory");
    } else {
        if (gw_release(&r->store_fault)) {
            gw_info(MOD, "the alarm history can be read again; figures published");
        }
        if (run->first_seq != 0) {
            r->hint_since = run->since;
            r->hint_after = run->first_seq - 1;
        }
        rc = publish(r, run);
    }
    if (rc != 0) {
        r->stats.failed++;
    }
    drop_run(r);
    if (r->follow_up) {
        r->follow_up = false;
        start_run(r, r->follow_up_now);
    }
}

static void on_work(uv_idle_t *h)
{
    struct gw_kpi_report *r = h->data;
    if (r->run == NULL) {
        uv_idle_stop(h);
        return;
    }
    int rc = read_page(r, r->run);
    if (rc == 0) {
        return; /* the next page on the next loop turn: alarms get the loop meanwhile */
    }
    finish_run(r, rc == 1 ? 0 : rc);
}

/*
 * Figures for `now`. A run already reading answers an ask (the first publication, SIGUSR1);
 * a grid point gets its own run after it, so the schedule loses none (a newer point waiting
 * replaces an older one: that takes a read longer than the interval).
 */
static int request(struct gw_kpi_report *r, int64_t now, bool grid_point)
{
    if (r->closing) {
        return -ECANCELED;
    }
    if (r->run == NULL) {
        return start_run(r, now);
    }
    if (grid_point) {
        r->follow_up = true;
        r->follow_up_now = now;
    } else {
        r->stats.merged++;
    }
    return 0;
}

static int interval_of(const struct gw_kpi_report *r)
{
    int s = gw_gateway_config(r->gw)->kpi.interval_s;
    return s > 0 ? s : 3600;
}

static void on_timer(uv_timer_t *t);

/* The timer to the next multiple of the interval (wall clock, since the epoch). */
static void schedule(struct gw_kpi_report *r, int64_t now)
{
    r->interval_s = interval_of(r);
    r->due_ms = gw_kpi_next_run_ms(now + SCHEDULE_SLACK_MS, r->interval_s);
    /* From the loop's time now, not the one cached at the start of this iteration. */
    uv_update_time(r->loop);
    uv_timer_start(&r->timer, on_timer, (uint64_t)(r->due_ms - now), 0);
}

static void on_timer(uv_timer_t *t)
{
    struct gw_kpi_report *r = t->data;
    int64_t now = gw_now_ms();
    if (now < r->due_ms) {
        /* Early by the wall clock (NTP slews it against the loop's monotonic one): the
         * figures are stamped on or after their grid point. */
        uv_timer_start(&r->timer, on_timer, (uint64_t)(r->due_ms - now), 0);
        return;
    }
    if (r->first_done) {
        /* Fired a few ms after its grid point (or later, the clock stepped): the figures
         * are for the point. */
        request(r, gw_kpi_grid_point_ms(now, r->interval_s), true);
    } else {
        r->first_done = true;
        request(r, now, false);
    }
    schedule(r, now);
}

struct gw_kpi_report *gw_kpi_report_new(uv_loop_t *loop, struct gw_gateway *gw)
{
    struct gw_kpi_report *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        gw_error(MOD, "out of memory: the school's figures will not be published");
        return NULL;
    }
    r->loop = loop;
    r->gw = gw;
    uv_timer_init(loop, &r->timer);
    uv_idle_init(loop, &r->worker);
    r->timer.data = r;
    r->worker.data = r;
    return r;
}

void gw_kpi_report_start(struct gw_kpi_report *r)
{
    if (r) {
        r->interval_s = interval_of(r);
        uv_timer_start(&r->timer, on_timer, GW_KPI_FIRST_DELAY_MS, 0);
    }
}

int gw_kpi_report_now(struct gw_kpi_report *r)
{
    return r ? request(r, gw_now_ms(), false) : -EINVAL;
}

void gw_kpi_report_reload(struct gw_kpi_report *r)
{
    /* Before the first publication the timer already waits for it; after, only a new
     * interval moves it. */
    if (r && !r->closing && r->first_done && uv_is_active((uv_handle_t *)&r->timer) &&
        interval_of(r) != r->interval_s) {
        gw_info(MOD, "interval now %d s", interval_of(r));
        schedule(r, gw_now_ms());
    }
}

void gw_kpi_report_stats(const struct gw_kpi_report *r, struct gw_kpi_report_stats *out)
{
    if (r) {
        *out = r->stats;
    } else {
        memset(out, 0, sizeof(*out));
    }
}

static void on_closed(uv_handle_t *h)
{
    struct gw_kpi_report *r = h->data;
    if (--r->nclosing > 0) {
        return;
    }
    void (*closed)(void *) = r->closed;
    void *ctx = r->closed_ctx;
    free(r);
    if (closed) {
        closed(ctx);
    }
}

void gw_kpi_report_close(struct gw_kpi_report *r, void (*closed)(void *ctx), void *ctx)
{
    if (r == NULL) {
        if (closed) {
            closed(ctx);
        }
        return;
    }
    r->closing = true;
    r->closed = closed;
    r->closed_ctx = ctx;
    r->follow_up = false;
    drop_run(r); /* a history half read: its figures are never published */
    uv_timer_stop(&r->timer);
    r->nclosing = 2;
    uv_close((uv_handle_t *)&r->timer, on_closed);
    uv_close((uv_handle_t *)&r->worker, on_closed);
}
