/* FLM-Audio LM beyond the golden vectors: the teacher-forced loss (flm_lm_score, behind flm
 * validate) against an independent computation from the model's step-by-step logits, the
 * sample's delay view (libstream) and the class weights, also with the text channel shifted;
 * bad checkpoints (missing / mis-shaped tensor, truncated file, config vs weights) and config
 * errors, mapped or copied; no allocation while generating; weights computed from the mapping
 * (FLM_LM_LOAD_MAPPED) give the same bits as copied ones. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_lm.h"
#include "flm_rng.h"
#include "flm_safetensors.h"
#include "flm_sampling.h"
#include "flm_util.h"
#include "tap.h"

#define NCH FLM_N_CHANNELS

static char dir[512];

static flm_lm_config small_config(void)
{
    flm_lm_config c;
    flm_lm_config_preset("tiny", &c, NULL);
    c.vocab_size = 1200; /* keeps the independent text softmax cheap */
    c.text_wait = 1100;
    return c;
}

/* A random aligned sample with default classes: text sentences + waits, speech on speak. */
static flm_sample *make_sample(const flm_lm_config *c, int n, uint64_t seed)
{
    flm_sample *s = NULL;
    flm_sample_create(&s, n, NULL);
    flm_rng r;
    flm_rng_init(&r, seed, "lm-sample", "test");
    for (int t = 0; t < n; t++) {
        int talk = (t / 7) % 2;
        FLM_TOK(s, FLM_CH_TEXT, t) =
            talk ? (int32_t)flm_rng_below(&r, (uint32_t)c->vocab_size) : c->text_wait;
        for (int k = 0; k < 8; k++) {
            FLM_TOK(s, FLM_CH_SPEAK + k, t) =
                t % 5 == 4 ? c->aud_empty : (int32_t)flm_rng_below(&r, 2048);
            FLM_TOK(s, FLM_CH_LISTEN + k, t) =
                t % 3 == 0 ? c->aud_empty : (int32_t)flm_rng_below(&r, 2048);
        }
    }
    flm_sample_default_classes(s, c->text_wait, c->aud_empty, c->aud_pad);
    return s;
}

static void ce(flm_lm_loss *l, int cls, const float *x, int n, int target)
{
    double mx = -INFINITY, sum = 0;
    int best = 0;
    for (int i = 0; i < n; i++)
        if (x[i] > mx)
            mx = x[i], best = i;
    for (int i = 0; i < n; i++)
        sum += exp((double)x[i] - mx);
    l->sum[cls] += -((double)x[target] - mx - log(sum));
    l->count[cls]++;
    l->correct[cls] += best == target;
}

/* The loss computed independently: delay view from libstream, one backbone step at a time,
 * the depth head position by position with the delayed speak codes as its inputs. */
static void reference_loss(flm_lm *lm, const flm_sample *smp, flm_lm_loss *out)
{
    const flm_lm_config *c = flm_lm_get_config(lm);
    int n = smp->n_frames, N = n + 1, V = c->vocab_size, A = c->aud_vocab;
    const int32_t delays[NCH] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1};
    int32_t fill[NCH];
    for (int k = 0; k < NCH; k++)
        fill[k] = k == 0 ? c->text_wait : c->aud_pad;
    int32_t *D = flm_malloc((size_t)NCH * N * 4);
    uint8_t *DC = flm_malloc((size_t)NCH * N);
    flm_delay_apply(smp->tokens, n, delays, fill, D, NULL);
    flm_delay_apply_u8(smp->loss_class, n, delays, DC, NULL);
    flm_lm_state *s = NULL;
    flm_lm_state_create(&s, lm, N, 1, NULL);
    float *h = flm_malloc((size_t)c->hidden * 4), *tl = flm_malloc((size_t)V * 4);
    float *dl = flm_malloc((size_t)A * 4);
    memset(out, 0, sizeof *out);
    for (int t = 0; t < N; t++) {
        int32_t in[NCH];
        for (int k = 0; k < NCH; k++) /* model step t: own channels of column t-1 */
            in[k] = k < FLM_CH_LISTEN ? (t ? D[k * N + t - 1] : fill[k]) : D[k * N + t];
        flm_lm_forward(s, in, 1, h, NULL);
        flm_lm_text_logits(s, h, 1, tl);
        if (DC[t] != FLM_LOSS_NONE)
            ce(out, DC[t], tl, V, D[t]);
        flm_lm_depth_begin(s, h);
        for (int p = 0; p < 8; p++) {
            int ch = FLM_CH_SPEAK + p;
            flm_lm_depth_next(s, p, p ? D[(ch - 1) * N + t] : 0, dl, NULL);
            if (DC[ch * N + t] != FLM_LOSS_NONE)
                ce(out, DC[ch * N + t], dl, A, D[ch * N + t]);
        }
    }
    flm_free(D), flm_free(DC), flm_free(h), flm_free(tl), flm_free(dl);
    flm_lm_state_destroy(&s);
}

static void compare_loss(const flm_lm_loss *a, const flm_lm_loss *b, const char *what)
{
    double worst = 0;
    int counts = 1;
    for (int k = 0; k < FLM_N_LOSS_CLASSES; k++) {
        double e = fabs(a->sum[k] - b->sum[k]) / (fabs(b->sum[k]) + 1e-9);
        worst = e > worst ? e : worst;
        counts &= a->count[k] == b->count[k] && a->correct[k] == b->correct[k];
    }
    TAP_OK(worst < 1e-5 && counts, "%s: loss per class == independent computation (rel %.1e)", what,
           worst);
    const double w[FLM_N_LOSS_CLASSES] = {0, 1.0, 0.5, 1.0, 0.01};
    double num = 0, den = 0;
    for (int k = 1; k < FLM_N_LOSS_CLASSES; k++)
        num += w[k] * b->sum[k], den += w[k] * (double)b->count[k];
    TAP_OK(fabs(flm_lm_loss_weighted(a, w) - num / den) < 1e-5 * (num / den),
           "%s: weighted loss %.6f == %.6f", what, flm_lm_loss_weighted(a, w), num / den);
}

