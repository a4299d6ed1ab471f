#include "seq.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Write "N\n" to path.tmp, fsync, rename over path: never a torn file. */
static int write_reserved(const char *path, uint64_t value)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        return -ENAMETOOLONG;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        return -errno;
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", value);
    int rc = 0;
    if (write(fd, buf, (size_t)n) != n || fsync(fd) != 0) {
        rc = errno ? -errno : -EIO;
    }
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
    }
    return rc;
}

static int reserve(struct gw_seq *seq)
{
    uint64_t upto = seq->next + GW_SEQ_BLOCK;
    int rc = write_reserved(seq->path, upto);
    if (rc < 0) {
        /* Keep counting in memory: seq stays monotonic while this process lives. */
        if (seq->write_errors++ == 0) {
            gw_error("seq", "cannot save sequence block path=%s error=\"%s\"", seq->path,
                     strerror(-rc));
        }
        seq->reserved = upto;
        return rc;
    }
    seq->reserved = upto;
    return 0;
}

int gw_seq_open(struct gw_seq *seq, const char *state_dir)
{
    memset(seq, 0, sizeof(*seq));
    if (mkdir(state_dir, 0750) != 0 && errno != EEXIST) {
        int err = errno;
        gw_error("seq", "cannot create state_dir path=%s error=\"%s\"", state_dir, strerror(err));
        return -err;
    }
    size_t len = strlen(state_dir) + sizeof("/seq");
    seq->path = malloc(len);
    if (!seq->path) {
        return -ENOMEM;
    }
    snprintf(seq->path, len, "%s/seq", state_dir);
    seq->next = 1;
    FILE *f = fopen(seq->path, "r");
    if (f) {
        uint64_t saved;
        if (fscanf(f, "%" SCNu64, &saved) == 1 && saved > 0) {
            seq->next = saved; /* the whole previous block counts as used */
        } else {
            gw_warn("seq", "unreadable sequence file path=%s; starting a new block at the clock",
                    seq->path);
            /* Still monotonic for consumers that saw the old numbers: jump far ahead. */
            seq->next = (uint64_t)time(NULL) * 1000;
        }
        fclose(f);
    }
    int rc = reserve(seq);
    return rc == 0 || seq->reserved > 0 ? 0 : rc;
}

uint64_t gw_seq_next(struct gw_seq *seq)
{
    if (seq->next >= seq->reserved) {
        reserve(seq);
    }
    return seq->next++;
}

void gw_seq_close(struct gw_seq *seq)
{
    free(seq->path);
    seq->path = NULL;
}
