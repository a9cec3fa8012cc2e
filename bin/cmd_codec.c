/* flm codec - Mimi encode/decode of audio files (engine/flm_mimi.h, libstream/flm_audio.h).
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
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "render.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_kernels.h"
#include "flm_mimi.h"
#include "flm_shard.h"
#include "flm_stream.h"
#include "flm_util.h"

#define STEP 32 /* frames per codec call */

static void usage(FILE *f)
{
    fprintf(f, "usage: flm codec encode IN_AUDIO -o codes.npy --model MIMI.safetensors "
               "[--n-q N] [--threads N]\n"
               "       flm codec decode codes.npy -o OUT_AUDIO --model MIMI.safetensors "
               "[--format f32|s16|flac|flac24] [--threads N]\n"
               "\n"
               "codes.npy holds int32 codes of shape (n_q, n_frames), 12.5 frames per second.\n");
}

static int write_npy(const char *path, const int32_t *codes, int n_q, int64_t n_frames)
{
    char hdr[128];
    int n =
        snprintf(hdr, sizeof hdr, "{'descr': '<i4', 'fortran_order': False, 'shape': (%d, %lld), }",
                 n_q, (long long)n_frames);
    int total = (10 + n + 1 + 63) / 64 * 64; /* magic + version + len + header + '\n' */
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    flm_put_u16(pre + 8, (uint16_t)(total - 10));
    memset(hdr + n, ' ', (size_t)(total - 10 - n - 1));
    hdr[total - 10 - 1] = '\n';
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(pre, 1, 10, f) == 10 &&
             fwrite(hdr, 1, (size_t)(total - 10), f) == (size_t)(total - 10);
    for (int64_t i = 0; ok && i < (int64_t)n_q * n_frames; i++) {
        uint8_t b[4];
        flm_put_u32(b, (uint32_t)codes[i]);
        ok = fwrite(b, 1, 4, f) == 4;
    }
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* Reads an int32 (n_q, T) or (1, n_q, T) C-order npy; *codes is [n_q][T], caller frees. */
static int read_npy(const char *path, int32_t **codes, int *n_q, int64_t *n_frames, char *msg,
                    size_t msg_size)
{
    char *buf = NULL;
    size_t size;
    flm_error err = {0};
    long long d[3] = {0};
    int nd = 0;
    *codes = NULL;
    if (flm_read_file(path, &buf, &size, (size_t)1 << 31, &err) < 0) {
        snprintf(msg, msg_size, "%s", err.msg);
        return -1;
    }
    const uint8_t *u = (const uint8_t *)buf;
    size_t hl = size >= 10 ? flm_get_u16(u + 8) : 0, off = 10 + hl;
    if (size < 10 || memcmp(u, "\x93NUMPY", 6) || u[6] != 1 || off > size) {
        snprintf(msg, msg_size, "%s: not a NumPy v1 .npy file", path);
        goto fail;
    }
    char hdr[256] = {0};
    memcpy(hdr, buf + 10, hl < sizeof hdr - 1 ? hl : sizeof hdr - 1);
    for (size_t n = strlen(hdr); n > 0 && (hdr[n - 1] == ' ' || hdr[n - 1] == '\n'); n--)
        hdr[n - 1] = 0; /* the padding, which would end the message in a blank line */
    const char *sh = strstr(hdr, "'shape': (");
    if (!strstr(hdr, "'descr': '<i4'") || !strstr(hdr, "'fortran_order': False") || !sh) {
        snprintf(msg, msg_size, "%s: expected int32 ('<i4'), C order; header is %s", path, hdr);
        goto fail;
    }
    nd = sscanf(sh + 10, "%lld, %lld, %lld", &d[0], &d[1], &d[2]);
    if (nd == 3 && d[0] == 1)
        d[0] = d[1], d[1] = d[2], nd = 2;
    if (nd != 2 || d[0] < 1 || d[0] > 64 || d[1] < 0 || d[1] > INT32_MAX ||
        (size - off) != (size_t)(d[0] * d[1] * 4)) {
        snprintf(msg, msg_size,
                 "%s: shape must be (n_q, n_frames) with n_q 1..64 and the data "
                 "must match it (%zu data bytes)",
                 path, size - off);
        goto fail;
    }
    *codes = flm_malloc((size_t)(d[0] * d[1] * 4) + 1);
    if (!*codes) {
        snprintf(msg, msg_size, "out of memory");
        goto fail;
    }
    for (long long i = 0; i < d[0] * d[1]; i++)
        (*codes)[i] = (int32_t)flm_get_u32(u + off + 4 * i);
    *n_q = (int)d[0];
    *n_frames = d[1];
    flm_free(buf);
    return 0;
fail:
    flm_free(buf);
    return -1;
}

static int encode(const char *in, const char *out, const char *model, int n_q)
{
    flm_error err = {0};
    flm_mimi *m = NULL;
    flm_mimi_stream *s = NULL;
    flm_audio_decoder *d = NULL;
    float *pcm = NULL;
    int32_t *fc = NULL, *codes = NULL, *t = NULL;
    size_t cap = 0;
    int64_t n_frames = 0;
    int rc = 1;
    flm_mimi_params p = flm_mimi_default_params();
    p.n_q = n_q;
    flm_audio_params ap = flm_audio_default_params();
    if (flm_mimi_load(&m, model, &p, &err) < 0 ||
        flm_mimi_stream_create(&s, m, FLM_MIMI_ENCODE, STEP, &err) < 0 ||
        flm_audio_decoder_open(&d, in, &ap, &err) < 0)
        goto done;
    pcm = flm_malloc((size_t)STEP * FLM_MIMI_FRAME_SIZE * sizeof *pcm);
    fc = flm_malloc((size_t)STEP * n_q * sizeof *fc);
    if (!pcm || !fc) {
        flm_error_set(&err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    for (int eof = 0; !eof;) {
        size_t have = 0, want = (size_t)STEP * FLM_MIMI_FRAME_SIZE, got;
        while (have < want) {
            if (flm_audio_decoder_read(d, pcm + have, want - have, &got, &err) < 0)
                goto done;
            if (!got) {
                eof = 1;
                break;
            }
            have += got;
        }
        int F = (int)flm_mimi_n_frames((int64_t)have);
        if (!F)
            break;
        memset(pcm + have, 0, ((size_t)F * FLM_MIMI_FRAME_SIZE - have) * sizeof *pcm);
        if (flm_mimi_stream_encode(s, pcm, F, fc, &err) < 0 ||
            flm_grow((void **)&codes, &cap, (size_t)(n_frames + F) * n_q, sizeof *codes) < 0)
            goto done;
        memcpy(codes + n_frames * n_q, fc, (size_t)F * n_q * sizeof *fc);
        n_frames += F;
    }
    t = flm_malloc((size_t)(n_frames * n_q + 1) * sizeof *t); /* [frames][n_q] -> [n_q][frames] */
    if (!t) {
        flm_error_set(&err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t f = 0; f < n_frames; f++)
        for (int q = 0; q < n_q; q++)
            t[q * n_frames + f] = codes[f * n_q + q];
    if (write_npy(out, t, n_q, n_frames) < 0) {
        flm_error_set(&err, FLM_EIO, "%s: cannot write", out);
        goto done;
    }
    printf("%s: %lld frames x %d codebooks -> %s\n", in, (long long)n_frames, n_q, out);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "flm codec encode: %s\n", err.msg);
    flm_audio_decoder_destroy(&d);
    flm_mimi_stream_destroy(&s);
    flm_mimi_destroy(&m);
    flm_free(pcm), flm_free(fc), flm_free(codes), flm_free(t);
    return rc;
}

static int decode(const char *in, const char *out, const char *model, const char *format)
{
    flm_error err = {0};
    flm_mimi *m = NULL;
    flm_mimi_stream *s = NULL;
    flm_audio_writer *w = NULL;
    int32_t *codes = NULL, *fc = NULL;
    float *pcm = NULL;
    int n_q, rc = 1;
    int64_t n_frames;
    char msg[FLM_ERROR_MSG_SIZE];
    int32_t fmt = flm_audio_format_from_name(format);
    if (fmt <= 0) {
        fprintf(stderr, "flm codec decode: unknown --format '%s'\n", format);
        return 2;
    }
    if (read_npy(in, &codes, &n_q, &n_frames, msg, sizeof msg) < 0) {
        fprintf(stderr, "flm codec decode: %s\n", msg);
        return 1;
    }
    flm_mimi_params p = flm_mimi_default_params();
    p.n_q = n_q;
    if (flm_mimi_load(&m, model, &p, &err) < 0 ||
        flm_mimi_stream_create(&s, m, FLM_MIMI_DECODE, STEP, &err) < 0 ||
        flm_audio_writer_create(&w, out, fmt, FLM_MIMI_SAMPLE_RATE, 1, &err) < 0)
        goto done;
    pcm = flm_malloc((size_t)STEP * FLM_MIMI_FRAME_SIZE * sizeof *pcm);
    fc = flm_malloc((size_t)STEP * n_q * sizeof *fc);
    if (!pcm || !fc) {
        flm_error_set(&err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t f0 = 0; f0 < n_frames; f0 += STEP) {
        int F = n_frames - f0 < STEP ? (int)(n_frames - f0) : STEP;
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
        fprintf(stderr, "flm codec decode: %s\n", err.msg);
    flm_audio_writer_destroy(&w);
    flm_mimi_stream_destroy(&s);
    flm_mimi_destroy(&m);
    flm_free(codes), flm_free(fc), flm_free(pcm);
    return rc;
}

int cmd_codec(int argc, char **argv)
{
    const char *out = NULL, *model = NULL, *format = "f32";
    int n_q = 8, threads = 0, c;
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"model", required_argument, 0, 'm'},
                                         {"n-q", required_argument, 0, 'q'},
                                         {"threads", required_argument, 0, 't'},
                                         {"format", required_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "o:m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        case 'q':
            n_q = atoi(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'f':
            format = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!out || !model || optind != argc - 2 || n_q < 1 || n_q > 64) {
        usage(stderr);
        return 2;
    }
    flm_kernels_init(threads);
    const char *in = argv[1 + optind];
    if (!strcmp(sub, "encode"))
        return encode(in, out, model, n_q);
    if (!strcmp(sub, "decode"))
        return decode(in, out, model, format);
    fprintf(stderr, "flm codec: unknown subcommand '%s'\n", sub);
    usage(stderr);
    return 2;
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
    int32_t fc[STEP * FLM_N_CODEBOOKS];
    uint8_t silent[STEP];
    const int first_ch[2] = {FLM_CH_LISTEN, FLM_CH_SPEAK};
    size_t n = (size_t)smp->n_frames * FLM_MIMI_FRAME_SIZE;
    float *out[2] = {flm_malloc((n ? n : 1) * sizeof(float)),
                     flm_malloc((n ? n : 1) * sizeof(float))};
    float *pcm = flm_malloc((size_t)STEP * FLM_MIMI_FRAME_SIZE * sizeof *pcm);
    int bins = flm_mimi_get_config(m)->bins, rc = 0;
    if (!pcm || !out[0] || !out[1])
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory rendering %d frames", smp->n_frames);
    for (int k = 0; k < 2 && rc == 0; k++)
        rc = flm_mimi_stream_create(&s[k], m, FLM_MIMI_DECODE, STEP, err);
    for (int f0 = 0; f0 < smp->n_frames && rc == 0; f0 += STEP) {
        int F = smp->n_frames - f0 < STEP ? smp->n_frames - f0 : STEP;
        for (int k = 0; k < 2 && rc == 0; k++) {
            side_codes(smp, first_ch[k], f0, F, bins, fc, silent);
            rc = flm_mimi_stream_decode(s[k], fc, F, pcm, err);
            float *dst = out[k] + (size_t)f0 * FLM_MIMI_FRAME_SIZE;
            for (size_t i = 0; rc == 0 && i < (size_t)F * FLM_MIMI_FRAME_SIZE; i++)
                dst[i] = silent[i / FLM_MIMI_FRAME_SIZE] ? 0.0f : pcm[i];
        }
    }
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
    const char *out = NULL, *model = NULL;
    int c, threads = 0, rc = 1;
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"model", required_argument, 0, 'm'},
                                         {"threads", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'h':
            printf("usage: flm render SHARD:N -o sample.wav --model MIMI.safetensors\n");
            return 0;
        default:
            return 2;
        }
    }
    if (!out || !model || optind != argc - 1) {
        fprintf(stderr, "usage: flm render SHARD:N -o sample.wav --model MIMI.safetensors\n");
        return 2;
    }
    flm_kernels_init(threads);
    flm_error err = {0};
    char *path = flm_strdup(argv[optind]), *colon = path ? strrchr(path, ':') : NULL, *end;
    flm_shard_reader *r = NULL;
    flm_sample *smp = NULL;
    flm_mimi *m = NULL;
    unsigned long long idx = colon ? strtoull(colon + 1, &end, 10) : 0;
    if (!colon || !colon[1] || *end) {
        fprintf(stderr, "flm render: expected SHARD:N, got '%s'\n", argv[optind]);
        flm_free(path);
        return 2;
    }
    *colon = 0;
    if (flm_shard_reader_open(&r, path, &err) < 0 ||
        flm_shard_reader_read(r, (uint64_t)idx, &smp, &err) < 0 ||
        flm_mimi_load(&m, model, NULL, &err) < 0)
        goto done;
    if (render_sample(m, smp, out, &err) < 0)
        goto done;
    printf("%s:%llu: %d frames (%.2f s) -> %s (left: listen, right: speak)\n", path, idx,
           smp->n_frames, smp->n_frames / 12.5, out);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "flm render: %s\n", err.msg);
    flm_mimi_destroy(&m);
    flm_sample_destroy(&smp);
    flm_shard_reader_close(&r);
    flm_free(path);
    return rc;
}
