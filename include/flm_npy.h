/* flm_npy.h - code arrays as NumPy .npy files (the format `flm codec encode` writes and `flm pack`
 * reads as precomputed codes).
 *
 *     int32_t *codes; int32_t n_q; int64_t n_frames;
 *     if (flm_npy_read_codes("utt7.npy", &codes, &n_q, &n_frames, &err) < 0) ...  // [n_q][T]
 *     flm_free(codes);
 *     flm_npy_write_codes("out.npy", codes, n_q, n_frames, &err);
 *
 * Written: NumPy format 1.0, '<i4', C order, shape (n_q, n_frames). Read: format 1.0 or 2.0,
 * little-endian '<i2', '<u2', '<i4' or '<i8' (what GPU pipelines save from int16/int64 tensors),
 * C order, shape (n_q, n_frames) or (1, n_q, n_frames), 1 <= n_q <= 64; every value must fit in
 * int32. Errors name the file and what is wrong with it.
 */
#ifndef FLM_NPY_H
#define FLM_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"

/* *codes: [n_q][n_frames] codebook-major, caller frees with flm_free. */
FLM_API int flm_npy_read_codes(const char *path, int32_t **codes, int32_t *n_q, int64_t *n_frames,
                               flm_error *err);
/* The same from bytes in memory (name is used in messages). */
FLM_API int flm_npy_parse_codes(const void *data, size_t size, const char *name, int32_t **codes,
                                int32_t *n_q, int64_t *n_frames, flm_error *err);
/* Writes atomically (temporary name, then rename). */
FLM_API int flm_npy_write_codes(const char *path, const int32_t *codes, int32_t n_q,
                                int64_t n_frames, flm_error *err);

#endif
