/* Parser of flm pack's input lines. See flm_pack_input.h. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_json.h"
#include "flm_pack_input.h"
#include "flm_util.h"

/* Optional string-or-null key: *out stays NULL when absent or null. */
static int opt_str(json_t *o, const char *key, char **out, const char *where, flm_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"%s\": expected a string or null", where,
                             key);
    if (!(*out = flm_strdup(json_string_value(v))))
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", where);
    return 0;
}

static int path_str(json_t *o, const char *key, const char *base_dir, char **out, const char *where,
                    flm_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_string(v) || !json_string_length(v))
        return flm_error_set(err, FLM_EFORMAT, "%s: key \"%s\": expected a non-empty path", where,
                             key);
    const char *p = json_string_value(v);
    *out = flm_path_join(base_dir && *base_dir ? base_dir : ".", p);
    return *out ? 0 : flm_error_set(err, FLM_ENOMEM, "%s: out of memory", where);
}

static int get_frame(json_t *s, const char *key, size_t i, int64_t *v, const char *where,
                     flm_error *err)
{
    json_t *x = json_object_get(s, key);
    if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: key \"sentences[%zu].%s\": expected an integer frame 0..%d",
                             where, i, key, INT32_MAX);
    *v = json_integer_value(x);
    return 0;
}

