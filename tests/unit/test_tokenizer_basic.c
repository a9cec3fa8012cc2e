/* Tokenizer tests that need no downloaded file: a tiny byte-level BPE built here, both merges
 * forms, added tokens, the pre-tokenizer cuts, UTF-8 errors, NFC, decode flags, load errors and
 * allocation failures. The exact match with the reference on the real Qwen vocabulary is in
 * tests/tokenizer/test_tokenizer_ref.c. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_tokenizer.h"
#include "tap.h"
#include "tokenizer_internal.h"

/* The GPT-2 byte alphabet, written independently of the library for the fixture. */
static void byte_char(int b, char out[4])
{
    int cp = b, extra = 0;
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (!printable) {
        for (int c = 0; c < b; c++)
            if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE))
                extra++;
        cp = 256 + extra;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* Merges: h e -> he, l l -> ll, he ll -> hell, Ġ w -> Ġw, a a -> aa, aa aa -> aaaa, o r -> or. */
static const char *const merges[][2] = {{"h", "e"}, {"l", "l"},   {"he", "ll"}, {"Ġ", "w"},
                                        {"a", "a"}, {"aa", "aa"}, {"o", "r"}};
#define N_MERGES 7

static char *fixture(int string_merges, const char *normalizer)
{
    json_t *vocab = json_object();
    for (int b = 0; b < 256; b++) {
        char c[4];
        byte_char(b, c);
        json_object_set_new(vocab, c, json_integer(b));
    }
    json_t *m = json_array();
    for (int i = 0; i < N_MERGES; i++) {
        char cat[16];
        snprintf(cat, sizeof cat, "%s%s", merges[i][0], merges[i][1]);
        json_object_set_new(vocab, cat, json_integer(256 + i));
        if (string_merges) {
            char s[16];
            snprintf(s, sizeof s, "%s %s", merges[i][0], merges[i][1]);
            json_array_append_new(m, json_string(s));
        } else {
            json_array_append_new(m, json_pack("[ss]", merges[i][0], merges[i][1]));
        }
    }
    json_t *root = json_pack(
        "{s:[{s:i,s:s,s:b,s:b,s:b,s:b,s:b},{s:i,s:s,s:b,s:b,s:b,s:b,s:b}],"
        "s:o,s:{s:s,s:[{s:s,s:{s:s},s:s,s:b},{s:s,s:b,s:b,s:b}]},s:n,s:{s:s,s:b},"
        "s:{s:s,s:n,s:n,s:s,s:s,s:b,s:b,s:b,s:o,s:o}}",
        "added_tokens", "id", 300, "content", "<|end|>", "single_word", 0, "lstrip", 0, "rstrip", 0,
        "normalized", 0, "special", 1, "id", 301, "content", "<tool>", "single_word", 0, "lstrip",
        0, "rstrip", 0, "normalized", 0, "special", 0, "normalizer",
        normalizer ? json_pack("{s:s}", "type", normalizer) : json_null(), "pre_tokenizer", "type",
        "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex", FLM_TOKENIZER_QWEN_REGEX,
        "behavior", "Isolated", "invert", 0, "type", "ByteLevel", "add_prefix_space", 0,
        "trim_offsets", 0, "use_regex", 0, "post_processor", "decoder", "type", "ByteLevel",
        "add_prefix_space", 0, "model", "type", "BPE", "dropout", "unk_token",
        "continuing_subword_prefix", "", "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback",
        0, "ignore_merges", 0, "vocab", vocab, "merges", m);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

static flm_tokenizer *load_fixture(int string_merges, const flm_tokenizer_params *p)
{
    char *json = fixture(string_merges, "NFC");
    flm_tokenizer *tok = NULL;
    flm_error err = {0};
    if (flm_tokenizer_load_json(&tok, json, strlen(json), "fixture", p, &err) < 0)
        tap_diag("load failed: %s", err.msg);
    free(json);
    return tok;
}

/* Test descriptions must stay on one TAP line: escape control bytes. */
static void escaped(const char *s, char *out, size_t size)
{
    size_t k = 0;
    for (; *s && k + 5 < size; s++)
        k += (unsigned char)*s < 0x20
                 ? (size_t)snprintf(out + k, size - k, "\\x%02x", (unsigned char)*s)
                 : (size_t)snprintf(out + k, size - k, "%c", *s);
    out[k] = 0;
}

static void ids_str(const flm_token_buf *b, char *out, size_t size)
{
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < b->n_ids && k + 12 < size; i++)
        k += (size_t)snprintf(out + k, size - k, i ? " %d" : "%d", b->ids[i]);
}

