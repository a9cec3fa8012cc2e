/* test_augment.c - the listen-channel augmentation: distributions over >= 10000 seeds, exact
 * loudness floor, noise levels measured on the output, echo found by cross-correlation,
 * bit-identical reproducibility in any order and thread count. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_augment.h"
#include "flm_rng.h"
#include "flm_stream.h"
#include "tap.h"

#define RATE 24000
/* 10000 seeds; 2000 under FLM_TEST_FAST (the valgrind pass), tolerances scale with the count */
static int N_SEEDS = 10000;

/* |observed - p| within 5 binomial standard deviations: a false failure has odds ~ 1e-6. */
static int binomial_ok(long hits, long trials, double p, double *z)
{
    double sd = sqrt(p * (1 - p) / (double)trials);
    *z = ((double)hits / (double)trials - p) / sd;
    return fabs(*z) < 5.0;
}

static void fill_noise(float *x, int64_t n, uint64_t seed, const char *what, double amp)
{
    flm_rng r;
    flm_rng_init(&r, seed, what, "test.fill");
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(amp * (2.0 * flm_rng_uniform(&r) - 1.0));
}

static flm_augment_noise_pool *make_pool(void)
{
    flm_augment_noise_pool *pool = NULL;
    flm_error err = {0};
    flm_augment_noise_pool_create(&pool, &err);
    static const int lens[] = {1200, 2500, 1700, 3100};
    for (int k = 0; k < 4; k++) {
        float *x = flm_malloc((size_t)lens[k] * sizeof *x);
        fill_noise(x, lens[k], (uint64_t)k, "noise", 0.05 + 0.2 * k);
        flm_augment_noise_pool_add(pool, x, lens[k], &err);
        flm_free(x);
    }
    return pool;
}

static void test_defaults(void)
{
    flm_augment_params p = flm_augment_default_params();
    TAP_OK(p.p_gain == 0.6 && p.gain_db_lo == -24 && p.gain_db_hi == 20 &&
               p.loudness_floor_db == -40 && p.loudness_floor == 1,
           "defaults: gain p 0.6 in [-24, +20] dB, floor -40 dB");
    TAP_OK(p.p_noise == 1.0 && p.noise_db_lo == -70 && p.noise_db_hi == -40 &&
               p.p_noise_silence == 0.3,
           "defaults: noise in (-70, -40) dB, silence p 0.3");
    TAP_OK(p.p_echo == 0.3 && p.echo_gain_lo == 0 && p.echo_gain_hi == 0.2 &&
               p.echo_delay_lo_s == 0.1 && p.echo_delay_hi_s == 0.5,
           "defaults: echo p 0.3, gain [0, 0.2], delay [0.1, 0.5] s");
    TAP_OK(p.clip_mode == FLM_AUGMENT_CLIP_SCALE && p.sample_rate == 24000,
           "defaults: clip scale, 24 kHz");
    flm_error err = {0};
    TAP_EQ_INT(flm_augment_params_check(&p, &err), 0, "defaults are valid");
    p.p_echo = 1.5;
    TAP_EQ_INT(flm_augment_params_check(&p, &err), FLM_EINVAL, "p_echo 1.5 rejected");
    TAP_CONTAINS(err.msg, "p_echo", "message names the parameter");
    p = flm_augment_default_params();
    p.gain_db_lo = 30;
    TAP_EQ_INT(flm_augment_params_check(&p, &err), FLM_EINVAL, "gain lo > hi rejected");
    /* recipe keys */
    p = flm_augment_default_params();
    TAP_OK(flm_augment_params_set(&p, "p_echo", "0.5", &err) == 0 && p.p_echo == 0.5,
           "set p_echo = 0.5");
    TAP_OK(flm_augment_params_set(&p, "clip_mode", "hard", &err) == 0 &&
               p.clip_mode == FLM_AUGMENT_CLIP_HARD,
           "set clip_mode = hard");
    TAP_OK(flm_augment_params_set(&p, "loudness_floor", "0", &err) == 0 && p.loudness_floor == 0,
           "set loudness_floor = 0");
    TAP_EQ_INT(flm_augment_params_set(&p, "p_echoo", "0.5", &err), FLM_EINVAL,
               "unknown key rejected");
    TAP_CONTAINS(err.msg, "unknown parameter 'p_echoo'", "message names the key");
    TAP_EQ_INT(flm_augment_params_set(&p, "gain_db_lo", "-3x", &err), FLM_EINVAL,
               "malformed number rejected");
    TAP_EQ_INT(flm_augment_params_set(&p, "sample_rate", "24000.5", &err), FLM_EINVAL,
               "int key wants a whole number");
    int n_keys = 0, all_set = 1;
    for (const char *const *k = flm_augment_params_keys(); *k; k++, n_keys++)
        all_set &=
            flm_augment_params_set(&p, *k, strcmp(*k, "clip_mode") ? "1" : "none", &err) == 0;
    TAP_OK(n_keys == 17 && all_set, "all %d recipe keys settable", n_keys);
    TAP_OK(fabs(flm_augment_loudness_db((const float[]){0.1f, -0.1f}, 2) - 20 * log10(0.1 + 1e-6)) <
               1e-6,
           "loudness of a +-0.1 square wave");
    TAP_OK(fabs(flm_augment_loudness_db(NULL, 0) - (-120.0)) < 1e-9,
           "loudness of nothing: -120 dB");
}

