/* SFT dialogs: manifests (good and bad lines), and an independent checker of the dialog formats
 * over many seeded dialogs. The checker knows DESIGN 3.3-3.5 and docs/dialogs.md, not the
 * planner: it finds every turn's audio in the rendered tracks, reads the text channel, and
 * judges interruptions from what it finds (the stored events must agree with it). */
#include <math.h>
#include <stdlib.h>

#include "flm_alloc.h"
#include "flm_dialog.h"
#include "flm_rng.h"
#include "dialog_util.h"
#include "tap.h"
#include "test_util.h"

static flm_profiles P;
#define RATE 24000
#define REACTION_SAMPLES 12000 /* 0.5 s */

/* ---- manifests ----------------------------------------------------------------------------- */

static void test_manifest(void)
{
    char dir[1024], path[1200];
    temp_dir(dir, sizeof dir, "dialog_manifest");
    snprintf(path, sizeof path, "%s/m.jsonl", dir);
    static const char *lines[] = {
        /* 1 */ "{\"id\":\"d1\",\"corpus\":\"synth\",\"language\":\"en\",\"turns\":["
                "{\"role\":\"user\",\"text\":\"Hi\",\"audio\":\"a/u1.wav\",\"start\":0.5},"
                "{\"role\":\"assistant\",\"text\":\"Hello.\",\"audio\":\"/abs/m1.wav\","
                "\"start\":2}]}",
        /* 2 */ "",
        /* 3 */ "{\"turns\":[{\"role\":\"bot\",\"text\":\"x\",\"audio\":\"x.wav\"}]}",
        /* 4 */
        "{\"turns\":[{\"role\":\"user\",\"text\":\"x\",\"audio\":\"x.wav\"},"
        "{\"role\":\"user\",\"text\":\"y\",\"audio\":\"y.wav\"}]}",
        /* 5 */ "{\"turns\":[]}",
        /* 6 */ "{\"turns\":[{\"role\":\"user\",\"text\":\"x\",\"audio\":\"x.wav\",\"spk\":1}]}",
        /* 7 */ "{\"turns\":[{\"role\":\"user\"",
        /* 8 */
        "{\"turns\":[{\"role\":\"user\",\"text\":\"x\",\"audio\":\"x.wav\",\"start\":3},"
        "{\"role\":\"assistant\",\"text\":\"y\",\"audio\":\"y.wav\",\"start\":1}]}",
        /* 9 */ "{\"turns\":[{\"role\":\"user\",\"text\":\"x\"}]}",
        /* 10 */
        "  {\"turns\":[{\"role\":\"assistant\",\"text\":\"Welcome.\",\"audio\":\"w.wav\"}]}",
        /* 11 */ "[1, 2]",
        /* 12 */ "{\"turns\":[{\"role\":\"user\",\"text\":\"\",\"audio\":\"x.wav\"}]}",
        /* 13 */ "{\"id\":7,\"turns\":[{\"role\":\"user\",\"text\":\"x\",\"audio\":\"x.wav\"}]}",
    };
    FILE *f = fopen(path, "w");
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        fprintf(f, "%s\n", lines[i]);
    fclose(f);
    flm_dialog_manifest m;
    flm_error err = {0};
    TAP_EQ_INT(flm_dialog_manifest_load(path, &m, &err), 0, "manifest loads");
    TAP_EQ_INT(m.n_dialogs, 2, "two good dialogs");
    TAP_EQ_INT(m.n_rejects, 10, "ten bad lines (the blank one skipped)");
    if (m.n_dialogs == 2) {
        const flm_dialog *d = &m.dialogs[0];
        char want[1300];
        snprintf(want, sizeof want, "%s/a/u1.wav", dir);
        TAP_OK(d->n_turns == 2 && d->line == 1 && !strcmp(d->id, "d1") &&
                   !strcmp(d->corpus, "synth") && !strcmp(d->language, "en"),
               "id, corpus, language, turns");
        TAP_OK(d->turns[0].role == FLM_DIALOG_USER && d->turns[1].role == FLM_DIALOG_MODEL &&
                   !strcmp(d->turns[0].text, "Hi") && d->turns[0].start == 0.5 &&
                   d->turns[1].start == 2.0,
               "roles, text, start times");
        TAP_EQ_STR(d->turns[0].audio, want, "audio relative to the manifest's directory");
        TAP_EQ_STR(d->turns[1].audio, "/abs/m1.wav", "absolute audio path kept");
        TAP_EQ_STR(m.dialogs[1].id, "m.jsonl:10", "no id: manifest name and line");
        TAP_OK(m.dialogs[1].turns[0].start == -1 && m.dialogs[1].corpus == NULL,
               "absent start and corpus");
    }
    static const struct {
        int line;
        const char *fragment;
    } want[] = {
        {3, "m.jsonl:3: key \"turns[0].role\": expected \"user\" or \"assistant\""},
        {4, "m.jsonl:4: key \"turns[1].role\": turns must alternate"},
        {5, "m.jsonl:5: key \"turns\": expected an array of 1..10 turns"},
        {6, "m.jsonl:6: unknown key \"turns[0].spk\""},
        {7, "m.jsonl:7:"},
        {8, "m.jsonl:8: key \"turns[1].start\": is before an earlier turn's start"},
        {9, "m.jsonl:9: key \"turns[0].audio\""},
        {11, "m.jsonl:11: expected a JSON object"},
        {12, "m.jsonl:12: key \"turns[0].text\": expected a non-empty string"},
        {13, "m.jsonl:13: key \"id\""},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want && i < m.n_rejects; i++) {
        TAP_EQ_INT(m.rejects[i].line, want[i].line, "reject line");
        TAP_CONTAINS(m.rejects[i].error, want[i].fragment, "reject reason");
    }
    TAP_CONTAINS(m.n_rejects > 4 ? m.rejects[4].error : "", "invalid JSON", "syntax error");
    flm_dialog_manifest_free(&m);
    /* eleven turns */
    char big[2048] = "{\"turns\":[";
    for (int k = 0; k < 11; k++)
        snprintf(big + strlen(big), sizeof big - strlen(big),
                 "%s{\"role\":\"%s\",\"text\":\"t\",\"audio\":\"a.wav\"}", k ? "," : "",
                 k % 2 ? "assistant" : "user");
    strcat(big, "]}");
    flm_dialog d;
    TAP_EQ_INT(flm_dialog_parse(&d, big, strlen(big), "x.jsonl", 4, ".", &err), FLM_EFORMAT,
               "11 turns rejected");
    TAP_CONTAINS(err.msg, "x.jsonl:4: key \"turns\"", "names file, line and key");
    TAP_EQ_INT(flm_dialog_manifest_load("/nonexistent/m.jsonl", &m, &err), FLM_ENOTFOUND,
               "missing manifest");
}

