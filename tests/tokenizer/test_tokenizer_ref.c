/* Exact match with the reference (HuggingFace tokenizers via @anush008/tokenizers) on the corpus,
 * decode(encode(x)) == NFC(x), the FLM vocabulary profile, and the "a b" merges form on the real
 * vocabulary.
 *
 * usage: test_tokenizer_ref TOKENIZER_JSON CORPUS_JSONL EXPECTED_IDS_ZST
 * (run through run_ref_test.sh, which installs the npm packages first) */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "flm_alloc.h"
#include "flm_profile.h"
#include "flm_tokenizer.h"
#include "flm_util.h"
#include "tap.h"

typedef struct corpus {
    char **text; /* [n] */
    size_t *size;
    char **want; /* [n] expected ids, space separated */
    size_t n, n_want;
} corpus;

static void show(const char *s, size_t n)
{
    printf("#   text: \"");
    for (size_t i = 0; i < n && i < 160; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    printf("\"\n");
}

static int load_corpus(const char *path, const char *ids_path, corpus *c)
{
    flm_error err = {0};
    char *data, *z;
    size_t size, zsize;
    memset(c, 0, sizeof *c);
    if (flm_read_file(path, &data, &size, 64 << 20, &err) < 0 ||
        flm_read_file(ids_path, &z, &zsize, 64 << 20, &err) < 0) {
        tap_diag("%s", err.msg);
        return -1;
    }
    size_t cap = 0;
    for (char *line = data, *nl; line < data + size; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            nl = data + size;
        if (nl == line)
            continue;
        json_error_t jerr;
        json_t *s = json_loadb(line, (size_t)(nl - line), JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!json_is_string(s)) {
            tap_diag("%s: line %zu: not a JSON string: %s", path, c->n + 1, jerr.text);
            json_decref(s);
            return -1;
        }
        if (c->n == cap) {
            cap = cap ? cap * 2 : 1024;
            c->text = realloc(c->text, cap * sizeof *c->text);
            c->size = realloc(c->size, cap * sizeof *c->size);
        }
        c->size[c->n] = json_string_length(s);
        c->text[c->n] = malloc(c->size[c->n] + 1);
        memcpy(c->text[c->n], json_string_value(s), c->size[c->n] + 1);
        c->n++;
        json_decref(s);
    }
    flm_free(data);
    unsigned long long raw = ZSTD_getFrameContentSize(z, zsize);
    if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > (1u << 30)) {
        tap_diag("%s: not a zstd frame with a known size", ids_path);
        return -1;
    }
    char *ids = malloc(raw + 1);
    size_t got = ZSTD_decompress(ids, raw, z, zsize);
    flm_free(z);
    if (ZSTD_isError(got)) {
        tap_diag("%s: %s", ids_path, ZSTD_getErrorName(got));
        return -1;
    }
    ids[got] = 0;
    c->want = malloc((c->n + 1) * sizeof *c->want);
    for (char *line = ids, *nl; line < ids + got && c->n_want <= c->n; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            nl = ids + got;
        *nl = 0;
        c->want[c->n_want++] = line;
    }
    return 0;
}

static void ids_to_str(const flm_token_buf *b, char **s, size_t *cap)
{
    size_t k = 0;
    flm_grow((void **)s, cap, b->n_ids * 12 + 1, 1);
    (*s)[0] = 0;
    for (size_t i = 0; i < b->n_ids; i++)
        k += (size_t)sprintf(*s + k, i ? " %d" : "%d", b->ids[i]);
}

/* Returns the number of lines whose ids differ from the expectation (first lines shown). */
static size_t compare(const flm_tokenizer *tok, const corpus *c, size_t n, const char *label)
{
    flm_token_buf b = {0};
    flm_error err = {0};
    char *got = NULL;
    size_t cap = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (flm_tokenizer_encode(tok, c->text[i], c->size[i], &b, &err) < 0) {
            snprintf(err.msg + strlen(err.msg), 8, "%s", "");
            flm_grow((void **)&got, &cap, sizeof err.msg + 8, 1);
            snprintf(got, cap, "error: %s", err.msg);
        } else {
            ids_to_str(&b, &got, &cap);
        }
        if (strcmp(got, c->want[i])) {
            if (bad++ < 8) {
                printf("# %s: corpus line %zu differs\n", label, i + 1);
                show(c->text[i], c->size[i]);
                printf("#   got : %s\n#   want: %s\n", got, c->want[i]);
            }
        }
    }
    flm_free(got);
    flm_token_buf_free(&b);
    return bad;
}

