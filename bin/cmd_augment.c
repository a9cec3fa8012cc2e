/* flm augment: apply the listen-channel augmentation (noise, gain, floor, echo) to one file. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_augment.h"

static void usage(FILE *f)
{
    flm_augment_params d = flm_augment_default_params();
    char keys[512] = "";
    const char *const *k = flm_augment_params_keys();
    for (int i = 0; k[i]; i++) {
        size_t n = strlen(keys);
        snprintf(keys + n, sizeof keys - n, "%s%s%s", i ? "," : "",
                 i && i % 5 == 0 ? "\n                     " : (i ? " " : ""), k[i]);
    }
    fprintf(f,
            "usage: flm augment IN.wav -o OUT.wav [--speak SPEAK.wav] [--noise DIR|LIST|FILE]\n"
            "                   [--seed S] [--id SAMPLE_ID] [--utt START:END]... [--print-params]\n"
            "                   [--json]\n"
            "                   [--p-gain P] [--p-noise P] [--p-silence P] [--p-echo P]\n"
            "                   [--no-floor] [--clip scale|hard|none] [--param KEY=VALUE]...\n"
            "\n"
            "Augments the listen waveform IN (decoded to 24 kHz mono) the way the FLM-Audio SFT\n"
            "stages do (paper appendix B) and writes OUT as float32 wav:\n"
            "  1. with p %.2g a gain uniform in [%g, %g] dB on the user's utterances, then each\n"
            "     utterance raised to a loudness of at least %g dB (dB = 20 log10(rms + 1e-6));\n"
            "  2. with p %.2g a noise track of random clips from --noise, each scaled to a level\n"
            "     uniform in (%g, %g) dB, each replaced by silence with p %.2g;\n"
            "  3. with p %.2g the --speak waveform added with gain in [%g, %g] and delay in\n"
            "     [%g, %g] s (echo leakage);\n"
            "  4. if the result exceeds +-1 it is scaled down by its peak (--clip to change).\n"
            "Every draw is keyed by (seed, sample id, purpose): the same arguments give the same\n"
            "output bit for bit.\n"
            "\n"
            "  -o OUT.wav         output (float32 wav, 24000 Hz mono)\n"
            "  --speak FILE       the model's own voice for echo leakage (no echo without it)\n"
            "  --noise PATH       noise pool: a directory (all files, by name), a .txt/.lst\n"
            "                     manifest (one path per line) or one audio file\n"
            "  --seed S           run seed (default 0)\n"
            "  --id ID            sample id (default: IN as given)\n"
            "  --utt START:END    a user utterance in seconds (repeatable, in time order;\n"
            "                     default: all of IN)\n"
            "  --print-params     print the drawn parameters as key=value lines\n"
            "  --json             print them as one JSON object instead (typed: numbers as\n"
            "                     numbers; implies --print-params)\n"
            "  --p-gain, --p-noise, --p-silence, --p-echo P   override a probability\n"
            "  --no-floor         do not enforce the loudness floor\n"
            "  --clip MODE        scale (default), hard (clamp to +-1) or none\n"
            "  --param KEY=VALUE  set any recipe parameter (repeatable); keys:\n"
            "                     %s\n",
            d.p_gain, d.gain_db_lo, d.gain_db_hi, d.loudness_floor_db, d.p_noise, d.noise_db_lo,
            d.noise_db_hi, d.p_noise_silence, d.p_echo, d.echo_gain_lo, d.echo_gain_hi,
            d.echo_delay_lo_s, d.echo_delay_hi_s, keys);
}

static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end) {
        fprintf(stderr, "flm augment: %s '%s': expected a number\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* The key=value lines of flm_augment_result_format as one JSON object: the same keys as the
 * samples' "aug.*" metadata, numbers typed. */
static void print_json(unsigned long long seed, const char *id, char *text)
{
    json_t *o = json_object();
    json_object_set_new(o, "aug.seed", json_integer((json_int_t)seed));
    json_object_set_new(o, "aug.id", json_string(id));
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        json_t *v;
        cli_json_value(eq + 1, &v);
        json_object_set_new(o, line, v);
    }
    cli_json_print(stdout, o);
    json_decref(o);
}

