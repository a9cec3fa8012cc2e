/* The flm pack job: manifests -> groups, resume, ranks, quarantine, retries, shards (see pack.h).
 */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "codes.h"
#include "flm_alloc.h"
#include "flm_dataset_writer.h"
#include "flm_safetensors.h"
#include "flm_pack.h"
#include "flm_pack_input.h"
#include "flm_util.h"
#include "pack.h"

const char *const pack_stages[] = {"parse",    "audio", "codes",  "frames",
                                   "tokenize", "pack",  "augment"};

/* Records a bad input in the index (key, its manifest, the stage, the reason); the job goes on. */
static int quarantine(job *J, const char *key, const char *path, int stage, const char *msg)
{
    flm_error err = {0};
    J->quarantined++;
    J->q_by_stage[stage]++;
    if (flm_index_quarantine(J->idx, J->run, key, path, pack_stages[stage], msg, &err) < 0) {
        cli_error("pack: %s", err.msg);
        return -1;
    }
    return 0;
}

/* ---- the codec (loaded only when needed) ------------------------------------------------ */

int pack_load_codec(job *J, flm_error *err)
{
    if (J->mimi)
        return 0;
    flm_mimi_params mp = flm_mimi_default_params();
    mp.n_q = FLM_N_CODEBOOKS;
    int rc;
    if (J->codec_path) {
        rc = flm_mimi_load(&J->mimi, J->codec_path, &mp, err);
    } else {
        if (J->rank == 0)
            cli_error("pack: WARNING: no --codec given: encoding with a RANDOM Mimi (seed %llu).\n"
                      "flm: pack: WARNING: these codes are not speech tokens; use them to test\n"
                      "flm: pack: WARNING: the pipeline only. Real data needs --codec "
                      "MIMI.safetensors.",
                      (unsigned long long)J->recipe.seed);
        flm_mimi_config cfg;
        uint8_t *buf = NULL;
        size_t size = 0;
        flm_safetensors *st = NULL;
        rc = flm_mimi_config_preset("full", &cfg, err);
        if (rc == 0)
            rc = flm_mimi_random_checkpoint(&cfg, J->recipe.seed, &buf, &size, err);
        if (rc == 0)
            rc = flm_safetensors_open_memory(&st, buf, size, "random-mimi", err);
        if (rc == 0)
            rc = flm_mimi_load_from(&J->mimi, st, &mp, err);
        flm_safetensors_close(&st);
        flm_free(buf);
    }
    if (rc == 0)
        rc = flm_mimi_stream_create(&J->stream, J->mimi, FLM_MIMI_ENCODE, CODES_STEP, err);
    return rc;
}

int pack_silence(job *J, flm_error *err)
{
    if (J->have_silence)
        return 0;
    int rc = pack_load_codec(J, err);
    if (rc == 0)
        rc = codes_silence(J->mimi, FLM_N_CODEBOOKS, J->silence, err);
    J->have_silence = rc == 0;
    return rc;
}

/* ---- manifests -> groups ------------------------------------------------------------------ */

/* Sum of "end_frame" minus sum of "start_frame" values in a line, without parsing the JSON
 * (the scan reads every line of a possibly huge manifest; the groups only need this estimate,
 * which like them depends on the bytes alone). Keys inside strings are escaped (\"), so they
 * are not counted. */
static int64_t line_frames(const char *line, size_t len)
{
    int64_t sum = 0;
    for (const char *p = line, *end = line + len; (p = memmem(p, (size_t)(end - p), "_frame\"", 7));
         p += 7) {
        int sign = p - line >= 6 && !memcmp(p - 4, "\"end", 4)     ? 1
                   : p - line >= 6 && !memcmp(p - 6, "\"start", 6) ? -1
                                                                   : 0;
        const char *q = p + 7;
        while (q < end && (*q == ' ' || *q == ':'))
            q++;
        int64_t v = 0;
        while (q < end && *q >= '0' && *q <= '9' && v < INT32_MAX)
            v = v * 10 + (*q++ - '0');
        sum += sign * v;
    }
    return sum > 0 ? sum : 0;
}

/* "DIR/NAME" of a manifest: the last two components of its real path (*real: that path). */
static char *file_name(const char *path, char **real_out)
{
    char *real = realpath(path, NULL), *out = NULL;
    *real_out = flm_strdup(real ? real : path);
    if (!real)
        return flm_strdup(pack_base_name(path));
    char *slash = strrchr(real, '/'), *start = real;
    if (slash && slash > real) {
        *slash = 0;
        char *prev = strrchr(real, '/');
        *slash = '/';
        start = prev ? prev + 1 : real;
    }
    out = flm_strdup(start[0] == '/' ? start + 1 : start);
    free(real);
    return out;
}

