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
                 i && i % 5 == 0 ? "\n              " : (i ? " " : ""), k[i]);
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
            "--param keys: %s\n",
            d.p_gain, d.gain_db_lo, d.gain_db_hi, d.loudness_floor_db, d.p_noise, d.noise_db_lo,
            d.noise_db_hi, d.p_noise_silence, d.p_echo, d.echo_gain_lo, d.echo_gain_hi,
            d.echo_delay_lo_s, d.echo_delay_hi_s, keys);
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

enum { MAX_UTTS = 1024 };

typedef struct augment_args {
    const char *in, *out, *speak_path, *noise_path, *id;
    unsigned long long seed;
    int print; /* 1 --print-params, 2 --json */
    flm_augment_params p;
    double utt_s[MAX_UTTS][2];
    int n_utts;
} augment_args;

/* A probability option's value (NULL: unchanged): 0 or 2 (said). */
static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    if (!s)
        return 0;
    double v = strtod(s, &end);
    if (end == s || *end)
        return cli_usage("augment", "%s '%s': expected a number", opt, s);
    *out = v;
    return 0;
}

/* A message of the augment library without its "augment: " (cli_usage says the command). */
static const char *own_msg(const char *msg)
{
    return strncmp(msg, "augment: ", 9) ? msg : msg + 9;
}

/* --utt START:END values and --param KEY=VALUE ones: 0 or 2 (said). */
static int parse_lists(augment_args *a, const cli_list *utts, const cli_list *params)
{
    if (utts->n > MAX_UTTS)
        return cli_usage("augment", "more than %d --utt", MAX_UTTS);
    for (int u = 0; u < utts->n; u++) {
        const char *v = utts->v[u], *e2 = NULL;
        char *end;
        a->utt_s[u][0] = strtod(v, &end);
        if (end != v && *end == ':')
            a->utt_s[u][1] = strtod(e2 = end + 1, &end);
        if (end == v || *end || end == e2)
            return cli_usage("augment", "--utt '%s': expected START:END in seconds", v);
    }
    a->n_utts = utts->n;
    for (int k = 0; k < params->n; k++) {
        char kv[256];
        flm_error perr = {0};
        snprintf(kv, sizeof kv, "%s", params->v[k]);
        char *eq = strchr(kv, '=');
        if (!eq)
            return cli_usage("augment", "--param '%s': expected KEY=VALUE", params->v[k]);
        *eq = 0;
        if (flm_augment_params_set(&a->p, kv, eq + 1, &perr) < 0)
            return cli_usage("augment", "%s", own_msg(perr.msg));
    }
    return 0;
}

static int parse_args(int argc, char **argv, augment_args *a)
{
    const char *seed = NULL, *p_gain = NULL, *p_noise = NULL, *p_sil = NULL, *p_echo = NULL;
    const char *clip = NULL;
    int print = 0, json = 0, no_floor = 0, n;
    cli_list utts = {0}, params = {0};
    const cli_option opts[] = {
        CLI_OPT("-o", "OUT.wav", "output (float32 wav, 24000 Hz mono)", &a->out),
        CLI_OPT("--speak", "FILE", "the model's own voice for echo leakage (no echo without it)",
                &a->speak_path),
        CLI_OPT("--noise", "PATH",
                "noise pool: a directory (all files, by name), a .txt/.lst\n"
                "manifest (one path per line) or one audio file",
                &a->noise_path),
        CLI_OPT("--seed", "S", "run seed (default 0)", &seed),
        CLI_OPT("--id", "ID", "sample id (default: IN as given)", &a->id),
        CLI_LIST("--utt", "START:END",
                 "a user utterance in seconds (repeatable, in time order;\n"
                 "default: all of IN)",
                 &utts),
        CLI_FLAG("--print-params", "print the drawn parameters as key=value lines", &print),
        CLI_FLAG("--json",
                 "print them as one JSON object instead (typed: numbers as\n"
                 "numbers; implies --print-params)",
                 &json),
        CLI_OPT("--p-gain", "P", "override the probability of the gain", &p_gain),
        CLI_OPT("--p-noise", "P", "override the probability of noise", &p_noise),
        CLI_OPT("--p-silence", "P", "override the probability of a silent noise clip", &p_sil),
        CLI_OPT("--p-echo", "P", "override the probability of echo leakage", &p_echo),
        CLI_FLAG("--no-floor", "do not enforce the loudness floor", &no_floor),
        CLI_OPT("--clip", "MODE", "scale (default), hard (clamp to +-1) or none", &clip),
        CLI_LIST("--param", "KEY=VALUE", "set any recipe parameter (repeatable; keys below)",
                 &params),
        {0}};
    const cli_option *const tables[] = {opts, NULL};
    const cli_command c = {"augment", usage, tables, 1, NULL};
    static const char *const clips[] = {"scale", "hard", "none", NULL};
    static const int clip_mode[] = {FLM_AUGMENT_CLIP_SCALE, FLM_AUGMENT_CLIP_HARD,
                                    FLM_AUGMENT_CLIP_NONE};
    int clip_i = -1, rc = cli_parse(&c, argc, argv, &a->in, &n);
    if (rc == CLI_PARSED && seed) {
        char *end;
        a->seed = strtoull(seed, &end, 0);
        if (*end || !*seed)
            rc = cli_usage("augment", "--seed '%s': expected an unsigned integer", seed);
    }
    if (rc == CLI_PARSED && !(rc = parse_double("--p-gain", p_gain, &a->p.p_gain)) &&
        !(rc = parse_double("--p-noise", p_noise, &a->p.p_noise)) &&
        !(rc = parse_double("--p-silence", p_sil, &a->p.p_noise_silence)) &&
        !(rc = parse_double("--p-echo", p_echo, &a->p.p_echo)) &&
        !(rc = cli_choice("augment", "--clip", clip, clips, &clip_i)) &&
        !(rc = parse_lists(a, &utts, &params)))
        rc = CLI_PARSED;
    flm_free(utts.v);
    flm_free(params.v);
    if (rc != CLI_PARSED)
        return rc;
    if (clip_i >= 0)
        a->p.clip_mode = clip_mode[clip_i];
    if (no_floor)
        a->p.loudness_floor = 0;
    a->print = json ? 2 : print;
    if (!n || !a->out)
        return cli_usage("augment", "%s", !n ? "missing input file" : "missing -o OUT.wav");
    flm_error err = {0};
    if (flm_augment_params_check(&a->p, &err) < 0)
        return cli_usage("augment", "%s", own_msg(err.msg));
    return CLI_PARSED;
}

