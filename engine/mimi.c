/* Mimi codec: weights, config inference, the stateful (streaming) layers and batch wrappers.
 *
 * Weight table (checkpoint name -> field; shapes for the released model, nf = 64, D = 512,
 * d = 512, ff = 2048, qd = 256; conv weights are repacked to [c_out][k][c_in] at load):
 *
 *   encoder.model.0.conv.conv.{weight [nf,1,7], bias}            enc_in
 *   encoder.model.{1,4,7,10}.block.1.conv.conv.{weight [C/2,C,3], bias}   enc_res[i].a
 *   encoder.model.{1,4,7,10}.block.3.conv.conv.{weight [C,C/2,1], bias}   enc_res[i].b
 *     (C = nf * 2^i)
 *   encoder.model.{3,6,9,12}.conv.conv.{weight [2C,C,2r], bias}  enc_down[i], r = 4,5,6,8
 *   encoder.model.14.conv.conv.{weight [D,16nf,3], bias}         enc_out
 *   {encoder,decoder}_transformer.transformer.layers.L.
 *       self_attn.in_proj_weight [3d,d]  (q;k;v)    xf[L].in_proj
 *       self_attn.out_proj.weight [d,d]             xf[L].out_proj
 *       norm1.{weight,bias} [d], norm2.{weight,bias} [d]
 *       linear1.weight [ff,d], linear2.weight [d,ff]
 *       layer_scale_1.scale [d], layer_scale_2.scale [d]
 *   downsample.conv.conv.conv.weight [D,D,4]                     downsample (replicate pad)
 *   upsample.convtr.convtr.convtr.weight [D,1,4]                 upsample (depthwise)
 *   quantizer.rvq_{first,rest}.input_proj.weight [qd,D,1]        vq[p].in_proj
 *   quantizer.rvq_{first,rest}.output_proj.weight [D,qd,1]       vq[p].out_proj
 *   quantizer.rvq_first.vq.layers.0._codebook.{embedding_sum [2048,qd], cluster_usage [2048],
 *       _initialized [1]}  and rvq_rest.vq.layers.j (j < n_q-1)   vq[p].codebook[level]
 *   decoder.model.0.conv.conv.{weight [16nf,D,7], bias}          dec_in
 *   decoder.model.{2,5,8,11}.convtr.convtr.{weight [C,C/2,2r], bias}     dec_up[i] (C = 16nf/2^i)
 *   decoder.model.{3,6,9,12}.block.{1,3}.conv.conv.{weight, bias}         dec_res[i]
 *   decoder.model.14.conv.conv.{weight [1,nf,3], bias}           dec_out
 */
#include "flm_mimi.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_rng.h"
#include "flm_util.h"

#define LN_EPS 1e-5f
#define USAGE_EPS 1e-5f
/* Random init: centroids small against the latent a random encoder produces (rms ~0.02), so
 * that nearest-centroid decisions follow z.e rather than |e|^2 and the codes of a random model
 * vary from frame to frame (a constant code stream would make stream == batch tests vacuous). */
#define CODEBOOK_INIT_STD 1e-3

typedef struct res_w {
    flm_conv1d a; /* C -> C/2, k = residual_kernel */
    flm_conv1d b; /* C/2 -> C, k = 1 */
} res_w;

typedef struct xf_layer {
    float *in_proj;               /* [3d][d] */
    float *out_proj;              /* [d][d] */
    float *n1w, *n1b, *n2w, *n2b; /* [d] */
    float *lin1;                  /* [ff][d] */
    float *lin2;                  /* [d][ff] */
    float *ls1, *ls2;             /* [d] */
    flm_conv1d mm[4];             /* the four as k = 1 convs, what runs (see pack_panels) */
} xf_layer;

typedef struct vq_part {
    float *in_proj;  /* [qd][D] */
    float *out_proj; /* [D][qd] */
    int n_levels;
    float *codebook[64]; /* each [bins][qd] = embedding_sum / max(cluster_usage, eps) */
    float *usage[64];    /* each [bins], only during load */
    float *norm2[64];    /* each [bins]: squared norms of the centroids */
} vq_part;

struct flm_mimi {
    flm_mimi_config cfg;
    int chunk_frames; /* batch step */
    flm_conv1d enc_in, enc_down[4], enc_out;
    res_w enc_res[4];
    xf_layer *enc_xf, *dec_xf; /* [n_layers] */
    flm_conv1d downsample;
    flm_convtr1d upsample;
    vq_part vq[2]; /* 0: rvq_first (semantic), 1: rvq_rest (acoustic) */
    flm_conv1d dec_in, dec_out;
    flm_convtr1d dec_up[4];
    res_w dec_res[4];
    void **allocs;
    size_t n_allocs, cap_allocs, weight_size;
};