static void check_encode(flm_tokenizer *tok, const char *text, const char *want)
{
    flm_token_buf b = {0};
    flm_error err = {0};
    char got[1024];
    int rc = flm_tokenizer_encode(tok, text, strlen(text), &b, &err);
    ids_str(&b, got, sizeof got);
    if (rc < 0)
        snprintf(got, sizeof got, "error %s", err.msg);
    char what[256], esc[128];
    escaped(text, esc, sizeof esc);
    snprintf(what, sizeof what, "encode \"%s\"", esc);
    TAP_EQ_STR(got, want, what);
    flm_token_buf_free(&b);
}

/* Cuts of the pre-tokenizer, joined with '|'. */
static void check_cuts(const char *text, const char *want)
{
    uint8_t ac[128];
    for (int c = 0; c < 128; c++)
        ac[c] = (uint8_t)flm_tokenizer_class(c);
    char got[512];
    size_t k = 0, n = strlen(text);
    for (size_t i = 0; i < n;) {
        size_t e = flm_tokenizer_pretok_next((const uint8_t *)text, n, i, ac);
        if (i)
            got[k++] = '|';
        memcpy(got + k, text + i, e - i);
        k += e - i;
        i = e;
    }
    got[k] = 0;
    char what[256], esc[128];
    escaped(text, esc, sizeof esc);
    snprintf(what, sizeof what, "pre-tokenizer cuts of \"%s\"", esc);
    TAP_EQ_STR(got, want, what);
}

static void test_cuts(void)
{
    check_cuts("Hello world", "Hello| world");
    check_cuts("DON'T It'S we'Re", "DON|'T| It|'S| we|'Re");
    check_cuts("x'll 'LL", "x|'ll| '|LL");
    check_cuts("12345", "1|2|3|4|5");
    check_cuts("a  b", "a| | b");
    check_cuts("a \n\n b", "a| \n\n| b");
    check_cuts("end   ", "end|   ");
    check_cuts("x\t\ty", "x|\t|\ty");
    check_cuts("((hi)) ...\r\n", "((|hi|))| ...\r\n");
    check_cuts("你好，世界！", "你好|，世界|！");
    check_cuts("a\r\n  b", "a|\r\n| | b");
    check_cuts("x\xe3\x80\x80y", "x|\xe3\x80\x80y");     /* U+3000 ideographic space + letter */
    check_cuts("\xd9\xa3\xd9\xa4", "\xd9\xa3|\xd9\xa4"); /* Arabic-Indic digits, one each */
}

static void test_encode(void)
{
    flm_tokenizer_params p = flm_tokenizer_default_params();
    flm_tokenizer *a = load_fixture(0, &p), *b = load_fixture(1, &p);
    TAP_OK(a && b, "fixture loads with pair merges and with string merges");
    if (!a || !b)
        return;
    for (int form = 0; form < 2; form++) {
        flm_tokenizer *t = form ? b : a;
        check_encode(t, "hello", "258 111");                       /* hell o */
        check_encode(t, "hello world", "258 111 259 262 108 100"); /* Ġw or l d */
        check_encode(t, "aaaaa", "261 97");                        /* aaaa a: leftmost first */
        check_encode(t, "aaa", "260 97");
        check_encode(t, "x<|end|>y<tool>", "120 300 121 301");
        check_encode(t, "<|end", "60 124 101 110 100");
        check_encode(t, "", "");
        check_encode(t, "e\xcc\x81", "195 169"); /* NFC: e + U+0301 -> U+00E9 (C3 A9) */
    }
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0; /* 599 a: long-piece path */
    flm_token_buf buf = {0};
    flm_error err = {0};
    TAP_OK(flm_tokenizer_encode(a, big, strlen(big), &buf, &err) == 0, "long piece encodes");
    int ok = buf.n_ids == 151; /* 599 = 149 x aaaa + aa + a */
    for (size_t i = 0; ok && i < 149; i++)
        ok &= buf.ids[i] == 261;
    ok = ok && buf.ids[149] == 260 && buf.ids[150] == 97;
    TAP_OK(ok, "599 'a' -> 149 x aaaa, aa, a (got %zu ids)", buf.n_ids);
    flm_token_buf_free(&buf);
    flm_tokenizer_destroy(&a);
    flm_tokenizer_destroy(&b);
    TAP_OK(a == NULL, "destroy sets NULL");
    flm_tokenizer_destroy(&a);
}

