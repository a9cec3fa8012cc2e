/* audio_internal.h - what libstream's FFmpeg users share (audio.c decodes, audio_write.c
 * writes): FFmpeg's log captured per thread so messages can quote its reason. Not installed. */
#ifndef FLM_AUDIO_INTERNAL_H
#define FLM_AUDIO_INTERNAL_H

#include <stddef.h>

/* Once per process: FFmpeg's log goes to a per-thread buffer (a library must not print), and no
 * single FFmpeg allocation may exceed 256 MiB (sizes read from headers are checked late). */
void flm_av_init(void);
/* Forgets this thread's last FFmpeg message (before a call whose failure should quote its own). */
void flm_av_log_clear(void);
/* av_strerror(averr) and, when FFmpeg logged one, its last message: "... (ffmpeg: ...)". */
const char *flm_av_reason(int averr, char *buf, size_t size);

#endif
