/* flm_activity.h - who speaks when: a frame-level voice activity decision on one side's waveform,
 * and its compact form in a sample's metadata.
 *
 *     uint8_t act[T];
 *     flm_activity_frames(speak_pcm, n_samples, 1920, T, act);          // 1 = speech in frame t
 *     char *runs = flm_activity_format(act, T);                         // "10+20,50+2"; flm_free
 *     flm_sample_meta_set_text(s, FLM_ACTIVITY_SPEAK, runs);
 *     ...
 *     flm_activity_parse(flm_sample_meta_get(s, FLM_ACTIVITY_SPEAK)->text, T, act, &err);
 *
 * The decision is energy-based (documented in docs/views.md), computed by the packers on each
 * side's waveform before it is encoded (the listen side before augmentation, so noise and echo do
 * not count as the user speaking). Per frame t of `spf` samples:
 *   1. e[t] = 10 log10(mean of x^2 over the frame), in dB relative to full scale;
 *   2. the threshold is max(FLM_ACTIVITY_FLOOR_DB, max_t e[t] - FLM_ACTIVITY_RANGE_DB): relative
 *      to the side's loudest frame, so a quiet recording is judged as well as a loud one, and a
 *      side that never rises above the floor has no speech at all;
 *   3. a frame is speech when e[t] is above the threshold;
 *   4. pauses of at most FLM_ACTIVITY_GAP frames between speech frames are speech (the pauses
 *      between words belong to the turn);
 *   5. speech runs of fewer than FLM_ACTIVITY_MIN_RUN frames are dropped (clicks, breaths).
 * The stored form is the speech runs as "start+length" in frames, ascending, comma-separated ("" for
 * none): a 12 s dialog's two sides take a few dozen bytes.
 */
#ifndef FLM_ACTIVITY_H
#define FLM_ACTIVITY_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"

#define FLM_ACTIVITY_FLOOR_DB (-50.0)
#define FLM_ACTIVITY_RANGE_DB 35.0
#define FLM_ACTIVITY_GAP 3     /* frames: 240 ms at 12.5 Hz */
#define FLM_ACTIVITY_MIN_RUN 2 /* frames: 160 ms */
/* The metadata keys of the two sides. */
#define FLM_ACTIVITY_LISTEN "activity.listen"
#define FLM_ACTIVITY_SPEAK "activity.speak"

/* act[t] for t in [0, n_frames): 1 where frame t (samples [t spf, (t+1) spf), zero past n) is
 * speech. Two passes over the samples (the loudest frame, then the decision): no allocation. */
FLM_API void flm_activity_frames(const float *pcm, int64_t n, int32_t spf, int32_t n_frames,
                                 uint8_t *act);
/* The runs of act as "start+length,..." (caller frees with flm_free); NULL when out of memory. */
FLM_API char *flm_activity_format(const uint8_t *act, int32_t n_frames);
/* flm_activity_frames then flm_activity_format: the metadata text of one side's waveform (caller
 * frees with flm_free); NULL when out of memory. */
FLM_API char *flm_activity_text(const float *pcm, int64_t n, int32_t spf, int32_t n_frames);
/* The inverse: act[0..n_frames) from text. Errors (FLM_EFORMAT) name the position and say why:
 * not "start+length", runs not ascending or touching, a run past n_frames. */
FLM_API int flm_activity_parse(const char *text, int32_t n_frames, uint8_t *act, flm_error *err);

/* The side key (FLM_ACTIVITY_SPEAK or _LISTEN) of s into act[0..s->n_frames): 1 when stored, 0
 * when the sample does not carry it (act untouched), or FLM_EFORMAT (not text, or bad runs: the
 * message names the sample and the key). */
struct flm_sample;
FLM_API int flm_activity_of_sample(const struct flm_sample *s, const char *key, uint8_t *act,
                                   flm_error *err);

#endif
