/* Kernels: fast versions (OpenBLAS + OpenMP, time-major) and their plain reference twins
 * (channel-major, PyTorch formulation, double accumulation). See flm_kernels.h. */
#include "flm_kernels.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

#define MAX_THREADS 64

static int g_threads = 1;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_single_thread(void)
{
    /* OpenBLAS's own pool would compete with ours on the same cores; we split the work. */
    openblas_set_num_threads(1);
}

void flm_kernels_init(int n_threads)
{
    pthread_once(&blas_once, blas_single_thread);
    g_threads = n_threads > 0 ? n_threads : omp_get_max_threads();
    if (g_threads < 1)
        g_threads = 1;
    if (g_threads > MAX_THREADS)
        g_threads = MAX_THREADS;
}

int flm_kernels_threads(void)
{
    return g_threads;
}

const char *flm_kernels_blas_core(void)
{
    const char *s = openblas_get_corename();
    return s ? s : "unknown";
}

/* ---------------------------------------------------------------- GEMM */

/* C[M][N] = A[M][K] B[N][K]^T + beta C, asked of BLAS as the column-major product
 * C^T = B A^T: OpenBLAS then packs the weights B as its "A" operand and the activations once as
 * its "B". Asked the row-major way, it re-packed the activations for every block of output
 * channels, which cost more than the multiply itself on the narrow early SEANet layers (perf:
 * 39 % of encode time in sgemm_incopy). */
static void sgemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc)
{
    cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, N, M, K, 1.0f, B, ldb, A, lda, beta, C,
                ldc);
}

void flm_gemm_nt_f32(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc)
{
    int nt = g_threads;
    if (M <= 0 || N <= 0)
        return;
    pthread_once(&blas_once, blas_single_thread);
    if (nt <= 1 || (double)M * N * K < 262144.0) {
        sgemm_nt(M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Many rows: split the rows (each thread streams all weights once, cache-friendly for
     * batch); few rows (streaming): split the output columns so each thread reads only its
     * share of the weights. Blocks are handed out dynamically, 4 per thread: on a shared machine
     * a static half each leaves one thread waiting for the one whose core is taken. */
    int split_m = M >= 64 * nt, total = split_m ? M : N, unit = split_m ? 8 : 16;
    int per = ((total + 4 * nt - 1) / (4 * nt) + unit - 1) / unit * unit;
    int n_blocks = (total + per - 1) / per;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int blk = 0; blk < n_blocks; blk++) {
        int lo = blk * per, hi = lo + per < total ? lo + per : total;
        if (split_m)
            sgemm_nt(hi - lo, N, K, A + (size_t)lo * lda, lda, B, ldb, beta, C + (size_t)lo * ldc,
                     ldc);
        else
            sgemm_nt(M, hi - lo, K, A, lda, B + (size_t)lo * ldb, ldb, beta, C + lo, ldc);
    }
}

void flm_gemm_nt_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)A[(size_t)i * lda + k] * B[(size_t)j * ldb + k];
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(s + (beta != 0.0f ? (double)beta * *c : 0.0));
        }
}

static void fill_rows(float *y, int T, int n, const float *b)
{
    for (int t = 0; t < T; t++)
        memcpy(y + (size_t)t * n, b, (size_t)n * sizeof *y);
}

void flm_linear_f32(int T, int n_in, int n_out, const float *x, const float *w, const float *b,
                    float *y)
{
    if (b)
        fill_rows(y, T, n_out, b);
    flm_gemm_nt_f32(T, n_out, n_in, x, n_in, w, n_in, b ? 1.0f : 0.0f, y, n_out);
}

void flm_linear_ref(int T, int n_in, int n_out, const float *x, const float *w, const float *b,
                    float *y)
{
    for (int t = 0; t < T; t++)
        for (int o = 0; o < n_out; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < n_in; i++)
                s += (double)x[(size_t)t * n_in + i] * w[(size_t)o * n_in + i];
            y[(size_t)t * n_out + o] = (float)s;
        }
}

/* ---------------------------------------------------------------- conv1d */

int flm_conv1d_pad(const flm_conv1d *c)
{
    return (c->k - 1) * c->dilation + 1 - c->stride;
}

int flm_conv1d_n_in(const flm_conv1d *c, int n_out)
{
    return (n_out - 1) * c->stride + (c->k - 1) * c->dilation + 1;
}