/* Distributions over N_SEEDS seeds with the paper's parameters. */
static void test_statistics(void)
{
    flm_augment_params p = flm_augment_default_params();
    flm_augment_noise_pool *pool = make_pool();
    enum { N = 7200 }; /* 0.3 s: several noise segments per sample */
    float *x = flm_malloc(N * sizeof *x), *speak = flm_malloc(N * sizeof *speak);
    fill_noise(speak, N, 99, "speak", 0.3);
    long gains = 0, echoes = 0, segs = 0, silent = 0, out_of_range = 0, plan_bad = 0, floor_bad = 0;
    double sum_gain = 0, sum_echo_gain = 0, sum_delay = 0, sum_level = 0;
    long n_level = 0, hist[10] = {0};
    flm_augment_result res = {0};
    flm_error err = {0};
    for (uint64_t seed = 0; seed < (uint64_t)N_SEEDS; seed++) {
        fill_noise(x, N, seed, "user", 0.05);
        int r = flm_augment_apply(&p, seed, "dlg/stat", x, N, NULL, 0, speak, N, pool, &res, &err);
        if (r < 0) {
            tap_diag("%s", err.msg);
            break;
        }
        if (res.gain_applied) {
            gains++;
            sum_gain += res.gain_db;
            hist[(int)((res.gain_db + 24.0) / 4.4)]++;
            out_of_range += !(res.gain_db >= -24.0 && res.gain_db < 20.0);
        } else {
            out_of_range += res.gain_db != 0.0;
        }
        if (res.echo_applied) {
            echoes++;
            sum_echo_gain += res.echo_gain;
            sum_delay += res.echo_delay_s;
            out_of_range += !(res.echo_gain >= 0.0 && res.echo_gain < 0.2);
            out_of_range += !(res.echo_delay_s >= 0.1 && res.echo_delay_s < 0.5);
            out_of_range += res.echo_delay_samples != (int64_t)floor(res.echo_delay_s * RATE + 0.5);
        }
        /* segments tile [0, N) and stay inside their clip */
        int64_t pos = 0;
        for (int32_t i = 0; i < res.n_segments; i++) {
            const flm_augment_noise_segment *s = &res.segments[i];
            int64_t clen = flm_augment_noise_pool_clip_length(pool, s->clip);
            plan_bad += s->start != pos || s->n_samples <= 0 || s->clip_offset < 0 ||
                        s->clip_offset + s->n_samples > clen;
            pos += s->n_samples;
            segs++;
            silent += s->silent;
            out_of_range += !(s->level_db > -70.0 && s->level_db < -40.0);
            sum_level += s->level_db;
            n_level++;
        }
        plan_bad += pos != N || !res.noise_applied;
        floor_bad += res.n_floor_raised > 0 && !res.gain_applied; /* 0.05 noise is -35 dB */
    }
    double z1 = 0, z2 = 0, z3 = 0;
    int ok1 = binomial_ok(gains, N_SEEDS, 0.6, &z1), ok2 = binomial_ok(echoes, N_SEEDS, 0.3, &z2),
        ok3 = binomial_ok(silent, segs, 0.3, &z3);
    TAP_OK(ok1, "gain applied in %ld of %d samples (p 0.6, z = %.2f)", gains, N_SEEDS, z1);
    TAP_OK(ok2, "echo applied in %ld of %d samples (p 0.3, z = %.2f)", echoes, N_SEEDS, z2);
    TAP_OK(ok3, "silence in %ld of %ld noise segments (p 0.3, z = %.2f)", silent, segs, z3);
    TAP_EQ_INT(out_of_range, 0, "every drawn value inside its range");
    TAP_EQ_INT(plan_bad, 0, "noise segments tile the waveform, inside their clips");
    TAP_EQ_INT(floor_bad, 0, "the floor only acts where the gain pushed speech below -40 dB");
    /* uniform means: 5 standard errors (sd of U(a, b) = (b - a) / sqrt(12)) */
    double m = sum_gain / gains, se = 44.0 / sqrt(12.0) / sqrt((double)gains);
    TAP_OK(fabs(m - (-2.0)) < 5 * se, "mean gain %.3f dB (uniform [-24, 20]: -2)", m);
    m = sum_echo_gain / echoes, se = 0.2 / sqrt(12.0) / sqrt((double)echoes);
    TAP_OK(fabs(m - 0.1) < 5 * se, "mean echo gain %.4f (0.1)", m);
    m = sum_delay / echoes, se = 0.4 / sqrt(12.0) / sqrt((double)echoes);
    TAP_OK(fabs(m - 0.3) < 5 * se, "mean echo delay %.4f s (0.3)", m);
    m = sum_level / n_level, se = 30.0 / sqrt(12.0) / sqrt((double)n_level);
    TAP_OK(fabs(m - (-55.0)) < 5 * se, "mean noise level %.3f dB (-55)", m);
    /* chi-square of the gain histogram against uniform, 10 bins (9 dof; 1e-4 quantile ~ 35.3) */
    double chi = 0, e = (double)gains / 10;
    for (int b = 0; b < 10; b++)
        chi += (hist[b] - e) * (hist[b] - e) / e;
    TAP_OK(chi < 35.3, "gain histogram uniform (chi2 = %.2f, 9 dof)", chi);
    flm_augment_result_clear(&res);
    flm_augment_noise_pool_destroy(&pool);
    flm_free(x);
    flm_free(speak);
}

