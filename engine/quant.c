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

#define EXPAND_ROWS 256 /* weight rows expanded to float32 per sgemm call */
#define DOT_MAX_T 4     /* up to this many activation rows: direct dot products ... */
#define DOT_ROWS 32     /* ... over blocks of this many weight rows (a thread's blocks adjacent) */

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

static int simd_allowed = 1;

void flm_quant_use_avx512(int enable)
{
    simd_allowed = enable;
}

static int has_avx512(void)
{
    static int v = -1;
    if (v < 0)
        v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    return v && simd_allowed;
}
/* Columns [c0, cols) of row r into out[c0 ...]. */
static void row_portable(const flm_qmat *m, int r, int c0, float *out)
{
    int C = m->cols, nb = n_blocks(C);
    const uint8_t *row = (const uint8_t *)m->q + (size_t)r * row_bytes(m->type, C);
    const float *sc = m->scale ? m->scale + (size_t)r * nb : NULL;
    switch (m->type) {
    case FLM_W_F32:
        memcpy(out + c0, (const float *)row + c0, (size_t)(C - c0) * 4);
        break;
    case FLM_W_BF16:
        flm_bf16_to_f32((const uint16_t *)row + c0, out + c0, (size_t)(C - c0));
        break;
    case FLM_W_Q8:
        for (int i = c0; i < C; i++)
            out[i] = (float)((const int8_t *)row)[i] * sc[i / FLM_QBLOCK];
        break;
    default:
        for (int i = c0; i < C; i++)
            out[i] = (float)(((row[i / 2] >> (4 * (i & 1))) & 15) - 8) * sc[i / FLM_QBLOCK];
        break;
    }
}

/* Row r in float32 with AVX-512: the expansion before sgemm (teacher forcing) runs at memory
 * speed rather than one value per instruction. Whole blocks only; the caller does the rest. */
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

AVX512 static int row_avx512(const flm_qmat *m, int r, float *out)
{
    int C = m->cols, nb = n_blocks(C), full = C / FLM_QBLOCK;
    const uint8_t *row = (const uint8_t *)m->q + (size_t)r * row_bytes(m->type, C);
    const float *sc = m->scale ? m->scale + (size_t)r * nb : NULL;
    if (m->type == FLM_W_BF16) {
        const uint16_t *w = (const uint16_t *)row;
        for (int i = 0; i + 16 <= full * FLM_QBLOCK; i += 16)
            _mm512_storeu_ps(
                out + i,
                _mm512_castsi512_ps(_mm512_slli_epi32(
                    _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + i))), 16)));
        return full * FLM_QBLOCK;
    }
    const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi_idx =
        _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (int b = 0; b < full; b++) {
        __m512 s = _mm512_set1_ps(sc[b]);
        float *o = out + b * FLM_QBLOCK;
        if (m->type == FLM_W_Q8) {
            const int8_t *q = (const int8_t *)row + b * FLM_QBLOCK;
            for (int h = 0; h < 2; h++)
                _mm512_storeu_ps(o + 16 * h,
                                 _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                                   _mm_loadu_si128((const __m128i *)(q + 16 * h)))),
                                               s));
            continue;
        }
        __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(row + b * 16)));
        const __m512i eight = _mm512_set1_epi32(8), mask = _mm512_set1_epi32(15);
        __m512 lo = _mm512_mul_ps(
            _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, mask), eight)), s);
        __m512 hi =
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight)), s);
        _mm512_storeu_ps(o, _mm512_permutex2var_ps(lo, lo_idx, hi));
        _mm512_storeu_ps(o + 16, _mm512_permutex2var_ps(lo, hi_idx, hi));
    }
    return full * FLM_QBLOCK;
}

void flm_qmat_row(const flm_qmat *m, int r, float *out)
{
    int done = m->type != FLM_W_F32 && has_avx512() ? row_avx512(m, r, out) : 0;
    row_portable(m, r, done, out);
}

size_t flm_qmat_scratch_size(int cols)
{
    return (size_t)flm_kernels_threads() * EXPAND_ROWS * (size_t)cols +
           DOT_MAX_T * ((size_t)cols + 64);
}

