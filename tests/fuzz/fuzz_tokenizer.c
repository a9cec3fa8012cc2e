/* fuzz_tokenizer.c - fuzz target for the tokenizer: tokenizer.json parsing and encoding.
 *
 * The first input byte picks the mode:
 *   even: the rest is a tokenizer.json; loading must fail cleanly or give a tokenizer that
 *         encodes a fixed text;
 *   odd:  the rest is text for a small built-in tokenizer (or the file named by $FLM_TOKENIZER):
 *         strict mode must either encode it or report exactly the first invalid UTF-8 offset,
 *         and then decode(encode(x)) == NFC(x); lossy mode must always encode.
 * Any broken invariant aborts. Built for libFuzzer with -Dfuzz=true; otherwise linked
 * with replay.c, which replays the saved corpus (meson test, suite fuzz-regress).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_tokenizer.h"
#include "flm_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A small byte-level BPE: the 256 byte tokens and a few English merges. */
static char *builtin_json(void)
{
    static const char *const merges[] = {"t h", "th e", "i n", "e r", "a n",   "Ġ t", "Ġ the",
                                         "o n", "Ġ a",  "e s", "Ġ Ġ", "ĠĠ ĠĠ", "ä ¸", "Ċ Ċ"};
    size_t n_merges = sizeof merges / sizeof merges[0];
    size_t cap = 65536, k = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    k += (size_t)snprintf(
        s + k, cap - k,
        "{\"added_tokens\":[{\"id\":400,\"content\":\"<|end|>\",\"special\":true,"
        "\"normalized\":false},{\"id\":401,\"content\":\"<x>\",\"special\":false,"
        "\"normalized\":false,\"lstrip\":true,\"rstrip\":true}],"
        "\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":\"Sequence\","
        "\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"");
    const char *re = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    for (const char *p = re; *p; p++)
        k += (size_t)snprintf(s + k, cap - k, *p == '\\' ? "\\\\" : "%c", *p);
    k += (size_t)snprintf(
        s + k, cap - k,
        "\"},\"behavior\":\"Isolated\",\"invert\":false},"
        "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]},"
        "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{");
    char names[300][8];
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        int cp = printable ? b : 256 + extra++;
        if (cp < 0x80)
            snprintf(names[b], sizeof names[b], "%s%c", cp == '"' || cp == '\\' ? "\\" : "", cp);
        else
            snprintf(names[b], sizeof names[b], "%c%c", 0xC0 | cp >> 6, 0x80 | (cp & 0x3F));
        k += (size_t)snprintf(s + k, cap - k, "%s\"%s\":%d", b ? "," : "", names[b], b);
    }
    for (size_t i = 0; i < n_merges; i++) {
        char cat[32];
        const char *sp = strchr(merges[i], ' ');
        snprintf(cat, sizeof cat, "%.*s%s", (int)(sp - merges[i]), merges[i], sp + 1);
        k += (size_t)snprintf(s + k, cap - k, ",\"%s\":%zu", cat, 256 + i);
    }
    k += (size_t)snprintf(s + k, cap - k, "},\"merges\":[");
    for (size_t i = 0; i < n_merges; i++)
        k += (size_t)snprintf(s + k, cap - k, "%s\"%s\"", i ? "," : "", merges[i]);
    snprintf(s + k, cap - k, "]}}");
    return s;
}

static flm_tokenizer *strict_tok, *lossy_tok;

static void setup(void)
{
    if (strict_tok)
        return;
    flm_error err = {0};
    flm_tokenizer_params p = flm_tokenizer_default_params();
    const char *path = getenv("FLM_TOKENIZER");
    char *json = path ? NULL : builtin_json();
    for (int lossy = 0; lossy < 2; lossy++) {
        p.lossy_utf8 = lossy;
        flm_tokenizer **t = lossy ? &lossy_tok : &strict_tok;
        int rc = path ? flm_tokenizer_load(t, path, &p, &err)
                      : flm_tokenizer_load_json(t, json, strlen(json), "builtin", &p, &err);
        if (rc < 0) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
            abort();
        }
    }
    free(json);
}

static void fuzz_json(const uint8_t *data, size_t size)
{
    flm_tokenizer *t = NULL;
    flm_error err = {0};
    if (flm_tokenizer_load_json(&t, (const char *)data, size, "input", NULL, &err) < 0) {
        if (t || err.code >= 0 || !err.msg[0])
            abort();
        return;
    }
    flm_token_buf b = {0};
    if (flm_tokenizer_encode(t, "Hello world 123 <|end|>\n", 24, &b, &err) < 0)
        abort();
    flm_token_buf_free(&b);
    flm_tokenizer_destroy(&t);
}

static void fuzz_text(const uint8_t *data, size_t size)
{
    setup();
    const char *text = (const char *)data;
    flm_token_buf b = {0};
    flm_error err = {0};
    size_t bad = flm_utf8_check(text, size);
    int rc = flm_tokenizer_encode(strict_tok, text, size, &b, &err);
    if (bad != size) {
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu ", bad);
        if (rc != FLM_EFORMAT || b.n_ids || !strstr(err.msg, want))
            abort();
    } else {
        if (rc < 0)
            abort();
        char *dec = NULL, *nfc = NULL;
        size_t dec_size, dec_cap = 0, nfc_size, nfc_cap = 0;
        if (flm_tokenizer_decode(strict_tok, b.ids, b.n_ids, 0, &dec, &dec_size, &dec_cap, &err) <
                0 ||
            flm_utf8_nfc(text, size, &nfc, &nfc_size, &nfc_cap, &err) < 0)
            abort();
        /* lstrip/rstrip on the built-in <x> token drop whitespace, so compare only without it */
        if (!memmem(text, size, "<x>", 3) && (dec_size != nfc_size || memcmp(dec, nfc, dec_size)))
            abort();
        flm_free(dec);
        flm_free(nfc);
    }
    if (flm_tokenizer_encode(lossy_tok, text, size, &b, &err) < 0 || (size && !b.n_ids))
        abort();
    flm_token_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        fuzz_text(data + 1, size - 1);
    else
        fuzz_json(data + 1, size - 1);
    return 0;
}