/* The floor holds exactly, per utterance, as measured by flm_augment_loudness_db on the output;
 * samples outside the utterances are untouched. */
static void test_floor(void)
{
    flm_augment_params p = flm_augment_default_params();
    p.p_noise = 0;
    p.p_echo = 0;
    enum { N = 9600 };
    float *x = flm_malloc(N * sizeof *x), *orig = flm_malloc(N * sizeof *orig);
    flm_augment_span utts[2] = {{1000, 4000}, {5000, 9000}};
    long below = 0, raised = 0, outside = 0, scaled = 0, checked = 0;
    double worst = 1e9;
    flm_augment_result res = {0};
    flm_error err = {0};
    for (uint64_t seed = 0; seed < (uint64_t)N_SEEDS; seed++) {
        /* quiet speech: -60 .. -20 dB, so both the gain and the floor matter */
        double amp = pow(10.0, (-60.0 + 40.0 * (double)(seed % 97) / 96.0) / 20.0) * sqrt(3.0);
        fill_noise(x, N, seed, "floor", amp);
        memcpy(orig, x, N * sizeof *x);
        if (flm_augment_apply(&p, seed, "dlg/floor", x, N, utts, 2, NULL, 0, NULL, &res, &err) < 0)
            break;
        for (int u = 0; u < 2; u++) {
            double db = flm_augment_loudness_db(x + utts[u].start, utts[u].end - utts[u].start);
            double floor_db = -40.0 + 20.0 * log10(res.clip_gain);
            if (res.clip_gain == 1.0) {
                below += db < -40.0;
                if (db < worst)
                    worst = db;
                checked++;
            } else {
                below += db < floor_db - 1e-6;
                scaled++;
            }
        }
        raised += res.n_floor_raised;
        for (int64_t i = 0; i < N; i++) {
            int in = (i >= 1000 && i < 4000) || (i >= 5000 && i < 9000);
            if (!in && x[i] != orig[i] * (float)res.clip_gain)
                outside++;
        }
    }
    TAP_EQ_INT(below, 0, "no utterance below -40 dB on the output (exact comparison)");
    TAP_OK(raised > 1000, "the floor acted on %ld utterances; quietest measured %.9f dB", raised,
           worst);
    TAP_EQ_INT(outside, 0, "samples outside the utterances are untouched");
    tap_diag("%ld utterances checked exactly, %ld lowered by clipping protection", checked, scaled);
    /* silence cannot be raised: counted, not faked */
    memset(x, 0, N * sizeof *x);
    flm_augment_apply(&p, 1, "dlg/zero", x, N, NULL, 0, NULL, 0, NULL, &res, &err);
    TAP_OK(res.n_floor_unreachable == 1 && res.n_floor_raised == 0,
           "an all-zero utterance is reported unreachable");
    for (int i = 0; i < N; i++)
        x[i] = (i % 2 ? 1e-38f : -1e-38f) * (float)(i % 7); /* tiny: no inf/NaN */
    flm_augment_apply(&p, 1, "dlg/tiny", x, N, NULL, 0, NULL, 0, NULL, &res, &err);
    int finite = 1;
    for (int i = 0; i < N; i++)
        finite &= isfinite(x[i]);
    TAP_OK(finite && res.n_floor_unreachable == 1,
           "a -700 dB utterance is left alone, output finite");
    flm_augment_span overlap[2] = {{0, 100}, {50, 200}};
    TAP_EQ_INT(flm_augment_apply(&p, 1, "dlg/ov", x, N, overlap, 2, NULL, 0, NULL, &res, &err),
               FLM_EINVAL, "overlapping utterances are rejected");
    TAP_CONTAINS(err.msg, "sorted and disjoint", "message says why");
    flm_augment_span bad = {5, N + 1};
    TAP_EQ_INT(flm_augment_apply(&p, 1, "dlg/bad", x, N, &bad, 1, NULL, 0, NULL, &res, &err),
               FLM_EINVAL, "an utterance past the end is rejected");
    flm_augment_result_clear(&res);
    flm_free(x);
    flm_free(orig);
}

