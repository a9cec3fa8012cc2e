/* flm validate: teacher-forced loss of an FLM-Audio checkpoint over the samples of a dataset.
 *
 *   flm validate --model DIR --index IDX [--samples N] [--frames F] [--recipe R] [--json]
 *
 * Per sample and in total: cross-entropy and top-1 accuracy for each loss class (speak semantic,
 * speak acoustic, monologue, wait) and the class-weighted loss with the recipe's weights; samples
 * whose weighted loss is far from the others' (robust z-score, median / MAD) are flagged. Ctrl-C
 * stops after the current chunk and reports what was scored. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_dataset.h"
#include "flm_kernels.h"
#include "flm_lm.h"
#include "flm_profile.h"
#include "flm_recipe.h"

#define OUTLIER_Z 3.5

/* DESIGN section 3 defaults, used without --recipe */

static volatile int interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: flm validate --model DIR --index IDX [--samples N] [--frames F]\n"
            "                    [--recipe RECIPE.json] [--weights f32|bf16|q8|q4]\n"
            "                    [--mmap] [--threads N] [--json]\n"
            "\n"
            "Runs an FLM-Audio checkpoint (DIR: config.json + safetensors, e.g. from flm model\n"
            "init --arch flm) teacher-forced over the first N samples (default: all) of the\n"
            "dataset IDX (a dataset directory or its index.sqlite), each cut to its first F\n"
            "frames (default: whole), under the model's delay view. Reports per sample and in\n"
            "total the cross-entropy (nats) and top-1 accuracy of each loss class (semantic,\n"
            "acoustic, monologue, wait) and the loss weighted by the recipe's loss_weights\n"
            "(default: the model profile's, 1.0, 0.5, 1.0, 0.01); flags samples whose weighted\n"
            "loss is an outlier (robust z-score > %.1f against the median and MAD of all\n"
            "samples; at least 5 samples). Ctrl-C stops early and reports the samples scored\n"
            "so far.\n"
            "--weights: the format the weights are held in for compute (default f32; bf16,\n"
            "or per-block int8 / 4-bit: compare their losses with f32's to see what\n"
            "quantization costs).\n" CLI_HELP_MMAP,
            OUTLIER_Z);
}

static const char *const class_key[FLM_N_LOSS_CLASSES] = {"none", "semantic", "acoustic",
                                                          "monologue", "wait"};

static json_t *loss_json(const flm_lm_loss *l, const double *w)
{
    json_t *o = json_object();
    for (int k = 1; k < FLM_N_LOSS_CLASSES; k++) {
        json_t *c = json_object();
        json_object_set_new(c, "count", json_integer(l->count[k]));
        json_object_set_new(c, "loss",
                            l->count[k] ? json_real(l->sum[k] / (double)l->count[k]) : json_null());
        json_object_set_new(c, "accuracy",
                            l->count[k] ? json_real((double)l->correct[k] / (double)l->count[k])
                                        : json_null());
        json_object_set_new(o, class_key[k], c);
    }
    json_object_set_new(o, "weighted_loss", json_real(flm_lm_loss_weighted(l, w)));
    return o;
}

