/* Fuzz target: profile parser (JSON) on arbitrary bytes. */
#include <stdint.h>

#include "flm_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flm_profiles p;
    flm_profiles_default(&p);
    flm_error err = {0};
    flm_profile_parse((const char *)data, size, "fuzz", &p, &err);
    return 0;
}
