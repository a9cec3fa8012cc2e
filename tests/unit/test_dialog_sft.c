/* SFT dialogs through the rest of the pipeline (the stages `flm pack` runs, with a stand-in for
 * Mimi): render -> augment the listen track -> encode -> pack -> shard -> index. Checks that
 * the shipped recipes' augmentation keys are augment's, that the stored echo delay and gain are
 * found again by cross-correlating the augmented listen track with the speak track, and that
 * `flm index stats`'s dialog figures equal what the packed samples hold. */
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "flm_augment.h"
#include "flm_dialog.h"
#include "flm_index.h"
#include "flm_rng.h"
#include "flm_shard.h"
#include "dialog_util.h"
#include "tap.h"
#include "test_util.h"

static flm_profiles P;
#define RATE 24000

static void load_recipe(const char *name, flm_recipe *r)
{
    char path[1024];
    flm_error err = {0};
    snprintf(path, sizeof path, "%s/schemas/recipes/%s.json", SOURCE_ROOT, name);
    if (flm_recipe_load(path, r, &err) < 0) {
        tap_diag("%s", err.msg);
        abort();
    }
}

/* The recipe's augmentation settings applied to augment's parameters. */
static int augment_params(const flm_recipe *r, flm_augment_params *ap, flm_error *err)
{
    *ap = flm_augment_default_params();
    for (size_t i = 0; i < r->n_augment; i++)
        if (flm_augment_params_set(ap, r->augment_key[i], r->augment_value[i], err) < 0)
            return -1;
    return flm_augment_params_check(ap, err);
}

static void test_recipes(void)
{
    static const char *names[] = {"fine-tuning-1", "fine-tuning-2"};
    for (int i = 0; i < 2; i++) {
        flm_recipe r;
        flm_augment_params ap;
        flm_error err = {0};
        load_recipe(names[i], &r);
        TAP_EQ_INT(augment_params(&r, &ap, &err), 0, names[i]);
        TAP_OK(ap.p_gain == 0.6 && ap.gain_db_lo == -24 && ap.gain_db_hi == 20 &&
                   ap.loudness_floor_db == -40 && ap.noise_db_lo == -70 && ap.noise_db_hi == -40 &&
                   ap.p_noise_silence == 0.3,
               "%s: appendix B noise and gain", names[i]);
        TAP_OK(i ? ap.p_echo == 0.3 && ap.echo_gain_hi == 0.2 && ap.echo_delay_lo_s == 0.1 &&
                       ap.echo_delay_hi_s == 0.5
                 : ap.p_echo == 0,
               "%s: echo leakage only in the final stage", names[i]);
        flm_recipe_free(&r);
    }
}

static void make_dialog(int idx, tdialog *td)
{
    char key[64];
    snprintf(key, sizeof key, "sft/%d", idx);
    flm_rng r;
    flm_rng_init(&r, 5, key, "test.dialog");
    memset(td, 0, sizeof *td);
    td->d.n_turns = 2 + (int32_t)flm_rng_below(&r, 5);
    for (int32_t k = 0; k < td->d.n_turns; k++) {
        int user = k % 2 == 0;
        td->d.turns[k].role = user ? FLM_DIALOG_USER : FLM_DIALOG_MODEL;
        td->d.turns[k].start = -1;
        td->n[k] = user ? (flm_rng_below(&r, 4) ? 12000 + flm_rng_below(&r, 24000)
                                                : 2400 + flm_rng_below(&r, 9000))
                        : 12000 + flm_rng_below(&r, 36000);
        td->audio[k] = malloc(sizeof(float) * (size_t)td->n[k]);
        for (int64_t i = 0; i < td->n[k]; i++)
            td->audio[k][i] = (float)(0.3 * flm_rng_normal(&r));
        td->ntok[k] = 1 + (int32_t)flm_rng_below(&r, 20);
        td->tok[k] = malloc(sizeof(int32_t) * (size_t)td->ntok[k]);
        for (int32_t j = 0; j < td->ntok[k]; j++)
            td->tok[k][j] = (int32_t)flm_rng_below(&r, 151643);
    }
}

/* The echo as a test finds it: the delay maximizing the correlation of the augmented listen
 * track with the speak track, over the samples where the user is silent (the test rendered the
 * clean listen track, so it knows where); then the least-squares gain at that delay. */
