/* Every engine kernel against its reference twin (normalised error), at 1 and 2 threads,
 * plus the dtype conversions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_quant.h"
#include "flm_rng.h"
#include "flm_tensor.h"
#include "tap.h"

#define TOL 2e-6

static float *rnd(size_t n, const char *what, float scale)
{
    flm_rng r;
    float *p = flm_malloc(n * sizeof *p);
    flm_rng_init(&r, 42, what, "test");
    for (size_t i = 0; i < n; i++)
        p[i] = (float)flm_rng_normal(&r) * scale;
    return p;
}

static void test_conversions(void)
{
    float f[] = {1.0f, -2.5f, 65504.0f, 0x1p-24f, 1e-8f, 70000.0f, 0.333333343f, -0.0f};
    uint16_t h[8];
    float back[8];
    flm_f32_to_f16(f, h, 8);
    TAP_EQ_INT(h[0], 0x3c00, "f16(1.0)");
    TAP_EQ_INT(h[1], 0xc100, "f16(-2.5)");
    TAP_EQ_INT(h[2], 0x7bff, "f16(65504) = max");
    TAP_EQ_INT(h[3], 0x0001, "f16(2^-24) = smallest subnormal");
    TAP_EQ_INT(h[4], 0x0000, "f16(1e-8) underflows to 0");
    TAP_EQ_INT(h[5], 0x7c00, "f16(70000) = inf");
    TAP_EQ_INT(h[6], 0x3555, "f16(1/3) rounds to nearest");
    TAP_EQ_INT(h[7], 0x8000, "f16(-0)");
    flm_f16_to_f32(h, back, 8);
    TAP_OK(back[0] == 1.0f && back[1] == -2.5f && back[2] == 65504.0f && back[3] == 0x1p-24f &&
               isinf(back[5]),
           "f16 -> f32 exact on representable values");
    flm_f32_to_bf16(f, h, 8);
    TAP_EQ_INT(h[0], 0x3f80, "bf16(1.0)");
    TAP_EQ_INT(h[6], 0x3eab, "bf16(1/3) rounds to nearest");
    flm_bf16_to_f32(h, back, 8);
    TAP_OK(back[0] == 1.0f && back[1] == -2.5f, "bf16 -> f32");
    /* every f16 bit pattern round-trips through f32 (except NaN payloads) */
    int bad = 0;
    for (uint32_t u = 0; u < 65536; u++) {
        uint16_t a = (uint16_t)u, b;
        float x;
        flm_f16_to_f32(&a, &x, 1);
        flm_f32_to_f16(&x, &b, 1);
        if (!isnan(x) && a != b)
            bad++;
    }
    TAP_EQ_INT(bad, 0, "all 65536 f16 values round-trip");
    uint8_t raw[4] = {0x80, 0x3f, 0x00, 0x3c}; /* bf16 1.0, f16 1.0, little-endian */
    float two[2];
    flm_convert_to_f32(FLM_DTYPE_BF16, raw, two, 1);
    flm_convert_to_f32(FLM_DTYPE_F16, raw + 2, two + 1, 1);
    TAP_OK(two[0] == 1.0f && two[1] == 1.0f, "convert_to_f32 little-endian bf16/f16");
    TAP_EQ_INT(flm_convert_to_f32(FLM_DTYPE_I32, raw, two, 1), FLM_EINVAL, "convert I32 refused");
    TAP_EQ_INT(flm_dtype_parse("BF16"), FLM_DTYPE_BF16, "dtype parse");
    TAP_EQ_INT(flm_dtype_parse("Q4"), -1, "unknown dtype");
}

