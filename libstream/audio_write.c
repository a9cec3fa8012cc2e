/* audio_write.c - the audio writers of flm_audio.h: wav (f32, s16) written directly, flac and
 * Ogg Opus through FFmpeg's encoders (libavformat + libavcodec). */
#include "flm_audio.h"

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audio_internal.h"
#include "flm_alloc.h"
#include "flm_util.h"

/* ---- Writers ------------------------------------------------------------------------------ */
struct flm_audio_writer {
    char *path;
    int32_t format, sample_rate, n_channels;
    int finished, created;
    /* wav */
    FILE *f;
    uint64_t data_size;
    /* flac, opus (FFmpeg encoders) */
    AVFormatContext *oc;
    AVCodecContext *enc;
    AVFrame *frame;
    AVPacket *pkt;
    int frame_fill;
    int64_t pts;
};

int32_t flm_audio_format_from_name(const char *name)
{
    if (!strcmp(name, "f32") || !strcmp(name, "wav"))
        return FLM_AUDIO_WAV_F32;
    if (!strcmp(name, "s16"))
        return FLM_AUDIO_WAV_S16;
    if (!strcmp(name, "flac"))
        return FLM_AUDIO_FLAC_S16;
    if (!strcmp(name, "flac24"))
        return FLM_AUDIO_FLAC_S24;
    if (!strcmp(name, "opus"))
        return FLM_AUDIO_OPUS;
    return 0;
}

/* The encoded formats' names in messages. */
static const char *enc_name(const flm_audio_writer *w)
{
    return w->format == FLM_AUDIO_OPUS ? "opus" : "flac";
}

static int wav_header(flm_audio_writer *w, flm_error *err)
{
    int is_float = w->format == FLM_AUDIO_WAV_F32;
    uint32_t bytes = is_float ? 4 : 2;
    uint8_t h[58];
    size_t hn = is_float ? 58 : 44;
    uint64_t frames = w->data_size / (bytes * (uint32_t)w->n_channels);
    memcpy(h, "RIFF", 4);
    flm_put_u32(h + 4, (uint32_t)(hn - 8 + w->data_size));
    memcpy(h + 8, "WAVEfmt ", 8);
    flm_put_u32(h + 16, is_float ? 18 : 16);
    flm_put_u16(h + 20, is_float ? 3 : 1); /* WAVE_FORMAT_IEEE_FLOAT / PCM */
    flm_put_u16(h + 22, (uint16_t)w->n_channels);
    flm_put_u32(h + 24, (uint32_t)w->sample_rate);
    flm_put_u32(h + 28, (uint32_t)w->sample_rate * bytes * (uint32_t)w->n_channels);
    flm_put_u16(h + 32, (uint16_t)(bytes * (uint32_t)w->n_channels));
    flm_put_u16(h + 34, (uint16_t)(8 * bytes));
    size_t o = 36;
    if (is_float) {
        flm_put_u16(h + 36, 0); /* cbSize */
        memcpy(h + 38, "fact", 4);
        flm_put_u32(h + 42, 4);
        flm_put_u32(h + 46, (uint32_t)frames);
        o = 50;
    }
    memcpy(h + o, "data", 4);
    flm_put_u32(h + o + 4, (uint32_t)w->data_size);
    if (fwrite(h, 1, hn, w->f) != hn)
        return flm_error_set(err, FLM_EIO, "%s: write failed: %s", w->path, strerror(errno));
    return 0;
}