/* ---------------------------------------------------------------- the tensor table */

enum { PACK_NONE, PACK_CONV, PACK_CONVTR };
enum { INIT_FANIN, INIT_ONE, INIT_ZERO, INIT_SCALE, INIT_NORMAL, INIT_USAGE };

typedef struct wdesc {
    char name[160];
    int n_dim;
    int64_t shape[3];
    int pack;       /* how the loader stores it */
    float **dst;    /* loader destination (NULL: check only) */
    int init;       /* how the random init fills it */
    int64_t fan_in; /* for INIT_FANIN */
} wdesc;

typedef int (*wfn)(void *ctx, const wdesc *d);

typedef struct walker {
    wfn fn;
    void *ctx;
    int rc;
} walker;

static void emit(walker *w, float **dst, int pack, int init, int64_t fan_in, int n_dim,
                 const int64_t *shape, const char *fmt, ...) FLM_PRINTF(8, 9);

static void emit(walker *w, float **dst, int pack, int init, int64_t fan_in, int n_dim,
                 const int64_t *shape, const char *fmt, ...)
{
    if (w->rc < 0)
        return;
    wdesc d = {.n_dim = n_dim, .pack = pack, .dst = dst, .init = init, .fan_in = fan_in};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d.name, sizeof d.name, fmt, ap);
    va_end(ap);
    for (int i = 0; i < n_dim; i++)
        d.shape[i] = shape[i];
    w->rc = w->fn(w->ctx, &d);
}

/* A conv "<prefix>.weight/.bias" with checkpoint shape [c_out][c_in][k]. */
static void emit_conv(walker *w, flm_conv1d *c, int c_in, int c_out, int k, int stride, int bias,
                      const char *prefix)
{
    if (c) {
        *c = (flm_conv1d){.c_in = c_in, .c_out = c_out, .k = k, .stride = stride, .dilation = 1};
    }
    emit(w, c ? (float **)&c->w : NULL, PACK_CONV, INIT_FANIN, (int64_t)c_in * k, 3,
         (int64_t[]){c_out, c_in, k}, "%s.weight", prefix);
    if (bias)
        emit(w, c ? (float **)&c->b : NULL, PACK_NONE, INIT_ZERO, 0, 1, (int64_t[]){c_out},
             "%s.bias", prefix);
}

static void emit_convtr(walker *w, flm_convtr1d *c, int c_in, int c_out, int k, int stride,
                        const char *prefix)
{
    if (c)
        *c = (flm_convtr1d){.c_in = c_in, .c_out = c_out, .k = k, .stride = stride};
    emit(w, c ? (float **)&c->w : NULL, PACK_CONVTR, INIT_FANIN, (int64_t)c_out * k, 3,
         (int64_t[]){c_in, c_out, k}, "%s.weight", prefix);
    emit(w, c ? (float **)&c->b : NULL, PACK_NONE, INIT_ZERO, 0, 1, (int64_t[]){c_out}, "%s.bias",
         prefix);
}

static void emit_res(walker *w, res_w *r, int C, int k, const char *prefix)
{
    char p[128];
    snprintf(p, sizeof p, "%s.block.1.conv.conv", prefix);
    emit_conv(w, r ? &r->a : NULL, C, C / 2, k, 1, 1, p);
    snprintf(p, sizeof p, "%s.block.3.conv.conv", prefix);
    emit_conv(w, r ? &r->b : NULL, C / 2, C, 1, 1, 1, p);
}

