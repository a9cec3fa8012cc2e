/* Shared helpers of the unit and golden tests: random samples, temporary directories, and the
 * largest difference of two float arrays. */
#ifndef FLM_TEST_UTIL_H
#define FLM_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flm_rng.h"
#include "flm_stream.h"

/* A sample with arbitrary token values, classes, strings (some absent), metadata and events. */
static inline flm_sample *random_sample(uint64_t seed, int idx, int32_t max_frames)
{
    char id[64];
    snprintf(id, sizeof id, "rand/%llu/%d", (unsigned long long)seed, idx);
    flm_rng r;
    flm_rng_init(&r, seed, id, "test-sample");
    flm_sample *s = NULL;
    if (flm_sample_create(&s, (int32_t)flm_rng_below(&r, (uint32_t)max_frames + 1), NULL) < 0)
        abort();
    for (size_t i = 0; i < (size_t)FLM_N_CHANNELS * (size_t)s->n_frames; i++) {
        s->tokens[i] = flm_rng_bernoulli(&r, 0.5) ? (int32_t)flm_rng_u32(&r)
                                                  : (int32_t)flm_rng_below(&r, 2050);
        s->loss_class[i] = (uint8_t)flm_rng_below(&r, FLM_N_LOSS_CLASSES);
    }
    flm_sample_set_id(s, id);
    static const char *words[] = {"tts", "asr", "中文", "", "a\tb", "post-training-2"};
    if (flm_rng_bernoulli(&r, 0.8))
        flm_sample_set_style(s, words[flm_rng_below(&r, 6)]);
    if (flm_rng_bernoulli(&r, 0.8))
        flm_sample_set_stage(s, words[flm_rng_below(&r, 6)]);
    if (flm_rng_bernoulli(&r, 0.8))
        flm_sample_set_language(s, words[flm_rng_below(&r, 6)]);
    if (flm_rng_bernoulli(&r, 0.8))
        flm_sample_set_corpus(s, words[flm_rng_below(&r, 6)]);
    if (flm_rng_bernoulli(&r, 0.5))
        flm_sample_set_speakers(s, "spk1,spk2");
    s->duration_s = flm_rng_uniform(&r) * 700;
    int n_meta = (int)flm_rng_below(&r, 8);
    for (int k = 0; k < n_meta; k++) {
        char key[32];
        snprintf(key, sizeof key, "key.%d", k);
        switch (flm_rng_below(&r, 3)) {
        case 0:
            flm_sample_meta_set_int(s, key, (int64_t)flm_rng_u64(&r));
            break;
        case 1:
            flm_sample_meta_set_real(s, key, flm_rng_normal(&r) * 1e6);
            break;
        default:
            flm_sample_meta_set_text(s, key, words[flm_rng_below(&r, 6)]);
            break;
        }
    }
    int n_ev = (int)flm_rng_below(&r, 5);
    for (int k = 0; k < n_ev; k++)
        flm_sample_add_event(s, k % 2 ? "interrupt" : "backchannel", (int32_t)flm_rng_u32(&r),
                             (int32_t)flm_rng_below(&r, 100), flm_rng_uniform(&r));
    return s;
}

/* A fresh empty directory under $FLM_TEST_TMP (or /tmp); the caller may leave it. */
static inline void temp_dir(char *out, size_t n, const char *name)
{
    const char *base = getenv("FLM_TEST_TMP");
    snprintf(out, n, "%s/%s.%ld", base ? base : "/tmp", name, (long)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/shards'", out, out);
    if (system(cmd) != 0)
        abort();
}

/* max |a - b| over n values; NaN anywhere makes it NaN (never a pass). */
static inline double max_abs(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        m = d > m || isnan(d) ? d : m;
    }
    return m;
}

#endif