void pack_free_names(job *J)
{
    for (int i = 0; J->file_names && i < J->n_manifests; i++)
        flm_free(J->file_names[i]);
    for (int i = 0; J->real_paths && i < J->n_manifests; i++)
        flm_free(J->real_paths[i]);
    flm_free(J->file_names);
    flm_free(J->real_paths);
    free(J->config);
    flm_free(J->manifests);
}

/* Conversations: a line's "audio" (malloc'd; NULL when the line has none or is not JSON). */
static char *line_audio(const char *line, size_t len)
{
    json_t *o = json_loadb(line, len, 0, NULL);
    const char *a = json_string_value(json_object_get(o, "audio"));
    char *out = a ? strdup(a) : NULL;
    json_decref(o);
    return out;
}

static int scan_manifests(job *J, group **out, size_t *n_out)
{
    group *g = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    XXH3_state_t *xs = XXH3_createState();
    int rc = xs ? 0 : -1;
    for (int fi = 0; fi < J->n_manifests && rc == 0; fi++) {
        flm_error oerr = {0};
        int fd = flm_open_regular(J->manifests[fi], 0, &oerr); /* a FIFO would block */
        FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
        if (fd >= 0 && !f)
            close(fd);
        if (f && (!(J->file_names[fi] = file_name(J->manifests[fi], &J->real_paths[fi])) ||
                  !J->real_paths[fi])) {
            fclose(f);
            cli_error("pack: out of memory");
            rc = -1;
            break;
        }
        if (!f) {
            if (fd < 0)
                cli_error("pack: %s", oerr.msg);
            else
                cli_error("pack: %s: %s", J->manifests[fi], strerror(errno));
            rc = -1;
            break;
        }
        int64_t line_no = 0, offset = 0;
        ssize_t len;
        int open_group = 0;
        char *prev_audio = NULL;
        while ((len = getline(&line, &lcap, f)) >= 0) {
            line_no++;
            char *audio = J->conv ? line_audio(line, (size_t)len) : NULL;
            if (open_group && J->conv && g[n].n_lines >= GROUP_DIALOGS &&
                !(audio && prev_audio && !strcmp(audio, prev_audio))) {
                g[n++].hash = XXH3_64bits_digest(xs);
                open_group = 0;
            }
            free(prev_audio);
            prev_audio = audio;
            if (!open_group) {
                if (flm_grow((void **)&g, &cap, n + 1, sizeof *g) < 0) {
                    cli_error("pack: out of memory");
                    rc = -1;
                    break;
                }
                g[n] = (group){fi, line_no, 0, offset, 0, 0, NULL, 0};
                open_group = 1;
                XXH3_64bits_reset(xs);
            }
            XXH3_64bits_update(xs, line, (size_t)len);
            g[n].n_lines++;
            offset += len;
            g[n].frames += J->dialogs ? 1 : line_frames(line, (size_t)len); /* dialogs: lines */
            if (!J->conv &&
                (J->dialogs ? g[n].n_lines >= GROUP_DIALOGS
                            : g[n].frames >= (int64_t)GROUP_SAMPLES * J->recipe.sample_frames)) {
                g[n++].hash = XXH3_64bits_digest(xs);
                open_group = 0;
            }
        }
        if (open_group)
            g[n++].hash = XXH3_64bits_digest(xs);
        free(prev_audio);
        prev_audio = NULL;
        if (ferror(f)) {
            cli_error("pack: %s: read error: %s", J->manifests[fi], strerror(errno));
            rc = -1;
        }
        fclose(f);
    }
    free(line);
    XXH3_freeState(xs);
    *out = g;
    *n_out = n;
    return rc;
}

static void group_key(const job *J, const group *g, char *buf, size_t size)
{
    if (g->retry)
        snprintf(buf, size, "%s", g->retry);
    else
        snprintf(buf, size, "pack:%s:%lld+%lld:%016llx", J->file_names[g->file],
                 (long long)g->first_line, (long long)g->n_lines, (unsigned long long)g->hash);
}

/* ---- samples to the dataset writer (include/flm_dataset_writer.h) ------------------------ */

