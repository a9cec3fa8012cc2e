/* flm_pack.h - stream organization for post-training (DESIGN 3.1, 3.2, 3.6): aligned
 * (speech, sentence) pairs in, one packed 17-channel sample out.
 *
 *     flm_packer_params pp = flm_packer_default_params(&profiles);
 *     pp.style = FLM_PACK_TTS;                     // or FLM_PACK_ASR
 *     memcpy(pp.silence, mimi_silence_codes, sizeof pp.silence);
 *     size_t used;
 *     flm_sample *s = NULL;
 *     if (flm_pack_sentences(&s, &profiles, &pp, pairs, n_pairs, seed, "corpus/utt7#0", &used,
 *                            &err) < 0) ...         // pairs[0..used) are in s; pack the rest next
 *     flm_sample_destroy(&s);
 *
 * TTS style (monologue leads): a pair starting at frame s has its text tokens at s, s+1, ... and
 * its speech codes on the speak channels from s + lead; the text channel holds <wait> after the
 * text until the next pair; listen channels hold AUD_EMPTY throughout.
 * ASR style (monologue trails): the speech codes sit on the listen channels from s; the text
 * starts lag frames after the speech ends; speak channels hold AUD_EMPTY throughout.
 * Between pairs the channel carrying speech holds the codec's silence codes and the text <wait>.
 * The next pair's speech starts `silence` frames (drawn uniformly from [silence_min,
 * silence_max] by the keyed generator) after the end of the previous speech, or later if its text
 * would otherwise start before the previous text ended: nothing is ever dropped or overwritten;
 * each such conflict grows the gap and is counted in the sample's metadata
 * ("pack.text_overruns"). The first speech starts after one such silence. Pairs are placed in order
 * until the next would not fit in sample_frames; the sample ends after the last pair plus a
 * trailing silence (cut at sample_frames). Loss classes follow flm_sample_default_classes.
 * Metadata "pack.layout" says where each pair went: one line per pair, "TEXT_AT SPEECH_AT ID"
 * (frames; ID the pair's id, "-" when NULL), so a user can find any sentence in the sample.
 *
 * Word-level layouts, the two arms of the ablation of paper Table 7 (one utterance a sample):
 *  - FLM_PACK_WORDS (Moshi's): speech codes on the speak channels, listen AUD_EMPTY; each word's
 *    tokens start at frame floor(start * frame_rate), as it is spoken;
 *  - FLM_PACK_WORDS_ASR (the paper's "ASR-style, where each word-level token slightly lags behind
 *    its pronunciation"): speech codes on the listen channels, speak AUD_EMPTY; each word's tokens
 *    start lag frames after the word ends, at frame ceil(end * frame_rate) + lag.
 * In both, one token per frame, shifted later in order when the previous word's tokens are still
 * running (keep and shift, counted in "pack.words_shifted"); every other text position holds
 * text_pad, except that the frame before a word's first token holds text_epad when it was
 * text_pad. Tokens running past the speech extend the sample; nothing is dropped.
 *
 * All inputs are borrowed; the output sample is owned by the caller.
 */
#ifndef FLM_PACK_H
#define FLM_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_profile.h"
#include "flm_stream.h"

enum { FLM_PACK_TTS = 1, FLM_PACK_ASR = 2, FLM_PACK_WORDS = 3, FLM_PACK_WORDS_ASR = 4 };

/* One aligned pair: a sentence's tokens and the codes of its speech. */
typedef struct flm_pack_pair {
    const char *id;      /* input key, for error messages (may be NULL) */
    const int32_t *text; /* [n_text] token ids */
    int32_t n_text;
    const int32_t *codes; /* [FLM_N_CODEBOOKS][n_frames], codebook-major */
    int32_t n_frames;
} flm_pack_pair;

typedef struct flm_packer_params {
    int style;                        /* FLM_PACK_TTS or FLM_PACK_ASR */
    int32_t lead;                     /* TTS: speech starts lead frames after the text (2; 0..2) */
    int32_t lag;                      /* ASR: text starts lag frames after the speech ends (0) */
    int32_t sample_frames;            /* 8192 */
    int32_t silence_min, silence_max; /* frames of silence between pairs (1..38 = 80 ms..3 s) */
    int32_t silence[FLM_N_CODEBOOKS]; /* the codec's codes for a frame of silence */
} flm_packer_params;

FLM_API flm_packer_params flm_packer_default_params(const flm_profiles *p);

/* Packs pairs[0..n) in order into one new sample with the given id; *n_used tells how many were
 * placed (>= 1). A first pair that alone does not fit in sample_frames is FLM_ERANGE, naming it
 * (the caller quarantines it and goes on with the next). */
FLM_API int flm_pack_sentences(flm_sample **out, const flm_profiles *p, const flm_packer_params *pp,
                               const flm_pack_pair *pairs, size_t n, uint64_t seed,
                               const char *sample_id, size_t *n_used, flm_error *err);

/* One timed word of the word-level layout. */
typedef struct flm_pack_word {
    const int32_t *text; /* [n_text] tokens of the word */
    int32_t n_text;
    double start, end; /* seconds from the utterance start */
} flm_pack_word;

/* Word-level layout of one utterance (style FLM_PACK_WORDS or FLM_PACK_WORDS_ASR, lag in frames
 * for the latter): codes [FLM_N_CODEBOOKS][n_frames], words placed as described above. Style
 * "word" or "word-asr"; metadata "pack.words", "pack.words_shifted" (words moved later by
 * keep-and-shift), "pack.word_lag" (ASR arm). */
FLM_API int flm_pack_words(flm_sample **out, const flm_profiles *p, int style, int32_t lag,
                           const int32_t *codes, int32_t n_frames, const flm_pack_word *words,
                           size_t n_words, const char *sample_id, flm_error *err);

#endif
