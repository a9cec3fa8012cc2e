/* flm pack: the post-training pipeline (DESIGN 3.1, 3.2, 6, 7, 9; docs/pack.md).
 *
 *   sentences JSONL (flm align's output, optionally with precomputed codes)
 *     -> groups of consecutive lines (the unit of work, resume and rank split)
 *     -> per utterance: codes (.npy, or FFmpeg decode + Mimi encode), Qwen tokens per sentence
 *     -> per group: pairs bucketed by (corpus, language), packed TTS or ASR style (drawn per
 *        sample with the recipe's proportion from the keyed generator)
 *     -> shards (closed at group boundaries) + index (a shard, its samples and the groups it
 *        completes in one transaction).
 *
 * Groups depend only on the manifests (never on the number of ranks or on what failed), and
 * every random draw is keyed by (seed, sample id, purpose), so any split of the groups across
 * ranks gives the same samples. A broken utterance is quarantined (key pack:FILE:LINE) and its
 * group goes on without it. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flm_config.h"
#ifdef FLM_HAVE_MPI
#include <mpi.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "codes.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_augment.h"
#include "flm_dialog.h"
#include "flm_index.h"
#include "flm_mimi.h"
#include "flm_npy.h"
#include "flm_pack.h"
#include "flm_pack_input.h"
#include "flm_recipe.h"
#include "flm_rng.h"
#include "flm_safetensors.h"
#include "flm_shard.h"
#include "flm_tokenizer.h"
#include "flm_util.h"
#include <xxhash.h>

/* A group holds consecutive lines of one manifest with at least this many samples' worth of
 * speech frames (the last group of a file may hold less), so the partly filled last sample of
 * each group wastes little. */
#define GROUP_SAMPLES 8
/* Dialog manifests: a group is this many lines (one dialog is one sample). */
#define GROUP_DIALOGS 16

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: flm pack --recipe R.json --out DATASET --tokenizer tokenizer.json [options]\n"
        "                MANIFEST.jsonl...\n"
        "\n"
        "Post-training recipes (formats tts/asr): packs sentence-aligned utterances (the output\n"
        "of flm align; a line may name precomputed codes, \"codes\": \"x.npy\") into TTS- and\n"
        "ASR-style samples (docs/pack.md). Fine-tuning recipes (arrt/rtts/rtts-free): renders\n"
        "each dialog of a dialog manifest into two tracks with simulated interruptions,\n"
        "augments the listen track and packs one sample per dialog (docs/dialogs.md).\n"
        "Audio is decoded by FFmpeg and encoded with Mimi; shards are indexed in\n"
        "DATASET/index.sqlite. Running the same command again resumes a stopped job (finished\n"
        "work is not redone, the result is identical); more manifests can be added later.\n"
        "Broken inputs are quarantined with the reason (flm index quarantine DATASET) and the\n"
        "job goes on.\n"
        "\n"
        "  --recipe FILE        stage recipe (schemas/recipes/post-training-1.json, ...)\n"
        "  --out DIR            dataset directory (created)\n"
        "  --tokenizer FILE     Qwen2.5 tokenizer.json (default: $FLM_TOKENIZER)\n"
        "  --codec FILE         Mimi checkpoint (tokenizer-e351c8d8-checkpoint125.safetensors);\n"
        "                       without it a seeded RANDOM Mimi is used (pipeline tests only)\n"
        "  --noise DIR|LIST     dialogs: noise clips for the listen-track augmentation (a\n"
        "                       directory, or a text file of paths)\n"
        "  --silence-codes LIST the codec's 8 codes for a silent frame, comma-separated (default:\n"
        "                       computed with the codec)\n"
        "  --per-shard N        samples per shard, at least (default 256; shards end at groups)\n"
        "  --rank I --world N   process the I-th of N parts (Slurm arrays); each part writes\n"
        "                       DIR/part-I-of-N; merge them with flm index merge when all are "
        "done.\n"
        "                       Under mpirun the rank and world come from MPI and rank 0 merges.\n"
        "  --retry-quarantined  also retry the inputs quarantined by earlier runs\n"
        "  --threads N          codec threads (default: all cores)\n");
}

typedef struct group {
    int32_t file;       /* manifest index */
    int64_t first_line; /* 1-based */
    int64_t n_lines;    /* lines in the group (blank ones included) */
    int64_t offset;     /* byte offset of the first line */
    int64_t frames;     /* speech frames of its sentences (progress) */
    uint64_t hash;      /* XXH3-64 of its bytes: keys stay unique across same-named files */
    const char *retry;  /* quarantined input key when this is a retry of one line */
    int64_t retry_line;
} group;

typedef struct pair_buf {
    flm_pack_pair pair;
    int32_t utt; /* index into the group's utterances */
    int32_t sent;
    int32_t bucket;
} pair_buf;

typedef struct job {
    const char *out, *dir, *codec_path;
    char **manifests;
    char **file_names; /* per manifest: "DIR/NAME", its identity in group keys (see docs) */
    int n_manifests;
    flm_recipe recipe;
    int dialogs;           /* the recipe packs dialogs (ARRT/RTTS/RTTS-free), not sentences */
    flm_dialog_params dp;  /* dialogs: timeline settings from the recipe */
    flm_augment_params ap; /* dialogs: listen-track augmentation from the recipe */
    flm_augment_noise_pool *pool; /* dialogs: --noise clips (NULL: no noise) */
    flm_profiles prof;
    flm_tokenizer *tok;
    flm_token_buf tb;
    flm_mimi *mimi;
    flm_mimi_stream *stream;
    int32_t silence[FLM_N_CODEBOOKS];
    int have_silence;
    int rank, world, per_shard, retry, mpi;
    flm_index *idx;
    int64_t run;
    /* the shard being written */
    flm_shard_writer *w;
    char rel[64], path[4096];
    int64_t next_shard;
    flm_sample **samples;
    flm_record_info *infos;
    size_t n_samples, cap_samples, cap_infos;
    /* the writer thread compresses and appends samples [n_written, n_samples) of the open shard
     * while the main thread packs the next ones; the arrays change only under mu */
    pthread_t writer;
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    size_t n_written;
    int stop, writer_rc, writer_on;
    flm_error writer_err;
    char **done;
    size_t n_done, cap_done;
    /* totals */
    int64_t groups_todo, groups_skipped, utts, quarantined, n_out, n_tts, sentences, shards;
    int64_t n_interrupted; /* dialogs: samples with at least one interruption */
    int64_t speech_frames, progress;
    int64_t q_by_stage[7];
    double t_decode, t_encode, t_read, t_tokenize, t_pack, t_write, t_compress, t_augment;
    cli_progress bar;
} job;

static const char *const stages[] = {"parse",    "audio", "codes",  "frames",
                                     "tokenize", "pack",  "augment"};
enum { ST_PARSE, ST_AUDIO, ST_CODES, ST_FRAMES, ST_TOKENIZE, ST_PACK, ST_AUGMENT, N_STAGES };

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int quarantine(job *J, const char *key, const char *path, int stage, const char *msg)
{
    flm_error err = {0};
    J->quarantined++;
    J->q_by_stage[stage]++;
    if (flm_index_quarantine(J->idx, J->run, key, path, stages[stage], msg, &err) < 0) {
        cli_error("pack: %s", err.msg);
        return -1;
    }
    return 0;
}

/* ---- the codec (loaded only when needed) ------------------------------------------------ */

