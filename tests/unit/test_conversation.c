/* Recorded conversations (include/flm_conversation.h): text placement, short leads, parts cut
 * at the model's pauses (mutual silence first), events by kind, packing, bad inputs; and the
 * invariants over 2000 random conversations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flm_conversation.h"
#include "flm_rng.h"
#include "tap.h"

static flm_profiles P;

static flm_conv_params params(int32_t sample_frames)
{
    flm_conv_params cp = {sample_frames, 2, 0.5, 6, 12, 0.08};
    return cp;
}

/* A span with no seconds (the frames are used). */
static flm_conv_span sp(int32_t a, int32_t b)
{
    return (flm_conv_span){a, b, -1, -1};
}

static void test_text(void)
{
    flm_conv_params cp = params(1000);
    flm_conv_plan plan;
    flm_error err = {0};
    /* sentence 0 at frame 1 (lead clipped at 0), 1 at 20 (full lead), 2 at 23 right after a
     * sentence of 10 tokens (pushed: lead -7), 3 at 60 */
    flm_conv_span m[4] = {sp(1, 10), sp(20, 22), sp(23, 30), sp(60, 70)};
    int32_t nt[4] = {3, 10, 2, 4};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m, nt, 4, NULL, 0, 100, "t", &err), 0, "plan");
    TAP_OK(plan.text_at[0] == 0 && plan.text_at[1] == 18 && plan.text_at[2] == 28 &&
               plan.text_at[3] == 58,
           "text at max(start - lead, previous text end, 0): %d %d %d %d", plan.text_at[0],
           plan.text_at[1], plan.text_at[2], plan.text_at[3]);
    TAP_EQ_INT(plan.n_parts, 1, "one part");
    TAP_EQ_INT(plan.parts[0].short_leads, 2, "short leads: the first (frame 0) and the pushed one");
    TAP_OK(plan.parts[0].start == 0 && plan.parts[0].end == 100, "the part is the recording");
    /* text running past the recording: the part grows to hold it */
    flm_conv_plan_free(&plan);
    flm_conv_span m2[1] = {sp(95, 99)};
    int32_t nt2[1] = {12};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m2, nt2, 1, NULL, 0, 100, "t", &err), 0, "plan");
    TAP_EQ_INT(plan.parts[plan.n_parts - 1].end, 105, "the last text's end (93 + 12)");
    flm_conv_plan_free(&plan);
}

static void test_parts(void)
{
    flm_conv_params cp = params(100);
    flm_conv_plan plan;
    flm_error err = {0};
    /* model blocks [8, 40) [78, 90) [150, 160); user [45, 70) [88, 120) */
    flm_conv_span m[3] = {sp(10, 40), sp(80, 90), sp(152, 160)};
    int32_t nt[3] = {5, 5, 5};
    flm_conv_span u[2] = {sp(45, 70), sp(88, 120)};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m, nt, 3, u, 2, 200, "p", &err), 0, "plan");
    /* part 0: [0, 90): block [78, 90) is the last to fit; 90 is inside user [88, 120); the
     * pause goes to 150, so the cut is the first frame outside user speech: 120 > 100: too late,
     * then the previous block's pause [40, 78): 40 */
    TAP_EQ_INT(plan.n_parts, 3, "three parts");
    TAP_OK(plan.parts[0].start == 0 && plan.parts[0].end == 40 && !plan.parts[0].split_user,
           "part 0 ends at 40 (mutual silence in the last pause that fits): [%d, %d)",
           plan.parts[0].start, plan.parts[0].end);
    TAP_OK(plan.parts[1].start == 40 && plan.parts[1].end == 120 && !plan.parts[1].split_user,
           "part 1 ends at 120, when the user's turn after the model's is over: [%d, %d)",
           plan.parts[1].start, plan.parts[1].end);
    TAP_OK(plan.parts[2].start == 120 && plan.parts[2].end == 200, "part 2 to the end");
    TAP_OK(plan.parts[0].first == 0 && plan.parts[0].n == 1 && plan.parts[1].n == 1 &&
               plan.parts[2].first == 2,
           "each model sentence in its part");
    flm_conv_plan_free(&plan);
    /* the only cut in reach is inside a user sentence: split_user */
    flm_conv_span m3[2] = {sp(10, 40), sp(90, 95)};
    flm_conv_span u3[1] = {sp(30, 150)};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m3, nt, 2, u3, 1, 300, "p", &err), 0, "plan");
    TAP_OK(plan.parts[0].end == 95 && plan.parts[0].split_user,
           "every frame in reach inside the user's turn: cut at the last block's end, split_user");
    flm_conv_plan_free(&plan);
    /* a pause longer than a sample: cut at the last frame in reach outside user speech */
    flm_conv_span m4[2] = {sp(10, 20), sp(280, 290)};
    flm_conv_span u4[1] = {sp(150, 205)};
    cp = params(200);
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m4, nt, 2, u4, 1, 300, "p", &err), 0, "plan");
    TAP_OK(plan.n_parts == 3 && plan.parts[0].end == 20 && plan.parts[1].end == 220,
           "the model's pause: [0, 20), [20, 220) (the latest cut in reach), [220, 300): %d %d",
           plan.parts[0].end, plan.parts[1].end);
    flm_conv_plan_free(&plan);
    flm_conv_span m5[1] = {sp(450, 460)};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m5, nt, 1, u4, 1, 500, "p", &err), 0, "plan");
    TAP_OK(plan.n_parts == 3 && plan.parts[0].end == 150 && plan.parts[1].end == 350,
           "silence longer than a sample: cut before the user speaks (150), then at 350: %d %d",
           plan.parts[0].end, plan.n_parts > 1 ? plan.parts[1].end : -1);
    flm_conv_plan_free(&plan);
    /* a block longer than a sample */
    cp = params(50);
    flm_conv_span m6[2] = {sp(0, 30), sp(31, 60)};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m6, nt, 2, NULL, 0, 100, "long", &err), FLM_ERANGE,
               "a block of 60 frames in samples of 50: FLM_ERANGE");
    TAP_CONTAINS(err.msg, "conversation long: the model side speaks from frame 0 to 60 (4.8 s)",
                 "says where");
}

