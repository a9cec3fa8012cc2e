/* audio.c - FFmpeg decode (libavformat + libavcodec + libswresample), the sample/frame mapping,
 * and the FFmpeg log capture shared with the writers (audio_write.c). The contract is in
 * flm_audio.h. */
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

#include "audio_internal.h"
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

void flm_av_init(void)
{
    pthread_once(&log_once, install_log);
}

void flm_av_log_clear(void)
{
    last_log[0] = 0;
}

const char *flm_av_reason(int averr, char *buf, size_t size)
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
    flm_av_log_clear();
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
        flm_av_reason(r, reason, sizeof reason);
        if (r == AVERROR(ENOENT))
            return fail(d, err, FLM_ENOTFOUND, "cannot open: %s", reason);
        if (r == AVERROR(EACCES) || r == AVERROR(EIO) || r == AVERROR(EISDIR))
            return fail(d, err, FLM_EIO, "cannot open: %s", reason);
        /* The extension is not trusted: probing failed on the content itself. */
        return fail(d, err, FLM_EFORMAT, "not a recognized audio/video file: %s", reason);
    }
    flm_av_log_clear();
    r = avformat_find_stream_info(d->fmt, NULL);
    if (r < 0)
        return fail(d, err, FLM_ECORRUPT, "cannot read stream information: %s",
                    flm_av_reason(r, reason, sizeof reason));
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
                    flm_av_reason(r, reason, sizeof reason));
    d->stream_index = r;
    AVStream *st = d->fmt->streams[r];
    d->time_base = st->time_base;
    d->cc = avcodec_alloc_context3(codec);
    if (!d->cc)
        return fail(d, err, FLM_ENOMEM, "out of memory (codec context)");
    r = avcodec_parameters_to_context(d->cc, st->codecpar);
    if (r < 0)
        return fail(d, err, FLM_EAUDIO, "bad codec parameters: %s",
                    flm_av_reason(r, reason, sizeof reason));
    d->cc->pkt_timebase = st->time_base;
    d->cc->thread_count = 1;
    flm_av_log_clear();
    r = avcodec_open2(d->cc, codec, NULL);
    if (r < 0)
        return fail(d, err, FLM_EAUDIO, "cannot open the %s decoder: %s", codec->name,
                    flm_av_reason(r, reason, sizeof reason));
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
    flm_av_init();
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
                        flm_av_reason(got, reason, sizeof reason));
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
                    flm_av_reason(r, reason, sizeof reason));
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
                        flm_av_reason(r, reason, sizeof reason));
        if (d->demux_eof)
            return fail(d, err, FLM_EAUDIO, "decoder wants input after end of stream");
        flm_av_log_clear();
        r = av_read_frame(d->fmt, d->pkt);
        if (r == AVERROR_EOF) {
            d->demux_eof = 1;
            r = avcodec_send_packet(d->cc, NULL);
            if (r < 0 && r != AVERROR_EOF)
                return fail(d, err, FLM_EAUDIO, "cannot flush the decoder: %s",
                            flm_av_reason(r, reason, sizeof reason));
            continue;
        }
        if (r < 0) {
            int code = r == AVERROR(EIO) ? FLM_EIO : FLM_ECORRUPT;
            return fail(d, err, code, "cannot read at %.2f s: %s",
                        (double)d->src_decoded /
                            (d->info.src_sample_rate ? d->info.src_sample_rate : 1),
                        flm_av_reason(r, reason, sizeof reason));
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
                        flm_av_reason(r, reason, sizeof reason));
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
