#include "flm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "flm_alloc.h"

static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "a special file";
}

int flm_open_regular(const char *path, int flags, flm_error *err)
{
    struct stat st;
    /* before the open: opening a device may already act on it (a tape rewinds, a modem dials) */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return flm_error_set(err, FLM_EINVAL, "%s: not a regular file (%s)", path,
                             file_kind(st.st_mode));
    int fd = open(path, (flags & ~(O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND)) | O_RDONLY |
                            O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return flm_error_set(err, e == ENOENT ? FLM_ENOTFOUND : FLM_EIO, "%s: cannot open: %s",
                             path, strerror(e));
    }
    int fl;
    if (fstat(fd, &st) < 0 || (fl = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return flm_error_set(err, FLM_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) { /* replaced between the stat and the open */
        close(fd);
        return flm_error_set(err, FLM_EINVAL, "%s: not a regular file (%s)", path,
                             file_kind(st.st_mode));
    }
    return fd;
}

int flm_check_regular(const char *path, flm_error *err)
{
    int fd = flm_open_regular(path, 0, err);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

int flm_read_file(const char *path, char **out, size_t *size, size_t max_size, flm_error *err)
{
    *out = NULL;
    *size = 0;
    int fd = flm_open_regular(path, 0, err);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return flm_error_set(err, FLM_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    if ((uint64_t)st.st_size > max_size) {
        close(fd);
        return flm_error_set(err, FLM_ERANGE, "%s: %lld bytes, larger than the limit of %zu", path,
                             (long long)st.st_size, max_size);
    }
    char *buf = flm_malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
    }
    long long n = flm_pread_full(fd, buf, (size_t)st.st_size, 0);
    int e = errno;
    close(fd);
    if (n < 0) {
        flm_free(buf);
        return flm_error_set(err, FLM_EIO, "%s: read failed: %s", path, strerror(e));
    }
    buf[n] = 0;
    *out = buf;
    *size = (size_t)n;
    return 0;
}

int flm_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

long long flm_pread_full(int fd, void *buf, size_t n, uint64_t offset)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(offset + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (long long)got;
}

char *flm_path_join(const char *dir, const char *rel)
{
    if (rel[0] == '/' || strcmp(dir, ".") == 0)
        return flm_strdup(rel);
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = flm_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

int flm_fsync_dir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

double flm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Absolute, normalised path: components of p (relative to the cwd) without "." and "..". The
 * result is written into out as '/'-separated components; returns their count or -1. */
static int path_components(const char *p, char *buf, size_t size, const char **comp, int max)
{
    char cwd[4096];
    if (p[0] == '/')
        snprintf(buf, size, "%s", p);
    else if (getcwd(cwd, sizeof cwd))
        snprintf(buf, size, "%s/%s", cwd, p);
    else
        return -1;
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (!strcmp(t, "."))
            continue;
        if (!strcmp(t, "..")) {
            n -= n > 0;
            continue;
        }
        if (n == max)
            return -1;
        comp[n++] = t;
    }
    return n;
}

char *flm_path_relative(const char *path, const char *dir)
{
    enum { MAXC = 512 };
    char a[4096], b[4096];
    const char *pc[MAXC], *dc[MAXC];
    int np = path_components(path, a, sizeof a, pc, MAXC);
    int nd = path_components(dir, b, sizeof b, dc, MAXC);
    if (np < 0 || nd < 0)
        return NULL;
    int common = 0;
    while (common < np && common < nd && !strcmp(pc[common], dc[common]))
        common++;
    size_t size = 1 + 3 * (size_t)(nd - common);
    for (int i = common; i < np; i++)
        size += strlen(pc[i]) + 1;
    char *out = flm_malloc(size + 1), *o = out;
    if (!out)
        return NULL;
    for (int i = common; i < nd; i++)
        o += sprintf(o, "../");
    for (int i = common; i < np; i++)
        o += sprintf(o, "%s%s", pc[i], i + 1 < np ? "/" : "");
    if (o == out)
        sprintf(o, ".");
    else if (o[-1] == '/')
        o[-1] = 0;
    return out;
}
