/* flm pack: the command line of the packing job (see pack.h for its files, docs/pack.md and
 * docs/dialogs.md for what it does). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flm_config.h"
#ifdef FLM_HAVE_MPI
#include <mpi.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "commands.h"
#include "flm_alloc.h"
#include "flm_pack.h"
#include "pack.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: flm pack --recipe R.json --out DATASET --tokenizer tokenizer.json [options]\n"
        "                MANIFEST.jsonl...\n"
        "\n"
        "Post-training recipes (formats tts/asr): packs sentence-aligned utterances (the output\n"
        "of flm align; a line may name precomputed codes, \"codes\": \"x.npy\") into TTS- and\n"
        "ASR-style samples (docs/pack.md). Fine-tuning recipes (arrt/rtts/rtts-free): renders\n"
        "each dialog of a dialog manifest into two tracks with simulated interruptions,\n"
        "augments the listen track and packs one sample per dialog (docs/dialogs.md).\n"
        "Conversation recipes (fine-tuning-conversation): two-channel recordings aligned by flm\n"
        "align (one line per channel) become full-duplex samples, one side the model, cut at\n"
        "its pauses (docs/conversations.md).\n"
        "Audio is decoded by FFmpeg and encoded with Mimi; shards are indexed in\n"
        "DATASET/index.sqlite. Running the same command again resumes a stopped job (finished\n"
        "work is not redone, the result is identical); more manifests can be added later.\n"
        "Broken inputs are quarantined with the reason (flm index quarantine DATASET) and the\n"
        "job goes on.\n"
        "\n"
        "One writer at a time: a second job on the same DATASET is refused, naming the first.\n"
        "Resuming or appending with another configuration (recipe, seed, silence codes, codec,\n"
        "tokenizer, noise) for manifests already packed is refused, naming each difference; a\n"
        "dataset keeps one codec and one tokenizer. Exit status: 0 done; 1 error (nothing about\n"
        "the job is right: codec, tokenizer, recipe, output; or it stopped); 2 usage; 3 done, but\n"
        "more than --max-bad of the inputs were quarantined.\n");
}

/* --silence-codes: 0 or 2 (said). */
static int parse_silence(const char *v, int32_t *out)
{
    const char *p = v;
    for (int c = 0; c < FLM_N_CODEBOOKS; c++) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 0 || x > 2047 || (c < FLM_N_CODEBOOKS - 1 && *end != ',') ||
            (c == FLM_N_CODEBOOKS - 1 && *end))
            return cli_usage("pack",
                             "--silence-codes '%s': expected 8 comma-separated codes 0..2047", v);
        out[c] = (int32_t)x;
        p = end + 1;
    }
    return 0;
}

