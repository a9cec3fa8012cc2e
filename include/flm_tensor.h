/* flm_tensor.h - element types and shaped views over memory the caller owns.
 *
 *     float w[4 * 3];
 *     flm_tensor t = flm_tensor_view(FLM_DTYPE_F32, w, 2, (int64_t[]){4, 3});
 *     int64_t n = flm_tensor_numel(&t);                       // 12
 *     uint16_t h[12]; flm_f32_to_bf16(w, h, 12);               // storage conversions
 *     float back[12]; flm_bf16_to_f32(h, back, 12);
 *
 * Ownership: a flm_tensor never owns its data; it is a (dtype, shape, pointer) triple. Compute
 * runs in float32; bf16/f16 are storage formats converted to f32 when weights are loaded.
 */
#ifndef FLM_TENSOR_H
#define FLM_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"

#define FLM_TENSOR_MAX_DIM 8

typedef enum flm_dtype {
    FLM_DTYPE_F32 = 0,
    FLM_DTYPE_F16,
    FLM_DTYPE_BF16,
    FLM_DTYPE_F64,
    FLM_DTYPE_I64,
    FLM_DTYPE_I32,
    FLM_DTYPE_I16,
    FLM_DTYPE_I8,
    FLM_DTYPE_U8,
    FLM_DTYPE_BOOL,
    FLM_DTYPE_COUNT
} flm_dtype;

typedef struct flm_tensor {
    flm_dtype dtype;
    int n_dim;
    int64_t shape[FLM_TENSOR_MAX_DIM]; /* outermost first (row-major) */
    void *data;                        /* not owned */
} flm_tensor;

/* Bytes per element (0 for an unknown dtype). */
FLM_API size_t flm_dtype_size(flm_dtype t);
/* safetensors spelling ("F32", "BF16", ...); NULL for an unknown dtype. */
FLM_API const char *flm_dtype_name(flm_dtype t);
/* Parses a safetensors dtype name; -1 if unknown. */
FLM_API int flm_dtype_parse(const char *name);

FLM_API flm_tensor flm_tensor_view(flm_dtype dtype, void *data, int n_dim, const int64_t *shape);
/* Product of the shape (1 for n_dim == 0); -1 on overflow of int64 or a negative dimension. */
FLM_API int64_t flm_tensor_numel(const flm_tensor *t);
/* Writes "[a, b, c]" into buf (always NUL-terminated). */
FLM_API void flm_shape_format(char *buf, size_t size, int n_dim, const int64_t *shape);

/* Storage conversions. bf16 -> f32 is exact (bits << 16); f32 -> bf16/f16 round to nearest even
 * (NaN stays NaN, overflow of f16 gives inf). */
FLM_API void flm_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
FLM_API void flm_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
FLM_API void flm_f16_to_f32(const uint16_t *src, float *dst, size_t n);
FLM_API void flm_f32_to_f16(const float *src, uint16_t *dst, size_t n);
/* Converts n little-endian elements of a floating dtype (F32, F16, BF16, F64) to f32; src may be
 * unaligned. Returns FLM_EINVAL for other dtypes. */
FLM_API int flm_convert_to_f32(flm_dtype dtype, const void *src, float *dst, size_t n);

#endif
