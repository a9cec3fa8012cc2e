/* The utterance model: rejects, validation, frames, JSON output, duplicate-id set. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "align_internal.h"
#include "flm_alloc.h"
#include "flm_align.h"

flm_align_params flm_align_default_params(void)
{
    flm_align_params p = {
        .max_duration = 20.0,
        .max_tokens = 200,
        .min_chars = 3,
        .overlap_tolerance = 0.05,
        .audio_tolerance = 0.1,
        .max_rate = 15.0,
        .min_rate = 0.3,
        .search_window = 1.5,
        .margin = 0.04,
        .hop = 0.01,
        .silence_db = 40.0,
    };
    return p;
}

static const char *const reason_names[FLM_REJECT_N_REASONS] = {
    [FLM_REJECT_PARSE] = "parse_error",           [FLM_REJECT_BAD_UTF8] = "bad_utf8",
    [FLM_REJECT_EMPTY_TEXT] = "empty_text",       [FLM_REJECT_NEGATIVE_TIME] = "negative_time",
    [FLM_REJECT_REVERSED_TIME] = "reversed_time", [FLM_REJECT_OVERLAP] = "overlap",
    [FLM_REJECT_OUT_OF_AUDIO] = "out_of_audio",   [FLM_REJECT_MISSING_AUDIO] = "missing_audio",
    [FLM_REJECT_BAD_AUDIO] = "bad_audio",         [FLM_REJECT_BAD_CHANNEL] = "bad_channel",
    [FLM_REJECT_DUPLICATE_ID] = "duplicate_id",   [FLM_REJECT_RATE] = "speaking_rate",
    [FLM_REJECT_NO_SENTENCES] = "no_sentences",
};

const char *flm_align_reason_name(int reason)
{
    if (reason <= 0 || reason >= FLM_REJECT_N_REASONS)
        return "unknown";
    return reason_names[reason];
}

int flm_align_format_from_name(const char *name)
{
    static const struct {
        const char *name;
        int format;
    } tab[] = {{"whisper", FLM_ALIGN_WHISPER},   {"funasr", FLM_ALIGN_FUNASR},
               {"srt", FLM_ALIGN_SRT},           {"vtt", FLM_ALIGN_VTT},
               {"moshi", FLM_ALIGN_MOSHI},       {"jsonl", FLM_ALIGN_JSONL},
               {"nemo", FLM_ALIGN_NEMO},         {"lhotse", FLM_ALIGN_LHOTSE},
               {"moshi-ft", FLM_ALIGN_MOSHI_FT}, {"hf-audiofolder", FLM_ALIGN_HF}};
    for (size_t i = 0; name && i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(name, tab[i].name))
            return tab[i].format;
    return 0;
}

const char *flm_align_format_name(int format)
{
    static const char *const names[] = {"",       "whisper",  "funasr",        "srt",
                                        "vtt",    "moshi",    "jsonl",         "nemo",
                                        "lhotse", "moshi-ft", "hf-audiofolder"};
    return format > 0 && format < (int)(sizeof names / sizeof names[0]) ? names[format] : "";
}

static void utterance_free(flm_utterance *u)
{
    flm_free(u->id);
    flm_free(u->audio);
    flm_free(u->language);
    flm_free(u->speaker);
    flm_free(u->corpus);
    flm_free(u->file);
    for (size_t j = 0; j < u->n_segs; j++) {
        flm_free(u->segs[j].text);
        for (size_t k = 0; k < u->segs[j].n_words; k++)
            flm_free(u->segs[j].words[k].text);
        flm_free(u->segs[j].words);
    }
    flm_free(u->segs);
    for (size_t j = 0; j < u->n_sents; j++)
        flm_free(u->sents[j].text);
    flm_free(u->sents);
    memset(u, 0, sizeof *u);
}

void flm_transcript_free(flm_transcript *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_utts; i++)
        utterance_free(&t->utts[i]);
    flm_free(t->utts);
    for (size_t i = 0; i < t->n_rejects; i++) {
        flm_free(t->rejects[i].file);
        flm_free(t->rejects[i].where);
        flm_free(t->rejects[i].id);
        flm_free(t->rejects[i].detail);
    }
    flm_free(t->rejects);
    memset(t, 0, sizeof *t);
}

static int reject_v(flm_transcript *t, const char *file, int32_t line, const char *where,
                    const char *id, int reason, const char *fmt, va_list ap)
{
    if (flm_grow((void **)&t->rejects, &t->cap_rejects, t->n_rejects + 1, sizeof *t->rejects))
        return FLM_ENOMEM;
    char detail[512];
    vsnprintf(detail, sizeof detail, fmt, ap);
    flm_align_reject *r = &t->rejects[t->n_rejects];
    memset(r, 0, sizeof *r);
    r->line = line;
    r->reason = reason;
    r->file = flm_strdup(file ? file : "");
    r->where = flm_strdup(where ? where : "");
    r->id = flm_strdup(id ? id : "");
    r->detail = flm_strdup(detail);
    if (!r->file || !r->where || !r->id || !r->detail) {
        flm_free(r->file);
        flm_free(r->where);
        flm_free(r->id);
        flm_free(r->detail);
        return FLM_ENOMEM;
    }
    t->n_rejects++;
    return 0;
}

int flm_transcript_reject(flm_transcript *t, const char *file, int32_t line, const char *where,
                          const char *id, int reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = reject_v(t, file, line, where, id, reason, fmt, ap);
    va_end(ap);
    return rc;
}

int flm_transcript_reject_utterance(flm_transcript *t, size_t i, int reason, const char *fmt, ...)
{
    flm_utterance *u = &t->utts[i];
    u->rejected = reason;
    va_list ap;
    va_start(ap, fmt);
    int rc = reject_v(t, u->file, u->line, "", u->id, reason, fmt, ap);
    va_end(ap);
    return rc;
}

static int reject_seg(flm_transcript *t, flm_utterance *u, flm_align_segment *s, int reason,
                      const char *fmt, ...) FLM_PRINTF(5, 6);
static int reject_seg(flm_transcript *t, flm_utterance *u, flm_align_segment *s, int reason,
                      const char *fmt, ...)
{
    char where[64];
    snprintf(where, sizeof where, "segment %d", (int)s->index);
    s->rejected = reason;
    va_list ap;
    va_start(ap, fmt);
    int rc = reject_v(t, u->file, s->line ? s->line : u->line, where, u->id, reason, fmt, ap);
    va_end(ap);
    return rc;
}

/* Drops word timestamps that are not ordered and inside the segment: the proportional estimate
 * is used instead of trusting them. */
