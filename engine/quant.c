/* Weight formats and products over them (see flm_quant.h). */
#include "flm_quant.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_tensor.h"

#define EXPAND_ROWS 64 /* weight rows expanded to float32 per sgemm call */
#define DOT_MAX_T 4    /* up to this many activation rows: direct dot products */

static const char *const names[FLM_W_COUNT] = {"f32", "bf16", "q8", "q4"};

int flm_wtype_parse(const char *name)
{
    for (int i = 0; i < FLM_W_COUNT; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

const char *flm_wtype_name(flm_wtype t)
{
    return t >= 0 && t < FLM_W_COUNT ? names[t] : "?";
}

static int n_blocks(int cols)
{
    return (cols + FLM_QBLOCK - 1) / FLM_QBLOCK;
}

static size_t row_bytes(flm_wtype t, int cols)
{
    switch (t) {
    case FLM_W_F32:
        return (size_t)cols * 4;
    case FLM_W_BF16:
        return (size_t)cols * 2;
    case FLM_W_Q8:
        return (size_t)cols;
    default:
        return ((size_t)cols + 1) / 2;
    }
}

void flm_qmat_sizes(flm_wtype t, int rows, int cols, size_t *q_size, size_t *scale_size)
{
    *q_size = (size_t)rows * row_bytes(t, cols);
    *scale_size =
        t == FLM_W_Q8 || t == FLM_W_Q4 ? (size_t)rows * n_blocks(cols) * sizeof(float) : 0;
}

void flm_qmat_init(flm_qmat *m, flm_wtype t, int rows, int cols, void *q, float *scale)
{
    *m = (flm_qmat){.type = t, .rows = rows, .cols = cols, .q = q, .scale = scale};
}

static void quantize_row(const flm_qmat *m, int r, const float *x)
{
    int C = m->cols, nb = n_blocks(C);
    uint8_t *row = (uint8_t *)m->q + (size_t)r * row_bytes(m->type, C);
    if (m->type == FLM_W_F32) {
        memcpy(row, x, (size_t)C * 4);
        return;
    }
    if (m->type == FLM_W_BF16) {
        flm_f32_to_bf16(x, (uint16_t *)row, (size_t)C);
        return;
    }
    float qmax = m->type == FLM_W_Q8 ? 127.0f : 7.0f;
    if (m->type == FLM_W_Q4)
        memset(row, 0, row_bytes(m->type, C));
    for (int b = 0; b < nb; b++) {
        int lo = b * FLM_QBLOCK, hi = lo + FLM_QBLOCK < C ? lo + FLM_QBLOCK : C;
        float amax = 0.0f;
        for (int i = lo; i < hi; i++)
            amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        float scale = amax / qmax, inv = scale > 0.0f ? 1.0f / scale : 0.0f;
        m->scale[(size_t)r * nb + b] = scale;
        for (int i = lo; i < hi; i++) {
            int q = (int)lrintf(x[i] * inv);
            q = q > (int)qmax ? (int)qmax : q < -(int)qmax ? -(int)qmax : q;
            if (m->type == FLM_W_Q8)
                ((int8_t *)row)[i] = (int8_t)q;
            else
                row[i / 2] |= (uint8_t)((q + 8) << (4 * (i & 1)));
        }
    }
}

void flm_qmat_quantize(flm_qmat *m, const float *src)
{
#pragma omp parallel for num_threads(flm_kernels_threads()) schedule(static) if (m->rows > 64)
    for (int r = 0; r < m->rows; r++)
        quantize_row(m, r, src + (size_t)r * m->cols);
}

void flm_qmat_row(const flm_qmat *m, int r, float *out)
{
    int C = m->cols, nb = n_blocks(C);
    const uint8_t *row = (const uint8_t *)m->q + (size_t)r * row_bytes(m->type, C);
    const float *sc = m->scale ? m->scale + (size_t)r * nb : NULL;
    switch (m->type) {
    case FLM_W_F32:
        memcpy(out, row, (size_t)C * 4);
        break;
    case FLM_W_BF16:
        flm_bf16_to_f32((const uint16_t *)row, out, (size_t)C);
        break;
    case FLM_W_Q8:
        for (int i = 0; i < C; i++)
            out[i] = (float)((const int8_t *)row)[i] * sc[i / FLM_QBLOCK];
        break;
    default:
        for (int i = 0; i < C; i++)
            out[i] = (float)(((row[i / 2] >> (4 * (i & 1))) & 15) - 8) * sc[i / FLM_QBLOCK];
        break;
    }
}

size_t flm_qmat_scratch_size(int cols)
{
    return ((size_t)flm_kernels_threads() * EXPAND_ROWS + DOT_MAX_T) * (size_t)cols;
}

/* The dot-product kernels: element-wise partial sums over one block width (no reduction inside
 * the loops, so GCC vectorises them), one final sum per row; compiled for AVX-512, AVX2 and
 * baseline. Q4 reads x permuted per block into [even columns | odd columns] (xp, made once per
 * call), matching the two nibbles of a byte. */
#define KERNEL                                                                                     \
    __attribute__((optimize("O3", "tree-vectorize"),                                               \
                   target_clones("avx512f", "avx2", "default"))) static float

static float sum_lanes(const float *acc, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += acc[i];
    return s;
}

KERNEL dot_f32(const float *w, const float *x, int n)
{
    float acc[32] = {0};
    int nb = n / 32;
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < 32; i++)
            acc[i] += w[b * 32 + i] * x[b * 32 + i];
    for (int i = nb * 32; i < n; i++)
        acc[i - nb * 32] += w[i] * x[i];
    return sum_lanes(acc, 32);
}

KERNEL dot_bf16(const uint16_t *w, const float *x, int n)
{
    float acc[32] = {0};
    int nb = n / 32;
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < 32; i++) {
            union {
                uint32_t u;
                float f;
            } v = {.u = (uint32_t)w[b * 32 + i] << 16};
            acc[i] += v.f * x[b * 32 + i];
        }
    for (int i = nb * 32; i < n; i++) {
        union {
            uint32_t u;
            float f;
        } v = {.u = (uint32_t)w[i] << 16};
        acc[i - nb * 32] += v.f * x[i];
    }
    return sum_lanes(acc, 32);
}

