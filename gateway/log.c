#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static enum gw_log_level min_level = GW_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void gw_log_set_level(enum gw_log_level level)
{
    min_level = level;
}

enum gw_log_level gw_log_get_level(void)
{
    return min_level;
}

void gw_log(enum gw_log_level level, const char *module, const char *fmt, ...)
{
    if (level < min_level) {
        return;
    }
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s %s: ", level_names[level], module);
    if (n < 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fputs per line so lines from bus threads never interleave. */
    fprintf(stderr, "%s\n", line);
}

#define COMPLAIN_FIRST_MS 60000
#define COMPLAIN_MAX_MS (24 * 3600 * 1000LL)

bool gw_complain(struct gw_complaint *c, int64_t now_ms)
{
    if (!c->active) {
        c->active = true;
        c->interval_ms = COMPLAIN_FIRST_MS;
        c->next_ms = now_ms + c->interval_ms;
        c->suppressed = 0;
        return true;
    }
    if (now_ms < c->next_ms) {
        c->suppressed++;
        return false;
    }
    c->interval_ms *= 2;
    if (c->interval_ms > COMPLAIN_MAX_MS) {
        c->interval_ms = COMPLAIN_MAX_MS;
    }
    c->next_ms = now_ms + c->interval_ms;
    return true;
}

bool gw_release(struct gw_complaint *c)
{
    if (!c->active) {
        return false;
    }
    c->active = false;
    c->suppressed = 0;
    return true;
}
