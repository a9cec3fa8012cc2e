/* Importers of other tools' manifests (issue 21): NeMo, Lhotse (cuts; supervisions + recordings),
 * moshi-finetune's JSONL (+ the per-wav alignments JSON) and Hugging Face audiofolder metadata
 * (CSV per RFC 4180, or JSONL); and the detection of a transcript's format from its content.
 * Field semantics: docs/align.md ("Inputs"). A line's problems are rejects naming the file, the
 * line and the key ("supervisions[0].start"); only a document that cannot be read at all fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align_internal.h"
#include "flm_alloc.h"
#include "flm_util.h"

/* ---- Field checks: each failure is one reject naming the key ------------------------------- */

typedef struct chk {
    flm_transcript *t;
    const char *path;
    int32_t line;
    const char *id;
    int bad;   /* a reject was recorded for this line */
    int nomem; /* an allocation failed */
} chk;

static void chk_reject(chk *c, const char *key, const char *fmt, const char *a)
{
    char detail[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* fmt: one of this file's literals, "%s" */
    snprintf(detail, sizeof detail, fmt, a ? a : "");
#pragma GCC diagnostic pop
    if (flm_transcript_reject(c->t, c->path, c->line, key, c->id ? c->id : "", FLM_REJECT_PARSE,
                              "key \"%s\": %s", key, detail))
        c->nomem = 1;
    c->bad = 1;
}

static void key_name(char *out, size_t n, const char *prefix, const char *key)
{
    if (prefix && prefix[0])
        snprintf(out, n, "%s.%s", prefix, key);
    else
        snprintf(out, n, "%s", key);
}

/* 1: *v set; 0: absent and optional; -1: rejected. */
static int num_field(chk *c, json_t *o, const char *prefix, const char *key, int required,
                     double *v)
{
    char k[200];
    json_t *x = json_object_get(o, key);
    if (!x || (json_is_null(x) && !required))
        goto absent;
    if (!json_is_number(x) || !isfinite(json_number_value(x))) {
        key_name(k, sizeof k, prefix, key);
        chk_reject(c, k, "expected a number%s", "");
        return -1;
    }
    *v = json_number_value(x);
    return 1;
absent:
    if (!required)
        return 0;
    key_name(k, sizeof k, prefix, key);
    chk_reject(c, k, "missing (expected a number)%s", "");
    return -1;
}

/* Strings (required: 0 optional, 1 required and non-empty, 2 required, "" allowed: an empty
 * transcript is empty_text, found by validation); with allow_int, integers too (written in
 * decimal into buf). */
static int str_field(chk *c, json_t *o, const char *prefix, const char *key, int required,
                     int allow_int, const char **v, char *buf, size_t buf_size)
{
    char k[200];
    json_t *x = json_object_get(o, key);
    if (!x || json_is_null(x)) {
        if (!required)
            return 0;
        key_name(k, sizeof k, prefix, key);
        chk_reject(c, k, "missing (expected a string)%s", "");
        return -1;
    }
    if (allow_int && json_is_integer(x)) {
        snprintf(buf, buf_size, "%lld", (long long)json_integer_value(x));
        *v = buf;
        return 1;
    }
    if (!json_is_string(x) || (required == 1 && !json_string_value(x)[0])) {
        key_name(k, sizeof k, prefix, key);
        chk_reject(c, k,
                   json_is_string(x) ? "expected a non-empty string%s" : "expected a string%s", "");
        return -1;
    }
    *v = json_string_value(x);
    return 1;
}

/* ---- Paths --------------------------------------------------------------------------------- */

static void dir_of(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (slash && (size_t)(slash - path) < n)
        snprintf(dir, n, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else
        snprintf(dir, n, ".");
}

/* ---- JSONL lines --------------------------------------------------------------------------- */

typedef int (*line_fn)(void *ctx, chk *c, json_t *o);

/* Calls fn on each non-blank line parsed as a JSON object; lines that are not are rejects. */
static int each_line(flm_transcript *t, const char *path, const char *data, size_t size, line_fn fn,
                     void *ctx)
{
    size_t pos = 0, len;
    int32_t lineno = 0;
    const char *line;
    while (align_next_line(data, size, &pos, &lineno, &line, &len)) {
        size_t bad = flm_utf8_check(line, len);
        if (bad != len) {
            if (flm_transcript_reject(t, path, lineno, "", "", FLM_REJECT_BAD_UTF8,
                                      "invalid UTF-8 at byte %zu of the line", bad))
                return FLM_ENOMEM;
            continue;
        }
        json_error_t je;
        json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
        if (!o || !json_is_object(o)) {
            int rc = o ? flm_transcript_reject(t, path, lineno, "", "", FLM_REJECT_PARSE,
                                               "expected a JSON object")
                       : flm_transcript_reject(t, path, lineno, "", "", FLM_REJECT_PARSE,
                                               "column %d: %s", je.column, je.text);
            json_decref(o);
            if (rc)
                return FLM_ENOMEM;
            continue;
        }
        chk c = {.t = t, .path = path, .line = lineno};
        int rc = fn(ctx, &c, o);
        json_decref(o);
        if (rc || c.nomem)
            return FLM_ENOMEM;
    }
    return 0;
}

/* ---- NeMo ------------------------------------------------------------------------------------
 * {"audio_filepath": "a.wav", "duration": 3.2, "text": "...", "offset"?: 1.5, "lang"?: "en",
 *  "speaker"?: "s1" or 3, ...other keys NeMo writes (pred_text, ...) ignored}
 * The utterance is the span [offset, offset + duration) of the audio. */

typedef struct mctx {
    const char *path;
    char dir[4096];
    char stem[256];
    const flm_align_import_opts *o;
} mctx;

static int set_meta(flm_utterance *u, const char *lang, const char *spk)
{
    return (lang && align_set_str(&u->language, lang)) || (spk && align_set_str(&u->speaker, spk))
               ? FLM_ENOMEM
               : 0;
}

static int nemo_line(void *ctx, chk *c, json_t *o)
{
    mctx *m = ctx;
    const char *audio = NULL, *text = NULL, *lang = NULL, *spk = NULL;
    double dur = 0, off = 0;
    char spk_buf[32], id[300];
    snprintf(id, sizeof id, "%s:%d", m->stem, (int)c->line);
    c->id = id;
    str_field(c, o, "", "audio_filepath", 1, 0, &audio, NULL, 0);
    num_field(c, o, "", "duration", 1, &dur);
    str_field(c, o, "", "text", 2, 0, &text, NULL, 0);
    num_field(c, o, "", "offset", 0, &off);
    str_field(c, o, "", "lang", 0, 0, &lang, NULL, 0);
    str_field(c, o, "", "speaker", 0, 1, &spk, spk_buf, sizeof spk_buf);
    if (c->bad)
        return 0;
    char *full = flm_path_join(m->dir, audio);
    flm_utterance *u = full ? align_add_utt(c->t, m->path, c->line, id, full) : NULL;
    flm_free(full);
    if (!u || set_meta(u, lang, spk) ||
        !align_add_seg(u, text, strlen(text), off, off + dur, -1, c->line, 0))
        return FLM_ENOMEM;
    return 0;
}

/* ---- Lhotse ---------------------------------------------------------------------------------
 * Recording: {"id", "sources": [{"type": "file", "channels": [0, 1], "source": "a.flac"}],
 *             "sampling_rate", "num_samples", "duration", "channel_ids"?}
 * Supervision: {"id", "recording_id", "start", "duration", "channel": 0 or [0, 1], "text",
 *               "language"?, "speaker"?, "alignment"?: {"word": [[symbol, start, duration,
 *               score], ...]}}
 * MonoCut / MultiCut: {"id", "start", "duration", "channel": 0 or [0, 1], "supervisions": [...],
 *                      "recording": {...}, "type": "MonoCut"}; a cut's supervisions (and their
 *                      alignments) start relative to the cut, a manifest's relative to the
 *                      recording. */

/* Where recording channel ch lives: the file and its channel there (-1: a one-channel file,
 * read as mono). 0 ok, -1 rejected. */
static int rec_channel(chk *c, json_t *rec, const char *prefix, int64_t ch, const char *dir,
                       char **audio, int32_t *file_ch)
{
    char k[200];
    json_t *srcs = json_object_get(rec, "sources");
    if (!json_is_array(srcs) || !json_array_size(srcs)) {
        key_name(k, sizeof k, prefix, "sources");
        chk_reject(c, k, "%s", srcs ? "expected a non-empty array" : "missing (expected an array)");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(srcs); i++) {
        json_t *s = json_array_get(srcs, i), *chs = json_object_get(s, "channels");
        char p[160];
        snprintf(p, sizeof p, "%s%ssources[%zu]", prefix, prefix[0] ? "." : "", i);
        const char *type = NULL, *src = NULL;
        if (!json_is_object(s)) {
            chk_reject(c, p, "expected an object%s", "");
            return -1;
        }
        if (str_field(c, s, p, "type", 1, 0, &type, NULL, 0) < 0 ||
            str_field(c, s, p, "source", 1, 0, &src, NULL, 0) < 0)
            return -1;
        if (!json_is_array(chs)) {
            key_name(k, sizeof k, p, "channels");
            chk_reject(c, k, "%s",
                       chs ? "expected an array of integers"
                           : "missing (expected an array of integers)");
            return -1;
        }
        for (size_t q = 0; q < json_array_size(chs); q++) {
            json_t *x = json_array_get(chs, q);
            if (!json_is_integer(x)) {
                key_name(k, sizeof k, p, "channels");
                chk_reject(c, k, "expected an array of integers%s", "");
                return -1;
            }
            if (json_integer_value(x) != ch)
                continue;
            if (strcmp(type, "file")) {
                key_name(k, sizeof k, p, "type");
                chk_reject(c, k, "\"%s\" is not supported (expected \"file\")", type);
                return -1;
            }
            if (!(*audio = flm_path_join(dir, src))) {
                c->nomem = 1;
                return -1;
            }
            *file_ch = json_array_size(chs) == 1 ? -1 : (int32_t)q;
            return 0;
        }
    }
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)ch);
    key_name(k, sizeof k, prefix, "sources");
    chk_reject(c, k, "no source holds channel %s", v);
    return -1;
}

