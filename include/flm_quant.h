/* flm_quant.h - weight matrices in f32, bf16, or per-block quantized int8 / 4-bit, and the matrix
 * products over them.
 *
 *     flm_qmat w;                                              // [rows][cols] weight matrix
 *     size_t qs, ss;
 *     flm_qmat_sizes(FLM_W_Q8, rows, cols, &qs, &ss);          // bytes of codes and of scales
 *     flm_qmat_init(&w, FLM_W_Q8, rows, cols, codes_mem, scales_mem);
 *     flm_qmat_quantize(&w, src_f32);
 *     float *scr = malloc(flm_qmat_scratch_size(cols) * sizeof(float));
 *     flm_qmat_gemm(&w, T, x, lda, bias, 0.0f, y, ldc, scr);  // y[T][rows] = x w^T + bias
 *
 * Formats (row-major, blocks of FLM_QBLOCK = 32 consecutive columns of a row; a row's last
 * block may be shorter):
 *   F32  float [rows][cols];
 *   BF16 uint16 [rows][cols], the upper half of the float32 bits (round to nearest even);
 *   Q8   int8 [rows][cols] and float scales [rows][n_blocks]: x = q * scale,
 *        scale = max|x| / 127 over the block (Q8_0-like);
 *   Q4   uint8 [rows][(cols + 1) / 2], two codes per byte (low nibble = even column), code =
 *        q + 8 with q in [-7, 7], and float scales [rows][n_blocks]: scale = max|x| / 7.
 * Products: for few rows of activations (T <= 4, streaming) a direct dot-product kernel reads
 * each weight once (memory-bound: AVX-512 intrinsics with software prefetch where the CPU has
 * AVX-512 VNNI, else portable vectorisable loops), each thread one contiguous range of weight
 * rows (so that its prefetches run ahead in the rows it reads next). For Q8 and Q4 these
 * products also quantize each activation row per block of 32 columns to int8 (scale max|x| /
 * 127, rounded to nearest even) and sum integer products per block (VNNI vpdpbusd), as
 * llama.cpp does: a relative error of a few 1e-3 on the product
 * (tests/unit/test_kernels.c), so a quantized model's streaming steps differ from its
 * teacher-forced pass by that much (float32 and bf16 steps are equal to it). Otherwise (T > 4)
 * blocks of 256 weight rows are expanded to float32 in per-thread scratch (f32 is used in place)
 * and multiplied with OpenBLAS sgemm, threads taking blocks in turn; 256 activation rows per call
 * make that run at 0.9-1.0 of the sgemm rate (bench/RESULTS.md). Ownership: a flm_qmat only points
 * at memory the caller owns.
 */
#ifndef FLM_QUANT_H
#define FLM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"

#define FLM_QBLOCK 32

typedef enum flm_wtype { FLM_W_F32 = 0, FLM_W_BF16, FLM_W_Q8, FLM_W_Q4, FLM_W_COUNT } flm_wtype;

typedef struct flm_qmat {
    flm_wtype type;
    int rows, cols;
    void *q;      /* codes (layout above) */
    float *scale; /* [rows][n_blocks] for Q8 / Q4, else NULL */
} flm_qmat;

/* "f32", "bf16", "q8", "q4"; -1 for an unknown name. */
FLM_API int flm_wtype_parse(const char *name);
FLM_API const char *flm_wtype_name(flm_wtype t);
/* Bytes of codes and of scales for a [rows][cols] matrix. */
FLM_API void flm_qmat_sizes(flm_wtype t, int rows, int cols, size_t *q_size, size_t *scale_size);
FLM_API void flm_qmat_init(flm_qmat *m, flm_wtype t, int rows, int cols, void *q, float *scale);
/* Fills m from src [rows][cols] float32. */
FLM_API void flm_qmat_quantize(flm_qmat *m, const float *src);
/* Rows [r0, r0 + n) of m as a matrix of their own (a view into the same memory). */
FLM_API flm_qmat flm_qmat_slice(const flm_qmat *m, int r0, int n);
/* Row r as float32 into out [cols]. */
FLM_API void flm_qmat_row(const flm_qmat *m, int r, float *out);
/* Floats of scratch flm_qmat_gemm needs for matrices of `cols` columns (all threads). */
FLM_API size_t flm_qmat_scratch_size(int cols);
/* C[T][rows] (ldc) = beta * C + A[T][cols] (lda) * m^T + bias (bias [rows] or NULL). */
FLM_API void flm_qmat_gemm(const flm_qmat *m, int T, const float *A, int lda, const float *bias,
                           float beta, float *C, int ldc, float *scratch);
/* Tests: 0 makes the products and flm_qmat_row use the portable kernels even where the AVX-512
 * ones would run, so both are checked on an AVX-512 machine. Default 1. */
FLM_API void flm_quant_use_avx512(int enable);
/* Reference twin: every row dequantized with flm_qmat_row, double accumulation; for Q8 / Q4 with
 * T <= 4 the activations quantized to int8 as the product does. */
FLM_API void flm_qmat_gemm_ref(const flm_qmat *m, int T, const float *A, int lda, const float *bias,
                               float beta, float *C, int ldc);

#endif
