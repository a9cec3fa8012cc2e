/* FLM-Audio RQ-Transformer speed (issue 7). For each weight format: a random model of the given
 * shape built in memory, then
 *   decode: greedy streaming steps (backbone step + text head + 8 depth positions) in steps/s,
 *     and the weight bytes a step reads per second divided by the memory read bandwidth, in 5
 *     rounds of STEPS / 5 steps with the bandwidth measured right before and right after each
 *     round (the higher of the two); medians over the rounds (goal >= 0.8);
 *     "read": the same with the bytes actually read, the depth head's shared attention counted
 *     once per position (8 times);
 *   teacher forcing: frames/s of forward + text logits + depth head over FRAMES frames in
 *     chunks of FLM_LM_TF_ROWS (256), and its GFLOP/s divided by the best sgemm rate measured
 *     in the same run (goal >= 0.7);
 *   memory: the process's RSS with the model and a teacher-forcing state of CONTEXT steps
 *     (default FRAMES + 1) alive, and its peak so far (building the model included).
 * usage: bench_lm tiny|1b|7b f32,bf16,q8,q4 [STEPS [FRAMES [THREADS [CONTEXT]]]] */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_lm.h"
#include "flm_util.h"

#define ROUNDS 5 /* decode rounds, each between two bandwidth measurements */

#define BW_FLOATS ((size_t)1 << 28) /* 1 GiB read by read_bandwidth */

/* The buffer read_bandwidth reads, in huge pages as the model's weights (NULL if out of memory). */
static float *bandwidth_buffer(int nt)
{
    float *x = flm_malloc_huge(BW_FLOATS * sizeof *x);
    if (x) {
#pragma omp parallel for num_threads(nt)
        for (size_t i = 0; i < BW_FLOATS; i++)
            x[i] = (float)(i & 7);
    }
    return x;
}

/* Best of 3 parallel sums over x: the memory read bandwidth in bytes/s. */
static double read_bandwidth(const float *x, int nt)
{
    size_t n = BW_FLOATS;
    if (!x)
        return 0;
    double best = 0, sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = flm_now(), s = 0;
#pragma omp parallel num_threads(nt) reduction(+ : s)
        {
            size_t per = n / (size_t)omp_get_num_threads(), lo = per * omp_get_thread_num();
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (size_t i = lo; i < lo + per; i++)
                acc += x[i];
            s += acc;
        }
        double bw = (double)n * sizeof *x / (flm_now() - t0);
        best = bw > best ? bw : best;
        sink += s;
    }
    return sink > 0 ? best : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Best sgemm rate (flop/s) of the engine's GEMM at teacher-forcing shapes. */
static double sgemm_rate(void)
{
    static const int shapes[][3] = {{64, 3584, 3584}, {64, 18944, 3584}, {512, 2048, 2048}};
    double best = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int M = shapes[k][0], N = shapes[k][1], K = shapes[k][2];
        float *A = flm_calloc((size_t)M * K, 4), *B = flm_calloc((size_t)N * K, 4);
        float *C = flm_calloc((size_t)M * N, 4);
        for (int rep = 0; rep < 3 && A && B && C; rep++) {
            double t0 = flm_now();
            flm_gemm_nt_f32(M, N, K, A, K, B, K, 0.0f, C, N);
            double r = 2.0 * M * N * K / (flm_now() - t0);
            best = r > best ? r : best;
        }
        flm_free(A), flm_free(B), flm_free(C);
    }
    return best;
}

/* Weight bytes that a decode step does not read in full: the embedding tables (a few rows). */
static double table_bytes(const flm_lm_config *c, flm_wtype t)
{
    size_t q, s, total = 0;
    flm_qmat_sizes(t, c->vocab_size, c->hidden, &q, &s);
    total += q + s;
    flm_qmat_sizes(t, c->aud_vocab, c->hidden, &q, &s);
    total += 16 * (q + s);
    flm_qmat_sizes(t, c->aud_vocab, c->dep_embd, &q, &s);
    total += 8 * (q + s);
    return (double)total;
}

