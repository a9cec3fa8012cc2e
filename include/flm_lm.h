/* flm_lm.h - the FLM-Audio RQ-Transformer (Qwen2.5-style backbone + DepthGPT head) on the CPU.
 *
 *     flm_lm *lm = NULL;
 *     if (flm_lm_load(&lm, "FLM-Audio/", FLM_W_BF16, 0, &err) < 0) ...  // config + *.safetensors
 *     flm_lm_state *s = NULL;
 *     flm_lm_state_create(&s, lm, 8193, FLM_LM_TF_ROWS, &err); // context, rows per call
 *     flm_lm_forward(s, tokens, T, hidden, &err);              // tokens [T][17] model input
 *     flm_lm_text_logits(s, hidden, T, text_logits);           // [T][vocab]
 *     flm_lm_depth_forward(s, hidden, codes, T, depth_logits, &err);   // [T][8][2050]
 *
 *     flm_lm_gen *g = NULL;                                    // full-duplex streaming
 *     flm_lm_gen_create(&g, lm, 8192, NULL, &err);
 *     for (t = 0; t < n; t++)
 *         flm_lm_gen_step(g, user_codes[t], NULL, frame, &has_frame, &err);  // frame: [9]
 *     flm_lm_gen_destroy(&g);
 *     flm_lm_state_destroy(&s);
 *     flm_lm_destroy(&lm);
 *
 * Model (MODEL.md 1.2-1.5, testvectors/flm-lm/README.md). One step reads 17 token ids
 * (channel 0 text, 1..8 speak codebooks, 9..16 listen codebooks) and sums their embeddings;
 * decoder layers are pre-RMSNorm GQA attention (q/k/v biases, half-split RoPE with theta from
 * the config, causal over all past steps) and SwiGLU MLPs; the final norm gives the hidden state
 * h_t, text logits = lm_head(h_t). The depth head reads h_t: linear_in gives 8 slices; position
 * c gets slice c + wpe[c] + wtes[c][tok_c] (tok_0 = aud_empty, tok_c = code of codebook c-1),
 * then blocks of shared causal attention over the 8 positions and one SwiGLU MLP per position,
 * ln_f, and lm_heads[c] -> logits of codebook c (aud_vocab ids).
 *
 * Model input in teacher forcing (flm_lm_input_from_sample builds it from an aligned sample):
 * with D = the sample under the delay view (delays [0, 0,1x7, 0,1x7]), step t reads text and
 * speak = D[0..8][t-1] (the initial tokens <wait>, AUD_PAD at t = 0) and listen = D[9..16][t];
 * it predicts D[0..8][t]. Streaming (flm_lm_gen) feeds back what it generated the same way and
 * starts every stream, also after flm_lm_gen_reset, from those initial tokens (the published
 * code's reset, which zeroes them, is not reproduced).
 *
 * Weights are copied from the checkpoint into allocated memory in the chosen format (DESIGN 8),
 * or, with FLM_LM_LOAD_MAPPED, computed from the checkpoint's mapping where it stores them in that
 * format. Ownership: flm_lm owns its weights, and when any are mapped, the open checkpoint (until
 * flm_lm_destroy); states and generators borrow the model (which must outlive them) and own their
 * buffers, all allocated at creation: nothing allocates per step. A state or generator is used
 * by one thread at a time.
 */
#ifndef FLM_LM_H
#define FLM_LM_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_quant.h"
#include "flm_sampling.h"
#include "flm_stream.h"
#include "flm_tensor.h"

#define FLM_LM_N_CODEBOOKS 8

typedef struct flm_lm_config {
    int vocab_size;                      /* text ids [0, vocab_size) */
    int hidden;                          /* hidden_size (3584) */
    int n_layers;                        /* num_hidden_layers (28) */
    int n_heads, n_kv_heads, head_dim;   /* 28, 4, 128 */
    int intermediate;                    /* intermediate_size (18944) */
    double rms_eps;                      /* rms_norm_eps (1e-5) */
    double rope_theta;                   /* 1e6 */
    int max_positions;                   /* max_position_embeddings (8192) */
    int attention_bias;                  /* q/k/v biases (true) */
    int o_bias;                          /* o_proj bias (!disable_att_o_bias: false) */
    int tie_embeddings;                  /* lm_head = text embeddings (false) */
    float input_mult, logit_mult;        /* muP: 1 and output_mult / mup_scale_factor = 1 */
    int aud_vocab;                       /* aud_vocab_size (2050) */
    int text_wait;                       /* mm_token_info.text_wait_token_id (151665) */
    int aud_pad, aud_empty;              /* 2048, 2049 */
    int bos, eos;                        /* 151643, 151645 (recorded, unused) */
    int dep_layers, dep_heads, dep_embd; /* aud_depthgpt: 6, 16, 1024 */
    int dep_ff;                          /* int(8 * n_embd / 3) = 2730 */
} flm_lm_config;

