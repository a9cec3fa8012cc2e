/* FLM-Audio RQ-Transformer: config.json, presets and the checkpoint tensor table.
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
#include "lm_internal.h"

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
int lm_walk(const flm_lm_config *c, flm_lm *m, wfn fn, void *ctx)
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
    lm_walk(c, NULL, count_one, &n);
    return n;
}
