/* bench_mimi - full-size Mimi speed against the OpenBLAS sgemm rate of the same run.
 *
 *   bench_mimi [--seconds S] [--threads N,M] [--chunk F]   encode/decode x real-time, GFLOP/s,
 *                                                          sgemm (F: frames per batch step)
 *   bench_mimi [--minutes M] --hour CKPT         streaming encode of 1 h (or M min), peak RSS
 *
 * Weights are random (flm_mimi_random_checkpoint, full size): speed does not depend on values.
 * FLOPs are counted from the architecture (2 per multiply-add: convolutions, transposed
 * convolutions, linears, attention over the keys actually visible, codebook search). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_mimi.h"
#include "flm_safetensors.h"
#include "flm_util.h"

static double conv_flops(int c_in, int c_out, int k, int n_out)
{
    return 2.0 * c_in * c_out * k * n_out;
}

/* Transformer FLOPs for T steps starting at step pos. */
static double xf_flops(const flm_mimi_config *c, int64_t pos, int T)
{
    double d = c->d_model, f = 0;
    for (int t = 0; t < T; t++) {
        double keys = (double)(pos + t + 1 < c->context ? pos + t + 1 : c->context);
        f += c->n_layers * (2.0 * (3 * d * d + d * d + 2 * d * c->dim_ff) + 4.0 * keys * d);
    }
    return f;
}

/* FLOPs per stage (FLM_MIMI_STAGE_*) of encoding and decoding n_frames from a stream start. */
static void mimi_flops(const flm_mimi_config *c, int64_t n_frames, double f[FLM_MIMI_N_STAGES])
{
    int64_t T = n_frames * FLM_MIMI_FRAME_SIZE;
    int nf = c->n_filters, C = nf;
    memset(f, 0, FLM_MIMI_N_STAGES * sizeof *f);
    double *se = &f[FLM_MIMI_STAGE_SEANET_ENC], *sd = &f[FLM_MIMI_STAGE_SEANET_DEC];
    *se += conv_flops(1, nf, c->kernel_size, (int)T);
    for (int i = 0; i < 4; i++) {
        int r = c->ratios[3 - i];
        *se += conv_flops(C, C / 2, c->residual_kernel, (int)T) + conv_flops(C / 2, C, 1, (int)T);
        T /= r;
        *se += conv_flops(C, 2 * C, 2 * r, (int)T);
        C *= 2;
    }
    *se += conv_flops(C, c->dimension, c->last_kernel, (int)T);
    f[FLM_MIMI_STAGE_XF_ENC] = xf_flops(c, 0, (int)T);
    f[FLM_MIMI_STAGE_QUANT] =
        conv_flops(c->dimension, c->dimension, 4, (int)n_frames) +
        n_frames * (2.0 * 2 * c->dimension * c->q_dim + 2.0 * c->n_q * c->bins * c->q_dim);
    f[FLM_MIMI_STAGE_DEQUANT] =
        n_frames * 2.0 * 2 * c->dimension * c->q_dim + 2.0 * c->dimension * 4 * n_frames;
    T = 2 * n_frames;
    f[FLM_MIMI_STAGE_XF_DEC] = xf_flops(c, 0, (int)T);
    *sd += conv_flops(c->dimension, 16 * nf, c->kernel_size, (int)T);
    C = 16 * nf;
    for (int i = 0; i < 4; i++) {
        int r = c->ratios[i];
        *sd += conv_flops(C, C / 2, 2 * r, (int)T); /* transposed: per input step */
        T *= r;
        C /= 2;
        *sd += conv_flops(C, C / 2, c->residual_kernel, (int)T) + conv_flops(C / 2, C, 1, (int)T);
    }
    *sd += conv_flops(nf, 1, c->last_kernel, (int)T);
}

static double sum_stages(const double *f, int enc)
{
    return enc ? f[0] + f[1] + f[2] : f[3] + f[4] + f[5];
}

static void signal(float *x, int64_t n, int64_t off)
{
    for (int64_t i = 0; i < n; i++) {
        double t = (double)(i + off) / 24000.0;
        x[i] = (float)(0.3 * sin(2 * M_PI * 220 * t) +
                       0.2 * sin(2 * M_PI * 1234.5 * t * (1 + 0.1 * sin(t))));
    }
}

/* Best of 3 sgemm rates (GFLOP/s) on a square 1024 problem and on the Mimi transformer shape. */
static double sgemm_rate(int M, int N, int K)
{
    float *A = flm_malloc((size_t)M * K * 4), *B = flm_malloc((size_t)N * K * 4);
    float *C = flm_malloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++)
        A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)N * K; i++)
        B[i] = (float)(i % 5) * 0.1f;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = flm_now();
        int it = 0;
        do {
            flm_gemm_nt_f32(M, N, K, A, K, B, K, 0.0f, C, N);
            it++;
        } while (flm_now() - t0 < 0.3);
        double r = 2.0 * M * N * K * it / (flm_now() - t0) / 1e9;
        best = r > best ? r : best;
    }
    flm_free(A), flm_free(B), flm_free(C);
    return best;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* Current resident set (VmRSS), MB. */
