/* Sentence splitting of English and Chinese text (rules: docs/align.md). */
#include <string.h>

#include "align_internal.h"
#include "flm_alloc.h"
#include "flm_align.h"

static int is_terminator(uint32_t c)
{
    return c == '.' || c == '!' || c == '?' || c == ';' || c == 0x2026 /* … */ ||
           c == 0x3002 /* 。 */ || c == 0xff01 /* ！ */ || c == 0xff1f /* ？ */ ||
           c == 0xff1b /* ； */ || c == 0xff0e /* ． */;
}

static int is_open_quote(uint32_t c)
{
    return c == 0x201c /* “ */ || c == 0x300c /* 「 */ || c == 0x300e /* 『 */ ||
           c == 0x00ab /* « */;
}

static int is_close_quote(uint32_t c)
{
    return c == 0x201d /* ” */ || c == 0x300d /* 」 */ || c == 0x300f /* 』 */ ||
           c == 0x00bb /* » */;
}

/* Closing characters that stay with the sentence they end. */
static int is_closer(uint32_t c)
{
    return is_close_quote(c) || c == '"' || c == '\'' || c == 0x2019 || c == ')' || c == ']' ||
           c == 0xff09 /* ） */ || c == 0x3011 /* 】 */ || c == 0x300b /* 》 */;
}

static int is_lower_latin(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 0xdf && c <= 0xff && c != 0xf7);
}

/* Abbreviations after which a period never ends a sentence (they precede what follows). */
static const char *const never_end[] = {
    "Mr",   "Mrs",  "Ms",     "Dr",   "Prof", "Sr",  "Jr",   "St",  "vs",  "Gen", "Col", "Lt",
    "Sgt",  "Capt", "Gov",    "Sen",  "Rep",  "Rev", "Hon",  "Mt",  "Fig", "fig", "Vol", "vol",
    "pp",   "cf",   "approx", "Dept", "dept", "Jan", "Feb",  "Apr", "Jun", "Jul", "Aug", "Sep",
    "Sept", "Oct",  "Nov",    "Dec",  "al",   "Ave", "Blvd", "Rd",  "Inc", "Ltd", "Co",  "Corp",
    "ca",   "viz",  "e.g",    "i.e",  "E.g",  "I.e", "U.S",  "U.K", "U.N", "E.U", "Ph.D"};
/* Abbreviations that also end sentences: a period after them ends one before a capital. */
static const char *const may_end[] = {"etc", "a.m", "p.m", "A.M", "P.M"};

static int in_list(const char *w, size_t n, const char *const *list, size_t n_list)
{
    for (size_t k = 0; k < n_list; k++)
        if (strlen(list[k]) == n && !memcmp(list[k], w, n))
            return 1;
    return 0;
}

/* 1 if the period at text[dot] belongs to an abbreviation that never ends a sentence, 2 if it
 * belongs to one that may, 0 otherwise. next: the first character after the following spaces. */
static int abbreviation(const char *text, size_t begin, size_t dot, uint32_t next)
{
    size_t b = dot;
    while (b > begin) {
        size_t pb = align_prev_start(text, b), q = pb;
        uint32_t c = align_next_cp(text, dot, &q);
        if (!(align_is_word_char(c) || c == '.') || align_is_cjk(c))
            break;
        b = pb;
    }
    size_t n = dot - b;
    if (n == 0)
        return 0;
    const char *w = text + b;
    if (in_list(w, n, may_end, sizeof may_end / sizeof may_end[0]))
        return 2;
    if (((n == 2 && !memcmp(w, "No", 2)) || (n == 3 && !memcmp(w, "Nos", 3))) && next >= '0' &&
        next <= '9')
        return 1; /* "No. 5", but "I said No. Maybe." ends */
    if (in_list(w, n, never_end, sizeof never_end / sizeof never_end[0]))
        return 1;
    if (n == 1 && w[0] >= 'A' && w[0] <= 'Z')
        return 1;            /* an initial: "J. K. Rowling" */
    if (memchr(w, '.', n)) { /* dotted acronyms: "U.S.A." (every part one letter) */
        int acronym = 1;
        for (size_t k = 0; k < n; k++)
            acronym &= (k % 2 == 0) ? w[k] != '.' : w[k] == '.';
        if (acronym)
            return 1;
    }
    return 0;
}

