/* Mimi codec: the stateful (streaming) layers, encode / decode by chunks and the batch wrappers.
 * See mimi_internal.h. */
#include "mimi_internal.h"

#include <string.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_util.h"

#define LN_EPS 1e-5f

/* ---------------------------------------------------------------- streaming layers */

/* A causal conv with its history: buf holds `pad` rows of past input, then the new rows. */
typedef struct sconv {
    flm_conv1d c;
    int pad;
    int replicate, started;
    float *buf; /* [pad + max_in][c_in] */
} sconv;

/* A transposed conv carrying the overlapping tail of its last output into the next call. */
typedef struct sconvtr {
    flm_convtr1d c;
    float *partial; /* [k - stride][c_out], without bias */
} sconvtr;

typedef struct xf_state {
    float **k, **v; /* [n_layers] -> [cap][d] */
    int cap, n_kv;
    int64_t k_pos0, pos; /* position of cached row 0; position of the next step */
} xf_state;

struct flm_mimi_stream {
    flm_mimi *m;
    int which, max_frames;
    sconv e_in, e_res[4], e_down[4], e_out, e_ds;
    xf_state e_xf;
    sconv d_in, d_res[4], d_out;
    sconvtr d_up[4], d_us;
    xf_state d_xf;
    float *act0, *act1; /* [act_n] each: activations, ping-pong */
    float *tmp;         /* [tmp_n]: residual branch */
    float *scr;         /* [scr_n]: transposed-conv GEMM output */
    float *xh, *xqkv, *xatt, *xff,
        *xattn;                        /* transformer scratch [T][d], [T][3d], [T][d], [T][ff] */
    float *lat;                        /* [max_frames][D] */
    float *z;                          /* [max_frames][qd] */
    float *scores;                     /* [max_frames][bins] */
    float *pcm;                        /* [max_frames * 1920] staging (zero-padded last chunk) */
    int32_t *codes;                    /* [max_frames][n_q] staging */
    double seconds[FLM_MIMI_N_STAGES]; /* time spent per stage, for benchmarks */
    alloc_list allocs;                 /* every buffer above (ALLOC_ZERO) */
};

static int sconv_init(flm_mimi_stream *s, sconv *c, const flm_conv1d *w, int max_in, int replicate)
{
    c->c = *w;
    c->pad = flm_conv1d_pad(w);
    c->replicate = replicate;
    c->buf = alloc_list_alloc(&s->allocs, (size_t)(c->pad + max_in) * w->c_in * sizeof(float));
    return c->buf ? 0 : FLM_ENOMEM;
}

static float *sconv_in(sconv *c)
{
    return c->buf + (size_t)c->pad * c->c.c_in;
}

/* Runs on the n_new rows written at sconv_in(); n_new is a multiple of the stride. flags:
 * FLM_CONV_*. */
static void sconv_run(sconv *c, int n_new, float *y, int flags)
{
    size_t ci = (size_t)c->c.c_in;
    if (c->replicate && !c->started)
        for (int r = 0; r < c->pad; r++)
            memcpy(c->buf + r * ci, sconv_in(c), ci * sizeof(float));
    c->started = 1;
    flm_conv1d_run(&c->c, c->buf, n_new / c->c.stride, y, flags);
    memmove(c->buf, c->buf + (size_t)n_new * ci, (size_t)c->pad * ci * sizeof(float));
}

static void sconv_reset(sconv *c)
{
    if (c->buf)
        memset(c->buf, 0, (size_t)c->pad * c->c.c_in * sizeof(float));
    c->started = 0;
}

#define DEC_TILE 2 /* frames per tile of the last decoder layers (decode_latent) */

static int sconvtr_init(flm_mimi_stream *s, sconvtr *c, const flm_convtr1d *w)
{
    c->c = *w;
    c->partial =
        alloc_list_alloc(&s->allocs, (size_t)(w->k - w->stride) * w->c_out * sizeof(float));
    return c->partial ? 0 : FLM_ENOMEM;
}

