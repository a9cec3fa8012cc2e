/* Shard writer and reader. Format: docs/shard-format.md. */
#include "flm_shard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "flm_alloc.h"
#include "flm_util.h"

#define HEADER_FIXED 48 /* bytes before the schema string */
#define FOOTER_SIZE 40
#define ENTRY_SIZE 40
#define MAX_HEADER 4096
#define MAX_RECORD (1u << 30)

flm_shard_params flm_shard_default_params(const flm_profiles *profiles)
{
    flm_shard_params p = {3, 0, 0, 0};
    if (profiles) {
        p.vocab_hash = profiles->vocab.hash;
        p.codec_hash = profiles->codec.hash;
        p.model_hash = profiles->model.hash;
    }
    return p;
}

/* ---- writer ---------------------------------------------------------------------------- */

struct flm_shard_writer {
    char *path, *tmp_path;
    int fd;
    int created; /* tmp_path exists on disk (destroy removes it unless finished) */
    int finished;
    ZSTD_CCtx *cctx;
    uint64_t pos;           /* bytes written */
    flm_record_info *infos; /* [n] */
    size_t n, cap;
    uint8_t *rec; /* encoded record scratch */
    size_t rec_size, rec_cap;
    uint8_t *cbuf; /* compressed scratch */
    size_t cbuf_cap;
};

static size_t encode_header(const flm_shard_params *p, uint8_t *h)
{
    memset(h, 0, MAX_HEADER);
    memcpy(h, FLM_SHARD_MAGIC, 8);
    flm_put_u32(h + 8, FLM_SHARD_FORMAT_VERSION);
    flm_put_u32(h + 16, FLM_RECORD_VERSION);
    flm_put_u32(h + 20, FLM_N_CHANNELS);
    flm_put_u64(h + 24, p->vocab_hash);
    flm_put_u64(h + 32, p->codec_hash);
    flm_put_u64(h + 40, p->model_hash);
    size_t slen = strlen(FLM_SHARD_SCHEMA);
    flm_put_u16(h + HEADER_FIXED, (uint16_t)slen);
    memcpy(h + HEADER_FIXED + 2, FLM_SHARD_SCHEMA, slen);
    size_t size = (HEADER_FIXED + 2 + slen + 7) / 8 * 8 + 8; /* pad to 8, then the checksum */
    flm_put_u32(h + 12, (uint32_t)size);
    flm_put_u64(h + size - 8, XXH3_64bits(h, size - 8));
    return size;
}

int flm_shard_writer_create(flm_shard_writer **out, const char *path,
                            const flm_shard_params *params, flm_error *err)
{
    static _Atomic unsigned counter;
    *out = NULL;
    flm_shard_writer *w = flm_calloc(1, sizeof *w);
    if (!w)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
    w->fd = -1;
    size_t tlen = strlen(path) + 48;
    w->path = flm_strdup(path);
    w->tmp_path = flm_malloc(tlen);
    w->cctx = ZSTD_createCCtx();
    if (!w->path || !w->tmp_path || !w->cctx) {
        flm_shard_writer_destroy(&w);
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
    }
    if (params->zstd_level < ZSTD_minCLevel() || params->zstd_level > ZSTD_maxCLevel()) {
        flm_shard_writer_destroy(&w);
        return flm_error_set(err, FLM_EINVAL, "%s: zstd level %d outside [%d, %d]", path,
                             params->zstd_level, ZSTD_minCLevel(), ZSTD_maxCLevel());
    }
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, params->zstd_level);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 0); /* we keep our own XXH3 */
    snprintf(w->tmp_path, tlen, "%s.tmp-%ld-%u", path, (long)getpid(),
             atomic_fetch_add(&counter, 1));
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    w->created = w->fd >= 0;
    if (w->fd < 0) {
        int rc = flm_error_set(err, FLM_EIO, "%s: cannot create: %s", w->tmp_path, strerror(errno));
        flm_shard_writer_destroy(&w);
        return rc;
    }
    uint8_t h[MAX_HEADER];
    size_t hs = encode_header(params, h);
    if (flm_write_all(w->fd, h, hs) < 0) {
        int rc = flm_error_set(err, FLM_EIO, "%s: write failed: %s", w->tmp_path, strerror(errno));
        flm_shard_writer_destroy(&w);
        return rc;
    }
    w->pos = hs;
    *out = w;
    return 0;
}