/* On a silent listen waveform the output is the noise track: each segment's loudness measured
 * on the output is its drawn level, inside (-70, -40) dB; silent segments are exactly 0. */
static void test_noise_levels(void)
{
    flm_augment_params p = flm_augment_default_params();
    p.p_echo = 0;
    p.noise_segment_max_s = 0.05;
    flm_augment_noise_pool *pool = make_pool();
    enum { N = 12000 };
    float *x = flm_malloc(N * sizeof *x);
    long segs = 0, bad_level = 0, bad_silence = 0, out_range = 0;
    double worst = 0;
    flm_augment_result res = {0};
    flm_error err = {0};
    for (uint64_t seed = 0; seed < 2000; seed++) {
        memset(x, 0, N * sizeof *x);
        if (flm_augment_apply(&p, seed, "dlg/noise", x, N, NULL, 0, NULL, 0, pool, &res, &err) < 0)
            break;
        for (int32_t i = 0; i < res.n_segments; i++) {
            const flm_augment_noise_segment *s = &res.segments[i];
            segs++;
            if (s->silent) {
                for (int64_t k = 0; k < s->n_samples; k++)
                    bad_silence += x[s->start + k] != 0.0f;
                continue;
            }
            double db = flm_augment_loudness_db(x + s->start, s->n_samples);
            double d = fabs(db - s->level_db);
            if (d > worst)
                worst = d;
            bad_level += d > 1e-3;
            out_range += !(db > -70.0 && db < -40.0);
        }
    }
    TAP_OK(segs > 10000, "%ld noise segments measured", segs);
    TAP_EQ_INT(out_range, 0, "every noise segment's measured loudness is inside (-70, -40) dB");
    TAP_OK(bad_level == 0, "measured = drawn level within 1e-3 dB (worst %.2e dB)", worst);
    TAP_EQ_INT(bad_silence, 0, "silent segments are exactly zero on the output");
    flm_augment_result_clear(&res);
    flm_augment_noise_pool_destroy(&pool);
    flm_free(x);
}

