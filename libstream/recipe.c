#include "flm_recipe.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_json.h"
#include "flm_profile.h"
#include "flm_util.h"

static int bad(flm_error *err, const char *name, const char *key, const char *what)
{
    return flm_error_set(err, FLM_EFORMAT, "%s: key \"%s\": %s", name, key, what);
}

/* Rejects keys of obj not in allowed (NULL-terminated). */
static int only_keys(json_t *obj, const char *const *allowed, const char *name, const char *where,
                     flm_error *err)
{
    const char *key = flm_json_unknown_key(obj, allowed);
    if (key)
        return flm_error_set(err, FLM_EFORMAT, "%s: unknown key \"%s%s%.64s\"", name, where,
                             *where ? "." : "", key);
    return 0;
}

static int get_num(json_t *obj, const char *key, const char *path, double lo, double hi,
                   double *out, const char *name, flm_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0; /* optional: keep the default */
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
        char what[96];
        snprintf(what, sizeof what, "expected a number in [%g, %g]", lo, hi);
        return bad(err, name, path, what);
    }
    *out = json_number_value(v);
    return 0;
}

static int get_int(json_t *obj, const char *key, const char *path, int64_t lo, int64_t hi,
                   int32_t *out, const char *name, flm_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char what[96];
        snprintf(what, sizeof what, "expected an integer in [%lld, %lld]", (long long)lo,
                 (long long)hi);
        return bad(err, name, path, what);
    }
    *out = (int32_t)json_integer_value(v);
    return 0;
}

static const char *const format_names[FLM_N_FORMATS + 1] = {
    "tts", "asr", "arrt", "rtts", "rtts-free", "words", "words-asr", "conversation", NULL};

const char *flm_recipe_format_name(int format)
{
    return format >= 0 && format < FLM_N_FORMATS ? format_names[format] : NULL;
}

void flm_recipe_free(flm_recipe *r)
{
    for (size_t i = 0; i < r->n_corpora; i++)
        flm_free(r->corpus[i]);
    for (size_t i = 0; i < r->n_augment; i++) {
        flm_free(r->augment_key[i]);
        flm_free(r->augment_value[i]);
    }
    flm_free(r->json);
    memset(r, 0, sizeof *r);
}

static void defaults(flm_recipe *r)
{
    memset(r, 0, sizeof *r);
    r->version = 1;
    r->p_tts = 0.5;
    r->p_format[FLM_FORMAT_TTS] = 0.5;
    r->p_format[FLM_FORMAT_ASR] = 0.5;
    r->gap_min_s = 0.2;
    r->gap_max_s = 1.5;
    r->response_gap_max_s = 0.5;
    r->manifest_timing = 1;
    r->p_interrupt = 0.7;
    r->reaction_s = 0.5;
    r->fade_s = 0.01;
    r->yield_s = 1.0;
    r->lead = 2;
    r->word_lag = 1;
    r->silence_min_s = 0.08;
    r->silence_max_s = 3.0;
    r->sample_frames = 8192;
    flm_profiles prof;
    flm_profiles_default(&prof);
    memcpy(r->loss_weight, prof.model.loss_weights, sizeof r->loss_weight);
    r->default_corpus_weight = 1.0;
}

static int parse_dialog(json_t *dg, const char *name, flm_recipe *r, flm_error *err)
{
    static const char *keys[] = {"gap_min_s",
                                 "gap_max_s",
                                 "response_gap_min_s",
                                 "response_gap_max_s",
                                 "asr_lag",
                                 "manifest_timing",
                                 "p_interrupt",
                                 "reaction_s",
                                 "fade_s",
                                 "yield_s",
                                 NULL};
    if (!json_is_object(dg))
        return bad(err, name, "dialog", "expected an object");
    int rc;
    if ((rc = only_keys(dg, keys, name, "dialog", err)) < 0 ||
        (rc = get_num(dg, "gap_min_s", "dialog.gap_min_s", 0, 60, &r->gap_min_s, name, err)) < 0 ||
        (rc = get_num(dg, "gap_max_s", "dialog.gap_max_s", 0, 60, &r->gap_max_s, name, err)) < 0 ||
        (rc = get_num(dg, "response_gap_min_s", "dialog.response_gap_min_s", 0, 60,
                      &r->response_gap_min_s, name, err)) < 0 ||
        (rc = get_num(dg, "response_gap_max_s", "dialog.response_gap_max_s", 0, 60,
                      &r->response_gap_max_s, name, err)) < 0 ||
        (rc = get_int(dg, "asr_lag", "dialog.asr_lag", 0, 64, &r->asr_lag, name, err)) < 0 ||
        (rc = get_num(dg, "p_interrupt", "dialog.p_interrupt", 0, 1, &r->p_interrupt, name, err)) <
            0 ||
        (rc = get_num(dg, "reaction_s", "dialog.reaction_s", 0.08, 10, &r->reaction_s, name, err)) <
            0 ||
        (rc = get_num(dg, "fade_s", "dialog.fade_s", 0, 1, &r->fade_s, name, err)) < 0 ||
        (rc = get_num(dg, "yield_s", "dialog.yield_s", 0.08, 10, &r->yield_s, name, err)) < 0)
        return rc;
    json_t *mt = json_object_get(dg, "manifest_timing");
    if (mt && !json_is_boolean(mt))
        return bad(err, name, "dialog.manifest_timing", "expected true or false");
    if (mt)
        r->manifest_timing = json_is_true(mt);
    if (r->gap_max_s < r->gap_min_s)
        return bad(err, name, "dialog.gap_max_s", "is below dialog.gap_min_s");
    if (r->response_gap_max_s < r->response_gap_min_s)
        return bad(err, name, "dialog.response_gap_max_s", "is below dialog.response_gap_min_s");
    if (r->fade_s > r->reaction_s)
        return bad(err, name, "dialog.fade_s", "is longer than dialog.reaction_s");
    return 0;
}

