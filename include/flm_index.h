/* flm_index.h - the SQLite catalog of a dataset (schema: the SQL files in schemas/index/).
 *
 * A dataset is a directory: DATASET/index.sqlite and DATASET/shards/NNNNNN.flms. Shard paths in the
 * index are relative to the index's directory.
 *
 *     flm_index *idx = NULL;
 *     flm_index_open(&idx, "out/index.sqlite", FLM_INDEX_CREATE, &err);   // migrates if older
 *     int64_t run;
 *     flm_index_begin_run(idx, "flm demo", recipe_json, seed, &profiles, &run, &err);
 *     // after flm_shard_writer_finish():
 *     flm_index_add_shard(idx, run, "shards/000000.flms", file_size, samples, infos, n,
 *                         done_keys, n_done, &err);      // one transaction
 *     flm_index_close(&idx);
 *
 * Every write is one transaction; the database runs in WAL mode. A handle is for one thread.
 */
#ifndef FLM_INDEX_H
#define FLM_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_profile.h"
#include "flm_shard.h"
#include "flm_stream.h"

#define FLM_INDEX_FILE "index.sqlite"
#define FLM_SHARDS_DIR "shards"

enum { FLM_INDEX_READONLY = 1, FLM_INDEX_CREATE = 2 };

typedef struct flm_index flm_index;

/* path: an index file or a dataset directory (then DIR/index.sqlite). */
FLM_API int flm_index_open(flm_index **idx, const char *path, int flags, flm_error *err);
FLM_API void flm_index_close(flm_index **idx);
/* Directory the index lives in (shard paths are relative to it). */
FLM_API const char *flm_index_dir(const flm_index *idx);
FLM_API const char *flm_index_path(const flm_index *idx);
/* PRAGMA user_version after migration, and the newest version this build knows. */
FLM_API int flm_index_schema_version(flm_index *idx);
FLM_API int flm_index_latest_schema_version(void);

FLM_API int flm_index_begin_run(flm_index *idx, const char *command, const char *recipe_json,
                                int64_t seed, const flm_profiles *profiles, int64_t *run_id,
                                flm_error *err);
/* Run configuration (docs/index.md, "Pinned configuration"): a JSON object naming everything
 * that decides the bytes of the run's samples; its member "files" (where things came from) is
 * not part of the fingerprint, and the text members named in FLM_INDEX_IDENTITIES must be the
 * same in every run of a dataset. The fingerprint is the XXH3-64 (16 hex digits) of the
 * canonical JSON (keys sorted, compact) without "files"; each input a run marks done records it. */
#define FLM_INDEX_IDENTITIES                                                                       \
    {                                                                                              \
        "codec", "tokenizer"                                                                       \
    }
FLM_API int flm_index_config_fingerprint(const char *config_json, char out[17], flm_error *err);
FLM_API int flm_index_set_run_config(flm_index *idx, int64_t run_id, const char *config_json,
                                     flm_error *err);
/* One callback per run in id order; config NULL for runs without one (older versions, demos). */
typedef void (*flm_index_run_fn)(void *user, int64_t run_id, const char *command,
                                 const char *config_json);
FLM_API int flm_index_list_runs(flm_index *idx, flm_index_run_fn fn, void *user, flm_error *err);
/* The value of a config member ("codec", "tokenizer") shared by all runs that record it: "" when
 * none does; FLM_EMISMATCH naming two runs when they disagree. */
FLM_API int flm_index_identity(flm_index *idx, const char *member, char *value, size_t size,
                               flm_error *err);

/* The first shard number n whose name FLM_SHARDS_DIR/NNNNNN.flms no shard of the index has
 * (flm_dataset_writer names its shards from there). */
FLM_API int flm_index_next_shard(flm_index *idx, int64_t *n, flm_error *err);

/* Registers a finished shard, its samples (in record order, infos from the writer) and marks
 * the given inputs done (done_paths: the file each came from, or NULL), all in one transaction;
 * the run's sample count grows by n. rel_path NULL with n 0 only marks the inputs done (work
 * that produced no sample). */
FLM_API int flm_index_add_shard(flm_index *idx, int64_t run_id, const char *rel_path,
                                uint64_t file_size, const flm_sample *const *samples,
                                const flm_record_info *infos, size_t n,
                                const char *const *done_inputs, const char *const *done_paths,
                                size_t n_done, flm_error *err);
/* Records a bad input with the stage that failed and the error; the job goes on. */
FLM_API int flm_index_quarantine(flm_index *idx, int64_t run_id, const char *key, const char *path,
                                 const char *stage, const char *error, flm_error *err);
/* Status of an input: 0 unknown, 1 done, 2 quarantined. */
FLM_API int flm_index_input_status(flm_index *idx, const char *key, flm_error *err);
/* An input's record (status 0 when unknown); fingerprint and path "" when not recorded. */
typedef struct flm_index_input {
    int status; /* 0 unknown, 1 done, 2 quarantined */
    int64_t run_id;
    char fingerprint[17];
    char path[4096];
} flm_index_input;
FLM_API int flm_index_input_info(flm_index *idx, const char *key, flm_index_input *info,
                                 flm_error *err);
/* The first done input whose key starts with prefix (copied into key): 1, or 0 when none. */
FLM_API int flm_index_find_done(flm_index *idx, const char *prefix, char *key, size_t size,
                                flm_error *err);

/* Finds a sample by key: shard path (absolute or relative to the cwd; caller frees with
 * flm_free) and record number. FLM_ENOTFOUND if absent. */
