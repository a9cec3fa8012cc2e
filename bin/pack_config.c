/* The configuration a pack job records with its run (docs/index.md, "Pinned configuration"), the
 * comparison of two configurations in words, and the check that a dataset keeps one codec and
 * one tokenizer. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "flm_alloc.h"
#include "flm_util.h"
#include "pack.h"

/* "xxh3:" + XXH3-64 of a regular file's bytes, streamed. */
static int hash_file(const char *path, char out[32], flm_error *err)
{
    int fd = flm_open_regular(path, 0, err);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    XXH3_state_t *st = XXH3_createState();
    char *buf = flm_malloc(1 << 20);
    int rc = 0;
    if (fd < 0)
        rc = fd;
    else if (!f)
        rc = flm_error_set(err, FLM_EIO, "%s: %s", path, strerror(errno));
    else if (!st || !buf)
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
    if (rc == 0) {
        size_t n;
        XXH3_64bits_reset(st);
        while ((n = fread(buf, 1, 1 << 20, f)) > 0)
            XXH3_64bits_update(st, buf, n);
        if (ferror(f))
            rc = flm_error_set(err, FLM_EIO, "%s: read error: %s", path, strerror(errno));
        snprintf(out, 32, "xxh3:%016llx", (unsigned long long)XXH3_64bits_digest(st));
    }
    if (f)
        fclose(f);
    else if (fd >= 0)
        close(fd);
    XXH3_freeState(st);
    flm_free(buf);
    return rc;
}

static json_t *file_name_json(const char *path)
{
    if (!path)
        return json_null();
    char *real = realpath(path, NULL);
    json_t *v = json_string(real ? real : path);
    free(real);
    return v;
}

int pack_config_build(job *J, const char *tok_path, const char *noise, flm_error *err)
{
    char tok[32], codec[64], sil[8 * 6 + 1] = "unused (dialogs)", noise_id[64] = "none";
    int rc = hash_file(tok_path, tok, err);
    if (rc == 0 && J->codec_path)
        rc = hash_file(J->codec_path, codec, err);
    else
        snprintf(codec, sizeof codec, "random Mimi (seed %llu)",
                 (unsigned long long)J->recipe.seed);
    if (rc < 0)
        return rc;
    if (!J->dialogs)
        for (int c = 0, n = 0; c < FLM_N_CODEBOOKS; c++)
            n += snprintf(sil + n, sizeof sil - (size_t)n, c ? ",%d" : "%d", (int)J->silence[c]);
    if (J->pool)
        snprintf(noise_id, sizeof noise_id, "xxh3:%016llx (%d clips)",
                 (unsigned long long)flm_augment_noise_pool_hash(J->pool),
                 (int)flm_augment_noise_pool_size(J->pool));
    json_error_t je;
    json_t *recipe = json_loads(J->recipe.json, JSON_REJECT_DUPLICATES, &je);
    json_t *cfg = json_object(), *files = json_object();
    if (!recipe || !cfg || !files) {
        json_decref(recipe), json_decref(cfg), json_decref(files);
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    }
    json_object_set_new(cfg, "recipe", recipe);
    json_object_set_new(cfg, "silence codes", json_string(sil));
    json_object_set_new(cfg, "tokenizer", json_string(tok));
    json_object_set_new(cfg, "codec", json_string(codec));
    json_object_set_new(cfg, "noise", json_string(noise_id));
    json_object_set_new(cfg, "packer format", json_integer(PACK_FORMAT_VERSION));
    if (J->conv) /* only conversations have one (other runs' fingerprints stay as they were) */
        json_object_set_new(cfg, "model side",
                            json_string((const char *[]){"left", "right", "both"}[J->model_side]));
    json_object_set_new(files, "tokenizer", file_name_json(tok_path));
    json_object_set_new(files, "codec", file_name_json(J->codec_path));
    json_object_set_new(files, "noise", file_name_json(noise));
    json_object_set_new(cfg, "files", files);
    J->config = json_dumps(cfg, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(cfg);
    if (!J->config)
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    return flm_index_config_fingerprint(J->config, J->fingerprint, err);
}

/* ---- differences in words ------------------------------------------------------------------ */

typedef struct diff_buf {
    char *out;
    size_t size, len;
    int n;
} diff_buf;

static void leaf_text(const json_t *v, char *buf, size_t size)
{
    if (!v) {
        snprintf(buf, size, "(absent)");
    } else if (json_is_string(v)) {
        snprintf(buf, size, "%s", json_string_value(v));
    } else {
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS |
                                    JSON_REAL_PRECISION(15));
        snprintf(buf, size, "%s", t ? t : "?");
        free(t);
    }
}

static void add_diff(diff_buf *d, const char *name, const json_t *was, const json_t *now,
                     const char *was_file, const char *now_file)
{
    char a[160], b[160];
    leaf_text(was, a, sizeof a);
    leaf_text(now, b, sizeof b);
    if (d->len < d->size)
        d->len +=
            (size_t)snprintf(d->out + d->len, d->size - d->len,
                             "%s%s: %s%s%s%s was packed, %s%s%s%s given", d->n ? "; " : "", name, a,
                             was_file ? " (" : "", was_file ? was_file : "", was_file ? ")" : "", b,
                             now_file ? " (" : "", now_file ? now_file : "", now_file ? ")" : "");
    d->n++;
}

