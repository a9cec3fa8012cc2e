/* Sentence splitting rules (table in split_cases.h), clause points, weights, token estimates,
 * language detection and the seconds -> frames rule. */
#include <stdio.h>
#include <string.h>

#include "flm_align.h"
#include "flm_alloc.h"
#include "split_cases.h"
#include "tap.h"

static void joined(const char *text, const flm_sentence_span *s, size_t n, char *out,
                   size_t out_size)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t k = 0; k < n; k++)
        o += (size_t)snprintf(out + o, out_size - o, "%s%.*s", k ? " | " : "",
                              (int)(s[k].end - s[k].begin), text + s[k].begin);
}

static void run_table(const split_case *cases, size_t n_cases, int merge)
{
    flm_sentence_span *spans = NULL;
    size_t n = 0, cap = 0;
    char got[2048];
    for (size_t i = 0; i < n_cases; i++) {
        flm_error err = {0};
        const split_case *c = &cases[i];
        int rc = flm_sentence_split(c->text, strlen(c->text), c->lang, &spans, &n, &cap, &err);
        if (merge)
            flm_sentence_merge_small(c->text, spans, &n, 3);
        joined(c->text, spans, n, got, sizeof got);
        if (!TAP_OK(rc == 0 && !strcmp(got, c->want), "%s '%s'", merge ? "merge" : "split",
                    c->text))
            tap_diag("got  '%s'\n want '%s'", got, c->want);
    }
    flm_free(spans);
}

static void test_clause_points(void)
{
    const char *t = "One, two: three, 1,000 at 10:30, 我们、你们，他们：好";
    static const char *const want[] = {",", ":", ",", ",", "、", "，", "："};
    size_t pts[16];
    size_t n = flm_sentence_clause_points(t, 0, strlen(t), pts, 16);
    TAP_EQ_INT(n, 7, "clause points: 7 (not inside 1,000 nor 10:30)");
    for (size_t k = 0; k < n && k < 7; k++) {
        size_t l = strlen(want[k]);
        TAP_OK(pts[k] >= l && !memcmp(t + pts[k] - l, want[k], l), "clause point %zu after '%s'", k,
               want[k]);
    }
}

static void test_weights_tokens(void)
{
    TAP_EQ_INT(flm_sentence_weight("Hello, world!", 0, 13), 10, "weight counts letters only");
    TAP_EQ_INT(flm_sentence_weight("你好，世界。", 0, strlen("你好，世界。")), 4,
               "weight counts CJK characters");
    TAP_EQ_INT(flm_sentence_weight("... ,;", 0, 6), 0, "punctuation weighs nothing");
    TAP_EQ_INT(flm_align_count_tokens(NULL, "hello world", 11), 4, "estimate: 2 per 5-letter word");
    TAP_EQ_INT(flm_align_count_tokens(NULL, "你好。", strlen("你好。")), 3,
               "estimate: CJK and punctuation 1 each");
    TAP_EQ_INT(flm_align_detect_language("hello", 5), FLM_LANG_EN, "detect en");
    TAP_EQ_INT(flm_align_detect_language("你好 ok", strlen("你好 ok")), FLM_LANG_ZH, "detect zh");
    TAP_EQ_INT(flm_align_language_from_code("zh-CN"), FLM_LANG_ZH, "zh-CN is zh");
    TAP_EQ_INT(flm_align_language_from_code("cmn"), FLM_LANG_ZH, "cmn is zh");
    TAP_EQ_INT(flm_align_language_from_code("en"), FLM_LANG_EN, "en");
    TAP_EQ_INT(flm_align_language_from_code(""), FLM_LANG_AUTO, "empty: detect");
}

static void test_frames(void)
{
    static const struct {
        double start, end;
        int64_t f0, f1;
    } c[] = {
        {0.0, 0.08, 0, 1},                /* exactly one frame */
        {0.0, 0.0801, 0, 2},              /* one sample into frame 1 rounds the end up */
        {0.08, 0.16, 1, 2},               /* frame-aligned span */
        {0.0799, 0.16, 0, 2},             /* starts in frame 0 */
        {1.0, 2.0, 12, 25},               /* 12.5 Hz: 1 s = 12.5 frames */
        {0.04, 0.12, 0, 2},               /* half frames cover both */
        {0.08 - 1.0 / 48000, 0.16, 1, 2}, /* half a sample before a frame rounds up to it */
        {-0.5, 0.08, 0, 1},               /* clamped at 0 */
        {3.0, 2.0, 37, 38},               /* reversed: empty span at the start sample */
        {655.36, 655.44, 8192, 8193},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int64_t f0, f1;
        flm_align_frames(c[i].start, c[i].end, 24000, 1920, &f0, &f1);
        char what[96];
        snprintf(what, sizeof what, "frames of [%.5f, %.5f)", c[i].start, c[i].end);
        if (!(TAP_EQ_INT(f0, c[i].f0, what) & TAP_EQ_INT(f1, c[i].f1, what)))
            tap_diag("got [%lld, %lld)", (long long)f0, (long long)f1);
    }
}

int main(void)
{
    size_t n_split = sizeof split_cases / sizeof split_cases[0];
    size_t n_merge = sizeof merge_cases / sizeof merge_cases[0];
    tap_diag("%zu splitting cases, %zu merging cases", n_split, n_merge);
    TAP_OK(n_split + n_merge >= 100, "at least 100 table cases");
    run_table(split_cases, n_split, 0);
    run_table(merge_cases, n_merge, 1);
    test_clause_points();
    test_weights_tokens();
    test_frames();
    return tap_done();
}
