#include "flm_rng.h"

#include <math.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "flm_alloc.h"

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void flm_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(0xD2511F53u, c0, &hi0, &lo0);
        mulhilo(0xCD9E8D57u, c2, &hi1, &lo1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void flm_rng_init(flm_rng *r, uint64_t seed, const char *sample_id, const char *purpose)
{
    size_t ns = strlen(sample_id), np = strlen(purpose);
    char stack[256];
    char *buf = ns + np + 1 <= sizeof stack ? stack : flm_malloc(ns + np + 1);
    uint64_t h;
    if (buf) {
        memcpy(buf, sample_id, ns);
        buf[ns] = 0;
        memcpy(buf + ns + 1, purpose, np);
        h = XXH3_64bits_withSeed(buf, ns + np + 1, 0);
        if (buf != stack)
            flm_free(buf);
    } else { /* same value without the scratch buffer: streaming hash */
        XXH3_state_t st;
        XXH3_64bits_reset_withSeed(&st, 0);
        XXH3_64bits_update(&st, sample_id, ns + 1);
        XXH3_64bits_update(&st, purpose, np);
        h = XXH3_64bits_digest(&st);
    }
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = 0;
    r->ctr[2] = (uint32_t)h;
    r->ctr[3] = (uint32_t)(h >> 32);
    r->pos = 4;
}

uint32_t flm_rng_u32(flm_rng *r)
{
    if (r->pos == 4) {
        flm_philox4x32_10(r->ctr, r->key, r->buf);
        if (++r->ctr[0] == 0)
            r->ctr[1]++;
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

uint64_t flm_rng_u64(flm_rng *r)
{
    uint64_t lo = flm_rng_u32(r);
    uint64_t hi = flm_rng_u32(r);
    return lo | hi << 32;
}

double flm_rng_uniform(flm_rng *r)
{
    return (double)(flm_rng_u64(r) >> 11) * 0x1.0p-53;
}

double flm_rng_uniform_range(flm_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * flm_rng_uniform(r);
}

uint32_t flm_rng_below(flm_rng *r, uint32_t n)
{
    uint64_t m = (uint64_t)flm_rng_u32(r) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (l < t) {
            m = (uint64_t)flm_rng_u32(r) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

int flm_rng_bernoulli(flm_rng *r, double p)
{
    return flm_rng_uniform(r) < p;
}

double flm_rng_normal(flm_rng *r)
{
    double u1 = 1.0 - flm_rng_uniform(r); /* (0, 1] */
    double u2 = flm_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}
