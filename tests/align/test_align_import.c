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
#include <unistd.h>

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
    /* issue 21: other tools' manifests, written as those tools write them */
    {FLM_ALIGN_NEMO, "nemo.jsonl"},
    {FLM_ALIGN_NEMO, "nemo_bad.jsonl"},
    {FLM_ALIGN_LHOTSE, "cuts.jsonl"},
    {FLM_ALIGN_LHOTSE, "cuts.jsonl.gz"},
    {FLM_ALIGN_LHOTSE, "cuts_bad.jsonl"},
    {FLM_ALIGN_LHOTSE, "lhotse_supervisions_dev.jsonl"},
    {FLM_ALIGN_MOSHI_FT, "moshift.jsonl"},
    {FLM_ALIGN_HF, "hf/metadata.csv"},
    {FLM_ALIGN_HF, "hf_bad.csv"},
    {FLM_ALIGN_HF, "hf_nocol.csv"},
    {FLM_ALIGN_HF, "hfj/metadata.jsonl"},
};

/* --from auto: what each sample is detected as (from its content; 0: not detected) */
static const struct {
    const char *name;
    int format, lhotse_kind;
} detect_cases[] = {
    {"whisper.json", FLM_ALIGN_WHISPER, 0},
    {"funasr.json", FLM_ALIGN_FUNASR, 0},
    {"funasr_object.json", FLM_ALIGN_FUNASR, 0},
    {"a.srt", FLM_ALIGN_SRT, 0},
    {"zh.srt", FLM_ALIGN_SRT, 0},
    {"a.vtt", FLM_ALIGN_VTT, 0},
    {"moshi.json", FLM_ALIGN_MOSHI, 0},
    {"manifest.jsonl", FLM_ALIGN_JSONL, 0},
    {"nemo.jsonl", FLM_ALIGN_NEMO, 0},
    {"cuts.jsonl", FLM_ALIGN_LHOTSE, 'c'},
    {"cuts.jsonl.gz", FLM_ALIGN_LHOTSE, 'c'},
    {"lhotse_supervisions_dev.jsonl", FLM_ALIGN_LHOTSE, 's'},
    {"lhotse_recordings_dev.jsonl", FLM_ALIGN_LHOTSE, 'r'},
    {"moshift.jsonl", FLM_ALIGN_MOSHI_FT, 0},
    {"hf/metadata.csv", FLM_ALIGN_HF, 0},
    {"hfj/metadata.jsonl", FLM_ALIGN_HF, 0},
    {"moshi_not_object.json", 0, 0},
};

static int single_file_format(int format)
{
    return format == FLM_ALIGN_WHISPER || format == FLM_ALIGN_FUNASR || format == FLM_ALIGN_SRT ||
           format == FLM_ALIGN_VTT || format == FLM_ALIGN_MOSHI ||
           format == FLM_ALIGN_HF; /* the duration comes from the audio */
}

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
    if (flm_align_read_input(path, 1 << 20, &data, &size, &err) < 0) {
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
        if (single_file_format(format))
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

/* gzip: detected by magic, concatenated members, the decompressed-size cap (a gzip bomb), and
 * truncated or corrupt streams. */
static void test_gzip(void)
{
    static const char plain[] = "{\"a\": 1}\n";
    /* gzip -n of plain, twice concatenated */
    static const unsigned char gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
                                       0xab, 0x56, 0x4a, 0x54, 0xb2, 0x52, 0x30, 0xac, 0xe5, 0x02,
                                       0x00, 0xfa, 0xa1, 0x47, 0x5c, 0x09, 0x00, 0x00, 0x00};
    unsigned char two[2 * sizeof gz];
    memcpy(two, gz, sizeof gz);
    memcpy(two + sizeof gz, gz, sizeof gz);
    char *out = NULL;
    size_t n = 0;
    flm_error err = {0};
    int rc = flm_align_gunzip("x", plain, strlen(plain), 100, &out, &n, &err);
    TAP_OK(rc == 0 && out == NULL, "gunzip: plain data is left as it is");
    rc = flm_align_gunzip("x", (const char *)gz, sizeof gz, 100, &out, &n, &err);
    TAP_OK(rc == 0 && out && n == strlen(plain) && !memcmp(out, plain, n) && out[n] == 0,
           "gunzip: one member");
    flm_free(out);
    rc = flm_align_gunzip("x", (const char *)two, sizeof two, 100, &out, &n, &err);
    TAP_OK(rc == 0 && n == 2 * strlen(plain) && !memcmp(out + n / 2, plain, n / 2),
           "gunzip: concatenated members");
    flm_free(out);
    rc = flm_align_gunzip("x", (const char *)gz, sizeof gz, 5, &out, &n, &err);
    TAP_OK(rc == FLM_ERANGE && out == NULL && strstr(err.msg, "more than 5 bytes"),
           "gunzip: over the cap: FLM_ERANGE (%s)", err.msg);
    rc = flm_align_gunzip("x", (const char *)gz, 14, 100, &out, &n, &err);
    TAP_OK(rc == FLM_EFORMAT && strstr(err.msg, "truncated"), "gunzip: truncated (%s)", err.msg);
    unsigned char bad[sizeof gz];
    memcpy(bad, gz, sizeof gz);
    bad[12] ^= 0xff;
    rc = flm_align_gunzip("x", (const char *)bad, sizeof bad, 100, &out, &n, &err);
    TAP_OK(rc == FLM_EFORMAT && strstr(err.msg, "gzip"), "gunzip: corrupt (%s)", err.msg);
    /* a bomb: 64 MiB of zeros compress to ~64 KiB; with a 1 MiB cap the decompression stops at
     * the cap instead of allocating the whole */
    size_t big = (size_t)64 << 20;
    FILE *p = popen("head -c 67108864 /dev/zero | gzip -1 -c", "r");
    unsigned char *bomb = malloc(1 << 20);
    size_t bn = p && bomb ? fread(bomb, 1, 1 << 20, p) : 0;
    if (p)
        pclose(p);
    rc = flm_align_gunzip("bomb.gz", (const char *)bomb, bn, 1 << 20, &out, &n, &err);
    TAP_OK(bn > 0 && bn < big / 100 && rc == FLM_ERANGE &&
               strstr(err.msg, "bomb.gz: gzip data decompresses to more than 1048576 bytes"),
           "gunzip: a %zu-byte gzip bomb stops at the cap (%s)", bn, err.msg);
    free(bomb);
}

int main(void)
{
    const char *dir = SOURCE_ROOT "/tests/align/golden";
    /* manifests name files relative to themselves (moshi-ft's alignments, Lhotse's recordings) */
    if (chdir(dir) != 0)
        return 1;
    test_gzip();
    for (size_t i = 0; i < sizeof detect_cases / sizeof detect_cases[0]; i++) {
        char *data = NULL;
        size_t size = 0;
        flm_error err = {0};
        int kind = -1, f = -1;
        if (flm_align_read_input(detect_cases[i].name, 1 << 20, &data, &size, &err) == 0)
            f = flm_align_detect_format(data, size, &kind);
        flm_free(data);
        TAP_OK(f == detect_cases[i].format && kind == detect_cases[i].lhotse_kind,
               "detect %s: %s (%c)", detect_cases[i].name, flm_align_format_name(f),
               kind > 0 ? kind : '-');
    }
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