/* y: [(n_in-1)*stride + k][c_out]; its first n_in*stride rows are this call's output. */
static void sconvtr_run(sconvtr *c, const float *x, int n_in, float *y, float *scratch)
{
    int ov = c->c.k - c->c.stride, co = c->c.c_out;
    flm_convtr1d_f32(&c->c, x, n_in, y, scratch);
    for (size_t e = 0; e < (size_t)ov * co; e++)
        y[e] += c->partial[e];
    float *tail = y + (size_t)n_in * c->c.stride * co;
    for (int r = 0; r < ov; r++)
        for (int o = 0; o < co; o++)
            c->partial[(size_t)r * co + o] = tail[(size_t)r * co + o] - (c->c.b ? c->c.b[o] : 0.0f);
}

static void elu_copy(float *dst, const float *src, size_t n)
{
    memcpy(dst, src, n * sizeof *dst);
    flm_elu_f32(dst, n);
}

/* h[T][C] += conv_b(ELU(conv_a(ELU(h)))) (true skip). tmp: [T][C/2]. */
static void res_block(sconv *a, const flm_conv1d *b, float *h, int T, int C, float *tmp)
{
    elu_copy(sconv_in(a), h, (size_t)T * C);
    sconv_run(a, T, tmp, FLM_CONV_ELU);
    flm_conv1d_run(b, tmp, T, h, FLM_CONV_ACCUMULATE);
}

static int xf_init(flm_mimi_stream *s, xf_state *x, int max_steps)
{
    const flm_mimi_config *c = &s->m->cfg;
    x->cap = 2 * (c->context - 1 + max_steps);
    x->k = alloc_list_alloc(&s->allocs, (size_t)c->n_layers * sizeof *x->k);
    x->v = alloc_list_alloc(&s->allocs, (size_t)c->n_layers * sizeof *x->v);
    if (!x->k || !x->v)
        return FLM_ENOMEM;
    for (int l = 0; l < c->n_layers; l++) {
        x->k[l] = alloc_list_alloc(&s->allocs, (size_t)x->cap * c->d_model * sizeof(float));
        x->v[l] = alloc_list_alloc(&s->allocs, (size_t)x->cap * c->d_model * sizeof(float));
        if (!x->k[l] || !x->v[l])
            return FLM_ENOMEM;
    }
    return 0;
}

/* Runs the transformer on x[T][d] in place, continuing the stream at x->pos. */
static void xf_run(flm_mimi_stream *s, const xf_layer *W, xf_state *x, float *io, int T)
{
    const flm_mimi_config *c = &s->m->cfg;
    int d = c->d_model, H = c->n_heads, dh = d / H, ff = c->dim_ff;
    if (x->n_kv + T > x->cap) { /* keep the context-1 newest keys, at the front */
        int keep = x->n_kv < c->context - 1 ? x->n_kv : c->context - 1;
        for (int l = 0; l < c->n_layers; l++) {
            memmove(x->k[l], x->k[l] + (size_t)(x->n_kv - keep) * d,
                    (size_t)keep * d * sizeof(float));
            memmove(x->v[l], x->v[l] + (size_t)(x->n_kv - keep) * d,
                    (size_t)keep * d * sizeof(float));
        }
        x->k_pos0 += x->n_kv - keep;
        x->n_kv = keep;
    }
    for (int l = 0; l < c->n_layers; l++) {
        const xf_layer *L = &W[l];
        float *kc = x->k[l] + (size_t)x->n_kv * d, *vc = x->v[l] + (size_t)x->n_kv * d;
        flm_layer_norm_f32(T, d, io, L->n1w, L->n1b, LN_EPS, s->xh);
        flm_conv1d_run(&L->mm[0], s->xh, T, s->xqkv, 0);
        flm_rope_f32(s->xqkv, T, 3 * d, x->pos, H, dh, c->max_period, FLM_ROPE_INTERLEAVED);
        flm_rope_f32(s->xqkv + d, T, 3 * d, x->pos, H, dh, c->max_period, FLM_ROPE_INTERLEAVED);
        for (int t = 0; t < T; t++) {
            memcpy(kc + (size_t)t * d, s->xqkv + (size_t)t * 3 * d + d, (size_t)d * sizeof(float));
            memcpy(vc + (size_t)t * d, s->xqkv + (size_t)t * 3 * d + 2 * d,
                   (size_t)d * sizeof(float));
        }
        flm_attention_f32(s->xqkv, 3 * d, x->k[l], x->v[l], d, T, x->n_kv + T, x->pos, x->k_pos0,
                          c->context, H, dh, s->xatt, s->xattn);
        flm_conv1d_run(&L->mm[1], s->xatt, T, s->xh, 0);
        for (int t = 0; t < T; t++)
            for (int e = 0; e < d; e++)
                io[(size_t)t * d + e] += L->ls1[e] * s->xh[(size_t)t * d + e];
        flm_layer_norm_f32(T, d, io, L->n2w, L->n2b, LN_EPS, s->xh);
        flm_conv1d_run(&L->mm[2], s->xh, T, s->xff, 0);
        flm_gelu_f32(s->xff, (size_t)T * ff);
        flm_conv1d_run(&L->mm[3], s->xff, T, s->xh, 0);
        for (int t = 0; t < T; t++)
            for (int e = 0; e < d; e++)
                io[(size_t)t * d + e] += L->ls2[e] * s->xh[(size_t)t * d + e];
    }
    x->n_kv += T;
    x->pos += T;
}