/* The "words" of sentence i: timed, in order, spelling the sentence's text. */
static int get_words(json_t *ws, flm_pack_sentence *q, size_t i, const char *where, flm_error *err)
{
    size_t n = json_array_size(ws), len = 0;
    if (!json_is_array(ws) || n == 0)
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: key \"sentences[%zu].words\": expected a non-empty array of "
                             "{\"text\", \"start\", \"end\"}",
                             where, i);
    if (!(q->words = flm_calloc(n, sizeof *q->words)))
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", where);
    for (size_t k = 0; k < n; k++) {
        json_t *w = json_array_get(ws, k), *t = json_object_get(w, "text");
        json_t *a = json_object_get(w, "start"), *b = json_object_get(w, "end");
        if (!json_is_object(w) || json_object_size(w) != 3 || !json_is_string(t) ||
            !json_string_length(t) || !json_is_number(a) || !json_is_number(b))
            return flm_error_set(err, FLM_EFORMAT,
                                 "%s: key \"sentences[%zu].words[%zu]\": expected {\"text\": a "
                                 "non-empty string, \"start\": s, \"end\": s}",
                                 where, i, k);
        flm_pack_input_word *o = &q->words[k];
        o->start = json_number_value(a);
        o->end = json_number_value(b);
        if (!(o->start >= 0) || !(o->end >= o->start) || o->end > 1e7 ||
            (k > 0 && o->start < q->words[k - 1].start))
            return flm_error_set(err, FLM_EFORMAT,
                                 "%s: key \"sentences[%zu].words[%zu]\": start %g, end %g (times "
                                 "must be >= 0, end >= start, words in time order)",
                                 where, i, k, o->start, o->end);
        if (!(o->text = flm_strdup(json_string_value(t))))
            return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", where);
        q->n_words = k + 1;
        len += strlen(o->text);
    }
    /* the words concatenated, trimmed, must be the text: the word-level layouts carry the
     * words' tokens, and they must say what the sentence says */
    char *all = flm_malloc(len + 1), *p = all;
    if (!all)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", where);
    for (size_t k = 0; k < n; k++)
        p += sprintf(p, "%s", q->words[k].text);
    const char *b = all, *e = all + len;
    while (b < e && (*b == ' ' || *b == '\t' || *b == '\n'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
        e--;
    int same = (size_t)(e - b) == strlen(q->text) && !memcmp(b, q->text, (size_t)(e - b));
    int rc = same ? 0
                  : flm_error_set(err, FLM_EFORMAT,
                                  "%s: key \"sentences[%zu].words\": the words spell \"%.*s\", the "
                                  "text is \"%s\"",
                                  where, i, (int)(e - b > 200 ? 200 : e - b), b, q->text);
    flm_free(all);
    return rc;
}

int flm_pack_utt_parse(const char *line, size_t len, const char *file, int64_t line_no,
                       const char *base_dir, flm_pack_utt *u, flm_error *err)
{
    static const char *const keys[] = {"id",      "audio",  "codes",    "channel",   "language",
                                       "speaker", "corpus", "duration", "sentences", NULL};
    static const char *const skeys[] = {"text",      "start",      "end",   "start_frame",
                                        "end_frame", "confidence", "words", NULL};
    char where[512];
    snprintf(where, sizeof where, "%s:%lld", file, (long long)line_no);
    memset(u, 0, sizeof *u);
    u->channel = -1;
    u->duration = -1;
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return flm_error_set(err, FLM_EFORMAT, "%s: column %d: %s", where, je.column, je.text);
    int rc = 0;
    const char *k;
    json_t *v;
    if (!json_is_object(o)) {
        rc = flm_error_set(err, FLM_EFORMAT, "%s: expected a JSON object", where);
        goto done;
    }
    if ((k = flm_json_unknown_key(o, keys))) {
        rc = flm_error_set(err, FLM_EFORMAT, "%s: unknown key \"%s\"", where, k);
        goto done;
    }
    v = json_object_get(o, "id");
    if (!json_is_string(v) || !json_string_length(v)) {
        rc = flm_error_set(err, FLM_EFORMAT, "%s: key \"id\": expected a non-empty string", where);
        goto done;
    }
    for (const unsigned char *c = (const unsigned char *)json_string_value(v); *c; c++)
        if (*c < 0x20 || *c == 0x7f) {
            rc = flm_error_set(err, FLM_EFORMAT, "%s: key \"id\": control character 0x%02x", where,
                               *c);
            goto done;
        }
    if (!(u->id = flm_strdup(json_string_value(v)))) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", where);
        goto done;
    }
    if ((rc = path_str(o, "audio", base_dir, &u->audio, where, err)) < 0 ||
        (rc = path_str(o, "codes", base_dir, &u->codes, where, err)) < 0 ||
        (rc = opt_str(o, "language", &u->language, where, err)) < 0 ||
        (rc = opt_str(o, "speaker", &u->speaker, where, err)) < 0 ||
        (rc = opt_str(o, "corpus", &u->corpus, where, err)) < 0)
        goto done;
    if (!u->audio && !u->codes) {
        rc =
            flm_error_set(err, FLM_EFORMAT, "%s: key \"audio\": missing (and no \"codes\")", where);
        goto done;
    }
    if ((v = json_object_get(o, "channel")) &&
        (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > 63)) {
        rc = flm_error_set(err, FLM_EFORMAT, "%s: key \"channel\": expected an integer -1..63",
                           where);
        goto done;
    }
    if (v)
        u->channel = (int32_t)json_integer_value(v);
    if ((v = json_object_get(o, "duration")) && !json_is_null(v)) {
        if (!json_is_number(v)) {
            rc = flm_error_set(err, FLM_EFORMAT, "%s: key \"duration\": expected a number", where);
            goto done;
        }
        u->duration = json_number_value(v);
    }
    json_t *ss = json_object_get(o, "sentences");
    if (!json_is_array(ss) || json_array_size(ss) == 0) {
        rc = flm_error_set(err, FLM_EFORMAT, "%s: key \"sentences\": expected a non-empty array",
                           where);
        goto done;
    }
    size_t n = json_array_size(ss);
    if (!(u->sents = flm_calloc(n, sizeof *u->sents))) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", where);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(ss, i);
        flm_pack_sentence *q = &u->sents[i];
        if (!json_is_object(s)) {
            rc = flm_error_set(err, FLM_EFORMAT, "%s: key \"sentences[%zu]\": expected an object",
                               where, i);
            goto done;
        }
        if ((k = flm_json_unknown_key(s, skeys))) {
            rc = flm_error_set(err, FLM_EFORMAT, "%s: unknown key \"sentences[%zu].%s\"", where, i,
                               k);
            goto done;
        }
        v = json_object_get(s, "text");
        if (!json_is_string(v) || !json_string_length(v)) {
            rc = flm_error_set(err, FLM_EFORMAT,
                               "%s: key \"sentences[%zu].text\": expected a non-empty string",
                               where, i);
            goto done;
        }
        json_t *ts = json_object_get(s, "start"), *te = json_object_get(s, "end");
        q->start = q->end = -1;
        if (json_is_number(ts) && json_is_number(te) && json_number_value(ts) >= 0 &&
            json_number_value(te) >= json_number_value(ts))
            q->start = json_number_value(ts), q->end = json_number_value(te);
        if ((rc = get_frame(s, "start_frame", i, &q->start_frame, where, err)) < 0 ||
            (rc = get_frame(s, "end_frame", i, &q->end_frame, where, err)) < 0)
            goto done;
        if (q->end_frame <= q->start_frame) {
            rc = flm_error_set(err, FLM_EFORMAT,
                               "%s: key \"sentences[%zu].end_frame\": %lld is not after "
                               "start_frame %lld",
                               where, i, (long long)q->end_frame, (long long)q->start_frame);
            goto done;
        }
        if (i > 0 && q->start_frame < u->sents[i - 1].end_frame - 1) {
            rc = flm_error_set(err, FLM_EFORMAT,
                               "%s: key \"sentences[%zu].start_frame\": %lld overlaps the "
                               "previous sentence (frames %lld..%lld)",
                               where, i, (long long)q->start_frame,
                               (long long)u->sents[i - 1].start_frame,
                               (long long)u->sents[i - 1].end_frame);
            goto done;
        }
        if (!(q->text = flm_strdup(json_string_value(json_object_get(s, "text"))))) {
            rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", where);
            goto done;
        }
        u->n_sents = i + 1;
        if ((v = json_object_get(s, "words")) && (rc = get_words(v, q, i, where, err)) < 0)
            goto done;
    }
done:
    json_decref(o);
    if (rc < 0)
        flm_pack_utt_free(u);
    return rc;
}

void flm_pack_utt_free(flm_pack_utt *u)
{
    if (!u)
        return;
    for (size_t i = 0; u->sents && i < u->n_sents; i++) {
        flm_free(u->sents[i].text);
        for (size_t w = 0; w < u->sents[i].n_words; w++)
            flm_free(u->sents[i].words[w].text);
        flm_free(u->sents[i].words);
    }
    flm_free(u->sents);
    flm_free(u->id), flm_free(u->audio), flm_free(u->codes);
    flm_free(u->language), flm_free(u->speaker), flm_free(u->corpus);
    memset(u, 0, sizeof *u);
    u->channel = -1;
    u->duration = -1;
}
