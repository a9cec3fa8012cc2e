/* Timing refinement on synthetic signals (no external tools): noise bursts stand for sentences,
 * so the true boundaries are known to the sample. Exact cases, then invariants over many seeds:
 * sentences stay ordered, inside the audio, non-overlapping, and each boundary lands on its
 * burst edge +- margin within one hop when the pauses are clear. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flm_align.h"
#include "flm_alloc.h"
#include "tap.h"

enum { RATE = 24000 };

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Noise bursts at [on[i], off[i]) over a faint floor. */
static float *make_signal(const double *on, const double *off, size_t n_bursts, double dur,
                          int64_t *n)
{
    *n = (int64_t)(dur * RATE);
    float *x = malloc((size_t)*n * sizeof *x);
    for (int64_t i = 0; i < *n; i++) {
        double t = (double)i / RATE, a = 0.0003;
        for (size_t k = 0; k < n_bursts; k++)
            if (t >= on[k] && t < off[k])
                a = 0.2;
        x[i] = (float)((uniform() * 2 - 1) * a);
    }
    return x;
}

/* One utterance from a manifest line, through validate + split + refine + finish. */
static int run(const char *line, const float *x, int64_t n, flm_transcript *t)
{
    flm_error err = {0};
    flm_align_params p = flm_align_default_params();
    flm_profiles prof;
    flm_profiles_default(&prof);
    memset(t, 0, sizeof *t);
    int rc = flm_transcript_import(t, FLM_ALIGN_JSONL, "t.jsonl", line, strlen(line), NULL, &err);
    if (rc || t->n_utts != 1)
        return -1;
    t->utts[0].duration = (double)n / RATE;
    rc = flm_transcript_validate(t, 0, &p, NULL);
    if (!rc)
        rc = flm_utterance_split(&t->utts[0], &p, NULL, &err);
    if (!rc)
        rc = flm_utterance_refine(&t->utts[0], x, n, RATE, &p, &err);
    if (!rc)
        rc = flm_utterance_finish(t, 0, &p, &prof.codec, NULL);
    return rc;
}

static void check_bounds(const flm_utterance *u, const double *on, const double *off, size_t k,
                         double tol, const char *what)
{
    const double m = flm_align_default_params().margin;
    if (!TAP_OK(u->n_sents == k, "%s: %zu sentences", what, k))
        return;
    for (size_t i = 0; i < k; i++) {
        double es = u->sents[i].start - (on[i] - m), ee = u->sents[i].end - (off[i] + m);
        if (!TAP_OK(fabs(es) <= tol && fabs(ee) <= tol, "%s: sentence %zu within %.0f ms", what, i,
                    tol * 1e3))
            tap_diag("got [%.3f, %.3f], truth [%.3f, %.3f] +- margin", u->sents[i].start,
                     u->sents[i].end, on[i], off[i]);
    }
}

static void exact_cases(void)
{
    static const double on[] = {0.5, 2.6, 4.5}, off[] = {2.0, 4.1, 6.0};
    int64_t n;
    float *x = make_signal(on, off, 3, 7.0, &n);
    flm_transcript t;
    /* one coarse segment; the text lengths (11, 25, 9 letters) put the proportional estimates
     * 0.4-0.6 s away from the pauses (1.74 s for 2.0-2.6, 5.02 s for 4.1-4.5) */
    TAP_OK(run("{\"id\": \"a\", \"audio\": \"a.wav\", \"segments\": [{\"text\": \"One two three. "
               "Four five six seven eight nine. Ten eleven.\", \"start\": 0.3, \"end\": "
               "6.2}]}",
               x, n, &t) == 0,
           "one segment: pipeline runs");
    check_bounds(&t.utts[0], on, off, 3, 0.011, "one segment, proportional estimate");
    flm_transcript_free(&t);
    /* segment edges inside the bursts: grown to the end of the burst */
    TAP_OK(run("{\"id\": \"b\", \"audio\": \"b.wav\", \"segments\": [{\"text\": \"Alpha beta. "
               "Gamma delta.\", \"start\": 0.7, \"end\": 3.9}, {\"text\": \"Epsilon zeta.\", "
               "\"start\": 4.6, \"end\": 5.8}]}",
               x, n, &t) == 0,
           "clipped edges: pipeline runs");
    check_bounds(&t.utts[0], on, off, 3, 0.011, "segment edges inside speech are grown");
    flm_transcript_free(&t);
    /* word timestamps place the estimate; refinement keeps it in the pause */
    TAP_OK(
        run("{\"id\": \"c\", \"audio\": \"c.wav\", \"segments\": [{\"text\": \"Alpha beta. "
            "Gamma.\", \"start\": 0.4, \"end\": 4.2, \"words\": [{\"word\": \"Alpha\", "
            "\"start\": 0.5, \"end\": 1.2}, {\"word\": \"beta.\", \"start\": 1.2, \"end\": 2.0}, "
            "{\"word\": \"Gamma.\", \"start\": 2.6, \"end\": 4.1}]}]}",
            x, n, &t) == 0,
        "words: pipeline runs");
    check_bounds(&t.utts[0], on, off, 2, 0.011, "word timestamps");
    flm_transcript_free(&t);
    free(x);

    /* no pause at all: the split stays near the estimate and the spans tile */
    static const double on2[] = {0.5}, off2[] = {5.5};
    x = make_signal(on2, off2, 1, 6.0, &n);
    TAP_OK(run("{\"id\": \"d\", \"audio\": \"d.wav\", \"segments\": [{\"text\": \"Aaaa bbbb. "
               "Cccc dddd.\", \"start\": 0.5, \"end\": 5.5}]}",
               x, n, &t) == 0,
           "no pause: pipeline runs");
    const flm_utterance *u = &t.utts[0];
    TAP_OK(u->n_sents == 2 && fabs(u->sents[0].end - 3.0) < 0.05 &&
               fabs(u->sents[1].start - 3.0) < 0.05,
           "no pause: the split stays at the proportional estimate (3.0 s), got %.3f / %.3f",
           u->n_sents == 2 ? u->sents[0].end : -1, u->n_sents == 2 ? u->sents[1].start : -1);
    flm_transcript_free(&t);
    free(x);
}

