/* fuzz_align_common.h - the body shared by the fuzz_align_<format>.c targets: one transcript
 * format's importer on arbitrary bytes, then the whole text and timing pipeline (validation,
 * splitting, refinement on a signal made from the same bytes, frames, JSON output). */
#ifndef FLM_FUZZ_ALIGN_COMMON_H
#define FLM_FUZZ_ALIGN_COMMON_H

#include <stdint.h>
#include <string.h>

#include "flm_align.h"
#include "flm_alloc.h"

static int fuzz_align(int format, const uint8_t *data, size_t size)
{
    flm_transcript t = {0};
    flm_error err = {0};
    flm_align_params p = flm_align_default_params();
    flm_profiles prof;
    flm_profiles_default(&prof);
    enum { RATE = 24000, N = 2 * RATE };
    static float x[N]; /* 2 s of a signal made from the input: loud where bytes are odd */
    for (size_t i = 0; i < N; i++)
        x[i] = size ? ((data[(i / 480) % size] & 1) ? 0.3f : 0.0f) * ((i & 1) ? 1 : -1) : 0;
    if (flm_transcript_import(&t, format, "fuzz", (const char *)data, size, "fuzz.wav", &err) ==
        0) {
        for (size_t i = 0; i < t.n_utts; i++) {
            if (t.utts[i].duration < 0 && (i & 1))
                t.utts[i].duration = 2.0; /* both: known and unknown durations */
            if (flm_transcript_validate(&t, i, &p, NULL) ||
                flm_utterance_split(&t.utts[i], &p, NULL, &err) ||
                flm_utterance_refine(&t.utts[i], x, N, RATE, &p, &err) ||
                flm_utterance_finish(&t, i, &p, &prof.codec, NULL))
                break;
            char *line = NULL;
            if (!t.utts[i].rejected && flm_utterance_to_json(&t.utts[i], &line, &err) == 0)
                flm_free(line);
        }
    }
    flm_transcript_free(&t);
    /* the splitter alone, both languages */
    flm_sentence_span *spans = NULL;
    size_t n = 0, cap = 0;
    for (int lang = 0; lang <= 2; lang++)
        if (flm_sentence_split((const char *)data, size, lang, &spans, &n, &cap, &err) == 0)
            flm_sentence_merge_small((const char *)data, spans, &n, 3);
    flm_free(spans);
    return 0;
}

/* The manifest formats (issue 21): the gzip reader (its output capped at 4 MiB) and the format
 * detection first, then the importer on what they give. */
static inline int fuzz_align_manifest(int format, const uint8_t *data, size_t size)
{
    char *plain = NULL;
    size_t n = 0;
    flm_error err = {0};
    int kind = 0;
    if (flm_align_gunzip("fuzz", (const char *)data, size, (size_t)4 << 20, &plain, &n, &err) < 0)
        return 0;
    const uint8_t *p = plain ? (const uint8_t *)plain : data;
    size_t ps = plain ? n : size;
    flm_align_detect_format((const char *)p, ps, &kind);
    fuzz_align(format, p, ps);
    flm_free(plain);
    return 0;
}

#endif
