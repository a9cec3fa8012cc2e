/* Dataset reader and epochs at the C level (the Python suite covers the same contract from
 * Python; this one also runs under the sanitizers): partition over ranks, weights, resume
 * offsets, reads, errors and allocation failures. */
#include <sys/stat.h>

#include "flm_alloc.h"
#include "flm_dataset.h"
#include "flm_index.h"
#include "flm_synth.h"
#include "tap.h"
#include "test_util.h"

static void build(const char *dir, int n_shards, int per)
{
    flm_profiles p;
    flm_profiles_default(&p);
    flm_index *idx = NULL;
    flm_error err = {0};
    if (flm_index_open(&idx, dir, FLM_INDEX_CREATE, &err) < 0)
        abort();
    int64_t run;
    flm_index_begin_run(idx, "test_dataset", NULL, 1, &p, &run, &err);
    flm_synth_params sp = flm_synth_default_params();
    sp.min_frames = sp.max_frames = 20;
    flm_shard_params shp = flm_shard_default_params(&p);
    for (int k = 0; k < n_shards; k++) {
        char rel[64], path[1200];
        snprintf(rel, sizeof rel, "shards/%06d.flms", k);
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        flm_shard_writer *w = NULL;
        flm_shard_writer_create(&w, path, &shp, &err);
        flm_sample *s[64];
        flm_record_info info[64];
        for (int i = 0; i < per; i++) {
            char id[64];
            snprintf(id, sizeof id, "d/%d/%d", k, i);
            flm_synth_sample(&s[i], &p, &sp, 3, id, &err);
            flm_sample_set_corpus(s[i], i % 3 ? "big" : "small");
            flm_shard_writer_add(w, s[i], &info[i], &err);
        }
        flm_shard_writer_finish(w, &err);
        struct stat st;
        stat(path, &st);
        flm_index_add_shard(idx, run, rel, (uint64_t)st.st_size, (const flm_sample *const *)s, info,
                            (size_t)per, NULL, NULL, 0, &err);
        flm_shard_writer_destroy(&w);
        for (int i = 0; i < per; i++)
            flm_sample_destroy(&s[i]);
    }
    flm_index_close(&idx);
}

