/* Profiles: shipped files equal the published defaults; validation errors name file and key. */
#include <stdio.h>
#include <string.h>

#include "flm_profile.h"
#include "tap.h"

#ifndef SOURCE_ROOT
#error "SOURCE_ROOT must be defined"
#endif

static void expect_error(const char *json, const char *fragment)
{
    flm_profiles p;
    flm_profiles_default(&p);
    flm_error err = {0};
    int rc = flm_profile_parse(json, strlen(json), "t.json", &p, &err);
    TAP_OK(rc == FLM_EFORMAT, "rejected: %s", fragment);
    TAP_CONTAINS(err.msg, fragment, "message");
    TAP_CONTAINS(err.msg, "t.json", "message names the file");
}

int main(void)
{
    flm_profiles d, p;
    flm_profiles_default(&d);
    flm_profiles_default(&p);
    const char *files[] = {"vocab-flm-audio.json", "codec-mimi.json", "model-flm-audio.json"};
    for (int i = 0; i < 3; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/schemas/profiles/%s", SOURCE_ROOT, files[i]);
        flm_error err = {0};
        TAP_EQ_INT(flm_profile_load_file(path, &p, &err), 0, files[i]);
        if (err.code)
            tap_diag("%s", err.msg);
    }
    TAP_OK(p.vocab.hash == d.vocab.hash && p.codec.hash == d.codec.hash &&
               p.model.hash == d.model.hash,
           "shipped profiles hash equal to the built-in defaults");
    TAP_OK(memcmp(&p, &d, sizeof p) == 0, "shipped profiles equal the defaults field by field");

    const char *reordered = "{\"version\":1,\"kind\":\"codec\",\"name\":\"mimi-8\","
                            "\"aud_empty\":2049,\"aud_pad\":2048,\"card\":2048,\"n_codebooks\":8,"
                            "\"samples_per_frame\":1920,\"sample_rate\":24000}";
    TAP_EQ_INT(flm_profile_parse(reordered, strlen(reordered), "r", &p, NULL), 0, "reordered");
    TAP_OK(p.codec.hash == d.codec.hash, "hash independent of key order and whitespace");
    const char *changed = "{\"version\":1,\"kind\":\"codec\",\"name\":\"mimi-8\","
                          "\"aud_empty\":2050,\"aud_pad\":2048,\"card\":2048,\"n_codebooks\":8,"
                          "\"samples_per_frame\":1920,\"sample_rate\":24000}";
    flm_profile_parse(changed, strlen(changed), "c", &p, NULL);
    TAP_OK(p.codec.hash != d.codec.hash, "hash changes with a value");

    expect_error("{\"kind\":\"vocab\"", "invalid JSON");
    expect_error("[1,2]", "expected an object");
    expect_error("{\"kind\":\"lexicon\"}", "unknown profile kind");
    expect_error("{\"kind\":\"model\",\"name\":\"m\",\"version\":1,\"sample_frames\":8192}",
                 "missing key \"delays\"");
    expect_error("{\"kind\":\"model\",\"name\":\"m\",\"version\":1,\"sample_frames\":8192,"
                 "\"delays\":[0,0,1]}",
                 "expected an array of 17 integers");
    expect_error("{\"kind\":\"model\",\"name\":\"m\",\"version\":1,\"sample_frames\":8192,"
                 "\"delays\":[0,0,1,1,1,1,1,1,1,0,1,1,1,1,1,1,-1]}",
                 "\"delays\"[16]");
    expect_error("{\"kind\":\"model\",\"name\":\"m\",\"version\":1,\"sample_frames\":8192,"
                 "\"delays\":[0,0,1,1,1,1,1,1,1,0,1,1,1,1,1,1,1],\"colour\":1}",
                 "unknown key \"colour\"");
    const char *model_head =
        "{\"kind\":\"model\",\"name\":\"m\",\"version\":1,\"sample_frames\":8192,"
        "\"delays\":[0,0,1,1,1,1,1,1,1,0,1,1,1,1,1,1,1]";
    char json[512];
    snprintf(json, sizeof json, "%s}", model_head);
    expect_error(json, "missing key \"loss_weights\"");
    snprintf(json, sizeof json, "%s,\"loss_weights\":{\"semantic\":1}}", model_head);
    expect_error(json, "\"loss_weights\": expected an object with the 4 loss classes");
    snprintf(json, sizeof json,
             "%s,\"loss_weights\":{\"semantic\":1,\"acoustic\":0.5,\"monologue\":1,"
             "\"wait\":-0.5}}",
             model_head);
    expect_error(json, "\"loss_weights\".wait: expected a number in [0, 10000]");
    snprintf(json, sizeof json,
             "%s,\"loss_weights\":{\"semantic\":2,\"acoustic\":0.25,\"monologue\":1,"
             "\"wait\":0}}",
             model_head);
    TAP_EQ_INT(flm_profile_parse(json, strlen(json), "w", &p, NULL), 0, "model profile parsed");
    TAP_OK(p.model.loss_weights[FLM_LOSS_SEMANTIC] == 2.0 &&
               p.model.loss_weights[FLM_LOSS_ACOUSTIC] == 0.25 &&
               p.model.loss_weights[FLM_LOSS_WAIT] == 0.0 &&
               p.model.loss_weights[FLM_LOSS_NONE] == 0.0,
           "loss weights read by class");
    flm_profiles q = d;
    q.model.loss_weights[FLM_LOSS_WAIT] = 7.0;
    flm_profiles_rehash(&q);
    TAP_OK(q.model.hash == d.model.hash, "loss weights are not part of the model hash");
    TAP_OK(d.model.loss_weights[FLM_LOSS_SEMANTIC] == 1.0 &&
               d.model.loss_weights[FLM_LOSS_ACOUSTIC] == 0.5 &&
               d.model.loss_weights[FLM_LOSS_MONOLOGUE] == 1.0 &&
               d.model.loss_weights[FLM_LOSS_WAIT] == 0.01,
           "default loss weights are DESIGN section 3's");
    expect_error("{\"kind\":\"vocab\",\"name\":\"v\",\"version\":1,\"text_vocab_size\":152064,"
                 "\"text_wait\":151665,\"text_asr\":151665,\"text_answer\":151667,"
                 "\"text_pad\":3,\"text_epad\":0}",
                 "text_wait and text_asr are both 151665");
    expect_error("{\"kind\":\"vocab\",\"name\":\"v\",\"version\":1,\"text_vocab_size\":1000,"
                 "\"text_wait\":151665,\"text_asr\":151666,\"text_answer\":151667,"
                 "\"text_pad\":3,\"text_epad\":0}",
                 "not below text_vocab_size");
    expect_error("{\"kind\":\"codec\",\"name\":\"c\",\"version\":1,\"sample_rate\":24000,"
                 "\"samples_per_frame\":1920,\"n_codebooks\":8,\"card\":2048,\"aud_pad\":7,"
                 "\"aud_empty\":2049}",
                 "must not be codes below card");
    expect_error("{\"kind\":\"codec\",\"name\":\"c\",\"version\":\"1\"}", "\"version\": expected");
    flm_error err = {0};
    TAP_EQ_INT(flm_profile_load_file("/nonexistent/p.json", &p, &err), FLM_ENOTFOUND,
               "missing file");
    TAP_CONTAINS(err.msg, "/nonexistent/p.json", "names the missing file");
    return tap_done();
}