/* Echo: the speak signal is sparse spikes, so the full cross-correlation over every lag is
 * cheap; its peak must sit at the drawn delay with the drawn gain. */
static void test_echo(void)
{
    flm_augment_params p = flm_augment_default_params();
    p.p_echo = 1.0;
    p.p_gain = 0;
    p.loudness_floor = 0;
    p.p_noise = 0;
    enum { N = 24000, SPIKES = 40 };
    float *x = flm_malloc(N * sizeof *x), *speak = flm_calloc(N, sizeof *speak),
          *orig = flm_malloc(N * sizeof *x);
    float *xc = flm_malloc(N * sizeof *xc);
    int pos[SPIKES];
    flm_rng r;
    flm_rng_init(&r, 5, "echo", "test.spikes");
    double energy = 0;
    for (int k = 0; k < SPIKES; k++) {
        pos[k] = (int)flm_rng_below(&r, N);
        speak[pos[k]] = flm_rng_bernoulli(&r, 0.5) ? 0.5f : -0.5f;
    }
    for (int i = 0; i < N; i++)
        energy += (double)speak[i] * speak[i];
    long found = 0, tested = 0, gain_bad = 0;
    double worst_gain = 0;
    flm_augment_result res = {0};
    flm_error err = {0};
    for (uint64_t seed = 0; seed < 300; seed++) {
        fill_noise(x, N, seed, "listen", 0.001 * sqrt(3.0)); /* the user at -60 dB */
        memcpy(orig, x, N * sizeof *x);
        flm_augment_apply(&p, seed, "dlg/echo", x, N, NULL, 0, speak, N, NULL, &res, &err);
        if (!res.echo_applied || res.echo_gain < 0.01)
            continue;
        tested++;
        /* xc[lag] = sum_i speak[i] * x[i + lag] over the spikes */
        memset(xc, 0, N * sizeof *xc);
        for (int lag = 0; lag < N; lag++) {
            double s = 0;
            for (int k = 0; k < SPIKES; k++)
                if (pos[k] + lag < N)
                    s += (double)speak[pos[k]] * x[pos[k] + lag];
            xc[lag] = (float)s;
        }
        int best = 0;
        for (int lag = 1; lag < N; lag++)
            if (fabsf(xc[lag]) > fabsf(xc[best]))
                best = lag;
        found += best == res.echo_delay_samples;
        /* the gain over the spikes that still land inside the waveform */
        double e_in = 0;
        for (int k = 0; k < SPIKES; k++)
            if (pos[k] + best < N)
                e_in += (double)speak[pos[k]] * speak[pos[k]];
        double g = xc[best] / e_in;
        double d = fabs(g - res.echo_gain);
        if (d > worst_gain)
            worst_gain = d;
        gain_bad += d > 2e-3;
    }
    (void)energy;
    TAP_OK(tested > 50, "%ld echoes with gain >= 0.01 cross-correlated", tested);
    TAP_EQ_INT(found, tested, "cross-correlation peak at the drawn delay every time");
    TAP_OK(gain_bad == 0, "gain at the peak = drawn gain within 2e-3 (worst %.2e)", worst_gain);
    /* without a speak waveform nothing is drawn as applied */
    flm_augment_apply(&p, 1, "dlg/echo", x, N, NULL, 0, NULL, 0, NULL, &res, &err);
    TAP_OK(!res.echo_applied, "no speak waveform: no echo");
    flm_augment_result_clear(&res);
    flm_free(x);
    flm_free(speak);
    flm_free(orig);
    flm_free(xc);
}

