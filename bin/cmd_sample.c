/* flm sample: full-duplex generation with an FLM-Audio checkpoint and Mimi.
 *
 *   flm sample --model DIR --codec MIMI --user-audio IN -o OUTDIR [--seconds S] [--seed N]
 *   flm sample --model DIR --codec MIMI --text "..." --tokenizer TOK.json -o OUTDIR
 *
 * One 80 ms step per user frame (and on, over silence, to --seconds): the user's Mimi codes go
 * to the listen channels, the model's text token and 8 speech codes are generated and fed back.
 * Writes OUTDIR/model.wav (the model's speech), OUTDIR/stereo.wav (left user, right model),
 * OUTDIR/text.tsv (every non-wait text token with its frame and time) and OUTDIR/monologue.txt
 * (the text segments, one per line with their start time). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_kernels.h"
#include "flm_lm.h"
#include "flm_mimi.h"
#include "flm_tokenizer.h"

#define FRAME FLM_MIMI_FRAME_SIZE

static void usage(FILE *f)
{
    fprintf(f,
            "usage: flm sample --model DIR --codec MIMI.safetensors -o OUTDIR\n"
            "                  (--user-audio IN | --text TEXT --tokenizer TOKENIZER.json)\n"
            "                  [--tokenizer TOKENIZER.json] [--seconds S] [--seed N]\n"
            "                  [--greedy] [--weights f32|bf16|q8|q4] [--mmap] [--threads N]\n"
            "\n"
            "Full-duplex generation: one 80 ms step per frame of the user's audio (any format\n"
            "FFmpeg reads, encoded with Mimi onto the listen channels), continuing over silence\n"
            "up to --seconds (default: the audio plus 2 s). With --text the text channel is\n"
            "forced to the tokenized text, then <wait> (TTS-style; listen channels empty).\n"
            "Sampling as published (text temp 0.01, audio temp 0.5, top-p 0.9, repetition\n"
            "penalties 1.03 / 1.2 over 50 steps) from --seed (default 0), or --greedy; speech\n"
            "codes 2048/2049 are never generated. Writes OUTDIR/model.wav, OUTDIR/stereo.wav\n"
            "(left user, right model), OUTDIR/text.tsv (frame, seconds, id, piece of every\n"
            "non-wait text token) and OUTDIR/monologue.txt (text segments with start times;\n"
            "token ids unless --tokenizer is given). --weights: the format the weights are\n"
            "held in for compute (default f32; bf16 halves the memory, q8 / q4 are per-block\n"
            "int8 / 4-bit, see docs/engine.md).\n" CLI_HELP_MMAP);
}

/* Appends the segment ids[0..n) as one line "start_s<TAB>text" (ids when no tokenizer). */
static void write_segment(FILE *f, const flm_tokenizer *tok, const int32_t *ids, int n,
                          int64_t frame0)
{
    char *text = NULL;
    size_t size = 0, cap = 0;
    fprintf(f, "%.2f\t", (double)frame0 * FRAME / FLM_MIMI_SAMPLE_RATE);
    if (tok && flm_tokenizer_decode(tok, ids, (size_t)n, FLM_TOKENIZER_LOSSY, &text, &size, &cap,
                                    NULL) == 0)
        fputs(text, f);
    else
        for (int i = 0; i < n; i++)
            fprintf(f, "%s%d", i ? " " : "", ids[i]);
    fputc('\n', f);
    flm_free(text);
}

static int write_text(const char *out, const int32_t *text, int64_t n, int32_t wait,
                      const flm_tokenizer *tok, flm_error *err)
{
    char p1[4096], p2[4096];
    snprintf(p1, sizeof p1, "%s/text.tsv", out);
    snprintf(p2, sizeof p2, "%s/monologue.txt", out);
    FILE *a = fopen(p1, "w"), *b = fopen(p2, "w");
    int rc = a && b ? 0 : flm_error_set(err, FLM_EIO, "%s: %s", a ? p2 : p1, strerror(errno));
    int64_t start = -1;
    for (int64_t t = 0; t <= n && rc == 0; t++) {
        int is_text = t < n && text[t] != wait;
        if (is_text) {
            const char *piece = tok ? flm_tokenizer_piece(tok, text[t]) : NULL;
            fprintf(a, "%lld\t%.2f\t%d\t%s\n", (long long)t,
                    (double)t * FRAME / FLM_MIMI_SAMPLE_RATE, (int)text[t], piece ? piece : "");
            if (start < 0)
                start = t;
        } else if (start >= 0) { /* a wait token (or the end) closes the segment */
            write_segment(b, tok, text + start, (int)(t - start), start);
            start = -1;
        }
    }
    if (a && fclose(a) != 0 && rc == 0)
        rc = flm_error_set(err, FLM_EIO, "%s: %s", p1, strerror(errno));
    if (b && fclose(b) != 0 && rc == 0)
        rc = flm_error_set(err, FLM_EIO, "%s: %s", p2, strerror(errno));
    return rc;
}

