/* flm inspect: a shard's header and records, or one sample as a timeline (or JSON). */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_index.h"
#include "flm_shard.h"
#include "flm_mimi.h"
#include "flm_util.h"
#include "html.h"
#include "render.h"
#include "timeline.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: flm inspect SHARD[:N] [options]\n"
            "       flm inspect DATASET --sample KEY [options]\n"
            "\n"
            "Without N: the shard's header and one line per record. With N (or --sample): that\n"
            "sample's summary, an overview strip of the whole sample and a frame-by-frame window\n"
            "of its 17 channels. Every read verifies the record's checksums.\n");
}

static int list_records(flm_shard_reader *r, int json)
{
    const flm_shard_header *h = flm_shard_reader_header(r);
    uint64_t n = flm_shard_reader_count(r);
    flm_error err = {0};
    json_t *arr = json ? json_array() : NULL;
    if (!json) {
        printf("shard     %s\n", flm_shard_reader_path(r));
        printf("format    %u, schema %s, record version %u, %u channels\n", h->format_version,
               h->schema, h->record_version, h->n_channels);
        printf("profiles  vocab %016llx  codec %016llx  model %016llx\n",
               (unsigned long long)h->vocab_hash, (unsigned long long)h->codec_hash,
               (unsigned long long)h->model_hash);
        printf("records   %llu, %llu bytes\n\n", (unsigned long long)n,
               (unsigned long long)flm_shard_reader_file_size(r));
        printf("%6s  %-32s %-6s %-4s %7s %8s %9s %9s %6s\n", "#", "id", "style", "lang", "frames",
               "seconds", "bytes", "raw", "ratio");
    }
    int rc = 0;
    for (uint64_t i = 0; i < n; i++) {
        const flm_record_info *ri = flm_shard_reader_info(r, i);
        flm_record_view v;
        if (flm_shard_reader_view(r, i, &v, &err) < 0) {
            cli_error("%s", err.msg);
            rc = 1;
            continue;
        }
        if (json) {
            json_t *o =
                json_pack("{s:I,s:s?,s:s?,s:s?,s:s?,s:I,s:f,s:I,s:I,s:s}", "record", (json_int_t)i,
                          "id", v.id, "style", v.style, "language", v.language, "corpus", v.corpus,
                          "n_frames", (json_int_t)v.n_frames, "duration_s", v.duration_s, "csize",
                          (json_int_t)ri->csize, "usize", (json_int_t)ri->usize, "checksum", "");
            char ck[17];
            snprintf(ck, sizeof ck, "%016llx", (unsigned long long)ri->ucheck);
            json_object_set_new(o, "checksum", json_string(ck));
            json_array_append_new(arr, o);
        } else {
            printf("%6llu  %-32.32s %-6.6s %-4.4s %7u %8.2f %9u %9u %5.1fx\n",
                   (unsigned long long)i, v.id ? v.id : "-", v.style ? v.style : "-",
                   v.language ? v.language : "-", v.n_frames, v.duration_s, ri->csize, ri->usize,
                   ri->csize ? (double)ri->usize / ri->csize : 0.0);
        }
    }
    if (json) {
        json_t *o = json_pack("{s:s,s:I,s:s,s:I,s:o}", "shard", flm_shard_reader_path(r),
                              "format_version", (json_int_t)h->format_version, "schema", h->schema,
                              "n_records", (json_int_t)n, "records", arr);
        cli_json_print(stdout, o);
        json_decref(o);
    }
    return rc;
}

typedef struct inspect_args {
    const char *target, *key, *html, *png, *tok_path, *codec;
    int json;
    timeline_opts o;
} inspect_args;

static int parse_args(int argc, char **argv, inspect_args *a)
{
    const char *from = NULL, *frames = NULL, *width = NULL, *tok = NULL;
    *a = (inspect_args){.o = {.n_frames = 12, .width = 100}};
    const cli_option opts[] = {
        CLI_OPT("--sample", "KEY", "the sample KEY of DATASET", &a->key),
        CLI_OPT("--from", "F", "first frame of the window (default 0)", &from),
        CLI_OPT("--frames", "N", "frames in the window (default 12)", &frames),
        CLI_FLAG("--classes", "show loss classes instead of token ids", &a->o.classes),
        CLI_OPT("--width", "W", "overview width in characters (default 100)", &width),
        CLI_FLAG("--json", "machine-readable output (whole sample: tokens, classes, metadata)",
                 &a->json),
        CLI_OPT("--html", "FILE",
                "a self-contained page of the sample's lanes (text, speak, listen,\n"
                "events) with a time axis, zoom and scroll",
                &a->html),
        CLI_OPT("--png", "FILE", "the lanes as an image (for reports)", &a->png),
        CLI_OPT("--tokenizer", "F",
                "tokenizer.json: the text tokens decoded (a row under the text in\n"
                "the timeline, and in --html pages)\n"
                "(default: $FLM_TOKENIZER when set)",
                &tok),
        CLI_OPT_CODEC(&a->codec, "Mimi checkpoint: --html pages get a waveform lane per side and\n"
                                 "(up to 120 s) an audio player per side"),
        {0}};
    const cli_option *const tables[] = {opts, NULL};
    const cli_command c = {"inspect", usage, tables, 1, NULL};
    int64_t f0 = 0, nf = a->o.n_frames, w = a->o.width;
    int n, rc = cli_parse(&c, argc, argv, &a->target, &n);
    if (rc != CLI_PARSED || (rc = cli_i64("inspect", "--from", from, 0, FLM_MAX_FRAMES, &f0)) ||
        (rc = cli_i64("inspect", "--frames", frames, 1, 10000, &nf)) ||
        (rc = cli_i64("inspect", "--width", width, 10, 1000, &w)))
        return rc;
    a->o.from = (int32_t)f0;
    a->o.n_frames = (int32_t)nf;
    a->o.width = (int)w;
    a->tok_path = tok ? tok : getenv("FLM_TOKENIZER");
    if (!n)
        return cli_usage("inspect", "missing SHARD, SHARD:N or DATASET --sample KEY");
    return CLI_PARSED;
}