typedef struct flm_lm flm_lm;
typedef struct flm_lm_state flm_lm_state;

/* Parses an HF config.json of model_type FLMAudio. Unknown top-level keys are ignored (HF adds
 * many); `aud_depthgpt` and `mm_token_info` must hold exactly their keys (upstream builds them as
 * dataclasses). Unsupported settings (hidden_act other than silu, rope scaling other than
 * default, MLP biases, aud_channel != 8, non-SwiGLU depth) are errors naming the key. */
FLM_API int flm_lm_config_parse(const char *json, size_t size, const char *name, flm_lm_config *c,
                                flm_error *err);
/* "tiny" (test sizes, real vocabulary and special ids), "1b" (a 1B-parameter shape: hidden
 * 2048, 16 layers, depth head of the real size) or "7b" (the released shapes). */
FLM_API int flm_lm_config_preset(const char *size, flm_lm_config *c, flm_error *err);
/* The config as an HF config.json text with the real key names (caller frees with flm_free). */
FLM_API char *flm_lm_config_to_json(const flm_lm_config *c);
/* Parameters of the checkpoint (all tensors). */
FLM_API int64_t flm_lm_config_n_params(const flm_lm_config *c);

/* dir holds config.json and model.safetensors, a model.safetensors.index.json with its shards,
 * or one *.safetensors file. Every tensor of MODEL.md 1.7 must be present with the shape the
 * config implies (errors name the tensor and both shapes); a tensor the config does not account
 * for (e.g. a layer beyond num_hidden_layers) is a mismatch error; rotary inv_freq buffers are
 * ignored. F32, BF16, F16 and F64 tensors are accepted. wtype: the format the matrices and
 * embedding tables are held in for compute (FLM_W_F32 exact; BF16, Q8, Q4: flm_quant.h); norms,
 * biases and wpe stay float32. flags: 0 (every weight copied into allocated memory) or
 * FLM_LM_LOAD_MAPPED. Call flm_kernels_init first (scratch is sized per thread). */
FLM_API int flm_lm_load(flm_lm **out, const char *dir, flm_wtype wtype, int flags, flm_error *err);
/* flm_lm_load flags. MAPPED: a matrix or embedding table stored in the file exactly as wtype holds
 * it (F32 for FLM_W_F32, BF16 for FLM_W_BF16, flm_lm_write's I8 / U8 codes and F32 scales for
 * FLM_W_Q8 / Q4) is computed from the read-only mapping instead of copied, where its data is
 * aligned to its element size (else that tensor is copied); everything else is copied as without
 * the flag. Results are bit-identical either way. The load is faster and the weights are page
 * cache (shared, evictable: a step may have to read them back from disk) rather than allocated
 * memory; decode speed from the mapping: bench/RESULTS.md ("Weights mapped vs in memory"). The
 * files must not be truncated or rewritten in place while the model exists (reads past a
 * shortened file raise SIGBUS); replacing them by rename is safe. */
enum { FLM_LM_LOAD_MAPPED = 1 };
FLM_API void flm_lm_destroy(flm_lm **lm);
FLM_API const flm_lm_config *flm_lm_get_config(const flm_lm *lm);
/* Bytes of weights (allocated and mapped), and their format. */
FLM_API size_t flm_lm_weight_size(const flm_lm *lm);
FLM_API flm_wtype flm_lm_weight_type(const flm_lm *lm);
/* Of flm_lm_weight_size, the bytes computed from the checkpoint's mapping (FLM_LM_LOAD_MAPPED;
 * else 0); the rest is allocated. */
FLM_API size_t flm_lm_mapped_size(const flm_lm *lm);

/* Writes DIR/config.json and seeded random weights with the real names and shapes (dtype F32 or
 * BF16), one tensor at a time straight to the file (peak memory: the largest tensor), in shards
 * of at most shard_bytes (0: one model.safetensors; else model-0000k-of-0000n.safetensors and
 * model.safetensors.index.json). Norm weights 1 + N(0, 0.1), everything else N(0, 0.02), drawn
 * from flm_rng streams keyed by (seed, tensor name). */