/* Whether a sample with this id is in the index or in the shard being written. */
static int sample_exists(void *user, const char *id)
{
    job *J = user;
    char *path = NULL;
    uint64_t rec;
    flm_error err = {0};
    int found = flm_index_locate(J->idx, id, &path, &rec, &err) == 0;
    flm_free(path);
    return found || flm_dataset_writer_has(J->dw, id);
}

/* Hands a packed sample (owned from now on) to the dataset writer. */
static int add_sample(job *J, flm_sample *s, flm_error *err)
{
    J->n_out++;
    J->n_tts += !strcmp(s->style, "tts");
    const flm_meta *m = flm_sample_meta_get(s, "pack.speech_frames");
    J->speech_frames += J->dialogs ? s->n_frames : m ? m->i : 0;
    m = flm_sample_meta_get(s, "dialog.interrupts");
    J->n_interrupted += m && m->i > 0;
    return flm_dataset_writer_add(J->dw, s, err);
}

/* What a packer call returned (r, and perr when r < 0), taken: its samples to the dataset writer
 * and its quarantines to the index, in the order they came, its figures to the totals; o is
 * emptied. Taken before the next call, so that sample_exists sees every sample packed before.
 * 0, or -1 (the job stops; message printed). */
static int take_out(job *J, pack_out *o, int r, const flm_error *perr)
{
    flm_error err = {0};
    int rc = 0;
    size_t k = 0;
    for (size_t q = 0; q <= o->n_bad; q++) {
        for (size_t end = q < o->n_bad ? o->bad[q].at : o->n_samples; k < end; k++) {
            flm_sample *s = o->samples[k];
            o->samples[k] = NULL;
            if (rc < 0)
                flm_sample_destroy(&s); /* the job stops */
            else if ((rc = add_sample(J, s, &err)) < 0)
                cli_error("pack: %s", err.msg);
        }
        if (rc == 0 && q < o->n_bad)
            rc = quarantine(J, o->bad[q].key, o->bad[q].path, o->bad[q].stage, o->bad[q].msg);
    }
    J->utts += o->utts;
    J->sentences += o->sentences;
    J->conv_sides += o->conv_sides;
    J->t_decode += o->t_decode, J->t_encode += o->t_encode, J->t_read += o->t_read;
    J->t_tokenize += o->t_tokenize, J->t_pack += o->t_pack, J->t_augment += o->t_augment;
    *o = (pack_out){
        .samples = o->samples, .cap_samples = o->cap_samples, .bad = o->bad, .cap_bad = o->cap_bad};
    if (r < 0)
        cli_error("pack: %s", perr->msg);
    return rc < 0 || r < 0 ? -1 : 0;
}

static int ctx_codec(void *user, flm_mimi **mimi, flm_mimi_stream **stream, flm_error *err)
{
    job *J = user;
    int rc = pack_load_codec(J, err);
    *mimi = J->mimi;
    if (stream)
        *stream = J->stream;
    return rc;
}

/* ---- one group ---------------------------------------------------------------------------- */

