/* bench_align - alignment throughput and its cost relative to decoding the audio (issue 6).
 *
 *     build/bench/bench_align [minutes=10] [repeats=3] [tokenizer.json]
 *
 * 1. Import + split: a Whisper JSON of 20000 segments (2-3 en or zh sentences each, no words)
 *    goes through import, validation, splitting and frames (no audio); reported in sentences/s
 *    and MB/s of JSON. The same for an SRT file of the same segments, and with the Qwen
 *    tokenizer for token counts when a tokenizer.json is given (else the estimate).
 * 2. Refinement vs decode: espeak-ng speech (12 sentences, looped with 0.25-0.8 s pauses) of the
 *    given length, written as FLAC 24 kHz and as MP3 44.1 kHz (ffmpeg CLI), described by coarse
 *    segments of 2-3 sentences. Per file: decode (flm_audio_read_file to 24 kHz mono) and
 *    validate + split + refine + finish on the decoded samples, both CPU time of this process in
 *    the same run; the best of the repeats. The goal: alignment < 10 % of decoding.
 * CPU time because the machine may be shared: compare the ratios, not the absolute figures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flm_align.h"
#include "flm_alloc.h"
#include "flm_audio.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const pool_en[] = {
    "The weather was pleasant this morning.",
    "We walked to the station and caught the early train.",
    "Nobody expected the meeting to last so long.",
    "After dinner, we talked about our plans for the summer.",
    "Could you turn down the music, please?",
    "Dr. Smith arrived at 5 p.m. and left at 7.30 in the evening.",
};
static const char *const pool_zh[] = {
    "今天的天气非常好。",   "请把门关上，外面很冷。", "你知道火车站在哪里吗？",
    "春天来了，花都开了。", "这家饭店的菜很好吃！",   "他说：“我们明天见。”",
};

static uint64_t rng = 88172645463325252ull;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *s)
{
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) {
        b->cap = 2 * (b->n + l + 1);
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, s, l + 1);
    b->n += l;
}

static void srt_time(char *out, double t)
{
    int ms = (int)lround(t * 1000);
    sprintf(out, "%02d:%02d:%02d,%03d", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

/* Runs the text pipeline; returns sentences produced. */
static const flm_tokenizer *g_tok;

static int64_t pipeline(int format, const sbuf *doc, const float *x, int64_t n, int32_t rate)
{
    flm_transcript t = {0};
    flm_error err = {0};
    flm_align_params p = flm_align_default_params();
    flm_profiles prof;
    flm_profiles_default(&prof);
    int64_t n_sents = 0;
    if (flm_transcript_import(&t, format, "bench", doc->p, doc->n, "bench.wav", &err) < 0) {
        fprintf(stderr, "bench_align: %s\n", err.msg);
        exit(1);
    }
    for (size_t i = 0; i < t.n_utts; i++) {
        if (x)
            t.utts[i].duration = (double)n / rate;
        if (flm_transcript_validate(&t, i, &p, g_tok) ||
            flm_utterance_split(&t.utts[i], &p, g_tok, &err) ||
            (x && flm_utterance_refine(&t.utts[i], x, n, rate, &p, &err)) ||
            flm_utterance_finish(&t, i, &p, &prof.codec, g_tok))
            exit(1);
        n_sents += (int64_t)t.utts[i].n_sents;
    }
    if (t.n_rejects)
        fprintf(stderr, "bench_align: %zu rejects (first: %s)\n", t.n_rejects, t.rejects[0].detail);
    flm_transcript_free(&t);
    return n_sents;
}