/* ---------------------------------------------------------------- streaming products
 *
 * Q8 and Q4 products with few activation rows quantize each activation row per block of 32
 * columns to int8 (scale max|x| / 127, round to nearest even) and sum integer products per block,
 * as llama.cpp does: the AVX-512 VNNI instruction vpdpbusd then does 64 multiply-adds of int8
 * in one operation, which keeps the 4-bit kernel memory-bound. The activations are prepared once
 * per call into `xprep`, laid out in chunks that match one 64-byte load of weight codes:
 *   Q8: a chunk is 64 columns (2 blocks): codes q[64] in column order; s[16]: lanes 0-7 the
 *       scale of the first block, lanes 8-15 of the second; c[16]: lanes 0 and 8 = -128 x the
 *       sum of the block's codes (the kernel reads the weight codes unsigned, as q + 128);
 *   Q4: a chunk is 128 columns (4 blocks, 64 bytes of codes): q[128] = the even columns of the 4
 *       blocks (16 each), then their odd columns, which matches the low and high nibbles of the
 *       64 code bytes; s[16]: lane 4b + j the scale of block b; c[16]: lane 4b = -8 x the sum of
 *       block b's codes (the codes are stored as q + 8, which vpdpbusd reads unsigned).
 * Columns past the end are zero, so a row's last chunk needs no special arithmetic. */
typedef struct xprep {   /* the activations prepared once per call (bf16: see bf16_split) */
    const uint8_t *base; /* row t's q at base + t * stride, its s at + s_off, its c at + c_off */
    size_t stride, s_off, c_off;
} xprep;

static int chunk_cols(flm_wtype t)
{
    return t == FLM_W_Q4 ? 128 : 64;
}

/* Quantizes one block of n (<= 32) values: q[i] = rint(x[i] / s), returns s = max|x| / 127. */
static float quantize_block(const float *x, int n, int8_t *q)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++)
        amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int i = 0; i < n; i++) /* round to nearest even: adding 1.5 * 2^23 drops the fraction */
        q[i] = (int8_t)(int)((x[i] * inv + 12582912.0f) - 12582912.0f);
    return s;
}

/* The same for a whole block (n = 32) with AVX-512; rounding by the default MXCSR mode, to
 * nearest even, so the results are the same. */
AVX512 static float quantize_block_avx512(const float *x, int8_t *q)
{
    __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
    float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    __m512 v = _mm512_set1_ps(inv);
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(a, v))));
    _mm_storeu_si128((__m128i *)(q + 16),
                     _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(b, v))));
    return s;
}

/* Fills a from T rows of A (lda) for products with a type-t matrix of K columns; mem holds
 * DOT_MAX_T * (K + 64) floats. */
static void quantize_activations(xprep *a, flm_wtype t, const float *A, int lda, int T, int K,
                                 float *mem)
{
    int cc = chunk_cols(t), n_chunk = (K + cc - 1) / cc;
    a->base = (const uint8_t *)mem;
    a->stride = (size_t)n_chunk * (cc + 128);
    a->s_off = (size_t)n_chunk * cc;
    a->c_off = (size_t)n_chunk * (cc + 64);
    for (int r = 0; r < T; r++) {
        uint8_t *base = (uint8_t *)mem + (size_t)r * a->stride;
        int8_t *q = (int8_t *)base;
        float *s = (float *)(base + a->s_off);
        int32_t *c = (int32_t *)(base + a->c_off);
        memset(base, 0, a->stride);
        const float *x = A + (size_t)r * lda;
        for (int b = 0; b * FLM_QBLOCK < K; b++) {
            int lo = b * FLM_QBLOCK, n = K - lo < FLM_QBLOCK ? K - lo : FLM_QBLOCK;
            int8_t blk[FLM_QBLOCK] = {0};
            float sc = n == FLM_QBLOCK && has_avx512() ? quantize_block_avx512(x + lo, blk)
                                                       : quantize_block(x + lo, n, blk);
            if (t == FLM_W_Q8) {
                int32_t sum = 0;
                for (int j = 0; j < n; j++)
                    sum += blk[j];
                memcpy(q + lo, blk, (size_t)n);
                for (int j = 0; j < 8; j++)
                    s[(b / 2) * 16 + (b % 2) * 8 + j] = sc;
                c[(b / 2) * 16 + (b % 2) * 8] = -128 * sum;
                continue;
            }
            int8_t *ch = q + (size_t)(b / 4) * 128 + (b % 4) * 16;
            int32_t sum = 0;
            for (int j = 0; j < FLM_QBLOCK / 2; j++) {
                ch[j] = blk[2 * j];
                ch[64 + j] = blk[2 * j + 1];
                sum += blk[2 * j] + blk[2 * j + 1];
            }
            for (int j = 0; j < 4; j++)
                s[(b / 4) * 16 + (b % 4) * 4 + j] = sc;
            c[(b / 4) * 16 + (b % 4) * 4] = -8 * sum;
        }
    }
}