void flm_conv1d_pack_weight(const float *src, int c_out, int c_in, int k, float *dst)
{
    for (int o = 0; o < c_out; o++)
        for (int i = 0; i < c_in; i++)
            for (int j = 0; j < k; j++)
                dst[((size_t)o * k + j) * c_in + i] = src[((size_t)o * c_in + i) * k + j];
}

/* Narrow input (the 1-channel waveform conv, k*c_in = 7): GEMMs with K = 1 would crawl, so
 * accumulate over taps with the weights transposed to [k*c_in][c_out] (on the stack), the inner
 * loop running along contiguous output channels. */
__attribute__((optimize("O3", "tree-vectorize"),
               target_clones("avx512f", "avx2", "default"))) static void
conv_narrow_in(const flm_conv1d *c, const float *x, int n_out, float *y, int keep)
{
    float wt[8192]; /* [k*c_in][c_out] */
    int kc = c->k * c->c_in, co = c->c_out;
    for (int o = 0; o < co; o++)
        for (int j = 0; j < kc; j++)
            wt[j * co + o] = c->w[(size_t)o * kc + j];
    for (int t = 0; t < n_out; t++) {
        float *yr = y + (size_t)t * co;
        if (!keep)
            memset(yr, 0, (size_t)co * sizeof *yr);
        for (int j = 0; j < c->k; j++)
            for (int i = 0; i < c->c_in; i++) {
                float xv = x[((size_t)t * c->stride + (size_t)j * c->dilation) * c->c_in + i];
                const float *wr = wt + (size_t)(j * c->c_in + i) * co;
                for (int o = 0; o < co; o++)
                    yr[o] += xv * wr[o];
            }
    }
}

/* One output channel (the decoder's last conv): output t is a dot product of k*c_in contiguous
 * floats with the weights; 16 partial sums let the compiler vectorise it. */
__attribute__((optimize("O3", "tree-vectorize"),
               target_clones("avx512f", "avx2", "default"))) static void
conv_one_out(const flm_conv1d *c, const float *x, int n_out, float *y, int keep)
{
    int n = c->k * c->c_in;
    for (int t = 0; t < n_out; t++) {
        const float *xr = x + (size_t)t * c->stride * c->c_in;
        float acc[16] = {0}, s = keep ? y[t] : 0.0f;
        int i = 0;
        for (; i + 16 <= n; i += 16)
            for (int l = 0; l < 16; l++)
                acc[l] += xr[i + l] * c->w[i + l];
        for (; i < n; i++)
            s += xr[i] * c->w[i];
        for (int l = 0; l < 16; l++)
            s += acc[l];
        y[t] = s;
    }
}

/* ---------------------------------------------------------------- direct conv (AVX-512) */

/* expm1(x) for x <= 0 without a libm call, so the ELU loop vectorises: x = n ln2 + r with
 * |r| <= ln2/2 (ln2 split in two for an exact product), e^r - 1 by its Taylor series to r^8
 * (truncation < 2e-9 relative), then e^x - 1 = 2^n (e^r - 1) + (2^n - 1). Absolute error about
 * 1e-7 (the test checks against double expm1); below -88, -1. */
static inline __attribute__((always_inline)) float expm1_neg(float x)
{
    float c = x + 88.0f; /* branch-free clamp to >= -88 (keeps the loop vectorisable) */
    x -= (c - fabsf(c)) * 0.5f;
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest via 1.5*2^23 */
    float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
    float p = 1.0f / 40320;
    p = p * r + 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r * r + r; /* e^r - 1 */
    union {
        float f;
        int32_t i;
    } two = {.i = ((int32_t)n + 127) << 23};
    return two.f * p + (two.f - 1.0f);
}

__attribute__((optimize("O3", "tree-vectorize"),
               target_clones("avx512f", "avx2", "default"))) static void
elu_run(float *x, size_t n)
{
    /* min(v,0) and max(v,0) exactly, without branches; expm1_neg(0) == 0 */
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = (v + fabsf(v)) * 0.5f + expm1_neg((v - fabsf(v)) * 0.5f);
    }
}

