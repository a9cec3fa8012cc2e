#include "flm_profile.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "flm_alloc.h"
#include "flm_util.h"

/* F_WEIGHTS: an object of the loss classes' weights; it changes no stored byte, so it is not
 * part of the hash (shards and indexes keep the hash they had before the field existed). */
enum { F_INT, F_STR, F_DELAYS, F_WEIGHTS };

typedef struct field {
    const char *key;
    int type;
    size_t offset;
    int64_t min, max;
} field;

#define V(k, t, lo, hi)                                                                            \
    {                                                                                              \
#k, t, offsetof(flm_vocab_profile, k), lo, hi                                              \
    }
static const field vocab_fields[] = {
    V(name, F_STR, 0, 0),
    V(version, F_INT, 1, 1000000),
    V(text_vocab_size, F_INT, 1, 16777216),
    V(text_wait, F_INT, 0, 16777215),
    V(text_asr, F_INT, 0, 16777215),
    V(text_answer, F_INT, 0, 16777215),
    V(text_pad, F_INT, 0, 16777215),
    V(text_epad, F_INT, 0, 16777215),
};
#undef V
#define C(k, t, lo, hi)                                                                            \
    {                                                                                              \
#k, t, offsetof(flm_codec_profile, k), lo, hi                                              \
    }
static const field codec_fields[] = {
    C(name, F_STR, 0, 0),
    C(version, F_INT, 1, 1000000),
    C(sample_rate, F_INT, 8000, 192000),
    C(samples_per_frame, F_INT, 1, 192000),
    C(n_codebooks, F_INT, 1, FLM_N_CODEBOOKS),
    C(card, F_INT, 2, 65536),
    C(aud_pad, F_INT, 0, 65535),
    C(aud_empty, F_INT, 0, 65535),
};
#undef C
#define M(k, t, lo, hi)                                                                            \
    {                                                                                              \
#k, t, offsetof(flm_model_profile, k), lo, hi                                              \
    }
static const field model_fields[] = {
    M(name, F_STR, 0, 0),
    M(version, F_INT, 1, 1000000),
    M(delays, F_DELAYS, 0, FLM_MAX_DELAY),
    M(sample_frames, F_INT, 1, FLM_MAX_FRAMES),
    M(loss_weights, F_WEIGHTS, 0, 10000),
};
#undef M

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Canonical text "kind|key=value|..." in table order, hashed with XXH3-64. */
static uint64_t hash_fields(const char *kind, const void *base, const field *f, size_t n)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, kind, strlen(kind));
    char buf[256];
    for (size_t i = 0; i < n; i++) {
        const char *p = (const char *)base + f[i].offset;
        int len = 0;
        if (f[i].type == F_WEIGHTS)
            continue;
        if (f[i].type == F_INT)
            len = snprintf(buf, sizeof buf, "|%s=%d", f[i].key, *(const int32_t *)p);
        else if (f[i].type == F_STR)
            len = snprintf(buf, sizeof buf, "|%s=%s", f[i].key, p);
        else {
            const int32_t *d = (const int32_t *)p;
            len = snprintf(buf, sizeof buf, "|%s=", f[i].key);
            for (int k = 0; k < FLM_N_CHANNELS; k++)
                len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%d", k ? "," : "", d[k]);
        }
        XXH3_64bits_update(&st, buf, (size_t)len);
    }
    return XXH3_64bits_digest(&st);
}

void flm_profiles_rehash(flm_profiles *p)
{
    p->vocab.hash = hash_fields("vocab", &p->vocab, vocab_fields, N_OF(vocab_fields));
    p->codec.hash = hash_fields("codec", &p->codec, codec_fields, N_OF(codec_fields));
    p->model.hash = hash_fields("model", &p->model, model_fields, N_OF(model_fields));
}