/* bf16 products with AVX-512: x with each 32 columns reordered [16 even | 16 odd] (whole
 * blocks of 32 only; dot4_bf16_avx512 reads the rest from x). */
static void bf16_split(xprep *a, const float *A, int lda, int T, int K, float *mem)
{
    a->base = (const uint8_t *)mem;
    a->stride = ((size_t)K + 64) * sizeof(float);
    a->s_off = a->c_off = 0;
    for (int t = 0; t < T; t++) {
        const float *x = A + (size_t)t * lda;
        float *xp = mem + (size_t)t * (K + 64);
        for (int i = 0; i + 32 <= K; i += 32)
            for (int j = 0; j < 16; j++) {
                xp[i + j] = x[i + 2 * j];
                xp[i + 16 + j] = x[i + 2 * j + 1];
            }
    }
}

/* Portable kernels (compiled for AVX-512, AVX2 and baseline; GCC vectorises the element-wise
 * partial sums): one weight row against one activation row. */
#define KERNEL                                                                                     \
    __attribute__((optimize("O3", "tree-vectorize"),                                               \
                   target_clones("avx512f", "avx2", "default"))) static float

KERNEL dot_f32(const float *w, const float *x, int n)
{
    float acc[32] = {0};
    int nb = n / 32;
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < 32; i++)
            acc[i] += w[b * 32 + i] * x[b * 32 + i];
    for (int i = nb * 32; i < n; i++)
        acc[i - nb * 32] += w[i] * x[i];
    float s = 0.0f;
    for (int i = 0; i < 32; i++)
        s += acc[i];
    return s;
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
    float s = 0.0f;
    for (int i = 0; i < 32; i++)
        s += acc[i];
    return s;
}

/* xq, xs, xc: one activation row of xprep. */
KERNEL dot_q8(const int8_t *w, const float *ws, int K, const int8_t *xq, const float *xs)
{
    float s = 0.0f;
    for (int b = 0; b * FLM_QBLOCK < K; b++) {
        int lo = b * FLM_QBLOCK, n = K - lo < FLM_QBLOCK ? K - lo : FLM_QBLOCK;
        int32_t d = 0;
        for (int i = 0; i < n; i++)
            d += (int32_t)w[lo + i] * xq[lo + i];
        s += (float)d * (ws[b] * xs[(b / 2) * 16 + (b % 2) * 8]);
    }
    return s;
}

KERNEL dot_q4(const uint8_t *w, const float *ws, int K, const int8_t *xq, const float *xs,
              const int32_t *xc)
{
    float s = 0.0f;
    for (int b = 0; b * FLM_QBLOCK < K; b++) {
        const int8_t *ch = xq + (size_t)(b / 4) * 128 + (b % 4) * 16;
        const uint8_t *q = w + (size_t)b * FLM_QBLOCK / 2;
        int nbytes = (K - b * FLM_QBLOCK + 1) / 2 < 16 ? (K - b * FLM_QBLOCK + 1) / 2 : 16;
        int32_t d = xc[(b / 4) * 16 + (b % 4) * 4];
        for (int j = 0; j < nbytes; j++)
            d += (int32_t)(q[j] & 15) * ch[j] + (int32_t)(q[j] >> 4) * ch[64 + j];
        s += (float)d * (ws[b] * xs[(b / 4) * 16 + (b % 4) * 4]);
    }
    return s;
}