/* Output row t of a dilation-1 conv reads the k*c_in contiguous floats at x + t*stride*c_in: the
 * whole conv is one product with overlapping A rows (row step stride*c_in < K), which BLAS
 * refuses (lda >= K), so the GEMM path above splits it by stride and has OpenBLAS pack the
 * activations once per group (most of its time on the narrow SEANet layers). This kernel reads
 * the rows in place: tiles of up to DC_ROWS output rows x DC_W output channels, one
 * broadcast of x per row and two weight vectors per step of the K = k*c_in loop, weights packed
 * at load into panels [c_out/DC_W][K][DC_W] (zero-padded). Each output sums its K products in
 * order in one accumulator (bias first), so results do not depend on the row tiling or threads:
 * streaming and batch steps give identical floats. */
#define DC_W 32
#define DC_ROWS 12
#define DC_BLOCK 96   /* rows per task */
#define DC_KBLOCK 512 /* products summed per pass over a row tile */

static int avx512_allowed = 1;

void flm_kernels_use_avx512(int enable)
{
    avx512_allowed = enable;
}

int flm_kernels_avx512(void)
{
    static int v = -1;
    if (v < 0)
        v = __builtin_cpu_supports("avx512f");
    return v && avx512_allowed;
}

size_t flm_conv1d_panels_size(const flm_conv1d *c)
{
    return (size_t)(c->c_out + DC_W - 1) / DC_W * DC_W * c->k * c->c_in;
}

void flm_conv1d_pack_panels(const flm_conv1d *c, float *dst)
{
    size_t K = (size_t)c->k * c->c_in;
    for (int p = 0; p < (c->c_out + DC_W - 1) / DC_W; p++)
        for (size_t kk = 0; kk < K; kk++)
            for (int l = 0; l < DC_W; l++) {
                int o = p * DC_W + l;
                dst[((size_t)p * K + kk) * DC_W + l] = o < c->c_out ? c->w[(size_t)o * K + kk] : 0;
            }
}

#define AVX512 __attribute__((target("avx512f,fma")))

/* y[R][n] (ldy) = (accumulate ? y : 0) + bias + x[R rows, step lda][K] * panel[K][DC_W] over the
 * n <= DC_W valid lanes. */