/* flac (FFmpeg's encoder, in a .flac file) or Opus (libopus through FFmpeg, in an Ogg file). */
static int enc_open(flm_audio_writer *w, flm_error *err)
{
    char reason[256], url[4096];
    int opus = w->format == FLM_AUDIO_OPUS;
    if ((size_t)snprintf(url, sizeof url, "file:%s", w->path) >= sizeof url)
        return flm_error_set(err, FLM_EINVAL, "%s: path too long", w->path);
    int r = avformat_alloc_output_context2(&w->oc, NULL, opus ? "ogg" : "flac", url);
    if (r < 0 || !w->oc)
        return flm_error_set(err, FLM_EAUDIO, "%s: cannot create %s output: %s", w->path,
                             enc_name(w), flm_av_reason(r, reason, sizeof reason));
    const AVCodec *codec =
        opus ? avcodec_find_encoder_by_name("libopus") : avcodec_find_encoder(AV_CODEC_ID_FLAC);
    if (!codec)
        return flm_error_set(err, FLM_EAUDIO, "%s: this FFmpeg has no %s encoder", w->path,
                             opus ? "libopus" : "flac");
    w->enc = avcodec_alloc_context3(codec);
    AVStream *st = avformat_new_stream(w->oc, NULL);
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->enc || !st || !w->frame || !w->pkt)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory (%s encoder)", w->path,
                             enc_name(w));
    if (opus) {
        w->enc->sample_fmt = AV_SAMPLE_FMT_FLT;
        w->enc->bit_rate = (int64_t)FLM_AUDIO_OPUS_BITRATE * w->n_channels;
    } else {
        w->enc->sample_fmt =
            w->format == FLM_AUDIO_FLAC_S24 ? AV_SAMPLE_FMT_S32 : AV_SAMPLE_FMT_S16;
        w->enc->bits_per_raw_sample = w->format == FLM_AUDIO_FLAC_S24 ? 24 : 16;
    }
    w->enc->sample_rate = w->sample_rate;
    w->enc->time_base = (AVRational){1, w->sample_rate};
    w->enc->thread_count = 1;
    av_channel_layout_default(&w->enc->ch_layout, w->n_channels);
    if ((r = avcodec_open2(w->enc, codec, NULL)) < 0)
        return flm_error_set(err, FLM_EAUDIO, "%s: cannot open the %s encoder: %s", w->path,
                             enc_name(w), flm_av_reason(r, reason, sizeof reason));
    if ((r = avcodec_parameters_from_context(st->codecpar, w->enc)) < 0)
        return flm_error_set(err, FLM_EAUDIO, "%s: %s", w->path,
                             flm_av_reason(r, reason, sizeof reason));
    st->time_base = w->enc->time_base;
    if ((r = avio_open(&w->oc->pb, url, AVIO_FLAG_WRITE)) < 0)
        return flm_error_set(err, FLM_EIO, "%s: cannot create: %s", w->path,
                             flm_av_reason(r, reason, sizeof reason));
    w->created = 1;
    if ((r = avformat_write_header(w->oc, NULL)) < 0)
        return flm_error_set(err, FLM_EIO, "%s: cannot write the %s header: %s", w->path,
                             enc_name(w), flm_av_reason(r, reason, sizeof reason));
    w->frame->format = w->enc->sample_fmt;
    w->frame->sample_rate = w->sample_rate;
    w->frame->nb_samples = w->enc->frame_size > 0 ? w->enc->frame_size : 4608;
    if ((r = av_channel_layout_copy(&w->frame->ch_layout, &w->enc->ch_layout)) < 0 ||
        (r = av_frame_get_buffer(w->frame, 0)) < 0)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory (%s frame)", w->path, enc_name(w));
    return 0;
}

