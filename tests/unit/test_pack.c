/* Packers: an independent checker of the TTS/ASR layouts over many seeds, exact word-level
 * layouts, determinism and bad inputs. The checker knows only DESIGN 3.1/3.2/3.6, not the
 * packer's code. */
#include <stdlib.h>

#include "flm_alloc.h"
#include "flm_pack.h"
#include "flm_rng.h"
#include "tap.h"
#include "test_util.h"

static flm_profiles P;

typedef struct pairset {
    flm_pack_pair *pairs;
    int32_t **text, **codes;
    size_t n;
} pairset;

static pairset make_pairs(uint64_t seed, size_t n)
{
    pairset ps = {calloc(n, sizeof(flm_pack_pair)), calloc(n, sizeof(int32_t *)),
                  calloc(n, sizeof(int32_t *)), n};
    flm_rng r;
    flm_rng_init(&r, seed, "pairs", "test");
    for (size_t i = 0; i < n; i++) {
        int32_t nt = 1 + (int32_t)flm_rng_below(&r, 40);
        /* a third of the sentences have more tokens than speech frames */
        int32_t nf = flm_rng_below(&r, 3) == 0 ? 1 + (int32_t)flm_rng_below(&r, (uint32_t)nt)
                                               : nt + (int32_t)flm_rng_below(&r, 200);
        ps.text[i] = malloc(sizeof(int32_t) * (size_t)nt);
        ps.codes[i] = malloc(sizeof(int32_t) * FLM_N_CODEBOOKS * (size_t)nf);
        for (int32_t k = 0; k < nt; k++)
            ps.text[i][k] = (int32_t)flm_rng_below(&r, 151643);
        for (int32_t k = 0; k < FLM_N_CODEBOOKS * nf; k++)
            ps.codes[i][k] = (int32_t)flm_rng_below(&r, 2048);
        ps.pairs[i] = (flm_pack_pair){NULL, ps.text[i], nt, ps.codes[i], nf};
    }
    return ps;
}

static void free_pairs(pairset *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->text[i]);
        free(ps->codes[i]);
    }
    free(ps->pairs);
    free(ps->text);
    free(ps->codes);
}

