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
        "usage: flm audio convert IN -o OUT [--format f32|s16|flac|flac24|opus] [--rate HZ]\n"
        "                         [--per-channel]\n"
        "\n"
        "Decodes IN (any format FFmpeg opens: wav, flac, mp3, opus, m4a, sph, video files)\n"
        "and writes OUT at 24000 Hz mono float32 wav (the codec's input), streaming with\n"
        "bounded memory. Prints what was read and the exact sample and 80 ms frame counts.\n"
        "\n"
        "Integer formats clamp samples to [-1, 1]. Frame t covers samples [1920 t, 1920 (t+1)).\n");
}

static void usage_audio(FILE *f)
{
    usage(f);
    fprintf(f, "\nThe options: flm audio convert --help.\n");
}

static int convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *fmt_name = "f32", *rate = NULL;
    int per_channel = 0;
    flm_profiles prof;
    flm_profiles_default(&prof);
    flm_audio_params p = flm_audio_default_params();
    p.sample_rate = prof.codec.sample_rate;
    const cli_option opts[] = {
        CLI_OPT("-o", "OUT",
                "output file (wav; flac with --format flac/flac24; ogg with --format opus)", &out),
        CLI_OPT("--format", "F",
                "f32 (default): float32 wav; s16: 16-bit wav; flac, flac24; opus (Ogg Opus, 24 "
                "kbit/s per channel, at most 2 channels)",
                &fmt_name),
        CLI_OPT("--rate", "HZ", "output sample rate (default: the codec profile's, 24000)", &rate),
        CLI_FLAG("--per-channel", "keep every source channel instead of the mono mixdown",
                 &per_channel),
        {0}};
    const cli_option *const tables[] = {opts, NULL};
    const cli_command c = {"audio convert", usage, tables, 1, NULL};
    int64_t hz = p.sample_rate;
    int n_in, rc = cli_parse(&c, argc, argv, &in, &n_in);
    if (rc != CLI_PARSED || (rc = cli_i64("audio convert", "--rate", rate, 8000, 192000, &hz)))
        return rc;
    p.sample_rate = (int32_t)hz;
    if (per_channel)
        p.mode = FLM_AUDIO_PER_CHANNEL;
    if (!n_in || !out)
        return cli_usage("audio convert", "%s", !n_in ? "missing input file" : "missing -o OUT");
    int32_t format = flm_audio_format_from_name(fmt_name);
    if (!format)
        return cli_usage("audio convert", "--format '%s': expected f32, s16, flac, flac24 or opus",
                         fmt_name);
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
    cli_error("audio convert: %s", err.msg);
    flm_audio_writer_destroy(&w); /* removes the partial output */
    flm_audio_decoder_destroy(&d);
    flm_free(buf);
    return 1;
}

int cmd_audio(int argc, char **argv)
{
    static const cli_subcommand subs[] = {{"convert", convert}, {NULL, NULL}};
    return cli_dispatch("audio", usage_audio, subs, argc, argv);
}
