/* Fuzz target: the SFT dialog manifest parser (JSONL) on arbitrary bytes, then the timeline
 * planner on every dialog it accepts, with audio lengths and token counts made from the bytes. */
#include <stdint.h>

#include "flm_dialog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flm_dialog_manifest m;
    flm_error err = {0};
    if (flm_dialog_manifest_parse(&m, (const char *)data, size, "fuzz/m.jsonl", &err) < 0)
        return 0;
    flm_profiles p;
    flm_profiles_default(&p);
    flm_dialog_params dp = flm_dialog_default_params(&p);
    for (size_t i = 0; i < m.n_dialogs; i++) {
        const flm_dialog *d = &m.dialogs[i];
        int64_t n[FLM_DIALOG_MAX_TURNS];
        int32_t nt[FLM_DIALOG_MAX_TURNS];
        for (int32_t k = 0; k < d->n_turns; k++) {
            uint8_t b = size ? data[(i * 7 + (size_t)k) % size] : 0;
            n[k] = 1 + (int64_t)b * 700;
            nt[k] = 1 + b % 50;
        }
        flm_dialog_plan plan;
        for (int f = FLM_FORMAT_ARRT; f <= FLM_FORMAT_RTTS_FREE; f++)
            flm_dialog_plan_make(&plan, &dp, f, d, n, nt, i, d->id, &err);
    }
    flm_dialog_manifest_free(&m);
    return 0;
}
