/* Fuzz target: the jsonl transcript importer and the alignment pipeline after it. */
#include "fuzz_align_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_align(FLM_ALIGN_JSONL, data, size);
}
