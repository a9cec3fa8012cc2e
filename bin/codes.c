/* Audio file -> Mimi codes, streamed. See codes.h. */
#include <string.h>

#include "codes.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_util.h"

int codes_encode_file(flm_mimi_stream *s, int n_q, const char *path, int channel, int32_t **codes,
                      int64_t *n_frames, codes_timing *timing, flm_error *err)
{
    flm_audio_params ap = flm_audio_default_params();
    ap.mode = channel >= 0 ? FLM_AUDIO_PER_CHANNEL : FLM_AUDIO_MONO;
    flm_audio_decoder *d = NULL;
    float *pcm = NULL, *inter = NULL;
    int32_t *fc = NULL, *fm = NULL;
    size_t cap = 0;
    int64_t n = 0;
    const size_t want = (size_t)CODES_STEP * FLM_MIMI_FRAME_SIZE;
    *codes = NULL;
    *n_frames = 0;
    flm_mimi_stream_reset(s);
    int rc = flm_audio_decoder_open(&d, path, &ap, err);
    if (rc < 0)
        goto done;
    int nch = flm_audio_decoder_info(d)->n_channels;
    if (channel >= nch) {
        rc = flm_error_set(err, FLM_ERANGE, "%s: channel %d requested, the file has %d", path,
                           channel, nch);
        goto done;
    }
    pcm = flm_malloc(want * sizeof *pcm);
    inter = channel >= 0 ? flm_malloc(want * (size_t)nch * sizeof *inter) : NULL;
    fc = flm_malloc((size_t)CODES_STEP * (size_t)n_q * sizeof *fc);
    if (!pcm || !fc || (channel >= 0 && !inter)) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int eof = 0; !eof;) {
        size_t have = 0, got;
        double t1 = flm_now();
        while (have < want) {
            float *dst = channel >= 0 ? inter : pcm + have;
            size_t ask = want - have;
            if ((rc = flm_audio_decoder_read(d, dst, ask, &got, err)) < 0)
                goto done;
            if (!got) {
                eof = 1;
                break;
            }
            if (channel >= 0)
                for (size_t i = 0; i < got; i++)
                    pcm[have + i] = inter[i * (size_t)nch + (size_t)channel];
            have += got;
        }
        double t2 = flm_now();
        if (timing)
            timing->decode_s += t2 - t1;
        int F = (int)flm_mimi_n_frames((int64_t)have);
        if (!F)
            break;
        memset(pcm + have, 0, ((size_t)F * FLM_MIMI_FRAME_SIZE - have) * sizeof *pcm);
        if ((rc = flm_mimi_stream_encode(s, pcm, F, fc, err)) < 0 ||
            (rc = flm_grow((void **)&fm, &cap, (size_t)(n + F) * (size_t)n_q, sizeof *fm)) < 0)
            goto done;
        memcpy(fm + n * n_q, fc, (size_t)F * (size_t)n_q * sizeof *fc);
        n += F;
        if (timing)
            timing->encode_s += flm_now() - t2;
    }
    /* [frames][n_q] -> [n_q][frames] */
    *codes = flm_malloc((size_t)(n * n_q + 1) * sizeof **codes);
    if (!*codes) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int64_t f = 0; f < n; f++)
        for (int q = 0; q < n_q; q++)
            (*codes)[q * n + f] = fm[f * n_q + q];
    *n_frames = n;
done:
    flm_audio_decoder_destroy(&d);
    flm_free(pcm), flm_free(inter), flm_free(fc), flm_free(fm);
    return rc;
}

int codes_silence(flm_mimi *m, int n_q, int32_t *silence, flm_error *err)
{
    enum { N = 25 };
    flm_mimi_stream *s = NULL;
    float *pcm = flm_calloc((size_t)N * FLM_MIMI_FRAME_SIZE, sizeof *pcm);
    int32_t *fc = flm_malloc((size_t)N * (size_t)n_q * sizeof *fc);
    int rc = pcm && fc ? 0 : flm_error_set(err, FLM_ENOMEM, "out of memory");
    if (rc == 0)
        rc = flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE, N, err);
    if (rc == 0)
        rc = flm_mimi_stream_encode(s, pcm, N, fc, err);
    if (rc == 0)
        memcpy(silence, fc + (N - 1) * n_q, (size_t)n_q * sizeof *fc);
    flm_mimi_stream_destroy(&s);
    flm_free(pcm), flm_free(fc);
    return rc;
}