static void check_words(flm_align_segment *s, double tol)
{
    double prev = s->start - tol;
    int ok = 1;
    for (size_t k = 0; k < s->n_words && ok; k++) {
        const flm_align_word *w = &s->words[k];
        ok = w->start >= prev - tol && w->end >= w->start && w->end <= s->end + tol;
        prev = w->end;
    }
    if (!ok) {
        for (size_t k = 0; k < s->n_words; k++)
            flm_free(s->words[k].text);
        flm_free(s->words);
        s->words = NULL;
        s->n_words = 0;
    }
}

int flm_transcript_validate(flm_transcript *t, size_t i, const flm_align_params *p,
                            const flm_tokenizer *tok)
{
    flm_utterance *u = &t->utts[i];
    if (u->rejected)
        return 0;
    double prev_end = -1;
    size_t n_ok = 0;
    int rc = 0;
    for (size_t j = 0; j < u->n_segs && !rc; j++) {
        flm_align_segment *s = &u->segs[j];
        if (s->rejected)
            continue;
        size_t len = strlen(s->text);
        size_t bad = flm_utf8_check(s->text, len);
        if (bad != len) {
            rc = reject_seg(t, u, s, FLM_REJECT_BAD_UTF8, "invalid UTF-8 at byte %zu", bad);
            continue;
        }
        if (flm_sentence_weight(s->text, 0, len) == 0) {
            rc = reject_seg(t, u, s, FLM_REJECT_EMPTY_TEXT, "no letters in '%.40s'", s->text);
            continue;
        }
        if (isinf(s->end) && s->end > 0) { /* a manifest line without times: the whole audio */
            if (u->duration < 0) {
                rc = reject_seg(t, u, s, FLM_REJECT_OUT_OF_AUDIO,
                                "no end time and the audio duration is unknown");
                continue;
            }
            s->end = u->duration;
        }
        if (!(s->start >= 0) || !(s->end >= 0)) {
            rc = reject_seg(t, u, s, FLM_REJECT_NEGATIVE_TIME, "start %.3f end %.3f", s->start,
                            s->end);
            continue;
        }
        if (s->end > 1e7) { /* 115 days: no real recording; keeps later arithmetic exact */
            rc = reject_seg(t, u, s, FLM_REJECT_OUT_OF_AUDIO, "end %.3g s is beyond 1e7 s", s->end);
            continue;
        }
        if (!(s->end > s->start)) {
            rc = reject_seg(t, u, s, FLM_REJECT_REVERSED_TIME, "end %.3f <= start %.3f", s->end,
                            s->start);
            continue;
        }
        if (s->start < prev_end - p->overlap_tolerance) {
            rc = reject_seg(t, u, s, FLM_REJECT_OVERLAP,
                            "start %.3f is before the previous segment's end %.3f", s->start,
                            prev_end);
            continue;
        }
        if (u->duration >= 0 &&
            (s->end > u->duration + p->audio_tolerance || s->start >= u->duration)) {
            rc = reject_seg(t, u, s, FLM_REJECT_OUT_OF_AUDIO,
                            "segment %.3f..%.3f s, audio is %.3f s", s->start, s->end, u->duration);
            continue;
        }
        if (s->start < prev_end)
            s->start = prev_end;
        if (u->duration >= 0 && s->end > u->duration)
            s->end = u->duration;
        if (!(s->end > s->start)) {
            rc = reject_seg(t, u, s, FLM_REJECT_OVERLAP, "nothing left after clipping");
            continue;
        }
        double dur = s->end - s->start;
        double rate = flm_align_count_tokens(tok, s->text, len) / dur;
        if (rate > p->max_rate || (dur > 2.0 && rate < p->min_rate)) {
            rc = reject_seg(t, u, s, FLM_REJECT_RATE,
                            "%.1f tokens/s over %.2f s (expected %.1f..%.1f)", rate, dur,
                            p->min_rate, p->max_rate);
            continue;
        }
        check_words(s, p->overlap_tolerance);
        prev_end = s->end;
        n_ok++;
    }
    if (!rc && n_ok == 0)
        rc = flm_transcript_reject_utterance(t, i, FLM_REJECT_NO_SENTENCES,
                                             "no usable segment (%zu in the input)", u->n_segs);
    return rc;
}

