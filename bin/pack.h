/* pack.h - the flm pack job (docs/pack.md, docs/dialogs.md), in six files:
 *   cmd_pack.c        the command line: options, recipe kind, dataset directories, MPI
 *   pack_job.c        manifests -> groups, resume, ranks, quarantine, retries, the summary; the
 *                     shards are libstream's flm_dataset_writer's
 *   pack_config.c     the run's pinned configuration, and its comparison in words
 *   pack_sentences.c  post-training: utterances -> codes, tokens, TTS/ASR samples per group
 *   pack_dialog.c     fine-tuning: one dialog line -> rendered, augmented, encoded, one sample
 *   pack_conversation.c  fine-tuning: one two-channel recording's lines -> samples per model side
 * The job calls the per-line packers; they never call back into it. Each packer call gets the
 * job's inputs read only (pack_ctx: the recipe, tokenizer, settings, and two queries the job
 * answers: the codec, loaded on first use, and whether a sample id is in the dataset) and returns
 * what it packed in a pack_out: samples (owned, in order) and quarantined inputs (key, manifest,
 * stage, reason) in the order they came, and figures for the summary. The job then hands the
 * samples to the dataset writer and records the quarantines in that order, before the next call.
 * A conversation's samples come back in one call or not at all (the conversation quarantined); a
 * sentence group's come back when the group is packed, so a packer holds at most one group's.
 * Groups depend only on the manifests (never on the number of ranks or on what failed), and every
 * random draw is keyed by (seed, sample id, purpose), so any split of the groups across ranks
 * gives the same samples. */
#ifndef FLM_BIN_PACK_H
#define FLM_BIN_PACK_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "flm_alloc.h"
#include "flm_augment.h"
#include "flm_dataset_writer.h"
#include "flm_dialog.h"
#include "flm_index.h"
#include "flm_lock.h"
#include "flm_mimi.h"
#include "flm_recipe.h"
#include "flm_shard.h"
#include "flm_tokenizer.h"

/* A group holds consecutive lines of one manifest with at least this many samples' worth of
 * speech frames (the last group of a file may hold less), so the partly filled last sample of
 * each group wastes little. */
#define GROUP_SAMPLES 8
/* Dialog manifests: a group is this many lines (one dialog is one sample). */
#define GROUP_DIALOGS 16
/* Version of what the packers write for given inputs and configuration: raised whenever a change
 * of the code changes the bytes of a sample, so a dataset never mixes samples of two versions
 * (it is part of each run's fingerprint). */
#define PACK_FORMAT_VERSION 2
/* Exit status of a job that finished but quarantined more than --max-bad of its inputs. */
#define PACK_EXIT_TOO_MANY_BAD 3

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

typedef struct job {
    const char *out, *dir, *codec_path;
    char **manifests;
    char **file_names; /* per manifest: "DIR/NAME", its identity in group keys (see docs) */
    char **real_paths; /* per manifest: its canonical path (recorded with its done groups) */
    int n_manifests;
    char *config;                         /* the run's configuration (JSON, pack_config.c) */
    char fingerprint[17];                 /* and its fingerprint */
    flm_dataset_lock *lock, *parent_lock; /* the dataset's (a part's, and the whole one's) */
    double max_bad;                       /* --max-bad */
    int json;                             /* --json */
    int too_many_bad;                     /* more than max_bad of the inputs quarantined */
    flm_recipe recipe;
    int dialogs;           /* the recipe packs dialogs (ARRT/RTTS/RTTS-free) or conversations */
    int conv;              /* ... recorded conversations (format "conversation") */
    int model_side;        /* conversations: 0 left, 1 right, 2 both (--model-side) */
    int words;             /* word-level recipe: FLM_PACK_WORDS or FLM_PACK_WORDS_ASR (else 0) */
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
    flm_dataset_writer *dw; /* shards: samples in, each shard registered with its done groups */
    flm_dataset_writer_stats written;
    /* totals */
    int64_t groups_todo, groups_skipped, utts, quarantined, n_out, n_tts, sentences;
    int64_t n_interrupted; /* dialogs: samples with at least one interruption */
    int64_t conv_sides;    /* conversations: model sides packed */
    int64_t speech_frames, progress;
    int64_t q_by_stage[7];
    double t_decode, t_encode, t_read, t_tokenize, t_pack, t_augment;
    cli_progress bar;
} job;

/* Stages a quarantined input failed at (the index's "stage"). */
extern const char *const pack_stages[];
enum { ST_PARSE, ST_AUDIO, ST_CODES, ST_FRAMES, ST_TOKENIZE, ST_PACK, ST_AUGMENT, N_STAGES };

/* ---- what a packer gets and returns ------------------------------------------------------ */

/* What the job lends a packer: its inputs, read only, a token buffer to reuse, and two queries
 * the job answers (user: the job). */
typedef struct pack_ctx {
    /* the recipe, profiles, tokenizer, word-level style, --model-side, dialog timeline and
     * augmentation settings, noise clips; sentence groups: the silence codes (loaded by then) */
    const job *J;
    flm_token_buf *tb;
    /* The codec, loaded on the first call (a random Mimi warns then); 0 or < 0 (err). */
    int (*codec)(void *user, flm_mimi **mimi, flm_mimi_stream **stream, flm_error *err);
    /* Whether a sample with this id is in the dataset: in the index or in the open shard. */
    int (*sample_exists)(void *user, const char *id);
    void *user;
} pack_ctx;

