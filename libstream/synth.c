#include "flm_synth.h"

#include <stdio.h>

#include "flm_rng.h"

flm_synth_params flm_synth_default_params(void)
{
    return (flm_synth_params){600, 8192, 2, 0.5, 0.3};
}

int flm_synth_sample(flm_sample **out, const flm_profiles *p, const flm_synth_params *sp,
                     uint64_t seed, const char *id, flm_error *err)
{
    flm_rng r;
    flm_rng_init(&r, seed, id, "synth");
    int32_t lo = sp->min_frames, hi = sp->max_frames > lo ? sp->max_frames : lo;
    int32_t n = lo + (int32_t)flm_rng_below(&r, (uint32_t)(hi - lo + 1));
    int asr = flm_rng_bernoulli(&r, sp->p_asr);
    flm_sample *s = NULL;
    int rc = flm_sample_create(&s, n, err);
    if (rc < 0)
        return rc;
    const int32_t wait = p->vocab.text_wait, empty = p->codec.aud_empty;
    int32_t silence[FLM_N_CODEBOOKS]; /* a fixed "silence" code per codebook */
    for (int c = 0; c < FLM_N_CODEBOOKS; c++)
        silence[c] = (int32_t)((c * 977 + 31) % p->codec.card);
    int speech_ch = asr ? FLM_CH_LISTEN : FLM_CH_SPEAK;
    int other_ch = asr ? FLM_CH_SPEAK : FLM_CH_LISTEN;
    for (int32_t t = 0; t < n; t++) {
        FLM_TOK(s, FLM_CH_TEXT, t) = wait;
        for (int c = 0; c < FLM_N_CODEBOOKS; c++) {
            FLM_TOK(s, speech_ch + c, t) = silence[c];
            FLM_TOK(s, other_ch + c, t) = empty;
        }
    }
    int32_t t = (int32_t)flm_rng_below(&r, 13), n_pairs = 0;
    for (;;) {
        int32_t n_tok = 4 + (int32_t)flm_rng_below(&r, 28);
        int32_t n_speech = n_tok + 2 + (int32_t)flm_rng_below(&r, (uint32_t)n_tok * 2);
        int32_t text_at = asr ? t + n_speech : t;
        int32_t speech_at = asr ? t : t + sp->lead;
        int32_t end = asr ? text_at + n_tok : speech_at + n_speech;
        if (end > n)
            break;
        for (int32_t k = 0; k < n_tok; k++)
            FLM_TOK(s, FLM_CH_TEXT, text_at + k) = (int32_t)flm_rng_below(&r, 151643);
        for (int32_t k = 0; k < n_speech; k++)
            for (int c = 0; c < FLM_N_CODEBOOKS; c++)
                FLM_TOK(s, speech_ch + c, speech_at + k) =
                    (int32_t)flm_rng_below(&r, (uint32_t)p->codec.card);
        n_pairs++;
        t = end + 1 + (int32_t)flm_rng_below(&r, 38); /* 80 ms .. 3 s of silence */
    }
    flm_sample_default_classes(s, wait, empty, p->codec.aud_pad);
    if (asr) /* ASR style: the listen speech is not a training target, and silence isn't either */
        for (int32_t k = 0; k < n; k++)
            for (int c = 0; c < FLM_N_CODEBOOKS; c++)
                FLM_CLS(s, FLM_CH_SPEAK + c, k) = FLM_LOSS_NONE;
    int zh = flm_rng_bernoulli(&r, 0.4);
    s->duration_s = n * (double)p->codec.samples_per_frame / p->codec.sample_rate;
    char spk[32];
    snprintf(spk, sizeof spk, "spk%03u", flm_rng_below(&r, 200));
    if (flm_sample_set_id(s, id) || flm_sample_set_style(s, asr ? "asr" : "tts") ||
        flm_sample_set_stage(s, "post-training-1") ||
        flm_sample_set_language(s, zh ? "zh" : "en") ||
        flm_sample_set_corpus(s, zh ? "synthetic-zh" : "synthetic-en") ||
        flm_sample_set_speakers(s, spk) || flm_sample_meta_set_int(s, "pairs", n_pairs) ||
        flm_sample_meta_set_int(s, "text_lead", asr ? 0 : sp->lead) ||
        flm_sample_meta_set_real(s, "silence_s_mean", 0.08 + 1.5 * flm_rng_uniform(&r)) ||
        flm_sample_meta_set_text(s, "source", "synthetic (uniform random codes)"))
        goto oom;
    if (flm_rng_bernoulli(&r, sp->p_event)) {
        int32_t at = (int32_t)flm_rng_below(&r, (uint32_t)n);
        if (flm_sample_add_event(s, "interrupt", at, 6, 0.48))
            goto oom;
    }
    *out = s;
    return 0;
oom:
    flm_sample_destroy(&s);
    return flm_error_set(err, FLM_ENOMEM, "out of memory synthesizing %s", id);
}
