/* Transcript input: whole files, gzip-compressed ones decompressed (issue 21). gzip is detected
 * by its magic bytes (1f 8b), never by the file name; the decompressed size is capped so that a
 * gzip bomb fails with a message instead of exhausting memory. */
#include <limits.h>
#include <string.h>
#include <zlib.h>

#include "align_internal.h"
#include "flm_alloc.h"
#include "flm_util.h"

int flm_align_gunzip(const char *path, const char *data, size_t size, size_t max_size, char **out,
                     size_t *out_size, flm_error *err)
{
    *out = NULL;
    *out_size = 0;
    if (size < 2 || (uint8_t)data[0] != 0x1f || (uint8_t)data[1] != 0x8b)
        return 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory (zlib)", path);
    char *buf = NULL;
    size_t cap = 0, n = 0;
    const uint8_t *in = (const uint8_t *)data;
    size_t left = size;
    int rc = 0;
    for (;;) {
        if (n + 1 >= cap) { /* room for more output and the terminating NUL */
            size_t want = cap ? cap * 2 : (size < (1u << 20) ? 4 * size + 4096 : size * 2);
            if (want > max_size + 1)
                want = max_size + 1;
            if (want <= n + 1) {
                rc = flm_error_set(err, FLM_ERANGE,
                                   "%s: gzip data decompresses to more than %zu bytes (the input "
                                   "cap)",
                                   path, max_size);
                break;
            }
            char *nb = flm_realloc(buf, want);
            if (!nb) {
                rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = want;
        }
        size_t in_now = left > UINT_MAX ? UINT_MAX : left;
        size_t out_room = cap - 1 - n;
        size_t out_now = out_room > UINT_MAX ? UINT_MAX : out_room;
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)in_now;
        z.next_out = (Bytef *)buf + n;
        z.avail_out = (uInt)out_now;
        int zr = inflate(&z, Z_NO_FLUSH);
        size_t used = in_now - z.avail_in, made = out_now - z.avail_out;
        in += used;
        left -= used;
        n += made;
        if (zr == Z_STREAM_END) {
            /* concatenated members (gzip -c a b > c) go on; trailing zero padding is ignored */
            while (left && *in == 0)
                in++, left--;
            if (!left)
                break;
            if (inflateReset(&z) != Z_OK) {
                rc = flm_error_set(err, FLM_EFORMAT, "%s: corrupt gzip data", path);
                break;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR && !left && made == 0) {
            rc = flm_error_set(err, FLM_EFORMAT, "%s: truncated gzip data", path);
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = flm_error_set(err, zr == Z_MEM_ERROR ? FLM_ENOMEM : FLM_EFORMAT,
                               "%s: corrupt gzip data (%s)", path, z.msg ? z.msg : "zlib error");
            break;
        }
    }
    inflateEnd(&z);
    if (rc) {
        flm_free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    *out_size = n;
    return 0;
}

int flm_align_read_input(const char *path, size_t max_size, char **out, size_t *size,
                         flm_error *err)
{
    char *data = NULL, *plain = NULL;
    size_t n = 0, pn = 0;
    int rc = flm_read_file(path, &data, &n, max_size, err);
    if (rc < 0)
        return rc;
    rc = flm_align_gunzip(path, data, n, max_size, &plain, &pn, err);
    if (rc < 0) {
        flm_free(data);
        return rc;
    }
    if (plain) {
        flm_free(data);
        data = plain;
        n = pn;
    }
    *out = data;
    *size = n;
    return 0;
}