/* A quarantined input, as the index records it. */
typedef struct pack_bad {
    char key[700];
    const char *path; /* its manifest (the job's string) */
    int stage;        /* ST_* */
    char msg[FLM_ERROR_MSG_SIZE + 64];
    size_t at; /* samples of the pack_out before it: the job keeps this order */
} pack_bad;

/* What packer calls return, appended; the job takes it (and empties it) after each call. */
typedef struct pack_out {
    flm_sample **samples; /* [n_samples], owned */
    size_t n_samples, cap_samples;
    pack_bad *bad; /* [n_bad] */
    size_t n_bad, cap_bad;
    /* for the summary */
    int64_t utts, sentences, conv_sides;
    double t_decode, t_encode, t_read, t_tokenize, t_pack, t_augment;
} pack_out;

/* A manifest's line as the job hands it to a packer. */
typedef struct pack_line {
    const char *file; /* the manifest */
    const char *dir;  /* its directory: relative paths start there */
    const char *key;  /* the line's input key (what a quarantine records) */
    const char *text; /* the line, without its newline */
    size_t len;
    int64_t line_no; /* 1-based */
} pack_line;

/* Appends a sample (owned from now on: destroyed on failure) to o. 0 or FLM_ENOMEM (err). */
static inline int pack_out_sample(pack_out *o, flm_sample *s, flm_error *err)
{
    if (flm_grow((void **)&o->samples, &o->cap_samples, o->n_samples + 1, sizeof *o->samples) < 0) {
        flm_sample_destroy(&s);
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    }
    o->samples[o->n_samples++] = s;
    return 0;
}

/* Appends a quarantined input to o. 0 or FLM_ENOMEM (err; msg may be err->msg). */
static inline int pack_out_quarantine(pack_out *o, const char *key, const char *path, int stage,
                                      const char *msg, flm_error *err)
{
    if (flm_grow((void **)&o->bad, &o->cap_bad, o->n_bad + 1, sizeof *o->bad) < 0)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    pack_bad *b = &o->bad[o->n_bad++];
    snprintf(b->key, sizeof b->key, "%s", key);
    snprintf(b->msg, sizeof b->msg, "%s", msg);
    b->path = path;
    b->stage = stage;
    b->at = o->n_samples;
    return 0;
}

/* The last component of a path (manifest names in keys). */
static inline const char *pack_base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---- pack_job.c ----------------------------------------------------------------------------- */

/* The codec, loaded on first use: --codec, or a seeded random Mimi (with a warning). */
int pack_load_codec(job *J, flm_error *err);
/* The silence codes: --silence-codes, or computed with the codec (loaded then). */
int pack_silence(job *J, flm_error *err);
/* Runs the job over J's manifests; *n_bad: inputs quarantined. 0 or -1 (message printed). */
int pack_run(job *J, int64_t *n_bad);
void pack_free_names(job *J);

/* ---- pack_config.c -------------------------------------------------------------------------- */

/* Builds J->config and J->fingerprint from the recipe, tokenizer, codec, silence codes, noise. */
int pack_config_build(job *J, const char *tok_path, const char *noise, flm_error *err);
/* The differences of two configurations in words ("recipe seed: 3 was packed, 99 given; ..."),
 * into out; returns how many. */
int pack_config_diff(const char *was, const char *now, char *out, size_t size);
/* The configuration recorded by a run of J's index (caller frees), or NULL. */
char *pack_config_of_run(job *J, int64_t run_id);
/* Refuses (-1, message printed) a dataset whose runs used another codec or tokenizer. */
int pack_config_check_dataset(job *J);

/* ---- the packers --------------------------------------------------------------------------
 * Each returns 0 with what it packed and quarantined appended to out, or < 0 with the error in
 * its last argument: the job stops (out may hold what came before, which the job still takes). */

/* pack_sentences.c: one group's utterances, packed when the group is complete (the job has
 * loaded the silence codes). sample_base: the group's part of its sample ids. */
typedef struct sentence_group sentence_group;
sentence_group *sentence_group_new(void);
void sentence_group_free(sentence_group *G);
int sentence_line(const pack_ctx *X, sentence_group *G, const pack_line *L, pack_out *out,
                  flm_error *fatal);
int sentence_group_pack(const pack_ctx *X, sentence_group *G, const char *file,
                        const char *sample_base, pack_out *out, flm_error *err);

/* pack_dialog.c: one dialog line -> one sample, or the line quarantined. */
int dialog_line(const pack_ctx *X, const pack_line *L, pack_out *out, flm_error *fatal);

/* pack_conversation.c: lines are held until the recording changes (or the group ends:
 * conversation_pack), then the conversation is packed: all its samples, or it is quarantined
 * (keyed by its first line). A line may also be quarantined itself. */
typedef struct conversation conversation;
conversation *conversation_new(void);
void conversation_free(conversation *C);
/* The held conversation's audio path (NULL when none is held). */
const char *conversation_audio(const conversation *C);
int conversation_line(const pack_ctx *X, conversation *C, const pack_line *L, pack_out *out,
                      flm_error *fatal);
int conversation_pack(const pack_ctx *X, conversation *C, pack_out *out, flm_error *fatal);

#endif