/* Returns 0 if sample s is a correct packing of pairs[0..n); else a description in why. */
static int check(const flm_sample *s, const flm_packer_params *pp, const flm_pack_pair *pairs,
                 size_t n, char *why, size_t wn)
{
    const int tts = pp->style == FLM_PACK_TTS;
    const int sp = tts ? FLM_CH_SPEAK : FLM_CH_LISTEN, idle = tts ? FLM_CH_LISTEN : FLM_CH_SPEAK;
    const int32_t T = s->n_frames, wait = P.vocab.text_wait, empty = P.codec.aud_empty;
    if (T > pp->sample_frames)
        return snprintf(why, wn, "%d frames > %d", T, pp->sample_frames);
    uint8_t *speech = calloc((size_t)T, 1); /* frames carrying a pair's speech */
    int32_t t = 0, prev_speech_end = -1, prev_text_end = -1, grown = 0, n_tok = 0;
    int rc = 0;
    for (size_t j = 0; j < n && !rc; j++) {
        const flm_pack_pair *q = &pairs[j];
        while (t < T && FLM_TOK(s, 0, t) == wait)
            t++;
        int32_t text_at = t;
        if (text_at + q->n_text > T) {
            rc = snprintf(why, wn, "pair %zu: text missing", j);
            break;
        }
        for (int32_t k = 0; k < q->n_text; k++)
            if (FLM_TOK(s, 0, text_at + k) != q->text[k])
                rc =
                    snprintf(why, wn, "pair %zu: text token %d differs or is not contiguous", j, k);
        n_tok += q->n_text;
        t = text_at + q->n_text;
        int32_t speech_at = tts ? text_at + pp->lead : text_at - pp->lag - q->n_frames;
        if (speech_at < 0 || speech_at + q->n_frames > T) {
            rc = rc ? rc : snprintf(why, wn, "pair %zu: speech outside the sample", j);
            break;
        }
        for (int c = 0; c < FLM_N_CODEBOOKS; c++)
            for (int32_t k = 0; k < q->n_frames; k++)
                if (FLM_TOK(s, sp + c, speech_at + k) != q->codes[c * q->n_frames + k])
                    rc = rc ? rc : snprintf(why, wn, "pair %zu: code cb %d frame %d", j, c, k);
        for (int32_t k = 0; k < q->n_frames; k++) {
            if (speech[speech_at + k])
                rc = rc ? rc : snprintf(why, wn, "pair %zu: speech overlaps another", j);
            speech[speech_at + k] = 1;
        }
        if (j > 0) { /* the gap between speeches: drawn silence, or grown so that this text
                      * starts where the previous one ended */
            int32_t gap = speech_at - prev_speech_end;
            if (text_at < prev_text_end)
                rc = rc ? rc : snprintf(why, wn, "pair %zu: texts overlap", j);
            else if (text_at == prev_text_end && gap > pp->silence_max)
                grown++;
            else if (gap < pp->silence_min || gap > pp->silence_max)
                rc = rc ? rc : snprintf(why, wn, "pair %zu: gap %d", j, gap);
        }
        if (!tts && text_at < speech_at + q->n_frames + pp->lag)
            rc = rc ? rc : snprintf(why, wn, "pair %zu: ASR text before the speech ends", j);
        prev_speech_end = speech_at + q->n_frames;
        prev_text_end = text_at + q->n_text;
    }
    int32_t non_wait = 0;
    for (int32_t k = 0; k < T; k++)
        non_wait += FLM_TOK(s, 0, k) != wait;
    if (!rc && non_wait != n_tok)
        rc = snprintf(why, wn, "%d non-<wait> text tokens, pairs have %d", non_wait, n_tok);
    for (int32_t k = 0; k < T && !rc; k++) {
        for (int c = 0; c < FLM_N_CODEBOOKS; c++) {
            if (FLM_TOK(s, idle + c, k) != empty)
                rc = snprintf(why, wn, "idle channel %d not AUD_EMPTY at %d", idle + c, k);
            if (!speech[k] && FLM_TOK(s, sp + c, k) != pp->silence[c])
                rc = snprintf(why, wn, "no silence codes at frame %d", k);
        }
        /* classes match tokens */
        uint8_t want = FLM_TOK(s, 0, k) == wait ? FLM_LOSS_WAIT : FLM_LOSS_MONOLOGUE;
        if (FLM_CLS(s, 0, k) != want)
            rc = snprintf(why, wn, "text class at %d", k);
        for (int c = 0; c < FLM_N_CODEBOOKS; c++) {
            uint8_t ws = tts ? (c == 0 ? FLM_LOSS_SEMANTIC : FLM_LOSS_ACOUSTIC) : FLM_LOSS_NONE;
            if (FLM_CLS(s, FLM_CH_SPEAK + c, k) != ws || FLM_CLS(s, FLM_CH_LISTEN + c, k))
                rc = snprintf(why, wn, "audio class at cb %d frame %d", c, k);
        }
    }
    const flm_meta *m = flm_sample_meta_get(s, "pack.text_overruns");
    if (!rc && (!m || m->i < grown))
        rc = snprintf(why, wn, "text_overruns %lld < %d gaps grown", m ? (long long)m->i : -1LL,
                      grown);
    m = flm_sample_meta_get(s, "pack.pairs");
    if (!rc && (!m || m->i != (int64_t)n))
        rc = snprintf(why, wn, "pack.pairs");
    free(speech);
    return rc;
}

static void layouts(void)
{
    int samples = 0, bad = 0, lost = 0, overruns = 0, tts_n = 0, asr_n = 0;
    for (uint64_t seed = 1; seed <= 120; seed++) {
        pairset ps = make_pairs(seed, 300);
        flm_packer_params pp = flm_packer_default_params(&P);
        pp.style = seed % 2 ? FLM_PACK_TTS : FLM_PACK_ASR;
        pp.lead = (int32_t)(seed % 3);
        pp.lag = (int32_t)(seed % 4);
        pp.sample_frames = seed % 5 ? 8192 : 1000;
        pp.silence_min = (int32_t)(seed % 3);
        pp.silence_max = pp.silence_min + (int32_t)(seed % 40);
        for (int c = 0; c < FLM_N_CODEBOOKS; c++)
            pp.silence[c] = (int32_t)((seed * 31 + (uint64_t)c * 7) % 2048);
        size_t at = 0;
        for (int k = 0; at < ps.n; k++) {
            char id[64], why[256] = "";
            snprintf(id, sizeof id, "seed%llu/%d", (unsigned long long)seed, k);
            flm_sample *s = NULL;
            size_t used = 0;
            flm_error err = {0};
            if (flm_pack_sentences(&s, &P, &pp, ps.pairs + at, ps.n - at, seed, id, &used, &err) <
                0) {
                if (bad++ < 3)
                    tap_diag("%s: %s", id, err.msg);
                break;
            }
            if (check(s, &pp, ps.pairs + at, used, why, sizeof why)) {
                if (bad++ < 5)
                    tap_diag("%s (%s, lead %d lag %d): %s", id, s->style, pp.lead, pp.lag, why);
            }
            overruns += (int)flm_sample_meta_get(s, "pack.text_overruns")->i;
            tts_n += pp.style == FLM_PACK_TTS;
            asr_n += pp.style == FLM_PACK_ASR;
            samples++;
            at += used;
            flm_sample_destroy(&s);
        }
        lost += at != ps.n;
        free_pairs(&ps);
    }
    tap_diag("%d samples (%d TTS, %d ASR), %d grown gaps", samples, tts_n, asr_n, overruns);
    TAP_OK(samples > 1000, "checked %d packed samples over 120 seeds", samples);
    TAP_EQ_INT(bad, 0, "every sample passes the independent checker");
    TAP_EQ_INT(lost, 0, "every pair is placed exactly once, in order (none dropped)");
    TAP_OK(overruns > 0, "text longer than its speech occurred and grew the gap");
}

