/* FLM-Audio RQ-Transformer: the run state, the backbone and the depth head forward passes,
 * teacher forcing and its loss. See lm_internal.h. */
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
#include "flm_profile.h"
#include "flm_quant.h"
#include "flm_rng.h"
#include "flm_safetensors.h"
#include "flm_util.h"

/* ---------------------------------------------------------------- run state */

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
    /* zeroed, so touched now: a long session must not run out of memory at step 8000 */
    alloc_list_init(&s->allocs, ALLOC_HUGE | ALLOC_ZERO);
    s->lm = lm;
    s->max_ctx = max_ctx;
    s->max_rows = max_rows;
    alloc_list *a = &s->allocs;
    size_t R = (size_t)max_rows, d = (size_t)c->hidden, ff = (size_t)c->intermediate;
    size_t kv = (size_t)c->n_kv_heads * c->head_dim, E = (size_t)c->dep_embd;
    int ok = (s->kc = alloc_list_alloc(a, (size_t)c->n_layers * sizeof *s->kc)) &&
             (s->vc = alloc_list_alloc(a, (size_t)c->n_layers * sizeof *s->vc)) &&
             (s->dqkv = alloc_list_alloc(a, (size_t)c->dep_layers * sizeof *s->dqkv));
    for (int l = 0; ok && l < c->n_layers; l++)
        ok = (s->kc[l] = alloc_list_alloc(a, (size_t)max_ctx * kv * sizeof(float))) &&
             (s->vc[l] = alloc_list_alloc(a, (size_t)max_ctx * kv * sizeof(float)));
    for (int l = 0; ok && l < c->dep_layers; l++)
        ok = !!(s->dqkv[l] = alloc_list_alloc(a, R * NCB * 3 * E * sizeof(float)));
    int wide = c->hidden > c->intermediate ? c->hidden : c->intermediate;
    wide = wide > c->dep_embd ? wide : c->dep_embd;
    wide = wide > c->dep_ff ? wide : c->dep_ff;
    ok = ok && (s->wscr = alloc_list_alloc(a, flm_qmat_scratch_size(wide) * sizeof(float))) &&
         (s->row = alloc_list_alloc(a, (d > E ? d : E) * sizeof(float))) &&
         (s->x = alloc_list_alloc(a, R * d * sizeof(float))) &&
         (s->h = alloc_list_alloc(a, R * d * sizeof(float))) &&
         (s->q = alloc_list_alloc(a, R * d * sizeof(float))) &&
         (s->att = alloc_list_alloc(a, R * d * sizeof(float))) &&
         (s->g = alloc_list_alloc(a, R * ff * sizeof(float))) &&
         (s->u = alloc_list_alloc(a, R * ff * sizeof(float))) &&
         (s->scr = alloc_list_alloc(a, flm_attention_scratch_size(max_rows, max_ctx, c->n_heads) *
                                           sizeof(float))) &&
         (s->dx = alloc_list_alloc(a, R * NCB * E * sizeof(float))) &&
         (s->dh = alloc_list_alloc(a, R * NCB * E * sizeof(float))) &&
         (s->datt = alloc_list_alloc(a, R * NCB * E * sizeof(float))) &&
         (s->dg = alloc_list_alloc(a, R * (size_t)c->dep_ff * sizeof(float))) &&
         (s->du = alloc_list_alloc(a, R * (size_t)c->dep_ff * sizeof(float))) &&
         (s->dscr = alloc_list_alloc(a, flm_attention_scratch_size(NCB, NCB, c->dep_heads) *
                                            sizeof(float))) &&
         (s->in = alloc_list_alloc(a, (size_t)max_ctx * FLM_N_CHANNELS * sizeof(int32_t))) &&
         (s->tgt = alloc_list_alloc(a, (size_t)max_ctx * (1 + NCB) * sizeof(int32_t))) &&
         (s->tcls = alloc_list_alloc(a, (size_t)max_ctx * (1 + NCB))) &&
         (s->codes = alloc_list_alloc(a, R * NCB * sizeof(int32_t))) &&
         (s->hid = alloc_list_alloc(a, R * d * sizeof(float))) &&
         (s->tlog = alloc_list_alloc(a, R * (size_t)c->vocab_size * sizeof(float))) &&
         (s->dlog = alloc_list_alloc(a, R * NCB * (size_t)c->aud_vocab * sizeof(float)));
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
    alloc_list_free(&s->allocs);
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
    return s->allocs.size;
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

