#include "flm_tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[FLM_DTYPE_COUNT] = {
    [FLM_DTYPE_F32] = {"F32", 4},   [FLM_DTYPE_F16] = {"F16", 2}, [FLM_DTYPE_BF16] = {"BF16", 2},
    [FLM_DTYPE_F64] = {"F64", 8},   [FLM_DTYPE_I64] = {"I64", 8}, [FLM_DTYPE_I32] = {"I32", 4},
    [FLM_DTYPE_I16] = {"I16", 2},   [FLM_DTYPE_I8] = {"I8", 1},   [FLM_DTYPE_U8] = {"U8", 1},
    [FLM_DTYPE_BOOL] = {"BOOL", 1},
};

size_t flm_dtype_size(flm_dtype t)
{
    return (unsigned)t < FLM_DTYPE_COUNT ? dtypes[t].size : 0;
}

const char *flm_dtype_name(flm_dtype t)
{
    return (unsigned)t < FLM_DTYPE_COUNT ? dtypes[t].name : NULL;
}

int flm_dtype_parse(const char *name)
{
    for (int i = 0; i < FLM_DTYPE_COUNT; i++)
        if (!strcmp(name, dtypes[i].name))
            return i;
    return -1;
}

flm_tensor flm_tensor_view(flm_dtype dtype, void *data, int n_dim, const int64_t *shape)
{
    flm_tensor t = {.dtype = dtype, .n_dim = n_dim, .data = data};
    for (int i = 0; i < n_dim && i < FLM_TENSOR_MAX_DIM; i++)
        t.shape[i] = shape[i];
    return t;
}

int64_t flm_tensor_numel(const flm_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->n_dim; i++) {
        if (t->shape[i] < 0)
            return -1;
        if (t->shape[i] && n > INT64_MAX / t->shape[i])
            return -1;
        n *= t->shape[i];
    }
    return n;
}

void flm_shape_format(char *buf, size_t size, int n_dim, const int64_t *shape)
{
    size_t used = 0;
    if (!size)
        return;
    buf[0] = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < n_dim && used < size; i++)
        used +=
            (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

void flm_bf16_to_f32(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = bits_f32((uint32_t)src[i] << 16);
}

void flm_f32_to_bf16(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = f32_bits(src[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet and a NaN */
            dst[i] = (uint16_t)((u >> 16) | 0x40);
        else
            dst[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
    }
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) { /* zero or subnormal: man * 2^-24 */
        float f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static uint16_t float_to_half(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return sign | 0x7e00;
    if (a >= 0x477ff000u) /* rounds to >= 65520: inf */
        return sign | 0x7c00;
    if (a < 0x38800000u) {                 /* below the smallest normal half: subnormal or zero */
        float m = bits_f32(a) * 0x1p24f;   /* in units of 2^-24, exact scaling */
        return sign | (uint16_t)lrintf(m); /* lrintf rounds to nearest even */
    }
    uint32_t r = a - (112u << 23);
    r += 0xfffu + ((r >> 13) & 1);
    return sign | (uint16_t)(r >> 13);
}

void flm_f16_to_f32(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_to_float(src[i]);
}

void flm_f32_to_f16(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = float_to_half(src[i]);
}

int flm_convert_to_f32(flm_dtype dtype, const void *src, float *dst, size_t n)
{
    const uint8_t *p = src;
    switch (dtype) {
    case FLM_DTYPE_F32:
        memcpy(dst, src, n * 4);
        return 0;
    case FLM_DTYPE_BF16:
    case FLM_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            dst[i] = dtype == FLM_DTYPE_BF16 ? bits_f32((uint32_t)h << 16) : half_to_float(h);
        }
        return 0;
    case FLM_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    default:
        return FLM_EINVAL;
    }
}
