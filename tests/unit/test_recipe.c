/* Recipes: the shipped files parse to the paper's values; errors name the file and key path. */
#include <stdio.h>
#include <string.h>

#include "flm_recipe.h"
#include "tap.h"

static void expect_error(const char *json, const char *fragment)
{
    flm_recipe r;
    flm_error err = {0};
    int rc = flm_recipe_parse(json, strlen(json), "r.json", &r, &err);
    TAP_OK(rc == FLM_EFORMAT, "rejected: %s", fragment);
    TAP_CONTAINS(err.msg, fragment, "message");
    TAP_CONTAINS(err.msg, "r.json", "names the file");
}

#define HEAD "{\"kind\":\"recipe\",\"name\":\"x\",\"stage\":\"s\","

int main(void)
{
    char path[1024];
    flm_recipe r;
    flm_error err = {0};
    snprintf(path, sizeof path, "%s/schemas/recipes/post-training-1.json", SOURCE_ROOT);
    TAP_EQ_INT(flm_recipe_load(path, &r, &err), 0, "post-training-1 loads");
    TAP_OK(r.p_tts == 0.5 && r.lead == 2 && r.lag == 0 && r.sample_frames == 8192,
           "TTS/ASR halves, lead 2, lag 0, 8192 frames");
    TAP_OK(r.loss_weight[FLM_LOSS_SEMANTIC] == 1.0 && r.loss_weight[FLM_LOSS_ACOUSTIC] == 0.5 &&
               r.loss_weight[FLM_LOSS_MONOLOGUE] == 1.0 && r.loss_weight[FLM_LOSS_WAIT] == 0.01,
           "loss weights a1 1, a2 0.5, b 1, g 0.01 (DESIGN 3)");
    TAP_OK(flm_recipe_corpus_weight(&r, "anything") == 1.0, "every corpus weight 1");
    TAP_OK(r.json && strstr(r.json, "post-training-1"),
           "the recipe text is kept for the run record");
    flm_recipe_free(&r);
    snprintf(path, sizeof path, "%s/schemas/recipes/post-training-2.json", SOURCE_ROOT);
    TAP_EQ_INT(flm_recipe_load(path, &r, &err), 0, "post-training-2 loads");
    TAP_OK(flm_recipe_corpus_weight(&r, "transcribed") == 0.5 &&
               flm_recipe_corpus_weight(&r, "aishell") == 5.0,
           "transcribed x0.5, human-annotated x5 (paper section 4)");
    flm_recipe_free(&r);

    snprintf(path, sizeof path, "%s/schemas/recipes/fine-tuning-1.json", SOURCE_ROOT);
    TAP_EQ_INT(flm_recipe_load(path, &r, &err), 0, "fine-tuning-1 loads");
    TAP_OK(r.p_format[FLM_FORMAT_ARRT] == 1.0 && r.p_tts == 0 && r.p_format[FLM_FORMAT_ASR] == 0,
           "fine-tuning-1: ASR-Response-TTS only (paper Table 2)");
    TAP_OK(r.p_interrupt == 0 && r.lead == 2 && r.reaction_s == 0.5 && r.asr_lag == 0 &&
               r.manifest_timing == 1,
           "semi-duplex: no interruptions, lead 2");
    int echo_off = 0, gain = 0;
    for (size_t i = 0; i < r.n_augment; i++) {
        echo_off |= !strcmp(r.augment_key[i], "p_echo") && !strcmp(r.augment_value[i], "0");
        gain |= !strcmp(r.augment_key[i], "p_gain") && !strcmp(r.augment_value[i], "0.6");
    }
    TAP_OK(echo_off && gain, "noise and gain augmentation, no echo (appendix B)");
    flm_recipe_free(&r);
    snprintf(path, sizeof path, "%s/schemas/recipes/fine-tuning-2.json", SOURCE_ROOT);
    TAP_EQ_INT(flm_recipe_load(path, &r, &err), 0, "fine-tuning-2 loads");
    TAP_OK(r.p_format[FLM_FORMAT_RTTS] + r.p_format[FLM_FORMAT_RTTS_FREE] == 1.0 &&
               r.p_format[FLM_FORMAT_RTTS_FREE] > 0,
           "fine-tuning-2: Response-TTS with and without free user inputs");
    TAP_OK(r.p_interrupt == 0.7 && r.reaction_s == 0.5, "interruptions p 0.7, reaction 0.5 s");
    int echo = 0;
    for (size_t i = 0; i < r.n_augment; i++)
        echo |= !strcmp(r.augment_key[i], "p_echo") && !strcmp(r.augment_value[i], "0.3");
    TAP_OK(echo, "echo leakage p 0.3 (shortest text of the number)");
    flm_recipe_free(&r);
    snprintf(path, sizeof path, "%s/schemas/recipes/fine-tuning-conversation.json", SOURCE_ROOT);
    TAP_EQ_INT(flm_recipe_load(path, &r, &err), 0, "fine-tuning-conversation loads");
    TAP_OK(r.p_format[FLM_FORMAT_CONVERSATION] == 1.0 && r.yield_s == 1.0 && r.reaction_s == 0.5 &&
               r.lead == 2,
           "conversations: lead 2, back-channels under 0.5 s, yield within 1 s");
    flm_recipe_free(&r);
    TAP_EQ_STR(flm_recipe_format_name(FLM_FORMAT_CONVERSATION), "conversation", "conversation");
    expect_error(HEAD "\"dialog\":{\"yield_s\":0.01}}",
                 "\"dialog.yield_s\": expected a number in [0.08, 10]");
    TAP_EQ_STR(flm_recipe_format_name(FLM_FORMAT_RTTS_FREE), "rtts-free", "format names");
    TAP_OK(flm_recipe_format_name(FLM_N_FORMATS) == NULL, "no name out of range");

    expect_error(HEAD "\"dialog\":{\"p_interrupt\":1.5}}",
                 "\"dialog.p_interrupt\": expected a number in [0, 1]");
    expect_error(HEAD "\"dialog\":{\"reaction\":0.5}}", "unknown key \"dialog.reaction\"");
    expect_error(HEAD "\"dialog\":{\"gap_min_s\":2,\"gap_max_s\":1}}",
                 "\"dialog.gap_max_s\": is below dialog.gap_min_s");
    expect_error(HEAD "\"dialog\":{\"reaction_s\":0.2,\"fade_s\":0.3}}",
                 "\"dialog.fade_s\": is longer than dialog.reaction_s");
    expect_error(HEAD "\"dialog\":{\"manifest_timing\":1}}",
                 "\"dialog.manifest_timing\": expected true or false");
    expect_error(HEAD "\"dialog\":{\"reaction_s\":0.01}}", "\"dialog.reaction_s\"");
    expect_error(HEAD "\"augmentation\":{\"p_echo\":[1]}}", "\"augmentation.p_echo\"");
    expect_error(HEAD "\"formats\":{\"arrt\":0.5}}", "sum to 1");
    expect_error(HEAD "\"formats\":{\"rtts_free\":1}}", "unknown key \"formats.rtts_free\"");
    expect_error("{\"kind\":\"recipe\"", "invalid JSON");
    expect_error("{\"kind\":\"profile\",\"name\":\"x\",\"stage\":\"s\"}",
                 "\"kind\": expected \"recipe\"");
    expect_error(HEAD "\"packing\":{\"lead\":3}}",
                 "\"packing.lead\": expected an integer in [0, 2]");
    expect_error(HEAD "\"packing\":{\"leed\":1}}", "unknown key \"packing.leed\"");
    expect_error(HEAD "\"formats\":{\"tts\":0.7,\"asr\":0.7}}", "sum to 1");
    expect_error(HEAD "\"loss_weights\":{\"wait\":-1}}", "\"loss_weights.wait\"");
    expect_error(HEAD "\"corpus_weights\":{\"libri\":\"x\"}}", "\"corpus_weights.libri\"");
    expect_error(HEAD "\"packing\":{\"silence_min_s\":2,\"silence_max_s\":1}}",
                 "\"packing.silence_max_s\": is below");
    expect_error(HEAD "\"seed\":-4}", "\"seed\": expected a non-negative integer");
    expect_error("{\"kind\":\"recipe\",\"stage\":\"s\"}", "\"name\"");
    expect_error(HEAD "\"colour\":1}", "unknown key \"colour\"");
    TAP_EQ_INT(flm_recipe_load("/nonexistent.json", &r, &err), FLM_ENOTFOUND, "missing file");
    return tap_done();
}