static void find_echo(const float *x, const float *clean, const float *speak, int64_t n,
                      int64_t *delay, double *gain)
{
    const int64_t lo = (int64_t)(0.09 * RATE), hi = (int64_t)(0.51 * RATE);
    double best = -1;
    *delay = -1;
    for (int64_t d = lo; d <= hi; d++) {
        double c = 0;
        for (int64_t i = d; i < n; i += 61)
            if (clean[i] == 0)
                c += (double)x[i] * speak[i - d];
        if (c > best) {
            best = c;
            *delay = d;
        }
    }
    double xs = 0, ss = 0;
    for (int64_t i = *delay; i < n; i++)
        if (clean[i] == 0) {
            xs += (double)x[i] * speak[i - *delay];
            ss += (double)speak[i - *delay] * speak[i - *delay];
        }
    *gain = ss > 0 ? xs / ss : 0;
}

typedef struct expect {
    int64_t eligible, interrupts, backchannels, cuts, echo, noise, gain, dropped;
    double overlap_frames;
    int64_t n_reaction_048;
} expect;

/* One dialog through every stage; the sample gets the augmentation metadata. */
static flm_sample *pipeline(int idx, const flm_dialog_params *dp, const flm_augment_params *ap,
                            const flm_augment_noise_pool *pool, int *echo_checked, int *echo_ok)
{
    tdialog td;
    make_dialog(idx, &td);
    char id[64];
    snprintf(id, sizeof id, "sft/%d", idx);
    flm_error err = {0};
    flm_dialog_plan plan;
    flm_sample *s = NULL;
    if (flm_dialog_plan_make(&plan, dp, FLM_FORMAT_RTTS_FREE, &td.d, td.n, td.ntok, 21, id, &err) <
        0) {
        tap_diag("%s", err.msg);
        free_dialog(&td);
        return NULL;
    }
    int64_t n = (int64_t)plan.n_frames * SPF;
    float *listen = malloc(sizeof(float) * (size_t)n), *speak = malloc(sizeof(float) * (size_t)n);
    float *clean = malloc(sizeof(float) * (size_t)n);
    int32_t *sc = malloc(sizeof(int32_t) * FLM_N_CODEBOOKS * (size_t)plan.n_frames);
    int32_t *lc = malloc(sizeof(int32_t) * FLM_N_CODEBOOKS * (size_t)plan.n_frames);
    int64_t starts[FLM_DIALOG_MAX_TURNS], ends[FLM_DIALOG_MAX_TURNS];
    flm_augment_span spans[FLM_DIALOG_MAX_TURNS];
    int32_t n_spans = flm_dialog_user_spans(&plan, SPF, starts, ends);
    for (int32_t i = 0; i < n_spans; i++)
        spans[i] = (flm_augment_span){starts[i], ends[i]};
    flm_augment_result res = {0};
    if (flm_dialog_render(&plan, dp, (const float *const *)td.audio, td.n, listen, speak, n, &err) <
            0 ||
        (memcpy(clean, listen, sizeof(float) * (size_t)n),
         flm_augment_apply(ap, 21, id, listen, n, spans, n_spans, speak, n, pool, &res, &err)) <
            0) {
        tap_diag("%s", err.msg);
        goto done;
    }
    /* checkable: a gain above the noise, and at least 0.25 s of echo outside the user's speech
     * (an early interruption can put all of it under the user) */
    int64_t audible = 0;
    for (int64_t i = res.echo_delay_samples; res.echo_applied && i < n; i++)
        audible += clean[i] == 0 && speak[i - res.echo_delay_samples] != 0;
    if (res.echo_applied && res.echo_gain >= 0.01 && audible >= RATE / 4) {
        int64_t delay;
        double g;
        find_echo(listen, clean, speak, n, &delay, &g);
        (*echo_checked)++;
        if (delay == res.echo_delay_samples && fabs(g - res.echo_gain * res.clip_gain) < 2e-3)
            (*echo_ok)++;
        else
            tap_diag("%s: echo found at %lld samples, gain %.5f; stored %lld, %.5f x clip %.4f", id,
                     (long long)delay, g, (long long)res.echo_delay_samples, res.echo_gain,
                     res.clip_gain);
    }
    fake_encode(speak, plan.n_frames, sc);
    fake_encode(listen, plan.n_frames, lc);
    if (flm_dialog_pack(&s, &P, &plan, (const int32_t *const *)td.tok, td.ntok, sc, lc,
                        plan.n_frames, id, &err) < 0 ||
        flm_augment_result_to_meta(&res, s, &err) < 0) {
        tap_diag("%s", err.msg);
        flm_sample_destroy(&s);
    }
done:
    flm_augment_result_clear(&res);
    free(listen);
    free(speak);
    free(clean);
    free(sc);
    free(lc);
    free_dialog(&td);
    return s;
}