static void test_score(flm_lm *lm)
{
    const flm_lm_config *c = flm_lm_get_config(lm);
    flm_sample *smp = make_sample(c, 40, 7);
    flm_lm_state *s = NULL;
    flm_error err = {0};
    TAP_OK(flm_lm_state_create(&s, lm, 64, 8, &err) == 0, "state: %s", err.msg);
    flm_lm_loss a = {0}, ref;
    TAP_OK(flm_lm_score(s, smp->tokens, smp->loss_class, smp->n_frames, &a, NULL, &err) == 0,
           "score: %s", err.msg);
    reference_loss(lm, smp, &ref);
    TAP_OK(ref.count[FLM_LOSS_SEMANTIC] > 20 && ref.count[FLM_LOSS_ACOUSTIC] > 150 &&
               ref.count[FLM_LOSS_MONOLOGUE] > 10 && ref.count[FLM_LOSS_WAIT] > 10,
           "every class is scored (%lld %lld %lld %lld)", (long long)ref.count[1],
           (long long)ref.count[2], (long long)ref.count[3], (long long)ref.count[4]);
    compare_loss(&a, &ref, "aligned sample");

    /* the text channel shifted right by 3 frames (a misaligned monologue) */
    flm_sample *sh = NULL;
    flm_sample_clone(&sh, smp, NULL);
    for (int t = 0; t < sh->n_frames; t++) {
        int src = t - 3;
        FLM_TOK(sh, FLM_CH_TEXT, t) = src >= 0 ? FLM_TOK(smp, FLM_CH_TEXT, src) : c->text_wait;
        FLM_CLS(sh, FLM_CH_TEXT, t) = src >= 0 ? FLM_CLS(smp, FLM_CH_TEXT, src) : FLM_LOSS_WAIT;
    }
    flm_lm_loss b = {0}, refb;
    TAP_OK(flm_lm_score(s, sh->tokens, sh->loss_class, sh->n_frames, &b, NULL, &err) == 0,
           "score shifted: %s", err.msg);
    reference_loss(lm, sh, &refb);
    compare_loss(&b, &refb, "text shifted by 3 frames");
    TAP_OK(fabs(b.sum[FLM_LOSS_MONOLOGUE] - a.sum[FLM_LOSS_MONOLOGUE]) > 1e-3,
           "the shift changes the monologue loss (%.4f -> %.4f)", a.sum[FLM_LOSS_MONOLOGUE],
           b.sum[FLM_LOSS_MONOLOGUE]);

    /* a stop request is honoured; a target outside the vocabulary is an error naming it */
    volatile int stop = 1;
    flm_lm_loss z = {0};
    TAP_OK(flm_lm_score(s, smp->tokens, smp->loss_class, smp->n_frames, &z, &stop, &err) == 1 &&
               z.count[FLM_LOSS_WAIT] == 0,
           "stop flag: returns 1 before scoring");
    FLM_TOK(sh, FLM_CH_SPEAK + 2, 9) = 5000;
    FLM_CLS(sh, FLM_CH_SPEAK + 2, 9) = FLM_LOSS_ACOUSTIC;
    TAP_OK(flm_lm_score(s, sh->tokens, sh->loss_class, sh->n_frames, &z, NULL, &err) ==
                   FLM_ERANGE &&
               strstr(err.msg, "frame 9, channel 3: token 5000"),
           "bad target: %s", err.msg);
    flm_sample_destroy(&smp);
    flm_sample_destroy(&sh);
    flm_lm_state_destroy(&s);
}

static void test_no_alloc(flm_lm *lm)
{
    flm_lm_gen *g = NULL;
    flm_error err = {0};
    flm_lm_gen_create(&g, lm, 32, NULL, &err);
    int32_t user[8] = {1, 2, 3, 4, 5, 6, 7, 8}, frame[9];
    int has, bad = 0, special = 0;
    int64_t before = flm_alloc_count();
    for (int t = 0; t < 20; t++) {
        bad |= flm_lm_gen_step(g, user, NULL, frame, &has, &err) < 0;
        for (int k = 1; k < 9 && has; k++)
            special += frame[k] >= 2048;
    }
    TAP_OK(!bad && flm_alloc_count() == before, "20 generation steps allocate nothing");
    TAP_OK(special == 0, "generated speech codes never 2048/2049");
    flm_lm_gen_destroy(&g);
}

static float fixed_noise(void *ctx, int i)
{
    (void)ctx;
    return 1.0f + 0.01f * (float)i;
}

/* The mask: even when 2048/2049 hold nearly all the probability they are never picked. */
static void test_mask(void)
{
    float logits[2050], work[2050];
    int32_t order[2050];
    for (int i = 0; i < 2050; i++)
        logits[i] = (float)(i % 7) * 0.01f;
    logits[2048] = logits[2049] = 30.0f;
    flm_sampling sp = flm_sampling_audio_defaults();
    int32_t a =
        flm_sample_token(logits, 2050, NULL, 0, &sp, fixed_noise, NULL, work, order, -1, -1);
    int32_t b =
        flm_sample_token(logits, 2050, NULL, 0, &sp, fixed_noise, NULL, work, order, 2048, 2049);
    TAP_OK(a >= 2048 && b < 2048 && b % 7 == 6, "unmasked picks %d, masked picks %d", a, b);
    sp.temp = 0.0f;
    b = flm_sample_token(logits, 2050, NULL, 0, &sp, fixed_noise, NULL, work, order, 2048, 2049);
    TAP_OK(b == 6, "greedy with the mask: %d", b);
    int32_t recent[1] = {6};
    sp.rep_penalty = 2.0f;
    b = flm_sample_token(logits, 2050, recent, 1, &sp, fixed_noise, NULL, work, order, 2048, 2049);
    TAP_OK(b == 13, "repetition penalty moves greedy from 6 to %d", b);
}

