/* Importers: Whisper JSON, FunASR JSON, SRT, WebVTT, moshi-finetune alignments, our JSONL.
 * Each turns one transcript file into utterances of the model in flm_align.h. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align_internal.h"
#include "flm_alloc.h"
#include "flm_align.h"

/* ---- Building the model ----------------------------------------------------------------- */

/* Appends an utterance (strings copied; NULL -> ""); NULL on allocation failure. */
flm_utterance *align_add_utt(flm_transcript *t, const char *file, int32_t line, const char *id,
                             const char *audio)
{
    if (flm_grow((void **)&t->utts, &t->cap_utts, t->n_utts + 1, sizeof *t->utts))
        return NULL;
    flm_utterance *u = &t->utts[t->n_utts];
    memset(u, 0, sizeof *u);
    u->channel = -1;
    u->duration = -1;
    u->line = line;
    u->file = flm_strdup(file ? file : "");
    u->id = flm_strdup(id ? id : "");
    u->audio = flm_strdup(audio ? audio : "");
    u->language = flm_strdup("");
    u->speaker = flm_strdup("");
    u->corpus = flm_strdup("");
    t->n_utts++;
    if (!u->file || !u->id || !u->audio || !u->language || !u->speaker || !u->corpus)
        return NULL; /* freed with the transcript */
    return u;
}

int align_set_str(char **dst, const char *s)
{
    char *c = flm_strdup(s ? s : "");
    if (!c)
        return FLM_ENOMEM;
    flm_free(*dst);
    *dst = c;
    return 0;
}

/* Copies text[0..n) trimmed of surrounding white space. */
static char *dup_trim(const char *text, size_t n)
{
    while (n && (text[0] == ' ' || text[0] == '\t' || text[0] == '\n' || text[0] == '\r'))
        text++, n--;
    while (n && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n' ||
                 text[n - 1] == '\r'))
        n--;
    char *c = flm_malloc(n + 1);
    if (c) {
        memcpy(c, text, n);
        c[n] = 0;
    }
    return c;
}

flm_align_segment *align_add_seg(flm_utterance *u, const char *text, size_t text_size, double start,
                                 double end, double conf, int32_t line, int32_t index)
{
    if (flm_grow((void **)&u->segs, &u->cap_segs, u->n_segs + 1, sizeof *u->segs))
        return NULL;
    flm_align_segment *s = &u->segs[u->n_segs];
    memset(s, 0, sizeof *s);
    if (!(s->text = dup_trim(text, text_size)))
        return NULL;
    s->start = start;
    s->end = end;
    s->confidence = conf;
    s->line = line;
    s->index = index;
    u->n_segs++;
    return s;
}

int align_add_word(flm_align_segment *s, size_t *cap, const char *text, double start, double end,
                   double conf)
{
    if (flm_grow((void **)&s->words, cap, s->n_words + 1, sizeof *s->words))
        return FLM_ENOMEM;
    flm_align_word *w = &s->words[s->n_words];
    if (!(w->text = dup_trim(text, strlen(text))))
        return FLM_ENOMEM;
    w->start = start;
    w->end = end;
    w->confidence = conf;
    s->n_words++;
    return 0;
}

/* The file name without directory and extension: the default utterance id. */
void align_file_stem(const char *path, char *out, size_t out_size)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, out_size, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = 0;
}

static int nomem(flm_error *err, const char *path)
{
    return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
}

/* ---- JSON helpers ------------------------------------------------------------------------ */

int align_get_num(json_t *o, const char *key, double *v)
{
    json_t *x = json_object_get(o, key);
    if (!x || !json_is_number(x))
        return -1;
    *v = json_number_value(x);
    return isfinite(*v) ? 0 : -1;
}

const char *align_get_str(json_t *o, const char *key)
{
    json_t *x = json_object_get(o, key);
    return json_is_string(x) ? json_string_value(x) : NULL;
}

static int load_json(json_t **root, const char *path, const char *data, size_t size, flm_error *err)
{
    json_error_t je;
    *root = json_loadb(data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!*root)
        return flm_error_set(err, FLM_EFORMAT, "%s: line %d: %s", path, je.line, je.text);
    return 0;
}

