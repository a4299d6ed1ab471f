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
/* History rows read per query: memory stays flat however busy the day was. */
#define HISTORY_PAGE 1000
/* Rows recorded a little before the window may carry raises inside it (ts vs raised_at). */
#define HISTORY_MARGIN_MS (3600 * 1000LL)
/* A timer that fires a few ms early must not publish twice for one instant. */
#define SCHEDULE_SLACK_MS 500

struct gw_kpi_report {
    uv_loop_t *loop;
    struct gw_gateway *gw;
    uv_timer_t timer;
    bool first_done; /* the publication shortly after start went out */
    int interval_s;  /* the interval the timer follows */
    int64_t due_ms;  /* the grid point the timer waits for (wall clock); 0 for the first */
    struct gw_complaint store_fault, register_fault, malformed;
    void (*closed)(void *ctx);
    void *closed_ctx;
};

struct page {
    struct gw_kpi_history *history;
    uint64_t after;
    int rc;
};

static void on_history_row(void *ctx, uint64_t seq, int64_t ts_ms, const char *payload)
{
    (void)ts_ms; /* the window is about raised_at, read from the payload */
    struct page *p = ctx;
    p->after = seq;
    if (p->rc == 0) {
        p->rc = gw_kpi_history_add(p->history, payload);
    }
}

/* The alarm history since the window began, page by page. 0 or -errno. */
static int read_history(struct gw_store *store, struct gw_kpi_history *h, int64_t now)
{
    struct page p = {.history = h};
    for (;;) {
        int n = gw_store_history_since(store, now - GW_KPI_WINDOW_MS - HISTORY_MARGIN_MS, p.after,
                                       HISTORY_PAGE, on_history_row, &p);
        if (n < 0) {
            return n;
        }
        if (p.rc != 0) {
            return p.rc;
        }
        if (n < HISTORY_PAGE) {
            return 0;
        }
    }
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

static int publish(struct gw_kpi_report *r, int64_t now)
{
    struct gw_gateway *gw = r->gw;
    const struct gw_config *cfg = gw_gateway_config(gw);
    const struct gw_registry *reg = gw_gateway_registry(gw);
    struct gw_desk *desk = gw_gateway_desk(gw);
    bool *online = NULL;
    struct gw_kpi_alarm *alarms = NULL;
    int nalarms = 0;
    struct gw_kpi_history *history = gw_kpi_history_new(now);
    int rc = -ENOMEM;
    if (history == NULL) {
        goto out;
    }
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
    rc = read_history(gw_gateway_store(gw), history, now);
    if (rc != 0 && rc != -ENOMEM) {
        /* Counting no alarms would look like a quiet day: say nothing rather than that. */
        if (gw_complain(&r->store_fault, now)) {
            gw_warn(MOD, "figures not published: the alarm history cannot be read (%s)",
                    strerror(-rc));
        }
        goto out;
    }
    if (rc == 0 && gw_release(&r->store_fault)) {
        gw_info(MOD, "the alarm history can be read again; figures published");
    }
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
        .history = history,
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
    gw_debug(MOD,
             "published seq=%llu sensors=%d online_pct=%d.%d alarms=%d/%d/%d unacked=%d "
             "hazards=%d overdue=%d",
             (unsigned long long)seq, k.sensors_total, k.online_pct_tenths / 10,
             k.online_pct_tenths % 10, k.alarms_24h[GW_CLASS_ALARM],
             k.alarms_24h[GW_CLASS_SUPERVISORY], k.alarms_24h[GW_CLASS_TROUBLE],
             k.unacknowledged_alarms, k.open_hazards, k.overdue_hazards);
out:
    if (rc == -ENOMEM) {
        gw_error(MOD, "figures not published: out of memory");
    }
    gw_kpi_history_free(history);
    free(alarms);
    free(online);
    return rc;
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
    r->first_done = true;
    publish(r, now);
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
    r->timer.data = r;
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
    return r ? publish(r, gw_now_ms()) : -EINVAL;
}

void gw_kpi_report_reload(struct gw_kpi_report *r)
{
    /* Before the first publication the timer already waits for it; after, only a new
     * interval moves it. */
    if (r && r->first_done && uv_is_active((uv_handle_t *)&r->timer) &&
        interval_of(r) != r->interval_s) {
        gw_info(MOD, "interval now %d s", interval_of(r));
        schedule(r, gw_now_ms());
    }
}

static void on_closed(uv_handle_t *h)
{
    struct gw_kpi_report *r = h->data;
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
    r->closed = closed;
    r->closed_ctx = ctx;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_closed);
}