static void xf_reset(xf_state *x)
{
    x->n_kv = 0;
    x->k_pos0 = x->pos = 0;
}

static size_t zmax(size_t a, size_t b)
{
    return a > b ? a : b;
}

int flm_mimi_stream_create(flm_mimi_stream **out, flm_mimi *m, int which, int max_frames,
                           flm_error *err)
{
    const flm_mimi_config *c = &m->cfg;
    flm_mimi_stream *s = flm_calloc(1, sizeof *s);
    int rc = FLM_ENOMEM, F = max_frames, nf = c->n_filters, D = c->dimension;
    *out = NULL;
    if (max_frames < 1 || !(which & (FLM_MIMI_ENCODE | FLM_MIMI_DECODE))) {
        flm_free(s);
        return flm_error_set(err, FLM_EINVAL, "Mimi stream: max_frames %d, which %d", max_frames,
                             which);
    }
    if (!s)
        return flm_error_set(err, FLM_ENOMEM, "Mimi stream: out of memory");
    alloc_list_init(&s->allocs, ALLOC_ZERO);
    s->m = m;
    s->which = which;
    s->max_frames = F;
    int L = F * FLM_MIMI_FRAME_SIZE, steps = 2 * F;
    size_t act = 0, tmp = 0, scr = 1;
    if (which & FLM_MIMI_ENCODE) {
        int T = L, C = nf;
        act = zmax(act, (size_t)T * C);
        if (sconv_init(s, &s->e_in, &m->enc_in, T, 0) < 0)
            goto fail;
        for (int i = 0; i < 4; i++) {
            int r = c->ratios[3 - i];
            tmp = zmax(tmp, (size_t)T * C / 2);
            if (sconv_init(s, &s->e_res[i], &m->enc_res[i].a, T, 0) < 0 ||
                sconv_init(s, &s->e_down[i], &m->enc_down[i], T, 0) < 0)
                goto fail;
            T /= r;
            C *= 2;
            act = zmax(act, (size_t)T * C);
        }
        if (sconv_init(s, &s->e_out, &m->enc_out, T, 0) < 0 ||
            sconv_init(s, &s->e_ds, &m->downsample, T, 1) < 0 || xf_init(s, &s->e_xf, steps) < 0)
            goto fail;
        act = zmax(act, (size_t)T * D);
    }
    if (which & FLM_MIMI_DECODE) {
        int T = steps, C = 16 * nf;
        act = zmax(act, (size_t)(steps + 2) * D);
        if (sconvtr_init(s, &s->d_us, &m->upsample) < 0 || xf_init(s, &s->d_xf, steps) < 0 ||
            sconv_init(s, &s->d_in, &m->dec_in, T, 0) < 0)
            goto fail;
        act = zmax(act, (size_t)T * C);
        for (int i = 0; i < 4; i++) {
            int r = c->ratios[i];
            if (sconvtr_init(s, &s->d_up[i], &m->dec_up[i]) < 0)
                goto fail;
            scr = zmax(scr, (size_t)T * 2 * r * (C / 2));
            act = zmax(act, (size_t)(T * r + r) * (C / 2));
            T *= r;
            C /= 2;
            tmp = zmax(tmp, (size_t)T * C / 2);
            if (sconv_init(s, &s->d_res[i], &m->dec_res[i].a, T, 0) < 0)
                goto fail;
        }
        if (sconv_init(s, &s->d_out, &m->dec_out, T, 0) < 0)
            goto fail;
        /* the tiled last stages: a tile's stage 2 and stage 3 outputs side by side */
        size_t tile = (size_t)(F < DEC_TILE ? F : DEC_TILE), r2 = (size_t)c->ratios[2],
               r3 = (size_t)c->ratios[3], rows = (size_t)(2 * c->ratios[0] * c->ratios[1]);
        act = zmax(act, (tile * rows * r2 + r2) * (size_t)(2 * nf) +
                            (tile * rows * r2 * r3 + r3) * (size_t)nf);
    }
    int d = c->d_model;
    s->act0 = alloc_list_alloc(&s->allocs, act * sizeof(float));
    s->act1 = alloc_list_alloc(&s->allocs, act * sizeof(float));
    s->tmp = alloc_list_alloc(&s->allocs, tmp * sizeof(float));
    s->scr = alloc_list_alloc(&s->allocs, scr * sizeof(float));
    s->xh = alloc_list_alloc(&s->allocs, (size_t)steps * d * sizeof(float));
    s->xqkv = alloc_list_alloc(&s->allocs, (size_t)steps * 3 * d * sizeof(float));
    s->xatt = alloc_list_alloc(&s->allocs, (size_t)steps * d * sizeof(float));
    s->xff = alloc_list_alloc(&s->allocs, (size_t)steps * c->dim_ff * sizeof(float));
    s->xattn = alloc_list_alloc(
        &s->allocs, flm_attention_scratch_size(
                        steps, s->e_xf.cap > s->d_xf.cap ? s->e_xf.cap : s->d_xf.cap, c->n_heads) *
                        sizeof(float));
    s->lat = alloc_list_alloc(&s->allocs, (size_t)F * D * sizeof(float));
    s->z = alloc_list_alloc(&s->allocs, (size_t)F * c->q_dim * sizeof(float));
    s->scores = alloc_list_alloc(&s->allocs, (size_t)F * c->bins * sizeof(float));
    s->pcm = alloc_list_alloc(&s->allocs, (size_t)L * sizeof(float));
    s->codes = alloc_list_alloc(&s->allocs, (size_t)F * c->n_q * sizeof(int32_t));
    if (!s->act0 || !s->act1 || !s->tmp || !s->scr || !s->xh || !s->xqkv || !s->xatt || !s->xff ||
        !s->xattn || !s->lat || !s->z || !s->scores || !s->pcm || !s->codes)
        goto fail;
    *out = s;
    return 0;
fail:
    flm_mimi_stream_destroy(&s);
    return flm_error_set(err, rc, "Mimi stream: out of memory");
}