static void test_utf8_and_decode(void)
{
    flm_tokenizer_params p = flm_tokenizer_default_params();
    flm_tokenizer *t = load_fixture(0, &p);
    flm_token_buf b = {0};
    flm_error err = {0};
    static const struct {
        const char *text;
        size_t size, offset;
    } bad[] = {{"ab\xff", 3, 2},       {"\xc3", 1, 0},          {"ok\xc3(", 4, 2},
               {"\xe0\x80\x80", 3, 0}, {"x\xed\xa0\x80", 4, 1}, {"\xf4\x90\x80\x80", 4, 0},
               {"\xc0\xaf", 2, 0},     {"abc\x80", 4, 3},       {"\xe4\xbd\xa0\xe5\xa5", 5, 3}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = flm_tokenizer_encode(t, bad[i].text, bad[i].size, &b, &err);
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu ", bad[i].offset);
        TAP_EQ_INT(rc, FLM_EFORMAT, "invalid UTF-8 is FLM_EFORMAT");
        TAP_CONTAINS(err.msg, want, "error names the byte offset");
        TAP_EQ_INT(b.n_ids, 0, "no ids on error");
    }
    TAP_EQ_INT(flm_tokenizer_encode(t, "a\0b", 3, &b, &err), 0, "NUL is an ordinary character");
    TAP_EQ_INT(b.n_ids, 3, "NUL gives a token");
    flm_tokenizer_destroy(&t);

    p.lossy_utf8 = 1;
    t = load_fixture(0, &p);
    char got[256];
    TAP_EQ_INT(flm_tokenizer_encode(t, "a\xff\xc3(", 4, &b, &err), 0, "lossy mode encodes");
    ids_str(&b, got, sizeof got);
    /* a, U+FFFD (EF BF BD), U+FFFD, ( : the pre-tokenizer groups the two U+FFFD with '(' */
    TAP_EQ_STR(got, "97 239 191 189 239 191 189 40",
               "lossy: each maximal invalid subpart -> U+FFFD");

    int32_t ids[] = {258, 111, 300, 259, 301, 195};
    char *out = NULL;
    size_t size = 0, cap = 0;
    TAP_EQ_INT(flm_tokenizer_decode(t, ids, 5, 0, &out, &size, &cap, &err), 0, "decode");
    TAP_EQ_STR(out, "hello<|end|> w<tool>", "decode keeps added tokens");
    TAP_EQ_INT(flm_tokenizer_decode(t, ids, 5, FLM_TOKENIZER_SKIP_SPECIAL, &out, &size, &cap, &err),
               0, "decode skip special");
    TAP_EQ_STR(out, "hello w<tool>", "skip-special drops special tokens only");
    TAP_EQ_INT(flm_tokenizer_decode(t, ids, 6, 0, &out, &size, &cap, &err), 0, "decode cut char");
    TAP_EQ_INT(size, 21, "raw decode keeps the lone byte");
    TAP_EQ_INT(flm_tokenizer_decode(t, ids, 6, FLM_TOKENIZER_LOSSY, &out, &size, &cap, &err), 0,
               "decode lossy");
    TAP_EQ_STR(out, "hello<|end|> w<tool>\xef\xbf\xbd", "lossy decode replaces the cut character");
    int32_t badid[] = {1, 2, 99999};
    TAP_EQ_INT(flm_tokenizer_decode(t, badid, 3, 0, &out, &size, &cap, &err), FLM_ERANGE,
               "unknown id is FLM_ERANGE");
    TAP_CONTAINS(err.msg, "id 99999 at index 2", "error names the id and index");
    TAP_EQ_STR(flm_tokenizer_piece(t, 259), "Ġw", "piece as in tokenizer.json");
    TAP_OK(flm_tokenizer_piece(t, 5000) == NULL, "unknown piece is NULL");
    TAP_OK(flm_tokenizer_is_special(t, 300) && !flm_tokenizer_is_special(t, 301), "special flag");
    flm_free(out);
    flm_token_buf_free(&b);
    flm_tokenizer_destroy(&t);

    char *nfc = NULL;
    size_t nfc_size = 0, nfc_cap = 0;
    TAP_EQ_INT(
        flm_utf8_nfc("A\xcc\x8a \xe2\x84\xab \xef\xa4\x80", 11, &nfc, &nfc_size, &nfc_cap, &err), 0,
        "nfc");
    TAP_EQ_STR(nfc, "\xc3\x85 \xc3\x85 \xe8\xb1\x88", "NFC: A+ring, Angstrom sign, U+F900");
    flm_free(nfc);
}