static int do_group(job *J, const group *g, const char *key)
{
    const char *file = J->manifests[g->file];
    char *dir_copy = flm_strdup(file);
    const char *dir = dir_copy ? dirname(dir_copy) : ".";
    sentence_group *G = J->dialogs ? NULL : sentence_group_new();
    conversation *C = J->conv ? conversation_new() : NULL;
    const pack_ctx X = {J, &J->tb, ctx_codec, sample_exists, J};
    pack_out out = {0};
    flm_error err = {0};
    int rc = (J->dialogs || G) && (!J->conv || C) ? 0 : -1;
    if (rc < 0)
        cli_error("pack: out of memory");
    int fd = rc == 0 ? flm_open_regular(file, 0, &err) : -1; /* replaced by a FIFO since? */
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (fd >= 0 && !f)
        close(fd);
    if (rc == 0 && fd < 0) {
        cli_error("pack: %s", err.msg);
        rc = -1;
    } else if (rc == 0 && (!f || fseeko(f, g->offset, SEEK_SET) < 0)) {
        cli_error("pack: %s: %s", file, strerror(errno));
        rc = -1;
    }
    char *line = NULL;
    size_t lcap = 0;
    int64_t failed = 0;
    for (int64_t i = 0; i < g->n_lines && rc == 0; i++) {
        ssize_t len = getline(&line, &lcap, f);
        if (len < 0) {
            cli_error("pack: %s: line %lld: the file changed since it was scanned", file,
                      (long long)(g->first_line + i));
            rc = -1;
            break;
        }
        size_t l = (size_t)len;
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            l--;
        if (l == 0)
            continue;
        int64_t line_no = g->first_line + i;
        if (g->retry && line_no < g->retry_line)
            continue;
        if (g->retry && line_no > g->retry_line && !J->conv)
            break;
        if (g->retry && line_no > g->retry_line) { /* the retried conversation's other line? */
            flm_pack_utt u;
            flm_error perr = {0};
            int same = flm_pack_utt_parse(line, l, file, line_no, dir, &u, &perr) == 0 && u.audio &&
                       conversation_audio(C) && !strcmp(u.audio, conversation_audio(C));
            flm_pack_utt_free(&u);
            if (!same)
                break;
        }
        char lkey[600]; /* a line's input key: its bytes' hash keeps same-named files apart */
        snprintf(lkey, sizeof lkey, "pack:%s:%lld:%08llx", pack_base_name(file), (long long)line_no,
                 (unsigned long long)(XXH3_64bits(line, l) >> 32));
        const pack_line L = {file, dir, lkey, line, l, line_no};
        flm_error perr = {0};
        int r = J->conv      ? conversation_line(&X, C, &L, &out, &perr)
                : J->dialogs ? dialog_line(&X, &L, &out, &perr)
                             : sentence_line(&X, G, &L, &out, &perr);
        failed += out.n_bad > 0; /* the line (or the conversation before it) quarantined */
        rc = take_out(J, &out, r, &perr);
    }
    if (rc == 0 && C) { /* the group's last conversation */
        int r = conversation_pack(&X, C, &out, &err);
        failed += out.n_bad > 0;
        rc = take_out(J, &out, r, &err);
    }
    conversation_free(C);
    free(line);
    if (f)
        fclose(f);
    flm_free(dir_copy);
    char base[700];
    if (g->retry)
        snprintf(base, sizeof base, "%s#retry", g->retry + 5);
    else
        snprintf(base, sizeof base, "%s:%lld:%08llx", pack_base_name(file),
                 (long long)g->first_line, (unsigned long long)(g->hash >> 32));
    if (rc == 0 && G && !J->words && (rc = pack_silence(J, &err)) < 0)
        cli_error("pack: codec: %s", err.msg);
    if (rc == 0 && G) { /* its quarantines are of sentences, not lines: no retry fails */
        int r = sentence_group_pack(&X, G, file, base, &out, &err);
        rc = take_out(J, &out, r, &err);
    }
    if (rc == 0 && !(g->retry && failed) &&
        (rc = flm_dataset_writer_complete(J->dw, key, J->real_paths[g->file], &err)) < 0)
        cli_error("pack: %s", err.msg);
    if (rc == 0 && (int64_t)flm_dataset_writer_pending(J->dw) >= J->per_shard &&
        (rc = flm_dataset_writer_flush(J->dw, &err)) < 0)
        cli_error("pack: %s", err.msg);
    sentence_group_free(G);
    flm_free(out.samples);
    flm_free(out.bad);
    J->progress += g->frames;
    cli_progress_update(&J->bar, J->progress);
    return rc;
}

/* ---- retries ------------------------------------------------------------------------------- */

typedef struct retry_list {
    char **keys, **paths;
    size_t n, cap, cap_paths;
} retry_list;

static void on_quarantined(void *user, const char *key, const char *path, const char *stage,
                           const char *error)
{
    (void)error;
    retry_list *r = user;
    if (strncmp(key, "pack:", 5) || strchr(key, '#') || !stage || !path)
        return;
    char *k = flm_strdup(key), *p = flm_strdup(path);
    if (k && p && flm_grow((void **)&r->keys, &r->cap, r->n + 1, sizeof *r->keys) == 0 &&
        flm_grow((void **)&r->paths, &r->cap_paths, r->n + 1, sizeof *r->paths) == 0) {
        r->keys[r->n] = k;
        r->paths[r->n++] = p;
    } else {
        flm_free(k), flm_free(p);
    }
}

