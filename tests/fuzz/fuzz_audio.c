/* fuzz_audio.c - decode arbitrary bytes through the in-memory FFmpeg decoder.
 *
 * libFuzzer build: -Dfuzz=true (clang). Otherwise tests/fuzz/replay.c supplies main() and replays
 * every file named on the command line (a directory: every file in it), which `meson test
 * --suite fuzz-regress` does with tests/fuzz/corpus/audio. Any crash, sanitizer report or hang
 * fails.
 * Whatever the input: errors carry a code and message, the length limit and position hold. */
#include <stdint.h>
#include <stdlib.h>

#include "flm_audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flm_audio_params p = flm_audio_default_params();
    p.max_samples = 24000 * 20; /* keep each input fast: at most 20 s of output */
    p.mode = size > 0 && (data[size - 1] & 1) ? FLM_AUDIO_PER_CHANNEL : FLM_AUDIO_MONO;
    flm_error err = {0};
    flm_audio_decoder *d = NULL;
    if (flm_audio_decoder_open_memory(&d, data, size, "fuzz", &p, &err) < 0) {
        if (err.code >= 0 || !err.msg[0])
            abort(); /* a failure must carry a code and a message */
        return 0;
    }
    int nch = flm_audio_decoder_info(d)->n_channels;
    if (nch < 1 || nch > FLM_AUDIO_MAX_CHANNELS)
        abort();
    static float buf[4096 * FLM_AUDIO_MAX_CHANNELS];
    int64_t total = 0;
    for (;;) {
        size_t got = 0;
        if (flm_audio_decoder_read(d, buf, 4096, &got, &err) < 0 || got == 0)
            break;
        total += (int64_t)got;
    }
    if (total > p.max_samples || total != flm_audio_decoder_position(d))
        abort(); /* the length limit and the position must hold whatever the input */
    flm_audio_decoder_destroy(&d);
    return 0;
}
