/* SFT dialog timelines: turn placement, interruption simulation, waveform rendering. See
 * flm_dialog.h. */
#include <math.h>
#include <string.h>

#include "flm_dialog.h"
#include "flm_rng.h"

flm_dialog_params flm_dialog_default_params(const flm_profiles *p)
{
    flm_dialog_params dp;
    memset(&dp, 0, sizeof dp);
    dp.sample_rate = p->codec.sample_rate;
    dp.samples_per_frame = p->codec.samples_per_frame;
    dp.sample_frames = p->model.sample_frames;
    dp.lead = 2;
    dp.gap_min_s = 0.2;
    dp.gap_max_s = 1.5;
    dp.response_gap_max_s = 0.5;
    dp.manifest_timing = 1;
    dp.p_interrupt = 0.7;
    dp.reaction_s = 0.5;
    dp.fade_s = 0.01;
    return dp;
}

static int check_params(const flm_dialog_params *dp, flm_error *err)
{
    const char *what = NULL;
    if (dp->sample_rate < 1 || dp->samples_per_frame < 1)
        what = "sample_rate and samples_per_frame must be positive";
    else if (dp->sample_frames < 1 || dp->sample_frames > FLM_MAX_FRAMES)
        what = "sample_frames outside 1..1048576";
    else if (dp->lead < 0 || dp->lead > 2)
        what = "lead outside 0..2";
    else if (dp->asr_lag < 0 || dp->asr_lag > 64)
        what = "asr_lag outside 0..64";
    else if (!(dp->gap_min_s >= 0 && dp->gap_max_s >= dp->gap_min_s && dp->gap_max_s <= 60))
        what = "gap range must satisfy 0 <= gap_min_s <= gap_max_s <= 60";
    else if (!(dp->response_gap_min_s >= 0 && dp->response_gap_max_s >= dp->response_gap_min_s &&
               dp->response_gap_max_s <= 60))
        what = "response gap range must satisfy 0 <= min <= max <= 60";
    else if (!(dp->p_interrupt >= 0 && dp->p_interrupt <= 1))
        what = "p_interrupt outside [0, 1]";
    else if (!(dp->reaction_s * dp->sample_rate >= dp->samples_per_frame && dp->reaction_s <= 10))
        what = "reaction_s must be at least one frame and at most 10 s";
    else if (!(dp->fade_s >= 0 && dp->fade_s <= dp->reaction_s))
        what = "fade_s outside [0, reaction_s]";
    return what ? flm_error_set(err, FLM_EINVAL, "dialog parameters: %s", what) : 0;
}

int flm_dialog_params_from_recipe(flm_dialog_params *dp, const flm_recipe *r, const flm_profiles *p,
                                  flm_error *err)
{
    *dp = flm_dialog_default_params(p);
    dp->sample_frames = r->sample_frames;
    dp->lead = r->lead;
    dp->asr_lag = r->asr_lag;
    dp->gap_min_s = r->gap_min_s;
    dp->gap_max_s = r->gap_max_s;
    dp->response_gap_min_s = r->response_gap_min_s;
    dp->response_gap_max_s = r->response_gap_max_s;
    dp->manifest_timing = r->manifest_timing;
    dp->p_interrupt = r->p_interrupt;
    dp->reaction_s = r->reaction_s;
    dp->fade_s = r->fade_s;
    int rc = check_params(dp, err);
    return rc < 0 ? flm_error_prefix(err, "recipe %s", r->name) : 0;
}

int flm_dialog_pick_format(const flm_recipe *r, uint64_t seed, const char *sample_id)
{
    double total = 0;
    int last = -1;
    for (int f = FLM_FORMAT_ARRT; f <= FLM_FORMAT_RTTS_FREE; f++)
        if (r->p_format[f] > 0) {
            total += r->p_format[f];
            last = f;
        }
    if (last < 0)
        return FLM_EINVAL;
    flm_rng g;
    flm_rng_init(&g, seed, sample_id, "dialog.format");
    double u = flm_rng_uniform(&g) * total;
    for (int f = FLM_FORMAT_ARRT; f < last; f++) {
        if (u < r->p_format[f])
            return f;
        u -= r->p_format[f];
    }
    return last;
}