/* AVX-512 kernels: 4 weight rows at once (w[r], ws[r]; a group of fewer rows repeats its last
 * row) against one activation row, so that the activation loads, the loop and the final sums are
 * shared (a q4 row of the 1B shape is only 768 bytes). Each row asks for the same place of the
 * row 4 further on (ahead, ahead_s bytes: the next group) to be fetched from memory: measured
 * +10 to +15 % over the hardware prefetcher alone, and better than a fixed distance, which falls
 * into the rows being read already when rows are short. The last chunk of a row is read with a
 * mask (never past its end). */
#define R4 _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)

static __mmask64 bytes_mask(int left)
{
    return left >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << left) - 1;
}

AVX512 static void dot4_f32_avx512(const float *const w[4], size_t ahead, const float *x, int n,
                                   float out[4])
{
    __m512 a[4][2];
    R4 a[r][0] = a[r][1] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
        R4
        {
            _mm_prefetch((const char *)(w[r] + i) + ahead, _MM_HINT_T0);
            _mm_prefetch((const char *)(w[r] + i) + ahead + 64, _MM_HINT_T0);
            a[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(w[r] + i), x0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(_mm512_loadu_ps(w[r] + i + 16), x1, a[r][1]);
        }
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x + i);
        R4 a[r][0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w[r] + i), x0, a[r][0]);
    }
    R4 out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a[r][0], a[r][1]));
}

AVX512 static inline __m512 bf16x16(__m256i v)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

/* xp: x with each 32 columns reordered [16 even | 16 odd] (bf16_split), so one 64-byte load
 * of weights gives both halves: the even columns shifted up, the odd ones masked. */
AVX512 static void dot4_bf16_avx512(const uint16_t *const w[4], size_t ahead, const float *xp,
                                    const float *x, int n, float out[4])
{
    const __m512i hi16 = _mm512_set1_epi32((int)0xffff0000u);
    __m512 a[4][2];
    R4 a[r][0] = a[r][1] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 xe = _mm512_loadu_ps(xp + i), xo = _mm512_loadu_ps(xp + i + 16);
        R4
        {
            _mm_prefetch((const char *)(w[r] + i) + ahead, _MM_HINT_T0);
            __m512i v = _mm512_loadu_si512(w[r] + i);
            a[r][0] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi16)), xo, a[r][1]);
        }
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x + i);
        R4 a[r][0] = _mm512_fmadd_ps(bf16x16(_mm256_maskz_loadu_epi16(m, w[r] + i)), x0, a[r][0]);
    }
    R4 out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a[r][0], a[r][1]));
}

/* One 64-byte chunk of Q8 codes v (2 blocks, scales wsx per lane) against activation codes x,
 * corrections xc and scales xs, added to acc. vpdpbusd reads its first operand unsigned: v with
 * its sign bit flipped is q + 128, and xc (-128 x the block's sum of x) takes the 128 back out. */
AVX512 static inline __m512 q8_chunk(__m512i v, __m512 wsx, __m512i x, __m512i xc, __m512 xs,
                                     __m512 acc)
{
    __m512i d = _mm512_dpbusd_epi32(xc, _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80)), x);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(wsx, xs), acc);
}

