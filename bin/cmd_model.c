/* flm model - make and inspect model checkpoints.
 *
 *   flm model init --arch mimi --size tiny|full --seed S -o FILE   random weights, real names
 *   flm model info --arch mimi FILE                                 load it, print the config */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "flm_alloc.h"
#include "flm_mimi.h"
#include "flm_safetensors.h"
#include "flm_util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: flm model init --arch mimi --size tiny|full --seed S -o FILE\n"
               "       flm model info --arch mimi FILE\n"
               "\n"
               "init writes a safetensors checkpoint with the real tensor names and shapes and\n"
               "seeded random weights (for tests and benchmarks); it loads like a real one.\n"
               "'full' has the released model's 32 codebooks (about 385 MB).\n");
}

static int model_init(const char *arch, const char *size, const char *seed_s, const char *out)
{
    flm_error err = {0};
    flm_mimi_config cfg;
    uint8_t *buf = NULL;
    size_t n;
    char *end;
    unsigned long long seed = strtoull(seed_s, &end, 10);
    if (*end || !*seed_s) {
        fprintf(stderr, "flm model init: --seed must be an unsigned integer, got '%s'\n", seed_s);
        return 2;
    }
    if (strcmp(arch, "mimi")) {
        fprintf(stderr, "flm model init: unknown --arch '%s' (supported: mimi)\n", arch);
        return 2;
    }
    if (flm_mimi_config_preset(size, &cfg, &err) < 0) {
        fprintf(stderr, "flm model init: %s\n", err.msg);
        return 2;
    }
    if (flm_mimi_random_checkpoint(&cfg, seed, &buf, &n, &err) < 0) {
        fprintf(stderr, "flm model init: %s\n", err.msg);
        return 1;
    }
    /* write through the library's writer format: the image is already a complete file */
    FILE *f = fopen(out, "wb");
    int ok = f && fwrite(buf, 1, n, f) == n;
    if (f && fclose(f) != 0)
        ok = 0;
    flm_free(buf);
    if (!ok) {
        fprintf(stderr, "flm model init: cannot write %s\n", out);
        return 1;
    }
    printf("wrote %s: Mimi %s, seed %llu, %.1f MB\n", out, size, seed, n / 1e6);
    return 0;
}

static int model_info(const char *arch, const char *path)
{
    flm_error err = {0};
    flm_mimi *m = NULL;
    if (strcmp(arch, "mimi")) {
        fprintf(stderr, "flm model info: unknown --arch '%s' (supported: mimi)\n", arch);
        return 2;
    }
    flm_mimi_params p = flm_mimi_default_params();
    if (flm_mimi_load(&m, path, &p, &err) < 0) {
        fprintf(stderr, "flm model info: %s\n", err.msg);
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

int cmd_model(int argc, char **argv)
{
    const char *arch = NULL, *size = NULL, *seed = "0", *out = NULL;
    static const struct option opts[] = {
        {"arch", required_argument, 0, 'a'}, {"size", required_argument, 0, 's'},
        {"seed", required_argument, 0, 'S'}, {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            arch = optarg;
            break;
        case 's':
            size = optarg;
            break;
        case 'S':
            seed = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!strcmp(sub, "init")) {
        if (!arch || !size || !out || optind != argc - 1) {
            usage(stderr);
            return 2;
        }
        return model_init(arch, size, seed, out);
    }
    if (!strcmp(sub, "info")) {
        if (!arch || optind != argc - 2) {
            usage(stderr);
            return 2;
        }
        return model_info(arch, argv[1 + optind]);
    }
    fprintf(stderr, "flm model: unknown subcommand '%s'\n", sub);
    usage(stderr);
    return 2;
}