static void emit_xf(walker *w, xf_layer *xf, const flm_mimi_config *c, const char *which)
{
    int64_t d = c->d_model, ff = c->dim_ff;
    for (int l = 0; l < c->n_layers; l++) {
        xf_layer *L = xf ? &xf[l] : NULL;
#define XF(field, pack, init, fan, nd, ...)                                                        \
    emit(w, L ? &L->field : NULL, pack, init, fan, nd, (int64_t[]){__VA_ARGS__},                   \
         "%s_transformer.transformer.layers.%d.%s", which, l, xf_names[n_xf++])
        static const char *const xf_names[] = {"self_attn.in_proj_weight",
                                               "self_attn.out_proj.weight",
                                               "norm1.weight",
                                               "norm1.bias",
                                               "norm2.weight",
                                               "norm2.bias",
                                               "linear1.weight",
                                               "linear2.weight",
                                               "layer_scale_1.scale",
                                               "layer_scale_2.scale"};
        int n_xf = 0;
        XF(in_proj, PACK_NONE, INIT_FANIN, d, 2, 3 * d, d);
        XF(out_proj, PACK_NONE, INIT_FANIN, d, 2, d, d);
        XF(n1w, PACK_NONE, INIT_ONE, 0, 1, d);
        XF(n1b, PACK_NONE, INIT_ZERO, 0, 1, d);
        XF(n2w, PACK_NONE, INIT_ONE, 0, 1, d);
        XF(n2b, PACK_NONE, INIT_ZERO, 0, 1, d);
        XF(lin1, PACK_NONE, INIT_FANIN, d, 2, ff, d);
        XF(lin2, PACK_NONE, INIT_FANIN, ff, 2, d, ff);
        XF(ls1, PACK_NONE, INIT_SCALE, 0, 1, d);
        XF(ls2, PACK_NONE, INIT_SCALE, 0, 1, d);
#undef XF
    }
}

/* Enumerates every tensor of a Mimi checkpoint with n_levels codebooks (the loader passes n_q,
 * the random init n_q_total). m == NULL: names and shapes only. */
static int walk(const flm_mimi_config *c, flm_mimi *m, int n_levels, wfn fn, void *ctx)
{
    walker w = {fn, ctx, 0};
    char p[128];
    int nf = c->n_filters, D = c->dimension, C;
    emit_conv(&w, m ? &m->enc_in : NULL, 1, nf, c->kernel_size, 1, 1, "encoder.model.0.conv.conv");
    C = nf;
    for (int i = 0; i < 4; i++) {
        int r = c->ratios[3 - i];
        snprintf(p, sizeof p, "encoder.model.%d", 3 * i + 1);
        emit_res(&w, m ? &m->enc_res[i] : NULL, C, c->residual_kernel, p);
        snprintf(p, sizeof p, "encoder.model.%d.conv.conv", 3 * i + 3);
        emit_conv(&w, m ? &m->enc_down[i] : NULL, C, 2 * C, 2 * r, r, 1, p);
        C *= 2;
    }
    emit_conv(&w, m ? &m->enc_out : NULL, C, D, c->last_kernel, 1, 1, "encoder.model.14.conv.conv");
    emit_xf(&w, m ? m->enc_xf : NULL, c, "encoder");
    emit_conv(&w, m ? &m->downsample : NULL, D, D, 4, 2, 0, "downsample.conv.conv.conv");
    if (m)
        m->upsample = (flm_convtr1d){.c_in = D, .c_out = D, .k = 4, .stride = 2, .depthwise = 1};
    emit(&w, m ? (float **)&m->upsample.w : NULL, PACK_NONE, INIT_FANIN, 4, 3, (int64_t[]){D, 1, 4},
         "upsample.convtr.convtr.convtr.weight");
    emit_xf(&w, m ? m->dec_xf : NULL, c, "decoder");
    for (int part = 0; part < 2; part++) {
        const char *pn = part ? "rest" : "first";
        int n = part ? n_levels - 1 : (n_levels > 0);
        vq_part *v = m ? &m->vq[part] : NULL;
        if (v)
            v->n_levels = n;
        emit(&w, v ? &v->in_proj : NULL, PACK_NONE, INIT_FANIN, D, 3, (int64_t[]){c->q_dim, D, 1},
             "quantizer.rvq_%s.input_proj.weight", pn);
        emit(&w, v ? &v->out_proj : NULL, PACK_NONE, INIT_FANIN, c->q_dim, 3,
             (int64_t[]){D, c->q_dim, 1}, "quantizer.rvq_%s.output_proj.weight", pn);
        for (int l = 0; l < n; l++) {
#define CB "quantizer.rvq_%s.vq.layers.%d._codebook.%s"
            emit(&w, v ? &v->codebook[l] : NULL, PACK_NONE, INIT_NORMAL, 0, 2,
                 (int64_t[]){c->bins, c->q_dim}, CB, pn, l, "embedding_sum");
            emit(&w, v ? &v->usage[l] : NULL, PACK_NONE, INIT_USAGE, 0, 1, (int64_t[]){c->bins}, CB,
                 pn, l, "cluster_usage");
            emit(&w, NULL, PACK_NONE, INIT_ONE, 0, 1, (int64_t[]){1}, CB, pn, l, "_initialized");
#undef CB
        }
    }
    emit_conv(&w, m ? &m->dec_in : NULL, D, 16 * nf, c->kernel_size, 1, 1,
              "decoder.model.0.conv.conv");
    C = 16 * nf;
    for (int i = 0; i < 4; i++) {
        int r = c->ratios[i];
        snprintf(p, sizeof p, "decoder.model.%d.convtr.convtr", 3 * i + 2);
        emit_convtr(&w, m ? &m->dec_up[i] : NULL, C, C / 2, 2 * r, r, p);
        snprintf(p, sizeof p, "decoder.model.%d", 3 * i + 3);
        emit_res(&w, m ? &m->dec_res[i] : NULL, C / 2, c->residual_kernel, p);
        C /= 2;
    }
    emit_conv(&w, m ? &m->dec_out : NULL, nf, 1, c->last_kernel, 1, 1,
              "decoder.model.14.conv.conv");
    return w.rc;
}