static int32_t frames_of(double seconds, double frame_rate)
{
    return (int32_t)lround(seconds * frame_rate);
}

static int32_t draw(flm_rng *g, int32_t lo, int32_t hi)
{
    return lo + (int32_t)flm_rng_below(g, (uint32_t)(hi - lo + 1));
}

static int32_t max3(int32_t a, int32_t b, int32_t c)
{
    int32_t m = a > b ? a : b;
    return m > c ? m : c;
}

static void add_event(flm_dialog_plan *plan, const char *kind, int32_t frame, int32_t n_frames,
                      double value, int32_t turn)
{
    plan->events[plan->n_events++] = (flm_dialog_event){kind, frame, n_frames, value, turn};
}

static int check_turns(const flm_dialog *d, const int64_t *n_samples, const int32_t *n_tokens,
                       int32_t spf, const char *sample_id, flm_error *err)
{
    if (d->n_turns < 1 || d->n_turns > FLM_DIALOG_MAX_TURNS)
        return flm_error_set(err, FLM_EINVAL, "dialog %s: %d turns (1..10)", sample_id, d->n_turns);
    for (int32_t k = 0; k < d->n_turns; k++) {
        int role = d->turns[k].role;
        if ((role != FLM_DIALOG_USER && role != FLM_DIALOG_MODEL) ||
            (k > 0 && role == d->turns[k - 1].role))
            return flm_error_set(err, FLM_EINVAL,
                                 "dialog %s: turn %d: roles must alternate user/assistant",
                                 sample_id, k);
        if (n_samples[k] < 1 || n_samples[k] > (int64_t)FLM_MAX_FRAMES * spf || n_tokens[k] < 1 ||
            n_tokens[k] > FLM_MAX_FRAMES)
            return flm_error_set(err, FLM_EINVAL,
                                 "dialog %s: turn %d: %lld audio samples, %d text "
                                 "tokens (both must be > 0)",
                                 sample_id, k, (long long)n_samples[k], n_tokens[k]);
    }
    return 0;
}

/* The interruption of model turn k by user turn k + 1 at frame onset. */
static void interrupt(flm_dialog_plan *plan, const flm_dialog_params *dp, int32_t k, int32_t onset,
                      int64_t user_samples)
{
    flm_dialog_turn_plan *t = &plan->turns[k];
    const int32_t spf = dp->samples_per_frame;
    const int32_t user_frames = (int32_t)((user_samples + spf - 1) / spf);
    const int32_t speech_end = t->at + t->n_frames;
    if (user_samples < (int64_t)llround(dp->reaction_s * dp->sample_rate)) {
        /* a back-channel: over before the model would react, so the model goes on */
        int32_t end = onset + user_frames < speech_end ? onset + user_frames : speech_end;
        add_event(plan, "backchannel", onset, end - onset, (double)user_samples / dp->sample_rate,
                  k);
        plan->n_backchannels++;
        t->interrupted = 2;
        return;
    }
    const int32_t cut = onset + plan->reaction_frames;
    int32_t end = onset + user_frames < cut ? onset + user_frames : cut;
    if (end > speech_end)
        end = speech_end;
    add_event(plan, "interrupt", onset, end - onset,
              (double)plan->reaction_frames * spf / dp->sample_rate, k);
    plan->n_interrupts++;
    t->interrupted = 1;
    if (cut < speech_end) {
        t->played = cut - t->at;
        t->played_samples = (int64_t)t->played * spf;
    }
    int32_t kept = cut - t->text_at;
    t->n_text_kept = kept < 0 ? 0 : kept < t->n_text ? kept : t->n_text;
    int32_t dropped = t->n_text - t->n_text_kept;
    if (t->played < t->n_frames || dropped > 0) {
        add_event(plan, "cut", cut, t->n_frames - t->played, dropped, k);
        plan->n_dropped_tokens += dropped;
    }
}