static int parse_augmentation(json_t *ag, const char *name, flm_recipe *r, flm_error *err)
{
    if (!json_is_object(ag))
        return bad(err, name, "augmentation", "expected an object {parameter: value}");
    const char *key;
    json_t *v;
    json_object_foreach(ag, key, v)
    {
        char path[128], text[64];
        snprintf(path, sizeof path, "augmentation.%.100s", key);
        if (json_is_number(v)) /* the shortest text that reads back as the same double */
            flm_json_fmt_double(text, sizeof text, json_number_value(v));
        else if (json_is_string(v) && json_string_length(v) < sizeof text)
            snprintf(text, sizeof text, "%s", json_string_value(v));
        else if (json_is_boolean(v))
            snprintf(text, sizeof text, "%d", json_is_true(v));
        else
            return bad(err, name, path, "expected a number, a boolean or a short string");
        if (r->n_augment == FLM_RECIPE_MAX_AUGMENT)
            return bad(err, name, "augmentation", "too many parameters (max 32)");
        if (!(r->augment_key[r->n_augment] = flm_strdup(key)) ||
            !(r->augment_value[r->n_augment] = flm_strdup(text))) {
            r->n_augment++; /* freed with the rest */
            return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", name);
        }
        r->n_augment++;
    }
    return 0;
}

