/* flm recipe check: validate a stage recipe and print what it sets. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "flm_recipe.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: flm recipe check RECIPE.json\n\n"
               "Validates a stage recipe (schemas/recipes/ has the shipped ones: copy and edit)\n"
               "and prints the settings it resolves to. Exit 1 with the file and key on error.\n");
}

int cmd_recipe(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        usage(stderr);
        return 2;
    }
    flm_recipe r;
    flm_error err = {0};
    if (flm_recipe_load(argv[2], &r, &err) < 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    printf("recipe %s (stage %s), seed %llu\n", r.name, r.stage, (unsigned long long)r.seed);
    printf("formats: TTS %.2f, ASR %.2f; lead %d, lag %d frames; silence %.2f..%.2f s; "
           "samples of %d frames\n",
           r.p_tts, 1 - r.p_tts, r.lead, r.lag, r.silence_min_s, r.silence_max_s, r.sample_frames);
    printf("loss weights: semantic %g, acoustic %g, monologue %g, wait %g\n",
           r.loss_weight[FLM_LOSS_SEMANTIC], r.loss_weight[FLM_LOSS_ACOUSTIC],
           r.loss_weight[FLM_LOSS_MONOLOGUE], r.loss_weight[FLM_LOSS_WAIT]);
    printf("corpus weights: other corpora x%g", r.default_corpus_weight);
    for (size_t i = 0; i < r.n_corpora; i++)
        printf(", %s x%g", r.corpus[i], r.corpus_weight[i]);
    printf("\n");
    flm_recipe_free(&r);
    return 0;
}
