/* Recorded two-channel conversations: text placement, parts, events, packing. See
 * flm_conversation.h. */
#include <math.h>
#include <string.h>

#include "duplex.h"
#include "flm_alloc.h"
#include "flm_conversation.h"

flm_conv_params flm_conv_params_from_recipe(const flm_recipe *r, const flm_profiles *p)
{
    const double fr = (double)p->codec.sample_rate / p->codec.samples_per_frame;
    flm_conv_params cp = {0};
    cp.sample_frames = r->sample_frames;
    cp.lead = r->lead;
    cp.reaction_s = r->reaction_s;
    cp.reaction_frames = (int32_t)lround(r->reaction_s * fr);
    cp.yield_frames = (int32_t)lround(r->yield_s * fr);
    cp.frame_s = 1.0 / fr;
    return cp;
}

void flm_conv_plan_free(flm_conv_plan *plan)
{
    flm_free(plan->text_at);
    flm_free(plan->n_tokens);
    flm_free(plan->events);
    flm_free(plan->parts);
    memset(plan, 0, sizeof *plan);
}

static int32_t min32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

static int32_t max32(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

static int check_spans(const flm_conv_span *s, int32_t n, int32_t n_frames, const char *side,
                       const char *id, flm_error *err)
{
    for (int32_t i = 0; i < n; i++) {
        if (s[i].start < 0 || s[i].end <= s[i].start || s[i].end > n_frames)
            return flm_error_set(err, FLM_EINVAL,
                                 "conversation %s: %s sentence %d: frames [%d, %d) are not inside "
                                 "the recording's %d frames",
                                 id, side, i, s[i].start, s[i].end, n_frames);
        if (i && s[i].start < s[i - 1].end - 1)
            return flm_error_set(err, FLM_EINVAL,
                                 "conversation %s: %s sentence %d starts at frame %d, before the "
                                 "previous one ends (%d)",
                                 id, side, i, s[i].start, s[i - 1].end);
    }
    return 0;
}

/* Whether a cut at frame c falls inside a user sentence. */
static int inside_user(const flm_conv_span *user, int32_t n_user, int32_t c)
{
    for (int32_t u = 0; u < n_user; u++)
        if (user[u].start < c && c < user[u].end)
            return 1;
    return 0;
}

/* A side's stretches of speech: its sentences merged across pauses shorter than
 * FLM_CONV_STRETCH_GAP frames. */
static int32_t stretches(const flm_conv_span *s, int32_t n, double frame_s, flm_conv_span *out)
{
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        flm_conv_span x = s[i];
        if (x.t1 < 0) /* no seconds: the frames */
            x.t0 = x.start * frame_s, x.t1 = x.end * frame_s;
        if (k && x.start < out[k - 1].end + FLM_CONV_STRETCH_GAP) {
            out[k - 1].end = max32(out[k - 1].end, x.end);
            out[k - 1].t1 = out[k - 1].t1 > x.t1 ? out[k - 1].t1 : x.t1;
        } else {
            out[k++] = x;
        }
    }
    return k;
}

static int push_event(flm_conv_plan *plan, size_t *cap, const char *kind, int32_t frame,
                      int32_t n_frames, double value)
{
    if (flm_grow((void **)&plan->events, cap, (size_t)plan->n_events + 1, sizeof *plan->events) < 0)
        return -1;
    plan->events[plan->n_events++] = (flm_conv_event){kind, frame, n_frames, value};
    return 0;
}