/* ---- random dialogs ------------------------------------------------------------------------ */

/* Turn audio is noise that is never zero, so the checker can find it sample-exactly. */
static void make_dialog(uint64_t seed, int idx, int short_audio, tdialog *td)
{
    char key[64];
    snprintf(key, sizeof key, "dialog/%d", idx);
    flm_rng r;
    flm_rng_init(&r, seed, key, "test.dialog");
    memset(td, 0, sizeof *td);
    td->d.n_turns = 1 + (int32_t)flm_rng_below(&r, FLM_DIALOG_MAX_TURNS);
    int role = flm_rng_below(&r, 4) ? FLM_DIALOG_USER : FLM_DIALOG_MODEL;
    int64_t scale = short_audio ? 4 : 1;
    for (int32_t k = 0; k < td->d.n_turns; k++) {
        td->d.turns[k].role = role;
        td->d.turns[k].start = -1;
        int64_t n;
        if (role == FLM_DIALOG_USER)
            n = flm_rng_below(&r, 5) == 0 ? 1200 + flm_rng_below(&r, REACTION_SAMPLES - 1200)
                                          : REACTION_SAMPLES + flm_rng_below(&r, 72000 / scale);
        else
            n = 4800 + flm_rng_below(&r, (uint32_t)(120000 / scale));
        td->n[k] = n;
        td->audio[k] = malloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++)
            td->audio[k][i] = (float)((0.05 + 0.45 * flm_rng_uniform(&r)) *
                                      (flm_rng_bernoulli(&r, 0.5) ? 1 : -1));
        /* some turns have more tokens than speech frames (conflicts) */
        td->ntok[k] = 1 + (int32_t)flm_rng_below(&r, 40);
        td->tok[k] = malloc(sizeof(int32_t) * (size_t)td->ntok[k]);
        for (int32_t j = 0; j < td->ntok[k]; j++)
            td->tok[k][j] = (int32_t)flm_rng_below(&r, 151643);
        role = role == FLM_DIALOG_USER ? FLM_DIALOG_MODEL : FLM_DIALOG_USER;
    }
}

typedef struct built {
    flm_sample *s;
    float *listen, *speak;
    int64_t n;
} built;