/* ---- Whisper ----------------------------------------------------------------------------- */

static int import_whisper(flm_transcript *t, const char *path, const char *data, size_t size,
                          const char *audio, flm_error *err)
{
    json_t *root;
    int rc = load_json(&root, path, data, size, err);
    if (rc)
        return rc;
    json_t *segs = json_object_get(root, "segments");
    if (!json_is_array(segs)) {
        json_decref(root);
        return flm_error_set(err, FLM_EFORMAT, "%s: expected an object with a \"segments\" array",
                             path);
    }
    char stem[256];
    align_file_stem(path, stem, sizeof stem);
    flm_utterance *u = align_add_utt(t, path, 0, stem, audio);
    const char *lang = align_get_str(root, "language");
    if (!u || (lang && align_set_str(&u->language, lang)))
        goto nomem;
    size_t n = json_array_size(segs);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(segs, i);
        double start, end, lp;
        const char *text = align_get_str(s, "text");
        char where[64];
        snprintf(where, sizeof where, "segments[%zu]", i);
        if (!json_is_object(s) || !text || align_get_num(s, "start", &start) ||
            align_get_num(s, "end", &end)) {
            if (flm_transcript_reject(t, path, 0, where, stem, FLM_REJECT_PARSE,
                                      "expected an object with number start, end and string text"))
                goto nomem;
            continue;
        }
        double conf = align_get_num(s, "avg_logprob", &lp) ? -1 : exp(lp < 0 ? lp : 0);
        flm_align_segment *seg =
            align_add_seg(u, text, strlen(text), start, end, conf, 0, (int32_t)i);
        if (!seg)
            goto nomem;
        json_t *words = json_object_get(s, "words");
        size_t cap = 0, nw = json_array_size(words);
        for (size_t k = 0; k < nw; k++) {
            json_t *w = json_array_get(words, k);
            const char *wt = align_get_str(w, "word");
            double ws, we, p;
            if (!wt || align_get_num(w, "start", &ws) || align_get_num(w, "end", &we)) {
                /* word timing is optional: a bad entry drops the segment's words */
                for (size_t q = 0; q < seg->n_words; q++)
                    flm_free(seg->words[q].text);
                flm_free(seg->words);
                seg->words = NULL;
                seg->n_words = 0;
                break;
            }
            if (align_add_word(seg, &cap, wt, ws, we, align_get_num(w, "probability", &p) ? -1 : p))
                goto nomem;
        }
    }
    json_decref(root);
    return 0;
nomem:
    json_decref(root);
    return nomem(err, path);
}

/* ---- FunASR (times in milliseconds) --------------------------------------------------------- */

static int import_funasr(flm_transcript *t, const char *path, const char *data, size_t size,
                         const char *audio, flm_error *err)
{
    json_t *root;
    int rc = load_json(&root, path, data, size, err);
    if (rc)
        return rc;
    json_t *arr = root;
    if (json_is_object(root)) {
        arr = json_array();
        if (!arr || json_array_append(arr, root)) {
            json_decref(arr);
            json_decref(root);
            return nomem(err, path);
        }
        json_decref(root);
        root = arr;
    }
    if (!json_is_array(arr)) {
        json_decref(root);
        return flm_error_set(err, FLM_EFORMAT, "%s: expected a result object or an array of them",
                             path);
    }
    char stem[256];
    align_file_stem(path, stem, sizeof stem);
    size_t n = json_array_size(arr);
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(arr, i);
        const char *key = align_get_str(r, "key");
        json_t *si = json_object_get(r, "sentence_info");
        char where[64], id[320];
        snprintf(where, sizeof where, "[%zu]", i);
        snprintf(id, sizeof id, "%s", n == 1 || !key ? stem : key);
        if (n > 1 && !key)
            snprintf(id, sizeof id, "%s#%zu", stem, i);
        if (!json_is_array(si)) {
            if (flm_transcript_reject(t, path, 0, where, id, FLM_REJECT_PARSE,
                                      "expected a \"sentence_info\" array"))
                goto nomem;
            continue;
        }
        flm_utterance *u = align_add_utt(t, path, 0, id, audio);
        if (!u)
            goto nomem;
        size_t ns = json_array_size(si);
        for (size_t k = 0; k < ns; k++) {
            json_t *s = json_array_get(si, k);
            const char *text = align_get_str(s, "text");
            double start, end;
            if (!text || align_get_num(s, "start", &start) || align_get_num(s, "end", &end)) {
                snprintf(where, sizeof where, "[%zu].sentence_info[%zu]", i, k);
                if (flm_transcript_reject(t, path, 0, where, id, FLM_REJECT_PARSE,
                                          "expected number start, end (ms) and string text"))
                    goto nomem;
                continue;
            }
            if (!align_add_seg(u, text, strlen(text), start / 1000.0, end / 1000.0, -1, 0,
                               (int32_t)k))
                goto nomem;
        }
    }
    json_decref(root);
    return 0;
