/* flm model - make and inspect model checkpoints.
 *
 *   flm model init --arch mimi --size tiny|full --seed S -o FILE   random weights, real names
 *   flm model init --arch flm --size tiny|1b|7b --seed S -o DIR    config.json + safetensors
 *   flm model info --arch mimi|flm PATH                             load it, print the config
 *   flm model quantize --model DIR --weights bf16|q8|q4 -o OUT      FLM-Audio in another format */
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_kernels.h"
#include "flm_lm.h"
#include "flm_mimi.h"
#include "flm_safetensors.h"
#include "flm_util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: flm model init --arch mimi --size tiny|full --seed S -o FILE [--json]\n"
               "       flm model init --arch flm --size tiny|1b|7b --seed S -o DIR [--json]\n"
               "                      [--dtype bf16|f32] [--shard-mb N]\n"
               "       flm model info --arch mimi FILE\n"
               "       flm model info --arch flm DIR [--weights f32|bf16|q8|q4] [--mmap]\n"
               "       flm model quantize --model DIR --weights f32|bf16|q8|q4 -o OUT\n"
               "\n"
               "init writes a checkpoint with the real tensor names and shapes and seeded random\n"
               "weights (for tests and benchmarks); it loads like a real one.\n"
               "mimi: one safetensors file; 'full' has the released model's 32 codebooks\n"
               "(about 385 MB).\n"
               "flm (the FLM-Audio RQ-Transformer): DIR/config.json (HF keys) and\n"
               "DIR/model.safetensors, or with --shard-mb N shards of at most N MB plus\n"
               "model.safetensors.index.json. Sizes: tiny (hidden 64, 2 layers, real vocabulary\n"
               "and special ids; 46 MB in bf16), 1b (hidden 1536, 16 layers, real depth head;\n"
               "1.74B parameters, 3.5 GB), 7b (the released shapes, 8.2B parameters; 16.4 GB).\n"
               "Tensors are generated and written a chunk at a time, so memory stays small.\n"
               "--dtype: bf16 (default, as released) or f32.\n"
               "--json: the summary as one JSON object (path, arch, size, seed, bytes; n_params\n"
               "and dtype for flm). Progress goes to stderr (FLM_PROGRESS=0 silences it).\n"
               "quantize loads an FLM-Audio checkpoint in the given format and writes it to OUT:\n"
               "bf16 / f32 as standard tensors, q8 / q4 (per-block int8 / 4-bit, docs/engine.md)\n"
               "as codes plus '<name>.qscale' tensors that flm_lm_load reads back without\n"
               "requantizing. info --weights loads in that format (default f32); --mmap as\n"
               "flm validate --mmap does, and reports the bytes computed from the mapping.\n");
}

/* Progress of flm_lm_write_random, which has no callback: a thread watches the safetensors
 * files of DIR grow (those written since the start, and the shard being written under its
 * temporary name) towards the checkpoint's size. */
typedef struct init_watch {
    const char *dir;
    time_t start;
    cli_progress bar;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} init_watch;

static int64_t written_bytes(const init_watch *w)
{
    int64_t sum = 0;
    DIR *d = opendir(w->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        char path[4096];
        struct stat st;
        /* each shard is written as NAME.safetensors.tmp, then renamed */
        if (!(n > 12 && !strcmp(e->d_name + n - 12, ".safetensors")) &&
            !(n > 16 && !strcmp(e->d_name + n - 16, ".safetensors.tmp")))
            continue;
        snprintf(path, sizeof path, "%s/%s", w->dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime >= w->start)
            sum += (int64_t)st.st_size;
    }
    if (d)
        closedir(d);
    return sum;
}