/* Groups of one line for each quarantined line of these manifests. */
static int retry_groups(job *J, const group *gs, size_t n_gs, group **out, size_t *n_out,
                        retry_list *rl)
{
    flm_error err = {0};
    if (flm_index_list_quarantine(J->idx, on_quarantined, rl, &err) < 0) {
        cli_error("pack: %s", err.msg);
        return -1;
    }
    group *r = flm_calloc(rl->n + 1, sizeof *r);
    if (!r)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < rl->n; i++) {
        for (size_t k = 0; k < n_gs; k++) {
            if (gs[k].retry)
                continue;
            const char *file = J->manifests[gs[k].file];
            size_t pl = 5 + strlen(pack_base_name(file)) + 1; /* "pack:" NAME ":" */
            if (strcmp(rl->paths[i], file) || strlen(rl->keys[i]) < pl)
                continue;
            long long line = atoll(rl->keys[i] + pl);
            if (line < gs[k].first_line || line >= gs[k].first_line + gs[k].n_lines)
                continue;
            r[n] = gs[k];
            r[n].retry = rl->keys[i];
            r[n].retry_line = line;
            n++;
            break;
        }
    }
    *out = r;
    *n_out = n;
    return 0;
}

/* The summary as one JSON object (--json): the same figures as the text, numbers as numbers. */
static void print_summary_json(const job *J, double elapsed, double hours, double peak_mb)
{
    json_t *o = json_object(), *q = json_object();
    if (!o || !q) {
        json_decref(o), json_decref(q);
        return;
    }
    json_object_set_new(o, "dataset", json_string(J->dir));
    if (J->world > 1) {
        json_object_set_new(o, "rank", json_integer(J->rank));
        json_object_set_new(o, "world", json_integer(J->world));
    }
    json_object_set_new(o, "kind",
                        json_string(J->conv      ? "conversations"
                                    : J->dialogs ? "dialogs"
                                                 : "sentences"));
    json_object_set_new(o, "groups_packed", json_integer(J->groups_todo));
    json_object_set_new(o, "groups_already_done", json_integer(J->groups_skipped));
    json_object_set_new(o,
                        J->conv      ? "conversations"
                        : J->dialogs ? "dialogs"
                                     : "utterances",
                        json_integer(J->utts));
    json_object_set_new(o, J->dialogs && !J->conv ? "turns" : "sentences",
                        json_integer(J->sentences));
    json_object_set_new(o, "samples", json_integer(J->n_out));
    if (J->conv) {
        json_object_set_new(o, "model_sides", json_integer(J->conv_sides));
        json_object_set_new(o, "samples_with_interruptions", json_integer(J->n_interrupted));
    } else if (J->dialogs) {
        json_object_set_new(o, "samples_with_interruptions", json_integer(J->n_interrupted));
    } else if (J->words) {
        json_object_set_new(o, "layout",
                            json_string(J->words == FLM_PACK_WORDS ? "words" : "words-asr"));
    } else {
        json_object_set_new(o, "tts", json_integer(J->n_tts));
        json_object_set_new(o, "asr", json_integer(J->n_out - J->n_tts));
    }
    json_object_set_new(o, "shards", json_integer(J->written.shards));
    json_object_set_new(o, J->dialogs ? "dialog_hours" : "speech_hours", json_real(hours));
    json_object_set_new(o, "inputs", json_integer(J->utts + J->quarantined));
    json_object_set_new(o, "quarantined", json_integer(J->quarantined));
    for (int s = 0; s < N_STAGES; s++)
        if (J->q_by_stage[s])
            json_object_set_new(q, pack_stages[s], json_integer(J->q_by_stage[s]));
    json_object_set_new(o, "quarantined_by_stage", q);
    json_object_set_new(o, "max_bad", json_real(J->max_bad));
    json_object_set_new(o, "too_many_bad", json_boolean(J->too_many_bad));
    json_object_set_new(o, "fingerprint", json_string(J->fingerprint));
    json_object_set_new(o, "seconds", json_real(elapsed));
    json_object_set_new(o, "peak_memory_mb", json_real(peak_mb));
    cli_json_print(stdout, o); /* numbers as numbers, floats shortest round-trip */
    json_decref(o);
}

