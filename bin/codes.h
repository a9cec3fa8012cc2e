/* codes.h - audio file -> Mimi codes, streamed (memory does not grow with the file except for the
 * codes themselves). Shared by `flm codec encode` and `flm pack`. */
#ifndef FLM_BIN_CODES_H
#define FLM_BIN_CODES_H

#include <stdint.h>

#include "flm_error.h"
#include "flm_mimi.h"

#define CODES_STEP 32 /* frames per codec call; streams are created with this max_frames */

typedef struct codes_timing {
    double decode_s, encode_s; /* accumulated by codes_encode_file */
} codes_timing;

/* Decodes path (channel -1: the mono mixdown; otherwise that channel of the file) to 24 kHz,
 * encodes it through s (reset first; created with FLM_MIMI_ENCODE and CODES_STEP) and returns
 * *codes [n_q][*n_frames] (caller frees with flm_free). The last partial frame is zero-padded,
 * as flm_mimi_encode does, so the codes equal a batch encode of the whole file. */
int codes_encode_file(flm_mimi_stream *s, int n_q, const char *path, int channel, int32_t **codes,
                      int64_t *n_frames, codes_timing *timing, flm_error *err);

/* The codec's codes for a frame of silence: the last of 25 frames of digital silence encoded by
 * a fresh stream (the first frames still carry the start-up of the causal convolutions). */
int codes_silence(flm_mimi *m, int n_q, int32_t *silence, flm_error *err);

#endif