/* Prints the drawn parameters (--print-params, --json): 0 or -1 (said). */
static int print_params(const augment_args *a, const flm_augment_result *res)
{
    size_t need = flm_augment_result_format(res, NULL, 0) + 1;
    char *text = flm_malloc(need);
    if (!text) {
        cli_error("augment: out of memory");
        return -1;
    }
    flm_augment_result_format(res, text, need);
    if (a->print == 2)
        print_json(a->seed, a->id ? a->id : a->in, text);
    else
        printf("aug.seed=%llu\naug.id=%s\n%s", a->seed, a->id ? a->id : a->in, text);
    flm_free(text);
    return 0;
}

int cmd_augment(int argc, char **argv)
{
    static augment_args a; /* large: the utterance table */
    a = (augment_args){.p = flm_augment_default_params()};
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_PARSED)
        return rc;
    flm_error err = {0};
    float *x = NULL, *s = NULL;
    int64_t n = 0, n_speak = 0;
    int32_t nch = 0;
    flm_augment_noise_pool *pool = NULL;
    flm_augment_result res = {0};
    flm_augment_span spans[MAX_UTTS];
    flm_audio_params ap = flm_audio_default_params();
    ap.sample_rate = a.p.sample_rate;
    rc = 1;
    if (flm_audio_read_file(a.in, &ap, &x, &n, &nch, &err) < 0 ||
        (a.speak_path && flm_audio_read_file(a.speak_path, &ap, &s, &n_speak, &nch, &err) < 0) ||
        (a.noise_path &&
         (flm_augment_noise_pool_create(&pool, &err) < 0 ||
          flm_augment_noise_pool_load(pool, a.noise_path, a.p.sample_rate, 0, &err) < 0)))
        goto fail;
    for (int u = 0; u < a.n_utts; u++) {
        spans[u].start = flm_audio_seconds_to_sample(a.utt_s[u][0], a.p.sample_rate);
        spans[u].end = flm_audio_seconds_to_sample(a.utt_s[u][1], a.p.sample_rate);
        if (spans[u].end > n)
            spans[u].end = n;
        if (spans[u].start > spans[u].end) {
            cli_error("augment: --utt %g:%g: start after end (input is %.3f s)", a.utt_s[u][0],
                      a.utt_s[u][1], (double)n / a.p.sample_rate);
            rc = 2;
            goto out;
        }
    }
    if (flm_augment_apply(&a.p, a.seed, a.id ? a.id : a.in, x, n, spans, a.n_utts, s, n_speak, pool,
                          &res, &err) < 0 ||
        flm_audio_write_file(a.out, FLM_AUDIO_WAV_F32, x, n, 1, a.p.sample_rate, &err) < 0)
        goto fail;
    rc = a.print && print_params(&a, &res) < 0 ? 1 : 0;
    goto out;
fail:
    cli_error("augment: %s", err.msg);
out:
    flm_augment_result_clear(&res);
    flm_augment_noise_pool_destroy(&pool);
    flm_free(x);
    flm_free(s);
    return rc;
}