static int build(const tdialog *td, const flm_dialog_params *dp, int format, uint64_t seed,
                 const char *id, built *b, flm_error *err)
{
    memset(b, 0, sizeof *b);
    flm_dialog_plan plan;
    int rc = flm_dialog_plan_make(&plan, dp, format, &td->d, td->n, td->ntok, seed, id, err);
    if (rc < 0)
        return rc;
    b->n = (int64_t)plan.n_frames * SPF;
    b->listen = malloc(sizeof(float) * (size_t)b->n);
    b->speak = malloc(sizeof(float) * (size_t)b->n);
    if ((rc = flm_dialog_render(&plan, dp, (const float *const *)td->audio, td->n, b->listen,
                                b->speak, b->n, err)) < 0)
        return rc;
    int32_t *sc = malloc(sizeof(int32_t) * FLM_N_CODEBOOKS * (size_t)plan.n_frames);
    int32_t *lc = malloc(sizeof(int32_t) * FLM_N_CODEBOOKS * (size_t)plan.n_frames);
    fake_encode(b->speak, plan.n_frames, sc);
    fake_encode(b->listen, plan.n_frames, lc);
    rc = flm_dialog_pack(&b->s, &P, &plan, (const int32_t *const *)td->tok, td->ntok, sc, lc,
                         plan.n_frames, id, err);
    free(sc);
    free(lc);
    return rc;
}

static void free_built(built *b)
{
    flm_sample_destroy(&b->s);
    free(b->listen);
    free(b->speak);
}

/* ---- the checker --------------------------------------------------------------------------- */

typedef struct tally {
    int64_t eligible, overlaps, interrupts, backchannels, cut_speech, dropped_tokens, samples;
} tally;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(why, wn, __VA_ARGS__);                                                            \
        return -1;                                                                                 \
    } while (0)

static int32_t frames_of_samples(int64_t n)
{
    return (int32_t)((n + SPF - 1) / SPF);
}

static const flm_event *find_event(const flm_sample *s, const char *kind, int32_t frame)
{
    for (int32_t e = 0; e < s->n_events; e++)
        if (!strcmp(s->events[e].kind, kind) && s->events[e].frame == frame)
            return &s->events[e];
    return NULL;
}

static int64_t meta_int(const flm_sample *s, const char *key)
{
    const flm_meta *m = flm_sample_meta_get(s, key);
    return m && m->type == FLM_META_INT ? m->i : -1;
}

