/* One writer per dataset: flock(2) on DIR/writer.lock (see flm_lock.h). */
#include "flm_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_util.h"

struct flm_dataset_lock {
    int fd;
};

/* The holder's description, as written by it (or a generic one while it is still writing). */
static void read_holder(int fd, char *buf, size_t size)
{
    long long n = flm_pread_full(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = '?';
    if (!buf[0])
        snprintf(buf, size, "another process");
}

int flm_dataset_lock_acquire(flm_dataset_lock **out, const char *dir, const char *what, int mode,
                             flm_error *err)
{
    *out = NULL;
    char *path = flm_path_join(dir, FLM_LOCK_FILE);
    if (!path)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    struct stat st;
    int rc = 0;
    if (fd < 0)
        rc = flm_error_set(err, FLM_EIO, "cannot lock %s for writing: %s: %s", dir, path,
                           strerror(errno));
    else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        rc = flm_error_set(err, FLM_EIO, "cannot lock %s for writing: %s: not a regular file", dir,
                           path);
    else if (flock(fd, (mode == FLM_LOCK_SHARED ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            char holder[256];
            read_holder(fd, holder, sizeof holder);
            rc = flm_error_set(err, FLM_EBUSY, "%s is being written by %s", dir, holder);
        } else {
            rc = flm_error_set(err, FLM_EIO, "cannot lock %s for writing: %s: %s", dir, path,
                               strerror(errno));
        }
    }
    flm_dataset_lock *lk = rc == 0 ? flm_calloc(1, sizeof *lk) : NULL;
    if (rc == 0 && !lk)
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
    if (rc == 0) {
        char line[512], now[32];
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
        int n = snprintf(line, sizeof line, "%s (pid %ld, started %s)\n", what ? what : "flm",
                         (long)getpid(), now);
        /* best effort: the description only serves the message of a refused writer (a
         * shared holder overwrites another's, which is as good) */
        int written = ftruncate(fd, 0) == 0 && flm_write_all(fd, line, (size_t)n) == 0;
        (void)written;
        lk->fd = fd;
        *out = lk;
    } else if (fd >= 0) {
        close(fd);
    }
    flm_free(path);
    return rc;
}

void flm_dataset_lock_release(flm_dataset_lock **lock)
{
    flm_dataset_lock *lk = *lock;
    if (!lk)
        return;
    close(lk->fd); /* drops the flock */
    flm_free(lk);
    *lock = NULL;
}
