/* flm_kernels.h - float32 compute kernels of the engine, each with a plain reference twin.
 *
 *     flm_kernels_init(2);                      // 2 OpenMP threads, BLAS single-threaded
 *     flm_conv1d c = {.c_in = 64, .c_out = 128, .k = 8, .stride = 4, .dilation = 1,
 *                     .w = w_packed, .b = bias}; // w_packed: flm_conv1d_pack_weight()
 *     flm_conv1d_f32(&c, x, n_out, y);          // x: [flm_conv1d_n_in(&c, n_out)][64]
 *
 * Layout: activations are time-major, [T][C] row-major (a frame is a contiguous row), so a
 * strided convolution is one GEMM over overlapping rows and streaming appends rows. The reference
 * twins (`*_ref`) follow the PyTorch formulation instead (channel-major [C][T], weights in the
 * checkpoint layout, padding done inside) so that a test comparing the two checks the layout
 * transforms as well as the arithmetic.
 *
 * Threads: matrix work goes to the direct AVX-512 conv kernel where weights are in panels
 * (flm_conv1d_pack_panels), otherwise to OpenBLAS sgemm, split by the engine over OpenMP threads,
 * with OpenBLAS itself set to one thread (flm_kernels_init) so the two thread pools never compete.
 * The thread count is process-wide. No kernel allocates; callers pass scratch buffers.
 * Ownership: kernels never keep pointers past the call.
 */
#ifndef FLM_KERNELS_H
#define FLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"

/* Sets the number of OpenMP threads the kernels use (n <= 0: OpenMP's default; at most 64) and
 * makes OpenBLAS single-threaded. Safe to call more than once; call before any other kernel. */
FLM_API void flm_kernels_init(int n_threads);
FLM_API int flm_kernels_threads(void);
/* OpenBLAS core name (e.g. "SkylakeX"), "unknown" if not available. */
FLM_API const char *flm_kernels_blas_core(void);

/* C[M][N] = beta * C + A[M][K] * B[N][K]^T (B is a row-major weight matrix [out][in]). */
FLM_API void flm_gemm_nt_f32(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                             float beta, float *C, int ldc);
FLM_API void flm_gemm_nt_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                             float beta, float *C, int ldc);

/* y[T][n_out] = x[T][n_in] * w[n_out][n_in]^T + b (b may be NULL). */
FLM_API void flm_linear_f32(int T, int n_in, int n_out, const float *x, const float *w,
                            const float *b, float *y);
FLM_API void flm_linear_ref(int T, int n_in, int n_out, const float *x, const float *w,
                            const float *b, float *y);

/* --- 1-D convolution --------------------------------------------------------------------- */

typedef enum flm_pad_mode { FLM_PAD_ZERO = 0, FLM_PAD_REPLICATE = 1 } flm_pad_mode;

typedef struct flm_conv1d {
    int c_in, c_out, k, stride, dilation;
    const float
        *w; /* [c_out][k][c_in] (flm_conv1d_pack_weight of the checkpoint's [c_out][c_in][k]) */
    const float *b; /* [c_out] or NULL */
    /* NULL, or the weights in the panels of the AVX-512 direct kernel (flm_conv1d_pack_panels;
     * set only where flm_kernels_avx512()), then used instead of w, which may be NULL */
    const float *wp;
} flm_conv1d;

/* Causal left padding = effective kernel - stride = (k-1)*dilation + 1 - stride. */
FLM_API int flm_conv1d_pad(const flm_conv1d *c);
/* Input rows needed for n_out outputs: (n_out-1)*stride + (k-1)*dilation + 1. */
FLM_API int flm_conv1d_n_in(const flm_conv1d *c, int n_out);
/* dst[c_out][k][c_in] <- src[c_out][c_in][k]. */
FLM_API void flm_conv1d_pack_weight(const float *src, int c_out, int c_in, int k, float *dst);
/* y[n_out][c_out] = conv(x), x: [flm_conv1d_n_in(c, n_out)][c_in], already padded: output row t
 * reads input rows t*stride + j*dilation, j < k. */
