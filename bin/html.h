/* html.h - self-contained HTML pages and PNG images of packed data (issue 12).
 * Pages embed their data as JSON (<script type="application/json" id="flm-data">), their CSS
 * and JS (bin/assets/, embedded at build time): no network, one file. */
#ifndef FLM_HTML_H
#define FLM_HTML_H

#include <stdio.h>

#include "flm_index.h"
#include "flm_profile.h"
#include "flm_stream.h"
#include "flm_tokenizer.h"

/* Writes s with <, >, & and " escaped for HTML text and attribute values. */
void html_escape(FILE *f, const char *s);

/* The lanes of one sample: text, speak, listen, events, with a time axis, zoom and scroll. With a
 * tokenizer (may be NULL) the text lane shows each token decoded; with audio (may be NULL) the
 * page adds a waveform lane per side and, up to HTML_MAX_AUDIO_S, players (Ogg Opus) of the
 * mixed dialog and of each side, tied to the timeline (playhead, click to seek, play a selection).
 * The timeline comes first; the metadata follows, folded by group. */
#define HTML_MAX_AUDIO_S 120
typedef struct html_audio {
    const float *listen, *speak; /* [n_samples] 24 kHz mono, decoded by the codec; NULL: none */
    int64_t n_samples;
} html_audio;
int html_timeline(FILE *f, const flm_sample *s, const flm_profiles *p, const char *source,
                  const flm_tokenizer *tok, const html_audio *audio);
/* The spectrogram of one side (spectrogram.c): out[n_frames * HTML_SPEC_PER_FRAME][HTML_SPEC_BANDS],
 * 0..255 over the 80 dB below the side's loudest band. 0 or -1 (out of memory). */
#define HTML_SPEC_PER_FRAME 2
#define HTML_SPEC_BANDS 64
int spectrogram(const float *x, int64_t n, int32_t rate, int32_t n_frames, int32_t spf,
                uint8_t *out);
/* A PNG of the lanes with their names, the events named, a time axis; 1200 columns of frames
 * whatever the length (png.c). */
int png_timeline(const char *path, const flm_sample *s, const flm_profiles *p, flm_error *err);
/* The dataset report: aggregates in SQL, histograms, events, augmentation keys, quarantine, and
 * a sample browser linking to timeline pages written into pages_dir (NULL: no links). */
int html_report(FILE *f, flm_index *idx, const char *pages_dir_rel, int n_pages_linked,
                flm_error *err);

#endif