static int events_make(flm_conv_plan *plan, const flm_conv_params *cp, const flm_conv_span *model,
                       int32_t n_model, const flm_conv_span *user, int32_t n_user)
{
    flm_conv_span *ms = flm_malloc(sizeof *ms * ((size_t)n_model + (size_t)n_user + 1));
    if (!ms)
        return -1;
    flm_conv_span *us = ms + n_model;
    const int32_t nm = stretches(model, n_model, cp->frame_s, ms);
    const int32_t nu = stretches(user, n_user, cp->frame_s, us);
    size_t cap = 0;
    int rc = 0;
    /* the user starts while the model speaks */
    for (int32_t u = 0, m = 0; u < nu && rc == 0; u++) {
        const flm_conv_span U = us[u];
        while (m < nm && ms[m].end <= U.start)
            m++;
        if (m == nm || ms[m].start > U.start)
            continue;
        const flm_conv_span M = ms[m];
        const int32_t overlap = min32(U.end, M.end) - U.start;
        const double len = U.t1 - U.t0;
        if (len < cp->reaction_s && M.end > U.end)
            rc = push_event(plan, &cap, "backchannel", U.start, U.end - U.start,
                            nearbyint(len * 1000) / 1000);
        else if (len >= cp->reaction_s && M.end - U.start <= cp->yield_frames &&
                 (m + 1 == nm || ms[m + 1].start >= U.end))
            rc = push_event(plan, &cap, "interrupt", U.start, overlap,
                            (M.end - U.start) * cp->frame_s);
        else
            rc = push_event(plan, &cap, "overlap", U.start, overlap, overlap * cp->frame_s);
    }
    /* the model starts while the user speaks */
    for (int32_t m = 0, u = 0; m < nm && rc == 0; m++) {
        while (u < nu && us[u].end <= ms[m].start)
            u++;
        if (u < nu && us[u].start < ms[m].start) {
            int32_t n = min32(us[u].end, ms[m].end) - ms[m].start;
            rc = push_event(plan, &cap, "overlap", ms[m].start, n, n * cp->frame_s);
        }
    }
    flm_free(ms);
    /* by frame (insertion sort: both lists are already in order) */
    for (int32_t i = 1; i < plan->n_events; i++) {
        flm_conv_event e = plan->events[i];
        int32_t j = i;
        for (; j > 0 && plan->events[j - 1].frame > e.frame; j--)
            plan->events[j] = plan->events[j - 1];
        plan->events[j] = e;
    }
    return rc;
}

/* The end of the part starting at s0: see the header. blk_a/blk_b: the blocks, [a, b). */
static int32_t part_end(const flm_conv_params *cp, const int32_t *blk_a, const int32_t *blk_b,
                        int32_t n_blk, const flm_conv_span *user, int32_t n_user, int32_t s0,
                        int32_t total, int32_t *split_user)
{
    const int32_t limit = s0 + cp->sample_frames;
    *split_user = 0;
    if (limit >= total)
        return total;
    /* the last block ending in (s0, limit] */
    int32_t k = -1;
    for (int32_t b = 0; b < n_blk && blk_b[b] <= limit; b++)
        if (blk_b[b] > s0)
            k = b;
    if (k >= 0) {
        for (int32_t b = k; b >= 0 && blk_b[b] > s0; b--) {
            int32_t hi = min32(b + 1 < n_blk ? blk_a[b + 1] : total, limit);
            for (int32_t c = blk_b[b]; c <= hi; c++)
                if (!inside_user(user, n_user, c))
                    return c;
        }
        *split_user = 1;
        return blk_b[k];
    }
    /* a pause longer than a sample: the next block starts after s0 (a block longer than a
     * sample was refused before) */
    int32_t hi = limit;
    for (int32_t b = 0; b < n_blk; b++)
        if (blk_a[b] >= s0) {
            hi = min32(hi, blk_a[b]);
            break;
        }
    for (int32_t c = hi; c > s0; c--)
        if (!inside_user(user, n_user, c))
            return c;
    *split_user = 1;
    return hi;
}

/* Turn counts of a part: its sentences of both sides in start order, runs of one side. */
static void count_turns(flm_conv_part *P, const flm_conv_span *model, const flm_conv_span *user)
{
    int32_t i = P->first, u = P->first_user, last = 0, prev_model = 0;
    while (i < P->first + P->n || u < P->first_user + P->n_user) {
        int is_model = u >= P->first_user + P->n_user ||
                       (i < P->first + P->n && model[i].start <= user[u].start);
        int side = is_model ? 2 : 1;
        if (is_model)
            i++;
        else
            u++;
        if (side == last)
            continue;
        P->turns++;
        if (is_model)
            P->model_turns++;
        else
            P->user_turns++;
        if (!is_model && prev_model)
            P->eligible++;
        prev_model = is_model;
        last = side;
    }
}

