/* activity.c - frame-level voice activity and its run-length text (flm_activity.h). */
#include "flm_activity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_stream.h"

/* The mean square of frame t in dB (full scale 0 dB). */
static double frame_db(const float *pcm, int64_t n, int32_t spf, int32_t t)
{
    double sum = 0;
    for (int64_t i = (int64_t)t * spf; i < (int64_t)(t + 1) * spf && i < n; i++)
        sum += (double)pcm[i] * pcm[i];
    return 10 * log10(sum / spf + 1e-20);
}

void flm_activity_frames(const float *pcm, int64_t n, int32_t spf, int32_t n_frames, uint8_t *act)
{
    double loudest = -INFINITY;
    for (int32_t t = 0; t < n_frames; t++)
        loudest = fmax(loudest, frame_db(pcm, n, spf, t));
    double thr = fmax(loudest - FLM_ACTIVITY_RANGE_DB, FLM_ACTIVITY_FLOOR_DB);
    for (int32_t t = 0; t < n_frames; t++)
        act[t] = frame_db(pcm, n, spf, t) > thr;
    /* close short pauses between speech frames, then drop short runs */
    for (int32_t t = 0, last = -1; t < n_frames; t++)
        if (act[t]) {
            if (last >= 0 && t - last - 1 <= FLM_ACTIVITY_GAP)
                memset(act + last + 1, 1, (size_t)(t - last - 1));
            last = t;
        }
    for (int32_t t = 0; t < n_frames;) {
        int32_t u = t;
        while (u < n_frames && act[u] == act[t])
            u++;
        if (act[t] && u - t < FLM_ACTIVITY_MIN_RUN)
            memset(act + t, 0, (size_t)(u - t));
        t = u;
    }
}

char *flm_activity_format(const uint8_t *act, int32_t n_frames)
{
    size_t cap = 64, len = 0;
    char *out = flm_malloc(cap);
    if (!out)
        return NULL;
    out[0] = 0;
    for (int32_t t = 0; t < n_frames;) {
        int32_t u = t;
        while (u < n_frames && act[u] == act[t])
            u++;
        if (act[t]) {
            if (len + 32 > cap) {
                char *grown = flm_realloc(out, cap *= 2);
                if (!grown) {
                    flm_free(out);
                    return NULL;
                }
                out = grown;
            }
            len += (size_t)snprintf(out + len, cap - len, "%s%d+%d", len ? "," : "", (int)t,
                                    (int)(u - t));
        }
        t = u;
    }
    return out;
}

char *flm_activity_text(const float *pcm, int64_t n, int32_t spf, int32_t n_frames)
{
    uint8_t *act = flm_malloc((size_t)(n_frames > 0 ? n_frames : 1));
    char *text =
        act ? (flm_activity_frames(pcm, n, spf, n_frames, act), flm_activity_format(act, n_frames))
            : NULL;
    flm_free(act);
    return text;
}

int flm_activity_parse(const char *text, int32_t n_frames, uint8_t *act, flm_error *err)
{
    memset(act, 0, (size_t)(n_frames > 0 ? n_frames : 0));
    const char *p = text;
    long end = -1; /* one past the previous run */
    while (*p) {
        char *q;
        const char *at = p;
        long start = strtol(p, &q, 10);
        long len = q > p && *q == '+' ? strtol(q + 1, &q, 10) : -1;
        if (at[0] < '0' || at[0] > '9' || len < 1 || (*q && *q != ','))
            return flm_error_set(err, FLM_EFORMAT,
                                 "activity \"%.40s\": at character %d: expected START+LENGTH", text,
                                 (int)(at - text));
        if (start <= end)
            return flm_error_set(err, FLM_EFORMAT,
                                 "activity \"%.40s\": at character %d: run %ld+%ld does not come "
                                 "after the previous one",
                                 text, (int)(at - text), start, len);
        if (start + len > n_frames)
            return flm_error_set(err, FLM_EFORMAT,
                                 "activity \"%.40s\": at character %d: run %ld+%ld ends past the "
                                 "sample's %d frames",
                                 text, (int)(at - text), start, len, (int)n_frames);
        memset(act + start, 1, (size_t)len);
        end = start + len;
        p = *q ? q + 1 : q;
        if (*q && !*p)
            return flm_error_set(err, FLM_EFORMAT, "activity \"%.40s\": ends with a comma", text);
    }
    return 0;
}

int flm_activity_of_sample(const flm_sample *s, const char *key, uint8_t *act, flm_error *err)
{
    const flm_meta *m = flm_sample_meta_get(s, key);
    if (!m)
        return 0;
    flm_error e = {0};
    if (m->type != FLM_META_TEXT || flm_activity_parse(m->s, s->n_frames, act, &e) < 0)
        return flm_error_set(err, FLM_EFORMAT, "%s: %s: %s", s->id ? s->id : "sample", key,
                             m->type != FLM_META_TEXT ? "not text" : e.msg);
    return 1;
}
