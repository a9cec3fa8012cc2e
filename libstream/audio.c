/* audio.c - FFmpeg decode (libavformat + libavcodec + libswresample) and wav/flac writers.
 * The contract is in flm_audio.h. */
#include "flm_audio.h"

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flm_alloc.h"
#include "flm_util.h"

/* ---- FFmpeg log capture --------------------------------------------------------------------
 * A library must not print, but FFmpeg's log often holds the only precise reason for a failure
 * ("Header missing", "invalid sync code"). The callback keeps the last warning/error of the
 * calling thread so error messages can quote it. It replaces FFmpeg's global log callback once,
 * when the first decoder or writer is created. */
static _Thread_local char last_log[160];
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void log_callback(void *avcl, int level, const char *fmt, va_list ap)
{
    if (level > AV_LOG_WARNING)
        return;
    char line[sizeof last_log];
    int print_prefix = 0;
    va_list aq;
    va_copy(aq, ap);
    av_log_format_line2(avcl, level, fmt, aq, line, sizeof line, &print_prefix);
    va_end(aq);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = 0;
    if (n > 0)
        memcpy(last_log, line, n + 1);
}

/* FFmpeg allocates some sizes read from headers before checking them against the file (a wav
 * LIST chunk claiming 2 GB made the wav demuxer calloc 1.7 GB; found by fuzzing). No single
 * allocation of audio decoding needs more than this, so larger requests fail instead. */
#define FFMPEG_MAX_ALLOC (256u << 20)

static void install_log(void)
{
    av_log_set_callback(log_callback);
    av_max_alloc(FFMPEG_MAX_ALLOC);
}

static const char *av_reason(int averr, char *buf, size_t size)
{
    av_strerror(averr, buf, size);
    if (last_log[0]) {
        size_t n = strlen(buf);
        snprintf(buf + n, size - n, " (ffmpeg: %s)", last_log);
    }
    return buf;
}

/* ---- Time mapping ------------------------------------------------------------------------- */
int64_t flm_audio_seconds_to_sample(double sec, int32_t rate)
{
    double x = floor(sec * (double)rate + 0.5);
    if (!(x > 0.0)) /* also NaN */
        return 0;
    if (x >= (double)(INT64_MAX / 2))
        return INT64_MAX / 2;
    return (int64_t)x;
}

int64_t flm_audio_sample_to_frame(int64_t sample, int32_t samples_per_frame)
{
    if (sample >= 0)
        return sample / samples_per_frame;
    return -((-sample + samples_per_frame - 1) / samples_per_frame);
}

int64_t flm_audio_n_frames(int64_t n_samples, int32_t samples_per_frame)
{
    if (n_samples <= 0)
        return 0;
    return (n_samples + samples_per_frame - 1) / samples_per_frame;
}

/* ---- Decoder ------------------------------------------------------------------------------ */
typedef struct mem_source {
    const uint8_t *data;
    size_t size, pos;
} mem_source;

struct flm_audio_decoder {
    char *name;
    flm_audio_params params;
    flm_audio_info info;
    AVFormatContext *fmt;
    AVIOContext *avio; /* custom I/O for in-memory input, else NULL */
    mem_source mem;
    AVCodecContext *cc;
    SwrContext *swr;
    AVPacket *pkt;
    AVFrame *frame;
    int stream_index;
    AVRational time_base;
    /* the swr input configuration, to notice mid-stream changes */
    int swr_fmt, swr_rate;
    AVChannelLayout swr_layout;
    float *buf; /* [buf_cap][n_channels] converted samples not yet returned */
    size_t buf_cap, buf_len, buf_pos;
    int64_t position;         /* output samples returned */
    int64_t src_decoded;      /* source samples decoded */
    int64_t src_expected;     /* from the container header, -1 if unknown */
    int64_t cfg_src, cfg_out; /* source samples in / output samples out of the current swr */
    int demux_eof, done, err_code;
    char err_msg[FLM_ERROR_MSG_SIZE];
};

flm_audio_params flm_audio_default_params(void)
{
    flm_audio_params p = {.sample_rate = 24000, .mode = FLM_AUDIO_MONO, .max_samples = 0};
    return p;
}

static int mem_read(void *opaque, uint8_t *buf, int size)
{
    mem_source *m = opaque;
    size_t left = m->size - m->pos;
    if (left == 0)
        return AVERROR_EOF;
    size_t n = (size_t)size < left ? (size_t)size : left;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (int)n;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence)
{
    mem_source *m = opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE)
        return (int64_t)m->size;
    int64_t base = whence == SEEK_CUR ? (int64_t)m->pos : whence == SEEK_END ? (int64_t)m->size : 0;
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
        return AVERROR(EINVAL);
    int64_t p = base + offset;
    if (p < 0 || p > (int64_t)m->size)
        return AVERROR(EINVAL);
    m->pos = (size_t)p;
    return p;
}

static int fail(flm_audio_decoder *d, flm_error *err, int code, const char *fmt, ...)
    FLM_PRINTF(4, 5);
