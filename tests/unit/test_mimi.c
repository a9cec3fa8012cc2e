/* Mimi beyond the golden vectors: random checkpoints with the real names, load errors, dtype
 * conversion, stream == batch under different chunkings, and the full-size model.
 * usage: test_mimi GOLDEN_DIR [FULL_SECONDS]   (FULL_SECONDS 0 skips the full-size part) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_mimi.h"
#include "flm_rng.h"
#include "flm_safetensors.h"
#include "flm_util.h"
#include "tap.h"
#include "test_util.h"

static float *test_signal(int64_t n, uint64_t seed)
{
    float *x = flm_malloc((size_t)n * sizeof *x);
    flm_rng r;
    flm_rng_init(&r, seed, "signal", "test");
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / 24000.0;
        x[i] = (float)(0.4 * sin(2 * M_PI * 220 * t) + 0.2 * sin(2 * M_PI * (300 + 400 * t) * t) +
                       0.05 * flm_rng_normal(&r));
    }
    return x;
}

/* Rebuilds an image from st's tensors, with one tensor dropped / reshaped / all cast to bf16 /
 * one element of it made NaN (f32) / all cast to bf16 and one element made infinite. */
enum { EDIT_DROP, EDIT_RESHAPE, EDIT_BF16, EDIT_I32, EDIT_NAN, EDIT_BF16_INF };
static int rebuild(const flm_safetensors *st, const char *target, int edit, uint8_t **out,
                   size_t *size)
{
    int n = flm_safetensors_count(st), k = 0;
    flm_st_entry *e = flm_calloc((size_t)n, sizeof *e);
    uint16_t **bf = flm_calloc((size_t)n, sizeof *bf);
    for (int i = 0; i < n; i++) {
        const flm_st_info *in = flm_safetensors_at(st, i);
        int hit = !strcmp(in->name, target);
        if (hit && edit == EDIT_DROP)
            continue;
        e[k] = (flm_st_entry){
            .name = in->name, .dtype = in->dtype, .n_dim = in->n_dim, .data = in->data};
        memcpy(e[k].shape, in->shape, sizeof in->shape);
        if (hit && edit == EDIT_RESHAPE) { /* same bytes, different shape */
            e[k].shape[0] = in->shape[1];
            e[k].shape[1] = in->shape[0];
        }
        if (hit && edit == EDIT_I32)
            e[k].dtype = FLM_DTYPE_I32;
        if (hit && edit == EDIT_NAN) {
            float *f = flm_malloc(in->size + 1);
            memcpy(f, in->data, in->size);
            f[5] = NAN;
            bf[i] = (uint16_t *)f;
            e[k].data = f;
        }
        if (edit == EDIT_BF16 || edit == EDIT_BF16_INF) {
            size_t m = in->size / 4;
            float *f = flm_malloc(in->size + 1);
            bf[i] = flm_malloc(m * 2 + 1);
            memcpy(f, in->data, in->size);
            flm_f32_to_bf16(f, bf[i], m);
            if (hit)
                bf[i][2] = 0x7f80; /* +infinity */
            flm_free(f);
            e[k].dtype = FLM_DTYPE_BF16;
            e[k].data = bf[i];
        }
        k++;
    }
    flm_error err = {0};
    int rc = flm_safetensors_write_memory(e, k, out, size, &err);
    for (int i = 0; i < n; i++)
        flm_free(bf[i]);
    flm_free(bf);
    flm_free(e);
    return rc;
}

static int load_image(const uint8_t *img, size_t size, const flm_mimi_params *p, flm_mimi **m,
                      flm_error *err)
{
    flm_safetensors *st = NULL;
    int rc = flm_safetensors_open_memory(&st, img, size, "ckpt", err);
    if (rc == 0)
        rc = flm_mimi_load_from(m, st, p, err);
    flm_safetensors_close(&st);
    return rc;
}

/* Streaming with the given chunk pattern vs batch: codes identical; returns the normalised
 * error of the streamed audio against the batch audio. */