/* Sampled generation is reproducible from the seed and differs across seeds. */
static void test_seed(flm_lm *lm)
{
    int32_t out[3][40][9];
    uint64_t seeds[3] = {5, 5, 6};
    for (int r = 0; r < 3; r++) {
        flm_lm_gen_params gp = flm_lm_gen_default_params();
        gp.seed = seeds[r];
        gp.text.temp = 1.0f; /* a random model: make the text draws matter too */
        flm_lm_gen *g = NULL;
        flm_lm_gen_create(&g, lm, 64, &gp, NULL);
        int32_t user[8] = {0};
        int has;
        for (int t = 0; t <= 40; t++)
            flm_lm_gen_step(g, user, NULL, t ? out[r][t - 1] : out[r][0], &has, NULL);
        flm_lm_gen_destroy(&g);
    }
    TAP_OK(!memcmp(out[0], out[1], sizeof out[0]), "same seed, same generation");
    TAP_OK(memcmp(out[0], out[2], sizeof out[0]) != 0, "other seed, other generation");
}

/* The weight formats on a bf16 checkpoint: bf16 in memory holds exactly the stored values (same
 * loss as float32 up to summation order); int8 / 4-bit cost a little, measured as the loss
 * difference and the top-1 agreement of the text and depth logits with float32. */
static void test_formats(void)
{
    char sub[700];
    snprintf(sub, sizeof sub, "%s/bf16", dir);
    flm_lm_config c = small_config();
    flm_error err = {0};
    TAP_OK(flm_lm_write_random(&c, 12, FLM_DTYPE_BF16, 0, sub, &err) == 0, "bf16 checkpoint");
    flm_sample *smp = make_sample(&c, 40, 9);
    int N = 41, V = c.vocab_size, A = c.aud_vocab;
    float *ref_t = flm_malloc((size_t)N * V * 4), *ref_d = flm_malloc((size_t)N * 8 * A * 4);
    float *t = flm_malloc((size_t)N * V * 4), *dd = flm_malloc((size_t)N * 8 * A * 4);
    int32_t *in = flm_malloc((size_t)N * NCH * 4), *tg = flm_malloc((size_t)N * 9 * 4);
    int32_t *codes = flm_malloc((size_t)N * 8 * 4);
    float *h = flm_malloc((size_t)N * c.hidden * 4);
    flm_lm_loss l0 = {0}, ls0 = {0};
    const double w[FLM_N_LOSS_CLASSES] = {0, 1.0, 0.5, 1.0, 0.01};
    static const double max_loss_diff[FLM_W_COUNT] = {0, 1e-5, 2e-3, 3e-2};
    for (int f = 0; f < FLM_W_COUNT; f++) {
        flm_lm *lm = NULL;
        flm_lm_state *s = NULL;
        if (flm_lm_load(&lm, sub, (flm_wtype)f, 0, &err) < 0 ||
            flm_lm_state_create(&s, lm, 64, N, &err) < 0) {
            TAP_OK(0, "load %s: %s", flm_wtype_name((flm_wtype)f), err.msg);
            flm_lm_destroy(&lm);
            break;
        }
        TAP_EQ_INT(flm_lm_input_from_sample(flm_lm_get_config(lm), smp->tokens, NULL, 40, in, tg,
                                            NULL, NULL),
                   0, "teacher-forcing view");
        for (int i = 0; i < N * 8; i++)
            codes[i] = tg[(i / 8) * 9 + 1 + i % 8] >= 0 ? tg[(i / 8) * 9 + 1 + i % 8] : 2048;
        flm_lm_forward(s, in, N, h, &err);
        flm_lm_text_logits(s, h, N, f ? t : ref_t);
        flm_lm_depth_forward(s, h, codes, N, f ? dd : ref_d, &err);
        flm_lm_loss l = {0};
        flm_lm_score(s, smp->tokens, smp->loss_class, 40, f ? &l : &l0, NULL, &err);
        if (f) {
            int agree_t = 0, agree_d = 0;
            for (int i = 0; i < N; i++) {
                int a = 0, b = 0;
                for (int k = 1; k < V; k++) {
                    a = t[(size_t)i * V + k] > t[(size_t)i * V + a] ? k : a;
                    b = ref_t[(size_t)i * V + k] > ref_t[(size_t)i * V + b] ? k : b;
                }
                agree_t += a == b;
                for (int p = 0; p < 8; p++) {
                    const float *x = dd + ((size_t)i * 8 + p) * A,
                                *y = ref_d + ((size_t)i * 8 + p) * A;
                    a = b = 0;
                    for (int k = 1; k < A; k++) {
                        a = x[k] > x[a] ? k : a;
                        b = y[k] > y[b] ? k : b;
                    }
                    agree_d += a == b;
                }
            }
            double d = fabs(flm_lm_loss_weighted(&l, w) - flm_lm_loss_weighted(&l0, w));
            TAP_OK(d <= max_loss_diff[f] && (f > 1 || (agree_t == N && agree_d == 8 * N)),
                   "%s weights: weighted loss %+.2e vs f32, top-1 agreement text %d/%d, depth "
                   "%d/%d",
                   flm_wtype_name((flm_wtype)f),
                   flm_lm_loss_weighted(&l, w) - flm_lm_loss_weighted(&l0, w), agree_t, N, agree_d,
                   8 * N);
        }
        /* the same scoring one step at a time: the streaming products (int8 activations for
         * q8 / q4) */
        flm_lm_state *s1 = NULL;
        flm_lm_loss l1 = {0};
        if (flm_lm_state_create(&s1, lm, 64, 1, &err) == 0)
            flm_lm_score(s1, smp->tokens, smp->loss_class, 40, f ? &l1 : &ls0, NULL, &err);
        flm_lm_state_destroy(&s1);
        if (f) {
            double d1 = flm_lm_loss_weighted(&l1, w) - flm_lm_loss_weighted(&ls0, w);
            double d2 = flm_lm_loss_weighted(&l1, w) - flm_lm_loss_weighted(&l, w);
            /* f32 / bf16 steps equal their teacher-forced pass; q8 / q4 differ by the int8
             * activations' rounding, well below the format's own cost */
            double same = f == FLM_W_BF16 ? 1e-6 : max_loss_diff[f] / 4;
            TAP_OK(fabs(d1) <= max_loss_diff[f] && fabs(d2) <= same,
                   "%s weights, one step at a time: weighted loss %+.2e vs f32, %+.2e vs its "
                   "teacher-forced pass (max %.0e)",
                   flm_wtype_name((flm_wtype)f), d1, d2, same);
        } else {
            double d = flm_lm_loss_weighted(&ls0, w) - flm_lm_loss_weighted(&l0, w);
            TAP_OK(fabs(d) <= 1e-6, "f32 one step at a time = teacher-forced: %+.1e", d);
        }
        TAP_OK(flm_lm_weight_size(lm) > 0, "%s: %.2f MB of weights", flm_wtype_name((flm_wtype)f),
               flm_lm_weight_size(lm) / 1e6);
        flm_lm_state_destroy(&s);
        flm_lm_destroy(&lm);
    }
    flm_sample_destroy(&smp);
    flm_free(ref_t), flm_free(ref_d), flm_free(t), flm_free(dd), flm_free(in), flm_free(tg);
    flm_free(codes), flm_free(h);
}

