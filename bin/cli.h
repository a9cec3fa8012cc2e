/* cli.h - helpers shared by the subcommands: progress bar, argument parsing, messages. */
#ifndef FLM_CLI_H
#define FLM_CLI_H

#include <stdint.h>
#include <stdio.h>

/* Progress on stderr: a bar with rate and ETA when stderr is a terminal, otherwise a line every
 * 10 % (so logs of batch jobs stay short). Set FLM_PROGRESS=0 to silence it. */
typedef struct cli_progress {
    const char *label;
    const char *unit; /* "samples", "shards", ... */
    int64_t total;
    double scale; /* done and total are shown divided by it (1 = counts, shown as integers) */
    double start, last;
    int tty, enabled, last_decile;
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label, const char *unit, int64_t total);
/* The same with counts in 1/scale of the unit (e.g. frames shown as hours: scale 45000). */
void cli_progress_start_scaled(cli_progress *p, const char *label, const char *unit, int64_t total,
                               double scale);
void cli_progress_update(cli_progress *p, int64_t done);
void cli_progress_finish(cli_progress *p, int64_t done);

/* One option parser for every command, driven by a table per command:
 *
 *     const char *out = NULL, *seed = NULL;
 *     int json = 0;
 *     const cli_option opts[] = {
 *         CLI_OPT("-o, --out", "DIR", "where to write", &out),
 *         CLI_OPT("--seed", "N", "run seed (default 0)", &seed),
 *         CLI_FLAG("--json", "print JSON", &json),
 *         {0}};
 *     const cli_option *const tables[] = {opts, NULL};
 *     const cli_command c = {"demo", usage, tables, 1, NULL};
 *     const char *args[1];
 *     int n_args, rc = cli_parse(&c, argc, argv, args, &n_args);
 *     if (rc != CLI_PARSED)
 *         return rc; // 0 after --help, 2 after a usage mistake (said in one line)
 *
 * argv[0] is the command's own name. "--key value" and "--key=value" are the same; a flag takes
 * no value; "-h" / "--help" prints the usage text then the options from the table; "--" ends the
 * options. Values stay text (the last one given wins, or every one in order with .list); convert
 * them afterwards with cli_i64 / cli_fraction / cli_choice, which answer a bad value as a usage
 * mistake too. */
typedef struct cli_list {
    const char **v; /* the values in command-line order (owned: flm_free) */
    int n;
} cli_list;
typedef struct cli_option {
    const char *name;   /* "--index", or "-o, --out" for a short alias; NULL ends the table */
    const char *arg;    /* the value's name in the help ("IDX"); NULL: a flag */
    const char *help;   /* one line ("" for none); longer lines are wrapped by hand with \n */
    const char **value; /* an option's value as typed (not changed when absent) */
    int *flag;          /* a flag: set to 1 */
    cli_list *list;     /* a repeatable option: every value */
} cli_option;
/* clang-format off */
#define CLI_OPT(name, arg, help, value) {(name), (arg), (help), (value), NULL, NULL}
#define CLI_FLAG(name, help, flag) {(name), NULL, (help), NULL, (flag), NULL}
#define CLI_LIST(name, arg, help, list) {(name), (arg), (help), NULL, NULL, (list)}
/* clang-format on */
typedef struct cli_command {
    const char *name;              /* "index stats": in messages and "see flm NAME --help" */
    void (*usage)(FILE *f);        /* the synopsis and prose, printed before the options */
    const cli_option *const *opts; /* tables (each ending with {0}), NULL-terminated */
    int max_args;                  /* positional arguments at most (args holds that many) */
    const char *text;              /* printed after usage (or alone when usage is NULL) */
} cli_command;
enum { CLI_PARSED = -1 };
/* Returns CLI_PARSED (go on: *n_args positionals in args), 0 (help printed) or 2 (a usage mistake,
 * said). */
int cli_parse(const cli_command *c, int argc, char **argv, const char **args, int *n_args);
/* Prints c's usage text and its options (the table) to f. */
void cli_help(const cli_command *c, FILE *f);
/* Conversions of option values, NULL text leaving *out as it is: 0, or 2 after a one-line usage
 * error naming cmd, the option and the value. */
int cli_i64(const char *cmd, const char *opt, const char *text, int64_t min, int64_t max,
            int64_t *out);
int cli_fraction(const char *cmd, const char *opt, const char *text, double *out);
/* One of names (NULL-terminated): its index in *out. */
int cli_choice(const char *cmd, const char *opt, const char *text, const char *const *names,
               int *out);

/* Subcommands (flm index stats, flm codec encode, ...): runs the one named by argv[1] with
 * argv + 1; with no subcommand prints usage to stderr (exit 2), with -h/--help to stdout. */
typedef struct cli_subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
} cli_subcommand;
int cli_dispatch(const char *cmd, void (*usage)(FILE *f), const cli_subcommand *subs, int argc,
                 char **argv);

/* The options the model commands share (flm sample, flm validate): --model DIR, --weights
 * f32|bf16|q8|q4, --mmap, --threads N; as text in the table (CLI_MODEL_OPTIONS), converted once by
 * cli_model_opts_finish. Commands that take only some of them use the single entries. */
