/* timeline.h - text rendering of one packed sample: summary, whole-sample overview strip and a
 * frame-by-frame window of the 17 channels. Used by `flm inspect` and `flm demo`. */
#ifndef FLM_TIMELINE_H
#define FLM_TIMELINE_H

#include <stdio.h>

#include "flm_profile.h"
#include "flm_stream.h"
#include "flm_tokenizer.h"

typedef struct timeline_opts {
    int32_t from, n_frames;   /* detail window */
    int classes;              /* show loss classes instead of token values */
    int width;                /* overview strip width in characters */
    const flm_tokenizer *tok; /* when set, a row of the text tokens decoded (NULL: none) */
} timeline_opts;

void timeline_print(FILE *f, const flm_sample *s, const flm_profiles *p, const timeline_opts *o);
/* The whole sample as JSON (tokens and classes as 17 arrays, metadata, events). */
int timeline_print_json(FILE *f, const flm_sample *s);

#endif