/* The channels of a supervision or cut: an integer or an array of them (at most 64). */
static int channels_of(chk *c, json_t *o, const char *prefix, int required, int64_t *chs, size_t *n)
{
    char k[200];
    json_t *x = json_object_get(o, "channel");
    key_name(k, sizeof k, prefix, "channel");
    *n = 0;
    if (!x || json_is_null(x)) {
        if (required) {
            chk_reject(c, k, "missing (expected an integer or an array of them)%s", "");
            return -1;
        }
        chs[(*n)++] = 0;
        return 0;
    }
    if (json_is_integer(x)) {
        chs[(*n)++] = json_integer_value(x);
        return 0;
    }
    if (json_is_array(x) && json_array_size(x) > 0 && json_array_size(x) <= 64) {
        for (size_t i = 0; i < json_array_size(x); i++) {
            if (!json_is_integer(json_array_get(x, i)))
                goto bad;
            chs[(*n)++] = json_integer_value(json_array_get(x, i));
        }
        return 0;
    }
bad:
    chk_reject(c, k, "expected an integer or an array of 1..64 integers%s", "");
    return -1;
}

/* A supervision's checked fields. */
typedef struct lsup {
    const char *id, *rec_id, *text, *lang, *spk;
    double start, dur;
    int64_t chs[64];
    size_t n_chs;
    json_t *words; /* alignment.word or NULL */
    char spk_buf[32];
} lsup;

