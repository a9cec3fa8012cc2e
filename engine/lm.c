/* FLM-Audio RQ-Transformer: config, weight table, loading, random checkpoints, forward passes.
 *
 * Weight table (checkpoint name -> field; shapes for the released model: d = 3584, V = 152064,
 * A = 2050, kv = 4 * 128 = 512, ff = 18944, E = 1024, F = 2730):
 *
 *   model.embed_tokens.text_embeddings.weight            [V, d]      text_emb
 *   model.embed_tokens.aud_speak_embeddings.{c}.weight   [A, d]      speak_emb[c]
 *   model.embed_tokens.aud_listen_embeddings.{c}.weight  [A, d]      listen_emb[c]
 *   model.layers.{l}.input_layernorm.weight              [d]         L[l].ln1
 *   model.layers.{l}.self_attn.q_proj.{weight [d, d], bias [d]}      L[l].wq, bq
 *   model.layers.{l}.self_attn.{k,v}_proj.{weight [kv, d], bias [kv]}  L[l].wk, bk, wv, bv
 *   model.layers.{l}.self_attn.o_proj.weight             [d, d]      L[l].wo (bias if o_bias)
 *   model.layers.{l}.post_attention_layernorm.weight     [d]         L[l].ln2
 *   model.layers.{l}.mlp.{gate,up}_proj.weight [ff, d], down_proj.weight [d, ff]
 *   model.norm.weight [d] ; lm_head.weight [V, d] (absent when tied)
 *   aud_output_layers.linear_in.weight                   [8E, d]     dep_in
 *   aud_output_layers.transformer.wtes.{c}.weight        [A, E]      wte[c]
 *   aud_output_layers.transformer.wpe.weight             [8, E]      wpe
 *   aud_output_layers.transformer.h.{l}.ln_{1,2}.weight  [E]
 *   aud_output_layers.transformer.h.{l}.attn.c_attn.weight [3E, E] (q; k; v), c_proj [E, E]
 *   aud_output_layers.transformer.h.{l}.mlps.{c}.{gate,up}_proj.weight [F, E], down_proj [E, F]
 *   aud_output_layers.transformer.ln_f.weight            [E]
 *   aud_output_layers.lm_heads.{c}.weight                [A, E]
 */
#include "flm_lm.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_json.h"
#include "flm_kernels.h"
#include "flm_quant.h"
#include "flm_rng.h"
#include "flm_safetensors.h"
#include "flm_util.h"

#define NCB FLM_LM_N_CODEBOOKS
#define DEPTH_EPS 1e-6f /* DepthGPT's RMSNorm eps is hard-coded upstream, not in the config */
#define CONFIG_MAX_SIZE (1 << 20)

/* Matrices (and embedding tables) are flm_qmat in the load's weight format; norms, biases and
 * wpe stay float32. */
typedef struct lm_layer {
    float *ln1, *ln2;    /* [d] */
    flm_qmat wq, wk, wv; /* [d][d], [kv][d], [kv][d] */
    float *bq, *bk, *bv; /* [d], [kv], [kv] */
    flm_qmat wo;         /* [d][d] */
    float *bo;           /* [d] or NULL */
    flm_qmat wg, wu;     /* [ff][d] */
    flm_qmat wd;         /* [d][ff] */
} lm_layer;

typedef struct dep_layer {
    float *ln1, *ln2;          /* [E] */
    flm_qmat c_attn;           /* [3E][E] */
    flm_qmat c_proj;           /* [E][E] */
    flm_qmat wg[NCB], wu[NCB]; /* [F][E] per position */
    flm_qmat wd[NCB];          /* [E][F] */
} dep_layer;

struct flm_lm {
    flm_lm_config cfg;
    flm_wtype wtype;
    flm_qmat text_emb;                        /* [V][d] */
    flm_qmat speak_emb[NCB], listen_emb[NCB]; /* [A][d] */
    lm_layer *L;                              /* [n_layers] */
    float *norm;                              /* [d] */
    flm_qmat lm_head;                         /* [V][d] (= text_emb when tied) */
    flm_qmat dep_in;                          /* [8E][d] */
    flm_qmat wte[NCB];                        /* [A][E] */
    float *wpe;                               /* [8][E] */
    dep_layer *D;                             /* [dep_layers] */
    float *ln_f;                              /* [E] */
    flm_qmat head[NCB];                       /* [A][E] */
    float *tmp;                               /* [tmp_n] load staging */
    size_t tmp_n;
    void **allocs;
    size_t n_allocs, cap_allocs, weight_size;
    flm_safetensors *st; /* kept open while weights are served from its mapping, else NULL */
    size_t mapped_size;  /* bytes of weight_size that live in st's mapping */
};

/* ---------------------------------------------------------------- config */

static int cfg_int(json_t *o, const char *key, const char *path, const char *name, int required,
                   int64_t lo, int64_t hi, int *out, flm_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v && !required)
        return 0;
    if (!v)
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"%s%s\" missing", name, path, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: key \"%s%s\": expected an integer in [%lld, %lld]", name, path,
                             key, (long long)lo, (long long)hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int cfg_real(json_t *o, const char *key, const char *name, int required, double lo,
                    double hi, double *out, flm_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v && !required)
        return 0;
    if (!v)
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"%s\" missing", name, key);
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi))
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"%s\": expected a number in [%g, %g]",
                             name, key, lo, hi);
    *out = json_number_value(v);
    return 0;
}

static int cfg_bool(json_t *o, const char *key, const char *path, const char *name, int *out,
                    flm_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"%s%s\": expected true or false", name,
                             path, key);
    *out = json_is_true(v);
    return 0;
}

static int only_keys(json_t *o, const char *const *keys, const char *path, const char *name,
                     flm_error *err)
{
    const char *key = flm_json_unknown_key(o, keys);
    if (key)
        return flm_error_set(err, FLM_EFORMAT, "%s: unknown key \"%s.%s\"", name, path, key);
    for (int i = 0; keys[i]; i++)
        if (!json_object_get(o, keys[i]))
            return flm_error_set(err, FLM_EFORMAT, "%s: key \"%s.%s\" missing", name, path,
                                 keys[i]);
    return 0;
}

static int parse_config(json_t *root, const char *name, flm_lm_config *c, flm_error *err)
{
    const int64_t BIG = 1 << 24;
    int rc, use_mup = 0;
    double mup_scale = 1.0, output_mult = 1.0, input_mult = 1.0;
    memset(c, 0, sizeof *c);
    c->attention_bias = 1;
    c->max_positions = 8192;
    c->bos = c->eos = -1;
    if (!json_is_object(root))
        return flm_error_set(err, FLM_EFORMAT, "%s: not a JSON object", name);
    json_t *mt = json_object_get(root, "model_type");
    if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), "FLMAudio")))
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"model_type\": expected \"FLMAudio\"",
                             name);
    json_t *act = json_object_get(root, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"hidden_act\": only \"silu\" is supported",
                             name);
    int disable_o_bias = 1, mlp_bias = 0, aud_channel = 0;
    if ((rc = cfg_int(root, "vocab_size", "", name, 1, 1, BIG, &c->vocab_size, err)) < 0 ||
        (rc = cfg_int(root, "hidden_size", "", name, 1, 2, 65536, &c->hidden, err)) < 0 ||
        (rc = cfg_int(root, "num_hidden_layers", "", name, 1, 1, 1024, &c->n_layers, err)) < 0 ||
        (rc = cfg_int(root, "num_attention_heads", "", name, 1, 1, 1024, &c->n_heads, err)) < 0 ||
        (rc = cfg_int(root, "num_key_value_heads", "", name, 1, 1, 1024, &c->n_kv_heads, err)) <
            0 ||
        (rc = cfg_int(root, "intermediate_size", "", name, 1, 1, 1 << 20, &c->intermediate, err)) <
            0 ||
        (rc = cfg_int(root, "max_position_embeddings", "", name, 0, 1, BIG, &c->max_positions,
                      err)) < 0 ||
        (rc = cfg_int(root, "aud_channel", "", name, 1, 1, 64, &aud_channel, err)) < 0 ||
        (rc = cfg_int(root, "aud_vocab_size", "", name, 1, 1, BIG, &c->aud_vocab, err)) < 0 ||
        (rc = cfg_int(root, "bos_token_id", "", name, 0, -1, BIG, &c->bos, err)) < 0 ||
        (rc = cfg_int(root, "eos_token_id", "", name, 0, -1, BIG, &c->eos, err)) < 0 ||
        (rc = cfg_real(root, "rms_norm_eps", name, 1, 0.0, 1.0, &c->rms_eps, err)) < 0 ||
        (rc = cfg_real(root, "rope_theta", name, 1, 1.0, 1e12, &c->rope_theta, err)) < 0 ||
        (rc = cfg_bool(root, "attention_bias", "", name, &c->attention_bias, err)) < 0 ||
        (rc = cfg_bool(root, "disable_att_o_bias", "", name, &disable_o_bias, err)) < 0 ||
        (rc = cfg_bool(root, "mlp_bias", "", name, &mlp_bias, err)) < 0 ||
        (rc = cfg_bool(root, "tie_word_embeddings", "", name, &c->tie_embeddings, err)) < 0 ||
        (rc = cfg_bool(root, "use_mup", "", name, &use_mup, err)) < 0 ||
        (rc = cfg_real(root, "mup_scale_factor", name, 0, 1e-6, 1e6, &mup_scale, err)) < 0 ||
        (rc = cfg_real(root, "output_mult", name, 0, 1e-6, 1e6, &output_mult, err)) < 0 ||
        (rc = cfg_real(root, "input_mult", name, 0, 1e-6, 1e6, &input_mult, err)) < 0)
        return rc;
    c->o_bias = !disable_o_bias;
    c->input_mult = use_mup ? (float)input_mult : 1.0f;
    c->logit_mult = use_mup ? (float)(output_mult / mup_scale) : 1.0f;
    if (mlp_bias)
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"mlp_bias\": true is not supported", name);
    if (aud_channel != NCB)
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"aud_channel\": %d, expected %d", name,
                             aud_channel, NCB);
    if (c->hidden % c->n_heads || c->n_heads % c->n_kv_heads || (c->hidden / c->n_heads) % 2)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: hidden_size %d, num_attention_heads %d, num_key_value_heads "
                             "%d: heads must divide hidden_size into even head sizes and be a "
                             "multiple of the key/value heads",
                             name, c->hidden, c->n_heads, c->n_kv_heads);
    c->head_dim = c->hidden / c->n_heads;
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        if (!json_is_object(rs))
            return flm_error_set(err, FLM_EFORMAT, "%s: key \"rope_scaling\": expected an object",
                                 name);
        for (int i = 0; i < 2; i++) {
            const char *k = i ? "rope_type" : "type";
            json_t *v = json_object_get(rs, k);
            if (v && (!json_is_string(v) || strcmp(json_string_value(v), "default")))
                return flm_error_set(err, FLM_EFORMAT,
                                     "%s: key \"rope_scaling.%s\": only \"default\" (plain 1-D "
                                     "RoPE) is supported",
                                     name, k);
        }
    }
    json_t *mm = json_object_get(root, "mm_token_info");
    static const char *const mm_keys[] = {"text_wait_token_id", "aud_pad_token_id",
                                          "aud_emp_token_id", NULL};
    if (!json_is_object(mm))
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"mm_token_info\": expected an object",
                             name);
    if ((rc = only_keys(mm, mm_keys, "mm_token_info", name, err)) < 0 ||
        (rc = cfg_int(mm, "text_wait_token_id", "mm_token_info.", name, 1, 0, c->vocab_size - 1,
                      &c->text_wait, err)) < 0 ||
        (rc = cfg_int(mm, "aud_pad_token_id", "mm_token_info.", name, 1, 0, c->aud_vocab - 1,
                      &c->aud_pad, err)) < 0 ||
        (rc = cfg_int(mm, "aud_emp_token_id", "mm_token_info.", name, 1, 0, c->aud_vocab - 1,
                      &c->aud_empty, err)) < 0)
        return rc;
    json_t *dg = json_object_get(root, "aud_depthgpt");
    static const char *const dg_keys[] = {"n_layer",     "n_head",     "n_embd",
                                          "dropout",     "bias",       "use_cmlp",
                                          "use_rmsnorm", "use_swiglu", NULL};
    if (!json_is_object(dg))
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"aud_depthgpt\": expected an object",
                             name);
    int bias = 0, cmlp = 0, rms = 0, swiglu = 0;
    if ((rc = only_keys(dg, dg_keys, "aud_depthgpt", name, err)) < 0 ||
        (rc = cfg_int(dg, "n_layer", "aud_depthgpt.", name, 1, 1, 1024, &c->dep_layers, err)) < 0 ||
        (rc = cfg_int(dg, "n_head", "aud_depthgpt.", name, 1, 1, 1024, &c->dep_heads, err)) < 0 ||
        (rc = cfg_int(dg, "n_embd", "aud_depthgpt.", name, 1, 1, 65536, &c->dep_embd, err)) < 0 ||
        (rc = cfg_bool(dg, "bias", "aud_depthgpt.", name, &bias, err)) < 0 ||
        (rc = cfg_bool(dg, "use_cmlp", "aud_depthgpt.", name, &cmlp, err)) < 0 ||
        (rc = cfg_bool(dg, "use_rmsnorm", "aud_depthgpt.", name, &rms, err)) < 0 ||
        (rc = cfg_bool(dg, "use_swiglu", "aud_depthgpt.", name, &swiglu, err)) < 0)
        return rc;
    if (!json_is_number(json_object_get(dg, "dropout")))
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: key \"aud_depthgpt.dropout\": expected a number", name);
    if (bias || !cmlp || !rms || !swiglu)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: key \"aud_depthgpt\": only bias false with use_cmlp, "
                             "use_rmsnorm and use_swiglu true is supported",
                             name);
    if (c->dep_embd % c->dep_heads)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: aud_depthgpt.n_head %d does not divide n_embd %d", name,
                             c->dep_heads, c->dep_embd);
    c->dep_ff = 8 * c->dep_embd / 3;
    return 0;
}