FLM_API void flm_conv1d_f32(const flm_conv1d *c, const float *x, int n_out, float *y);
/* flm_conv1d_run flags: ACCUMULATE: y += conv(x) (bias included); ELU: y = ELU(conv(x)). */
enum { FLM_CONV_ACCUMULATE = 1, FLM_CONV_ELU = 2 };
FLM_API void flm_conv1d_run(const flm_conv1d *c, const float *x, int n_out, float *y, int flags);
/* Direct AVX-512 kernel (flm_conv1d_f32/run take it when c->wp is set, for dilation 1 and
 * c_out > 1; also serves as a linear layer: k = 1, stride 1): output row t reads the k*c_in
 * contiguous input floats at row t*stride as one product, with no packing of the activations.
 * Panels: floats needed, and the packing of c->w into them (done once, at load). */
FLM_API size_t flm_conv1d_panels_size(const flm_conv1d *c);
FLM_API void flm_conv1d_pack_panels(const flm_conv1d *c, float *dst);
/* 1 if the CPU has AVX-512F and the kernels may use it. flm_kernels_use_avx512(0): callers make no
 * panels from then on (models loaded afterwards run the portable paths; tests check both on an
 * AVX-512 machine); default 1. */
FLM_API int flm_kernels_avx512(void);
FLM_API void flm_kernels_use_avx512(int enable);
/* PyTorch-style causal Conv1d (moshi StreamingConv1d, non-streaming): x_cm [c_in][T], weight
 * w [c_out][c_in][k]; left pad (k-1)*dilation+1-stride (zeros or replicate), right pad so the
 * last window is complete. Returns the number of output steps written to y_cm [c_out][T_out]
 * (y_cm must hold c_out * (T / stride + 1) floats). */
FLM_API int flm_conv1d_ref(const float *w, const float *b, int c_in, int c_out, int k, int stride,
                           int dilation, flm_pad_mode pad, const float *x_cm, int T, float *y_cm);

typedef struct flm_convtr1d {
    int c_in, c_out, k, stride;
    int depthwise;  /* 1: groups = c_in = c_out, one [k] filter per channel */
    const float *w; /* dense: [k][c_out][c_in] (flm_convtr1d_pack_weight); depthwise: [c][k] */
    const float *b; /* [c_out] or NULL */
    /* dense: NULL, or w in panels as the k = 1 conv [k*c_out][c_in] (flm_conv1d_pack_panels),
     * then used instead of w, which may be NULL */
    const float *wp;
} flm_convtr1d;

/* dst[k][c_out][c_in] <- src[c_in][c_out][k] (the checkpoint's ConvTranspose1d layout). */
FLM_API void flm_convtr1d_pack_weight(const float *src, int c_in, int c_out, int k, float *dst);
/* Full transposed convolution: y[(n_in-1)*stride + k][c_out] is overwritten (bias on every row).
 * scratch: dense only, [n_in][k*c_out] floats. */
FLM_API void flm_convtr1d_f32(const flm_convtr1d *c, const float *x, int n_in, float *y,
                              float *scratch);
/* PyTorch ConvTranspose1d (groups 1 or groups = channels), weight [c_in][c_out/groups][k],
 * followed by moshi's causal trim of the last k - stride outputs: y_cm [c_out][T*stride]. */
FLM_API void flm_convtr1d_ref(const float *w, const float *b, int c_in, int c_out, int k,
                              int stride, int depthwise, const float *x_cm, int T, float *y_cm);

/* --- pointwise and normalisation ---------------------------------------------------------- */

FLM_API void flm_elu_f32(float *x, size_t n); /* alpha 1: x > 0 ? x : expm1(x) */
FLM_API void flm_elu_ref(float *x, size_t n);
FLM_API void flm_gelu_f32(float *x, size_t n); /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
FLM_API void flm_gelu_ref(float *x, size_t n);
/* y[T][d] = (x - mean) / sqrt(var + eps) * w + b per row; y may equal x. */
FLM_API void flm_layer_norm_f32(int T, int d, const float *x, const float *w, const float *b,
                                float eps, float *y);