FLM_API int flm_index_locate(flm_index *idx, const char *sample_key, char **shard_path,
                             uint64_t *record, flm_error *err);
/* Number of samples in the index. */
FLM_API int64_t flm_index_count_samples(flm_index *idx, flm_error *err);
/* The catalog in id order, for readers that load it whole (flm_dataset): every shard (id, path
 * relative to the index's directory), every sample (key, its shard's id, record, corpus or "",
 * frames). A callback returns 0 to go on or < 0 to stop, which is returned. */
typedef int (*flm_index_shard_fn)(void *user, int64_t id, const char *path);
FLM_API int flm_index_each_shard(flm_index *idx, flm_index_shard_fn fn, void *user, flm_error *err);
typedef int (*flm_index_sample_fn)(void *user, const char *key, int64_t shard_id, int64_t record,
                                   const char *corpus, int64_t n_frames);
FLM_API int flm_index_each_sample(flm_index *idx, flm_index_sample_fn fn, void *user,
                                  flm_error *err);

/* Aggregates: one callback per group value ("corpus", "language", "style" or "stage"; NULL for
 * the total), with sample count, frames and hours of content. */
typedef void (*flm_index_stats_fn)(void *user, const char *group, int64_t n_samples,
                                   int64_t n_frames, double hours);
FLM_API int flm_index_stats(flm_index *idx, const char *group_by, flm_index_stats_fn fn, void *user,
                            flm_error *err);
/* SFT dialog and augmentation figures (DESIGN 3.5, 5), from the samples' "dialog.*" and
 * "aug.*" metadata and the events table (include/flm_dialog.h, include/flm_augment.h).
 * Durations in seconds use each sample's own seconds per frame (duration_s / n_frames). */
#define FLM_INDEX_MAX_REACTIONS 16
typedef struct flm_index_dialog_report {
    int64_t n_dialogs;        /* samples with "dialog.turns" */
    int64_t n_eligible;       /* model turns followed by a user turn, in free-input samples */
    int64_t n_interrupts;     /* "interrupt" events */
    int64_t n_backchannels;   /* "backchannel" events */
    int64_t n_cuts;           /* "cut" events */
    int64_t n_overlaps;       /* "overlap" events (recorded conversations) */
    int64_t n_dropped_tokens; /* sum of "dialog.dropped_tokens" */
    double interruption_rate; /* (interrupts + backchannels) / eligible; 0 without eligible turns */
    double mean_overlap_s;    /* over interrupt and backchannel events */
    int32_t n_reactions;      /* distinct reaction delays (the first FLM_INDEX_MAX_REACTIONS) */
    double reaction_s[FLM_INDEX_MAX_REACTIONS];      /* ascending */
    int64_t reaction_count[FLM_INDEX_MAX_REACTIONS]; /* interrupt events with that delay */
    int64_t n_augmented;                             /* samples with "aug.noise" metadata */
    int64_t n_noise, n_gain, n_echo;          /* of those, with noise / gain / echo applied */
    double mean_echo_gain, mean_echo_delay_s; /* over samples with echo */
} flm_index_dialog_report;
FLM_API int flm_index_dialog_stats(flm_index *idx, flm_index_dialog_report *out, flm_error *err);

/* Quarantined inputs: one callback per input. */
typedef void (*flm_index_quarantine_fn)(void *user, const char *key, const char *path,
                                        const char *stage, const char *error);
FLM_API int flm_index_list_quarantine(flm_index *idx, flm_index_quarantine_fn fn, void *user,
                                      flm_error *err);

/* Runs a read-only SQL query (one statement) on the index; fn gets each row as text (NULL for
 * SQL NULL). For reports and `flm index query`. Writes are refused. */
typedef void (*flm_index_row_fn)(void *user, int n_cols, const char *const *names,
                                 const char *const *values);
FLM_API int flm_index_query(flm_index *idx, const char *sql, flm_index_row_fn fn, void *user,
                            flm_error *err);

/* Consistency check of index against shards. Each problem is reported through fn (severity 1 =
 * error, 0 = note such as a leftover temporary file); *n_errors counts errors. The check reads
 * and verifies every record of every shard. progress (optional) is called after each shard. */
typedef void (*flm_index_problem_fn)(void *user, int severity, const char *message);
typedef void (*flm_index_progress_fn)(void *user, int64_t done, int64_t total);
FLM_API int flm_index_check(flm_index *idx, flm_index_problem_fn fn, flm_index_progress_fn progress,
                            void *user, int64_t *n_errors, flm_error *err);

/* Merges the indexes of independent jobs into a new index at out_path, under the lock of its
 * directory (flm_lock.h). The merged index is built under a temporary name and renamed into
 * place when complete, so a merge stopped at any moment leaves no index under out_path and
 * can simply be run again; it records the merge (the inputs, their sample count) in the table
 * "merges", which flm_index_check compares with what the index holds. Shard paths are rewritten
 * relative to out_path's directory. Fails, naming the key, if two inputs hold the same sample
 * key or the same shard file, and before writing anything if the inputs were packed with
 * different codecs or tokenizers (FLM_INDEX_IDENTITIES). out_path must not exist unless flags
 * has FLM_INDEX_MERGE_REPLACE (then the old index stays in place until the new one replaces
 * it). */
enum { FLM_INDEX_MERGE_REPLACE = 1 };
FLM_API int flm_index_merge(const char *out_path, const char *const *inputs, size_t n_inputs,
                            int flags, flm_error *err);

/* Resolves an index argument (file or dataset directory) to the index file path. Caller frees. */
FLM_API char *flm_index_resolve_path(const char *arg);

#endif