int cmd_augment(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *speak_path = NULL, *noise_path = NULL, *id = NULL;
    unsigned long long seed = 0;
    int print = 0;
    flm_augment_params p = flm_augment_default_params();
    enum { MAX_UTTS = 1024 };
    static double utt_s[MAX_UTTS][2];
    int n_utts = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") && has) {
            out = argv[++i];
        } else if (!strcmp(a, "--speak") && has) {
            speak_path = argv[++i];
        } else if (!strcmp(a, "--noise") && has) {
            noise_path = argv[++i];
        } else if (!strcmp(a, "--id") && has) {
            id = argv[++i];
        } else if (!strcmp(a, "--seed") && has) {
            char *end;
            seed = strtoull(argv[++i], &end, 0);
            if (*end || !*argv[i]) {
                fprintf(stderr, "flm augment: --seed '%s': expected an unsigned integer\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--utt") && has) {
            const char *v = argv[++i];
            char *end;
            if (n_utts == MAX_UTTS) {
                fprintf(stderr, "flm augment: more than %d --utt\n", MAX_UTTS);
                return 2;
            }
            utt_s[n_utts][0] = strtod(v, &end);
            if (end == v || *end != ':') {
                fprintf(stderr, "flm augment: --utt '%s': expected START:END in seconds\n", v);
                return 2;
            }
            const char *e2 = end + 1;
            utt_s[n_utts][1] = strtod(e2, &end);
            if (end == e2 || *end) {
                fprintf(stderr, "flm augment: --utt '%s': expected START:END in seconds\n", v);
                return 2;
            }
            n_utts++;
        } else if (!strcmp(a, "--param") && has) {
            char kv[256];
            snprintf(kv, sizeof kv, "%s", argv[++i]);
            char *eq = strchr(kv, '=');
            flm_error perr = {0};
            if (!eq) {
                fprintf(stderr, "flm augment: --param '%s': expected KEY=VALUE\n", argv[i]);
                return 2;
            }
            *eq = 0;
            if (flm_augment_params_set(&p, kv, eq + 1, &perr) < 0) {
                fprintf(stderr, "flm %s\n", perr.msg);
                return 2;
            }
        } else if (!strcmp(a, "--print-params")) {
            print = print ? print : 1;
        } else if (!strcmp(a, "--json")) {
            print = 2;
        } else if (!strcmp(a, "--no-floor")) {
            p.loudness_floor = 0;
        } else if (!strcmp(a, "--p-gain") && has) {
            if (parse_double(a, argv[++i], &p.p_gain) < 0)
                return 2;
        } else if (!strcmp(a, "--p-noise") && has) {
            if (parse_double(a, argv[++i], &p.p_noise) < 0)
                return 2;
        } else if (!strcmp(a, "--p-silence") && has) {
            if (parse_double(a, argv[++i], &p.p_noise_silence) < 0)
                return 2;
        } else if (!strcmp(a, "--p-echo") && has) {
            if (parse_double(a, argv[++i], &p.p_echo) < 0)
                return 2;
        } else if (!strcmp(a, "--clip") && has) {
            const char *m = argv[++i];
            if (!strcmp(m, "scale"))
                p.clip_mode = FLM_AUGMENT_CLIP_SCALE;
            else if (!strcmp(m, "hard"))
                p.clip_mode = FLM_AUGMENT_CLIP_HARD;
            else if (!strcmp(m, "none"))
                p.clip_mode = FLM_AUGMENT_CLIP_NONE;
            else {
                fprintf(stderr, "flm augment: --clip '%s': expected scale, hard or none\n", m);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            return cli_usage("augment", "unknown or incomplete option '%s'", a);
        } else if (!in) {
            in = a;
        } else {
            fprintf(stderr, "flm augment: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!in || !out) {
        return cli_usage("augment", "%s", !in ? "missing input file" : "missing -o OUT.wav");
    }
    flm_error err = {0};
    if (flm_augment_params_check(&p, &err) < 0) {
        fprintf(stderr, "flm %s\n", err.msg);
        return 2;
    }
    int rc = 1;
    float *x = NULL, *s = NULL;
    int64_t n = 0, n_speak = 0;
    int32_t nch = 0;
    flm_augment_noise_pool *pool = NULL;
    flm_augment_result res = {0};
    flm_augment_span spans[MAX_UTTS];
    char *text = NULL;
    flm_audio_params ap = flm_audio_default_params();
    ap.sample_rate = p.sample_rate;
    if (flm_audio_read_file(in, &ap, &x, &n, &nch, &err) < 0)
        goto fail;
    if (speak_path && flm_audio_read_file(speak_path, &ap, &s, &n_speak, &nch, &err) < 0)
        goto fail;
    if (noise_path && (flm_augment_noise_pool_create(&pool, &err) < 0 ||
                       flm_augment_noise_pool_load(pool, noise_path, p.sample_rate, 0, &err) < 0))
        goto fail;
    for (int u = 0; u < n_utts; u++) {
        spans[u].start = flm_audio_seconds_to_sample(utt_s[u][0], p.sample_rate);
        spans[u].end = flm_audio_seconds_to_sample(utt_s[u][1], p.sample_rate);
        if (spans[u].end > n)
            spans[u].end = n;
        if (spans[u].start > spans[u].end) {
            fprintf(stderr, "flm augment: --utt %g:%g: start after end (input is %.3f s)\n",
                    utt_s[u][0], utt_s[u][1], (double)n / p.sample_rate);
            rc = 2;
            goto out;
        }
    }
    if (flm_augment_apply(&p, seed, id ? id : in, x, n, spans, n_utts, s, n_speak, pool, &res,
                          &err) < 0)
        goto fail;
    if (flm_audio_write_file(out, FLM_AUDIO_WAV_F32, x, n, 1, p.sample_rate, &err) < 0)
        goto fail;
    if (print) {
        size_t need = flm_augment_result_format(&res, NULL, 0) + 1;
        text = flm_malloc(need);
        if (!text) {
            fprintf(stderr, "flm augment: out of memory\n");
            goto out;
        }
        flm_augment_result_format(&res, text, need);
        if (print == 2)
            print_json(seed, id ? id : in, text);
        else
            printf("aug.seed=%llu\naug.id=%s\n%s", seed, id ? id : in, text);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "flm augment: %s\n", err.msg);
out:
    flm_free(text);
    flm_augment_result_clear(&res);
    flm_augment_noise_pool_destroy(&pool);
    flm_free(x);
    flm_free(s);
    return rc;
}
