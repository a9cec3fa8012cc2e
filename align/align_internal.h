/* align_internal.h - helpers shared by the align sources (not installed). */
#ifndef FLM_ALIGN_INTERNAL_H
#define FLM_ALIGN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the code point at text[*i] (lenient: an invalid byte is returned as itself, 1 byte)
 * and advances *i. */
static inline uint32_t align_next_cp(const char *text, size_t size, size_t *i)
{
    const uint8_t *s = (const uint8_t *)text;
    uint32_t c = s[*i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (n == 1 || *i + n > size) {
        (*i)++;
        return c;
    }
    uint32_t cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < n; k++) {
        if ((s[*i + k] & 0xc0) != 0x80) {
            (*i)++;
            return c;
        }
        cp = cp << 6 | (s[*i + k] & 0x3f);
    }
    *i += n;
    return cp;
}

/* Start of the code point that ends just before text[i]. */
static inline size_t align_prev_start(const char *text, size_t i)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t j = i;
    while (j > 0 && i - j < 4) {
        j--;
        if ((s[j] & 0xc0) != 0x80)
            return j;
    }
    return j;
}

static inline int align_is_cjk(uint32_t c)
{
    return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0x3040 && c <= 0x30ff) || (c >= 0xf900 && c <= 0xfaff) ||
           (c >= 0x20000 && c <= 0x2ffff) || (c >= 0xac00 && c <= 0xd7af);
}

static inline int align_is_space(uint32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == 0xa0 ||
           c == 0x3000 || (c >= 0x2000 && c <= 0x200b);
}

/* Letters, digits and CJK characters: what a listener hears (punctuation and symbols are not). */
static inline int align_is_word_char(uint32_t c)
{
    if (c < 0x80)
        return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    if (c <= 0xbf || c == 0xd7 || c == 0xf7)
        return 0;
    if ((c >= 0x2000 && c <= 0x2bff) || (c >= 0x3000 && c <= 0x303f) ||
        (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff0f) ||
        (c >= 0xff1a && c <= 0xff20) || (c >= 0xff3b && c <= 0xff40) ||
        (c >= 0xff5b && c <= 0xff65))
        return 0;
    return 1;
}

/* CJK characters and CJK/full-width punctuation: no space is put next to them when lines or
 * words are joined. */
static inline int align_no_space_joins(uint32_t c)
{
    return align_is_cjk(c) || (c >= 0x3000 && c <= 0x303f) || (c >= 0xff00 && c <= 0xffef);
}

/* ---- Shared by the importers (align_import.c, align_manifests.c) ---------------------------- */
#include <jansson.h>

#include "flm_align.h"
#include "flm_error.h"

/* Appends an utterance (strings copied; NULL -> ""); NULL on allocation failure. */
flm_utterance *align_add_utt(flm_transcript *t, const char *file, int32_t line, const char *id,
                             const char *audio);
/* Replaces *dst with a copy of s (NULL -> ""). FLM_ENOMEM only. */
int align_set_str(char **dst, const char *s);
/* Appends a segment with text[0..text_size) trimmed of surrounding white space. */
flm_align_segment *align_add_seg(flm_utterance *u, const char *text, size_t text_size, double start,
                                 double end, double conf, int32_t line, int32_t index);
int align_add_word(flm_align_segment *s, size_t *cap, const char *text, double start, double end,
                   double conf);
/* The file name without directory and extension. */
void align_file_stem(const char *path, char *out, size_t out_size);
/* o[key] as a finite number (0) or -1. */
int align_get_num(json_t *o, const char *key, double *v);
/* o[key] when it is a string, else NULL. */
const char *align_get_str(json_t *o, const char *key);
/* The next non-blank line of a JSONL text at or after *pos: *line, *len (without the line break,
 * "\r" included) and *lineno (1-based, blank lines counted). Returns 0 when none is left. */
int align_next_line(const char *data, size_t size, size_t *pos, int32_t *lineno, const char **line,
                    size_t *len);
/* Appends line to buf (markup removed), joined by a space except between CJK characters. */
int align_append_cue_text(char **buf, size_t *n, size_t *cap, const char *line);
/* moshi-finetune's {"alignments": ...} document -> one utterance per speaker. */
int align_import_moshi(flm_transcript *t, const char *path, const char *data, size_t size,
                       const char *audio, flm_error *err);
/* The manifest formats of align_manifests.c (nemo, lhotse, moshi-ft, hf-audiofolder). */
int align_import_manifest(flm_transcript *t, int format, const char *path, const char *data,
                          size_t size, const flm_align_import_opts *o, flm_error *err);

#endif
