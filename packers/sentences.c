/* TTS- and ASR-style packing of aligned (speech, sentence) pairs. See flm_pack.h. */
#include <stdio.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_pack.h"
#include "flm_rng.h"

flm_packer_params flm_packer_default_params(const flm_profiles *p)
{
    flm_packer_params pp;
    memset(&pp, 0, sizeof pp);
    pp.style = FLM_PACK_TTS;
    pp.lead = 2;
    pp.lag = 0;
    pp.sample_frames = p->model.sample_frames;
    pp.silence_min = 1;
    pp.silence_max = 38;
    return pp;
}

static int check_params(const flm_packer_params *pp, const flm_profiles *p, flm_error *err)
{
    if (pp->style != FLM_PACK_TTS && pp->style != FLM_PACK_ASR)
        return flm_error_set(err, FLM_EINVAL, "packer: unknown style %d", pp->style);
    if (pp->lead < 0 || pp->lead > 2)
        return flm_error_set(err, FLM_EINVAL, "packer: lead %d outside 0..2", pp->lead);
    if (pp->lag < 0 || pp->lag > 64)
        return flm_error_set(err, FLM_EINVAL, "packer: lag %d outside 0..64", pp->lag);
    if (pp->sample_frames < 1 || pp->sample_frames > FLM_MAX_FRAMES)
        return flm_error_set(err, FLM_EINVAL, "packer: sample_frames %d", pp->sample_frames);
    if (pp->silence_min < 0 || pp->silence_max < pp->silence_min)
        return flm_error_set(err, FLM_EINVAL, "packer: silence range [%d, %d]", pp->silence_min,
                             pp->silence_max);
    for (int c = 0; c < FLM_N_CODEBOOKS; c++)
        if (pp->silence[c] < 0 || pp->silence[c] >= p->codec.card)
            return flm_error_set(err, FLM_EINVAL, "packer: silence code %d of codebook %d",
                                 pp->silence[c], c);
    return 0;
}

/* Frames a pair occupies from its start: [0, speech_end) carries speech, text runs
 * [text_at, text_at + n_text). */
typedef struct extent {
    int32_t speech_at, speech_end, text_at, text_end, end;
} extent;

static extent pair_extent(const flm_packer_params *pp, const flm_pack_pair *q, int32_t s)
{
    extent e;
    if (pp->style == FLM_PACK_TTS) {
        e.text_at = s;
        e.speech_at = s + pp->lead;
    } else {
        e.speech_at = s;
        e.text_at = s + q->n_frames + pp->lag;
    }
    e.speech_end = e.speech_at + q->n_frames;
    e.text_end = e.text_at + q->n_text;
    e.end = e.speech_end > e.text_end ? e.speech_end : e.text_end;
    return e;
}

static int check_pair(const flm_pack_pair *q, size_t i, const flm_profiles *p, flm_error *err)
{
    const char *id = q->id ? q->id : "?";
    if (q->n_text < 1 || q->n_frames < 1)
        return flm_error_set(err, FLM_EINVAL, "pair %zu (%s): %d text tokens, %d speech frames", i,
                             id, q->n_text, q->n_frames);
    for (int32_t k = 0; k < q->n_text; k++)
        if (q->text[k] < 0 || q->text[k] >= p->vocab.text_vocab_size ||
            q->text[k] == p->vocab.text_wait)
            return flm_error_set(err, FLM_EINVAL, "pair %zu (%s): text token %d is %d", i, id, k,
                                 q->text[k]);
    for (int32_t k = 0; k < FLM_N_CODEBOOKS * q->n_frames; k++)
        if (q->codes[k] < 0 || q->codes[k] >= p->codec.card)
            return flm_error_set(err, FLM_EINVAL, "pair %zu (%s): code %d at codebook %d frame %d",
                                 i, id, q->codes[k], k / q->n_frames, k % q->n_frames);
    return 0;
}