static void test_gemm(int nt)
{
    int shapes[][3] = {{1, 7, 5}, {3, 512, 512}, {130, 96, 64}, {700, 33, 129}, {2, 1536, 512}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = rnd((size_t)M * K, "A", 1), *B = rnd((size_t)N * K, "B", 1);
        float *C = rnd((size_t)M * N, "C", 1), *R = flm_malloc((size_t)M * N * sizeof *R);
        memcpy(R, C, (size_t)M * N * sizeof *R);
        flm_gemm_nt_f32(M, N, K, A, K, B, K, 0.5f, C, N);
        flm_gemm_nt_ref(M, N, K, A, K, B, K, 0.5f, R, N);
        double e = flm_norm_err(C, R, (size_t)M * N);
        TAP_OK(e < TOL, "gemm %dx%dx%d beta .5 (%d thr): err %.2e", M, N, K, nt, e);
        float *y = flm_malloc((size_t)M * N * sizeof *y), *bias = rnd((size_t)N, "bias", 1);
        flm_linear_f32(M, K, N, A, B, bias, y);
        flm_linear_ref(M, K, N, A, B, bias, R);
        e = flm_norm_err(y, R, (size_t)M * N);
        TAP_OK(e < TOL, "linear %dx%d->%d (%d thr): err %.2e", M, K, N, nt, e);
        flm_free(A), flm_free(B), flm_free(C), flm_free(R), flm_free(y), flm_free(bias);
    }
}

/* Pads x_cm [c][T] causally into a time-major buffer and runs the fast kernel: the portable
 * paths, then (with panels, on an AVX-512 machine) the direct kernel; each plain, with the ELU
 * epilogue and accumulating onto an existing output. */
static void test_conv(int c_in, int c_out, int k, int stride, int dil, flm_pad_mode pm, int T,
                      int nt)
{
    float *w = rnd((size_t)c_out * c_in * k, "w", 0.3f), *b = rnd((size_t)c_out, "b", 1);
    float *x = rnd((size_t)c_in * T, "x", 1), *wp = flm_malloc((size_t)c_out * c_in * k * 4);
    flm_conv1d c = {c_in, c_out, k, stride, dil, wp, b, NULL};
    flm_conv1d_pack_weight(w, c_out, c_in, k, wp);
    float *pan = flm_malloc(flm_conv1d_panels_size(&c) * 4);
    flm_conv1d_pack_panels(&c, pan);
    int pad = flm_conv1d_pad(&c), n_out = T / stride, n_in = flm_conv1d_n_in(&c, n_out);
    size_t ny = (size_t)n_out * c_out;
    float *xt = flm_calloc((size_t)n_in * c_in, 4), *y = flm_malloc(ny * 4);
    float *yr = flm_malloc((size_t)c_out * (T / stride + 1) * 4), *yt = flm_malloc(ny * 4);
    float *y0 = rnd(ny, "y0", 1), *want = flm_malloc(ny * 4);
    for (int t = 0; t < n_in; t++)
        for (int i = 0; i < c_in; i++) {
            int p = t - pad;
            xt[(size_t)t * c_in + i] = p < 0 ? (pm == FLM_PAD_REPLICATE ? x[(size_t)i * T] : 0)
                                             : (p < T ? x[(size_t)i * T + p] : 0);
        }
    int T_out = flm_conv1d_ref(w, b, c_in, c_out, k, stride, dil, pm, x, T, yr);
    for (int t = 0; t < n_out; t++)
        for (int o = 0; o < c_out; o++)
            yt[(size_t)t * c_out + o] = yr[(size_t)o * T_out + t];
    for (int direct = 0; direct < 1 + (flm_kernels_avx512() && dil == 1 && c_out > 1); direct++) {
        c.wp = direct ? pan : NULL;
        static const char *const fname[] = {"", " +elu", " accumulate"};
        for (int f = 0; f < 3; f++) {
            int flags = f == 1 ? FLM_CONV_ELU : f == 2 ? FLM_CONV_ACCUMULATE : 0;
            memcpy(want, yt, ny * 4);
            if (f == 1)
                flm_elu_ref(want, ny);
            for (size_t i = 0; f == 2 && i < ny; i++)
                want[i] += y0[i];
            if (f == 2)
                memcpy(y, y0, ny * 4);
            flm_conv1d_run(&c, xt, n_out, y, flags);
            double e = flm_norm_err(y, want, ny);
            TAP_OK(T_out == n_out && e < TOL,
                   "conv1d%s %d->%d k%d s%d d%d %s T%d %s (%d thr): err %.2e", fname[f], c_in,
                   c_out, k, stride, dil, pm ? "replicate" : "zero", T,
                   direct ? "direct" : "portable", nt, e);
        }
    }
    flm_free(w), flm_free(b), flm_free(x), flm_free(wp), flm_free(xt), flm_free(y);
    flm_free(yr), flm_free(yt), flm_free(y0), flm_free(want), flm_free(pan);
}