void flm_mimi_stream_destroy(flm_mimi_stream **ps)
{
    flm_mimi_stream *s = ps ? *ps : NULL;
    if (!s)
        return;
    alloc_list_free(&s->allocs);
    flm_free(s);
    *ps = NULL;
}

void flm_mimi_stream_reset(flm_mimi_stream *s)
{
    sconv *convs[] = {&s->e_in, &s->e_out, &s->e_ds, &s->d_in, &s->d_out};
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++)
        sconv_reset(convs[i]);
    for (int i = 0; i < 4; i++) {
        sconv_reset(&s->e_res[i]);
        sconv_reset(&s->e_down[i]);
        sconv_reset(&s->d_res[i]);
        if (s->d_up[i].partial)
            memset(s->d_up[i].partial, 0,
                   (size_t)(s->d_up[i].c.k - s->d_up[i].c.stride) * s->d_up[i].c.c_out *
                       sizeof(float));
    }
    if (s->d_us.partial)
        memset(s->d_us.partial, 0, (size_t)2 * s->d_us.c.c_out * sizeof(float));
    xf_reset(&s->e_xf);
    xf_reset(&s->d_xf);
}

size_t flm_mimi_stream_size(const flm_mimi_stream *s)
{
    return s->allocs.size;
}

void flm_mimi_stream_timings(const flm_mimi_stream *s, double seconds[FLM_MIMI_N_STAGES])
{
    memcpy(seconds, s->seconds, sizeof s->seconds);
}