static double stream_vs_batch(flm_mimi *m, const float *pcm, int F, const int *chunks, int n_chunks,
                              int *code_diff, double *enc_s, double *str_s)
{
    const flm_mimi_config *c = flm_mimi_get_config(m);
    int nq = c->n_q, maxc = 1;
    for (int i = 0; i < n_chunks; i++)
        maxc = chunks[i] > maxc ? chunks[i] : maxc;
    int32_t *bc = flm_malloc((size_t)F * nq * 4), *sc = flm_malloc((size_t)F * nq * 4);
    float *ba = flm_malloc((size_t)F * FLM_MIMI_FRAME_SIZE * 4);
    float *sa = flm_malloc((size_t)F * FLM_MIMI_FRAME_SIZE * 4);
    flm_error err = {0};
    double t0 = flm_now();
    flm_mimi_encode(m, pcm, (int64_t)F * FLM_MIMI_FRAME_SIZE, bc, &err);
    flm_mimi_decode(m, bc, F, ba, &err);
    double t1 = flm_now();
    flm_mimi_stream *s = NULL;
    flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE | FLM_MIMI_DECODE, maxc, &err);
    int32_t *fc = flm_malloc((size_t)maxc * nq * 4);
    for (int f = 0, i = 0; f < F; i++) {
        int n = chunks[i % n_chunks] < F - f ? chunks[i % n_chunks] : F - f;
        flm_mimi_stream_encode(s, pcm + (size_t)f * FLM_MIMI_FRAME_SIZE, n, fc, &err);
        for (int j = 0; j < n; j++)
            for (int q = 0; q < nq; q++)
                sc[(size_t)q * F + f + j] = fc[j * nq + q];
        f += n;
    }
    *code_diff = 0;
    for (size_t i = 0; i < (size_t)F * nq; i++)
        *code_diff += sc[i] != bc[i];
    int distinct = 0; /* a degenerate (constant) code stream would make the test vacuous */
    for (int f = 0; f < F; f++) {
        int seen = 0;
        for (int g = 0; g < f && !seen; g++)
            seen = bc[(size_t)(nq - 1) * F + g] == bc[(size_t)(nq - 1) * F + f];
        distinct += !seen;
    }
    TAP_OK(distinct > F / 4, "codebook %d: %d distinct codes over %d frames", nq - 1, distinct, F);
    flm_mimi_stream_reset(s);
    for (int f = 0, i = 0; f < F; i++) {
        int n = chunks[i % n_chunks] < F - f ? chunks[i % n_chunks] : F - f;
        for (int j = 0; j < n; j++)
            for (int q = 0; q < nq; q++)
                fc[j * nq + q] = bc[(size_t)q * F + f + j];
        flm_mimi_stream_decode(s, fc, n, sa + (size_t)f * FLM_MIMI_FRAME_SIZE, &err);
        f += n;
    }
    double t2 = flm_now();
    if (enc_s)
        *enc_s = t1 - t0;
    if (str_s)
        *str_s = t2 - t1;
    /* random weights decode to small audio (rms ~1e-5): compare relative to its size */
    double e = flm_norm_err(sa, ba, (size_t)F * FLM_MIMI_FRAME_SIZE);
    double rms = 0;
    for (size_t i = 0; i < (size_t)F * FLM_MIMI_FRAME_SIZE; i++)
        rms += (double)ba[i] * ba[i];
    tap_diag("decoded rms %.3g, streaming vs batch max |diff| %.3g",
             sqrt(rms / ((double)F * FLM_MIMI_FRAME_SIZE)),
             max_abs(sa, ba, (size_t)F * FLM_MIMI_FRAME_SIZE));
    flm_mimi_stream_destroy(&s);
    flm_free(bc), flm_free(sc), flm_free(ba), flm_free(sa), flm_free(fc);
    return e;
}