int flm_lm_config_parse(const char *json, size_t size, const char *name, flm_lm_config *c,
                        flm_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(json, size, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return flm_error_set(err, FLM_EFORMAT, "%s: line %d: %s", name, je.line, je.text);
    int rc = parse_config(root, name, c, err);
    json_decref(root);
    return rc;
}

int flm_lm_config_preset(const char *size, flm_lm_config *c, flm_error *err)
{
    static const struct {
        const char *name;
        int d, layers, heads, kv, ff, dl, dh, de;
    } P[] = {{"tiny", 64, 2, 4, 2, 128, 2, 4, 32},
             {"1b", 1536, 16, 12, 2, 8960, 6, 16, 1024},
             {"7b", 3584, 28, 28, 4, 18944, 6, 16, 1024}};
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++)
        if (!strcmp(size, P[i].name)) {
            *c = (flm_lm_config){.vocab_size = 152064,
                                 .hidden = P[i].d,
                                 .n_layers = P[i].layers,
                                 .n_heads = P[i].heads,
                                 .n_kv_heads = P[i].kv,
                                 .head_dim = P[i].d / P[i].heads,
                                 .intermediate = P[i].ff,
                                 .rms_eps = 1e-5,
                                 .rope_theta = 1e6,
                                 .max_positions = 8192,
                                 .attention_bias = 1,
                                 .input_mult = 1.0f,
                                 .logit_mult = 1.0f,
                                 .aud_vocab = 2050,
                                 .text_wait = 151665,
                                 .aud_pad = 2048,
                                 .aud_empty = 2049,
                                 .bos = 151643,
                                 .eos = 151645,
                                 .dep_layers = P[i].dl,
                                 .dep_heads = P[i].dh,
                                 .dep_embd = P[i].de,
                                 .dep_ff = 8 * P[i].de / 3};
            return 0;
        }
    return flm_error_set(err, FLM_EINVAL, "unknown FLM-Audio size '%s' (tiny, 1b or 7b)", size);
}