static void test_convtr(int c_in, int c_out, int k, int stride, int dw, int T, int nt)
{
    size_t nw = dw ? (size_t)c_in * k : (size_t)c_in * c_out * k;
    float *w = rnd(nw, "w", 0.3f), *b = dw ? NULL : rnd((size_t)c_out, "b", 1);
    float *x = rnd((size_t)c_in * T, "x", 1), *wp = flm_malloc(nw * 4);
    int n_full = (T - 1) * stride + k;
    float *xt = flm_malloc((size_t)T * c_in * 4), *y = flm_malloc((size_t)n_full * c_out * 4);
    float *scr = flm_malloc((size_t)T * k * c_out * 4),
          *yr = flm_malloc((size_t)T * stride * c_out * 4);
    if (dw)
        memcpy(wp, w, nw * 4);
    else
        flm_convtr1d_pack_weight(w, c_in, c_out, k, wp);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < c_in; i++)
            xt[(size_t)t * c_in + i] = x[(size_t)i * T + t];
    flm_convtr1d c = {c_in, c_out, k, stride, dw, wp, b, NULL};
    /* the dense product as a k = 1 conv, in panels for the direct kernel */
    flm_conv1d v = {.c_in = c_in, .c_out = k * c_out, .k = 1, .stride = 1, .dilation = 1, .w = wp};
    float *pan = dw ? NULL : flm_malloc(flm_conv1d_panels_size(&v) * 4);
    if (!dw)
        flm_conv1d_pack_panels(&v, pan);
    flm_convtr1d_ref(w, b, c_in, c_out, k, stride, dw, x, T, yr);
    for (int direct = 0; direct < 1 + (flm_kernels_avx512() && !dw); direct++) {
        c.wp = direct ? pan : NULL;
        flm_convtr1d_f32(&c, xt, T, y, scr);
        double num = 0, den = 0;
        for (int u = 0; u < T * stride; u++)
            for (int o = 0; o < c_out; o++) {
                double d = y[(size_t)u * c_out + o] - yr[(size_t)o * T * stride + u];
                num += d * d;
                den += (double)yr[(size_t)o * T * stride + u] * yr[(size_t)o * T * stride + u];
            }
        double e = sqrt(num / den);
        TAP_OK(e < TOL, "convtr1d %d->%d k%d s%d%s T%d %s (%d thr): err %.2e", c_in, c_out, k,
               stride, dw ? " depthwise" : "", T, direct ? "direct" : "portable", nt, e);
    }
    flm_free(pan);
    flm_free(w), flm_free(b), flm_free(x), flm_free(wp), flm_free(xt), flm_free(y);
    flm_free(scr), flm_free(yr);
}