static void *watch_init(void *arg)
{
    init_watch *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->done) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 250000000;
        if (t.tv_nsec >= 1000000000)
            t.tv_sec++, t.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&w->cv, &w->mu, &t);
        if (!w->done) {
            int64_t b = written_bytes(w);
            cli_progress_update(&w->bar, b < w->bar.total ? b : w->bar.total - 1);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int flm_init(const char *size, uint64_t seed, const char *dtype_s, int64_t shard_mb,
                    const char *out, int json)
{
    flm_error err = {0};
    flm_lm_config cfg;
    flm_dtype dt = !strcmp(dtype_s, "bf16") ? FLM_DTYPE_BF16 : FLM_DTYPE_F32;
    if (flm_lm_config_preset(size, &cfg, &err) < 0)
        return cli_usage("model init", "%s", err.msg);
    int64_t n = flm_lm_config_n_params(&cfg);
    init_watch w = {.dir = out, .start = time(NULL) - 1, .done = 0};
    pthread_t th;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    cli_progress_start_scaled(&w.bar, "flm model init", "MB", n * (int64_t)flm_dtype_size(dt), 1e6);
    int watching = pthread_create(&th, NULL, watch_init, &w) == 0;
    int rc = flm_lm_write_random(&cfg, seed, dt, (uint64_t)shard_mb << 20, out, &err);
    pthread_mutex_lock(&w.mu);
    w.done = 1;
    pthread_cond_signal(&w.cv);
    pthread_mutex_unlock(&w.mu);
    if (watching)
        pthread_join(th, NULL);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (rc < 0) {
        cli_error("model init: %s", err.msg);
        return 1;
    }
    cli_progress_update(&w.bar, w.bar.total);
    cli_progress_finish(&w.bar, w.bar.total);
    if (json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:I}", "path", out, "arch", "flm", "size",
                              size, "seed", (json_int_t)seed, "n_params", (json_int_t)n, "dtype",
                              dtype_s, "bytes", (json_int_t)(n * (int64_t)flm_dtype_size(dt)));
        cli_json_print(stdout, o);
        json_decref(o);
        return 0;
    }
    printf("wrote %s: FLM-Audio %s, seed %llu, %.3g M parameters, %s, %.1f MB\n", out, size,
           (unsigned long long)seed, n / 1e6, dtype_s, n * (double)flm_dtype_size(dt) / 1e6);
    return 0;
}

static int flm_quantize(const char *dir, int t, const char *weights, const char *out)
{
    flm_error err = {0};
    flm_lm *lm = NULL;
    flm_kernels_init(2);
    if (flm_lm_load(&lm, dir, (flm_wtype)t, 0, &err) < 0 || flm_lm_write(lm, out, &err) < 0) {
        cli_error("model quantize: %s", err.msg);
        flm_lm_destroy(&lm);
        return 1;
    }
    printf("wrote %s: %s weights, %.1f MB\n", out, weights, flm_lm_weight_size(lm) / 1e6);
    flm_lm_destroy(&lm);
    return 0;
}

static int flm_info(const char *dir, int t, const char *weights, int flags)
{
    flm_error err = {0};
    flm_lm *lm = NULL;
    flm_kernels_init(2);
    if (flm_lm_load(&lm, dir, (flm_wtype)t, flags, &err) < 0) {
        cli_error("model info: %s", err.msg);
        return 1;
    }
    const flm_lm_config *c = flm_lm_get_config(lm);
    printf("%s: FLM-Audio, %.3g M parameters\n", dir, flm_lm_config_n_params(c) / 1e6);
    printf("backbone: %d layers, hidden %d, %d heads / %d kv heads (head %d), ff %d, vocab %d\n",
           c->n_layers, c->hidden, c->n_heads, c->n_kv_heads, c->head_dim, c->intermediate,
           c->vocab_size);
    printf("rms_norm_eps %g, rope_theta %g, q/k/v bias %s, o bias %s, tied %s\n", c->rms_eps,
           c->rope_theta, c->attention_bias ? "yes" : "no", c->o_bias ? "yes" : "no",
           c->tie_embeddings ? "yes" : "no");
    printf("depth: %d layers, n_embd %d, %d heads, ff %d, audio vocab %d\n", c->dep_layers,
           c->dep_embd, c->dep_heads, c->dep_ff, c->aud_vocab);
    printf("tokens: wait %d, audio pad %d, audio empty %d\n", c->text_wait, c->aud_pad,
           c->aud_empty);
    size_t mapped = flm_lm_mapped_size(lm);
    printf("weights in memory: %.1f MB (%s)\n", (flm_lm_weight_size(lm) - mapped) / 1e6, weights);
    if (flags & FLM_LM_LOAD_MAPPED)
        printf("weights computed from the file's mapping: %.1f MB\n", mapped / 1e6);
    flm_lm_destroy(&lm);
    return 0;
}