int main(void)
{
    char dir[1024];
    temp_dir(dir, sizeof dir, "test_dataset");
    build(dir, 20, 25); /* 500 samples, 20 shards: more than the reader's cache of 16 */
    flm_error err = {0};
    flm_dataset *ds = NULL;
    TAP_EQ_INT(flm_dataset_open(&ds, dir, &err), 0, "open");
    TAP_EQ_INT(flm_dataset_count(ds), 500, "500 samples");
    int ok = 1;
    for (int64_t i = 499; i >= 0; i -= 7) { /* jumps across shards: cache eviction */
        flm_record_view v;
        char want[64];
        snprintf(want, sizeof want, "d/%lld/%lld", (long long)(i / 25), (long long)(i % 25));
        ok &= flm_dataset_read(ds, i, &v, &err) == 0 && strcmp(v.id, want) == 0;
    }
    TAP_OK(ok, "random reads across 20 shards return the right samples");
    TAP_EQ_STR(flm_dataset_corpus(ds, 3), "small", "corpus of a sample");
    flm_record_view v;
    TAP_EQ_INT(flm_dataset_read(ds, 500, &v, &err), FLM_ERANGE, "out of range");

    /* ranks partition the epoch */
    flm_epoch_params ep = flm_epoch_default_params();
    ep.seed = 9;
    int part_ok = 1;
    for (int world = 1; world <= 8; world++) {
        uint8_t *hit = calloc(500, 1);
        int64_t total = 0;
        for (int r = 0; r < world; r++) {
            ep.world = world;
            ep.rank = r;
            flm_epoch *e = NULL;
            part_ok &= flm_epoch_create(&e, ds, &ep, &err) == 0;
            for (int64_t k = 0; k < flm_epoch_size(e); k++) {
                int64_t pos = flm_epoch_position(e, k);
                part_ok &= pos % world == r && !hit[pos];
                hit[pos] = 1;
                total++;
            }
            flm_epoch_destroy(&e);
        }
        part_ok &= total == 500 - 500 % world;
        free(hit);
    }
    TAP_OK(part_ok, "for world 1..8 the ranks cover the epoch without overlap");

    /* weights: small corpus (9 of every 25 samples: 180) x3, big x0 */
    const char *names[] = {"small", "big"};
    double w[] = {3.0, 0.0};
    ep = flm_epoch_default_params();
    ep.corpora = names;
    ep.weights = w;
    ep.n_weights = 2;
    flm_epoch *e = NULL;
    TAP_EQ_INT(flm_epoch_create(&e, ds, &ep, &err), 0, "weighted epoch");
    TAP_EQ_INT(flm_epoch_global_size(e), 3 * 180, "integer weights give exact copies");
    int all_small = 1;
    for (int64_t k = 0; k < flm_epoch_size(e); k++)
        all_small &= strcmp(flm_dataset_corpus(ds, flm_epoch_sample(e, k)), "small") == 0;
    TAP_OK(all_small, "weight 0 removes a corpus");
    flm_epoch_destroy(&e);
    w[0] = -1;
    TAP_EQ_INT(flm_epoch_create(&e, ds, &ep, &err), FLM_EINVAL, "negative weight rejected");
    TAP_CONTAINS(err.msg, "\"small\"", "naming the corpus");

    /* resume: start offset with another world continues the same order */
    ep = flm_epoch_default_params();
    ep.seed = 4;
    flm_epoch *full = NULL, *part = NULL;
    flm_epoch_create(&full, ds, &ep, &err);
    ep.start = 123;
    ep.world = 3;
    ep.rank = 2;
    flm_epoch_create(&part, ds, &ep, &err);
    int same = flm_epoch_size(part) == (500 - 123) / 3;
    for (int64_t k = 0; k < flm_epoch_size(part); k++)
        same &= flm_epoch_sample(part, k) == flm_epoch_sample(full, 123 + 2 + 3 * k);
    TAP_OK(same, "a resumed epoch with another world continues the global order");
    flm_epoch_destroy(&full);
    flm_epoch_destroy(&part);
    ep.rank = 3;
    TAP_EQ_INT(flm_epoch_create(&e, ds, &ep, &err), FLM_EINVAL, "rank >= world rejected");

    /* allocation failures in open and epoch creation */
    int bad = 0;
    for (int k = 0; k < 400; k += 3) {
        flm_dataset *d2 = NULL;
        flm_epoch *e2 = NULL;
        flm_alloc_fail_after(k);
        int rc = flm_dataset_open(&d2, dir, &err);
        if (rc == 0)
            rc = flm_epoch_create(&e2, d2, &ep, &err);
        flm_alloc_fail_after(-1);
        if (rc < 0 && rc != FLM_ENOMEM && rc != FLM_EDB && rc != FLM_EINVAL)
            bad++;
        flm_epoch_destroy(&e2);
        flm_dataset_close(&d2);
    }
    TAP_EQ_INT(bad, 0, "injected allocation failures end in clean errors");
    flm_dataset_close(&ds);

    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm %s/shards/000007.flms", dir);
    TAP_EQ_INT(system(cmd), 0, "delete a shard");
    flm_dataset_open(&ds, dir, &err);
    TAP_EQ_INT(flm_dataset_read(ds, 7 * 25 + 1, &v, &err), FLM_ENOTFOUND, "reading from it fails");
    TAP_CONTAINS(err.msg, "000007.flms", "naming the shard");
    flm_dataset_close(&ds);

    /* a damaged catalog (found by fuzz_index_rows): shard ids far out of range used to size a
     * table (gigabytes) or index it out of bounds; a sample naming no shard read shard 0 */
    static const char *const damage[] = {"UPDATE shards SET id = 9000000000000 WHERE id = 3",
                                         "UPDATE samples SET shard_id = -5 WHERE id = 10",
                                         "UPDATE samples SET n_frames = -1 WHERE id = 11",
                                         "UPDATE samples SET record = 99999999999 WHERE id = 12"};
    static const char *const want[] = {"no such shard", "no such shard", "out of range",
                                       "out of range"};
    for (int k = 0; k < 4; k++) {
        char db[1100], sql[1400];
        snprintf(db, sizeof db, "%s/index.sqlite", dir);
        snprintf(sql, sizeof sql, "cp %s %s.bak && sqlite3 %s '%s'", db, db, db, damage[k]);
        TAP_EQ_INT(system(sql), 0, damage[k]);
        TAP_EQ_INT(flm_dataset_open(&ds, dir, &err), FLM_ECORRUPT, "the reader refuses it");
        TAP_CONTAINS(err.msg, want[k], "naming the sample and what is wrong");
        flm_dataset_close(&ds);
        snprintf(sql, sizeof sql, "mv %s.bak %s", db, db);
        TAP_EQ_INT(system(sql), 0, "restore the index");
    }
    return tap_done();
}