static void determinism_and_errors(void)
{
    pairset ps = make_pairs(7, 50);
    flm_packer_params pp = flm_packer_default_params(&P);
    flm_sample *a = NULL, *b = NULL, *c = NULL;
    size_t ua, ub, uc;
    flm_pack_sentences(&a, &P, &pp, ps.pairs, ps.n, 42, "x", &ua, NULL);
    flm_pack_sentences(&b, &P, &pp, ps.pairs, ps.n, 42, "x", &ub, NULL);
    flm_pack_sentences(&c, &P, &pp, ps.pairs, ps.n, 42, "y", &uc, NULL);
    TAP_OK(flm_sample_equal(a, b), "same seed and id: identical sample");
    TAP_OK(a->n_frames != c->n_frames || memcmp(a->tokens, c->tokens, 4 * 17 * (size_t)a->n_frames),
           "another sample id draws other silences");
    flm_sample_destroy(&a);
    flm_sample_destroy(&b);
    flm_sample_destroy(&c);

    flm_error err = {0};
    pp.sample_frames = 40;
    ps.pairs[0].id = "corpus/long-utt";
    ps.pairs[0].n_frames = 39;
    TAP_EQ_INT(flm_pack_sentences(&a, &P, &pp, ps.pairs, 1, 1, "z", &ua, &err), FLM_ERANGE,
               "a pair longer than a sample is refused");
    TAP_CONTAINS(err.msg, "corpus/long-utt", "naming it");
    pp = flm_packer_default_params(&P);
    ps.text[1][2] = P.vocab.text_wait;
    TAP_EQ_INT(flm_pack_sentences(&a, &P, &pp, ps.pairs + 1, 1, 1, "z", &ua, &err), FLM_EINVAL,
               "<wait> inside a sentence is refused");
    TAP_CONTAINS(err.msg, "text token 2 is 151665", "naming the token");
    ps.codes[2][5] = 2049;
    TAP_EQ_INT(flm_pack_sentences(&a, &P, &pp, ps.pairs + 2, 1, 1, "z", &ua, &err), FLM_EINVAL,
               "AUD_EMPTY as a speech code is refused");
    pp.lead = 3;
    TAP_EQ_INT(flm_pack_sentences(&a, &P, &pp, ps.pairs + 3, 1, 1, "z", &ua, &err), FLM_EINVAL,
               "lead 3 is refused (0..2)");
    free_pairs(&ps);
}

static void words(void)
{
    /* 12.5 Hz: "hi" at 0.10 s -> frame 1; "there" (2 tokens) at 0.20 s -> frame 2, but "hi" has 2
     * tokens (frames 1-2): shifted to 3; "x" at 0.80 s -> frame 10 */
    int32_t hi[2] = {100, 101}, there[2] = {200, 201}, x[1] = {300};
    flm_pack_word w[3] = {{hi, 2, 0.10, 0.18}, {there, 2, 0.20, 0.5}, {x, 1, 0.80, 0.9}};
    int32_t codes[FLM_N_CODEBOOKS * 12];
    for (int i = 0; i < FLM_N_CODEBOOKS * 12; i++)
        codes[i] = i % 2048;
    flm_sample *s = NULL;
    flm_error err = {0};
    TAP_EQ_INT(flm_pack_words(&s, &P, FLM_PACK_WORDS, 0, codes, 12, w, 3, "w", &err), 0,
               "word-level layout");
    const int32_t pad = P.vocab.text_pad, ep = P.vocab.text_epad;
    const int32_t want[12] = {ep, 100, 101, 200, 201, pad, pad, pad, pad, ep, 300, pad};
    int ok = s->n_frames == 12;
    for (int t = 0; ok && t < 12; t++)
        ok &= FLM_TOK(s, 0, t) == want[t];
    TAP_OK(ok, "tokens at floor(start*12.5), keep-and-shift, EPAD before a word, PAD elsewhere");
    TAP_EQ_INT(flm_sample_meta_get(s, "pack.words_shifted")->i, 1, "one word shifted");
    TAP_OK(FLM_CLS(s, 0, 1) == FLM_LOSS_MONOLOGUE && FLM_CLS(s, 0, 0) == FLM_LOSS_WAIT &&
               FLM_CLS(s, 0, 5) == FLM_LOSS_WAIT,
           "word tokens monologue, PAD/EPAD wait class");
    TAP_OK(FLM_TOK(s, FLM_CH_SPEAK + 3, 7) == codes[3 * 12 + 7] &&
               FLM_TOK(s, FLM_CH_LISTEN, 7) == P.codec.aud_empty,
           "codes on speak, listen empty");
    flm_sample_destroy(&s);
    w[2].start = 0.9; /* 3 tokens ... past the end: the sample grows, nothing dropped */
    int32_t longw[5] = {1, 2, 3, 4, 5};
    w[2].text = longw;
    w[2].n_text = 5;
    flm_pack_words(&s, &P, FLM_PACK_WORDS, 0, codes, 12, w, 3, "w2", &err);
    TAP_EQ_INT(s->n_frames, 17, "tokens past the speech extend the sample");
    TAP_EQ_INT(FLM_TOK(s, 0, 15), 5, "last token kept");
    flm_sample_destroy(&s);
    w[1].start = -1;
    TAP_EQ_INT(flm_pack_words(&s, &P, FLM_PACK_WORDS, 0, codes, 12, w, 3, "w3", &err), FLM_EINVAL,
               "negative time");
    TAP_CONTAINS(err.msg, "word 1", "names the word");
}

