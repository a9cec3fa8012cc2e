/* Fuzz target: .npy code arrays (flm_npy_parse_codes) on arbitrary bytes. */
#include <stdint.h>

#include "flm_alloc.h"
#include "flm_npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int32_t *codes = NULL, n_q = 0;
    int64_t n_frames = 0;
    flm_error err = {0};
    if (flm_npy_parse_codes(data, size, "fuzz.npy", &codes, &n_q, &n_frames, &err) == 0)
        for (int64_t i = 0; i < (int64_t)n_q * n_frames; i++)
            (void)codes[i]; /* every code readable (ASan) */
    flm_free(codes);
    return 0;
}