static void test_pointwise(void)
{
    size_t n = 100000;
    float *a = rnd(n, "pw", 3), *b = flm_malloc(n * 4);
    memcpy(b, a, n * 4);
    flm_elu_f32(a, n);
    flm_elu_ref(b, n);
    double e = flm_norm_err(a, b, n);
    TAP_OK(e < 1e-6, "elu err %.2e", e);
    flm_free(a);
    a = rnd(n, "pw", 3);
    memcpy(b, a, n * 4);
    flm_gelu_f32(a, n);
    flm_gelu_ref(b, n);
    e = flm_norm_err(a, b, n);
    TAP_OK(e < 1e-6, "gelu (exact erf) err %.2e", e);
    double worst = 0; /* every x on a grid of -8..8 step 1/64, against double erf */
    for (int i = -512; i <= 512; i++) {
        float v = (float)i / 64, r = v;
        flm_gelu_f32(&v, 1);
        flm_gelu_ref(&r, 1);
        double d = fabs((double)v - r) / (1.0 + fabs((double)i / 64));
        worst = d > worst ? d : worst;
    }
    TAP_OK(worst < 3e-7, "gelu on -8..8: max |err| / (1 + |x|) %.2e", worst);
    float g = 1.0f;
    flm_gelu_f32(&g, 1);
    TAP_OK(fabsf(g - 0.8413447460685429f) < 1e-6f, "gelu(1) = %.7f (exact, not tanh)", g);
    worst = 0;
    for (int i = 0; i <= 200000; i++) { /* elementwise, dense over [-100, 0] */
        float xv = -100.0f * (float)i / 200000.0f, yv = xv;
        flm_elu_f32(&yv, 1);
        double d = fabs(yv - expm1((double)xv));
        worst = d > worst ? d : worst;
    }
    TAP_OK(worst < 2e-7, "elu max |err| on [-100, 0]: %.2e", worst);
    float v = -1.0f;
    flm_elu_f32(&v, 1);
    TAP_OK(fabsf(v - (float)expm1(-1.0)) < 1e-7f, "elu(-1) = expm1(-1)");
    flm_free(a), flm_free(b);

    int T = 37, d = 512;
    float *x = rnd((size_t)T * d, "ln", 2), *w = rnd((size_t)d, "lnw", 1),
          *bb = rnd((size_t)d, "lnb", 1);
    float *y = flm_malloc((size_t)T * d * 4), *yr = flm_malloc((size_t)T * d * 4);
    for (int i = 0; i < T * d; i++)
        x[i] += 5.0f; /* a non-zero mean checks the centring */
    flm_layer_norm_f32(T, d, x, w, bb, 1e-5f, y);
    flm_layer_norm_ref(T, d, x, w, bb, 1e-5f, yr);
    e = flm_norm_err(y, yr, (size_t)T * d);
    TAP_OK(e < TOL, "layer_norm err %.2e", e);
    flm_rms_norm_f32(T, d, x, w, 1e-5f, y);
    flm_rms_norm_ref(T, d, x, w, 1e-5f, yr);
    e = flm_norm_err(y, yr, (size_t)T * d);
    TAP_OK(e < TOL, "rms_norm err %.2e", e);
    float one = 1.0f, two = 2.0f;
    flm_rms_norm_f32(1, 1, &two, &one, 0.0f, &y[0]);
    TAP_OK(fabsf(y[0] - 1.0f) < 1e-7f, "rms_norm of [2] is [1]");
    memcpy(y, x, (size_t)T * d * 4);
    memcpy(yr, x, (size_t)T * d * 4);
    for (int i = 0; i < T * d; i++)
        y[i] = yr[i] = x[i] - 5.0f; /* both signs */
    flm_swiglu_f32(y, w, (size_t)d);
    flm_swiglu_ref(yr, w, (size_t)d);
    e = flm_norm_err(y, yr, (size_t)d);
    TAP_OK(e < TOL, "swiglu err %.2e", e);
    float gate = 1.0f, u = 3.0f;
    flm_swiglu_f32(&gate, &u, 1);
    TAP_OK(fabsf(gate - (float)(3.0 / (1.0 + exp(-1.0)))) < 1e-6f, "swiglu(1, 3) = 3 silu(1)");
    flm_free(x), flm_free(w), flm_free(bb), flm_free(y), flm_free(yr);
}