void flm_profiles_default(flm_profiles *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->vocab.name, sizeof p->vocab.name, "flm-audio-qwen2.5");
    p->vocab.version = 1;
    p->vocab.text_vocab_size = 152064;
    p->vocab.text_wait = 151665;
    p->vocab.text_asr = 151666;
    p->vocab.text_answer = 151667;
    p->vocab.text_pad = 3;
    p->vocab.text_epad = 0;
    snprintf(p->codec.name, sizeof p->codec.name, "mimi-8");
    p->codec.version = 1;
    p->codec.sample_rate = 24000;
    p->codec.samples_per_frame = 1920;
    p->codec.n_codebooks = 8;
    p->codec.card = 2048;
    p->codec.aud_pad = 2048;
    p->codec.aud_empty = 2049;
    snprintf(p->model.name, sizeof p->model.name, "flm-audio");
    p->model.version = 1;
    static const int32_t d[FLM_N_CHANNELS] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1};
    memcpy(p->model.delays, d, sizeof d);
    p->model.sample_frames = 8192;
    /* DESIGN section 3: speak semantic a1, speak acoustic a2, monologue b, wait g */
    p->model.loss_weights[FLM_LOSS_SEMANTIC] = 1.0;
    p->model.loss_weights[FLM_LOSS_ACOUSTIC] = 0.5;
    p->model.loss_weights[FLM_LOSS_MONOLOGUE] = 1.0;
    p->model.loss_weights[FLM_LOSS_WAIT] = 0.01;
    flm_profiles_rehash(p);
}

void flm_profiles_delay_fill(const flm_profiles *p, int32_t fill[FLM_N_CHANNELS])
{
    fill[0] = p->vocab.text_wait;
    for (int k = 1; k < FLM_N_CHANNELS; k++)
        fill[k] = p->codec.aud_pad;
}

/* {"semantic": w, "acoustic": w, "monologue": w, "wait": w}: every class, each in [min, max]. */
static int parse_weights(json_t *v, const char *name, const field *f, double *w, flm_error *err)
{
    if (!json_is_object(v) || json_object_size(v) != FLM_N_LOSS_CLASSES - 1)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: key \"%s\": expected an object with the %d loss classes "
                             "(semantic, acoustic, monologue, wait)",
                             name, f->key, FLM_N_LOSS_CLASSES - 1);
    w[FLM_LOSS_NONE] = 0.0;
    for (int c = 1; c < FLM_N_LOSS_CLASSES; c++) {
        json_t *e = json_object_get(v, flm_loss_class_name(c));
        double x = json_number_value(e);
        if (!json_is_number(e) || !(x >= (double)f->min && x <= (double)f->max))
            return flm_error_set(
                err, FLM_EFORMAT, "%s: key \"%s\".%s: expected a number in [%lld, %lld]", name,
                f->key, flm_loss_class_name(c), (long long)f->min, (long long)f->max);
        w[c] = x;
    }
    return 0;
}

static int parse_fields(json_t *obj, const char *name, const char *kind, void *base, const field *f,
                        size_t n, flm_error *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        if (strcmp(key, "kind") == 0)
            continue;
        size_t i = 0;
        while (i < n && strcmp(f[i].key, key) != 0)
            i++;
        if (i == n)
            return flm_error_set(err, FLM_EFORMAT, "%s: unknown key \"%.64s\" in a %s profile",
                                 name, key, kind);
    }
    for (size_t i = 0; i < n; i++) {
        char *p = (char *)base + f[i].offset;
        json_t *v = json_object_get(obj, f[i].key);
        if (!v)
            return flm_error_set(err, FLM_EFORMAT, "%s: missing key \"%s\" in a %s profile", name,
                                 f[i].key, kind);
        if (f[i].type == F_STR) {
            const char *s = json_string_value(v);
            if (!s || !*s || strlen(s) >= FLM_PROFILE_NAME_SIZE)
                return flm_error_set(err, FLM_EFORMAT,
                                     "%s: key \"%s\": expected a string of 1..%d bytes", name,
                                     f[i].key, FLM_PROFILE_NAME_SIZE - 1);
            snprintf(p, FLM_PROFILE_NAME_SIZE, "%s", s);
        } else if (f[i].type == F_INT) {
            if (!json_is_integer(v) || json_integer_value(v) < f[i].min ||
                json_integer_value(v) > f[i].max)
                return flm_error_set(err, FLM_EFORMAT,
                                     "%s: key \"%s\": expected an integer in [%lld, %lld]", name,
                                     f[i].key, (long long)f[i].min, (long long)f[i].max);
            *(int32_t *)p = (int32_t)json_integer_value(v);
        } else if (f[i].type == F_WEIGHTS) {
            if (parse_weights(v, name, &f[i], (double *)p, err) < 0)
                return err ? err->code : FLM_EFORMAT;
        } else {
            if (!json_is_array(v) || json_array_size(v) != FLM_N_CHANNELS)
                return flm_error_set(err, FLM_EFORMAT,
                                     "%s: key \"%s\": expected an array of %d integers", name,
                                     f[i].key, FLM_N_CHANNELS);
            for (int k = 0; k < FLM_N_CHANNELS; k++) {
                json_t *e = json_array_get(v, (size_t)k);
                if (!json_is_integer(e) || json_integer_value(e) < f[i].min ||
                    json_integer_value(e) > f[i].max)
                    return flm_error_set(
                        err, FLM_EFORMAT, "%s: key \"%s\"[%d]: expected an integer in [%lld, %lld]",
                        name, f[i].key, k, (long long)f[i].min, (long long)f[i].max);
                ((int32_t *)p)[k] = (int32_t)json_integer_value(e);
            }
        }
    }
    return 0;
}