int flm_align_language_from_code(const char *code)
{
    if (!code)
        return FLM_LANG_AUTO;
    if (!strncasecmp(code, "zh", 2) || !strcasecmp(code, "cmn") || !strcasecmp(code, "yue") ||
        !strcasecmp(code, "chinese") || !strcasecmp(code, "mandarin") ||
        !strcasecmp(code, "cantonese"))
        return FLM_LANG_ZH;
    return code[0] ? FLM_LANG_EN : FLM_LANG_AUTO;
}

void flm_align_frames(double start, double end, int32_t rate, int32_t samples_per_frame,
                      int64_t *start_frame, int64_t *end_frame)
{
    /* saturate before converting: a double beyond int64 range is undefined behaviour */
    const double lim = 4.0e18;
    double d0 = floor(start * rate + 0.5), d1 = floor(end * rate + 0.5);
    d0 = d0 < 0 ? 0 : d0 > lim ? lim : d0;
    d1 = d1 < 0 ? 0 : d1 > lim ? lim : d1;
    int64_t s0 = (int64_t)d0, s1 = (int64_t)d1;
    if (s1 < s0)
        s1 = s0;
    *start_frame = s0 / samples_per_frame;
    *end_frame = (s1 + samples_per_frame - 1) / samples_per_frame;
}