static int load_codec(job *J, flm_error *err)
{
    if (J->mimi)
        return 0;
    flm_mimi_params mp = flm_mimi_default_params();
    mp.n_q = FLM_N_CODEBOOKS;
    int rc;
    if (J->codec_path) {
        rc = flm_mimi_load(&J->mimi, J->codec_path, &mp, err);
    } else {
        if (J->rank == 0)
            fprintf(
                stderr,
                "flm pack: WARNING: no --codec given: encoding with a RANDOM Mimi (seed %llu).\n"
                "flm pack: WARNING: these codes are not speech tokens; use them to test the\n"
                "flm pack: WARNING: pipeline only. Real data needs --codec MIMI.safetensors.\n",
                (unsigned long long)J->recipe.seed);
        flm_mimi_config cfg;
        uint8_t *buf = NULL;
        size_t size = 0;
        flm_safetensors *st = NULL;
        rc = flm_mimi_config_preset("full", &cfg, err);
        if (rc == 0)
            rc = flm_mimi_random_checkpoint(&cfg, J->recipe.seed, &buf, &size, err);
        if (rc == 0)
            rc = flm_safetensors_open_memory(&st, buf, size, "random-mimi", err);
        if (rc == 0)
            rc = flm_mimi_load_from(&J->mimi, st, &mp, err);
        flm_safetensors_close(&st);
        flm_free(buf);
    }
    if (rc == 0)
        rc = flm_mimi_stream_create(&J->stream, J->mimi, FLM_MIMI_ENCODE, CODES_STEP, err);
    return rc;
}

static int ensure_silence(job *J, flm_error *err)
{
    if (J->have_silence)
        return 0;
    int rc = load_codec(J, err);
    if (rc == 0)
        rc = codes_silence(J->mimi, FLM_N_CODEBOOKS, J->silence, err);
    J->have_silence = rc == 0;
    return rc;
}

/* ---- manifests -> groups ------------------------------------------------------------------ */

/* Sum of "end_frame" minus sum of "start_frame" values in a line, without parsing the JSON
 * (the scan reads every line of a possibly huge manifest; the groups only need this estimate,
 * which like them depends on the bytes alone). Keys inside strings are escaped (\"), so they
 * are not counted. */
static int64_t line_frames(const char *line, size_t len)
{
    int64_t sum = 0;
    for (const char *p = line, *end = line + len; (p = memmem(p, (size_t)(end - p), "_frame\"", 7));
         p += 7) {
        int sign = p - line >= 6 && !memcmp(p - 4, "\"end", 4)     ? 1
                   : p - line >= 6 && !memcmp(p - 6, "\"start", 6) ? -1
                                                                   : 0;
        const char *q = p + 7;
        while (q < end && (*q == ' ' || *q == ':'))
            q++;
        int64_t v = 0;
        while (q < end && *q >= '0' && *q <= '9' && v < INT32_MAX)
            v = v * 10 + (*q++ - '0');
        sum += sign * v;
    }
    return sum > 0 ? sum : 0;
}

/* "DIR/NAME" of a manifest: the last two components of its real path. */
static char *file_name(const char *path)
{
    char *real = realpath(path, NULL), *out = NULL;
    if (!real)
        return flm_strdup(base_name(path));
    char *slash = strrchr(real, '/'), *start = real;
    if (slash && slash > real) {
        *slash = 0;
        char *prev = strrchr(real, '/');
        *slash = '/';
        start = prev ? prev + 1 : real;
    }
    out = flm_strdup(start[0] == '/' ? start + 1 : start);
    free(real);
    return out;
}

static void free_names(job *J)
{
    for (int i = 0; J->file_names && i < J->n_manifests; i++)
        flm_free(J->file_names[i]);
    flm_free(J->file_names);
    flm_free(J->manifests);
}

static int scan_manifests(job *J, group **out, size_t *n_out)
{
    group *g = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    XXH3_state_t *xs = XXH3_createState();
    int rc = xs ? 0 : -1;
    for (int fi = 0; fi < J->n_manifests && rc == 0; fi++) {
        FILE *f = fopen(J->manifests[fi], "r");
        if (f && !(J->file_names[fi] = file_name(J->manifests[fi]))) {
            fclose(f);
            cli_error("pack: out of memory");
            rc = -1;
            break;
        }
        if (!f) {
            cli_error("pack: %s: %s", J->manifests[fi], strerror(errno));
            rc = -1;
            break;
        }
        int64_t line_no = 0, offset = 0;
        ssize_t len;
        int open_group = 0;
        while ((len = getline(&line, &lcap, f)) >= 0) {
            line_no++;
            if (!open_group) {
                if (flm_grow((void **)&g, &cap, n + 1, sizeof *g) < 0) {
                    cli_error("pack: out of memory");
                    rc = -1;
                    break;
                }
                g[n] = (group){fi, line_no, 0, offset, 0, 0, NULL, 0};
                open_group = 1;
                XXH3_64bits_reset(xs);
            }
            XXH3_64bits_update(xs, line, (size_t)len);
            g[n].n_lines++;
            offset += len;
            g[n].frames += J->dialogs ? 1 : line_frames(line, (size_t)len); /* dialogs: lines */
            if (J->dialogs ? g[n].n_lines >= GROUP_DIALOGS
                           : g[n].frames >= (int64_t)GROUP_SAMPLES * J->recipe.sample_frames) {
                g[n++].hash = XXH3_64bits_digest(xs);
                open_group = 0;
            }
        }
        if (open_group)
            g[n++].hash = XXH3_64bits_digest(xs);
        if (ferror(f)) {
            cli_error("pack: %s: read error: %s", J->manifests[fi], strerror(errno));
            rc = -1;
        }
        fclose(f);
    }
    free(line);
    XXH3_freeState(xs);
    *out = g;
    *n_out = n;
    return rc;
}

static void group_key(const job *J, const group *g, char *buf, size_t size)
{
    if (g->retry)
        snprintf(buf, size, "%s", g->retry);
    else
        snprintf(buf, size, "pack:%s:%lld+%lld:%016llx", J->file_names[g->file],
                 (long long)g->first_line, (long long)g->n_lines, (unsigned long long)g->hash);
}

/* ---- shards ------------------------------------------------------------------------------- */

static void count_row(void *user, int n_cols, const char *const *names, const char *const *values)
{
    (void)n_cols, (void)names;
    *(int64_t *)user = values[0] ? atoll(values[0]) : 0;
}

/* First shard number whose name is free in the index. */
static int find_next_shard(job *J, flm_error *err)
{
    int64_t n = 0;
    int rc = flm_index_query(J->idx, "SELECT count(*) FROM shards", count_row, &n, err);
    for (; rc == 0; n++) {
        char sql[128];
        int64_t taken = 0;
        snprintf(sql, sizeof sql, "SELECT count(*) FROM shards WHERE path = '%s/%06lld%s'",
                 FLM_SHARDS_DIR, (long long)n, FLM_SHARD_SUFFIX);
        if ((rc = flm_index_query(J->idx, sql, count_row, &taken, err)) < 0 || !taken)
            break;
    }
    J->next_shard = n;
    return rc;
}

static void *writer_main(void *arg)
{
    job *J = arg;
    pthread_mutex_lock(&J->mu);
    for (;;) {
        while (!J->stop && (J->n_written == J->n_samples || J->writer_rc < 0))
            pthread_cond_wait(&J->work, &J->mu);
        if (J->n_written == J->n_samples || J->writer_rc < 0)
            break; /* stop, and nothing (more) to do */
        size_t k = J->n_written;
        flm_sample *smp = J->samples[k];
        flm_shard_writer *w = J->w;
        pthread_mutex_unlock(&J->mu);
        flm_record_info info;
        flm_error err = {0};
        double t0 = flm_now();
        int rc = flm_shard_writer_add(w, smp, &info, &err);
        double dt = flm_now() - t0;
        pthread_mutex_lock(&J->mu);
        J->t_compress += dt;
        if (rc < 0) {
            J->writer_rc = rc;
            J->writer_err = err;
        } else {
            J->infos[k] = info;
            J->n_written = k + 1;
        }
        pthread_cond_broadcast(&J->idle);
    }
    pthread_mutex_unlock(&J->mu);
    return NULL;
}

static int writer_start(job *J, flm_error *err)
{
    pthread_mutex_init(&J->mu, NULL);
    pthread_cond_init(&J->work, NULL);
    pthread_cond_init(&J->idle, NULL);
    int e = pthread_create(&J->writer, NULL, writer_main, J);
    if (e)
        return flm_error_set(err, FLM_ENOMEM, "cannot start the writer thread: %s", strerror(e));
    J->writer_on = 1;
    return 0;
}