static int push(flm_sentence_span **spans, size_t *n, size_t *cap, const char *text, size_t b,
                size_t e)
{
    while (b < e) {
        size_t q = b;
        if (!align_is_space(align_next_cp(text, e, &q)))
            break;
        b = q;
    }
    while (e > b) {
        size_t p = align_prev_start(text, e), q = p;
        if (!align_is_space(align_next_cp(text, e, &q)))
            break;
        e = p;
    }
    if (e == b)
        return 0;
    if (flm_grow((void **)spans, cap, *n + 1, sizeof **spans))
        return FLM_ENOMEM;
    (*spans)[(*n)++] = (flm_sentence_span){b, e};
    return 0;
}

/* One pass; quotes: 1 to suppress splits inside quotes. Returns the quote depth at the end
 * (unbalanced quotes make the caller retry without them) or FLM_ENOMEM. */
static int split_pass(const char *text, size_t size, int lang, int quotes,
                      flm_sentence_span **spans, size_t *n, size_t *cap)
{
    int depth = 0, ascii_open = 0;
    size_t begin = 0, i = 0;
    *n = 0;
    while (i < size) {
        size_t at = i;
        uint32_t c = align_next_cp(text, size, &i);
        if (quotes) {
            if (is_open_quote(c))
                depth++;
            else if (is_close_quote(c) && depth > 0)
                depth--;
            else if (c == '"') {
                ascii_open = !ascii_open;
                depth += ascii_open ? 1 : -1;
            }
        }
        if (!is_terminator(c))
            continue;
        /* the run of terminators, then closing quotes and brackets */
        int n_dots = c == '.', ellipsis = c == 0x2026, fullwidth = c >= 0x3000, n_term = 1;
        size_t j = i;
        while (j < size) {
            size_t q = j;
            uint32_t d = align_next_cp(text, size, &q);
            if (!is_terminator(d))
                break;
            n_dots += d == '.';
            ellipsis |= d == 0x2026;
            fullwidth |= d >= 0x3000;
            n_term++;
            j = q;
        }
        if (n_dots >= 2)
            ellipsis = 1;
        int closed = depth;
        while (j < size) {
            size_t q = j;
            uint32_t d = align_next_cp(text, size, &q);
            if (!is_closer(d))
                break;
            if (quotes && (is_close_quote(d) || (d == '"' && ascii_open)) && closed > 0) {
                closed--;
                if (d == '"')
                    ascii_open = 0;
            }
            j = q;
        }
        depth = closed;
        i = j;
        if (depth > 0)
            continue; /* inside quotes */
        int boundary;
        if (j >= size) {
            boundary = 1;
        } else {
            size_t q = j;
            uint32_t d = align_next_cp(text, size, &q);
            if (align_is_space(d)) {
                while (q < size) {
                    size_t r = q;
                    d = align_next_cp(text, size, &r);
                    if (!align_is_space(d))
                        break;
                    q = r;
                }
                /* a semicolon separates clauses whatever follows */
                boundary = q >= size || !is_lower_latin(d) || (c == ';' && n_term == 1);
            } else {
                /* no space: decimals, URLs, "U.S." go on; in Chinese text any terminator
                 * (full-width or ASCII) before a CJK character ends the sentence */
                boundary = fullwidth || (align_is_cjk(d) && (n_dots == 0 || lang == FLM_LANG_ZH));
            }
            if (boundary && n_term == 1 && n_dots == 1 && !ellipsis) {
                int ab = abbreviation(text, begin, at, d);
                if (ab == 1 || (ab == 2 && is_lower_latin(d)))
                    boundary = 0;
            }
        }
        if (boundary) {
            if (push(spans, n, cap, text, begin, j))
                return FLM_ENOMEM;
            begin = j;
        }
    }
    if (push(spans, n, cap, text, begin, size))
        return FLM_ENOMEM;
    return depth;
}

