/* cmd_tokenize.c - `flm tokenize` and `flm detokenize`: text lines <-> token ids. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_profile.h"
#include "flm_tokenizer.h"

static const char tokenize_help[] =
    "usage: flm tokenize [--ids | --pieces] [--tokenizer FILE] [options] [TEXT_FILE...]\n"
    "\n"
    "Encodes each input line (stdin when no file is given; the line's \\n is not part of it,\n"
    "a \\r before it is) with a HuggingFace tokenizer.json (Qwen2.5 byte-level BPE) and prints\n"
    "one output line per input line.\n"
    "\n"
    "Invalid UTF-8 stops with 'FILE:LINE: invalid UTF-8 at byte offset N' and exit status 1.\n"
    "example:\n"
    "  $ echo 'Hello world' | flm tokenize --tokenizer tokenizer.json\n"
    "  9707 1879\n";

static const char detokenize_help[] =
    "usage: flm detokenize [--tokenizer FILE] [options] [IDS_FILE...]\n"
    "\n"
    "Decodes lines of token ids (separated by spaces, tabs or commas; stdin when no file is\n"
    "given) and prints one text line per input line.\n"
    "\n"
    "example:\n"
    "  $ echo '9707 1879' | flm detokenize --tokenizer tokenizer.json\n"
    "  Hello world\n";

typedef struct opts {
    const char *tokenizer;
    const char *profile;
    int pieces, whole, lossy, no_added, skip_special, json, stats;
    int n_files;
    const char **files; /* owned */
} opts;

/* The options of flm tokenize (tokenize: 1) or flm detokenize: CLI_PARSED, 0 (help) or 2. */
static int parse(int argc, char **argv, opts *o, int tokenize, const char *help)
{
    const char *cmd = tokenize ? "tokenize" : "detokenize";
    int ids = 0;
    memset(o, 0, sizeof *o);
    const cli_option common[] = {
        CLI_OPT("--tokenizer", "FILE", "the tokenizer.json (default: $FLM_TOKENIZER)",
                &o->tokenizer),
        CLI_OPT("--profile", "FILE",
                tokenize
                    ? "vocabulary profile JSON whose <wait>/<asr>/<answer> ids are reserved:\n"
                      "they are never produced from text; 'builtin' = the FLM-Audio defaults"
                    : "vocabulary profile JSON (see flm tokenize --help); 'builtin' = defaults",
                &o->profile),
        CLI_FLAG("--lossy",
                 tokenize ? "replace invalid UTF-8 by U+FFFD instead of failing"
                          : "replace bytes that are not valid UTF-8 by U+FFFD (as the reference)",
                 &o->lossy),
        {0}};
    const cli_option tok_opts[] = {
        CLI_FLAG("--ids", "print token ids separated by spaces (default)", &ids),
        CLI_FLAG("--pieces",
                 "print the tokens as written in tokenizer.json (\"Ġworld\" = \" world\")",
                 &o->pieces),
        CLI_FLAG("--whole", "encode the whole input as one text (newlines included), not per line",
                 &o->whole),
        CLI_FLAG("--no-added", "tokenize added-token strings such as <|im_end|> as plain text",
                 &o->no_added),
        CLI_FLAG("--json",
                 "one JSON object per input line: {\"ids\": [...]} (and \"pieces\"\n"
                 "with --pieces); with --stats the summary as one JSON object",
                 &o->json),
        CLI_FLAG("--stats",
                 "instead of the tokens, a summary: lines, bytes, tokens, the\n"
                 "longest line in tokens, bytes per token",
                 &o->stats),
        {0}};
    const cli_option detok_opts[] = {
        CLI_FLAG("--skip-special",
                 "drop special tokens (<|im_end|>, the profile's <wait>/<asr>/<answer>)",
                 &o->skip_special),
        {0}};
    const cli_option *const tables[] = {common, tokenize ? tok_opts : detok_opts, NULL};
    const cli_command c = {cmd, NULL, tables, argc, help};
    if (!(o->files = flm_calloc((size_t)argc + 1, sizeof *o->files)))
        return cli_error("%s: out of memory", cmd), 1;
    int rc = cli_parse(&c, argc, argv, o->files, &o->n_files);
    if (rc != CLI_PARSED)
        return rc;
    if (!o->tokenizer)
        o->tokenizer = getenv("FLM_TOKENIZER");
    if (!o->tokenizer)
        return cli_usage(cmd, "no tokenizer: pass --tokenizer FILE or set FLM_TOKENIZER");
    return CLI_PARSED;
}

