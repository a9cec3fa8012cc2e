/* The I/O-bound limit of `flm pack` from precomputed codes (issue 8): the time to read the job's
 * input files and write the bytes of its output with zstd (level 3, one frame per record, one
 * file, fsync), with nothing else done. bench/pack.sh compares the real job against it.
 *
 * usage: bench_pack_io DATASET OUT_FILE INPUT_FILE...
 * prints: read_s, records, record_bytes, compress_write_s, total_s */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "flm_alloc.h"
#include "flm_index.h"
#include "flm_shard.h"
#include "flm_util.h"

typedef struct rec {
    uint8_t *buf;
    size_t size;
} rec;

typedef struct recs {
    rec *r;
    size_t n, cap;
    const char *dir;
    flm_error err;
    int failed;
} recs;

/* Collects every record of the dataset, encoded as the writer encodes it (untimed). */
static void on_row(void *user, int n_cols, const char *const *names, const char *const *values)
{
    (void)n_cols, (void)names;
    recs *R = user;
    char *path = flm_path_join(R->dir, values[0]);
    flm_shard_reader *r = NULL;
    if (!path || flm_shard_reader_open(&r, path, &R->err) < 0) {
        R->failed = 1;
        flm_free(path);
        return;
    }
    for (uint64_t i = 0; i < flm_shard_reader_count(r) && !R->failed; i++) {
        flm_sample *s = NULL;
        size_t cap = 0;
        if (flm_grow((void **)&R->r, &R->cap, R->n + 1, sizeof *R->r) < 0 ||
            flm_shard_reader_read(r, i, &s, &R->err) < 0)
            R->failed = 1;
        else if ((R->r[R->n].buf = NULL, R->r[R->n].size = 0,
                  flm_record_encode(s, &R->r[R->n].buf, &R->r[R->n].size, &cap, &R->err) < 0))
            R->failed = 1;
        else
            R->n++;
        flm_sample_destroy(&s);
    }
    flm_shard_reader_close(&r);
    flm_free(path);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_pack_io DATASET OUT_FILE INPUT_FILE...\n");
        return 2;
    }
    flm_error err = {0};
    flm_index *idx = NULL;
    recs R = {0};
    R.dir = argv[1];
    if (flm_index_open(&idx, argv[1], FLM_INDEX_READONLY, &err) < 0 ||
        flm_index_query(idx, "SELECT path FROM shards ORDER BY id", on_row, &R, &err) < 0 ||
        R.failed) {
        fprintf(stderr, "bench_pack_io: %s%s\n", err.msg, R.err.msg);
        return 1;
    }
    flm_index_close(&idx);
    /* 1. read every input file (the page cache is warm, as it is for the job run before) */
    double t0 = flm_now();
    size_t in_bytes = 0;
    for (int i = 3; i < argc; i++) {
        char *buf = NULL;
        size_t size = 0;
        if (flm_read_file(argv[i], &buf, &size, (size_t)1 << 34, &err) < 0) {
            fprintf(stderr, "bench_pack_io: %s\n", err.msg);
            return 1;
        }
        in_bytes += size;
        flm_free(buf);
    }
    double t1 = flm_now();
    /* 2. compress each record (level 3, as the shard writer) and write them to one file */
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    size_t bound = 0, rec_bytes = 0, out_bytes = 0;
    for (size_t i = 0; i < R.n; i++)
        if (ZSTD_compressBound(R.r[i].size) > bound)
            bound = ZSTD_compressBound(R.r[i].size);
    uint8_t *z = malloc(bound);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    for (size_t i = 0; fd >= 0 && z && i < R.n; i++) {
        size_t c = ZSTD_compressCCtx(cc, z, bound, R.r[i].buf, R.r[i].size, 3);
        if (ZSTD_isError(c) || flm_write_all(fd, z, c) < 0) {
            fprintf(stderr, "bench_pack_io: write failed\n");
            return 1;
        }
        rec_bytes += R.r[i].size;
        out_bytes += c;
    }
    if (fd < 0 || fsync(fd) < 0 || close(fd) < 0) {
        fprintf(stderr, "bench_pack_io: %s: cannot write\n", argv[2]);
        return 1;
    }
    double t2 = flm_now();
    printf("inputs %d files %zu bytes read_s %.4f\n", argc - 3, in_bytes, t1 - t0);
    printf("records %zu record_bytes %zu zstd_bytes %zu compress_write_s %.4f\n", R.n, rec_bytes,
           out_bytes, t2 - t1);
    printf("total_s %.4f\n", t2 - t0);
    ZSTD_freeCCtx(cc);
    free(z);
    for (size_t i = 0; i < R.n; i++)
        flm_free(R.r[i].buf);
    flm_free(R.r);
    unlink(argv[2]);
    return 0;
}
