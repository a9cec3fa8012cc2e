/* Stream model: delay view identity, default delays, classes, metadata, clone/equal. */
#include <stdio.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_profile.h"
#include "flm_rng.h"
#include "flm_stream.h"
#include "tap.h"

static void delay_identity(void)
{
    int ok = 1;
    for (int trial = 0; trial < 500 && ok; trial++) {
        char id[32];
        snprintf(id, sizeof id, "trial-%d", trial);
        flm_rng r;
        flm_rng_init(&r, 99, id, "delay");
        int32_t delays[FLM_N_CHANNELS], fill[FLM_N_CHANNELS];
        int maxd = (int)flm_rng_below(&r, 9);
        for (int k = 0; k < FLM_N_CHANNELS; k++) {
            delays[k] = maxd ? (int32_t)flm_rng_below(&r, (uint32_t)maxd + 1) : 0;
            fill[k] = -1 - k;
        }
        int32_t n = (int32_t)flm_rng_below(&r, 300);
        int32_t *in = flm_malloc(sizeof(int32_t) * FLM_N_CHANNELS * (size_t)n + 4);
        int32_t *mid = flm_malloc(sizeof(int32_t) * FLM_N_CHANNELS * (size_t)(n + 8) + 4);
        int32_t *back = flm_malloc(sizeof(int32_t) * FLM_N_CHANNELS * (size_t)n + 4);
        for (int32_t i = 0; i < FLM_N_CHANNELS * n; i++)
            in[i] = (int32_t)flm_rng_u32(&r);
        int md = flm_delay_max(delays);
        ok &= flm_delay_apply(in, n, delays, fill, mid, NULL) == 0;
        /* the delayed view: channel k at t + d[k] holds the frame-t value */
        for (int k = 0; k < FLM_N_CHANNELS && ok; k++)
            for (int32_t t = 0; t < n + md; t++) {
                int32_t want =
                    (t < delays[k] || t >= n + delays[k]) ? fill[k] : in[k * n + t - delays[k]];
                ok &= mid[k * (n + md) + t] == want;
            }
        ok &= flm_delay_undo(mid, n + md, delays, back, NULL) == 0;
        ok &= memcmp(in, back, sizeof(int32_t) * FLM_N_CHANNELS * (size_t)n) == 0;
        flm_free(in);
        flm_free(mid);
        flm_free(back);
    }
    TAP_OK(ok, "undo(apply(x)) == x for 500 random delay vectors and lengths");
    int32_t bad[FLM_N_CHANNELS] = {0}, buf[FLM_N_CHANNELS * 2], fill[FLM_N_CHANNELS] = {0};
    bad[3] = -1;
    flm_error err = {0};
    TAP_EQ_INT(flm_delay_apply(buf, 1, bad, fill, buf, &err), FLM_ERANGE,
               "negative delay rejected");
    TAP_CONTAINS(err.msg, "channel 3", "error names the channel");
    int32_t d2[FLM_N_CHANNELS] = {0};
    d2[0] = 5;
    TAP_EQ_INT(flm_delay_undo(buf, 2, d2, buf, &err), FLM_ERANGE, "undo of too short input fails");
}

static void defaults(void)
{
    flm_profiles p;
    flm_profiles_default(&p);
    const int32_t want[FLM_N_CHANNELS] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1};
    TAP_OK(memcmp(p.model.delays, want, sizeof want) == 0, "default delays [0, 0,1x7, 0,1x7]");
    TAP_EQ_INT(p.vocab.text_wait, 151665, "wait id");
    TAP_EQ_INT(p.codec.aud_pad, 2048, "AUD_PAD");
    TAP_EQ_INT(p.codec.aud_empty, 2049, "AUD_EMPTY");
    TAP_EQ_INT(p.model.sample_frames, 8192, "sample length");
    int32_t fill[FLM_N_CHANNELS];
    flm_profiles_delay_fill(&p, fill);
    TAP_OK(fill[0] == 151665 && fill[1] == 2048 && fill[16] == 2048, "delay fill = initial tokens");
}

static void classes_and_meta(void)
{
    flm_sample *s = NULL;
    TAP_EQ_INT(flm_sample_create(&s, 4, NULL), 0, "create");
    FLM_TOK(s, FLM_CH_TEXT, 0) = 151665;
    FLM_TOK(s, FLM_CH_TEXT, 1) = 9707;
    FLM_TOK(s, FLM_CH_SPEAK, 1) = 17;
    FLM_TOK(s, FLM_CH_SPEAK, 2) = 2049;
    FLM_TOK(s, FLM_CH_SPEAK + 3, 1) = 5;
    FLM_TOK(s, FLM_CH_LISTEN, 1) = 5;
    flm_sample_default_classes(s, 151665, 2049, 2048);
    TAP_EQ_INT(FLM_CLS(s, 0, 0), FLM_LOSS_WAIT, "<wait> -> wait");
    TAP_EQ_INT(FLM_CLS(s, 0, 1), FLM_LOSS_MONOLOGUE, "text -> monologue");
    TAP_EQ_INT(FLM_CLS(s, FLM_CH_SPEAK, 1), FLM_LOSS_SEMANTIC, "speak cb0 -> semantic");
    TAP_EQ_INT(FLM_CLS(s, FLM_CH_SPEAK, 2), FLM_LOSS_NONE, "speak AUD_EMPTY -> none");
    TAP_EQ_INT(FLM_CLS(s, FLM_CH_SPEAK + 3, 1), FLM_LOSS_ACOUSTIC, "speak cb3 -> acoustic");
    TAP_EQ_INT(FLM_CLS(s, FLM_CH_LISTEN, 1), FLM_LOSS_NONE, "listen -> none");
    flm_sample_meta_set_int(s, "k", 1);
    flm_sample_meta_set_text(s, "k", "v");
    TAP_EQ_INT(s->n_meta, 1, "setting a key twice replaces it");
    TAP_EQ_STR(flm_sample_meta_get(s, "k")->s, "v", "replaced value");
    flm_sample_add_event(s, "interrupt", 2, 1, 0.5);
    flm_sample *c = NULL;
    TAP_EQ_INT(flm_sample_clone(&c, s, NULL), 0, "clone");
    TAP_OK(flm_sample_equal(s, c), "clone is equal");
    FLM_CLS(c, 0, 3) = FLM_LOSS_WAIT;
    TAP_OK(!flm_sample_equal(s, c), "a changed class makes samples differ");
    TAP_EQ_INT(flm_sample_resize(c, 2, NULL), 0, "resize");
    TAP_EQ_INT(FLM_TOK(c, 0, 1), 9707, "resize keeps columns");
    /* allocation failure at every site of clone: no crash, FLM_ENOMEM, no leak (ASan) */
    int all = 1;
    for (int k = 0; k < 40; k++) {
        flm_sample *d = NULL;
        flm_alloc_fail_after(k);
        int rc = flm_sample_clone(&d, s, NULL);
        flm_alloc_fail_after(-1);
        all &= rc == 0 ? d != NULL : (rc == FLM_ENOMEM && d == NULL);
        flm_sample_destroy(&d);
    }
    TAP_OK(all, "clone under injected allocation failures");
    flm_sample_destroy(&c);
    flm_sample_destroy(&s);
    TAP_OK(s == NULL, "destroy sets NULL");
    flm_sample_destroy(&s);
    TAP_EQ_INT(flm_sample_create(&s, -1, NULL), FLM_ERANGE, "negative length rejected");
}

int main(void)
{
    delay_identity();
    defaults();
    classes_and_meta();
    return tap_done();
}
