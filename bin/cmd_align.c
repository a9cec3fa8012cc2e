/* flm align: transcripts (whisper, funasr, srt, vtt, moshi, jsonl) and manifests (nemo, lhotse,
 * moshi-ft, hf-audiofolder; gzip or not) -> sentence JSONL. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "flm_align.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_index.h"
#include "flm_lock.h"
#include "flm_profile.h"
#include "flm_tokenizer.h"
#include "flm_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: flm align [--from FORMAT] TRANSCRIPT... -o OUT.jsonl [options]\n"
            "\n"
            "Imports transcripts, splits them into English/Chinese sentences, refines the split\n"
            "times to pauses of the decoded audio and writes one JSON line per utterance\n"
            "(schemas/sentences.schema.json; the input of flm pack). Every rejected item is\n"
            "written to the rejects report with file, line and reason; the job goes on.\n"
            "\n"
            "Frames: [start_frame, end_frame) are the 80 ms frames that overlap [start, end)\n"
            "(docs/align.md).\n"
            "\n"
            "Exit status: 0 done; 1 error, or nothing produced (every input rejected: OUT is\n"
            "removed, the rejects report says why); 2 usage; 3 done (OUT and the report are\n"
            "written), but more than --max-bad of the inputs were rejected.\n");
}

/* Exit status of a job that finished with more than --max-bad of its inputs rejected. */
#define ALIGN_EXIT_TOO_MANY_BAD 3

typedef struct job {
    const char *from_name, *out_path, *audio, *audio_ext, *rejects_path, *index_path;
    char *out_dir; /* directory of out_path (NULL for stdout) */
    const char *tok_path, *language, *corpus, *speaker, *text_column;
    int format, refine, json;
    int last_detected; /* --from auto: the format said last on stderr */
    /* lhotse: a recordings manifest among the inputs, for the supervisions ones */
    const char *rec_path;
    char *rec_data;
    size_t rec_size;
    double max_bad;
    flm_align_params ap;
    flm_profiles prof;
    flm_tokenizer *tok;
    flm_index *idx;
    flm_dataset_lock *lock; /* of --index's dataset: align writes its quarantine there */
    int64_t run;
    flm_align_idset *ids;
    FILE *out, *rej;
    /* the last decoded file, kept for the next utterance of the same file (moshi speakers,
     * manifest lines cutting one recording) */
    char *cache_path;
    int cache_mode;
    float *cache; /* [cache_n][cache_nch] */
    int64_t cache_n;
    int32_t cache_nch;
    /* summary */
    int64_t n_files, n_utts_in, n_segs_in, n_utts_out, n_sents_out, n_rejects;
    int64_t n_lost; /* files or lines rejected before they gave an utterance */
    char first_reject[700];
    int64_t by_reason[FLM_REJECT_N_REASONS];
    double sec_in, sec_out;
} job;

/* A non-negative number of seconds (NULL: *out unchanged): 0 or 2 (said). */
static int parse_sec(const char *opt, const char *v, double *out)
{
    char *end;
    if (!v)
        return 0;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0) || x > 1e6)
        return cli_usage("align", "%s '%s': expected a non-negative number of seconds", opt, v);
    *out = x;
    return 0;
}

/* Writes the rejects recorded in t since *done to the report and the index. */
static int flush_rejects(job *j, flm_transcript *t, size_t *done)
{
    for (; *done < t->n_rejects; (*done)++) {
        const flm_align_reject *r = &t->rejects[*done];
        json_t *o = json_object();
        json_object_set_new(o, "file", json_string(r->file));
        json_object_set_new(o, "line", json_integer(r->line));
        json_object_set_new(o, "where", json_string(r->where));
        json_object_set_new(o, "id", json_string(r->id));
        json_object_set_new(o, "reason", json_string(flm_align_reason_name(r->reason)));
        json_object_set_new(o, "detail", json_string(r->detail));
        char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!txt || fprintf(j->rej, "%s\n", txt) < 0) {
            free(txt);
            cli_error("%s: cannot write", j->rejects_path);
            return 1;
        }
        free(txt);
        if (!j->n_rejects)
            snprintf(j->first_reject, sizeof j->first_reject, "%s: %s: %s", r->file,
                     flm_align_reason_name(r->reason), r->detail);
        j->n_rejects++;
        j->by_reason[r->reason]++;
        if (j->idx) {
            char key[1024], msg[700];
            snprintf(key, sizeof key, "align:%s:%d:%s:%s", r->file, (int)r->line, r->where, r->id);
            snprintf(msg, sizeof msg, "%s: %s", flm_align_reason_name(r->reason), r->detail);
            flm_error err = {0};
            if (flm_index_quarantine(j->idx, j->run, key, r->file, "align", msg, &err) < 0) {
                cli_error("%s", err.msg);
                return 1;
            }
        }
    }
    return 0;
}