static int load(const opts *o, const char *cmd, flm_tokenizer **tok)
{
    flm_error err = {0};
    flm_profiles prof;
    flm_tokenizer_params params = flm_tokenizer_default_params();
    params.lossy_utf8 = o->lossy;
    params.split_added = !o->no_added;
    if (o->profile) {
        flm_profiles_default(&prof);
        if (strcmp(o->profile, "builtin")) {
            /* loaded over zeros: a codec or model profile leaves the vocab empty instead of
             * silently keeping the defaults */
            flm_profiles got;
            memset(&got, 0, sizeof got);
            if (flm_profile_load_file(o->profile, &got, &err) < 0) {
                cli_error("%s: %s", cmd, err.msg);
                return 1;
            }
            if (got.vocab.text_vocab_size == 0) {
                cli_error("%s: %s: not a vocab profile (--profile needs \"kind\": \"vocab\")", cmd,
                          o->profile);
                return 1;
            }
            prof.vocab = got.vocab;
        }
        params.vocab = &prof.vocab;
    }
    if (flm_tokenizer_load(tok, o->tokenizer, &params, &err) < 0) {
        cli_error("%s: %s", cmd, err.msg);
        return 1;
    }
    return 0;
}

/* Calls fn on each line (or the whole content) of each input; stops at the first failure. */
typedef int (*line_fn)(void *ctx, const char *name, long line, char *text, size_t size);

static int for_each_input(const opts *o, const char *cmd, line_fn fn, void *ctx)
{
    int n = o->n_files ? o->n_files : 1;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (int f = 0; f < n && !rc; f++) {
        const char *name = o->n_files ? o->files[f] : "<stdin>";
        FILE *in = o->n_files && strcmp(name, "-") ? fopen(name, "rb") : stdin;
        if (!in) {
            cli_error("%s: %s: %s", cmd, name, strerror(errno));
            rc = 1;
            break;
        }
        if (o->whole) {
            size_t size = 0, got;
            char chunk[65536];
            while (!rc && (got = fread(chunk, 1, sizeof chunk, in)) > 0) {
                char *p = realloc(line, size + got + 1);
                if (!p) {
                    cli_error("%s: out of memory", cmd);
                    rc = 1;
                    break;
                }
                line = p;
                memcpy(line + size, chunk, got);
                size += got;
            }
            if (!rc)
                rc = fn(ctx, name, 1, line ? line : "", size);
        } else {
            ssize_t len;
            long lineno = 0;
            while (!rc && (len = getline(&line, &cap, in)) >= 0) {
                lineno++;
                if (len > 0 && line[len - 1] == '\n')
                    line[--len] = 0;
                rc = fn(ctx, name, lineno, line, (size_t)len);
            }
        }
        if (in != stdin)
            fclose(in);
    }
    free(line);
    if (!rc && fflush(stdout) != 0) {
        cli_error("%s: writing output: %s", cmd, strerror(errno));
        rc = 1;
    }
    return rc;
}

typedef struct tok_ctx {
    const flm_tokenizer *tok;
    flm_token_buf buf;
    int pieces, json, stats;
    int64_t n_lines, n_bytes, n_tokens, max_tokens;
} tok_ctx;

static int tokenize_line(void *ctx, const char *name, long line, char *text, size_t size)
{
    tok_ctx *c = ctx;
    flm_error err = {0};
    if (flm_tokenizer_encode(c->tok, text, size, &c->buf, &err) < 0) {
        cli_error("tokenize: %s:%ld: %s", name, line, err.msg);
        return 1;
    }
    c->n_lines++;
    c->n_bytes += (int64_t)size;
    c->n_tokens += (int64_t)c->buf.n_ids;
    if ((int64_t)c->buf.n_ids > c->max_tokens)
        c->max_tokens = (int64_t)c->buf.n_ids;
    if (c->stats)
        return 0;
    if (c->json) {
        json_t *o = json_object(), *ids = json_array(), *pieces = json_array();
        for (size_t i = 0; i < c->buf.n_ids; i++) {
            json_array_append_new(ids, json_integer(c->buf.ids[i]));
            json_array_append_new(pieces, json_string(flm_tokenizer_piece(c->tok, c->buf.ids[i])));
        }
        json_object_set_new(o, "ids", ids);
        if (c->pieces)
            json_object_set_new(o, "pieces", pieces);
        else
            json_decref(pieces);
        cli_json_print(stdout, o);
        json_decref(o);
        return 0;
    }
    for (size_t i = 0; i < c->buf.n_ids; i++) {
        if (i)
            putchar(' ');
        if (c->pieces)
            fputs(flm_tokenizer_piece(c->tok, c->buf.ids[i]), stdout);
        else
            printf("%d", c->buf.ids[i]);
    }
    putchar('\n');
    return 0;
}