static double rss_now_mb(void)
{
    char line[256];
    double kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb / 1024.0;
}

static int hour(const char *ckpt, int threads, double minutes)
{
    flm_error err = {0};
    flm_mimi *m = NULL;
    flm_kernels_init(threads);
    double rss0 = peak_rss_mb();
    if (flm_mimi_load(&m, ckpt, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double rss_model = peak_rss_mb(), rss_loaded = rss_now_mb();
    flm_mimi_stream *s = NULL;
    const int chunk = 16;
    flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE, chunk, &err);
    float *pcm = flm_malloc((size_t)chunk * FLM_MIMI_FRAME_SIZE * 4);
    int32_t *codes = flm_malloc((size_t)chunk * 8 * 4);
    int64_t n_frames = (int64_t)(minutes * 60 * 12.5), hist[8] = {0};
    double t0 = flm_now();
    for (int64_t f = 0; f < n_frames; f += chunk) {
        int F = n_frames - f < chunk ? (int)(n_frames - f) : chunk;
        signal(pcm, (int64_t)F * FLM_MIMI_FRAME_SIZE, f * FLM_MIMI_FRAME_SIZE);
        flm_mimi_stream_encode(s, pcm, F, codes, &err);
        hist[codes[0] % 8]++;
    }
    double dt = flm_now() - t0;
    printf("%.0f min streaming encode (%d threads, chunks of %d frames): %.1f s = %.1fx "
           "real-time\n",
           minutes, threads, chunk, dt, minutes * 60 / dt);
    printf("peak RSS: start %.0f MB, after load %.0f MB (the mapped file counts while loading), "
           "end %.0f MB; current RSS after load %.0f MB, at the end %.0f MB (weights %.0f MB, "
           "stream buffers %.1f MB)\n",
           rss0, rss_model, peak_rss_mb(), rss_loaded, rss_now_mb(), flm_mimi_weight_size(m) / 1e6,
           flm_mimi_stream_size(s) / 1e6);
    flm_mimi_stream_destroy(&s);
    flm_mimi_destroy(&m);
    flm_free(pcm), flm_free(codes);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 20, minutes = 60;
    int threads[2] = {1, 2}, n_thr = 2;
    flm_mimi_params prm = flm_mimi_default_params();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_thr = sscanf(argv[++i], "%d,%d", &threads[0], &threads[1]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            prm.chunk_frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--minutes") && i + 1 < argc)
            minutes = atof(argv[++i]);
        else if (!strcmp(argv[i], "--hour") && i + 1 < argc)
            return hour(argv[i + 1], threads[0] > 1 || n_thr > 1 ? 2 : threads[0], minutes);
        else {
            fprintf(stderr, "usage: bench_mimi [--seconds S] [--threads N[,M]] [--chunk FRAMES] | "
                            "--hour CKPT\n");
            return 2;
        }
    }
    flm_error err = {0};
    flm_mimi_config cfg;
    uint8_t *img;
    size_t size;
    flm_mimi_config_preset("full", &cfg, &err);
    cfg.n_q_total = 8;
    flm_mimi_random_checkpoint(&cfg, 1, &img, &size, &err);
    flm_safetensors *st = NULL;
    flm_mimi *m = NULL;
    flm_safetensors_open_memory(&st, img, size, "random", &err);
    if (flm_mimi_load_from(&m, st, &prm, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    flm_safetensors_close(&st);
    flm_free(img);
    const flm_mimi_config *c = flm_mimi_get_config(m);
    int64_t F = (int64_t)(seconds * 12.5), N = F * FLM_MIMI_FRAME_SIZE;
    double fs[FLM_MIMI_N_STAGES];
    mimi_flops(c, F, fs);
    double fe = sum_stages(fs, 1), fd = sum_stages(fs, 0);
    printf("OpenBLAS core: %s; OPENBLAS_CORETYPE=%s; OMP_WAIT_POLICY=%s\n", flm_kernels_blas_core(),
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "-",
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "-");
    printf("full-size Mimi (random weights, %.0f MB), %.0f s of audio: %.2f GFLOP encode, %.2f "
           "GFLOP decode; batch step %d frames\n",
           flm_mimi_weight_size(m) / 1e6, seconds, fe / 1e9, fd / 1e9, prm.chunk_frames);
    float *pcm = flm_malloc((size_t)N * 4), *out = flm_malloc((size_t)N * 4);
    int32_t *codes = flm_malloc((size_t)F * 8 * 4), *fc = flm_malloc(8 * 4);
    signal(pcm, N, 0);
    static char stage_lines[2][512];
    printf("\n| threads | sgemm 1024^3 GFLOP/s | sgemm 50x2048x512 | encode x RT | encode GFLOP/s "
           "(%% of sgemm) | decode x RT | decode GFLOP/s (%% of sgemm) | stream enc x RT | "
           "stream dec x RT |\n|---|---|---|---|---|---|---|---|---|\n");
    for (int ti = 0; ti < n_thr; ti++) {
        flm_kernels_init(threads[ti]);
        double sg = sgemm_rate(1024, 1024, 1024), sg2 = sgemm_rate(50, 2048, 512);
        double t0 = flm_now();
        flm_mimi_encode(m, pcm, N, codes, &err);
        double te = flm_now() - t0;
        t0 = flm_now();
        flm_mimi_decode(m, codes, F, out, &err);
        double td = flm_now() - t0;
        /* streaming, one frame per call (the real-time path) on the first 5 s */
        int64_t Fs = F < 62 ? F : 62;
        flm_mimi_stream *s = NULL;
        flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE | FLM_MIMI_DECODE, 1, &err);
        t0 = flm_now();
        for (int64_t f = 0; f < Fs; f++)
            flm_mimi_stream_encode(s, pcm + f * FLM_MIMI_FRAME_SIZE, 1, fc, &err);
        double tse = flm_now() - t0;
        t0 = flm_now();
        for (int64_t f = 0; f < Fs; f++) {
            for (int q = 0; q < 8; q++)
                fc[q] = codes[q * F + f];
            flm_mimi_stream_decode(s, fc, 1, out + f * FLM_MIMI_FRAME_SIZE, &err);
        }
        double tsd = flm_now() - t0;
        flm_mimi_stream_destroy(&s);
        /* per-stage breakdown: the batch path again, through a stream of batch-sized steps */
        flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE | FLM_MIMI_DECODE, prm.chunk_frames, &err);
        int32_t *cc = flm_malloc((size_t)prm.chunk_frames * 8 * 4);
        for (int64_t f = 0; f + prm.chunk_frames <= F; f += prm.chunk_frames)
            flm_mimi_stream_encode(s, pcm + f * FLM_MIMI_FRAME_SIZE, prm.chunk_frames, cc, &err);
        for (int64_t f = 0; f + prm.chunk_frames <= F; f += prm.chunk_frames) {
            for (int j = 0; j < prm.chunk_frames; j++)
                for (int q = 0; q < 8; q++)
                    cc[j * 8 + q] = codes[q * F + f + j];
            flm_mimi_stream_decode(s, cc, prm.chunk_frames, out + f * FLM_MIMI_FRAME_SIZE, &err);
        }
        double sec[FLM_MIMI_N_STAGES], fsc[FLM_MIMI_N_STAGES];
        flm_mimi_stream_timings(s, sec);
        mimi_flops(c, F / prm.chunk_frames * prm.chunk_frames, fsc);
        static const char *names[] = {"SEANet enc",       "transformer enc", "downsample+RVQ",
                                      "dequant+upsample", "transformer dec", "SEANet dec"};
        snprintf(stage_lines[ti], sizeof stage_lines[ti], "%d thread(s):", threads[ti]);
        for (int k = 0; k < FLM_MIMI_N_STAGES; k++) {
            size_t used = strlen(stage_lines[ti]);
            snprintf(stage_lines[ti] + used, sizeof stage_lines[ti] - used, " %s %.2f s %.0f GF/s;",
                     names[k], sec[k], fsc[k] / sec[k] / 1e9);
        }
        flm_free(cc);
        flm_mimi_stream_destroy(&s);
        printf(
            "| %d | %.1f | %.1f | %.1f | %.1f (%.0f %%) | %.1f | %.1f (%.0f %%) | %.1f | %.1f |\n",
            threads[ti], sg, sg2, seconds / te, fe / te / 1e9, 100 * fe / te / 1e9 / sg,
            seconds / td, fd / td / 1e9, 100 * fd / td / 1e9 / sg, Fs / 12.5 / tse,
            Fs / 12.5 / tsd);
        fflush(stdout);
    }
    printf("\nper stage (batch-sized stream steps):\n");
    for (int ti = 0; ti < n_thr; ti++)
        printf("  %s\n", stage_lines[ti]);
    printf("\npeak RSS of this run: %.0f MB\n", peak_rss_mb());
    flm_free(pcm), flm_free(out), flm_free(codes), flm_free(fc);
    flm_mimi_destroy(&m);
    return 0;
}
