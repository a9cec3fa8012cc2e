/* Fuzz target: the nemo manifest importer (input gzip-compressed or not, format detection) and the
 * alignment pipeline after it. */
#include "fuzz_align_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_align_manifest(FLM_ALIGN_NEMO, data, size);
}
