/* flm index: stats, check, merge, quarantine, locate. */
#include <jansson.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_index.h"
#include "flm_json.h"
#include "flm_lock.h"
#include "flm_shard.h"
#include "flm_tokenizer.h"
#include "html.h"
#include "render.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: flm index <subcommand> ...\n"
            "\n"
            "  stats DATASET [--json]        samples and hours by corpus, language, style, stage;\n"
            "                                for SFT dialogs also interruption rate, overlap,\n"
            "                                reaction delays and noise/gain/echo rates\n"
            "  check DATASET [--quiet] [--json]\n"
            "                                verify the index (SQLite's quick_check, the schema,\n"
            "                                every sample's metadata) and every record of every\n"
            "                                shard against it; exit 1 and list the problems\n"
            "  merge A B ... -o OUT          merge the indexes of independent jobs into OUT: a\n"
            "                                directory (created; OUT/index.sqlite) or a file\n"
            "                                ending in .sqlite. Shards stay where they are; the\n"
            "                                new index refers to them by relative path.\n"
            "  quarantine DATASET [--json]   inputs that failed: key, path, stage, reason\n"
            "                                (tab-separated, control characters escaped)\n"
            "  locate DATASET KEY            which shard and record hold sample KEY\n"
            "  migrate DATASET               bring an index written by an older flmstream to\n"
            "                                this build's schema (under the dataset's lock)\n"
            "  query DATASET SQL [--json]    run one read-only SQL statement on the index\n"
            "                                (tab-separated with a header, or JSON rows)\n"
            "  report DATASET --html OUT [--pages N]\n"
            "                                an HTML report: hours by corpus/language/style/\n"
            "                                stage, histograms, events, metadata, quarantine,\n"
            "                                and a sample browser linking to the timelines of\n"
            "                                the first N samples (default 50; OUT_pages/)\n"
            "\n"
            "DATASET is a dataset directory (holding index.sqlite) or an index file.\n");
}

/* A subcommand's command line: flags and values per opts (NULL: none) and exactly n_args
 * positionals into args (else the usage error missing): CLI_PARSED, 0 (help) or 2 (said). */
static int parse_sub(const char *name, const char *text, const cli_option *opts, int argc,
                     char **argv, const char **args, int n_args, const char *missing)
{
    const cli_option none[] = {{0}};
    const cli_option *const tables[] = {opts ? opts : none, NULL};
    const cli_command c = {name, NULL, tables, n_args, text};
    int n, rc = cli_parse(&c, argc, argv, args, &n);
    return rc == CLI_PARSED && n != n_args ? cli_usage(name, "%s", missing) : rc;
}

/* "DATASET [--json]" (stats, quarantine): CLI_PARSED, 0 or 2. */
static int dataset_and_json(const char *name, const char *text, int argc, char **argv,
                            const char **ds, int *json)
{
    const cli_option opts[] = {CLI_FLAG("--json", "print JSON", json), {0}};
    return parse_sub(name, text, opts, argc, argv, ds, 1, "missing DATASET");
}

/* Writes s with what would break a line or a tab-separated field as a visible escape: \n, \t,
 * \r, \\ (so an escape is never ambiguous) and \xHH for the other control characters. */
