/* flm_rng.h - counter-based random numbers keyed by (run seed, sample id, purpose).
 *
 *     flm_rng r;
 *     flm_rng_init(&r, seed, "libri/1034-121119-0001#0", "aug.echo");
 *     if (flm_rng_bernoulli(&r, 0.3)) gain = flm_rng_uniform_range(&r, 0.0, 0.2);
 *
 * Algorithm (stable; shards record what they were built with, so never change it silently):
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
 * SC 2011), checked against the Random123 known-answer vectors. The 64-bit run seed is the
 * Philox key (low word first). The 128-bit counter is (block_lo, block_hi, h_lo, h_hi) where
 * h = XXH3_64bits_withSeed(sample_id "\0" purpose, 0) and block counts 128-bit output blocks
 * of this stream from 0. Each (seed, sample, purpose) is therefore its own independent stream:
 * what a sample draws never depends on call order, thread count or how a job is partitioned.
 *
 * Derived values: u32 = next output word; uniform() = (u64 >> 11) * 2^-53 in [0, 1) from two
 * consecutive words (first word = low half); below(n) is Lemire's unbiased multiply-shift with
 * rejection; bernoulli(p) = uniform() < p; normal() = Box-Muller on two uniforms.
 * The struct is plain data: copy it to fork a stream position; no allocation.
 */
#ifndef FLM_RNG_H
#define FLM_RNG_H

#include <stdint.h>

#include "flm_error.h"

typedef struct flm_rng {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];
    int pos; /* next unread word of buf; 4 = refill */
} flm_rng;

/* The raw block function (for known-answer tests). */
FLM_API void flm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

FLM_API void flm_rng_init(flm_rng *r, uint64_t seed, const char *sample_id, const char *purpose);
FLM_API uint32_t flm_rng_u32(flm_rng *r);
FLM_API uint64_t flm_rng_u64(flm_rng *r);
FLM_API double flm_rng_uniform(flm_rng *r);                             /* [0, 1) */
FLM_API double flm_rng_uniform_range(flm_rng *r, double lo, double hi); /* [lo, hi) */
FLM_API uint32_t flm_rng_below(flm_rng *r, uint32_t n);                 /* [0, n), n > 0 */
FLM_API int flm_rng_bernoulli(flm_rng *r, double p);
FLM_API double flm_rng_normal(flm_rng *r);

#endif