static int mimi_init(const char *size, unsigned long long seed, const char *out, int json)
{
    flm_error err = {0};
    flm_mimi_config cfg;
    uint8_t *buf = NULL;
    size_t n;
    if (flm_mimi_config_preset(size, &cfg, &err) < 0)
        return cli_usage("model init", "%s", err.msg);
    if (flm_mimi_random_checkpoint(&cfg, seed, &buf, &n, &err) < 0) {
        cli_error("model init: %s", err.msg);
        return 1;
    }
    /* write through the library's writer format: the image is already a complete file */
    FILE *f = fopen(out, "wb");
    int ok = f != NULL;
    cli_progress bar;
    cli_progress_start_scaled(&bar, "flm model init: writing", "MB", (int64_t)n, 1e6);
    for (size_t at = 0, chunk = 8u << 20; ok && at < n; at += chunk) {
        size_t c = n - at < chunk ? n - at : chunk;
        ok = fwrite(buf + at, 1, c, f) == c;
        cli_progress_update(&bar, (int64_t)(at + c));
    }
    cli_progress_finish(&bar, (int64_t)n);
    if (f && fclose(f) != 0)
        ok = 0;
    flm_free(buf);
    if (!ok) {
        cli_error("model init: cannot write %s", out);
        return 1;
    }
    if (json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I}", "path", out, "arch", "mimi", "size", size,
                              "seed", (json_int_t)seed, "bytes", (json_int_t)n);
        cli_json_print(stdout, o);
        json_decref(o);
        return 0;
    }
    printf("wrote %s: Mimi %s, seed %llu, %.1f MB\n", out, size, seed, n / 1e6);
    return 0;
}

static int mimi_info(const char *path)
{
    flm_error err = {0};
    flm_mimi *m = NULL;
    flm_mimi_params p = flm_mimi_default_params();
    if (flm_mimi_load(&m, path, &p, &err) < 0) {
        cli_error("model info: %s", err.msg);
        return 1;
    }
    const flm_mimi_config *c = flm_mimi_get_config(m);
    printf("%s: Mimi, SEANet filters %d, ratios [%d, %d, %d, %d], dimension %d\n", path,
           c->n_filters, c->ratios[0], c->ratios[1], c->ratios[2], c->ratios[3], c->dimension);
    printf("transformers: %d layers, d_model %d, %d heads, ff %d, context %d\n", c->n_layers,
           c->d_model, c->n_heads, c->dim_ff, c->context);
    printf("quantizer: %d of %d codebooks, %d bins, dimension %d\n", c->n_q, c->n_q_total, c->bins,
           c->q_dim);
    printf("weights in memory: %.1f MB (float32)\n", flm_mimi_weight_size(m) / 1e6);
    flm_mimi_destroy(&m);
    return 0;
}

/* --arch: 0 mimi, 1 flm; CLI_PARSED or 2 (said). */
static int parse_arch(const char *cmd, const char *text, int *arch)
{
    if (!text)
        return cli_usage(cmd, "missing --arch mimi|flm");
    if (strcmp(text, "mimi") && strcmp(text, "flm"))
        return cli_usage(cmd, "unknown --arch '%s' (supported: mimi, flm)", text);
    *arch = !strcmp(text, "flm");
    return CLI_PARSED;
}