FLM_API int flm_lm_write_random(const flm_lm_config *c, uint64_t seed, flm_dtype dtype,
                                uint64_t shard_bytes, const char *dir, flm_error *err);

/* A model with uniform random weights of the checkpoint init's spread, built directly in memory
 * in the given format (no file; fast: for benchmarks of the 7B shape). Not the values
 * flm_lm_write_random writes. */
FLM_API int flm_lm_create_random(flm_lm **out, const flm_lm_config *c, flm_wtype wtype,
                                 uint64_t seed, flm_error *err);

/* Writes a loaded model to DIR (config.json + model.safetensors) in the format it is held in:
 * f32 and bf16 as F32 / BF16 tensors (a standard checkpoint); q8 / q4 matrices as I8
 * [rows, cols] / U8 [rows, (cols + 1) / 2] codes plus F32 'NAME.qscale' [rows, blocks] (the
 * layouts of flm_quant.h); flm_lm_load reads those back (copied as is when loading in the same
 * format, converted otherwise). Tensors are written one at a time from memory. */
FLM_API int flm_lm_write(const flm_lm *lm, const char *dir, flm_error *err);

/* --- running ----------------------------------------------------------------------------- */

/* A KV cache of max_ctx steps and buffers for up to max_rows steps per flm_lm_forward call and
 * max_rows frames per flm_lm_depth_forward call (flm_lm_score works in chunks of max_rows).
 * All of its memory is allocated and touched here (resident from the start: a long session cannot
 * run out of memory half-way). Teacher forcing is fastest with FLM_LM_TF_ROWS rows
 * (bench/RESULTS.md: each matrix product then expands and packs a block of weights once per 256
 * frames); streaming uses 1. */
#define FLM_LM_TF_ROWS 256
FLM_API int flm_lm_state_create(flm_lm_state **out, const flm_lm *lm, int max_ctx, int max_rows,
                                flm_error *err);
FLM_API void flm_lm_state_destroy(flm_lm_state **s);
/* Empties the KV cache (the next forward is position 0). */
FLM_API void flm_lm_state_reset(flm_lm_state *s);
/* Steps in the KV cache. */
FLM_API int flm_lm_state_pos(const flm_lm_state *s);
/* Bytes allocated by the state. */
FLM_API size_t flm_lm_state_size(const flm_lm_state *s);
/* For tests: when trace is not NULL, flm_lm_forward also writes the summed input embeddings
 * and the residual stream after each layer, [n_layers + 1][T][hidden], into it. */
FLM_API void flm_lm_state_trace(flm_lm_state *s, float *trace);

/* Runs T (<= max_rows) steps after the cached ones: tokens [T][17] (the model input layout),
 * hidden [T][hidden] receives the final-normed states. Token ids outside the vocabularies are
 * FLM_ERANGE naming the step and channel. */
FLM_API int flm_lm_forward(flm_lm_state *s, const int32_t *tokens, int T, float *hidden,
                           flm_error *err);
/* logits [T][vocab_size] = lm_head(hidden) (times the muP logit multiplier); s: its scratch. */
FLM_API void flm_lm_text_logits(flm_lm_state *s, const float *hidden, int T, float *logits);
/* Teacher-forced depth head: codes [T][8] (position c >= 1 reads codes[t][c-1]; column 7 is not
 * read), logits [T][8][aud_vocab]. */
FLM_API int flm_lm_depth_forward(flm_lm_state *s, const float *hidden, const int32_t *codes, int T,
                                 float *logits, flm_error *err);
/* Streaming depth head for one step: begin with h_t (projects it for all 8 positions), then
 * position c = 0..7 in order, each given the previous position's code (ignored for c = 0):
 * logits [aud_vocab]. */
FLM_API void flm_lm_depth_begin(flm_lm_state *s, const float *hidden);
FLM_API int flm_lm_depth_next(flm_lm_state *s, int c, int32_t prev_code, float *logits,
                              flm_error *err);

/* Teacher-forcing view of an aligned sample (tokens and classes [17][n_frames], channel-major):
 * input [n_steps][17], target [n_steps][9] (text, 8 speak codes; -1 where the delayed view has
 * no value) and, when classes is not NULL, target_class [n_steps][9] (the target's loss class;
 * FLM_LOSS_NONE where there is no target), n_steps = n_frames + 1 (the delay adds one column):
 * the model profile's delays applied by flm_delay_apply. Initial and fill ids come from the
 * config. Returns 0 or FLM_ENOMEM. */