static void writer_stop(job *J)
{
    if (!J->writer_on)
        return;
    pthread_mutex_lock(&J->mu);
    J->stop = 1;
    pthread_cond_broadcast(&J->work);
    pthread_mutex_unlock(&J->mu);
    pthread_join(J->writer, NULL);
    pthread_mutex_destroy(&J->mu);
    pthread_cond_destroy(&J->work);
    pthread_cond_destroy(&J->idle);
    J->writer_on = 0;
}

/* Waits until the writer has appended every sample; returns its error, if any. */
static int writer_drain(job *J, flm_error *err)
{
    pthread_mutex_lock(&J->mu);
    while (J->writer_rc == 0 && J->n_written < J->n_samples)
        pthread_cond_wait(&J->idle, &J->mu);
    int rc = J->writer_rc;
    if (rc < 0)
        *err = J->writer_err;
    pthread_mutex_unlock(&J->mu);
    return rc;
}

/* Registers the open shard (or, without samples, just the done keys). */
static int flush_shard(job *J, flm_error *err)
{
    int rc = 0;
    if (J->n_samples == 0 && J->n_done == 0)
        return 0;
    if ((rc = writer_drain(J, err)) < 0)
        return rc;
    double t0 = flm_now();
    if (J->n_samples > 0) {
        struct stat st;
        if ((rc = flm_shard_writer_finish(J->w, err)) < 0)
            return rc;
        if (stat(J->path, &st) < 0)
            return flm_error_set(err, FLM_EIO, "%s: %s", J->path, strerror(errno));
        rc = flm_index_add_shard(J->idx, J->run, J->rel, (uint64_t)st.st_size,
                                 (const flm_sample *const *)J->samples, J->infos, J->n_samples,
                                 (const char *const *)J->done, J->n_done, err);
        J->shards++;
        J->next_shard++;
    } else {
        rc = flm_index_add_shard(J->idx, J->run, NULL, 0, NULL, NULL, 0,
                                 (const char *const *)J->done, J->n_done, err);
    }
    flm_shard_writer_destroy(&J->w);
    for (size_t i = 0; i < J->n_samples; i++)
        flm_sample_destroy(&J->samples[i]);
    for (size_t i = 0; i < J->n_done; i++)
        flm_free(J->done[i]);
    J->n_samples = J->n_done = J->n_written = 0;
    J->t_write += flm_now() - t0;
    return rc;
}

/* Hands a packed sample to the writer thread (the shard keeps it until flush_shard). */
static int add_sample(job *J, flm_sample *s, flm_error *err)
{
    int rc = 0;
    if (!J->w) {
        snprintf(J->rel, sizeof J->rel, "%s/%06lld%s", FLM_SHARDS_DIR, (long long)J->next_shard,
                 FLM_SHARD_SUFFIX);
        snprintf(J->path, sizeof J->path, "%s/%s", J->dir, J->rel);
        flm_shard_params sp = flm_shard_default_params(&J->prof);
        if ((rc = flm_shard_writer_create(&J->w, J->path, &sp, err)) < 0) {
            flm_sample_destroy(&s);
            return rc;
        }
    }
    J->n_out++;
    J->n_tts += !strcmp(s->style, "tts");
    const flm_meta *m = flm_sample_meta_get(s, "pack.speech_frames");
    J->speech_frames += J->dialogs ? s->n_frames : m ? m->i : 0;
    m = flm_sample_meta_get(s, "dialog.interrupts");
    J->n_interrupted += m && m->i > 0;
    pthread_mutex_lock(&J->mu);
    if ((rc = J->writer_rc) < 0) {
        *err = J->writer_err;
    } else if (flm_grow((void **)&J->samples, &J->cap_samples, J->n_samples + 1,
                        sizeof *J->samples) < 0 ||
               flm_grow((void **)&J->infos, &J->cap_infos, J->n_samples + 1, sizeof *J->infos) <
                   0) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
    } else {
        J->samples[J->n_samples++] = s;
        s = NULL;
        pthread_cond_signal(&J->work);
    }
    pthread_mutex_unlock(&J->mu);
    flm_sample_destroy(&s);
    return rc;
}

static int add_done(job *J, const char *key, flm_error *err)
{
    char *k = flm_strdup(key);
    if (!k || flm_grow((void **)&J->done, &J->cap_done, J->n_done + 1, sizeof *J->done) < 0) {
        flm_free(k);
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    }
    J->done[J->n_done++] = k;
    return 0;
}

/* ---- one group ---------------------------------------------------------------------------- */

typedef struct utt_buf {
    flm_pack_utt u;
    int32_t *codes; /* [8][n_frames] */
    int64_t n_frames;
    int64_t line;
} utt_buf;

typedef struct group_state {
    utt_buf *utts;
    size_t n_utts, cap_utts;
    pair_buf *pairs;
    size_t n_pairs, cap_pairs;
    char **bucket_corpus, **bucket_lang;
    size_t n_buckets, cap_buckets, cap_blang;
} group_state;