int flm_audio_writer_create(flm_audio_writer **out, const char *path, int32_t format,
                            int32_t sample_rate, int32_t n_channels, flm_error *err)
{
    *out = NULL;
    if (format < FLM_AUDIO_WAV_F32 || format > FLM_AUDIO_OPUS)
        return flm_error_set(err, FLM_EINVAL, "%s: unknown output format %d", path, (int)format);
    if (sample_rate < 1 || sample_rate > 768000)
        return flm_error_set(err, FLM_EINVAL, "%s: sample rate %d outside [1, 768000]", path,
                             (int)sample_rate);
    int max_ch = format == FLM_AUDIO_OPUS       ? 2
                 : format >= FLM_AUDIO_FLAC_S16 ? 8
                                                : FLM_AUDIO_MAX_CHANNELS;
    if (n_channels < 1 || n_channels > max_ch)
        return flm_error_set(err, FLM_EINVAL, "%s: %d channels not supported by this format", path,
                             (int)n_channels);
    if (format == FLM_AUDIO_OPUS && sample_rate != 8000 && sample_rate != 12000 &&
        sample_rate != 16000 && sample_rate != 24000 && sample_rate != 48000)
        return flm_error_set(err, FLM_EINVAL,
                             "%s: Opus takes 8000, 12000, 16000, 24000 or 48000 Hz, not %d", path,
                             (int)sample_rate);
    flm_av_init();
    flm_audio_writer *w = flm_calloc(1, sizeof *w);
    if (!w)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
    int r;
    w->path = flm_strdup(path);
    if (!w->path) {
        r = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    w->format = format;
    w->sample_rate = sample_rate;
    w->n_channels = n_channels;
    if (format == FLM_AUDIO_WAV_F32 || format == FLM_AUDIO_WAV_S16) {
        w->f = fopen(path, "wb");
        if (!w->f) {
            r = flm_error_set(err, errno == ENOENT ? FLM_ENOTFOUND : FLM_EIO,
                              "%s: cannot create: %s", path, strerror(errno));
            goto fail;
        }
        w->created = 1;
        if ((r = wav_header(w, err)) < 0)
            goto fail;
    } else if ((r = enc_open(w, err)) < 0) {
        goto fail;
    }
    *out = w;
    return 0;
fail:
    flm_audio_writer_destroy(&w);
    return r;
}

static inline float clamp1(float x)
{
    return x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x == x ? x : 0.0f;
}

static inline int32_t to_int(float x, double scale, int32_t lo, int32_t hi)
{
    long v = lrint((double)clamp1(x) * scale);
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

static int enc_send(flm_audio_writer *w, AVFrame *frame, flm_error *err)
{
    char reason[256];
    int r = avcodec_send_frame(w->enc, frame);
    if (r < 0)
        return flm_error_set(err, FLM_EAUDIO, "%s: %s encoding failed: %s", w->path, enc_name(w),
                             flm_av_reason(r, reason, sizeof reason));
    while ((r = avcodec_receive_packet(w->enc, w->pkt)) == 0) {
        w->pkt->stream_index = 0;
        /* the muxer may have chosen its own time base (Ogg Opus: 1/48000) */
        av_packet_rescale_ts(w->pkt, w->enc->time_base, w->oc->streams[0]->time_base);
        r = av_write_frame(w->oc, w->pkt);
        av_packet_unref(w->pkt);
        if (r < 0)
            return flm_error_set(err, FLM_EIO, "%s: write failed: %s", w->path,
                                 flm_av_reason(r, reason, sizeof reason));
    }
    if (r != AVERROR(EAGAIN) && r != AVERROR_EOF)
        return flm_error_set(err, FLM_EAUDIO, "%s: %s encoding failed: %s", w->path, enc_name(w),
                             flm_av_reason(r, reason, sizeof reason));
    return 0;
}

int flm_audio_writer_write(flm_audio_writer *w, const float *x, size_t n, flm_error *err)
{
    size_t nch = (size_t)w->n_channels;
    if (w->finished)
        return flm_error_set(err, FLM_EINVAL, "%s: write after finish", w->path);
    if (w->f) {
        uint8_t chunk[8192];
        size_t bytes = w->format == FLM_AUDIO_WAV_F32 ? 4 : 2;
        size_t total = n * nch, per = sizeof chunk / bytes;
        if (w->data_size + total * bytes > UINT32_MAX - 64)
            return flm_error_set(err, FLM_ERANGE, "%s: wav data would exceed 4 GiB", w->path);
        for (size_t i = 0; i < total; i += per) {
            size_t m = total - i < per ? total - i : per;
            for (size_t k = 0; k < m; k++) {
                if (bytes == 4) {
                    uint32_t u;
                    memcpy(&u, &x[i + k], 4);
                    flm_put_u32(chunk + 4 * k, u);
                } else {
                    flm_put_u16(chunk + 2 * k,
                                (uint16_t)(int16_t)to_int(x[i + k], 32768.0, -32768, 32767));
                }
            }
            if (fwrite(chunk, bytes, m, w->f) != m)
                return flm_error_set(err, FLM_EIO, "%s: write failed: %s", w->path,
                                     strerror(errno));
        }
        w->data_size += total * bytes;
        return 0;
    }
    int s24 = w->format == FLM_AUDIO_FLAC_S24;
    for (size_t i = 0; i < n; i++) {
        if (w->frame_fill == 0) {
            int r = av_frame_make_writable(w->frame);
            if (r < 0)
                return flm_error_set(err, FLM_ENOMEM, "%s: out of memory (%s frame)", w->path,
                                     enc_name(w));
        }
        for (size_t c = 0; c < nch; c++) {
            size_t k = (size_t)w->frame_fill * nch + c;
            if (w->format == FLM_AUDIO_OPUS)
                ((float *)w->frame->data[0])[k] = clamp1(x[i * nch + c]);
            else if (s24)
                ((int32_t *)w->frame->data[0])[k] =
                    (int32_t)((uint32_t)to_int(x[i * nch + c], 8388608.0, -8388608, 8388607) << 8);
            else
                ((int16_t *)w->frame->data[0])[k] =
                    (int16_t)to_int(x[i * nch + c], 32768.0, -32768, 32767);
        }
        if (++w->frame_fill == w->frame->nb_samples) {
            w->frame->pts = w->pts;
            w->pts += w->frame_fill;
            w->frame_fill = 0;
            int r = enc_send(w, w->frame, err);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

int flm_audio_writer_finish(flm_audio_writer *w, flm_error *err)
{
    int r;
    if (w->finished)
        return 0;
    if (w->f) {
        if (fflush(w->f) != 0 || fseek(w->f, 0, SEEK_SET) != 0)
            return flm_error_set(err, FLM_EIO, "%s: write failed: %s", w->path, strerror(errno));
        if ((r = wav_header(w, err)) < 0)
            return r;
        FILE *f = w->f;
        w->f = NULL;
        if (fclose(f) != 0)
            return flm_error_set(err, FLM_EIO, "%s: close failed: %s", w->path, strerror(errno));
        w->finished = 1;
        return 0;
    }
    if (w->frame_fill > 0) {
        int full = w->frame->nb_samples;
        w->frame->nb_samples = w->frame_fill;
        w->frame->pts = w->pts;
        w->pts += w->frame_fill;
        r = enc_send(w, w->frame, err);
        w->frame->nb_samples = full;
        w->frame_fill = 0;
        if (r < 0)
            return r;
    }
    if ((r = enc_send(w, NULL, err)) < 0)
        return r;
    char reason[256];
    if ((r = av_write_trailer(w->oc)) < 0)
        return flm_error_set(err, FLM_EIO, "%s: cannot finish the %s file: %s", w->path,
                             enc_name(w), flm_av_reason(r, reason, sizeof reason));
    if ((r = avio_closep(&w->oc->pb)) < 0)
        return flm_error_set(err, FLM_EIO, "%s: close failed: %s", w->path,
                             flm_av_reason(r, reason, sizeof reason));
    w->finished = 1;
    return 0;
}

void flm_audio_writer_destroy(flm_audio_writer **wp)
{
    flm_audio_writer *w = wp ? *wp : NULL;
    if (!w)
        return;
    if (w->f)
        fclose(w->f);
    if (w->oc) {
        if (w->oc->pb)
            avio_closep(&w->oc->pb);
        avformat_free_context(w->oc);
    }
    avcodec_free_context(&w->enc);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    if (!w->finished && w->created)
        unlink(w->path);
    flm_free(w->path);
    flm_free(w);
    *wp = NULL;
}

int flm_audio_write_file(const char *path, int32_t format, const float *samples, int64_t n_samples,
                         int32_t n_channels, int32_t sample_rate, flm_error *err)
{
    flm_audio_writer *w = NULL;
    if (n_samples < 0)
        return flm_error_set(err, FLM_EINVAL, "%s: negative sample count", path);
    int r = flm_audio_writer_create(&w, path, format, sample_rate, n_channels, err);
    if (r < 0)
        return r;
    if ((r = flm_audio_writer_write(w, samples, (size_t)n_samples, err)) < 0 ||
        (r = flm_audio_writer_finish(w, err)) < 0) {
        flm_audio_writer_destroy(&w);
        return r;
    }
    flm_audio_writer_destroy(&w);
    return 0;
}
