/* flm codec - Mimi encode/decode of audio files (include/flm_mimi.h, include/flm_audio.h).
 *
 *   flm codec encode IN_AUDIO -o codes.npy --model MIMI.safetensors [--n-q 8] [--threads N]
 *   flm codec decode codes.npy -o out.wav --model MIMI.safetensors [--format f32|s16|flac]
 *
 * codes.npy: NumPy v1.0, little-endian int32, shape (n_q, n_frames) (decode also takes
 * (1, n_q, n_frames)). Audio is decoded to 24 kHz mono by FFmpeg and streamed through the codec
 * in steps of 32 frames (memory does not grow with the input, except the codes).
 *
 *   flm render SHARD:N -o sample.wav --model MIMI.safetensors      (stereo: left = listen,
 *                                                                   right = speak)
 * Frames whose 8 codes are not all codec codes (empty/pad tokens) are rendered as silence. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codes.h"
#include "commands.h"
#include "render.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_kernels.h"
#include "flm_mimi.h"
#include "flm_npy.h"
#include "flm_shard.h"
#include "flm_stream.h"
#include "flm_util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: flm codec encode IN_AUDIO -o codes.npy --model MIMI.safetensors "
               "[--n-q N] [--threads N]\n"
               "       flm codec decode codes.npy -o OUT_AUDIO --model MIMI.safetensors "
               "[--format f32|s16|flac|flac24] [--threads N]\n"
               "\n"
               "codes.npy holds int32 codes of shape (n_q, n_frames), 12.5 frames per second.\n");
}

static void usage_render(FILE *f)
{
    fprintf(f, "usage: flm render SHARD:N -o sample.wav --model MIMI.safetensors [--json]\n"
               "\n"
               "Decodes the sample's listen and speak codes with the Mimi checkpoint into a\n"
               "stereo 24 kHz wav (left: listen, right: speak), showing progress on stderr\n"
               "(FLM_PROGRESS=0 silences it). --json: the summary as one JSON object.\n");
}

/* What codec encode, codec decode and render take. */
typedef struct codec_args {
    const char *in, *out;
    cli_model_opts mo; /* --model: the Mimi checkpoint; --threads */
} codec_args;

/* The options the three share (-o, --model, --threads) and own: CLI_PARSED, 0 or 2 (said). */
static int parse_args(const char *cmd, void (*help)(FILE *), const cli_option *own, int argc,
                      char **argv, codec_args *a)
{
    *a = (codec_args){.mo = cli_model_opts_default()};
    a->mo.threads = 0; /* all cores */
    const cli_option common[] = {
        CLI_OPT("-o, --output", "OUT", "the output file", &a->out),
        CLI_OPT("-m, --model", "MIMI.safetensors", "the Mimi checkpoint", &a->mo.model),
        CLI_OPT_THREADS(&a->mo, "compute threads (default: all cores)"),
        {0}};
    const cli_option *const tables[] = {common, own, NULL};
    const cli_command c = {cmd, help, tables, 1, NULL};
    int n, rc = cli_parse(&c, argc, argv, &a->in, &n);
    if (rc != CLI_PARSED || (rc = cli_model_opts_finish(cmd, &a->mo)))
        return rc;
    if (!a->out || !a->mo.model || n != 1)
        return cli_usage(cmd, "%s",
                         !a->mo.model ? "missing --model MIMI.safetensors"
                         : !a->out    ? "missing -o OUT"
                                      : "expected one input file");
    flm_kernels_init((int)a->mo.threads);
    return CLI_PARSED;
}