/* ---------------------------------------------------------------- encode / decode chunks */

#define ENC_TILE 2 /* frames per tile of the first encoder layers */
/* pcm [F*1920] -> s->lat [F][D] (unquantised latent). */
static void encode_latent(flm_mimi_stream *s, const float *pcm, int F)
{
    const flm_mimi *m = s->m;
    const flm_mimi_config *c = &m->cfg;
    int T = F * FLM_MIMI_FRAME_SIZE, C = c->n_filters;
    float *h = s->act0, *h2 = s->act1, *sw;
    double t0 = flm_now(), t1;
    /* The first layers (the widest activations) ENC_TILE frames at a time, so that a tile's
     * activations stay in cache from layer to layer instead of streaming the whole step through
     * memory at every layer; the streaming state of the convs makes this exact. Their output
     * [T / r0 r1][4 nf] goes to h2 past the tile-sized part that the second layer uses. */
    int r01 = c->ratios[3] * c->ratios[2], nf = C, tile = F < ENC_TILE ? F : ENC_TILE;
    float *mid = h2 + (size_t)tile * FLM_MIMI_FRAME_SIZE / c->ratios[3] * 2 * nf;
    for (int f = 0; f < F; f += tile) {
        int t = (F - f < tile ? F - f : tile) * FLM_MIMI_FRAME_SIZE;
        memcpy(sconv_in(&s->e_in), pcm + (size_t)f * FLM_MIMI_FRAME_SIZE,
               (size_t)t * sizeof(float));
        sconv_run(&s->e_in, t, h, 0);
        res_block(&s->e_res[0], &m->enc_res[0].b, h, t, nf, s->tmp);
        elu_copy(sconv_in(&s->e_down[0]), h, (size_t)t * nf);
        sconv_run(&s->e_down[0], t, h2, 0);
        t /= c->ratios[3];
        res_block(&s->e_res[1], &m->enc_res[1].b, h2, t, 2 * nf, s->tmp);
        elu_copy(sconv_in(&s->e_down[1]), h2, (size_t)t * 2 * nf);
        sconv_run(&s->e_down[1], t, mid + (size_t)f * FLM_MIMI_FRAME_SIZE / r01 * 4 * nf, 0);
    }
    T /= r01;
    C *= 4;
    h = mid, h2 = s->act0;
    for (int i = 2; i < 4; i++) {
        res_block(&s->e_res[i], &m->enc_res[i].b, h, T, C, s->tmp);
        elu_copy(sconv_in(&s->e_down[i]), h, (size_t)T * C);
        sconv_run(&s->e_down[i], T, h2, 0);
        T /= c->ratios[3 - i];
        C *= 2;
        sw = h, h = h2, h2 = sw == mid ? s->act1 : sw;
    }
    elu_copy(sconv_in(&s->e_out), h, (size_t)T * C);
    sconv_run(&s->e_out, T, h2, 0); /* [2F][D] */
    t1 = flm_now();
    s->seconds[FLM_MIMI_STAGE_SEANET_ENC] += t1 - t0;
    xf_run(s, m->enc_xf, &s->e_xf, h2, T);
    t0 = flm_now();
    s->seconds[FLM_MIMI_STAGE_XF_ENC] += t0 - t1;
    memcpy(sconv_in(&s->e_ds), h2, (size_t)T * c->dimension * sizeof(float));
    sconv_run(&s->e_ds, T, s->lat, 0);
    s->seconds[FLM_MIMI_STAGE_QUANT] += flm_now() - t0;
}