static void put_escaped(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p == '\\')
            fputs("\\\\", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

/* A JSON string of s (null for NULL). JSON text is UTF-8: bytes that are not (a file name can
 * hold any) become U+FFFD. */
static json_t *json_text(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    size_t n = strlen(s);
    char *buf = j ? NULL : flm_malloc(3 * n + 1), *q = buf;
    if (!buf)
        return j;
    while (n) {
        size_t ok = flm_utf8_check(s, n);
        memcpy(q, s, ok);
        q += ok, s += ok, n -= ok;
        if (n) {
            memcpy(q, "\xef\xbf\xbd", 3);
            q += 3, s++, n--;
        }
    }
    *q = 0;
    j = json_string(buf);
    flm_free(buf);
    return j;
}

static flm_index *open_ro(const char *path)
{
    flm_index *idx = NULL;
    flm_error err = {0};
    if (flm_index_open(&idx, path, FLM_INDEX_READONLY, &err) < 0)
        cli_error("%s", err.msg);
    return idx;
}

typedef struct stats_out {
    json_t *arr;
    double total_hours;
    json_t *speech; /* group value ("" for the total) -> speech hours, or null */
} stats_out;

/* "speech h": the hours of speech the packer put in the samples (their "pack.speech_frames",
 * what flm pack's summary calls "h of speech"); "sample h" (flm_index_stats) is the samples'
 * whole length. Dialog and synthetic samples carry no such count: null / "-". */
static void on_speech_row(void *user, int n, const char *const *names, const char *const *vals)
{
    (void)names;
    if (n == 2)
        json_object_set_new(user, vals[0] ? vals[0] : "",
                            vals[1] ? json_real(strtod(vals[1], NULL) / (12.5 * 3600))
                                    : json_null());
}

static int speech_hours(flm_index *idx, const char *group, json_t *out, flm_error *err)
{
    char sql[512];
    /* json_valid: a sample whose metadata is not JSON is reported by the checks that follow,
     * naming it, instead of failing this query on the whole table */
    snprintf(sql, sizeof sql,
             "SELECT %s%s%s, sum(CASE WHEN json_valid(metadata) THEN "
             "json_extract(metadata, '$.\"pack.speech_frames\"') END) FROM samples%s",
             group ? "coalesce(" : "''", group ? group : "", group ? ", '-')" : "",
             group ? " GROUP BY 1" : "");
    json_object_clear(out);
    return flm_index_query(idx, sql, on_speech_row, out, err);
}

static void on_stat(void *user, const char *group, int64_t n, int64_t frames, double hours)
{
    stats_out *o = user;
    json_t *sp = json_object_get(o->speech, group ? group : "");
    if (o->arr) {
        json_array_append_new(o->arr,
                              json_pack("{s:s?,s:I,s:I,s:f,s:O}", "value", group, "samples",
                                        (json_int_t)n, "frames", (json_int_t)frames, "hours", hours,
                                        "speech_hours", sp ? sp : json_null()));
    } else {
        double share = !group ? 100.0 : o->total_hours > 0 ? 100 * hours / o->total_hours : 0;
        char speech[32] = "-";
        if (json_is_real(sp))
            snprintf(speech, sizeof speech, "%.2f", json_real_value(sp));
        printf("  %-24.24s %9lld %12.2f %12s %6.1f%%\n", group ? group : "total", (long long)n,
               hours, speech, share);
    }
    if (!group)
        o->total_hours = hours;
}

static void on_quarantine_count(void *user, const char *key, const char *path, const char *stage,
                                const char *error)
{
    (void)key;
    (void)path;
    (void)stage;
    (void)error;
    (*(int64_t *)user)++;
}

/* The SFT section (issue 9): interruptions, overlap, reaction delays, augmentation rates. */
static void print_dialogs(const flm_index_dialog_report *d, json_t *root)
{
    if (!d->n_dialogs && !d->n_augmented)
        return;
    if (root) {
        json_t *r = json_array();
        for (int32_t i = 0; i < d->n_reactions; i++)
            json_array_append_new(r, json_pack("{s:f,s:I}", "reaction_s", d->reaction_s[i],
                                               "interrupts", (json_int_t)d->reaction_count[i]));
        json_object_set_new(
            root, "dialogs",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:o,s:I,s:I,s:I,s:I,s:f,s:f}",
                      "samples", (json_int_t)d->n_dialogs, "eligible_turns",
                      (json_int_t)d->n_eligible, "interrupts", (json_int_t)d->n_interrupts,
                      "backchannels", (json_int_t)d->n_backchannels, "overlaps",
                      (json_int_t)d->n_overlaps, "cuts", (json_int_t)d->n_cuts, "dropped_tokens",
                      (json_int_t)d->n_dropped_tokens, "interruption_rate", d->interruption_rate,
                      "mean_overlap_s", d->mean_overlap_s, "reaction_delays", r, "augmented",
                      (json_int_t)d->n_augmented, "noise", (json_int_t)d->n_noise, "gain",
                      (json_int_t)d->n_gain, "echo", (json_int_t)d->n_echo, "mean_echo_gain",
                      d->mean_echo_gain, "mean_echo_delay_s", d->mean_echo_delay_s));
        return;
    }
    if (d->n_dialogs) {
        printf(
            "dialogs: %lld samples; interruption rate %.3f (%lld interrupts + %lld back-channels "
            "over %lld model turns followed by a user turn); mean overlap %.3f s; %lld cuts, "
            "%lld tokens dropped\n",
            (long long)d->n_dialogs, d->interruption_rate, (long long)d->n_interrupts,
            (long long)d->n_backchannels, (long long)d->n_eligible, d->mean_overlap_s,
            (long long)d->n_cuts, (long long)d->n_dropped_tokens);
        if (d->n_overlaps)
            printf("overlaps (recorded conversations: both sides talking, neither an interrupt nor "
                   "a back-channel): %lld\n",
                   (long long)d->n_overlaps);
        if (d->n_reactions) {
            printf("reaction delays:");
            for (int32_t i = 0; i < d->n_reactions; i++)
                printf(" %.3f s x%lld", d->reaction_s[i], (long long)d->reaction_count[i]);
            printf("\n");
        }
    }
    if (d->n_augmented) {
        double n = (double)d->n_augmented;
        printf("augmentation: %lld samples; noise %.1f%%, gain %.1f%%, echo %.1f%%",
               (long long)d->n_augmented, 100 * d->n_noise / n, 100 * d->n_gain / n,
               100 * d->n_echo / n);
        if (d->n_echo)
            printf(" (mean gain %.3f, mean delay %.3f s)", d->mean_echo_gain, d->mean_echo_delay_s);
        printf("\n");
    }
}