static int fail(flm_audio_decoder *d, flm_error *err, int code, const char *fmt, ...)
{
    char msg[FLM_ERROR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->err_code = code;
    snprintf(d->err_msg, sizeof d->err_msg, "%s: %s", d->name, msg);
    return flm_error_set(err, code, "%s", d->err_msg);
}

/* FFmpeg's wav demuxer ignores a data chunk size larger than the file (it then reads to the
 * end), so a PCM wav cut at a sample boundary would pass as a shorter recording; and it takes a
 * "fact" chunk's sample count as the duration, which streaming writers fill with a placeholder
 * (SoX: 0x1ffffc00). For PCM wav the length is therefore the data chunk's own size, in samples,
 * -1 when unknown: 0 and sizes from 0x7f000000 up are the placeholders of streaming writers
 * (FFmpeg writes 0xffffffff, SoX 0x7ffff000 minus its header). Returns 0 for other files (the
 * demuxer's duration stands), 1 with *samples set. The read position is restored. */
static int wav_pcm_declared(flm_audio_decoder *d, const AVStream *st, int64_t *samples)
{
    AVIOContext *pb = d->fmt->pb;
    const AVCodecParameters *cp = st->codecpar;
    if (!pb || strcmp(d->fmt->iformat->name, "wav") != 0 || cp->block_align <= 0 ||
        cp->codec_id < AV_CODEC_ID_PCM_S16LE || cp->codec_id >= AV_CODEC_ID_ADPCM_IMA_QT)
        return 0;
    int64_t saved = avio_tell(pb), pos = 12;
    uint8_t h[12];
    *samples = -1;
    if (saved < 0 || avio_seek(pb, 0, SEEK_SET) < 0)
        return 1;
    if (avio_read(pb, h, 12) == 12 && !memcmp(h, "RIFF", 4) && !memcmp(h + 8, "WAVE", 4)) {
        for (int i = 0; i < 64; i++) { /* chunks before "data": fmt, fact, LIST, ... */
            if (avio_seek(pb, pos, SEEK_SET) < 0 || avio_read(pb, h, 8) != 8)
                break;
            uint32_t size = flm_get_u32(h + 4);
            if (!memcmp(h, "data", 4)) {
                if (size > 0 && size < 0x7f000000u)
                    *samples = size / (uint32_t)cp->block_align;
                break;
            }
            pos += 8 + (int64_t)size + (size & 1);
        }
    }
    avio_seek(pb, saved, SEEK_SET);
    return 1;
}

static int open_common(flm_audio_decoder *d, flm_error *err)
{
    char reason[256];
    const flm_audio_params *p = &d->params;
    if (p->sample_rate < 8000 || p->sample_rate > 192000)
        return fail(d, err, FLM_EINVAL, "output sample rate %d Hz outside [8000, 192000]",
                    (int)p->sample_rate);
    if (p->mode != FLM_AUDIO_MONO && p->mode != FLM_AUDIO_PER_CHANNEL)
        return fail(d, err, FLM_EINVAL, "unknown channel mode %d", (int)p->mode);
    last_log[0] = 0;
    /* "file:" keeps FFmpeg from reading a name like "concat:a|b" or "http:..." as a protocol */
    char *url = NULL;
    if (!d->avio) {
        url = flm_malloc(strlen(d->name) + 6);
        if (!url)
            return fail(d, err, FLM_ENOMEM, "out of memory");
        memcpy(url, "file:", 5);
        memcpy(url + 5, d->name, strlen(d->name) + 1);
    }
    int r = avformat_open_input(&d->fmt, url, NULL, NULL);
    flm_free(url);
    if (r < 0) {
        av_reason(r, reason, sizeof reason);
        if (r == AVERROR(ENOENT))
            return fail(d, err, FLM_ENOTFOUND, "cannot open: %s", reason);
        if (r == AVERROR(EACCES) || r == AVERROR(EIO) || r == AVERROR(EISDIR))
            return fail(d, err, FLM_EIO, "cannot open: %s", reason);
        /* The extension is not trusted: probing failed on the content itself. */
        return fail(d, err, FLM_EFORMAT, "not a recognized audio/video file: %s", reason);
    }
    last_log[0] = 0;
    r = avformat_find_stream_info(d->fmt, NULL);
    if (r < 0)
        return fail(d, err, FLM_ECORRUPT, "cannot read stream information: %s",
                    av_reason(r, reason, sizeof reason));
    snprintf(d->info.format, sizeof d->info.format, "%s", d->fmt->iformat->name);
    const AVCodec *codec = NULL;
    r = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (r == AVERROR_STREAM_NOT_FOUND) {
        char kinds[128] = "";
        for (unsigned i = 0; i < d->fmt->nb_streams && i < 8; i++) {
            const AVCodecParameters *cp = d->fmt->streams[i]->codecpar;
            size_t n = strlen(kinds);
            snprintf(kinds + n, sizeof kinds - n, "%s%s %s", i ? ", " : "",
                     av_get_media_type_string(cp->codec_type)
                         ? av_get_media_type_string(cp->codec_type)
                         : "unknown",
                     avcodec_get_name(cp->codec_id));
        }
        return fail(d, err, FLM_ENOTFOUND, "no audio stream (%u stream%s%s%s)", d->fmt->nb_streams,
                    d->fmt->nb_streams == 1 ? "" : "s", d->fmt->nb_streams ? ": " : "", kinds);
    }
    if (r == AVERROR_DECODER_NOT_FOUND || (r >= 0 && !codec)) {
        int idx = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
        const AVCodecParameters *cp = idx >= 0 ? d->fmt->streams[idx]->codecpar : NULL;
        return fail(d, err, FLM_EAUDIO,
                    "unsupported codec '%s' (tag 0x%04x): this FFmpeg has no decoder for it",
                    cp ? avcodec_get_name(cp->codec_id) : "?", cp ? cp->codec_tag : 0u);
    }
    if (r < 0)
        return fail(d, err, FLM_EAUDIO, "cannot select an audio stream: %s",
                    av_reason(r, reason, sizeof reason));
    d->stream_index = r;
    AVStream *st = d->fmt->streams[r];
    d->time_base = st->time_base;
    d->cc = avcodec_alloc_context3(codec);
    if (!d->cc)
        return fail(d, err, FLM_ENOMEM, "out of memory (codec context)");
    r = avcodec_parameters_to_context(d->cc, st->codecpar);
    if (r < 0)
        return fail(d, err, FLM_EAUDIO, "bad codec parameters: %s",
                    av_reason(r, reason, sizeof reason));
    d->cc->pkt_timebase = st->time_base;
    d->cc->thread_count = 1;
    last_log[0] = 0;
    r = avcodec_open2(d->cc, codec, NULL);
    if (r < 0)
        return fail(d, err, FLM_EAUDIO, "cannot open the %s decoder: %s", codec->name,
                    av_reason(r, reason, sizeof reason));
    int src_ch = d->cc->ch_layout.nb_channels;
    if (src_ch <= 0 || src_ch > FLM_AUDIO_MAX_CHANNELS)
        return fail(d, err, FLM_EFORMAT, "%d channels (expected 1..%d)", src_ch,
                    FLM_AUDIO_MAX_CHANNELS);
    if (d->cc->sample_rate < FLM_AUDIO_MIN_SOURCE_RATE ||
        d->cc->sample_rate > FLM_AUDIO_MAX_SOURCE_RATE)
        return fail(d, err, FLM_EFORMAT, "source sample rate %d Hz outside [%d, %d]",
                    d->cc->sample_rate, FLM_AUDIO_MIN_SOURCE_RATE, FLM_AUDIO_MAX_SOURCE_RATE);
    d->info.src_channels = src_ch;
    d->info.src_sample_rate = d->cc->sample_rate;
    d->info.n_channels = p->mode == FLM_AUDIO_MONO ? 1 : src_ch;
    snprintf(d->info.codec, sizeof d->info.codec, "%s", codec->name);
    d->info.duration_s = -1.0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        d->info.duration_s = (double)st->duration * av_q2d(st->time_base);
    else if (d->fmt->duration != AV_NOPTS_VALUE && d->fmt->duration > 0)
        d->info.duration_s = (double)d->fmt->duration / AV_TIME_BASE;
    /* A header-declared length (not a bitrate guess) lets us detect truncation at the end. */
    d->src_expected = -1;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0 && d->cc->sample_rate > 0 &&
        d->fmt->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE)
        d->src_expected =
            av_rescale_q(st->duration, st->time_base, (AVRational){1, d->cc->sample_rate});
    int64_t declared;
    if (wav_pcm_declared(d, st, &declared))
        d->src_expected = declared;
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (!d->pkt || !d->frame)
        return fail(d, err, FLM_ENOMEM, "out of memory (packet/frame)");
    return 0;
}