AVX512 static inline __attribute__((always_inline)) void dc_tile(int R, const float *x, int lda,
                                                                 int K, const float *wp,
                                                                 const float *bias, int n, float *y,
                                                                 int ldy, int accumulate)
{
    __m512 acc[DC_ROWS][2];
    __mmask16 m0 = (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1);
    __mmask16 m1 = (__mmask16)(n >= 32 ? 0xffff : n > 16 ? (1u << (n - 16)) - 1 : 0);
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    if (bias) {
        b0 = _mm512_maskz_loadu_ps(m0, bias);
        b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
        acc[r][0] = b0, acc[r][1] = b1;
    for (int kk = 0; kk < K; kk++) {
        __m512 w0 = _mm512_loadu_ps(wp + (size_t)kk * DC_W),
               w1 = _mm512_loadu_ps(wp + (size_t)kk * DC_W + 16);
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            __m512 xb = _mm512_set1_ps(x[(size_t)r * lda + kk]);
            acc[r][0] = _mm512_fmadd_ps(xb, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(xb, w1, acc[r][1]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
        float *yr = y + (size_t)r * ldy;
        if (accumulate) {
            acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(m0, yr));
            acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(m1, yr + 16));
        }
        _mm512_mask_storeu_ps(yr, m0, acc[r][0]);
        _mm512_mask_storeu_ps(yr + 16, m1, acc[r][1]);
    }
}

AVX512 static void dc_tile_any(int R, const float *x, int lda, int K, const float *wp,
                               const float *bias, int n, float *y, int ldy, int accumulate)
{
    switch (R) {
#define DC_CASE(r)                                                                                 \
    case r:                                                                                        \
        dc_tile(r, x, lda, K, wp, bias, n, y, ldy, accumulate);                                    \
        break;
        DC_CASE(1) DC_CASE(2) DC_CASE(3) DC_CASE(4) DC_CASE(5) DC_CASE(6);
        DC_CASE(7) DC_CASE(8) DC_CASE(9) DC_CASE(10) DC_CASE(11) DC_CASE(12);
#undef DC_CASE
    }
}

static void conv_direct(const flm_conv1d *c, const float *x, int n_out, float *y, int flags)
{
    int K = c->k * c->c_in, lda = c->stride * c->c_in, co = c->c_out;
    int n_pan = (co + DC_W - 1) / DC_W, n_rb = (n_out + DC_BLOCK - 1) / DC_BLOCK, nt = g_threads;
    /* Few row blocks (streaming steps, the last encoder layers): split the panels too. */
    int pg = n_rb >= 4 * nt ? 1 : (4 * nt + n_rb - 1) / n_rb;
    pg = pg > n_pan ? n_pan : pg;
    int per_pg = (n_pan + pg - 1) / pg, n_tasks = n_rb * pg;
    double flops = 2.0 * n_out * co * K;
#pragma omp parallel for num_threads(nt) if (nt > 1 && n_tasks > 1 && flops > 1e6)                 \
    schedule(dynamic, 1)
    for (int task = 0; task < n_tasks; task++) {
        int r0 = task / pg * DC_BLOCK, r1 = r0 + DC_BLOCK < n_out ? r0 + DC_BLOCK : n_out;
        int p0 = task % pg * per_pg, p1 = p0 + per_pg < n_pan ? p0 + per_pg : n_pan;
        for (int p = p0; p < p1; p++) {
            int n = co - p * DC_W < DC_W ? co - p * DC_W : DC_W;
            const float *bias = c->b ? c->b + p * DC_W : NULL;
            for (int kb = 0; kb < K; kb += DC_KBLOCK) /* a block of the panel stays in cache */
                for (int r = r0; r < r1; r += DC_ROWS) {
                    int R = r1 - r < DC_ROWS ? r1 - r : DC_ROWS;
                    int kl = K - kb < DC_KBLOCK ? K - kb : DC_KBLOCK;
                    dc_tile_any(R, x + (size_t)r * lda + kb, lda, kl,
                                c->wp + ((size_t)p * K + kb) * DC_W, kb ? NULL : bias, n,
                                y + (size_t)r * co + p * DC_W, co,
                                kb || (flags & FLM_CONV_ACCUMULATE));
                }
        }
        int c0 = p0 * DC_W, c1 = p1 * DC_W < co ? p1 * DC_W : co;
        if (flags & FLM_CONV_ELU)
            for (int r = r0; r < r1; r++)
                elu_run(y + (size_t)r * co + c0, (size_t)(c1 - c0));
    }
}

void flm_conv1d_run(const flm_conv1d *c, const float *x, int n_out, float *y, int flags)
{
    if (n_out <= 0)
        return;
    if (c->wp && c->dilation == 1 && c->c_out > 1) {
        conv_direct(c, x, n_out, y, flags);
        return;
    }
    float beta = 0.0f;
    if (flags & FLM_CONV_ACCUMULATE) {
        beta = 1.0f;
        for (int t = 0; c->b && t < n_out; t++)
            for (int o = 0; o < c->c_out; o++)
                y[(size_t)t * c->c_out + o] += c->b[o];
    } else if (c->b) {
        fill_rows(y, n_out, c->c_out, c->b);
        beta = 1.0f;
    }
    int lda = c->stride * c->c_in;
    if (c->c_in * c->stride < 8 && (size_t)c->k * c->c_in * c->c_out <= 8192) {
        conv_narrow_in(c, x, n_out, y, beta != 0.0f);
    } else if (c->c_out == 1 && c->dilation == 1) {
        conv_one_out(c, x, n_out, y, beta != 0.0f);
    } else {
        /* Output row t reads input rows t*stride + j (dilation 1): taps j0 .. j0+stride-1 are
         * one contiguous run of stride*c_in floats, so each group of `stride` taps is a GEMM
         * whose A matrix is x itself (row step lda = stride*c_in) - no im2col copy. A dilated
         * conv takes one tap per GEMM. */
        int group = c->dilation == 1 ? c->stride : 1;
        for (int j0 = 0; j0 < c->k; j0 += group) {
            int gs = c->k - j0 < group ? c->k - j0 : group;
            flm_gemm_nt_f32(n_out, c->c_out, gs * c->c_in, x + (size_t)j0 * c->dilation * c->c_in,
                            lda, c->w + (size_t)j0 * c->c_in, c->k * c->c_in, beta, y, c->c_out);
            beta = 1.0f;
        }
    }
    if (flags & FLM_CONV_ELU)
        flm_elu_f32(y, (size_t)n_out * c->c_out);
}

void flm_conv1d_f32(const flm_conv1d *c, const float *x, int n_out, float *y)
{
    flm_conv1d_run(c, x, n_out, y, 0);
}

int flm_conv1d_ref(const float *w, const float *b, int c_in, int c_out, int k, int stride,
                   int dilation, flm_pad_mode pad, const float *x_cm, int T, float *y_cm)
{
    int k_eff = (k - 1) * dilation + 1;
    int pad_total = k_eff - stride;
    /* moshi get_extra_padding_for_conv1d: make the last window complete. */
    double n_frames = (double)(T - k_eff + pad_total) / stride + 1.0;
    int ideal = ((int)ceil(n_frames) - 1) * stride + (k_eff - pad_total);
    int extra = ideal - T > 0 ? ideal - T : 0;
    int Tp = pad_total + T + extra;
    int T_out = (Tp - k_eff) / stride + 1;
    for (int o = 0; o < c_out; o++)
        for (int t = 0; t < T_out; t++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < c_in; i++)
                for (int j = 0; j < k; j++) {
                    int p = t * stride + j * dilation - pad_total; /* index into x */
                    double v;
                    if (p < 0)
                        v = pad == FLM_PAD_REPLICATE ? x_cm[(size_t)i * T] : 0.0;
                    else if (p >= T)
                        v = 0.0; /* right padding is always zeros */
                    else
                        v = x_cm[(size_t)i * T + p];
                    s += v * w[((size_t)o * c_in + i) * k + j];
                }
            y_cm[(size_t)o * T_out + t] = (float)s;
        }
    return T_out;
}