static int sup_fields(chk *c, json_t *s, const char *p, int need_rec, lsup *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(s)) {
        chk_reject(c, p, "expected an object%s", "");
        return -1;
    }
    str_field(c, s, p, "id", 1, 0, &out->id, NULL, 0);
    if (need_rec)
        str_field(c, s, p, "recording_id", 1, 0, &out->rec_id, NULL, 0);
    num_field(c, s, p, "start", 1, &out->start);
    num_field(c, s, p, "duration", 1, &out->dur);
    str_field(c, s, p, "text", 2, 0, &out->text, NULL, 0);
    str_field(c, s, p, "language", 0, 0, &out->lang, NULL, 0);
    str_field(c, s, p, "speaker", 0, 1, &out->spk, out->spk_buf, sizeof out->spk_buf);
    channels_of(c, s, p, 0, out->chs, &out->n_chs);
    json_t *al = json_object_get(s, "alignment");
    out->words = json_is_object(al) ? json_object_get(al, "word") : NULL;
    return c->bad ? -1 : 0;
}

/* Appends a supervision as a segment (times shifted by base) with its word alignment when every
 * item is [symbol, start, duration, ...] or {"symbol", "start", "duration"}. */
static int add_sup(flm_utterance *u, const lsup *s, double base, int32_t line, int32_t index)
{
    flm_align_segment *seg = align_add_seg(u, s->text, strlen(s->text), base + s->start,
                                           base + s->start + s->dur, -1, line, index);
    if (!seg)
        return FLM_ENOMEM;
    size_t cap = 0, n = json_is_array(s->words) ? json_array_size(s->words) : 0;
    for (size_t i = 0; i < n; i++) {
        json_t *w = json_array_get(s->words, i), *sym, *st, *du;
        if (json_is_array(w)) {
            sym = json_array_get(w, 0), st = json_array_get(w, 1), du = json_array_get(w, 2);
        } else {
            sym = json_object_get(w, "symbol"), st = json_object_get(w, "start");
            du = json_object_get(w, "duration");
        }
        if (!json_is_string(sym) || !json_is_number(st) || !json_is_number(du) ||
            !isfinite(json_number_value(st)) || !isfinite(json_number_value(du))) {
            for (size_t q = 0; q < seg->n_words; q++) /* optional: a bad item drops them all */
                flm_free(seg->words[q].text);
            flm_free(seg->words);
            seg->words = NULL;
            seg->n_words = 0;
            break;
        }
        double ws = base + json_number_value(st);
        if (align_add_word(seg, &cap, json_string_value(sym), ws, ws + json_number_value(du), -1))
            return FLM_ENOMEM;
    }
    return 0;
}