int flm_conv_plan_make(flm_conv_plan *plan, const flm_conv_params *cp, const flm_conv_span *model,
                       const int32_t *n_tokens, int32_t n_model, const flm_conv_span *user,
                       int32_t n_user, int32_t n_frames, const char *id, flm_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (cp->sample_frames < 1 || cp->lead < 0 || !(cp->reaction_s > 0) || cp->yield_frames < 1 ||
        !(cp->frame_s > 0))
        return flm_error_set(err, FLM_EINVAL, "conversation %s: bad parameters", id);
    if (n_model < 1 || n_user < 0 || n_frames < 1)
        return flm_error_set(err, FLM_EINVAL,
                             "conversation %s: %d model sentences, %d frames (both must be > 0)",
                             id, n_model, n_frames);
    int rc;
    if ((rc = check_spans(model, n_model, n_frames, "model", id, err)) < 0 ||
        (rc = check_spans(user, n_user, n_frames, "user", id, err)) < 0)
        return rc;
    for (int32_t i = 0; i < n_model; i++)
        if (n_tokens[i] < 1 || n_tokens[i] > FLM_MAX_FRAMES)
            return flm_error_set(err, FLM_EINVAL, "conversation %s: model sentence %d: %d tokens",
                                 id, i, n_tokens[i]);
    int32_t *blk_a = flm_malloc(sizeof(int32_t) * (size_t)n_model);
    int32_t *blk_b = flm_malloc(sizeof(int32_t) * (size_t)n_model);
    plan->text_at = flm_malloc(sizeof(int32_t) * (size_t)n_model);
    plan->n_tokens = flm_malloc(sizeof(int32_t) * (size_t)n_model);
    if (!blk_a || !blk_b || !plan->text_at || !plan->n_tokens) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    plan->n_model = n_model;
    plan->n_user = n_user;
    plan->reaction_frames = cp->reaction_frames;
    memcpy(plan->n_tokens, n_tokens, sizeof(int32_t) * (size_t)n_model);
    /* text, and the blocks of activity */
    int32_t n_blk = 0, text_end = 0;
    for (int32_t i = 0; i < n_model; i++) {
        int32_t at = max32(max32(model[i].start - cp->lead, text_end), 0);
        plan->text_at[i] = at;
        text_end = at + n_tokens[i];
        int32_t a = min32(at, model[i].start), b = max32(model[i].end, text_end);
        if (n_blk && a < blk_b[n_blk - 1])
            blk_b[n_blk - 1] = max32(blk_b[n_blk - 1], b);
        else
            blk_a[n_blk] = a, blk_b[n_blk++] = b;
    }
    for (int32_t b = 0; b < n_blk; b++)
        if (blk_b[b] - blk_a[b] > cp->sample_frames) {
            rc = flm_error_set(err, FLM_ERANGE,
                               "conversation %s: the model side speaks from frame %d to %d "
                               "(%.1f s) without a pause its text allows a cut in; a sample holds "
                               "%d frames",
                               id, blk_a[b], blk_b[b], (blk_b[b] - blk_a[b]) * cp->frame_s,
                               cp->sample_frames);
            goto done;
        }
    plan->n_frames = max32(n_frames, blk_b[n_blk - 1]);
    if (events_make(plan, cp, model, n_model, user, n_user) < 0) {
        rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        goto done;
    }
    /* parts */
    size_t cap = 0;
    int32_t i = 0, u = 0, e = 0;
    for (int32_t s0 = 0; s0 < plan->n_frames;) {
        int32_t split;
        int32_t s1 = part_end(cp, blk_a, blk_b, n_blk, user, n_user, s0, plan->n_frames, &split);
        if (flm_grow((void **)&plan->parts, &cap, (size_t)plan->n_parts + 1, sizeof *plan->parts) <
            0) {
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
            goto done;
        }
        flm_conv_part *P = &plan->parts[plan->n_parts++];
        memset(P, 0, sizeof *P);
        P->start = s0;
        P->end = s1;
        P->split_user = split;
        P->first = i;
        while (i < n_model && model[i].start < s1)
            i++;
        P->n = i - P->first;
        P->first_user = u;
        while (u < n_user && user[u].start < s1)
            u++;
        P->n_user = u - P->first_user;
        P->first_event = e;
        while (e < plan->n_events && plan->events[e].frame < s1) {
            flm_conv_event *ev = &plan->events[e++];
            if (ev->frame + ev->n_frames > s1) /* a stretch may go on past a cut */
                ev->n_frames = s1 - ev->frame;
            const char *k = ev->kind;
            P->interrupts += !strcmp(k, "interrupt");
            P->backchannels += !strcmp(k, "backchannel");
            P->overlaps += !strcmp(k, "overlap");
        }
        P->n_events = e - P->first_event;
        for (int32_t j = P->first; j < P->first + P->n; j++)
            P->short_leads += plan->text_at[j] > model[j].start - cp->lead;
        count_turns(P, model, user);
        s0 = s1;
    }
    rc = 0;
done:
    flm_free(blk_a);
    flm_free(blk_b);
    if (rc < 0)
        flm_conv_plan_free(plan);
    return rc;
}

int32_t flm_conv_user_spans(const flm_conv_plan *plan, int32_t k, const flm_conv_span *user,
                            int32_t samples_per_frame, int64_t *starts, int64_t *ends)
{
    const flm_conv_part *P = &plan->parts[k];
    int32_t n = 0;
    for (int32_t u = 0; u < plan->n_user; u++) {
        int32_t a = max32(user[u].start, P->start), b = min32(user[u].end, P->end);
        if (a >= b)
            continue;
        int64_t sa = (int64_t)(a - P->start) * samples_per_frame;
        int64_t sb = (int64_t)(b - P->start) * samples_per_frame;
        if (n && sa < ends[n - 1]) { /* sentences sharing a frame: one span */
            ends[n - 1] = sb > ends[n - 1] ? sb : ends[n - 1];
            continue;
        }
        starts[n] = sa;
        ends[n++] = sb;
    }
    return n;
}

