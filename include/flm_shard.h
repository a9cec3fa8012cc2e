/* flm_shard.h - seekable zstd shards of samples (format: docs/shard-format.md).
 *
 * Writing (crash-safe: the file appears under its final name only when complete):
 *
 *     flm_shard_params sp = flm_shard_default_params(&profiles);
 *     flm_shard_writer *w = NULL;
 *     if (flm_shard_writer_create(&w, "out/shards/000001.flms", &sp, &err) < 0) goto fail;
 *     for (...) flm_shard_writer_add(w, sample, &rec, &err);    // rec: offset, sizes, checksum
 *     flm_shard_writer_finish(w, &err);       // seek table, footer, fsync, rename, fsync dir
 *     flm_shard_writer_destroy(&w);           // unfinished: the temporary file is removed
 *
 * Reading (any record without touching the others; every read verifies its checksums):
 *
 *     flm_shard_reader *r = NULL;
 *     flm_shard_reader_open(&r, "out/shards/000001.flms", &err);
 *     for (uint64_t i = 0; i < flm_shard_reader_count(r); i++) {
 *         flm_record_view v;
 *         if (flm_shard_reader_view(r, i, &v, &err) < 0) ...   // zero-copy into r's buffer
 *         use(v.tokens, v.n_frames);                             // valid until the next read
 *     }
 *     flm_shard_reader_close(&r);
 *
 * Handles are not thread-safe; use one reader per thread (opening is cheap: header, footer and
 * seek table are read once). Records are little-endian on disk; the zero-copy view assumes a
 * little-endian host.
 */
#ifndef FLM_SHARD_H
#define FLM_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_profile.h"
#include "flm_stream.h"

#define FLM_SHARD_FORMAT_VERSION 1
#define FLM_RECORD_VERSION 1
#define FLM_SHARD_MAGIC "FLMSHARD"
#define FLM_SHARD_FOOTER_MAGIC "FLMSEEK"
#define FLM_SHARD_SCHEMA "flm.sample/1"
#define FLM_SHARD_SUFFIX ".flms"

typedef struct flm_shard_params {
    int zstd_level;      /* default 3 */
    uint64_t vocab_hash; /* profile hashes recorded in the header */
    uint64_t codec_hash;
    uint64_t model_hash;
} flm_shard_params;

/* Where one record lives and what it hashes to (also what the index stores). */
typedef struct flm_record_info {
    uint64_t offset; /* byte offset of the compressed record in the shard */
    uint32_t csize;  /* compressed size */
    uint32_t usize;  /* uncompressed (record) size */
    uint32_t n_frames;
    uint64_t ccheck; /* XXH3-64 of the compressed bytes */
    uint64_t ucheck; /* XXH3-64 of the uncompressed record: the sample's content hash */
} flm_record_info;

typedef struct flm_shard_header {
    uint32_t format_version;
    uint32_t record_version;
    uint32_t n_channels;
    uint64_t vocab_hash, codec_hash, model_hash;
    char schema[64];
} flm_shard_header;

FLM_API flm_shard_params flm_shard_default_params(const flm_profiles *profiles);

typedef struct flm_shard_writer flm_shard_writer;

/* Removes the temporary files killed writers left in dir (call before writing into a dataset
 * directory that has one writer: a job resuming). Returns how many were removed. */
FLM_API int flm_shard_remove_leftovers(const char *dir);
/* Creates "<path>.tmp-<pid>-<n>" beside path; nothing exists under path until finish. */
FLM_API int flm_shard_writer_create(flm_shard_writer **w, const char *path,
                                    const flm_shard_params *params, flm_error *err);
/* Encodes, compresses and appends one sample. info (optional) receives its record info. */
FLM_API int flm_shard_writer_add(flm_shard_writer *w, const flm_sample *s, flm_record_info *info,
                                 flm_error *err);
FLM_API uint64_t flm_shard_writer_count(const flm_shard_writer *w);
/* Bytes written so far (header + records). */
FLM_API uint64_t flm_shard_writer_size(const flm_shard_writer *w);
/* Writes the seek table and footer, fsyncs, renames to the final path and fsyncs the directory.
 * After a failure the temporary file is removed by destroy. */
FLM_API int flm_shard_writer_finish(flm_shard_writer *w, flm_error *err);
FLM_API void flm_shard_writer_destroy(flm_shard_writer **w);

typedef struct flm_shard_reader flm_shard_reader;

/* Zero-copy view of one decoded record; pointers into the reader's buffer, valid until the next
 * read on the same reader. Strings are NUL-terminated (NULL when absent). */
typedef struct flm_record_view {
    uint32_t n_frames;
    const int32_t *tokens;     /* [FLM_N_CHANNELS][n_frames] */
    const uint8_t *loss_class; /* [FLM_N_CHANNELS][n_frames] */
    double duration_s;
    const char *id, *style, *stage, *language, *corpus, *speakers;
    uint32_t n_meta, n_events;
    const uint8_t *meta_bytes, *event_bytes; /* encoded; decode with flm_shard_reader_read */
    size_t meta_size, event_size;
} flm_record_view;

FLM_API int flm_shard_reader_open(flm_shard_reader **r, const char *path, flm_error *err);
FLM_API void flm_shard_reader_close(flm_shard_reader **r);
FLM_API uint64_t flm_shard_reader_count(const flm_shard_reader *r);
FLM_API const flm_shard_header *flm_shard_reader_header(const flm_shard_reader *r);
FLM_API const flm_record_info *flm_shard_reader_info(const flm_shard_reader *r, uint64_t i);
FLM_API const char *flm_shard_reader_path(const flm_shard_reader *r);
/* Size in bytes of the shard file. */
FLM_API uint64_t flm_shard_reader_file_size(const flm_shard_reader *r);
/* Reads, verifies (both checksums) and decodes record i. */
FLM_API int flm_shard_reader_view(flm_shard_reader *r, uint64_t i, flm_record_view *v,
                                  flm_error *err);
/* Like view, then copies into a new owned sample (*out, destroy with flm_sample_destroy). */
FLM_API int flm_shard_reader_read(flm_shard_reader *r, uint64_t i, flm_sample **out,
                                  flm_error *err);
/* Reads and verifies record i without decoding it: the raw record bytes (reader-owned). */
FLM_API int flm_shard_reader_raw(flm_shard_reader *r, uint64_t i, const uint8_t **data,
                                 size_t *size, flm_error *err);

/* Record codec (exposed for tests, fuzzing and tools). encode appends to a growable buffer. */
FLM_API int flm_record_encode(const flm_sample *s, uint8_t **buf, size_t *size, size_t *cap,
                              flm_error *err);
FLM_API int flm_record_decode(const uint8_t *buf, size_t size, flm_record_view *v, flm_error *err);
FLM_API int flm_record_to_sample(const flm_record_view *v, flm_sample **out, flm_error *err);

#endif
