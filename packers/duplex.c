/* What the dialog and conversation packers share. See duplex.h. */
#include <string.h>

#include "duplex.h"

int duplex_text_token_ok(const flm_profiles *p, int32_t v)
{
    return v >= 0 && v < p->vocab.text_vocab_size && v != p->vocab.text_wait &&
           v != p->vocab.text_asr && v != p->vocab.text_answer;
}

int duplex_check_codes(const flm_profiles *p, const int32_t *speak, const int32_t *listen,
                       int32_t n_frames, const char *what, const char *id, flm_error *err)
{
    const int32_t *codes[2] = {speak, listen};
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < (size_t)FLM_N_CODEBOOKS * (size_t)n_frames; i++)
            if (codes[side][i] < 0 || codes[side][i] >= p->codec.card)
                return flm_error_set(err, FLM_EINVAL, "%s %s: %s code %d at codebook %zu frame %zu",
                                     what, id, side ? "listen" : "speak", codes[side][i],
                                     i / (size_t)n_frames, i % (size_t)n_frames);
    return 0;
}

int duplex_sample_new(flm_sample **out, const flm_profiles *p, const int32_t *speak,
                      const int32_t *listen, int32_t n_frames, flm_error *err)
{
    flm_sample *s = NULL;
    int rc = flm_sample_create(&s, n_frames, err);
    if (rc < 0)
        return rc;
    for (int32_t t = 0; t < n_frames; t++)
        FLM_TOK(s, FLM_CH_TEXT, t) = p->vocab.text_wait;
    for (int c = 0; c < FLM_N_CODEBOOKS; c++) {
        memcpy(&FLM_TOK(s, FLM_CH_SPEAK + c, 0), speak + (size_t)c * n_frames,
               sizeof(int32_t) * (size_t)n_frames);
        memcpy(&FLM_TOK(s, FLM_CH_LISTEN + c, 0), listen + (size_t)c * n_frames,
               sizeof(int32_t) * (size_t)n_frames);
    }
    *out = s;
    return 0;
}