KERNEL dot_q8(const int8_t *w, const float *x, const float *sc, int n)
{
    float acc[FLM_QBLOCK] = {0};
    int nb = n / FLM_QBLOCK;
    for (int b = 0; b < nb; b++) {
        float s = sc[b];
        for (int i = 0; i < FLM_QBLOCK; i++)
            acc[i] += (float)w[b * FLM_QBLOCK + i] * s * x[b * FLM_QBLOCK + i];
    }
    for (int i = nb * FLM_QBLOCK; i < n; i++) /* a shorter last block */
        acc[i - nb * FLM_QBLOCK] += (float)w[i] * sc[nb] * x[i];
    return sum_lanes(acc, FLM_QBLOCK);
}

KERNEL dot_q4(const uint8_t *w, const float *xp, const float *x, const float *sc, int n)
{
    float lo[FLM_QBLOCK / 2] = {0}, hi[FLM_QBLOCK / 2] = {0};
    int nb = n / FLM_QBLOCK;
    for (int b = 0; b < nb; b++) {
        const uint8_t *q = w + b * FLM_QBLOCK / 2;
        const float *xe = xp + b * FLM_QBLOCK, *xo = xe + FLM_QBLOCK / 2;
        float s = sc[b];
        for (int j = 0; j < FLM_QBLOCK / 2; j++) {
            lo[j] += (float)((q[j] & 15) - 8) * s * xe[j];
            hi[j] += (float)((q[j] >> 4) - 8) * s * xo[j];
        }
    }
    float t = 0.0f;
    for (int i = nb * FLM_QBLOCK; i < n; i++)
        t += (float)(((w[i >> 1] >> ((i & 1) << 2)) & 15) - 8) * sc[nb] * x[i];
    return sum_lanes(lo, FLM_QBLOCK / 2) + sum_lanes(hi, FLM_QBLOCK / 2) + t;
}

static int simd_allowed = 1;

void flm_quant_use_avx512(int enable)
{
    simd_allowed = enable;
}

static int has_avx512(void)
{
    static int v = -1;
    if (v < 0)
        v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    return v && simd_allowed;
}