static int cut_line(void *ctx, chk *c, json_t *o)
{
    mctx *m = ctx;
    const char *id = NULL, *type = NULL;
    double start = 0, dur = 0;
    char idb[300];
    snprintf(idb, sizeof idb, "%s:%d", m->stem, (int)c->line);
    c->id = idb;
    if (str_field(c, o, "", "type", 0, 0, &type, NULL, 0) > 0 && strcmp(type, "MonoCut") &&
        strcmp(type, "MultiCut") && strcmp(type, "Cut")) {
        chk_reject(c, "type", "\"%s\" is not supported (expected MonoCut or MultiCut)", type);
        return 0;
    }
    if (str_field(c, o, "", "id", 1, 0, &id, NULL, 0) > 0)
        c->id = id;
    num_field(c, o, "", "start", 1, &start);
    num_field(c, o, "", "duration", 1, &dur);
    int64_t cut_chs[64];
    size_t n_cut_chs;
    channels_of(c, o, "", 1, cut_chs, &n_cut_chs);
    json_t *rec = json_object_get(o, "recording"), *sups = json_object_get(o, "supervisions");
    if (!json_is_object(rec))
        chk_reject(c, "recording", "%s",
                   rec ? "expected an object" : "missing (expected an object)");
    if (!json_is_array(sups))
        chk_reject(c, "supervisions", "%s",
                   sups ? "expected an array" : "missing (expected an array)");
    if (c->bad)
        return 0;
    if (!json_array_size(sups)) {
        if (flm_transcript_reject(c->t, m->path, c->line, "supervisions", c->id,
                                  FLM_REJECT_NO_SENTENCES, "the cut has no supervisions"))
            return FLM_ENOMEM;
        return 0;
    }
    /* check everything first: a line is imported whole or rejected */
    size_t n = json_array_size(sups);
    lsup *ls = flm_malloc(n * sizeof *ls);
    if (!ls)
        return FLM_ENOMEM;
    for (size_t k = 0; k < n; k++) {
        char p[64];
        snprintf(p, sizeof p, "supervisions[%zu]", k);
        sup_fields(c, json_array_get(sups, k), p, 0, &ls[k]);
    }
    /* one utterance per channel the supervisions name, in order of appearance */
    int64_t uch[64];
    size_t n_uch = 0, first[64];
    for (size_t k = 0; k < n && !c->bad; k++)
        for (size_t q = 0; q < ls[k].n_chs; q++) {
            size_t z = 0;
            while (z < n_uch && uch[z] != ls[k].chs[q])
                z++;
            if (z == n_uch && n_uch < 64)
                first[n_uch] = k, uch[n_uch++] = ls[k].chs[q];
        }
    char *audio[64] = {0};
    int32_t fch[64];
    for (size_t z = 0; z < n_uch && !c->bad; z++)
        rec_channel(c, rec, "recording", uch[z], m->dir, &audio[z], &fch[z]);
    int rc = 0;
    for (size_t z = 0; z < n_uch && !c->bad && !c->nomem && !rc; z++) {
        char uid[400];
        if (n_uch == 1 && n_cut_chs == 1)
            snprintf(uid, sizeof uid, "%s", c->id);
        else
            snprintf(uid, sizeof uid, "%s.ch%lld", c->id, (long long)uch[z]);
        flm_utterance *u = align_add_utt(c->t, m->path, c->line, uid, audio[z]);
        if (!u || set_meta(u, ls[first[z]].lang, ls[first[z]].spk)) {
            rc = FLM_ENOMEM;
            break;
        }
        u->channel = fch[z];
        for (size_t k = 0; k < n && !rc; k++)
            for (size_t q = 0; q < ls[k].n_chs; q++)
                if (ls[k].chs[q] == uch[z])
                    rc = add_sup(u, &ls[k], start, c->line, (int32_t)k);
    }
    for (size_t z = 0; z < n_uch; z++)
        flm_free(audio[z]);
    flm_free(ls);
    return rc;
}

/* recordings manifest lines -> rctx.recs {id: recording} */
typedef struct rctx {
    json_t *recs;
} rctx;

