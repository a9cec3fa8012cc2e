/* The dataset writer (include/flm_dataset_writer.h): shards named from the first free number,
 * each registered with the inputs it completes, a flush without samples marking inputs only,
 * close without flush leaving nothing (no file, no row), every sample read back equal, and a
 * writer-thread failure reported by add or flush. */
#include <dirent.h>
#include <sys/stat.h>

#include "flm_alloc.h"
#include "flm_dataset.h"
#include "flm_dataset_writer.h"
#include "flm_index.h"
#include "flm_synth.h"
#include "tap.h"
#include "test_util.h"

static flm_profiles P;

static void first_int(void *user, int n_cols, const char *const *names, const char *const *values)
{
    (void)names;
    if (n_cols > 0 && values[0])
        *(int64_t *)user = atoll(values[0]);
}

/* The first column of the first row of a query, as an integer (-1 when none). */
static int64_t count(flm_index *idx, const char *sql)
{
    int64_t n = -1;
    flm_error err = {0};
    if (flm_index_query(idx, sql, first_int, &n, &err) < 0)
        tap_diag("%s", err.msg);
    return n;
}

static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

int main(void)
{
    flm_profiles_default(&P);
    char dir[1024], shards[1100];
    temp_dir(dir, sizeof dir, "dataset_writer");
    snprintf(shards, sizeof shards, "%s/shards", dir);
    mkdir(shards, 0755);
    flm_error err = {0};
    flm_index *idx = NULL;
    int64_t run = 0;
    TAP_EQ_INT(flm_index_open(&idx, dir, FLM_INDEX_CREATE, &err), 0, "index");
    TAP_EQ_INT(flm_index_begin_run(idx, "test", NULL, 1, &P, &run, &err), 0, "run");
    flm_shard_params sp = flm_shard_default_params(&P);
    flm_synth_params syn = flm_synth_default_params();
    syn.min_frames = 20;
    syn.max_frames = 200;
    flm_dataset_writer *w = NULL;
    TAP_EQ_INT(flm_dataset_writer_open(&w, dir, idx, run, &sp, &err), 0, "open");
    /* two shards of 5 samples, each sample its own input; then an input with no sample */
    char id[64];
    for (int k = 0; k < 10; k++) {
        flm_sample *s = NULL;
        snprintf(id, sizeof id, "w/%d", k);
        flm_synth_sample(&s, &P, &syn, 3, id, &err);
        TAP_OK(flm_dataset_writer_add(w, s, &err) == 0 &&
                   flm_dataset_writer_complete(w, id, "/data/in.jsonl", &err) == 0,
               "add %s", id);
        TAP_OK(flm_dataset_writer_has(w, id), "the open shard has %s", id);
        if (k % 5 == 4) {
            TAP_EQ_INT(flm_dataset_writer_pending(w), 5, "five pending");
            TAP_EQ_INT(flm_dataset_writer_flush(w, &err), 0, "flush");
            TAP_OK(!flm_dataset_writer_has(w, id), "flushed: no longer pending");
        }
    }
    TAP_EQ_INT(flm_dataset_writer_complete(w, "no-sample", NULL, &err), 0, "an input alone");
    TAP_EQ_INT(flm_dataset_writer_flush(w, &err), 0, "flush without samples");
    flm_dataset_writer_stats st = flm_dataset_writer_get_stats(w);
    TAP_OK(st.shards == 2 && st.samples == 10, "stats: 2 shards, 10 samples");
    /* a shard left open at close: dropped */
    flm_sample *s = NULL;
    flm_synth_sample(&s, &P, &syn, 3, "w/lost", &err);
    flm_dataset_writer_add(w, s, &err);
    flm_dataset_writer_complete(w, "w/lost", NULL, &err);
    flm_dataset_writer_close(&w);
    TAP_OK(w == NULL, "closed");
    TAP_EQ_INT(count(idx, "SELECT count(*) FROM shards"), 2, "two shards in the index");
    TAP_EQ_INT(count(idx, "SELECT count(*) FROM shards WHERE path IN ('shards/000000.flms', "
                          "'shards/000001.flms')"),
               2, "named 000000, 000001");
    TAP_EQ_INT(count(idx, "SELECT count(*) FROM samples"), 10, "ten samples");
    TAP_EQ_INT(flm_index_input_status(idx, "w/7", &err), 1, "an input done with its shard");
    TAP_EQ_INT(flm_index_input_status(idx, "no-sample", &err), 1, "the input without samples");
    TAP_EQ_INT(flm_index_input_status(idx, "w/lost", &err), 0,
               "the dropped shard's input: not done");
    TAP_EQ_INT(files_in(shards), 2, "no file of the dropped shard (nor a temporary one)");
    TAP_EQ_INT(count(idx, "SELECT n_samples FROM runs"), 10, "the run counts 10 samples");
    /* every sample reads back equal to the one synthesized */
    flm_index_close(&idx);
    flm_dataset *ds = NULL;
    TAP_EQ_INT(flm_dataset_open(&ds, dir, &err), 0, "read it as a dataset");
    int same = ds && flm_dataset_count(ds) == 10;
    for (int64_t i = 0; same && i < 10; i++) {
        flm_record_view v;
        flm_sample *a = NULL, *b = NULL;
        same = flm_dataset_read(ds, i, &v, &err) == 0 && flm_record_to_sample(&v, &a, &err) == 0;
        if (same) {
            flm_synth_sample(&b, &P, &syn, 3, a->id, &err);
            same = a->n_frames == b->n_frames &&
                   !memcmp(a->tokens, b->tokens,
                           sizeof(int32_t) * FLM_N_CHANNELS * (size_t)a->n_frames);
        }
        flm_sample_destroy(&a), flm_sample_destroy(&b);
    }
    TAP_OK(same, "every sample reads back as written");
    flm_dataset_close(&ds);
    /* a second writer on the same dataset continues the numbering; a shard that cannot be
     * created (its directory gone) fails add with the reason */
    TAP_EQ_INT(flm_index_open(&idx, dir, 0, &err), 0, "reopen");
    TAP_EQ_INT(flm_dataset_writer_open(&w, dir, idx, run, &sp, &err), 0, "second writer");
    char moved[1200];
    snprintf(moved, sizeof moved, "%s.moved", shards);
    rename(shards, moved);
    s = NULL;
    flm_synth_sample(&s, &P, &syn, 3, "w/x", &err);
    TAP_OK(flm_dataset_writer_add(w, s, &err) < 0, "add into a missing shards/ fails");
    TAP_CONTAINS(err.msg, "000002.flms", "naming the shard it would have written");
    rename(moved, shards);
    flm_dataset_writer_close(&w);
    flm_index_close(&idx);
    return tap_done();
}