char *flm_lm_config_to_json(const flm_lm_config *c)
{
    json_t *r = json_object();
    int hd = c->head_dim / 2; /* mrope sections as in the released config: [16, 24, 24] of 64 */
    json_object_set_new(r, "architectures", json_pack("[s]", "FLMAudioForCausalLM"));
    json_object_set_new(r, "model_type", json_string("FLMAudio"));
    json_object_set_new(r, "torch_dtype", json_string("bfloat16"));
    json_object_set_new(r, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(r, "hidden_size", json_integer(c->hidden));
    json_object_set_new(r, "intermediate_size", json_integer(c->intermediate));
    json_object_set_new(r, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(r, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(r, "num_key_value_heads", json_integer(c->n_kv_heads));
    json_object_set_new(r, "hidden_act", json_string("silu"));
    json_object_set_new(r, "rms_norm_eps", json_real(c->rms_eps));
    json_object_set_new(r, "rope_theta", json_real(c->rope_theta));
    json_object_set_new(r, "rope_scaling",
                        json_pack("{s:[i,i,i],s:s,s:s}", "mrope_section", hd / 4, hd * 3 / 8,
                                  hd - hd / 4 - hd * 3 / 8, "rope_type", "default", "type",
                                  "default"));
    json_object_set_new(r, "max_position_embeddings", json_integer(c->max_positions));
    json_object_set_new(r, "sliding_window", json_integer(32768));
    json_object_set_new(r, "attention_bias", json_boolean(c->attention_bias));
    json_object_set_new(r, "disable_att_o_bias", json_boolean(!c->o_bias));
    json_object_set_new(r, "mlp_bias", json_false());
    json_object_set_new(r, "attention_dropout", json_real(0.0));
    json_object_set_new(r, "initializer_range", json_real(0.02));
    json_object_set_new(r, "tie_word_embeddings", json_boolean(c->tie_embeddings));
    json_object_set_new(r, "use_cache", json_true());
    json_object_set_new(r, "bos_token_id", json_integer(c->bos));
    json_object_set_new(r, "eos_token_id", json_integer(c->eos));
    json_object_set_new(r, "aud_channel", json_integer(NCB));
    json_object_set_new(r, "aud_vocab_size", json_integer(c->aud_vocab));
    json_object_set_new(r, "mm_token_info",
                        json_pack("{s:i,s:i,s:i}", "text_wait_token_id", c->text_wait,
                                  "aud_pad_token_id", c->aud_pad, "aud_emp_token_id",
                                  c->aud_empty));
    json_object_set_new(r, "aud_depthgpt",
                        json_pack("{s:i,s:i,s:i,s:f,s:b,s:b,s:b,s:b}", "n_layer", c->dep_layers,
                                  "n_head", c->dep_heads, "n_embd", c->dep_embd, "dropout", 0.0,
                                  "bias", 0, "use_cmlp", 1, "use_rmsnorm", 1, "use_swiglu", 1));
    json_object_set_new(r, "use_mup", json_true());
    json_object_set_new(r, "mup_scale_factor", json_real(28.0));
    json_object_set_new(r, "output_mult", json_real(28.0 * c->logit_mult));
    json_object_set_new(r, "input_mult", json_real(c->input_mult));
    char *s = json_dumps(r, JSON_INDENT(2));
    json_decref(r);
    if (!s)
        return NULL;
    char *out = flm_strdup(s);
    free(s);
    return out;
}

/* ---------------------------------------------------------------- the tensor table */

enum { INIT_NORMAL, INIT_NORM, INIT_F32 };

typedef struct wdesc {
    char name[160];
    int n_dim;
    int64_t shape[2];
    float **dst;   /* loader destination: a float32 vector ... */
    flm_qmat *mat; /* ... or a matrix in the weight format */
    int init;
} wdesc;

typedef int (*wfn)(void *ctx, const wdesc *d);

typedef struct walker {
    wfn fn;
    void *ctx;
    int rc;
} walker;

static void emit(walker *w, void *dst, int init, int64_t rows, int64_t cols, const char *fmt, ...)
    FLM_PRINTF(6, 7);

/* cols == 0: a float32 vector of rows elements (dst: float **); else a matrix (dst: flm_qmat *),
 * except wpe, which stays float32 (INIT_F32). */
static void emit(walker *w, void *dst, int init, int64_t rows, int64_t cols, const char *fmt, ...)
{
    if (w->rc < 0)
        return;
    int vec = !cols || init == INIT_F32;
    wdesc d = {.n_dim = cols ? 2 : 1,
               .shape = {rows, cols},
               .dst = vec ? dst : NULL,
               .mat = vec ? NULL : dst,
               .init = init == INIT_F32 ? INIT_NORMAL : init};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d.name, sizeof d.name, fmt, ap);
    va_end(ap);
    w->rc = w->fn(w->ctx, &d);
}

/* Enumerates every checkpoint tensor with its shape; m == NULL: names and shapes only. */
static int walk(const flm_lm_config *c, flm_lm *m, wfn fn, void *ctx)
{
    walker w = {fn, ctx, 0};
    int64_t d = c->hidden, V = c->vocab_size, A = c->aud_vocab,
            kv = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t ff = c->intermediate, E = c->dep_embd, F = c->dep_ff;
#define F_(field) (m ? &m->field : NULL)
    emit(&w, F_(text_emb), INIT_NORMAL, V, d, "model.embed_tokens.text_embeddings.weight");
    for (int k = 0; k < NCB; k++)
        emit(&w, F_(speak_emb[k]), INIT_NORMAL, A, d,
             "model.embed_tokens.aud_speak_embeddings.%d.weight", k);
    for (int k = 0; k < NCB; k++)
        emit(&w, F_(listen_emb[k]), INIT_NORMAL, A, d,
             "model.embed_tokens.aud_listen_embeddings.%d.weight", k);
    for (int l = 0; l < c->n_layers; l++) {
        lm_layer *L = m ? &m->L[l] : NULL;
#define LF(field) (L ? &L->field : NULL)
        const char *p = "model.layers";
        emit(&w, LF(ln1), INIT_NORM, d, 0, "%s.%d.input_layernorm.weight", p, l);
        emit(&w, LF(wq), INIT_NORMAL, d, d, "%s.%d.self_attn.q_proj.weight", p, l);
        if (c->attention_bias)
            emit(&w, LF(bq), INIT_NORMAL, d, 0, "%s.%d.self_attn.q_proj.bias", p, l);
        emit(&w, LF(wk), INIT_NORMAL, kv, d, "%s.%d.self_attn.k_proj.weight", p, l);
        if (c->attention_bias)
            emit(&w, LF(bk), INIT_NORMAL, kv, 0, "%s.%d.self_attn.k_proj.bias", p, l);
        emit(&w, LF(wv), INIT_NORMAL, kv, d, "%s.%d.self_attn.v_proj.weight", p, l);
        if (c->attention_bias)
            emit(&w, LF(bv), INIT_NORMAL, kv, 0, "%s.%d.self_attn.v_proj.bias", p, l);
        emit(&w, LF(wo), INIT_NORMAL, d, d, "%s.%d.self_attn.o_proj.weight", p, l);
        if (c->o_bias)
            emit(&w, LF(bo), INIT_NORMAL, d, 0, "%s.%d.self_attn.o_proj.bias", p, l);
        emit(&w, LF(ln2), INIT_NORM, d, 0, "%s.%d.post_attention_layernorm.weight", p, l);
        emit(&w, LF(wg), INIT_NORMAL, ff, d, "%s.%d.mlp.gate_proj.weight", p, l);
        emit(&w, LF(wu), INIT_NORMAL, ff, d, "%s.%d.mlp.up_proj.weight", p, l);
        emit(&w, LF(wd), INIT_NORMAL, d, ff, "%s.%d.mlp.down_proj.weight", p, l);
#undef LF
    }
    emit(&w, F_(norm), INIT_NORM, d, 0, "model.norm.weight");
    if (!c->tie_embeddings)
        emit(&w, F_(lm_head), INIT_NORMAL, V, d, "lm_head.weight");
    const char *p = "aud_output_layers";
    emit(&w, F_(dep_in), INIT_NORMAL, NCB * E, d, "%s.linear_in.weight", p);
    for (int k = 0; k < NCB; k++)
        emit(&w, F_(wte[k]), INIT_NORMAL, A, E, "%s.transformer.wtes.%d.weight", p, k);
    emit(&w, F_(wpe), INIT_F32, NCB, E, "%s.transformer.wpe.weight", p);
    for (int l = 0; l < c->dep_layers; l++) {
        dep_layer *D = m ? &m->D[l] : NULL;
#define DF(field) (D ? &D->field : NULL)
        emit(&w, DF(ln1), INIT_NORM, E, 0, "%s.transformer.h.%d.ln_1.weight", p, l);
        emit(&w, DF(ln2), INIT_NORM, E, 0, "%s.transformer.h.%d.ln_2.weight", p, l);
        emit(&w, DF(c_attn), INIT_NORMAL, 3 * E, E, "%s.transformer.h.%d.attn.c_attn.weight", p, l);
        emit(&w, DF(c_proj), INIT_NORMAL, E, E, "%s.transformer.h.%d.attn.c_proj.weight", p, l);
        for (int k = 0; k < NCB; k++) {
            emit(&w, DF(wg[k]), INIT_NORMAL, F, E, "%s.transformer.h.%d.mlps.%d.gate_proj.weight",
                 p, l, k);
            emit(&w, DF(wu[k]), INIT_NORMAL, F, E, "%s.transformer.h.%d.mlps.%d.up_proj.weight", p,
                 l, k);
            emit(&w, DF(wd[k]), INIT_NORMAL, E, F, "%s.transformer.h.%d.mlps.%d.down_proj.weight",
                 p, l, k);
        }
#undef DF
    }
    emit(&w, F_(ln_f), INIT_NORM, E, 0, "%s.transformer.ln_f.weight", p);
    for (int k = 0; k < NCB; k++)
        emit(&w, F_(head[k]), INIT_NORMAL, A, E, "%s.lm_heads.%d.weight", p, k);
#undef F_
    return w.rc;
}

static int count_one(void *ctx, const wdesc *d)
{
    *(int64_t *)ctx += d->shape[0] * (d->n_dim == 2 ? d->shape[1] : 1);
    return 0;
}

int64_t flm_lm_config_n_params(const flm_lm_config *c)
{
    int64_t n = 0;
    walk(c, NULL, count_one, &n);
    return n;
}

/* ---------------------------------------------------------------- loading */

typedef struct load_ctx {
    flm_lm *m;
    const flm_safetensors *st;
    flm_error *err;
    char *seen; /* [count]: tensors of the file the table used */
    int mapped; /* FLM_LM_LOAD_MAPPED */
} load_ctx;

/* Position of name in the handle's sorted tensor list (-1 if absent). */
static int st_index(const flm_safetensors *st, const char *name)
{
    int lo = 0, hi = flm_safetensors_count(st) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(flm_safetensors_at(st, mid)->name, name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static void *track(flm_lm *m, size_t bytes)
{
    void *p;
    if (m->n_allocs == m->cap_allocs &&
        flm_grow((void **)&m->allocs, &m->cap_allocs, m->n_allocs + 1, sizeof *m->allocs) < 0)
        return NULL;
    if (!(p = flm_malloc_huge(bytes ? bytes : 1)))
        return NULL;
    m->allocs[m->n_allocs++] = p;
    m->weight_size += bytes;
    return p;
}

/* A stored tensor whose bytes already are the in-memory layout, served from the mapping when the
 * load asks for it and the data is aligned for the kernels' element loads (a file may place a
 * tensor at any offset); NULL: the caller copies it. */
static void *map_tensor(load_ctx *L, const flm_st_info *in, size_t align)
{
    if (!L->mapped || (uintptr_t)in->data % align)
        return NULL;
    L->m->weight_size += in->size;
    L->m->mapped_size += in->size;
    return (void *)in->data; /* read only: nothing writes the weights of a loaded model */
}

/* A matrix stored quantized by flm_lm_write (codes as I8 / U8 plus NAME.qscale): used as is when
 * the load asks for the stored format (copied, or with FLM_LM_LOAD_MAPPED served from the mapping,
 * codes and scales each where aligned), else expanded and converted. */
static int load_quantized(load_ctx *L, const wdesc *d, const flm_st_info *sin)
{
    flm_lm *m = L->m;
    const flm_st_info *in = flm_safetensors_find(L->st, d->name);
    int rows = (int)d->shape[0], cols = (int)d->shape[1], nb = (cols + FLM_QBLOCK - 1) / FLM_QBLOCK;
    flm_wtype st = in && in->dtype == FLM_DTYPE_I8 ? FLM_W_Q8 : FLM_W_Q4;
    int64_t want[2] = {rows, st == FLM_W_Q8 ? cols : (cols + 1) / 2}, wscale[2] = {rows, nb};
    char a[64], b[64];
    if (!in || (in->dtype != FLM_DTYPE_I8 && in->dtype != FLM_DTYPE_U8) || in->n_dim != 2 ||
        in->shape[0] != want[0] || in->shape[1] != want[1]) {
        flm_shape_format(a, sizeof a, 2, want);
        flm_shape_format(b, sizeof b, in ? in->n_dim : 0, in ? in->shape : want);
        return flm_error_set(L->err, FLM_EMISMATCH,
                             "%s: tensor '%s' has quantization scales but is %s %s, expected I8 "
                             "%s (q8) or U8 of half the columns (q4)",
                             sin->file, d->name, in ? flm_dtype_name(in->dtype) : "missing",
                             in ? b : "", a);
    }
    if (sin->dtype != FLM_DTYPE_F32 || sin->n_dim != 2 || sin->shape[0] != rows ||
        sin->shape[1] != nb) {
        flm_shape_format(a, sizeof a, 2, wscale);
        flm_shape_format(b, sizeof b, sin->n_dim, sin->shape);
        return flm_error_set(L->err, FLM_EMISMATCH, "%s: tensor '%s': %s %s, expected F32 %s",
                             sin->file, sin->name, flm_dtype_name(sin->dtype), b, a);
    }
    int rc = flm_safetensors_check_finite(sin, L->err); /* the codes are integers */
    if (rc < 0)
        return rc;
    L->seen[st_index(L->st, d->name)] = L->seen[st_index(L->st, sin->name)] = 1;
    size_t qs, ss, n = (size_t)rows * cols;
    flm_qmat_sizes(m->wtype, rows, cols, &qs, &ss);
    void *q = m->wtype == st ? map_tensor(L, in, 1) : NULL;
    float *sc = m->wtype == st ? map_tensor(L, sin, sizeof *sc) : NULL;
    if ((!q && !(q = track(m, qs))) || (ss && !sc && !(sc = track(m, ss))))
        return flm_error_set(L->err, FLM_ENOMEM, "out of memory loading '%s'", d->name);
    flm_qmat_init(d->mat, m->wtype, rows, cols, q, sc);
    if (m->wtype == st) { /* the stored codes and scales as they are */
        if (q != in->data) {
            memcpy(q, in->data, qs);
            flm_safetensors_release(L->st, in);
        }
        if (sc != sin->data) {
            memcpy(sc, sin->data, ss); /* may be unaligned in the file */
            flm_safetensors_release(L->st, sin);
        }
        return 0;
    }
    float *stored_sc = flm_malloc((size_t)rows * nb * sizeof *stored_sc);
    if (!stored_sc)
        return flm_error_set(L->err, FLM_ENOMEM, "out of memory loading '%s'", d->name);
    memcpy(stored_sc, sin->data, (size_t)rows * nb * sizeof *stored_sc); /* may be unaligned */
    flm_qmat view;
    float *f = m->wtype == FLM_W_F32 ? q : flm_malloc(n * sizeof *f);
    flm_qmat_init(&view, st, rows, cols, (void *)in->data, stored_sc);
    for (int r = 0; f && r < rows; r++)
        flm_qmat_row(&view, r, f + (size_t)r * cols);
    if (f && m->wtype != FLM_W_F32) {
        flm_qmat_quantize(d->mat, f);
        flm_free(f);
    } else if (!f) {
        flm_free(stored_sc);
        return flm_error_set(L->err, FLM_ENOMEM, "out of memory loading '%s'", d->name);
    }
    flm_free(stored_sc);
    flm_safetensors_release(L->st, in);
    flm_safetensors_release(L->st, sin);
    return 0;
}

static int load_one(void *ctx, const wdesc *d)
{
    load_ctx *L = ctx;
    const flm_st_info *in;
    if (d->mat) {
        char sname[192];
        snprintf(sname, sizeof sname, "%s.qscale", d->name);
        const flm_st_info *sin = flm_safetensors_find(L->st, sname);
        if (sin)
            return load_quantized(L, d, sin);
    }
    int rc = flm_safetensors_check(L->st, d->name, d->n_dim, d->shape, &in, L->err);
    if (rc < 0 || (rc = flm_safetensors_check_finite(in, L->err)) < 0)
        return rc;
    int at = st_index(L->st, d->name);
    if (at >= 0)
        L->seen[at] = 1;
    flm_lm *m = L->m;
    size_t n = (size_t)d->shape[0] * (size_t)(d->n_dim == 2 ? d->shape[1] : 1);
    if (d->dst) {
        float *dst = track(m, n * sizeof *dst);
        if (!dst)
            return flm_error_set(L->err, FLM_ENOMEM, "out of memory loading '%s'", d->name);
        if ((rc = flm_safetensors_read_f32(L->st, d->name, d->n_dim, d->shape, dst, L->err)) < 0)
            return rc;
        *d->dst = dst;
    } else {
        int rows = (int)d->shape[0], cols = (int)d->shape[1];
        size_t qs, ss;
        flm_qmat_sizes(m->wtype, rows, cols, &qs, &ss);
        void *mq = m->wtype == FLM_W_F32 && in->dtype == FLM_DTYPE_F32     ? map_tensor(L, in, 4)
                   : m->wtype == FLM_W_BF16 && in->dtype == FLM_DTYPE_BF16 ? map_tensor(L, in, 2)
                                                                           : NULL;
        if (mq) { /* computed from the mapping: its pages stay */
            flm_qmat_init(d->mat, m->wtype, rows, cols, mq, NULL);
            return 0;
        }
        void *q = track(m, qs);
        float *sc = ss ? track(m, ss) : NULL;
        if (!q || (ss && !sc))
            return flm_error_set(L->err, FLM_ENOMEM, "out of memory loading '%s' (%.1f MB)",
                                 d->name, (qs + ss) / 1e6);
        flm_qmat_init(d->mat, m->wtype, rows, cols, q, sc);
        if (m->wtype == FLM_W_F32) {
            rc = flm_safetensors_read_f32(L->st, d->name, 2, d->shape, q, L->err);
        } else {
            if (n > m->tmp_n) { /* float32 staging: the largest matrix */
                flm_free(m->tmp);
                m->tmp_n = 0;
                if (!(m->tmp = flm_malloc(n * sizeof *m->tmp)))
                    return flm_error_set(L->err, FLM_ENOMEM, "out of memory loading '%s'", d->name);
                m->tmp_n = n;
            }
            if ((rc = flm_safetensors_read_f32(L->st, d->name, 2, d->shape, m->tmp, L->err)) == 0)
                flm_qmat_quantize(d->mat, m->tmp);
        }
        if (rc < 0)
            return rc;
    }
    flm_safetensors_release(L->st, in); /* copied: drop the mapped pages from our RSS */
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int flm_lm_load(flm_lm **out, const char *dir, flm_wtype wtype, int flags, flm_error *err)
{
    flm_lm *m = NULL;
    flm_safetensors *st = NULL;
    char *json = NULL, *seen = NULL, *cpath = flm_path_join(dir, "config.json");
    size_t n;
    int rc;
    *out = NULL;
    if (!cpath)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    if ((rc = flm_read_file(cpath, &json, &n, CONFIG_MAX_SIZE, err)) < 0)
        goto done;
    if (!(m = flm_calloc(1, sizeof *m))) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    m->wtype = wtype;
    if (wtype < 0 || wtype >= FLM_W_COUNT) {
        rc = flm_error_set(err, FLM_EINVAL, "unknown weight format %d", (int)wtype);
        goto done;
    }
    if ((rc = flm_lm_config_parse(json, n, cpath, &m->cfg, err)) < 0)
        goto done;
    const flm_lm_config *c = &m->cfg;
    if ((rc = flm_safetensors_open(&st, dir, err)) < 0)
        goto done;
    m->L = track(m, (size_t)c->n_layers * sizeof *m->L);
    m->D = track(m, (size_t)c->dep_layers * sizeof *m->D);
    if (!m->L || !m->D) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    memset(m->L, 0, (size_t)c->n_layers * sizeof *m->L);
    memset(m->D, 0, (size_t)c->dep_layers * sizeof *m->D);
    load_ctx L = {m, st, err, flm_calloc((size_t)flm_safetensors_count(st) + 1, 1),
                  !!(flags & FLM_LM_LOAD_MAPPED)};
    if (!L.seen) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    rc = walk(c, m, load_one, &L);
    flm_free(m->tmp);
    m->tmp = NULL;
    m->tmp_n = 0;
    seen = L.seen;
    if (rc < 0) {
        if (rc != FLM_ECORRUPT) /* a non-finite weight matches the config; it is just broken */
            flm_error_prefix(err, "weights do not match %s", cpath);
        goto done;
    }
    if (c->tie_embeddings)
        m->lm_head = m->text_emb;
    /* every tensor must be accounted for: an extra layer means config and weights disagree */
    for (int i = 0; i < flm_safetensors_count(st); i++) {
        const flm_st_info *in = flm_safetensors_at(st, i);
        if (!L.seen[i] && !ends_with(in->name, "rotary_emb.inv_freq")) {
            rc = flm_error_set(err, FLM_EMISMATCH,
                               "%s: tensor '%s' is not part of the model %s describes (%d "
                               "layers, %d depth layers, tie_word_embeddings %s)",
                               in->file, in->name, cpath, c->n_layers, c->dep_layers,
                               c->tie_embeddings ? "true" : "false");
            goto done;
        }
    }
    if (m->mapped_size) { /* the model computes from the mapping: it keeps the files open */
        m->st = st;
        st = NULL;
    }
    *out = m;
    m = NULL;
    rc = 0;
done:
    flm_safetensors_close(&st); /* copied weights never touch the mapping */
    flm_lm_destroy(&m);
    flm_free(seen);
    flm_free(json);
    flm_free(cpath);
    return rc;
}

void flm_lm_destroy(flm_lm **pm)
{
    flm_lm *m = pm ? *pm : NULL;
    if (!m)
        return;
    for (size_t i = 0; i < m->n_allocs; i++)
        flm_free(m->allocs[i]);
    flm_free(m->allocs);
    flm_safetensors_close(&m->st);
    flm_free(m);
    *pm = NULL;
}

const flm_lm_config *flm_lm_get_config(const flm_lm *m)
{
    return &m->cfg;
}

flm_wtype flm_lm_weight_type(const flm_lm *m)
{
    return m->wtype;
}

size_t flm_lm_weight_size(const flm_lm *m)
{
    return m->weight_size;
}

size_t flm_lm_mapped_size(const flm_lm *m)
{
    return m->mapped_size;
}

/* ---------------------------------------------------------------- random checkpoints */

typedef struct wr_tensor {
    char name[160];
    int n_dim;
    int64_t shape[2];
    int init;
    uint64_t bytes;
    int shard;
} wr_tensor;

typedef struct wr_list {
    wr_tensor *t;
    int n, cap;
    size_t esize;
} wr_list;

static int list_one(void *ctx, const wdesc *d)
{
    wr_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = (size_t)l->cap;
        if (flm_grow((void **)&l->t, &cap, (size_t)l->n + 1, sizeof *l->t) < 0)
            return FLM_ENOMEM;
        l->cap = (int)cap;
    }
    wr_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", d->name);
    t->n_dim = d->n_dim;
    t->shape[0] = d->shape[0];
    t->shape[1] = d->shape[1];
    t->init = d->init;
    t->bytes = (uint64_t)d->shape[0] * (uint64_t)(d->n_dim == 2 ? d->shape[1] : 1) * l->esize;
    return 0;
}

/* The safetensors header of one shard: its tensors in table order, 8-byte aligned. */
static char *shard_header(const wr_list *l, int shard, flm_dtype dt, size_t *len)
{
    json_t *h = json_object();
    uint64_t off = 0;
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    for (int i = 0; i < l->n; i++) {
        const wr_tensor *t = &l->t[i];
        if (t->shard != shard)
            continue;
        json_t *shape = json_array();
        for (int k = 0; k < t->n_dim; k++)
            json_array_append_new(shape, json_integer(t->shape[k]));
        json_object_set_new(h, t->name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", flm_dtype_name(dt), "shape",
                                      shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + t->bytes)));
        off += t->bytes;
    }
    char *s = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!s)
        return NULL;
    size_t n = strlen(s), padded = (n + 7) / 8 * 8;
    char *out = flm_malloc(padded + 1);
    if (out) {
        memcpy(out, s, n);
        memset(out + n, ' ', padded - n);
        out[padded] = 0;
        *len = padded;
    }
    free(s);
    return out;
}

#define GEN_CHUNK 65536

static int write_shard(const wr_list *l, int shard, flm_dtype dt, uint64_t seed, const char *path,
                       flm_error *err)
{
    size_t hlen = 0;
    char *hdr = shard_header(l, shard, dt, &hlen);
    char *tmp = flm_malloc(strlen(path) + 8);
    float *buf = flm_malloc(GEN_CHUNK * sizeof *buf);
    uint16_t *half = flm_malloc(GEN_CHUNK * sizeof *half);
    FILE *f = NULL;
    int rc = 0;
    if (!hdr || !tmp || !buf || !half) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    sprintf(tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "wb"))) {
        rc = flm_error_set(err, FLM_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    uint8_t le[8];
    for (int k = 0; k < 8; k++)
        le[k] = (uint8_t)((uint64_t)hlen >> (8 * k));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen;
    for (int i = 0; i < l->n && ok; i++) {
        const wr_tensor *t = &l->t[i];
        if (t->shard != shard)
            continue;
        flm_rng r;
        flm_rng_init(&r, seed, t->name, "model.init");
        uint64_t n = (uint64_t)t->shape[0] * (uint64_t)(t->n_dim == 2 ? t->shape[1] : 1);
        for (uint64_t at = 0; at < n && ok; at += GEN_CHUNK) {
            size_t m = n - at < GEN_CHUNK ? (size_t)(n - at) : GEN_CHUNK;
            for (size_t j = 0; j < m; j++)
                buf[j] = t->init == INIT_NORM ? (float)(1.0 + 0.1 * flm_rng_normal(&r))
                                              : (float)(0.02 * flm_rng_normal(&r));
            if (dt == FLM_DTYPE_BF16) {
                flm_f32_to_bf16(buf, half, m);
                ok = fwrite(half, 2, m, f) == m;
            } else {
                ok = fwrite(buf, 4, m, f) == m;
            }
        }
    }
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) < 0) {
        rc = flm_error_set(err, FLM_EIO, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
    }
done:
    flm_free(hdr);
    flm_free(tmp);
    flm_free(buf);
    flm_free(half);
    return rc;
}

