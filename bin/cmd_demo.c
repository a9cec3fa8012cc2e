/* flm demo: the temporary main job. Builds a synthetic dataset (random but well-formed packed
 * samples), writes shards + index, prints stats and one timeline. Resumable: shards whose samples
 * are all registered are skipped, so a killed run finishes where it stopped when run again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_index.h"
#include "flm_shard.h"
#include "flm_synth.h"
#include "timeline.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: flm demo [--out DIR] [--samples N] [--per-shard K] [--seed S] [--max-frames F]\n"
        "\n"
        "Builds a small synthetic dataset in DIR (default ./flm-demo): N random but well-formed\n"
        "packed samples (TTS and ASR style, uniform random codes, not real speech), K per\n"
        "shard, written as zstd shards and indexed in DIR/index.sqlite. Then prints the\n"
        "dataset's stats and one sample's timeline. Running it again resumes an interrupted\n"
        "run and does nothing for a finished one.\n"
        "\n"
        "defaults: --samples 64 --per-shard 16 --seed 1 --max-frames 8192 (samples are 600..F\n"
        "frames long, or F when F < 600)\n");
}

static int write_shard(flm_index *idx, int64_t run, const char *out, int64_t k, int64_t per,
                       int64_t n_samples, uint64_t seed, const flm_profiles *p,
                       const flm_synth_params *syn, flm_error *err)
{
    int64_t first = k * per, n = first + per <= n_samples ? per : n_samples - first;
    char rel[64], path[4096];
    snprintf(rel, sizeof rel, "%s/%06lld%s", FLM_SHARDS_DIR, (long long)k, FLM_SHARD_SUFFIX);
    snprintf(path, sizeof path, "%s/%s", out, rel);
    flm_sample **s = flm_calloc((size_t)n, sizeof *s);
    flm_record_info *info = flm_calloc((size_t)n, sizeof *info);
    const char **keys = flm_calloc((size_t)n, sizeof *keys);
    flm_shard_writer *w = NULL;
    flm_shard_params sp = flm_shard_default_params(p);
    int rc = s && info && keys ? 0 : flm_error_set(err, FLM_ENOMEM, "out of memory");
    if (rc == 0)
        rc = flm_shard_writer_create(&w, path, &sp, err);
    for (int64_t i = 0; i < n && rc == 0; i++) {
        char id[64];
        snprintf(id, sizeof id, "synthetic/%llu/%06lld", (unsigned long long)seed,
                 (long long)(first + i));
        if ((rc = flm_synth_sample(&s[i], p, syn, seed, id, err)) == 0)
            rc = flm_shard_writer_add(w, s[i], &info[i], err);
        keys[i] = s[i] ? s[i]->id : NULL;
    }
    if (rc == 0)
        rc = flm_shard_writer_finish(w, err);
    if (rc == 0) {
        struct stat st;
        stat(path, &st);
        rc = flm_index_add_shard(idx, run, rel, (uint64_t)st.st_size, (const flm_sample *const *)s,
                                 info, (size_t)n, keys, (size_t)n, err);
    }
    flm_shard_writer_destroy(&w);
    for (int64_t i = 0; s && i < n; i++)
        flm_sample_destroy(&s[i]);
    flm_free(s);
    flm_free(info);
    flm_free(keys);
    return rc;
}

int cmd_demo(int argc, char **argv)
{
    const char *out = "flm-demo", *v;
    int64_t n_samples = 64, per = 16, seed = 1, max_frames = 8192;
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if ((v = cli_opt(argc, argv, &i, "--out", &bad))) {
            out = v;
        } else if ((v = cli_opt(argc, argv, &i, "--samples", &bad))) {
            if (cli_parse_i64("--samples", v, 1, 100000000, &n_samples) < 0)
                return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--per-shard", &bad))) {
            if (cli_parse_i64("--per-shard", v, 1, 100000, &per) < 0)
                return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--max-frames", &bad))) {
            if (cli_parse_i64("--max-frames", v, 50, FLM_MAX_FRAMES, &max_frames) < 0)
                return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &bad))) {
            if (cli_parse_i64("--seed", v, 0, INT64_MAX, &seed) < 0)
                return 2;
        } else {
            if (!bad)
                cli_error("demo: unexpected argument '%s' (see flm demo --help)", argv[i]);
            return 2;
        }
    }
    char shards[4096];
    snprintf(shards, sizeof shards, "%s/%s", out, FLM_SHARDS_DIR);
    if ((mkdir(out, 0755) < 0 && errno != EEXIST) || (mkdir(shards, 0755) < 0 && errno != EEXIST)) {
        cli_error("demo: cannot create %s: %s", shards, strerror(errno));
        return 1;
    }
    flm_shard_remove_leftovers(shards);
    flm_profiles p;
    flm_profiles_default(&p);
    flm_error err = {0};
    flm_index *idx = NULL;
    if (flm_index_open(&idx, out, FLM_INDEX_CREATE, &err) < 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    char cmdline[512];
    snprintf(cmdline, sizeof cmdline,
             "flm demo --samples %lld --per-shard %lld --seed %lld --max-frames %lld",
             (long long)n_samples, (long long)per, (long long)seed, (long long)max_frames);
    flm_synth_params syn = flm_synth_default_params();
    syn.max_frames = (int32_t)max_frames;
    if (syn.min_frames > syn.max_frames)
        syn.min_frames = syn.max_frames;
    int64_t run = 0, n_shards = (n_samples + per - 1) / per, skipped = 0;
    int rc = flm_index_begin_run(idx, cmdline, NULL, seed, &p, &run, &err);
    cli_progress bar;
    cli_progress_start(&bar, "demo", "shards", n_shards);
    for (int64_t k = 0; k < n_shards && rc == 0; k++) {
        char last[64];
        int64_t lastn = (k + 1) * per < n_samples ? (k + 1) * per - 1 : n_samples - 1;
        snprintf(last, sizeof last, "synthetic/%lld/%06lld", (long long)seed, (long long)lastn);
        int st = flm_index_input_status(idx, last, &err);
        if (st == 1)
            skipped++;
        else if (st < 0)
            rc = st;
        else
            rc = write_shard(idx, run, out, k, per, n_samples, (uint64_t)seed, &p, &syn, &err);
        cli_progress_update(&bar, k + 1);
    }
    cli_progress_finish(&bar, n_shards);
    if (rc < 0) {
        cli_error("demo: %s", err.msg);
        flm_index_close(&idx);
        return 1;
    }
    printf("dataset %s: %lld samples in %lld shards (%lld already done)\n", out,
           (long long)n_samples, (long long)n_shards, (long long)skipped);
    printf("\n$ flm index stats %s\n", out);
    if (cli_print_stats(idx, 0) < 0)
        rc = -1;
    /* show the first TTS-style sample (text leads, speech on the speak channels) */
    char *path = NULL;
    uint64_t rec = 0;
    flm_shard_reader *r = NULL;
    flm_sample *s = NULL;
    int found = 0;
    for (int64_t i = 0; i < n_samples && !found && rc == 0; i++) {
        char id[64];
        snprintf(id, sizeof id, "synthetic/%lld/%06lld", (long long)seed, (long long)i);
        flm_free(path);
        flm_shard_reader_close(&r);
        flm_sample_destroy(&s);
        path = NULL;
        if (flm_index_locate(idx, id, &path, &rec, &err) < 0 ||
            flm_shard_reader_open(&r, path, &err) < 0 ||
            flm_shard_reader_read(r, rec, &s, &err) < 0)
            rc = -1;
        else
            found = !strcmp(s->style, "tts") || i == n_samples - 1;
    }
    if (found) {
        printf("\n$ flm inspect %s:%llu\n", path, (unsigned long long)rec);
        timeline_opts o = {0, 12, 0, 100};
        while (o.from < s->n_frames && FLM_TOK(s, FLM_CH_TEXT, o.from) == p.vocab.text_wait)
            o.from++; /* start the window just before the first sentence */
        o.from = o.from > 0 ? o.from - 1 : 0;
        timeline_print(stdout, s, &p, &o);
    } else {
        cli_error("demo: %s", err.msg);
        rc = -1;
    }
    flm_sample_destroy(&s);
    flm_shard_reader_close(&r);
    flm_free(path);
    flm_index_close(&idx);
    return rc < 0;
}