/* The paper's arm: each word's tokens start lag frames after the word ends, speech on listen. */
static void words_asr(void)
{
    /* 12.5 Hz: "hi" 0.10..0.24 s ends in frame 2 (0.24 * 12.5 = 3.0: ceil 3) + lag 1 -> 4;
     * "there" 0.30..0.33 s: ceil(4.125) = 5 + 1 = 6, but "hi" holds 4-5: 6 is free;
     * "x" 0.34..0.40: ceil(5.0) + 1 = 6, taken by "there" (6-7): shifted to 8 */
    int32_t hi[2] = {100, 101}, there[2] = {200, 201}, x[1] = {300};
    flm_pack_word w[3] = {{hi, 2, 0.10, 0.24}, {there, 2, 0.30, 0.33}, {x, 1, 0.34, 0.40}};
    int32_t codes[FLM_N_CODEBOOKS * 12];
    for (int i = 0; i < FLM_N_CODEBOOKS * 12; i++)
        codes[i] = (i * 7) % 2048;
    flm_sample *s = NULL;
    flm_error err = {0};
    TAP_EQ_INT(flm_pack_words(&s, &P, FLM_PACK_WORDS_ASR, 1, codes, 12, w, 3, "a", &err), 0,
               "word-level ASR layout");
    const int32_t pad = P.vocab.text_pad, ep = P.vocab.text_epad;
    const int32_t want[12] = {pad, pad, pad, ep, 100, 101, 200, 201, 300, pad, pad, pad};
    int ok = s->n_frames == 12;
    for (int t = 0; ok && t < 12; t++)
        ok &= FLM_TOK(s, 0, t) == want[t];
    TAP_OK(ok, "tokens at ceil(end*12.5) + lag, keep-and-shift, EPAD before a word");
    TAP_EQ_INT(flm_sample_meta_get(s, "pack.words_shifted")->i, 1, "one word shifted");
    TAP_EQ_INT(flm_sample_meta_get(s, "pack.word_lag")->i, 1, "the lag is recorded");
    TAP_EQ_STR(s->style, "word-asr", "style word-asr");
    int on_listen = 1;
    for (int t = 0; t < 12; t++)
        for (int c = 0; c < FLM_N_CODEBOOKS; c++)
            on_listen &= FLM_TOK(s, FLM_CH_LISTEN + c, t) == codes[c * 12 + t] &&
                         FLM_TOK(s, FLM_CH_SPEAK + c, t) == P.codec.aud_empty;
    TAP_OK(on_listen, "codes on listen, speak empty");
    TAP_OK(FLM_CLS(s, 0, 4) == FLM_LOSS_MONOLOGUE && FLM_CLS(s, 0, 3) == FLM_LOSS_WAIT &&
               FLM_CLS(s, FLM_CH_SPEAK, 4) == FLM_LOSS_NONE,
           "word tokens monologue, pads wait, no speech target");
    flm_sample_destroy(&s);
    TAP_EQ_INT(flm_pack_words(&s, &P, FLM_PACK_WORDS_ASR, 0, codes, 12, w, 3, "b", &err), 0,
               "lag 0");
    TAP_EQ_INT(FLM_TOK(s, 0, 3), 100, "lag 0: right after the word's last frame");
    flm_sample_destroy(&s);
    TAP_EQ_INT(flm_pack_words(&s, &P, FLM_PACK_TTS, 0, codes, 12, w, 3, "c", &err), FLM_EINVAL,
               "a sentence style is refused");
}

int main(void)
{
    flm_profiles_default(&P);
    layouts();
    determinism_and_errors();
    words();
    words_asr();
    return tap_done();
}