static int write_text(const char *path, const char *text, flm_error *err)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : flm_error_set(err, FLM_EIO, "%s: cannot write: %s", path, strerror(errno));
}

int flm_lm_write_random(const flm_lm_config *c, uint64_t seed, flm_dtype dtype,
                        uint64_t shard_bytes, const char *dir, flm_error *err)
{
    wr_list l = {.esize = flm_dtype_size(dtype)};
    char *cfg = NULL, path[4096];
    int rc, n_shards = 1;
    if (dtype != FLM_DTYPE_F32 && dtype != FLM_DTYPE_BF16)
        return flm_error_set(err, FLM_EINVAL, "model init: dtype must be F32 or BF16");
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return flm_error_set(err, FLM_EIO, "%s: cannot create: %s", dir, strerror(errno));
    if ((rc = walk(c, NULL, list_one, &l)) < 0) {
        rc = flm_error_set(err, rc, "out of memory");
        goto done;
    }
    uint64_t in_shard = 0;
    for (int i = 0; i < l.n; i++) {
        if (shard_bytes && in_shard > 0 && in_shard + l.t[i].bytes > shard_bytes) {
            n_shards++;
            in_shard = 0;
        }
        l.t[i].shard = n_shards - 1;
        in_shard += l.t[i].bytes;
    }
    if (!(cfg = flm_lm_config_to_json(c))) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((rc = write_text(path, cfg, err)) < 0)
        goto done;
    if (!shard_bytes) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = write_shard(&l, 0, dtype, seed, path, err);
        goto done;
    }
    json_t *map = json_object();
    uint64_t total = 0;
    for (int i = 0; i < l.n; i++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", l.t[i].shard + 1, n_shards);
        json_object_set_new(map, l.t[i].name, json_string(name));
        total += l.t[i].bytes;
    }
    for (int s = 0; s < n_shards && rc == 0; s++) {
        snprintf(path, sizeof path, "%s/model-%05d-of-%05d.safetensors", dir, s + 1, n_shards);
        rc = write_shard(&l, s, dtype, seed, path, err);
    }
    json_t *idx =
        json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", map);
    char *text = idx ? json_dumps(idx, JSON_INDENT(2)) : NULL;
    json_decref(idx);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (rc == 0)
        rc = text ? write_text(path, text, err) : flm_error_set(err, FLM_ENOMEM, "out of memory");
    free(text);