static void test_profile(void)
{
    flm_profiles prof;
    flm_profiles_default(&prof);
    prof.vocab.text_vocab_size = 400;
    prof.vocab.text_wait = 301; /* the fixture's <tool>: must stop matching */
    prof.vocab.text_asr = 302;
    prof.vocab.text_answer = 303;
    flm_tokenizer_params p = flm_tokenizer_default_params();
    p.vocab = &prof.vocab;
    flm_tokenizer *t = load_fixture(0, &p);
    TAP_OK(t != NULL, "loads with a vocab profile");
    if (!t)
        return;
    check_encode(t, "<tool>", "60 116 111 111 108 62");
    TAP_EQ_STR(flm_tokenizer_piece(t, 302), "<asr>", "reserved id without a token is named");
    TAP_OK(flm_tokenizer_is_special(t, 301) && flm_tokenizer_is_special(t, 303),
           "reserved ids are special");
    flm_tokenizer_destroy(&t);

    flm_error err = {0};
    char *json = fixture(0, "NFC");
    prof.vocab.text_wait = 256; /* a BPE token */
    TAP_EQ_INT(flm_tokenizer_load_json(&t, json, strlen(json), "fixture", &p, &err), FLM_EMISMATCH,
               "profile id on a BPE token is refused");
    TAP_CONTAINS(err.msg, "reserves id 256 for <wait>", "message names the id");
    prof.vocab.text_wait = 301;
    prof.vocab.text_vocab_size = 300;
    TAP_EQ_INT(flm_tokenizer_load_json(&t, json, strlen(json), "fixture", &p, &err), FLM_EMISMATCH,
               "ids above text_vocab_size are refused");
    free(json);
}

static void check_load_error(const char *from, const char *to, const char *want)
{
    char *json = fixture(1, "NFC");
    char *at = strstr(json, from);
    char buf[200000];
    if (!at) {
        TAP_OK(0, "fixture contains %s", from);
        free(json);
        return;
    }
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
    flm_tokenizer *t = NULL;
    flm_error err = {0};
    int rc = flm_tokenizer_load_json(&t, buf, strlen(buf), "t.json", NULL, &err);
    TAP_OK(rc < 0 && t == NULL, "load error for %s -> %s", from, to);
    TAP_CONTAINS(err.msg, want, "error message");
    free(json);
}

static void test_load_errors(void)
{
    check_load_error("\"type\":\"NFC\"", "\"type\":\"NFKC\"", "normalizer.type");
    check_load_error("\"Regex\":\"(?i:", "\"Regex\":\"(?x:", "pre_tokenizer[0].pattern.Regex");
    check_load_error("\"h e\"", "\"h  e\"", "model.merges[0]");
    check_load_error("\"h e\"", "\"h q\"", "merge of \"h\" and \"q\"");
    check_load_error("\"he ll\"", "\"he zz\"", "model.merges[2]");
    check_load_error("\"type\":\"BPE\"", "\"type\":\"WordPiece\"", "model.type");
    check_load_error("\"byte_fallback\":false", "\"byte_fallback\":true", "model.byte_fallback");
    check_load_error("{\"added_tokens\"", "[", "byte offset 0: expected '{'");
    check_load_error("\"vocab\":{", "\"vocab\":[", "byte offset 880: expected ']'");
    check_load_error("\"merges\":[", "\"merges\":{", "byte offset 3062: expected ':'");
    check_load_error("\"vocab\":{\"", "\"vocab\":{\"\\ud800", "lone surrogate");
    check_load_error("\"h e\"", "[\"h\" \"e\"]", "byte offset 3062: expected ']'");
    check_load_error("\"h e\"", "[\"h\", 5]", "model.merges[0]: expected [\"a\", \"b\"]");
    check_load_error("\"vocab\":{", "\"vocab\":7,\"x\":{", "model.vocab: expected an object");
    check_load_error("\"trim_offsets\":false", "\"trim_offsets\":fals",
                     "pre_tokenizer: invalid token near 'fals'");
    check_load_error("\"single_word\":false", "\"single_word\":true", "single_word");
    flm_tokenizer *t = NULL;
    flm_error err = {0};
    TAP_EQ_INT(flm_tokenizer_load(&t, "/nonexistent/tokenizer.json", NULL, &err), FLM_ENOTFOUND,
               "missing file");
    TAP_CONTAINS(err.msg, "/nonexistent/tokenizer.json", "message names the file");
}

static void test_alloc_failures(void)
{
    char *json = fixture(0, "NFC");
    int failures = 0, leaks_or_crash = 0;
    for (int64_t k = 0;; k++) {
        flm_tokenizer *t = NULL;
        flm_error err = {0};
        flm_alloc_fail_after(k);
        int rc = flm_tokenizer_load_json(&t, json, strlen(json), "fixture", NULL, &err);
        flm_token_buf b = {0};
        if (rc == 0)
            rc = flm_tokenizer_encode(t, "hello w\xc3\xa9rld aaaa <|end|>", 22, &b, &err);
        flm_alloc_fail_after(-1);
        flm_token_buf_free(&b);
        flm_tokenizer_destroy(&t);
        if (rc == 0)
            break;
        failures++;
        if (rc != FLM_ENOMEM)
            leaks_or_crash++;
    }
    free(json);
    TAP_OK(failures > 5 && leaks_or_crash == 0,
           "every injected allocation failure (%d) returns FLM_ENOMEM", failures);
}

int main(void)
{
    test_cuts();
    test_encode();
    test_utf8_and_decode();
    test_profile();
    test_load_errors();
    test_alloc_failures();
    return tap_done();
}
