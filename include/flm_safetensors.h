/* flm_safetensors.h - reading (and writing) safetensors checkpoints, single file or sharded.
 *
 *     flm_safetensors *st = NULL;
 *     flm_error err = {0};
 *     // a sharded checkpoint's index, or one .safetensors file
 *     if (flm_safetensors_open(&st, "model.safetensors.index.json", &err) < 0)
 *         return fprintf(stderr, "%s\n", err.msg), 1;
 *     float *w = flm_malloc(512 * 512 * 4 * sizeof *w);
 *     int64_t shape[] = {512, 512, 4};
 *     if (flm_safetensors_read_f32(st, "downsample.conv.conv.conv.weight", 3, shape, w, &err) < 0)
 *         ...;   // "ckpt.safetensors: tensor 'downsample...': shape [512, 512, 2] in file,
 *                //  expected [512, 512, 4]"
 *     flm_safetensors_close(&st);
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the
 * data section; offsets are relative to its first byte. A sharded checkpoint is an index JSON
 * {"weight_map": {name: shard_file}} next to its shards.
 *
 * Validation at open (every error names the file and tensor): header length within the file and
 * <= 100 MB, JSON object, known dtype, 0..8 non-negative dimensions, begin <= end <= data size,
 * end - begin == product(shape) * dtype size (overflow-checked), no two tensors overlapping, no
 * duplicate names (also across shards), every index entry present in the shard it names; each
 * file a regular file (flm_open_regular: a FIFO is refused, not waited on). The values are
 * checked by the model loaders, tensor by tensor (flm_safetensors_check_finite).
 *
 * Memory: files are mmap'd read-only for parsing; flm_safetensors_read_f32 copies (and converts
 * to f32) into memory the caller owns. Compute uses such copies by default: DESIGN 8 saw compute
 * over mapped weights erratic and much slower on these machines. Computing from the mapping
 * (flm_st_info.data, kept valid by an open handle) is an option of the LM loader
 * (FLM_LM_LOAD_MAPPED), benchmarked against the copy in bench/RESULTS.md.
 * Ownership: the handle owns the mappings, names and infos; pointers returned by find/at stay
 * valid until close. flm_safetensors_open_memory does not copy: buf must outlive the handle.
 */
#ifndef FLM_SAFETENSORS_H
#define FLM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_tensor.h"

typedef struct flm_safetensors flm_safetensors;

typedef struct flm_st_info {
    const char *name;
    flm_dtype dtype;
    int n_dim;
    int64_t shape[FLM_TENSOR_MAX_DIM];
    uint64_t offset, size; /* byte range within the data section of its file */
    const void *data;      /* into the mapping; may be unaligned */
    const char *file;      /* the file it lives in (for messages) */
} flm_st_info;

/* path: a .safetensors file, a model.safetensors.index.json, or a directory holding either. */
FLM_API int flm_safetensors_open(flm_safetensors **out, const char *path, flm_error *err);
/* Parses a safetensors image in memory; label names it in messages. */
FLM_API int flm_safetensors_open_memory(flm_safetensors **out, const void *buf, size_t size,
                                        const char *label, flm_error *err);
FLM_API void flm_safetensors_close(flm_safetensors **st);

FLM_API int flm_safetensors_count(const flm_safetensors *st);
FLM_API const flm_st_info *flm_safetensors_at(const flm_safetensors *st,
                                              int i); /* sorted by name */
FLM_API const flm_st_info *flm_safetensors_find(const flm_safetensors *st, const char *name);
/* Finds name and checks its shape: FLM_ENOTFOUND / FLM_EMISMATCH with both shapes in err. */
FLM_API int flm_safetensors_check(const flm_safetensors *st, const char *name, int n_dim,
                                  const int64_t *shape, const flm_st_info **info, flm_error *err);
/* check + copy into dst (numel floats), converting F32/F16/BF16/F64 to f32. */
FLM_API int flm_safetensors_read_f32(const flm_safetensors *st, const char *name, int n_dim,
                                     const int64_t *shape, float *dst, flm_error *err);

/* Checks that every value of a floating-point tensor (F32, F16, BF16, F64) is finite, on the
 * stored bytes: a NaN or infinite weight makes a model compute garbage without any error (a
 * Mimi with NaN weights encodes every frame to code 0). Model loaders call it on every tensor
 * they use, copied or mapped (quantized codes are integers; their F32 scales are checked).
 * FLM_ECORRUPT naming the file, the tensor and the first bad element ("tensor 'x': NaN at
 * [3, 0, 5]"); 0 for integer tensors. */
FLM_API int flm_safetensors_check_finite(const flm_st_info *info, flm_error *err);

/* Tells the kernel the mapped pages of this tensor are no longer needed (after copying it), so
 * they stop counting towards the process's resident memory; the data stays readable (it is
 * paged in again from the file). No effect on in-memory images. */
FLM_API void flm_safetensors_release(const flm_safetensors *st, const flm_st_info *info);

/* --- writing --- */

typedef struct flm_st_entry {
    const char *name;
    flm_dtype dtype;
    int n_dim;
    int64_t shape[FLM_TENSOR_MAX_DIM];
    const void *data; /* numel * dtype size bytes, little-endian */
} flm_st_entry;

/* Serialises entries (in the given order) into a new buffer (*out, caller frees with flm_free). */
FLM_API int flm_safetensors_write_memory(const flm_st_entry *e, int n, uint8_t **out, size_t *size,
                                         flm_error *err);
/* Writes a file atomically (temporary file + rename). */
FLM_API int flm_safetensors_write(const char *path, const flm_st_entry *e, int n, flm_error *err);

#endif