static void test_clipping(void)
{
    flm_augment_params p = flm_augment_default_params();
    p.p_gain = 1;
    p.gain_db_lo = p.gain_db_hi = 20; /* x10 */
    p.p_noise = 0;
    enum { N = 4800 };
    float x[N], y[N];
    fill_noise(x, N, 3, "clip", 0.5);
    memcpy(y, x, sizeof x);
    flm_augment_result res = {0};
    flm_error err = {0};
    flm_augment_apply(&p, 1, "dlg/clip", x, N, NULL, 0, NULL, 0, NULL, &res, &err);
    float peak = 0;
    for (int i = 0; i < N; i++)
        peak = fmaxf(peak, fabsf(x[i]));
    TAP_OK(res.peak > 4.0 && peak <= 1.0f && peak > 0.999f &&
               fabs(res.clip_gain * res.peak - 1) < 1e-6,
           "scale: peak %.3f brought to %.6f, clip_gain recorded", res.peak, peak);
    p.clip_mode = FLM_AUGMENT_CLIP_HARD;
    flm_augment_apply(&p, 1, "dlg/clip", y, N, NULL, 0, NULL, 0, NULL, &res, &err);
    peak = 0;
    for (int i = 0; i < N; i++)
        peak = fmaxf(peak, fabsf(y[i]));
    TAP_OK(peak == 1.0f && res.n_clipped > 0, "hard: %lld samples clamped to +-1",
           (long long)res.n_clipped);
    flm_augment_result_clear(&res);
}

/* ---- reproducibility ---------------------------------------------------------------------- */
enum { R_SAMPLES = 400, R_N = 6000 };
typedef struct repro {
    const flm_augment_noise_pool *pool;
    const float *speak;
    uint64_t hash[R_SAMPLES];
    int first, step;
    int failed;
} repro;

static uint64_t one_sample(const repro *rp, int i)
{
    flm_augment_params p = flm_augment_default_params();
    float x[R_N];
    char id[32];
    snprintf(id, sizeof id, "corpus/%d", i);
    fill_noise(x, R_N, (uint64_t)i, "repro", 0.02);
    flm_augment_result res = {0};
    flm_error err = {0};
    flm_augment_span u = {100, 5000};
    if (flm_augment_apply(&p, 42, id, x, R_N, &u, 1, rp->speak, R_N, rp->pool, &res, &err) < 0)
        return 0;
    char text[4096];
    flm_augment_result_format(&res, text, sizeof text);
    flm_augment_result_clear(&res);
    return XXH3_64bits(x, sizeof x) ^ XXH3_64bits_withSeed(text, strlen(text), 1);
}

static void *repro_thread(void *arg)
{
    repro *rp = arg;
    for (int i = rp->first; i < R_SAMPLES; i += rp->step)
        rp->hash[i] = one_sample(rp, i);
    return NULL;
}