/* ---------------------------------------------------------------- transposed conv1d */

void flm_convtr1d_pack_weight(const float *src, int c_in, int c_out, int k, float *dst)
{
    for (int i = 0; i < c_in; i++)
        for (int o = 0; o < c_out; o++)
            for (int j = 0; j < k; j++)
                dst[((size_t)j * c_out + o) * c_in + i] = src[((size_t)i * c_out + o) * k + j];
}

void flm_convtr1d_f32(const flm_convtr1d *c, const float *x, int n_in, float *y, float *scratch)
{
    int n_y = (n_in - 1) * c->stride + c->k, co = c->c_out;
    if (n_in <= 0)
        return;
    if (c->b)
        fill_rows(y, n_y, co, c->b);
    else
        memset(y, 0, (size_t)n_y * co * sizeof *y);
    if (c->depthwise) {
        for (int t = 0; t < n_in; t++)
            for (int j = 0; j < c->k; j++) {
                float *yr = y + ((size_t)t * c->stride + j) * co;
                const float *xr = x + (size_t)t * co;
                for (int ch = 0; ch < co; ch++)
                    yr[ch] += xr[ch] * c->w[(size_t)ch * c->k + j];
            }
        return;
    }
    /* scratch[t][j][o] = sum_i x[t][i] w[i][o][j]; then overlap-add the k rows of each t. */
    if (c->wp) {
        flm_conv1d v = {
            .c_in = c->c_in, .c_out = c->k * co, .k = 1, .stride = 1, .dilation = 1, .wp = c->wp};
        flm_conv1d_run(&v, x, n_in, scratch, 0);
    } else {
        flm_gemm_nt_f32(n_in, c->k * co, c->c_in, x, c->c_in, c->w, c->c_in, 0.0f, scratch,
                        c->k * co);
    }
    for (int t = 0; t < n_in; t++) {
        const float *s = scratch + (size_t)t * c->k * co;
        float *yr = y + (size_t)t * c->stride * co;
        for (size_t e = 0; e < (size_t)c->k * co; e++)
            yr[e] += s[e];
    }
}

void flm_convtr1d_ref(const float *w, const float *b, int c_in, int c_out, int k, int stride,
                      int depthwise, const float *x_cm, int T, float *y_cm)
{
    int T_full = (T - 1) * stride + k, T_out = T * stride; /* causal: drop the last k - stride */
    (void)T_full;
    for (int o = 0; o < c_out; o++)
        for (int u = 0; u < T_out; u++) {
            double s = b ? b[o] : 0.0;
            for (int t = 0; t < T; t++) {
                int j = u - t * stride;
                if (j < 0 || j >= k)
                    continue;
                if (depthwise)
                    s += (double)x_cm[(size_t)o * T + t] * w[(size_t)o * k + j];
                else
                    for (int i = 0; i < c_in; i++)
                        s += (double)x_cm[(size_t)i * T + t] * w[((size_t)i * c_out + o) * k + j];
            }
            y_cm[(size_t)o * T_out + u] = (float)s;
        }
}