static int cmd_init(int argc, char **argv)
{
    const char *arch_s = NULL, *size = NULL, *seed_s = "0", *out = NULL, *dtype = NULL;
    const char *shard_s = NULL;
    int json = 0, arch, n, dt = 0;
    int64_t shard_mb = 0;
    const cli_option opts[] = {
        CLI_OPT("--arch", "mimi|flm", "the architecture", &arch_s),
        CLI_OPT("--size", "SIZE", "mimi: tiny or full; flm: tiny, 1b or 7b", &size),
        CLI_OPT("--seed", "S", "the weights' seed (default 0)", &seed_s),
        CLI_OPT("-o, --output", "OUT", "the file (mimi) or directory (flm) to write", &out),
        CLI_OPT("--dtype", "bf16|f32", "flm: the tensors' type (default bf16, as released)",
                &dtype),
        CLI_OPT("--shard-mb", "N", "flm: shards of at most N MB plus an index", &shard_s),
        CLI_FLAG("--json", "print the summary as one JSON object", &json),
        {0}};
    const cli_option *const tables[] = {opts, NULL};
    const cli_command c = {"model init", usage, tables, 0, NULL};
    static const char *const dtypes[] = {"bf16", "f32", NULL};
    int rc = cli_parse(&c, argc, argv, NULL, &n);
    if (rc != CLI_PARSED || (rc = parse_arch("model init", arch_s, &arch)) != CLI_PARSED)
        return rc;
    if (!size || !out)
        return cli_usage("model init", "%s", !size ? "missing --size" : "missing -o OUT");
    char *end;
    unsigned long long seed = strtoull(seed_s, &end, 10);
    if (*end || !*seed_s)
        return cli_usage("model init", "--seed must be an unsigned integer, got '%s'", seed_s);
    if (dtype && strcmp(dtype, "bf16") && strcmp(dtype, "f32"))
        return cli_usage("model init", "--dtype must be bf16 or f32, got '%s'", dtype);
    dt = dtype && !strcmp(dtype, "f32");
    if ((rc = cli_i64("model init", "--shard-mb", shard_s, 1, 1 << 20, &shard_mb)))
        return rc;
    return arch ? flm_init(size, seed, dtypes[dt], shard_mb, out, json)
                : mimi_init(size, seed, out, json);
}

static int cmd_info(int argc, char **argv)
{
    const char *arch_s = NULL, *path = NULL;
    int arch, n;
    cli_model_opts mo = cli_model_opts_default();
    const cli_option opts[] = {CLI_OPT("--arch", "mimi|flm", "the architecture", &arch_s),
                               CLI_OPT_WEIGHTS(&mo),
                               CLI_OPT_MMAP(&mo),
                               {0}};
    const cli_option *const tables[] = {opts, NULL};
    const cli_command c = {"model info", usage, tables, 1, NULL};
    int rc = cli_parse(&c, argc, argv, &path, &n);
    if (rc != CLI_PARSED || (rc = cli_model_opts_finish("model info", &mo)) ||
        (rc = parse_arch("model info", arch_s, &arch)) != CLI_PARSED)
        return rc;
    if (!path)
        return cli_usage("model info", "expected one checkpoint");
    return arch ? flm_info(path, mo.wtype, flm_wtype_name((flm_wtype)mo.wtype), mo.load_flags)
                : mimi_info(path);
}

static int cmd_quantize(int argc, char **argv)
{
    const char *out = NULL;
    int n;
    cli_model_opts mo = cli_model_opts_default();
    const cli_option opts[] = {CLI_OPT_MODEL(&mo, "the FLM-Audio checkpoint directory"),
                               CLI_OPT_WEIGHTS(&mo),
                               CLI_OPT("-o, --output", "OUT", "the directory to write", &out),
                               {0}};
    const cli_option *const tables[] = {opts, NULL};
    const cli_command c = {"model quantize", usage, tables, 0, NULL};
    int rc = cli_parse(&c, argc, argv, NULL, &n);
    if (rc != CLI_PARSED || (rc = cli_model_opts_finish("model quantize", &mo)))
        return rc;
    if (!mo.model || !mo.weights_text || !out)
        return cli_usage("model quantize", "%s",
                         !mo.model          ? "missing --model DIR"
                         : !mo.weights_text ? "missing --weights f32|bf16|q8|q4"
                                            : "missing -o OUT");
    return flm_quantize(mo.model, mo.wtype, mo.weights_text, out);
}

int cmd_model(int argc, char **argv)
{
    static const cli_subcommand subs[] = {
        {"init", cmd_init}, {"info", cmd_info}, {"quantize", cmd_quantize}, {NULL, NULL}};
    return cli_dispatch("model", usage, subs, argc, argv);
}