/* Every allocation of load, state and generator creation made to fail in turn: FLM_ENOMEM, no
 * half-made object, no leak (ASan), no crash. */
static void test_alloc_failures(flm_wtype wtype, int flags)
{
    int ok = 1, n = 0;
    for (int k = 0; k < 2000; k++) {
        flm_lm *lm = NULL;
        flm_lm_state *s = NULL;
        flm_lm_gen *g = NULL;
        flm_error err = {0};
        flm_alloc_fail_after(k);
        int rc = flm_lm_load(&lm, dir, wtype, flags, &err), clean = !lm;
        if (rc == 0) {
            rc = flm_lm_state_create(&s, lm, 16, 4, &err);
            clean = !s;
        }
        if (rc == 0) {
            rc = flm_lm_gen_create(&g, lm, 16, NULL, &err);
            clean = !g;
        }
        flm_alloc_fail_after(-1);
        flm_lm_gen_destroy(&g);
        flm_lm_state_destroy(&s);
        flm_lm_destroy(&lm);
        if (rc == 0)
            break;
        ok &= rc == FLM_ENOMEM && clean; /* the failing call left no half-made object */
        if (rc != FLM_ENOMEM)
            tap_diag("allocation %d: %s", k, err.msg);
        n++;
    }
    TAP_OK(ok && n > 100,
           "%s%s: %d allocation failure points (load, state, generator) -> FLM_ENOMEM",
           flm_wtype_name(wtype), flags ? " mapped" : "", n);
}

/* --- bad checkpoints ------------------------------------------------------------------- */

static int run(const char *cmd)
{
    return system(cmd);
}

/* Copies dir to dir/bad with model.safetensors rebuilt: tensor `target` dropped or reshaped. */
enum { EDIT_DROP, EDIT_RESHAPE };
static void make_bad(const char *target, int edit, const char *bad)
{
    char p[1200];
    snprintf(p, sizeof p, "rm -rf %s && mkdir -p %s && cp %s/config.json %s/", bad, bad, dir, bad);
    run(p);
    flm_safetensors *st = NULL;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    flm_safetensors_open(&st, p, NULL);
    int n = flm_safetensors_count(st), k = 0;
    flm_st_entry *e = flm_calloc((size_t)n, sizeof *e);
    for (int i = 0; i < n; i++) {
        const flm_st_info *in = flm_safetensors_at(st, i);
        int hit = !strcmp(in->name, target);
        if (hit && edit == EDIT_DROP)
            continue;
        e[k] = (flm_st_entry){
            .name = in->name, .dtype = in->dtype, .n_dim = in->n_dim, .data = in->data};
        memcpy(e[k].shape, in->shape, sizeof in->shape);
        if (hit && edit == EDIT_RESHAPE) {
            e[k].shape[0] = in->shape[1];
            e[k].shape[1] = in->shape[0];
        }
        k++;
    }
    snprintf(p, sizeof p, "%s/model.safetensors", bad);
    flm_safetensors_write(p, e, k, NULL);
    flm_free(e);
    flm_safetensors_close(&st);
}