static void test_reproducibility(void)
{
    flm_augment_noise_pool *pool = make_pool();
    float *speak = flm_malloc(R_N * sizeof *speak);
    fill_noise(speak, R_N, 7, "speak", 0.4);
    static repro fwd, rev, par[4];
    fwd.pool = rev.pool = pool;
    fwd.speak = rev.speak = speak;
    for (int i = 0; i < R_SAMPLES; i++)
        fwd.hash[i] = one_sample(&fwd, i);
    for (int i = R_SAMPLES - 1; i >= 0; i--)
        rev.hash[i] = one_sample(&rev, i);
    TAP_OK(!memcmp(fwd.hash, rev.hash, sizeof fwd.hash),
           "forward and reverse order: identical outputs");
    for (int nt = 2; nt <= 4; nt += 2) {
        pthread_t th[4];
        static uint64_t merged[R_SAMPLES];
        for (int t = 0; t < nt; t++) {
            par[t] = (repro){.pool = pool, .speak = speak, .first = t, .step = nt};
            pthread_create(&th[t], NULL, repro_thread, &par[t]);
        }
        for (int t = 0; t < nt; t++)
            pthread_join(th[t], NULL);
        for (int i = 0; i < R_SAMPLES; i++)
            merged[i] = par[i % nt].hash[i];
        TAP_OK(!memcmp(fwd.hash, merged, sizeof merged),
               "%d threads, interleaved: identical outputs", nt);
    }
    /* one sample alone, in a fresh process state, equals its place in the batch */
    TAP_OK(one_sample(&fwd, 123) == fwd.hash[123], "a sample recomputed alone is identical");
    int distinct = 1;
    for (int i = 1; i < R_SAMPLES; i++)
        distinct &= fwd.hash[i] != fwd.hash[i - 1];
    TAP_OK(distinct, "different sample ids give different outputs");
    flm_augment_noise_pool_destroy(&pool);
    flm_free(speak);
}

static void test_meta_and_format(void)
{
    flm_augment_params p = flm_augment_default_params();
    p.p_echo = 1;
    p.p_gain = 1;
    flm_augment_noise_pool *pool = make_pool();
    enum { N = 4000 };
    float x[N], s[N];
    fill_noise(x, N, 1, "m", 0.1);
    fill_noise(s, N, 2, "m", 0.1);
    flm_augment_result res = {0};
    flm_error err = {0};
    flm_augment_apply(&p, 9, "dlg/meta", x, N, NULL, 0, s, N, pool, &res, &err);
    flm_sample *smp = NULL;
    flm_sample_create(&smp, 4, &err);
    TAP_EQ_INT(flm_augment_result_to_meta(&res, smp, &err), 0, "result stored as sample metadata");
    const flm_meta *m = flm_sample_meta_get(smp, "aug.gain_db");
    TAP_OK(m && m->type == FLM_META_REAL && m->r == res.gain_db, "aug.gain_db = %g", res.gain_db);
    m = flm_sample_meta_get(smp, "aug.echo_delay_samples");
    TAP_OK(m && m->type == FLM_META_INT && m->i == res.echo_delay_samples,
           "aug.echo_delay_samples");
    m = flm_sample_meta_get(smp, "aug.noise_plan");
    TAP_OK(m && m->type == FLM_META_TEXT && strchr(m->s, ':'), "aug.noise_plan = %s",
           m ? m->s : "?");
    char text[2048];
    size_t need = flm_augment_result_format(&res, text, sizeof text);
    TAP_OK(need == strlen(text) && strstr(text, "aug.echo=1\n") && strstr(text, "aug.gain=1\n"),
           "key=value text");
    char small[16];
    TAP_EQ_INT(flm_augment_result_format(&res, small, sizeof small), need,
               "format returns the full length");
    TAP_EQ_INT(strlen(small), 15, "and truncates safely");
    /* allocation failures while storing or growing the segment list */
    int ok = 1;
    for (int k = 0; k < 30; k++) {
        flm_augment_result r2 = {0};
        flm_alloc_fail_after(k);
        int rc = flm_augment_apply(&p, 9, "dlg/meta", x, N, NULL, 0, s, N, pool, &r2, &err);
        int rc2 = rc == 0 ? flm_augment_result_to_meta(&r2, smp, &err) : 0;
        flm_alloc_fail_after(-1);
        ok &= (rc == 0 || rc == FLM_ENOMEM) && (rc2 == 0 || rc2 == FLM_ENOMEM);
        flm_augment_result_clear(&r2);
    }
    TAP_OK(ok, "injected allocation failures give FLM_ENOMEM");
    flm_sample_destroy(&smp);
    flm_augment_result_clear(&res);
    flm_augment_noise_pool_destroy(&pool);
}

