/* test_audio.c - FFmpeg decode vs the ffmpeg CLI, exact lengths, broken files, writers.
 * Test files are generated here with ffmpeg / sox / espeak-ng into a temporary directory. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_util.h"
#include "tap.h"

/* Decoded samples must equal the CLI's within this (observed: bit-identical, since both run the
 * same libswresample with the same options on the same decoded frames). */
#define TOLERANCE 1e-5

static char dir[256];
static int have_ffmpeg, have_sox, have_espeak;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int r = system(cmd);
    if (r != 0)
        tap_diag("command failed (%d): %s", r, cmd);
    return r;
}

static const char *path(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Reads a raw f32le file written by the ffmpeg CLI. */
static float *read_raw(const char *p, int64_t *n)
{
    char *data;
    size_t size;
    flm_error err = {0};
    if (flm_read_file(p, &data, &size, 1u << 30, &err) < 0) {
        tap_diag("%s", err.msg);
        *n = -1;
        return NULL;
    }
    *n = (int64_t)(size / 4);
    return (float *)(void *)data; /* flm_malloc'd buffer, 16-byte aligned by malloc */
}

static double max_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d)
            m = d != d ? INFINITY : d;
    }
    return m;
}

/* Decodes name with flm (mode) and with the CLI; compares lengths and samples. */
static void compare_with_cli(const char *name, int mode)
{
    char raw[600];
    snprintf(raw, sizeof raw, "%s.%s.raw", path(name), mode == FLM_AUDIO_MONO ? "mono" : "multi");
    if (sh("ffmpeg -nostdin -v error -y -threads 1 -i '%s' %s -ar 24000 -f f32le '%s'", path(name),
           mode == FLM_AUDIO_MONO ? "-ac 1" : "", raw) != 0) {
        TAP_OK(0, "%s: ffmpeg CLI reference", name);
        return;
    }
    int64_t n_ref;
    float *ref = read_raw(raw, &n_ref);
    flm_audio_params p = flm_audio_default_params();
    p.mode = mode;
    float *x = NULL;
    int64_t n = 0;
    int32_t nch = 0;
    flm_error err = {0};
    int r = flm_audio_read_file(path(name), &p, &x, &n, &nch, &err);
    if (r < 0)
        tap_diag("%s", err.msg);
    /* flm pads the one sample the resampler's flush may drop (see test_lengths) */
    if (r == 0 && (n - 1) * nch == n_ref && x[(n - 1) * nch] == 0.0f)
        n--;
    TAP_OK(r == 0 && n * nch == n_ref && n > 0, "%s (%s): %lld x %d samples, CLI %lld", name,
           mode == FLM_AUDIO_MONO ? "mono" : "per channel", (long long)n, (int)nch,
           (long long)n_ref);
    if (r == 0 && n * nch == n_ref) {
        double d = max_diff(x, ref, n_ref);
        TAP_OK(d <= TOLERANCE, "%s (%s): max |flm - ffmpeg CLI| = %g <= %g", name,
               mode == FLM_AUDIO_MONO ? "mono" : "per channel", d, TOLERANCE);
    }
    flm_free(x);
    flm_free(ref);
}

