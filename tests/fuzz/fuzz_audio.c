/* fuzz_audio.c - decode arbitrary bytes through the in-memory FFmpeg decoder.
 *
 * libFuzzer build: -Dfuzz=true (clang) defines FLM_LIBFUZZER. Otherwise main() replays every
 * file named on the command line (a directory: every file in it), which `meson test --suite
 * fuzz-regress` does with tests/fuzz/corpus/audio. Any crash, sanitizer report or hang fails.
 * Whatever the input: errors carry a code and message, the length limit and position hold. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_util.h"

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

#ifndef FLM_LIBFUZZER
static int run_file(const char *path)
{
    char *data;
    size_t size;
    flm_error err = {0};
    if (flm_read_file(path, &data, &size, 64u << 20, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)data, size);
    flm_free(data);
    printf("ok %s\n", path);
    return 0;
}

int main(int argc, char **argv)
{
    int failed = 0, n = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *dir = opendir(argv[i]);
            struct dirent *de;
            while (dir && (de = readdir(dir))) {
                if (de->d_name[0] == '.')
                    continue;
                char full[4096];
                snprintf(full, sizeof full, "%s/%s", argv[i], de->d_name);
                failed |= run_file(full);
                n++;
            }
            if (dir)
                closedir(dir);
        } else {
            failed |= run_file(argv[i]);
            n++;
        }
    }
    printf("replayed %d inputs\n", n);
    return failed || n == 0;
}
#endif