static void text_bench(int repeats, const flm_tokenizer *tok)
{
    sbuf js = {0}, srt = {0};
    char line[4096], a[32], b[32];
    put(&js, "{\"segments\": [");
    double t = 0;
    int n_sent = 0;
    for (int k = 0; k < 20000; k++) {
        int zh = k & 1, m = 2 + (uniform() < 0.5);
        char text[2048] = "";
        for (int q = 0; q < m; q++) {
            const char *s =
                zh ? pool_zh[(size_t)(uniform() * 6)] : pool_en[(size_t)(uniform() * 6)];
            if (q && !zh)
                strcat(text, " ");
            strcat(text, s);
        }
        n_sent += m;
        double d = 2.5 * m;
        char esc[2200];
        size_t o = 0;
        for (const char *c = text; *c; c++) {
            if (*c == '"')
                esc[o++] = '\\';
            esc[o++] = *c;
        }
        esc[o] = 0;
        snprintf(line, sizeof line, "%s{\"start\": %.3f, \"end\": %.3f, \"text\": \"%s\"}",
                 k ? ", " : "", t, t + d, esc);
        put(&js, line);
        srt_time(a, t);
        srt_time(b, t + d);
        snprintf(line, sizeof line, "%d\n%s --> %s\n%s\n\n", k + 1, a, b, text);
        put(&srt, line);
        t += d + 0.3;
    }
    put(&js, "]}");
    const struct {
        const char *name;
        int format;
        sbuf *doc;
    } c[] = {{"whisper json", FLM_ALIGN_WHISPER, &js},
             {"srt", FLM_ALIGN_SRT, &srt},
             {"whisper+qwen", FLM_ALIGN_WHISPER, &js}};
    for (int i = 0; i < 2 + (tok != NULL); i++) {
        g_tok = i == 2 ? tok : NULL;
        double best = 1e30;
        int64_t ns = 0;
        for (int r = 0; r < repeats; r++) {
            double t0 = cpu_now();
            ns = pipeline(c[i].format, c[i].doc, NULL, 0, 0);
            double dt = cpu_now() - t0;
            if (dt < best)
                best = dt;
        }
        printf("import+split %-12s: %d sentences in, %lld out, %.3f s CPU: %.0f sentences/s, "
               "%.1f MB/s of input\n",
               c[i].name, n_sent, (long long)ns, best, (double)ns / best,
               (double)c[i].doc->n / best / 1e6);
    }
    g_tok = NULL;
    free(js.p);
    free(srt.p);
}