/* Resident bytes now (/proc/self/statm) and at most so far (getrusage). */
static double rss_now(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &res) != 2)
        res = 0;
    if (f)
        fclose(f);
    return (double)res * 4096;
}

static double rss_peak(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024;
}

/* Bytes a decode step reads beyond the weights once: the depth head's shared attention (c_attn,
 * c_proj of every depth layer) is read again for each of its 8 positions. */
static double reread_bytes(const flm_lm_config *c, flm_wtype t)
{
    size_t q, s, total = 0;
    flm_qmat_sizes(t, 3 * c->dep_embd, c->dep_embd, &q, &s);
    total += q + s;
    flm_qmat_sizes(t, c->dep_embd, c->dep_embd, &q, &s);
    total += q + s;
    return 7.0 * c->dep_layers * (double)total;
}

/* Matrix multiply-adds per teacher-forced frame (all but the embedding tables), plus attention
 * at the mean context. */
static double flops_per_frame(const flm_lm_config *c, double mean_ctx)
{
    double d = c->hidden, kv = (double)c->n_kv_heads * c->head_dim, ff = c->intermediate;
    double E = c->dep_embd, F = c->dep_ff, A = c->aud_vocab;
    double layer = d * d * 2 + 2 * kv * d + 3 * ff * d;
    double mac = c->n_layers * layer + (double)c->vocab_size * d + 8 * E * d +
                 c->dep_layers * 8 * (4 * E * E + 3 * F * E) + 8 * A * E;
    double attn = c->n_layers * 4.0 * mean_ctx * d + c->dep_layers * 8 * 4.0 * 4.5 * E;
    return 2 * mac + attn;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: bench_lm tiny|1b|7b f32,bf16,q8,q4 [STEPS [FRAMES [THREADS [CONTEXT]]]]\n");
        return 2;
    }
    int steps = argc > 3 ? atoi(argv[3]) : 10, frames = argc > 4 ? atoi(argv[4]) : 128;
    int nt = argc > 5 ? atoi(argv[5]) : 2, ctx = argc > 6 ? atoi(argv[6]) : frames + 1;
    ctx = ctx > frames + 1 ? ctx : frames + 1;
    flm_kernels_init(nt);
    flm_lm_config cfg;
    flm_error err = {0};
    if (flm_lm_config_preset(argv[1], &cfg, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    printf("machine: %d threads, OpenBLAS core %s; model %s, %.3g B parameters\n", nt,
           flm_kernels_blas_core(), argv[1], flm_lm_config_n_params(&cfg) / 1e9);
    printf("| format | weights GB | bandwidth GB/s | decode steps/s | weight GB/s | / bandwidth | "
           "read / bandwidth | "
           "sgemm GFLOP/s | TF frames/s | GFLOP/s | / sgemm | RSS GB (peak) |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    setvbuf(stdout, NULL, _IOLBF, 0);
    char *list = flm_strdup(argv[2]);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int t = flm_wtype_parse(tok);
        flm_lm *lm = NULL;
        double t0 = flm_now();
        if (t < 0 || flm_lm_create_random(&lm, &cfg, (flm_wtype)t, 1, &err) < 0) {
            fprintf(stderr, "%s: %s\n", tok, t < 0 ? "unknown format" : err.msg);
            continue;
        }
        double build_s = flm_now() - t0;
        double gemm = sgemm_rate();
        /* decode in ROUNDS rounds, the bandwidth measured right before and right after each (the
         * higher of the two: conservative); medians over the rounds, as this machine's
         * bandwidth drifts by a third within minutes */
        flm_lm_gen *g = NULL;
        flm_lm_gen_params gp = flm_lm_gen_default_params();
        gp.use_sampling = 0;
        int per = steps / ROUNDS > 0 ? steps / ROUNDS : 1;
        if (flm_lm_gen_create(&g, lm, per * ROUNDS + 4, &gp, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            flm_lm_destroy(&lm);
            continue;
        }
        int32_t user[8] = {1, 2, 3, 4, 5, 6, 7, 8}, frame[9];
        int has;
        for (int i = 0; i < 2; i++) /* warm-up */
            flm_lm_gen_step(g, user, NULL, frame, &has, &err);
        double read = (double)flm_lm_weight_size(lm) - table_bytes(&cfg, (flm_wtype)t);
        double streamed = read + reread_bytes(&cfg, (flm_wtype)t);
        double rate[ROUNDS], bws[ROUNDS], ratio[ROUNDS], ratio_read[ROUNDS];
        float *bwx = bandwidth_buffer(nt);
        if (!bwx) {
            fprintf(stderr, "%s: out of memory for the bandwidth buffer\n", tok);
            flm_lm_gen_destroy(&g);
            flm_lm_destroy(&lm);
            continue;
        }
        for (int k = 0; k < ROUNDS; k++) {
            double b0 = read_bandwidth(bwx, nt);
            t0 = flm_now();
            for (int i = 0; i < per; i++)
                flm_lm_gen_step(g, user, NULL, frame, &has, &err);
            double step_s = (flm_now() - t0) / per, b1 = read_bandwidth(bwx, nt);
            bws[k] = b1 > b0 ? b1 : b0;
            rate[k] = 1.0 / step_s;
            ratio[k] = read * rate[k] / bws[k];
            ratio_read[k] = streamed * rate[k] / bws[k];
        }
        double steps_s = median(rate, ROUNDS), bw = median(bws, ROUNDS);
        flm_free(bwx);
        flm_lm_gen_destroy(&g);
        /* teacher forcing */
        flm_lm_state *s = NULL;
        int R = frames < FLM_LM_TF_ROWS ? frames : FLM_LM_TF_ROWS;
        if (flm_lm_state_create(&s, lm, ctx, R, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            flm_lm_destroy(&lm);
            continue;
        }
        int32_t *in = flm_calloc((size_t)R * 17, 4), *codes = flm_calloc((size_t)R * 8, 4);
        float *h = flm_malloc((size_t)R * cfg.hidden * 4);
        float *tl = flm_malloc((size_t)R * cfg.vocab_size * 4);
        float *dl = flm_malloc((size_t)R * 8 * cfg.aud_vocab * 4);
        t0 = flm_now();
        for (int f0 = 0; f0 < frames; f0 += R) {
            int T = frames - f0 < R ? frames - f0 : R;
            flm_lm_forward(s, in, T, h, &err);
            flm_lm_text_logits(s, h, T, tl);
            flm_lm_depth_forward(s, h, codes, T, dl, &err);
        }
        double tf_s = flm_now() - t0;
        double gflop = flops_per_frame(&cfg, frames / 2.0) * frames / tf_s;
        printf(
            "| %s | %.2f | %.1f | %.2f | %.1f | **%.2f** | %.2f | %.1f | %.1f | %.1f | **%.2f** | "
            "%.2f (%.2f) |\n",
            tok, flm_lm_weight_size(lm) / 1e9, bw / 1e9, steps_s, read * steps_s / 1e9,
            median(ratio, ROUNDS), median(ratio_read, ROUNDS), gemm / 1e9, frames / tf_s,
            gflop / 1e9, gflop / gemm, rss_now() / 1e9, rss_peak() / 1e9);
        fprintf(stderr, "%s: built in %.1f s; state %.1f MB (context %d, %d rows)\n", tok, build_s,
                flm_lm_state_size(s) / 1e6, ctx, R);
        flm_free(in), flm_free(codes), flm_free(h), flm_free(tl), flm_free(dl);
        flm_lm_state_destroy(&s);
        flm_lm_destroy(&lm);
    }
    flm_free(list);
    return 0;
}