int flm_shard_writer_add(flm_shard_writer *w, const flm_sample *s, flm_record_info *info,
                         flm_error *err)
{
    if (w->finished || w->fd < 0)
        return flm_error_set(err, FLM_EINVAL, "%s: writer already finished or failed", w->path);
    w->rec_size = 0;
    int rc = flm_record_encode(s, &w->rec, &w->rec_size, &w->rec_cap, err);
    if (rc < 0)
        return flm_error_prefix(err, "%s", w->path);
    if (w->rec_size > MAX_RECORD)
        return flm_error_set(err, FLM_ERANGE, "%s: sample %s encodes to %zu bytes (max %u)",
                             w->path, s->id ? s->id : "?", w->rec_size, MAX_RECORD);
    size_t bound = ZSTD_compressBound(w->rec_size);
    if (flm_grow((void **)&w->cbuf, &w->cbuf_cap, bound, 1) < 0 ||
        flm_grow((void **)&w->infos, &w->cap, w->n + 1, sizeof *w->infos) < 0)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", w->path);
    size_t cs = ZSTD_compress2(w->cctx, w->cbuf, bound, w->rec, w->rec_size);
    if (ZSTD_isError(cs))
        return flm_error_set(err, FLM_EZSTD, "%s: zstd: %s", w->path, ZSTD_getErrorName(cs));
    if (flm_write_all(w->fd, w->cbuf, cs) < 0) {
        rc = flm_error_set(err, FLM_EIO, "%s: write failed: %s", w->tmp_path, strerror(errno));
        close(w->fd); /* a partial record would corrupt the file: stop here */
        w->fd = -1;
        return rc;
    }
    flm_record_info ri = {w->pos,
                          (uint32_t)cs,
                          (uint32_t)w->rec_size,
                          (uint32_t)s->n_frames,
                          XXH3_64bits(w->cbuf, cs),
                          XXH3_64bits(w->rec, w->rec_size)};
    w->infos[w->n++] = ri;
    w->pos += cs;
    if (info)
        *info = ri;
    return 0;
}

uint64_t flm_shard_writer_count(const flm_shard_writer *w)
{
    return w->n;
}

uint64_t flm_shard_writer_size(const flm_shard_writer *w)
{
    return w->pos;
}