static int audio_bench(double minutes, int repeats)
{
    enum { RATE = 24000 };
    char dir[] = "/tmp/flm-bench-align-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    flm_audio_params ap = flm_audio_default_params();
    flm_error err = {0};
    /* the speech clips, cut to their speech */
    float *clip[12];
    int64_t clip_n[12];
    const char *clip_text[12];
    for (int i = 0; i < 12; i++) {
        char path[256], cmd[1024];
        int zh = i >= 6;
        clip_text[i] = zh ? pool_zh[i - 6] : pool_en[i];
        snprintf(path, sizeof path, "%s/c%d.wav", dir, i);
        snprintf(cmd, sizeof cmd, "espeak-ng -v %s -w '%s' '%s'", zh ? "cmn" : "en", path,
                 clip_text[i]);
        int32_t nch;
        if (system(cmd) != 0 ||
            flm_audio_read_file(path, &ap, &clip[i], &clip_n[i], &nch, &err) < 0) {
            fprintf(stderr, "bench_align: espeak-ng clip %d failed %s\n", i, err.msg);
            return 1;
        }
        int64_t a = 0, b = clip_n[i] - 1;
        while (a < b && fabsf(clip[i][a]) < 1e-3f)
            a++;
        while (b > a && fabsf(clip[i][b]) < 1e-3f)
            b--;
        memmove(clip[i], clip[i] + a, (size_t)(b + 1 - a) * sizeof(float));
        clip_n[i] = b + 1 - a;
    }
    int64_t cap = (int64_t)(minutes * 60 * RATE) + 30 * RATE, n = RATE / 2;
    float *mix = calloc((size_t)cap, sizeof *mix);
    sbuf js = {0};
    put(&js, "{\"segments\": [");
    int k = 0;
    char line[4096];
    while (n < cap - 30 * RATE) {
        int m = 2 + (uniform() < 0.5), lang = (k & 1) * 6;
        double s0 = (double)n / RATE - 0.1;
        char text[2048] = "";
        for (int q = 0; q < m; q++) {
            int c = lang + (int)(uniform() * 6);
            memcpy(mix + n, clip[c], (size_t)clip_n[c] * sizeof(float));
            n += clip_n[c];
            if (q && !lang)
                strcat(text, " ");
            strcat(text, clip_text[c]);
            if (q + 1 < m)
                n += (int64_t)((0.25 + 0.55 * uniform()) * RATE);
        }
        double s1 = (double)n / RATE + 0.1;
        n += (int64_t)((0.4 + 0.5 * uniform()) * RATE);
        char esc[2200];
        size_t o = 0;
        for (const char *c = text; *c; c++) {
            if (*c == '"')
                esc[o++] = '\\';
            esc[o++] = *c;
        }
        esc[o] = 0;
        snprintf(line, sizeof line, "%s{\"start\": %.3f, \"end\": %.3f, \"text\": \"%s\"}",
                 k++ ? ", " : "", s0 < 0 ? 0 : s0, s1, esc);
        put(&js, line);
    }
    put(&js, "]}");
    for (int64_t i = 0; i < n; i++)
        mix[i] += (float)((uniform() * 2 - 1) * 0.0017);
    char flac[300], mp3[300], cmd[1024];
    snprintf(flac, sizeof flac, "%s/speech.flac", dir);
    snprintf(mp3, sizeof mp3, "%s/speech.mp3", dir);
    if (flm_audio_write_file(flac, FLM_AUDIO_FLAC_S16, mix, n, 1, RATE, &err) < 0) {
        fprintf(stderr, "bench_align: %s\n", err.msg);
        return 1;
    }
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -i '%s' -ar 44100 -ac 2 -b:a 128k '%s'",
             flac, mp3);
    int have_mp3 = system(cmd) == 0;
    printf("audio: %.1f min of espeak-ng speech, %d coarse segments\n", (double)n / RATE / 60, k);
    const char *files[2] = {flac, mp3};
    const char *names[2] = {"flac 24 kHz mono", "mp3 44.1 kHz stereo 128k"};
    for (int f = 0; f < 1 + have_mp3; f++) {
        double best_dec = 1e30, best_al = 1e30;
        int64_t ns = 0, n_dec = 0;
        for (int r = 0; r < repeats; r++) {
            float *x = NULL;
            int32_t nch;
            double t0 = cpu_now();
            if (flm_audio_read_file(files[f], &ap, &x, &n_dec, &nch, &err) < 0) {
                fprintf(stderr, "bench_align: %s\n", err.msg);
                return 1;
            }
            double t1 = cpu_now();
            ns = pipeline(FLM_ALIGN_WHISPER, &js, x, n_dec, RATE);
            double t2 = cpu_now();
            flm_free(x);
            if (t1 - t0 < best_dec)
                best_dec = t1 - t0;
            if (t2 - t1 < best_al)
                best_al = t2 - t1;
        }
        printf("%-26s decode %.3f s CPU, align (import+split+refine) %.3f s CPU = %.2f %% of "
               "decode; %lld sentences\n",
               names[f], best_dec, best_al, 100 * best_al / best_dec, (long long)ns);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_align: could not remove %s\n", dir);
    for (int i = 0; i < 12; i++)
        flm_free(clip[i]);
    free(mix);
    free(js.p);
    return 0;
}

int main(int argc, char **argv)
{
    double minutes = argc > 1 ? atof(argv[1]) : 10;
    int repeats = argc > 2 ? atoi(argv[2]) : 3;
    if (minutes <= 0 || repeats <= 0) {
        fprintf(stderr, "usage: bench_align [minutes=10] [repeats=3] [tokenizer.json]\n");
        return 2;
    }
    flm_tokenizer *tok = NULL;
    if (argc > 3) {
        flm_error err = {0};
        flm_tokenizer_params tp = flm_tokenizer_default_params();
        if (flm_tokenizer_load(&tok, argv[3], &tp, &err) < 0) {
            fprintf(stderr, "bench_align: %s\n", err.msg);
            return 1;
        }
    }
    text_bench(repeats, tok);
    flm_tokenizer_destroy(&tok);
    if (system("espeak-ng --version > /dev/null 2>&1") != 0) {
        printf("espeak-ng not installed: refinement benchmark skipped\n");
        return 0;
    }
    return audio_bench(minutes, repeats);
}