static void group_state_free(group_state *G)
{
    for (size_t i = 0; i < G->n_utts; i++) {
        flm_pack_utt_free(&G->utts[i].u);
        flm_free(G->utts[i].codes);
    }
    for (size_t i = 0; i < G->n_pairs; i++) {
        flm_free((void *)G->pairs[i].pair.text);
        flm_free((void *)G->pairs[i].pair.id);
        flm_free((void *)G->pairs[i].pair.codes);
    }
    flm_free(G->utts);
    flm_free(G->pairs);
    flm_free(G->bucket_corpus);
    flm_free(G->bucket_lang);
    memset(G, 0, sizeof *G);
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static int bucket_of(group_state *G, const flm_pack_utt *u)
{
    for (size_t b = 0; b < G->n_buckets; b++)
        if (same(G->bucket_corpus[b], u->corpus) && same(G->bucket_lang[b], u->language))
            return (int)b;
    if (flm_grow((void **)&G->bucket_corpus, &G->cap_buckets, G->n_buckets + 1,
                 sizeof *G->bucket_corpus) < 0 ||
        flm_grow((void **)&G->bucket_lang, &G->cap_blang, G->n_buckets + 1,
                 sizeof *G->bucket_lang) < 0)
        return -1;
    G->bucket_corpus[G->n_buckets] = u->corpus;
    G->bucket_lang[G->n_buckets] = u->language;
    return (int)G->n_buckets++;
}

/* Codes of an utterance: precomputed, or decoded and encoded. *stage says what failed. */
static int utt_codes(job *J, utt_buf *b, int *stage, flm_error *err)
{
    flm_pack_utt *u = &b->u;
    int rc;
    if (u->codes) {
        int32_t n_q;
        double t0 = flm_now();
        *stage = ST_CODES;
        rc = flm_npy_read_codes(u->codes, &b->codes, &n_q, &b->n_frames, err);
        J->t_read += flm_now() - t0;
        if (rc == 0 && n_q < FLM_N_CODEBOOKS)
            rc = flm_error_set(err, FLM_EFORMAT, "%s: %d codebooks, %d needed", u->codes, n_q,
                               FLM_N_CODEBOOKS);
        /* keep the first 8 codebooks ([n_q][T] -> [8][T] is a prefix) */
    } else {
        codes_timing tm = {0, 0};
        *stage = ST_AUDIO;
        rc = load_codec(J, err);
        if (rc == 0)
            rc = codes_encode_file(J->stream, FLM_N_CODEBOOKS, u->audio, u->channel, &b->codes,
                                   &b->n_frames, &tm, err);
        J->t_decode += tm.decode_s;
        J->t_encode += tm.encode_s;
    }
    if (rc < 0)
        return rc;
    *stage = ST_CODES;
    for (int64_t i = 0; i < FLM_N_CODEBOOKS * b->n_frames; i++)
        if (b->codes[i] < 0 || b->codes[i] >= J->prof.codec.card)
            return flm_error_set(err, FLM_ERANGE, "%s: code %d at codebook %lld frame %lld",
                                 u->codes ? u->codes : u->audio, b->codes[i],
                                 (long long)(i / b->n_frames), (long long)(i % b->n_frames));
    *stage = ST_FRAMES;
    for (size_t s = 0; s < u->n_sents; s++)
        if (u->sents[s].end_frame > b->n_frames)
            return flm_error_set(err, FLM_ERANGE,
                                 "sentence %zu ends at frame %lld, the audio has %lld frames", s,
                                 (long long)u->sents[s].end_frame, (long long)b->n_frames);
    return 0;
}

/* Whether a sample with this key exists (in the index, or in the shard being written). */
static int sample_exists(job *J, const char *key)
{
    char *path = NULL;
    uint64_t rec;
    flm_error err = {0};
    int found = flm_index_locate(J->idx, key, &path, &rec, &err) == 0;
    flm_free(path);
    pthread_mutex_lock(&J->mu);
    for (size_t i = 0; i < J->n_samples && !found; i++)
        found = !strcmp(J->samples[i]->id, key);
    pthread_mutex_unlock(&J->mu);
    return found;
}

/* One dialog line -> one sample: decode and tokenize each turn, plan the timeline (format drawn
 * by the recipe's shares, interruptions), render both tracks, augment the listen track, encode
 * both with Mimi, pack. Returns 0, 1 (quarantined) or < 0. */
static int add_dialog(job *J, const char *file, const char *key, const char *line, size_t len,
                      int64_t line_no, const char *dir)
{
    flm_dialog d;
    flm_dialog_plan plan;
    flm_augment_result res;
    flm_error err = {0};
    float *audio[FLM_DIALOG_MAX_TURNS] = {0}, *listen = NULL, *speak = NULL;
    int32_t *tok[FLM_DIALOG_MAX_TURNS] = {0}, n_tok[FLM_DIALOG_MAX_TURNS] = {0};
    int32_t *scodes = NULL, *lcodes = NULL;
    int64_t n_samples[FLM_DIALOG_MAX_TURNS] = {0};
    flm_sample *smp = NULL;
    memset(&d, 0, sizeof d);
    memset(&res, 0, sizeof res);
    int stage = ST_PARSE, ret = 0;
    int rc = flm_dialog_parse(&d, line, len, file, (int32_t)line_no, dir, &err);
    if (rc == 0 && sample_exists(J, d.id))
        rc = flm_error_set(&err, FLM_EINVAL, "dialog id \"%s\" is already in the dataset", d.id);
    for (int32_t k = 0; k < d.n_turns && rc == 0; k++) {
        flm_audio_params ap = flm_audio_default_params();
        int32_t nch = 0;
        double t0 = flm_now();
        stage = ST_AUDIO;
        rc = flm_audio_read_file(d.turns[k].audio, &ap, &audio[k], &n_samples[k], &nch, &err);
        double t1 = flm_now();
        J->t_decode += t1 - t0;
        if (rc < 0)
            break;
        stage = ST_TOKENIZE;
        if (rc == 0 && (rc = flm_tokenizer_encode(J->tok, d.turns[k].text, strlen(d.turns[k].text),
                                                  &J->tb, &err)) == 0) {
            if (J->tb.n_ids == 0)
                rc = flm_error_set(&err, FLM_EFORMAT, "turn %d: no tokens in \"%s\"", k,
                                   d.turns[k].text);
            else if (!(tok[k] = flm_malloc(J->tb.n_ids * sizeof *tok[k])))
                rc = flm_error_set(&err, FLM_ENOMEM, "out of memory");
            else
                memcpy(tok[k], J->tb.ids, J->tb.n_ids * sizeof *tok[k]),
                    n_tok[k] = (int32_t)J->tb.n_ids;
        }
        J->t_tokenize += flm_now() - t1;
    }
    int64_t n = 0;
    double t0 = flm_now();
    if (rc == 0) {
        stage = ST_PACK;
        int fmt = flm_dialog_pick_format(&J->recipe, J->recipe.seed, d.id);
        rc = flm_dialog_plan_make(&plan, &J->dp, fmt, &d, n_samples, n_tok, J->recipe.seed, d.id,
                                  &err);
    }
    if (rc == 0) {
        n = (int64_t)plan.n_frames * J->dp.samples_per_frame;
        listen = flm_calloc((size_t)n, sizeof *listen);
        speak = flm_calloc((size_t)n, sizeof *speak);
        rc = listen && speak ? flm_dialog_render(&plan, &J->dp, (const float *const *)audio,
                                                 n_samples, listen, speak, n, &err)
                             : flm_error_set(&err, FLM_ENOMEM, "out of memory");
    }
    J->t_pack += flm_now() - t0;
    if (rc == 0) {
        int64_t st[FLM_DIALOG_MAX_TURNS], en[FLM_DIALOG_MAX_TURNS];
        flm_augment_span spans[FLM_DIALOG_MAX_TURNS];
        int32_t ns = flm_dialog_user_spans(&plan, J->dp.samples_per_frame, st, en);
        for (int32_t k = 0; k < ns; k++)
            spans[k] = (flm_augment_span){st[k], en[k]};
        t0 = flm_now();
        stage = ST_AUGMENT;
        rc = flm_augment_apply(&J->ap, J->recipe.seed, d.id, listen, n, spans, ns, speak, n,
                               J->pool, &res, &err);
        J->t_augment += flm_now() - t0;
    }
    if (rc == 0) {
        t0 = flm_now();
        stage = ST_AUDIO;
        scodes = flm_malloc((size_t)plan.n_frames * FLM_N_CODEBOOKS * sizeof *scodes);
        lcodes = flm_malloc((size_t)plan.n_frames * FLM_N_CODEBOOKS * sizeof *lcodes);
        if (!scodes || !lcodes)
            rc = flm_error_set(&err, FLM_ENOMEM, "out of memory");
        if (rc == 0 && (rc = load_codec(J, &err)) == 0 &&
            (rc = flm_mimi_encode(J->mimi, speak, n, scodes, &err)) == 0)
            rc = flm_mimi_encode(J->mimi, listen, n, lcodes, &err);
        J->t_encode += flm_now() - t0;
    }
    if (rc == 0) {
        t0 = flm_now();
        stage = ST_PACK;
        rc = flm_dialog_pack(&smp, &J->prof, &plan, (const int32_t *const *)tok, n_tok, scodes,
                             lcodes, plan.n_frames, d.id, &err);
        if (rc == 0 &&
            ((rc = flm_augment_result_to_meta(&res, smp, &err)) < 0 ||
             flm_sample_set_stage(smp, J->recipe.stage) || flm_sample_set_corpus(smp, d.corpus) ||
             flm_sample_set_language(smp, d.language)))
            rc = rc < 0 ? rc : flm_error_set(&err, FLM_ENOMEM, "out of memory");
        J->t_pack += flm_now() - t0;
    }
    if (rc == 0) {
        J->utts++;
        J->sentences += d.n_turns;
        if ((rc = add_sample(J, smp, &err)) < 0) {
            cli_error("pack: %s", err.msg);
            ret = -1;
        }
        smp = NULL;
    } else if (rc == FLM_ENOMEM) {
        cli_error("pack: %s", err.msg);
        ret = -1;
    } else {
        char msg[FLM_ERROR_MSG_SIZE + 64];
        snprintf(msg, sizeof msg, "%s%s%s", d.id ? d.id : "", d.id ? ": " : "", err.msg);
        ret = quarantine(J, key, file, stage, msg) < 0 ? -1 : 1;
    }
    flm_sample_destroy(&smp);
    for (int k = 0; k < FLM_DIALOG_MAX_TURNS; k++)
        flm_free(audio[k]), flm_free(tok[k]);
    flm_free(listen), flm_free(speak), flm_free(scodes), flm_free(lcodes);
    flm_augment_result_clear(&res);
    flm_dialog_clear(&d);
    return ret;
}

/* Parses, encodes and tokenizes one line into pairs. Returns 0, 1 (quarantined) or < 0. */
static int add_line(job *J, group_state *G, const group *g, const char *line, size_t len,
                    int64_t line_no, const char *dir)
{
    const char *file = J->manifests[g->file];
    char key[600];
    snprintf(key, sizeof key, "pack:%s:%lld:%08llx", base_name(file), (long long)line_no,
             (unsigned long long)(XXH3_64bits(line, len) >> 32));
    if (g->retry && line_no != g->retry_line)
        return 0;
    if (J->dialogs)
        return add_dialog(J, file, key, line, len, line_no, dir);
    flm_error err = {0};
    if (flm_grow((void **)&G->utts, &G->cap_utts, G->n_utts + 1, sizeof *G->utts) < 0) {
        cli_error("pack: out of memory");
        return -1;
    }
    utt_buf *b = &G->utts[G->n_utts];
    memset(b, 0, sizeof *b);
    b->line = line_no;
    int stage = ST_PARSE;
    int rc = flm_pack_utt_parse(line, len, file, line_no, dir, &b->u, &err);
    if (rc == 0)
        rc = utt_codes(J, b, &stage, &err);
    if (rc == 0) {
        G->n_utts++;
    } else {
        char msg[FLM_ERROR_MSG_SIZE + 64];
        snprintf(msg, sizeof msg, "%s%s%s", b->u.id ? b->u.id : "", b->u.id ? ": " : "", err.msg);
        flm_pack_utt_free(&b->u);
        flm_free(b->codes);
        return quarantine(J, key, file, stage, msg) < 0 ? -1 : 1;
    }
    int bucket = bucket_of(G, &b->u);
    double t0 = flm_now();
    size_t first_pair = G->n_pairs;
    for (size_t s = 0; s < b->u.n_sents && bucket >= 0; s++) {
        const flm_pack_sentence *q = &b->u.sents[s];
        if (flm_tokenizer_encode(J->tok, q->text, strlen(q->text), &J->tb, &err) < 0 ||
            (J->tb.n_ids == 0 &&
             flm_error_set(&err, FLM_EFORMAT, "sentence %zu: no tokens in \"%s\"", s, q->text))) {
            while (G->n_pairs > first_pair) { /* the utterance goes whole or not at all */
                pair_buf *p = &G->pairs[--G->n_pairs];
                flm_free((void *)p->pair.text), flm_free((void *)p->pair.id);
                flm_free((void *)p->pair.codes);
            }
            char msg[FLM_ERROR_MSG_SIZE + 64];
            snprintf(msg, sizeof msg, "%s: sentence %zu: %s", b->u.id, s, err.msg);
            J->t_tokenize += flm_now() - t0;
            return quarantine(J, key, file, ST_TOKENIZE, msg) < 0 ? -1 : 1;
        }
        int32_t nf = (int32_t)(q->end_frame - q->start_frame);
        char id[700];
        snprintf(id, sizeof id, "%s#%zu", b->u.id, s);
        int32_t *text = flm_malloc(J->tb.n_ids * sizeof *text);
        int32_t *codes = flm_malloc((size_t)nf * FLM_N_CODEBOOKS * sizeof *codes);
        char *pid = flm_strdup(id);
        if (!text || !codes || !pid ||
            flm_grow((void **)&G->pairs, &G->cap_pairs, G->n_pairs + 1, sizeof *G->pairs) < 0) {
            flm_free(text), flm_free(codes), flm_free(pid);
            bucket = -1;
            break;
        }
        memcpy(text, J->tb.ids, J->tb.n_ids * sizeof *text);
        for (int c = 0; c < FLM_N_CODEBOOKS; c++)
            memcpy(codes + (size_t)c * nf, b->codes + c * b->n_frames + q->start_frame,
                   (size_t)nf * sizeof *codes);
        G->pairs[G->n_pairs++] = (pair_buf){{pid, text, (int32_t)J->tb.n_ids, codes, nf},
                                            (int32_t)(G->n_utts - 1),
                                            (int32_t)s,
                                            bucket};
        J->sentences++;
    }
    J->t_tokenize += flm_now() - t0;
    if (bucket < 0) {
        cli_error("pack: out of memory");
        return -1;
    }
    flm_free(b->codes); /* the pairs hold copies of their frames */
    b->codes = NULL;
    J->utts++;
    return 0;
}

/* Comma-separated distinct speakers of the pairs in [from, from + n) of one bucket. */
static char *speakers_of(const group_state *G, const pair_buf *const *ps, size_t n)
{
    size_t size = 1;
    for (size_t i = 0; i < n; i++) {
        const char *sp = G->utts[ps[i]->utt].u.speaker;
        size += sp ? strlen(sp) + 1 : 0;
    }
    char *out = flm_malloc(size);
    if (!out)
        return NULL;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const char *sp = G->utts[ps[i]->utt].u.speaker;
        int seen = 0;
        for (size_t k = 0; sp && k < i && !seen; k++)
            seen = same(G->utts[ps[k]->utt].u.speaker, sp);
        if (sp && !seen) {
            if (out[0])
                strcat(out, ",");
            strcat(out, sp);
        }
    }
    return out;
}