typedef struct cli_model_opts {
    const char *model;
    const char *weights_text, *threads_text;
    int mmap;
    int wtype;       /* flm_wtype (default f32) */
    int load_flags;  /* FLM_LM_LOAD_MAPPED with --mmap */
    int64_t threads; /* 1..1024 (default 2; set another default before parsing, 0: all cores) */
} cli_model_opts;
cli_model_opts cli_model_opts_default(void);
/* clang-format off */
#define CLI_OPT_MODEL(mo, what) CLI_OPT("--model", "DIR", what, &(mo)->model)
#define CLI_OPT_WEIGHTS(mo)                                                                        \
    CLI_OPT("--weights", "f32|bf16|q8|q4",                                                         \
            "the format the weights are held in for compute (default f32;\n"                       \
            "bf16 halves the memory, q8 / q4 are per-block int8 / 4-bit,\n"                        \
            "see docs/engine.md)",                                                                 \
            &(mo)->weights_text)
#define CLI_OPT_MMAP(mo)                                                                           \
    CLI_FLAG("--mmap", "compute from the checkpoint's file mapping, not a copy in memory", &(mo)->mmap)
#define CLI_OPT_THREADS(mo, what) CLI_OPT("--threads", "N", what, &(mo)->threads_text)
#define CLI_MODEL_OPTIONS(mo, what)                                                                \
    CLI_OPT_MODEL(mo, what), CLI_OPT_WEIGHTS(mo), CLI_OPT_MMAP(mo),                                \
    CLI_OPT_THREADS(mo, "compute threads (default 2)")
/* --codec MIMI.safetensors, which the commands that run Mimi share. */
#define CLI_OPT_CODEC(value, what) CLI_OPT("--codec", "MIMI.safetensors", what, value)
/* clang-format on */
/* Converts --weights, --threads and --mmap: 0, or 2 after a usage error naming cmd. */
int cli_model_opts_finish(const char *cmd, cli_model_opts *mo);
/* The commands that run the LM (sample, validate): cli_parse over CLI_MODEL_OPTIONS (--model: the
 * FLM-Audio checkpoint directory) and own, no positionals, then cli_model_opts_finish. */
int cli_parse_model(const char *cmd, void (*usage)(FILE *f), const cli_option *own,
                    cli_model_opts *mo, int argc, char **argv);

int cli_model_opts_finish(const char *cmd, cli_model_opts *mo);
/* The first row of an index query, its columns joined by tabs into out ("" when there is no
 * row). Returns 0 or a negative FLM_E* code (err set). */
struct flm_index;
struct flm_error;
int cli_query_row(struct flm_index *idx, const char *sql, char *out, size_t size,
                  struct flm_error *err);

/* Prints a dataset's totals and its hours by corpus, language, style and stage (or JSON).
 * Returns 0 or a negative FLM_E* code (message already printed). */
struct flm_index;
int cli_print_stats(struct flm_index *idx, int json);

/* A key=value value as typed JSON: an integer (returns 1), a number (2) or a string (0). */
typedef struct json_t json_t;
int cli_json_value(const char *text, json_t **out);
/* flm_json_dumpf (compact, floats shortest round-trip: flm_json.h) and a newline. Returns 0 or -1
 * (write error). */
int cli_json_print(FILE *f, const json_t *v);

/* The --mmap paragraph of the --help of the commands that run the LM. */
#define CLI_HELP_MMAP                                                                              \
    "--mmap: compute from the checkpoint's file mapping wherever it stores the weights\n"          \
    "in the --weights format (bf16 file with --weights bf16, f32 with f32, flm model\n"            \
    "quantize output with its format) instead of reading them into memory (the\n"                  \
    "default). Same results; the load takes a fraction of a second instead of seconds\n"           \
    "and those weights need no allocated memory: they stay page cache, shared and\n"               \
    "evictable, so under memory pressure a step may have to read them back from disk.\n"           \
    "Measured on a 1B bf16 model (bench/RESULTS.md, \"Weights mapped vs in memory\"):\n"           \
    "load 0.0 s instead of 4.1 s (cold cache: 0.3 s instead of 7.2 s, then 1.4 s for\n"            \
    "the first step), decode and teacher forcing 0.96 to 1.07x the speed of weights in\n"          \
    "memory, peak RSS 0.7x; llama.cpp over mapped weights was seen erratic and up to\n"            \
    "10x slower on these machines (DESIGN 8), so it is not the default.\n"

/* A file written whole or not at all: cli_out_open creates PATH.tmp-PID (NULL, errno set, if it
 * cannot); cli_out_close closes it and, when ok and every write succeeded, renames it to PATH,
 * otherwise removes it. 0, or -1 with errno set (nothing left under either name). */
typedef struct cli_out {
    FILE *f;
    const char *path;
    char tmp[4200];
} cli_out;
FILE *cli_out_open(cli_out *o, const char *path);
int cli_out_close(cli_out *o, int ok);

#define cli_error(...) (fprintf(stderr, "flm: " __VA_ARGS__), fputc('\n', stderr))
/* A note on stderr in the same form (what a command decided for the user to see). */
#define cli_note(...) cli_error(__VA_ARGS__)
/* A usage mistake, answered in one line and a pointer to the help: "flm: CMD: what" then
 * "see flm CMD --help" on stderr. Returns 2 (the exit status of a usage error). */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
