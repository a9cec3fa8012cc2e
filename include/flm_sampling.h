/* flm_sampling.h - picking a token from logits as the published FLM-Audio / moshi code does
 * (MODEL.md 1.6): repetition penalty, temperature, top-p (or top-k), and a multinomial draw.
 *
 *     flm_sampling sp = flm_sampling_text_defaults();        // temp 0.01, top-p 0.9, rep 1.03
 *     int32_t id = flm_sample_token(logits, n, recent, n_recent, &sp, noise, work, order, -1, -1);
 *
 * The algorithm, in upstream's order:
 *  1. repetition penalty on the raw logits, once per distinct id of `recent` (the previous
 *     steps' tokens in the window): l < 0 ? l * p : l / p;
 *  2. temp <= 0: argmax; else probs = softmax(logits / temp) in float32;
 *  3. top_p > 0: sort descending, keep entry i while cumsum_i - p_i <= top_p (cumsum in double,
 *     as torch's CPU cumsum), renormalise; else top_k > 0: keep the k largest; else keep all;
 *  4. pick argmax(p_i / noise_i) over the kept entries, noise_i ~ Exp(1) drawn for the i-th
 *     entry in descending order (the exponential race; equivalent to a multinomial draw).
 * Ids skip_a / skip_b (>= 0) are never picked (their logit is -inf before step 2): FLM-Audio
 * masks AUD_PAD / AUD_EMPTY so Mimi can decode every generated code; upstream does not.
 *
 * Ownership: nothing is kept; work [n] floats and order [n] ints are caller scratch.
 */
#ifndef FLM_SAMPLING_H
#define FLM_SAMPLING_H

#include <stdint.h>

#include "flm_error.h"

typedef struct flm_sampling {
    float temp;        /* <= 0: greedy */
    float top_p;       /* > 0: nucleus sampling (top_k is then ignored, as upstream) */
    int top_k;         /* used when top_p <= 0; 0: no cut */
    float rep_penalty; /* 1: none */
    int rep_window;    /* previous steps considered */
} flm_sampling;

/* The published defaults: text temp 0.01, top-p 0.9, penalty 1.03 over 50 tokens; audio temp
 * 0.5, top-p 0.9, penalty 1.2 over 50 frames (codebooks 0..3 only, applied by the caller). */
FLM_API flm_sampling flm_sampling_text_defaults(void);
FLM_API flm_sampling flm_sampling_audio_defaults(void);

/* noise(ctx, i) returns the Exp(1) draw for the i-th kept entry (descending probability). */
typedef float (*flm_noise_fn)(void *ctx, int i);

FLM_API int32_t flm_sample_token(const float *logits, int n, const int32_t *recent, int n_recent,
                                 const flm_sampling *sp, flm_noise_fn noise, void *noise_ctx,
                                 float *work, int32_t *order, int32_t skip_a, int32_t skip_b);

#endif
