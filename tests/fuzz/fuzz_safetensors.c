/* Fuzz target for the safetensors header parser and tensor reads.
 *
 * Built with -Dfuzz=true (clang): libFuzzer drives LLVMFuzzerTestOneInput. Otherwise the replay
 * main below runs each file (or each file in each directory) named on the command line, which is
 * how `meson test --suite fuzz-regress` replays the saved corpus and past crashes. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_safetensors.h"
#include "flm_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flm_safetensors *st = NULL;
    flm_error err = {0};
    if (flm_safetensors_open_memory(&st, data, size, "fuzz", &err) < 0)
        return 0;
    float buf[4096];
    for (int i = 0; i < flm_safetensors_count(st); i++) {
        const flm_st_info *in = flm_safetensors_at(st, i);
        if (in->size / (flm_dtype_size(in->dtype) ? flm_dtype_size(in->dtype) : 1) > 4096)
            continue;
        /* reading with the declared shape must succeed for float dtypes and touch only the
         * declared bytes (ASan checks) */
        flm_safetensors_read_f32(st, in->name, in->n_dim, in->shape, buf, &err);
    }
    flm_safetensors_close(&st);
    return 0;
}
