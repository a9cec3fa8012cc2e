/* SFT dialog manifests: JSONL, one dialog per line. See flm_dialog.h and
 * schemas/dialog/dialog.schema.json. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_dialog.h"
#include "flm_json.h"
#include "flm_util.h"

static int bad(flm_error *err, const char *file, int32_t line, const char *key, const char *what)
{
    return flm_error_set(err, FLM_EFORMAT, "%s:%d: key \"%s\": %s", file, line, key, what);
}

static int only_keys(json_t *obj, const char *const *allowed, const char *file, int32_t line,
                     const char *where, flm_error *err)
{
    const char *key = flm_json_unknown_key(obj, allowed);
    if (key)
        return flm_error_set(err, FLM_EFORMAT, "%s:%d: unknown key \"%s%.64s\"", file, line, where,
                             key);
    return 0;
}

/* A non-empty string without NUL bytes (jansson accepts \u0000). */
static const char *get_string(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

void flm_dialog_clear(flm_dialog *d)
{
    flm_free(d->id);
    flm_free(d->corpus);
    flm_free(d->language);
    for (int32_t k = 0; k < d->n_turns; k++) {
        flm_free(d->turns[k].text);
        flm_free(d->turns[k].audio);
    }
    memset(d, 0, sizeof *d);
}

static int parse_turn(flm_dialog *d, json_t *t, int32_t k, const char *file, int32_t line,
                      const char *dir, flm_error *err)
{
    static const char *keys[] = {"role", "text", "audio", "start", NULL};
    char where[32], key[48];
    snprintf(where, sizeof where, "turns[%d].", k);
    if (!json_is_object(t)) {
        snprintf(key, sizeof key, "turns[%d]", k);
        return bad(err, file, line, key, "expected an object {role, text, audio[, start]}");
    }
    int rc = only_keys(t, keys, file, line, where, err);
    if (rc < 0)
        return rc;
    flm_dialog_turn *turn = &d->turns[k];
    const char *role = json_string_value(json_object_get(t, "role"));
    snprintf(key, sizeof key, "turns[%d].role", k);
    if (!role || (strcmp(role, "user") && strcmp(role, "assistant")))
        return bad(err, file, line, key, "expected \"user\" or \"assistant\"");
    turn->role = strcmp(role, "user") ? FLM_DIALOG_MODEL : FLM_DIALOG_USER;
    if (k > 0 && turn->role == d->turns[k - 1].role)
        return bad(err, file, line, key, "turns must alternate between user and assistant");
    const char *text = get_string(t, "text");
    snprintf(key, sizeof key, "turns[%d].text", k);
    if (!text)
        return bad(err, file, line, key, "expected a non-empty string");
    const char *audio = get_string(t, "audio");
    snprintf(key, sizeof key, "turns[%d].audio", k);
    if (!audio)
        return bad(err, file, line, key, "expected a non-empty path (relative to the manifest)");
    turn->start = -1;
    json_t *st = json_object_get(t, "start");
    snprintf(key, sizeof key, "turns[%d].start", k);
    if (st) {
        if (!json_is_number(st) || !(json_number_value(st) >= 0 && json_number_value(st) < 1e6))
            return bad(err, file, line, key, "expected seconds >= 0");
        turn->start = json_number_value(st);
        for (int32_t j = k - 1; j >= 0; j--)
            if (d->turns[j].start >= 0) {
                if (turn->start < d->turns[j].start)
                    return bad(err, file, line, key, "is before an earlier turn's start");
                break;
            }
    }
    if (!(turn->text = flm_strdup(text)) || !(turn->audio = flm_path_join(dir, audio)))
        return flm_error_set(err, FLM_ENOMEM, "%s:%d: out of memory", file, line);
    return 0;
}

static int parse_root(flm_dialog *d, json_t *root, const char *file, int32_t line, const char *dir,
                      flm_error *err)
{
    static const char *keys[] = {"id", "corpus", "language", "turns", NULL};
    if (!json_is_object(root))
        return flm_error_set(err, FLM_EFORMAT, "%s:%d: expected a JSON object (one dialog)", file,
                             line);
    int rc = only_keys(root, keys, file, line, "", err);
    if (rc < 0)
        return rc;
    static const char *opt[] = {"id", "corpus", "language"};
    char **dst[] = {&d->id, &d->corpus, &d->language};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(root, opt[i]);
        if (!v)
            continue;
        const char *s = get_string(root, opt[i]);
        if (!s || strlen(s) > 255)
            return bad(err, file, line, opt[i], "expected a string of 1..255 bytes");
        if (!(*dst[i] = flm_strdup(s)))
            return flm_error_set(err, FLM_ENOMEM, "%s:%d: out of memory", file, line);
    }
    json_t *turns = json_object_get(root, "turns");
    if (!json_is_array(turns) || json_array_size(turns) < 1 ||
        json_array_size(turns) > FLM_DIALOG_MAX_TURNS)
        return bad(err, file, line, "turns", "expected an array of 1..10 turns");
    for (size_t k = 0; k < json_array_size(turns); k++) {
        d->n_turns = (int32_t)k + 1; /* so that clear frees what this turn allocates */
        if ((rc = parse_turn(d, json_array_get(turns, k), (int32_t)k, file, line, dir, err)) < 0)
            return rc;
    }
    if (!d->id) {
        char id[300];
        const char *base = strrchr(file, '/');
        snprintf(id, sizeof id, "%.250s:%d", base ? base + 1 : file, line);
        if (!(d->id = flm_strdup(id)))
            return flm_error_set(err, FLM_ENOMEM, "%s:%d: out of memory", file, line);
    }
    return 0;
}

