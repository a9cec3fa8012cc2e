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
 */
#ifndef FLM_RECIPE_H
#define FLM_RECIPE_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_stream.h"

#define FLM_RECIPE_MAX_CORPORA 256

typedef struct flm_recipe {
    char name[64];
    char stage[64];
    int32_t version;
    uint64_t seed;
    double p_tts;      /* share of pairs packed TTS-style; 1 - p_tts ASR-style */
    int32_t lead, lag; /* frames (TTS lead 0..2; ASR lag) */
    double silence_min_s, silence_max_s;
    int32_t sample_frames;
    double loss_weight[FLM_N_LOSS_CLASSES]; /* by flm_loss_class; [FLM_LOSS_NONE] is 0 */
    double default_corpus_weight;           /* "*" */
    char *corpus[FLM_RECIPE_MAX_CORPORA];   /* owned */
    double corpus_weight[FLM_RECIPE_MAX_CORPORA];
    size_t n_corpora;
    char *json; /* the recipe file verbatim (recorded with each run), owned */
} flm_recipe;

FLM_API int flm_recipe_parse(const char *json, size_t size, const char *name, flm_recipe *r,
                             flm_error *err);
FLM_API int flm_recipe_load(const char *path, flm_recipe *r, flm_error *err);
FLM_API void flm_recipe_free(flm_recipe *r);
FLM_API double flm_recipe_corpus_weight(const flm_recipe *r, const char *corpus);

#endif