static void test_formats(void)
{
    if (!have_ffmpeg) {
        TAP_OK(1, "decode vs CLI # SKIP ffmpeg not found");
        return;
    }
    /* stereo 44.1 kHz s16 wav: two different tones so mixdown and channel order matter */
    sh("ffmpeg -nostdin -v error -y -f lavfi -i sine=f=440:r=44100:d=2.5 -f lavfi -i "
       "sine=f=1250:r=44100:d=2.5 -filter_complex '[0][1]amerge=inputs=2' -c:a pcm_s16le '%s'",
       path("st44.wav"));
    sh("ffmpeg -nostdin -v error -y -i '%s' -c:a libmp3lame -b:a 128k '%s'", path("st44.wav"),
       path("st44.mp3"));
    sh("ffmpeg -nostdin -v error -y -i '%s' -ar 48000 -c:a libopus '%s'", path("st44.wav"),
       path("st48.opus"));
    sh("ffmpeg -nostdin -v error -y -i '%s' -ac 1 -ar 22050 -c:a aac '%s'", path("st44.wav"),
       path("m22.m4a"));
    sh("ffmpeg -nostdin -v error -y -f lavfi -i anoisesrc=r=48000:d=1.7:a=0.3 -c:a flac '%s'",
       path("n48.flac"));
    sh("ffmpeg -nostdin -v error -y -f lavfi -i sine=f=200:r=96000:d=1.1 -c:a pcm_f32le '%s'",
       path("f96.wav"));
    /* 5.1 at 32 kHz: the default downmix matrix */
    sh("ffmpeg -nostdin -v error -y -f lavfi -i anoisesrc=r=32000:d=1.3:a=0.2 -af "
       "'pan=5.1|c0=c0|c1=0.5*c0|c2=0.3*c0|c3=0.1*c0|c4=0.7*c0|c5=0.2*c0' -c:a flac '%s'",
       path("s51.flac"));
    /* a video container with an audio track */
    sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=d=1.2:s=64x48:r=10 -f lavfi -i "
       "sine=f=330:r=44100:d=1.2 -c:v mpeg4 -c:a aac -shortest '%s'",
       path("av.mp4"));
    /* very short lossy files: the header counts encoder delay + padding, not a truncation */
    sh("ffmpeg -nostdin -v error -y -f lavfi -i sine=r=8000:d=0.1 -c:a libmp3lame -b:a 8k '%s'",
       path("short8k.mp3"));
    sh("ffmpeg -nostdin -v error -y -f lavfi -i sine=r=8000:d=0.1 -ac 2 -c:a aac -b:a 8k '%s'",
       path("short8k.m4a"));
    sh("ffmpeg -nostdin -v error -y -f lavfi -i sine=r=48000:d=0.04 -c:a libopus -b:a 6k '%s'",
       path("short.opus"));
    compare_with_cli("short8k.mp3", FLM_AUDIO_MONO);
    compare_with_cli("short8k.m4a", FLM_AUDIO_MONO);
    compare_with_cli("short.opus", FLM_AUDIO_MONO);
    compare_with_cli("st44.wav", FLM_AUDIO_MONO);
    compare_with_cli("st44.wav", FLM_AUDIO_PER_CHANNEL);
    compare_with_cli("st44.mp3", FLM_AUDIO_MONO);
    compare_with_cli("st44.mp3", FLM_AUDIO_PER_CHANNEL);
    compare_with_cli("st48.opus", FLM_AUDIO_MONO);
    compare_with_cli("m22.m4a", FLM_AUDIO_MONO);
    compare_with_cli("n48.flac", FLM_AUDIO_MONO);
    compare_with_cli("f96.wav", FLM_AUDIO_MONO);
    compare_with_cli("s51.flac", FLM_AUDIO_MONO);
    compare_with_cli("s51.flac", FLM_AUDIO_PER_CHANNEL);
    compare_with_cli("av.mp4", FLM_AUDIO_MONO);
    if (have_sox) {
        sh("sox -n -r 8000 -c 1 -e unsigned -b 8 '%s' synth 1.25 sine 300", path("u8k.wav"));
        sh("sox -n -r 16000 -c 2 '%s' synth 0.9 sine 500 sine 700", path("s16k.sph"));
        compare_with_cli("u8k.wav", FLM_AUDIO_MONO);
        compare_with_cli("s16k.sph", FLM_AUDIO_MONO);
        compare_with_cli("s16k.sph", FLM_AUDIO_PER_CHANNEL);
    }
    if (have_espeak) {
        sh("espeak-ng -w '%s' 'the quick brown fox jumps over the lazy dog'", path("speech.wav"));
        compare_with_cli("speech.wav", FLM_AUDIO_MONO);
    }
}