typedef struct ident_file {
    const char *member;
    char file[1024];
} ident_file;

static void on_run_file(void *user, int64_t id, const char *command, const char *config)
{
    (void)id, (void)command;
    ident_file *f = user;
    json_t *c = config && !f->file[0] ? json_loads(config, 0, NULL) : NULL;
    json_t *v = json_object_get(json_object_get(c, "files"), f->member);
    if (json_is_string(v))
        snprintf(f->file, sizeof f->file, "%s", json_string_value(v));
    json_decref(c);
}

/* The codec and tokenizer the dataset's samples were made with (FLM_INDEX_IDENTITIES). */
static int print_identities(flm_index *idx, json_t *root, flm_error *err)
{
    static const char *const members[] = FLM_INDEX_IDENTITIES;
    for (int m = 0; m < 2; m++) {
        char v[128];
        ident_file f = {members[m], ""};
        int rc = flm_index_identity(idx, members[m], v, sizeof v, err);
        if (rc == FLM_EMISMATCH) {
            snprintf(v, sizeof v, "MIXED: %s", err->msg);
        } else if (rc < 0) {
            return rc;
        } else if ((rc = flm_index_list_runs(idx, on_run_file, &f, err)) < 0) {
            return rc;
        }
        if (root) {
            json_t *o = json_object();
            json_object_set_new(o, "id", v[0] ? json_string(v) : json_null());
            json_object_set_new(o, "file", f.file[0] ? json_string(f.file) : json_null());
            json_object_set_new(root, members[m], o);
        } else {
            printf("  %-10s %s", members[m], v[0] ? v : "not recorded by its runs");
            if (f.file[0]) {
                printf(" (");
                put_escaped(stdout, f.file);
                printf(")");
            }
            printf("\n");
        }
    }
    return 0;
}

int cli_print_stats(flm_index *idx, int json)
{
    flm_error err = {0};
    static const char *groups[] = {"corpus", "language", "style", "stage"};
    stats_out o = {json ? json_array() : NULL, 0, json_object()};
    json_t *root = json ? json_object() : NULL;
    if (!json)
        printf("%s\n", flm_index_path(idx));
    int rc = print_identities(idx, root, &err);
    if (!json)
        printf("  %-24s %9s %12s %12s %7s\n", "", "samples", "sample h", "speech h", "");
    if (rc == 0)
        rc = speech_hours(idx, NULL, o.speech, &err);
    if (rc == 0)
        rc = flm_index_stats(idx, NULL, on_stat, &o, &err);
    if (json) {
        json_object_set_new(root, "total", json_incref(json_array_get(o.arr, 0)));
        json_decref(o.arr);
    }
    for (int g = 0; g < 4 && rc == 0; g++) {
        if (json)
            o.arr = json_array();
        else
            printf("by %s:\n", groups[g]);
        if ((rc = speech_hours(idx, groups[g], o.speech, &err)) == 0)
            rc = flm_index_stats(idx, groups[g], on_stat, &o, &err);
        if (json)
            json_object_set_new(root, groups[g], o.arr);
    }
    flm_index_dialog_report d;
    if (rc == 0 && (rc = flm_index_dialog_stats(idx, &d, &err)) == 0)
        print_dialogs(&d, root);
    int64_t nq = 0;
    if (rc == 0)
        rc = flm_index_list_quarantine(idx, on_quarantine_count, &nq, &err);
    if (json) {
        json_object_set_new(root, "quarantined_inputs", json_integer(nq));
        cli_json_print(stdout, root);
        json_decref(root);
    } else {
        printf("quarantined inputs: %lld%s\n", (long long)nq,
               nq ? " (flm index quarantine DATASET lists them)" : "");
    }
    json_decref(o.speech);
    if (rc < 0)
        cli_error("%s", err.msg);
    return rc;
}