static int rec_line(void *ctx, chk *c, json_t *o)
{
    rctx *r = ctx;
    const char *id = NULL;
    if (str_field(c, o, "", "id", 1, 0, &id, NULL, 0) < 0)
        return 0;
    c->id = id;
    json_t *srcs = json_object_get(o, "sources");
    if (!json_is_array(srcs)) {
        chk_reject(c, "sources", "%s", srcs ? "expected an array" : "missing (expected an array)");
        return 0;
    }
    return json_object_set(r->recs, id, o) ? FLM_ENOMEM : 0;
}

typedef struct sctx {
    mctx m;
    json_t *recs;
    const char *rec_path;
} sctx;

static int sup_line(void *ctx, chk *c, json_t *o)
{
    sctx *s = ctx;
    lsup ls;
    const char *id =
        json_is_string(json_object_get(o, "id")) ? json_string_value(json_object_get(o, "id")) : "";
    c->id = id;
    if (sup_fields(c, o, "", 1, &ls) < 0)
        return 0;
    json_t *rec = json_object_get(s->recs, ls.rec_id);
    if (!rec) {
        chk_reject(c, "recording_id", "\"%s\" is not in the recordings manifest", ls.rec_id);
        return 0;
    }
    if (ls.n_chs != 1) {
        chk_reject(c, "channel", "%s",
                   "expected one channel (a supervision over several "
                   "channels is not supported)");
        return 0;
    }
    /* the recordings' sources are relative to their own manifest's directory */
    char rdir[4096];
    dir_of(s->rec_path, rdir, sizeof rdir);
    char *audio = NULL;
    int32_t fch;
    if (rec_channel(c, rec, "recording", ls.chs[0], rdir, &audio, &fch) < 0)
        return 0;
    flm_utterance *u = align_add_utt(c->t, s->m.path, c->line, ls.id, audio);
    flm_free(audio);
    if (!u || set_meta(u, ls.lang, ls.spk))
        return FLM_ENOMEM;
    u->channel = fch;
    return add_sup(u, &ls, 0, c->line, 0);
}

static int import_lhotse(flm_transcript *t, const char *path, const char *data, size_t size,
                         mctx *m, flm_error *err)
{
    int kind = 0;
    if (flm_align_detect_format(data, size, &kind) != FLM_ALIGN_LHOTSE)
        kind = 'c'; /* an unknown first line: read as cuts, every line says what is wrong */
    if (kind == 'c')
        return each_line(t, path, data, size, cut_line, m) ? FLM_ENOMEM : 0;
    if (kind == 'r')
        return flm_error_set(err, FLM_EINVAL,
                             "%s: a Lhotse recordings manifest: give it with its supervisions",
                             path);
    /* supervisions: the recordings given, or the sibling file */
    const flm_align_import_opts *o = m->o;
    char *own = NULL, sib[4096];
    size_t own_size = 0;
    const char *rdata = o->recordings_data, *rpath = o->recordings_path;
    size_t rsize = o->recordings_size;
    if (!rdata) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        const char *hit = strstr(base, "supervisions");
        if (!hit)
            return flm_error_set(err, FLM_EFORMAT,
                                 "%s: a Lhotse supervisions manifest needs its recordings "
                                 "manifest: give it as an input too",
                                 path);
        snprintf(sib, sizeof sib, "%.*srecordings%s", (int)(hit - path), path, hit + 12);
        int rc = flm_align_read_input(sib, (size_t)1 << 30, &own, &own_size, err);
        if (rc < 0)
            return flm_error_prefix(err, "%s: its recordings manifest: ", path);
        rdata = own, rsize = own_size, rpath = sib;
    }
    rctx r = {json_object()};
    sctx s = {.m = *m, .recs = r.recs, .rec_path = rpath ? rpath : path};
    int rc = r.recs ? 0 : FLM_ENOMEM;
    if (!rc)
        rc = each_line(t, rpath ? rpath : path, rdata, rsize, rec_line, &r);
    if (!rc)
        rc = each_line(t, path, data, size, sup_line, &s);
    json_decref(r.recs);
    flm_free(own);
    return rc ? flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path) : 0;
}

/* ---- moshi-finetune: {"path": "a.wav", "duration": 12.3} + a.json beside a.wav ------------- */