static int has_parts(const char *out)
{
    DIR *d = opendir(out);
    int found = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        found |= !strncmp(de->d_name, "part-", 5);
    if (d)
        closedir(d);
    return found;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        cli_error("pack: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Sentences or dialogs, by the recipe's formats; for dialogs the timeline and augmentation
 * settings, and the noise clips. */
static int setup_recipe(job *J, const char *noise, const char *model_side)
{
    const double *f = J->recipe.p_format;
    double post = f[FLM_FORMAT_TTS] + f[FLM_FORMAT_ASR];
    double dial = f[FLM_FORMAT_ARRT] + f[FLM_FORMAT_RTTS] + f[FLM_FORMAT_RTTS_FREE];
    double words = f[FLM_FORMAT_WORDS] + f[FLM_FORMAT_WORDS_ASR];
    double conv = f[FLM_FORMAT_CONVERSATION];
    flm_error err = {0};
    if ((post > 0) + (dial > 0) + (words > 0) + (conv > 0) > 1 ||
        (f[FLM_FORMAT_WORDS] > 0 && f[FLM_FORMAT_WORDS_ASR] > 0)) {
        cli_error("pack: recipe %s mixes kinds of formats: sentences (tts, asr), dialogs (arrt, "
                  "rtts, rtts-free), conversations and each word-level arm (words, words-asr) "
                  "are packed by separate jobs",
                  J->recipe.name);
        return -1;
    }
    J->conv = conv > 0;
    if (model_side && !J->conv) {
        cli_error("pack: --model-side chooses a side of recorded conversations; recipe %s has no "
                  "\"conversation\" format",
                  J->recipe.name);
        return -1;
    }
    J->model_side = 0;
    if (model_side && (J->model_side = !strcmp(model_side, "left")    ? 0
                                       : !strcmp(model_side, "right") ? 1
                                       : !strcmp(model_side, "both")  ? 2
                                                                      : -1) < 0) {
        cli_error("pack: --model-side '%s': expected left, right or both", model_side);
        return -1;
    }
    J->dialogs = dial > 0 || J->conv;
    J->words = f[FLM_FORMAT_WORDS] > 0       ? FLM_PACK_WORDS
               : f[FLM_FORMAT_WORDS_ASR] > 0 ? FLM_PACK_WORDS_ASR
                                             : 0;
    if (!J->dialogs) {
        if (noise) {
            cli_error("pack: --noise augments dialogs; recipe %s packs sentences", J->recipe.name);
            return -1;
        }
        return 0;
    }
    J->ap = flm_augment_default_params();
    int rc = flm_dialog_params_from_recipe(&J->dp, &J->recipe, &J->prof, &err);
    for (size_t i = 0; rc == 0 && i < J->recipe.n_augment; i++)
        rc = flm_augment_params_set(&J->ap, J->recipe.augment_key[i], J->recipe.augment_value[i],
                                    &err);
    if (rc == 0)
        rc = flm_augment_params_check(&J->ap, &err);
    if (rc == 0 && noise && (rc = flm_augment_noise_pool_create(&J->pool, &err)) == 0)
        rc = flm_augment_noise_pool_load(J->pool, noise, J->prof.codec.sample_rate, 4 * 3600.0,
                                         &err);
    if (rc < 0)
        cli_error("pack: %s", err.msg);
    return rc;
}

/* Takes the dataset's lock (a split job: shared on the dataset, exclusive on its part), then
 * checks the layout and removes what killed writers left, under the lock. Sets J->dir. */
static int lock_dataset(job *J, char *part, size_t size)
{
    flm_error err = {0};
    char what[96];
    if (J->world > 1)
        snprintf(what, sizeof what, "flm pack (rank %d of %d)", J->rank, J->world);
    else
        snprintf(what, sizeof what, "flm pack");
    if (flm_dataset_lock_acquire(&J->parent_lock, J->out, what,
                                 J->world > 1 ? FLM_LOCK_SHARED : FLM_LOCK_EXCLUSIVE, &err) < 0) {
        cli_error("pack: %s", err.msg);
        return 1;
    }
    struct stat st;
    snprintf(part, size, "%s/shards", J->out);
    if (J->world == 1 && has_parts(J->out)) {
        cli_error("pack: %s holds a multi-rank dataset (part-*); use another --out", J->out);
        return 1;
    }
    if (J->world > 1 && stat(part, &st) == 0) {
        cli_error("pack: %s holds a single-process dataset; use another --out", J->out);
        return 1;
    }
    if (J->world > 1)
        snprintf(part, size, "%s/part-%d-of-%d", J->out, J->rank, J->world);
    else
        snprintf(part, size, "%s", J->out);
    J->dir = part;
    char shards[4200];
    snprintf(shards, sizeof shards, "%s/%s", part, FLM_SHARDS_DIR);
    if (make_dir(part) < 0 || make_dir(shards) < 0)
        return 1;
    if (J->world > 1 &&
        flm_dataset_lock_acquire(&J->lock, part, what, FLM_LOCK_EXCLUSIVE, &err) < 0) {
        cli_error("pack: %s", err.msg);
        return 1;
    }
    flm_shard_remove_leftovers(shards);
    return 0;
}

/* What the command line gives beyond the job's own fields. */
typedef struct pack_args {
    const char *recipe, *tok_path, *noise, *model_side;
    int64_t rank, world;
    cli_model_opts mo; /* --threads (0: all cores) */
} pack_args;

static int parse_args(int argc, char **argv, job *J, pack_args *a)
{
    const char *silence = NULL, *per_shard = NULL, *rank = NULL, *world = NULL, *max_bad = NULL;
    const char *tok = NULL;
    int64_t per = 256;
    *a = (pack_args){.rank = -1, .world = -1, .mo = cli_model_opts_default()};
    a->mo.threads = 0;
    const cli_option opts[] = {
        CLI_OPT("--recipe", "FILE", "stage recipe (schemas/recipes/post-training-1.json, ...)",
                &a->recipe),
        CLI_OPT("--out", "DIR", "dataset directory (created)", &J->out),
        CLI_OPT("--tokenizer", "FILE", "Qwen2.5 tokenizer.json (default: $FLM_TOKENIZER)", &tok),
        CLI_OPT_CODEC(&J->codec_path,
                      "Mimi checkpoint (tokenizer-e351c8d8-checkpoint125.safetensors);\n"
                      "without it a seeded RANDOM Mimi is used (pipeline tests only)"),
        CLI_OPT("--noise", "DIR|LIST",
                "dialogs: noise clips for the listen-track augmentation (a\n"
                "directory, or a text file of paths)",
                &a->noise),
        CLI_OPT("--model-side", "SIDE",
                "conversations: the channel that is the model, left (default;\n"
                "moshi-finetune's convention), right, or both (one sample set\n"
                "per side)",
                &a->model_side),
        CLI_OPT("--silence-codes", "LIST",
                "the codec's 8 codes for a silent frame, comma-separated (default:\n"
                "computed with the codec)",
                &silence),
        CLI_OPT("--per-shard", "N",
                "samples per shard, at least (default 256; shards end at groups)", &per_shard),
        CLI_OPT("--rank", "I",
                "with --world N: process the I-th of N parts (Slurm arrays); each\n"
                "part writes DIR/part-I-of-N; merge them with flm index merge when\n"
                "all are done. Under mpirun the rank and world come from MPI and\n"
                "rank 0 merges.",
                &rank),
        CLI_OPT("--world", "N", "the number of parts (with --rank)", &world),
        CLI_FLAG("--retry-quarantined", "also retry the inputs quarantined by earlier runs",
                 &J->retry),
        CLI_OPT("--max-bad", "FRACTION",
                "exit with status 3 when more than this share of the inputs was\n"
                "quarantined (default 0.01; 1 never)",
                &max_bad),
        CLI_FLAG("--json", "print the summary as one JSON object", &J->json),
        CLI_OPT_THREADS(&a->mo, "codec threads (default: all cores)"),
        {0}};
    const cli_option *const tables[] = {opts, NULL};
    const cli_command c = {"pack", usage, tables, argc, NULL};
    int rc = cli_parse(&c, argc, argv, (const char **)J->manifests, &J->n_manifests);
    if (rc != CLI_PARSED || (rc = cli_model_opts_finish("pack", &a->mo)) ||
        (silence && (rc = parse_silence(silence, J->silence))) ||
        (rc = cli_i64("pack", "--per-shard", per_shard, 1, 1000000, &per)) ||
        (rc = cli_i64("pack", "--rank", rank, 0, 1000000, &a->rank)) ||
        (rc = cli_i64("pack", "--world", world, 1, 1000000, &a->world)) ||
        (rc = cli_fraction("pack", "--max-bad", max_bad, &J->max_bad)))
        return rc;
    J->have_silence = silence != NULL;
    J->per_shard = (int)per;
    a->tok_path = tok ? tok : getenv("FLM_TOKENIZER");
    if (!a->recipe || !J->out || !a->tok_path || J->n_manifests == 0)
        return cli_usage("pack", "%s required",
                         !a->recipe     ? "--recipe FILE is"
                         : !J->out      ? "--out DIR is"
                         : !a->tok_path ? "--tokenizer FILE (a Qwen2.5 tokenizer.json) is"
                                        : "at least one SENTENCES.jsonl is");
    if ((a->rank >= 0) != (a->world >= 0))
        return cli_usage("pack", "--rank and --world go together");
    if (a->rank >= a->world && a->world > 0)
        return cli_usage("pack", "--rank %lld is not below --world %lld", (long long)a->rank,
                         (long long)a->world);
    return CLI_PARSED;
}

/* Under mpirun: the rank and world from MPI (1), else 0; 2 when --rank/--world were also given. */
static int mpi_start(job *J, pack_args *a)
{
#ifdef FLM_HAVE_MPI
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK")) {
        if (a->world > 0) {
            cli_error("pack: --rank/--world cannot be used under mpirun (MPI gives them)");
            return 2;
        }
        int r, n;
        MPI_Init(NULL, NULL);
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
        MPI_Comm_size(MPI_COMM_WORLD, &n);
        a->rank = r, a->world = n;
        J->mpi = 1;
    }
#endif
    J->rank = a->rank < 0 ? 0 : (int)a->rank;
    J->world = a->world < 0 ? 1 : (int)a->world;
    return J->mpi;
}

/* Rank 0 merges the parts' indexes when every rank is done; the exit status of the job. */
static int mpi_finish(job *J, int rc)
{
#ifdef FLM_HAVE_MPI
    flm_error err = {0};
    int ok = rc != 1, all_ok = 0, worst = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (J->rank == 0 && all_ok && J->world > 1) {
        char dst[4200], **ins = flm_calloc((size_t)J->world, sizeof *ins);
        snprintf(dst, sizeof dst, "%s/%s", J->out, FLM_INDEX_FILE);
        for (int r = 0; ins && r < J->world; r++) {
            ins[r] = flm_malloc(4200);
            snprintf(ins[r], 4200, "%s/part-%d-of-%d/%s", J->out, r, J->world, FLM_INDEX_FILE);
        }
        /* the merged index is derived: rebuilt each time, replacing the old one whole */
        if (flm_index_merge(dst, (const char *const *)ins, (size_t)J->world,
                            FLM_INDEX_MERGE_REPLACE, &err) < 0) {
            cli_error("pack: merging the parts: %s", err.msg);
            rc = 1;
        } else {
            printf("merged %d parts into %s\n", J->world, dst);
            rc = worst;
        }
        for (int r = 0; ins && r < J->world; r++)
            flm_free(ins[r]);
        flm_free(ins);
    } else {
        rc = all_ok ? worst : 1;
    }
    MPI_Finalize();
#else
    (void)J;
#endif
    return rc;
}

/* Recipe, tokenizer, output and its lock, codec, silence, the pinned configuration: 0 or 1. */
static int prepare(job *J, const pack_args *a, char *part, size_t size)
{
    flm_error err = {0};
    flm_tokenizer_params tp = flm_tokenizer_default_params();
    flm_profiles_default(&J->prof);
    tp.vocab = &J->prof.vocab; /* transcripts never produce <wait>, <asr>, <answer> */
    tp.split_added = 0;        /* "<|im_end|>" in a transcript is text */
    if (flm_recipe_load(a->recipe, &J->recipe, &err) < 0 ||
        flm_tokenizer_load(&J->tok, a->tok_path, &tp, &err) < 0) {
        cli_error("pack: %s", err.msg);
        return 1;
    }
    if (setup_recipe(J, a->noise, a->model_side) < 0 || make_dir(J->out) < 0)
        return 1;
    int rc = lock_dataset(J, part, size);
    if (rc)
        return rc;
    /* whatever concerns the whole job is checked before the first input is touched */
    if ((J->codec_path && pack_load_codec(J, &err) < 0) ||
        (!J->dialogs && pack_silence(J, &err) < 0) ||
        pack_config_build(J, a->tok_path, a->noise, &err) < 0) {
        cli_error("pack: %s", err.msg);
        return 1;
    }
    return 0;
}

int cmd_pack(int argc, char **argv)
{
    job J;
    pack_args a;
    memset(&J, 0, sizeof J);
    J.manifests = flm_calloc((size_t)argc + 1, sizeof *J.manifests);
    J.file_names = flm_calloc((size_t)argc + 1, sizeof *J.file_names);
    J.real_paths = flm_calloc((size_t)argc + 1, sizeof *J.real_paths);
    J.max_bad = 0.01;
    int rc = !J.manifests || !J.file_names || !J.real_paths ? 1 : parse_args(argc, argv, &J, &a);
    int mpi = rc == CLI_PARSED ? mpi_start(&J, &a) : 0;
    if (rc != CLI_PARSED || mpi == 2) {
        pack_free_names(&J);
        return rc != CLI_PARSED ? rc : 2;
    }
#ifdef _OPENMP
    if (a.mo.threads > 0)
        omp_set_num_threads((int)a.mo.threads);
#endif
    char part[4096];
    rc = prepare(&J, &a, part, sizeof part);
    int64_t n_bad = 0;
    if (rc == 0 && pack_run(&J, &n_bad) < 0)
        rc = 1;
    if (rc == 0 && J.too_many_bad)
        rc = PACK_EXIT_TOO_MANY_BAD;
    flm_index_close(&J.idx);
    flm_dataset_lock_release(&J.lock);
    flm_dataset_lock_release(&J.parent_lock);
    if (J.world > 1 && !mpi && rc != 1)
        printf("part %d of %d done; when all parts are: flm index merge %s/part-*-of-%d -o %s\n",
               J.rank, J.world, J.out, J.world, J.out);
    if (mpi)
        rc = mpi_finish(&J, rc);
    flm_tokenizer_destroy(&J.tok);
    flm_token_buf_free(&J.tb);
    flm_mimi_stream_destroy(&J.stream);
    flm_mimi_destroy(&J.mimi);
    flm_augment_noise_pool_destroy(&J.pool);
    flm_recipe_free(&J.recipe);
    pack_free_names(&J);
    return rc;
}