static void print_summary(const job *J, double elapsed)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double hours = J->speech_frames / (12.5 * 3600.0);
    if (J->json) {
        print_summary_json(J, elapsed, hours, ru.ru_maxrss / 1024.0);
        return;
    }
    char part[64] = "";
    if (J->world > 1)
        snprintf(part, sizeof part, " (part %d of %d)", J->rank, J->world);
    if (J->conv)
        printf("flm pack%s: %lld groups packed (%lld already done), %lld conversations, %lld model "
               "sides, %lld model sentences -> %lld samples (%lld with interruptions) in %lld "
               "shards; %.3f h of dialog\n",
               part, (long long)J->groups_todo, (long long)J->groups_skipped, (long long)J->utts,
               (long long)J->conv_sides, (long long)J->sentences, (long long)J->n_out,
               (long long)J->n_interrupted, (long long)J->written.shards, hours);
    else if (J->dialogs)
        printf("flm pack%s: %lld groups packed (%lld already done), %lld dialogs, %lld turns -> "
               "%lld samples (%lld with interruptions) in %lld shards; %.3f h of dialog\n",
               part, (long long)J->groups_todo, (long long)J->groups_skipped, (long long)J->utts,
               (long long)J->sentences, (long long)J->n_out, (long long)J->n_interrupted,
               (long long)J->written.shards, hours);
    else if (J->words)
        printf("flm pack%s: %lld groups packed (%lld already done), %lld utterances, %lld "
               "sentences -> %lld word-level samples (%s) in %lld shards; %.3f h of speech\n",
               part, (long long)J->groups_todo, (long long)J->groups_skipped, (long long)J->utts,
               (long long)J->sentences, (long long)J->n_out,
               J->words == FLM_PACK_WORDS ? "words: Moshi's arm" : "words-asr: the paper's arm",
               (long long)J->written.shards, hours);
    else
        printf("flm pack%s: %lld groups packed (%lld already done), %lld utterances, %lld "
               "sentences -> %lld samples (%lld TTS, %lld ASR) in %lld shards; %.3f h of speech\n",
               part, (long long)J->groups_todo, (long long)J->groups_skipped, (long long)J->utts,
               (long long)J->sentences, (long long)J->n_out, (long long)J->n_tts,
               (long long)(J->n_out - J->n_tts), (long long)J->written.shards, hours);
    if (J->quarantined) {
        printf("  quarantined: %lld (flm index quarantine %s):", (long long)J->quarantined, J->dir);
        for (int s = 0; s < N_STAGES; s++)
            if (J->q_by_stage[s])
                printf(" %s %lld", pack_stages[s], (long long)J->q_by_stage[s]);
        printf("\n");
    }
    if (J->too_many_bad)
        printf("  TOO MANY FAILURES: %lld of %lld inputs (%.1f%%) quarantined, more than --max-bad "
               "%g allows (exit status %d)\n",
               (long long)J->quarantined, (long long)(J->utts + J->quarantined),
               100.0 * (double)J->quarantined / (double)(J->utts + J->quarantined), J->max_bad,
               PACK_EXIT_TOO_MANY_BAD);
    double t[8] = {J->t_read,     J->t_decode, J->t_augment,          J->t_encode,
                   J->t_tokenize, J->t_pack,   J->written.t_register, J->written.t_compress};
    const char *names[8] = {
        "read codes", "decode", "augment", "encode",
        "tokenize",   "pack",   "index",   "compress+write (writer thread, in parallel)"};
    printf("  time %.2f s (%.3g h of %s/s):", elapsed, elapsed > 0 ? hours / elapsed : 0,
           J->dialogs ? "dialog" : "speech");
    for (int s = 0; s < 8; s++)
        if (t[s] > 0)
            printf(" %s %.0f%%", names[s], elapsed > 0 ? 100 * t[s] / elapsed : 0);
    printf("; peak memory %.0f MB\n", ru.ru_maxrss / 1024.0);
}

typedef struct key_ref {
    uint64_t h;
    size_t i;
} key_ref;

static int cmp_key_ref(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    return x->h != y->h ? (x->h < y->h ? -1 : 1) : (x->i < y->i ? -1 : x->i > y->i);
}

/* A manifest given twice (or a copy of it under the same name) would pack its groups twice:
 * keep the first of groups with equal keys. Returns how many were dropped. */
static int64_t drop_duplicate_groups(const job *J, const group *gs, size_t n, unsigned char *todo)
{
    key_ref *r = flm_malloc((n + 1) * sizeof *r);
    size_t m = 0;
    int64_t dropped = 0;
    char a[700], b[700];
    for (size_t i = 0; r && i < n; i++)
        if (todo[i]) {
            group_key(J, &gs[i], a, sizeof a);
            r[m++] = (key_ref){XXH3_64bits(a, strlen(a)), i};
        }
    if (r)
        qsort(r, m, sizeof *r, cmp_key_ref);
    for (size_t k = 1; r && k < m; k++) {
        size_t first = k - 1;
        while (first > 0 && r[first].h == r[k].h && !todo[r[first].i])
            first--;
        if (r[k].h != r[first].h)
            continue;
        group_key(J, &gs[r[first].i], a, sizeof a);
        group_key(J, &gs[r[k].i], b, sizeof b);
        if (!strcmp(a, b)) {
            todo[r[k].i] = 0;
            dropped++;
        }
    }
    flm_free(r);
    return dropped;
}

