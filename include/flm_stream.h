/* flm_stream.h - the frame/stream model: one packed sample in aligned time.
 *
 *     flm_sample *s = NULL;
 *     flm_sample_create(&s, 300, &err);            // 300 frames, 17 channels, all AUD_EMPTY/none
 *     flm_sample_set_id(s, "libri/1034-121119-0001#0");
 *     FLM_TOK(s, FLM_CH_TEXT, 10) = 9707;            // channel 0, frame 10
 *     FLM_CLS(s, FLM_CH_TEXT, 10) = FLM_LOSS_MONOLOGUE;
 *     flm_sample_meta_set_real(s, "aug.echo_gain", 0.12);
 *     flm_sample_add_event(s, "interrupt", 120, 6, 0.0);
 *     ...
 *     flm_sample_destroy(&s);
 *
 * A sample is a [17][n_frames] int32 token matrix in *aligned time* (column t holds what is
 * said/heard during frame t, 80 ms), a [17][n_frames] uint8 loss-class matrix, descriptive fields
 * (id, style, stage, language, corpus, speakers), typed key/value metadata and timed events.
 * Channel 0 is text, 1..8 the speak codebooks 0..7, 9..16 the listen codebooks 0..7.
 * The model's per-channel delays are a view (flm_delay_apply), never stored.
 *
 * Ownership: a sample owns all of its memory; strings passed in are copied.
 */
#ifndef FLM_STREAM_H
#define FLM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"

#define FLM_N_CHANNELS 17
#define FLM_N_CODEBOOKS 8
#define FLM_CH_TEXT 0
#define FLM_CH_SPEAK 1  /* speak codebook c is channel FLM_CH_SPEAK + c */
#define FLM_CH_LISTEN 9 /* listen codebook c is channel FLM_CH_LISTEN + c */
#define FLM_MAX_FRAMES 1048576

/* Per-position loss classes (DESIGN section 3). Weights are recipe configuration. */
typedef enum flm_loss_class {
    FLM_LOSS_NONE = 0,      /* listen channels, AUD_EMPTY, padding */
    FLM_LOSS_SEMANTIC = 1,  /* speak codebook 0, non-empty */
    FLM_LOSS_ACOUSTIC = 2,  /* speak codebooks 1..7, non-empty */
    FLM_LOSS_MONOLOGUE = 3, /* text tokens other than <wait> */
    FLM_LOSS_WAIT = 4,      /* <wait> on the text channel */
    FLM_N_LOSS_CLASSES = 5
} flm_loss_class;

FLM_API const char *flm_loss_class_name(int cls);

typedef enum flm_meta_type { FLM_META_INT = 1, FLM_META_REAL = 2, FLM_META_TEXT = 3 } flm_meta_type;

typedef struct flm_meta {
    char *key;
    int type; /* flm_meta_type */
    int64_t i;
    double r;
    char *s;
} flm_meta;

/* A timed event: kind (e.g. "interrupt", "cut", "backchannel"), first frame, length in frames,
 * and one value whose meaning depends on the kind. */
typedef struct flm_event {
    char *kind;
    int32_t frame;
    int32_t n_frames;
    double value;
} flm_event;

typedef struct flm_sample {
    int32_t n_frames;
    int32_t *tokens;     /* [FLM_N_CHANNELS][n_frames], channel-major */
    uint8_t *loss_class; /* [FLM_N_CHANNELS][n_frames] flm_loss_class */
    char *id;            /* unique sample key within a dataset */
    char *style;         /* "tts", "asr", "arrt", "rtts", "rtts-free", "word", ... */
    char *stage;         /* "post-training-1", ... */
    char *language;      /* "en", "zh", ... */
    char *corpus;
    char *speakers;    /* comma-separated */
    double duration_s; /* seconds of content (without padding) */
    flm_meta *meta;    /* [n_meta] */
    int32_t n_meta;
    flm_event *events; /* [n_events], in insertion order */
    int32_t n_events;
    size_t meta_cap, events_cap;
} flm_sample;

#define FLM_TOK(s, ch, t) ((s)->tokens[(size_t)(ch) * (size_t)(s)->n_frames + (size_t)(t)])
#define FLM_CLS(s, ch, t) ((s)->loss_class[(size_t)(ch) * (size_t)(s)->n_frames + (size_t)(t)])