int flm_sentence_split(const char *text, size_t size, int lang, flm_sentence_span **spans,
                       size_t *n_spans, size_t *cap_spans, flm_error *err)
{
    if (lang == FLM_LANG_AUTO)
        lang = flm_align_detect_language(text, size);
    int rc = split_pass(text, size, lang, 1, spans, n_spans, cap_spans);
    if (rc > 0)
        rc = split_pass(text, size, lang, 0, spans, n_spans, cap_spans);
    if (rc < 0)
        return flm_error_set(err, FLM_ENOMEM, "out of memory splitting sentences");
    return 0;
}

int32_t flm_sentence_weight(const char *text, size_t begin, size_t end)
{
    int32_t w = 0;
    for (size_t i = begin; i < end;)
        w += align_is_word_char(align_next_cp(text, end, &i));
    return w;
}

void flm_sentence_merge_small(const char *text, flm_sentence_span *spans, size_t *n_spans,
                              int32_t min_chars)
{
    size_t n = *n_spans;
    for (size_t k = 0; k < n && n > 1;) {
        if (flm_sentence_weight(text, spans[k].begin, spans[k].end) >= min_chars) {
            k++;
            continue;
        }
        if (k > 0) { /* into the previous sentence */
            spans[k - 1].end = spans[k].end;
            memmove(spans + k, spans + k + 1, (n - k - 1) * sizeof *spans);
        } else { /* the first one: into the next */
            spans[1].begin = spans[0].begin;
            memmove(spans, spans + 1, (n - 1) * sizeof *spans);
        }
        n--;
    }
    *n_spans = n;
}

size_t flm_sentence_clause_points(const char *text, size_t begin, size_t end, size_t *points,
                                  size_t max_points)
{
    size_t n = 0;
    uint32_t prev = 0;
    for (size_t i = begin; i < end && n < max_points;) {
        uint32_t c = align_next_cp(text, end, &i);
        int clause = c == ',' || c == 0xff0c /* ， */ || c == 0x3001 /* 、 */ || c == ':' ||
                     c == 0xff1a /* ： */ || c == 0x2014 /* — */;
        if (clause && (c == ',' || c == ':') && prev >= '0' && prev <= '9' && i < end &&
            text[i] >= '0' && text[i] <= '9')
            clause = 0; /* 1,000 and 10:30 */
        if (clause && i < end)
            points[n++] = i;
        prev = c;
    }
    return n;
}

int flm_align_detect_language(const char *text, size_t size)
{
    size_t cjk = 0, latin = 0;
    for (size_t i = 0; i < size;) {
        uint32_t c = align_next_cp(text, size, &i);
        if (align_is_cjk(c))
            cjk++;
        else if (c < 0x250 && align_is_word_char(c) && !(c >= '0' && c <= '9'))
            latin++;
    }
    return cjk && cjk >= latin / 3 ? FLM_LANG_ZH : FLM_LANG_EN;
}

int32_t flm_align_count_tokens(const flm_tokenizer *tok, const char *text, size_t size)
{
    if (tok) {
        flm_token_buf buf = {0};
        int32_t n = -1;
        if (flm_tokenizer_encode(tok, text, size, &buf, NULL) == 0)
            n = (int32_t)buf.n_ids;
        flm_token_buf_free(&buf);
        if (n >= 0)
            return n;
    }
    int32_t n = 0;
    size_t word = 0;
    for (size_t i = 0; i < size;) {
        uint32_t c = align_next_cp(text, size, &i);
        if (align_is_cjk(c) || align_is_space(c) || !align_is_word_char(c)) {
            n += (int32_t)((word + 3) / 4);
            word = 0;
            n += align_is_cjk(c) || (!align_is_space(c) && c > ' ');
        } else {
            word += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
        }
    }
    return n + (int32_t)((word + 3) / 4);
}