/* Walks two recipe values in parallel, reporting the leaves that differ as "recipe PATH" (keys
 * joined with dots: "recipe packing.lead"). */
static void diff_walk(diff_buf *d, const char *path, const json_t *a, const json_t *b)
{
    if (a && b && json_equal((json_t *)a, (json_t *)b))
        return;
    if (json_is_object(a) && json_is_object(b)) {
        const char *key;
        json_t *v;
        char sub[256];
        json_object_foreach((json_t *)a, key, v)
        {
            snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
            diff_walk(d, sub, v, json_object_get(b, key));
        }
        json_object_foreach((json_t *)b, key, v)
        {
            snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
            if (!json_object_get(a, key))
                diff_walk(d, sub, NULL, v);
        }
        return;
    }
    char name[300];
    snprintf(name, sizeof name, "recipe %s", path[0] ? path : "(whole)");
    add_diff(d, name, a, b, NULL, NULL);
}

int pack_config_diff(const char *was, const char *now, char *out, size_t size)
{
    json_error_t je;
    json_t *a = json_loads(was, 0, &je), *b = json_loads(now, 0, &je);
    diff_buf d = {out, size, 0, 0};
    out[0] = 0;
    if (!json_is_object(a) || !json_is_object(b)) {
        snprintf(out, size, "the recorded configuration is not readable");
        json_decref(a), json_decref(b);
        return 1;
    }
    json_t *fa = json_object_get(a, "files"), *fb = json_object_get(b, "files");
    static const char *const order[] = {"codec",         "tokenizer", "silence codes", "noise",
                                        "packer format", "recipe",    "model side"};
    for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
        json_t *x = json_object_get(a, order[k]), *y = json_object_get(b, order[k]);
        if (!strcmp(order[k], "recipe") && json_is_object(x) && json_is_object(y)) {
            diff_walk(&d, "", x, y);
        } else if ((x || y) && !(x && y && json_equal(x, y))) {
            const json_t *xf = json_object_get(fa, order[k]), *yf = json_object_get(fb, order[k]);
            add_diff(&d, order[k], x, y, json_is_string(xf) ? json_string_value(xf) : NULL,
                     json_is_string(yf) ? json_string_value(yf) : NULL);
        }
    }
    json_decref(a), json_decref(b);
    return d.n;
}

/* ---- the dataset's runs ---------------------------------------------------------------------- */

typedef struct run_find {
    int64_t want; /* run id to find (0: the first run whose codec or tokenizer differs) */
    const char *mine;
    int64_t found;
    char *config, *command;
    const char *what;
} run_find;

static const char *member(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void on_run(void *user, int64_t id, const char *command, const char *config)
{
    run_find *f = user;
    if (f->found || !config || (f->want && id != f->want))
        return;
    if (!f->want) {
        json_error_t je;
        json_t *a = json_loads(config, 0, &je), *b = json_loads(f->mine, 0, &je);
        static const char *const keys[] = FLM_INDEX_IDENTITIES;
        for (size_t k = 0; k < 2 && !f->what; k++) {
            const char *x = member(a, keys[k]), *y = member(b, keys[k]);
            if (x && y && strcmp(x, y))
                f->what = keys[k];
        }
        json_decref(a), json_decref(b);
        if (!f->what)
            return;
    }
    f->found = id;
    f->config = flm_strdup(config);
    f->command = flm_strdup(command ? command : "");
}

char *pack_config_of_run(job *J, int64_t run_id)
{
    run_find f = {run_id, NULL, 0, NULL, NULL, NULL};
    flm_error err = {0};
    if (flm_index_list_runs(J->idx, on_run, &f, &err) < 0)
        cli_error("pack: %s", err.msg);
    flm_free(f.command);
    return f.config;
}

int pack_config_check_dataset(job *J)
{
    run_find f = {0, J->config, 0, NULL, NULL, NULL};
    flm_error err = {0};
    if (flm_index_list_runs(J->idx, on_run, &f, &err) < 0) {
        cli_error("pack: %s", err.msg);
        return -1;
    }
    if (!f.found)
        return 0;
    char diff[1024];
    pack_config_diff(f.config, J->config, diff, sizeof diff);
    cli_error("pack: %s was packed with another %s (run %lld, %s): %s. %s; pack into a new "
              "dataset.",
              J->dir, f.what, (long long)f.found, f.command, diff,
              !strcmp(f.what, "codec")
                  ? "Codes of different Mimi checkpoints are different vocabularies, so one "
                    "dataset holds the codes of one codec"
                  : "Token ids of different tokenizers mean different text, so one dataset holds "
                    "the tokens of one tokenizer");
    flm_free(f.config);
    flm_free(f.command);
    return -1;
}