static int check(const tdialog *td, int format, const built *b, tally *tl, char *why, size_t wn)
{
    const flm_sample *s = b->s;
    const int32_t T = s->n_frames, wait = P.vocab.text_wait;
    const int32_t nt = td->d.n_turns;
    static const char *styles[] = {"", "", "arrt", "rtts", "rtts-free"};
    if (T > 8192 || b->n != (int64_t)T * SPF)
        FAIL("sample of %d frames, tracks of %lld samples", T, (long long)b->n);
    if (!s->style || strcmp(s->style, styles[format]))
        FAIL("style %s", s->style ? s->style : "(none)");
    /* codes are the tracks' codes; classes follow DESIGN 3 */
    int32_t *codes = malloc(sizeof(int32_t) * FLM_N_CODEBOOKS * (size_t)T);
    int bad_codes = 0;
    for (int side = 0; side < 2; side++) {
        fake_encode(side ? b->listen : b->speak, T, codes);
        for (int c = 0; c < FLM_N_CODEBOOKS; c++)
            for (int32_t t = 0; t < T; t++)
                bad_codes |= FLM_TOK(s, (side ? FLM_CH_LISTEN : FLM_CH_SPEAK) + c, t) !=
                             codes[(size_t)c * T + t];
    }
    free(codes);
    if (bad_codes)
        FAIL("speak/listen channels are not the codes of the rendered tracks");
    for (int32_t t = 0; t < T; t++) {
        if (FLM_CLS(s, FLM_CH_TEXT, t) !=
            (FLM_TOK(s, FLM_CH_TEXT, t) == wait ? FLM_LOSS_WAIT : FLM_LOSS_MONOLOGUE))
            FAIL("text class at %d", t);
        for (int c = 0; c < FLM_N_CODEBOOKS; c++)
            if (FLM_CLS(s, FLM_CH_SPEAK + c, t) != (c ? FLM_LOSS_ACOUSTIC : FLM_LOSS_SEMANTIC) ||
                FLM_CLS(s, FLM_CH_LISTEN + c, t) != FLM_LOSS_NONE)
                FAIL("audio class at codebook %d frame %d", c, t);
    }
    /* every turn's audio, found sample-exactly at a frame boundary of its track */
    int32_t at[FLM_DIALOG_MAX_TURNS], end_frame[FLM_DIALOG_MAX_TURNS];
    int64_t stop[FLM_DIALOG_MAX_TURNS]; /* samples of it that sound (after a cut: up to the fade's
                                           end) */
    int32_t from[2] = {0, 0};
    for (int32_t k = 0; k < nt; k++) {
        const int user = td->d.turns[k].role == FLM_DIALOG_USER;
        const float *x = user ? b->listen : b->speak, *a = td->audio[k];
        at[k] = -1;
        for (int32_t t = from[user]; t < T && at[k] < 0; t++)
            if (x[(size_t)t * SPF] == a[0] && x[(size_t)t * SPF + 1] == a[1])
                at[k] = t;
        if (at[k] < 0)
            FAIL("turn %d (%s) not found on its track", k, user ? "user" : "model");
        const float *y = x + (size_t)at[k] * SPF;
        int64_t room = b->n - (int64_t)at[k] * SPF, L = 0;
        while (L < td->n[k] && L < room && y[L] == a[L])
            L++;
        if (user && L != td->n[k])
            FAIL("user turn %d: only %lld of %lld samples on listen", k, (long long)L,
                 (long long)td->n[k]);
        stop[k] = L;
        if (L < td->n[k]) { /* a fade: quieter than the original, then silence */
            while (stop[k] < td->n[k] && stop[k] < room && y[stop[k]] != 0) {
                if (fabsf(y[stop[k]]) > fabsf(a[stop[k]]))
                    FAIL("model turn %d: louder after the cut", k);
                stop[k]++;
            }
            if (stop[k] - L > 240)
                FAIL("model turn %d: fade of %lld samples", k, (long long)(stop[k] - L));
        }
        end_frame[k] = at[k] + frames_of_samples(stop[k]);
        from[user] = end_frame[k];
    }
    /* nothing else on either track */
    for (int side = 0; side < 2; side++) {
        const float *x = side ? b->listen : b->speak;
        int64_t i = 0;
        for (int32_t k = 0; k <= nt; k++) {
            if (k < nt && (td->d.turns[k].role == FLM_DIALOG_USER) != side)
                continue;
            int64_t until = k < nt ? (int64_t)at[k] * SPF : b->n;
            for (; i < until; i++)
                if (x[i] != 0)
                    FAIL("%s track: sound at sample %lld outside every turn",
                         side ? "listen" : "speak", (long long)i);
            if (k < nt)
                i = until + stop[k];
        }
    }
    /* interruptions: a user turn that starts while the previous model turn still sounds */
    int overlapped[FLM_DIALOG_MAX_TURNS] = {0};
    const flm_event *cut_event[FLM_DIALOG_MAX_TURNS] = {0};
    int32_t n_events_expected = 0;
    for (int32_t k = 0; k + 1 < nt; k++) {
        if (td->d.turns[k].role != FLM_DIALOG_MODEL)
            continue;
        if (format == FLM_FORMAT_RTTS_FREE)
            tl->eligible++;
        const int32_t j = k + 1;
        if ((int64_t)at[j] * SPF >= (int64_t)at[k] * SPF + stop[k])
            continue;
        if (format != FLM_FORMAT_RTTS_FREE)
            FAIL("user turn %d speaks over the model in a semi-duplex format", j);
        overlapped[j] = 1;
        tl->overlaps++;
        n_events_expected++;
        const int32_t overlap = (end_frame[j] < end_frame[k] ? end_frame[j] : end_frame[k]) - at[j];
        if (td->n[j] < REACTION_SAMPLES) { /* a back-channel never stops the model */
            tl->backchannels++;
            if (stop[k] != td->n[k])
                FAIL("back-channel (turn %d, %lld samples) stopped the model", j,
                     (long long)td->n[j]);
            const flm_event *e = find_event(s, "backchannel", at[j]);
            if (!e || e->n_frames != overlap || fabs(e->value - (double)td->n[j] / RATE) > 1e-12)
                FAIL("no backchannel event at %d (overlap %d)", at[j], overlap);
            continue;
        }
        tl->interrupts++;
        /* the model falls silent within the reaction delay (+-1 frame) of the onset */
        const int64_t onset = (int64_t)at[j] * SPF, stop_abs = (int64_t)at[k] * SPF + stop[k];
        if (stop_abs > onset + REACTION_SAMPLES + SPF)
            FAIL("model turn %d still speaking %lld samples after the onset", k,
                 (long long)(stop_abs - onset));
        if (stop[k] < td->n[k] && stop_abs < onset + REACTION_SAMPLES - SPF)
            FAIL("model turn %d stopped %lld samples after the onset (too early)", k,
                 (long long)(stop_abs - onset));
        const flm_event *e = find_event(s, "interrupt", at[j]);
        if (!e || e->n_frames != overlap || fabs(e->value - 0.48) > 1e-12)
            FAIL("no interrupt event at %d (overlap %d)", at[j], overlap);
        if (stop[k] < td->n[k]) {
            tl->cut_speech++;
            const flm_event *c = cut_event[k] = find_event(s, "cut", end_frame[k]);
            if (!c || c->n_frames != frames_of_samples(td->n[k]) - (end_frame[k] - at[k]))
                FAIL("no cut event at %d", end_frame[k]);
            n_events_expected++;
        }
    }
    /* the text channel: each turn's span in order, contiguous, response prefixes only when cut */
    int32_t t = 0;
    for (int32_t k = 0; k < nt; k++) {
        const int user = td->d.turns[k].role == FLM_DIALOG_USER;
        if (user && !(format == FLM_FORMAT_ARRT && k + 1 == nt))
            continue;
        int32_t seq[100], n = 0, n_resp = user ? 0 : td->ntok[k];
        if (format == FLM_FORMAT_ARRT) {
            int32_t u = user ? k : k - 1;
            if (u >= 0) {
                seq[n++] = P.vocab.text_asr;
                memcpy(seq + n, td->tok[u], sizeof(int32_t) * (size_t)td->ntok[u]);
                n += td->ntok[u];
            }
            if (u >= 0 || !user)
                seq[n++] = P.vocab.text_answer;
        }
        const int32_t resp_off = n;
        if (!user) {
            memcpy(seq + n, td->tok[k], sizeof(int32_t) * (size_t)n_resp);
            n += n_resp;
        }
        while (t < T && FLM_TOK(s, FLM_CH_TEXT, t) == wait)
            t++;
        const int32_t first = t;
        int32_t m = 0;
        while (m < n && t < T && FLM_TOK(s, FLM_CH_TEXT, t) == seq[m]) {
            m++;
            t++;
        }
        if (m == 0)
            FAIL("turn %d: its text is missing (frame %d)", k, first);
        if (t < T && FLM_TOK(s, FLM_CH_TEXT, t) != wait && m < n)
            FAIL("turn %d: token %d wrong at frame %d", k, m, t);
        /* the span starts after the user turn it follows has ended */
        if (k > 0 && first < end_frame[user ? k : k - 1])
            FAIL("turn %d: text at %d before the user turn ends (%d)", k, first,
                 end_frame[user ? k : k - 1]);
        if (user && m < n)
            FAIL("user turn %d: ASR span truncated", k);
        if (user)
            continue;
        if (m <= resp_off)
            FAIL("turn %d: the response is missing", k);
        /* speech exactly lead (2) frames after the first response token */
        if (at[k] != first + resp_off + 2)
            FAIL("turn %d: speech at %d, first response token at %d", k, at[k], first + resp_off);
        const int interrupted = k + 1 < nt && overlapped[k + 1] && td->n[k + 1] >= REACTION_SAMPLES;
        if (m < n) {
            if (!interrupted)
                FAIL("turn %d: %d of %d text tokens, not interrupted", k, m, n);
            tl->dropped_tokens += n - m;
            const int64_t onset = (int64_t)at[k + 1] * SPF;
            if ((int64_t)(first + m) * SPF < onset + REACTION_SAMPLES - SPF)
                FAIL("turn %d: text stopped at %d, before the reaction delay", k, first + m);
            if (!cut_event[k]) { /* only the text was cut */
                cut_event[k] = find_event(s, "cut", first + m);
                if (!cut_event[k] || cut_event[k]->n_frames != 0)
                    FAIL("turn %d: no cut event at %d", k, first + m);
                n_events_expected++;
            }
        }
        if (cut_event[k] && cut_event[k]->value != n - m)
            FAIL("turn %d: cut event says %g tokens dropped, %d were", k, cut_event[k]->value,
                 n - m);
        if (interrupted &&
            (int64_t)(first + m) * SPF > (int64_t)at[k + 1] * SPF + REACTION_SAMPLES + SPF)
            FAIL("turn %d: text runs past the reaction delay", k);
        /* ARRT: silent speak channel during the span (speech starts after it); user speech
         * under <wait> */
        if (format == FLM_FORMAT_ARRT && k > 0)
            for (int32_t f = at[k - 1]; f < end_frame[k - 1]; f++)
                if (FLM_TOK(s, FLM_CH_TEXT, f) != wait)
                    FAIL("ARRT: text during user turn %d at frame %d", k - 1, f);
    }
    while (t < T && FLM_TOK(s, FLM_CH_TEXT, t) == wait)
        t++;
    if (t < T)
        FAIL("extra text token at frame %d", t);
    if (s->n_events != n_events_expected)
        FAIL("%d events stored, %d found", s->n_events, n_events_expected);
    if (meta_int(s, "dialog.turns") != nt ||
        (format == FLM_FORMAT_RTTS_FREE &&
         meta_int(s, "dialog.interrupts") + meta_int(s, "dialog.backchannels") >
             meta_int(s, "dialog.eligible")))
        FAIL("metadata");
    tl->samples++;
    return 0;
}