static void test_events(void)
{
    flm_conv_params cp = params(1000);
    flm_conv_plan plan;
    flm_error err = {0};
    /* model [10, 50) [48, 60): one stretch [10, 60) (they share a frame); [100, 150); [200, 260)
     * user: [55, 80) interrupt (the model stops 5 frames later, 0.4 s <= yield, and is silent
     * until 100 >= 80); [110, 114) with 0.3 s of speech: back-channel; [120, 170) overlap (the
     * model goes on 30 frames); model [200, 260) starts under user [190, 210): overlap */
    flm_conv_span m[4] = {sp(10, 50), sp(49, 60), sp(100, 150), sp(200, 260)};
    int32_t nt[4] = {2, 2, 2, 2};
    flm_conv_span u[4] = {sp(55, 80), {110, 114, 8.85, 9.15}, sp(120, 170), sp(190, 210)};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m, nt, 4, u, 4, 300, "e", &err), 0, "plan");
    TAP_EQ_INT(plan.n_events, 4, "four events");
    const char *kinds[4] = {"interrupt", "backchannel", "overlap", "overlap"};
    int32_t frames[4] = {55, 110, 120, 200}, lens[4] = {5, 4, 30, 10};
    double values[4] = {5 * 0.08, 0.3, 30 * 0.08, 10 * 0.08};
    for (int i = 0; i < 4 && i < plan.n_events; i++) {
        const flm_conv_event *e = &plan.events[i];
        TAP_OK(!strcmp(e->kind, kinds[i]) && e->frame == frames[i] && e->n_frames == lens[i] &&
                   e->value > values[i] - 1e-9 && e->value < values[i] + 1e-9,
               "event %d: %s at %d for %d, %g (want %s at %d for %d, %g)", i, e->kind, e->frame,
               e->n_frames, e->value, kinds[i], frames[i], lens[i], values[i]);
    }
    const flm_conv_part *p0 = &plan.parts[0];
    TAP_OK(p0->interrupts == 1 && p0->backchannels == 1 && p0->overlaps == 2,
           "the part counts them");
    /* turns by start: M U M U U(bc) U M... model [10..] user 55, model 100, user 110, 120, 190,
     * model 200: M U M U M = 5 turns, 2 eligible (a model turn followed by a user turn) */
    TAP_OK(p0->turns == 5 && p0->model_turns == 3 && p0->user_turns == 2 && p0->eligible == 2,
           "turns %d (model %d, user %d), eligible %d", p0->turns, p0->model_turns, p0->user_turns,
           p0->eligible);
    /* stretches: a pause under 3 frames does not end one, 3 frames do */
    for (int gap = 2; gap <= 3; gap++) {
        flm_conv_plan_free(&plan);
        flm_conv_span mg[2] = {sp(10, 50), sp(50 + gap, 100)};
        flm_conv_span ug[1] = {sp(51, 80)};
        TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, mg, nt, 2, ug, 1, 120, "g", &err), 0, "plan");
        TAP_OK(plan.n_events == 1 && !strcmp(plan.events[0].kind, "overlap") &&
                   plan.events[0].frame == (gap == 2 ? 51 : 53),
               "a pause of %d frames: the user's onset at 51 is %s", gap,
               gap == 2 ? "under the model's stretch (overlap at 51)"
                        : "in the model's pause (the model's onset at 53 is the overlap)");
    }
    /* a long user turn where the model takes more than yield to stop: overlap, not interrupt */
    flm_conv_plan_free(&plan);
    flm_conv_span m2[1] = {sp(10, 50)};
    flm_conv_span u2[1] = {sp(30, 60)};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m2, nt, 1, u2, 1, 100, "e", &err), 0, "plan");
    TAP_OK(plan.n_events == 1 && !strcmp(plan.events[0].kind, "overlap") &&
               plan.events[0].n_frames == 20,
           "the model goes on 20 frames (> yield 12): overlap");
    flm_conv_plan_free(&plan);
}