FLM_API int flm_lm_input_from_sample(const flm_lm_config *c, const int32_t *tokens,
                                     const uint8_t *classes, int32_t n_frames, int32_t *input,
                                     int32_t *target, uint8_t *target_class, flm_error *err);

/* Cross-entropy (nats) and top-1 accuracy per loss class of one or more scored samples. */
typedef struct flm_lm_loss {
    double sum[FLM_N_LOSS_CLASSES]; /* summed -log p(target) */
    int64_t count[FLM_N_LOSS_CLASSES];
    int64_t correct[FLM_N_LOSS_CLASSES]; /* argmax == target */
} flm_lm_loss;

/* Teacher-forced pass over an aligned sample (n_frames + 1 <= the state's context): every
 * position whose class is not NONE adds -log softmax(logits)[target] to its class (text from
 * the text logits, speak codebook c from depth position c, depth inputs = the sample's own
 * codes). Resets the state first. Adds into *loss. When *stop (may be NULL) becomes non-zero, e.g.
 * from a signal handler, it returns 1 early with a partial loss. Targets outside
 * the vocabularies are FLM_ERANGE naming the frame and channel. */
FLM_API int flm_lm_score(flm_lm_state *s, const int32_t *tokens, const uint8_t *classes,
                         int32_t n_frames, flm_lm_loss *loss, volatile int *stop, flm_error *err);
/* sum_c w[c] * sum[c] / sum_c w[c] * count[c] (0 when nothing is weighted). */
FLM_API double flm_lm_loss_weighted(const flm_lm_loss *l, const double w[FLM_N_LOSS_CLASSES]);

/* --- streaming generation ------------------------------------------------------------------ */

typedef struct flm_lm_gen flm_lm_gen;

typedef struct flm_lm_gen_params {
    int mask_special;   /* never choose aud_pad / aud_empty as speech codes (default 1) */
    int use_sampling;   /* 0: greedy (argmax); 1: sample (default) */
    flm_sampling text;  /* flm_sampling_text_defaults() */
    flm_sampling audio; /* flm_sampling_audio_defaults() */
    int rep_codebooks;  /* the audio penalty applies to codebooks 0..rep_codebooks-1 (4) */
    uint64_t seed;      /* Exp(1) draws from flm_rng (seed, "lm.gen", "sampling"), restarted by
                           flm_lm_gen_reset */
} flm_lm_gen_params;

FLM_API flm_lm_gen_params flm_lm_gen_default_params(void);
FLM_API int flm_lm_gen_create(flm_lm_gen **out, const flm_lm *lm, int max_steps,
                              const flm_lm_gen_params *p, flm_error *err);
FLM_API void flm_lm_gen_destroy(flm_lm_gen **g);
/* Back to step 0: empty cache, initial tokens. */
FLM_API void flm_lm_gen_reset(flm_lm_gen *g);
/* One 80 ms step. user: the user's 8 Mimi codes of this frame. force: NULL, or 9 ids (text, 8
 * speak codes) where a value >= 0 replaces the greedy choice (tests drive generation with
 * reference tokens); otherwise greedy or sampled as the params say. frame receives the
 * undelayed output frame [text, 8 codes] of the previous
 * step once *has_frame is 1 (from step 1 on): the text and semantic code chosen at step t-1 with
 * the acoustic codes chosen at step t. */
FLM_API int flm_lm_gen_step(flm_lm_gen *g, const int32_t user[FLM_LM_N_CODEBOOKS],
                            const int32_t *force, int32_t frame[1 + FLM_LM_N_CODEBOOKS],
                            int *has_frame, flm_error *err);
/* What the last step read and computed (pointers owned by g, valid until the next step):
 * input [17], hidden [hidden], text logits [vocab], depth logits [8][aud_vocab] (as computed,
 * before masking), chosen [9] (text, 8 codes). */
FLM_API const int32_t *flm_lm_gen_input(const flm_lm_gen *g);
FLM_API const float *flm_lm_gen_hidden(const flm_lm_gen *g);
FLM_API const float *flm_lm_gen_text_logits(const flm_lm_gen *g);
FLM_API const float *flm_lm_gen_depth_logits(const flm_lm_gen *g);
FLM_API const int32_t *flm_lm_gen_chosen(const flm_lm_gen *g);

#endif
