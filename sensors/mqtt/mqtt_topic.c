#include "mqtt/mqtt_topic.h"

#include <string.h>

const char *gw_mqtt_filter_problem(const char *f, bool *wildcard)
{
    *wildcard = false;
    size_t n = strlen(f);
    if (n == 0) {
        return "is empty";
    }
    if (n > GW_MQTT_TOPIC_MAX) {
        return "is longer than 512 bytes";
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f[i];
        if (c < 0x20 || c == 0x7f) {
            return "holds a control character";
        }
        if (c != '+' && c != '#') {
            continue;
        }
        *wildcard = true;
        bool level_start = i == 0 || f[i - 1] == '/';
        bool level_end = i + 1 == n || f[i + 1] == '/';
        if (!level_start || !level_end) {
            return "has a wildcard (+ or #) that is not a whole level";
        }
        if (c == '#' && i + 1 != n) {
            return "has # before its last level";
        }
    }
    return NULL;
}

bool gw_mqtt_topic_matches(const char *f, const char *t)
{
    if (!f || !t || !*f) {
        return false;
    }
    if (t[0] == '$' && (f[0] == '+' || f[0] == '#')) {
        return false;
    }
    for (;;) {
        if (f[0] == '#' && f[1] == '\0') {
            return true;
        }
        size_t fl = strcspn(f, "/");
        size_t tl = strcspn(t, "/");
        bool plus = fl == 1 && f[0] == '+';
        if (!plus && (fl != tl || memcmp(f, t, fl) != 0)) {
            return false;
        }
        f += fl;
        t += tl;
        if (*f == '\0' && *t == '\0') {
            return true;
        }
        if (*t == '\0') {
            return strcmp(f, "/#") == 0; /* "a/#" matches its parent "a" */
        }
        if (*f == '\0') {
            return false;
        }
        f++; /* both at '/' */
        t++;
    }
}