/* Decodes the utterance's audio (its channel) and sets its duration; a failure rejects it.
 * *x is the job's buffer (valid until the next call). */
static int load_audio(job *j, flm_transcript *t, size_t i, float **x, int64_t *n)
{
    flm_utterance *u = &t->utts[i];
    struct stat st;
    *x = NULL;
    *n = 0;
    if (stat(u->audio, &st) != 0)
        return flm_transcript_reject_utterance(t, i, FLM_REJECT_MISSING_AUDIO, "%s: not found",
                                               u->audio);
    if (!j->refine)
        return 0;
    flm_audio_params p = flm_audio_default_params();
    p.sample_rate = j->prof.codec.sample_rate;
    p.mode = u->channel >= 0 ? FLM_AUDIO_PER_CHANNEL : FLM_AUDIO_MONO;
    if (!j->cache_path || strcmp(j->cache_path, u->audio) || j->cache_mode != p.mode) {
        flm_free(j->cache);
        flm_free(j->cache_path);
        j->cache = NULL;
        j->cache_path = NULL;
        flm_error err = {0};
        if (flm_audio_read_file(u->audio, &p, &j->cache, &j->cache_n, &j->cache_nch, &err) < 0)
            return err.code == FLM_ENOMEM
                       ? err.code
                       : flm_transcript_reject_utterance(t, i, FLM_REJECT_BAD_AUDIO, "%s", err.msg);
        if (!(j->cache_path = flm_strdup(u->audio)))
            return FLM_ENOMEM;
        j->cache_mode = p.mode;
    }
    if (u->channel >= j->cache_nch)
        return flm_transcript_reject_utterance(t, i, FLM_REJECT_BAD_CHANNEL,
                                               "channel %d, the audio has %d", (int)u->channel,
                                               (int)j->cache_nch);
    float *mono = j->cache;
    if (j->cache_nch > 1) { /* one channel out of the interleaved samples */
        if (!(mono = flm_malloc((size_t)(j->cache_n ? j->cache_n : 1) * sizeof *mono)))
            return FLM_ENOMEM;
        for (int64_t k = 0; k < j->cache_n; k++)
            mono[k] = j->cache[k * j->cache_nch + u->channel];
    }
    u->duration = (double)j->cache_n / p.sample_rate;
    *x = mono;
    *n = j->cache_n;
    return 0;
}

static int fill_default(char **dst, const char *v)
{
    if ((*dst)[0] || !v)
        return 0;
    char *c = flm_strdup(v);
    if (!c)
        return FLM_ENOMEM;
    flm_free(*dst);
    *dst = c;
    return 0;
}

