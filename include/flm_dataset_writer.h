/* flm_dataset_writer.h - the write side of a dataset, twin of flm_dataset.h: samples in, shards
 * out, each shard registered in the index together with the inputs it completes, in one
 * transaction, so a dataset never holds a shard the index does not know or an input marked done
 * whose samples are not in a registered shard.
 *
 *     flm_index *idx;                                         // the dataset's, opened for writing
 *     int64_t run;                                            // flm_index_begin_run
 *     flm_dataset_writer *w = NULL;
 *     flm_dataset_writer_open(&w, "ds", idx, run, &shard_params, &err);
 *     flm_dataset_writer_add(w, sample, &err);                // owned by w from now on
 *     flm_dataset_writer_complete(w, "pack:a.jsonl:1+8:...", "/data/a.jsonl", &err);
 *     if (flm_dataset_writer_pending(w) >= 256)
 *         flm_dataset_writer_flush(w, &err);                  // finish the shard, register it
 *     flm_dataset_writer_flush(w, &err);                      // the last one
 *     flm_dataset_writer_close(&w);
 *
 * Shards are DIR/shards/NNNNNN.flms, numbered from the first number no shard of the index has.
 * A writer thread compresses and appends each added sample while the caller prepares the next;
 * flush waits for it. Closing without a flush drops the open shard (its temporary file is
 * removed; nothing of it reaches the index): a job that stops resumes from its last flush.
 * The caller holds the dataset's lock (flm_lock.h) and keeps idx open while w lives.
 * Not thread-safe: one thread calls add, complete, has, flush (the writer thread is internal).
 */
#ifndef FLM_DATASET_WRITER_H
#define FLM_DATASET_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_index.h"
#include "flm_shard.h"
#include "flm_stream.h"

typedef struct flm_dataset_writer flm_dataset_writer;

typedef struct flm_dataset_writer_stats {
    int64_t shards;    /* shards registered */
    int64_t samples;   /* samples in them */
    double t_compress; /* seconds the writer thread spent compressing and appending */
    double t_register; /* seconds spent finishing shards and registering them */
} flm_dataset_writer_stats;

FLM_API int flm_dataset_writer_open(flm_dataset_writer **out, const char *dir, flm_index *idx,
                                    int64_t run, const flm_shard_params *params, flm_error *err);
/* Takes s (destroyed on failure too). A failure of the writer thread on an earlier sample is
 * returned here or by flush. */
FLM_API int flm_dataset_writer_add(flm_dataset_writer *w, flm_sample *s, flm_error *err);
/* An input (key, and the path of the file it comes from, or NULL) that the open shard completes:
 * marked done when the shard is registered (or by a flush without samples). */
FLM_API int flm_dataset_writer_complete(flm_dataset_writer *w, const char *key, const char *path,
                                        flm_error *err);
/* Samples in the open shard. */
FLM_API size_t flm_dataset_writer_pending(const flm_dataset_writer *w);
/* Whether the open shard holds a sample with this id. */
FLM_API int flm_dataset_writer_has(flm_dataset_writer *w, const char *id);
/* Finishes the open shard and registers it with its completed inputs (or only the inputs, when
 * it has no sample). */
FLM_API int flm_dataset_writer_flush(flm_dataset_writer *w, flm_error *err);
FLM_API flm_dataset_writer_stats flm_dataset_writer_get_stats(const flm_dataset_writer *w);
FLM_API void flm_dataset_writer_close(flm_dataset_writer **w);

#endif
