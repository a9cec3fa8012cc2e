/* flm_audio.h - audio I/O through FFmpeg: streaming decode to 24 kHz float, wav/flac writers.
 *
 *     flm_error err = {0};
 *     flm_audio_params p = flm_audio_default_params();   // 24000 Hz, mono mixdown
 *     flm_audio_decoder *d = NULL;
 *     if (flm_audio_decoder_open(&d, "talk.mp3", &p, &err) < 0) { puts(err.msg); return; }
 *     float buf[4096];                                    // [n][n_channels] interleaved
 *     size_t n;
 *     while (flm_audio_decoder_read(d, buf, 4096, &n, &err) == 0 && n > 0)
 *         consume(buf, n);                                // n samples per channel
 *     if (err.code) puts(err.msg);                        // "talk.mp3: truncated: ..."
 *     flm_audio_decoder_destroy(&d);
 *
 *     float *x = NULL; int64_t n_samples; int32_t n_ch;   // whole file (short clips only)
 *     flm_audio_read_file("a.flac", &p, &x, &n_samples, &n_ch, &err);
 *     flm_audio_write_file("a.wav", FLM_AUDIO_WAV_F32, x, n_samples, n_ch, 24000, &err);
 *     flm_free(x);
 *
 * Decode contract
 * - Anything libavformat opens (wav, flac, mp3, opus, m4a, sph, video containers); the first
 *   "best" audio stream is used. Output is float32 at params.sample_rate (default 24000 Hz),
 *   either one mono mixdown channel (FLM_AUDIO_MONO, the libswresample default downmix matrix,
 *   i.e. exactly what `ffmpeg -ac 1` produces) or every source channel separately
 *   (FLM_AUDIO_PER_CHANNEL, for stereo dialogs: channel c of the file is output channel c).
 * - Resampling is libswresample with its default options (what the ffmpeg CLI's `-ar` does),
 *   so the decoded samples equal `ffmpeg -i IN -ac 1 -ar 24000 -f f32le -` up to float rounding
 *   (tests/unit/test_audio.c checks |diff| <= 1e-5; observed: bit-identical). For stereo the
 *   default matrix is mono = (L + R) / sqrt(2), which can exceed 1 on loud correlated input.
 * - Exact sample counts: a source of n samples at rate r gives exactly ceil(n * 24000 / r)
 *   output samples (per channel). libswresample's final flush sometimes ends one sample short
 *   (and emits nothing for inputs shorter than its filter, a few samples); the decoder pads
 *   such a tail with zeros (or trims an excess), so counts never depend on the resampler.
 *   Apart from that padding the samples are the CLI's.
 * - Memory is bounded independently of file length: one packet, one decoded frame and one
 *   converted frame are held at a time (multi-hour files decode in a few MB).
 * - Errors (each names the file and, for FFmpeg failures, its own av_strerror text):
 *     missing file                      FLM_ENOTFOUND
 *     empty file (0 bytes)              FLM_EFORMAT  "empty file"
 *     not a format FFmpeg recognizes    FLM_EFORMAT  "not a recognized audio/video file"
 *     no audio stream                   FLM_ENOTFOUND "no audio stream"
 *     no decoder for the codec          FLM_EAUDIO   "unsupported codec"
 *     > 64 channels, source rate outside [1000, 384000] Hz   FLM_EFORMAT
 *     corrupt packet / decode failure   FLM_ECORRUPT "corrupt data at S s"
 *     truncated (header promised more)  FLM_ECORRUPT "truncated: ..."
 *     decodes to zero samples           FLM_EFORMAT  "zero length"
 *   Open reports what the headers show; what only decoding reveals (corrupt packets,
 *   truncation, zero length) is returned by flm_audio_decoder_read (flm_audio_read_file: both).
 *   A file's extension is never trusted: formats are probed from content, so a flac file named
 *   x.wav decodes normally and a text file named x.mp3 is "not a recognized ... file".
 *
 * Samples, seconds and frames (codec profile: 24000 Hz, 1920 samples per 12.5 Hz frame)
 * - Sample i covers time [i / 24000, (i + 1) / 24000) s.
 * - Frame t covers samples [1920 t, 1920 (t + 1)); sample i is in frame floor(i / 1920).
 * - A span of n samples occupies ceil(n / 1920) frames; the last frame is zero-padded.
 * - A time in seconds maps to the sample index round-half-up(sec * rate), i.e.
 *   floor(sec * rate + 0.5); a [start, end) span in seconds maps to samples
 *   [idx(start), idx(end)), so adjacent spans tile without gap or overlap.
 *
 * Writers: WAV float32 (IEEE float, with a fact chunk), WAV int16 and FLAC 16/24 bit. Integer
 * formats clamp to [-1, 1] then round to nearest (s16 = lrint(x * 32768) clamped to
 * [-32768, 32767], the same as FFmpeg's flt->s16 conversion). WAV data is limited to 4 GiB.
 *
 * Process-wide FFmpeg settings made once, by the first decoder or writer: the log callback is
 * replaced (FFmpeg's messages are captured into error messages instead of printed) and
 * av_max_alloc is set to 256 MiB (headers claiming absurd sizes fail instead of allocating).
 *
 * Ownership: the decoder owns all FFmpeg state; buffers passed to read/write stay the
 * caller's. flm_audio_read_file returns a buffer the caller frees with flm_free. Paths are
 * copied. Handles are not thread-safe; separate handles are independent.
 */
#ifndef FLM_AUDIO_H
#define FLM_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"