int flm_dialog_plan_make(flm_dialog_plan *plan, const flm_dialog_params *dp, int format,
                         const flm_dialog *d, const int64_t *n_samples, const int32_t *n_tokens,
                         uint64_t seed, const char *sample_id, flm_error *err)
{
    memset(plan, 0, sizeof *plan);
    int rc = check_params(dp, err);
    if (rc < 0)
        return rc;
    if (format != FLM_FORMAT_ARRT && format != FLM_FORMAT_RTTS && format != FLM_FORMAT_RTTS_FREE)
        return flm_error_set(err, FLM_EINVAL, "dialog %s: format %d is not a dialog format",
                             sample_id, format);
    const int32_t spf = dp->samples_per_frame;
    if ((rc = check_turns(d, n_samples, n_tokens, spf, sample_id, err)) < 0)
        return rc;
    const double fr = (double)dp->sample_rate / spf;
    flm_rng gap, rgap, intr, onset_rng;
    flm_rng_init(&gap, seed, sample_id, "dialog.gap");
    flm_rng_init(&rgap, seed, sample_id, "dialog.response_gap");
    flm_rng_init(&intr, seed, sample_id, "dialog.interrupt");
    flm_rng_init(&onset_rng, seed, sample_id, "dialog.onset");
    const int32_t gmin = frames_of(dp->gap_min_s, fr), gmax = frames_of(dp->gap_max_s, fr);
    const int32_t rmin = frames_of(dp->response_gap_min_s, fr);
    const int32_t rmax = frames_of(dp->response_gap_max_s, fr);
    plan->format = format;
    plan->n_turns = d->n_turns;
    plan->reaction_frames = frames_of(dp->reaction_s, fr);
    plan->fade_samples = llround(dp->fade_s * dp->sample_rate);
    int32_t user_end = 0, speech_end = 0, text_end = 0, end = 0, pending_onset = -1;
    for (int32_t k = 0; k < d->n_turns; k++) {
        flm_dialog_turn_plan *t = &plan->turns[k];
        t->role = d->turns[k].role;
        t->n_samples = n_samples[k];
        t->n_frames = (int32_t)((n_samples[k] + spf - 1) / spf);
        t->n_tokens = n_tokens[k];
        t->text_at = t->response_at = t->asr_turn = -1;
        /* the dialog's own timing: the silence between this turn and the previous one */
        const flm_dialog_turn *in = &d->turns[k];
        int timed = dp->manifest_timing && in->start >= 0 && (k == 0 || d->turns[k - 1].start >= 0);
        int32_t own_gap = 0;
        if (timed) {
            double prev_end =
                k ? d->turns[k - 1].start + (double)n_samples[k - 1] / dp->sample_rate : 0;
            own_gap = frames_of(in->start - prev_end, fr);
            own_gap = own_gap < 0 ? 0 : own_gap;
            plan->manifest_timing = 1;
        }
        if (t->role == FLM_DIALOG_USER) {
            if (pending_onset >= 0) {
                t->at = pending_onset;
                pending_onset = -1;
            } else {
                /* after the model's speech and its text (no user speech under a monologue) */
                int32_t base = max3(speech_end, text_end, user_end);
                t->at = base + (timed ? own_gap : draw(&gap, gmin, gmax));
            }
            user_end = t->at + t->n_frames;
            if (format == FLM_FORMAT_ARRT && k + 1 == d->n_turns) {
                /* a last user turn still gets its transcript span */
                t->asr_turn = k;
                t->text_at = user_end + dp->asr_lag;
                if (t->text_at < text_end) {
                    t->text_at = text_end;
                    plan->n_conflicts++;
                }
                t->n_text = t->n_text_kept = n_tokens[k] + 2;
                text_end = t->text_at + t->n_text;
            }
            end = max3(end, user_end, text_end);
            continue;
        }
        const int32_t u = k - 1; /* the user turn answered (alternation), -1 if none */
        int32_t base = u < 0 ? (timed ? own_gap : draw(&gap, gmin, gmax)) : user_end;
        t->n_text = n_tokens[k];
        if (format == FLM_FORMAT_ARRT) {
            t->text_at = base + (u >= 0 ? dp->asr_lag : 0);
            t->asr_turn = u;
            t->n_text += u >= 0 ? n_tokens[u] + 2 : 1;
            t->response_at = t->text_at + t->n_text - n_tokens[k];
        } else {
            int32_t g = u < 0 ? 0 : timed ? own_gap - dp->lead : draw(&rgap, rmin, rmax);
            t->text_at = t->response_at = base + (g > 0 ? g : 0);
        }
        t->at = t->response_at + dp->lead;
        int32_t shift = max3(0, text_end - t->text_at, speech_end - t->at);
        if (shift > 0) {
            t->text_at += shift;
            t->response_at += shift;
            t->at += shift;
            /* answering a back-channel while still speaking is the expected case, not a conflict */
            if (!(u >= 1 && plan->turns[u - 1].interrupted == 2))
                plan->n_conflicts++;
        }
        t->played = t->n_frames;
        t->played_samples = t->n_samples;
        t->n_text_kept = t->n_text;
        if (format == FLM_FORMAT_RTTS_FREE && k + 1 < d->n_turns) {
            plan->n_eligible++;
            if (flm_rng_bernoulli(&intr, dp->p_interrupt)) {
                pending_onset = t->at + (int32_t)flm_rng_below(&onset_rng, (uint32_t)t->n_frames);
                interrupt(plan, dp, k, pending_onset, n_samples[k + 1]);
            }
        }
        speech_end = t->at + t->played;
        text_end = t->text_at + t->n_text_kept;
        end = max3(end, speech_end, text_end);
    }
    if (end > dp->sample_frames)
        return flm_error_set(err, FLM_ERANGE,
                             "dialog %s: %d frames (%.1f s) do not fit in a sample of %d frames",
                             sample_id, end, end / fr, dp->sample_frames);
    end += draw(&gap, gmin, gmax);
    plan->n_frames = end < dp->sample_frames ? end : dp->sample_frames;
    return 0;
}