typedef struct sample_args {
    const char *codec, *user, *text, *tokp, *out;
    double seconds; /* -1: the default */
    int64_t seed;
    int greedy;
    cli_model_opts mo;
} sample_args;

static int parse_args(int argc, char **argv, sample_args *a)
{
    const char *seconds = NULL, *seed = NULL;
    *a = (sample_args){.seconds = -1, .mo = cli_model_opts_default()};
    const cli_option own[] = {
        CLI_OPT_CODEC(&a->codec, "the Mimi checkpoint"),
        CLI_OPT("-o, --out", "OUTDIR", "where to write the outputs (created)", &a->out),
        CLI_OPT("--user-audio", "IN", "the user's audio (any format FFmpeg reads)", &a->user),
        CLI_OPT("--text", "TEXT", "force the text channel to this text (needs --tokenizer)",
                &a->text),
        CLI_OPT("--tokenizer", "TOKENIZER.json", "the text tokenizer (pieces in the outputs)",
                &a->tokp),
        CLI_OPT("--seconds", "S", "length to generate, in (0, 3600] (default: the audio plus 2 s)",
                &seconds),
        CLI_OPT("--seed", "N", "sampling seed (default 0)", &seed),
        CLI_FLAG("--greedy", "argmax instead of sampling", &a->greedy),
        {0}};
    int rc = cli_parse_model("sample", usage, own, &a->mo, argc, argv);
    if (rc != CLI_PARSED || (rc = cli_i64("sample", "--seed", seed, 0, INT64_MAX, &a->seed)))
        return rc;
    if (seconds) {
        char *end;
        a->seconds = strtod(seconds, &end);
        if (end == seconds || *end || !(a->seconds > 0 && a->seconds <= 3600))
            return cli_usage("sample", "--seconds must be in (0, 3600], got '%s'", seconds);
    }
    if (!a->mo.model || !a->codec || !a->out || !!a->user == !!a->text || (a->text && !a->tokp))
        return cli_usage("sample", "%s",
                         !a->mo.model             ? "missing --model DIR"
                         : !a->codec              ? "missing --codec MIMI.safetensors"
                         : !a->out                ? "missing -o OUT"
                         : !!a->user == !!a->text ? "give one of --user-audio WAV and --text TEXT"
                                                  : "--text needs --tokenizer");
    return CLI_PARSED;
}

/* What a run holds; freed by run_free. */
typedef struct sample_run {
    flm_lm *lm;
    flm_mimi *mimi;
    flm_tokenizer *tok;
    const flm_lm_config *c;
    flm_token_buf tb; /* the tokenized --text */
    float *pcm;       /* [N * FRAME] the user's audio, then silence */
    int64_t n_user;
    size_t N;                   /* steps */
    int32_t *ucodes;            /* [N][8] the listen channels */
    int32_t *text_out, *frames; /* [n_out], [n_out][8] generated */
    float *speech, *stereo;     /* [N * FRAME], [N * FRAME][2] */
    int64_t n_out;
} sample_run;

static void run_free(sample_run *r)
{
    flm_token_buf_free(&r->tb);
    flm_tokenizer_destroy(&r->tok);
    flm_mimi_destroy(&r->mimi);
    flm_lm_destroy(&r->lm);
    flm_free(r->pcm);
    flm_free(r->speech);
    flm_free(r->stereo);
    flm_free(r->ucodes);
    flm_free(r->text_out);
    flm_free(r->frames);
}