/* GQA: the fast kernel against its twin, and against plain attention on repeated K/V heads. */
static void test_gqa(int n_head, int n_kv_head, int d_head, int n_q, int n_kv, int nt)
{
    int d = n_head * d_head, dk = n_kv_head * d_head, grp = n_head / n_kv_head;
    float *q = rnd((size_t)n_q * d, "gq", 1), *k = rnd((size_t)n_kv * dk, "gk", 1);
    float *v = rnd((size_t)n_kv * dk, "gv", 1), *o = flm_malloc((size_t)n_q * d * 4);
    float *orf = flm_malloc((size_t)n_q * d * 4), *orep = flm_malloc((size_t)n_q * d * 4);
    float *kr = flm_malloc((size_t)n_kv * d * 4), *vr = flm_malloc((size_t)n_kv * d * 4);
    float *scr = flm_malloc(flm_attention_scratch_size(n_q, n_kv, n_head) * 4);
    for (int j = 0; j < n_kv; j++)
        for (int h = 0; h < n_head; h++) {
            memcpy(kr + (size_t)j * d + h * d_head, k + (size_t)j * dk + (h / grp) * d_head,
                   (size_t)d_head * 4);
            memcpy(vr + (size_t)j * d + h * d_head, v + (size_t)j * dk + (h / grp) * d_head,
                   (size_t)d_head * 4);
        }
    int64_t q0 = n_kv - n_q;
    flm_attention_gqa_f32(q, d, k, v, dk, n_q, n_kv, q0, 0, 0, n_head, n_kv_head, d_head, o, scr);
    flm_attention_gqa_ref(q, d, k, v, dk, n_q, n_kv, q0, 0, 0, n_head, n_kv_head, d_head, orf);
    flm_attention_ref(q, d, kr, vr, d, n_q, n_kv, q0, 0, 0, n_head, d_head, orep);
    double e = flm_norm_err(o, orf, (size_t)n_q * d), e2 = flm_norm_err(orf, orep, (size_t)n_q * d);
    TAP_OK(e < TOL && e2 < 1e-12, "gqa h%d kv%d q%d (%d thr): err %.2e, vs repeated heads %.2e",
           n_head, n_kv_head, n_q, nt, e, e2);
    flm_free(q), flm_free(k), flm_free(v), flm_free(o), flm_free(orf), flm_free(orep);
    flm_free(kr), flm_free(vr), flm_free(scr);
}

static void test_attention(int n_head, int d_head, int n_q, int n_kv, int64_t pos0, int ctx,
                           flm_rope_kind rk, int nt)
{
    int d = n_head * d_head;
    float *q = rnd((size_t)n_q * d, "q", 1), *k = rnd((size_t)n_kv * d, "k", 1);
    float *v = rnd((size_t)n_kv * d, "v", 1), *q2 = flm_malloc((size_t)n_q * d * 4);
    float *k2 = flm_malloc((size_t)n_kv * d * 4), *o = flm_malloc((size_t)n_q * d * 4);
    float *orf = flm_malloc((size_t)n_q * d * 4);
    float *scr = flm_malloc(flm_attention_scratch_size(n_q, n_kv, n_head) * 4);
    memcpy(q2, q, (size_t)n_q * d * 4);
    memcpy(k2, k, (size_t)n_kv * d * 4);
    int64_t q_pos0 = pos0 + n_kv - n_q; /* queries are the last n_q keys' positions */
    flm_rope_f32(q, n_q, d, q_pos0, n_head, d_head, 10000.0f, rk);
    flm_rope_f32(k, n_kv, d, pos0, n_head, d_head, 10000.0f, rk);
    flm_rope_ref(q2, n_q, d, q_pos0, n_head, d_head, 10000.0f, rk);
    flm_rope_ref(k2, n_kv, d, pos0, n_head, d_head, 10000.0f, rk);
    double e_rope = flm_norm_err(k, k2, (size_t)n_kv * d);
    /* float32 angles lose precision at large positions exactly like the reference code does */
    double rope_tol = pos0 > 1000 ? 1e-3 : 1e-5;
    TAP_OK(e_rope < rope_tol, "rope %s pos0 %lld: err %.2e (tol %.0e)",
           rk == FLM_ROPE_HALF ? "half" : "interleaved", (long long)pos0, e_rope, rope_tol);
    flm_attention_f32(q, d, k, v, d, n_q, n_kv, q_pos0, pos0, ctx, n_head, d_head, o, scr);
    flm_attention_ref(q, d, k, v, d, n_q, n_kv, q_pos0, pos0, ctx, n_head, d_head, orf);
    double e = flm_norm_err(o, orf, (size_t)n_q * d);
    TAP_OK(e < TOL, "attention h%d dh%d q%d kv%d ctx%d (%d thr): err %.2e", n_head, d_head, n_q,
           n_kv, ctx, nt, e);
    flm_free(q), flm_free(k), flm_free(v), flm_free(q2), flm_free(k2), flm_free(o);
    flm_free(orf), flm_free(scr);
}