/* s->lat [F][D] -> codes [F][n_q]. */
static void quantize(flm_mimi_stream *s, int F, int32_t *codes)
{
    const flm_mimi_config *c = &s->m->cfg;
    int qd = c->q_dim, bins = c->bins, q = 0;
    double t0 = flm_now();
    for (int part = 0; part < 2; part++) {
        const vq_part *v = &s->m->vq[part];
        if (!v->n_levels)
            continue;
        flm_linear_f32(F, c->dimension, qd, s->lat, v->in_proj, NULL, s->z);
        for (int l = 0; l < v->n_levels; l++, q++) {
            const float *cb = v->codebook[l], *n2 = v->norm2[l];
            flm_gemm_nt_f32(F, bins, qd, s->z, qd, cb, qd, 0.0f, s->scores, bins);
            for (int f = 0; f < F; f++) {
                const float *sc = s->scores + (size_t)f * bins;
                int best = 0;
                float bd = n2[0] - 2.0f * sc[0];
                for (int j = 1; j < bins; j++) { /* first index wins ties, like argmin */
                    float dj = n2[j] - 2.0f * sc[j];
                    if (dj < bd)
                        bd = dj, best = j;
                }
                codes[(size_t)f * c->n_q + q] = best;
                float *zr = s->z + (size_t)f * qd;
                for (int e = 0; e < qd; e++)
                    zr[e] -= cb[(size_t)best * qd + e];
            }
        }
    }
    s->seconds[FLM_MIMI_STAGE_QUANT] += flm_now() - t0;
}

static int check_codes(const flm_mimi_config *c, const int32_t *codes, int F, int64_t frame0,
                       flm_error *err)
{
    for (int f = 0; f < F; f++)
        for (int q = 0; q < c->n_q; q++) {
            int32_t v = codes[(size_t)f * c->n_q + q];
            if (v < 0 || v >= c->bins)
                return flm_error_set(err, FLM_ERANGE,
                                     "Mimi decode: code %d at frame %lld, codebook %d outside "
                                     "[0, %d)",
                                     (int)v, (long long)(frame0 + f), q, c->bins);
        }
    return 0;
}

/* codes [F][n_q] -> s->lat [F][D]. */
static void dequantize(flm_mimi_stream *s, const int32_t *codes, int F)
{
    const flm_mimi_config *c = &s->m->cfg;
    int qd = c->q_dim, q = 0;
    float beta = 0.0f;
    double t0 = flm_now();
    for (int part = 0; part < 2; part++) {
        const vq_part *v = &s->m->vq[part];
        if (!v->n_levels)
            continue;
        memset(s->z, 0, (size_t)F * qd * sizeof(float));
        for (int l = 0; l < v->n_levels; l++, q++)
            for (int f = 0; f < F; f++) {
                const float *e = v->codebook[l] + (size_t)codes[(size_t)f * c->n_q + q] * qd;
                for (int i = 0; i < qd; i++)
                    s->z[(size_t)f * qd + i] += e[i];
            }
        flm_gemm_nt_f32(F, c->dimension, qd, s->z, qd, v->out_proj, qd, beta, s->lat, c->dimension);
        beta = 1.0f;
    }
    s->seconds[FLM_MIMI_STAGE_DEQUANT] += flm_now() - t0;
}