int flm_shard_writer_finish(flm_shard_writer *w, flm_error *err)
{
    if (w->finished || w->fd < 0)
        return flm_error_set(err, FLM_EINVAL, "%s: writer already finished or failed", w->path);
    size_t tsize = w->n * ENTRY_SIZE;
    uint8_t *t = flm_malloc(tsize + FOOTER_SIZE);
    if (!t)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", w->path);
    for (size_t i = 0; i < w->n; i++) {
        uint8_t *e = t + i * ENTRY_SIZE;
        const flm_record_info *ri = &w->infos[i];
        flm_put_u64(e, ri->offset);
        flm_put_u32(e + 8, ri->csize);
        flm_put_u32(e + 12, ri->usize);
        flm_put_u32(e + 16, ri->n_frames);
        flm_put_u32(e + 20, 0);
        flm_put_u64(e + 24, ri->ccheck);
        flm_put_u64(e + 32, ri->ucheck);
    }
    uint8_t *f = t + tsize;
    flm_put_u64(f, w->pos);
    flm_put_u64(f + 8, w->n);
    flm_put_u64(f + 16, XXH3_64bits(t, tsize));
    flm_put_u64(f + 24, XXH3_64bits(f, 24));
    memcpy(f + 32, FLM_SHARD_FOOTER_MAGIC, 8);
    int rc = 0;
    if (flm_write_all(w->fd, t, tsize + FOOTER_SIZE) < 0 || fsync(w->fd) < 0)
        rc =
            flm_error_set(err, FLM_EIO, "%s: write/fsync failed: %s", w->tmp_path, strerror(errno));
    flm_free(t);
    if (close(w->fd) < 0 && rc == 0)
        rc = flm_error_set(err, FLM_EIO, "%s: close failed: %s", w->tmp_path, strerror(errno));
    w->fd = -1;
    if (rc == 0 && rename(w->tmp_path, w->path) < 0)
        rc = flm_error_set(err, FLM_EIO, "%s: rename to %s failed: %s", w->tmp_path, w->path,
                           strerror(errno));
    if (rc == 0) {
        w->finished = 1;
        if (flm_fsync_dir(w->path) < 0)
            rc = flm_error_set(err, FLM_EIO, "%s: fsync of the directory failed: %s", w->path,
                               strerror(errno));
    }
    return rc;
}

void flm_shard_writer_destroy(flm_shard_writer **wp)
{
    flm_shard_writer *w = *wp;
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->created && !w->finished)
        unlink(w->tmp_path);
    ZSTD_freeCCtx(w->cctx);
    flm_free(w->path);
    flm_free(w->tmp_path);
    flm_free(w->infos);
    flm_free(w->rec);
    flm_free(w->cbuf);
    flm_free(w);
    *wp = NULL;
}

/* ---- reader ---------------------------------------------------------------------------- */

struct flm_shard_reader {
    char *path;
    int fd;
    uint64_t file_size;
    flm_shard_header header;
    flm_record_info *infos; /* [n] */
    uint64_t n;
    ZSTD_DCtx *dctx;
    uint8_t *cbuf, *ubuf;
    size_t cbuf_cap, ubuf_cap;
};

static int read_exact(flm_shard_reader *r, void *buf, size_t n, uint64_t off, const char *what,
                      flm_error *err)
{
    long long got = flm_pread_full(r->fd, buf, n, off);
    if (got < 0)
        return flm_error_set(err, FLM_EIO, "shard %s: reading %s: %s", r->path, what,
                             strerror(errno));
    if ((size_t)got != n)
        return flm_error_set(err, FLM_ECORRUPT, "shard %s: truncated while reading %s", r->path,
                             what);
    return 0;
}