done:
    flm_free(cfg);
    flm_free(l.t);
    return rc;
}

/* ---------------------------------------------------------------- run state */

struct flm_lm_state {
    const flm_lm *lm;
    int max_ctx, max_rows, pos;
    float **kc, **vc; /* [n_layers] -> [max_ctx][kv] */
    float *x;         /* [max_rows][d] residual stream */
    float *h;         /* [max_rows][d] normed / attention output */
    float *q;         /* [max_rows][d] */
    float *att;       /* [max_rows][d] */
    float *g, *u;     /* [max_rows][ff] */
    float *scr;       /* attention scratch */
    float *wscr;      /* flm_qmat_gemm scratch */
    float *row;       /* [max(d, E)] an embedding row */
    float *trace;     /* borrowed, or NULL */
    /* depth head: frames of 8 positions */
    float *dx;      /* [max_rows][8][E] residual */
    float *dh;      /* [max_rows][8][E] normed */
    float **dqkv;   /* [dep_layers] -> [max_rows][8][3E] (keys of earlier positions) */
    float *datt;    /* [max_rows][8][E] */
    float *dg, *du; /* [max_rows][F] */
    float *dscr;
    /* flm_lm_score */
    int32_t *in;    /* [max_ctx][17] */
    int32_t *tgt;   /* [max_ctx][9] */
    uint8_t *tcls;  /* [max_ctx][9] */
    int32_t *codes; /* [max_rows][8] */
    float *hid;     /* [max_rows][d] */
    float *tlog;    /* [max_rows][V] */
    float *dlog;    /* [max_rows][8][A] */
    void **allocs;
    size_t n_allocs, cap_allocs, size;
};

static void *salloc(flm_lm_state *s, size_t bytes)
{
    void *p;
    if (s->n_allocs == s->cap_allocs &&
        flm_grow((void **)&s->allocs, &s->cap_allocs, s->n_allocs + 1, sizeof *s->allocs) < 0)
        return NULL;
    if (!(p = flm_malloc_huge(bytes ? bytes : 1)))
        return NULL;
    memset(p, 0, bytes); /* touched now: a long session must not run out of memory at step 8000 */
    s->allocs[s->n_allocs++] = p;
    s->size += bytes;
    return p;
}

int flm_lm_state_create(flm_lm_state **out, const flm_lm *lm, int max_ctx, int max_rows,
                        flm_error *err)
{
    const flm_lm_config *c = &lm->cfg;
    *out = NULL;
    if (max_ctx < 1 || max_rows < 1 || max_rows > max_ctx)
        return flm_error_set(err, FLM_EINVAL, "LM state: context %d, rows %d", max_ctx, max_rows);
    flm_lm_state *s = flm_calloc(1, sizeof *s);
    if (!s)
        return flm_error_set(err, FLM_ENOMEM, "LM state: out of memory");
    s->lm = lm;
    s->max_ctx = max_ctx;
    s->max_rows = max_rows;
    size_t R = (size_t)max_rows, d = (size_t)c->hidden, ff = (size_t)c->intermediate;
    size_t kv = (size_t)c->n_kv_heads * c->head_dim, E = (size_t)c->dep_embd;
    int ok = (s->kc = salloc(s, (size_t)c->n_layers * sizeof *s->kc)) &&
             (s->vc = salloc(s, (size_t)c->n_layers * sizeof *s->vc)) &&
             (s->dqkv = salloc(s, (size_t)c->dep_layers * sizeof *s->dqkv));
    for (int l = 0; ok && l < c->n_layers; l++)
        ok = (s->kc[l] = salloc(s, (size_t)max_ctx * kv * sizeof(float))) &&
             (s->vc[l] = salloc(s, (size_t)max_ctx * kv * sizeof(float)));
    for (int l = 0; ok && l < c->dep_layers; l++)
        ok = !!(s->dqkv[l] = salloc(s, R * NCB * 3 * E * sizeof(float)));
    int wide = c->hidden > c->intermediate ? c->hidden : c->intermediate;
    wide = wide > c->dep_embd ? wide : c->dep_embd;
    wide = wide > c->dep_ff ? wide : c->dep_ff;
    ok =
        ok && (s->wscr = salloc(s, flm_qmat_scratch_size(wide) * sizeof(float))) &&
        (s->row = salloc(s, (d > E ? d : E) * sizeof(float))) &&
        (s->x = salloc(s, R * d * sizeof(float))) && (s->h = salloc(s, R * d * sizeof(float))) &&
        (s->q = salloc(s, R * d * sizeof(float))) && (s->att = salloc(s, R * d * sizeof(float))) &&
        (s->g = salloc(s, R * ff * sizeof(float))) && (s->u = salloc(s, R * ff * sizeof(float))) &&
        (s->scr = salloc(s, flm_attention_scratch_size(max_rows, max_ctx, c->n_heads) *
                                sizeof(float))) &&
        (s->dx = salloc(s, R * NCB * E * sizeof(float))) &&
        (s->dh = salloc(s, R * NCB * E * sizeof(float))) &&
        (s->datt = salloc(s, R * NCB * E * sizeof(float))) &&
        (s->dg = salloc(s, R * (size_t)c->dep_ff * sizeof(float))) &&
        (s->du = salloc(s, R * (size_t)c->dep_ff * sizeof(float))) &&
        (s->dscr = salloc(s, flm_attention_scratch_size(NCB, NCB, c->dep_heads) * sizeof(float))) &&
        (s->in = salloc(s, (size_t)max_ctx * FLM_N_CHANNELS * sizeof(int32_t))) &&
        (s->tgt = salloc(s, (size_t)max_ctx * (1 + NCB) * sizeof(int32_t))) &&
        (s->tcls = salloc(s, (size_t)max_ctx * (1 + NCB))) &&
        (s->codes = salloc(s, R * NCB * sizeof(int32_t))) &&
        (s->hid = salloc(s, R * d * sizeof(float))) &&
        (s->tlog = salloc(s, R * (size_t)c->vocab_size * sizeof(float))) &&
        (s->dlog = salloc(s, R * NCB * (size_t)c->aud_vocab * sizeof(float)));
    if (!ok) {
        flm_lm_state_destroy(&s);
        return flm_error_set(err, FLM_ENOMEM, "LM state: out of memory (context %d, rows %d)",
                             max_ctx, max_rows);
    }
    *out = s;
    return 0;
}

void flm_lm_state_destroy(flm_lm_state **ps)
{
    flm_lm_state *s = ps ? *ps : NULL;
    if (!s)
        return;
    for (size_t i = 0; i < s->n_allocs; i++)
        flm_free(s->allocs[i]);
    flm_free(s->allocs);
    flm_free(s);
    *ps = NULL;
}

void flm_lm_state_reset(flm_lm_state *s)
{
    s->pos = 0;
}

int flm_lm_state_pos(const flm_lm_state *s)
{
    return s->pos;
}

size_t flm_lm_state_size(const flm_lm_state *s)
{
    return s->size;
}

void flm_lm_state_trace(flm_lm_state *s, float *trace)
{
    s->trace = trace;
}

/* ---------------------------------------------------------------- backbone */

static void add_row(float *dst, const float *src, int n)
{
    for (int i = 0; i < n; i++)
        dst[i] += src[i];
}