static void test_tiny(const char *golden_dir)
{
    flm_mimi_config cfg;
    flm_error err = {0};
    uint8_t *img = NULL, *img2 = NULL, *bad = NULL;
    size_t size, size2, bsize;
    TAP_EQ_INT(flm_mimi_config_preset("tiny", &cfg, &err), 0, "tiny preset");
    TAP_EQ_INT(flm_mimi_config_preset("huge", &cfg, &err), FLM_EINVAL, "unknown preset");
    flm_mimi_config_preset("tiny", &cfg, &err);
    TAP_EQ_INT(flm_mimi_random_checkpoint(&cfg, 7, &img, &size, &err), 0, "random tiny checkpoint");
    flm_mimi_random_checkpoint(&cfg, 7, &img2, &size2, &err);
    TAP_OK(size == size2 && !memcmp(img, img2, size), "same seed -> identical bytes");
    flm_free(img2);
    flm_mimi_random_checkpoint(&cfg, 8, &img2, &size2, &err);
    TAP_OK(size == size2 && memcmp(img, img2, size), "other seed -> other weights");
    flm_free(img2);

    /* names and shapes identical to the checkpoint written by the published code */
    char p[1024];
    snprintf(p, sizeof p, "%s/mimi_weights.safetensors", golden_dir);
    flm_safetensors *ref = NULL, *st = NULL;
    flm_safetensors_open(&ref, p, &err);
    flm_safetensors_open_memory(&st, img, size, "tiny", &err);
    int same = ref && st && flm_safetensors_count(ref) == flm_safetensors_count(st);
    for (int i = 0; same && i < flm_safetensors_count(st); i++) {
        const flm_st_info *a = flm_safetensors_at(st, i), *b = flm_safetensors_at(ref, i);
        same = !strcmp(a->name, b->name) && a->n_dim == b->n_dim &&
               !memcmp(a->shape, b->shape, sizeof a->shape) && a->dtype == b->dtype;
        if (!same)
            tap_diag("differs at %s / %s", a->name, b->name);
    }
    TAP_OK(same, "tiny init: %d tensors, names/shapes/dtypes == moshi's checkpoint",
           st ? flm_safetensors_count(st) : 0);
    flm_safetensors_close(&ref);

    flm_mimi *m = NULL;
    flm_mimi_params prm = flm_mimi_default_params();
    TAP_EQ_INT(flm_mimi_load_from(&m, st, &prm, &err), 0, "load tiny random");
    if (m) {
        const flm_mimi_config *c = flm_mimi_get_config(m);
        TAP_OK(c->n_filters == 8 && c->dimension == 64 && c->n_layers == 2 && c->dim_ff == 256 &&
                   c->q_dim == 16 && c->n_q_total == 8 && c->ratios[0] == 8 && c->ratios[3] == 4,
               "config inferred from shapes");
        int F = 40, diff;
        float *pcm = test_signal((int64_t)F * FLM_MIMI_FRAME_SIZE, 1);
        int pat1[] = {1}, pat2[] = {3, 1, 2, 5};
        double e = stream_vs_batch(m, pcm, F, pat1, 1, &diff, NULL, NULL);
        TAP_OK(diff == 0 && e < 1e-4, "tiny, 1 frame/call: codes differ %d, audio norm err %.2e",
               diff, e);
        e = stream_vs_batch(m, pcm, F, pat2, 4, &diff, NULL, NULL);
        TAP_OK(diff == 0 && e < 1e-4, "tiny, chunks 3,1,2,5: codes differ %d, audio norm err %.2e",
               diff, e);
        /* a length that is not whole frames is zero-padded */
        int32_t *c1 = flm_malloc(8 * 3 * 4), *c2 = flm_malloc(8 * 3 * 4);
        float *padded = flm_calloc(3 * FLM_MIMI_FRAME_SIZE, 4);
        memcpy(padded, pcm, (2 * FLM_MIMI_FRAME_SIZE + 100) * 4);
        flm_mimi_encode(m, pcm, 2 * FLM_MIMI_FRAME_SIZE + 100, c1, &err);
        flm_mimi_encode(m, padded, 3 * FLM_MIMI_FRAME_SIZE, c2, &err);
        TAP_OK(!memcmp(c1, c2, 8 * 3 * 4), "partial last frame == zero-padded frame");
        TAP_EQ_INT(flm_mimi_encode(m, pcm, -5, c1, &err), FLM_EINVAL, "negative length");
        TAP_EQ_INT(flm_mimi_encode(m, pcm, 0, c1, &err), 0, "empty input: no frames");
        c2[5] = 2048;
        float *out = flm_malloc(3 * FLM_MIMI_FRAME_SIZE * 4);
        TAP_EQ_INT(flm_mimi_decode(m, c2, 3, out, &err), FLM_ERANGE, "code 2048 refused");
        TAP_CONTAINS(err.msg, "code 2048 at frame 2, codebook 1", "bad code message");
        flm_mimi_stream *s = NULL;
        flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE | FLM_MIMI_DECODE, 2, &err);
        flm_alloc_fail_after(-1); /* resets the allocation counter */
        for (int f = 0; f < 6; f++) {
            flm_mimi_stream_encode(s, pcm + (size_t)f * FLM_MIMI_FRAME_SIZE, 1 + f % 2, c1, &err);
            flm_mimi_stream_decode(s, c1, 1 + f % 2, out, &err);
        }
        TAP_EQ_INT(flm_alloc_count(), 0, "no allocation in the per-frame path");
        flm_mimi_stream_destroy(&s);
        TAP_EQ_INT(flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE, 1, &err), 0, "encode-only");
        TAP_EQ_INT(flm_mimi_stream_decode(s, c1, 1, out, &err), FLM_EINVAL, "decode on encoder");
        TAP_EQ_INT(flm_mimi_stream_encode(s, pcm, 2, c1, &err), FLM_EINVAL, "too many frames");
        flm_mimi_stream_destroy(&s);
        flm_free(c1), flm_free(c2), flm_free(padded), flm_free(out), flm_free(pcm);
        flm_mimi_destroy(&m);
    }
    prm.n_q = 9;
    TAP_EQ_INT(flm_mimi_load_from(&m, st, &prm, &err), FLM_EINVAL, "n_q 9 of 8 refused");
    TAP_CONTAINS(err.msg, "n_q 9 outside 1..8", "n_q message");
    prm = flm_mimi_default_params();
    prm.n_heads = 3;
    TAP_EQ_INT(flm_mimi_load_from(&m, st, &prm, &err), FLM_EINVAL, "3 heads refused");

    const char *t = "decoder_transformer.transformer.layers.1.linear2.weight";
    rebuild(st, t, EDIT_DROP, &bad, &bsize);
    TAP_EQ_INT(load_image(bad, bsize, NULL, &m, &err), FLM_ENOTFOUND, "missing tensor");
    TAP_CONTAINS(err.msg,
                 "tensor 'decoder_transformer.transformer.layers.1.linear2.weight' not "
                 "found (expected shape [64, 256])",
                 "missing tensor named with shape");
    flm_free(bad);
    rebuild(st, t, EDIT_RESHAPE, &bad, &bsize);
    TAP_EQ_INT(load_image(bad, bsize, NULL, &m, &err), FLM_EMISMATCH, "mis-shaped tensor");
    TAP_CONTAINS(err.msg, "linear2.weight': shape [256, 64] in file, expected [64, 256]",
                 "mis-shaped tensor named with both shapes");
    flm_free(bad);
    rebuild(st, "encoder.model.4.block.1.conv.conv.bias", EDIT_I32, &bad, &bsize);
    TAP_EQ_INT(load_image(bad, bsize, NULL, &m, &err), FLM_EFORMAT, "wrong dtype");
    TAP_CONTAINS(err.msg, "'encoder.model.4.block.1.conv.conv.bias': dtype I32", "dtype message");
    flm_free(bad);
    rebuild(st, "", EDIT_BF16, &bad, &bsize);
    TAP_EQ_INT(load_image(bad, bsize, NULL, &m, &err), 0, "bf16 checkpoint loads (upcast)");
    flm_mimi_destroy(&m);
    flm_free(bad);
    /* non-finite weights (issue 18): a NaN made every code 0 and the load succeeded */
    rebuild(st, "decoder_transformer.transformer.layers.0.linear1.weight", EDIT_NAN, &bad, &bsize);
    TAP_EQ_INT(load_image(bad, bsize, NULL, &m, &err), FLM_ECORRUPT, "a NaN weight is refused");
    TAP_CONTAINS(err.msg,
                 "ckpt: tensor 'decoder_transformer.transformer.layers.0.linear1.weight': NaN at "
                 "[0, 5]",
                 "NaN: the tensor and the element named");
    TAP_OK(m == NULL, "NaN: no model");
    flm_free(bad);
    rebuild(st, "quantizer.rvq_first.vq.layers.0._codebook.embedding_sum", EDIT_BF16_INF, &bad,
            &bsize);
    TAP_EQ_INT(load_image(bad, bsize, NULL, &m, &err), FLM_ECORRUPT,
               "an infinite bf16 weight is refused");
    TAP_CONTAINS(err.msg,
                 "tensor 'quantizer.rvq_first.vq.layers.0._codebook.embedding_sum': infinity at "
                 "[0, 2]",
                 "infinity in bf16: named");
    flm_free(bad);
    rebuild(st, "encoder.model.0.conv.conv.weight", EDIT_DROP, &bad, &bsize);
    TAP_EQ_INT(load_image(bad, bsize, NULL, &m, &err), FLM_ENOTFOUND, "no SEANet input conv");
    TAP_CONTAINS(err.msg, "encoder.model.0.conv.conv.weight", "names it");
    flm_free(bad);

    /* allocation failures during load: ENOMEM, no leak, no crash */
    int ok = 1, n = 0;
    for (int k = 0; k < 400; k += 7) {
        flm_alloc_fail_after(k);
        int rc = flm_mimi_load_from(&m, st, NULL, &err);
        flm_alloc_fail_after(-1);
        if (rc == 0) {
            flm_mimi_destroy(&m);
            break;
        }
        ok &= rc == FLM_ENOMEM && !m;
        n++;
    }
    TAP_OK(ok && n > 10, "load with allocation %d failure points -> FLM_ENOMEM", n);
    flm_safetensors_close(&st);
    flm_free(img);
}

