/* Golden: the published Mimi (moshi 0.2.13, PyTorch, float32) on a small random model, from
 * ../shared/testvectors/mimi (copied to tests/golden/mimi). Codes must be identical; float
 * tensors and audio within 1e-4 absolute (the tolerance stated with the vectors). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_mimi.h"
#include "flm_safetensors.h"
#include "tap.h"
#include "test_util.h"

#define TOL 1e-4

static flm_safetensors *vec;
static char wpath[1024];

/* Reads a vector; channel-major [1][C][T] is returned time-major [T][C] when transpose. */
static void *get(const char *name, int transpose, int64_t *c_out, int64_t *t_out)
{
    const flm_st_info *in = flm_safetensors_find(vec, name);
    if (!in) {
        tap_diag("vector %s missing", name);
        return NULL;
    }
    int64_t C = in->n_dim == 3 ? in->shape[1] : 1, T = in->shape[in->n_dim - 1];
    size_t n = (size_t)(C * T);
    void *raw = flm_malloc(n * 4), *out = flm_malloc(n * 4);
    memcpy(raw, in->data, n * 4);
    if (transpose) {
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < T; t++)
                ((uint32_t *)out)[t * C + c] = ((uint32_t *)raw)[c * T + t];
    } else {
        memcpy(out, raw, n * 4);
    }
    flm_free(raw);
    if (c_out)
        *c_out = C;
    if (t_out)
        *t_out = T;
    return out;
}

static int n_code_diff(const int32_t *a, const int32_t *b, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += a[i] != b[i];
    return k;
}

static flm_mimi *load(int n_q, int context)
{
    flm_mimi *m = NULL;
    flm_error err = {0};
    flm_mimi_params p = flm_mimi_default_params();
    p.n_q = n_q;
    p.context = context;
    int rc = flm_mimi_load(&m, wpath, &p, &err);
    TAP_EQ_INT(rc, 0, "load small Mimi");
    if (rc)
        tap_diag("%s", err.msg);
    return m;
}