static void test_pool_loading(void)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/flm-test-aug-XXXXXX",
             getenv("FLM_TEST_TMP") ? getenv("FLM_TEST_TMP")
             : getenv("TMPDIR")     ? getenv("TMPDIR")
                                    : "/tmp");
    if (!mkdtemp(dir)) {
        TAP_OK(0, "mkdtemp");
        return;
    }
    char p1[512], p2[512], man[512], bad[512];
    snprintf(p1, sizeof p1, "%s/b_second.wav", dir);
    snprintf(p2, sizeof p2, "%s/a_first.flac", dir);
    snprintf(man, sizeof man, "%s/list.txt", dir);
    float x[3000];
    fill_noise(x, 3000, 1, "pool", 0.3);
    flm_error err = {0};
    flm_audio_write_file(p1, FLM_AUDIO_WAV_F32, x, 3000, 1, 24000, &err);
    flm_audio_write_file(p2, FLM_AUDIO_FLAC_S16, x, 1000, 1, 16000, &err); /* 1500 at 24 kHz */
    FILE *f = fopen(man, "w");
    fprintf(f, "# noise clips\nb_second.wav\n\n%s\n", p2);
    fclose(f);
    flm_augment_noise_pool *pool = NULL;
    flm_augment_noise_pool_create(&pool, &err);
    /* the directory holds list.txt too: not audio, so loading the directory must fail on it */
    int r = flm_augment_noise_pool_load(pool, dir, 24000, 0, &err);
    TAP_OK(r == FLM_EFORMAT && strstr(err.msg, "list.txt"),
           "a non-audio file in the directory is named: %s", err.msg);
    flm_augment_noise_pool_destroy(&pool);
    unlink(man);
    flm_augment_noise_pool_create(&pool, &err);
    r = flm_augment_noise_pool_load(pool, dir, 24000, 0, &err);
    TAP_OK(r == 0 && flm_augment_noise_pool_size(pool) == 2, "directory: 2 clips");
    TAP_OK(flm_augment_noise_pool_clip_length(pool, 0) == 1500 &&
               flm_augment_noise_pool_clip_length(pool, 1) == 3000,
           "clips in name order, resampled to 24 kHz");
    flm_augment_noise_pool_destroy(&pool);
    f = fopen(man, "w");
    fprintf(f, "# noise clips\nb_second.wav\n\n%s\n", p2);
    fclose(f);
    flm_augment_noise_pool_create(&pool, &err);
    r = flm_augment_noise_pool_load(pool, man, 24000, 0, &err);
    TAP_OK(r == 0 && flm_augment_noise_pool_size(pool) == 2 &&
               flm_augment_noise_pool_clip_length(pool, 0) == 3000,
           "manifest: 2 clips in manifest order");
    r = flm_augment_noise_pool_load(pool, man, 24000, 0.1, &err);
    TAP_EQ_INT(r, FLM_ERANGE, "the memory limit is enforced");
    flm_augment_noise_pool_destroy(&pool);
    snprintf(bad, sizeof bad, "%s/bad.txt", dir);
    f = fopen(bad, "w");
    fprintf(f, "missing.wav\n");
    fclose(f);
    flm_augment_noise_pool_create(&pool, &err);
    r = flm_augment_noise_pool_load(pool, bad, 24000, 0, &err);
    TAP_OK(r == FLM_ENOTFOUND && strstr(err.msg, "bad.txt:1") && strstr(err.msg, "missing.wav"),
           "manifest error names line and file: %s", err.msg);
    flm_augment_noise_pool_destroy(&pool);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        tap_diag("cleanup failed");
}

int main(void)
{
    if (getenv("FLM_TEST_FAST"))
        N_SEEDS = 2000;
    test_defaults();
    test_statistics();
    test_floor();
    test_noise_levels();
    test_echo();
    test_clipping();
    test_reproducibility();
    test_meta_and_format();
    test_pool_loading();
    return tap_done();
}
