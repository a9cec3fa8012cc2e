/* pack.h - the flm pack job (docs/pack.md, docs/dialogs.md), in four files:
 *   cmd_pack.c        the command line: options, recipe kind, dataset directories, MPI
 *   pack_job.c        manifests -> groups, resume, ranks, quarantine, retries, the summary; the
 *                     shards are libstream's flm_dataset_writer's
 *   pack_sentences.c  post-training: utterances -> codes, tokens, TTS/ASR samples per group
 *   pack_dialog.c     fine-tuning: one dialog line -> rendered, augmented, encoded, one sample
 *   pack_conversation.c  fine-tuning: one two-channel recording's lines -> samples per model side
 * Groups depend only on the manifests (never on the number of ranks or on what failed), and every
 * random draw is keyed by (seed, sample id, purpose), so any split of the groups across ranks
 * gives the same samples. */
#ifndef FLM_BIN_PACK_H
#define FLM_BIN_PACK_H

#include <stdint.h>

#include "cli.h"
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
#define PACK_FORMAT_VERSION 1
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

/* pack_job.c */
const char *pack_base_name(const char *path);
/* Records a bad input in the index (key, its manifest, the stage, the reason); the job goes on. */
int pack_quarantine(job *J, const char *key, const char *path, int stage, const char *msg);
/* The codec, loaded on first use: --codec, or a seeded random Mimi (with a warning). */
int pack_load_codec(job *J, flm_error *err);
/* The silence codes: --silence-codes, or computed with the codec (loaded then). */
int pack_silence(job *J, flm_error *err);
/* Whether a sample with this id is in the index or in the shard being written. */
int pack_sample_exists(job *J, const char *id);
/* Hands a packed sample (owned from now on) to the dataset writer. */
int pack_add_sample(job *J, flm_sample *s, flm_error *err);
/* Runs the job over J's manifests; *n_bad: inputs quarantined. 0 or -1 (message printed). */
int pack_run(job *J, int64_t *n_bad);
void pack_free_names(job *J);

/* pack_config.c */
/* Builds J->config and J->fingerprint from the recipe, tokenizer, codec, silence codes, noise. */
int pack_config_build(job *J, const char *tok_path, const char *noise, flm_error *err);
/* The differences of two configurations in words ("recipe seed: 3 was packed, 99 given; ..."),
 * into out; returns how many. */
int pack_config_diff(const char *was, const char *now, char *out, size_t size);
/* The configuration recorded by a run of J's index (caller frees), or NULL. */
char *pack_config_of_run(job *J, int64_t run_id);
/* Refuses (-1, message printed) a dataset whose runs used another codec or tokenizer. */
int pack_config_check_dataset(job *J);

/* pack_sentences.c: one group's utterances, packed when the group is complete. Lines return 0,
 * 1 (quarantined) or < 0 (the job stops). */
typedef struct sentence_group sentence_group;
sentence_group *sentence_group_new(void);
void sentence_group_free(sentence_group *G);
int sentence_line(job *J, sentence_group *G, const char *file, const char *key, const char *line,
                  size_t len, int64_t line_no, const char *dir);
int sentence_group_pack(job *J, sentence_group *G, const char *file, const char *sample_base,
                        flm_error *err);

/* pack_dialog.c: one dialog line -> one sample. Returns 0, 1 (quarantined) or < 0. */
int dialog_line(job *J, const char *file, const char *key, const char *line, size_t len,
                int64_t line_no, const char *dir);

/* pack_conversation.c: lines are held until the recording changes (or the group ends:
 * conversation_pack), then the conversation is packed. Both return 0, 1 (quarantined: the line,
 * or the previous conversation) or < 0. */
typedef struct conversation conversation;
conversation *conversation_new(void);
void conversation_free(conversation *C);
/* The held conversation's audio path (NULL when none is held). */
const char *conversation_audio(const conversation *C);
int conversation_line(job *J, conversation *C, const char *file, const char *key, const char *line,
                      size_t len, int64_t line_no, const char *dir);
int conversation_pack(job *J, conversation *C);

#endif
