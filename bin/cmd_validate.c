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
#include "flm_recipe.h"

#define OUTLIER_Z 3.5

/* DESIGN section 3 defaults, used without --recipe */
static const double default_weights[FLM_N_LOSS_CLASSES] = {0.0, 1.0, 0.5, 1.0, 0.01};

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
            "(default 1.0, 0.5, 1.0, 0.01); flags samples whose weighted loss is an outlier\n"
            "(robust z-score > %.1f against the median and MAD of all samples; at least 5\n"
            "samples). Ctrl-C stops early and reports the samples scored so far.\n"
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

int cmd_validate(int argc, char **argv)
{
    const char *index = NULL, *recipe = NULL, *v;
    int64_t n_samples = -1, max_frames = -1;
    int json = 0, bad = 0, taken;
    cli_model_opts mo = cli_model_opts_default();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if ((taken = cli_model_opt("validate", argc, argv, &i, &mo, &bad)) != 0) {
            if (taken < 0)
                return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--index", &bad))) {
            index = v;
        } else if ((v = cli_opt(argc, argv, &i, "--recipe", &bad))) {
            recipe = v;
        } else if ((v = cli_opt(argc, argv, &i, "--samples", &bad))) {
            if (cli_parse_i64("--samples", v, 1, INT64_MAX, &n_samples) < 0)
                return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--frames", &bad))) {
            if (cli_parse_i64("--frames", v, 1, FLM_MAX_FRAMES, &max_frames) < 0)
                return 2;
        } else {
            if (!bad)
                cli_error("validate: unexpected argument '%s' (see flm validate --help)", argv[i]);
            return 2;
        }
    }
    if (!mo.model || !index)
        return cli_usage("validate", "%s",
                         !mo.model ? "missing --model DIR" : "missing --index DATASET");
    double w[FLM_N_LOSS_CLASSES];
    memcpy(w, default_weights, sizeof w);
    flm_error err = {0};
    if (recipe) {
        flm_recipe r;
        if (flm_recipe_load(recipe, &r, &err) < 0) {
            cli_error("validate: %s", err.msg);
            return 1;
        }
        memcpy(w, r.loss_weight, sizeof w);
        w[FLM_LOSS_NONE] = 0.0;
        flm_recipe_free(&r);
    }
    flm_kernels_init((int)mo.threads);
    flm_lm *lm = NULL;
    flm_dataset *ds = NULL;
    flm_lm_state *st = NULL;
    int32_t *tok = NULL;
    uint8_t *cls = NULL;
    double *sample_loss = NULL;
    char *flags = NULL;
    json_t *jsamples = json_array();
    int rc = 1;
    if (flm_lm_load(&lm, mo.model, (flm_wtype)mo.wtype, mo.load_flags, &err) < 0 ||
        flm_dataset_open(&ds, index, &err) < 0) {
        cli_error("validate: %s", err.msg);
        goto done;
    }
    int64_t n = flm_dataset_count(ds);
    if (n_samples >= 0 && n_samples < n)
        n = n_samples;
    int32_t longest = 1;
    for (int64_t i = 0; i < n; i++) {
        int32_t f = flm_dataset_frames(ds, i);
        if (max_frames > 0 && f > max_frames)
            f = (int32_t)max_frames;
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
    sample_loss = flm_calloc((size_t)n + 1, sizeof *sample_loss);
    flags = flm_calloc((size_t)n + 1, 1);
    flm_lm_loss *per = flm_calloc((size_t)n + 1, sizeof *per);
    int64_t *frames = flm_calloc((size_t)n + 1, sizeof *frames);
    char **ids = flm_calloc((size_t)n + 1, sizeof *ids);
    if (!tok || !cls || !sample_loss || !flags || !per || !frames || !ids || !jsamples) {
        cli_error("validate: out of memory");
        goto free_per;
    }
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigaction(SIGINT, &sa, &old);
    cli_progress bar;
    cli_progress_start(&bar, "validate", "samples", n);
    int64_t done_n = 0, total_frames = 0;
    flm_lm_loss total = {0};
    for (int64_t i = 0; i < n && !interrupted; i++) {
        flm_record_view rv;
        if (flm_dataset_read(ds, i, &rv, &err) < 0) {
            cli_error("validate: %s", err.msg);
            goto interrupted_or_failed;
        }
        int32_t f = (int32_t)rv.n_frames;
        if (max_frames > 0 && f > max_frames)
            f = (int32_t)max_frames;
        for (int k = 0; k < FLM_N_CHANNELS; k++) {
            memcpy(tok + (size_t)k * f, rv.tokens + (size_t)k * rv.n_frames,
                   (size_t)f * sizeof *tok);
            memcpy(cls + (size_t)k * f, rv.loss_class + (size_t)k * rv.n_frames, (size_t)f);
        }
        if (!(ids[i] = flm_strdup(rv.id ? rv.id : ""))) {
            cli_error("validate: out of memory");
            goto interrupted_or_failed;
        }
        int r = f > 0 ? flm_lm_score(st, tok, cls, f, &per[i], &interrupted, &err) : 0;
        if (r < 0) {
            cli_error("validate: sample %lld (%s): %s", (long long)i, ids[i], err.msg);
            goto interrupted_or_failed;
        }
        if (r == 1)
            break;
        frames[i] = f;
        total_frames += f;
        sample_loss[i] = flm_lm_loss_weighted(&per[i], w);
        for (int k = 0; k < FLM_N_LOSS_CLASSES; k++) {
            total.sum[k] += per[i].sum[k];
            total.count[k] += per[i].count[k];
            total.correct[k] += per[i].correct[k];
        }
        done_n++;
        cli_progress_update(&bar, done_n);
    }
    cli_progress_finish(&bar, done_n);
    flag_outliers(sample_loss, done_n, flags);
    int64_t n_out = 0;
    if (!json) {
        printf("%-32s %7s %8s", "sample", "frames", "loss");
        for (int k = 1; k < FLM_N_LOSS_CLASSES; k++)
            printf(" %8s %6s", class_key[k], "acc");
        printf("\n");
    }
    for (int64_t i = 0; i < done_n; i++) {
        n_out += flags[i];
        if (!json) {
            print_row(ids[i], frames[i], &per[i], w, flags[i]);
            continue;
        }
        json_t *o = loss_json(&per[i], w);
        json_object_set_new(o, "id", json_string(ids[i]));
        json_object_set_new(o, "sample", json_integer(i));
        json_object_set_new(o, "frames", json_integer(frames[i]));
        json_object_set_new(o, "outlier", json_boolean(flags[i]));
        json_array_append_new(jsamples, o);
    }
    if (json) {
        json_t *root = json_object(), *jt = loss_json(&total, w), *jw = json_object();
        for (int k = 1; k < FLM_N_LOSS_CLASSES; k++)
            json_object_set_new(jw, class_key[k], json_real(w[k]));
        json_object_set_new(root, "model", json_string(mo.model));
        json_object_set_new(root, "index", json_string(index));
        json_object_set_new(root, "weights_format",
                            json_string(flm_wtype_name((flm_wtype)mo.wtype)));
        json_object_set_new(root, "weights", jw);
        json_object_set_new(root, "samples", jsamples);
        jsamples = NULL;
        json_object_set_new(root, "total", jt);
        json_object_set_new(root, "n_samples", json_integer(done_n));
        json_object_set_new(root, "n_frames", json_integer(total_frames));
        json_object_set_new(root, "n_outliers", json_integer(n_out));
        json_object_set_new(root, "interrupted", json_boolean(interrupted));
        cli_json_print(stdout, root); /* reals shortest-round-trip */
        json_decref(root);
    } else {
        print_row("total", total_frames, &total, w, 0);
        printf("%lld samples, %lld outliers%s\n", (long long)done_n, (long long)n_out,
               interrupted ? " (interrupted)" : "");
    }
    rc = interrupted ? 130 : 0;
    goto restore;
interrupted_or_failed:
    rc = 1;
restore:
    sigaction(SIGINT, &old, NULL);
free_per:
    for (int64_t i = 0; ids && i < n; i++)
        flm_free(ids[i]);
    flm_free(ids);
    flm_free(per);
    flm_free(frames);
done:
    json_decref(jsamples);
    flm_free(tok);
    flm_free(cls);
    flm_free(sample_loss);
    flm_free(flags);
    flm_lm_state_destroy(&st);
    flm_dataset_close(&ds);
    flm_lm_destroy(&lm);
    return rc;
}