/* Loads the checkpoints and the input (audio or text); sets the number of steps. 0 or -1 (said). */
static int load_inputs(const sample_args *a, sample_run *r)
{
    flm_error err = {0};
    flm_mimi_params mp = flm_mimi_default_params();
    if (flm_lm_load(&r->lm, a->mo.model, (flm_wtype)a->mo.wtype, a->mo.load_flags, &err) < 0 ||
        flm_mimi_load(&r->mimi, a->codec, &mp, &err) < 0 ||
        (a->tokp && flm_tokenizer_load(&r->tok, a->tokp, NULL, &err) < 0))
        return cli_error("sample: %s", err.msg), -1;
    const flm_lm_config *c = r->c = flm_lm_get_config(r->lm);
    const flm_mimi_config *mc = flm_mimi_get_config(r->mimi);
    if (mc->n_q != FLM_LM_N_CODEBOOKS || mc->bins > c->aud_pad)
        return cli_error("sample: %s: %d codebooks of %d codes do not fit the model (8 codebooks, "
                         "codes below %d)",
                         a->codec, mc->n_q, mc->bins, c->aud_pad),
               -1;
    if (a->user) {
        flm_audio_params ap = flm_audio_default_params();
        int32_t n_ch;
        if (flm_audio_read_file(a->user, &ap, &r->pcm, &r->n_user, &n_ch, &err) < 0)
            return cli_error("sample: %s", err.msg), -1;
    } else {
        if (flm_tokenizer_encode(r->tok, a->text, strlen(a->text), &r->tb, &err) < 0)
            return cli_error("sample: --text: %s", err.msg), -1;
        for (size_t i = 0; i < r->tb.n_ids; i++)
            if (r->tb.ids[i] >= c->vocab_size)
                return cli_error("sample: --text: token %d outside the model's vocabulary (%d)",
                                 (int)r->tb.ids[i], c->vocab_size),
                       -1;
    }
    /* steps: the user's frames plus 2 s, or about 4 frames of speech per text token */
    int64_t n_text = (int64_t)r->tb.n_ids;
    int64_t n_steps =
        a->user ? flm_mimi_n_frames(r->n_user) + 25 : (n_text * 4 > 25 ? n_text * 4 : 25);
    if (a->seconds > 0)
        n_steps = (int64_t)(a->seconds * FLM_MIMI_SAMPLE_RATE / FRAME + 0.5);
    if (n_steps < 2 || n_steps + 1 > c->max_positions + 1)
        return cli_error("sample: %lld steps (at most %d, the model's max_position_embeddings)",
                         (long long)n_steps, c->max_positions),
               -1;
    r->N = (size_t)n_steps;
    return 0;
}

/* The listen channels: the user's audio (and silence after it) encoded, or all empty (--text).
 * 0 or -1 (said). */
static int listen_codes(const sample_args *a, sample_run *r)
{
    size_t N = r->N;
    flm_error err = {0};
    float *p2 = flm_realloc(r->pcm, N * FRAME * sizeof *r->pcm);
    if (!p2)
        return cli_error("sample: out of memory"), -1;
    r->pcm = p2;
    if ((size_t)r->n_user < N * FRAME) /* silence after the user's audio (or all of it: --text) */
        memset(r->pcm + r->n_user, 0, (N * FRAME - (size_t)r->n_user) * sizeof *r->pcm);
    r->ucodes = flm_malloc(N * FLM_LM_N_CODEBOOKS * sizeof *r->ucodes);
    r->text_out = flm_malloc(N * sizeof *r->text_out);
    r->frames = flm_malloc(N * FLM_LM_N_CODEBOOKS * sizeof *r->frames);
    r->speech = flm_calloc(N * FRAME, sizeof *r->speech);
    r->stereo = flm_malloc(N * FRAME * 2 * sizeof *r->stereo);
    if (!r->ucodes || !r->text_out || !r->frames || !r->speech || !r->stereo)
        return cli_error("sample: out of memory"), -1;
    if (!a->user) { /* --text */
        for (size_t i = 0; i < N * FLM_LM_N_CODEBOOKS; i++)
            r->ucodes[i] = r->c->aud_empty;
        return 0;
    }
    int32_t *cm = flm_malloc(N * FLM_LM_N_CODEBOOKS * sizeof *cm); /* [8][N] */
    if (!cm || flm_mimi_encode(r->mimi, r->pcm, (int64_t)(N * FRAME), cm, &err) < 0) {
        cli_error("sample: %s", cm ? err.msg : "out of memory");
        flm_free(cm);
        return -1;
    }
    for (size_t t = 0; t < N; t++)
        for (int k = 0; k < FLM_LM_N_CODEBOOKS; k++)
            r->ucodes[t * FLM_LM_N_CODEBOOKS + k] = cm[(size_t)k * N + t];
    flm_free(cm);
    return 0;
}