/* ---- the tests ----------------------------------------------------------------------------- */

static void run_format(int format, int n_dialogs, int short_audio, tally *tl)
{
    flm_dialog_params dp = flm_dialog_default_params(&P);
    int failures = 0;
    for (int i = 0; i < n_dialogs; i++) {
        tdialog td;
        make_dialog(100 + (uint64_t)format, i, short_audio, &td);
        char id[64], why[256] = "";
        snprintf(id, sizeof id, "synth/%d", i);
        built b;
        flm_error err = {0};
        int rc = build(&td, &dp, format, 7, id, &b, &err);
        if (rc < 0) {
            if (failures++ < 3)
                tap_diag("dialog %d: %s", i, err.msg);
        } else if (check(&td, format, &b, tl, why, sizeof why) < 0) {
            if (failures++ < 3)
                tap_diag("dialog %d (format %d): %s", i, format, why);
        }
        free_built(&b);
        free_dialog(&td);
    }
    TAP_EQ_INT(failures, 0, flm_recipe_format_name(format));
}

static void test_formats(int n_dialogs, int short_audio)
{
    tally arrt = {0}, rtts = {0}, fr = {0};
    run_format(FLM_FORMAT_ARRT, n_dialogs / 4, short_audio, &arrt);
    run_format(FLM_FORMAT_RTTS, n_dialogs / 4, short_audio, &rtts);
    run_format(FLM_FORMAT_RTTS_FREE, n_dialogs, short_audio, &fr);
    TAP_OK(arrt.overlaps == 0 && rtts.overlaps == 0, "no overlaps without free user inputs");
    double rate = fr.eligible ? (double)fr.overlaps / (double)fr.eligible : 0;
    double tol = 4 * sqrt(0.7 * 0.3 / (fr.eligible ? (double)fr.eligible : 1));
    TAP_OK(fabs(rate - 0.7) <= tol, "interruption rate %.4f over %lld model turns (0.7 +- %.4f)",
           rate, (long long)fr.eligible, tol);
    tap_diag("%lld free-input dialogs: %lld interruptions (%lld cut speech), %lld back-channels, "
             "%lld tokens dropped",
             (long long)fr.samples, (long long)fr.interrupts, (long long)fr.cut_speech,
             (long long)fr.backchannels, (long long)fr.dropped_tokens);
    TAP_OK(fr.backchannels > 0 && fr.cut_speech > 0 && fr.dropped_tokens > 0,
           "the dialogs exercise back-channels, speech cuts and dropped tokens");
}