static int64_t meta_i(const flm_sample *s, const char *key)
{
    const flm_meta *m = flm_sample_meta_get(s, key);
    return m && m->type == FLM_META_INT ? m->i : 0;
}

static void test_pipeline(int n_dialogs)
{
    flm_recipe r;
    load_recipe("fine-tuning-2", &r);
    flm_dialog_params dp;
    flm_augment_params ap, ap_echo;
    flm_error err = {0};
    if (flm_dialog_params_from_recipe(&dp, &r, &P, &err) < 0 || augment_params(&r, &ap, &err) < 0)
        tap_diag("%s", err.msg);
    ap_echo = ap;
    ap_echo.p_echo = 1.0; /* every dialog of the echo check has one */
    flm_augment_noise_pool *pool = NULL;
    flm_augment_noise_pool_create(&pool, &err);
    float noise[48000];
    flm_rng g;
    flm_rng_init(&g, 1, "noise", "test");
    for (int i = 0; i < 48000; i++)
        noise[i] = (float)(0.1 * flm_rng_normal(&g));
    flm_augment_noise_pool_add(pool, noise, 48000, &err);

    /* echo: the stored delay and gain, found again */
    int checked = 0, ok = 0;
    for (int i = 0; i < n_dialogs / 2; i++) {
        flm_sample *s = pipeline(1000 + i, &dp, &ap_echo, pool, &checked, &ok);
        const flm_meta *m = s ? flm_sample_meta_get(s, "aug.echo_delay_samples") : NULL;
        if (!m || meta_i(s, "aug.echo") != 1)
            ok = -1000;
        flm_sample_destroy(&s);
    }
    TAP_OK(checked >= n_dialogs / 4 && ok == checked,
           "echo delay (exact) and gain (+-0.002) recovered by cross-correlation in %d of %d "
           "dialogs",
           ok, checked);

    /* index: samples written through the shard writer; stats equal what they hold */
    char dir[1024], path[1400];
    temp_dir(dir, sizeof dir, "dialog_sft");
    flm_index *idx = NULL;
    int64_t run;
    flm_shard_params shp = flm_shard_default_params(&P);
    flm_shard_writer *w = NULL;
    snprintf(path, sizeof path, "%s/shards/000000.flms", dir);
    flm_sample **ss = calloc((size_t)n_dialogs, sizeof *ss);
    flm_record_info *info = calloc((size_t)n_dialogs, sizeof *info);
    expect ex = {0};
    int n_ok = 0;
    if (flm_index_open(&idx, dir, FLM_INDEX_CREATE, &err) < 0 ||
        flm_index_begin_run(idx, "test_dialog_sft", r.json, 21, &P, &run, &err) < 0 ||
        flm_shard_writer_create(&w, path, &shp, &err) < 0)
        tap_diag("%s", err.msg);
    for (int i = 0; i < n_dialogs && w; i++) {
        int unused_checked = 0, unused_ok = 0;
        flm_sample *s = pipeline(i, &dp, &ap, pool, &unused_checked, &unused_ok);
        if (!s || flm_shard_writer_add(w, s, &info[n_ok], &err) < 0) {
            flm_sample_destroy(&s);
            continue;
        }
        ss[n_ok++] = s;
        ex.eligible += meta_i(s, "dialog.eligible");
        ex.dropped += meta_i(s, "dialog.dropped_tokens");
        ex.echo += meta_i(s, "aug.echo");
        ex.noise += meta_i(s, "aug.noise");
        ex.gain += meta_i(s, "aug.gain");
        for (int32_t e = 0; e < s->n_events; e++) {
            const flm_event *ev = &s->events[e];
            int intr = !strcmp(ev->kind, "interrupt"), bc = !strcmp(ev->kind, "backchannel");
            ex.interrupts += intr;
            ex.backchannels += bc;
            ex.cuts += !strcmp(ev->kind, "cut");
            ex.n_reaction_048 += intr && ev->value == 0.48;
            if (intr || bc)
                ex.overlap_frames += ev->n_frames;
        }
    }
    struct stat st;
    if (w && (flm_shard_writer_finish(w, &err) < 0 || stat(path, &st) < 0 ||
              flm_index_add_shard(idx, run, "shards/000000.flms", (uint64_t)st.st_size,
                                  (const flm_sample *const *)ss, info, (size_t)n_ok, NULL, NULL, 0,
                                  &err) < 0))
        tap_diag("%s", err.msg);
    TAP_EQ_INT(n_ok, n_dialogs, "every dialog packed and written");
    flm_index_dialog_report d;
    TAP_EQ_INT(flm_index_dialog_stats(idx, &d, &err), 0, "dialog stats");
    TAP_OK(d.n_dialogs == n_ok && d.n_eligible == ex.eligible && d.n_interrupts == ex.interrupts &&
               d.n_backchannels == ex.backchannels && d.n_cuts == ex.cuts &&
               d.n_dropped_tokens == ex.dropped,
           "counts: %lld dialogs, %lld eligible turns, %lld interrupts, %lld back-channels, %lld "
           "cuts, %lld dropped tokens",
           (long long)d.n_dialogs, (long long)d.n_eligible, (long long)d.n_interrupts,
           (long long)d.n_backchannels, (long long)d.n_cuts, (long long)d.n_dropped_tokens);
    double rate = ex.eligible ? (double)(ex.interrupts + ex.backchannels) / ex.eligible : 0;
    double overlap = ex.interrupts + ex.backchannels
                         ? ex.overlap_frames * 0.08 / (double)(ex.interrupts + ex.backchannels)
                         : 0;
    TAP_OK(fabs(d.interruption_rate - rate) < 1e-12 && fabs(d.mean_overlap_s - overlap) < 1e-9,
           "interruption rate %.4f, mean overlap %.4f s", d.interruption_rate, d.mean_overlap_s);
    TAP_OK(ex.interrupts > 0 && d.n_reactions == 1 && fabs(d.reaction_s[0] - 0.48) < 1e-12 &&
               d.reaction_count[0] == ex.n_reaction_048 && ex.n_reaction_048 == ex.interrupts,
           "reaction delays: 0.48 s (6 frames) x %lld", (long long)ex.interrupts);
    TAP_OK(d.n_augmented == n_ok && d.n_echo == ex.echo && d.n_noise == ex.noise &&
               d.n_gain == ex.gain && ex.echo > 0 && ex.echo < n_ok,
           "augmentation: %lld samples, %lld with echo, %lld noise, %lld gain",
           (long long)d.n_augmented, (long long)d.n_echo, (long long)d.n_noise,
           (long long)d.n_gain);
    /* the events read back from the shard are those packed */
    flm_shard_reader *rd = NULL;
    int same = flm_shard_reader_open(&rd, path, &err) == 0;
    for (int i = 0; i < n_ok && same; i++) {
        flm_sample *back = NULL;
        same = flm_shard_reader_read(rd, (uint64_t)i, &back, &err) == 0 &&
               flm_sample_equal(back, ss[i]);
        flm_sample_destroy(&back);
    }
    TAP_OK(same, "samples (tokens, metadata, events) read back equal");
    flm_shard_reader_close(&rd);
    for (int i = 0; i < n_ok; i++)
        flm_sample_destroy(&ss[i]);
    free(ss);
    free(info);
    flm_shard_writer_destroy(&w);
    flm_index_close(&idx);
    flm_augment_noise_pool_destroy(&pool);
    flm_recipe_free(&r);
}

int main(void)
{
    flm_profiles_default(&P);
    test_recipes();
    test_pipeline(getenv("FLM_TEST_FAST") ? 12 : 60);
    return tap_done();
}