/* ---------------------------------------------------------------- pointwise */

void flm_elu_f32(float *x, size_t n)
{
    int nt = n > 65536 ? g_threads : 1;
    if (nt <= 1) {
        elu_run(x, n);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        size_t per = (n / (size_t)omp_get_num_threads() + 15) / 16 * 16;
        size_t lo = per * (size_t)omp_get_thread_num();
        if (lo < n)
            elu_run(x + lo, n - lo < per ? n - lo : per);
    }
}

void flm_elu_ref(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] > 0.0f ? x[i] : (float)expm1((double)x[i]);
}

/* erf(x) in float32 without a libm call, so the GELU loop vectorises (libm's erff per element
 * took a tenth of the Mimi transformer): Eigen's rational approximation on [-4, 4] (erf(+-4) is
 * +-1 in float32), error a few ulp. */
static inline __attribute__((always_inline)) float erf_approx(float x)
{
    x = x > 4.0f ? 4.0f : x < -4.0f ? -4.0f : x;
    float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return x * p / q;
}

__attribute__((optimize("O3", "tree-vectorize"),
               target_clones("avx512f", "avx2", "default"))) static void
gelu_run(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erf_approx(x[i] * 0.70710678118654752f));
}

void flm_gelu_f32(float *x, size_t n)
{
    int nt = n > 65536 ? g_threads : 1;
    if (nt <= 1) {
        gelu_run(x, n);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        size_t per = (n / (size_t)omp_get_num_threads() + 15) / 16 * 16;
        size_t lo = per * (size_t)omp_get_thread_num();
        if (lo < n)
            gelu_run(x + lo, n - lo < per ? n - lo : per);
    }
}

void flm_gelu_ref(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0))));
}

void flm_layer_norm_f32(int T, int d, const float *x, const float *w, const float *b, float eps,
                        float *y)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * d;
        float *yr = y + (size_t)t * d;
        float mean = 0.0f, var = 0.0f;
        for (int i = 0; i < d; i++)
            mean += xr[i];
        mean /= (float)d;
        for (int i = 0; i < d; i++)
            var += (xr[i] - mean) * (xr[i] - mean);
        float inv = 1.0f / sqrtf(var / (float)d + eps);
        for (int i = 0; i < d; i++)
            yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
    }
}

void flm_layer_norm_ref(int T, int d, const float *x, const float *w, const float *b, float eps,
                        float *y)
{
    for (int t = 0; t < T; t++) {
        double mean = 0, var = 0;
        for (int i = 0; i < d; i++)
            mean += x[(size_t)t * d + i];
        mean /= d;
        for (int i = 0; i < d; i++) {
            double e = x[(size_t)t * d + i] - mean;
            var += e * e;
        }
        var /= d;
        for (int i = 0; i < d; i++)
            y[(size_t)t * d + i] =
                (float)((x[(size_t)t * d + i] - mean) / sqrt(var + eps) * w[i] + b[i]);
    }
}

void flm_rms_norm_f32(int T, int d, const float *x, const float *w, float eps, float *y)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * d;
        float *yr = y + (size_t)t * d;
        float ss = 0.0f;
        for (int i = 0; i < d; i++)
            ss += xr[i] * xr[i];
        float inv = 1.0f / sqrtf(ss / (float)d + eps);
        for (int i = 0; i < d; i++)
            yr[i] = xr[i] * inv * w[i];
    }
}

void flm_rms_norm_ref(int T, int d, const float *x, const float *w, float eps, float *y)
{
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int i = 0; i < d; i++)
            ss += (double)x[(size_t)t * d + i] * x[(size_t)t * d + i];
        double inv = 1.0 / sqrt(ss / d + eps);
        for (int i = 0; i < d; i++)
            y[(size_t)t * d + i] = (float)(x[(size_t)t * d + i] * inv * w[i]);
    }
}