AVX512 static void dot4_q8_avx512(const int8_t *const w[4], const float *const ws[4], size_t ahead,
                                  size_t ahead_s, int K, const int8_t *xq, const float *xs,
                                  const int32_t *xc, float out[4])
{
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i two = _mm512_set1_epi32(2);
    __m512 a[4];
    R4 a[r] = _mm512_setzero_ps();
    int nb = n_blocks(K), full = K / 64, c = 0;
    for (; c + 8 <= full; c += 8) { /* 8 chunks: one 64-byte load of each row's 16 scales */
        __m512 sv[4];
        R4
        {
            _mm_prefetch((const char *)(ws[r] + 2 * c) + ahead_s, _MM_HINT_T0);
            sv[r] = _mm512_loadu_ps(ws[r] + 2 * c);
        }
        __m512i id = idx;
        _Pragma("GCC unroll 8") for (int cc = c; cc < c + 8; cc++)
        {
            __m512i x = _mm512_loadu_si512(xq + 64 * cc), corr = _mm512_loadu_si512(xc + 16 * cc);
            __m512 s = _mm512_loadu_ps(xs + 16 * cc);
            R4
            {
                _mm_prefetch((const char *)(w[r] + 64 * cc) + ahead, _MM_HINT_T0);
                a[r] = q8_chunk(_mm512_loadu_si512(w[r] + 64 * cc),
                                _mm512_permutexvar_ps(id, sv[r]), x, corr, s, a[r]);
            }
            id = _mm512_add_epi32(id, two);
        }
    }
    for (; c * 64 < K; c++) { /* the rest; the last chunk read with masks */
        __m512i x = _mm512_loadu_si512(xq + 64 * c), corr = _mm512_loadu_si512(xc + 16 * c);
        __m512 s = _mm512_loadu_ps(xs + 16 * c);
        __mmask64 wm = bytes_mask(K - 64 * c);
        R4
        {
            __m512 wsx = _mm512_permutexvar_ps(
                idx, _mm512_maskz_loadu_ps(nb - 2 * c >= 2 ? 3 : 1, ws[r] + 2 * c));
            a[r] = q8_chunk(_mm512_maskz_loadu_epi8(wm, w[r] + 64 * c), wsx, x, corr, s, a[r]);
        }
    }
    R4 out[r] = _mm512_reduce_add_ps(a[r]);
}

/* One 64-byte chunk of Q4 codes v (4 blocks, scales wsx per lane) against activation codes x0
 * (even columns), x1 (odd columns), corrections xc and scales xs, added to acc. */
AVX512 static inline __m512 q4_chunk(__m512i v, __m512 wsx, __m512i x0, __m512i x1, __m512i xc,
                                     __m512 xs, __m512 acc)
{
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    __m512i d = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(xc, lo, x0), hi, x1);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(wsx, xs), acc);
}

AVX512 static void dot4_q4_avx512(const uint8_t *const w[4], const float *const ws[4], size_t ahead,
                                  size_t ahead_s, int K, const int8_t *xq, const float *xs,
                                  const int32_t *xc, float out[4])
{
    const __m512i idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i four = _mm512_set1_epi32(4);
    __m512 a[4];
    R4 a[r] = _mm512_setzero_ps();
    int nb = n_blocks(K), full = K / 128, rb = (K + 1) / 2, c = 0;
    for (; c + 4 <= full; c += 4) { /* 4 chunks: one 64-byte load of each row's 16 scales */
        __m512 sv[4];
        R4
        {
            _mm_prefetch((const char *)(ws[r] + 4 * c) + ahead_s, _MM_HINT_T0);
            sv[r] = _mm512_loadu_ps(ws[r] + 4 * c);
        }
        __m512i id = idx;
        _Pragma("GCC unroll 4") for (int cc = c; cc < c + 4; cc++)
        {
            __m512i x0 = _mm512_loadu_si512(xq + 128 * cc);
            __m512i x1 = _mm512_loadu_si512(xq + 128 * cc + 64);
            __m512i corr = _mm512_loadu_si512(xc + 16 * cc);
            __m512 s = _mm512_loadu_ps(xs + 16 * cc);
            R4
            {
                _mm_prefetch((const char *)(w[r] + 64 * cc) + ahead, _MM_HINT_T0);
                a[r] = q4_chunk(_mm512_loadu_si512(w[r] + 64 * cc),
                                _mm512_permutexvar_ps(id, sv[r]), x0, x1, corr, s, a[r]);
            }
            id = _mm512_add_epi32(id, four);
        }
    }
    for (; c * 128 < K; c++) { /* the rest (under 4 chunks), read with masks */
        __m512i x0 = _mm512_loadu_si512(xq + 128 * c), x1 = _mm512_loadu_si512(xq + 128 * c + 64);
        __m512i corr = _mm512_loadu_si512(xc + 16 * c);
        __m512 s = _mm512_loadu_ps(xs + 16 * c);
        int lb = nb - 4 * c;
        __mmask16 sm = lb >= 4 ? 15 : (__mmask16)((1u << lb) - 1);
        __mmask64 wm = bytes_mask(rb - 64 * c);
        R4
        {
            __m512 wsx = _mm512_permutexvar_ps(idx, _mm512_maskz_loadu_ps(sm, ws[r] + 4 * c));
            a[r] = q4_chunk(_mm512_maskz_loadu_epi8(wm, w[r] + 64 * c), wsx, x0, x1, corr, s, a[r]);
        }
    }
    R4 out[r] = _mm512_reduce_add_ps(a[r]);
}