static int encode(const char *in, const char *out, const char *model, int n_q)
{
    flm_error err = {0};
    flm_mimi *m = NULL;
    flm_mimi_stream *s = NULL;
    int32_t *codes = NULL;
    int64_t n_frames = 0;
    flm_mimi_params p = flm_mimi_default_params();
    p.n_q = n_q;
    int rc = flm_mimi_load(&m, model, &p, &err);
    if (rc == 0)
        rc = flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE, CODES_STEP, &err);
    if (rc == 0)
        rc = codes_encode_file(s, n_q, in, -1, &codes, &n_frames, NULL, &err);
    if (rc == 0)
        rc = flm_npy_write_codes(out, codes, n_q, n_frames, &err);
    if (rc == 0)
        printf("%s: %lld frames x %d codebooks -> %s\n", in, (long long)n_frames, n_q, out);
    else
        cli_error("codec encode: %s", err.msg);
    flm_mimi_stream_destroy(&s);
    flm_mimi_destroy(&m);
    flm_free(codes);
    return rc < 0;
}

static int decode(const char *in, const char *out, const char *model, const char *format)
{
    flm_error err = {0};
    flm_mimi *m = NULL;
    flm_mimi_stream *s = NULL;
    flm_audio_writer *w = NULL;
    int32_t *codes = NULL, *fc = NULL;
    float *pcm = NULL;
    int32_t n_q;
    int rc = 1;
    int64_t n_frames;
    int32_t fmt = flm_audio_format_from_name(format);
    if (flm_npy_read_codes(in, &codes, &n_q, &n_frames, &err) < 0) {
        cli_error("codec decode: %s", err.msg);
        return 1;
    }
    flm_mimi_params p = flm_mimi_default_params();
    p.n_q = n_q;
    if (flm_mimi_load(&m, model, &p, &err) < 0 ||
        flm_mimi_stream_create(&s, m, FLM_MIMI_DECODE, CODES_STEP, &err) < 0 ||
        flm_audio_writer_create(&w, out, fmt, FLM_MIMI_SAMPLE_RATE, 1, &err) < 0)
        goto done;
    pcm = flm_malloc((size_t)CODES_STEP * FLM_MIMI_FRAME_SIZE * sizeof *pcm);
    fc = flm_malloc((size_t)CODES_STEP * n_q * sizeof *fc);
    if (!pcm || !fc) {
        flm_error_set(&err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t f0 = 0; f0 < n_frames; f0 += CODES_STEP) {
        int F = n_frames - f0 < CODES_STEP ? (int)(n_frames - f0) : CODES_STEP;
        for (int f = 0; f < F; f++)
            for (int q = 0; q < n_q; q++)
                fc[f * n_q + q] = codes[q * n_frames + f0 + f];
        if (flm_mimi_stream_decode(s, fc, F, pcm, &err) < 0) {
            flm_error_prefix(&err, "%s", in); /* a bad code: name the file it came from */
            goto done;
        }
        if (flm_audio_writer_write(w, pcm, (size_t)F * FLM_MIMI_FRAME_SIZE, &err) < 0)
            goto done;
    }
    if (flm_audio_writer_finish(w, &err) < 0)
        goto done;
    printf("%s: %lld frames -> %s (%.2f s)\n", in, (long long)n_frames, out, n_frames / 12.5);
    rc = 0;
done:
    if (rc)
        cli_error("codec decode: %s", err.msg);
    flm_audio_writer_destroy(&w);
    flm_mimi_stream_destroy(&s);
    flm_mimi_destroy(&m);
    flm_free(codes), flm_free(fc), flm_free(pcm);
    return rc;
}

static int cmd_encode(int argc, char **argv)
{
    const char *n_q = NULL;
    int64_t q = 8;
    codec_args a;
    const cli_option own[] = {CLI_OPT("--n-q", "N", "codebooks to keep, 1..64 (default 8)", &n_q),
                              {0}};
    int rc = parse_args("codec encode", usage, own, argc, argv, &a);
    if (rc != CLI_PARSED || (rc = cli_i64("codec encode", "--n-q", n_q, 1, 64, &q)))
        return rc;
    return encode(a.in, a.out, a.mo.model, (int)q);
}

static int cmd_decode(int argc, char **argv)
{
    const char *format = "f32";
    codec_args a;
    const cli_option own[] = {
        CLI_OPT("--format", "F", "f32 (default), s16, flac or flac24", &format), {0}};
    int rc = parse_args("codec decode", usage, own, argc, argv, &a);
    if (rc != CLI_PARSED)
        return rc;
    if (flm_audio_format_from_name(format) <= 0)
        return cli_usage("codec decode", "unknown --format '%s'", format);
    return decode(a.in, a.out, a.mo.model, format);
}

int cmd_codec(int argc, char **argv)
{
    static const cli_subcommand subs[] = {
        {"encode", cmd_encode}, {"decode", cmd_decode}, {NULL, NULL}};
    return cli_dispatch("codec", usage, subs, argc, argv);
}

/* Codes of frames [f0, f0+F) of one side (8 channels from first_ch) into fc [F][8]; silent[f]
 * is set where a frame holds no codec codes (empty/pad tokens). */
static void side_codes(const flm_sample *smp, int first_ch, int f0, int F, int bins, int32_t *fc,
                       uint8_t *silent)
{
    int T = smp->n_frames;
    for (int f = 0; f < F; f++) {
        silent[f] = 0;
        for (int q = 0; q < FLM_N_CODEBOOKS; q++) {
            int32_t v = smp->tokens[(size_t)(first_ch + q) * T + f0 + f];
            silent[f] |= v < 0 || v >= bins;
            fc[f * FLM_N_CODEBOOKS + q] = v < 0 || v >= bins ? 0 : v;
        }
    }
}

int render_sides(flm_mimi *m, const flm_sample *smp, float **listen, float **speak,
                 int64_t *n_samples, flm_error *err)
{
    flm_mimi_stream *s[2] = {NULL, NULL};
    int32_t fc[CODES_STEP * FLM_N_CODEBOOKS];
    uint8_t silent[CODES_STEP];
    const int first_ch[2] = {FLM_CH_LISTEN, FLM_CH_SPEAK};
    size_t n = (size_t)smp->n_frames * FLM_MIMI_FRAME_SIZE;
    float *out[2] = {flm_malloc((n ? n : 1) * sizeof(float)),
                     flm_malloc((n ? n : 1) * sizeof(float))};
    float *pcm = flm_malloc((size_t)CODES_STEP * FLM_MIMI_FRAME_SIZE * sizeof *pcm);
    int bins = flm_mimi_get_config(m)->bins, rc = 0;
    if (!pcm || !out[0] || !out[1])
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory rendering %d frames", smp->n_frames);
    for (int k = 0; k < 2 && rc == 0; k++)
        rc = flm_mimi_stream_create(&s[k], m, FLM_MIMI_DECODE, CODES_STEP, err);
    /* seconds of the sample decoded (both sides), on stderr */
    cli_progress pr;
    cli_progress_start_scaled(&pr, "decoding audio", "s", smp->n_frames, 12.5);
    for (int f0 = 0; f0 < smp->n_frames && rc == 0; f0 += CODES_STEP) {
        int F = smp->n_frames - f0 < CODES_STEP ? smp->n_frames - f0 : CODES_STEP;
        for (int k = 0; k < 2 && rc == 0; k++) {
            side_codes(smp, first_ch[k], f0, F, bins, fc, silent);
            rc = flm_mimi_stream_decode(s[k], fc, F, pcm, err);
            float *dst = out[k] + (size_t)f0 * FLM_MIMI_FRAME_SIZE;
            for (size_t i = 0; rc == 0 && i < (size_t)F * FLM_MIMI_FRAME_SIZE; i++)
                dst[i] = silent[i / FLM_MIMI_FRAME_SIZE] ? 0.0f : pcm[i];
        }
        if (rc == 0)
            cli_progress_update(&pr, f0 + F);
    }
    if (rc == 0)
        cli_progress_finish(&pr, smp->n_frames);
    flm_mimi_stream_destroy(&s[0]);
    flm_mimi_stream_destroy(&s[1]);
    flm_free(pcm);
    if (rc < 0) {
        flm_free(out[0]);
        flm_free(out[1]);
        return rc;
    }
    *listen = out[0];
    *speak = out[1];
    *n_samples = (int64_t)n;
    return 0;
}

/* Both sides decoded (render_sides), interleaved into a stereo wav: listen left, speak right. */
static int render_sample(flm_mimi *m, const flm_sample *smp, const char *out, flm_error *err)
{
    float *sides[2] = {NULL, NULL};
    int64_t n = 0;
    flm_audio_writer *w = NULL;
    enum { CHUNK = 1 << 16 };
    float *lr = flm_malloc(2 * CHUNK * sizeof *lr);
    int rc = lr ? render_sides(m, smp, &sides[0], &sides[1], &n, err)
                : flm_error_set(err, FLM_ENOMEM, "out of memory");
    if (rc == 0)
        rc = flm_audio_writer_create(&w, out, FLM_AUDIO_WAV_F32, FLM_MIMI_SAMPLE_RATE, 2, err);
    for (int64_t i0 = 0; i0 < n && rc == 0; i0 += CHUNK) {
        int64_t c = n - i0 < CHUNK ? n - i0 : CHUNK;
        for (int64_t i = 0; i < c; i++) {
            lr[2 * i] = sides[0][i0 + i];
            lr[2 * i + 1] = sides[1][i0 + i];
        }
        rc = flm_audio_writer_write(w, lr, (size_t)c, err);
    }
    if (rc == 0)
        rc = flm_audio_writer_finish(w, err);
    flm_audio_writer_destroy(&w);
    flm_free(sides[0]);
    flm_free(sides[1]);
    flm_free(lr);
    return rc;
}

int cmd_render(int argc, char **argv)
{
    int json = 0, rc;
    codec_args a;
    const cli_option own[] = {CLI_FLAG("--json", "print the summary as one JSON object", &json),
                              {0}};
    if ((rc = parse_args("render", usage_render, own, argc, argv, &a)) != CLI_PARSED)
        return rc;
    rc = 1;
    const char *out = a.out, *model = a.mo.model;
    flm_error err = {0};
    char *path = flm_strdup(a.in), *colon = path ? strrchr(path, ':') : NULL, *end;
    flm_shard_reader *r = NULL;
    flm_sample *smp = NULL;
    flm_mimi *m = NULL;
    unsigned long long idx = colon ? strtoull(colon + 1, &end, 10) : 0;
    if (!colon || !colon[1] || *end) {
        flm_free(path);
        return cli_usage("render", "expected SHARD:N, got '%s'", a.in);
    }
    *colon = 0;
    if (flm_shard_reader_open(&r, path, &err) < 0 ||
        flm_shard_reader_read(r, (uint64_t)idx, &smp, &err) < 0 ||
        flm_mimi_load(&m, model, NULL, &err) < 0)
        goto done;
    if (render_sample(m, smp, out, &err) < 0)
        goto done;
    if (json) {
        json_t *o =
            json_pack("{s:s,s:I,s:s?,s:I,s:f,s:s}", "shard", path, "record", (json_int_t)idx,
                      "sample", smp->id, "frames", (json_int_t)smp->n_frames, "seconds",
                      smp->n_frames / 12.5, "out", out);
        cli_json_print(stdout, o);
        json_decref(o);
    } else {
        printf("%s:%llu: %d frames (%.2f s) -> %s (left: listen, right: speak)\n", path, idx,
               smp->n_frames, smp->n_frames / 12.5, out);
    }
    rc = 0;
done:
    if (rc)
        cli_error("render: %s", err.msg);
    flm_mimi_destroy(&m);
    flm_sample_destroy(&smp);
    flm_shard_reader_close(&r);
    flm_free(path);
    return rc;
}