void flm_swiglu_f32(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void flm_swiglu_ref(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = (float)((double)g[i] / (1.0 + exp(-(double)g[i])) * u[i]);
}

/* ---------------------------------------------------------------- RoPE and attention */

void flm_rope_f32(float *x, int T, int ld, int64_t pos0, int n_head, int d_head, float max_period,
                  flm_rope_kind kind)
{
    int half = d_head / 2;
    /* float32 throughout, as torch computes exp(arange * -log(max_period)*2/D) and cos(f * t). */
    float step = (float)(-log((double)max_period) * 2.0 / d_head);
    for (int t = 0; t < T; t++) {
        float pos = (float)(pos0 + t);
        for (int i = 0; i < half; i++) {
            float ang = expf((float)i * step) * pos;
            float cr = cosf(ang), sr = sinf(ang);
            for (int h = 0; h < n_head; h++) {
                float *p = x + (size_t)t * ld + (size_t)h * d_head;
                int a = kind == FLM_ROPE_INTERLEAVED ? 2 * i : i;
                int bi = kind == FLM_ROPE_INTERLEAVED ? 2 * i + 1 : i + half;
                float re = p[a], im = p[bi];
                p[a] = re * cr - im * sr;
                p[bi] = re * sr + im * cr;
            }
        }
    }
}

void flm_rope_ref(float *x, int T, int ld, int64_t pos0, int n_head, int d_head, float max_period,
                  flm_rope_kind kind)
{
    int half = d_head / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_head; h++)
            for (int i = 0; i < half; i++) {
                double theta = (double)(pos0 + t) * pow((double)max_period, -2.0 * i / d_head);
                float *p = x + (size_t)t * ld + (size_t)h * d_head;
                int a = kind == FLM_ROPE_INTERLEAVED ? 2 * i : i;
                int bi = kind == FLM_ROPE_INTERLEAVED ? 2 * i + 1 : i + half;
                double re = p[a], im = p[bi];
                p[a] = (float)(re * cos(theta) - im * sin(theta));
                p[bi] = (float)(re * sin(theta) + im * cos(theta));
            }
}

size_t flm_attention_scratch_size(int n_q, int n_kv, int n_head)
{
    return (size_t)(n_q > 0 ? n_q : 1) * (size_t)(n_kv > 0 ? n_kv : 1) * (size_t)n_head;
}

static void key_range(int64_t p, int64_t k_pos0, int n_kv, int context, int *lo, int *hi)
{
    int64_t first = context > 0 ? p - context + 1 : INT64_MIN / 2;
    int64_t l = first - k_pos0, h = p - k_pos0;
    *lo = l < 0 ? 0 : (int)l;
    *hi = h >= n_kv ? n_kv - 1 : (int)h;
}

/* row[lo..hi] <- softmax, the rest of row[0..n) <- 0. exp(x - max) = expm1_neg(x - max) + 1
 * (the argument is <= 0), which vectorises where a libm expf call per score does not (the
 * scores of a 64-step chunk took longer than its two products). */
__attribute__((optimize("O3", "tree-vectorize"),
               target_clones("avx512f", "avx2", "default"))) static void
softmax_window(float *row, int n, int lo, int hi)
{
    float mx = -INFINITY, sum = 0.0f;
    for (int j = lo; j <= hi; j++)
        mx = row[j] > mx ? row[j] : mx;
    for (int j = 0; j < lo; j++)
        row[j] = 0.0f;
    for (int j = lo; j <= hi; j++) {
        float e = expm1_neg(row[j] - mx) + 1.0f;
        row[j] = e;
        sum += e;
    }
    for (int j = hi + 1; j < n; j++)
        row[j] = 0.0f;
    float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int j = lo; j <= hi; j++)
        row[j] *= inv;
}

/* Per head, two single-threaded GEMMs over the keys any query of the block can see:
 * S = Q_h K_h^T, a masked softmax per row (each query's own window), O_h = P V_h. Heads are
 * spread over the OpenMP threads. */
void flm_attention_f32(const float *q, int ldq, const float *k, const float *v, int ldkv, int n_q,
                       int n_kv, int64_t q_pos0, int64_t k_pos0, int context, int n_head,
                       int d_head, float *out, float *scratch)
{
    flm_attention_gqa_f32(q, ldq, k, v, ldkv, n_q, n_kv, q_pos0, k_pos0, context, n_head, n_head,
                          d_head, out, scratch);
}

