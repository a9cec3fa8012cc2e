/* Token sampling as published (see flm_sampling.h). */
#include "flm_sampling.h"

#include <math.h>
#include <string.h>

flm_sampling flm_sampling_text_defaults(void)
{
    return (flm_sampling){
        .temp = 0.01f, .top_p = 0.9f, .top_k = 1, .rep_penalty = 1.03f, .rep_window = 50};
}

flm_sampling flm_sampling_audio_defaults(void)
{
    return (flm_sampling){
        .temp = 0.5f, .top_p = 0.9f, .top_k = 1, .rep_penalty = 1.2f, .rep_window = 50};
}

/* order[i] before order[j]: higher probability, lower id on ties */
static int before(const float *p, int32_t x, int32_t y)
{
    return p[x] > p[y] || (p[x] == p[y] && x < y);
}

static void sift_down(int32_t *h, int root, int n, const float *p)
{
    for (int child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && before(p, h[child], h[child + 1]))
            child++; /* the later of the two in the final order */
        if (!before(p, h[root], h[child]))
            return;
        int32_t t = h[root];
        h[root] = h[child];
        h[child] = t;
    }
}

/* Heapsort into descending probability: in place, no allocation (qsort may call malloc, and
 * this runs once per generated token). */
static void sort_desc(int32_t *order, int n, const float *p)
{
    for (int i = n / 2 - 1; i >= 0; i--)
        sift_down(order, i, n, p);
    for (int end = n - 1; end > 0; end--) {
        int32_t t = order[0];
        order[0] = order[end];
        order[end] = t;
        sift_down(order, 0, end, p);
    }
}

int32_t flm_sample_token(const float *logits, int n, const int32_t *recent, int n_recent,
                         const flm_sampling *sp, flm_noise_fn noise, void *noise_ctx, float *work,
                         int32_t *order, int32_t skip_a, int32_t skip_b)
{
    memcpy(work, logits, (size_t)n * sizeof *work);
    for (int i = 0; i < n_recent && sp->rep_penalty != 1.0f; i++) {
        int32_t id = recent[i];
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = recent[j] == id;
        if (seen || id < 0 || id >= n)
            continue;
        work[id] = work[id] < 0 ? work[id] * sp->rep_penalty : work[id] / sp->rep_penalty;
    }
    if (skip_a >= 0 && skip_a < n)
        work[skip_a] = -INFINITY;
    if (skip_b >= 0 && skip_b < n)
        work[skip_b] = -INFINITY;
    if (sp->temp <= 0.0f) {
        int32_t best = 0;
        for (int i = 1; i < n; i++)
            if (work[i] > work[best])
                best = i;
        return best;
    }
    float mx = -INFINITY, sum = 0.0f;
    for (int i = 0; i < n; i++) {
        work[i] /= sp->temp;
        mx = work[i] > mx ? work[i] : mx;
    }
    for (int i = 0; i < n; i++) {
        work[i] = expf(work[i] - mx);
        sum += work[i];
    }
    for (int i = 0; i < n; i++)
        work[i] /= sum;
    for (int i = 0; i < n; i++)
        order[i] = i;
    sort_desc(order, n, work);
    int kept = n;
    if (sp->top_p > 0.0f) {
        double cum = 0;
        kept = 0;
        for (int i = 0; i < n; i++) {
            float p = work[order[i]];
            cum += p;
            if ((float)cum - p > sp->top_p)
                break;
            kept++;
        }
        kept = kept ? kept : 1;
    } else if (sp->top_k > 0 && sp->top_k < n) {
        kept = sp->top_k;
    }
    /* renormalising the kept entries does not change the argmax of p / noise */
    int32_t best = order[0];
    float best_v = -1.0f;
    for (int i = 0; i < kept; i++) {
        float v = work[order[i]] / noise(noise_ctx, i);
        if (v > best_v)
            best_v = v, best = order[i];
    }
    return best;
}