static int stats(int argc, char **argv)
{
    const char *ds = NULL;
    int json = 0, rc = dataset_and_json(
                      "index stats",
                      "usage: flm index stats DATASET [--json]\n"
                      "\n"
                      "Samples and hours by corpus, language, style, stage; for SFT dialogs also\n"
                      "interruption rate, overlap, reaction delays and noise/gain/echo rates.\n",
                      argc, argv, &ds, &json);
    if (rc != CLI_PARSED)
        return rc;
    flm_index *idx = open_ro(ds);
    if (!idx)
        return 1;
    rc = cli_print_stats(idx, json);
    flm_index_close(&idx);
    return rc < 0;
}

typedef struct check_ui {
    int quiet, json;
    int64_t notes;
    json_t *errors, *note_list; /* --json */
    cli_progress bar;
} check_ui;

static void on_problem(void *user, int severity, const char *msg)
{
    check_ui *ui = user;
    if (!severity)
        ui->notes++;
    if (ui->json) {
        json_array_append_new(severity ? ui->errors : ui->note_list, json_text(msg));
    } else if (severity || !ui->quiet) {
        FILE *f = severity ? stdout : stderr;
        fputs(severity ? "ERROR " : "note  ", f);
        put_escaped(f, msg);
        fputc('\n', f);
    }
}

static void on_progress(void *user, int64_t done, int64_t total)
{
    check_ui *ui = user;
    if (done == 1)
        cli_progress_start(&ui->bar, "check", "shards", total);
    cli_progress_update(&ui->bar, done);
    if (done == total)
        cli_progress_finish(&ui->bar, done);
}

static int check(int argc, char **argv)
{
    const char *ds = NULL;
    check_ui ui = {0};
    const cli_option opts[] = {
        CLI_FLAG("--quiet", "no notes and no progress: only the errors", &ui.quiet),
        CLI_FLAG("--json", "print one JSON object", &ui.json),
        {0}};
    int prc = parse_sub("index check",
                        "usage: flm index check DATASET [--quiet] [--json]\n"
                        "\n"
                        "Verifies the index (SQLite's quick_check, the schema, every sample's\n"
                        "metadata) and every record of every shard against it; exit 1 and list\n"
                        "the problems.\n",
                        opts, argc, argv, &ds, 1, "missing DATASET");
    if (prc != CLI_PARSED)
        return prc;
    if (ui.quiet || ui.json)
        setenv("FLM_PROGRESS", "0", 1);
    ui.errors = json_array();
    ui.note_list = json_array();
    flm_index *idx = NULL;
    flm_error err = {0};
    int64_t n_err = 0, n_samples = 0;
    int rc = flm_index_open(&idx, ds, FLM_INDEX_READONLY, &err);
    if (rc == 0) {
        n_samples = flm_index_count_samples(idx, &err);
        rc = flm_index_check(idx, on_problem, on_progress, &ui, &n_err, &err);
    }
    const char *path = idx ? flm_index_path(idx) : ds;
    if (rc < 0)
        cli_error("%s", err.msg);
    if (ui.json) {
        /* one document whatever happened: a check that could not run is not ok either */
        if (rc < 0)
            json_array_append_new(ui.errors, json_text(err.msg));
        json_t *doc = json_pack("{s:o,s:b,s:I,s:O,s:O}", "index", json_text(path), "ok",
                                rc == 0 && n_err == 0, "samples_verified",
                                (json_int_t)(n_samples > 0 ? n_samples : 0), "errors", ui.errors,
                                "notes", ui.note_list);
        cli_json_print(stdout, doc);
        json_decref(doc);
    } else if (rc == 0 && n_err) {
        put_escaped(stdout, path);
        printf(": %lld error(s): the index is damaged or disagrees with its shards\n",
               (long long)n_err);
    } else if (rc == 0 && !ui.quiet) {
        put_escaped(stdout, path);
        printf(": OK, %lld samples verified%s\n", (long long)n_samples,
               ui.notes ? " (see notes above)" : "");
    }
    json_decref(ui.errors);
    json_decref(ui.note_list);
    flm_index_close(&idx);
    return rc < 0 || n_err > 0;
}

