/* render.h - a packed sample's two sides as audio through the Mimi decoder (bin/cmd_codec.c):
 * used by `flm render` (stereo wav) and `flm inspect --html --codec` (players, waveforms). */
#ifndef FLM_RENDER_H
#define FLM_RENDER_H

#include <stdint.h>

#include "flm_mimi.h"
#include "flm_stream.h"

/* Decodes the listen and speak codebooks of smp into two 24 kHz mono buffers of n_samples
 * (caller frees both with flm_free); frames without codes (AUD_EMPTY/AUD_PAD) are silent. */
int render_sides(flm_mimi *m, const flm_sample *smp, float **listen, float **speak,
                 int64_t *n_samples, flm_error *err);

#endif
