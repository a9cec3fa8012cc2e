/* tokenizer_json.c - a small pull scanner for the two big members of tokenizer.json.
 *
 * model.vocab (150k entries) and model.merges (150k pairs) are 95% of the file; building a
 * jansson tree for them and freeing it took about 200 ms, more than everything else of the load.
 * So the scanner walks the document once, hands the spans of those two values to the tokenizer
 * to read in place, and gives every other value to jansson (small: added_tokens, normalizer,
 * pre_tokenizer, ...). Strings are checked like jansson does: valid UTF-8, escapes, no raw
 * control characters, no \u0000.
 */
#include <stdio.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_tokenizer.h"
#include "tokenizer_internal.h"

#define MAX_DEPTH 256

static int fail(flm_jscan *s, const char *what)
{
    return flm_error_set(s->err, FLM_EFORMAT, "%s: byte offset %zu: %s", s->name,
                         (size_t)(s->p - s->base), what);
}

void flm_jscan_ws(flm_jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

int flm_jscan_expect(flm_jscan *s, char c)
{
    flm_jscan_ws(s);
    if (s->p >= s->end || *s->p != c) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return fail(s, msg);
    }
    s->p++;
    return 0;
}

/* 1 and consumes c when the next non-space character is c, else 0. */
int flm_jscan_peek(flm_jscan *s, char c)
{
    flm_jscan_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int hex4(const char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

int flm_jscan_string(flm_jscan *s, char **buf, size_t *cap, size_t *len)
{
    flm_jscan_ws(s);
    if (s->p >= s->end || *s->p != '"')
        return fail(s, "expected a string");
    const char *start = ++s->p;
    const char *q = start;
    while (q < s->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
        q++;
    size_t k = (size_t)(q - start);
    if (flm_grow((void **)buf, cap, k + 1, 1) < 0)
        return flm_error_set(s->err, FLM_ENOMEM, "%s: out of memory", s->name);
    memcpy(*buf, start, k);
    s->p = q;
    while (s->p < s->end && *s->p != '"') {
        unsigned char c = (unsigned char)*s->p;
        if (c < 0x20)
            return fail(s, "control character in a string");
        if (flm_grow((void **)buf, cap, k + 5, 1) < 0)
            return flm_error_set(s->err, FLM_ENOMEM, "%s: out of memory", s->name);
        if (c != '\\') {
            (*buf)[k++] = (char)c;
            s->p++;
            continue;
        }
        if (s->end - s->p < 2)
            return fail(s, "unterminated escape");
        char e = s->p[1];
        s->p += 2;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            static const char out[] = "\"\\/\b\f\n\r\t";
            (*buf)[k++] = out[simple - "\"\\/bfnrt"];
            continue;
        }
        uint32_t cp, lo;
        if (e != 'u' || s->end - s->p < 4 || hex4(s->p, &cp) < 0)
            return fail(s, "invalid escape");
        s->p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) < 0 ||
                lo < 0xDC00 || lo > 0xDFFF)
                return fail(s, "lone surrogate escape");
            s->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            return fail(s, "lone surrogate or \\u0000 escape");
        }
        if (cp < 0x80) {
            (*buf)[k++] = (char)cp;
        } else if (cp < 0x800) {
            (*buf)[k++] = (char)(0xC0 | cp >> 6);
            (*buf)[k++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            (*buf)[k++] = (char)(0xE0 | cp >> 12);
            (*buf)[k++] = (char)(0x80 | (cp >> 6 & 0x3F));
            (*buf)[k++] = (char)(0x80 | (cp & 0x3F));
        } else {
            (*buf)[k++] = (char)(0xF0 | cp >> 18);
            (*buf)[k++] = (char)(0x80 | (cp >> 12 & 0x3F));
            (*buf)[k++] = (char)(0x80 | (cp >> 6 & 0x3F));
            (*buf)[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    if (s->p >= s->end)
        return fail(s, "unterminated string");
    s->p++;
    (*buf)[k] = 0;
    *len = k;
    if (flm_utf8_check(*buf, k) != k)
        return fail(s, "string is not valid UTF-8");
    return 0;
}

int flm_jscan_int(flm_jscan *s, int64_t *v)
{
    flm_jscan_ws(s);
    int neg = s->p < s->end && *s->p == '-';
    const char *q = s->p + neg;
    int64_t x = 0;
    int digits = 0;
    while (q < s->end && *q >= '0' && *q <= '9' && digits < 18) {
        x = x * 10 + (*q++ - '0');
        digits++;
    }
    if (!digits ||
        (q < s->end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))))
        return fail(s, "expected an integer below 10^18");
    s->p = q;
    *v = neg ? -x : x;
    return 0;
}

static int skip_value(flm_jscan *s, int depth)
{
    char *tmp = NULL;
    size_t cap = 0, len;
    int rc = 0;
    if (depth > MAX_DEPTH)
        return fail(s, "nested too deeply");
    flm_jscan_ws(s);
    if (s->p >= s->end)
        return fail(s, "expected a value");
    char c = *s->p;
    if (c == '"') {
        /* strings are validated here too, so a broken one fails at its own offset */
        rc = flm_jscan_string(s, &tmp, &cap, &len);
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->p++;
        if (!flm_jscan_peek(s, close)) {
            do {
                if (c == '{' && ((rc = flm_jscan_string(s, &tmp, &cap, &len)) < 0 ||
                                 (rc = flm_jscan_expect(s, ':')) < 0))
                    break;
                if ((rc = skip_value(s, depth + 1)) < 0)
                    break;
            } while (flm_jscan_peek(s, ','));
            if (rc == 0)
                rc = flm_jscan_expect(s, close);
        }
    } else {
        /* numbers and literals: jansson checks them when the value is handed over; the big
         * members only hold integers, read with flm_jscan_int */
        const char *q = s->p;
        while (q < s->end && (strchr("+-.0123456789eEtruefalsn", *q) && *q))
            q++;
        if (q == s->p)
            return fail(s, "expected a value");
        s->p = q;
    }
    flm_free(tmp);
    return rc;
}

int flm_jscan_skip(flm_jscan *s)
{
    return skip_value(s, 0);
}