static int pack_group(job *J, group_state *G, const char *file, const char *sample_base,
                      flm_error *err)
{
    double t0 = flm_now();
    flm_pack_pair *pairs = flm_malloc((G->n_pairs + 1) * sizeof *pairs);
    const pair_buf **refs = flm_malloc((G->n_pairs + 1) * sizeof *refs);
    int rc = pairs && refs ? 0 : flm_error_set(err, FLM_ENOMEM, "out of memory");
    int64_t k = 0;
    for (size_t b = 0; b < G->n_buckets && rc == 0; b++) {
        size_t n = 0;
        for (size_t i = 0; i < G->n_pairs; i++)
            if (G->pairs[i].bucket == (int32_t)b) {
                refs[n] = &G->pairs[i];
                pairs[n++] = G->pairs[i].pair;
            }
        for (size_t i = 0; i < n && rc == 0;) {
            char sid[700];
            snprintf(sid, sizeof sid, "%s#%lld", sample_base, (long long)k);
            flm_rng r;
            flm_rng_init(&r, J->recipe.seed, sid, "pack.style");
            flm_packer_params pp = flm_packer_default_params(&J->prof);
            double p_tts =
                J->recipe.p_format[FLM_FORMAT_TTS] /
                (J->recipe.p_format[FLM_FORMAT_TTS] + J->recipe.p_format[FLM_FORMAT_ASR]);
            pp.style = flm_rng_uniform(&r) < p_tts ? FLM_PACK_TTS : FLM_PACK_ASR;
            pp.lead = J->recipe.lead;
            pp.lag = J->recipe.lag;
            pp.sample_frames = J->recipe.sample_frames;
            double fr = (double)J->prof.codec.sample_rate / J->prof.codec.samples_per_frame;
            pp.silence_min = (int32_t)(J->recipe.silence_min_s * fr + 0.5);
            pp.silence_max = (int32_t)(J->recipe.silence_max_s * fr + 0.5);
            memcpy(pp.silence, J->silence, sizeof pp.silence);
            flm_sample *s = NULL;
            size_t used = 0;
            rc = flm_pack_sentences(&s, &J->prof, &pp, pairs + i, n - i, J->recipe.seed, sid, &used,
                                    err);
            if (rc == FLM_ERANGE) { /* one sentence longer than a sample: quarantine it */
                const utt_buf *u = &G->utts[refs[i]->utt];
                char key[700];
                snprintf(key, sizeof key, "pack:%s:%lld:%s#%d", base_name(file), (long long)u->line,
                         u->u.id, refs[i]->sent);
                rc = quarantine(J, key, file, ST_PACK, err->msg) < 0 ? FLM_EDB : 0;
                i++;
                continue;
            }
            char *spk = rc == 0 ? speakers_of(G, refs + i, used) : NULL;
            const flm_pack_utt *u0 = &G->utts[refs[i]->utt].u;
            if (rc == 0 &&
                (!spk || flm_sample_set_stage(s, J->recipe.stage) ||
                 flm_sample_set_corpus(s, u0->corpus) || flm_sample_set_language(s, u0->language) ||
                 flm_sample_set_speakers(s, spk[0] ? spk : NULL)))
                rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
            flm_free(spk);
            if (rc == 0) {
                rc = add_sample(J, s, err);
                s = NULL;
            }
            flm_sample_destroy(&s);
            i += used;
            k++;
        }
    }
    flm_free(pairs);
    flm_free(refs);
    J->t_pack += flm_now() - t0;
    return rc;
}

