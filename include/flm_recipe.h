/* flm_recipe.h - stage recipes (schemas/recipes/): the packing, mixing and loss settings of
 * one training stage (DESIGN 7, paper Tables 2 and 8). Users copy a shipped recipe and edit it.
 *
 *     flm_recipe r;
 *     if (flm_recipe_load("schemas/recipes/post-training-2.json", &r, &err) < 0)
 *         fprintf(stderr, "%s\n", err.msg);   // "post-training-2.json: key \"packing.lead\": ..."
 *     double w = flm_recipe_corpus_weight(&r, "librispeech");
 *     flm_recipe_free(&r);
 *
 * Unknown keys, wrong types and out-of-range values are errors naming the file and the key path.
 * The "augmentation" keys are only checked for type here (libstream does not know augment/);
 * `flm recipe check` and the packing job check them with flm_augment_params_set.
 */
#ifndef FLM_RECIPE_H
#define FLM_RECIPE_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_stream.h"

#define FLM_RECIPE_MAX_CORPORA 256
#define FLM_RECIPE_MAX_AUGMENT 32

/* Stream formats a recipe mixes ("formats": {name: share}); shares sum to 1. */
enum {
    FLM_FORMAT_TTS = 0,       /* "tts": post-training, monologue leads (DESIGN 3.1) */
    FLM_FORMAT_ASR = 1,       /* "asr": post-training, monologue trails (3.2) */
    FLM_FORMAT_ARRT = 2,      /* "arrt": ASR-Response-TTS dialogs (3.3) */
    FLM_FORMAT_RTTS = 3,      /* "rtts": Response-TTS dialogs (3.4) */
    FLM_FORMAT_RTTS_FREE = 4, /* "rtts-free": Response-TTS with free user inputs (3.5) */
    /* the word-level arms of the paper's ablation (Table 7; include/flm_pack.h): */
    FLM_FORMAT_WORDS = 5,     /* "words": Moshi's: speak side, each word's tokens at its start */
    FLM_FORMAT_WORDS_ASR = 6, /* "words-asr": the paper's: listen side, after the word + word_lag */
    /* recorded two-channel conversations (include/flm_conversation.h): */
    FLM_FORMAT_CONVERSATION = 7, /* "conversation": one side on speak + text, the other listen */
    FLM_N_FORMATS = 8
};

typedef struct flm_recipe {
    char name[64];
    char stage[64];
    int32_t version;
    uint64_t seed;
    double p_tts;                   /* share of pairs packed TTS-style (= p_format[TTS]) */
    double p_format[FLM_N_FORMATS]; /* by FLM_FORMAT_*; default tts 0.5, asr 0.5 */
    int32_t lead, lag;              /* frames (TTS lead 0..2; ASR lag) */
    int32_t word_lag;               /* words-asr: frames between a word's end and its tokens (1) */
    double silence_min_s, silence_max_s;
    int32_t sample_frames;
    double loss_weight[FLM_N_LOSS_CLASSES]; /* by flm_loss_class; [FLM_LOSS_NONE] is 0 */
    double default_corpus_weight;           /* "*" */
    char *corpus[FLM_RECIPE_MAX_CORPORA];   /* owned */
    double corpus_weight[FLM_RECIPE_MAX_CORPORA];
    size_t n_corpora;
    /* "dialog": timeline of the SFT formats (include/flm_dialog.h) */
    double gap_min_s, gap_max_s;                   /* silence before a turn (0.2 .. 1.5) */
    double response_gap_min_s, response_gap_max_s; /* user end -> response (0 .. 0.5) */
    int32_t asr_lag;                               /* ARRT: frames (0) */
    int32_t manifest_timing;                       /* gaps from manifest start times (1) */
    double p_interrupt;                            /* rtts-free, per model turn (0.7) */
    double reaction_s;                             /* 0.5 */
    double fade_s;                                 /* 0.01 */
    double yield_s; /* conversation: the model stops this soon after a user onset (1.0) */
    /* "augmentation": listen-track parameters (include/flm_augment.h field names), kept as
     * text for flm_augment_params_set: numbers as written in the file, strings verbatim */
    char *augment_key[FLM_RECIPE_MAX_AUGMENT]; /* owned */
    char *augment_value[FLM_RECIPE_MAX_AUGMENT];
    size_t n_augment;
    char *json; /* the recipe file verbatim (recorded with each run), owned */
} flm_recipe;

FLM_API int flm_recipe_parse(const char *json, size_t size, const char *name, flm_recipe *r,
                             flm_error *err);
FLM_API int flm_recipe_load(const char *path, flm_recipe *r, flm_error *err);
FLM_API void flm_recipe_free(flm_recipe *r);
FLM_API double flm_recipe_corpus_weight(const flm_recipe *r, const char *corpus);
/* "tts", "asr", "arrt", "rtts", "rtts-free", "words", "words-asr", "conversation"; NULL out of
 * range. */
FLM_API const char *flm_recipe_format_name(int format);

#endif
