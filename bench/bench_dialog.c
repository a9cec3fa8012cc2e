/* bench_dialog - SFT dialog packing throughput with a full-size random Mimi, per stage.
 *
 *   bench_dialog [--dialogs N] [--threads T] [--turns K]
 *
 * Runs the stages `flm pack` runs for a dialog (docs/dialogs.md), minus decoding and
 * tokenizing: plan, render both tracks, augment the listen track (fine-tuning-2 values, echo
 * included), Mimi-encode both tracks, pack, write the shard. The turns' audio is synthetic
 * (modulated tones, 1 to 4 s user turns, 2 to 8 s model turns): Mimi's speed does not depend on
 * the signal. Prints dialog-hours packed per hour, each stage's share and the peak RSS. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "flm_alloc.h"
#include "flm_augment.h"
#include "flm_dialog.h"
#include "flm_kernels.h"
#include "flm_mimi.h"
#include "flm_rng.h"
#include "flm_safetensors.h"
#include "flm_shard.h"
#include "flm_util.h"

enum { PLAN, RENDER, AUGMENT, ENCODE, PACK, WRITE, N_STAGES };
static const char *stage_names[N_STAGES] = {
    "plan", "render", "augment", "Mimi encode (2 tracks)", "pack", "shard write"};

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static void die(const flm_error *err)
{
    fprintf(stderr, "bench_dialog: %s\n", err->msg);
    exit(1);
}

/* A voiced-speech stand-in: two partials under a syllable-rate envelope. */
static void voice(float *x, int64_t n, double f0, flm_rng *r)
{
    double phase = flm_rng_uniform(r) * 6.28;
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / 24000;
        double env = 0.5 + 0.5 * sin(2 * M_PI * 4 * t + phase);
        x[i] = (float)(0.2 * env * (sin(2 * M_PI * f0 * t) + 0.5 * sin(2 * M_PI * 2.7 * f0 * t)));
    }
}