static int same_build(const built *a, const built *b)
{
    return a->n == b->n && flm_sample_equal(a->s, b->s) &&
           !memcmp(a->listen, b->listen, sizeof(float) * (size_t)a->n) &&
           !memcmp(a->speak, b->speak, sizeof(float) * (size_t)a->n);
}

static void test_determinism(int n)
{
    flm_dialog_params dp = flm_dialog_default_params(&P);
    built *fwd = calloc((size_t)n, sizeof *fwd);
    flm_error err = {0};
    int same = 1, differs = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int ii = 0; ii < n; ii++) {
            int i = pass ? n - 1 - ii : ii; /* second pass in reverse order */
            tdialog td;
            make_dialog(9, i, 1, &td);
            char id[32];
            snprintf(id, sizeof id, "det/%d", i);
            built b;
            if (build(&td, &dp, FLM_FORMAT_RTTS_FREE, 11, id, &b, &err) < 0)
                same = 0;
            if (pass == 0)
                fwd[i] = b;
            else {
                same &= same_build(&fwd[i], &b);
                free_built(&b);
            }
            if (pass == 0 && i == 0) { /* another seed gives another timeline */
                built o;
                if (build(&td, &dp, FLM_FORMAT_RTTS_FREE, 12, id, &o, &err) == 0)
                    differs = !same_build(&fwd[0], &o);
                free_built(&o);
            }
            free_dialog(&td);
        }
    for (int i = 0; i < n; i++)
        free_built(&fwd[i]);
    free(fwd);
    TAP_OK(same, "same seed: bit-identical tracks and samples in reverse order");
    TAP_OK(differs, "another seed: another sample");
}