static int parse_header(flm_shard_reader *r, flm_error *err)
{
    uint8_t h[MAX_HEADER];
    if (r->file_size < 16 + FOOTER_SIZE)
        return flm_error_set(err, FLM_ECORRUPT,
                             "shard %s: %llu bytes is too short to be a shard (truncated?)",
                             r->path, (unsigned long long)r->file_size);
    int rc = read_exact(r, h, 16, 0, "the header", err);
    if (rc < 0)
        return rc;
    if (memcmp(h, FLM_SHARD_MAGIC, 8) != 0)
        return flm_error_set(err, FLM_EFORMAT, "shard %s: not a flmstream shard (bad magic)",
                             r->path);
    uint32_t version = flm_get_u32(h + 8), size = flm_get_u32(h + 12);
    if (version != FLM_SHARD_FORMAT_VERSION)
        return flm_error_set(err, FLM_EFORMAT,
                             "shard %s: format version %u; this build reads version %d", r->path,
                             version, FLM_SHARD_FORMAT_VERSION);
    if (size < HEADER_FIXED + 2 + 8 || size > MAX_HEADER || size % 8)
        return flm_error_set(err, FLM_ECORRUPT, "shard %s: header size %u is invalid", r->path,
                             size);
    if (size + FOOTER_SIZE > r->file_size)
        return flm_error_set(err, FLM_ECORRUPT,
                             "shard %s: %llu bytes ends before its footer: truncated, or its "
                             "writer did not finish",
                             r->path, (unsigned long long)r->file_size);
    if ((rc = read_exact(r, h, size, 0, "the header", err)) < 0)
        return rc;
    uint64_t want = flm_get_u64(h + size - 8), got = XXH3_64bits(h, size - 8);
    if (want != got)
        return flm_error_set(
            err, FLM_ECORRUPT,
            "shard %s: header checksum mismatch (stored %016llx, computed %016llx)", r->path,
            (unsigned long long)want, (unsigned long long)got);
    flm_shard_header *hd = &r->header;
    hd->format_version = version;
    hd->record_version = flm_get_u32(h + 16);
    hd->n_channels = flm_get_u32(h + 20);
    hd->vocab_hash = flm_get_u64(h + 24);
    hd->codec_hash = flm_get_u64(h + 32);
    hd->model_hash = flm_get_u64(h + 40);
    uint16_t slen = flm_get_u16(h + HEADER_FIXED);
    if (HEADER_FIXED + 2u + slen > size - 8 || slen >= sizeof hd->schema)
        return flm_error_set(err, FLM_ECORRUPT, "shard %s: schema string of %u bytes", r->path,
                             slen);
    memcpy(hd->schema, h + HEADER_FIXED + 2, slen);
    hd->schema[slen] = 0;
    if (hd->record_version != FLM_RECORD_VERSION || hd->n_channels != FLM_N_CHANNELS ||
        strcmp(hd->schema, FLM_SHARD_SCHEMA) != 0)
        return flm_error_set(err, FLM_EFORMAT,
                             "shard %s: schema %s, record version %u, %u channels; this build "
                             "reads %s, version %d, %d channels",
                             r->path, hd->schema, hd->record_version, hd->n_channels,
                             FLM_SHARD_SCHEMA, FLM_RECORD_VERSION, FLM_N_CHANNELS);
    return (int)size;
}

static int parse_table(flm_shard_reader *r, uint64_t header_size, flm_error *err)
{
    uint8_t f[FOOTER_SIZE];
    int rc = read_exact(r, f, FOOTER_SIZE, r->file_size - FOOTER_SIZE, "the footer", err);
    if (rc < 0)
        return rc;
    if (memcmp(f + 32, FLM_SHARD_FOOTER_MAGIC, 8) != 0)
        return flm_error_set(err, FLM_ECORRUPT,
                             "shard %s: no footer (truncated, or its writer did not finish)",
                             r->path);
    if (flm_get_u64(f + 24) != XXH3_64bits(f, 24))
        return flm_error_set(err, FLM_ECORRUPT, "shard %s: footer checksum mismatch", r->path);
    uint64_t table_off = flm_get_u64(f), n = flm_get_u64(f + 8);
    if (table_off < header_size || n > (r->file_size - FOOTER_SIZE - table_off) / ENTRY_SIZE ||
        table_off + n * ENTRY_SIZE + FOOTER_SIZE != r->file_size)
        return flm_error_set(err, FLM_ECORRUPT,
                             "shard %s: seek table (%llu records at byte %llu) does not fit a "
                             "file of %llu bytes",
                             r->path, (unsigned long long)n, (unsigned long long)table_off,
                             (unsigned long long)r->file_size);
    uint8_t *t = flm_malloc(n * ENTRY_SIZE);
    r->infos = flm_malloc(n * sizeof *r->infos);
    if (!t || !r->infos) {
        flm_free(t);
        return flm_error_set(err, FLM_ENOMEM, "shard %s: out of memory for %llu records", r->path,
                             (unsigned long long)n);
    }
    if ((rc = read_exact(r, t, n * ENTRY_SIZE, table_off, "the seek table", err)) < 0)
        goto done;
    if (XXH3_64bits(t, n * ENTRY_SIZE) != flm_get_u64(f + 16)) {
        rc = flm_error_set(err, FLM_ECORRUPT, "shard %s: seek table checksum mismatch", r->path);
        goto done;
    }
    uint64_t expect = header_size;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *e = t + i * ENTRY_SIZE;
        flm_record_info *ri = &r->infos[i];
        ri->offset = flm_get_u64(e);
        ri->csize = flm_get_u32(e + 8);
        ri->usize = flm_get_u32(e + 12);
        ri->n_frames = flm_get_u32(e + 16);
        ri->ccheck = flm_get_u64(e + 24);
        ri->ucheck = flm_get_u64(e + 32);
        if (ri->offset != expect || ri->csize == 0 || ri->usize > MAX_RECORD ||
            ri->n_frames > FLM_MAX_FRAMES) {
            rc = flm_error_set(err, FLM_ECORRUPT,
                               "shard %s: record %llu: seek entry is inconsistent (offset %llu, "
                               "expected %llu)",
                               r->path, (unsigned long long)i, (unsigned long long)ri->offset,
                               (unsigned long long)expect);
            goto done;
        }
        expect += ri->csize;
    }
    if (expect != table_off)
        rc = flm_error_set(err, FLM_ECORRUPT,
                           "shard %s: records end at byte %llu but the seek table starts at %llu",
                           r->path, (unsigned long long)expect, (unsigned long long)table_off);
    r->n = n;