/* ---------------------------------------------------------------- config and loading */

flm_mimi_params flm_mimi_default_params(void)
{
    return (flm_mimi_params){.n_q = 8, .context = 250, .n_heads = 8, .chunk_frames = 32};
}

int flm_mimi_config_preset(const char *size, flm_mimi_config *c, flm_error *err)
{
    int tiny = !strcmp(size, "tiny");
    if (!tiny && strcmp(size, "full"))
        return flm_error_set(err, FLM_EINVAL, "unknown Mimi size '%s' (tiny or full)", size);
    *c = (flm_mimi_config){.n_filters = tiny ? 8 : 64,
                           .dimension = tiny ? 64 : 512,
                           .ratios = {8, 6, 5, 4},
                           .kernel_size = 7,
                           .residual_kernel = 3,
                           .last_kernel = 3,
                           .d_model = tiny ? 64 : 512,
                           .n_heads = 8,
                           .n_layers = tiny ? 2 : 8,
                           .dim_ff = tiny ? 256 : 2048,
                           .context = 250,
                           .max_period = 10000.0f,
                           .layer_scale = 0.01f,
                           .q_dim = tiny ? 16 : 256,
                           .bins = 2048,
                           .n_q_total = tiny ? 8 : 32,
                           .n_q = 8};
    return 0;
}

static const flm_st_info *need(const flm_safetensors *st, const char *name, int n_dim,
                               flm_error *err)
{
    const flm_st_info *in = flm_safetensors_find(st, name);
    if (!in)
        flm_error_set(err, FLM_ENOTFOUND, "Mimi checkpoint: tensor '%s' not found", name);
    else if (in->n_dim != n_dim)
        flm_error_set(err, FLM_EMISMATCH,
                      "Mimi checkpoint: tensor '%s' has %d dimensions, expected %d", name,
                      in->n_dim, n_dim);
    return in && in->n_dim == n_dim ? in : NULL;
}