/* Direct dot products of T (<= DOT_MAX_T) activation rows (float A; a: prepared for Q8 / Q4,
 * or reordered for bf16) with weight rows [r0, r1): acc [T][r1 - r0]. */
static void dot_rows(const flm_qmat *m, int r0, int r1, int T, const float *A, int lda,
                     const xprep *a, float *acc)
{
    int K = m->cols, nb = n_blocks(K), n = r1 - r0;
    size_t rb = row_bytes(m->type, K), ahead = 4 * rb, ahead_s = 4 * (size_t)nb * sizeof(float);
    const uint8_t *q = (const uint8_t *)m->q;
    for (int t = 0; t < T; t++) {
        const float *x = A + (size_t)t * lda;
        const uint8_t *at = a ? a->base + (size_t)t * a->stride : NULL;
        const int8_t *xq = (const int8_t *)at;
        const float *xs = a ? (const float *)(at + a->s_off) : NULL;
        const int32_t *xc = a ? (const int32_t *)(at + a->c_off) : NULL;
        float *out = acc + (size_t)t * n;
        if (!has_avx512()) {
            for (int r = r0; r < r1; r++) {
                const uint8_t *row = q + (size_t)r * rb;
                const float *ws = m->scale ? m->scale + (size_t)r * nb : NULL;
                out[r - r0] = m->type == FLM_W_F32    ? dot_f32((const float *)row, x, K)
                              : m->type == FLM_W_BF16 ? dot_bf16((const uint16_t *)row, x, K)
                              : m->type == FLM_W_Q8   ? dot_q8((const int8_t *)row, ws, K, xq, xs)
                                                      : dot_q4(row, ws, K, xq, xs, xc);
            }
            continue;
        }
        for (int r = r0; r < r1; r += 4) {
            const void *w[4];
            const float *ws[4];
            float o[4];
            for (int k = 0; k < 4; k++) { /* a short group repeats its last row */
                int rr = r + k < r1 ? r + k : r1 - 1;
                w[k] = q + (size_t)rr * rb;
                ws[k] = m->scale ? m->scale + (size_t)rr * nb : NULL;
            }
            switch (m->type) {
            case FLM_W_F32:
                dot4_f32_avx512((const float *const *)w, ahead, x, K, o);
                break;
            case FLM_W_BF16:
                dot4_bf16_avx512((const uint16_t *const *)w, ahead, (const float *)at, x, K, o);
                break;
            case FLM_W_Q8:
                dot4_q8_avx512((const int8_t *const *)w, ws, ahead, ahead_s, K, xq, xs, xc, o);
                break;
            default:
                dot4_q4_avx512((const uint8_t *const *)w, ws, ahead, ahead_s, K, xq, xs, xc, o);
                break;
            }
            for (int k = 0; k < 4 && r + k < r1; k++)
                out[r - r0 + k] = o[k];
        }
    }
}

/* Rows [r0, r0 + rows) of flm_qmat_gemm (a: the prepared activations of a streaming product). */
static void gemm_block(const flm_qmat *m, int r0, int rows, int T, const float *A, int lda,
                       const xprep *a, const float *bias, float beta, float *C, int ldc,
                       float *scratch)
{
    int R = m->rows, K = m->cols;
    int r1 = r0 + rows < R ? r0 + rows : R, n = r1 - r0;
    float *scr = scratch + (size_t)omp_get_thread_num() * EXPAND_ROWS * K;
    if (T <= DOT_MAX_T) {
        dot_rows(m, r0, r1, T, A, lda, a, scr); /* scr: [T][n] */
        for (int t = 0; t < T; t++)
            for (int i = 0; i < n; i++) {
                float *c = &C[(size_t)t * ldc + r0 + i];
                *c = (beta != 0.0f ? beta * *c : 0.0f) + scr[(size_t)t * n + i] +
                     (bias ? bias[r0 + i] : 0.0f);
            }
        return;
    }
    const float *w = (const float *)m->q + (size_t)r0 * K; /* f32: used in place */
    if (m->type != FLM_W_F32) {
        for (int i = 0; i < n; i++)
            flm_qmat_row(m, r0 + i, scr + (size_t)i * K);
        w = scr;
    }
    if (bias)
        for (int t = 0; t < T; t++)
            for (int i = 0; i < n; i++) {
                float *c = &C[(size_t)t * ldc + r0 + i];
                *c = (beta != 0.0f ? beta * *c : 0.0f) + bias[r0 + i];
            }
    /* column-major C^T = W A^T, as flm_gemm_nt_f32 asks BLAS (see kernels.c) */
    cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, n, T, K, 1.0f, w, K, A, lda,
                bias ? 1.0f : beta, C + r0, ldc);
}

