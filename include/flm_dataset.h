/* flm_dataset.h - reading a dataset for training: random access by sample number with a cache of
 * open shards, and deterministic shuffled, weighted epochs split across ranks.
 *
 *     flm_dataset *ds = NULL;
 *     flm_dataset_open(&ds, "corpus/", &err);                 // loads the sample table once
 *     flm_epoch_params ep = flm_epoch_default_params();
 *     ep.seed = 1234; ep.epoch = 3; ep.rank = r; ep.world = 8;
 *     const char *corpora[] = {"asr-annotated", "transcribed"};
 *     double weights[] = {5.0, 0.5};
 *     ep.corpora = corpora; ep.weights = weights; ep.n_weights = 2;
 *     flm_epoch *e = NULL;
 *     flm_epoch_create(&e, ds, &ep, &err);
 *     for (int64_t k = resume_at; k < flm_epoch_size(e); k++) {
 *         flm_record_view v;
 *         flm_dataset_read(ds, flm_epoch_sample(e, k), &v, &err);   // checksums verified
 *         ...
 *     }
 *     flm_epoch_destroy(&e);
 *     flm_dataset_close(&ds);
 *
 * Memory: the sample table (key, shard, record, corpus, frames: about 70 bytes per sample) plus
 * 4 bytes per epoch entry; a 1M-sample dataset needs about 75 MB. Reads allocate nothing beyond
 * the cache of open shards. A handle is for one thread (or one worker
 * process); open one per worker.
 *
 * The epoch, precisely (everything keyed by flm_rng, so any (seed, epoch) is reproducible alone):
 *  1. Each sample i (in index order) of a corpus with weight w appears floor(w) times, plus once
 *     more with probability w - floor(w), drawn from the stream (seed, "<epoch>/<sample key>",
 *     "epoch.weight"). Corpora not listed get default_weight.
 *  2. The resulting list is shuffled by Fisher-Yates with draws from (seed, "<epoch>",
 *     "epoch.shuffle"): the global order of the epoch.
 *  3. Global position p goes to rank p mod world; rank r's k-th sample is global position
 *     start + r + k * world. The last (n - start) mod world positions are dropped so that every
 *     rank has the same count (at most world - 1 samples per epoch).
 *  start is the number of samples of this epoch already consumed by all ranks together (resume):
 *  a job resumed with a different world continues exactly after what was consumed, without
 *  overlap or replay, as long as every rank had consumed the same count (as in lockstep
 *  data-parallel training).
 */
#ifndef FLM_DATASET_H
#define FLM_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_shard.h"
#include "flm_stream.h"

typedef struct flm_dataset flm_dataset;

FLM_API int flm_dataset_open(flm_dataset **ds, const char *index_path, flm_error *err);
FLM_API void flm_dataset_close(flm_dataset **ds);
/* Samples in the index (ordered by their row id). */
FLM_API int64_t flm_dataset_count(const flm_dataset *ds);
/* Reads sample i (0-based, index order); the view is valid until the next read on ds. */
FLM_API int flm_dataset_read(flm_dataset *ds, int64_t i, flm_record_view *v, flm_error *err);
/* Shard path and record of sample i (pointer owned by ds). */
FLM_API const char *flm_dataset_location(const flm_dataset *ds, int64_t i, uint64_t *record);
/* Corpus of sample i ("" when none). */
FLM_API const char *flm_dataset_corpus(const flm_dataset *ds, int64_t i);
FLM_API int32_t flm_dataset_frames(const flm_dataset *ds, int64_t i);

typedef struct flm_epoch_params {
    uint64_t seed;
    uint64_t epoch;
    int32_t rank, world;
    int64_t start;              /* global samples of this epoch already consumed (resume) */
    const char *const *corpora; /* mixture weights per corpus name */
    const double *weights;
    size_t n_weights;
    double default_weight; /* corpora not listed (1.0) */
    int shuffle;           /* 1 (default); 0 keeps index order (for debugging) */
} flm_epoch_params;

typedef struct flm_epoch flm_epoch;

FLM_API flm_epoch_params flm_epoch_default_params(void);
FLM_API int flm_epoch_create(flm_epoch **e, const flm_dataset *ds, const flm_epoch_params *p,
                             flm_error *err);
FLM_API void flm_epoch_destroy(flm_epoch **e);
/* Samples of the whole epoch (all ranks, before the start offset and the equalizing drop). */
FLM_API int64_t flm_epoch_global_size(const flm_epoch *e);
/* Samples this rank reads from start on. */
FLM_API int64_t flm_epoch_size(const flm_epoch *e);
/* Dataset sample number of this rank's k-th sample (0 <= k < size). */
FLM_API int64_t flm_epoch_sample(const flm_epoch *e, int64_t k);
/* Global epoch position of this rank's k-th sample. */
FLM_API int64_t flm_epoch_position(const flm_epoch *e, int64_t k);

#endif
