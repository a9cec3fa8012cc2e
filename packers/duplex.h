/* duplex.h - what the dialog and conversation packers share (internal to packers/): the codes
 * of both tracks checked, and a sample with <wait> on the text channel and the codes on speak and
 * listen. */
#ifndef FLM_PACKERS_DUPLEX_H
#define FLM_PACKERS_DUPLEX_H

#include <stdint.h>

#include "flm_error.h"
#include "flm_profile.h"
#include "flm_stream.h"

/* Whether v may be a text token of a monologue (in the vocabulary, not <wait>/<asr>/<answer>). */
int duplex_text_token_ok(const flm_profiles *p, int32_t v);
/* FLM_EINVAL "<what> <id>: speak code C at codebook K frame T" for a code outside the codebook;
 * speak and listen are [FLM_N_CODEBOOKS][n_frames], codebook-major. */
int duplex_check_codes(const flm_profiles *p, const int32_t *speak, const int32_t *listen,
                       int32_t n_frames, const char *what, const char *id, flm_error *err);
/* A sample of n_frames: <wait> on the text channel, the codes on speak and listen. */
int duplex_sample_new(flm_sample **out, const flm_profiles *p, const int32_t *speak,
                      const int32_t *listen, int32_t n_frames, flm_error *err);

#endif
