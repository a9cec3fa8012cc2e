/* flm_util.h - small shared helpers: whole-file reads, little-endian codecs, paths.
 *
 *     char *text; size_t n;
 *     if (flm_read_file("recipe.json", &text, &n, 16 << 20, &err) < 0) ...   // caller frees
 */
#ifndef FLM_UTIL_H
#define FLM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "flm_error.h"

/* Opens an input file for reading without ever blocking on it. Anything but a regular file (a
 * FIFO, whose open or read waits for a writer, a device, a socket, a directory) is refused before
 * a byte is read: FLM_EINVAL, "PATH: not a regular file (a FIFO)". The path is checked with stat
 * first (a device is never opened), then opened O_RDONLY | O_NONBLOCK and checked again on the
 * descriptor (a path swapped in between is still refused), then O_NONBLOCK is cleared. Every
 * input file of the toolkit is opened here, or checked here first where a library opens the path
 * itself (FFmpeg, SQLite). flags: extra open(2) flags (O_NOFOLLOW, O_NOATIME); the access mode is
 * always O_RDONLY and O_CLOEXEC is always set. Returns the descriptor (the caller closes it) or a
 * negative code: FLM_ENOTFOUND for a missing path ("PATH: cannot open: No such file or
 * directory"), FLM_EIO for other failures to open (permission: "PATH: cannot open: ..."). */
FLM_API int flm_open_regular(const char *path, int flags, flm_error *err);
/* flm_open_regular, then close: for a caller that must hand the path to a library. */
FLM_API int flm_check_regular(const char *path, flm_error *err);
/* Reads a whole file (at most max_size bytes, a regular file: flm_open_regular) into a
 * NUL-terminated buffer the caller frees with flm_free. */
FLM_API int flm_read_file(const char *path, char **out, size_t *size, size_t max_size,
                          flm_error *err);
/* write(2) all of buf, retrying on EINTR/short writes; -1 with errno on failure. */
FLM_API int flm_write_all(int fd, const void *buf, size_t n);
/* pread(2) exactly n bytes; returns bytes read (< n at end of file) or -1 with errno. */
FLM_API long long flm_pread_full(int fd, void *buf, size_t n, uint64_t offset);
/* dir/rel, or rel alone when it is absolute or dir is "."; caller frees with flm_free. NULL when
 * out of memory. (Shard paths in an index are relative to the index's directory.) */
FLM_API char *flm_path_join(const char *dir, const char *rel);
/* path (absolute, or relative to the current directory) as seen from directory dir (same rules),
 * lexically: "a/b.wav" from "out" is "../a/b.wav". Symbolic links are not resolved. Caller frees;
 * NULL when out of memory or the current directory is unknown. */
FLM_API char *flm_path_relative(const char *path, const char *dir);
/* fsync the directory containing path (makes a rename durable). */
FLM_API int flm_fsync_dir(const char *path);
/* Monotonic clock in seconds. */
FLM_API double flm_now(void);

static inline void flm_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void flm_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void flm_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t flm_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t flm_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t flm_get_u64(const uint8_t *p)
{
    return (uint64_t)flm_get_u32(p) | (uint64_t)flm_get_u32(p + 4) << 32;
}

#endif