static int migrate(int argc, char **argv)
{
    const char *ds = NULL;
    int prc = parse_sub("index migrate",
                        "usage: flm index migrate DATASET\n"
                        "\n"
                        "Brings an index written by an older flmstream to this build's schema\n"
                        "(under the dataset's lock).\n",
                        NULL, argc, argv, &ds, 1, "expected one DATASET");
    if (prc != CLI_PARSED)
        return prc;
    flm_error err = {0};
    char *path = flm_index_resolve_path(ds);
    char *dir = path ? flm_strdup(path) : NULL;
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = 0;
    flm_dataset_lock *lock = NULL;
    flm_index *idx = NULL;
    struct stat st;
    int rc = 1;
    if (!path || !dir)
        cli_error("index migrate: out of memory");
    else if (stat(path, &st) != 0) /* a writable open would create an index */
        cli_error("index migrate: %s: %s", path, strerror(errno));
    else if (flm_dataset_lock_acquire(&lock, slash ? (dir[0] ? dir : "/") : ".",
                                      "flm index migrate", FLM_LOCK_EXCLUSIVE, &err) < 0 ||
             flm_index_open(&idx, path, 0, &err) < 0) /* a writable open migrates */
        cli_error("index migrate: %s", err.msg);
    else
        rc = 0;
    if (rc == 0)
        printf("%s: schema version %d (the latest)\n", flm_index_path(idx),
               flm_index_schema_version(idx));
    flm_index_close(&idx);
    flm_dataset_lock_release(&lock);
    flm_free(dir);
    flm_free(path);
    return rc;
}

static int merge(int argc, char **argv)
{
    const char *out = NULL;
    const char **ins = flm_calloc((size_t)argc + 1, sizeof *ins);
    const char **names = flm_calloc((size_t)argc + 1, sizeof *names);
    const cli_option opts[] = {
        CLI_OPT("-o", "OUT", "the merged index: a directory, or a file ending in .sqlite", &out),
        {0}};
    const cli_option *const tables[] = {opts, NULL};
    const cli_command c = {
        "index merge", NULL, tables, argc,
        "usage: flm index merge A B ... -o OUT\n"
        "\n"
        "Merges the indexes of independent jobs into OUT: a directory (created;\n"
        "OUT/index.sqlite) or a file ending in .sqlite. Shards stay where they\n"
        "are; the new index refers to them by relative path.\n"};
    int n_in = 0, rc = !ins || !names ? 1 : cli_parse(&c, argc, argv, names, &n_in);
    size_t n = 0;
    if (rc == CLI_PARSED)
        for (; n < (size_t)n_in; n++)
            ins[n] = flm_index_resolve_path(names[n]);
    flm_free(names);
    if (rc != CLI_PARSED) {
        /* said */
    } else if (!out || n == 0) {
        rc = cli_usage("index merge", "%s", !out ? "missing -o OUT" : "no input dataset");
    } else {
        flm_error err = {0};
        /* OUT is an index file when it ends in .sqlite, else a dataset directory (created) */
        size_t ol = strlen(out);
        char *dst = NULL;
        int made = 0;
        if (ol > 7 && !strcmp(out + ol - 7, ".sqlite")) {
            dst = flm_strdup(out);
        } else if (!(made = mkdir(out, 0755) == 0) && errno != EEXIST) {
            cli_error("index merge: cannot create %s: %s", out, strerror(errno));
            rc = 1;
        } else {
            dst = flm_malloc(ol + sizeof(FLM_INDEX_FILE) + 2);
            if (dst)
                snprintf(dst, ol + sizeof(FLM_INDEX_FILE) + 2, "%s/%s", out, FLM_INDEX_FILE);
        }
        if (dst)
            rc = flm_index_merge(dst, ins, n, 0, &err) < 0;
        if (rc && dst)
            cli_error("index merge: %s", err.msg);
        if (rc && made) { /* the directory this merge created, left empty by the failure */
            char lock[4200];
            snprintf(lock, sizeof lock, "%s/%s", out, FLM_LOCK_FILE);
            unlink(lock);
            rmdir(out);
        }
        if (!rc)
            printf("merged %zu indexes into %s\n", n, dst);
        flm_free(dst);
    }
    for (size_t i = 0; i < n; i++)
        flm_free((void *)ins[i]);
    flm_free(ins);
    return rc;
}

