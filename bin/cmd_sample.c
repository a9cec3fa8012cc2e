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

int cmd_sample(int argc, char **argv)
{
    const char *codec = NULL, *user = NULL, *text = NULL, *tokp = NULL;
    const char *out = NULL, *v;
    double seconds = -1;
    int64_t seed = 0;
    int greedy = 0, bad = 0, taken;
    cli_model_opts mo = cli_model_opts_default();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--greedy")) {
            greedy = 1;
        } else if ((taken = cli_model_opt("sample", argc, argv, &i, &mo, &bad)) != 0) {
            if (taken < 0)
                return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--codec", &bad))) {
            codec = v;
        } else if ((v = cli_opt(argc, argv, &i, "--user-audio", &bad))) {
            user = v;
        } else if ((v = cli_opt(argc, argv, &i, "--text", &bad))) {
            text = v;
        } else if ((v = cli_opt(argc, argv, &i, "--tokenizer", &bad))) {
            tokp = v;
        } else if ((v = cli_opt(argc, argv, &i, "-o", &bad)) ||
                   (v = cli_opt(argc, argv, &i, "--out", &bad))) {
            out = v;
        } else if ((v = cli_opt(argc, argv, &i, "--seconds", &bad))) {
            char *end;
            seconds = strtod(v, &end);
            if (*end || !(seconds > 0 && seconds <= 3600)) {
                cli_error("sample: --seconds must be in (0, 3600], got '%s'", v);
                return 2;
            }
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &bad))) {
            if (cli_parse_i64("--seed", v, 0, INT64_MAX, &seed) < 0)
                return 2;
        } else {
            if (!bad)
                cli_error("sample: unexpected argument '%s' (see flm sample --help)", argv[i]);
            return 2;
        }
    }
    if (!mo.model || !codec || !out || !!user == !!text || (text && !tokp))
        return cli_usage("sample", "%s",
                         !mo.model          ? "missing --model DIR"
                         : !codec           ? "missing --codec MIMI.safetensors"
                         : !out             ? "missing -o OUT"
                         : !!user == !!text ? "give one of --user-audio WAV and --text TEXT"
                                            : "--text needs --tokenizer");
    flm_kernels_init((int)mo.threads);
    flm_error err = {0};
    flm_lm *lm = NULL;
    flm_mimi *mimi = NULL;
    flm_tokenizer *tok = NULL;
    flm_lm_gen *g = NULL;
    flm_mimi_stream *dec = NULL;
    flm_token_buf tb = {0};
    float *pcm = NULL, *speech = NULL, *stereo = NULL;
    int32_t *ucodes = NULL, *text_out = NULL, *frames = NULL;
    int rc = 1;
    flm_mimi_params mp = flm_mimi_default_params();
    if (flm_lm_load(&lm, mo.model, (flm_wtype)mo.wtype, mo.load_flags, &err) < 0 ||
        flm_mimi_load(&mimi, codec, &mp, &err) < 0 ||
        (tokp && flm_tokenizer_load(&tok, tokp, NULL, &err) < 0)) {
        cli_error("sample: %s", err.msg);
        goto done;
    }
    const flm_lm_config *c = flm_lm_get_config(lm);
    if (flm_mimi_get_config(mimi)->n_q != FLM_LM_N_CODEBOOKS ||
        flm_mimi_get_config(mimi)->bins > c->aud_pad) {
        cli_error("sample: %s: %d codebooks of %d codes do not fit the model (8 codebooks, codes "
                  "below %d)",
                  codec, flm_mimi_get_config(mimi)->n_q, flm_mimi_get_config(mimi)->bins,
                  c->aud_pad);
        goto done;
    }
    int64_t n_user = 0, n_text = 0;
    if (user) {
        flm_audio_params ap = flm_audio_default_params();
        int32_t n_ch;
        if (flm_audio_read_file(user, &ap, &pcm, &n_user, &n_ch, &err) < 0) {
            cli_error("sample: %s", err.msg);
            goto done;
        }
    } else {
        if (flm_tokenizer_encode(tok, text, strlen(text), &tb, &err) < 0) {
            cli_error("sample: --text: %s", err.msg);
            goto done;
        }
        n_text = (int64_t)tb.n_ids;
        for (size_t i = 0; i < tb.n_ids; i++)
            if (tb.ids[i] >= c->vocab_size) {
                cli_error("sample: --text: token %d outside the model's vocabulary (%d)",
                          (int)tb.ids[i], c->vocab_size);
                goto done;
            }
    }
    /* steps: the user's frames plus 2 s, or about 4 frames of speech per text token */
    int64_t n_steps = user ? flm_mimi_n_frames(n_user) + 25 : (n_text * 4 > 25 ? n_text * 4 : 25);
    if (seconds > 0)
        n_steps = (int64_t)(seconds * FLM_MIMI_SAMPLE_RATE / FRAME + 0.5);
    if (n_steps < 2 || n_steps + 1 > c->max_positions + 1) {
        cli_error("sample: %lld steps (at most %d, the model's max_position_embeddings)",
                  (long long)n_steps, c->max_positions);
        goto done;
    }
    size_t N = (size_t)n_steps;
    float *p2 = flm_realloc(pcm, N * FRAME * sizeof *pcm);
    if (!p2) {
        cli_error("sample: out of memory");
        goto done;
    }
    pcm = p2;
    if ((size_t)n_user < N * FRAME) /* silence after the user's audio (or all of it: --text) */
        memset(pcm + n_user, 0, (N * FRAME - (size_t)n_user) * sizeof *pcm);
    ucodes = flm_malloc(N * FLM_LM_N_CODEBOOKS * sizeof *ucodes);
    text_out = flm_malloc(N * sizeof *text_out);
    frames = flm_malloc(N * FLM_LM_N_CODEBOOKS * sizeof *frames);
    speech = flm_calloc(N * FRAME, sizeof *speech);
    stereo = flm_malloc(N * FRAME * 2 * sizeof *stereo);
    if (!ucodes || !text_out || !frames || !speech || !stereo) {
        cli_error("sample: out of memory");
        goto done;
    }
    if (user) {
        int32_t *cm = flm_malloc(N * FLM_LM_N_CODEBOOKS * sizeof *cm); /* [8][N] */
        if (!cm || flm_mimi_encode(mimi, pcm, (int64_t)(N * FRAME), cm, &err) < 0) {
            cli_error("sample: %s", cm ? err.msg : "out of memory");
            flm_free(cm);
            goto done;
        }
        for (size_t t = 0; t < N; t++)
            for (int k = 0; k < FLM_LM_N_CODEBOOKS; k++)
                ucodes[t * FLM_LM_N_CODEBOOKS + k] = cm[(size_t)k * N + t];
        flm_free(cm);
    } else {
        for (size_t i = 0; i < N * FLM_LM_N_CODEBOOKS; i++)
            ucodes[i] = c->aud_empty;
    }
    flm_lm_gen_params gp = flm_lm_gen_default_params();
    gp.use_sampling = !greedy;
    gp.seed = (uint64_t)seed;
    if (flm_lm_gen_create(&g, lm, (int)N, &gp, &err) < 0 ||
        flm_mimi_stream_create(&dec, mimi, FLM_MIMI_DECODE, 1, &err) < 0) {
        cli_error("sample: %s", err.msg);
        goto done;
    }
    cli_progress bar;
    cli_progress_start(&bar, "sample", "frames", (int64_t)N);
    int64_t n_out = 0;
    for (size_t t = 0; t < N; t++) {
        int32_t force[1 + FLM_LM_N_CODEBOOKS], frame[1 + FLM_LM_N_CODEBOOKS];
        int has;
        for (int k = 0; k <= FLM_LM_N_CODEBOOKS; k++)
            force[k] = -1;
        if (text)
            force[0] = (int64_t)t < n_text ? tb.ids[t] : c->text_wait;
        if (flm_lm_gen_step(g, ucodes + t * FLM_LM_N_CODEBOOKS, force, frame, &has, &err) < 0 ||
            (has &&
             flm_mimi_stream_decode(dec, frame + 1, 1, speech + (size_t)n_out * FRAME, &err) < 0)) {
            cli_error("sample: step %zu: %s", t, err.msg);
            goto done;
        }
        if (has) { /* the frame of step t-1, completed by this step's acoustic codes */
            text_out[n_out] = frame[0];
            memcpy(frames + (size_t)n_out * FLM_LM_N_CODEBOOKS, frame + 1,
                   FLM_LM_N_CODEBOOKS * sizeof *frames);
            n_out++;
        }
        cli_progress_update(&bar, (int64_t)t + 1);
    }
    cli_progress_finish(&bar, (int64_t)N);
    for (size_t i = 0; i < N * FRAME; i++) {
        stereo[2 * i] = pcm[i];
        stereo[2 * i + 1] = speech[i];
    }
    char path[4096];
    if (mkdir(out, 0755) < 0 && errno != EEXIST) {
        cli_error("sample: cannot create %s: %s", out, strerror(errno));
        goto done;
    }
    snprintf(path, sizeof path, "%s/model.wav", out);
    if (flm_audio_write_file(path, FLM_AUDIO_WAV_F32, speech, (int64_t)(N * FRAME), 1,
                             FLM_MIMI_SAMPLE_RATE, &err) < 0) {
        cli_error("sample: %s", err.msg);
        goto done;
    }
    snprintf(path, sizeof path, "%s/stereo.wav", out);
    if (flm_audio_write_file(path, FLM_AUDIO_WAV_F32, stereo, (int64_t)(N * FRAME), 2,
                             FLM_MIMI_SAMPLE_RATE, &err) < 0 ||
        write_text(out, text_out, n_out, c->text_wait, tok, &err) < 0) {
        cli_error("sample: %s", err.msg);
        goto done;
    }
    int64_t n_tok = 0;
    for (int64_t t = 0; t < n_out; t++)
        n_tok += text_out[t] != c->text_wait;
    printf("%s: %lld frames (%.2f s) generated, %lld text tokens; model.wav, stereo.wav, "
           "text.tsv, monologue.txt\n",
           out, (long long)n_out, (double)n_out * FRAME / FLM_MIMI_SAMPLE_RATE, (long long)n_tok);
    rc = 0;
done:
    flm_lm_gen_destroy(&g);
    flm_mimi_stream_destroy(&dec);
    flm_token_buf_free(&tb);
    flm_tokenizer_destroy(&tok);
    flm_mimi_destroy(&mimi);
    flm_lm_destroy(&lm);
    flm_free(pcm);
    flm_free(speech);
    flm_free(stereo);
    flm_free(ucodes);
    flm_free(text_out);
    flm_free(frames);
    return rc;
}