int flm_lm_forward(flm_lm_state *s, const int32_t *tokens, int T, float *hidden, flm_error *err)
{
    const flm_lm *m = s->lm;
    const flm_lm_config *c = &m->cfg;
    int d = c->hidden, H = c->n_heads, KH = c->n_kv_heads, hd = c->head_dim, ff = c->intermediate;
    int kv = KH * hd, p0 = s->pos;
    if (T < 1 || T > s->max_rows || p0 + T > s->max_ctx)
        return flm_error_set(err, FLM_ERANGE,
                             "LM forward: %d steps at position %d (at most %d per call, context "
                             "%d)",
                             T, p0, s->max_rows, s->max_ctx);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < FLM_N_CHANNELS; k++) {
            int32_t v = tokens[(size_t)t * FLM_N_CHANNELS + k];
            int lim = k == FLM_CH_TEXT ? c->vocab_size : c->aud_vocab;
            if (v < 0 || v >= lim)
                return flm_error_set(err, FLM_ERANGE,
                                     "LM forward: step %d, channel %d: token %d outside [0, %d)",
                                     p0 + t, k, (int)v, lim);
        }
    for (int t = 0; t < T; t++) {
        const int32_t *tk = tokens + (size_t)t * FLM_N_CHANNELS;
        float *x = s->x + (size_t)t * d;
        flm_qmat_row(&m->text_emb, tk[0], x);
        for (int k = 0; k < NCB; k++) {
            flm_qmat_row(&m->speak_emb[k], tk[FLM_CH_SPEAK + k], s->row);
            add_row(x, s->row, d);
            flm_qmat_row(&m->listen_emb[k], tk[FLM_CH_LISTEN + k], s->row);
            add_row(x, s->row, d);
        }
        if (c->input_mult != 1.0f)
            for (int i = 0; i < d; i++)
                x[i] *= c->input_mult;
    }
    if (s->trace)
        memcpy(s->trace, s->x, (size_t)T * d * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        const lm_layer *L = &m->L[l];
        float *kc = s->kc[l] + (size_t)p0 * kv, *vc = s->vc[l] + (size_t)p0 * kv;
        flm_rms_norm_f32(T, d, s->x, L->ln1, (float)c->rms_eps, s->h);
        flm_qmat_gemm(&L->wq, T, s->h, d, L->bq, 0.0f, s->q, d, s->wscr);
        flm_qmat_gemm(&L->wk, T, s->h, d, L->bk, 0.0f, kc, kv, s->wscr);
        flm_qmat_gemm(&L->wv, T, s->h, d, L->bv, 0.0f, vc, kv, s->wscr);
        flm_rope_f32(s->q, T, d, p0, H, hd, (float)c->rope_theta, FLM_ROPE_HALF);
        flm_rope_f32(kc, T, kv, p0, KH, hd, (float)c->rope_theta, FLM_ROPE_HALF);
        flm_attention_gqa_f32(s->q, d, s->kc[l], s->vc[l], kv, T, p0 + T, p0, 0, 0, H, KH, hd,
                              s->att, s->scr);
        flm_qmat_gemm(&L->wo, T, s->att, d, L->bo, 0.0f, s->h, d, s->wscr);
        for (size_t i = 0; i < (size_t)T * d; i++)
            s->x[i] += s->h[i];
        flm_rms_norm_f32(T, d, s->x, L->ln2, (float)c->rms_eps, s->h);
        flm_qmat_gemm(&L->wg, T, s->h, d, NULL, 0.0f, s->g, ff, s->wscr);
        flm_qmat_gemm(&L->wu, T, s->h, d, NULL, 0.0f, s->u, ff, s->wscr);
        flm_swiglu_f32(s->g, s->u, (size_t)T * ff);
        flm_qmat_gemm(&L->wd, T, s->g, ff, NULL, 1.0f, s->x, d, s->wscr);
        if (s->trace)
            memcpy(s->trace + (size_t)(l + 1) * T * d, s->x, (size_t)T * d * sizeof(float));
    }
    flm_rms_norm_f32(T, d, s->x, m->norm, (float)c->rms_eps, hidden);
    s->pos += T;
    return 0;
}

void flm_lm_text_logits(flm_lm_state *s, const float *hidden, int T, float *logits)
{
    const flm_lm *m = s->lm;
    const flm_lm_config *c = &m->cfg;
    flm_qmat_gemm(&m->lm_head, T, hidden, c->hidden, NULL, 0.0f, logits, c->vocab_size, s->wscr);
    if (c->logit_mult != 1.0f)
        for (size_t i = 0; i < (size_t)T * c->vocab_size; i++)
            logits[i] *= c->logit_mult;
}

/* ---------------------------------------------------------------- depth head */

/* Runs positions [c0, c1) of T frames whose rows dx[t][c] (c in [c0, c1)) hold the inputs and
 * whose earlier positions' keys are in dqkv. Writes the logits of position p of frame t to
 * logits + t * ld + (p - c0) * A. Streaming is T = 1, c1 = c0 + 1. */
static void depth_run(flm_lm_state *s, int T, int c0, int c1, float *logits, int ld)
{
    const flm_lm *m = s->lm;
    const flm_lm_config *c = &m->cfg;
    int E = c->dep_embd, F = c->dep_ff, A = c->aud_vocab, RS = NCB * E, nh = c->dep_heads;
    for (int l = 0; l < c->dep_layers; l++) {
        const dep_layer *D = &m->D[l];
        float *qkv = s->dqkv[l];
        for (int t = 0; t < T; t++)
            flm_rms_norm_f32(c1 - c0, E, s->dx + (size_t)t * RS + (size_t)c0 * E, D->ln1, DEPTH_EPS,
                             s->dh + (size_t)t * RS + (size_t)c0 * E);
        if (c1 - c0 == NCB) /* all positions: the shared weights in one product over 8T rows */
            flm_qmat_gemm(&D->c_attn, T * NCB, s->dh, E, NULL, 0.0f, qkv, 3 * E, s->wscr);
        else
            for (int p = c0; p < c1; p++)
                flm_qmat_gemm(&D->c_attn, T, s->dh + (size_t)p * E, RS, NULL, 0.0f,
                              qkv + (size_t)p * 3 * E, NCB * 3 * E, s->wscr);
        for (int t = 0; t < T; t++) {
            const float *f = qkv + (size_t)t * NCB * 3 * E;
            flm_attention_f32(f + (size_t)c0 * 3 * E, 3 * E, f + E, f + 2 * E, 3 * E, c1 - c0, c1,
                              c0, 0, 0, nh, E / nh, s->datt + (size_t)t * RS + (size_t)c0 * E,
                              s->dscr);
        }
        if (c1 - c0 == NCB)
            flm_qmat_gemm(&D->c_proj, T * NCB, s->datt, E, NULL, 1.0f, s->dx, E, s->wscr);
        else
            for (int p = c0; p < c1; p++)
                flm_qmat_gemm(&D->c_proj, T, s->datt + (size_t)p * E, RS, NULL, 1.0f,
                              s->dx + (size_t)p * E, RS, s->wscr);
        for (int t = 0; t < T; t++)
            flm_rms_norm_f32(c1 - c0, E, s->dx + (size_t)t * RS + (size_t)c0 * E, D->ln2, DEPTH_EPS,
                             s->dh + (size_t)t * RS + (size_t)c0 * E);
        for (int p = c0; p < c1; p++) {
            flm_qmat_gemm(&D->wg[p], T, s->dh + (size_t)p * E, RS, NULL, 0.0f, s->dg, F, s->wscr);
            flm_qmat_gemm(&D->wu[p], T, s->dh + (size_t)p * E, RS, NULL, 0.0f, s->du, F, s->wscr);
            flm_swiglu_f32(s->dg, s->du, (size_t)T * F);
            flm_qmat_gemm(&D->wd[p], T, s->dg, F, NULL, 1.0f, s->dx + (size_t)p * E, RS, s->wscr);
        }
    }
    for (int t = 0; t < T; t++)
        flm_rms_norm_f32(c1 - c0, E, s->dx + (size_t)t * RS + (size_t)c0 * E, m->ln_f, DEPTH_EPS,
                         s->dh + (size_t)t * RS + (size_t)c0 * E);
    for (int p = c0; p < c1; p++)
        flm_qmat_gemm(&m->head[p], T, s->dh + (size_t)p * E, RS, NULL, 0.0f,
                      logits + (size_t)(p - c0) * A, ld, s->wscr);
}

/* dx[t][p] = linear_in slice p of hidden[t], every position in one product. */
static void depth_project(flm_lm_state *s, const float *hidden, int T)
{
    const flm_lm_config *c = &s->lm->cfg;
    flm_qmat_gemm(&s->lm->dep_in, T, hidden, c->hidden, NULL, 0.0f, s->dx, NCB * c->dep_embd,
                  s->wscr);
}

/* dx[t][p] += wpe[p] + wte[p][tok]. */
static void depth_embed(flm_lm_state *s, int T, int p, const int32_t *tok, int tok_stride)
{
    const flm_lm *m = s->lm;
    const flm_lm_config *c = &m->cfg;
    int E = c->dep_embd, RS = NCB * E;
    for (int t = 0; t < T; t++) {
        float *x = s->dx + (size_t)t * RS + (size_t)p * E;
        int32_t id = p == 0 ? c->aud_empty : tok[(size_t)t * tok_stride];
        add_row(x, m->wpe + (size_t)p * E, E);
        flm_qmat_row(&m->wte[p], id, s->row);
        add_row(x, s->row, E);
    }
}

int flm_lm_depth_forward(flm_lm_state *s, const float *hidden, const int32_t *codes, int T,
                         float *logits, flm_error *err)
{
    const flm_lm_config *c = &s->lm->cfg;
    if (T < 1 || T > s->max_rows)
        return flm_error_set(err, FLM_ERANGE, "LM depth: %d frames (at most %d per call)", T,
                             s->max_rows);
    for (int t = 0; t < T; t++)
        for (int p = 0; p + 1 < NCB; p++) {
            int32_t v = codes[(size_t)t * NCB + p];
            if (v < 0 || v >= c->aud_vocab)
                return flm_error_set(err, FLM_ERANGE,
                                     "LM depth: frame %d, codebook %d: code %d outside [0, %d)", t,
                                     p, (int)v, c->aud_vocab);
        }
    depth_project(s, hidden, T);
    for (int p = 0; p < NCB; p++)
        depth_embed(s, T, p, p ? codes + p - 1 : NULL, NCB);
    depth_run(s, T, 0, NCB, logits, NCB * c->aud_vocab);
    return 0;
}

void flm_lm_depth_begin(flm_lm_state *s, const float *hidden)
{
    depth_project(s, hidden, 1);
}

int flm_lm_depth_next(flm_lm_state *s, int p, int32_t prev_code, float *logits, flm_error *err)
{
    const flm_lm_config *c = &s->lm->cfg;
    if (p < 0 || p >= NCB || (p > 0 && (prev_code < 0 || prev_code >= c->aud_vocab)))
        return flm_error_set(err, FLM_ERANGE, "LM depth: position %d, code %d", p, (int)prev_code);
    depth_embed(s, 1, p, &prev_code, 0);
    depth_run(s, 1, p, p + 1, logits, c->aud_vocab);
    return 0;
}

/* ---------------------------------------------------------------- teacher forcing view */

static const int32_t DELAYS[FLM_N_CHANNELS] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1};