done:
    flm_free(t);
    return rc;
}

int flm_shard_reader_open(flm_shard_reader **out, const char *path, flm_error *err)
{
    *out = NULL;
    flm_shard_reader *r = flm_calloc(1, sizeof *r);
    if (!r)
        return flm_error_set(err, FLM_ENOMEM, "shard %s: out of memory", path);
    r->fd = -1;
    int rc;
    if (!(r->path = flm_strdup(path)) || !(r->dctx = ZSTD_createDCtx())) {
        rc = flm_error_set(err, FLM_ENOMEM, "shard %s: out of memory", path);
        goto fail;
    }
    flm_error oerr = {0};
    if ((r->fd = flm_open_regular(path, 0, &oerr)) < 0) { /* a FIFO would block the open */
        r->fd = -1;
        rc = flm_error_set(err, oerr.code, "shard %s", oerr.msg);
        goto fail;
    }
    struct stat st;
    if (fstat(r->fd, &st) < 0) {
        rc = flm_error_set(err, FLM_EIO, "shard %s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    r->file_size = (uint64_t)st.st_size;
    if ((rc = parse_header(r, err)) < 0)
        goto fail;
    if ((rc = parse_table(r, (uint64_t)rc, err)) < 0)
        goto fail;
    *out = r;
    return 0;
fail:
    flm_shard_reader_close(&r);
    return rc;
}

void flm_shard_reader_close(flm_shard_reader **rp)
{
    flm_shard_reader *r = *rp;
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    ZSTD_freeDCtx(r->dctx);
    flm_free(r->path);
    flm_free(r->infos);
    flm_free(r->cbuf);
    flm_free(r->ubuf);
    flm_free(r);
    *rp = NULL;
}

uint64_t flm_shard_reader_count(const flm_shard_reader *r)
{
    return r->n;
}

const flm_shard_header *flm_shard_reader_header(const flm_shard_reader *r)
{
    return &r->header;
}

const flm_record_info *flm_shard_reader_info(const flm_shard_reader *r, uint64_t i)
{
    return i < r->n ? &r->infos[i] : NULL;
}

const char *flm_shard_reader_path(const flm_shard_reader *r)
{
    return r->path;
}

uint64_t flm_shard_reader_file_size(const flm_shard_reader *r)
{
    return r->file_size;
}

int flm_shard_reader_raw(flm_shard_reader *r, uint64_t i, const uint8_t **data, size_t *size,
                         flm_error *err)
{
    if (i >= r->n)
        return flm_error_set(err, FLM_ERANGE, "shard %s: record %llu out of range (%llu records)",
                             r->path, (unsigned long long)i, (unsigned long long)r->n);
    const flm_record_info *ri = &r->infos[i];
    if (flm_grow((void **)&r->cbuf, &r->cbuf_cap, ri->csize, 1) < 0 ||
        flm_grow((void **)&r->ubuf, &r->ubuf_cap, ri->usize ? ri->usize : 1, 1) < 0)
        return flm_error_set(err, FLM_ENOMEM, "shard %s: record %llu: out of memory", r->path,
                             (unsigned long long)i);
    char what[64];
    snprintf(what, sizeof what, "record %llu", (unsigned long long)i);
    int rc = read_exact(r, r->cbuf, ri->csize, ri->offset, what, err);
    if (rc < 0)
        return rc;
    uint64_t c = XXH3_64bits(r->cbuf, ri->csize);
    if (c != ri->ccheck)
        return flm_error_set(err, FLM_ECORRUPT,
                             "shard %s: record %llu: checksum mismatch (stored %016llx, computed "
                             "%016llx)",
                             r->path, (unsigned long long)i, (unsigned long long)ri->ccheck,
                             (unsigned long long)c);
    unsigned long long fcs = ZSTD_getFrameContentSize(r->cbuf, ri->csize);
    if (fcs != ri->usize)
        return flm_error_set(err, FLM_ECORRUPT,
                             "shard %s: record %llu: zstd frame holds %llu bytes, seek table "
                             "says %u",
                             r->path, (unsigned long long)i, fcs, ri->usize);
    size_t n = ZSTD_decompressDCtx(r->dctx, r->ubuf, r->ubuf_cap, r->cbuf, ri->csize);
    if (ZSTD_isError(n) || n != ri->usize)
        return flm_error_set(err, FLM_EZSTD, "shard %s: record %llu: zstd: %s", r->path,
                             (unsigned long long)i,
                             ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch");
    uint64_t u = XXH3_64bits(r->ubuf, n);
    if (u != ri->ucheck)
        return flm_error_set(err, FLM_ECORRUPT,
                             "shard %s: record %llu: content checksum mismatch (stored %016llx, "
                             "computed %016llx)",
                             r->path, (unsigned long long)i, (unsigned long long)ri->ucheck,
                             (unsigned long long)u);
    *data = r->ubuf;
    *size = n;
    return 0;
}

int flm_shard_reader_view(flm_shard_reader *r, uint64_t i, flm_record_view *v, flm_error *err)
{
    const uint8_t *data;
    size_t size;
    int rc = flm_shard_reader_raw(r, i, &data, &size, err);
    if (rc < 0)
        return rc;
    if ((rc = flm_record_decode(data, size, v, err)) < 0)
        return flm_error_prefix(err, "shard %s: record %llu", r->path, (unsigned long long)i);
    if (v->n_frames != r->infos[i].n_frames)
        return flm_error_set(err, FLM_ECORRUPT,
                             "shard %s: record %llu: %u frames, seek table says %u", r->path,
                             (unsigned long long)i, v->n_frames, r->infos[i].n_frames);
    return 0;
}

int flm_shard_reader_read(flm_shard_reader *r, uint64_t i, flm_sample **out, flm_error *err)
{
    flm_record_view v;
    *out = NULL;
    int rc = flm_shard_reader_view(r, i, &v, err);
    if (rc < 0)
        return rc;
    return flm_record_to_sample(&v, out, err);
}

int flm_shard_remove_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strstr(de->d_name, FLM_SHARD_SUFFIX ".tmp-")) {
            char *p = flm_path_join(dir, de->d_name);
            n += p && unlink(p) == 0;
            flm_free(p);
        }
    if (d)
        closedir(d);
    return n;
}