FLM_API void flm_layer_norm_ref(int T, int d, const float *x, const float *w, const float *b,
                                float eps, float *y);

/* y[T][d] = x / sqrt(mean(x^2) + eps) * w per row (RMSNorm, float32); y may equal x. */
FLM_API void flm_rms_norm_f32(int T, int d, const float *x, const float *w, float eps, float *y);
FLM_API void flm_rms_norm_ref(int T, int d, const float *x, const float *w, float eps, float *y);
/* g[i] = silu(g[i]) * u[i] (the SwiGLU gate, silu(x) = x / (1 + exp(-x))). */
FLM_API void flm_swiglu_f32(float *g, const float *u, size_t n);
FLM_API void flm_swiglu_ref(float *g, const float *u, size_t n);

/* --- rotary embedding and attention -------------------------------------------------------- */

typedef enum flm_rope_kind {
    FLM_ROPE_INTERLEAVED = 0, /* pairs (2i, 2i+1) of each head (moshi) */
    FLM_ROPE_HALF = 1         /* pairs (i, i + d_head/2) (Llama / Qwen "rotate_half") */
} flm_rope_kind;

/* Rotates each head of x[T][ld] (heads at columns h*d_head) in place; row t has position pos0+t.
 * Frequencies max_period^(-2i/d_head), computed in float32 like the reference code. */
FLM_API void flm_rope_f32(float *x, int T, int ld, int64_t pos0, int n_head, int d_head,
                          float max_period, flm_rope_kind kind);
FLM_API void flm_rope_ref(float *x, int T, int ld, int64_t pos0, int n_head, int d_head,
                          float max_period, flm_rope_kind kind);

/* Causal multi-head attention with a context window. Query i has position q_pos0 + i, key j has
 * position k_pos0 + j; a query at p sees keys at p - context + 1 .. p (context <= 0: all keys
 * up to p). q [n_q][ldq], k and v [n_kv][ldkv], heads at columns h*d_head; out
 * [n_q][n_head*d_head]. Scores scaled by 1/sqrt(d_head). scratch: flm_attention_scratch_size(n_q,
 * n_kv, n_head) floats. */
FLM_API size_t flm_attention_scratch_size(int n_q, int n_kv, int n_head);
FLM_API void flm_attention_f32(const float *q, int ldq, const float *k, const float *v, int ldkv,
                               int n_q, int n_kv, int64_t q_pos0, int64_t k_pos0, int context,
                               int n_head, int d_head, float *out, float *scratch);
FLM_API void flm_attention_ref(const float *q, int ldq, const float *k, const float *v, int ldkv,
                               int n_q, int n_kv, int64_t q_pos0, int64_t k_pos0, int context,
                               int n_head, int d_head, float *out);
/* Grouped-query attention: k and v hold n_kv_head heads (n_head a multiple of it); query head h
 * reads key/value head h / (n_head / n_kv_head). Otherwise as flm_attention_f32. */
FLM_API void flm_attention_gqa_f32(const float *q, int ldq, const float *k, const float *v,
                                   int ldkv, int n_q, int n_kv, int64_t q_pos0, int64_t k_pos0,
                                   int context, int n_head, int n_kv_head, int d_head, float *out,
                                   float *scratch);
FLM_API void flm_attention_gqa_ref(const float *q, int ldq, const float *k, const float *v,
                                   int ldkv, int n_q, int n_kv, int64_t q_pos0, int64_t k_pos0,
                                   int context, int n_head, int n_kv_head, int d_head, float *out);

/* ||a - b|| / max(||b||, tiny): the normalised error the kernel tests report. */
FLM_API double flm_norm_err(const float *a, const float *b, size_t n);

#endif