/* Sizes from tensor shapes; everything is then checked strictly by the table walk. */
static int infer_config(const flm_safetensors *st, const flm_mimi_params *p, flm_mimi_config *c,
                        flm_error *err)
{
    const flm_st_info *a, *b, *r, *t, *f, *q;
    char name[128];
    flm_mimi_config_preset("full", c, NULL);
    if (!(a = need(st, "encoder.model.0.conv.conv.weight", 3, err)) ||
        !(b = need(st, "encoder.model.14.conv.conv.weight", 3, err)) ||
        !(r = need(st, "encoder.model.1.block.1.conv.conv.weight", 3, err)) ||
        !(t = need(st, "encoder_transformer.transformer.layers.0.self_attn.in_proj_weight", 2,
                   err)) ||
        !(f = need(st, "encoder_transformer.transformer.layers.0.linear1.weight", 2, err)) ||
        !(q = need(st, "quantizer.rvq_first.vq.layers.0._codebook.embedding_sum", 2, err)))
        return err ? err->code : FLM_ENOTFOUND;
    c->n_filters = (int)a->shape[0];
    c->kernel_size = (int)a->shape[2];
    c->dimension = (int)b->shape[0];
    c->last_kernel = (int)b->shape[2];
    c->residual_kernel = (int)r->shape[2];
    c->d_model = (int)t->shape[1];
    c->dim_ff = (int)f->shape[0];
    c->bins = (int)q->shape[0];
    c->q_dim = (int)q->shape[1];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "decoder.model.%d.convtr.convtr.weight", 3 * i + 2);
        const flm_st_info *u = need(st, name, 3, err);
        if (!u)
            return err ? err->code : FLM_ENOTFOUND;
        c->ratios[i] = (int)u->shape[2] / 2;
    }
    for (c->n_layers = 0;; c->n_layers++) {
        snprintf(name, sizeof name, "encoder_transformer.transformer.layers.%d.norm1.weight",
                 c->n_layers);
        if (!flm_safetensors_find(st, name))
            break;
    }
    for (c->n_q_total = 1;; c->n_q_total++) {
        snprintf(name, sizeof name, "quantizer.rvq_rest.vq.layers.%d._codebook.embedding_sum",
                 c->n_q_total - 1);
        if (!flm_safetensors_find(st, name))
            break;
    }
    c->n_heads = p->n_heads;
    c->context = p->context;
    c->n_q = p->n_q;
    int hop = c->ratios[0] * c->ratios[1] * c->ratios[2] * c->ratios[3];
    if (hop * 2 != FLM_MIMI_FRAME_SIZE || c->n_filters <= 0 || c->dimension <= 0 ||
        c->d_model != c->dimension || c->q_dim <= 0 || c->bins <= 0 || c->n_layers <= 0)
        return flm_error_set(err, FLM_EFORMAT,
                             "Mimi checkpoint: unsupported architecture (hop %d, filters %d, "
                             "dimension %d, d_model %d, %d layers)",
                             hop, c->n_filters, c->dimension, c->d_model, c->n_layers);
    if (c->n_heads <= 0 || c->d_model % c->n_heads || (c->d_model / c->n_heads) % 2)
        return flm_error_set(err, FLM_EINVAL, "Mimi: %d heads do not divide d_model %d evenly",
                             c->n_heads, c->d_model);
    if (c->n_q < 1 || c->n_q > c->n_q_total || c->n_q > 64)
        return flm_error_set(err, FLM_EINVAL, "Mimi: n_q %d outside 1..%d (codebooks in file)",
                             c->n_q, c->n_q_total);
    if (c->context < 1)
        return flm_error_set(err, FLM_EINVAL, "Mimi: context %d < 1", c->context);
    return 0;
}

typedef struct load_ctx {
    flm_mimi *m;
    const flm_safetensors *st;
    flm_error *err;
    float *tmp; /* [tmp_n] */
    size_t tmp_n;
} load_ctx;

static void *track(flm_mimi *m, size_t bytes)
{
    void *p;
    if (m->n_allocs == m->cap_allocs &&
        flm_grow((void **)&m->allocs, &m->cap_allocs, m->n_allocs + 1, sizeof *m->allocs) < 0)
        return NULL;
    if (!(p = flm_malloc(bytes ? bytes : 1)))
        return NULL;
    m->allocs[m->n_allocs++] = p;
    m->weight_size += bytes;
    return p;
}

static int load_one(void *ctx, const wdesc *d)
{
    load_ctx *L = ctx;
    const flm_st_info *in;
    int rc = flm_safetensors_check(L->st, d->name, d->n_dim, d->shape, &in, L->err);
    if (rc < 0)
        return rc;
    if (!d->dst)
        return 0;
    if ((rc = flm_safetensors_check_finite(in, L->err)) < 0)
        return rc;
    size_t n = 1;
    for (int i = 0; i < d->n_dim; i++)
        n *= (size_t)d->shape[i];
    float *dst = track(L->m, n * sizeof *dst);
    if (!dst)
        return flm_error_set(L->err, FLM_ENOMEM, "Mimi: out of memory loading '%s'", d->name);
    if (d->pack == PACK_NONE) {
        rc = flm_safetensors_read_f32(L->st, d->name, d->n_dim, d->shape, dst, L->err);
    } else {
        if (n > L->tmp_n) {
            flm_free(L->tmp);
            L->tmp_n = 0;
            if (!(L->tmp = flm_malloc(n * sizeof *L->tmp)))
                return flm_error_set(L->err, FLM_ENOMEM, "Mimi: out of memory");
            L->tmp_n = n;
        }
        rc = flm_safetensors_read_f32(L->st, d->name, d->n_dim, d->shape, L->tmp, L->err);
        int a = (int)d->shape[0], b = (int)d->shape[1], k = (int)d->shape[2];
        if (rc == 0 && d->pack == PACK_CONV)
            flm_conv1d_pack_weight(L->tmp, a, b, k, dst);
        else if (rc == 0)
            flm_convtr1d_pack_weight(L->tmp, a, b, k, dst);
    }
    *d->dst = dst;
    if (rc == 0)
        flm_safetensors_release(L->st, in); /* copied: drop the mapped pages from our RSS */
    return rc;
}

