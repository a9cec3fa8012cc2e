/* flm_augment.h - waveform augmentation of the listen channel (DESIGN section 5, paper app. B).
 *
 *     flm_error err = {0};
 *     flm_augment_noise_pool *pool = NULL;
 *     flm_augment_noise_pool_create(&pool, &err);
 *     flm_augment_noise_pool_load(pool, "noise/", 24000, 3600.0, &err); // dir or manifest
 *     flm_augment_params p = flm_augment_default_params();             // the paper's values
 *     flm_augment_result res = {0};
 *     if (flm_augment_apply(&p, seed, "dlg/0001#3", listen, n_listen, utts, n_utts,
 *                           speak, n_speak, pool, &res, &err) < 0) ...
 *     flm_augment_result_to_meta(&res, sample, &err);   // "aug.gain_db" = -7.3, ...
 *     flm_augment_result_clear(&res);
 *     flm_augment_noise_pool_destroy(&pool);
 *
 * Algorithm, in this order, on the listen waveform x (24 kHz float, modified in place):
 * 1. User gain. utts lists the user's utterances as sample spans [start, end), sorted and
 *    disjoint (none given: the whole waveform is one utterance). With probability p_gain (0.6)
 *    one gain g_db drawn uniformly in [gain_db_lo, gain_db_hi) = [-24, +20) dB multiplies every
 *    utterance. Then, per utterance, the loudness floor: loudness dB(v) = 20 log10(rms(v) + 1e-6);
 *    an utterance below loudness_floor_db (-40) is scaled up so that its dB, measured on the
 *    float samples written, is >= the floor (exactly: the scale is corrected until the
 *    measurement holds).
 *    An all-zero utterance (rms < 1e-9, i.e. below -180 dB) is not raised (that would only
 *    amplify rounding); it is counted in n_floor_unreachable.
 * 2. Noise. With probability p_noise (1.0: the paper adds noise to every sample) a noise track
 *    covering the whole waveform is built from consecutive segments: each segment takes a clip
 *    k uniform over the pool, length min(clip length, samples left, noise_segment_max_s), a
 *    start offset uniform over the clip's valid offsets; with probability p_noise_silence (0.3)
 *    the segment is silence, otherwise it is scaled so its loudness is a level L drawn
 *    uniformly in the open interval (noise_db_lo, noise_db_hi) = (-70, -40) dB:
 *    scale = (10^(L/20) - 1e-6) / rms(segment), which makes dB(scaled segment) = L.
 *    The noise track is added to x.
 * 3. Echo leakage. With probability p_echo (0.3) the speak waveform s is added with gain
 *    a uniform in [echo_gain_lo, echo_gain_hi) = [0, 0.2) and delay D uniform in
 *    [echo_delay_lo_s, echo_delay_hi_s) = [0.1, 0.5) s, D_samples = floor(D * rate + 0.5):
 *    x[i] += a * s[i - D_samples] for D_samples <= i < n (s shorter than that: no more echo).
 * 4. Clipping protection (clip_mode). The sum can exceed +-1 (a +20 dB gain on loud speech,
 *    echo on top). FLM_AUGMENT_CLIP_SCALE (default): if peak = max |x| > 1 the whole waveform
 *    is multiplied by 1 / peak (no distortion, every relation inside the sample kept; the
 *    loudness floor is then lowered by the same factor, recorded as clip_gain).
 *    FLM_AUGMENT_CLIP_HARD: samples are clamped to [-1, 1] (n_clipped counts them).
 *    FLM_AUGMENT_CLIP_NONE: left as is (Mimi takes any float; integer writers clamp).
 *
 * Randomness: every draw comes from flm_rng keyed by (seed, sample_id, purpose), one purpose
 * per kind of draw: "aug.gain.apply", "aug.gain.db", "aug.noise.apply", "aug.noise.clip",
 * "aug.noise.offset", "aug.noise.silence", "aug.noise.level", "aug.echo.apply", "aug.echo.gain",
 * "aug.echo.delay". A sample's result therefore depends only on (params, seed, sample_id,
 * its inputs, the pool): bit-identical in any order, partition or thread count. Changing one
 * probability never shifts the other kinds of draws.
 *
 * Ownership: listen is modified in place and stays the caller's; speak, utts and the pool are
 * read only (a pool may be shared by threads once loaded). The result owns its segment array;
 * flm_augment_result_clear frees it. flm_augment_apply is thread-safe for distinct results.
 */
#ifndef FLM_AUGMENT_H
#define FLM_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_stream.h"

enum {
    FLM_AUGMENT_CLIP_SCALE = 0, /* scale the waveform by 1 / peak when peak > 1 */
    FLM_AUGMENT_CLIP_HARD = 1,  /* clamp to [-1, 1] */
    FLM_AUGMENT_CLIP_NONE = 2,  /* leave values beyond +-1 */
};

typedef struct flm_augment_params {
    int32_t sample_rate;        /* 24000 */
    double p_gain;              /* 0.6 */
    double gain_db_lo;          /* -24 */
    double gain_db_hi;          /* +20 */
    double loudness_floor_db;   /* -40; applied to every utterance (gain drawn or not) */
    int32_t loudness_floor;     /* 1: enforce the floor, 0: off */
    double p_noise;             /* 1.0 */
    double noise_db_lo;         /* -70 */
    double noise_db_hi;         /* -40 */
    double p_noise_silence;     /* 0.3 */
    double noise_segment_max_s; /* 0: a segment is a whole clip (cut at the end) */
    double p_echo;              /* 0.3 */
    double echo_gain_lo;        /* 0 */
    double echo_gain_hi;        /* 0.2 */
    double echo_delay_lo_s;     /* 0.1 */
    double echo_delay_hi_s;     /* 0.5 */
    int32_t clip_mode;          /* FLM_AUGMENT_CLIP_SCALE */
} flm_augment_params;

