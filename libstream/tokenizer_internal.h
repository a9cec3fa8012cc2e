/* tokenizer_internal.h - pieces of the tokenizer shared between its source files (not public). */
#ifndef FLM_TOKENIZER_INTERNAL_H
#define FLM_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* The Split pattern of Qwen2 / Qwen2.5 / Qwen3 tokenizer.json, as the file spells it. */
#define FLM_TOKENIZER_QWEN_REGEX                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                          \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"                                                               \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

enum {
    FLM_TOK_CLASS_LETTER = 1, /* \p{L}: Lu Ll Lt Lm Lo */
    FLM_TOK_CLASS_NUMBER = 2, /* \p{N}: Nd Nl No */
    FLM_TOK_CLASS_SPACE = 4,  /* \s: the White_Space property */
    FLM_TOK_CLASS_NEWLINE = 8 /* \r or \n (also SPACE) */
};

/* Class bits of a code point, from utf8proc's Unicode tables. */
int flm_tokenizer_class(int32_t cp);
/* End of the regex match that starts at i in valid UTF-8 s[0..n) (always > i). ascii_class holds
 * flm_tokenizer_class of 0..127. */
size_t flm_tokenizer_pretok_next(const uint8_t *s, size_t n, size_t i,
                                 const uint8_t ascii_class[128]);

/* Pull scanner over a JSON text (tokenizer_json.c). Errors are FLM_EFORMAT naming name and the
 * byte offset. */
#include "flm_error.h"

typedef struct flm_jscan {
    const char *base, *p, *end;
    const char *name;
    flm_error *err;
} flm_jscan;

void flm_jscan_ws(flm_jscan *s);
int flm_jscan_expect(flm_jscan *s, char c);
int flm_jscan_peek(flm_jscan *s, char c);
/* Decodes a string into *buf (grown with flm_grow, NUL-terminated); *len excludes the NUL. */
int flm_jscan_string(flm_jscan *s, char **buf, size_t *cap, size_t *len);
int flm_jscan_int(flm_jscan *s, int64_t *v);
int flm_jscan_skip(flm_jscan *s);

#endif