static void test_full(double seconds)
{
    flm_mimi_config cfg;
    flm_error err = {0};
    uint8_t *img;
    size_t size;
    flm_mimi_config_preset("full", &cfg, &err);
    cfg.n_q_total = 8; /* the 24 unused codebooks only cost memory here */
    double t0 = flm_now();
    TAP_EQ_INT(flm_mimi_random_checkpoint(&cfg, 1, &img, &size, &err), 0, "random full checkpoint");
    flm_mimi *m = NULL;
    TAP_EQ_INT(load_image(img, size, NULL, &m, &err), 0, "load full-size");
    flm_free(img);
    if (!m)
        return;
    tap_diag("full-size: %.0f MB of weights, init+load %.1f s", flm_mimi_weight_size(m) / 1e6,
             flm_now() - t0);
    int F = (int)(seconds * 12.5), diff, pat[] = {1};
    float *pcm = test_signal((int64_t)F * FLM_MIMI_FRAME_SIZE, 2);
    double tb, ts;
    double e = stream_vs_batch(m, pcm, F, pat, 1, &diff, &tb, &ts);
    TAP_OK(diff == 0, "full-size %.0f s: streaming codes == batch codes (%d differ)", seconds,
           diff);
    TAP_OK(e < 1e-4, "full-size %.0f s: streaming audio vs batch, norm err %.2e", seconds, e);
    tap_diag("full-size %.0f s: batch enc+dec %.2f s, streaming enc+dec %.2f s", seconds, tb, ts);
    flm_free(pcm);
    flm_mimi_destroy(&m);
}

int main(int argc, char **argv)
{
    const char *golden = argc > 1 ? argv[1] : "tests/golden/mimi";
    double full = argc > 2 ? atof(argv[2]) : 2.0;
    flm_kernels_init(2);
    test_tiny(golden);
    if (flm_kernels_avx512()) { /* models loaded now run the portable paths */
        flm_kernels_use_avx512(0);
        tap_diag("tiny model again, portable kernels");
        test_tiny(golden);
        flm_kernels_use_avx512(1);
    }
    if (full > 0)
        test_full(full);
    return tap_done();
}