/* Where the AVX-512 direct kernel runs, a conv's weights go into its panels, in place of the
 * plain layout when the sizes agree (c_out a multiple of the panel width). */
static int pack_one(flm_mimi *m, flm_conv1d *cv)
{
    size_t size = flm_conv1d_panels_size(cv), plain = (size_t)cv->c_out * cv->k * cv->c_in;
    if (!flm_kernels_avx512() || cv->c_out == 1 || cv->dilation != 1)
        return 0;
    float *wp = size == plain ? flm_malloc(size * sizeof *wp) : track(m, size * sizeof *wp);
    if (!wp)
        return FLM_ENOMEM;
    flm_conv1d_pack_panels(cv, wp);
    if (size == plain) {
        memcpy((float *)cv->w, wp, size * sizeof *wp);
        flm_free(wp);
        wp = (float *)cv->w;
        cv->w = NULL;
    }
    cv->wp = wp;
    return 0;
}

/* Every conv, the transposed convs and the transformer matrices (as k = 1 convs) into panels
 * (pack_one). */
static int pack_panels(flm_mimi *m)
{
    const flm_mimi_config *c = &m->cfg;
    int d = c->d_model, ff = c->dim_ff, rc = 0;
    flm_conv1d *cs[] = {&m->enc_in, &m->enc_out, &m->downsample, &m->dec_in, &m->dec_out};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        rc |= pack_one(m, cs[i]);
    for (int i = 0; i < 4; i++) {
        rc |= pack_one(m, &m->enc_res[i].a) | pack_one(m, &m->enc_res[i].b);
        rc |= pack_one(m, &m->enc_down[i]);
        rc |= pack_one(m, &m->dec_res[i].a) | pack_one(m, &m->dec_res[i].b);
    }
    for (int i = 0; i < 4; i++) { /* the transposed convs' product, a k = 1 conv */
        flm_convtr1d *u = &m->dec_up[i];
        flm_conv1d v = {.c_in = u->c_in,
                        .c_out = u->k * u->c_out,
                        .k = 1,
                        .stride = 1,
                        .dilation = 1,
                        .w = u->w};
        rc |= pack_one(m, &v);
        u->w = v.w, u->wp = v.wp;
    }
    for (int l = 0; l < 2 * c->n_layers; l++) {
        xf_layer *L = l < c->n_layers ? &m->enc_xf[l] : &m->dec_xf[l - c->n_layers];
        const int dims[4][2] = {{d, 3 * d}, {d, d}, {d, ff}, {ff, d}};
        float *w[4] = {L->in_proj, L->out_proj, L->lin1, L->lin2};
        for (int j = 0; j < 4; j++) {
            L->mm[j] = (flm_conv1d){.c_in = dims[j][0],
                                    .c_out = dims[j][1],
                                    .k = 1,
                                    .stride = 1,
                                    .dilation = 1,
                                    .w = w[j]};
            rc |= pack_one(m, &L->mm[j]);
        }
    }
    return rc ? FLM_ENOMEM : 0;
}