static int process_utterance(job *j, flm_transcript *t, size_t i)
{
    flm_utterance *u = &t->utts[i];
    flm_error err = {0};
    j->n_utts_in++;
    j->n_segs_in += (int64_t)u->n_segs;
    for (size_t k = 0; k < u->n_segs; k++)
        if (isfinite(u->segs[k].end) && u->segs[k].end > u->segs[k].start)
            j->sec_in += u->segs[k].end - u->segs[k].start;
    if (fill_default(&u->language, j->language) || fill_default(&u->corpus, j->corpus) ||
        fill_default(&u->speaker, j->speaker))
        return FLM_ENOMEM;
    int dup = flm_align_idset_add(j->ids, u->id);
    if (dup < 0)
        return dup;
    if (dup)
        return flm_transcript_reject_utterance(t, i, FLM_REJECT_DUPLICATE_ID,
                                               "id '%s' was seen before", u->id);
    float *x = NULL;
    int64_t n = 0;
    int rc = load_audio(j, t, i, &x, &n);
    if (!rc)
        rc = flm_transcript_validate(t, i, &j->ap, j->tok);
    if (!rc && !u->rejected && (rc = flm_utterance_split(u, &j->ap, j->tok, &err)) < 0)
        cli_error("%s", err.msg);
    if (!rc && !u->rejected && x &&
        (rc = flm_utterance_refine(u, x, n, j->prof.codec.sample_rate, &j->ap, &err)) < 0)
        cli_error("%s", err.msg);
    if (x != j->cache)
        flm_free(x);
    if (!rc)
        rc = flm_utterance_finish(t, i, &j->ap, &j->prof.codec, j->tok);
    if (rc || u->rejected)
        return rc;
    /* the audio path as seen from the output's directory, so the output can be read from
     * anywhere (flm pack resolves relative paths against the manifest's directory) */
    char *line = NULL, *given = u->audio,
         *rel = j->out_dir ? flm_path_relative(given, j->out_dir) : NULL;
    if (rel)
        u->audio = rel;
    rc = flm_utterance_to_json(u, &line, &err);
    u->audio = given;
    flm_free(rel);
    if (rc < 0) {
        cli_error("%s", err.msg);
        return rc;
    }
    if (fprintf(j->out, "%s\n", line) < 0) {
        flm_free(line);
        cli_error("%s: cannot write", j->out_path);
        return FLM_EIO;
    }
    flm_free(line);
    j->n_utts_out++;
    j->n_sents_out += (int64_t)u->n_sents;
    for (size_t k = 0; k < u->n_sents; k++)
        j->sec_out += u->sents[k].end - u->sents[k].start;
    return 0;
}

/* A folder given as input: a Hugging Face audiofolder's metadata file inside it. */
static const char *folder_metadata(const char *path, char *buf, size_t n)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return path;
    static const char *const names[] = {"metadata.jsonl", "metadata.csv", "metadata.jsonl.gz",
                                        "metadata.csv.gz"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        snprintf(buf, n, "%s/%s", path, names[k]);
        if (stat(buf, &st) == 0)
            return buf;
    }
    return path; /* reading it fails, naming the folder */
}

static int is_manifest(int format)
{
    return format == FLM_ALIGN_JSONL || format == FLM_ALIGN_NEMO || format == FLM_ALIGN_LHOTSE ||
           format == FLM_ALIGN_MOSHI_FT || format == FLM_ALIGN_HF;
}