void flm_lm_input_from_sample(const flm_lm_config *c, const int32_t *tokens, const uint8_t *classes,
                              int32_t n_frames, int32_t *input, int32_t *target,
                              uint8_t *target_class)
{
    int n_steps = n_frames + 1;
    for (int t = 0; t < n_steps; t++)
        for (int k = 0; k < FLM_N_CHANNELS; k++) {
            int32_t init = k == FLM_CH_TEXT ? c->text_wait : c->aud_pad;
            /* D[k][j] = X[k][j - delay], or the fill outside the sample; step t reads text and
             * speak of column t-1 and listen of column t, and predicts text and speak of t */
            int64_t j = k < FLM_CH_LISTEN ? t - 1 : t, src = j - DELAYS[k];
            int32_t v =
                j < 0 || src < 0 || src >= n_frames ? init : tokens[(size_t)k * n_frames + src];
            input[(size_t)t * FLM_N_CHANNELS + k] = v;
            if (k < FLM_CH_LISTEN) {
                int64_t st = t - DELAYS[k];
                int in = st >= 0 && st < n_frames;
                target[(size_t)t * (1 + NCB) + k] = in ? tokens[(size_t)k * n_frames + st] : -1;
                if (target_class)
                    target_class[(size_t)t * (1 + NCB) + k] =
                        in && classes ? classes[(size_t)k * n_frames + st] : FLM_LOSS_NONE;
            }
        }
}

/* Adds -log softmax(x)[target] and whether target is the argmax. */
static void add_ce(flm_lm_loss *l, int cls, const float *x, int n, int target)
{
    double mx = x[0], sum = 0;
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i], best = i;
    for (int i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    l->sum[cls] += log(sum) + mx - x[target];
    l->count[cls]++;
    l->correct[cls] += best == target;
}

int flm_lm_score(flm_lm_state *s, const int32_t *tokens, const uint8_t *classes, int32_t n_frames,
                 flm_lm_loss *loss, volatile int *stop, flm_error *err)
{
    const flm_lm_config *c = &s->lm->cfg;
    int n_steps = n_frames + 1, R = s->max_rows, V = c->vocab_size, A = c->aud_vocab, rc;
    if (n_frames < 1 || n_steps > s->max_ctx)
        return flm_error_set(err, FLM_ERANGE, "LM score: %d frames (context holds %d steps)",
                             n_frames, s->max_ctx);
    flm_lm_input_from_sample(c, tokens, classes, n_frames, s->in, s->tgt, s->tcls);
    for (int t = 0; t < n_steps; t++)
        for (int k = 0; k <= NCB; k++) {
            int32_t v = s->tgt[(size_t)t * (1 + NCB) + k];
            int lim = k ? A : V;
            if (s->tcls[(size_t)t * (1 + NCB) + k] != FLM_LOSS_NONE && (v < 0 || v >= lim))
                return flm_error_set(err, FLM_ERANGE,
                                     "LM score: frame %d, channel %d: token %d outside [0, %d)",
                                     t - DELAYS[k], k, (int)v, lim);
        }
    flm_lm_state_reset(s);
    for (int t0 = 0; t0 < n_steps; t0 += R) {
        if (stop && *stop)
            return 1;
        int T = n_steps - t0 < R ? n_steps - t0 : R;
        if ((rc = flm_lm_forward(s, s->in + (size_t)t0 * FLM_N_CHANNELS, T, s->hid, err)) < 0)
            return rc;
        flm_lm_text_logits(s, s->hid, T, s->tlog);
        for (int t = 0; t < T; t++)
            for (int k = 0; k < NCB; k++) { /* depth inputs: the codes it is trained to predict */
                int32_t v = s->tgt[(size_t)(t0 + t) * (1 + NCB) + 1 + k];
                s->codes[t * NCB + k] = v >= 0 && v < A ? v : c->aud_pad;
            }
        if ((rc = flm_lm_depth_forward(s, s->hid, s->codes, T, s->dlog, err)) < 0)
            return rc;
        for (int t = 0; t < T; t++)
            for (int k = 0; k <= NCB; k++) {
                size_t at = (size_t)(t0 + t) * (1 + NCB) + k;
                int cls = s->tcls[at];
                if (cls == FLM_LOSS_NONE)
                    continue;
                if (k == 0)
                    add_ce(loss, cls, s->tlog + (size_t)t * V, V, s->tgt[at]);
                else
                    add_ce(loss, cls, s->dlog + ((size_t)t * NCB + k - 1) * A, A, s->tgt[at]);
            }
    }
    return 0;
}

double flm_lm_loss_weighted(const flm_lm_loss *l, const double w[FLM_N_LOSS_CLASSES])
{
    double num = 0, den = 0;
    for (int k = 0; k < FLM_N_LOSS_CLASSES; k++) {
        num += w[k] * l->sum[k];
        den += w[k] * (double)l->count[k];
    }
    return den > 0 ? num / den : 0.0;
}

/* ---------------------------------------------------------------- streaming generation */

struct flm_lm_gen {
    const flm_lm *lm;
    flm_lm_gen_params p;
    flm_lm_state *s;
    int step;
    int32_t input[FLM_N_CHANNELS];
    int32_t prev_user[NCB];
    int32_t chosen[1 + NCB], prev_chosen[1 + NCB];
    float *hidden;      /* [d] */
    float *text_logits; /* [V] */
    float *dlogits;     /* [8][A] */
    float *work;        /* [max(V, A)] sampling scratch */
    int32_t *order;     /* [max(V, A)] */
    int32_t *hist;      /* [1 + 8][HIST]: previous text tokens and codes, ring */
    flm_rng rng;
};

#define HIST 256 /* longest repetition window */

static float exp_noise(void *ctx, int i)
{
    (void)i;
    double u = flm_rng_uniform(ctx);
    return (float)(u > 0.0 ? -log1p(-u) : 1e-30); /* Exp(1); never 0 */
}

flm_lm_gen_params flm_lm_gen_default_params(void)
{
    return (flm_lm_gen_params){.mask_special = 1,
                               .use_sampling = 1,
                               .text = flm_sampling_text_defaults(),
                               .audio = flm_sampling_audio_defaults(),
                               .rep_codebooks = 4};
}

int flm_lm_gen_create(flm_lm_gen **out, const flm_lm *lm, int max_steps, const flm_lm_gen_params *p,
                      flm_error *err)
{
    const flm_lm_config *c = &lm->cfg;
    flm_lm_gen *g = flm_calloc(1, sizeof *g);
    int rc;
    *out = NULL;
    if (!g)
        return flm_error_set(err, FLM_ENOMEM, "LM generator: out of memory");
    g->lm = lm;
    g->p = p ? *p : flm_lm_gen_default_params();
    if ((rc = flm_lm_state_create(&g->s, lm, max_steps, 1, err)) < 0) {
        flm_free(g);
        return rc;
    }
    g->hidden = flm_malloc((size_t)c->hidden * sizeof(float));
    g->text_logits = flm_malloc((size_t)c->vocab_size * sizeof(float));
    g->dlogits = flm_malloc((size_t)NCB * c->aud_vocab * sizeof(float));
    size_t nw = (size_t)(c->vocab_size > c->aud_vocab ? c->vocab_size : c->aud_vocab);
    g->work = flm_malloc(nw * sizeof(float));
    g->order = flm_malloc(nw * sizeof(int32_t));
    g->hist = flm_malloc((size_t)(1 + NCB) * HIST * sizeof(int32_t));
    if (g->p.text.rep_window > HIST || g->p.audio.rep_window > HIST) {
        flm_lm_gen_destroy(&g);
        return flm_error_set(err, FLM_EINVAL, "LM generator: repetition window above %d", HIST);
    }
    if (!g->hidden || !g->text_logits || !g->dlogits || !g->work || !g->order || !g->hist) {
        flm_lm_gen_destroy(&g);
        return flm_error_set(err, FLM_ENOMEM, "LM generator: out of memory");
    }
    flm_lm_gen_reset(g);
    *out = g;
    return 0;
}

void flm_lm_gen_destroy(flm_lm_gen **pg)
{
    flm_lm_gen *g = pg ? *pg : NULL;
    if (!g)
        return;
    flm_lm_state_destroy(&g->s);
    flm_free(g->hidden);
    flm_free(g->text_logits);
    flm_free(g->dlogits);
    flm_free(g->work);
    flm_free(g->order);
    flm_free(g->hist);
    flm_free(g);
    *pg = NULL;
}

void flm_lm_gen_reset(flm_lm_gen *g)
{
    const flm_lm_config *c = &g->lm->cfg;
    flm_lm_state_reset(g->s);
    g->step = 0;
    flm_rng_init(&g->rng, g->p.seed, "lm.gen", "sampling");
    /* the initial tokens are restored here, not left at 0 (the published reset defect) */
    g->prev_chosen[0] = c->text_wait;
    for (int k = 0; k < NCB; k++) {
        g->prev_chosen[1 + k] = c->aud_pad;
        g->prev_user[k] = c->aud_pad;
    }
}

/* Chooses channel k's token (0 text, 1 + c codebook c): greedy or sampled, with the repetition
 * window over the previous steps' choices. */
static int32_t pick(flm_lm_gen *g, int k, const float *logits, int n, int32_t skip_a,
                    int32_t skip_b)
{
    flm_sampling sp = k ? g->p.audio : g->p.text;
    if (!g->p.use_sampling)
        sp.temp = 0.0f, sp.rep_penalty = 1.0f;
    if (k > g->p.rep_codebooks)
        sp.rep_penalty = 1.0f;
    int n_recent = g->step < sp.rep_window ? g->step : sp.rep_window;
    int32_t recent[HIST];
    for (int i = 0; i < n_recent; i++)
        recent[i] = g->hist[k * HIST + (g->step - 1 - i) % HIST];
    return flm_sample_token(logits, n, recent, sp.rep_penalty != 1.0f ? n_recent : 0, &sp,
                            exp_noise, &g->rng, g->work, g->order, skip_a, skip_b);
}