int main(int argc, char **argv)
{
    int n_dialogs = 4, threads = 1, n_turns = 6;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dialogs") && i + 1 < argc)
            n_dialogs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--turns") && i + 1 < argc)
            n_turns = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_dialog [--dialogs N] [--threads T] [--turns K]\n");
            return 2;
        }
    }
    if (n_dialogs < 1 || threads < 1 || n_turns < 1 || n_turns > FLM_DIALOG_MAX_TURNS) {
        fprintf(stderr, "bench_dialog: bad arguments\n");
        return 2;
    }
    flm_error err = {0};
    flm_kernels_init(threads);
    flm_profiles prof;
    flm_profiles_default(&prof);
    flm_mimi_config cfg;
    uint8_t *img = NULL;
    size_t size = 0;
    flm_safetensors *st = NULL;
    flm_mimi *mimi = NULL;
    flm_mimi_params mp = flm_mimi_default_params();
    if (flm_mimi_config_preset("full", &cfg, &err) < 0 ||
        flm_mimi_random_checkpoint(&cfg, 1, &img, &size, &err) < 0 ||
        flm_safetensors_open_memory(&st, img, size, "random", &err) < 0 ||
        flm_mimi_load_from(&mimi, st, &mp, &err) < 0)
        die(&err);
    flm_safetensors_close(&st);
    flm_free(img);

    flm_dialog_params dp = flm_dialog_default_params(&prof);
    flm_augment_params ap = flm_augment_default_params(); /* the paper's = fine-tuning-2's */
    flm_augment_noise_pool *pool = NULL;
    float noise[48000];
    flm_rng g;
    flm_rng_init(&g, 1, "bench", "noise");
    for (int i = 0; i < 48000; i++)
        noise[i] = (float)(0.1 * flm_rng_normal(&g));
    if (flm_augment_noise_pool_create(&pool, &err) < 0 ||
        flm_augment_noise_pool_add(pool, noise, 48000, &err) < 0)
        die(&err);
    char shard_path[] = "/tmp/bench_dialog.flms";
    flm_shard_params shp = flm_shard_default_params(&prof);
    flm_shard_writer *w = NULL;
    if (flm_shard_writer_create(&w, shard_path, &shp, &err) < 0)
        die(&err);

    double t_stage[N_STAGES] = {0}, audio_s = 0;
    int64_t interrupts = 0;
    double t_all = flm_now();
    for (int i = 0; i < n_dialogs; i++) {
        char id[64];
        snprintf(id, sizeof id, "bench/%d", i);
        flm_rng r;
        flm_rng_init(&r, 1, id, "bench.dialog");
        flm_dialog d = {0};
        d.n_turns = n_turns;
        int64_t n[FLM_DIALOG_MAX_TURNS];
        int32_t nt[FLM_DIALOG_MAX_TURNS];
        float *audio[FLM_DIALOG_MAX_TURNS];
        int32_t *tok[FLM_DIALOG_MAX_TURNS];
        for (int k = 0; k < n_turns; k++) {
            int user = k % 2 == 0;
            d.turns[k].role = user ? FLM_DIALOG_USER : FLM_DIALOG_MODEL;
            d.turns[k].start = -1;
            n[k] = (int64_t)(24000 * (user ? flm_rng_uniform_range(&r, 1, 4)
                                           : flm_rng_uniform_range(&r, 2, 8)));
            audio[k] = malloc(sizeof(float) * (size_t)n[k]);
            voice(audio[k], n[k], user ? 210 : 120, &r);
            nt[k] = (int32_t)(n[k] / 24000 * 3) + 1; /* about 3 tokens per second */
            tok[k] = malloc(sizeof(int32_t) * (size_t)nt[k]);
            for (int j = 0; j < nt[k]; j++)
                tok[k][j] = (int32_t)flm_rng_below(&r, 151643);
        }
        double t0 = flm_now();
        flm_dialog_plan plan;
        if (flm_dialog_plan_make(&plan, &dp, FLM_FORMAT_RTTS_FREE, &d, n, nt, 1, id, &err) < 0)
            die(&err);
        double t1 = flm_now();
        int64_t ns = (int64_t)plan.n_frames * dp.samples_per_frame;
        float *listen = malloc(sizeof(float) * (size_t)ns),
              *speak = malloc(sizeof(float) * (size_t)ns);
        int32_t *lc = malloc(sizeof(int32_t) * FLM_N_CODEBOOKS * (size_t)plan.n_frames);
        int32_t *sc = malloc(sizeof(int32_t) * FLM_N_CODEBOOKS * (size_t)plan.n_frames);
        if (flm_dialog_render(&plan, &dp, (const float *const *)audio, n, listen, speak, ns, &err) <
            0)
            die(&err);
        double t2 = flm_now();
        int64_t starts[FLM_DIALOG_MAX_TURNS], ends[FLM_DIALOG_MAX_TURNS];
        flm_augment_span spans[FLM_DIALOG_MAX_TURNS];
        int32_t n_spans = flm_dialog_user_spans(&plan, dp.samples_per_frame, starts, ends);
        for (int32_t k = 0; k < n_spans; k++)
            spans[k] = (flm_augment_span){starts[k], ends[k]};
        flm_augment_result res = {0};
        if (flm_augment_apply(&ap, 1, id, listen, ns, spans, n_spans, speak, ns, pool, &res, &err) <
            0)
            die(&err);
        double t3 = flm_now();
        if (flm_mimi_encode(mimi, speak, ns, sc, &err) < 0 ||
            flm_mimi_encode(mimi, listen, ns, lc, &err) < 0)
            die(&err);
        double t4 = flm_now();
        flm_sample *s = NULL;
        if (flm_dialog_pack(&s, &prof, &plan, (const int32_t *const *)tok, nt, sc, lc,
                            plan.n_frames, id, &err) < 0 ||
            flm_augment_result_to_meta(&res, s, &err) < 0)
            die(&err);
        double t5 = flm_now();
        if (flm_shard_writer_add(w, s, NULL, &err) < 0)
            die(&err);
        double t6 = flm_now();
        double dt[N_STAGES] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5};
        for (int k = 0; k < N_STAGES; k++)
            t_stage[k] += dt[k];
        audio_s += s->duration_s;
        interrupts += plan.n_interrupts + plan.n_backchannels;
        flm_sample_destroy(&s);
        flm_augment_result_clear(&res);
        free(listen);
        free(speak);
        free(lc);
        free(sc);
        for (int k = 0; k < n_turns; k++) {
            free(audio[k]);
            free(tok[k]);
        }
    }
    double t0 = flm_now();
    if (flm_shard_writer_finish(w, &err) < 0)
        die(&err);
    t_stage[WRITE] += flm_now() - t0;
    double total = flm_now() - t_all;
    flm_shard_writer_destroy(&w);
    remove(shard_path);
    printf(
        "%d dialogs of %d turns (rtts-free, %lld interruptions), %.1f s of dialog, %d thread(s)\n",
        n_dialogs, n_turns, (long long)interrupts, audio_s, threads);
    printf("%.1f s wall: %.2f dialog-hours per hour (%.2fx real-time)\n", total, audio_s / total,
           audio_s / total);
    double sum = 0;
    for (int k = 0; k < N_STAGES; k++)
        sum += t_stage[k];
    for (int k = 0; k < N_STAGES; k++)
        printf("  %-24s %9.3f s  %5.1f %%\n", stage_names[k], t_stage[k], 100 * t_stage[k] / sum);
    printf("peak RSS %.0f MB (Mimi weights %.0f MB)\n", peak_rss_mb(),
           flm_mimi_weight_size(mimi) / 1048576.0);
    flm_augment_noise_pool_destroy(&pool);
    flm_mimi_destroy(&mimi);
    return 0;
}