static void on_quarantine(void *user, const char *key, const char *path, const char *stage,
                          const char *error)
{
    json_t *arr = user;
    if (arr) {
        json_array_append_new(arr, json_pack("{s:o,s:o,s:o,s:o}", "key", json_text(key), "path",
                                             json_text(path), "stage", json_text(stage), "error",
                                             json_text(error)));
        return;
    }
    const char *f[4] = {key, path, stage, error};
    for (int i = 0; i < 4; i++) {
        if (i)
            putchar('\t');
        put_escaped(stdout, f[i] ? f[i] : "-");
    }
    putchar('\n');
}

static int quarantine(int argc, char **argv)
{
    const char *ds = NULL;
    int json = 0, prc = dataset_and_json(
                      "index quarantine",
                      "usage: flm index quarantine DATASET [--json]\n"
                      "\n"
                      "Inputs that failed: key, path, stage, reason (tab-separated, control\n"
                      "characters escaped).\n",
                      argc, argv, &ds, &json);
    if (prc != CLI_PARSED)
        return prc;
    flm_index *idx = open_ro(ds);
    if (!idx)
        return 1;
    flm_error err = {0};
    json_t *arr = json ? json_array() : NULL;
    int rc = flm_index_list_quarantine(idx, on_quarantine, arr, &err);
    if (rc < 0) {
        cli_error("%s", err.msg);
    } else if (arr) {
        cli_json_print(stdout, arr);
    }
    json_decref(arr);
    flm_index_close(&idx);
    return rc < 0;
}

static int locate(int argc, char **argv)
{
    const char *args[2];
    int prc = parse_sub("index locate",
                        "usage: flm index locate DATASET KEY\n"
                        "\n"
                        "Which shard and record hold sample KEY.\n",
                        NULL, argc, argv, args, 2, "expected DATASET and one KEY");
    if (prc != CLI_PARSED)
        return prc;
    flm_index *idx = open_ro(args[0]);
    if (!idx)
        return 1;
    flm_error err = {0};
    char *path = NULL;
    uint64_t rec;
    int rc = flm_index_locate(idx, args[1], &path, &rec, &err);
    if (rc < 0)
        cli_error("%s", err.msg);
    else
        printf("%s:%llu\n", path, (unsigned long long)rec);
    flm_free(path);
    flm_index_close(&idx);
    return rc < 0;
}

typedef struct query_out {
    int json, rows;
    json_t *arr;
} query_out;

static void on_query_row(void *user, int n, const char *const *names, const char *const *vals)
{
    query_out *q = user;
    if (q->json) {
        json_t *o = json_object();
        for (int i = 0; i < n; i++)
            json_object_set_new(o, names[i], vals[i] ? json_string(vals[i]) : json_null());
        json_array_append_new(q->arr, o);
    } else {
        for (int i = 0; !q->rows && i < n; i++)
            printf("%s%s", i ? "\t" : "", names[i]);
        if (!q->rows)
            putchar('\n');
        for (int i = 0; i < n; i++)
            printf("%s%s", i ? "\t" : "", vals[i] ? vals[i] : "NULL");
        putchar('\n');
    }
    q->rows++;
}

/* One row's value as JSON, typed by SQLite's storage class: INTEGER a number, REAL a number
 * printed shortest-round-trip by cli_json_print, NULL null, TEXT a string (invalid UTF-8
 * replaced), BLOB a string of hex digits. */
static json_t *typed_value(sqlite3_stmt *st, int c)
{
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER:
        return json_integer((json_int_t)sqlite3_column_int64(st, c));
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, c);
        return isfinite(d) ? json_real(d) : json_null();
    }
    case SQLITE_NULL:
        return json_null();
    case SQLITE_BLOB: {
        const unsigned char *b = sqlite3_column_blob(st, c);
        int n = sqlite3_column_bytes(st, c);
        char *hex = flm_malloc((size_t)n * 2 + 1);
        if (!hex)
            return json_null();
        for (int i = 0; i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", b[i]);
        hex[2 * n] = 0;
        json_t *j = json_string(hex);
        flm_free(hex);
        return j;
    }
    default: {
        const char *t = (const char *)sqlite3_column_text(st, c);
        return json_text(t);
    }
    }
}

