/*
 * Helpers shared by the benchmarks of scripts/bench: a monotonic clock, the
 * memory figures they print, children to measure in, medians. Not part of the gateway.
 */
#ifndef GW_BENCH_COMMON_H
#define GW_BENCH_COMMON_H

#include <sys/types.h>

/* Seconds on CLOCK_MONOTONIC. */
double bench_now_s(void);

/* CPU time (user + system, every thread) this process has used, seconds. */
double bench_cpu_s(void);

/* Peak resident set of this process (getrusage ru_maxrss), kB. */
long bench_peak_rss_kb(void);

/* Resident set now (/proc/self/statm), kB; 0 when unreadable. */
long bench_current_rss_kb(void);

/* Private (not shared with other processes) resident memory: what the gateway itself costs. */
long bench_private_kb(void);

/* Remove a directory and everything in it (the run's temporary state). 0 or -1. */
int bench_remove_tree(const char *dir);

/* fork() with stdio flushed first (exits on failure): each measurement in a fresh process. */
pid_t bench_fork(void);
/* Waits for pid: true when it exited with 0. */
int bench_wait_ok(pid_t pid);

/* qsort comparator for doubles (medians). */
int bench_cmp_double(const void *a, const void *b);

#endif