/* Refuses a job whose configuration differs from the one that packed a group of its manifests:
 * resuming or appending so would mix two datasets in one. */
static int config_refused(job *J, const group *g, int64_t run_id)
{
    char *was = pack_config_of_run(J, run_id), diff[1400];
    if (was)
        pack_config_diff(was, J->config, diff, sizeof diff);
    else
        snprintf(diff, sizeof diff, "run %lld recorded no configuration", (long long)run_id);
    cli_error("pack: %s: lines %lld.. were packed with another configuration (run %lld): %s. "
              "Rerun with the configuration they were packed with, or pack into a new dataset.",
              J->manifests[g->file], (long long)g->first_line, (long long)run_id, diff);
    flm_free(was);
    return 1;
}

/* A group that is not done although a done group of a manifest of the same DIR/NAME starts at
 * the same line:
 *  - from another manifest (another path, and no group of this one is done: en/v1/x.jsonl
 *    after zh/v1/x.jsonl): fine;
 *  - packed with another configuration (sample_frames, say, moves the group boundaries):
 *    refused, naming the differences;
 *  - else this manifest changed after it was packed: packing the group would put its sentences
 *    in the dataset twice, so the job stops and says so. */
static int changed_group(job *J, const group *g, int manifest_done)
{
    char prefix[600], found[700];
    snprintf(prefix, sizeof prefix, "pack:%s:%lld+", J->file_names[g->file],
             (long long)g->first_line);
    flm_error err = {0};
    flm_index_input in;
    int r = flm_index_find_done(J->idx, prefix, found, sizeof found, &err);
    if (r == 0)
        return 0;
    if (r < 0 || flm_index_input_info(J->idx, found, &in, &err) < 0) {
        cli_error("pack: %s", err.msg);
        return 1;
    }
    if (in.path[0] && strcmp(in.path, J->real_paths[g->file]) != 0 && !manifest_done)
        return 0;
    if (in.fingerprint[0] && strcmp(in.fingerprint, J->fingerprint) != 0)
        return config_refused(J, g, in.run_id);
    cli_error("pack: %s changed after it was packed: lines %lld.. were packed as %s; packing them "
              "again would put their sentences in the dataset twice. Add new data as a new "
              "manifest file (or pack into a new dataset).",
              J->manifests[g->file], (long long)g->first_line, found);
    return 1;
}

/* Whether the group a retry entry came from is done. */
static int parent_done(job *J, const group *g)
{
    group parent = *g;
    parent.retry = NULL;
    char key[700];
    flm_error err = {0};
    group_key(J, &parent, key, sizeof key);
    return flm_index_input_status(J->idx, key, &err) == 1;
}