/* The load fails with `want` in the message, copied and mapped alike (same message). */
static void expect_load_error(const char *path, const char *want, const char *what)
{
    flm_lm *lm = NULL, *mapped = NULL;
    flm_error err = {0}, merr = {0};
    int rc = flm_lm_load(&lm, path, FLM_W_F32, 0, &err);
    int mrc = flm_lm_load(&mapped, path, FLM_W_F32, FLM_LM_LOAD_MAPPED, &merr);
    TAP_OK(rc < 0 && strstr(err.msg, want) && mrc == rc && !mapped && !strcmp(err.msg, merr.msg),
           "%s: %s", what, err.msg);
    flm_lm_destroy(&lm);
}

/* Text and depth logits of 20 steps of a fixed input. */
static void logits_of(flm_lm *lm, float *tl, float *dl)
{
    const flm_lm_config *c = flm_lm_get_config(lm);
    flm_sample *smp = make_sample(c, 19, 21);
    int32_t in[20 * NCH], tg[20 * 9], codes[20 * 8];
    float h[20 * 64];
    flm_lm_state *s = NULL;
    flm_lm_state_create(&s, lm, 32, 20, NULL);
    TAP_EQ_INT(flm_lm_input_from_sample(c, smp->tokens, NULL, 19, in, tg, NULL, NULL), 0,
               "teacher-forcing view");
    for (int i = 0; i < 20 * 8; i++)
        codes[i] = tg[(i / 8) * 9 + 1 + i % 8] >= 0 ? tg[(i / 8) * 9 + 1 + i % 8] : 2048;
    flm_lm_forward(s, in, 20, h, NULL);
    flm_lm_text_logits(s, h, 20, tl);
    flm_lm_depth_forward(s, h, codes, 20, dl, NULL);
    flm_lm_state_destroy(&s);
    flm_sample_destroy(&smp);
}

/* flm model quantize: a q8 / q4 checkpoint written by flm_lm_write loads back to the same
 * weights (identical logits), also expanded to f32; a bad scale tensor is named. */
static void test_write_quantized(void)
{
    flm_lm_config c = small_config();
    size_t nt = (size_t)20 * c.vocab_size, nd = (size_t)20 * 8 * c.aud_vocab;
    float *t0 = flm_malloc(nt * 4), *d0 = flm_malloc(nd * 4), *t1 = flm_malloc(nt * 4);
    float *d1 = flm_malloc(nd * 4);
    for (int f = FLM_W_BF16; f < FLM_W_COUNT; f++) {
        char out[700];
        snprintf(out, sizeof out, "%s/%s", dir, flm_wtype_name((flm_wtype)f));
        flm_lm *a = NULL, *b = NULL, *e = NULL;
        flm_error err = {0};
        int ok = flm_lm_load(&a, dir, (flm_wtype)f, 0, &err) == 0 &&
                 flm_lm_write(a, out, &err) == 0 &&
                 flm_lm_load(&b, out, (flm_wtype)f, 0, &err) == 0 &&
                 flm_lm_load(&e, out, FLM_W_F32, 0, &err) == 0;
        TAP_OK(ok, "%s: write and reload: %s", flm_wtype_name((flm_wtype)f), err.msg);
        if (ok) {
            logits_of(a, t0, d0);
            logits_of(b, t1, d1);
            TAP_OK(!memcmp(t0, t1, nt * 4) && !memcmp(d0, d1, nd * 4) &&
                       flm_lm_weight_size(a) == flm_lm_weight_size(b),
                   "%s: reloaded in the same format: identical logits",
                   flm_wtype_name((flm_wtype)f));
            logits_of(e, t1, d1);
            double et = flm_norm_err(t1, t0, nt), ed = flm_norm_err(d1, d0, nd);
            TAP_OK(et < 1e-5 && ed < 1e-5, "%s: reloaded as f32: logits within %.1e / %.1e",
                   flm_wtype_name((flm_wtype)f), et, ed);
        }
        flm_lm_destroy(&a), flm_lm_destroy(&b), flm_lm_destroy(&e);
    }
    flm_free(t0), flm_free(d0), flm_free(t1), flm_free(d1);
    /* a scale tensor of the wrong shape */
    char src[700], bad[700], p[1500];
    snprintf(src, sizeof src, "%s/q8/model.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/badq", dir);
    snprintf(p, sizeof p, "rm -rf %s && mkdir -p %s && cp %s/q8/config.json %s/", bad, bad, dir,
             bad);
    run(p);
    flm_safetensors *st = NULL;
    flm_safetensors_open(&st, src, NULL);
    int n = st ? flm_safetensors_count(st) : 0;
    flm_st_entry *e = flm_calloc((size_t)n + 1, sizeof *e);
    for (int i = 0; i < n; i++) {
        const flm_st_info *in = flm_safetensors_at(st, i);
        e[i] = (flm_st_entry){
            .name = in->name, .dtype = in->dtype, .n_dim = in->n_dim, .data = in->data};
        memcpy(e[i].shape, in->shape, sizeof in->shape);
        if (!strcmp(in->name, "model.layers.0.mlp.down_proj.weight.qscale")) {
            e[i].shape[0] = in->shape[1]; /* [64, 4] -> [4, 64]: same bytes */
            e[i].shape[1] = in->shape[0];
        }
    }
    snprintf(p, sizeof p, "%s/model.safetensors", bad);
    flm_safetensors_write(p, e, n, NULL);
    flm_free(e);
    flm_safetensors_close(&st);
    expect_load_error(bad,
                      "tensor 'model.layers.0.mlp.down_proj.weight.qscale': F32 [4, 64], "
                      "expected F32 [64, 4]",
                      "quantized checkpoint with a mis-shaped scale tensor");
}

/* --- weights computed from the mapping ------------------------------------------------- */

#define GEN_STEPS 12

/* Greedy streaming generation: text logits [GEN_STEPS][V], depth logits [GEN_STEPS][8][A] and
 * the chosen tokens [GEN_STEPS][9] of every step. */