static int process_file(job *j, const char *path)
{
    flm_transcript t = {0};
    flm_error err = {0};
    char *data = NULL;
    size_t size = 0, done = 0;
    int rc = 0;
    char audio_buf[4096], meta_buf[4096];
    const char *audio = j->audio;
    path = folder_metadata(path, meta_buf, sizeof meta_buf);
    j->n_files++;
    rc = flm_align_read_input(path, (size_t)1 << 30, &data, &size, &err);
    int format = j->format, kind = 0;
    if (!rc && (format == 0 || format == FLM_ALIGN_LHOTSE)) {
        int f = flm_align_detect_format(data, size, &kind);
        if (format == 0 && !f) {
            rc = flm_error_set(&err, FLM_EFORMAT,
                               "%s: --from auto: the format is not recognized from the content "
                               "(give --from)",
                               path);
        } else if (format == 0) {
            format = f;
            if (f != j->last_detected)
                cli_note("align: --from auto: %s is %s%s", path, flm_align_format_name(f),
                         kind == 'c'   ? " (cuts)"
                         : kind == 'r' ? " (recordings)"
                         : kind == 's' ? " (supervisions)"
                                       : "");
            j->last_detected = f;
        }
        if (format == FLM_ALIGN_LHOTSE && kind == 'r' && j->rec_path &&
            !strcmp(j->rec_path, path)) { /* the recordings of the pair: read with the other */
            flm_free(data);
            j->n_files--;
            return 0;
        }
    }
    if (!audio && !is_manifest(format)) {
        snprintf(audio_buf, sizeof audio_buf, "%s", path);
        char *dot = strrchr(audio_buf, '.'), *slash = strrchr(audio_buf, '/');
        if (dot && (!slash || dot > slash))
            *dot = 0;
        size_t l = strlen(audio_buf);
        snprintf(audio_buf + l, sizeof audio_buf - l, ".%s", j->audio_ext);
        audio = audio_buf;
    }
    if (!rc) {
        flm_align_import_opts o = {.audio = audio,
                                   .text_column = j->text_column,
                                   .recordings_path = j->rec_path,
                                   .recordings_data = j->rec_data,
                                   .recordings_size = j->rec_size};
        rc = flm_transcript_import_opts(&t, format, path, data, size, &o, &err);
    }
    flm_free(data);
    if (rc == FLM_ENOMEM) {
        cli_error("%s", err.msg);
        flm_transcript_free(&t);
        return 1;
    }
    if (rc) { /* the whole file is unusable: one reject, the job goes on */
        flm_transcript_free(&t);
        int line = 0;
        const char *l = strstr(err.msg, ": line ");
        if (l)
            line = atoi(l + 7);
        rc = flm_transcript_reject(&t, path, line, "", "", FLM_REJECT_PARSE, "%s", err.msg);
    }
    if (rc == 0 && t.n_utts == 0 && t.n_rejects == 0) /* an empty FunASR array, moshi alignments */
        rc = flm_transcript_reject(&t, path, 0, "", "", FLM_REJECT_NO_SENTENCES,
                                   "no utterance in the file");
    /* rejects of the import that name no utterance: a file or line lost before it gave one */
    for (size_t k = 0; k < t.n_rejects && rc == 0; k++) {
        int named = 0;
        for (size_t i = 0; i < t.n_utts && !named; i++)
            named = t.rejects[k].id[0] && !strcmp(t.rejects[k].id, t.utts[i].id);
        j->n_lost += !named;
    }
    for (size_t i = 0; i < t.n_utts && rc == 0; i++)
        rc = process_utterance(j, &t, i);
    if (rc == FLM_ENOMEM)
        cli_error("%s: out of memory", path);
    int frc = rc == 0 || rc == FLM_EIO ? flush_rejects(j, &t, &done) : 0;
    flm_transcript_free(&t);
    return rc || frc ? 1 : 0;
}