/* The model's delay view: the profile's delays (one definition for the packers, the reader and
 * the engine; MODEL.md 1.5) applied by libstream's flm_delay_apply. */
static void model_delays(int32_t d[FLM_N_CHANNELS])
{
    flm_profiles p;
    flm_profiles_default(&p);
    memcpy(d, p.model.delays, sizeof p.model.delays);
}

int flm_lm_input_from_sample(const flm_lm_config *c, const int32_t *tokens, const uint8_t *classes,
                             int32_t n_frames, int32_t *input, int32_t *target,
                             uint8_t *target_class, flm_error *err)
{
    int32_t delays[FLM_N_CHANNELS], fill[FLM_N_CHANNELS];
    model_delays(delays);
    for (int k = 0; k < FLM_N_CHANNELS; k++)
        fill[k] = k == FLM_CH_TEXT ? c->text_wait : c->aud_pad;
    /* D = the delayed sample, [17][n_steps] (the model's largest delay is 1) */
    size_t n_steps = (size_t)n_frames + (size_t)flm_delay_max(delays);
    int32_t *D = flm_malloc(FLM_N_CHANNELS * n_steps * sizeof *D);
    uint8_t *C = classes ? flm_malloc(FLM_N_CHANNELS * n_steps) : NULL;
    int rc;
    if (!D || (classes && !C))
        rc = flm_error_set(err, FLM_ENOMEM, "LM: delay view of %d frames: out of memory", n_frames);
    else if ((rc = flm_delay_apply(tokens, n_frames, delays, fill, D, err)) == 0 && classes)
        rc = flm_delay_apply_u8(classes, n_frames, delays, C, err);
    for (size_t t = 0; rc == 0 && t < n_steps; t++)
        for (int k = 0; k < FLM_N_CHANNELS; k++) {
            const int32_t *d = D + (size_t)k * n_steps;
            /* step t reads text and speak of column t-1 (the initial id at t = 0) and listen of
             * column t, and predicts text and speak of column t where the sample has them */
            input[t * FLM_N_CHANNELS + k] = k >= FLM_CH_LISTEN ? d[t] : t ? d[t - 1] : fill[k];
            if (k < FLM_CH_LISTEN) {
                int64_t src = (int64_t)t - delays[k];
                int in = src >= 0 && src < n_frames;
                target[t * (1 + NCB) + k] = in ? d[t] : -1;
                if (target_class)
                    target_class[t * (1 + NCB) + k] =
                        in && classes ? C[(size_t)k * n_steps + t] : FLM_LOSS_NONE;
            }
        }
    flm_free(D);
    flm_free(C);
    return rc;
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
    int32_t delays[FLM_N_CHANNELS];
    model_delays(delays);
    const flm_lm_config *c = &s->lm->cfg;
    int n_steps = n_frames + 1, R = s->max_rows, V = c->vocab_size, A = c->aud_vocab, rc;
    if (n_frames < 1 || n_steps > s->max_ctx)
        return flm_error_set(err, FLM_ERANGE, "LM score: %d frames (context holds %d steps)",
                             n_frames, s->max_ctx);
    if ((rc = flm_lm_input_from_sample(c, tokens, classes, n_frames, s->in, s->tgt, s->tcls, err)) <
        0)
        return rc;
    for (int t = 0; t < n_steps; t++)
        for (int k = 0; k <= NCB; k++) {
            int32_t v = s->tgt[(size_t)t * (1 + NCB) + k];
            int lim = k ? A : V;
            if (s->tcls[(size_t)t * (1 + NCB) + k] != FLM_LOSS_NONE && (v < 0 || v >= lim))
                return flm_error_set(err, FLM_ERANGE,
                                     "LM score: frame %d, channel %d: token %d outside [0, %d)",
                                     t - delays[k], k, (int)v, lim);
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