int32_t flm_dialog_user_spans(const flm_dialog_plan *plan, int32_t samples_per_frame,
                              int64_t *starts, int64_t *ends)
{
    int32_t n = 0;
    for (int32_t k = 0; k < plan->n_turns; k++) {
        const flm_dialog_turn_plan *t = &plan->turns[k];
        if (t->role != FLM_DIALOG_USER)
            continue;
        starts[n] = (int64_t)t->at * samples_per_frame;
        ends[n++] = (int64_t)t->at * samples_per_frame + t->n_samples;
    }
    return n;
}

int flm_dialog_render(const flm_dialog_plan *plan, const flm_dialog_params *dp,
                      const float *const *audio, const int64_t *n_samples, float *listen,
                      float *speak, int64_t n, flm_error *err)
{
    const int32_t spf = dp->samples_per_frame;
    if (n != (int64_t)plan->n_frames * spf)
        return flm_error_set(err, FLM_EINVAL, "render: tracks of %lld samples, the plan needs %lld",
                             (long long)n, (long long)plan->n_frames * spf);
    memset(listen, 0, sizeof(float) * (size_t)n);
    memset(speak, 0, sizeof(float) * (size_t)n);
    for (int32_t k = 0; k < plan->n_turns; k++) {
        const flm_dialog_turn_plan *t = &plan->turns[k];
        int64_t at = (int64_t)t->at * spf;
        int64_t m = t->role == FLM_DIALOG_USER ? t->n_samples : t->played_samples;
        if (n_samples[k] != t->n_samples || at + m > n)
            return flm_error_set(err, FLM_EINVAL,
                                 "render: turn %d has %lld samples, planned with %lld", k,
                                 (long long)n_samples[k], (long long)t->n_samples);
        float *dst = (t->role == FLM_DIALOG_USER ? listen : speak) + at;
        memcpy(dst, audio[k], sizeof(float) * (size_t)m);
        if (m == t->n_samples)
            continue;
        /* cut: a linear fade reaching zero at the cut */
        int64_t f = plan->fade_samples < m ? plan->fade_samples : m;
        for (int64_t i = 0; i < f; i++)
            dst[m - f + i] *= (float)((double)(f - 1 - i) / (double)f);
    }
    return 0;
}