static void invariants(void)
{
    int bad_order = 0, bad_acc = 0, n_bound = 0, runs = 200;
    for (int seed = 0; seed < runs; seed++) {
        size_t k = 2 + (size_t)(uniform() * 6);
        double on[8], off[8], t = 0.3 + uniform();
        char line[8192];
        size_t o = (size_t)snprintf(line, sizeof line,
                                    "{\"id\": \"r\", \"audio\": \"r.wav\", \"segments\": [");
        for (size_t i = 0; i < k; i++) {
            on[i] = t;
            off[i] = t + 0.8 + 2.5 * uniform();
            t = off[i] + 0.3 + 0.7 * uniform();
        }
        double dur = t + 0.5;
        int64_t n;
        float *x = make_signal(on, off, k, dur, &n);
        /* segments of 1-3 sentences, edges jittered, texts of random length */
        double prev_end = 0;
        for (size_t i = 0, s = 0; i < k; s++) {
            size_t m = 1 + (size_t)(uniform() * 3);
            if (i + m > k)
                m = k - i;
            double s0 = fmax(prev_end, on[i] - 0.2 + 0.3 * uniform());
            double s1 = fmin(dur, off[i + m - 1] - 0.1 + 0.3 * uniform());
            o += (size_t)snprintf(line + o, sizeof line - o,
                                  "%s{\"start\": %.3f, \"end\": %.3f, \"text\": \"", s ? ", " : "",
                                  s0, s1);
            for (size_t q = 0; q < m; q++) {
                /* about 2.5 words per second of burst, speaking rate +-30 % */
                int words = (int)lround((off[i + q] - on[i + q]) * 2.5 * (0.7 + 0.6 * uniform()));
                words = words < 1 ? 1 : words;
                for (int w = 0; w < words; w++)
                    o += (size_t)snprintf(line + o, sizeof line - o, "%sWord%03d", w ? " " : "",
                                          (int)(uniform() * 1000));
                o += (size_t)snprintf(line + o, sizeof line - o, ". ");
            }
            o += (size_t)snprintf(line + o, sizeof line - o, "\"}");
            prev_end = s1;
            i += m;
        }
        snprintf(line + o, sizeof line - o, "]}");
        flm_transcript tr;
        int rc = run(line, x, n, &tr);
        const flm_utterance *u = tr.n_utts ? &tr.utts[0] : NULL;
        if (rc || !u || u->n_sents != k) {
            bad_order++;
            tap_diag("seed %d: rc %d, %zu sentences for %zu bursts", seed, rc, u ? u->n_sents : 0,
                     k);
            for (size_t q = 0; q < tr.n_rejects; q++)
                tap_diag("  reject %s %s: %s", tr.rejects[q].where,
                         flm_align_reason_name(tr.rejects[q].reason), tr.rejects[q].detail);
            tap_diag("  %s", line);
        } else {
            const double m = flm_align_default_params().margin;
            for (size_t i = 0; i < k; i++) {
                const flm_sentence *s = &u->sents[i];
                if (!(s->start >= 0 && s->end > s->start && s->end <= dur + 1e-9 &&
                      (i == 0 || s->start >= u->sents[i - 1].end) &&
                      s->start_frame <= s->end_frame))
                    bad_order++;
                n_bound += 2;
                bad_acc += fabs(s->start - (on[i] - m)) > 0.011;
                bad_acc += fabs(s->end - (off[i] + m)) > 0.011;
            }
        }
        flm_transcript_free(&tr);
        free(x);
    }
    TAP_EQ_INT(bad_order, 0, "200 random layouts: ordered, non-overlapping, inside the audio");
    TAP_OK(bad_acc * 100 <= n_bound, "%d of %d boundaries more than one hop off (allowed 1 %%)",
           bad_acc, n_bound);
}

int main(void)
{
    exact_cases();
    invariants();
    return tap_done();
}
