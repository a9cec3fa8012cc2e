/* NumPy .npy code arrays. See flm_npy.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_npy.h"
#include "flm_util.h"

#define NPY_MAX_FILE ((size_t)1 << 34) /* 16 GiB: ~ 8.5 years of 8-codebook int32 codes */

/* Value of 'key' in the header dict: a pointer just after "'key':" and blanks, or NULL. */
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p++ != ':')
        return NULL;
    while (*p == ' ')
        p++;
    return p;
}

int flm_npy_parse_codes(const void *data, size_t size, const char *name, int32_t **codes,
                        int32_t *n_q, int64_t *n_frames, flm_error *err)
{
    const uint8_t *u = data;
    *codes = NULL;
    if (size < 10 || memcmp(u, "\x93NUMPY", 6) || (u[6] != 1 && u[6] != 2))
        return flm_error_set(err, FLM_EFORMAT, "%s: not a NumPy .npy file (format 1 or 2)", name);
    size_t pre = u[6] == 1 ? 10 : 12;
    if (size < pre)
        return flm_error_set(err, FLM_EFORMAT, "%s: truncated .npy header", name);
    size_t hl = u[6] == 1 ? flm_get_u16(u + 8) : flm_get_u32(u + 8);
    if (hl > size - pre || hl > 65536)
        return flm_error_set(err, FLM_EFORMAT, "%s: .npy header of %zu bytes, file has %zu", name,
                             hl, size);
    char hdr[1024];
    size_t n = hl < sizeof hdr - 1 ? hl : sizeof hdr - 1;
    memcpy(hdr, u + pre, n);
    hdr[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (hdr[i] < 0x20 || hdr[i] > 0x7e)
            hdr[i] = ' ';
    while (n > 0 && hdr[n - 1] == ' ') /* the padding would end messages in blanks */
        hdr[--n] = 0;
    const char *descr = dict_value(hdr, "descr"), *fo = dict_value(hdr, "fortran_order"),
               *shape = dict_value(hdr, "shape");
    int width = 0, is_signed = 1;
    if (descr && !strncmp(descr, "'<i2'", 5))
        width = 2;
    else if (descr && !strncmp(descr, "'<u2'", 5))
        width = 2, is_signed = 0;
    else if (descr && !strncmp(descr, "'<i4'", 5))
        width = 4;
    else if (descr && !strncmp(descr, "'<i8'", 5))
        width = 8;
    if (!width)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: dtype must be little-endian int16, uint16, int32 or int64 "
                             "('<i2', '<u2', '<i4', '<i8'); header is %s",
                             name, hdr);
    if (!fo || strncmp(fo, "False", 5))
        return flm_error_set(err, FLM_EFORMAT, "%s: Fortran-order arrays are not supported", name);
    long long d[4] = {0};
    int nd = 0;
    if (shape && *shape == '(') {
        const char *p = shape + 1;
        while (nd < 4) {
            while (*p == ' ')
                p++;
            if (*p == ')')
                break;
            char *end;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || errno || v < 0)
                return flm_error_set(err, FLM_EFORMAT, "%s: bad shape in header %s", name, hdr);
            d[nd++] = v;
            p = end;
            while (*p == ' ')
                p++;
            if (*p == ',')
                p++;
        }
    }
    if (nd == 3 && d[0] == 1)
        d[0] = d[1], d[1] = d[2], nd = 2;
    if (nd != 2 || d[0] < 1 || d[0] > 64 || d[1] > INT32_MAX)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: shape must be (n_q, n_frames) or (1, n_q, n_frames) with n_q "
                             "1..64; header is %s",
                             name, hdr);
    size_t count = (size_t)d[0] * (size_t)d[1], off = pre + hl;
    if (size - off != count * (size_t)width)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: shape (%lld, %lld) needs %zu data bytes, the file has %zu", name,
                             d[0], d[1], count * (size_t)width, size - off);
    int32_t *c = flm_malloc(count * sizeof *c + 1);
    if (!c)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory for %zu codes", name, count);
    const uint8_t *q = u + off;
    for (size_t i = 0; i < count; i++) {
        int64_t v;
        if (width == 2)
            v = is_signed ? (int16_t)flm_get_u16(q + 2 * i) : flm_get_u16(q + 2 * i);
        else if (width == 4)
            v = (int32_t)flm_get_u32(q + 4 * i);
        else
            v = (int64_t)flm_get_u64(q + 8 * i);
        if (v < INT32_MIN || v > INT32_MAX) {
            flm_free(c);
            return flm_error_set(err, FLM_ERANGE, "%s: value %lld at codebook %zu frame %zu", name,
                                 (long long)v, i / (size_t)d[1], i % (size_t)d[1]);
        }
        c[i] = (int32_t)v;
    }
    *codes = c;
    *n_q = (int32_t)d[0];
    *n_frames = d[1];
    return 0;
}

int flm_npy_read_codes(const char *path, int32_t **codes, int32_t *n_q, int64_t *n_frames,
                       flm_error *err)
{
    char *buf = NULL;
    size_t size = 0;
    *codes = NULL;
    int rc = flm_read_file(path, &buf, &size, NPY_MAX_FILE, err);
    if (rc == 0)
        rc = flm_npy_parse_codes(buf, size, path, codes, n_q, n_frames, err);
    flm_free(buf);
    return rc;
}

int flm_npy_write_codes(const char *path, const int32_t *codes, int32_t n_q, int64_t n_frames,
                        flm_error *err)
{
    char hdr[128];
    int n =
        snprintf(hdr, sizeof hdr, "{'descr': '<i4', 'fortran_order': False, 'shape': (%d, %lld), }",
                 (int)n_q, (long long)n_frames);
    size_t total = ((size_t)10 + (size_t)n + 1 + 63) / 64 * 64; /* magic..len + dict + '\n' */
    size_t count = (size_t)n_q * (size_t)n_frames, bytes = total + 4 * count;
    uint8_t *buf = flm_malloc(bytes);
    if (!buf)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    flm_put_u16(buf + 8, (uint16_t)(total - 10));
    memset(buf + 10, ' ', total - 10);
    memcpy(buf + 10, hdr, (size_t)n);
    buf[total - 1] = '\n';
    for (size_t i = 0; i < count; i++)
        flm_put_u32(buf + total + 4 * i, (uint32_t)codes[i]);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(buf, 1, bytes, f) == bytes;
    int e = errno;
    if (f && fclose(f) != 0 && ok)
        ok = 0, e = errno;
    if (ok && rename(tmp, path) < 0)
        ok = 0, e = errno;
    flm_free(buf);
    if (!ok) {
        unlink(tmp);
        return flm_error_set(err, FLM_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}