/* The same value as text: NULL as "NULL", reals shortest-round-trip. */
static void print_value(sqlite3_stmt *st, int c)
{
    char num[40];
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_NULL:
        fputs("NULL", stdout);
        break;
    case SQLITE_FLOAT:
        flm_json_fmt_double(num, sizeof num, sqlite3_column_double(st, c));
        fputs(num, stdout);
        break;
    default: {
        const char *t = (const char *)sqlite3_column_text(st, c);
        fputs(t ? t : "", stdout);
    }
    }
}

/* flm index query runs on its own read-only SQLite connection to the index the library opened
 * (and checked): the library's row callback gives text only, and scripts need the column types. */
static int query(int argc, char **argv)
{
    int json = 0;
    const char *args[2];
    const cli_option opts[] = {CLI_FLAG("--json", "print the rows as JSON", &json), {0}};
    int prc = parse_sub("index query",
                        "usage: flm index query DATASET SQL [--json]\n"
                        "\n"
                        "Runs one read-only SQL statement on the index (tab-separated with a\n"
                        "header, or JSON rows).\n",
                        opts, argc, argv, args, 2, "expected DATASET and one SQL statement");
    if (prc != CLI_PARSED)
        return prc;
    const char *ds = args[0], *sql = args[1];
    flm_index *idx = open_ro(ds);
    if (!idx)
        return 1;
    const char *path = flm_index_path(idx);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = 1, step = SQLITE_DONE;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        cli_error("index %s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        goto out;
    }
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK) {
        cli_error("index %s: query: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';'))
        tail++;
    if (!st || !sqlite3_stmt_readonly(st) || (tail && *tail)) {
        cli_error("index %s: only one read-only statement (SELECT ...) is allowed", path);
        goto out;
    }
    int n = sqlite3_column_count(st);
    json_t *arr = json ? json_array() : NULL;
    for (int c = 0; !json && c < n; c++)
        printf("%s%s", c ? "\t" : "", sqlite3_column_name(st, c));
    if (!json)
        putchar('\n');
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (json) {
            json_t *o = json_object();
            for (int c = 0; c < n; c++)
                json_object_set_new(o, sqlite3_column_name(st, c), typed_value(st, c));
            json_array_append_new(arr, o);
            continue;
        }
        for (int c = 0; c < n; c++) {
            if (c)
                putchar('\t');
            print_value(st, c);
        }
        putchar('\n');
    }
    if (step != SQLITE_DONE) {
        cli_error("index %s: query: %s", path, sqlite3_errmsg(db));
    } else {
        if (json)
            cli_json_print(stdout, arr);
        rc = 0;
    }
    json_decref(arr);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    flm_index_close(&idx);
    return rc;
}

/* Writes timeline pages of the first n samples (index order) into dir as <i>.html; with a codec
 * (may be NULL), each page carries its two sides decoded: waveforms, spectrograms, players. */
static int write_pages(flm_index *idx, const char *dir, int n, flm_mimi *codec, flm_error *err)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return flm_error_set(err, FLM_EIO, "%s: cannot create: %s", dir, strerror(errno));
    flm_profiles p;
    flm_profiles_default(&p);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT sample_key FROM samples ORDER BY id LIMIT %d", n);
    query_out q = {1, 0, json_array()};
    int rc = flm_index_query(idx, sql, on_query_row, &q, err);
    size_t i;
    json_t *row;
    json_array_foreach(q.arr, i, row)
    {
        const char *key = json_string_value(json_object_get(row, "sample_key"));
        char *shard = NULL, out[4200], source[4200];
        uint64_t rec;
        flm_shard_reader *r = NULL;
        flm_sample *s = NULL;
        if (rc == 0)
            rc = flm_index_locate(idx, key, &shard, &rec, err);
        if (rc == 0)
            rc = flm_shard_reader_open(&r, shard, err);
        if (rc == 0)
            rc = flm_shard_reader_read(r, rec, &s, err);
        if (rc == 0) {
            snprintf(out, sizeof out, "%s/%zu.html", dir, i);
            snprintf(source, sizeof source, "%s, record %llu", shard, (unsigned long long)rec);
            float *l = NULL, *sp = NULL;
            html_audio audio = {NULL, NULL, 0};
            if (codec && (rc = render_sides(codec, s, &l, &sp, &audio.n_samples, err)) == 0)
                audio.listen = l, audio.speak = sp;
            cli_out o;
            FILE *f = rc == 0 ? cli_out_open(&o, out) : NULL;
            if (rc == 0 &&
                cli_out_close(&o, f && html_timeline(f, s, &p, source, NULL, &audio) == 0) < 0)
                rc = flm_error_set(err, FLM_EIO, "%s: cannot write: %s", out, strerror(errno));
            flm_free(l), flm_free(sp);
        }
        flm_sample_destroy(&s);
        flm_shard_reader_close(&r);
        free(shard);
    }
    json_decref(q.arr);
    return rc;
}