static void test_pack(void)
{
    flm_conv_params cp = params(60);
    flm_conv_plan plan;
    flm_error err = {0};
    flm_conv_span m[2] = {sp(10, 20), sp(70, 80)};
    flm_conv_span u[1] = {sp(15, 30)};
    int32_t nt[2] = {3, 2}, t0[3] = {100, 101, 102}, t1[2] = {200, 201};
    const int32_t *tok[2] = {t0, t1};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m, nt, 2, u, 1, 90, "c", &err), 0, "plan");
    TAP_EQ_INT(plan.n_parts, 2, "two parts");
    const flm_conv_part *pt = &plan.parts[1];
    int32_t len = pt->end - pt->start;
    int32_t *sc = calloc((size_t)len * 8, sizeof *sc), *lc = calloc((size_t)len * 8, sizeof *lc);
    for (int32_t i = 0; i < len * 8; i++)
        sc[i] = i % 2048, lc[i] = (i * 7) % 2048;
    flm_sample *s = NULL;
    TAP_EQ_INT(flm_conv_pack(&s, &P, &plan, 1, tok, sc, lc, len, "c.part1", &err), 0,
               "pack part 1");
    if (s) {
        int32_t at = plan.text_at[1] - pt->start;
        TAP_OK(FLM_TOK(s, FLM_CH_TEXT, at) == 200 && FLM_TOK(s, FLM_CH_TEXT, at + 1) == 201 &&
                   FLM_TOK(s, FLM_CH_TEXT, at - 1) == P.vocab.text_wait && at == 70 - 2 - pt->start,
               "sentence 1's tokens at its part's frame %d, lead 2", at);
        TAP_OK(FLM_TOK(s, FLM_CH_SPEAK + 3, 5) == sc[3 * len + 5] &&
                   FLM_TOK(s, FLM_CH_LISTEN + 7, 2) == lc[7 * len + 2],
               "codes on their channels");
        TAP_EQ_STR(s->style, "conversation", "style");
        const flm_meta *mm = flm_sample_meta_get(s, "conversation.start_frame");
        TAP_OK(mm && mm->i == pt->start, "start_frame metadata");
        flm_sample_destroy(&s);
    }
    sc[0] = 5000;
    TAP_EQ_INT(flm_conv_pack(&s, &P, &plan, 1, tok, sc, lc, len, "c.part1", &err), FLM_EINVAL,
               "a code out of the codebook");
    TAP_CONTAINS(err.msg, "speak code 5000 at codebook 0 frame 0", "named");
    TAP_EQ_INT(flm_conv_pack(&s, &P, &plan, 1, tok, sc, lc, len - 1, "c.part1", &err), FLM_EINVAL,
               "codes of another length");
    free(sc), free(lc);
    flm_conv_plan_free(&plan);
    /* bad inputs */
    flm_conv_span bad[2] = {sp(10, 20), sp(5, 8)};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, bad, nt, 2, NULL, 0, 90, "b", &err), FLM_EINVAL,
               "sentences out of order");
    TAP_CONTAINS(err.msg, "model sentence 1 starts at frame 5, before the previous one ends",
                 "named");
    flm_conv_span past[1] = {sp(80, 95)};
    TAP_EQ_INT(flm_conv_plan_make(&plan, &cp, m, nt, 1, past, 1, 90, "b", &err), FLM_EINVAL,
               "a user sentence past the recording");
    TAP_CONTAINS(err.msg, "user sentence 0: frames [80, 95) are not inside the recording's 90",
                 "named");
}