static void print_stats(const tok_ctx *c)
{
    double per = c->n_tokens ? (double)c->n_bytes / (double)c->n_tokens : 0;
    if (c->json) {
        json_t *o =
            json_pack("{s:I,s:I,s:I,s:I,s:f}", "lines", (json_int_t)c->n_lines, "bytes",
                      (json_int_t)c->n_bytes, "tokens", (json_int_t)c->n_tokens,
                      "max_tokens_per_line", (json_int_t)c->max_tokens, "bytes_per_token", per);
        cli_json_print(stdout, o);
        json_decref(o);
        return;
    }
    printf("%lld lines, %lld bytes, %lld tokens (longest line %lld), %.3f bytes per token\n",
           (long long)c->n_lines, (long long)c->n_bytes, (long long)c->n_tokens,
           (long long)c->max_tokens, per);
}

int cmd_tokenize(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o, 1, tokenize_help);
    tok_ctx c = {0};
    flm_tokenizer *tok = NULL;
    if (rc != CLI_PARSED || load(&o, "tokenize", &tok)) {
        flm_free(o.files);
        return rc != CLI_PARSED ? rc : 1;
    }
    c.tok = tok;
    c.pieces = o.pieces;
    c.json = o.json;
    c.stats = o.stats;
    rc = for_each_input(&o, "tokenize", tokenize_line, &c);
    if (rc == 0 && o.stats)
        print_stats(&c);
    flm_token_buf_free(&c.buf);
    flm_tokenizer_destroy(&tok);
    flm_free(o.files);
    return rc;
}

typedef struct detok_ctx {
    const flm_tokenizer *tok;
    int flags;
    int32_t *ids;
    size_t cap_ids;
    char *text;
    size_t text_cap;
} detok_ctx;

static int detokenize_line(void *ctx, const char *name, long line, char *text, size_t size)
{
    detok_ctx *c = ctx;
    size_t n = 0;
    char *p = text, *end;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r')
            p++;
        if (!*p)
            break;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX ||
            (*end && *end != ' ' && *end != '\t' && *end != ',' && *end != '\r')) {
            cli_error("detokenize: %s:%ld: column %zu: expected a token id, found '%.16s'", name,
                      line, (size_t)(p - text) + 1, p);
            return 1;
        }
        if (flm_grow((void **)&c->ids, &c->cap_ids, n + 1, sizeof *c->ids) < 0) {
            cli_error("detokenize: out of memory");
            return 1;
        }
        c->ids[n++] = (int32_t)v;
        p = end;
    }
    (void)size;
    flm_error err = {0};
    size_t out_size;
    if (flm_tokenizer_decode(c->tok, c->ids, n, c->flags, &c->text, &out_size, &c->text_cap, &err) <
        0) {
        cli_error("detokenize: %s:%ld: %s", name, line, err.msg);
        return 1;
    }
    fwrite(c->text, 1, out_size, stdout);
    putchar('\n');
    return 0;
}

int cmd_detokenize(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o, 0, detokenize_help);
    detok_ctx c = {0};
    flm_tokenizer *tok = NULL;
    if (rc != CLI_PARSED || load(&o, "detokenize", &tok)) {
        flm_free(o.files);
        return rc != CLI_PARSED ? rc : 1;
    }
    c.tok = tok;
    c.flags =
        (o.skip_special ? FLM_TOKENIZER_SKIP_SPECIAL : 0) | (o.lossy ? FLM_TOKENIZER_LOSSY : 0);
    rc = for_each_input(&o, "detokenize", detokenize_line, &c);
    flm_free(c.ids);
    flm_free(c.text);
    flm_tokenizer_destroy(&tok);
    flm_free(o.files);
    return rc;
}