static int report(int argc, char **argv)
{
    const char *ds = NULL, *out = NULL, *pages_text = NULL, *codec_path = NULL;
    int64_t pages = 50;
    const cli_option opts[] = {
        CLI_OPT("--html", "OUT", "the report page to write", &out),
        CLI_OPT("--pages", "N", "sample pages, 0..1000 (default 50; in OUT_pages/)", &pages_text),
        CLI_OPT_CODEC(&codec_path, "Mimi checkpoint: the sample pages carry both sides decoded\n"
                                   "(waveforms, spectrograms, Opus players)"),
        {0}};
    int prc = parse_sub("index report",
                        "usage: flm index report DATASET --html OUT [--pages N] [--codec MIMI]\n"
                        "\n"
                        "An HTML report: hours by corpus/language/style/stage, histograms,\n"
                        "events, metadata, quarantine, and a sample browser linking to the\n"
                        "timelines of the first N samples.\n",
                        opts, argc, argv, &ds, 1, "missing DATASET");
    if (prc != CLI_PARSED ||
        (prc = cli_i64("index report", "--pages", pages_text, 0, 1000, &pages)))
        return prc;
    if (!out)
        return cli_usage("index report", "missing -o OUT.html");
    flm_index *idx = open_ro(ds);
    if (!idx)
        return 1;
    flm_error err = {0};
    char pages_dir[4200], pages_rel[4200];
    size_t ol = strlen(out);
    snprintf(pages_dir, sizeof pages_dir, "%.*s_pages",
             (int)(ol > 5 && !strcmp(out + ol - 5, ".html") ? ol - 5 : ol), out);
    const char *slash = strrchr(pages_dir, '/');
    snprintf(pages_rel, sizeof pages_rel, "%s", slash ? slash + 1 : pages_dir);
    int64_t n_samples = flm_index_count_samples(idx, &err); /* pages = the first samples */
    flm_mimi *codec = NULL;
    int rc = codec_path && pages > 0 ? flm_mimi_load(&codec, codec_path, NULL, &err) : 0;
    if (rc == 0 && pages > 0)
        rc = write_pages(idx, pages_dir, (int)pages, codec, &err);
    flm_mimi_destroy(&codec);
    cli_out o;
    FILE *f = rc == 0 ? cli_out_open(&o, out) : NULL;
    if (rc == 0 && !f)
        rc = flm_error_set(&err, FLM_EIO, "%s: cannot create: %s", out, strerror(errno));
    if (rc == 0)
        rc = html_report(f, idx, pages > 0 ? pages_rel : NULL, (int)pages, &err);
    if (f && cli_out_close(&o, rc == 0) < 0 && rc == 0)
        rc = flm_error_set(&err, FLM_EIO, "%s: write failed: %s", out, strerror(errno));
    if (rc < 0)
        cli_error("index report: %s", err.msg);
    else
        printf("wrote %s (and %lld sample pages in %s)\n", out,
               (long long)(n_samples < pages ? n_samples : pages), pages_dir);
    flm_index_close(&idx);
    return rc < 0;
}

int cmd_index(int argc, char **argv)
{
    static const cli_subcommand subs[] = {
        {"stats", stats},           {"check", check},   {"merge", merge},
        {"quarantine", quarantine}, {"locate", locate}, {"migrate", migrate},
        {"query", query},           {"report", report}, {NULL, NULL}};
    return cli_dispatch("index", usage, subs, argc, argv);
}
