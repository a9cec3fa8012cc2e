/* flm_profile.h - versioned vocabulary, codec and model profiles (schemas/profiles/).
 *
 *     flm_profiles p;
 *     flm_profiles_default(&p);                         // published FLM-Audio values
 *     if (flm_profile_load_file("schemas/profiles/vocab-flm-audio.json", &p, &err) < 0) ...
 *     int32_t wait = p.vocab.text_wait;                 // 151665
 *     uint64_t h = p.model.hash;                        // recorded in every shard header
 *
 * A profile file is one JSON object with "kind" ("vocab" | "codec" | "model"), "name",
 * "version" and the fields below; unknown keys, missing keys, wrong types and out-of-range
 * values are errors naming the file and the key. The content hash is XXH3-64 of a canonical
 * text of the parsed fields (independent of whitespace and key order). All values live here,
 * never as literals scattered through the code.
 */
#ifndef FLM_PROFILE_H
#define FLM_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_stream.h"

#define FLM_PROFILE_NAME_SIZE 64

typedef struct flm_vocab_profile {
    char name[FLM_PROFILE_NAME_SIZE];
    int32_t version;
    int32_t text_vocab_size; /* ids are in [0, text_vocab_size) */
    int32_t text_wait;       /* <wait>: fills the monologue; also the initial text token */
    int32_t text_asr;        /* <asr>: opens the user transcript span (ASR-Response-TTS) */
    int32_t text_answer;     /* <answer>: opens the response span */
    int32_t text_pad;        /* word-level layout: PAD between words (Moshi: 3) */
    int32_t text_epad;       /* word-level layout: end-of-padding before a word (Moshi: 0) */
    uint64_t hash;
} flm_vocab_profile;

typedef struct flm_codec_profile {
    char name[FLM_PROFILE_NAME_SIZE];
    int32_t version;
    int32_t sample_rate;       /* 24000 */
    int32_t samples_per_frame; /* 1920 -> 12.5 Hz */
    int32_t n_codebooks;       /* 8 */
    int32_t card;              /* codes are in [0, card) */
    int32_t aud_pad;           /* 2048: initial/pad token */
    int32_t aud_empty;         /* 2049: "no signal" */
    uint64_t hash;
} flm_codec_profile;

typedef struct flm_model_profile {
    char name[FLM_PROFILE_NAME_SIZE];
    int32_t version;
    int32_t delays[FLM_N_CHANNELS]; /* per-channel delay view */
    int32_t sample_frames;          /* 8192: training sample length */
    /* the default weight of each loss class (by flm_loss_class; [FLM_LOSS_NONE] is 0): recipes
     * start from them, flm validate and the Python reader use them without a recipe. Not hashed:
     * they change no stored byte. */
    double loss_weights[FLM_N_LOSS_CLASSES];
    uint64_t hash;
} flm_model_profile;

typedef struct flm_profiles {
    flm_vocab_profile vocab;
    flm_codec_profile codec;
    flm_model_profile model;
} flm_profiles;

/* Fills all three with the published FLM-Audio values (hashes computed). */
FLM_API void flm_profiles_default(flm_profiles *p);
/* Parses one profile (its "kind" decides which member of p is replaced). name is used in errors. */
FLM_API int flm_profile_parse(const char *json, size_t json_size, const char *name, flm_profiles *p,
                              flm_error *err);
FLM_API int flm_profile_load_file(const char *path, flm_profiles *p, flm_error *err);
/* Recomputes the hashes from the fields. */
FLM_API void flm_profiles_rehash(flm_profiles *p);
/* The fill values of the delay view: text initial (<wait>), audio initial (AUD_PAD). */
FLM_API void flm_profiles_delay_fill(const flm_profiles *p, int32_t fill[FLM_N_CHANNELS]);

#endif