static int alloc_decoder(flm_audio_decoder **out, const char *name, const flm_audio_params *params,
                         flm_error *err)
{
    pthread_once(&log_once, install_log);
    flm_audio_decoder *d = flm_calloc(1, sizeof *d);
    if (!d)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", name);
    d->name = flm_strdup(name);
    if (!d->name) {
        flm_free(d);
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", name);
    }
    d->params = params ? *params : flm_audio_default_params();
    *out = d;
    return 0;
}

int flm_audio_decoder_open(flm_audio_decoder **out, const char *path,
                           const flm_audio_params *params, flm_error *err)
{
    *out = NULL;
    flm_audio_decoder *d = NULL;
    int r = alloc_decoder(&d, path, params, err);
    if (r < 0)
        return r;
    /* FFmpeg's open of a FIFO (or a read of a device) would block: checked here first (the path
     * is opened again by FFmpeg; a file swapped in between is not guarded against) */
    struct stat stbuf;
    flm_error oerr = {0};
    int fd = flm_open_regular(path, 0, &oerr);
    if (fd >= 0) {
        int e = fstat(fd, &stbuf) < 0 ? errno : 0;
        close(fd);
        if (e)
            fd = flm_error_set(&oerr, FLM_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    if (fd < 0) {
        d->err_code = r = oerr.code;
        snprintf(d->err_msg, sizeof d->err_msg, "%s", oerr.msg);
        flm_error_set(err, r, "%s", d->err_msg);
        goto fail;
    }
    if (stbuf.st_size == 0) {
        r = fail(d, err, FLM_EFORMAT, "empty file (0 bytes)");
        goto fail;
    }
    r = open_common(d, err);
    if (r < 0)
        goto fail;
    *out = d;
    return 0;
fail:
    flm_audio_decoder_destroy(&d);
    return r;
}

int flm_audio_decoder_open_memory(flm_audio_decoder **out, const void *data, size_t size,
                                  const char *name, const flm_audio_params *params, flm_error *err)
{
    *out = NULL;
    flm_audio_decoder *d = NULL;
    int r = alloc_decoder(&d, name ? name : "<memory>", params, err);
    if (r < 0)
        return r;
    if (size == 0) {
        r = fail(d, err, FLM_EFORMAT, "empty file (0 bytes)");
        goto fail;
    }
    d->mem = (mem_source){.data = data, .size = size, .pos = 0};
    enum { AVIO_BUF = 32768 };
    uint8_t *iobuf = av_malloc(AVIO_BUF);
    if (!iobuf) {
        r = fail(d, err, FLM_ENOMEM, "out of memory (I/O buffer)");
        goto fail;
    }
    d->avio = avio_alloc_context(iobuf, AVIO_BUF, 0, &d->mem, mem_read, NULL, mem_seek);
    if (!d->avio) {
        av_free(iobuf);
        r = fail(d, err, FLM_ENOMEM, "out of memory (I/O context)");
        goto fail;
    }
    d->fmt = avformat_alloc_context();
    if (!d->fmt) {
        r = fail(d, err, FLM_ENOMEM, "out of memory (format context)");
        goto fail;
    }
    d->fmt->pb = d->avio;
    d->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    r = open_common(d, err);
    if (r < 0)
        goto fail;
    *out = d;
    return 0;
fail:
    flm_audio_decoder_destroy(&d);
    return r;
}

const flm_audio_info *flm_audio_decoder_info(const flm_audio_decoder *d)
{
    return &d->info;
}

int64_t flm_audio_decoder_position(const flm_audio_decoder *d)
{
    return d->position;
}

void flm_audio_decoder_destroy(flm_audio_decoder **dp)
{
    flm_audio_decoder *d = dp ? *dp : NULL;
    if (!d)
        return;
    swr_free(&d->swr);
    av_channel_layout_uninit(&d->swr_layout);
    av_frame_free(&d->frame);
    av_packet_free(&d->pkt);
    avcodec_free_context(&d->cc);
    if (d->fmt)
        avformat_close_input(&d->fmt); /* also frees a context that failed to open */
    if (d->avio) {
        av_freep(&d->avio->buffer);
        avio_context_free(&d->avio);
    }
    flm_free(d->buf);
    flm_free(d->name);
    flm_free(d);
    *dp = NULL;
}

/* Makes room for `more` samples after buf_len (compacting what was already returned). */
static int reserve(flm_audio_decoder *d, size_t more, flm_error *err)
{
    size_t nch = (size_t)d->info.n_channels;
    if (d->buf_pos > 0) {
        memmove(d->buf, d->buf + d->buf_pos * nch, (d->buf_len - d->buf_pos) * nch * sizeof(float));
        d->buf_len -= d->buf_pos;
        d->buf_pos = 0;
    }
    size_t cap = d->buf_cap * nch;
    if (flm_grow((void **)&d->buf, &cap, (d->buf_len + more) * nch, sizeof(float)) < 0)
        return fail(d, err, FLM_ENOMEM, "out of memory (sample buffer of %zu samples)",
                    d->buf_len + more);
    d->buf_cap = cap / nch;
    return 0;
}

/* Converts in_n input samples (NULL: flush the resampler) and appends them to buf. */
static int convert(flm_audio_decoder *d, const uint8_t **in, int in_n, flm_error *err)
{
    for (;;) {
        int room = swr_get_out_samples(d->swr, in ? in_n : 0);
        if (room < 0)
            return fail(d, err, FLM_EAUDIO, "resampler error");
        if (!in && room == 0)
            room = 256; /* the flush may still hold a few samples */
        int r = reserve(d, (size_t)room, err);
        if (r < 0)
            return r;
        uint8_t *outp = (uint8_t *)(d->buf + d->buf_len * (size_t)d->info.n_channels);
        int got = swr_convert(d->swr, &outp, room, in, in ? in_n : 0);
        if (got < 0) {
            char reason[256];
            return fail(d, err, FLM_EAUDIO, "resampling failed: %s",
                        av_reason(got, reason, sizeof reason));
        }
        d->buf_len += (size_t)got;
        d->cfg_out += got;
        if (in || got == 0)
            return 0;
    }
}

/* Flushes the resampler and makes the output of this configuration exactly
 * ceil(cfg_src * out_rate / in_rate) samples: libswresample's flush can end one sample short
 * (or emit nothing for inputs shorter than its filter), so the tail is zero-padded or trimmed. */
static int drain(flm_audio_decoder *d, flm_error *err)
{
    int r = convert(d, NULL, 0, err);
    if (r < 0)
        return r;
    int64_t want = (d->cfg_src * d->params.sample_rate + d->swr_rate - 1) / d->swr_rate;
    if (d->cfg_out > want) {
        size_t extra = (size_t)(d->cfg_out - want), unread = d->buf_len - d->buf_pos;
        d->buf_len -= extra < unread ? extra : unread;
    } else if (d->cfg_out < want) {
        size_t more = (size_t)(want - d->cfg_out), nch = (size_t)d->info.n_channels;
        if ((r = reserve(d, more, err)) < 0)
            return r;
        memset(d->buf + d->buf_len * nch, 0, more * nch * sizeof(float));
        d->buf_len += more;
    }
    d->cfg_src = d->cfg_out = 0;
    return 0;
}

static int setup_swr(flm_audio_decoder *d, const AVFrame *f, flm_error *err)
{
    AVChannelLayout in_layout = {0}, out_layout = {0};
    int r;
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || f->ch_layout.nb_channels <= 0)
        av_channel_layout_default(&in_layout, f->ch_layout.nb_channels);
    else if ((r = av_channel_layout_copy(&in_layout, &f->ch_layout)) < 0)
        return fail(d, err, FLM_ENOMEM, "out of memory (channel layout)");
    if (in_layout.nb_channels <= 0 || in_layout.nb_channels > FLM_AUDIO_MAX_CHANNELS) {
        av_channel_layout_uninit(&in_layout);
        return fail(d, err, FLM_EFORMAT, "%d channels (expected 1..%d)", in_layout.nb_channels,
                    FLM_AUDIO_MAX_CHANNELS);
    }
    if (d->params.mode == FLM_AUDIO_MONO)
        out_layout = (AVChannelLayout)AV_CHANNEL_LAYOUT_MONO;
    else if (in_layout.nb_channels != d->info.n_channels) {
        av_channel_layout_uninit(&in_layout);
        return fail(d, err, FLM_EFORMAT, "channel count changes mid-stream (%d -> %d)",
                    d->info.n_channels, in_layout.nb_channels);
    } else if (av_channel_layout_copy(&out_layout, &in_layout) < 0) {
        av_channel_layout_uninit(&in_layout);
        return fail(d, err, FLM_ENOMEM, "out of memory (channel layout)");
    }
    swr_free(&d->swr);
    r = swr_alloc_set_opts2(&d->swr, &out_layout, AV_SAMPLE_FMT_FLT, d->params.sample_rate,
                            &in_layout, f->format, f->sample_rate, 0, NULL);
    if (r >= 0)
        r = swr_init(d->swr);
    av_channel_layout_uninit(&out_layout);
    if (r < 0) {
        av_channel_layout_uninit(&in_layout);
        char reason[256];
        return fail(d, err, FLM_EAUDIO, "cannot set up resampling from %d Hz %s: %s",
                    f->sample_rate,
                    av_get_sample_fmt_name(f->format) ? av_get_sample_fmt_name(f->format) : "?",
                    av_reason(r, reason, sizeof reason));
    }
    av_channel_layout_uninit(&d->swr_layout);
    d->swr_layout = in_layout; /* takes ownership */
    d->swr_fmt = f->format;
    d->swr_rate = f->sample_rate;
    return 0;
}

/* A float source can hold NaN or infinity, which the resampler would smear over its filter and
 * every later stage (loudness, augmentation, Mimi) would turn into garbage: refused, with the
 * time of the first one. */
static int check_finite(flm_audio_decoder *d, const AVFrame *f, flm_error *err)
{
    enum AVSampleFormat packed = av_get_packed_sample_fmt(f->format);
    if (packed != AV_SAMPLE_FMT_FLT && packed != AV_SAMPLE_FMT_DBL)
        return 0;
    int planar = av_sample_fmt_is_planar(f->format), nch = f->ch_layout.nb_channels;
    size_t n = (size_t)f->nb_samples * (size_t)(planar ? 1 : nch);
    for (int p = 0; p < (planar ? nch : 1); p++)
        for (size_t i = 0; i < n; i++) {
            double x = packed == AV_SAMPLE_FMT_FLT ? ((const float *)f->extended_data[p])[i]
                                                   : ((const double *)f->extended_data[p])[i];
            if (!isfinite(x))
                return fail(d, err, FLM_ECORRUPT, "non-finite sample (%s) at %.3f s",
                            isnan(x) ? "NaN" : "infinity",
                            (double)(d->src_decoded + (int64_t)(planar ? i : i / (size_t)nch)) /
                                f->sample_rate);
        }
    return 0;
}

static int take_frame(flm_audio_decoder *d, flm_error *err)
{
    AVFrame *f = d->frame;
    int r = 0;
    if (f->sample_rate <= 0 || f->ch_layout.nb_channels <= 0) {
        r = fail(d, err, FLM_ECORRUPT, "decoded frame without rate or channels");
        goto out;
    }
    /* an absurd rate would make libswresample build a filter bank of gigabytes */
    if (f->sample_rate < FLM_AUDIO_MIN_SOURCE_RATE || f->sample_rate > FLM_AUDIO_MAX_SOURCE_RATE) {
        r = fail(d, err, FLM_EFORMAT, "source sample rate %d Hz outside [%d, %d]", f->sample_rate,
                 FLM_AUDIO_MIN_SOURCE_RATE, FLM_AUDIO_MAX_SOURCE_RATE);
        goto out;
    }
    int same = d->swr && f->format == d->swr_fmt && f->sample_rate == d->swr_rate &&
               f->ch_layout.nb_channels == d->swr_layout.nb_channels &&
               (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC ||
                !av_channel_layout_compare(&f->ch_layout, &d->swr_layout));
    if (!same) {
        if (d->swr && (r = drain(d, err)) < 0) /* finish the old configuration */
            goto out;
        if ((r = setup_swr(d, f, err)) < 0)
            goto out;
    }
    if ((r = check_finite(d, f, err)) < 0)
        goto out;
    r = convert(d, (const uint8_t **)f->extended_data, f->nb_samples, err);
    d->src_decoded += f->nb_samples;
    d->cfg_src += f->nb_samples;
out:
    av_frame_unref(f);
    return r;
}

static int finish_stream(flm_audio_decoder *d, flm_error *err)
{
    int r;
    if (d->swr && (r = drain(d, err)) < 0)
        return r;
    d->done = 1;
    if (d->src_decoded == 0)
        return fail(d, err, FLM_EFORMAT, "zero length: the audio stream holds no samples");
    if (d->src_expected > 0 && d->info.src_sample_rate > 0) {
        /* Header-declared length vs decoded. Lossless codecs (PCM, FLAC, ...) have no priming
         * or padding: 10 ms of slack. Lossy ones declare frames including encoder delay and
         * padding (an mp3's Xing count): 0.5 s + 1 %, so only real cuts are reported. */
        const AVCodecDescriptor *desc = avcodec_descriptor_get(d->cc->codec_id);
        int lossless =
            desc && (desc->props & AV_CODEC_PROP_LOSSLESS) && !(desc->props & AV_CODEC_PROP_LOSSY);
        int64_t slack = lossless ? d->info.src_sample_rate / 100
                                 : d->info.src_sample_rate / 2 + d->src_expected / 100;
        if (d->src_decoded + slack < d->src_expected)
            return fail(d, err, FLM_ECORRUPT,
                        "truncated: the header declares %.3f s of audio, the file holds %.3f s",
                        (double)d->src_expected / d->info.src_sample_rate,
                        (double)d->src_decoded / d->info.src_sample_rate);
    }
    return 0;
}

/* True when the demuxer has consumed the whole input: a decode failure there is a cut file. */
static int at_end(flm_audio_decoder *d)
{
    AVIOContext *pb = d->fmt->pb;
    if (!pb)
        return 0;
    int64_t size = avio_size(pb);
    return avio_feof(pb) || (size > 0 && avio_tell(pb) >= size);
}

/* Decodes until buf holds unread samples or the stream ends. */
static int refill(flm_audio_decoder *d, flm_error *err)
{
    char reason[256];
    while (d->buf_pos == d->buf_len && !d->done) {
        int r = avcodec_receive_frame(d->cc, d->frame);
        if (r == 0) {
            if ((r = take_frame(d, err)) < 0)
                return r;
            continue;
        }
        if (r == AVERROR_EOF)
            return finish_stream(d, err);
        if (r != AVERROR(EAGAIN))
            return fail(d, err, FLM_ECORRUPT, "%s at %.2f s: %s",
                        d->demux_eof || at_end(d) ? "truncated (the file ends inside a packet)"
                                                  : "corrupt data",
                        (double)d->src_decoded /
                            (d->info.src_sample_rate ? d->info.src_sample_rate : 1),
                        av_reason(r, reason, sizeof reason));
        if (d->demux_eof)
            return fail(d, err, FLM_EAUDIO, "decoder wants input after end of stream");
        last_log[0] = 0;
        r = av_read_frame(d->fmt, d->pkt);
        if (r == AVERROR_EOF) {
            d->demux_eof = 1;
            r = avcodec_send_packet(d->cc, NULL);
            if (r < 0 && r != AVERROR_EOF)
                return fail(d, err, FLM_EAUDIO, "cannot flush the decoder: %s",
                            av_reason(r, reason, sizeof reason));
            continue;
        }
        if (r < 0) {
            int code = r == AVERROR(EIO) ? FLM_EIO : FLM_ECORRUPT;
            return fail(d, err, code, "cannot read at %.2f s: %s",
                        (double)d->src_decoded /
                            (d->info.src_sample_rate ? d->info.src_sample_rate : 1),
                        av_reason(r, reason, sizeof reason));
        }
        if (d->pkt->stream_index != d->stream_index) {
            av_packet_unref(d->pkt);
            continue;
        }
        r = avcodec_send_packet(d->cc, d->pkt);
        av_packet_unref(d->pkt);
        if (r < 0 && r != AVERROR(EAGAIN))
            return fail(d, err, FLM_ECORRUPT, "%s at %.2f s: %s",
                        at_end(d) ? "truncated (the file ends inside a packet)" : "corrupt data",
                        (double)d->src_decoded /
                            (d->info.src_sample_rate ? d->info.src_sample_rate : 1),
                        av_reason(r, reason, sizeof reason));
    }
    return 0;
}

int flm_audio_decoder_read(flm_audio_decoder *d, float *out, size_t max_samples, size_t *n_read,
                           flm_error *err)
{
    *n_read = 0;
    if (d->err_code)
        return flm_error_set(err, d->err_code, "%s", d->err_msg);
    size_t nch = (size_t)d->info.n_channels;
    while (*n_read < max_samples) {
        if (d->buf_pos == d->buf_len) {
            d->buf_pos = d->buf_len = 0;
            flm_error e = {0};
            int r = refill(d, &e);
            if (r < 0) {
                if (*n_read > 0)
                    return 0; /* deliver what was decoded; the error comes with the next call */
                if (err)
                    *err = e;
                return r;
            }
            if (d->buf_pos == d->buf_len)
                break; /* end of stream */
        }
        size_t n = d->buf_len - d->buf_pos;
        if (n > max_samples - *n_read)
            n = max_samples - *n_read;
        if (d->params.max_samples > 0) {
            int64_t room = d->params.max_samples - d->position;
            if (room <= 0) {
                /* stored (sticky); samples already copied by this call go out first */
                int r =
                    fail(d, *n_read > 0 ? NULL : err, FLM_ERANGE,
                         "longer than the limit of %lld samples", (long long)d->params.max_samples);
                return *n_read > 0 ? 0 : r;
            }
            if ((int64_t)n > room)
                n = (size_t)room;
        }
        memcpy(out + *n_read * nch, d->buf + d->buf_pos * nch, n * nch * sizeof(float));
        d->buf_pos += n;
        *n_read += n;
        d->position += (int64_t)n;
    }
    return 0;
}

int flm_audio_read_file(const char *path, const flm_audio_params *params, float **out,
                        int64_t *n_samples, int32_t *n_channels, flm_error *err)
{
    *out = NULL;
    *n_samples = 0;
    *n_channels = 0;
    flm_audio_decoder *d = NULL;
    float *x = NULL;
    size_t cap = 0, len = 0;
    int r = flm_audio_decoder_open(&d, path, params, err);
    if (r < 0)
        return r;
    size_t nch = (size_t)d->info.n_channels;
    for (;;) {
        if ((r = flm_grow((void **)&x, &cap, (len + 8192) * nch, sizeof(float))) < 0) {
            r = flm_error_set(err, FLM_ENOMEM, "%s: out of memory (%zu samples)", path, len);
            goto fail;
        }
        size_t room = cap / nch - len, got = 0;
        if ((r = flm_audio_decoder_read(d, x + len * nch, room, &got, err)) < 0)
            goto fail;
        if (got == 0)
            break;
        len += got;
    }
    *out = x;
    *n_samples = (int64_t)len;
    *n_channels = (int32_t)nch;
    flm_audio_decoder_destroy(&d);
    return 0;
fail:
    flm_free(x);
    flm_audio_decoder_destroy(&d);
    return r;
}

/* ---- Writers ------------------------------------------------------------------------------ */
struct flm_audio_writer {
    char *path;
    int32_t format, sample_rate, n_channels;
    int finished, created;
    /* wav */
    FILE *f;
    uint64_t data_size;
    /* flac */
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
    return 0;
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

static int flac_open(flm_audio_writer *w, flm_error *err)
{
    char reason[256], url[4096];
    if ((size_t)snprintf(url, sizeof url, "file:%s", w->path) >= sizeof url)
        return flm_error_set(err, FLM_EINVAL, "%s: path too long", w->path);
    int r = avformat_alloc_output_context2(&w->oc, NULL, "flac", url);
    if (r < 0 || !w->oc)
        return flm_error_set(err, FLM_EAUDIO, "%s: cannot create flac output: %s", w->path,
                             av_reason(r, reason, sizeof reason));
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_FLAC);
    if (!codec)
        return flm_error_set(err, FLM_EAUDIO, "%s: this FFmpeg has no flac encoder", w->path);
    w->enc = avcodec_alloc_context3(codec);
    AVStream *st = avformat_new_stream(w->oc, NULL);
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->enc || !st || !w->frame || !w->pkt)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory (flac encoder)", w->path);
    w->enc->sample_fmt = w->format == FLM_AUDIO_FLAC_S24 ? AV_SAMPLE_FMT_S32 : AV_SAMPLE_FMT_S16;
    w->enc->bits_per_raw_sample = w->format == FLM_AUDIO_FLAC_S24 ? 24 : 16;
    w->enc->sample_rate = w->sample_rate;
    w->enc->time_base = (AVRational){1, w->sample_rate};
    w->enc->thread_count = 1;
    av_channel_layout_default(&w->enc->ch_layout, w->n_channels);
    if ((r = avcodec_open2(w->enc, codec, NULL)) < 0)
        return flm_error_set(err, FLM_EAUDIO, "%s: cannot open the flac encoder: %s", w->path,
                             av_reason(r, reason, sizeof reason));
    if ((r = avcodec_parameters_from_context(st->codecpar, w->enc)) < 0)
        return flm_error_set(err, FLM_EAUDIO, "%s: %s", w->path,
                             av_reason(r, reason, sizeof reason));
    st->time_base = w->enc->time_base;
    if ((r = avio_open(&w->oc->pb, url, AVIO_FLAG_WRITE)) < 0)
        return flm_error_set(err, FLM_EIO, "%s: cannot create: %s", w->path,
                             av_reason(r, reason, sizeof reason));
    w->created = 1;
    if ((r = avformat_write_header(w->oc, NULL)) < 0)
        return flm_error_set(err, FLM_EIO, "%s: cannot write the flac header: %s", w->path,
                             av_reason(r, reason, sizeof reason));
    w->frame->format = w->enc->sample_fmt;
    w->frame->sample_rate = w->sample_rate;
    w->frame->nb_samples = w->enc->frame_size > 0 ? w->enc->frame_size : 4608;
    if ((r = av_channel_layout_copy(&w->frame->ch_layout, &w->enc->ch_layout)) < 0 ||
        (r = av_frame_get_buffer(w->frame, 0)) < 0)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory (flac frame)", w->path);
    return 0;
}

