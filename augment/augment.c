/* augment.c - noise / gain / loudness floor / echo leakage on the listen waveform.
 * The algorithm and its guarantees are specified in flm_augment.h. */
#include "flm_augment.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_rng.h"
#include "flm_util.h"

#define LOUDNESS_EPS 1e-6

flm_augment_params flm_augment_default_params(void)
{
    flm_augment_params p = {
        .sample_rate = 24000,
        .p_gain = 0.6,
        .gain_db_lo = -24.0,
        .gain_db_hi = 20.0,
        .loudness_floor_db = -40.0,
        .loudness_floor = 1,
        .p_noise = 1.0,
        .noise_db_lo = -70.0,
        .noise_db_hi = -40.0,
        .p_noise_silence = 0.3,
        .noise_segment_max_s = 0.0,
        .p_echo = 0.3,
        .echo_gain_lo = 0.0,
        .echo_gain_hi = 0.2,
        .echo_delay_lo_s = 0.1,
        .echo_delay_hi_s = 0.5,
        .clip_mode = FLM_AUGMENT_CLIP_SCALE,
    };
    return p;
}

typedef struct param_field {
    const char *key;
    int type; /* 0 double, 1 int32, 2 clip mode */
    size_t offset;
} param_field;

#define PD(k)                                                                                      \
    {                                                                                              \
#k, 0, offsetof(flm_augment_params, k)                                                     \
    }
#define PI(k)                                                                                      \
    {                                                                                              \
#k, 1, offsetof(flm_augment_params, k)                                                     \
    }
static const param_field param_fields[] = {
    PI(sample_rate),
    PD(p_gain),
    PD(gain_db_lo),
    PD(gain_db_hi),
    PD(loudness_floor_db),
    PI(loudness_floor),
    PD(p_noise),
    PD(noise_db_lo),
    PD(noise_db_hi),
    PD(p_noise_silence),
    PD(noise_segment_max_s),
    PD(p_echo),
    PD(echo_gain_lo),
    PD(echo_gain_hi),
    PD(echo_delay_lo_s),
    PD(echo_delay_hi_s),
    {"clip_mode", 2, offsetof(flm_augment_params, clip_mode)},
};
#undef PD
#undef PI

const char *const *flm_augment_params_keys(void)
{
    static const char *keys[sizeof param_fields / sizeof *param_fields + 1];
    for (size_t i = 0; i < sizeof param_fields / sizeof *param_fields; i++)
        keys[i] = param_fields[i].key; /* idempotent: same values from any thread */
    return keys;
}