/* Streaming encode (1 frame per call) -> codes [n_q][F]; streaming decode of ref codes. */
static void stream_run(flm_mimi *m, const float *pcm, int F, int n_q, int32_t *codes,
                       const int32_t *ref_codes, float *audio)
{
    flm_mimi_stream *s = NULL;
    flm_error err = {0};
    int32_t fc[64];
    TAP_EQ_INT(flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE | FLM_MIMI_DECODE, 1, &err), 0,
               "stream create");
    for (int f = 0; f < F; f++) {
        flm_mimi_stream_encode(s, pcm + (size_t)f * FLM_MIMI_FRAME_SIZE, 1, fc, &err);
        for (int q = 0; q < n_q; q++)
            codes[q * F + f] = fc[q];
    }
    for (int f = 0; f < F; f++) {
        for (int q = 0; q < n_q; q++)
            fc[q] = ref_codes[q * F + f];
        flm_mimi_stream_decode(s, fc, 1, audio + (size_t)f * FLM_MIMI_FRAME_SIZE, &err);
    }
    flm_mimi_stream_destroy(&s);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/golden/mimi";
    char vpath[1024];
    flm_error err = {0};
    snprintf(wpath, sizeof wpath, "%s/mimi_weights.safetensors", dir);
    snprintf(vpath, sizeof vpath, "%s/mimi_vectors.safetensors", dir);
    flm_kernels_init(2);
    if (flm_safetensors_open(&vec, vpath, &err) < 0) {
        printf("Bail out! %s\n", err.msg);
        return 1;
    }
    int64_t N, C, F;
    float *pcm = get("input", 0, NULL, &N);
    float *lat_ref = get("batch.latent", 1, &C, &F);
    float *qlat_ref = get("batch.quantized_latent", 1, NULL, NULL);
    int32_t *codes_ref = get("batch.codes", 0, NULL, NULL);
    float *dec_ref = get("batch.decoded", 0, NULL, NULL);
    int32_t *scodes_ref = get("stream.codes", 0, NULL, NULL);
    float *sdec_ref = get("stream.decoded", 0, NULL, NULL);
    int32_t *codes4_ref = get("nq4.codes", 0, NULL, NULL);
    float *dec4_ref = get("nq4.decoded", 0, NULL, NULL);
    int32_t *c10_ref = get("ctx10.batch.codes", 0, NULL, NULL);
    float *d10_ref = get("ctx10.batch.decoded", 0, NULL, NULL);

    TAP_EQ_INT(flm_mimi_n_frames(N), F, "48000 samples -> 25 frames");
    float *lat = flm_malloc((size_t)(F * C) * 4), *audio = flm_malloc((size_t)N * 4);
    int32_t *codes = flm_malloc((size_t)F * 8 * 4);
    /* the AVX-512 direct kernels where the CPU has them, then the portable paths */
    for (int simd = flm_kernels_avx512(); simd >= 0; simd--) {
        flm_kernels_use_avx512(simd);
        tap_diag("%s kernels", simd ? "AVX-512" : "portable");
        flm_mimi *m = load(8, 250);
        if (!m)
            break;

        TAP_EQ_INT(flm_mimi_encode_latent(m, pcm, N, lat, &err), 0, "encode_latent");
        double e = max_abs(lat, lat_ref, (size_t)(F * C));
        TAP_OK(e <= TOL, "batch.latent max |diff| %.2e <= %.0e", e, TOL);
        TAP_EQ_INT(flm_mimi_encode(m, pcm, N, codes, &err), 0, "encode");
        int nd = n_code_diff(codes, codes_ref, (size_t)F * 8);
        TAP_EQ_INT(nd, 0, "batch.codes identical (8 x 25)");
        TAP_EQ_INT(flm_mimi_decode_latent(m, codes_ref, F, lat, &err), 0, "decode_latent");
        e = max_abs(lat, qlat_ref, (size_t)(F * C));
        TAP_OK(e <= TOL, "batch.quantized_latent max |diff| %.2e <= %.0e", e, TOL);
        TAP_EQ_INT(flm_mimi_decode(m, codes_ref, F, audio, &err), 0, "decode");
        e = max_abs(audio, dec_ref, (size_t)N);
        TAP_OK(e <= TOL, "batch.decoded max |diff| %.2e <= %.0e", e, TOL);

        stream_run(m, pcm, (int)F, 8, codes, codes_ref, audio);
        TAP_EQ_INT(n_code_diff(codes, scodes_ref, (size_t)F * 8), 0,
                   "stream.codes identical (1920 samples per call)");
        e = max_abs(audio, sdec_ref, (size_t)N);
        TAP_OK(e <= TOL, "stream.decoded max |diff| %.2e <= %.0e", e, TOL);
        e = max_abs(audio, dec_ref, (size_t)N);
        TAP_OK(e <= TOL, "streaming decode vs batch.decoded max |diff| %.2e", e);
        flm_mimi_destroy(&m);

        m = load(4, 250);
        if (m) {
            TAP_EQ_INT(flm_mimi_encode(m, pcm, N, codes, &err), 0, "encode n_q 4");
            TAP_EQ_INT(n_code_diff(codes, codes4_ref, (size_t)F * 4), 0, "nq4.codes identical");
            flm_mimi_decode(m, codes4_ref, F, audio, &err);
            e = max_abs(audio, dec4_ref, (size_t)N);
            TAP_OK(e <= TOL, "nq4.decoded max |diff| %.2e <= %.0e", e, TOL);
            flm_mimi_destroy(&m);
        }

        m = load(8, 10);
        if (m) {
            flm_mimi_encode(m, pcm, N, codes, &err);
            TAP_EQ_INT(n_code_diff(codes, c10_ref, (size_t)F * 8), 0,
                       "ctx10.batch.codes identical (context 10, batch)");
            flm_mimi_decode(m, c10_ref, F, audio, &err);
            e = max_abs(audio, d10_ref, (size_t)N);
            TAP_OK(e <= TOL, "ctx10.batch.decoded max |diff| %.2e <= %.0e", e, TOL);
            /* flmstream decision (README of the vectors): streaming follows batch semantics */
            stream_run(m, pcm, (int)F, 8, codes, c10_ref, audio);
            TAP_EQ_INT(n_code_diff(codes, c10_ref, (size_t)F * 8), 0,
                       "context 10: streaming codes == batch codes");
            e = max_abs(audio, d10_ref, (size_t)N);
            TAP_OK(e <= TOL, "context 10: streaming decode vs ctx10.batch.decoded %.2e", e);
            flm_mimi_destroy(&m);
        }
    }
    flm_free(pcm), flm_free(lat_ref), flm_free(qlat_ref), flm_free(codes_ref), flm_free(dec_ref);
    flm_free(scodes_ref), flm_free(sdec_ref), flm_free(codes4_ref), flm_free(dec4_ref);
    flm_free(c10_ref), flm_free(d10_ref), flm_free(lat), flm_free(audio), flm_free(codes);
    flm_safetensors_close(&vec);
    return tap_done();
}
