/*
 * The per-gateway record sequence number (`seq` in every MQTT payload).
 * Monotonic across restarts: numbers are reserved in blocks whose upper end
 * is written (and fsynced) to state_dir/seq before any number of the block is
 * used, so a crash can only skip numbers, never repeat them. One fsync per
 * block keeps SD-card writes rare.
 */
#ifndef GW_SEQ_H
#define GW_SEQ_H

#include <stdint.h>

#define GW_SEQ_BLOCK 100000

struct gw_seq {
    char *path;
    uint64_t next;     /* next number to hand out */
    uint64_t reserved; /* numbers below this are reserved on disk */
    int write_errors;
};

/* Opens (creating state_dir if needed) and reserves the first block. 0 or -errno. */
int gw_seq_open(struct gw_seq *seq, const char *state_dir);
uint64_t gw_seq_next(struct gw_seq *seq);
void gw_seq_close(struct gw_seq *seq);

#endif