/* The dialog's own timing, by hand: user 0.8 s + 1 s of audio, model at 2.5 s. */
static void test_manifest_timing(void)
{
    flm_dialog_params dp = flm_dialog_default_params(&P);
    flm_dialog d = {0};
    d.n_turns = 2;
    d.turns[0] = (flm_dialog_turn){FLM_DIALOG_USER, NULL, NULL, 0.8};
    d.turns[1] = (flm_dialog_turn){FLM_DIALOG_MODEL, NULL, NULL, 2.5};
    int64_t n[2] = {24000, 48000};
    int32_t nt[2] = {5, 3};
    flm_dialog_plan plan;
    flm_error err = {0};
    TAP_EQ_INT(flm_dialog_plan_make(&plan, &dp, FLM_FORMAT_RTTS, &d, n, nt, 1, "t", &err), 0,
               "plan with start times");
    /* user at round(0.8 * 12.5) = 10, 13 frames; gap round(0.7 * 12.5) = 9 frames to the
     * model's speech: text at 23 + 9 - 2 = 30, speech at 32 */
    TAP_OK(plan.turns[0].at == 10 && plan.turns[1].text_at == 30 && plan.turns[1].at == 32 &&
               plan.manifest_timing == 1,
           "user at frame 10, response text at 30, speech at 32 (got %d, %d, %d)", plan.turns[0].at,
           plan.turns[1].text_at, plan.turns[1].at);
    TAP_EQ_INT(flm_dialog_plan_make(&plan, &dp, FLM_FORMAT_ARRT, &d, n, nt, 1, "t", &err), 0,
               "ARRT plan");
    /* <asr> at 23, 5 tokens, <answer> at 29, response at 30..32, speech at 32 */
    TAP_OK(plan.turns[1].text_at == 23 && plan.turns[1].response_at == 30 &&
               plan.turns[1].at == 32 && plan.turns[1].n_text == 10,
           "ARRT: <asr> at 23, response at 30, speech at 32");
    dp.manifest_timing = 0;
    TAP_EQ_INT(flm_dialog_plan_make(&plan, &dp, FLM_FORMAT_RTTS, &d, n, nt, 1, "t", &err), 0,
               "drawn timing");
    TAP_OK(plan.manifest_timing == 0 && plan.turns[0].at >= 3 && plan.turns[0].at <= 19,
           "leading gap drawn in [0.2, 1.5] s = [3, 19] frames (got %d)", plan.turns[0].at);
}