nomem:
    json_decref(root);
    return nomem(err, path);
}

/* ---- SRT and WebVTT ------------------------------------------------------------------------- */

/* Parses "[hh:]mm:ss[,.]mmm" at *p; hours are required for SRT. Advances *p. */
static int parse_ts(const char **p, int vtt, double *out)
{
    const char *s = *p;
    long f[3];
    int nf = 0;
    while (nf < 3) {
        if (*s < '0' || *s > '9')
            return -1;
        long v = 0;
        int nd = 0;
        while (*s >= '0' && *s <= '9' && nd < 9)
            v = v * 10 + (*s++ - '0'), nd++;
        f[nf++] = v;
        if (*s != ':')
            break;
        s++;
    }
    if ((*s != ',' && *s != '.') || (vtt ? nf < 2 : nf != 3))
        return -1;
    s++;
    long ms = 0;
    int nd = 0;
    while (*s >= '0' && *s <= '9' && nd < 3)
        ms = ms * 10 + (*s++ - '0'), nd++;
    if (nd != 3)
        return -1;
    double h = nf == 3 ? (double)f[0] : 0, m = (double)f[nf - 2], sec = (double)f[nf - 1];
    if (m >= 60 || sec >= 60)
        return -1;
    *out = h * 3600 + m * 60 + sec + ms / 1000.0;
    *p = s;
    return 0;
}

static int parse_timing(const char *line, int vtt, double *start, double *end)
{
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (parse_ts(&p, vtt, start))
        return -1;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "-->", 3))
        return -1;
    p += 3;
    while (*p == ' ' || *p == '\t')
        p++;
    if (parse_ts(&p, vtt, end))
        return -1;
    return (*p == 0 || *p == ' ' || *p == '\t') ? 0 : -1;
}

/* Appends a cue text line to buf without markup (<i>, {\an8}) and with the few entities
 * WebVTT defines decoded; lines are joined by a space except between CJK characters. */
int align_append_cue_text(char **buf, size_t *n, size_t *cap, const char *line)
{
    size_t len = strlen(line);
    if (flm_grow((void **)buf, cap, *n + len + 2, 1))
        return FLM_ENOMEM;
    if (*n) {
        size_t i = align_prev_start(*buf, *n), j = 0;
        uint32_t a = align_next_cp(*buf, *n, &i), b = align_next_cp(line, len, &j);
        if (!align_no_space_joins(a) && !align_no_space_joins(b))
            (*buf)[(*n)++] = ' ';
    }
    for (size_t i = 0; i < len;) {
        if (line[i] == '<') {
            const char *e = strchr(line + i, '>');
            if (e) {
                i = (size_t)(e - line) + 1;
                continue;
            }
        } else if (line[i] == '{' && line[i + 1] == '\\') {
            const char *e = strchr(line + i, '}');
            if (e) {
                i = (size_t)(e - line) + 1;
                continue;
            }
        } else if (line[i] == '&') {
            static const struct {
                const char *ent;
                char c;
            } ents[] = {{"&amp;", '&'},  {"&lt;", '<'},   {"&gt;", '>'},
                        {"&nbsp;", ' '}, {"&quot;", '"'}, {"&apos;", '\''}};
            size_t k;
            for (k = 0; k < sizeof ents / sizeof ents[0]; k++)
                if (!strncmp(line + i, ents[k].ent, strlen(ents[k].ent)))
                    break;
            if (k < sizeof ents / sizeof ents[0]) {
                (*buf)[(*n)++] = ents[k].c;
                i += strlen(ents[k].ent);
                continue;
            }
        }
        (*buf)[(*n)++] = line[i++];
    }
    (*buf)[*n] = 0;
    return 0;
}

