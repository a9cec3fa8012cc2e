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

/* "--key value" / "--key=value" parsing: returns the value when argv[*i] is that option and
 * advances *i; NULL otherwise. Prints an error and sets *bad when the value is missing. */
const char *cli_opt(int argc, char **argv, int *i, const char *name, int *bad);
/* The options the model commands share (flm sample, flm validate): --model DIR, --weights
 * f32|bf16|q8|q4, --mmap, --threads N. */
typedef struct cli_model_opts {
    const char *model;
    int wtype;       /* flm_wtype (default f32) */
    int load_flags;  /* FLM_LM_LOAD_MAPPED with --mmap */
    int64_t threads; /* 1..64 (default 2) */
} cli_model_opts;
cli_model_opts cli_model_opts_default(void);
/* Takes argv[*i] (and its value) when it is one of them: 1 taken, 0 not one of them, -1 a bad
 * value (said, naming cmd: exit 2). */
int cli_model_opt(const char *cmd, int argc, char **argv, int *i, cli_model_opts *mo, int *bad);
/* Parses a non-negative integer option value; prints an error naming the option on failure. */
int cli_parse_i64(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out);
/* A fraction in [0, 1] (--max-bad): -1 with a message naming opt and text otherwise. */
int cli_parse_fraction(const char *opt, const char *text, double *out);

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

#define cli_error(...) (fprintf(stderr, "flm: " __VA_ARGS__), fputc('\n', stderr))
/* A usage mistake, answered in one line and a pointer to the help: "flm: CMD: what" then
 * "see flm CMD --help" on stderr. Returns 2 (the exit status of a usage error). */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