static double round_ms(double x)
{
    return floor(x * 1000.0 + 0.5) / 1000.0;
}

int flm_utterance_finish(flm_transcript *t, size_t i, const flm_align_params *p,
                         const flm_codec_profile *codec, const flm_tokenizer *tok)
{
    flm_utterance *u = &t->utts[i];
    if (u->rejected)
        return 0;
    size_t w = 0;
    int rc = 0;
    for (size_t j = 0; j < u->n_sents; j++) {
        flm_sentence *s = &u->sents[j];
        s->start = round_ms(s->start);
        s->end = round_ms(s->end);
        double dur = s->end - s->start;
        size_t len = strlen(s->text);
        double rate = dur > 0 ? flm_align_count_tokens(tok, s->text, len) / dur : INFINITY;
        if (!rc && (rate > p->max_rate || (dur > 2.0 && rate < p->min_rate))) {
            char where[64];
            snprintf(where, sizeof where, "sentence %zu", j);
            rc = flm_transcript_reject(t, u->file, u->line, where, u->id, FLM_REJECT_RATE,
                                       "%.1f tokens/s over %.3f s in '%.60s'", rate, dur, s->text);
            flm_free(s->text);
            continue;
        }
        flm_align_frames(s->start, s->end, codec->sample_rate, codec->samples_per_frame,
                         &s->start_frame, &s->end_frame);
        u->sents[w++] = *s;
    }
    u->n_sents = w;
    if (!rc && w == 0)
        rc = flm_transcript_reject_utterance(t, i, FLM_REJECT_NO_SENTENCES,
                                             "no sentence left after timing");
    return rc;
}

static json_t *str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

/* The word stream of an utterance's kept segments, for its sentences in order. */
typedef struct word_cursor {
    size_t seg, word;
    int done; /* a sentence could not be spelled: no words from there on */
} word_cursor;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Words for sentence s: the next words of the segments' timestamps, matched in order against the
 * sentence's text (the importers keep words trimmed; each is written with the spacing the text
 * has before it, so the texts concatenated are the sentence's text, as flm pack's word-level arms
 * require: docs/packing.md), with times valid and in order. NULL when they do not spell it; the
 * words stop there. */
static json_t *sentence_words(const flm_utterance *u, const flm_sentence *s, word_cursor *c)
{
    const char *text = s->text;
    size_t want = strlen(text), p = 0;
    json_t *arr = c->done ? NULL : json_array();
    double last = 0;
    while (arr) {
        while (c->seg < u->n_segs &&
               (u->segs[c->seg].rejected || c->word >= u->segs[c->seg].n_words)) {
            if (!u->segs[c->seg].rejected && u->segs[c->seg].n_words == 0)
                break; /* a kept segment without words: the stream has a hole */
            c->seg++, c->word = 0;
        }
        if (c->seg >= u->n_segs || u->segs[c->seg].n_words == 0)
            break;
        const flm_align_word *w = &u->segs[c->seg].words[c->word++];
        size_t n = strlen(w->text), q = p;
        if (n == 0)
            continue;
        while (q < want && is_space(text[q]))
            q++;
        if (q + n > want || memcmp(text + q, w->text, n) != 0 || !(w->start >= last) ||
            !(w->end >= w->start))
            break;
        json_t *o = json_object();
        json_object_set_new(o, "text", json_stringn(text + p, q + n - p));
        json_object_set_new(o, "start", json_real(round_ms(w->start)));
        json_object_set_new(o, "end", json_real(round_ms(w->end)));
        json_array_append_new(arr, o);
        last = w->start;
        p = q + n;
        if (p == want)
            return arr; /* spelled */
    }
    json_decref(arr);
    c->done = 1;
    return NULL;
}