int pack_run(job *J, int64_t *n_bad)
{
    flm_error err = {0};
    group *gs = NULL, *rs = NULL;
    size_t n_gs = 0, n_rs = 0;
    retry_list rl = {0};
    double start = flm_now();
    int rc = scan_manifests(J, &gs, &n_gs);
    if (rc == 0 && (rc = flm_index_open(&J->idx, J->dir, FLM_INDEX_CREATE, &err)) < 0)
        cli_error("pack: %s", err.msg);
    if (rc == 0 && pack_config_check_dataset(J) < 0)
        rc = -1;
    if (rc == 0 && J->retry && retry_groups(J, gs, n_gs, &rs, &n_rs, &rl) < 0)
        rc = -1;
    /* this rank's groups: g % world == rank; then the retries (already in this part's index) */
    char key[700];
    int64_t total = 0;
    unsigned char *todo = flm_calloc(n_gs + n_rs + 1, 1);
    signed char *status = flm_calloc(n_gs + n_rs + 1, 1);
    unsigned char *manifest_done = flm_calloc((size_t)J->n_manifests + 1, 1);
    if (!todo || !status || !manifest_done)
        rc = -1;
    /* what is done, and whether it was packed with this configuration */
    for (size_t i = 0; rc == 0 && i < n_gs + n_rs; i++) {
        const group *g = i < n_gs ? &gs[i] : &rs[i - n_gs];
        if (i < n_gs && (int64_t)(i % (size_t)J->world) != J->rank)
            continue;
        group_key(J, g, key, sizeof key);
        flm_index_input in;
        if (flm_index_input_info(J->idx, key, &in, &err) < 0) {
            cli_error("pack: %s", err.msg);
            rc = -1;
            break;
        }
        status[i] = (signed char)in.status;
        if (in.status == 1 && i < n_gs) {
            manifest_done[g->file] = 1;
            if (in.fingerprint[0] && strcmp(in.fingerprint, J->fingerprint) != 0)
                rc = -config_refused(J, g, in.run_id);
        }
    }
    for (size_t i = 0; rc == 0 && i < n_gs + n_rs; i++) {
        const group *g = i < n_gs ? &gs[i] : &rs[i - n_gs];
        if (i < n_gs && (int64_t)(i % (size_t)J->world) != J->rank)
            continue;
        int st = status[i];
        if (st == 1) {
            J->groups_skipped++;
        } else if (i >= n_gs && (st == 0 || !parent_done(J, g))) {
            continue; /* retry a line only once its group is done (else the group packs it) */
        } else if (i < n_gs && changed_group(J, g, manifest_done[g->file])) {
            rc = -1;
        } else {
            todo[i] = 1;
            total += g->frames;
            J->groups_todo++;
        }
    }
    flm_free(status);
    flm_free(manifest_done);
    if (rc == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "flm pack --recipe %s (rank %d of %d)", J->recipe.name, J->rank,
                 J->world);
        flm_shard_params sp = flm_shard_default_params(&J->prof);
        if ((rc = flm_index_begin_run(J->idx, cmd, J->recipe.json, (int64_t)J->recipe.seed,
                                      &J->prof, &J->run, &err)) < 0 ||
            (rc = flm_index_set_run_config(J->idx, J->run, J->config, &err)) < 0 ||
            (rc = flm_dataset_writer_open(&J->dw, J->dir, J->idx, J->run, &sp, &err)) < 0)
            cli_error("pack: %s", err.msg);
    }
    if (rc == 0) {
        int64_t dup = drop_duplicate_groups(J, gs, n_gs, todo);
        for (size_t i = 0; dup && i < n_gs; i++)
            if (!todo[i] && (int64_t)(i % (size_t)J->world) == J->rank) {
                group_key(J, &gs[i], key, sizeof key);
                if (flm_index_input_status(J->idx, key, &err) == 0) { /* a dropped duplicate */
                    total -= gs[i].frames;
                    J->groups_todo--;
                }
            }
        if (dup)
            fprintf(stderr,
                    "flm pack: %lld groups appear twice in the manifests (the same file "
                    "given twice?); each is packed once\n",
                    (long long)dup);
    }
    if (J->dialogs)
        cli_progress_start(&J->bar, "pack", J->conv ? "lines" : "dialogs", total);
    else
        cli_progress_start_scaled(&J->bar, "pack", "h", total, 12.5 * 3600);
    J->bar.enabled &= !J->mpi || J->rank == 0; /* under mpirun one bar (rank 0's) is enough */
    for (size_t i = 0; rc == 0 && i < n_gs + n_rs; i++) {
        if (!todo[i])
            continue;
        const group *g = i < n_gs ? &gs[i] : &rs[i - n_gs];
        group_key(J, g, key, sizeof key);
        rc = do_group(J, g, key);
    }
    if (rc == 0 && (rc = flm_dataset_writer_flush(J->dw, &err)) < 0)
        cli_error("pack: %s", err.msg);
    if (J->dw)
        J->written = flm_dataset_writer_get_stats(J->dw);
    flm_dataset_writer_close(&J->dw); /* a shard left open (the job stopped) is dropped */
    cli_progress_finish(&J->bar, J->progress);
    int64_t inputs = J->utts + J->quarantined;
    J->too_many_bad = inputs > 0 && (double)J->quarantined > J->max_bad * (double)inputs;
    if (rc == 0)
        print_summary(J, flm_now() - start);
    *n_bad = J->quarantined;
    flm_free(todo);
    flm_free(gs);
    flm_free(rs);
    for (size_t i = 0; i < rl.n; i++)
        flm_free(rl.keys[i]), flm_free(rl.paths[i]);
    flm_free(rl.keys), flm_free(rl.paths);
    return rc;
}
