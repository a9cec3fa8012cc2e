/* Golden: the published FLM-Audio classes (cofe-ai/flm-audio 41d768c9, PyTorch float32) on a
 * tiny random model, from ../shared/testvectors/flm-lm (copied to tests/golden/flm-lm; the
 * sampler is driven by the recorded logits and Exp(1) draws of the `sample.*` run). Floats within
 * 1e-5 absolute (2e-5 for the hidden state), the tolerance stated with the vectors; greedy tokens
 * identical, except where the reference's own top-1/top-2 margin is below the tolerance: there the
 * reference token drives generation. Also: teacher-forced T steps == T streaming steps, and
 * generation after a reset == a fresh run. usage: test_lm_golden DIR   (DIR/model: config +
 * weights, DIR/flm_vectors.safetensors) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_lm.h"
#include "flm_safetensors.h"
#include "flm_sampling.h"
#include "tap.h"
#include "test_util.h"

#define TOL 1e-5
#define TOL_HIDDEN 2e-5
#define NCH FLM_N_CHANNELS

static flm_safetensors *vec;

static const void *get(const char *name, int64_t numel)
{
    const flm_st_info *in = flm_safetensors_find(vec, name);
    if (!in || (int64_t)(in->size / 4) != numel) {
        tap_diag("vector %s missing or not %lld elements", name, (long long)numel);
        return NULL;
    }
    return in->data;
}

/* top-1 minus top-2 of a row */
static double margin(const float *x, int n)
{
    double a = -INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > a)
            b = a, a = x[i];
        else if (x[i] > b)
            b = x[i];
    return a - b;
}

static void test_teacher_forced(flm_lm *lm)
{
    const flm_lm_config *c = flm_lm_get_config(lm);
    int T = 24, d = c->hidden, V = c->vocab_size, A = c->aud_vocab;
    const int32_t *in = get("tf.input_tokens", T * NCH), *codes = get("tf.depth_codes", T * 8);
    const float *emb = get("tf.embeddings", T * d), *l0 = get("tf.layer_out.0", T * d);
    const float *l1 = get("tf.layer_out.1", T * d), *hid = get("tf.hidden", T * d);
    const float *tl = get("tf.text_logits", T * V), *dl = get("tf.depth_logits", T * 8 * A);
    if (!in || !codes || !emb || !l0 || !l1 || !hid || !tl || !dl) {
        TAP_OK(0, "teacher-forced vectors present");
        return;
    }
    flm_lm_state *s = NULL;
    flm_error err = {0};
    TAP_OK(flm_lm_state_create(&s, lm, 64, T, &err) == 0, "state: %s", err.msg);
    float *trace = flm_malloc((size_t)(c->n_layers + 1) * T * d * 4);
    float *h = flm_malloc((size_t)T * d * 4), *logits = flm_malloc((size_t)T * V * 4);
    float *dlog = flm_malloc((size_t)T * 8 * A * 4);
    flm_lm_state_trace(s, trace);
    TAP_OK(flm_lm_forward(s, in, T, h, &err) == 0, "forward 24 steps: %s", err.msg);
    double e;
    e = max_abs(trace, emb, (size_t)T * d);
    TAP_OK(e < TOL, "tf.embeddings: max |diff| %.2e", e);
    e = max_abs(trace + (size_t)T * d, l0, (size_t)T * d);
    TAP_OK(e < TOL, "tf.layer_out.0: max |diff| %.2e", e);
    e = max_abs(trace + (size_t)2 * T * d, l1, (size_t)T * d);
    TAP_OK(e < TOL, "tf.layer_out.1: max |diff| %.2e", e);
    e = max_abs(h, hid, (size_t)T * d);
    TAP_OK(e < TOL_HIDDEN, "tf.hidden: max |diff| %.2e", e);
    flm_lm_text_logits(s, h, T, logits);
    e = max_abs(logits, tl, (size_t)T * V);
    TAP_OK(e < TOL, "tf.text_logits: max |diff| %.2e", e);
    TAP_OK(flm_lm_depth_forward(s, h, codes, T, dlog, &err) == 0, "depth: %s", err.msg);
    e = max_abs(dlog, dl, (size_t)T * 8 * A);
    TAP_OK(e < TOL, "tf.depth_logits: max |diff| %.2e", e);

    /* the same 24 steps one at a time (KV cache) and the depth head position by position */
    flm_lm_state_trace(s, NULL);
    flm_lm_state_reset(s);
    float *h1 = flm_malloc((size_t)d * 4), *l1s = flm_malloc((size_t)V * 4);
    float *d1 = flm_malloc((size_t)8 * A * 4);
    double eh = 0, el = 0, ed = 0;
    for (int t = 0; t < T; t++) {
        if (flm_lm_forward(s, in + (size_t)t * NCH, 1, h1, &err) < 0)
            break;
        flm_lm_text_logits(s, h1, 1, l1s);
        double a = max_abs(h1, h + (size_t)t * d, (size_t)d);
        double b = max_abs(l1s, logits + (size_t)t * V, (size_t)V);
        eh = a > eh ? a : eh;
        el = b > el ? b : el;
        flm_lm_depth_begin(s, h1);
        for (int p = 0; p < 8; p++) {
            flm_lm_depth_next(s, p, p ? codes[t * 8 + p - 1] : 0, d1 + (size_t)p * A, &err);
            double q = max_abs(d1 + (size_t)p * A, dlog + ((size_t)t * 8 + p) * A, (size_t)A);
            ed = q > ed ? q : ed;
        }
    }
    TAP_OK(flm_lm_state_pos(s) == T, "24 single steps ran");
    TAP_OK(eh < 1e-5 && el < 1e-5 && ed < 1e-5,
           "teacher-forced == streaming: hidden %.2e, text logits %.2e, depth logits %.2e", eh, el,
           ed);
    flm_free(h1), flm_free(l1s), flm_free(d1);
    flm_free(trace), flm_free(h), flm_free(logits), flm_free(dlog);
    flm_lm_state_destroy(&s);
}

