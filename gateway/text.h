/* Small text helpers shared by the modules that build messages, logs and records. Pure. */
#ifndef GW_TEXT_H
#define GW_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF). */
bool gw_utf8_valid(const char *str);

/*
 * A growing NUL-terminated string. Zero-initialise it. On no memory it stays
 * broken (oom set, later additions ignored) and gw_sb_finish returns NULL.
 */
struct gw_sb {
    char *p;
    size_t len, cap;
    bool oom;
};

void gw_sb_reserve(struct gw_sb *b, size_t more);
void gw_sb_addn(struct gw_sb *b, const char *s, size_t n);
void gw_sb_add(struct gw_sb *b, const char *s); /* NULL adds nothing */
void gw_sb_printf(struct gw_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string (caller frees; "" when nothing was added), or NULL after no memory. */
char *gw_sb_finish(struct gw_sb *b);

#endif