/* Weight formats: the fast product against its twin (same quantized weights), and the
 * quantized weights against the float32 originals (the format's own error). */
static void test_qmat(flm_wtype type, int rows, int cols, int T, int nt, int simd)
{
    float *w = rnd((size_t)rows * cols, "qw", 0.05f), *x = rnd((size_t)T * (cols + 3), "qx", 1);
    float *b = rnd((size_t)rows, "qb", 1), *y = rnd((size_t)T * (rows + 5), "qy", 1);
    float *yr = flm_malloc((size_t)T * (rows + 5) * 4),
          *yf = flm_malloc((size_t)T * (rows + 5) * 4);
    memcpy(yr, y, (size_t)T * (rows + 5) * 4);
    memcpy(yf, y, (size_t)T * (rows + 5) * 4);
    size_t qs, ss;
    flm_qmat_sizes(type, rows, cols, &qs, &ss);
    void *q = flm_malloc(qs + 1);
    float *sc = flm_malloc(ss + 1), *scr = flm_malloc(flm_qmat_scratch_size(cols) * 4);
    flm_qmat m;
    flm_qmat_init(&m, type, rows, cols, q, ss ? sc : NULL);
    flm_qmat_quantize(&m, w);
    /* strided A (lda cols + 3) and C (ldc rows + 5), bias, accumulate (beta 1) */
    flm_qmat_gemm(&m, T, x, cols + 3, b, 1.0f, y, rows + 5, scr);
    flm_qmat_gemm_ref(&m, T, x, cols + 3, b, 1.0f, yr, rows + 5);
    double e = flm_norm_err(y, yr, (size_t)T * (rows + 5));
    float *row = flm_malloc((size_t)cols * 4);
    double num = 0, den = 0;
    for (int r = 0; r < rows; r++) {
        flm_qmat_row(&m, r, row);
        for (int i = 0; i < cols; i++) {
            double d = row[i] - w[(size_t)r * cols + i];
            num += d * d, den += (double)w[(size_t)r * cols + i] * w[(size_t)r * cols + i];
        }
    }
    double qe = sqrt(num / den);
    int same_rows = 1; /* the AVX-512 expansion of a row equals the portable one bit for bit */
    float *row2 = flm_malloc((size_t)cols * 4);
    for (int r = 0; r < rows; r++) {
        flm_quant_use_avx512(1);
        flm_qmat_row(&m, r, row);
        flm_quant_use_avx512(0);
        flm_qmat_row(&m, r, row2);
        same_rows &= !memcmp(row, row2, (size_t)cols * 4);
    }
    flm_quant_use_avx512(simd);
    flm_free(row2);
    TAP_OK(same_rows, "qmat %s %dx%d: rows expanded alike by both kernels", flm_wtype_name(type),
           rows, cols);
    if ((type == FLM_W_Q8 || type == FLM_W_Q4) && T <= 4 && cols >= 32) {
        /* few rows: the activations are quantized to int8 per block as well; their share of
         * the error, against the same weights with float32 activations */
        double n2 = 0, d2 = 0;
        for (int t = 0; t < T; t++)
            for (int r = 0; r < rows; r++) {
                double f = yf[(size_t)t * (rows + 5) + r] + b[r];
                flm_qmat_row(&m, r, row);
                for (int i = 0; i < cols; i++)
                    f += (double)x[(size_t)t * (cols + 3) + i] * row[i];
                double g = y[(size_t)t * (rows + 5) + r];
                n2 += (g - f) * (g - f), d2 += f * f;
            }
        TAP_OK(sqrt(n2 / d2) < 1e-2 && sqrt(n2 / d2) > 1e-4,
               "qmat %s %dx%d T%d: int8 activations cost %.1e of the product", flm_wtype_name(type),
               rows, cols, T, sqrt(n2 / d2));
    }
    /* rms error of round-to-nearest with max-abs scaling, normal weights, 32-blocks */
    double qtol = type == FLM_W_F32    ? 0
                  : type == FLM_W_BF16 ? 3e-3
                  : type == FLM_W_Q8   ? 1.2e-2
                                       : 0.2;
    TAP_OK(e < 1e-6 && qe <= qtol,
           "qmat %s %dx%d T%d (%d thr): product err %.1e, weights err %.2e (max %.0e)",
           flm_wtype_name(type), rows, cols, T, nt, e, qe, qtol);
    flm_free(w), flm_free(x), flm_free(b), flm_free(y), flm_free(yr), flm_free(yf);
    flm_free(q), flm_free(sc), flm_free(scr), flm_free(row);
}