static void test_bad_inputs(void)
{
    flm_dialog_params dp = flm_dialog_default_params(&P);
    flm_error err = {0};
    flm_dialog_plan plan;
    tdialog td;
    make_dialog(3, 0, 0, &td);
    int64_t saved = td.n[0];
    td.n[0] = (int64_t)9000 * SPF; /* a turn of 720 s */
    TAP_EQ_INT(
        flm_dialog_plan_make(&plan, &dp, FLM_FORMAT_RTTS, &td.d, td.n, td.ntok, 1, "long/1", &err),
        FLM_ERANGE, "dialog longer than a sample");
    TAP_CONTAINS(err.msg, "dialog long/1", "names the dialog");
    td.n[0] = saved;
    td.ntok[0] = 0;
    TAP_EQ_INT(
        flm_dialog_plan_make(&plan, &dp, FLM_FORMAT_RTTS, &td.d, td.n, td.ntok, 1, "e/1", &err),
        FLM_EINVAL, "turn without tokens");
    TAP_CONTAINS(err.msg, "turn 0", "names the turn");
    td.ntok[0] = 1;
    TAP_EQ_INT(
        flm_dialog_plan_make(&plan, &dp, FLM_FORMAT_TTS, &td.d, td.n, td.ntok, 1, "e/1", &err),
        FLM_EINVAL, "TTS is not a dialog format");
    dp.reaction_s = 0.01;
    TAP_EQ_INT(
        flm_dialog_plan_make(&plan, &dp, FLM_FORMAT_RTTS, &td.d, td.n, td.ntok, 1, "e/1", &err),
        FLM_EINVAL, "reaction shorter than a frame");
    TAP_CONTAINS(err.msg, "reaction_s", "names the parameter");
    dp = flm_dialog_default_params(&P);
    TAP_EQ_INT(
        flm_dialog_plan_make(&plan, &dp, FLM_FORMAT_RTTS, &td.d, td.n, td.ntok, 1, "e/1", &err), 0,
        "valid plan");
    float one;
    TAP_EQ_INT(
        flm_dialog_render(&plan, &dp, (const float *const *)td.audio, td.n, &one, &one, 1, &err),
        FLM_EINVAL, "render into tracks of the wrong length");
    int32_t *codes = calloc((size_t)FLM_N_CODEBOOKS * (size_t)plan.n_frames, sizeof(int32_t));
    flm_sample *s = NULL;
    int32_t keep = td.tok[0][0];
    td.tok[0][0] = P.vocab.text_wait;
    TAP_EQ_INT(flm_dialog_pack(&s, &P, &plan, (const int32_t *const *)td.tok, td.ntok, codes, codes,
                               plan.n_frames, "e/1", &err),
               FLM_EINVAL, "<wait> among a turn's tokens");
    TAP_CONTAINS(err.msg, "turn 0: text token 0", "names turn and token");
    td.tok[0][0] = keep;
    codes[5] = 2049;
    TAP_EQ_INT(flm_dialog_pack(&s, &P, &plan, (const int32_t *const *)td.tok, td.ntok, codes, codes,
                               plan.n_frames, "e/1", &err),
               FLM_EINVAL, "AUD_EMPTY is not a codec output");
    TAP_CONTAINS(err.msg, "speak code 2049 at codebook 0 frame 5", "names the code");
    codes[5] = 0;
    TAP_EQ_INT(flm_dialog_pack(&s, &P, &plan, (const int32_t *const *)td.tok, td.ntok, codes, codes,
                               plan.n_frames - 1, "e/1", &err),
               FLM_EINVAL, "codes of the wrong length");
    TAP_OK(s == NULL, "no sample on error");
    free(codes);
    free_dialog(&td);
}

static void test_pick_format(void)
{
    flm_recipe r;
    flm_error err = {0};
    char path[1024];
    snprintf(path, sizeof path, "%s/schemas/recipes/fine-tuning-2.json", SOURCE_ROOT);
    if (flm_recipe_load(path, &r, &err) < 0) {
        TAP_OK(0, "fine-tuning-2 loads: %s", err.msg);
        return;
    }
    int n[FLM_N_FORMATS] = {0};
    for (int i = 0; i < 2000; i++) {
        char id[32];
        snprintf(id, sizeof id, "d%d", i);
        int f = flm_dialog_pick_format(&r, 1, id);
        if (f >= 0 && f < FLM_N_FORMATS)
            n[f]++;
    }
    TAP_OK(n[FLM_FORMAT_RTTS] + n[FLM_FORMAT_RTTS_FREE] == 2000 && n[FLM_FORMAT_RTTS] > 900 &&
               n[FLM_FORMAT_RTTS] < 1100,
           "fine-tuning-2: rtts %d, rtts-free %d of 2000", n[FLM_FORMAT_RTTS],
           n[FLM_FORMAT_RTTS_FREE]);
    flm_dialog_params dp;
    TAP_EQ_INT(flm_dialog_params_from_recipe(&dp, &r, &P, &err), 0, "params from the recipe");
    TAP_OK(dp.p_interrupt == 0.7 && dp.reaction_s == 0.5 && dp.lead == 2, "p 0.7, 0.5 s, lead 2");
    flm_recipe_free(&r);
    snprintf(path, sizeof path, "%s/schemas/recipes/post-training-1.json", SOURCE_ROOT);
    flm_recipe_load(path, &r, &err);
    TAP_EQ_INT(flm_dialog_pick_format(&r, 1, "x"), FLM_EINVAL, "post-training: no dialog format");
    flm_recipe_free(&r);
}

int main(void)
{
    flm_profiles_default(&P);
    const int fast = getenv("FLM_TEST_FAST") != NULL;
    test_manifest();
    test_manifest_timing();
    test_bad_inputs();
    test_pick_format();
    test_formats(fast ? 120 : 1200, fast);
    test_determinism(fast ? 6 : 40);
    return tap_done();
}