/* Greedy generation; with reset, the stream is first run 5 steps with other user codes, then
 * reset: the outputs must be those of a fresh stream. */
static void test_stream(flm_lm *lm, int with_reset)
{
    const flm_lm_config *c = flm_lm_get_config(lm);
    int T = 20, d = c->hidden, V = c->vocab_size;
    const int32_t *user = get("stream.user_codes", T * 8),
                  *inp = get("stream.input_tokens", T * NCH);
    const int32_t *tt = get("stream.text_tokens", T), *sc = get("stream.speak_codes", T * 8);
    const int32_t *ot = get("stream.out_tokens", (T - 1) * 9);
    const float *hid = get("stream.hidden", T * d), *tl = get("stream.text_logits", T * V);
    if (!user || !inp || !tt || !sc || !ot || !hid || !tl) {
        TAP_OK(0, "stream vectors present");
        return;
    }
    flm_lm_gen *g = NULL;
    flm_error err = {0};
    flm_lm_gen_params gp = flm_lm_gen_default_params();
    gp.use_sampling = 0;
    TAP_OK(flm_lm_gen_create(&g, lm, 64, &gp, &err) == 0, "generator: %s", err.msg);
    int32_t frame[9];
    int has = 0;
    if (with_reset) {
        for (int t = 0; t < 5; t++) {
            int32_t other[8];
            for (int k = 0; k < 8; k++)
                other[k] = (user[(T - 1 - t) * 8 + k] + 7 * k + 1) % 2048;
            flm_lm_gen_step(g, other, NULL, frame, &has, &err);
        }
        flm_lm_gen_reset(g);
    }
    int bad_in = 0, bad_tok = 0, bad_out = 0, forced = 0, first_out = -1;
    double eh = 0, el = 0;
    for (int t = 0; t < T; t++) {
        /* the reference margin of each decision: below the tolerance, follow the reference */
        int32_t force[9];
        for (int k = 0; k < 9; k++)
            force[k] = -1;
        if (margin(tl + (size_t)t * V, V) < 2 * TOL)
            force[0] = tt[t], forced++;
        if (flm_lm_gen_step(g, user + (size_t)t * 8, force, frame, &has, &err) < 0) {
            TAP_OK(0, "step %d: %s", t, err.msg);
            break;
        }
        const int32_t *in = flm_lm_gen_input(g), *ch = flm_lm_gen_chosen(g);
        for (int k = 0; k < NCH; k++)
            bad_in += in[k] != inp[t * NCH + k];
        double a = max_abs(flm_lm_gen_hidden(g), hid + (size_t)t * d, (size_t)d);
        double b = max_abs(flm_lm_gen_text_logits(g), tl + (size_t)t * V, (size_t)V);
        eh = a > eh ? a : eh;
        el = b > el ? b : el;
        bad_tok += ch[0] != tt[t];
        for (int k = 0; k < 8; k++) {
            /* depth logits are not in the vectors: a wrong code whose own margin is tiny would
             * be reported as a mismatch, so every code is checked */
            bad_tok += ch[1 + k] != sc[t * 8 + k];
        }
        if (has) {
            if (first_out < 0)
                first_out = t;
            for (int k = 0; k < 9; k++)
                bad_out += frame[k] != ot[(t - 1) * 9 + k];
        }
    }
    const char *what = with_reset ? "after reset" : "fresh";
    TAP_OK(bad_in == 0, "stream (%s): backbone input tokens at every step (%d differ)", what,
           bad_in);
    TAP_OK(eh < TOL_HIDDEN && el < TOL, "stream (%s): hidden %.2e, text logits %.2e", what, eh, el);
    TAP_OK(bad_tok == 0, "stream (%s): greedy text tokens and speak codes (%d differ, %d forced)",
           what, bad_tok, forced);
    TAP_OK(first_out == 1 && bad_out == 0, "stream (%s): output frames from step 1 (%d differ)",
           what, bad_out);
    flm_lm_gen_destroy(&g);
}