int flm_lm_gen_step(flm_lm_gen *g, const int32_t user[NCB], const int32_t *force,
                    int32_t frame[1 + NCB], int *has_frame, flm_error *err)
{
    const flm_lm_config *c = &g->lm->cfg;
    int A = c->aud_vocab, rc;
    *has_frame = 0;
    for (int k = 0; k < NCB; k++)
        if (user[k] < 0 || user[k] >= A)
            return flm_error_set(err, FLM_ERANGE,
                                 "LM step %d: user code %d of codebook %d outside "
                                 "[0, %d)",
                                 g->step, (int)user[k], k, A);
    /* step t reads what it generated at t-1, the user's semantic code of frame t and the user's
     * acoustic codes of frame t-1 (the delay view, MODEL.md 1.5) */
    for (int k = 0; k <= NCB; k++)
        g->input[k] = g->prev_chosen[k];
    g->input[FLM_CH_LISTEN] = user[0];
    for (int k = 1; k < NCB; k++)
        g->input[FLM_CH_LISTEN + k] = g->prev_user[k];
    if ((rc = flm_lm_forward(g->s, g->input, 1, g->hidden, err)) < 0)
        return rc;
    flm_lm_text_logits(g->s, g->hidden, 1, g->text_logits);
    g->chosen[0] =
        force && force[0] >= 0 ? force[0] : pick(g, 0, g->text_logits, c->vocab_size, -1, -1);
    flm_lm_depth_begin(g->s, g->hidden);
    int sa = g->p.mask_special ? c->aud_pad : -1, sb = g->p.mask_special ? c->aud_empty : -1;
    for (int p = 0; p < NCB; p++) {
        float *lg = g->dlogits + (size_t)p * A;
        if ((rc = flm_lm_depth_next(g->s, p, p ? g->chosen[p] : 0, lg, err)) < 0)
            return rc;
        g->chosen[1 + p] =
            force && force[1 + p] >= 0 ? force[1 + p] : pick(g, 1 + p, lg, A, sa, sb);
    }
    if (g->step > 0) {
        frame[0] = g->prev_chosen[0];
        frame[1] = g->prev_chosen[1];
        for (int k = 1; k < NCB; k++)
            frame[1 + k] = g->chosen[1 + k];
        *has_frame = 1;
    }
    memcpy(g->prev_chosen, g->chosen, sizeof g->chosen);
    for (int k = 0; k <= NCB; k++)
        g->hist[k * HIST + g->step % HIST] = g->chosen[k];
    memcpy(g->prev_user, user, sizeof g->prev_user);
    g->step++;
    return 0;
}

const int32_t *flm_lm_gen_input(const flm_lm_gen *g)
{
    return g->input;
}

const float *flm_lm_gen_hidden(const flm_lm_gen *g)
{
    return g->hidden;
}

const float *flm_lm_gen_text_logits(const flm_lm_gen *g)
{
    return g->text_logits;
}

const float *flm_lm_gen_depth_logits(const flm_lm_gen *g)
{
    return g->dlogits;
}

const int32_t *flm_lm_gen_chosen(const flm_lm_gen *g)
{
    return g->chosen;
}

/* ---------------------------------------------------------------- in-memory random model */

typedef struct rand_ctx {
    flm_lm *m;
    uint64_t state;
    float *buf; /* [RAND_ROWS_MAX] staging */
    size_t buf_n;
    flm_error *err;
} rand_ctx;

/* uniform in [-a, a) from splitmix64: fast enough for 8 billion weights */
static float fast_uniform(uint64_t *s, float a)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((float)(z >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a;
}

static int rand_one(void *ctx, const wdesc *d)
{
    rand_ctx *R = ctx;
    flm_lm *m = R->m;
    /* the spread of the checkpoint init: std 0.02 (uniform a = 0.02 sqrt 3), norms 1 +- 0.1 */
    float a = d->init == INIT_NORM ? 0.1f : 0.0346f, base = d->init == INIT_NORM ? 1.0f : 0.0f;
    size_t rows = (size_t)d->shape[0], cols = d->n_dim == 2 ? (size_t)d->shape[1] : 1;
    if (d->dst) {
        float *v = track(m, rows * cols * sizeof *v);
        if (!v)
            return flm_error_set(R->err, FLM_ENOMEM, "out of memory for '%s'", d->name);
        for (size_t i = 0; i < rows * cols; i++)
            v[i] = base + fast_uniform(&R->state, a);
        *d->dst = v;
        return 0;
    }
    size_t qs, ss;
    flm_qmat_sizes(m->wtype, (int)rows, (int)cols, &qs, &ss);
    void *q = track(m, qs);
    float *sc = ss ? track(m, ss) : NULL;
    if (!q || (ss && !sc))
        return flm_error_set(R->err, FLM_ENOMEM, "out of memory for '%s' (%.1f MB)", d->name,
                             (qs + ss) / 1e6);
    flm_qmat_init(d->mat, m->wtype, (int)rows, (int)cols, q, sc);
    size_t per = R->buf_n / cols ? R->buf_n / cols : 1;
    if (per * cols > R->buf_n) { /* one row wider than the staging buffer */
        flm_free(R->buf);
        R->buf_n = 0;
        if (!(R->buf = flm_malloc(cols * sizeof *R->buf)))
            return flm_error_set(R->err, FLM_ENOMEM, "out of memory");
        R->buf_n = cols;
    }
    for (size_t r0 = 0; r0 < rows; r0 += per) {
        size_t n = rows - r0 < per ? rows - r0 : per;
        for (size_t i = 0; i < n * cols; i++)
            R->buf[i] = fast_uniform(&R->state, a);
        flm_qmat slice = flm_qmat_slice(d->mat, (int)r0, (int)n);
        flm_qmat_quantize(&slice, R->buf);
    }
    return 0;
}

int flm_lm_create_random(flm_lm **out, const flm_lm_config *c, flm_wtype wtype, uint64_t seed,
                         flm_error *err)
{
    flm_lm *m = flm_calloc(1, sizeof *m);
    rand_ctx R = {.m = m, .state = seed, .buf_n = 1 << 20, .err = err};
    int rc = FLM_ENOMEM;
    *out = NULL;
    if (!m || wtype < 0 || wtype >= FLM_W_COUNT) {
        flm_free(m);
        return flm_error_set(err, m ? FLM_EINVAL : FLM_ENOMEM, "random model: bad arguments");
    }
    m->cfg = *c;
    m->wtype = wtype;
    m->L = track(m, (size_t)c->n_layers * sizeof *m->L);
    m->D = track(m, (size_t)c->dep_layers * sizeof *m->D);
    R.buf = flm_malloc(R.buf_n * sizeof *R.buf);
    if (m->L && m->D && R.buf) {
        memset(m->L, 0, (size_t)c->n_layers * sizeof *m->L);
        memset(m->D, 0, (size_t)c->dep_layers * sizeof *m->D);
        rc = walk(c, m, rand_one, &R);
    } else {
        flm_error_set(err, rc, "random model: out of memory");
    }
    flm_free(R.buf);
    if (rc < 0) {
        flm_lm_destroy(&m);
        return rc;
    }
    if (c->tie_embeddings)
        m->lm_head = m->text_emb;
    *out = m;
    return 0;
}

/* ---------------------------------------------------------------- writing a loaded model */

typedef struct out_tensor {
    char name[192];
    flm_dtype dtype;
    int64_t shape[2];
    const void *data;
    size_t bytes;
} out_tensor;

typedef struct out_list {
    out_tensor *t;
    size_t n, cap;
} out_list;

static int out_add(out_list *o, const char *name, flm_dtype dt, int64_t r, int64_t c,
                   const void *data, size_t bytes)
{
    if (o->n == o->cap && flm_grow((void **)&o->t, &o->cap, o->n + 1, sizeof *o->t) < 0)
        return FLM_ENOMEM;
    out_tensor *t = &o->t[o->n++];
    *t = (out_tensor){.dtype = dt, .shape = {r, c}, .data = data, .bytes = bytes};
    snprintf(t->name, sizeof t->name, "%s", name);
    return 0;
}

static int out_one(void *ctx, const wdesc *d)
{
    out_list *o = ctx;
    if (d->dst)
        return out_add(o, d->name, FLM_DTYPE_F32, d->shape[0], d->n_dim == 2 ? d->shape[1] : 0,
                       *d->dst, (size_t)d->shape[0] * (d->n_dim == 2 ? d->shape[1] : 1) * 4);
    const flm_qmat *q = d->mat;
    size_t qs, ss;
    flm_qmat_sizes(q->type, q->rows, q->cols, &qs, &ss);
    static const flm_dtype dt[FLM_W_COUNT] = {FLM_DTYPE_F32, FLM_DTYPE_BF16, FLM_DTYPE_I8,
                                              FLM_DTYPE_U8};
    int64_t cols = q->type == FLM_W_Q4 ? (q->cols + 1) / 2 : q->cols;
    if (out_add(o, d->name, dt[q->type], q->rows, cols, q->q, qs) < 0)
        return FLM_ENOMEM;
    if (!ss)
        return 0;
    char name[192];
    snprintf(name, sizeof name, "%s.qscale", d->name);
    return out_add(o, name, FLM_DTYPE_F32, q->rows, (int64_t)(ss / 4 / (size_t)q->rows), q->scale,
                   ss);
}

int flm_lm_write(const flm_lm *m, const char *dir, flm_error *err)
{
    out_list o = {0};
    char path[4096], tmp[4112], *cfg = NULL, *hdr = NULL;
    FILE *f = NULL;
    int rc;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return flm_error_set(err, FLM_EIO, "%s: cannot create: %s", dir, strerror(errno));
    /* walk() writes through its pointers only when loading: a const model is safe here */
    if ((rc = walk(&m->cfg, (flm_lm *)m, out_one, &o)) < 0) {
        rc = flm_error_set(err, rc, "out of memory");
        goto done;
    }
    json_t *h = json_object();
    uint64_t off = 0;
    json_object_set_new(
        h, "__metadata__",
        json_pack("{s:s,s:s}", "format", "pt", "flm.weights", flm_wtype_name(m->wtype)));
    for (size_t i = 0; i < o.n; i++) {
        const out_tensor *t = &o.t[i];
        json_t *shape = t->shape[1]
                            ? json_pack("[I,I]", (json_int_t)t->shape[0], (json_int_t)t->shape[1])
                            : json_pack("[I]", (json_int_t)t->shape[0]);
        json_object_set_new(h, t->name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", flm_dtype_name(t->dtype),
                                      "shape", shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + t->bytes)));
        off += t->bytes;
    }
    char *js = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    size_t hl = js ? (strlen(js) + 7) / 8 * 8 : 0;
    if (!js || !(hdr = flm_malloc(hl + 1)) || !(cfg = flm_lm_config_to_json(&m->cfg))) {
        free(js);
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    memset(hdr, ' ', hl);
    memcpy(hdr, js, strlen(js));
    free(js);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((rc = write_text(path, cfg, err)) < 0)
        goto done;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    uint8_t le[8];
    for (int k = 0; k < 8; k++)
        le[k] = (uint8_t)((uint64_t)hl >> (8 * k));
    int ok = (f = fopen(tmp, "wb")) && fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, hl, f) == hl;
    for (size_t i = 0; i < o.n && ok; i++)
        ok = fwrite(o.t[i].data, 1, o.t[i].bytes, f) == o.t[i].bytes;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) < 0) {
        rc = flm_error_set(err, FLM_EIO, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
    }
done:
    flm_free(o.t);
    flm_free(hdr);
    flm_free(cfg);
    return rc;
}
