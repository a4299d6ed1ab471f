#include "timefmt.h"

#include <errno.h>
#include <stdbool.h>
#include <time.h>

void gw_format_rfc3339(int64_t ms, char *out, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    int millis = (int)(ms % 1000);
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    struct tm tm;
    size_t n = gmtime_r(&secs, &tm) ? strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm) : 0;
    if (n == 0 || size - n < sizeof(".000Z")) {
        if (size > 0) {
            out[0] = '\0';
        }
        return;
    }
    out[n++] = '.';
    out[n++] = (char)('0' + millis / 100);
    out[n++] = (char)('0' + millis / 10 % 10);
    out[n++] = (char)('0' + millis % 10);
    out[n++] = 'Z';
    out[n] = '\0';
}

/* n ASCII digits at s (stops at the NUL, which is not one). */
static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return mdays[m - 1] + (m == 2 && leap);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD" at the start of s, a real day of any year; what follows is the caller's. */
static bool date_prefix(const char *s, int *y, int *m, int *d)
{
    return digits(s, 4, y) && s[4] == '-' && digits(s + 5, 2, m) && s[7] == '-' &&
           digits(s + 8, 2, d) && *m >= 1 && *m <= 12 && *d >= 1 && *d <= days_in_month(*y, *m);
}

int gw_parse_date(const char *s, int *y, int *m, int *d)
{
    int yy, mm, dd;
    if (!s || !date_prefix(s, &yy, &mm, &dd) || s[10] != '\0' || yy < 1970) {
        return -EINVAL;
    }
    *y = yy;
    *m = mm;
    *d = dd;
    return 0;
}

int gw_parse_rfc3339(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    /* Each index is read only once every one before it was a digit or a separator: never past
     * the NUL. */
    if (!s || !ms || !date_prefix(s, &y, &mo, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec) || h > 23 || mi > 59 ||
        sec > 60) {
        return -EINVAL;
    }
    const char *p = s + 19;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        for (; p[n] >= '0' && p[n] <= '9'; n++) {
            if (n == 9) {
                return -EINVAL; /* finer than a nanosecond: not a time anyone wrote */
            }
            if (n < 3) {
                frac_ms = frac_ms * 10 + (p[n] - '0');
            }
        }
        if (n == 0) {
            return -EINVAL;
        }
        for (int k = n; k < 3; k++) {
            frac_ms *= 10;
        }
        p += n;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59) {
            return -EINVAL;
        }
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p != '\0') {
        return -EINVAL;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (sec > 59 ? 59 : sec) -
                   (int64_t)offset_min * 60;
    int64_t out = secs * 1000 + frac_ms;
    if (out < 0) {
        return -EINVAL;
    }
    *ms = out;
    return 0;
}
