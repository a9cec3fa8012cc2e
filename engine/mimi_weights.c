/* Mimi codec: the checkpoint tensor table, config inference, loading, random checkpoints. See
 * mimi_internal.h.
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
#include "mimi_internal.h"

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

#define USAGE_EPS 1e-5f
/* Random init: centroids small against the latent a random encoder produces (rms ~0.02), so
 * that nearest-centroid decisions follow z.e rather than |e|^2 and the codes of a random model
 * vary from frame to frame (a constant code stream would make stream == batch tests vacuous). */
#define CODEBOOK_INIT_STD 1e-3

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

static int load_one(void *ctx, const wdesc *d)
{
    weights_src *w = ctx;
    const flm_st_info *in;
    float *f;
    if (!d->dst) /* in the checkpoint, not used */
        return flm_safetensors_check(w->st, d->name, d->n_dim, d->shape, &in, w->err);
    int rc = weights_check(w, d->name, d->n_dim, d->shape, &in);
    if (rc < 0 || d->pack == PACK_NONE)
        return rc < 0 ? rc : weights_copy_f32(w, in, d->n_dim, d->shape, d->dst);
    int a = (int)d->shape[0], b = (int)d->shape[1], k = (int)d->shape[2];
    float *dst = alloc_list_alloc(w->owner, (size_t)a * b * k * sizeof *dst);
    if (!dst)
        return flm_error_set(w->err, FLM_ENOMEM, "Mimi: out of memory loading '%s'", d->name);
    if ((rc = weights_stage_f32(w, in, d->n_dim, d->shape, &f)) < 0)
        return rc;
    if (d->pack == PACK_CONV)
        flm_conv1d_pack_weight(f, a, b, k, dst);
    else
        flm_convtr1d_pack_weight(f, a, b, k, dst);
    *d->dst = dst;
    return 0;
}

/* Where the AVX-512 direct kernel runs, a conv's weights go into its panels, in place of the
 * plain layout when the sizes agree (c_out a multiple of the panel width). */
static int pack_one(flm_mimi *m, flm_conv1d *cv)
{
    size_t size = flm_conv1d_panels_size(cv), plain = (size_t)cv->c_out * cv->k * cv->c_in;
    if (!flm_kernels_avx512() || cv->c_out == 1 || cv->dilation != 1)
        return 0;
    float *wp = size == plain ? flm_malloc(size * sizeof *wp)
                              : alloc_list_alloc(&m->allocs, size * sizeof *wp);
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
    alloc_list_init(&m->allocs, 0); /* plain: the weights are small */
    if ((rc = infer_config(st, p, &m->cfg, err)) < 0)
        goto fail;
    const flm_mimi_config *c = &m->cfg;
    m->chunk_frames = p->chunk_frames > 0 ? p->chunk_frames : def.chunk_frames;
    m->enc_xf = alloc_list_alloc(&m->allocs, (size_t)c->n_layers * sizeof *m->enc_xf);
    m->dec_xf = alloc_list_alloc(&m->allocs, (size_t)c->n_layers * sizeof *m->dec_xf);
    if (!m->enc_xf || !m->dec_xf) {
        rc = flm_error_set(err, FLM_ENOMEM, "Mimi: out of memory");
        goto fail;
    }
    weights_src w = {.st = st, .owner = &m->allocs, .who = "Mimi: ", .err = err};
    rc = walk(c, m, c->n_q, load_one, &w);
    weights_src_done(&w);
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
            if (!(v->norm2[l] = alloc_list_alloc(&m->allocs, (size_t)c->bins * sizeof(float)))) {
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
    alloc_list_free(&m->allocs);
    flm_free(m);
    *pm = NULL;
}

const flm_mimi_config *flm_mimi_get_config(const flm_mimi *m)
{
    return &m->cfg;
}

size_t flm_mimi_weight_size(const flm_mimi *m)
{
    return m->allocs.size;
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
