/* flm recipe check: validate a stage recipe and print what it sets. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "flm_augment.h"
#include "flm_recipe.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: flm recipe check RECIPE.json\n\n"
               "Validates a stage recipe (schemas/recipes/ has the shipped ones: copy and edit)\n"
               "and prints the settings it resolves to. Exit 1 with the file and key on error.\n");
}

static int check(int argc, char **argv)
{
    const char *path = NULL;
    const cli_option none[] = {{0}};
    const cli_option *const tables[] = {none, NULL};
    const cli_command c = {"recipe check", usage, tables, 1, NULL};
    int n_args, rc = cli_parse(&c, argc, argv, &path, &n_args);
    if (rc != CLI_PARSED)
        return rc;
    if (!path)
        return cli_usage("recipe check", "missing RECIPE.json");
    flm_recipe r;
    flm_error err = {0};
    if (flm_recipe_load(path, &r, &err) < 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    /* the augmentation keys belong to augment/, so they are checked here, not by the parser */
    flm_augment_params ap = flm_augment_default_params();
    for (size_t i = 0; i < r.n_augment; i++)
        if (flm_augment_params_set(&ap, r.augment_key[i], r.augment_value[i], &err) < 0) {
            cli_error("%s: key \"augmentation.%s\": %s", path, r.augment_key[i], err.msg);
            flm_recipe_free(&r);
            return 1;
        }
    if (flm_augment_params_check(&ap, &err) < 0) {
        cli_error("%s: augmentation: %s", path, err.msg);
        flm_recipe_free(&r);
        return 1;
    }
    printf("recipe %s (stage %s), seed %llu\n", r.name, r.stage, (unsigned long long)r.seed);
    printf("formats:");
    for (int f = 0, n = 0; f < FLM_N_FORMATS; f++)
        if (r.p_format[f] > 0)
            printf("%s %s %.2f", n++ ? "," : "", flm_recipe_format_name(f), r.p_format[f]);
    printf("; lead %d, lag %d frames; silence %.2f..%.2f s; samples of %d frames\n", r.lead, r.lag,
           r.silence_min_s, r.silence_max_s, r.sample_frames);
    int conv = r.p_format[FLM_FORMAT_CONVERSATION] > 0;
    if (conv)
        printf("conversations: back-channels under %.2f s, the model yields within %.2f s of a "
               "user onset (interrupt)\n",
               r.reaction_s, r.yield_s);
    if (conv || r.p_format[FLM_FORMAT_ARRT] + r.p_format[FLM_FORMAT_RTTS] +
                        r.p_format[FLM_FORMAT_RTTS_FREE] >
                    0) {
        if (!conv)
            printf("dialogs: gaps %.2f..%.2f s, response gaps %.2f..%.2f s (%s), ASR lag %d; "
                   "interruptions p %.2f, reaction %.2f s, fade %.3f s\n",
                   r.gap_min_s, r.gap_max_s, r.response_gap_min_s, r.response_gap_max_s,
                   r.manifest_timing ? "manifest timing where given" : "always drawn", r.asr_lag,
                   r.p_interrupt, r.reaction_s, r.fade_s);
        printf("augmentation: p_gain %g, gain %g..%g dB, floor %g dB, p_noise %g, noise %g..%g dB, "
               "p_echo %g, echo gain %g..%g, delay %g..%g s\n",
               ap.p_gain, ap.gain_db_lo, ap.gain_db_hi, ap.loudness_floor_db, ap.p_noise,
               ap.noise_db_lo, ap.noise_db_hi, ap.p_echo, ap.echo_gain_lo, ap.echo_gain_hi,
               ap.echo_delay_lo_s, ap.echo_delay_hi_s);
    }
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

int cmd_recipe(int argc, char **argv)
{
    static const cli_subcommand subs[] = {{"check", check}, {NULL, NULL}};
    return cli_dispatch("recipe", usage, subs, argc, argv);
}
