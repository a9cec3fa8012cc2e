/* Random access through the index: time to read one random sample of a large dataset.
 *
 * usage: bench_random_access WORKDIR [GB] [N_READS]
 *
 * Builds (once) a dataset of about GB gigabytes in WORKDIR/ra: two base shards of ~100 MB of
 * realistic packed samples, then real copies of them (distinct files, distinct sample keys in
 * the index) until the size is reached. Then, for N random sample keys: look the key up in the
 * index, open its shard, read the record (both checksums verified) and decode it, close. Reports
 * median / p90 / p99 latency, first with the page cache as it is (warm) and, when the process may
 * drop caches (root, /proc/sys/vm/drop_caches), cold. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flm_alloc.h"
#include "flm_dataset_writer.h"
#include "flm_index.h"
#include "flm_rng.h"
#include "flm_shard.h"
#include "flm_synth.h"
#include "flm_util.h"

#define PER_SHARD 1600

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *m)
{
    fprintf(stderr, "bench: %s\n", m);
    exit(1);
}

static void build(const char *ds, double gb)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/shards", ds);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", ds, path);
    if (system(cmd) != 0)
        die("mkdir");
    flm_profiles p;
    flm_profiles_default(&p);
    flm_error err = {0};
    flm_index *idx = NULL;
    if (flm_index_open(&idx, ds, FLM_INDEX_CREATE, &err) < 0)
        die(err.msg);
    int64_t run;
    flm_index_begin_run(idx, "bench_random_access", NULL, 1, &p, &run, &err);
    flm_synth_params sp = flm_synth_default_params();
    flm_shard_params shp = flm_shard_default_params(&p);
    /* two base shards through the dataset writer (shards/000000.flms, 000001.flms) */
    flm_dataset_writer *dw = NULL;
    if (flm_dataset_writer_open(&dw, ds, idx, run, &shp, &err) < 0)
        die(err.msg);
    double base_bytes = 0;
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < PER_SHARD; i++) {
            char id[64];
            flm_sample *s = NULL;
            snprintf(id, sizeof id, "ra/%d/%d#0", k, i);
            if (flm_synth_sample(&s, &p, &sp, 5, id, &err) < 0 ||
                flm_dataset_writer_add(dw, s, &err) < 0)
                die(err.msg);
        }
        if (flm_dataset_writer_flush(dw, &err) < 0)
            die(err.msg);
        struct stat st;
        snprintf(path, sizeof path, "%s/shards/%06d.flms", ds, k);
        stat(path, &st);
        base_bytes += (double)st.st_size;
        fprintf(stderr, "base shard %d: %.1f MB\n", k, st.st_size / 1e6);
    }
    flm_dataset_writer_close(&dw);
    flm_index_close(&idx);
    int copies = (int)(gb * 1e9 / base_bytes + 0.5);
    char ipath[4096];
    snprintf(ipath, sizeof ipath, "%s/index.sqlite", ds);
    sqlite3 *db;
    if (sqlite3_open(ipath, &db) != SQLITE_OK)
        die("sqlite open");
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int c = 1; c < copies; c++) {
        for (int k = 0; k < 2; k++) {
            snprintf(cmd, sizeof cmd, "cp '%s/shards/%06d.flms' '%s/shards/copy%04d-%d.flms'", ds,
                     k, ds, c, k);
            if (system(cmd) != 0)
                die("cp");
            char *q = sqlite3_mprintf(
                "INSERT INTO shards (path, run_id, n_records, n_frames, file_size, created_at) "
                "SELECT 'shards/copy%04d-%d.flms', run_id, n_records, n_frames, file_size, "
                "created_at FROM shards WHERE path = 'shards/%06d.flms';"
                "INSERT INTO samples (sample_key, shard_id, record, n_frames, style, stage, "
                "language, corpus, speakers, duration_s, checksum, metadata) "
                "SELECT replace(sample_key, '#0', '#%d'), last_insert_rowid(), record, n_frames, "
                "style, stage, language, corpus, speakers, duration_s, checksum, metadata "
                "FROM samples WHERE shard_id = (SELECT id FROM shards WHERE path = "
                "'shards/%06d.flms');",
                c, k, k, c, k);
            if (sqlite3_exec(db, q, NULL, NULL, NULL) != SQLITE_OK)
                die(sqlite3_errmsg(db));
            sqlite3_free(q);
        }
        if (c % 10 == 0)
            fprintf(stderr, "copies: %d/%d\n", c, copies);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
}

static void measure(const char *ds, int n_reads, const char *label)
{
    flm_error err = {0};
    flm_index *idx = NULL;
    if (flm_index_open(&idx, ds, FLM_INDEX_READONLY, &err) < 0)
        die(err.msg);
    int64_t n_samples = flm_index_count_samples(idx, &err);
    int copies = (int)(n_samples / (2 * PER_SHARD));
    double *lat = malloc(sizeof(double) * (size_t)n_reads);
    flm_rng r;
    flm_rng_init(&r, 1, "bench", label);
    int64_t frames = 0;
    for (int i = 0; i < n_reads; i++) {
        char key[64];
        snprintf(key, sizeof key, "ra/%u/%u#%u", flm_rng_below(&r, 2), flm_rng_below(&r, PER_SHARD),
                 flm_rng_below(&r, (uint32_t)copies));
        double t = flm_now();
        char *path = NULL;
        uint64_t rec;
        flm_shard_reader *sr = NULL;
        flm_record_view v;
        if (flm_index_locate(idx, key, &path, &rec, &err) < 0 ||
            flm_shard_reader_open(&sr, path, &err) < 0 ||
            flm_shard_reader_view(sr, rec, &v, &err) < 0)
            die(err.msg);
        frames += v.n_frames;
        flm_shard_reader_close(&sr);
        flm_free(path);
        lat[i] = (flm_now() - t) * 1e3;
    }
    qsort(lat, (size_t)n_reads, sizeof *lat, cmp_double);
    printf("%s: %d random reads of %lld samples: median %.3f ms, p90 %.3f ms, p99 %.3f ms, "
           "max %.3f ms (mean %.0f frames/sample)\n",
           label, n_reads, (long long)n_samples, lat[n_reads / 2], lat[n_reads * 9 / 10],
           lat[n_reads * 99 / 100], lat[n_reads - 1], (double)frames / n_reads);
    free(lat);
    flm_index_close(&idx);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_random_access WORKDIR [GB] [N_READS]\n");
        return 2;
    }
    double gb = argc > 2 ? atof(argv[2]) : 10;
    int n = argc > 3 ? atoi(argv[3]) : 2000;
    char ds[4096];
    snprintf(ds, sizeof ds, "%s/ra", argv[1]);
    char ipath[4200];
    snprintf(ipath, sizeof ipath, "%s/index.sqlite", ds);
    struct stat st;
    if (stat(ipath, &st) != 0)
        build(ds, gb);
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "du -sh '%s' | cut -f1", ds);
    printf("dataset %s: ", ds);
    fflush(stdout);
    if (system(cmd) != 0)
        die("du");
    measure(ds, n, "warm page cache");
    if (system("sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null") == 0)
        measure(ds, n, "after drop_caches (cold)");
    else
        printf("cold: cannot drop the page cache here (not permitted); warm figure only\n");
    return 0;
}
