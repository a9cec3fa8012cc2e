/* flm_mimi.h - the Mimi neural audio codec (kyutai), 24 kHz mono <-> 12.5 Hz frames of codes.
 *
 *     flm_mimi *m = NULL;
 *     flm_mimi_params p = flm_mimi_default_params();           // 8 codebooks, context 250
 *     if (flm_mimi_load(&m, "tokenizer-e351c8d8-checkpoint125.safetensors", &p, &err) < 0) ...
 *     int64_t n_frames = flm_mimi_n_frames(n_samples);         // ceil(n / 1920)
 *     int32_t *codes = flm_malloc(p.n_q * n_frames * sizeof *codes);   // [n_q][n_frames]
 *     flm_mimi_encode(m, pcm, n_samples, codes, &err);
 *     flm_mimi_decode(m, codes, n_frames, pcm_out, &err);     // pcm_out: [n_frames * 1920]
 *
 *     flm_mimi_stream *s = NULL;                               // streaming, frame by frame
 *     flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE | FLM_MIMI_DECODE, 1, &err);
 *     flm_mimi_stream_encode(s, pcm + t * 1920, 1, frame_codes, &err);   // [1][n_q]
 *     flm_mimi_stream_destroy(&s);
 *     flm_mimi_destroy(&m);
 *
 * Architecture (MODEL.md section 3): SEANet encoder -> 8-layer causal transformer (25 Hz) ->
 * stride-2 conv downsample (12.5 Hz) -> split RVQ (1 semantic + n_q-1 acoustic codebooks);
 * decode mirrors it. Sizes are read from the checkpoint's tensor shapes (so a small random model
 * of the same architecture loads too); only the head count and context are parameters.
 *
 * Batch and streaming share one code path: batch processes the file in chunks of whole frames
 * through the same stateful layers a stream uses, so the two agree (codes identical; audio to
 * float rounding). Attention follows the batch semantics of the reference (a query sees its own
 * key and the context-1 before it) in both modes. Input that is not a whole number of frames is
 * zero-padded at the end.
 *
 * Ownership: flm_mimi owns its weights (read from the checkpoint into allocated memory, not
 * used from the mapping; the file is closed after loading). A stream borrows its model, which
 * must outlive it; a stream is used by one thread at a time, any number may share a model.
 * Nothing allocates after stream creation (batch calls create one stream per call).
 */
#ifndef FLM_MIMI_H
#define FLM_MIMI_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_safetensors.h"

#define FLM_MIMI_SAMPLE_RATE 24000
#define FLM_MIMI_FRAME_SIZE 1920 /* samples per 12.5 Hz frame */

typedef struct flm_mimi flm_mimi;
typedef struct flm_mimi_stream flm_mimi_stream;

typedef struct flm_mimi_config {
    int n_filters;       /* SEANet base channels (64) */
    int dimension;       /* latent channels (512) */
    int ratios[4];       /* decoder order (8, 6, 5, 4); the encoder uses them reversed */
    int kernel_size;     /* 7 */
    int residual_kernel; /* 3 */
    int last_kernel;     /* 3 */
    int d_model, n_heads, n_layers, dim_ff; /* transformers: 512, 8, 8, 2048 */
    int context;                            /* attention context in 25 Hz steps (250) */
    float max_period;                       /* RoPE (10000) */
    float layer_scale; /* init value of LayerScale (0.01), used by the random init only */
    int q_dim;         /* codebook dimension (256) */
    int bins;          /* codebook size (2048) */
    int n_q_total;     /* codebooks in the checkpoint (32) */
    int n_q;           /* codebooks used (8) */
} flm_mimi_config;

typedef struct flm_mimi_params {
    int n_q;          /* codebooks to use (default 8) */
    int context;      /* attention context (default 250) */
    int n_heads;      /* attention heads (default 8; not recorded in the checkpoint) */
    int chunk_frames; /* frames per internal step of batch encode/decode (default 32) */
} flm_mimi_params;

enum { FLM_MIMI_ENCODE = 1, FLM_MIMI_DECODE = 2 };

FLM_API flm_mimi_params flm_mimi_default_params(void);
/* "tiny" (the test-vector model: 8 filters, dim 64, 2 layers, 8 codebooks) or "full" (the
 * released model: 64 filters, dim 512, 8 layers, 32 codebooks). */