static int do_group(job *J, const group *g, const char *key)
{
    const char *file = J->manifests[g->file];
    char *dir_copy = flm_strdup(file);
    const char *dir = dir_copy ? dirname(dir_copy) : ".";
    group_state G;
    memset(&G, 0, sizeof G);
    flm_error err = {0};
    int rc = 0;
    FILE *f = fopen(file, "r");
    if (!f || fseeko(f, g->offset, SEEK_SET) < 0) {
        cli_error("pack: %s: %s", file, strerror(errno));
        rc = -1;
    }
    char *line = NULL;
    size_t lcap = 0;
    int64_t failed = 0;
    for (int64_t i = 0; i < g->n_lines && rc == 0; i++) {
        ssize_t len = getline(&line, &lcap, f);
        if (len < 0) {
            cli_error("pack: %s: line %lld: the file changed since it was scanned", file,
                      (long long)(g->first_line + i));
            rc = -1;
            break;
        }
        size_t l = (size_t)len;
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            l--;
        if (l == 0)
            continue;
        int r = add_line(J, &G, g, line, l, g->first_line + i, dir);
        rc = r < 0 ? -1 : 0;
        failed += r == 1;
    }
    free(line);
    if (f)
        fclose(f);
    flm_free(dir_copy);
    char base[700];
    if (g->retry)
        snprintf(base, sizeof base, "%s#retry", g->retry + 5);
    else
        snprintf(base, sizeof base, "%s:%lld:%08llx", base_name(file), (long long)g->first_line,
                 (unsigned long long)(g->hash >> 32));
    if (rc == 0 && G.n_pairs > 0 && (rc = ensure_silence(J, &err)) < 0)
        cli_error("pack: codec: %s", err.msg);
    if (rc == 0 && (rc = pack_group(J, &G, file, base, &err)) < 0)
        cli_error("pack: %s", err.msg);
    if (rc == 0 && !(g->retry && failed) && (rc = add_done(J, key, &err)) < 0)
        cli_error("pack: %s", err.msg);
    if (rc == 0 && (int64_t)J->n_samples >= J->per_shard && (rc = flush_shard(J, &err)) < 0)
        cli_error("pack: %s", err.msg);
    group_state_free(&G);
    J->progress += g->frames;
    cli_progress_update(&J->bar, J->progress);
    return rc;
}

/* ---- retries ------------------------------------------------------------------------------- */

typedef struct retry_list {
    char **keys, **paths;
    size_t n, cap, cap_paths;
} retry_list;

static void on_quarantined(void *user, const char *key, const char *path, const char *stage,
                           const char *error)
{
    (void)error;
    retry_list *r = user;
    if (strncmp(key, "pack:", 5) || strchr(key, '#') || !stage || !path)
        return;
    char *k = flm_strdup(key), *p = flm_strdup(path);
    if (k && p && flm_grow((void **)&r->keys, &r->cap, r->n + 1, sizeof *r->keys) == 0 &&
        flm_grow((void **)&r->paths, &r->cap_paths, r->n + 1, sizeof *r->paths) == 0) {
        r->keys[r->n] = k;
        r->paths[r->n++] = p;
    } else {
        flm_free(k), flm_free(p);
    }
}

/* Groups of one line for each quarantined line of these manifests. */
static int retry_groups(job *J, const group *gs, size_t n_gs, group **out, size_t *n_out,
                        retry_list *rl)
{
    flm_error err = {0};
    if (flm_index_list_quarantine(J->idx, on_quarantined, rl, &err) < 0) {
        cli_error("pack: %s", err.msg);
        return -1;
    }
    group *r = flm_calloc(rl->n + 1, sizeof *r);
    if (!r)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < rl->n; i++) {
        for (size_t k = 0; k < n_gs; k++) {
            if (gs[k].retry)
                continue;
            const char *file = J->manifests[gs[k].file];
            size_t pl = 5 + strlen(base_name(file)) + 1; /* "pack:" NAME ":" */
            if (strcmp(rl->paths[i], file) || strlen(rl->keys[i]) < pl)
                continue;
            long long line = atoll(rl->keys[i] + pl);
            if (line < gs[k].first_line || line >= gs[k].first_line + gs[k].n_lines)
                continue;
            r[n] = gs[k];
            r[n].retry = rl->keys[i];
            r[n].retry_line = line;
            n++;
            break;
        }
    }
    *out = r;
    *n_out = n;
    return 0;
}

/* ---- the job ------------------------------------------------------------------------------- */

static int parse_silence(const char *v, int32_t *out)
{
    const char *p = v;
    for (int c = 0; c < FLM_N_CODEBOOKS; c++) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 0 || x > 2047 || (c < FLM_N_CODEBOOKS - 1 && *end != ',') ||
            (c == FLM_N_CODEBOOKS - 1 && *end)) {
            cli_error("pack: --silence-codes '%s': expected 8 comma-separated codes 0..2047", v);
            return -1;
        }
        out[c] = (int32_t)x;
        p = end + 1;
    }
    return 0;
}

