/* Fuzz target: the FLM-Audio config.json parser on arbitrary bytes; a config it accepts must
 * describe a consistent model (every size positive, heads dividing the widths) and survive a
 * round trip through flm_lm_config_to_json. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_lm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flm_lm_config c, back;
    flm_error err = {0};
    if (flm_lm_config_parse((const char *)data, size, "fuzz", &c, &err) < 0)
        return 0;
    if (c.hidden <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.hidden % c.n_heads ||
        c.n_heads % c.n_kv_heads || c.head_dim % 2 || c.dep_embd % c.dep_heads ||
        c.text_wait >= c.vocab_size || c.aud_pad >= c.aud_vocab || c.aud_empty >= c.aud_vocab)
        abort();
    char *json = flm_lm_config_to_json(&c);
    if (json && flm_lm_config_parse(json, strlen(json), "round trip", &back, &err) == 0 &&
        (back.hidden != c.hidden || back.n_layers != c.n_layers ||
         back.vocab_size != c.vocab_size || back.dep_ff != c.dep_ff || back.o_bias != c.o_bias))
        abort();
    flm_free(json);
    return 0;
}