static int moshift_line(void *ctx, chk *c, json_t *o)
{
    mctx *m = ctx;
    const char *wav = NULL;
    double dur = -1;
    char idb[300];
    snprintf(idb, sizeof idb, "%s:%d", m->stem, (int)c->line);
    c->id = idb;
    str_field(c, o, "", "path", 1, 0, &wav, NULL, 0);
    num_field(c, o, "", "duration", 1, &dur);
    if (c->bad)
        return 0;
    char *audio = flm_path_join(m->dir, wav);
    if (!audio)
        return FLM_ENOMEM;
    size_t n = strlen(audio);
    char *js = flm_malloc(n + 6);
    if (!js) {
        flm_free(audio);
        return FLM_ENOMEM;
    }
    memcpy(js, audio, n + 1);
    char *dot = strrchr(js, '.'), *slash = strrchr(js, '/');
    if (dot && (!slash || dot > slash))
        *dot = 0;
    strcat(js, ".json");
    char *data = NULL;
    size_t size = 0;
    flm_error err = {0};
    size_t before = c->t->n_utts;
    int rc = flm_align_read_input(js, (size_t)1 << 30, &data, &size, &err);
    if (!rc)
        rc = align_import_moshi(c->t, js, data, size, audio, &err);
    flm_free(data);
    if (rc == FLM_ENOMEM) {
        c->nomem = 1;
    } else if (rc < 0) {
        chk_reject(c, "path", "the alignments beside it: %s", err.msg);
    } else {
        for (size_t i = before; i < c->t->n_utts; i++) {
            flm_utterance *u = &c->t->utts[i];
            u->duration = dur;
            u->line = c->line;
            if (align_set_str(&u->file, m->path)) {
                c->nomem = 1;
                break;
            }
        }
        if (c->t->n_utts == before && !c->nomem &&
            flm_transcript_reject(c->t, m->path, c->line, "path", idb, FLM_REJECT_NO_SENTENCES,
                                  "%s: no alignments", js))
            c->nomem = 1;
    }
    flm_free(js);
    flm_free(audio);
    return 0;
}

/* ---- Hugging Face audiofolder: metadata.jsonl or metadata.csv ------------------------------ */

static const char *const hf_text_keys[] = {"transcription", "text", "sentence"};

static int hf_add(chk *c, mctx *m, const char *file_name, const char *text)
{
    char id[300];
    snprintf(id, sizeof id, "%s", file_name);
    char *dot = strrchr(id, '.'), *slash = strrchr(id, '/');
    if (dot && dot != id && (!slash || dot > slash + 1))
        *dot = 0;
    char *audio = flm_path_join(m->dir, file_name);
    flm_utterance *u = audio ? align_add_utt(c->t, m->path, c->line, id, audio) : NULL;
    flm_free(audio);
    if (!u || !align_add_seg(u, text, strlen(text), 0, INFINITY, -1, c->line, 0))
        return FLM_ENOMEM;
    return 0;
}

static int hf_line(void *ctx, chk *c, json_t *o)
{
    mctx *m = ctx;
    const char *fn = NULL, *text = NULL, *col = m->o->text_column;
    if (str_field(c, o, "", "file_name", 1, 0, &fn, NULL, 0) > 0)
        c->id = fn;
    for (size_t k = 0; !col && k < 3; k++)
        if (json_object_get(o, hf_text_keys[k]))
            col = hf_text_keys[k];
    if (!col)
        chk_reject(c, "transcription", "%s",
                   "missing (expected a string; also no \"text\" or \"sentence\")");
    else
        str_field(c, o, "", col, 2, 0, &text, NULL, 0);
    if (c->bad)
        return 0;
    return hf_add(c, m, fn, text);
}

/* One CSV record (RFC 4180: fields separated by commas, optionally quoted; "" is a quote inside
 * a quoted field, which may hold commas and line breaks) from data[*pos]; *line advances by
 * the line breaks crossed. Fields are written NUL-separated into buf. 0 ok, -1 an unterminated
 * quote, -2 a quote inside an unquoted field or text after a closing quote. */