static int setup(job *j)
{
    flm_error err = {0};
    if (j->tok_path) {
        flm_tokenizer_params tp = flm_tokenizer_default_params();
        tp.lossy_utf8 = 1;
        if (flm_tokenizer_load(&j->tok, j->tok_path, &tp, &err) < 0) {
            cli_error("%s", err.msg);
            return 1;
        }
    }
    if (j->index_path) {
        char *ip = flm_index_resolve_path(j->index_path), *slash = ip ? strrchr(ip, '/') : NULL;
        if (slash)
            *slash = 0;
        int lrc = ip ? flm_dataset_lock_acquire(&j->lock, slash ? (ip[0] ? ip : "/") : ".",
                                                "flm align", FLM_LOCK_EXCLUSIVE, &err)
                     : flm_error_set(&err, FLM_ENOMEM, "out of memory");
        flm_free(ip);
        if (lrc < 0 || flm_index_open(&j->idx, j->index_path, FLM_INDEX_CREATE, &err) < 0 ||
            flm_index_begin_run(j->idx, "flm align", NULL, 0, &j->prof, &j->run, &err) < 0) {
            cli_error("%s", err.msg);
            return 1;
        }
    }
    if (flm_align_idset_create(&j->ids, &err) < 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    j->out = strcmp(j->out_path, "-") ? fopen(j->out_path, "w") : stdout;
    if (j->out && j->out != stdout) {
        char *copy = flm_strdup(j->out_path);
        j->out_dir = copy ? flm_strdup(dirname(copy)) : NULL;
        flm_free(copy);
    }
    if (!j->out) {
        cli_error("%s: cannot create", j->out_path);
        return 1;
    }
    j->rej = fopen(j->rejects_path, "w");
    if (!j->rej) {
        cli_error("%s: cannot create", j->rejects_path);
        return 1;
    }
    return 0;
}

/* Inputs: every utterance, and every file or line that gave none; bad: those rejected. */
static int64_t n_inputs(const job *j)
{
    return j->n_utts_in + j->n_lost;
}

static int64_t n_bad(const job *j)
{
    return n_inputs(j) - j->n_utts_out;
}

static int too_many_bad(const job *j)
{
    return n_inputs(j) > 0 && (double)n_bad(j) > j->max_bad * (double)n_inputs(j);
}

static void summary_json(const job *j, FILE *f, int status)
{
    json_t *o = json_object(), *by = json_object();
    if (!o || !by) {
        json_decref(o);
        json_decref(by);
        cli_error("align: out of memory");
        return;
    }
    json_object_set_new(o, "files", json_integer(j->n_files));
    json_object_set_new(o, "utterances_in", json_integer(j->n_utts_in));
    json_object_set_new(o, "segments_in", json_integer(j->n_segs_in));
    json_object_set_new(o, "utterances_out", json_integer(j->n_utts_out));
    json_object_set_new(o, "sentences_out", json_integer(j->n_sents_out));
    json_object_set_new(o, "hours_in", json_real(j->sec_in / 3600));
    json_object_set_new(o, "hours_kept", json_real(j->sec_out / 3600));
    json_object_set_new(o, "rejected", json_integer(j->n_rejects));
    for (int r = 1; r < FLM_REJECT_N_REASONS; r++)
        if (j->by_reason[r])
            json_object_set_new(by, flm_align_reason_name(r), json_integer(j->by_reason[r]));
    json_object_set_new(o, "rejected_by_reason", by);
    json_object_set_new(o, "rejects_report", json_string(j->rejects_path));
    json_object_set_new(o, "index_quarantine", json_boolean(j->idx != NULL));
    json_object_set_new(o, "inputs", json_integer(n_inputs(j)));
    json_object_set_new(o, "inputs_rejected", json_integer(n_bad(j)));
    json_object_set_new(o, "max_bad", json_real(j->max_bad));
    json_object_set_new(o, "too_many_bad", json_boolean(too_many_bad(j)));
    json_object_set_new(o, "exit_status", json_integer(status));
    cli_json_print(f, o); /* numbers as numbers, floats shortest round-trip */
    json_decref(o);
}

static void summary(const job *j, FILE *f, int status)
{
    if (j->json) {
        summary_json(j, f, status);
        return;
    }
    fprintf(f,
            "flm align: %lld files, %lld utterances (%lld segments) in, %lld utterances "
            "(%lld sentences) out\n",
            (long long)j->n_files, (long long)j->n_utts_in, (long long)j->n_segs_in,
            (long long)j->n_utts_out, (long long)j->n_sents_out);
    fprintf(f, "  hours: %.4f in segments, %.4f kept in sentences\n", j->sec_in / 3600,
            j->sec_out / 3600);
    fprintf(f, "  rejected: %lld (report: %s%s)\n", (long long)j->n_rejects, j->rejects_path,
            j->idx ? ", and the index's quarantine" : "");
    for (int r = 1; r < FLM_REJECT_N_REASONS; r++)
        if (j->by_reason[r])
            fprintf(f, "    %-14s %lld\n", flm_align_reason_name(r), (long long)j->by_reason[r]);
    if (status == ALIGN_EXIT_TOO_MANY_BAD)
        fprintf(f,
                "  TOO MANY FAILURES: %lld of %lld inputs (%.1f%%) rejected, more than --max-bad "
                "%g allows (exit status %d)\n",
                (long long)n_bad(j), (long long)n_inputs(j),
                100.0 * (double)n_bad(j) / (double)n_inputs(j), j->max_bad,
                ALIGN_EXIT_TOO_MANY_BAD);
}

/* Lhotse recordings + supervisions given as two inputs: the recordings manifest is kept for the
 * supervisions (one pair per run). 0, or 1 (an error, said). */
static int find_recordings(job *j, const char **files, int n_files)
{
    if (n_files < 2)
        return 0;
    for (int i = 0; i < n_files; i++) {
        char *data = NULL, meta[4096];
        size_t size = 0;
        flm_error err = {0};
        const char *path = folder_metadata(files[i], meta, sizeof meta);
        if (flm_align_read_input(path, (size_t)1 << 30, &data, &size, &err) < 0)
            continue; /* said when the file is processed */
        int kind = 0;
        if (flm_align_detect_format(data, size, &kind) == FLM_ALIGN_LHOTSE && kind == 'r') {
            if (j->rec_path) {
                flm_free(data);
                cli_error("align: two Lhotse recordings manifests (%s, %s): give one "
                          "supervisions + recordings pair per run",
                          j->rec_path, path);
                return 2;
            }
            j->rec_path = files[i];
            j->rec_data = data;
            j->rec_size = size;
            continue;
        }
        flm_free(data);
    }
    return 0;
}

/* The command line into j and files: CLI_PARSED, 0 (help) or 2 (said). */
static int parse_args(int argc, char **argv, job *j, const char **files, int *n_files)
{
    const char *max_bad = NULL, *max_dur = NULL, *max_tok = NULL, *margin = NULL, *window = NULL;
    int no_refine = 0;
    const cli_option opts[] = {
        CLI_OPT("--from", "F",
                "auto (default: from each file's content, said on stderr) |\n"
                "whisper | funasr | srt | vtt | moshi | jsonl | nemo |\n"
                "lhotse | moshi-ft | hf-audiofolder (a folder or its\n"
                "metadata.csv/.jsonl); any input may be gzip-compressed",
                &j->from_name),
        CLI_OPT("--text-column", "C",
                "hf-audiofolder: the transcription column (default: the\n"
                "first of transcription, text, sentence)",
                &j->text_column),
        CLI_OPT("-o", "OUT", "output JSONL ('-' for stdout)", &j->out_path),
        CLI_OPT("--audio", "FILE",
                "audio of the (single) transcript; default: the transcript's\n"
                "name with the extension of --audio-ext (jsonl lines name theirs)",
                &j->audio),
        CLI_OPT("--audio-ext", "EXT", "default wav", &j->audio_ext),
        CLI_OPT("--rejects", "FILE", "rejects report (JSONL); default OUT with .rejects.jsonl",
                &j->rejects_path),
        CLI_OPT("--index", "DATASET", "also record each reject in the dataset index's quarantine",
                &j->index_path),
        CLI_OPT("--tokenizer", "FILE", "tokenizer.json for token counts (default: an estimate)",
                &j->tok_path),
        CLI_OPT("--language", "CODE",
                "language when the input gives none (default: from the script)", &j->language),
        CLI_OPT("--corpus", "NAME", "corpus when the input gives none", &j->corpus),
        CLI_OPT("--speaker", "NAME", "speaker when the input gives none", &j->speaker),
        CLI_FLAG("--no-refine", "do not decode the audio: no refinement, no duration checks",
                 &no_refine),
        CLI_OPT("--max-duration", "S", "split longer sentences at clause punctuation (default 20)",
                &max_dur),
        CLI_OPT("--max-tokens", "N", "same for the token count (default 200)", &max_tok),
        CLI_OPT("--margin", "S", "silence kept around each sentence (default 0.04)", &margin),
        CLI_OPT("--window", "S", "how far a split may move from its estimate (default 1.5)",
                &window),
        CLI_OPT("--max-bad", "F",
                "exit with status 3 when more than this share of the inputs\n"
                "(utterances, and files or lines that gave none) was rejected\n"
                "(default 0.01; 1 never)",
                &max_bad),
        CLI_FLAG("--json", "print the summary as one JSON object", &j->json),
        {0}};
    const cli_option *const tables[] = {opts, NULL};
    const cli_command c = {"align", usage, tables, argc, NULL};
    int64_t tokens = j->ap.max_tokens;
    int rc = cli_parse(&c, argc, argv, files, n_files);
    if (rc != CLI_PARSED || (rc = cli_fraction("align", "--max-bad", max_bad, &j->max_bad)) ||
        (rc = parse_sec("--max-duration", max_dur, &j->ap.max_duration)) ||
        (rc = cli_i64("align", "--max-tokens", max_tok, 1, 1 << 20, &tokens)) ||
        (rc = parse_sec("--margin", margin, &j->ap.margin)) ||
        (rc = parse_sec("--window", window, &j->ap.search_window)))
        return rc;
    j->ap.max_tokens = (int32_t)tokens;
    j->refine = !no_refine;
    if (j->from_name && strcmp(j->from_name, "auto") &&
        !(j->format = flm_align_format_from_name(j->from_name)))
        return cli_usage("align",
                         "--from '%s': expected auto, whisper, funasr, srt, vtt, moshi, jsonl, "
                         "nemo, lhotse, moshi-ft or hf-audiofolder",
                         j->from_name);
    if (!j->out_path || *n_files == 0)
        return cli_usage("align", "%s", !j->out_path ? "missing -o OUT" : "no transcript given");
    if (j->audio && *n_files > 1)
        return cli_usage("align", "--audio names the audio of one transcript, %d were given",
                         *n_files);
    return CLI_PARSED;
}

int cmd_align(int argc, char **argv)
{
    job j = {.audio_ext = "wav", .refine = 1, .max_bad = 0.01};
    j.ap = flm_align_default_params();
    flm_profiles_default(&j.prof);
    const char **files = calloc((size_t)argc, sizeof *files);
    int n_files = 0, bad = 0, rc = 1;
    char rej_buf[4096];
    if (!files)
        return 1;
    if ((rc = parse_args(argc, argv, &j, files, &n_files)) != CLI_PARSED) {
        free(files);
        return rc;
    }
    rc = 1;
    if (!j.rejects_path) {
        const char *o = strcmp(j.out_path, "-") ? j.out_path : "align";
        snprintf(rej_buf, sizeof rej_buf, "%s", o);
        size_t l = strlen(rej_buf);
        if (l > 6 && !strcmp(rej_buf + l - 6, ".jsonl"))
            rej_buf[l - 6] = 0;
        l = strlen(rej_buf);
        snprintf(rej_buf + l, sizeof rej_buf - l, ".rejects.jsonl");
        j.rejects_path = rej_buf;
    }
    if (!bad && (j.format == 0 || j.format == FLM_ALIGN_LHOTSE))
        bad = find_recordings(&j, files, n_files);
    if (bad) {
        free(files);
        flm_free(j.rec_data);
        return bad;
    }
    if (setup(&j) == 0) {
        cli_progress p;
        cli_progress_start(&p, "align", "files", n_files);
        rc = 0;
        for (int i = 0; i < n_files && !rc; i++) {
            rc = process_file(&j, files[i]);
            cli_progress_update(&p, i + 1);
        }
        cli_progress_finish(&p, n_files);
        if (j.out != stdout && j.out && fclose(j.out) != 0) {
            cli_error("%s: cannot write", j.out_path);
            rc = 1;
        }
        j.out = NULL;
        if (!rc && j.n_utts_out == 0) { /* nothing to hand on: an error, not a success */
            rc = 1;
            if (strcmp(j.out_path, "-"))
                unlink(j.out_path); /* only ever empty: no output is left by a failed run */
            summary(&j, strcmp(j.out_path, "-") ? stdout : stderr, rc);
            if (j.n_rejects)
                cli_error("align: nothing produced: every input was rejected (%lld in %s; the "
                          "first: %s)",
                          (long long)j.n_rejects, j.rejects_path, j.first_reject);
            else
                cli_error("align: nothing produced: no utterance in the input");
        } else if (!rc) {
            rc = too_many_bad(&j) ? ALIGN_EXIT_TOO_MANY_BAD : 0;
            summary(&j, strcmp(j.out_path, "-") ? stdout : stderr, rc);
        }
    }
    if (j.out && j.out != stdout)
        fclose(j.out);
    if (j.rej && fclose(j.rej) != 0 && (!rc || rc == ALIGN_EXIT_TOO_MANY_BAD)) {
        cli_error("%s: cannot write", j.rejects_path);
        rc = 1;
    }
    flm_tokenizer_destroy(&j.tok);
    flm_index_close(&j.idx);
    flm_dataset_lock_release(&j.lock);
    flm_align_idset_destroy(&j.ids);
    flm_free(j.cache);
    flm_free(j.cache_path);
    flm_free(j.out_dir);
    flm_free(j.rec_data);
    free(files);
    return rc;
}