void flm_attention_gqa_f32(const float *q, int ldq, const float *k, const float *v, int ldkv,
                           int n_q, int n_kv, int64_t q_pos0, int64_t k_pos0, int context,
                           int n_head, int n_kv_head, int d_head, float *out, float *scratch)
{
    int group = n_head / n_kv_head; /* query heads per key/value head */
    float scale = 1.0f / sqrtf((float)d_head);
    int lo0, hi0, lo1, hi1, ldo = n_head * d_head;
    if (n_q <= 0)
        return;
    key_range(q_pos0, k_pos0, n_kv, context, &lo0, &hi0);
    key_range(q_pos0 + n_q - 1, k_pos0, n_kv, context, &lo1, &hi1);
    int base = lo0, n = hi1 - lo0 + 1; /* keys [base, base + n) */
    pthread_once(&blas_once, blas_single_thread);
#pragma omp parallel for num_threads(g_threads) if (n_head > 1 && (double)n_q * n * d_head > 2e4)  \
    schedule(static)
    for (int h = 0; h < n_head; h++) {
        float *S = scratch + (size_t)h * n_q * (n > 0 ? n : 1); /* [n_q][n] */
        if (n > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_q, n, d_head, scale,
                        q + (size_t)h * d_head, ldq,
                        k + (size_t)base * ldkv + (size_t)(h / group) * d_head, ldkv, 0.0f, S, n);
        for (int i = 0; i < n_q; i++) {
            int lo, hi;
            key_range(q_pos0 + i, k_pos0, n_kv, context, &lo, &hi);
            softmax_window(S + (size_t)i * n, n, lo - base, hi - base);
        }
        if (n > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_q, d_head, n, 1.0f, S, n,
                        v + (size_t)base * ldkv + (size_t)(h / group) * d_head, ldkv, 0.0f,
                        out + (size_t)h * d_head, ldo);
        else
            for (int i = 0; i < n_q; i++)
                memset(out + (size_t)i * ldo + (size_t)h * d_head, 0, (size_t)d_head * sizeof *out);
    }
}

void flm_attention_ref(const float *q, int ldq, const float *k, const float *v, int ldkv, int n_q,
                       int n_kv, int64_t q_pos0, int64_t k_pos0, int context, int n_head,
                       int d_head, float *out)
{
    flm_attention_gqa_ref(q, ldq, k, v, ldkv, n_q, n_kv, q_pos0, k_pos0, context, n_head, n_head,
                          d_head, out);
}

void flm_attention_gqa_ref(const float *q, int ldq, const float *k, const float *v, int ldkv,
                           int n_q, int n_kv, int64_t q_pos0, int64_t k_pos0, int context,
                           int n_head, int n_kv_head, int d_head, float *out)
{
    for (int i = 0; i < n_q; i++)
        for (int h = 0; h < n_head; h++) {
            int64_t p = q_pos0 + i, kh = h / (n_head / n_kv_head);
            double mx = -INFINITY, sum = 0, acc[1024] = {0};
            /* mask as in moshi: key allowed iff 0 <= p - pos_k < context */
            for (int pass = 0; pass < 2; pass++)
                for (int j = 0; j < n_kv; j++) {
                    int64_t delta = p - (k_pos0 + j);
                    if (delta < 0 || (context > 0 && delta >= context))
                        continue;
                    double s = 0;
                    for (int e = 0; e < d_head; e++)
                        s += (double)q[(size_t)i * ldq + h * d_head + e] *
                             k[(size_t)j * ldkv + kh * d_head + e];
                    s /= sqrt((double)d_head);
                    if (pass == 0) {
                        mx = s > mx ? s : mx;
                    } else {
                        double pr = exp(s - mx);
                        sum += pr;
                        for (int e = 0; e < d_head && e < 1024; e++)
                            acc[e] += pr * v[(size_t)j * ldkv + kh * d_head + e];
                    }
                }
            for (int e = 0; e < d_head && e < 1024; e++)
                out[(size_t)i * n_head * d_head + h * d_head + e] =
                    sum > 0 ? (float)(acc[e] / sum) : 0.0f;
        }
}

double flm_norm_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1e-150);
}