static int import_subtitles(flm_transcript *t, const char *path, const char *data, size_t size,
                            const char *audio, int vtt, flm_error *err)
{
    char stem[256];
    align_file_stem(path, stem, sizeof stem);
    /* a private copy cut into NUL-terminated lines */
    char *copy = flm_malloc(size + 1), *text = NULL;
    char **lines = NULL;
    size_t n_lines = 0, cap_lines = 0, text_n = 0, text_cap = 0;
    if (!copy)
        return nomem(err, path);
    memcpy(copy, data, size);
    copy[size] = 0;
    char *p = copy;
    if (size >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
        p += 3;
    for (;;) {
        if (flm_grow((void **)&lines, &cap_lines, n_lines + 1, sizeof *lines))
            goto nomem;
        lines[n_lines++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = 0;
        if (nl > p && nl[-1] == '\r')
            nl[-1] = 0;
        p = nl + 1;
    }
    if (vtt && (strncmp(lines[0], "WEBVTT", 6) ||
                (lines[0][6] && lines[0][6] != ' ' && lines[0][6] != '\t'))) {
        flm_free(lines);
        flm_free(copy);
        return flm_error_set(err, FLM_EFORMAT, "%s: line 1: expected \"WEBVTT\"", path);
    }
    flm_utterance *u = align_add_utt(t, path, 0, stem, audio);
    if (!u)
        goto nomem;
    int32_t n_cues = 0;
    for (size_t i = 0; i < n_lines;) {
        if (lines[i][strspn(lines[i], " \t")] == 0) {
            i++;
            continue;
        }
        size_t b = i; /* block [b, e) of non-blank lines */
        while (i < n_lines && lines[i][strspn(lines[i], " \t")] != 0)
            i++;
        size_t e = i;
        if (vtt && (b == 0 || !strncmp(lines[b], "NOTE", 4) || !strncmp(lines[b], "STYLE", 5) ||
                    !strncmp(lines[b], "REGION", 6)))
            continue; /* the header block and non-cue blocks */
        size_t tl = strstr(lines[b], "-->")                       ? b
                    : (e - b >= 2 && strstr(lines[b + 1], "-->")) ? b + 1
                                                                  : e;
        if (tl == e) {
            if (flm_transcript_reject(t, path, (int32_t)b + 1, "", stem, FLM_REJECT_PARSE,
                                      "expected a timing line in the block at '%.40s'", lines[b]))
                goto nomem;
            continue;
        }
        double start, end;
        if (parse_timing(lines[tl], vtt, &start, &end)) {
            if (flm_transcript_reject(t, path, (int32_t)tl + 1, "", stem, FLM_REJECT_PARSE,
                                      "expected '%s --> %s', got '%.60s'",
                                      vtt ? "00:00.000" : "00:00:00,000",
                                      vtt ? "00:00.000" : "00:00:00,000", lines[tl]))
                goto nomem;
            continue;
        }
        text_n = 0;
        if (flm_grow((void **)&text, &text_cap, 1, 1))
            goto nomem;
        text[0] = 0;
        for (size_t k = tl + 1; k < e; k++)
            if (align_append_cue_text(&text, &text_n, &text_cap, lines[k]))
                goto nomem;
        if (!align_add_seg(u, text, text_n, start, end, -1, (int32_t)tl + 1, n_cues++))
            goto nomem;
    }
    flm_free(text);
    flm_free(lines);
    flm_free(copy);
    return 0;
nomem:
    flm_free(text);
    flm_free(lines);
    flm_free(copy);
    return nomem(err, path);
}

/* ---- moshi-finetune: {"alignments": [[word, [start, end], speaker], ...]} ------------------ */

int align_import_moshi(flm_transcript *t, const char *path, const char *data, size_t size,
                       const char *audio, flm_error *err)
{
    json_t *root;
    int rc = load_json(&root, path, data, size, err);
    if (rc)
        return rc;
    json_t *al = json_object_get(root, "alignments");
    if (!json_is_array(al)) {
        json_decref(root);
        return flm_error_set(err, FLM_EFORMAT,
                             "%s: expected an object with an \"alignments\" array", path);
    }
    char stem[256];
    align_file_stem(path, stem, sizeof stem);
    /* one utterance per speaker label; SPEAKER_MAIN (the model's voice) is channel 0 of the
     * stereo file, everyone else channel 1 */
    enum { MAX_SPK = 8 };
    flm_utterance *spk_utt[MAX_SPK] = {0};
    size_t spk_idx[MAX_SPK];
    const char *spk_name[MAX_SPK];
    size_t word_cap[MAX_SPK] = {0};
    int n_spk = 0, last_spk = -1;
    char *buf = NULL;
    size_t buf_n = 0, buf_cap = 0;
    size_t n = json_array_size(al);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(al, i), *span = json_array_get(e, 1);
        json_t *w = json_array_get(e, 0), *sp = json_array_get(e, 2);
        char where[64];
        snprintf(where, sizeof where, "alignments[%zu]", i);
        if (!json_is_array(e) || json_array_size(e) != 3 || !json_is_string(w) ||
            !json_is_string(sp) || !json_is_array(span) || json_array_size(span) != 2 ||
            !json_is_number(json_array_get(span, 0)) || !json_is_number(json_array_get(span, 1))) {
            if (flm_transcript_reject(t, path, 0, where, stem, FLM_REJECT_PARSE,
                                      "expected [word, [start, end], speaker]"))
                goto nomem;
            continue;
        }
        double ws = json_number_value(json_array_get(span, 0));
        double we = json_number_value(json_array_get(span, 1));
        const char *name = json_string_value(sp);
        int k;
        for (k = 0; k < n_spk; k++)
            if (!strcmp(spk_name[k], name))
                break;
        if (k == n_spk) {
            if (n_spk == MAX_SPK) {
                if (flm_transcript_reject(t, path, 0, where, stem, FLM_REJECT_PARSE,
                                          "more than %d speakers", MAX_SPK))
                    goto nomem;
                continue;
            }
            char id[320];
            snprintf(id, sizeof id, "%s.%s", stem, name);
            spk_name[k] = name;
            spk_idx[k] = t->n_utts;
            flm_utterance *u = align_add_utt(t, path, 0, id, audio);
            if (!u || align_set_str(&u->speaker, name))
                goto nomem;
            u->channel = strcmp(name, "SPEAKER_MAIN") ? 1 : 0;
            n_spk++;
        }
        for (int q = 0; q < n_spk; q++) /* t->utts may have moved */
            spk_utt[q] = &t->utts[spk_idx[q]];
        flm_utterance *u = spk_utt[k];
        flm_align_segment *seg = u->n_segs ? &u->segs[u->n_segs - 1] : NULL;
        /* a new segment when the speaker changes or after a pause of more than 2 s */
        if (!seg || last_spk != k || ws - seg->end > 2.0) {
            if (!(seg = align_add_seg(u, "", 0, ws, we, -1, 0, (int32_t)i)))
                goto nomem;
            word_cap[k] = 0;
        }
        last_spk = k;
        if (align_add_word(seg, &word_cap[k], json_string_value(w), ws, we, -1))
            goto nomem;
        if (we > seg->end)
            seg->end = we;
        /* the segment text is its words joined by spaces (none between CJK characters) */
        buf_n = 0;
        if (buf)
            buf[0] = 0;
        for (size_t q = 0; q < seg->n_words; q++)
            if (align_append_cue_text(&buf, &buf_n, &buf_cap, seg->words[q].text))
                goto nomem;
        if (align_set_str(&seg->text, buf))
            goto nomem;
    }
    flm_free(buf);
    json_decref(root);
    return 0;
nomem:
    flm_free(buf);
    json_decref(root);
    return nomem(err, path);
}

/* ---- Our JSONL manifest (schemas/align-manifest.schema.json) -------------------------------- */

static int jsonl_segment(flm_transcript *t, flm_utterance *u, json_t *s, int32_t line, size_t k,
                         const char *path)
{
    const char *text = align_get_str(s, "text");
    double start, end, conf;
    char where[64];
    snprintf(where, sizeof where, "segments[%zu]", k);
    if (!json_is_object(s) || !text || align_get_num(s, "start", &start) ||
        align_get_num(s, "end", &end))
        return flm_transcript_reject(t, path, line, where, u->id, FLM_REJECT_PARSE,
                                     "expected an object with number start, end and string text");
    flm_align_segment *seg =
        align_add_seg(u, text, strlen(text), start, end,
                      align_get_num(s, "confidence", &conf) ? -1 : conf, line, (int32_t)k);
    if (!seg)
        return FLM_ENOMEM;
    json_t *words = json_object_get(s, "words");
    size_t cap = 0, nw = json_array_size(words);
    for (size_t q = 0; q < nw; q++) {
        json_t *w = json_array_get(words, q);
        const char *wt = align_get_str(w, "word");
        double ws, we, wc;
        if (!wt || align_get_num(w, "start", &ws) || align_get_num(w, "end", &we))
            return flm_transcript_reject(t, path, line, where, u->id, FLM_REJECT_PARSE,
                                         "words[%zu]: expected word, start, end", q);
        if (align_add_word(seg, &cap, wt, ws, we, align_get_num(w, "confidence", &wc) ? -1 : wc))
            return FLM_ENOMEM;
    }
    return 0;
}

static int jsonl_line(flm_transcript *t, const char *path, const char *dir, const char *line,
                      size_t len, int32_t lineno)
{
    char where[32] = "";
    char stem[256], id_buf[300];
    align_file_stem(path, stem, sizeof stem);
    snprintf(id_buf, sizeof id_buf, "%s:%d", stem, (int)lineno);
    size_t bad = flm_utf8_check(line, len);
    if (bad != len)
        return flm_transcript_reject(t, path, lineno, where, "", FLM_REJECT_BAD_UTF8,
                                     "invalid UTF-8 at byte %zu of the line", bad);
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return flm_transcript_reject(t, path, lineno, where, "", FLM_REJECT_PARSE, "column %d: %s",
                                     je.column, je.text);
    int rc = 0;
    const char *audio = align_get_str(o, "audio"), *id = align_get_str(o, "id");
    json_t *segs = json_object_get(o, "segments"), *ch = json_object_get(o, "channel");
    const char *text = align_get_str(o, "text");
    double dur = -1;
    if (!json_is_object(o) || !audio || !audio[0] || (!json_is_array(segs) && !text) ||
        (ch && !json_is_null(ch) &&
         (!json_is_integer(ch) || json_integer_value(ch) < -1 || json_integer_value(ch) >= 64)) ||
        (json_object_get(o, "duration") && align_get_num(o, "duration", &dur)) || (id && !id[0])) {
        rc = flm_transcript_reject(t, path, lineno, where, id ? id : "", FLM_REJECT_PARSE,
                                   "expected an object with string audio, segments or text, "
                                   "optional integer channel -1..63 and number duration");
        json_decref(o);
        return rc;
    }
    char *full = NULL;
    if (audio[0] != '/' && dir[0]) {
        size_t n = strlen(dir) + strlen(audio) + 2;
        if (!(full = flm_malloc(n)))
            goto nomem;
        snprintf(full, n, "%s/%s", dir, audio);
    }
    flm_utterance *u = align_add_utt(t, path, lineno, id ? id : id_buf, full ? full : audio);
    flm_free(full);
    if (!u)
        goto nomem;
    u->channel = json_is_integer(ch) ? (int32_t)json_integer_value(ch) : -1;
    u->duration = dur;
    static const char *const keys[] = {"language", "speaker", "corpus"};
    char **dst[] = {&u->language, &u->speaker, &u->corpus};
    for (int k = 0; k < 3; k++) {
        const char *v = align_get_str(o, keys[k]);
        if (v && align_set_str(dst[k], v))
            goto nomem;
    }
    if (json_is_array(segs)) {
        size_t n = json_array_size(segs);
        for (size_t k = 0; k < n && !rc; k++)
            rc = jsonl_segment(t, u, json_array_get(segs, k), lineno, k, path);
    } else {
        /* the whole file is one segment; its end is the audio's duration (INFINITY: not known
         * until the audio is read) */
        double s0 = 0, s1 = INFINITY;
        align_get_num(o, "start", &s0);
        align_get_num(o, "end", &s1);
        if (!align_add_seg(u, text, strlen(text), s0, s1, -1, lineno, 0))
            goto nomem;
    }
    json_decref(o);
    return rc;
nomem:
    json_decref(o);
    return FLM_ENOMEM;
}

int align_next_line(const char *data, size_t size, size_t *pos, int32_t *lineno, const char **line,
                    size_t *len)
{
    while (*pos < size) {
        const char *nl = memchr(data + *pos, '\n', size - *pos);
        size_t end = nl ? (size_t)(nl - data) : size, n = end - *pos;
        const char *l = data + *pos;
        *pos = end + 1;
        ++*lineno;
        if (n && l[n - 1] == '\r')
            n--;
        size_t k = 0;
        while (k < n && (l[k] == ' ' || l[k] == '\t'))
            k++;
        if (k < n) {
            *line = l;
            *len = n;
            return 1;
        }
    }
    return 0;
}

static int import_jsonl(flm_transcript *t, const char *path, const char *data, size_t size,
                        flm_error *err)
{
    char dir[4096] = "";
    const char *slash = strrchr(path, '/');
    if (slash && (size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    size_t pos = 0, len;
    int32_t lineno = 0;
    const char *line;
    while (align_next_line(data, size, &pos, &lineno, &line, &len))
        if (jsonl_line(t, path, dir, line, len, lineno))
            return nomem(err, path);
    return 0;
}

int flm_transcript_import(flm_transcript *t, int format, const char *path, const char *data,
                          size_t size, const char *audio, flm_error *err)
{
    flm_align_import_opts o = {.audio = audio};
    return flm_transcript_import_opts(t, format, path, data, size, &o, err);
}

int flm_transcript_import_opts(flm_transcript *t, int format, const char *path, const char *data,
                               size_t size, const flm_align_import_opts *o, flm_error *err)
{
    const char *audio = o ? o->audio : NULL;
    if (!path)
        path = "(memory)";
    switch (format) {
    case FLM_ALIGN_WHISPER:
        return import_whisper(t, path, data, size, audio, err);
    case FLM_ALIGN_FUNASR:
        return import_funasr(t, path, data, size, audio, err);
    case FLM_ALIGN_SRT:
        return import_subtitles(t, path, data, size, audio, 0, err);
    case FLM_ALIGN_VTT:
        return import_subtitles(t, path, data, size, audio, 1, err);
    case FLM_ALIGN_MOSHI:
        return align_import_moshi(t, path, data, size, audio, err);
    case FLM_ALIGN_JSONL:
        return import_jsonl(t, path, data, size, err);
    case FLM_ALIGN_NEMO:
    case FLM_ALIGN_LHOTSE:
    case FLM_ALIGN_MOSHI_FT:
    case FLM_ALIGN_HF: {
        flm_align_import_opts none = {0};
        return align_import_manifest(t, format, path, data, size, o ? o : &none, err);
    }
    }
    return flm_error_set(err, FLM_EINVAL, "%s: unknown transcript format %d", path, format);
}
