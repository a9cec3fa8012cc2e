/* Fuzz target: recipe parser (JSON) on arbitrary bytes. */
#include <stdint.h>

#include "flm_recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flm_recipe r;
    flm_error err = {0};
    if (flm_recipe_parse((const char *)data, size, "fuzz", &r, &err) == 0)
        flm_recipe_free(&r);
    return 0;
}