void flm_qmat_gemm(const flm_qmat *m, int T, const float *A, int lda, const float *bias, float beta,
                   float *C, int ldc, float *scratch)
{
    int R = m->rows, K = m->cols, nt = flm_kernels_threads();
    if (T <= 0 || R <= 0)
        return;
    int rows = T <= DOT_MAX_T ? DOT_ROWS : EXPAND_ROWS, n_blk = (R + rows - 1) / rows;
    xprep a8, *a = NULL;
    float *prep = scratch + (size_t)flm_kernels_threads() * EXPAND_ROWS * K;
    if ((m->type == FLM_W_Q8 || m->type == FLM_W_Q4) && T <= DOT_MAX_T) {
        quantize_activations(&a8, m->type, A, lda, T, K, prep);
        a = &a8;
    } else if (m->type == FLM_W_BF16 && T <= DOT_MAX_T && has_avx512()) {
        bf16_split(&a8, A, lda, T, K, prep);
        a = &a8;
    }
    if ((double)R * K * T < 262144.0)
        nt = 1;
    /* streaming: each thread one contiguous range of rows (the hardware and software prefetches
     * then run ahead in the rows the thread reads next: 0.38-0.45 -> 0.73-0.76 of the read
     * bandwidth for a q4 product, bench/RESULTS.md); teacher forcing: blocks handed out in turn */
    if (T <= DOT_MAX_T) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int blk = 0; blk < n_blk; blk++)
            gemm_block(m, blk * rows, rows, T, A, lda, a, bias, beta, C, ldc, scratch);
    } else {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int blk = 0; blk < n_blk; blk++)
            gemm_block(m, blk * rows, rows, T, A, lda, a, bias, beta, C, ldc, scratch);
    }
}

void flm_qmat_gemm_ref(const flm_qmat *m, int T, const float *A, int lda, const float *bias,
                       float beta, float *C, int ldc)
{
    int K = m->cols, act_q = (m->type == FLM_W_Q8 || m->type == FLM_W_Q4) && T <= DOT_MAX_T;
    float *row = flm_malloc((size_t)K * sizeof *row), *x = flm_malloc((size_t)T * K * sizeof *x);
    for (int t = 0; t < T && x; t++) /* the activations as the product sees them */
        for (int lo = 0; lo < K; lo += FLM_QBLOCK) {
            const float *a = A + (size_t)t * lda;
            int hi = lo + FLM_QBLOCK < K ? lo + FLM_QBLOCK : K;
            float amax = 0.0f;
            for (int i = lo; i < hi; i++)
                amax = fmaxf(amax, fabsf(a[i]));
            float s = amax / 127.0f;
            for (int i = lo; i < hi; i++)
                x[(size_t)t * K + i] = !act_q     ? a[i]
                                       : s > 0.0f ? rintf(a[i] * (1.0f / s)) * s
                                                  : 0.0f;
        }
    for (int r = 0; r < m->rows && row && x; r++) {
        flm_qmat_row(m, r, row);
        for (int t = 0; t < T; t++) {
            double s = bias ? bias[r] : 0.0;
            for (int i = 0; i < K; i++)
                s += (double)x[(size_t)t * K + i] * row[i];
            float *c = &C[(size_t)t * ldc + r];
            *c = (float)(s + (beta != 0.0f ? (double)beta * *c : 0.0));
        }
    }
    flm_free(row);
    flm_free(x);
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
