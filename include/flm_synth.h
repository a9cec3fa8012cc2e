/* flm_synth.h - random but well-formed samples, for the demo, tests and benchmarks.
 *
 *     flm_sample *s = NULL;
 *     flm_synth_params sp = flm_synth_default_params();
 *     flm_synth_sample(&s, &profiles, &sp, seed, "synthetic/000042", &err);   // caller destroys
 *
 * A synthesized sample looks like a packed post-training stream (DESIGN 3.1/3.2): "sentences" of
 * random text ids, each followed by <wait>, with random speech codes starting `lead` frames after
 * the sentence (TTS style, on the speak channels) or the speech first and the text after it (ASR
 * style, on the listen channels), silences between pairs, loss classes from the default rules,
 * and a few metadata keys and events. Everything is drawn from flm_rng keyed by (seed, id), so
 * the same arguments give the same sample. It is NOT real speech: codes are uniform random.
 */
#ifndef FLM_SYNTH_H
#define FLM_SYNTH_H

#include <stdint.h>

#include "flm_error.h"
#include "flm_profile.h"
#include "flm_stream.h"

typedef struct flm_synth_params {
    int32_t min_frames, max_frames; /* sample length range */
    int32_t lead;                   /* TTS text lead in frames (2) */
    double p_asr;                   /* probability of ASR style (0.5) */
    double p_event;                 /* probability of one "interrupt" event (0.3) */
} flm_synth_params;

FLM_API flm_synth_params flm_synth_default_params(void);
FLM_API int flm_synth_sample(flm_sample **out, const flm_profiles *p, const flm_synth_params *sp,
                             uint64_t seed, const char *id, flm_error *err);

#endif
