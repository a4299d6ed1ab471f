/* One line per event: "LEVEL module: message key=value" on stderr (journald takes it). */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum gw_log_level { GW_LOG_DEBUG, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR };

void gw_log_set_level(enum gw_log_level level);
enum gw_log_level gw_log_get_level(void);
void gw_log(enum gw_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define gw_debug(mod, ...) gw_log(GW_LOG_DEBUG, mod, __VA_ARGS__)
#define gw_info(mod, ...) gw_log(GW_LOG_INFO, mod, __VA_ARGS__)
#define gw_warn(mod, ...) gw_log(GW_LOG_WARN, mod, __VA_ARGS__)
#define gw_error(mod, ...) gw_log(GW_LOG_ERROR, mod, __VA_ARGS__)

/*
 * A fault that repeats is logged once, then with growing spacing, and its
 * recovery once (collectd's complain/release). Pure: the caller passes now_ms.
 */
struct gw_complaint {
    int64_t next_ms;     /* do not log again before this */
    int64_t interval_ms; /* current spacing, doubles up to a day */
    uint64_t suppressed; /* repeats not logged since the last line */
    bool active;
};

/* True when this occurrence should be logged (and updates the spacing). */
bool gw_complain(struct gw_complaint *c, int64_t now_ms);
/* True when the fault was active and is now over: log the recovery once. */
bool gw_release(struct gw_complaint *c);

#endif