static int has_parts(const char *out)
{
    DIR *d = opendir(out);
    int found = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        found |= !strncmp(de->d_name, "part-", 5);
    if (d)
        closedir(d);
    return found;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        cli_error("pack: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void print_summary(const job *J, double elapsed)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double hours = J->speech_frames / (12.5 * 3600.0);
    char part[64] = "";
    if (J->world > 1)
        snprintf(part, sizeof part, " (part %d of %d)", J->rank, J->world);
    if (J->dialogs)
        printf("flm pack%s: %lld groups packed (%lld already done), %lld dialogs, %lld turns -> "
               "%lld samples (%lld with interruptions) in %lld shards; %.3f h of dialog\n",
               part, (long long)J->groups_todo, (long long)J->groups_skipped, (long long)J->utts,
               (long long)J->sentences, (long long)J->n_out, (long long)J->n_interrupted,
               (long long)J->shards, hours);
    else
        printf("flm pack%s: %lld groups packed (%lld already done), %lld utterances, %lld "
               "sentences -> %lld samples (%lld TTS, %lld ASR) in %lld shards; %.3f h of speech\n",
               part, (long long)J->groups_todo, (long long)J->groups_skipped, (long long)J->utts,
               (long long)J->sentences, (long long)J->n_out, (long long)J->n_tts,
               (long long)(J->n_out - J->n_tts), (long long)J->shards, hours);
    if (J->quarantined) {
        printf("  quarantined: %lld (flm index quarantine %s):", (long long)J->quarantined, J->dir);
        for (int s = 0; s < N_STAGES; s++)
            if (J->q_by_stage[s])
                printf(" %s %lld", stages[s], (long long)J->q_by_stage[s]);
        printf("\n");
    }
    double t[8] = {J->t_read,     J->t_decode, J->t_augment, J->t_encode,
                   J->t_tokenize, J->t_pack,   J->t_write,   J->t_compress};
    const char *names[8] = {
        "read codes", "decode", "augment", "encode",
        "tokenize",   "pack",   "index",   "compress+write (writer thread, in parallel)"};
    printf("  time %.2f s (%.3g h of %s/s):", elapsed, elapsed > 0 ? hours / elapsed : 0,
           J->dialogs ? "dialog" : "speech");
    for (int s = 0; s < 8; s++)
        if (t[s] > 0)
            printf(" %s %.0f%%", names[s], elapsed > 0 ? 100 * t[s] / elapsed : 0);
    printf("; peak memory %.0f MB\n", ru.ru_maxrss / 1024.0);
}

typedef struct key_ref {
    uint64_t h;
    size_t i;
} key_ref;

static int cmp_key_ref(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    return x->h != y->h ? (x->h < y->h ? -1 : 1) : (x->i < y->i ? -1 : x->i > y->i);
}

/* A manifest given twice (or a copy of it under the same name) would pack its groups twice:
 * keep the first of groups with equal keys. Returns how many were dropped. */
static int64_t drop_duplicate_groups(const job *J, const group *gs, size_t n, unsigned char *todo)
{
    key_ref *r = flm_malloc((n + 1) * sizeof *r);
    size_t m = 0;
    int64_t dropped = 0;
    char a[700], b[700];
    for (size_t i = 0; r && i < n; i++)
        if (todo[i]) {
            group_key(J, &gs[i], a, sizeof a);
            r[m++] = (key_ref){XXH3_64bits(a, strlen(a)), i};
        }
    if (r)
        qsort(r, m, sizeof *r, cmp_key_ref);
    for (size_t k = 1; r && k < m; k++) {
        size_t first = k - 1;
        while (first > 0 && r[first].h == r[k].h && !todo[r[first].i])
            first--;
        if (r[k].h != r[first].h)
            continue;
        group_key(J, &gs[r[first].i], a, sizeof a);
        group_key(J, &gs[r[k].i], b, sizeof b);
        if (!strcmp(a, b)) {
            todo[r[k].i] = 0;
            dropped++;
        }
    }
    flm_free(r);
    return dropped;
}

static void first_text(void *user, int n_cols, const char *const *names, const char *const *values)
{
    (void)n_cols, (void)names;
    char *out = user;
    if (!out[0] && values[0])
        snprintf(out, 700, "%s", values[0]);
}

/* A group that is not done although a group starting at the same line of a manifest of the same
 * name is: the manifest changed after it was packed. Packing it would put its sentences in the
 * dataset twice, so the job stops and says so. */
static int changed_group(job *J, const group *g)
{
    char prefix[600], sql[1600], q[1300], found[700] = "";
    snprintf(prefix, sizeof prefix, "pack:%s:%lld+", J->file_names[g->file],
             (long long)g->first_line);
    size_t k = 0;
    for (const char *c = prefix; *c && k + 2 < sizeof q; c++) { /* SQL quoting */
        if (*c == '\'')
            q[k++] = '\'';
        q[k++] = *c;
    }
    q[k] = 0;
    snprintf(sql, sizeof sql,
             "SELECT key FROM inputs WHERE status = 'done' AND substr(key, 1, %zu) = '%s' "
             "LIMIT 1",
             strlen(prefix), q);
    flm_error err = {0};
    if (flm_index_query(J->idx, sql, first_text, found, &err) < 0 || !found[0])
        return 0;
    cli_error("pack: %s changed after it was packed: lines %lld.. were packed as %s; packing them "
              "again would put their sentences in the dataset twice. Add new data as a new "
              "manifest file (or pack into a new dataset).",
              J->manifests[g->file], (long long)g->first_line, found);
    return 1;
}

/* Whether the group a retry entry came from is done. */
static int parent_done(job *J, const group *g)
{
    group parent = *g;
    parent.retry = NULL;
    char key[700];
    flm_error err = {0};
    group_key(J, &parent, key, sizeof key);
    return flm_index_input_status(J->idx, key, &err) == 1;
}

static int run_job(job *J, int64_t *n_bad)
{
    flm_error err = {0};
    group *gs = NULL, *rs = NULL;
    size_t n_gs = 0, n_rs = 0;
    retry_list rl = {0};
    double start = flm_now();
    int rc = scan_manifests(J, &gs, &n_gs);
    if (rc == 0 && (rc = flm_index_open(&J->idx, J->dir, FLM_INDEX_CREATE, &err)) < 0)
        cli_error("pack: %s", err.msg);
    if (rc == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "flm pack --recipe %s (rank %d of %d)", J->recipe.name, J->rank,
                 J->world);
        if ((rc = flm_index_begin_run(J->idx, cmd, J->recipe.json, (int64_t)J->recipe.seed,
                                      &J->prof, &J->run, &err)) < 0 ||
            (rc = find_next_shard(J, &err)) < 0)
            cli_error("pack: %s", err.msg);
    }
    if (rc == 0 && J->retry && retry_groups(J, gs, n_gs, &rs, &n_rs, &rl) < 0)
        rc = -1;
    if (rc == 0 && (rc = writer_start(J, &err)) < 0)
        cli_error("pack: %s", err.msg);
    /* this rank's groups: g % world == rank; then the retries (already in this part's index) */
    char key[700];
    int64_t total = 0;
    unsigned char *todo = flm_calloc(n_gs + n_rs + 1, 1);
    if (!todo)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < n_gs + n_rs; i++) {
        const group *g = i < n_gs ? &gs[i] : &rs[i - n_gs];
        if (i < n_gs && (int64_t)(i % (size_t)J->world) != J->rank)
            continue;
        group_key(J, g, key, sizeof key);
        int st = flm_index_input_status(J->idx, key, &err);
        if (st < 0) {
            cli_error("pack: %s", err.msg);
            rc = -1;
        } else if (st == 1) {
            J->groups_skipped++;
        } else if (i >= n_gs && (st == 0 || !parent_done(J, g))) {
            continue; /* retry a line only once its group is done (else the group packs it) */
        } else if (i < n_gs && changed_group(J, g)) {
            rc = -1;
        } else {
            todo[i] = 1;
            total += g->frames;
            J->groups_todo++;
        }
    }
    if (rc == 0) {
        int64_t dup = drop_duplicate_groups(J, gs, n_gs, todo);
        for (size_t i = 0; dup && i < n_gs; i++)
            if (!todo[i] && (int64_t)(i % (size_t)J->world) == J->rank) {
                group_key(J, &gs[i], key, sizeof key);
                if (flm_index_input_status(J->idx, key, &err) == 0) { /* a dropped duplicate */
                    total -= gs[i].frames;
                    J->groups_todo--;
                }
            }
        if (dup)
            fprintf(stderr,
                    "flm pack: %lld groups appear twice in the manifests (the same file "
                    "given twice?); each is packed once\n",
                    (long long)dup);
    }
    if (J->dialogs)
        cli_progress_start(&J->bar, "pack", "dialogs", total);
    else
        cli_progress_start_scaled(&J->bar, "pack", "h", total, 12.5 * 3600);
    J->bar.enabled &= !J->mpi || J->rank == 0; /* under mpirun one bar (rank 0's) is enough */
    for (size_t i = 0; rc == 0 && i < n_gs + n_rs; i++) {
        if (!todo[i])
            continue;
        const group *g = i < n_gs ? &gs[i] : &rs[i - n_gs];
        group_key(J, g, key, sizeof key);
        rc = do_group(J, g, key);
    }
    if (rc == 0 && (rc = flush_shard(J, &err)) < 0)
        cli_error("pack: %s", err.msg);
    writer_stop(J);
    cli_progress_finish(&J->bar, J->progress);
    if (rc == 0)
        print_summary(J, flm_now() - start);
    *n_bad = J->quarantined;
    flm_free(todo);
    flm_free(gs);
    flm_free(rs);
    for (size_t i = 0; i < rl.n; i++)
        flm_free(rl.keys[i]), flm_free(rl.paths[i]);
    flm_free(rl.keys), flm_free(rl.paths);
    return rc;
}

/* Sentences or dialogs, by the recipe's formats; for dialogs the timeline and augmentation
 * settings, and the noise clips. */
static int setup_recipe(job *J, const char *noise)
{
    const double *f = J->recipe.p_format;
    double post = f[FLM_FORMAT_TTS] + f[FLM_FORMAT_ASR];
    double dial = f[FLM_FORMAT_ARRT] + f[FLM_FORMAT_RTTS] + f[FLM_FORMAT_RTTS_FREE];
    flm_error err = {0};
    if (post > 0 && dial > 0) {
        cli_error("pack: recipe %s mixes sentence formats (tts, asr) and dialog formats (arrt, "
                  "rtts, rtts-free): pack them as two jobs",
                  J->recipe.name);
        return -1;
    }
    J->dialogs = dial > 0;
    if (!J->dialogs) {
        if (noise) {
            cli_error("pack: --noise augments dialogs; recipe %s packs sentences", J->recipe.name);
            return -1;
        }
        return 0;
    }
    J->ap = flm_augment_default_params();
    int rc = flm_dialog_params_from_recipe(&J->dp, &J->recipe, &J->prof, &err);
    for (size_t i = 0; rc == 0 && i < J->recipe.n_augment; i++)
        rc = flm_augment_params_set(&J->ap, J->recipe.augment_key[i], J->recipe.augment_value[i],
                                    &err);
    if (rc == 0)
        rc = flm_augment_params_check(&J->ap, &err);
    if (rc == 0 && noise && (rc = flm_augment_noise_pool_create(&J->pool, &err)) == 0)
        rc = flm_augment_noise_pool_load(J->pool, noise, J->prof.codec.sample_rate, 4 * 3600.0,
                                         &err);
    if (rc < 0)
        cli_error("pack: %s", err.msg);
    return rc;
}