#define FLM_AUDIO_MAX_CHANNELS 64
/* Source rates outside this range are rejected (FLM_EFORMAT) before resampling. */
#define FLM_AUDIO_MIN_SOURCE_RATE 1000
#define FLM_AUDIO_MAX_SOURCE_RATE 384000

typedef enum flm_audio_mode {
    FLM_AUDIO_MONO = 0,        /* one channel: libswresample's default downmix */
    FLM_AUDIO_PER_CHANNEL = 1, /* every source channel separately, interleaved */
} flm_audio_mode;

typedef struct flm_audio_params {
    int32_t sample_rate; /* output rate in Hz (8000..192000); default 24000 */
    int32_t mode;        /* flm_audio_mode; default FLM_AUDIO_MONO */
    int64_t max_samples; /* deliver at most this many samples, then FLM_ERANGE if the file holds
                            more; 0 = no limit */
} flm_audio_params;

/* What the decoder found in the file. */
typedef struct flm_audio_info {
    int32_t n_channels;      /* output channels: 1, or the source's channel count */
    int32_t src_channels;    /* channels in the file */
    int32_t src_sample_rate; /* rate in the file */
    double duration_s;       /* container's duration estimate, < 0 if unknown */
    char codec[32];          /* decoder name, e.g. "mp3float" */
    char format[32];         /* demuxer name, e.g. "wav" */
} flm_audio_info;

typedef struct flm_audio_decoder flm_audio_decoder;

FLM_API flm_audio_params flm_audio_default_params(void);

/* Opens path and prepares decoding; on failure *out stays NULL and err names the reason. */
FLM_API int flm_audio_decoder_open(flm_audio_decoder **out, const char *path,
                                   const flm_audio_params *params, flm_error *err);
/* The same from bytes in memory (data must outlive the decoder; it is not copied). name is used
 * in error messages only. */
FLM_API int flm_audio_decoder_open_memory(flm_audio_decoder **out, const void *data, size_t size,
                                          const char *name, const flm_audio_params *params,
                                          flm_error *err);
FLM_API const flm_audio_info *flm_audio_decoder_info(const flm_audio_decoder *d);
/* Decodes up to max_samples samples per channel into out ([max_samples][n_channels],
 * interleaved) and sets *n_read. *n_read == 0 with return 0 means end of stream. A call that
 * fails returns no samples (samples decoded before a failure are returned by a successful call
 * first). An error is sticky: later calls return it again. */
FLM_API int flm_audio_decoder_read(flm_audio_decoder *d, float *out, size_t max_samples,
                                   size_t *n_read, flm_error *err);
/* Samples per channel returned so far. */
FLM_API int64_t flm_audio_decoder_position(const flm_audio_decoder *d);
FLM_API void flm_audio_decoder_destroy(flm_audio_decoder **d);

/* Whole file into one buffer ([n_samples][n_channels], caller frees with flm_free). */
FLM_API int flm_audio_read_file(const char *path, const flm_audio_params *params, float **out,
                                int64_t *n_samples, int32_t *n_channels, flm_error *err);

/* ---- Writers ---------------------------------------------------------------------------- */
typedef enum flm_audio_format {
    FLM_AUDIO_WAV_F32 = 1,
    FLM_AUDIO_WAV_S16 = 2,
    FLM_AUDIO_FLAC_S16 = 3,
    FLM_AUDIO_FLAC_S24 = 4,
    FLM_AUDIO_OPUS = 5, /* Ogg Opus (libopus), 8/12/16/24/48 kHz, 1-2 channels */
} flm_audio_format;
/* The Opus writer's bit rate per channel (speech: transparent enough to judge a sample by ear,
 * 1/16 of 16-bit wav at 24 kHz). */
#define FLM_AUDIO_OPUS_BITRATE 24000

typedef struct flm_audio_writer flm_audio_writer;

/* Creates path (truncating it). samples passed to write are [n][n_channels] interleaved. */
FLM_API int flm_audio_writer_create(flm_audio_writer **out, const char *path, int32_t format,
                                    int32_t sample_rate, int32_t n_channels, flm_error *err);
FLM_API int flm_audio_writer_write(flm_audio_writer *w, const float *samples, size_t n_samples,
                                   flm_error *err);
/* Completes the file (headers, encoder flush). Must be called for a valid file. */
FLM_API int flm_audio_writer_finish(flm_audio_writer *w, flm_error *err);
/* Frees the writer; a writer destroyed unfinished removes its partial file. */
FLM_API void flm_audio_writer_destroy(flm_audio_writer **w);
/* create + write + finish. */
FLM_API int flm_audio_write_file(const char *path, int32_t format, const float *samples,
                                 int64_t n_samples, int32_t n_channels, int32_t sample_rate,
                                 flm_error *err);
/* FLM_AUDIO_WAV_F32 / _S16 / FLAC_S16 / FLAC_S24 / OPUS from "f32", "s16", "flac", "flac24",
 * "opus"; 0 if unknown. */
FLM_API int32_t flm_audio_format_from_name(const char *name);

/* ---- Time mapping (see the header comment) ----------------------------------------------- */
/* floor(sec * rate + 0.5), saturated to [0, INT64_MAX / 2]. */
FLM_API int64_t flm_audio_seconds_to_sample(double sec, int32_t rate);
/* floor(sample / samples_per_frame). */
FLM_API int64_t flm_audio_sample_to_frame(int64_t sample, int32_t samples_per_frame);
/* ceil(n_samples / samples_per_frame). */
FLM_API int64_t flm_audio_n_frames(int64_t n_samples, int32_t samples_per_frame);

#endif