typedef struct thread_job {
    const flm_tokenizer *tok;
    const corpus *c;
    size_t first, step, bad;
} thread_job;

/* Encodes every step-th line from first with its own buffer; counts lines that differ. */
static void *thread_encode(void *arg)
{
    thread_job *j = arg;
    flm_token_buf b = {0};
    char *got = NULL;
    size_t cap = 0;
    for (size_t i = j->first; i < j->c->n; i += j->step) {
        if (flm_tokenizer_encode(j->tok, j->c->text[i], j->c->size[i], &b, NULL) < 0) {
            j->bad++;
            continue;
        }
        ids_to_str(&b, &got, &cap);
        j->bad += strcmp(got, j->c->want[i]) != 0;
    }
    flm_free(got);
    flm_token_buf_free(&b);
    return NULL;
}

static int has_reserved(const flm_token_buf *b, const flm_vocab_profile *v)
{
    for (size_t i = 0; i < b->n_ids; i++)
        if (b->ids[i] == v->text_wait || b->ids[i] == v->text_asr || b->ids[i] == v->text_answer)
            return 1;
    return 0;
}

/* The same file with every merge written as an "a b" string. */
static char *string_merges_copy(const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    json_t *merges = json_object_get(json_object_get(root, "model"), "merges");
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(merges); i++) {
        json_t *m = json_array_get(merges, i);
        char s[2048];
        snprintf(s, sizeof s, "%s %s", json_string_value(json_array_get(m, 0)),
                 json_string_value(json_array_get(m, 1)));
        json_array_append_new(out, json_string(s));
    }
    json_object_set_new(json_object_get(root, "model"), "merges", out);
    char *json = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return json;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        printf("1..0 # SKIP usage: test_tokenizer_ref TOKENIZER_JSON CORPUS_JSONL IDS_ZST\n");
        return 0;
    }
    corpus c;
    if (load_corpus(argv[2], argv[3], &c) < 0) {
        TAP_OK(0, "corpus and expected ids load");
        return tap_done();
    }
    TAP_OK(c.n >= 20000, "corpus has %zu lines (>= 20000)", c.n);
    TAP_EQ_INT(c.n_want, c.n, "one expected-ids line per corpus line (else run regen.sh)");
    if (c.n_want != c.n)
        return tap_done();

    flm_tokenizer *tok = NULL;
    flm_error err = {0};
    double t0 = flm_now();
    int rc = flm_tokenizer_load(&tok, argv[1], NULL, &err);
    TAP_EQ_INT(rc, 0, "load the npm package's tokenizer.json");
    if (rc < 0) {
        tap_diag("%s", err.msg);
        return tap_done();
    }
    tap_diag("load %.0f ms, %.1f MB of tables", 1e3 * (flm_now() - t0),
             (double)flm_tokenizer_memory_size(tok) / 1e6);
    TAP_EQ_INT(flm_tokenizer_n_ids(tok), 151669, "ids 0..151668 (151643 BPE + 26 added)");

    size_t bad = compare(tok, &c, c.n, "pair merges");
    TAP_OK(bad == 0, "ids equal the reference on %zu of %zu corpus lines", c.n - bad, c.n);

    /* one tokenizer shared by 4 threads gives the same ids */
    thread_job jobs[4];
    pthread_t tid[4];
    size_t mt_bad = 0;
    for (int k = 0; k < 4; k++) {
        jobs[k] = (thread_job){tok, &c, (size_t)k, 4, 0};
        pthread_create(&tid[k], NULL, thread_encode, &jobs[k]);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(tid[k], NULL);
        mt_bad += jobs[k].bad;
    }
    TAP_EQ_INT(mt_bad, 0, "4 threads sharing the tokenizer give the reference ids on every line");

    /* decode(encode(x)) == NFC(x), byte for byte */
    flm_token_buf b = {0};
    char *dec = NULL, *nfc = NULL;
    size_t dec_size, dec_cap = 0, nfc_size, nfc_cap = 0, rt_bad = 0, n_ids = 0;
    for (size_t i = 0; i < c.n; i++) {
        int ok =
            flm_tokenizer_encode(tok, c.text[i], c.size[i], &b, &err) == 0 &&
            flm_tokenizer_decode(tok, b.ids, b.n_ids, 0, &dec, &dec_size, &dec_cap, &err) == 0 &&
            flm_utf8_nfc(c.text[i], c.size[i], &nfc, &nfc_size, &nfc_cap, &err) == 0 &&
            dec_size == nfc_size && !memcmp(dec, nfc, dec_size);
        n_ids += b.n_ids;
        if (!ok && rt_bad++ < 5) {
            printf("# round trip differs on line %zu\n", i + 1);
            show(c.text[i], c.size[i]);
        }
    }
    TAP_EQ_INT(rt_bad, 0, "decode(encode(x)) == NFC(x) on every corpus line");
    tap_diag("%zu ids in the corpus", n_ids);

    /* The FLM profile: <wait>/<asr>/<answer> never come out of text, even of their Qwen3 strings */
    flm_profiles prof;
    flm_profiles_default(&prof);
    flm_tokenizer *ftok = NULL;
    flm_tokenizer_params params = flm_tokenizer_default_params();
    params.vocab = &prof.vocab;
    rc = flm_tokenizer_load(&ftok, argv[1], &params, &err);
    TAP_EQ_INT(rc, 0, "load with the FLM vocab profile");
    if (rc == 0) {
        size_t hits = 0, errors = 0;
        for (size_t i = 0; i < c.n; i++) {
            if (flm_tokenizer_encode(ftok, c.text[i], c.size[i], &b, &err) < 0)
                errors++;
            else
                hits += (size_t)has_reserved(&b, &prof.vocab);
        }
        TAP_EQ_INT(errors, 0, "profile tokenizer encodes the corpus");
        TAP_EQ_INT(hits, 0, "no corpus line yields <wait> 151665, <asr> 151666 or <answer> 151667");
        const char *txt = "<tool_response></tool_response><think></think><wait><asr><answer>";
        flm_tokenizer_encode(ftok, txt, strlen(txt), &b, &err);
        TAP_OK(b.n_ids > 7 && !has_reserved(&b, &prof.vocab),
               "their Qwen3 strings become plain text");
        TAP_OK(flm_tokenizer_encode(tok, txt, 15, &b, &err) == 0 && b.n_ids == 1 &&
                   b.ids[0] == 151665,
               "without the profile <tool_response> is 151665 (reference)");
        int32_t w[] = {9707, prof.vocab.text_wait, prof.vocab.text_answer};
        rc = flm_tokenizer_decode(ftok, w, 3, FLM_TOKENIZER_SKIP_SPECIAL, &dec, &dec_size, &dec_cap,
                                  &err);
        TAP_OK(rc == 0 && !strcmp(dec, "Hello"), "skip-special drops the reserved ids");
    }
    flm_tokenizer_destroy(&ftok);

    /* "a b" merges on the real vocabulary: same ids on the first 3000 lines */
    char *json = string_merges_copy(argv[1]);
    flm_tokenizer *stok = NULL;
    rc = json ? flm_tokenizer_load_json(&stok, json, strlen(json), "string-merges copy", NULL, &err)
              : -1;
    TAP_EQ_INT(rc, 0, "load the copy with \"a b\" string merges");
    if (rc == 0) {
        bad = compare(stok, &c, 3000, "string merges");
        TAP_EQ_INT(bad, 0, "string-merges copy gives the reference ids on 3000 lines");
    }
    free(json);
    flm_tokenizer_destroy(&stok);
    flm_token_buf_free(&b);
    flm_free(dec);
    flm_free(nfc);
    flm_tokenizer_destroy(&tok);
    for (size_t i = 0; i < c.n; i++)
        free(c.text[i]);
    free(c.text);
    free(c.size);
    free(c.want ? c.want[0] : NULL);
    free(c.want);
    return tap_done();
}