int flm_mimi_load_from(flm_mimi **out, const flm_safetensors *st, const flm_mimi_params *p,
                       flm_error *err)
{
    flm_mimi_params def = flm_mimi_default_params();
    flm_mimi *m = flm_calloc(1, sizeof *m);
    int rc;
    *out = NULL;
    if (!p)
        p = &def;
    if (!m)
        return flm_error_set(err, FLM_ENOMEM, "Mimi: out of memory");
    if ((rc = infer_config(st, p, &m->cfg, err)) < 0)
        goto fail;
    const flm_mimi_config *c = &m->cfg;
    m->chunk_frames = p->chunk_frames > 0 ? p->chunk_frames : def.chunk_frames;
    m->enc_xf = track(m, (size_t)c->n_layers * sizeof *m->enc_xf);
    m->dec_xf = track(m, (size_t)c->n_layers * sizeof *m->dec_xf);
    if (!m->enc_xf || !m->dec_xf) {
        rc = flm_error_set(err, FLM_ENOMEM, "Mimi: out of memory");
        goto fail;
    }
    load_ctx L = {m, st, err, NULL, 0};
    rc = walk(c, m, c->n_q, load_one, &L);
    flm_free(L.tmp);
    if (rc < 0)
        goto fail;
    if (pack_panels(m) < 0) {
        rc = flm_error_set(err, FLM_ENOMEM, "Mimi: out of memory");
        goto fail;
    }
    for (int part = 0; part < 2; part++) {
        vq_part *v = &m->vq[part];
        for (int l = 0; l < v->n_levels; l++) {
            float *cb = v->codebook[l];
            if (!(v->norm2[l] = track(m, (size_t)c->bins * sizeof(float)))) {
                rc = flm_error_set(err, FLM_ENOMEM, "Mimi: out of memory");
                goto fail;
            }
            for (int j = 0; j < c->bins; j++) {
                float u = v->usage[l][j] > USAGE_EPS ? v->usage[l][j] : USAGE_EPS;
                double s = 0;
                for (int e = 0; e < c->q_dim; e++) {
                    cb[(size_t)j * c->q_dim + e] /= u;
                    s += (double)cb[(size_t)j * c->q_dim + e] * cb[(size_t)j * c->q_dim + e];
                }
                v->norm2[l][j] = (float)s;
            }
        }
    }
    *out = m;
    return 0;
fail:
    flm_mimi_destroy(&m);
    return rc;
}

int flm_mimi_load(flm_mimi **out, const char *path, const flm_mimi_params *p, flm_error *err)
{
    flm_safetensors *st = NULL;
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) { /* an easy mix-up: say what it is */
        char *cfg = flm_path_join(path, "config.json");
        int lm = cfg && access(cfg, F_OK) == 0;
        flm_free(cfg);
        if (lm)
            return flm_error_set(err, FLM_EINVAL,
                                 "%s: a directory with config.json (an FLM-Audio LM checkpoint), "
                                 "not a Mimi checkpoint: give the Mimi .safetensors file",
                                 path);
    }
    int rc = flm_safetensors_open(&st, path, err);
    if (rc < 0)
        return rc;
    rc = flm_mimi_load_from(out, st, p, err);
    if (rc < 0 && err && strncmp(err->msg, path, strlen(path))) /* once */
        flm_error_prefix(err, "%s", path);
    flm_safetensors_close(&st); /* weights were copied: compute never touches the mapping */
    return rc;
}

void flm_mimi_destroy(flm_mimi **pm)
{
    flm_mimi *m = pm ? *pm : NULL;
    if (!m)
        return;
    for (size_t i = 0; i < m->n_allocs; i++)
        flm_free(m->allocs[i]);
    flm_free(m->allocs);
    flm_free(m);
    *pm = NULL;
}

const flm_mimi_config *flm_mimi_get_config(const flm_mimi *m)
{
    return &m->cfg;
}

size_t flm_mimi_weight_size(const flm_mimi *m)
{
    return m->weight_size;
}

/* ---------------------------------------------------------------- random checkpoint */

typedef struct init_ctx {
    const flm_mimi_config *c;
    uint64_t seed;
    flm_st_entry *e; /* [n_cap] */
    int n, n_cap;
    size_t bytes;
    int fill; /* 0: count only, 1: fill */
} init_ctx;

static int init_one(void *ctx, const wdesc *d)
{
    init_ctx *I = ctx;
    size_t n = 1;
    for (int i = 0; i < d->n_dim; i++)
        n *= (size_t)d->shape[i];
    if (!I->fill) {
        I->n++;
        I->bytes += n * sizeof(float);
        return 0;
    }
    flm_st_entry *e = &I->e[I->n++];
    float *x = flm_malloc(n * sizeof *x + 1);
    if (!x)
        return FLM_ENOMEM;
    char *name = flm_strdup(d->name);
    if (!name) {
        flm_free(x);
        return FLM_ENOMEM;
    }
    *e = (flm_st_entry){.name = name, .dtype = FLM_DTYPE_F32, .n_dim = d->n_dim, .data = x};
    for (int i = 0; i < d->n_dim; i++)
        e->shape[i] = d->shape[i];
    flm_rng r;
    flm_rng_init(&r, I->seed, d->name, "model.init");
    double bound = d->fan_in > 0 ? 1.0 / sqrt((double)d->fan_in) : 0.0;
    for (size_t i = 0; i < n; i++) {
        switch (d->init) {
        case INIT_FANIN:
            x[i] = (float)flm_rng_uniform_range(&r, -bound, bound);
            break;
        case INIT_ONE:
            x[i] = 1.0f;
            break;
        case INIT_ZERO:
            x[i] = 0.0f;
            break;
        case INIT_SCALE:
            x[i] = I->c->layer_scale;
            break;
        case INIT_NORMAL:
            x[i] = (float)(CODEBOOK_INIT_STD * flm_rng_normal(&r));
            break;
        default:
            x[i] = (float)flm_rng_uniform_range(&r, 0.5, 2.0);
            break; /* INIT_USAGE */
        }
    }
    return 0;
}