/* Creates a sample of n_frames; tokens are 0 and classes FLM_LOSS_NONE until filled. */
FLM_API int flm_sample_create(flm_sample **out, int32_t n_frames, flm_error *err);
FLM_API void flm_sample_destroy(flm_sample **s);
/* Resizes to n_frames, keeping the first min(old, new) columns; new columns are 0/NONE. */
FLM_API int flm_sample_resize(flm_sample *s, int32_t n_frames, flm_error *err);
/* Deep copy. */
FLM_API int flm_sample_clone(flm_sample **out, const flm_sample *s, flm_error *err);
/* 1 if a and b are equal in every field (tokens, classes, strings, metadata, events). */
FLM_API int flm_sample_equal(const flm_sample *a, const flm_sample *b);

/* Descriptive string fields; NULL clears. Return FLM_ENOMEM on failure. */
FLM_API int flm_sample_set_id(flm_sample *s, const char *v);
FLM_API int flm_sample_set_style(flm_sample *s, const char *v);
FLM_API int flm_sample_set_stage(flm_sample *s, const char *v);
FLM_API int flm_sample_set_language(flm_sample *s, const char *v);
FLM_API int flm_sample_set_corpus(flm_sample *s, const char *v);
FLM_API int flm_sample_set_speakers(flm_sample *s, const char *v);

/* Metadata: setting an existing key replaces its value. */
FLM_API int flm_sample_meta_set_int(flm_sample *s, const char *key, int64_t v);
FLM_API int flm_sample_meta_set_real(flm_sample *s, const char *key, double v);
FLM_API int flm_sample_meta_set_text(flm_sample *s, const char *key, const char *v);
/* Returns the entry or NULL. */
FLM_API const flm_meta *flm_sample_meta_get(const flm_sample *s, const char *key);

FLM_API int flm_sample_add_event(flm_sample *s, const char *kind, int32_t frame, int32_t n_frames,
                                 double value);

/* Fills the loss classes from the tokens with the default rules of DESIGN section 3, given
 * the text <wait> id and the audio empty/pad ids: text -> WAIT or MONOLOGUE, speak codebook 0
 * non-empty -> SEMANTIC, speak 1..7 non-empty -> ACOUSTIC, everything else NONE. */
FLM_API void flm_sample_default_classes(flm_sample *s, int32_t text_wait, int32_t aud_empty,
                                        int32_t aud_pad);

/* The sample as a JSON object: id, style, stage, language, corpus, speakers, n_frames,
 * duration_s, metadata, events; FLM_JSON_TOKENS adds "tokens" and "loss_class" as 17 arrays;
 * FLM_JSON_METADATA_ONLY gives just the metadata object. Caller frees with free(); NULL on
 * allocation failure. */
enum { FLM_JSON_TOKENS = 1, FLM_JSON_METADATA_ONLY = 2 };
FLM_API char *flm_sample_to_json(const flm_sample *s, int flags);

/* ---- Delay view ---------------------------------------------------------------------------
 * apply: out[k][t] = t < d[k] ? fill[k] : in[k][t - d[k]] for t in [0, n_frames + max(d)),
 *        so nothing is lost (the output is max(d) columns longer than the input).
 * undo:  out[k][t] = in[k][t + d[k]] for t in [0, n_frames_out), n_frames_out = n_in - max(d).
 * undo(apply(x)) == x for every delay vector with 0 <= d[k] <= FLM_MAX_DELAY.
 * Matrices are channel-major [FLM_N_CHANNELS][n]. */
#define FLM_MAX_DELAY 64
FLM_API int flm_delay_max(const int32_t delays[FLM_N_CHANNELS]);
FLM_API int flm_delay_apply(const int32_t *in, int32_t n_frames,
                            const int32_t delays[FLM_N_CHANNELS],
                            const int32_t fill[FLM_N_CHANNELS], int32_t *out, flm_error *err);
FLM_API int flm_delay_undo(const int32_t *in, int32_t n_frames_in,
                           const int32_t delays[FLM_N_CHANNELS], int32_t *out, flm_error *err);
/* The same two operations for the uint8 loss-class matrix (fill = FLM_LOSS_NONE). */
FLM_API int flm_delay_apply_u8(const uint8_t *in, int32_t n_frames,
                               const int32_t delays[FLM_N_CHANNELS], uint8_t *out, flm_error *err);

#endif