int flm_augment_params_set(flm_augment_params *p, const char *key, const char *value,
                           flm_error *err)
{
    for (size_t i = 0; i < sizeof param_fields / sizeof *param_fields; i++) {
        const param_field *f = &param_fields[i];
        if (strcmp(f->key, key))
            continue;
        char *end = NULL;
        void *dst = (char *)p + f->offset;
        if (f->type == 0) {
            double v = strtod(value, &end);
            if (end == value || *end || !isfinite(v))
                break;
            *(double *)dst = v;
        } else if (f->type == 1) {
            long v = strtol(value, &end, 10);
            if (end == value || *end || v < INT32_MIN || v > INT32_MAX)
                break;
            *(int32_t *)dst = (int32_t)v;
        } else {
            int32_t m = !strcmp(value, "scale")  ? FLM_AUGMENT_CLIP_SCALE
                        : !strcmp(value, "hard") ? FLM_AUGMENT_CLIP_HARD
                        : !strcmp(value, "none") ? FLM_AUGMENT_CLIP_NONE
                                                 : -1;
            if (m < 0)
                return flm_error_set(err, FLM_EINVAL,
                                     "augment: clip_mode '%s': expected scale, hard or none",
                                     value);
            *(int32_t *)dst = m;
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof param_fields / sizeof *param_fields; i++)
        if (!strcmp(param_fields[i].key, key))
            return flm_error_set(err, FLM_EINVAL, "augment: %s = '%s': expected a %s", key, value,
                                 param_fields[i].type == 0 ? "number" : "whole number");
    return flm_error_set(err, FLM_EINVAL, "augment: unknown parameter '%s'", key);
}

static int check_p(double v, const char *name, flm_error *err)
{
    if (!(v >= 0.0 && v <= 1.0))
        return flm_error_set(err, FLM_EINVAL, "augment: %s = %g, expected a probability in [0, 1]",
                             name, v);
    return 0;
}

static int check_range(double lo, double hi, double min, double max, const char *name,
                       flm_error *err)
{
    if (!(lo <= hi && lo >= min && hi <= max))
        return flm_error_set(err, FLM_EINVAL,
                             "augment: %s range [%g, %g] invalid (need lo <= hi within [%g, %g])",
                             name, lo, hi, min, max);
    return 0;
}

int flm_augment_params_check(const flm_augment_params *p, flm_error *err)
{
    int r;
    if (p->sample_rate < 8000 || p->sample_rate > 192000)
        return flm_error_set(err, FLM_EINVAL, "augment: sample_rate %d outside [8000, 192000]",
                             (int)p->sample_rate);
    if ((r = check_p(p->p_gain, "p_gain", err)) < 0 ||
        (r = check_p(p->p_noise, "p_noise", err)) < 0 ||
        (r = check_p(p->p_noise_silence, "p_noise_silence", err)) < 0 ||
        (r = check_p(p->p_echo, "p_echo", err)) < 0 ||
        (r = check_range(p->gain_db_lo, p->gain_db_hi, -120.0, 60.0, "gain_db", err)) < 0 ||
        (r = check_range(p->noise_db_lo, p->noise_db_hi, -110.0, 0.0, "noise_db", err)) < 0 ||
        (r = check_range(p->echo_gain_lo, p->echo_gain_hi, 0.0, 10.0, "echo_gain", err)) < 0 ||
        (r = check_range(p->echo_delay_lo_s, p->echo_delay_hi_s, 0.0, 60.0, "echo_delay_s", err)) <
            0)
        return r;
    if (!(p->loudness_floor_db >= -110.0 && p->loudness_floor_db <= 0.0))
        return flm_error_set(err, FLM_EINVAL, "augment: loudness_floor_db %g outside [-110, 0]",
                             p->loudness_floor_db);
    if (!(p->noise_segment_max_s >= 0.0))
        return flm_error_set(err, FLM_EINVAL, "augment: noise_segment_max_s %g < 0",
                             p->noise_segment_max_s);
    if (p->clip_mode < FLM_AUGMENT_CLIP_SCALE || p->clip_mode > FLM_AUGMENT_CLIP_NONE)
        return flm_error_set(err, FLM_EINVAL, "augment: unknown clip_mode %d", (int)p->clip_mode);
    return 0;
}

/* Sum of squares in double with 8 independent accumulators (a single chain is latency-bound;
 * the fixed association keeps the result deterministic). */
static double sum_squares(const float *x, int64_t n)
{
    double a[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            a[k] += (double)x[i + k] * (double)x[i + k];
    for (; i < n; i++)
        a[0] += (double)x[i] * (double)x[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* x *= g, returning the sum of squares of what was written (one pass instead of two). */
static double scale_measure(float *x, int64_t n, float g)
{
    double a[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            float v = x[i + k] * g;
            x[i + k] = v;
            a[k] += (double)v * (double)v;
        }
    for (; i < n; i++) {
        x[i] *= g;
        a[0] += (double)x[i] * (double)x[i];
    }
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* max |x| through the bit patterns (integer max vectorizes; NaN is not expected here). */
static float peak_abs(const float *x, int64_t n)
{
    uint32_t m[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            uint32_t u;
            memcpy(&u, &x[i + k], 4);
            u &= 0x7fffffffu;
            m[k] = u > m[k] ? u : m[k];
        }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u &= 0x7fffffffu;
        m[0] = u > m[0] ? u : m[0];
    }
    uint32_t best = 0;
    for (int k = 0; k < 8; k++)
        best = m[k] > best ? m[k] : best;
    float f;
    memcpy(&f, &best, 4);
    return f;
}

static double db_of(double sum_sq, int64_t n)
{
    double rms = n > 0 ? sqrt(sum_sq / (double)n) : 0.0;
    return 20.0 * log10(rms + LOUDNESS_EPS);
}

double flm_augment_loudness_db(const float *x, int64_t n)
{
    return db_of(n > 0 ? sum_squares(x, n) : 0.0, n);
}

/* ---- Noise pool ------------------------------------------------------------------------------ */
typedef struct noise_clip {
    float *x;    /* [n] */
    double *cum; /* [n + 1] prefix sums of x^2: rms of any segment in O(1) */
    int64_t n;
} noise_clip;

struct flm_augment_noise_pool {
    noise_clip *clips; /* [n_clips] */
    int32_t n_clips;
    size_t cap;
    int64_t total;
};

int flm_augment_noise_pool_create(flm_augment_noise_pool **out, flm_error *err)
{
    *out = flm_calloc(1, sizeof **out);
    if (!*out)
        return flm_error_set(err, FLM_ENOMEM, "noise pool: out of memory");
    return 0;
}

void flm_augment_noise_pool_destroy(flm_augment_noise_pool **pp)
{
    flm_augment_noise_pool *p = pp ? *pp : NULL;
    if (!p)
        return;
    for (int32_t i = 0; i < p->n_clips; i++) {
        flm_free(p->clips[i].x);
        flm_free(p->clips[i].cum);
    }
    flm_free(p->clips);
    flm_free(p);
    *pp = NULL;
}

int32_t flm_augment_noise_pool_size(const flm_augment_noise_pool *pool)
{
    return pool ? pool->n_clips : 0;
}

int64_t flm_augment_noise_pool_clip_length(const flm_augment_noise_pool *pool, int32_t k)
{
    return pool && k >= 0 && k < pool->n_clips ? pool->clips[k].n : 0;
}

uint64_t flm_augment_noise_pool_hash(const flm_augment_noise_pool *pool)
{
    if (!pool)
        return 0;
    XXH3_state_t *st = XXH3_createState();
    uint64_t h = 0;
    if (!st)
        return 0;
    XXH3_64bits_reset(st);
    for (int32_t k = 0; k < pool->n_clips; k++) {
        uint8_t n[8];
        flm_put_u64(n, (uint64_t)pool->clips[k].n);
        XXH3_64bits_update(st, n, sizeof n);
        XXH3_64bits_update(st, pool->clips[k].x, (size_t)pool->clips[k].n * sizeof(float));
    }
    h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

/* Takes ownership of x (flm_malloc'd) on success. */
static int pool_take(flm_augment_noise_pool *pool, float *x, int64_t n, flm_error *err)
{
    if (n <= 0 || n > (int64_t)UINT32_MAX)
        return flm_error_set(err, FLM_EINVAL, "noise pool: clip of %lld samples (expected 1..%u)",
                             (long long)n, UINT32_MAX);
    if (pool->n_clips == INT32_MAX || flm_grow((void **)&pool->clips, &pool->cap,
                                               (size_t)pool->n_clips + 1, sizeof *pool->clips) < 0)
        return flm_error_set(err, FLM_ENOMEM, "noise pool: out of memory");
    double *cum = flm_malloc(((size_t)n + 1) * sizeof *cum);
    if (!cum)
        return flm_error_set(err, FLM_ENOMEM, "noise pool: out of memory (%lld samples)",
                             (long long)n);
    cum[0] = 0.0;
    for (int64_t i = 0; i < n; i++)
        cum[i + 1] = cum[i] + (double)x[i] * (double)x[i];
    pool->clips[pool->n_clips++] = (noise_clip){.x = x, .cum = cum, .n = n};
    pool->total += n;
    return 0;
}

int flm_augment_noise_pool_add(flm_augment_noise_pool *pool, const float *x, int64_t n,
                               flm_error *err)
{
    if (n <= 0)
        return flm_error_set(err, FLM_EINVAL, "noise pool: empty clip");
    float *copy = flm_malloc((size_t)n * sizeof *copy);
    if (!copy)
        return flm_error_set(err, FLM_ENOMEM, "noise pool: out of memory");
    memcpy(copy, x, (size_t)n * sizeof *copy);
    int r = pool_take(pool, copy, n, err);
    if (r < 0)
        flm_free(copy);
    return r;
}

static int load_one(flm_augment_noise_pool *pool, const char *path, int32_t rate,
                    double max_total_s, flm_error *err)
{
    flm_audio_params ap = flm_audio_default_params();
    ap.sample_rate = rate;
    if (max_total_s > 0)
        ap.max_samples = (int64_t)(max_total_s * rate) - pool->total + 1;
    float *x = NULL;
    int64_t n = 0;
    int32_t nch = 0;
    int r = flm_audio_read_file(path, &ap, &x, &n, &nch, err);
    if (r == FLM_ERANGE ||
        (r == 0 && max_total_s > 0 && pool->total + n > (int64_t)(max_total_s * rate))) {
        flm_free(x);
        return flm_error_set(err, FLM_ERANGE,
                             "noise pool: %s: more than the limit of %g s of noise", path,
                             max_total_s);
    }
    if (r < 0)
        return flm_error_prefix(err, "noise pool");
    if ((r = pool_take(pool, x, n, err)) < 0) {
        flm_free(x);
        return flm_error_prefix(err, "%s", path);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int load_manifest(flm_augment_noise_pool *pool, const char *path, int32_t rate,
                         double max_total_s, flm_error *err)
{
    char *text = NULL;
    size_t size = 0;
    int r = flm_read_file(path, &text, &size, 64u << 20, err);
    if (r < 0)
        return r;
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path) : 0;
    char full[4096];
    int line = 0;
    for (char *p = text; *p;) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = 0;
        line++;
        size_t len = strlen(p);
        while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
            p[--len] = 0;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != '#') {
            int n = p[0] == '/' || !slash
                        ? snprintf(full, sizeof full, "%s", p)
                        : snprintf(full, sizeof full, "%.*s/%s", dir_len, path, p);
            if (n < 0 || (size_t)n >= sizeof full) {
                r = flm_error_set(err, FLM_EINVAL, "%s:%d: path too long", path, line);
                goto out;
            }
            if ((r = load_one(pool, full, rate, max_total_s, err)) < 0) {
                flm_error_prefix(err, "%s:%d", path, line);
                goto out;
            }
        }
        if (!eol)
            break;
        p = eol + 1;
    }
    r = 0;
out:
    flm_free(text);
    return r;
}

static int load_dir(flm_augment_noise_pool *pool, const char *path, int32_t rate,
                    double max_total_s, flm_error *err)
{
    DIR *dir = opendir(path);
    if (!dir)
        return flm_error_set(err, FLM_EIO, "noise pool: %s: cannot open directory: %s", path,
                             strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.')
            continue;
        char full[4096];
        if ((size_t)snprintf(full, sizeof full, "%s/%s", path, de->d_name) >= sizeof full)
            continue;
        struct stat st;
        if (stat(full, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        char *copy = flm_strdup(full);
        if (!copy || flm_grow((void **)&names, &cap, n + 1, sizeof *names) < 0) {
            flm_free(copy);
            r = flm_error_set(err, FLM_ENOMEM, "noise pool: out of memory");
            goto out;
        }
        names[n++] = copy;
    }
    if (n == 0) {
        r = flm_error_set(err, FLM_ENOTFOUND, "noise pool: %s: no files", path);
        goto out;
    }
    qsort(names, n, sizeof *names, cmp_str); /* clip indices must not depend on readdir order */
    for (size_t i = 0; i < n && r == 0; i++)
        r = load_one(pool, names[i], rate, max_total_s, err);
out:
    for (size_t i = 0; i < n; i++)
        flm_free(names[i]);
    flm_free(names);
    closedir(dir);
    return r;
}

int flm_augment_noise_pool_load(flm_augment_noise_pool *pool, const char *path, int32_t rate,
                                double max_total_s, flm_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return flm_error_set(err, errno == ENOENT ? FLM_ENOTFOUND : FLM_EIO, "noise pool: %s: %s",
                             path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return load_dir(pool, path, rate, max_total_s, err);
    if (ends_with(path, ".txt") || ends_with(path, ".lst") || ends_with(path, ".list"))
        return load_manifest(pool, path, rate, max_total_s, err);
    return load_one(pool, path, rate, max_total_s, err);
}

/* ---- Augmentation ------------------------------------------------------------------------ */
/* Uniform in the open interval (lo, hi): the paper's noise levels exclude both ends. */
static double uniform_open(flm_rng *r, double lo, double hi)
{
    double u = ((double)(flm_rng_u64(r) >> 11) + 0.5) * 0x1.0p-53;
    return lo + (hi - lo) * u;
}

static int add_segment(flm_augment_result *res, const flm_augment_noise_segment *s, flm_error *err)
{
    if (flm_grow((void **)&res->segments, &res->segments_cap, (size_t)res->n_segments + 1,
                 sizeof *res->segments) < 0)
        return flm_error_set(err, FLM_ENOMEM, "augment: out of memory (noise segments)");
    res->segments[res->n_segments++] = *s;
    return 0;
}

static void scale_span(float *x, int64_t n, double g)
{
    float gf = (float)g;
    for (int64_t i = 0; i < n; i++)
        x[i] *= gf;
}

/* Step 1 on one utterance: the drawn gain, then the floor, measured on what was written. */
static void gain_and_floor(const flm_augment_params *p, float *x, int64_t n, double gain_lin,
                           flm_augment_result *res)
{
    if (!p->loudness_floor || n == 0) {
        if (gain_lin != 1.0)
            scale_span(x, n, gain_lin);
        return;
    }
    double ss = gain_lin != 1.0 ? scale_measure(x, n, (float)gain_lin) : sum_squares(x, n);
    if (db_of(ss, n) >= p->loudness_floor_db)
        return;
    double rms = sqrt(ss / (double)n);
    if (rms < 1e-9) { /* silence (or -180 dB): raising it would only amplify rounding */
        res->n_floor_unreachable++;
        return;
    }
    double g = (pow(10.0, p->loudness_floor_db / 20.0) - LOUDNESS_EPS) / rms;
    double total = g;
    ss = scale_measure(x, n, (float)g);
    /* float rounding can leave the measurement a hair below the floor: nudge until it holds */
    for (int i = 0; i < 64 && db_of(ss, n) < p->loudness_floor_db; i++) {
        ss = scale_measure(x, n, (float)(1.0 + 0x1.0p-20));
        total *= 1.0 + 0x1.0p-20;
    }
    res->n_floor_raised++;
    double gdb = 20.0 * log10(total);
    if (gdb > res->floor_gain_db_max)
        res->floor_gain_db_max = gdb;
}

/* Draws the noise segments (all draws happen here, before any rendering). */
static int plan_noise(const flm_augment_params *p, uint64_t seed, const char *id, int64_t n,
                      const flm_augment_noise_pool *pool, flm_augment_result *res, flm_error *err)
{
    flm_rng r_clip, r_off, r_sil, r_lvl;
    flm_rng_init(&r_clip, seed, id, "aug.noise.clip");
    flm_rng_init(&r_off, seed, id, "aug.noise.offset");
    flm_rng_init(&r_sil, seed, id, "aug.noise.silence");
    flm_rng_init(&r_lvl, seed, id, "aug.noise.level");
    int64_t max_seg = p->noise_segment_max_s > 0
                          ? flm_audio_seconds_to_sample(p->noise_segment_max_s, p->sample_rate)
                          : INT64_MAX;
    if (max_seg < 1)
        max_seg = 1;
    for (int64_t pos = 0; pos < n;) {
        flm_augment_noise_segment s = {0};
        s.clip = (int32_t)flm_rng_below(&r_clip, (uint32_t)pool->n_clips);
        const noise_clip *c = &pool->clips[s.clip];
        s.n_samples = c->n;
        if (s.n_samples > n - pos)
            s.n_samples = n - pos;
        if (s.n_samples > max_seg)
            s.n_samples = max_seg;
        s.clip_offset = (int64_t)flm_rng_below(&r_off, (uint32_t)(c->n - s.n_samples + 1));
        s.start = pos;
        s.silent = flm_rng_bernoulli(&r_sil, p->p_noise_silence);
        s.level_db = uniform_open(&r_lvl, p->noise_db_lo, p->noise_db_hi);
        if (!s.silent) {
            double ss = c->cum[s.clip_offset + s.n_samples] - c->cum[s.clip_offset];
            double rms = sqrt((ss > 0 ? ss : 0) / (double)s.n_samples);
            s.scale = rms > 0 ? (pow(10.0, s.level_db / 20.0) - LOUDNESS_EPS) / rms : 0.0;
        } else {
            res->n_silent++;
        }
        int rc = add_segment(res, &s, err);
        if (rc < 0)
            return rc;
        pos += s.n_samples;
    }
    return 0;
}

int flm_augment_apply(const flm_augment_params *p, uint64_t seed, const char *sample_id, float *x,
                      int64_t n, const flm_augment_span *utts, int32_t n_utts, const float *speak,
                      int64_t n_speak, const flm_augment_noise_pool *pool, flm_augment_result *res,
                      flm_error *err)
{
    flm_augment_noise_segment *keep = res->segments;
    size_t keep_cap = res->segments_cap;
    memset(res, 0, sizeof *res);
    res->segments = keep;
    res->segments_cap = keep_cap;
    res->clip_gain = 1.0;
    int r = flm_augment_params_check(p, err);
    if (r < 0)
        return r;
    if (n < 0 || (n > 0 && !x) || n_utts < 0 || (n_utts > 0 && !utts) || n_speak < 0)
        return flm_error_set(err, FLM_EINVAL, "augment: %s: bad waveform arguments", sample_id);
    for (int32_t u = 0; u < n_utts; u++) {
        if (utts[u].start < 0 || utts[u].end < utts[u].start || utts[u].end > n)
            return flm_error_set(
                err, FLM_EINVAL, "augment: %s: utterance %d spans [%lld, %lld), outside [0, %lld)",
                sample_id, (int)u, (long long)utts[u].start, (long long)utts[u].end, (long long)n);
        if (u > 0 && utts[u].start < utts[u - 1].end)
            return flm_error_set(err, FLM_EINVAL,
                                 "augment: %s: utterance %d starts at %lld, before the end of "
                                 "utterance %d (%lld): utterances must be sorted and disjoint",
                                 sample_id, (int)u, (long long)utts[u].start, (int)u - 1,
                                 (long long)utts[u - 1].end);
    }

    /* 1. user gain and loudness floor */
    flm_rng rg;
    flm_rng_init(&rg, seed, sample_id, "aug.gain.apply");
    res->gain_applied = flm_rng_bernoulli(&rg, p->p_gain);
    double gain_lin = 1.0;
    if (res->gain_applied) {
        flm_rng_init(&rg, seed, sample_id, "aug.gain.db");
        res->gain_db = flm_rng_uniform_range(&rg, p->gain_db_lo, p->gain_db_hi);
        gain_lin = pow(10.0, res->gain_db / 20.0);
    }
    res->n_utterances = n_utts > 0 ? n_utts : 1;
    if (n_utts == 0)
        gain_and_floor(p, x, n, gain_lin, res);
    for (int32_t u = 0; u < n_utts; u++)
        gain_and_floor(p, x + utts[u].start, utts[u].end - utts[u].start, gain_lin, res);

    /* 2. noise track: draw the plan */
    flm_rng rn;
    flm_rng_init(&rn, seed, sample_id, "aug.noise.apply");
    if (flm_rng_bernoulli(&rn, p->p_noise) && pool && pool->n_clips > 0 && n > 0) {
        res->noise_applied = 1;
        if ((r = plan_noise(p, seed, sample_id, n, pool, res, err)) < 0)
            return r;
    }

    /* 3. echo leakage: draws */
    flm_rng re;
    flm_rng_init(&re, seed, sample_id, "aug.echo.apply");
    int64_t echo_end = 0;
    if (flm_rng_bernoulli(&re, p->p_echo) && speak && n_speak > 0) {
        res->echo_applied = 1;
        flm_rng_init(&re, seed, sample_id, "aug.echo.gain");
        res->echo_gain = flm_rng_uniform_range(&re, p->echo_gain_lo, p->echo_gain_hi);
        flm_rng_init(&re, seed, sample_id, "aug.echo.delay");
        res->echo_delay_s = flm_rng_uniform_range(&re, p->echo_delay_lo_s, p->echo_delay_hi_s);
        res->echo_delay_samples = flm_audio_seconds_to_sample(res->echo_delay_s, p->sample_rate);
        int64_t d = res->echo_delay_samples;
        echo_end = n < d + n_speak ? n : d + n_speak;
    }

    /* Render noise and echo and find the peak in one pass over cache-sized blocks (per sample
     * the order is x + noise, then + echo, exactly as if done in separate passes). */
    enum { BLOCK = 8192 };
    float peak = 0.0f, a = (float)res->echo_gain;
    int64_t d = res->echo_delay_samples;
    int32_t seg = 0;
    for (int64_t b0 = 0; b0 < n; b0 += BLOCK) {
        int64_t b1 = n - b0 < BLOCK ? n : b0 + BLOCK;
        while (seg < res->n_segments && res->segments[seg].start < b1) {
            const flm_augment_noise_segment *sg = &res->segments[seg];
            int64_t lo = sg->start > b0 ? sg->start : b0;
            int64_t hi = sg->start + sg->n_samples < b1 ? sg->start + sg->n_samples : b1;
            if (!sg->silent && sg->scale != 0.0) {
                float g = (float)sg->scale;
                const float *src = pool->clips[sg->clip].x + sg->clip_offset + (lo - sg->start);
                float *dst = x + lo;
                for (int64_t i = 0; i < hi - lo; i++)
                    dst[i] += g * src[i];
            }
            if (sg->start + sg->n_samples > b1)
                break;
            seg++;
        }
        if (res->echo_applied) {
            int64_t lo = d > b0 ? d : b0, hi = echo_end < b1 ? echo_end : b1;
            float *dst = x + lo;
            const float *src = speak + (lo - d);
            for (int64_t i = 0; i < hi - lo; i++)
                dst[i] += a * src[i];
        }
        float pk = peak_abs(x + b0, b1 - b0);
        if (pk > peak)
            peak = pk;
    }

    /* 4. clipping protection */
    res->peak = peak;
    if (peak > 1.0f && p->clip_mode == FLM_AUGMENT_CLIP_SCALE) {
        res->clip_gain = 1.0 / (double)peak;
        float g = (float)res->clip_gain;
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] * g; /* rounding may overshoot 1 by an ulp */
            x[i] = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
        }
    } else if (peak > 1.0f && p->clip_mode == FLM_AUGMENT_CLIP_HARD) {
        for (int64_t i = 0; i < n; i++) {
            if (x[i] > 1.0f || x[i] < -1.0f) {
                x[i] = x[i] > 0 ? 1.0f : -1.0f;
                res->n_clipped++;
            }
        }
    }
    return 0;
}

void flm_augment_result_clear(flm_augment_result *res)
{
    if (!res)
        return;
    flm_free(res->segments);
    memset(res, 0, sizeof *res);
}

/* ---- Key/values -------------------------------------------------------------------------- */
typedef struct kv_sink {
    int (*put_int)(void *ctx, const char *key, int64_t v);
    int (*put_real)(void *ctx, const char *key, double v);
    int (*put_text)(void *ctx, const char *key, const char *v);
    void *ctx;
} kv_sink;

/* The noise plan as text: one "start+n:clip@offset:level" per segment, "|"-separated,
 * level "silence" for silent segments. Returns the length needed (snprintf semantics). */
static size_t noise_plan(const flm_augment_result *res, char *buf, size_t size)
{
    size_t len = 0;
    for (int32_t i = 0; i < res->n_segments; i++) {
        const flm_augment_noise_segment *s = &res->segments[i];
        char one[128];
        int m = s->silent ? snprintf(one, sizeof one, "%s%lld+%lld:%d@%lld:silence", i ? "|" : "",
                                     (long long)s->start, (long long)s->n_samples, (int)s->clip,
                                     (long long)s->clip_offset)
                          : snprintf(one, sizeof one, "%s%lld+%lld:%d@%lld:%.4f", i ? "|" : "",
                                     (long long)s->start, (long long)s->n_samples, (int)s->clip,
                                     (long long)s->clip_offset, s->level_db);
        if (len + (size_t)m < size)
            memcpy(buf + len, one, (size_t)m + 1);
        len += (size_t)m;
    }
    if (size > 0 && len >= size)
        buf[size - 1] = 0;
    if (size > 0 && res->n_segments == 0)
        buf[0] = 0;
    return len;
}

static int emit(const flm_augment_result *res, const kv_sink *k, char *plan)
{
    int r;
    if ((r = k->put_int(k->ctx, "aug.gain", res->gain_applied)) < 0 ||
        (r = k->put_real(k->ctx, "aug.gain_db", res->gain_db)) < 0 ||
        (r = k->put_int(k->ctx, "aug.utterances", res->n_utterances)) < 0 ||
        (r = k->put_int(k->ctx, "aug.floor_raised", res->n_floor_raised)) < 0 ||
        (r = k->put_int(k->ctx, "aug.floor_unreachable", res->n_floor_unreachable)) < 0 ||
        (r = k->put_real(k->ctx, "aug.floor_gain_db_max", res->floor_gain_db_max)) < 0 ||
        (r = k->put_int(k->ctx, "aug.noise", res->noise_applied)) < 0 ||
        (r = k->put_int(k->ctx, "aug.noise_segments", res->n_segments)) < 0 ||
        (r = k->put_int(k->ctx, "aug.noise_silent", res->n_silent)) < 0 ||
        (r = k->put_text(k->ctx, "aug.noise_plan", plan)) < 0 ||
        (r = k->put_int(k->ctx, "aug.echo", res->echo_applied)) < 0 ||
        (r = k->put_real(k->ctx, "aug.echo_gain", res->echo_gain)) < 0 ||
        (r = k->put_real(k->ctx, "aug.echo_delay_s", res->echo_delay_s)) < 0 ||
        (r = k->put_int(k->ctx, "aug.echo_delay_samples", res->echo_delay_samples)) < 0 ||
        (r = k->put_real(k->ctx, "aug.peak", res->peak)) < 0 ||
        (r = k->put_real(k->ctx, "aug.clip_gain", res->clip_gain)) < 0 ||
        (r = k->put_int(k->ctx, "aug.clipped_samples", res->n_clipped)) < 0)
        return r;
    return 0;
}

static int meta_int(void *ctx, const char *key, int64_t v)
{
    return flm_sample_meta_set_int(ctx, key, v);
}
static int meta_real(void *ctx, const char *key, double v)
{
    return flm_sample_meta_set_real(ctx, key, v);
}
static int meta_text(void *ctx, const char *key, const char *v)
{
    return flm_sample_meta_set_text(ctx, key, v);
}

int flm_augment_result_to_meta(const flm_augment_result *res, flm_sample *s, flm_error *err)
{
    size_t need = noise_plan(res, NULL, 0) + 1;
    char *plan = flm_malloc(need);
    if (!plan)
        return flm_error_set(err, FLM_ENOMEM, "augment: out of memory (metadata)");
    noise_plan(res, plan, need);
    kv_sink k = {meta_int, meta_real, meta_text, s};
    int r = emit(res, &k, plan);
    flm_free(plan);
    if (r < 0)
        return flm_error_set(err, r, "augment: cannot store metadata on sample: %s",
                             flm_error_name(r));
    return 0;
}

typedef struct text_buf {
    char *buf;
    size_t size, len;
} text_buf;

static void text_put(text_buf *t, const char *key, const char *val)
{
    int m = snprintf(t->len < t->size ? t->buf + t->len : NULL,
                     t->len < t->size ? t->size - t->len : 0, "%s=%s\n", key, val);
    if (m > 0)
        t->len += (size_t)m;
}
static int text_int(void *ctx, const char *key, int64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", (long long)v);
    text_put(ctx, key, s);
    return 0;
}
static int text_real(void *ctx, const char *key, double v)
{
    char s[40];
    snprintf(s, sizeof s, "%.17g", v);
    text_put(ctx, key, s);
    return 0;
}
static int text_text(void *ctx, const char *key, const char *v)
{
    text_put(ctx, key, v);
    return 0;
}

size_t flm_augment_result_format(const flm_augment_result *res, char *buf, size_t size)
{
    size_t need = noise_plan(res, NULL, 0) + 1;
    char small[1024];
    char *plan = need <= sizeof small ? small : flm_malloc(need);
    if (!plan) {
        plan = small;
        need = sizeof small; /* truncated plan rather than nothing */
    }
    noise_plan(res, plan, need);
    text_buf t = {buf, size, 0};
    kv_sink k = {text_int, text_real, text_text, &t};
    emit(res, &k, plan);
    if (plan != small)
        flm_free(plan);
    if (size > 0 && t.len >= size)
        buf[size - 1] = 0;
    return t.len;
}