/* AVX-512 versions of the two quantized kernels (the portable loops above compile to 128-bit
 * conversions, ~5x slower): per block of 32, the codes widened to 16 x int32, converted, one FMA
 * with x per 16 lanes, then scaled into the accumulator. */
#define AVX512 __attribute__((target("avx512f,avx512bw,fma")))

AVX512 static float dot_q8_avx512(const int8_t *w, const float *x, const float *sc, int n)
{
    __m512 acc = _mm512_setzero_ps();
    int nb = n / FLM_QBLOCK;
    for (int b = 0; b < nb; b++) {
        const int8_t *q = w + b * FLM_QBLOCK;
        const float *xb = x + b * FLM_QBLOCK;
        __m512 a = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
        __m512 c =
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + 16))));
        __m512 bs = _mm512_mul_ps(a, _mm512_loadu_ps(xb));
        bs = _mm512_fmadd_ps(c, _mm512_loadu_ps(xb + 16), bs);
        acc = _mm512_fmadd_ps(bs, _mm512_set1_ps(sc[b]), acc);
    }
    float s = _mm512_reduce_add_ps(acc), t = 0.0f;
    for (int i = nb * FLM_QBLOCK; i < n; i++)
        t += (float)w[i] * x[i];
    return n % FLM_QBLOCK ? s + t * sc[nb] : s;
}

AVX512 static float dot_bf16_avx512(const uint16_t *w, const float *x, int n)
{
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + i)));
        acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_loadu_ps(x + i),
                              acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    for (; i < n; i++) {
        uint32_t u = (uint32_t)w[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        s += f * x[i];
    }
    return s;
}

AVX512 static float dot_q4_avx512(const uint8_t *w, const float *xp, const float *x,
                                  const float *sc, int n)
{
    __m512 acc = _mm512_setzero_ps();
    const __m512i mask = _mm512_set1_epi32(15), eight = _mm512_set1_epi32(8);
    int nb = n / FLM_QBLOCK;
    for (int b = 0; b < nb; b++) {
        __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(w + b * 16)));
        __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, mask), eight));
        __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight));
        const float *xb = xp + b * FLM_QBLOCK; /* [16 even | 16 odd] */
        __m512 bs = _mm512_mul_ps(lo, _mm512_loadu_ps(xb));
        bs = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xb + 16), bs);
        acc = _mm512_fmadd_ps(bs, _mm512_set1_ps(sc[b]), acc);
    }
    float s = _mm512_reduce_add_ps(acc), t = 0.0f;
    for (int i = nb * FLM_QBLOCK; i < n; i++)
        t += (float)(((w[i >> 1] >> ((i & 1) << 2)) & 15) - 8) * x[i];
    return n % FLM_QBLOCK ? s + t * sc[nb] : s;
}

/* Direct dot products of T (<= DOT_MAX_T) activation rows with weight rows [r0, r1):
 * acc [T][r1 - r0]. xp: the Q4 permutation of A, [T][cols]. */
static void dot_rows(const flm_qmat *m, int r0, int r1, int T, const float *A, int lda,
                     const float *xp, float *acc)
{
    int C = m->cols, nb = n_blocks(C), avx512 = has_avx512();
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)m->q + (size_t)r * row_bytes(m->type, C);
        const float *sc = m->scale ? m->scale + (size_t)r * nb : NULL;
        for (int t = 0; t < T; t++) {
            const float *x = A + (size_t)t * lda;
            float s;
            switch (m->type) {
            case FLM_W_F32:
                s = dot_f32((const float *)row, x, C);
                break;
            case FLM_W_BF16:
                s = avx512 ? dot_bf16_avx512((const uint16_t *)row, x, C)
                           : dot_bf16((const uint16_t *)row, x, C);
                break;
            case FLM_W_Q8:
                s = avx512 ? dot_q8_avx512((const int8_t *)row, x, sc, C)
                           : dot_q8((const int8_t *)row, x, sc, C);
                break;
            default:
                s = avx512 ? dot_q4_avx512(row, xp + (size_t)t * C, x, sc, C)
                           : dot_q4(row, xp + (size_t)t * C, x, sc, C);
                break;
            }
            acc[(size_t)t * (r1 - r0) + (r - r0)] = s;
        }
    }
}