/* Exact output length: ceil(n * 24000 / r), equal to the CLI, for tiny and odd counts. */
static void test_lengths(void)
{
    static const int rates[] = {8000, 11025, 16000, 22050, 24000, 44100, 48000, 96000};
    static const int counts[] = {1, 7, 1919, 12345, 99991};
    float *x = flm_malloc(99991 * sizeof *x);
    for (int i = 0; i < 99991; i++)
        x[i] = 0.5f * sinf(0.01f * (float)i);
    int bad = 0, bad_cli = 0, n_cli = 0;
    for (size_t ri = 0; ri < sizeof rates / sizeof *rates; ri++) {
        for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
            flm_error err = {0};
            int r = rates[ri], n = counts[ci];
            if (flm_audio_write_file(path("len.wav"), FLM_AUDIO_WAV_S16, x, n, 1, r, &err) < 0) {
                tap_diag("%s", err.msg);
                bad++;
                continue;
            }
            float *y = NULL;
            int64_t ny = 0;
            int32_t nch;
            flm_audio_params p = flm_audio_default_params();
            if (flm_audio_read_file(path("len.wav"), &p, &y, &ny, &nch, &err) < 0) {
                tap_diag("%s", err.msg);
                bad++;
                continue;
            }
            int64_t want = ((int64_t)n * 24000 + r - 1) / r;
            if (ny != want) {
                tap_diag("rate %d, %d samples: got %lld, want %lld", r, n, (long long)ny,
                         (long long)want);
                bad++;
            }
            if (have_ffmpeg && ci >= 3) {
                sh("ffmpeg -nostdin -v error -y -i '%s' -ar 24000 -f f32le '%s'", path("len.wav"),
                   path("len.raw"));
                int64_t nr;
                float *ref = read_raw(path("len.raw"), &nr);
                /* the CLI's flush may end one sample short; flm pads that sample with 0 */
                int pad_ok = nr == ny || (nr + 1 == ny && y[ny - 1] == 0.0f);
                n_cli += nr != ny;
                if (!ref || !pad_ok || max_diff(ref, y, nr < ny ? nr : ny) > TOLERANCE) {
                    tap_diag("rate %d, %d samples: CLI %lld samples, flm %lld", r, n, (long long)nr,
                             (long long)ny);
                    bad_cli++;
                }
                flm_free(ref);
            }
            flm_free(y);
        }
    }
    TAP_EQ_INT(bad, 0, "output length is ceil(n * 24000 / rate) for 8 rates x 5 lengths");
    TAP_EQ_INT(bad_cli, 0, "samples equal the ffmpeg CLI's, lengths equal or + 1 zero (16 cases)");
    tap_diag("%d of 16 cases: the CLI output is one sample shorter than ceil(n * 24000 / r)",
             n_cli);
    flm_free(x);
}

/* Streaming reads in odd chunk sizes and from memory give the same samples as one read. */
static void test_streaming(void)
{
    if (!have_ffmpeg)
        return;
    flm_audio_params p = flm_audio_default_params();
    p.mode = FLM_AUDIO_PER_CHANNEL;
    float *whole = NULL;
    int64_t n = 0;
    int32_t nch = 0;
    flm_error err = {0};
    TAP_OK(flm_audio_read_file(path("st44.mp3"), &p, &whole, &n, &nch, &err) == 0 && nch == 2,
           "whole-file read of a stereo mp3 (per channel)");
    static const size_t chunks[] = {1, 7, 1920, 100000};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        flm_audio_decoder *d = NULL;
        float *y = flm_malloc((size_t)(n + 100000) * 2 * sizeof *y);
        int64_t len = 0;
        int r = flm_audio_decoder_open(&d, path("st44.mp3"), &p, &err);
        while (r == 0) {
            size_t got = 0;
            r = flm_audio_decoder_read(d, y + len * 2, chunks[c], &got, &err);
            if (got == 0)
                break;
            len += (int64_t)got;
        }
        TAP_OK(r == 0 && len == n && !memcmp(y, whole, (size_t)n * 2 * sizeof *y) &&
                   flm_audio_decoder_position(d) == n,
               "chunks of %zu samples: identical samples and position", chunks[c]);
        flm_audio_decoder_destroy(&d);
        TAP_OK(d == NULL, "destroy sets the handle to NULL");
        flm_free(y);
    }
    /* from memory */
    char *data;
    size_t size;
    flm_read_file(path("st44.mp3"), &data, &size, 1 << 26, &err);
    flm_audio_decoder *d = NULL;
    float *y = flm_malloc((size_t)(n + 8192) * 2 * sizeof *y);
    int64_t len = 0;
    int r = flm_audio_decoder_open_memory(&d, data, size, "mem.mp3", &p, &err);
    while (r == 0) {
        size_t got = 0;
        r = flm_audio_decoder_read(d, y + len * 2, 8192, &got, &err);
        if (got == 0)
            break;
        len += (int64_t)got;
    }
    TAP_OK(r == 0 && len == n && !memcmp(y, whole, (size_t)n * 2 * sizeof *y),
           "in-memory decode equals file decode");
    const flm_audio_info *info = d ? flm_audio_decoder_info(d) : NULL;
    TAP_OK(info && info->src_channels == 2 && info->src_sample_rate == 44100 &&
               !strcmp(info->format, "mp3"),
           "info: mp3, 44100 Hz, 2 channels");
    flm_audio_decoder_destroy(&d);
    flm_free(y);
    flm_free(data);
    flm_free(whole);
}

/* Decoders in parallel threads give the same samples as one after another. */
typedef struct par_job {
    const char *file;
    uint64_t hash;
    int64_t n;
    int rc;
} par_job;

