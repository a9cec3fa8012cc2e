/* Shared helpers of the dialog tests (test_dialog.c, test_dialog_sft.c): a dialog with its turn
 * audio and tokens in memory, and a stand-in for the codec. */
#ifndef FLM_TEST_DIALOG_UTIL_H
#define FLM_TEST_DIALOG_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flm_dialog.h"
#include "flm_stream.h"

#define SPF 1920 /* samples per frame at 24 kHz */

typedef struct tdialog {
    flm_dialog d; /* roles and start times only */
    int64_t n[FLM_DIALOG_MAX_TURNS];
    float *audio[FLM_DIALOG_MAX_TURNS];
    int32_t *tok[FLM_DIALOG_MAX_TURNS];
    int32_t ntok[FLM_DIALOG_MAX_TURNS];
} tdialog;

static inline void free_dialog(tdialog *td)
{
    for (int32_t k = 0; k < td->d.n_turns; k++) {
        free(td->audio[k]);
        free(td->tok[k]);
    }
}

/* A stand-in for the codec: codes are a hash of a few samples of each frame. */
static inline void fake_encode(const float *x, int32_t n_frames, int32_t *codes)
{
    for (int32_t t = 0; t < n_frames; t++) {
        uint32_t h = 2166136261u;
        for (int i = 0; i < SPF; i += 97) {
            uint32_t b;
            memcpy(&b, &x[(size_t)t * SPF + (size_t)i], 4);
            h = (h ^ b) * 16777619u;
        }
        for (int c = 0; c < FLM_N_CODEBOOKS; c++)
            codes[(size_t)c * n_frames + t] = (int32_t)((h ^ (uint32_t)c * 2654435761u) % 2048);
    }
}

#endif