int flm_audio_writer_create(flm_audio_writer **out, const char *path, int32_t format,
                            int32_t sample_rate, int32_t n_channels, flm_error *err)
{
    *out = NULL;
    if (format < FLM_AUDIO_WAV_F32 || format > FLM_AUDIO_FLAC_S24)
        return flm_error_set(err, FLM_EINVAL, "%s: unknown output format %d", path, (int)format);
    if (sample_rate < 1 || sample_rate > 768000)
        return flm_error_set(err, FLM_EINVAL, "%s: sample rate %d outside [1, 768000]", path,
                             (int)sample_rate);
    if (n_channels < 1 || n_channels > (format >= FLM_AUDIO_FLAC_S16 ? 8 : FLM_AUDIO_MAX_CHANNELS))
        return flm_error_set(err, FLM_EINVAL, "%s: %d channels not supported by this format", path,
                             (int)n_channels);
    pthread_once(&log_once, install_log);
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
    } else if ((r = flac_open(w, err)) < 0) {
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

static int flac_send(flm_audio_writer *w, AVFrame *frame, flm_error *err)
{
    char reason[256];
    int r = avcodec_send_frame(w->enc, frame);
    if (r < 0)
        return flm_error_set(err, FLM_EAUDIO, "%s: flac encoding failed: %s", w->path,
                             av_reason(r, reason, sizeof reason));
    while ((r = avcodec_receive_packet(w->enc, w->pkt)) == 0) {
        w->pkt->stream_index = 0;
        r = av_write_frame(w->oc, w->pkt);
        av_packet_unref(w->pkt);
        if (r < 0)
            return flm_error_set(err, FLM_EIO, "%s: write failed: %s", w->path,
                                 av_reason(r, reason, sizeof reason));
    }
    if (r != AVERROR(EAGAIN) && r != AVERROR_EOF)
        return flm_error_set(err, FLM_EAUDIO, "%s: flac encoding failed: %s", w->path,
                             av_reason(r, reason, sizeof reason));
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
                return flm_error_set(err, FLM_ENOMEM, "%s: out of memory (flac frame)", w->path);
        }
        for (size_t c = 0; c < nch; c++) {
            size_t k = (size_t)w->frame_fill * nch + c;
            if (s24)
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
            int r = flac_send(w, w->frame, err);
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
        r = flac_send(w, w->frame, err);
        w->frame->nb_samples = full;
        w->frame_fill = 0;
        if (r < 0)
            return r;
    }
    if ((r = flac_send(w, NULL, err)) < 0)
        return r;
    char reason[256];
    if ((r = av_write_trailer(w->oc)) < 0)
        return flm_error_set(err, FLM_EIO, "%s: cannot finish the flac file: %s", w->path,
                             av_reason(r, reason, sizeof reason));
    if ((r = avio_closep(&w->oc->pb)) < 0)
        return flm_error_set(err, FLM_EIO, "%s: close failed: %s", w->path,
                             av_reason(r, reason, sizeof reason));
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
