/* FLM-Audio RQ-Transformer: streaming generation and sampling. See lm_internal.h. */
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
