/* flm_tokenizer.h - the text tokenizer: HuggingFace byte-level BPE (Qwen2 / Qwen2.5 / Qwen3).
 *
 *     flm_tokenizer *tok = NULL;
 *     flm_tokenizer_params params = flm_tokenizer_default_params();
 *     params.vocab = &profiles.vocab;                 // optional: reserve <wait>/<asr>/<answer>
 *     if (flm_tokenizer_load(&tok, "tokenizer.json", &params, &err) < 0) ...
 *
 *     flm_token_buf buf = {0};                        // one per thread; reused across calls
 *     if (flm_tokenizer_encode(tok, text, strlen(text), &buf, &err) < 0) ...
 *     for (size_t i = 0; i < buf.n_ids; i++) printf("%d ", buf.ids[i]);
 *
 *     char *out = NULL; size_t out_size = 0, out_cap = 0;
 *     flm_tokenizer_decode(tok, buf.ids, buf.n_ids, FLM_TOKENIZER_SKIP_SPECIAL,
 *                          &out, &out_size, &out_cap, &err);
 *     flm_free(out);
 *     flm_token_buf_free(&buf);
 *     flm_tokenizer_destroy(&tok);                    // NULL-safe, sets tok to NULL
 *
 * What it implements (docs/tokenizer.md has the details): a tokenizer.json whose model is BPE
 * over the GPT-2 byte alphabet (merges as "a b" strings or ["a","b"] pairs), its added_tokens
 * (split out of the raw text first, leftmost-longest, as the reference does), the NFC normalizer
 * (utf8proc), the Qwen Split pre-tokenizer regex (categories from utf8proc) and ByteLevel.
 * Anything else in the file (another normalizer, pre-tokenizer or model type) is a load error
 * naming the key, never a silent approximation.
 *
 * Ownership and threads: the tokenizer is immutable after load; any number of threads may
 * encode and decode with it concurrently, each with its own flm_token_buf. The caller owns
 * flm_token_buf (freed with flm_token_buf_free) and decode's output buffer (flm_free).
 * Pointers returned by flm_tokenizer_piece/flm_tokenizer_added_content belong to the tokenizer
 * and live until flm_tokenizer_destroy.
 */
#ifndef FLM_TOKENIZER_H
#define FLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_profile.h"

typedef struct flm_tokenizer flm_tokenizer;

typedef struct flm_tokenizer_params {
    /* NULL: the tokenizer.json alone. Otherwise the profile's <wait>, <asr> and <answer> ids are
     * reserved: encoding never produces them (an added token of the file with such an id is not
     * matched in text; its string is tokenized as ordinary text), and every id must be below
     * text_vocab_size. Copied at load. */
    const flm_vocab_profile *vocab;
    /* 0 (default): invalid UTF-8 in the input is an FLM_EFORMAT error naming the byte offset.
     * 1: each maximal invalid subsequence becomes U+FFFD first, as the reference does when it is
     * handed bytes through String::from_utf8_lossy. */
    int lossy_utf8;
    /* 1 (default): added-token strings in the text ("<|im_end|>") become their ids, as the
     * reference's encode does. 0: they are tokenized as ordinary text. */
    int split_added;
} flm_tokenizer_params;

/* The growable output (and private scratch) of encode; zero-initialise, reuse, then free. */
typedef struct flm_token_buf {
    int32_t *ids; /* [n_ids] the result of the last encode */
    size_t n_ids;
    size_t cap_ids;
    void *scratch; /* private */
} flm_token_buf;

enum {
    FLM_TOKENIZER_SKIP_SPECIAL = 1, /* decode: drop added tokens marked special (and the reserved
                                       profile ids), like skip_special_tokens=True */
    FLM_TOKENIZER_LOSSY = 2,        /* decode: replace invalid UTF-8 (a token sequence cut inside a
                                       character) by U+FFFD, as the reference's decoder does */
};

FLM_API flm_tokenizer_params flm_tokenizer_default_params(void);

/* Loads a tokenizer.json (at most 256 MiB). Errors name the file and the JSON key or entry. */
FLM_API int flm_tokenizer_load(flm_tokenizer **tok, const char *path,
                               const flm_tokenizer_params *params, flm_error *err);
/* The same from memory; name is used in error messages. */
FLM_API int flm_tokenizer_load_json(flm_tokenizer **tok, const char *json, size_t json_size,
                                    const char *name, const flm_tokenizer_params *params,
                                    flm_error *err);
FLM_API void flm_tokenizer_destroy(flm_tokenizer **tok);

/* Encodes text[0..size) (UTF-8; NUL bytes are ordinary characters) into buf->ids. On error
 * buf->n_ids is 0: invalid UTF-8 is FLM_EFORMAT with "byte offset N", allocation FLM_ENOMEM. */
FLM_API int flm_tokenizer_encode(const flm_tokenizer *tok, const char *text, size_t size,
                                 flm_token_buf *buf, flm_error *err);
FLM_API void flm_token_buf_free(flm_token_buf *buf);

/* Decodes ids into *text (grown with flm_grow, NUL-terminated, *size excludes the NUL). Without
 * FLM_TOKENIZER_LOSSY the bytes are exact, so decode(encode(x)) == NFC(x) byte for byte. An id
 * outside the vocabulary is FLM_ERANGE naming its index and value. */
FLM_API int flm_tokenizer_decode(const flm_tokenizer *tok, const int32_t *ids, size_t n_ids,
                                 int flags, char **text, size_t *size, size_t *cap, flm_error *err);

/* One past the largest id (BPE, added and reserved). */
FLM_API int32_t flm_tokenizer_n_ids(const flm_tokenizer *tok);
/* The token's string as written in tokenizer.json ("Ġthe" for " the", or an added token's
 * content; a reserved profile id without one gives "<wait>", "<asr>" or "<answer>"); NULL when
 * the id is unknown. */
FLM_API const char *flm_tokenizer_piece(const flm_tokenizer *tok, int32_t id);
/* 1 if id is an added token marked special or a reserved profile id, else 0. */
FLM_API int flm_tokenizer_is_special(const flm_tokenizer *tok, int32_t id);
/* Approximate bytes held by the loaded tokenizer (tables and strings). */
FLM_API size_t flm_tokenizer_memory_size(const flm_tokenizer *tok);

/* NFC of text[0..size) into *out (grown with flm_grow, NUL-terminated): the normalizer alone,
 * for tests and tools. Invalid UTF-8 is FLM_EFORMAT naming the byte offset. */
FLM_API int flm_utf8_nfc(const char *text, size_t size, char **out, size_t *out_size,
                         size_t *out_cap, flm_error *err);
/* Offset of the first invalid UTF-8 byte in text[0..size), or size when it is all valid
 * (strict: no overlong forms, surrogates or values above U+10FFFF). */
FLM_API size_t flm_utf8_check(const char *text, size_t size);

#endif