int flm_utterance_to_json(const flm_utterance *u, char **out, flm_error *err)
{
    *out = NULL;
    json_t *o = json_object(), *arr = json_array();
    if (!o || !arr)
        goto nomem;
    json_object_set_new(o, "id", json_string(u->id));
    json_object_set_new(o, "audio", json_string(u->audio));
    json_object_set_new(o, "channel", json_integer(u->channel));
    json_object_set_new(o, "language", str_or_null(u->language));
    json_object_set_new(o, "speaker", str_or_null(u->speaker));
    json_object_set_new(o, "corpus", str_or_null(u->corpus));
    json_object_set_new(o, "duration", json_real(round_ms(u->duration)));
    word_cursor wc = {0, 0, 0};
    for (size_t j = 0; j < u->n_sents; j++) {
        const flm_sentence *s = &u->sents[j];
        json_t *so = json_object();
        if (!so || json_array_append_new(arr, so))
            goto nomem;
        json_object_set_new(so, "text", json_string(s->text));
        json_object_set_new(so, "start", json_real(s->start));
        json_object_set_new(so, "end", json_real(s->end));
        json_object_set_new(so, "start_frame", json_integer(s->start_frame));
        json_object_set_new(so, "end_frame", json_integer(s->end_frame));
        json_object_set_new(so, "confidence",
                            s->confidence >= 0 ? json_real(s->confidence) : json_null());
        json_t *words = sentence_words(u, s, &wc);
        if (words)
            json_object_set_new(so, "words", words);
    }
    json_object_set_new(o, "sentences", arr);
    arr = NULL;
    char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!txt)
        return flm_error_set(err, FLM_ENOMEM, "%s: cannot serialize utterance", u->id);
    *out = flm_strdup(txt);
    free(txt);
    return *out ? 0 : flm_error_set(err, FLM_ENOMEM, "out of memory");
nomem:
    json_decref(o);
    json_decref(arr);
    return flm_error_set(err, FLM_ENOMEM, "out of memory");
}

/* ---- Duplicate ids: open addressing on FNV-1a ------------------------------------------------ */
struct flm_align_idset {
    char **slots; /* [cap] NULL or an owned id */
    size_t cap, n;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

int flm_align_idset_create(flm_align_idset **s, flm_error *err)
{
    *s = flm_calloc(1, sizeof **s);
    if (*s)
        (*s)->slots = flm_calloc(64, sizeof *(*s)->slots);
    if (!*s || !(*s)->slots) {
        flm_free(*s);
        *s = NULL;
        return flm_error_set(err, FLM_ENOMEM, "out of memory");
    }
    (*s)->cap = 64;
    return 0;
}

static size_t idset_find(char **slots, size_t cap, const char *id)
{
    size_t k = (size_t)fnv1a(id) & (cap - 1);
    while (slots[k] && strcmp(slots[k], id))
        k = (k + 1) & (cap - 1);
    return k;
}

int flm_align_idset_add(flm_align_idset *s, const char *id)
{
    size_t k = idset_find(s->slots, s->cap, id);
    if (s->slots[k])
        return 1;
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap * 2;
        char **slots = flm_calloc(cap, sizeof *slots);
        if (!slots)
            return FLM_ENOMEM;
        for (size_t j = 0; j < s->cap; j++)
            if (s->slots[j])
                slots[idset_find(slots, cap, s->slots[j])] = s->slots[j];
        flm_free(s->slots);
        s->slots = slots;
        s->cap = cap;
        k = idset_find(s->slots, s->cap, id);
    }
    if (!(s->slots[k] = flm_strdup(id)))
        return FLM_ENOMEM;
    s->n++;
    return 0;
}

void flm_align_idset_destroy(flm_align_idset **s)
{
    if (!s || !*s)
        return;
    for (size_t j = 0; j < (*s)->cap; j++)
        flm_free((*s)->slots[j]);
    flm_free((*s)->slots);
    flm_free(*s);
    *s = NULL;
}