int main(void)
{
    test_conversions();
    for (int nt = 1; nt <= 2; nt++) {
        flm_kernels_init(nt);
        test_gemm(nt);
        test_conv(1, 16, 7, 1, 1, FLM_PAD_ZERO, 960, nt);
        test_conv(16, 8, 3, 1, 1, FLM_PAD_ZERO, 300, nt);
        test_conv(16, 8, 3, 1, 2, FLM_PAD_ZERO, 300, nt);
        test_conv(8, 16, 8, 4, 1, FLM_PAD_ZERO, 480, nt);
        test_conv(32, 64, 16, 8, 1, FLM_PAD_ZERO, 160, nt);
        test_conv(24, 24, 4, 2, 1, FLM_PAD_REPLICATE, 50, nt);
        test_conv(24, 12, 5, 3, 2, FLM_PAD_REPLICATE, 99, nt);
        test_conv(256, 512, 12, 6, 1, FLM_PAD_ZERO, 120, nt);
        test_conv(64, 32, 3, 1, 1, FLM_PAD_ZERO, 1000, nt);   /* direct: many row blocks */
        test_conv(40, 50, 3, 1, 1, FLM_PAD_ZERO, 23, nt);     /* direct: partial panel and tile */
        test_conv(1, 64, 7, 1, 1, FLM_PAD_ZERO, 3000, nt);    /* narrow-input path */
        test_conv(64, 1, 3, 1, 1, FLM_PAD_ZERO, 1000, nt);    /* one-output path */
        test_conv(20, 1, 5, 2, 1, FLM_PAD_REPLICATE, 90, nt); /* one-output, strided, tail */
        test_convtr(16, 8, 8, 4, 0, 40, nt);
        test_convtr(64, 32, 16, 8, 0, 12, nt);
        test_convtr(512, 256, 12, 6, 0, 10, nt);
        test_convtr(24, 24, 4, 2, 1, 30, nt);
        test_attention(8, 8, 50, 50, 0, 250, FLM_ROPE_INTERLEAVED, nt);
        test_attention(8, 8, 50, 50, 0, 10, FLM_ROPE_INTERLEAVED, nt);
        test_attention(4, 16, 2, 30, 100, 10, FLM_ROPE_HALF, nt);
        test_attention(8, 64, 2, 251, 4000, 250, FLM_ROPE_INTERLEAVED, nt);
        test_attention(2, 32, 7, 7, 3, 0, FLM_ROPE_HALF, nt);
        test_gqa(28, 4, 16, 9, 40, nt);
        test_gqa(4, 2, 16, 1, 24, nt);
        for (int simd = 0; simd < 2; simd++) { /* portable and AVX-512 kernels */
            flm_quant_use_avx512(simd);
            for (int t = 0; t < FLM_W_COUNT; t++) {
                test_qmat((flm_wtype)t, 200, 85, 1, nt, simd); /* partial last block */
                test_qmat((flm_wtype)t, 130, 1024, 3, nt, simd);
                test_qmat((flm_wtype)t, 300, 96, 9, nt, simd);  /* expanded to float32 + sgemm */
                test_qmat((flm_wtype)t, 70, 2730, 1, nt, simd); /* the depth head's down_proj */
                test_qmat((flm_wtype)t, 33, 300, 4, nt, simd); /* 2 full 128-chunks and a partial */
                test_qmat((flm_wtype)t, 9, 1, 2, nt, simd);
            }
        }
    }
    test_pointwise();
    return tap_done();
}