void flm_qmat_gemm(const flm_qmat *m, int T, const float *A, int lda, const float *bias, float beta,
                   float *C, int ldc, float *scratch)
{
    int R = m->rows, K = m->cols, nt = flm_kernels_threads();
    if (T <= 0 || R <= 0)
        return;
    if (m->type == FLM_W_F32 && T > DOT_MAX_T) { /* no expansion needed */
        if (bias)
            for (int t = 0; t < T; t++)
                for (int r = 0; r < R; r++)
                    C[(size_t)t * ldc + r] = beta * C[(size_t)t * ldc + r] + bias[r];
        flm_gemm_nt_f32(T, R, K, A, lda, (const float *)m->q, K, bias ? 1.0f : beta, C, ldc);
        return;
    }
    int n_blk = (R + EXPAND_ROWS - 1) / EXPAND_ROWS;
    float *xp = scratch + (size_t)flm_kernels_threads() * EXPAND_ROWS * K; /* [T][K] */
    if (m->type == FLM_W_Q4 && T <= DOT_MAX_T)
        for (int t = 0; t < T; t++)
            for (int b = 0; b + FLM_QBLOCK <= K; b += FLM_QBLOCK)
                for (int j = 0; j < FLM_QBLOCK / 2; j++) {
                    xp[(size_t)t * K + b + j] = A[(size_t)t * lda + b + 2 * j];
                    xp[(size_t)t * K + b + FLM_QBLOCK / 2 + j] = A[(size_t)t * lda + b + 2 * j + 1];
                }
    if ((double)R * K * T < 262144.0)
        nt = 1;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int blk = 0; blk < n_blk; blk++) {
        int r0 = blk * EXPAND_ROWS, r1 = r0 + EXPAND_ROWS < R ? r0 + EXPAND_ROWS : R, n = r1 - r0;
        float *scr = scratch + (size_t)omp_get_thread_num() * EXPAND_ROWS * K;
        if (T <= DOT_MAX_T) {
            dot_rows(m, r0, r1, T, A, lda, xp, scr); /* scr: [T][n] */
            for (int t = 0; t < T; t++)
                for (int i = 0; i < n; i++) {
                    float *c = &C[(size_t)t * ldc + r0 + i];
                    *c = (beta != 0.0f ? beta * *c : 0.0f) + scr[(size_t)t * n + i] +
                         (bias ? bias[r0 + i] : 0.0f);
                }
            continue;
        }
        for (int i = 0; i < n; i++)
            flm_qmat_row(m, r0 + i, scr + (size_t)i * K);
        if (bias)
            for (int t = 0; t < T; t++)
                for (int i = 0; i < n; i++) {
                    float *c = &C[(size_t)t * ldc + r0 + i];
                    *c = (beta != 0.0f ? beta * *c : 0.0f) + bias[r0 + i];
                }
        /* column-major C^T = W A^T, as flm_gemm_nt_f32 asks BLAS (see kernels.c) */
        cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, n, T, K, 1.0f, scr, K, A, lda,
                    bias ? 1.0f : beta, C + r0, ldc);
    }
}

void flm_qmat_gemm_ref(const flm_qmat *m, int T, const float *A, int lda, const float *bias,
                       float beta, float *C, int ldc)
{
    float *row = flm_malloc((size_t)m->cols * sizeof *row);
    for (int r = 0; r < m->rows && row; r++) {
        flm_qmat_row(m, r, row);
        for (int t = 0; t < T; t++) {
            double s = bias ? bias[r] : 0.0;
            for (int i = 0; i < m->cols; i++)
                s += (double)A[(size_t)t * lda + i] * row[i];
            float *c = &C[(size_t)t * ldc + r];
            *c = (float)(s + (beta != 0.0f ? (double)beta * *c : 0.0));
        }
    }
    flm_free(row);
}

flm_qmat flm_qmat_slice(const flm_qmat *m, int r0, int n)
{
    flm_qmat v = *m;
    v.rows = n;
    v.q = (uint8_t *)m->q + (size_t)r0 * row_bytes(m->type, m->cols);
    if (m->scale)
        v.scale = m->scale + (size_t)r0 * n_blocks(m->cols);
    return v;
}