int flm_dialog_parse(flm_dialog *d, const char *json, size_t size, const char *file,
                     int32_t line_no, const char *dir, flm_error *err)
{
    memset(d, 0, sizeof *d);
    d->line = line_no;
    json_error_t jerr;
    json_t *root = json_loadb(json, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return flm_error_set(err, FLM_EFORMAT, "%s:%d:%d: invalid JSON: %s", file, line_no,
                             jerr.column, jerr.text);
    int rc = parse_root(d, root, file, line_no, dir, err);
    json_decref(root);
    if (rc < 0) {
        flm_dialog_clear(d);
        d->line = line_no;
    }
    return rc;
}

void flm_dialog_manifest_free(flm_dialog_manifest *m)
{
    for (size_t i = 0; i < m->n_dialogs; i++)
        flm_dialog_clear(&m->dialogs[i]);
    for (size_t i = 0; i < m->n_rejects; i++)
        flm_free(m->rejects[i].error);
    flm_free(m->dialogs);
    flm_free(m->rejects);
    memset(m, 0, sizeof *m);
}

static int add_reject(flm_dialog_manifest *m, int32_t line, const char *msg)
{
    if (flm_grow((void **)&m->rejects, &m->rejects_cap, m->n_rejects + 1, sizeof *m->rejects) < 0)
        return -1;
    char *e = flm_strdup(msg);
    if (!e)
        return -1;
    m->rejects[m->n_rejects++] = (flm_dialog_reject){line, e};
    return 0;
}

int flm_dialog_manifest_parse(flm_dialog_manifest *m, const char *data, size_t size,
                              const char *path, flm_error *err)
{
    memset(m, 0, sizeof *m);
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (slash == path)
        snprintf(dir, sizeof dir, "/");
    int32_t line = 0;
    for (size_t at = 0; at < size;) {
        const char *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
        const char *s = data + at;
        at += len + 1;
        line++;
        size_t blank = 0;
        while (blank < len && s[blank] && strchr(" \t\r", s[blank]))
            blank++;
        if (blank == len)
            continue;
        flm_error e = {0};
        flm_dialog d;
        int rc = flm_dialog_parse(&d, s, len, path, line, dir, &e);
        if (rc == FLM_ENOMEM)
            goto oom;
        if (rc < 0) {
            if (add_reject(m, line, e.msg) < 0)
                goto oom;
            continue;
        }
        if (flm_grow((void **)&m->dialogs, &m->dialogs_cap, m->n_dialogs + 1, sizeof *m->dialogs) <
            0) {
            flm_dialog_clear(&d);
            goto oom;
        }
        m->dialogs[m->n_dialogs++] = d;
    }
    return 0;
oom:
    flm_dialog_manifest_free(m);
    return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
}

int flm_dialog_manifest_load(const char *path, flm_dialog_manifest *m, flm_error *err)
{
    char *buf;
    size_t n;
    memset(m, 0, sizeof *m);
    int rc = flm_read_file(path, &buf, &n, (size_t)1 << 30, err);
    if (rc < 0)
        return rc;
    rc = flm_dialog_manifest_parse(m, buf, n, path, err);
    flm_free(buf);
    return rc;
}