FLM_API int flm_mimi_config_preset(const char *size, flm_mimi_config *cfg, flm_error *err);

FLM_API int flm_mimi_load(flm_mimi **out, const char *path, const flm_mimi_params *p,
                          flm_error *err);
FLM_API int flm_mimi_load_from(flm_mimi **out, const flm_safetensors *st, const flm_mimi_params *p,
                               flm_error *err);
FLM_API void flm_mimi_destroy(flm_mimi **m);
FLM_API const flm_mimi_config *flm_mimi_get_config(const flm_mimi *m);
/* Bytes of weights held in memory. */
FLM_API size_t flm_mimi_weight_size(const flm_mimi *m);

static inline int64_t flm_mimi_n_frames(int64_t n_samples)
{
    return (n_samples + FLM_MIMI_FRAME_SIZE - 1) / FLM_MIMI_FRAME_SIZE;
}

/* codes: [n_q][n_frames], n_frames = flm_mimi_n_frames(n_samples). */
FLM_API int flm_mimi_encode(flm_mimi *m, const float *pcm, int64_t n_samples, int32_t *codes,
                            flm_error *err);
/* The unquantised latent, [n_frames][dimension] (after the downsample). */
FLM_API int flm_mimi_encode_latent(flm_mimi *m, const float *pcm, int64_t n_samples, float *latent,
                                   flm_error *err);
/* pcm: [n_frames * 1920]; codes out of [0, bins) give FLM_ERANGE naming frame and codebook. */
FLM_API int flm_mimi_decode(flm_mimi *m, const int32_t *codes, int64_t n_frames, float *pcm,
                            flm_error *err);
/* Dequantised latent of codes, [n_frames][dimension]. */
FLM_API int flm_mimi_decode_latent(flm_mimi *m, const int32_t *codes, int64_t n_frames,
                                   float *latent, flm_error *err);

/* which: FLM_MIMI_ENCODE and/or FLM_MIMI_DECODE; max_frames: most frames per call. */
FLM_API int flm_mimi_stream_create(flm_mimi_stream **out, flm_mimi *m, int which, int max_frames,
                                   flm_error *err);
FLM_API void flm_mimi_stream_destroy(flm_mimi_stream **s);
/* Back to the start of a stream (zero history, position 0). */
FLM_API void flm_mimi_stream_reset(flm_mimi_stream *s);
/* pcm [n_frames*1920] -> codes [n_frames][n_q] (frame-major, one row per frame). */
FLM_API int flm_mimi_stream_encode(flm_mimi_stream *s, const float *pcm, int n_frames,
                                   int32_t *codes, flm_error *err);
/* codes [n_frames][n_q] -> pcm [n_frames*1920]. */
FLM_API int flm_mimi_stream_decode(flm_mimi_stream *s, const int32_t *codes, int n_frames,
                                   float *pcm, flm_error *err);
/* Bytes allocated by the stream (buffers and caches). */
FLM_API size_t flm_mimi_stream_size(const flm_mimi_stream *s);

/* Seconds spent per stage since creation (for benchmarks; reset does not clear them). */
enum {
    FLM_MIMI_STAGE_SEANET_ENC, /* SEANet encoder convs + ELU */
    FLM_MIMI_STAGE_XF_ENC,     /* encoder transformer */
    FLM_MIMI_STAGE_QUANT,      /* downsample + RVQ search */
    FLM_MIMI_STAGE_DEQUANT,    /* codebook sums + output projections + upsample */
    FLM_MIMI_STAGE_XF_DEC,     /* decoder transformer */
    FLM_MIMI_STAGE_SEANET_DEC, /* SEANet decoder */
    FLM_MIMI_N_STAGES
};
FLM_API void flm_mimi_stream_timings(const flm_mimi_stream *s, double seconds[FLM_MIMI_N_STAGES]);

/* Random weights with the real names and shapes (the 'flm model init' generator): a safetensors
 * image in *buf (caller frees with flm_free). Deterministic in (cfg, seed). */
FLM_API int flm_mimi_random_checkpoint(const flm_mimi_config *cfg, uint64_t seed, uint8_t **buf,
                                       size_t *size, flm_error *err);

#endif