/* One step per frame: the model's text token and speech codes, decoded to speech. 0 or -1. */
static int generate(const sample_args *a, sample_run *r)
{
    flm_error err = {0};
    flm_lm_gen *g = NULL;
    flm_mimi_stream *dec = NULL;
    flm_lm_gen_params gp = flm_lm_gen_default_params();
    gp.use_sampling = !a->greedy;
    gp.seed = (uint64_t)a->seed;
    int rc = -1;
    if (flm_lm_gen_create(&g, r->lm, (int)r->N, &gp, &err) < 0 ||
        flm_mimi_stream_create(&dec, r->mimi, FLM_MIMI_DECODE, 1, &err) < 0) {
        cli_error("sample: %s", err.msg);
        goto done;
    }
    cli_progress bar;
    cli_progress_start(&bar, "sample", "frames", (int64_t)r->N);
    for (size_t t = 0; t < r->N; t++) {
        int32_t force[1 + FLM_LM_N_CODEBOOKS], frame[1 + FLM_LM_N_CODEBOOKS];
        int has;
        for (int k = 0; k <= FLM_LM_N_CODEBOOKS; k++)
            force[k] = -1;
        if (a->text)
            force[0] = t < r->tb.n_ids ? r->tb.ids[t] : r->c->text_wait;
        if (flm_lm_gen_step(g, r->ucodes + t * FLM_LM_N_CODEBOOKS, force, frame, &has, &err) < 0 ||
            (has && flm_mimi_stream_decode(dec, frame + 1, 1, r->speech + (size_t)r->n_out * FRAME,
                                           &err) < 0)) {
            cli_error("sample: step %zu: %s", t, err.msg);
            goto done;
        }
        if (has) { /* the frame of step t-1, completed by this step's acoustic codes */
            r->text_out[r->n_out] = frame[0];
            memcpy(r->frames + (size_t)r->n_out * FLM_LM_N_CODEBOOKS, frame + 1,
                   FLM_LM_N_CODEBOOKS * sizeof *r->frames);
            r->n_out++;
        }
        cli_progress_update(&bar, (int64_t)t + 1);
    }
    cli_progress_finish(&bar, (int64_t)r->N);
    rc = 0;
done:
    flm_lm_gen_destroy(&g);
    flm_mimi_stream_destroy(&dec);
    return rc;
}

/* OUTDIR/model.wav, stereo.wav, text.tsv, monologue.txt and the summary line. 0 or -1. */
static int write_outputs(const sample_args *a, sample_run *r)
{
    flm_error err = {0};
    size_t n = r->N * FRAME;
    for (size_t i = 0; i < n; i++) {
        r->stereo[2 * i] = r->pcm[i];
        r->stereo[2 * i + 1] = r->speech[i];
    }
    char path[4096];
    if (mkdir(a->out, 0755) < 0 && errno != EEXIST)
        return cli_error("sample: cannot create %s: %s", a->out, strerror(errno)), -1;
    snprintf(path, sizeof path, "%s/model.wav", a->out);
    if (flm_audio_write_file(path, FLM_AUDIO_WAV_F32, r->speech, (int64_t)n, 1,
                             FLM_MIMI_SAMPLE_RATE, &err) < 0)
        return cli_error("sample: %s", err.msg), -1;
    snprintf(path, sizeof path, "%s/stereo.wav", a->out);
    if (flm_audio_write_file(path, FLM_AUDIO_WAV_F32, r->stereo, (int64_t)n, 2,
                             FLM_MIMI_SAMPLE_RATE, &err) < 0 ||
        write_text(a->out, r->text_out, r->n_out, r->c->text_wait, r->tok, &err) < 0)
        return cli_error("sample: %s", err.msg), -1;
    int64_t n_tok = 0;
    for (int64_t t = 0; t < r->n_out; t++)
        n_tok += r->text_out[t] != r->c->text_wait;
    printf("%s: %lld frames (%.2f s) generated, %lld text tokens; model.wav, stereo.wav, "
           "text.tsv, monologue.txt\n",
           a->out, (long long)r->n_out, (double)r->n_out * FRAME / FLM_MIMI_SAMPLE_RATE,
           (long long)n_tok);
    return 0;
}

int cmd_sample(int argc, char **argv)
{
    sample_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSED)
        return rc;
    flm_kernels_init((int)a.mo.threads);
    sample_run r = {0};
    rc = load_inputs(&a, &r) < 0 || listen_codes(&a, &r) < 0 || generate(&a, &r) < 0 ||
                 write_outputs(&a, &r) < 0
             ? 1
             : 0;
    run_free(&r);
    return rc;
}
