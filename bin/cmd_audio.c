/* flm audio convert: decode any audio FFmpeg opens to 24 kHz float mono (or per channel). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_profile.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: flm audio convert IN -o OUT [--format f32|s16|flac|flac24] [--rate HZ]\n"
        "                         [--per-channel]\n"
        "\n"
        "Decodes IN (any format FFmpeg opens: wav, flac, mp3, opus, m4a, sph, video files)\n"
        "and writes OUT at 24000 Hz mono float32 wav (the codec's input), streaming with\n"
        "bounded memory. Prints what was read and the exact sample and 80 ms frame counts.\n"
        "\n"
        "  -o OUT           output file (wav, or flac with --format flac/flac24)\n"
        "  --format F       f32 (default): float32 wav; s16: 16-bit wav; flac, flac24\n"
        "  --rate HZ        output sample rate (default: the codec profile's, 24000)\n"
        "  --per-channel    keep every source channel instead of the mono mixdown\n"
        "\n"
        "Integer formats clamp samples to [-1, 1]. Frame t covers samples [1920 t, 1920 (t+1)).\n");
}

static int convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *fmt_name = "f32";
    flm_profiles prof;
    flm_profiles_default(&prof);
    flm_audio_params p = flm_audio_default_params();
    p.sample_rate = prof.codec.sample_rate;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--format") && i + 1 < argc) {
            fmt_name = argv[++i];
        } else if (!strcmp(a, "--rate") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 8000 || v > 192000) {
                fprintf(stderr, "flm audio convert: --rate '%s': expected 8000..192000\n", argv[i]);
                return 2;
            }
            p.sample_rate = (int32_t)v;
        } else if (!strcmp(a, "--per-channel")) {
            p.mode = FLM_AUDIO_PER_CHANNEL;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage("audio convert", "unknown or incomplete option '%s'", a);
        } else if (!in) {
            in = a;
        } else {
            fprintf(stderr, "flm audio convert: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!in || !out) {
        return cli_usage("audio convert", "%s", !in ? "missing input file" : "missing -o OUT");
    }
    int32_t format = flm_audio_format_from_name(fmt_name);
    if (!format) {
        fprintf(stderr, "flm audio convert: --format '%s': expected f32, s16, flac or flac24\n",
                fmt_name);
        return 2;
    }
    flm_error err = {0};
    flm_audio_decoder *d = NULL;
    flm_audio_writer *w = NULL;
    enum { CHUNK = 8192 };
    float *buf = NULL;
    int64_t total = 0;
    if (flm_audio_decoder_open(&d, in, &p, &err) < 0)
        goto fail;
    const flm_audio_info *info = flm_audio_decoder_info(d);
    buf = flm_malloc((size_t)CHUNK * (size_t)info->n_channels * sizeof *buf);
    if (!buf) {
        snprintf(err.msg, sizeof err.msg, "out of memory");
        goto fail;
    }
    if (flm_audio_writer_create(&w, out, format, p.sample_rate, info->n_channels, &err) < 0)
        goto fail;
    for (;;) {
        size_t n = 0;
        if (flm_audio_decoder_read(d, buf, CHUNK, &n, &err) < 0)
            goto fail;
        if (n == 0)
            break;
        if (flm_audio_writer_write(w, buf, n, &err) < 0)
            goto fail;
        total += (int64_t)n;
    }
    if (flm_audio_writer_finish(w, &err) < 0)
        goto fail;
    printf("%s: %s/%s, %d Hz, %d channel%s\n", in, info->format, info->codec,
           (int)info->src_sample_rate, (int)info->src_channels, info->src_channels == 1 ? "" : "s");
    printf("%s: %d Hz, %d channel%s (%s), %lld samples = %.3f s = %lld frames of %d samples\n", out,
           (int)p.sample_rate, (int)info->n_channels, info->n_channels == 1 ? "" : "s",
           p.mode == FLM_AUDIO_MONO ? "mono mixdown" : "per channel", (long long)total,
           (double)total / p.sample_rate,
           (long long)flm_audio_n_frames(total, prof.codec.samples_per_frame),
           (int)prof.codec.samples_per_frame);
    flm_audio_writer_destroy(&w);
    flm_audio_decoder_destroy(&d);
    flm_free(buf);
    return 0;
fail:
    fprintf(stderr, "flm audio convert: %s\n", err.msg);
    flm_audio_writer_destroy(&w); /* removes the partial output */
    flm_audio_decoder_destroy(&d);
    flm_free(buf);
    return 1;
}

int cmd_audio(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "convert"))
        return convert(argc - 1, argv + 1);
    fprintf(stderr, "flm audio: unknown subcommand '%s' (expected: convert)\n", argv[1]);
    return 2;
}