typedef struct flm_augment_span {
    int64_t start, end; /* [start, end) in samples */
} flm_augment_span;

typedef struct flm_augment_noise_segment {
    int64_t start; /* first sample of the listen waveform it covers */
    int64_t n_samples;
    int32_t clip;        /* index into the pool (in load order) */
    int64_t clip_offset; /* first sample taken from the clip */
    int32_t silent;      /* 1: replaced by silence */
    double level_db;     /* drawn loudness L (also drawn, unused, for silent segments) */
    double scale;        /* factor applied to the clip (0 when silent or the clip is silent) */
} flm_augment_noise_segment;

/* The parameters actually drawn and the measurements that followed. */
typedef struct flm_augment_result {
    int32_t gain_applied;
    double gain_db; /* drawn gain (0 if not applied) */
    int32_t n_utterances;
    int32_t n_floor_raised;      /* utterances raised to the floor */
    int32_t n_floor_unreachable; /* silent utterances (rms < 1e-9) left below the floor */
    double floor_gain_db_max;    /* largest extra gain the floor applied (0 if none) */
    int32_t noise_applied;
    int32_t n_segments;
    int32_t n_silent;
    flm_augment_noise_segment *segments; /* [n_segments], owned */
    size_t segments_cap;
    int32_t echo_applied;
    double echo_gain;
    double echo_delay_s;        /* drawn delay */
    int64_t echo_delay_samples; /* floor(delay_s * rate + 0.5) */
    double peak;                /* max |x| before clipping protection */
    double clip_gain;           /* factor of CLIP_SCALE (1 if not needed) */
    int64_t n_clipped;          /* samples clamped by CLIP_HARD */
} flm_augment_result;

typedef struct flm_augment_noise_pool flm_augment_noise_pool;

/* The paper's values (see the struct comments). */
FLM_API flm_augment_params flm_augment_default_params(void);
/* FLM_EINVAL naming the first parameter out of range (probabilities in [0, 1], lo <= hi,
 * noise levels < 0 dB, delays >= 0). */
FLM_API int flm_augment_params_check(const flm_augment_params *p, flm_error *err);

/* Sets one parameter by its field name (the recipe key), e.g. ("p_echo", "0.5"),
 * ("clip_mode", "hard"), ("loudness_floor", "0"). Values are parsed strictly; an unknown key
 * or a malformed value is FLM_EINVAL naming both. Ranges are checked by params_check. */
FLM_API int flm_augment_params_set(flm_augment_params *p, const char *key, const char *value,
                                   flm_error *err);
/* The recipe keys, NULL-terminated, in struct order (for help texts and recipe validation). */
FLM_API const char *const *flm_augment_params_keys(void);

/* dB = 20 log10(rms + 1e-6), rms computed in double. 1e-6 -> -120 dB for n == 0 or silence. */
FLM_API double flm_augment_loudness_db(const float *x, int64_t n);

FLM_API int flm_augment_noise_pool_create(flm_augment_noise_pool **out, flm_error *err);
FLM_API void flm_augment_noise_pool_destroy(flm_augment_noise_pool **pool);
/* Adds a copy of x (mono, the pool's rate is the caller's business). n must be > 0. */
FLM_API int flm_augment_noise_pool_add(flm_augment_noise_pool *pool, const float *x, int64_t n,
                                       flm_error *err);
/* Loads every regular file of a directory (sorted by name, hidden files skipped) or every path
 * of a manifest (a text file, one path per line, relative to the manifest's directory, '#'
 * comments) decoded to mono at sample_rate. Stops with FLM_ERANGE beyond max_total_s seconds
 * of noise in memory (<= 0: no limit). A file that does not decode is an error naming it. */
FLM_API int flm_augment_noise_pool_load(flm_augment_noise_pool *pool, const char *path,
                                        int32_t sample_rate, double max_total_s, flm_error *err);
FLM_API int32_t flm_augment_noise_pool_size(const flm_augment_noise_pool *pool);
FLM_API int64_t flm_augment_noise_pool_clip_length(const flm_augment_noise_pool *pool, int32_t k);
/* XXH3-64 of the pool's clips (lengths and samples, in order): its identity in a run's
 * configuration. 0 for NULL. */
FLM_API uint64_t flm_augment_noise_pool_hash(const flm_augment_noise_pool *pool);

/* Augments listen[0..n) in place (see the algorithm above). utts may be NULL (whole waveform),
 * speak may be NULL (no echo possible), pool may be NULL or empty (no noise possible).
 * res is overwritten (its old segment array is reused or freed); clear it when done. */
FLM_API int flm_augment_apply(const flm_augment_params *p, uint64_t seed, const char *sample_id,
                              float *listen, int64_t n, const flm_augment_span *utts,
                              int32_t n_utts, const float *speak, int64_t n_speak,
                              const flm_augment_noise_pool *pool, flm_augment_result *res,
                              flm_error *err);
FLM_API void flm_augment_result_clear(flm_augment_result *res);

/* Stores the result as "aug.*" metadata on a sample (keys listed in docs/audio.md). */
FLM_API int flm_augment_result_to_meta(const flm_augment_result *res, flm_sample *s,
                                       flm_error *err);
/* Writes the same keys as "key=value" lines into buf (snprintf semantics: returns the length
 * the full text needs, writes at most size - 1 characters and a NUL). */
FLM_API size_t flm_augment_result_format(const flm_augment_result *res, char *buf, size_t size);

#endif
