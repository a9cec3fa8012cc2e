/* tokenizer_pretok.c - the Qwen Split pre-tokenizer regex, as a hand-built matcher.
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N} | ?[^\s\p{L}\p{N}]+[\r\n]*
 *   | \s*[\r\n]+ | \s+(?!\S) | \s+
 *
 * The reference runs this with a backtracking engine, leftmost alternative first, and every
 * position of the text matches one alternative, so the text is cut into consecutive matches.
 * Each alternative below reproduces what the backtracking engine ends up with; the character
 * classes come from utf8proc's general categories (no tables of our own). \s is the Unicode
 * White_Space property: Zs, Zl, Zp, U+0009..U+000D and U+0085.
 */
#include <utf8proc.h>

#include "tokenizer_internal.h"

enum {
    L = FLM_TOK_CLASS_LETTER,
    N = FLM_TOK_CLASS_NUMBER,
    S = FLM_TOK_CLASS_SPACE,
    NL = FLM_TOK_CLASS_NEWLINE
};

int flm_tokenizer_class(int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return L;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return N;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
        return S;
    default:
        break;
    }
    if (cp == '\n' || cp == '\r')
        return S | NL;
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85)
        return S;
    return 0;
}

/* Class of the (valid UTF-8) character at s[i]; its length in *len. */
static inline int class_at(const uint8_t *s, size_t i, const uint8_t ascii_class[128], size_t *len)
{
    uint8_t b = s[i];
    int32_t cp;
    if (b < 0x80) {
        *len = 1;
        return ascii_class[b];
    }
    if (b < 0xE0) {
        cp = (b & 0x1F) << 6 | (s[i + 1] & 0x3F);
        *len = 2;
    } else if (b < 0xF0) {
        cp = (b & 0x0F) << 12 | (s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
        *len = 3;
    } else {
        cp =
            (b & 0x07) << 18 | (s[i + 1] & 0x3F) << 12 | (s[i + 2] & 0x3F) << 6 | (s[i + 3] & 0x3F);
        *len = 4;
    }
    return flm_tokenizer_class(cp);
}

static inline int lower_ascii(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static size_t letters_end(const uint8_t *s, size_t n, size_t j, const uint8_t ascii_class[128])
{
    size_t l;
    while (j < n && (class_at(s, j, ascii_class, &l) & L))
        j += l;
    return j;
}

size_t flm_tokenizer_pretok_next(const uint8_t *s, size_t n, size_t i,
                                 const uint8_t ascii_class[128])
{
    size_t l0, l;
    int c0 = class_at(s, i, ascii_class, &l0);

    /* (?i:'s|'t|'re|'ve|'m|'ll|'d); case folding also lets U+017F (long s) stand for s */
    if (s[i] == '\'' && i + 1 < n) {
        int a = lower_ascii(s[i + 1]);
        if (a == 's' || a == 't' || a == 'm' || a == 'd')
            return i + 2;
        if (s[i + 1] == 0xC5 && i + 2 < n && s[i + 2] == 0xBF)
            return i + 3;
        if (i + 2 < n) {
            int b = lower_ascii(s[i + 2]);
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                return i + 3;
        }
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c0 & L)
        return letters_end(s, n, i + l0, ascii_class);
    if (!(c0 & (N | NL)) && i + l0 < n && (class_at(s, i + l0, ascii_class, &l) & L))
        return letters_end(s, n, i + l0 + l, ascii_class);
    /* \p{N} */
    if (c0 & N)
        return i + l0;
    /* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t st = i + (s[i] == ' '), j = st;
    while (j < n && !(class_at(s, j, ascii_class, &l) & (L | N | S)))
        j += l;
    if (j > st) {
        while (j < n && (s[j] == '\r' || s[j] == '\n'))
            j++;
        return j;
    }
    /* c0 is whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+ */
    size_t last_nl = SIZE_MAX, last_start = i, count = 0;
    j = i;
    int c;
    while (j < n && ((c = class_at(s, j, ascii_class, &l)) & S)) {
        if (c & NL)
            last_nl = j;
        last_start = j;
        j += l;
        count++;
    }
    if (last_nl != SIZE_MAX)
        return last_nl + 1;
    if (j == n || count < 2)
        return j > i ? j : i + l0;
    return last_start;
}