/* Invariants over random conversations: parts tile the recording, none longer than a sample
 * (the last one only for trailing text), no model sentence's text or speech crosses a cut,
 * texts never overlap, every event inside its part and counted once. */
static void test_random(int n)
{
    int bad = 0, errs = 0, parts = 0, events = 0;
    for (int it = 0; it < n && bad < 5; it++) {
        char id[32];
        snprintf(id, sizeof id, "r%d", it);
        flm_rng g;
        flm_rng_init(&g, 11, id, "test");
        int32_t F = 40 + (int32_t)flm_rng_below(&g, 400);
        flm_conv_params cp = params(F);
        cp.lead = (int32_t)flm_rng_below(&g, 3);
        flm_conv_span m[40], u[40];
        int32_t nt[40], nm = 0, nu = 0, t = 0;
        int32_t total = 50 + (int32_t)flm_rng_below(&g, 1500);
        for (int side = 0; side < 2; side++) {
            t = (int32_t)flm_rng_below(&g, 10);
            flm_conv_span *s = side ? u : m;
            int32_t *k = side ? &nu : &nm;
            while (*k < 40) {
                int32_t len = 1 + (int32_t)flm_rng_below(&g, 30);
                if (t + len > total)
                    break;
                s[*k] = sp(t, t + len);
                if (!side)
                    nt[*k] = 1 + (int32_t)flm_rng_below(&g, 25);
                (*k)++;
                t += len - (int32_t)flm_rng_below(&g, 2) + (int32_t)flm_rng_below(&g, 60);
            }
        }
        if (nm == 0)
            continue;
        flm_conv_plan plan;
        flm_error err = {0};
        int rc = flm_conv_plan_make(&plan, &cp, m, nt, nm, u, nu, total, id, &err);
        if (rc == FLM_ERANGE) {
            errs++;
            continue;
        }
        if (rc < 0) {
            bad++;
            tap_diag("%s: %s", id, err.msg);
            continue;
        }
        int ok = plan.parts[0].start == 0 && plan.parts[plan.n_parts - 1].end >= total;
        int32_t sum_ev = 0, sum_m = 0;
        for (int32_t k = 0; k < plan.n_parts && ok; k++) {
            const flm_conv_part *p = &plan.parts[k];
            ok = p->end > p->start && (k == 0 || p->start == plan.parts[k - 1].end) &&
                 (p->end - p->start <= F || k == plan.n_parts - 1);
            for (int32_t i = p->first; i < p->first + p->n && ok; i++) {
                int32_t a = plan.text_at[i] < m[i].start ? plan.text_at[i] : m[i].start;
                int32_t b = plan.text_at[i] + nt[i] > m[i].end ? plan.text_at[i] + nt[i] : m[i].end;
                ok = a >= p->start && b <= p->end &&
                     (i == 0 || plan.text_at[i] >= plan.text_at[i - 1] + nt[i - 1]);
            }
            for (int32_t e = p->first_event; e < p->first_event + p->n_events && ok; e++)
                ok = plan.events[e].frame >= p->start &&
                     plan.events[e].frame + plan.events[e].n_frames <= p->end;
            sum_ev += p->n_events;
            sum_m += p->n;
        }
        ok = ok && sum_ev == plan.n_events && sum_m == nm;
        if (!ok) {
            bad++;
            tap_diag("%s: an invariant fails (F %d, %d parts)", id, F, plan.n_parts);
        }
        parts += plan.n_parts;
        events += plan.n_events;
        flm_conv_plan_free(&plan);
    }
    TAP_EQ_INT(bad, 0, "random conversations: every invariant holds");
    tap_diag("%d conversations: %d parts, %d events, %d refused (a block longer than a sample)", n,
             parts, events, errs);
    TAP_OK(parts > n && events > n, "the random cases cut and overlap (%d parts, %d events)", parts,
           events);
}

int main(void)
{
    flm_profiles_default(&P);
    test_text();
    test_parts();
    test_events();
    test_pack();
    test_random(getenv("FLM_TEST_FAST") ? 300 : 2000);
    return tap_done();
}