int flm_mimi_random_checkpoint(const flm_mimi_config *c, uint64_t seed, uint8_t **buf, size_t *size,
                               flm_error *err)
{
    init_ctx I = {.c = c, .seed = seed};
    int rc;
    walk(c, NULL, c->n_q_total, init_one, &I);
    I.n_cap = I.n;
    I.n = 0;
    I.fill = 1;
    if (!(I.e = flm_calloc((size_t)I.n_cap, sizeof *I.e)))
        return flm_error_set(err, FLM_ENOMEM, "Mimi init: out of memory");
    if ((rc = walk(c, NULL, c->n_q_total, init_one, &I)) < 0)
        flm_error_set(err, rc, "Mimi init: out of memory");
    else
        rc = flm_safetensors_write_memory(I.e, I.n, buf, size, err);
    for (int i = 0; i < I.n_cap; i++) {
        flm_free((void *)I.e[i].name);
        flm_free((void *)I.e[i].data);
    }
    flm_free(I.e);
    return rc;
}

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
    void **allocs;
    size_t n_allocs, cap_allocs, size;
};

static void *salloc(flm_mimi_stream *s, size_t bytes)
{
    void *p;
    if (s->n_allocs == s->cap_allocs &&
        flm_grow((void **)&s->allocs, &s->cap_allocs, s->n_allocs + 1, sizeof *s->allocs) < 0)
        return NULL;
    if (!(p = flm_calloc(1, bytes ? bytes : 1)))
        return NULL;
    s->allocs[s->n_allocs++] = p;
    s->size += bytes;
    return p;
}

static int sconv_init(flm_mimi_stream *s, sconv *c, const flm_conv1d *w, int max_in, int replicate)
{
    c->c = *w;
    c->pad = flm_conv1d_pad(w);
    c->replicate = replicate;
    c->buf = salloc(s, (size_t)(c->pad + max_in) * w->c_in * sizeof(float));
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
    c->partial = salloc(s, (size_t)(w->k - w->stride) * w->c_out * sizeof(float));
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
    x->k = salloc(s, (size_t)c->n_layers * sizeof *x->k);
    x->v = salloc(s, (size_t)c->n_layers * sizeof *x->v);
    if (!x->k || !x->v)
        return FLM_ENOMEM;
    for (int l = 0; l < c->n_layers; l++) {
        x->k[l] = salloc(s, (size_t)x->cap * c->d_model * sizeof(float));
        x->v[l] = salloc(s, (size_t)x->cap * c->d_model * sizeof(float));
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
    s->act0 = salloc(s, act * sizeof(float));
    s->act1 = salloc(s, act * sizeof(float));
    s->tmp = salloc(s, tmp * sizeof(float));
    s->scr = salloc(s, scr * sizeof(float));
    s->xh = salloc(s, (size_t)steps * d * sizeof(float));
    s->xqkv = salloc(s, (size_t)steps * 3 * d * sizeof(float));
    s->xatt = salloc(s, (size_t)steps * d * sizeof(float));
    s->xff = salloc(s, (size_t)steps * c->dim_ff * sizeof(float));
    s->xattn =
        salloc(s, flm_attention_scratch_size(
                      steps, s->e_xf.cap > s->d_xf.cap ? s->e_xf.cap : s->d_xf.cap, c->n_heads) *
                      sizeof(float));
    s->lat = salloc(s, (size_t)F * D * sizeof(float));
    s->z = salloc(s, (size_t)F * c->q_dim * sizeof(float));
    s->scores = salloc(s, (size_t)F * c->bins * sizeof(float));
    s->pcm = salloc(s, (size_t)L * sizeof(float));
    s->codes = salloc(s, (size_t)F * c->n_q * sizeof(int32_t));
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
    for (size_t i = 0; i < s->n_allocs; i++)
        flm_free(s->allocs[i]);
    flm_free(s->allocs);
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
    return s->size;
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
