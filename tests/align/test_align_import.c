/* Golden outputs of every importer on hand-written samples and their malformed variants
 * (tests/align/golden/NAME -> NAME.expected): the imported utterances, the rejects with their
 * reasons, and the sentences after validation and splitting (no audio: estimated times).
 * FLM_REGEN=1 rewrites the .expected files (review the diff before committing). Utterances of
 * single-file formats get an audio duration of 10 s so that out_of_audio is exercised; manifest
 * lines keep theirs. Also: allocation-failure injection over every import. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flm_align.h"
#include "flm_alloc.h"
#include "flm_util.h"
#include "tap.h"

static const struct {
    int format;
    const char *name;
} cases[] = {
    {FLM_ALIGN_WHISPER, "whisper.json"},
    {FLM_ALIGN_WHISPER, "whisper_nowords.json"},
    {FLM_ALIGN_WHISPER, "whisper_bad_syntax.json"},
    {FLM_ALIGN_WHISPER, "whisper_no_segments.json"},
    {FLM_ALIGN_WHISPER, "whisper_bad_segments.json"},
    {FLM_ALIGN_FUNASR, "funasr.json"},
    {FLM_ALIGN_FUNASR, "funasr_object.json"},
    {FLM_ALIGN_FUNASR, "funasr_bad.json"},
    {FLM_ALIGN_SRT, "a.srt"},
    {FLM_ALIGN_SRT, "zh.srt"},
    {FLM_ALIGN_SRT, "srt_bad.srt"},
    {FLM_ALIGN_VTT, "a.vtt"},
    {FLM_ALIGN_VTT, "vtt_no_header.vtt"},
    {FLM_ALIGN_VTT, "vtt_bad.vtt"},
    {FLM_ALIGN_MOSHI, "moshi.json"},
    {FLM_ALIGN_MOSHI, "moshi_bad.json"},
    {FLM_ALIGN_MOSHI, "moshi_not_object.json"},
    {FLM_ALIGN_JSONL, "manifest.jsonl"},
    {FLM_ALIGN_JSONL, "manifest_bad.jsonl"},
};

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->n + (size_t)k + 1 > b->cap) { /* plain realloc: immune to injected failures */
        b->cap = 2 * (b->n + (size_t)k + 1);
        if (!(b->p = realloc(b->p, b->cap)))
            abort();
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

/* Runs the text pipeline on one file and describes everything it produced. rel: the name
 * written in the output (independent of the source directory). */
static int describe(int format, const char *path, const char *rel, sbuf *out, int check_mem)
{
    char *data = NULL;
    size_t size = 0;
    flm_error err = {0};
    if (flm_read_file(path, &data, &size, 1 << 20, &err) < 0) {
        put(out, "read error: %s\n", err.msg);
        return err.code;
    }
    flm_transcript t = {0};
    flm_align_params ap = flm_align_default_params();
    flm_profiles prof;
    flm_profiles_default(&prof);
    int rc = flm_transcript_import(&t, format, rel, data, size, "audio.wav", &err);
    flm_free(data);
    if (rc == FLM_ENOMEM)
        goto done;
    if (rc < 0) {
        put(out, "error %s: %s\n", flm_error_name(rc), err.msg);
        rc = 0;
        goto done;
    }
    for (size_t i = 0; i < t.n_utts && !rc; i++) {
        flm_utterance *u = &t.utts[i];
        if (format != FLM_ALIGN_JSONL)
            u->duration = 10.0;
        rc = flm_transcript_validate(&t, i, &ap, NULL);
        if (!rc)
            rc = flm_utterance_split(u, &ap, NULL, &err);
        if (!rc)
            rc = flm_utterance_finish(&t, i, &ap, &prof.codec, NULL);
    }
    if (rc)
        goto done;
    for (size_t i = 0; i < t.n_utts; i++) {
        const flm_utterance *u = &t.utts[i];
        put(out,
            "utterance id=%s audio=%s channel=%d language=%s speaker=%s corpus=%s "
            "duration=%.3f line=%d rejected=%s\n",
            u->id, u->audio, (int)u->channel, u->language, u->speaker, u->corpus, u->duration,
            (int)u->line, u->rejected ? flm_align_reason_name(u->rejected) : "no");
        for (size_t k = 0; k < u->n_segs; k++) {
            const flm_align_segment *s = &u->segs[k];
            put(out, "  segment %d line=%d [%.3f, %.3f] confidence=%.3f words=%zu%s%s \"%s\"\n",
                (int)s->index, (int)s->line, s->start, s->end, s->confidence, s->n_words,
                s->rejected ? " rejected=" : "",
                s->rejected ? flm_align_reason_name(s->rejected) : "", s->text);
        }
        for (size_t k = 0; k < u->n_sents; k++) {
            const flm_sentence *s = &u->sents[k];
            put(out, "  sentence [%.3f, %.3f] frames [%lld, %lld) confidence=%.3f \"%s\"\n",
                s->start, s->end, (long long)s->start_frame, (long long)s->end_frame, s->confidence,
                s->text);
        }
    }
    for (size_t k = 0; k < t.n_rejects; k++) {
        const flm_align_reject *r = &t.rejects[k];
        put(out, "reject %s:%d %s id=%s %s: %s\n", r->file, (int)r->line, r->where, r->id,
            flm_align_reason_name(r->reason), r->detail);
    }
done:
    flm_transcript_free(&t);
    (void)check_mem;
    return rc;
}

int main(void)
{
    const char *dir = SOURCE_ROOT "/tests/align/golden";
    int regen = getenv("FLM_REGEN") && atoi(getenv("FLM_REGEN"));
    char path[1024], exp_path[1100];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        snprintf(exp_path, sizeof exp_path, "%s.expected", path);
        sbuf got = {0};
        describe(cases[i].format, path, cases[i].name, &got, 0);
        if (regen) {
            FILE *f = fopen(exp_path, "wb");
            TAP_OK(f && fwrite(got.p, 1, got.n, f) == got.n && fclose(f) == 0, "wrote %s",
                   exp_path);
        } else {
            char *want = NULL;
            size_t want_size = 0;
            flm_error err = {0};
            int rc = flm_read_file(exp_path, &want, &want_size, 1 << 20, &err);
            int same = rc == 0 && want_size == got.n && !memcmp(want, got.p, got.n);
            if (!TAP_OK(same, "golden %s", cases[i].name))
                tap_diag("got:\n%s\nwant:\n%s", got.p, rc ? err.msg : want);
            flm_free(want);
        }
        /* every allocation failure gives FLM_ENOMEM (or changes nothing) and frees everything
         * (ASan checks the leaks) */
        int64_t n_alloc;
        {
            sbuf tmp = {0};
            flm_alloc_fail_after(-1);
            flm_alloc_count();
            describe(cases[i].format, path, cases[i].name, &tmp, 1);
            n_alloc = flm_alloc_count();
            free(tmp.p);
        }
        int bad = 0;
        for (int64_t k = 0; k < n_alloc && k < 400; k++) {
            sbuf tmp = {0};
            flm_alloc_fail_after(k);
            int rc = describe(cases[i].format, path, cases[i].name, &tmp, 1);
            flm_alloc_fail_after(-1);
            /* either the failure is reported, or it did not matter: the same description */
            bad += rc != FLM_ENOMEM && (rc != 0 || tmp.n != got.n || memcmp(tmp.p, got.p, got.n));
            free(tmp.p);
        }
        TAP_OK(!bad, "%s: %lld injected allocation failures handled", cases[i].name,
               (long long)(n_alloc < 400 ? n_alloc : 400));
        free(got.p);
    }
    return tap_done();
}