static int parse(json_t *root, const char *name, flm_recipe *r, flm_error *err)
{
    static const char *top[] = {"kind",    "name",           "version", "stage",        "seed",
                                "formats", "corpus_weights", "packing", "loss_weights", "comment",
                                "dialog",  "augmentation",   NULL};
    int rc = only_keys(root, top, name, "", err);
    if (rc < 0)
        return rc;
    const char *kind = json_string_value(json_object_get(root, "kind"));
    if (!kind || strcmp(kind, "recipe") != 0)
        return bad(err, name, "kind", "expected \"recipe\"");
    const char *s = json_string_value(json_object_get(root, "name"));
    if (!s || !*s || strlen(s) >= sizeof r->name)
        return bad(err, name, "name", "expected a string of 1..63 bytes");
    snprintf(r->name, sizeof r->name, "%s", s);
    s = json_string_value(json_object_get(root, "stage"));
    if (!s || !*s || strlen(s) >= sizeof r->stage)
        return bad(err, name, "stage", "expected a string of 1..63 bytes");
    snprintf(r->stage, sizeof r->stage, "%s", s);
    if ((rc = get_int(root, "version", "version", 1, 1, &r->version, name, err)) < 0)
        return rc;
    json_t *seed = json_object_get(root, "seed");
    if (seed && (!json_is_integer(seed) || json_integer_value(seed) < 0))
        return bad(err, name, "seed", "expected a non-negative integer");
    r->seed = seed ? (uint64_t)json_integer_value(seed) : 0;

    json_t *f = json_object_get(root, "formats");
    if (f) {
        if (!json_is_object(f))
            return bad(err, name, "formats", "expected an object {format: share}");
        if ((rc = only_keys(f, format_names, name, "formats", err)) < 0)
            return rc;
        double sum = 0;
        for (int k = 0; k < FLM_N_FORMATS; k++) {
            char path[64];
            snprintf(path, sizeof path, "formats.%s", format_names[k]);
            r->p_format[k] = 0;
            if ((rc = get_num(f, format_names[k], path, 0, 1, &r->p_format[k], name, err)) < 0)
                return rc;
            sum += r->p_format[k];
        }
        if (fabs(sum - 1) > 1e-9)
            return bad(err, name, "formats", "the format shares must sum to 1");
        r->p_tts = r->p_format[FLM_FORMAT_TTS];
    }
    json_t *pk = json_object_get(root, "packing");
    if (pk) {
        static const char *keys[] = {
            "lead", "lag", "silence_min_s", "silence_max_s", "sample_frames", "word_lag", NULL};
        if (!json_is_object(pk))
            return bad(err, name, "packing", "expected an object");
        if ((rc = only_keys(pk, keys, name, "packing", err)) < 0 ||
            (rc = get_int(pk, "lead", "packing.lead", 0, 2, &r->lead, name, err)) < 0 ||
            (rc = get_int(pk, "lag", "packing.lag", 0, 64, &r->lag, name, err)) < 0 ||
            (rc = get_int(pk, "word_lag", "packing.word_lag", 0, 64, &r->word_lag, name, err)) <
                0 ||
            (rc = get_num(pk, "silence_min_s", "packing.silence_min_s", 0, 60, &r->silence_min_s,
                          name, err)) < 0 ||
            (rc = get_num(pk, "silence_max_s", "packing.silence_max_s", 0, 60, &r->silence_max_s,
                          name, err)) < 0 ||
            (rc = get_int(pk, "sample_frames", "packing.sample_frames", 1, FLM_MAX_FRAMES,
                          &r->sample_frames, name, err)) < 0)
            return rc;
        if (r->silence_max_s < r->silence_min_s)
            return bad(err, name, "packing.silence_max_s", "is below packing.silence_min_s");
    }
    json_t *dg = json_object_get(root, "dialog");
    if (dg && (rc = parse_dialog(dg, name, r, err)) < 0)
        return rc;
    json_t *ag = json_object_get(root, "augmentation");
    if (ag && (rc = parse_augmentation(ag, name, r, err)) < 0)
        return rc;
    json_t *lw = json_object_get(root, "loss_weights");
    if (lw) {
        static const char *keys[] = {"semantic", "acoustic", "monologue", "wait", NULL};
        if (!json_is_object(lw))
            return bad(err, name, "loss_weights", "expected an object");
        if ((rc = only_keys(lw, keys, name, "loss_weights", err)) < 0)
            return rc;
        for (int c = 1; c < FLM_N_LOSS_CLASSES; c++) {
            char path[64];
            snprintf(path, sizeof path, "loss_weights.%s", flm_loss_class_name(c));
            if ((rc = get_num(lw, flm_loss_class_name(c), path, 0, 1e4, &r->loss_weight[c], name,
                              err)) < 0)
                return rc;
        }
    }
    json_t *cw = json_object_get(root, "corpus_weights");
    if (cw) {
        if (!json_is_object(cw))
            return bad(err, name, "corpus_weights", "expected an object {corpus: weight}");
        const char *key;
        json_t *v;
        json_object_foreach(cw, key, v)
        {
            char path[128];
            snprintf(path, sizeof path, "corpus_weights.%.100s", key);
            if (!json_is_number(v) || !(json_number_value(v) >= 0 && json_number_value(v) <= 1000))
                return bad(err, name, path, "expected a number in [0, 1000]");
            if (strcmp(key, "*") == 0) {
                r->default_corpus_weight = json_number_value(v);
                continue;
            }
            if (r->n_corpora == FLM_RECIPE_MAX_CORPORA)
                return bad(err, name, "corpus_weights", "too many corpora (max 256)");
            if (!(r->corpus[r->n_corpora] = flm_strdup(key)))
                return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", name);
            r->corpus_weight[r->n_corpora++] = json_number_value(v);
        }
    }
    return 0;
}

int flm_recipe_parse(const char *json, size_t size, const char *name, flm_recipe *r, flm_error *err)
{
    defaults(r);
    json_error_t jerr;
    json_t *root = json_loadb(json, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return flm_error_set(err, FLM_EFORMAT, "%s:%d:%d: invalid JSON: %s", name, jerr.line,
                             jerr.column, jerr.text);
    int rc = json_is_object(root) ? parse(root, name, r, err)
                                  : flm_error_set(err, FLM_EFORMAT, "%s: expected an object", name);
    json_decref(root);
    if (rc == 0 && !(r->json = flm_malloc(size + 1)))
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", name);
    if (rc == 0) {
        memcpy(r->json, json, size);
        r->json[size] = 0;
    }
    if (rc < 0)
        flm_recipe_free(r);
    return rc;
}

int flm_recipe_load(const char *path, flm_recipe *r, flm_error *err)
{
    char *buf;
    size_t n;
    int rc = flm_read_file(path, &buf, &n, 1 << 20, err);
    if (rc < 0) {
        memset(r, 0, sizeof *r);
        return rc;
    }
    rc = flm_recipe_parse(buf, n, path, r, err);
    flm_free(buf);
    return rc;
}

double flm_recipe_corpus_weight(const flm_recipe *r, const char *corpus)
{
    for (size_t i = 0; i < r->n_corpora; i++)
        if (strcmp(r->corpus[i], corpus) == 0)
            return r->corpus_weight[i];
    return r->default_corpus_weight;
}
