/* Word-level layouts, the two arms of the contiguous-vs-word ablation. See flm_pack.h. */
#include <math.h>
#include <string.h>

#include "flm_pack.h"

/* Frame of word w's first token before keep-and-shift. */
static int32_t word_frame(int style, int32_t lag, double rate, const flm_pack_word *w)
{
    if (style == FLM_PACK_WORDS)
        return (int32_t)floor(w->start * rate);
    /* the first frame after the word: ceil, less a hair so an end on a frame boundary stays */
    return (int32_t)ceil(w->end * rate - 1e-9) + lag;
}

int flm_pack_words(flm_sample **out, const flm_profiles *p, int style, int32_t lag,
                   const int32_t *codes, int32_t n_frames, const flm_pack_word *words,
                   size_t n_words, const char *sample_id, flm_error *err)
{
    *out = NULL;
    if (style != FLM_PACK_WORDS && style != FLM_PACK_WORDS_ASR)
        return flm_error_set(err, FLM_EINVAL, "%s: style %d is not a word-level layout", sample_id,
                             style);
    if (lag < 0 || lag > 64)
        return flm_error_set(err, FLM_EINVAL, "%s: word lag %d outside 0..64", sample_id, lag);
    if (n_frames < 1)
        return flm_error_set(err, FLM_EINVAL, "%s: no speech frames", sample_id);
    double rate = (double)p->codec.sample_rate / p->codec.samples_per_frame;
    /* plan: word k's first token frame, keep-and-shift after the previous word's tokens */
    int32_t cursor = 0, end = n_frames, shifted = 0;
    for (size_t k = 0; k < n_words; k++) {
        const flm_pack_word *w = &words[k];
        if (!(w->start >= 0) || !(w->end >= w->start) || w->end > 1e7 || w->n_text < 1)
            return flm_error_set(err, FLM_EINVAL, "%s: word %zu: start %g, end %g, %d tokens",
                                 sample_id, k, w->start, w->end, w->n_text);
        int32_t at = word_frame(style, lag, rate, w);
        if (at < cursor) {
            at = cursor;
            shifted++;
        }
        if (at > FLM_MAX_FRAMES)
            return flm_error_set(err, FLM_ERANGE, "%s: word %zu at frame %d", sample_id, k, at);
        cursor = at + w->n_text;
        if (cursor + 1 > end) /* keep one frame after the last token */
            end = cursor + 1;
    }
    if (end > FLM_MAX_FRAMES)
        return flm_error_set(err, FLM_ERANGE, "%s: %d frames", sample_id, end);
    flm_sample *s = NULL;
    int rc = flm_sample_create(&s, end, err);
    if (rc < 0)
        return rc;
    int speech = style == FLM_PACK_WORDS ? FLM_CH_SPEAK : FLM_CH_LISTEN;
    int idle = style == FLM_PACK_WORDS ? FLM_CH_LISTEN : FLM_CH_SPEAK;
    for (int32_t t = 0; t < end; t++) {
        FLM_TOK(s, FLM_CH_TEXT, t) = p->vocab.text_pad;
        for (int c = 0; c < FLM_N_CODEBOOKS; c++) {
            FLM_TOK(s, speech + c, t) =
                t < n_frames ? codes[(size_t)c * n_frames + t] : p->codec.aud_empty;
            FLM_TOK(s, idle + c, t) = p->codec.aud_empty;
        }
    }
    /* classes: codes as usual; the text channel by position (not by value, since pad ids may
     * also be ordinary tokens of the vocabulary): word tokens are monologue, PAD/EPAD wait */
    flm_sample_default_classes(s, p->vocab.text_wait, p->codec.aud_empty, p->codec.aud_pad);
    for (int32_t t = 0; t < end; t++)
        FLM_CLS(s, FLM_CH_TEXT, t) = FLM_LOSS_WAIT;
    cursor = 0;
    for (size_t k = 0; k < n_words; k++) {
        const flm_pack_word *w = &words[k];
        int32_t at = word_frame(style, lag, rate, w);
        if (at < cursor)
            at = cursor;
        if (at > 0 && FLM_CLS(s, FLM_CH_TEXT, at - 1) == FLM_LOSS_WAIT) /* a PAD position */
            FLM_TOK(s, FLM_CH_TEXT, at - 1) = p->vocab.text_epad;
        memcpy(&FLM_TOK(s, FLM_CH_TEXT, at), w->text, sizeof(int32_t) * (size_t)w->n_text);
        memset(&FLM_CLS(s, FLM_CH_TEXT, at), FLM_LOSS_MONOLOGUE, (size_t)w->n_text);
        cursor = at + w->n_text;
    }
    s->duration_s = n_frames / rate;
    if (flm_sample_set_id(s, sample_id) ||
        flm_sample_set_style(s, style == FLM_PACK_WORDS ? "word" : "word-asr") ||
        flm_sample_meta_set_int(s, "pack.words", (int64_t)n_words) ||
        flm_sample_meta_set_int(s, "pack.words_shifted", shifted) ||
        flm_sample_meta_set_int(s, "pack.speech_frames", n_frames) ||
        (style == FLM_PACK_WORDS_ASR && flm_sample_meta_set_int(s, "pack.word_lag", lag))) {
        flm_sample_destroy(&s);
        return flm_error_set(err, FLM_ENOMEM, "out of memory packing %s", sample_id);
    }
    *out = s;
    return 0;
}