static int check_vocab(const flm_vocab_profile *v, const char *name, flm_error *err)
{
    const int32_t ids[] = {v->text_wait, v->text_asr, v->text_answer};
    const char *names[] = {"text_wait", "text_asr", "text_answer"};
    for (int i = 0; i < 3; i++) {
        if (ids[i] >= v->text_vocab_size)
            return flm_error_set(err, FLM_EFORMAT, "%s: %s = %d is not below text_vocab_size %d",
                                 name, names[i], ids[i], v->text_vocab_size);
        for (int j = 0; j < i; j++)
            if (ids[i] == ids[j])
                return flm_error_set(err, FLM_EFORMAT, "%s: %s and %s are both %d", name, names[j],
                                     names[i], ids[i]);
    }
    return 0;
}

static int check_codec(const flm_codec_profile *c, const char *name, flm_error *err)
{
    if (c->aud_pad < c->card || c->aud_empty < c->card)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: aud_pad (%d) and aud_empty (%d) must not be codes below card %d",
                             name, c->aud_pad, c->aud_empty, c->card);
    if (c->aud_pad == c->aud_empty)
        return flm_error_set(err, FLM_EFORMAT, "%s: aud_pad and aud_empty are both %d", name,
                             c->aud_pad);
    if (c->sample_rate % c->samples_per_frame != 0 && (c->sample_rate * 2) % c->samples_per_frame)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: frame rate %d/%d Hz is not a multiple of 0.5 Hz", name,
                             c->sample_rate, c->samples_per_frame);
    return 0;
}

int flm_profile_parse(const char *json, size_t json_size, const char *name, flm_profiles *p,
                      flm_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, json_size, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return flm_error_set(err, FLM_EFORMAT, "%s:%d:%d: invalid JSON: %s", name, jerr.line,
                             jerr.column, jerr.text);
    int rc;
    const char *kind = json_string_value(json_object_get(root, "kind"));
    if (!json_is_object(root) || !kind) {
        rc = flm_error_set(
            err, FLM_EFORMAT,
            "%s: expected an object with \"kind\": \"vocab\", \"codec\" or \"model\"", name);
    } else if (strcmp(kind, "vocab") == 0) {
        flm_vocab_profile v;
        memset(&v, 0, sizeof v);
        rc = parse_fields(root, name, kind, &v, vocab_fields, N_OF(vocab_fields), err);
        if (rc == 0 && (rc = check_vocab(&v, name, err)) == 0)
            p->vocab = v;
    } else if (strcmp(kind, "codec") == 0) {
        flm_codec_profile c;
        memset(&c, 0, sizeof c);
        rc = parse_fields(root, name, kind, &c, codec_fields, N_OF(codec_fields), err);
        if (rc == 0 && (rc = check_codec(&c, name, err)) == 0)
            p->codec = c;
    } else if (strcmp(kind, "model") == 0) {
        flm_model_profile m;
        memset(&m, 0, sizeof m);
        rc = parse_fields(root, name, kind, &m, model_fields, N_OF(model_fields), err);
        if (rc == 0)
            p->model = m;
    } else {
        rc = flm_error_set(err, FLM_EFORMAT, "%s: unknown profile kind \"%.32s\"", name, kind);
    }
    json_decref(root);
    if (rc == 0)
        flm_profiles_rehash(p);
    return rc;
}

int flm_profile_load_file(const char *path, flm_profiles *p, flm_error *err)
{
    char *buf = NULL;
    size_t n = 0;
    int rc = flm_read_file(path, &buf, &n, 1 << 20, err);
    if (rc < 0)
        return rc;
    rc = flm_profile_parse(buf, n, path, p, err);
    flm_free(buf);
    return rc;
}