int flm_pack_sentences(flm_sample **out, const flm_profiles *p, const flm_packer_params *pp,
                       const flm_pack_pair *pairs, size_t n, uint64_t seed, const char *sample_id,
                       size_t *n_used, flm_error *err)
{
    *out = NULL;
    *n_used = 0;
    int rc = check_params(pp, p, err);
    if (rc < 0)
        return rc;
    if (n == 0)
        return flm_error_set(err, FLM_EINVAL, "packer: no pairs for sample %s", sample_id);
    flm_rng r;
    flm_rng_init(&r, seed, sample_id, "pack.silence");
    uint32_t span = (uint32_t)(pp->silence_max - pp->silence_min + 1);
    /* plan: start frame of each pair that fits (each takes at least one frame) */
    size_t cap = n < (size_t)pp->sample_frames ? n : (size_t)pp->sample_frames;
    int32_t *starts = flm_malloc(sizeof *starts * cap);
    if (!starts)
        return flm_error_set(err, FLM_ENOMEM, "out of memory packing %s", sample_id);
    int32_t end = 0, overruns = 0, prev_speech_end = 0, prev_text_end = 0;
    size_t used = 0;
    while (used < cap) {
        const flm_pack_pair *q = &pairs[used];
        if ((rc = check_pair(q, used, p, err)) < 0)
            goto done;
        /* the silence is between speech segments (the first one: before the first speech) */
        int32_t speech_at = prev_speech_end + pp->silence_min + (int32_t)flm_rng_below(&r, span);
        int32_t s = pp->style == FLM_PACK_TTS ? speech_at - pp->lead : speech_at;
        if (s < 0)
            s = 0;
        extent e = pair_extent(pp, q, s);
        if (e.text_at < prev_text_end) { /* texts would overlap: grow the gap, never overwrite */
            s += prev_text_end - e.text_at;
            e = pair_extent(pp, q, s);
            overruns++;
        }
        if (e.end > pp->sample_frames) {
            if (used == 0 && pair_extent(pp, q, 0).end > pp->sample_frames) {
                rc = flm_error_set(err, FLM_ERANGE,
                                   "pair %s: %d speech frames and %d text tokens do not fit in "
                                   "a sample of %d frames",
                                   q->id ? q->id : "0", q->n_frames, q->n_text, pp->sample_frames);
                goto done;
            }
            if (used == 0) /* the drawn leading silence was too long for this pair */
                e = pair_extent(pp, q, s = 0);
            else
                break;
        }
        starts[used++] = s;
        end = e.end;
        prev_speech_end = e.speech_end;
        prev_text_end = e.text_end;
    }
    int32_t tail = pp->silence_min + (int32_t)flm_rng_below(&r, span);
    int32_t n_frames = end + tail < pp->sample_frames ? end + tail : pp->sample_frames;
    flm_sample *smp = NULL;
    if ((rc = flm_sample_create(&smp, n_frames, err)) < 0)
        goto done;
    int speech_ch = pp->style == FLM_PACK_TTS ? FLM_CH_SPEAK : FLM_CH_LISTEN;
    int idle_ch = pp->style == FLM_PACK_TTS ? FLM_CH_LISTEN : FLM_CH_SPEAK;
    for (int32_t t = 0; t < n_frames; t++) {
        FLM_TOK(smp, FLM_CH_TEXT, t) = p->vocab.text_wait;
        for (int c = 0; c < FLM_N_CODEBOOKS; c++) {
            FLM_TOK(smp, speech_ch + c, t) = pp->silence[c];
            FLM_TOK(smp, idle_ch + c, t) = p->codec.aud_empty;
        }
    }
    int64_t speech_frames = 0;
    size_t layout_size = 1;
    for (size_t i = 0; i < used; i++)
        layout_size += 24 + (pairs[i].id ? strlen(pairs[i].id) : 1);
    char *layout = flm_malloc(layout_size), *lp = layout;
    if (!layout) {
        flm_sample_destroy(&smp);
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory packing %s", sample_id);
        goto done;
    }
    *lp = 0;
    for (size_t i = 0; i < used; i++) {
        const flm_pack_pair *q = &pairs[i];
        extent e = pair_extent(pp, q, starts[i]);
        lp += snprintf(lp, layout_size - (size_t)(lp - layout), "%s%d %d %s", i ? "\n" : "",
                       e.text_at, e.speech_at, q->id ? q->id : "-");
        memcpy(&FLM_TOK(smp, FLM_CH_TEXT, e.text_at), q->text, sizeof(int32_t) * (size_t)q->n_text);
        for (int c = 0; c < FLM_N_CODEBOOKS; c++)
            memcpy(&FLM_TOK(smp, speech_ch + c, e.speech_at), q->codes + (size_t)c * q->n_frames,
                   sizeof(int32_t) * (size_t)q->n_frames);
        speech_frames += q->n_frames;
    }
    flm_sample_default_classes(smp, p->vocab.text_wait, p->codec.aud_empty, p->codec.aud_pad);
    smp->duration_s = n_frames * (double)p->codec.samples_per_frame / p->codec.sample_rate;
    if (flm_sample_set_id(smp, sample_id) ||
        flm_sample_set_style(smp, pp->style == FLM_PACK_TTS ? "tts" : "asr") ||
        flm_sample_meta_set_int(smp, "pack.pairs", (int64_t)used) ||
        flm_sample_meta_set_int(smp, "pack.text_overruns", overruns) ||
        flm_sample_meta_set_int(smp, "pack.speech_frames", speech_frames) ||
        flm_sample_meta_set_int(smp, pp->style == FLM_PACK_TTS ? "pack.lead" : "pack.lag",
                                pp->style == FLM_PACK_TTS ? pp->lead : pp->lag) ||
        flm_sample_meta_set_text(smp, "pack.layout", layout)) {
        flm_free(layout);
        flm_sample_destroy(&smp);
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory packing %s", sample_id);
        goto done;
    }
    flm_free(layout);
    *out = smp;
    *n_used = used;
done:
    flm_free(starts);
    return rc;
}