static void print_row(const char *id, int64_t frames, const flm_lm_loss *l, const double *w,
                      int outlier)
{
    printf("%-32s %7lld %8.4f", id, (long long)frames, flm_lm_loss_weighted(l, w));
    for (int k = 1; k < FLM_N_LOSS_CLASSES; k++) {
        if (l->count[k])
            printf(" %8.4f %5.1f%%", l->sum[k] / (double)l->count[k],
                   100.0 * (double)l->correct[k] / (double)l->count[k]);
        else
            printf(" %8s %6s", "-", "-");
    }
    printf("%s\n", outlier ? "  OUTLIER" : "");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Robust z = 0.6745 (x - median) / MAD; flags |z| > OUTLIER_Z (none when MAD is 0 or with
 * fewer than 5 samples: with 3 or 4 the median and MAD say little). */
static void flag_outliers(const double *x, int64_t n, char *flag)
{
    double *s = flm_malloc((size_t)(n ? n : 1) * sizeof *s);
    memset(flag, 0, (size_t)n);
    if (!s || n < 5) {
        flm_free(s);
        return;
    }
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    for (int64_t i = 0; i < n; i++)
        s[i] = fabs(x[i] - med);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double mad = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    for (int64_t i = 0; i < n && mad > 0; i++)
        flag[i] = fabs(0.6745 * (x[i] - med) / mad) > OUTLIER_Z;
    flm_free(s);
}

typedef struct validate_args {
    const char *index, *recipe;
    int64_t n_samples, max_frames;
    int json;
    cli_model_opts mo;
    double w[FLM_N_LOSS_CLASSES]; /* loss weights: the recipe's or the defaults */
} validate_args;

static int parse_args(int argc, char **argv, validate_args *a)
{
    const char *samples = NULL, *frames = NULL;
    *a = (validate_args){.n_samples = -1, .max_frames = -1, .mo = cli_model_opts_default()};
    const cli_option own[] = {
        CLI_OPT("--index", "IDX", "the dataset: its directory or index.sqlite", &a->index),
        CLI_OPT("--samples", "N", "score the first N samples (default: all)", &samples),
        CLI_OPT("--frames", "F", "cut each sample to its first F frames (default: whole)", &frames),
        CLI_OPT("--recipe", "RECIPE.json", "take the loss weights from this stage recipe",
                &a->recipe),
        CLI_FLAG("--json", "print one JSON object", &a->json),
        {0}};
    int rc = cli_parse_model("validate", usage, own, &a->mo, argc, argv);
    if (rc != CLI_PARSED ||
        (rc = cli_i64("validate", "--samples", samples, 1, INT64_MAX, &a->n_samples)) ||
        (rc = cli_i64("validate", "--frames", frames, 1, FLM_MAX_FRAMES, &a->max_frames)))
        return rc;
    if (!a->mo.model || !a->index)
        return cli_usage("validate", "%s",
                         !a->mo.model ? "missing --model DIR" : "missing --index DATASET");
    flm_profiles prof; /* the model profile's default loss weights */
    flm_profiles_default(&prof);
    memcpy(a->w, prof.model.loss_weights, sizeof a->w);
    if (a->recipe) {
        flm_recipe r;
        flm_error err = {0};
        if (flm_recipe_load(a->recipe, &r, &err) < 0) {
            cli_error("validate: %s", err.msg);
            return 1;
        }
        memcpy(a->w, r.loss_weight, sizeof a->w);
        a->w[FLM_LOSS_NONE] = 0.0;
        flm_recipe_free(&r);
    }
    return CLI_PARSED;
}

/* What was scored: per sample (the first done of n) and in total. */
typedef struct scores {
    int64_t n, done, total_frames;
    flm_lm_loss total;
    flm_lm_loss *per;
    int64_t *frames;
    char **ids;
    double *loss; /* weighted */
    char *outlier;
} scores;

static int scores_alloc(scores *s, int64_t n)
{
    *s = (scores){.n = n};
    s->per = flm_calloc((size_t)n + 1, sizeof *s->per);
    s->frames = flm_calloc((size_t)n + 1, sizeof *s->frames);
    s->ids = flm_calloc((size_t)n + 1, sizeof *s->ids);
    s->loss = flm_calloc((size_t)n + 1, sizeof *s->loss);
    s->outlier = flm_calloc((size_t)n + 1, 1);
    return s->per && s->frames && s->ids && s->loss && s->outlier ? 0 : -1;
}

static void scores_free(scores *s)
{
    for (int64_t i = 0; s->ids && i < s->n; i++)
        flm_free(s->ids[i]);
    flm_free(s->ids);
    flm_free(s->per);
    flm_free(s->frames);
    flm_free(s->loss);
    flm_free(s->outlier);
}

/* Scores the samples until the end or Ctrl-C: 0, or -1 (said). */
static int score_all(const validate_args *a, flm_dataset *ds, flm_lm_state *st, int32_t *tok,
                     uint8_t *cls, scores *s)
{
    flm_error err = {0};
    cli_progress bar;
    cli_progress_start(&bar, "validate", "samples", s->n);
    for (int64_t i = 0; i < s->n && !interrupted; i++) {
        flm_record_view rv;
        if (flm_dataset_read(ds, i, &rv, &err) < 0) {
            cli_error("validate: %s", err.msg);
            return -1;
        }
        int32_t f = (int32_t)rv.n_frames;
        if (a->max_frames > 0 && f > a->max_frames)
            f = (int32_t)a->max_frames;
        for (int k = 0; k < FLM_N_CHANNELS; k++) {
            memcpy(tok + (size_t)k * f, rv.tokens + (size_t)k * rv.n_frames,
                   (size_t)f * sizeof *tok);
            memcpy(cls + (size_t)k * f, rv.loss_class + (size_t)k * rv.n_frames, (size_t)f);
        }
        if (!(s->ids[i] = flm_strdup(rv.id ? rv.id : ""))) {
            cli_error("validate: out of memory");
            return -1;
        }
        int r = f > 0 ? flm_lm_score(st, tok, cls, f, &s->per[i], &interrupted, &err) : 0;
        if (r < 0) {
            cli_error("validate: sample %lld (%s): %s", (long long)i, s->ids[i], err.msg);
            return -1;
        }
        if (r == 1)
            break;
        s->frames[i] = f;
        s->total_frames += f;
        s->loss[i] = flm_lm_loss_weighted(&s->per[i], a->w);
        for (int k = 0; k < FLM_N_LOSS_CLASSES; k++) {
            s->total.sum[k] += s->per[i].sum[k];
            s->total.count[k] += s->per[i].count[k];
            s->total.correct[k] += s->per[i].correct[k];
        }
        s->done++;
        cli_progress_update(&bar, s->done);
    }
    cli_progress_finish(&bar, s->done);
    flag_outliers(s->loss, s->done, s->outlier);
    return 0;
}

static void print_table(const validate_args *a, const scores *s, int64_t n_out)
{
    printf("%-32s %7s %8s", "sample", "frames", "loss");
    for (int k = 1; k < FLM_N_LOSS_CLASSES; k++)
        printf(" %8s %6s", class_key[k], "acc");
    printf("\n");
    for (int64_t i = 0; i < s->done; i++)
        print_row(s->ids[i], s->frames[i], &s->per[i], a->w, s->outlier[i]);
    print_row("total", s->total_frames, &s->total, a->w, 0);
    printf("%lld samples, %lld outliers%s\n", (long long)s->done, (long long)n_out,
           interrupted ? " (interrupted)" : "");
}

static void print_json(const validate_args *a, const scores *s, int64_t n_out)
{
    json_t *root = json_object(), *jt = loss_json(&s->total, a->w), *jw = json_object();
    json_t *jsamples = json_array();
    for (int64_t i = 0; i < s->done; i++) {
        json_t *o = loss_json(&s->per[i], a->w);
        json_object_set_new(o, "id", json_string(s->ids[i]));
        json_object_set_new(o, "sample", json_integer(i));
        json_object_set_new(o, "frames", json_integer(s->frames[i]));
        json_object_set_new(o, "outlier", json_boolean(s->outlier[i]));
        json_array_append_new(jsamples, o);
    }
    for (int k = 1; k < FLM_N_LOSS_CLASSES; k++)
        json_object_set_new(jw, class_key[k], json_real(a->w[k]));
    json_object_set_new(root, "model", json_string(a->mo.model));
    json_object_set_new(root, "index", json_string(a->index));
    json_object_set_new(root, "weights_format",
                        json_string(flm_wtype_name((flm_wtype)a->mo.wtype)));
    json_object_set_new(root, "weights", jw);
    json_object_set_new(root, "samples", jsamples);
    json_object_set_new(root, "total", jt);
    json_object_set_new(root, "n_samples", json_integer(s->done));
    json_object_set_new(root, "n_frames", json_integer(s->total_frames));
    json_object_set_new(root, "n_outliers", json_integer(n_out));
    json_object_set_new(root, "interrupted", json_boolean(interrupted));
    cli_json_print(stdout, root); /* reals shortest-round-trip */
    json_decref(root);
}

int cmd_validate(int argc, char **argv)
{
    validate_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSED)
        return rc;
    flm_kernels_init((int)a.mo.threads);
    flm_error err = {0};
    flm_lm *lm = NULL;
    flm_dataset *ds = NULL;
    flm_lm_state *st = NULL;
    int32_t *tok = NULL;
    uint8_t *cls = NULL;
    scores s = {0};
    rc = 1;
    if (flm_lm_load(&lm, a.mo.model, (flm_wtype)a.mo.wtype, a.mo.load_flags, &err) < 0 ||
        flm_dataset_open(&ds, a.index, &err) < 0) {
        cli_error("validate: %s", err.msg);
        goto done;
    }
    int64_t n = flm_dataset_count(ds);
    if (a.n_samples >= 0 && a.n_samples < n)
        n = a.n_samples;
    int32_t longest = 1;
    for (int64_t i = 0; i < n; i++) {
        int32_t f = flm_dataset_frames(ds, i);
        if (a.max_frames > 0 && f > a.max_frames)
            f = (int32_t)a.max_frames;
        longest = f > longest ? f : longest;
    }
    if (flm_lm_state_create(&st, lm, longest + 1,
                            longest + 1 < FLM_LM_TF_ROWS ? longest + 1 : FLM_LM_TF_ROWS,
                            &err) < 0) {
        cli_error("validate: %s", err.msg);
        goto done;
    }
    tok = flm_malloc((size_t)FLM_N_CHANNELS * longest * sizeof *tok);
    cls = flm_malloc((size_t)FLM_N_CHANNELS * longest);
    if (scores_alloc(&s, n) < 0 || !tok || !cls) {
        cli_error("validate: out of memory");
        goto done;
    }
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigaction(SIGINT, &sa, &old);
    if (score_all(&a, ds, st, tok, cls, &s) == 0) {
        int64_t n_out = 0;
        for (int64_t i = 0; i < s.done; i++)
            n_out += s.outlier[i];
        if (a.json)
            print_json(&a, &s, n_out);
        else
            print_table(&a, &s, n_out);
        rc = interrupted ? 130 : 0;
    }
    sigaction(SIGINT, &old, NULL);
done:
    scores_free(&s);
    flm_free(tok);
    flm_free(cls);
    flm_lm_state_destroy(&st);
    flm_dataset_close(&ds);
    flm_lm_destroy(&lm);
    return rc;
}