int flm_conv_pack(flm_sample **out, const flm_profiles *p, const flm_conv_plan *plan, int32_t k,
                  const int32_t *const *tokens, const int32_t *speak_codes,
                  const int32_t *listen_codes, int32_t n_frames, const char *sample_id,
                  flm_error *err)
{
    *out = NULL;
    if (k < 0 || k >= plan->n_parts)
        return flm_error_set(err, FLM_EINVAL, "conversation %s: no part %d", sample_id, k);
    const flm_conv_part *P = &plan->parts[k];
    if (n_frames != P->end - P->start)
        return flm_error_set(err, FLM_EINVAL, "conversation %s: codes of %d frames, part %d has %d",
                             sample_id, n_frames, k, P->end - P->start);
    for (int32_t i = P->first; i < P->first + P->n; i++)
        for (int32_t j = 0; j < plan->n_tokens[i]; j++) {
            int32_t v = tokens[i][j];
            if (!duplex_text_token_ok(p, v))
                return flm_error_set(err, FLM_EINVAL,
                                     "conversation %s: sentence %d: text token %d is %d (out of "
                                     "the vocabulary or a control token)",
                                     sample_id, i, j, v);
        }
    flm_sample *s = NULL;
    int rc =
        duplex_check_codes(p, speak_codes, listen_codes, n_frames, "conversation", sample_id, err);
    if (rc < 0 || (rc = duplex_sample_new(&s, p, speak_codes, listen_codes, n_frames, err)) < 0)
        return rc;
    for (int32_t i = P->first; i < P->first + P->n; i++)
        for (int32_t j = 0; j < plan->n_tokens[i]; j++)
            FLM_TOK(s, FLM_CH_TEXT, plan->text_at[i] - P->start + j) = tokens[i][j];
    flm_sample_default_classes(s, p->vocab.text_wait, p->codec.aud_empty, p->codec.aud_pad);
    s->duration_s = n_frames * (double)p->codec.samples_per_frame / p->codec.sample_rate;
    int bad = flm_sample_set_id(s, sample_id) || flm_sample_set_style(s, "conversation") ||
              flm_sample_meta_set_text(s, "dialog.format", "conversation") ||
              flm_sample_meta_set_int(s, "dialog.turns", P->turns) ||
              flm_sample_meta_set_int(s, "dialog.user_turns", P->user_turns) ||
              flm_sample_meta_set_int(s, "dialog.model_turns", P->model_turns) ||
              flm_sample_meta_set_int(s, "dialog.eligible", P->eligible) ||
              flm_sample_meta_set_int(s, "dialog.interrupts", P->interrupts) ||
              flm_sample_meta_set_int(s, "dialog.backchannels", P->backchannels) ||
              flm_sample_meta_set_int(s, "dialog.dropped_tokens", 0) ||
              flm_sample_meta_set_int(s, "dialog.conflicts", 0) ||
              flm_sample_meta_set_int(s, "dialog.reaction_frames", plan->reaction_frames) ||
              flm_sample_meta_set_text(s, "dialog.timing", "recording") ||
              flm_sample_meta_set_int(s, "conversation.part", k) ||
              flm_sample_meta_set_int(s, "conversation.parts", plan->n_parts) ||
              flm_sample_meta_set_int(s, "conversation.start_frame", P->start) ||
              flm_sample_meta_set_int(s, "conversation.sentences", P->n) ||
              flm_sample_meta_set_int(s, "conversation.user_sentences", P->n_user) ||
              flm_sample_meta_set_int(s, "conversation.short_leads", P->short_leads) ||
              flm_sample_meta_set_int(s, "conversation.overlaps", P->overlaps) ||
              flm_sample_meta_set_int(s, "conversation.split_user", P->split_user);
    for (int32_t e = P->first_event; e < P->first_event + P->n_events && !bad; e++) {
        const flm_conv_event *ev = &plan->events[e];
        bad = flm_sample_add_event(s, ev->kind, ev->frame - P->start, ev->n_frames, ev->value) != 0;
    }
    if (bad) {
        flm_sample_destroy(&s);
        return flm_error_set(err, FLM_ENOMEM, "out of memory packing %s", sample_id);
    }
    *out = s;
    return 0;
}