static int csv_record(const char *data, size_t size, size_t *pos, int32_t *line, char *buf,
                      size_t *n_fields, size_t *field_off, size_t max_fields)
{
    size_t i = *pos, w = 0;
    *n_fields = 0;
    for (;;) {
        if (*n_fields < max_fields)
            field_off[*n_fields] = w;
        (*n_fields)++;
        if (i < size && data[i] == '"') {
            i++;
            for (;;) {
                if (i >= size)
                    return -1;
                if (data[i] == '"') {
                    if (i + 1 < size && data[i + 1] == '"') {
                        buf[w++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (data[i] == '\n')
                    (*line)++;
                buf[w++] = data[i++];
            }
            if (i < size && data[i] != ',' && data[i] != '\n' && data[i] != '\r')
                return -2;
        } else {
            while (i < size && data[i] != ',' && data[i] != '\n' && data[i] != '\r') {
                if (data[i] == '"')
                    return -2;
                buf[w++] = data[i++];
            }
        }
        buf[w++] = 0;
        if (i < size && data[i] == ',') {
            i++;
            continue;
        }
        if (i < size && data[i] == '\r')
            i++;
        if (i < size && data[i] == '\n')
            i++;
        (*line)++;
        *pos = i;
        return 0;
    }
}

static int import_hf_csv(flm_transcript *t, const char *path, const char *data, size_t size,
                         mctx *m, flm_error *err)
{
    enum { MAX_FIELDS = 1024 };
    char *buf = flm_malloc(size + 1);
    size_t *off = flm_malloc(MAX_FIELDS * sizeof *off);
    char **hdr = flm_malloc(MAX_FIELDS * sizeof *hdr);
    char *hbuf = NULL;
    int rc = 0;
    if (!buf || !off || !hdr) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t pos = 0, n_hdr = 0;
    int32_t line = 1;
    if (size >= 3 && !memcmp(data, "\xef\xbb\xbf", 3))
        pos = 3;
    if (csv_record(data, size, &pos, &line, buf, &n_hdr, off, MAX_FIELDS) < 0 ||
        n_hdr > MAX_FIELDS) {
        rc = flm_error_set(err, FLM_EFORMAT,
                           "%s: line 1: expected a CSV header row (at most %d "
                           "columns)",
                           path, MAX_FIELDS);
        goto done;
    }
    size_t hsize = off[n_hdr - 1] + strlen(buf + off[n_hdr - 1]) + 1;
    if (!(hbuf = flm_malloc(hsize))) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    memcpy(hbuf, buf, hsize);
    size_t fn_col = SIZE_MAX, text_col = SIZE_MAX;
    for (size_t k = 0; k < n_hdr; k++) {
        hdr[k] = hbuf + off[k];
        if (!strcmp(hdr[k], "file_name"))
            fn_col = k;
    }
    for (size_t q = 0; q < (m->o->text_column ? 1 : 3) && text_col == SIZE_MAX; q++)
        for (size_t k = 0; k < n_hdr && text_col == SIZE_MAX; k++)
            if (!strcmp(hdr[k], m->o->text_column ? m->o->text_column : hf_text_keys[q]))
                text_col = k;
    if (fn_col == SIZE_MAX || text_col == SIZE_MAX) {
        rc = flm_error_set(err, FLM_EFORMAT, "%s: line 1: the header has no \"%s\" column", path,
                           fn_col == SIZE_MAX  ? "file_name"
                           : m->o->text_column ? m->o->text_column
                                               : "transcription\", \"text\" or \"sentence");
        goto done;
    }
    while (pos < size) {
        int32_t start_line = line;
        size_t n = 0, rec_start = pos;
        int r = csv_record(data, size, &pos, &line, buf, &n, off, MAX_FIELDS);
        chk c = {.t = t, .path = path, .line = start_line};
        if (r < 0) {
            if (flm_transcript_reject(t, path, start_line, "", "", FLM_REJECT_PARSE, "%s",
                                      r == -1 ? "unterminated quoted field"
                                              : "a quote inside an unquoted field, or text "
                                                "after a closing quote"))
                goto nomem;
            if (r == -1)
                break;
            /* skip to the next line */
            const char *nl = memchr(data + rec_start, '\n', size - rec_start);
            pos = nl ? (size_t)(nl - data) + 1 : size;
            line = start_line + 1;
            continue;
        }
        if (n == 1 && !buf[0])
            continue; /* a blank line */
        if (n != n_hdr) {
            if (flm_transcript_reject(t, path, start_line, "", "", FLM_REJECT_PARSE,
                                      "expected %zu fields (the header's), got %zu", n_hdr, n))
                goto nomem;
            continue;
        }
        const char *fn = buf + off[fn_col], *text = buf + off[text_col];
        size_t tl = strlen(text);
        c.id = fn;
        if (!fn[0]) {
            chk_reject(&c, "file_name", "expected a non-empty string%s", "");
        } else if (flm_utf8_check(text, tl) != tl || flm_utf8_check(fn, strlen(fn)) != strlen(fn)) {
            if (flm_transcript_reject(t, path, start_line, hdr[text_col], fn, FLM_REJECT_BAD_UTF8,
                                      "invalid UTF-8"))
                goto nomem;
        } else if (hf_add(&c, m, fn, text)) {
            goto nomem;
        }
        if (c.nomem)
            goto nomem;
    }
    goto done;
nomem:
    rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
done:
    flm_free(buf);
    flm_free(off);
    flm_free(hdr);
    flm_free(hbuf);
    return rc;
}

int align_import_manifest(flm_transcript *t, int format, const char *path, const char *data,
                          size_t size, const flm_align_import_opts *o, flm_error *err)
{
    mctx m = {.path = path, .o = o};
    dir_of(path, m.dir, sizeof m.dir);
    align_file_stem(path, m.stem, sizeof m.stem);
    int rc = 0;
    switch (format) {
    case FLM_ALIGN_NEMO:
        rc = each_line(t, path, data, size, nemo_line, &m);
        break;
    case FLM_ALIGN_LHOTSE:
        return import_lhotse(t, path, data, size, &m, err);
    case FLM_ALIGN_MOSHI_FT:
        rc = each_line(t, path, data, size, moshift_line, &m);
        break;
    case FLM_ALIGN_HF: {
        size_t k = 0;
        while (k < size &&
               (data[k] == ' ' || data[k] == '\n' || data[k] == '\r' || data[k] == '\t'))
            k++;
        if (k < size && data[k] == '{')
            rc = each_line(t, path, data, size, hf_line, &m);
        else
            return import_hf_csv(t, path, data, size, &m, err);
        break;
    }
    }
    return rc ? flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path) : 0;
}

/* ---- Detection from the content -------------------------------------------------------------- */

static int detect_object(json_t *o, int *kind)
{
    if (json_object_get(o, "audio_filepath"))
        return FLM_ALIGN_NEMO;
    const char *type = align_get_str(o, "type");
    if ((type && (!strcmp(type, "MonoCut") || !strcmp(type, "MultiCut") ||
                  !strcmp(type, "MixedCut") || !strcmp(type, "PaddingCut"))) ||
        (json_object_get(o, "recording") && json_object_get(o, "supervisions"))) {
        *kind = 'c';
        return FLM_ALIGN_LHOTSE;
    }
    if (json_object_get(o, "sources") && json_object_get(o, "sampling_rate")) {
        *kind = 'r';
        return FLM_ALIGN_LHOTSE;
    }
    if (json_object_get(o, "recording_id") && json_object_get(o, "start")) {
        *kind = 's';
        return FLM_ALIGN_LHOTSE;
    }
    if (json_object_get(o, "file_name"))
        return FLM_ALIGN_HF;
    if (json_object_get(o, "audio"))
        return FLM_ALIGN_JSONL;
    if (json_object_get(o, "path") && json_object_get(o, "duration"))
        return FLM_ALIGN_MOSHI_FT;
    if (json_object_get(o, "alignments"))
        return FLM_ALIGN_MOSHI;
    if (json_object_get(o, "segments"))
        return FLM_ALIGN_WHISPER;
    if (json_object_get(o, "sentence_info"))
        return FLM_ALIGN_FUNASR;
    return 0;
}

int flm_align_detect_format(const char *data, size_t size, int *lhotse_kind)
{
    int kind = 0, f = 0;
    size_t i = 0;
    if (size >= 3 && !memcmp(data, "\xef\xbb\xbf", 3))
        i = 3;
    while (i < size && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    const char *p = data + i;
    size_t n = size - i;
    if (n >= 6 && !memcmp(p, "WEBVTT", 6)) {
        f = FLM_ALIGN_VTT;
    } else if (n && (p[0] == '{' || p[0] == '[')) {
        /* the first line alone (JSONL), else the whole document */
        const char *nl = memchr(p, '\n', n);
        json_t *o = json_loadb(p, nl ? (size_t)(nl - p) : n, 0, NULL);
        if (!o && nl)
            o = json_loadb(p, n, 0, NULL);
        if (json_is_object(o))
            f = detect_object(o, &kind);
        else if (json_is_array(o) && json_is_object(json_array_get(o, 0)) &&
                 json_object_get(json_array_get(o, 0), "sentence_info"))
            f = FLM_ALIGN_FUNASR;
        json_decref(o);
    } else if (n) {
        /* SRT: a timing line "00:00:01,000 --> ..." among the first lines; CSV: a header row
         * with a file_name column */
        const char *nl = memchr(p, '\n', n);
        size_t first = nl ? (size_t)(nl - p) : n;
        const char *arrow = NULL;
        for (size_t k = 0; k + 3 <= n && k < 512 && !arrow; k++)
            if (!memcmp(p + k, "-->", 3))
                arrow = p + k;
        if (arrow && memchr(p, ',', (size_t)(arrow - p)) && memchr(p, ':', (size_t)(arrow - p)))
            f = FLM_ALIGN_SRT;
        else {
            for (size_t k = 0; k + 9 <= first; k++)
                if (!memcmp(p + k, "file_name", 9) &&
                    (k == 0 || p[k - 1] == ',' || p[k - 1] == '"'))
                    f = FLM_ALIGN_HF;
        }
    }
    if (lhotse_kind)
        *lhotse_kind = kind;
    return f;
}