static void gen_trace(flm_lm *lm, float *tl, float *dl, int32_t *chosen)
{
    const flm_lm_config *c = flm_lm_get_config(lm);
    size_t V = (size_t)c->vocab_size, A = (size_t)c->aud_vocab;
    flm_lm_gen_params gp = flm_lm_gen_default_params();
    gp.use_sampling = 0;
    flm_lm_gen *g = NULL;
    flm_lm_gen_create(&g, lm, GEN_STEPS, &gp, NULL);
    for (int t = 0; t < GEN_STEPS; t++) {
        int32_t user[8], frame[9];
        int has;
        for (int k = 0; k < 8; k++)
            user[k] = (t * 131 + k * 17) % 2048;
        flm_lm_gen_step(g, user, NULL, frame, &has, NULL);
        memcpy(tl + t * V, flm_lm_gen_text_logits(g), V * 4);
        memcpy(dl + t * 8 * A, flm_lm_gen_depth_logits(g), 8 * A * 4);
        memcpy(chosen + t * 9, flm_lm_gen_chosen(g), 9 * 4);
    }
    flm_lm_gen_destroy(&g);
}

/* Bytes of the checkpoint's tensors a mapped load can serve: every matrix and table (2-D, but
 * not wpe, which stays float32) with its scales; only the I8 / U8 codes when codes_only. */
static size_t servable_bytes(const char *path, int codes_only)
{
    flm_safetensors *st = NULL;
    size_t n = 0;
    flm_safetensors_open(&st, path, NULL);
    for (int i = 0; st && i < flm_safetensors_count(st); i++) {
        const flm_st_info *in = flm_safetensors_at(st, i);
        int codes = in->dtype == FLM_DTYPE_I8 || in->dtype == FLM_DTYPE_U8;
        if (in->n_dim == 2 && !strstr(in->name, ".wpe.") && (codes || !codes_only))
            n += in->size;
    }
    flm_safetensors_close(&st);
    return n;
}

/* Copies src (config.json + model.safetensors) to dst with `pad` spaces added to the header, so
 * that every tensor sits `pad` bytes further (a valid file: the header length is not required to
 * be a multiple of 8). */
static void shifted_copy(const char *src, const char *dst, int pad)
{
    char p[1600], *data = NULL;
    size_t n;
    snprintf(p, sizeof p, "rm -rf %s && mkdir -p %s && cp %s/config.json %s/", dst, dst, src, dst);
    run(p);
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    flm_read_file(p, &data, &n, (size_t)1 << 30, NULL);
    uint64_t hlen = flm_get_u64((const uint8_t *)data);
    uint8_t le[8];
    flm_put_u64(le, hlen + (uint64_t)pad);
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    FILE *f = fopen(p, "wb");
    fwrite(le, 1, 8, f);
    fwrite(data + 8, 1, (size_t)hlen, f);
    fprintf(f, "%*s", pad, "");
    fwrite(data + 8 + hlen, 1, n - 8 - (size_t)hlen, f);
    fclose(f);
    flm_free(data);
}

/* A checkpoint loaded mapped and copied: bit-identical teacher-forced text and depth logits and
 * streaming steps (logits and choices), the same weight bytes, and exactly the expected part of
 * them computed from the mapping: all matrices when the file stores the requested format, none
 * when it must be converted, and no tensor whose floats are misaligned in the file (copied). */
static void test_mapped(void)
{
    enum { ALL, NONE, CODES };
    static const struct {
        const char *sub; /* under dir */
        flm_wtype w;
        int pad, expect;
    } cases[] = {
        {"bf16", FLM_W_BF16, 0, ALL},  {".", FLM_W_F32, 0, ALL},     {"q8", FLM_W_Q8, 0, ALL},
        {"q4", FLM_W_Q4, 0, ALL},      {"bf16", FLM_W_F32, 0, NONE}, {"q4", FLM_W_Q8, 0, NONE},
        {"bf16", FLM_W_BF16, 1, NONE}, /* bf16 at odd addresses: copied */
        {"bf16", FLM_W_BF16, 2, ALL},  /* 2-byte aligned is enough for bf16 */
        {".", FLM_W_F32, 2, NONE},     /* floats 2 bytes off: copied */
        {"q4", FLM_W_Q4, 2, CODES},    /* the codes mapped, the misaligned scales copied */
    };
    flm_lm_config c = small_config();
    size_t nt = (size_t)20 * c.vocab_size, nd = (size_t)20 * 8 * c.aud_vocab;
    size_t gt = (size_t)GEN_STEPS * c.vocab_size, gd = (size_t)GEN_STEPS * 8 * c.aud_vocab;
    float *t0 = flm_malloc(nt * 4), *d0 = flm_malloc(nd * 4), *t1 = flm_malloc(nt * 4);
    float *d1 = flm_malloc(nd * 4), *gt0 = flm_malloc(gt * 4), *gd0 = flm_malloc(gd * 4);
    float *gt1 = flm_malloc(gt * 4), *gd1 = flm_malloc(gd * 4);
    int32_t ch0[GEN_STEPS * 9], ch1[GEN_STEPS * 9];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[700], path[700], what[128];
        snprintf(src, sizeof src, "%s/%s", dir, cases[i].sub);
        snprintf(path, sizeof path, "%s/shifted", dir);
        if (cases[i].pad)
            shifted_copy(src, path, cases[i].pad);
        else
            snprintf(path, sizeof path, "%s", src);
        snprintf(what, sizeof what, "%s file%s as %s",
                 !strcmp(cases[i].sub, ".") ? "f32" : cases[i].sub,
                 cases[i].pad == 1 ? " shifted 1 byte"
                 : cases[i].pad    ? " shifted 2 bytes"
                                   : "",
                 flm_wtype_name(cases[i].w));
        size_t want = cases[i].expect == NONE ? 0 : servable_bytes(path, cases[i].expect == CODES);
        flm_lm *a = NULL, *b = NULL;
        flm_error err = {0};
        if (flm_lm_load(&a, path, cases[i].w, 0, &err) < 0 ||
            flm_lm_load(&b, path, cases[i].w, FLM_LM_LOAD_MAPPED, &err) < 0) {
            TAP_OK(0, "%s: load: %s", what, err.msg);
            flm_lm_destroy(&a);
            continue;
        }
        if (cases[i].pad) /* the model holds its mapping: the files may go */
            snprintf(src, sizeof src, "rm -r %s", path), run(src);
        logits_of(a, t0, d0);
        logits_of(b, t1, d1);
        gen_trace(a, gt0, gd0, ch0);
        gen_trace(b, gt1, gd1, ch1);
        TAP_OK(!memcmp(t0, t1, nt * 4) && !memcmp(d0, d1, nd * 4),
               "%s: mapped == copied: teacher-forced text and depth logits, bit for bit", what);
        TAP_OK(!memcmp(gt0, gt1, gt * 4) && !memcmp(gd0, gd1, gd * 4) &&
                   !memcmp(ch0, ch1, sizeof ch0),
               "%s: mapped == copied: %d streaming steps (logits and tokens)", what, GEN_STEPS);
        TAP_OK(flm_lm_weight_size(a) == flm_lm_weight_size(b) && flm_lm_mapped_size(a) == 0 &&
                   flm_lm_mapped_size(b) == want && (cases[i].expect == NONE || want > 0),
               "%s: %zu bytes of weights both ways, %zu of them mapped (expected %zu)", what,
               flm_lm_weight_size(b), flm_lm_mapped_size(b), want);
        flm_lm_destroy(&a);
        flm_lm_destroy(&b);
    }
    flm_free(t0), flm_free(d0), flm_free(t1), flm_free(d1);
    flm_free(gt0), flm_free(gd0), flm_free(gt1), flm_free(gd1);
}

