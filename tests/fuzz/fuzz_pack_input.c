/* Fuzz target: flm pack's input lines (flm_pack_utt_parse) on arbitrary bytes. */
#include <stdint.h>
#include <string.h>

#include "flm_pack_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flm_pack_utt u;
    flm_error err = {0};
    if (flm_pack_utt_parse((const char *)data, size, "fuzz.jsonl", 1, "dir", &u, &err) == 0) {
        for (size_t i = 0; i < u.n_sents; i++) /* every sentence well-formed (ASan) */
            if (strlen(u.sents[i].text) == 0 || u.sents[i].end_frame <= u.sents[i].start_frame)
                __builtin_trap();
        flm_pack_utt_free(&u);
    }
    return 0;
}