/* s->lat [F][D] -> pcm [F*1920]. */
static void decode_latent(flm_mimi_stream *s, int F, float *pcm)
{
    const flm_mimi *m = s->m;
    const flm_mimi_config *c = &m->cfg;
    float *h = s->act0, *h2 = s->act1, *sw;
    int T = 2 * F, C = 16 * c->n_filters;
    double t0 = flm_now(), t1;
    sconvtr_run(&s->d_us, s->lat, F, h, s->scr); /* [2F][D] */
    t1 = flm_now();
    s->seconds[FLM_MIMI_STAGE_DEQUANT] += t1 - t0;
    xf_run(s, m->dec_xf, &s->d_xf, h, T);
    t0 = flm_now();
    s->seconds[FLM_MIMI_STAGE_XF_DEC] += t0 - t1;
    memcpy(sconv_in(&s->d_in), h, (size_t)T * c->dimension * sizeof(float));
    sconv_run(&s->d_in, T, h2, 0);
    for (int i = 0; i < 2; i++) {
        int r = c->ratios[i];
        flm_elu_f32(h2, (size_t)T * C);
        sconvtr_run(&s->d_up[i], h2, T, h, s->scr);
        T *= r;
        C /= 2;
        res_block(&s->d_res[i], &m->dec_res[i].b, h, T, C, s->tmp);
        sw = h, h = h2, h2 = sw;
    }
    /* The last two stages and the output conv (the widest activations) DEC_TILE frames at a
     * time, so that a tile stays in cache from layer to layer; the streaming state of the convs
     * makes this exact. h2 holds stage 1's output; a tile's stage 2 output goes to h, its stage
     * 3 output to h past it (dec_tile_size). */
    int rows = T / F, tile = F < DEC_TILE ? F : DEC_TILE, r2 = c->ratios[2], r3 = c->ratios[3];
    int c2 = C / 2, c3 = C / 4;
    float *y3 = h + ((size_t)tile * rows * r2 + (size_t)r2) * c2;
    for (int f = 0; f < F; f += tile) {
        int t = (F - f < tile ? F - f : tile) * rows;
        float *x = h2 + (size_t)f * rows * C;
        flm_elu_f32(x, (size_t)t * C);
        sconvtr_run(&s->d_up[2], x, t, h, s->scr);
        t *= r2;
        res_block(&s->d_res[2], &m->dec_res[2].b, h, t, c2, s->tmp);
        flm_elu_f32(h, (size_t)t * c2);
        sconvtr_run(&s->d_up[3], h, t, y3, s->scr);
        t *= r3;
        res_block(&s->d_res[3], &m->dec_res[3].b, y3, t, c3, s->tmp);
        elu_copy(sconv_in(&s->d_out), y3, (size_t)t * c3);
        sconv_run(&s->d_out, t, pcm + (size_t)f * FLM_MIMI_FRAME_SIZE, 0);
    }
    s->seconds[FLM_MIMI_STAGE_SEANET_DEC] += flm_now() - t0;
}

int flm_mimi_stream_encode(flm_mimi_stream *s, const float *pcm, int n_frames, int32_t *codes,
                           flm_error *err)
{
    if (!(s->which & FLM_MIMI_ENCODE) || n_frames < 0 || n_frames > s->max_frames)
        return flm_error_set(err, FLM_EINVAL,
                             "Mimi stream encode: %d frames (stream takes 1..%d, encode %s)",
                             n_frames, s->max_frames, s->which & FLM_MIMI_ENCODE ? "on" : "off");
    if (n_frames == 0)
        return 0;
    encode_latent(s, pcm, n_frames);
    quantize(s, n_frames, codes);
    return 0;
}

int flm_mimi_stream_decode(flm_mimi_stream *s, const int32_t *codes, int n_frames, float *pcm,
                           flm_error *err)
{
    if (!(s->which & FLM_MIMI_DECODE) || n_frames < 0 || n_frames > s->max_frames)
        return flm_error_set(err, FLM_EINVAL,
                             "Mimi stream decode: %d frames (stream takes 1..%d, decode %s)",
                             n_frames, s->max_frames, s->which & FLM_MIMI_DECODE ? "on" : "off");
    int rc = check_codes(&s->m->cfg, codes, n_frames, s->d_xf.pos / 2, err);
    if (rc < 0 || n_frames == 0)
        return rc;
    dequantize(s, codes, n_frames);
    decode_latent(s, n_frames, pcm);
    return 0;
}

/* ---------------------------------------------------------------- batch */

enum { OUT_CODES, OUT_LATENT };