typedef struct noise_src {
    const float *x; /* the recorded draws, in descending-probability order */
} noise_src;

static float recorded(void *ctx, int i)
{
    return ((noise_src *)ctx)->x[i];
}

/* Upstream's default sampling, replayed from the recorded raw logits and exponential draws,
 * with the 2048/2049 mask off (the recorded run had none): every token must be reproduced. */
static void test_sampler(void)
{
    int T = 20, V = 1024, A = 2050;
    const float *tn = get("sample.text_noise", T * V), *an = get("sample.audio_noise", T * 8 * A);
    const float *tl = get("sample.text_logits", T * V),
                *dl = get("sample.depth_logits_raw", T * 8 * A);
    const int32_t *tt = get("sample.text_tokens", T), *sc = get("sample.speak_codes", T * 8);
    if (!tn || !an || !tl || !dl || !tt || !sc) {
        TAP_OK(0, "sampling vectors present");
        return;
    }
    float *work = flm_malloc((size_t)A * 4);
    int32_t *order = flm_malloc((size_t)A * 4), recent[64];
    flm_sampling st = flm_sampling_text_defaults(), sa = flm_sampling_audio_defaults();
    int bad_text = 0, bad_audio = 0;
    for (int t = 0; t < T; t++) {
        int n = t < st.rep_window ? t : st.rep_window;
        for (int i = 0; i < n; i++)
            recent[i] = tt[t - 1 - i];
        noise_src ns = {tn + (size_t)t * V};
        bad_text += flm_sample_token(tl + (size_t)t * V, V, recent, n, &st, recorded, &ns, work,
                                     order, -1, -1) != tt[t];
        for (int c = 0; c < 8; c++) {
            for (int i = 0; i < n; i++)
                recent[i] = sc[(t - 1 - i) * 8 + c];
            noise_src na = {an + ((size_t)t * 8 + c) * A};
            int32_t id = flm_sample_token(dl + ((size_t)t * 8 + c) * A, A, recent, c < 4 ? n : 0,
                                          &sa, recorded, &na, work, order, -1, -1);
            bad_audio += id != sc[t * 8 + c];
        }
    }
    TAP_OK(bad_text == 0, "sampled text tokens reproduced (20 draws, %d differ)", bad_text);
    TAP_OK(bad_audio == 0, "sampled speak codes reproduced (160 draws, %d differ)", bad_audio);
    flm_free(work), flm_free(order);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_lm_golden DIR\n");
        return 2;
    }
    flm_kernels_init(2);
    char p[2048];
    flm_error err = {0};
    snprintf(p, sizeof p, "%s/flm_vectors.safetensors", argv[1]);
    if (flm_safetensors_open(&vec, p, &err) < 0) {
        TAP_OK(0, "open vectors: %s", err.msg);
        return tap_done();
    }
    flm_lm *lm = NULL;
    snprintf(p, sizeof p, "%s/model", argv[1]);
    if (flm_lm_load(&lm, p, FLM_W_F32, 0, &err) < 0) {
        TAP_OK(0, "load: %s", err.msg);
        flm_safetensors_close(&vec);
        return tap_done();
    }
    const flm_lm_config *c = flm_lm_get_config(lm);
    TAP_OK(c->vocab_size == 1024 && c->text_wait == 1000 && c->dep_ff == 85 && c->head_dim == 16,
           "config: vocab %d, wait %d, depth ff %d, head dim %d", c->vocab_size, c->text_wait,
           c->dep_ff, c->head_dim);
    test_teacher_forced(lm);
    test_stream(lm, 0);
    test_stream(lm, 1);
    test_sampler();
    flm_lm_destroy(&lm);
    flm_safetensors_close(&vec);
    return tap_done();
}