/* Replaces the first occurrence of `from` in bad/config.json by `to`. */
static void edit_config(const char *bad, const char *from, const char *to)
{
    char p[1200], *text = NULL;
    size_t n;
    snprintf(p, sizeof p, "%s/config.json", bad);
    flm_read_file(p, &text, &n, 1 << 20, NULL);
    char *at = strstr(text, from);
    FILE *f = fopen(p, "wb");
    fwrite(text, 1, (size_t)(at - text), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    flm_free(text);
}

static void test_bad_checkpoints(void)
{
    char bad[700], p[1600];
    snprintf(bad, sizeof bad, "%s/bad", dir);
    make_bad("model.layers.1.self_attn.k_proj.bias", EDIT_DROP, bad);
    expect_load_error(bad, "tensor 'model.layers.1.self_attn.k_proj.bias' not found",
                      "missing tensor");
    make_bad("aud_output_layers.transformer.h.0.attn.c_attn.weight", EDIT_RESHAPE, bad);
    expect_load_error(bad, "aud_output_layers.transformer.h.0.attn.c_attn.weight", "wrong shape");
    make_bad("aud_output_layers.linear_in.weight", EDIT_RESHAPE, bad);
    expect_load_error(bad, "shape [64, 256] in file, expected [256, 64]", "wrong shape, shapes");
    make_bad("none", EDIT_DROP, bad);
    edit_config(bad, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
    expect_load_error(bad, "tensor 'model.layers.1.input_layernorm.weight' is not part of",
                      "config has fewer layers than the weights");
    make_bad("none", EDIT_DROP, bad);
    edit_config(bad, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    expect_load_error(bad, "model.layers.2.input_layernorm.weight' not found",
                      "config has more layers than the weights");
    make_bad("none", EDIT_DROP, bad);
    edit_config(bad, "\"vocab_size\": 1200", "\"vocab_size\": 1300");
    expect_load_error(bad, "model.embed_tokens.text_embeddings.weight",
                      "config vocab_size vs embedding rows");
    make_bad("none", EDIT_DROP, bad);
    edit_config(bad, "\"n_embd\": 32", "\"n_embd\": 64");
    expect_load_error(bad, "aud_output_layers.linear_in.weight", "depth n_embd vs weights");
    make_bad("none", EDIT_DROP, bad);
    edit_config(bad, "\"use_swiglu\": true", "\"use_swiglu\": true, \"extra\": 1");
    expect_load_error(bad, "unknown key \"aud_depthgpt.extra\"", "extra depth config key");
    make_bad("none", EDIT_DROP, bad);
    edit_config(bad, "\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"");
    expect_load_error(bad, "hidden_act", "unsupported activation");
    make_bad("none", EDIT_DROP, bad);
    snprintf(p, sizeof p, "truncate -s 2000000 %s/model.safetensors", bad);
    run(p);
    expect_load_error(bad, "model.safetensors", "truncated weights");
    snprintf(p, sizeof p, "rm %s/config.json", bad);
    run(p);
    expect_load_error(bad, "config.json", "no config.json");
}

/* Copies dir/sub to dir/poison with element `at` of tensor `name` replaced by the `width` bytes
 * of `bits`; returns the tensor's column count (1 for a vector). */
static int64_t poison(const char *sub, const char *name, size_t at, int width, uint64_t bits)
{
    char src[700], dst[700], p[1600];
    snprintf(src, sizeof src, "%s/%s", dir, sub);
    snprintf(dst, sizeof dst, "%s/poison", dir);
    snprintf(p, sizeof p, "rm -rf %s && mkdir -p %s && cp %s/config.json %s/", dst, dst, src, dst);
    run(p);
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    flm_safetensors *st = NULL;
    flm_safetensors_open(&st, p, NULL);
    int n = st ? flm_safetensors_count(st) : 0;
    int64_t cols = 0;
    flm_st_entry *e = flm_calloc((size_t)n + 1, sizeof *e);
    uint8_t *copy = NULL;
    for (int i = 0; i < n; i++) {
        const flm_st_info *in = flm_safetensors_at(st, i);
        e[i] = (flm_st_entry){
            .name = in->name, .dtype = in->dtype, .n_dim = in->n_dim, .data = in->data};
        memcpy(e[i].shape, in->shape, sizeof in->shape);
        if (!strcmp(in->name, name)) {
            copy = flm_malloc(in->size);
            memcpy(copy, in->data, in->size);
            for (int b = 0; b < width; b++)
                copy[at * (size_t)width + (size_t)b] = (uint8_t)(bits >> (8 * b));
            e[i].data = copy;
            cols = in->n_dim == 2 ? in->shape[1] : 1;
        }
    }
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    flm_safetensors_write(p, e, n, NULL);
    flm_free(copy);
    flm_free(e);
    flm_safetensors_close(&st);
    return cols;
}

/* Weights that are NaN or infinite are refused at load, naming the tensor and the element, in
 * every stored format (f32, bf16, the scales of q8 / q4) and every way of loading it: copied,
 * converted, computed from the mapping (issue 18: such a checkpoint used to load and compute
 * garbage). */
static void test_nonfinite(void)
{
    static const struct {
        const char *sub, *tensor;
        int width;
        uint64_t bits;
        const char *what;
        flm_wtype as[3];
        int n_as;
    } cases[] = {
        {".",
         "model.layers.0.self_attn.q_proj.weight",
         4,
         0x7fc00000u,
         "NaN",
         {FLM_W_F32, FLM_W_Q8},
         2},
        {".", "model.layers.1.input_layernorm.weight", 4, 0x7f800000u, "infinity", {FLM_W_F32}, 1},
        {"bf16",
         "model.embed_tokens.text_embeddings.weight",
         2,
         0x7fc1u,
         "NaN",
         {FLM_W_BF16, FLM_W_Q4, FLM_W_F32},
         3},
        {"bf16",
         "aud_output_layers.transformer.h.1.mlps.0.down_proj.weight",
         2,
         0xff80u,
         "-infinity",
         {FLM_W_BF16},
         1},
        {"q8",
         "model.layers.1.mlp.down_proj.weight.qscale",
         4,
         0xff800000u,
         "-infinity",
         {FLM_W_Q8, FLM_W_F32},
         2},
        {"q4",
         "model.layers.0.self_attn.o_proj.weight.qscale",
         4,
         0x7fc00000u,
         "NaN",
         {FLM_W_Q4, FLM_W_BF16},
         2},
    };
    char path[700];
    snprintf(path, sizeof path, "%s/poison", dir);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t cols = poison(cases[k].sub, cases[k].tensor, 3, cases[k].width, cases[k].bits);
        char want[300];
        if (cols <= 0) {
            TAP_OK(0, "tensor '%s' not in the %s checkpoint", cases[k].tensor, cases[k].sub);
            continue;
        }
        if (cols == 1)
            snprintf(want, sizeof want, "tensor '%s': %s at [3]", cases[k].tensor, cases[k].what);
        else
            snprintf(want, sizeof want, "tensor '%s': %s at [%lld, %lld]", cases[k].tensor,
                     cases[k].what, (long long)(3 / cols), (long long)(3 % cols));
        for (int a = 0; a < cases[k].n_as; a++)
            for (int mapped = 0; mapped < 2; mapped++) {
                flm_lm *lm = NULL;
                flm_error err = {0};
                int rc =
                    flm_lm_load(&lm, path, cases[k].as[a], mapped ? FLM_LM_LOAD_MAPPED : 0, &err);
                TAP_OK(rc == FLM_ECORRUPT && !lm && strstr(err.msg, want) &&
                           strstr(err.msg, "poison/model.safetensors: "),
                       "%s file, %s in '%s', loaded as %s%s: refused (%s)",
                       !strcmp(cases[k].sub, ".") ? "f32" : cases[k].sub, cases[k].what,
                       cases[k].tensor, flm_wtype_name(cases[k].as[a]), mapped ? ", mapped" : "",
                       err.msg);
                flm_lm_destroy(&lm);
            }
    }
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/test_lm_XXXXXX",
             getenv("FLM_TEST_TMP") ? getenv("FLM_TEST_TMP") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    flm_kernels_init(2);
    flm_lm_config c = small_config();
    flm_error err = {0};
    TAP_OK(flm_lm_write_random(&c, 11, FLM_DTYPE_F32, 0, dir, &err) == 0, "write: %s", err.msg);
    flm_lm *lm = NULL;
    TAP_OK(flm_lm_load(&lm, dir, FLM_W_F32, 0, &err) == 0, "load: %s", err.msg);
    if (lm) {
        test_score(lm);
        test_no_alloc(lm);
        test_seed(lm);
    }
    flm_lm_destroy(&lm);
    test_mask();
    test_formats();
    test_write_quantized();
    test_mapped();
    test_nonfinite();
    test_alloc_failures(FLM_W_Q8, 0);
    test_alloc_failures(FLM_W_F32, FLM_LM_LOAD_MAPPED);
    test_bad_checkpoints();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run(cmd);
    return tap_done();
}