static int batch_encode(flm_mimi *m, const float *pcm, int64_t n_samples, void *out, int what,
                        flm_error *err)
{
    flm_mimi_stream *s = NULL;
    const flm_mimi_config *c = &m->cfg;
    int64_t n_frames = flm_mimi_n_frames(n_samples);
    if (n_samples < 0 || n_frames > INT32_MAX)
        return flm_error_set(err, FLM_EINVAL, "Mimi encode: %lld samples", (long long)n_samples);
    int chunk = n_frames < m->chunk_frames ? (int)(n_frames > 0 ? n_frames : 1) : m->chunk_frames;
    int rc = flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE, chunk, err);
    if (rc < 0)
        return rc;
    for (int64_t f0 = 0; f0 < n_frames; f0 += chunk) {
        int F = n_frames - f0 < chunk ? (int)(n_frames - f0) : chunk;
        int64_t s0 = f0 * FLM_MIMI_FRAME_SIZE, n = (int64_t)F * FLM_MIMI_FRAME_SIZE;
        if (s0 + n > n_samples) {
            memset(s->pcm, 0, (size_t)n * sizeof(float));
            memcpy(s->pcm, pcm + s0, (size_t)(n_samples - s0) * sizeof(float));
        } else {
            memcpy(s->pcm, pcm + s0, (size_t)n * sizeof(float));
        }
        encode_latent(s, s->pcm, F);
        if (what == OUT_LATENT) {
            memcpy((float *)out + f0 * c->dimension, s->lat,
                   (size_t)F * c->dimension * sizeof(float));
            continue;
        }
        quantize(s, F, s->codes);
        for (int f = 0; f < F; f++)
            for (int q = 0; q < c->n_q; q++)
                ((int32_t *)out)[q * n_frames + f0 + f] = s->codes[f * c->n_q + q];
    }
    flm_mimi_stream_destroy(&s);
    return 0;
}

int flm_mimi_encode(flm_mimi *m, const float *pcm, int64_t n_samples, int32_t *codes,
                    flm_error *err)
{
    return batch_encode(m, pcm, n_samples, codes, OUT_CODES, err);
}

int flm_mimi_encode_latent(flm_mimi *m, const float *pcm, int64_t n_samples, float *latent,
                           flm_error *err)
{
    return batch_encode(m, pcm, n_samples, latent, OUT_LATENT, err);
}

static int batch_decode(flm_mimi *m, const int32_t *codes, int64_t n_frames, float *out, int what,
                        flm_error *err)
{
    flm_mimi_stream *s = NULL;
    const flm_mimi_config *c = &m->cfg;
    if (n_frames < 0 || n_frames > INT32_MAX)
        return flm_error_set(err, FLM_EINVAL, "Mimi decode: %lld frames", (long long)n_frames);
    int chunk = n_frames < m->chunk_frames ? (int)(n_frames > 0 ? n_frames : 1) : m->chunk_frames;
    int rc = flm_mimi_stream_create(&s, m, FLM_MIMI_DECODE, chunk, err);
    if (rc < 0)
        return rc;
    for (int64_t f0 = 0; f0 < n_frames && rc == 0; f0 += chunk) {
        int F = n_frames - f0 < chunk ? (int)(n_frames - f0) : chunk;
        for (int f = 0; f < F; f++)
            for (int q = 0; q < c->n_q; q++)
                s->codes[f * c->n_q + q] = codes[q * n_frames + f0 + f];
        if ((rc = check_codes(c, s->codes, F, f0, err)) < 0)
            break;
        dequantize(s, s->codes, F);
        if (what == OUT_LATENT)
            memcpy(out + f0 * c->dimension, s->lat, (size_t)F * c->dimension * sizeof(float));
        else
            decode_latent(s, F, out + f0 * FLM_MIMI_FRAME_SIZE);
    }
    flm_mimi_stream_destroy(&s);
    return rc;
}

int flm_mimi_decode(flm_mimi *m, const int32_t *codes, int64_t n_frames, float *pcm, flm_error *err)
{
    return batch_decode(m, codes, n_frames, pcm, OUT_CODES, err);
}

int flm_mimi_decode_latent(flm_mimi *m, const int32_t *codes, int64_t n_frames, float *latent,
                           flm_error *err)
{
    return batch_decode(m, codes, n_frames, latent, OUT_LATENT, err);
}