int cmd_pack(int argc, char **argv)
{
    const char *recipe = NULL, *tok_path = getenv("FLM_TOKENIZER"), *noise = NULL, *v;
    int64_t rank = -1, world = -1, per_shard = 256, threads = 0;
    int bad = 0;
    job J;
    memset(&J, 0, sizeof J);
    J.manifests = flm_calloc((size_t)argc + 1, sizeof *J.manifests);
    J.file_names = flm_calloc((size_t)argc + 1, sizeof *J.file_names);
    for (int i = 1; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free_names(&J);
            return 0;
        } else if ((v = cli_opt(argc, argv, &i, "--recipe", &bad))) {
            recipe = v;
        } else if ((v = cli_opt(argc, argv, &i, "--out", &bad))) {
            J.out = v;
        } else if ((v = cli_opt(argc, argv, &i, "--tokenizer", &bad))) {
            tok_path = v;
        } else if ((v = cli_opt(argc, argv, &i, "--codec", &bad))) {
            J.codec_path = v;
        } else if ((v = cli_opt(argc, argv, &i, "--noise", &bad))) {
            noise = v;
        } else if ((v = cli_opt(argc, argv, &i, "--silence-codes", &bad))) {
            bad = parse_silence(v, J.silence) < 0;
            J.have_silence = !bad;
        } else if ((v = cli_opt(argc, argv, &i, "--per-shard", &bad))) {
            bad = cli_parse_i64("--per-shard", v, 1, 1000000, &per_shard) < 0;
        } else if ((v = cli_opt(argc, argv, &i, "--rank", &bad))) {
            bad = cli_parse_i64("--rank", v, 0, 1000000, &rank) < 0;
        } else if ((v = cli_opt(argc, argv, &i, "--world", &bad))) {
            bad = cli_parse_i64("--world", v, 1, 1000000, &world) < 0;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &bad))) {
            bad = cli_parse_i64("--threads", v, 1, 1024, &threads) < 0;
        } else if (!strcmp(argv[i], "--retry-quarantined")) {
            J.retry = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            if (!bad)
                cli_error("pack: unknown option '%s' (see flm pack --help)", argv[i]);
            bad = 1;
        } else {
            J.manifests[J.n_manifests++] = argv[i];
        }
    }
    if (!bad && (!recipe || !J.out || !tok_path || J.n_manifests == 0)) {
        cli_error("pack: %s required (see flm pack --help)",
                  !recipe     ? "--recipe FILE is"
                  : !J.out    ? "--out DIR is"
                  : !tok_path ? "--tokenizer FILE (a Qwen2.5 tokenizer.json) is"
                              : "at least one SENTENCES.jsonl is");
        bad = 1;
    }
    if (!bad && (rank >= 0) != (world >= 0)) {
        cli_error("pack: --rank and --world go together");
        bad = 1;
    }
    if (!bad && rank >= world && world > 0) {
        cli_error("pack: --rank %lld is not below --world %lld", (long long)rank, (long long)world);
        bad = 1;
    }
    if (bad) {
        free_names(&J);
        return 2;
    }
    int mpi = 0;
#ifdef FLM_HAVE_MPI
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK")) {
        if (world > 0) {
            cli_error("pack: --rank/--world cannot be used under mpirun (MPI gives them)");
            free_names(&J);
            return 2;
        }
        int r, n;
        MPI_Init(NULL, NULL);
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
        MPI_Comm_size(MPI_COMM_WORLD, &n);
        rank = r, world = n, mpi = 1;
        J.mpi = 1;
    }
#endif
    J.rank = rank < 0 ? 0 : (int)rank;
    J.world = world < 0 ? 1 : (int)world;
    J.per_shard = (int)per_shard;
#ifdef _OPENMP
    if (threads > 0)
        omp_set_num_threads((int)threads);
#else
    (void)threads;
#endif
    flm_error err = {0};
    flm_tokenizer_params tp = flm_tokenizer_default_params();
    char part[4096];
    int rc = 0;
    flm_profiles_default(&J.prof);
    tp.vocab = &J.prof.vocab; /* transcripts never produce <wait>, <asr>, <answer> */
    tp.split_added = 0;       /* "<|im_end|>" in a transcript is text */
    if (flm_recipe_load(recipe, &J.recipe, &err) < 0 ||
        flm_tokenizer_load(&J.tok, tok_path, &tp, &err) < 0) {
        cli_error("pack: %s", err.msg);
        rc = 1;
    } else if (setup_recipe(&J, noise) < 0) {
        rc = 1;
    } else if (make_dir(J.out) < 0) {
        rc = 1;
    } else if (J.world == 1 && has_parts(J.out)) {
        cli_error("pack: %s holds a multi-rank dataset (part-*); use another --out", J.out);
        rc = 1;
    } else {
        snprintf(part, sizeof part, "%s/shards", J.out);
        struct stat st;
        if (J.world > 1 && stat(part, &st) == 0) {
            cli_error("pack: %s holds a single-process dataset; use another --out", J.out);
            rc = 1;
        }
    }
    if (rc == 0) {
        if (J.world > 1)
            snprintf(part, sizeof part, "%s/part-%d-of-%d", J.out, J.rank, J.world);
        else
            snprintf(part, sizeof part, "%s", J.out);
        J.dir = part;
        char shards[4200];
        snprintf(shards, sizeof shards, "%s/%s", part, FLM_SHARDS_DIR);
        if (make_dir(part) < 0 || make_dir(shards) < 0)
            rc = 1;
        else
            flm_shard_remove_leftovers(shards);
    }
    int64_t n_bad = 0;
    if (rc == 0 && run_job(&J, &n_bad) < 0)
        rc = 1;
    flm_shard_writer_destroy(&J.w);
    for (size_t i = 0; i < J.n_samples; i++)
        flm_sample_destroy(&J.samples[i]);
    for (size_t i = 0; i < J.n_done; i++)
        flm_free(J.done[i]);
    flm_free(J.samples), flm_free(J.infos), flm_free(J.done);
    flm_index_close(&J.idx);
    if (J.world > 1 && !mpi && rc == 0)
        printf("part %d of %d done; when all parts are: flm index merge %s/part-*-of-%d -o %s\n",
               J.rank, J.world, J.out, J.world, J.out);
#ifdef FLM_HAVE_MPI
    if (mpi) {
        int ok = rc == 0, all_ok = 0;
        MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
        if (J.rank == 0 && all_ok && J.world > 1) {
            char dst[4200], **ins = flm_calloc((size_t)J.world, sizeof *ins);
            snprintf(dst, sizeof dst, "%s/%s", J.out, FLM_INDEX_FILE);
            static const char *const sfx[] = {"", "-wal", "-shm"};
            for (int k = 0; k < 3; k++) { /* the merged index is derived: rebuilt each time */
                char p[4300];
                snprintf(p, sizeof p, "%s%s", dst, sfx[k]);
                unlink(p);
            }
            for (int r = 0; ins && r < J.world; r++) {
                ins[r] = flm_malloc(4200);
                snprintf(ins[r], 4200, "%s/part-%d-of-%d/%s", J.out, r, J.world, FLM_INDEX_FILE);
            }
            rc = flm_index_merge(dst, (const char *const *)ins, (size_t)J.world, &err) < 0;
            if (rc)
                cli_error("pack: merging the parts: %s", err.msg);
            else
                printf("merged %d parts into %s\n", J.world, dst);
            for (int r = 0; ins && r < J.world; r++)
                flm_free(ins[r]);
            flm_free(ins);
        } else if (!all_ok) {
            rc = 1;
        }
        MPI_Finalize();
    }
#endif
    flm_tokenizer_destroy(&J.tok);
    flm_token_buf_free(&J.tb);
    flm_mimi_stream_destroy(&J.stream);
    flm_mimi_destroy(&J.mimi);
    flm_augment_noise_pool_destroy(&J.pool);
    flm_recipe_free(&J.recipe);
    free_names(&J);
    return rc;
}