/* The shard and record that a.target (SHARD, SHARD:N) or --sample KEY names: 0, or 1 (said).
 * *one: a single record was named; *typed: its number as typed (for messages), or NULL. */
static int resolve_target(const inspect_args *a, char **path, uint64_t *record, const char **typed,
                          int *one)
{
    flm_error err = {0};
    *path = NULL, *record = 0, *typed = NULL, *one = 0;
    if (a->key) {
        flm_index *idx = NULL;
        int rc = flm_index_open(&idx, a->target, FLM_INDEX_READONLY, &err) < 0 ||
                 flm_index_locate(idx, a->key, path, record, &err) < 0;
        if (rc)
            cli_error("%s", err.msg);
        flm_index_close(&idx);
        *one = 1;
        return rc;
    }
    if (!(*path = flm_strdup(a->target))) {
        cli_error("inspect: out of memory");
        return 1;
    }
    char *colon = strrchr(*path, ':');
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
        *colon = 0;
        *typed = a->target + (colon + 1 - *path);
        errno = 0;
        *record = strtoull(*typed, NULL, 10);
        if (errno == ERANGE)
            *record = UINT64_MAX; /* out of range below, with the number as typed */
        *one = 1;
    }
    return 0;
}

/* One sample as a timeline, JSON, an HTML page or a PNG: 0 or 1 (said). */
static int show_sample(const inspect_args *a, flm_shard_reader *r, const char *path,
                       uint64_t record, const flm_sample *s)
{
    flm_error err = {0};
    flm_profiles p;
    flm_profiles_default(&p);
    char source[4200];
    snprintf(source, sizeof source, "%s, record %llu", path, (unsigned long long)record);
    flm_tokenizer *tok = NULL;
    html_audio audio = {NULL, NULL, 0};
    int rc = 0;
    if ((a->html || (!a->png && !a->json)) && a->tok_path && *a->tok_path) {
        flm_tokenizer_params tp = flm_tokenizer_default_params();
        tp.vocab = &p.vocab;
        if (flm_tokenizer_load(&tok, a->tok_path, &tp, &err) < 0) {
            cli_error("inspect: %s", err.msg);
            return 1;
        }
    }
    if (a->html && a->codec) {
        flm_mimi *m = NULL;
        float *l = NULL, *sp = NULL;
        if (flm_mimi_load(&m, a->codec, NULL, &err) < 0 ||
            render_sides(m, s, &l, &sp, &audio.n_samples, &err) < 0) {
            cli_error("inspect: %s", err.msg);
            rc = 1;
        }
        audio.listen = l;
        audio.speak = sp;
        flm_mimi_destroy(&m);
    }
    if (rc != 0) {
        /* the codec did not load: said above */
    } else if (a->html || a->png) {
        cli_out o;
        FILE *f = a->html ? cli_out_open(&o, a->html) : NULL;
        if (a->html && cli_out_close(&o, f && html_timeline(f, s, &p, source, tok, &audio) == 0)) {
            cli_error("inspect: cannot write %s: %s", a->html, strerror(errno));
            rc = 1;
        }
        if (a->png && png_timeline(a->png, s, &p, &err) < 0) {
            cli_error("inspect: %s", err.msg);
            rc = 1;
        }
    } else if (a->json) {
        if (timeline_print_json(stdout, s) < 0) {
            cli_error("inspect: out of memory");
            rc = 1;
        }
    } else {
        timeline_opts o = a->o;
        printf("shard     %s, record %llu of %llu\n", path, (unsigned long long)record,
               (unsigned long long)flm_shard_reader_count(r));
        o.tok = tok;
        timeline_print(stdout, s, &p, &o);
    }
    flm_tokenizer_destroy(&tok);
    flm_free((void *)audio.listen);
    flm_free((void *)audio.speak);
    return rc;
}

int cmd_inspect(int argc, char **argv)
{
    inspect_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSED)
        return rc;
    flm_error err = {0};
    char *path = NULL;
    const char *typed = NULL;
    uint64_t record = 0;
    int one = 0;
    if (resolve_target(&a, &path, &record, &typed, &one))
        return 1;
    flm_shard_reader *r = NULL;
    flm_sample *s = NULL;
    rc = 1;
    /* a FIFO would block the shard reader's open */
    if (flm_check_regular(path, &err) < 0)
        cli_error("shard %s", err.msg);
    else if (flm_shard_reader_open(&r, path, &err) < 0)
        cli_error("%s", err.msg);
    else if (!one)
        rc = list_records(r, a.json);
    else if (typed && record >= flm_shard_reader_count(r))
        cli_error("shard %s: record %s out of range (%llu records)", path, typed,
                  (unsigned long long)flm_shard_reader_count(r));
    else if (flm_shard_reader_read(r, record, &s, &err) < 0)
        cli_error("%s", err.msg);
    else
        rc = show_sample(&a, r, path, record, s);
    flm_sample_destroy(&s);
    flm_shard_reader_close(&r);
    flm_free(path);
    return rc;
}