static void *par_decode(void *arg)
{
    par_job *j = arg;
    flm_audio_params p = flm_audio_default_params();
    float *x = NULL;
    int32_t nch;
    flm_error err = {0};
    j->rc = flm_audio_read_file(j->file, &p, &x, &j->n, &nch, &err);
    j->hash = 1469598103934665603ull;
    const unsigned char *b = (const unsigned char *)x;
    for (int64_t i = 0; x && i < j->n * (int64_t)sizeof *x; i++)
        j->hash = (j->hash ^ b[i]) * 1099511628211ull;
    flm_free(x);
    return NULL;
}

static void test_threads(void)
{
    if (!have_ffmpeg)
        return;
    static const char *names[] = {"st44.mp3", "n48.flac", "st48.opus",
                                  "m22.m4a",  "s51.flac", "av.mp4"};
    enum { N = sizeof names / sizeof *names };
    par_job seq[N], par[N];
    pthread_t th[N];
    static char files[N][512];
    for (int i = 0; i < N; i++) {
        snprintf(files[i], sizeof files[i], "%s", path(names[i]));
        seq[i] = par[i] = (par_job){.file = files[i]};
        par_decode(&seq[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, par_decode, &par[i]);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    int same = 1;
    for (int i = 0; i < N; i++)
        same &=
            seq[i].rc == 0 && par[i].rc == 0 && seq[i].n == par[i].n && seq[i].hash == par[i].hash;
    TAP_OK(same, "%d decoders in parallel threads: identical to sequential decoding", N);
}

static void expect_error(const char *file, int want_code, const char *want_text)
{
    flm_audio_params p = flm_audio_default_params();
    float *x = NULL;
    int64_t n = 0;
    int32_t nch = 0;
    flm_error err = {0};
    int r = flm_audio_read_file(path(file), &p, &x, &n, &nch, &err);
    TAP_OK(r == want_code && err.code == want_code, "%s: %s (got %s: %s)", file,
           flm_error_name(want_code), flm_error_name(r), err.msg);
    TAP_CONTAINS(err.msg, want_text, "message says what went wrong");
    TAP_CONTAINS(err.msg, file, "message names the file");
    TAP_OK(x == NULL && n == 0, "no output on error");
}

static void test_broken(void)
{
    if (!have_ffmpeg)
        return;
    flm_error err = {0};
    sh("head -c 30001 '%s' > '%s'", path("st44.wav"), path("trunc.wav"));
    sh("head -c 20000 '%s' > '%s'", path("n48.flac"), path("trunc.flac"));
    sh("head -c 15000 '%s' > '%s'", path("st44.mp3"), path("trunc.mp3"));
    { /* fixed pseudo-random bytes (random input may probe as e.g. a text subtitle file) */
        FILE *g = fopen(path("garbage.wav"), "wb");
        uint32_t v = 12345;
        for (int i = 0; g && i < 6000; i++) {
            v ^= v << 13, v ^= v >> 17, v ^= v << 5;
            fputc((int)(v >> 24), g);
        }
        if (g)
            fclose(g);
    }
    sh(": > '%s'", path("empty.wav"));
    sh("echo 'this is a text file, not audio' > '%s'", path("text.mp3"));
    sh("cp '%s' '%s'", path("n48.flac"), path("flac_named.wav"));
    sh("ffmpeg -nostdin -v error -y -f lavfi -i testsrc=d=0.5:s=32x32:r=5 -c:v mpeg4 '%s'",
       path("video_only.mkv"));
    float none = 0;
    flm_audio_write_file(path("zero.wav"), FLM_AUDIO_WAV_S16, &none, 0, 1, 16000, &err);
    sh("ffmpeg -nostdin -v error -y -f lavfi -i sine=r=8000:d=1 -t 0 -c:a flac '%s'",
       path("zero.flac"));

    expect_error("missing.wav", FLM_ENOTFOUND, "No such file");
    expect_error("empty.wav", FLM_EFORMAT, "empty file");
    expect_error("garbage.wav", FLM_EFORMAT, "not a recognized audio/video file");
    expect_error("text.mp3", FLM_EFORMAT, "not a recognized audio/video file");
    expect_error("trunc.wav", FLM_ECORRUPT, "truncated");
    expect_error("trunc.flac", FLM_ECORRUPT, "truncated");
    expect_error("trunc.mp3", FLM_ECORRUPT, "truncated");
    expect_error("video_only.mkv", FLM_ENOTFOUND, "no audio stream (1 stream: video mpeg4)");
    expect_error("zero.wav", FLM_EFORMAT, "zero length");
    expect_error("zero.flac", FLM_EFORMAT, "zero length");
    { /* a wav whose format tag no decoder knows */
        FILE *g = fopen(path("unknown_codec.wav"), "wb");
        static const uint8_t h[] = {'R', 'I', 'F',  'F',  36 + 64, 0,   0,    0,    'W', 'A',  'V',
                                    'E', 'f', 'm',  't',  ' ',     16,  0,    0,    0,   0x55, 0x55,
                                    1,   0,   0x40, 0x1f, 0,       0,   0x80, 0x3e, 0,   0,    2,
                                    0,   16,  0,    'd',  'a',     't', 'a',  64,   0,   0,    0};
        if (g) {
            fwrite(h, 1, sizeof h, g);
            for (int i = 0; i < 64; i++)
                fputc(0, g);
            fclose(g);
        }
        expect_error("unknown_codec.wav", FLM_EAUDIO, "unsupported codec 'none' (tag 0x5555)");
    }
    /* an absurd source rate is refused before libswresample builds a huge filter (fuzz find) */
    flm_audio_write_file(path("rate500.wav"), FLM_AUDIO_WAV_S16, (float[]){0.1f, 0.2f, 0.3f}, 3, 1,
                         500, &err);
    expect_error("rate500.wav", FLM_EFORMAT, "source sample rate 500 Hz outside [1000, 384000]");

    /* a wav whose LIST chunk claims ~2 GB: refused without allocating it (fuzz find) */
    {
        FILE *g = fopen(path("huge_list.wav"), "wb");
        static const uint8_t h[] = {'R', 'I', 'F',  'F',  0x66, 3,   0,    0,    'W', 'A', 'V',
                                    'E', 'f', 'm',  't',  ' ',  16,  0,    0,    0,   1,   0,
                                    1,   0,   0x40, 0x1f, 0,    0,   0x80, 0x3e, 0,   0,   2,
                                    0,   16,  0,    'L',  'I',  'S', 'T',  0x1a, 0,   1,   0x7d,
                                    'I', 'N', 'F',  'O',  'I',  'S', 'F',  'T'};
        if (g) {
            fwrite(h, 1, sizeof h, g);
            fclose(g);
        }
        struct rusage ru0, ru1;
        getrusage(RUSAGE_SELF, &ru0);
        expect_error("huge_list.wav", FLM_EFORMAT, "not a recognized audio/video file");
        getrusage(RUSAGE_SELF, &ru1);
#if !defined(__SANITIZE_ADDRESS__)
        TAP_OK(ru1.ru_maxrss - ru0.ru_maxrss < 300 * 1024,
               "no 2 GB allocation (peak RSS grew %ld KiB)", ru1.ru_maxrss - ru0.ru_maxrss);
#endif
    }
    /* the extension is not trusted: a flac file named .wav decodes like the .flac */
    flm_audio_params p = flm_audio_default_params();
    float *a = NULL, *b = NULL;
    int64_t na = 0, nb = 0;
    int32_t c;
    int ra = flm_audio_read_file(path("flac_named.wav"), &p, &a, &na, &c, &err);
    int rb = flm_audio_read_file(path("n48.flac"), &p, &b, &nb, &c, &err);
    TAP_OK(ra == 0 && rb == 0 && na == nb && na > 0 && !memcmp(a, b, (size_t)na * sizeof *a),
           "wrong extension (flac named .wav): decoded from content, same samples");
    flm_free(a);
    flm_free(b);

    /* a directory */
    flm_audio_decoder *d = NULL;
    TAP_EQ_INT(flm_audio_decoder_open(&d, dir, &p, &err), FLM_EINVAL, "a directory is rejected");
    TAP_OK(d == NULL, "no handle on failure");
    /* empty memory buffer */
    TAP_EQ_INT(flm_audio_decoder_open_memory(&d, "", 0, "nothing", &p, &err), FLM_EFORMAT,
               "empty memory buffer");
    /* bad params */
    p.sample_rate = 100;
    TAP_EQ_INT(flm_audio_decoder_open(&d, path("n48.flac"), &p, &err), FLM_EINVAL,
               "rate 100 Hz rejected");
    p = flm_audio_default_params();
    /* errors are sticky, and the limit on length is enforced */
    p.max_samples = 1000;
    TAP_EQ_INT(flm_audio_decoder_open(&d, path("n48.flac"), &p, &err), 0, "open with max_samples");
    float buf[4096];
    size_t got = 0;
    int r = flm_audio_decoder_read(d, buf, 4096, &got, &err);
    TAP_OK(r == 0 && got == 1000, "reading stops at max_samples");
    r = flm_audio_decoder_read(d, buf, 4096, &got, &err);
    TAP_EQ_INT(r, FLM_ERANGE, "reading past max_samples is FLM_ERANGE");
    r = flm_audio_decoder_read(d, buf, 10, &got, &err);
    TAP_OK(r == FLM_ERANGE && got == 0, "the error is sticky");
    flm_audio_decoder_destroy(&d);
    flm_audio_decoder_destroy(&d); /* NULL-safe */
    /* samples copied before a failure are delivered first, the error comes next (fuzz find) */
    TAP_EQ_INT(flm_audio_decoder_open(&d, path("n48.flac"), &p, &err), 0, "open with max_samples");
    int64_t total = 0;
    for (;;) {
        r = flm_audio_decoder_read(d, buf, 4096, &got, &err);
        if (r < 0 || got == 0)
            break;
        total += (int64_t)got;
        r = flm_audio_decoder_read(d, buf, 700, &got, &err); /* odd sizes straddle the limit */
        if (r < 0 || got == 0)
            break;
        total += (int64_t)got;
    }
    TAP_OK(r == FLM_ERANGE && total == 1000 && total == flm_audio_decoder_position(d),
           "limit error: %lld samples delivered = position, none lost", (long long)total);
    flm_audio_decoder_destroy(&d);
}

static void test_writers(void)
{
    enum { N = 30011 };
    float *x = flm_malloc(2 * N * sizeof *x);
    for (int i = 0; i < 2 * N; i++)
        x[i] = 1.3f * sinf(0.0037f * (float)i) * (i % 2 ? 0.5f : 1.0f); /* exceeds +-1: clamped */
    struct {
        int32_t fmt;
        const char *name;
        double scale;
    } cases[] = {{FLM_AUDIO_WAV_F32, "w.f32.wav", 0},
                 {FLM_AUDIO_WAV_S16, "w.s16.wav", 32768.0},
                 {FLM_AUDIO_FLAC_S16, "w.s16.flac", 32768.0},
                 {FLM_AUDIO_FLAC_S24, "w.s24.flac", 8388608.0}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        flm_error err = {0};
        int r = flm_audio_write_file(path(cases[k].name), cases[k].fmt, x, N, 2, 24000, &err);
        TAP_OK(r == 0, "write %s (%s)", cases[k].name, err.msg);
        flm_audio_params p = flm_audio_default_params();
        p.mode = FLM_AUDIO_PER_CHANNEL;
        float *y = NULL;
        int64_t n = 0;
        int32_t nch = 0;
        r = flm_audio_read_file(path(cases[k].name), &p, &y, &n, &nch, &err);
        TAP_OK(r == 0 && n == N && nch == 2, "%s reads back %lld x %d samples", cases[k].name,
               (long long)n, (int)nch);
        int bad = 0;
        for (int64_t i = 0; r == 0 && i < 2 * N; i++) {
            float want = x[i];
            if (cases[k].scale > 0) {
                double c = want > 1 ? 1 : want < -1 ? -1 : want;
                double q = nearbyint(c * cases[k].scale);
                if (q > cases[k].scale - 1)
                    q = cases[k].scale - 1;
                want = (float)(q / cases[k].scale);
            }
            bad += y[i] != want;
        }
        TAP_EQ_INT(bad, 0, "every sample exact after the documented clamp/round");
        flm_free(y);
    }
    flm_error err = {0};
    flm_audio_writer *w = NULL;
    TAP_EQ_INT(
        flm_audio_writer_create(&w, path("no/such/dir/x.wav"), FLM_AUDIO_WAV_F32, 24000, 1, &err),
        FLM_ENOTFOUND, "writer: missing directory");
    TAP_EQ_INT(flm_audio_writer_create(&w, path("x.wav"), 99, 24000, 1, &err), FLM_EINVAL,
               "writer: unknown format");
    TAP_OK(flm_audio_writer_create(&w, path("partial.wav"), FLM_AUDIO_WAV_S16, 24000, 1, &err) == 0,
           "writer created");
    flm_audio_writer_write(w, x, 100, &err);
    flm_audio_writer_destroy(&w);
    TAP_OK(access(path("partial.wav"), F_OK) != 0, "an unfinished writer removes its file");
    TAP_EQ_INT(flm_audio_format_from_name("flac24"), FLM_AUDIO_FLAC_S24, "format names");
    TAP_EQ_INT(flm_audio_format_from_name("opus"), FLM_AUDIO_OPUS, "format names: opus");
    flm_free(x);
}

/* Ogg Opus (lossy): the same length back (pre-skip and end trimming), a close waveform, 1/16 of
 * 16-bit wav's size; the rates and channel counts it cannot take are refused by name. */
static void test_opus(void)
{
    enum { N = 24000 * 3 + 123 };
    float *x = flm_malloc(2 * N * sizeof *x);
    for (int i = 0; i < N; i++) {
        double t = i / 24000.0, env = 0.5 + 0.5 * sin(2 * M_PI * 1.5 * t);
        x[2 * i] = (float)(0.4 * env * sin(2 * M_PI * 220 * t));     /* left: a tone */
        x[2 * i + 1] = (float)(0.3 * env * sin(2 * M_PI * 330 * t)); /* right: another */
    }
    for (int nch = 1; nch <= 2; nch++) {
        flm_error err = {0};
        const char *name = nch == 1 ? "o1.opus" : "o2.opus";
        float *in = x;
        float *mono = NULL;
        if (nch == 1) {
            mono = flm_malloc(N * sizeof *mono);
            for (int i = 0; i < N; i++)
                mono[i] = x[2 * i];
            in = mono;
        }
        int r = flm_audio_write_file(path(name), FLM_AUDIO_OPUS, in, N, nch, 24000, &err);
        TAP_OK(r == 0, "write %s (%s)", name, err.msg);
        struct stat st = {0};
        int have = stat(path(name), &st) == 0;
        TAP_OK(have && st.st_size < (off_t)N * 2 * nch / 8,
               "%s: %lld bytes, under 1/8 of 16-bit wav (%d)", name, (long long)st.st_size,
               N * 2 * nch);
        flm_audio_params p = flm_audio_default_params();
        p.mode = FLM_AUDIO_PER_CHANNEL;
        float *y = NULL;
        int64_t n = 0;
        int32_t c = 0;
        r = flm_audio_read_file(path(name), &p, &y, &n, &c, &err);
        TAP_OK(r == 0 && n == N && c == nch, "%s reads back %lld x %d samples (%d x %d written)",
               name, (long long)n, (int)c, N, nch);
        double e = 0, s = 0;
        for (int64_t i = 0; r == 0 && n == N && i < (int64_t)N * nch; i++) {
            e += (y[i] - in[i]) * (y[i] - in[i]);
            s += in[i] * in[i];
        }
        double snr = 10 * log10(s / (e > 0 ? e : 1e-30));
        TAP_OK(snr > 15, "%s: waveform within %.1f dB SNR (> 15), aligned to the sample", name,
               snr);
        flm_free(y);
        flm_free(mono);
    }
    flm_audio_writer *w = NULL;
    flm_error err = {0};
    TAP_EQ_INT(flm_audio_writer_create(&w, path("r.opus"), FLM_AUDIO_OPUS, 44100, 1, &err),
               FLM_EINVAL, "opus: 44100 Hz refused");
    TAP_CONTAINS(err.msg, "Opus takes 8000, 12000, 16000, 24000 or 48000 Hz, not 44100",
                 "says why");
    TAP_EQ_INT(flm_audio_writer_create(&w, path("c.opus"), FLM_AUDIO_OPUS, 24000, 3, &err),
               FLM_EINVAL, "opus: 3 channels refused");
    flm_free(x);
}

static void test_time_mapping(void)
{
    TAP_EQ_INT(flm_audio_seconds_to_sample(0.5, 24000), 12000, "0.5 s -> sample 12000");
    TAP_EQ_INT(flm_audio_seconds_to_sample(1.0 / 48000, 24000), 1, "half a sample rounds up");
    TAP_EQ_INT(flm_audio_seconds_to_sample(0.49 / 24000, 24000), 0, "below half rounds down");
    TAP_EQ_INT(flm_audio_seconds_to_sample(-3.0, 24000), 0, "negative time clamps to 0");
    TAP_EQ_INT(flm_audio_seconds_to_sample(12.34, 24000), 296160, "12.34 s -> 296160");
    TAP_EQ_INT(flm_audio_sample_to_frame(1919, 1920), 0, "sample 1919 is in frame 0");
    TAP_EQ_INT(flm_audio_sample_to_frame(1920, 1920), 1, "sample 1920 is in frame 1");
    TAP_EQ_INT(flm_audio_n_frames(0, 1920), 0, "0 samples: 0 frames");
    TAP_EQ_INT(flm_audio_n_frames(1920, 1920), 1, "1920 samples: 1 frame");
    TAP_EQ_INT(flm_audio_n_frames(1921, 1920), 2, "1921 samples: 2 frames");
    /* adjacent spans in seconds tile the samples */
    int gaps = 0;
    for (int i = 0; i < 1000; i++) {
        double t0 = i * 0.0137, t1 = (i + 1) * 0.0137;
        gaps += flm_audio_seconds_to_sample(t1, 24000) < flm_audio_seconds_to_sample(t0, 24000);
    }
    TAP_EQ_INT(gaps, 0, "span boundaries are monotonic");
}

/* Failure injection: every allocation of open/read/write may fail without a crash or leak. */
static void test_alloc_failures(void)
{
    if (!have_ffmpeg)
        return;
    int ok = 1, hit_enomem = 0;
    for (int k = 0; k < 40; k++) {
        flm_error err = {0};
        float *x = NULL;
        int64_t n = 0;
        int32_t nch = 0;
        flm_audio_params p = flm_audio_default_params();
        flm_alloc_fail_after(k);
        int r = flm_audio_read_file(path("st44.wav"), &p, &x, &n, &nch, &err);
        int w = flm_audio_write_file(path("inj.wav"), FLM_AUDIO_WAV_F32, x ? x : (float[]){0},
                                     x ? n : 1, 1, 24000, &err);
        flm_alloc_fail_after(-1);
        if (r == FLM_ENOMEM || w == FLM_ENOMEM)
            hit_enomem = 1;
        if ((r != 0 && r != FLM_ENOMEM) || (r == 0 && !x) || (w != 0 && w != FLM_ENOMEM))
            ok = 0;
        flm_free(x);
    }
    TAP_OK(ok && hit_enomem, "injected allocation failures give FLM_ENOMEM, never a crash");
}

/* A long file decodes in bounded memory (1 hour: 345 MB if it were held whole). */
static void test_bounded_memory(void)
{
#if defined(__SANITIZE_ADDRESS__)
    TAP_OK(1, "bounded memory # SKIP RSS is not meaningful under AddressSanitizer");
    return;
#endif
    if (!have_ffmpeg)
        return;
    if (getenv("FLM_TEST_FAST")) { /* the valgrind pass: an hour of decoding takes too long */
        TAP_OK(1, "bounded memory # SKIP FLM_TEST_FAST");
        return;
    }
    if (sh("ffmpeg -nostdin -v error -y -f lavfi -i anoisesrc=r=8000:d=3600:a=0.1 -c:a pcm_u8 '%s'",
           path("hour.wav")) != 0)
        return;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    flm_audio_params p = flm_audio_default_params();
    flm_audio_decoder *d = NULL;
    flm_error err = {0};
    int r = flm_audio_decoder_open(&d, path("hour.wav"), &p, &err);
    static float buf[65536];
    int64_t total = 0;
    while (r == 0) {
        size_t got = 0;
        r = flm_audio_decoder_read(d, buf, 65536, &got, &err);
        if (got == 0)
            break;
        total += (int64_t)got;
    }
    getrusage(RUSAGE_SELF, &ru1);
    flm_audio_decoder_destroy(&d);
    TAP_OK(r == 0 && total == 86400000LL,
           "1 h at 8 kHz -> exactly 86400000 samples at 24 kHz (%lld)", (long long)total);
    long grow_kb = ru1.ru_maxrss - ru0.ru_maxrss;
    TAP_OK(grow_kb < 32 * 1024, "peak RSS grew by %ld KiB while decoding 1 hour (bound: 32 MiB)",
           grow_kb);
    unlink(path("hour.wav"));
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/flm-test-audio-XXXXXX",
             getenv("FLM_TEST_TMP") ? getenv("FLM_TEST_TMP")
             : getenv("TMPDIR")     ? getenv("TMPDIR")
                                    : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    have_ffmpeg = system("ffmpeg -version > /dev/null 2>&1") == 0;
    have_sox = system("sox --version > /dev/null 2>&1") == 0;
    have_espeak = system("espeak-ng --version > /dev/null 2>&1") == 0;
    test_time_mapping();
    test_writers();
    test_opus();
    test_lengths();
    test_formats();
    test_streaming();
    test_threads();
    test_broken();
    test_alloc_failures();
    test_bounded_memory();
    if (!getenv("FLM_KEEP_TEST_DIR"))
        sh("rm -rf '%s'", dir);
    return tap_done();
}
